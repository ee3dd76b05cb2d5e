//! Tests of validation against zones signed by [`Signer::sign_zone`] and
//! served by sixgate's answer engine: secure answers of every kind with
//! NSEC and NSEC3, and the faults that make them bogus. The zone builder
//! here is shared with the resolver's cache tests.

use std::sync::Arc;

use sixgate_dns::catalog::Catalog;
use sixgate_dns::message::rcode;
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Record, Zone};
use sixgate_dns::zonefile;

use super::*;
use crate::denial::Nsec3Params;
use crate::key::flags;
use crate::rrsig::VerifyError;
use crate::sign::{ActiveKey, Signer};
use crate::{Algorithm, KeyPair};

/// The signing time of the test zones.
pub(super) const NOW: u64 = 1_700_000_000;
/// Signature validity of the test zones.
pub(super) const VALIDITY: u32 = 14 * 86400;
pub(super) const APEX: &str = "rollover.test.";

pub(super) fn n(s: &str) -> Box<[u8]> {
    name::from_text(s, Some(&name::from_text(APEX, None).unwrap())).unwrap()
}

pub(super) fn csk(algorithm: Algorithm) -> KeyPair {
    KeyPair::generate(algorithm, flags::ZONE | flags::SEP).unwrap()
}

pub(super) fn zsk() -> KeyPair {
    KeyPair::generate(Algorithm::EcdsaP256Sha256, flags::ZONE).unwrap()
}

/// How a test zone is published and signed.
#[derive(Clone)]
pub(super) struct Spec<'k> {
    /// Keys in the DNSKEY RRset.
    pub(super) published: Vec<&'k KeyPair>,
    /// Keys signing the DNSKEY RRset.
    pub(super) key_signers: Vec<&'k KeyPair>,
    /// Keys signing everything else.
    pub(super) zone_signers: Vec<&'k KeyPair>,
    pub(super) nsec3: bool,
    /// Signing time.
    pub(super) now: u64,
    /// TTL of the DNSKEY RRset.
    pub(super) dnskey_ttl: u32,
    /// TTL of every other RRset (and the SOA MINIMUM).
    pub(super) ttl: u32,
    /// More records, zone file lines.
    pub(super) extra: String,
}

impl<'k> Spec<'k> {
    /// One key that signs everything.
    pub(super) fn single(key: &'k KeyPair, nsec3: bool) -> Spec<'k> {
        Spec {
            published: vec![key],
            key_signers: vec![key],
            zone_signers: vec![key],
            nsec3,
            now: NOW,
            dnskey_ttl: 3600,
            ttl: 3600,
            extra: String::new(),
        }
    }

    /// The zone without keys or signatures.
    pub(super) fn unsigned() -> Spec<'k> {
        Spec {
            published: Vec::new(),
            key_signers: Vec::new(),
            zone_signers: Vec::new(),
            nsec3: false,
            now: NOW,
            dnskey_ttl: 3600,
            ttl: 3600,
            extra: String::new(),
        }
    }

    /// The zone: SOA, NS, an address, a wildcard, a TXT below an empty
    /// non-terminal and two CNAMEs, signed (unless no key signs) and
    /// served by the answer engine.
    pub(super) fn serve(&self) -> Catalog {
        let apex = n(APEX);
        let ttl = self.ttl;
        let text = format!(
            "@ {ttl} IN SOA ns hostmaster 1 7200 3600 1209600 {ttl}\n\
             @ {ttl} IN NS ns\n\
             ns {ttl} IN A 192.0.2.53\n\
             www {ttl} IN A 192.0.2.1\n\
             *.wild {ttl} IN A 192.0.2.2\n\
             deep.ent {ttl} IN TXT \"below an empty non-terminal\"\n\
             alias {ttl} IN CNAME www\n\
             dangling {ttl} IN CNAME gone\n\
             {}\n",
            self.extra
        );
        let mut records = zonefile::parse(&text, &apex).unwrap();
        for k in &self.published {
            records.push(Record {
                owner: apex.clone(),
                rtype: code::DNSKEY,
                ttl: self.dnskey_ttl,
                rdata: k.dnskey_rdata().into(),
            });
        }
        let nsec3 = self.nsec3.then(Nsec3Params::default);
        if let Some(p) = &nsec3 {
            records.push(Record {
                owner: apex.clone(),
                rtype: code::NSEC3PARAM,
                ttl: 0,
                rdata: p.nsec3param_rdata().into(),
            });
        }
        if self.key_signers.is_empty() && self.zone_signers.is_empty() {
            return Catalog::new().with_zone(Arc::new(Zone::build(&apex, records, 7).unwrap()));
        }
        let mut keys: Vec<ActiveKey<'_>> = Vec::new();
        for k in self.key_signers.iter().chain(&self.zone_signers) {
            if keys.iter().any(|a| a.tag == k.key_tag()) {
                continue;
            }
            let signs = |set: &[&KeyPair]| set.iter().any(|s| s.key_tag() == k.key_tag());
            keys.push(ActiveKey {
                key: k,
                tag: k.key_tag(),
                signs_keys: signs(&self.key_signers),
                signs_zone: signs(&self.zone_signers),
            });
        }
        let signer = Signer {
            apex: apex.clone(),
            keys,
            nsec3,
            now: self.now,
            inception_offset: 3600,
            validity: VALIDITY,
            jitter: 0,
        };
        let signed = signer.sign_zone(&records, 1).unwrap();
        records.extend(signed.records);
        Catalog::new().with_zone(Arc::new(Zone::build(&apex, records, 7).unwrap()))
    }
}

