//! A validating resolver for one zone, with a cache, on a simulated
//! clock: what a resolver on the internet sees of a zone while its keys
//! roll.
//!
//! The cache keeps three kinds of entries, each for its own TTL and
//! independently of the others:
//! - the parent's DS RRset (or its absence), asked of the parent;
//! - the zone's DNSKEY RRset with its RRSIGs, asked of the zone;
//! - each response, by (name, type), with its RRSIGs and proofs.
//!
//! An entry is used until its TTL runs out, however the zone has changed
//! meanwhile. Positive TTLs are capped as RFC 4035 §5.3.3 says (see
//! [`SignedRrSet::cache_ttl`]), negative ones by the SOA's MINIMUM
//! (RFC 2308 §5). Signatures are checked when an answer is used, against
//! the DNSKEY RRset and DS RRset cached at that moment: a resolver that
//! validated when it fetched would accept some of these combinations, but
//! one behind a forwarder's cache meets exactly them, and the timelines
//! of RFC 7583 are made for it. Nothing is fetched again on failure.

use std::collections::HashMap;

use sixgate_dns::message::rcode;
use sixgate_dns::name;
use sixgate_dns::rtype::code;

use super::denial::{Denial, Strength};
use super::response::{Authority, Response, ResponseError};
use super::{AlgorithmRule, Bogus, SignedRrSet, TrustedKeys, usable_ds, validate_dnskey, validate_rrset};
use crate::ds::Ds;

/// Most CNAMEs followed inside one response.
const MAX_CNAME_HOPS: usize = 16;

/// What a resolver makes of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Validated: the zone is signed, and the answer proven.
    Secure(Outcome),
    /// Not validated, and rightly so: the parent has no usable DS for
    /// the zone, or the proof rests on an NSEC3 opt-out span.
    Insecure,
    /// Validation failed: a resolver answers SERVFAIL.
    Bogus(Bogus),
}

impl Verdict {
    /// True for [`Verdict::Secure`].
    pub fn is_secure(&self) -> bool {
        matches!(self, Verdict::Secure(_))
    }
}

/// What a secure answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The RRset asked for, at the name or at the end of its CNAMEs.
    Answer,
    /// The RRset asked for, synthesized from a wildcard, with the proof
    /// that no closer name exists.
    WildcardAnswer,
    /// The name does not exist.
    NxDomain,
    /// The name exists without the type.
    NoData,
    /// A CNAME chain leaves the zone; the part inside it is validated.
    LeavesZone,
    /// A referral to a child zone with a DS RRset (the child's own
    /// answers are not validated here).
    SecureDelegation,
}

/// What validating one answer takes: the response, and for a zone with
/// a usable DS set, that set and the DNSKEY RRset (if the zone has one).
struct Fetched {
    response: Response,
    keys: Option<(Vec<Ds>, Option<SignedRrSet>)>,
}

#[derive(Clone)]
struct Cached<T> {
    value: T,
    fetched: u64,
    expires: u64,
}

impl<T> Cached<T> {
    fn new(value: T, now: u64, ttl: u32) -> Cached<T> {
        Cached { value, fetched: now, expires: now.saturating_add(u64::from(ttl)) }
    }

    fn fresh_at(&self, now: u64) -> bool {
        self.fetched <= now && now < self.expires
    }
}

/// A validating resolver for the zone `apex`, asking `zone` for its data
/// and `parent` for its DS RRset (taken as the trust anchor: the DS set
/// the parent serves is trusted as it is, and an empty one makes the zone
/// insecure). Times given to one resolver should not go back: an entry
/// fetched after `now` is not used at `now` but fetched again.
#[derive(Clone)]
pub struct Resolver<Z, P> {
    apex: Box<[u8]>,
    zone: Z,
    parent: P,
    rule: AlgorithmRule,
    ds: Option<Cached<Vec<Box<[u8]>>>>,
    dnskey: Option<Cached<Option<SignedRrSet>>>,
    answers: HashMap<(Box<[u8]>, u16), Cached<Response>>,
}

impl<Z: Authority, P: Authority> Resolver<Z, P> {
    /// A resolver with an empty cache, validating by
    /// [`AlgorithmRule::AnyAlgorithm`].
    pub fn new(apex: &[u8], zone: Z, parent: P) -> Resolver<Z, P> {
        Resolver {
            apex: name::to_lowercase(apex),
            zone,
            parent,
            rule: AlgorithmRule::default(),
            ds: None,
            dnskey: None,
            answers: HashMap::new(),
        }
    }

