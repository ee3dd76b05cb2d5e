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
//! where it really starts. A connection is bound to its first request's
//! Host. A later request for another Host is answered 421 once the
//! earlier responses are through, and the connection closes, instead of
//! the request reaching the wrong backend. An idle client gives its
//! backend connection to this thread's pool (`pool`), and its later
//! requests go over pooled ones of the same hostname or new ones; with
//! `backend_reuse = "idempotent"` (the default) so does a first request
//! that can be sent again, and a client's `Connection: close` ends only
//! its own connection. With `"safe"` a first request always has a backend
//! connection of its own.
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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
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
use crate::front::Front;
use crate::http::{Head, HeadError, HeadReader, MAX_HEAD, Version};
use crate::route::{Route, RouteError, Routes};
use crate::tls::{Shared, connect_backend};
use crate::tunnel::{End, tunnel_with};
use sixgate_dns::Catalog;

mod buf;
mod exchange;
mod pool;

pub use pool::{DEFAULT_GRACE, DEFAULT_IDLE, DEFAULT_MAX, DEFAULT_MAX_PER_HOST, PoolStats, Reuse, ReuseMode};

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
    // This thread's idle backend connections: purged on a timer, closed
    // at the drain.
    let purge = pool::purge(shared.reuse, &shared.stats.pool, front.drained());
    let accept = crate::front::accept_loop(listener, shared.clone(), front.clone(), shutdown, connection);
    tokio::join!(purge, accept);
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

/// The route table and catalog a connection's route was read from. A
/// later request is routed again only when either has changed since: a
/// `Weak` keeps its allocation, so an equal pointer is the same snapshot.
struct Seen {
    routes: Weak<Routes>,
    catalog: Weak<Catalog>,
}

impl Seen {
    /// Routes `host` from the current snapshots, and remembers them.
    fn route(shared: &Shared, host: &str) -> (Result<Route, RouteError>, Seen) {
        let catalog = shared.catalog.load();
        let routes = shared.routes.load();
        let route = routes.route(&catalog, host, &shared.policy);
        (route, Seen { routes: Arc::downgrade(&routes), catalog: Arc::downgrade(&catalog) })
    }

    fn is_current(&self, shared: &Shared) -> bool {
        std::ptr::eq(self.routes.as_ptr(), Arc::as_ptr(&shared.routes.load()))
            && std::ptr::eq(self.catalog.as_ptr(), Arc::as_ptr(&shared.catalog.load()))
    }
}

/// A backend connection for one request or more.
struct Bound {
    stream: TcpStream,
    addr: Option<SocketAddr>,
    /// Taken from the pool.
    reused: bool,
    /// May go to the pool when idle: reuse is on and no PROXY header
    /// went over it.
    reuse: bool,
    /// The PROXY header it starts with, if any.
    header: Vec<u8>,
}

/// A pooled connection for a later request of `host`, to an address its
/// current `route` still has, if reuse is on for it.
fn pooled(shared: &Shared, host: &str, route: &Route) -> Option<Bound> {
    if !shared.reuse.is_on() || route.config.proxy_protocol != 0 {
        return None;
    }
    let port = route.config.http_port;
    let allowed = |a: SocketAddr| {
        a.port() == port && matches!(a.ip(), std::net::IpAddr::V6(ip) if route.backends.contains(&ip))
    };
    let (stream, addr) = pool::take(host, allowed, &shared.reuse, &shared.stats.pool)?;
    shared.stats.pool.reused.fetch_add(1, Ordering::Relaxed);
    Some(Bound { stream, addr: Some(addr), reused: true, reuse: true, header: Vec::new() })
}

/// A new backend connection for `host`'s `route`, with the PROXY header it
/// starts with if the route wants one. It may go to the pool once idle
/// unless it has one.
async fn connect(
    client: &TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    front: &Front,
    host: &str,
    route: &Route,
    id: Option<&crate::proxyproto::UniqueId>,
) -> Result<Bound, crate::tls::ConnectError> {
    let reuse = shared.reuse.is_on() && route.config.proxy_protocol == 0;
    let (stream, addr) = connect_backend(shared, front, &route.backends, route.config.http_port).await?;
    shared.stats.pool.opened.fetch_add(1, Ordering::Relaxed);
    let addr = Some(addr);
    // The PROXY header goes out with the first head, in one write.
    let header = if route.config.proxy_protocol == 0 {
        Vec::new()
    } else {
        let tlvs = crate::proxyproto::Tlvs::new(host, id);
        // The address the client reached: a system call, made only for a
        // PROXY header.
        let local = client.local_addr().unwrap_or(peer);
        crate::proxyproto::header(route.config.proxy_protocol, peer, local, &tlvs)
    };
    Ok(Bound { stream, addr, reused: false, reuse, header })
}

