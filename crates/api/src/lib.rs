//! sixgate's HTTP API.
//!
//! # Architecture
//!
//! [`app`] builds the axum router over an [`AppState`]; [`listen`] serves
//! it. Handlers are thin: they check the caller's token ([`auth`]), turn
//! JSON or presentation-format text into records ([`records`]) and hand
//! one batch of changes to the store's single write path. A write is
//! answered only after the commit is durable *and* the DNS snapshot
//! containing it is published, so a client that queries right after the
//! 2xx sees its change.
//!
//! The store is reached two ways, both on blocking threads (SQLite's
//! fsync and big reads must not stall the async workers, which also serve
//! DNS over TCP): writes go one at a time through the one writable
//! connection, and reads, token checks included, through a few read-only
//! connections ([`sixgate_store::Store::reader`]). SQLite's WAL lets a
//! reader see the last commit without waiting for a write in progress, so
//! one tenant's long write (a big signed import, a store busy behind the
//! CLI's transaction) holds up other writes, never everyone's reads.
//! Parsing big input (zone files, large JSON bodies, RRset batches) also
//! runs on blocking threads ([`offload`]).
//!
//! Three dialects share that core:
//! - the native API under `/v1` ([`zones`], [`rrsets`], [`admin`]),
//!   described by the OpenAPI document at `/v1/openapi.json`;
//! - lego's `httpreq` protocol ([`httpreq`]);
//! - the subset of PowerDNS's API that ACME clients and DNS tooling use
//!   ([`pdns`]).
//!
//! Writes that change records may wait, after that, until every secondary
//! serves them ([`secondaries`]).
#![warn(missing_docs)]

mod admin;
mod auth;
mod body;
mod conn;
mod dnssec;
pub mod error;
mod httpreq;
mod limit;
pub mod listen;
mod openapi;
mod pdns;
pub mod probe;
mod records;
mod rrsets;
pub mod secondaries;
mod zones;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use sixgate_store::{Commit, Store, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

pub use crate::error::ApiError;
pub(crate) use body::{Body, ZoneText};

/// How long a write waits for DNS to publish it before answering anyway
/// (the write is durable either way; this only bounds the wait).
const PUBLISH_WAIT: Duration = Duration::from_secs(2);

/// Read-only store connections: reads that may run at once.
const READERS: usize = 4;

/// Validated API settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Nameservers (wire form) for new zones' NS records; also what the
    /// parent must delegate to for a zone to count as verified.
    pub nameservers: Vec<Box<[u8]>>,
    /// Requests per second per customer token (admin tokens are not limited).
    pub rate_limit: u32,
    /// Burst size per customer token.
    pub rate_burst: u32,
    /// Largest request body.
    pub max_body: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings { nameservers: Vec::new(), rate_limit: 20, rate_burst: 100, max_body: 16 << 20 }
    }
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    /// The one connection that writes: writes wait here for each other.
    writer: Arc<tokio::sync::Mutex<Store>>,
    readers: Readers,
    settings: ApiSettings,
    published: Option<watch::Receiver<i64>>,
    poke: Box<dyn Fn() + Send + Sync>,
    limiter: limit::Limiter,
    metrics: Option<Box<dyn Fn() -> String + Send + Sync>>,
    /// What the secondaries serve, when this process sends NOTIFY.
    secondaries: Option<Arc<sixgate_control::notify::Status>>,
    /// lego httpreq `present` waits this long for the secondaries.
    httpreq_wait: Option<Duration>,
    /// Why the server is not ready yet (`GET /ready`), or `None` when it is.
    readiness: Option<Box<dyn Fn() -> Option<String> + Send + Sync>>,
}

/// The read-only connections, each lent to one request at a time.
struct Readers {
    idle: Mutex<Vec<Store>>,
    /// One permit per connection in `idle`.
    free: Arc<Semaphore>,
}

impl Readers {
    fn new(store: &Store) -> Result<Readers, StoreError> {
        let idle = (0..READERS).map(|_| store.reader()).collect::<Result<Vec<_>, _>>()?;
        Ok(Readers { idle: Mutex::new(idle), free: Arc::new(Semaphore::new(READERS)) })
    }

    /// Lends a connection to the holder of `permit`; it comes back when
    /// the lease drops, also when the reader panics.
    fn lease(&self, permit: OwnedSemaphorePermit) -> Option<Lease<'_>> {
        let store = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        Some(Lease { readers: self, store: Some(store), _permit: permit })
    }
}

struct Lease<'a> {
    readers: &'a Readers,
    store: Option<Store>,
    // Dropped after the store is back in `idle`.
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.store.take() {
            self.readers.idle.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        }
    }
}

/// Runs `f` on a blocking thread: CPU work (parsing a zone file, a large
/// body) that would otherwise hold an async worker.
pub(crate) async fn offload<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
}

