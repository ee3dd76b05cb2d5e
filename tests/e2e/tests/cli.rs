//! The command-line contract of docs/cli.md, end to end.
//!
//! Each test runs the real binary on its own temporary data directory, and
//! where a server is involved, a private `sixgate serve` on an OS-chosen
//! loopback port. Changes made by the CLI while the server runs are polled
//! for with a generous deadline; nothing here asserts how fast they arrive.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::knot::which;
use sixgate_e2e::normalize::Response;
use sixgate_e2e::{Cli, CliOutput, Knot, QuerySpec, Sixgate, ZoneFile, udp_exchange, wait_until};

/// How long a CLI change may take to be served.
const PROPAGATION: Duration = Duration::from_secs(20);

const CLI_ZONE: &str = "cli.test";

/// A small zone; `serial` and the address of `www` vary between versions.
fn cli_zone_text(serial: u32, www: &str, extra: &str) -> String {
    format!(
        "$ORIGIN cli.test.\n\
         $TTL 300\n\
         @\tSOA\tns1 hostmaster {serial} 3600 900 604800 60\n\
         @\tNS\tns1\n\
         ns1\tA\t192.0.2.1\n\
         www\tA\t{www}\n\
         {extra}"
    )
}

fn write_zone(dir: &Path, file: &str, text: &str) -> Result<ZoneFile> {
    let path = dir.join(file);
    fs::write(&path, text)?;
    Ok(ZoneFile::new(CLI_ZONE, path))
}

/// One UDP query; the parsed response, if any.
fn ask(server: SocketAddr, name: &str, qtype: u16) -> Result<Option<Response>> {
    let query = QuerySpec::parse(name, qtype)?.with_id(0x0c11).encode()?;
    match udp_exchange(server, &query, Duration::from_secs(1), 2)? {
        Some(bytes) => Ok(Some(Response::parse(&bytes)?)),
        None => Ok(None),
    }
}

/// The SOA serial served for `zone` with AA, if any.
fn served_serial(server: SocketAddr, zone: &str) -> Result<Option<u32>> {
    let Some(response) = ask(server, zone, 6)? else {
        return Ok(None);
    };
    if response.rcode() != 0 || !response.aa() {
        return Ok(None);
    }
    Ok(response.answers_of(6).next().and_then(|soa| {
        let at = soa.rdata.len().checked_sub(20)?;
        let bytes = soa.rdata.get(at..at + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }))
}

/// Polls until `zone`'s served serial is `serial`.
fn wait_for_serial(server: SocketAddr, zone: &str, serial: u32) -> Result<()> {
    wait_until(&format!("{zone} to be served with serial {serial}"), PROPAGATION, || {
        Ok((served_serial(server, zone)? == Some(serial)).then_some(()))
    })
}

/// The A addresses served for `name`, or `None` unless NOERROR with AA.
fn served_a(server: SocketAddr, name: &str) -> Result<Option<Vec<[u8; 4]>>> {
    let Some(response) = ask(server, name, 1)? else {
        return Ok(None);
    };
    if response.rcode() != 0 || !response.aa() {
        return Ok(None);
    }
    Ok(Some(response.answers_of(1).filter_map(|rr| rr.rdata.as_slice().try_into().ok()).collect()))
}

/// Asserts a failed command: non-zero exit, one line on stderr, `error: ...`.
fn assert_failed(output: &CliOutput) -> Result<()> {
    ensure!(!output.success(), "expected failure:\n{output}");
    let lines: Vec<&str> = output.stderr.trim_end().lines().collect();
    ensure!(
        lines.len() == 1 && lines.first().is_some_and(|l| l.starts_with("error: ")),
        "expected exactly one stderr line starting with `error: `:\n{output}"
    );
    Ok(())
}

/// The fields of `zone`'s line in `zone list` output, if listed (the name
/// may be printed with or without its trailing dot).
fn list_entry(list: &CliOutput, zone: &str) -> Option<Vec<String>> {
    list.stdout
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect::<Vec<_>>())
        .find(|fields| fields.first().is_some_and(|n| n.trim_end_matches('.') == zone))
}

