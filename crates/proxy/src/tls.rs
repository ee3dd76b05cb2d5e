//! The TLS side of the proxy (port 443): route by SNI without terminating
//! TLS.
//!
//! The ClientHello is read into a buffer, never consumed: once [`sni::peek`]
//! finds the server name, the connection is routed, and the PROXY header
//! (if the hostname wants one) and the buffered bytes go to the backend
//! in one write; from then on the two sockets are spliced (`tunnel`:
//! no traffic either way for `tunnel_timeout`, a write without progress
//! for `write_timeout`, or a half-closed tunnel quiet for `idle_timeout`
//! ends it). The customer's certificate and keys never touch the proxy.
//! The ClientHello must arrive within `handshake_timeout` and
//! [`sni::MAX_CLIENT_HELLO`] octets (plus record headers); a connection
//! without a usable name is closed and counted. Admission (the caps, the
//! per-hostname cap) is the [`Front`]'s.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use arc_swap::ArcSwap;
use sixgate_dns::Catalog;
use sixgate_listen::ratelog::RateLog;
use sixgate_listen::{Phase, Slot};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::accesslog::{AccessLog, Ending};
use crate::backends::Choice;
use crate::front::Front;
use crate::policy::BackendPolicy;
use crate::proxyproto::{Tlvs, UniqueId, UniqueIds};
use crate::route::Routes;
use crate::sni::{self, Peek};
use crate::tunnel::{End, tunnel_with};

/// Room for the record headers around a ClientHello of the largest size.
const READ_CAP: usize = sni::MAX_CLIENT_HELLO + 4 * 5 + 4;

static REFUSED_LOG: RateLog = RateLog::new(5);

/// Counters, split by which side failed.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections spliced to a backend.
    pub forwarded: AtomicU64,
    /// Client side: no or bad ClientHello, too slow, too large.
    pub client_errors: AtomicU64,
    /// Hostname not routable (not enabled, unverified, refused backends).
    pub unroutable: AtomicU64,
    /// Backend side: no backend accepted the connection.
    pub backend_errors: AtomicU64,
    /// Plain HTTP's backend connections: opened, reused from the pools,
    /// closed in them.
    pub pool: crate::plain::PoolStats,
    /// Octets relayed by splice(2), both sides, both directions: tunnels
    /// and large bodies. Counted when a tunnel or connection ends.
    pub spliced: AtomicU64,
    /// Octets relayed through the proxy's buffers, counted alike.
    pub copied: AtomicU64,
}

impl Stats {
    /// A connection or tunnel relayed `moved` octets, `spliced` of them
    /// by splice(2).
    pub(crate) fn relayed(&self, moved: u64, spliced: u64) {
        if spliced > 0 {
            self.spliced.fetch_add(spliced, Ordering::Relaxed);
        }
        self.copied.fetch_add(moved.saturating_sub(spliced), Ordering::Relaxed);
    }
}

/// What the proxy shares between connections.
pub struct Shared {
    /// The catalog DNS serves.
    pub catalog: Arc<ArcSwap<Catalog>>,
    /// The enabled hostnames.
    pub routes: ArcSwap<Routes>,
    /// Which backends may be used.
    pub policy: BackendPolicy,
    /// Counters.
    pub stats: Stats,
    /// Also send `Forwarded: for=CLIENT` (RFC 7239) on plain HTTP.
    pub forwarded: bool,
    /// Which backend address to try first, and when the next
    /// ([`crate::backends`]).
    pub backends: Choice,
    /// Give every connection an ID, sent as `PP2_TYPE_UNIQUE_ID` in PROXY
    /// v2 headers (`[proxy] proxy_v2_unique_id`); `None` for none.
    pub unique_ids: Option<UniqueIds>,
    /// Where each request's (HTTP) and connection's (TLS) line goes.
    pub access_log: AccessLog,
    /// Whether plain HTTP's later requests may use idle backend
    /// connections, and the pools' bounds (`[proxy] backend_reuse`).
    pub reuse: crate::plain::Reuse,
    /// Relay tunnels and large Content-Length bodies with splice(2)
    /// (`[proxy] splice`); they are copied where it is not available.
    pub splice: bool,
}

