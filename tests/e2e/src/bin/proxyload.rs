//! `proxyload`: the load generators of `scripts/bench proxy` that wrk and
//! openssl cannot be.
//!
//! - `proxyload rate`: HTTP/1.1 keep-alive GETs at a fixed rate, open loop
//!   (as wrk2 does): request j of the run is due at `j / rate` seconds and
//!   goes on connection `j mod N`; each connection sends its next request
//!   when it is due and the previous answer is in, and every latency is
//!   counted from the time the request was *due*, not from when it could be
//!   sent, so a stalled server shows in the percentiles instead of slowing
//!   the client down (no coordinated omission). One thread polls every
//!   socket, spinning when the next request is due within a millisecond.
//! - `proxyload tls`: new TLS connections, each one full handshake (no
//!   resumption) with the SNI given, one `GET` with `Connection: close` and
//!   its answer, from T threads. The server's certificate must be the one
//!   given (DER): that proves which backend answered through the proxy.
//!   The handshake signature is not checked, to keep the client's CPU per
//!   handshake small; the proxy under test never sees keys anyway.
//!
//! Both print `key value` lines on stdout (counts, rates, latency
//! percentiles in microseconds) and exit non-zero on bad arguments or when
//! nothing could be measured. Loopback benchmarking only.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// Bytes of an answer head at most; a longer head is an error.
const MAX_HEAD: usize = 16 * 1024;
/// Bytes of an answer body at most (the benchmark's answer is 6).
const MAX_BODY: usize = 1 << 20;
/// How long in-flight requests may take once the schedule has ended.
const DRAIN: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("rate") => Opts::parse(&args[1..]).and_then(|o| rate(&o)),
        Some("tls") => Opts::parse(&args[1..]).and_then(|o| tls(&o)),
        _ => Err(anyhow!(
            "usage: proxyload rate --addr A:P --host H --rate R --duration S [--connections N] [--path P]\n       \
             proxyload tls --addr A:P --sni H --cert DER --duration S [--threads T] [--path P]"
        )),
    };
    match out {
        Ok(lines) => {
            let mut o = std::io::stdout().lock();
            for (k, v) in lines {
                let _ = writeln!(o, "{k} {v}");
            }
        }
        Err(e) => {
            eprintln!("proxyload: {e:#}");
            std::process::exit(2);
        }
    }
}

/// The options of both modes; each uses its own.
struct Opts {
    addr: SocketAddr,
    host: String,
    path: String,
    rate: f64,
    duration: Duration,
    connections: usize,
    threads: usize,
    cert: Option<String>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            host: String::new(),
            path: "/".into(),
            rate: 0.0,
            duration: Duration::from_secs(10),
            connections: 32,
            threads: 16,
            cert: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let v = it.next().with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--addr" => o.addr = v.parse().with_context(|| format!("--addr {v}"))?,
                "--host" | "--sni" => o.host = v.clone(),
                "--path" => o.path = v.clone(),
                "--rate" => o.rate = v.parse().with_context(|| format!("--rate {v}"))?,
                "--duration" => {
                    let s: f64 = v.parse().with_context(|| format!("--duration {v}"))?;
                    if !(s > 0.0 && s <= 3600.0) {
                        bail!("--duration must be in (0, 3600] seconds");
                    }
                    o.duration = Duration::from_secs_f64(s);
                }
                "--connections" => o.connections = v.parse().with_context(|| format!("--connections {v}"))?,
                "--threads" => o.threads = v.parse().with_context(|| format!("--threads {v}"))?,
                "--cert" => o.cert = Some(v.clone()),
                _ => bail!("unknown option {flag}"),
            }
        }
        if o.addr.port() == 0 || o.host.is_empty() {
            bail!("--addr (with a port) and --host/--sni are needed");
        }
        if !(1..=10_000).contains(&o.connections) || !(1..=1000).contains(&o.threads) {
            bail!("--connections must be in 1..=10000, --threads in 1..=1000");
        }
        Ok(o)
    }
}

type Lines = Vec<(&'static str, String)>;

/// Percentiles of `lat` (nanoseconds, sorted here) as microsecond lines.
fn percentiles(lat: &mut [u64], out: &mut Lines) {
    lat.sort_unstable();
    for (key, p) in [("p50_us", 0.50), ("p90_us", 0.90), ("p99_us", 0.99), ("p999_us", 0.999)] {
        out.push((key, pct(lat, p).map_or("n/a".into(), |ns| format!("{:.1}", ns as f64 / 1e3))));
    }
    out.push(("max_us", lat.last().map_or("n/a".into(), |ns| format!("{:.1}", *ns as f64 / 1e3))));
}

/// The smallest value with at least `p` of the values at or below it.
fn pct(sorted: &[u64], p: f64) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted.get(rank - 1).copied()
}

// --- rate ---------------------------------------------------------------------

/// One keep-alive connection of the fixed-rate client.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// When the request in flight was due, in ns since the start.
    inflight: Option<u64>,
    /// The run-wide index of this connection's next request.
    next: u64,
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connect {addr}"))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// What a buffer holds: nothing whole yet, or an answer of `len` bytes.
enum Parsed {
    Partial,
    Whole { len: usize, status: u16, close: bool },
}

