use super::*;

// Captured by testdata/tls/capture.py (curl 7.88.1 and OpenSSL 3.0 s_client).
const CURL: &[u8] = include_bytes!("../../../testdata/tls/curl.bin");
const CURL_TLS12: &[u8] = include_bytes!("../../../testdata/tls/curl-tls12.bin");
const OPENSSL_MIXED_CASE: &[u8] = include_bytes!("../../../testdata/tls/openssl-mixed-case.bin");
const OPENSSL_NO_SNI: &[u8] = include_bytes!("../../../testdata/tls/openssl-no-sni.bin");
const OPENSSL_IP_LITERAL: &[u8] = include_bytes!("../../../testdata/tls/openssl-ip-literal.bin");
// Built by the same script: the curl capture with a 1216-octet
// X25519MLKEM768 key share.
const CURL_MLKEM: &[u8] = include_bytes!("../../../testdata/tls/curl-x25519mlkem768.bin");

const IPV4_LITERAL: Peek = Peek::Malformed("an IPv4 address literal as host_name");

fn sni(name: &str) -> Peek {
    Peek::Sni(name.to_string())
}

/// Each capture and what it should give.
fn captures() -> Vec<(&'static str, &'static [u8], Peek)> {
    vec![
        ("curl", CURL, sni("www.capture.test")),
        ("curl-tls12", CURL_TLS12, sni("www.capture.test")),
        ("curl-x25519mlkem768", CURL_MLKEM, sni("www.capture.test")),
        ("openssl-mixed-case", OPENSSL_MIXED_CASE, sni("mixed.capture.test")),
        ("openssl-no-sni", OPENSSL_NO_SNI, Peek::NoSni),
        ("openssl-ip-literal", OPENSSL_IP_LITERAL, IPV4_LITERAL),
    ]
}

/// The same handshake message as the one-record `hello`, in records with
/// fragments of `sizes` octets and one more record for the rest.
fn split(hello: &[u8], sizes: &[usize]) -> Vec<u8> {
    let (header, mut msg) = hello.split_at(5);
    assert_eq!(usize::from(u16::from_be_bytes([header[3], header[4]])), msg.len(), "one record");
    let mut out = Vec::new();
    for &n in sizes.iter().chain([&usize::MAX]) {
        let (frag, rest) = msg.split_at(n.min(msg.len()));
        out.extend_from_slice(&header[..3]);
        out.extend_from_slice(&(frag.len() as u16).to_be_bytes());
        out.extend_from_slice(frag);
        msg = rest;
    }
    out
}

fn record(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 3, 1];
    r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    r.extend_from_slice(payload);
    r
}

fn handshake(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![typ];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn vec16(data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

fn ext(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut e = typ.to_be_bytes().to_vec();
    e.extend_from_slice(&vec16(data));
    e
}

/// server_name extension data with these (name_type, name) entries.
fn server_name_data(names: &[(u8, &[u8])]) -> Vec<u8> {
    let list: Vec<u8> = names.iter().flat_map(|(t, n)| [&[*t][..], &vec16(n)].concat()).collect();
    vec16(&list)
}

fn server_name_ext(name: &[u8]) -> Vec<u8> {
    ext(0, &server_name_data(&[(0, name)]))
}

/// A ClientHello body with these fields; `exts` of None ends it after the
/// compression methods.
fn body(session_id: &[u8], suites: &[u8], compression: &[u8], exts: Option<&[u8]>) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[0x5a; 32]);
    b.push(session_id.len() as u8);
    b.extend_from_slice(session_id);
    b.extend_from_slice(&vec16(suites));
    b.push(compression.len() as u8);
    b.extend_from_slice(compression);
    if let Some(e) = exts {
        b.extend_from_slice(&vec16(e));
    }
    b
}

/// A one-record ClientHello with these extensions, otherwise plain.
fn hello(exts: &[Vec<u8>]) -> Vec<u8> {
    record(22, &handshake(1, &body(&[7; 32], &[0x13, 0x01], &[0], Some(&exts.concat()))))
}

#[test]
fn captures_give_their_names() {
    for (what, bytes, want) in captures() {
        assert_eq!(peek(bytes), want, "{what}");
    }
}

#[test]
fn every_prefix_of_a_capture_needs_more() {
    for (what, bytes, want) in captures() {
        for cut in 0..bytes.len() {
            assert_eq!(peek(&bytes[..cut]), Peek::NeedMore, "{what} cut at {cut}");
        }
        // What follows the ClientHello's record is not read.
        let more = [bytes, &record(23, b"early data"), b"junk"].concat();
        assert_eq!(peek(&more), want, "{what} with more after it");
    }
}

