//! The incremental signer against the whole-zone signer: after every one
//! of many random changes, the zone a store keeps signed change by change
//! has the same chain and the same signed RRsets as the zone signed from
//! scratch, and every signature verifies.

use crate::Actor;
use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record};
use sixgate_dns::zonefile;
use sixgate_dnssec::policy::{Denial, Policy};
use sixgate_dnssec::rrsig::{self, RrSet, Rrsig};

use crate::Store;

fn apex() -> Box<[u8]> {
    name::from_text("example.com.", None).unwrap()
}

fn rec(text: &str) -> Record {
    zonefile::parse(text, &apex()).unwrap().remove(0)
}

const ZONE: &str = "@ 3600 SOA ns1 hostmaster 1 7200 3600 1209600 300
@ 3600 NS ns1
ns1 3600 A 192.0.2.1
www 300 A 192.0.2.80
Mixed.Case 300 TXT \"x\"
*.wild 300 A 192.0.2.9
a.b.c 300 A 192.0.2.7
sub 3600 NS ns.sub
ns.sub 3600 A 192.0.2.53
secure 3600 NS ns1
secure 3600 DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000
";

type Rr = (Box<[u8]>, u16, Box<[u8]>);

/// (owner, type, rdata) of the chain records, lowercased owners.
fn chain(records: &[Record]) -> Vec<Rr> {
    let mut v: Vec<Rr> = records
        .iter()
        .filter(|r| matches!(r.rtype, code::NSEC | code::NSEC3))
        .map(|r| (name::to_lowercase(&r.owner), r.rtype, r.rdata.to_ascii_lowercase().into()))
        .collect();
    v.sort();
    v
}

/// (owner, type covered, key tag) of every RRSIG.
fn covered(records: &[Record]) -> Vec<(Box<[u8]>, u16, u16)> {
    let mut v: Vec<_> = records
        .iter()
        .filter(|r| r.rtype == code::RRSIG)
        .map(|r| {
            let s = Rrsig::decode(&r.rdata).unwrap();
            (name::to_lowercase(&r.owner), s.type_covered, s.key_tag)
        })
        .collect();
    v.sort();
    v
}

/// Every RRSIG verifies with a DNSKEY of the zone and is valid now.
fn verify(records: &[Record], now: i64) {
    let keys: Vec<&Record> = records.iter().filter(|r| r.rtype == code::DNSKEY).collect();
    for sig in records.iter().filter(|r| r.rtype == code::RRSIG) {
        let s = Rrsig::decode(&sig.rdata).unwrap();
        let rdatas: Vec<&[u8]> = records
            .iter()
            .filter(|r| r.rtype == s.type_covered && r.owner.eq_ignore_ascii_case(&sig.owner))
            .map(|r| &r.rdata[..])
            .collect();
        let ttl = records
            .iter()
            .find(|r| r.rtype == s.type_covered && r.owner.eq_ignore_ascii_case(&sig.owner))
            .unwrap()
            .ttl;
        let set = RrSet { owner: &sig.owner, rtype: s.type_covered, ttl, rdatas: &rdatas };
        let ok = keys.iter().any(|k| rrsig::verify(&k.rdata, &s, &set).is_ok());
        assert!(ok, "RRSIG {} {} does not verify", name::to_text(&sig.owner), s.type_covered);
        assert!(s.is_valid_at(now as u64));
    }
}

fn check_against_full(store: &mut Store, step: &str) {
    let all = store.zone_snapshot(&apex()).unwrap().unwrap().1.records;
    verify(&all, store.now());
    // Sign the same data from scratch.
    let id = store.zone_id(&apex()).unwrap().unwrap().0;
    let zs = crate::dnssec::load_signing(&store.conn, &store.sealer, id).unwrap().unwrap();
    let data: Vec<Record> =
        all.iter().filter(|r| !matches!(r.rtype, code::RRSIG | code::NSEC | code::NSEC3)).cloned().collect();
    let full = zs.signer(store.now() as u64).sign_zone(&data, 1).unwrap();
    assert_eq!(chain(&all), chain(&full.records), "chain after {step}");
    assert_eq!(covered(&all), covered(&full.records), "signed RRsets after {step}");
}

