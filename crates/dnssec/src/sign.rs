//! Signing a zone: which names are in the denial chain, which RRsets are
//! signed and by which keys, and the whole-zone signer.
//!
//! The whole-zone signer ([`Signer::sign_zone`]) is used when a zone is
//! first signed or replaced wholesale. The store signs single changes
//! incrementally with the same per-name rules ([`Status`],
//! [`signed_types`], [`denial_types`], [`Signer::sign_rrset`]), so both
//! paths produce the same zone.

use std::collections::HashSet;

use sixgate_dns::name;
use sixgate_dns::nsec3::{self, HASH_LEN};
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Facts, Record, canonical_cmp};

use crate::denial::{Nsec3Params, nsec_rdata};
use crate::key::{KeyError, KeyPair};
use crate::rrsig::{self, RrSet};

/// What a name is, for signing (RFC 4035 §2.2, §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Authoritative data: every RRset signed, in the chain.
    Authoritative,
    /// A delegation point (NS below the apex): only DS is signed; in the
    /// chain so the absence of DS can be proven.
    Delegation,
    /// An empty non-terminal: in the NSEC3 chain only (RFC 5155 §7.1).
    EmptyNonTerminal,
    /// Below a delegation or DNAME: glue or occluded, not signed.
    Occluded,
}

impl Status {
    /// The status of a name with these [`Facts`] (the zone snapshot's,
    /// or derived by the same rules); `empty` for a name without data.
    pub fn of(facts: Facts, empty: bool) -> Status {
        if facts.occluded() {
            Status::Occluded
        } else if empty {
            Status::EmptyNonTerminal
        } else if facts.is_delegation() {
            Status::Delegation
        } else {
            Status::Authoritative
        }
    }
}

/// The key RRsets, signed by the KSKs (or CSKs) rather than the ZSKs
/// (RFC 6781 §3.1; CDS and CDNSKEY are signed like the DNSKEY RRset they
/// stand for, RFC 7344 §4.1).
pub fn is_key_rrset(rtype: u16) -> bool {
    matches!(rtype, code::DNSKEY | code::CDS | code::CDNSKEY)
}

/// The types at a name that get RRSIGs.
pub fn signed_types(status: Status, types: &[u16]) -> Vec<u16> {
    match status {
        Status::Authoritative => types.iter().copied().filter(|&t| !is_chain_type(t)).collect(),
        Status::Delegation => types.iter().copied().filter(|&t| t == code::DS).collect(),
        Status::EmptyNonTerminal | Status::Occluded => Vec::new(),
    }
}

/// The RRSIG, NSEC and NSEC3 types, which the signer manages itself.
fn is_chain_type(t: u16) -> bool {
    matches!(t, code::RRSIG | code::NSEC | code::NSEC3)
}

