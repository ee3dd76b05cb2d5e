//! Immutable zone snapshots with cheap copy-on-write updates.
//!
//! A [`Zone`] holds every node of one zone in a sharded hash table. Each
//! node is one packed allocation: its lowercased name (the key), its child
//! count (to tell empty non-terminals from nothing), its name in original
//! case if that differs, and its RRsets with rdata in uncompressed wire form.
//!
//! Why sharded: the snapshot is shared by all query threads and replaced by
//! pointer swap on every change. A change clones the list of shard pointers
//! (a few thousand `Arc`s) and deep-copies only the shards it touches
//! (a few hundred nodes each), so one changed RRset in a million-name zone
//! costs microseconds, while lookups stay a plain SwissTable probe — faster
//! than a HAMT's pointer chase.
//!
//! Each node also carries its [`Facts`] (a delegation, below a cut or a
//! DNAME, has a wildcard child), derived when the zone is built or
//! changed, so a lookup asks the node instead of probing its ancestors.
//! Adding or removing a delegation or DNAME re-derives the names below it,
//! found by one scan of the zone: such changes are rare, lookups are not.

mod builder;
mod denial;
mod facts;
mod map;
mod node;

use std::cmp::Ordering;

use crate::name::{self, NameBuf};
use crate::nsec3::{self, HASH_LEN};
use crate::octets::be32;
use crate::rtype::code;

pub use builder::ZoneBuilder;
use denial::DenialIndex;
pub use facts::Facts;
use map::NodeMap;
use node::NodeData;
pub use node::{NodeRef, RdataIter, RrSetIter, RrSetRef};

/// One resource record in wire form (owner and rdata uncompressed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// Owner name, original case.
    pub owner: Box<[u8]>,
    /// Type code.
    pub rtype: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// Rdata, uncompressed wire form.
    pub rdata: Box<[u8]>,
}

/// One edit of a zone's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add this RR (its TTL becomes the RRset's TTL).
    Add(Record),
    /// Remove the RR with this owner, type and rdata.
    Remove(Record),
}

impl Change {
    /// The record added or removed.
    pub fn record(&self) -> &Record {
        match self {
            Change::Add(r) | Change::Remove(r) => r,
        }
    }
}

/// The owners (lowercased, sorted, each once) of the given changes.
pub fn changed_owners<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<Box<[u8]>> {
    let mut owners: Vec<Box<[u8]>> =
        changes.into_iter().map(|c| crate::name::to_lowercase(&c.record().owner)).collect();
    owners.sort_unstable();
    owners.dedup();
    owners
}

/// Why an RRset could not be packed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// An RRset larger than a DNS message can carry.
    #[error("RRset {0} of type {1} is larger than 65535 octets")]
    RrSetTooLarge(String, u16),
    /// A record whose owner is outside the zone.
    #[error("{0} is outside the zone")]
    OutOfZone(String),
}

/// An immutable zone snapshot.
#[derive(Clone)]
pub struct Zone {
    apex: Box<[u8]>,
    nodes: NodeMap,
    cuts: usize,
    denial: DenialIndex,
}

impl Zone {
    /// Builds a zone from records. Records outside the zone are refused.
    /// `seed` keys the hash function (pick it at random per process, so
    /// names cannot be chosen to collide).
    pub fn build(
        apex: &[u8],
        records: impl IntoIterator<Item = Record>,
        seed: u64,
    ) -> Result<Zone, ZoneError> {
        let records = records.into_iter();
        let mut b = ZoneBuilder::new(apex, seed, records.size_hint().0);
        for r in records {
            b.push(r)?;
        }
        b.finish()
    }

