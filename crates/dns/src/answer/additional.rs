//! The additional section: addresses of the names that NS, MX, SRV, SVCB
//! and HTTPS records point at (RFC 1034 §4.3.2 step 6, RFC 2782, RFC 9460
//! §4), glue in referrals (RFC 9471), and in a DNSSEC answer their
//! signatures and, for SVCB and HTTPS, the denial of what a target lacks
//! (RFC 9460 §4.2).
//!
//! Signatures of additional RRsets are optional (RFC 4035 §3.1.1): they go
//! after all the additional RRsets, in the order of the RRsets they cover,
//! as far as they fit. So a small response carries more addresses rather
//! than fewer signed ones; it is also what Knot sends.

use crate::name::{self, NameBuf};
use crate::nsec3::{self, HASH_LEN};
use crate::rtype::{self, code};
use crate::writer::{NoSpace, Owner, Section};
use crate::zone::{NodeRef, RrSetRef};

use super::Ctx;
use super::dnssec::Chain;
use super::find::{Target, find_target};

/// Most distinct additional-section targets remembered for de-duplication.
const MAX_TARGETS: usize = 32;

/// Most additional RRsets whose signatures are held back until the section
/// is complete; the signatures of any more are left out (they are
/// optional).
const MAX_SIGNED: usize = 32;

/// An additional RRset (or denial record) whose signatures are still to
/// be written.
#[derive(Clone, Copy)]
struct Signed<'a> {
    node: NodeRef<'a>,
    owner: Owner<'a>,
    rtype: u16,
    ttl: u32,
}

/// What the additional section holds so far.
pub(super) struct Extras<'a> {
    targets: [&'a [u8]; MAX_TARGETS],
    targets_len: usize,
    signed: [Option<Signed<'a>>; MAX_SIGNED],
    signed_len: usize,
    /// Whether the last record tried in the additional section fit. When
    /// it did not, the section ends there and no signatures follow (Knot
    /// stops alike).
    last_fit: bool,
}

impl Default for Extras<'_> {
    fn default() -> Self {
        Extras {
            targets: [&[]; MAX_TARGETS],
            targets_len: 0,
            signed: [None; MAX_SIGNED],
            signed_len: 0,
            last_fit: true,
        }
    }
}

impl<'a> Extras<'a> {
    /// Remembers `target`; false if it was already added. Knot adds the
    /// same target once per referring RR; we add it once per response.
    pub(super) fn first_time(&mut self, target: &'a [u8]) -> bool {
        if self.targets.iter().take(self.targets_len).any(|t| t.eq_ignore_ascii_case(target)) {
            return false;
        }
        if let Some(slot) = self.targets.get_mut(self.targets_len) {
            *slot = target;
            self.targets_len += 1;
        }
        true
    }

    fn sign_later(&mut self, signed: Signed<'a>) {
        if let Some(slot) = self.signed.get_mut(self.signed_len) {
            *slot = Some(signed);
            self.signed_len += 1;
        }
    }
}

