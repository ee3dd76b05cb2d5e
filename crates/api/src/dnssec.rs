//! `/v1/zones/{zone}/dnssec`: the one switch (enable, disable), manual
//! rollovers, and the status a customer and the panel need: keys and
//! their states, the next event, the DS for the registry, what the parent
//! publishes, the verdict, and the chain of trust as data (parent DS →
//! DNSKEY → RRSIG over each RRset type, with validity windows).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixgate_dns::rtype::code;
use sixgate_dns::{name, zonefile};
use sixgate_dnssec::Algorithm;
use sixgate_dnssec::ds::Ds;
use sixgate_dnssec::key;
use sixgate_dnssec::policy::{Denial, KeyLayout, Policy};
use sixgate_dnssec::rollover;
use sixgate_store::{Commit, DnssecInfo, Roll, Store, denial_name, rfc3339};

use crate::auth::Caller;
use crate::records::parse_name;
use crate::{ApiError, AppState, Body};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/zones/{zone}/dnssec", get(status).post(enable).delete(disable))
        .route("/v1/zones/{zone}/dnssec/rollover", post(roll))
}

/// The body of an enable: the policy's main choices, and optionally a
/// whole policy (its fields as in `Policy`, durations in seconds).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enable {
    /// `ecdsap256sha256` (default) or `ed25519`.
    algorithm: Option<String>,
    /// NSEC3 instead of NSEC.
    #[serde(default)]
    nsec3: bool,
    /// `csk` (default) or `ksk_zsk`.
    layout: Option<String>,
    /// Every other policy setting.
    policy: Option<serde_json::Value>,
}

fn policy_of(req: Enable) -> Result<Policy, ApiError> {
    let mut policy: Policy = match req.policy {
        Some(v) => serde_json::from_value(v).map_err(|e| ApiError::Unprocessable(format!("policy: {e}")))?,
        None => Policy::default(),
    };
    if let Some(a) = req.algorithm {
        policy.algorithm = a.parse::<Algorithm>().map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    }
    // `nsec3: true` picks NSEC3 when the policy does not; it never
    // overrides what the policy says about NSEC3 (an opt-out asked for
    // there is refused by `validate`, not dropped).
    if req.nsec3 && policy.denial == Denial::Nsec {
        policy.denial = Denial::Nsec3 { opt_out: false };
    }
    match req.layout.as_deref() {
        None => {}
        Some("csk") => policy.layout = KeyLayout::Csk,
        Some("ksk_zsk") => policy.layout = KeyLayout::KskZsk,
        Some(other) => {
            return Err(ApiError::Unprocessable(format!("layout must be csk or ksk_zsk, not {other:?}")));
        }
    }
    policy.validate().map_err(|e| ApiError::Unprocessable(format!("policy: {e}")))?;
    Ok(policy)
}

