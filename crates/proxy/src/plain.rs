//! The plain-HTTP side of the proxy (port 80): route by Host, add
//! X-Forwarded-For on every request.
//!
//! Each request head is read as it arrives ([`HeadReader`]: linear in its
//! size however it is cut) and checked ([`crate::http::parse_head`]:
//! RFC 9112 framing, no ambiguous lengths, no obs-fold, no bare LF, no
//! IP-literal Host). The client's own forwarding headers are removed and
//! `X-Forwarded-For: CLIENT` added ([`crate::http::rewrite_with`]). The body
//! is forwarded exactly as framed (Content-Length, or chunked without its
//! trailer section), so the next head on a keep-alive connection is found
//! where it really starts. A connection is bound to the backend of its
//! first request's Host. A later request for another Host is answered 421
//! once the earlier responses are through, and the connection closes,
//! instead of the request reaching the wrong backend.
//!
//! Responses are relayed unchanged, and their framing is followed
//! ([`crate::http::Responses`]) to know which one answers which request. An upgrade
//! request is forwarded and then nothing more is read from the client
//! until its answer comes. A 101 makes the connection a tunnel
//! (`tunnel`). Any other status leaves it HTTP/1.1, and the
//! requests after it are parsed and rewritten like the first. `Upgrade:
//! h2c` is never an upgrade (RFC 9113 §3.1 deprecates it).
//!
//! Every phase has its deadline, from the [`Front`]'s limits. A whole head
//! must arrive within `head_timeout`: from the accept for the first, from
//! its first octet for the next ones, answered 408. Waiting for the next
//! request with nothing outstanding has `idle_timeout`; such a connection
//! is idle in its slot, and a full listener may close it to make room.
//! Between two reads of a request body the limit is `body_timeout`. A
//! write that makes no progress, either way, has `write_timeout`. Waiting
//! on the backend has `tunnel_timeout` of no traffic either way. Both
//! directions are driven from the connection's one task, with one buffer
//! each.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use sixgate_listen::io::TimedWrite;
use sixgate_listen::ratelog::RateLog;
use sixgate_listen::{ListenerLimits, Phase, Slot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::accesslog::Ending;
use crate::front::{Front, HostSlot};
use crate::http::{Head, HeadError, HeadReader, MAX_HEAD};
use crate::tls::{Shared, connect_backend};
use crate::tunnel::{End, tunnel};

mod buf;
mod exchange;

use buf::Buf;
use exchange::{Exchange, Outcome};

/// Octets read from a client at a time, at first.
const READ_CHUNK: usize = 4096;
/// The client's buffer holds a whole head and a read beyond it.
const CLIENT_BUF: usize = MAX_HEAD + READ_CHUNK;
/// The backend's buffer starts at tokio's copy size. It grows to hold a
/// response head of up to [`crate::http::MAX_RESPONSE_HEAD`], and, while
/// a body streams (each read fills it), up to [`BULK_BUF`]: with Nagle off,
/// every write is a segment of its own, so small writes of a large body
/// cost the kernel many more packets and acknowledgements.
const BACKEND_BUF: usize = 8 * 1024;
/// The most the backend's buffer grows to.
const BULK_BUF: usize = 64 * 1024;
/// After an error answer, how long the client's remaining input is read
/// and dropped, so that closing with unread data (a reset) does not
/// destroy the answer in flight (nginx's `lingering_close`).
const LINGER: Duration = Duration::from_secs(2);
/// At most this much is read while lingering.
const LINGER_MAX: usize = 64 * 1024;

static LOG: RateLog = RateLog::new(5);

/// Serves one plain-HTTP listener until `shutdown`, admitting through
/// `front`.
/// Bind `listener` with [`sixgate_listen::accept::bind_group`] and
/// `front`'s TCP options: its connections take their keepalive from it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    front: Arc<Front>,
    shutdown: watch::Receiver<bool>,
) {
    crate::front::accept_loop(listener, shared, front, shutdown, connection).await
}

