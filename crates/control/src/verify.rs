//! Checking that customers' zones are delegated to sixgate.
//!
//! A zone a customer creates is unverified, and not served, until its
//! parent delegates it to the nameservers of the zone's own account
//! (`ns1.LABEL.DOMAIN`, ..., when `[tenancy] nameserver_domain` is set;
//! else to one of the shared `dns.nameservers`). With per-account names,
//! a delegation left behind for one account (a "sitting duck") never
//! verifies a zone that another account creates under the same name.
//! Every interval this task asks the configured resolvers for each
//! customer zone's NS RRset (a recursive resolver answers with it, the
//! parent's own server with a referral) and records the verdict in the
//! store, which journals a change so the publisher starts or stops
//! serving the zone. A resolver that does not answer changes nothing:
//! only a definite answer verifies a zone or takes the verification away.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sixgate_dns::delegation::{DelegationError, ns_query, parse_ns_response};
use sixgate_dns::name;
use sixgate_store::Store;
use tokio::sync::watch;

use crate::exchange::{NoAnswer, udp_ask};

/// How long one resolver gets to answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// What the checker needs.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    /// Resolvers to ask, in order.
    pub resolvers: Vec<SocketAddr>,
    /// sixgate's shared nameserver names (wire form, any case): what
    /// customer zones are delegated to without per-account names.
    pub nameservers: Vec<Box<[u8]>>,
    /// Per-account nameserver names are configured: a customer zone's
    /// parent must delegate to its own account's names (the store lists
    /// them with each zone), and the shared names do not count.
    pub account_nameservers: bool,
    /// Time between rounds.
    pub interval: Duration,
}

/// The nameservers from `/etc/resolv.conf`, port 53.
pub fn system_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

async fn ask(resolver: SocketAddr, apex: &[u8]) -> Result<Vec<Box<[u8]>>, String> {
    let answer = udp_ask(
        resolver,
        QUERY_TIMEOUT,
        |id| ns_query(id, apex),
        // Stray datagrams do not end the wait.
        |msg, id| match parse_ns_response(msg, id, apex) {
            Err(DelegationError::Mismatch) => None,
            r => Some(r),
        },
    )
    .await;
    match answer {
        Ok(r) => r.map_err(|e| format!("{resolver}: {e}")),
        Err(NoAnswer::Timeout) => Err(format!("{resolver} did not answer")),
        Err(NoAnswer::Send(e) | NoAnswer::Receive(e)) => Err(e.to_string()),
    }
}

/// The verdict for one zone: `Some((verified, note))`, or `None` with a
/// note when no resolver gave a definite answer. `expected` are the names
/// the parent must delegate to (one of them suffices: a zone may also be
/// served by another provider).
async fn check(
    settings: &VerifySettings,
    apex: &[u8],
    expected: &[Box<[u8]>],
) -> (Option<bool>, Option<String>) {
    let ours: Vec<Box<[u8]>> = expected.iter().map(|n| name::to_lowercase(n)).collect();
    let mut errors = Vec::new();
    for r in &settings.resolvers {
        match ask(*r, apex).await {
            Ok(ns) if ns.is_empty() => {
                return (
                    Some(false),
                    Some(format!("{} is not delegated (no NS records)", name::to_text(apex))),
                );
            }
            Ok(ns) if ns.iter().any(|n| ours.contains(n)) => return (Some(true), None),
            Ok(ns) => {
                let list: Vec<String> = ns.iter().map(|n| name::to_text(n)).collect();
                let mine: Vec<String> = ours.iter().map(|n| name::to_text(n)).collect();
                return (
                    Some(false),
                    Some(format!("delegated to {}, not to {}", list.join(", "), mine.join(", "))),
                );
            }
            Err(e) => errors.push(e),
        }
    }
    (None, Some(format!("could not check: {}", errors.join("; "))))
}

/// Checks every customer zone once.
pub async fn round(dir: PathBuf, settings: &VerifySettings) -> Result<(), String> {
    let d = dir.clone();
    let zones = tokio::task::spawn_blocking(move || Store::open(&d).and_then(|s| s.customer_zones()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut changed = false;
    for sixgate_store::CustomerZone { apex, verified: was, nameservers } in zones {
        let expected = match nameservers {
            Some(own) if settings.account_nameservers => own,
            _ => settings.nameservers.clone(),
        };
        let (verdict, note) = check(settings, &apex, &expected).await;
        changed |= verdict.is_some_and(|v| v != was);
        let verified = verdict.unwrap_or(was);
        if verdict.is_some_and(|v| v != was) {
            tracing::info!(zone = %name::to_text(&apex), verified, note = note.as_deref().unwrap_or(""), "delegation check changed");
        }
        let d = dir.clone();
        tokio::task::spawn_blocking(move || {
            Store::open(&d).and_then(|mut s| s.set_verified(&apex, verified, note.as_deref()))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    }
    if changed {
        // The store journaled the change; wake the publisher now rather
        // than at its next poll.
        crate::publish::poke(&dir);
    }
    Ok(())
}

/// Runs rounds until `shutdown`.
pub async fn run(dir: PathBuf, settings: VerifySettings, mut shutdown: watch::Receiver<bool>) {
    if (settings.nameservers.is_empty() && !settings.account_nameservers) || settings.resolvers.is_empty() {
        tracing::info!(
            "delegation checks off: configure tenancy.nameserver_domain or dns.nameservers (and \
             verify.resolvers) to verify customer zones"
        );
        return;
    }
    loop {
        if let Err(e) = round(dir.clone(), &settings).await {
            tracing::warn!(error = %e, "delegation check round failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = async { let _ = shutdown.wait_for(|&s| s).await; } => return,
        }
    }
}
