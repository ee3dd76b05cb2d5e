//! TSIG tests: messages signed by real `knsupdate` (testdata/tsig/, made by
//! testdata/capture.py), known answers computed apart with Python's `hmac`
//! module, and each RFC 8945 §5.2 outcome.

use super::mac::Variables;
use super::sign::append;
use super::*;

const SHA256_SECRET: &[u8] = b"sixgate tsig test key, sha256!!";
const SHA512_SECRET: &[u8] = b"sixgate tsig test key for hmac-sha512, 64 octets long or more!!";
const MD5_SECRET: &[u8] = b"sixgate md5 key!";

const KNSUPDATE_SHA256: &[u8] = include_bytes!("../../../testdata/tsig/knsupdate-hmac-sha256.bin");
const KNSUPDATE_SHA512: &[u8] = include_bytes!("../../../testdata/tsig/knsupdate-hmac-sha512.bin");
const KNSUPDATE_MD5: &[u8] = include_bytes!("../../../testdata/tsig/knsupdate-hmac-md5.bin");

fn key(name: &str, algorithm: Algorithm, secret: &[u8]) -> Key {
    Key::new(&crate::name::from_text(name, None).unwrap(), algorithm, secret.to_vec())
}

/// The keys knsupdate signed with (testdata/capture.py).
fn knsupdate_keys() -> Vec<Key> {
    vec![
        key("sixgate-test-key.", Algorithm::HmacSha256, SHA256_SECRET),
        key("Sha512.Test-Key.", Algorithm::HmacSha512, SHA512_SECRET),
        key("md5.key.", Algorithm::HmacMd5, MD5_SECRET),
    ]
}

fn lookup<'k>(keys: &'k [Key]) -> impl FnOnce(&[u8]) -> Option<&'k Key> {
    move |name| keys.iter().find(|k| k.name[..] == *name)
}

/// An UPDATE for example.com. with an empty body: ID 0x1234.
fn request() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
    m
}

fn test_key() -> Key {
    key("test-key.", Algorithm::HmacSha256, SHA256_SECRET)
}

const T: u64 = 1_700_000_000;

/// `msg` with its TSIG record's MAC replaced by `mac` (other fields kept).
fn with_mac(msg: &[u8], mac: &[u8]) -> Vec<u8> {
    let t = find(msg).unwrap().unwrap();
    let mut out = msg[..t.offset].to_vec();
    out[11] -= 1;
    let v = Variables {
        key_name: t.key_name.as_slice(),
        algorithm: t.algorithm.as_slice(),
        ttl: t.ttl,
        time_signed: t.time_signed,
        fudge: t.fudge,
        error: t.error,
        other: t.other,
    };
    append(&mut out, &v, mac).unwrap();
    out[..2].copy_from_slice(&msg[..2]);
    out
}

#[test]
fn algorithm_names() {
    for a in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(a.name_wire()), Some(a));
        assert_eq!(Algorithm::from_name(&a.name_wire().to_ascii_uppercase()), Some(a));
        assert_eq!(Algorithm::from_text(a.to_text()), Some(a));
        assert_eq!(Algorithm::from_text(&format!("{}.", a.to_text().to_uppercase())), Some(a));
        assert_eq!(crate::name::to_text(a.name_wire()).trim_end_matches('.'), {
            let t = a.to_text();
            if a == Algorithm::HmacMd5 { "hmac-md5.sig-alg.reg.int" } else { t }
        });
    }
    assert_eq!(Algorithm::from_text("hmac-md5.sig-alg.reg.int."), Some(Algorithm::HmacMd5));
    assert_eq!(Algorithm::from_text("hmac-sha1"), None);
    assert_eq!(Algorithm::from_name(b"\x09hmac-sha1\x00"), None);
    assert_eq!(Algorithm::HmacMd5.min_mac_len(), 10);
    assert_eq!(Algorithm::HmacSha256.min_mac_len(), 16);
    assert_eq!(Algorithm::HmacSha512.min_mac_len(), 32);
}

#[test]
fn key_debug_hides_the_secret() {
    let s = format!("{:?}", test_key());
    assert!(s.contains("test-key.") && s.contains("<31 octets>"), "{s}");
    assert!(!s.contains("sha256!!"), "{s}");
}

