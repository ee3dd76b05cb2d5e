//! Which of a hostname's backend addresses a connection tries, and when.
//!
//! The start rotates over the hostname's AAAA records, so that load
//! spreads over them: each set of addresses has a round-robin counter of
//! its own (one of [`ROTATIONS`], picked by the first address), so two
//! hostnames taking turns do not always start at the same place.
//!
//! The attempts race as RFC 8305 §5 describes: the first address is tried
//! at once; when it has not connected after [`ATTEMPT_DELAY`], the next
//! one starts while the first goes on; an attempt that fails starts the
//! next at once; the first to connect wins and the others are dropped.
//! `connect_timeout` bounds the whole race, not each attempt. A
//! connection has at most [`MAX_IN_FLIGHT`] attempts at once, and the
//! attempts beyond each connection's first share [`MAX_RACING`] places
//! for the whole process, so that a dead backend cannot make every
//! connection hold several descriptors; without a place, a connection
//! waits for its attempt to end, as a sequential failover would.
//!
//! Failures are remembered for [`FAILURE_MEMORY`], as a circuit breaker
//! would: an address that refused, timed out, or was overtaken by one
//! started after it, is tried after the others, never skipped, so a
//! hostname with one backend still reaches it. A success forgets the
//! failure. The table holds at most [`MAX_FAILURES`] addresses, dropping
//! the oldest failure first.

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::tls::ConnectError;

/// RFC 8305 §5's Connection Attempt Delay: its recommended 250 ms.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// How long a failed address is tried after the others.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(10);

/// The most addresses whose failure is remembered.
pub const MAX_FAILURES: usize = 4096;

/// The most attempts one connection has in flight at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// The most attempts in flight beyond each connection's first, for the
/// whole process: extra descriptors a race may hold.
pub const MAX_RACING: usize = 1024;

/// Round-robin counters, shared by the address sets that hash alike.
pub const ROTATIONS: usize = 64;

/// The proxy's memory of its backends: rotation and recent failures.
#[derive(Debug)]
pub struct Choice {
    rotation: [AtomicUsize; ROTATIONS],
    failed: Mutex<Failures>,
    /// The table may hold something: without, no lock and no clock read.
    any_failed: AtomicBool,
    racing: AtomicUsize,
    delay: Duration,
}

impl Default for Choice {
    fn default() -> Choice {
        Choice::new(ATTEMPT_DELAY)
    }
}

/// When each address last failed.
#[derive(Debug, Default)]
struct Failures {
    at: HashMap<SocketAddrV6, Instant>,
    /// The latest failure: once it is old, all are.
    newest: Option<Instant>,
}

impl Failures {
    fn recent(&self, addr: &SocketAddrV6, now: Instant) -> bool {
        self.at.get(addr).is_some_and(|t| now.saturating_duration_since(*t) < FAILURE_MEMORY)
    }
}

/// One attempt in flight.
struct Attempt<'a, F> {
    addr: SocketAddrV6,
    started: Instant,
    future: Pin<Box<F>>,
    /// For an attempt beyond the connection's first.
    _place: Option<Place<'a>>,
}

impl Choice {
    /// A choice with this Connection Attempt Delay.
    pub fn new(delay: Duration) -> Choice {
        Choice {
            rotation: std::array::from_fn(|_| AtomicUsize::new(0)),
            failed: Mutex::new(Failures::default()),
            any_failed: AtomicBool::new(false),
            racing: AtomicUsize::new(0),
            delay,
        }
    }

    /// The order to try `backends` at `port` in: rotated by one for each
    /// call with the same set, then the recently failed ones last (in that
    /// same order).
    pub fn order(&self, backends: &[Ipv6Addr], port: u16) -> Vec<SocketAddrV6> {
        let n = backends.len();
        let start = match backends.first() {
            Some(first) if n > 1 => {
                let bits = u128::from(*first);
                let slot = (crate::proxyproto::mix(bits as u64 ^ (bits >> 64) as u64) as usize) % ROTATIONS;
                self.rotation.get(slot).map_or(0, |r| r.fetch_add(1, Ordering::Relaxed) % n)
            }
            _ => 0,
        };
        let mut out: Vec<SocketAddrV6> =
            backends.iter().cycle().skip(start).take(n).map(|b| SocketAddrV6::new(*b, port, 0, 0)).collect();
        if n > 1 && self.any_failed.load(Ordering::Relaxed) {
            let now = Instant::now();
            let mut failed = self.table();
            if failed.newest.is_none_or(|t| now.saturating_duration_since(t) >= FAILURE_MEMORY) {
                // Every failure is old: back to the path without a lock.
                failed.at.clear();
                failed.newest = None;
                self.any_failed.store(false, Ordering::Relaxed);
            } else {
                // A stable sort: the rotation stays within each group.
                out.sort_by_key(|a| failed.recent(a, now));
            }
        }
        out
    }

