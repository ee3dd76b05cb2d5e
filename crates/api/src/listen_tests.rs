//! The listener over real loopback sockets: each phase's deadline, the
//! caps, resets and shutdown. Deadlines are short (1 s) and the tests wait
//! for outcomes (a close, a counter) with a generous bound; none asserts
//! how long anything took.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use sixgate_listen::{Gate, Limits, ListenerLimits, ListenerMetrics, Phase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::rustls;

use super::serve;

/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(30);
/// A response far larger than the socket buffers of both sides.
const BIG: usize = 64 << 20;
const SHORT: Duration = Duration::from_secs(1);

struct Server {
    addr: SocketAddr,
    gate: Arc<Gate>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    fn metrics(&self) -> &ListenerMetrics {
        self.gate.metrics()
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }
}

/// Limits with every deadline long, so a test shortens only its own.
fn limits() -> ListenerLimits {
    let mut l = ListenerLimits::api();
    l.caps = Limits { max_connections: 64, per_address: 64 };
    for d in [&mut l.handshake, &mut l.head, &mut l.body, &mut l.idle, &mut l.write] {
        *d = Duration::from_secs(120);
    }
    l
}

/// Requests to `/wait` wait for a permit, counting themselves in.
#[derive(Clone)]
struct Hold {
    permits: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
}

impl Default for Hold {
    fn default() -> Self {
        Hold { permits: Arc::new(Semaphore::new(0)), entered: Arc::default() }
    }
}

fn app(hold: Hold) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![0u8; BIG] }))
        .route("/echo", post(|b: axum::body::Bytes| async move { b.len().to_string() }))
        .route(
            "/wait",
            get(move || {
                let h = hold.clone();
                async move {
                    h.entered.fetch_add(1, Ordering::SeqCst);
                    let _p = h.permits.acquire().await;
                    "done"
                }
            }),
        )
}

async fn start_with(app: Router, limits: ListenerLimits, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gate = Gate::new(limits.caps, Arc::new(ListenerMetrics::new("api")));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, app, tls, gate.clone(), limits, rx));
    Server { addr, gate, stop, task }
}

async fn start(limits: ListenerLimits) -> Server {
    start_with(app(Hold::default()), limits, None).await
}

async fn send(s: &mut TcpStream, path: &str) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
}

/// The next response's status and body; `None` when the connection ends
/// (or fails) before a whole one came.
async fn response(s: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        Some((status, body))
    };
    tokio::time::timeout(PATIENCE, read).await.ok().flatten()
}

/// Does the server close `s` (within [`PATIENCE`])? Whatever it still
/// sends first is read and dropped.
async fn closed(s: &mut TcpStream) -> bool {
    let until_end = async {
        let mut b = [0u8; 4096];
        loop {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, until_end).await.is_ok()
}

/// Polls `f` until it holds or [`PATIENCE`] runs out.
async fn eventually(f: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

fn open(srv: &Server) -> u64 {
    srv.metrics().open.load(Ordering::Relaxed)
}

/// Regression: the API listener had no deadline for a request head, so a
/// client sending one header line now and then (slowloris) held its
/// connection forever.
#[tokio::test]
async fn a_request_head_sent_slowly_is_closed_after_the_head_deadline() {
    let mut l = limits();
    l.head = SHORT;
    let srv = start(l).await;
    let mut s = srv.connect().await;
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let end = tokio::spawn(async move {
        let mut b = [0u8; 256];
        while let Ok(n) = rd.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    });
    // One header line every 100 ms: a head that would take 10 s to come.
    let mut sent = 0;
    while sent < 100 && !end.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if wr.write_all(format!("X-Slow-{sent}: a\r\n").as_bytes()).await.is_err() {
            break;
        }
        sent += 1;
    }
    assert!(tokio::time::timeout(PATIENCE, end).await.is_ok(), "the slow head was never closed");
    assert!(sent < 100, "the whole slow head was read");
    assert!(eventually(|| srv.metrics().timeouts(Phase::Head) == 1).await);
    assert!(eventually(|| open(&srv) == 0).await);
}

/// Regression: a kept-alive connection that sent no further request was
/// never closed.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_deadline() {
    let mut l = limits();
    l.idle = SHORT;
    let srv = start(l).await;
    let mut s = srv.connect().await;
    // Two requests on one connection: kept alive between them.
    for _ in 0..2 {
        send(&mut s, "/").await;
        assert_eq!(response(&mut s).await.map(|r| r.0), Some(200));
    }
    assert!(closed(&mut s).await, "the idle connection was never closed");
    assert!(eventually(|| srv.metrics().timeouts(Phase::Idle) == 1).await);
    assert_eq!(srv.metrics().timeouts(Phase::Head), 0, "{:?}", srv.metrics());
}

/// Regression: the API accepted connections without any cap, so idle ones
/// piled up until the process ran out of descriptors. At the cap, the
/// oldest idle one makes room (RFC 7766 §6.2.3).
#[tokio::test]
async fn connections_over_the_cap_close_the_oldest_idle_one_first() {
    let mut l = limits();
    l.caps = Limits { max_connections: 3, per_address: 3 };
    let srv = start(l).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut s = srv.connect().await;
        send(&mut s, "/").await;
        assert_eq!(response(&mut s).await.map(|r| r.0), Some(200));
        idle.push(s);
    }
    let mut fresh = srv.connect().await;
    send(&mut fresh, "/").await;
    assert_eq!(response(&mut fresh).await.map(|r| r.0), Some(200), "a new client is served at the cap");
    assert!(closed(&mut idle[0]).await, "the oldest idle connection stays open");
    assert_eq!(srv.metrics().evicted.load(Ordering::Relaxed), 1);
    assert_eq!(srv.metrics().accepted.load(Ordering::Relaxed), 4);
    // The others still work.
    send(&mut idle[2], "/").await;
    assert_eq!(response(&mut idle[2]).await.map(|r| r.0), Some(200));
}

