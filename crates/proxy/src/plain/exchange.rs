//! A bound connection: requests one way, responses the other, from one
//! task.
//!
//! [`Exchange::run`] drives the four halves (client and backend, read and
//! write) and the phase deadline from one poll. The writes go first: they
//! free buffers, and a peer that does not read stalls only its own
//! direction, until `write_timeout`. Then the reads, each only when its
//! side wants input: the client's while a request is being read
//! (pipelining included), the backend's once everything followed so far
//! has been written (back-pressure). Between two events, the request side
//! and the response side are plain state ([`Up`], [`Responses`]), with no
//! I/O of their own.
//!
//! With backend reuse on, [`Exchange::run`] returns [`Outcome::Idle`] where
//! the connection would go idle with a backend connection that may carry
//! another request: the caller pools it, waits for the next head
//! ([`Exchange::next_request`]) and binds the exchange to the backend
//! connection for it ([`Exchange::rebind`]). A pooled connection that the
//! backend closes before any octet of the response ends the run with
//! [`Outcome::Stale`]; a lone request without a body and with an
//! idempotent method is sent again over a new connection
//! ([`Exchange::replay`], RFC 9110 §9.2.2), any other closes the client's
//! connection without an answer, as a backend's own close of a kept-alive
//! connection would (RFC 9112 §9.3.1).
//!
//! A large Content-Length response body (at least [`SPLICE_MIN`] left once
//! what was read with its head is written) is spliced straight from the
//! backend's socket to the client's ([`Splice`]): exactly the octets its
//! length frames, never more, so the next response head stays in the
//! backend's socket and is read, followed and relayed like the first.
//! Chunked bodies are walked as they are copied.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;

use sixgate_listen::io::{TimedWrite, is_stalled};
use sixgate_listen::{ListenerLimits, Phase, Slot};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::buf::Buf;
use super::{BACKEND_BUF, BULK_BUF, LOG, READ_CHUNK};
use crate::accesslog::{Ending, Ends, HttpLog};
use crate::deadline::{Deadline, Quiet};
use crate::http::Version;
use crate::http::{
    ChunkedDecoder, Framing, Head, HeadError, HeadReader, MAX_RESPONSE_HEAD, ResponseError, ResponseEvent,
    Responses, forwarding_lines, rewrite_keeping_backend, rewrite_with, status_of, with_close,
};
use crate::splice::{self, Splice};
use crate::tls::Shared;

/// The least of a Content-Length body left to splice rather than copy:
/// below it, a splice's two system calls and the pipe save nothing.
const SPLICE_MIN: u64 = 64 * 1024;

/// What the request side does next.
#[derive(Debug)]
enum Up {
    /// Reads the next head.
    Head,
    /// Forwards this many more body octets, then goes on.
    Length(u64, After),
    /// Forwards a chunked body, then goes on.
    Chunked(ChunkedDecoder, After),
    /// An upgrade request is out: nothing more is read until its answer.
    Switching,
    /// No more requests: answer this once the responses are through (or
    /// just close).
    Done(Option<u16>),
}

/// What follows a request.
#[derive(Debug, Clone, Copy)]
enum After {
    Next,
    Switch,
    Close,
}

impl After {
    fn up(self) -> Up {
        match self {
            After::Next => Up::Head,
            After::Switch => Up::Switching,
            After::Close => Up::Done(None),
        }
    }
}

/// How an exchange ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Close (after the last response).
    Close,
    /// Answer this status, then close.
    Answer(u16),
    /// A 101: splice the two, buffered octets first.
    Switch,
    /// A deadline passed; answer 408 when true.
    TimedOut(Phase, bool),
    /// A write made no progress for `write_timeout`: the client's when
    /// `client`, else the backend's.
    Stalled { client: bool },
    /// The gate closed this idle connection to make room.
    Evicted,
    /// A socket failed.
    Reset,
    /// The backend's responses cannot be followed.
    Backend(ResponseError),
    /// Idle between requests, and the backend connection may carry
    /// another: pool it, then [`Exchange::next_request`].
    Idle,
    /// A pooled backend connection closed (or failed) before any octet
    /// of the response: [`Exchange::replay`] if it can, else close.
    Stale,
}

/// What a poll of the connection's sockets, timers and slot found.
enum Io {
    ClientRead(io::Result<usize>),
    /// Octets read, and whether they filled the room there was.
    BackendRead(io::Result<(usize, bool)>),
    UpWrote(io::Result<usize>),
    DownWrote(io::Result<usize>),
    /// Octets of a body spliced from the backend into the pipe.
    BackendSpliced(io::Result<usize>),
    /// Octets spliced from the pipe to the client.
    DownSpliced(io::Result<usize>),
    Evicted,
    Deadline,
}

