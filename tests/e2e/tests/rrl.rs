//! Response-rate limiting (`[dns.rrl]`) seen from outside.
//!
//! - `a_flood_from_one_network_is_limited_to_the_rate_with_slip_while_another_is_answered`:
//!   sixgate with `rate = 20`, `slip = 2` and nothing exempt (the tests
//!   run from loopback, exempt by default) takes a paced flood from eight
//!   addresses of 127.0.0.0/24, 16 source ports each, for one name. The
//!   answers in full are the rate times the flood's seconds plus one
//!   second of burst (bounds derived from the config, not from timing);
//!   half of the rest come back truncated and half not at all, and the
//!   metrics count exactly that. Meanwhile a client of 127.0.1.0/24 gets
//!   every answer. A second flood of random names that do not exist is
//!   held to the same rate: they share the zone's NXDOMAIN bucket.
//! - `a_client_with_a_valid_server_cookie_is_not_limited_inside_a_flooded_network`:
//!   a client of the flooded /24 learns a server cookie before the flood,
//!   then asks at 2.5 times the rate while the flood runs: every answer
//!   comes in full, while the flood itself is held to the rate.
//! - `sixgate_limits_a_flood_like_knot_mod_rrl`: the same flood against
//!   knotd 3.2 with `mod-rrl` (`rate-limit: 20`, `slip: 2`), both with two
//!   UDP workers; both figures are printed, and they must agree within a
//!   factor of 2.5 (Knot gives a new bucket four seconds of burst and
//!   refills by whole seconds, sixgate one second, refilled every 1/16 s).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sixgate_e2e::craft;
use sixgate_e2e::flood::{FloodPlan, FloodReport, KnotRrl, flood, steady_client};
use sixgate_e2e::process::ZoneFile;
use sixgate_e2e::sixgate::{Cli, Sixgate};

const RATE: u32 = 20;
const SLIP: u32 = 2;
/// The flood: 1000 queries a second for three seconds.
const QPS: u32 = 1000;
const TOTAL: u64 = 3000;

const ZONE: &str = "$ORIGIN rrl.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n\
ns1 A 192.0.2.53\nwww A 192.0.2.1\nwww TXT \"an answer some forty octets longer than its query\"\n";

fn zone_file(dir: &Path) -> Result<ZoneFile> {
    let path = dir.join("rrl.test.zone");
    std::fs::write(&path, ZONE)?;
    Ok(ZoneFile::new("rrl.test.", path))
}

/// sixgate serving the zone with `[dns.rrl]` at RATE and SLIP, nothing
/// exempt.
fn sixgate(dir: &Path, zone: &ZoneFile) -> Result<Sixgate> {
    let data = dir.join("data");
    let cli = Cli::new(&data)?;
    cli.import(zone)?;
    let conf = dir.join("sixgate.toml");
    std::fs::write(&conf, format!("[dns.rrl]\nrate = {RATE}\nslip = {SLIP}\nexempt = []\n"))?;
    Sixgate::serve_with(cli, &["--config", &conf.display().to_string()])
}

fn sources(third: u8) -> Vec<IpAddr> {
    (2..=9).map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, third, last))).collect()
}

fn plan(target: std::net::SocketAddr, third: u8, queries: Vec<Vec<u8>>, total: u64) -> FloodPlan {
    FloodPlan { target, sources: sources(third), ports_per_source: 16, queries, qps: QPS, total }
}

fn www_txt() -> Vec<u8> {
    craft::query(0, craft::RD, "www.rrl.test.", 16, None)
}

/// The full answers RRL lets through in a flood of `seconds`: a second of
/// burst and `seconds` of refill, with room for a tick either side.
fn expected_full(seconds: f64) -> (u64, u64) {
    let rate = f64::from(RATE);
    let low = rate * seconds * 0.8;
    let high = rate * (seconds + 1.0) * 1.25 + 2.0;
    (low as u64, high as u64)
}

