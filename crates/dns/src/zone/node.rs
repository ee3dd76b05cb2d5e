//! The packed node format: one allocation per name holding its key, child
//! count, original-case name and RRsets, read in place by [`NodeRef`].

use crate::name;
use crate::octets::{be16, be32};

use super::ZoneError;
use super::facts::Facts;

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
    pub(super) raw: &'a [u8],
}

pub(super) fn key_of(raw: &[u8]) -> &[u8] {
    let k = raw.first().copied().unwrap_or(0) as usize;
    raw.get(1..1 + k).unwrap_or(&[])
}

/// The offset of a packed node's flag octet: bit 0 says the original-case
/// name follows, the other bits are the node's [`Facts`].
pub(super) fn flags_offset(raw: &[u8]) -> usize {
    1 + key_of(raw).len() + 4
}

impl<'a> NodeRef<'a> {
    /// The lowercased name.
    pub fn key(&self) -> &'a [u8] {
        key_of(self.raw)
    }

    pub(super) fn after_key(&self) -> usize {
        1 + self.key().len()
    }

    /// Number of direct children (including empty non-terminals).
    pub fn child_count(&self) -> u32 {
        let p = self.after_key();
        be32(self.raw, p).unwrap_or(0)
    }

    pub(super) fn rrsets_start(&self) -> (Option<&'a [u8]>, usize) {
        let p = self.after_key() + 4;
        let flag = self.raw.get(p).copied().unwrap_or(0);
        if flag & 1 == 1 {
            let l = self.raw.get(p + 1).copied().unwrap_or(0) as usize;
            (self.raw.get(p + 2..p + 2 + l), p + 2 + l)
        } else {
            (None, p + 1)
        }
    }

    /// What the node is in its zone (delegation, below a cut, ...),
    /// decided when the zone was built or changed.
    pub fn facts(&self) -> Facts {
        Facts::from_bits(self.raw.get(flags_offset(self.raw)).copied().unwrap_or(0))
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
pub(super) type EditSet = (u16, u32, Vec<Box<[u8]>>);

/// A node being edited.
#[derive(Debug, Clone, Default)]
pub(super) struct NodeData {
    pub(super) key: Box<[u8]>,
    pub(super) name: Box<[u8]>,
    pub(super) children: u32,
    /// The node's facts as last derived (see [`super::Zone`]).
    pub(super) facts: Facts,
    /// Sorted by type; rdata sorted and deduplicated.
    pub(super) rrsets: Vec<EditSet>,
}

impl NodeData {
    pub(super) fn from_ref(n: NodeRef<'_>) -> Self {
        NodeData {
            key: n.key().into(),
            name: n.name().into(),
            children: n.child_count(),
            facts: n.facts(),
            rrsets: n.rrsets().map(|r| (r.rtype, r.ttl, r.rdatas().map(Box::from).collect())).collect(),
        }
    }

    pub(super) fn empty(name: &[u8]) -> Self {
        NodeData {
            key: name::to_lowercase(name),
            name: name.into(),
            children: 0,
            facts: Facts::default(),
            rrsets: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, rtype: u16, ttl: u32, rdata: Box<[u8]>) {
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

    pub(super) fn remove(&mut self, rtype: u16, rdata: &[u8]) {
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

    pub(super) fn has(&self, rtype: u16) -> bool {
        self.rrsets.iter().any(|r| r.0 == rtype)
    }

    /// Sets the facts its own data decides (see [`Facts::own`]).
    pub(super) fn refresh_own_facts(&mut self, apex: &[u8]) {
        let own = Facts::own(self.key[..] == *apex, self.rrsets.iter().map(|r| r.0));
        self.facts = self.facts.with_own(own);
    }

    pub(super) fn pack(&self) -> Result<Box<[u8]>, ZoneError> {
        let mut out = Vec::with_capacity(16 + self.key.len() * 2);
        out.push(self.key.len() as u8);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.children.to_be_bytes());
        if self.name[..] != self.key[..] {
            out.push(1 | self.facts.bits());
            out.push(self.name.len() as u8);
            out.extend_from_slice(&self.name);
        } else {
            out.push(self.facts.bits());
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