/// Names at several depths, so that cuts come and go above empty
/// non-terminals and deeper names: with data only at `w.e.dc`, a cut at
/// `dc` has the empty non-terminal `e.dc` between it and `w.e.dc`.
const DEEP: [&str; 9] = ["dc", "e.dc", "w.e.dc", "v.w.e.dc", "c", "b.c", "a.b.c", "q.a.b.c", "x.sub"];
/// Where cuts (NS, DNAME) are added and removed: above the deep names,
/// and the zone's own delegation `sub`.
const CUTS: [&str; 5] = ["dc", "e.dc", "c", "b.c", "sub"];
/// The zone's base delegation, which the random changes may remove.
const BASE_CUT: &str = "sub 3600 NS ns.sub.example.com.";

fn random_change(rng: &mut StdRng, live: &mut BTreeSet<String>) -> Vec<Change> {
    let labels = ["a", "b", "c", "www", "x", "deep.er", "sub", "wild", "y.z", "ns.sub", "in.secure"];
    let owner = format!(
        "{}.{}",
        labels[rng.random_range(0..labels.len())],
        labels[rng.random_range(0..labels.len())]
    );
    let pick = |rng: &mut StdRng, from: &[&str]| from[rng.random_range(0..from.len())].to_string();
    let kind = rng.random_range(0..15);
    let text = match kind {
        0 => format!("{owner} 3600 NS ns1.example.com."),
        1 => format!("{owner} 300 TXT \"t{}\"", rng.random_range(0..3)),
        2 => format!(
            "{} 300 AAAA 2001:db8::{}",
            labels[rng.random_range(0..labels.len())],
            rng.random_range(1..4)
        ),
        3 | 4 => format!("{} 3600 NS ns1.example.com.", pick(rng, &CUTS)),
        // Refused while anything is below it (RFC 6672 §2.3).
        5 => format!("{} 300 DNAME t.example.net.", pick(rng, &CUTS)),
        6..=8 => format!("{} 300 TXT \"d{}\"", pick(rng, &DEEP), rng.random_range(0..2)),
        9 => BASE_CUT.to_string(),
        _ => format!("{owner} 300 A 192.0.2.{}", rng.random_range(1..4)),
    };
    if live.contains(&text) && rng.random_bool(0.7) {
        live.remove(&text);
        vec![Change::Remove(rec(&text))]
    } else {
        live.insert(text.clone());
        vec![Change::Add(rec(&text))]
    }
}

fn run(denial: Denial, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.by(Actor::Task("test")).replace_zone(&apex(), zonefile::parse(ZONE, &apex()).unwrap()).unwrap();
    let policy = Policy { denial, ..Policy::default() };
    store.by(Actor::Task("test")).dnssec_enable(&apex(), &policy).unwrap();
    check_against_full(&mut store, "enable");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live = BTreeSet::from([BASE_CUT.to_string()]);
    let (mut applied, mut sizes) = (0, BTreeSet::new());
    for i in 0..150 {
        let changes = random_change(&mut rng, &mut live);
        let what = format!("step {i} {changes:?}");
        match store.by(Actor::Task("test")).apply(&apex(), &changes) {
            Ok(_) => {}
            // A random change may break a zone rule; then nothing changed.
            Err(crate::StoreError::Invalid(_)) => {
                // ... and the text is not live.
                if let [Change::Add(r)] = &changes[..] {
                    live.retain(|t| rec(t) != *r);
                }
                continue;
            }
            Err(e) => panic!("{what}: {e}"),
        }
        check_against_full(&mut store, &what);
        applied += 1;
        let all = store.zone_snapshot(&apex()).unwrap().unwrap().1.records;
        sizes.insert(chain(&all).len());
    }
    // The changes really moved the chain: names came and went.
    assert!(applied > 100, "{applied} changes applied");
    assert!(sizes.len() > 10, "chain lengths seen: {sizes:?}");
    // Refreshing months later re-signs everything that would expire and
    // keeps the chain.
    store.set_clock_offset(i64::from(policy.signature_validity) - i64::from(policy.signature_refresh) + 3600);
    assert!(store.by(Actor::Task("test")).dnssec_refresh(&apex()).unwrap().is_some());
    check_against_full(&mut store, "refresh");
    let due = crate::signer::expiring(
        &store.conn,
        store.zone_id(&apex()).unwrap().unwrap().0,
        store.now() as u64 + u64::from(policy.signature_refresh),
    )
    .unwrap();
    assert!(due.is_empty(), "still due after refresh: {due:?}");
}

