//! The DNSSEC part of answers (RFC 4035 §3.1, RFC 5155 §7.2): signatures
//! after each RRset, and the NSEC or NSEC3 records that prove a name or
//! type does not exist.
//!
//! The signer stores its records in the zone like any others: one RRSIG
//! RRset per owner holding the signatures of every type there (sorted
//! bytewise, so those of one covered type are contiguous), NSEC RRsets at
//! owners, or NSEC3 RRsets at hashed owner names below the apex with an
//! NSEC3PARAM at the apex. The zone's denial index finds the NSEC or NSEC3
//! that matches or covers a name. Proofs are collected while the answer
//! section is written and put in the authority section afterwards, each
//! record once.

use crate::name::{self, MAX_NAME_LEN};
use crate::nsec3::{self, HASH_LEN};
use crate::octets::be16;
use crate::rtype::code;
use crate::writer::{NoSpace, Owner, Section};
use crate::zone::{NodeRef, Zone};

use super::{Ctx, Step};

/// How a signed zone denies existence.
#[derive(Debug, Clone, Copy)]
pub(super) enum Chain<'a> {
    /// NSEC records at the owner names (RFC 4034 §4).
    Nsec,
    /// NSEC3 records at hashed owner names, with the parameters of the
    /// apex's NSEC3PARAM (RFC 5155 §4).
    Nsec3 { salt: &'a [u8], iterations: u16 },
}

/// The denial chain of `zone` if it is signed (its apex has a DNSKEY
/// RRset), else `None`.
pub(super) fn chain(zone: &Zone) -> Option<Chain<'_>> {
    let apex = zone.apex_node()?;
    apex.rrset(code::DNSKEY)?;
    if zone.has_nsec3()
        && let Some(param) = apex.rrset(code::NSEC3PARAM)
    {
        for rd in param.rdatas() {
            // RFC 5155 §4.2: hash algorithm, flags, iterations, salt length,
            // salt. §4.1.2: a non-zero flags field means "ignore me".
            let (Some(&alg), Some(&0), Some(iterations), Some(&len)) =
                (rd.first(), rd.get(1), be16(rd, 2), rd.get(4))
            else {
                continue;
            };
            if alg == nsec3::SHA1
                && let Some(salt) = rd.get(5..5 + len as usize)
            {
                return Some(Chain::Nsec3 { salt, iterations });
            }
        }
    }
    Some(Chain::Nsec)
}

/// What a denial proves; names are lowercased wire names.
#[derive(Debug, Clone, Copy)]
pub(super) enum Proof<'k> {
    /// `name` exists (or is an empty non-terminal) but not with the type
    /// asked for (RFC 4035 §3.1.3.1, RFC 5155 §7.2.3).
    NoData { name: &'k [u8] },
    /// `name` does not exist below its closest encloser `encloser`, and
    /// no wildcard there could match (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2).
    NxDomain { name: &'k [u8], encloser: &'k [u8] },
    /// `name` was answered from `wildcard`: it does not exist itself
    /// (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6).
    WildcardAnswer { name: &'k [u8], wildcard: &'k [u8] },
    /// `name` matched `wildcard`, which lacks the type asked for
    /// (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5).
    WildcardNoData { name: &'k [u8], wildcard: &'k [u8] },
}

/// Most denial records in one answer: three per NXDOMAIN or wildcard
/// NODATA proof, and one per wildcard in a CNAME chain.
const MAX_PROOFS: usize = 16;

/// The nodes whose NSEC (or NSEC3) RRsets prove the answer, in order;
/// those before `written` are in the message already.
#[derive(Default)]
pub(super) struct Proofs<'a> {
    nodes: [Option<NodeRef<'a>>; MAX_PROOFS],
    len: usize,
    written: usize,
}

impl<'a> Proofs<'a> {
    /// Adds `node` unless it is there already.
    fn add(&mut self, node: NodeRef<'a>) {
        let taken = self.nodes.iter().take(self.len).flatten().any(|n| n.key() == node.key());
        if taken {
            return;
        }
        if let Some(slot) = self.nodes.get_mut(self.len) {
            *slot = Some(node);
            self.len += 1;
        }
    }
}

/// `*.encloser` in `buf`, if it fits in a name.
fn wildcard_of<'b>(encloser: &[u8], buf: &'b mut [u8; MAX_NAME_LEN]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..encloser.len() + 2)?;
    let (head, tail) = out.split_at_mut_checked(2)?;
    head.copy_from_slice(&[1, b'*']);
    tail.copy_from_slice(encloser);
    Some(out)
}

/// The next closer name (RFC 5155 §1.3): `name` cut to one label more than
/// its ancestor `encloser`.
fn next_closer<'k>(name: &'k [u8], encloser: &[u8]) -> &'k [u8] {
    let mut n = name;
    while let Some(p) = name::parent(n) {
        if p.len() <= encloser.len() {
            break;
        }
        n = p;
    }
    n
}