#[test]
fn a_client_hello_split_across_records_gives_the_same_answer() {
    for (what, bytes, want) in captures() {
        let len = bytes.len() - 5;
        let splits: [&[usize]; 7] = [&[1], &[3], &[4], &[len / 2], &[len - 1], &[2, 1], &[100, 50]];
        for sizes in splits {
            let s = split(bytes, sizes);
            assert_eq!(s.len(), bytes.len() + 5 * sizes.len(), "{what} {sizes:?}");
            assert_eq!(peek(&s), want, "{what} split {sizes:?}");
            for cut in 0..s.len() {
                assert_eq!(peek(&s[..cut]), Peek::NeedMore, "{what} split {sizes:?} cut at {cut}");
            }
        }
    }
}

#[test]
fn a_post_quantum_client_hello_is_read() {
    // The X25519MLKEM768 share alone is 1216 octets; the hello no longer
    // fits one Ethernet frame, so it arrives in several segments.
    assert!(CURL_MLKEM.len() > 1500);
    let share = [&0x11ecu16.to_be_bytes()[..], &1216u16.to_be_bytes()].concat();
    assert!(CURL_MLKEM.windows(4).any(|w| w == share));
    assert_eq!(peek(CURL_MLKEM), sni("www.capture.test"));
    let three = split(CURL_MLKEM, &[1000, 500]);
    assert_eq!(peek(&three), sni("www.capture.test"));
}

#[test]
fn too_large_is_said_as_soon_as_the_handshake_header_announces_it() {
    // A full-size record whose handshake header announces 20 KiB.
    let head = [22, 3, 1, 0x40, 0x00, 1, 0x00, 0x50, 0x00];
    assert_eq!(peek(&head), Peek::TooLarge);
    assert_eq!(peek(&head[..8]), Peek::NeedMore);
    // One over the limit, and the limit itself.
    let over = (MAX_CLIENT_HELLO + 1) as u32;
    let head = [&[22, 3, 1, 0x40, 0x00, 1][..], &over.to_be_bytes()[1..]].concat();
    assert_eq!(peek(&head), Peek::TooLarge);
    let limit = (MAX_CLIENT_HELLO as u32).to_be_bytes();
    let head = [&[22, 3, 1, 0x40, 0x00, 1][..], &limit[1..]].concat();
    assert_eq!(peek(&head), Peek::NeedMore);
    // Announced in a header split across two records.
    let split = [&[22, 3, 1, 0, 2, 1, 0][..], &[22, 3, 1, 0, 2, 0x50, 0]].concat();
    assert_eq!(peek(&split), Peek::TooLarge);
}

#[test]
fn a_client_hello_of_the_largest_size_is_read() {
    let with_padding = |n: usize| {
        let exts = [server_name_ext(b"big.test"), ext(21, &vec![0; n])].concat();
        body(&[], &[0x13, 0x01], &[0], Some(&exts))
    };
    let b = with_padding(MAX_CLIENT_HELLO - with_padding(0).len());
    assert_eq!(b.len(), MAX_CLIENT_HELLO);
    let msg = handshake(1, &b);
    // Two records: the first as large as plaintext records get (2^14).
    let (a, c) = msg.split_at(1 << 14);
    let bytes = [record(22, a), record(22, c)].concat();
    assert_eq!(peek(&bytes), sni("big.test"));
}

