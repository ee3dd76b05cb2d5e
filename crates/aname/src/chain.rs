//! The chain of trust behind an upstream answer: which zone holds a name,
//! and whether that zone is signed (its validated keys) or proven
//! insecure, from a trust anchor down (RFC 4035 §5).
//!
//! The walk goes one label at a time from the root: at each name below
//! the zone reached so far, the DS RRset (or its absence) is asked for
//! and validated under that zone's keys with `sixgate_dnssec::validate`.
//! - a DS RRset: the name is a signed zone; its DNSKEY RRset is asked for
//!   and validated against the DS, and the walk goes on with its keys;
//! - a proof that the name is a delegation without DS (or an NSEC3
//!   opt-out span over it): the zone below is insecure, and this is the
//!   only way a name is taken as insecure;
//! - a proof that the name has no DS and is no delegation: it lies in the
//!   same zone, and the walk goes on;
//! - a proof that the name does not exist: no zone lies below it;
//! - anything else (no answer, no signature, a signature that does not
//!   verify): the walk fails, and the caller keeps its last good answer.
//!
//! What each step found is cached for the TTL of the records it rests
//! on, capped, so that one walk serves many targets.

use std::collections::HashMap;
use std::sync::Mutex;

use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zonefile;
use sixgate_dnssec::ds::{self, Ds};
use sixgate_dnssec::validate::{
    AlgorithmRule, DsVerdict, Response, SignedRrSet, TrustedKeys, check_ds, usable_ds, validate_dnskey,
};

/// The IANA root zone's trust anchors (root-anchors.xml): KSK-2017 (tag
/// 20326) and KSK-2024 (tag 38696), both RSA/SHA-256, as DS records.
const IANA_ROOT_ANCHORS: &str = "\
. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n\
. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16\n";

/// Most steps cached; past it the cache starts again empty.
const MAX_CACHED: usize = 4096;
/// Longest a step is cached, whatever the TTLs say.
const MAX_CACHE_SECS: u64 = 3600;

/// The root's trust anchor: the DS records (or DNSKEYs, made into DS)
/// the walk starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    ds: Vec<Box<[u8]>>,
}

/// Why a trust anchor could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The text is not zone-file syntax.
    #[error("trust anchor: {0}")]
    Syntax(String),
    /// A record that is not a DS or DNSKEY of the root.
    #[error("trust anchor: only DS or DNSKEY records of the root (\".\") are taken, not {0}")]
    NotRoot(String),
    /// No record the validator can use (algorithm 8, 10, 13 or 15, digest
    /// SHA-256 or SHA-384).
    #[error("trust anchor: no DS or DNSKEY with an algorithm and digest the validator implements")]
    Unusable,
}

impl TrustAnchor {
    /// The IANA root trust anchors, built in.
    pub fn iana_root() -> TrustAnchor {
        // The text is a constant; the test below reads it.
        TrustAnchor::from_text(IANA_ROOT_ANCHORS).unwrap_or(TrustAnchor { ds: Vec::new() })
    }

    /// Reads zone-file lines (as in unbound's `trust-anchor-file`): DS or
    /// DNSKEY records owned by the root. A DNSKEY is taken by its SHA-256
    /// digest.
    pub fn from_text(text: &str) -> Result<TrustAnchor, AnchorError> {
        let records = zonefile::parse(text, &[0]).map_err(|e| AnchorError::Syntax(e.to_string()))?;
        let mut out = Vec::new();
        for r in records {
            let what = || format!("{} type {}", name::to_text(&r.owner), r.rtype);
            if r.owner[..] != [0] {
                return Err(AnchorError::NotRoot(what()));
            }
            match r.rtype {
                code::DS => out.push(r.rdata),
                code::DNSKEY => {
                    let d = ds::ds_rdata(&[0], &r.rdata, ds::SHA256).ok_or(AnchorError::Unusable)?;
                    out.push(d.into());
                }
                _ => return Err(AnchorError::NotRoot(what())),
            }
        }
        if usable_ds(&out).is_empty() {
            return Err(AnchorError::Unusable);
        }
        Ok(TrustAnchor { ds: out })
    }

    fn usable(&self) -> Vec<Ds> {
        usable_ds(&self.ds)
    }
}

/// Where a name lies.
#[derive(Debug, Clone)]
pub(crate) enum Security {
    /// In a signed zone, whose validated keys these are.
    Secure(TrustedKeys),
    /// Below a delegation proven to have no DS.
    Insecure {
        /// The insecure delegation, lowercased.
        cut: Box<[u8]>,
    },
}

/// Why a walk or a validation did not end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Miss {
    /// The query rate limit left no query for it now: not the target's
    /// fault; try again soon.
    RateLimited,
    /// A real failure, for the status.
    Failed(String),
}

/// What asking the upstream resolvers takes: a query of a name and type
/// with DO (and CD, so that the validation is ours), answered by a
/// decoded response.
pub(crate) trait Ask {
    /// Asks for `qname` (lowercased wire form) and `qtype`.
    async fn ask(&self, qname: &[u8], qtype: u16) -> Result<Response, Miss>;
}

/// One step of the walk, at one name.
#[derive(Debug, Clone)]
enum Step {
    Keys(TrustedKeys),
    Insecure,
    NotACut,
    NoName,
}

