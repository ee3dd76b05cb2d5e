//! Publishing the store's content as catalog snapshots.
//!
//! [`Follower`] loads every zone once, then follows the store's journal:
//! a diff is applied to the zone's snapshot (copy-on-write, so cost is
//! proportional to the change), a replacement reloads that zone, a deletion
//! drops it. The new catalog is swapped in atomically; queries in flight
//! keep the snapshot they started with.
//!
//! Other processes (the CLI) commit to the same database. The follower
//! notices through SQLite's `data_version` on a short poll, and sooner
//! when poked through the data directory's notification socket, which
//! the CLI pings after each commit.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sixgate_dns::zone::ZoneBuilder;
use sixgate_dns::{Catalog, Zone, name};
use sixgate_store::{JournalKind, Store, StoreError};

use crate::SharedCatalog;

/// Name of the notification socket inside the data directory.
pub const NOTIFY_SOCKET: &str = sixgate_store::files::NOTIFY_SOCKET;
/// How often the journal is checked when nobody pokes us.
const POLL: Duration = Duration::from_millis(100);
/// Journal entries read per batch.
const BATCH: usize = 256;

/// Errors while publishing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data did not form a zone.
    #[error("zone {0}: {1}")]
    Zone(String, sixgate_dns::zone::ZoneError),
}

/// Follows the store and keeps the shared catalog current.
pub struct Follower {
    store: Store,
    catalog: SharedCatalog,
    /// Journal position everything published is consistent with.
    position: i64,
    /// Signed zones whose latest version failed its check: the catalog
    /// keeps the last good one.
    held: std::collections::HashSet<Box<[u8]>>,
    /// Per zone: journal position its last full load was consistent with.
    loaded_at: HashMap<Box<[u8]>, i64>,
    seed: u64,
    data_version: i64,
    /// The journal position of the catalog being served, for writers
    /// that answer only once their change is served.
    published: tokio::sync::watch::Sender<i64>,
}

/// How long past now a served signature must stay valid: the refresh
/// runs well before that, so a signature this close to expiry means the
/// refresh has stopped.
const SIGNATURE_MARGIN: u32 = 3600;

