//! Admission: connection caps per listener and per client address.
//!
//! A [`Gate`] belongs to one kind of listener and is shared by all its
//! addresses. [`Gate::admit`] hands out a [`Slot`] for each connection;
//! the slot gives its place back when dropped. A connection tells its
//! slot when it is idle (waiting for the next request) and when it is
//! busy, so that a full listener can close the oldest idle connection to
//! make room (RFC 7766 §6.2.3: "the server should close the oldest idle
//! connection") instead of turning the new client away. A connection
//! that is busy (reading a message, writing an answer) is never closed
//! here: its own phase deadlines bound it.
//!
//! Client addresses are counted per /32 for IPv4 and per /64 for IPv6, the
//! smallest block one host can be expected to hold; an IPv4-mapped IPv6
//! peer counts as its IPv4 address.
//!
//! The table sits behind a mutex taken once per admission and once per
//! close, never across an `.await`; idle marks are atomics, so the
//! per-request work of a connection takes no lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::ListenerMetrics;

/// The caps of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one client address (/32, /64).
    pub per_address: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// The listener is full and no connection is idle.
    Listener,
    /// The client address is at its cap and none of its connections is
    /// idle.
    Address,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Listener => "the listener is at its connection cap",
            Refused::Address => "the client address is at its connection cap",
        })
    }
}

/// The block a client address is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrKey {
    V4(u32),
    V6(u64),
}

impl AddrKey {
    fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(a) => AddrKey::V4(a.into()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(v4.into()),
                None => AddrKey::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

/// What the table and the connection share about one slot.
#[derive(Debug)]
struct SlotState {
    key: AddrKey,
    /// Milliseconds since the gate's epoch, plus one, since the connection
    /// went idle; zero while it is busy.
    idle_since: AtomicU64,
    /// Set (before `close` is notified) when the gate closed it.
    evicted: AtomicBool,
    close: Notify,
}

#[derive(Debug, Default)]
struct Table {
    slots: HashMap<u64, Arc<SlotState>>,
    by_address: HashMap<AddrKey, Vec<u64>>,
    next: u64,
}

impl Table {
    /// Takes `id` out of the table; false when it was not there (evicted).
    fn remove(&mut self, id: u64) -> bool {
        let Some(state) = self.slots.remove(&id) else { return false };
        if let Some(ids) = self.by_address.get_mut(&state.key) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_address.remove(&state.key);
            }
        }
        true
    }
}

/// Connection caps of one listener.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    metrics: Arc<ListenerMetrics>,
    epoch: Instant,
    idle: AtomicUsize,
    table: Mutex<Table>,
}

impl Gate {
    /// A gate with `limits`, counting into `metrics`.
    pub fn new(limits: Limits, metrics: Arc<ListenerMetrics>) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            metrics,
            epoch: Instant::now(),
            idle: AtomicUsize::new(0),
            table: Mutex::new(Table::default()),
        })
    }

    /// The caps.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<ListenerMetrics> {
        &self.metrics
    }

    /// Connections admitted and not closed or evicted.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// True when no connection holds a slot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_mark(&self) -> u64 {
        self.mark(Instant::now())
    }

    fn mark(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }

    /// Admits a connection from `peer`, closing the oldest idle
    /// connection first when a cap is reached.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let key = AddrKey::of(peer);
        let mut table = self.lock();
        let same = table.by_address.get(&key).map_or(0, Vec::len);
        if same >= self.limits.per_address {
            let ids = table.by_address.get(&key).cloned().unwrap_or_default();
            if !self.evict_oldest(&mut table, &ids) {
                drop(table);
                self.metrics.refused_address.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Address);
            }
        }
        if table.slots.len() >= self.limits.max_connections {
            let ids: Vec<u64> = if self.idle.load(Ordering::Relaxed) == 0 {
                Vec::new()
            } else {
                table.slots.keys().copied().collect()
            };
            if !self.evict_oldest(&mut table, &ids) {
                drop(table);
                self.metrics.refused_global.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Listener);
            }
        }
        let id = table.next;
        table.next += 1;
        let state = Arc::new(SlotState {
            key,
            idle_since: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        });
        table.slots.insert(id, state.clone());
        table.by_address.entry(key).or_default().push(id);
        drop(table);
        self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
        self.metrics.open.fetch_add(1, Ordering::Relaxed);
        Ok(Slot { gate: self.clone(), id, state })
    }

    /// Closes the connection idle the longest among `ids`; false when none
    /// of them is idle.
    fn evict_oldest(&self, table: &mut Table, ids: &[u64]) -> bool {
        let oldest = ids
            .iter()
            .filter_map(|id| {
                let since = table.slots.get(id)?.idle_since.load(Ordering::Relaxed);
                (since != 0).then_some((since, *id))
            })
            .min();
        let Some((_, id)) = oldest else { return false };
        let Some(state) = table.slots.get(&id).cloned() else { return false };
        table.remove(id);
        if state.idle_since.swap(0, Ordering::Relaxed) != 0 {
            self.idle.fetch_sub(1, Ordering::Relaxed);
        }
        state.evicted.store(true, Ordering::Release);
        state.close.notify_one();
        self.metrics.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// One admitted connection's place; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    gate: Arc<Gate>,
    id: u64,
    state: Arc<SlotState>,
}

