//! Which backend addresses the proxy may connect to: deny by default.
//!
//! A backend must lie inside one of the operator's backend prefixes (the
//! customer networks). On top of that, some ranges are never connected to
//! unless the operator names a prefix that covers them explicitly (a lab,
//! or tests with the backend on ::1): loopback, unspecified, link-local,
//! unique-local, multicast, every form that embeds an IPv4 address
//! (mapped, compatible, translated, 6to4, Teredo), the rest of the IANA
//! special-purpose registry (documentation, benchmarking, ORCHID, SRv6
//! SIDs, ...), the NAT64 prefix, and sixgate's own listen addresses.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::own::OwnAddresses;

/// An IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The network address.
    pub addr: Ipv6Addr,
    /// The prefix length, 0..=128.
    pub len: u8,
}

/// Why a prefix could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// Not `ADDR/LEN`.
    #[error("{0:?} is not an IPv6 prefix (ADDR/LEN)")]
    Syntax(String),
    /// Bits set after the length.
    #[error("{0} has bits set after its length")]
    HostBits(String),
}

impl Prefix {
    /// Parses `2001:db8::/32`.
    pub fn parse(text: &str) -> Result<Prefix, PrefixError> {
        let bad = || PrefixError::Syntax(text.to_string());
        let (a, l) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().map_err(|_| bad())?;
        if len > 128 {
            return Err(bad());
        }
        let p = Prefix { addr, len };
        if p.network() != u128::from(addr) {
            return Err(PrefixError::HostBits(text.to_string()));
        }
        Ok(p)
    }

    fn mask(&self) -> u128 {
        if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) }
    }

    fn network(&self) -> u128 {
        u128::from(self.addr) & self.mask()
    }

    /// Does the prefix contain `a`?
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask() == self.network()
    }

    /// Does this prefix cover all of `other`?
    pub fn covers(&self, other: &Prefix) -> bool {
        self.len <= other.len && self.contains(other.addr)
    }
}

/// A prefix from its eight 16-bit groups, at compile time.
const fn pfx(g: [u16; 8], len: u8) -> Prefix {
    Prefix { addr: Ipv6Addr::new(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]), len }
}

