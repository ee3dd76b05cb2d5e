//! The HTTP shell over loopback sockets, with an in-process backend: the
//! exchange's framing and ordering, and its deadlines in paused time.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use sixgate_dns::{Catalog, Zone, name, zonefile};
use sixgate_listen::{Gate, Limits, ListenerLimits, ListenerMetrics, Phase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;
use crate::policy::Prefix;
use crate::route::{HostConfig, Routes};
use crate::testing::accepted;

/// What the backend got, request by request, as text.
type Seen = Arc<Mutex<Vec<String>>>;

struct Lab {
    proxy: SocketAddr,
    front: Arc<Front>,
    shared: Arc<Shared>,
    seen: Seen,
    /// Connections the backend accepted.
    accepted: Arc<AtomicUsize>,
    _stop: watch::Sender<bool>,
}

impl Lab {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn pool(&self) -> [u64; 5] {
        let p = &self.shared.stats.pool;
        [&p.opened, &p.reused, &p.dead, &p.retried, &p.aborted].map(|c| c.load(Ordering::SeqCst))
    }
}

/// A backend on ::1 like the lab's, counting its connections in `accepted`.
async fn backend(seen: Seen, accepted: Arc<AtomicUsize>) -> u16 {
    let backend = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).await.unwrap();
    let port = backend.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = backend.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_backend(conn, seen.clone()));
        }
    });
    port
}

fn limits() -> ListenerLimits {
    ListenerLimits {
        head: Duration::from_secs(10),
        idle: Duration::from_secs(30),
        body: Duration::from_secs(30),
        write: Duration::from_secs(10),
        tunnel: Duration::from_secs(3600),
        ..ListenerLimits::proxy()
    }
}

/// The proxy on 127.0.0.1 for app.example.test and other.example.test,
/// both routed to one backend on ::1 that answers each request with its
/// target as the body (`/big`: a megabyte; `/pattern`: [`pattern`];
/// `/huge`: 32 megabytes; nothing for `/never`; see [`serve_backend`] for
/// the rest), and pp.example.test, with a PROXY v1 header.
async fn lab(limits: ListenerLimits) -> Lab {
    lab_with(limits, no_grace(Reuse::default()), true).await
}

/// `reuse` with an idle client's backend connection pooled at once, so
/// that a test's next client finds it.
fn no_grace(reuse: Reuse) -> Reuse {
    Reuse { grace: Duration::ZERO, ..reuse }
}

/// A megabyte and a few octets that differ from their neighbours: a
/// body cut or shifted by any number of octets does not compare equal.
fn pattern() -> Vec<u8> {
    (0..(1usize << 20) + 7).map(|i| (i % 251) as u8).collect()
}

