//! Fault 1 of issue 11: one acme-only credential could grow an RRset past
//! what a DNS message holds, and so stop DNS for every tenant, across
//! restarts too. The publisher could not build the zone, `serve` exited at
//! its next start, and nothing was served at all.
//!
//! Each test hosts two zones on one server: `example.test`, for which the
//! credential is made, and `other.test`, which the credential cannot touch
//! and which must keep answering whatever happens to the first. Three tests
//! try to grow `_acme-challenge.example.test. TXT` past the `rrset_octets`
//! limit, each through one door an acme-only credential opens (the native
//! API, lego's httpreq, RFC 2136 UPDATE with TSIG): the write that would
//! cross the limit is refused whole, naming the limit; the zone's serial
//! and its records stay as they were, both zones keep answering, and
//! `serve` stops and starts again cleanly on the same data directory with
//! everything that was accepted. The fourth plants an
//! oversized RRset in `sixgate.db` the way an older version could have
//! written it: `serve` starts anyway, holds that one zone, says so in
//! `zone list` and in the API, and serves the other.
//!
//! The limit's name, its size and the text of the refusal are the ones the
//! issue's contract fixes: `<what>: <value> over the rrset_octets limit of
//! 32768`, a 422 `application/problem+json` from the API, REFUSED from
//! UPDATE.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sixgate_e2e::http::{HttpResponse, basic_auth, request};
use sixgate_e2e::kdig::kdig;
use sixgate_e2e::knot::which;
use sixgate_e2e::plant::{plant_rrset, txt_rdata};
use sixgate_e2e::{Cli, Sixgate, ZoneFile, wait_until};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The zone the acme-only credentials are made for.
const ZONE: &str = "example.test.";
/// The other zone on the same server.
const OTHER_ZONE: &str = "other.test.";
/// Where ACME DNS-01 challenges go (RFC 8555 §8.4).
const CHALLENGE: &str = "_acme-challenge.example.test.";
/// A name in no zone of the server.
const NOT_HOSTED: &str = "nothere.test.";

/// The `rrset_octets` limit: octets of RDATA plus overhead in one RRset,
/// for every account.
const RRSET_OCTETS: usize = 32768;
/// What a refusal for that limit says (with `<what>: <value>` before it).
const OVER_THE_LIMIT: &str = "over the rrset_octets limit of 32768";
/// The most a server could count for one record on top of its RDATA: the
/// whole resource record in uncompressed wire form (RFC 1035 §4.1.3), owner,
/// type, class, TTL and RDLENGTH. A limit on "RDATA plus overhead" counts
/// somewhere between the RDATA alone and this.
const MOST_OVERHEAD: usize = CHALLENGE.len() + 1 + 10;
/// What the store could not build before the fix: an RRset whose RDATA,
/// with their two-octet lengths, is over 65535 octets did not fit the
/// in-memory zone.
const OLD_CEILING: usize = 65535;

fn zone_text(origin: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n\
         ns1 A 192.0.2.53\nwww A 192.0.2.1\n"
    )
}

/// A fresh data directory holding both zones, imported with the CLI.
fn two_zones() -> Result<(tempfile::TempDir, Cli)> {
    let data = tempfile::Builder::new().prefix("sixgate-e2e-limits-").tempdir()?;
    let cli = Cli::new(data.path())?;
    let files = tempfile::tempdir()?;
    for origin in [ZONE, OTHER_ZONE] {
        let path = files.path().join(format!("{origin}zone"));
        std::fs::write(&path, zone_text(origin))?;
        cli.import(&ZoneFile::new(origin, path))?;
    }
    Ok((data, cli))
}

/// `sixgate token create --zone example.test --acme-only`.
fn acme_token(cli: &Cli) -> Result<String> {
    let out = cli.run(&["token", "create"], &["--zone", "example.test", "--acme-only"])?.ok()?;
    Ok(out.stdout.trim().to_owned())
}

/// `sixgate token create`: an admin token.
fn admin_token(cli: &Cli) -> Result<String> {
    Ok(cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_owned())
}

fn api(server: &Sixgate) -> Result<String> {
    server.api_url().context("serve printed no `listening api` line")
}

fn call(base: &str, method: &str, path: &str, token: &str, body: Option<&Value>) -> Result<HttpResponse> {
    sixgate_e2e::http::bearer(method, base, path, token, body, TIMEOUT)
}