/// One connection's task, spawned as it is. Every connection keeps this
/// future for its whole life, so it holds only its first phase: its size
/// is bounded by a test. The rest (routing, connecting, the exchange and
/// its idle waits, an answer of the proxy's own) is on the heap once the
/// first head is in.
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
        // in this future across an await, they would take their room in
        // all its states.
        let next: Pin<Box<dyn Future<Output = Option<Box<Opened<'_>>>> + Send + '_>> = {
            let mut cbuf = Buf::new(CLIENT_BUF);
            let mut reader = HeadReader::new();
            match first_head(&client, &mut cbuf, &mut reader, limits.head).await {
                Ok(head) => Box::pin(bind(&mut client, peer, &shared, &front, cbuf, reader, head)),
                Err(why) => match first_failed(why, !cbuf.is_empty(), peer, &shared, &front) {
                    Some(status) => Box::pin(refuse(&mut client, status, limits)),
                    None => return,
                },
            }
        };
        let Some(bound) = next.await else { return };
        Box::pin(relay(&mut client, peer, slot, &shared, &front, bound)).await
    }
}

/// [`answer`], as a step that binds nothing.
async fn refuse<'a>(client: &mut TcpStream, status: u16, limits: &ListenerLimits) -> Option<Box<Opened<'a>>> {
    answer(client, status, limits).await;
    None
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

/// A connection bound to its backend after its first head, its exchange
/// ready to run.
struct Opened<'a> {
    backend: TcpStream,
    ex: Box<Exchange<'a>>,
    host: String,
    route: Route,
    seen: Seen,
    /// The connection's place under its hostname's cap, held to its end.
    _host_slot: crate::front::HostSlot,
    id: Option<crate::proxyproto::UniqueId>,
}

/// Routes a connection by its first head and binds it to a backend
/// connection, or answers the client itself (and `None`).
async fn bind<'a>(
    client: &mut TcpStream,
    peer: SocketAddr,
    shared: &'a Shared,
    front: &Front,
    cbuf: Buf,
    reader: HeadReader,
    head: Head,
) -> Option<Box<Opened<'a>>> {
    let limits = front.limits();
    // The start of the first request's access log line.
    let read_at = shared.access_log.is_on().then(std::time::Instant::now);
    let Some(host) = head.host.clone() else {
        shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
        answer(&mut *client, 400, limits).await;
        return None;
    };
    // Bind the connection to its first Host.
    let (route, seen) = Seen::route(shared, &host);
    let route = match route {
        Ok(r) => r,
        Err(e) => {
            shared.stats.unroutable.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = LOG.allow() {
                tracing::info!(client = %peer, host = %host, error = %e, held_back = held, "proxy http: not routed");
            }
            log_refused(shared, peer, &host, head, 421, read_at, Ending::Unroutable);
            answer(&mut *client, 421, limits).await;
            return None;
        }
    };
    let Some(_host_slot) = front.admit_host(&host, peer) else {
        log_refused(shared, peer, &host, head, 503, read_at, Ending::HostCap);
        answer(&mut *client, 503, limits).await;
        return None;
    };
    let id = shared.connection_id();
    // HAProxy's `safe` rule: a first request takes a pooled connection,
    // which the backend may be closing as it arrives, only when it can be
    // sent again over a new one (`backend_reuse = "idempotent"`).
    let pooled_first = if shared.reuse.first_may_reuse(&head) && head.version == Version::Http11 {
        pooled(shared, &host, &route)
    } else {
        None
    };
    let first = match pooled_first {
        Some(b) => Ok(b),
        // On the heap: the race of connections is the largest future of
        // a connection, and it is over once one is bound.
        None => Box::pin(connect(client, peer, shared, front, &host, &route, id.as_ref())).await,
    };
    let first = match first {
        Ok(b) => b,
        Err(e) => {
            if let Some(held) = LOG.allow() {
                tracing::info!(client = %peer, host = %host, error = %e, held_back = held, "proxy http: no backend accepted");
            }
            log_refused(shared, peer, &host, head, 502, read_at, Ending::NoBackend);
            answer(&mut *client, 502, limits).await;
            return None;
        }
    };
    shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let backend = first.stream;
    // On the heap, as the exchange's future below: the connection's own
    // future, which every idle connection keeps, stays the size of its
    // first phase.
    let mut ex = Box::new(Exchange::new(
        peer,
        first.addr,
        shared,
        host.clone(),
        head,
        cbuf,
        reader,
        first.header,
        first.reuse,
    ));
    ex.first_read_at(read_at);
    if first.reused {
        ex.bound_to_pooled();
    }
    Some(Box::new(Opened { backend, ex, host, route, seen, _host_slot, id }))
}

