//! Publishing the store's content as catalog snapshots.
//!
//! [`Follower`] loads every zone once, then follows the store's journal:
//! a diff is applied to the zone's snapshot (copy-on-write, so cost is
//! proportional to the change), a replacement reloads that zone, a deletion
//! drops it. The new catalog is swapped in atomically; queries in flight
//! keep the snapshot they started with.
//!
//! The follower never stops and never loses a committed change:
//! - its journal position moves only after a batch is applied and
//!   published; a store error (a full disk, a busy database) leaves it
//!   where it was, and the same entries are read again on the next try;
//! - a zone whose stored data cannot be built, or whose signed version
//!   fails its check, is *held*: it keeps its last good snapshot (or none,
//!   when it never had one), the reason is recorded in the store for
//!   `zone list`, the API and the metrics, and every other zone goes on
//!   publishing. At start, such a zone is held, never fatal;
//! - a signed version is served only once its signatures verify
//!   (`sixgate_dnssec::check::verify_zone`): a diff's changed owners
//!   here, at once; a whole zone (at start, at a reload, when its DNSKEY
//!   RRset changes) on the verification workers (`crate::verifier`),
//!   while the zone's previous version, and every other zone, are served.
//!   Diffs that arrive meanwhile are applied to the version being
//!   verified and checked as usual. The published position moves on
//!   meanwhile (other zones' writers are not kept waiting), so a write
//!   to that zone is acknowledged before the verdict serves it;
//! - gaps are found per zone: each journal entry names its zone's previous
//!   one, so a zone whose entries were pruned before this reader saw them
//!   is reloaded whole (that zone only).
//!
//! Other processes (the CLI) commit to the same database. The follower
//! notices through SQLite's `data_version` on a short poll, and sooner
//! when poked through the data directory's notification socket, which
//! the CLI pings after each commit.
//!
//! With the journal, the follower reads the store's routes generation
//! ([`Store::routes_generation`]) and passes it on ([`Follower::routes`]):
//! the proxy rebuilds its route table when it moves, also for writes that
//! change no record (a hostname's PROXY mode, a zone's verification, an
//! account's backend prefixes).

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sixgate_dns::rtype::code;
use sixgate_dns::zone::{ZoneBuilder, changed_owners};
use sixgate_dns::{Catalog, Record, Zone, name};
use sixgate_server::SharedCatalog;
use sixgate_store::{CatalogMembers, JournalEntry, JournalKind, Store, StoreError};

use crate::secondaries::{Secondaries, SharedSecondaries};

use crate::verifier::{Job, Verdict, Verifier};

/// Name of the notification socket inside the data directory.
pub const NOTIFY_SOCKET: &str = sixgate_store::files::NOTIFY_SOCKET;
/// How often the journal is checked when nobody pokes us.
const POLL: Duration = Duration::from_millis(100);
/// Journal entries read per batch.
const BATCH: usize = 256;

/// Errors while publishing: only the store's; a zone that cannot be built
/// is held, not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records streamed from the store.
pub type Records<'a> = dyn Iterator<Item = Result<Record, StoreError>> + 'a;
/// A visitor of zones: apex, record count, records.
pub type Visit<'v> = dyn FnMut(&[u8], u64, &mut Records<'_>) -> Result<(), StoreError> + 'v;

