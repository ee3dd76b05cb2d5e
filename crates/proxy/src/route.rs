//! From a hostname to backend addresses, from the snapshot DNS serves.
//!
//! Only hostnames enabled for proxying, in verified zones, are routed.
//! The backends are the hostname's AAAA records, following CNAMEs inside
//! the same zone, read from the catalog snapshot DNS answers from, so a DNS
//! change moves traffic at once. Every address must pass the
//! [`BackendPolicy`]; those that do not are dropped, and a hostname left
//! with none is refused. A client-supplied IP literal is never a route.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use sixgate_dns::rtype::code;
use sixgate_dns::{Catalog, name};

use crate::policy::{BackendPolicy, Refusal};

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
            .filter(|a| match policy.check(*a) {
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
    use std::sync::Arc;

    use sixgate_dns::{Zone, zonefile};

    use super::*;
    use crate::policy::Prefix;

    fn setup() -> (Catalog, Routes, BackendPolicy) {
        let apex = name::from_text("example.test.", None).unwrap();
        let text = "@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns\nwww 60 AAAA 2a01:4f8::80\nwww 60 AAAA fe80::1\n\
                    alias 60 CNAME www\nout 60 CNAME www.other.test.\nlocal 60 AAAA ::1\nv4 60 A 192.0.2.1\n";
        let mut c = Catalog::new();
        c.insert(Arc::new(Zone::build(&apex, zonefile::parse(text, &apex).unwrap(), 1).unwrap()));
        let cfg = |verified| HostConfig { proxy_protocol: 1, http_port: 80, tls_port: 443, verified };
        let mut r = Routes::default();
        for (h, v) in [
            ("www", true),
            ("alias", true),
            ("out", true),
            ("local", true),
            ("v4", true),
            ("unverified", false),
        ] {
            r.hosts.insert(name::from_text(&format!("{h}.example.test."), None).unwrap(), cfg(v));
        }
        let p = BackendPolicy::new(vec![Prefix::parse("2a01:4f8::/32").unwrap()], None);
        (c, r, p)
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
        let (c, r, p) = setup();
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
        let lab = BackendPolicy::new(vec![Prefix::parse("::1/128").unwrap()], None);
        assert!(r.route(&c, "local.example.test", &lab).is_ok());
    }
}