/// Steps by name, with when they expire.
type StepCache = HashMap<Box<[u8]>, (Step, u64)>;

/// Walks chains of trust for one anchor, caching the steps.
pub(crate) struct Chain {
    anchor: TrustAnchor,
    cache: Mutex<StepCache>,
}

impl Chain {
    pub(crate) fn new(anchor: TrustAnchor) -> Chain {
        Chain { anchor, cache: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, at: &[u8], now: u64) -> Option<Step> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(at).filter(|(_, expires)| now < *expires).map(|(s, _)| s.clone())
    }

    fn remember(&self, at: &[u8], step: &Step, ttl: u32, now: u64) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        let expires = now + u64::from(ttl).min(MAX_CACHE_SECS);
        cache.insert(at.into(), (step.clone(), expires));
    }

    /// The zone holding `qname` (lowercased), and whether it is signed.
    pub(crate) async fn security(&self, ask: &impl Ask, qname: &[u8], now: u64) -> Result<Security, Miss> {
        let root: &[u8] = &[0];
        let mut keys = match self.cached(root, now) {
            Some(Step::Keys(k)) => k,
            _ => {
                let (k, ttl) = self.dnskey(ask, root, &self.anchor.usable(), now).await?;
                self.remember(root, &Step::Keys(k.clone()), ttl, now);
                k
            }
        };
        let labels = name::label_count(qname);
        for depth in 1..=labels {
            let at = suffix(qname, depth);
            let step = match self.cached(at, now) {
                Some(s) => s,
                None => {
                    let (s, ttl) = self.step(ask, &keys, at, now).await?;
                    self.remember(at, &s, ttl, now);
                    s
                }
            };
            match step {
                Step::Keys(k) => keys = k,
                Step::Insecure => return Ok(Security::Insecure { cut: at.into() }),
                Step::NotACut => {}
                Step::NoName => break,
            }
        }
        Ok(Security::Secure(keys))
    }

    async fn step(
        &self,
        ask: &impl Ask,
        keys: &TrustedKeys,
        at: &[u8],
        now: u64,
    ) -> Result<(Step, u32), Miss> {
        let r = ask.ask(at, code::DS).await?;
        let ttl = response_ttl(&r);
        match check_ds(keys, &r, at, now) {
            DsVerdict::Secure(ds) => {
                let usable: Vec<Ds> = usable_ds(&ds);
                // RFC 4035 §5.2: a DS set naming no algorithm the
                // validator implements makes the zone insecure; the DS
                // set itself is validated.
                if usable.is_empty() {
                    return Ok((Step::Insecure, ttl));
                }
                let (k, key_ttl) = self.dnskey(ask, at, &usable, now).await?;
                Ok((Step::Keys(k), ttl.min(key_ttl)))
            }
            DsVerdict::Insecure => Ok((Step::Insecure, ttl)),
            DsVerdict::NotACut => Ok((Step::NotACut, ttl)),
            DsVerdict::NxDomain => Ok((Step::NoName, ttl)),
            DsVerdict::Bogus(b) => Err(Miss::Failed(format!("bogus DS for {}: {b}", name::to_text(at)))),
        }
    }

    /// The DNSKEY RRset of `apex`, validated against `ds`, and its TTL.
    async fn dnskey(
        &self,
        ask: &impl Ask,
        apex: &[u8],
        ds: &[Ds],
        now: u64,
    ) -> Result<(TrustedKeys, u32), Miss> {
        let r = ask.ask(apex, code::DNSKEY).await?;
        let set = SignedRrSet::group(&r.answer)
            .into_iter()
            .find(|s| s.rtype == code::DNSKEY && s.owner.eq_ignore_ascii_case(apex))
            .ok_or_else(|| Miss::Failed(format!("no DNSKEY RRset for {}", name::to_text(apex))))?;
        let ttl = set.cache_ttl(now);
        validate_dnskey(apex, &set, ds, AlgorithmRule::AnyAlgorithm, now)
            .map(|k| (k, ttl))
            .map_err(|b| Miss::Failed(format!("bogus DNSKEY for {}: {b}", name::to_text(apex))))
    }
}

/// How long what a response proves may be kept: its smallest TTL.
fn response_ttl(r: &Response) -> u32 {
    r.answer.iter().chain(&r.authority).map(|rr| rr.ttl).min().unwrap_or(0)
}

/// The ancestor of `name` (or itself) with `labels` labels.
pub(crate) fn suffix(name: &[u8], labels: usize) -> &[u8] {
    let mut n = name;
    for _ in labels..name::label_count(name) {
        n = name::parent(n).unwrap_or(n);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_root_anchor_reads_and_is_usable() {
        let a = TrustAnchor::iana_root();
        let tags: Vec<u16> = a.usable().iter().map(|d| d.key_tag).collect();
        assert_eq!(tags, vec![20326, 38696]);
    }

    #[test]
    fn anchors_other_than_the_roots_are_refused() {
        let e = TrustAnchor::from_text("example. IN DS 1 13 2 00").unwrap_err();
        assert!(matches!(e, AnchorError::NotRoot(_)), "{e}");
        let e = TrustAnchor::from_text(". IN DS 1 5 1 00").unwrap_err();
        assert_eq!(e, AnchorError::Unusable);
        assert!(TrustAnchor::from_text("not a record").is_err());
    }
}
