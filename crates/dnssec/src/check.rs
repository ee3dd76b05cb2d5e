//! The check a signed snapshot passes before it is served: every RRset
//! that must be signed carries a signature by a key of the zone's own
//! DNSKEY RRset that is valid now and for a while yet.
//!
//! Real outages came from zones signed with a key missing from their
//! DNSKEY set, and from records a signer silently stopped re-signing; this
//! catches both before a resolver does. Extra signatures by other keys are
//! allowed (an algorithm rollover adds signatures before their DNSKEY,
//! RFC 6781 §4.1.4), as long as one of the zone's own keys covers the
//! RRset.

use std::collections::HashSet;

use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{NodeRef, Zone};

use crate::key;
use crate::rrsig::Rrsig;

mod expiry;
mod verify;
pub use expiry::{Expiry, expiration_time, signature_expiry};
pub use verify::{verify_nodes, verify_signatures, verify_zone};

/// Most problems reported from one check (the first ones found).
pub const MAX_PROBLEMS: usize = 20;

/// What is wrong with a signed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The owner, presentation form.
    pub owner: String,
    /// The RRset's type.
    pub rtype: u16,
    /// What is wrong.
    pub reason: &'static str,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.owner, sixgate_dns::zonefile::type_text(self.rtype), self.reason)
    }
}

/// Checks the whole zone, or only the nodes named in `owners`
/// (lowercased). `min_valid` is how long from `now` a signature must stay
/// valid. An unsigned zone (no DNSKEY at the apex) passes.
pub fn check_zone(zone: &Zone, owners: Option<&[Box<[u8]>]>, now: u64, min_valid: u32) -> Vec<Problem> {
    let Some(keys) = zone.apex_node().and_then(|n| n.rrset(code::DNSKEY)) else {
        return Vec::new();
    };
    let ours: HashSet<(u16, u8)> = keys
        .rdatas()
        .filter_map(|rd| key::decode_dnskey(rd).map(|(_, _, alg, _)| (key::key_tag(rd), alg)))
        .collect();
    let mut problems = Vec::new();
    let mut visit = |node: NodeRef<'_>| {
        if problems.len() < MAX_PROBLEMS {
            check_node(node, &ours, now, min_valid, &mut problems);
        }
    };
    match owners {
        Some(list) => list.iter().filter_map(|o| zone.node(o)).for_each(&mut visit),
        None => zone.nodes().for_each(&mut visit),
    }
    problems.truncate(MAX_PROBLEMS);
    problems
}

