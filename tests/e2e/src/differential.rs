//! Sending every case to two servers and comparing what comes back.
//!
//! [`run`] spreads the cases over a few worker threads (each with its own UDP
//! sockets and reused TCP connections per server), sends each case to both
//! servers, compares the outcomes with [`crate::compare()`], and collects every
//! mismatch. It never stops at the first difference: the report counts them
//! all and shows the first ones in full. Two safety valves keep a broken
//! server from turning the run into an hour of timeouts: an overall deadline,
//! and a limit on consecutive cases where a server sent nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::client::{UdpClient, read_framed, tcp_connect, udp_exchange, write_framed};
use crate::compare::{Difference, compare, summary};
use crate::query::QuerySpec;

/// How a case is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// UDP on the worker's long-lived socket.
    Udp,
    /// UDP on a fresh socket with a short wait: for messages that may well
    /// get no answer, so a late answer cannot be mistaken for another's.
    UdpQuick,
    /// TCP on the worker's reused connection.
    Tcp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::UdpQuick => "udp",
            Self::Tcp => "tcp",
        })
    }
}

/// One message to send to both servers.
#[derive(Clone, Debug)]
pub struct Case {
    /// What it is, e.g. the query in one line.
    pub label: String,
    /// The query as data, when it is a well-formed query.
    pub spec: Option<QuerySpec>,
    /// The bytes sent.
    pub bytes: Vec<u8>,
    /// How they are sent.
    pub transport: Transport,
}

impl Case {
    /// A case from a well-formed query.
    pub fn query(spec: QuerySpec, transport: Transport) -> Self {
        let bytes = spec.encode().unwrap_or_default();
        Self { label: spec.to_string(), spec: Some(spec), bytes, transport }
    }

    /// A case from crafted bytes.
    pub fn crafted(label: impl Into<String>, bytes: Vec<u8>, transport: Transport) -> Self {
        Self { label: label.into(), spec: None, bytes, transport }
    }
}

/// A server under comparison.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its name in reports (`knot`, `sixgate`).
    pub name: String,
    /// Its UDP address.
    pub udp: SocketAddr,
    /// Its TCP address.
    pub tcp: SocketAddr,
}

impl Target {
    /// A target answering UDP and TCP on one address.
    pub fn new(name: &str, udp: SocketAddr, tcp: SocketAddr) -> Self {
        Self { name: name.to_owned(), udp, tcp }
    }
}

/// Limits of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads.
    pub threads: usize,
    /// Wait per UDP try.
    pub udp_timeout: Duration,
    /// UDP tries per case.
    pub udp_tries: u32,
    /// Wait for [`Transport::UdpQuick`] cases (one try).
    pub quick_timeout: Duration,
    /// Read/write timeout on TCP.
    pub tcp_timeout: Duration,
    /// Stop starting new cases after this long.
    pub deadline: Duration,
    /// Stop if one server is silent (where the other answered) this many
    /// times in a row.
    pub max_consecutive_silences: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            threads: 4,
            udp_timeout: Duration::from_millis(1500),
            udp_tries: 2,
            quick_timeout: Duration::from_millis(500),
            tcp_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(120),
            max_consecutive_silences: 50,
        }
    }
}

