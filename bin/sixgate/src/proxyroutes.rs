//! The proxy's route table, built from the store and kept in step with it,
//! and sixgate's own addresses, which the proxy never connects to.
//!
//! Each enabled hostname is routed with the backend prefixes of the
//! account that owns its zone: a customer account's from the store
//! (`sixgate account prefixes set`), the operator account's from the
//! configuration (`[proxy] allow_backend`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sixgate_dns::name;
use sixgate_proxy::policy::{BackendPolicy, Prefix};
use sixgate_proxy::route::{HostConfig, Routes};
use sixgate_proxy::tls::Shared;
use sixgate_store::{OPERATOR_ACCOUNT, Store};

/// The proxy's route table as the store has it now; `operator` are the
/// operator account's backend prefixes.
pub(crate) fn build(dir: &Path, operator: &[Prefix]) -> anyhow::Result<Routes> {
    let store = Store::open(dir)?;
    let verified: HashMap<Box<[u8]>, bool> =
        store.zones()?.into_iter().map(|z| (name::to_lowercase(&z.apex), z.verified)).collect();
    // One list per account, shared by its hostnames.
    let mut by_account: HashMap<i64, Arc<[Prefix]>> = store
        .all_backend_prefixes()?
        .into_iter()
        .map(|(id, list)| (id, list.iter().map(|p| Prefix { addr: p.addr, len: p.len }).collect()))
        .collect();
    by_account.insert(OPERATOR_ACCOUNT, operator.into());
    let none: Arc<[Prefix]> = Arc::from([]);
    let mut routes = Routes::default();
    for h in store.proxy_hosts()? {
        let prefixes = h.account_id.and_then(|id| by_account.get(&id)).unwrap_or(&none).clone();
        let config = HostConfig {
            proxy_protocol: h.proxy_protocol.version(),
            http_port: h.http_port,
            tls_port: h.tls_port,
            verified: verified.get(&h.zone).copied().unwrap_or(false),
            zone: Arc::from(h.zone),
            prefixes,
        };
        routes.hosts.insert(h.name, config);
    }
    Ok(routes)
}

/// Every socket sixgate listens on (bound, ports chosen): with the host's
/// interface addresses, what the proxy never connects to.
pub(crate) struct OwnListeners {
    pub(crate) sockets: Vec<std::net::SocketAddr>,
}

impl OwnListeners {
    /// Reads the host's addresses again and puts them in the policy. If
    /// they cannot be read, the last ones stay.
    pub(crate) fn refresh(&self, policy: &BackendPolicy) {
        match sixgate_proxy::own::interface_addresses() {
            Ok(interfaces) => {
                policy.set_own(sixgate_proxy::own::OwnAddresses::new(&self.sockets, &interfaces))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the host's addresses; the proxy keeps the last ones")
            }
        }
    }
}

/// How often the host's addresses are read again when nothing else
/// rebuilds the routes: an address that appears (SLAAC, a failover
/// address) is one of sixgate's own within this long.
const OWN_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps the route table built at start in step with the store: rebuilt
/// whenever the store's routes generation moves (`routes`, from the
/// publisher), that is after every write the table is built from: a
/// hostname enabled, disabled or given new options, a zone made, deleted,
/// verified or unverified, an account's backend prefixes changed. DNS
/// record changes need no rebuild: routes read the AAAA records from the
/// served snapshot. The host's own addresses are read again with each
/// rebuild and every [`OWN_REFRESH`]. `reload` (SIGHUP) rebuilds both at
/// once.
pub(crate) async fn follow(
    dir: PathBuf,
    operator: Vec<Prefix>,
    shared: Arc<Shared>,
    own: OwnListeners,
    mut routes: tokio::sync::watch::Receiver<i64>,
    reload: Arc<tokio::sync::Notify>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(OWN_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = routes.changed() => if r.is_err() { return },
            _ = reload.notified() => {}
            _ = tick.tick() => {
                own.refresh(&shared.policy);
                continue;
            }
            _ = async { let _ = shutdown.wait_for(|&s| s).await; } => return,
        }
        own.refresh(&shared.policy);
        let (d, op) = (dir.clone(), operator.clone());
        match tokio::task::spawn_blocking(move || build(&d, &op)).await {
            Ok(Ok(r)) => {
                tracing::debug!(hostnames = r.hosts.len(), "proxy routes rebuilt");
                shared.routes.store(Arc::new(r))
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "proxy routes not refreshed"),
            Err(e) => tracing::warn!(error = %e, "proxy routes task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use sixgate_store::{Actor, BackendPrefix, ProxyProtocol};

    use super::*;

    fn zone(s: &mut Store, apex: &str, account: i64) {
        let apex = name::from_text(apex, None).unwrap();
        let recs = sixgate_dns::zonefile::parse(
            "@ 60 SOA ns.x. h 1 2 3 4 5\n@ 60 NS ns.x.\nwww 60 AAAA ::1\n",
            &apex,
        )
        .unwrap();
        s.by(Actor::Task("test")).create_zone(&apex, recs, account, true).unwrap();
        let www = name::from_text(&format!("www.{}", name::to_text(&apex)), None).unwrap();
        s.by(Actor::Task("test")).proxy_enable(&www, ProxyProtocol::Off, 80, 443).unwrap();
    }

    /// Regression: the route table carried no account, so every hostname
    /// was checked against one global list of prefixes.
    #[test]
    fn each_hostname_carries_the_prefixes_of_its_zones_account() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let bob = s.create_account("bob").unwrap().id;
        s.set_backend_prefixes(bob, &[BackendPrefix::parse("2001:db8:b0b::/48").unwrap()]).unwrap();
        zone(&mut s, "alice.test.", alice);
        zone(&mut s, "bob.test.", bob);
        zone(&mut s, "op.test.", OPERATOR_ACCOUNT);
        let operator = [Prefix::parse("::1/128").unwrap()];
        let routes = build(dir.path(), &operator).unwrap();
        let of = |h: &str| {
            let key = name::from_text(h, None).unwrap();
            let c = &routes.hosts[&key];
            (c.prefixes.iter().map(|p| format!("{}/{}", p.addr, p.len)).collect::<Vec<_>>(), c.zone.clone())
        };
        assert_eq!(of("www.alice.test.").0, Vec::<String>::new());
        assert_eq!(of("www.bob.test.").0, ["2001:db8:b0b::/48"]);
        assert_eq!(of("www.op.test.").0, ["::1/128"]);
        assert_eq!(&*of("www.bob.test.").1, &*name::from_text("bob.test.", None).unwrap());
    }
}