/// The owners (lowercased) a diff touches.
fn changed_owners(changes: &[sixgate_dns::zone::Change]) -> Vec<Box<[u8]>> {
    let mut owners: Vec<Box<[u8]>> = changes
        .iter()
        .map(|c| match c {
            sixgate_dns::zone::Change::Add(r) | sixgate_dns::zone::Change::Remove(r) => {
                name::to_lowercase(&r.owner)
            }
        })
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// Builds a zone from streamed records.
fn build(
    apex: &[u8],
    count: u64,
    records: &mut dyn Iterator<Item = Result<sixgate_dns::Record, StoreError>>,
    seed: u64,
) -> Result<Zone, PublishError> {
    let zone_err = |e| PublishError::Zone(name::to_text(apex), e);
    let mut b = ZoneBuilder::new(apex, seed, count as usize);
    for r in records {
        b.push(r?).map_err(zone_err)?;
    }
    b.finish().map_err(zone_err)
}

impl Follower {
    /// Loads every zone from `store` and publishes the catalog.
    pub fn load(mut store: Store, seed: u64) -> Result<(Follower, SharedCatalog), PublishError> {
        let started = Instant::now();
        let data_version = store.data_version()?;
        let mut catalog = Catalog::new();
        let mut records = 0;
        let position = store.visit_zones(|apex, count, recs| {
            records += count;
            catalog.insert(Arc::new(build(apex, count, recs, seed)?));
            Ok::<_, PublishError>(())
        })?;
        tracing::info!(
            zones = catalog.len(),
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "zones loaded"
        );
        let shared: SharedCatalog = Arc::new(arc_swap::ArcSwap::from_pointee(catalog));
        Ok((
            Follower {
                store,
                catalog: shared.clone(),
                position,
                held: Default::default(),
                loaded_at: HashMap::new(),
                seed,
                data_version,
                published: tokio::sync::watch::Sender::new(position),
            },
            shared,
        ))
    }

    /// Applies journal entries committed since the last call. Returns the
    /// number of entries applied.
    pub fn catch_up(&mut self) -> Result<usize, PublishError> {
        let dv = self.store.data_version()?;
        if dv == self.data_version {
            return Ok(0);
        }
        self.data_version = dv;
        let mut applied = 0;
        loop {
            let Some(entries) = self.store.journal_since(self.position, BATCH)? else {
                tracing::warn!("journal was pruned past our position; reloading all zones");
                self.reload_all()?;
                return Ok(applied + 1);
            };
            if entries.is_empty() {
                return Ok(applied);
            }
            let mut catalog = Catalog::clone(&self.catalog.load());
            for e in entries {
                self.position = e.id;
                applied += 1;
                if self.loaded_at.get(&e.apex).is_some_and(|&p| e.id <= p) {
                    continue;
                }
                let held = self.held.contains(&e.apex);
                match e.kind {
                    JournalKind::Diff(changes) if !held => {
                        match catalog.zone(&e.apex).map(|z| z.apply(&changes)) {
                            Some(Ok(nz)) => {
                                let owners = changed_owners(&changes);
                                self.publish_checked(&mut catalog, &e.apex, nz, Some(&owners));
                            }
                            Some(Err(err)) => {
                                tracing::error!(zone = %name::to_text(&e.apex), error = %err, "diff failed; reloading zone");
                                self.reload_zone(&mut catalog, &e.apex)?;
                            }
                            None => self.reload_zone(&mut catalog, &e.apex)?,
                        }
                    }
                    JournalKind::Diff(_) | JournalKind::Replace => self.reload_zone(&mut catalog, &e.apex)?,
                    JournalKind::Delete => {
                        catalog.remove(&e.apex);
                        self.loaded_at.remove(&e.apex);
                    }
                }
                tracing::debug!(zone = %name::to_text(&e.apex), serial = e.serial, id = e.id, "change published");
            }
            self.catalog.store(Arc::new(catalog));
            self.published.send_replace(self.position);
        }
    }

    /// Follows the journal position of the catalog being served.
    pub fn published(&self) -> tokio::sync::watch::Receiver<i64> {
        self.published.subscribe()
    }

    fn reload_zone(&mut self, catalog: &mut Catalog, apex: &[u8]) -> Result<(), PublishError> {
        let seed = self.seed;
        let mut zone = None;
        let pos = self.store.visit_zone(apex, |apex, count, recs| {
            zone = Some(build(apex, count, recs, seed)?);
            Ok::<_, PublishError>(())
        })?;
        match (pos, zone) {
            (Some(pos), Some(zone)) => {
                self.loaded_at.insert(apex.into(), pos);
                self.publish_checked(catalog, apex, zone, None);
            }
            _ => {
                catalog.remove(apex);
                self.held.remove(apex);
            }
        }
        Ok(())
    }

    /// Puts `zone` in the catalog if it is signed correctly (see
    /// `sixgate_dnssec::check`); otherwise keeps serving what was served,
    /// raises the alert, and holds the zone: later changes reload it whole
    /// until a version passes.
    fn publish_checked(
        &mut self,
        catalog: &mut Catalog,
        apex: &[u8],
        zone: Zone,
        owners: Option<&[Box<[u8]>]>,
    ) {
        let now = self.store.now().max(0) as u64;
        let problems = sixgate_dnssec::check::check_zone(&zone, owners, now, SIGNATURE_MARGIN);
        if problems.is_empty() {
            if self.held.remove(apex) {
                tracing::info!(zone = %name::to_text(apex), "signed zone passes its check again; serving it");
                let _ = self.store.dnssec_alert(apex, None);
            }
            catalog.insert(Arc::new(zone));
            return;
        }
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let alert = format!("not served, the signed zone fails its check: {}", list.join("; "));
        tracing::error!(zone = %name::to_text(apex), problems = %list.join("; "), "signed zone not served: it fails its check");
        self.held.insert(apex.into());
        if let Err(e) = self.store.dnssec_alert(apex, Some(&alert)) {
            tracing::warn!(error = %e, "could not record the alert");
        }
    }

    fn reload_all(&mut self) -> Result<(), PublishError> {
        let seed = self.seed;
        let mut catalog = Catalog::new();
        let position = self.store.visit_zones(|apex, count, recs| {
            catalog.insert(Arc::new(build(apex, count, recs, seed)?));
            Ok::<_, PublishError>(())
        })?;
        self.position = position;
        self.loaded_at.clear();
        self.catalog.store(Arc::new(catalog));
        self.published.send_replace(position);
        Ok(())
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
