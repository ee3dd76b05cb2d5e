//! The accept loop's step: admission, back-off on errors, counters.
//!
//! `accept(2)` fails when the process is out of file descriptors (EMFILE),
//! the system is (ENFILE), or memory is short (ENOBUFS, ENOMEM). The
//! pending connection stays in the backlog, so retrying at once fails
//! again at once: a loop that only logs and continues spins at full CPU
//! while starving the connections it serves. [`Acceptor`] sleeps after
//! each failure, doubling from [`BACKOFF_MIN`] to [`BACKOFF_MAX`], and
//! starts over after a success; failures are counted and logged at a
//! limited rate.
//!
//! Every connection is accepted, even when the listener is full: one the
//! [`Gate`] refuses is closed at once (with a reset, so no TIME_WAIT is
//! left here), instead of waiting unanswered in the kernel backlog where
//! the client cannot tell a full server from a slow one.
//!
//! [`bind_group`] listens with a backlog of [`BACKLOG`]: `TcpListener::bind`
//! takes the standard library's 128, and a burst of connections beyond
//! that between two accepts has its SYNs dropped, so those clients wait a
//! second for the retransmission (or get SYN cookies). nginx listens with
//! 511, HAProxy with its `maxconn`; the kernel caps it at `somaxconn`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::gate::{Gate, Slot};
use crate::io::TcpOptions;
use crate::ratelog::RateLog;

/// The first pause after a failed accept.
pub const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause after failed accepts in a row.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// The listen backlog of [`bind_group`].
pub const BACKLOG: u32 = 1024;

