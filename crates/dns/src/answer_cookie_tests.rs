//! Unit tests of what the answer adds to the OPT record and the CH class:
//! DNS cookies (RFC 7873 §5.2), NSID (RFC 5001) and `id.server` (RFC
//! 4892), and the room they take in a UDP answer.

use std::sync::Arc;

use super::*;
use crate::cookie::{Secret, Secrets};
use crate::rtype::CLASS_CH;
use crate::zonefile;

const ZONE: &str = r#"$TTL 3600
@        SOA  ns1 hostmaster 1 7200 3600 1209600 300
@        NS   ns1
ns1      A    192.0.2.1
www      A    192.0.2.80
big      TXT  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
"#;

const CLIENT_COOKIE: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
const NOW: u64 = 1_700_000_000;

fn catalog() -> Catalog {
    let apex = name::from_text("example.com.", None).unwrap();
    let zone = Zone::build(&apex, zonefile::parse(ZONE, &apex).unwrap(), 1).unwrap();
    Catalog::new().with_zone(Arc::new(zone))
}

fn limits(nsid: Option<&str>, require: bool) -> Limits {
    let secret = Secret::from_hex("e5e973e5a6b2a43f48e7dc849e37bfcf").unwrap();
    Limits {
        nsid: nsid.map(|n| Nsid::new(n.as_bytes()).unwrap()),
        cookies: Some(Secrets { require, ..Secrets::new(secret) }),
        ..Limits::default()
    }
}

fn client() -> Client {
    Client { ip: "192.0.2.200".parse().unwrap(), now: NOW }
}

/// A query with an OPT of `payload` holding `options` (code, data).
fn query(qname: &str, qtype: u16, qclass: u16, payload: u16, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(&name::from_text(qname, None).unwrap());
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    let rdata: Vec<u8> = options
        .iter()
        .flat_map(|(code, data)| [&code.to_be_bytes()[..], &(data.len() as u16).to_be_bytes(), data].concat())
        .collect();
    m.extend_from_slice(&[0, 0, 41]);
    m.extend_from_slice(&payload.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    m
}

/// What a response says: (full rcode, flags, answers, the OPT's options).
struct Reply {
    rcode: u16,
    flags: u16,
    answers: Vec<(u16, u16, u32, Vec<u8>)>,
    options: Vec<(u16, Vec<u8>)>,
    truncated: bool,
}

impl Reply {
    fn option(&self, code: u16) -> Option<&[u8]> {
        self.options.iter().find(|(c, _)| *c == code).map(|(_, d)| &d[..])
    }
}

fn read(msg: &[u8]) -> Reply {
    // `domain` checks the message as a whole; the fields are read here.
    domain::base::Message::from_octets(msg).unwrap().answer().unwrap().next_section().unwrap();
    let word = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let flags = word(2);
    let (qd, an, ns, ar) = (word(4), word(6), word(8), word(10));
    let mut n = NameBuf::new();
    let mut pos = 12;
    for _ in 0..qd {
        pos = n.decode(msg, pos).unwrap() + 4;
    }
    let (mut answers, mut options, mut ext) = (Vec::new(), Vec::new(), 0);
    for i in 0..an + ns + ar {
        pos = n.decode(msg, pos).unwrap();
        let (rtype, class) = (word(pos), word(pos + 2));
        let ttl = u32::from_be_bytes(msg[pos + 4..pos + 8].try_into().unwrap());
        let len = usize::from(word(pos + 8));
        let data = msg[pos + 10..pos + 10 + len].to_vec();
        pos += 10 + len;
        if rtype == code::OPT {
            ext = ((ttl >> 24) as u16) << 4;
            let mut at = 0;
            while at < data.len() {
                let (c, l) = (
                    u16::from_be_bytes([data[at], data[at + 1]]),
                    usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]])),
                );
                options.push((c, data[at + 4..at + 4 + l].to_vec()));
                at += 4 + l;
            }
            assert_eq!(at, data.len(), "whole options");
        } else if i < an {
            answers.push((rtype, class, ttl, data));
        }
    }
    assert_eq!(pos, msg.len(), "trailing octets");
    Reply { rcode: (flags & 0xf) | ext, flags, answers, options, truncated: flags & flags::TC != 0 }
}