/// What the follower reads and records: the store, or in tests a store
/// that fails on purpose.
pub trait Source {
    /// SQLite's `data_version`: changes when another connection commits.
    fn data_version(&self) -> Result<i64, StoreError>;
    /// See [`Store::journal_since`].
    fn journal_since(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError>;
    /// See [`Store::visit_zones`].
    fn visit_zones(&mut self, visit: &mut Visit<'_>) -> Result<i64, StoreError>;
    /// See [`Store::visit_zone`].
    fn visit_zone(&mut self, apex: &[u8], visit: &mut Visit<'_>) -> Result<Option<i64>, StoreError>;
    /// See [`Store::routes_generation`].
    fn routes_generation(&self) -> Result<i64, StoreError>;
    /// See [`Store::secondaries_generation`].
    fn secondaries_generation(&self) -> Result<i64, StoreError>;
    /// See [`Secondaries::load`].
    fn secondaries(&self) -> Result<Secondaries, StoreError>;
    /// See [`Store::catalog_serial`].
    fn catalog_serial(&self) -> Result<u32, StoreError>;
    /// See [`Store::catalog_members`].
    fn catalog_members(&self) -> Result<CatalogMembers, StoreError>;
    /// The store's clock (unix seconds).
    fn now(&self) -> i64;
    /// Records or clears a zone's hold.
    fn set_hold(&mut self, apex: &[u8], reason: Option<&str>) -> Result<(), StoreError>;
    /// Clears every hold.
    fn clear_holds(&mut self) -> Result<(), StoreError>;
    /// Sets or clears a signed zone's alert.
    fn dnssec_alert(&mut self, apex: &[u8], alert: Option<&str>) -> Result<(), StoreError>;
}

impl Source for Store {
    fn data_version(&self) -> Result<i64, StoreError> {
        Store::data_version(self)
    }
    fn journal_since(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        Store::journal_since(self, after, limit)
    }
    fn visit_zones(&mut self, visit: &mut Visit<'_>) -> Result<i64, StoreError> {
        Store::visit_zones(self, |a, n, r| visit(a, n, r))
    }
    fn visit_zone(&mut self, apex: &[u8], visit: &mut Visit<'_>) -> Result<Option<i64>, StoreError> {
        Store::visit_zone(self, apex, |a, n, r| visit(a, n, r))
    }
    fn routes_generation(&self) -> Result<i64, StoreError> {
        Store::routes_generation(self)
    }
    fn secondaries_generation(&self) -> Result<i64, StoreError> {
        Store::secondaries_generation(self)
    }
    fn secondaries(&self) -> Result<Secondaries, StoreError> {
        Secondaries::load(self)
    }
    fn catalog_serial(&self) -> Result<u32, StoreError> {
        Store::catalog_serial(self)
    }
    fn catalog_members(&self) -> Result<CatalogMembers, StoreError> {
        Store::catalog_members(self)
    }
    fn now(&self) -> i64 {
        Store::now(self)
    }
    fn set_hold(&mut self, apex: &[u8], reason: Option<&str>) -> Result<(), StoreError> {
        Store::set_hold(self, apex, reason)
    }
    fn clear_holds(&mut self) -> Result<(), StoreError> {
        Store::clear_holds(self)
    }
    fn dnssec_alert(&mut self, apex: &[u8], alert: Option<&str>) -> Result<(), StoreError> {
        Store::dnssec_alert(self, apex, alert)
    }
}

/// Follows the store and keeps the shared catalog current.
pub struct Follower<S: Source = Store> {
    store: S,
    catalog: SharedCatalog,
    /// Journal position everything published is consistent with.
    position: i64,
    /// Zones not served as stored, with the reason: the catalog keeps the
    /// last good version (or none). Later changes reload them whole until
    /// a version passes.
    held: HashMap<Box<[u8]>, String>,
    /// The number of held zones, for the metrics.
    held_count: Arc<AtomicUsize>,
    /// Build times, write-to-served latencies and the held zones' names.
    metrics: Arc<crate::metrics::PublishMetrics>,
    /// The number of zones whose newest version waits for its whole
    /// verification, for readiness.
    verifying_count: Arc<AtomicUsize>,
    /// Per zone: journal position its last full load was consistent with.
    loaded_at: HashMap<Box<[u8]>, i64>,
    /// What the batch being applied changed in `loaded_at` and `held`
    /// (the old values), to put back if the batch fails: a failed batch
    /// publishes nothing, so the marks must describe the catalog served.
    undo: Vec<Undo>,
    seed: u64,
    data_version: i64,
    /// The journal position of the catalog being served, for writers
    /// that answer only once their change is served.
    published: tokio::sync::watch::Sender<i64>,
    /// The store's routes generation as last read, for the proxy.
    routes: tokio::sync::watch::Sender<i64>,
    /// Moves on every swap of the served catalog and every reload of the
    /// secondaries, for the NOTIFY task.
    changed: tokio::sync::watch::Sender<u64>,
    /// Zones whose newest version waits for its whole verification: that
    /// version, with later diffs applied (each checked as it came).
    pending: HashMap<Box<[u8]>, Pending>,
    /// The last whole verification asked for.
    generation: u64,
    verifier: Verifier,
    /// The secondaries, for the transfer access list and NOTIFY.
    secondaries: SharedSecondaries,
    /// The catalog zone's name and serial as served; `None` while no
    /// secondary follows the catalog.
    catalog_zone: Option<(Box<[u8]>, u32)>,
}

/// A zone version being verified whole.
#[derive(Clone)]
struct Pending {
    /// The request the verdict must answer.
    generation: u64,
    /// The version verified, plus the diffs since.
    zone: Zone,
}

/// An old value of `loaded_at`, `held` or `pending` for one zone.
enum Undo {
    Loaded(Box<[u8]>, Option<i64>),
    Held(Box<[u8]>, Option<String>),
    Pending(Box<[u8]>, Option<Pending>),
}

/// How long past now a served signature must stay valid: the refresh
/// runs well before that, so a signature this close to expiry means the
/// refresh has stopped.
const SIGNATURE_MARGIN: u32 = 3600;

/// Builds a zone from streamed records; `Ok(Err(reason))` when the
/// records do not form a zone (the zone is then held), `Err` when the
/// store failed.
fn build(
    apex: &[u8],
    count: u64,
    records: &mut Records<'_>,
    seed: u64,
) -> Result<Result<Zone, String>, StoreError> {
    let mut b = ZoneBuilder::new(apex, seed, count as usize);
    let mut bad = None;
    for r in records {
        let r = r?;
        // Read on to the end even after a fault, so the store's read
        // transaction ends normally.
        if bad.is_none()
            && let Err(e) = b.push(r)
        {
            bad = Some(e.to_string());
        }
    }
    if let Some(reason) = bad {
        return Ok(Err(reason));
    }
    Ok(b.finish().map_err(|e| e.to_string()))
}

/// A zone built at load or reload: the zone, or why it could not be.
type Built = (Box<[u8]>, Result<Zone, String>);

/// Verification workers by default: as many as there are cores, at most
/// four (the listeners' threads share the machine).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

impl<S: Source> Follower<S> {
    /// Loads every zone from `store`, verifies every signed one whole and
    /// publishes the catalog. A zone that cannot be built or fails its
    /// check is held (and logged); only a store failure is an error.
    pub fn load(store: S, seed: u64) -> Result<(Follower<S>, SharedCatalog), PublishError> {
        let (mut f, shared) = Follower::start(store, seed, default_workers())?;
        f.settle();
        Ok((f, shared))
    }

    /// Like [`Follower::load`], but returns before the signed zones'
    /// whole verification ends: unsigned zones are served at once, each
    /// signed zone once its verdict comes back, on `workers` threads (0:
    /// only in [`Follower::settle`], for tests). [`Follower::catch_up`]
    /// and [`Follower::run`] publish the verdicts as they come.
    pub fn start(
        mut store: S,
        seed: u64,
        workers: usize,
    ) -> Result<(Follower<S>, SharedCatalog), PublishError> {
        let started = Instant::now();
        let data_version = store.data_version()?;
        let routes = store.routes_generation()?;
        let mut built: Vec<Built> = Vec::new();
        let mut records = 0;
        let position = store.visit_zones(&mut |apex, count, recs| {
            records += count;
            built.push((apex.into(), build(apex, count, recs, seed)?));
            Ok(())
        })?;
        store.clear_holds()?;
        let shared: SharedCatalog = Arc::new(arc_swap::ArcSwap::from_pointee(Catalog::new()));
        let mut f = Follower {
            store,
            catalog: shared.clone(),
            position,
            held: HashMap::new(),
            held_count: Arc::new(AtomicUsize::new(0)),
            metrics: Arc::default(),
            verifying_count: Arc::new(AtomicUsize::new(0)),
            loaded_at: HashMap::new(),
            undo: Vec::new(),
            seed,
            data_version,
            published: tokio::sync::watch::Sender::new(position),
            routes: tokio::sync::watch::Sender::new(routes),
            changed: tokio::sync::watch::Sender::new(0),
            pending: HashMap::new(),
            generation: 0,
            verifier: Verifier::new(workers),
            secondaries: Arc::new(arc_swap::ArcSwap::from_pointee(Secondaries::default())),
            catalog_zone: None,
        };
        let mut catalog = Catalog::new();
        for (apex, zone) in built {
            f.publish_built(&mut catalog, &apex, zone, None);
        }
        f.follow_secondaries(&mut catalog)?;
        tracing::info!(
            zones = catalog.len(),
            held = f.held.len(),
            verifying = f.pending.len(),
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "zones loaded"
        );
        f.undo.clear();
        f.swap(catalog);
        f.store_counts();
        f.metrics.build.observe(started.elapsed());
        f.metrics.served(position);
        Ok((f, shared))
    }

    /// The number of zones held now (shared with the metrics).
    pub fn held_count(&self) -> Arc<AtomicUsize> {
        self.held_count.clone()
    }

    /// The publisher's metrics (shared with `/metrics`).
    pub fn metrics(&self) -> Arc<crate::metrics::PublishMetrics> {
        self.metrics.clone()
    }

    /// Shares the numbers of held zones and of zones being verified, and
    /// the held zones' names.
    fn store_counts(&self) {
        if self.held.len() != self.held_count.load(Ordering::Relaxed) || !self.held.is_empty() {
            self.metrics.set_held(self.held.keys().map(|k| name::to_text(k)).collect());
        }
        self.held_count.store(self.held.len(), Ordering::Relaxed);
        self.verifying_count.store(self.pending.len(), Ordering::Relaxed);
    }

    /// The number of zones whose newest version is being verified whole
    /// now (shared; at start, signed zones are served only once verified).
    pub fn verifying_count(&self) -> Arc<AtomicUsize> {
        self.verifying_count.clone()
    }

    /// The number of zones whose whole verification has not ended.
    pub fn verifying(&self) -> usize {
        self.pending.len()
    }

    /// Waits until every whole verification asked for has ended, and
    /// publishes the verdicts.
    pub fn settle(&mut self) {
        let mut catalog = Catalog::clone(&self.catalog.load());
        let mut idle = 0;
        while !self.pending.is_empty() {
            match self.verifier.recv_timeout(POLL) {
                Some(v) => {
                    idle = 0;
                    self.take_verdict(&mut catalog, v);
                }
                // Nothing for a while: jobs without a worker run here.
                // Jobs lost with their worker (it cannot happen short of
                // a bug) would wait for ever: after a minute of silence
                // with no worker left, their zones are held.
                None if idle > 600 && self.verifier.stopped() => {
                    let lost: Vec<Box<[u8]>> = self.pending.keys().cloned().collect();
                    for apex in lost {
                        let reason = "not served: the verification of its signatures was lost; it is verified again at the next change".to_owned();
                        tracing::error!(zone = %name::to_text(&apex), "zone held: its verification was lost");
                        self.hold(&apex, reason, true);
                    }
                }
                None if idle > 50 => {
                    idle += 1;
                    self.verifier.run_queued();
                }
                None => idle += 1,
            }
        }
        self.undo.clear();
        self.swap(catalog);
        self.store_counts();
    }

    /// Publishes the verdicts that have come back. Returns how many.
    fn publish_verdicts(&mut self) -> usize {
        let Some(first) = self.verifier.try_recv() else { return 0 };
        let started = Instant::now();
        let mut catalog = Catalog::clone(&self.catalog.load());
        let mut n = 1;
        self.take_verdict(&mut catalog, first);
        while let Some(v) = self.verifier.try_recv() {
            n += 1;
            self.take_verdict(&mut catalog, v);
        }
        self.undo.clear();
        self.swap(catalog);
        self.store_counts();
        self.metrics.build.observe(started.elapsed());
        n
    }

    /// Serves the version a whole verification passed (with the diffs
    /// applied since), or holds the zone; a superseded verdict is dropped.
    fn take_verdict(&mut self, catalog: &mut Catalog, v: Verdict) {
        let current = self.pending.get(&v.apex).is_some_and(|p| p.generation == v.generation);
        if !current {
            return;
        }
        let Some(p) = self.pending.remove(&v.apex) else { return };
        let elapsed_ms = v.elapsed.as_millis() as u64;
        if v.problems.is_empty() {
            tracing::info!(zone = %name::to_text(&v.apex), elapsed_ms, "every signature of the zone verifies; serving it");
            self.serve(catalog, &v.apex, p.zone);
        } else {
            self.refuse(&v.apex, &v.problems);
        }
    }

    /// Applies journal entries committed since the last call. Returns the
    /// number of entries applied. On a store error nothing is published
    /// and the position stays, so the next call reads the same entries.
    pub fn catch_up(&mut self) -> Result<usize, PublishError> {
        self.publish_verdicts();
        let dv = self.store.data_version()?;
        if dv == self.data_version {
            return Ok(0);
        }
        let mut applied = 0;
        loop {
            let entries = self.store.journal_since(self.position, BATCH)?;
            let Some(last) = entries.last().map(|e| e.id) else { break };
            let started = Instant::now();
            let mut catalog = Catalog::clone(&self.catalog.load());
            let count = entries.len();
            self.undo.clear();
            if let Err(e) = self.apply_batch(&mut catalog, entries) {
                self.roll_back();
                return Err(e);
            }
            applied += count;
            self.position = last;
            self.swap(catalog);
            self.store_counts();
            self.metrics.build.observe(started.elapsed());
            // Before writers waiting on `published` are woken, so that a
            // write acknowledged once served is counted by then.
            self.metrics.served(self.position);
            self.published.send_replace(self.position);
        }
        // After the journal, so that the catalog zone lists no zone that
        // is not served yet.
        let mut catalog = Catalog::clone(&self.catalog.load());
        if self.follow_secondaries(&mut catalog)? {
            self.swap(catalog);
        }
        // Read after the journal, so a route rebuild sees at least the
        // zones just published.
        let routes = self.store.routes_generation()?;
        self.routes.send_if_modified(|g| std::mem::replace(g, routes) != routes);
        self.data_version = dv;
        Ok(applied)
    }

    /// Puts back what a failed batch changed in `loaded_at` and `held`.
    fn roll_back(&mut self) {
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Loaded(apex, Some(p)) => {
                    self.loaded_at.insert(apex, p);
                }
                Undo::Loaded(apex, None) => {
                    self.loaded_at.remove(&apex);
                }
                Undo::Held(apex, Some(reason)) => {
                    self.held.insert(apex, reason);
                }
                Undo::Held(apex, None) => {
                    self.held.remove(&apex);
                }
                Undo::Pending(apex, Some(p)) => {
                    self.pending.insert(apex, p);
                }
                Undo::Pending(apex, None) => {
                    self.pending.remove(&apex);
                }
            }
        }
        self.store_counts();
    }

    /// Sets (or clears) a zone's load mark, remembering the old one.
    fn set_loaded(&mut self, apex: &[u8], at: Option<i64>) {
        let old = match at {
            Some(p) => self.loaded_at.insert(apex.into(), p),
            None => self.loaded_at.remove(apex),
        };
        self.undo.push(Undo::Loaded(apex.into(), old));
    }

    /// Sets (or clears) the version a zone's whole verification is for,
    /// remembering the old one.
    fn set_pending(&mut self, apex: &[u8], p: Option<Pending>) {
        let key = name::to_lowercase(apex);
        let old = match p {
            Some(p) => self.pending.insert(key.clone(), p),
            None => self.pending.remove(&key),
        };
        if old.is_some() || self.pending.contains_key(&key) {
            self.undo.push(Undo::Pending(key, old));
        }
    }

    /// Ends a zone's hold, remembering it; returns whether it was held.
    fn unhold(&mut self, apex: &[u8]) -> bool {
        let old = self.held.remove(apex);
        let was = old.is_some();
        self.undo.push(Undo::Held(apex.into(), old));
        was
    }

    fn apply_batch(&mut self, catalog: &mut Catalog, entries: Vec<JournalEntry>) -> Result<(), PublishError> {
        let start = self.position;
        // Per zone: the last entry seen in this read, to find gaps.
        let mut seen: HashMap<Box<[u8]>, i64> = HashMap::new();
        for e in entries {
            let prev_seen = seen.insert(e.apex.clone(), e.id);
            if self.loaded_at.get(&e.apex).is_some_and(|&p| e.id <= p) {
                continue;
            }
            // The zone's previous entry lies after our position but was not
            // read: it was pruned, and this zone's history has a gap.
            let gap = e.prev > start && prev_seen != Some(e.prev);
            if gap {
                tracing::warn!(zone = %name::to_text(&e.apex), id = e.id, "journal entries of this zone were pruned before they were published; reloading it");
            }
            match e.kind {
                JournalKind::Delete => {
                    catalog.remove(&e.apex);
                    self.set_pending(&e.apex, None);
                    self.set_loaded(&e.apex, None);
                    if self.unhold(&e.apex) {
                        self.store.set_hold(&e.apex, None)?;
                    }
                }
                // A zone being verified whole takes its diffs on the
                // version being verified, even while it is held.
                JournalKind::Diff(changes)
                    if !gap && (!self.held.contains_key(&e.apex) || self.pending.contains_key(&e.apex)) =>
                {
                    let base = match self.pending.get(&e.apex) {
                        Some(p) => Some(&p.zone),
                        None => catalog.zone(&e.apex).map(|z| &**z),
                    };
                    match base.map(|z| z.apply(&changes)) {
                        Some(Ok(nz)) => {
                            let owners = changed_owners(&changes);
                            self.publish_built(catalog, &e.apex, Ok(nz), Some(&owners));
                        }
                        Some(Err(err)) => {
                            tracing::warn!(zone = %name::to_text(&e.apex), error = %err, "diff failed; reloading zone");
                            self.reload_zone(catalog, &e.apex)?;
                        }
                        None => self.reload_zone(catalog, &e.apex)?,
                    }
                }
                JournalKind::Diff(_) | JournalKind::Replace => self.reload_zone(catalog, &e.apex)?,
            }
            tracing::debug!(zone = %name::to_text(&e.apex), serial = e.serial, id = e.id, "change published");
        }
        Ok(())
    }

    /// The secondaries as last read from the store: swapped in whenever
    /// the store's secondaries generation moves.
    pub fn secondaries(&self) -> SharedSecondaries {
        self.secondaries.clone()
    }

    /// Reloads the secondaries when their generation moved, and puts the
    /// catalog zone (RFC 9432) into `catalog` when its list moved, or
    /// takes it out once no secondary follows it. True if `catalog`
    /// changed. A catalog zone that cannot be built (a served zone has
    /// its name) is logged and left out; the other zones are unaffected.
    fn follow_secondaries(&mut self, catalog: &mut Catalog) -> Result<bool, PublishError> {
        if self.store.secondaries_generation()? != self.secondaries.load().generation {
            let s = self.store.secondaries()?;
            tracing::info!(secondaries = s.list.len(), generation = s.generation, "secondaries loaded");
            self.secondaries.store(Arc::new(s));
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        let secondaries = self.secondaries.load();
        let want = match secondaries.has_catalog() {
            true => Some((secondaries.catalog.clone(), self.store.catalog_serial()?)),
            false => None,
        };
        if want == self.catalog_zone {
            return Ok(false);
        }
        if let Some((old, _)) = self.catalog_zone.take() {
            catalog.remove(&old);
        }
        let Some((apex, _)) = want else { return Ok(true) };
        let members = self.store.catalog_members()?;
        let list = members.members.iter().map(sixgate_store::CatalogMember::as_member);
        let built = sixgate_dns::catzone::records(&apex, members.serial, list)
            .map_err(|e| e.to_string())
            .and_then(|records| Zone::build(&apex, records, self.seed).map_err(|e| e.to_string()));
        match built {
            Ok(zone) => {
                tracing::debug!(
                    serial = members.serial,
                    members = members.members.len(),
                    "catalog zone published"
                );
                catalog.insert(Arc::new(zone));
            }
            Err(e) => {
                tracing::error!(zone = %name::to_text(&apex), error = %e, "the catalog zone cannot be served")
            }
        }
        // Its serial as read with the list: a later move is caught next time.
        self.catalog_zone = Some((apex, members.serial));
        Ok(true)
    }

    /// Serves `catalog`.
    fn swap(&mut self, catalog: Catalog) {
        self.catalog.store(Arc::new(catalog));
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Moves on every swap of the served catalog (a zone changed, a
    /// verdict came, the catalog zone moved) and every reload of the
    /// secondaries: what the NOTIFY task wakes on.
    pub fn changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Follows the journal position of the catalog being served.
    pub fn published(&self) -> tokio::sync::watch::Receiver<i64> {
        self.published.subscribe()
    }

    /// Follows the store's routes generation: it changes after every
    /// write the proxy's route table depends on.
    pub fn routes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.routes.subscribe()
    }

    fn reload_zone(&mut self, catalog: &mut Catalog, apex: &[u8]) -> Result<(), PublishError> {
        let seed = self.seed;
        let mut zone = None;
        let pos = self.store.visit_zone(apex, &mut |apex, count, recs| {
            zone = Some(build(apex, count, recs, seed)?);
            Ok(())
        })?;
        match (pos, zone) {
            (Some(pos), Some(zone)) => {
                self.set_loaded(apex, Some(pos));
                self.publish_built(catalog, apex, zone, None);
            }
            _ => {
                catalog.remove(apex);
                self.set_pending(apex, None);
                if self.unhold(apex) {
                    self.store.set_hold(apex, None)?;
                }
            }
        }
        Ok(())
    }

    /// Puts a built zone in the catalog if it is signed correctly (see
    /// `sixgate_dnssec::check`); otherwise, or when it could not be built,
    /// keeps serving what was served and holds the zone. `owners` are the
    /// names a diff changed; `None` (a whole load), or a changed DNSKEY
    /// RRset, has every signature verified on the workers, and the
    /// version is served once they pass.
    fn publish_built(
        &mut self,
        catalog: &mut Catalog,
        apex: &[u8],
        zone: Result<Zone, String>,
        owners: Option<&[Box<[u8]>]>,
    ) {
        let zone = match zone {
            Ok(z) => z,
            Err(reason) => {
                let reason = format!("the stored zone cannot be served: {reason}");
                tracing::error!(zone = %name::to_text(apex), %reason, "zone held: its last good version stays served");
                self.hold(apex, reason, false);
                return;
            }
        };
        if dnskeys(&zone).is_none() {
            // Unsigned: nothing to verify.
            self.serve(catalog, apex, zone);
            return;
        }
        let now = self.store.now().max(0) as u64;
        let key = name::to_lowercase(apex);
        let base_keys = match self.pending.get(&key) {
            Some(p) => dnskeys(&p.zone),
            None => catalog.zone(apex).and_then(|z| dnskeys(z)),
        };
        match owners.filter(|_| base_keys == dnskeys(&zone)) {
            Some(owners) => {
                let problems = sixgate_dnssec::check::verify_zone(&zone, Some(owners), now, SIGNATURE_MARGIN);
                if !problems.is_empty() {
                    self.refuse(apex, &problems);
                } else if let Some(p) = self.pending.get(&key) {
                    let generation = p.generation;
                    self.set_pending(apex, Some(Pending { generation, zone }));
                } else {
                    self.serve(catalog, apex, zone);
                }
            }
            None => {
                self.generation += 1;
                let generation = self.generation;
                self.set_pending(apex, Some(Pending { generation, zone: zone.clone() }));
                self.verifier.submit(Job { apex: key, generation, zone, now, margin: SIGNATURE_MARGIN });
            }
        }
    }

    /// Serves `zone`, ending a hold or a verification under way.
    fn serve(&mut self, catalog: &mut Catalog, apex: &[u8], zone: Zone) {
        self.set_pending(apex, None);
        if self.unhold(apex) {
            tracing::info!(zone = %name::to_text(apex), "zone passes its checks again; serving it");
            let _ = self.store.dnssec_alert(apex, None);
            if let Err(e) = self.store.set_hold(apex, None) {
                tracing::warn!(error = %e, "could not clear the hold");
            }
        }
        catalog.insert(Arc::new(zone));
    }

    /// Holds a signed zone whose check found `problems`.
    fn refuse(&mut self, apex: &[u8], problems: &[sixgate_dnssec::check::Problem]) {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let reason = format!("not served, the signed zone fails its check: {}", list.join("; "));
        tracing::error!(zone = %name::to_text(apex), problems = %list.join("; "), "signed zone not served: it fails its check");
        self.hold(apex, reason, true);
    }

    fn hold(&mut self, apex: &[u8], reason: String, dnssec: bool) {
        // The version being verified, if any, is superseded by this one.
        self.set_pending(apex, None);
        if dnssec && let Err(e) = self.store.dnssec_alert(apex, Some(&reason)) {
            tracing::warn!(error = %e, "could not record the alert");
        }
        if let Err(e) = self.store.set_hold(apex, Some(&reason)) {
            tracing::warn!(error = %e, "could not record the hold");
        }
        let key = name::to_lowercase(apex);
        let old = self.held.insert(key.clone(), reason);
        self.undo.push(Undo::Held(key, old));
        self.store_counts();
    }

    /// Runs until `shutdown`, waking on pokes to `dir/notify.sock` or every
    /// poll interval.
    pub fn run(mut self, dir: &Path, shutdown: Arc<AtomicBool>) {
        let sock_path = dir.join(NOTIFY_SOCKET);
        let sock = bind_notify(&sock_path);
        let mut buf = [0u8; 64];
        while !shutdown.load(Ordering::Relaxed) {
            match &sock {
                Some(s) => {
                    if s.recv(&mut buf).is_ok() {
                        // Drain further pokes so a burst causes one catch-up.
                        let _ = s.set_nonblocking(true);
                        while s.recv(&mut buf).is_ok() {}
                        let _ = s.set_nonblocking(false);
                    }
                }
                None => std::thread::sleep(POLL),
            }
            // Verdicts of whole verifications come in between journal
            // changes too (catch_up publishes them first).
            if let Err(e) = self.catch_up() {
                tracing::error!(error = %e, "publishing changes failed; retrying");
                std::thread::sleep(POLL);
            }
        }
        if sock.is_some() {
            let _ = std::fs::remove_file(&sock_path);
        }
    }
}

/// The zone's DNSKEY rdatas, sorted; `None` when it has none (unsigned).
fn dnskeys(zone: &Zone) -> Option<Vec<&[u8]>> {
    let set = zone.apex_node()?.rrset(code::DNSKEY)?;
    let mut v: Vec<&[u8]> = set.rdatas().collect();
    v.sort_unstable();
    Some(v)
}

fn bind_notify(path: &PathBuf) -> Option<UnixDatagram> {
    let _ = std::fs::remove_file(path);
    match UnixDatagram::bind(path) {
        Ok(s) => {
            let _ = s.set_read_timeout(Some(POLL));
            // bind() gives the socket the umask's mode; like every file in
            // the data directory it is the service user's alone.
            if let Err(e) = sixgate_store::files::restrict(path) {
                tracing::warn!(error = %e, "could not make the notification socket private");
            }
            Some(s)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no notification socket; polling only");
            None
        }
    }
}

/// Tells a server running on `dir` that the store changed (best effort).
pub fn poke(dir: &Path) {
    if let Ok(s) = UnixDatagram::unbound() {
        let _ = s.send_to(b"changed", dir.join(NOTIFY_SOCKET));
    }
}

#[cfg(test)]
#[path = "publish_tests.rs"]
mod tests;
