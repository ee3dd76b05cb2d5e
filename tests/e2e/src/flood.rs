//! A small UDP flood for the response-rate limiting tests, and a private
//! knotd with `mod-rrl` to compare against.
//!
//! [`flood`] sends a fixed number of queries at a steady pace from many
//! sockets (several loopback source addresses of one /24, many source
//! ports each), as a spoofed-source flood looks to a server, and counts
//! the replies: answered in full, truncated (TC=1, the "slip" of RRL), or
//! nothing. The pace is a schedule (query k leaves at k / qps seconds),
//! never a synchronisation: the counts do not depend on timing, only the
//! number of seconds the flood lasts does, and that is measured.
//!
//! [`steady_client`] is one well-behaved client of another network that
//! asks one query at a time while the flood runs.
//!
//! [`KnotRrl`] is knotd 3.2 with `mod-rrl` on every zone (`rate-limit`,
//! `slip`, no whitelist), the same workers as sixgate's tests (two).

use std::fs;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::client::UdpClient;
use crate::knot::{START_DEADLINE, conf_head, free_port_pair, which};
use crate::normalize::Response;
use crate::process::{ChildGuard, ZoneFile, wait_until};
use crate::query::QuerySpec;

/// How long the flood waits for late replies after its last query: it
/// stops earlier once no reply has come for [`QUIET`].
const DRAIN: Duration = Duration::from_secs(5);
/// A pause without replies that ends the drain.
const QUIET: Duration = Duration::from_millis(700);

/// What a flood is.
#[derive(Debug, Clone)]
pub struct FloodPlan {
    /// The server.
    pub target: SocketAddr,
    /// Source addresses (e.g. 127.0.0.2 to 127.0.0.9).
    pub sources: Vec<IpAddr>,
    /// Sockets (source ports) per source address.
    pub ports_per_source: usize,
    /// Queries sent in turn; each copy gets its own ID.
    pub queries: Vec<Vec<u8>>,
    /// Queries per second.
    pub qps: u32,
    /// How many queries in all.
    pub total: u64,
}

/// What came back.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FloodReport {
    /// Queries sent.
    pub sent: u64,
    /// Replies without TC.
    pub full: u64,
    /// Replies with TC.
    pub truncated: u64,
    /// From the first query to the last, seconds.
    pub seconds: f64,
}

impl FloodReport {
    /// Queries that got no reply.
    pub fn silent(&self) -> u64 {
        self.sent.saturating_sub(self.full + self.truncated)
    }

    /// Queries not answered in full: truncated or silent.
    pub fn limited(&self) -> u64 {
        self.sent.saturating_sub(self.full)
    }
}

impl std::fmt::Display for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sent in {:.2} s: {} answered, {} truncated, {} silent",
            self.sent,
            self.seconds,
            self.full,
            self.truncated,
            self.silent()
        )
    }
}