impl Shared {
    /// Nothing routed, every setting at its default: for tests that need
    /// only a `Shared` to exist.
    #[cfg(test)]
    pub(crate) fn empty() -> Shared {
        Shared {
            catalog: Default::default(),
            routes: Default::default(),
            policy: BackendPolicy::new(None),
            stats: Stats::default(),
            forwarded: false,
            backends: Default::default(),
            unique_ids: None,
            access_log: Default::default(),
            reuse: Default::default(),
            splice: true,
        }
    }

    /// A routed connection's ID, if IDs are configured
    /// ([`Shared::unique_ids`]): for its PROXY v2 header and its log line.
    pub fn connection_id(&self) -> Option<UniqueId> {
        self.unique_ids.as_ref().map(UniqueIds::next)
    }
}

/// Why no backend accepted a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{last}")]
pub struct ConnectError {
    /// The last attempt's failure, with its address.
    pub last: String,
    /// The last attempt ran out of time (rather than being refused).
    pub timed_out: bool,
}

/// Connects to a backend that accepts within `timeout`, in the order
/// `choice` gives (rotated, recently failed last), racing them as RFC
/// 8305 §5 does ([`crate::backends`]). A backend at one of sixgate's own
/// listening sockets is skipped, and a connection that turns out to be to
/// itself is closed ([`not_to_itself`]) and counts as a failure.
pub async fn connect_any(
    backends: &[Ipv6Addr],
    port: u16,
    timeout: Duration,
    policy: &BackendPolicy,
    choice: &Choice,
) -> Result<TcpStream, ConnectError> {
    connect_any_to(backends, port, timeout, policy, choice).await.map(|(s, _)| s)
}

/// [`connect_any`], with the address connected to. The caller has it
/// without a `getpeername` for each connection.
pub(crate) async fn connect_any_to(
    backends: &[Ipv6Addr],
    port: u16,
    timeout: Duration,
    policy: &BackendPolicy,
    choice: &Choice,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let attempt = |addr: SocketAddrV6| async move {
        let to = SocketAddr::V6(addr);
        match TcpStream::connect(to).await {
            Ok(s) => not_to_itself(s, to).map(|s| (s, to)).map_err(|e| format!("{addr}: {e}")),
            Err(e) => Err(format!("{addr}: {e}")),
        }
    };
    // One backend, the common case: no rotation, no race.
    if let [only] = backends {
        let addr = SocketAddrV6::new(*only, port, 0, 0);
        policy.check_socket(addr).map_err(|e| ConnectError { last: e.to_string(), timed_out: false })?;
        return choice.one(addr, timeout, attempt(addr)).await;
    }
    let mut refused = None;
    let mut candidates = choice.order(backends, port);
    candidates.retain(|a| match policy.check_socket(*a) {
        Ok(()) => true,
        Err(e) => {
            refused = Some(e.to_string());
            false
        }
    });
    if candidates.is_empty() {
        return Err(ConnectError {
            last: refused.unwrap_or_else(|| String::from("no backend")),
            timed_out: false,
        });
    }
    choice.race(&candidates, timeout, attempt).await
}

/// Connects one admitted connection to its backends ([`connect_any`]
/// within the listener's `connect_timeout`), counting a failure (and a
/// timeout by phase), and gives the backend socket the listener's TCP
/// options. Each side logs the failure with its own fields.
pub(crate) async fn connect_backend(
    shared: &Shared,
    front: &Front,
    backends: &[Ipv6Addr],
    port: u16,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let limits = front.limits();
    match connect_any_to(backends, port, limits.connect, &shared.policy, &shared.backends).await {
        Ok((b, to)) => {
            sixgate_listen::io::tune(&b, &limits.tcp);
            Ok((b, to))
        }
        Err(e) => {
            shared.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
            if e.timed_out {
                front.metrics().timed_out(Phase::Connect);
            }
            Err(e)
        }
    }
}

/// Closes a connection whose two ends are one socket. Connecting to a
/// port of the host's own on which nothing listens can meet itself: when
/// the system picks that same port as the source, TCP's simultaneous
/// open (RFC 9293 §3.5) connects the socket to itself, and everything
/// sent comes straight back. `to` is the address connected to, which is
/// the peer's: only the local address is asked of the system.
pub(crate) fn not_to_itself(s: TcpStream, to: SocketAddr) -> Result<TcpStream, &'static str> {
    let same =
        |a: SocketAddr, b: SocketAddr| a.ip().to_canonical() == b.ip().to_canonical() && a.port() == b.port();
    match s.local_addr() {
        Ok(l) if !same(l, to) => Ok(s),
        Ok(_) => Err("connected to itself"),
        Err(_) => Err("connection without addresses"),
    }
}

