//! Admission: what every address of one kind of proxy listener shares.
//!
//! The HTTP side and the TLS side each get a [`Front`]. Each has its own
//! [`Gate`] (caps in total and per client address, `[proxy.limits]`), its
//! own per-hostname cap and its own metrics. So a flood of slow heads on
//! port 80 cannot refuse or evict tunnels on port 443, and `/metrics`
//! tells the two apart. Both use the same limits: `max_connections` holds
//! for each (docs/configuration.md).
//!
//! The per-hostname cap ([`HostCaps`]) keeps one site under attack from
//! taking every slot of a listener: a connection is counted against its
//! hostname once routed (the SNI, or the first request's Host) and gives
//! its place back when it ends. Over the cap, a TLS connection is closed
//! and an HTTP request answered 503. The table is taken once per
//! connection, never per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sixgate_listen::accept::Acceptor;
use sixgate_listen::ratelog::RateLog;
use sixgate_listen::{Gate, ListenerLimits, ListenerMetrics, Slot};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::tls::Shared;

static HOST_CAP_LOG: RateLog = RateLog::new(1);

/// How long connections in flight have to finish once the listeners
/// close, by default (`[proxy] drain_timeout`).
pub const DRAIN: Duration = Duration::from_secs(30);

/// The most octets a connection's task future (HTTP or TLS) may take.
/// Every connection keeps it for its whole life, and one that sends
/// nothing keeps little else: its socket's registration and its slot.
/// tokio's task cell is the future and about a hundred octets more,
/// rounded up to 128, so under this bound it takes 512.
#[cfg(test)]
pub(crate) const CONNECTION_FUTURE: usize = 400;

/// One kind of proxy listener's admission and deadlines.
#[derive(Debug)]
pub struct Front {
    gate: Arc<Gate>,
    hosts: Arc<HostCaps>,
    limits: ListenerLimits,
    /// True once the listeners close: idle keep-alive connections close,
    /// busy ones when their exchange is through.
    draining: AtomicBool,
    /// Wakes every [`Front::drained`] when the drain starts. A `Notify`
    /// and a flag rather than a `watch`: each kept-alive connection holds
    /// a `drained` future, and a `watch` one is twice the size.
    drain_started: Notify,
    drain: Duration,
}

impl Front {
    /// Connections through `gate`, at most `limits.per_host` per hostname,
    /// with `limits`' deadlines, and [`DRAIN`] to finish at shutdown.
    pub fn new(gate: Arc<Gate>, limits: ListenerLimits) -> Arc<Front> {
        Front::with_drain(gate, limits, DRAIN)
    }

    /// [`Front::new`] with `drain` for the connections in flight to finish
    /// once the listeners close; the rest are closed then.
    pub fn with_drain(gate: Arc<Gate>, limits: ListenerLimits, drain: Duration) -> Arc<Front> {
        let hosts = Arc::new(HostCaps { per_host: limits.per_host, counts: Mutex::default() });
        Arc::new(Front {
            gate,
            hosts,
            limits,
            draining: AtomicBool::new(false),
            drain_started: Notify::new(),
            drain,
        })
    }

    /// Starts the drain: every accept loop of this front stops, and
    /// connections close as soon as they are idle.
    pub fn start_drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.drain_started.notify_waiters();
    }

    /// Ready once the drain has started.
    pub(crate) async fn drained(&self) {
        // Created before the flag is read, it sees a drain that starts
        // after the read (`notify_waiters` wakes every `Notified` already
        // created, polled or not).
        let started = self.drain_started.notified();
        if !self.draining.load(Ordering::Acquire) {
            started.await;
        }
    }

    /// The deadlines and TCP options.
    pub fn limits(&self) -> &ListenerLimits {
        &self.limits
    }

    /// The counters.
    pub fn metrics(&self) -> &ListenerMetrics {
        self.gate.metrics()
    }

    /// A place for one connection to `host`, or `None` (counted, logged at
    /// a limited rate) when the hostname is at its cap.
    pub(crate) fn admit_host(&self, host: &str, peer: SocketAddr) -> Option<HostSlot> {
        let slot = self.hosts.admit(host);
        if slot.is_none() {
            self.metrics().refused_host.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = HOST_CAP_LOG.allow() {
                tracing::warn!(
                    listener = self.metrics().name(),
                    client = %peer,
                    host,
                    cap = self.hosts.per_host,
                    held_back = held,
                    "proxy: hostname at its connection cap"
                );
            }
        }
        slot
    }
}

