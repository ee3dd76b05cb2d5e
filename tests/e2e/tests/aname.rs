//! ANAME (ALIAS) records end to end.
//!
//! An ANAME at a zone's apex makes sixgate answer A and AAAA queries there
//! with the addresses of another name, its target. These tests drive the
//! real binary as an operator would: zone files with `zone import`, changes
//! with `record set`, `aname status` and `zone export`, and `kdig` as the
//! client.
//!
//! - A second `sixgate serve` plays the target's DNS provider, on a fixed
//!   loopback port so that it can be stopped and started again where the
//!   customer's server expects it: the customer follows its changes, keeps
//!   the last good addresses while it is down, and drops them once the
//!   target is gone (NXDOMAIN).
//! - A target inside a zone the same server serves is resolved internally:
//!   the configured resolver is a UDP socket the test owns, and it must
//!   never receive a datagram.
//! - Invalid ANAMEs are refused by `zone import` and the HTTP API, with a
//!   reason about the ANAME, and nothing of a refused change lands. An
//!   ANAME whose target is its own owner is refused or reported as a loop.
//! - `zone export` prints the ANAME; `--as-served` prints the derived
//!   addresses and the ANAME as RFC 3597 `TYPE65401`, which knotd loads as
//!   an unknown type.
//!
//! Every wait polls real behaviour with a generous deadline. The provider's
//! records have a TTL of 1 s and the customer's `[aname] min_refresh` is
//! 1 s, so each refresh period is about a second; the deadlines allow for
//! a loaded two-core machine, not for the nominal timing.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use sixgate_e2e::aname::{AnameStatus, now, rfc3339_utc, same_name, status, status_of};
use sixgate_e2e::http::HttpResponse;
use sixgate_e2e::kdig::{Dig, kdig};
use sixgate_e2e::knot::free_port_pair;
use sixgate_e2e::{Cli, CliOutput, Knot, Sixgate, ZoneFile, wait_until};

/// How long a change at an external provider may take to be served; the
/// refresh period is about a second.
const PROPAGATION: Duration = Duration::from_secs(30);

/// How long recovery after an outage may take: failed refreshes back off,
/// up to `max_refresh` (10 s here) or more.
const RECOVERY: Duration = Duration::from_secs(60);

/// How long a change to a target inside sixgate's own zones may take.
const INTERNAL: Duration = Duration::from_secs(10);

/// How long a server may take to start.
const START: Duration = Duration::from_secs(30);

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

const CUSTOMER: &str = "example.test";
const APEX: &str = "example.test.";
const TARGET: &str = "host.provider.test.";

/// `host.provider.test.` in wire format, upper-case hex: what an ANAME's
/// RDATA is (an uncompressed name), shown by clients that do not know the
/// type as `\# 20 <this>`.
const TARGET_WIRE_HEX: &str = "04686F73740870726F7669646572047465737400";

/// The customer's zone. Line 6 is the ANAME; tests that break the zone
/// append lines after the last one.
const EXAMPLE: &str = "$ORIGIN example.test.\n\
$TTL 300\n\
@ SOA ns1.example.test. hostmaster 1 3600 900 604800 300\n\
@ NS ns1\n\
@ MX 10 mail\n\
@ 300 ANAME host.provider.test.\n\
ns1 A 192.0.2.53\n\
mail A 192.0.2.25\n\
www A 192.0.2.80\n";

/// The line of [`EXAMPLE`] that holds the ANAME.
const EXAMPLE_ANAME_LINE: usize = 6;

/// The provider's zone: `host` has one A and one AAAA, everything TTL 1.
const PROVIDER: &str = "$ORIGIN provider.test.\n\
$TTL 1\n\
@ SOA ns1.provider.test. hostmaster 1 3600 900 604800 1\n\
@ NS ns1\n\
ns1 A 192.0.2.1\n\
host A 192.0.2.10\n\
host AAAA 2001:db8::10\n";

fn write_zone(dir: &Path, origin: &str, text: &str) -> Result<ZoneFile> {
    let path = dir.join(format!("{origin}zone"));
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(ZoneFile::new(origin, path))
}

/// A configuration whose ANAME targets outside sixgate's zones are resolved
/// through `resolver`, refreshed at most every second.
fn aname_config(dir: &Path, resolver: SocketAddr) -> Result<PathBuf> {
    let path = dir.join("sixgate.toml");
    // The provider is an authoritative server asked as if it were a
    // resolver: it cannot answer for the root, so these tests take its
    // answers unvalidated (validation has its own tests, in the aname
    // crate, against a signed lab tree).
    fs::write(
        &path,
        format!(
            "[aname]\nresolvers = [\"{resolver}\"]\nmin_refresh = 1\nmax_refresh = 10\ntrust_anchor = \"none\"\n"
        ),
    )?;
    Ok(path)
}

fn serve_with_config(cli: Cli, config: &Path) -> Result<Sixgate> {
    Sixgate::serve_with(cli, &["--config", &config.display().to_string()])
}

/// One server with both zones imported by the operator (so the provider's
/// zone may answer for the customer's ANAME internally), its only upstream
/// resolver `resolver`.
fn serve_both_zones(files: &Path, resolver: SocketAddr) -> Result<(Cli, Sixgate)> {
    let data = files.join("data");
    let cli = Cli::new(&data)?;
    cli.import(&write_zone(files, "provider.test.", PROVIDER)?)?;
    cli.import(&write_zone(files, "example.test.", EXAMPLE)?)?;
    let server = serve_with_config(cli.clone(), &aname_config(files, resolver)?)?;
    Ok((cli, server))
}

/// `kdig +norec NAME TYPE` against `server`.
fn ask(server: SocketAddr, name: &str, rtype: &str) -> Result<Dig> {
    kdig(server, &["+norec", name, rtype])
}

/// The apex's A and AAAA answers, once both are exactly `v4` and `v6`
/// (sorted) with NOERROR and AA.
fn wait_for_apex_addresses(
    server: SocketAddr,
    v4: &[&str],
    v6: &[&str],
    deadline: Duration,
) -> Result<(Dig, Dig)> {
    let mut last = None;
    let result = wait_until(&format!("{APEX} A {v4:?} and AAAA {v6:?}"), deadline, || {
        let a = ask(server, APEX, "A")?;
        let aaaa = ask(server, APEX, "AAAA")?;
        let done = [(&a, "A", v4), (&aaaa, "AAAA", v6)]
            .iter()
            .all(|(dig, rtype, want)| dig.status == "NOERROR" && dig.aa() && dig.data(rtype) == *want);
        if done {
            return Ok(Some((a, aaaa)));
        }
        last = Some((a, aaaa));
        Ok(None)
    });
    result.with_context(|| match &last {
        Some((a, aaaa)) => format!("last answers:\n{a}\n{aaaa}"),
        None => "no answer parsed".to_owned(),
    })
}