/// A bound connection served to its end: requests and answers, idle
/// waits with its backend connection in the pool, and the end. An idle
/// kept-alive connection keeps this future, so it holds only what lasts:
/// the first head's routing and connecting were [`bind`]'s.
async fn relay(
    client: &mut TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: &Shared,
    front: &Front,
    bound: Box<Opened<'_>>,
) {
    let limits = front.limits();
    let Opened { mut backend, mut ex, host, mut route, mut seen, _host_slot, id } = *bound;
    let (outcome, backend) = loop {
        let outcome = Box::pin(ex.run(&mut *client, &mut backend, &slot, limits, front.drained())).await;
        match outcome {
            Outcome::Idle => {}
            Outcome::Stale if ex.can_replay() => {
                // Once only: the new connection is not a pooled one.
                shared.stats.pool.retried.fetch_add(1, Ordering::Relaxed);
                match Box::pin(connect(client, peer, shared, front, &host, &route, id.as_ref())).await {
                    Ok(b) => {
                        ex.replay(b.addr);
                        backend = b.stream;
                        continue;
                    }
                    Err(_) => break (Outcome::Answer(502), None),
                }
            }
            Outcome::Stale => {
                shared.stats.pool.aborted.fetch_add(1, Ordering::Relaxed);
                break (Outcome::Stale, Some(backend));
            }
            // The client's connection ends; the backend's may serve another.
            Outcome::Close if ex.backend_reusable() => {
                to_pool(shared, &host, &ex, backend);
                break (Outcome::Close, None);
            }
            other => break (other, Some(backend)),
        }
        // Idle: the backend connection goes to the pool, and the client
        // holds only its own socket until its next request.
        to_pool(shared, &host, &ex, backend);
        if let Some(end) = ex.next_request(&mut *client, &slot, limits, front.drained()).await {
            break (end, None);
        }
        if let Some(end) = ex.misdirected() {
            break (end, None);
        }
        // A route that changed since is read again: a pooled connection
        // is taken only for an address it still has.
        if !seen.is_current(shared) {
            let (again, now) = Seen::route(shared, &host);
            seen = now;
            match again {
                Ok(r) => route = r,
                Err(e) => {
                    shared.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                    if let Some(held) = LOG.allow() {
                        tracing::info!(client = %peer, host = %host, error = %e, held_back = held, "proxy http: not routed");
                    }
                    if let Some(head) = ex.take_next() {
                        log_refused(shared, peer, &host, head, 421, None, Ending::Unroutable);
                    }
                    break (Outcome::Answer(421), None);
                }
            }
        }
        let next = match pooled(shared, &host, &route) {
            Some(b) => Ok(b),
            None => Box::pin(connect(client, peer, shared, front, &host, &route, id.as_ref())).await,
        };
        match next {
            Ok(b) => {
                ex.rebind(b.addr, b.reused, b.reuse, b.header);
                backend = b.stream;
            }
            Err(e) => {
                if let Some(held) = LOG.allow() {
                    tracing::info!(client = %peer, host = %host, error = %e, held_back = held, "proxy http: no backend accepted");
                }
                if let Some(head) = ex.take_next() {
                    log_refused(shared, peer, &host, head, 502, None, Ending::NoBackend);
                }
                break (Outcome::Answer(502), None);
            }
        }
    };
    Box::pin(finish(outcome, &mut *client, peer, backend, ex, shared, front)).await;
}

/// `backend`, the connection `ex` was bound to, goes to this thread's pool
/// for `host` (closed if its address is not known).
fn to_pool(shared: &Shared, host: &str, ex: &Exchange<'_>, backend: TcpStream) {
    if let Some(addr) = ex.backend_addr() {
        pool::put(host, addr, backend, &shared.reuse, &shared.stats.pool);
    }
}

/// Ends a connection whose exchange ended with `outcome`; `backend` is
/// its backend connection, unless it had gone to the pool.
async fn finish(
    outcome: Outcome,
    client: &mut TcpStream,
    peer: SocketAddr,
    backend: Option<TcpStream>,
    mut ex: Box<Exchange<'_>>,
    shared: &Shared,
    front: &Front,
) {
    let (limits, metrics) = (front.limits(), front.metrics());
    if !matches!(outcome, Outcome::Switch) {
        ex.log_end(&outcome);
    }
    match outcome {
        // Closed without an answer: the client sends the request again,
        // as on any kept-alive connection that closes (RFC 9112 §9.3.1).
        Outcome::Close | Outcome::Stale | Outcome::Idle => {
            let _ = TimedWrite::new(&mut *client, limits.write).shutdown().await;
        }
        Outcome::Answer(status) => answer(client, status, limits).await,
        Outcome::TimedOut(phase, with_408) => {
            metrics.timed_out(phase);
            if with_408 {
                answer(client, 408, limits).await;
            }
        }
        Outcome::Stalled { client: stalled } => {
            metrics.timed_out(Phase::Write);
            // Its unsent data would keep the closed socket alive.
            match (stalled, &backend) {
                (false, Some(b)) => sixgate_listen::io::reset_on_close(b),
                _ => sixgate_listen::io::reset_on_close(client),
            }
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
            let Some(mut backend) = backend else { return };
            let (to_backend, to_client) = ex.leftovers();
            let tunnel = tunnel_with(client, &mut backend, to_backend, to_client, limits, shared.splice);
            let ends = Box::pin(tunnel).await;
            shared.stats.relayed(ends.up + ends.down, ends.spliced);
            let ending = match ends.end {
                End::Closed => Ending::Closed,
                End::TimedOut(phase) => {
                    metrics.timed_out(phase);
                    if phase == Phase::Write {
                        sixgate_listen::io::reset_on_close(client);
                        sixgate_listen::io::reset_on_close(&backend);
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

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
