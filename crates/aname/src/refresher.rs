//! The task that keeps every ANAME's derived addresses current.
//!
//! Each round (every second, and at once when the published catalog
//! changes) it syncs its table with the ANAMEs in the store, resolves
//! those that are due, and writes the address sets that really changed
//! through the store's write path: one transaction per zone per round,
//! so many ANAMEs changing together cost one serial. States (addresses,
//! last success, last error, next refresh) are saved for `aname status`
//! and the API. When a served zone changes, targets resolved internally
//! are due at once, so they follow without waiting for their TTL.
//!
//! Resolutions run concurrently, as tasks that outlive a round: a round
//! starts what is due and takes what has finished, and never waits for a
//! resolution. Each account has at most [`Settings::per_account`]
//! resolutions in flight, so one tenant's slow or black-holed targets
//! (every upstream query waits out its timeout) hold only that tenant's
//! slots, and everyone else's targets are resolved meanwhile.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::Record;
use sixgate_server::SharedCatalog;
use sixgate_store::{AnameState, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::chain::TrustAnchor;
use crate::resolve::Resolver;
use crate::schedule::{Entry, Policy, Resolution};

/// Refresher settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Refresh floor and ceiling.
    pub policy: Policy,
    /// Upstream resolvers.
    pub upstream: Vec<SocketAddr>,
    /// Most upstream queries per second.
    pub queries_per_second: u32,
    /// Most ANAMEs resolved per zone; more get an error status.
    pub max_per_zone: usize,
    /// Where upstream answers are validated from; `None` takes them
    /// unvalidated.
    pub trust_anchor: Option<TrustAnchor>,
    /// Most resolutions of one account in flight at once.
    pub per_account: usize,
    /// What the refresher counts, shared with `/metrics`.
    pub stats: Arc<Stats>,
}

/// What the refresher counts.
#[derive(Debug, Default)]
pub struct Stats {
    /// Resolutions that gave a definite answer (addresses, or none).
    pub resolutions: AtomicU64,
    /// Resolutions that failed (timeout, SERVFAIL, a bogus answer...):
    /// the last good addresses stay served.
    pub failures: AtomicU64,
    /// ANAMEs followed now.
    pub tracked: AtomicU64,
    /// ANAMEs whose last resolution failed while addresses from an
    /// earlier one are still served.
    pub last_good: AtomicU64,
}