/// Checks an A or AAAA answer at the apex: NOERROR, AA, every record owned
/// by the apex, TTL at most `max_ttl`.
fn check_derived(dig: &Dig, max_ttl: u32) -> Result<()> {
    ensure!(dig.status == "NOERROR" && dig.aa(), "expected NOERROR with AA:\n{dig}");
    ensure!(!dig.answer.is_empty(), "no answer:\n{dig}");
    for record in &dig.answer {
        ensure!(same_name(&record.owner, APEX), "answer not owned by {APEX}:\n{dig}");
        ensure!(record.ttl <= max_ttl, "TTL {} above {max_ttl}:\n{dig}", record.ttl);
    }
    Ok(())
}

/// Checks that the apex still serves MX and NS with AA, and the ANAME itself
/// (TYPE65401, shown by kdig in RFC 3597 form).
fn check_apex_neighbours(server: SocketAddr) -> Result<()> {
    let mx = ask(server, APEX, "MX")?;
    ensure!(mx.status == "NOERROR" && mx.aa(), "MX:\n{mx}");
    ensure!(mx.data("MX") == ["10 mail.example.test."], "MX:\n{mx}");
    let ns = ask(server, APEX, "NS")?;
    ensure!(ns.status == "NOERROR" && ns.aa(), "NS:\n{ns}");
    ensure!(ns.data("NS") == ["ns1.example.test."], "NS:\n{ns}");
    let aname = ask(server, APEX, "TYPE65401")?;
    ensure!(aname.status == "NOERROR" && aname.aa(), "TYPE65401:\n{aname}");
    let data = aname.data("TYPE65401");
    ensure!(
        data.len() == 1 && data.iter().all(|d| generic_rdata(d) == Some((20, TARGET_WIRE_HEX.to_owned()))),
        "TYPE65401 at the apex should be the ANAME, `\\# 20 {TARGET_WIRE_HEX}`:\n{aname}"
    );
    Ok(())
}

/// RFC 3597 `\# LEN HEX...` as (LEN, upper-case HEX without spaces).
fn generic_rdata(text: &str) -> Option<(usize, String)> {
    let mut words = text.split_whitespace();
    if words.next()? != "\\#" {
        return None;
    }
    let len = words.next()?.parse().ok()?;
    let hex: String = words.collect::<String>().to_ascii_uppercase();
    (hex.len() == 2 * len && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some((len, hex))
}

/// Polls `aname status` until the line for the apex satisfies `done`.
fn wait_for_status(
    cli: &Cli,
    what: &str,
    deadline: Duration,
    done: impl Fn(&AnameStatus) -> bool,
) -> Result<AnameStatus> {
    let mut last = None;
    let result = wait_until(what, deadline, || {
        let line = status_of(cli, CUSTOMER, APEX)?;
        if done(&line) {
            return Ok(Some(line));
        }
        last = Some(line);
        Ok(None)
    });
    result.with_context(|| match &last {
        Some(line) => format!("last `aname status` line: {line}"),
        None => "no `aname status` line read".to_owned(),
    })
}

/// Checks a status line after a successful resolution of [`TARGET`] to
/// `addresses` (the ADDRESSES field as printed).
fn check_resolved(line: &AnameStatus, addresses: &str) -> Result<()> {
    ensure!(same_name(&line.target, TARGET), "target is not {TARGET}: {line}");
    ensure!(line.addresses_text == addresses, "ADDRESSES should be {addresses}: {line}");
    let success = line.last_success.with_context(|| format!("no LAST_SUCCESS: {line}"))?;
    ensure!(line.last_error.is_none(), "LAST_ERROR after a success: {line}");
    let next = line.next_refresh.with_context(|| format!("no NEXT_REFRESH: {line}"))?;
    // The clocks are the same machine's; allow for slow CLI runs.
    ensure!((now() - success).abs() <= 120, "LAST_SUCCESS is not about now ({}): {line}", now());
    ensure!(
        next >= success && next <= success + 10 + 2,
        "NEXT_REFRESH should be within max_refresh (10 s) after LAST_SUCCESS: {line}"
    );
    Ok(())
}

/// One record of a `zone export`.
#[derive(Debug)]
struct Exported {
    owner: String,
    rtype: String,
    data: String,
}

/// The records of a `zone export` (`OWNER TTL IN TYPE RDATA` lines;
/// directives and comments skipped).
fn exported_records(text: &str) -> Result<Vec<Exported>> {
    let mut records = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(['$', ';'])) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let class = words.iter().position(|w| *w == "IN").with_context(|| format!("no class in {line:?}"))?;
        let (Some(owner), Some(rtype)) = (words.first(), words.get(class + 1)) else {
            bail!("cannot read {line:?}");
        };
        records.push(Exported {
            owner: (*owner).to_owned(),
            rtype: rtype.to_ascii_uppercase(),
            data: words.get(class + 2..).unwrap_or_default().join(" "),
        });
    }
    Ok(records)
}

fn at_apex<'a>(records: &'a [Exported], rtype: &str) -> Vec<&'a Exported> {
    records.iter().filter(|r| same_name(&r.owner, APEX) && r.rtype == rtype).collect()
}

/// Starts the provider on `addr`, retrying while the port is briefly
/// unavailable, and checks that it serves `provider.test.`.
fn start_provider(cli: &Cli, addr: SocketAddr) -> Result<Sixgate> {
    let server = wait_until(&format!("the provider to start on {addr}"), START, || {
        Sixgate::serve_at(cli.clone(), addr, &[]).map(Some)
    })?;
    let soa = ask(addr, "provider.test.", "SOA")?;
    ensure!(soa.status == "NOERROR" && soa.aa(), "the provider does not serve provider.test.:\n{soa}");
    Ok(server)
}