/// [`lab`] with `reuse` for the pool, and splice on or off.
async fn lab_with(limits: ListenerLimits, reuse: Reuse, splice: bool) -> Lab {
    let seen: Seen = Arc::default();
    let accepted = Arc::new(AtomicUsize::new(0));
    let port = backend(seen.clone(), accepted.clone()).await;
    let apex = name::from_text("example.test.", None).unwrap();
    let text = "@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns\napp 60 AAAA ::1\nother 60 AAAA ::1\npp 60 AAAA ::1\n";
    let mut catalog = Catalog::new();
    catalog.insert(Arc::new(Zone::build(&apex, zonefile::parse(text, &apex).unwrap(), 1).unwrap()));
    let mut routes = Routes::default();
    for h in ["app", "other", "pp"] {
        let config = HostConfig {
            proxy_protocol: u8::from(h == "pp"),
            http_port: port,
            tls_port: 443,
            verified: true,
            zone: apex.clone().into(),
            prefixes: vec![Prefix::parse("::1/128").unwrap()].into(),
        };
        routes.hosts.insert(name::from_text(&format!("{h}.example.test."), None).unwrap(), config);
    }
    let shared = Arc::new(Shared {
        catalog: Arc::new(ArcSwap::from_pointee(catalog)),
        routes: ArcSwap::from_pointee(routes),
        reuse,
        splice,
        ..Shared::empty()
    });
    let gate =
        Gate::new(Limits { max_connections: 100, per_address: 100 }, Arc::new(ListenerMetrics::new("t")));
    let front = Front::new(gate, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let (stop, sd) = watch::channel(false);
    tokio::spawn(serve(listener, shared.clone(), front.clone(), sd));
    Lab { proxy, front, shared, seen, accepted, _stop: stop }
}

/// Answers each request with its target; `/close` says `Connection:
/// close` (and stays open), `/old` answers in HTTP/1.0 with keep-alive,
/// `/fragile` closes without an answer unless it is the connection's
/// first request. A PROXY v1 line is taken off before the head.
async fn serve_backend(mut conn: TcpStream, seen: Seen) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut index = 0;
    loop {
        if buf.starts_with(b"PROXY ")
            && let Some(end) = buf.windows(2).position(|w| w == b"\r\n")
        {
            buf.drain(..end + 2);
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head: String = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
        buf.drain(..end + 4);
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        seen.lock().unwrap().push(head);
        index += 1;
        let body = match target.as_str() {
            "/never" => continue,
            "/fragile" if index > 1 => return,
            "/big" => vec![b'x'; 1 << 20],
            "/pattern" => pattern(),
            "/huge" => vec![b'x'; 32 << 20],
            t => t.as_bytes().to_vec(),
        };
        let (version, extra) = match target.as_str() {
            "/close" => ("1.1", "Connection: close\r\n"),
            "/old" => ("1.0", "Connection: keep-alive\r\n"),
            // As nginx answers a kept-alive request.
            t if t.starts_with("/kept") => ("1.1", "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"),
            _ => ("1.1", ""),
        };
        let answer = [
            format!("HTTP/{version} 200 OK\r\n{extra}Content-Length: {}\r\n\r\n", body.len()).into_bytes(),
            body,
        ];
        if conn.write_all(&answer.concat()).await.is_err() {
            return;
        }
    }
}

/// One response: the status code and the body (Content-Length framed, or
/// to the end for the proxy's own answers).
async fn response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let len: usize =
        text.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    (status, body)
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(s.read(&mut b).await, Ok(0) | Err(_))
}

