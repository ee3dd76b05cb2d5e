//! Tests of the resolver's cache: a key swap that leaves cached resolvers
//! bogus is caught, and the RFC 7583 timelines that wait out the TTLs are
//! secure for every cache [`sweep`] builds.

use sixgate_dns::catalog::Catalog;
use sixgate_dns::rtype::code;

use super::tests::{APEX, NOW, Parent, Spec, csk, n, queries, zsk};
use super::*;
use crate::{Algorithm, KeyPair};

/// TTL of the DNSKEY RRset in these tests.
const DNSKEY_TTL: u32 = 600;
/// TTL of every other RRset, and of the DS RRset.
const TTL: u32 = 3600;

/// A zone whose DNSKEY RRset is signed by `ksk` and everything else by
/// `zone_signers`, publishing `published`, signed at `now`.
fn zone<'k>(ksk: &'k KeyPair, published: &[&'k KeyPair], zone_signers: &[&'k KeyPair], now: u64) -> Catalog {
    Spec {
        published: published.to_vec(),
        key_signers: vec![ksk],
        zone_signers: zone_signers.to_vec(),
        nsec3: false,
        now,
        dnskey_ttl: DNSKEY_TTL,
        ttl: TTL,
        extra: String::new(),
    }
    .serve()
}

fn timeline<A>(steps: Vec<(u64, A)>) -> Timeline<A> {
    let mut t = Timeline::new();
    for (from, a) in steps {
        t.push(from, a);
    }
    t
}

fn sweep_queries() -> Vec<(Box<[u8]>, u16)> {
    queries().into_iter().map(|(qname, qtype, _)| (qname, qtype)).collect()
}

/// Each time, a little after it, and a little before the next one.
fn check_times(events: &[u64]) -> Vec<u64> {
    events.iter().flat_map(|&t| [t.saturating_sub(1), t, t + 300]).collect()
}

#[test]
fn a_cached_dnskey_rrset_without_the_new_key_is_bogus() {
    let (ksk, k1, k2) = (csk(Algorithm::EcdsaP256Sha256), zsk(), zsk());
    let (t0, t1) = (NOW, NOW + 300);
    // K1 is replaced by K2 at once, without pre-publication.
    let zones = timeline(vec![
        (t0, zone(&ksk, &[&ksk, &k1], &[&k1], t0)),
        (t1, zone(&ksk, &[&ksk, &k2], &[&k2], t1)),
    ]);
    let parent = Parent::of(&[&ksk], TTL);
    let mut warmed = Resolver::new(&n(APEX), &zones, &parent);
    warmed.warm(&n("www"), code::A, t0);
    // At t1 the resolver still holds the DNSKEY RRset {KSK, K1}, and
    // asks for a name it has not cached: signed by K2 only.
    let Verdict::Bogus(Bogus::UnknownKey { owner, signed_by, mut trusted, .. }) =
        warmed.resolve(&n("ns"), code::A, t1)
    else {
        panic!("the swap went unnoticed");
    };
    trusted.sort_unstable();
    let mut want = vec![ksk.key_tag(), k1.key_tag()];
    want.sort_unstable();
    assert_eq!((owner.as_str(), signed_by, trusted), ("ns.rollover.test.", vec![k2.key_tag()], want));
    // What it cached at t0 still validates, and a resolver with an empty
    // cache sees nothing wrong.
    assert!(warmed.resolve(&n("www"), code::A, t1).is_secure());
    assert!(Resolver::new(&n(APEX), &zones, &parent).resolve(&n("ns"), code::A, t1).is_secure());
    // Once the DNSKEY RRset has expired from the cache, all is well again.
    let later = t0 + u64::from(DNSKEY_TTL);
    assert!(warmed.resolve(&n("nope"), code::A, later).is_secure());
    // The sweep finds the same.
    let failures = sweep(&Resolver::new(&n(APEX), &zones, &parent), &sweep_queries(), &[t0, t1]);
    assert!(failures.iter().all(|f| matches!(f.verdict, Verdict::Bogus(Bogus::UnknownKey { .. }))));
    assert!(failures.iter().any(|f| f.keys_at == t0 && f.answers_at == t1 && f.at == t1));
}

/// A ZSK rollover by pre-publication (RFC 7583 §3.2.1): K2 is published
/// at `t1`, signs from `t2`, and K1's DNSKEY goes at `t3`.
fn zsk_rollover(t2_after_publish: u64, t3_after_switch: u64) -> Vec<Failure> {
    let (ksk, k1, k2) = (csk(Algorithm::EcdsaP256Sha256), zsk(), zsk());
    let t0 = NOW;
    let t1 = t0 + 1000;
    let t2 = t1 + t2_after_publish;
    let t3 = t2 + t3_after_switch;
    let zones = timeline(vec![
        (t0, zone(&ksk, &[&ksk, &k1], &[&k1], t0)),
        (t1, zone(&ksk, &[&ksk, &k1, &k2], &[&k1], t1)),
        (t2, zone(&ksk, &[&ksk, &k1, &k2], &[&k2], t2)),
        (t3, zone(&ksk, &[&ksk, &k2], &[&k2], t3)),
    ]);
    let parent = Parent::of(&[&ksk], TTL);
    let times = check_times(&[t1, t2, t3, t3 + u64::from(TTL)]);
    sweep(&Resolver::new(&n(APEX), &zones, &parent), &sweep_queries(), &times)
}

