//! NOTIFY (RFC 1996) to the secondaries, their status in the API and the
//! metrics, and writes that wait for them, against a real `sixgate
//! serve`: a knotd configured as a secondary with a TSIG key (it logs
//! every NOTIFY it takes), and UDP sockets that play secondaries which do
//! not answer or stay behind.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sixgate_e2e::http::HttpResponse;
use sixgate_e2e::notifylab::{FakeSecondary, KnotSecondary, TsigLine};
use sixgate_e2e::{Cli, QuerySpec, Response, Sixgate, ZoneFile, udp_exchange, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

const EXAMPLE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 3600 900 604800 300\n\
@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn zone(dir: &Path, origin: &str, text: &str) -> Result<ZoneFile> {
    let path = dir.join(format!("{origin}zone"));
    std::fs::write(&path, text)?;
    Ok(ZoneFile::new(origin, path))
}

/// A server with example.test. and `config` as its `[secondaries]`.
fn server(dir: &Path, config: &str) -> Result<Sixgate> {
    let cli = Cli::new(dir.join("data"))?;
    cli.import(&zone(dir, "example.test.", EXAMPLE)?)?;
    let conf = dir.join("sixgate.toml");
    std::fs::write(&conf, format!("[secondaries]\n{config}\n"))?;
    Sixgate::serve_with(cli, &["--config", &conf.display().to_string()])
}

fn admin(server: &Sixgate) -> Result<String> {
    Ok(server.cli().run(&["token", "create"], &[])?.ok()?.stdout.trim().to_string())
}

fn call(
    server: &Sixgate,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<HttpResponse> {
    let base = server.api_url().context("no API")?;
    sixgate_e2e::http::bearer(method, &base, path, token, body.as_ref(), Duration::from_secs(90))
}

fn json_of(r: &HttpResponse) -> Result<Value> {
    serde_json::from_str(&r.body).with_context(|| format!("not JSON: {} {}", r.status, r.body))
}

/// `GET /v1/zones/example.test/secondaries`.
fn secondaries(server: &Sixgate, token: &str) -> Result<Value> {
    let r = call(server, "GET", "/v1/zones/example.test/secondaries", token, None)?;
    ensure!(r.status == 200, "{} {}", r.status, r.body);
    json_of(&r)
}

fn metrics(server: &Sixgate, token: &str) -> Result<sixgate_e2e::metrics::Metrics> {
    sixgate_e2e::metrics::fetch(&server.api_url().context("no API")?, token)
}

/// Sets www.example.test. A to `addr` through the API (`query` appended
/// to the path).
fn put_www(server: &Sixgate, token: &str, addr: &str, query: &str) -> Result<HttpResponse> {
    call(
        server,
        "PUT",
        &format!("/v1/zones/example.test/rrsets/www.example.test/A{query}"),
        token,
        Some(json!({"ttl": 60, "records": [addr]})),
    )
}

#[test]
fn knot_takes_a_signed_notify_for_every_change_from_the_api_and_the_cli() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = server(dir.path(), "")?;
    let cli = server.cli();
    let token = admin(&server)?;
    let line = cli.run(&["tsig", "create"], &["xfr-key", "--transfer"])?.ok()?.stdout.trim().to_string();
    let key = TsigLine::parse(&line)?;
    // knotd takes NOTIFY only signed with the key: an acknowledgement
    // means our signature verified, and its signed answer verified here.
    let knot = KnotSecondary::start(server.tcp_addr(), &["example.test."], Some(&key))?;
    let address = knot.addr().to_string();
    cli.run(&["secondary", "add"], &[&address, "--tsig", &line, "--zone", "example.test."])?.ok()?;

    // A secondary added while the server runs is told at once.
    let first = wait_until("knotd to take the first NOTIFY", DEADLINE, || {
        Ok(knot.notified_serials("example.test.").first().copied())
    })
    .with_context(|| format!("knotd's log:\n{}\nsixgate's:\n{}", knot.log_text(), server.stderr_tail(30)))?;
    let acked = |serial: u64| -> Result<Option<Value>> {
        let v = secondaries(&server, &token)?;
        let s = &v["secondaries"][0];
        Ok((s["last_notify"]["serial"] == serial && s["last_notify"]["acked"] == true).then(|| v.clone()))
    };
    let v = wait_until("the API to show it acknowledged", DEADLINE, || acked(first.into()))?;
    ensure!(v["secondaries"].as_array().map(Vec::len) == Some(1), "{v}");
    ensure!(v["secondaries"][0]["address"] == address.as_str(), "{v}");
    ensure!(v["serial"] == first, "{v}");

    // An API write.
    let r = put_www(&server, &token, "192.0.2.7", "")?;
    ensure!(r.status == 200, "{} {}", r.status, r.body);
    let serial = json_of(&r)?["serial"].as_u64().context("no serial")?;
    wait_until("knotd to take the API change's NOTIFY", DEADLINE, || {
        Ok(knot.notified_serials("example.test.").iter().any(|&s| u64::from(s) == serial).then_some(()))
    })?;
    wait_until("the API to show it acknowledged", DEADLINE, || acked(serial))?;

    // A change the CLI makes on the data directory while the server runs.
    let text = format!("{EXAMPLE}cli A 192.0.2.8\n");
    cli.import(&zone(dir.path(), "example.test.", &text)?)?;
    let after = wait_until("the CLI's change to be served", DEADLINE, || {
        let v = secondaries(&server, &token)?;
        Ok(v["serial"].as_u64().filter(|&s| s != serial))
    })?;
    wait_until("knotd to take the CLI change's NOTIFY", DEADLINE, || {
        Ok(knot.notified_serials("example.test.").iter().any(|&s| u64::from(s) == after).then_some(()))
    })?;

    let m = metrics(&server, &token)?;
    let sent = m.require(&format!("sixgate_notify_sent_total{{address=\"{address}\"}}"))?;
    ensure!(sent >= 3, "{sent} NOTIFYs sent");
    ensure!(m.value(&format!("sixgate_notify_failed_total{{address=\"{address}\"}}")) == 0, "{}", m.0);
    Ok(())
}

#[test]
fn a_secondary_that_does_not_answer_is_retried_then_given_up_and_counted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = server(dir.path(), "notify_tries = 3\nnotify_timeout_ms = 200")?;
    let token = admin(&server)?;
    let silent = FakeSecondary::start(false, 0)?;
    let address = silent.addr().to_string();
    server.cli().run(&["secondary", "add"], &[&address])?.ok()?;
    let failed = format!("sixgate_notify_failed_total{{address=\"{address}\"}}");
    let m = wait_until("the NOTIFY to be given up", DEADLINE, || {
        let m = metrics(&server, &token)?;
        Ok((m.value(&failed) == 1).then_some(m))
    })?;
    ensure!(m.value(&format!("sixgate_notify_sent_total{{address=\"{address}\"}}")) == 3, "{}", m.0);
    ensure!(m.value(&format!("sixgate_notify_retried_total{{address=\"{address}\"}}")) == 2, "{}", m.0);
    ensure!(silent.notifies() == 3, "{} NOTIFYs arrived", silent.notifies());
    let v = secondaries(&server, &token)?;
    let n = &v["secondaries"][0]["last_notify"];
    ensure!(n["failed"] == true && n["acked"] == false && n["tries"] == 3, "{v}");
    ensure!(server.stderr_tail(50).contains("notify given up"), "no warning logged");
    Ok(())
}

