//! The metrics listener's router: `/metrics`, `/health` and `/ready`,
//! without a token, apart from the API.
//!
//! A scrape must work when the API does not: its connections all taken,
//! its store readers busy with long reads, or the API switched off. So
//! the metrics listener has its own gate (`[metrics] listen`, loopback by
//! default: the metrics name zones and secondaries, so they are not for
//! the internet) and its own read connection to the store, and shares
//! with the API only the functions that write the metrics text and say
//! whether the server is ready. `/health` and `/ready` answer exactly as
//! the API's do ([`ready_answer`] is both).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::response::{IntoResponse, Response};
use sixgate_store::{Hold, Store};

/// What the metrics listener answers from.
pub struct Probe {
    metrics: Box<dyn Fn() -> String + Send + Sync>,
    readiness: Box<dyn Fn() -> Option<String> + Send + Sync>,
    /// A read-only connection of its own: the API's readers may all be
    /// busy.
    store: Mutex<Store>,
}

impl Probe {
    /// Answers `/metrics` with `metrics()`, and `/ready` with 503 while
    /// `not_ready()` gives a reason, else with the held zones read
    /// through `store` (a reader is opened from it).
    pub fn new(
        store: &Store,
        metrics: impl Fn() -> String + Send + Sync + 'static,
        not_ready: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Result<Probe, sixgate_store::StoreError> {
        Ok(Probe {
            metrics: Box::new(metrics),
            readiness: Box::new(not_ready),
            store: Mutex::new(store.reader()?),
        })
    }
}

/// The router of the metrics listener.
pub fn app(probe: Probe) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/health", axum::routing::get(health))
        .route("/ready", axum::routing::get(ready))
        .fallback(|uri: axum::http::Uri| async move {
            crate::ApiError::NotFound(format!(
                "no such endpoint here: {} (the metrics listener has /metrics, /health and /ready)",
                uri.path()
            ))
        })
        .with_state(Arc::new(probe))
}

/// The metrics text as served: Prometheus text format 0.0.4.
pub(crate) fn metrics_response(text: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn metrics(axum::extract::State(p): axum::extract::State<Arc<Probe>>) -> Response {
    metrics_response((p.metrics)())
}

/// `GET /health`: the process answers.
pub(crate) async fn health() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain")], "ok\n").into_response()
}

async fn ready(axum::extract::State(p): axum::extract::State<Arc<Probe>>) -> Response {
    if let Some(reason) = (p.readiness)() {
        return ready_answer(Some(reason), Ok(Vec::new()));
    }
    let holds = tokio::task::spawn_blocking(move || {
        p.store.lock().unwrap_or_else(|e| e.into_inner()).holds().map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("store task failed: {e}")));
    ready_answer(None, holds)
}

/// `GET /ready`'s answer: 503 with `not_ready` when given, or when the
/// store did not answer; else 200 listing the held zones. A held zone
/// does not make a node unready: one customer's bad zone would otherwise
/// take every node out of rotation.
pub(crate) fn ready_answer(not_ready: Option<String>, holds: Result<Vec<Hold>, String>) -> Response {
    let unready = |reason: String| {
        let body = serde_json::json!({"status": "not ready", "reason": reason});
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    };
    if let Some(reason) = not_ready {
        return unready(reason);
    }
    match holds {
        Ok(holds) => {
            let held: Vec<serde_json::Value> = holds
                .iter()
                .map(|(apex, reason)| serde_json::json!({"zone": sixgate_dns::name::to_text(apex), "reason": reason}))
                .collect();
            axum::Json(serde_json::json!({"status": "ready", "held_zones": held})).into_response()
        }
        Err(e) => unready(format!("the store does not answer: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(app: &Router, path: &str) -> (u16, String) {
        let req = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn metrics_health_and_ready_answer_without_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let probe = Probe::new(
            &store,
            || "sixgate_x 1\n".into(),
            move || (!s.load(Ordering::Relaxed)).then(|| "starting".to_owned()),
        )
        .unwrap();
        let app = app(probe);
        assert_eq!(get(&app, "/metrics").await, (200, "sixgate_x 1\n".into()));
        assert_eq!(get(&app, "/health").await, (200, "ok\n".into()));
        let (status, body) = get(&app, "/ready").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("starting"), "{body}");
        started.store(true, Ordering::Relaxed);
        let held = sixgate_dns::name::from_text("held.test.", None).unwrap();
        store.set_hold(&held, Some("bad data")).unwrap();
        let (status, body) = get(&app, "/ready").await;
        assert_eq!(status, 200, "a held zone does not make the node unready: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["held_zones"], serde_json::json!([{"zone": "held.test.", "reason": "bad data"}]));
        assert_eq!(get(&app, "/v1/zones").await.0, 404, "the API is not served here");
    }
}