/// Serves one TLS listener until `shutdown`, admitting through `front`.
/// Bind `listener` with [`sixgate_listen::accept::bind_group`] and
/// `front`'s TCP options: its connections take their keepalive from it.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    front: Arc<Front>,
    shutdown: watch::Receiver<bool>,
) {
    crate::front::accept_loop(listener, shared, front, shutdown, connection).await
}

/// Why no name to route by came.
enum NoName {
    Closed,
    Reset,
    TimedOut,
    Refused(&'static str),
}

/// Reads the ClientHello into `buf` until its server name is known, by
/// `deadline`.
///
/// No buffer is held before the first octet: a connection that sends
/// nothing costs its task and its socket only. tokio takes an accepted
/// socket as readable before the system has said so, so the first read
/// may find nothing; the buffer it took is given back before the wait.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice in its future
fn client_hello<'a>(
    client: &'a TcpStream,
    buf: &'a mut Vec<u8>,
    deadline: tokio::time::Instant,
) -> impl Future<Output = Result<String, NoName>> + Send + 'a {
    async move {
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(timer);
        loop {
            match sni::peek(buf) {
                Peek::Sni(h) => return Ok(h),
                Peek::NeedMore if buf.len() < READ_CAP => {}
                Peek::NeedMore | Peek::TooLarge => return Err(NoName::Refused("ClientHello too large")),
                Peek::NoSni => return Err(NoName::Refused("no SNI")),
                Peek::NotTls(why) | Peek::Malformed(why) => return Err(NoName::Refused(why)),
            }
            // The readiness alone, polled in place: no waiter of its own
            // in this future.
            std::future::poll_fn(|cx| match client.poll_read_ready(cx) {
                Poll::Ready(r) => Poll::Ready(r.map_err(|_| NoName::Reset)),
                Poll::Pending => timer.as_mut().poll(cx).map(|()| Err(NoName::TimedOut)),
            })
            .await?;
            // Straight into the buffer's spare room, which never reaches
            // past READ_CAP: no chunk of its own lives in this future.
            if buf.len() == buf.capacity() {
                let room = READ_CAP - buf.len();
                buf.reserve_exact(room.min(buf.len().max(4096)));
            }
            match client.try_read_buf(buf) {
                Ok(0) => return Err(NoName::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if buf.is_empty() {
                        *buf = Vec::new();
                    }
                }
                Err(_) => return Err(NoName::Reset),
            }
        }
    }
}

/// One connection's task, spawned as it is. Every connection that sends
/// nothing keeps this future, so it holds the first phase only (its size
/// is bounded by a test); the tunnel's is on the heap, taken once the
/// server name is known.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice in its future
fn connection(
    client: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    shared: Arc<Shared>,
    front: Arc<Front>,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        // The connection's place under the caps, held to its end.
        let _slot = slot;
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + front.limits().handshake;
        let mut buf = Vec::new();
        let host = match client_hello(&client, &mut buf, deadline).await {
            Ok(h) => h,
            Err(why) => return hello_failed(why, peer, &shared, &front),
        };
        Box::pin(routed(client, peer, &shared, &front, host, buf, started)).await
    }
}

/// Counts and logs a ClientHello that did not come, or that names
/// nothing to route by.
fn hello_failed(why: NoName, peer: SocketAddr, shared: &Shared, front: &Front) {
    let why = match why {
        NoName::Closed => "closed before the ClientHello",
        NoName::Reset => {
            front.metrics().reset();
            "reset before the ClientHello"
        }
        NoName::TimedOut => {
            front.metrics().timed_out(Phase::Handshake);
            "ClientHello not complete in time"
        }
        NoName::Refused(why) => why,
    };
    client_error(shared, peer, why);
}

