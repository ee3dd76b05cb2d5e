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

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::name;
use crate::octets::{be16, be32};
use crate::rtype::code;

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

/// Average number of nodes per shard we aim for.
const NODES_PER_SHARD: usize = 128;
/// A shard this many times over the target triggers a reshard.
const RESHARD_FACTOR: usize = 8;
/// Bits of the hash used to pick a shard: above those hashbrown uses for
/// the bucket index (low bits) and below its 7 control bits (the top).
const SHARD_HASH_SHIFT: u32 = 40;
const MAX_SHARD_BITS: u32 = 16;

/// An RRset as stored in a node.
#[derive(Debug, Clone, Copy)]
pub struct RrSetRef<'a> {
    /// Type code.
    pub rtype: u16,
    /// TTL.
    pub ttl: u32,
    /// Number of RRs.
    pub count: u16,
    /// The RRs: for each, a 16-bit rdata length then the rdata.
    pub data: &'a [u8],
}

impl<'a> RrSetRef<'a> {
    /// Iterates over the rdata of each RR.
    pub fn rdatas(&self) -> RdataIter<'a> {
        RdataIter { rest: self.data }
    }
}

/// Iterator over the rdata of an RRset.
pub struct RdataIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RdataIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = be16(self.rest, 0)? as usize;
        let rd = self.rest.get(2..2 + len)?;
        self.rest = self.rest.get(2 + len..)?;
        Some(rd)
    }
}

/// A view of a packed node.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    raw: &'a [u8],
}

fn key_of(raw: &[u8]) -> &[u8] {
    let k = raw.first().copied().unwrap_or(0) as usize;
    raw.get(1..1 + k).unwrap_or(&[])
}

impl<'a> NodeRef<'a> {
    /// The lowercased name.
    pub fn key(&self) -> &'a [u8] {
        key_of(self.raw)
    }

    fn after_key(&self) -> usize {
        1 + self.key().len()
    }

    /// Number of direct children (including empty non-terminals).
    pub fn child_count(&self) -> u32 {
        let p = self.after_key();
        be32(self.raw, p).unwrap_or(0)
    }

    fn rrsets_start(&self) -> (Option<&'a [u8]>, usize) {
        let p = self.after_key() + 4;
        let flag = self.raw.get(p).copied().unwrap_or(0);
        if flag & 1 == 1 {
            let l = self.raw.get(p + 1).copied().unwrap_or(0) as usize;
            (self.raw.get(p + 2..p + 2 + l), p + 2 + l)
        } else {
            (None, p + 1)
        }
    }

    /// The name in its original case.
    pub fn name(&self) -> &'a [u8] {
        self.rrsets_start().0.unwrap_or_else(|| self.key())
    }

    /// Iterates over the node's RRsets.
    pub fn rrsets(&self) -> RrSetIter<'a> {
        let (_, p) = self.rrsets_start();
        let n = be16(self.raw, p).unwrap_or(0);
        RrSetIter { rest: self.raw.get(p + 2..).unwrap_or(&[]), left: n }
    }

    /// The RRset of one type.
    pub fn rrset(&self, rtype: u16) -> Option<RrSetRef<'a>> {
        self.rrsets().find(|r| r.rtype == rtype)
    }

    /// True if the node holds no RRsets (an empty non-terminal).
    pub fn is_empty(&self) -> bool {
        self.rrsets().left == 0
    }
}

/// Iterator over a node's RRsets.
pub struct RrSetIter<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for RrSetIter<'a> {
    type Item = RrSetRef<'a>;
    fn next(&mut self) -> Option<RrSetRef<'a>> {
        if self.left == 0 {
            return None;
        }
        let h = self.rest;
        let rtype = be16(h, 0)?;
        let ttl = be32(h, 2)?;
        let count = be16(h, 6)?;
        let len = be16(h, 8)? as usize;
        let data = self.rest.get(10..10 + len)?;
        self.rest = self.rest.get(10 + len..)?;
        self.left -= 1;
        Some(RrSetRef { rtype, ttl, count, data })
    }
}