/// A parent serving a fixed DS RRset.
#[derive(Clone)]
pub(super) struct Parent(pub(super) Vec<Record>);

impl Parent {
    /// DS records (SHA-256) for `keys`, with this TTL.
    pub(super) fn of(keys: &[&KeyPair], ttl: u32) -> Parent {
        let apex = n(APEX);
        Parent(
            keys.iter()
                .map(|k| Record {
                    owner: apex.clone(),
                    rtype: code::DS,
                    ttl,
                    rdata: ds::ds_rdata(&apex, &k.dnskey_rdata(), ds::SHA256).unwrap().into(),
                })
                .collect(),
        )
    }
}

impl Authority for Parent {
    fn query(&self, _: &[u8], _: u16, _: u64) -> Result<Response, ResponseError> {
        // Without DS, a NODATA answer with the parent's SOA (TTL and
        // MINIMUM 3600), so that the absence is cached as well.
        let authority = if self.0.is_empty() {
            let soa = "test. 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 3600";
            zonefile::parse(soa, &name::from_text("test.", None).unwrap()).unwrap()
        } else {
            Vec::new()
        };
        Ok(Response { rcode: 0, answer: self.0.clone(), authority })
    }
}

/// An authority whose responses pass through a function first.
struct Altered<A, F>(A, F);

impl<A: Authority, F: Fn(&mut Response)> Authority for Altered<A, F> {
    fn query(&self, name: &[u8], rtype: u16, now: u64) -> Result<Response, ResponseError> {
        let mut r = self.0.query(name, rtype, now)?;
        (self.1)(&mut r);
        Ok(r)
    }
}

/// The queries of a rollover check, with the outcome each has.
pub(super) fn queries() -> Vec<(Box<[u8]>, u16, Outcome)> {
    vec![
        (n("www"), code::A, Outcome::Answer),
        (n("www"), code::AAAA, Outcome::NoData),
        (n("nope"), code::A, Outcome::NxDomain),
        (n("x.wild"), code::A, Outcome::WildcardAnswer),
        (n("x.wild"), code::TXT, Outcome::NoData),
        (n("ent"), code::A, Outcome::NoData),
        (n("deep.ent"), code::TXT, Outcome::Answer),
        (n("@"), code::DNSKEY, Outcome::Answer),
        (n("@"), code::SOA, Outcome::Answer),
        (n("alias"), code::A, Outcome::Answer),
        (n("dangling"), code::A, Outcome::NxDomain),
    ]
}

fn every_answer_is_secure(nsec3: bool) {
    let k = csk(Algorithm::EcdsaP256Sha256);
    let zone = Spec::single(&k, nsec3).serve();
    let mut r = Resolver::new(&n(APEX), &zone, Parent::of(&[&k], 3600));
    for (qname, qtype, outcome) in queries() {
        assert_eq!(
            r.resolve(&qname, qtype, NOW),
            Verdict::Secure(outcome),
            "{} {qtype}",
            name::to_text(&qname)
        );
    }
}

#[test]
fn every_answer_is_secure_with_nsec() {
    every_answer_is_secure(false);
}

#[test]
fn every_answer_is_secure_with_nsec3() {
    every_answer_is_secure(true);
}