/// The status line, headers and body of an answer the proxy gives itself.
fn answer_bytes(status: u16) -> Vec<u8> {
    let reason = match status {
        408 => "Request Timeout",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Bad Request",
    };
    let body = format!("{status} {reason}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers `status` and closes: the write has `write_timeout`, then the
/// client's remaining input is read and dropped for a moment so that the
/// answer is not lost to a reset.
async fn answer(client: &mut TcpStream, status: u16, limits: &ListenerLimits) {
    let mut w = TimedWrite::new(&mut *client, limits.write);
    if w.write_all(&answer_bytes(status)).await.is_err() || w.shutdown().await.is_err() {
        return;
    }
    let until = Instant::now() + LINGER;
    // On the heap: an array here would be part of every connection's
    // future, copied at each spawn.
    let mut sink = vec![0u8; 4096];
    let mut read = 0;
    while read < LINGER_MAX {
        match tokio::time::timeout_at(until, client.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => read += n,
            _ => break,
        }
    }
}

/// The access log line of a first request the proxy answers itself with
/// `status`.
fn log_refused(
    shared: &Shared,
    peer: SocketAddr,
    host: &str,
    head: Head,
    status: u16,
    read_at: Option<std::time::Instant>,
    ending: Ending,
) {
    if shared.access_log.is_on() {
        let len = answer_bytes(status).len() as u64;
        shared.access_log.refused(peer, host, head.method, head.target, status, len, read_at, ending);
    }
}

/// Why the first head did not come.
enum First {
    Closed,
    Reset,
    TimedOut,
    Bad(HeadError),
}

/// Reads the first head into `buf`, within `limit` from the accept.
///
/// No buffer is held before the first octet: a connection that sends
/// nothing costs its task and its socket only. tokio takes an accepted
/// socket as readable before the system has said so, so the first read
/// may find nothing; the buffer it took is given back before the wait.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice in its future
fn first_head<'a>(
    client: &'a TcpStream,
    buf: &'a mut Buf,
    reader: &'a mut HeadReader,
    limit: Duration,
) -> impl Future<Output = Result<Head, First>> + Send + 'a {
    async move {
        let timer = tokio::time::sleep(limit);
        tokio::pin!(timer);
        loop {
            match reader.read(buf.bytes()) {
                Ok(h) => return Ok(h),
                Err(HeadError::Incomplete) => {}
                Err(e) => return Err(First::Bad(e)),
            }
            // The readiness alone, polled in place: no waiter of its own
            // in this future.
            std::future::poll_fn(|cx| match client.poll_read_ready(cx) {
                Poll::Ready(r) => Poll::Ready(r.map_err(|_| First::Reset)),
                Poll::Pending => timer.as_mut().poll(cx).map(|()| Err(First::TimedOut)),
            })
            .await?;
            match client.try_read(buf.room(READ_CHUNK)) {
                Ok(0) => return Err(First::Closed),
                Ok(n) => buf.filled(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => buf.release(),
                Err(_) => return Err(First::Reset),
            }
        }
    }
}

/// One connection's task, spawned as it is. Every connection keeps this
/// future for its whole life, so it holds only what lives that long: its
/// size is bounded by a test. What is larger and lasts a moment (routing
/// and connecting, an answer of the proxy's own, a tunnel) is on the heap
/// while it runs.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice in its future
fn connection(
    mut client: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: Arc<Shared>,
    front: Arc<Front>,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let limits = front.limits();
        // The head and the buffers go straight into the next step. Held
        // in this future across an await (or borrowed in a scope that
        // outlasts one), they would take their room in all its states.
        let next: Pin<Box<dyn Future<Output = Option<Opened<'_>>> + Send + '_>> = {
            let mut cbuf = Buf::new(CLIENT_BUF);
            let mut reader = HeadReader::new();
            match first_head(&client, &mut cbuf, &mut reader, limits.head).await {
                Ok(head) => Box::pin(open(&mut client, peer, &shared, &front, cbuf, reader, head)),
                Err(why) => match first_failed(why, !cbuf.is_empty(), peer, &shared, &front) {
                    Some(status) => Box::pin(refuse(&mut client, status, limits)),
                    None => return,
                },
            }
        };
        let Some(mut opened) = next.await else { return };
        finish(&mut client, &mut opened, &slot, peer, &shared, &front).await
    }
}

/// Counts and logs a first head that did not come; the status to answer
/// with, if any.
fn first_failed(why: First, started: bool, peer: SocketAddr, shared: &Shared, front: &Front) -> Option<u16> {
    let metrics = front.metrics();
    match why {
        First::Closed => None,
        First::Reset => {
            metrics.reset();
            None
        }
        First::TimedOut => {
            metrics.timed_out(Phase::Head);
            started.then_some(408)
        }
        First::Bad(e) => {
            shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = LOG.allow() {
                tracing::info!(client = %peer, error = %e, held_back = held, "proxy http: bad request");
            }
            e.status()
        }
    }
}

/// [`answer`], as a step that opens nothing.
async fn refuse<'a>(client: &mut TcpStream, status: u16, limits: &ListenerLimits) -> Option<Opened<'a>> {
    answer(client, status, limits).await;
    None
}

/// A connection bound to its backend, its exchange ready to run.
struct Opened<'a> {
    backend: TcpStream,
    ex: Box<Exchange<'a>>,
    /// The connection's place under its hostname's cap, held to its end.
    _host: HostSlot,
}

