//! Our transfers beside knotd's for the same zone and the same requests
//! (testdata/xfr/capture.py): the same records, the same IXFR layout,
//! messages of about the same size.

use std::collections::HashSet;

use super::stream::tests::read;
use super::*;
use crate::rtype::code;
use crate::zone::{Record, Zone, sort_canonical};
use crate::{name, zonefile};

const AXFR_REQUEST: &[u8] = include_bytes!("../../../../testdata/xfr/knot-axfr.request");
const AXFR_RESPONSE: &[u8] = include_bytes!("../../../../testdata/xfr/knot-axfr.response");
const IXFR_REQUEST: &[u8] = include_bytes!("../../../../testdata/xfr/knot-ixfr.request");
const IXFR_RESPONSE: &[u8] = include_bytes!("../../../../testdata/xfr/knot-ixfr.response");

/// The zone capture.py served at serial `version`, written as its
/// `zone_text` writes it.
fn knot_zone(version: u32) -> Vec<Record> {
    let mail_ttl = if version >= 3 { 60 } else { 3600 };
    let mut t = format!(
        "@ 3600 SOA ns1 hostmaster {version} 7200 3600 1209600 300\n@ 3600 NS ns1\n\
         @ 3600 NS ns2.example.net.\n@ 3600 MX 10 mail\nns1 3600 A 192.0.2.1\n\
         mail {mail_ttl} A 192.0.2.25\nwww 3600 CNAME host0\nsub 3600 NS ns.sub\nns.sub 3600 A 192.0.2.53\n"
    );
    let removed_by = |i: usize| match i {
        7 => Some(2),
        8 | 9 => Some(3),
        10 => Some(4),
        _ => None,
    };
    for i in 0..600 {
        if removed_by(i).is_some_and(|v| v <= version) {
            continue;
        }
        t.push_str(&format!("host{i} 300 A 192.0.2.{}\n", i % 250 + 1));
        t.push_str(&format!("host{i} 300 TXT \"record number {i} of the transfer test zone\"\n"));
    }
    for v in 2..=version {
        t.push_str(&format!("v{v} 600 AAAA 2001:db8::{v}\n"));
    }
    zonefile::parse(&t, &apex()).unwrap()
}

fn apex() -> Box<[u8]> {
    name::from_text("example.test.", None).unwrap()
}

fn split(mut stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let [hi, lo, rest @ ..] = stream {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        out.push(rest[..len].to_vec());
        stream = &rest[len..];
    }
    out
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    sort_canonical(&mut v);
    v
}

fn ours(mut t: Transfer<'_>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while t.next_message(&mut buf, 0).unwrap() {
        out.push(buf.clone());
    }
    out
}

#[test]
fn our_axfr_sends_what_knot_sends() {
    let knot = split(AXFR_RESPONSE);
    let mut theirs: Vec<Record> = knot.iter().flat_map(|m| read(m, AXFR_REQUEST).records).collect();
    theirs.pop();
    assert_eq!(sorted(theirs.clone()), sorted(knot_zone(4)), "knotd served the zone the test writes");

    let zone = Zone::build(&apex(), knot_zone(4), 5).unwrap();
    let r = decode_request(AXFR_REQUEST).unwrap();
    let msgs = ours(Transfer::axfr(&zone, &r, &Options::default()).unwrap());
    // kdig set RD and AD. RFC 5936 §2.2.1: RD copied, AD zero, and AA
    // set, which knotd leaves clear.
    let flag_word = |m: &Vec<u8>| u16::from_be_bytes([m[2], m[3]]);
    assert_eq!(flag_word(&AXFR_REQUEST.to_vec()), 0x0120);
    assert!(msgs.iter().all(|m| flag_word(m) == 0x8500));
    assert!(knot.iter().all(|m| flag_word(m) == 0x8100));
    let mut mine: Vec<Record> = msgs.iter().flat_map(|m| read(m, AXFR_REQUEST).records).collect();
    assert_eq!(mine.first(), theirs.first(), "the same SOA first");
    mine.pop();
    assert_eq!(sorted(mine), sorted(theirs));
    // Both fill 16 KiB messages, compressed as well: knotd's order of
    // names is canonical, ours the snapshot's hash order, and knotd's
    // messages carry a TSIG record that ours (unsigned here) do not.
    let (k, o): (usize, usize) = (knot.iter().map(Vec::len).sum(), msgs.iter().map(Vec::len).sum());
    assert_eq!(msgs.len(), knot.len());
    assert!(o * 100 < k * 105, "ours {o} octets, knotd's {k}");
}

/// The SOA serials of a record sequence, and the records between them as
/// sets (RFC 1995 §4 leaves the order within a list open).
fn layout(records: &[Record]) -> (Vec<u32>, Vec<HashSet<Record>>) {
    let mut serials = Vec::new();
    let mut lists = vec![HashSet::new()];
    for r in records {
        if r.rtype == code::SOA {
            serials.push(crate::zone::soa_serial(&r.rdata).unwrap());
            lists.push(HashSet::new());
        } else if let Some(l) = lists.last_mut() {
            l.insert(r.clone());
        }
    }
    (serials, lists)
}

#[test]
fn our_ixfr_has_knots_layout() {
    let knot = split(IXFR_RESPONSE);
    let theirs: Vec<Record> = knot.iter().flat_map(|m| read(m, IXFR_REQUEST).records).collect();
    // The versions of the zone, as the journal would hold them.
    let deltas: Vec<Delta> = (2..=4)
        .map(|v| {
            let (old, new): (HashSet<Record>, HashSet<Record>) =
                (knot_zone(v - 1).into_iter().collect(), knot_zone(v).into_iter().collect());
            let soa = |set: &HashSet<Record>| set.iter().find(|r| r.rtype == code::SOA).unwrap().clone();
            let changes: Vec<crate::zone::Change> = old
                .difference(&new)
                .cloned()
                .map(crate::zone::Change::Remove)
                .chain(new.difference(&old).cloned().map(crate::zone::Change::Add))
                .collect();
            let d = Delta::from_changes(changes).unwrap();
            assert_eq!((d.old_soa.clone(), d.new_soa.clone()), (soa(&old), soa(&new)));
            d
        })
        .collect();
    let r = decode_request(IXFR_REQUEST).unwrap();
    let Kind::Ixfr { serial } = r.kind else { panic!("not an ixfr") };
    assert_eq!(plan_ixfr(serial, 4, &deltas), IxfrPlan::Incremental { from: 0 });
    let mine: Vec<Record> = ours(Transfer::ixfr(&deltas, &r, &Options::default()).unwrap())
        .iter()
        .flat_map(|m| read(m, IXFR_REQUEST).records)
        .collect();
    assert_eq!(mine.len(), theirs.len());
    let (serials, lists) = layout(&mine);
    assert_eq!(serials, [4, 1, 2, 2, 3, 3, 4, 4]);
    assert_eq!((serials, lists), layout(&theirs));
}
