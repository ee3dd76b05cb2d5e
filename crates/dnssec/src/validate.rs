//! Validating signed answers the way a validating resolver does
//! (RFC 4035 §5, RFC 5155 §8), and a model of such a resolver's cache, so
//! that a key rollover can be checked step by step on a simulated clock.
//!
//! The pieces, from the bottom up:
//! - [`SignedRrSet`]: an RRset as received, with the RRSIGs covering it,
//!   and how long a resolver may cache it (RFC 4035 §5.3.3).
//! - [`validate_dnskey`]: the DNSKEY RRset against the parent's DS set
//!   (RFC 4035 §5.2), giving the [`TrustedKeys`].
//! - [`validate_rrset`]: any RRset against the trusted keys (RFC 4035
//!   §5.3).
//! - the denial proofs with NSEC (RFC 4035 §5.4) and NSEC3 (RFC 5155 §8),
//!   and wildcard answers (RFC 4035 §5.3.4), applied by [`check_response`].
//! - [`Resolver`]: asks an [`Authority`] (the zone) and another one (its
//!   parent, for DS) at a simulated time, caches what it got for its TTL,
//!   and gives a [`Verdict`]. A cached RRset is used until its TTL runs
//!   out even if the zone has changed since: that is how rollovers fail.
//!
//! # Which signatures suffice
//!
//! RFC 6840 §5.11: a validator "SHOULD accept any single valid path", and
//! "MUST NOT insist that all algorithms signaled in the DNSKEY RRset
//! work". Unbound does this by default (`harden-algo-downgrade: no`): the
//! DNSKEY RRset is trusted once one DS names a key that validly signs it,
//! and every other RRset is secure once one signature by any key of that
//! trusted set verifies. That is [`AlgorithmRule::AnyAlgorithm`], the
//! default. Two stricter rules are modelled as well, because real
//! validators (and the zone's own duty) go further:
//! - [`AlgorithmRule::EveryDsAlgorithm`], unbound with
//!   `harden-algo-downgrade: yes`: every algorithm of the DS set must
//!   validate the DNSKEY RRset and every other RRset.
//! - [`AlgorithmRule::EveryDnskeyAlgorithm`]: every algorithm of the
//!   DNSKEY RRset must sign every RRset. RFC 4035 §2.2 asks this of the
//!   zone; RFC 6840 §5.11 forbids validators to insist on it, but older
//!   ones did, which is why RFC 6781 §4.1.4 orders an algorithm rollover
//!   the conservative way. A rollover that keeps this rule keeps the
//!   zone's side of RFC 4035 §2.2.
//!
//! Only the algorithms this crate can verify (8, 10, 13 and 15) count: a DS set
//! naming none of them leaves the zone insecure (RFC 4035 §5.2).

use std::collections::BTreeSet;

use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::Record;

use crate::canonical;
use crate::ds::{self, Ds};
use crate::key::{self, flags};
use crate::rrsig::{self, RrSet, Rrsig, VerifyError};

mod denial;
mod resolver;
mod response;

pub use resolver::{DsVerdict, Failure, Outcome, Resolver, Verdict, check_ds, check_response, sweep};
pub use response::{Authority, Response, ResponseError, Timeline, decode_response, query_catalog};

#[cfg(test)]
mod resolver_tests;
#[cfg(test)]
mod tests;

/// Which algorithms must validate an RRset (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AlgorithmRule {
    /// One valid signature by a trusted key suffices (RFC 6840 §5.11;
    /// unbound's default, `harden-algo-downgrade: no`).
    #[default]
    AnyAlgorithm,
    /// Every algorithm of the DS set must validate (unbound with
    /// `harden-algo-downgrade: yes`).
    EveryDsAlgorithm,
    /// Every algorithm of the DNSKEY RRset must sign every RRset
    /// (RFC 4035 §2.2, the zone's duty).
    EveryDnskeyAlgorithm,
}

