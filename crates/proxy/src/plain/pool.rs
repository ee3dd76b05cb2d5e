//! Idle backend connections, kept for the next request of any client of
//! the same hostname (`[proxy] backend_reuse = "safe"`).
//!
//! HAProxy's `http-reuse safe` is the model: the first request of a
//! client connection always goes over a backend connection of its own,
//! so a client that has not yet shown it keeps its connection alive never
//! meets a pooled one the backend may be closing. When a client
//! connection goes idle between requests and its backend connection is
//! known to persist ([`crate::http::Responses::reusable`]), the backend
//! connection comes here, and the idle client holds only its own socket;
//! its next request takes the newest live pooled connection, or connects
//! anew.
//!
//! A pool belongs to one proxy thread (each runs a current-thread runtime
//! whose tasks never leave it), so it lives in a thread-local and takes no
//! lock; it is never borrowed across an `.await`. Entries are keyed by
//! hostname and backend address: two hostnames never share a connection,
//! even to the same backend, and a connection is taken only for an
//! address the hostname's current route still allows. Hostnames with the
//! PROXY protocol never come here: a PROXY header speaks for one client
//! connection.
//!
//! Bounds: at most `max` entries per thread and `max_per_host` per key,
//! each at most `idle` old. Entries sit in the order they came, so the
//! expired ones are at the front: each put and take closes them, and one
//! timer per thread ([`purge`]) closes the rest, without a timer per
//! entry. `idle` (2 s by default) stays under the keep-alive timeouts of
//! common backends (Apache's is 5 s), so a pooled connection is rarely one
//! the backend is about to close.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::http::Head;

/// Whether later requests of a client connection may use pooled backend
/// connections (`[proxy] backend_reuse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseMode {
    /// Later requests over idle pooled connections, and first requests too
    /// when a failed one can be sent again: an idempotent method without a
    /// body (RFC 9110 §9.2.2), sent once more over a new connection if the
    /// pooled one closes before any octet of the answer. A client's
    /// `Connection: close` ends its own connection, not the backend's.
    Idempotent,
    /// HAProxy's `safe`: a client's first request over a connection of its
    /// own, later ones over idle pooled connections.
    Safe,
    /// Every client connection has one backend connection for its life.
    Never,
}

/// The pool's settings, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// `[proxy] backend_reuse`.
    pub mode: ReuseMode,
    /// `[proxy] backend_pool_max`: idle connections per proxy thread.
    pub max: usize,
    /// `[proxy] backend_pool_max_per_host`: idle connections per thread
    /// for one hostname and backend address.
    pub max_per_host: usize,
    /// `[proxy] backend_pool_idle`: how long an idle connection is kept.
    pub idle: Duration,
    /// `[proxy] backend_pool_grace_ms`: how long a kept-alive client that
    /// went idle keeps its backend connection before it goes to the pool.
    /// A busy client's next request comes within moments and goes out at
    /// once over the same connection, with no round through the pool.
    pub grace: Duration,
}

/// The default `[proxy] backend_pool_max`.
pub const DEFAULT_MAX: usize = 256;
/// The default `[proxy] backend_pool_max_per_host`.
pub const DEFAULT_MAX_PER_HOST: usize = 64;
/// The default `[proxy] backend_pool_idle`.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(2);
/// The default `[proxy] backend_pool_grace_ms`.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(100);

impl Default for Reuse {
    fn default() -> Reuse {
        Reuse {
            mode: ReuseMode::Idempotent,
            max: DEFAULT_MAX,
            max_per_host: DEFAULT_MAX_PER_HOST,
            idle: DEFAULT_IDLE,
            grace: DEFAULT_GRACE,
        }
    }
}

impl Reuse {
    /// Pooling is on.
    pub fn is_on(&self) -> bool {
        self.mode != ReuseMode::Never && self.max > 0 && self.max_per_host > 0
    }

    /// Is a client's `Connection: close` kept from the backend, so that
    /// its connection may go to the pool?
    pub fn keeps_backend_past_close(&self) -> bool {
        self.mode == ReuseMode::Idempotent && self.is_on()
    }

    /// May a client's first request take a pooled connection? Only one
    /// that can be sent again over a new one ([`Head::may_be_sent_again`]).
    pub fn first_may_reuse(&self, first: &Head) -> bool {
        self.mode == ReuseMode::Idempotent && self.is_on() && first.may_be_sent_again()
    }
}

/// The pool's counters, over all threads.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Backend connections opened for plain HTTP.
    pub opened: AtomicU64,
    /// Requests sent over a pooled connection.
    pub reused: AtomicU64,
    /// Pooled connections closed unused after `backend_pool_idle`.
    pub expired: AtomicU64,
    /// Pooled connections found closed by the backend, or with octets
    /// nobody asked for, when put or taken.
    pub dead: AtomicU64,
    /// Idle connections closed because the pool was full.
    pub full: AtomicU64,
    /// Requests over a pooled connection that the backend closed before
    /// any octet of the response: sent again over a new connection.
    pub retried: AtomicU64,
    /// The same, when the request could not be sent again: the client's
    /// connection was closed without an answer.
    pub aborted: AtomicU64,
}