fn check_node(
    node: NodeRef<'_>,
    ours: &HashSet<(u16, u8)>,
    now: u64,
    min_valid: u32,
    problems: &mut Vec<Problem>,
) {
    // Glue and occluded data (the node's facts) are not signed.
    let facts = node.facts();
    if node.is_empty() || facts.occluded() {
        return;
    }
    let cut = facts.is_delegation();
    let sigs: Vec<Rrsig> = node
        .rrset(code::RRSIG)
        .map(|s| s.rdatas().filter_map(|rd| Rrsig::decode(rd).ok()).collect())
        .unwrap_or_default();
    let until = now.saturating_add(u64::from(min_valid));
    for set in node.rrsets() {
        let t = set.rtype;
        if t == code::RRSIG || (cut && !matches!(t, code::DS | code::NSEC)) {
            continue;
        }
        let mut covering = sigs.iter().filter(|s| s.type_covered == t).peekable();
        let problem = if covering.peek().is_none() {
            Some("not signed")
        } else if !sigs.iter().any(|s| s.type_covered == t && ours.contains(&(s.key_tag, s.algorithm))) {
            Some("signed only by keys missing from the DNSKEY RRset")
        } else if !covering
            .any(|s| ours.contains(&(s.key_tag, s.algorithm)) && s.is_valid_at(now) && s.is_valid_at(until))
        {
            Some("no signature by the zone's keys valid now and through the refresh margin")
        } else {
            None
        };
        if let Some(reason) = problem {
            problems.push(Problem { owner: name::to_text(node.name()), rtype: t, reason });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::denial::Nsec3Params;
    use crate::key::flags;
    use crate::sign::{ActiveKey, Signer};
    use crate::{Algorithm, KeyPair};
    use sixgate_dns::zone::{Change, Record};
    use sixgate_dns::zonefile;

    pub(crate) const NOW: u64 = 1_800_000_000;
    /// The validity and jitter of [`sign_example`]'s signatures.
    pub(crate) const VALIDITY: u32 = 14 * 86400;
    pub(crate) const JITTER: u32 = 3600;

    /// `example.` from the zone-file `text`, with `published` as its
    /// DNSKEY RRset, signed by `signing` (NSEC, or NSEC3 with the default
    /// parameters) at [`NOW`]: the fixture of the check's and the
    /// verifier's tests.
    pub(crate) fn sign_example(
        text: &str,
        published: &KeyPair,
        signing: &KeyPair,
        nsec3: bool,
    ) -> (Box<[u8]>, Vec<Record>) {
        let apex = name::from_text("example.", None).unwrap();
        let mut records = zonefile::parse(text, &apex).unwrap();
        records.push(Record {
            owner: apex.clone(),
            rtype: code::DNSKEY,
            ttl: 3600,
            rdata: published.dnskey_rdata().into(),
        });
        if nsec3 {
            records.push(Record {
                owner: apex.clone(),
                rtype: code::NSEC3PARAM,
                ttl: 0,
                rdata: Nsec3Params::default().nsec3param_rdata().into(),
            });
        }
        let signer = Signer {
            apex: apex.clone(),
            keys: vec![ActiveKey {
                key: signing,
                tag: signing.key_tag(),
                signs_keys: true,
                signs_zone: true,
            }],
            nsec3: nsec3.then(Nsec3Params::default),
            now: NOW,
            inception_offset: 3600,
            validity: VALIDITY,
            jitter: JITTER,
        };
        let out = signer.sign_zone(&records, 1).unwrap();
        records.extend(out.records);
        (apex, records)
    }

    fn signed(key: &KeyPair, nsec3: bool, extra: Option<&KeyPair>) -> (Box<[u8]>, Vec<Record>) {
        let text = "@ 3600 SOA ns hm 1 2 3 4 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\nwww 300 A 192.0.2.2\n\
                    sub 3600 NS ns.sub\nns.sub 3600 A 192.0.2.3\n";
        sign_example(text, key, extra.unwrap_or(key), nsec3)
    }

    #[test]
    fn a_well_signed_zone_passes_and_problems_are_named() {
        let k = KeyPair::generate(Algorithm::EcdsaP256Sha256, flags::ZONE | flags::SEP).unwrap();
        for nsec3 in [false, true] {
            let (apex, records) = signed(&k, nsec3, None);
            let zone = Zone::build(&apex, records.clone(), 1).unwrap();
            assert_eq!(check_zone(&zone, None, NOW, 86400), vec![]);
            // Too close to expiry: refused.
            let late = check_zone(&zone, None, NOW + 13 * 86400, 86400);
            assert!(late.iter().any(|p| p.reason.starts_with("no signature")), "{late:?}");
            // A record nobody signed.
            let www = name::from_text("new.example.", None).unwrap();
            let z2 = zone
                .apply(&[Change::Add(Record {
                    owner: www.clone(),
                    rtype: code::A,
                    ttl: 300,
                    rdata: vec![192, 0, 2, 9].into(),
                })])
                .unwrap();
            let p = check_zone(&z2, Some(&[name::to_lowercase(&www)]), NOW, 86400);
            assert_eq!(p.len(), 1);
            assert_eq!(p[0].reason, "not signed");
            assert_eq!(p[0].to_string(), "new.example. A: not signed");
        }
    }

    #[test]
    fn a_zone_signed_by_a_key_missing_from_its_dnskey_set_is_refused() {
        let published = KeyPair::generate(Algorithm::EcdsaP256Sha256, flags::ZONE | flags::SEP).unwrap();
        let other = KeyPair::generate(Algorithm::EcdsaP256Sha256, flags::ZONE | flags::SEP).unwrap();
        let (apex, records) = signed(&published, false, Some(&other));
        let zone = Zone::build(&apex, records, 1).unwrap();
        let p = check_zone(&zone, None, NOW, 86400);
        assert!(!p.is_empty());
        assert!(p.iter().all(|p| p.reason == "signed only by keys missing from the DNSKEY RRset"), "{p:?}");
        assert!(p.len() <= MAX_PROBLEMS);
    }
}