#[test]
fn a_ksk_and_zsk_split_is_secure() {
    let (ksk, zsk) = (csk(Algorithm::Ed25519), zsk());
    let spec = Spec {
        published: vec![&ksk, &zsk],
        key_signers: vec![&ksk],
        zone_signers: vec![&zsk],
        ..Spec::single(&ksk, true)
    };
    let zone = spec.serve();
    let mut r = Resolver::new(&n(APEX), &zone, Parent::of(&[&ksk], 3600));
    for (qname, qtype, outcome) in queries() {
        assert_eq!(r.resolve(&qname, qtype, NOW), Verdict::Secure(outcome));
    }
    // The ZSK alone is no anchor: the DS must name a key signing the
    // DNSKEY RRset.
    let mut r = Resolver::new(&n(APEX), &zone, Parent::of(&[&zsk], 3600));
    assert!(matches!(r.resolve(&n("www"), code::A, NOW), Verdict::Bogus(Bogus::UnknownKey { .. })));
}

#[test]
fn without_a_usable_ds_the_zone_is_insecure() {
    let k = csk(Algorithm::EcdsaP256Sha256);
    let zone = Spec::single(&k, false).serve();
    let mut r = Resolver::new(&n(APEX), &zone, Parent(Vec::new()));
    assert_eq!(r.resolve(&n("www"), code::A, NOW), Verdict::Insecure);
    // A DS of an algorithm this validator lacks (5, RSA/SHA-1).
    let mut ds = Parent::of(&[&k], 3600);
    let mut rd = ds.0[0].rdata.to_vec();
    rd[2] = 5;
    ds.0[0].rdata = rd.into();
    let mut r = Resolver::new(&n(APEX), &zone, ds);
    assert_eq!(r.resolve(&n("www"), code::A, NOW), Verdict::Insecure);
}

#[test]
fn a_tampered_signature_is_bogus() {
    let k = csk(Algorithm::EcdsaP256Sha256);
    let zone = Spec::single(&k, false).serve();
    let tamper = |r: &mut Response| {
        for rec in r.answer.iter_mut().filter(|rec| rec.rtype == code::RRSIG && rec.owner[1] == b'w') {
            let mut rd = rec.rdata.to_vec();
            *rd.last_mut().unwrap() ^= 1;
            rec.rdata = rd.into();
        }
    };
    let mut r = Resolver::new(&n(APEX), Altered(&zone, tamper), Parent::of(&[&k], 3600));
    assert_eq!(
        r.resolve(&n("www"), code::A, NOW),
        Verdict::Bogus(Bogus::Signature {
            owner: "www.rollover.test.".into(),
            rtype: code::A,
            key_tag: k.key_tag(),
            error: VerifyError::Mismatch
        })
    );
    // Changed data under a good signature too.
    let change = |r: &mut Response| {
        for rec in r.answer.iter_mut().filter(|rec| rec.rtype == code::A) {
            rec.rdata = vec![192, 0, 2, 99].into();
        }
    };
    let mut r = Resolver::new(&n(APEX), Altered(&zone, change), Parent::of(&[&k], 3600));
    assert!(matches!(r.resolve(&n("www"), code::A, NOW), Verdict::Bogus(Bogus::Signature { .. })));
}

#[test]
fn a_signing_key_missing_from_the_dnskey_rrset_is_bogus() {
    // The outage: the zone is signed with a key it does not publish.
    let (k1, k2) = (csk(Algorithm::EcdsaP256Sha256), zsk());
    let spec = Spec { key_signers: vec![&k1], zone_signers: vec![&k2], ..Spec::single(&k1, false) };
    let zone = spec.serve();
    let mut r = Resolver::new(&n(APEX), &zone, Parent::of(&[&k1], 3600));
    assert_eq!(
        r.resolve(&n("www"), code::A, NOW),
        Verdict::Bogus(Bogus::UnknownKey {
            owner: "www.rollover.test.".into(),
            rtype: code::A,
            signed_by: vec![k2.key_tag()],
            trusted: vec![k1.key_tag()],
        })
    );
    // Negative answers fail the same way, on their NSEC records.
    assert!(matches!(r.resolve(&n("nope"), code::A, NOW), Verdict::Bogus(Bogus::UnknownKey { .. })));
}

