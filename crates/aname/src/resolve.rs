//! Resolving an ANAME target to its A and AAAA addresses.
//!
//! A target inside a zone sixgate serves, whose data the ANAME's owner may
//! trust (same account, or a verified zone), is answered by sixgate's own
//! answer engine from the current snapshot: no network query, and a
//! change to that zone shows up at the next look. Any other target, and a
//! CNAME chain leaving sixgate's zones, goes to the upstream resolvers.
//! Both answers are read by the same parser (`sixgate_dns::lookup`).
//! Chains are followed across answers up to [`MAX_HOPS`] names, and a name
//! seen twice is a loop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sixgate_control::exchange::{NoAnswer, udp_ask};
use sixgate_dns::lookup::{self, LookupError, Outcome};
use sixgate_dns::rtype::code;
use sixgate_dns::{Catalog, Limits, Transport, name, respond};

use crate::schedule::Resolution;

/// Names followed for one target, across answers.
pub const MAX_HOPS: usize = 8;
/// How long one upstream resolver gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// What one address type resolved to.
enum Found {
    Addresses(Vec<IpAddr>, u32),
    Empty(&'static str),
}

/// Resolves targets, internally or through upstream resolvers, with a
/// bound on upstream queries per second.
pub struct Resolver {
    upstream: Vec<SocketAddr>,
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl Resolver {
    /// Upstream resolvers and the most upstream queries per second.
    pub fn new(upstream: Vec<SocketAddr>, queries_per_second: u32) -> Resolver {
        let rate = f64::from(queries_per_second.max(1));
        Resolver { upstream, rate, bucket: Mutex::new((rate, Instant::now())) }
    }

    fn take_query(&self) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.rate).min(self.rate);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// Resolves `target`'s A and AAAA. `trusted(apex)` says whether a
    /// served zone may answer internally. Also returns whether any
    /// upstream query was made.
    pub async fn resolve(
        &self,
        catalog: &Catalog,
        target: &[u8],
        trusted: &(dyn Fn(&[u8]) -> bool + Sync),
    ) -> (Resolution, bool) {
        let mut upstream_used = false;
        let mut found = Vec::new();
        for qtype in [code::A, code::AAAA] {
            match self.lookup(catalog, target, qtype, trusted, &mut upstream_used).await {
                Ok(f) => found.push(f),
                Err(e) => return (Resolution::Failed(e), upstream_used),
            }
        }
        let mut addresses = Vec::new();
        let mut ttl: Option<u32> = None;
        let mut nx = false;
        for f in found {
            match f {
                Found::Addresses(a, t) => {
                    addresses.extend(a);
                    ttl = Some(ttl.map_or(t, |x| x.min(t)));
                }
                Found::Empty(why) => nx |= why == "NXDOMAIN",
            }
        }
        let r = match ttl {
            Some(ttl) => Resolution::Addresses { addresses, ttl },
            None => Resolution::Empty { ttl: 0, why: if nx { "NXDOMAIN" } else { "NODATA" }.into() },
        };
        (r, upstream_used)
    }

    async fn lookup(
        &self,
        catalog: &Catalog,
        target: &[u8],
        qtype: u16,
        trusted: &(dyn Fn(&[u8]) -> bool + Sync),
        upstream_used: &mut bool,
    ) -> Result<Found, String> {
        let mut current: Box<[u8]> = name::to_lowercase(target);
        let mut seen: Vec<Box<[u8]>> = Vec::new();
        let mut ttl = u32::MAX;
        for _ in 0..MAX_HOPS {
            if seen.contains(&current) {
                return Err(format!("CNAME/ANAME loop at {}", name::to_text(&current)));
            }
            seen.push(current.clone());
            let internal = catalog.find(&current).filter(|z| trusted(z.apex()));
            // A target that is itself an ANAME's owner: follow that ANAME
            // like a CNAME, so chains resolve at once and loops are found.
            if let Some(next) = internal
                .and_then(|z| z.node(&current))
                .and_then(|n| n.rrset(code::ANAME))
                .and_then(|r| r.rdatas().next().map(name::to_lowercase))
            {
                current = next;
                continue;
            }
            let outcome = match internal {
                Some(_) => ask_catalog(catalog, &current, qtype),
                None => {
                    *upstream_used = true;
                    self.ask_upstream(&current, qtype).await
                }
            };
            let outcome = outcome.map_err(|e| match e {
                LookupError::CnameLoop => format!("CNAME loop at {}", name::to_text(&current)),
                LookupError::Rcode(r) => format!("{} answered rcode {r}", name::to_text(&current)),
                e => format!("{}: {e}", name::to_text(&current)),
            })?;
            match outcome {
                Outcome::Addresses { ttl: t, addresses } => {
                    let ips = addresses
                        .iter()
                        .filter_map(|a| match a.len() {
                            4 => <[u8; 4]>::try_from(&a[..]).ok().map(|b| IpAddr::V4(Ipv4Addr::from(b))),
                            16 => <[u8; 16]>::try_from(&a[..]).ok().map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                            _ => None,
                        })
                        .collect();
                    return Ok(Found::Addresses(ips, ttl.min(t)));
                }
                Outcome::NxDomain => return Ok(Found::Empty("NXDOMAIN")),
                Outcome::NoData => return Ok(Found::Empty("NODATA")),
                Outcome::Cname { target, ttl: t } => {
                    ttl = ttl.min(t);
                    current = target;
                }
            }
        }
        Err(format!("CNAME chain from {} longer than {MAX_HOPS} names", name::to_text(target)))
    }

