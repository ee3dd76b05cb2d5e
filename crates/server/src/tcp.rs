//! DNS over TCP (RFC 7766) on tokio.
//!
//! Each connection reads length-prefixed messages and answers them in
//! order; a client may pipeline many queries without waiting (RFC 7766
//! §6.2.1.1). Connections come in through the listener's [`Gate`]
//! ([`Acceptor`]): caps in total and per client address, the oldest idle
//! connection closed to make room (§6.2.3), and a connection over a cap
//! with none idle accepted and reset at once rather than left in the
//! kernel's backlog.
//!
//! Each phase of a connection has its own deadline, from
//! [`ListenerLimits`]:
//! - idle: waiting for the first octet of the next message, with nothing
//!   buffered and every answer flushed. Only then is the connection idle
//!   in its [`Slot`], so only then may the gate close it for a newcomer.
//! - head: the rest of a message once its first octet has come. A client
//!   that announces a message and sends it slowly, or never, is cut off
//!   whatever its pace (slowloris).
//! - write: a write that makes no progress ([`TimedWrite`]): a client that
//!   sends queries and never reads its answers. The kernel's send buffer
//!   is kept small ([`SEND_BUFFER`]) so that such writes do stall, and the
//!   connection is reset, so the kernel frees the answers it holds at once.
//!
//! A connection also ends when a message must not be answered (responses,
//! garbage) and at shutdown. Timeouts are counted by phase, resets and I/O
//! errors as such, in the listener's metrics.
//!
//! UPDATE messages go through [`UpdateQueue::intake`] like UDP ones: only
//! a signed one is queued for the writer; the connection waits for its
//! answer.
//!
//! AXFR and IXFR requests go to the transfer service ([`Transfers`]),
//! which streams its answer through the same writer and write deadline;
//! the connection stays busy meanwhile and takes further messages after
//! it (RFC 5936 §4.1).

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;

use sixgate_dns::{Client, Limits, Outcome, Transport, respond_to};
use sixgate_listen::accept::Acceptor;
use sixgate_listen::io::{TimedWrite, is_stalled};
use sixgate_listen::{Gate, ListenerLimits, Phase, Slot};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::SharedCatalog;
use crate::counters::{Counters, Tally};
use crate::queue::{Intake, Reply, UpdateQueue};
use crate::transfer::{Next, Transfers};

/// How long a connection waits for an UPDATE to be processed.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30);
/// The kernel send buffer of a connection (Linux doubles it). Left to
/// itself, Linux grows the send buffer of a peer that does not read up to
/// `tcp_wmem`'s maximum (4 MiB by default): answers pile up there, out of
/// the write deadline's reach, and a thousand such peers pin gigabytes of
/// kernel memory. This holds a largest answer (65535 octets, RFC 1035
/// §4.2.2) and more pipelined ones.
const SEND_BUFFER: usize = 64 * 1024;

/// What every connection of a listener shares.
struct Shared {
    catalog: SharedCatalog,
    limits: Limits,
    phases: ListenerLimits,
    updates: Option<UpdateQueue>,
    transfers: Option<Arc<Transfers>>,
    counters: Arc<Counters>,
}