fn kdig(server: SocketAddr, args: &[&str]) -> Result<String> {
    let kdig = which("kdig")?;
    let port = server.port().to_string();
    let output = Command::new(kdig)
        .args(["@127.0.0.1", "-p", &port, "+time=2", "+retry=2"])
        .args(args)
        .output()
        .context("running kdig")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(output.status.success(), "kdig failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    Ok(text)
}

/// The harness's start on a fixed port (what the simulated-time labs
/// restart on) waits out a moment in which another socket holds the port,
/// instead of failing the test that restarts.
#[test]
fn a_start_on_a_fixed_port_held_for_a_moment_waits_for_it() -> Result<()> {
    let port = sixgate_e2e::knot::free_port_pair()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let holder = std::net::UdpSocket::bind(addr)?;
    let data = tempfile::tempdir()?;
    // The holder lets go of the port once the first start has failed on it.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        drop(holder);
    });
    let server = Sixgate::serve_at(Cli::new(data.path())?, addr, &[])?;
    release.join().map_err(|_| anyhow::anyhow!("the holder thread panicked"))?;
    ensure!(server.udp_addr() == addr, "listening on {} instead of {addr}", server.udp_addr());
    let text = kdig(addr, &["+norec", "demo.sixgate.test", "SOA"])?;
    ensure!(text.contains("status: NOERROR"), "kdig output:\n{text}");
    Ok(())
}

#[test]
fn first_start_serves_the_demo_zone_with_aa_to_kdig() -> Result<()> {
    let data = tempfile::tempdir()?;
    let server = Sixgate::serve(Cli::new(data.path())?)?;
    let text = kdig(server.udp_addr(), &["+norec", "demo.sixgate.test", "SOA"])?;
    ensure!(text.contains("status: NOERROR"), "kdig output:\n{text}");
    let flags = text
        .lines()
        .find(|l| l.starts_with(";; Flags:"))
        .with_context(|| format!("no flags line:\n{text}"))?;
    ensure!(flags.contains(" aa") && flags.contains("ANSWER: 1"), "kdig output:\n{text}");
    ensure!(
        text.lines().any(|l| l.starts_with("demo.sixgate.test.") && l.contains("\tSOA\t")),
        "no SOA in the answer:\n{text}"
    );
    let list = server.cli().run(&["zone", "list"], &[])?.ok()?;
    ensure!(list.stdout.contains("demo.sixgate.test"), "zone list:\n{list}");
    Ok(())
}

#[test]
fn zone_import_while_serving_is_served_and_replaces_the_zone() -> Result<()> {
    let data = tempfile::tempdir()?;
    let server = Sixgate::serve(Cli::new(data.path())?)?;
    let files = tempfile::tempdir()?;
    let v1 = write_zone(files.path(), "v1.zone", &cli_zone_text(1, "192.0.2.10", "old\tA\t192.0.2.11\n"))?;
    server.cli().import(&v1)?;
    wait_for_serial(server.udp_addr(), CLI_ZONE, 1)?;
    ensure!(served_a(server.udp_addr(), "old.cli.test")?.is_some(), "old.cli.test not served");

    let v2 = write_zone(files.path(), "v2.zone", &cli_zone_text(2, "192.0.2.20", ""))?;
    server.cli().import(&v2)?;
    wait_for_serial(server.udp_addr(), CLI_ZONE, 2)?;
    ensure!(served_a(server.udp_addr(), "www.cli.test")? == Some(vec![[192, 0, 2, 20]]));
    // Replaced as a whole: the name only v1 had is gone.
    let old = ask(server.udp_addr(), "old.cli.test", 1)?.context("no answer for old.cli.test")?;
    ensure!(old.rcode() == 3, "old.cli.test: rcode {} after the import of v2", old.rcode());
    Ok(())
}

