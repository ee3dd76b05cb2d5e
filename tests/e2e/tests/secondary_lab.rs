//! The secondaries lab proven against a real primary: knotd, named and nsd
//! follow a knotd primary by AXFR, then IXFR after NOTIFY, statically or
//! through a catalog zone (RFC 9432), with TSIG or without, and the lab
//! tells which kind of transfer brought each version and when a transfer
//! failed. sixgate's own transfer service is tested against the same lab.

use anyhow::{Context, Result, ensure};
use sixgate_e2e::kdig::kdig;
use sixgate_e2e::knot_primary::KnotPrimary;
use sixgate_e2e::secondary::{Peer, Secondary, SecondaryConfig, Transfer, TransferKey, XfrKind};
use sixgate_e2e::wait_until;

const CATALOG: &str = "catalog.invalid.";

/// Waits until `secondary` logged the transfer that brought `serial` of
/// `zone`: the serial can be served a moment before the log line is
/// flushed.
fn transfer_of(secondary: &Secondary, zone: &str, serial: u32) -> Result<Transfer> {
    wait_until(
        &format!("{} to log the transfer of {zone} serial {serial}", secondary.peer()),
        std::time::Duration::from_secs(10),
        || Ok(secondary.last_transfer(zone)?.filter(|t| t.serial == serial)),
    )
    .with_context(|| format!("{} log:\n{}", secondary.peer(), secondary.log_text()))
}

/// knotd and named follow the catalog: members added and removed on the
/// primary come and go on both without touching their configuration, and
/// a group property neither knows (RFC 9432 §4.4.2) never keeps a member
/// from being served. nsd, statically configured, gets its zone.
#[test]
fn catalog_members_come_and_go_on_knotd_and_named_whatever_their_group() -> Result<()> {
    let key = TransferKey::random("lab-xfr")?;
    let mut primary = KnotPrimary::start(&["a.lab.", "b.lab.", "c.lab."], Some(CATALOG), Some(&key))?;
    primary.set_catalog(&[("a.lab.", Some("customer-1")), ("b.lab.", None)])?;

    let catalog = SecondaryConfig::new(primary.addr()).with_key(&key).with_catalog(CATALOG);
    let knot = Secondary::start(Peer::Knot, &catalog)?;
    let named = Secondary::start(Peer::Bind, &catalog)?;
    let nsd = Secondary::start(
        Peer::Nsd,
        &SecondaryConfig::new(primary.addr()).with_key(&key).with_zone("a.lab."),
    )?;
    primary.notify(&[knot.addr(), named.addr(), nsd.addr()])?;

    for secondary in [&knot, &named] {
        secondary.wait_for_serial("a.lab.", 1)?;
        secondary.wait_for_serial("b.lab.", 1)?;
        ensure!(
            secondary.serial("c.lab.")?.is_none(),
            "{} serves c.lab., not in the catalog",
            secondary.peer()
        );
        ensure!(
            transfer_of(secondary, "a.lab.", 1)?.kind == XfrKind::Axfr,
            "{}: the first load is an AXFR",
            secondary.peer()
        );
    }
    nsd.wait_for_serial("a.lab.", 1)?;
    ensure!(transfer_of(&nsd, "a.lab.", 1)?.kind == XfrKind::Axfr, "nsd: the first load is an AXFR");
    ensure!(nsd.serial("b.lab.")?.is_none(), "nsd follows only its static zone");

    // A member added, with a group no secondary has a template or option
    // for; a member removed.
    primary.set_catalog(&[("a.lab.", Some("customer-1")), ("c.lab.", Some("operator"))])?;
    for secondary in [&knot, &named] {
        secondary.wait_for_serial("c.lab.", 1)?;
        secondary.wait_for_absent("b.lab.")?;
        ensure!(secondary.serial("a.lab.")? == Some(1), "{} keeps a.lab.", secondary.peer());
    }
    // named says so, and still adds the member.
    ensure!(
        named.log_text().contains("catz: invalid record in catalog zone - group."),
        "named 9.18 was expected to ignore the group property:\n{}",
        named.log_text()
    );
    Ok(())
}