/// An RRset being edited: type, TTL, rdatas.
type EditSet = (u16, u32, Vec<Box<[u8]>>);
/// One shard: packed nodes.
type Shard = HashTable<Box<[u8]>>;

/// A node being edited.
#[derive(Debug, Clone, Default)]
struct NodeData {
    key: Box<[u8]>,
    name: Box<[u8]>,
    children: u32,
    /// Sorted by type; rdata sorted and deduplicated.
    rrsets: Vec<EditSet>,
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

impl NodeData {
    fn from_ref(n: NodeRef<'_>) -> Self {
        NodeData {
            key: n.key().into(),
            name: n.name().into(),
            children: n.child_count(),
            rrsets: n.rrsets().map(|r| (r.rtype, r.ttl, r.rdatas().map(Box::from).collect())).collect(),
        }
    }

    fn empty(name: &[u8]) -> Self {
        NodeData { key: name::to_lowercase(name), name: name.into(), children: 0, rrsets: Vec::new() }
    }

    fn add(&mut self, rtype: u16, ttl: u32, rdata: Box<[u8]>) {
        match self.rrsets.binary_search_by_key(&rtype, |r| r.0) {
            Ok(i) => {
                if let Some(set) = self.rrsets.get_mut(i) {
                    // RFC 2181 §5.2: one TTL per RRset; the newest wins.
                    set.1 = ttl;
                    if let Err(pos) = set.2.binary_search(&rdata) {
                        set.2.insert(pos, rdata);
                    }
                }
            }
            Err(i) => self.rrsets.insert(i, (rtype, ttl, vec![rdata])),
        }
    }

    fn remove(&mut self, rtype: u16, rdata: &[u8]) {
        if let Ok(i) = self.rrsets.binary_search_by_key(&rtype, |r| r.0)
            && let Some(set) = self.rrsets.get_mut(i)
        {
            if let Ok(pos) = set.2.binary_search_by(|r| r[..].cmp(rdata)) {
                set.2.remove(pos);
            }
            if set.2.is_empty() {
                self.rrsets.remove(i);
            }
        }
    }

    fn has(&self, rtype: u16) -> bool {
        self.rrsets.iter().any(|r| r.0 == rtype)
    }

    fn pack(&self) -> Result<Box<[u8]>, ZoneError> {
        let mut out = Vec::with_capacity(16 + self.key.len() * 2);
        out.push(self.key.len() as u8);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.children.to_be_bytes());
        if self.name[..] != self.key[..] {
            out.push(1);
            out.push(self.name.len() as u8);
            out.extend_from_slice(&self.name);
        } else {
            out.push(0);
        }
        out.extend_from_slice(&(self.rrsets.len() as u16).to_be_bytes());
        for (rtype, ttl, rdatas) in &self.rrsets {
            let len: usize = rdatas.iter().map(|r| r.len() + 2).sum();
            let too_large = || ZoneError::RrSetTooLarge(name::to_text(&self.name), *rtype);
            let len16 = u16::try_from(len).map_err(|_| too_large())?;
            let count = u16::try_from(rdatas.len()).map_err(|_| too_large())?;
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
            out.extend_from_slice(&len16.to_be_bytes());
            for rd in rdatas {
                out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                out.extend_from_slice(rd);
            }
        }
        Ok(out.into_boxed_slice())
    }
}

/// The sharded node table.
#[derive(Clone)]
struct NodeMap {
    hasher: foldhash::fast::FixedState,
    mask: u64,
    shards: Arc<Vec<Arc<Shard>>>,
    len: usize,
}

