//! Two sockets spliced both ways, with deadlines: a TLS pass-through, or an
//! HTTP connection after a 101.
//!
//! `tokio::io::copy_bidirectional` ends only when both directions have
//! ended and has no deadline at all. When the backend closes, it
//! half-closes the client and then reads from the client for ever, so a
//! client that neither sends nor closes keeps two descriptors. Here:
//!
//! - no traffic either way for `tunnel` ends the tunnel ([`Phase::Tunnel`],
//!   HAProxy's `timeout tunnel`), measured by [`Quiet`]: within an eighth
//!   of the limit after it, never before;
//! - a write that makes no progress for `write` ends it ([`Phase::Write`]):
//!   a peer that stops reading cannot pin the other;
//! - when one side closes, the other is half-closed, and the direction
//!   that is left has `idle` of no traffic to finish ([`Phase::Idle`],
//!   HAProxy's `timeout client-fin`/`server-fin`). A client that has
//!   nothing more to say may still read a long answer, as long as it
//!   keeps coming.
//!
//! Both directions run in the caller's task, so a tunnel costs no task of
//! its own. Each copies through a buffer of its own until a read fills
//! it; from then on (with splicing on and available) it moves its octets
//! through a pipe ([`Splice`]), held only while they move, and gives the
//! buffer back.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use sixgate_listen::io::{TimedWrite, is_stalled};
use sixgate_listen::{ListenerLimits, Phase};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::time::Instant;

use crate::deadline::{Deadline, Quiet};
use crate::splice::{self, Splice};

/// The buffer of each copying direction starts at tokio's copy buffer
/// size, and doubles after each read that fills it, up to [`BULK`]: with
/// Nagle off, each write is a segment, and a bulk transfer is cheaper in
/// fewer.
const BUF: usize = 8 * 1024;
/// The most a direction's buffer grows to.
const BULK: usize = 64 * 1024;

/// How a tunnel ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Both sides closed.
    Closed,
    /// A deadline passed.
    TimedOut(Phase),
    /// A socket failed (reset, broken pipe).
    Failed(io::Error),
}

/// What a tunnel moved, and how it ended.
#[derive(Debug)]
pub(crate) struct Ends {
    /// Octets written to the backend, the first ones included.
    pub(crate) up: u64,
    /// Octets written to the client, the first ones included.
    pub(crate) down: u64,
    /// Of those, the octets spliced (both ways); the rest were copied.
    pub(crate) spliced: u64,
    pub(crate) end: End,
}

/// One direction: reads into its pipe or buffer, writes it out, and passes
/// the end of the stream on as a half-close.
struct Pump {
    /// The first octets, then (copying) what was read.
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// While this direction splices.
    splice: Option<Splice>,
    /// Splicing is on: a direction copies until a read fills its buffer,
    /// then splices. Most tunnels (a TLS handshake and a small answer)
    /// never do, and a splice costs two system calls and a pipe where a
    /// copy of a small message costs one read and one write (HAProxy's
    /// `option splice-auto` chooses alike).
    may_splice: bool,
    eof: bool,
    done: bool,
    moved: u64,
}

impl Pump {
    fn new(first: &[u8], splice: bool) -> Pump {
        let buf = first.to_vec();
        Pump {
            buf,
            pos: 0,
            len: first.len(),
            splice: None,
            may_splice: splice,
            eof: false,
            done: false,
            moved: 0,
        }
    }

    fn spliced(&self) -> u64 {
        self.splice.as_ref().map_or(0, Splice::moved)
    }