/// A distinct TXT character-string of `len` octets, the `i`th of a set.
fn value(i: usize, len: usize) -> String {
    let head = format!("v{i:05}-");
    format!("{head}{}", "x".repeat(len.saturating_sub(head.len())))
}

/// The zone's SOA serial, from kdig; the zone must be answered with
/// authority.
fn serial(dns: SocketAddr, zone: &str) -> Result<u32> {
    let dig = kdig(dns, &[zone, "SOA"])?;
    ensure!(dig.status == "NOERROR" && dig.aa(), "{zone} SOA is not answered with authority:\n{dig}");
    let soa = dig.answers("SOA");
    let data = soa.first().map(|r| r.data.as_str()).with_context(|| format!("no SOA in\n{dig}"))?;
    data.split_whitespace().nth(2).and_then(|s| s.parse().ok()).with_context(|| format!("SOA {data:?}"))
}

/// Both zones answer their SOA and `www` with authority.
fn every_zone_answers(dns: SocketAddr) -> Result<()> {
    for zone in [ZONE, OTHER_ZONE] {
        serial(dns, zone)?;
        let www = format!("www.{zone}");
        let dig = kdig(dns, &[&www, "A"])?;
        ensure!(
            dig.status == "NOERROR" && dig.aa() && dig.data("A") == ["192.0.2.1"],
            "{www} A is not served:\n{dig}"
        );
    }
    Ok(())
}

/// How many TXT records DNS serves at the challenge name (over TCP: the
/// RRsets here do not fit a UDP answer).
fn served_challenges(dns: SocketAddr) -> Result<usize> {
    let dig = kdig(dns, &["+tcp", CHALLENGE, "TXT"])?;
    ensure!(matches!(dig.status.as_str(), "NOERROR" | "NXDOMAIN") && dig.aa(), "{CHALLENGE} TXT:\n{dig}");
    Ok(dig.answers("TXT").len())
}

/// Waits until DNS serves `n` TXT records at the challenge name.
fn wait_for_challenges(dns: SocketAddr, n: usize) -> Result<()> {
    wait_until(&format!("{n} TXT records to be served at {CHALLENGE}"), TIMEOUT, || {
        Ok((served_challenges(dns)? == n).then_some(()))
    })
}

/// The API's refusal of a write over the `rrset_octets` limit: 422, a
/// problem document, and a detail that names the RRset and the limit.
fn ensure_refused_for_size(r: &HttpResponse, what: &str) -> Result<()> {
    ensure!(
        r.status == 422,
        "{what}: an RRset over the limit must get 422, got {} {}",
        r.status,
        r.body.chars().take(400).collect::<String>()
    );
    let media = r.header("content-type").unwrap_or_default();
    ensure!(media.starts_with("application/problem+json"), "{what}: Content-Type {media:?}");
    let problem: Value = serde_json::from_str(&r.body).with_context(|| format!("{what}: {}", r.body))?;
    let detail = problem["detail"].as_str().unwrap_or_default();
    ensure!(
        detail.contains(CHALLENGE) && detail.contains(OVER_THE_LIMIT),
        "{what}: the detail must name {CHALLENGE} and the rrset_octets limit: {problem}"
    );
    Ok(())
}

/// A regression test for fault 1 through the native API: 280 TXT values of
/// 250 octets (70 KB of RDATA) in one PUT by an acme-only token.
#[test]
fn an_acme_only_token_cannot_grow_an_rrset_past_the_limit() -> Result<()> {
    let (_data, cli) = two_zones()?;
    let token = acme_token(&cli)?;
    let server = Sixgate::serve(cli)?;
    let (base, dns) = (api(&server)?, server.udp_addr());
    let path = format!("/v1/zones/example.test/rrsets/{CHALLENGE}/TXT");
    let before = serial(dns, ZONE)?;

    let records: Vec<String> = (0..280).map(|i| format!("\"{}\"", value(i, 250))).collect();
    let r = call(&base, "PUT", &path, &token, Some(&json!({"ttl": 60, "records": records})))?;
    ensure_refused_for_size(&r, "PUT of 280 TXT values of 250 octets")?;
    ensure!(serial(dns, ZONE)? == before, "the refused PUT changed the serial of {ZONE}");
    ensure!(served_challenges(dns)? == 0, "the refused PUT left records at {CHALLENGE}");
    every_zone_answers(dns)?;

    // The limit refuses size, not the name or the token.
    let sane = json!({"ttl": 60, "records": ["\"one\"", "\"two\""]});
    let r = call(&base, "PUT", &path, &token, Some(&sane))?;
    ensure!(r.status == 200, "a PUT of two TXT values: {} {}", r.status, r.body);
    wait_for_challenges(dns, 2)?;
    ensure!(serial(dns, ZONE)? != before, "an accepted PUT left the serial of {ZONE} at {before}");

    let server = server.restart()?;
    every_zone_answers(server.udp_addr())?;
    ensure!(served_challenges(server.udp_addr())? == 2, "the two TXT values did not survive the restart");
    Ok(())
}

