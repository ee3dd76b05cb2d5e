use super::*;

const V2_TCP4: &[u8] = include_bytes!("../../../testdata/proxyproto/v2-tcp4.bin");
const V2_TCP6_MAPPED: &[u8] = include_bytes!("../../../testdata/proxyproto/v2-tcp6-mapped.bin");
const V2_LOCAL: &[u8] = include_bytes!("../../../testdata/proxyproto/v2-local.bin");
const V2_TCP4_TLVS: &[u8] = include_bytes!("../../../testdata/proxyproto/v2-tcp4-tlvs.bin");
const V2_TCP4_AUTHORITY_ID: &[u8] = include_bytes!("../../../testdata/proxyproto/v2-tcp4-authority-id.bin");

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn pair(a: &str, b: &str) -> Option<(SocketAddr, SocketAddr)> {
    Some((sa(a), sa(b)))
}

const MAX_TCP6: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

#[test]
fn spec_v1_examples() {
    // proxy-protocol.txt §2.1.
    let h = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
    assert_eq!(
        decode_v1(h).unwrap(),
        Header { addresses: pair("192.168.0.1:56324", "192.168.0.11:443"), len: 47 }
    );
    let v4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(v4.len(), 56);
    assert_eq!(decode_v1(v4).unwrap().len, 56);
    let v6 = format!("PROXY TCP6 {MAX_TCP6} {MAX_TCP6} 65535 65535\r\n");
    assert_eq!(v6.len(), 104);
    assert_eq!(decode_v1(v6.as_bytes()).unwrap().len, 104);
    assert_eq!(decode_v1(b"PROXY UNKNOWN\r\n").unwrap(), Header { addresses: None, len: 15 });
    let unknown = format!("PROXY UNKNOWN {MAX_TCP6} {MAX_TCP6} 65535 65535\r\n");
    assert_eq!(unknown.len(), V1_MAX);
    assert_eq!(decode_v1(unknown.as_bytes()).unwrap(), Header { addresses: None, len: V1_MAX });
}

#[test]
fn v1_encodes_the_spec_example_and_fits_107() {
    assert_eq!(
        v1(sa("192.168.0.1:56324"), sa("192.168.0.11:443")),
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    );
    let m = SocketAddr::new(MAX_TCP6.parse::<Ipv6Addr>().unwrap().into(), 65535);
    assert_eq!(v1(m, m).len(), 104);
    // The longest mixed pair: a mapped IPv4 next to a full IPv6 address.
    let longest = v1(sa("255.255.255.255:65535"), m);
    assert!(longest.len() <= V1_MAX, "{}", longest.len());
}

#[test]
fn mixed_families_become_tcp6_with_a_mapped_address() {
    let (c, b) = (sa("192.0.2.7:40000"), sa("[2001:db8::80]:80"));
    assert_eq!(v1(c, b), b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::80 40000 80\r\n");
    assert_eq!(v2(c, b), V2_TCP6_MAPPED);
    assert_eq!(v1(b, c), b"PROXY TCP6 2001:db8::80 ::ffff:192.0.2.7 80 40000\r\n");
    // Flow info and scope IDs cannot be carried and are dropped.
    let scoped = SocketAddr::V6(std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 1, 7, 3));
    assert_eq!(same_family(scoped, scoped).0, sa("[fe80::1]:1"));
}

#[test]
fn v2_vectors_decode_and_encode() {
    assert_eq!(v2(sa("192.168.0.1:56324"), sa("192.168.0.11:443")), V2_TCP4);
    assert_eq!(
        decode_v2(V2_TCP4).unwrap(),
        Header { addresses: pair("192.168.0.1:56324", "192.168.0.11:443"), len: 28 }
    );
    assert_eq!(
        decode_v2(V2_TCP6_MAPPED).unwrap(),
        Header { addresses: pair("[::ffff:192.0.2.7]:40000", "[2001:db8::80]:80"), len: 52 }
    );
    assert_eq!(decode_v2(V2_LOCAL).unwrap(), Header { addresses: None, len: 16 });
    assert_eq!(
        decode(V2_TCP4_TLVS).unwrap(),
        Header { addresses: pair("10.0.0.1:1", "10.0.0.2:65535"), len: V2_TCP4_TLVS.len() }
    );
}