/// The scenario an operator sees: a customer's apex follows a hosting
/// provider's addresses through a change, an outage and the target's
/// removal, with MX and NS beside it untouched.
#[test]
fn apex_aname_follows_an_external_provider_through_change_outage_and_removal() -> Result<()> {
    let files = tempfile::tempdir()?;
    let provider_data = tempfile::tempdir()?;
    let provider_cli = Cli::new(provider_data.path())?;
    provider_cli.import(&write_zone(files.path(), "provider.test.", PROVIDER)?)?;
    let provider_addr = SocketAddr::from(([127, 0, 0, 1], free_port_pair()?));
    let provider = start_provider(&provider_cli, provider_addr)?;

    let customer_data = tempfile::tempdir()?;
    let customer_cli = Cli::new(customer_data.path())?;
    customer_cli.import(&write_zone(files.path(), "example.test.", EXAMPLE)?)?;
    let config = aname_config(files.path(), provider_addr)?;
    let customer = serve_with_config(customer_cli.clone(), &config)?;
    let dns = customer.udp_addr();

    // The provider's addresses, at the apex, beside MX and NS.
    let (a, aaaa) = wait_for_apex_addresses(dns, &["192.0.2.10"], &["2001:db8::10"], PROPAGATION)?;
    // TTL = min(ANAME TTL 300, target TTL 1).
    check_derived(&a, 1)?;
    check_derived(&aaaa, 1)?;
    check_apex_neighbours(dns)?;
    let line =
        wait_for_status(&customer_cli, "aname status to show the first resolution", PROPAGATION, |l| {
            l.addresses_text == "192.0.2.10,2001:db8::10"
        })?;
    check_resolved(&line, "192.0.2.10,2001:db8::10")?;

    // The provider changes its addresses; the customer follows.
    provider_cli
        .run(&["record", "set"], &["provider.test", "host", "A", "--ttl", "1", "192.0.2.11"])?
        .ok()?;
    provider_cli
        .run(&["record", "set"], &["provider.test", "host", "AAAA", "--ttl", "1", "2001:db8::11"])?
        .ok()?;
    let (a, aaaa) = wait_for_apex_addresses(dns, &["192.0.2.11"], &["2001:db8::11"], PROPAGATION)?;
    check_derived(&a, 1)?;
    check_derived(&aaaa, 1)?;
    let good = "192.0.2.11,2001:db8::11";
    let line = wait_for_status(&customer_cli, "aname status to show the new addresses", PROPAGATION, |l| {
        l.addresses_text == good
    })?;
    check_resolved(&line, good)?;

    // The provider goes away. Refreshes fail, and the last good addresses
    // stay served through several of them.
    drop(provider);
    let failing =
        wait_for_status(&customer_cli, "aname status to report a failed refresh", PROPAGATION, |l| {
            l.last_error.is_some()
        })?;
    let last_success = failing.last_success.with_context(|| format!("LAST_SUCCESS lost: {failing}"))?;
    ensure!(failing.addresses_text == good, "addresses dropped on a failed refresh: {failing}");
    ensure!(failing.next_refresh.is_some(), "no NEXT_REFRESH while failing: {failing}");
    let mut attempts = BTreeSet::from([failing.next_refresh]);
    let outage = wait_until("two more failed refreshes while the provider is down", RECOVERY, || {
        let a = ask(dns, APEX, "A")?;
        let aaaa = ask(dns, APEX, "AAAA")?;
        if a.data("A") != ["192.0.2.11"] || aaaa.data("AAAA") != ["2001:db8::11"] || !a.aa() || !aaaa.aa() {
            return Ok(Some(Err(anyhow::anyhow!(
                "the last good addresses are no longer served during the outage:\n{a}\n{aaaa}"
            ))));
        }
        let line = status_of(&customer_cli, CUSTOMER, APEX)?;
        if line.addresses_text != good || line.last_success != Some(last_success) || line.last_error.is_none()
        {
            return Ok(Some(Err(anyhow::anyhow!(
                "aname status changed during the outage: {line} (first failure: {failing})"
            ))));
        }
        attempts.insert(line.next_refresh);
        Ok((attempts.len() >= 3).then_some(Ok(line)))
    })??;
    ensure!(
        outage.last_error.as_deref().is_some_and(|e| !e.trim().is_empty()),
        "LAST_ERROR should say what failed: {outage}"
    );
    check_apex_neighbours(dns)?;

    // The provider comes back on the same address without `host`: the
    // target is NXDOMAIN and the apex has no addresses any more.
    provider_cli.run(&["record", "delete"], &["provider.test", "host", "A"])?.ok()?;
    provider_cli.run(&["record", "delete"], &["provider.test", "host", "AAAA"])?.ok()?;
    let _provider = start_provider(&provider_cli, provider_addr)?;
    let gone = ask(provider_addr, TARGET, "A")?;
    ensure!(gone.status == "NXDOMAIN", "the provider should answer NXDOMAIN for {TARGET}:\n{gone}");
    let mut last = None;
    let emptied = wait_until("A and AAAA at the apex to be NODATA", RECOVERY, || {
        let a = ask(dns, APEX, "A")?;
        let aaaa = ask(dns, APEX, "AAAA")?;
        let nodata = |d: &Dig| d.status == "NOERROR" && d.aa() && d.answer.is_empty();
        if nodata(&a) && nodata(&aaaa) {
            return Ok(Some((a, aaaa)));
        }
        last = Some(format!("{a}\n{aaaa}"));
        Ok(None)
    });
    let (a, aaaa) = emptied.with_context(|| last.unwrap_or_default())?;
    for dig in [&a, &aaaa] {
        // RFC 2308 §2.2: a NODATA answer carries the zone's SOA.
        ensure!(
            dig.authority.iter().any(|r| r.rtype == "SOA" && same_name(&r.owner, APEX)),
            "NODATA without the SOA in the authority section:\n{dig}"
        );
    }
    check_apex_neighbours(dns)?;
    let line = wait_for_status(&customer_cli, "aname status to show no addresses", PROPAGATION, |l| {
        l.addresses_text == "-"
    })?;
    ensure!(same_name(&line.target, TARGET), "target changed: {line}");
    ensure!(line.next_refresh.is_some(), "no NEXT_REFRESH after NXDOMAIN: {line}");
    // NXDOMAIN is an answer, not a failure: it counts as a resolution.
    ensure!(
        line.last_success.is_some_and(|t| t > last_success),
        "LAST_SUCCESS should be the NXDOMAIN answer, after the outage: {line}"
    );
    // docs/aname.md: "After an NXDOMAIN or NODATA answer, LAST_ERROR says
    // which."
    ensure!(
        line.last_error.as_deref().is_some_and(|e| e.contains("NXDOMAIN")),
        "LAST_ERROR after an NXDOMAIN answer should say NXDOMAIN: {line}"
    );
    Ok(())
}

