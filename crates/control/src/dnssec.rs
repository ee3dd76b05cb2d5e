//! Keeping signed zones signed: the maintenance task.
//!
//! Every tick this task looks at each signed zone that is due (a key
//! event, a parent check, or the periodic check for signatures to
//! refresh) and calls [`sixgate_store::Writer::dnssec_maintain`], which moves keys along
//! the rollover planner's timeline and re-signs what needs it. When the
//! planner waits for the parent, the parent's servers are asked for the
//! zone's DS RRset first ([`observe_parent`]).
//!
//! The parent's servers are found through NS records: the nearest
//! ancestor with an NS RRset (asked of the configured resolvers), then
//! the addresses of those names. `[dnssec] parents` overrides this per
//! zone with explicit ADDR:PORT lists, for tests and for parents that are
//! not reachable that way. Only what every answering server serves
//! counts as published, so a DS is not taken as seen while some of the
//! parent's servers lack it; a DS counts as gone only when every server
//! answered and none serves it ([`merge_answers`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sixgate_dns::delegation::{DelegationError, ns_query, parse_ns_response};
use sixgate_dns::dsquery::{DsAnswer, DsError, ds_query, parse_ds_response};
use sixgate_dns::lookup::{self, Outcome};
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dnssec::ds::Ds;
use sixgate_dnssec::rollover::ParentDs;
use std::sync::{Arc, Mutex};

use sixgate_store::{Maintained, Store, StoreError};
use tokio::sync::watch;

use crate::exchange::{NoAnswer, udp_ask};
use crate::publish::poke;

/// How long one server gets to answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// How often due zones are looked for.
const TICK: Duration = Duration::from_secs(1);

/// What the task needs.
#[derive(Debug, Clone)]
pub struct DnssecSettings {
    /// Explicit parent servers per zone (lowercased apex); `.` applies to
    /// every zone without its own entry.
    pub parents: Vec<(Box<[u8]>, Vec<SocketAddr>)>,
    /// Resolvers that find the parent's servers through NS records.
    pub resolvers: Vec<SocketAddr>,
    /// Every signed zone is looked at this often even when nothing is due,
    /// so signatures are refreshed before they expire.
    pub check_interval: Duration,
}

fn no_answer(server: SocketAddr, e: NoAnswer) -> String {
    match e {
        NoAnswer::Timeout => format!("{server} did not answer"),
        NoAnswer::Send(e) | NoAnswer::Receive(e) => format!("{server}: {e}"),
    }
}

/// The nearest zone cut above `apex`: the first ancestor with an NS
/// RRset, and those NS names.
async fn parent_ns(resolvers: &[SocketAddr], apex: &[u8]) -> Result<Vec<Box<[u8]>>, String> {
    let mut candidate = name::parent(apex);
    let mut errors = Vec::new();
    while let Some(p) = candidate.filter(|p| p.len() > 1) {
        for r in resolvers {
            let got = udp_ask(
                *r,
                QUERY_TIMEOUT,
                |id| ns_query(id, p),
                |msg, id| match parse_ns_response(msg, id, p) {
                    Err(DelegationError::Mismatch) => None,
                    other => Some(other),
                },
            )
            .await;
            match got {
                Ok(Ok(ns)) if !ns.is_empty() => return Ok(ns),
                Ok(Ok(_)) => break,
                Ok(Err(e)) => errors.push(format!("{r}: {e}")),
                Err(e) => errors.push(no_answer(*r, e)),
            }
        }
        candidate = name::parent(p);
    }
    Err(if errors.is_empty() { "no parent zone found".into() } else { errors.join("; ") })
}

/// Addresses of `host` from the resolvers, port 53.
async fn addresses(resolvers: &[SocketAddr], host: &[u8]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for qtype in [code::AAAA, code::A] {
        for r in resolvers {
            let got = udp_ask(
                *r,
                QUERY_TIMEOUT,
                |id| lookup::query(id, host, qtype),
                |msg, id| match lookup::parse_response(msg, id, host, qtype) {
                    Err(lookup::LookupError::Mismatch) => None,
                    other => Some(other),
                },
            )
            .await;
            if let Ok(Ok(Outcome::Addresses { addresses, .. })) = got {
                for a in addresses {
                    let ip = match a.len() {
                        4 => <[u8; 4]>::try_from(&a[..]).ok().map(std::net::IpAddr::from),
                        _ => <[u8; 16]>::try_from(&a[..]).ok().map(std::net::IpAddr::from),
                    };
                    out.extend(ip.map(|ip| SocketAddr::new(ip, 53)));
                }
                break;
            }
        }
    }
    out
}