    /// Remembers that `addr` failed now.
    pub fn failed(&self, addr: SocketAddrV6) {
        let now = Instant::now();
        let mut failed = self.table();
        let table = &mut failed.at;
        if table.len() >= MAX_FAILURES && !table.contains_key(&addr) {
            table.retain(|_, t| now.saturating_duration_since(*t) < FAILURE_MEMORY);
            if table.len() >= MAX_FAILURES
                && let Some(oldest) = table.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a)
            {
                table.remove(&oldest);
            }
        }
        table.insert(addr, now);
        failed.newest = Some(now);
        self.any_failed.store(true, Ordering::Relaxed);
    }

    /// Forgets that `addr` failed.
    pub fn succeeded(&self, addr: SocketAddrV6) {
        if self.any_failed.load(Ordering::Relaxed) {
            let mut failed = self.table();
            failed.at.remove(&addr);
            if failed.at.is_empty() {
                failed.newest = None;
                self.any_failed.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Was `addr`'s failure remembered, and not yet forgotten?
    pub fn recently_failed(&self, addr: SocketAddrV6) -> bool {
        self.table().recent(&addr, Instant::now())
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Failures> {
        // Nothing panics while holding it; a poisoned table is still a
        // table.
        self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One place for an attempt beyond a connection's first, if any is
    /// free.
    fn place(&self) -> Option<Place<'_>> {
        self.racing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_RACING).then_some(n + 1))
            .ok()
            .map(|_| Place(&self.racing))
    }

    /// One attempt at `addr` within `timeout`, noted as a success or a
    /// failure.
    pub(crate) async fn one<T, F>(
        &self,
        addr: SocketAddrV6,
        timeout: Duration,
        attempt: F,
    ) -> Result<T, ConnectError>
    where
        F: Future<Output = Result<T, String>>,
    {
        let r = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(last)) => Err(ConnectError { last, timed_out: false }),
            Err(_) => Err(ConnectError { last: format!("{addr}: connect timeout"), timed_out: true }),
        };
        match r {
            Ok(_) => self.succeeded(addr),
            Err(_) => self.failed(addr),
        }
        r
    }

    /// Races `attempt` over `candidates`, in order, within `timeout`
    /// (RFC 8305 §5, see the module's description). `attempt` gives a
    /// failure as a message naming the address.
    pub(crate) async fn race<T, F, A>(
        &self,
        candidates: &[SocketAddrV6],
        timeout: Duration,
        attempt: A,
    ) -> Result<T, ConnectError>
    where
        A: Fn(SocketAddrV6) -> F,
        F: Future<Output = Result<T, String>>,
    {
        enum Event<T> {
            Done(usize, Result<T, String>),
            Start,
            Timeout,
        }
        let deadline = Instant::now() + timeout;
        let overall = tokio::time::sleep_until(deadline);
        let next = tokio::time::sleep_until(Instant::now());
        tokio::pin!(overall, next);
        let mut queue = candidates.iter().copied();
        let mut waiting = queue.next();
        let mut pending: Vec<Attempt<'_, F>> = Vec::with_capacity(candidates.len().min(MAX_IN_FLIGHT));
        let mut last = ConnectError { last: String::from("no backend"), timed_out: false };
        // May the next attempt start once `next` fires? Not while the
        // connection is at its cap or no place is free: then only an end
        // lets it.
        let mut may_start = true;
        loop {
            let event = std::future::poll_fn(|cx| {
                for (i, a) in pending.iter_mut().enumerate() {
                    if let Poll::Ready(r) = a.future.as_mut().poll(cx) {
                        return Poll::Ready(Event::Done(i, r));
                    }
                }
                if waiting.is_some() && may_start && next.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Start);
                }
                if overall.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Timeout);
                }
                Poll::Pending
            })
            .await;
            match event {
                Event::Start => {
                    let Some(addr) = waiting else { continue };
                    let place = match pending.is_empty() {
                        true => None,
                        false if pending.len() >= MAX_IN_FLIGHT => {
                            may_start = false;
                            continue;
                        }
                        false => match self.place() {
                            Some(p) => Some(p),
                            None => {
                                may_start = false;
                                continue;
                            }
                        },
                    };
                    let now = Instant::now();
                    pending.push(Attempt {
                        addr,
                        started: now,
                        future: Box::pin(attempt(addr)),
                        _place: place,
                    });
                    waiting = queue.next();
                    next.as_mut().reset(now + self.delay);
                }
                Event::Done(i, Ok(t)) => {
                    let won = pending.swap_remove(i);
                    self.succeeded(won.addr);
                    // Those started before the winner were overtaken:
                    // slower than a later start, by the delay at least.
                    for a in pending.iter().filter(|a| a.started < won.started) {
                        self.failed(a.addr);
                    }
                    return Ok(t);
                }
                Event::Done(i, Err(e)) => {
                    let lost = pending.swap_remove(i);
                    self.failed(lost.addr);
                    last = ConnectError { last: e, timed_out: false };
                    // A failure starts the next one at once.
                    may_start = true;
                    next.as_mut().reset(Instant::now());
                    if pending.is_empty() && waiting.is_none() {
                        return Err(last);
                    }
                }
                Event::Timeout => {
                    for a in &pending {
                        self.failed(a.addr);
                    }
                    return Err(match pending.iter().min_by_key(|a| a.started) {
                        Some(a) => {
                            ConnectError { last: format!("{}: connect timeout", a.addr), timed_out: true }
                        }
                        None => ConnectError { timed_out: true, ..last },
                    });
                }
            }
        }
    }
}

/// A place among [`MAX_RACING`], given back when dropped.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[path = "backends_tests.rs"]
mod tests;
