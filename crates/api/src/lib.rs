//! sixgate's HTTP API.
//!
//! # Architecture
//!
//! [`app`] builds the axum router over an [`AppState`]; `serve` in the
//! binary binds it. Handlers are thin: they check the caller's token
//! ([`auth`]), turn JSON or presentation-format text into records
//! ([`records`]) and hand one batch of changes to the store's single write
//! path, on a blocking thread, because SQLite's fsync must not stall the
//! async workers. A write is answered only after the commit is durable
//! *and* the DNS snapshot containing it is published, so a client that
//! queries right after the 2xx sees its change.
//!
//! Three dialects share that core:
//! - the native API under `/v1` ([`zones`], [`rrsets`], [`admin`]),
//!   described by the OpenAPI document at `/v1/openapi.json`;
//! - lego's `httpreq` protocol ([`httpreq`]);
//! - the subset of PowerDNS's API that ACME clients and DNS tooling use
//!   ([`pdns`]).
#![warn(missing_docs)]

mod admin;
mod auth;
mod conn;
mod dnssec;
pub mod error;
mod httpreq;
mod limit;
pub mod listen;
mod openapi;
mod pdns;
mod records;
mod rrsets;
mod zones;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use sixgate_store::{Commit, Store};
use tokio::sync::watch;

pub use crate::error::ApiError;

/// How long a write waits for DNS to publish it before answering anyway
/// (the write is durable either way; this only bounds the wait).
const PUBLISH_WAIT: Duration = Duration::from_secs(2);

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
    store: Mutex<Store>,
    settings: ApiSettings,
    published: Option<watch::Receiver<i64>>,
    poke: Box<dyn Fn() + Send + Sync>,
    limiter: limit::Limiter,
    metrics: Option<Box<dyn Fn() -> String + Send + Sync>>,
}

impl AppState {
    /// State over `store`. `published` follows the journal position the
    /// DNS snapshot has reached; `poke` wakes the publisher after a commit.
    pub fn new(
        store: Store,
        settings: ApiSettings,
        published: Option<watch::Receiver<i64>>,
        poke: impl Fn() + Send + Sync + 'static,
    ) -> AppState {
        let limiter = limit::Limiter::new(settings.rate_limit, settings.rate_burst);
        AppState {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                settings,
                published,
                poke: Box::new(poke),
                limiter,
                metrics: None,
            }),
        }
    }

    /// Serves `render()` (Prometheus text format) at `GET /metrics`, for
    /// admin tokens. Call before the state is shared.
    pub fn with_metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> AppState {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.metrics = Some(Box::new(render));
        }
        self
    }

    fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }

    /// Runs `f` on the store on a blocking thread.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = inner.store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut store)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    }

    /// Runs a write on the store (`f` returns the commit and what to
    /// answer), then waits until DNS serves it.
    async fn commit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<(Commit, T), ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (commit, out) = self.store(f).await?;
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

/// The request body, with size and read errors as problem documents.
pub(crate) struct Body(pub(crate) Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge(state.settings().max_body))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

impl Body {
    /// Parses the body as JSON.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
    }
}

/// `GET /metrics`: counters in Prometheus text format (admin tokens only).
async fn metrics(
    axum::extract::State(st): axum::extract::State<AppState>,
    caller: auth::Caller,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    caller.require_admin()?;
    let text = st.inner.metrics.as_ref().map(|f| f()).unwrap_or_default();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// The router for the whole API.
pub fn app(state: AppState) -> Router {
    let max_body = state.settings().max_body;
    Router::new()
        .merge(openapi::routes())
        .merge(zones::routes())
        .merge(dnssec::routes())
        .merge(rrsets::routes())
        .merge(admin::routes())
        .merge(httpreq::routes())
        .merge(pdns::routes())
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

#[cfg(test)]
mod tests;
