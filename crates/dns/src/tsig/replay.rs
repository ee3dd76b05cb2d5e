//! Refusing a signed request seen before.
//!
//! RFC 8945 §5.2.3 lets a signed request be accepted anywhere within its
//! fudge, so a captured UPDATE could be sent again for as long. The cache
//! remembers the MAC of each accepted request until that window has
//! certainly closed: a request accepted at `now` has `time_signed >= now -
//! fudge`, so it can be accepted at most until `now + 2 * fudge`. It keys
//! by [`Verified::full_mac`], the untruncated MAC, so that sending the same
//! signature truncated differently is still a replay.
//!
//! Memory is bounded: past [`ReplayCache::capacity`] entries the oldest is
//! forgotten. A flood of *authentic* requests (only those are remembered)
//! can thus push an entry out early; the capacity should exceed the
//! number of updates a zone takes in `2 * fudge` seconds.

use std::collections::{HashMap, VecDeque};

use super::{TsigFailure, Verified};

/// A bounded memory of recently accepted request MACs.
#[derive(Debug, Clone)]
pub struct ReplayCache {
    capacity: usize,
    /// (expiry, MAC) in the order accepted.
    order: VecDeque<(u64, Box<[u8]>)>,
    /// MAC -> expiry.
    seen: HashMap<Box<[u8]>, u64>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl ReplayCache {
    /// A capacity that covers 30 signed updates a second for the default
    /// fudge's 600-second window, in a few megabytes.
    pub const DEFAULT_CAPACITY: usize = 18_000;

    /// A cache remembering at most `capacity` requests (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        ReplayCache { capacity, order: VecDeque::new(), seen: HashMap::new() }
    }

    /// The most requests remembered at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests remembered now (expired ones may still be counted until
    /// they reach the front).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Passes `verified` if its MAC has not been accepted within the
    /// window, and remembers it; a replay fails with BADTIME (RFC 8945
    /// §5.2.3 asks for BADTIME when a request is older than one already
    /// seen, and a replay is the extreme case).
    pub fn check<K>(&mut self, verified: Verified<K>, now: u64) -> Result<Verified<K>, TsigFailure<K>> {
        self.expire(now);
        if self.seen.get(&verified.full_mac[..]).is_some_and(|&expiry| expiry > now) {
            return Err(TsigFailure::BadTime(verified));
        }
        while self.order.len() >= self.capacity {
            self.pop_front();
        }
        let expiry = now.saturating_add(2 * u64::from(verified.fudge)).max(now.saturating_add(1));
        let mac: Box<[u8]> = verified.full_mac.clone().into_boxed_slice();
        self.seen.insert(mac.clone(), expiry);
        self.order.push_back((expiry, mac));
        Ok(verified)
    }

    /// Forgets entries at the front whose window has closed. Fudges vary,
    /// so a later entry may expire first; it stays until it is at the front.
    fn expire(&mut self, now: u64) {
        while self.order.front().is_some_and(|(expiry, _)| *expiry <= now) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((expiry, mac)) = self.order.pop_front()
            // The MAC may have been accepted again since (after expiring);
            // then the map holds the newer expiry and must keep it.
            && self.seen.get(&mac) == Some(&expiry)
        {
            self.seen.remove(&mac);
        }
    }
}