/// lego's httpreq `present` adds one value per call and keeps the others
/// (an apex and a wildcard share the name), so values of the largest size
/// the endpoint takes accumulate until one call would cross the limit.
#[test]
fn httpreq_present_cannot_grow_an_rrset_past_the_limit() -> Result<()> {
    // The largest value `present` takes (crates/api/src/httpreq.rs
    // MAX_VALUE), stored as five character-strings: 1029 octets of RDATA.
    const VALUE: usize = 1024;
    const RDATA: usize = VALUE + VALUE.div_ceil(255);
    // Every RRset up to FITS values is under the limit however the
    // overhead is counted, and one of more than CROSSES values is over it
    // even as RDATA alone: the call that is refused is one in between.
    // (Before the fix every call was accepted, up to the 64th, which took
    // the RRset past what the store could build.)
    const FITS: usize = RRSET_OCTETS / (RDATA + MOST_OVERHEAD);
    const CROSSES: usize = RRSET_OCTETS / RDATA;

    let (_data, cli) = two_zones()?;
    let token = acme_token(&cli)?;
    let server = Sixgate::serve(cli)?;
    let (base, dns) = (api(&server)?, server.udp_addr());
    let auth = basic_auth("lego", &token);
    let present = |i: usize| -> Result<HttpResponse> {
        let body = json!({"fqdn": CHALLENGE, "value": value(i, VALUE)}).to_string();
        request(
            "POST",
            &format!("{base}/v1/acme/httpreq/present"),
            &[("Authorization", &auth)],
            Some(&body),
            TIMEOUT,
        )
    };

    let mut accepted = 0;
    loop {
        // Read the serial only once the last accepted value is served, so
        // that a slow publication cannot pass for a change by this call.
        wait_for_challenges(dns, accepted)?;
        let before = serial(dns, ZONE)?;
        let call = accepted + 1;
        let r = present(accepted)?;
        if !(200..300).contains(&r.status) {
            ensure_refused_for_size(&r, &format!("present #{call}"))?;
            ensure!(serial(dns, ZONE)? == before, "the refused present #{call} changed the serial");
            break;
        }
        accepted = call;
        ensure!(
            accepted <= CROSSES,
            "present #{call} of a {VALUE}-character value was accepted: {CHALLENGE} TXT now holds \
             {} octets of RDATA, over the limit of {RRSET_OCTETS}",
            accepted * RDATA
        );
    }
    ensure!(
        accepted >= FITS,
        "present #{} was refused, but {} values fit under {RRSET_OCTETS} octets",
        accepted + 1,
        accepted + 1
    );
    wait_for_challenges(dns, accepted)?;
    every_zone_answers(dns)?;

    let server = server.restart()?;
    every_zone_answers(server.udp_addr())?;
    ensure!(
        served_challenges(server.udp_addr())? == accepted,
        "the accepted values did not survive the restart"
    );
    Ok(())
}

/// `sixgate tsig create acme-key --zone example.test --acme-only`, in
/// knsupdate's `-y` form.
fn acme_tsig_key(cli: &Cli) -> Result<String> {
    let out = cli.run(&["tsig", "create"], &["acme-key", "--zone", "example.test", "--acme-only"])?.ok()?;
    Ok(out.stdout.trim().to_owned())
}

