//! NOTIFY (RFC 1996) to the secondaries, and what they serve.
//!
//! [`run`] follows the served catalog (it wakes when the publisher swaps
//! in a new one, [`crate::publish::Follower::changed`]) and the
//! secondaries' list. A zone whose serial moved, a new zone, and the
//! catalog zone (RFC 9432) when its membership moved, is announced to
//! every secondary that carries it; a secondary added to the list is
//! announced every zone it carries, so it starts at once. Unchanged
//! zones are the same `Arc` in the new catalog and cost one pointer
//! comparison. Changes the CLI commits on the data directory reach the
//! publisher like the API's, so they are announced too.
//!
//! Sending:
//! - one NOTIFY in flight per (secondary, zone). Changes meanwhile only
//!   raise the serial to announce, and the next NOTIFY for the pair
//!   leaves once the one in flight ends, at least [`MIN_GAP`] after it:
//!   a burst of writes costs a few NOTIFYs, not one each. The queue holds
//!   one entry per pair, so it is bounded by zones × secondaries;
//! - at most [`MAX_IN_FLIGHT`] NOTIFYs at once, [`PER_SECONDARY`] per
//!   secondary, taken from the secondaries' queues in turn: a slow or
//!   unreachable secondary holds a few slots, never the others' turn;
//! - RFC 1996 §3.6: a NOTIFY unanswered is sent again, here after a
//!   timeout that doubles from [`Retry::timeout`] (jittered) for
//!   [`Retry::tries`] tries, then given up on and logged (at a bounded
//!   rate). It is signed with the secondary's TSIG key, if it has one,
//!   and an answer counts only when its signature verifies.
//!
//! Status ([`status::Status`]): each acknowledged NOTIFY is followed by
//! SOA queries to the secondary, from [`FOLLOW_FIRST`] doubling to
//! [`FOLLOW_MAX`], until it reports the serial or [`FOLLOW_FOR`] passes
//! ([`MAX_FOLLOWING`] pairs at once);
//! and every pair is queried once per [`NotifySettings::probe_interval`],
//! spread over the interval and at most
//! [`NotifySettings::probes_per_second`], so many zones cost a steady
//! trickle. The table feeds the API, the metrics and writes that wait
//! for the secondaries ([`status::Status::wait`]).

mod exchange;
pub mod status;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sixgate_dns::rtype::code;
use sixgate_dns::tsig::{Algorithm, Key};
use sixgate_dns::xfr::{is_up_to_date, serial_gt};
use sixgate_dns::{Catalog, Zone, name};
use sixgate_listen::ratelog::RateLog;
use sixgate_server::SharedCatalog;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::secondaries::{Secondaries, SharedSecondaries};
use status::Key as PairKey;
pub use status::Status;

/// NOTIFYs in flight at once, over every secondary: each is one UDP
/// socket, so this bounds the sockets and the timers.
pub const MAX_IN_FLIGHT: usize = 64;
/// NOTIFYs in flight at once to one secondary. An unreachable secondary
/// keeps each of its NOTIFYs for the whole retry schedule (31 s with the
/// defaults): it holds at most this many of the slots.
pub const PER_SECONDARY: usize = 16;
/// The shortest time between two NOTIFYs of one (secondary, zone) pair:
/// the changes of a burst coalesce into the next one (at most 20 a
/// second per pair), while a lone change still goes out at once.
pub const MIN_GAP: Duration = Duration::from_millis(50);
/// The first SOA query after an acknowledged NOTIFY: a loopback
/// secondary has often transferred the change by then.
pub const FOLLOW_FIRST: Duration = Duration::from_millis(5);
/// The longest pause between those queries.
pub const FOLLOW_MAX: Duration = Duration::from_secs(1);
/// How long a secondary is followed after a NOTIFY; after that only the
/// periodic probe reads its serial.
pub const FOLLOW_FOR: Duration = Duration::from_secs(60);
/// Pairs followed at once. Each costs a query a second once its pauses
/// reach [`FOLLOW_MAX`]: a change to thousands of zones that the
/// secondaries do not take (a transfer refused) would otherwise cost
/// thousands of queries a second. Beyond it, the periodic probe reads
/// the serial.
pub const MAX_FOLLOWING: usize = 512;