impl Slot {
    /// The connection waits for its next request: it may be closed to make
    /// room from now on.
    pub fn idle(&self) {
        self.idle_at(self.gate.now_mark());
    }

    /// [`Slot::idle`] since `at`, a time the caller has read anyway (a
    /// clock read per request is not free in every VM).
    pub fn idle_since(&self, at: Instant) {
        self.idle_at(self.gate.mark(at));
    }

    fn idle_at(&self, mark: u64) {
        if self.state.evicted.load(Ordering::Acquire) {
            return;
        }
        if self.state.idle_since.swap(mark, Ordering::Relaxed) == 0 {
            self.gate.idle.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The connection is working on a request.
    pub fn busy(&self) {
        if self.state.idle_since.swap(0, Ordering::Relaxed) != 0 {
            self.gate.idle.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Resolves once the gate has closed this connection to make room.
    /// Select on it while idle.
    pub async fn evicted(&self) {
        loop {
            if self.is_evicted() {
                return;
            }
            self.state.close.notified().await;
        }
    }

    /// Has the gate closed this connection to make room?
    pub fn is_evicted(&self) -> bool {
        self.state.evicted.load(Ordering::Acquire)
    }

    /// The gate this slot belongs to.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.busy();
        self.gate.lock().remove(self.id);
        self.gate.metrics.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn gate(max_connections: usize, per_address: usize) -> Arc<Gate> {
        Gate::new(Limits { max_connections, per_address }, Arc::new(ListenerMetrics::new("test")))
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let g = gate(10, 3);
        let held: Vec<Slot> = (0..3).map(|_| g.admit(v4(1)).unwrap()).collect();
        assert_eq!(g.admit(v4(1)).unwrap_err(), Refused::Address);
        // Another address still gets in.
        let other = g.admit(v4(2)).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g.metrics().refused_address.load(Ordering::Relaxed), 1);
        drop(held);
        drop(other);
        assert!(g.is_empty());
        assert_eq!(g.metrics().open.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let g = gate(10, 2);
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        let _s1 = g.admit(IpAddr::V6(a)).unwrap();
        let _s2 = g.admit(IpAddr::V6(b)).unwrap();
        assert_eq!(g.admit(IpAddr::V6(a)).unwrap_err(), Refused::Address, "same /64");
        let _s3 = g.admit(IpAddr::V6(c)).unwrap();
        let _m1 = g.admit(v4(7)).unwrap();
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        let _m2 = g.admit(mapped).unwrap();
        assert_eq!(g.admit(v4(7)).unwrap_err(), Refused::Address, "mapped counts as the IPv4 address");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_listener_closes_its_oldest_idle_connection_for_a_new_one() {
        let g = gate(3, 3);
        let a = g.admit(v4(1)).unwrap();
        let b = g.admit(v4(2)).unwrap();
        let c = g.admit(v4(3)).unwrap();
        // Nothing idle: the new one is refused, no one is closed.
        assert_eq!(g.admit(v4(4)).unwrap_err(), Refused::Listener);
        b.idle();
        tokio::time::advance(std::time::Duration::from_millis(10)).await;
        a.idle_since(Instant::now());
        tokio::time::advance(std::time::Duration::from_millis(10)).await;
        c.idle();
        c.busy();
        let d = g.admit(v4(4)).unwrap();
        assert!(b.is_evicted(), "b went idle first");
        assert!(!a.is_evicted() && !c.is_evicted());
        tokio::time::timeout(std::time::Duration::from_secs(1), b.evicted()).await.unwrap();
        assert_eq!(g.len(), 3);
        // The evicted connection still holds its socket until it drops.
        assert_eq!(g.metrics().open.load(Ordering::Relaxed), 4);
        drop(b);
        assert_eq!(g.metrics().open.load(Ordering::Relaxed), 3);
        assert_eq!(g.len(), 3, "dropping an evicted slot frees nothing twice");
        let e = g.admit(v4(5)).unwrap();
        assert!(a.is_evicted(), "a is the oldest idle one now");
        drop((a, c, d, e));
        assert!(g.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_at_its_cap_gives_up_its_own_oldest_idle_connection() {
        let g = gate(10, 2);
        let other = g.admit(v4(9)).unwrap();
        other.idle();
        let a = g.admit(v4(1)).unwrap();
        let b = g.admit(v4(1)).unwrap();
        b.idle();
        let _c = g.admit(v4(1)).unwrap();
        assert!(b.is_evicted());
        assert!(!a.is_evicted() && !other.is_evicted(), "another address's idle connection stays");
        assert_eq!(g.metrics().evicted.load(Ordering::Relaxed), 1);
    }
}