/// The slip split of the limited responses: every SLIP-th is truncated,
/// counted per worker (two), so off by at most a few from the exact
/// fraction.
fn check_slip(r: &FloodReport) -> Result<()> {
    let limited = r.limited();
    let want = limited / u64::from(SLIP);
    let slack = limited / 20 + 4;
    ensure!(r.truncated.abs_diff(want) <= slack, "{r}: {} truncated, want {want} ± {slack}", r.truncated);
    Ok(())
}

#[test]
fn a_flood_from_one_network_is_limited_to_the_rate_with_slip_while_another_is_answered() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = zone_file(dir.path())?;
    let server = sixgate(dir.path(), &zone)?;
    let target = server.udp_addr();
    // A real client of 127.0.1.0/24: ten queries a second, under the rate.
    let client = std::thread::spawn(move || {
        steady_client(
            target,
            IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)),
            &www_txt(),
            Duration::from_millis(100),
            30,
        )
    });
    let r = flood(&plan(target, 0, vec![www_txt()], TOTAL))?;
    let (sent, answered) = client.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
    println!("sixgate rate {RATE} slip {SLIP}: {r}; the other network's client: {answered}/{sent}");
    let (low, high) = expected_full(r.seconds);
    ensure!((low..=high).contains(&r.full), "{r}: want {low} to {high} answered in full");
    check_slip(&r)?;
    ensure!(answered == sent, "the client of another network got {answered} of {sent} answers");

    // The metrics count what the flood saw: each limited response was
    // either slipped or dropped, by class "answer".
    let m = server.metrics()?;
    let slipped = m.require("sixgate_dns_rrl_slipped_total{class=\"answer\"}")?;
    let dropped = m.require("sixgate_dns_rrl_dropped_total{class=\"answer\"}")?;
    ensure!(slipped == r.truncated, "metrics say {slipped} slipped, the flood saw {}", r.truncated);
    // A query lost on loopback before the server read it is silent but
    // never counted: allow 1% of those.
    let limited = slipped + dropped;
    ensure!(
        limited <= r.limited() && limited + r.limited() / 100 + 2 >= r.limited(),
        "metrics say {slipped} slipped + {dropped} dropped, the flood saw {} limited",
        r.limited()
    );

    // Random names that do not exist cannot dodge the limit: they share
    // the zone's NXDOMAIN bucket, from another network so the first
    // flood's buckets play no part.
    let random: Vec<Vec<u8>> =
        (0..500).map(|i| craft::query(0, craft::RD, &format!("r{i}-x.rrl.test."), 1, None)).collect();
    let nx = flood(&plan(target, 2, random, 1000))?;
    println!("sixgate, random NXDOMAIN names: {nx}");
    let (low, high) = expected_full(nx.seconds);
    ensure!((low..=high).contains(&nx.full), "{nx}: want {low} to {high} answered in full");
    check_slip(&nx)?;
    let m = server.metrics()?;
    ensure!(
        m.value("sixgate_dns_rrl_slipped_total{class=\"nxdomain\"}") == nx.truncated,
        "nxdomain slips in metrics:\n{}",
        m.0
    );
    Ok(())
}

#[test]
fn sixgate_limits_a_flood_like_knot_mod_rrl() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = zone_file(dir.path())?;
    let ours = {
        let server = sixgate(dir.path(), &zone)?;
        flood(&plan(server.udp_addr(), 0, vec![www_txt()], TOTAL))?
    };
    let theirs = {
        let knot = KnotRrl::start(&zone, RATE, SLIP).context("knotd with mod-rrl")?;
        flood(&plan(knot.addr(), 0, vec![www_txt()], TOTAL))?
    };
    println!("rate {RATE} slip {SLIP}, {TOTAL} queries at {QPS}/s from 8 addresses x 16 ports:");
    println!("  sixgate: {ours}");
    println!("  knot:    {theirs}");
    for (who, r) in [("sixgate", &ours), ("knot", &theirs)] {
        // Each is far below the flood: at most the rate over the flood's
        // seconds plus Knot's four seconds of burst.
        let most = (f64::from(RATE) * (r.seconds + 5.0) * 1.25) as u64;
        ensure!(r.full <= most, "{who}: {r}: more than {most} answered in full");
        ensure!(r.full >= u64::from(RATE), "{who}: {r}: not even a burst answered");
        // Slip 2: Knot rolls a die for each, sixgate counts, so the
        // share of truncated replies is about half for both.
        let share = r.truncated as f64 / r.limited().max(1) as f64;
        ensure!((0.35..=0.65).contains(&share), "{who}: {r}: {share:.2} of the limited truncated");
    }
    let ratio = theirs.full as f64 / ours.full.max(1) as f64;
    println!("  knot/sixgate answered in full: {ratio:.2}");
    ensure!((1.0 / 2.5..=2.5).contains(&ratio), "sixgate {ours} and knot {theirs} differ by {ratio:.2}x");
    Ok(())
}