    async fn ask_upstream(&self, qname: &[u8], qtype: u16) -> Result<Outcome, LookupError> {
        if self.upstream.is_empty() {
            return Err(LookupError::Malformed("no upstream resolver configured"));
        }
        if !self.take_query() {
            return Err(LookupError::Malformed("upstream query rate limit reached"));
        }
        let mut last = LookupError::Malformed("no upstream resolver answered");
        for server in &self.upstream {
            match ask_one(*server, qname, qtype).await {
                Ok(o) => return Ok(o),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Asks sixgate's own answer engine.
fn ask_catalog(catalog: &Catalog, qname: &[u8], qtype: u16) -> Result<Outcome, LookupError> {
    let id: u16 = rand::random();
    let q = lookup::query(id, qname, qtype);
    let mut out = Vec::with_capacity(512);
    // As over TCP: the whole answer, never truncated.
    respond(catalog, &q, &mut out, Transport::Tcp, &Limits::default());
    lookup::parse_response(&out, id, qname, qtype)
}

async fn ask_one(server: SocketAddr, qname: &[u8], qtype: u16) -> Result<Outcome, LookupError> {
    let answer = udp_ask(
        server,
        UPSTREAM_TIMEOUT,
        |id| lookup::query(id, qname, qtype),
        |msg, id| match lookup::parse_response(msg, id, qname, qtype) {
            Err(LookupError::Mismatch) => None,
            r => Some(r),
        },
    )
    .await;
    match answer {
        Ok(r) => r,
        Err(NoAnswer::Send(_)) => Err(LookupError::Malformed("network error")),
        Err(NoAnswer::Receive(_)) => Err(LookupError::Malformed("no answer (connection refused)")),
        Err(NoAnswer::Timeout) => Err(LookupError::Malformed("no answer (timeout)")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sixgate_dns::{Zone, zonefile};

    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        for (apex, text) in [
            (
                "provider.test.",
                "@ 60 SOA ns h 1 2 3 4 30\n@ 60 NS ns\nns 60 A 192.0.2.53\nhost 40 A 192.0.2.10\nhost 50 AAAA 2001:db8::10\n\
                 alias 20 CNAME host\nout 60 CNAME host.other.test.\nloop1 60 CNAME loop2.other.test.\nv4only 60 A 192.0.2.11\n\
                 chained 60 ANAME alias.provider.test.\na1 60 ANAME a2.provider.test.\na2 60 ANAME a1.provider.test.\n",
            ),
            (
                "other.test.",
                "@ 60 SOA ns h 1 2 3 4 30\n@ 60 NS ns\nns 60 A 192.0.2.53\nhost 60 A 192.0.2.99\nloop2 60 CNAME loop1.provider.test.\n",
            ),
        ] {
            let a = name::from_text(apex, None).unwrap();
            c.insert(Arc::new(Zone::build(&a, zonefile::parse(text, &a).unwrap(), 1).unwrap()));
        }
        c
    }

    fn n(t: &str) -> Box<[u8]> {
        name::from_text(t, None).unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn internal_targets_resolve_without_the_network_and_follow_cnames_across_zones() {
        let r = Resolver::new(Vec::new(), 10);
        let all = |_: &[u8]| true;
        let (res, up) = r.resolve(&catalog(), &n("alias.provider.test."), &all).await;
        assert!(!up);
        assert_eq!(res, Resolution::Addresses { addresses: ips(&["192.0.2.10", "2001:db8::10"]), ttl: 20 });
        let (res, _) = r.resolve(&catalog(), &n("out.provider.test."), &all).await;
        assert!(
            matches!(res, Resolution::Addresses { ref addresses, .. } if *addresses == ips(&["192.0.2.99"])),
            "{res:?}"
        );
        let (res, _) = r.resolve(&catalog(), &n("v4only.provider.test."), &all).await;
        assert_eq!(res, Resolution::Addresses { addresses: ips(&["192.0.2.11"]), ttl: 60 });
        let (res, _) = r.resolve(&catalog(), &n("nothere.provider.test."), &all).await;
        assert!(matches!(res, Resolution::Empty { ref why, .. } if why == "NXDOMAIN"), "{res:?}");
        let (res, _) = r.resolve(&catalog(), &n("loop1.provider.test."), &all).await;
        assert!(matches!(res, Resolution::Failed(ref e) if e.contains("loop")), "{res:?}");
        // ANAME to ANAME resolves through; ANAMEs pointing at each other loop.
        let (res, _) = r.resolve(&catalog(), &n("chained.provider.test."), &all).await;
        assert!(
            matches!(res, Resolution::Addresses { ref addresses, .. } if *addresses == ips(&["192.0.2.10", "2001:db8::10"])),
            "{res:?}"
        );
        let (res, _) = r.resolve(&catalog(), &n("a1.provider.test."), &all).await;
        assert!(matches!(res, Resolution::Failed(ref e) if e.contains("loop")), "{res:?}");
    }

    /// A zone the ANAME's account may not trust is not asked: the query
    /// goes upstream (none configured here, so it fails) instead.
    #[tokio::test]
    async fn untrusted_zones_are_not_used_internally() {
        let r = Resolver::new(Vec::new(), 10);
        let only_provider = |z: &[u8]| z == &n("provider.test.")[..];
        let (res, up) = r.resolve(&catalog(), &n("host.other.test."), &only_provider).await;
        assert!(up, "an untrusted zone must not answer internally");
        assert!(matches!(res, Resolution::Failed(ref e) if e.contains("no upstream")), "{res:?}");
    }
}
