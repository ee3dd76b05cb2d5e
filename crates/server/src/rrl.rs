//! Response-rate limiting (RRL) of UDP answers, in the manner of Knot's
//! `mod-rrl` and NSD's `rrl`.
//!
//! A UDP query's source address can be forged: a flood of small queries
//! "from" a victim turns an authoritative server into an amplifier aimed
//! at it, and signed answers amplify more. RRL counts the responses sent
//! to each client network (a /24 for IPv4, a /56 for IPv6 by default), by
//! kind of response ([`Class`]) and by name, in token buckets of `rate`
//! responses per second with a burst of one second's worth. Over the
//! rate a response is dropped, except every `slip`-th one, which is sent
//! truncated (TC=1, header and question only): a real client behind the
//! limited network retries over TCP and is answered, while a victim gets
//! small replies at a fraction of the rate. TCP is never limited: its
//! handshake proves the address.
//!
//! The buckets live in one [`table`] shared by every UDP worker, updated
//! with compare-and-swap and no lock, so N workers let the rate through,
//! not N times it. Memory is fixed by `table_size`. Exempt are the
//! configured prefixes (loopback by default: a loopback source cannot be
//! forged from outside the host) and clients that present a valid DNS
//! server cookie (RFC 7873 §5.3), which the caller decides.
//!
//! Each worker has an [`RrlWorker`]: its own slip counter and its own
//! counters (on their own cache lines), summed only when metrics are read.

mod class;
pub mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sixgate_dns::Catalog;
use sixgate_dns::message::{HEADER_LEN, Summary, flags};
use sixgate_dns::name::NameBuf;
use sixgate_listen::ratelog::RateLog;

pub use class::{CLASSES, Class};
pub use table::{MAX_RATE, TICKS_PER_SECOND, Tick};
use table::{Table, Take};

/// Knot's default table size, a prime near 1.2 × 327,680 keys a second.
pub const DEFAULT_TABLE_SIZE: usize = 393_241;
/// Largest table: 2^27 buckets of 8 octets is 1 GiB.
pub const MAX_TABLE_SIZE: usize = 1 << 27;
/// Largest slip, as Knot.
pub const MAX_SLIP: u32 = 100;

/// An address prefix of the exempt list, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why an RRL setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RrlError {
    /// Not `ADDR` or `ADDR/LEN`.
    #[error("{0:?} is not an address prefix (ADDR/LEN)")]
    PrefixSyntax(String),
    /// Bits set after the length.
    #[error("{0} has bits set after its length")]
    HostBits(String),
    /// A value outside its range.
    #[error("{key} must be {min} to {max}, not {value}")]
    Range {
        /// The setting.
        key: &'static str,
        /// Its least value.
        min: u64,
        /// Its largest value.
        max: u64,
        /// What was given.
        value: u64,
    },
}

fn v4_bits(a: Ipv4Addr, len: u8) -> u32 {
    if len == 0 { 0 } else { u32::from(a) & (u32::MAX << (32 - u32::from(len.min(32)))) }
}

fn v6_bits(a: Ipv6Addr, len: u8) -> u128 {
    if len == 0 { 0 } else { u128::from(a) & (u128::MAX << (128 - u32::from(len.min(128)))) }
}

/// An IPv4-mapped IPv6 address (a v4 client on a dual-stack socket) is
/// the IPv4 client it maps.
fn fold(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Prefix {
    /// Parses `192.0.2.0/24`, `2001:db8::/32`, or a bare address (all its
    /// bits).
    pub fn parse(text: &str) -> Result<Prefix, RrlError> {
        let bad = || RrlError::PrefixSyntax(text.to_string());
        let (a, l) = text.trim().split_once('/').map_or((text.trim(), None), |(a, l)| (a, Some(l)));
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) => l.parse::<u8>().ok().filter(|&l| l <= max).ok_or_else(bad)?,
            None => max,
        };
        let exact = match addr {
            IpAddr::V4(v4) => v4_bits(v4, len) == u32::from(v4),
            IpAddr::V6(v6) => v6_bits(v6, len) == u128::from(v6),
        };
        if !exact {
            return Err(RrlError::HostBits(text.to_string()));
        }
        Ok(Prefix { addr, len })
    }

    /// Does the prefix hold `ip` (IPv4-mapped addresses folded to IPv4)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, fold(ip)) {
            (IpAddr::V4(p), IpAddr::V4(a)) => v4_bits(a, self.len) == u32::from(p),
            (IpAddr::V6(p), IpAddr::V6(a)) => v6_bits(a, self.len) == u128::from(p),
            _ => false,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The loopback networks, exempt by default: no packet from outside the
/// host arrives with a loopback source (the kernel drops martians).
pub fn loopback() -> Vec<Prefix> {
    vec![
        Prefix { addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), len: 8 },
        Prefix { addr: IpAddr::V6(Ipv6Addr::LOCALHOST), len: 128 },
    ]
}