/// A target in a zone the same server serves is answered from that zone,
/// with no query to the configured resolver, and follows its changes.
#[test]
fn an_internal_target_is_resolved_without_network_queries_and_follows_changes() -> Result<()> {
    // The only resolver sixgate is given; nothing may be sent to it.
    let resolver = UdpSocket::bind("127.0.0.1:0").context("binding the watched resolver socket")?;
    let files = tempfile::tempdir()?;
    let (cli, server) = serve_both_zones(files.path(), resolver.local_addr()?)?;
    let dns = server.udp_addr();

    let (a, aaaa) = wait_for_apex_addresses(dns, &["192.0.2.10"], &["2001:db8::10"], INTERNAL)?;
    check_derived(&a, 1)?;
    check_derived(&aaaa, 1)?;
    check_apex_neighbours(dns)?;

    cli.run(&["record", "set"], &["provider.test", "host", "A", "--ttl", "1", "192.0.2.11"])?.ok()?;
    wait_for_apex_addresses(dns, &["192.0.2.11"], &["2001:db8::10"], INTERNAL)?;
    cli.run(
        &["record", "set"],
        &["provider.test", "host", "AAAA", "--ttl", "1", "2001:db8::11", "2001:db8::12"],
    )?
    .ok()?;
    let (a, aaaa) =
        wait_for_apex_addresses(dns, &["192.0.2.11"], &["2001:db8::11", "2001:db8::12"], INTERNAL)?;
    check_derived(&a, 1)?;
    check_derived(&aaaa, 1)?;
    let line = wait_for_status(&cli, "aname status to show the internal addresses", INTERNAL, |l| {
        l.addresses_text == "192.0.2.11,2001:db8::11,2001:db8::12"
    })?;
    ensure!(line.last_error.is_none(), "LAST_ERROR for an internal target: {line}");

    // The API shows the same resolution as the command line.
    let base = server.api_url().context("serve printed no `listening api` line")?;
    let token = cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_owned();
    let response = call(&base, "GET", "/v1/zones/example.test/anames", &token, None)?;
    ensure!(response.status == 200, "GET anames: {} {}", response.status, response.body);
    let anames: Value = serde_json::from_str(&response.body).with_context(|| response.body.clone())?;
    let entry = anames
        .as_array()
        .and_then(|all| all.iter().find(|e| e["name"].as_str().is_some_and(|n| same_name(n, APEX))))
        .with_context(|| format!("no entry for {APEX} in GET anames: {anames}"))?;
    ensure!(
        entry["target"].as_str().is_some_and(|t| same_name(t, TARGET))
            && entry["addresses"] == json!(["192.0.2.11", "2001:db8::11", "2001:db8::12"])
            && entry["last_error"].is_null(),
        "GET anames disagrees with `aname status` ({line}): {entry}"
    );
    for field in ["last_success", "next_refresh"] {
        let text = entry[field].as_str().with_context(|| format!("{field} missing: {entry}"))?;
        rfc3339_utc(text).with_context(|| format!("{field} in {entry}"))?;
    }

    // Datagrams sent to the socket wait in its receive queue; there must be
    // none.
    resolver.set_nonblocking(true)?;
    let mut buffer = [0u8; 512];
    match resolver.recv_from(&mut buffer) {
        Err(error) if error.kind() == ErrorKind::WouldBlock => Ok(()),
        Err(error) => Err(error).context("reading the watched resolver socket"),
        Ok((len, from)) => bail!(
            "the resolver received a {len}-byte datagram from {from} for an internal target: {:02x?}",
            buffer.get(..len).unwrap_or_default()
        ),
    }
}

/// Fails unless `output` is a refused command: non-zero exit and one stderr
/// line `error: ...`.
fn check_refused(output: &CliOutput) -> Result<()> {
    ensure!(!output.success(), "expected a refusal:\n{output}");
    let lines: Vec<&str> = output.stderr.trim_end().lines().collect();
    ensure!(
        lines.len() == 1 && lines.first().is_some_and(|l| l.starts_with("error: ")),
        "expected exactly one stderr line starting with `error: `:\n{output}"
    );
    Ok(())
}

fn call(base: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> Result<HttpResponse> {
    sixgate_e2e::http::bearer(method, base, path, token, body.as_ref(), HTTP_TIMEOUT)
}

/// The `detail` of a problem document, or the whole body.
fn problem_detail(response: &HttpResponse) -> String {
    serde_json::from_str::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| response.body.clone())
}

