//! The set of zones served, looked up by longest match.

use std::collections::HashMap;
use std::sync::Arc;

use crate::name;
use crate::zone::Zone;

/// An immutable set of zones. A change builds a new catalog that shares
/// every unchanged zone with the old one.
#[derive(Clone, Default)]
pub struct Catalog {
    zones: HashMap<Box<[u8]>, Arc<Zone>>,
    /// Most labels in any apex: a query name is only tried from that depth.
    max_labels: usize,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// A catalog with `zone` added or replaced.
    pub fn with_zone(&self, zone: Arc<Zone>) -> Self {
        let mut c = self.clone();
        c.insert(zone);
        c
    }

    /// A catalog without the zone at `apex` (lowercased).
    pub fn without_zone(&self, apex: &[u8]) -> Self {
        let mut c = self.clone();
        c.remove(apex);
        c
    }

    /// Adds or replaces `zone` in this (not yet published) catalog.
    pub fn insert(&mut self, zone: Arc<Zone>) {
        self.max_labels = self.max_labels.max(name::label_count(zone.apex()));
        self.zones.insert(zone.apex().into(), zone);
    }

    /// Removes the zone at `apex` (lowercased) from this catalog.
    pub fn remove(&mut self, apex: &[u8]) {
        if self.zones.remove(apex).is_some() && name::label_count(apex) == self.max_labels {
            self.max_labels = self.zones.keys().map(|k| name::label_count(k)).max().unwrap_or(0);
        }
    }

    /// The zone with this apex (lowercased).
    pub fn zone(&self, apex: &[u8]) -> Option<&Arc<Zone>> {
        self.zones.get(apex)
    }

    /// Iterates over all zones.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }

    /// Number of zones.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// True if no zone is served.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The zone with the longest apex at or above `qname` (lowercased).
    pub fn find(&self, qname: &[u8]) -> Option<&Arc<Zone>> {
        let mut labels = name::label_count(qname);
        let mut n = qname;
        // Skip labels deeper than any apex: no hash lookups for them.
        while labels > self.max_labels {
            n = name::parent(n)?;
            labels -= 1;
        }
        loop {
            if let Some(z) = self.zones.get(n) {
                return Some(z);
            }
            n = name::parent(n)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(apex: &str) -> Arc<Zone> {
        Arc::new(Zone::build(&name::from_text(apex, None).unwrap(), Vec::new(), 1).unwrap())
    }

    #[test]
    fn longest_match_follows_inserts_and_removals() {
        let mut c = Catalog::new();
        c.insert(zone("example.com."));
        c.insert(zone("deep.sub.example.com."));
        let q = name::from_text("www.deep.sub.example.com.", None).unwrap();
        assert_eq!(c.find(&q).unwrap().apex(), &name::from_text("deep.sub.example.com.", None).unwrap()[..]);
        c.remove(&name::from_text("deep.sub.example.com.", None).unwrap());
        assert_eq!(c.max_labels, 2);
        assert_eq!(c.find(&q).unwrap().apex(), &name::from_text("example.com.", None).unwrap()[..]);
        assert_eq!(c.len(), 1);
    }
}