/// Validated RRL settings (`[dns.rrl]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per client prefix, class and name.
    pub rate: u32,
    /// Every `slip`-th limited response is sent truncated; 0 never.
    pub slip: u32,
    /// Client prefix length for IPv4.
    pub ipv4_prefix: u8,
    /// Client prefix length for IPv6.
    pub ipv6_prefix: u8,
    /// Clients never limited.
    pub exempt: Vec<Prefix>,
    /// Buckets in the table.
    pub table_size: usize,
}

impl RrlConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), RrlError> {
        let range = |key, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) { Ok(()) } else { Err(RrlError::Range { key, min, max, value }) }
        };
        range("rate", u64::from(self.rate), 1, u64::from(MAX_RATE))?;
        range("slip", u64::from(self.slip), 0, u64::from(MAX_SLIP))?;
        range("ipv4_prefix", u64::from(self.ipv4_prefix), 1, 32)?;
        range("ipv6_prefix", u64::from(self.ipv6_prefix), 1, 128)?;
        range("table_size", self.table_size as u64, 1, MAX_TABLE_SIZE as u64)
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it as it is.
    Pass,
    /// Send the truncated reply now in the buffer.
    Slip,
    /// Send nothing.
    Drop,
}

/// One worker's counters, on cache lines of their own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct WorkerCounts {
    dropped: [AtomicU64; CLASSES.len()],
    slipped: [AtomicU64; CLASSES.len()],
}

/// Responses limited, summed over the workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RrlCounts {
    /// Dropped, by class (in [`CLASSES`] order).
    pub dropped: [u64; CLASSES.len()],
    /// Sent truncated, by class.
    pub slipped: [u64; CLASSES.len()],
}

/// The shared limiter.
pub struct Rrl {
    config: RrlConfig,
    table: Table,
    hasher: foldhash::fast::FixedState,
    start: Instant,
    workers: Mutex<Vec<Arc<WorkerCounts>>>,
    log: RateLog,
}

impl std::fmt::Debug for Rrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rrl").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Rrl {
    /// A limiter with a random hash seed.
    pub fn new(config: RrlConfig) -> Result<Arc<Rrl>, RrlError> {
        use std::hash::{BuildHasher, Hasher};
        // A seed the network cannot guess, so no one can aim keys at one
        // line of the table.
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Rrl::with_seed(config, seed)
    }

    /// A limiter with a given hash seed (tests).
    pub fn with_seed(config: RrlConfig, seed: u64) -> Result<Arc<Rrl>, RrlError> {
        config.validate()?;
        Ok(Arc::new(Rrl {
            table: Table::new(config.table_size, config.rate),
            config,
            hasher: foldhash::fast::FixedState::with_seed(seed),
            start: Instant::now(),
            workers: Mutex::new(Vec::new()),
            log: RateLog::new(5),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &RrlConfig {
        &self.config
    }

    /// Buckets in the table (`table_size` rounded up to whole lines).
    pub fn buckets(&self) -> usize {
        self.table.buckets()
    }

    /// The state of one worker thread.
    pub fn worker(self: &Arc<Self>) -> RrlWorker {
        let counts = Arc::new(WorkerCounts::default());
        if let Ok(mut w) = self.workers.lock() {
            w.push(counts.clone());
        }
        RrlWorker { rrl: self.clone(), counts, limited: 0, logged: None }
    }

    /// Limited responses so far, over all workers.
    pub fn counts(&self) -> RrlCounts {
        let mut out = RrlCounts::default();
        let workers = self.workers.lock().map(|w| w.clone()).unwrap_or_default();
        for w in workers {
            for (o, c) in out.dropped.iter_mut().zip(&w.dropped) {
                *o += c.load(Ordering::Relaxed);
            }
            for (o, c) in out.slipped.iter_mut().zip(&w.slipped) {
                *o += c.load(Ordering::Relaxed);
            }
        }
        out
    }

    /// The counters in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let c = self.counts();
        let mut out = String::new();
        for (name, help, values) in [
            (
                "sixgate_dns_rrl_dropped_total",
                "UDP responses dropped by rate limiting, by class.",
                &c.dropped,
            ),
            (
                "sixgate_dns_rrl_slipped_total",
                "UDP responses sent truncated by rate limiting, by class.",
                &c.slipped,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (class, v) in CLASSES.iter().zip(values) {
                let _ = writeln!(out, "{name}{{class=\"{}\"}} {v}", class.name());
            }
        }
        out
    }

    /// The client network of `ip`: family and address bits cut to the
    /// prefix length.
    fn network(&self, ip: IpAddr) -> [u8; 17] {
        let mut out = [0u8; 17];
        let (family, bits) = match fold(ip) {
            IpAddr::V4(v4) => (4, u128::from(v4_bits(v4, self.config.ipv4_prefix))),
            IpAddr::V6(v6) => (6, v6_bits(v6, self.config.ipv6_prefix)),
        };
        let (head, tail) = out.split_at_mut(1);
        head.fill(family);
        tail.copy_from_slice(&bits.to_be_bytes());
        out
    }

    fn hash(&self, network: &[u8; 17], class: Class, name: &[u8]) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.hasher.build_hasher();
        h.write_u8(class.index() as u8);
        h.write(network);
        h.write(name);
        h.finish()
    }
}

/// A worker's view of the limiter.
#[derive(Debug)]
pub struct RrlWorker {
    rrl: Arc<Rrl>,
    counts: Arc<WorkerCounts>,
    /// Limited responses seen by this worker, for the slip count.
    limited: u64,
    /// The tick of the last look at the log's rate.
    logged: Option<Tick>,
}

impl RrlWorker {
    /// The clock, read once per batch.
    pub fn now(&self) -> Tick {
        Tick::after(self.rrl.start.elapsed())
    }

    /// Decides on the UDP `response` (already written) to a query from
    /// `peer`. `exempt` is true for a query with a valid server cookie.
    /// On [`Verdict::Slip`] the response has been cut, in place, to its
    /// truncated form.
    pub fn apply(
        &mut self,
        peer: IpAddr,
        catalog: &Catalog,
        response: &mut Vec<u8>,
        now: Tick,
        exempt: bool,
    ) -> Verdict {
        let rrl = &*self.rrl;
        if exempt || rrl.config.exempt.iter().any(|p| p.contains(peer)) {
            return Verdict::Pass;
        }
        let Some(s) = Summary::of(response) else { return Verdict::Pass };
        let mut qname = NameBuf::new();
        let (class, key) = class::classify(catalog, response, &s, &mut qname);
        let network = rrl.network(peer);
        if rrl.table.take(rrl.hash(&network, class, key), now) == Take::Pass {
            return Verdict::Pass;
        }
        if self.logged != Some(now) {
            // At most one look a tick per worker at the shared log rate.
            self.logged = Some(now);
            if let Some(held_back) = rrl.log.allow() {
                let len =
                    if network.first() == Some(&4) { rrl.config.ipv4_prefix } else { rrl.config.ipv6_prefix };
                let prefix = Prefix { addr: fold(peer), len };
                tracing::info!(
                    client = %prefix,
                    class = class.name(),
                    name = %sixgate_dns::name::to_text(key),
                    held_back,
                    "rate limiting responses"
                );
            }
        }
        self.limited += 1;
        let slip = u64::from(rrl.config.slip);
        let i = class.index();
        if slip > 0 && self.limited.is_multiple_of(slip) {
            truncate(response, &s);
            if let Some(c) = self.counts.slipped.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Slip
        } else {
            if let Some(c) = self.counts.dropped.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Drop
        }
    }
}

/// Skips a wire name at `pos` of `msg` (labels, or labels ending in a
/// pointer); the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + usize::from(len),
            0xc0 => return Some(pos + 2),
            _ => return None,
        }
    }
}