#[tokio::test]
async fn pipelined_requests_around_a_declined_upgrade_are_each_parsed_and_answered_in_order() {
    let lab = lab(limits()).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(
        b"GET /a HTTP/1.1\r\nHost: app.example.test\r\n\r\n\
          GET /ws HTTP/1.1\r\nHost: app.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\
          GET /b HTTP/1.1\r\nHost: app.example.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    )
    .await
    .unwrap();
    for want in ["/a", "/ws", "/b"] {
        let (status, body) = response(&mut c).await;
        assert_eq!((status, body), (200, want.as_bytes().to_vec()));
    }
    let seen = lab.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for head in &seen {
        assert!(head.ends_with("X-Forwarded-For: 127.0.0.1\r\n\r\n") && !head.contains("6.6.6.6"), "{head}");
    }
}

/// A client's half-close (FIN after its last request) does not cut the
/// response short: the backend connection stays until it has answered.
#[tokio::test]
async fn a_client_that_half_closes_still_gets_its_whole_response() {
    let lab = lab(limits()).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    c.shutdown().await.unwrap();
    let (status, body) = response(&mut c).await;
    assert_eq!((status, body.len()), (200, 1 << 20));
    assert!(closed(&mut c).await);
}

#[tokio::test]
async fn another_host_is_answered_421_after_the_responses_before_it() {
    let lab = lab(limits()).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(
        b"GET /a HTTP/1.1\r\nHost: app.example.test\r\n\r\n\
          GET /b HTTP/1.1\r\nHost: other.example.test\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(response(&mut c).await, (200, b"/a".to_vec()));
    assert_eq!(response(&mut c).await.0, 421);
    assert!(closed(&mut c).await);
    assert_eq!(lab.seen.lock().unwrap().len(), 1, "the other host's request reached the backend");
}

#[tokio::test(start_paused = true)]
async fn a_kept_alive_connection_is_idle_between_requests_until_idle_timeout() {
    let lab = lab(limits()).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(b"GET /a HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    assert_eq!(response(&mut c).await.0, 200);
    let started = tokio::time::Instant::now();
    assert!(closed(&mut c).await);
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!(lab.front.metrics().timeouts(Phase::Idle), 1);
}

/// Regression: a head had 30 s per read and no deadline of its own, so one
/// octet every 29 s kept it open for days.
#[tokio::test(start_paused = true)]
async fn a_head_that_trickled_in_had_no_deadline() {
    let lab = lab(limits()).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    // The first request, then the next one's head an octet at a time.
    c.write_all(b"GET /a HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    assert_eq!(response(&mut c).await.0, 200);
    let started = tokio::time::Instant::now();
    let (mut r, mut w) = c.into_split();
    let trickle = tokio::spawn(async move {
        let head =
            b"GET /b HTTP/1.1\r\nHost: app.example.test\r\nX-A: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        for &octet in head.iter() {
            if w.write_all(&[octet]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = r.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 408 "), "{:?}", String::from_utf8_lossy(&answer));
    trickle.abort();
    assert!(started.elapsed() >= Duration::from_secs(10) && started.elapsed() < Duration::from_secs(30));
    assert_eq!(lab.front.metrics().timeouts(Phase::Head), 1);
    assert_eq!(lab.seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_backend_that_never_answers_is_given_up_after_tunnel_timeout() {
    let lab = lab(ListenerLimits { tunnel: Duration::from_secs(60), ..limits() }).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(b"GET /never HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    assert!(closed(&mut c).await);
    assert_eq!(lab.front.metrics().timeouts(Phase::Tunnel), 1);
}

async fn get(c: &mut TcpStream, host: &str, path: &str) -> (u16, Vec<u8>) {
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await.unwrap();
    response(c).await
}

/// `safe` reuse: a client's first request has a backend connection of its
/// own, however many are idle in the pool; its later ones take an idle
/// one.
#[tokio::test]
async fn with_safe_reuse_a_later_request_reuses_an_idle_backend_connection_and_a_first_one_never_does() {
    let lab = lab_with(limits(), no_grace(Reuse { mode: ReuseMode::Safe, ..Reuse::default() }), true).await;
    let mut a = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut a, "app.example.test", "/a1").await, (200, b"/a1".to_vec()));
    let mut b = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut b, "app.example.test", "/b1").await, (200, b"/b1".to_vec()));
    assert_eq!(lab.accepted(), 2, "b's first request took a's idle connection");
    for i in 2..5 {
        assert_eq!(get(&mut a, "app.example.test", &format!("/a{i}")).await.0, 200);
        assert_eq!(get(&mut b, "app.example.test", &format!("/b{i}")).await.0, 200);
    }
    assert_eq!(lab.accepted(), 2);
    // Another hostname on the same backend has connections of its own.
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut c, "other.example.test", "/c1").await.0, 200);
    assert_eq!(get(&mut c, "other.example.test", "/c2").await.0, 200);
    assert_eq!(lab.accepted(), 3);
    assert_eq!(lab.pool()[..2], [3, 7], "opened, reused");
}

/// `idempotent` reuse (the default): a first GET takes an idle pooled
/// connection, a first request with a body never does.
#[tokio::test]
async fn a_first_get_takes_an_idle_backend_connection_and_a_first_post_never_does() {
    let lab = lab(limits()).await;
    let mut a = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut a, "app.example.test", "/a1").await, (200, b"/a1".to_vec()));
    let mut b = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut b, "app.example.test", "/b1").await, (200, b"/b1".to_vec()));
    assert_eq!(lab.accepted(), 1, "b's first GET did not take a's idle connection");
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(b"POST /c1 HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 1\r\n\r\nx").await.unwrap();
    assert_eq!(response(&mut c).await.0, 200);
    assert_eq!(lab.accepted(), 2, "a first POST went over a pooled connection");
}