    /// Moves what it can; Ready once the end has been passed on.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut ReadHalf<'_>,
        w: &mut TimedWrite<WriteHalf<'_>>,
        active: &mut bool,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.pos < self.len {
                let pending = self.buf.get(self.pos..self.len).unwrap_or_default();
                let n = ready!(Pin::new(&mut *w).poll_write(cx, pending))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.moved += n as u64;
                *active = true;
                continue;
            }
            if let Some(s) = self.splice.as_mut().filter(|s| s.held() > 0) {
                let n = ready!(w.poll_with(cx, |w, cx| s.poll_drain(cx, w.as_ref())))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.moved += n as u64;
                *active = true;
                continue;
            }
            if self.eof {
                ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if let Some(s) = &mut self.splice {
                // A splicing direction keeps no buffer.
                if !self.buf.is_empty() {
                    self.buf = Vec::new();
                    (self.pos, self.len) = (0, 0);
                }
                match ready!(s.poll_fill(cx, r.as_ref(), usize::MAX)) {
                    Ok(n) => {
                        *active = true;
                        self.eof = n == 0;
                        continue;
                    }
                    // Nothing moved: copy from here on.
                    Err(e) if splice::is_unsupported(&e) => {
                        tracing::debug!(error = %e, "proxy tunnel: cannot splice; copying");
                        self.splice = None;
                        self.may_splice = false;
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if self.buf.len() < BUF {
                self.buf.resize(BUF, 0);
            }
            let mut rb = ReadBuf::new(&mut self.buf);
            ready!(Pin::new(&mut *r).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            let full = rb.remaining() == 0;
            *active = true;
            if n == 0 {
                self.eof = true;
            } else {
                (self.pos, self.len) = (0, n);
                if full && self.may_splice {
                    // A bulk transfer: once this is written, splice.
                    self.splice = Some(Splice::new());
                } else if full && self.buf.len() < BULK {
                    let grown = (self.buf.len() * 2).min(BULK);
                    self.buf.resize(grown, 0);
                }
            }
        }
    }
}

/// Splices `client` and `backend` until both have closed or a deadline
/// passes, writing `to_backend` and `to_client` first.
#[cfg(test)]
pub(crate) async fn tunnel(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    to_backend: &[u8],
    to_client: &[u8],
    limits: &ListenerLimits,
) -> Ends {
    tunnel_with(client, backend, to_backend, to_client, limits, true).await
}

/// Relays `client` and `backend` until both have closed or a deadline
/// passes, writing `to_backend` and `to_client` first: through pipes when
/// `splice`, else through buffers.
pub(crate) async fn tunnel_with(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    to_backend: &[u8],
    to_client: &[u8],
    limits: &ListenerLimits,
    splice: bool,
) -> Ends {
    let (mut cr, cw) = client.split();
    let (mut br, bw) = backend.split();
    let mut cw = TimedWrite::new(cw, limits.write);
    let mut bw = TimedWrite::new(bw, limits.write);
    let mut up = Pump::new(to_backend, splice);
    let mut down = Pump::new(to_client, splice);
    let mut deadline = Deadline::new();
    let mut quiet = Quiet::new(Instant::now());
    let end = poll_fn(|cx| {
        let mut active = false;
        for (pump, r, w) in [(&mut up, &mut cr, &mut bw), (&mut down, &mut br, &mut cw)] {
            if pump.done {
                continue;
            }
            if let Poll::Ready(Err(e)) = pump.poll(cx, r, w, &mut active) {
                return Poll::Ready(if is_stalled(&e) {
                    End::TimedOut(Phase::Write)
                } else {
                    End::Failed(e)
                });
            }
        }
        if up.done && down.done {
            return Poll::Ready(End::Closed);
        }
        if active {
            quiet.event();
        }
        let half = up.done || down.done;
        let limit = if half { limits.idle } else { limits.tunnel };
        loop {
            deadline.set(Some(quiet.next(limit)));
            if deadline.poll(cx).is_pending() {
                return Poll::Pending;
            }
            if quiet.expired(Instant::now(), limit) {
                return Poll::Ready(End::TimedOut(if half { Phase::Idle } else { Phase::Tunnel }));
            }
        }
    })
    .await;
    Ends { up: up.moved, down: down.moved, spliced: up.spliced() + down.spliced(), end }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn limits() -> ListenerLimits {
        ListenerLimits {
            tunnel: Duration::from_secs(3600),
            idle: Duration::from_secs(30),
            write: Duration::from_secs(10),
            ..ListenerLimits::proxy()
        }
    }

    /// Two connected pairs: (client's end, proxy's client side) and (proxy's
    /// backend side, backend's end).
    async fn pairs() -> ((TcpStream, TcpStream), (TcpStream, TcpStream)) {
        async fn pair() -> (TcpStream, TcpStream) {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let (b, _) = l.accept().await.unwrap();
            (a, b)
        }
        (pair().await, pair().await)
    }

    #[tokio::test]
    async fn bytes_pass_both_ways_and_the_first_ones_go_first() {
        let ((mut c, mut pc), (mut pb, mut b)) = pairs().await;
        let relay =
            tokio::spawn(async move { tunnel(&mut pc, &mut pb, b"hello ", b"welcome ", &limits()).await });
        c.write_all(b"backend").await.unwrap();
        let mut got = [0u8; 13];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello backend");
        b.write_all(b"client").await.unwrap();
        let mut got = [0u8; 14];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"welcome client");
        // Closing both ends the tunnel.
        drop(c);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        drop(b);
        let ends = relay.await.unwrap();
        assert!(matches!(ends.end, End::Closed), "{ends:?}");
        assert_eq!((ends.up, ends.down), (13, 14));
    }

    /// Regression: after the backend closed, the client side was read for
    /// ever. The half-closed tunnel ends after `idle` without traffic.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_closes_after_the_backend_did_was_read_for_ever() {
        let ((mut c, mut pc), (mut pb, b)) = pairs().await;
        let relay = tokio::spawn(async move { tunnel(&mut pc, &mut pb, b"", b"", &limits()).await });
        drop(b);
        // The backend's close reaches the client as a half-close.
        let mut byte = [0u8; 1];
        assert_eq!(c.read(&mut byte).await.unwrap(), 0);
        let ends = relay.await.unwrap();
        assert!(matches!(ends.end, End::TimedOut(Phase::Idle)), "{ends:?}");
        drop(c);
    }

    /// Regression: a tunnel with no traffic either way lasted for ever.
    #[tokio::test(start_paused = true)]
    async fn a_silent_tunnel_lasted_for_ever() {
        let ((c, mut pc), (mut pb, b)) = pairs().await;
        let started = Instant::now();
        let ends = tunnel(&mut pc, &mut pb, b"", b"", &limits()).await;
        assert!(matches!(ends.end, End::TimedOut(Phase::Tunnel)), "{ends:?}");
        assert!(started.elapsed() >= Duration::from_secs(3600));
        drop((c, b));
    }

    /// Traffic in either direction keeps the tunnel open.
    #[tokio::test(start_paused = true)]
    async fn traffic_either_way_keeps_a_tunnel_open() {
        let ((mut c, mut pc), (mut pb, mut b)) = pairs().await;
        let mut l = limits();
        l.tunnel = Duration::from_secs(10);
        let relay = tokio::spawn(async move { tunnel(&mut pc, &mut pb, b"", b"", &l).await });
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(8)).await;
            b.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            c.read_exact(&mut byte).await.unwrap();
        }
        assert!(!relay.is_finished());
        let ends = relay.await.unwrap();
        assert!(matches!(ends.end, End::TimedOut(Phase::Tunnel)));
        assert_eq!(ends.down, 5);
    }

    /// Regression: a backend that stopped reading pinned the client's
    /// uploads for ever. A write with no progress ends the tunnel.
    #[tokio::test(start_paused = true)]
    async fn a_backend_that_never_reads_pinned_the_tunnel() {
        let ((mut c, mut pc), (mut pb, b)) = pairs().await;
        let relay = tokio::spawn(async move { tunnel(&mut pc, &mut pb, b"", b"", &limits()).await });
        let upload = tokio::spawn(async move {
            let chunk = vec![0u8; 64 * 1024];
            while c.write_all(&chunk).await.is_ok() {}
        });
        let ends = relay.await.unwrap();
        assert!(matches!(ends.end, End::TimedOut(Phase::Write)), "{ends:?}");
        upload.abort();
        drop(b);
    }

    /// Octets that differ from their neighbours, so that a lost, doubled
    /// or shifted piece does not compare equal.
    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| ((i + seed) % 251) as u8).collect()
    }

    /// Megabytes both ways at once, then a half-close each way: every
    /// octet arrives in order, and `spliced` says which path moved them.
    async fn bulk_both_ways(splice: bool) -> Ends {
        let ((c, mut pc), (mut pb, b)) = pairs().await;
        let relay =
            tokio::spawn(
                async move { tunnel_with(&mut pc, &mut pb, b"first", b"", &limits(), splice).await },
            );
        let (up, down) = (pattern(3 << 20, 1), pattern(5 << 20, 2));
        let side = |mut s: TcpStream, send: Vec<u8>| async move {
            let (mut r, mut w) = s.split();
            let write = async {
                w.write_all(&send).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let read = r.read_to_end(&mut got);
            let ((), n) = tokio::join!(write, read);
            n.unwrap();
            got
        };
        let (at_backend, at_client) = tokio::join!(side(b, down.clone()), side(c, up.clone()));
        assert!(
            at_backend.len() == up.len() + 5 && at_backend[..5] == *b"first" && at_backend[5..] == up[..]
        );
        assert!(at_client == down, "{} octets to the client", at_client.len());
        let ends = relay.await.unwrap();
        assert!(matches!(ends.end, End::Closed), "{ends:?}");
        assert_eq!((ends.up, ends.down), (up.len() as u64 + 5, down.len() as u64));
        ends
    }

    #[tokio::test]
    async fn a_spliced_tunnel_moves_every_octet_both_ways_in_order() {
        let ends = bulk_both_ways(true).await;
        // All but the first octets, which were the proxy's own.
        // Each direction copies one buffer's worth, then splices the rest.
        assert!(ends.spliced > 0 && ends.spliced + 2 * BUF as u64 + 5 >= ends.up + ends.down, "{ends:?}");
    }

    #[tokio::test]
    async fn with_splice_off_a_tunnel_copies() {
        let ends = bulk_both_ways(false).await;
        assert_eq!(ends.spliced, 0);
    }

    /// The deadlines hold on the copy path too: a half-closed tunnel quiet
    /// for `idle` ends, and one with no traffic for `tunnel`.
    #[tokio::test(start_paused = true)]
    async fn with_splice_off_the_deadlines_hold() {
        let ((mut c, mut pc), (mut pb, b)) = pairs().await;
        let relay =
            tokio::spawn(async move { tunnel_with(&mut pc, &mut pb, b"", b"", &limits(), false).await });
        drop(b);
        let mut byte = [0u8; 1];
        assert_eq!(c.read(&mut byte).await.unwrap(), 0);
        let ends = relay.await.unwrap();
        assert!(matches!(ends.end, End::TimedOut(Phase::Idle)), "{ends:?}");
        let ((_c, mut pc), (mut pb, _b)) = pairs().await;
        let started = Instant::now();
        let ends = tunnel_with(&mut pc, &mut pb, b"", b"", &limits(), false).await;
        assert!(matches!(ends.end, End::TimedOut(Phase::Tunnel)), "{ends:?}");
        assert!(started.elapsed() >= Duration::from_secs(3600));
    }
}