/// Ranges never connected to without an explicit exception: the IANA IPv6
/// Special-Purpose Address Registry (RFC 6890; as of its 2024-10 update)
/// and the older special forms that embed an IPv4 address. Built at
/// compile time, so a check parses nothing. The first match names the
/// refusal, so a specific range comes before the block around it.
const DENIED: &[(Prefix, &str)] = &[
    (pfx([0, 0, 0, 0, 0, 0, 0, 0], 128), "the unspecified address"),
    (pfx([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (pfx([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), "IPv4-mapped"),
    // RFC 2765 §2.1 (SIIT): ::ffff:0:a.b.c.d, which is neither the mapped
    // form above nor inside ::/96.
    (pfx([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), "IPv4-translated"),
    (pfx([0, 0, 0, 0, 0, 0, 0, 0], 96), "IPv4-compatible"),
    (pfx([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), "the well-known NAT64 prefix"),
    (pfx([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "the local-use NAT64 prefix"),
    (pfx([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (pfx([0x100, 0, 0, 1, 0, 0, 0, 0], 64), "the dummy prefix"),
    // 2001::/23, IETF protocol assignments (RFC 2928), and what it holds.
    (pfx([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo, which embeds IPv4"),
    (pfx([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), "benchmarking"),
    (pfx([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), "ORCHID"),
    (pfx([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), "ORCHIDv2"),
    (pfx([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), "an IETF protocol assignment"),
    (pfx([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (pfx([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4, which embeds IPv4"),
    (pfx([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48), "the AS112 direct delegation service"),
    (pfx([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (pfx([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), "segment routing (SRv6) SIDs"),
    (pfx([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique-local"),
    (pfx([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (pfx([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
    (pfx([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// The backend rule, with the prefixes of the hostname's account
/// ([`crate::route::HostConfig::prefixes`]) given at each check.
#[derive(Debug, Clone, Default)]
pub struct BackendPolicy {
    /// The NAT64 prefix in use, if any.
    pub nat64: Option<Prefix>,
    /// sixgate's own listening sockets and the host's addresses, known
    /// once the listeners are bound and refreshed as interfaces change
    /// ([`BackendPolicy::set_own`]); shared by every clone.
    own: Arc<ArcSwap<OwnAddresses>>,
}

/// Why a backend address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The hostname's account has no backend prefixes: nothing of it is
    /// proxied.
    #[error("the hostname's account has no backend prefixes")]
    NothingAllowed,
    /// Outside every backend prefix.
    #[error("{0} is outside the backend prefixes")]
    OutsidePrefixes(Ipv6Addr),
    /// In a range that is never used without an explicit exception.
    #[error("{0} is {1}, and no backend prefix names it explicitly")]
    Denied(Ipv6Addr, &'static str),
    /// One of sixgate's own listening sockets: never, whatever the
    /// prefixes say.
    #[error("{0} is one of sixgate's own listening sockets")]
    OwnListener(SocketAddrV6),
}

impl BackendPolicy {
    /// A policy with this NAT64 prefix, and no own addresses known yet.
    pub fn new(nat64: Option<Prefix>) -> BackendPolicy {
        BackendPolicy { nat64, own: Arc::default() }
    }

    /// Puts `own` in place for every clone of this policy.
    pub fn set_own(&self, own: OwnAddresses) {
        self.own.store(Arc::new(own));
    }

    /// May the proxy connect to the socket `a` (an address that passed
    /// [`BackendPolicy::check`], with the hostname's backend port)? Never
    /// to one sixgate listens on: that is a loop.
    pub fn check_socket(&self, a: SocketAddrV6) -> Result<(), Refusal> {
        if self.own.load().is_listener(a) {
            return Err(Refusal::OwnListener(a));
        }
        Ok(())
    }

    /// May the proxy connect to `a` for a hostname whose account has the
    /// backend prefixes `allowed`?
    pub fn check(&self, allowed: &[Prefix], a: Ipv6Addr) -> Result<(), Refusal> {
        if allowed.is_empty() {
            return Err(Refusal::NothingAllowed);
        }
        let Some(home) = allowed.iter().filter(|p| p.contains(a)).max_by_key(|p| p.len) else {
            return Err(Refusal::OutsidePrefixes(a));
        };
        // A denied range is allowed only when the operator's prefix lies
        // inside it, i.e. the operator named that range explicitly (e.g.
        // ::1/128 for tests), not merely a wider prefix around it.
        let explicit = |d: &Prefix| d.covers(home);
        if self.own.load().is_host_address(a) && !explicit(&Prefix { addr: a, len: 128 }) {
            return Err(Refusal::Denied(a, "one of this host's own addresses"));
        }
        if let Some(n) = &self.nat64
            && n.contains(a)
            && !explicit(n)
        {
            return Err(Refusal::Denied(a, "inside the NAT64 prefix"));
        }
        if let Some((_, what)) = DENIED.iter().find(|(d, _)| d.contains(a) && !explicit(d)) {
            return Err(Refusal::Denied(a, what));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy and an account's prefixes.
    struct Policy(BackendPolicy, Vec<Prefix>);

    impl Policy {
        fn check(&self, a: Ipv6Addr) -> Result<(), Refusal> {
            self.0.check(&self.1, a)
        }
        fn check_socket(&self, a: SocketAddrV6) -> Result<(), Refusal> {
            self.0.check_socket(a)
        }
    }

    fn policy(allowed: &[&str]) -> Policy {
        let p = BackendPolicy::new(Some(Prefix::parse("64:ff9b::/96").unwrap()));
        p.set_own(OwnAddresses::new(&["[::]:443".parse().unwrap()], &["2a01:4f8::53".parse().unwrap()]));
        Policy(p, allowed.iter().map(|p| Prefix::parse(p).unwrap()).collect())
    }

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn deny_by_default_and_inside_prefixes_only() {
        assert_eq!(BackendPolicy::default().check(&[], ip("2a01:4f8::1")), Err(Refusal::NothingAllowed));
        let p = policy(&["2a01:4f8::/32"]);
        assert_eq!(p.check(ip("2a01:4f8::80")), Ok(()));
        assert!(matches!(p.check(ip("2a02::1")), Err(Refusal::OutsidePrefixes(_))));
        assert!(matches!(p.check(ip("2a01:4f8::53")), Err(Refusal::Denied(_, _))), "own address");
    }

    /// The host's own address is a backend only where a prefix names it
    /// alone (a lab's ::1/128); even then, never on a port sixgate
    /// listens on.
    #[test]
    fn own_addresses_need_an_explicit_prefix_and_own_listeners_are_never_backends() {
        let p = policy(&["2a01:4f8::/32", "2a01:4f8::53/128"]);
        assert_eq!(p.check(ip("2a01:4f8::53")), Ok(()));
        let own = |port| SocketAddrV6::new(ip("2a01:4f8::53"), port, 0, 0);
        assert_eq!(p.check_socket(own(8080)), Ok(()));
        assert_eq!(p.check_socket(own(443)), Err(Refusal::OwnListener(own(443))));
        assert_eq!(
            p.0.clone().check_socket(own(443)),
            Err(Refusal::OwnListener(own(443))),
            "clones share it"
        );
    }

    #[test]
    fn special_ranges_need_an_explicit_prefix() {
        // A wide allowed prefix does not open the special ranges inside it.
        let p = policy(&["::/0"]);
        for a in [
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:192.0.2.1",
            "64:ff9b::c000:201",
            "2001:db8::1",
        ] {
            assert!(matches!(p.check(ip(a)), Err(Refusal::Denied(_, _))), "{a}");
        }
        // Naming the range itself (tests on ::1) is the exception.
        let p = policy(&["::1/128", "2001:db8:1::/48"]);
        assert_eq!(p.check(ip("::1")), Ok(()));
        assert_eq!(p.check(ip("2001:db8:1::5")), Ok(()));
        assert!(p.check(ip("fe80::1")).is_err());
    }

    /// Regression: 6to4, Teredo, IPv4-translated, benchmarking, ORCHID and
    /// the rest of the IANA special-purpose registry were missing from the
    /// denied ranges, so a wide prefix (`::/0`, `2000::/3`) let a backend
    /// name an address that embeds IPv4 or is never a host.
    #[test]
    fn every_special_purpose_range_is_denied_under_a_wide_prefix() {
        for wide in ["::/0", "2000::/3", "::/1"] {
            let p = policy(&[wide]);
            for a in [
                "2002:c000:201::1",
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "::ffff:0:c000:201",
                "2001:2::1",
                "2001:10::1",
                "2001:20::1",
                "2001:3::1",
                "2001:4:112::1",
                "2001:30::1",
                "2001:1::1",
                "2620:4f:8000::1",
                "5f00::1",
                "100:0:0:1::1",
            ] {
                let a = ip(a);
                if Prefix::parse(wide).unwrap().contains(a) {
                    assert!(matches!(p.check(a), Err(Refusal::Denied(_, _))), "{wide}: {a}");
                }
            }
        }
    }

    #[test]
    fn the_denied_ranges_are_networks_written_as_the_registry_writes_them() {
        for (d, what) in DENIED {
            let text = format!("{}/{}", d.addr, d.len);
            assert_eq!(Prefix::parse(&text), Ok(*d), "{what}: {text}");
        }
        let names: Vec<String> = DENIED.iter().map(|(d, _)| format!("{}/{}", d.addr, d.len)).collect();
        for want in ["2002::/16", "2001::/32", "::ffff:0:0:0/96", "2001:2::/48", "2001:20::/28", "5f00::/16"]
        {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
    }

    #[test]
    fn prefixes_parse_strictly() {
        assert!(Prefix::parse("2001:db8::/32").is_ok());
        assert!(matches!(Prefix::parse("2001:db8::1/32"), Err(PrefixError::HostBits(_))));
        assert!(Prefix::parse("2001:db8::").is_err());
        assert!(Prefix::parse("192.0.2.0/24").is_err());
        assert!(Prefix::parse("::/129").is_err());
    }
}