/// The servers to ask about `apex`'s DS.
async fn parent_servers(settings: &DnssecSettings, apex: &[u8]) -> Result<Vec<SocketAddr>, String> {
    let key = name::to_lowercase(apex);
    let exact = settings.parents.iter().find(|(z, _)| *z == key);
    let any = settings.parents.iter().find(|(z, _)| z[..] == [0]);
    if let Some((_, servers)) = exact.or(any) {
        return Ok(servers.clone());
    }
    if settings.resolvers.is_empty() {
        return Err(
            "no resolvers to find the parent's servers (set dnssec.parents or verify.resolvers)".into()
        );
    }
    let mut servers = Vec::new();
    for ns in parent_ns(&settings.resolvers, apex).await? {
        servers.extend(addresses(&settings.resolvers, &ns).await);
    }
    if servers.is_empty() {
        return Err("the parent's name servers have no addresses".into());
    }
    Ok(servers)
}

/// Asks the parent's servers for `apex`'s DS RRset at `now`: what they
/// serve, merged by [`merge_answers`], and the DS rdata every answering
/// server serves.
pub async fn observe_parent(
    settings: &DnssecSettings,
    apex: &[u8],
    now: u64,
) -> Result<(ParentDs, Vec<Vec<u8>>), String> {
    let servers = parent_servers(settings, apex).await?;
    let mut answers = Vec::new();
    let mut errors = Vec::new();
    for s in &servers {
        let got = udp_ask(
            *s,
            QUERY_TIMEOUT,
            |id| ds_query(id, apex),
            |msg, id| match parse_ds_response(msg, id, apex) {
                Err(DsError::Mismatch) => None,
                other => Some(other),
            },
        )
        .await;
        match got {
            Ok(Ok(a)) => answers.push(a),
            Ok(Err(e)) => errors.push(format!("{s}: {e}")),
            Err(e) => errors.push(no_answer(*s, e)),
        }
    }
    if !errors.is_empty() {
        tracing::debug!(zone = %name::to_text(apex), errors = %errors.join("; "), "some parent servers did not answer");
    }
    merge_answers(&answers, errors.is_empty(), now)
        .ok_or_else(|| format!("no parent server answered: {}", errors.join("; ")))
}

/// Merges the answers of the parent's servers (`complete` when every
/// server answered) into one observation at `now`, or `None` without any
/// answer.
///
/// The two directions of a DS change are merged differently. The DS rdata
/// returned (and later matched against the keys, digest and all) is what
/// *every* answering server serves: a new DS is not taken as published
/// while some server lacks it. The DS list of the observation is what *any*
/// server serves: a DS is not taken as gone while one lagging server still
/// hands it to resolvers. The TTL is the largest DS TTL served, or when no
/// server serves a DS, the largest negative TTL.
pub fn merge_answers(answers: &[DsAnswer], complete: bool, now: u64) -> Option<(ParentDs, Vec<Vec<u8>>)> {
    let mut every: Option<BTreeSet<&[u8]>> = None;
    let mut any: BTreeSet<&[u8]> = BTreeSet::new();
    let (mut ds_ttl, mut negative_ttl) = (0u32, 0u32);
    for a in answers {
        let set: BTreeSet<&[u8]> = a.rdatas.iter().map(|rd| &rd[..]).collect();
        if set.is_empty() {
            negative_ttl = negative_ttl.max(a.ttl);
        } else {
            ds_ttl = ds_ttl.max(a.ttl);
        }
        any.extend(set.iter().copied());
        every = Some(match every {
            None => set,
            Some(prev) => prev.intersection(&set).copied().collect(),
        });
    }
    let every = every?;
    let ttl = if any.is_empty() { negative_ttl } else { ds_ttl };
    let mut ds: Vec<(u16, u8)> =
        any.iter().filter_map(|rd| Ds::decode(rd)).map(|d| (d.key_tag, d.algorithm)).collect();
    ds.dedup();
    let observed = ParentDs { observed_at: now, ttl, ds, keys: Vec::new(), complete };
    Some((observed, every.into_iter().map(<[u8]>::to_vec).collect()))
}

/// The store, shared between the blocking calls of this task.
pub type SharedStore = Arc<Mutex<Store>>;

/// Runs `f` on the store on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// What one maintenance step of a zone did.
#[derive(Debug)]
pub struct Step {
    /// What the store did.
    pub maintained: Maintained,
    /// Why asking the parent failed, if it was asked and did.
    pub parent_error: Option<String>,
}

/// One maintenance step of `apex` at the store's time: asks the parent's
/// servers for the DS RRset if the keys wait for it (recording a failure
/// in the store), then moves the keys and refreshes signatures. The
/// server's task and `sixgate dnssec maintain` both take this step.
pub async fn maintain_zone(
    store: &SharedStore,
    settings: &DnssecSettings,
    apex: &[u8],
) -> Result<Step, String> {
    let a: Box<[u8]> = apex.into();
    let (info, now) = blocking(store, move |s| Ok((s.dnssec_info(&a)?, s.now().max(0) as u64))).await?;
    let Some(info) = info else {
        return Err(format!("{} is not signed", name::to_text(apex)));
    };
    let mut observation = None;
    let mut parent_error = None;
    if info.state.parent_due(info.policy.ds_check_interval).is_some_and(|t| t <= now) {
        match observe_parent(settings, apex, now).await {
            Ok(o) => observation = Some(o),
            Err(e) => {
                let (a, err) = (Box::<[u8]>::from(apex), e.clone());
                blocking(store, move |s| s.dnssec_parent_error(&a, &err)).await?;
                parent_error = Some(e);
            }
        }
    }
    let a: Box<[u8]> = apex.into();
    let maintained =
        blocking(store, move |s| s.by(sixgate_store::Actor::Task("dnssec")).dnssec_maintain(&a, observation))
            .await?;
    Ok(Step { maintained, parent_error })
}

