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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sixgate_control::exchange::{NoAnswer, udp_ask};
use sixgate_dns::lookup::{self, LookupError, Outcome};
use sixgate_dns::message::{HEADER_LEN, flags, rcode};
use sixgate_dns::name::NameBuf;
use sixgate_dns::rtype::{CLASS_IN, code};
use sixgate_dns::zone::Record;
use sixgate_dns::{Catalog, Limits, Transport, name, respond};
use sixgate_dnssec::rrsig::Rrsig;
use sixgate_dnssec::validate::{Response, Verdict, check_response, decode_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chain::{Ask, Chain, Miss, Security, TrustAnchor};
use crate::schedule::Resolution;

/// Names followed for one target, across answers.
pub const MAX_HOPS: usize = 8;
/// How long one upstream resolver gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// UDP payload size offered (the DNS Flag Day 2020 value); larger
/// answers come over TCP.
const EDNS_PAYLOAD: u16 = 1232;
/// The DO bit in the OPT record's TTL field (RFC 3225 §3).
const DO: u32 = 0x8000;
/// CNAMEs followed inside one answer when validating it.
const MAX_CNAMES_IN_ANSWER: usize = 16;

/// What one address type resolved to.
enum Found {
    Addresses(Vec<IpAddr>, u32),
    Empty(&'static str),
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Resolves targets, internally or through upstream resolvers, with a
/// bound on upstream queries per second. Upstream answers are validated
/// from the trust anchor down (see [`crate::chain`]) unless validation
/// is turned off.
pub struct Resolver {
    upstream: Vec<SocketAddr>,
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
    chain: Option<Chain>,
}

impl Resolver {
    /// Upstream resolvers and the most upstream queries per second;
    /// answers are validated from the IANA root trust anchor.
    pub fn new(upstream: Vec<SocketAddr>, queries_per_second: u32) -> Resolver {
        let rate = f64::from(queries_per_second.max(1));
        Resolver {
            upstream,
            rate,
            bucket: Mutex::new((rate, Instant::now())),
            chain: Some(Chain::new(TrustAnchor::iana_root())),
        }
    }

    /// The same resolver validating from `anchor`, or, with `None`,
    /// taking upstream answers unvalidated.
    pub fn with_trust_anchor(mut self, anchor: Option<TrustAnchor>) -> Resolver {
        self.chain = anchor.map(Chain::new);
        self
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
                // Not the target's failure: no query could be sent.
                Err(Miss::RateLimited) => {
                    return (Resolution::Deferred("upstream query rate limit reached".into()), upstream_used);
                }
                Err(Miss::Failed(e)) => return (Resolution::Failed(e), upstream_used),
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
    ) -> Result<Found, Miss> {
        let mut current: Box<[u8]> = name::to_lowercase(target);
        let mut seen: Vec<Box<[u8]>> = Vec::new();
        let mut ttl = u32::MAX;
        for _ in 0..MAX_HOPS {
            if seen.contains(&current) {
                return Err(Miss::Failed(format!("CNAME/ANAME loop at {}", name::to_text(&current))));
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
                    let (msg, id) = self.ask_upstream(&current, qtype).await?;
                    let outcome = lookup::parse_response(&msg, id, &current, qtype);
                    if let (Ok(o), Some(chain)) = (&outcome, &self.chain) {
                        self.validate(chain, &msg, &current, qtype, o).await?;
                    }
                    outcome
                }
            };
            let outcome = outcome.map_err(|e| {
                Miss::Failed(match e {
                    LookupError::CnameLoop => format!("CNAME loop at {}", name::to_text(&current)),
                    LookupError::Rcode(r) => format!("{} answered rcode {r}", name::to_text(&current)),
                    e => format!("{}: {e}", name::to_text(&current)),
                })
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
        Err(Miss::Failed(format!("CNAME chain from {} longer than {MAX_HOPS} names", name::to_text(target))))
    }

    /// Validates an upstream answer to `qname` and `qtype` (RFC 4035
    /// §5.3, §5.4): the names of its CNAME chain are grouped by the zone
    /// that holds them, and each group in a signed zone must validate
    /// under that zone's keys, found from the trust anchor down. A group
    /// in a zone proven insecure is taken as it is. Anything else is a
    /// failure, so the last good addresses stay.
    async fn validate(
        &self,
        chain: &Chain,
        msg: &[u8],
        qname: &[u8],
        qtype: u16,
        outcome: &Outcome,
    ) -> Result<(), Miss> {
        let text = || name::to_text(qname);
        let response = decode_response(msg).map_err(|e| Miss::Failed(format!("{}: {e}", text())))?;
        let now = unix_now();
        let mut names: Vec<Box<[u8]>> = vec![name::to_lowercase(qname)];
        while names.len() <= MAX_CNAMES_IN_ANSWER {
            let last = names.last().map_or(&[][..], |n| &n[..]);
            let next = response
                .answer
                .iter()
                .find(|r| r.rtype == code::CNAME && r.owner.eq_ignore_ascii_case(last))
                .map(|r| name::to_lowercase(&r.rdata));
            match next {
                Some(n) if !names.contains(&n) => names.push(n),
                _ => break,
            }
        }
        let ask = Upstream(self);
        let mut groups: Vec<(Security, Vec<Box<[u8]>>)> = Vec::new();
        for n in names {
            let security = chain.security(&ask, &n, now).await?;
            match groups.last_mut() {
                Some((s, members)) if same_zone(s, &security) => members.push(n),
                _ => groups.push((security, vec![n])),
            }
        }
        // The chain ends in this answer unless it leads out of it.
        let ends = !matches!(outcome, Outcome::Cname { .. });
        let count = groups.len();
        for (i, (security, members)) in groups.iter().enumerate() {
            let Security::Secure(keys) = security else { continue };
            let last = ends && i + 1 == count;
            let part = zone_part(&response, members, &keys.zone, last);
            let first = members.first().map_or(&[][..], |n| &n[..]);
            // A group that hands over to another zone is checked as the
            // answer to a CNAME query: its CNAMEs, validated.
            let asked = if last { qtype } else { code::CNAME };
            if let Verdict::Bogus(b) = check_response(keys, &part, first, asked, now) {
                return Err(Miss::Failed(format!(
                    "bogus answer for {} (zone {} is signed): {b}",
                    name::to_text(first),
                    name::to_text(&keys.zone)
                )));
            }
        }
        Ok(())
    }

    /// Asks the upstream resolvers in turn, with DO and CD, over UDP and
    /// over TCP when the answer is truncated. Returns the message and the
    /// query's ID.
    async fn ask_upstream(&self, qname: &[u8], qtype: u16) -> Result<(Vec<u8>, u16), Miss> {
        if self.upstream.is_empty() {
            return Err(Miss::Failed(format!("{}: no upstream resolver configured", name::to_text(qname))));
        }
        if !self.take_query() {
            return Err(Miss::RateLimited);
        }
        let mut last = "no upstream resolver answered";
        for server in &self.upstream {
            match ask_one(*server, qname, qtype).await {
                Ok(answer) => return Ok(answer),
                Err(e) => last = e,
            }
        }
        Err(Miss::Failed(format!("{}: {last}", name::to_text(qname))))
    }
}

/// The upstream resolvers, as the chain of trust asks them.
struct Upstream<'a>(&'a Resolver);

impl Ask for Upstream<'_> {
    async fn ask(&self, qname: &[u8], qtype: u16) -> Result<Response, Miss> {
        let (msg, _) = self.0.ask_upstream(qname, qtype).await?;
        let r = decode_response(&msg).map_err(|e| Miss::Failed(format!("{}: {e}", name::to_text(qname))))?;
        if r.rcode != rcode::NOERROR && r.rcode != rcode::NXDOMAIN {
            return Err(Miss::Failed(format!(
                "{} type {qtype}: upstream answered rcode {}",
                name::to_text(qname),
                r.rcode
            )));
        }
        Ok(r)
    }
}

fn same_zone(a: &Security, b: &Security) -> bool {
    match (a, b) {
        (Security::Secure(x), Security::Secure(y)) => x.zone == y.zone,
        (Security::Insecure { cut: x }, Security::Insecure { cut: y }) => x == y,
        _ => false,
    }
}

/// The part of `r` that the zone `zone` answers for the chain names
/// `members`: their answer records, and for the end of the chain the
/// authority records that zone signed (a proof of absence or of a
/// wildcard). Whatever is left out can only make the check fail.
fn zone_part(r: &Response, members: &[Box<[u8]>], zone: &[u8], last: bool) -> Response {
    let ours = |rr: &Record| members.iter().any(|m| rr.owner.eq_ignore_ascii_case(m));
    let signer_is_zone = |rr: &Record| {
        rr.rtype == code::RRSIG && Rrsig::decode(&rr.rdata).is_ok_and(|s| s.signer.eq_ignore_ascii_case(zone))
    };
    let authority = if last {
        r.authority
            .iter()
            .filter(|rr| {
                signer_is_zone(rr)
                    || r.authority.iter().any(|sig| {
                        signer_is_zone(sig)
                            && sig.owner.eq_ignore_ascii_case(&rr.owner)
                            && Rrsig::decode(&sig.rdata).is_ok_and(|s| s.type_covered == rr.rtype)
                    })
            })
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    Response {
        rcode: if last { r.rcode } else { rcode::NOERROR },
        answer: r.answer.iter().filter(|rr| ours(rr)).cloned().collect(),
        authority,
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

/// A query for `qname` and `qtype` with recursion desired, checking
/// disabled (the validation is ours, RFC 4035 §3.2.2) and EDNS with DO
/// (RFC 3225), so that signatures and proofs come along.
fn dnssec_query(id: u16, qname: &[u8], qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + qname.len() + 4 + 11);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&(flags::RD | flags::CD).to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(qname);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m.push(0);
    m.extend_from_slice(&code::OPT.to_be_bytes());
    m.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    m.extend_from_slice(&DO.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m
}

/// Whether `msg` answers `dnssec_query(id, qname, qtype)`: the ID, a
/// response, and the same question.
fn answers(msg: &[u8], id: u16, qname: &[u8], qtype: u16) -> bool {
    let word = |at: usize| be16(msg, at);
    if word(0) != Some(id) || word(2).is_none_or(|f| f & flags::QR == 0) || word(4) != Some(1) {
        return false;
    }
    let mut owner = NameBuf::new();
    let Ok(pos) = owner.decode(msg, HEADER_LEN) else { return false };
    owner.make_lowercase();
    owner.as_slice().eq_ignore_ascii_case(qname)
        && word(pos) == Some(qtype)
        && word(pos + 2) == Some(CLASS_IN)
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at.checked_add(1)?)?]))
}

fn truncated(msg: &[u8]) -> bool {
    be16(msg, 2).is_some_and(|f| f & flags::TC != 0)
}

async fn ask_one(server: SocketAddr, qname: &[u8], qtype: u16) -> Result<(Vec<u8>, u16), &'static str> {
    let answer = udp_ask(
        server,
        UPSTREAM_TIMEOUT,
        |id| dnssec_query(id, qname, qtype),
        |msg, id| answers(msg, id, qname, qtype).then(|| (msg.to_vec(), id)),
    )
    .await;
    match answer {
        // RFC 7766 §5: a truncated answer is asked again over TCP.
        Ok((msg, _)) if truncated(&msg) => tcp_ask(server, qname, qtype).await,
        Ok(r) => Ok(r),
        Err(NoAnswer::Send(_)) => Err("network error"),
        Err(NoAnswer::Receive(_)) => Err("no answer (connection refused)"),
        Err(NoAnswer::Timeout) => Err("no answer (timeout)"),
    }
}

async fn tcp_ask(server: SocketAddr, qname: &[u8], qtype: u16) -> Result<(Vec<u8>, u16), &'static str> {
    let id: u16 = rand::random();
    let q = dnssec_query(id, qname, qtype);
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(server).await.map_err(|_| "no TCP connection")?;
        let len = u16::try_from(q.len()).map_err(|_| "query too long")?;
        let mut framed = Vec::with_capacity(q.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&q);
        s.write_all(&framed).await.map_err(|_| "TCP write failed")?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(|_| "TCP answer cut short")?;
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut msg).await.map_err(|_| "TCP answer cut short")?;
        Ok::<_, &'static str>(msg)
    };
    let msg = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
        .await
        .map_err(|_| "no answer over TCP (timeout)")??;
    if !answers(&msg, id, qname, qtype) || truncated(&msg) {
        return Err("the TCP answer does not answer the query");
    }
    Ok((msg, id))
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

