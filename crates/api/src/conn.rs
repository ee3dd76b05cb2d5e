//! One API connection's phases and their deadlines.
//!
//! hyper parses HTTP/1.1; what it cannot tell us is *which* phase a read
//! belongs to, and its own `header_read_timeout` starts as soon as it waits
//! for a head, so the idle wait between two requests would share the head's
//! deadline and be counted as a slow head. So the connection keeps its own
//! state ([`Conn`]), moved along by three observers:
//!
//! - [`PhaseIo`], under hyper: a read that brings the first octets of a
//!   request ends the wait (the head's deadline starts, the slot is busy);
//!   a read left pending past the current deadline fails the connection
//!   and counts the phase (`head`, `idle`). A write that fails because it
//!   made no progress (`sixgate_listen::io::TimedWrite`, below) counts as
//!   `write`.
//! - the service, when hyper hands it a parsed head: the request is being
//!   worked on, no read deadline applies but the body's.
//! - [`DoneBody`], around the response body: once hyper is done with it,
//!   the connection waits for its next request under the idle deadline,
//!   and once hyper has also flushed what it still held of the response,
//!   it is idle: the gate may close it to make room (RFC 7766 §6.2.3)
//!   without cutting a response short.
//!
//! The request body gets its own deadline between two reads
//! ([`TimedBody`]), nginx's `client_body_timeout`: it runs only while the
//! handler actually waits for body data, so a slow handler never trips it.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use axum::body::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use sixgate_listen::{ListenerLimits, Phase, Slot};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Nothing of the next request has come. `until` is the deadline,
    /// counted as `phase`; `head_until` is when the head must be whole once
    /// it starts, if that is fixed already (a new connection's head is
    /// timed from the accept, not from its first octet).
    Between { until: Instant, phase: Phase, head_until: Option<Instant> },
    /// A head is coming and must be whole by `until`.
    Head { until: Instant },
    /// A request is being worked on.
    Request,
}

/// The shared state of one connection.
#[derive(Debug)]
pub(crate) struct Conn {
    slot: Slot,
    limits: ListenerLimits,
    state: Mutex<State>,
    timed_out: OnceLock<Phase>,
}

#[derive(Debug)]
struct State {
    wait: Wait,
    /// The last read left pending. hyper does not read again after a
    /// response (the socket will wake it), so the read pending since the
    /// request came is woken when the response is done, to start waiting
    /// under the idle deadline instead of the one it was armed with.
    reader: Option<Waker>,
    /// The response is done but hyper may still hold part of it: idle
    /// once hyper has flushed (it flushes the socket only with its own
    /// buffer empty).
    idle_after_flush: bool,
}

impl Conn {
    /// A new connection: its first head is due `limits.head` from now, and
    /// until its first octet it is idle (closing it loses nothing).
    pub(crate) fn new(slot: Slot, limits: ListenerLimits) -> Arc<Conn> {
        let until = Instant::now() + limits.head;
        slot.idle();
        Arc::new(Conn {
            slot,
            limits,
            state: Mutex::new(State {
                wait: Wait::Between { until, phase: Phase::Head, head_until: Some(until) },
                reader: None,
                idle_after_flush: false,
            }),
            timed_out: OnceLock::new(),
        })
    }