impl Stats {
    /// Counts one finished resolution.
    fn resolved(&self, r: &Resolution) {
        match r {
            Resolution::Failed(_) => self.failures.fetch_add(1, Ordering::Relaxed),
            Resolution::Deferred(_) => return,
            _ => self.resolutions.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Sets the gauges from the table.
    fn follow(&self, table: &HashMap<Key, Tracked>) {
        let last_good = table.values().filter(|t| serving_last_good(&t.entry)).count();
        self.tracked.store(table.len() as u64, Ordering::Relaxed);
        self.last_good.store(last_good as u64, Ordering::Relaxed);
    }

    /// The counters in Prometheus text format.
    pub fn render(&self, out: &mut sixgate_metrics::Text) {
        use sixgate_metrics::Kind;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.single(
            "sixgate_aname_resolutions_total",
            Kind::Counter,
            "ANAME target resolutions that gave a definite answer.",
            get(&self.resolutions),
        );
        out.single(
            "sixgate_aname_refresh_failures_total",
            Kind::Counter,
            "ANAME target resolutions that failed; the last good addresses stay served.",
            get(&self.failures),
        );
        out.single("sixgate_aname_targets", Kind::Gauge, "ANAMEs followed.", get(&self.tracked));
        out.single(
            "sixgate_aname_targets_last_good",
            Kind::Gauge,
            "ANAMEs whose last resolution failed, serving an earlier answer's addresses.",
            get(&self.last_good),
        );
    }
}

/// The entry's last resolution failed, and an earlier one's addresses
/// are served meanwhile.
fn serving_last_good(e: &Entry) -> bool {
    e.failures > 0 && !e.addresses.is_empty()
}

/// The default of [`Settings::per_account`]: a few slow targets do not
/// hold up an account's other ANAMEs, and no account keeps more than a
/// few queries waiting at the upstream resolvers.
pub const DEFAULT_PER_ACCOUNT: usize = 4;
/// Most resolutions in flight at once, all accounts together.
const MAX_IN_FLIGHT: usize = 256;

/// How often due ANAMEs are looked for.
const TICK: Duration = Duration::from_secs(1);

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What the refresher knows about one ANAME.
struct Tracked {
    account_id: i64,
    target: Box<[u8]>,
    aname_ttl: u32,
    entry: Entry,
    /// The last resolution needed no upstream query.
    internal: bool,
}

type Key = (Box<[u8]>, Box<[u8]>);
/// Per zone: the owners whose derived records to put in place.
type Writes = HashMap<Box<[u8]>, Vec<(Box<[u8]>, Vec<Record>)>>;

/// The A/AAAA records to serve at `owner` for `addresses`.
fn records(owner: &[u8], addresses: &[IpAddr], ttl: u32) -> Vec<Record> {
    addresses
        .iter()
        .map(|a| {
            let (rtype, rdata): (u16, Box<[u8]>) = match a {
                IpAddr::V4(v4) => (code::A, v4.octets().into()),
                IpAddr::V6(v6) => (code::AAAA, v6.octets().into()),
            };
            Record { owner: owner.into(), rtype, ttl, rdata }
        })
        .collect()
}

fn to_state(apex: &[u8], owner: &[u8], t: &Tracked) -> AnameState {
    AnameState {
        apex: apex.into(),
        owner: owner.into(),
        target: t.target.clone(),
        addresses: t.entry.addresses.iter().map(IpAddr::to_string).collect(),
        last_success: t.entry.last_success.map(|s| s as i64),
        last_error: t.entry.last_error.clone(),
        next_refresh: (t.entry.next_refresh != u64::MAX).then_some(t.entry.next_refresh as i64),
    }
}

/// Per served zone (lowercased apex): its account, and whether it is
/// verified.
type Trust = HashMap<Box<[u8]>, (i64, bool)>;

/// A finished resolution: which ANAME, for which target, what it gave,
/// and whether an upstream query was made.
type Done = (Key, Box<[u8]>, Resolution, bool);

/// What is in flight.
#[derive(Default)]
struct InFlight {
    tasks: JoinSet<Done>,
    keys: HashSet<Key>,
    per_account: HashMap<i64, usize>,
    accounts: HashMap<Key, i64>,
    /// Which ANAME each task resolves, to free its slot even if it fails.
    tasks_keys: HashMap<tokio::task::Id, Key>,
}

impl InFlight {
    /// Takes a task's end: its resolution, or, for a task that panicked,
    /// nothing but its freed slot.
    fn ended(&mut self, r: Result<(tokio::task::Id, Done), tokio::task::JoinError>, done: &mut Vec<Done>) {
        match r {
            Ok((id, d)) => {
                self.tasks_keys.remove(&id);
                done.push(d);
            }
            Err(e) => {
                tracing::warn!(error = %e, "an ANAME resolution task failed");
                if let Some(key) = self.tasks_keys.remove(&e.id()) {
                    self.finish(&key);
                }
            }
        }
    }

    fn finish(&mut self, key: &Key) {
        self.keys.remove(key);
        if let Some(a) = self.accounts.remove(key)
            && let Some(n) = self.per_account.get_mut(&a)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// Runs rounds until `shutdown`.
pub async fn run(
    dir: PathBuf,
    catalog: SharedCatalog,
    mut published: watch::Receiver<i64>,
    settings: Settings,
    mut shutdown: watch::Receiver<bool>,
) {
    let store = match Store::open(&dir) {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(e) => {
            tracing::error!(error = %e, "ANAME refresher cannot open the store; ANAMEs are not resolved");
            return;
        }
    };
    let resolver = Arc::new(
        Resolver::new(settings.upstream.clone(), settings.queries_per_second)
            .with_trust_anchor(settings.trust_anchor.clone()),
    );
    let mut table: HashMap<Key, Tracked> = HashMap::new();
    let mut flight = InFlight::default();
    let mut done: Vec<Done> = Vec::new();
    // Resume from saved states, so a restart does not resolve everything
    // at once and keeps serving (and reporting) the last good sets.
    let saved = blocking(&store, |s| s.aname_states(None)).await.unwrap_or_default();
    let mut first = true;
    let mut rewrite: HashSet<Key> = HashSet::new();
    loop {
        let zone_changed = published.has_changed().unwrap_or(false);
        if zone_changed {
            published.borrow_and_update();
        }
        while let Some(r) = flight.tasks.try_join_next_with_id() {
            flight.ended(r, &mut done);
        }
        let round = Round {
            dir: &dir,
            store: &store,
            catalog: &catalog,
            resolver: &resolver,
            settings: &settings,
            saved: &saved,
            first,
            zone_changed,
        };
        if let Err(e) = round.run(&mut table, &mut flight, std::mem::take(&mut done), &mut rewrite).await {
            tracing::warn!(error = %e, "ANAME round failed");
        }
        first = false;
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = published.changed() => {}
            Some(r) = flight.tasks.join_next_with_id(), if !flight.tasks.is_empty() => {
                flight.ended(r, &mut done);
            }
            _ = async { let _ = shutdown.wait_for(|&s| s).await; } => {
                flight.tasks.abort_all();
                return;
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .unwrap_or_else(|e| Err(StoreError::BadInput(format!("store task failed: {e}"))))
}

/// What one round works with.
struct Round<'a> {
    dir: &'a std::path::Path,
    store: &'a Arc<Mutex<Store>>,
    catalog: &'a SharedCatalog,
    resolver: &'a Arc<Resolver>,
    settings: &'a Settings,
    saved: &'a [AnameState],
    first: bool,
    zone_changed: bool,
}

impl Round<'_> {
    /// Syncs the table with the store, takes the finished resolutions
    /// `done`, writes what changed, and starts what is due.
    async fn run(
        &self,
        table: &mut HashMap<Key, Tracked>,
        flight: &mut InFlight,
        done: Vec<Done>,
        rewrite: &mut HashSet<Key>,
    ) -> Result<(), StoreError> {
        let settings = self.settings;
        let (anames, zones) = blocking(self.store, |s| Ok((s.anames()?, s.zones()?))).await?;
        let now = unix_now();
        // Sync the table with the store.
        let mut present: HashMap<Key, ()> = HashMap::new();
        let mut per_zone: HashMap<Box<[u8]>, usize> = HashMap::new();
        for a in &anames {
            let key = (a.apex.clone(), a.owner.clone());
            present.insert(key.clone(), ());
            let n = per_zone.entry(a.apex.clone()).or_default();
            *n += 1;
            let over = *n > settings.max_per_zone;
            let t = table.entry(key).or_insert_with(|| {
                let mut entry = Entry::default();
                if self.first
                    && let Some(s) = self
                        .saved
                        .iter()
                        .find(|s| s.apex == a.apex && s.owner == a.owner && s.target == a.target)
                {
                    entry.addresses = s.addresses.iter().filter_map(|x| x.parse().ok()).collect();
                    entry.last_success = s.last_success.map(|x| x as u64);
                    entry.last_error = s.last_error.clone();
                    entry.next_refresh = s.next_refresh.map_or(0, |x| x as u64);
                }
                Tracked {
                    account_id: a.account_id,
                    target: a.target.clone(),
                    aname_ttl: a.ttl,
                    entry,
                    internal: false,
                }
            });
            if t.target != a.target {
                // A new target: resolve now, and forget the old answer's schedule.
                t.target = a.target.clone();
                t.entry.next_refresh = 0;
            }
            t.account_id = a.account_id;
            t.aname_ttl = a.ttl;
            if over {
                t.entry.last_error =
                    Some(format!("more than {} ANAMEs in this zone; not resolved", settings.max_per_zone));
                t.entry.next_refresh = u64::MAX;
            } else if t.entry.next_refresh == u64::MAX {
                t.entry.next_refresh = 0;
            }
            if self.zone_changed && t.internal {
                t.entry.next_refresh = 0;
            }
        }
        table.retain(|k, _| present.contains_key(k));
        // After a start, every set is written once with its first answer,
        // changed or not, so the zone holds what the table holds.
        if self.first {
            rewrite.extend(table.keys().cloned());
        }

        // Take what has finished.
        let mut writes: Writes = HashMap::new();
        let mut states = Vec::new();
        for (key, target, resolution, upstream) in done {
            flight.finish(&key);
            // An ANAME removed or given another target meanwhile: the
            // answer is for something no longer asked.
            let Some(t) = table.get_mut(&key).filter(|t| t.target == target) else { continue };
            let (apex, owner) = &key;
            t.internal = !upstream;
            let jitter: f64 = rand::random();
            settings.stats.resolved(&resolution);
            match &resolution {
                Resolution::Failed(e) => {
                    tracing::info!(owner = %name::to_text(owner), target = %name::to_text(&t.target), error = %e, "ANAME resolution failed; keeping the last good addresses");
                }
                Resolution::Deferred(why) => {
                    tracing::debug!(owner = %name::to_text(owner), why = %why, "ANAME resolution deferred");
                }
                _ => {}
            }
            let changed = t.entry.apply(resolution, unix_now(), &settings.policy, jitter);
            if changed || rewrite.remove(&key) {
                let ttl = t.aname_ttl.min(t.entry.ttl.max(1));
                writes
                    .entry(apex.clone())
                    .or_default()
                    .push((owner.clone(), records(owner, &t.entry.addresses, ttl)));
            }
            states.push(to_state(apex, owner, t));
        }
        settings.stats.follow(table);
        let mut wrote = false;
        for (apex, sets) in writes {
            let a = apex.clone();
            match blocking(self.store, move |s| {
                s.by(sixgate_store::Actor::Task("aname")).set_derived(&a, &sets)
            })
            .await
            {
                Ok(Some(c)) => {
                    wrote = true;
                    tracing::info!(zone = %name::to_text(&apex), serial = c.serial, "ANAME addresses changed");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(zone = %name::to_text(&apex), error = %e, "writing ANAME addresses failed")
                }
            }
        }
        if wrote {
            sixgate_control::publish::poke(self.dir);
        }
        if !states.is_empty() || self.first {
            blocking(self.store, move |s| s.save_aname_states(&states)).await?;
        }

        // Start what is due, within each account's share.
        let trust: Arc<Trust> = Arc::new(
            zones.iter().map(|z| (name::to_lowercase(&z.apex), (z.account_id, z.verified))).collect(),
        );
        let snapshot = self.catalog.load_full();
        let limit = settings.per_account.max(1);
        for (key, t) in table.iter() {
            if !t.entry.due(now) || flight.keys.contains(key) || flight.keys.len() >= MAX_IN_FLIGHT {
                continue;
            }
            let account = t.account_id;
            let busy = flight.per_account.entry(account).or_default();
            if *busy >= limit {
                continue;
            }
            *busy += 1;
            flight.keys.insert(key.clone());
            flight.accounts.insert(key.clone(), account);
            let (resolver, snapshot, trust) = (self.resolver.clone(), snapshot.clone(), trust.clone());
            let (key, target) = (key.clone(), t.target.clone());
            let task_key = key.clone();
            let handle = flight.tasks.spawn(async move {
                let trusted = |zone: &[u8]| {
                    trust.get(zone).is_some_and(|&(acct, verified)| verified || acct == account)
                };
                let (resolution, upstream) = resolver.resolve(&snapshot, &target, &trusted).await;
                (key, target, resolution, upstream)
            });
            flight.tasks_keys.insert(handle.id(), task_key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use arc_swap::ArcSwap;
    use sixgate_dns::{Catalog, zonefile};

    use super::*;
    use crate::lab::{Lab, Upstream, n};

    #[test]
    fn failures_are_counted_and_a_failed_target_with_addresses_serves_its_last_good_answer() {
        let stats = Stats::default();
        let policy = Policy { floor: 60, ceiling: 3600 };
        let addresses = Resolution::Addresses { addresses: vec!["192.0.2.1".parse().unwrap()], ttl: 300 };
        let failed = Resolution::Failed("timed out".into());
        let mut table: HashMap<Key, Tracked> = HashMap::new();
        for (i, steps) in [vec![addresses.clone(), failed.clone()], vec![failed.clone()], vec![addresses]]
            .into_iter()
            .enumerate()
        {
            let mut entry = Entry::default();
            for r in steps {
                stats.resolved(&r);
                entry.apply(r, 1000, &policy, 0.0);
            }
            stats.resolved(&Resolution::Deferred("rate".into()));
            let key = (n("example."), n(&format!("a{i}.example.")));
            table.insert(
                key,
                Tracked { account_id: 1, target: n("t.test."), aname_ttl: 60, entry, internal: false },
            );
        }
        stats.follow(&table);
        let mut text = sixgate_metrics::Text::new();
        stats.render(&mut text);
        let text = text.finish();
        for line in [
            "sixgate_aname_resolutions_total 2\n",
            "sixgate_aname_refresh_failures_total 2\n",
            "sixgate_aname_targets 3\n",
            // Only the one that had addresses before it failed.
            "sixgate_aname_targets_last_good 1\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
    }

    /// Creates `apex` for `account` with `anames` (owner label, target).
    fn zone(store: &mut Store, account: i64, apex: &str, anames: &[(String, String)]) {
        let mut text = String::from("@ 300 SOA ns.test. h.test. 1 7200 3600 1209600 60\n@ 300 NS ns.test.\n");
        for (owner, target) in anames {
            text.push_str(&format!("{owner} 300 ANAME {target}\n"));
        }
        let a = n(apex);
        let records = zonefile::parse(&text, &a).unwrap();
        store.by(sixgate_store::Actor::Task("test")).create_zone(&a, records, account, false).unwrap();
    }

    /// Fault: targets were resolved one after another in one task, each
    /// upstream query waiting out its timeout, and states were saved at
    /// the end of the round; one account's black-holed targets held up
    /// every other account's refresh.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_accounts_black_holed_targets_do_not_stall_another_accounts_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab::new(false);
        let anchor = lab.anchor.clone();
        let up = Upstream::start(lab).await;
        {
            let mut store = Store::open(dir.path()).unwrap();
            let slow = store.create_account("slow").unwrap().id;
            let quick = store.create_account("quick").unwrap().id;
            // Eight targets that never answer (each attempt waits out the
            // upstream timeout), and one that does.
            let holes: Vec<(String, String)> =
                (1..=8).map(|i| (format!("a{i}"), format!("x{i}.hole.test."))).collect();
            zone(&mut store, slow, "slow.example.", &holes);
            zone(&mut store, quick, "quick.example.", &[("@".into(), "host.provider.test.".into())]);
        }
        let settings = Settings {
            policy: Policy { floor: 60, ceiling: 3600 },
            upstream: vec![up.addr],
            queries_per_second: 1000,
            max_per_zone: 100,
            trust_anchor: Some(anchor),
            per_account: 1,
            stats: Arc::default(),
        };
        let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(Catalog::new()));
        let (_published_tx, published) = watch::channel(0);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let settings_stats = settings.stats.clone();
        let task = tokio::spawn(run(dir.path().to_path_buf(), catalog, published, settings, shutdown));
        let store = Store::open(dir.path()).unwrap();
        // Polls with a generous deadline; what is checked is the order of
        // events, not how long they took.
        let mut quick_done = None;
        for _ in 0..600 {
            let states = store.aname_states(None).unwrap();
            if let Some(q) = states.iter().find(|s| s.apex == n("quick.example.") && !s.addresses.is_empty())
            {
                quick_done = Some((q.clone(), states));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shutdown_tx.send(true).unwrap();
        let _ = task.await;
        let (quick, states) = quick_done.expect("the quick account's ANAME was never resolved");
        let stats = &settings_stats;
        assert!(stats.resolutions.load(Ordering::Relaxed) >= 1, "the quick target's answer is counted");
        assert_eq!(stats.tracked.load(Ordering::Relaxed), 9);
        assert_eq!(quick.addresses, vec!["192.0.2.10".to_string(), "2001:db8::10".to_string()]);
        // When it was resolved, most of the slow account's targets had
        // not even been tried: they wait for that account's one slot.
        let slow_failed =
            states.iter().filter(|s| s.apex == n("slow.example.") && s.last_error.is_some()).count();
        assert!(slow_failed < 8, "the quick account waited for all the slow account's timeouts: {states:?}");
        assert!(
            up.asked
                .lock()
                .unwrap()
                .iter()
                .any(|(q, _)| name::is_at_or_below(&name::to_lowercase(q), &n("hole.test."))),
            "the black-holed targets were asked for"
        );
    }
}
