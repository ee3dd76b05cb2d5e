//! The DNS query counters in `/metrics`, end to end: after a known mix
//! of queries over UDP and TCP, the counters by rcode, question type and
//! transport, the TC count and the UDP wait histogram have grown by
//! exactly that mix.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sixgate_e2e::metrics::Metrics;
use sixgate_e2e::{Sixgate, ZoneFile, craft, tcp_exchange, udp_exchange, wait_until};

/// A zone with a TXT RRset at `big` far over 512 octets, so that a
/// query without EDNS gets a truncated answer.
fn zone() -> String {
    let mut z = String::from(
        "$ORIGIN counted.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n\
         ns1 A 192.0.2.53\nwww A 192.0.2.1\nwww AAAA 2001:db8::1\n",
    );
    for i in 0..20 {
        z.push_str(&format!("big TXT \"record {i} of a set too large for a plain UDP answer\"\n"));
    }
    z
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn rcode(r: &[u8]) -> u8 {
    r.get(3).map_or(0xff, |b| b & 0x0f)
}

fn tc(r: &[u8]) -> bool {
    r.get(2).is_some_and(|b| b & 0x02 != 0)
}

/// The growth of each sample from `before` to `after`.
fn grew(before: &Metrics, after: &Metrics, key: &str) -> u64 {
    after.value(key).saturating_sub(before.value(key))
}

#[test]
fn a_known_mix_of_queries_shows_in_the_counters_exactly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("counted.test.zone");
    std::fs::write(&path, zone())?;
    let server = Sixgate::start(&[ZoneFile::new("counted.test.", &path)])?;
    let (udp, tcp) = (server.udp_addr(), server.tcp_addr());
    let before = server.metrics()?;
    // The counters exist before anything was counted.
    before.require("sixgate_dns_responses_total{transport=\"udp\",rcode=\"NOERROR\"}")?;
    before.require("sixgate_dns_udp_wait_seconds_count")?;

    let ask = |id: u16, name: &str, qtype: u16| -> Result<Vec<u8>> {
        udp_exchange(udp, &craft::query(id, 0, name, qtype, None), TIMEOUT, 1)?
            .with_context(|| format!("no UDP answer for {name} {qtype}"))
    };
    for id in 0..7 {
        let r = ask(id, "www.counted.test", 1)?;
        ensure!(rcode(&r) == 0 && !tc(&r), "hit {id}: {r:?}");
    }
    for id in 10..13 {
        let r = ask(id, &format!("missing{id}.counted.test"), 1)?;
        ensure!(rcode(&r) == 3, "NXDOMAIN {id}: {r:?}");
    }
    for id in 20..22 {
        let r = ask(id, "www.elsewhere.test", 1)?;
        ensure!(rcode(&r) == 5, "out of zone {id}: {r:?}");
    }
    let r = ask(30, "big.counted.test", 16)?;
    ensure!(rcode(&r) == 0 && tc(&r), "the large TXT answer over UDP is truncated: {r:?}");
    for (id, qtype) in [(40, 1), (41, 28)] {
        let r = tcp_exchange(tcp, &craft::query(id, 0, "www.counted.test", qtype, None), TIMEOUT)?
            .context("no TCP answer")?;
        ensure!(rcode(&r) == 0 && !tc(&r), "TCP {qtype}: {r:?}");
    }

    // A UDP worker publishes its counts once its batch is sent, a moment
    // after the client has its answer.
    let after = wait_until("the UDP counts of the mix", Duration::from_secs(20), || {
        let m = server.metrics()?;
        Ok((grew(&before, &m, "sixgate_dns_udp_wait_seconds_count") >= 13).then_some(m))
    })?;
    let expect = [
        ("sixgate_dns_responses_total{transport=\"udp\",rcode=\"NOERROR\"}", 8),
        ("sixgate_dns_responses_total{transport=\"udp\",rcode=\"NXDOMAIN\"}", 3),
        ("sixgate_dns_responses_total{transport=\"udp\",rcode=\"REFUSED\"}", 2),
        ("sixgate_dns_responses_total{transport=\"udp\",rcode=\"SERVFAIL\"}", 0),
        ("sixgate_dns_responses_total{transport=\"tcp\",rcode=\"NOERROR\"}", 2),
        ("sixgate_dns_responses_total{transport=\"tcp\",rcode=\"NXDOMAIN\"}", 0),
        ("sixgate_dns_queries_by_type_total{transport=\"udp\",type=\"A\"}", 12),
        ("sixgate_dns_queries_by_type_total{transport=\"udp\",type=\"TXT\"}", 1),
        ("sixgate_dns_queries_by_type_total{transport=\"udp\",type=\"AAAA\"}", 0),
        ("sixgate_dns_queries_by_type_total{transport=\"tcp\",type=\"A\"}", 1),
        ("sixgate_dns_queries_by_type_total{transport=\"tcp\",type=\"AAAA\"}", 1),
        ("sixgate_dns_queries_by_type_total{transport=\"udp\",type=\"other\"}", 0),
        ("sixgate_dns_truncated_total{transport=\"udp\"}", 1),
        ("sixgate_dns_truncated_total{transport=\"tcp\"}", 0),
        ("sixgate_dns_udp_received_total", 13),
        ("sixgate_dns_udp_answered_total", 13),
        ("sixgate_dns_udp_dropped_total", 0),
        ("sixgate_dns_udp_wait_seconds_count", 13),
        ("sixgate_dns_udp_wait_seconds_bucket{le=\"+Inf\"}", 13),
        // One query at a time: every batch held one datagram and every
        // answer went out in a send call of its own.
        ("sixgate_dns_udp_batch_datagrams_bucket{le=\"1\"}", 13),
        ("sixgate_dns_udp_batch_datagrams_count", 13),
        ("sixgate_dns_udp_send_calls_total", 13),
    ];
    let wrong: Vec<String> = expect
        .iter()
        .filter(|(key, n)| grew(&before, &after, key) != *n)
        .map(|(key, n)| format!("{key} grew by {} instead of {n}", grew(&before, &after, key)))
        .collect();
    ensure!(wrong.is_empty(), "{}\n--- /metrics ---\n{}", wrong.join("\n"), after.0);
    let sum: f64 = after.get("sixgate_dns_udp_wait_seconds_sum").context("no wait sum")?;
    ensure!(sum > 0.0, "13 answers waited no time at all inside the worker");
    Ok(())
}