#[test]
fn broken_zone_file_is_refused_with_its_line_and_the_old_version_stays() -> Result<()> {
    let data = tempfile::tempdir()?;
    let server = Sixgate::serve(Cli::new(data.path())?)?;
    let files = tempfile::tempdir()?;
    let good = write_zone(files.path(), "good.zone", &cli_zone_text(1, "192.0.2.10", ""))?;
    server.cli().import(&good)?;
    wait_for_serial(server.udp_addr(), CLI_ZONE, 1)?;

    // Line 7 has an impossible IPv4 address; everything before it is fine.
    let text = cli_zone_text(2, "192.0.2.99", "bad\tA\t192.0.2.300\nafter\tA\t192.0.2.3\n");
    ensure!(text.lines().nth(6).is_some_and(|l| l.contains("192.0.2.300")));
    let broken = write_zone(files.path(), "broken.zone", &text)?;
    let path = broken.path.display().to_string();
    let output = server.cli().run(&["zone", "import"], &[CLI_ZONE, &path])?;
    assert_failed(&output)?;
    ensure!(output.stderr.contains(":7:"), "stderr does not name line 7:\n{output}");

    ensure!(served_serial(server.udp_addr(), CLI_ZONE)? == Some(1), "serial changed");
    ensure!(served_a(server.udp_addr(), "www.cli.test")? == Some(vec![[192, 0, 2, 10]]));
    let list = server.cli().run(&["zone", "list"], &[])?.ok()?;
    let entry = list_entry(&list, CLI_ZONE).with_context(|| format!("cli.test not listed:\n{list}"))?;
    ensure!(entry.get(1).is_some_and(|s| s == "1"), "zone list shows {entry:?} after the refused import");
    Ok(())
}

#[test]
fn zone_export_round_trips_and_knot_loads_it() -> Result<()> {
    let zone = ZoneFile::all_testdata()?
        .into_iter()
        .find(|z| z.origin == "example.test.")
        .context("example.test.zone missing")?;
    let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (cli_a, cli_b) = (Cli::new(a.path())?, Cli::new(b.path())?);
    cli_a.import(&zone)?;
    let first = cli_a.run(&["zone", "export"], &[zone.name()])?.ok()?.stdout;
    ensure!(!first.trim().is_empty(), "empty export");

    let files = tempfile::tempdir()?;
    let exported = files.path().join("example.test.zone");
    fs::write(&exported, &first)?;
    let exported = ZoneFile::new("example.test.", exported);
    cli_b.import(&exported)?;
    let second = cli_b.run(&["zone", "export"], &[zone.name()])?.ok()?.stdout;
    if first != second {
        let diff: Vec<String> = first
            .lines()
            .zip(second.lines())
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .take(10)
            .map(|(n, (x, y))| format!("line {}:\n  first:  {x}\n  second: {y}", n + 1))
            .collect();
        bail!(
            "export -> import -> export is not identical ({} vs {} lines):\n{}",
            first.lines().count(),
            second.lines().count(),
            diff.join("\n")
        );
    }
    // The export is a zone file another server accepts.
    let knot = Knot::start(std::slice::from_ref(&exported))?;
    ensure!(served_serial(knot.addr(), "example.test")? == Some(2_024_010_101));
    Ok(())
}

#[test]
fn zone_list_shows_name_serial_and_record_count() -> Result<()> {
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let zones = ZoneFile::all_testdata()?;
    for zone in &zones {
        cli.import(zone)?;
    }
    let list = cli.run(&["zone", "list"], &[])?.ok()?;
    for zone in &zones {
        let fields =
            list_entry(&list, zone.name()).with_context(|| format!("{} not listed:\n{list}", zone.name()))?;
        ensure!(fields.len() == 4, "not NAME<TAB>SERIAL<TAB>RECORDS<TAB>STATE: {fields:?}");
        ensure!(fields[1..3].iter().all(|f| f.parse::<u64>().is_ok()), "not numbers: {fields:?}");
        ensure!(fields[3] == "served", "an operator zone not listed as served: {fields:?}");
    }
    // other.test.zone: SOA, 2 NS, A, AAAA, A = 6 records, serial 42.
    let other = list_entry(&list, "other.test").context("other.test not listed")?;
    ensure!(
        other.get(1..3) == Some(&["42".to_owned(), "6".to_owned()][..]),
        "other.test listed as {other:?}"
    );
    Ok(())
}