/// One UPDATE over TCP, signed with `key`, adding TXT values `range` at
/// the challenge name; returns knsupdate's output with the answer.
fn update_adding(dns: SocketAddr, key: &str, range: std::ops::Range<usize>) -> Result<String> {
    let mut script = format!("server {} {}\nzone {ZONE}\n", dns.ip(), dns.port());
    for i in range {
        script.push_str(&format!("update add {CHALLENGE} 60 TXT \"{}\"\n", value(i, 250)));
    }
    script.push_str("send\nanswer\n");
    let mut child = Command::new(which("knsupdate")?)
        .args(["-y", key, "-v", "-t", "10", "-r", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("knsupdate stdin")?;
    // The script is larger than a pipe holds on some systems: write it
    // while knsupdate reads.
    let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output()?;
    writer.join().map_err(|_| anyhow::anyhow!("the knsupdate writer panicked"))??;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// RFC 2136 adds accumulate too: two UPDATEs signed with an acme-only
/// TSIG key, the first well under the limit, the second taking the RRset
/// past what the old store could build. (One UPDATE cannot carry the
/// whole 65 KB: a DNS message is at most 65535 octets.)
#[test]
fn an_acme_only_tsig_key_cannot_grow_an_rrset_past_the_limit() -> Result<()> {
    // 250-octet strings: 251 octets of RDATA each.
    const RDATA: usize = 251;
    const FIRST: usize = 100;
    const TOTAL: usize = 260;
    const _: () = assert!(FIRST * (RDATA + MOST_OVERHEAD) <= RRSET_OCTETS);
    const _: () = assert!(TOTAL * (RDATA + 2) > OLD_CEILING);

    let (_data, cli) = two_zones()?;
    let key = acme_tsig_key(&cli)?;
    let server = Sixgate::serve(cli)?;
    let dns = server.udp_addr();

    let out = update_adding(dns, &key, 0..FIRST)?;
    ensure!(out.contains("status: NOERROR"), "an UPDATE adding {FIRST} values fits the limit:\n{out}");
    wait_for_challenges(dns, FIRST)?;
    let before = serial(dns, ZONE)?;

    let out = update_adding(dns, &key, FIRST..TOTAL)?;
    ensure!(
        out.contains("REFUSED"),
        "an UPDATE taking {CHALLENGE} TXT to {TOTAL} values of {RDATA} octets must be REFUSED:\n{}",
        out.lines().filter(|l| !l.contains(" TXT ")).collect::<Vec<_>>().join("\n")
    );
    ensure!(serial(dns, ZONE)? == before, "the refused UPDATE changed the serial of {ZONE}");
    ensure!(served_challenges(dns)? == FIRST, "the refused UPDATE changed {CHALLENGE} TXT");
    every_zone_answers(dns)?;

    let server = server.restart()?;
    every_zone_answers(server.udp_addr())?;
    ensure!(served_challenges(server.udp_addr())? == FIRST, "the first UPDATE did not survive the restart");
    Ok(())
}

/// The zones `sixgate zone list` shows, with the last column (the state).
fn zone_states(cli: &Cli) -> Result<Vec<(String, String)>> {
    let out = cli.run(&["zone", "list"], &[])?.ok()?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            Some(((*columns.first()?).to_owned(), (*columns.last()?).to_owned()))
        })
        .collect())
}

/// A store that already holds an RRset the server cannot build, as an
/// older version could have written it through any of the doors above:
/// `serve` starts anyway, holds that zone with the reason, and serves the
/// other.
#[test]
fn a_stored_oversized_rrset_holds_only_its_zone() -> Result<()> {
    let (data, cli) = two_zones()?;
    let admin = admin_token(&cli)?;
    // 280 values of 250 octets: 70840 octets with their lengths.
    let rdatas = (0..280).map(|i| txt_rdata(&[&value(i, 250)])).collect::<Result<Vec<_>>>()?;
    plant_rrset(data.path(), ZONE, CHALLENGE, 16, 60, &rdatas)?;

    let mut server = Sixgate::serve(cli.clone())?;
    let (base, dns) = (api(&server)?, server.udp_addr());
    let states = wait_until(&format!("`zone list` to show {ZONE} held"), TIMEOUT, || {
        let states = zone_states(&cli)?;
        let held = states.iter().any(|(zone, state)| zone == ZONE && state.starts_with("held ("));
        Ok(held.then_some(states))
    })?;
    let state_of = |zone: &str| states.iter().find(|(z, _)| z == zone).map(|(_, s)| s.as_str());
    let held = state_of(ZONE).unwrap_or_default();
    ensure!(held.ends_with(')') && held.len() > "held ()".len(), "{ZONE}: state {held:?}, no reason");
    ensure!(state_of(OTHER_ZONE) == Some("served"), "zone list: {states:?}");

    let show = |zone: &str| -> Result<Value> {
        let r = call(&base, "GET", &format!("/v1/zones/{zone}"), &admin, None)?;
        ensure!(r.status == 200, "GET /v1/zones/{zone}: {} {}", r.status, r.body);
        serde_json::from_str(&r.body).with_context(|| r.body.clone())
    };
    let held = show(ZONE)?;
    ensure!(held["held"].as_str().is_some_and(|reason| !reason.is_empty()), "{ZONE} is not held: {held}");
    let served = show(OTHER_ZONE)?;
    ensure!(served.get("held") == Some(&Value::Null), "{OTHER_ZONE} must show \"held\": null: {served}");

    // The other zone is served; the held one is answered as a zone that is
    // not here.
    serial(dns, OTHER_ZONE)?;
    let www = kdig(dns, &["www.other.test.", "A"])?;
    ensure!(www.status == "NOERROR" && www.data("A") == ["192.0.2.1"], "{www}");
    let absent = kdig(dns, &[NOT_HOSTED, "SOA"])?;
    for (name, rtype) in [(ZONE, "SOA"), ("www.example.test.", "A"), (CHALLENGE, "TXT")] {
        let dig = kdig(dns, &["+tcp", name, rtype])?;
        ensure!(
            dig.status == absent.status && dig.answer.is_empty(),
            "{name} {rtype} in the held zone is answered unlike a zone that is not here \
             ({}):\n{dig}",
            absent.status
        );
    }
    ensure!(server.is_running(), "sixgate serve exited: {}", server.stderr_tail(20));
    Ok(())
}

