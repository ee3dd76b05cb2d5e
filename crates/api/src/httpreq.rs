//! lego's `httpreq` DNS provider: `POST {base}/present` and
//! `POST {base}/cleanup` with `{"fqdn": "...", "value": "..."}`, where
//! `{base}` is `/v1/acme/httpreq`. lego authenticates with HTTP Basic; the
//! password is a sixgate token (an acme-only token is enough). These are
//! the only endpoints that take Basic ([`crate::auth`]); like every JSON
//! endpoint they take only `application/json` bodies, which lego sends and
//! a cross-site form cannot.
//!
//! `present` adds one TXT value and `cleanup` removes only that value: an
//! apex and a wildcard certificate put two values on the same name at the
//! same time, and removing the whole RRset would break the other one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record};
use sixgate_store::Store;

use crate::auth::{Access, Caller, HttpreqCaller};
use crate::records::parse_name;
use crate::secondaries::Wait;
use crate::{ApiError, AppState, Body};

/// TTL of challenge records: short, they live for seconds.
const CHALLENGE_TTL: u32 = 60;
/// ACME key authorisation digests are 43 characters; leave room for
/// other providers' conventions, but not for abuse.
const MAX_VALUE: usize = 1024;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/acme/httpreq/present", post(present))
        .route("/v1/acme/httpreq/cleanup", post(cleanup))
}

#[derive(Debug, Deserialize)]
struct Challenge {
    fqdn: String,
    value: String,
}

/// The deepest zone at or above `owner` that the caller may see.
pub(crate) fn zone_of(store: &Store, caller: &Caller, owner: &[u8]) -> Result<(Box<[u8]>, Access), ApiError> {
    let lower = name::to_lowercase(owner);
    let mut cur: &[u8] = &lower;
    loop {
        if let Some(o) = store.zone_owner(cur)?
            && let Some(access) = caller.access(cur, &o)
        {
            return Ok((cur.into(), access));
        }
        match name::parent(cur) {
            Some(p) => cur = p,
            None => {
                return Err(ApiError::NotFound(format!(
                    "no zone of yours contains {}",
                    name::to_text(owner)
                )));
            }
        }
    }
}

/// TXT rdata holding `value`, split into strings of at most 255 octets.
pub(crate) fn txt_rdata(value: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(value.len() + value.len() / 255 + 1);
    for chunk in value.as_bytes().chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    if out.is_empty() {
        out.push(0);
    }
    out.into_boxed_slice()
}

async fn change(
    st: AppState,
    caller: Caller,
    body: Body,
    add: bool,
    wait: Wait,
) -> Result<StatusCode, ApiError> {
    let req: Challenge = body.json().await?;
    if req.value.is_empty() || req.value.len() > MAX_VALUE {
        return Err(ApiError::Unprocessable(format!("value must be 1 to {MAX_VALUE} characters")));
    }
    let owner = parse_name(&req.fqdn)?;
    let record =
        Record { owner: owner.clone(), rtype: code::TXT, ttl: CHALLENGE_TTL, rdata: txt_rdata(&req.value) };
    let (serial, apex) = st
        .commit(move |s| {
            let (apex, access) = zone_of(s, &caller, &owner)?;
            caller.may_write(access, &owner, code::TXT)?;
            let c = if add { Change::Add(record) } else { Change::Remove(record) };
            let commit = s.by(caller.actor()).apply(&apex, &[c])?;
            Ok((commit, (commit.serial, apex)))
        })
        .await?;
    st.wait_secondaries(wait, &apex, serial).await?;
    Ok(StatusCode::OK)
}

/// `present` waits for the secondaries when the server says so
/// (`[secondaries] httpreq_wait`): lego cannot be told to, and asks the CA
/// to validate right after the answer, so an answer before every
/// secondary serves the record makes the validation hit a secondary that
/// lacks it. The request's own `?wait=` or header also work.
async fn present(
    State(st): State<AppState>,
    HttpreqCaller(caller): HttpreqCaller,
    wait: Wait,
    body: Body,
) -> Result<(StatusCode, Json<()>), ApiError> {
    let wait = match wait {
        Wait(None) => Wait(st.inner.httpreq_wait),
        w => w,
    };
    Ok((change(st, caller, body, true, wait).await?, Json(())))
}

/// `cleanup` never waits: a challenge record that lingers a little longer
/// on a secondary does no harm.
async fn cleanup(
    State(st): State<AppState>,
    HttpreqCaller(caller): HttpreqCaller,
    body: Body,
) -> Result<(StatusCode, Json<()>), ApiError> {
    Ok((change(st, caller, body, false, Wait(None)).await?, Json(())))
}
