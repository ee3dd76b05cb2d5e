//! Transfer streams read back with NLnet Labs `domain`: every message
//! parses (compression pointers included), and the records of all the
//! messages together are exactly what was to be sent, in the RFC's
//! layout.

use domain::base::rdata::ComposeRecordData;
use domain::base::{Message, ParsedName, ToName};
use domain::rdata::AllRecordData;

use super::*;
use crate::message::rcode;
use crate::tsig::{self, Key, StreamVerifier};
use crate::xfr::delta::tests::{apex, delta, rec, soa};
use crate::xfr::request::{Kind, decode_request};
use crate::xfr::{IxfrPlan, plan_ixfr};
use crate::zone::{soa_serial, sort_canonical};
use crate::zonefile;

const NSEC3_ZONE: &str = include_str!("../../../../testdata/dnssec/dnssec.test.nsec3.signed");

/// What a message of a transfer holds, read by `domain`.
#[derive(Debug)]
pub(in crate::xfr) struct Read {
    /// The answer records, names decompressed.
    pub(in crate::xfr) records: Vec<Record>,
    /// The additional section has an OPT.
    pub(in crate::xfr) opt: bool,
}

/// Reads one message of a transfer answering `request`, checking what
/// every such message must be: a response to the request's ID, not
/// truncated, NOERROR, the question echoed, nothing in the authority section and
/// only OPT and TSIG in the additional section.
pub(in crate::xfr) fn read(msg: &[u8], request: &[u8]) -> Read {
    assert!(msg.len() <= 65535);
    let m = Message::from_octets(msg).expect("domain reads the message");
    let h = m.header();
    assert_eq!(&msg[..2], &request[..2], "the request's ID");
    assert!(h.qr() && !h.tc(), "QR set, TC clear");
    assert_eq!(msg[3] & 0xF, rcode::NOERROR as u8);
    let qlen = decode_request(request).unwrap().query.question_end;
    assert_eq!(&msg[4..6], &[0, 1], "one question");
    assert_eq!(&msg[12..qlen], &request[12..qlen], "the question echoed");
    assert_eq!(m.header_counts().nscount(), 0);
    let mut records = Vec::new();
    for rr in m.answer().unwrap() {
        let rr = rr.unwrap().to_any_record::<AllRecordData<_, ParsedName<_>>>().expect("rdata parses");
        let mut rdata = Vec::new();
        rr.data().compose_rdata(&mut rdata).unwrap();
        records.push(Record {
            owner: rr.owner().to_vec().as_octets().as_slice().into(),
            rtype: rr.rtype().to_int(),
            ttl: rr.ttl().as_secs(),
            rdata: rdata.into(),
        });
        assert_eq!(rr.class().to_int(), 1);
    }
    let mut opt = false;
    for rr in m.additional().unwrap() {
        match rr.unwrap().rtype().to_int() {
            code::OPT => opt = true,
            code::TSIG => {}
            other => panic!("type {other} in the additional section"),
        }
    }
    Read { records, opt }
}

/// Every message of a transfer, unsigned.
fn messages(mut t: Transfer<'_>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while t.next_message(&mut buf, 0).unwrap() {
        // RFC 5936 §2.2.1: QR and AA set, opcode QUERY, TC, RA, Z, AD
        // and CD clear; these requests have RD clear.
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 0x8400, "the flag word");
        out.push(buf.clone());
        assert!(out.len() < 100_000, "the transfer never ends");
    }
    assert!(t.is_done() && buf.is_empty());
    assert!(!t.next_message(&mut buf, 0).unwrap(), "done stays done");
    assert_eq!(t.messages(), out.len());
    out
}

/// All the records of a transfer, in order.
fn records(msgs: &[Vec<u8>], request: &[u8]) -> Vec<Record> {
    msgs.iter().flat_map(|m| read(m, request).records).collect()
}