/// Invalid ANAMEs, from a zone file or the API, are refused with a reason,
/// and nothing of them is stored or served.
#[test]
fn invalid_anames_are_refused_and_change_nothing() -> Result<()> {
    let resolver = UdpSocket::bind("127.0.0.1:0")?;
    let files = tempfile::tempdir()?;
    let (cli, server) = serve_both_zones(files.path(), resolver.local_addr()?)?;
    let dns = server.udp_addr();
    wait_for_apex_addresses(dns, &["192.0.2.10"], &["2001:db8::10"], INTERNAL)?;
    let export = || -> Result<String> { Ok(cli.run(&["zone", "export"], &[CUSTOMER])?.ok()?.stdout) };
    let before = export()?;
    let unchanged = |what: &str| -> Result<()> {
        ensure!(export()? == before, "{what} changed the stored zone:\n{}", export()?);
        let a = ask(dns, APEX, "A")?;
        ensure!(a.data("A") == ["192.0.2.10"] && a.aa(), "{what} changed the apex A:\n{a}");
        let www = ask(dns, "www.example.test.", "A")?;
        ensure!(www.data("A") == ["192.0.2.80"], "{what} changed www:\n{www}");
        Ok(())
    };

    // Zone files: each is the good zone plus the lines shown. The error must
    // name the file and one of the lines involved, and say what is wrong in
    // terms of what the file holds: the types involved, and no type that is
    // not there.
    let first_extra = EXAMPLE.lines().count() + 1;
    let cases = [
        FileCase {
            what: "ANAME beside CNAME",
            extra: "alias ANAME host.provider.test.\nalias CNAME www\n",
            lines: vec![first_extra, first_extra + 1],
            mentions: &["ANAME", "CNAME", "alias.example.test."],
            absent: &[],
        },
        FileCase {
            what: "two ANAMEs at one owner",
            extra: "@ 300 ANAME other.provider.test.\n",
            lines: vec![EXAMPLE_ANAME_LINE, first_extra],
            mentions: &["ANAME", "example.test."],
            absent: &["CNAME"],
        },
        FileCase {
            what: "ANAME beside an explicit A",
            extra: "@ 300 A 192.0.2.99\n",
            lines: vec![EXAMPLE_ANAME_LINE, first_extra],
            mentions: &["ANAME", "example.test."],
            absent: &["CNAME"],
        },
        // The wording of this one is checked by
        // `a_bad_aname_target_is_reported_as_an_aname_error`.
        FileCase {
            what: "a target that is not a name",
            extra: "bad ANAME bad..name.\n",
            lines: vec![first_extra],
            mentions: &[],
            absent: &[],
        },
    ];
    let mut failures = Vec::new();
    for FileCase { what, extra, lines, mentions, absent } in cases {
        let path = files.path().join("broken.zone");
        fs::write(&path, format!("{EXAMPLE}{extra}"))?;
        let output = cli.run(&["zone", "import"], &[CUSTOMER, &path.display().to_string()])?;
        let file = path.display().to_string();
        let check = check_refused(&output)
            .and_then(|()| {
                ensure!(
                    lines.iter().any(|line| output.stderr.contains(&format!("{file}:{line}:"))),
                    "the error should name {file} and one of lines {lines:?}:\n{output}"
                );
                check_wording(&output.stderr, mentions, absent)
            })
            .and_then(|()| unchanged(what));
        if let Err(error) = check {
            failures.push(format!("zone import, {what}: {error:#}"));
        }
    }

    // The API: addresses beside the apex ANAME, an ANAME beside www's A, two
    // ANAMEs, and a target that is not a name (its wording checked below).
    // docs/aname.md: the error names the owner.
    let base = server.api_url().context("serve printed no `listening api` line")?;
    let token = cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_owned();
    let rrsets = "/v1/zones/example.test/rrsets";
    let puts: [(&str, Value, &[&str], &[&str]); 5] = [
        (
            "example.test./A",
            json!({"ttl": 300, "records": ["192.0.2.99"]}),
            &["ANAME", "example.test."],
            &["CNAME"],
        ),
        (
            "example.test./AAAA",
            json!({"ttl": 300, "records": ["2001:db8::99"]}),
            &["ANAME", "example.test."],
            &["CNAME"],
        ),
        (
            "www.example.test./ANAME",
            json!({"ttl": 300, "records": [TARGET]}),
            &["ANAME", "www.example.test."],
            &["CNAME"],
        ),
        (
            "y.example.test./ANAME",
            json!({"ttl": 300, "records": ["a.provider.test.", "b.provider.test."]}),
            &["ANAME", "y.example.test."],
            &["CNAME"],
        ),
        ("y.example.test./ANAME", json!({"ttl": 300, "records": ["bad..name."]}), &[], &[]),
    ];
    for (rrset, body, mentions, absent) in puts {
        let path = format!("{rrsets}/{rrset}");
        let shown = format!("PUT {path} {body}");
        let response = call(&base, "PUT", &path, &token, Some(body))?;
        let detail = problem_detail(&response);
        let check = if response.status == 422 {
            check_wording(&detail, mentions, absent).and_then(|()| unchanged(&shown))
        } else {
            Err(anyhow::anyhow!("expected 422, got {} {}", response.status, response.body))
        };
        if let Err(error) = check {
            failures.push(format!("{shown}: {error:#}"));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}

/// A broken zone file: the good zone plus `extra`.
struct FileCase {
    what: &'static str,
    extra: &'static str,
    /// The lines the error may name.
    lines: Vec<usize>,
    /// Words the error must contain.
    mentions: &'static [&'static str],
    /// Words it must not contain.
    absent: &'static [&'static str],
}