/// Within `backend_pool_grace_ms` an idle kept-alive client keeps its
/// backend connection: its next request goes over it with no round through
/// the pool, and another client's first GET does not take it.
#[tokio::test]
async fn a_client_idle_within_the_grace_keeps_its_backend_connection() {
    let lab = lab_with(limits(), Reuse { grace: Duration::from_secs(600), ..Reuse::default() }, true).await;
    let mut a = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut a, "app.example.test", "/a1").await.0, 200);
    let mut b = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut b, "app.example.test", "/b1").await.0, 200);
    assert_eq!(lab.accepted(), 2, "b's first GET took the connection a still holds");
    for i in 2..5 {
        assert_eq!(get(&mut a, "app.example.test", &format!("/a{i}")).await.0, 200);
    }
    assert_eq!(lab.accepted(), 2);
    assert_eq!(lab.pool()[..2], [2, 0], "opened, reused: a's requests went through the pool");
}

/// The client's `Connection: close` is its own hop's: the backend gets the
/// request without it, and its connection goes to the pool for the next
/// client, whose connection the proxy closed as asked.
#[tokio::test]
async fn a_clients_connection_close_leaves_the_backend_connection_in_the_pool() {
    let lab = lab(limits()).await;
    for i in 0..3 {
        let mut a = TcpStream::connect(lab.proxy).await.unwrap();
        let req = format!("GET /kept{i} HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n");
        a.write_all(req.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), a.read_to_end(&mut all))
            .await
            .expect("the client's connection was not closed after its close request")
            .unwrap();
        let all = String::from_utf8_lossy(&all);
        assert!(all.starts_with("HTTP/1.1 200 "), "{all:?}");
        assert!(all.contains("\r\nConnection: close\r\n"), "the answer did not say close: {all:?}");
        assert!(!all.contains("keep-alive") && !all.contains("Keep-Alive"), "{all:?}");
        assert!(all.ends_with(&format!("\r\n\r\n/kept{i}")), "{all:?}");
    }
    let seen = lab.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|h| !h.to_ascii_lowercase().contains("connection: close")),
        "the client's close reached the backend: {seen:?}"
    );
    assert_eq!(lab.accepted(), 1, "each closing client cost a backend connection");
}

/// A first GET over a pooled connection that the backend closes without
/// an answer is sent again over a new connection, and answered.
#[tokio::test]
async fn a_first_get_over_a_pooled_connection_the_backend_closed_is_sent_again() {
    let lab = lab(limits()).await;
    let mut a = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut a, "app.example.test", "/fragile").await.0, 200);
    drop(a);
    let mut b = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut b, "app.example.test", "/fragile").await, (200, b"/fragile".to_vec()));
    let [opened, reused, _, retried, aborted] = lab.pool();
    assert_eq!((opened, reused, retried, aborted), (2, 1, 1, 0), "opened, reused, retried, aborted");
    assert_eq!(lab.accepted(), 2);
}

/// Neither a `Connection: close` response nor an HTTP/1.0 one is pooled:
/// the connection stays the client's, and its next request goes over it.
#[tokio::test]
async fn a_response_that_ends_its_connection_is_never_pooled() {
    let lab = lab(limits()).await;
    for path in ["/close", "/old"] {
        let mut a = TcpStream::connect(lab.proxy).await.unwrap();
        assert_eq!(get(&mut a, "app.example.test", path).await.0, 200);
        assert_eq!(get(&mut a, "app.example.test", "/next").await.0, 200);
        assert_eq!(get(&mut a, "app.example.test", "/next").await.0, 200);
    }
    assert_eq!((lab.accepted(), lab.pool()[1]), (2, 0), "a connection that said close was reused");
}