#[test]
fn knsupdate_signatures_verify() {
    let keys = knsupdate_keys();
    for (msg, alg) in [
        (KNSUPDATE_SHA256, Algorithm::HmacSha256),
        (KNSUPDATE_SHA512, Algorithm::HmacSha512),
        (KNSUPDATE_MD5, Algorithm::HmacMd5),
    ] {
        let t = find(msg).unwrap().expect("signed");
        assert_eq!(Algorithm::from_name(t.algorithm.as_slice()), Some(alg));
        assert_eq!(t.mac.len(), alg.mac_len());
        assert_eq!(t.fudge, 300);
        assert_eq!(t.error, 0);
        assert_eq!(t.original_id, u16::from_be_bytes([msg[0], msg[1]]));
        let v = verify_request(msg, &t, lookup(&keys), t.time_signed).unwrap();
        assert_eq!(v.key.algorithm, alg);
        assert_eq!(v.mac, t.mac);
        assert_eq!(v.full_mac, t.mac);
        // Within the fudge either way, and not beyond (RFC 8945 §5.2.3).
        assert!(verify_request(msg, &t, lookup(&keys), t.time_signed + 300).is_ok());
        assert!(verify_request(msg, &t, lookup(&keys), t.time_signed - 300).is_ok());
        let late = verify_request(msg, &t, lookup(&keys), t.time_signed + 301).unwrap_err();
        assert!(matches!(late, TsigFailure::BadTime(_)), "{late:?}");
        assert_eq!((late.rcode(), late.error()), (rcode::NOTAUTH, rcode::BADTIME));
        // Any changed octet of the signed part breaks the MAC.
        // (Octet 13 is a letter of the zone name: case is signed too.)
        for i in [3, 13, t.offset - 1] {
            let mut bad = msg.to_vec();
            bad[i] ^= 0x20;
            let tb = find(&bad).unwrap().unwrap();
            let e = verify_request(&bad, &tb, lookup(&keys), t.time_signed).unwrap_err();
            assert_eq!(e, TsigFailure::BadSig, "octet {i}");
        }
    }
}

#[test]
fn a_new_message_id_keeps_the_signature_valid() {
    // RFC 8945 §4.3.1: the original ID is digested, so a forwarder may
    // change the header ID.
    let keys = knsupdate_keys();
    let mut msg = KNSUPDATE_SHA256.to_vec();
    msg[0] ^= 0xFF;
    let t = find(&msg).unwrap().unwrap();
    assert!(verify_request(&msg, &t, lookup(&keys), t.time_signed).is_ok());
}

