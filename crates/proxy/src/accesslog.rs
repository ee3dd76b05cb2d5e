//! Access logs, off the connections' path: one line per HTTP request and
//! one per TLS connection, written by a thread of their own.
//!
//! A connection only fills a [`Record`] (the request's method and target
//! move in from its parsed head, the hostname is shared per connection)
//! and hands it to an [`AccessLog`] without waiting: when the records
//! waiting for the writer would take more than [`QUEUE_BYTES`], the
//! record is dropped and counted instead. The writer thread formats the
//! lines (text or JSON, docs/proxy.md) into a buffer, and writes it out
//! when the queue is empty, when it holds [`FLUSH_AT`] octets, and at
//! least every second. A failed write is counted as dropped lines and
//! warned about at a limited rate; the writer goes on. [`AccessLog::reopen`]
//! opens the file again by its path (after logrotate moved it).
//!
//! Sampling keeps one request (HTTP) or connection (TLS) in N, counted
//! per listener kind: the first, the N+1th, and so on.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sixgate_listen::Phase;
use sixgate_listen::ratelog::RateLog;

/// The most octets of a request-target a line holds; a longer one is cut
/// (at a character boundary).
pub const MAX_PATH: usize = 1024;
/// The most octets of a method a line holds.
pub const MAX_METHOD: usize = 32;
/// The most memory records waiting for the writer may take (about 64k
/// lines of ordinary requests); beyond it, records are dropped.
pub const QUEUE_BYTES: usize = 16 << 20;
/// The writer writes its buffer out once it holds this much.
const FLUSH_AT: usize = 64 * 1024;
/// The writer writes at least this often while lines come.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long the writer sleeps when the queue is empty. It is woken
/// earlier when the queue is half full.
const POLL: Duration = Duration::from_millis(50);
/// Records formatted between two looks at the clock and the reopen flag.
const BATCH: usize = 4096;

static WRITE_LOG: RateLog = RateLog::new(1);

/// What the log holds, `[proxy] access_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// No access log.
    Off,
    /// One line of space-separated fields per entry.
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "off" => Ok(Format::Off),
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(format!("access log format must be off, text or json, not {s:?}")),
        }
    }
}

/// How to log: `[proxy] access_log`, `access_log_path`, `access_log_sample`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The format, or off.
    pub format: Format,
    /// The file lines are appended to (created 0640).
    pub path: PathBuf,
    /// One entry in this many is logged (at least 1).
    pub sample: u32,
}

/// Which listener an entry is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    Http,
    Tls,
}

impl Listener {
    fn label(self) -> &'static str {
        match self {
            Listener::Http => "http",
            Listener::Tls => "tls",
        }
    }
}

/// How a request or a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// HTTP: the response went to the client in full.
    Done,
    /// A side closed (TLS: both did) before anything else ended it.
    Closed,
    /// A socket failed.
    Reset,
    /// A deadline passed in this phase.
    TimedOut(Phase),
    /// HTTP: the backend's response could not be followed.
    BadResponse,
    /// The hostname is not routed.
    Unroutable,
    /// The hostname was at its connection cap.
    HostCap,
    /// No backend accepted the connection.
    NoBackend,
    /// HTTP: a later request named another Host (answered 421).
    HostChanged,
    /// HTTP: a later request without a Host (answered 400).
    NoHost,
}

impl Ending {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Ending::Done => "done",
            Ending::Closed => "closed",
            Ending::Reset => "reset",
            Ending::TimedOut(phase) => match phase {
                Phase::Handshake => "timeout-handshake",
                Phase::Head => "timeout-head",
                Phase::Body => "timeout-body",
                Phase::Idle => "timeout-idle",
                Phase::Write => "timeout-write",
                Phase::Tunnel => "timeout-tunnel",
                Phase::Connect => "timeout-connect",
            },
            Ending::BadResponse => "bad-response",
            Ending::Unroutable => "unroutable",
            Ending::HostCap => "host-cap",
            Ending::NoBackend => "no-backend",
            Ending::HostChanged => "host-changed",
            Ending::NoHost => "no-host",
        }
    }
}

