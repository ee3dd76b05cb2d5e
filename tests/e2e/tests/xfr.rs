//! Zone transfers out of a real `sixgate serve`: AXFR and IXFR read with
//! kdig, access by the configured secondaries' addresses and keys, and a
//! knotd that follows sixgate as a static secondary, by AXFR first and
//! IXFR after each change, signed zones (NSEC and NSEC3) included.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::json;
use sixgate_e2e::process::require_program;
use sixgate_e2e::xfrlab::{KnotSecondary, XfrAnswer, finished_transfers, xfr, xfr_udp};
use sixgate_e2e::{Cli, Sixgate, ZoneFile, wait_until};

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 3600 900 604800 300\n\
@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";
/// Records in an AXFR of [`ZONE`]: SOA, NS, two A, and the closing SOA.
const ZONE_AXFR_RECORDS: usize = 5;
/// A port for the secondaries' NOTIFY address: access goes by address,
/// so nothing needs to listen there for transfers.
const SECONDARY: &str = "127.0.0.1:5399";
const WAIT: Duration = Duration::from_secs(20);

/// A data directory with [`ZONE`] imported.
fn data(dir: &Path) -> Result<Cli> {
    let cli = Cli::new(dir.join("data"))?;
    let path = dir.join("example.test.zone");
    std::fs::write(&path, ZONE)?;
    cli.import(&ZoneFile::new("example.test.", path))?;
    Ok(cli)
}

/// A transfer key made with `tsig create --transfer`: `ALG:NAME:SECRET`.
fn transfer_key(cli: &Cli, name: &str) -> Result<String> {
    Ok(cli.run(&["tsig", "create"], &[name, "--transfer"])?.ok()?.stdout.trim().to_owned())
}

fn api_put_a(server: &Sixgate, name: &str, addr: &str) -> Result<()> {
    let base = server.api_url().context("no api url")?;
    let token = server.admin_token()?;
    let r = sixgate_e2e::http::bearer(
        "PUT",
        &base,
        &format!("/v1/zones/example.test/rrsets/{name}/A"),
        &token,
        Some(&json!({"ttl": 60, "records": [addr]})),
        WAIT,
    )?;
    ensure!(r.status == 200, "PUT {name}: {} {}", r.status, r.body);
    Ok(())
}

/// The serial sixgate answers for example.test. over UDP.
fn served_serial(server: &Sixgate) -> Result<u32> {
    let dig = sixgate_e2e::kdig::kdig(server.udp_addr(), &["example.test.", "SOA"])?;
    dig.answers("SOA")
        .first()
        .and_then(|r| r.data.split_whitespace().nth(2)?.parse().ok())
        .with_context(|| format!("no SOA serial:\n{dig}"))
}