/// The server cookie in the COOKIE option of `response` that echoes
/// `client` (RFC 7873 §4): the option's octets after the client cookie.
fn server_cookie(response: &[u8], client: &[u8; 8]) -> Option<Vec<u8>> {
    let at = response.windows(8).position(|w| w == client)?;
    let len = u16::from_be_bytes([*response.get(at.checked_sub(2)?)?, *response.get(at - 1)?]) as usize;
    let code = u16::from_be_bytes([*response.get(at.checked_sub(4)?)?, *response.get(at - 3)?]);
    (code == 10 && len > 8).then(|| response.get(at + 8..at + len).map(<[u8]>::to_vec)).flatten()
}

#[test]
fn a_client_with_a_valid_server_cookie_is_not_limited_inside_a_flooded_network() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = zone_file(dir.path())?;
    let server = sixgate(dir.path(), &zone)?;
    let target = server.udp_addr();
    // 127.0.0.10 is in the flood's /24 (127.0.0.2 to .9).
    let sock = std::net::UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 10), 0))?;
    sock.connect(target)?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let client = *b"rrl-ck01";
    let ask = |cookie: &[u8], id: u16| -> Result<Option<Vec<u8>>> {
        let q = craft::query(
            id,
            craft::RD,
            "www.rrl.test.",
            16,
            Some(&craft::opt(1232, 0, 0, 0, &[(10, cookie)])),
        );
        sock.send(&q)?;
        let mut buf = vec![0u8; 4096];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) if buf.get(..2) == Some(&id.to_be_bytes()[..]) => {
                    return Ok(buf.get(..n).map(<[u8]>::to_vec));
                }
                Ok(_) => {}
                Err(_) => return Ok(None),
            }
        }
    };
    let first = ask(&client, 1)?.context("no answer to the first cookie query")?;
    let server_part = server_cookie(&first, &client).context("no server cookie in the answer")?;
    let mut cookie = client.to_vec();
    cookie.extend_from_slice(&server_part);

    let flood_plan = plan(target, 0, vec![www_txt()], TOTAL);
    let flooding = std::thread::spawn(move || flood(&flood_plan));
    // 50 a second, 2.5 times the rate, for the flood's three seconds.
    let (mut sent, mut full) = (0u32, 0u32);
    let start = std::time::Instant::now();
    for k in 0..150u16 {
        sent += 1;
        if let Some(r) = ask(&cookie, 0x100 + k)?
            && r.get(2).is_some_and(|f| f & 0x02 == 0)
            && r.get(7) == Some(&1)
        {
            full += 1;
        }
        let next = start + Duration::from_millis(20) * u32::from(k + 1);
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    let r = flooding.join().map_err(|_| anyhow::anyhow!("flood panicked"))??;
    println!("flood: {r}; the cookie client: {full}/{sent} answered in full");
    let (low, high) = expected_full(r.seconds);
    ensure!((low..=high).contains(&r.full), "{r}: the flood was not limited ({low} to {high} in full)");
    ensure!(full == sent, "the client with a valid cookie got {full} of {sent} answers in full");
    let m = server.metrics()?;
    ensure!(
        m.value("sixgate_dns_cookies_total{transport=\"udp\",status=\"valid\"}") >= u64::from(sent),
        "valid cookies not counted:\n{}",
        m.0
    );
    Ok(())
}