#[test]
fn signing_matches_independent_known_answers() {
    // MACs computed with Python's hmac module over the RFC 8945 §4.3
    // digest layout written out by hand (see the module doc).
    let kat = [
        (Algorithm::HmacSha256, "48999921415ad9c5050decc86e97fe390502eed4086c06c25a31b7f67ea36f23"),
        (Algorithm::HmacMd5, "78e979d01762cbf108135ccecbfd29dd"),
        (
            Algorithm::HmacSha512,
            "69cd09d5decf49223912ba2ce8a88dfa07f2abd3c0d6ff274f139c14221f49e1\
             1fe6db2b5f9de5cfe8047a4fa1554141bd3d55b513b076e5710fd3c3a859664b",
        ),
    ];
    for (alg, want) in kat {
        let k = key("TEST-key.", alg, SHA256_SECRET);
        let mut m = request();
        let mac = sign_request(&mut m, &k, T, 300).unwrap();
        assert_eq!(hex(&mac), want, "{alg}");
        assert_eq!(m[11], 1, "ARCOUNT counts the TSIG record");
        let t = find(&m).unwrap().unwrap();
        assert_eq!(t.offset, request().len());
        assert_eq!(t.mac, &mac[..]);
        assert_eq!(t.time_signed, T);
        assert_eq!(t.original_id, 0x1234);
        assert_eq!(t.key_name.as_slice(), b"\x08test-key\x00");
    }
    // The response to the SHA-256 request, signed one second later.
    let k = test_key();
    let req_mac = unhex("48999921415ad9c5050decc86e97fe390502eed4086c06c25a31b7f67ea36f23");
    let mut resp = request();
    resp[2] = 0xA8;
    sign_response(&mut resp, &k, &req_mac, T + 1, 300, 0, &[]).unwrap();
    let t = find(&resp).unwrap().unwrap();
    assert_eq!(hex(t.mac), "3a36e2c22461bef0ab783cc4b35cbdff3ef048ad8f947e1ce6d75278543adba6");
    assert_eq!(verify_response(&resp, &k, &req_mac, T + 1), Ok(()));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn request_response_round_trip() {
    let k = test_key();
    let keys = [k.clone()];
    let mut req = request();
    let req_mac = sign_request(&mut req, &k, T, DEFAULT_FUDGE).unwrap();
    let t = find(&req).unwrap().unwrap();
    let v = verify_request(&req, &t, lookup(&keys), T + 5).unwrap();
    let mut resp = req[..t.offset].to_vec();
    resp[2] |= 0x80;
    resp[11] = 0;
    sign_response(&mut resp, v.key, &v.mac, T + 6, v.fudge, 0, &[]).unwrap();
    assert_eq!(verify_response(&resp, &k, &req_mac, T + 7), Ok(()));
    // Another request's MAC does not verify it.
    assert_eq!(verify_response(&resp, &k, &[0; 32], T + 7), Err(ResponseError::BadSig));
    assert_eq!(verify_response(&resp, &k, &req_mac, T + 1000), Err(ResponseError::BadTime));
    let other = key("other.", Algorithm::HmacSha256, b"x");
    assert_eq!(verify_response(&resp, &other, &req_mac, T), Err(ResponseError::WrongKey));
    assert_eq!(verify_response(&request(), &k, &req_mac, T), Err(ResponseError::Unsigned));
}

#[test]
fn unknown_keys_and_algorithm_mismatches_are_badkey() {
    let k = test_key();
    let mut req = request();
    sign_request(&mut req, &k, T, 300).unwrap();
    let t = find(&req).unwrap().unwrap();
    let none: [Key; 0] = [];
    assert_eq!(verify_request(&req, &t, lookup(&none), T).unwrap_err(), TsigFailure::BadKey);
    // Same name and secret, another algorithm (RFC 8945 §5.2.1).
    let md5 = [key("test-key.", Algorithm::HmacMd5, SHA256_SECRET)];
    assert_eq!(verify_request(&req, &t, lookup(&md5), T).unwrap_err(), TsigFailure::BadKey);
    // A lookup that returns a key of another name is not trusted either.
    let wrong = key("other.", Algorithm::HmacSha256, SHA256_SECRET);
    assert_eq!(verify_request(&req, &t, |_| Some(&wrong), T).unwrap_err(), TsigFailure::BadKey);
    // A wrong secret is BADSIG.
    let bad = [key("test-key.", Algorithm::HmacSha256, b"not the secret")];
    assert_eq!(verify_request(&req, &t, lookup(&bad), T).unwrap_err(), TsigFailure::BadSig);
}

#[test]
fn time_is_checked_only_after_the_mac() {
    // A forged request far outside the fudge is BADSIG, not BADTIME: an
    // unauthenticated sender must not get a signed BADTIME answer.
    let k = test_key();
    let keys = [k.clone()];
    let mut req = request();
    sign_request(&mut req, &k, T, 300).unwrap();
    let forged = with_mac(&req, &[0xAA; 32]);
    let t = find(&forged).unwrap().unwrap();
    assert_eq!(verify_request(&forged, &t, lookup(&keys), T + 100_000).unwrap_err(), TsigFailure::BadSig);
}

#[test]
fn truncated_macs_follow_rfc_8945_5_2_2_1() {
    let k = test_key();
    let keys = [k.clone()];
    let mut req = request();
    let full = sign_request(&mut req, &k, T, 300).unwrap();
    // 16 octets is the least HMAC-SHA256 may be cut to.
    let cut = with_mac(&req, &full[..16]);
    let t = find(&cut).unwrap().unwrap();
    let e = verify_request(&cut, &t, lookup(&keys), T).unwrap_err();
    assert!(matches!(e, TsigFailure::BadTrunc(_)), "refused by default policy: {e:?}");
    assert_eq!(e.error(), rcode::BADTRUNC);
    let v = verify_request_with(&cut, &t, lookup(&keys), T, Truncation::AtLeast(16)).unwrap();
    assert_eq!(v.mac, &full[..16]);
    assert_eq!(v.full_mac, full, "replays are keyed by the full MAC");
    let v = verify_request_with(&cut, &t, lookup(&keys), T, Truncation::AtLeast(20));
    assert!(matches!(v, Err(TsigFailure::BadTrunc(_))));
    // A wrong truncated MAC is BADSIG.
    let mut wrong = full[..16].to_vec();
    wrong[15] ^= 1;
    let w = with_mac(&req, &wrong);
    let tw = find(&w).unwrap().unwrap();
    assert_eq!(
        verify_request_with(&w, &tw, lookup(&keys), T, Truncation::AtLeast(16)).unwrap_err(),
        TsigFailure::BadSig
    );
    // Shorter than max(10, 32/2), longer than the hash, or empty: FORMERR.
    for mac in [&full[..15], &[full.clone(), vec![0]].concat()[..], &[][..]] {
        let m = with_mac(&req, mac);
        let t = find(&m).unwrap().unwrap();
        let e = verify_request_with(&m, &t, lookup(&keys), T, Truncation::AtLeast(0)).unwrap_err();
        assert_eq!(e, TsigFailure::MacLength(mac.len()));
        assert_eq!(e.rcode(), rcode::FORMERR);
        let mut resp = request();
        e.append_tsig(&mut resp, &t, T).unwrap();
        assert_eq!(resp, request(), "FORMERR carries no TSIG record");
    }
}

#[test]
fn badtime_answers_are_signed_with_both_clocks() {
    let k = test_key();
    let keys = [k.clone()];
    let mut req = request();
    let req_mac = sign_request(&mut req, &k, T, 300).unwrap();
    let t = find(&req).unwrap().unwrap();
    let now = T + 1000;
    let e = verify_request(&req, &t, lookup(&keys), now).unwrap_err();
    assert!(matches!(e, TsigFailure::BadTime(_)));
    let mut resp = request();
    resp[2] = 0xA8;
    resp[3] = rcode::NOTAUTH as u8;
    e.append_tsig(&mut resp, &t, now).unwrap();
    let rt = find(&resp).unwrap().unwrap();
    // RFC 8945 §5.2.3: the client's time as time signed, ours in Other
    // Data (6 octets), the client's fudge, and a real MAC.
    assert_eq!(rt.time_signed, T);
    assert_eq!(rt.other, &now.to_be_bytes()[2..]);
    assert_eq!(rt.fudge, 300);
    assert_eq!(rt.error, rcode::BADTIME);
    assert_eq!(rt.mac.len(), 32);
    // The client can check it, with its own clock, and learns the error.
    assert_eq!(verify_response(&resp, &k, &req_mac, T), Err(ResponseError::Server(rcode::BADTIME)));
    // It was really signed: a changed octet is caught before the error.
    let mut bad = resp.clone();
    bad[3] = 0;
    assert_eq!(verify_response(&bad, &k, &req_mac, T), Err(ResponseError::BadSig));
}

#[test]
fn badkey_and_badsig_answers_are_unsigned() {
    let k = test_key();
    let mut req = request();
    let req_mac = sign_request(&mut req, &k, T, 300).unwrap();
    let t = find(&req).unwrap().unwrap();
    for e in [TsigFailure::<&Key>::BadKey, TsigFailure::BadSig] {
        let mut resp = request();
        resp[2] = 0xA8;
        e.append_tsig(&mut resp, &t, T + 3).unwrap();
        let rt = find(&resp).unwrap().unwrap();
        assert!(rt.mac.is_empty(), "RFC 8945 §5.3.2: MAC size 0");
        assert_eq!(rt.error, e.error());
        assert_eq!(rt.key_name.as_slice(), b"\x08test-key\x00");
        assert_eq!(rt.algorithm.as_slice(), Algorithm::HmacSha256.name_wire());
        assert_eq!(rt.original_id, 0x1234);
        assert_eq!(verify_response(&resp, &k, &req_mac, T), Err(ResponseError::Server(e.error())));
    }
}

/// A record with a root owner, `rtype`, class ANY, empty rdata.
fn bare_rr(rtype: u16) -> Vec<u8> {
    let mut r = vec![0];
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&[0, 255, 0, 0, 0, 0, 0, 0]);
    r
}