/// Upstream answers validated from a lab root (fault: ANAME signed
/// unvalidated upstream answers, with no DO bit and AD ignored).
#[cfg(test)]
mod validation_tests {
    use sixgate_dns::Catalog;

    use super::*;
    use crate::lab::{Lab, Lie, Upstream, n};
    use crate::schedule::{Entry, Policy};

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    const NOTHING_INTERNAL: &(dyn Fn(&[u8]) -> bool + Sync) = &|_: &[u8]| false;

    async fn lab_resolver(nsec3: bool) -> (Resolver, Upstream) {
        let lab = Lab::new(nsec3);
        let anchor = lab.anchor.clone();
        let up = Upstream::start(lab).await;
        (Resolver::new(vec![up.addr], 1000).with_trust_anchor(Some(anchor)), up)
    }

    #[tokio::test]
    async fn aname_refuses_a_spoofed_answer_for_a_signed_target() {
        for nsec3 in [false, true] {
            refuses_a_spoofed_answer(nsec3).await;
        }
    }

    async fn refuses_a_spoofed_answer(nsec3: bool) {
        let (r, up) = lab_resolver(nsec3).await;
        let catalog = Catalog::new();
        let target = n("host.provider.test.");
        let (good, _) = r.resolve(&catalog, &target, NOTHING_INTERNAL).await;
        assert_eq!(good, Resolution::Addresses { addresses: ips(&["192.0.2.10", "2001:db8::10"]), ttl: 300 });
        // The queries carried DO: the lab answered with signatures, and
        // the chain was walked from the root.
        assert!(
            up.asked.lock().unwrap().iter().any(|(q, t)| **q == *n("provider.test.") && *t == code::DNSKEY)
        );
        let mut entry = Entry::default();
        entry.apply(good, 0, &Policy::default(), 0.0);
        for lie in [Lie::Forge, Lie::Strip] {
            up.lie(lie);
            let (forged, _) = r.resolve(&catalog, &target, NOTHING_INTERNAL).await;
            let Resolution::Failed(why) = &forged else {
                panic!("{lie:?}: a forged answer was taken: {forged:?}")
            };
            assert!(why.contains("bogus") && why.contains("provider.test."), "{lie:?}: {why}");
            entry.apply(forged, 100, &Policy::default(), 0.0);
            assert_eq!(
                entry.addresses,
                ips(&["192.0.2.10", "2001:db8::10"]),
                "{lie:?}: the last good set is kept"
            );
            assert!(entry.last_error.as_deref().is_some_and(|e| e.contains("bogus")), "{lie:?}: {entry:?}");
        }
        up.lie(Lie::Honest);
        let (again, _) = r.resolve(&catalog, &target, NOTHING_INTERNAL).await;
        assert!(matches!(again, Resolution::Addresses { .. }), "{again:?}");
    }