    /// Applies changes, returning the new snapshot. `self` is untouched.
    pub fn apply(&self, changes: &[Change]) -> Result<Zone, ZoneError> {
        let mut z = self.clone();
        // Names whose facts (or whose new ancestors' facts) to re-derive,
        // and names whose own facts changed, so everything below them.
        let mut touched: Vec<Box<[u8]>> = Vec::new();
        let mut subtrees: Vec<Box<[u8]>> = Vec::new();
        for c in changes {
            let r = match c {
                Change::Add(r) | Change::Remove(r) => r,
            };
            let key = name::to_lowercase(&r.owner);
            if !name::is_at_or_below(&key, &z.apex) {
                return Err(ZoneError::OutOfZone(name::to_text(&r.owner)));
            }
            let existing = z.nodes.get(&key).map(NodeData::from_ref);
            let created = existing.is_none();
            let mut node = existing.unwrap_or_else(|| NodeData::empty(&r.owner));
            let was_cut = key != z.apex && node.has(code::NS);
            match c {
                Change::Add(r) => node.add(r.rtype, r.ttl, r.rdata.clone()),
                Change::Remove(r) => node.remove(r.rtype, &r.rdata),
            }
            let is_cut = key != z.apex && node.has(code::NS);
            z.cuts = z.cuts + usize::from(is_cut) - usize::from(was_cut);
            let own_before = node.facts.own_part();
            node.refresh_own_facts(&z.apex);
            if node.facts.own_part() != own_before {
                subtrees.push(key.clone());
            }
            touched.push(key.clone());
            if matches!(r.rtype, code::NSEC | code::NSEC3) {
                z.denial.note(&key, &z.apex, node.has(code::NSEC), node.has(code::NSEC3));
            }
            if node.rrsets.is_empty() && node.children == 0 && key != z.apex {
                if !created {
                    z.nodes.remove(&key);
                    z.unlink_parent(&r.owner)?;
                }
            } else {
                if node.rrsets.is_empty() && created {
                    continue;
                }
                z.nodes.insert(node.pack()?);
                if created {
                    z.link_parent(&r.owner)?;
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for key in &touched {
            z.refresh_facts_upwards(key);
        }
        if !subtrees.is_empty() {
            let below: Vec<Box<[u8]>> = z
                .nodes
                .iter()
                .map(|n| n.key())
                .filter(|k| subtrees.iter().any(|s| k.len() > s.len() && name::is_at_or_below(k, s)))
                .map(Box::from)
                .collect();
            for key in &below {
                z.refresh_facts(key);
            }
        }
        if z.nodes.needs_reshard() {
            z.nodes = z.nodes.resharded();
        }
        Ok(z)
    }

    /// Re-derives the facts of the node at `key`; true if they changed.
    fn refresh_facts(&mut self, key: &[u8]) -> bool {
        let Some(node) = self.nodes.get(key) else {
            return false;
        };
        let before = node.facts();
        let after = derive_facts(&self.nodes, &self.apex, node);
        self.nodes.set_facts(key, after);
        before != after
    }

    /// Re-derives the facts of `key`, its parent (whose wildcard child it
    /// may be), and further ancestors while theirs change: empty
    /// non-terminals made by a change need theirs.
    fn refresh_facts_upwards(&mut self, key: &[u8]) {
        self.refresh_facts(key);
        let mut p = name::parent(key);
        let mut first = true;
        while let Some(a) = p.filter(|a| a.len() >= self.apex.len()) {
            if !self.refresh_facts(a) && !first {
                break;
            }
            first = false;
            p = name::parent(a);
        }
    }

    /// Counts a new child at the parent, creating empty non-terminals.
    fn link_parent(&mut self, child: &[u8]) -> Result<(), ZoneError> {
        let Some(p) = name::parent(child) else {
            return Ok(());
        };
        if p.len() < self.apex.len() {
            return Ok(());
        }
        let pk = name::to_lowercase(p);
        let existing = self.nodes.get(&pk).map(NodeData::from_ref);
        let created = existing.is_none();
        let mut n = existing.unwrap_or_else(|| NodeData::empty(p));
        n.children += 1;
        self.nodes.insert(n.pack()?);
        if created {
            self.link_parent(p)?;
        }
        Ok(())
    }

    /// Uncounts a removed child, removing empty non-terminals left bare.
    fn unlink_parent(&mut self, child: &[u8]) -> Result<(), ZoneError> {
        let Some(p) = name::parent(child) else {
            return Ok(());
        };
        if p.len() < self.apex.len() {
            return Ok(());
        }
        let pk = name::to_lowercase(p);
        let Some(mut n) = self.nodes.get(&pk).map(NodeData::from_ref) else {
            return Ok(());
        };
        n.children = n.children.saturating_sub(1);
        if n.children == 0 && n.rrsets.is_empty() && pk != self.apex {
            self.nodes.remove(&pk);
            self.unlink_parent(p)?;
        } else {
            self.nodes.insert(n.pack()?);
        }
        Ok(())
    }

    /// Every node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef<'_>> {
        self.nodes.iter()
    }

    /// The apex, lowercased.
    pub fn apex(&self) -> &[u8] {
        &self.apex
    }

    /// The node at `key` (a lowercased name).
    pub fn node(&self, key: &[u8]) -> Option<NodeRef<'_>> {
        self.nodes.get(key)
    }

    /// The apex node.
    pub fn apex_node(&self) -> Option<NodeRef<'_>> {
        self.nodes.get(&self.apex)
    }

