//! Finding what answers a name in a zone: the node itself, a wildcard at
//! its closest encloser (RFC 4592 §3.3.1), a DNAME above it (RFC 6672),
//! or the delegation it lies under (RFC 1034 §4.3.2 step 3b).

use crate::name;
use crate::rtype::code;
use crate::zone::{NodeRef, Zone};

/// What [`find_node`] found.
pub(super) enum Found<'z> {
    /// A delegation at or above the name (RFC 1034 §4.3.2 step 3b).
    Cut(NodeRef<'z>),
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
    zone.node(key).filter(|n| !hidden(*n, hide_nsec3))
}

/// True if `node` is an NSEC3 owner and those are hidden.
fn hidden(node: NodeRef<'_>, hide_nsec3: bool) -> bool {
    hide_nsec3
        && node.rrset(code::NSEC3).is_some()
        && node.rrsets().all(|s| matches!(s.rtype, code::NSEC3 | code::RRSIG))
}

/// What answers `key` (lowercased) in step 3 of RFC 1034 §4.3.2: a
/// delegation at or above it (step 3b; for the cut's own name the caller
/// decides, DS being the parent's), a DNAME at a proper ancestor
/// (RFC 6672 §2.3, which occludes everything below it), the node, a
/// wildcard at the closest encloser (RFC 4592 §3.3.1), or nothing. The
/// node's facts say whether any ancestor needs a look, so a name that
/// exists costs one lookup.
pub(super) fn find_node<'z>(zone: &'z Zone, key: &[u8], hide_nsec3: bool) -> Found<'z> {
    let (ce, ce_node) = match zone.node(key) {
        Some(n) => {
            let f = n.facts();
            if f.occluded() {
                return occluder(zone, key);
            }
            if f.is_delegation() {
                return Found::Cut(n);
            }
            if !hidden(n, hide_nsec3) {
                return Found::Node(n);
            }
            match encloser(zone, key, hide_nsec3) {
                Some(found) => found,
                None => return Found::None { encloser: zone.apex().len() },
            }
        }
        None => match encloser(zone, key, hide_nsec3) {
            Some(found) => found,
            None => return Found::None { encloser: zone.apex().len() },
        },
    };
    let f = ce_node.facts();
    if f.occluded() {
        return occluder(zone, ce);
    }
    if f.is_delegation() {
        return Found::Cut(ce_node);
    }
    // RFC 6672 §3.2: a DNAME at the closest encloser redirects everything
    // below it, before any wildcard is considered.
    if f.has_dname() {
        return Found::Dname(ce_node);
    }
    wildcard_at(zone, ce, ce_node).map_or(Found::None { encloser: ce.len() }, Found::Wildcard)
}

/// The closest encloser of `key`: its deepest existing proper ancestor
/// (RFC 4592 §3.3.1), or `None` if the name is outside the zone.
fn encloser<'z, 'k>(zone: &'z Zone, key: &'k [u8], hide_nsec3: bool) -> Option<(&'k [u8], NodeRef<'z>)> {
    let mut ce = key;
    loop {
        let p = name::parent(ce).filter(|p| p.len() >= zone.apex().len())?;
        ce = p;
        if let Some(n) = visible_node(zone, p, hide_nsec3) {
            return Some((ce, n));
        }
    }
}

/// The wildcard child of the closest encloser `ce`, if it has one.
fn wildcard_at<'z>(zone: &'z Zone, ce: &[u8], ce_node: NodeRef<'z>) -> Option<NodeRef<'z>> {
    if !ce_node.facts().has_wildcard_child() {
        return None;
    }
    let mut wild = [0u8; name::MAX_NAME_LEN + 2];
    let w = wild.get_mut(..ce.len() + 2)?;
    let (head, tail) = w.split_at_mut_checked(2)?;
    head.copy_from_slice(&[1, b'*']);
    tail.copy_from_slice(ce);
    zone.node(w)
}

/// What occludes the occluded name `key`: the topmost delegation or
/// DNAME above it, the one a resolver meets first. A delegation beside a
/// DNAME at the same name refers (the zone check refuses that pair).
fn occluder<'z>(zone: &'z Zone, key: &[u8]) -> Found<'z> {
    let mut top = None;
    let mut p = name::parent(key);
    while let Some(a) = p.filter(|a| a.len() >= zone.apex().len()) {
        if let Some(n) = zone.node(a) {
            let f = n.facts();
            if f.is_delegation() || f.has_dname() {
                top = Some(n);
            }
            if !f.occluded() {
                break;
            }
        }
        p = name::parent(a);
    }
    match top {
        Some(n) if n.facts().is_delegation() => Found::Cut(n),
        Some(n) => Found::Dname(n),
        None => Found::None { encloser: zone.apex().len() },
    }
}

/// The node holding the addresses of an additional-section `key`
/// (lowercased): the node itself, glue below a cut included, or the
/// wildcard at its closest encloser; nothing below a DNAME (occluded,
/// RFC 6672 §2.3) or for a name that does not exist.
pub(super) fn find_target<'z>(zone: &'z Zone, key: &[u8], hide_nsec3: bool) -> Target<'z> {
    if let Some(n) = visible_node(zone, key, hide_nsec3) {
        return if n.facts().below_dname() { Target::None } else { Target::Node(n) };
    }
    let Some((ce, ce_node)) = encloser(zone, key, hide_nsec3) else {
        return Target::None;
    };
    let f = ce_node.facts();
    if f.occluded() || f.is_delegation() || f.has_dname() {
        return Target::None;
    }
    wildcard_at(zone, ce, ce_node).map_or(Target::None, Target::Wildcard)
}