#[test]
fn round_trips() {
    let addrs = [
        "0.0.0.0:0",
        "192.0.2.1:80",
        "255.255.255.255:65535",
        "[::]:0",
        "[::1]:443",
        "[2001:db8::1]:8080",
        "[::ffff:10.0.0.1]:1",
        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
    ];
    for s in addrs {
        for d in addrs {
            let want = same_family(sa(s), sa(d));
            for enc in [v1(sa(s), sa(d)), v2(sa(s), sa(d))] {
                let mut with_data = enc.clone();
                with_data.extend_from_slice(b"GET / HTTP/1.1\r\n");
                let h = decode(&with_data).unwrap();
                assert_eq!(h, Header { addresses: Some(want), len: enc.len() }, "{s} {d}");
            }
        }
    }
}

/// nginx's v1 reader (src/core/ngx_proxy_protocol.c, `ngx_proxy_protocol_read`),
/// restated: "PROXY ", "TCP4 " or "TCP6 ", two addresses made of hex
/// digits, ':' and '.' each ended by one space, a port ended by a space, a
/// port ended by CR, then LF; ports 0..=65535; a 107-octet buffer.
fn nginx_accepts(h: &[u8]) -> bool {
    fn addr(p: &mut &[u8]) -> bool {
        let Some(end) = p.iter().position(|&b| b == b' ') else { return false };
        let ok = end > 0 && p[..end].iter().all(|&b| b == b':' || b == b'.' || b.is_ascii_hexdigit());
        *p = &p[end + 1..];
        ok
    }
    fn port(p: &mut &[u8], sep: u8) -> bool {
        let Some(end) = p.iter().position(|&b| b == sep) else { return false };
        let digits = &p[..end];
        let ok = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(digits).unwrap().parse::<u32>().is_ok_and(|n| n <= 65535);
        *p = &p[end + 1..];
        ok
    }
    if h.len() > 107 || !(h.starts_with(b"PROXY TCP4 ") || h.starts_with(b"PROXY TCP6 ")) {
        return false;
    }
    let mut p = &h[11..];
    addr(&mut p) && addr(&mut p) && port(&mut p, b' ') && port(&mut p, b'\r') && p == b"\n"
}

#[test]
fn v1_output_is_what_nginx_reads() {
    let addrs =
        ["192.0.2.1:80", "255.255.255.255:65535", "[::ffff:192.0.2.7]:40000", "[2001:db8::80]:0", "[::]:1"];
    for s in addrs {
        for d in addrs {
            let h = v1(sa(s), sa(d));
            assert!(nginx_accepts(&h), "{}", String::from_utf8_lossy(&h));
        }
    }
}

#[test]
fn incomplete_prefixes_ask_for_more() {
    for full in [&v1(sa("192.0.2.1:80"), sa("192.0.2.2:81"))[..], V2_TCP4, V2_TCP4_TLVS, V2_LOCAL] {
        for cut in 0..full.len() {
            assert_eq!(decode(&full[..cut]), Err(ProxyError::Incomplete), "{cut}");
        }
    }
}