#[test]
fn tsig_must_be_last_and_alone() {
    let k = test_key();
    let mut signed = request();
    sign_request(&mut signed, &k, T, 300).unwrap();
    let t = find(&signed).unwrap().unwrap();
    let tsig_rr = signed[t.offset..].to_vec();
    assert!(find(&request()).unwrap().is_none());

    // A record after the TSIG record.
    let mut after = signed.clone();
    after.extend_from_slice(&bare_rr(code::A));
    after[11] = 2;
    assert_eq!(find(&after).unwrap_err(), TsigError::NotLast);
    // Two TSIG records.
    let mut two = signed.clone();
    two.extend_from_slice(&tsig_rr);
    two[11] = 2;
    assert_eq!(find(&two).unwrap_err(), TsigError::NotLast);
    // TSIG as the only record, but in the authority section: it is the
    // last record of the message, yet not in the additional section.
    let mut auth = signed.clone();
    auth[9] = 1;
    auth[11] = 0;
    assert_eq!(find(&auth).unwrap_err(), TsigError::NotLast, "tsig outside the additional section");
    // Trailing octets, a wrong class, rdata with an octet too many.
    let mut trailing = signed.clone();
    trailing.push(0);
    assert_eq!(find(&trailing).unwrap_err(), TsigError::TrailingData);
    let mut class = signed.clone();
    class[t.offset + 13] = 1; // class low octet, after "\x08test-key\x00" and the type
    assert_eq!(find(&class).unwrap_err(), TsigError::BadClass(1));
    let mut long = signed.clone();
    long.push(0);
    let rdlen_at = t.offset + 10 + 8;
    long[rdlen_at + 1] += 1;
    assert_eq!(find(&long).unwrap_err(), TsigError::BadRdata);
    let mut short = signed.clone();
    short.pop();
    short[rdlen_at + 1] -= 1;
    assert_eq!(find(&short).unwrap_err(), TsigError::BadRdata);
    assert_eq!(find(&signed[..5]).unwrap_err(), TsigError::NoHeader);
    assert_eq!(find(&signed[..signed.len() - 1]).unwrap_err(), TsigError::ShortMessage);
}

