//! The HTTP API end to end: a real `sixgate serve`, writes over HTTP, and
//! answers over DNS. Also the CLI's token, TSIG and API client commands,
//! durability across SIGKILL, and delegation checks against knotd as the
//! parent zone's server.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use sixgate_e2e::http::{HttpResponse, request};
use sixgate_e2e::{Cli, Knot, QuerySpec, Response, Rng, Sixgate, ZoneFile, udp_exchange, wait_until};

const TIMEOUT: Duration = Duration::from_secs(30);

fn zone(dir: &Path, origin: &str, text: &str) -> Result<ZoneFile> {
    let path = dir.join(format!("{origin}zone"));
    std::fs::write(&path, text)?;
    Ok(ZoneFile::new(origin, path))
}

const EXAMPLE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 3600 900 604800 300\n\
@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn api(server: &Sixgate) -> Result<String> {
    server.api_url().context("serve printed no `listening api` line")
}

fn call(base: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> Result<HttpResponse> {
    sixgate_e2e::http::bearer(method, base, path, token, body.as_ref(), TIMEOUT)
}

fn json_of(r: &HttpResponse) -> Result<Value> {
    serde_json::from_str(&r.body).with_context(|| format!("not JSON: {}", r.body))
}

/// The A records DNS serves for `name`, from one UDP exchange.
fn served_a(server: SocketAddr, name: &str) -> Result<Vec<Ipv4Addr>> {
    let query = QuerySpec::parse(name, 1)?.with_id(0x4a4a).encode()?;
    let bytes = udp_exchange(server, &query, Duration::from_secs(2), 3)?.context("no DNS answer")?;
    let resp = Response::parse(&bytes)?;
    ensure!(matches!(resp.rcode(), 0 | 3), "{name} A: rcode {}", resp.rcode());
    Ok(resp
        .answers_of(1)
        .filter_map(|rr| <[u8; 4]>::try_from(&rr.rdata[..]).ok().map(Ipv4Addr::from))
        .collect())
}

fn served_txt_count(server: SocketAddr, name: &str) -> Result<usize> {
    let query = QuerySpec::parse(name, 16)?.with_id(0x5a5a).encode()?;
    let bytes = udp_exchange(server, &query, Duration::from_secs(2), 3)?.context("no DNS answer")?;
    Ok(Response::parse(&bytes)?.answers_of(16).count())
}

fn admin_token(cli: &Cli) -> Result<String> {
    Ok(cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_string())
}

#[test]
fn an_acknowledged_api_write_is_already_served() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Sixgate::start(&[zone(dir.path(), "example.test.", EXAMPLE)?])?;
    let base = api(&server)?;
    let token = admin_token(server.cli())?;
    for i in 0..20u8 {
        let addr = format!("198.51.100.{i}");
        // A new name, then a changed value of a name just queried.
        let name = format!("n{i}.example.test.");
        let r = call(
            &base,
            "PUT",
            &format!("/v1/zones/example.test/rrsets/{name}/A"),
            &token,
            Some(json!({"ttl": 60, "records": [addr]})),
        )?;
        ensure!(r.status == 200, "PUT: {} {}", r.status, r.body);
        ensure!(
            served_a(server.udp_addr(), &name)? == vec![addr.parse::<Ipv4Addr>()?],
            "{name} not served at once"
        );
        let before = served_a(server.udp_addr(), "www.example.test.")?;
        ensure!(!before.is_empty());
        let r = call(
            &base,
            "PUT",
            "/v1/zones/example.test/rrsets/www.example.test/A",
            &token,
            Some(json!({"ttl": 60, "records": [addr]})),
        )?;
        ensure!(r.status == 200, "PUT: {} {}", r.status, r.body);
        ensure!(
            served_a(server.udp_addr(), "www.example.test.")? == vec![addr.parse::<Ipv4Addr>()?],
            "change not served at once"
        );
    }
    Ok(())
}

