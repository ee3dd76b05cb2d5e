//! Proofs of non-existence: NXDOMAIN, NODATA and wildcard answers, with
//! NSEC (RFC 4035 §5.4, RFC 4592, RFC 6840 §4) or NSEC3 (RFC 5155 §8).
//!
//! The records given here have already been validated as RRsets; these
//! functions only check that they prove what the answer claims. Names are
//! compared lowercased, in canonical order (RFC 4034 §6.1).

use std::cmp::Ordering;

use sixgate_dns::name;
use sixgate_dns::nsec3::{self, HASH_LEN, MAX_ITERATIONS, SHA1};
use sixgate_dns::rtype::code;
use sixgate_dns::zone::canonical_cmp;

use super::SignedRrSet;
use crate::denial::{Nsec3, decode_nsec};

/// The NSEC3 opt-out flag (RFC 5155 §3.1.2.1).
const OPT_OUT: u8 = 0x01;

/// How far a proof goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strength {
    /// The proof holds.
    Secure,
    /// The proof rests on an opt-out span (RFC 5155 §6), or on more NSEC3
    /// iterations than a validator computes (RFC 9276 §3.2): the answer
    /// is insecure, not bogus.
    Insecure,
}

/// Why a proof fails.
pub(super) type Failure = &'static str;

struct NsecRr {
    owner: Box<[u8]>,
    next: Box<[u8]>,
    types: Vec<u16>,
}

struct Nsec3Rr {
    hash: [u8; HASH_LEN],
    rr: Nsec3,
}

/// The NSEC or NSEC3 records of one response.
pub(super) struct Denial<'a> {
    apex: &'a [u8],
    nsec: Vec<NsecRr>,
    nsec3: Vec<Nsec3Rr>,
}