#[test]
fn a_ds_for_another_key_is_bogus() {
    let (k1, k3) = (csk(Algorithm::EcdsaP256Sha256), csk(Algorithm::EcdsaP256Sha256));
    let zone = Spec::single(&k1, true).serve();
    let mut r = Resolver::new(&n(APEX), &zone, Parent::of(&[&k3], 3600));
    assert_eq!(
        r.resolve(&n("www"), code::A, NOW),
        Verdict::Bogus(Bogus::NoDsMatch { ds: vec![k3.key_tag()], dnskey: vec![k1.key_tag()] })
    );
}

#[test]
fn an_expired_signature_is_bogus() {
    let k = csk(Algorithm::EcdsaP256Sha256);
    let zone = Spec::single(&k, false).serve();
    let late = NOW + u64::from(VALIDITY) + 1;
    let mut r = Resolver::new(&n(APEX), &zone, Parent::of(&[&k], 3600));
    assert!(matches!(
        r.resolve(&n("www"), code::A, late),
        Verdict::Bogus(Bogus::SignatureTime { rtype: code::DNSKEY, .. })
    ));
    // Not yet valid: before the inception (an hour before signing).
    assert!(matches!(r.resolve(&n("www"), code::A, NOW - 7200), Verdict::Bogus(Bogus::SignatureTime { .. })));
    // With keys trusted earlier, the answer's own signature is checked.
    let dnskey = SignedRrSet::group(&query_catalog(&zone, &n(APEX), code::DNSKEY).unwrap().answer).remove(0);
    let ds = usable_ds(&Parent::of(&[&k], 3600).0.iter().map(|d| d.rdata.clone()).collect::<Vec<_>>());
    let keys = validate_dnskey(&n(APEX), &dnskey, &ds, AlgorithmRule::AnyAlgorithm, NOW).unwrap();
    let www = query_catalog(&zone, &n("www"), code::A).unwrap();
    assert_eq!(check_response(&keys, &www, &n("www"), code::A, NOW), Verdict::Secure(Outcome::Answer));
    assert_eq!(
        check_response(&keys, &www, &n("www"), code::A, late),
        Verdict::Bogus(Bogus::SignatureTime {
            owner: "www.rollover.test.".into(),
            rtype: code::A,
            key_tag: k.key_tag(),
            now: late
        })
    );
}

fn strip(rtype: u16) -> impl Fn(&mut Response) {
    move |r: &mut Response| {
        r.authority.retain(|rec| {
            rec.rtype != rtype
                && !(rec.rtype == code::RRSIG && Rrsig::decode(&rec.rdata).unwrap().type_covered == rtype)
        })
    }
}

#[test]
fn missing_denial_proofs_are_bogus() {
    for (nsec3, rtype) in [(false, code::NSEC), (true, code::NSEC3)] {
        let k = csk(Algorithm::Ed25519);
        let zone = Spec::single(&k, nsec3).serve();
        let mut r = Resolver::new(&n(APEX), Altered(&zone, strip(rtype)), Parent::of(&[&k], 3600));
        for (qname, qtype, outcome) in queries() {
            let v = r.resolve(&qname, qtype, NOW);
            if outcome == Outcome::Answer {
                assert_eq!(v, Verdict::Secure(outcome));
            } else {
                assert!(
                    matches!(v, Verdict::Bogus(Bogus::Denial { .. })),
                    "{} {qtype}: {v:?}",
                    name::to_text(&qname)
                );
            }
        }
    }
}

#[test]
fn a_denial_for_another_name_is_bogus() {
    // An NXDOMAIN proof replayed for a name that exists.
    let k = csk(Algorithm::EcdsaP256Sha256);
    let zone = Spec::single(&k, true).serve();
    let replay = {
        let zone = zone.clone();
        move |r: &mut Response| {
            if r.answer.iter().any(|a| a.rtype == code::A) {
                *r = query_catalog(&zone, &n("nope"), code::A).unwrap();
            }
        }
    };
    let mut r = Resolver::new(&n(APEX), Altered(&zone, replay), Parent::of(&[&k], 3600));
    assert!(matches!(r.resolve(&n("www"), code::A, NOW), Verdict::Bogus(Bogus::Denial { .. })));
}