#[test]
fn a_zsk_rollover_that_waits_out_the_ttls_is_secure() {
    // Publish, wait the DNSKEY TTL, switch, wait the largest TTL, remove.
    let failures = zsk_rollover(u64::from(DNSKEY_TTL) + 1, u64::from(TTL) + 1);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_zsk_switch_before_the_dnskey_ttl_is_caught() {
    let failures = zsk_rollover(100, u64::from(TTL) + 1);
    assert!(!failures.is_empty());
    assert!(failures.iter().all(|f| matches!(f.verdict, Verdict::Bogus(Bogus::UnknownKey { .. }))));
}

#[test]
fn removing_the_old_zsk_before_its_signatures_expire_is_caught() {
    // The DNSKEY RRset (TTL 600) is fetched again while answers signed by
    // K1 (TTL 3600) are still cached: the cache model's point.
    let failures = zsk_rollover(u64::from(DNSKEY_TTL) + 1, u64::from(DNSKEY_TTL) + 100);
    assert!(!failures.is_empty());
    assert!(failures.iter().all(|f| matches!(f.verdict, Verdict::Bogus(Bogus::UnknownKey { .. }))));
}

/// A KSK rollover by double-KSK (RFC 7583 §3.3.1): K2 is published and
/// signs the DNSKEY RRset at `t1`, the parent's DS moves from K1 to K2 at
/// `t2`, and K1 goes at `t3`.
fn ksk_rollover(t3_after_ds: u64) -> Vec<Failure> {
    let (k1, k2, z) = (csk(Algorithm::EcdsaP256Sha256), csk(Algorithm::EcdsaP256Sha256), zsk());
    let t0 = NOW;
    let t1 = t0 + 1000;
    let t2 = t1 + u64::from(DNSKEY_TTL) + 1;
    let t3 = t2 + t3_after_ds;
    // The KSKs sign the DNSKEY RRset, the ZSK everything else.
    let serve = |ksks: &[&KeyPair], now| {
        let mut published = ksks.to_vec();
        published.push(&z);
        Spec {
            published,
            key_signers: ksks.to_vec(),
            zone_signers: vec![&z],
            nsec3: true,
            now,
            dnskey_ttl: DNSKEY_TTL,
            ttl: TTL,
            extra: String::new(),
        }
        .serve()
    };
    let zones =
        timeline(vec![(t0, serve(&[&k1], t0)), (t1, serve(&[&k1, &k2], t1)), (t3, serve(&[&k2], t3))]);
    let parents = timeline(vec![(t0, Parent::of(&[&k1], TTL)), (t2, Parent::of(&[&k2], TTL))]);
    let times = check_times(&[t1, t2, t3, t3 + u64::from(TTL)]);
    sweep(&Resolver::new(&n(APEX), &zones, &parents), &sweep_queries(), &times)
}

#[test]
fn a_ksk_rollover_that_waits_out_the_ds_ttl_is_secure() {
    let failures = ksk_rollover(u64::from(TTL) + 1);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn removing_the_old_ksk_while_its_ds_is_cached_is_caught() {
    let failures = ksk_rollover(u64::from(DNSKEY_TTL) + 1);
    assert!(!failures.is_empty());
    assert!(
        failures.iter().all(|f| matches!(f.verdict, Verdict::Bogus(Bogus::NoDsMatch { .. }))),
        "{failures:#?}"
    );
}

/// Signing a zone and adding its DS (RFC 7583 §3.1, RFC 6781 §4.1.1):
/// the zone is signed at `t1`, and the parent adds the DS at `t2`.
fn going_secure(ds_after_signing: u64) -> Vec<Failure> {
    let k = csk(Algorithm::Ed25519);
    let t0 = NOW;
    let t1 = t0 + 1000;
    let t2 = t1 + ds_after_signing;
    let signed = Spec { dnskey_ttl: DNSKEY_TTL, ttl: TTL, now: t1, ..Spec::single(&k, false) };
    let zones = timeline(vec![(t0, Spec::unsigned().serve()), (t1, signed.serve())]);
    let parents = timeline(vec![(t0, Parent(Vec::new())), (t2, Parent::of(&[&k], TTL))]);
    let times = check_times(&[t1, t2, t2 + u64::from(TTL)]);
    let mut failures = sweep(&Resolver::new(&n(APEX), &zones, &parents), &sweep_queries(), &times);
    // Before the DS reaches a resolver, its answers are rightly insecure.
    failures.retain(|f| f.verdict != Verdict::Insecure);
    failures
}

#[test]
fn a_ds_added_once_the_unsigned_answers_expired_is_secure() {
    let failures = going_secure(u64::from(TTL) + 1);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_ds_added_while_unsigned_answers_are_cached_is_caught() {
    let failures = going_secure(100);
    assert!(!failures.is_empty());
    assert!(
        failures.iter().all(|f| matches!(f.verdict, Verdict::Bogus(Bogus::Unsigned { .. }))),
        "{failures:#?}"
    );
}
