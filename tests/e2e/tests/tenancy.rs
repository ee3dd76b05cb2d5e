//! Sitting ducks end to end: per-account nameserver names and unverified
//! customer zones that are not answered.
//!
//! Two `sixgate serve` processes on loopback. The first plays the parent
//! (the registry's `test.` zone, an operator zone changed with
//! `sixgate record set` as a registrant would at the registry); it is
//! also the resolver the second one's delegation checks ask
//! (`[verify] resolvers`), so a check sees the parent's referral. The
//! second is the hosting platform under test, with
//! `[tenancy] nameserver_domain`, so each account has names of its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sixgate_e2e::http::HttpResponse;
use sixgate_e2e::{Cli, QuerySpec, Response, Sixgate, ZoneFile, udp_exchange, wait_until};

const TIMEOUT: Duration = Duration::from_secs(30);
/// DNS rcodes.
const NOERROR: u16 = 0;
const REFUSED: u16 = 5;

fn call(base: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> Result<HttpResponse> {
    sixgate_e2e::http::bearer(method, base, path, token, body.as_ref(), TIMEOUT)
}

fn json_of(r: &HttpResponse) -> Result<Value> {
    serde_json::from_str(&r.body).with_context(|| format!("not JSON: {}", r.body))
}

/// The rcode and the A records of one UDP query for `name`.
fn ask_a(server: SocketAddr, name: &str) -> Result<(u16, Vec<Ipv4Addr>)> {
    let query = QuerySpec::parse(name, 1)?.with_id(0x5d5d).encode()?;
    let bytes = udp_exchange(server, &query, Duration::from_secs(2), 3)?.context("no DNS answer")?;
    let resp = Response::parse(&bytes)?;
    let addrs = resp
        .answers_of(1)
        .filter_map(|rr| <[u8; 4]>::try_from(&rr.rdata[..]).ok().map(Ipv4Addr::from))
        .collect();
    Ok((resp.rcode(), addrs))
}

/// An account's nameservers as the API shows them.
fn nameservers(account: &Value) -> Result<Vec<String>> {
    let list = account["nameservers"].as_array().context("no nameservers")?;
    Ok(list.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
}

/// Delegates `victim.test.` at the parent to `names`, as the registrant
/// would at the registry.
fn delegate(parent: &Cli, names: &[String]) -> Result<()> {
    let mut args = vec!["test", "victim", "NS", "--ttl", "60"];
    args.extend(names.iter().map(String::as_str));
    parent.run(&["record", "set"], &args)?.ok()?;
    Ok(())
}

fn zone_file(dir: &Path, origin: &str, text: &str) -> Result<ZoneFile> {
    let path = dir.join(format!("{origin}zone"));
    std::fs::write(&path, text)?;
    Ok(ZoneFile::new(origin, path))
}

/// A zone created by account B for a name whose parent still delegates
/// to account A's names (left behind when A deleted its zone), or to the
/// shared names, is not answered and never becomes verified; once the
/// parent delegates to B's own names, it is verified and answered.
#[test]
fn a_lame_delegation_to_one_accounts_names_is_not_taken_over_by_another() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let parent = Sixgate::start(&[zone_file(
        dir.path(),
        "test.",
        "$ORIGIN test.\n$TTL 60\n@ SOA ns.test. hostmaster 1 3600 900 604800 60\n@ NS ns\nns A 192.0.2.1\n",
    )?])?;
    let config = dir.path().join("sixgate.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nnameservers = [\"ns1.shared.example.\"]\n\
             [tenancy]\nnameserver_domain = \"ns.sixgate.example\"\nnameserver_count = 2\n\
             [verify]\nresolvers = [\"{}\"]\ninterval = 1\n",
            parent.udp_addr()
        ),
    )?;
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let admin = cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_string();
    let server = Sixgate::serve_with(cli.clone(), &["--config", &config.display().to_string()])?;
    let base = server.api_url().context("no API")?;
    let dns = server.udp_addr();

    let mut own = Vec::new();
    for who in ["alice", "bob"] {
        let r = call(&base, "POST", "/v1/accounts", &admin, Some(json!({"name": who})))?;
        ensure!(r.status == 201, "{who}: {} {}", r.status, r.body);
        let token = cli.run(&["token", "create"], &["--account", who])?.ok()?.stdout.trim().to_string();
        // Each account reads its own names from the API.
        let me = json_of(&call(&base, "GET", "/v1/account", &token, None)?)?;
        let names = nameservers(&me)?;
        ensure!(names.len() == 2 && names.iter().all(|n| n.ends_with(".ns.sixgate.example.")), "{who}: {me}");
        own.push((token, names));
    }
    let [(alice, alice_ns), (bob, bob_ns)] = <[_; 2]>::try_from(own).ok().context("two accounts")?;
    ensure!(alice_ns != bob_ns, "accounts share names: {alice_ns:?}");
    // The CLI shows the same names, on the data directory and, with the
    // customer's own token, through the API.
    let shown: Vec<String> = bob_ns.iter().map(|n| format!("nameserver\t{n}")).collect();
    let on_disk = cli.run(&["account", "show"], &["bob"])?.ok()?;
    let api_out = std::process::Command::new(cli.binary())
        .args(["account", "show"])
        .env("SIXGATE_API", &base)
        .env("SIXGATE_TOKEN", &bob)
        .output()?;
    for out in [on_disk.stdout.clone(), String::from_utf8_lossy(&api_out.stdout).into_owned()] {
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("nameserver\t")).collect();
        ensure!(lines == shown, "account show: {out:?}");
    }
    let list = cli.run(&["account", "list"], &[])?.ok()?;
    ensure!(list.stdout.lines().any(|l| l.starts_with("bob\t") && l.ends_with(&bob_ns.join(","))), "{list}");
    let zone_of = |token: &str| -> Result<Value> {
        json_of(&call(&base, "GET", "/v1/zones/victim.test", token, None)?)
    };

    // Alice's zone, delegated to her names: not answered until verified.
    delegate(parent.cli(), &alice_ns)?;
    let r = call(&base, "POST", "/v1/zones", &alice, Some(json!({"name": "victim.test"})))?;
    ensure!(r.status == 201, "alice: {} {}", r.status, r.body);
    let z = json_of(&r)?;
    ensure!(z["verified"] == false, "{z}");
    let ns = call(&base, "GET", "/v1/zones/victim.test/rrsets/victim.test/NS", &alice, None)?;
    ensure!(json_of(&ns)?["records"] == json!(alice_ns), "new zones use the account's names: {}", ns.body);
    ensure!(ask_a(dns, "victim.test.")?.0 == REFUSED, "an unverified zone is answered");
    wait_until("alice's zone to be verified", TIMEOUT, || {
        Ok((zone_of(&alice)?["verified"] == true).then_some(()))
    })?;
    wait_until("alice's zone to be answered", TIMEOUT, || {
        Ok((ask_a(dns, "victim.test.")?.0 == NOERROR).then_some(()))
    })?;

    // Alice leaves; the delegation to her names stays behind.
    ensure!(call(&base, "DELETE", "/v1/zones/victim.test", &alice, None)?.status == 204);
    ensure!(ask_a(dns, "victim.test.")?.0 == REFUSED);

    // Bob takes the name: created, but neither answered nor verified.
    let r = call(&base, "POST", "/v1/zones", &bob, Some(json!({"name": "victim.test"})))?;
    ensure!(r.status == 201, "bob: {} {}", r.status, r.body);
    let r = call(
        &base,
        "PUT",
        "/v1/zones/victim.test/rrsets/www.victim.test/A",
        &bob,
        Some(json!({"ttl": 60, "records": ["192.0.2.66"]})),
    )?;
    ensure!(r.status == 200, "{} {}", r.status, r.body);
    let checked = wait_until("bob's zone to be checked", TIMEOUT, || {
        let z = zone_of(&bob)?;
        Ok(z["verify_error"].as_str().is_some_and(|e| e.contains(&alice_ns[0])).then_some(z))
    })?;
    ensure!(
        checked["verified"] == false,
        "a lame delegation to alice's names verified bob's zone: {checked}"
    );
    ensure!(ask_a(dns, "www.victim.test.")? == (REFUSED, vec![]), "bob's unverified zone is answered");

    // The shared names, without the account's own, prove nothing either.
    delegate(parent.cli(), &["ns1.shared.example.".to_string()])?;
    let checked = wait_until("bob's zone to be checked again", TIMEOUT, || {
        let z = zone_of(&bob)?;
        Ok(z["verify_error"].as_str().is_some_and(|e| e.contains("ns1.shared.example.")).then_some(z))
    })?;
    ensure!(checked["verified"] == false, "the shared names verified bob's zone: {checked}");
    ensure!(ask_a(dns, "www.victim.test.")?.0 == REFUSED);

    // The registrant delegates to Bob's names: verified and answered.
    delegate(parent.cli(), &bob_ns)?;
    wait_until("bob's zone to be verified", TIMEOUT, || {
        Ok((zone_of(&bob)?["verified"] == true).then_some(()))
    })?;
    let answer = wait_until("bob's zone to be answered", TIMEOUT, || {
        let a = ask_a(dns, "www.victim.test.")?;
        Ok((a.0 == NOERROR).then_some(a))
    })?;
    ensure!(answer.1 == vec![Ipv4Addr::new(192, 0, 2, 66)], "{answer:?}");
    Ok(())
}