impl<'a> Denial<'a> {
    /// Reads the NSEC and NSEC3 RRsets among `sets` (validated, in the
    /// zone `apex`, lowercased).
    pub(super) fn new(apex: &'a [u8], sets: &[&SignedRrSet]) -> Result<Denial<'a>, Failure> {
        let mut d = Denial { apex, nsec: Vec::new(), nsec3: Vec::new() };
        for s in sets {
            for rd in &s.rdatas {
                match s.rtype {
                    code::NSEC => {
                        let (next, types) = decode_nsec(rd).map_err(|_| "an NSEC record is malformed")?;
                        d.nsec.push(NsecRr {
                            owner: name::to_lowercase(&s.owner),
                            next: name::to_lowercase(next),
                            types,
                        });
                    }
                    code::NSEC3 => {
                        let rr = Nsec3::decode(rd).map_err(|_| "an NSEC3 record is malformed")?;
                        // RFC 5155 §8.2: only hashes under the zone count.
                        let hash = nsec3::owner_hash(&s.owner)
                            .filter(|_| name::parent(&s.owner).is_some_and(|p| p.eq_ignore_ascii_case(apex)))
                            .ok_or("an NSEC3 owner is not a hash directly below the apex")?;
                        if rd.first() == Some(&SHA1) && rr.next_hash.len() == HASH_LEN {
                            d.nsec3.push(Nsec3Rr { hash, rr });
                        }
                    }
                    _ => {}
                }
            }
        }
        // One chain's records: those with the first one's parameters.
        if let Some(first) = d.nsec3.first().map(|n| (n.rr.params.iterations, n.rr.params.salt.clone())) {
            d.nsec3.retain(|n| (n.rr.params.iterations, &n.rr.params.salt) == (first.0, &first.1));
        }
        Ok(d)
    }

    /// The types of the NSEC owned by `name`, or of the NSEC3 matching it.
    pub(super) fn types_at(&self, name: &[u8]) -> Option<&[u16]> {
        if self.nsec.is_empty() {
            return self.nsec3_matching(name).map(|n| &n.rr.types[..]);
        }
        self.nsec.iter().find(|n| *n.owner == *name).map(|n| &n.types[..])
    }

    /// Proves that `qname` does not exist (NXDOMAIN).
    pub(super) fn nxdomain(&self, qname: &[u8]) -> Result<Strength, Failure> {
        if self.nsec.is_empty() {
            return self.nsec3_nxdomain(qname);
        }
        // RFC 4035 §5.4: an NSEC proves the name absent, and one proves
        // the wildcard at its closest encloser absent.
        let ce = self.nsec_closest_encloser(qname)?;
        // RFC 4035 §3.1.3.2, RFC 4592 §2.2.2: an NSEC whose next name
        // lies below the name makes it an empty non-terminal, which
        // exists. Its closest encloser is then the name itself.
        if *ce == *qname {
            return Err("the name is an empty non-terminal: an NSEC's next name lies below it");
        }
        let wildcard = wildcard_of(&ce);
        if self.nsec.iter().any(|n| *n.owner == *wildcard) {
            return Err("the wildcard that would answer exists");
        }
        if !self.nsec.iter().any(|n| covers(&n.owner, &n.next, &wildcard)) {
            return Err("no NSEC proves the wildcard absent");
        }
        Ok(Strength::Secure)
    }

    /// Proves that `qname` has no `qtype` RRset (NODATA): at the name
    /// itself, at an empty non-terminal, or at the wildcard that would
    /// answer.
    pub(super) fn nodata(&self, qname: &[u8], qtype: u16) -> Result<Strength, Failure> {
        if self.nsec.is_empty() {
            return self.nsec3_nodata(qname, qtype);
        }
        if let Some(n) = self.nsec.iter().find(|n| *n.owner == *qname) {
            lacks(&n.types, qtype)?;
            return Ok(Strength::Secure);
        }
        // RFC 4035 §3.1.3.2, RFC 4592 §2.2.2: an empty non-terminal
        // exists; the NSEC that covers it has a descendant as next name.
        if self.nsec.iter().any(|n| {
            covers(&n.owner, &n.next, qname)
                && n.next.len() > qname.len()
                && name::is_at_or_below(&n.next, qname)
        }) {
            return Ok(Strength::Secure);
        }
        // RFC 4035 §3.1.3.4: no such name, and the wildcard lacks the type.
        let ce = self.nsec_closest_encloser(qname)?;
        let wildcard = wildcard_of(&ce);
        let n = self.nsec.iter().find(|n| *n.owner == *wildcard).ok_or("no NSEC proves the type absent")?;
        lacks(&n.types, qtype)?;
        Ok(Strength::Secure)
    }

    /// Proves that an answer synthesized from the wildcard `*.` plus the
    /// rightmost `labels` labels of `qname` was the right one: `qname`
    /// does not exist and no closer name does (RFC 4035 §5.3.4, RFC 5155
    /// §8.8).
    pub(super) fn wildcard_answer(&self, qname: &[u8], labels: u8) -> Result<Strength, Failure> {
        let labels = usize::from(labels);
        if name::label_count(qname) <= labels {
            return Err("the RRSIG labels field does not shorten the name");
        }
        if self.nsec.is_empty() {
            // RFC 5155 §8.8: the next closer name is covered.
            let next_closer = suffix(qname, labels + 1);
            return self
                .nsec3_covering(next_closer)
                .map(strength)
                .ok_or("no NSEC3 covers the next closer name");
        }
        let ce = self.nsec_closest_encloser(qname)?;
        if name::label_count(&ce) > labels {
            return Err("a name closer than the wildcard exists");
        }
        Ok(Strength::Secure)
    }

    /// The closest encloser of `qname` that the NSEC covering it implies:
    /// the longer of its common ancestors with the NSEC's owner and next
    /// name (RFC 4035 §5.4).
    fn nsec_closest_encloser(&self, qname: &[u8]) -> Result<Box<[u8]>, Failure> {
        let n = self
            .nsec
            .iter()
            .find(|n| covers(&n.owner, &n.next, qname))
            .ok_or("no NSEC proves the name absent")?;
        // RFC 6840 §4.1: the NSEC of a delegation or DNAME says nothing
        // about names below it.
        if n.owner.len() < qname.len() && name::is_at_or_below(qname, &n.owner) && is_cut(&n.types) {
            return Err("the NSEC proving the name absent is a delegation's or a DNAME's");
        }
        let a = common_ancestor(qname, &n.owner);
        let b = common_ancestor(qname, &n.next);
        Ok(if a.len() >= b.len() { a } else { b }.into())
    }

    fn nsec3_nxdomain(&self, qname: &[u8]) -> Result<Strength, Failure> {
        if self.nsec3_matching(qname).is_some() {
            return Err("an NSEC3 says the name exists");
        }
        // RFC 5155 §8.4: the closest encloser proof, and the wildcard at
        // the closest encloser covered.
        let (ce, next_closer_strength) = self.nsec3_closest_encloser(qname)?;
        let wildcard = wildcard_of(ce);
        if self.nsec3_matching(&wildcard).is_some() {
            return Err("the wildcard that would answer exists");
        }
        let covered = self.nsec3_covering(&wildcard).ok_or("no NSEC3 covers the wildcard")?;
        Ok(weakest(next_closer_strength, strength(covered)))
    }

    fn nsec3_nodata(&self, qname: &[u8], qtype: u16) -> Result<Strength, Failure> {
        // RFC 5155 §8.5: an NSEC3 matches the name and lacks the type.
        if let Some(n) = self.nsec3_matching(qname) {
            lacks(&n.rr.types, qtype)?;
            return Ok(iterations_strength(n));
        }
        // RFC 5155 §8.7: no such name, and the wildcard lacks the type.
        let (ce, s) = self.nsec3_closest_encloser(qname)?;
        let wildcard = wildcard_of(ce);
        let n = self.nsec3_matching(&wildcard).ok_or("no NSEC3 matches the name or its wildcard")?;
        lacks(&n.rr.types, qtype)?;
        Ok(s)
    }

    /// RFC 5155 §8.3: the longest ancestor of `qname` that an NSEC3
    /// matches, with the next closer name covered. Returns it and the
    /// strength of the covering NSEC3 (opt-out makes it insecure).
    fn nsec3_closest_encloser<'q>(&self, qname: &'q [u8]) -> Result<(&'q [u8], Strength), Failure> {
        let mut next_closer = qname;
        while let Some(candidate) = name::parent(next_closer) {
            if !name::is_at_or_below(candidate, self.apex) {
                break;
            }
            if let Some(m) = self.nsec3_matching(candidate) {
                if candidate != self.apex && is_cut(&m.rr.types) {
                    return Err("the closest encloser is a delegation or a DNAME");
                }
                let covered =
                    self.nsec3_covering(next_closer).ok_or("no NSEC3 covers the next closer name")?;
                return Ok((candidate, strength(covered)));
            }
            next_closer = candidate;
        }
        Err("no NSEC3 matches a closest encloser")
    }