/// Connections per hostname.
#[derive(Debug)]
pub(crate) struct HostCaps {
    per_host: usize,
    counts: Mutex<HashMap<Box<str>, usize>>,
}

impl HostCaps {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, usize>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit(self: &Arc<Self>, host: &str) -> Option<HostSlot> {
        let mut counts = self.lock();
        match counts.get_mut(host) {
            Some(n) if *n >= self.per_host => return None,
            Some(n) => *n += 1,
            None if self.per_host == 0 => return None,
            None => {
                counts.insert(host.into(), 1);
            }
        }
        drop(counts);
        Some(HostSlot { caps: self.clone(), host: host.into() })
    }
}

/// One connection's place under its hostname's cap.
#[derive(Debug)]
pub(crate) struct HostSlot {
    caps: Arc<HostCaps>,
    host: Box<str>,
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        let mut counts = self.caps.lock();
        if let Some(n) = counts.get_mut(&self.host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.host);
            }
        }
    }
}

/// Accepts on `listener` through `front` until `shutdown` (or the front's
/// drain), and runs `handle` on each admitted socket in its own task.
/// Then the listener closes, and the connections in flight have the
/// front's drain time to finish before they are closed. The listener comes tuned from
/// [`sixgate_listen::accept::bind_group`] with `front.limits.tcp` (keepalive,
/// `TCP_USER_TIMEOUT`, no Nagle), which its connections inherit.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shared: Arc<Shared>,
    front: Arc<Front>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr, Slot, Arc<Shared>, Arc<Front>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut acceptor = Acceptor::new(listener, front.gate.clone());
    // The connections, owned here: at the drain's end they are dropped,
    // with no per-connection watch on every wake-up.
    let mut conns = tokio::task::JoinSet::new();
    let drained = front.drained();
    tokio::pin!(drained);
    loop {
        tokio::select! {
            c = acceptor.next() => {
                let (stream, peer, slot) = c;
                shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
                conns.spawn(handle(stream, peer, slot, shared.clone(), front.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = async { let _ = shutdown.wait_for(|&s| s).await; } => break,
            _ = &mut drained => break,
        }
    }
    // No new connection; idle ones see the drain and close.
    let local = acceptor.listener().local_addr().ok();
    drop(acceptor);
    front.start_drain();
    if !conns.is_empty() {
        tracing::debug!(listener = front.metrics().name(), address = ?local, connections = conns.len(), "proxy: draining");
        let all = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(front.drain, all).await.is_err() {
            tracing::info!(
                listener = front.metrics().name(),
                address = ?local,
                closed = conns.len(),
                "proxy: drain time over; closing the connections left"
            );
        }
    }
    conns.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_at_its_cap_is_refused_and_its_places_come_back() {
        let metrics = Arc::new(ListenerMetrics::new("test"));
        let gate = Gate::new(sixgate_listen::Limits { max_connections: 10, per_address: 10 }, metrics);
        let front = Front::new(gate, ListenerLimits { per_host: 2, ..ListenerLimits::proxy() });
        let peer: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let a = front.admit_host("a.test", peer).unwrap();
        let b = front.admit_host("a.test", peer).unwrap();
        assert!(front.admit_host("a.test", peer).is_none());
        let other = front.admit_host("b.test", peer);
        assert!(other.is_some(), "another hostname has its own count");
        assert_eq!(front.metrics().refused_host.load(Ordering::Relaxed), 1);
        drop(a);
        let c = front.admit_host("a.test", peer);
        assert!(c.is_some());
        drop((b, c, other));
        assert!(front.hosts.lock().is_empty(), "no count is left behind");
    }

    /// Every kept-alive connection's exchange holds a `drained` future,
    /// twice (as an `async fn`'s argument). Regression: one that waited on
    /// a `watch` took 168 octets.
    #[tokio::test]
    async fn drained_sees_a_drain_started_before_or_after_it_and_stays_small() {
        let metrics = Arc::new(ListenerMetrics::new("test"));
        let gate = Gate::new(sixgate_listen::Limits { max_connections: 1, per_address: 1 }, metrics);
        let front = Front::new(gate, ListenerLimits::proxy());
        let waiting = front.drained();
        tokio::pin!(waiting);
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(waiting.as_mut().poll(cx))).await;
        assert!(polled.is_pending(), "no drain yet");
        front.start_drain();
        waiting.await;
        front.drained().await;
        let size = std::mem::size_of_val(&front.drained());
        assert!(size <= 96, "{size} octets");
    }
}
