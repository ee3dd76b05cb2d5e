//! Tests of DNSSEC answers: Knot's captured answers for the signed zones
//! of testdata/dnssec compared section by section, and unit tests of what
//! the comparison does not reach (truncation, DO clear, updates).

use std::path::PathBuf;
use std::sync::Arc;

use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;

use crate::answer::{Limits, Outcome, Transport, respond};
use crate::catalog::Catalog;
use crate::message::{flags, rcode};
use crate::name;
use crate::nsec3;
use crate::rtype::code;
use crate::zone::{Change, Zone};
use crate::zonefile;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/dnssec")
}

fn signed_zone(mode: &str) -> Zone {
    let apex = name::from_text("dnssec.test.", None).unwrap();
    let text = std::fs::read_to_string(testdata().join(format!("dnssec.test.{mode}.signed"))).unwrap();
    Zone::build(&apex, zonefile::parse(&text, &apex).unwrap(), 7).unwrap()
}

/// A response as flags word and the records of each section, rendered as
/// text (names decompressed) and sorted: order within a section carries
/// no meaning (RFC 2181 §5).
#[derive(Debug, PartialEq, Eq)]
struct Sections {
    flags: u16,
    records: [Vec<String>; 3],
}

fn sections(msg: &[u8]) -> Sections {
    let m = Message::from_octets(msg).unwrap();
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let mut records: [Vec<String>; 3] = Default::default();
    let mut section = m.answer().unwrap();
    for (i, out) in records.iter_mut().enumerate() {
        for rr in section.by_ref() {
            let rr = rr.unwrap().to_any_record::<AllRecordData<_, ParsedName<_>>>().unwrap();
            out.push(format!("{} {} {} {}", rr.owner(), rr.ttl().as_secs(), rr.rtype(), rr.data()));
        }
        out.sort();
        if i < 2 {
            section = section.next_section().unwrap().unwrap();
        }
    }
    Sections { flags, records }
}

/// An intended difference from Knot: the query's file stem, and how
/// Knot's answer is adjusted into ours.
type Difference<'a> = (&'a str, &'a dyn Fn(&mut Sections));