    fn nsec3_hash(&self, name: &[u8]) -> Option<[u8; HASH_LEN]> {
        let p = &self.nsec3.first()?.rr.params;
        Some(nsec3::hash(name, &p.salt, p.iterations))
    }

    fn nsec3_matching(&self, name: &[u8]) -> Option<&Nsec3Rr> {
        let h = self.nsec3_hash(name)?;
        self.nsec3.iter().find(|n| n.hash == h)
    }

    fn nsec3_covering(&self, name: &[u8]) -> Option<&Nsec3Rr> {
        let h = self.nsec3_hash(name)?;
        self.nsec3.iter().find(|n| {
            let next = &n.rr.next_hash[..];
            let owner = &n.hash[..];
            // The last NSEC3 of the chain wraps around to the first hash.
            if owner < next { owner < &h[..] && &h[..] < next } else { owner < &h[..] || &h[..] < next }
        })
    }
}

/// The strength of a proof resting on `n`.
fn strength(n: &Nsec3Rr) -> Strength {
    if n.rr.params.flags & OPT_OUT != 0 { Strength::Insecure } else { iterations_strength(n) }
}

/// RFC 9276 §3.2: past the iterations the hash function computes, the
/// proof cannot be checked, so the answer is insecure.
fn iterations_strength(n: &Nsec3Rr) -> Strength {
    if n.rr.params.iterations > MAX_ITERATIONS { Strength::Insecure } else { Strength::Secure }
}

