//! UDP workers: plain OS threads, one socket each.
//!
//! Each worker owns its receive and response buffers for its whole life,
//! moves datagrams in batches (`recvmmsg`/`sendmmsg`), loads the current
//! catalog with one atomic read per batch and never takes a lock, so
//! workers scale with cores. A received batch is answered and sent in
//! sub-batches ([`SUB_BATCH`]), so that the first answers leave before
//! the last queries of a burst are answered. The worker counts into a
//! tally of its own and publishes it once per batch
//! ([`crate::counters`]). The socket has a short read timeout only so
//! that the worker notices shutdown.

use std::io::{IoSlice, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use sixgate_dns::{Catalog, Client, CookieStatus, Limits, Outcome, Transport, respond_to};

use crate::SharedCatalog;
use crate::counters::{Counters, Tally};
use crate::queue::{Intake, Reply, UpdateQueue};
use crate::rrl::{Rrl, RrlWorker, Verdict};
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

pub use crate::counters::UdpStats;

/// Answers handed to one `sendmmsg`. A worker answers a received batch
/// in sub-batches of this many and sends each as soon as it is complete,
/// rather than answering all 32 first. With the whole batch answered
/// before the first send, the first query waited for the other 31
/// answers: up to ~150 µs at the ~5 µs of worker time per query, system
/// calls included, of the run in docs/benchmarks.md (195,015 queries per
/// server CPU second), where p99 at a fixed 75,000 qps was 2.5 times
/// Knot's.
/// Knot receives 10 at a time (`RECVMMSG_BATCHLEN`) and answers all ten
/// before it sends; 8 keeps every reply's wait for other queries' answers
/// under that of Knot's first, while still sending 8 datagrams per
/// system call under load (4 `sendmmsg` calls per full batch instead of
/// 1). The receive batch stays 32, so that a burst still costs one
/// `recvmmsg`. `scripts/bench dns` measures the choice (the latency
/// phase and `sixgate_dns_udp_wait_seconds`); its figures are to be
/// re-taken on a quiet machine before this constant is tuned.
pub const SUB_BATCH: usize = 8;

/// What every datagram of a worker is answered with.
struct Context {
    limits: Limits,
    updates: Option<(UpdateQueue, Arc<UdpSocket>)>,
    transfers: Option<Arc<Transfers>>,
}

/// Starts one worker thread per socket, each counting into counters of
/// its own registered in `stats`. With `rrl`, UDP answers are rate
/// limited ([`crate::rrl`]).
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
        let counters = stats.register();
        let stats = stats.clone();
        let rrl = rrl.as_ref().map(Rrl::worker);
        // UPDATE answers are sent later, from another thread, through a
        // second handle on the same socket (so from the same address).
        let updates = match &updates {
            Some(q) => Some((q.clone(), Arc::new(sock.try_clone()?))),
            None => None,
        };
        let ctx = Context { limits, updates, transfers: transfers.clone() };
        let h = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || worker(sock, catalog, ctx, shutdown, stats, counters, rrl))?;
        handles.push(h);
    }
    Ok(handles)
}

fn worker(
    sock: UdpSocket,
    catalog: SharedCatalog,
    ctx: Context,
    shutdown: Arc<AtomicBool>,
    stats: Arc<UdpStats>,
    counters: Arc<Counters>,
    mut rrl: Option<RrlWorker>,
) {
    let fd = sock.as_raw_fd();
    let mut rx: Box<[[u8; RX_SIZE]; BATCH]> = Box::new([[0u8; RX_SIZE]; BATCH]);
    let mut tx: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(RX_SIZE)).collect();
    let mut rhdr = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut shdr = MultiHeaders::<SockaddrStorage>::preallocate(SUB_BATCH, None);
    let mut got: [(usize, Option<SockaddrStorage>); BATCH] = [(0, None); BATCH];
    let mut tally = Tally::default();
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
        // One clock read per batch, one per sub-batch sent: every reply's
        // wait inside the worker is measured from here (vDSO, no system
        // call).
        let received_at = Instant::now();
        // Cookies and rate limiting need the time in seconds and ticks:
        // read once per batch too.
        let now = crate::cookies::unix_now();
        let rrl_now = rrl.as_ref().map(|r| r.now()).unwrap_or_default();
        // Counted by the answers, published by the sends (a Cell: both
        // closures below reach it).
        let cookies = std::cell::Cell::new(crate::cookies::Tally::default());
        tally.batch(n);
        let cat = catalog.load();
        let (rx, got) = (&*rx, &got);
        let answered = sub_batches(
            &mut tx,
            n,
            |i, out| {
                let Some((len, peer)) = got.get(i) else { return false };
                let msg = rx.get(i).and_then(|b| b.get(..*len)).unwrap_or(&[]);
                let client = peer.as_ref().and_then(socket_addr).map(|p| Client { ip: p.ip(), now });
                let Some(answered) = answer(&ctx, &cat, msg, peer.as_ref(), client.as_ref(), out) else {
                    return false;
                };
                let mut c = cookies.get();
                c.count(answered.cookie, answered.badcookie);
                cookies.set(c);
                // Response-rate limiting, on the response written into
                // `out` and not yet queued: a TSIG-signed answer is not
                // limited (its signer is known, and a cut reply would not
                // verify), nor is a client that presented a valid server
                // cookie: it has shown that it receives answers at its
                // address (RFC 7873 §5.3).
                if !answered.signed
                    && let Some(r) = rrl.as_mut()
                    && let Some(c) = &client
                    && r.apply(c.ip, &cat, out, rrl_now, answered.cookie == CookieStatus::Valid)
                        == Verdict::Drop
                {
                    return false;
                }
                true
            },
            |tx, pending| {
                for out in pending.iter().filter_map(|&i| tx.get(i)) {
                    tally.response(out);
                }
                // Published before the answers leave, so that a client
                // that has its answer finds it counted.
                stats.cookies.add(&cookies.take());
                counters.publish(&mut tally);
                send(fd, &mut shdr, tx, got, pending);
                tally.sent(pending.len(), received_at.elapsed());
            },
        );
        drop(cat);
        tally.dropped(n - answered);
        counters.publish(&mut tally);
    }
}

