//! RFC 2136 UPDATE over UDP and TCP, signed with TSIG (RFC 8945).
//!
//! The listeners hand every UPDATE to [`UpdateHandler`] through a bounded
//! queue (`sixgate_server::queue`) instead of answering it themselves: an
//! update writes to the store and waits for an fsync, which must not stall
//! the query workers. The handler verifies the signature, refuses
//! replays, checks that the key may change this zone (and, for an
//! acme-only key, only `_acme-challenge` TXT records), then evaluates
//! prerequisites and computes the changes inside the store's write
//! transaction, so nothing can slip in between. The answer is sent once
//! the change is durable and served.
//!
//! Unsigned updates are refused: there is no address-based trust.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sixgate_dns::name;
use sixgate_dns::tsig::{self, Algorithm, Key, ReplayCache, Tsig, TsigFailure, Verified};
use sixgate_dns::update::{self, Rcode, Update, UpdateError, ZoneView};
use sixgate_dns::zone::{Change, Record};
use sixgate_server::queue::{Job, Reply};
use sixgate_store::{Store, StoreError, TsigKey, ZoneReader, is_acme_challenge};
use tokio::sync::{mpsc, watch};

/// Accepted request MACs remembered against replays.
const REPLAY_CAPACITY: usize = 100_000;
/// How long an answer waits for DNS to publish the change.
const PUBLISH_WAIT: Duration = Duration::from_secs(2);

/// Processes UPDATE messages against the store.
pub struct UpdateHandler {
    dir: PathBuf,
    store: Mutex<Store>,
    replay: Mutex<ReplayCache>,
    allow_md5: bool,
    published: Option<watch::Receiver<i64>>,
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
    /// `published` follows what DNS serves, to answer only once it does.
    pub fn new(
        dir: PathBuf,
        allow_md5: bool,
        published: Option<watch::Receiver<i64>>,
    ) -> Result<Self, StoreError> {
        Ok(UpdateHandler {
            store: Mutex::new(Store::open(&dir)?),
            dir,
            replay: Mutex::new(ReplayCache::new(REPLAY_CAPACITY)),
            allow_md5,
            published,
        })
    }

    fn signer(&self, store: &Store, key_name: &[u8]) -> Option<Box<Signer>> {
        let TsigKey { name, algorithm, secret, zone, acme_only } = store.tsig_key(key_name).ok()??;
        let algorithm = Algorithm::from_text(&algorithm)?;
        if algorithm == Algorithm::HmacMd5 && !self.allow_md5 {
            return None;
        }
        Some(Box::new(Signer { key: Key::new(&name, algorithm, secret), zone, acme_only }))
    }

    /// The answer to `msg`, or `None` for messages that get none. Blocks
    /// on the store; call it from a blocking context.
    pub fn process(&self, msg: &[u8], now: u64) -> Option<(Vec<u8>, i64)> {
        let upd = match update::decode(msg) {
            Ok(u) => u,
            Err(UpdateError::NotRequest) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "malformed UPDATE");
                return Some((update::response(msg, e.rcode().unwrap_or(Rcode::FormErr).code()), 0));
            }
        };
        let tsig = match tsig::find(msg) {
            Ok(Some(t)) => t,
            Ok(None) => {
                tracing::info!(zone = %name::to_text(&upd.zone), "unsigned UPDATE refused");
                return Some((update::response(msg, Rcode::Refused.code()), 0));
            }
            Err(e) => {
                tracing::debug!(error = %e, "UPDATE with a malformed TSIG record");
                return Some((update::response(msg, Rcode::FormErr.code()), 0));
            }
        };
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let verified = tsig::verify_request(msg, &tsig, |n| self.signer(&store, n), now)
            .and_then(|v| self.replay.lock().unwrap_or_else(|p| p.into_inner()).check(v, now));
        let v = match verified {
            Ok(v) => v,
            Err(failure) => return Some((self.tsig_error(msg, &tsig, failure, now), 0)),
        };
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
        tracing::info!(
            zone = %name::to_text(&upd.zone),
            key = %name::to_text(&v.key.key.name),
            rcode = rcode.code(),
            "UPDATE"
        );
        Some((sign(update::response(msg, rcode.code()), &v, now), journal_id))
    }

    fn tsig_error(
        &self,
        msg: &[u8],
        tsig: &Tsig<'_>,
        failure: TsigFailure<Box<Signer>>,
        now: u64,
    ) -> Vec<u8> {
        tracing::info!(key = %name::to_text(tsig.key_name.as_slice()), error = %failure, "UPDATE TSIG check failed");
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

    /// Processes one job: the store work on a blocking thread, then the
    /// wait until DNS serves the change, then the answer.
    pub async fn handle(self: Arc<Self>, job: Job) {
        let this = self.clone();
        let msg = job.msg;
        let done = tokio::task::spawn_blocking(move || this.process(&msg, unix_now())).await;
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

/// Runs the handler on jobs from `queue` until it closes.
pub async fn run(handler: Arc<UpdateHandler>, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.recv().await {
        tokio::spawn(handler.clone().handle(job));
    }
}
