//! Building a zone from a stream of records.

use crate::name;
use crate::rtype::code;

use super::denial::DenialIndex;
use super::map::NodeMap;
use super::node::NodeData;
use super::{Facts, Record, Zone, ZoneError, inherited_facts, wildcard_of};

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
    denial: DenialIndex,
}

impl ZoneBuilder {
    /// Starts a zone; `capacity` is a hint of the number of names.
    pub fn new(apex: &[u8], seed: u64, capacity: usize) -> Self {
        ZoneBuilder {
            apex: name::to_lowercase(apex),
            nodes: NodeMap::with_capacity(capacity.max(1), seed),
            current: Some((NodeData::empty(apex), true)),
            parents: hashbrown::HashMap::new(),
            denial: DenialIndex::default(),
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
        let mut node = node;
        node.refresh_own_facts(&self.apex);
        let (nsec, nsec3) = (node.has(code::NSEC), node.has(code::NSEC3));
        if nsec || nsec3 {
            self.denial.note(&node.key, &self.apex, nsec, nsec3);
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

    /// Derives every node's inherited facts and wildcard-child bit (its own
    /// facts were set when it was packed). Only names below a delegation
    /// or DNAME inherit anything, so a zone without either costs one pass.
    fn derive_facts(&mut self) {
        let occluders = self.nodes.iter().any(|n| n.facts().is_delegation() || n.facts().has_dname());
        let mut updates: Vec<(Box<[u8]>, Facts)> = Vec::new();
        for n in self.nodes.iter() {
            let key = n.key();
            let mut f = n.facts();
            if occluders {
                let nsec3 = n.rrset(code::NSEC3).is_some();
                let own_of = |a: &[u8]| self.nodes.get(a).map(|p| p.facts().own_part());
                f = f.with_inherited(inherited_facts(key, &self.apex, nsec3, own_of));
            }
            let mut wild = [0u8; name::MAX_NAME_LEN + 2];
            if n.child_count() > 0 {
                f = f.with_wildcard_child(
                    wildcard_of(key, &mut wild).is_some_and(|w| self.nodes.get(w).is_some()),
                );
            }
            if f != n.facts() {
                updates.push((key.into(), f));
            }
        }
        for (key, f) in updates {
            self.nodes.set_facts(&key, f);
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
        self.derive_facts();
        self.nodes.shrink();
        Ok(Zone { apex: self.apex, nodes: self.nodes, cuts, denial: self.denial })
    }
}
