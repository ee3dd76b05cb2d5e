//! `/v1/zones/{zone}/rrsets`: list, get, replace and delete RRsets, and a
//! batch of changes applied atomically.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixgate_dns::name;

use crate::auth::Caller;
use crate::records::{
    MAX_RECORDS, Names, RrSetJson, check_ttl, group, parse_name, parse_owner, parse_rrset, parse_type,
};
use crate::secondaries::{Caught, SecondaryJson, Wait};
use crate::{ApiError, AppState, Body, offload};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/zones/{zone}/rrsets", get(list).post(batch))
        .route("/v1/zones/{zone}/rrsets/{name}/{rtype}", get(one).put(put).delete(remove))
}

async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<Vec<RrSetJson>>, ApiError> {
    let apex = parse_name(&zone)?;
    let records = st
        .read(move |s| {
            caller.zone(s, &apex)?;
            Ok(s.records(&apex)?)
        })
        .await?;
    Ok(Json(group(records)))
}

async fn one(
    State(st): State<AppState>,
    caller: Caller,
    Path((zone, owner, rtype)): Path<(String, String, String)>,
) -> Result<Json<RrSetJson>, ApiError> {
    let apex = parse_name(&zone)?;
    let owner = parse_owner(&apex, &owner)?;
    let rtype = parse_type(&rtype)?;
    let records = st
        .read(move |s| {
            caller.zone(s, &apex)?;
            Ok(s.rrset(&apex, &owner, rtype)?)
        })
        .await?;
    group(records).pop().map(Json).ok_or_else(|| ApiError::NotFound("no such RRset".into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutRrSet {
    ttl: u64,
    records: Vec<String>,
}

/// Result of a write.
#[derive(Debug, Serialize)]
struct Written {
    serial: u32,
    /// Each secondary's serial, when the write waited for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    secondaries: Option<Vec<SecondaryJson>>,
}

async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Path((zone, owner, rtype)): Path<(String, String, String)>,
    wait: Wait,
    body: Body,
) -> Result<Json<Written>, ApiError> {
    let req: PutRrSet = body.json().await?;
    let apex = parse_name(&zone)?;
    let owner = parse_owner(&apex, &owner)?;
    let rtype = parse_type(&rtype)?;
    let ttl = check_ttl(req.ttl)?;
    let (a, o) = (apex.clone(), owner.clone());
    let new = offload(move || parse_rrset(&a, &o, rtype, ttl, &req.records, Names::RelativeToApex)).await?;
    if new.is_empty() {
        return Err(ApiError::Unprocessable(
            "an RRset needs at least one record; use DELETE to remove it".into(),
        ));
    }
    let (commit, caught) = write_rrsets(&st, caller, apex, vec![(owner, rtype, new)], wait).await?;
    Ok(Json(Written { serial: commit.serial, secondaries: caught.0 }))
}

async fn remove(
    State(st): State<AppState>,
    caller: Caller,
    Path((zone, owner, rtype)): Path<(String, String, String)>,
    wait: Wait,
) -> Result<Response, ApiError> {
    let apex = parse_name(&zone)?;
    let owner = parse_owner(&apex, &owner)?;
    let rtype = parse_type(&rtype)?;
    let (_, caught) = write_rrsets(&st, caller, apex, vec![(owner, rtype, Vec::new())], wait).await?;
    Ok(no_content(&caught))
}

/// 204, with the secondaries' serials in a header when the write waited.
pub(crate) fn no_content(caught: &Caught) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some((name, value)) = caught.header() {
        resp.headers_mut().insert(name, value);
    }
    resp
}

/// Replaces RRsets (an empty set deletes) in one transaction, after
/// checking the caller may touch every one of them; then, when `wait`
/// asks, waits for the secondaries to serve the change.
pub(crate) async fn write_rrsets(
    st: &AppState,
    caller: Caller,
    apex: Box<[u8]>,
    sets: Vec<sixgate_store::RrSetReplacement>,
    wait: Wait,
) -> Result<(sixgate_store::Commit, Caught), ApiError> {
    let a = apex.clone();
    let commit = st
        .commit(move |s| {
            let (_, access) = caller.zone(s, &apex)?;
            for (owner, rtype, _) in &sets {
                caller.may_write(access, owner, *rtype)?;
            }
            let c = s.by(caller.actor()).replace_rrsets(&apex, &sets)?;
            Ok((c, c))
        })
        .await?;
    let caught = st.wait_secondaries(wait, &a, commit.serial).await?;
    Ok((commit, caught))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    /// `replace` (the default) or `delete`.
    #[serde(default)]
    changetype: Option<String>,
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default)]
    records: Vec<String>,
}

async fn batch(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
    wait: Wait,
    body: Body,
) -> Result<Json<Written>, ApiError> {
    let items: Vec<BatchItem> = body.json().await?;
    let apex = parse_name(&zone)?;
    let a = apex.clone();
    let sets = offload(move || parse_batch(&a, &items)).await?;
    let (commit, caught) = write_rrsets(&st, caller, apex, sets, wait).await?;
    Ok(Json(Written { serial: commit.serial, secondaries: caught.0 }))
}

/// The RRsets a batch puts in place, in its order; each (owner, type) at
/// most once.
fn parse_batch(apex: &[u8], items: &[BatchItem]) -> Result<Vec<sixgate_store::RrSetReplacement>, ApiError> {
    if items.len() > MAX_RECORDS {
        return Err(ApiError::Unprocessable(format!("more than {MAX_RECORDS} changes in one batch")));
    }
    let mut sets = Vec::with_capacity(items.len());
    let mut seen = HashSet::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let at = |e: ApiError| match e {
            ApiError::BadRequest(m) => ApiError::BadRequest(format!("change {i}: {m}")),
            ApiError::Unprocessable(m) => ApiError::Unprocessable(format!("change {i}: {m}")),
            e => e,
        };
        let owner = parse_owner(apex, &it.name).map_err(at)?;
        let rtype = parse_type(&it.rtype).map_err(at)?;
        let new = match it.changetype.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("replace") => {
                let ttl = check_ttl(it.ttl.unwrap_or(3600)).map_err(at)?;
                let new =
                    parse_rrset(apex, &owner, rtype, ttl, &it.records, Names::RelativeToApex).map_err(at)?;
                if new.is_empty() {
                    return Err(at(ApiError::Unprocessable("replace needs records; use delete".into())));
                }
                new
            }
            Some("delete") => Vec::new(),
            Some(other) => {
                return Err(at(ApiError::BadRequest(format!(
                    "changetype must be replace or delete, not {other:?}"
                ))));
            }
        };
        if !seen.insert((name::to_lowercase(&owner), rtype)) {
            return Err(at(ApiError::Unprocessable(format!("{} {} appears twice", it.name, it.rtype))));
        }
        sets.push((owner, rtype, new));
    }
    Ok(sets)
}
