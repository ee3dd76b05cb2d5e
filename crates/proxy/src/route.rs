//! From a hostname to backend addresses, from the snapshot DNS serves.
//!
//! Only hostnames enabled for proxying, in verified zones, are routed.
//! The backends are the hostname's AAAA records, following CNAMEs inside
//! the same zone, read from the catalog snapshot DNS answers from, so a DNS
//! change moves traffic at once. The zone must be the one the hostname
//! was enabled in: a zone made below it later (or a parent served in its
//! place) is another's data. Every address must pass the
//! [`BackendPolicy`] with the backend prefixes of the account that owns
//! that zone, so one account's records never aim the proxy at another's
//! servers; addresses that do not pass are dropped, and a hostname left
//! with none is refused. A client-supplied IP literal is never a route.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

use sixgate_dns::rtype::code;
use sixgate_dns::{Catalog, name};

use crate::policy::{BackendPolicy, Prefix, Refusal};

/// CNAMEs followed inside a zone.
const MAX_CNAMES: usize = 8;

/// How one enabled hostname is proxied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// PROXY protocol: 0 off, 1 or 2.
    pub proxy_protocol: u8,
    /// Backend port for plain HTTP.
    pub http_port: u16,
    /// Backend port for TLS.
    pub tls_port: u16,
    /// The hostname's zone is verified.
    pub verified: bool,
    /// The zone it was enabled in (wire form, lowercased): its backends
    /// are read from this zone only.
    pub zone: Arc<[u8]>,
    /// The backend prefixes of the account that owns that zone.
    pub prefixes: Arc<[Prefix]>,
}

/// Enabled hostnames (wire form, lowercased) and their settings.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// The hostnames.
    pub hosts: HashMap<Box<[u8]>, HostConfig>,
}

/// Where to send a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Backend addresses in the order to try.
    pub backends: Vec<Ipv6Addr>,
    /// The hostname's settings.
    pub config: HostConfig,
}

/// Why a hostname is not routed. The proxy closes the connection and
/// counts the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// Not a host name (e.g. an IP literal).
    #[error("{0:?} is not a host name")]
    BadName(String),
    /// Not enabled for proxying.
    #[error("{0} is not enabled for the proxy")]
    NotEnabled(String),
    /// Its zone is not verified.
    #[error("{0} is in a zone that is not verified")]
    Unverified(String),
    /// DNS answers for it from another zone than the one it was enabled
    /// in.
    #[error("{0} is now answered from another zone than the one it was enabled in")]
    OtherZone(String),
    /// No AAAA records.
    #[error("{0} has no AAAA records")]
    NoBackend(String),
    /// Every AAAA record was refused by the policy.
    #[error("{0}: {1}")]
    Refused(String, Refusal),
}