/// knotd's copy of example.test. is sixgate's, record for record (both
/// read by AXFR, in any order; sixgate's signed with `key` when given).
fn same_zone(server: &Sixgate, knot: &KnotSecondary, key: Option<&str>) -> Result<()> {
    let set = |a: &XfrAnswer| {
        let mut v: Vec<(String, String, String)> = a
            .records
            .iter()
            .map(|r| (r.owner.to_ascii_lowercase(), r.rtype.clone(), r.data.to_ascii_lowercase()))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let ours = xfr(server.tcp_addr(), "example.test.", "AXFR", key, None)?;
    let theirs = xfr(knot.addr(), "example.test.", "AXFR", None, None)?;
    ensure!(ours.error.is_none() && theirs.error.is_none(), "{ours}\n{theirs}");
    let (a, b) = (set(&ours), set(&theirs));
    let missing: Vec<_> = a.iter().filter(|r| !b.contains(r)).collect();
    let extra: Vec<_> = b.iter().filter(|r| !a.contains(r)).collect();
    ensure!(
        missing.is_empty() && extra.is_empty(),
        "knotd's copy differs from what sixgate serves: missing {missing:?}, extra {extra:?}"
    );
    Ok(())
}

fn is_axfr_of_zone(a: &XfrAnswer, serial: u32) -> Result<()> {
    ensure!(a.error.is_none(), "refused:\n{a}");
    ensure!(a.records.first().and_then(|r| r.serial()) == Some(serial), "opening SOA:\n{a}");
    ensure!(a.records.last().and_then(|r| r.serial()) == Some(serial), "closing SOA:\n{a}");
    ensure!(a.soa_serials().len() == 2, "an AXFR has two SOAs:\n{a}");
    Ok(())
}

#[test]
fn axfr_needs_the_secondarys_address_and_key_and_refusals_are_logged_and_counted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = data(dir.path())?;
    let key = transfer_key(&cli, "xfr-key")?;
    cli.run(&["secondary", "add"], &[SECONDARY, "--tsig", &key])?.ok()?;
    let mut server = Sixgate::serve(cli)?;
    let at = server.tcp_addr();

    let signed = xfr(at, "example.test.", "AXFR", Some(&key), None)?;
    is_axfr_of_zone(&signed, 1)?;
    ensure!(signed.records.len() == ZONE_AXFR_RECORDS, "the whole zone:\n{signed}");
    ensure!(
        signed.messages >= 1 && signed.tsig == signed.messages,
        "every message signed (kdig verifies each):\n{signed}"
    );

    // Unsigned, though the secondary has a key.
    let unsigned = xfr(at, "example.test.", "AXFR", None, None)?;
    ensure!(unsigned.error.as_deref() == Some("REFUSED") && unsigned.records.is_empty(), "{unsigned}");
    // The right key from an address no secondary has.
    let elsewhere = xfr(at, "example.test.", "AXFR", Some(&key), Some("127.0.0.2"))?;
    ensure!(elsewhere.error.as_deref() == Some("REFUSED") && elsewhere.records.is_empty(), "{elsewhere}");
    // The key's name with another secret: NOTAUTH with BADSIG (RFC 8945 §5.2.2).
    let forged = format!("hmac-sha256:xfr-key:{}", "A".repeat(43) + "=");
    let bad = xfr(at, "example.test.", "AXFR", Some(&forged), None)?;
    ensure!(bad.error.as_deref() == Some("BADSIG") && bad.records.is_empty(), "{bad}");
    // A zone not served here, as Knot answers it.
    let other = xfr(at, "nothere.test.", "AXFR", Some(&key), None)?;
    ensure!(other.error.as_deref() == Some("NOTAUTH"), "{other}");

    // Each refusal is logged with the peer, the zone and why.
    let log = wait_until("the refusals in the log", WAIT, || {
        let log = server.process().log_text();
        Ok(log.contains("peer=127.0.0.2").then_some(log))
    })?;
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("zone transfer refused")).collect();
    ensure!(
        refused.iter().any(|l| l.contains("peer=127.0.0.2:")
            && l.contains("zone=example.test.")
            && l.contains("not a secondary of the zone")),
        "{log}"
    );
    ensure!(refused.iter().any(|l| l.contains("unsigned; the secondary has a key")), "{log}");
    ensure!(log.contains("zone transfer sent") && log.contains("kind=\"axfr\""), "{log}");
    let m = server.metrics()?;
    let count = |kind: &str, outcome: &str| {
        m.value(&format!("sixgate_xfr_requests_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}"))
    };
    ensure!(count("axfr", "done") == 1, "{}", m.0);
    ensure!(count("axfr", "refused") == 2, "{}", m.0);
    ensure!(count("axfr", "notauth") == 2, "{}", m.0);
    ensure!(m.require("sixgate_xfr_records_total")? == ZONE_AXFR_RECORDS as u64, "{}", m.0);
    Ok(())
}

