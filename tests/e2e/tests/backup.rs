//! `sixgate backup` and `sixgate restore` on real servers: a backup taken
//! under dnsperf's query load and a stream of API writes holds every write
//! acknowledged before it started, and a server on the restored store
//! answers as the first; a backup of a store sealed with a key-encryption
//! key holds no secret and does not restore without the key; a signed
//! zone restored on a fresh directory keeps its DS and validates in
//! unbound with the old trust anchor; and a store from a newer sixgate is
//! refused with a message naming both versions.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use serde_json::json;
use sixgate_e2e::process::{ChildGuard, require_program};
use sixgate_e2e::{Cli, QuerySpec, Response, Sixgate, ZoneFile, udp_exchange};

const TIMEOUT: Duration = Duration::from_secs(10);

const EXAMPLE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 3600 900 604800 300\n\
@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn zone(dir: &Path) -> Result<ZoneFile> {
    sixgate_e2e::ldns::unsigned_zone(dir, "example.test.", EXAMPLE)
}

/// The sorted rdata of `name`'s `rtype` RRset and the rcode, from one
/// UDP exchange.
fn answer(server: SocketAddr, name: &str, rtype: u16) -> Result<(u16, Vec<Vec<u8>>)> {
    let query = QuerySpec::parse(name, rtype)?.with_id(0x6b6b).encode()?;
    let bytes = udp_exchange(server, &query, Duration::from_secs(2), 3)?.context("no DNS answer")?;
    let resp = Response::parse(&bytes)?;
    let mut rdata: Vec<Vec<u8>> = resp.answers_of(rtype).map(|rr| rr.rdata.clone()).collect();
    rdata.sort();
    Ok((resp.rcode(), rdata))
}