fn ask(msg: &[u8], t: Transport, limits: &Limits) -> (Answered, Reply) {
    let mut buf = Vec::new();
    let got = respond_to(&catalog(), msg, &mut buf, t, limits, Some(&client()));
    assert_eq!(got.outcome, Outcome::Reply);
    (got, read(&buf))
}

#[test]
fn a_client_cookie_gets_the_answer_and_a_server_cookie_then_verifies() {
    let l = limits(None, false);
    let (got, r) =
        ask(&query("www.example.com.", code::A, 1, 1232, &[(10, &CLIENT_COOKIE)]), Transport::Udp, &l);
    assert_eq!((got.cookie, got.badcookie), (CookieStatus::ClientOnly, false));
    assert_eq!((r.rcode, r.answers.len()), (0, 1));
    let cookie = r.option(10).expect("a cookie in the answer").to_vec();
    assert_eq!(cookie.len(), 24);
    assert_eq!(&cookie[..8], &CLIENT_COOKIE);
    assert_eq!(cookie[8], 1, "RFC 9018 version 1");

    // Sent back, it is valid, and (being new) returned unchanged.
    let (got, r) = ask(&query("www.example.com.", code::A, 1, 1232, &[(10, &cookie)]), Transport::Udp, &l);
    assert_eq!(got.cookie, CookieStatus::Valid);
    assert_eq!(r.option(10), Some(&cookie[..]));
    assert_eq!(r.answers.len(), 1);

    // Tampered with, it is invalid: the answer still comes, with a
    // fresh cookie.
    let mut bad = cookie.clone();
    bad[20] ^= 1;
    let (got, r) = ask(&query("www.example.com.", code::A, 1, 1232, &[(10, &bad)]), Transport::Udp, &l);
    assert_eq!(got.cookie, CookieStatus::Invalid);
    assert_eq!(r.option(10), Some(&cookie[..]), "the cookie of this client at this time");
    assert_eq!(r.answers.len(), 1);

    // Over TCP cookies are answered too.
    let (got, r) =
        ask(&query("www.example.com.", code::A, 1, 1232, &[(10, &CLIENT_COOKIE)]), Transport::Tcp, &l);
    assert_eq!(got.cookie, CookieStatus::ClientOnly);
    assert_eq!(r.option(10), Some(&cookie[..]));
}

#[test]
fn without_cookies_on_or_a_client_a_cookie_is_ignored() {
    let q = query("www.example.com.", code::A, 1, 1232, &[(10, &CLIENT_COOKIE)]);
    let mut buf = Vec::new();
    let got = respond_to(&catalog(), &q, &mut buf, Transport::Udp, &Limits::default(), Some(&client()));
    assert_eq!(got.cookie, CookieStatus::None);
    assert_eq!(read(&buf).option(10), None);
    assert_eq!(respond(&catalog(), &q, &mut buf, Transport::Udp, &limits(None, true)), Outcome::Reply);
    let r = read(&buf);
    assert_eq!((r.option(10), r.answers.len()), (None, 1));
    // No cookie, no change.
    let (got, r) =
        ask(&query("www.example.com.", code::A, 1, 1232, &[]), Transport::Udp, &limits(None, true));
    assert_eq!(got.cookie, CookieStatus::None);
    assert!(r.options.is_empty());
}

/// RFC 7873 §5.2.2: a COOKIE option of the wrong length is a FORMERR,
/// whatever the settings; its reply keeps an OPT (RFC 6891 §7).
#[test]
fn a_malformed_cookie_is_formerr() {
    for len in [0, 7, 9, 15, 41] {
        let data = vec![3u8; len];
        for l in [Limits::default(), limits(None, false)] {
            let (got, r) =
                ask(&query("www.example.com.", code::A, 1, 1232, &[(10, &data)]), Transport::Udp, &l);
            assert_eq!((r.rcode, got.cookie), (rcode::FORMERR, CookieStatus::None), "length {len}");
            assert!(r.answers.is_empty());
            assert_eq!(r.option(10), None);
        }
    }
    // Only the first COOKIE option counts; a bad second one is ignored.
    let q = query("www.example.com.", code::A, 1, 1232, &[(10, &CLIENT_COOKIE), (10, &[1; 3])]);
    let (got, r) = ask(&q, Transport::Udp, &limits(None, false));
    assert_eq!((r.rcode, got.cookie), (0, CookieStatus::ClientOnly));
}