/// Parses the HTTP/1.1 answer at the start of `buf` (Content-Length
/// bodies only: chunked answers are an error).
fn parse_answer(buf: &[u8]) -> Result<Parsed> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            bail!("answer head over {MAX_HEAD} bytes");
        }
        return Ok(Parsed::Partial);
    };
    let head = std::str::from_utf8(buf.get(..end).unwrap_or_default()).context("answer head not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let (mut length, mut close) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().with_context(|| format!("Content-Length {value:?}"))?);
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("Transfer-Encoding answers are not supported");
        }
    }
    let length = length.context("answer without Content-Length")?;
    if length > MAX_BODY {
        bail!("answer body over {MAX_BODY} bytes");
    }
    let len = end + 4 + length;
    Ok(if buf.len() >= len { Parsed::Whole { len, status, close } } else { Parsed::Partial })
}

fn rate(o: &Opts) -> Result<Lines> {
    if !(o.rate >= 1.0 && o.rate <= 10_000_000.0) {
        bail!("--rate must be in [1, 10000000] requests a second");
    }
    let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", o.path, o.host).into_bytes();
    let total = (o.rate * o.duration.as_secs_f64()).floor() as u64;
    let n = o.connections.min(total.max(1) as usize);
    let due = |j: u64| (j as f64 * 1e9 / o.rate) as u64;
    let mut conns = Vec::with_capacity(n);
    for c in 0..n {
        conns.push(Conn {
            stream: connect(o.addr)?,
            buf: Vec::with_capacity(4096),
            inflight: None,
            next: c as u64,
        });
    }
    let (mut done, mut ok, mut non2xx, mut errors, mut reconnects) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut lat: Vec<u64> = Vec::with_capacity(total as usize);
    let mut lag: Vec<u64> = Vec::with_capacity(total as usize);
    let mut chunk = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let end_ns = due(total) + DRAIN.as_nanos() as u64;
    loop {
        let now = start.elapsed().as_nanos() as u64;
        // Send what is due on every connection that is free.
        let mut wait = u64::MAX;
        for c in conns.iter_mut() {
            if c.inflight.is_some() || c.next >= total {
                continue;
            }
            let t = due(c.next);
            if t > now {
                wait = wait.min(t - now);
                continue;
            }
            // The request is a few dozen bytes: a fresh socket's buffer
            // takes it whole, or the connection is broken.
            match c.stream.write(&request) {
                Ok(w) if w == request.len() => {
                    c.inflight = Some(t);
                    lag.push(now - t);
                }
                _ => {
                    errors += 1;
                    done += 1;
                    reconnects += 1;
                    c.stream = connect(o.addr)?;
                    c.buf.clear();
                }
            }
            c.next += n as u64;
        }
        if done >= total || now > end_ns {
            break;
        }
        // Wait for answers, or until the next request is due; spin (no
        // wait) when it is due within a millisecond, as poll counts in ms.
        let timeout = match wait {
            u64::MAX => PollTimeout::from(100u16),
            w if w < 1_000_000 => PollTimeout::ZERO,
            w => PollTimeout::from((w / 1_000_000).min(100) as u16),
        };
        let mut fds: Vec<PollFd<'_>> =
            conns.iter().map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)).collect();
        poll(&mut fds, timeout).context("poll")?;
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(true)).collect();
        drop(fds);
        for (c, readable) in conns.iter_mut().zip(ready) {
            if !readable {
                continue;
            }
            let mut broken = false;
            loop {
                match c.stream.read(&mut chunk) {
                    Ok(0) => {
                        broken = true;
                        break;
                    }
                    Ok(k) => c.buf.extend_from_slice(chunk.get(..k).unwrap_or_default()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            let at = start.elapsed().as_nanos() as u64;
            let mut close = broken;
            match parse_answer(&c.buf) {
                Ok(Parsed::Whole { len, status, close: cl }) => match c.inflight.take() {
                    Some(t) => {
                        lat.push(at.saturating_sub(t));
                        done += 1;
                        if (200..300).contains(&status) {
                            ok += 1;
                        } else {
                            non2xx += 1;
                        }
                        c.buf.drain(..len);
                        close |= cl || !c.buf.is_empty();
                    }
                    None => close = true, // an answer to nothing
                },
                Ok(Parsed::Partial) => {}
                Err(_) => close = true,
            }
            if close {
                if c.inflight.take().is_some() {
                    errors += 1;
                    done += 1;
                }
                reconnects += 1;
                c.stream = connect(o.addr)?;
                c.buf.clear();
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let unfinished = total - done.min(total);
    let mut out: Lines = vec![
        ("target_rate", format!("{:.0}", o.rate)),
        ("connections", n.to_string()),
        ("scheduled", total.to_string()),
        ("completed", (ok + non2xx).to_string()),
        ("ok", ok.to_string()),
        ("non2xx", non2xx.to_string()),
        ("errors", errors.to_string()),
        ("unfinished", unfinished.to_string()),
        ("reconnects", reconnects.to_string()),
        ("achieved_rate", format!("{:.0}", (ok + non2xx) as f64 / o.duration.as_secs_f64())),
        ("elapsed_s", format!("{elapsed:.3}")),
    ];
    percentiles(&mut lat, &mut out);
    lag.sort_unstable();
    out.push((
        "send_lag_p99_us",
        pct(&lag, 0.99).map_or("n/a".into(), |ns| format!("{:.1}", ns as f64 / 1e3)),
    ));
    if ok == 0 {
        bail!("no answer in {total} requests (errors {errors}, non-2xx {non2xx})");
    }
    Ok(out)
}

// --- tls ----------------------------------------------------------------------

/// Accepts exactly one certificate, the backend's, and checks no
/// handshake signature (see the module comment).
#[derive(Debug)]
struct Pinned {
    der: Vec<u8>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the backend's certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// Per thread: connections that got a whole 2xx answer, the rest, and
/// each good connection's time from connect to the last byte (ns).
#[derive(Default)]
struct TlsCounts {
    ok: u64,
    non2xx: u64,
    errors: u64,
    lat: Vec<u64>,
}

fn tls(o: &Opts) -> Result<Lines> {
    let cert = o.cert.as_deref().context("--cert DER-FILE is needed")?;
    let der = std::fs::read(cert).with_context(|| format!("read {cert}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let schemes = provider.signature_verification_algorithms.supported_schemes();
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { der, schemes }))
        .with_no_client_auth();
    // A full handshake every time.
    cfg.resumption = rustls::client::Resumption::disabled();
    let cfg = Arc::new(cfg);
    let name = ServerName::try_from(o.host.clone()).context("--sni")?;
    let request =
        Arc::new(format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", o.path, o.host));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..o.threads {
        let (cfg, name, request, stop, addr) =
            (cfg.clone(), name.clone(), request.clone(), stop.clone(), o.addr);
        handles.push(std::thread::spawn(move || {
            let mut n = TlsCounts::default();
            let mut buf = Vec::with_capacity(4096);
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                match tls_once(addr, &cfg, &name, request.as_bytes(), &mut buf) {
                    Ok(true) => {
                        n.ok += 1;
                        n.lat.push(t0.elapsed().as_nanos() as u64);
                    }
                    Ok(false) => n.non2xx += 1,
                    Err(_) => n.errors += 1,
                }
            }
            n
        }));
    }
    std::thread::sleep(o.duration);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = TlsCounts::default();
    for h in handles {
        let n = h.join().map_err(|_| anyhow!("a client thread panicked"))?;
        all.ok += n.ok;
        all.non2xx += n.non2xx;
        all.errors += n.errors;
        all.lat.extend(n.lat);
    }
    let mut out: Lines = vec![
        ("threads", o.threads.to_string()),
        ("connections", (all.ok + all.non2xx + all.errors).to_string()),
        ("ok", all.ok.to_string()),
        ("non2xx", all.non2xx.to_string()),
        ("errors", all.errors.to_string()),
        ("elapsed_s", format!("{elapsed:.3}")),
        ("handshakes_per_s", format!("{:.0}", all.ok as f64 / elapsed)),
    ];
    percentiles(&mut all.lat, &mut out);
    if all.ok == 0 {
        bail!("no TLS connection completed (errors {}, non-2xx {})", all.errors, all.non2xx);
    }
    Ok(out)
}

/// One connection: handshake, request, the whole answer. Ok(true) for a
/// 2xx answer.
fn tls_once(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<bool> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = ClientConnection::new(cfg.clone(), name.clone())?;
    let mut s = StreamOwned::new(conn, tcp);
    s.write_all(request)?; // after the handshake
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => {
                buf.extend_from_slice(chunk.get(..k).unwrap_or_default());
                if buf.len() > MAX_HEAD + MAX_BODY {
                    bail!("answer too long");
                }
                if let Parsed::Whole { len, status, .. } = parse_answer(buf)?
                    && buf.len() == len
                {
                    return Ok((200..300).contains(&status));
                }
            }
            // A close without close_notify after the whole answer is fine.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
    }
    match parse_answer(buf)? {
        Parsed::Whole { status, .. } => Ok((200..300).contains(&status)),
        Parsed::Partial => bail!("connection closed before the whole answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_whole_only_with_its_whole_body() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n";
        assert!(matches!(parse_answer(&a[..a.len() - 1]).unwrap(), Parsed::Partial));
        match parse_answer(a).unwrap() {
            Parsed::Whole { len, status, close } => assert_eq!((len, status, close), (a.len(), 200, false)),
            Parsed::Partial => panic!("whole answer taken as partial"),
        }
        let c = b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nConnection: close\r\n\r\n";
        assert!(matches!(parse_answer(c).unwrap(), Parsed::Whole { status: 503, close: true, .. }));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
        assert!(parse_answer(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(pct(&v, 0.5), Some(50));
        assert_eq!(pct(&v, 0.99), Some(99));
        assert_eq!(pct(&v, 1.0), Some(100));
        assert_eq!(pct(&[], 0.5), None);
    }
}