/// (owner, type code) of every A, AAAA, NS and TXT record `zone export`
/// prints.
fn exported(cli: &Cli, zone: &str) -> Result<Vec<(String, u16)>> {
    let out = cli.run(&["zone", "export"], &[zone])?.ok()?.stdout;
    let mut names = Vec::new();
    for line in out.lines().filter(|l| !l.starts_with(';')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(owner), Some(rtype)) = (words.first(), words.iter().position(|w| *w == "IN")) else {
            continue;
        };
        let code = match words.get(rtype + 1).copied() {
            Some("A") => 1,
            Some("NS") => 2,
            Some("TXT") => 16,
            Some("AAAA") => 28,
            _ => continue,
        };
        names.push(((*owner).to_owned(), code));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn put_a(base: &str, token: &str, i: usize) -> Result<u16> {
    let name = format!("w{i}.example.test.");
    let body = json!({"ttl": 60, "records": [format!("198.51.{}.{}", i / 250, i % 250)]});
    let r = sixgate_e2e::http::bearer(
        "PUT",
        base,
        &format!("/v1/zones/example.test/rrsets/{name}/A"),
        token,
        Some(&body),
        TIMEOUT,
    )?;
    Ok(r.status)
}

#[test]
fn a_backup_under_load_holds_every_acknowledged_write_and_serves_the_same() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let cli = Cli::new(&data)?;
    cli.import(&zone(dir.path())?)?;
    let server = Sixgate::serve(cli.clone())?;
    let base = server.api_url().context("no api url")?;
    let token = server.admin_token()?;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    // dnsperf loads the server all the while (at a fixed rate, so that the
    // writes still get their share of a loaded 2-core machine), and a
    // query loop checks answers as it goes.
    let udp = server.udp_addr();
    let dnsperf = require_program("dnsperf", "dnsperf")?;
    let qfile = dir.path().join("queries.txt");
    std::fs::write(
        &qfile,
        "www.example.test. A\nexample.test. SOA\nnope.example.test. A\nexample.test. NS\n",
    )?;
    let mut perf = ChildGuard::spawn(
        "backup-dnsperf",
        std::process::Command::new(dnsperf)
            .args(["-s", &udp.ip().to_string(), "-p", &udp.port().to_string(), "-d"])
            .arg(&qfile)
            .args(["-l", "120", "-Q", "3000", "-c", "4", "-q", "50"])
            .stdout(std::process::Stdio::null()),
    )?;
    let looped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let queries = {
        let (stop, looped) = (Arc::clone(&stop), Arc::clone(&looped));
        std::thread::spawn(move || -> Result<u64> {
            while !stop.load(Ordering::Relaxed) {
                answer(udp, "www.example.test.", 1)?;
                looped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(looped.load(Ordering::Relaxed))
        })
    };
    // The backup starts only once dnsperf's queries are arriving.
    sixgate_e2e::wait_until("dnsperf's load", Duration::from_secs(30), || {
        let received = server.metrics()?.value("sixgate_dns_udp_received_total");
        Ok((received > looped.load(Ordering::Relaxed) + 1000).then_some(()))
    })?;
    let writes = {
        let (stop, acked, base, token) = (Arc::clone(&stop), Arc::clone(&acked), base.clone(), token.clone());
        std::thread::spawn(move || -> Result<()> {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let status = put_a(&base, &token, i)?;
                ensure!(status == 200, "PUT w{i}: {status}");
                acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(i);
                i += 1;
            }
            Ok(())
        })
    };
    sixgate_e2e::wait_until("40 acknowledged writes", Duration::from_secs(30), || {
        Ok((acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len() >= 40).then_some(()))
    })?;
    let before: Vec<usize> = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let file = dir.path().join("backup.db");
    let out = cli.run(&["backup"], &[&file.display().to_string()])?.ok()?;
    ensure!(out.stdout.contains("zones\t1"), "{out}");
    // Writes go on after the backup for a moment, then everything stops.
    let at_backup = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len();
    sixgate_e2e::wait_until("writes after the backup", Duration::from_secs(30), || {
        Ok((acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len() >= at_backup + 5).then_some(()))
    })?;
    // The running server's store is not replaced under it.
    let out = cli.run(&["restore"], &[&file.display().to_string(), "--force"])?;
    ensure!(!out.success() && out.stderr.contains("server is running"), "{out}");
    stop.store(true, Ordering::Relaxed);
    writes.join().map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    let sent = queries.join().map_err(|_| anyhow::anyhow!("the query loop panicked"))??;
    ensure!(sent > 0, "no queries ran");
    // dnsperf ran throughout: it is still running, and the server counted
    // far more queries than the loop sent.
    ensure!(perf.exit_status().is_none(), "dnsperf stopped early: {}", perf.log_text());
    let received = server.metrics()?.value("sixgate_dns_udp_received_total");
    ensure!(
        received > sent + 1000,
        "{received} UDP queries received, {sent} of them the loop's: no dnsperf load"
    );
    drop(perf);

    let restored = Cli::new(dir.path().join("restored"))?;
    restored.run(&["restore"], &[&file.display().to_string()])?.ok()?;
    let second = Sixgate::serve(restored.clone())?;
    for i in &before {
        let name = format!("w{i}.example.test.");
        let (rcode, rdata) = answer(second.udp_addr(), &name, 1)?;
        ensure!(rcode == 0 && rdata.len() == 1, "{name}, acknowledged before the backup, is not restored");
    }
    let records = exported(&restored, "example.test.")?;
    ensure!(records.len() >= before.len() + 3, "{} records restored", records.len());
    for (name, rtype) in records {
        let (a, b) = (answer(server.udp_addr(), &name, rtype)?, answer(second.udp_addr(), &name, rtype)?);
        ensure!(a == b, "{name} type {rtype}: {a:?} from the first server, {b:?} from the restored one");
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_backup_sealed_with_a_kek_holds_no_secret_and_needs_the_kek() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let kek = dir.path().join("kek");
    let kek_arg = kek.display().to_string();
    let cli = Cli::new(dir.path().join("data"))?;
    cli.run(&["kek", "create"], &[&kek_arg])?.ok()?;
    let config = dir.path().join("sixgate.toml");
    std::fs::write(&config, format!("[store]\nkek_file = {:?}\n[dnssec]\nmaintain = false\n", kek_arg))?;
    let with = ["--kek-file", kek_arg.as_str()];
    cli.run(&["zone", "import"], &["example.test.", &zone(dir.path())?.path.display().to_string()])?.ok()?;
    let tsig =
        cli.run(&["tsig", "create"], &["k1", "--zone", "example.test", with[0], with[1]])?.ok()?.stdout;
    let xfr = cli.run(&["tsig", "create"], &["x1", "--transfer", with[0], with[1]])?.ok()?.stdout;
    cli.run(&["dnssec", "enable"], &["example.test", with[0], with[1]])?.ok()?;
    let server = Sixgate::serve_with(cli.clone(), &["--config", &config.display().to_string()])?;
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for line in [tsig.trim(), xfr.trim()] {
        let b64 = line.rsplit(':').next().context("ALG:NAME:SECRET")?;
        secrets.push(b64.as_bytes().to_vec());
        secrets.push(base64::engine::general_purpose::STANDARD.decode(b64)?);
    }
    // export-keys needs the KEK, as every command on a sealed store does.
    let out = cli.run(&["dnssec", "export-keys"], &["example.test", with[0], with[1]])?.ok()?;
    let keys = private_keys_from_text(&out.stdout)?;
    for der in &keys {
        secrets.push(der.clone());
        // The ECDSA key itself (RFC 5915: version 1, then 32 octets).
        let at = der.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20]).context("EC key")? + 5;
        secrets.push(der.get(at..at + 32).context("short key")?.to_vec());
    }
    let file = dir.path().join("backup.db");
    let file_arg = file.display().to_string();
    // A backup job needs no KEK: it copies the sealed values.
    let out = cli.run(&["backup"], &[&file_arg])?.ok()?;
    ensure!(out.stdout.contains("sealed with kek"), "{out}");
    let bytes = std::fs::read(&file)?;
    for (i, s) in secrets.iter().enumerate() {
        ensure!(!contains(&bytes, s), "secret {i} ({} octets) is in the backup", s.len());
    }
    // The live files hold none either: they were sealed at the first open.
    for f in ["sixgate.db", "sixgate.db-wal"] {
        let live = std::fs::read(cli.data().join(f)).unwrap_or_default();
        ensure!(secrets.iter().all(|s| !contains(&live, s)), "a secret is in {f}");
    }
    drop(server);
    // Without the KEK: refused, naming what is missing.
    let restored = Cli::new(dir.path().join("restored"))?;
    let out = restored.run(&["restore"], &[&file_arg])?;
    ensure!(!out.success() && out.stderr.contains("none is configured"), "{out}");
    // A wrong one: refused too.
    let other = dir.path().join("other-kek");
    restored.run(&["kek", "create"], &[&other.display().to_string()])?.ok()?;
    let out = restored.run(&["restore"], &[&file_arg, "--kek-file", &other.display().to_string()])?;
    ensure!(!out.success() && out.stderr.contains("not the one the store is sealed with"), "{out}");
    // With it: restored, and a server without it does not start.
    restored.run(&["restore"], &[&file_arg, with[0], with[1]])?.ok()?;
    let e = Sixgate::serve(restored.clone()).err().context("served a sealed store without its KEK")?;
    ensure!(format!("{e:#}").contains("none is configured"), "{e:#}");
    let second = Sixgate::serve_with(restored.clone(), &["--config", &config.display().to_string()])?;
    let (rcode, dnskeys) = answer(second.udp_addr(), "example.test.", 48)?;
    ensure!(rcode == 0 && !dnskeys.is_empty(), "no DNSKEY from the restored server");
    // The keys are the same keys.
    let out = restored.run(&["dnssec", "export-keys"], &["example.test", with[0], with[1]])?.ok()?;
    ensure!(private_keys_from_text(&out.stdout)? == keys, "the restored private keys differ");
    // Rotation: refused under the server; then the old key no longer opens it.
    let other_arg = other.display().to_string();
    let out = restored.run(&["kek", "rotate"], &[&other_arg, with[0], with[1]])?;
    ensure!(!out.success() && out.stderr.contains("server is running"), "{out}");
    drop(second);
    restored.run(&["kek", "rotate"], &[&other_arg, with[0], with[1]])?.ok()?;
    let out = restored.run(&["zone", "list"], &[with[0], with[1]])?;
    ensure!(!out.success() && out.stderr.contains("not the one the store is sealed with"), "{out}");
    let out = restored.run(&["dnssec", "export-keys"], &["example.test", "--kek-file", &other_arg])?.ok()?;
    ensure!(private_keys_from_text(&out.stdout)? == keys, "the private keys changed in the rotation");
    Ok(())
}