#[test]
fn signing_refuses_what_cannot_be_encoded() {
    let k = test_key();
    assert_eq!(sign_request(&mut vec![0; 5], &k, T, 300), Err(SignError::NoHeader));
    let mut full = request();
    full[10] = 0xFF;
    full[11] = 0xFF;
    assert_eq!(sign_request(&mut full, &k, T, 300), Err(SignError::TooManyRecords));
    let mut m = request();
    assert_eq!(sign_response(&mut m, &k, &[], T, 300, 0, &vec![0; 70_000]), Err(SignError::TooLong));
    assert_eq!(m, request(), "nothing appended on failure");
}

#[test]
fn replayed_requests_are_badtime() {
    let k = test_key();
    let keys = [k.clone()];
    let mut req = request();
    let full = sign_request(&mut req, &k, T, 300).unwrap();
    let t = find(&req).unwrap().unwrap();
    let mut cache = ReplayCache::new(100);
    let v = verify_request(&req, &t, lookup(&keys), T).unwrap();
    let v = cache.check(v, T).unwrap();
    let again = cache.check(v.clone(), T + 10).unwrap_err();
    assert!(matches!(again, TsigFailure::BadTime(_)));
    // The same signature truncated is the same request.
    let cut = with_mac(&req, &full[..16]);
    let tc = find(&cut).unwrap().unwrap();
    let vc = verify_request_with(&cut, &tc, lookup(&keys), T, Truncation::AtLeast(16)).unwrap();
    assert!(cache.check(vc, T + 20).is_err());
    // After 2 * fudge the signature is dead anyway, and is forgotten.
    assert!(cache.check(v.clone(), T + 599).is_err());
    assert_eq!(cache.check(v.clone(), T + 600).map(|_| ()), Ok(()));
    assert_eq!(cache.len(), 1);
}

#[test]
fn replay_cache_is_bounded() {
    let k = test_key();
    let verified = |i: u8| Verified { key: &k, mac: vec![i], full_mac: vec![i], time_signed: T, fudge: 300 };
    let mut cache = ReplayCache::new(3);
    for i in 0..10 {
        cache.check(verified(i), T).unwrap();
        assert!(cache.len() <= 3);
    }
    // The three newest are remembered; older ones were evicted.
    assert!(cache.check(verified(9), T).is_err());
    assert!(cache.check(verified(7), T).is_err());
    assert!(cache.check(verified(0), T).is_ok());
    // An entry with a short fudge behind one with a long fudge expires
    // late, but does not hide a newer acceptance of the same MAC.
    let mut c = ReplayCache::new(10);
    c.check(Verified { fudge: 1000, ..verified(1) }, T).unwrap();
    c.check(Verified { fudge: 1, ..verified(2) }, T).unwrap();
    c.check(verified(2), T + 5).unwrap();
    assert!(c.check(verified(2), T + 6).is_err());
    assert_eq!(ReplayCache::new(0).capacity(), 1);
}

#[test]
fn signing_changed_a_name_pointing_into_the_header() {
    // Found by the `tsig` fuzz target (fuzz/regressions/tsig/): an owner
    // pointing at ARCOUNT's low octet read as the root before signing and
    // as something else after, since signing bumps ARCOUNT. Such pointers
    // are now malformed, so there is nothing to sign or verify.
    let crash = include_bytes!("../../../fuzz/regressions/tsig/name-pointer-into-header");
    assert_eq!(find(crash).unwrap_err(), TsigError::Name(NameError::BadPointer));
    let mut m = request();
    m[9] = 1;
    m.extend_from_slice(b"\x01a\xC0\x0B\x00\x01\x00\xFF\x00\x00\x00\x00\x00\x00");
    assert_eq!(find(&m).unwrap_err(), TsigError::Name(NameError::BadPointer));
}