/// The types the denial record of a name lists (RFC 4034 §4.1.2, RFC 5155
/// §3.2.1): the name's own types, plus RRSIG if any RRset there is signed,
/// plus NSEC itself in NSEC chains (NSEC3 records live elsewhere).
///
/// At a delegation only the NS and DS bits are set, never those of glue
/// or other data at the cut, for which the parent is not authoritative
/// (RFC 4035 §2.3, RFC 5155 §7.1 by reference).
pub fn denial_types(status: Status, types: &[u16], nsec3: bool) -> Vec<u16> {
    let listed = |t: u16| match status {
        Status::Delegation => matches!(t, code::NS | code::DS),
        _ => !is_chain_type(t),
    };
    let mut out: Vec<u16> = types.iter().copied().filter(|&t| listed(t)).collect();
    if !nsec3 {
        // The NSEC itself is signed at this name.
        out.push(code::RRSIG);
        out.push(code::NSEC);
    } else if !signed_types(status, types).is_empty() {
        out.push(code::RRSIG);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// True if the name is in the denial chain.
pub fn in_chain(status: Status, nsec3: bool) -> bool {
    match status {
        Status::Authoritative | Status::Delegation => true,
        Status::EmptyNonTerminal => nsec3,
        Status::Occluded => false,
    }
}

/// A key and what it signs right now.
#[derive(Debug, Clone, Copy)]
pub struct ActiveKey<'k> {
    /// The key.
    pub key: &'k KeyPair,
    /// Its key tag.
    pub tag: u16,
    /// Signs the DNSKEY, CDS and CDNSKEY RRsets (a KSK or CSK).
    pub signs_keys: bool,
    /// Signs everything else (a ZSK or CSK).
    pub signs_zone: bool,
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A key could not sign.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Two names hash to the same NSEC3 owner (RFC 5155 §7.1: change the
    /// salt); practically impossible with SHA-1.
    #[error("NSEC3 hash collision between {0} and {1}")]
    Collision(String, String),
    /// The zone has no SOA, so there is no TTL for denial records.
    #[error("the zone has no SOA")]
    NoSoa,
}

/// The signing settings of one run.
#[derive(Debug, Clone)]
pub struct Signer<'k> {
    /// The apex, original case (the RRSIG signer name is lowercased).
    pub apex: Box<[u8]>,
    /// The keys in use and their roles.
    pub keys: Vec<ActiveKey<'k>>,
    /// NSEC3 parameters, or `None` for NSEC.
    pub nsec3: Option<Nsec3Params>,
    /// Now, seconds since the epoch.
    pub now: u64,
    /// Signatures start this long before now (clock skew at validators).
    pub inception_offset: u32,
    /// Signature validity, from now.
    pub validity: u32,
    /// Expirations are spread over this many seconds before
    /// `now + validity`, so that refreshes spread out too.
    pub jitter: u32,
}

impl Signer<'_> {
    /// The keys that sign `rtype` (at the apex for key RRsets).
    fn keys_for(&self, rtype: u16) -> impl Iterator<Item = &ActiveKey<'_>> {
        let keyset = is_key_rrset(rtype);
        self.keys.iter().filter(move |k| if keyset { k.signs_keys } else { k.signs_zone })
    }

    /// The expiration of a new signature over (`owner`, `rtype`): spread by
    /// a hash of the two within the jitter window.
    pub fn expiration(&self, owner: &[u8], rtype: u16) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for &b in owner.iter().chain(&rtype.to_be_bytes()) {
            h = (h ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0193);
        }
        let spread = h % self.jitter.saturating_add(1);
        (self.now as u32).wrapping_add(self.validity).wrapping_sub(spread)
    }

    /// The RRSIG records over one RRset, one per signing key.
    pub fn sign_rrset(&self, set: &RrSet<'_>, scratch: &mut Vec<u8>) -> Result<Vec<Record>, SignError> {
        let mut out = Vec::with_capacity(self.keys.len());
        self.sign_rrset_into(&name::to_lowercase(&self.apex), set, scratch, &mut out)?;
        Ok(out)
    }

    /// [`Signer::sign_rrset`] with the signer's name already lowercased,
    /// appending to `out`: the whole-zone signer's inner loop.
    fn sign_rrset_into(
        &self,
        signer: &[u8],
        set: &RrSet<'_>,
        scratch: &mut Vec<u8>,
        out: &mut Vec<Record>,
    ) -> Result<(), SignError> {
        let inception = (self.now as u32).wrapping_sub(self.inception_offset);
        let expiration = self.expiration(set.owner, set.rtype);
        for k in self.keys_for(set.rtype) {
            let rd = rrsig::sign(k.key, k.tag, signer, set, inception, expiration, scratch)?;
            out.push(Record { owner: set.owner.into(), rtype: code::RRSIG, ttl: set.ttl, rdata: rd.into() });
        }
        Ok(())
    }

    /// Signs a whole zone: `records` is the unsigned zone including the
    /// signer's own apex records (DNSKEY, CDS, CDNSKEY, NSEC3PARAM);
    /// returns the NSEC or NSEC3 chain and every RRSIG. Signing is spread
    /// over `threads` threads.
    pub fn sign_zone(&self, records: &[Record], threads: usize) -> Result<SignedZone, SignError> {
        let apex_key = name::to_lowercase(&self.apex);
        let denial_ttl = denial_ttl(records, &apex_key).ok_or(SignError::NoSoa)?;
        // Group into RRsets, in canonical order of owners.
        let mut order: Vec<&Record> = records.iter().collect();
        order.sort_by(|ra, rb| canonical_cmp(&ra.owner, &rb.owner).then(ra.rtype.cmp(&rb.rtype)));
        let mut names: Vec<NameData<'_>> = Vec::new();
        for r in order {
            let same = names.last().is_some_and(|n| n.owner.eq_ignore_ascii_case(&r.owner));
            if !same {
                names.push(NameData { owner: &r.owner, sets: Vec::new(), status: Status::Authoritative });
            }
            if let Some(n) = names.last_mut() {
                match n.sets.last_mut() {
                    Some(s) if s.0 == r.rtype => s.2.push(&r.rdata),
                    _ => n.sets.push((r.rtype, r.ttl, vec![&r.rdata])),
                }
            }
        }
        // Status, from the zone snapshot's facts rules: canonical order puts
        // a name's descendants right after it, so what a name inherits comes
        // from the topmost delegation or DNAME above it, seen last.
        let mut occluder: Option<(Box<[u8]>, Facts)> = None;
        for n in &mut names {
            let key = name::to_lowercase(n.owner);
            let own = Facts::own(key == apex_key, n.sets.iter().map(|s| s.0));
            let inherited = match &occluder {
                Some((c, f)) if key.len() > c.len() && name::is_at_or_below(&key, c) => Facts::inherited(*f),
                _ => Facts::default(),
            };
            let facts = own.union(inherited);
            n.status = Status::of(facts, false);
            if !facts.occluded() && (own.is_delegation() || own.has_dname()) {
                occluder = Some((key, own));
            }
        }
        // The chain.
        let mut out = Vec::new();
        let mut chain3: Vec<([u8; HASH_LEN], Box<[u8]>)> = Vec::new();
        match &self.nsec3 {
            None => {
                let chain: Vec<&NameData<'_>> = names.iter().filter(|n| in_chain(n.status, false)).collect();
                for (i, n) in chain.iter().enumerate() {
                    let next = chain.get(i + 1).or(chain.first()).map_or(&self.apex[..], |m| m.owner);
                    let types: Vec<u16> = n.sets.iter().map(|s| s.0).collect();
                    let rd = nsec_rdata(next, &denial_types(n.status, &types, false));
                    out.push(Record {
                        owner: n.owner.into(),
                        rtype: code::NSEC,
                        ttl: denial_ttl,
                        rdata: rd.into(),
                    });
                }
            }
            Some(params) => {
                let mut hashed: Vec<Hashed> = Vec::new();
                let present: HashSet<Box<[u8]>> = names.iter().map(|n| name::to_lowercase(n.owner)).collect();
                let mut ents: HashSet<Box<[u8]>> = HashSet::new();
                for n in names.iter().filter(|n| in_chain(n.status, true)) {
                    let types: Vec<u16> = n.sets.iter().map(|s| s.0).collect();
                    hashed.push((
                        params.hash(n.owner),
                        denial_types(n.status, &types, true),
                        n.status,
                        n.owner.into(),
                    ));
                    // RFC 5155 §7.1: empty non-terminals get NSEC3 records.
                    let mut p = name::parent(n.owner);
                    while let Some(a) = p.filter(|a| a.len() > apex_key.len()) {
                        let k = name::to_lowercase(a);
                        if present.contains(&k) || !ents.insert(k) {
                            break;
                        }
                        hashed.push((params.hash(a), Vec::new(), Status::EmptyNonTerminal, a.into()));
                        p = name::parent(a);
                    }
                }
                hashed.sort_by_key(|h| h.0);
                for w in hashed.windows(2) {
                    if let [a, b] = w
                        && a.0 == b.0
                    {
                        return Err(SignError::Collision(name::to_text(&a.3), name::to_text(&b.3)));
                    }
                }
                chain3 = hashed.iter().map(|h| (h.0, h.3.clone())).collect();
                for (i, (h, types, _, _)) in hashed.iter().enumerate() {
                    let next = hashed.get(i + 1).or(hashed.first()).map_or(h, |m| &m.0);
                    let rd = params.nsec3_rdata(next, types);
                    let owner = nsec3::owner_name(h, &apex_key);
                    out.push(Record { owner, rtype: code::NSEC3, ttl: denial_ttl, rdata: rd.into() });
                }
            }
        }
        // What to sign: the signed RRsets, then the chain's records, all
        // borrowed (a zone's worth of copies costs as much as rendering it).
        let chain_rdatas: Vec<&[u8]> = out.iter().map(|r| &r.rdata[..]).collect();
        let mut jobs: Vec<RrSet<'_>> = Vec::with_capacity(records.len() + out.len());
        for n in &names {
            let types: Vec<u16> = n.sets.iter().map(|s| s.0).collect();
            for t in signed_types(n.status, &types) {
                if let Some((rtype, ttl, rdatas)) = n.sets.iter().find(|s| s.0 == t) {
                    jobs.push(RrSet { owner: n.owner, rtype: *rtype, ttl: *ttl, rdatas });
                }
            }
        }
        for (r, rd) in out.iter().zip(&chain_rdatas) {
            jobs.push(RrSet {
                owner: &r.owner,
                rtype: r.rtype,
                ttl: r.ttl,
                rdatas: std::slice::from_ref(rd),
            });
        }
        let sigs = self.run(&jobs, threads)?;
        drop(jobs);
        out.extend(sigs);
        let chain = match &self.nsec3 {
            None => names
                .iter()
                .filter(|n| in_chain(n.status, false))
                .map(|n| (name::canonical_key(n.owner), Box::<[u8]>::from(n.owner)))
                .collect(),
            Some(_) => chain3.into_iter().map(|(h, owner)| (h.to_vec(), owner)).collect(),
        };
        Ok(SignedZone {
            records: out,
            names: names.iter().map(|n| (Box::<[u8]>::from(n.owner), n.status)).collect(),
            chain,
        })
    }

    /// Signs every RRset, split over `threads` scoped threads.
    fn run(&self, jobs: &[RrSet<'_>], threads: usize) -> Result<Vec<Record>, SignError> {
        let threads = threads.clamp(1, 64);
        let chunk = jobs.len().div_ceil(threads).max(1);
        let signer = name::to_lowercase(&self.apex);
        let signer = &signer[..];
        let results: Vec<Result<Vec<Record>, SignError>> = std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut scratch = Vec::with_capacity(1024);
                        let mut out = Vec::with_capacity(part.len() * self.keys.len());
                        for set in part {
                            self.sign_rrset_into(signer, set, &mut scratch, &mut out)?;
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(Err(SignError::Key(KeyError::Sign)))).collect()
        });
        let mut out = Vec::with_capacity(jobs.len() * self.keys.len());
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }
}

