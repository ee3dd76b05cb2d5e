//! Per-node facts: what a name is in its zone, decided once when the zone
//! is built or changed, so that the answer engine, the signer and the
//! pre-serve check ask the node instead of walking its ancestors again.
//!
//! Knot keeps the same facts as node flags (`NODE_FLAGS_DELEG`,
//! `NODE_FLAGS_NONAUTH`, `NODE_FLAGS_WILDCARD_CHILD`); NSD keeps a
//! wildcard-child pointer. The rules are in one place, [`Facts::own`] for
//! what a node's own data makes it and [`Facts::inherited`] for what its
//! parent passes down, and every user derives from them.

use crate::rtype::code;

/// What a node is in its zone (a few bits kept in the packed node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts(u8);

impl Facts {
    /// NS at a name below the apex: a zone cut (RFC 1034 §4.2.1).
    const DELEGATION: u8 = 1 << 1;
    /// A DNAME at this name (the apex included).
    const DNAME: u8 = 1 << 2;
    /// Strictly below a delegation: glue, or data occluded by the cut
    /// (RFC 1034 §4.2.1, RFC 4035 §2.2).
    const BELOW_DELEGATION: u8 = 1 << 3;
    /// Strictly below a DNAME: occluded (RFC 6672 §2.3).
    const BELOW_DNAME: u8 = 1 << 4;
    /// The name has a child `*` (RFC 4592 §2.1.1).
    const WILDCARD_CHILD: u8 = 1 << 5;
    /// The bits kept in the packed node (bit 0 of that octet is the
    /// node's own "original case follows" flag).
    pub(super) const MASK: u8 = 0b0011_1110;
    /// The bits a node's own data decides.
    const OWN: u8 = Self::DELEGATION | Self::DNAME;

    /// The facts stored in a packed node's flag octet.
    pub(super) fn from_bits(bits: u8) -> Facts {
        Facts(bits & Self::MASK)
    }

    /// The bits to store in a packed node's flag octet.
    pub(super) fn bits(self) -> u8 {
        self.0
    }

    /// What a node's own types make it: a delegation (NS, not at the
    /// apex) or a DNAME owner.
    pub fn own(is_apex: bool, types: impl IntoIterator<Item = u16>) -> Facts {
        let mut f = 0;
        for t in types {
            match t {
                code::NS if !is_apex => f |= Self::DELEGATION,
                code::DNAME => f |= Self::DNAME,
                _ => {}
            }
        }
        Facts(f)
    }

    /// What a child of a node with facts `parent` inherits: everything
    /// below a delegation is below it, and so on for DNAME.
    pub fn inherited(parent: Facts) -> Facts {
        let mut f = 0;
        if parent.0 & (Self::DELEGATION | Self::BELOW_DELEGATION) != 0 {
            f |= Self::BELOW_DELEGATION;
        }
        if parent.0 & (Self::DNAME | Self::BELOW_DNAME) != 0 {
            f |= Self::BELOW_DNAME;
        }
        Facts(f)
    }

    /// These facts with the own bits of `own` instead of the current ones.
    pub(super) fn with_own(self, own: Facts) -> Facts {
        Facts((self.0 & !Self::OWN) | (own.0 & Self::OWN))
    }

    /// These facts with the inherited bits of `inherited`.
    pub(super) fn with_inherited(self, inherited: Facts) -> Facts {
        let bits = Self::BELOW_DELEGATION | Self::BELOW_DNAME;
        Facts((self.0 & !bits) | (inherited.0 & bits))
    }

    /// These facts with the wildcard-child bit set to `on`.
    pub(super) fn with_wildcard_child(self, on: bool) -> Facts {
        if on { Facts(self.0 | Self::WILDCARD_CHILD) } else { Facts(self.0 & !Self::WILDCARD_CHILD) }
    }

    /// The union of two sets of facts.
    pub fn union(self, other: Facts) -> Facts {
        Facts(self.0 | other.0)
    }

    /// The own bits only (delegation, DNAME).
    pub(super) fn own_part(self) -> Facts {
        Facts(self.0 & Self::OWN)
    }

    /// NS at a name below the apex: a zone cut.
    pub fn is_delegation(self) -> bool {
        self.0 & Self::DELEGATION != 0
    }

    /// The name owns a DNAME.
    pub fn has_dname(self) -> bool {
        self.0 & Self::DNAME != 0
    }

    /// Strictly below a delegation (glue or occluded data).
    pub fn below_delegation(self) -> bool {
        self.0 & Self::BELOW_DELEGATION != 0
    }

    /// Strictly below a DNAME (occluded).
    pub fn below_dname(self) -> bool {
        self.0 & Self::BELOW_DNAME != 0
    }

    /// Strictly below a delegation or a DNAME: not authoritative data of
    /// this zone, never signed, never answered from.
    pub fn occluded(self) -> bool {
        self.below_delegation() || self.below_dname()
    }

    /// At or below a delegation: nothing here but DS (at the cut itself)
    /// is authoritative.
    pub fn at_or_below_delegation(self) -> bool {
        self.is_delegation() || self.below_delegation()
    }

    /// The name has a child `*`.
    pub fn has_wildcard_child(self) -> bool {
        self.0 & Self::WILDCARD_CHILD != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_pass_down_from_cuts_and_dnames() {
        let cut = Facts::own(false, [code::NS, code::A]);
        assert!(cut.is_delegation() && !cut.occluded());
        assert!(!Facts::own(true, [code::NS, code::SOA]).is_delegation(), "the apex is no cut");
        let glue = Facts::inherited(cut);
        assert!(glue.below_delegation() && !glue.below_dname() && glue.occluded());
        assert!(Facts::inherited(glue).below_delegation(), "deeper names too");
        let d = Facts::inherited(Facts::own(true, [code::DNAME]));
        assert!(d.below_dname(), "a DNAME at the apex occludes what is below it (RFC 6672 §2.3)");
        assert!(!Facts::inherited(Facts::own(false, [code::A])).occluded());
        let f = Facts::default().with_wildcard_child(true).with_own(cut).with_inherited(d);
        assert!(f.has_wildcard_child() && f.is_delegation() && f.below_dname());
        assert_eq!(Facts::from_bits(f.bits() | 1), f, "bit 0 is not a fact");
    }
}