/// One bound connection: requests one way, responses the other.
pub(super) struct Exchange<'a> {
    peer: SocketAddr,
    backend_addr: Option<SocketAddr>,
    started: std::time::Instant,
    shared: &'a Shared,
    host: String,
    /// The first head, read before the connection was bound.
    first: Option<Head>,
    /// From the client, not yet passed on.
    cbuf: Buf,
    reader: HeadReader,
    up: Up,
    /// To the backend before `direct`: rewritten heads, the PROXY header.
    out: Vec<u8>,
    out_pos: usize,
    /// Then this many octets at the front of `cbuf`, as they are (bodies).
    direct: usize,
    /// The field lines the proxy adds to every head.
    ours: Vec<u8>,
    /// From the backend; the first `fwd` octets are followed and due to
    /// the client.
    bbuf: Buf,
    responses: Responses,
    fwd: usize,
    /// Splice large bodies (until splicing turns out not to be available).
    splice: bool,
    /// The rest of the current response's body is spliced.
    splicing: bool,
    /// Followed octets in the pipe, due to the client.
    down_pipe: Splice,
    /// Octets written through the buffers, both ways.
    copied: u64,
    /// (relayed, spliced) octets already added to the proxy's counters: a
    /// connection whose backend goes to the pool runs more than once.
    counted: (u64, u64),
    /// The last request's `close` was kept from the backend: its final
    /// answer is to say close to the client ([`with_close`]).
    closing: bool,
    switched: bool,
    client_eof: bool,
    backend_eof: bool,
    /// A body that cannot be followed: the backend's request is cut short.
    broken: bool,
    /// When the current head's first octet came.
    head_since: Option<Instant>,
    /// The last read of a request body (read only while one is due).
    last_client: Instant,
    /// Traffic either way, for the backend's deadline.
    quiet: Quiet,
    idle_since: Instant,
    /// While idle with a poolable backend connection: when it goes to the
    /// pool (`[proxy] backend_pool_grace_ms`).
    grace: Option<Instant>,
    requests: u64,
    /// The requests' access log lines.
    log: HttpLog,
    /// This backend connection may go to the pool when idle.
    reuse: bool,
    /// It came from the pool.
    reused: bool,
    /// Requests sent over it.
    on_backend: u32,
    /// Something was read from it.
    backend_read: bool,
    /// An upgrade or an HTTP/1.0 request went over it: not reused.
    tainted: bool,
    /// Where in `out` the lone request over a pooled connection starts,
    /// kept until its response's first octet in case it must be sent
    /// again.
    replay: Option<usize>,
}