/// A connection whose server name is known: routes it, connects its
/// backend and splices the two.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice in its future
fn routed<'a>(
    mut client: TcpStream,
    peer: SocketAddr,
    shared: &'a Shared,
    front: &'a Front,
    host: String,
    buf: Vec<u8>,
    started: std::time::Instant,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        let limits = front.limits();
        let metrics = front.metrics();
        let catalog = shared.catalog.load();
        let route = match shared.routes.load().route(&catalog, &host, &shared.policy) {
            Ok(r) => r,
            Err(e) => {
                shared.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = REFUSED_LOG.allow() {
                    tracing::info!(client = %peer, sni = %host, error = %e, held_back = held, "proxy: not routed");
                }
                return shared.access_log.tls(peer, &host, None, 0, 0, started, Ending::Unroutable);
            }
        };
        drop(catalog);
        let Some(_host_slot) = front.admit_host(&host, peer) else {
            return shared.access_log.tls(peer, &host, None, 0, 0, started, Ending::HostCap);
        };
        // On the heap: the race of connections is the largest future here,
        // and it is over once the tunnel starts.
        let connect = connect_backend(shared, front, &route.backends, route.config.tls_port);
        let (mut backend, backend_addr) = match Box::pin(connect).await {
            Ok(b) => b,
            Err(e) => {
                if let Some(held) = REFUSED_LOG.allow() {
                    tracing::info!(client = %peer, sni = %host, error = %e, held_back = held, "proxy: no backend accepted");
                }
                return shared.access_log.tls(peer, &host, None, 0, 0, started, Ending::NoBackend);
            }
        };
        // The address the client reached: a system call, made only for a
        // PROXY header.
        let local = if route.config.proxy_protocol == 0 { peer } else { client.local_addr().unwrap_or(peer) };
        let id = shared.connection_id();
        // The PROXY header and the ClientHello in one write.
        let mut first = crate::proxyproto::header(
            route.config.proxy_protocol,
            peer,
            local,
            &Tlvs::new(&host, id.as_ref()),
        );
        let header_len = first.len() as u64;
        first.extend_from_slice(&buf);
        drop(buf);
        let backend_addr = Some(backend_addr);
        shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        let ends = tunnel_with(&mut client, &mut backend, &first, b"", limits, shared.splice).await;
        shared.stats.relayed(ends.up + ends.down, ends.spliced);
        let ending = match &ends.end {
            End::Closed => Ending::Closed,
            End::TimedOut(phase) => {
                metrics.timed_out(*phase);
                if *phase == Phase::Write {
                    // A peer that stopped reading: its unsent data would keep
                    // the closed socket alive.
                    sixgate_listen::io::reset_on_close(&client);
                    sixgate_listen::io::reset_on_close(&backend);
                }
                Ending::TimedOut(*phase)
            }
            End::Failed(e) => {
                metrics.reset();
                tracing::debug!(client = %peer, sni = %host, error = %e, "proxy tls: tunnel failed");
                Ending::Reset
            }
        };
        // The access log has the line of every connection; this is for
        // debugging.
        tracing::debug!(
            client = %peer,
            sni = %host,
            backend = ?backend_addr,
            bytes_up = ends.up,
            bytes_down = ends.down,
            ms = started.elapsed().as_millis() as u64,
            end = ending.label(),
            "proxy tls"
        );
        // The PROXY header is the proxy's, not the client's.
        let up = ends.up.saturating_sub(header_len);
        shared.access_log.tls(peer, &host, backend_addr, up, ends.down, started, ending);
    }
}

