//! Finding what answers a name in a zone: the node itself, a wildcard at
//! its closest encloser (RFC 4592 §3.3.1), a DNAME above it (RFC 6672),
//! or the delegation it lies under (RFC 1034 §4.3.2 step 3b).

use crate::name;
use crate::rtype::code;
use crate::zone::{NodeRef, Zone};

/// What [`find_node`] found.
pub(super) enum Found<'z> {
    Node(NodeRef<'z>),
    Wildcard(NodeRef<'z>),
    /// A DNAME at a proper ancestor (RFC 6672 §2.3): the name is redirected.
    Dname(NodeRef<'z>),
    /// No such name; `encloser` is the length of the closest encloser, a
    /// suffix of the name (RFC 4592 §3.3.1).
    None {
        encloser: usize,
    },
}

/// The node at `key`, unless it is an NSEC3 owner and those are hidden:
/// RFC 5155 §7.2.8 answers for them as if they did not exist.
fn visible_node<'z>(zone: &'z Zone, key: &[u8], hide_nsec3: bool) -> Option<NodeRef<'z>> {
    let node = zone.node(key)?;
    if hide_nsec3
        && node.rrset(code::NSEC3).is_some()
        && node.rrsets().all(|s| matches!(s.rtype, code::NSEC3 | code::RRSIG))
    {
        return None;
    }
    Some(node)
}

/// The node for `key`, or the wildcard at its closest encloser
/// (RFC 4592 §3.3.1), or nothing.
pub(super) fn find_node<'z>(zone: &'z Zone, key: &[u8], hide_nsec3: bool) -> Found<'z> {
    if let Some(n) = visible_node(zone, key, hide_nsec3) {
        return Found::Node(n);
    }
    // The closest encloser: the deepest existing ancestor.
    let mut ce = key;
    let ce_node = loop {
        match name::parent(ce) {
            Some(p) if p.len() >= zone.apex().len() => {
                ce = p;
                if let Some(n) = visible_node(zone, p, hide_nsec3) {
                    break n;
                }
            }
            _ => return Found::None { encloser: ce.len() },
        }
    };
    // RFC 6672 §3.2: a DNAME at the closest encloser redirects everything
    // below it, before any wildcard is considered.
    if ce_node.rrset(code::DNAME).is_some() {
        return Found::Dname(ce_node);
    }
    let none = Found::None { encloser: ce.len() };
    if ce_node.child_count() == 0 {
        return none;
    }
    let mut wild = [0u8; name::MAX_NAME_LEN + 2];
    let wlen = ce.len() + 2;
    let Some(w) = wild.get_mut(..wlen) else {
        return none;
    };
    if let Some((head, tail)) = w.split_at_mut_checked(2) {
        head.copy_from_slice(&[1, b'*']);
        tail.copy_from_slice(ce);
    }
    match zone.node(&w[..]) {
        Some(n) => Found::Wildcard(n),
        None => none,
    }
}

/// The topmost delegation point at or above `key`, below the apex.
pub(super) fn find_cut<'z>(zone: &'z Zone, key: &[u8]) -> Option<NodeRef<'z>> {
    let apex_labels = name::label_count(zone.apex());
    let labels = name::label_count(key);
    // Walk from just below the apex down to the name itself.
    for depth in (0..labels.saturating_sub(apex_labels)).rev() {
        let mut n = key;
        for _ in 0..depth {
            n = name::parent(n)?;
        }
        if let Some(node) = zone.node(n) {
            if node.rrset(code::NS).is_some() {
                return Some(node);
            }
        } else {
            // Nothing here, so nothing below either.
            return None;
        }
    }
    None
}