#[test]
fn v1_is_strict() {
    for bad in [
        &b"PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n"[..],
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",
        b"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n",
        b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        b"PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY TCP4 192.0.2.1\r192.0.2.2 1 2\r\n",
    ] {
        assert!(
            matches!(decode_v1(bad), Err(ProxyError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(decode_v1(b"proxy TCP4"), Err(ProxyError::NotProxy));
    assert_eq!(decode_v1(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
    assert_eq!(decode_v1(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'x'].repeat(20)), Err(ProxyError::TooLong));
}

#[test]
fn v2_is_strict_and_bounded() {
    let with = |i: usize, b: u8| {
        let mut v = V2_TCP4.to_vec();
        v[i] = b;
        v
    };
    assert_eq!(decode_v2(&with(12, 0x11)), Err(ProxyError::Malformed("version is not 2")));
    assert_eq!(decode_v2(&with(12, 0x22)), Err(ProxyError::Malformed("unknown command")));
    assert_eq!(decode_v2(&with(13, 0x41)), Err(ProxyError::Malformed("unknown address family")));
    assert_eq!(decode_v2(&with(13, 0x13)), Err(ProxyError::Malformed("unknown transport protocol")));
    // An IPv6 family in a 12-octet block.
    assert_eq!(decode_v2(&with(13, 0x21)), Err(ProxyError::Malformed("addresses exceed length")));
    // A dangling TLV octet.
    let mut v = with(15, 13);
    v.push(1);
    assert_eq!(decode_v2(&v), Err(ProxyError::Malformed("truncated tlv")));
    // UDP is read but gives no TCP addresses.
    assert_eq!(decode_v2(&with(13, 0x12)).unwrap().addresses, None);
    // LOCAL ignores the addresses it carries.
    assert_eq!(decode_v2(&with(12, 0x20)).unwrap(), Header { addresses: None, len: 28 });
    // The length field is bounded before anything is waited for.
    let mut big = V2_TCP4[..16].to_vec();
    big[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(decode_v2(&big), Err(ProxyError::TooLong));
    assert_eq!(decode_v2(b"\r\n\r\n\0\r\nQUIX\n"), Err(ProxyError::NotProxy));
}

/// The length field, read back.
fn length_field(h: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([h[14], h[15]]))
}

#[test]
fn v2_tlvs_encode_as_the_spec_lays_them_out() {
    // testdata/proxyproto/gen.py writes the vector octet by octet from
    // proxy-protocol.txt §2.2.
    let id: Vec<u8> = (0..16).collect();
    let tlvs = Tlvs { authority: Some("app.example.test"), unique_id: Some(&id) };
    let h = v2_with(sa("192.0.2.7:40000"), sa("198.51.100.7:443"), &tlvs);
    assert_eq!(h, V2_TCP4_AUTHORITY_ID);
    assert_eq!(header(2, sa("192.0.2.7:40000"), sa("198.51.100.7:443"), &tlvs), V2_TCP4_AUTHORITY_ID);
    assert_eq!(
        decode_v2_tlvs(V2_TCP4_AUTHORITY_ID).unwrap(),
        vec![(PP2_TYPE_AUTHORITY, &b"app.example.test"[..]), (PP2_TYPE_UNIQUE_ID, &id[..])]
    );
    assert_eq!(decode_v2_tlvs(V2_TCP4_TLVS).unwrap(), vec![(0x01, &b"http/1.1"[..]), (0x04, &[0u8; 3][..])]);
    assert_eq!(decode_v2_tlvs(V2_TCP4).unwrap(), vec![]);
    assert_eq!(decode_v2_tlvs(V2_LOCAL).unwrap(), vec![]);
}

#[test]
fn the_length_field_counts_addresses_and_tlvs() {
    let id = [0xa5u8; MAX_UNIQUE_ID];
    let name = "a".repeat(MAX_AUTHORITY);
    for (src, dst, addr_len) in
        [("192.0.2.7:1", "198.51.100.7:443", 12), ("192.0.2.7:1", "[2001:db8::80]:443", 36)]
    {
        for authority in [None, Some("app.example.test"), Some(name.as_str())] {
            for unique_id in [None, Some(&id[..16]), Some(&id[..])] {
                let tlvs = Tlvs { authority, unique_id };
                let h = v2_with(sa(src), sa(dst), &tlvs);
                let want =
                    addr_len + authority.map_or(0, |a| 3 + a.len()) + unique_id.map_or(0, |i| 3 + i.len());
                assert_eq!(length_field(&h), want);
                assert_eq!(h.len(), 16 + want);
                assert!(h.len() <= V2_MAX);
                // The addresses still decode, with data after the TLVs.
                let mut with_data = h.clone();
                with_data.extend_from_slice(b"GET / HTTP/1.1\r\n");
                let d = decode(&with_data).unwrap();
                assert_eq!(d, Header { addresses: Some(same_family(sa(src), sa(dst))), len: h.len() });
                let mut got = decode_v2_tlvs(&with_data).unwrap().into_iter();
                if let Some(a) = authority {
                    assert_eq!(got.next(), Some((PP2_TYPE_AUTHORITY, a.as_bytes())));
                }
                if let Some(i) = unique_id {
                    assert_eq!(got.next(), Some((PP2_TYPE_UNIQUE_ID, i)));
                }
                assert_eq!(got.next(), None);
            }
        }
    }
}

#[test]
fn values_over_their_limits_or_empty_are_left_out() {
    let (s, d) = (sa("192.0.2.7:40000"), sa("198.51.100.7:443"));
    let plain = v2(s, d);
    let long_name = "a".repeat(MAX_AUTHORITY + 1);
    let long_id = [1u8; MAX_UNIQUE_ID + 1];
    let huge = "b".repeat(70_000);
    for tlvs in [
        Tlvs { authority: Some(&long_name), unique_id: None },
        Tlvs { authority: Some(&huge), unique_id: Some(&long_id) },
        Tlvs { authority: Some(""), unique_id: Some(&[]) },
        Tlvs::default(),
    ] {
        assert_eq!(v2_with(s, d, &tlvs), plain, "{:?}", tlvs.authority.map(str::len));
    }
    // One too long, the other kept.
    let h = v2_with(s, d, &Tlvs { authority: Some(&long_name), unique_id: Some(&[7; 4]) });
    assert_eq!(decode_v2_tlvs(&h).unwrap(), vec![(PP2_TYPE_UNIQUE_ID, &[7u8; 4][..])]);
    // Version 1 has no TLVs; 0 is no header.
    let tlvs = Tlvs { authority: Some("app.example.test"), unique_id: Some(&[1; 16]) };
    assert_eq!(header(1, s, d, &tlvs), v1(s, d));
    assert_eq!(header(0, s, d, &tlvs), b"");
}

#[test]
fn tlv_reading_is_strict() {
    let mut v = V2_TCP4_AUTHORITY_ID.to_vec();
    // The unique ID says 17 octets where 16 are left.
    v[0x31] = 17;
    assert_eq!(decode_v2_tlvs(&v), Err(ProxyError::Malformed("tlv exceeds length")));
    assert_eq!(decode_v2_tlvs(&V2_TCP4_AUTHORITY_ID[..40]), Err(ProxyError::Incomplete));
    assert_eq!(decode_v2_tlvs(b"PROXY UNKNOWN\r\n"), Err(ProxyError::NotProxy));
}

#[test]
fn unique_ids_differ_and_read_as_hex() {
    let ids = UniqueIds::new([1, 2, 3]);
    let first = ids.next();
    assert_eq!(&first.as_bytes()[..8], &1u64.to_be_bytes());
    let text = first.to_string();
    assert_eq!(text.len(), 32);
    assert!(text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{text}");
    assert_eq!(text, first.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>());
    let mut seen = std::collections::HashSet::from([first]);
    for _ in 0..100_000 {
        assert!(seen.insert(ids.next()));
    }
    // The counter does not show: consecutive IDs differ in about half of
    // their 64 bits.
    let (a, b) = (ids.next(), ids.next());
    let diff: u32 = a.as_bytes()[8..].iter().zip(&b.as_bytes()[8..]).map(|(x, y)| (x ^ y).count_ones()).sum();
    assert!((12..=52).contains(&diff), "{diff}");
    // Another key, other IDs; the same key, the same sequence.
    assert_ne!(UniqueIds::new([1, 2, 4]).next(), UniqueIds::new([1, 2, 3]).next());
    assert_eq!(UniqueIds::new([1, 2, 3]).next(), first);
    assert_ne!(UniqueIds::random().next(), UniqueIds::random().next());
    // As the header carries it.
    let h = header(2, sa("192.0.2.7:1"), sa("198.51.100.7:80"), &Tlvs::new("a.test", Some(&first)));
    assert_eq!(decode_v2_tlvs(&h).unwrap()[1], (PP2_TYPE_UNIQUE_ID, first.as_bytes()));
}