impl<'a> Exchange<'a> {
    /// The exchange after the first head (already read into `cbuf` by
    /// `reader`): `out` is sent first (the PROXY header).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        peer: SocketAddr,
        backend_addr: Option<SocketAddr>,
        shared: &'a Shared,
        host: String,
        first: Head,
        cbuf: Buf,
        reader: HeadReader,
        out: Vec<u8>,
        reuse: bool,
    ) -> Exchange<'a> {
        let now = Instant::now();
        Exchange {
            peer,
            backend_addr,
            started: std::time::Instant::now(),
            shared,
            host,
            first: Some(first),
            cbuf,
            reader,
            up: Up::Head,
            out,
            out_pos: 0,
            direct: 0,
            ours: forwarding_lines(peer.ip(), shared.forwarded),
            bbuf: Buf::new(BULK_BUF.max(MAX_RESPONSE_HEAD)),
            responses: Responses::new(),
            fwd: 0,
            splice: shared.splice,
            splicing: false,
            down_pipe: Splice::new(),
            copied: 0,
            counted: (0, 0),
            closing: false,
            switched: false,
            client_eof: false,
            backend_eof: false,
            broken: false,
            head_since: None,
            last_client: now,
            quiet: Quiet::new(now),
            idle_since: now,
            grace: None,
            requests: 0,
            log: HttpLog::default(),
            reuse,
            reused: false,
            on_backend: 0,
            backend_read: false,
            tainted: false,
            replay: None,
        }
    }

    /// After [`Outcome::Idle`] and [`Exchange::next_request`]: the next
    /// request goes to the backend at `addr`, `reused` from the pool or
    /// new (then after `out`, a PROXY header), to be pooled when idle if
    /// `reuse`.
    pub(super) fn rebind(&mut self, addr: Option<SocketAddr>, reused: bool, reuse: bool, out: Vec<u8>) {
        self.backend_addr = addr;
        self.reused = reused;
        self.reuse = reuse;
        self.bind(out);
    }

    fn bind(&mut self, out: Vec<u8>) {
        self.out = out;
        self.out_pos = 0;
        self.on_backend = 0;
        self.backend_read = false;
        self.backend_eof = false;
        self.tainted = false;
        self.replay = None;
        self.responses.new_connection();
        self.quiet = Quiet::new(Instant::now());
    }

    /// After [`Outcome::Stale`]: can the request be sent again?
    pub(super) fn can_replay(&self) -> bool {
        self.replay.is_some() && self.on_backend == 1 && self.responses.outstanding() == 1
    }

    /// After [`Outcome::Stale`], when [`Exchange::can_replay`]: the
    /// request goes again, whole, over the new connection to `addr`.
    pub(super) fn replay(&mut self, addr: Option<SocketAddr>) {
        let Some(start) = self.replay else { return };
        let again = self.out.get(start..).unwrap_or_default().to_vec();
        self.backend_addr = addr;
        self.reused = false;
        self.bind(again);
        self.on_backend = 1;
    }

    /// The host of the head read by [`Exchange::next_request`], if it is
    /// not the connection's: answered (421, or 400 without one) and
    /// logged as a later request on another backend would be.
    pub(super) fn misdirected(&mut self) -> Option<Outcome> {
        if self.first.as_ref().and_then(|h| h.host.as_deref()) == Some(self.host.as_str()) {
            return None;
        }
        self.advance_up();
        match self.up {
            Up::Done(answer) => Some(answer.map_or(Outcome::Close, Outcome::Answer)),
            _ => Some(Outcome::Close),
        }
    }

    /// The head read by [`Exchange::next_request`], for a refusal's log
    /// line; it is not forwarded then.
    pub(super) fn take_next(&mut self) -> Option<Head> {
        self.first.take()
    }

    /// After [`Outcome::Idle`], with the backend connection gone: the
    /// connection is idle (its slot says so, its buffers are released)
    /// until the next head has arrived whole, within `idle_timeout` for its
    /// first octet and `head_timeout` from there. `None` once it has
    /// (it is forwarded by the next run), else how the connection ends.
    pub(super) async fn next_request(
        &mut self,
        client: &mut TcpStream,
        slot: &Slot,
        limits: &ListenerLimits,
        drain: impl std::future::Future<Output = ()>,
    ) -> Option<Outcome> {
        self.cbuf.release();
        self.bbuf.release();
        self.backend_addr = None;
        let since = Instant::now();
        slot.idle_since(since);
        let evicted = slot.evicted();
        tokio::pin!(evicted);
        tokio::pin!(drain);
        let idle_until = since + limits.idle;
        // The first octet: until it comes, no buffer.
        let n = loop {
            tokio::select! {
                r = client.readable() => if r.is_err() {
                    slot.busy();
                    return Some(Outcome::Reset);
                },
                () = &mut evicted => return Some(Outcome::Evicted),
                () = &mut drain => return Some(Outcome::Evicted),
                () = tokio::time::sleep_until(idle_until) => {
                    slot.busy();
                    return Some(Outcome::TimedOut(Phase::Idle, false));
                }
            }
            // A plain read, polled once: unlike `try_read`, a short one
            // clears the readiness, so the next read is not a wasted
            // system call.
            let mut rb = ReadBuf::new(self.cbuf.room(READ_CHUNK));
            let read = poll_fn(|cx| match Pin::new(&mut *client).poll_read(cx, &mut rb) {
                Poll::Ready(r) => Poll::Ready(Some(r)),
                Poll::Pending => Poll::Ready(None),
            })
            .await;
            match read {
                Some(Ok(())) => break rb.filled().len(),
                None => self.cbuf.release(),
                Some(Err(_)) => {
                    slot.busy();
                    return Some(Outcome::Reset);
                }
            }
        };
        slot.busy();
        if slot.is_evicted() {
            return Some(Outcome::Evicted);
        }
        if n == 0 {
            // The client closed between requests: nothing is due to it.
            return Some(Outcome::Close);
        }
        self.cbuf.filled(n);
        self.quiet.event();
        let head_until = Instant::now() + limits.head;
        loop {
            match self.reader.read(self.cbuf.bytes()) {
                Ok(head) => {
                    self.first = Some(head);
                    return None;
                }
                Err(HeadError::Incomplete) => {}
                Err(e) => {
                    self.shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(held) = LOG.allow() {
                        tracing::info!(client = %self.peer, error = %e, held_back = held, "proxy http: bad request");
                    }
                    return Some(e.status().map_or(Outcome::Close, Outcome::Answer));
                }
            }
            let read = tokio::time::timeout_at(head_until, client.read(self.cbuf.room(READ_CHUNK)));
            match read.await {
                Ok(Ok(0)) => return Some(Outcome::Close),
                Ok(Ok(n)) => self.cbuf.filled(n),
                Ok(Err(_)) => return Some(Outcome::Reset),
                Err(_) => return Some(Outcome::TimedOut(Phase::Head, true)),
            }
        }
    }

    /// The first head was read at `at` (the start of its access log line).
    pub(super) fn first_read_at(&mut self, at: Option<std::time::Instant>) {
        self.log.first_read_at(at);
    }

    /// The exchange ended with `outcome`: the lines of the requests still
    /// outstanding.
    pub(super) fn log_end(&mut self, outcome: &Outcome) {
        let ending = match outcome {
            Outcome::Close | Outcome::Answer(_) | Outcome::Switch | Outcome::Evicted => Ending::Closed,
            Outcome::TimedOut(phase, _) => Ending::TimedOut(*phase),
            Outcome::Stalled { .. } => Ending::TimedOut(Phase::Write),
            Outcome::Reset | Outcome::Stale => Ending::Reset,
            Outcome::Idle => return,
            Outcome::Backend(_) => Ending::BadResponse,
        };
        self.log.end(self.log_ends(), ending);
    }

    /// After [`Outcome::Switch`], the tunnel moved `up` and `down` octets
    /// and ended `ending`: the upgrade request's line.
    pub(super) fn log_tunnel_end(&mut self, up: u64, down: u64, ending: Ending) {
        self.log.tunnel_end(self.log_ends(), up, down, ending);
    }

    /// Who the access log lines are about, and the log.
    fn log_ends(&self) -> Ends<'a> {
        let shared: &'a Shared = self.shared;
        Ends { client: self.peer, backend: self.backend_addr, log: &shared.access_log }
    }

    /// The backend connection's address.
    pub(super) fn backend_addr(&self) -> Option<SocketAddr> {
        self.backend_addr
    }

    /// The hostname the connection is bound to.
    pub(super) fn host(&self) -> &str {
        &self.host
    }

    /// After [`Outcome::Switch`]: what each side sent that the other has
    /// not got yet, (to the backend, to the client).
    pub(super) fn leftovers(&self) -> (&[u8], &[u8]) {
        (self.cbuf.bytes(), self.bbuf.bytes())
    }

    fn up_pending(&self) -> bool {
        self.out_pos < self.out.len() || self.direct > 0
    }

    /// Waiting for the next request with nothing outstanding either way.
    fn is_idle(&self) -> bool {
        matches!(self.up, Up::Head)
            && self.first.is_none()
            && self.cbuf.is_empty()
            && !self.up_pending()
            && self.fwd == 0
            && self.down_pipe.held() == 0
            && self.responses.outstanding() == 0
            && self.responses.between()
            && self.bbuf.is_empty()
    }

    /// The backend connection's framing is certain and it is still open:
    /// it may carry another request once nothing is in flight on it.
    fn backend_clean(&self) -> bool {
        self.reuse
            && !self.tainted
            && !self.broken
            && !self.switched
            && !self.backend_eof
            && self.responses.reusable()
    }

    /// Idle with a backend connection that may carry another request.
    fn poolable(&self) -> bool {
        self.backend_clean() && !self.client_eof
    }

    /// At the end of the client's connection (it asked to close, or
    /// closed between requests): may the backend connection carry another
    /// client's requests? Every request on it went whole and every
    /// response came whole, with nothing more from the backend.
    pub(super) fn backend_reusable(&self) -> bool {
        self.backend_clean()
            && matches!(self.up, Up::Head | Up::Done(None))
            && !self.up_pending()
            && self.fwd == 0
            && self.bbuf.is_empty()
            && self.responses.outstanding() == 0
    }

    /// The connection bound by [`Exchange::new`] came from the pool: a
    /// first request that fails on it before any answer may be sent again
    /// ([`Exchange::can_replay`]).
    pub(super) fn bound_to_pooled(&mut self) {
        self.reused = true;
    }

    /// A pooled connection failed before any octet of the response to what
    /// was sent over it.
    fn is_stale(&self) -> bool {
        self.reused && !self.backend_read && self.on_backend > 0
    }

    fn wants_client(&self) -> bool {
        !self.client_eof
            && !self.up_pending()
            && matches!(self.up, Up::Head | Up::Length(..) | Up::Chunked(..))
            && !self.cbuf.is_full()
    }

    fn wants_backend(&self) -> bool {
        !self.backend_eof
            && !self.switched
            && self.fwd == 0
            && self.down_pipe.held() == 0
            && !self.bbuf.is_full()
    }

    /// The deadline that applies now, and its phase.
    fn deadline(&self, limits: &ListenerLimits) -> (Instant, Phase) {
        let mut best = (self.quiet.next(limits.tunnel), Phase::Tunnel);
        let mut consider = |at: Instant, phase| {
            if at < best.0 {
                best = (at, phase);
            }
        };
        if self.is_idle() {
            consider(self.idle_since + limits.idle, Phase::Idle);
            if let Some(at) = self.grace {
                consider(at, Phase::Idle);
            }
        }
        if let (Up::Head, Some(since)) = (&self.up, self.head_since) {
            consider(since + limits.head, Phase::Head);
        }
        if matches!(self.up, Up::Length(..) | Up::Chunked(..)) && !self.up_pending() && self.cbuf.is_empty() {
            consider(self.last_client + limits.body, Phase::Body);
        }
        best
    }

    /// The end of the exchange, once nothing is left to write.
    fn settle(&self) -> Option<Outcome> {
        if self.broken {
            return Some(Outcome::Close);
        }
        if self.up_pending() || self.fwd > 0 || self.down_pipe.held() > 0 {
            return None;
        }
        if self.switched {
            return Some(Outcome::Switch);
        }
        let through = self.responses.outstanding() == 0 && self.responses.between();
        match self.up {
            Up::Done(answer) if through || self.backend_eof => {
                Some(answer.map_or(Outcome::Close, Outcome::Answer))
            }
            _ if self.backend_eof => Some(Outcome::Close),
            _ => None,
        }
    }

    /// Turns what the client sent into what the backend gets, as far as
    /// it goes without writing.
    fn advance_up(&mut self) {
        while self.direct == 0 {
            match std::mem::replace(&mut self.up, Up::Done(None)) {
                Up::Head => {
                    let head = match self.first.take() {
                        Some(h) => Ok(h),
                        None if self.cbuf.is_empty() => Err(HeadError::Incomplete),
                        None => self.reader.read(self.cbuf.bytes()),
                    };
                    match head {
                        Err(HeadError::Incomplete) => {
                            self.up = Up::Head;
                            return;
                        }
                        Err(e) => {
                            self.shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
                            if let Some(held) = LOG.allow() {
                                tracing::info!(client = %self.peer, error = %e, held_back = held, "proxy http: bad request");
                            }
                            self.up = Up::Done(e.status());
                            return;
                        }
                        Ok(head) => self.forward_head(head),
                    }
                }
                Up::Length(left, after) => {
                    if self.cbuf.is_empty() {
                        self.up = Up::Length(left, after);
                        return;
                    }
                    let n = usize::try_from(left).map_or(self.cbuf.len(), |l| l.min(self.cbuf.len()));
                    self.direct = n;
                    let left = left - n as u64;
                    self.up = if left == 0 { after.up() } else { Up::Length(left, after) };
                }
                Up::Chunked(mut dec, after) => {
                    if self.cbuf.is_empty() {
                        self.up = Up::Chunked(dec, after);
                        return;
                    }
                    let f = match dec.feed(self.cbuf.bytes()) {
                        Ok(f) => f,
                        Err(e) => {
                            if let Some(held) = LOG.allow() {
                                tracing::info!(client = %self.peer, error = %e, held_back = held, "proxy http: bad chunked body");
                            }
                            self.broken = true;
                            return;
                        }
                    };
                    if f.trailers.is_empty() {
                        self.direct = f.consumed;
                    } else {
                        // The body without its trailer section.
                        let b = self.cbuf.bytes();
                        self.out.extend_from_slice(b.get(..f.trailers.start).unwrap_or_default());
                        self.out.extend_from_slice(b.get(f.trailers.end..f.consumed).unwrap_or_default());
                        self.cbuf.consume(f.consumed);
                    }
                    self.up = if f.done { after.up() } else { Up::Chunked(dec, after) };
                    if f.consumed == 0 {
                        return;
                    }
                }
                up @ (Up::Switching | Up::Done(_)) => {
                    self.up = up;
                    return;
                }
            }
        }
    }

    /// A head goes out rewritten, and what follows it is decided.
    fn forward_head(&mut self, head: Head) {
        match head.host.as_deref() {
            Some(h) if h == self.host => {}
            Some(h) => {
                if let Some(held) = LOG.allow() {
                    tracing::info!(
                        client = %self.peer,
                        first = %self.host,
                        then = %h,
                        held_back = held,
                        "proxy http: Host changed mid-connection; closing"
                    );
                }
                self.shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
                self.up = Up::Done(Some(421));
                let len = super::answer_bytes(421).len() as u64;
                let log = &self.shared.access_log;
                log.refused(self.peer, h, head.method, head.target, 421, len, None, Ending::HostChanged);
                return;
            }
            None => {
                self.shared.stats.client_errors.fetch_add(1, Ordering::Relaxed);
                self.up = Up::Done(Some(400));
                let len = super::answer_bytes(400).len() as u64;
                let log = &self.shared.access_log;
                log.refused(self.peer, &self.host, head.method, head.target, 400, len, None, Ending::NoHost);
                return;
            }
        }
        // Octets due to the backend before this head.
        let queued = self.out.len() - self.out_pos + self.direct;
        let start = self.out.len();
        // The client's `close` is its own hop's (RFC 9110 §7.6.1): with
        // reuse on, the backend connection outlives the client's, for the
        // pool.
        if self.reuse
            && self.shared.reuse.keeps_backend_past_close()
            && !head.keep_alive
            && head.version == Version::Http11
            && !head.upgrade
        {
            rewrite_keeping_backend(&head, self.cbuf.bytes(), &self.ours, &mut self.out);
            self.closing = true;
        } else {
            rewrite_with(&head, self.cbuf.bytes(), &self.ours, &mut self.out);
        }
        self.on_backend += 1;
        self.tainted |= head.upgrade || head.version == Version::Http10;
        self.replay = (self.reused && self.on_backend == 1 && head.may_be_sent_again()).then_some(start);
        self.cbuf.consume(head.head_len);
        self.reader.reset();
        self.head_since = (!self.cbuf.is_empty()).then(Instant::now);
        self.responses.push(head.method == "HEAD", head.upgrade);
        self.requests += 1;
        // The access log has the line of every request; this is for
        // debugging.
        tracing::debug!(
            client = %self.peer,
            host = %self.host,
            backend = ?self.backend_addr,
            method = %head.method,
            target = %head.target,
            request = self.requests,
            ms = self.started.elapsed().as_millis() as u64,
            "proxy http"
        );
        self.log.request(&self.shared.access_log, &self.host, head.method, head.target, queued);
        let after = if head.upgrade {
            After::Switch
        } else if !head.keep_alive {
            After::Close
        } else {
            After::Next
        };
        self.up = match head.framing {
            Framing::ContentLength(n) if n > 0 => Up::Length(n, after),
            Framing::Chunked => Up::Chunked(ChunkedDecoder::new(), after),
            _ => after.up(),
        };
    }

    /// Follows what the backend sent, as far as it goes.
    fn advance_down(&mut self) -> Result<(), ResponseError> {
        while !self.switched && self.fwd < self.bbuf.len() {
            // The final answer to a request whose `close` was kept from the
            // backend says close to the client instead.
            let closing = self.closing && self.responses.at_head() && self.responses.outstanding() == 1;
            let step = self.responses.feed(self.bbuf.bytes().get(self.fwd..).unwrap_or_default())?;
            let mut consumed = step.consumed;
            if closing && consumed > 0 {
                let head = self.bbuf.bytes().get(self.fwd..self.fwd + consumed).unwrap_or_default();
                if status_of(head).is_some_and(|s| s >= 200) {
                    let told = with_close(head);
                    if self.bbuf.replace(self.fwd, consumed, &told) {
                        consumed = told.len();
                        self.closing = false;
                    }
                }
            }
            self.fwd += consumed;
            self.log.followed(consumed);
            match step.event {
                Some(ResponseEvent::Complete(status)) => self.answered(status),
                Some(ResponseEvent::Switched) => self.switched = true,
                None if step.consumed == 0 => break,
                None => {}
            }
        }
        Ok(())
    }

    /// Splices the rest of the current response body when it is large and
    /// everything before it has been written.
    fn consider_splice(&mut self) {
        if self.splice
            && !self.splicing
            && self.fwd == 0
            && self.bbuf.is_empty()
            && self.responses.body_left().is_some_and(|left| left >= SPLICE_MIN)
        {
            self.splicing = true;
            // Not needed until the next head.
            self.bbuf.release();
        }
    }

    /// `n` body octets spliced into the pipe: followed, and due to the
    /// client.
    fn spliced_in(&mut self, n: usize) {
        let step = self.responses.pass(n);
        self.log.followed(step.consumed);
        if let Some(ResponseEvent::Complete(status)) = step.event {
            self.splicing = false;
            self.answered(status);
        }
    }

    /// A final response has ended.
    fn answered(&mut self, status: u16) {
        self.log.answered(status, self.log_ends());
        if matches!(self.up, Up::Switching) && self.responses.outstanding() == 0 {
            // The upgrade was declined: the connection goes on as HTTP/1.1.
            self.up = Up::Head;
            self.head_since = (!self.cbuf.is_empty()).then(Instant::now);
            self.advance_up();
        }
    }

    /// Passes `n` octets written to the backend.
    fn wrote_up(&mut self, mut n: usize) {
        self.log.wrote_up(n);
        let from_out = n.min(self.out.len() - self.out_pos);
        self.out_pos += from_out;
        n -= from_out;
        if self.out_pos == self.out.len() && self.replay.is_none() {
            self.out.clear();
            self.out_pos = 0;
        }
        let direct = n.min(self.direct);
        self.direct -= direct;
        self.cbuf.consume(direct);
    }

    pub(super) async fn run(
        &mut self,
        client: &mut TcpStream,
        backend: &mut TcpStream,
        slot: &Slot,
        limits: &ListenerLimits,
        drain: impl std::future::Future<Output = ()>,
    ) -> Outcome {
        let outcome = self.relay(client, backend, slot, limits, drain).await;
        let spliced = self.down_pipe.moved();
        let (moved, before) = (self.copied + spliced, self.counted);
        self.shared.stats.relayed(moved.saturating_sub(before.0), spliced.saturating_sub(before.1));
        self.counted = (moved, spliced);
        outcome
    }

    async fn relay(
        &mut self,
        client: &mut TcpStream,
        backend: &mut TcpStream,
        slot: &Slot,
        limits: &ListenerLimits,
        drain: impl std::future::Future<Output = ()>,
    ) -> Outcome {
        let (mut cr, cw) = client.split();
        let (mut br, bw) = backend.split();
        let mut cw = TimedWrite::new(cw, limits.write);
        let mut bw = TimedWrite::new(bw, limits.write);
        let mut deadline = Deadline::new();
        let evicted = slot.evicted();
        tokio::pin!(evicted);
        // At the drain, an idle connection closes like an evicted one.
        tokio::pin!(drain);
        let mut idle = false;
        self.advance_up();
        loop {
            if let Some(outcome) = self.settle() {
                return outcome;
            }
            if self.is_idle() != idle {
                idle = !idle;
                if idle {
                    // The one clock read of a kept-alive request.
                    self.idle_since = Instant::now();
                    slot.idle_since(self.idle_since);
                    self.cbuf.release();
                    self.bbuf.release();
                    let grace = self.shared.reuse.grace;
                    if self.poolable() {
                        if grace.is_zero() {
                            return Outcome::Idle;
                        }
                        self.grace = Some(self.idle_since + grace);
                    }
                } else {
                    self.grace = None;
                    slot.busy();
                }
            }
            let (at, phase) = self.deadline(limits);
            deadline.set(Some(at));
            let io = poll_fn(|cx| {
                if self.up_pending() {
                    let a = self.out.get(self.out_pos..).unwrap_or_default();
                    let b = self.cbuf.bytes().get(..self.direct).unwrap_or_default();
                    // One buffer is a plain send, not a writev.
                    let w = if a.is_empty() {
                        Pin::new(&mut bw).poll_write(cx, b)
                    } else if b.is_empty() {
                        Pin::new(&mut bw).poll_write(cx, a)
                    } else {
                        Pin::new(&mut bw).poll_write_vectored(cx, &[IoSlice::new(a), IoSlice::new(b)])
                    };
                    if let Poll::Ready(r) = w {
                        return Poll::Ready(Io::UpWrote(r));
                    }
                }
                if self.fwd > 0 {
                    let due = self.bbuf.bytes().get(..self.fwd).unwrap_or_default();
                    if let Poll::Ready(r) = Pin::new(&mut cw).poll_write(cx, due) {
                        return Poll::Ready(Io::DownWrote(r));
                    }
                }
                if self.down_pipe.held() > 0 {
                    let pipe = &mut self.down_pipe;
                    if let Poll::Ready(r) = cw.poll_with(cx, |w, cx| pipe.poll_drain(cx, w.as_ref())) {
                        return Poll::Ready(Io::DownSpliced(r));
                    }
                }
                // A released buffer is taken again only once there is
                // something to read into it.
                if self.wants_client()
                    && (self.cbuf.is_allocated() || cr.as_ref().poll_read_ready(cx).is_ready())
                {
                    let mut rb = ReadBuf::new(self.cbuf.room(READ_CHUNK));
                    if let Poll::Ready(r) = Pin::new(&mut cr).poll_read(cx, &mut rb) {
                        return Poll::Ready(Io::ClientRead(r.map(|()| rb.filled().len())));
                    }
                }
                if self.splicing && self.wants_backend() {
                    // Exactly the body's octets: the next head stays in the socket.
                    let left = self.responses.body_left().unwrap_or_default();
                    let max = usize::try_from(left).unwrap_or(usize::MAX);
                    if let Poll::Ready(r) = self.down_pipe.poll_fill(cx, br.as_ref(), max) {
                        return Poll::Ready(Io::BackendSpliced(r));
                    }
                } else if self.wants_backend()
                    && (self.bbuf.is_allocated() || br.as_ref().poll_read_ready(cx).is_ready())
                {
                    let mut rb = ReadBuf::new(self.bbuf.room(BACKEND_BUF));
                    if let Poll::Ready(r) = Pin::new(&mut br).poll_read(cx, &mut rb) {
                        let full = rb.remaining() == 0;
                        return Poll::Ready(Io::BackendRead(r.map(|()| (rb.filled().len(), full))));
                    }
                }
                if idle && (evicted.as_mut().poll(cx).is_ready() || drain.as_mut().poll(cx).is_ready()) {
                    return Poll::Ready(Io::Evicted);
                }
                if deadline.poll(cx).is_ready() {
                    return Poll::Ready(Io::Deadline);
                }
                Poll::Pending
            })
            .await;
            match io {
                Io::UpWrote(Ok(n)) | Io::DownWrote(Ok(n)) | Io::DownSpliced(Ok(n)) if n == 0 => {
                    return Outcome::Reset;
                }
                Io::DownSpliced(Ok(n)) => {
                    self.quiet.event();
                    self.log.wrote_down(n, self.log_ends());
                }
                Io::DownSpliced(Err(e)) => {
                    return if is_stalled(&e) { Outcome::Stalled { client: true } } else { Outcome::Reset };
                }
                Io::BackendSpliced(Ok(n)) if n > 0 => {
                    self.quiet.event();
                    self.spliced_in(n);
                }
                Io::BackendSpliced(Err(e)) if splice::is_unsupported(&e) => {
                    // Nothing moved: this connection copies from here on.
                    tracing::debug!(client = %self.peer, error = %e, "proxy http: cannot splice; copying");
                    (self.splice, self.splicing) = (false, false);
                }
                Io::UpWrote(Ok(n)) => {
                    self.quiet.event();
                    self.copied += n as u64;
                    self.wrote_up(n);
                    self.advance_up();
                }
                Io::DownWrote(Ok(n)) => {
                    self.quiet.event();
                    self.copied += n as u64;
                    self.bbuf.consume(n);
                    self.fwd -= n;
                    self.log.wrote_down(n, self.log_ends());
                }
                Io::UpWrote(Err(e)) => {
                    return if is_stalled(&e) {
                        Outcome::Stalled { client: false }
                    } else if self.is_stale() {
                        Outcome::Stale
                    } else {
                        Outcome::Reset
                    };
                }
                Io::DownWrote(Err(e)) => {
                    return if is_stalled(&e) { Outcome::Stalled { client: true } } else { Outcome::Reset };
                }
                Io::ClientRead(Ok(0)) => {
                    self.client_eof = true;
                    // A request cut short cannot be answered; between
                    // requests, the responses still due are delivered.
                    match self.up {
                        Up::Head if self.cbuf.is_empty() && self.first.is_none() => self.up = Up::Done(None),
                        Up::Done(_) => {}
                        _ => return Outcome::Close,
                    }
                }
                Io::ClientRead(Ok(n)) => {
                    if idle {
                        slot.busy();
                        idle = false;
                        if slot.is_evicted() {
                            return Outcome::Evicted;
                        }
                    }
                    self.cbuf.filled(n);
                    self.quiet.event();
                    self.advance_up();
                    // The clock only when a deadline hangs on this read: a
                    // head that is still incomplete (from its first octet),
                    // or a body that has more to come.
                    match self.up {
                        Up::Head if !self.cbuf.is_empty() && self.head_since.is_none() => {
                            self.head_since = Some(Instant::now());
                        }
                        Up::Length(..) | Up::Chunked(..) => self.last_client = Instant::now(),
                        _ => {}
                    }
                }
                Io::BackendRead(Ok((0, _))) | Io::BackendSpliced(Ok(_)) => {
                    if self.is_stale() {
                        return Outcome::Stale;
                    }
                    self.backend_eof = true;
                    match self.responses.eof() {
                        Ok(Some(ResponseEvent::Complete(status))) => self.answered(status),
                        Ok(_) => {}
                        Err(e) if self.responses.outstanding() > 0 || !self.bbuf.is_empty() => {
                            return Outcome::Backend(e);
                        }
                        Err(_) => {}
                    }
                }
                Io::BackendRead(Ok((n, full))) => {
                    self.backend_read = true;
                    if self.replay.take().is_some() && self.out_pos == self.out.len() {
                        self.out.clear();
                        self.out_pos = 0;
                    }
                    self.bbuf.filled(n);
                    if full {
                        self.bbuf.grow();
                    }
                    self.quiet.event();
                    if let Err(e) = self.advance_down() {
                        return Outcome::Backend(e);
                    }
                }
                Io::BackendRead(Err(_)) if self.is_stale() => return Outcome::Stale,
                Io::ClientRead(Err(_)) | Io::BackendRead(Err(_)) | Io::BackendSpliced(Err(_)) => {
                    return Outcome::Reset;
                }
                Io::Evicted => return Outcome::Evicted,
                Io::Deadline => {
                    // Idle past the grace: the backend connection goes to
                    // the pool, and the client waits for its next request
                    // with its own socket only.
                    if let Some(at) = self.grace
                        && at <= Instant::now()
                    {
                        self.grace = None;
                        if self.is_idle() && self.poolable() {
                            return Outcome::Idle;
                        }
                        continue;
                    }
                    if phase == Phase::Tunnel && !self.quiet.expired(Instant::now(), limits.tunnel) {
                        continue;
                    }
                    // A head timed out with nothing due to the client: 408.
                    let quiet = self.fwd == 0 && self.responses.outstanding() == 0;
                    return Outcome::TimedOut(phase, phase == Phase::Head && quiet);
                }
            }
            if self.fwd == 0 && !self.switched && !self.bbuf.is_empty() {
                // Followed octets written: follow the rest.
                if let Err(e) = self.advance_down() {
                    return Outcome::Backend(e);
                }
            }
            self.consider_splice();
        }
    }
}
