//! The limiter on real responses: prefixes, exemptions, slip, the
//! truncated reply.

use std::net::IpAddr;
use std::sync::Arc;

use sixgate_dns::message::{HEADER_LEN, Summary};
use sixgate_dns::{Catalog, Limits, Transport, Zone, name, respond, zonefile};

use super::*;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n\
ns1 A 192.0.2.53\nwww A 192.0.2.1\nwww TXT \"a long text to make the answer bigger than the query\"\n";

fn catalog() -> Catalog {
    let apex = name::from_text("example.test.", None).unwrap();
    let zone = Zone::build(&apex, zonefile::parse(ZONE, &apex).unwrap(), 7).unwrap();
    Catalog::new().with_zone(Arc::new(zone))
}

fn config(rate: u32, slip: u32) -> RrlConfig {
    RrlConfig { rate, slip, ipv4_prefix: 24, ipv6_prefix: 56, exempt: Vec::new(), table_size: 4096 }
}

/// sixgate's response to a query for `qname`/`qtype`, with an OPT
/// (payload 1232) when `edns`.
fn response(cat: &Catalog, qname: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = vec![0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    q.extend_from_slice(&name::from_text(qname, None).unwrap());
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    }
    let mut out = Vec::new();
    respond(cat, &q, &mut out, Transport::Udp, &Limits { udp_payload: 1232, ..Limits::default() });
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Sends `n` copies of `resp` from `peer` at `now`; counts the verdicts.
fn flood(w: &mut RrlWorker, cat: &Catalog, peer: &str, resp: &[u8], now: u32, n: usize) -> [usize; 3] {
    let mut seen = [0; 3];
    for _ in 0..n {
        let mut out = resp.to_vec();
        let v = w.apply(ip(peer), cat, &mut out, Tick(now), false);
        seen[match v {
            Verdict::Pass => 0,
            Verdict::Slip => 1,
            Verdict::Drop => 2,
        }] += 1;
    }
    seen
}

#[test]
fn prefixes_parse_and_fold_ipv4_mapped_addresses() {
    let p = Prefix::parse("192.0.2.0/24").unwrap();
    assert!(p.contains(ip("192.0.2.77")));
    assert!(p.contains(ip("::ffff:192.0.2.77")), "an IPv4-mapped client is the IPv4 client");
    assert!(!p.contains(ip("192.0.3.1")));
    let p6 = Prefix::parse("2001:db8:0:100::/56").unwrap();
    assert!(p6.contains(ip("2001:db8:0:1ff::1")));
    assert!(!p6.contains(ip("2001:db8:0:200::1")));
    assert!(!p6.contains(ip("192.0.2.1")));
    assert_eq!(Prefix::parse("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
    assert_eq!(Prefix::parse("::1").unwrap().to_string(), "::1/128");
    for bad in ["10.0.0.1/8", "10.0.0.0/33", "nonsense/8", "2001:db8::1/32", ""] {
        assert!(Prefix::parse(bad).is_err(), "{bad}");
    }
    let lo = loopback();
    assert!(lo.iter().any(|p| p.contains(ip("127.0.0.9"))));
    assert!(lo.iter().any(|p| p.contains(ip("::1"))));
    assert!(!lo.iter().any(|p| p.contains(ip("::2"))));
}

#[test]
fn settings_out_of_range_are_refused() {
    assert!(config(0, 2).validate().is_err());
    assert!(config(MAX_RATE + 1, 2).validate().is_err());
    assert!(config(10, MAX_SLIP + 1).validate().is_err());
    assert!(RrlConfig { ipv4_prefix: 33, ..config(10, 2) }.validate().is_err());
    assert!(RrlConfig { ipv6_prefix: 0, ..config(10, 2) }.validate().is_err());
    assert!(RrlConfig { table_size: 0, ..config(10, 2) }.validate().is_err());
    assert!(config(MAX_RATE, 0).validate().is_ok());
}

#[test]
fn one_client_network_shares_a_budget_and_another_has_its_own() {
    let cat = catalog();
    let rrl = Rrl::with_seed(config(5, 0), 1).unwrap();
    let mut w = rrl.worker();
    let www = response(&cat, "www.example.test.", 1, false);
    // Two hosts of 192.0.2.0/24 (one as IPv4-mapped IPv6) share 5.
    assert_eq!(flood(&mut w, &cat, "192.0.2.1", &www, 0, 3)[0], 3);
    assert_eq!(flood(&mut w, &cat, "::ffff:192.0.2.200", &www, 0, 10), [2, 0, 8]);
    // The next /24 is another client.
    assert_eq!(flood(&mut w, &cat, "192.0.3.1", &www, 0, 10)[0], 5);
    // IPv6: one /56 shares, the next /56 does not.
    assert_eq!(flood(&mut w, &cat, "2001:db8:0:1aa::1", &www, 0, 10)[0], 5);
    assert_eq!(flood(&mut w, &cat, "2001:db8:0:1bb::2", &www, 0, 10)[0], 0);
    assert_eq!(flood(&mut w, &cat, "2001:db8:0:200::1", &www, 0, 10)[0], 5);
    // Another class, or another name, has its own bucket.
    let nx = response(&cat, "nope.example.test.", 1, false);
    assert_eq!(flood(&mut w, &cat, "192.0.2.1", &nx, 0, 10)[0], 5);
    let ns1 = response(&cat, "ns1.example.test.", 1, false);
    assert_eq!(flood(&mut w, &cat, "192.0.2.1", &ns1, 0, 10)[0], 5);
    // Random names that do not exist share the zone's NXDOMAIN bucket.
    let other_nx = response(&cat, "other-random.example.test.", 1, false);
    assert_eq!(flood(&mut w, &cat, "192.0.2.1", &other_nx, 0, 10)[0], 0);
    // A second later the rate is back.
    assert_eq!(flood(&mut w, &cat, "192.0.2.1", &www, 16, 10)[0], 5);
}

#[test]
fn exempt_prefixes_and_cookie_clients_are_never_limited() {
    let cat = catalog();
    let rrl = Rrl::with_seed(RrlConfig { exempt: loopback(), ..config(1, 0) }, 1).unwrap();
    let mut w = rrl.worker();
    let www = response(&cat, "www.example.test.", 1, false);
    assert_eq!(flood(&mut w, &cat, "127.0.0.2", &www, 0, 50)[0], 50);
    assert_eq!(flood(&mut w, &cat, "::1", &www, 0, 50)[0], 50);
    assert_eq!(flood(&mut w, &cat, "::ffff:127.0.0.1", &www, 0, 50)[0], 50);
    assert_eq!(flood(&mut w, &cat, "192.0.2.1", &www, 0, 50)[0], 1);
    // A client with a valid server cookie (RFC 7873 §5.3) is exempt.
    let mut out = www.clone();
    assert_eq!(w.apply(ip("192.0.2.1"), &cat, &mut out, Tick(0), true), Verdict::Pass);
    assert_eq!(out, www);
    assert_eq!(w.apply(ip("192.0.2.1"), &cat, &mut out, Tick(0), false), Verdict::Drop);
}

#[test]
fn the_slip_ratio_is_exact_over_a_long_run() {
    let cat = catalog();
    let www = response(&cat, "www.example.test.", 1, false);
    for (slip, slipped, dropped) in [(0, 0, 9_999), (1, 9_999, 0), (2, 4_999, 5_000), (3, 3_333, 6_666)] {
        let rrl = Rrl::with_seed(config(1, slip), 9).unwrap();
        let mut w = rrl.worker();
        assert_eq!(
            flood(&mut w, &cat, "198.51.100.1", &www, 0, 10_000),
            [1, slipped, dropped],
            "slip {slip}"
        );
        let counts = rrl.counts();
        let i = Class::Answer.index();
        assert_eq!((counts.slipped[i], counts.dropped[i]), (slipped as u64, dropped as u64), "slip {slip}");
    }
}

#[test]
fn counts_from_every_worker_are_summed_in_the_metrics() {
    let cat = catalog();
    let rrl = Rrl::with_seed(config(2, 2), 3).unwrap();
    let (mut a, mut b) = (rrl.worker(), rrl.worker());
    let nx = response(&cat, "nope.example.test.", 1, false);
    flood(&mut a, &cat, "203.0.113.5", &nx, 0, 6);
    flood(&mut b, &cat, "203.0.113.6", &nx, 0, 6);
    let text = rrl.metrics_text();
    // 2 passed; 10 limited, every other one in each worker slipped.
    assert!(text.contains("sixgate_dns_rrl_slipped_total{class=\"nxdomain\"} 5\n"), "{text}");
    assert!(text.contains("sixgate_dns_rrl_dropped_total{class=\"nxdomain\"} 5\n"), "{text}");
    assert!(text.contains("sixgate_dns_rrl_dropped_total{class=\"answer\"} 0\n"), "{text}");
}

#[test]
fn a_slipped_reply_is_the_header_and_question_with_tc_and_the_opt_kept() {
    let cat = catalog();
    let rrl = Rrl::with_seed(config(1, 1), 5).unwrap();
    let mut w = rrl.worker();
    for edns in [true, false] {
        let full = response(&cat, "www.example.test.", 16, edns);
        let s = Summary::of(&full).unwrap();
        assert!(s.answers > 0);
        let peer = ip(if edns { "192.0.2.9" } else { "192.0.3.9" });
        let mut out = full.clone();
        // The first passes; the second is limited and slips.
        assert_eq!(w.apply(peer, &cat, &mut out, Tick(0), false), Verdict::Pass);
        let mut out = full.clone();
        assert_eq!(w.apply(peer, &cat, &mut out, Tick(0), false), Verdict::Slip);
        let question_end = s.qname_end + 4;
        let t = Summary::of(&out).unwrap();
        assert!(t.truncated() && t.authoritative());
        assert_eq!((t.rcode, t.answers, t.authority, t.qtype), (0, 0, 0, 16));
        assert_eq!(out[..2], full[..2], "the ID is kept");
        assert_eq!(out[HEADER_LEN..question_end], full[HEADER_LEN..question_end]);
        if edns {
            // The OPT record, as the full answer had it, is all that
            // follows the question.
            assert_eq!(&out[10..12], &[0, 1]);
            let opt = &full[full.len() - 11..];
            assert_eq!(&out[question_end..], opt);
            assert_eq!(opt[1..3], [0, 41]);
        } else {
            assert_eq!(&out[10..12], &[0, 0]);
            assert_eq!(out.len(), question_end);
        }
        assert!(out.len() < full.len());
    }
}

/// The truncated reply is cut from sixgate's own responses, but it must
/// not panic or grow on any bytes at all.
#[test]
fn truncating_arbitrary_bytes_never_panics_or_grows() {
    let cat = catalog();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = response(&cat, "www.example.test.", 16, true);
    for _ in 0..20_000 {
        let mut m = base.clone();
        // Flip a few octets and cut at a random length.
        for _ in 0..(next() % 6) {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        m.truncate((next() as usize) % (base.len() + 1));
        let before = m.len();
        if let Some(s) = Summary::of(&m) {
            truncate(&mut m, &s);
            assert!(m.len() <= before);
        }
    }
}
