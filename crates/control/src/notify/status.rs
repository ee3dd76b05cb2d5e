//! What each secondary has been told and what it serves, per zone: the
//! table the NOTIFY task writes and the API, the metrics and writes that
//! wait for the secondaries read.
//!
//! The table sits behind a plain mutex that is never held across an
//! `.await`; every change that may end a wait moves a `watch`, so a
//! waiting write wakes on the change instead of polling.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use sixgate_dns::name;
use sixgate_dns::xfr::is_up_to_date;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::secondaries::Secondaries;

/// One (secondary, zone) pair: a secondary's address and a lowercased apex.
pub type Key = (SocketAddr, Box<[u8]>);

/// The last NOTIFY sent to a secondary for a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    /// When the first try went out.
    pub at: SystemTime,
    /// The serial it announced.
    pub serial: u32,
    /// When the secondary acknowledged it; `None` while unanswered or
    /// after every try failed.
    pub acked: Option<SystemTime>,
    /// Tries so far (1 when the first was answered).
    pub tries: u32,
    /// Every try went unanswered, or the secondary refused it.
    pub failed: bool,
}

/// The serial a secondary reported for a zone (an SOA query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    /// Its serial.
    pub serial: u32,
    /// When it was read.
    pub at: SystemTime,
}

#[derive(Debug, Default, Clone)]
struct Pair {
    notified: Option<Notified>,
    reported: Option<Reported>,
    /// Why the last SOA query got no serial, if it did not.
    error: Option<String>,
    /// Since when we serve a serial this secondary does not have.
    behind_since: Option<Instant>,
}

/// A served zone: its serial and since when.
#[derive(Debug, Clone, Copy)]
struct Served {
    serial: u32,
    since: Instant,
}

/// Per secondary: the NOTIFY counters of the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// NOTIFY messages sent, retries included.
    pub sent: u64,
    /// Of those, the retries.
    pub retried: u64,
    /// NOTIFYs given up on (every try unanswered, or refused).
    pub failed: u64,
}

/// One secondary's state for one zone, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The secondary.
    pub address: SocketAddr,
    /// The last NOTIFY sent.
    pub notified: Option<Notified>,
    /// The serial it last reported.
    pub reported: Option<Reported>,
    /// Why the last SOA query got no serial.
    pub error: Option<String>,
    /// It reports the served serial (or a later one).
    pub in_sync: bool,
    /// How long it has been behind: since we first served a serial it
    /// lacks. `None` when in sync.
    pub lag: Option<Duration>,
}

/// The status of every secondary for one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneReport {
    /// The serial served here.
    pub serial: u32,
    /// Every secondary that carries the zone.
    pub secondaries: Vec<Report>,
}

#[derive(Default)]
struct Table {
    secondaries: Arc<Secondaries>,
    served: HashMap<Box<[u8]>, Served>,
    pairs: HashMap<Key, Pair>,
    counters: HashMap<SocketAddr, Counters>,
}

/// The shared status table.
pub struct Status {
    table: Mutex<Table>,
    changed: watch::Sender<u64>,
}

impl Default for Status {
    fn default() -> Self {
        Status { table: Mutex::new(Table::default()), changed: watch::Sender::new(0) }
    }
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status").finish_non_exhaustive()
    }
}

/// How a wait for the secondaries ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waited {
    /// Every secondary carrying the zone reports the serial (or a later
    /// one); also true when none carries it.
    pub reached: bool,
    /// Each secondary's state when the wait ended.
    pub secondaries: Vec<Report>,
}