/// The DER of each private key `dnssec export-keys` prints as PEM.
fn private_keys_from_text(text: &str) -> Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            body = Some(String::new());
        } else if line.starts_with("-----END") {
            keys.push(base64::engine::general_purpose::STANDARD.decode(body.take().context("END")?)?);
        } else if let Some(b) = body.as_mut() {
            b.push_str(line.trim());
        }
    }
    ensure!(!keys.is_empty(), "no keys in:\n{text}");
    Ok(keys)
}

#[test]
fn a_signed_zone_restored_on_a_fresh_directory_keeps_its_ds_and_validates() -> Result<()> {
    require_program("unbound", "unbound")?;
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&zone(dir.path())?)?;
    cli.run(&["dnssec", "enable"], &["example.test"])?.ok()?;
    let ds = cli.run(&["dnssec", "ds"], &["example.test"])?.ok()?.stdout;
    ensure!(ds.contains(" DS "), "no DS: {ds}");
    let file = dir.path().join("backup.db");
    cli.run(&["backup"], &[&file.display().to_string()])?.ok()?;
    let restored = Cli::new(dir.path().join("fresh"))?;
    restored.run(&["restore"], &[&file.display().to_string()])?.ok()?;
    let again = restored.run(&["dnssec", "ds"], &["example.test"])?.ok()?.stdout;
    ensure!(again == ds, "the DS changed:\n{ds}\nbecame\n{again}");
    let config = dir.path().join("sixgate.toml");
    std::fs::write(&config, "[dnssec]\nmaintain = false\n")?;
    let server = Sixgate::serve_with(restored, &["--config", &config.display().to_string()])?;
    let anchor = ds.lines().find(|l| l.contains(" DS ")).context("DS line")?;
    let unbound = sixgate_e2e::Unbound::start(
        sixgate_e2e::UnboundConfig::new().stub("example.test.", server.udp_addr()).trust_anchor(anchor),
    )?;
    let www = unbound.expect_secure("www.example.test.", "A", "NOERROR")?;
    ensure!(www.ad(), "{www}");
    unbound.expect_secure("nope.example.test.", "A", "NXDOMAIN")?;
    Ok(())
}