#[test]
fn nxdomain_for_an_empty_non_terminal_was_secure() {
    // The NODATA answer for the empty non-terminal ent. relabelled
    // NXDOMAIN: its NSEC (dangling. to deep.ent.) covers ent. and *.ent.,
    // but its next name lies below ent., so ent. exists. Accepting it
    // would let a resolver deny deep.ent. too (RFC 8020).
    for nsec3 in [false, true] {
        let k = csk(Algorithm::EcdsaP256Sha256);
        let zone = Spec::single(&k, nsec3).serve();
        let relabel = |r: &mut Response| {
            if r.answer.is_empty() && r.rcode == rcode::NOERROR {
                r.rcode = rcode::NXDOMAIN;
            }
        };
        let mut r = Resolver::new(&n(APEX), Altered(&zone, relabel), Parent::of(&[&k], 3600));
        let verdict = r.resolve(&n("ent"), code::A, NOW);
        assert!(matches!(verdict, Verdict::Bogus(Bogus::Denial { .. })), "nsec3 {nsec3}: {verdict:?}");
    }
}

#[test]
fn an_nsec_expanded_from_a_wildcard_proved_nxdomain() {
    // The wildcard NODATA answer for x.wild. TXT with its NSEC (and the
    // NSEC's RRSIG) moved from *.wild. to %.wild., which sorts just
    // before it, and relabelled NXDOMAIN. The signature still verifies,
    // as an expansion of *.wild., and the moved NSEC covers both x.wild.
    // and *.wild.
    let k = csk(Algorithm::EcdsaP256Sha256);
    let zone = Spec::single(&k, false).serve();
    let wildcard_owner = n("*.wild");
    let forge = |r: &mut Response| {
        let mut moved = false;
        for rec in r.authority.iter_mut().filter(|a| a.owner == wildcard_owner) {
            if let Some(star) = rec.owner.get_mut(1) {
                *star = b'%';
                moved = true;
            }
        }
        if moved {
            r.rcode = rcode::NXDOMAIN;
        }
    };
    let mut r = Resolver::new(&n(APEX), Altered(&zone, forge), Parent::of(&[&k], 3600));
    let verdict = r.resolve(&n("x.wild"), code::TXT, NOW);
    assert!(matches!(verdict, Verdict::Bogus(Bogus::Denial { .. })), "{verdict:?}");
}

/// A zone with a CSK of each algorithm, both in the DS set, where only
/// `signing` signs the zone's data (both sign the DNSKEY RRset).
fn two_algorithms(ds_both: bool, rule: AlgorithmRule) -> Verdict {
    let (a, b) = (csk(Algorithm::EcdsaP256Sha256), csk(Algorithm::Ed25519));
    let spec = Spec {
        published: vec![&a, &b],
        key_signers: vec![&a, &b],
        zone_signers: vec![&a],
        ..Spec::single(&a, false)
    };
    let zone = spec.serve();
    let ds = if ds_both { Parent::of(&[&a, &b], 3600) } else { Parent::of(&[&a], 3600) };
    Resolver::new(&n(APEX), &zone, ds).with_rule(rule).resolve(&n("www"), code::A, NOW)
}

#[test]
fn the_algorithm_rules() {
    use AlgorithmRule::*;
    let missing = |v: Verdict| matches!(v, Verdict::Bogus(Bogus::MissingAlgorithm { algorithm: 15, .. }));
    // RFC 6840 §5.11: one valid path suffices.
    assert!(two_algorithms(true, AnyAlgorithm).is_secure());
    assert!(two_algorithms(false, AnyAlgorithm).is_secure());
    // harden-algo-downgrade: the DS set's algorithms must all validate.
    assert!(missing(two_algorithms(true, EveryDsAlgorithm)));
    assert!(two_algorithms(false, EveryDsAlgorithm).is_secure());
    // RFC 4035 §2.2: the DNSKEY RRset's algorithms must all sign.
    assert!(missing(two_algorithms(false, EveryDnskeyAlgorithm)));
}

#[test]
fn cache_ttl_is_capped_by_the_signature() {
    let k = csk(Algorithm::EcdsaP256Sha256);
    let zone = Spec { ttl: 600, ..Spec::single(&k, false) }.serve();
    let set = SignedRrSet::group(&query_catalog(&zone, &n("www"), code::A).unwrap().answer).remove(0);
    assert_eq!(set.cache_ttl(NOW), 600);
    let expiration = NOW + u64::from(VALIDITY);
    assert_eq!(set.cache_ttl(expiration - 100), 100);
    assert_eq!(set.cache_ttl(expiration + 100), 0);
    // RFC 4035 §5.3.3: the original TTL caps a TTL raised on the way.
    let mut raised = set.clone();
    raised.ttl = 86400;
    for s in &mut raised.rrsigs {
        s.ttl = 86400;
    }
    assert_eq!(raised.cache_ttl(NOW), 600);
}