/// An ANAME whose target is not a domain name is refused everywhere with a
/// reason about the ANAME. The zone file parser reads ANAME lines as CNAME
/// lines underneath; its reason must not be "malformed CNAME rdata" about
/// input that has no CNAME.
#[test]
fn a_bad_aname_target_is_reported_as_an_aname_error() -> Result<()> {
    let resolver = UdpSocket::bind("127.0.0.1:0")?;
    let files = tempfile::tempdir()?;
    let (cli, server) = serve_both_zones(files.path(), resolver.local_addr()?)?;
    let mut failures = Vec::new();
    let path = files.path().join("bad-target.zone");
    fs::write(&path, format!("{EXAMPLE}bad ANAME bad..name.\n"))?;
    let attempts: [(&[&str], Vec<String>); 3] = [
        (&["zone", "import"], vec![CUSTOMER.into(), path.display().to_string()]),
        (&["record", "set"], ["example.test", "bad", "ANAME", "bad..name."].map(String::from).to_vec()),
        (&["record", "add"], ["example.test", "bad 300 ANAME bad..name."].map(String::from).to_vec()),
    ];
    for (command, args) in attempts {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = cli.run(command, &args)?;
        if let Err(error) =
            check_refused(&output).and_then(|()| check_wording(&output.stderr, &["ANAME"], &["CNAME"]))
        {
            failures.push(format!("sixgate {}: {error:#}", command.join(" ")));
        }
    }
    let base = server.api_url().context("serve printed no `listening api` line")?;
    let token = cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_owned();
    let path = "/v1/zones/example.test/rrsets/bad.example.test./ANAME";
    let response = call(&base, "PUT", path, &token, Some(json!({"ttl": 300, "records": ["bad..name."]})))?;
    let detail = problem_detail(&response);
    let check = if response.status == 422 {
        check_wording(&detail, &["ANAME"], &["CNAME"])
    } else {
        Err(anyhow::anyhow!("expected 422, got {} {}", response.status, response.body))
    };
    if let Err(error) = check {
        failures.push(format!("PUT {path}: {error:#}"));
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}

/// Fails unless `text` contains every word of `mentions` and none of
/// `absent` (case-sensitive: type mnemonics).
fn check_wording(text: &str, mentions: &[&str], absent: &[&str]) -> Result<()> {
    let missing: Vec<&&str> = mentions.iter().filter(|m| !text.contains(**m)).collect();
    let wrong: Vec<&&str> = absent.iter().filter(|a| text.contains(**a)).collect();
    ensure!(
        missing.is_empty() && wrong.is_empty(),
        "the reason should mention {mentions:?} and not {absent:?}: {text:?}"
    );
    Ok(())
}

/// An ANAME whose target is its own owner can never have addresses. It
/// must be refused, or accepted and reported as a loop in `aname status`
/// (docs/aname.md lists "a loop" among the failures); either way the rest
/// of the zone is served as before.
#[test]
fn an_aname_pointing_at_itself_is_refused_or_reported_as_a_loop() -> Result<()> {
    let resolver = UdpSocket::bind("127.0.0.1:0")?;
    let files = tempfile::tempdir()?;
    let (cli, server) = serve_both_zones(files.path(), resolver.local_addr()?)?;
    let dns = server.udp_addr();
    wait_for_apex_addresses(dns, &["192.0.2.10"], &["2001:db8::10"], INTERNAL)?;
    let before = cli.run(&["zone", "export"], &[CUSTOMER])?.ok()?.stdout;
    let base = server.api_url().context("serve printed no `listening api` line")?;
    let token = cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_owned();

    let path = "/v1/zones/example.test/rrsets/x.example.test./ANAME";
    let response =
        call(&base, "PUT", path, &token, Some(json!({"ttl": 300, "records": ["x.example.test."]})))?;
    match response.status {
        422 => {
            let detail = problem_detail(&response);
            ensure!(
                detail.to_ascii_lowercase().contains("loop"),
                "PUT {path}: 422 without saying loop: {detail}"
            );
            let after = cli.run(&["zone", "export"], &[CUSTOMER])?.ok()?.stdout;
            ensure!(after == before, "the refused PUT changed the zone:\n{after}");
        }
        200 => {
            let mut last = None;
            let line = wait_until("aname status to report a loop at x.example.test.", INTERNAL, || {
                let line = status_of(&cli, CUSTOMER, "x.example.test.")?;
                if line.last_error.as_deref().is_some_and(|e| e.to_ascii_lowercase().contains("loop")) {
                    return Ok(Some(line));
                }
                last = Some(line);
                Ok(None)
            })
            .with_context(|| match &last {
                Some(line) => format!("PUT {path} was accepted (200); last `aname status` line: {line}"),
                None => format!("PUT {path} was accepted (200); no `aname status` line for x.example.test."),
            })?;
            ensure!(line.addresses.is_empty(), "a looping ANAME has addresses: {line}");
        }
        status => bail!(
            "PUT {path}: expected 422 (or 200 and a loop in aname status), got {status} {}",
            response.body
        ),
    }
    // Refused: the name does not exist. Accepted: it exists, without addresses.
    let x = ask(dns, "x.example.test.", "A")?;
    let want = if response.status == 422 { "NXDOMAIN" } else { "NOERROR" };
    ensure!(x.status == want && x.aa() && x.answer.is_empty(), "x.example.test. A (want {want}):\n{x}");
    let a = ask(dns, APEX, "A")?;
    ensure!(a.data("A") == ["192.0.2.10"] && a.aa(), "the apex A changed:\n{a}");
    check_apex_neighbours(dns)?;
    Ok(())
}

/// `zone export` prints the ANAME as stored; `--as-served` prints what DNS
/// serves, in a form another server (knotd) loads.
#[test]
fn zone_export_prints_the_aname_and_as_served_the_derived_addresses() -> Result<()> {
    let resolver = UdpSocket::bind("127.0.0.1:0")?;
    let files = tempfile::tempdir()?;
    let (cli, server) = serve_both_zones(files.path(), resolver.local_addr()?)?;
    wait_for_apex_addresses(server.udp_addr(), &["192.0.2.10"], &["2001:db8::10"], INTERNAL)?;

    // Plain: the ANAME, no derived addresses, and it round-trips.
    let plain = cli.run(&["zone", "export"], &[CUSTOMER])?.ok()?.stdout;
    let records = exported_records(&plain)?;
    let anames = at_apex(&records, "ANAME");
    ensure!(
        anames.len() == 1 && anames.iter().all(|r| same_name(&r.data, TARGET)),
        "expected one `ANAME {TARGET}` at the apex:\n{plain}"
    );
    ensure!(
        at_apex(&records, "A").is_empty() && at_apex(&records, "AAAA").is_empty(),
        "derived addresses in the plain export:\n{plain}"
    );
    let fresh = tempfile::tempdir()?;
    let fresh_cli = Cli::new(fresh.path())?;
    let path = files.path().join("exported.zone");
    fs::write(&path, &plain)?;
    fresh_cli.import(&ZoneFile::new(APEX, &path))?;
    let again = fresh_cli.run(&["zone", "export"], &[CUSTOMER])?.ok()?.stdout;
    ensure!(again == plain, "export -> import -> export differs:\n--- first\n{plain}--- second\n{again}");

    // As served: the derived A and AAAA, and the ANAME as TYPE65401.
    let served = cli.run(&["zone", "export"], &[CUSTOMER, "--as-served"])?.ok()?.stdout;
    let records = exported_records(&served)?;
    let data_at =
        |rtype: &str| -> Vec<String> { at_apex(&records, rtype).iter().map(|r| r.data.clone()).collect() };
    ensure!(data_at("A") == ["192.0.2.10"], "--as-served apex A:\n{served}");
    ensure!(data_at("AAAA") == ["2001:db8::10"], "--as-served apex AAAA:\n{served}");
    let generic = data_at("TYPE65401");
    ensure!(
        generic.len() == 1
            && generic.iter().all(|d| generic_rdata(d) == Some((20, TARGET_WIRE_HEX.to_owned()))),
        "--as-served should hold `TYPE65401 \\# 20 {TARGET_WIRE_HEX}` at the apex:\n{served}"
    );
    ensure!(
        records.iter().all(|r| r.rtype != "ANAME" && r.rtype != "ALIAS"),
        "ANAME mnemonic in --as-served:\n{served}"
    );

    // knotd loads it, the ANAME as an unknown type.
    let path = files.path().join("as-served.zone");
    fs::write(&path, &served)?;
    let knot = Knot::start(&[ZoneFile::new(APEX, &path)])?;
    let aname = ask(knot.addr(), APEX, "TYPE65401")?;
    ensure!(aname.status == "NOERROR" && aname.aa(), "knotd TYPE65401:\n{aname}");
    let data = aname.data("TYPE65401");
    ensure!(
        data.len() == 1 && data.iter().all(|d| generic_rdata(d) == Some((20, TARGET_WIRE_HEX.to_owned()))),
        "knotd should serve the ANAME as `\\# 20 {TARGET_WIRE_HEX}`:\n{aname}"
    );
    let a = ask(knot.addr(), APEX, "A")?;
    ensure!(a.status == "NOERROR" && a.aa() && a.data("A") == ["192.0.2.10"], "knotd A:\n{a}");
    Ok(())
}

/// `ALIAS` and the RFC 3597 form of type 65401 are the same record as
/// `ANAME`.
#[test]
fn alias_and_generic_spellings_import_as_aname() -> Result<()> {
    let files = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let text = EXAMPLE.replace("@ 300 ANAME host.provider.test.", "@ 300 ALIAS host.provider.test.")
        + &format!("www2 300 TYPE65401 \\# 20 {TARGET_WIRE_HEX}\n");
    cli.import(&write_zone(files.path(), "example.test.", &text)?)?;
    let export = cli.run(&["zone", "export"], &[CUSTOMER])?.ok()?.stdout;
    let records = exported_records(&export)?;
    for owner in [APEX, "www2.example.test."] {
        let anames: Vec<&Exported> =
            records.iter().filter(|r| same_name(&r.owner, owner) && r.rtype == "ANAME").collect();
        ensure!(
            anames.len() == 1 && anames.iter().all(|r| same_name(&r.data, TARGET)),
            "{owner} should export as `ANAME {TARGET}`:\n{export}"
        );
    }
    ensure!(
        records.iter().all(|r| r.rtype != "ALIAS" && r.rtype != "TYPE65401"),
        "the plain export should spell the type ANAME:\n{export}"
    );
    let lines = status(&cli, CUSTOMER)?;
    ensure!(lines.len() == 2, "aname status should list both ANAMEs:\n{lines:?}");
    Ok(())
}

// ---------------------------------------------------------------------
// Validation of upstream answers, against real servers: knotd serves a
// lab root, a signed `test.` that delegates a signed `provider.test.`
// and an unsigned `plain.test.` (signed with ldnsutils), a validating unbound resolves them, and
// sixgate asks unbound through a small UDP relay that can lie the way an
// attacker on the path would. sixgate validates from the lab root's DS
// (`[aname] trust_anchor`).
// ---------------------------------------------------------------------

mod lab {
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use anyhow::Result;
    use sixgate_e2e::knot::Knot;
    use sixgate_e2e::ldns::{Key, sign_zone, unsigned_zone};
    use sixgate_e2e::{Unbound, UnboundConfig};

    /// The relay passes answers through.
    pub(super) const HONEST: u8 = 0;
    /// The relay puts 203.0.113.66 in place of 192.0.2.10 in answers: a
    /// forged address under the real signature.
    pub(super) const FORGE: u8 = 1;
    /// The relay answers DS queries itself with an empty NOERROR (no DS,
    /// and no proof of it), as one who would pass a signed zone off as
    /// unsigned.
    pub(super) const UNPROVEN: u8 = 2;

    /// The lab: knotd, unbound, the relay, and the root's DS.
    pub(super) struct Lab {
        pub(super) relay: Relay,
        pub(super) root_ds: String,
        _unbound: Unbound,
        _knot: Knot,
        _dir: tempfile::TempDir,
    }

    impl Lab {
        pub(super) fn start() -> Result<Self> {
            let dir = tempfile::Builder::new().prefix("sixgate-e2e-aname-lab-").tempdir()?;
            let d = dir.path();
            let root_key = Key::generate(d, ".", true)?;
            let test_key = Key::generate(d, "test.", true)?;
            let provider_key = Key::generate(d, "provider.test.", true)?;
            // TTLs of 2 s: what sixgate learnt of the chain expires fast,
            // so a lie to a DS query meets no cached step.
            let soa = "$TTL 2\n@ SOA ns.test. hostmaster.test. 1 3600 900 604800 2\n@ NS ns.test.\n";
            let root =
                format!("$ORIGIN .\n{soa}test. NS ns.test.\nns.test. A 127.0.0.1\n{}\n", test_key.ds()?);
            let test = format!(
                "$ORIGIN test.\n{soa}ns A 127.0.0.1\nprovider NS ns.test.\n{}\nplain NS ns.test.\n",
                provider_key.ds()?
            );
            let provider =
                format!("$ORIGIN provider.test.\n{soa}host A 192.0.2.10\nhost AAAA 2001:db8::10\n");
            let plain = format!("$ORIGIN plain.test.\n{soa}host A 192.0.2.20\n");
            let zones = vec![
                sign_zone(d, ".", &root, &[&root_key], None)?,
                sign_zone(d, "test.", &test, &[&test_key], None)?,
                sign_zone(d, "provider.test.", &provider, &[&provider_key], None)?,
                unsigned_zone(d, "plain.test.", &plain)?,
            ];
            let knot = Knot::start(&zones)?;
            let root_ds = root_key.ds()?;
            // A stub for test. also makes unbound forget its built-in empty
            // test. zone (RFC 6761).
            let config = [".", "test", "provider.test", "plain.test"]
                .iter()
                .fold(UnboundConfig::new(), |c, zone| c.stub(zone, knot.addr()))
                .trust_anchor(&root_ds);
            let unbound = Unbound::start(config)?;
            // unbound itself finds the chain secure: the lab is sound.
            unbound.expect_secure("host.provider.test", "A", "NOERROR")?;
            unbound.expect_insecure("host.plain.test", "A", "NOERROR")?;
            let relay = Relay::start(unbound.addr())?;
            Ok(Self { relay, root_ds, _unbound: unbound, _knot: knot, _dir: dir })
        }
    }

    /// A UDP relay in front of a resolver, lying as told.
    pub(super) struct Relay {
        pub(super) addr: SocketAddr,
        mode: Arc<AtomicU8>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Relay {
        fn start(upstream: SocketAddr) -> Result<Self> {
            let sock = UdpSocket::bind("127.0.0.1:0")?;
            sock.set_read_timeout(Some(Duration::from_millis(100)))?;
            let addr = sock.local_addr()?;
            let mode = Arc::new(AtomicU8::new(HONEST));
            let stop = Arc::new(AtomicBool::new(false));
            let (m, s) = (mode.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                let mut buf = [0u8; 65535];
                while !s.load(Ordering::Relaxed) {
                    let Ok((len, client)) = sock.recv_from(&mut buf) else { continue };
                    let query = buf.get(..len).unwrap_or_default().to_vec();
                    let lie = m.load(Ordering::Relaxed);
                    let answer = if lie == UNPROVEN && qtype(&query) == Some(43) {
                        Some(empty_answer(&query))
                    } else {
                        forward(upstream, &query).map(|a| if lie == FORGE { forge(a) } else { a })
                    };
                    if let Some(a) = answer {
                        let _ = sock.send_to(&a, client);
                    }
                }
            });
            Ok(Self { addr, mode, stop, thread: Some(thread) })
        }

        pub(super) fn lie(&self, mode: u8) {
            self.mode.store(mode, Ordering::Relaxed);
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn forward(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
        let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
        sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        sock.send_to(query, upstream).ok()?;
        let mut buf = [0u8; 65535];
        let len = sock.recv(&mut buf).ok()?;
        Some(buf.get(..len)?.to_vec())
    }

    /// The end of the question: past the name, type and class.
    fn question_end(msg: &[u8]) -> Option<usize> {
        let mut at = 12;
        loop {
            let len = usize::from(*msg.get(at)?);
            at += 1 + len;
            if len == 0 {
                return Some(at + 4);
            }
        }
    }

    fn qtype(msg: &[u8]) -> Option<u16> {
        let end = question_end(msg)?;
        Some(u16::from_be_bytes([*msg.get(end - 4)?, *msg.get(end - 3)?]))
    }

    /// NOERROR with the question and nothing else.
    fn empty_answer(query: &[u8]) -> Vec<u8> {
        let end = question_end(query).unwrap_or(query.len()).min(query.len());
        let mut a = query.get(..end).unwrap_or_default().to_vec();
        if a.len() >= 12 {
            a[2] |= 0x80;
            a[3] = 0x80;
            a[6..12].fill(0);
        }
        a
    }

    /// 192.0.2.10 becomes 203.0.113.66 wherever it is an A record's rdata.
    fn forge(mut a: Vec<u8>) -> Vec<u8> {
        let real = [0, 4, 192, 0, 2, 10];
        let mut i = 0;
        while i + real.len() <= a.len() {
            if a[i..i + real.len()] == real {
                a[i + 2..i + 6].copy_from_slice(&[203, 0, 113, 66]);
            }
            i += 1;
        }
        a
    }
}

/// The customer's zone with a second ANAME, to the unsigned zone.
fn example_with_insecure_target() -> String {
    format!("{EXAMPLE}ins 300 ANAME host.plain.test.\n")
}

/// The customer's sixgate, asking the lab's relay and validating from the
/// lab root.
fn serve_customer(lab: &lab::Lab, files: &Path) -> Result<(Cli, Sixgate)> {
    let anchor = files.join("root.ds");
    fs::write(&anchor, format!("{}\n", lab.root_ds))?;
    let config = files.join("sixgate.toml");
    fs::write(
        &config,
        format!(
            "[aname]\nresolvers = [\"{}\"]\nmin_refresh = 1\nmax_refresh = 4\ntrust_anchor = \"{}\"\n",
            lab.relay.addr,
            anchor.display()
        ),
    )?;
    let cli = Cli::new(files.join("data"))?;
    cli.import(&write_zone(files, "example.test.", &example_with_insecure_target())?)?;
    let server = serve_with_config(cli.clone(), &config)?;
    Ok((cli, server))
}

/// Fault: ANAME upstream queries had no DO bit and the answer was taken
/// as it came, so a forged address was served (and signed) as the
/// zone's own. Now a forged answer for a signed target is bogus: the last
/// good set stays, and the status says why.
#[test]
fn aname_refuses_a_spoofed_answer_for_a_signed_target() -> Result<()> {
    let lab = lab::Lab::start()?;
    let files = tempfile::tempdir()?;
    let (cli, customer) = serve_customer(&lab, files.path())?;
    let dns = customer.udp_addr();
    wait_for_apex_addresses(dns, &["192.0.2.10"], &["2001:db8::10"], PROPAGATION)
        .with_context(|| format!("status: {:?}", status_of(&cli, CUSTOMER, APEX)))?;

    lab.relay.lie(lab::FORGE);
    let line = wait_for_status(&cli, "the forged answer reported as bogus", RECOVERY, |l| {
        l.last_error.as_deref().is_some_and(|e| e.contains("bogus") && e.contains("provider.test"))
    })?;
    ensure!(line.addresses_text == "192.0.2.10,2001:db8::10", "the last good set should stay: {line}");
    let a = ask(dns, APEX, "A")?;
    ensure!(a.data("A") == ["192.0.2.10"], "the forged address is served:\n{a}");

    lab.relay.lie(lab::HONEST);
    wait_for_status(&cli, "recovery once the answers are genuine", RECOVERY, |l| l.last_error.is_none())?;
    Ok(())
}

/// Fault: an answer without signatures was taken whatever the target
/// zone. Now an insecure target is taken when the parent proves it has
/// no DS, and a claimed absence of DS without its proof is a failure,
/// for the insecure zone and for the signed one.
#[test]
fn aname_takes_an_insecure_target_only_when_proven() -> Result<()> {
    let lab = lab::Lab::start()?;
    let files = tempfile::tempdir()?;
    let (cli, customer) = serve_customer(&lab, files.path())?;
    let dns = customer.udp_addr();
    let ins = "ins.example.test.";
    let status = |owner: &str| status_of(&cli, CUSTOMER, owner);
    wait_until("the insecure target resolved", PROPAGATION, || {
        let a = ask(dns, ins, "A")?;
        Ok((a.data("A") == ["192.0.2.20"]).then_some(()))
    })
    .with_context(|| format!("status: {:?}", status(ins)))?;
    ensure!(status(ins)?.last_error.is_none(), "{}", status(ins)?);

    lab.relay.lie(lab::UNPROVEN);
    for owner in [ins, APEX] {
        wait_until(&format!("{owner}: an unproven absence of DS refused"), RECOVERY, || {
            let line = status(owner)?;
            Ok(line.last_error.as_deref().is_some_and(|e| e.contains("bogus DS")).then_some(line))
        })?;
    }
    let a = ask(dns, ins, "A")?;
    ensure!(a.data("A") == ["192.0.2.20"], "the last good set of the insecure target should stay:\n{a}");
    let a = ask(dns, APEX, "A")?;
    ensure!(a.data("A") == ["192.0.2.10"], "the last good set of the signed target should stay:\n{a}");
    Ok(())
}
