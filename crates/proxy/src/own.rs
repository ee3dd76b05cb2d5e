//! sixgate's own addresses, which are never a backend.
//!
//! A backend at one of sixgate's own listening sockets (the proxy's, DNS
//! or the API) is the proxy connecting to itself: a proxy listener routes
//! the new connection again, each hop opens another, and the loop ends
//! only when descriptors run out. A listener on a wildcard address
//! (`[::]:443`, `0.0.0.0:80`) answers on every address of the host, so it
//! stands for each interface address with its port; an IPv4 one also
//! answers on all of 127.0.0.0/8. The host's interface addresses are
//! refused on other ports too, unless a backend prefix names one
//! explicitly (a lab's `::1/128`): a service on the proxy's host is not a
//! customer's backend. IPv4 addresses appear in their IPv4-mapped form,
//! which is how a backend AAAA reaches them.
//!
//! [`OwnAddresses::new`] is pure; [`interface_addresses`] reads the host's
//! addresses (getifaddrs); `serve` reads them at start and again every
//! few seconds, so a new address is covered soon after it appears.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// sixgate's listening sockets and the host's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAddresses {
    /// The host's interface addresses (IPv4 ones mapped).
    addresses: HashSet<Ipv6Addr>,
    /// Every address and port sixgate listens on, wildcards resolved.
    sockets: HashSet<(Ipv6Addr, u16)>,
    /// Ports of IPv4 (or dual-stack) wildcard listeners, which every
    /// 127.0.0.0/8 address reaches, not only the ones an interface shows.
    loopback4_ports: HashSet<u16>,
}

/// The form an address is compared in: IPv6, IPv4 mapped.
fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

impl OwnAddresses {
    /// From the bound addresses of every listener (after binding, so a
    /// port 0 is the port the system chose) and the host's interface
    /// addresses.
    pub fn new(listeners: &[SocketAddr], interfaces: &[IpAddr]) -> OwnAddresses {
        let mut own = OwnAddresses {
            addresses: interfaces.iter().map(|a| v6(*a)).collect(),
            ..OwnAddresses::default()
        };
        for l in listeners {
            let port = l.port();
            match l.ip() {
                // Linux listens dual-stack on [::] unless IPV6_V6ONLY is
                // set; count both families either way (refusing too much
                // here costs nothing).
                IpAddr::V6(a) if a.is_unspecified() => {
                    own.sockets.extend(interfaces.iter().map(|i| (v6(*i), port)));
                    own.loopback4_ports.insert(port);
                }
                IpAddr::V4(a) if a.is_unspecified() => {
                    own.sockets.extend(interfaces.iter().filter(|i| i.is_ipv4()).map(|i| (v6(*i), port)));
                    own.loopback4_ports.insert(port);
                }
                ip => {
                    own.sockets.insert((v6(ip), port));
                }
            }
        }
        own
    }

    /// Is `a` one of the host's own addresses?
    pub fn is_host_address(&self, a: Ipv6Addr) -> bool {
        self.addresses.contains(&a)
    }

    /// Does sixgate listen on `a`?
    pub fn is_listener(&self, a: SocketAddrV6) -> bool {
        let ip = *a.ip();
        self.sockets.contains(&(ip, a.port()))
            || (self.loopback4_ports.contains(&a.port())
                && ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
    }
}

/// The host's interface addresses, both families.
pub fn interface_addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let Some(a) = ifa.address else { continue };
        if let Some(s) = a.as_sockaddr_in() {
            out.push(IpAddr::V4(s.ip()));
        } else if let Some(s) = a.as_sockaddr_in6() {
            out.push(IpAddr::V6(s.ip()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(s: &str) -> SocketAddrV6 {
        match s.parse::<SocketAddr>().unwrap() {
            SocketAddr::V6(a) => a,
            SocketAddr::V4(a) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        }
    }

    /// Regression: only DNS and proxy listen addresses that were IPv6 and
    /// not a wildcard counted as sixgate's own, so a typical
    /// configuration (`[::]:53`, `0.0.0.0:443`) had none, the API never
    /// counted, and a backend AAAA at the host's own address looped the
    /// proxy into itself.
    #[test]
    fn wildcard_listens_stand_for_every_interface_address_and_the_api_counts() {
        let listeners: Vec<SocketAddr> = ["[::]:53", "0.0.0.0:443", "[2a01:4f8::53]:8053", "127.0.0.1:80"]
            .map(|s| s.parse().unwrap())
            .into();
        let interfaces: Vec<IpAddr> =
            ["127.0.0.1", "::1", "192.0.2.5", "2a01:4f8::53", "fe80::1"].map(|s| s.parse().unwrap()).into();
        let own = OwnAddresses::new(&listeners, &interfaces);
        for a in [
            "[2a01:4f8::53]:53",
            "[::1]:53",
            "[::ffff:192.0.2.5]:53",
            "192.0.2.5:443",
            "127.0.0.1:443",
            "127.0.0.9:443",
            "[2a01:4f8::53]:8053",
            "127.0.0.1:80",
        ] {
            assert!(own.is_listener(sock(a)), "{a}");
        }
        for a in
            ["[2a01:4f8::53]:443", "[2a01:4f8::53]:80", "[::1]:8053", "[2a01:4f8::54]:53", "127.0.0.2:80"]
        {
            assert!(!own.is_listener(sock(a)), "{a}");
        }
        assert!(own.is_host_address("2a01:4f8::53".parse().unwrap()));
        assert!(own.is_host_address("::ffff:192.0.2.5".parse().unwrap()));
        assert!(!own.is_host_address("2a01:4f8::54".parse().unwrap()));
    }

    #[test]
    fn the_host_has_at_least_its_ipv4_loopback() {
        let all = interface_addresses().unwrap();
        assert!(all.contains(&IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)), "{all:?}");
    }
}