    /// The same resolver validating by `rule`.
    pub fn with_rule(mut self, rule: AlgorithmRule) -> Resolver<Z, P> {
        self.rule = rule;
        self
    }

    /// Fills the cache as resolving `name` and `rtype` at `at` would,
    /// without validating: the response, the DS RRset and, if the DS set
    /// is usable, the DNSKEY RRset, each unless a fresh copy is cached.
    pub fn warm(&mut self, name: &[u8], rtype: u16, at: u64) {
        // A failed fetch caches nothing, and is found again when resolving.
        let _ = self.fetch(&name::to_lowercase(name), rtype, at);
    }

    /// Fills the cache with the DS RRset and, if it is usable, the DNSKEY
    /// RRset as served at `at`, unless fresh copies are cached.
    pub fn warm_keys(&mut self, at: u64) {
        if let Ok(ds) = self.ds(at)
            && !usable_ds(ds).is_empty()
        {
            let _ = self.dnskey(at);
        }
    }

    /// Fills the cache with the response to `name` and `rtype` as served
    /// at `at` (unless a fresh copy is cached), and nothing else: the
    /// state of a resolver behind a forwarder that cached the response.
    pub fn warm_answer(&mut self, name: &[u8], rtype: u16, at: u64) {
        let _ = self.response(&name::to_lowercase(name), rtype, at);
    }

    /// Resolves `name` and `rtype` at `now`, from the cache where it
    /// holds fresh entries and from the authorities for the rest, and
    /// validates the answer.
    pub fn resolve(&mut self, name: &[u8], rtype: u16, now: u64) -> Verdict {
        let qname = name::to_lowercase(name);
        let fetched = match self.fetch(&qname, rtype, now) {
            Ok(f) => f,
            Err(error) => {
                return Verdict::Bogus(Bogus::Response { name: name::to_text(&qname), rtype, error });
            }
        };
        let Some((ds, dnskey)) = fetched.keys else {
            return Verdict::Insecure;
        };
        let keys = match dnskey {
            Some(set) => validate_dnskey(&self.apex, &set, &ds, self.rule, now),
            None => Err(Bogus::NoDnskey),
        };
        match keys {
            Ok(keys) => check_response(&keys, &fetched.response, &qname, rtype, now),
            Err(b) => Verdict::Bogus(b),
        }
    }

    /// What validating an answer at `now` takes, from the cache or the
    /// authorities. The answer is asked for first: a resolver learns that
    /// it needs keys from the RRSIGs in it.
    fn fetch(&mut self, qname: &[u8], rtype: u16, now: u64) -> Result<Fetched, ResponseError> {
        let response = self.response(qname, rtype, now)?.clone();
        let ds = usable_ds(self.ds(now)?);
        if ds.is_empty() {
            return Ok(Fetched { response, keys: None });
        }
        let dnskey = self.dnskey(now)?.cloned();
        Ok(Fetched { response, keys: Some((ds, dnskey)) })
    }

    fn response(&mut self, qname: &[u8], rtype: u16, now: u64) -> Result<&Response, ResponseError> {
        let key = (Box::<[u8]>::from(qname), rtype);
        let fresh = self.answers.get(&key).is_some_and(|c| c.fresh_at(now));
        if !fresh {
            let r = self.zone.query(qname, rtype, now)?;
            let ttl = response_ttl(&r, now);
            self.answers.insert(key.clone(), Cached::new(r, now, ttl));
        }
        self.answers.get(&key).map(|c| &c.value).ok_or(ResponseError::NoResponse)
    }

    fn ds(&mut self, now: u64) -> Result<&[Box<[u8]>], ResponseError> {
        if !self.ds.as_ref().is_some_and(|c| c.fresh_at(now)) {
            let r = self.parent.query(&self.apex, code::DS, now)?;
            let ds: Vec<Box<[u8]>> = r
                .answer
                .iter()
                .filter(|a| a.rtype == code::DS && a.owner.eq_ignore_ascii_case(&self.apex))
                .map(|a| a.rdata.clone())
                .collect();
            let ttl = r
                .answer
                .iter()
                .filter(|a| a.rtype == code::DS)
                .map(|a| a.ttl)
                .min()
                .unwrap_or_else(|| negative_ttl(&r).unwrap_or(0));
            self.ds = Some(Cached::new(ds, now, ttl));
        }
        Ok(self.ds.as_ref().map_or(&[], |c| &c.value))
    }

