//! The TLS side of the proxy (port 443): route by SNI without terminating
//! TLS.
//!
//! The ClientHello is read into a buffer, never consumed: once [`peek`]
//! finds the server name, the connection is routed, the PROXY header (if
//! the hostname wants one) goes to the backend first, then the buffered
//! bytes unchanged, and from then on the two sockets are spliced. The
//! customer's certificate and keys never touch the proxy. The ClientHello
//! must arrive within [`HELLO_DEADLINE`] and [`sni::MAX_CLIENT_HELLO`]
//! octets (plus record headers); a connection without a usable name is
//! closed and counted.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use sixgate_dns::Catalog;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::policy::BackendPolicy;
use crate::route::Routes;
use crate::sni::{self, Peek};

/// How long a client has to send its whole ClientHello.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(5);
/// How long a backend has to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Room for the record headers around a ClientHello of the largest size.
const READ_CAP: usize = sni::MAX_CLIENT_HELLO + 4 * 5 + 4;

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
}

/// Connects to the first backend that accepts, in order (failover on
/// connect errors). A backend at one of sixgate's own listening sockets
/// is skipped, and a connection that turns out to be to itself is closed
/// ([`not_to_itself`]).
pub async fn connect_any(
    backends: &[Ipv6Addr],
    port: u16,
    policy: &BackendPolicy,
) -> Result<TcpStream, String> {
    let mut last = String::from("no backend");
    for b in backends {
        let addr = SocketAddrV6::new(*b, port, 0, 0);
        if let Err(e) = policy.check_socket(addr) {
            last = e.to_string();
            continue;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(SocketAddr::V6(addr))).await {
            Ok(Ok(s)) => match not_to_itself(s) {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("{addr}: {e}"),
            },
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: connect timeout"),
        }
    }
    Err(last)
}

/// Closes a connection whose two ends are one socket. Connecting to a
/// port of the host's own on which nothing listens can meet itself: when
/// the system picks that same port as the source, TCP's simultaneous
/// open (RFC 9293 §3.5) connects the socket to itself, and everything
/// sent comes straight back.
pub(crate) fn not_to_itself(s: TcpStream) -> Result<TcpStream, &'static str> {
    let same =
        |a: SocketAddr, b: SocketAddr| a.ip().to_canonical() == b.ip().to_canonical() && a.port() == b.port();
    match (s.local_addr(), s.peer_addr()) {
        (Ok(l), Ok(p)) if !same(l, p) => Ok(s),
        (Ok(_), Ok(_)) => Err("connected to itself"),
        _ => Err("connection without addresses"),
    }
}

/// Serves one TLS listener until `shutdown`.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    accept_loop(listener, shared, shutdown, |stream, peer, shared| async move {
        connection(stream, peer, &shared).await
    })
    .await
}

/// Accepts connections until `shutdown` and runs `handle` on each in its
/// own task, which ends at shutdown too.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = shutdown.wait_for(|&s| s).await; } => return,
        };
        shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let work = handle(stream, peer, shared.clone());
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = work => {}
                _ = async { let _ = sd.wait_for(|&s| s).await; } => {}
            }
        });
    }
}

async fn connection(mut client: TcpStream, peer: SocketAddr, shared: &Shared) {
    let started = std::time::Instant::now();
    let mut buf = Vec::with_capacity(2048);
    let deadline = tokio::time::Instant::now() + HELLO_DEADLINE;
    let host = loop {
        match sni::peek(&buf) {
            Peek::Sni(h) => break h,
            Peek::NeedMore if buf.len() < READ_CAP => {
                let mut chunk = [0u8; 4096];
                let want = chunk.len().min(READ_CAP - buf.len());
                match tokio::time::timeout_at(deadline, client.read(chunk.get_mut(..want).unwrap_or(&mut [])))
                    .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        return client_error(shared, peer, "closed before the ClientHello");
                    }
                    Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                    Err(_) => return client_error(shared, peer, "ClientHello not complete in time"),
                }
            }
            Peek::NeedMore | Peek::TooLarge => return client_error(shared, peer, "ClientHello too large"),
            Peek::NoSni => return client_error(shared, peer, "no SNI"),
            Peek::NotTls(why) | Peek::Malformed(why) => return client_error(shared, peer, why),
        }
    };
    let catalog = shared.catalog.load();
    let route = match shared.routes.load().route(&catalog, &host, &shared.policy) {
        Ok(r) => r,
        Err(e) => {
            shared.stats.unroutable.fetch_add(1, Ordering::Relaxed);
            tracing::info!(client = %peer, sni = %host, error = %e, "proxy: not routed");
            return;
        }
    };
    drop(catalog);
    let mut backend = match connect_any(&route.backends, route.config.tls_port, &shared.policy).await {
        Ok(b) => b,
        Err(e) => {
            shared.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
            tracing::info!(client = %peer, sni = %host, error = %e, "proxy: no backend accepted");
            return;
        }
    };
    let local = client.local_addr().unwrap_or(peer);
    let header = crate::proxyproto::header(route.config.proxy_protocol, peer, local);
    let backend_addr = backend.peer_addr().ok();
    if backend.write_all(&header).await.is_err() || backend.write_all(&buf).await.is_err() {
        shared.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
        return;
    }
    shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let (up, down) = tokio::io::copy_bidirectional(&mut client, &mut backend).await.unwrap_or((0, 0));
    tracing::info!(
        client = %peer,
        sni = %host,
        backend = ?backend_addr,
        bytes_up = up + buf.len() as u64,
        bytes_down = down,
        ms = started.elapsed().as_millis() as u64,
        "proxy tls"
    );
}

fn client_error(shared: &Shared, peer: SocketAddr, why: &str) {
    shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
    tracing::info!(client = %peer, reason = why, "proxy: connection refused");
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let e = connect_any(&[mapped], port, &policy).await.unwrap_err();
        assert!(e.contains("own listening"), "{e}");
        // Another port of the same address is a backend like any other.
        let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = connect_any(&[mapped], other.local_addr().unwrap().port(), &policy).await.unwrap();
        assert_eq!(b.peer_addr().unwrap().port(), other.local_addr().unwrap().port());
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
        assert_eq!(not_to_itself(s).unwrap_err(), "connected to itself");
    }
}