#[tokio::test]
async fn a_proxy_protocol_hostname_never_shares_a_backend_connection() {
    let lab = lab(limits()).await;
    let mut a = TcpStream::connect(lab.proxy).await.unwrap();
    for _ in 0..2 {
        assert_eq!(get(&mut a, "pp.example.test", "/a").await.0, 200);
    }
    let mut b = TcpStream::connect(lab.proxy).await.unwrap();
    for _ in 0..2 {
        assert_eq!(get(&mut b, "pp.example.test", "/b").await.0, 200);
    }
    assert_eq!((lab.accepted(), lab.pool()[1]), (2, 0));
}

/// A pooled connection the backend closes as the request arrives: a GET
/// goes again over a new connection, a POST's client connection closes
/// without an answer (its client may send it again, RFC 9112 §9.3.1).
#[tokio::test]
async fn a_request_over_a_pooled_connection_the_backend_closed_is_sent_again_when_it_may_be() {
    let lab = lab(limits()).await;
    let mut a = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut a, "app.example.test", "/fragile").await.0, 200);
    assert_eq!(get(&mut a, "app.example.test", "/fragile").await, (200, b"/fragile".to_vec()));
    assert_eq!((lab.accepted(), lab.pool()[3]), (2, 1), "connections, retries");
    let post = b"POST /fragile HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 2\r\n\r\nhi";
    a.write_all(post).await.unwrap();
    assert!(closed(&mut a).await, "a POST was answered after the backend closed");
    assert_eq!(lab.pool()[4], 1);
}

/// Regression guard for reuse across a route change: a pooled connection
/// to a backend the route no longer has is never taken.
#[tokio::test]
async fn a_pooled_connection_to_a_backend_the_route_dropped_is_not_reused() {
    let lab = lab(limits()).await;
    let mut a = TcpStream::connect(lab.proxy).await.unwrap();
    assert_eq!(get(&mut a, "app.example.test", "/old-route").await.0, 200);
    let seen2: Seen = Arc::default();
    let accepted2 = Arc::new(AtomicUsize::new(0));
    let port2 = backend(seen2.clone(), accepted2.clone()).await;
    let mut routes = (**lab.shared.routes.load()).clone();
    for c in routes.hosts.values_mut() {
        c.http_port = port2;
    }
    lab.shared.routes.store(Arc::new(routes));
    assert_eq!(get(&mut a, "app.example.test", "/new-route").await.0, 200);
    assert_eq!(accepted2.load(Ordering::SeqCst), 1);
    assert!(seen2.lock().unwrap()[0].starts_with("GET /new-route "), "{:?}", seen2.lock().unwrap());
}

