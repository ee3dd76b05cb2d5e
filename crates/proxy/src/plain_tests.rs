//! The HTTP shell over loopback sockets, with an in-process backend: the
//! exchange's framing and ordering, and its deadlines in paused time.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use sixgate_dns::{Catalog, Zone, name, zonefile};
use sixgate_listen::{Gate, Limits, ListenerLimits, ListenerMetrics, Phase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;
use crate::policy::{BackendPolicy, Prefix};
use crate::route::{HostConfig, Routes};
use crate::tls::Stats;

/// What the backend got, request by request, as text.
type Seen = Arc<Mutex<Vec<String>>>;

struct Lab {
    proxy: SocketAddr,
    front: Arc<Front>,
    seen: Seen,
    _stop: watch::Sender<bool>,
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
/// target as the body (`/big`: a megabyte; nothing for `/never`).
async fn lab(limits: ListenerLimits) -> Lab {
    let backend = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).await.unwrap();
    let port = backend.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = backend.accept().await {
            tokio::spawn(serve_backend(conn, s.clone()));
        }
    });
    let apex = name::from_text("example.test.", None).unwrap();
    let text = "@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns\napp 60 AAAA ::1\nother 60 AAAA ::1\n";
    let mut catalog = Catalog::new();
    catalog.insert(Arc::new(Zone::build(&apex, zonefile::parse(text, &apex).unwrap(), 1).unwrap()));
    let mut routes = Routes::default();
    for h in ["app", "other"] {
        let config = HostConfig {
            proxy_protocol: 0,
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
        policy: BackendPolicy::new(None),
        stats: Stats::default(),
        forwarded: false,
        backends: Default::default(),
        unique_ids: None,
        access_log: Default::default(),
    });
    let gate =
        Gate::new(Limits { max_connections: 100, per_address: 100 }, Arc::new(ListenerMetrics::new("t")));
    let front = Front::new(gate, limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let (stop, sd) = watch::channel(false);
    tokio::spawn(serve(listener, shared, front.clone(), sd));
    Lab { proxy, front, seen, _stop: stop }
}

async fn serve_backend(mut conn: TcpStream, seen: Seen) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
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
        let body = match target.as_str() {
            "/never" => continue,
            "/big" => vec![b'x'; 1 << 20],
            t => t.as_bytes().to_vec(),
        };
        let answer =
            [format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes(), body];
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

/// A connection to the proxy and the proxy's end of it.
async fn accepted() -> (TcpStream, TcpStream, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (server, peer) = l.accept().await.unwrap();
    (client, server, peer)
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
    let shared = Arc::new(Shared {
        catalog: Default::default(),
        routes: Default::default(),
        policy: BackendPolicy::new(None),
        stats: Stats::default(),
        forwarded: false,
        backends: Default::default(),
        unique_ids: None,
        access_log: Default::default(),
    });
    let task = connection(server, peer, slot, shared, lab.front.clone());
    let size = std::mem::size_of_val(&task);
    assert!(size <= crate::front::CONNECTION_FUTURE, "{size} octets");
}
