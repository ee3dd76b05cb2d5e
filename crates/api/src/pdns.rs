//! The subset of PowerDNS Authoritative's HTTP API that ACME clients and
//! DNS tooling use (lego's and cert-manager's `pdns` providers,
//! external-dns, octoDNS), so operators moving from PowerDNS keep their
//! tools. The token goes in `X-API-Key`; the server id is `localhost`.
//!
//! Supported: `GET /api`, `GET /api/v1/servers[/localhost]`, zones
//! list/create/show/delete, rrsets PATCH with REPLACE and DELETE, and
//! `PUT .../notify`. Errors use PowerDNS's `{"error": "..."}` shape.
//! Anything else under `/api/` answers 501 with a pointer to docs/api.md.
//! Zone kinds are reported as `Master`; `disabled` records and comments
//! are refused rather than silently dropped.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sixgate_dns::name;
use sixgate_dns::zone::Record;
use sixgate_store::Store;

use crate::auth::{Access, Caller, PdnsCaller};
use crate::records::{
    MAX_RECORDS, Names, check_ttl, group, parse_name, parse_owner, parse_rrset, parse_type,
};
use crate::zones::{create_zone, default_records, delete_zone, visible};
use crate::{ApiError, AppState, Body, offload};

const SERVER: &str = "localhost";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api", get(api_versions))
        .route("/api/v1", get(api_versions))
        .route("/api/v1/servers", get(servers))
        .route("/api/v1/servers/{server}", get(server))
        .route("/api/v1/servers/{server}/zones", get(zones).post(create))
        .route("/api/v1/servers/{server}/zones/{zone}", get(zone).patch(patch).delete(delete))
        .route("/api/v1/servers/{server}/zones/{zone}/notify", put(notify))
        .route("/api/{*rest}", axum::routing::any(unsupported))
}

/// Errors in PowerDNS's shape.
struct PdnsError(ApiError);

impl From<ApiError> for PdnsError {
    fn from(e: ApiError) -> Self {
        PdnsError(e)
    }
}

impl IntoResponse for PdnsError {
    fn into_response(self) -> Response {
        self.0.into_pdns()
    }
}

type Result<T> = std::result::Result<T, PdnsError>;

fn check_server(server: &str) -> std::result::Result<(), ApiError> {
    if server == SERVER {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("server {server:?} not found; sixgate's server id is \"{SERVER}\"")))
    }
}

/// PowerDNS zone ids are the name with a trailing dot, `/` escaped as `=2F`.
fn zone_id(zone: &str) -> String {
    zone.replace('/', "=2F")
}

fn zone_name(id: &str) -> std::result::Result<Box<[u8]>, ApiError> {
    parse_name(&id.replace("=2F", "/"))
}

fn zone_url(id: &str) -> String {
    format!("/api/v1/servers/{SERVER}/zones/{id}")
}

async fn api_versions() -> Json<Value> {
    Json(json!([{ "url": "/api/v1", "version": 1 }]))
}

fn server_json() -> Value {
    json!({
        "type": "Server",
        "id": SERVER,
        "daemon_type": "authoritative",
        "version": concat!("sixgate ", env!("CARGO_PKG_VERSION")),
        "url": format!("/api/v1/servers/{SERVER}"),
        "config_url": format!("/api/v1/servers/{SERVER}/config{{/config_setting}}"),
        "zones_url": format!("/api/v1/servers/{SERVER}/zones{{/zone}}"),
    })
}

async fn servers(_caller: PdnsCaller) -> Json<Value> {
    Json(json!([server_json()]))
}

async fn server(_caller: PdnsCaller, Path(server): Path<String>) -> Result<Json<Value>> {
    check_server(&server)?;
    Ok(Json(server_json()))
}

fn zone_json(name: &str, serial: u32, rrsets: Option<Vec<Value>>) -> Value {
    let id = zone_id(name);
    let mut z = json!({
        "id": id, "name": name, "type": "Zone", "url": zone_url(&id), "kind": "Master",
        "serial": serial, "notified_serial": serial, "edited_serial": serial,
        "masters": [], "dnssec": false, "nsec3param": "", "nsec3narrow": false, "presigned": false,
        "soa_edit": "", "soa_edit_api": "", "api_rectify": false, "account": "",
    });
    if let (Some(rrsets), Some(obj)) = (rrsets, z.as_object_mut()) {
        obj.insert("rrsets".into(), Value::Array(rrsets));
    }
    z
}

