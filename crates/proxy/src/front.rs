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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use sixgate_listen::accept::Acceptor;
use sixgate_listen::ratelog::RateLog;
use sixgate_listen::{Gate, ListenerLimits, ListenerMetrics, Slot};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::tls::Shared;

static HOST_CAP_LOG: RateLog = RateLog::new(1);

/// One kind of proxy listener's admission and deadlines.
#[derive(Debug)]
pub struct Front {
    gate: Arc<Gate>,
    hosts: Arc<HostCaps>,
    limits: ListenerLimits,
}

impl Front {
    /// Connections through `gate`, at most `limits.per_host` per hostname,
    /// with `limits`' deadlines.
    pub fn new(gate: Arc<Gate>, limits: ListenerLimits) -> Arc<Front> {
        let hosts = Arc::new(HostCaps { per_host: limits.per_host, counts: Mutex::default() });
        Arc::new(Front { gate, hosts, limits })
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

/// Accepts on `listener` through `front` until `shutdown`, and runs
/// `handle` on each admitted socket in its own task, which ends at
/// shutdown too. The listener comes tuned from
/// [`sixgate_listen::accept::bind`] with `front.limits.tcp` (keepalive,
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
    loop {
        let (stream, peer, slot) = tokio::select! {
            c = acceptor.next() => c,
            _ = async { let _ = shutdown.wait_for(|&s| s).await; } => return,
        };
        shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let work = handle(stream, peer, slot, shared.clone(), front.clone());
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = work => {}
                _ = async { let _ = sd.wait_for(|&s| s).await; } => {}
            }
        });
    }
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
}