    /// The facts of the node at `key` (a lowercased name); nothing for a
    /// name that is not in the zone.
    pub fn facts(&self, key: &[u8]) -> Option<Facts> {
        self.nodes.get(key).map(|n| n.facts())
    }

    /// True if the zone has delegations below its apex.
    pub fn has_cuts(&self) -> bool {
        self.cuts > 0
    }

    /// Number of nodes, including empty non-terminals.
    pub fn node_count(&self) -> usize {
        self.nodes.len
    }

    /// True if the zone holds NSEC3 records (directly below the apex).
    pub fn has_nsec3(&self) -> bool {
        self.denial.has_nsec3()
    }

    /// The name (lowercased) of the NSEC owner matching or covering `name`
    /// (any case): the greatest NSEC owner at or before it in canonical
    /// order (RFC 4034 §6.1), wrapping around to the last one.
    pub fn nsec_owner(&self, name: &[u8]) -> Option<NameBuf> {
        self.denial.nsec_owner(name)
    }

    /// The node of the NSEC owner matching or covering `name` (see
    /// [`Zone::nsec_owner`]).
    pub fn nsec_node(&self, name: &[u8]) -> Option<NodeRef<'_>> {
        self.node(self.nsec_owner(name)?.as_slice())
    }

    /// The NSEC3 hash matching or covering `hash`: the greatest hash of an
    /// NSEC3 owner at or before it, wrapping around to the last one
    /// (RFC 5155 §7.2).
    pub fn nsec3_owner(&self, hash: &[u8; HASH_LEN]) -> Option<[u8; HASH_LEN]> {
        self.denial.nsec3_hash(hash)
    }

    /// The node of the NSEC3 owner matching or covering `hash` (see
    /// [`Zone::nsec3_owner`]), and whether it matches.
    pub fn nsec3_node(&self, hash: &[u8; HASH_LEN]) -> Option<(NodeRef<'_>, bool)> {
        let found = self.nsec3_owner(hash)?;
        let mut buf = [0u8; name::MAX_NAME_LEN];
        let owner = nsec3::owner_name_into(&found, &self.apex, &mut buf)?;
        Some((self.node(owner)?, found == *hash))
    }

    /// The SOA serial, if the zone has an SOA.
    pub fn serial(&self) -> Option<u32> {
        let soa = self.apex_node()?.rrset(code::SOA)?;
        let rd = soa.rdatas().next()?;
        soa_serial(rd)
    }

    /// The negative-caching TTL: the minimum of the SOA's TTL and its
    /// MINIMUM field (RFC 2308 §5).
    pub fn negative_ttl(&self) -> u32 {
        let Some(soa) = self.apex_node().and_then(|n| n.rrset(code::SOA)) else {
            return 0;
        };
        let min = soa.rdatas().next().and_then(|rd| be32(rd, rd.len().checked_sub(4)?)).unwrap_or(0);
        soa.ttl.min(min)
    }

    /// All records in canonical order (see [`sort_canonical`]).
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for n in self.nodes.iter() {
            for s in n.rrsets() {
                for rd in s.rdatas() {
                    // An RRSIG is served with the TTL of the RRset it covers,
                    // its Original TTL field (RFC 4034 §3.1.4, §3).
                    let ttl = if s.rtype == code::RRSIG { be32(rd, 4).unwrap_or(s.ttl) } else { s.ttl };
                    out.push(Record { owner: n.name().into(), rtype: s.rtype, ttl, rdata: rd.into() });
                }
            }
        }
        sort_canonical(&mut out);
        out
    }
}