/// One entry, as a connection hands it over: nothing formatted yet.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) listener: Listener,
    /// When the request (HTTP) or the connection (TLS) began, and ended.
    pub(crate) start: Instant,
    pub(crate) end_at: Instant,
    pub(crate) client: SocketAddr,
    pub(crate) backend: Option<SocketAddr>,
    pub(crate) host: Arc<str>,
    /// HTTP only (empty for TLS), cut to [`MAX_METHOD`] and [`MAX_PATH`].
    pub(crate) method: String,
    pub(crate) path: String,
    /// HTTP: the final status, 0 when there was none.
    pub(crate) status: u16,
    pub(crate) to_backend: u64,
    pub(crate) to_client: u64,
    pub(crate) ending: Ending,
}

impl Record {
    /// The memory it holds while it waits, for the queue's bound.
    fn cost(&self) -> usize {
        std::mem::size_of::<Record>() + self.method.capacity() + self.path.capacity() + self.host.len()
    }
}

/// Cuts `s` to at most `max` octets at a character boundary; a string cut
/// gives its spare room back, so the queue's bound holds.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.shrink_to_fit();
    }
    s
}

/// What the handles and the writer share.
#[derive(Debug, Default)]
struct Counters {
    lines: AtomicU64,
    dropped: AtomicU64,
    /// The cost of the records sent and not yet taken by the writer.
    queued: AtomicUsize,
    reopen: AtomicBool,
    stop: AtomicBool,
}

#[derive(Debug)]
struct Inner {
    tx: Sender<Record>,
    counters: Arc<Counters>,
    sample: u64,
    /// Entries seen, per listener kind, for sampling.
    seen: [AtomicU64; 2],
    budget: usize,
    writer: Option<Thread>,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The sender goes with this: the writer drains, writes and ends.
        if let Some(t) = &self.writer {
            t.unpark();
        }
    }
}

/// The proxy's access log: a cheap handle to clone; off by default.
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    inner: Option<Arc<Inner>>,
}

impl AccessLog {
    /// No access log.
    pub fn off() -> AccessLog {
        AccessLog { inner: None }
    }