/// The journal is the audit log: every write through the one write path
/// is recorded with its actor. A zone imported with the CLI, a PUT with an
/// API token and an UPDATE signed with a TSIG key each show who made them,
/// in `sixgate audit` and in `GET /v1/zones/{zone}/audit`.
#[test]
fn the_audit_log_names_the_actor_of_api_update_and_cli_writes() -> Result<()> {
    let (_data, cli) = two_zones()?;
    let token = acme_token(&cli)?;
    let admin = admin_token(&cli)?;
    let key = acme_tsig_key(&cli)?;
    let server = Sixgate::serve(cli.clone())?;
    let (base, dns) = (api(&server)?, server.udp_addr());

    let path = format!("/v1/zones/example.test/rrsets/{CHALLENGE}/TXT");
    let r = call(&base, "PUT", &path, &token, Some(&json!({"ttl": 60, "records": ["\"by-api\""]})))?;
    ensure!(r.status == 200, "PUT: {} {}", r.status, r.body);
    wait_for_challenges(dns, 1)?;
    let out = update_adding(dns, &key, 0..1)?;
    ensure!(out.contains("status: NOERROR"), "UPDATE:\n{out}");
    wait_for_challenges(dns, 2)?;

    let log = cli.run(&["audit"], &["example.test"])?.ok()?.stdout;
    let entries: Vec<Vec<&str>> =
        log.lines().filter(|l| !l.starts_with('\t')).map(|l| l.split('\t').collect()).collect();
    // Newest first: the UPDATE, the PUT, the import.
    let actors: Vec<&str> = entries.iter().filter_map(|e| e.get(5).copied()).collect();
    ensure!(actors.len() == 3, "three changes to {ZONE} expected:\n{log}");
    ensure!(actors[0] == "tsig:acme-key.", "the UPDATE's actor is {:?}:\n{log}", actors[0]);
    ensure!(actors[1].starts_with("token:"), "the PUT's actor is {:?}:\n{log}", actors[1]);
    ensure!(actors[2].starts_with("cli:"), "the import's actor is {:?}:\n{log}", actors[2]);
    ensure!(entries.iter().all(|e| e.get(2) == Some(&ZONE)), "entries of other zones listed:\n{log}");
    ensure!(
        log.contains("\t+ _acme-challenge.example.test. 60 IN TXT \"by-api\""),
        "the PUT's record:\n{log}"
    );

    let r = call(&base, "GET", "/v1/zones/example.test/audit", &admin, None)?;
    ensure!(r.status == 200, "GET audit: {} {}", r.status, r.body);
    let v: Value = serde_json::from_str(&r.body)?;
    let api_actors: Vec<&str> =
        v.as_array().context("a list")?.iter().filter_map(|e| e["actor"].as_str()).collect();
    ensure!(api_actors == actors, "the API's audit log {api_actors:?} differs from the CLI's {actors:?}");
    // An acme-only token may not read the zone's history.
    let r = call(&base, "GET", "/v1/zones/example.test/audit", &token, None)?;
    ensure!(r.status == 403 || r.status == 404, "an acme token read the audit log: {}", r.status);
    Ok(())
}