/// What [`find_target`] found.
pub(super) enum Target<'z> {
    Node(NodeRef<'z>),
    Wildcard(NodeRef<'z>),
    None,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Record;

    fn n(s: &str) -> Box<[u8]> {
        name::from_text(s, None).unwrap()
    }

    fn zone(text: &str) -> Zone {
        let apex = n("example.test.");
        let head = "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n";
        let recs: Vec<Record> = crate::zonefile::parse(&format!("{head}{text}"), &apex).unwrap();
        Zone::build(&apex, recs, 1).unwrap()
    }

    fn found(z: &Zone, q: &str) -> String {
        match find_node(z, &n(q), false) {
            Found::Cut(c) => format!("cut {}", name::to_text(c.key())),
            Found::Node(c) => format!("node {}", name::to_text(c.key())),
            Found::Wildcard(c) => format!("wildcard {}", name::to_text(c.key())),
            Found::Dname(c) => format!("dname {}", name::to_text(c.key())),
            Found::None { encloser } => format!("none {encloser}"),
        }
    }

    /// The answer section of `respond` for (`qname`, `qtype`), one line
    /// per record, parsed by `domain`.
    fn answer(z: Zone, qname: &str, qtype: u16) -> Vec<String> {
        use domain::base::{Message, ParsedName};
        use domain::rdata::AllRecordData;
        let catalog = crate::catalog::Catalog::new().with_zone(std::sync::Arc::new(z));
        let mut q = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&n(qname));
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        let mut buf = Vec::new();
        let limits = crate::Limits::default();
        crate::answer::respond(&catalog, &q, &mut buf, crate::answer::Transport::Udp, &limits);
        let m = Message::from_octets(&buf[..]).unwrap();
        m.answer()
            .unwrap()
            .map(|rr| {
                let rr = rr.unwrap().to_any_record::<AllRecordData<_, ParsedName<_>>>().unwrap();
                format!("{} {} {}", rr.owner(), rr.rtype(), rr.data())
            })
            .collect()
    }

    /// RFC 6672 §2.3: a DNAME occludes every name below it, those that
    /// exist (`host.d`) and those below an empty non-terminal (`x.y.d`),
    /// which get the DNAME and a synthesized CNAME, not the occluded data
    /// or NXDOMAIN.
    #[test]
    fn dname_at_a_proper_ancestor_redirects() {
        let text = "d 300 DNAME t.example.net.\nhost.d 300 A 192.0.2.2\nz.y.d 300 TXT hi\n";
        let a = answer(zone(text), "host.d.example.test.", code::A);
        assert_eq!(
            a,
            ["d.example.test DNAME t.example.net.", "host.d.example.test CNAME host.t.example.net."],
            "{a:?}"
        );
        let a = answer(zone(text), "x.y.d.example.test.", code::A);
        assert_eq!(
            a,
            ["d.example.test DNAME t.example.net.", "x.y.d.example.test CNAME x.y.t.example.net."],
            "{a:?}"
        );
    }

    #[test]
    fn find_node_returns_the_dname_above_occluded_names() {
        let z = zone("d 300 DNAME t.example.net.\nhost.d 300 A 192.0.2.2\nz.y.d 300 TXT hi\n");
        assert_eq!(found(&z, "host.d.example.test."), "dname d.example.test.");
        assert_eq!(found(&z, "x.y.d.example.test."), "dname d.example.test.");
        assert_eq!(found(&z, "z.y.d.example.test."), "dname d.example.test.");
        assert_eq!(found(&z, "nope.d.example.test."), "dname d.example.test.");
        assert_eq!(found(&z, "d.example.test."), "node d.example.test.");
        // An additional-section target below it has no addresses either.
        assert!(matches!(find_target(&z, &n("host.d.example.test."), false), Target::None));
    }

    #[test]
    fn names_at_and_below_a_cut_refer_from_the_topmost_cut() {
        let z = zone(
            "sub 300 NS ns.sub\nns.sub 300 A 192.0.2.3\ndeep.x.sub 300 TXT hi\nin.deep.x.sub 300 NS ns\n",
        );
        for q in ["sub", "ns.sub", "x.sub", "deep.x.sub", "in.deep.x.sub", "a.in.deep.x.sub", "nope.sub"] {
            assert_eq!(found(&z, &format!("{q}.example.test.")), "cut sub.example.test.", "{q}");
        }
        // Glue is found as a target, at the cut and below it.
        assert!(matches!(find_target(&z, &n("ns.sub.example.test."), false), Target::Node(_)));
        assert_eq!(found(&z, "ns.example.test."), "node ns.example.test.");
    }

    #[test]
    fn wildcards_are_found_from_the_encloser_facts() {
        let z = zone("*.w 300 A 192.0.2.9\nx.w 300 A 192.0.2.8\n*.sub 300 A 192.0.2.7\nsub 300 NS ns\n");
        assert_eq!(found(&z, "a.w.example.test."), "wildcard *.w.example.test.");
        assert_eq!(found(&z, "x.w.example.test."), "node x.w.example.test.");
        assert_eq!(found(&z, "a.b.example.test."), format!("none {}", n("example.test.").len()));
        // A wildcard below a cut is the child's.
        assert_eq!(found(&z, "a.sub.example.test."), "cut sub.example.test.");
    }
}