/// One case whose outcomes differ.
#[derive(Clone, Debug)]
pub struct Mismatch {
    /// Index into the cases.
    pub index: usize,
    /// The case.
    pub case: Case,
    /// What differs.
    pub differences: Vec<Difference>,
    /// The two outcomes, in target order.
    pub responses: [Option<Vec<u8>>; 2],
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Target names.
    pub names: [String; 2],
    /// Cases given.
    pub total: usize,
    /// Cases sent and compared.
    pub compared: usize,
    /// Mismatches, in case order.
    pub mismatches: Vec<Mismatch>,
    /// Transport errors (other than silence) per case.
    pub errors: Vec<String>,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    /// True if every case was compared and none differed.
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty() && self.errors.is_empty() && self.aborted.is_none()
    }

    /// A readable summary: totals, every kind of difference with its count,
    /// and up to `limit` mismatches in full, chosen round-robin across kinds
    /// so that one frequent difference does not hide the rarer ones.
    pub fn render(&self, limit: usize) -> String {
        let [a, b] = &self.names;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} of {} cases compared in {:.1?}: {} mismatches, {} transport errors{}",
            self.compared,
            self.total,
            self.elapsed,
            self.mismatches.len(),
            self.errors.len(),
            self.aborted.as_ref().map(|why| format!(", ABORTED: {why}")).unwrap_or_default()
        );
        // Kind -> indices of the mismatches that show it.
        let mut kinds: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, mismatch) in self.mismatches.iter().enumerate() {
            for difference in &mismatch.differences {
                let list = kinds.entry(difference.kind.as_str()).or_default();
                if list.last() != Some(&index) {
                    list.push(index);
                }
            }
        }
        if !kinds.is_empty() {
            let mut by_count: Vec<(&str, usize)> = kinds.iter().map(|(k, v)| (*k, v.len())).collect();
            by_count.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
            let _ = writeln!(out, "kinds of difference (cases showing each):");
            for (kind, count) in &by_count {
                let _ = writeln!(out, "  {count:6}  {kind}");
            }
        }
        for error in self.errors.iter().take(10) {
            let _ = writeln!(out, "error: {error}");
        }
        let mut chosen = Vec::new();
        let mut round = 0;
        while chosen.len() < limit.min(self.mismatches.len()) {
            let mut added = false;
            for list in kinds.values() {
                if let Some(&index) = list.get(round) {
                    added = true;
                    if !chosen.contains(&index) && chosen.len() < limit {
                        chosen.push(index);
                    }
                }
            }
            if !added {
                break;
            }
            round += 1;
        }
        chosen.sort_unstable();
        if !chosen.is_empty() {
            let _ = writeln!(out, "examples ({} of {} mismatches):", chosen.len(), self.mismatches.len());
        }
        for mismatch in chosen.iter().filter_map(|&i| self.mismatches.get(i)) {
            let _ = writeln!(out, "#{} {} {}", mismatch.index, mismatch.case.transport, mismatch.case.label);
            for difference in &mismatch.differences {
                let _ = writeln!(out, "    {difference}");
            }
            let [ra, rb] = &mismatch.responses;
            let show = |r: &Option<Vec<u8>>| r.as_deref().map_or("no response".to_owned(), summary);
            let _ = writeln!(out, "    {a}: {}", show(ra));
            let _ = writeln!(out, "    {b}: {}", show(rb));
        }
        out
    }
}

/// A reused TCP connection that reconnects once when the server closed it.
struct TcpConnection {
    server: SocketAddr,
    timeout: Duration,
    stream: Option<TcpStream>,
}

impl TcpConnection {
    fn exchange(&mut self, query: &[u8]) -> Result<Option<Vec<u8>>> {
        for attempt in 0..2 {
            let stream = match self.stream.as_mut() {
                Some(stream) => stream,
                None => self.stream.insert(tcp_connect(self.server, self.timeout)?),
            };
            let result = write_framed(stream, query).and_then(|()| read_framed(stream));
            match result {
                Ok(Some(response)) => return Ok(Some(response)),
                Ok(None) => self.stream = None,
                Err(error) => {
                    self.stream = None;
                    if attempt == 1 {
                        return Err(error);
                    }
                }
            }
        }
        Ok(None)
    }
}

struct Side {
    udp: UdpClient,
    tcp: TcpConnection,
    target: Target,
}

impl Side {
    fn new(target: &Target, options: &Options) -> Result<Self> {
        Ok(Self {
            udp: UdpClient::new(target.udp)?,
            tcp: TcpConnection { server: target.tcp, timeout: options.tcp_timeout, stream: None },
            target: target.clone(),
        })
    }

    fn exchange(&mut self, case: &Case, options: &Options) -> Result<Option<Vec<u8>>> {
        match case.transport {
            Transport::Udp => self.udp.exchange(&case.bytes, options.udp_timeout, options.udp_tries),
            Transport::UdpQuick => udp_exchange(self.target.udp, &case.bytes, options.quick_timeout, 1),
            Transport::Tcp => self.tcp.exchange(&case.bytes),
        }
    }
}

