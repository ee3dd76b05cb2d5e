use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn secret(s: &str) -> Secret {
    Secret::from_hex(s).unwrap()
}

const SECRET_A: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The SipHash paper's Appendix A vectors: key 00..0f, messages 00..(n-1).
#[test]
fn siphash_matches_the_reference_vectors() {
    let key: [u8; 16] = std::array::from_fn(|i| i as u8);
    let msg: Vec<u8> = (0..64).collect();
    assert_eq!(siphash24(&key, &msg[..0]), 0x726f_db47_dd0e_0e31);
    assert_eq!(siphash24(&key, &msg[..1]), 0x74f8_39c5_93dc_67fd);
    assert_eq!(siphash24(&key, &msg[..15]), 0xa129_ca61_49be_45e5);
}

/// RFC 9018 Appendix A.1: a client learns a new server cookie.
#[test]
fn rfc9018_a1_learning_a_new_server_cookie() {
    let s = Secrets::new(secret(SECRET_A));
    let c = Cookie::decode(&unhex("2464c4abcf10c957")).unwrap();
    let got = check(&s, &c, ip("198.51.100.100"), 1559731985);
    assert_eq!(got.status, CookieStatus::ClientOnly);
    assert_eq!(got.reply.to_vec(), unhex("2464c4abcf10c957010000005cf79f111f8130c3eee29480"));
}