fn drain(sockets: &[UdpSocket], report: &mut FloodReport, buf: &mut [u8]) -> Result<bool> {
    let mut any = false;
    for s in sockets {
        loop {
            match s.recv(buf) {
                Ok(n) => {
                    any = true;
                    // Byte 2 holds QR and TC (RFC 1035 §4.1.1).
                    match buf.get(..n.min(buf.len())).and_then(|b| b.get(2)) {
                        Some(f) if f & 0x02 != 0 => report.truncated += 1,
                        Some(_) => report.full += 1,
                        None => {}
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // A port-unreachable from an earlier send; go on.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e).context("receiving a flood reply"),
            }
        }
    }
    Ok(any)
}

/// Runs the flood and counts the replies.
pub fn flood(plan: &FloodPlan) -> Result<FloodReport> {
    if plan.queries.is_empty() || plan.sources.is_empty() || plan.qps == 0 {
        bail!("a flood needs queries, sources and a rate");
    }
    let mut sockets = Vec::new();
    for src in &plan.sources {
        for _ in 0..plan.ports_per_source.max(1) {
            let s = UdpSocket::bind(SocketAddr::new(*src, 0)).with_context(|| format!("binding {src}"))?;
            s.connect(plan.target)?;
            s.set_nonblocking(true)?;
            sockets.push(s);
        }
    }
    let mut report = FloodReport::default();
    let mut buf = vec![0u8; 65_535];
    let mut query = Vec::new();
    let start = Instant::now();
    while report.sent < plan.total {
        let due = ((start.elapsed().as_secs_f64() * f64::from(plan.qps)) as u64 + 1).min(plan.total);
        while report.sent < due {
            let k = report.sent as usize;
            query.clear();
            query.extend_from_slice(&plan.queries[k % plan.queries.len()]);
            if let Some(id) = query.get_mut(..2) {
                id.copy_from_slice(&(k as u16).to_be_bytes());
            }
            let s = &sockets[k % sockets.len()];
            match s.send(&query) {
                Ok(_) => {}
                // A full send buffer: the query is lost on our side, so it
                // is not counted as sent.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("sending a flood query"),
            }
            report.sent += 1;
        }
        drain(&sockets, &mut report, &mut buf)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    report.seconds = start.elapsed().as_secs_f64();
    let end = Instant::now();
    let mut last = Instant::now();
    while end.elapsed() < DRAIN && last.elapsed() < QUIET {
        if drain(&sockets, &mut report, &mut buf)? {
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(report)
}

/// One client of `source` that sends `query` every `every`, `count`
/// times, each awaited (2 s) before the next. Returns (sent, answered in
/// full).
pub fn steady_client(
    target: SocketAddr,
    source: IpAddr,
    query: &[u8],
    every: Duration,
    count: usize,
) -> Result<(usize, usize)> {
    let s = UdpSocket::bind(SocketAddr::new(source, 0)).with_context(|| format!("binding {source}"))?;
    s.connect(target)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = vec![0u8; 65_535];
    let mut full = 0;
    let start = Instant::now();
    let mut q = query.to_vec();
    for k in 0..count {
        if let Some(id) = q.get_mut(..2) {
            id.copy_from_slice(&(0x7000 + k as u16).to_be_bytes());
        }
        s.send(&q)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match s.recv(&mut buf) {
                Ok(n) if n >= 12 && buf.get(..2) == q.get(..2) => {
                    if buf.get(2).is_some_and(|f| f & 0x02 == 0) {
                        full += 1;
                    }
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let next = start + every * (k as u32 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok((count, full))
}

/// A private knotd with `mod-rrl`; killed on drop.
#[derive(Debug)]
pub struct KnotRrl {
    // The process dies before its directory goes.
    _child: ChildGuard,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
}

fn config(dir: &Path, addr: SocketAddr, zone: &ZoneFile, rate: u32, slip: u32) -> Result<std::path::PathBuf> {
    let run = dir.join("run");
    let storage = dir.join("storage");
    fs::create_dir_all(&run)?;
    fs::create_dir_all(&storage)?;
    let file = zone.path.canonicalize().with_context(|| format!("zone file {}", zone.path.display()))?;
    let text = format!(
        r#"{head}mod-rrl:
  - id: flood
    rate-limit: {rate}
    slip: {slip}

template:
  - id: default
    storage: "{storage}"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    global-module: mod-rrl/flood

zone:
  - domain: "{origin}"
    file: "{file}"
"#,
        head = conf_head(&run, &storage, &[addr], 2),
        storage = storage.display(),
        origin = zone.origin,
        file = file.display(),
    );
    let path = dir.join("knot.conf");
    fs::write(&path, text)?;
    Ok(path)
}

impl KnotRrl {
    /// knotd serving `zone` on 127.0.0.1 with `rate-limit: rate` and
    /// `slip: slip`.
    pub fn start(zone: &ZoneFile, rate: u32, slip: u32) -> Result<Self> {
        let knotd = which("knotd")?;
        let mut last = None;
        for _ in 0..5 {
            let dir = tempfile::Builder::new().prefix("sixgate-e2e-knot-rrl-").tempdir()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port_pair()?));
            let conf = config(dir.path(), addr, zone, rate, slip)?;
            let mut command = Command::new(&knotd);
            command.arg("-c").arg(&conf).stdout(Stdio::null());
            let mut child = ChildGuard::spawn("knotd", &mut command)?;
            let client = UdpClient::new(addr)?;
            let soa = QuerySpec::parse(&zone.origin, 6)?.with_id(0x50a1).encode()?;
            let ready = wait_until("knotd with mod-rrl to answer the SOA", START_DEADLINE, || {
                if let Some(status) = child.exit_status() {
                    bail!("knotd exited with {status}:\n{}", child.stderr_tail(20));
                }
                let Some(bytes) = client.exchange(&soa, Duration::from_millis(200), 1)? else {
                    return Ok(None);
                };
                let r = Response::parse(&bytes)?;
                Ok((r.aa() && r.rcode() == 0).then_some(()))
            });
            match ready {
                Ok(()) => return Ok(KnotRrl { _child: child, _dir: dir, addr }),
                Err(e) => last = Some(e.context(format!("knotd on {addr}, config {}", conf.display()))),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("knotd never started")))
    }

    /// Where it answers.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