#[test]
fn a_store_from_a_newer_sixgate_is_refused_naming_both_versions() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let cli = Cli::new(&data)?;
    cli.import(&zone(dir.path())?)?;
    let file = dir.path().join("backup.db");
    cli.run(&["backup"], &[&file.display().to_string()])?.ok()?;
    let bump = |db: &Path| -> Result<i64> {
        let conn = rusqlite::Connection::open(db)?;
        let v: i64 =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))?;
        conn.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [v + 1])?;
        Ok(v)
    };
    let ours = bump(&data.join("sixgate.db"))?;
    bump(&file)?;
    let want = format!("schema version {} is newer than this sixgate's ({ours})", ours + 1);
    for (command, args) in [
        (vec!["zone", "list"], vec![]),
        (vec!["backup"], vec![dir.path().join("b2.db").display().to_string()]),
        (vec!["serve"], vec!["--dns".into(), "127.0.0.1:0".into(), "--api".into(), "127.0.0.1:0".into()]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli.run(&command, &args)?;
        ensure!(!out.success() && out.stderr.contains(&want), "{out}");
    }
    let out = Cli::new(dir.path().join("new"))?.run(&["restore"], &[&file.display().to_string()])?;
    ensure!(!out.success() && out.stderr.contains(&want), "{out}");
    Ok(())
}