/// Waits until the proxy has counted a connection's relayed octets (at
/// its end): (spliced, copied).
async fn relayed(lab: &Lab) -> (u64, u64) {
    let stats = &lab.shared.stats;
    for _ in 0..1000 {
        let (spliced, copied) = (stats.spliced.load(Ordering::Relaxed), stats.copied.load(Ordering::Relaxed));
        if spliced + copied > 0 {
            return (spliced, copied);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the connection's octets were never counted");
}

/// Two requests in one write: the first's megabyte of body is spliced,
/// and ends exactly where its Content-Length says, so the second response,
/// right behind it in the backend's socket, is followed and relayed whole.
#[tokio::test]
async fn a_spliced_body_ends_exactly_where_its_length_says() {
    let lab = lab(limits()).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(
        b"GET /pattern HTTP/1.1\r\nHost: app.example.test\r\n\r\n\
          GET /next HTTP/1.1\r\nHost: app.example.test\r\n\r\n",
    )
    .await
    .unwrap();
    let (status, body) = response(&mut c).await;
    assert_eq!(status, 200);
    assert!(body == pattern(), "the spliced body differs ({} octets)", body.len());
    assert_eq!(response(&mut c).await, (200, b"/next".to_vec()));
    // Still HTTP/1.1 after it: a third request on the same connection.
    c.write_all(b"GET /third HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    assert_eq!(response(&mut c).await, (200, b"/third".to_vec()));
    drop(c);
    let (spliced, copied) = relayed(&lab).await;
    // What came with the head was copied; the rest of the body spliced.
    assert!(((1 << 20) - 64 * 1024..=1 << 20).contains(&spliced), "spliced {spliced}");
    assert!(copied > 0 && spliced + copied > (1 << 20) + 7, "copied {copied}");
}

/// `[proxy] splice = false`: the same exchange, every octet copied.
#[tokio::test]
async fn with_splice_off_a_large_body_is_copied() {
    let lab = lab_with(limits(), no_grace(Reuse::default()), false).await;
    let mut c = TcpStream::connect(lab.proxy).await.unwrap();
    c.write_all(
        b"GET /pattern HTTP/1.1\r\nHost: app.example.test\r\n\r\n\
          GET /next HTTP/1.1\r\nHost: app.example.test\r\n\r\n",
    )
    .await
    .unwrap();
    let (status, body) = response(&mut c).await;
    assert!(status == 200 && body == pattern());
    assert_eq!(response(&mut c).await, (200, b"/next".to_vec()));
    drop(c);
    let (spliced, copied) = relayed(&lab).await;
    assert_eq!(spliced, 0);
    assert!(copied > (1 << 20) + 7, "copied {copied}");
}

/// A client that stops reading a spliced body is cut off after
/// `write_timeout` without progress, as with a copied one.
#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_a_spliced_body_is_cut_off_after_write_timeout() {
    let lab = lab(limits()).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut c = socket.connect(lab.proxy).await.unwrap();
    c.write_all(b"GET /huge HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    let mut some = [0u8; 1024];
    c.read_exact(&mut some).await.unwrap();
    let started = tokio::time::Instant::now();
    while lab.front.metrics().timeouts(Phase::Write) == 0 {
        assert!(started.elapsed() < Duration::from_secs(600), "never cut off");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(10));
    let (spliced, _) = relayed(&lab).await;
    assert!(spliced > 0, "the body was not spliced");
    drop(c);
}

/// Regression: tokio takes an accepted socket as readable before the
/// system says so, so the first read took a 4 KiB buffer and kept it
/// while the client sent nothing: most of the memory of a connection
/// that sends nothing.
#[tokio::test]
async fn a_connection_that_sends_nothing_holds_no_buffer() {
    let (mut client, server, _) = accepted().await;
    let mut buf = Buf::new(CLIENT_BUF);
    let mut reader = HeadReader::new();
    {
        let first = first_head(&server, &mut buf, &mut reader, Duration::from_secs(30));
        tokio::pin!(first);
        let polled = std::future::poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx))).await;
        assert!(polled.is_pending(), "nothing was sent");
    }
    assert!(!buf.is_allocated(), "a buffer is held while nothing was sent");
    client.write_all(b"GET / HTTP/1.1\r\nHost: app.example.test\r\n\r\n").await.unwrap();
    let head = first_head(&server, &mut buf, &mut reader, Duration::from_secs(30)).await.ok().unwrap();
    assert_eq!(head.host.as_deref(), Some("app.example.test"));
}

/// Every connection keeps its task's future for its whole life
/// ([`crate::front::CONNECTION_FUTURE`]). Regression: with the phases after
/// the first head in it, the spawned future took 1,816 octets.
#[tokio::test]
async fn the_connection_future_holds_only_its_first_phase() {
    let lab = lab(limits()).await;
    let (_client, server, peer) = accepted().await;
    let gate = Gate::new(Limits { max_connections: 1, per_address: 1 }, Arc::new(ListenerMetrics::new("t")));
    let slot = gate.admit(peer.ip()).unwrap();
    let task = connection(server, peer, slot, Arc::new(Shared::empty()), lab.front.clone());
    let size = std::mem::size_of_val(&task);
    assert!(size <= crate::front::CONNECTION_FUTURE, "{size} octets");
}