#[test]
fn cli_makes_tokens_and_keys_and_talks_to_the_api() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Sixgate::start(&[zone(dir.path(), "example.test.", EXAMPLE)?])?;
    let cli = server.cli();
    let base = api(&server)?;
    let admin = admin_token(cli)?;
    ensure!(admin.starts_with("sgt_") && !admin.contains(char::is_whitespace), "token output: {admin:?}");
    // Client commands through the API.
    let run_api = |args: &[&str], token: &str| -> Result<sixgate_e2e::CliOutput> {
        let out = std::process::Command::new(cli.binary())
            .args(args)
            .env("SIXGATE_API", &base)
            .env("SIXGATE_TOKEN", token)
            .output()?;
        Ok(sixgate_e2e::CliOutput {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        })
    };
    run_api(&["account", "create", "alice"], &admin)?.ok()?;
    // Without an API, account commands work on the data directory.
    cli.run(&["account", "create"], &["bob"])?.ok()?;
    let list = run_api(&["account", "list"], &admin)?.ok()?;
    ensure!(list.stdout.lines().any(|l| l.starts_with("alice\t")), "{list}");
    ensure!(list.stdout.lines().any(|l| l.starts_with("bob\t")), "{list}");
    run_api(&["record", "set", "example.test", "mail", "MX", "--ttl", "120", "10 www"], &admin)?.ok()?;
    let recs = run_api(&["record", "list", "example.test"], &admin)?.ok()?;
    ensure!(recs.stdout.contains("mail.example.test.\t120\tIN\tMX\t10 www.example.test."), "{recs}");
    // An acme-only token made on the data directory is refused elsewhere.
    let acme = cli
        .run(&["token", "create"], &["--zone", "example.test", "--acme-only"])?
        .ok()?
        .stdout
        .trim()
        .to_string();
    let refused = run_api(&["record", "set", "example.test", "www", "A", "192.0.2.99"], &acme)?;
    ensure!(!refused.success() && refused.stderr.starts_with("error: 403"), "{refused}");
    ensure!(refused.stderr.trim().lines().count() == 1, "one-line error: {refused}");
    run_api(&["record", "set", "example.test", "_acme-challenge", "TXT", "\"tok\""], &acme)?.ok()?;
    ensure!(served_txt_count(server.udp_addr(), "_acme-challenge.example.test.")? == 1);
    // Revoked tokens stop working.
    let r = call(&base, "GET", "/v1/tokens", &admin, None)?;
    let tokens = json_of(&r)?;
    let id = tokens
        .as_array()
        .and_then(|t| t.iter().find(|t| t["scope"] == "acme"))
        .map(|t| t["id"].clone())
        .context("acme token listed")?;
    run_api(&["token", "revoke", &id.to_string()], &admin)?.ok()?;
    let r = call(&base, "GET", "/v1/zones", &acme, None)?;
    ensure!(r.status == 401, "revoked token still works: {}", r.status);
    // TSIG keys print in kdig's -y form.
    let key = cli.run(&["tsig", "create", "acme-key"], &["--zone", "example.test", "--acme-only"])?.ok()?;
    let parts: Vec<&str> = key.stdout.trim().splitn(3, ':').collect();
    ensure!(parts.len() == 3 && parts[0] == "hmac-sha256" && parts[1] == "acme-key", "{key}");
    let dup = cli.run(&["tsig", "create", "acme-key"], &["--zone", "example.test"])?;
    ensure!(!dup.success() && dup.stderr.contains("already exists"), "{dup}");
    Ok(())
}

/// Writes that were acknowledged before a SIGKILL are all there after a
/// restart, and the one in flight is there whole or not at all.
#[test]
fn sigkill_loses_no_acknowledged_api_write() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zf = zone(dir.path(), "example.test.", EXAMPLE)?;
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    cli.import(&zf)?;
    let token = admin_token(&cli)?;
    let mut rng = Rng::new(std::process::id() as u64);
    for round in 0..3 {
        let mut server = Sixgate::serve(cli.clone())?;
        let base = api(&server)?;
        let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(round * 100_000));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (base, token, acked, stop, next) = (base.clone(), token.clone(), acked.clone(), stop.clone(), next.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        // Two RRsets in one batch: both or neither.
                        let batch = json!([
                            {"name": format!("w{i}.example.test"), "type": "A", "ttl": 60, "records": ["192.0.2.7"]},
                            {"name": format!("w{i}.example.test"), "type": "TXT", "ttl": 60, "records": [format!("\"{i}\"")]},
                        ]);
                        match call(&base, "POST", "/v1/zones/example.test/rrsets", &token, Some(batch)) {
                            Ok(r) if r.status == 200 => acked.lock().unwrap().push(i),
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        // Kill at a random moment once writes are flowing.
        wait_until("some writes to be acknowledged", TIMEOUT, || {
            Ok((acked.lock().unwrap().len() >= 5).then_some(()))
        })?;
        std::thread::sleep(Duration::from_millis(rng.below(300) as u64));
        let pid = nix::unistd::Pid::from_raw(server.process().id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)?;
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let _ = w.join();
        }
        let acked = acked.lock().unwrap().clone();
        let tried = next.load(Ordering::Relaxed);
        drop(server);
        let server = Sixgate::serve(cli.clone())?;
        for &i in &acked {
            let name = format!("w{i}.example.test.");
            ensure!(
                !served_a(server.udp_addr(), &name)?.is_empty(),
                "round {round}: acknowledged {name} A lost"
            );
            ensure!(
                served_txt_count(server.udp_addr(), &name)? == 1,
                "round {round}: acknowledged {name} TXT lost"
            );
        }
        // Unacknowledged writes: whole or absent.
        for i in round * 100_000..tried {
            if acked.contains(&i) {
                continue;
            }
            let name = format!("w{i}.example.test.");
            let a = !served_a(server.udp_addr(), &name)?.is_empty();
            let t = served_txt_count(server.udp_addr(), &name)? == 1;
            ensure!(a == t, "round {round}: {name} half applied (A {a}, TXT {t})");
        }
        ensure!(!acked.is_empty(), "round {round}: nothing was acknowledged");
    }
    Ok(())
}

