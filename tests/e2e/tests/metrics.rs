//! The metrics listener and the metrics it serves, against a running
//! `sixgate serve`: a scrape without a token while the API is full, the
//! write path's histograms after known writes, ANAME refresh failures, a
//! held zone's own series, and docs/operations.md listing exactly the
//! families a server exports.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sixgate_e2e::http::{bearer, request};
use sixgate_e2e::metrics::Metrics;
use sixgate_e2e::process::{ZoneFile, wait_until, workspace_root};
use sixgate_e2e::sixgate::{Cli, Sixgate};

const TIMEOUT: Duration = Duration::from_secs(30);

const EXAMPLE: &str = "$ORIGIN example.test.\n$TTL 300\n\
@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n\
@ NS ns1\nns1 AAAA 2001:db8::53\nwww A 192.0.2.1\n";

fn write_zone(dir: &Path, origin: &str, text: &str) -> Result<ZoneFile> {
    let path = dir.join(format!("{origin}zone"));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(ZoneFile::new(origin, path))
}

fn write_config(dir: &Path, text: &str) -> Result<PathBuf> {
    let path = dir.join("sixgate.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A data directory under `dir` with example.test. imported, served with
/// `config`.
fn serve(dir: &Path, config: &str, zones: &[(&str, &str)]) -> Result<Sixgate> {
    let cli = Cli::new(dir.join("data"))?;
    cli.import(&write_zone(dir, "example.test.", EXAMPLE)?)?;
    for (origin, text) in zones {
        cli.import(&write_zone(dir, origin, text)?)?;
    }
    let config = write_config(dir, config)?;
    Sixgate::serve_with(cli, &["--config", &config.display().to_string()])
}

fn get(url: &str) -> Result<sixgate_e2e::http::HttpResponse> {
    request("GET", url, &[], None, Duration::from_secs(10))
}

/// The API listener at its connection cap with connections that have sent
/// half a request head (busy, so none may be closed to make room): a new
/// API connection is refused, and the metrics listener still answers
/// `/metrics`, `/health` and `/ready` without a token, with the API's
/// refusals in the scrape. The API's own `/metrics` stays admin-only.
#[test]
fn the_metrics_listener_answers_without_a_token_while_the_api_is_full() -> Result<()> {
    const CAP: usize = 4;
    let dir = tempfile::tempdir()?;
    let config = format!("[api.limits]\nmax_connections = {CAP}\nper_address = {CAP}\nhead_timeout = 120\n");
    let server = serve(dir.path(), &config, &[])?;
    let (api, metrics) =
        (server.api_url().context("no api url")?, server.metrics_url().context("no metrics url")?);
    let no_token = get(&format!("{api}/metrics"))?;
    ensure!(
        no_token.status == 401,
        "the API's /metrics without a token: {} {}",
        no_token.status,
        no_token.body
    );

    let api_addr: SocketAddr = api.trim_start_matches("http://").parse()?;
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut s = TcpStream::connect_timeout(&api_addr, TIMEOUT)?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")?;
        held.push(s);
    }
    wait_until("the API's connections to be open and busy", TIMEOUT, || {
        Ok((server.scrape()?.open("api") == CAP as u64).then_some(()))
    })?;
    // All from one address: the address cap or the listener's, both at CAP.
    let refused = |m: &Metrics| m.refused("api", "listener") + m.refused("api", "address");
    let refused_before = refused(&server.scrape()?);
    let turned_away = get(&format!("{api}/health")).map(|r| r.status != 200).unwrap_or(true);
    ensure!(turned_away, "the API answered a connection over its cap");

    let scrape = server.scrape()?;
    ensure!(refused(&scrape) > refused_before, "no refusal counted:\n{}", scrape.0);
    ensure!(scrape.require("sixgate_zones_held")? == 0);
    let health = get(&format!("{metrics}/health"))?;
    ensure!(health.status == 200 && health.body == "ok\n", "{} {}", health.status, health.body);
    let ready = get(&format!("{metrics}/ready"))?;
    ensure!(ready.status == 200, "{} {}", ready.status, ready.body);
    let v: Value = serde_json::from_str(&ready.body)?;
    ensure!(v["status"] == "ready" && v["held_zones"] == json!([]), "{v}");
    ensure!(
        get(&format!("{metrics}/v1/zones"))?.status == 404,
        "the API is not served on the metrics listener"
    );
    drop(held);
    Ok(())
}

fn count(m: &Metrics, family: &str) -> Result<u64> {
    m.require(&format!("{family}_count"))
}

/// N API writes, each acknowledged once served: the commit-latency and
/// write-to-served histograms count exactly N more, and the snapshot
/// build histogram at least one more.
#[test]
fn n_api_writes_count_n_commits_and_n_writes_served() -> Result<()> {
    const N: u64 = 5;
    let dir = tempfile::tempdir()?;
    let server = serve(dir.path(), "[dns]\ndemo_zone = false\n", &[])?;
    let (api, token) = (server.api_url().context("no api url")?, server.admin_token()?);
    let before = server.scrape()?;
    let (commits, served, built) = (
        count(&before, "sixgate_store_commit_seconds")?,
        count(&before, "sixgate_write_to_served_seconds")?,
        count(&before, "sixgate_publish_build_seconds")?,
    );
    for i in 0..N {
        let body = json!({"ttl": 60, "records": [format!("198.51.100.{i}")]});
        let path = format!("/v1/zones/example.test/rrsets/n{i}.example.test./A");
        let r = bearer("PUT", &api, &path, &token, Some(&body), TIMEOUT)?;
        ensure!(r.status == 200, "PUT {path}: {} {}", r.status, r.body);
    }
    let after = server.scrape()?;
    ensure!(count(&after, "sixgate_store_commit_seconds")? == commits + N, "commits:\n{}", after.0);
    ensure!(count(&after, "sixgate_write_to_served_seconds")? == served + N, "served:\n{}", after.0);
    ensure!(count(&after, "sixgate_publish_build_seconds")? > built, "builds:\n{}", after.0);
    // Every observation is within the last bucket's bound, +Inf included.
    let inf = after.require("sixgate_write_to_served_seconds_bucket{le=\"+Inf\"}")?;
    ensure!(inf == served + N, "+Inf bucket {inf}");
    Ok(())
}

/// An upstream resolver that answers every query SERVFAIL, until dropped.
struct Servfail {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Servfail {
    fn start() -> Result<Servfail> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
                let Some(msg) = buf.get_mut(..n).filter(|m| m.len() >= 12) else { continue };
                // QR and RA set, RCODE 2 (SERVFAIL), the question echoed.
                msg[2] |= 0x80;
                msg[3] = (msg[3] & 0x70) | 0x80 | 2;
                let _ = socket.send_to(msg, peer);
            }
        });
        Ok(Servfail { addr, stop, thread: Some(thread) })
    }
}