/// Why an answer is bogus. Owner names are in presentation form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Bogus {
    /// An RRset that should be signed carries no RRSIG.
    #[error("{owner} type {rtype}: no RRSIG")]
    Unsigned {
        /// Owner.
        owner: String,
        /// Type.
        rtype: u16,
    },
    /// No RRSIG is by a key of the trusted DNSKEY set: the classic
    /// rollover failure, a signature by a key the resolver's cached
    /// DNSKEY RRset lacks.
    #[error("{owner} type {rtype}: signed by keys {signed_by:?}, none in the trusted DNSKEY set {trusted:?}")]
    UnknownKey {
        /// Owner.
        owner: String,
        /// Type.
        rtype: u16,
        /// Key tags of the RRSIGs.
        signed_by: Vec<u16>,
        /// Key tags of the trusted keys.
        trusted: Vec<u16>,
    },
    /// The only signatures by trusted keys are outside their validity
    /// window (RFC 4035 §5.3.1).
    #[error("{owner} type {rtype}: the signature by key {key_tag} is not valid at {now}")]
    SignatureTime {
        /// Owner.
        owner: String,
        /// Type.
        rtype: u16,
        /// Key tag of the signature.
        key_tag: u16,
        /// The validation time.
        now: u64,
    },
    /// The only signatures by trusted keys do not verify.
    #[error("{owner} type {rtype}: the signature by key {key_tag}: {error}")]
    Signature {
        /// Owner.
        owner: String,
        /// Type.
        rtype: u16,
        /// Key tag of the signature.
        key_tag: u16,
        /// What went wrong.
        error: VerifyError,
    },
    /// The [`AlgorithmRule`] asks for a valid signature of an algorithm
    /// that has none.
    #[error("{owner} type {rtype}: no valid signature of algorithm {algorithm}")]
    MissingAlgorithm {
        /// Owner.
        owner: String,
        /// Type.
        rtype: u16,
        /// The algorithm lacking.
        algorithm: u8,
    },
    /// An RRset outside the zone whose keys are trusted.
    #[error("{owner} type {rtype} is outside the zone {zone}")]
    OutOfZone {
        /// Owner.
        owner: String,
        /// Type.
        rtype: u16,
        /// The zone.
        zone: String,
    },
    /// The zone served no DNSKEY RRset although the parent has a DS.
    #[error("no DNSKEY RRset")]
    NoDnskey,
    /// No DS names a DNSKEY that signs the DNSKEY RRset (RFC 4035 §5.2).
    #[error("the DS set {ds:?} names no key of the DNSKEY RRset {dnskey:?} that signs it")]
    NoDsMatch {
        /// Key tags the DS records name.
        ds: Vec<u16>,
        /// Key tags of the DNSKEY RRset.
        dnskey: Vec<u16>,
    },
    /// A negative answer, or a wildcard answer, whose proof is missing or
    /// does not prove it.
    #[error("{name} type {rtype}: {why}")]
    Denial {
        /// The name asked for (or reached through a CNAME).
        name: String,
        /// The type asked for.
        rtype: u16,
        /// What is wrong with the proof.
        why: &'static str,
    },
    /// The server answered with an error code.
    #[error("{name} type {rtype}: the server answered rcode {rcode}")]
    Rcode {
        /// The name asked for.
        name: String,
        /// The type asked for.
        rtype: u16,
        /// The rcode.
        rcode: u16,
    },
    /// The server's response could not be used.
    #[error("{name} type {rtype}: {error}")]
    Response {
        /// The name asked for.
        name: String,
        /// The type asked for.
        rtype: u16,
        /// What is wrong with it.
        error: ResponseError,
    },
}

/// One RRset as received, with the RRSIGs covering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRrSet {
    /// Owner name, wire form, as received.
    pub owner: Box<[u8]>,
    /// Type.
    pub rtype: u16,
    /// The smallest TTL of its records.
    pub ttl: u32,
    /// Rdata of each record.
    pub rdatas: Vec<Box<[u8]>>,
    /// The RRSIG records covering it.
    pub rrsigs: Vec<Record>,
}

impl SignedRrSet {
    /// Groups records into RRsets (same owner, in any case, and type) and
    /// puts each RRSIG with the RRset of the type it covers. RRSIGs that
    /// cannot be read or cover no RRset present are left out.
    pub fn group(records: &[Record]) -> Vec<SignedRrSet> {
        let mut sets: Vec<SignedRrSet> = Vec::new();
        for r in records.iter().filter(|r| r.rtype != code::RRSIG) {
            match sets.iter_mut().find(|s| s.rtype == r.rtype && s.owner.eq_ignore_ascii_case(&r.owner)) {
                Some(s) => {
                    s.ttl = s.ttl.min(r.ttl);
                    s.rdatas.push(r.rdata.clone());
                }
                None => sets.push(SignedRrSet {
                    owner: r.owner.clone(),
                    rtype: r.rtype,
                    ttl: r.ttl,
                    rdatas: vec![r.rdata.clone()],
                    rrsigs: Vec::new(),
                }),
            }
        }
        for r in records.iter().filter(|r| r.rtype == code::RRSIG) {
            let Ok(sig) = Rrsig::decode(&r.rdata) else { continue };
            if let Some(s) = sets
                .iter_mut()
                .find(|s| s.rtype == sig.type_covered && s.owner.eq_ignore_ascii_case(&r.owner))
            {
                s.rrsigs.push(r.clone());
            }
        }
        sets
    }