/// A customer's zone is verified once the parent (knotd here) delegates it
/// to sixgate's nameservers, and not while it delegates elsewhere.
#[test]
fn customer_zones_are_verified_by_their_parents_delegation() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let parent = zone(
        dir.path(),
        "test.",
        "$ORIGIN test.\n$TTL 300\n@ SOA ns.test. h 1 3600 900 604800 300\n@ NS ns\nns A 192.0.2.1\n\
         alice NS ns1.sixgate.test.\nmallory NS ns.elsewhere.example.\n",
    )?;
    let knot = Knot::start(&[parent])?;
    let config = dir.path().join("sixgate.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nnameservers = [\"ns1.sixgate.test.\"]\n[verify]\nresolvers = [\"{}\"]\ninterval = 1\n",
            knot.addr()
        ),
    )?;
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let admin = admin_token(&cli)?;
    let server = Sixgate::serve_with(cli.clone(), &["--config", &config.display().to_string()])?;
    let base = api(&server)?;
    ensure!(call(&base, "POST", "/v1/accounts", &admin, Some(json!({"name": "alice"})))?.status == 201);
    let alice = cli.run(&["token", "create"], &["--account", "alice"])?.ok()?.stdout.trim().to_string();
    for z in ["alice.test", "mallory.test"] {
        let r = call(&base, "POST", "/v1/zones", &alice, Some(json!({"name": z})))?;
        ensure!(r.status == 201, "{z}: {} {}", r.status, r.body);
        ensure!(json_of(&r)?["verified"] == false, "{z} verified at creation");
    }
    let zone_state =
        |z: &str| -> Result<Value> { json_of(&call(&base, "GET", &format!("/v1/zones/{z}"), &alice, None)?) };
    wait_until("alice.test to be verified", TIMEOUT, || {
        Ok((zone_state("alice.test")?["verified"] == true).then_some(()))
    })?;
    let m = wait_until("mallory.test to be checked", TIMEOUT, || {
        let v = zone_state("mallory.test")?;
        Ok(v.get("verify_error").is_some().then_some(v))
    })?;
    ensure!(m["verified"] == false, "{m}");
    let err = m["verify_error"].as_str().unwrap_or_default();
    if !err.contains("ns.elsewhere.example.") {
        bail!("verify_error should name the real delegation: {m}");
    }
    Ok(())
}

/// With `[api] tls_cert`/`tls_key`, the API speaks HTTPS (rustls); curl
/// checks the certificate against the one we made.
#[test]
fn the_api_speaks_https_when_configured() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    let status = std::process::Command::new(sixgate_e2e::knot::which("openssl")?)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    ensure!(status.success(), "openssl req failed");
    let config = dir.path().join("sixgate.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )?;
    let data = tempfile::tempdir()?;
    let cli = Cli::new(data.path())?;
    let token = admin_token(&cli)?;
    let server = Sixgate::serve_with(cli, &["--config", &config.display().to_string()])?;
    let base = api(&server)?;
    ensure!(base.starts_with("https://"), "{base}");
    let out = std::process::Command::new(sixgate_e2e::knot::which("curl")?)
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&cert)
        .args(["-H", &format!("Authorization: Bearer {token}"), &format!("{base}/v1/zones")])
        .output()?;
    let body = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    ensure!(body.contains("demo.sixgate.test."), "{body}");
    // Plain HTTP to the TLS port gets no API answer.
    let plain = request(
        "GET",
        &format!("http://{}/v1/zones", base.trim_start_matches("https://")),
        &[],
        None,
        Duration::from_secs(10),
    );
    ensure!(plain.map(|r| r.status != 200).unwrap_or(true), "plain HTTP answered on the TLS port");
    Ok(())
}

/// `/health` and `/ready` answer without a token on a running server:
/// load balancers and supervisors have no token.
#[test]
fn health_and_ready_answer_without_a_token() -> Result<()> {
    let data = tempfile::tempdir()?;
    let server = Sixgate::serve(Cli::new(data.path())?)?;
    let base = api(&server)?;
    let health = request("GET", &format!("{base}/health"), &[], None, Duration::from_secs(10))?;
    ensure!(health.status == 200 && health.body == "ok\n", "{} {}", health.status, health.body);
    // "ready" was printed, and the demo zone is unsigned: nothing to wait for.
    let ready = request("GET", &format!("{base}/ready"), &[], None, Duration::from_secs(10))?;
    ensure!(ready.status == 200, "{} {}", ready.status, ready.body);
    let v: Value = serde_json::from_str(&ready.body)?;
    ensure!(v["status"] == "ready" && v["held_zones"] == json!([]), "{v}");
    Ok(())
}