/// Serves one listener until `shutdown` becomes true, admitting
/// connections through `gate` (one gate for all DNS TCP addresses) under
/// `phases`' deadlines. UPDATEs go to `updates` and zone transfer
/// requests to `transfers`, when given; without, a transfer is answered
/// NOTAUTH like a query no zone here allows. Responses are counted into
/// `counters`, but for zone transfers, which the transfer service counts.
#[allow(clippy::too_many_arguments)] // the listener's parts, each shared with others
pub async fn serve(
    listener: StdListener,
    catalog: SharedCatalog,
    limits: Limits,
    phases: ListenerLimits,
    gate: Arc<Gate>,
    updates: Option<UpdateQueue>,
    transfers: Option<Arc<Transfers>>,
    counters: Arc<Counters>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut acceptor = Acceptor::new(TcpListener::from_std(listener)?, gate);
    let shared = Arc::new(Shared { catalog, limits, phases, updates, transfers, counters });
    let mut conns = JoinSet::new();
    let mut stop = shutdown.clone();
    let stopped = stop.wait_for(|&s| s);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            (stream, peer, slot) = acceptor.next() => {
                sixgate_listen::io::tune(&stream, &phases.tcp);
                let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
                let (shared, mut sd) = (shared.clone(), shutdown.clone());
                conns.spawn(async move {
                    let mut stream = stream;
                    let end = tokio::select! {
                        end = connection(&mut stream, peer, &slot, &shared) => end,
                        _ = sd.wait_for(|&s| s) => End::Shutdown,
                    };
                    if end == End::TimedOut(Phase::Write) {
                        // Reset, not close: a closed socket would keep
                        // the unread answers in the kernel while it waits
                        // for a reader that never comes.
                        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    }
                    end.record(&slot, peer);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = &mut stopped => break,
        }
    }
    // Every connection has seen the signal too and ends at once.
    drop(acceptor);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed it between messages.
    Closed,
    /// A message that gets no answer (a response, garbage): closed.
    Dropped,
    /// Closed by the gate, idle, to make room for a new connection.
    Evicted,
    /// A phase ran out of time.
    TimedOut(Phase),
    /// A reset or another I/O error, a message cut short included.
    Reset,
    /// The server is stopping.
    Shutdown,
}

impl End {
    fn of_write(e: &io::Error) -> End {
        if is_stalled(e) { End::TimedOut(Phase::Write) } else { End::Reset }
    }

    fn record(self, slot: &Slot, peer: SocketAddr) {
        let metrics = slot.gate().metrics();
        match self {
            End::TimedOut(phase) => {
                metrics.timed_out(phase);
                tracing::debug!(%peer, phase = phase.label(), "tcp connection timed out");
            }
            End::Reset => {
                metrics.reset();
                tracing::trace!(%peer, "tcp connection reset");
            }
            _ => {}
        }
    }
}

/// Does `buffered` hold a whole message (prefix and body)?
fn holds_a_message(buffered: &[u8]) -> bool {
    match buffered {
        [hi, lo, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => false,
    }
}

/// Reads one message (its prefix and body) into `msg`.
async fn read_message<R: AsyncRead + Unpin>(r: &mut R, msg: &mut Vec<u8>) -> io::Result<()> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    msg.clear();
    msg.resize(usize::from(u16::from_be_bytes(len)), 0);
    r.read_exact(msg).await?;
    Ok(())
}

pub(crate) async fn write_framed<W: AsyncWrite + Unpin>(w: &mut W, out: &[u8]) -> io::Result<()> {
    w.write_all(&(out.len() as u16).to_be_bytes()).await?;
    w.write_all(out).await
}

/// One connection, from the accept to its end.
async fn connection<S: AsyncRead + AsyncWrite>(
    stream: S,
    peer: SocketAddr,
    slot: &Slot,
    shared: &Shared,
) -> End {
    let phases = &shared.phases;
    let (r, w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut w = BufWriter::new(TimedWrite::new(w, phases.write));
    // Grown to the longest message seen, not 64 KiB for every connection.
    let mut msg = Vec::new();
    let mut out = Vec::with_capacity(4096);
    let mut tally = Tally::default();
    // Counted once queued for the client, like a UDP response.
    let mut count = |response: &[u8]| {
        tally.response(response);
        shared.counters.add(&mut tally);
    };
    loop {
        // Answers to pipelined queries already buffered go out together,
        // in one write; but once no whole message is buffered they go out
        // at once, so that no answer waits for the rest of a split
        // message behind it.
        if !holds_a_message(r.buffer())
            && let Err(e) = w.flush().await
        {
            return End::of_write(&e);
        }
        if r.buffer().is_empty() {
            // Idle: nothing read, nothing unsent. The gate may close this
            // connection for a newcomer from now on (RFC 7766 §6.2.3).
            slot.idle();
            let waited = tokio::select! {
                waited = tokio::time::timeout(phases.idle, async {
                    r.fill_buf().await.map(|b| b.is_empty())
                }) => waited,
                _ = slot.evicted() => return End::Evicted,
            };
            slot.busy();
            match waited {
                Err(_) => return End::TimedOut(Phase::Idle),
                Ok(Err(_)) => return End::Reset,
                Ok(Ok(true)) => return End::Closed,
                Ok(Ok(false)) => {}
            }
        }
        // The first octet is here: the whole message must follow within
        // the head deadline, however it is paced.
        match tokio::time::timeout(phases.head, read_message(&mut r, &mut msg)).await {
            Err(_) => return End::TimedOut(Phase::Head),
            Ok(Err(_)) => return End::Reset,
            Ok(Ok(())) => {}
        }
        if let Some(transfers) = &shared.transfers
            && sixgate_dns::xfr::is_transfer(&msg)
        {
            // The transfer is written behind the answers to the queries
            // before it, in order; the connection stays busy in its slot
            // all along, so the gate never closes it mid-stream.
            let edns_payload = shared.limits.udp_payload;
            match transfers.serve(&shared.catalog, &msg, peer, edns_payload, &mut w, &mut out).await {
                Ok(Next::Continue) => continue,
                Ok(Next::Close) => {
                    let _ = w.flush().await;
                    return End::Dropped;
                }
                Err(e) => return End::of_write(&e),
            }
        }
        if let Some(queue) = &shared.updates {
            let mut answer = None;
            let reply = || {
                let (tx, rx) = oneshot::channel();
                answer = Some(rx);
                Some(Reply::Tcp(tx))
            };
            match queue.intake(&msg, Some(peer), &mut out, reply) {
                Intake::NotUpdate => {}
                Intake::Answer => {
                    count(&out);
                    if let Err(e) = write_framed(&mut w, &out).await {
                        return End::of_write(&e);
                    }
                    continue;
                }
                Intake::Queued => {
                    let Some(rx) = answer else { return End::Dropped };
                    // Answers already computed go out while the writer
                    // works.
                    if let Err(e) = w.flush().await {
                        return End::of_write(&e);
                    }
                    match tokio::time::timeout(UPDATE_TIMEOUT, rx).await {
                        Ok(Ok(resp)) => {
                            count(&resp);
                            if let Err(e) = write_framed(&mut w, &resp).await {
                                return End::of_write(&e);
                            }
                            continue;
                        }
                        _ => return End::Dropped,
                    }
                }
                Intake::Dropped => {
                    let _ = w.flush().await;
                    return End::Dropped;
                }
            }
        }
        let cat = shared.catalog.load();
        let client = Client { ip: peer.ip(), now: crate::cookies::unix_now() };
        let mut outcome =
            respond_to(&cat, &msg, &mut out, Transport::Tcp, &shared.limits, Some(&client)).outcome;
        if outcome == Outcome::Signed {
            let transfers = shared.transfers.as_deref();
            outcome = crate::transfer::answer_signed(
                transfers,
                &cat,
                &msg,
                &mut out,
                Transport::Tcp,
                &shared.limits,
                Some(&client),
            )
            .outcome;
        }
        drop(cat);
        match outcome {
            Outcome::Reply => {
                count(&out);
                if let Err(e) = write_framed(&mut w, &out).await {
                    return End::of_write(&e);
                }
            }
            // answer_signed never says Signed; nothing was written to send.
            Outcome::Drop | Outcome::Signed => {
                if let Err(e) = w.flush().await {
                    return End::of_write(&e);
                }
                return End::Dropped;
            }
        }
    }
}

#[cfg(test)]
#[path = "tcp_tests.rs"]
mod tests;
