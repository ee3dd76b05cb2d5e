//! UDP workers: plain OS threads, one socket each.
//!
//! Each worker owns its receive and response buffers for its whole life,
//! moves datagrams in batches (`recvmmsg`/`sendmmsg`), loads the current
//! catalog with one atomic read per batch and never takes a lock, so
//! workers scale with cores. The socket has a short read
//! timeout only so that the worker notices shutdown.

use std::io::{IoSlice, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use sixgate_dns::cookie::CookieStatus;
use sixgate_dns::{Client, Limits, Outcome, Transport, respond_to};

use crate::SharedCatalog;
use crate::queue::{Intake, Reply, UpdateQueue};
use crate::rrl::{Rrl, Verdict};
use crate::transfer::Transfers;

fn socket_addr(s: &SockaddrStorage) -> Option<std::net::SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(std::net::SocketAddr::V4((*v4).into()));
    }
    s.as_sockaddr_in6().map(|v6| std::net::SocketAddr::V6((*v6).into()))
}

/// How often a worker blocked in `recv` checks for shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// Largest query datagram we read; a longer one is cut and answered with
/// FORMERR. Real queries are far smaller.
const RX_SIZE: usize = 4096;
/// Datagrams received and sent per system call.
const BATCH: usize = 32;

/// Counters shared by the UDP workers.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Queries received.
    pub received: AtomicU64,
    /// Responses sent.
    pub answered: AtomicU64,
    /// Messages dropped without an answer.
    pub dropped: AtomicU64,
    /// What the queries' COOKIE options proved.
    pub cookies: crate::cookies::CookieStats,
}

/// Starts one worker thread per socket. With `rrl`, UDP answers are
/// rate limited ([`crate::rrl`]).
#[allow(clippy::too_many_arguments)] // the listener's parts, each shared with others
pub fn spawn(
    sockets: Vec<UdpSocket>,
    catalog: SharedCatalog,
    limits: Limits,
    shutdown: Arc<AtomicBool>,
    stats: Arc<UdpStats>,
    updates: Option<UpdateQueue>,
    transfers: Option<Arc<Transfers>>,
    rrl: Option<Arc<Rrl>>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::with_capacity(sockets.len());
    for (i, sock) in sockets.into_iter().enumerate() {
        sock.set_read_timeout(Some(SHUTDOWN_POLL))?;
        let catalog = catalog.clone();
        let shutdown = shutdown.clone();
        let stats = stats.clone();
        let transfers = transfers.clone();
        let rrl = rrl.as_ref().map(Rrl::worker);
        // UPDATE answers are sent later, from another thread, through a
        // second handle on the same socket (so from the same address).
        let updates = match &updates {
            Some(q) => Some((q.clone(), Arc::new(sock.try_clone()?))),
            None => None,
        };
        let h = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || worker(sock, catalog, limits, shutdown, stats, updates, transfers, rrl))?;
        handles.push(h);
    }
    Ok(handles)
}

