//! Deadlines on writes, and the TCP options of long-lived sockets.
//!
//! A peer that sends requests and never reads its answers fills its
//! receive window, then the kernel's send buffer; from then on every write
//! waits. Without a deadline the connection holds its slot forever.
//! [`TimedWrite`] wraps a writer and fails a write, flush or shutdown that
//! has made no progress for its deadline (the anchor: Knot's
//! `tcp-io-timeout`, HAProxy's `timeout client`). Progress, not the whole
//! transfer, is timed: a slow reader that keeps reading is served.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The error a stalled write ends with.
#[derive(Debug, Clone, Copy)]
pub struct WriteStalled(pub Duration);

impl std::fmt::Display for WriteStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the peer read nothing for {} s", self.0.as_secs())
    }
}

impl std::error::Error for WriteStalled {}

/// Did `e` come from a [`TimedWrite`] whose deadline passed?
pub fn is_stalled(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && e.get_ref().is_some_and(|i| i.is::<WriteStalled>())
}

/// A writer whose writes fail after making no progress for a deadline.
///
/// Its timer is taken at the first write that has to wait, and kept from
/// then on: most connections' writes never wait, and a kept-alive
/// connection holds its writers for its whole life.
#[derive(Debug)]
pub struct TimedWrite<W> {
    inner: W,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<W> TimedWrite<W> {
    /// Wraps `inner`; a write with no progress for `limit` fails.
    pub fn new(inner: W, limit: Duration) -> TimedWrite<W> {
        TimedWrite { inner, limit, timer: None, armed: false }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The wrapped writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Runs a write of the caller's own on the wrapped writer (a splice
    /// from a pipe into its socket, say) under the same deadline as
    /// [`AsyncWrite::poll_write`]: Pending arms it, Ready disarms it, and
    /// once it has passed the result is the [`WriteStalled`] error.
    pub fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut W, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let r = write(&mut self.inner, cx);
        self.timed(cx, r)
    }

    /// Called when the inner writer is not ready: arms the deadline on
    /// the first wait, fails once it has passed.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if !self.armed {
            self.armed = true;
            timer.as_mut().reset(Instant::now() + limit);
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, WriteStalled(limit)))
    }

    fn timed<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx).map(Err),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for TimedWrite<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.timed(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.timed(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.timed(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.timed(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Reads pass through untimed: each listener times its reads by phase
/// (a request head, the idle wait), which only it can tell apart.
impl<W: AsyncRead + Unpin> AsyncRead for TimedWrite<W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Makes closing `stream` send a reset (`SO_LINGER` 0): for a peer that
/// stopped reading, whose unsent data would otherwise keep the closed
/// socket, and its buffer, alive in the kernel until `TCP_USER_TIMEOUT`,
/// and which would see the end only after reading all of it.
pub fn reset_on_close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// TCP options for sockets that may live long (tunnels, keep-alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    /// Send keepalive probes after this much silence, so a peer that
    /// vanished is noticed: dropped once `user_timeout` passes without an
    /// answer, or without one, after three probes a third of it apart.
    pub keepalive: Option<Duration>,
    /// `TCP_USER_TIMEOUT` (RFC 5482): drop the connection when sent data
    /// stays unacknowledged this long, instead of retransmitting for
    /// about 15 minutes.
    pub user_timeout: Option<Duration>,
}

/// Applies `opts` to `stream`, and turns Nagle off. Failures are ignored:
/// an option a kernel lacks must not refuse the connection.
///
/// A listening socket may be tuned too: on Linux the connections it
/// accepts inherit these options (the accepted socket is a copy of the
/// listener's), which saves six system calls per connection.
pub fn tune<S: std::os::fd::AsFd>(stream: &S, opts: &TcpOptions) {
    let sock = socket2::SockRef::from(stream);
    let _ = sock.set_tcp_nodelay(true);
    if let Some(idle) = opts.keepalive {
        let mut ka = socket2::TcpKeepalive::new().with_time(idle);
        // With TCP_USER_TIMEOUT the kernel drops the connection once probes
        // go unanswered that long (tcp(7)), whatever their interval and
        // count: two system calls fewer per socket.
        if opts.user_timeout.is_none() {
            ka = ka.with_interval((idle / 3).max(Duration::from_secs(1))).with_retries(3);
        }
        let _ = sock.set_tcp_keepalive(&ka);
    }
    if let Some(t) = opts.user_timeout {
        let _ = sock.set_tcp_user_timeout(Some(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_after_the_deadline() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut w = TimedWrite::new(a, Duration::from_secs(10));
        let started = Instant::now();
        let e = w.write_all(&[0u8; 4096]).await.unwrap_err();
        assert!(is_stalled(&e), "{e}");
        assert!(started.elapsed() >= Duration::from_secs(10));
        // A reader that keeps reading is served, however slowly.
        let mut w = TimedWrite::new(w.into_inner(), Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < 4096 + 64 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                got += b.read(&mut buf).await.unwrap();
            }
            got
        });
        w.write_all(&[1u8; 4096]).await.unwrap();
        w.flush().await.unwrap();
        drop(w);
        assert!(reader.await.unwrap() >= 4096);
    }

    /// A write of the caller's own that never gets ready stalls like any
    /// other, and one that does is passed through.
    #[tokio::test(start_paused = true)]
    async fn a_write_of_its_own_has_the_same_deadline() {
        let (a, _b) = tokio::io::duplex(64);
        let mut w = TimedWrite::new(a, Duration::from_secs(10));
        let started = Instant::now();
        let e = std::future::poll_fn(|cx| w.poll_with(cx, |_, _| Poll::<io::Result<()>>::Pending))
            .await
            .unwrap_err();
        assert!(is_stalled(&e), "{e}");
        assert!(started.elapsed() >= Duration::from_secs(10));
        let n = std::future::poll_fn(|cx| w.poll_with(cx, |_, _| Poll::Ready(Ok(7)))).await.unwrap();
        assert_eq!(n, 7);
    }

    /// Regression: every writer took its timer when it was made, so each
    /// kept-alive proxy connection held two it never used.
    #[tokio::test(start_paused = true)]
    async fn a_writer_takes_its_timer_only_when_a_write_waits() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut w = TimedWrite::new(a, Duration::from_secs(10));
        w.write_all(b"fits").await.unwrap();
        w.flush().await.unwrap();
        assert!(w.timer.is_none(), "no write waited");
        let e = w.write_all(&[0u8; 4096]).await.unwrap_err();
        assert!(is_stalled(&e), "{e}");
        assert!(w.timer.is_some());
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"fits");
    }

    #[tokio::test]
    async fn a_timed_stream_still_reads() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = TimedWrite::new(a, Duration::from_secs(10));
        b.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        s.write_all(b"pong").await.unwrap();
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }

    #[tokio::test]
    async fn a_stream_set_to_reset_ends_with_a_reset() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        reset_on_close(&b);
        drop(b);
        let mut byte = [0u8; 1];
        let e = a.read(&mut byte).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }

    #[tokio::test]
    async fn options_reach_the_socket() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        tune(
            &s,
            &TcpOptions {
                keepalive: Some(Duration::from_secs(60)),
                user_timeout: Some(Duration::from_secs(30)),
            },
        );
        let sock = socket2::SockRef::from(&s);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
        assert_eq!(sock.tcp_user_timeout().unwrap(), Some(Duration::from_secs(30)));
        assert!(s.nodelay().unwrap());
    }

    #[tokio::test]
    async fn accepted_connections_inherit_a_tuned_listeners_options() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let opts = TcpOptions {
            keepalive: Some(Duration::from_secs(60)),
            user_timeout: Some(Duration::from_secs(30)),
        };
        tune(&l, &opts);
        let _c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        let sock = socket2::SockRef::from(&s);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
        assert_eq!(sock.tcp_user_timeout().unwrap(), Some(Duration::from_secs(30)));
        assert!(s.nodelay().unwrap());
    }
}
