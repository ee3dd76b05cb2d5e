//! The sharded node table: copy-on-write per shard.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::facts::Facts;
use super::node::{NodeRef, flags_offset, key_of};

/// Average number of nodes per shard we aim for.
const NODES_PER_SHARD: usize = 128;
/// A shard this many times over the target triggers a reshard.
const RESHARD_FACTOR: usize = 8;
/// Bits of the hash used to pick a shard: above those hashbrown uses for
/// the bucket index (low bits) and below its 7 control bits (the top).
const SHARD_HASH_SHIFT: u32 = 40;
const MAX_SHARD_BITS: u32 = 16;

/// One shard: packed nodes.
type Shard = HashTable<Box<[u8]>>;

/// The sharded node table.
#[derive(Clone)]
pub(super) struct NodeMap {
    hasher: foldhash::fast::FixedState,
    mask: u64,
    shards: Arc<Vec<Arc<Shard>>>,
    pub(super) len: usize,
}

impl NodeMap {
    pub(super) fn with_capacity(n: usize, seed: u64) -> Self {
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

    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(super) fn shard_of(&self, hash: u64) -> usize {
        ((hash >> SHARD_HASH_SHIFT) & self.mask) as usize
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<NodeRef<'_>> {
        let h = self.hash(key);
        let shard = self.shards.get(self.shard_of(h))?;
        shard.find(h, |n| key_of(n) == key).map(|raw| NodeRef { raw })
    }

    pub(super) fn insert(&mut self, packed: Box<[u8]>) {
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

    /// Replaces the facts of the node at `key` in place (no repacking);
    /// only the node's shard is copied, and only if it is shared.
    pub(super) fn set_facts(&mut self, key: &[u8], facts: Facts) {
        let h = self.hash(key);
        let idx = self.shard_of(h);
        let current = self.get(key).map(|n| n.facts());
        if current.is_none_or(|f| f == facts) {
            return;
        }
        let shards = Arc::make_mut(&mut self.shards);
        let Some(shard) = shards.get_mut(idx) else {
            return;
        };
        let shard = Arc::make_mut(shard);
        if let Some(raw) = shard.find_mut(h, |n| key_of(n) == key) {
            let at = flags_offset(raw);
            if let Some(b) = raw.get_mut(at) {
                *b = (*b & !Facts::MASK) | facts.bits();
            }
        }
    }

    pub(super) fn remove(&mut self, key: &[u8]) {
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

    pub(super) fn iter(&self) -> impl Iterator<Item = NodeRef<'_>> {
        self.shards.iter().flat_map(|s| s.iter().map(|raw| NodeRef { raw }))
    }

    pub(super) fn shrink(&mut self) {
        let hasher = self.hasher.clone();
        for shard in Arc::make_mut(&mut self.shards) {
            Arc::make_mut(shard).shrink_to_fit(|n| hasher.hash_one(key_of(n)));
        }
    }

    pub(super) fn needs_reshard(&self) -> bool {
        self.len > (self.mask as usize + 1) * NODES_PER_SHARD * RESHARD_FACTOR
            && self.mask < (1 << MAX_SHARD_BITS) - 1
    }

    pub(super) fn resharded(&self) -> Self {
        let mut m = NodeMap::with_capacity(self.len, 0);
        m.hasher = self.hasher.clone();
        for n in self.iter() {
            m.insert(n.raw.into());
        }
        m
    }
}