/// Routes a connection by its first head and connects its backend, or
/// answers the client itself (and `None`).
async fn open<'a>(
    client: &mut TcpStream,
    peer: SocketAddr,
    shared: &'a Shared,
    front: &'a Front,
    cbuf: Buf,
    reader: HeadReader,
    head: Head,
) -> Option<Opened<'a>> {
    let limits = front.limits();
    // The start of the first request's access log line.
    let read_at = shared.access_log.is_on().then(std::time::Instant::now);
    let Some(host) = head.host.clone() else {
        shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
        return refuse(client, 400, limits).await;
    };
    // Bind the connection to its first Host's backend.
    let catalog = shared.catalog.load();
    let route = match shared.routes.load().route(&catalog, &host, &shared.policy) {
        Ok(r) => r,
        Err(e) => {
            shared.stats.unroutable.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = LOG.allow() {
                tracing::info!(client = %peer, host = %host, error = %e, held_back = held, "proxy http: not routed");
            }
            log_refused(shared, peer, &host, head, 421, read_at, Ending::Unroutable);
            return refuse(client, 421, limits).await;
        }
    };
    drop(catalog);
    let Some(host_slot) = front.admit_host(&host, peer) else {
        log_refused(shared, peer, &host, head, 503, read_at, Ending::HostCap);
        return refuse(client, 503, limits).await;
    };
    let backend = match connect_backend(shared, front, &route.backends, route.config.http_port).await {
        Ok(b) => b,
        Err(e) => {
            if let Some(held) = LOG.allow() {
                tracing::info!(client = %peer, host = %host, error = %e, held_back = held, "proxy http: no backend accepted");
            }
            log_refused(shared, peer, &host, head, 502, read_at, Ending::NoBackend);
            return refuse(client, 502, limits).await;
        }
    };
    shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let backend_addr = backend.peer_addr().ok();
    // The PROXY header goes out with the first head, in one write.
    let id = shared.connection_id();
    let tlvs = crate::proxyproto::Tlvs::new(&host, id.as_ref());
    // The address the client reached: a system call, made only for a
    // PROXY header.
    let local = if route.config.proxy_protocol == 0 { peer } else { client.local_addr().unwrap_or(peer) };
    let header = crate::proxyproto::header(route.config.proxy_protocol, peer, local, &tlvs);
    // On the heap, as the exchange's future: the connection's own future
    // stays the size of what it holds for its whole life.
    let mut ex = Box::new(Exchange::new(peer, backend_addr, shared, host, head, cbuf, reader, header));
    ex.first_read_at(read_at);
    Some(Opened { backend, ex, _host: host_slot })
}

/// Runs an opened connection's exchange to its end, and the tunnel after
/// it if it switched.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice in its future
fn finish<'a>(
    client: &'a mut TcpStream,
    opened: &'a mut Opened<'_>,
    slot: &'a Slot,
    peer: SocketAddr,
    shared: &'a Shared,
    front: &'a Front,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        let limits = front.limits();
        let metrics = front.metrics();
        let Opened { backend, ex, .. } = opened;
        let outcome = Box::pin(ex.run(client, backend, slot, limits, front.drained())).await;
        if !matches!(outcome, Outcome::Switch) {
            ex.log_end(&outcome);
        }
        match outcome {
            Outcome::Close => {
                let _ = Box::pin(TimedWrite::new(client, limits.write).shutdown()).await;
            }
            Outcome::Answer(status) => Box::pin(answer(client, status, limits)).await,
            Outcome::TimedOut(phase, with_408) => {
                metrics.timed_out(phase);
                if with_408 {
                    Box::pin(answer(client, 408, limits)).await;
                }
            }
            Outcome::Stalled { client: stalled } => {
                metrics.timed_out(Phase::Write);
                // Its unsent data would keep the closed socket alive.
                let stalled = if stalled { &*client } else { &*backend };
                sixgate_listen::io::reset_on_close(stalled);
            }
            Outcome::Evicted => {}
            Outcome::Reset => metrics.reset(),
            Outcome::Backend(e) => {
                shared.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = LOG.allow() {
                    tracing::info!(client = %peer, host = %ex.host(), error = %e, held_back = held, "proxy http: bad response");
                }
            }
            Outcome::Switch => {
                let (to_backend, to_client) = ex.leftovers();
                let ends = Box::pin(tunnel(client, backend, to_backend, to_client, limits)).await;
                let ending = match ends.end {
                    End::Closed => Ending::Closed,
                    End::TimedOut(phase) => {
                        metrics.timed_out(phase);
                        if phase == Phase::Write {
                            sixgate_listen::io::reset_on_close(client);
                            sixgate_listen::io::reset_on_close(backend);
                        }
                        Ending::TimedOut(phase)
                    }
                    End::Failed(e) => {
                        metrics.reset();
                        tracing::debug!(client = %peer, host = %ex.host(), error = %e, "proxy http: tunnel failed");
                        Ending::Reset
                    }
                };
                tracing::debug!(client = %peer, host = %ex.host(), up = ends.up, down = ends.down, "proxy http: tunnel ended");
                ex.log_tunnel_end(ends.up, ends.down, ending);
            }
        }
    }
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
