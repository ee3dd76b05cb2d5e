//! `sixgate_dnssec::check::check_zone` (the check a signed version passes
//! before it is served) on the signed zone dnssec.test. of
//! `testdata/dnssec/` with records parsed from arbitrary zone file text
//! added to it (origin dnssec.test., non-UTF-8 read lossily).
//!
//! Invariants: it never panics; it reports at most `MAX_PROBLEMS`
//! problems, each naming an RRset the zone holds; the real zone alone has
//! none at a time its signatures are valid; and the check of only the
//! owners the fuzzed records touch reports no problem that the check of
//! the whole zone does not, whenever that one was not cut short.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sixgate_dns::{Record, Zone, name, zonefile};
use sixgate_dnssec::check::{MAX_PROBLEMS, check_zone};

/// Inside the signatures' validity (2025-01-01 to 2035-01-01).
const NOW: u64 = 1_800_000_000;
const APEX: &[u8] = b"\x06dnssec\x04test\x00";

fn base() -> &'static [Record] {
    static BASE: OnceLock<Vec<Record>> = OnceLock::new();
    BASE.get_or_init(|| {
        let text = include_str!("../../testdata/dnssec/dnssec.test.nsec.signed");
        let records = zonefile::parse(text, APEX).expect("signed zone parses");
        let zone = Zone::build(APEX, records.clone(), 0).expect("signed zone builds");
        assert_eq!(check_zone(&zone, None, NOW, 86400), vec![], "the real zone passes");
        records
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(extra) = zonefile::parse(&text, APEX) else {
        return;
    };
    let owners: Vec<Box<[u8]>> = extra.iter().map(|r| name::to_lowercase(&r.owner)).collect();
    let records = base().iter().cloned().chain(extra);
    let Ok(zone) = Zone::build(APEX, records, 0) else {
        return;
    };
    // The time from the first octets too, so that expiry is reached.
    let now = data.iter().take(4).fold(NOW, |t, &b| t.wrapping_add(u64::from(b) << 20));
    for now in [NOW, now] {
        let all = check_zone(&zone, None, now, 86400);
        let some = check_zone(&zone, Some(&owners), now, 86400);
        for p in all.iter().chain(&some) {
            let owner = name::from_text(&p.owner, None).expect("a problem names an owner");
            let node = zone.node(&name::to_lowercase(&owner)).expect("a problem names a node");
            assert!(node.rrset(p.rtype).is_some(), "a problem names an RRset the zone lacks: {p}");
        }
        assert!(all.len() <= MAX_PROBLEMS && some.len() <= MAX_PROBLEMS);
        if all.len() < MAX_PROBLEMS {
            assert!(some.iter().all(|p| all.contains(p)), "{some:?} not in {all:?}");
        }
    }
});