/// A signed zone: the signer's records, and the facts the incremental
/// signer keeps to continue from it.
#[derive(Debug, Clone)]
pub struct SignedZone {
    /// The NSEC or NSEC3 chain and every RRSIG.
    pub records: Vec<Record>,
    /// Every name with data, with its status.
    pub names: Vec<(Box<[u8]>, Status)>,
    /// The chain: order key (canonical key or NSEC3 hash) and the name.
    pub chain: Vec<(Vec<u8>, Box<[u8]>)>,
}

/// The TTL of NSEC and NSEC3 records: the minimum of the SOA's TTL and
/// its MINIMUM field (RFC 9077 §3.1).
pub fn denial_ttl(records: &[Record], apex_key: &[u8]) -> Option<u32> {
    let soa =
        records.iter().find(|r| r.rtype == code::SOA && name::to_lowercase(&r.owner)[..] == *apex_key)?;
    let min = soa
        .rdata
        .len()
        .checked_sub(4)
        .and_then(|p| soa.rdata.get(p..))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())?;
    Some(soa.ttl.min(u32::from_be_bytes(min)))
}

/// A name of the NSEC3 chain: hash, types, status, original name.
type Hashed = ([u8; HASH_LEN], Vec<u16>, Status, Box<[u8]>);

struct NameData<'a> {
    owner: &'a [u8],
    sets: Vec<(u16, u32, Vec<&'a [u8]>)>,
    status: Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4035 §2.3: at a delegation only NS and DS (and the denial
    /// record's own RRSIG and NSEC) are listed, not glue, an ANAME or its
    /// addresses, or anything else at the cut.
    #[test]
    fn delegation_bitmaps_list_only_ns_ds_and_the_denial_types() {
        let at_cut = [code::A, code::NS, code::MX, code::AAAA, code::DS, code::ANAME];
        assert_eq!(
            denial_types(Status::Delegation, &at_cut, false),
            vec![code::NS, code::DS, code::RRSIG, code::NSEC]
        );
        assert_eq!(denial_types(Status::Delegation, &at_cut, true), vec![code::NS, code::DS, code::RRSIG]);
        // Unsigned delegation: nothing there is signed, so no RRSIG bit.
        assert_eq!(denial_types(Status::Delegation, &[code::NS, code::A], true), vec![code::NS]);
        // Authoritative names list what they have.
        assert_eq!(
            denial_types(Status::Authoritative, &[code::A, code::MX], true),
            vec![code::A, code::MX, code::RRSIG]
        );
    }

    #[test]
    fn status_follows_the_facts() {
        let cut = Facts::own(false, [code::NS]);
        assert_eq!(Status::of(cut, false), Status::Delegation);
        assert_eq!(Status::of(Facts::inherited(cut), false), Status::Occluded);
        assert_eq!(Status::of(Facts::inherited(Facts::own(false, [code::DNAME])), true), Status::Occluded);
        assert_eq!(Status::of(Facts::own(false, [code::DNAME]), false), Status::Authoritative);
        assert_eq!(Status::of(Facts::default(), true), Status::EmptyNonTerminal);
    }
}