#[test]
fn other_protocols_are_not_tls() {
    assert_eq!(peek(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), Peek::NotTls("not a TLS record"));
    assert_eq!(peek(b"G"), Peek::NotTls("not a TLS record"));
    assert_eq!(peek(b"SSH-2.0-OpenSSH_9.2\r\n"), Peek::NotTls("not a TLS record"));
    assert_eq!(peek(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"), Peek::NotTls("not a TLS record"));
    // An SSLv2 CLIENT-HELLO (RFC 6101 Appendix E.1 framing).
    let v2 = [0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10];
    assert_eq!(peek(&v2), Peek::NotTls("an SSLv2-style hello"));
    // Records of other types first: alert, application data, change_cipher_spec.
    for typ in [20, 21, 23, 24] {
        let r = record(typ, &[1, 2]);
        assert_eq!(peek(&r), Peek::NotTls("a non-handshake record before the ClientHello"), "type {typ}");
        assert_eq!(peek(&r[..1]), Peek::NotTls("a non-handshake record before the ClientHello"));
    }
    // A handshake type octet with a version that is not 3.x.
    assert_eq!(peek(&[22, 2, 0]), Peek::NotTls("not a TLS record version"));
    assert_eq!(peek(&[22]), Peek::NeedMore);
    assert_eq!(peek(&[]), Peek::NeedMore);
}

#[test]
fn bad_framing_is_malformed() {
    assert_eq!(peek(&[22, 3, 1, 0, 0]), Peek::Malformed("an empty handshake record"));
    let too_long = ((MAX_RECORD + 1) as u16).to_be_bytes();
    assert_eq!(
        peek(&[22, 3, 1, too_long[0], too_long[1]]),
        Peek::Malformed("a record longer than TLS allows")
    );
    let ok = (MAX_RECORD as u16).to_be_bytes();
    assert_eq!(peek(&[22, 3, 1, ok[0], ok[1]]), Peek::NeedMore);
    // A ServerHello, not a ClientHello.
    let server_hello = record(22, &handshake(2, &body(&[], &[0x13, 0x01], &[0], None)));
    assert_eq!(peek(&server_hello), Peek::Malformed("the first handshake message is not a ClientHello"));
    assert_eq!(peek(&server_hello[..6]), Peek::Malformed("the first handshake message is not a ClientHello"));
    // An alert between two parts of the ClientHello.
    let s = split(CURL, &[100]);
    let interleaved = [&s[..105], &record(21, &[1, 0]), &s[105..]].concat();
    assert_eq!(peek(&interleaved), Peek::Malformed("a non-handshake record inside the ClientHello"));
    // A second record that is not TLS 3.x.
    let mut bad_version = s.clone();
    bad_version[106] = 2;
    assert_eq!(peek(&bad_version), Peek::Malformed("a record version that is not TLS"));
}

#[test]
fn handshake_data_after_the_client_hello_is_malformed() {
    // Another handshake message in the same record, decided as soon as the
    // headers show it: the record is longer than the ClientHello.
    let msg = handshake(1, &body(&[], &[0x13, 0x01], &[0], None));
    let extra = [&msg[..], &handshake(1, &[])].concat();
    let bytes = record(22, &extra);
    assert_eq!(peek(&bytes), Peek::Malformed("handshake data after the ClientHello"));
    assert_eq!(peek(&bytes[..9]), Peek::Malformed("handshake data after the ClientHello"));
    // The same across records: the second record runs past the message.
    let (a, b) = extra.split_at(10);
    let bytes = [record(22, a), record(22, b)].concat();
    assert_eq!(peek(&bytes), Peek::Malformed("handshake data after the ClientHello"));
    // A further handshake record after a complete ClientHello is not read.
    let bytes = [record(22, &msg), record(22, &handshake(1, &[]))].concat();
    assert_eq!(peek(&bytes), Peek::NoSni);
}

#[test]
fn client_hello_fields_are_checked() {
    let hs = |b: Vec<u8>| peek(&record(22, &handshake(1, &b)));
    let sn = server_name_ext(b"a.test");
    assert_eq!(hs(body(&[], &[0x13, 0x01], &[0], Some(&sn))), sni("a.test"));
    assert_eq!(hs(body(&[], &[0x13, 0x01], &[0], None)), Peek::NoSni, "no extensions at all");
    assert_eq!(hs(body(&[], &[0x13, 0x01], &[0], Some(&[]))), Peek::NoSni, "empty extensions");
    assert_eq!(
        hs(body(&[1; 33], &[0x13, 0x01], &[0], Some(&sn))),
        Peek::Malformed("legacy_session_id longer than 32 octets")
    );
    assert_eq!(
        hs(body(&[], &[0x13], &[0], Some(&sn))),
        Peek::Malformed("cipher_suites is empty or of odd length")
    );
    assert_eq!(
        hs(body(&[], &[], &[0], Some(&sn))),
        Peek::Malformed("cipher_suites is empty or of odd length")
    );
    assert_eq!(
        hs(body(&[], &[0x13, 0x01], &[], Some(&sn))),
        Peek::Malformed("legacy_compression_methods is empty")
    );
    let mut v2 = body(&[], &[0x13, 0x01], &[0], Some(&sn));
    v2[0] = 2;
    assert_eq!(hs(v2), Peek::Malformed("legacy_version is not TLS"));
    let trailing = [body(&[], &[0x13, 0x01], &[0], Some(&sn)), vec![0]].concat();
    assert_eq!(hs(trailing), Peek::Malformed("data after the extensions"));
    // An extension whose length runs past the extensions block.
    let overrun = [&[0, 0x2b, 0, 9][..], &[2, 3, 4]].concat();
    assert_eq!(
        hs(body(&[], &[0x13, 0x01], &[0], Some(&overrun))),
        Peek::Malformed("truncated extension data")
    );
    // Every truncation of the body inside a complete record is malformed
    // (or, with the extensions cut off whole, NoSni), never a name.
    let full = body(&[1; 32], &[0x13, 0x01, 0x13, 0x02], &[0], Some(&[ext(43, &[2, 3, 4]), sn].concat()));
    for cut in 0..full.len() {
        let p = hs(full[..cut].to_vec());
        assert!(matches!(p, Peek::Malformed(_) | Peek::NoSni), "cut at {cut}: {p:?}");
    }
}

#[test]
fn server_name_extension_is_checked() {
    let sn = |names: &[(u8, &[u8])]| peek(&hello(&[ext(0, &server_name_data(names))]));
    assert_eq!(sn(&[(0, b"Www.Example.COM")]), sni("www.example.com"));
    // Unknown name types are stepped over; without a host_name there is no SNI.
    assert_eq!(sn(&[(7, b"\x00\x01"), (0, b"a.test")]), sni("a.test"));
    assert_eq!(sn(&[(7, b"whatever")]), Peek::NoSni);
    assert_eq!(sn(&[]), Peek::Malformed("an empty server_name_list"));
    assert_eq!(sn(&[(0, b"a.test"), (0, b"b.test")]), Peek::Malformed("two host_names in server_name"));
    // Duplicate extensions, even naming the same host (RFC 8446 §4.2).
    let dup = hello(&[server_name_ext(b"a.test"), ext(43, &[2, 3, 4]), server_name_ext(b"a.test")]);
    assert_eq!(peek(&dup), Peek::Malformed("two server_name extensions"));
    // Other extensions around it do not matter.
    let around = hello(&[ext(43, &[2, 3, 4]), server_name_ext(b"a.test"), ext(0xfe0d, &[1; 200])]);
    assert_eq!(peek(&around), sni("a.test"));
    // Framing inside the extension.
    assert_eq!(peek(&hello(&[ext(0, &[])])), Peek::Malformed("truncated server_name_list"));
    let trailing = [server_name_data(&[(0, b"a.test")]), vec![0]].concat();
    assert_eq!(peek(&hello(&[ext(0, &trailing)])), Peek::Malformed("data after the server_name_list"));
    let short = [&[0, 7, 0, 0, 9][..], b"a.te"].concat();
    assert_eq!(peek(&hello(&[ext(0, &short)])), Peek::Malformed("truncated server name"));
}

#[test]
fn host_names_are_validated() {
    let label63 = "a".repeat(63);
    let long253 = [&label63[..], &label63, &label63, &"b".repeat(61)].join(".");
    assert_eq!(long253.len(), 253);
    for good in [
        "a",
        "localhost",
        "xn--bcher-kva.example",
        "1.example",
        "a-b.c",
        "0x.example",
        "123.example.net",
        &label63,
        &long253,
    ] {
        assert_eq!(host_name(good.as_bytes()), Ok(good.to_string()), "{good}");
    }
    let long254 = format!("c{long253}");
    let label64 = "a".repeat(64);
    let bad: &[(&[u8], &str)] = &[
        (b"", "an empty host_name"),
        (b"a.test.", "an empty label in host_name (or a trailing dot)"),
        (b".a.test", "an empty label in host_name (or a trailing dot)"),
        (b"a..test", "an empty label in host_name (or a trailing dot)"),
        (long254.as_bytes(), "a host_name longer than 253 octets"),
        (label64.as_bytes(), "a label longer than 63 octets in host_name"),
        (b"_dmarc.example", "a host_name character that is not a letter, digit or hyphen"),
        (b"b\xc3\xbccher.example", "a host_name character that is not a letter, digit or hyphen"),
        (b"a b.example", "a host_name character that is not a letter, digit or hyphen"),
        (b"a\0.example", "a host_name character that is not a letter, digit or hyphen"),
        (b"-a.example", "a host_name label that starts or ends with a hyphen"),
        (b"a-.example", "a host_name label that starts or ends with a hyphen"),
        (b"192.0.2.1", "an IPv4 address literal as host_name"),
        (b"3232235777", "an IPv4 address literal as host_name"),
        (b"0x7f.0.0.1", "an IPv4 address literal as host_name"),
        (b"0xC0A80101", "an IPv4 address literal as host_name"),
        (b"example.0x7f", "an IPv4 address literal as host_name"),
        (b"::1", "an IPv6 address literal as host_name"),
        (b"2001:db8::1", "an IPv6 address literal as host_name"),
        (b"[2001:db8::1]", "an IPv6 address literal as host_name"),
    ];
    for (name, why) in bad {
        assert_eq!(host_name(name), Err(*why), "{}", String::from_utf8_lossy(name));
    }
}