/// The facts of `node`: its own data's, what its ancestors' own data
/// passes down, and whether it has a wildcard child.
fn derive_facts(nodes: &NodeMap, apex: &[u8], node: NodeRef<'_>) -> Facts {
    let key = node.key();
    let own = Facts::own(key == apex, node.rrsets().map(|s| s.rtype));
    let inherited = inherited_facts(key, apex, node.rrset(code::NSEC3).is_some(), |a| {
        nodes.get(a).map(|n| n.facts().own_part())
    });
    let mut wild = [0u8; name::MAX_NAME_LEN + 2];
    let wildcard_child = wildcard_of(key, &mut wild).is_some_and(|w| nodes.get(w).is_some());
    node.facts().with_own(own).with_inherited(inherited).with_wildcard_child(wildcard_child)
}

/// What the name `key` inherits from its ancestors up to the apex, given
/// the own facts of each (`own_of`, `None` for no node). An NSEC3 owner
/// (`nsec3`) is the signer's, hashed into the apex's namespace: a DNAME
/// at the apex does not occlude it.
pub(super) fn inherited_facts(
    key: &[u8],
    apex: &[u8],
    nsec3: bool,
    own_of: impl Fn(&[u8]) -> Option<Facts>,
) -> Facts {
    let mut f = Facts::default();
    let mut p = name::parent(key);
    while let Some(a) = p.filter(|a| a.len() >= apex.len()) {
        if let Some(own) = own_of(a).filter(|_| !(nsec3 && a.len() == apex.len())) {
            f = f.union(Facts::inherited(own));
        }
        p = name::parent(a);
    }
    f
}

/// The name `*.key` in `buf`, if it fits.
pub(super) fn wildcard_of<'b>(key: &[u8], buf: &'b mut [u8; name::MAX_NAME_LEN + 2]) -> Option<&'b [u8]> {
    let len = key.len() + 2;
    if len > name::MAX_NAME_LEN {
        return None;
    }
    let w = buf.get_mut(..len)?;
    let (head, tail) = w.split_at_mut_checked(2)?;
    head.copy_from_slice(&[1, b'*']);
    tail.copy_from_slice(key);
    Some(w)
}

/// Sorts records for export: owners in DNSSEC canonical order (RFC 4034
/// §6.1), the SOA first at its owner so a zone file starts with it, then
/// by type and rdata.
pub fn sort_canonical(records: &mut [Record]) {
    records.sort_by(|a, b| {
        canonical_cmp(&a.owner, &b.owner)
            .then((a.rtype != code::SOA).cmp(&(b.rtype != code::SOA)))
            .then(a.rtype.cmp(&b.rtype))
            .then(a.rdata.cmp(&b.rdata))
    });
}

/// The serial of SOA rdata.
pub fn soa_serial(rdata: &[u8]) -> Option<u32> {
    let m = name::wire_len(rdata)?;
    let r = name::wire_len(rdata.get(m..)?)?;
    be32(rdata, m + r)
}

