//! One sixgate primary and the secondaries operators run: knotd and named
//! follow its catalog zone (RFC 9432), nsd is configured statically, all
//! three with a transfer key. Nothing on the secondaries is touched after
//! they start: zones come and go through the catalog, every change comes
//! by NOTIFY and IXFR, and a write that waits for the secondaries is
//! answered only once each of them serves it.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sixgate_e2e::kdig::kdig;
use sixgate_e2e::secondary::{Peer, Secondary, SecondaryConfig, TransferKey, XfrKind};
use sixgate_e2e::{Cli, Sixgate, wait_until};

const CATALOG: &str = "catalog.invalid.";
const ZONE: &str = "customer.test.";
const HTTP: Duration = Duration::from_secs(30);

fn call(server: &Sixgate, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let base = server.api_url().context("no api url")?;
    let token = server.admin_token()?;
    let r = sixgate_e2e::http::bearer(method, &base, path, &token, body.as_ref(), HTTP)?;
    let v = if r.body.trim().is_empty() { Value::Null } else { serde_json::from_str(&r.body)? };
    Ok((r.status, v))
}

/// The one A record `secondary` answers for `name`, asked once.
fn a_of(secondary: &Secondary, name: &str) -> Result<Vec<String>> {
    let dig = kdig(secondary.addr(), &[name, "A"])?;
    Ok(dig.answers("A").iter().map(|r| r.data.clone()).collect())
}

/// Waits until `secondary` has logged the transfer that brought `serial`
/// (a version can be served a moment before its log line is written).
fn transfer_kind(secondary: &Secondary, zone: &str, serial: u32) -> Result<XfrKind> {
    wait_until(&format!("{} to log serial {serial} of {zone}", secondary.peer()), HTTP, || {
        Ok(secondary.last_transfer(zone)?.filter(|t| t.serial == serial).map(|t| t.kind))
    })
    .with_context(|| format!("{} log:\n{}", secondary.peer(), secondary.log_text()))
}

#[test]
fn catalog_zones_reach_knot_and_bind_and_changes_reach_all_three_by_ixfr() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    let server = Sixgate::serve(cli.clone())?;
    let key_text = cli.run(&["tsig", "create"], &["xfr.", "--transfer"])?.ok()?.stdout.trim().to_owned();
    let key = TransferKey::parse(&key_text)?;
    let primary = server.tcp_addr();
    ensure!(server.udp_addr() == primary, "UDP and TCP on one address");

    // Each secondary is added to the running server before it starts, as
    // an operator would, and starts once the server has taken it up (the
    // catalog served, the key known: a signed SOA query of the catalog
    // gets a signed answer): named waits minutes after a failed first
    // refresh.
    let add = |extra: &'static [&'static str]| {
        let (cli, key_text) = (cli.clone(), key_text.clone());
        move |addr: std::net::SocketAddr| -> Result<()> {
            let addr = addr.to_string();
            let mut args = vec![addr.as_str(), "--tsig", key_text.as_str()];
            args.extend_from_slice(extra);
            cli.run(&["secondary", "add"], &args)?.ok()?;
            wait_until("the server to serve the catalog to the key", HTTP, || {
                let dig = kdig(primary, &["-y", &key_text, CATALOG, "SOA"])?;
                Ok((dig.status == "NOERROR" && !dig.answers("SOA").is_empty()).then_some(()))
            })
        }
    };
    let catalog = SecondaryConfig::new(primary).with_key(&key).with_catalog(CATALOG);
    let knot = Secondary::start_announced(Peer::Knot, &catalog, add(&["--catalog"]))?;
    let named = Secondary::start_announced(Peer::Bind, &catalog, add(&["--catalog"]))?;
    let static_zone = SecondaryConfig::new(primary).with_key(&key).with_zone(ZONE);
    let nsd = Secondary::start_announced(Peer::Nsd, &static_zone, add(&["--zone", ZONE]))?;

    // A zone made through the API appears on the catalog followers.
    let ns = json!({"name": ZONE, "nameservers": ["ns1.provider.test.", "ns2.provider.test."]});
    let (status, zone) = call(&server, "POST", "/v1/zones", Some(ns))?;
    ensure!(status == 201, "create: {status} {zone}");
    let created = kdig(server.udp_addr(), &[ZONE, "SOA"])?;
    let serial: u32 = created
        .answers("SOA")
        .first()
        .and_then(|r| r.data.split_whitespace().nth(2)?.parse().ok())
        .with_context(|| format!("sixgate serves no SOA for {ZONE}:\n{created}"))?;
    for s in [&knot, &named, &nsd] {
        s.wait_for_serial(ZONE, serial)
            .with_context(|| format!("sixgate's log:\n{}", server.stderr_tail(60)))?;
    }

    // A change that waits: answered once all three serve it, so each of
    // them is asked once, right after the answer, without polling.
    let zone = ZONE.trim_end_matches('.');
    let path = format!("/v1/zones/{zone}/rrsets/www.{zone}/A?wait=secondaries&timeout=30");
    let (status, answer) = call(&server, "PUT", &path, Some(json!({"ttl": 60, "records": ["192.0.2.77"]})))?;
    ensure!(status == 200, "PUT ?wait=secondaries: {status} {answer}");
    for s in [&knot, &named, &nsd] {
        let got = a_of(s, &format!("www.{ZONE}"))?;
        ensure!(got == ["192.0.2.77"], "{} answers {got:?} right after the write was acknowledged", s.peer());
    }
    let listed = answer["secondaries"].as_array().context("no secondaries in the answer")?;
    ensure!(listed.len() == 3, "three secondaries carry the zone: {answer}");
    let new = kdig(server.udp_addr(), &[ZONE, "SOA"])?;
    let new_serial: u32 = new
        .answers("SOA")
        .first()
        .and_then(|r| r.data.split_whitespace().nth(2)?.parse().ok())
        .context("no SOA after the write")?;
    for entry in listed {
        ensure!(entry["serial"].as_u64() == Some(u64::from(new_serial)), "{entry} is not at {new_serial}");
    }
    // And it came by IXFR on each, after the first load by AXFR.
    for s in [&knot, &named, &nsd] {
        ensure!(
            transfer_kind(s, ZONE, new_serial)? == XfrKind::Ixfr,
            "{} did not get serial {new_serial} by IXFR:\n{}",
            s.peer(),
            s.log_text()
        );
    }

    // A zone deleted through the API leaves the catalog followers.
    let (status, body) = call(&server, "DELETE", &format!("/v1/zones/{zone}"), None)?;
    ensure!(status == 204 || status == 200, "delete: {status} {body}");
    for s in [&knot, &named] {
        s.wait_for_absent(ZONE)?;
    }
    Ok(())
}