async fn zones(
    State(st): State<AppState>,
    PdnsCaller(caller): PdnsCaller,
    Path(server): Path<String>,
) -> Result<Json<Vec<Value>>> {
    check_server(&server)?;
    let list = st.read(move |s| visible(s, &caller)).await?;
    Ok(Json(list.iter().map(|z| zone_json(&z.name, z.serial, None)).collect()))
}

/// The zone with its RRsets; an acme-only or ptr token sees only the
/// RRsets it may change.
fn full_zone(store: &Store, caller: &Caller, apex: &[u8]) -> std::result::Result<Value, ApiError> {
    let (_, access) = caller.zone(store, apex)?;
    let serial = store.serial(apex)?;
    let records: Vec<Record> = store
        .records(apex)?
        .into_iter()
        .filter(|r| access == Access::Full || caller.may_write(access, &r.owner, r.rtype).is_ok())
        .collect();
    let rrsets = group(records)
        .into_iter()
        .map(|set| {
            // PowerDNS calls ANAME "ALIAS"; tools written for it expect that.
            let rtype = if set.rtype == "ANAME" { "ALIAS".to_string() } else { set.rtype };
            json!({
                "name": set.name, "type": rtype, "ttl": set.ttl, "comments": [],
                "records": set.records.iter().map(|c| json!({"content": c, "disabled": false})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let apex_case =
        store.zones()?.into_iter().find(|z| name::to_lowercase(&z.apex) == name::to_lowercase(apex));
    let shown = apex_case.map_or_else(|| name::to_text(apex), |z| name::to_text(&z.apex));
    Ok(zone_json(&shown, serial, Some(rrsets)))
}

async fn zone(
    State(st): State<AppState>,
    PdnsCaller(caller): PdnsCaller,
    Path((server, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    check_server(&server)?;
    let apex = zone_name(&id)?;
    Ok(Json(st.read(move |s| full_zone(s, &caller, &apex)).await?))
}

#[derive(Debug, Deserialize)]
struct PdnsRecord {
    content: String,
    #[serde(default)]
    disabled: bool,
}

#[derive(Debug, Deserialize)]
struct PdnsRrSet {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default)]
    changetype: Option<String>,
    #[serde(default)]
    records: Vec<PdnsRecord>,
    #[serde(default)]
    comments: Vec<Value>,
}

/// Turns PowerDNS RRsets into (owner, type, records); an empty record
/// list means delete.
fn parse_sets(
    apex: &[u8],
    sets: &[PdnsRrSet],
    patch: bool,
) -> std::result::Result<Vec<sixgate_store::RrSetReplacement>, ApiError> {
    if sets.len() > MAX_RECORDS {
        return Err(ApiError::Unprocessable(format!("more than {MAX_RECORDS} RRsets")));
    }
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let owner = parse_owner(apex, &set.name)?;
        let rtype = parse_type(&set.rtype)?;
        if !set.comments.is_empty() {
            return Err(ApiError::Unprocessable("comments are not supported by sixgate".into()));
        }
        if set.records.iter().any(|r| r.disabled) {
            return Err(ApiError::Unprocessable("disabled records are not supported by sixgate".into()));
        }
        let change = if patch {
            set.changetype.as_deref().map(str::to_ascii_uppercase)
        } else {
            Some("REPLACE".into())
        };
        let records = match change.as_deref() {
            Some("REPLACE") => {
                let ttl = check_ttl(set.ttl.ok_or_else(|| {
                    ApiError::Unprocessable(format!("RRset {} {} has no ttl", set.name, set.rtype))
                })?)?;
                let texts: Vec<String> = set.records.iter().map(|r| r.content.clone()).collect();
                parse_rrset(apex, &owner, rtype, ttl, &texts, Names::Absolute)?
            }
            Some("DELETE") => Vec::new(),
            _ => {
                return Err(ApiError::Unprocessable(format!(
                    "changetype must be REPLACE or DELETE for {} {}",
                    set.name, set.rtype
                )));
            }
        };
        out.push((owner, rtype, records));
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
struct Patch {
    rrsets: Vec<PdnsRrSet>,
}

async fn patch(
    State(st): State<AppState>,
    PdnsCaller(caller): PdnsCaller,
    Path((server, id)): Path<(String, String)>,
    wait: crate::secondaries::Wait,
    body: Body,
) -> Result<Response> {
    check_server(&server)?;
    let apex = zone_name(&id)?;
    let req: Patch = body.json().await?;
    let a = apex.clone();
    let sets = offload(move || parse_sets(&a, &req.rrsets, true)).await?;
    let (_, caught) = crate::rrsets::write_rrsets(&st, caller, apex, sets, wait).await?;
    Ok(crate::rrsets::no_content(&caught))
}

#[derive(Debug, Deserialize)]
struct CreateZone {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    nameservers: Vec<String>,
    #[serde(default)]
    rrsets: Vec<PdnsRrSet>,
    #[serde(default)]
    masters: Vec<String>,
}

async fn create(
    State(st): State<AppState>,
    PdnsCaller(caller): PdnsCaller,
    Path(server): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>)> {
    check_server(&server)?;
    let req: CreateZone = body.json().await?;
    if matches!(req.kind.as_deref(), Some(k) if k.eq_ignore_ascii_case("slave") || k.eq_ignore_ascii_case("secondary"))
        || !req.masters.is_empty()
    {
        return Err(ApiError::Unprocessable(
            "sixgate does not act as a secondary; create Native or Master zones".into(),
        )
        .into());
    }
    let apex = zone_name(&req.name)?;
    let (a, rrsets) = (apex.clone(), req.rrsets);
    let sets = offload(move || parse_sets(&a, &rrsets, false)).await?;
    // No nameservers given: the account's own (or the shared ones), which
    // are known only once the zone's account is.
    let given_ns =
        req.nameservers.iter().map(|n| parse_name(n)).collect::<std::result::Result<Vec<_>, _>>()?;
    let a = apex.clone();
    let records = move |account_ns: &[Box<[u8]>]| {
        let nameservers = if given_ns.is_empty() { account_ns.to_vec() } else { given_ns };
        let mut records: Vec<Record> = Vec::new();
        let given = |t: u16| {
            sets.iter().any(|(o, rt, _)| *rt == t && name::to_lowercase(o) == name::to_lowercase(&a))
        };
        let (need_soa, need_ns) =
            (!given(sixgate_dns::rtype::code::SOA), !given(sixgate_dns::rtype::code::NS));
        if need_soa || need_ns {
            let defaults = if nameservers.is_empty() && !need_ns {
                // NS given in rrsets: a SOA still needs a primary name.
                let ns = sets
                    .iter()
                    .find(|(_, t, _)| *t == sixgate_dns::rtype::code::NS)
                    .and_then(|(_, _, r)| r.first());
                let primary =
                    ns.and_then(|r| r.rdata.get(..name::wire_len(&r.rdata)?)).map(Box::<[u8]>::from);
                default_records(&a, &primary.into_iter().collect::<Vec<_>>())?
            } else {
                default_records(&a, &nameservers)?
            };
            records.extend(defaults.into_iter().filter(|r| {
                (r.rtype == sixgate_dns::rtype::code::SOA && need_soa)
                    || (r.rtype == sixgate_dns::rtype::code::NS && need_ns)
            }));
        }
        records.extend(sets.into_iter().flat_map(|(_, _, r)| r));
        Ok(records)
    };
    let zone = create_zone(&st, caller, apex, records, None, full_zone).await?;
    Ok((StatusCode::CREATED, Json(zone)))
}

async fn delete(
    State(st): State<AppState>,
    PdnsCaller(caller): PdnsCaller,
    Path((server, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_server(&server)?;
    delete_zone(&st, caller, zone_name(&id)?, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// sixgate sends NOTIFY to secondaries on every change by itself; the
/// call is accepted so tools that make it keep working.
async fn notify(
    State(st): State<AppState>,
    PdnsCaller(caller): PdnsCaller,
    Path((server, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    check_server(&server)?;
    let apex = zone_name(&id)?;
    st.read(move |s| caller.zone(s, &apex).map(|_| ())).await?;
    Ok(Json(json!({ "result": "Notification queued" })))
}

async fn unsupported(uri: axum::http::Uri) -> Response {
    let msg = format!(
        "{} is not part of sixgate's PowerDNS-compatible API; see docs/api.md for what is supported",
        uri.path()
    );
    (StatusCode::NOT_IMPLEMENTED, Json(json!({ "error": msg }))).into_response()
}