/// Sends every case to both targets and compares; see the module docs.
pub fn run(cases: &[Case], targets: [&Target; 2], options: &Options) -> Report {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let compared = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let silences = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let mismatches = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    let aborted = Mutex::new(None);
    let names = targets.map(|t| t.name.clone());
    let name_refs = [names[0].as_str(), names[1].as_str()];
    thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                let sides = (Side::new(targets[0], options), Side::new(targets[1], options));
                let (mut side_a, mut side_b) = match sides {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(error), _) | (_, Err(error)) => {
                        push(&errors, format!("worker setup: {error:#}"));
                        return;
                    }
                };
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if start.elapsed() > options.deadline {
                        set_abort(&aborted, &stop, format!("deadline of {:?} passed", options.deadline));
                        return;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(index) else { return };
                    let outcome_a = side_a.exchange(case, options);
                    let outcome_b = side_b.exchange(case, options);
                    let (ra, rb) = match (outcome_a, outcome_b) {
                        (Ok(ra), Ok(rb)) => (ra, rb),
                        (a, b) => {
                            for (name, outcome) in [(name_refs[0], a), (name_refs[1], b)] {
                                if let Err(error) = outcome {
                                    push(
                                        &errors,
                                        format!(
                                            "#{index} {} {}: {name}: {error:#}",
                                            case.transport, case.label
                                        ),
                                    );
                                }
                            }
                            continue;
                        }
                    };
                    compared.fetch_add(1, Ordering::Relaxed);
                    for (side, (mine, other)) in [(&ra, &rb), (&rb, &ra)].into_iter().enumerate() {
                        let counter = &silences[side];
                        if mine.is_none() && other.is_some() {
                            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                            if n >= options.max_consecutive_silences {
                                set_abort(
                                    &aborted,
                                    &stop,
                                    format!(
                                        "{} did not answer {n} cases in a row that the other answered",
                                        name_refs[side]
                                    ),
                                );
                            }
                        } else if mine.is_some() {
                            counter.store(0, Ordering::Relaxed);
                        }
                    }
                    let differences = compare(ra.as_deref(), rb.as_deref(), name_refs);
                    if !differences.is_empty() {
                        push(
                            &mismatches,
                            Mismatch { index, case: case.clone(), differences, responses: [ra, rb] },
                        );
                    }
                }
            });
        }
    });
    let mut mismatches = mismatches.into_inner().unwrap_or_default();
    mismatches.sort_by_key(|m| m.index);
    Report {
        names,
        total: cases.len(),
        compared: compared.into_inner(),
        mismatches,
        errors: errors.into_inner().unwrap_or_default(),
        aborted: aborted.into_inner().unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

fn push<T>(list: &Mutex<Vec<T>>, item: T) {
    if let Ok(mut list) = list.lock() {
        list.push(item);
    }
}

fn set_abort(aborted: &Mutex<Option<String>>, stop: &AtomicBool, why: String) {
    stop.store(true, Ordering::Relaxed);
    if let Ok(mut slot) = aborted.lock() {
        slot.get_or_insert(why);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::corpus;
    use crate::knot::Knot;
    use crate::process::ZoneFile;
    use crate::rng::Rng;

    fn target(name: &str, knot: &Knot) -> Target {
        Target::new(name, knot.addr(), knot.addr())
    }

    /// The comparator's self-check: Knot against itself, on the whole
    /// corpus, must show no difference at all.
    #[test]
    fn knot_against_itself_shows_no_difference() {
        let zones = ZoneFile::all_testdata().unwrap();
        let (a, b) = (Knot::start(&zones).unwrap(), Knot::start(&zones).unwrap());
        let (mut rng, seed) = Rng::from_env_or_clock();
        let mut cases = corpus::build(&a.zone_contents().unwrap(), &mut rng);
        cases.extend(corpus::handwritten("example.test"));
        let report = run(&cases, [&target("knot-a", &a), &target("knot-b", &b)], &Options::default());
        assert!(report.is_clean(), "seed {seed}\n{}", report.render(50));
        assert_eq!(report.compared, cases.len());
    }

    /// ... and a deliberately altered answer must show up, and only there.
    #[test]
    fn an_altered_answer_shows_a_difference() {
        let dir = tempfile::tempdir().unwrap();
        let zones = ZoneFile::all_testdata().unwrap();
        let mut altered = Vec::new();
        for zone in &zones {
            let mut text = fs::read_to_string(&zone.path).unwrap();
            if zone.origin == "example.test." {
                let before = text.len();
                text = text.replace("www\t\tA\t192.0.2.80", "www\t\tA\t192.0.2.99");
                assert_eq!(before, text.len());
                assert!(text.contains("192.0.2.99"));
            }
            let path = dir.path().join(zone.path.file_name().unwrap());
            fs::write(&path, text).unwrap();
            altered.push(ZoneFile::new(&zone.origin, path));
        }
        let (a, b) = (Knot::start(&zones).unwrap(), Knot::start(&altered).unwrap());
        let mut rng = Rng::new(5);
        let cases: Vec<Case> = corpus::build(&a.zone_contents().unwrap(), &mut rng)
            .into_iter()
            .filter(|case| {
                let label = case.label.to_ascii_lowercase();
                label.starts_with("www.example.test. in a ") || label.starts_with("c1.example.test. in a ")
            })
            .collect();
        assert!(cases.len() > 10, "{} cases", cases.len());
        let report = run(&cases, [&target("original", &a), &target("altered", &b)], &Options::default());
        assert_eq!(report.mismatches.len(), cases.len(), "{}", report.render(5));
        let text = report.render(1);
        assert!(text.contains("192.0.2.99") && text.contains("192.0.2.80"), "{text}");
        assert!(text.contains("answer"), "{text}");
    }
}