impl Drop for Servfail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An ANAME whose target's only resolver answers SERVFAIL: each failed
/// refresh is counted, the ANAME is followed, and nothing is served for
/// it (there was never a good answer).
#[test]
fn an_aname_to_an_unresolvable_target_counts_refresh_failures() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let upstream = Servfail::start()?;
    let config = format!(
        "[aname]\nresolvers = [\"{}\"]\nmin_refresh = 1\nmax_refresh = 2\ntrust_anchor = \"none\"\n",
        upstream.addr
    );
    let zone = "$ORIGIN alias.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 7200 3600 1209600 300\n\
                @ NS ns1.example.test.\n@ ANAME target.unresolvable.test.\n";
    let server = serve(dir.path(), &config, &[("alias.test.", zone)])?;
    let m = wait_until("two ANAME refresh failures", TIMEOUT, || {
        let m = server.scrape()?;
        Ok((m.value("sixgate_aname_refresh_failures_total") >= 2).then_some(m))
    })?;
    ensure!(m.require("sixgate_aname_targets")? == 1, "{}", m.0);
    ensure!(m.require("sixgate_aname_resolutions_total")? == 0, "{}", m.0);
    ensure!(m.require("sixgate_aname_targets_last_good")? == 0, "no good answer ever came:\n{}", m.0);
    Ok(())
}

