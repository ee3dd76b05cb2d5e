//! RFC 2136 UPDATE over UDP and TCP, signed with TSIG (RFC 8945).
//!
//! The listeners hand every signed UPDATE to [`UpdateHandler`] through a
//! bounded queue (`sixgate_server::queue`) instead of answering it
//! themselves: an update writes to the store and waits for an fsync, which
//! must not stall the query workers. [`run`] takes jobs from the queue
//! with [`WORKERS`] workers, so the queue's bound holds: when the writer
//! falls behind, the queue fills and the listeners drop what does not fit.
//!
//! The handler verifies the signature first, with the key read through a
//! read-only connection of its own: a forged key or a bad MAC is refused
//! without touching the store's writer, which real updates wait for.
//! Then it refuses replays, checks that the key may change this zone (and,
//! for an acme-only key, only `_acme-challenge` TXT records), then
//! evaluates prerequisites and computes the changes inside the store's
//! write transaction, so nothing can slip in between. The answer is sent
//! once the change is durable and served.
//!
//! Unsigned updates are refused (the listeners already refuse them):
//! there is no address-based trust. Refusals of unauthenticated messages
//! are logged at a limited rate, and counted in `UpdateStats`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sixgate_dns::name;
use sixgate_dns::tsig::{self, Algorithm, Key, ReplayCache, Tsig, TsigFailure, Verified};
use sixgate_dns::update::{self, Rcode, Update, UpdateError, ZoneView};
use sixgate_dns::zone::{Change, Record};
use sixgate_listen::ratelog::RateLog;
use sixgate_server::queue::{Job, Reply, UpdateStats};
use sixgate_store::{Store, StoreError, TsigKey, ZoneReader, is_acme_challenge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

/// Accepted request MACs remembered against replays.
const REPLAY_CAPACITY: usize = 100_000;
/// How long an answer waits for DNS to publish the change.
const PUBLISH_WAIT: Duration = Duration::from_secs(2);
/// Updates processed at once. The store has one writer, so more would
/// only wait for it; a few let signature checks and store work overlap.
pub const WORKERS: usize = 4;

/// Refusals of what no key vouches for: a flood repeats them.
static REFUSED_LOG: RateLog = RateLog::new(2);
static TSIG_LOG: RateLog = RateLog::new(2);

/// Processes UPDATE messages against the store.
pub struct UpdateHandler {
    dir: PathBuf,
    /// The writer; taken only once the signature checked out.
    store: Mutex<Store>,
    /// A read-only connection for key lookups, so that verifying a
    /// signature never waits for a write (WAL readers do not).
    keys: Mutex<Store>,
    replay: Mutex<ReplayCache>,
    allow_md5: bool,
    published: Option<watch::Receiver<i64>>,
    stats: Arc<UpdateStats>,
}

/// Why an update did not go through.
enum Failure {
    Rcode(Rcode),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// The zone as the write transaction sees it. Store errors cannot pass
/// through [`ZoneView`]; the first one is kept and fails the update.
struct View<'a, 'r> {
    reader: &'a ZoneReader<'r>,
    error: std::cell::RefCell<Option<StoreError>>,
}

impl View<'_, '_> {
    fn keep<T: Default>(&self, r: Result<T, StoreError>) -> T {
        r.unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            T::default()
        })
    }
}

impl ZoneView for View<'_, '_> {
    fn rrset(&self, owner: &[u8], rtype: u16) -> Vec<Record> {
        self.keep(self.reader.rrset(owner, rtype))
    }