    fn dnskey(&mut self, now: u64) -> Result<Option<&SignedRrSet>, ResponseError> {
        if !self.dnskey.as_ref().is_some_and(|c| c.fresh_at(now)) {
            let r = self.zone.query(&self.apex, code::DNSKEY, now)?;
            let set = SignedRrSet::group(&r.answer)
                .into_iter()
                .find(|s| s.rtype == code::DNSKEY && s.owner.eq_ignore_ascii_case(&self.apex));
            let ttl = set.as_ref().map_or_else(|| negative_ttl(&r).unwrap_or(0), |s| s.cache_ttl(now));
            self.dnskey = Some(Cached::new(set, now, ttl));
        }
        Ok(self.dnskey.as_ref().and_then(|c| c.value.as_ref()))
    }
}

/// A verdict other than [`Verdict::Secure`] met by [`sweep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// When the DS and DNSKEY RRsets were cached.
    pub keys_at: u64,
    /// When the responses were cached.
    pub answers_at: u64,
    /// The time of the query.
    pub at: u64,
    /// The name asked for.
    pub name: Box<[u8]>,
    /// The type asked for.
    pub rtype: u16,
    /// What the resolver made of it.
    pub verdict: Verdict,
}

/// Looks for the resolver caches that fail. For each time `t` of
/// `times`, and each two times `k` and `a` of them up to `t`, a copy of
/// `fresh` caches the DS and DNSKEY RRsets at `k` ([`Resolver::warm_keys`])
/// and every response of `queries` at `a` ([`Resolver::warm_answer`]),
/// the earlier first, then resolves every query at `t`. With `a == t` the
/// responses are fetched fresh against keys cached earlier (a new
/// signature meets an old DNSKEY RRset); with `a < k`, old responses meet
/// a DNSKEY RRset fetched again (an old signature meets a new DNSKEY
/// RRset). Returns every verdict that is not secure; callers that expect
/// the zone to be insecure at times filter those out.
///
/// The DS and DNSKEY RRsets are cached at the same time here; a DS RRset
/// older than the DNSKEY RRset arises when the DNSKEY RRset expires first
/// and is fetched again at `t`. The work grows with the cube of
/// `times.len()`: pass the times at which the zone or its parent change,
/// and a few in between.
pub fn sweep<Z: Authority + Clone, P: Authority + Clone>(
    fresh: &Resolver<Z, P>,
    queries: &[(Box<[u8]>, u16)],
    times: &[u64],
) -> Vec<Failure> {
    let mut times = times.to_vec();
    times.sort_unstable();
    times.dedup();
    let mut failures = Vec::new();
    for (i, &t) in times.iter().enumerate() {
        let past = times.get(..=i).unwrap_or(&[]);
        for &keys_at in past {
            for &answers_at in past {
                let mut r = fresh.clone();
                let warm_answers = |r: &mut Resolver<Z, P>| {
                    for (qname, qtype) in queries {
                        r.warm_answer(qname, *qtype, answers_at);
                    }
                };
                if answers_at < keys_at {
                    warm_answers(&mut r);
                    r.warm_keys(keys_at);
                } else {
                    r.warm_keys(keys_at);
                    warm_answers(&mut r);
                }
                for (qname, qtype) in queries {
                    let verdict = r.resolve(qname, *qtype, t);
                    if !verdict.is_secure() {
                        failures.push(Failure {
                            keys_at,
                            answers_at,
                            at: t,
                            name: qname.clone(),
                            rtype: *qtype,
                            verdict,
                        });
                    }
                }
            }
        }
    }
    failures
}

/// How long a response is cached: the shortest cache TTL of its RRsets,
/// and for a negative answer no longer than the SOA allows.
fn response_ttl(r: &Response, now: u64) -> u32 {
    let sets = SignedRrSet::group(&r.answer).into_iter().chain(SignedRrSet::group(&r.authority));
    let ttl = sets.map(|s| s.cache_ttl(now)).min().unwrap_or(0);
    match negative_ttl(r) {
        Some(negative) if r.answer.is_empty() => ttl.min(negative),
        _ => ttl,
    }
}