/// One idle connection.
#[derive(Debug)]
struct Entry<S> {
    host: Box<str>,
    addr: SocketAddr,
    since: Instant,
    stream: S,
}

/// Idle connections of one thread, oldest first. `S` is the socket (a
/// plain value in the tests).
#[derive(Debug)]
pub(super) struct Pool<S> {
    entries: VecDeque<Entry<S>>,
    /// Draining: nothing more comes in.
    closed: bool,
}

/// What a [`Pool::put`] or [`Pool::take`] closed, to be counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Closed {
    pub(super) expired: u64,
    pub(super) dead: u64,
    pub(super) full: u64,
}

impl Closed {
    fn count(self, stats: &PoolStats) {
        for (n, c) in [(self.expired, &stats.expired), (self.dead, &stats.dead), (self.full, &stats.full)] {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

impl<S> Pool<S> {
    pub(super) const fn new() -> Pool<S> {
        Pool { entries: VecDeque::new(), closed: false }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Closes the entries older than `idle` at `now`.
    pub(super) fn purge(&mut self, now: Instant, idle: Duration, closed: &mut Closed) {
        while self.entries.front().is_some_and(|e| now.saturating_duration_since(e.since) >= idle) {
            self.entries.pop_front();
            closed.expired += 1;
        }
    }

    /// Keeps `stream`, idle since `now`, under its key; or closes it (the
    /// pool draining, full for its key) or the oldest entry (full in all).
    pub(super) fn put(
        &mut self,
        host: &str,
        addr: SocketAddr,
        stream: S,
        now: Instant,
        reuse: &Reuse,
        closed: &mut Closed,
    ) {
        self.purge(now, reuse.idle, closed);
        if self.closed || !reuse.is_on() {
            return;
        }
        let same = self.entries.iter().filter(|e| e.addr == addr && *e.host == *host).count();
        if same >= reuse.max_per_host {
            closed.full += 1;
            return;
        }
        if self.entries.len() >= reuse.max {
            // The oldest is the likeliest to be closed by its backend.
            self.entries.pop_front();
            closed.full += 1;
        }
        self.entries.push_back(Entry { host: host.into(), addr, since: now, stream });
    }

    /// The newest idle connection for `host` to an address `allowed`
    /// still, that `alive` finds usable (the others it rejects are
    /// closed), with its address.
    pub(super) fn take(
        &mut self,
        host: &str,
        allowed: impl Fn(SocketAddr) -> bool,
        mut alive: impl FnMut(&mut S) -> bool,
        now: Instant,
        idle: Duration,
        closed: &mut Closed,
    ) -> Option<(S, SocketAddr)> {
        self.purge(now, idle, closed);
        loop {
            let i = self.entries.iter().rposition(|e| *e.host == *host && allowed(e.addr))?;
            let mut e = self.entries.remove(i)?;
            if alive(&mut e.stream) {
                return Some((e.stream, e.addr));
            }
            closed.dead += 1;
        }
    }

    /// The drain: every entry closes, and nothing more comes in.
    pub(super) fn close(&mut self) {
        self.closed = true;
        self.entries.clear();
    }

    /// Open again (a new server on this thread).
    pub(super) fn open(&mut self) {
        self.closed = false;
    }
}

thread_local! {
    static POOL: RefCell<Pool<TcpStream>> = const { RefCell::new(Pool::new()) };
}

/// Is an idle socket still usable? Asked without blocking: tokio's
/// readiness says whether anything arrived since the last read, and only
/// then is the socket read. Nothing to read means alive; an EOF, an error
/// or octets nobody asked for mean it is not.
fn alive(s: &mut TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// This thread's pool keeps `stream`, to `addr` for `host`, if it is
/// alive and there is room.
pub(super) fn put(host: &str, addr: SocketAddr, mut stream: TcpStream, reuse: &Reuse, stats: &PoolStats) {
    let mut closed = Closed::default();
    if alive(&mut stream) {
        POOL.with_borrow_mut(|p| p.put(host, addr, stream, Instant::now(), reuse, &mut closed));
    } else {
        closed.dead += 1;
    }
    closed.count(stats);
}

/// A live idle connection of this thread's pool for `host`, to an address
/// `allowed` by its current route.
pub(super) fn take(
    host: &str,
    allowed: impl Fn(SocketAddr) -> bool,
    reuse: &Reuse,
    stats: &PoolStats,
) -> Option<(TcpStream, SocketAddr)> {
    let mut closed = Closed::default();
    let got = POOL.with_borrow_mut(|p| {
        if p.len() == 0 {
            return None;
        }
        p.take(host, allowed, alive, Instant::now(), reuse.idle, &mut closed)
    });
    closed.count(stats);
    got
}

/// Closes this thread's expired entries every half `idle`, until `drain`;
/// then closes them all and takes no more.
pub(super) async fn purge(reuse: Reuse, stats: &PoolStats, drain: impl std::future::Future<Output = ()>) {
    POOL.with_borrow_mut(Pool::open);
    if reuse.is_on() {
        let mut tick = tokio::time::interval((reuse.idle / 2).max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(drain);
        loop {
            tokio::select! {
                now = tick.tick() => {
                    let mut closed = Closed::default();
                    POOL.with_borrow_mut(|p| p.purge(now, reuse.idle, &mut closed));
                    closed.count(stats);
                }
                () = &mut drain => break,
            }
        }
    } else {
        drain.await;
    }
    POOL.with_borrow_mut(Pool::close);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))
    }

    fn reuse(max: usize, per_host: usize) -> Reuse {
        Reuse {
            mode: ReuseMode::Safe,
            max,
            max_per_host: per_host,
            idle: Duration::from_secs(2),
            grace: Duration::ZERO,
        }
    }

    fn take(p: &mut Pool<u32>, host: &str, now: Instant, closed: &mut Closed) -> Option<u32> {
        p.take(host, |_| true, |_| true, now, Duration::from_secs(2), closed).map(|(s, _)| s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_taken_only_for_its_own_hostname_and_an_allowed_address() {
        let (mut p, mut c, r) = (Pool::new(), Closed::default(), reuse(10, 10));
        let now = Instant::now();
        p.put("a.test", addr(80), 1, now, &r, &mut c);
        p.put("b.test", addr(80), 2, now, &r, &mut c);
        assert_eq!(take(&mut p, "c.test", now, &mut c), None);
        let none = p.take("a.test", |a| a != addr(80), |_| true, now, r.idle, &mut c);
        assert!(none.is_none(), "an address the route no longer has");
        assert_eq!(take(&mut p, "a.test", now, &mut c), Some(1));
        assert_eq!(take(&mut p, "a.test", now, &mut c), None, "b.test's is not a.test's");
        assert_eq!(take(&mut p, "b.test", now, &mut c), Some(2));
        assert_eq!(c, Closed::default());
    }

    #[tokio::test(start_paused = true)]
    async fn the_newest_is_taken_and_dead_ones_are_closed_on_the_way() {
        let (mut p, mut c, r) = (Pool::new(), Closed::default(), reuse(10, 10));
        let now = Instant::now();
        for s in 1..=4 {
            p.put("a.test", addr(80), s, now, &r, &mut c);
        }
        let got = p.take("a.test", |_| true, |s| *s < 3, now, r.idle, &mut c);
        assert_eq!(got, Some((2, addr(80))), "4 and 3 were dead");
        assert_eq!((c.dead, p.len()), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_idle_without_a_timer_each() {
        let (mut p, mut c, r) = (Pool::new(), Closed::default(), reuse(10, 10));
        p.put("a.test", addr(80), 1, Instant::now(), &r, &mut c);
        tokio::time::advance(Duration::from_millis(1500)).await;
        p.put("a.test", addr(80), 2, Instant::now(), &r, &mut c);
        tokio::time::advance(Duration::from_millis(600)).await;
        p.purge(Instant::now(), r.idle, &mut c);
        assert_eq!((c.expired, p.len()), (1, 1), "the first is 2.1 s old, the second 0.6 s");
        tokio::time::advance(Duration::from_millis(1400)).await;
        assert_eq!(take(&mut p, "a.test", Instant::now(), &mut c), None, "expired when taken");
        assert_eq!(c.expired, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pool_is_bounded_in_all_and_per_key() {
        let (mut p, mut c, r) = (Pool::new(), Closed::default(), reuse(3, 2));
        let now = Instant::now();
        for s in 1..=3 {
            p.put("a.test", addr(80), s, now, &r, &mut c);
        }
        assert_eq!((p.len(), c.full), (2, 1), "two per key");
        p.put("a.test", addr(81), 4, now, &r, &mut c);
        p.put("b.test", addr(80), 5, now, &r, &mut c);
        assert_eq!((p.len(), c.full), (3, 2), "three in all: the oldest made room");
        assert_eq!(take(&mut p, "a.test", now, &mut c), Some(4));
        assert_eq!(take(&mut p, "a.test", now, &mut c), Some(2));
        assert_eq!(take(&mut p, "a.test", now, &mut c), None, "1 was closed for room");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_or_disabled_pool_keeps_nothing() {
        let (mut p, mut c) = (Pool::new(), Closed::default());
        let now = Instant::now();
        p.put("a.test", addr(80), 1, now, &Reuse { mode: ReuseMode::Never, ..reuse(3, 3) }, &mut c);
        assert_eq!(p.len(), 0);
        p.put("a.test", addr(80), 1, now, &reuse(3, 3), &mut c);
        p.close();
        assert_eq!(p.len(), 0);
        p.put("a.test", addr(80), 2, now, &reuse(3, 3), &mut c);
        assert_eq!(p.len(), 0, "draining");
        p.open();
        p.put("a.test", addr(80), 3, now, &reuse(3, 3), &mut c);
        assert_eq!(p.len(), 1);
    }
}