/// An AXFR request for `zone`, with EDNS when asked.
fn axfr_request(zone: &str, edns: bool) -> Vec<u8> {
    let mut m = vec![0xAB, 0xCD, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    m.extend_from_slice(&name::from_text(zone, None).unwrap());
    m.extend_from_slice(&[0, 252, 0, 1]);
    if edns {
        m.extend_from_slice(&[0, 0, 41, 16, 0, 0, 0, 0x80, 0, 0, 0]);
    }
    m
}

/// An IXFR request for example.test. from `serial`.
fn ixfr_request(serial: u32) -> Vec<u8> {
    let mut m = vec![0x0F, 0x0F, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
    m.extend_from_slice(&apex());
    m.extend_from_slice(&[0, 251, 0, 1, 0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
    m.extend_from_slice(&serial.to_be_bytes());
    m.extend_from_slice(&[0; 16]);
    m
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    sort_canonical(&mut v);
    v
}

fn nsec3_zone() -> Zone {
    let apex = name::from_text("dnssec.test.", None).unwrap();
    let mut records = zonefile::parse(NSEC3_ZONE, &apex).unwrap();
    // Data occluded by the DNAME and below a cut, kept as stored.
    records.extend(zonefile::parse("x.dn 60 A 192.0.2.77\ndeep.ns.insecure 60 TXT below\n", &apex).unwrap());
    Zone::build(&apex, records, 7).unwrap()
}

/// A zone of `hosts` names with an A and a TXT each, and more types.
fn big_zone(hosts: usize) -> Zone {
    let mut text = String::from(
        "@ 3600 SOA ns1 hostmaster 9 7200 3600 1209600 300\n@ 3600 NS ns1\n@ 3600 MX 10 mail\nns1 60 A 192.0.2.1\n",
    );
    for i in 0..hosts {
        text.push_str(&format!("h{i}.sub 300 A 192.0.2.{}\nh{i}.sub 300 TXT \"host {i}\"\n", i % 250 + 1));
        text.push_str(&format!("c{i} 300 CNAME h{i}.sub\n"));
    }
    Zone::build(&apex(), zonefile::parse(&text, &apex()).unwrap(), 3).unwrap()
}

#[test]
fn an_axfr_sends_every_record_between_two_soas() {
    let zone = nsec3_zone();
    for edns in [false, true] {
        let request = axfr_request("dnssec.test.", edns);
        let r = decode_request(&request).unwrap();
        let msgs = messages(Transfer::axfr(&zone, &r, &Options::default()).unwrap());
        assert_eq!(msgs.len(), 1, "a small zone is one message");
        assert_eq!(read(&msgs[0], &request).opt, edns, "an OPT iff the request had one");
        let got = records(&msgs, &request);
        let soa = zone.records().into_iter().find(|r| r.rtype == code::SOA).unwrap();
        assert_eq!(got.first(), Some(&soa), "SOA first (RFC 5936 §2.2)");
        assert_eq!(got.last(), Some(&soa), "SOA last");
        assert_eq!(got.iter().filter(|r| r.rtype == code::SOA).count(), 2, "and nowhere else");
        let body = got[1..got.len() - 1].to_vec();
        let mut want = zone.records();
        want.retain(|r| r.rtype != code::SOA);
        assert_eq!(sorted(body), sorted(want));
        for t in [code::NSEC3, code::RRSIG, code::DNSKEY, code::NSEC3PARAM, code::DNAME] {
            assert!(got.iter().any(|r| r.rtype == t), "type {t} is transferred");
        }
        let occluded = name::from_text("x.dn.dnssec.test.", None).unwrap();
        assert!(got.iter().any(|r| r.owner == occluded), "occluded data as stored");
    }
}

#[test]
fn a_large_zone_fills_messages_up_to_the_bound() {
    let zone = big_zone(2000);
    let request = axfr_request("example.test.", true);
    let r = decode_request(&request).unwrap();
    for max in [512, 4096, Options::DEFAULT_MAX_MESSAGE, 65535] {
        let options = Options { max_message: max, ..Options::default() };
        let msgs = messages(Transfer::axfr(&zone, &r, &options).unwrap());
        assert!(msgs.len() > 1, "{max}: several messages");
        for (i, m) in msgs.iter().enumerate() {
            assert!(m.len() <= max, "{max}: message {i} has {} octets", m.len());
            // Full, but for the last: the next record (at most 70 octets
            // here) did not fit.
            if i + 1 < msgs.len() {
                assert!(m.len() + 70 > max, "{max}: message {i} has only {} octets", m.len());
            }
        }
        let got = records(&msgs, &request);
        assert_eq!(got.len(), zone.records().len() + 1);
        let mut all = got.clone();
        all.pop();
        assert_eq!(sorted(all), sorted(zone.records()));
    }
}

#[test]
fn names_are_compressed_within_each_message() {
    let zone = big_zone(300);
    let request = axfr_request("example.test.", false);
    let r = decode_request(&request).unwrap();
    let msgs = messages(Transfer::axfr(&zone, &r, &Options::default()).unwrap());
    let sent: usize = msgs.iter().map(|m| m.len()).sum();
    // Each record written out in full: owner, 10 octets, rdata.
    let plain: usize = zone.records().iter().map(|r| r.owner.len() + 10 + r.rdata.len()).sum();
    assert!(sent * 10 < plain * 6, "{sent} octets sent for {plain} octets of records");
    // The CNAME targets, compressed in rdata (RFC 1035 §4.1.4), read back
    // whole: `read` decompressed them.
    let got = records(&msgs, &request);
    let target = name::from_text("h7.sub.example.test.", None).unwrap();
    assert!(got.iter().any(|r| r.rtype == code::CNAME && r.rdata == target));
}

/// Regression: names in a transfer took the case of an earlier name
/// they were compressed against (an owner that of a CNAME target, the
/// apex that of the question), so a secondary served other spellings
/// than the zone has.
#[test]
fn a_transfer_keeps_the_case_of_every_name() {
    let text = "@ 3600 SOA NS1 Hostmaster 1 2 3 4 5\n@ 3600 NS ns1\nloop1 60 CNAME LOOP1\nLOOP1 60 A 192.0.2.1\n\
                MiXeD 60 MX 10 mixed\nmixed 60 A 192.0.2.2\nwww.Sub 60 A 192.0.2.3\nx.sub 60 A 192.0.2.4\n";
    let apex = name::from_text("Example.Test.", None).unwrap();
    let zone = Zone::build(&apex, zonefile::parse(text, &apex).unwrap(), 1).unwrap();
    for request in [axfr_request("EXAMPLE.TEST.", false), axfr_request("example.test.", true)] {
        let r = decode_request(&request).unwrap();
        let msgs = messages(Transfer::axfr(&zone, &r, &Options::default()).unwrap());
        let mut got = records(&msgs, &request);
        got.pop();
        assert_eq!(sorted(got), sorted(zone.records()));
    }
}

#[test]
fn an_rrset_larger_than_a_message_goes_on_in_the_next() {
    // 120 TXT records of 250 octets: about 30 KB, within the RRset limit.
    let text: String = (0..120).map(|i| format!("big 60 TXT \"{i:03}{}\"\n", "x".repeat(240))).collect();
    let mut data = zonefile::parse(&text, &apex()).unwrap();
    data.push(soa(1));
    let zone = Zone::build(&apex(), data, 1).unwrap();
    let request = axfr_request("example.test.", false);
    let r = decode_request(&request).unwrap();
    let options = Options { max_message: 4096, ..Options::default() };
    let msgs = messages(Transfer::axfr(&zone, &r, &options).unwrap());
    let per_message: Vec<usize> = msgs.iter().map(|m| read(m, &request).records.len()).collect();
    assert!(msgs.len() >= 8, "{per_message:?}");
    assert!(msgs.iter().all(|m| m.len() <= 4096));
    let got = records(&msgs, &request);
    let txt: Vec<Record> = got.iter().filter(|r| r.rtype == code::TXT).cloned().collect();
    assert_eq!(sorted(txt), sorted(zone.records().into_iter().filter(|r| r.rtype == code::TXT).collect()));
}

#[test]
fn a_record_larger_than_the_bound_gets_a_message_of_its_own() {
    let huge = format!("huge 60 TXT {}\n", vec![format!("\"{}\"", "y".repeat(250)); 80].join(" "));
    let mut data = zonefile::parse(&format!("{huge}a 60 A 192.0.2.1\nb 60 A 192.0.2.2\n"), &apex()).unwrap();
    data.push(soa(1));
    let zone = Zone::build(&apex(), data, 1).unwrap();
    let request = axfr_request("example.test.", false);
    let r = decode_request(&request).unwrap();
    let msgs = messages(Transfer::axfr(&zone, &r, &Options::default()).unwrap());
    let big: Vec<&Vec<u8>> = msgs.iter().filter(|m| m.len() > Options::DEFAULT_MAX_MESSAGE).collect();
    assert_eq!(big.len(), 1, "one message over the usual size");
    let alone = read(big[0], &request).records;
    assert_eq!((alone.len(), alone[0].rtype), (1, code::TXT), "holding that record alone");
    assert_eq!(sorted(records(&msgs, &request)[1..].to_vec()), sorted(zone.records()));
}

#[test]
fn a_record_larger_than_any_message_is_an_error() {
    let huge = Record {
        owner: name::from_text("huge.example.test.", None).unwrap(),
        rtype: code::TXT,
        ttl: 60,
        rdata: vec![0; 65500].into(),
    };
    let zone = Zone::build(&apex(), vec![soa(1), huge], 1).unwrap();
    let request = axfr_request("example.test.", false);
    let r = decode_request(&request).unwrap();
    let mut t = Transfer::axfr(&zone, &r, &Options::default()).unwrap();
    let mut buf = Vec::new();
    assert!(t.next_message(&mut buf, 0).unwrap(), "the SOA");
    assert_eq!(
        t.next_message(&mut buf, 0),
        Err(XfrError::RecordTooLarge { owner: "huge.example.test.".into(), rtype: code::TXT })
    );
}

#[test]
fn a_zone_without_soa_cannot_be_transferred() {
    let zone = Zone::build(&apex(), vec![rec("a 60 A 192.0.2.1")], 1).unwrap();
    let request = axfr_request("example.test.", false);
    let r = decode_request(&request).unwrap();
    assert_eq!(Transfer::axfr(&zone, &r, &Options::default()).err(), Some(XfrError::NoSoa));
    assert_eq!(Transfer::soa_only(&zone, &r, &Options::default()).err(), Some(XfrError::NoSoa));
}

/// The records an IXFR of `deltas` must send, in order (RFC 1995 §4).
fn ixfr_layout(deltas: &[Delta]) -> Vec<Record> {
    let current = deltas.last().unwrap().new_soa.clone();
    let mut want = vec![current.clone()];
    for d in deltas {
        want.push(d.old_soa.clone());
        want.extend(d.removed.iter().cloned());
        want.push(d.new_soa.clone());
        want.extend(d.added.iter().cloned());
    }
    want.push(current);
    want
}

#[test]
fn an_ixfr_of_one_version() {
    let deltas = [delta(1, 2, &["a 60 A 192.0.2.1", "a 60 TXT gone"], &["b 60 A 192.0.2.2"])];
    let request = ixfr_request(1);
    let r = decode_request(&request).unwrap();
    assert_eq!(r.kind, Kind::Ixfr { serial: 1 });
    assert_eq!(plan_ixfr(1, 2, &deltas), IxfrPlan::Incremental { from: 0 });
    let msgs = messages(Transfer::ixfr(&deltas, &r, &Options::default()).unwrap());
    assert_eq!(msgs.len(), 1);
    let got = records(&msgs, &request);
    assert_eq!(got, ixfr_layout(&deltas));
    let serials: Vec<u32> =
        got.iter().filter(|r| r.rtype == code::SOA).map(|r| soa_serial(&r.rdata).unwrap()).collect();
    assert_eq!(serials, [2, 1, 2, 2], "new, old, new, new");
}

#[test]
fn an_ixfr_of_three_versions_across_messages() {
    let many: Vec<String> = (0..200).map(|i| format!("n{i} 60 TXT \"added in version three {i}\"")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let deltas = [
        delta(7, 8, &["a 60 A 192.0.2.1"], &["a 60 A 192.0.2.11"]),
        delta(8, 9, &[], &many),
        delta(9, 10, &["n5 60 TXT \"added in version three 5\"", "b 60 MX 10 mail"], &[]),
    ];
    let request = ixfr_request(7);
    let r = decode_request(&request).unwrap();
    let current = 10;
    let IxfrPlan::Incremental { from } = plan_ixfr(7, current, &deltas) else { panic!("not incremental") };
    let options = Options { max_message: 1024, ..Options::default() };
    let msgs = messages(Transfer::ixfr(&deltas[from..], &r, &options).unwrap());
    assert!(msgs.len() > 3 && msgs.iter().all(|m| m.len() <= 1024), "{} messages", msgs.len());
    assert_eq!(records(&msgs, &request), ixfr_layout(&deltas));
    // From the middle of the history: the last two versions only.
    let IxfrPlan::Incremental { from } = plan_ixfr(8, current, &deltas) else { panic!("not incremental") };
    let msgs = messages(Transfer::ixfr(&deltas[from..], &r, &options).unwrap());
    assert_eq!(records(&msgs, &request), ixfr_layout(&deltas[1..]));
}

#[test]
fn an_up_to_date_client_gets_the_current_soa_alone() {
    let zone = big_zone(10);
    for client in [9, 10, 2_000_000_000] {
        let request = ixfr_request(client);
        let r = decode_request(&request).unwrap();
        assert_eq!(plan_ixfr(client, zone.serial().unwrap(), &[]), IxfrPlan::UpToDate, "{client}");
        let msgs = messages(Transfer::soa_only(&zone, &r, &Options::default()).unwrap());
        assert_eq!(msgs.len(), 1);
        let got = records(&msgs, &request);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].rtype, soa_serial(&got[0].rdata)), (code::SOA, Some(9)));
    }
    // Behind and no history: the whole zone, answering the IXFR question.
    let request = ixfr_request(8);
    let r = decode_request(&request).unwrap();
    assert_eq!(plan_ixfr(8, 9, &[]), IxfrPlan::Full);
    let msgs = messages(Transfer::axfr(&zone, &r, &Options::default()).unwrap());
    assert_eq!(records(&msgs, &request).len(), zone.records().len() + 1);
}

#[test]
fn an_ixfr_across_the_serial_wrap() {
    let deltas = [
        delta(u32::MAX - 1, u32::MAX, &[], &["a 60 A 192.0.2.1"]),
        delta(u32::MAX, 0, &["a 60 A 192.0.2.1"], &["b 60 A 192.0.2.2"]),
        delta(0, 1, &[], &["c 60 A 192.0.2.3"]),
    ];
    let request = ixfr_request(u32::MAX);
    let r = decode_request(&request).unwrap();
    let IxfrPlan::Incremental { from } = plan_ixfr(u32::MAX, 1, &deltas) else { panic!("not incremental") };
    assert_eq!(from, 1);
    let msgs = messages(Transfer::ixfr(&deltas[from..], &r, &Options::default()).unwrap());
    let got = records(&msgs, &request);
    assert_eq!(got, ixfr_layout(&deltas[1..]));
    let serials: Vec<u32> =
        got.iter().filter(|r| r.rtype == code::SOA).map(|r| soa_serial(&r.rdata).unwrap()).collect();
    assert_eq!(serials, [1, u32::MAX, 0, 0, 1, 1]);
}

#[test]
fn deltas_that_are_not_one_chain_are_refused() {
    let request = ixfr_request(1);
    let r = decode_request(&request).unwrap();
    let gap = [delta(1, 2, &[], &[]), delta(3, 4, &[], &[])];
    assert_eq!(Transfer::ixfr(&gap, &r, &Options::default()).err(), Some(XfrError::NotAChain));
    assert_eq!(Transfer::ixfr(&[], &r, &Options::default()).err(), Some(XfrError::NotAChain));
}

fn key() -> Key {
    Key::new(&name::from_text("xfr.key.", None).unwrap(), tsig::Algorithm::HmacSha256, b"k".repeat(32))
}

/// A signed AXFR request and its MAC.
fn signed_request(key: &Key) -> (Vec<u8>, Vec<u8>) {
    let mut m = axfr_request("example.test.", false);
    let mac = tsig::sign_request(&mut m, key, 1_700_000_000, 300).unwrap();
    (m, mac)
}

/// Every message of a signed AXFR of `zone`, signed at `now`.
fn signed_axfr(zone: &Zone, request: &[u8], key: &Key, max: usize) -> Vec<Vec<u8>> {
    let r = decode_request(request).unwrap();
    let t = r.tsig.as_ref().unwrap();
    let v = tsig::verify_request(request, t, |_| Some(key), 1_700_000_000).unwrap();
    let options = Options { max_message: max, ..Options::default() };
    let mut transfer = Transfer::axfr(zone, &r, &options).unwrap().signed(StreamSigner::for_request(&v));
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut now = 1_700_000_000;
    while transfer.next_message(&mut buf, now).unwrap() {
        out.push(buf.clone());
        now += 1;
    }
    out
}

#[test]
fn every_message_of_a_signed_transfer_is_signed_and_chained() {
    let key = key();
    let (request, mac) = signed_request(&key);
    let zone = big_zone(1500);
    for max in [1024, Options::DEFAULT_MAX_MESSAGE] {
        let msgs = signed_axfr(&zone, &request, &key, max);
        assert!(msgs.len() > 2, "{max}: {} messages", msgs.len());
        let mut v = StreamVerifier::new(&key, &mac);
        for (i, m) in msgs.iter().enumerate() {
            assert!(m.len() <= max, "{max}: the TSIG record fits the bound");
            assert!(tsig::find(m).unwrap().is_some(), "message {i} is signed");
            v.verify(m, 1_700_000_000 + i as u64).unwrap();
        }
        v.finish().unwrap();
        assert_eq!(v.signed(), msgs.len());
        // Read back, the records are the zone's.
        let mut all = records(&msgs, &request);
        all.pop();
        assert_eq!(sorted(all), sorted(zone.records()));
    }
}

#[test]
fn a_signed_stream_breaks_where_it_was_altered() {
    let key = key();
    let (request, mac) = signed_request(&key);
    let zone = big_zone(200);
    let msgs = signed_axfr(&zone, &request, &key, 1024);
    let check = |msgs: &[Vec<u8>]| -> Result<(), tsig::ResponseError> {
        let mut v = StreamVerifier::new(&key, &mac);
        for m in msgs {
            v.verify(m, 1_700_000_001)?;
        }
        v.finish()
    };
    check(&msgs).unwrap();
    let mut dropped = msgs.clone();
    dropped.remove(1);
    assert_eq!(check(&dropped), Err(tsig::ResponseError::BadSig), "a message dropped");
    let mut swapped = msgs.clone();
    swapped.swap(1, 2);
    assert_eq!(check(&swapped), Err(tsig::ResponseError::BadSig), "two messages swapped");
    let mut altered = msgs.clone();
    altered[2][40] ^= 1;
    assert!(check(&altered).is_err(), "an octet changed");
    let mut other_request = mac.clone();
    other_request[0] ^= 1;
    let mut v = StreamVerifier::new(&key, &other_request);
    assert_eq!(v.verify(&msgs[0], 1_700_000_000), Err(tsig::ResponseError::BadSig), "another request");
    assert_eq!(check(&msgs[..msgs.len() - 1]), Ok(()), "a prefix verifies; the caller sees no final SOA");
}