/// How a NOTIFY is retried (RFC 1996 §3.6 leaves the schedule to us).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Tries before giving up: 5 spans about 31 s from a 1 s timeout,
    /// longer than a secondary's restart.
    pub tries: u32,
    /// The first try's timeout; each next one doubles it. Also the SOA
    /// query's timeout.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { tries: 5, timeout: Duration::from_secs(1) }
    }
}

/// The NOTIFY task's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// Retries of an unanswered NOTIFY.
    pub retry: Retry,
    /// How often each secondary's serial is read for each zone, besides
    /// after a NOTIFY.
    pub probe_interval: Duration,
    /// At most this many periodic SOA queries a second, over all pairs.
    pub probes_per_second: u32,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            retry: Retry::default(),
            probe_interval: Duration::from_secs(60),
            probes_per_second: 20,
        }
    }
}

/// What the task follows.
pub struct Inputs {
    /// The catalog being served.
    pub catalog: SharedCatalog,
    /// Moves whenever the publisher swaps the catalog or reloads the
    /// secondaries.
    pub changed: watch::Receiver<u64>,
    /// The secondaries, as the publisher last read them.
    pub secondaries: SharedSecondaries,
}

/// Warnings of NOTIFYs given up on, at most a few a second.
static GIVE_UP_LOG: RateLog = RateLog::new(5);

/// Where a pair's NOTIFY stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In its secondary's queue.
    Queued,
    /// Being sent.
    Running,
    /// Waiting out [`MIN_GAP`] before the next one.
    Resting,
    /// Told everything; `since` says when the last NOTIFY started.
    Idle,
}

#[derive(Debug)]
struct Job {
    /// The serial to announce: the newest served.
    want: u32,
    /// The SOA to put in the answer section (TTL, rdata).
    soa: Option<(u32, Box<[u8]>)>,
    state: State,
    /// When the last NOTIFY for the pair started.
    since: Option<Instant>,
}

/// What a finished task reports.
enum Done {
    Notify { key: PairKey, serial: u32, result: Result<(), String> },
    Rested { key: PairKey },
    Followed { key: PairKey, reached: Option<u32> },
    Probed,
}