#[test]
fn ixfr_after_an_api_write_is_incremental_and_whole_from_before_a_replace() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = data(dir.path())?;
    cli.run(&["secondary", "add"], &[SECONDARY])?.ok()?;
    let server = Sixgate::serve(cli)?;
    let at = server.tcp_addr();
    let s0 = served_serial(&server)?;

    api_put_a(&server, "new.example.test.", "192.0.2.7")?;
    let s1 = served_serial(&server)?;
    api_put_a(&server, "www.example.test.", "192.0.2.8")?;
    let s2 = served_serial(&server)?;
    ensure!(s0 != s1 && s1 != s2, "serials {s0} {s1} {s2}");

    // RFC 1995 §4: the new SOA, then per version its old SOA, the records
    // deleted, its new SOA and the records added; the new SOA again.
    let ixfr = xfr(at, "example.test.", &format!("IXFR={s1}"), None, None)?;
    let shape: Vec<(String, String)> =
        ixfr.records.iter().map(|r| (r.rtype.clone(), r.data.clone())).collect();
    ensure!(ixfr.soa_serials() == [s2, s1, s2, s2], "{ixfr}");
    ensure!(shape.len() == 6, "SOA, SOA, www's old A, SOA, www's new A, SOA:\n{ixfr}");
    ensure!(shape[2] == ("A".into(), "192.0.2.1".into()), "the deletion:\n{ixfr}");
    ensure!(shape[4] == ("A".into(), "192.0.2.8".into()), "the addition:\n{ixfr}");
    let two = xfr(at, "example.test.", &format!("IXFR={s0}"), None, None)?;
    ensure!(two.soa_serials() == [s2, s0, s1, s1, s2, s2], "two versions:\n{two}");
    ensure!(two.records.iter().any(|r| r.owner == "new.example.test." && r.data == "192.0.2.7"), "{two}");
    // Up to date: the current SOA alone (RFC 1995 §2).
    let current = xfr(at, "example.test.", &format!("IXFR={s2}"), None, None)?;
    ensure!(current.soa_serials() == [s2] && current.records.len() == 1, "{current}");
    // Over UDP, as Knot: the current SOA alone, so a client behind it
    // retries over TCP (RFC 1995 §2); refused to other addresses alike.
    let udp = xfr_udp(server.udp_addr(), "example.test.", &format!("IXFR={s0}"), None)?;
    ensure!(udp.soa_serials() == [s2] && udp.records.len() == 1, "{udp}");
    let udp = xfr_udp(server.udp_addr(), "example.test.", &format!("IXFR={s0}"), Some("127.0.0.2"))?;
    ensure!(udp.error.as_deref() == Some("REFUSED"), "{udp}");
    let udp = xfr_udp(server.udp_addr(), "example.test.", "AXFR", None)?;
    ensure!(udp.error.as_deref() == Some("NOTIMPL"), "AXFR over UDP (RFC 5936 §4.2):\n{udp}");

    // A replace (`zone import` while the server runs): the journal cannot
    // lead from before it, so the answer is the whole zone, AXFR-style.
    let path = dir.path().join("replaced.zone");
    std::fs::write(&path, ZONE.replace("192.0.2.1", "192.0.2.9"))?;
    server.cli().import(&ZoneFile::new("example.test.", path))?;
    let s3 = wait_until("the replaced zone to be served", WAIT, || {
        let s = served_serial(&server)?;
        Ok((s != s2).then_some(s))
    })?;
    let full = xfr(at, "example.test.", &format!("IXFR={s1}"), None, None)?;
    is_axfr_of_zone(&full, s3)?;
    ensure!(full.records.len() == ZONE_AXFR_RECORDS, "{full}");
    ensure!(full.records.iter().any(|r| r.data == "192.0.2.9"), "{full}");
    // A serial the journal never had: whole too.
    let unknown = xfr(at, "example.test.", &format!("IXFR={}", s3.wrapping_sub(1000)), None, None)?;
    is_axfr_of_zone(&unknown, s3)?;

    let m = server.metrics()?;
    let count =
        |kind: &str| m.value(&format!("sixgate_xfr_requests_total{{kind=\"{kind}\",outcome=\"done\"}}"));
    ensure!((count("ixfr"), count("up_to_date"), count("ixfr_full")) == (2, 2, 2), "{}", m.0);
    Ok(())
}

/// knotd as a static secondary of sixgate, signed with a transfer key
/// when `signed`: its first copy comes by AXFR, the next by IXFR after an
/// API write and a refresh.
fn knot_follows_by_axfr_then_ixfr(signed: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = data(dir.path())?;
    let key = if signed { Some(transfer_key(&cli, "knot-key")?) } else { None };
    let mut add = vec![SECONDARY];
    if let Some(k) = &key {
        add.extend(["--tsig", k]);
    }
    cli.run(&["secondary", "add"], &add)?.ok()?;
    let server = Sixgate::serve(cli)?;
    let mut knot = KnotSecondary::start(server.tcp_addr(), "example.test.", key.as_deref())?;
    let first = finished_transfers(&knot.log_text(), "example.test.");
    ensure!(
        first.iter().any(|l| l.contains("AXFR, incoming")),
        "knotd's first transfer:\n{}",
        knot.log_text()
    );

    api_put_a(&server, "new.example.test.", "192.0.2.7")?;
    let s1 = served_serial(&server)?;
    // NOTIFY is not sent yet: knotd is asked to refresh.
    knot.refresh()?;
    knot.wait_for_serial(|s| s == s1)?;
    let log = knot.log_text();
    let ixfr: Vec<String> = finished_transfers(&log, "example.test.")
        .into_iter()
        .filter(|l| l.contains("IXFR, incoming"))
        .collect();
    ensure!(!ixfr.is_empty(), "no IXFR in knotd's log:\n{log}");
    ensure!(!log.contains("AXFR-style"), "the IXFR was answered in full:\n{log}");
    let dig = sixgate_e2e::kdig::kdig(knot.addr(), &["new.example.test.", "A"])?;
    ensure!(dig.aa() && dig.data("A") == ["192.0.2.7"], "knotd answers the new record:\n{dig}");
    same_zone(&server, &knot, key.as_deref())
}

#[test]
fn knotd_follows_unsigned_requests_by_axfr_then_ixfr() -> Result<()> {
    knot_follows_by_axfr_then_ixfr(false)
}

#[test]
fn knotd_follows_with_a_transfer_key_by_axfr_then_ixfr() -> Result<()> {
    knot_follows_by_axfr_then_ixfr(true)
}

