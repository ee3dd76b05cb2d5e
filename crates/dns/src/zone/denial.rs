//! The ordered denial index: the owners of NSEC RRsets in DNSSEC canonical
//! order and the hashes of NSEC3 owners in hash order, so that the record
//! matching or covering any name is one ordered-set step away (RFC 4035
//! §3.1.3, RFC 5155 §7.2).
//!
//! The node table is a hash table and has no order, so the order lives
//! here, beside it. Both sets are persistent B-trees (`imbl`): cloning the
//! zone for a change shares them, and one insertion copies only the path
//! to one leaf, so a change to a million-name zone stays in microseconds.
//! Only names that own an NSEC (resp. NSEC3) RRset are members.

use imbl::OrdSet;

use crate::name::{self, MAX_CANONICAL_KEY_LEN, NameBuf};
use crate::nsec3::{self, HASH_LEN};

/// The NSEC owners and NSEC3 hashes of a zone.
#[derive(Clone, Default)]
pub(super) struct DenialIndex {
    /// [`name::canonical_key`] of each NSEC owner.
    nsec: OrdSet<Box<[u8]>>,
    /// The hash of each NSEC3 owner directly below the apex.
    nsec3: OrdSet<[u8; HASH_LEN]>,
}

impl DenialIndex {
    /// Records whether the node `key` (lowercased) of the zone `apex`
    /// owns an NSEC and an NSEC3 RRset now.
    pub(super) fn note(&mut self, key: &[u8], apex: &[u8], has_nsec: bool, has_nsec3: bool) {
        let mut buf = [0u8; MAX_CANONICAL_KEY_LEN];
        let ckey = name::canonical_key_into(key, &mut buf);
        if has_nsec {
            if !self.nsec.contains(ckey) {
                self.nsec.insert(ckey.into());
            }
        } else {
            self.nsec.remove(ckey);
        }
        // RFC 5155 §3: NSEC3 owners are one hashed label above the apex;
        // an NSEC3 RRset elsewhere proves nothing and is not indexed.
        if name::parent(key) != Some(apex) {
            return;
        }
        if let Some(hash) = nsec3::owner_hash(key) {
            if has_nsec3 {
                self.nsec3.insert(hash);
            } else {
                self.nsec3.remove(&hash);
            }
        }
    }

    /// True if the zone has NSEC3 records.
    pub(super) fn has_nsec3(&self) -> bool {
        !self.nsec3.is_empty()
    }

    /// The NSEC owner matching or covering `name` (any case): the greatest
    /// owner at or before it in canonical order, wrapping around to the
    /// last owner (RFC 4034 §4.1.1: the last NSEC points back to the apex).
    pub(super) fn nsec_owner(&self, name: &[u8]) -> Option<NameBuf> {
        let mut buf = [0u8; MAX_CANONICAL_KEY_LEN];
        let ckey = name::canonical_key_into(name, &mut buf);
        let found = self.nsec.get_prev(ckey).or_else(|| self.nsec.get_max())?;
        name::from_canonical_key(found)
    }

    /// The NSEC3 hash matching or covering `hash`: the greatest at or
    /// before it, wrapping around to the last (RFC 5155 §3.1.7).
    pub(super) fn nsec3_hash(&self, hash: &[u8; HASH_LEN]) -> Option<[u8; HASH_LEN]> {
        self.nsec3.get_prev(hash).or_else(|| self.nsec3.get_max()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Box<[u8]> {
        name::from_text(s, None).unwrap()
    }

    #[test]
    fn nsec_owners_match_cover_and_wrap() {
        let apex = n("example.");
        let mut d = DenialIndex::default();
        for o in ["example.", "a.example.", "z.a.example.", "m.example."] {
            d.note(&n(o), &apex, true, false);
        }
        let owner = |d: &DenialIndex, q: &str| name::to_text(d.nsec_owner(&n(q)).unwrap().as_slice());
        assert_eq!(owner(&d, "a.example."), "a.example.");
        assert_eq!(owner(&d, "B.example."), "z.a.example.");
        assert_eq!(owner(&d, "x.z.a.example."), "z.a.example.");
        assert_eq!(owner(&d, "zz.example."), "m.example.", "after the last: the last covers");
        assert_eq!(owner(&d, "example."), "example.");
        d.note(&n("m.example."), &apex, false, false);
        assert_eq!(owner(&d, "zz.example."), "z.a.example.");
        // Below the apex only: a name before every owner wraps to the last.
        assert_eq!(owner(&d, "."), "z.a.example.");
    }

    #[test]
    fn nsec3_hashes_match_cover_and_wrap() {
        let apex = n("example.");
        let mut d = DenialIndex::default();
        let h = |b: u8| [b; HASH_LEN];
        for b in [0x10, 0x80] {
            let owner = nsec3::owner_name(&h(b), &apex);
            d.note(&owner, &apex, false, true);
        }
        // Not directly below the apex: ignored.
        d.note(&nsec3::owner_name(&h(0x40), &n("sub.example.")), &apex, false, true);
        assert!(d.has_nsec3());
        assert_eq!(d.nsec3_hash(&h(0x10)), Some(h(0x10)));
        assert_eq!(d.nsec3_hash(&h(0x50)), Some(h(0x10)));
        assert_eq!(d.nsec3_hash(&h(0x05)), Some(h(0x80)), "before the first: the last covers");
        assert_eq!(d.nsec3_hash(&h(0xff)), Some(h(0x80)));
    }
}