#[test]
fn a_write_that_waits_on_a_zone_no_secondary_carries_answers_at_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = server(dir.path(), "")?;
    let token = admin(&server)?;
    let other = FakeSecondary::start(true, 1)?;
    server.cli().run(&["secondary", "add"], &[&other.addr().to_string(), "--zone", "other.test."])?.ok()?;
    // The secondary never reports a new serial: a wait would end in 504.
    let r = put_www(&server, &token, "192.0.2.9", "?wait=secondaries&timeout=5")?;
    ensure!(r.status == 200, "{} {}", r.status, r.body);
    let v = json_of(&r)?;
    ensure!(v["secondaries"] == json!([]), "{v}");
    Ok(())
}

#[test]
fn a_write_whose_secondary_stays_behind_gets_504_with_its_serial() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = server(dir.path(), "")?;
    let token = admin(&server)?;
    // It acknowledges every NOTIFY, and serves serial 1 for ever.
    let stuck = FakeSecondary::start(true, 1)?;
    let address = stuck.addr().to_string();
    server.cli().run(&["secondary", "add"], &[&address])?.ok()?;
    wait_until("the secondary to be read in sync", DEADLINE, || {
        Ok((secondaries(&server, &token)?["secondaries"][0]["in_sync"] == true).then_some(()))
    })?;
    let started = Instant::now();
    let headers_wait = "?timeout=2&wait=secondaries";
    let r = put_www(&server, &token, "192.0.2.10", headers_wait)?;
    ensure!(r.status == 504, "{} {}", r.status, r.body);
    ensure!(started.elapsed() >= Duration::from_secs(2), "answered after {:?}", started.elapsed());
    let v = json_of(&r)?;
    ensure!(v["type"] == "https://sixgate.invalid/problems/secondaries-behind", "{v}");
    ensure!(v["secondaries"][0]["address"] == address.as_str() && v["secondaries"][0]["serial"] == 1, "{v}");
    let serial = v["serial"].as_u64().context("no serial")?;
    ensure!(serial != 1, "{v}");
    // The write is served here all the same.
    let q = QuerySpec::parse("www.example.test.", 1)?.with_id(0x7777).encode()?;
    let a = udp_exchange(server.udp_addr(), &q, Duration::from_secs(2), 3)?.context("no answer")?;
    ensure!(Response::parse(&a)?.answers_of(1).any(|rr| rr.rdata == [192, 0, 2, 10]), "not served");
    // The status and the metrics say it is behind.
    let v = secondaries(&server, &token)?;
    let s = &v["secondaries"][0];
    ensure!(s["in_sync"] == false && s["lag_seconds"].as_f64().is_some_and(|l| l >= 2.0), "{v}");
    let m = metrics(&server, &token)?;
    ensure!(m.value(&format!("sixgate_secondary_zones_behind{{address=\"{address}\"}}")) == 1, "{}", m.0);
    let lag: f64 = m.get(&format!("sixgate_secondary_lag_seconds{{address=\"{address}\"}}")).unwrap_or(0.0);
    ensure!(lag >= 2.0, "{}", m.0);
    // The header asks the same.
    let base = server.api_url().context("no API")?;
    let r = sixgate_e2e::http::request(
        "DELETE",
        &format!("{base}/v1/zones/example.test/rrsets/www.example.test/A?timeout=1"),
        &[("authorization", &format!("Bearer {token}")), ("sixgate-wait", "secondaries")],
        None,
        Duration::from_secs(30),
    )?;
    ensure!(r.status == 504, "{} {}", r.status, r.body);
    Ok(())
}