/// Regression (no cap): with every connection working on a request, a new
/// one is accepted and closed at once instead of being served beyond the
/// cap.
#[tokio::test]
async fn a_connection_over_the_cap_with_none_idle_is_refused_at_once() {
    let mut l = limits();
    l.caps = Limits { max_connections: 2, per_address: 3 };
    let hold = Hold::default();
    let srv = start_with(app(hold.clone()), l, None).await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = srv.connect().await;
        send(&mut s, "/wait").await;
        busy.push(s);
    }
    assert!(eventually(|| hold.entered.load(Ordering::SeqCst) == 2).await);
    let mut over = srv.connect().await;
    // The server may have closed it before the request is written.
    let _ = over.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(response(&mut over).await, None, "a connection over the cap was served");
    assert_eq!(srv.metrics().refused_global.load(Ordering::Relaxed), 1);
    hold.permits.add_permits(2);
    for s in &mut busy {
        assert_eq!(response(s).await, Some((200, b"done".to_vec())));
    }
}

/// A response is done for the handler before it is on the wire: hyper
/// still holds what the socket has not taken. Until then the connection is
/// not idle, so a new client at the cap does not cut the response short.
#[tokio::test]
async fn a_response_still_being_written_is_not_cut_to_make_room() {
    let mut l = limits();
    l.caps = Limits { max_connections: 1, per_address: 1 };
    let srv = start(l).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut slow = sock.connect(srv.addr).await.unwrap();
    send(&mut slow, "/big").await;
    // The response has started coming.
    let mut first = [0u8; 1];
    assert!(slow.peek(&mut first).await.unwrap() > 0);
    let mut other = srv.connect().await;
    let _ = other.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(response(&mut other).await, None, "the busy connection was closed for a new one");
    let whole = response(&mut slow).await.map(|(status, body)| (status, body.len()));
    assert_eq!(whole, Some((200, BIG)), "the response was cut");
    assert_eq!(srv.metrics().evicted.load(Ordering::Relaxed), 0);
}

/// Regression: a client that sends requests and never reads the answers
/// held its connection (and the response's memory) forever.
#[tokio::test]
async fn a_client_that_never_reads_is_closed_after_the_write_deadline() {
    let mut l = limits();
    l.write = SHORT;
    let srv = start(l).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(srv.addr).await.unwrap();
    send(&mut s, "/big").await;
    assert!(
        eventually(|| srv.metrics().timeouts(Phase::Write) == 1).await,
        "a write that made no progress was never given up"
    );
    assert!(eventually(|| open(&srv) == 0).await);
    drop(s);
}

/// Regression: a request body that stopped coming held its connection
/// forever.
#[tokio::test]
async fn a_request_body_that_stops_coming_is_closed_after_the_body_deadline() {
    let mut l = limits();
    l.body = SHORT;
    let srv = start(l).await;
    let mut s = srv.connect().await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789").await.unwrap();
    assert!(closed(&mut s).await, "the stalled body's connection was never closed");
    assert!(eventually(|| srv.metrics().timeouts(Phase::Body) == 1).await);
}

/// A certificate resolver with nothing to offer: enough for a handshake
/// that never starts.
#[derive(Debug)]
struct NoCertificate;

impl rustls::server::ResolvesServerCert for NoCertificate {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

fn tls_without_certificate() -> Arc<rustls::ServerConfig> {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(NoCertificate));
    Arc::new(cfg)
}

/// Regression: the TLS handshake's deadline was fixed at 10 s and its
/// timeouts were not counted.
#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_closed_after_the_handshake_deadline() {
    let mut l = limits();
    l.handshake = SHORT;
    let srv = start_with(app(Hold::default()), l, Some(tls_without_certificate())).await;
    let mut s = srv.connect().await;
    assert!(closed(&mut s).await, "the silent TLS client was never closed");
    assert!(eventually(|| srv.metrics().timeouts(Phase::Handshake) == 1).await);
    assert!(eventually(|| open(&srv) == 0).await);
}

/// Regression: connections that ended with a reset were not counted.
#[tokio::test]
async fn a_connection_reset_in_the_middle_of_a_request_is_counted() {
    let srv = start(limits()).await;
    let mut s = srv.connect().await;
    s.write_all(b"GET / HTTP/1.1\r\nHost").await.unwrap();
    // Wait until the server holds the connection, then reset it.
    assert!(eventually(|| open(&srv) == 1).await);
    s.set_zero_linger().unwrap();
    drop(s);
    assert!(eventually(|| srv.metrics().reset.load(Ordering::Relaxed) == 1).await);
    assert!(eventually(|| open(&srv) == 0).await);
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_lets_open_requests_finish() {
    let hold = Hold::default();
    let srv = start_with(app(hold.clone()), limits(), None).await;
    let mut working = srv.connect().await;
    send(&mut working, "/wait").await;
    assert!(eventually(|| hold.entered.load(Ordering::SeqCst) == 1).await);
    let mut idle = srv.connect().await;
    send(&mut idle, "/").await;
    assert_eq!(response(&mut idle).await.map(|r| r.0), Some(200));
    srv.stop.send(true).unwrap();
    assert!(closed(&mut idle).await, "an idle connection outlived the shutdown");
    assert!(!srv.task.is_finished(), "the listener ended with a request open");
    hold.permits.add_permits(1);
    assert_eq!(response(&mut working).await, Some((200, b"done".to_vec())));
    assert!(tokio::time::timeout(PATIENCE, srv.task).await.is_ok(), "the listener did not end");
    assert!(TcpStream::connect(srv.addr).await.is_err(), "still listening after shutdown");
}