    /// How long a resolver may cache this RRset from `now` (RFC 4035
    /// §5.3.3): no longer than its TTL, nor, for a signed RRset, than the
    /// RRSIG's TTL, its original TTL, or the time left until it expires.
    /// The cap of the longest-lived RRSIG is taken: a resolver that
    /// validated with that one may keep the RRset that long, and the
    /// model looks for the worst case.
    pub fn cache_ttl(&self, now: u64) -> u32 {
        let mut sig_cap: Option<u32> = None;
        for r in &self.rrsigs {
            let Ok(sig) = Rrsig::decode(&r.rdata) else { continue };
            let left = sig.expiration.wrapping_sub(now as u32) as i32;
            let cap = r.ttl.min(sig.original_ttl).min(left.max(0) as u32);
            sig_cap = Some(sig_cap.map_or(cap, |c| c.max(cap)));
        }
        self.ttl.min(sig_cap.unwrap_or(u32::MAX))
    }

    /// The owner in presentation form, for messages.
    fn owner_text(&self) -> String {
        name::to_text(&self.owner)
    }
}

/// The keys of a zone a validator trusts, and what it asks of signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKeys {
    /// The zone apex, lowercased wire form.
    pub zone: Box<[u8]>,
    /// DNSKEY rdata of each key of the validated DNSKEY RRset that may
    /// sign: zone flag set, not revoked (RFC 4034 §2.1.1, RFC 5011 §2.1).
    pub keys: Vec<Box<[u8]>>,
    /// Algorithms of which every RRset needs a valid signature; empty
    /// when one valid signature of any algorithm suffices.
    pub required: BTreeSet<u8>,
}

impl TrustedKeys {
    /// Key tags of the trusted keys.
    pub fn tags(&self) -> Vec<u16> {
        self.keys.iter().map(|k| key::key_tag(k)).collect()
    }
}

/// What a validated RRset's signature says about how it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated {
    /// For an RRset synthesized from a wildcard, the labels field of the
    /// validating RRSIG: the wildcard is `*.` plus the owner's rightmost
    /// that many labels (RFC 4035 §5.3.4).
    pub wildcard: Option<u8>,
}

/// The DS records a validator can use: algorithm and digest type both
/// implemented (RFC 4035 §5.2: with none, the zone is treated as
/// insecure). Malformed rdata is left out.
pub fn usable_ds(rdatas: &[Box<[u8]>]) -> Vec<Ds> {
    rdatas
        .iter()
        .filter_map(|rd| Ds::decode(rd))
        .filter(|d| rrsig::verifies(d.algorithm) && matches!(d.digest_type, ds::SHA256 | ds::SHA384))
        .collect()
}

/// Validates an RRset with its RRSIGs under trusted keys at `now`
/// (RFC 4035 §5.3): secure if an RRSIG made by a trusted key (same tag
/// and algorithm, signer the zone) is valid at `now` and verifies, and,
/// if [`TrustedKeys::required`] names algorithms, one such RRSIG of each.
pub fn validate_rrset(set: &SignedRrSet, keys: &TrustedKeys, now: u64) -> Result<Validated, Bogus> {
    let owner = name::to_lowercase(&set.owner);
    if !name::is_at_or_below(&owner, &keys.zone) {
        return Err(Bogus::OutOfZone {
            owner: set.owner_text(),
            rtype: set.rtype,
            zone: name::to_text(&keys.zone),
        });
    }
    let rdatas: Vec<&[u8]> = set.rdatas.iter().map(|r| &r[..]).collect();
    let rrset = RrSet { owner: &set.owner, rtype: set.rtype, ttl: set.ttl, rdatas: &rdatas };
    let mut good: BTreeSet<u8> = BTreeSet::new();
    let mut wildcard = None;
    let mut signed_by = Vec::new();
    let mut failure: Option<Bogus> = None;
    for r in &set.rrsigs {
        let Ok(sig) = Rrsig::decode(&r.rdata) else { continue };
        if sig.type_covered != set.rtype {
            continue;
        }
        signed_by.push(sig.key_tag);
        // RFC 4035 §5.3.1: the signer is the zone whose keys are used.
        if !sig.signer.eq_ignore_ascii_case(&keys.zone) {
            continue;
        }
        let mut candidates = keys.keys.iter().filter(|k| {
            key::key_tag(k) == sig.key_tag
                && key::decode_dnskey(k).is_some_and(|(_, _, a, _)| a == sig.algorithm)
        });
        let Some(first) = candidates.next() else { continue };
        if !sig.is_valid_at(now) {
            failure.get_or_insert(Bogus::SignatureTime {
                owner: set.owner_text(),
                rtype: set.rtype,
                key_tag: sig.key_tag,
                now,
            });
            continue;
        }
        // Key tags collide now and then: try each key with this tag.
        for k in std::iter::once(first).chain(candidates) {
            match rrsig::verify(k, &sig, &rrset) {
                Ok(()) => {
                    good.insert(sig.algorithm);
                    if sig.labels < canonical::labels(&set.owner) {
                        wildcard = Some(sig.labels);
                    }
                    break;
                }
                Err(error) => {
                    failure.get_or_insert(Bogus::Signature {
                        owner: set.owner_text(),
                        rtype: set.rtype,
                        key_tag: sig.key_tag,
                        error,
                    });
                }
            }
        }
    }
    if good.is_empty() {
        return Err(failure.unwrap_or_else(|| {
            if signed_by.is_empty() {
                Bogus::Unsigned { owner: set.owner_text(), rtype: set.rtype }
            } else {
                Bogus::UnknownKey {
                    owner: set.owner_text(),
                    rtype: set.rtype,
                    signed_by,
                    trusted: keys.tags(),
                }
            }
        }));
    }
    if let Some(&algorithm) = keys.required.iter().find(|a| !good.contains(a)) {
        return Err(Bogus::MissingAlgorithm { owner: set.owner_text(), rtype: set.rtype, algorithm });
    }
    Ok(Validated { wildcard })
}