/// Answers datagrams `0..n` in order, `answer` writing datagram i's
/// response into `bufs[i]` (false: nothing to send), and hands the
/// replies to `send` by index in groups of [`SUB_BATCH`], each as soon
/// as it is complete, the last group when the batch ends. Returns how
/// many replies were handed over.
fn sub_batches<T>(
    bufs: &mut [T],
    n: usize,
    mut answer: impl FnMut(usize, &mut T) -> bool,
    mut send: impl FnMut(&[T], &[usize]),
) -> usize {
    let mut pending = [0usize; SUB_BATCH];
    let (mut m, mut total) = (0, 0);
    for i in 0..n {
        let Some(out) = bufs.get_mut(i) else { break };
        if !answer(i, out) {
            continue;
        }
        if let Some(p) = pending.get_mut(m) {
            *p = i;
            m += 1;
        }
        if m == SUB_BATCH {
            send(bufs, &pending);
            (total, m) = (total + m, 0);
        }
    }
    if m > 0 {
        send(bufs, pending.get(..m).unwrap_or(&[]));
        total += m;
    }
    total
}

/// What [`answer`] wrote.
struct Written {
    /// What the query's cookie proved.
    cookie: CookieStatus,
    /// A BADCOOKIE reply.
    badcookie: bool,
    /// A TSIG-signed answer (or an UPDATE or transfer answer, which rate
    /// limiting leaves alone too).
    signed: bool,
}

impl Written {
    fn other() -> Written {
        Written { cookie: CookieStatus::None, badcookie: false, signed: true }
    }
}

/// Answers one datagram into `out`: `Some` when `out` holds a response
/// to send.
fn answer(
    ctx: &Context,
    cat: &Catalog,
    msg: &[u8],
    peer: Option<&SockaddrStorage>,
    client: Option<&Client>,
    out: &mut Vec<u8>,
) -> Option<Written> {
    if let Some((queue, handle)) = &ctx.updates {
        // Screened here, before anything is allocated or queued: only a
        // signed UPDATE reaches the writer.
        let from = peer.and_then(socket_addr);
        let reply = || from.map(|p| Reply::Udp(handle.clone(), p));
        match queue.intake(msg, from, out, reply) {
            Intake::NotUpdate => {}
            Intake::Answer => return Some(Written::other()),
            Intake::Queued | Intake::Dropped => return None,
        }
    }
    // IXFR over UDP goes through the transfer service's access check;
    // AXFR is left to the query path (NOTIMP).
    if let Some(t) = &ctx.transfers
        && sixgate_dns::xfr::is_transfer(msg)
        && let Some(from) = peer.and_then(socket_addr)
        && t.answer_udp(cat, msg, from, ctx.limits.udp_payload, out)
    {
        return Some(Written::other());
    }
    let mut answered = respond_to(cat, msg, out, Transport::Udp, &ctx.limits, client);
    let signed = answered.outcome == Outcome::Signed;
    if signed {
        let t = ctx.transfers.as_deref();
        answered = crate::transfer::answer_signed(t, cat, msg, out, Transport::Udp, &ctx.limits, client);
    }
    (answered.outcome == Outcome::Reply).then_some(Written {
        cookie: answered.cookie,
        badcookie: answered.badcookie,
        signed,
    })
}

/// Sends the responses `tx[i]` for each i in `pending` (at most
/// [`SUB_BATCH`]) to their peers, with as few system calls as the kernel
/// allows.
fn send(
    fd: RawFd,
    shdr: &mut MultiHeaders<SockaddrStorage>,
    tx: &[Vec<u8>],
    got: &[(usize, Option<SockaddrStorage>)],
    pending: &[usize],
) {
    let mut sent = 0;
    while sent < pending.len() {
        let rest = pending.get(sent..).unwrap_or(&[]);
        // Fixed-size arrays on the stack: no allocation per batch.
        let slices: [[IoSlice<'_>; 1]; SUB_BATCH] = std::array::from_fn(|j| {
            [IoSlice::new(rest.get(j).and_then(|&i| tx.get(i)).map_or(&[][..], |v| &v[..]))]
        });
        let addrs: [Option<SockaddrStorage>; SUB_BATCH] =
            std::array::from_fn(|j| rest.get(j).and_then(|&i| got.get(i)).and_then(|g| g.1));
        let k = rest.len().min(SUB_BATCH);
        let addrs = addrs.get(..k).unwrap_or(&[]);
        match sendmmsg(fd, shdr, slices.iter().take(k), addrs, [], MsgFlags::empty()) {
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
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