impl Routes {
    /// Routes `host` (text from SNI or Host, without port).
    pub fn route(&self, catalog: &Catalog, host: &str, policy: &BackendPolicy) -> Result<Route, RouteError> {
        let bad = || RouteError::BadName(host.to_string());
        if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            return Err(bad());
        }
        let abs = if host.ends_with('.') { host.to_string() } else { format!("{host}.") };
        let key = name::from_text(&abs, None).map(|n| name::to_lowercase(&n)).map_err(|_| bad())?;
        let config = self.hosts.get(&key).ok_or_else(|| RouteError::NotEnabled(host.to_string()))?;
        if !config.verified {
            return Err(RouteError::Unverified(host.to_string()));
        }
        let zone = catalog.find(&key).ok_or_else(|| RouteError::NoBackend(host.to_string()))?;
        // Wire names compare case-insensitively as bytes: length octets
        // are below 64, never ASCII letters.
        if !zone.apex().eq_ignore_ascii_case(&config.zone) {
            return Err(RouteError::OtherZone(host.to_string()));
        }
        let mut current = key;
        let mut addrs = Vec::new();
        for _ in 0..=MAX_CNAMES {
            let Some(node) = zone.node(&current) else { break };
            if let Some(set) = node.rrset(code::AAAA) {
                addrs.extend(set.rdatas().filter_map(|r| <[u8; 16]>::try_from(r).ok()).map(Ipv6Addr::from));
                break;
            }
            // RFC 1034 §3.6.2: follow a CNAME, inside this zone only.
            match node.rrset(code::CNAME).and_then(|s| s.rdatas().next()).map(name::to_lowercase) {
                Some(next) if name::is_at_or_below(&next, zone.apex()) => current = next,
                _ => break,
            }
        }
        if addrs.is_empty() {
            return Err(RouteError::NoBackend(host.to_string()));
        }
        let mut last = None;
        let backends: Vec<Ipv6Addr> = addrs
            .into_iter()
            .filter(|a| match policy.check(&config.prefixes, *a) {
                Ok(()) => true,
                Err(e) => {
                    last = Some(e);
                    false
                }
            })
            .collect();
        match (backends.is_empty(), last) {
            (true, Some(e)) => Err(RouteError::Refused(host.to_string(), e)),
            _ => Ok(Route { backends, config: config.clone() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use sixgate_dns::{Zone, zonefile};

    use super::*;

    fn zone(apex: &str, text: &str) -> Arc<Zone> {
        let apex = name::from_text(apex, None).unwrap();
        let text = format!("@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns\n{text}");
        Arc::new(Zone::build(&apex, zonefile::parse(&text, &apex).unwrap(), 1).unwrap())
    }

    fn prefixes(list: &[&str]) -> Arc<[Prefix]> {
        list.iter().map(|p| Prefix::parse(p).unwrap()).collect()
    }

    fn cfg(zone: &str, verified: bool, allowed: &[&str]) -> HostConfig {
        HostConfig {
            proxy_protocol: 1,
            http_port: 80,
            tls_port: 443,
            verified,
            zone: name::from_text(zone, None).unwrap().into(),
            prefixes: prefixes(allowed),
        }
    }

    fn host(r: &mut Routes, h: &str, config: HostConfig) {
        r.hosts.insert(name::from_text(h, None).unwrap(), config);
    }

    fn setup() -> (Catalog, Routes, BackendPolicy) {
        let mut c = Catalog::new();
        c.insert(zone(
            "example.test.",
            "www 60 AAAA 2a01:4f8::80\nwww 60 AAAA fe80::1\nalias 60 CNAME www\nout 60 CNAME www.other.test.\n\
             local 60 AAAA ::1\nv4 60 A 192.0.2.1\n",
        ));
        let mut r = Routes::default();
        for (h, v) in [
            ("www", true),
            ("alias", true),
            ("out", true),
            ("local", true),
            ("v4", true),
            ("unverified", false),
        ] {
            host(&mut r, &format!("{h}.example.test."), cfg("example.test.", v, &["2a01:4f8::/32"]));
        }
        (c, r, BackendPolicy::new(None))
    }

    #[test]
    fn routes_follow_aaaa_and_in_zone_cnames_and_drop_refused_addresses() {
        let (c, r, p) = setup();
        let route = r.route(&c, "WWW.example.test", &p).unwrap();
        assert_eq!(route.backends, vec!["2a01:4f8::80".parse::<Ipv6Addr>().unwrap()], "fe80::1 dropped");
        assert_eq!(r.route(&c, "alias.example.test.", &p).unwrap().backends.len(), 1);
    }

    #[test]
    fn everything_else_is_refused() {
        let (c, mut r, p) = setup();
        assert!(matches!(r.route(&c, "nope.example.test", &p), Err(RouteError::NotEnabled(_))));
        assert!(matches!(r.route(&c, "unverified.example.test", &p), Err(RouteError::Unverified(_))));
        assert!(matches!(r.route(&c, "out.example.test", &p), Err(RouteError::NoBackend(_))));
        assert!(matches!(r.route(&c, "v4.example.test", &p), Err(RouteError::NoBackend(_))));
        assert!(matches!(
            r.route(&c, "local.example.test", &p),
            Err(RouteError::Refused(_, Refusal::OutsidePrefixes(_)))
        ));
        for lit in ["192.0.2.1", "2a01:4f8::80", "[2a01:4f8::80]", ""] {
            assert!(matches!(r.route(&c, lit, &p), Err(RouteError::BadName(_))), "{lit}");
        }
        // ::1 only with the explicit exception.
        host(&mut r, "local.example.test.", cfg("example.test.", true, &["::1/128"]));
        assert!(r.route(&c, "local.example.test", &p).is_ok());
    }

    /// Regression: backend prefixes were one list for every account, so a
    /// hostname of one account could name another account's server as its
    /// backend and reach it from the proxy's trusted source address.
    #[test]
    fn a_hostname_may_use_only_its_own_accounts_prefixes() {
        let mut c = Catalog::new();
        c.insert(zone("alice.test.", "www 60 AAAA 2a01:4f8:b0b::80\n"));
        c.insert(zone("bob.test.", "www 60 AAAA 2a01:4f8:b0b::80\n"));
        let mut r = Routes::default();
        host(&mut r, "www.alice.test.", cfg("alice.test.", true, &["2a01:4f8:a11c::/48"]));
        host(&mut r, "www.bob.test.", cfg("bob.test.", true, &["2a01:4f8:b0b::/48"]));
        let p = BackendPolicy::new(None);
        assert!(matches!(
            r.route(&c, "www.alice.test", &p),
            Err(RouteError::Refused(_, Refusal::OutsidePrefixes(_)))
        ));
        assert_eq!(r.route(&c, "www.bob.test", &p).unwrap().backends.len(), 1);
        // An account without prefixes has nothing proxied.
        host(&mut r, "www.alice.test.", cfg("alice.test.", true, &[]));
        assert!(matches!(
            r.route(&c, "www.alice.test", &p),
            Err(RouteError::Refused(_, Refusal::NothingAllowed))
        ));
    }

    /// The AAAA records come from the zone the name was enabled in, not
    /// from a zone made below it later (which another account may own),
    /// nor from a parent zone DNS serves while the name's own zone is not
    /// served.
    #[test]
    fn backends_come_only_from_the_zone_the_name_was_enabled_in() {
        let mut c = Catalog::new();
        c.insert(zone("example.test.", "www.shop 60 AAAA 2a01:4f8::80\n"));
        let mut r = Routes::default();
        host(&mut r, "www.shop.example.test.", cfg("shop.example.test.", true, &["2a01:4f8::/32"]));
        let p = BackendPolicy::new(None);
        assert!(matches!(r.route(&c, "www.shop.example.test", &p), Err(RouteError::OtherZone(_))));
        c.insert(zone("SHOP.example.test.", "www 60 AAAA 2a01:4f8::81\n"));
        assert_eq!(
            r.route(&c, "www.shop.example.test", &p).unwrap().backends,
            vec!["2a01:4f8::81".parse::<Ipv6Addr>().unwrap()]
        );
        host(&mut r, "www.shop.example.test.", cfg("example.test.", true, &["2a01:4f8::/32"]));
        assert!(matches!(r.route(&c, "www.shop.example.test", &p), Err(RouteError::OtherZone(_))));
    }
}