impl<'a> Ctx<'a, '_> {
    /// Addresses of in-zone targets of NS, MX, SRV, SVCB and HTTPS
    /// (RFC 1034 §4.3.2 step 6, RFC 2782, RFC 9460 §4). Optional: what does
    /// not fit is left out without TC.
    pub(super) fn additional(&mut self, set: &RrSetRef<'a>) {
        // The answer section is complete: pending proofs go before.
        self.write_proofs();
        let Some(off) = rtype::additional_name_offset(set.rtype) else {
            return;
        };
        if self.truncated {
            return;
        }
        for rd in set.rdatas() {
            let Some(target) = rd.get(off..).and_then(|r| r.get(..name::wire_len(r)?)) else {
                continue;
            };
            // SVCB "." means the owner itself (RFC 9460 §2.5); Knot adds
            // nothing for it and neither do we.
            if target == [0] || !self.extras.first_time(target) {
                continue;
            }
            let extra = matches!(set.rtype, code::SVCB | code::HTTPS).then_some(set.rtype);
            if self.target_addresses(target, extra, false).is_err() && extra.is_some() {
                // The denial of a target's missing types did not fit.
                return;
            }
        }
    }

    /// Puts the A, AAAA (and `extra`) RRsets of an in-zone `target` in the
    /// additional section. When one does not fit the rest of this target
    /// is skipped; for `mandatory` glue TC is set (RFC 9471 §3). For SVCB
    /// and HTTPS (`extra`), a DNSSEC answer also proves which of the three
    /// types the target lacks (RFC 9460 §4.2); an `Err` after an `extra`
    /// means that proof did not fit.
    pub(super) fn target_addresses(
        &mut self,
        target: &'a [u8],
        extra: Option<u16>,
        mandatory: bool,
    ) -> Result<(), NoSpace> {
        let key = NameBuf::lowercased(target);
        if !name::is_at_or_below(key.as_slice(), self.zone.apex()) {
            return Ok(());
        }
        let (node, owner, signed) = match find_target(self.zone, key.as_slice(), self.hide_nsec3) {
            // RFC 4035 §3.1.1: signatures of authoritative addresses, when
            // they fit; glue (at or below a cut) is not signed and gets none.
            Target::Node(n) => {
                (n, Owner::Name(n.name()), self.chain.is_some() && !n.facts().at_or_below_delegation())
            }
            // Signatures of a wildcard expansion would need a proof that
            // this optional data does not carry.
            Target::Wildcard(n) => (n, Owner::Name(target), false),
            Target::None => return Ok(()),
        };
        let types = [Some(code::A), Some(code::AAAA), extra];
        let mut present = 0;
        for rtype in types.into_iter().flatten() {
            let Some(set) = node.rrset(rtype) else { continue };
            let fit = self.w.rrset(Section::Additional, owner, &set, set.ttl).is_ok();
            self.extras.last_fit = fit;
            if !fit {
                if mandatory {
                    self.truncated = true;
                }
                break;
            }
            present += 1;
            if signed {
                self.extras.sign_later(Signed { node, owner, rtype, ttl: set.ttl });
            }
        }
        if extra.is_some() && present < types.len() {
            return self.target_denial(node);
        }
        if self.extras.last_fit { Ok(()) } else { Err(NoSpace) }
    }

    /// RFC 9460 §4.2: "If the zone is signed, the server SHOULD also
    /// include DNSSEC records authenticating the existence or nonexistence
    /// of these records": the NSEC at the target, or the NSEC3 matching
    /// it, whose type bitmap shows what it lacks.
    fn target_denial(&mut self, node: NodeRef<'a>) -> Result<(), NoSpace> {
        let (denial, rtype) = match self.chain {
            Some(Chain::Nsec) => (Some(node), code::NSEC),
            Some(Chain::Nsec3 { salt, iterations }) => {
                let hash: [u8; HASH_LEN] = nsec3::hash(node.key(), salt, iterations);
                let matching = self.zone.nsec3_node(&hash).filter(|(_, exact)| *exact).map(|(n, _)| n);
                (matching, code::NSEC3)
            }
            None => return Ok(()),
        };
        let Some((node, set)) = denial.and_then(|n| Some((n, n.rrset(rtype)?))) else {
            return Ok(());
        };
        let owner = Owner::Name(node.name());
        let fit = self.w.rrset(Section::Additional, owner, &set, set.ttl).is_ok();
        self.extras.last_fit = fit;
        if !fit {
            return Err(NoSpace);
        }
        self.extras.sign_later(Signed { node, owner, rtype, ttl: set.ttl });
        Ok(())
    }

    /// Puts the signatures of the additional RRsets after them, in order,
    /// until one does not fit (RFC 4035 §3.1.1: optional, never TC).
    pub(super) fn additional_signatures(&mut self) {
        if self.truncated || !self.extras.last_fit || self.chain.is_none() {
            return;
        }
        for signed in self.extras.signed.into_iter().take(self.extras.signed_len).flatten() {
            let Some(sigs) = signed.node.rrset(code::RRSIG) else { continue };
            let covered = Some(signed.rtype);
            if self.w.rrsigs(Section::Additional, signed.owner, &sigs, covered, Some(signed.ttl)).is_err() {
                return;
            }
        }
    }
}