#[test]
fn required_cookies_answer_badcookie_over_udp_only() {
    let l = limits(None, true);
    let q = query("www.example.com.", code::A, 1, 1232, &[(10, &CLIENT_COOKIE)]);
    let (got, r) = ask(&q, Transport::Udp, &l);
    assert_eq!((got.cookie, got.badcookie), (CookieStatus::ClientOnly, true));
    assert_eq!(r.rcode, crate::cookie::BADCOOKIE);
    assert!(r.answers.is_empty());
    let cookie = r.option(10).expect("a fresh cookie with BADCOOKIE").to_vec();
    // With it the client is answered.
    let (got, r) = ask(&query("www.example.com.", code::A, 1, 1232, &[(10, &cookie)]), Transport::Udp, &l);
    assert_eq!((got.cookie, got.badcookie, r.rcode, r.answers.len()), (CookieStatus::Valid, false, 0, 1));
    // TCP has proved the address already.
    let (got, r) = ask(&q, Transport::Tcp, &l);
    assert_eq!((got.badcookie, r.rcode, r.answers.len()), (false, 0, 1));
}

#[test]
fn badcookie_reply_is_written_only_for_a_query_with_a_cookie() {
    let mut buf = Vec::new();
    let q = query("www.example.com.", code::A, 1, 1232, &[(10, &CLIENT_COOKIE)]);
    assert!(badcookie_reply(&q, &mut buf, &limits(None, false), &client()));
    let r = read(&buf);
    assert_eq!(r.rcode, crate::cookie::BADCOOKIE);
    assert_eq!(r.option(10).map(<[u8]>::len), Some(24));
    assert_eq!(&buf[..2], &[0xAB, 0xCD]);
    buf.clear();
    let plain = query("www.example.com.", code::A, 1, 1232, &[]);
    assert!(!badcookie_reply(&plain, &mut buf, &limits(None, false), &client()));
    assert!(!badcookie_reply(&q, &mut buf, &Limits::default(), &client()));
    assert!(buf.is_empty());
}

#[test]
fn nsid_is_sent_when_asked_and_configured() {
    let asked = query("www.example.com.", code::A, 1, 1232, &[(3, b"")]);
    let (_, r) = ask(&asked, Transport::Udp, &limits(Some("ns1.fra"), false));
    assert_eq!(r.option(3), Some(&b"ns1.fra"[..]));
    assert_eq!(r.answers.len(), 1);
    // Also on a refusal.
    let (_, r) =
        ask(&query("other.test.", code::A, 1, 1232, &[(3, b"")]), Transport::Udp, &limits(Some("x"), false));
    assert_eq!((r.rcode, r.option(3)), (rcode::REFUSED, Some(&b"x"[..])));
    let (_, r) =
        ask(&query("www.example.com.", code::A, 1, 1232, &[]), Transport::Udp, &limits(Some("x"), false));
    assert_eq!(r.option(3), None, "not asked");
    let (_, r) = ask(&asked, Transport::Udp, &limits(None, false));
    assert_eq!(r.option(3), None, "not configured");
    // With a cookie, both.
    let both = query("www.example.com.", code::A, 1, 1232, &[(3, b""), (10, &CLIENT_COOKIE)]);
    let (_, r) = ask(&both, Transport::Udp, &limits(Some("ns1"), false));
    assert_eq!((r.option(3).is_some(), r.option(10).map(<[u8]>::len)), (true, Some(24)));
}