#[test]
fn incremental_nsec_signing_equals_whole_zone_signing() {
    run(Denial::Nsec, 1);
    run(Denial::Nsec, 2);
}

#[test]
fn incremental_nsec3_signing_equals_whole_zone_signing() {
    run(Denial::Nsec3 { opt_out: false }, 3);
    run(Denial::Nsec3 { opt_out: false }, 4);
}

#[test]
fn the_signing_time_of_a_write_is_reported_for_signed_zones_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.by(Actor::Task("test")).replace_zone(&apex(), zonefile::parse(ZONE, &apex()).unwrap()).unwrap();
    store.by(Actor::Task("test")).apply(&apex(), &[Change::Add(rec("t1 300 A 192.0.2.1"))]).unwrap();
    assert_eq!(crate::last_signing_time(), None);
    store.by(Actor::Task("test")).dnssec_enable(&apex(), &Policy::default()).unwrap();
    store.by(Actor::Task("test")).apply(&apex(), &[Change::Add(rec("t2 300 A 192.0.2.2"))]).unwrap();
    assert!(crate::last_signing_time().is_some_and(|d| d > std::time::Duration::ZERO));
}

/// A zone with a name three labels below `dc`, so that `e.dc` is an
/// empty non-terminal, signed with NSEC3; `extra` is added first.
fn signed_with_deep_name(extra: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let text = format!("{ZONE}w.e.dc 300 A 192.0.2.44\n{extra}");
    store.by(Actor::Task("test")).replace_zone(&apex(), zonefile::parse(&text, &apex()).unwrap()).unwrap();
    let policy = Policy { denial: Denial::Nsec3 { opt_out: false }, ..Policy::default() };
    store.by(Actor::Task("test")).dnssec_enable(&apex(), &policy).unwrap();
    check_against_full(&mut store, "enable");
    (dir, store)
}

/// The NSEC3 owner name of `name` in the signed zone, if it has one.
fn nsec3_of(store: &mut Store, owner: &str) -> bool {
    let all = store.zone_snapshot(&apex()).unwrap().unwrap().1.records;
    let param = all.iter().find(|r| r.rtype == code::NSEC3PARAM).unwrap();
    let salt_len = param.rdata[4] as usize;
    let iterations = u16::from_be_bytes([param.rdata[2], param.rdata[3]]);
    let key = name::to_lowercase(&name::from_text(owner, None).unwrap());
    let hash = sixgate_dns::nsec3::hash(&key, &param.rdata[5..5 + salt_len], iterations);
    let want = sixgate_dns::nsec3::owner_name(&hash, &apex());
    all.iter().any(|r| r.rtype == code::NSEC3 && r.owner.eq_ignore_ascii_case(&want))
}

/// Adding a cut above an empty non-terminal (`e.dc`, between `dc` and
/// `w.e.dc`) must take the ENT's NSEC3 out of the chain: left in, it is
/// never re-signed and the zone is held at the next full check.
#[test]
fn adding_a_cut_above_an_empty_non_terminal_drops_its_nsec3() {
    let (_dir, mut store) = signed_with_deep_name("");
    assert!(nsec3_of(&mut store, "e.dc.example.com."));
    store.by(Actor::Task("test")).apply(&apex(), &[Change::Add(rec("dc 3600 NS ns1.example.com."))]).unwrap();
    assert!(!nsec3_of(&mut store, "e.dc.example.com."), "stale NSEC3 of the occluded ENT");
    check_against_full(&mut store, "adding dc NS");
}

/// Removing that cut must give the empty non-terminal its NSEC3 back:
/// without it, NODATA at `e.dc` has no matching NSEC3 (RFC 5155 §8.5)
/// and validators call the answer bogus.
#[test]
fn removing_a_cut_above_an_empty_non_terminal_gives_it_an_nsec3() {
    let (_dir, mut store) = signed_with_deep_name("dc 3600 NS ns1.example.com.\n");
    assert!(!nsec3_of(&mut store, "e.dc.example.com."), "occluded when signed");
    store
        .by(Actor::Task("test"))
        .apply(&apex(), &[Change::Remove(rec("dc 3600 NS ns1.example.com."))])
        .unwrap();
    assert!(nsec3_of(&mut store, "e.dc.example.com."), "the ENT has no NSEC3");
    check_against_full(&mut store, "removing dc NS");
}
