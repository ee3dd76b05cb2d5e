//! Serving the API on TCP listeners, over plain HTTP or TLS (rustls).
//!
//! Plain and TLS connections take one path. The API's [`Gate`], shared by
//! all its addresses, admits each one ([`Acceptor`]): caps in total and
//! per client address, the oldest idle connection closed to make room, and
//! a connection over a cap with none idle reset at once rather than left
//! in the backlog. The socket gets its TCP options; writes fail once they
//! make no progress for `write_timeout` ([`TimedWrite`]); TLS must finish
//! its handshake within `handshake_timeout`; then hyper's HTTP/1.1
//! connection serves the router, with a deadline for each phase (a request
//! head, the idle wait between requests, a request body) kept by
//! [`crate::conn`]. Timeouts are counted by phase and resets as such, in
//! the gate's metrics (`/metrics`).
//!
//! On shutdown the listener stops accepting, idle connections close at
//! once and open requests finish, for at most [`DRAIN`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sixgate_listen::accept::Acceptor;
use sixgate_listen::io::{TimedWrite, is_stalled};
use sixgate_listen::{Gate, ListenerLimits, Phase, Slot};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt as _;

use crate::conn::{Conn, DoneBody, PhaseIo, TimedBody};

/// How long open requests may take to finish once shutdown starts; the
/// connections still open then are closed.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Loads a PEM certificate chain and private key into a server config.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut cfg =
        ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("certificate and key do not fit: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves `app` on `listener` until `shutdown` turns true, admitting
/// connections through `gate` (one gate for all the API's addresses)
/// under `limits`; over TLS when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<ServerConfig>>,
    gate: Arc<Gate>,
    limits: ListenerLimits,
    shutdown: watch::Receiver<bool>,
) {
    let mut acceptor = Acceptor::new(listener, gate);
    let tls = tls.map(TlsAcceptor::from);
    let mut conns = JoinSet::new();
    let mut stop = shutdown.clone();
    let stopped = stop.wait_for(|&s| s);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            (stream, peer, slot) = acceptor.next() => {
                sixgate_listen::io::tune(&stream, &limits.tcp);
                let conn = connection(stream, peer, slot, app.clone(), tls.clone(), limits, shutdown.clone());
                conns.spawn(conn);
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = &mut stopped => break,
        }
    }
    // Closing the listening socket: from now on connecting is refused.
    drop(acceptor);
    if !conns.is_empty() {
        tracing::info!(connections = conns.len(), "API draining its connections");
    }
    let drained = tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(connections = conns.len(), "API connections still open after the drain; closing them");
        conns.shutdown().await;
    }
}

/// One connection, from the accept to its end.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ListenerLimits,
    shutdown: watch::Receiver<bool>,
) {
    let io = TimedWrite::new(stream, limits.write);
    let Some(acceptor) = tls else {
        return http(io, peer, Conn::new(slot, limits), app, shutdown).await;
    };
    // A client that has not finished its handshake has no request to
    // lose: the gate may close it to make room.
    slot.idle();
    let mut stop = shutdown.clone();
    let handshake = tokio::select! {
        r = tokio::time::timeout(limits.handshake, acceptor.accept(io)) => r,
        _ = slot.evicted() => return,
        _ = stop.wait_for(|&s| s) => return,
    };
    let metrics = slot.gate().metrics().clone();
    match handshake {
        Ok(Ok(tls)) => http(tls, peer, Conn::new(slot, limits), app, shutdown).await,
        Ok(Err(e)) if is_stalled(&e) => metrics.timed_out(Phase::Write),
        Ok(Err(e)) => {
            metrics.reset();
            tracing::debug!(%peer, error = %e, "API TLS handshake failed");
        }
        Err(_) => {
            metrics.timed_out(Phase::Handshake);
            tracing::debug!(%peer, "API TLS handshake timed out");
        }
    }
}

/// Serves HTTP/1.1 on one connection's byte stream.
async fn http<S>(io: S, peer: SocketAddr, conn: Arc<Conn>, app: Router, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(PhaseIo::new(io, conn.clone()));
    let c = conn.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (conn, app) = (c.clone(), app.clone());
        async move {
            conn.request_started();
            let req = req.map(|b| axum::body::Body::new(TimedBody::new(b, conn.clone())));
            let Ok(resp) = app.oneshot(req).await;
            Ok::<_, Infallible>(resp.map(|b| DoneBody::new(b, conn)))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's head deadline would start with the idle wait and count it as
    // a slow head; crate::conn keeps both deadlines apart instead.
    builder.header_read_timeout(None);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let mut draining = false;
    let end = loop {
        tokio::select! {
            r = served.as_mut() => break r,
            _ = shutdown.wait_for(|&s| s), if !draining => {
                // Open requests finish; an idle connection closes now.
                served.as_mut().graceful_shutdown();
                draining = true;
            }
            // Only an idle connection is closed to make room; dropping it
            // closes the socket.
            _ = conn.slot().evicted() => return,
        }
    };
    let Err(e) = end else { return };
    if let Some(phase) = conn.timed_out() {
        tracing::debug!(%peer, phase = phase.label(), "API connection timed out");
    } else if e.is_incomplete_message() || io_error(&e) {
        conn.slot().gate().metrics().reset();
        tracing::debug!(%peer, error = %e, "API connection reset");
    } else {
        tracing::debug!(%peer, error = %e, "API connection ended with an error");
    }
}

/// Did `e` come from the socket (a reset, a broken pipe)?
fn io_error(e: &hyper::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
#[path = "listen_tests.rs"]
mod tests;