impl<'a> Ctx<'a, '_> {
    /// Puts the signatures that `node` holds over its `rtype` RRset after
    /// that RRset, with the TTL it was sent with (RFC 4035 §3.1.1; the
    /// stored RRSIG RRset's own TTL means nothing). When `required`
    /// signatures do not fit, TC is set.
    pub(super) fn signatures(
        &mut self,
        section: Section,
        owner: Owner<'a>,
        node: NodeRef<'a>,
        rtype: u16,
        ttl: u32,
        required: bool,
    ) -> Result<(), NoSpace> {
        if self.chain.is_none() {
            return Ok(());
        }
        let Some(sigs) = node.rrset(code::RRSIG) else {
            return Ok(());
        };
        match self.w.rrsigs(section, owner, &sigs, Some(rtype), Some(ttl)) {
            Ok(_) => Ok(()),
            Err(e) => {
                if required {
                    self.truncated = true;
                }
                Err(e)
            }
        }
    }

    /// A query for type RRSIG: like ANY (RFC 8482 §4.2), one RRset's worth,
    /// the signatures over the lowest type signed here, with that RRset's
    /// TTL, as Knot answers. Signatures from a wildcard come with the
    /// proof that the name itself does not exist (`wildcard`, RFC 4035
    /// §3.1.3.3).
    pub(super) fn rrsig_query(
        &mut self,
        node: NodeRef<'a>,
        owner: Owner<'a>,
        nodata: Proof<'_>,
        wildcard: Option<Proof<'_>>,
    ) -> Step<'a> {
        let sigs = node.rrset(code::RRSIG);
        let Some((sigs, covered)) = sigs.and_then(|s| Some((s, be16(s.rdatas().next()?, 0)?))) else {
            self.negative(nodata);
            return Step::Done;
        };
        let ttl = node.rrset(covered).map(|s| s.ttl);
        if self.truncated || self.w.rrsigs(Section::Answer, owner, &sigs, Some(covered), ttl).is_err() {
            self.truncated = true;
            return Step::Done;
        }
        if let Some(proof) = wildcard {
            self.prove(proof);
        }
        Step::Done
    }

    /// After the NS RRset of a referral: the DS RRset and its signatures,
    /// or the proof that there is none (RFC 4035 §3.1.4, RFC 5155 §7.2.7),
    /// all required.
    pub(super) fn secure_delegation(&mut self, cut: NodeRef<'a>) -> Result<(), NoSpace> {
        let owner = Owner::Name(cut.name());
        if let Some(ds) = cut.rrset(code::DS) {
            return self.put_signed(Section::Authority, owner, cut, &ds);
        }
        self.prove(Proof::NoData { name: cut.key() });
        self.write_proofs();
        if self.truncated { Err(NoSpace) } else { Ok(()) }
    }

    /// Queues the NSEC or NSEC3 records proving `proof`, in a DNSSEC
    /// answer.
    pub(super) fn prove(&mut self, proof: Proof<'_>) {
        let Some(chain) = self.chain else {
            return;
        };
        let mut wild = [0u8; MAX_NAME_LEN];
        match (chain, proof) {
            // RFC 4035 §3.1.3.1: the NSEC at the name, or for an empty
            // non-terminal the one covering it.
            (Chain::Nsec, Proof::NoData { name } | Proof::WildcardAnswer { name, .. }) => self.nsec(name),
            // §3.1.3.2: the NSEC covering the name and the one covering
            // the wildcard at the closest encloser.
            (Chain::Nsec, Proof::NxDomain { name, encloser }) => {
                self.nsec(name);
                if let Some(w) = wildcard_of(encloser, &mut wild) {
                    self.nsec(w);
                }
            }
            // §3.1.3.4: the NSEC covering the name and the wildcard's own.
            (Chain::Nsec, Proof::WildcardNoData { name, wildcard }) => {
                self.nsec(name);
                self.nsec(wildcard);
            }
            // RFC 5155 §7.2.3: the NSEC3 matching the name (empty
            // non-terminals have one too).
            (Chain::Nsec3 { .. }, Proof::NoData { name }) => self.nsec3(name),
            // §7.2.2: the closest encloser proof (§7.2.1) and the NSEC3
            // covering the wildcard at the closest encloser.
            (Chain::Nsec3 { .. }, Proof::NxDomain { name, encloser }) => {
                self.nsec3(encloser);
                self.nsec3(next_closer(name, encloser));
                if let Some(w) = wildcard_of(encloser, &mut wild) {
                    self.nsec3(w);
                }
            }
            // §7.2.6: the NSEC3 covering the next closer name.
            (Chain::Nsec3 { .. }, Proof::WildcardAnswer { name, wildcard }) => {
                let encloser = name::parent(wildcard).unwrap_or(&[]);
                self.nsec3(next_closer(name, encloser));
            }
            // §7.2.5: the closest encloser proof and the NSEC3 matching
            // the wildcard.
            (Chain::Nsec3 { .. }, Proof::WildcardNoData { name, wildcard }) => {
                let encloser = name::parent(wildcard).unwrap_or(&[]);
                self.nsec3(encloser);
                self.nsec3(next_closer(name, encloser));
                self.nsec3(wildcard);
            }
        }
    }

    /// Queues the NSEC matching or covering `name`.
    fn nsec(&mut self, name: &[u8]) {
        if let Some(node) = self.zone.nsec_node(name) {
            self.proofs.add(node);
        }
    }

    /// Queues the NSEC3 matching or covering the hash of `name`.
    fn nsec3(&mut self, name: &[u8]) {
        let Some(Chain::Nsec3 { salt, iterations }) = self.chain else {
            return;
        };
        let hash: [u8; HASH_LEN] = nsec3::hash(name, salt, iterations);
        if let Some((node, _)) = self.zone.nsec3_node(&hash) {
            self.proofs.add(node);
        }
    }

    /// Puts the queued proofs in the authority section with their
    /// signatures; they are required (TC when they do not fit).
    pub(super) fn write_proofs(&mut self) {
        let rtype = match self.chain {
            Some(Chain::Nsec) => code::NSEC,
            Some(Chain::Nsec3 { .. }) => code::NSEC3,
            None => return,
        };
        while self.proofs.written < self.proofs.len {
            let node = self.proofs.nodes.get(self.proofs.written).copied().flatten();
            self.proofs.written += 1;
            if let Some(node) = node
                && let Some(set) = node.rrset(rtype)
                && self.put_signed(Section::Authority, Owner::Name(node.name()), node, &set).is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "dnssec_tests.rs"]
mod tests;