    fn owner_records(&self, owner: &[u8]) -> Vec<Record> {
        self.keep(self.reader.owner_records(owner))
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The signing key with its stored policy.
struct Signer {
    key: Key,
    zone: Box<[u8]>,
    acme_only: bool,
}

// Boxed: the key travels inside TSIG results, which stay small that way.
impl std::borrow::Borrow<Key> for Box<Signer> {
    fn borrow(&self) -> &Key {
        &self.key
    }
}

impl UpdateHandler {
    /// A handler on the store in `dir`. `allow_md5` accepts hmac-md5 keys;
    /// `published` follows what DNS serves, to answer only once it does;
    /// outcomes are counted into `stats`.
    pub fn new(
        dir: PathBuf,
        allow_md5: bool,
        published: Option<watch::Receiver<i64>>,
        stats: Arc<UpdateStats>,
    ) -> Result<Self, StoreError> {
        let store = Store::open(&dir)?;
        Ok(UpdateHandler {
            keys: Mutex::new(store.reader()?),
            store: Mutex::new(store),
            dir,
            replay: Mutex::new(ReplayCache::new(REPLAY_CAPACITY)),
            allow_md5,
            published,
            stats,
        })
    }

    /// The key named `key_name` with its policy; `None` for no such key
    /// or one this server does not accept (hmac-md5 unless allowed).
    fn signer(&self, key_name: &[u8]) -> Result<Option<Box<Signer>>, StoreError> {
        let key = self.keys.lock().unwrap_or_else(|p| p.into_inner()).tsig_key(key_name)?;
        let Some(TsigKey { name, algorithm, secret, zone, acme_only }) = key else { return Ok(None) };
        let Some(algorithm) = Algorithm::from_text(&algorithm) else { return Ok(None) };
        if algorithm == Algorithm::HmacMd5 && !self.allow_md5 {
            return Ok(None);
        }
        Ok(Some(Box::new(Signer { key: Key::new(&name, algorithm, secret), zone, acme_only })))
    }

    /// The answer to `msg`, or `None` for messages that get none. Blocks
    /// on the store; call it from a blocking context.
    pub fn process(&self, msg: &[u8], now: u64) -> Option<(Vec<u8>, i64)> {
        let upd = match update::decode(msg) {
            Ok(u) => u,
            Err(UpdateError::NotRequest) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "malformed UPDATE");
                self.stats.tsig_refused.fetch_add(1, Ordering::Relaxed);
                return Some((update::response(msg, e.rcode().unwrap_or(Rcode::FormErr).code()), 0));
            }
        };
        let tsig = match tsig::find(msg) {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.refused(&upd.zone, "unsigned UPDATE refused");
                return Some((update::response(msg, Rcode::Refused.code()), 0));
            }
            Err(e) => {
                tracing::debug!(error = %e, "UPDATE with a malformed TSIG record");
                self.stats.tsig_refused.fetch_add(1, Ordering::Relaxed);
                return Some((update::response(msg, Rcode::FormErr.code()), 0));
            }
        };
        // The signature is checked before the store's writer is touched.
        let signer = match self.signer(tsig.key_name.as_slice()) {
            Ok(s) => s,
            Err(e) => {
                // Not BADKEY: the key may well be good.
                tracing::error!(zone = %name::to_text(&upd.zone), error = %e, "UPDATE key lookup failed");
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Some((update::response(msg, Rcode::ServFail.code()), 0));
            }
        };
        let verified = tsig::verify_request(msg, &tsig, |_| signer, now)
            .and_then(|v| self.replay.lock().unwrap_or_else(|p| p.into_inner()).check(v, now));
        let v = match verified {
            Ok(v) => v,
            Err(failure) => return Some((self.tsig_error(msg, &tsig, failure, now), 0)),
        };
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let (rcode, journal_id) = match self.apply(&mut store, &upd, &v.key) {
            Ok(c) => (Rcode::NoError, c),
            Err(Failure::Rcode(r)) => (r, 0),
            Err(Failure::Store(e @ (StoreError::Invalid(_) | StoreError::Limit(_)))) => {
                tracing::info!(zone = %name::to_text(&upd.zone), error = %e, "UPDATE refused");
                (Rcode::Refused, 0)
            }
            Err(Failure::Store(e)) => {
                tracing::error!(zone = %name::to_text(&upd.zone), error = %e, "UPDATE failed");
                (Rcode::ServFail, 0)
            }
        };
        drop(store);
        let counter = if rcode == Rcode::NoError { &self.stats.applied } else { &self.stats.refused };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            zone = %name::to_text(&upd.zone),
            key = %name::to_text(&v.key.key.name),
            rcode = rcode.code(),
            "UPDATE"
        );
        Some((sign(update::response(msg, rcode.code()), &v, now), journal_id))
    }

    /// Counts and logs (at a limited rate) a refusal of a message no key
    /// vouches for.
    fn refused(&self, zone: &[u8], what: &'static str) {
        self.stats.tsig_refused.fetch_add(1, Ordering::Relaxed);
        if let Some(held) = REFUSED_LOG.allow() {
            tracing::info!(zone = %name::to_text(zone), held_back = held, "{what}");
        } else {
            tracing::debug!(zone = %name::to_text(zone), "{what}");
        }
    }

    fn tsig_error(
        &self,
        msg: &[u8],
        tsig: &Tsig<'_>,
        failure: TsigFailure<Box<Signer>>,
        now: u64,
    ) -> Vec<u8> {
        self.stats.tsig_refused.fetch_add(1, Ordering::Relaxed);
        let key = name::to_text(tsig.key_name.as_slice());
        if let Some(held) = TSIG_LOG.allow() {
            tracing::info!(%key, error = %failure, held_back = held, "UPDATE TSIG check failed");
        } else {
            tracing::debug!(%key, error = %failure, "UPDATE TSIG check failed");
        }
        let mut resp = update::response(msg, (failure.rcode() & 0x0f) as u8);
        if let Err(e) = failure.append_tsig(&mut resp, tsig, now) {
            tracing::debug!(error = %e, "could not add the TSIG error record");
        }
        resp
    }

    fn apply(&self, store: &mut Store, upd: &Update, signer: &Signer) -> Result<i64, Failure> {
        let apex = name::to_lowercase(&upd.zone);
        if upd.zone_class != 1 {
            return Err(Failure::Rcode(Rcode::NotAuth));
        }
        // RFC 2136 §3.1.1: not a zone we serve.
        if store.zone_owner(&apex)?.is_none() {
            return Err(Failure::Rcode(Rcode::NotAuth));
        }
        // The key is for one zone only.
        if signer.zone != apex {
            return Err(Failure::Rcode(Rcode::NotAuth));
        }
        let acme_only = signer.acme_only;
        let actor = sixgate_store::Actor::Tsig(name::to_text(&signer.key.name));
        let commit = store.by(actor).apply_with(&apex, |reader| {
            let view = View { reader, error: Default::default() };
            let result = update::check_prerequisites(&apex, upd, &view).and_then(|()| {
                update::changes(&apex, upd, &view, &|owner, rtype| {
                    !acme_only || is_acme_challenge(owner, rtype)
                })
            });
            if let Some(e) = view.error.into_inner() {
                return Err(Failure::Store(e));
            }
            result.map_err(Failure::Rcode).map(|c: Vec<Change>| c)
        })?;
        Ok(commit.journal_id)
    }

    /// Processes one job: the signature check and the store work on a
    /// blocking thread, holding `worker` (one of [`WORKERS`]), then the
    /// wait until DNS serves the change, then the answer.
    pub async fn handle(self: Arc<Self>, job: Job, worker: OwnedSemaphorePermit) {
        let this = self.clone();
        let msg = job.msg;
        let done = tokio::task::spawn_blocking(move || this.process(&msg, unix_now())).await;
        // The publish wait below is bounded in time and follows only
        // authenticated writes: it need not hold a worker.
        drop(worker);
        let Ok(Some((resp, journal_id))) = done else { return };
        if journal_id > 0 {
            crate::publish::poke(&self.dir);
            if let Some(mut rx) = self.published.clone() {
                let _ = tokio::time::timeout(PUBLISH_WAIT, rx.wait_for(|&p| p >= journal_id)).await;
            }
        }
        match job.reply {
            Reply::Udp(sock, peer) => {
                if let Err(e) = sock.send_to(&resp, peer) {
                    tracing::debug!(%peer, error = %e, "UPDATE answer not sent");
                }
            }
            Reply::Tcp(tx) => {
                let _ = tx.send(resp);
            }
        }
    }
}