    /// Opens (creates, appends to) the file and starts the writer thread;
    /// off when `settings.format` is [`Format::Off`].
    pub fn start(settings: &Settings) -> io::Result<AccessLog> {
        if settings.format == Format::Off {
            return Ok(AccessLog::off());
        }
        if settings.sample == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "access log sample must be at least 1"));
        }
        let file = open(&settings.path)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            rx,
            format: settings.format,
            path: settings.path.clone(),
            file,
            counters: counters.clone(),
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            buffered: 0,
            last_flush: Instant::now(),
        };
        let join = std::thread::Builder::new().name("proxy-access-log".into()).spawn(move || writer.run())?;
        Ok(AccessLog {
            inner: Some(Arc::new(Inner {
                tx,
                counters,
                sample: u64::from(settings.sample),
                seen: Default::default(),
                budget: QUEUE_BYTES,
                writer: Some(join.thread().clone()),
                join: Mutex::new(Some(join)),
            })),
        })
    }

    /// A log without a writer, whose records the test takes from the
    /// receiver.
    #[cfg(test)]
    fn detached(sample: u32, budget: usize) -> (AccessLog, Receiver<Record>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = Inner {
            tx,
            counters: Arc::default(),
            sample: u64::from(sample),
            seen: Default::default(),
            budget,
            writer: None,
            join: Mutex::new(None),
        };
        (AccessLog { inner: Some(Arc::new(inner)) }, rx)
    }

    /// Is anything logged at all?
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Should this entry of `listener` be logged? Counts it.
    pub(crate) fn sample(&self, listener: Listener) -> bool {
        let Some(inner) = &self.inner else { return false };
        if inner.sample == 1 {
            return true;
        }
        let seen = match listener {
            Listener::Http => &inner.seen[0],
            Listener::Tls => &inner.seen[1],
        };
        seen.fetch_add(1, Ordering::Relaxed) % inner.sample == 0
    }

    /// Hands `record` to the writer, or drops and counts it when the
    /// queue is full. Never waits.
    pub(crate) fn send(&self, record: Record) {
        let Some(inner) = &self.inner else { return };
        let cost = record.cost();
        let before = inner.counters.queued.fetch_add(cost, Ordering::Relaxed);
        if before + cost > inner.budget {
            inner.counters.queued.fetch_sub(cost, Ordering::Relaxed);
            inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if inner.tx.send(record).is_err() {
            // The writer is gone (stopped): nothing will take it.
            inner.counters.queued.fetch_sub(cost, Ordering::Relaxed);
            inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let half = inner.budget / 2;
        if before < half
            && before + cost >= half
            && let Some(t) = &inner.writer
        {
            t.unpark();
        }
    }

    /// A TLS connection's line (when sampled): `host` is its SNI, the
    /// octet counts those of the tunnel (the PROXY header not counted).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tls(
        &self,
        client: SocketAddr,
        host: &str,
        backend: Option<SocketAddr>,
        to_backend: u64,
        to_client: u64,
        start: Instant,
        ending: Ending,
    ) {
        if !self.sample(Listener::Tls) {
            return;
        }
        self.send(Record {
            listener: Listener::Tls,
            start,
            end_at: Instant::now(),
            client,
            backend,
            host: host.into(),
            method: String::new(),
            path: String::new(),
            status: 0,
            to_backend,
            to_client,
            ending,
        });
    }

    /// An HTTP request the proxy answered itself with `status` (when
    /// sampled), `to_client` octets.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn refused(
        &self,
        client: SocketAddr,
        host: &str,
        method: String,
        path: String,
        status: u16,
        to_client: u64,
        start: Option<Instant>,
        ending: Ending,
    ) {
        if !self.sample(Listener::Http) {
            return;
        }
        let end_at = Instant::now();
        self.send(Record {
            listener: Listener::Http,
            start: start.unwrap_or(end_at),
            end_at,
            client,
            backend: None,
            host: host.into(),
            method: cut(method, MAX_METHOD),
            path: cut(path, MAX_PATH),
            status,
            to_backend: 0,
            to_client,
            ending,
        });
    }

    /// Asks the writer to open the file again by its path (after it was
    /// moved away, e.g. by logrotate): call on SIGHUP.
    pub fn reopen(&self) {
        if let Some(inner) = &self.inner {
            inner.counters.reopen.store(true, Ordering::Relaxed);
            if let Some(t) = &inner.writer {
                t.unpark();
            }
        }
    }

    /// Writes out every line handed over so far and stops the writer;
    /// later records are dropped. For the end of `serve`.
    pub fn finish(&self) {
        let Some(inner) = &self.inner else { return };
        inner.counters.stop.store(true, Ordering::Relaxed);
        let join = inner.join.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(join) = join {
            join.thread().unpark();
            let _ = join.join();
        }
    }

    /// Lines written to the file.
    pub fn lines(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.counters.lines.load(Ordering::Relaxed))
    }

    /// Lines lost: the queue was full, or the write failed.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.counters.dropped.load(Ordering::Relaxed))
    }
}

fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new().create(true).append(true).mode(0o640).open(path)
}

/// The writer thread's side.
struct Writer {
    rx: Receiver<Record>,
    format: Format,
    path: PathBuf,
    file: File,
    counters: Arc<Counters>,
    buf: Vec<u8>,
    /// Lines in `buf`.
    buffered: u64,
    last_flush: Instant,
}