#[test]
fn id_server_and_hostname_bind_name_the_server() {
    let l = limits(Some("ns1.fra"), false);
    for qname in ["id.server.", "ID.Server.", "hostname.bind."] {
        let (_, r) = ask(&query(qname, code::TXT, CLASS_CH, 1232, &[]), Transport::Udp, &l);
        assert_eq!(r.rcode, 0, "{qname}");
        assert!(r.flags & flags::AA != 0, "{qname}: authoritative");
        assert_eq!(r.answers, vec![(code::TXT, CLASS_CH, 0, b"\x07ns1.fra".to_vec())], "{qname}");
    }
    // Not configured, another name, another type, another class: REFUSED
    // as before.
    for (qname, qtype, qclass, l) in [
        ("id.server.", code::TXT, CLASS_CH, limits(None, false)),
        ("version.bind.", code::TXT, CLASS_CH, l),
        ("id.server.", code::A, CLASS_CH, l),
        ("id.server.", code::TXT, 4, l),
    ] {
        let (_, r) = ask(&query(qname, qtype, qclass, 1232, &[]), Transport::Udp, &l);
        assert_eq!((r.rcode, r.answers.len()), (rcode::REFUSED, 0), "{qname} {qtype} {qclass}");
    }
    // Without EDNS too.
    let mut buf = Vec::new();
    let mut q = query("id.server.", code::TXT, CLASS_CH, 512, &[]);
    q.truncate(q.len() - 11);
    q[11] = 0;
    assert_eq!(respond(&catalog(), &q, &mut buf, Transport::Udp, &l), Outcome::Reply);
    assert_eq!(read(&buf).answers.len(), 1);
}

/// The OPT's options count against the UDP limit: whatever the client's
/// payload size, an answer with a cookie and the longest NSID is within it,
/// whole or truncated, never over.
#[test]
fn options_are_counted_in_the_udp_limit() {
    let long = "n".repeat(crate::ident::MAX_NSID);
    let l = Limits { udp_payload: 4096, ..limits(Some(&long), false) };
    let mut whole = 0;
    for payload in (512..=1000).step_by(3) {
        let q = query("big.example.com.", code::TXT, 1, payload, &[(3, b""), (10, &CLIENT_COOKIE)]);
        let mut buf = Vec::new();
        respond_to(&catalog(), &q, &mut buf, Transport::Udp, &l, Some(&client()));
        assert!(buf.len() <= usize::from(payload), "{} octets for a payload of {payload}", buf.len());
        let r = read(&buf);
        assert!(r.option(3).is_some() && r.option(10).is_some(), "payload {payload}");
        assert!(r.truncated || r.answers.len() == 6, "payload {payload}: whole or truncated");
        whole += usize::from(!r.truncated);
    }
    assert!(whole > 0 && whole < 163, "both sides of the limit were tried ({whole})");
    // The smallest limit with the longest question still holds everything
    // that is not a record.
    let label = "a".repeat(63);
    let qname = format!("{label}.{label}.{label}.{}.example.com.", "b".repeat(49));
    let q = query(&qname, code::TXT, 1, 512, &[(3, b""), (10, &CLIENT_COOKIE)]);
    let mut buf = Vec::new();
    respond_to(&catalog(), &q, &mut buf, Transport::Udp, &l, Some(&client()));
    assert!(buf.len() <= 512, "{} octets", buf.len());
}

#[test]
fn a_signed_query_reports_its_cookie() {
    use crate::tsig::{self, Algorithm, Key};
    let key = Key::new(&name::from_text("k.", None).unwrap(), Algorithm::HmacSha256, vec![1; 32]);
    let mut q = query("www.example.com.", code::A, 1, 1232, &[(10, &CLIENT_COOKIE)]);
    let mac = tsig::sign_request(&mut q, &key, NOW, 300).unwrap();
    let mut buf = Vec::new();
    let l = limits(None, true);
    let got =
        respond_signed(&catalog(), &q, &mut buf, Transport::Udp, &l, |_| Some(&key), NOW, Some(client().ip));
    assert_eq!((got.outcome, got.cookie, got.badcookie), (Outcome::Reply, CookieStatus::ClientOnly, false));
    tsig::verify_response(&buf, &key, &mac, NOW).expect("signed");
    let r = read(&buf);
    assert_eq!((r.rcode, r.answers.len(), r.option(10).map(<[u8]>::len)), (0, 1, Some(24)));
}