/// A zone whose stored data cannot be served (an RRset over 65535
/// octets, as an older version could write) is held at start: it has its
/// own `sixgate_zone_held` series, is counted, and is listed by the
/// metrics listener's `/ready`, which stays 200.
#[test]
fn a_held_zone_has_its_own_series_and_is_listed_by_ready() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&write_zone(dir.path(), "example.test.", EXAMPLE)?)?;
    let held = EXAMPLE.replace("example.test.", "held.test.");
    cli.import(&write_zone(dir.path(), "held.test.", &held)?)?;
    let rdatas = (0..280)
        .map(|i| sixgate_e2e::plant::txt_rdata(&[&format!("{i:0>250}")]))
        .collect::<Result<Vec<_>>>()?;
    sixgate_e2e::plant::plant_rrset(cli.data(), "held.test.", "big.held.test.", 16, 60, &rdatas)?;
    let server = Sixgate::serve(cli)?;
    let m = wait_until("the held zone's series", TIMEOUT, || {
        let m = server.scrape()?;
        Ok(m.get::<u64>("sixgate_zone_held{zone=\"held.test.\"}").map(|_| m))
    })?;
    ensure!(m.require("sixgate_zone_held{zone=\"held.test.\"}")? == 1);
    ensure!(m.get::<u64>("sixgate_zone_held{zone=\"example.test.\"}").is_none(), "{}", m.0);
    ensure!(m.require("sixgate_zones_held")? == 1);
    let ready = get(&format!("{}/ready", server.metrics_url().context("no metrics url")?))?;
    ensure!(ready.status == 200, "a held zone made the node unready: {} {}", ready.status, ready.body);
    let v: Value = serde_json::from_str(&ready.body)?;
    ensure!(v["held_zones"][0]["zone"] == "held.test.", "{v}");
    Ok(())
}

/// The metric families docs/operations.md lists in its tables (first
/// column, in backquotes), and those of them marked as appearing only
/// with their feature ("*Only with").
fn documented() -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let path = workspace_root().join("docs/operations.md");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (mut all, mut conditional) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("| `sixgate_") else { continue };
        let Some(end) = rest.find('`') else { continue };
        let name = format!("sixgate_{}", &rest[..end]);
        if line.contains("*Only with") {
            conditional.insert(name.clone());
        }
        all.insert(name);
    }
    Ok((all, conditional))
}

/// docs/operations.md stays true: a server with an unsigned zone, a
/// signed zone and an ANAME exports every family the document lists
/// (but those marked as appearing only with their feature), and the
/// document lists every `sixgate_*` family the server exports.
#[test]
fn every_exported_metric_is_documented_and_every_documented_one_is_exported() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let upstream = Servfail::start()?;
    let config = format!(
        "[dnssec]\nmaintain = false\n[aname]\nresolvers = [\"{}\"]\ntrust_anchor = \"none\"\n",
        upstream.addr
    );
    let signed = EXAMPLE.replace("example.test.", "signed.test.");
    let alias = "$ORIGIN alias.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 7200 3600 1209600 300\n\
                 @ NS ns1.example.test.\n@ ANAME www.example.test.\n";
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&write_zone(dir.path(), "example.test.", EXAMPLE)?)?;
    cli.import(&write_zone(dir.path(), "signed.test.", &signed)?)?;
    cli.import(&write_zone(dir.path(), "alias.test.", alias)?)?;
    cli.run(&["dnssec", "enable"], &["signed.test."])?.ok()?;
    let config = write_config(dir.path(), &config)?;
    let server = Sixgate::serve_with(cli, &["--config", &config.display().to_string()])?;
    // The signed zone is in the gauges read on a timer (the first read
    // is at start), and the expiry watchdog has looked at it.
    let scrape = wait_until("the signed zone in the gauges", TIMEOUT, || {
        let m = server.scrape()?;
        let signed = m.value("sixgate_dnssec_zones_waiting_for_ds") == 1
            && m.get::<i64>("sixgate_dnssec_signature_expiry_seconds{zone=\"signed.test.\"}").is_some();
        Ok(signed.then_some(m))
    })?;
    let exported = scrape.families();
    let (documented, conditional) = documented()?;
    let undocumented: Vec<&String> = exported.difference(&documented).collect();
    let missing: Vec<&String> =
        documented.iter().filter(|f| !exported.contains(*f) && !conditional.contains(*f)).collect();
    ensure!(
        undocumented.is_empty() && missing.is_empty(),
        "docs/operations.md is out of date.\nexported, not documented: {undocumented:?}\n\
         documented, not exported (mark a feature's own with \"*Only with ...*\"): {missing:?}"
    );
    Ok(())
}