/// RFC 2308 §5: a negative answer is cached for the smaller of the SOA's
/// TTL and its MINIMUM field; `None` without an SOA.
fn negative_ttl(r: &Response) -> Option<u32> {
    r.authority
        .iter()
        .filter(|a| a.rtype == code::SOA)
        .filter_map(|soa| {
            let min = soa.rdata.len().checked_sub(4).and_then(|p| soa.rdata.get(p..))?;
            Some(soa.ttl.min(u32::from_be_bytes(min.try_into().ok()?)))
        })
        .min()
}

/// Validates a response to `qname` (lowercased) and `qtype` under the
/// zone's trusted keys at `now`: every RRset of the answer section and
/// every RRset but NS of the authority section must validate; then the
/// answer must follow from them (RFC 4035 §5.3, §5.4, RFC 5155 §8).
pub fn check_response(keys: &TrustedKeys, r: &Response, qname: &[u8], qtype: u16, now: u64) -> Verdict {
    match check(keys, r, qname, qtype, now) {
        Ok((_, Strength::Insecure)) => Verdict::Insecure,
        Ok((outcome, Strength::Secure)) => Verdict::Secure(outcome),
        Err(b) => Verdict::Bogus(b),
    }
}

fn check(
    keys: &TrustedKeys,
    r: &Response,
    qname: &[u8],
    qtype: u16,
    now: u64,
) -> Result<(Outcome, Strength), Bogus> {
    if r.rcode != rcode::NOERROR && r.rcode != rcode::NXDOMAIN {
        return Err(Bogus::Rcode { name: name::to_text(qname), rtype: qtype, rcode: r.rcode });
    }
    let in_zone = |s: &SignedRrSet| name::is_at_or_below(&name::to_lowercase(&s.owner), &keys.zone);
    let answer: Vec<SignedRrSet> = SignedRrSet::group(&r.answer).into_iter().filter(in_zone).collect();
    let authority: Vec<SignedRrSet> =
        SignedRrSet::group(&r.authority).into_iter().filter(|s| in_zone(s) && s.rtype != code::NS).collect();
    let mut expansions = Vec::new();
    for s in &answer {
        if let Some(labels) = validate_rrset(s, keys, now)?.wildcard {
            expansions.push((name::to_lowercase(&s.owner), labels));
        }
    }
    let denial_failed = |at: &[u8], why| Bogus::Denial { name: name::to_text(at), rtype: qtype, why };
    for s in &authority {
        let v = validate_rrset(s, keys, now)?;
        // No NSEC or NSEC3 is ever synthesized from a wildcard: the
        // wildcard's own record is owned by the `*` name. One whose
        // signature shows an expansion has an owner chosen by whoever
        // sent it, and would move the span it denies.
        if v.wildcard.is_some() && matches!(s.rtype, code::NSEC | code::NSEC3) {
            return Err(denial_failed(&s.owner, "an NSEC or NSEC3 record is a wildcard expansion"));
        }
    }
    let refs: Vec<&SignedRrSet> = authority.iter().collect();
    let denial = Denial::new(&keys.zone, &refs).map_err(|why| denial_failed(qname, why))?;
    let mut strength = Strength::Secure;
    // RFC 4035 §5.3.4: a wildcard expansion needs its proof.
    for (owner, labels) in &expansions {
        let s = denial.wildcard_answer(owner, *labels).map_err(|why| denial_failed(owner, why))?;
        strength = weakest(strength, s);
    }
    // The CNAME chain from the name asked for (RFC 1034 §4.3.2 step 3a).
    let mut current: Box<[u8]> = qname.into();
    for _ in 0..=MAX_CNAME_HOPS {
        let at = |t: u16| answer.iter().find(|s| s.rtype == t && s.owner.eq_ignore_ascii_case(&current));
        if at(qtype).is_some() {
            let outcome = if expansions.is_empty() { Outcome::Answer } else { Outcome::WildcardAnswer };
            return Ok((outcome, strength));
        }
        if qtype != code::CNAME
            && let Some(cname) = at(code::CNAME)
        {
            let target = cname.rdatas.first().map(|t| name::to_lowercase(t)).unwrap_or_default();
            if !name::is_at_or_below(&target, &keys.zone) {
                return Ok((Outcome::LeavesZone, strength));
            }
            current = target;
            continue;
        }
        if let Some(cut) = referral(r, &current, &keys.zone) {
            // RFC 4035 §5.2: a signed delegation has a DS RRset (validated
            // above); an unsigned one has a proof that it has none.
            if authority.iter().any(|s| s.rtype == code::DS && s.owner.eq_ignore_ascii_case(&cut)) {
                return Ok((Outcome::SecureDelegation, strength));
            }
            denial.nodata(&cut, code::DS).map_err(|why| denial_failed(&cut, why))?;
            return Ok((Outcome::SecureDelegation, Strength::Insecure));
        }
        let (outcome, s) = if r.rcode == rcode::NXDOMAIN {
            (Outcome::NxDomain, denial.nxdomain(&current))
        } else {
            (Outcome::NoData, denial.nodata(&current, qtype))
        };
        let s = s.map_err(|why| denial_failed(&current, why))?;
        return Ok((outcome, weakest(strength, s)));
    }
    Err(denial_failed(qname, "the CNAME chain is too long"))
}