/// A.2: the same client, 40 minutes later, gets a renewed cookie.
#[test]
fn rfc9018_a2_the_same_client_learning_a_renewed_cookie() {
    let s = Secrets::new(secret(SECRET_A));
    let c = Cookie::decode(&unhex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")).unwrap();
    let got = check(&s, &c, ip("198.51.100.100"), 1559734385);
    assert_eq!(got.status, CookieStatus::Valid);
    assert_eq!(got.reply.to_vec(), unhex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77"));
}

/// A.3: another client, whose cookie has Reserved octets that are not
/// zero. It verifies at the time it was made; 1 h 52 min later it is past
/// the one-hour lifetime of §4.3 and replaced.
#[test]
fn rfc9018_a3_another_client_learning_a_renewed_cookie() {
    let s = Secrets::new(secret(SECRET_A));
    let c = Cookie::decode(&unhex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5")).unwrap();
    let client = ip("203.0.113.203");
    assert_eq!(check(&s, &c, client, 1559727985).status, CookieStatus::Valid);
    let got = check(&s, &c, client, 1559734700);
    assert_eq!(got.status, CookieStatus::Invalid);
    assert_eq!(got.reply.to_vec(), unhex("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e"));
}

/// A.4: an IPv6 client with a cookie of the previous secret, after a
/// rollover: valid, and replaced with one of the new secret.
#[test]
fn rfc9018_a4_ipv6_query_with_a_rolled_over_secret() {
    let old = secret("dd3bdf9344b678b185a6f5cb60fca715");
    let new = secret("445536bcd2513298075a5d379663c962");
    let c = Cookie::decode(&unhex("22681ab97d52c298010000005cf7c57926556bd0934c72f8")).unwrap();
    let client = ip("2001:db8:220:1:59de:d0f4:8769:82b8");
    let now = 1559741961;
    assert_eq!(check(&Secrets::new(new), &c, client, now).status, CookieStatus::Invalid);
    let rolled = Secrets { current: new, previous: Some(old), require: false };
    let got = check(&rolled, &c, client, now);
    assert_eq!(got.status, CookieStatus::Valid);
    assert_eq!(got.reply.to_vec(), unhex("22681ab97d52c298010000005cf7c609a6bb79d16625507a"));
}

#[test]
fn option_lengths_follow_rfc7873_section_5_2_2() {
    let data = [0x5au8; 41];
    for len in 0..=41 {
        let got = Cookie::decode(&data[..len]);
        let ok = len == 8 || (16..=40).contains(&len);
        assert_eq!(got.is_ok(), ok, "length {len}");
        if let Ok(c) = got {
            assert_eq!(c.client(), &[0x5a; 8]);
            assert_eq!(c.server().len(), len - 8);
        } else {
            assert_eq!(got, Err(CookieError::Length(len)));
        }
    }
}

#[test]
fn the_window_is_an_hour_back_and_five_minutes_ahead() {
    let s = Secrets::new(secret(SECRET_A));
    let client = ip("192.0.2.7");
    let made = 1_700_000_000u32;
    let mut opt = [7u8; 24];
    opt[8..].copy_from_slice(&server_cookie(&s.current, &[7; 8], client, made));
    let c = Cookie::decode(&opt).unwrap();
    let at = |offset: i64| check(&s, &c, client, (i64::from(made) + offset) as u64);
    for (offset, status, reused) in [
        (0, CookieStatus::Valid, true),
        (1800, CookieStatus::Valid, true),
        (1801, CookieStatus::Valid, false),
        (3600, CookieStatus::Valid, false),
        (3601, CookieStatus::Invalid, false),
        (-300, CookieStatus::Valid, true),
        (-301, CookieStatus::Invalid, false),
    ] {
        let got = at(offset);
        assert_eq!(got.status, status, "at {offset}");
        assert_eq!(got.reply == opt, reused, "cookie reused at {offset}");
        // Whatever the verdict, the reply is a cookie of now.
        let stamp = u32::from_be_bytes(got.reply[12..16].try_into().unwrap());
        if !reused {
            assert_eq!(stamp, (i64::from(made) + offset) as u32);
        }
    }
    // Timestamps are serial numbers: a cookie made just before 2^32
    // wraps is young just after it.
    let mut wrap = [7u8; 24];
    wrap[8..].copy_from_slice(&server_cookie(&s.current, &[7; 8], client, u32::MAX - 10));
    let c = Cookie::decode(&wrap).unwrap();
    assert_eq!(check(&s, &c, client, (1u64 << 32) + 20).status, CookieStatus::Valid);
}

#[test]
fn a_cookie_for_another_address_or_secret_does_not_verify() {
    let s = Secrets::new(secret(SECRET_A));
    let now = 1_700_000_000;
    let mut opt = [1u8; 24];
    opt[8..].copy_from_slice(&server_cookie(&s.current, &[1; 8], ip("192.0.2.1"), now));
    let c = Cookie::decode(&opt).unwrap();
    assert_eq!(check(&s, &c, ip("192.0.2.1"), u64::from(now)).status, CookieStatus::Valid);
    // The same client on a dual-stack socket.
    assert_eq!(check(&s, &c, ip("::ffff:192.0.2.1"), u64::from(now)).status, CookieStatus::Valid);
    assert_eq!(check(&s, &c, ip("192.0.2.2"), u64::from(now)).status, CookieStatus::Invalid);
    let other = Secrets::new(secret("00112233445566778899aabbccddeeff"));
    assert_eq!(check(&other, &c, ip("192.0.2.1"), u64::from(now)).status, CookieStatus::Invalid);
    // Every single bit flipped in the server cookie breaks it.
    for bit in 64..192 {
        let mut bad = opt;
        bad[bit / 8] ^= 1 << (bit % 8);
        let c = Cookie::decode(&bad).unwrap();
        assert_ne!(check(&s, &c, ip("192.0.2.1"), u64::from(now)).status, CookieStatus::Valid, "bit {bit}");
    }
    // Server cookies of other lengths are someone else's construction.
    for len in [8, 9, 15, 17, 32] {
        let mut other = vec![1u8; 8 + len];
        other[8] = 1;
        let c = Cookie::decode(&other).unwrap();
        assert_eq!(check(&s, &c, ip("192.0.2.1"), u64::from(now)).status, CookieStatus::Invalid, "{len}");
    }
}

#[test]
fn secrets_are_32_hex_digits_and_never_printed() {
    assert_eq!(secret("E5E973E5A6B2A43F48E7DC849E37BFCF"), secret(SECRET_A));
    for bad in [
        "",
        "e5e973e5a6b2a43f48e7dc849e37bfc",
        "e5e973e5a6b2a43f48e7dc849e37bfcfa",
        "g5e973e5a6b2a43f48e7dc849e37bfcf",
    ] {
        assert_eq!(Secret::from_hex(bad), Err(SecretError::Format), "{bad:?}");
    }
    assert!(!format!("{:?}", Secrets::new(secret(SECRET_A))).contains("e5"));
}