/// Validates the DNSKEY RRset of the zone `apex` against the usable DS
/// records of its parent (see [`usable_ds`]; the caller treats an empty
/// set as insecure) and returns the keys it then trusts (RFC 4035 §5.2):
/// the DNSKEY RRset must be signed, validly at `now`, by a key that a DS
/// names, plus what `rule` asks.
pub fn validate_dnskey(
    apex: &[u8],
    dnskey: &SignedRrSet,
    ds: &[Ds],
    rule: AlgorithmRule,
    now: u64,
) -> Result<TrustedKeys, Bogus> {
    let zone = name::to_lowercase(apex);
    if dnskey.rtype != code::DNSKEY || !dnskey.owner.eq_ignore_ascii_case(&zone) {
        return Err(Bogus::NoDnskey);
    }
    let keys: Vec<Box<[u8]>> = dnskey
        .rdatas
        .iter()
        .filter(|k| {
            key::decode_dnskey(k).is_some_and(|(f, _, _, _)| f & flags::ZONE != 0 && f & flags::REVOKE == 0)
        })
        .cloned()
        .collect();
    let mut anchored: BTreeSet<u8> = BTreeSet::new();
    let mut failure: Option<Bogus> = None;
    for d in ds {
        for k in keys.iter().filter(|k| d.matches(&zone, k)) {
            let one = TrustedKeys { zone: zone.clone(), keys: vec![k.clone()], required: BTreeSet::new() };
            match validate_rrset(dnskey, &one, now) {
                Ok(_) => {
                    anchored.insert(d.algorithm);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    }
    if anchored.is_empty() {
        return Err(failure.unwrap_or_else(|| Bogus::NoDsMatch {
            ds: ds.iter().map(|d| d.key_tag).collect(),
            dnskey: dnskey.rdatas.iter().map(|k| key::key_tag(k)).collect(),
        }));
    }
    let supported = |a: &u8| rrsig::verifies(*a);
    let required: BTreeSet<u8> = match rule {
        AlgorithmRule::AnyAlgorithm => BTreeSet::new(),
        AlgorithmRule::EveryDsAlgorithm => ds.iter().map(|d| d.algorithm).filter(supported).collect(),
        AlgorithmRule::EveryDnskeyAlgorithm => keys
            .iter()
            .filter_map(|k| key::decode_dnskey(k).map(|(_, _, a, _)| a))
            .filter(supported)
            .collect(),
    };
    let trusted = TrustedKeys { zone, keys, required };
    match rule {
        AlgorithmRule::AnyAlgorithm => {}
        // Each DS algorithm needs a DS naming a key that signs the RRset.
        AlgorithmRule::EveryDsAlgorithm => {
            if let Some(&algorithm) = trusted.required.iter().find(|a| !anchored.contains(a)) {
                return Err(Bogus::MissingAlgorithm {
                    owner: dnskey.owner_text(),
                    rtype: code::DNSKEY,
                    algorithm,
                });
            }
        }
        AlgorithmRule::EveryDnskeyAlgorithm => {
            validate_rrset(dnskey, &trusted, now)?;
        }
    }
    Ok(trusted)
}
