//! DNS over TCP (RFC 7766) on tokio.
//!
//! Each connection reads length-prefixed messages and answers them in
//! order; a client may pipeline many queries without waiting. A connection
//! is closed when idle for too long, when a message does not arrive in
//! full in time, when a message must not be answered (responses, garbage),
//! and at shutdown. The number of open connections is capped.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

use sixgate_dns::{Limits, Outcome, Transport, respond};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};

use crate::SharedCatalog;
use crate::queue::{Job, Reply, UpdateQueue, is_update};

/// How long a connection waits for an UPDATE to be processed.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30);

/// TCP settings.
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    /// Close a connection with no query for this long (RFC 7766 §6.2.3).
    pub idle_timeout: Duration,
    /// Most connections open at once; further ones wait in the backlog.
    pub max_connections: usize,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings { idle_timeout: Duration::from_secs(10), max_connections: 1000 }
    }
}

/// Serves one listener until `shutdown` becomes true.
pub async fn serve(
    listener: StdListener,
    catalog: SharedCatalog,
    limits: Limits,
    settings: TcpSettings,
    updates: Option<UpdateQueue>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "tcp accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let catalog = catalog.clone();
        let updates = updates.clone();
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = connection(stream, catalog, limits, settings, updates) => {
                    if let Err(e) = r {
                        tracing::trace!(error = %e, %peer, "tcp connection ended");
                    }
                }
                _ = sd.changed() => {}
            }
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    catalog: SharedCatalog,
    limits: Limits,
    settings: TcpSettings,
    updates: Option<UpdateQueue>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut w = BufWriter::new(w);
    let mut msg = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    loop {
        // Flush answers before waiting for more: pipelined queries already
        // in the buffer are answered first, in one write.
        if r.buffer().is_empty() {
            w.flush().await?;
        }
        let mut len = [0u8; 2];
        match tokio::time::timeout(settings.idle_timeout, r.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        let len = u16::from_be_bytes(len) as usize;
        let Some(buf) = msg.get_mut(..len) else {
            return Ok(());
        };
        // The whole message must follow promptly: a peer announcing more
        // than it sends is cut off rather than holding the slot.
        match tokio::time::timeout(settings.idle_timeout, r.read_exact(buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        if let Some(queue) = &updates
            && is_update(buf)
        {
            let (tx, rx) = oneshot::channel();
            let answer = match queue.try_send(Job { msg: buf.to_vec(), reply: Reply::Tcp(tx) }) {
                Ok(()) => tokio::time::timeout(UPDATE_TIMEOUT, rx).await.ok().and_then(Result::ok),
                Err(_) => None,
            };
            match answer {
                Some(out) => {
                    w.write_all(&(out.len() as u16).to_be_bytes()).await?;
                    w.write_all(&out).await?;
                    continue;
                }
                None => {
                    w.flush().await?;
                    return Ok(());
                }
            }
        }
        let cat = catalog.load();
        match respond(&cat, buf, &mut out, Transport::Tcp, &limits) {
            Outcome::Reply => {
                w.write_all(&(out.len() as u16).to_be_bytes()).await?;
                w.write_all(&out).await?;
            }
            Outcome::Drop => {
                w.flush().await?;
                return Ok(());
            }
        }
    }
}