impl Writer {
    fn run(mut self) {
        loop {
            let clock = Clock::now();
            let (mut got, mut cost) = (0, 0);
            let gone = loop {
                match self.rx.try_recv() {
                    Ok(r) => {
                        cost += r.cost();
                        got += 1;
                        format(self.format, &r, &clock, &mut self.buf);
                        self.buffered += 1;
                        if self.buf.len() >= FLUSH_AT {
                            self.flush();
                        }
                        if got == BATCH {
                            break false;
                        }
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            self.counters.queued.fetch_sub(cost, Ordering::Relaxed);
            let idle = got < BATCH;
            if self.counters.reopen.swap(false, Ordering::Relaxed) {
                self.flush();
                match open(&self.path) {
                    Ok(f) => self.file = f,
                    Err(e) => {
                        if let Some(held) = WRITE_LOG.allow() {
                            tracing::warn!(path = %self.path.display(), error = %e, held_back = held, "proxy access log: cannot reopen; still writing to the old file");
                        }
                    }
                }
            }
            if !self.buf.is_empty() && (idle || self.last_flush.elapsed() >= FLUSH_EVERY) {
                self.flush();
            }
            if gone || (idle && self.counters.stop.load(Ordering::Relaxed)) {
                self.flush();
                return;
            }
            if idle {
                std::thread::park_timeout(POLL);
            }
        }
    }

    fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.buf.is_empty() {
            return;
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => self.counters.lines.fetch_add(self.buffered, Ordering::Relaxed),
            Err(e) => {
                if let Some(held) = WRITE_LOG.allow() {
                    tracing::warn!(path = %self.path.display(), error = %e, lines = self.buffered, held_back = held, "proxy access log: write failed; lines dropped");
                }
                self.counters.dropped.fetch_add(self.buffered, Ordering::Relaxed)
            }
        };
        self.buf.clear();
        self.buffered = 0;
    }
}

/// The wall clock and the monotonic clock read together, to date records
/// by their monotonic instants.
struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    fn now() -> Clock {
        Clock { wall: SystemTime::now(), mono: Instant::now() }
    }

    /// `at` as milliseconds since the epoch.
    fn millis(&self, at: Instant) -> u64 {
        let wall = self.wall.checked_sub(self.mono.saturating_duration_since(at)).unwrap_or(self.wall);
        wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// RFC 3339, UTC, milliseconds: `2026-11-25T18:00:00.123Z`.
fn timestamp(millis: u64, out: &mut Vec<u8>) {
    let secs = (millis / 1000) as i64;
    let (y, m, d) = sixgate_dns::civil::from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60,
        millis % 1000
    );
}

/// One record as one line, `\n` included.
fn format(format: Format, r: &Record, clock: &Clock, out: &mut Vec<u8>) {
    match format {
        Format::Json => json_line(r, clock, out),
        Format::Text | Format::Off => text_line(r, clock, out),
    }
}

fn millis(r: &Record) -> u64 {
    r.end_at.saturating_duration_since(r.start).as_millis() as u64
}

/// An address as it is shown: IPv4-mapped IPv6 as IPv4.
fn shown(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// `TIME LISTENER CLIENT HOST "METHOD" "PATH" STATUS TO_BACKEND TO_CLIENT
/// BACKEND MS END`, `-` for what is absent.
fn text_line(r: &Record, clock: &Clock, out: &mut Vec<u8>) {
    timestamp(clock.millis(r.end_at), out);
    let _ = write!(out, " {} {} ", r.listener.label(), shown(r.client));
    text_field(r.host.as_bytes(), false, out);
    if r.listener == Listener::Http {
        out.push(b' ');
        text_field(r.method.as_bytes(), true, out);
        out.push(b' ');
        text_field(r.path.as_bytes(), true, out);
    } else {
        out.extend_from_slice(b" - -");
    }
    if r.status == 0 {
        out.extend_from_slice(b" -");
    } else {
        let _ = write!(out, " {}", r.status);
    }
    let _ = write!(out, " {} {} ", r.to_backend, r.to_client);
    match r.backend {
        Some(b) => {
            let _ = write!(out, "{}", shown(b));
        }
        None => out.push(b'-'),
    }
    let _ = writeln!(out, " {} {}", millis(r), r.ending.label());
}

/// A text field: printable ASCII as it is, `"` and `\` escaped with `\`,
/// any other octet (controls, DEL, non-ASCII, and a space outside quotes)
/// as `\xHH`. An empty unquoted field is `-`.
fn text_field(s: &[u8], quoted: bool, out: &mut Vec<u8>) {
    if quoted {
        out.push(b'"');
    } else if s.is_empty() {
        out.push(b'-');
        return;
    }
    for &b in s {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b' ' if quoted => out.push(b),
            0x21..=0x7e => out.push(b),
            _ => {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
    if quoted {
        out.push(b'"');
    }
}

/// `{"time":...,"listener":...,...}`: every field, `null` for what is
/// absent.
fn json_line(r: &Record, clock: &Clock, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":\"");
    timestamp(clock.millis(r.end_at), out);
    let _ = write!(
        out,
        "\",\"listener\":\"{}\",\"client\":\"{}\",\"host\":",
        r.listener.label(),
        shown(r.client)
    );
    json_string(&r.host, out);
    if r.listener == Listener::Http {
        out.extend_from_slice(b",\"method\":");
        json_string(&r.method, out);
        out.extend_from_slice(b",\"path\":");
        json_string(&r.path, out);
    } else {
        out.extend_from_slice(b",\"method\":null,\"path\":null");
    }
    if r.status == 0 {
        out.extend_from_slice(b",\"status\":null");
    } else {
        let _ = write!(out, ",\"status\":{}", r.status);
    }
    let _ = write!(
        out,
        ",\"bytes_to_backend\":{},\"bytes_to_client\":{},\"backend\":",
        r.to_backend, r.to_client
    );
    match r.backend {
        Some(b) => {
            let _ = write!(out, "\"{}\"", shown(b));
        }
        None => out.extend_from_slice(b"null"),
    }
    let _ = writeln!(out, ",\"ms\":{},\"end\":\"{}\"}}", millis(r), r.ending.label());
}

/// A JSON string (RFC 8259), ASCII only: `"` and `\` escaped, controls,
/// DEL and every non-ASCII character as `\uXXXX` (surrogate pairs beyond
/// the BMP).
fn json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push(b'"');
}

/// Where the request of an entry stands.
#[derive(Debug)]
struct Pending {
    /// The request's place on its connection, from 0.
    index: u64,
    method: String,
    path: String,
    start: Instant,
    /// Octets to the backend: where the request starts, and where the next
    /// one starts (once it does).
    up_start: u64,
    up_end: Option<u64>,
    status: u16,
    /// Octets of the response, once it has ended.
    down: Option<(u64, u64)>,
}

/// The two ends of a connection, for its lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ends<'a> {
    pub(crate) client: SocketAddr,
    pub(crate) backend: Option<SocketAddr>,
    pub(crate) log: &'a AccessLog,
}

/// One HTTP connection's entries: which requests are logged, and the
/// octets each way, so that a request's line is written once its response
/// has gone to the client in full. Costs nothing but counting while the
/// log is off, or no request is sampled.
#[derive(Debug, Default)]
pub(crate) struct HttpLog {
    host: Option<Arc<str>>,
    /// When the first head was read (it is forwarded only after the
    /// backend connection is up).
    first_at: Option<Instant>,
    pending: VecDeque<Pending>,
    /// Requests forwarded, and final responses ended.
    requests: u64,
    answered: u64,
    /// Octets written to the backend (the PROXY header included).
    up_written: u64,
    /// Response octets followed, where the last final response ended, and
    /// octets written to the client.
    down_followed: u64,
    down_last: u64,
    down_written: u64,
}

impl HttpLog {
    /// The first head was read at `at`.
    pub(crate) fn first_read_at(&mut self, at: Option<Instant>) {
        self.first_at = at;
    }

    /// A request head goes to the backend after `queued` octets still due
    /// to it; `method` and `target` are the head's, taken only when the
    /// request is sampled.
    pub(crate) fn request(
        &mut self,
        log: &AccessLog,
        host: &str,
        method: String,
        target: String,
        queued: usize,
    ) {
        let index = self.requests;
        self.requests += 1;
        if !log.is_on() {
            return;
        }
        let mark = self.up_written + queued as u64;
        if let Some(last) = self.pending.back_mut()
            && last.index + 1 == index
        {
            last.up_end = Some(mark);
        }
        if !log.sample(Listener::Http) {
            return;
        }
        let start = match self.first_at.take() {
            Some(at) if index == 0 => at,
            _ => Instant::now(),
        };
        if self.host.is_none() {
            self.host = Some(host.into());
        }
        self.pending.push_back(Pending {
            index,
            method: cut(method, MAX_METHOD),
            path: cut(target, MAX_PATH),
            start,
            up_start: mark,
            up_end: None,
            status: 0,
            down: None,
        });
    }

    /// `n` octets written to the backend.
    pub(crate) fn wrote_up(&mut self, n: usize) {
        self.up_written += n as u64;
    }

    /// `n` more octets of the backend's responses followed.
    pub(crate) fn followed(&mut self, n: usize) {
        self.down_followed += n as u64;
    }

    /// The oldest outstanding request's final response ended with `status`.
    pub(crate) fn answered(&mut self, status: u16, ends: Ends<'_>) {
        let index = self.answered;
        self.answered += 1;
        let from = std::mem::replace(&mut self.down_last, self.down_followed);
        if let Some(p) = self.pending.iter_mut().find(|p| p.index == index) {
            p.status = status;
            p.down = Some((from, self.down_followed));
        }
        self.deliver(ends);
    }

    /// `n` octets written to the client.
    pub(crate) fn wrote_down(&mut self, n: usize, ends: Ends<'_>) {
        self.down_written += n as u64;
        self.deliver(ends);
    }

    /// Writes the lines of the responses written in full.
    fn deliver(&mut self, ends: Ends<'_>) {
        while let Some(p) = self.pending.front() {
            match p.down {
                Some((_, end)) if end <= self.down_written => {}
                _ => return,
            }
            if let Some(p) = self.pending.pop_front() {
                self.line(p, ends, Ending::Done, 0, 0);
            }
        }
    }

    /// The connection ended `ending`: a line for each request still
    /// outstanding.
    pub(crate) fn end(&mut self, ends: Ends<'_>, ending: Ending) {
        while let Some(p) = self.pending.pop_front() {
            self.line(p, ends, ending, 0, 0);
        }
    }

    /// The connection became a tunnel (a 101) that moved `up` and `down`
    /// octets and ended `ending`: the upgrade request's line, with them.
    pub(crate) fn tunnel_end(&mut self, ends: Ends<'_>, up: u64, down: u64, ending: Ending) {
        while let Some(mut p) = self.pending.pop_front() {
            let (extra_up, extra_down) = if p.index == self.answered {
                // The upgrade request itself: its response was the 101.
                p.status = 101;
                (up, down)
            } else {
                (0, 0)
            };
            self.line(p, ends, ending, extra_up, extra_down);
        }
    }

    fn line(&self, p: Pending, ends: Ends<'_>, ending: Ending, extra_up: u64, extra_down: u64) {
        let up_end = p.up_end.unwrap_or(self.up_written).min(self.up_written);
        let (from, to) = match p.down {
            Some(d) => d,
            // The response under way, if this request is the oldest.
            None if p.index == self.answered => (self.down_last, u64::MAX),
            None => (0, 0),
        };
        let Some(host) = &self.host else { return };
        ends.log.send(Record {
            listener: Listener::Http,
            start: p.start,
            end_at: Instant::now(),
            client: ends.client,
            backend: ends.backend,
            host: host.clone(),
            method: p.method,
            path: p.path,
            status: p.status,
            to_backend: up_end.saturating_sub(p.up_start) + extra_up,
            to_client: to.min(self.down_written).saturating_sub(from) + extra_down,
            ending,
        });
    }
}

#[cfg(test)]
#[path = "accesslog_tests.rs"]
mod tests;