/// Answers every captured query and compares with Knot's response.
/// Returns how many were compared.
fn compare_with_knot(mode: &str, differences: &[Difference<'_>]) -> usize {
    let zone = signed_zone(mode);
    let catalog = Catalog::new().with_zone(Arc::new(zone));
    let dir = testdata().join(mode);
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".query").map(String::from))
        .collect();
    stems.sort();
    let mut failures = Vec::new();
    for stem in &stems {
        let query = std::fs::read(dir.join(format!("{stem}.query"))).unwrap();
        let knot = std::fs::read(dir.join(format!("{stem}.response"))).unwrap();
        let mut buf = Vec::new();
        assert_eq!(respond(&catalog, &query, &mut buf, Transport::Udp, &Limits::default()), Outcome::Reply);
        assert_eq!(buf[..2], query[..2], "{mode}/{stem}: ID");
        let mut want = sections(&knot);
        for (name, adjust) in differences {
            if name == stem {
                adjust(&mut want);
            }
        }
        let got = sections(&buf);
        if got != want {
            failures.push(format!("{mode}/{stem}:\n  knot: {want:?}\n  ours: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), stems.len(), failures.join("\n"));
    stems.len()
}

#[test]
fn nsec_answers_match_knot() {
    assert!(compare_with_knot("nsec", &[]) >= 40);
}

#[test]
fn nsec3_answers_match_knot() {
    // RFC 5155 §7.2.8: a query with DO set for type NSEC3 at an NSEC3
    // owner name "MUST return only the NSEC3 RR and its RRSIG as the
    // answer". Knot answers NXDOMAIN as for any other type there; we
    // follow the RFC. The expected answer is the matching NSEC3 (which
    // Knot's NXDOMAIN proof carries, as the name is www's hash) moved to
    // the answer section.
    let owner_nsec3 = |s: &mut Sections| {
        let owner =
            nsec3::base32hex(&nsec3::hash(&name::from_text("www.dnssec.test.", None).unwrap(), &[], 0));
        let (answer, _): (Vec<String>, Vec<String>) =
            s.records[1].drain(..).partition(|rr| rr.starts_with(&format!("{owner}.")));
        s.records[0] = answer;
        s.flags &= !0x000F;
    };
    assert!(compare_with_knot("nsec3", &[("nsec3-owner-nsec3", &owner_nsec3)]) >= 40);
}

fn wire(s: &str) -> Box<[u8]> {
    name::from_text(s, None).unwrap()
}

/// A query with EDNS (`payload`) and the DO bit as given.
fn query(qname: &str, qtype: u16, payload: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    m.extend_from_slice(&wire(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&[0, 0, 41]);
    m.extend_from_slice(&payload.to_be_bytes());
    m.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    m
}

fn ask(catalog: &Catalog, q: &[u8], transport: Transport) -> Vec<u8> {
    let mut buf = Vec::new();
    assert_eq!(respond(catalog, q, &mut buf, transport, &Limits::default()), Outcome::Reply);
    buf
}

fn types(records: &[String]) -> Vec<String> {
    records.iter().map(|r| r.split(' ').nth(2).unwrap().to_string()).collect()
}

fn signed(mode: &str) -> Catalog {
    Catalog::new().with_zone(Arc::new(signed_zone(mode)))
}

#[test]
fn without_do_a_signed_zone_answers_without_dnssec_records() {
    let catalog = signed("nsec3");
    for (qname, qtype) in
        [("www.dnssec.test.", code::A), ("nope.dnssec.test.", code::A), ("host.w.dnssec.test.", code::MX)]
    {
        let r = sections(&ask(&catalog, &query(qname, qtype, 1232, false), Transport::Udp));
        let all: Vec<String> = r.records.iter().flat_map(|s| types(s)).collect();
        assert!(!all.iter().any(|t| ["RRSIG", "NSEC", "NSEC3"].contains(&t.as_str())), "{qname}: {all:?}");
    }
}

#[test]
fn an_unsigned_zone_answers_alike_with_and_without_do() {
    let apex = wire("dnssec.test.");
    let text = std::fs::read_to_string(testdata().join("dnssec.test.zone")).unwrap();
    let catalog = Catalog::new()
        .with_zone(Arc::new(Zone::build(&apex, zonefile::parse(&text, &apex).unwrap(), 1).unwrap()));
    for (qname, qtype) in [
        ("www.dnssec.test.", code::A),
        ("dnssec.test.", code::MX),
        ("nope.dnssec.test.", code::A),
        ("host.w.dnssec.test.", code::A),
        ("wc.dnssec.test.", code::A),
        ("host.secure.dnssec.test.", code::A),
        ("insecure.dnssec.test.", code::DS),
    ] {
        let plain = ask(&catalog, &query(qname, qtype, 1232, false), Transport::Udp);
        let mut with_do = ask(&catalog, &query(qname, qtype, 1232, true), Transport::Udp);
        // Only the DO bit echoed in the OPT record differs (RFC 3225 §3).
        let at = with_do.len() - 4;
        assert_eq!(with_do[at], 0x80, "{qname}");
        with_do[at] = 0;
        assert_eq!(plain, with_do, "{qname}");
    }
}

/// With every UDP size from 512 up, a response either carries the full
/// answer and authority sections or sets TC: signatures and proofs are
/// required (RFC 4035 §3.1.1, §3.1.3), and never split. And TC is set only
/// when it must be: at every size the whole answer (as sent over TCP)
/// fits in, the UDP response is that whole answer, without TC. Each of
/// these names fits at 1232 octets.
#[test]
fn required_signatures_and_proofs_that_do_not_fit_set_tc() {
    for mode in ["nsec", "nsec3"] {
        let catalog = signed(mode);
        for (qname, qtype) in [
            ("dnssec.test.", code::NS),
            ("dnssec.test.", code::DNSKEY),
            ("nope.dnssec.test.", code::A),
            ("host.w.dnssec.test.", code::MX),
            ("wc.dnssec.test.", code::A),
            ("host.secure.dnssec.test.", code::A),
            ("www.insecure.dnssec.test.", code::A),
        ] {
            let whole = ask(&catalog, &query(qname, qtype, 1232, true), Transport::Tcp);
            let full = sections(&whole);
            assert_eq!(full.flags & flags::TC, 0);
            assert!(whole.len() <= 1232, "{mode} {qname} {qtype}: {} octets", whole.len());
            let mut truncated = 0;
            for payload in (512..=1232).step_by(8) {
                let msg = ask(&catalog, &query(qname, qtype, payload, true), Transport::Udp);
                let r = sections(&msg);
                if whole.len() <= payload as usize {
                    assert_eq!(msg, whole, "{mode} {qname} {qtype} at {payload}: the whole answer fits");
                }
                if r.flags & flags::TC != 0 {
                    truncated += 1;
                    continue;
                }
                assert_eq!(r.records[..2], full.records[..2], "{mode} {qname} {qtype} at {payload}");
                // Optional additional data: an RRSIG only with its RRset.
                for rr in r.records[2].iter().filter(|rr| rr.contains(" RRSIG ")) {
                    let mut f = rr.split(' ');
                    let (owner, covered) = (f.next().unwrap(), f.nth(3).unwrap());
                    let covered = format!(" {covered} ");
                    assert!(
                        r.records[2].iter().any(|o| o.starts_with(owner) && o.contains(&covered)),
                        "{mode} {qname}: {rr} without its RRset"
                    );
                }
            }
            if mode == "nsec3" && qname.starts_with("nope") {
                // 754 octets with TCP; a UDP size below that must truncate.
                assert!(truncated > 0, "{mode}: the NXDOMAIN proof never truncated");
            }
        }
    }
}

#[test]
fn wildcard_proofs_come_before_additional_data() {
    let zone = signed_zone("nsec");
    let mx = [&[0, 10][..], &wire("mail.dnssec.test.")].concat();
    let add =
        crate::zone::Record { owner: wire("*.w.dnssec.test."), rtype: code::MX, ttl: 120, rdata: mx.into() };
    let catalog = Catalog::new().with_zone(Arc::new(zone.apply(&[Change::Add(add)]).unwrap()));
    let r = sections(&ask(&catalog, &query("host.w.dnssec.test.", code::MX, 1232, true), Transport::Udp));
    assert_eq!(types(&r.records[0]), ["MX"]);
    assert_eq!(types(&r.records[1]), ["NSEC", "RRSIG"]);
    // Sorted text: the OPT's root owner comes first.
    assert_eq!(types(&r.records[2]), ["OPT", "A", "AAAA", "RRSIG", "RRSIG"]);
}

#[test]
fn denial_proofs_follow_zone_changes() {
    let zone = signed_zone("nsec");
    let nsec = |owner: &str, next: &str| crate::zone::Record {
        owner: wire(owner),
        rtype: code::NSEC,
        ttl: 300,
        rdata: [&wire(next)[..], &[0, 1, 0x40]].concat().into(),
    };
    let old = zone
        .records()
        .into_iter()
        .find(|r| r.rtype == code::NSEC && r.owner[..] == wire("mail.dnssec.test.")[..])
        .unwrap();
    let z2 = zone
        .apply(&[
            Change::Remove(old),
            Change::Add(nsec("mail.dnssec.test.", "n.dnssec.test.")),
            Change::Add(nsec("n.dnssec.test.", "ns1.dnssec.test.")),
        ])
        .unwrap();
    let q = query("nope.dnssec.test.", code::A, 1232, true);
    let before = sections(&ask(&Catalog::new().with_zone(Arc::new(zone)), &q, Transport::Udp));
    let after = sections(&ask(&Catalog::new().with_zone(Arc::new(z2)), &q, Transport::Udp));
    let covering = |s: &Sections| {
        s.records[1]
            .iter()
            .filter(|r| r.contains(" NSEC ") && !r.starts_with("dnssec.test"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(covering(&before)[0].starts_with("mail.dnssec.test 300 NSEC ns1."), "{before:?}");
    assert_eq!(covering(&after), ["n.dnssec.test 300 NSEC ns1.dnssec.test. A"]);
    assert_eq!(after.flags & 0xF, rcode::NXDOMAIN);
}

#[test]
fn nsec_query_at_an_alias_answers_its_nsec_not_the_target() {
    let catalog = signed("nsec");
    let r = sections(&ask(&catalog, &query("alias.dnssec.test.", code::NSEC, 1232, true), Transport::Udp));
    // RFC 2181 §10.1: the NSEC lives beside the CNAME; Knot answers it
    // from the alias too.
    assert_eq!(types(&r.records[0]), ["NSEC", "RRSIG"], "{r:?}");
    assert!(r.records[0].iter().all(|rr| rr.starts_with("alias.dnssec.test ")), "{r:?}");
    assert_eq!(r.flags & 0xF, rcode::NOERROR);
    // In an NSEC3 zone the alias has no NSEC: NODATA, not the target.
    let catalog = signed("nsec3");
    let r = sections(&ask(&catalog, &query("alias.dnssec.test.", code::NSEC, 1232, true), Transport::Udp));
    assert!(r.records[0].is_empty(), "{r:?}");
    assert_eq!(types(&r.records[1]), ["NSEC3", "RRSIG", "RRSIG", "SOA"], "{r:?}");
}

#[test]
fn rrsig_query_from_a_wildcard_carries_the_wildcard_proof() {
    for (mode, denial) in [("nsec", "NSEC"), ("nsec3", "NSEC3")] {
        let catalog = signed(mode);
        let q = query("host.w.dnssec.test.", code::RRSIG, 1232, true);
        let r = sections(&ask(&catalog, &q, Transport::Udp));
        assert_eq!(types(&r.records[0]), ["RRSIG"], "{mode}: {r:?}");
        // RFC 4035 §3.1.3.3, RFC 5155 §7.2.6: the name itself does not exist.
        assert_eq!(types(&r.records[1]), [denial, "RRSIG"], "{mode}: {r:?}");
    }
}

/// The additional section's record types in the order they were sent.
fn additional_in_order(msg: &[u8]) -> Vec<String> {
    let m = Message::from_octets(msg).unwrap();
    let additional = m.additional().unwrap();
    additional.map(|rr| rr.unwrap().rtype().to_string()).filter(|t| t != "OPT").collect()
}

#[test]
fn additional_signatures_follow_all_additional_rrsets() {
    let catalog = signed("nsec");
    let q = query("dnssec.test.", code::NS, 1232, true);
    let full = additional_in_order(&ask(&catalog, &q, Transport::Udp));
    assert_eq!(full, ["A", "AAAA", "A", "RRSIG", "RRSIG", "RRSIG"]);
    // Where not everything fits, addresses win over signatures (optional,
    // never TC: RFC 4035 §3.1.1), as with Knot.
    let mut seen_partial = false;
    for payload in (512..1232).step_by(4) {
        let msg = ask(&catalog, &query("dnssec.test.", code::NS, payload, true), Transport::Udp);
        assert_eq!(sections(&msg).flags & flags::TC, 0, "at {payload}");
        let got = additional_in_order(&msg);
        assert_eq!(got[..], full[..got.len()], "at {payload}");
        seen_partial |= got.len() < full.len() && got.len() >= 3;
    }
    assert!(seen_partial);
}

#[test]
fn svcb_targets_lacking_types_are_proven_in_additional() {
    for (mode, denial) in [("nsec", "NSEC"), ("nsec3", "NSEC3")] {
        let zone = signed_zone(mode);
        let svcb = [&[0, 1][..], &wire("www.dnssec.test.")].concat();
        let add = crate::zone::Record {
            owner: wire("svc.dnssec.test."),
            rtype: code::SVCB,
            ttl: 300,
            rdata: svcb.into(),
        };
        let catalog = Catalog::new().with_zone(Arc::new(zone.apply(&[Change::Add(add)]).unwrap()));
        let r = ask(&catalog, &query("svc.dnssec.test.", code::SVCB, 1232, true), Transport::Udp);
        // RFC 9460 §4.2: www has A and AAAA but no SVCB; its NSEC (or the
        // NSEC3 matching it) shows which, signed like the addresses.
        assert_eq!(additional_in_order(&r), ["A", "AAAA", denial, "RRSIG", "RRSIG", "RRSIG"], "{mode}");
        // Without DO, the addresses only.
        let r = ask(&catalog, &query("svc.dnssec.test.", code::SVCB, 1232, false), Transport::Udp);
        assert_eq!(additional_in_order(&r), ["A", "AAAA"], "{mode}");
    }
}