/// The OPT record of `msg` (RFC 6891 §6.1.1), found by walking the
/// records after the question that ends at `pos`.
fn find_opt(msg: &[u8], mut pos: usize) -> Option<std::ops::Range<usize>> {
    let count = |at: usize| Some(usize::from(u16::from_be_bytes(msg.get(at..at + 2)?.try_into().ok()?)));
    let records = count(6)? + count(8)? + count(10)?;
    for _ in 0..records {
        let start = pos;
        let p = skip_name(msg, pos)?;
        let rtype = count(p)?;
        let end = p + 10 + count(p + 8)?;
        if end > msg.len() {
            return None;
        }
        if rtype == 41 {
            return Some(start..end);
        }
        pos = end;
    }
    None
}

/// Cuts `response` in place to its truncated form: the header with TC
/// set and no records, the question, and the OPT record if it had one
/// (RFC 6891 §7: a response to a query with OPT carries one). The rcode
/// and the other flags stay; a client that sees TC retries over TCP
/// (RFC 7766 §5) and ignores the rest.
fn truncate(response: &mut Vec<u8>, s: &Summary) {
    let question_end = if s.qname_end > HEADER_LEN { s.qname_end + 4 } else { HEADER_LEN };
    let question_end = question_end.min(response.len());
    let opt = find_opt(response, question_end);
    let mut len = question_end;
    if let Some(r) = &opt {
        response.copy_within(r.clone(), question_end);
        len += r.len();
    }
    response.truncate(len);
    let qd: u16 = if question_end > HEADER_LEN { 1 } else { 0 };
    let ar: u16 = if opt.is_some() { 1 } else { 0 };
    let [f0, f1] = (s.flags | flags::TC).to_be_bytes();
    let [q0, q1] = qd.to_be_bytes();
    let [a0, a1] = ar.to_be_bytes();
    if let Some(h) = response.get_mut(2..HEADER_LEN) {
        h.copy_from_slice(&[f0, f1, q0, q1, 0, 0, 0, 0, a0, a1]);
    }
}

#[cfg(test)]
#[path = "rrl/tests.rs"]
mod tests;