#[allow(clippy::too_many_arguments)] // the listener's parts, each shared with others
fn worker(
    sock: UdpSocket,
    catalog: SharedCatalog,
    limits: Limits,
    shutdown: Arc<AtomicBool>,
    stats: Arc<UdpStats>,
    updates: Option<(UpdateQueue, Arc<UdpSocket>)>,
    transfers: Option<Arc<Transfers>>,
    mut rrl: Option<crate::rrl::RrlWorker>,
) {
    let fd = sock.as_raw_fd();
    let mut rx: Box<[[u8; RX_SIZE]; BATCH]> = Box::new([[0u8; RX_SIZE]; BATCH]);
    let mut tx: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(RX_SIZE)).collect();
    let mut rhdr = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut shdr = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut got: [(usize, Option<SockaddrStorage>); BATCH] = [(0, None); BATCH];
    let mut replies = [0usize; BATCH];
    while !shutdown.load(Ordering::Relaxed) {
        // Receive a batch: block for the first datagram, then take what is
        // already queued (MSG_WAITFORONE).
        let n = {
            let mut iovs = rx.each_mut().map(|b| [IoSliceMut::new(b)]);
            match recvmmsg(fd, &mut rhdr, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
                Ok(res) => {
                    let mut n = 0;
                    for (slot, r) in got.iter_mut().zip(res) {
                        *slot = (r.bytes, r.address);
                        n += 1;
                    }
                    n
                }
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            }
        };
        stats.received.fetch_add(n as u64, Ordering::Relaxed);
        let cat = catalog.load();
        let rrl_now = rrl.as_ref().map(|r| r.now()).unwrap_or_default();
        // One clock read per batch: cookies need seconds, not more.
        let now = crate::cookies::unix_now();
        let mut cookies = crate::cookies::Tally::default();
        let mut m = 0;
        for (i, ((len, peer), (buf, out))) in got.iter().zip(rx.iter().zip(tx.iter_mut())).take(n).enumerate()
        {
            let msg = buf.get(..*len).unwrap_or(&[]);
            if let Some((queue, handle)) = &updates {
                // Screened here, before anything is allocated or queued:
                // only a signed UPDATE reaches the writer.
                let from = peer.as_ref().and_then(socket_addr);
                let reply = || from.map(|p| Reply::Udp(handle.clone(), p));
                match queue.intake(msg, from, out, reply) {
                    Intake::NotUpdate => {}
                    Intake::Answer => {
                        if let Some(r) = replies.get_mut(m) {
                            *r = i;
                            m += 1;
                        }
                        continue;
                    }
                    Intake::Queued | Intake::Dropped => continue,
                }
            }
            // IXFR over UDP goes through the transfer service's access
            // check; AXFR is left to the query path (NOTIMP).
            if let Some(t) = &transfers
                && sixgate_dns::xfr::is_transfer(msg)
                && let Some(from) = peer.as_ref().and_then(socket_addr)
                && t.answer_udp(&cat, msg, from, limits.udp_payload, out)
            {
                if let Some(r) = replies.get_mut(m) {
                    *r = i;
                    m += 1;
                }
                continue;
            }
            let client = peer.as_ref().and_then(socket_addr).map(|p| Client { ip: p.ip(), now });
            let mut answered = respond_to(&cat, msg, out, Transport::Udp, &limits, client.as_ref());
            let signed = answered.outcome == Outcome::Signed;
            if signed {
                let t = transfers.as_deref();
                answered = crate::transfer::answer_signed(
                    t,
                    &cat,
                    msg,
                    out,
                    Transport::Udp,
                    &limits,
                    client.as_ref(),
                );
            }
            cookies.count(&answered);
            // Response-rate limiting: a TSIG-signed answer is not limited
            // (its signer is known, and a cut reply would not verify), nor
            // is a client that presented a valid server cookie: it has
            // shown that it receives answers at its address (RFC 7873
            // §5.3).
            if answered.outcome == Outcome::Reply
                && !signed
                && let Some(r) = rrl.as_mut()
                && let Some(c) = &client
                && r.apply(c.ip, &cat, out, rrl_now, answered.cookie == CookieStatus::Valid) == Verdict::Drop
            {
                continue;
            }
            if answered.outcome == Outcome::Reply
                && let Some(r) = replies.get_mut(m)
            {
                *r = i;
                m += 1;
            }
        }
        drop(cat);
        stats.cookies.add(&cookies);
        stats.dropped.fetch_add((n - m) as u64, Ordering::Relaxed);
        // Send all answers with as few system calls as the kernel allows.
        let mut sent = 0;
        while sent < m {
            let pending = replies.get(sent..m).unwrap_or(&[]);
            // Fixed-size arrays on the stack: no allocation per batch.
            let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|j| {
                [IoSlice::new(pending.get(j).and_then(|&i| tx.get(i)).map_or(&[][..], |v| &v[..]))]
            });
            let addrs: [Option<SockaddrStorage>; BATCH] =
                std::array::from_fn(|j| pending.get(j).and_then(|&i| got.get(i)).and_then(|g| g.1));
            let addrs = addrs.get(..pending.len()).unwrap_or(&[]);
            match sendmmsg(fd, &mut shdr, slices.iter().take(pending.len()), addrs, [], MsgFlags::empty()) {
                Ok(res) => {
                    let k = res.count();
                    if k == 0 {
                        break;
                    }
                    sent += k;
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    // Skip the datagram that failed (e.g. an unreachable
                    // peer) and go on with the rest.
                    tracing::debug!(error = %e, "udp send failed");
                    sent += 1;
                }
            }
        }
        stats.answered.fetch_add(m as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
