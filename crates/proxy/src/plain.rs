//! The plain-HTTP side of the proxy (port 80): route by Host, add
//! X-Forwarded-For on every request.
//!
//! Each request head is read and checked ([`parse_head`]: RFC 9112 framing,
//! no ambiguous lengths, no obs-fold, no bare LF, no IP-literal Host), the
//! client's own forwarding headers are removed and `X-Forwarded-For: CLIENT`
//! is added ([`rewrite_forwarded`]), then the body is forwarded exactly as
//! framed (Content-Length or chunked), so the next head on a keep-alive
//! connection is found where it really starts. A connection is bound to
//! the backend of its first request's Host: a later request for another
//! Host closes the connection instead of being sent to the wrong backend.
//! Responses are relayed as they come; after an upgrade (101) the
//! connection is a tunnel. ACME HTTP-01 requests pass through like any
//! other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;

use crate::http::{ChunkedDecoder, Framing, HeadError, parse_head, rewrite_forwarded};
use crate::tls::{Shared, connect_any};

/// Bytes read from a client at a time.
const READ_CHUNK: usize = 4096;

/// How long a connection may wait for the next request head.
pub const IDLE: Duration = Duration::from_secs(30);

/// Serves one plain-HTTP listener until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    crate::tls::accept_loop(listener, shared, shutdown, |stream, peer, shared| async move {
        connection(stream, peer, &shared).await
    })
    .await
}

/// Reads more into `buf`; false on EOF, error or timeout.
/// Reads straight into the buffer's spare room: an idle connection holds
/// no read buffer of its own beyond it.
async fn fill(r: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>, timeout: Duration) -> bool {
    buf.reserve(READ_CHUNK);
    matches!(tokio::time::timeout(timeout, r.read_buf(buf)).await, Ok(Ok(n)) if n > 0)
}

/// Answers an error before the connection is bound to a backend (after
/// that, the client's write half belongs to the response relay and errors
/// just close).
async fn answer(client: &mut Option<tokio::net::tcp::OwnedWriteHalf>, status: u16, reason: &str) {
    let Some(client) = client.as_mut() else { return };
    let body = format!("{status} {reason}\n");
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(msg.as_bytes()).await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let local = stream.local_addr().unwrap_or(peer);
    let (mut cr, cw) = stream.into_split();
    let mut cw = Some(cw);
    let mut buf: Vec<u8> = Vec::new();
    let mut bound: Option<(String, tokio::net::tcp::OwnedWriteHalf, tokio::task::JoinHandle<()>)> = None;
    let mut backend_addr = None;
    let started = std::time::Instant::now();
    let mut requests = 0u64;
    loop {
        // One request head.
        let head = loop {
            match parse_head(&buf) {
                Ok(h) => break h,
                Err(HeadError::Incomplete) => {
                    if !fill(&mut cr, &mut buf, IDLE).await {
                        return;
                    }
                }
                Err(e) => {
                    shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(client = %peer, error = %e, "proxy http: bad request");
                    if let Some(status) = e.status() {
                        answer(&mut cw, status, "Bad Request").await;
                    }
                    return;
                }
            }
        };
        let Some(host) = head.host.clone() else {
            shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
            answer(&mut cw, 400, "Bad Request").await;
            return;
        };
        // Bind the connection to its first Host's backend.
        match &bound {
            Some((h, _, _)) if *h == host => {}
            Some((h, _, _)) => {
                tracing::info!(client = %peer, first = %h, then = %host, "proxy http: Host changed mid-connection; closing");
                shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            None => {
                let catalog = shared.catalog.load();
                let route = match shared.routes.load().route(&catalog, &host, &shared.policy) {
                    Ok(r) => r,
                    Err(e) => {
                        shared.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(client = %peer, host = %host, error = %e, "proxy http: not routed");
                        answer(&mut cw, 421, "Misdirected Request").await;
                        return;
                    }
                };
                drop(catalog);
                let backend = match connect_any(&route.backends, route.config.http_port, &shared.policy).await
                {
                    Ok(b) => b,
                    Err(e) => {
                        shared.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(client = %peer, host = %host, error = %e, "proxy http: no backend accepted");
                        answer(&mut cw, 502, "Bad Gateway").await;
                        return;
                    }
                };
                backend_addr = backend.peer_addr().ok();
                let (br, mut bw) = backend.into_split();
                let header = crate::proxyproto::header(route.config.proxy_protocol, peer, local);
                if bw.write_all(&header).await.is_err() {
                    shared.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                // Responses flow back on their own; the client's write half
                // now belongs to the relay.
                let Some(w) = cw.take() else { return };
                bound = Some((host.clone(), bw, relay(br, w)));
            }
        }
        let Some((_, bw, _)) = bound.as_mut() else { return };
        let rewritten = rewrite_forwarded(&head, &buf, peer.ip(), shared.forwarded);
        buf.drain(..head.head_len.min(buf.len()));
        if bw.write_all(&rewritten).await.is_err() {
            return;
        }
        requests += 1;
        tracing::info!(
            client = %peer,
            host = %host,
            backend = ?backend_addr,
            method = %head.method,
            target = %head.target,
            request = requests,
            ms = started.elapsed().as_millis() as u64,
            "proxy http"
        );
        if head.upgrade {
            // Everything after the head is the tunnel's.
            let _ = bw.write_all(&buf).await;
            let _ = tokio::io::copy(&mut cr, bw).await;
            return;
        }
        // The body, exactly as framed.
        match head.framing {
            Framing::ContentLength(mut left) => {
                while left > 0 {
                    if buf.is_empty() && !fill(&mut cr, &mut buf, IDLE).await {
                        return;
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    if bw.write_all(buf.get(..n).unwrap_or(&[])).await.is_err() {
                        return;
                    }
                    buf.drain(..n);
                    left -= n as u64;
                }
            }
            Framing::Chunked => {
                let mut dec = ChunkedDecoder::new();
                loop {
                    if buf.is_empty() && !fill(&mut cr, &mut buf, IDLE).await {
                        return;
                    }
                    let feed = match dec.feed(&buf) {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::info!(client = %peer, error = %e, "proxy http: bad chunked body");
                            return;
                        }
                    };
                    if bw.write_all(buf.get(..feed.consumed).unwrap_or(&[])).await.is_err() {
                        return;
                    }
                    buf.drain(..feed.consumed);
                    if feed.done {
                        break;
                    }
                }
            }
            _ => {}
        }
        if !head.keep_alive {
            // Let the response finish, then close. The backend side is not
            // half-closed first: a server that sees the client go away
            // (nginx does) stops sending the rest of a large response.
            if let Some((_, bw, pump)) = bound.take() {
                let _ = pump.await;
                drop(bw);
            }
            return;
        }
    }
}

/// Relays the backend's responses to the client until either side ends.
fn relay(mut br: OwnedReadHalf, mut w: tokio::net::tcp::OwnedWriteHalf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut br, &mut w).await;
        let _ = w.shutdown().await;
    })
}