#[test]
fn zone_delete_stops_serving_the_zone() -> Result<()> {
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let files = tempfile::tempdir()?;
    cli.import(&write_zone(files.path(), "z.zone", &cli_zone_text(5, "192.0.2.10", ""))?)?;
    let server = Sixgate::serve(cli)?;
    wait_for_serial(server.udp_addr(), CLI_ZONE, 5)?;
    server.cli().run(&["zone", "delete"], &[CLI_ZONE])?.ok()?;
    wait_until("cli.test to be REFUSED after zone delete", PROPAGATION, || {
        Ok(ask(server.udp_addr(), "www.cli.test", 1)?.filter(|r| r.rcode() == 5 && !r.aa()).map(|_| ()))
    })?;
    let list = server.cli().run(&["zone", "list"], &[])?.ok()?;
    ensure!(list_entry(&list, CLI_ZONE).is_none(), "still listed:\n{list}");
    Ok(())
}

#[test]
fn failed_commands_exit_nonzero_with_a_one_line_reason() -> Result<()> {
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let files = tempfile::tempdir()?;
    cli.import(&write_zone(files.path(), "z.zone", &cli_zone_text(1, "192.0.2.10", ""))?)?;
    let missing = files.path().join("missing.zone").display().to_string();
    let attempts: [(&[&str], Vec<&str>); 6] = [
        (&["zone", "import"], vec![CLI_ZONE, &missing]),
        (&["zone", "export"], vec!["no-such-zone.test"]),
        (&["zone", "delete"], vec!["no-such-zone.test"]),
        (&["record", "add"], vec![CLI_ZONE, "x 300 A not-an-address"]),
        (&["record", "add"], vec!["no-such-zone.test", "x 300 A 192.0.2.1"]),
        (&["record", "add"], vec![CLI_ZONE, "x 300 NOSUCHTYPE 1"]),
    ];
    let mut failures = Vec::new();
    for (command, args) in attempts {
        let output = cli.run(command, &args)?;
        if let Err(error) = assert_failed(&output) {
            failures.push(format!("{error:#}"));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n\n"));
    // None of this changed the zone.
    let list = cli.run(&["zone", "list"], &[])?.ok()?;
    let entry = list_entry(&list, CLI_ZONE).with_context(|| format!("cli.test not listed:\n{list}"))?;
    ensure!(entry.get(1).is_some_and(|s| s == "1"), "cli.test changed: {entry:?}");
    Ok(())
}

#[test]
fn record_add_and_delete_change_what_is_served() -> Result<()> {
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let files = tempfile::tempdir()?;
    cli.import(&write_zone(files.path(), "z.zone", &cli_zone_text(10, "192.0.2.10", ""))?)?;
    let server = Sixgate::serve(cli)?;
    let addr = server.udp_addr();
    wait_for_serial(addr, CLI_ZONE, 10)?;

    server.cli().run(&["record", "add"], &[CLI_ZONE, "new 300 A 192.0.2.77"])?.ok()?;
    wait_until("new.cli.test A to be served", PROPAGATION, || {
        Ok((served_a(addr, "new.cli.test")? == Some(vec![[192, 0, 2, 77]])).then_some(()))
    })?;
    let after_add = served_serial(addr, CLI_ZONE)?.context("no SOA")?;
    ensure!(after_add > 10, "serial not bumped by record add: {after_add}");

    server.cli().run(&["record", "add"], &[CLI_ZONE, "new 300 A 192.0.2.78"])?.ok()?;
    wait_until("new.cli.test to hold both addresses", PROPAGATION, || {
        Ok(served_a(addr, "new.cli.test")?
            .filter(|a| {
                let mut a = a.clone();
                a.sort();
                a == [[192, 0, 2, 77], [192, 0, 2, 78]]
            })
            .map(|_| ()))
    })?;

    server.cli().run(&["record", "delete"], &[CLI_ZONE, "new", "A"])?.ok()?;
    wait_until("new.cli.test to be gone", PROPAGATION, || {
        Ok(ask(addr, "new.cli.test", 1)?.filter(|r| r.rcode() == 3 && r.aa()).map(|_| ()))
    })?;
    let after_delete = served_serial(addr, CLI_ZONE)?.context("no SOA")?;
    ensure!(after_delete > after_add, "serial not bumped by record delete");
    Ok(())
}

#[test]
/// Regression: SIGTERM sent the moment `ready` was printed used to kill the
/// process with the default action, before its handler was installed.
fn sigterm_right_after_ready_exits_cleanly() -> Result<()> {
    let data = tempfile::tempdir()?;
    let mut server = Sixgate::serve(Cli::new(data.path())?)?;
    let status = server.process().terminate(Duration::from_secs(15))?;
    ensure!(status.success(), "sixgate serve exited with {status} after SIGTERM");
    Ok(())
}

#[test]
fn acknowledged_changes_survive_kill_9_of_the_server() -> Result<()> {
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let files = tempfile::tempdir()?;
    cli.import(&write_zone(files.path(), "z.zone", &cli_zone_text(10, "192.0.2.10", ""))?)?;
    let server = Sixgate::serve(cli)?;
    server.cli().run(&["record", "add"], &[CLI_ZONE, "durable 300 A 192.0.2.99"])?.ok()?;
    // The command has returned, so the write is acknowledged. Dropping the
    // server kills it with SIGKILL at once; a new one on the same data
    // must serve the change.
    drop(server);
    let server = Sixgate::serve(Cli::new(data.path())?)?;
    let addr = server.udp_addr();
    wait_until("durable.cli.test after the restart", PROPAGATION, || {
        Ok((served_a(addr, "durable.cli.test")? == Some(vec![[192, 0, 2, 99]])).then_some(()))
    })?;
    Ok(())
}

#[test]
fn an_import_killed_midway_leaves_the_old_zone_whole() -> Result<()> {
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let files = tempfile::tempdir()?;
    cli.import(&write_zone(files.path(), "old.zone", &cli_zone_text(10, "192.0.2.10", ""))?)?;
    let old = list_entry(&cli.run(&["zone", "list"], &[])?.ok()?, CLI_ZONE).context("zone not listed")?;
    // A zone big enough that the import is still running when it is killed.
    let mut extra = String::new();
    for i in 0..200_000 {
        extra.push_str(&format!("h{i}\tA\t10.{}.{}.{}\n", (i >> 16) & 255, (i >> 8) & 255, i & 255));
    }
    let big = write_zone(files.path(), "big.zone", &cli_zone_text(20, "192.0.2.20", &extra))?;
    let mut child = Command::new(cli.binary())
        .args(["zone", "import", "--data", &data.path().display().to_string(), CLI_ZONE])
        .arg(&big.path)
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Not a readiness wait: any moment of the import will do.
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    child.wait()?;
    let now = list_entry(&cli.run(&["zone", "list"], &[])?.ok()?, CLI_ZONE).context("zone lost")?;
    // Either the import finished before the kill or nothing of it landed.
    let records = |e: &[String]| e.get(2).cloned().unwrap_or_default();
    ensure!(
        now == old || records(&now) == (200_000 + 3).to_string(),
        "half-applied import: before {old:?}, after {now:?}"
    );
    Ok(())
}
