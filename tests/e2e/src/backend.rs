//! Tiny TCP backends on ::1 for the proxy's tests: what nginx cannot be
//! made to do or to show.
//!
//! nginx is the real backend wherever it can tell what arrived
//! (`$http_x_forwarded_for` and friends in its log). It cannot show the raw
//! bytes a request came with: it drops trailer fields, and header names it
//! treats as another spelling (`X-Forwarded_For`) never reach
//! `$http_x_forwarded_for`. It cannot answer `101 Switching Protocols` as an
//! origin, and it always reads what it is sent. [`Backend`] covers those:
//!
//! - [`Behaviour::Http`]: reads HTTP/1.1 requests (Content-Length or
//!   chunked bodies, trailers included) and keeps each one's raw bytes;
//!   answers `200` with a small body, or, when told to, an upgrade request
//!   with `101` and then echoes everything back. `GET /big` is answered
//!   with a gigabyte, written for as long as the other side reads.
//! - [`Behaviour::Silent`]: accepts and holds connections, never reading or
//!   writing (a backend that does not read an upload, or a tunnel's silent
//!   far end).
//! - [`Behaviour::Echo`]: writes back whatever comes.
//! - [`Behaviour::CloseAfterRead`]: reads once, then closes.
//!
//! A backend listens on `[::1]:0` in a thread of the test process and stops
//! when dropped, closing every connection it holds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

/// What a [`Backend`] does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Reads requests and answers each; with `switch`, answers an upgrade
    /// request with 101 and echoes from then on.
    Http {
        /// Answer `Connection: upgrade` requests with 101.
        switch: bool,
    },
    /// Accepts, never reads or writes.
    Silent,
    /// Writes back whatever it reads.
    Echo,
    /// Reads once, then closes.
    CloseAfterRead,
}

/// The 200 answer's body.
pub const BODY: &str = "ok\n";

/// The length of the answer to `GET /big`.
pub const BIG: usize = 1 << 30;

/// A backend on `[::1]:port`.
#[derive(Debug)]
pub struct Backend {
    port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Backend {
    /// Starts a backend that does `behaviour`.
    pub fn start(behaviour: Behaviour) -> Result<Backend> {
        let listener = listen().context("listening on [::1]:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (s, a, r, h) = (stop.clone(), accepted.clone(), requests.clone(), held.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::Relaxed);
                match behaviour {
                    Behaviour::Silent => {
                        if let Ok(mut held) = h.lock() {
                            held.push(conn);
                        }
                    }
                    Behaviour::Http { switch } => {
                        let r = r.clone();
                        thread::spawn(move || {
                            let _ = serve_http(conn, switch, &r);
                        });
                    }
                    Behaviour::Echo => {
                        thread::spawn(move || echo(conn));
                    }
                    Behaviour::CloseAfterRead => {
                        let mut conn = conn;
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut buf = [0u8; 4096];
                        let _ = conn.read(&mut buf);
                    }
                }
            }
        });
        Ok(Backend { port, stop, accepted, requests, held, thread: Some(thread) })
    }

    /// The port on ::1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections a [`Behaviour::Silent`] backend holds.
    pub fn held(&self) -> usize {
        self.held.lock().map_or(0, |h| h.len())
    }

    /// Every request a [`Behaviour::Http`] backend read, head and body (and
    /// trailers) as they arrived, in order.
    pub fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv6Addr::LOCALHOST, self.port)),
            Duration::from_secs(1),
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
    }
}

/// `[::1]:0` with the largest backlog the kernel allows: the proxy may
/// open thousands of connections at once, and the standard library's 128
/// would drop SYNs between two accepts.
fn listen() -> Result<TcpListener> {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, SockaddrIn6, bind, listen, socket};
    use std::os::fd::AsRawFd;
    let fd = socket(AddressFamily::Inet6, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(fd.as_raw_fd(), &SockaddrIn6::from(std::net::SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0)))?;
    listen(&fd, Backlog::MAXCONN)?;
    Ok(TcpListener::from(fd))
}

fn echo(mut conn: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 || conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// One request's head and body, raw; `None` at a clean end of stream.
fn read_request(r: &mut BufReader<TcpStream>) -> Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        raw.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(v) = text.strip_prefix("content-length:") {
            length = v.trim().parse().context("content-length")?;
        }
        if text.starts_with("transfer-encoding:") && text.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            line.clear();
            r.read_until(b'\n', &mut line)?;
            raw.extend_from_slice(&line);
            let size = String::from_utf8_lossy(&line);
            let size = size.split([';', '\r']).next().unwrap_or_default().trim().to_string();
            let size = usize::from_str_radix(&size, 16).with_context(|| format!("chunk size {size:?}"))?;
            if size == 0 {
                // Trailer fields up to the empty line.
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line)? == 0 {
                        return Ok(Some(raw));
                    }
                    raw.extend_from_slice(&line);
                    if line == b"\r\n" {
                        return Ok(Some(raw));
                    }
                }
            }
            let mut data = vec![0u8; size + 2];
            r.read_exact(&mut data)?;
            raw.extend_from_slice(&data);
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body)?;
    raw.extend_from_slice(&body);
    Ok(Some(raw))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve_http(conn: TcpStream, switch: bool, requests: &Mutex<Vec<Vec<u8>>>) -> Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    while let Some(raw) = read_request(&mut r)? {
        let head = String::from_utf8_lossy(&raw).into_owned();
        if let Ok(mut all) = requests.lock() {
            all.push(raw);
        }
        let upgrade = header(&head, "upgrade");
        let wants = header(&head, "connection").is_some_and(|c| c.to_ascii_lowercase().contains("upgrade"));
        if let (true, true, Some(proto)) = (switch, wants, upgrade) {
            write!(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {proto}\r\nConnection: Upgrade\r\n\r\n")?;
            // Whatever the reader already holds is the tunnel's too.
            let early = r.buffer().to_vec();
            w.write_all(&early)?;
            echo(r.into_inner());
            return Ok(());
        }
        if head.starts_with("GET /big ") {
            write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n")?;
            let chunk = vec![b'b'; 64 * 1024];
            for _ in 0..BIG / chunk.len() {
                w.write_all(&chunk)?;
            }
            continue;
        }
        write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}", BODY.len())?;
        let close = header(&head, "connection")
            .is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        if close {
            break;
        }
    }
    Ok(())
}
