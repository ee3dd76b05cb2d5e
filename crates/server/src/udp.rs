//! UDP workers: plain OS threads, one socket each.
//!
//! Each worker owns its receive and response buffers for its whole life,
//! loads the current catalog with one atomic read per query and never
//! takes a lock, so workers scale with cores. The socket has a short read
//! timeout only so that the worker notices shutdown.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sixgate_dns::{Limits, Outcome, Transport, respond};

use crate::SharedCatalog;

/// How often a worker blocked in `recv` checks for shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// Largest datagram we read; larger ones are cut and then fail to parse.
const MAX_DATAGRAM: usize = 65535;

/// Counters shared by the UDP workers.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Queries received.
    pub received: AtomicU64,
    /// Responses sent.
    pub answered: AtomicU64,
    /// Messages dropped without an answer.
    pub dropped: AtomicU64,
}

/// Starts one worker thread per socket.
pub fn spawn(
    sockets: Vec<UdpSocket>,
    catalog: SharedCatalog,
    limits: Limits,
    shutdown: Arc<AtomicBool>,
    stats: Arc<UdpStats>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::with_capacity(sockets.len());
    for (i, sock) in sockets.into_iter().enumerate() {
        sock.set_read_timeout(Some(SHUTDOWN_POLL))?;
        let catalog = catalog.clone();
        let shutdown = shutdown.clone();
        let stats = stats.clone();
        let h = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || worker(sock, catalog, limits, shutdown, stats))?;
        handles.push(h);
    }
    Ok(handles)
}

fn worker(
    sock: UdpSocket,
    catalog: SharedCatalog,
    limits: Limits,
    shutdown: Arc<AtomicBool>,
    stats: Arc<UdpStats>,
) {
    let mut rx = vec![0u8; MAX_DATAGRAM];
    let mut tx = Vec::with_capacity(MAX_DATAGRAM);
    while !shutdown.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut rx) {
            Ok(v) => v,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        stats.received.fetch_add(1, Ordering::Relaxed);
        let cat = catalog.load();
        let msg = rx.get(..n).unwrap_or(&[]);
        match respond(&cat, msg, &mut tx, Transport::Udp, &limits) {
            Outcome::Reply => {
                if let Err(e) = sock.send_to(&tx, peer) {
                    tracing::debug!(error = %e, %peer, "udp send failed");
                } else {
                    stats.answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outcome::Drop => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