fn weakest(a: Strength, b: Strength) -> Strength {
    if a == Strength::Secure && b == Strength::Secure { Strength::Secure } else { Strength::Insecure }
}

/// True if `name` lies strictly between an NSEC's owner and next name;
/// the last NSEC of the chain has the apex as next name and covers
/// everything after its owner.
fn covers(owner: &[u8], next: &[u8], name: &[u8]) -> bool {
    let after_owner = canonical_cmp(owner, name) == Ordering::Less;
    if canonical_cmp(owner, next) == Ordering::Less {
        after_owner && canonical_cmp(name, next) == Ordering::Less
    } else {
        after_owner || canonical_cmp(name, next) == Ordering::Less
    }
}

/// Checks that a denial record's types lack `qtype`, and CNAME (which
/// would have been followed), and that it is not a delegation's (a parent
/// side record only speaks for DS; RFC 6840 §4.4).
fn lacks(types: &[u16], qtype: u16) -> Result<(), Failure> {
    if types.contains(&qtype) {
        return Err("the denial record lists the type");
    }
    if types.contains(&code::CNAME) {
        return Err("the denial record lists a CNAME");
    }
    if qtype != code::DS && types.contains(&code::NS) && !types.contains(&code::SOA) {
        return Err("the denial record is a delegation's");
    }
    Ok(())
}

/// A delegation (NS without SOA) or a DNAME.
pub(super) fn is_cut(types: &[u16]) -> bool {
    types.contains(&code::DNAME) || (types.contains(&code::NS) && !types.contains(&code::SOA))
}

/// `*.` plus `name`.
fn wildcard_of(name: &[u8]) -> Vec<u8> {
    let mut w = Vec::with_capacity(2 + name.len());
    w.extend_from_slice(&[1, b'*']);
    w.extend_from_slice(name);
    w
}

/// The ancestor of `name` (or itself) with `labels` labels.
fn suffix(name: &[u8], labels: usize) -> &[u8] {
    let mut n = name;
    for _ in labels..name::label_count(name) {
        n = name::parent(n).unwrap_or(n);
    }
    n
}

/// The longest name at or above both `a` and `b` (both lowercased).
fn common_ancestor<'a>(a: &'a [u8], b: &[u8]) -> &'a [u8] {
    let mut n = a;
    loop {
        if name::is_at_or_below(b, n) {
            return n;
        }
        match name::parent(n) {
            Some(p) => n = p,
            None => return n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sixgate_dns::name::from_text;

    fn n(s: &str) -> Box<[u8]> {
        from_text(s, None).unwrap()
    }

    #[test]
    fn cover_and_ancestors() {
        assert!(covers(&n("a.example."), &n("c.example."), &n("b.example.")));
        assert!(!covers(&n("a.example."), &n("c.example."), &n("a.example.")));
        assert!(covers(&n("a.example."), &n("c.example."), &n("z.b.example.")));
        // The last NSEC wraps to the apex.
        assert!(covers(&n("z.example."), &n("example."), &n("zz.example.")));
        assert!(!covers(&n("z.example."), &n("example."), &n("a.example.")));
        assert_eq!(common_ancestor(&n("x.b.example."), &n("y.b.example.")), &*n("b.example."));
        assert_eq!(common_ancestor(&n("x.example."), &n("example.")), &*n("example."));
        assert_eq!(suffix(&n("a.b.example."), 1), &*n("example."));
        assert_eq!(suffix(&n("a.b.example."), 3), &*n("a.b.example."));
    }

    #[test]
    fn lacks_refuses_cname_and_delegations() {
        assert!(lacks(&[code::A, code::RRSIG, code::NSEC], code::AAAA).is_ok());
        assert!(lacks(&[code::A], code::A).is_err());
        assert!(lacks(&[code::CNAME], code::A).is_err());
        assert!(lacks(&[code::NS], code::A).is_err());
        assert!(lacks(&[code::NS], code::DS).is_ok());
        assert!(lacks(&[code::NS, code::SOA], code::A).is_ok());
    }
}