/// What a validated answer to a DS query says about the name asked for,
/// for a validator that walks down from a trust anchor one label at a
/// time (RFC 4035 §5.2, RFC 5155 §8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DsVerdict {
    /// The name is a signed child zone: its DS rdata, validated.
    Secure(Vec<Box<[u8]>>),
    /// The name is a delegation proven to have no DS, or an NSEC3
    /// opt-out span covers it: the child zone is insecure.
    Insecure,
    /// The name is proven to have no DS and to be no delegation: it
    /// lies inside the zone of the keys, which go on down.
    NotACut,
    /// The name is proven not to exist.
    NxDomain,
    /// The answer does not validate.
    Bogus(Bogus),
}

/// Validates a response to a DS query for `child` (lowercased) under the
/// keys of the zone above it, and says what it proves (see
/// [`DsVerdict`]). An RRset or proof that does not validate is bogus: a
/// name is never taken as insecure without its proof.
pub fn check_ds(keys: &TrustedKeys, r: &Response, child: &[u8], now: u64) -> DsVerdict {
    let child = name::to_lowercase(child);
    match check(keys, r, &child, code::DS, now) {
        Err(b) => DsVerdict::Bogus(b),
        Ok((_, Strength::Insecure)) => DsVerdict::Insecure,
        Ok((Outcome::Answer, Strength::Secure)) => {
            let ds: Vec<Box<[u8]>> = r
                .answer
                .iter()
                .filter(|a| a.rtype == code::DS && a.owner.eq_ignore_ascii_case(&child))
                .map(|a| a.rdata.clone())
                .collect();
            // A DS reached through a CNAME is another name's: the name
            // itself owns a CNAME, so it is no cut.
            if ds.is_empty() { DsVerdict::NotACut } else { DsVerdict::Secure(ds) }
        }
        Ok((Outcome::NxDomain, Strength::Secure)) => DsVerdict::NxDomain,
        Ok((Outcome::NoData, Strength::Secure)) => {
            let in_zone = |s: &SignedRrSet| name::is_at_or_below(&name::to_lowercase(&s.owner), &keys.zone);
            let authority: Vec<SignedRrSet> =
                SignedRrSet::group(&r.authority).into_iter().filter(in_zone).collect();
            let refs: Vec<&SignedRrSet> = authority.iter().collect();
            // check() has read and validated the same records.
            let cut = Denial::new(&keys.zone, &refs)
                .ok()
                .and_then(|d| d.types_at(&child).map(super::denial::is_cut))
                .unwrap_or(false);
            if cut { DsVerdict::Insecure } else { DsVerdict::NotACut }
        }
        Ok((Outcome::LeavesZone, Strength::Secure)) => DsVerdict::NotACut,
        Ok((outcome, Strength::Secure)) => DsVerdict::Bogus(Bogus::Denial {
            name: name::to_text(&child),
            rtype: code::DS,
            why: match outcome {
                Outcome::WildcardAnswer => "a DS RRset synthesized from a wildcard",
                _ => "a referral in answer to a DS query",
            },
        }),
    }
}

/// The delegation point of a referral for `name`: an NS RRset in the
/// authority section, below the apex, at or above the name.
fn referral(r: &Response, name: &[u8], apex: &[u8]) -> Option<Box<[u8]>> {
    if !r.answer.is_empty() || r.rcode != rcode::NOERROR {
        return None;
    }
    r.authority
        .iter()
        .filter(|a| a.rtype == code::NS)
        .map(|a| name::to_lowercase(&a.owner))
        .find(|cut| **cut != *apex && name::is_at_or_below(cut, apex) && name::is_at_or_below(name, cut))
}

fn weakest(a: Strength, b: Strength) -> Strength {
    if a == Strength::Secure && b == Strength::Secure { Strength::Secure } else { Strength::Insecure }
}