impl NodeMap {
    fn with_capacity(n: usize, seed: u64) -> Self {
        let want = (n / NODES_PER_SHARD).max(1).next_power_of_two();
        let shards = want.min(1 << MAX_SHARD_BITS);
        let per = n / shards + 1;
        NodeMap {
            hasher: foldhash::fast::FixedState::with_seed(seed),
            mask: shards as u64 - 1,
            shards: Arc::new((0..shards).map(|_| Arc::new(HashTable::with_capacity(per))).collect()),
            len: 0,
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard_of(&self, hash: u64) -> usize {
        ((hash >> SHARD_HASH_SHIFT) & self.mask) as usize
    }

    fn get(&self, key: &[u8]) -> Option<NodeRef<'_>> {
        let h = self.hash(key);
        let shard = self.shards.get(self.shard_of(h))?;
        shard.find(h, |n| key_of(n) == key).map(|raw| NodeRef { raw })
    }

    fn insert(&mut self, packed: Box<[u8]>) {
        let h = self.hash(key_of(&packed));
        let idx = self.shard_of(h);
        let hasher = self.hasher.clone();
        let shards = Arc::make_mut(&mut self.shards);
        let Some(shard) = shards.get_mut(idx) else {
            return;
        };
        let shard = Arc::make_mut(shard);
        match shard.find_mut(h, |n| key_of(n) == key_of(&packed)) {
            Some(slot) => *slot = packed,
            None => {
                shard.insert_unique(h, packed, |n| hasher.hash_one(key_of(n)));
                self.len += 1;
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        let h = self.hash(key);
        let idx = self.shard_of(h);
        let shards = Arc::make_mut(&mut self.shards);
        let Some(shard) = shards.get_mut(idx) else {
            return;
        };
        let shard = Arc::make_mut(shard);
        if let Ok(e) = shard.find_entry(h, |n| key_of(n) == key) {
            e.remove();
            self.len -= 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = NodeRef<'_>> {
        self.shards.iter().flat_map(|s| s.iter().map(|raw| NodeRef { raw }))
    }

    fn shrink(&mut self) {
        let hasher = self.hasher.clone();
        for shard in Arc::make_mut(&mut self.shards) {
            Arc::make_mut(shard).shrink_to_fit(|n| hasher.hash_one(key_of(n)));
        }
    }

    fn needs_reshard(&self) -> bool {
        self.len > (self.mask as usize + 1) * NODES_PER_SHARD * RESHARD_FACTOR
            && self.mask < (1 << MAX_SHARD_BITS) - 1
    }

    fn resharded(&self) -> Self {
        let mut m = NodeMap::with_capacity(self.len, 0);
        m.hasher = self.hasher.clone();
        for n in self.iter() {
            m.insert(n.raw.into());
        }
        m
    }
}

/// An immutable zone snapshot.
#[derive(Clone)]
pub struct Zone {
    apex: Box<[u8]>,
    nodes: NodeMap,
    cuts: usize,
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
        if z.nodes.needs_reshard() {
            z.nodes = z.nodes.resharded();
        }
        Ok(z)
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

    /// True if the zone has delegations below its apex.
    pub fn has_cuts(&self) -> bool {
        self.cuts > 0
    }

    /// Number of nodes, including empty non-terminals.
    pub fn node_count(&self) -> usize {
        self.nodes.len
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

    /// All records in canonical order (RFC 4034 §6), SOA first.
    pub fn records(&self) -> Vec<Record> {
        let mut nodes: Vec<NodeRef<'_>> = self.nodes.iter().collect();
        nodes.sort_by(|a, b| canonical_cmp(a.key(), b.key()));
        let mut out = Vec::new();
        for n in nodes {
            let mut sets: Vec<RrSetRef<'_>> = n.rrsets().collect();
            // SOA first at the apex so the export starts with it.
            sets.sort_by_key(|s| (s.rtype != code::SOA, s.rtype));
            for s in sets {
                for rd in s.rdatas() {
                    out.push(Record { owner: n.name().into(), rtype: s.rtype, ttl: s.ttl, rdata: rd.into() });
                }
            }
        }
        out
    }
}

/// Builds a [`Zone`] from a stream of records with little memory beyond
/// the result: each node is packed as soon as its owner's records have
/// passed (records usually come grouped by owner; an owner seen again later
/// is merged), and empty non-terminals are derived at the end from a count
/// per distinct parent name.
pub struct ZoneBuilder {
    apex: Box<[u8]>,
    nodes: NodeMap,
    current: Option<(NodeData, bool)>,
    /// Children counted per parent (lowercased), for nodes created so far.
    parents: hashbrown::HashMap<Box<[u8]>, u32>,
}

impl ZoneBuilder {
    /// Starts a zone; `capacity` is a hint of the number of names.
    pub fn new(apex: &[u8], seed: u64, capacity: usize) -> Self {
        ZoneBuilder {
            apex: name::to_lowercase(apex),
            nodes: NodeMap::with_capacity(capacity.max(1), seed),
            current: Some((NodeData::empty(apex), true)),
            parents: hashbrown::HashMap::new(),
        }
    }

    /// Adds one record.
    pub fn push(&mut self, r: Record) -> Result<(), ZoneError> {
        let same = self.current.as_ref().is_some_and(|(n, _)| n.key.eq_ignore_ascii_case(&r.owner));
        if !same {
            self.flush()?;
            let key = name::to_lowercase(&r.owner);
            if !name::is_at_or_below(&key, &self.apex) {
                return Err(ZoneError::OutOfZone(name::to_text(&r.owner)));
            }
            self.current = Some(match self.nodes.get(&key) {
                Some(n) => (NodeData::from_ref(n), false),
                None => (NodeData::empty(&r.owner), true),
            });
        }
        if let Some((n, _)) = self.current.as_mut() {
            n.add(r.rtype, r.ttl, r.rdata);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ZoneError> {
        let Some((node, created)) = self.current.take() else {
            return Ok(());
        };
        if created && node.key != self.apex {
            self.count_child(&node.key);
        }
        self.nodes.insert(node.pack()?);
        Ok(())
    }

    fn count_child(&mut self, key: &[u8]) {
        if let Some(p) = name::parent(key) {
            match self.parents.get_mut(p) {
                Some(c) => *c += 1,
                None => {
                    self.parents.insert(p.into(), 1);
                }
            }
        }
    }

    /// Derives child counts and empty non-terminals, and returns the zone.
    pub fn finish(mut self) -> Result<Zone, ZoneError> {
        self.flush()?;
        let mut work: Vec<(Box<[u8]>, u32)> = self.parents.drain().collect();
        while let Some((parent, count)) = work.pop() {
            if parent.len() < self.apex.len() {
                continue;
            }
            let existing = self.nodes.get(&parent).map(NodeData::from_ref);
            let created = existing.is_none();
            let mut n = existing.unwrap_or_else(|| NodeData::empty(&parent));
            n.children += count;
            self.nodes.insert(n.pack()?);
            if created && parent != self.apex {
                // A new empty non-terminal is itself a child of its parent.
                if let Some(pp) = name::parent(&parent) {
                    work.push((pp.into(), 1));
                }
            }
        }
        let cuts =
            self.nodes.iter().filter(|n| n.key() != &self.apex[..] && n.rrset(code::NS).is_some()).count();
        self.nodes.shrink();
        Ok(Zone { apex: self.apex, nodes: self.nodes, cuts })
    }
}

/// The serial of SOA rdata.
pub fn soa_serial(rdata: &[u8]) -> Option<u32> {
    let m = name::wire_len(rdata)?;
    let r = name::wire_len(rdata.get(m..)?)?;
    be32(rdata, m + r)
}

/// Compares lowercased wire names in DNSSEC canonical order (RFC 4034 §6.1):
/// by labels from the root down.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    fn labels(n: &[u8]) -> Vec<&[u8]> {
        let mut v = Vec::new();
        let mut p = 0;
        while let Some(&l) = n.get(p) {
            if l == 0 {
                break;
            }
            v.push(n.get(p + 1..p + 1 + l as usize).unwrap_or(&[]));
            p += 1 + l as usize;
        }
        v
    }
    let la = labels(a);
    let lb = labels(b);
    la.iter().rev().cmp(lb.iter().rev())
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
    }
}