#[test]
fn a_write_that_waits_is_answered_only_once_knot_serves_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = server(dir.path(), "")?;
    let token = admin(&server)?;
    let knot = KnotSecondary::start(server.tcp_addr(), &["example.test."], None)?;
    server.cli().run(&["secondary", "add"], &[&knot.addr().to_string()])?.ok()?;
    wait_until("knotd to hold the zone", DEADLINE, || {
        Ok((secondaries(&server, &token)?["secondaries"][0]["in_sync"] == true).then_some(()))
    })?;
    for i in 0..5u8 {
        let addr = format!("198.51.100.{i}");
        let r = put_www(&server, &token, &addr, "?wait=secondaries&timeout=20")?;
        ensure!(r.status == 200, "{} {}", r.status, r.body);
        // Right after the answer, with no polling: knotd serves it.
        let q = QuerySpec::parse("www.example.test.", 1)?.with_id(0x7070).encode()?;
        let a = udp_exchange(knot.addr(), &q, Duration::from_secs(2), 3)?.context("no answer from knotd")?;
        let want = addr.parse::<std::net::Ipv4Addr>()?.octets();
        ensure!(
            Response::parse(&a)?.answers_of(1).any(|rr| rr.rdata == want),
            "knotd does not serve {addr} yet"
        );
    }
    Ok(())
}