impl Status {
    /// An empty table.
    pub fn new() -> Arc<Status> {
        Arc::new(Status::default())
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere leaves the table consistent (every update is
        // one assignment), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The secondaries and what each reports for the zone `apex` (any
    /// case); `None` when the zone is not served here.
    pub fn zone(&self, apex: &[u8]) -> Option<ZoneReport> {
        let apex = name::to_lowercase(apex);
        let t = self.table();
        let served = *t.served.get(&apex)?;
        let now = Instant::now();
        let secondaries = t
            .secondaries
            .carrying(&apex)
            .map(|s| {
                let key = (s.address, apex.clone());
                let pair = t.pairs.get(&key).cloned().unwrap_or_default();
                let in_sync = pair.reported.is_some_and(|r| is_up_to_date(r.serial, served.serial));
                let lag = match in_sync {
                    true => None,
                    false => Some(now.saturating_duration_since(pair.behind_since.unwrap_or(served.since))),
                };
                Report {
                    address: s.address,
                    notified: pair.notified,
                    reported: pair.reported,
                    error: pair.error,
                    in_sync,
                    lag,
                }
            })
            .collect();
        Some(ZoneReport { serial: served.serial, secondaries })
    }

    /// Waits until every secondary carrying `apex` reports `serial` or a
    /// later one (RFC 1982 arithmetic), or `timeout` passes. Wakes on the
    /// table's changes only; holds no lock while it waits.
    pub async fn wait(&self, apex: &[u8], serial: u32, timeout: Duration) -> Waited {
        let mut rx = self.changed.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            // Marked seen before the look, so a change made after it
            // wakes the next wait.
            rx.borrow_and_update();
            let secondaries = self.zone(apex).map(|z| z.secondaries).unwrap_or_default();
            let reached =
                secondaries.iter().all(|s| s.reported.is_some_and(|r| is_up_to_date(r.serial, serial)));
            if reached {
                return Waited { reached, secondaries };
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the table is gone: answer with what is known.
                _ => {
                    let secondaries = self.zone(apex).map(|z| z.secondaries).unwrap_or_default();
                    let reached = secondaries
                        .iter()
                        .all(|s| s.reported.is_some_and(|r| is_up_to_date(r.serial, serial)));
                    return Waited { reached, secondaries };
                }
            }
        }
    }

    /// Follows the table's changes (for tests and waiters).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The NOTIFY counters per secondary.
    pub fn counters(&self) -> Vec<(SocketAddr, Counters)> {
        let t = self.table();
        let mut v: Vec<_> = t.counters.iter().map(|(a, c)| (*a, *c)).collect();
        v.sort_by_key(|(a, _)| *a);
        v
    }

    /// Per secondary: how many zones it is behind on, and the greatest
    /// lag among them. One pass over the pairs, without allocating per
    /// pair: a scrape of many zones holds the table briefly.
    pub fn lag(&self) -> Vec<(SocketAddr, usize, Duration)> {
        let t = self.table();
        let now = Instant::now();
        let mut out: HashMap<SocketAddr, (usize, Duration)> =
            t.secondaries.list.iter().map(|s| (s.address, (0, Duration::ZERO))).collect();
        for ((address, apex), pair) in &t.pairs {
            let Some(served) = t.served.get(apex) else { continue };
            if pair.reported.is_some_and(|r| is_up_to_date(r.serial, served.serial)) {
                continue;
            }
            let since = pair.behind_since.unwrap_or(served.since);
            let e = out.entry(*address).or_default();
            e.0 += 1;
            e.1 = e.1.max(now.saturating_duration_since(since));
        }
        let mut v: Vec<_> = out.into_iter().map(|(a, (n, l))| (a, n, l)).collect();
        v.sort_by_key(|(a, _, _)| *a);
        v
    }

    /// The metrics in Prometheus text format: per secondary (label
    /// `address`), never per zone, so the number of series stays that of
    /// the secondaries.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let counters = self.counters();
        let lag = self.lag();
        let mut out = String::new();
        let mut family =
            |name: &str, kind: &str, help: &str, values: &mut dyn Iterator<Item = (SocketAddr, String)>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (a, v) in values {
                    let _ = writeln!(out, "{name}{{address=\"{a}\"}} {v}");
                }
            };
        family(
            "sixgate_notify_sent_total",
            "counter",
            "NOTIFY messages sent to the secondary, retries included.",
            &mut counters.iter().map(|(a, c)| (*a, c.sent.to_string())),
        );
        family(
            "sixgate_notify_retried_total",
            "counter",
            "NOTIFY messages sent again after no answer.",
            &mut counters.iter().map(|(a, c)| (*a, c.retried.to_string())),
        );
        family(
            "sixgate_notify_failed_total",
            "counter",
            "NOTIFYs given up on: every try unanswered, or refused.",
            &mut counters.iter().map(|(a, c)| (*a, c.failed.to_string())),
        );
        family(
            "sixgate_secondary_zones_behind",
            "gauge",
            "Zones whose served serial the secondary does not report yet.",
            &mut lag.iter().map(|(a, n, _)| (*a, n.to_string())),
        );
        family(
            "sixgate_secondary_lag_seconds",
            "gauge",
            "The longest time the secondary has been behind on one of its zones.",
            &mut lag.iter().map(|(a, _, l)| (*a, format!("{:.3}", l.as_secs_f64()))),
        );
        out
    }

    // The writers: the NOTIFY task's, public so that readers (the API)
    // can be tested against a table they fill.

    /// Takes a new list of secondaries: pairs no secondary carries any
    /// more are forgotten, and every served zone gets a pair for each
    /// secondary carrying it.
    pub fn set_secondaries(&self, s: Arc<Secondaries>) {
        {
            let mut t = self.table();
            t.pairs.retain(|(a, apex), _| s.carrying(apex).any(|x| x.address == *a));
            t.counters.retain(|a, _| s.list.iter().any(|x| x.address == *a));
            let apexes: Vec<Box<[u8]>> = t.served.keys().cloned().collect();
            for apex in apexes {
                for x in s.carrying(&apex) {
                    t.pairs.entry((x.address, apex.clone())).or_default();
                }
            }
            t.secondaries = s;
        }
        self.bump();
    }

    /// We serve `serial` for `apex` from now on (`None`: no longer
    /// served). Secondaries that were in sync are behind from now.
    pub fn set_served(&self, apex: &[u8], serial: Option<u32>) {
        {
            let mut t = self.table();
            let now = Instant::now();
            match serial {
                Some(serial) => {
                    t.served.insert(apex.into(), Served { serial, since: now });
                    let addresses: Vec<SocketAddr> =
                        t.secondaries.carrying(apex).map(|s| s.address).collect();
                    for a in addresses {
                        let pair = t.pairs.entry((a, apex.into())).or_default();
                        let in_sync = pair.reported.is_some_and(|r| is_up_to_date(r.serial, serial));
                        if in_sync {
                            pair.behind_since = None;
                        } else if pair.behind_since.is_none() {
                            pair.behind_since = Some(now);
                        }
                    }
                }
                None => {
                    t.served.remove(apex);
                    t.pairs.retain(|(_, a), _| **a != *apex);
                }
            }
        }
        self.bump();
    }

    /// A NOTIFY try for `serial` went out (`first`: the first of its tries).
    pub fn notify_sent(&self, key: &Key, serial: u32, first: bool) {
        let mut t = self.table();
        let c = t.counters.entry(key.0).or_default();
        c.sent += 1;
        if !first {
            c.retried += 1;
        }
        let pair = t.pairs.entry(key.clone()).or_default();
        match (&mut pair.notified, first) {
            (Some(n), false) if n.serial == serial => n.tries += 1,
            _ => {
                pair.notified =
                    Some(Notified { at: SystemTime::now(), serial, acked: None, tries: 1, failed: false })
            }
        }
    }

    /// The NOTIFY for `serial` was answered (`acked`) or given up on.
    pub fn notify_done(&self, key: &Key, serial: u32, acked: bool) {
        {
            let mut t = self.table();
            if !acked {
                t.counters.entry(key.0).or_default().failed += 1;
            }
            if let Some(n) = t.pairs.entry(key.clone()).or_default().notified.as_mut()
                && n.serial == serial
            {
                n.acked = acked.then(SystemTime::now);
                n.failed = !acked;
            }
        }
        self.bump();
    }

    /// A secondary reported `serial` for the zone (`Ok`), or its SOA
    /// query failed (`Err`, the reason).
    pub fn reported(&self, key: &Key, answer: Result<u32, String>) {
        {
            let mut t = self.table();
            let served = t.served.get(&key.1).map(|s| s.serial);
            let pair = t.pairs.entry(key.clone()).or_default();
            match answer {
                Ok(serial) => {
                    pair.reported = Some(Reported { serial, at: SystemTime::now() });
                    pair.error = None;
                    if served.is_some_and(|s| is_up_to_date(serial, s)) {
                        pair.behind_since = None;
                    }
                }
                Err(e) => pair.error = Some(e),
            }
        }
        self.bump();
    }
}