/// Runs until `shutdown` says true.
pub async fn run(
    inputs: Inputs,
    status: Arc<Status>,
    settings: NotifySettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut s = Scheduler::new(inputs, status, settings);
    let mut changes_open = true;
    loop {
        s.scan();
        s.dispatch();
        tokio::select! {
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            r = s.inputs.changed.changed(), if changes_open => {
                // The publisher is gone: the catalog no longer changes.
                changes_open = r.is_ok();
            }
            Some(done) = s.tasks.join_next_with_id(), if !s.tasks.is_empty() => {
                match done {
                    Ok((id, done)) => {
                        s.spawned.remove(&id);
                        s.finished(done);
                    }
                    // A task that panicked still ends its NOTIFY or its
                    // follow-up, so that its pair is not stuck.
                    Err(e) => {
                        tracing::error!(error = %e, "a NOTIFY task failed");
                        if let Some(done) = s.spawned.remove(&e.id()) {
                            s.finished(done);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(s.next_probe) => s.probe_next(),
        }
    }
    s.tasks.abort_all();
}

struct Scheduler {
    inputs: Inputs,
    status: Arc<Status>,
    settings: NotifySettings,
    last_catalog: Option<Arc<Catalog>>,
    /// The zones served as last seen, by lowercased apex.
    zones: HashMap<Box<[u8]>, Arc<Zone>>,
    secondaries: Arc<Secondaries>,
    jobs: HashMap<PairKey, Job>,
    queues: HashMap<SocketAddr, VecDeque<Box<[u8]>>>,
    running: HashMap<SocketAddr, usize>,
    in_flight: usize,
    /// Pairs being followed after a NOTIFY, with the serial looked for.
    follow: HashMap<PairKey, Arc<AtomicU32>>,
    /// Every pair, in the periodic probe's turn.
    periodic: VecDeque<PairKey>,
    next_probe: Instant,
    tasks: JoinSet<Done>,
    /// What each NOTIFY and follow-up task reports should it fail.
    spawned: HashMap<tokio::task::Id, Done>,
}

/// The zone's SOA: TTL and rdata.
fn soa_of(zone: &Zone) -> Option<(u32, Box<[u8]>)> {
    let set = zone.apex_node()?.rrset(code::SOA)?;
    Some((set.ttl, set.rdatas().next()?.into()))
}

/// The TSIG key of the secondary at `address`, if it has one.
fn key_of(secondaries: &Secondaries, address: SocketAddr) -> Result<Option<Key>, String> {
    let Some(k) = secondaries.list.iter().find(|s| s.address == address).and_then(|s| s.key.as_ref()) else {
        return Ok(None);
    };
    let alg = Algorithm::from_text(&k.algorithm).ok_or_else(|| {
        format!("the key {} has an unknown algorithm {}", name::to_text(&k.name), k.algorithm)
    })?;
    Ok(Some(Key::new(&k.name, alg, k.secret.clone())))
}

impl Scheduler {
    fn new(inputs: Inputs, status: Arc<Status>, settings: NotifySettings) -> Scheduler {
        Scheduler {
            inputs,
            status,
            next_probe: Instant::now() + settings.probe_interval,
            settings,
            last_catalog: None,
            zones: HashMap::new(),
            secondaries: Arc::new(Secondaries::default()),
            jobs: HashMap::new(),
            queues: HashMap::new(),
            running: HashMap::new(),
            in_flight: 0,
            follow: HashMap::new(),
            periodic: VecDeque::new(),
            tasks: JoinSet::new(),
            spawned: HashMap::new(),
        }
    }

    /// Compares the served catalog and the secondaries with what was last
    /// seen, and queues a NOTIFY for every pair whose zone changed.
    fn scan(&mut self) {
        let catalog = self.inputs.catalog.load_full();
        let secondaries = self.inputs.secondaries.load_full();
        let new_list = !Arc::ptr_eq(&secondaries, &self.secondaries);
        let new_catalog = self.last_catalog.as_ref().is_none_or(|c| !Arc::ptr_eq(c, &catalog));
        if !new_list && !new_catalog {
            return;
        }
        if new_list {
            self.status.set_secondaries(secondaries.clone());
        }
        let old_list = std::mem::replace(&mut self.secondaries, secondaries.clone());
        let mut seen: HashMap<Box<[u8]>, Arc<Zone>> = HashMap::with_capacity(catalog.len());
        let mut pairs_moved = new_list;
        for zone in catalog.zones() {
            let apex: Box<[u8]> = zone.apex().into();
            let changed = match self.zones.get(&apex) {
                Some(old) if Arc::ptr_eq(old, zone) => false,
                Some(old) => old.serial() != zone.serial(),
                None => {
                    pairs_moved = true;
                    true
                }
            };
            if changed {
                if let Some(serial) = zone.serial() {
                    self.status.set_served(&apex, Some(serial));
                    let soa = soa_of(zone);
                    let to: Vec<SocketAddr> = secondaries.carrying(&apex).map(|s| s.address).collect();
                    for address in to {
                        self.enqueue((address, apex.clone()), serial, soa.clone());
                    }
                }
            } else if new_list && let Some(serial) = zone.serial() {
                // Secondaries that did not carry the zone before start now.
                let soa = soa_of(zone);
                let to: Vec<SocketAddr> = secondaries
                    .carrying(&apex)
                    .filter(|s| !old_list.carrying(&apex).any(|o| o.address == s.address))
                    .map(|s| s.address)
                    .collect();
                for address in to {
                    self.enqueue((address, apex.clone()), serial, soa.clone());
                }
            }
            seen.insert(apex, zone.clone());
        }
        for apex in self.zones.keys().filter(|a| !seen.contains_key(*a)) {
            // A deleted zone needs no NOTIFY (the catalog zone's change
            // tells its followers); forget what was waiting for it.
            self.status.set_served(apex, None);
            pairs_moved = true;
        }
        self.zones = seen;
        let (zones, list) = (&self.zones, &self.secondaries);
        self.jobs.retain(|(a, apex), j| {
            j.state == State::Running
                || (zones.contains_key(apex) && list.carrying(apex).any(|s| s.address == *a))
        });
        for (a, q) in self.queues.iter_mut() {
            q.retain(|apex| zones.contains_key(apex) && list.carrying(apex).any(|s| s.address == *a));
        }
        if pairs_moved {
            self.periodic = self
                .zones
                .keys()
                .flat_map(|apex| self.secondaries.carrying(apex).map(|s| (s.address, apex.clone())))
                .collect();
        }
        self.last_catalog = Some(catalog);
    }

    /// Asks for the pair to be told `serial`: queued, or noted for the
    /// NOTIFY after the one in flight (or resting).
    fn enqueue(&mut self, key: PairKey, serial: u32, soa: Option<(u32, Box<[u8]>)>) {
        let job = self.jobs.entry(key.clone()).or_insert(Job {
            want: serial,
            soa: None,
            state: State::Idle,
            since: None,
        });
        job.want = serial;
        job.soa = soa;
        if job.state != State::Idle {
            return;
        }
        match job.since.map(|t| t + MIN_GAP).filter(|&until| until > Instant::now()) {
            Some(until) => self.rest(key, until),
            None => {
                job.state = State::Queued;
                self.queues.entry(key.0).or_default().push_back(key.1);
            }
        }
    }

    /// Queues the pair once `until` has come.
    fn rest(&mut self, key: PairKey, until: Instant) {
        if let Some(job) = self.jobs.get_mut(&key) {
            job.state = State::Resting;
        }
        self.tasks.spawn(async move {
            tokio::time::sleep_until(until).await;
            Done::Rested { key }
        });
    }

    /// Starts queued NOTIFYs, the secondaries in turn, within the limits.
    fn dispatch(&mut self) {
        loop {
            let mut started = false;
            let addresses: Vec<SocketAddr> = self.queues.keys().copied().collect();
            for address in addresses {
                if self.in_flight >= MAX_IN_FLIGHT {
                    return;
                }
                if self.running.get(&address).copied().unwrap_or(0) >= PER_SECONDARY {
                    continue;
                }
                let Some(apex) = self.queues.get_mut(&address).and_then(VecDeque::pop_front) else {
                    continue;
                };
                let key = (address, apex);
                let Some(job) = self.jobs.get_mut(&key) else { continue };
                if job.state != State::Queued {
                    continue;
                }
                job.state = State::Running;
                job.since = Some(Instant::now());
                let (serial, soa) = (job.want, job.soa.clone());
                self.in_flight += 1;
                *self.running.entry(address).or_default() += 1;
                started = true;
                let status = self.status.clone();
                let retry = self.settings.retry.clone();
                let peer_key = key_of(&self.secondaries, address);
                let failed = Done::Notify { key: key.clone(), serial, result: Err("the task failed".into()) };
                let task = self.tasks.spawn(async move {
                    let result = match peer_key {
                        Ok(k) => {
                            let soa = soa.as_ref().map(|(ttl, rd)| (*ttl, &rd[..]));
                            exchange::notify(&status, &key, k.as_ref(), serial, soa, &retry).await
                        }
                        Err(e) => Err(e),
                    };
                    Done::Notify { key, serial, result }
                });
                self.spawned.insert(task.id(), failed);
            }
            self.queues.retain(|_, q| !q.is_empty());
            if !started {
                return;
            }
        }
    }

    fn finished(&mut self, done: Done) {
        match done {
            Done::Notify { key, serial, result } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if let Some(n) = self.running.get_mut(&key.0) {
                    *n = n.saturating_sub(1);
                }
                self.status.notify_done(&key, serial, result.is_ok());
                match &result {
                    Ok(()) => {
                        tracing::debug!(secondary = %key.0, zone = %name::to_text(&key.1), serial, "notify acknowledged");
                        self.start_follow(&key, serial);
                    }
                    Err(reason) => {
                        if let Some(held_back) = GIVE_UP_LOG.allow() {
                            tracing::warn!(secondary = %key.0, zone = %name::to_text(&key.1), serial, %reason, held_back, "notify given up");
                        }
                    }
                }
                let live = self.zones.contains_key(&key.1)
                    && self.secondaries.carrying(&key.1).any(|s| s.address == key.0);
                let Some(job) = self.jobs.get_mut(&key).filter(|_| live) else {
                    self.jobs.remove(&key);
                    return;
                };
                job.state = State::Idle;
                if serial_gt(job.want, serial) {
                    // A newer serial came meanwhile: announce it once the
                    // gap since this NOTIFY has passed.
                    let until = job.since.unwrap_or_else(Instant::now) + MIN_GAP;
                    self.rest(key, until);
                }
            }
            Done::Rested { key } => {
                if let Some(job) = self.jobs.get_mut(&key)
                    && job.state == State::Resting
                {
                    job.state = State::Queued;
                    self.queues.entry(key.0).or_default().push_back(key.1);
                }
            }
            Done::Followed { key, reached } => {
                let Some(target) = self.follow.remove(&key) else { return };
                let target = target.load(Ordering::Relaxed);
                // Another NOTIFY was acknowledged while the follow ended.
                if reached.is_some_and(|r| !is_up_to_date(r, target)) {
                    self.start_follow(&key, target);
                }
            }
            Done::Probed => {}
        }
    }

    /// Reads the pair's serial until it reports `serial` (a follow under
    /// way looks for the newer serial from now on).
    fn start_follow(&mut self, key: &PairKey, serial: u32) {
        if let Some(target) = self.follow.get(key) {
            if serial_gt(serial, target.load(Ordering::Relaxed)) {
                target.store(serial, Ordering::Relaxed);
            }
            return;
        }
        if self.follow.len() >= MAX_FOLLOWING {
            tracing::debug!(secondary = %key.0, zone = %name::to_text(&key.1), "too many secondaries followed; the periodic probe reads this one");
            return;
        }
        let target = Arc::new(AtomicU32::new(serial));
        self.follow.insert(key.clone(), target.clone());
        let status = self.status.clone();
        let timeout = self.settings.retry.timeout;
        let peer_key = key_of(&self.secondaries, key.0).ok().flatten();
        let failed = Done::Followed { key: key.clone(), reached: None };
        let key = key.clone();
        let task = self.tasks.spawn(async move {
            let end = Instant::now() + FOLLOW_FOR;
            let mut pause = FOLLOW_FIRST;
            loop {
                tokio::time::sleep(pause).await;
                let answer = exchange::soa(&key, peer_key.as_ref(), timeout).await;
                let got = answer.as_ref().ok().copied();
                status.reported(&key, answer);
                if let Some(s) = got
                    && is_up_to_date(s, target.load(Ordering::Relaxed))
                {
                    return Done::Followed { key, reached: Some(s) };
                }
                if Instant::now() >= end {
                    return Done::Followed { key, reached: None };
                }
                pause = (pause * 2).min(FOLLOW_MAX);
            }
        });
        self.spawned.insert(task.id(), failed);
    }

    /// The periodic probe's next turn: one pair's SOA, then the next
    /// turn spread so that every pair comes once per interval.
    fn probe_next(&mut self) {
        let interval = self.settings.probe_interval.max(Duration::from_millis(1));
        let floor = Duration::from_secs(1) / self.settings.probes_per_second.max(1);
        let n = u32::try_from(self.periodic.len()).unwrap_or(u32::MAX).max(1);
        self.next_probe = Instant::now() + (interval / n).max(floor);
        let Some(key) = self.periodic.pop_front() else { return };
        self.periodic.push_back(key.clone());
        if self.follow.contains_key(&key) {
            return;
        }
        let status = self.status.clone();
        let timeout = self.settings.retry.timeout;
        let peer_key = key_of(&self.secondaries, key.0).ok().flatten();
        self.tasks.spawn(async move {
            let answer = exchange::soa(&key, peer_key.as_ref(), timeout).await;
            status.reported(&key, answer);
            Done::Probed
        });
    }
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
