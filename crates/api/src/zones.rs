//! `/v1/zones`: create, list, show and delete zones; import and export
//! zone files.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixgate_dns::zone::Record;
use sixgate_dns::{name, zonefile};
use sixgate_store::{OPERATOR_ACCOUNT, Store};

use crate::auth::Caller;
use crate::records::parse_name;
use crate::{ApiError, AppState, Body, ZoneText, offload};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/zones", get(list).post(create))
        .route("/v1/zones/{zone}", get(show).delete(delete))
        .route("/v1/zones/{zone}/zonefile", get(export).put(import))
        .route("/v1/zones/{zone}/anames", get(anames))
        .route("/v1/zones/{zone}/audit", get(audit))
}

/// A zone as the native API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct ZoneJson {
    pub(crate) name: String,
    pub(crate) serial: u32,
    pub(crate) records: u64,
    pub(crate) account: String,
    pub(crate) verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) verify_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) verify_checked_at: Option<i64>,
    /// Why DNS does not serve the zone as stored (its last good version
    /// stays served), or null.
    pub(crate) held: Option<String>,
}

/// The zones the caller may see.
pub(crate) fn visible(store: &Store, caller: &Caller) -> Result<Vec<ZoneJson>, ApiError> {
    let accounts = store.accounts()?;
    let account_name =
        |id: i64| accounts.iter().find(|a| a.id == id).map_or_else(|| id.to_string(), |a| a.name.clone());
    let mut out = Vec::new();
    for z in store.zones()? {
        let apex_l = name::to_lowercase(&z.apex);
        let Some(owner) = store.zone_owner(&apex_l)? else { continue };
        if caller.access(&apex_l, &owner).is_none() {
            continue;
        }
        out.push(ZoneJson {
            name: name::to_text(&z.apex),
            serial: z.serial,
            records: z.records,
            account: account_name(z.account_id),
            verified: z.verified,
            verify_error: owner.error,
            verify_checked_at: owner.checked_at,
            held: z.held,
        });
    }
    Ok(out)
}

async fn list(State(st): State<AppState>, caller: Caller) -> Result<Json<Vec<ZoneJson>>, ApiError> {
    Ok(Json(st.read(move |s| visible(s, &caller)).await?))
}

fn one(store: &Store, caller: &Caller, apex: &[u8]) -> Result<ZoneJson, ApiError> {
    caller.zone(store, apex)?;
    let key = name::to_lowercase(apex);
    visible(store, caller)?
        .into_iter()
        .find(|z| parse_name(&z.name).map(|n| name::to_lowercase(&n) == key).unwrap_or(false))
        .ok_or_else(|| ApiError::NotFound(format!("zone {} does not exist", name::to_text(apex))))
}