/// A change on the primary reaches every secondary by IXFR after NOTIFY;
/// the initial load was an AXFR. Unsigned: transfers allowed by address.
#[test]
fn a_change_reaches_knotd_named_and_nsd_by_ixfr() -> Result<()> {
    let zone = "change.lab.";
    let mut primary = KnotPrimary::start(&[zone], None, None)?;
    let config = SecondaryConfig::new(primary.addr()).with_zone(zone);
    let secondaries =
        Peer::ALL.iter().map(|&peer| Secondary::start(peer, &config)).collect::<Result<Vec<_>>>()?;
    let addrs: Vec<_> = secondaries.iter().map(Secondary::addr).collect();
    primary.notify(&addrs)?;
    for secondary in &secondaries {
        secondary.wait_for_serial(zone, 1)?;
        let first = transfer_of(secondary, zone, 1)?;
        ensure!(first.kind == XfrKind::Axfr, "{}: {first:?}", secondary.peer());
    }

    let serial = primary.change(zone, "v2")?;
    for secondary in &secondaries {
        secondary.wait_for_serial(zone, serial)?;
        let change = transfer_of(secondary, zone, serial)?;
        ensure!(change.kind == XfrKind::Ixfr, "{}: {change:?}", secondary.peer());
        // The serial came with the data.
        let dig = kdig(secondary.addr(), &["www.change.lab.", "TXT"])?;
        ensure!(dig.aa() && dig.data("TXT") == ["\"v2\""], "{}: {dig}", secondary.peer());
    }

    // Each copy is the primary's zone, and passes Knot's zone checker.
    for secondary in &secondaries {
        let text = secondary.zone_text(zone)?;
        ensure!(
            text.contains("\"v2\"") && text.matches("\tSOA\t").count() == 1,
            "{}: {text}",
            secondary.peer()
        );
        let file = secondary.dir().join("copy.zone");
        std::fs::write(&file, &text)?;
        let kzonecheck = sixgate_e2e::process::require_program("kzonecheck", "knot")?;
        let out = std::process::Command::new(kzonecheck).args(["-o", zone]).arg(&file).output()?;
        ensure!(
            out.status.success(),
            "{}: kzonecheck: {}",
            secondary.peer(),
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // Two changes while nobody is told: a forced refresh fetches both in
    // one IXFR.
    primary.notify(&[])?;
    primary.change(zone, "v3")?;
    let serial = primary.change(zone, "v4")?;
    for secondary in &secondaries {
        secondary.refresh(zone)?;
        secondary.wait_for_serial(zone, serial)?;
        let change = transfer_of(secondary, zone, serial)?;
        ensure!(change.kind == XfrKind::Ixfr, "{}: {change:?}", secondary.peer());
    }
    Ok(())
}

/// With the key on both sides every peer transfers; with a wrong secret
/// under the same name, or no key at all, no transfer succeeds and the lab
/// finds the failure in the peer's log.
#[test]
fn transfers_need_the_key_and_a_wrong_one_fails_visibly() -> Result<()> {
    let zone = "signed.lab.";
    let key = TransferKey::random("lab-key")?;
    let wrong = key.wrong()?;
    let primary = KnotPrimary::start(&[zone], None, Some(&key))?;

    for peer in Peer::ALL {
        let good =
            Secondary::start(peer, &SecondaryConfig::new(primary.addr()).with_key(&key).with_zone(zone))?;
        good.wait_for_serial(zone, 1)?;
        ensure!(good.failures(zone).is_empty(), "{peer}: {:?}", good.failures(zone));

        for (what, config) in [
            ("a wrong secret", SecondaryConfig::new(primary.addr()).with_key(&wrong).with_zone(zone)),
            ("no key", SecondaryConfig::new(primary.addr()).with_zone(zone)),
        ] {
            let bad = Secondary::start(peer, &config)?;
            let failures = wait_until(
                &format!("{peer} with {what} to log a failed transfer"),
                std::time::Duration::from_secs(20),
                || Ok(Some(bad.failures(zone)).filter(|f| !f.is_empty())),
            )
            .with_context(|| format!("{peer} log:\n{}", bad.log_text()))?;
            ensure!(bad.serial(zone)?.is_none(), "{peer} with {what} serves {zone}: {failures:?}");
        }
    }
    Ok(())
}

/// The fenced block after `<!-- checked: PEER -->` in `doc`.
fn snippet<'a>(doc: &'a str, peer: &str) -> Result<&'a str> {
    let marker = format!("<!-- checked: {peer} -->");
    let after = doc.split_once(&marker).with_context(|| format!("no {marker}"))?.1;
    let fence = after.split_once("```").with_context(|| format!("no block after {marker}"))?.1;
    // Past the info string (```yaml) to the closing fence.
    let body = fence.split_once('\n').map_or("", |(_, rest)| rest);
    Ok(body.split_once("```").with_context(|| format!("an unclosed block after {marker}"))?.0)
}

/// Runs `checker ARGS FILE` on `text`; its success and output.
fn check(checker: &str, package: &str, args: &[&str], text: &str) -> Result<(bool, String)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("snippet.conf");
    std::fs::write(&file, text)?;
    let program = sixgate_e2e::process::require_program(checker, package)?;
    let mut command = std::process::Command::new(program);
    // knotc takes the file before its command.
    match checker {
        "knotc" => command.arg("-c").arg(&file).args(args),
        _ => command.args(args).arg(&file),
    };
    let output = command.output()?;
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), said))
}

/// The configurations docs/secondaries.md gives operators are accepted by
/// the servers they are for, with a real secret in place of SECRET; and
/// each checker refuses the same text with a misspelt option, so that the
/// check checks.
#[test]
fn the_secondary_configurations_in_the_docs_pass_their_servers_checks() -> Result<()> {
    let doc = std::fs::read_to_string(sixgate_e2e::process::workspace_root().join("docs/secondaries.md"))?;
    let secret = TransferKey::random("xfr.example.")?.secret;
    for (peer, checker, package, args) in [
        ("knotd", "knotc", "knot", &["conf-check"][..]),
        ("named", "named-checkconf", "bind9-utils", &[][..]),
        ("nsd", "nsd-checkconf", "nsd", &[][..]),
    ] {
        let text = snippet(&doc, peer)?.replace("SECRET", &secret);
        ensure!(text.contains("xfr.example.") && text.contains("2001:db8::1"), "{peer}: {text}");
        let (ok, said) = check(checker, package, args, &text)?;
        ensure!(ok, "{checker} refuses the {peer} configuration of docs/secondaries.md:\n{said}\n{text}");
        let broken = text.replacen("algorithm", "algorithmm", 1);
        let (ok, said) = check(checker, package, args, &broken)?;
        ensure!(!ok, "{checker} accepts a misspelt option, so it checks nothing:\n{said}");
    }
    Ok(())
}
