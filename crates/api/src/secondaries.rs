//! The secondaries' view of a zone, and writes that wait for them.
//!
//! `GET /v1/zones/{zone}/secondaries` shows, for every secondary that
//! carries the zone, the last NOTIFY sent, the serial it reports and
//! whether (and for how long) it is behind, from the NOTIFY task's table
//! ([`sixgate_control::notify::Status`]).
//!
//! A write that changes records may ask to be answered only once every
//! secondary carrying the zone serves it: `?wait=secondaries` or the
//! header `Sixgate-Wait: secondaries`, with `timeout=SECONDS` (default
//! [`DEFAULT_WAIT`], at most [`MAX_WAIT`]). The wait starts after the
//! write is committed and served here, holds no lock and not the writer,
//! and wakes on the table's changes. When it ends in time the answer is
//! the usual one, with each secondary's serial (in the JSON body, or for
//! a 204 in the `Sixgate-Secondaries` header); at the timeout it is 504
//! with the same list, showing who is behind. The write itself is
//! durable and served either way: repeating it is safe.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sixgate_control::notify::status::Report;
use sixgate_dns::name;

use crate::auth::Caller;
use crate::records::parse_name;
use crate::{ApiError, AppState};

/// How long a write waits for the secondaries unless it says.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// The longest wait a write may ask for: beyond it a client is better
/// served by polling `GET .../secondaries`, and an HTTP connection is not
/// held for minutes.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The header that asks for the wait, as `?wait=secondaries` does.
pub const WAIT_HEADER: &str = "sixgate-wait";
/// The header a 204 answer lists the secondaries' serials in.
pub const SECONDARIES_HEADER: &str = "sixgate-secondaries";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/zones/{zone}/secondaries", get(show))
}

/// The last NOTIFY sent to a secondary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct NotifyJson {
    /// Unix seconds of its first try.
    at: u64,
    serial: u32,
    acked: bool,
    /// Unix seconds of the acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    acked_at: Option<u64>,
    tries: u32,
    /// Every try unanswered, or refused.
    failed: bool,
}

/// One secondary's state for a zone.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct SecondaryJson {
    address: String,
    /// The serial it reports (an SOA query), if one was read.
    serial: Option<u32>,
    /// Unix seconds of that read.
    serial_read_at: Option<u64>,
    /// Why the last SOA query got no serial.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    last_notify: Option<NotifyJson>,
    /// It reports the served serial or a later one.
    in_sync: bool,
    /// Seconds since we first served a serial it lacks; null when in sync.
    lag_seconds: Option<f64>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl From<&Report> for SecondaryJson {
    fn from(r: &Report) -> SecondaryJson {
        SecondaryJson {
            address: r.address.to_string(),
            serial: r.reported.map(|x| x.serial),
            serial_read_at: r.reported.map(|x| unix(x.at)),
            error: r.error.clone(),
            last_notify: r.notified.as_ref().map(|n| NotifyJson {
                at: unix(n.at),
                serial: n.serial,
                acked: n.acked.is_some(),
                acked_at: n.acked.map(unix),
                tries: n.tries,
                failed: n.failed,
            }),
            in_sync: r.in_sync,
            lag_seconds: r.lag.map(|l| (l.as_secs_f64() * 1000.0).round() / 1000.0),
        }
    }
}

/// `GET /v1/zones/{zone}/secondaries`.
#[derive(Debug, Serialize)]
struct ZoneSecondaries {
    zone: String,
    /// The serial served here; null when the zone is not served (an
    /// unverified customer zone, a held zone that never passed).
    serial: Option<u32>,
    secondaries: Vec<SecondaryJson>,
}

async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<ZoneSecondaries>, ApiError> {
    let apex = parse_name(&zone)?;
    let a = apex.clone();
    // The same check as the zone's own GET: a customer sees only its
    // account's zones.
    st.read(move |s| caller.zone(s, &a).map(|_| ())).await?;
    let report = st.inner.secondaries.as_ref().and_then(|s| s.zone(&apex));
    Ok(Json(ZoneSecondaries {
        zone: name::to_text(&apex),
        serial: report.as_ref().map(|r| r.serial),
        secondaries: report.iter().flat_map(|r| r.secondaries.iter().map(SecondaryJson::from)).collect(),
    }))
}

/// What a write asked for: wait for the secondaries, and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Wait(pub(crate) Option<Duration>);