fn client_error(shared: &Shared, peer: SocketAddr, why: &str) {
    shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
    if let Some(held) = REFUSED_LOG.allow() {
        tracing::info!(client = %peer, reason = why, held_back = held, "proxy: connection refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long the tests let a loopback backend take to accept.
    const CONNECT: Duration = Duration::from_secs(3);
    use crate::own::OwnAddresses;

    /// Regression: a backend AAAA at the address and port of one of
    /// sixgate's own listeners was connected to, and the proxy looped
    /// into itself.
    #[tokio::test]
    async fn a_backend_at_one_of_sixgates_own_listeners_is_not_connected_to() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mapped = std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped();
        let policy = BackendPolicy::new(None);
        policy.set_own(OwnAddresses::new(&[listener.local_addr().unwrap()], &[]));
        let e = connect_any(&[mapped], port, CONNECT, &policy, &Choice::default()).await.unwrap_err();
        assert!(e.last.contains("own listening"), "{e}");
        // Another port of the same address is a backend like any other.
        let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b =
            connect_any(&[mapped], other.local_addr().unwrap().port(), CONNECT, &policy, &Choice::default())
                .await
                .unwrap();
        assert_eq!(b.peer_addr().unwrap().port(), other.local_addr().unwrap().port());
    }

    /// The same with several backends: the own listener is dropped before
    /// the race, and the other address is connected.
    #[tokio::test]
    async fn among_several_backends_sixgates_own_listener_is_skipped() {
        let (own, other) = (std::net::Ipv4Addr::new(127, 0, 0, 6), std::net::Ipv4Addr::new(127, 0, 0, 7));
        let (listener, backend, port) = loop {
            let l = TcpListener::bind((own, 0)).await.unwrap();
            let port = l.local_addr().unwrap().port();
            if let Ok(b) = TcpListener::bind((other, port)).await {
                break (l, b, port);
            }
        };
        let policy = BackendPolicy::new(None);
        policy.set_own(OwnAddresses::new(&[listener.local_addr().unwrap()], &[]));
        let choice = Choice::default();
        let both = [own.to_ipv6_mapped(), other.to_ipv6_mapped()];
        for _ in 0..2 {
            let b = connect_any(&both, port, CONNECT, &policy, &choice).await.unwrap();
            assert_eq!(b.peer_addr().unwrap(), SocketAddr::from((other.to_ipv6_mapped(), port)));
        }
        drop(backend);
        let e = connect_any(&[both[0], both[0]], port, CONNECT, &policy, &choice).await.unwrap_err();
        assert!(e.last.contains("own listening"), "{e}");
        // Refused by the policy is not a failure of the backend's.
        assert!(!choice.recently_failed(SocketAddrV6::new(both[0], port, 0, 0)));
    }

    /// Regression: a connection that met itself (TCP simultaneous open on
    /// a free local port) was taken as a backend.
    #[tokio::test]
    async fn a_connection_to_itself_is_closed() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let me = socket.local_addr().unwrap();
        let s = socket.connect(me).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), me, "the system connected the socket to itself");
        assert_eq!(not_to_itself(s, me).unwrap_err(), "connected to itself");
    }

    /// Regression: tokio takes an accepted socket as readable before the
    /// system says so, so the first read reserved 4 KiB and kept them
    /// while the client sent nothing.
    #[tokio::test]
    async fn a_connection_that_sends_nothing_holds_no_buffer() {
        let (mut client, server, _) = crate::testing::accepted().await;
        let mut buf = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        {
            let hello = client_hello(&server, &mut buf, deadline);
            tokio::pin!(hello);
            let polled = std::future::poll_fn(|cx| Poll::Ready(hello.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "nothing was sent");
        }
        assert_eq!(buf.capacity(), 0, "a buffer is held while nothing was sent");
        // Captured by testdata/tls/capture.py.
        let hello = include_bytes!("../../../testdata/tls/curl.bin");
        tokio::io::AsyncWriteExt::write_all(&mut client, hello).await.unwrap();
        let name = client_hello(&server, &mut buf, deadline).await.ok().unwrap();
        assert_eq!(name, "www.capture.test");
    }

    /// Every connection keeps its task's future for its whole life
    /// ([`crate::front::CONNECTION_FUTURE`]). Regression: with the backend
    /// connection race and the tunnel in it, the spawned future took 1,352
    /// octets.
    #[tokio::test]
    async fn the_connection_future_holds_only_its_first_phase() {
        let (_client, server, peer) = crate::testing::accepted().await;
        let metrics = Arc::new(sixgate_listen::ListenerMetrics::new("t"));
        let gate =
            sixgate_listen::Gate::new(sixgate_listen::Limits { max_connections: 1, per_address: 1 }, metrics);
        let slot = gate.admit(peer.ip()).unwrap();
        let front = Front::new(gate, sixgate_listen::ListenerLimits::proxy());
        let task = connection(server, peer, slot, Arc::new(Shared::empty()), front);
        let size = std::mem::size_of_val(&task);
        assert!(size <= crate::front::CONNECTION_FUTURE, "{size} octets");
    }
}