/// `n` listening sockets on one address (at least one), for `n` threads
/// that accept apart. Each has `SO_REUSEPORT`: the kernel spreads new
/// connections over them by their addresses' hash, so no accept is
/// shared or contended (nginx's `reuseport`). Port 0 picks a free port
/// for the first; the others take the same. Each listens with a backlog
/// of [`BACKLOG`] and `SO_REUSEADDR` (as `TcpListener::bind`), is tuned
/// with `tcp` first, and is non-blocking, to be registered with
/// `TcpListener::from_std` on the runtime of the thread that accepts on
/// it.
///
/// The connections it accepts inherit those options (Linux copies the
/// listening socket), which saves the system calls per connection. They
/// are set before `listen(2)`: a connection completed in the backlog
/// before the listener was tuned is a copy of the untuned socket, and
/// would never get keepalive. An IPv6 address keeps the system's
/// `IPV6_V6ONLY` default, as `TcpListener::bind` does: `[::]:80` takes
/// IPv4 visitors too where the system is dual-stack.
pub fn bind_group(
    addr: SocketAddr,
    tcp: &TcpOptions,
    n: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut out: Vec<std::net::TcpListener> = Vec::with_capacity(n.max(1));
    let mut at = addr;
    for _ in 0..n.max(1) {
        let socket = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        crate::io::tune(&socket, tcp);
        socket.bind(&at.into())?;
        socket.listen(BACKLOG as i32)?;
        socket.set_nonblocking(true)?;
        let l: std::net::TcpListener = socket.into();
        at = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

static ERROR_LOG: RateLog = RateLog::new(1);
static REFUSED_LOG: RateLog = RateLog::new(1);

/// Accepts connections for one listener through its gate.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    gate: Arc<Gate>,
    backoff: Duration,
}

impl Acceptor {
    /// Accepts on `listener`, admitting through `gate`.
    pub fn new(listener: TcpListener, gate: Arc<Gate>) -> Acceptor {
        Acceptor { listener, gate, backoff: Duration::ZERO }
    }

    /// The listener.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// The gate.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// The next admitted connection. Cancel-safe: select on it beside a
    /// shutdown signal.
    pub async fn next(&mut self) -> (TcpStream, SocketAddr, Slot) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff = Duration::ZERO;
                    match self.gate.admit(peer.ip()) {
                        Ok(slot) => return (stream, peer, slot),
                        Err(why) => {
                            if let Some(held) = REFUSED_LOG.allow() {
                                tracing::warn!(
                                    listener = self.gate.metrics().name(),
                                    client = %peer,
                                    reason = %why,
                                    held_back = held,
                                    "connection refused"
                                );
                            }
                            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                            drop(stream);
                        }
                    }
                }
                Err(e) => {
                    self.gate.metrics().accept_errors.fetch_add(1, Ordering::Relaxed);
                    self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                    if let Some(held) = ERROR_LOG.allow() {
                        tracing::warn!(
                            listener = self.gate.metrics().name(),
                            error = %e,
                            pause_ms = self.backoff.as_millis() as u64,
                            held_back = held,
                            "accept failed; pausing"
                        );
                    }
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Limits;
    use crate::metrics::ListenerMetrics;
    use tokio::io::AsyncReadExt;

    /// One listener of [`bind_group`], on this runtime.
    fn bind(addr: SocketAddr, tcp: &TcpOptions) -> std::io::Result<TcpListener> {
        let first = bind_group(addr, tcp, 1)?.into_iter().next().expect("one socket");
        TcpListener::from_std(first)
    }

    async fn listener() -> (TcpListener, SocketAddr) {
        let l = bind("127.0.0.1:0".parse().unwrap(), &TcpOptions { keepalive: None, user_timeout: None })
            .unwrap();
        let a = l.local_addr().unwrap();
        (l, a)
    }

    /// `[::]` keeps the system's IPV6_V6ONLY default, as
    /// `TcpListener::bind` does: a dual-stack system gives it the IPv4
    /// clients too, so `[::]:80` serves IPv4 visitors.
    #[tokio::test]
    async fn an_ipv6_wildcard_takes_ipv4_clients_where_the_system_is_dual_stack() {
        let tcp = TcpOptions { keepalive: None, user_timeout: None };
        let l = bind("[::]:0".parse().unwrap(), &tcp).unwrap();
        let port = l.local_addr().unwrap().port();
        let v6only =
            std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").map_or(true, |s| s.trim() != "0");
        let v4 = TcpStream::connect(("127.0.0.1", port)).await;
        assert_eq!(v4.is_ok(), !v6only, "IPv4 through [::] with bindv6only={v6only}: {v4:?}");
    }

    /// Regression: the proxy tuned its listener when its accept loop
    /// started, after the port was open, so a connection completed in the
    /// backlog before then had no keepalive (a tunnel to a vanished peer
    /// was never noticed).
    #[tokio::test]
    async fn a_connection_completed_before_the_first_accept_has_the_listeners_options() {
        let opts = TcpOptions {
            keepalive: Some(Duration::from_secs(60)),
            user_timeout: Some(Duration::from_secs(30)),
        };
        let l = bind("127.0.0.1:0".parse().unwrap(), &opts).unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        let sock = socket2::SockRef::from(&s);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
        assert_eq!(sock.tcp_user_timeout().unwrap(), Some(Duration::from_secs(30)));
        assert!(s.nodelay().unwrap());
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_is_closed_at_once_not_left_in_the_backlog() {
        let (l, addr) = listener().await;
        let gate =
            Gate::new(Limits { max_connections: 1, per_address: 1 }, Arc::new(ListenerMetrics::new("t")));
        let mut acc = Acceptor::new(l, gate.clone());
        let _first = TcpStream::connect(addr).await.unwrap();
        let (_s, _p, slot) = acc.next().await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        // The acceptor takes the second connection off the backlog and
        // closes it; the client sees the end, not a silent wait.
        let accept = tokio::spawn(async move {
            let _ = acc.next().await;
        });
        let mut b = [0u8; 1];
        let end = tokio::time::timeout(Duration::from_secs(30), second.read(&mut b)).await.unwrap();
        assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
        assert_eq!(gate.metrics().refused_address.load(Ordering::Relaxed), 1);
        drop(slot);
        accept.abort();
    }
}