#[test]
fn referrals_are_secure_or_insecure_by_their_ds() {
    for nsec3 in [false, true] {
        let (k, child) = (csk(Algorithm::EcdsaP256Sha256), csk(Algorithm::Ed25519));
        let child_ds = ds::ds_rdata(&n("signed"), &child.dnskey_rdata(), ds::SHA256).unwrap();
        let hex: String = child_ds.iter().map(|b| format!("{b:02X}")).collect();
        let extra = format!(
            "signed 3600 IN NS ns.elsewhere.\n\
             signed 3600 IN DS {} {} 2 {}\n\
             unsigned 3600 IN NS ns.elsewhere.\n",
            child.key_tag(),
            child.algorithm().code(),
            &hex[8..]
        );
        let spec = Spec { extra, ..Spec::single(&k, nsec3) };
        let zone = spec.serve();
        let mut r = Resolver::new(&n(APEX), &zone, Parent::of(&[&k], 3600));
        assert_eq!(r.resolve(&n("host.signed"), code::A, NOW), Verdict::Secure(Outcome::SecureDelegation));
        assert_eq!(r.resolve(&n("host.unsigned"), code::A, NOW), Verdict::Insecure);
        // Without its DS RRset, the signed delegation lacks the proof
        // that it has none.
        let mut r = Resolver::new(&n(APEX), Altered(&zone, strip(code::DS)), Parent::of(&[&k], 3600));
        assert!(matches!(r.resolve(&n("host.signed"), code::A, NOW), Verdict::Bogus(Bogus::Denial { .. })));
    }
}

/// What a DS answer proves to a validator walking down from its anchor:
/// a signed child, an insecure one (only with the proof), a name inside
/// the zone, a name that does not exist, or nothing (bogus).
#[test]
fn ds_answers_prove_a_signed_child_an_insecure_one_or_no_cut() {
    for nsec3 in [false, true] {
        let (k, child) = (csk(Algorithm::EcdsaP256Sha256), csk(Algorithm::Ed25519));
        let child_ds = ds::ds_rdata(&n("signed"), &child.dnskey_rdata(), ds::SHA256).unwrap();
        let hex: String = child_ds.iter().map(|b| format!("{b:02X}")).collect();
        let extra = format!(
            "signed 3600 IN NS ns.elsewhere.\nsigned 3600 IN DS {} {} 2 {}\nunsigned 3600 IN NS ns.elsewhere.\n",
            child.key_tag(),
            child.algorithm().code(),
            &hex[8..]
        );
        let zone = Spec { extra, ..Spec::single(&k, nsec3) }.serve();
        let dnskey =
            SignedRrSet::group(&query_catalog(&zone, &n(APEX), code::DNSKEY).unwrap().answer).remove(0);
        let ds = usable_ds(&Parent::of(&[&k], 3600).0.iter().map(|d| d.rdata.clone()).collect::<Vec<_>>());
        let keys = validate_dnskey(&n(APEX), &dnskey, &ds, AlgorithmRule::AnyAlgorithm, NOW).unwrap();
        let ask = |name: &str| query_catalog(&zone, &n(name), code::DS).unwrap();
        let verdict = |name: &str| check_ds(&keys, &ask(name), &n(name), NOW);
        assert_eq!(verdict("signed"), DsVerdict::Secure(vec![child_ds.clone().into()]), "nsec3 {nsec3}");
        assert_eq!(verdict("unsigned"), DsVerdict::Insecure, "nsec3 {nsec3}");
        assert_eq!(verdict("www"), DsVerdict::NotACut, "nsec3 {nsec3}");
        assert_eq!(verdict("ent"), DsVerdict::NotACut, "nsec3 {nsec3}: an empty non-terminal");
        assert_eq!(verdict("nope"), DsVerdict::NxDomain, "nsec3 {nsec3}");
        // The absence of DS without its proof proves nothing.
        let denial = if nsec3 { code::NSEC3 } else { code::NSEC };
        let mut r = ask("unsigned");
        strip(denial)(&mut r);
        assert!(matches!(check_ds(&keys, &r, &n("unsigned"), NOW), DsVerdict::Bogus(_)), "nsec3 {nsec3}");
        // Nor does a DS RRset whose signature is gone.
        let mut r = ask("signed");
        r.answer.retain(|rec| rec.rtype != code::RRSIG);
        assert!(matches!(check_ds(&keys, &r, &n("signed"), NOW), DsVerdict::Bogus(_)), "nsec3 {nsec3}");
    }
}