    #[tokio::test]
    async fn aname_takes_an_insecure_target_only_when_proven() {
        for nsec3 in [false, true] {
            takes_an_insecure_target_only_when_proven(nsec3).await;
        }
    }

    async fn takes_an_insecure_target_only_when_proven(nsec3: bool) {
        let (r, up) = lab_resolver(nsec3).await;
        let catalog = Catalog::new();
        // plain.test. is delegated without DS, and test.'s NSEC proves it.
        let (res, _) = r.resolve(&catalog, &n("host.plain.test."), NOTHING_INTERNAL).await;
        assert_eq!(res, Resolution::Addresses { addresses: ips(&["192.0.2.20"]), ttl: 300 });
        // A DS absence without its proof is not taken, for the insecure
        // zone nor for a signed one.
        let (r, up2) = lab_resolver(nsec3).await;
        drop(up);
        up2.lie(Lie::Unproven);
        for target in ["host.plain.test.", "host.provider.test."] {
            let (res, _) = r.resolve(&catalog, &n(target), NOTHING_INTERNAL).await;
            let Resolution::Failed(why) = &res else { panic!("{target}: taken without proof: {res:?}") };
            assert!(why.contains("bogus DS"), "{target}: {why}");
        }
    }

    #[tokio::test]
    async fn the_iana_anchor_does_not_validate_a_lab_root() {
        let lab = Lab::new(false);
        let up = Upstream::start(lab).await;
        let r = Resolver::new(vec![up.addr], 1000);
        let (res, _) = r.resolve(&Catalog::new(), &n("host.plain.test."), NOTHING_INTERNAL).await;
        assert!(matches!(res, Resolution::Failed(ref e) if e.contains("bogus DNSKEY for .")), "{res:?}");
    }

    /// A miss of the query rate limit sends nothing: the target has not
    /// failed (fault: it counted as a failure, backed off, and replaced
    /// the status's error).
    #[tokio::test]
    async fn a_rate_limit_miss_is_not_a_target_failure() {
        let lab = Lab::new(false);
        let up = Upstream::start(lab).await;
        // One query per second: the first resolution takes it.
        let r = Resolver::new(vec![up.addr], 1);
        let catalog = Catalog::new();
        let mut entry = Entry::default();
        entry.apply(
            Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 300 },
            0,
            &Policy::default(),
            0.0,
        );
        let (_, _) = r.resolve(&catalog, &n("host.provider.test."), NOTHING_INTERNAL).await;
        let (missed, _) = r.resolve(&catalog, &n("host.provider.test."), NOTHING_INTERNAL).await;
        let before = entry.clone();
        entry.apply(missed, 300, &Policy::default(), 0.0);
        assert_eq!(entry.failures, 0, "{entry:?}");
        assert_eq!(entry.last_error, None, "{entry:?}");
        assert_eq!(entry.addresses, before.addresses);
        assert!(entry.next_refresh <= 300 + 60, "retried soon, not backed off: {entry:?}");
    }
}