/// One look at every signed zone that is due; `full` looks at all of them.
async fn round(
    dir: &std::path::Path,
    store: &SharedStore,
    settings: &DnssecSettings,
    full: bool,
) -> Result<(), String> {
    let (zones, now) = blocking(store, |s| Ok((s.dnssec_zones()?, s.now().max(0) as u64))).await?;
    for (apex, due) in zones {
        if !full && due.is_none_or(|t| t > now) {
            continue;
        }
        match maintain_zone(store, settings, &apex).await {
            Ok(step) => {
                if let Some(e) = step.parent_error {
                    tracing::warn!(zone = %name::to_text(&apex), error = %e, "could not ask the parent for DS");
                }
                if let Some(c) = step.maintained.commit {
                    tracing::info!(zone = %name::to_text(&apex), serial = c.serial, "DNSSEC maintenance changed the zone");
                    poke(dir);
                }
            }
            Err(e) => {
                tracing::error!(zone = %name::to_text(&apex), error = %e, "DNSSEC maintenance failed");
                let (a, alert) = (apex.clone(), format!("maintenance failed: {e}"));
                let _ = blocking(store, move |s| s.dnssec_alert(&a, Some(&alert))).await;
            }
        }
    }
    Ok(())
}

/// Runs until `shutdown`. The store is opened once and kept.
pub async fn run(dir: PathBuf, settings: DnssecSettings, mut shutdown: watch::Receiver<bool>) {
    let mut last_full = tokio::time::Instant::now();
    let mut first = true;
    let mut store: Option<SharedStore> = None;
    loop {
        if store.is_none() {
            let d = dir.clone();
            match tokio::task::spawn_blocking(move || Store::open(&d)).await {
                Ok(Ok(s)) => store = Some(Arc::new(Mutex::new(s))),
                Ok(Err(e)) => tracing::warn!(error = %e, "DNSSEC maintenance could not open the store"),
                Err(e) => tracing::warn!(error = %e, "DNSSEC maintenance could not open the store"),
            }
        }
        if let Some(s) = &store {
            let full = first || last_full.elapsed() >= settings.check_interval;
            if full {
                last_full = tokio::time::Instant::now();
                first = false;
            }
            if let Err(e) = round(&dir, s, &settings, full).await {
                tracing::warn!(error = %e, "DNSSEC maintenance round failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(ttl: u32, rdatas: &[&[u8]]) -> DsAnswer {
        DsAnswer { ttl, rdatas: rdatas.iter().map(|r| Box::<[u8]>::from(*r)).collect() }
    }

    const OLD: &[u8] = &[0x04, 0xd2, 13, 2, 0xaa];
    const NEW: &[u8] = &[0x00, 0x63, 13, 2, 0xbb];

    /// Regression: the parent's answers were intersected, so one server
    /// that had already dropped the DS (or one that alone answered) made
    /// the DS "gone" while the others still served it.
    #[test]
    fn no_ds_only_when_every_parent_server_lacks_it() {
        let (p, every) = merge_answers(&[answer(86_400, &[OLD]), answer(900, &[])], true, 7).unwrap();
        assert_eq!(p.ds, vec![(1234, 13)], "a ds that one server serves is not gone");
        assert!(!p.serves_no_ds());
        assert!(every.is_empty(), "a ds that one server lacks is not published");
        assert_eq!(p.ttl, 86_400, "the ds ttl, not the negative ttl of the other answer");
        let (p, _) = merge_answers(&[answer(900, &[]), answer(600, &[])], true, 7).unwrap();
        assert!(p.serves_no_ds());
        assert_eq!(p.ttl, 900);
        // A server that did not answer may still serve it.
        let (p, _) = merge_answers(&[answer(900, &[])], false, 7).unwrap();
        assert!(p.ds.is_empty() && !p.serves_no_ds());
        assert!(merge_answers(&[], false, 7).is_none());
    }

    #[test]
    fn published_is_what_every_server_serves() {
        let (p, every) = merge_answers(&[answer(3600, &[OLD, NEW]), answer(3600, &[NEW])], true, 7).unwrap();
        assert_eq!(every, vec![NEW.to_vec()]);
        assert_eq!(p.ds, vec![(99, 13), (1234, 13)]);
        assert_eq!((p.observed_at, p.complete, p.keys.is_empty()), (7, true, true));
    }
}
