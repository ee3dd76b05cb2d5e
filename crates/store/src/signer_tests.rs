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
    let zs = crate::dnssec::load_signing(&store.conn, id).unwrap().unwrap();
    let data: Vec<Record> =
        all.iter().filter(|r| !matches!(r.rtype, code::RRSIG | code::NSEC | code::NSEC3)).cloned().collect();
    let full = zs.signer(store.now() as u64).sign_zone(&data, 1).unwrap();
    assert_eq!(chain(&all), chain(&full.records), "chain after {step}");
    assert_eq!(covered(&all), covered(&full.records), "signed RRsets after {step}");
}

fn random_change(rng: &mut StdRng, live: &mut BTreeSet<String>) -> Vec<Change> {
    let labels = ["a", "b", "c", "www", "x", "deep.er", "sub", "wild", "y.z", "ns.sub", "in.secure"];
    let owner = format!(
        "{}.{}",
        labels[rng.random_range(0..labels.len())],
        labels[rng.random_range(0..labels.len())]
    );
    let kind = rng.random_range(0..10);
    let text = match kind {
        0 => format!("{owner} 3600 NS ns1.example.com."),
        1 => format!("{owner} 300 TXT \"t{}\"", rng.random_range(0..3)),
        2 => format!(
            "{} 300 AAAA 2001:db8::{}",
            labels[rng.random_range(0..labels.len())],
            rng.random_range(1..4)
        ),
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
    let mut live = BTreeSet::new();
    let (mut applied, mut sizes) = (0, BTreeSet::new());
    for i in 0..120 {
        let changes = random_change(&mut rng, &mut live);
        let what = format!("step {i} {changes:?}");
        match store.by(Actor::Task("test")).apply(&apex(), &changes) {
            Ok(_) => {}
            // A random change may break a zone rule; then nothing changed.
            Err(crate::StoreError::Invalid(_)) => continue,
            Err(e) => panic!("{what}: {e}"),
        }
        check_against_full(&mut store, &what);
        applied += 1;
        let all = store.zone_snapshot(&apex()).unwrap().unwrap().1.records;
        sizes.insert(chain(&all).len());
    }
    // The changes really moved the chain: names came and went.
    assert!(applied > 90, "{applied} changes applied");
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