impl AppState {
    /// State over `store`, which becomes the API's one writer; its read
    /// connections are opened here. `published` follows the journal
    /// position the DNS snapshot has reached; `poke` wakes the publisher
    /// after a commit.
    pub fn new(
        store: Store,
        settings: ApiSettings,
        published: Option<watch::Receiver<i64>>,
        poke: impl Fn() + Send + Sync + 'static,
    ) -> Result<AppState, StoreError> {
        let limiter = limit::Limiter::new(settings.rate_limit, settings.rate_burst);
        let readers = Readers::new(&store)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                writer: Arc::new(tokio::sync::Mutex::new(store)),
                readers,
                settings,
                published,
                poke: Box::new(poke),
                limiter,
                metrics: None,
                secondaries: None,
                httpreq_wait: None,
                readiness: None,
            }),
        })
    }

    /// Serves `render()` (Prometheus text format) at `GET /metrics`, for
    /// admin tokens. Call before the state is shared.
    pub fn with_metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> AppState {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.metrics = Some(Box::new(render));
        }
        self
    }

    /// Reads the secondaries' status from `status` (for `GET
    /// .../secondaries` and writes that wait for them); with
    /// `httpreq_wait`, lego httpreq `present` waits for them that long, as
    /// a write with `?wait=secondaries` does. Call before the state is
    /// shared.
    pub fn with_secondaries(
        mut self,
        status: Arc<sixgate_control::notify::Status>,
        httpreq_wait: Option<Duration>,
    ) -> AppState {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.secondaries = Some(status);
            inner.httpreq_wait = httpreq_wait;
        }
        self
    }

    /// `GET /ready` asks `not_ready()` why the server is not ready
    /// (listeners still binding, signed zones still being verified), and
    /// answers 200 when it says `None`. Call before the state is shared.
    pub fn with_readiness(
        mut self,
        not_ready: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> AppState {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.readiness = Some(Box::new(not_ready));
        }
        self
    }

    fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }

    /// Runs `f` on a read-only connection, on a blocking thread. Any
    /// write `f` tries fails (`query_only`).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .inner
            .readers
            .free
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(format!("store readers closed: {e}")))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut lease = inner
                .readers
                .lease(permit)
                .ok_or_else(|| ApiError::Internal("no store reader left under a permit".into()))?;
            let store = lease.store.as_mut().ok_or_else(|| ApiError::Internal("store lease empty".into()))?;
            f(store)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    }

    /// Runs `f` on the writer, after the writes before it, on a blocking
    /// thread. Waiting for the writer holds no thread.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let mut writer = self.inner.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || f(&mut writer))
            .await
            .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    }

    /// Wakes the publisher after a commit that is not a zone change (the
    /// proxy's routes follow it from there).
    fn poke(&self) {
        (self.inner.poke)();
    }

    /// Runs a write on the store (`f` returns the commit and what to
    /// answer), then waits until DNS serves it.
    async fn commit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<(Commit, T), ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (commit, out) = self.write(f).await?;
        self.served(commit).await;
        Ok(out)
    }

    /// Waits until DNS serves the change committed as `commit`.
    async fn served(&self, commit: Commit) {
        (self.inner.poke)();
        let Some(mut rx) = self.inner.published.clone() else {
            return;
        };
        let wait = rx.wait_for(|&pos| pos >= commit.journal_id);
        if tokio::time::timeout(PUBLISH_WAIT, wait).await.is_err() {
            tracing::warn!(journal_id = commit.journal_id, "change committed but not yet published");
        }
    }
}

/// `GET /metrics`: counters in Prometheus text format (admin tokens only;
/// the metrics listener, [`probe`], serves the same text without one).
async fn metrics(
    axum::extract::State(st): axum::extract::State<AppState>,
    caller: auth::Caller,
) -> Result<axum::response::Response, ApiError> {
    caller.require_admin()?;
    let text = st.inner.metrics.as_ref().map(|f| f()).unwrap_or_default();
    Ok(probe::metrics_response(text))
}

/// `GET /ready`: 200 once the listeners are bound, the snapshots loaded
/// and verified and the store answers; 503 with the reason before. No
/// token. Held zones do not make a node unready (one customer's bad zone
/// would otherwise take every node out of rotation): they are listed.
async fn ready(axum::extract::State(st): axum::extract::State<AppState>) -> axum::response::Response {
    if let Some(reason) = st.inner.readiness.as_ref().and_then(|f| f()) {
        return probe::ready_answer(Some(reason), Ok(Vec::new()));
    }
    let holds = st.read(|s| s.holds().map_err(ApiError::from)).await.map_err(|e| e.to_string());
    probe::ready_answer(None, holds)
}

/// The router for the whole API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(openapi::routes())
        .merge(zones::routes())
        .merge(dnssec::routes())
        .merge(rrsets::routes())
        .merge(admin::routes())
        .merge(httpreq::routes())
        .merge(pdns::routes())
        .merge(secondaries::routes())
        .route("/metrics", axum::routing::get(metrics))
        .route("/health", axum::routing::get(probe::health))
        .route("/ready", axum::routing::get(ready))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

#[cfg(test)]
mod tests;