impl Wait {
    /// Reads `wait` and `timeout` from the query string and the header.
    fn parse(query: Option<&str>, headers: &HeaderMap) -> Result<Wait, ApiError> {
        let mut wait = None;
        let mut timeout = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "wait" => wait = Some(v.to_owned()),
                "timeout" => timeout = Some(v.to_owned()),
                _ => {}
            }
        }
        if wait.is_none()
            && let Some(h) = headers.get(WAIT_HEADER)
        {
            wait = Some(
                h.to_str().map_err(|_| ApiError::BadRequest("bad Sixgate-Wait header".into()))?.to_owned(),
            );
        }
        match wait.as_deref().map(str::trim) {
            None | Some("" | "none") => {
                if timeout.is_some() {
                    return Err(ApiError::BadRequest("timeout goes with wait=secondaries".into()));
                }
                Ok(Wait(None))
            }
            Some(w) if w.eq_ignore_ascii_case("secondaries") => {
                let t = match timeout {
                    None => DEFAULT_WAIT,
                    Some(t) => {
                        let secs: u64 = t.parse().map_err(|_| {
                            ApiError::BadRequest(format!("timeout must be whole seconds, not {t:?}"))
                        })?;
                        if secs == 0 || secs > MAX_WAIT.as_secs() {
                            return Err(ApiError::BadRequest(format!(
                                "timeout must be 1 to {} seconds",
                                MAX_WAIT.as_secs()
                            )));
                        }
                        Duration::from_secs(secs)
                    }
                };
                Ok(Wait(Some(t)))
            }
            Some(w) => Err(ApiError::BadRequest(format!("wait must be secondaries, not {w:?}"))),
        }
    }
}

impl FromRequestParts<AppState> for Wait {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        Wait::parse(parts.uri.query(), &parts.headers)
    }
}

/// The secondaries' serials after a wait that ended in time.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Caught(pub(crate) Option<Vec<SecondaryJson>>);

impl Caught {
    /// The `Sixgate-Secondaries` header for an answer without a body:
    /// `ADDRESS=SERIAL` for each secondary, comma-separated.
    pub(crate) fn header(&self) -> Option<(&'static str, HeaderValue)> {
        let list = self.0.as_ref()?;
        let text = list
            .iter()
            .map(|s| format!("{}={}", s.address, s.serial.map_or_else(|| "-".to_owned(), |x| x.to_string())))
            .collect::<Vec<_>>()
            .join(", ");
        Some((SECONDARIES_HEADER, HeaderValue::from_str(&text).ok()?))
    }
}

impl AppState {
    /// Waits, when `wait` asks, until every secondary carrying `apex`
    /// reports `serial` or later; 504 with each one's state at the
    /// timeout. Without a NOTIFY task (no secondaries configured in this
    /// process) there is nothing to wait for.
    pub(crate) async fn wait_secondaries(
        &self,
        wait: Wait,
        apex: &[u8],
        serial: u32,
    ) -> Result<Caught, ApiError> {
        let Some(timeout) = wait.0 else { return Ok(Caught(None)) };
        let Some(status) = self.inner.secondaries.clone() else { return Ok(Caught(Some(Vec::new()))) };
        let waited = status.wait(apex, serial, timeout).await;
        let list: Vec<SecondaryJson> = waited.secondaries.iter().map(SecondaryJson::from).collect();
        if waited.reached {
            return Ok(Caught(Some(list)));
        }
        let behind: Vec<String> = waited
            .secondaries
            .iter()
            .filter(|s| !s.reported.is_some_and(|r| sixgate_dns::xfr::is_up_to_date(r.serial, serial)))
            .map(|s| s.address.to_string())
            .collect();
        Err(ApiError::SecondariesBehind {
            detail: format!(
                "the change (serial {serial}) is committed and served here, but after {} s {} do not serve it yet",
                timeout.as_secs(),
                behind.join(", ")
            ),
            serial,
            secondaries: serde_json::to_value(&list).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str, header: Option<&str>) -> Result<Wait, ApiError> {
        let mut h = HeaderMap::new();
        if let Some(v) = header {
            h.insert(WAIT_HEADER, HeaderValue::from_str(v).unwrap());
        }
        Wait::parse(Some(q), &h)
    }

    #[test]
    fn a_wait_is_asked_by_query_or_header_with_a_bounded_timeout() {
        assert_eq!(parse("", None).unwrap(), Wait(None));
        assert_eq!(parse("wait=secondaries", None).unwrap(), Wait(Some(DEFAULT_WAIT)));
        assert_eq!(
            parse("x=1&wait=secondaries&timeout=3", None).unwrap(),
            Wait(Some(Duration::from_secs(3)))
        );
        assert_eq!(parse("", Some("secondaries")).unwrap(), Wait(Some(DEFAULT_WAIT)));
        assert_eq!(parse("timeout=60", Some("Secondaries")).unwrap(), Wait(Some(MAX_WAIT)));
        for bad in [
            "wait=secondaries&timeout=0",
            "wait=secondaries&timeout=61",
            "wait=secondaries&timeout=1.5",
            "wait=all",
            "timeout=5",
        ] {
            assert!(matches!(parse(bad, None), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }
}