    pub(crate) fn slot(&self) -> &Slot {
        &self.slot
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first octets of a request came.
    fn octets_came(&self) {
        let mut st = self.lock();
        if let Wait::Between { head_until, .. } = st.wait {
            st.wait = Wait::Head { until: head_until.unwrap_or_else(|| Instant::now() + self.limits.head) };
            st.idle_after_flush = false;
            self.slot.busy();
        }
    }

    /// hyper parsed a head and calls the service.
    pub(crate) fn request_started(&self) {
        let mut st = self.lock();
        st.wait = Wait::Request;
        st.idle_after_flush = false;
        self.slot.busy();
    }

    /// hyper is done with the response: wait for the next request.
    fn response_done(&self) {
        let until = Instant::now() + self.limits.idle;
        let reader = {
            let mut st = self.lock();
            st.wait = Wait::Between { until, phase: Phase::Idle, head_until: None };
            st.idle_after_flush = true;
            st.reader.take()
        };
        if let Some(w) = reader {
            w.wake();
        }
    }

    /// Everything hyper wrote is in the socket (or under TLS, through it).
    fn flushed(&self) {
        let mut st = self.lock();
        if std::mem::take(&mut st.idle_after_flush) {
            self.slot.idle();
        }
    }

    /// The deadline of a read that is waiting now, if any; `waker` is
    /// kept to be woken when the deadline changes.
    fn read_deadline(&self, waker: &Waker) -> Option<(Instant, Phase)> {
        let mut st = self.lock();
        if !st.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            st.reader = Some(waker.clone());
        }
        match st.wait {
            Wait::Between { until, phase, .. } => Some((until, phase)),
            Wait::Head { until } => Some((until, Phase::Head)),
            Wait::Request => None,
        }
    }

    /// Records that `phase` ran out of time (the first one only: one
    /// connection is one timeout).
    pub(crate) fn time_out(&self, phase: Phase) {
        if self.timed_out.set(phase).is_ok() {
            self.slot.gate().metrics().timed_out(phase);
        }
    }

    /// The phase that ran out of time, if one did.
    pub(crate) fn timed_out(&self) -> Option<Phase> {
        self.timed_out.get().copied()
    }
}

/// The error a read or a body read fails with when its phase ran out of
/// time.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the client sent nothing for the {} deadline", .0.label())]
pub(crate) struct PhaseTimeout(pub(crate) Phase);

/// The connection's byte stream as hyper sees it (see the module docs).
pub(crate) struct PhaseIo<S> {
    inner: S,
    conn: Arc<Conn>,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl<S> PhaseIo<S> {
    pub(crate) fn new(inner: S, conn: Arc<Conn>) -> PhaseIo<S> {
        let timer = Box::pin(tokio::time::sleep_until(Instant::now() + conn.limits.head));
        PhaseIo { inner, conn, timer, armed: None }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PhaseIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.conn.octets_came();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((until, phase)) = this.conn.read_deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                if this.armed != Some(until) {
                    this.timer.as_mut().reset(until);
                    this.armed = Some(until);
                }
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.conn.time_out(phase);
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, PhaseTimeout(phase))))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> PhaseIo<S> {
    /// Counts a write that failed for making no progress.
    fn written<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &r
            && sixgate_listen::io::is_stalled(e)
        {
            self.conn.time_out(Phase::Write);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PhaseIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.conn.flushed();
        }
        self.written(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.written(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body whose reads fail after `limits.body` without data.
pub(crate) struct TimedBody<B> {
    inner: B,
    conn: Arc<Conn>,
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl<B> TimedBody<B> {
    pub(crate) fn new(inner: B, conn: Arc<Conn>) -> TimedBody<B> {
        let timer = Box::pin(tokio::time::sleep(conn.limits.body));
        TimedBody { inner, conn, timer, armed: false }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.armed {
                    this.armed = true;
                    this.timer.as_mut().reset(Instant::now() + this.conn.limits.body);
                }
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.conn.time_out(Phase::Body);
                Poll::Ready(Some(Err(Box::new(PhaseTimeout(Phase::Body)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that tells the connection when hyper is done with it.
pub(crate) struct DoneBody<B> {
    inner: B,
    conn: Arc<Conn>,
}

impl<B> DoneBody<B> {
    pub(crate) fn new(inner: B, conn: Arc<Conn>) -> DoneBody<B> {
        DoneBody { inner, conn }
    }
}

impl<B> Drop for DoneBody<B> {
    fn drop(&mut self) {
        self.conn.response_done();
    }
}

impl<B: HttpBody + Unpin> HttpBody for DoneBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