/// knotd's zone file, once it holds `serial`, passes `kzonecheck -d on`.
fn knot_copy_verifies(knot: &KnotSecondary, serial: u32) -> Result<()> {
    let file = knot.zone_file();
    let soa = format!(" {serial} ");
    wait_until("knotd to write its copy", WAIT, || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        Ok(text.lines().any(|l| l.contains("SOA") && l.contains(&soa)).then_some(()))
    })?;
    let out = std::process::Command::new("kzonecheck")
        .args(["-o", "example.test.", "-d", "on"])
        .arg(&file)
        .output()
        .context("running kzonecheck")?;
    ensure!(
        out.status.success(),
        "kzonecheck -d on refused knotd's copy at {serial}: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&file).unwrap_or_default()
    );
    Ok(())
}

/// A signed zone reaches knotd as served, by AXFR and then by IXFR after
/// a change that re-signs it, and knotd's copy verifies both times.
fn signed_zone_transfers_and_verifies(nsec3: bool) -> Result<()> {
    require_program("kzonecheck", "knot-dnssecutils")?;
    let dir = tempfile::tempdir()?;
    let cli = data(dir.path())?;
    let mut enable = vec!["example.test."];
    if nsec3 {
        enable.push("--nsec3");
    }
    cli.run(&["dnssec", "enable"], &enable)?.ok()?;
    cli.run(&["secondary", "add"], &[SECONDARY])?.ok()?;
    let server = Sixgate::serve(cli)?;
    let s0 = served_serial(&server)?;
    let mut knot = KnotSecondary::start(server.tcp_addr(), "example.test.", None)?;
    let s = knot.wait_for_serial(|s| s == s0)?;
    knot_copy_verifies(&knot, s)?;
    let text = std::fs::read_to_string(knot.zone_file())?;
    let chain = if nsec3 { "NSEC3" } else { "NSEC" };
    ensure!(
        text.contains("RRSIG")
            && text.contains("DNSKEY")
            && text.lines().any(|l| l.contains(&format!("\t{chain}\t"))),
        "knotd's copy lacks signatures or its {chain} chain:\n{text}"
    );

    api_put_a(&server, "new.deep.example.test.", "192.0.2.7")?;
    let s1 = served_serial(&server)?;
    knot.refresh()?;
    knot.wait_for_serial(|s| s == s1)?;
    knot_copy_verifies(&knot, s1)?;
    let log = knot.log_text();
    ensure!(
        finished_transfers(&log, "example.test.").iter().any(|l| l.contains("IXFR, incoming"))
            && !log.contains("AXFR-style"),
        "the change came by IXFR:\n{log}"
    );
    same_zone(&server, &knot, None)
}

#[test]
fn a_signed_nsec_zone_reaches_knotd_and_verifies_after_an_ixfr() -> Result<()> {
    signed_zone_transfers_and_verifies(false)
}

#[test]
fn a_signed_nsec3_zone_reaches_knotd_and_verifies_after_an_ixfr() -> Result<()> {
    signed_zone_transfers_and_verifies(true)
}

/// The catalog zone (RFC 9432) transfers like any zone, but only to the
/// secondaries that follow it, and always whole.
#[test]
fn the_catalog_zone_transfers_to_catalog_followers_only() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = data(dir.path())?;
    cli.run(&["secondary", "add"], &[SECONDARY, "--catalog"])?.ok()?;
    cli.run(&["secondary", "add"], &["127.0.0.2:5399"])?.ok()?;
    let server = Sixgate::serve(cli)?;
    let at = server.tcp_addr();
    let catalog = wait_until("the catalog zone to be served", WAIT, || {
        let a = xfr(at, "catalog.invalid.", "AXFR", None, None)?;
        Ok(a.error.is_none().then_some(a))
    })?;
    let serial = catalog.records.first().and_then(|r| r.serial()).context("no SOA")?;
    is_axfr_of_zone(&catalog, serial)?;
    ensure!(
        catalog.records.iter().any(|r| r.rtype == "PTR"
            && r.owner.ends_with(".zones.catalog.invalid.")
            && r.data == "example.test."),
        "the member's PTR (RFC 9432 §4.1):\n{catalog}"
    );
    ensure!(
        catalog.records.iter().any(|r| r.owner == "version.catalog.invalid." && r.data == "\"2\""),
        "{catalog}"
    );
    // A secondary that does not follow the catalog gets its zones, not it.
    let plain = xfr(at, "catalog.invalid.", "AXFR", None, Some("127.0.0.2"))?;
    ensure!(plain.error.as_deref() == Some("REFUSED"), "{plain}");
    let zone = xfr(at, "example.test.", "AXFR", None, Some("127.0.0.2"))?;
    ensure!(zone.error.is_none() && zone.records.len() == ZONE_AXFR_RECORDS, "{zone}");
    // The catalog is not journaled: an IXFR of it is answered whole.
    let ixfr = xfr(at, "catalog.invalid.", &format!("IXFR={}", serial.wrapping_sub(1)), None, None)?;
    is_axfr_of_zone(&ixfr, serial)?;
    Ok(())
}