/// Signs an answer with the request's key (RFC 8945 §5.3).
fn sign(mut resp: Vec<u8>, v: &Verified<Box<Signer>>, now: u64) -> Vec<u8> {
    if let Err(e) = tsig::sign_response(&mut resp, &v.key.key, &v.mac, now, v.fudge, 0, &[]) {
        tracing::debug!(error = %e, "could not sign the UPDATE answer");
    }
    resp
}

/// Runs the handler on jobs from `queue` until it closes, [`WORKERS`] at
/// a time. A job is taken off the queue only when a worker is free, so
/// jobs wait in the queue, which is bounded, and nowhere else.
pub async fn run(handler: Arc<UpdateHandler>, mut queue: mpsc::Receiver<Job>) {
    let workers = Arc::new(Semaphore::new(WORKERS));
    let mut jobs = JoinSet::new();
    loop {
        let Ok(worker) = workers.clone().acquire_owned().await else { break };
        let job = tokio::select! {
            job = queue.recv() => job,
            // Reap finished jobs while the queue is quiet.
            Some(_) = jobs.join_next(), if !jobs.is_empty() => continue,
        };
        let Some(job) = job else { break };
        jobs.spawn(handler.clone().handle(job, worker));
    }
    while jobs.join_next().await.is_some() {}
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