/// Compares wire names in DNSSEC canonical order (RFC 4034 §6.1): by
/// labels from the root down, each compared as lowercased octets. Needs
/// no allocation, so sorting a large zone does not allocate per step.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    fn label(n: &[u8], start: u8) -> &[u8] {
        let s = start as usize;
        let len = n.get(s).copied().unwrap_or(0) as usize;
        n.get(s + 1..s + 1 + len).unwrap_or(&[])
    }
    let (sa, na) = name::label_starts(a);
    let (sb, nb) = name::label_starts(b);
    for (&x, &y) in sa.get(..na).unwrap_or(&[]).iter().rev().zip(sb.get(..nb).unwrap_or(&[]).iter().rev()) {
        let ord = label(a, x)
            .iter()
            .map(u8::to_ascii_lowercase)
            .cmp(label(b, y).iter().map(u8::to_ascii_lowercase));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    na.cmp(&nb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Box<[u8]> {
        name::from_text(s, None).unwrap()
    }

    fn rec(owner: &str, rtype: u16, rdata: &[u8]) -> Record {
        Record { owner: n(owner), rtype, ttl: 300, rdata: rdata.into() }
    }

    #[test]
    fn build_creates_empty_non_terminals() {
        let z =
            Zone::build(&n("example.com."), vec![rec("a.b.c.example.com.", 1, &[192, 0, 2, 1])], 7).unwrap();
        let ent = z.node(&n("b.c.example.com.")).unwrap();
        assert!(ent.is_empty());
        assert_eq!(ent.child_count(), 1);
        assert_eq!(z.node(&n("example.com.")).unwrap().child_count(), 1);
        assert!(z.node(&n("x.example.com.")).is_none());
    }

    #[test]
    fn apply_adds_and_removes_with_ent_cleanup() {
        let z = Zone::build(&n("example.com."), vec![rec("example.com.", 1, &[1, 2, 3, 4])], 1).unwrap();
        let r = rec("Deep.Er.example.com.", 16, b"\x02hi");
        let z2 = z.apply(&[Change::Add(r.clone())]).unwrap();
        assert!(z.node(&n("deep.er.example.com.")).is_none(), "old snapshot unchanged");
        let node = z2.node(&n("deep.er.example.com.")).unwrap();
        assert_eq!(node.name(), &n("Deep.Er.example.com.")[..]);
        assert_eq!(node.rrset(16).unwrap().count, 1);
        assert!(z2.node(&n("er.example.com.")).unwrap().is_empty());
        let z3 = z2.apply(&[Change::Remove(r)]).unwrap();
        assert!(z3.node(&n("deep.er.example.com.")).is_none());
        assert!(z3.node(&n("er.example.com.")).is_none());
        assert_eq!(z3.node(&n("example.com.")).unwrap().child_count(), 0);
    }

    #[test]
    fn duplicates_collapse_and_cuts_are_counted() {
        let recs = vec![
            rec("sub.example.com.", 2, b"\x02ns\x00"),
            rec("sub.example.com.", 2, b"\x02ns\x00"),
            rec("example.com.", 2, b"\x02ns\x00"),
        ];
        let z = Zone::build(&n("example.com."), recs, 3).unwrap();
        assert!(z.has_cuts());
        assert_eq!(z.node(&n("sub.example.com.")).unwrap().rrset(2).unwrap().count, 1);
        let z2 = z.apply(&[Change::Remove(rec("sub.example.com.", 2, b"\x02ns\x00"))]).unwrap();
        assert!(!z2.has_cuts());
    }

    #[test]
    fn the_denial_index_follows_build_and_apply() {
        let nsec = |owner: &str, next: &str| {
            let mut rd = n(next).to_vec();
            rd.extend_from_slice(&[0, 1, 0x40]);
            rec(owner, code::NSEC, &rd)
        };
        let recs = vec![nsec("example.com.", "b.example.com."), nsec("b.example.com.", "example.com.")];
        let z = Zone::build(&n("example.com."), recs, 5).unwrap();
        let owner = |z: &Zone, q: &str| name::to_text(z.nsec_owner(&n(q)).unwrap().as_slice());
        assert_eq!(owner(&z, "c.example.com."), "b.example.com.");
        assert_eq!(owner(&z, "a.example.com."), "example.com.");
        assert!(z.nsec_node(&n("a.example.com.")).unwrap().rrset(code::NSEC).is_some());
        let z2 = z
            .apply(&[
                Change::Add(nsec("a.Example.com.", "b.example.com.")),
                Change::Remove(nsec("b.example.com.", "example.com.")),
            ])
            .unwrap();
        assert_eq!(owner(&z2, "c.example.com."), "a.example.com.");
        assert_eq!(owner(&z, "c.example.com."), "b.example.com.", "old snapshot unchanged");

        let apex = n("example.com.");
        let h = nsec3::hash(&apex, &[], 0);
        let owner3 = nsec3::owner_name(&h, &apex);
        let r3 = Record { owner: owner3, rtype: code::NSEC3, ttl: 300, rdata: vec![1, 0, 0, 0, 20].into() };
        let z3 = z2.apply(&[Change::Add(r3.clone())]).unwrap();
        assert!(!z2.has_nsec3());
        let (node, exact) = z3.nsec3_node(&h).unwrap();
        assert!(exact && node.rrset(code::NSEC3).is_some());
        assert!(!z3.nsec3_node(&[0xff; HASH_LEN]).unwrap().1);
        assert!(!z3.apply(&[Change::Remove(r3)]).unwrap().has_nsec3());
    }

    fn facts_of_every_node(z: &Zone) -> Vec<(String, Facts)> {
        let mut v: Vec<(String, Facts)> = z.nodes().map(|n| (name::to_text(n.key()), n.facts())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The facts kept up to date by `apply` are those `build` derives
    /// from the same records, through cuts and DNAMEs that come and go
    /// above deeper names and empty non-terminals, and wildcards.
    #[test]
    fn facts_after_changes_equal_facts_after_a_build() {
        let apex = n("example.com.");
        let ns = rec("c.example.com.", code::NS, b"\x02ns\x00");
        let dname = rec("b.c.example.com.", code::DNAME, b"\x01t\x00");
        let deep = rec("x.a.b.c.example.com.", code::TXT, b"\x02hi");
        let wild = rec("*.a.b.c.example.com.", code::A, &[192, 0, 2, 1]);
        let apex_dname = rec("example.com.", code::DNAME, b"\x01t\x00");
        let base = Zone::build(&apex, vec![rec("example.com.", code::SOA, &[0; 22])], 2).unwrap();
        let steps = [
            Change::Add(deep.clone()),
            Change::Add(wild.clone()),
            Change::Add(ns.clone()),
            Change::Add(dname.clone()),
            Change::Remove(ns.clone()),
            Change::Add(apex_dname.clone()),
            Change::Remove(wild.clone()),
            Change::Remove(dname.clone()),
            Change::Add(ns.clone()),
            Change::Remove(apex_dname),
            Change::Remove(deep),
            Change::Add(wild),
            Change::Remove(ns),
        ];
        let mut z = base;
        for (i, step) in steps.iter().enumerate() {
            z = z.apply(std::slice::from_ref(step)).unwrap();
            let built = Zone::build(&apex, z.records(), 2).unwrap();
            assert_eq!(facts_of_every_node(&z), facts_of_every_node(&built), "after step {i}: {step:?}");
        }
        let below = z.facts(&n("a.b.c.example.com.")).unwrap();
        assert!(below.has_wildcard_child() && !below.occluded());
    }

    #[test]
    fn facts_mark_cuts_glue_dname_occlusion_and_wildcard_parents() {
        let recs = vec![
            rec("example.com.", code::NS, b"\x02ns\x00"),
            rec("sub.example.com.", code::NS, b"\x02ns\x00"),
            rec("ns.sub.example.com.", code::A, &[192, 0, 2, 1]),
            rec("d.example.com.", code::DNAME, b"\x01t\x00"),
            rec("x.y.d.example.com.", code::A, &[192, 0, 2, 1]),
            rec("*.w.example.com.", code::A, &[192, 0, 2, 1]),
        ];
        let z = Zone::build(&n("example.com."), recs, 3).unwrap();
        let f = |s: &str| z.facts(&n(s)).unwrap();
        assert!(!f("example.com.").is_delegation());
        assert!(f("sub.example.com.").is_delegation() && !f("sub.example.com.").occluded());
        assert!(f("ns.sub.example.com.").below_delegation());
        assert!(f("d.example.com.").has_dname() && !f("d.example.com.").occluded());
        assert!(f("y.d.example.com.").below_dname() && f("x.y.d.example.com.").below_dname());
        assert!(f("w.example.com.").has_wildcard_child() && !f("example.com.").has_wildcard_child());
    }

    #[test]
    fn many_nodes_reshard_and_stay_reachable() {
        let mut z = Zone::build(&n("example.com."), Vec::new(), 9).unwrap();
        let mut changes = Vec::new();
        for i in 0..5000u32 {
            changes.push(Change::Add(rec(&format!("h{i}.example.com."), 1, &i.to_be_bytes())));
        }
        z = z.apply(&changes).unwrap();
        for i in (0..5000u32).step_by(97) {
            assert!(z.node(&n(&format!("h{i}.example.com."))).is_some());
        }
        assert_eq!(z.node_count(), 5001);
    }

    #[test]
    fn canonical_order_is_by_reversed_labels() {
        let mut v = vec![n("z.example."), n("a.example."), n("example."), n("yljkjljk.a.example.")];
        v.sort_by(|a, b| canonical_cmp(a, b));
        assert_eq!(v, vec![n("example."), n("a.example."), n("yljkjljk.a.example."), n("z.example.")]);
        // The example of RFC 4034 §6.1, case-insensitively, shuffled.
        let rfc = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let mut v: Vec<Box<[u8]>> = rfc.iter().rev().map(|s| n(s)).collect();
        v.sort_by(|a, b| canonical_cmp(a, b));
        assert_eq!(v, rfc.iter().map(|s| n(s)).collect::<Vec<_>>());
    }
}