async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<ZoneJson>, ApiError> {
    let apex = parse_name(&zone)?;
    Ok(Json(st.read(move |s| one(s, &caller, &apex)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateZone {
    name: String,
    /// Admins only: the account to create the zone for.
    account: Option<String>,
    /// NS names; default: the configured nameservers.
    nameservers: Option<Vec<String>>,
    /// A whole zone file instead of the default SOA and NS.
    zonefile: Option<String>,
}

/// The SOA and NS records of a new, empty zone.
pub(crate) fn default_records(apex: &[u8], nameservers: &[Box<[u8]>]) -> Result<Vec<Record>, ApiError> {
    let Some(primary) = nameservers.first() else {
        return Err(ApiError::Unprocessable(
            "no nameservers: give \"nameservers\" or configure dns.nameservers".into(),
        ));
    };
    let zone = name::to_text(apex);
    // The root's text is "." already: no second dot.
    let rname = if zone == "." { "hostmaster.".to_string() } else { format!("hostmaster.{zone}") };
    let mut text = format!("@ 3600 IN SOA {} {rname} 1 3600 900 1209600 300\n", name::to_text(primary));
    for ns in nameservers {
        text.push_str(&format!("@ 3600 IN NS {}\n", name::to_text(ns)));
    }
    zonefile::parse(&text, apex).map_err(|e| ApiError::Unprocessable(e.reason))
}

/// Which account a new zone belongs to and whether it counts as verified:
/// the operator's zones (admin tokens) are, a customer's are not until the
/// parent delegates them. Whether the account may claim the name at all
/// is the store's decision, inside the transaction that creates the zone
/// (sixgate_store's claims).
pub(crate) fn new_zone_owner(
    store: &Store,
    caller: &Caller,
    account: Option<&str>,
) -> Result<(i64, bool), ApiError> {
    Ok(match (caller.is_admin(), account) {
        (true, Some(a)) => (store.account(a)?.id, true),
        (true, None) => (OPERATOR_ACCOUNT, true),
        (false, Some(_)) => return Err(ApiError::Forbidden("only admin tokens may pick the account".into())),
        (false, None) if caller.token.scope == sixgate_store::Scope::Account => (caller.account(), false),
        (false, None) => return Err(ApiError::Forbidden("this token may not create zones".into())),
    })
}

/// The nameservers an account's zones are delegated to: its own names
/// when per-account names are configured, else the shared ones.
pub(crate) fn account_nameservers(
    store: &Store,
    shared: &[Box<[u8]>],
    account_id: i64,
) -> Result<Vec<Box<[u8]>>, ApiError> {
    Ok(store.account_nameservers(account_id)?.unwrap_or_else(|| shared.to_vec()))
}

async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let req: CreateZone = body.json().await?;
    let apex = parse_name(&req.name)?;
    let given = match (req.zonefile, &req.nameservers) {
        (Some(text), _) => {
            let a = apex.clone();
            Some(
                offload(move || {
                    zonefile::parse(&text, &a).map_err(|e| {
                        ApiError::Unprocessable(format!("zone file line {}: {}", e.line, e.reason))
                    })
                })
                .await?,
            )
        }
        (None, Some(ns)) => {
            Some(default_records(&apex, &ns.iter().map(|n| parse_name(n)).collect::<Result<Vec<_>, _>>()?)?)
        }
        (None, None) => None,
    };
    let a = apex.clone();
    let records = move |ns: &[Box<[u8]>]| match given {
        Some(r) => Ok(r),
        None => default_records(&a, ns),
    };
    let zone = create_zone(&st, caller, apex, records, req.account, one).await?;
    Ok((StatusCode::CREATED, Json(zone)))
}

/// Creates a zone for the caller (or, for admins, the named account) and
/// answers with `show` once DNS serves it. `records` makes the zone's
/// records given the nameservers of the account it will belong to.
pub(crate) async fn create_zone<T: Send + 'static>(
    st: &AppState,
    caller: Caller,
    apex: Box<[u8]>,
    records: impl FnOnce(&[Box<[u8]>]) -> Result<Vec<Record>, ApiError> + Send + 'static,
    account: Option<String>,
    show: fn(&Store, &Caller, &[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let shared = st.settings().nameservers.clone();
    st.commit(move |s| {
        let (account, verified) = new_zone_owner(s, &caller, account.as_deref())?;
        let records = records(&account_nameservers(s, &shared, account)?)?;
        let commit = s.by(caller.actor()).create_zone(&apex, records, account, verified)?;
        tracing::info!(zone = %name::to_text(&apex), account, verified, "zone created");
        Ok((commit, show(s, &caller, &apex)?))
    })
    .await
}

/// Deletes a zone the caller fully controls, once DNS stops serving it.
/// A signed zone is refused while validators may hold a DS of the parent
/// for it; `force` (admin tokens only) deletes it even then.
pub(crate) async fn delete_zone(
    st: &AppState,
    caller: Caller,
    apex: Box<[u8]>,
    force: bool,
) -> Result<(), ApiError> {
    if force {
        caller.require_admin()?;
    }
    st.commit(move |s| {
        caller.zone_full(s, &apex)?;
        let mut w = s.by(caller.actor());
        let c = if force { w.delete_zone_forced(&apex)? } else { w.delete_zone(&apex)? };
        tracing::info!(zone = %name::to_text(&apex), "zone deleted");
        Ok((c, ()))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Delete a signed zone even while the parent's DS may name its keys
    /// (admin tokens only).
    #[serde(default)]
    force: bool,
}

async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    delete_zone(&st, caller, parse_name(&zone)?, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn export(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let apex = parse_name(&zone)?;
    let text = st
        .read(move |s| {
            caller.zone_full(s, &apex)?;
            let data = s.source_zone(&apex)?.ok_or_else(|| ApiError::NotFound("zone vanished".into()))?;
            let mut records = data.records;
            sixgate_dns::zone::sort_canonical(&mut records);
            Ok(zonefile::render(&data.apex, &records))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/dns; charset=utf-8")], text))
}

/// What a zone file import answers: the zone, and a warning for each
/// record that is kept but never served (data below a delegation other
/// than glue, as Knot keeps it).
#[derive(Debug, Serialize)]
struct ImportJson {
    #[serde(flatten)]
    zone: ZoneJson,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    /// Each secondary's serial, when the import waited for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    secondaries: Option<Vec<crate::secondaries::SecondaryJson>>,
}

async fn import(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
    wait: crate::secondaries::Wait,
    ZoneText(body): ZoneText,
) -> Result<Json<ImportJson>, ApiError> {
    let apex = parse_name(&zone)?;
    let a = apex.clone();
    let (records, warnings) = offload(move || parse_zone_file(&a, &body)).await?;
    let a = apex.clone();
    let (serial, zone) = st
        .commit(move |s| {
            caller.zone_full(s, &apex)?;
            let commit = s.by(caller.actor()).replace_zone(&apex, records)?;
            Ok((commit, (commit.serial, one(s, &caller, &apex)?)))
        })
        .await?;
    let caught = st.wait_secondaries(wait, &a, serial).await?;
    Ok(Json(ImportJson { zone, warnings, secondaries: caught.0 }))
}

/// Parses and checks an imported zone file: its records, and a warning
/// for each record that is kept but never served.
fn parse_zone_file(apex: &[u8], body: &[u8]) -> Result<(Vec<Record>, Vec<String>), ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("zone file is not UTF-8".into()))?;
    let (mut records, lines) = zonefile::parse_with_lines(text, apex)
        .map_err(|e| ApiError::Unprocessable(format!("line {}: {}", e.line, e.reason)))?;
    if let Err(e) = sixgate_dns::check::check_zone(apex, &mut records) {
        return Err(ApiError::Unprocessable(match e.index.and_then(|i| lines.get(i)) {
            Some(line) => format!("line {line}: {}", e.reason),
            None => e.reason,
        }));
    }
    let warnings = sixgate_dns::check::occluded_by_delegations(apex, &records)
        .iter()
        .map(|o| match lines.get(o.index) {
            Some(line) => format!("line {line}: {o}"),
            None => o.to_string(),
        })
        .collect();
    Ok((records, warnings))
}

/// One change as the audit log shows it.
#[derive(Debug, Serialize)]
struct AuditJson {
    id: i64,
    at: String,
    serial: u32,
    kind: String,
    actor: String,
    /// Records added (`+ RECORD`) and removed (`- RECORD`), in zone-file
    /// form.
    changes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<usize>,
}

/// Entries of the audit log one request returns at most.
const AUDIT_MAX: usize = 1000;

/// The zone's audit log, newest first: who changed what, when. Only for
/// callers that control the whole zone.
async fn audit(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Result<Json<Vec<AuditJson>>, ApiError> {
    let apex = parse_name(&zone)?;
    let limit = q.limit.unwrap_or(100).clamp(1, AUDIT_MAX);
    let entries = st
        .read(move |s| {
            caller.zone_full(s, &apex)?;
            Ok(s.audit(Some(&apex), limit)?)
        })
        .await?;
    Ok(Json(entries.into_iter().map(audit_json).collect()))
}

fn audit_json(e: sixgate_store::AuditEntry) -> AuditJson {
    let changes = e
        .changes
        .iter()
        .map(|c| {
            let (sign, r) = match c {
                sixgate_dns::Change::Add(r) => ('+', r),
                sixgate_dns::Change::Remove(r) => ('-', r),
            };
            format!("{sign} {}", sixgate_dns::zonefile::render_records(std::slice::from_ref(r)).trim_end())
        })
        .collect();
    AuditJson {
        id: e.id,
        at: sixgate_store::rfc3339(e.at),
        serial: e.serial,
        kind: e.kind,
        actor: e.actor,
        changes,
    }
}

/// An ANAME's resolution state.
#[derive(Debug, Serialize)]
struct AnameJson {
    name: String,
    target: String,
    addresses: Vec<String>,
    last_success: Option<String>,
    last_error: Option<String>,
    next_refresh: Option<String>,
}

async fn anames(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<Vec<AnameJson>>, ApiError> {
    let apex = parse_name(&zone)?;
    let list = st
        .read(move |s| {
            caller.zone(s, &apex)?;
            Ok(s.aname_status(Some(&apex))?)
        })
        .await?;
    Ok(Json(
        list.into_iter()
            .map(|(a, s)| AnameJson {
                name: name::to_text(&a.owner),
                target: name::to_text(&a.target),
                addresses: s.addresses,
                last_success: s.last_success.map(sixgate_store::rfc3339),
                last_error: s.last_error,
                next_refresh: s.next_refresh.map(sixgate_store::rfc3339),
            })
            .collect(),
    ))
}