async fn enable(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
    body: Body,
) -> Result<Json<StatusJson>, ApiError> {
    let apex = parse_name(&zone)?;
    // No body: the default policy.
    let req = if body.0.is_empty() { Enable::default() } else { body.json().await? };
    let policy = policy_of(req)?;
    let a = apex.clone();
    st.commit(move |s| {
        caller.zone_full(s, &a)?;
        let commit = s.by(caller.actor()).dnssec_enable(&a, &policy)?;
        Ok((commit, ()))
    })
    .await?;
    Ok(Json(st.read(move |s| status_of(s, &apex)).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisableQuery {
    /// Unsign at once instead of waiting for the parent's DS to go;
    /// refused while validators may hold a DS of the parent for the zone.
    #[serde(default)]
    now: bool,
    /// With `now`: unsign even then (admin tokens only; a customer can
    /// never make its zone bogus this way).
    #[serde(default)]
    force: bool,
}

async fn disable(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
    Query(q): Query<DisableQuery>,
) -> Result<Json<StatusJson>, ApiError> {
    let apex = parse_name(&zone)?;
    if q.force {
        if !q.now {
            return Err(ApiError::Unprocessable("force goes with now=true".into()));
        }
        caller.require_admin()?;
    }
    let a = apex.clone();
    st.commit(move |s| {
        caller.zone_full(s, &a)?;
        let commit = if q.now {
            s.by(caller.actor()).dnssec_unsign(&a, q.force)?
        } else {
            let m = s.by(caller.actor()).dnssec_start_unsigning(&a)?;
            m.commit.unwrap_or(Commit { journal_id: 0, serial: 0 })
        };
        Ok((commit, ()))
    })
    .await?;
    Ok(Json(st.read(move |s| status_of(s, &apex)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollRequest {
    /// `ksk` (the KSK or CSK), `zsk`, or `algorithm`.
    kind: String,
    /// The new algorithm, for `algorithm`.
    algorithm: Option<String>,
}

async fn roll(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
    body: Body,
) -> Result<Json<StatusJson>, ApiError> {
    let apex = parse_name(&zone)?;
    let req: RollRequest = body.json().await?;
    let roll = match (req.kind.as_str(), req.algorithm) {
        ("ksk", None) => Roll::Ksk,
        ("zsk", None) => Roll::Zsk,
        ("algorithm", Some(a)) => {
            Roll::Algorithm(a.parse().map_err(|e: sixgate_dnssec::algorithm::UnknownAlgorithm| {
                ApiError::Unprocessable(e.to_string())
            })?)
        }
        ("algorithm", None) => {
            return Err(ApiError::Unprocessable("an algorithm rollover needs \"algorithm\"".into()));
        }
        (k, _) => {
            return Err(ApiError::Unprocessable(format!("kind must be ksk, zsk or algorithm, not {k:?}")));
        }
    };
    let a = apex.clone();
    st.commit(move |s| {
        caller.zone_full(s, &a)?;
        let m = s.by(caller.actor()).dnssec_roll(&a, roll)?;
        Ok((m.commit.unwrap_or(Commit { journal_id: 0, serial: 0 }), ()))
    })
    .await?;
    Ok(Json(st.read(move |s| status_of(s, &apex)).await?))
}

async fn status(
    State(st): State<AppState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<StatusJson>, ApiError> {
    let apex = parse_name(&zone)?;
    Ok(Json(
        st.read(move |s| {
            caller.zone(s, &apex)?;
            status_of(s, &apex)
        })
        .await?,
    ))
}

/// A zone's DNSSEC status.
#[derive(Debug, Serialize)]
pub(crate) struct StatusJson {
    zone: String,
    signed: bool,
    /// secure, waiting for DS, DS mismatch, going insecure, insecure.
    verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<Policy>,
    keys: Vec<KeyJson>,
    /// The DS records to give the registry, presentation format.
    ds: Vec<String>,
    /// For each of `ds`, the time (RFC 3339) from which the registry may
    /// publish it: before then a DS would make cached answers bogus.
    ds_publish_after: Vec<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<ParentJson>,
    waiting: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<ChainJson>,
}

#[derive(Debug, Serialize)]
struct KeyJson {
    role: String,
    key_tag: u16,
    algorithm: String,
    flags: u16,
    state: String,
    ds: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retired: Option<String>,
}

#[derive(Debug, Serialize)]
struct ParentJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    checked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The DS records the parent publishes, presentation rdata.
    ds: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
}

/// The chain of trust as data.
#[derive(Debug, Serialize)]
struct ChainJson {
    /// Parent DS → the key it names (or none).
    parent_ds: Vec<DsLink>,
    /// The DNSKEY RRset and which DS names each key.
    dnskey: Vec<DnskeyLink>,
    /// Signatures by type and key, with validity windows.
    signatures: Vec<SignatureLink>,
}

#[derive(Debug, Serialize)]
struct DsLink {
    ds: String,
    key_tag: u16,
    /// True if the DS matches a published key (digest included).
    matches_key: bool,
}

#[derive(Debug, Serialize)]
struct DnskeyLink {
    key_tag: u16,
    algorithm: u8,
    flags: u16,
    secure_entry_point: bool,
    named_by_parent_ds: bool,
}

#[derive(Debug, Serialize)]
struct SignatureLink {
    #[serde(rename = "type")]
    rtype: String,
    key_tag: u16,
    algorithm: u8,
    rrsets: u64,
    earliest_inception: String,
    earliest_expiration: String,
    latest_inception: String,
    latest_expiration: String,
}

fn time(t: Option<u64>) -> Option<String> {
    t.map(|t| rfc3339(t as i64))
}

fn ds_text(rdata: &[u8]) -> String {
    zonefile::rdata_text(code::DS, rdata)
}

/// The status of one zone, signed or not.
fn status_of(s: &Store, apex: &[u8]) -> Result<StatusJson, ApiError> {
    let Some(info) = s.dnssec_info(apex)? else {
        return Ok(StatusJson {
            zone: name::to_text(apex),
            signed: false,
            verdict: "insecure".into(),
            algorithm: None,
            denial: None,
            policy: None,
            keys: Vec::new(),
            ds: Vec::new(),
            ds_publish_after: Vec::new(),
            next_event: None,
            parent: None,
            waiting: Vec::new(),
            alert: None,
            chain: None,
        });
    };
    let (ds, ds_publish_after): (Vec<String>, Vec<Option<String>>) = s
        .dnssec_ds_publish_after(apex)?
        .iter()
        .map(|(r, after)| {
            let line = format!("{} {} IN DS {}", name::to_text(&r.owner), r.ttl, ds_text(&r.rdata));
            (line, after.map(|t| rfc3339(t.min(i64::MAX as u64) as i64)))
        })
        .unzip();
    let chain = chain_of(s, apex, &info)?;
    let keys = info
        .keys
        .iter()
        .map(|k| {
            let r = &k.record;
            KeyJson {
                role: format!("{:?}", r.role).to_ascii_lowercase(),
                key_tag: r.key_tag,
                algorithm: Algorithm::from_code(r.algorithm)
                    .map_or_else(|| r.algorithm.to_string(), |a| a.to_string()),
                flags: k.flags,
                state: format!("{:?}", r.state).to_ascii_lowercase(),
                ds: format!("{:?}", r.ds).to_ascii_lowercase(),
                published: time(r.times.published),
                active: time(r.times.active),
                retired: time(r.times.retired),
            }
        })
        .collect();
    let parent = Some(ParentJson {
        checked_at: time(info.state.parent_checked_at),
        error: info.state.parent_error.clone(),
        ds: info.state.parent_ds.iter().map(|d| ds_text(d)).collect(),
        ttl: info.state.parent.as_ref().map(|p| p.ttl),
    });
    Ok(StatusJson {
        zone: name::to_text(&info.apex),
        signed: true,
        verdict: info.verdict().as_str().into(),
        algorithm: Some(info.policy.algorithm.to_string()),
        denial: Some(denial_name(&info.policy.denial).into()),
        policy: Some(info.policy.clone()),
        keys,
        ds,
        ds_publish_after,
        next_event: time(info.state.next_event),
        parent,
        waiting: info.state.waiting.iter().map(|w| format!("{w:?}")).collect(),
        alert: info.state.alert.clone(),
        chain: Some(chain),
    })
}

fn chain_of(s: &Store, apex: &[u8], info: &DnssecInfo) -> Result<ChainJson, ApiError> {
    let view = rollover::zone_view(&info.state.keyring);
    let published: Vec<&sixgate_store::KeyInfo> =
        info.keys.iter().filter(|k| view.dnskey.iter().any(|v| v.id == k.record.id)).collect();
    let parent: Vec<Ds> = info.state.parent_ds.iter().filter_map(|d| Ds::decode(d)).collect();
    let parent_ds = info
        .state
        .parent_ds
        .iter()
        .filter_map(|rd| Some((rd, Ds::decode(rd)?)))
        .map(|(rd, d)| DsLink {
            ds: ds_text(rd),
            key_tag: d.key_tag,
            matches_key: published.iter().any(|k| d.matches(&info.apex, &k.dnskey)),
        })
        .collect();
    let dnskey = published
        .iter()
        .map(|k| DnskeyLink {
            key_tag: k.record.key_tag,
            algorithm: k.record.algorithm,
            flags: k.flags,
            secure_entry_point: k.flags & key::flags::SEP != 0,
            named_by_parent_ds: parent.iter().any(|d| d.matches(&info.apex, &k.dnskey)),
        })
        .collect();
    let signatures = s
        .dnssec_signatures(apex)?
        .into_iter()
        .map(|g| SignatureLink {
            rtype: zonefile::type_text(g.type_covered),
            key_tag: g.key_tag,
            algorithm: g.algorithm,
            rrsets: g.count,
            earliest_inception: rfc3339(i64::from(g.earliest.0)),
            earliest_expiration: rfc3339(i64::from(g.earliest.1)),
            latest_inception: rfc3339(i64::from(g.latest.0)),
            latest_expiration: rfc3339(i64::from(g.latest.1)),
        })
        .collect();
    Ok(ChainJson { parent_ds, dnskey, signatures })
}
