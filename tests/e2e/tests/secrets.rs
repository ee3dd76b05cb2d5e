//! Secrets at rest and in logs: the data directory and every file in it
//! are the service user's alone whatever the umask, checked with `stat`
//! on a real `sixgate serve`; and no admin token, API token, TSIG secret
//! or DNSSEC private key reaches the log or stdout, even at debug level,
//! through a session that uses every one of them.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use serde_json::{Value, json};
use sixgate_e2e::http::{HttpResponse, request};
use sixgate_e2e::knot::which;
use sixgate_e2e::{Cli, CliOutput, Sixgate, ZoneFile, wait_until};

const TIMEOUT: Duration = Duration::from_secs(10);

const EXAMPLE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 3600 900 604800 300\n\
@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn zone(dir: &Path) -> Result<ZoneFile> {
    sixgate_e2e::ldns::unsigned_zone(dir, "example.test.", EXAMPLE)
}

/// `stat -c %a` of each path: its permission bits in octal, or `missing`.
fn modes(paths: &[PathBuf]) -> Result<Vec<String>> {
    let stat = which("stat")?;
    let mut out = Vec::new();
    for path in paths {
        let run = Command::new(&stat).arg("-c").arg("%a").arg(path).output()?;
        out.push(if run.status.success() {
            String::from_utf8(run.stdout)?.trim().to_owned()
        } else {
            "missing".to_owned()
        });
    }
    Ok(out)
}

/// The data directory is 0700 and every file sixgate keeps in it 0600.
fn expect_private(data: &Path) -> Result<()> {
    let files: Vec<PathBuf> = ["sixgate.db", "sixgate.db-wal", "sixgate.db-shm", "admin-token"]
        .iter()
        .map(|f| data.join(f))
        .collect();
    let mut all = vec![data.to_path_buf()];
    all.extend(files);
    let got = modes(&all)?;
    let want: Vec<&str> = all.iter().map(|p| if p == data { "700" } else { "600" }).collect();
    ensure!(got == want, "modes of {all:?}: {got:?}, not {want:?}");
    // The publisher binds the socket after `ready` and restricts it right
    // after binding: wait for both.
    let socket = data.join("notify.sock");
    wait_until("notify.sock to be 0600", TIMEOUT, || {
        Ok(modes(std::slice::from_ref(&socket)).ok().filter(|m| m == &["600"]))
    })
    .context("notify.sock")?;
    Ok(())
}

/// Regression: under the usual umask (022) sixgate.db and its WAL were
/// 0644 and the data directory 0755, so every local user could read the
/// TSIG secrets and DNSSEC private keys in them.
#[test]
fn the_database_is_not_readable_by_other_users() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let cli = Cli::new(&data)?.with_umask(0o022);
    cli.import(&zone(dir.path())?)?;
    let server = Sixgate::serve(cli.clone())?;
    expect_private(&data)?;
    ensure!(!server.admin_token()?.is_empty(), "empty admin token file");

    // What an older sixgate left under umask 022, and a crash (SIGKILL on
    // drop) that leaves the WAL and shared-memory files behind: the next
    // start makes it all private again.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
    for f in ["sixgate.db", "sixgate.db-wal", "sixgate.db-shm", "admin-token", "notify.sock"] {
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o644))?;
    }
    drop(server);
    ensure!(data.join("sixgate.db-wal").exists(), "no WAL left behind by the killed server");
    let _server = Sixgate::serve(cli)?;
    expect_private(&data)
}

// --- no secret in the logs ---

fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).with_context(|| format!("not base64: {text:?}"))
}

/// Every way a secret could show up in a log line: as given, and for
/// binary secrets in hex and as Rust's `{:?}` of the bytes.
fn renderings(secret: &str, binary: Option<&[u8]>) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    if let Some(bytes) = binary {
        out.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        out.push(format!("{bytes:?}"));
    }
    out
}

fn call(
    base: &str,
    method: &str,
    path: &str,
    auth: (&str, &str),
    body: Option<Value>,
) -> Result<HttpResponse> {
    let body = body.map(|b| b.to_string());
    request(method, &format!("{base}{path}"), &[auth], body.as_deref(), TIMEOUT)
}

fn created_token(r: &HttpResponse) -> Result<String> {
    ensure!(r.status == 201, "token not created: {} {}", r.status, r.body);
    let v: Value = serde_json::from_str(&r.body)?;
    Ok(v["token"].as_str().context("no token in the answer")?.to_owned())
}

/// Runs knsupdate with `key` (ALG:NAME:SECRET) and `script`; its output.
fn knsupdate(server: SocketAddr, key: &str, script: &str) -> Result<String> {
    let mut child = Command::new(which("knsupdate")?)
        .args(["-y", key, "-t", "5", "-r", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let full =
        format!("server {} {}\nzone example.test.\n{script}\nsend\nanswer\n", server.ip(), server.port());
    child.stdin.take().context("stdin")?.write_all(full.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Regression: `serve` printed the first admin token on stdout, which
/// systemd sends to the journal. Nothing secret may reach the server's
/// log or stdout, nor the log (stderr) of a CLI command, at debug level.
#[test]
fn no_secret_appears_in_logs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&zone(dir.path())?)?;
    // Everything, dependencies included, at the most an operator turns on
    // to look into a problem.
    let log_env = [("SIXGATE_LOG", "debug")];
    let mut server = Sixgate::serve_with_env(cli.clone(), &[], &log_env)?;
    let base = server.api_url().context("no api url")?;
    let dns = server.udp_addr();
    let mut cli_runs: Vec<CliOutput> = Vec::new();
    // (what, renderings)
    let mut secrets: Vec<(String, Vec<String>)> = Vec::new();

    let admin = server.admin_token()?;
    secrets.push(("the admin token".into(), renderings(&admin, None)));
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));
    let (h, v) = bearer(&admin);
    let r = call(&base, "POST", "/v1/accounts", (h, &v), Some(json!({"name": "alice"})))?;
    ensure!(r.status == 201, "account: {} {}", r.status, r.body);
    let mut tokens = Vec::new();
    for body in [
        json!({"scope": "account", "account": "alice"}),
        json!({"scope": "zone", "zone": "example.test"}),
        json!({"scope": "acme", "zone": "example.test"}),
    ] {
        let token = created_token(&call(&base, "POST", "/v1/tokens", (h, &v), Some(body.clone()))?)?;
        secrets.push((format!("the API token {body}"), renderings(&token, None)));
        tokens.push(token);
    }
    let (account, zone_token, acme) = (&tokens[0], &tokens[1], &tokens[2]);
    // Every way a token is presented, accepted or not.
    let (h, v) = bearer(account);
    ensure!(call(&base, "GET", "/v1/zones", (h, &v), None)?.status == 200);
    let r = call(&base, "GET", "/api/v1/servers/localhost/zones", ("X-API-Key", zone_token), None)?;
    ensure!(r.status == 200, "pdns: {} {}", r.status, r.body);
    let (h, v) = bearer(zone_token);
    let put = json!({"ttl": 300, "records": ["192.0.2.7"]});
    let r = call(&base, "PUT", "/v1/zones/example.test/rrsets/api.example.test/A", (h, &v), Some(put))?;
    ensure!(r.status == 200, "put: {} {}", r.status, r.body);
    let basic = format!("Basic {}", base64_encode(format!("lego:{acme}").as_bytes()));
    let challenge = json!({"fqdn": "_acme-challenge.example.test.", "value": "challenge-one"});
    let r = call(&base, "POST", "/v1/acme/httpreq/present", ("Authorization", &basic), Some(challenge))?;
    ensure!(r.status == 200, "httpreq: {} {}", r.status, r.body);
    // Refused: the acme token outside its scope, a token that does not
    // exist, and a revoked one.
    let (h, v) = bearer(acme);
    let put = json!({"ttl": 300, "records": ["192.0.2.66"]});
    let r = call(&base, "PUT", "/v1/zones/example.test/rrsets/www.example.test/A", (h, &v), Some(put))?;
    ensure!(r.status == 403, "acme token outside its scope: {} {}", r.status, r.body);
    let unknown = format!("sgt_{}", "5a".repeat(32));
    secrets.push(("an unknown token".into(), renderings(&unknown, None)));
    let (h, v) = bearer(&unknown);
    ensure!(call(&base, "GET", "/v1/zones", (h, &v), None)?.status == 401);
    let (h, v) = bearer(&admin);
    let revoked =
        created_token(&call(&base, "POST", "/v1/tokens", (h, &v), Some(json!({"scope": "admin"})))?)?;
    secrets.push(("a revoked token".into(), renderings(&revoked, None)));
    let list: Value = serde_json::from_str(&call(&base, "GET", "/v1/tokens", (h, &v), None)?.body)?;
    let id = list.as_array().and_then(|l| l.last()).and_then(|t| t["id"].as_i64()).context("token list")?;
    ensure!(call(&base, "DELETE", &format!("/v1/tokens/{id}"), (h, &v), None)?.status == 204);
    let (h2, v2) = bearer(&revoked);
    ensure!(call(&base, "GET", "/v1/zones", (h2, &v2), None)?.status == 401);

    // TSIG keys, used for signed UPDATEs that are applied, refused, or
    // signed with the wrong secret.
    let mut keys = Vec::new();
    for (name, extra) in [("k-full", &[][..]), ("k-acme", &["--acme-only"][..])] {
        let mut args = vec![name, "--zone", "example.test"];
        args.extend_from_slice(extra);
        let out = cli.run_env(&log_env, &["tsig", "create"], &args)?.ok()?;
        let key = out.stdout.trim().to_owned();
        let secret = key.rsplit(':').next().context("no secret in `tsig create` output")?.to_owned();
        secrets.push((
            format!("the TSIG secret of {name}"),
            renderings(&secret, Some(&base64_decode(&secret)?)),
        ));
        keys.push(key);
        cli_runs.push(CliOutput { stdout: String::new(), ..out });
    }
    let out = knsupdate(dns, &keys[0], "update add tsig.example.test. 60 A 192.0.2.99")?;
    ensure!(out.contains("status: NOERROR"), "{out}");
    let out = knsupdate(dns, &keys[1], "update add _acme-challenge.example.test. 60 TXT two")?;
    ensure!(out.contains("status: NOERROR"), "{out}");
    let out = knsupdate(dns, &keys[1], "update add www.example.test. 60 A 192.0.2.66")?;
    ensure!(out.contains("REFUSED"), "{out}");
    let wrong = format!("hmac-sha256:k-full:{}", base64_encode(b"not the secret of k-full"));
    let out = knsupdate(dns, &wrong, "update add bad.example.test. 60 A 192.0.2.66")?;
    ensure!(out.contains("NOTAUTH") || out.contains("BADSIG"), "{out}");

    // DNSSEC: the private keys come out only through an explicit export.
    let (h, v) = bearer(&admin);
    let r = call(&base, "POST", "/v1/zones/example.test/dnssec", (h, &v), None)?;
    ensure!(r.status == 200 || r.status == 201, "dnssec: {} {}", r.status, r.body);
    let export = cli.run_env(&log_env, &["dnssec", "export-keys"], &["example.test"])?.ok()?;
    let pem: String =
        export.stdout.lines().filter(|l| !l.starts_with('#') && !l.starts_with("-----")).collect();
    ensure!(!pem.is_empty(), "no keys exported:\n{export}");
    let pkcs8 = base64_decode(&pem)?;
    secrets.push(("a DNSSEC private key".into(), renderings(&base64_encode(&pkcs8), Some(&pkcs8))));
    cli_runs.push(CliOutput { stdout: String::new(), ..export });

    server.process().terminate(TIMEOUT)?;
    let log = server.process().log_text();
    let stdout = server.stdout_lines().join("\n");
    // The test proves nothing unless the session was logged, in detail.
    ensure!(log.contains("DEBUG"), "no debug lines in the log:\n{log}");
    for expected in ["token created", "token revoked", "k-full", "UPDATE"] {
        ensure!(log.contains(expected), "the log does not mention {expected:?}:\n{log}");
    }
    ensure!(stdout.contains("admin token written to"), "{stdout}");
    let mut places = vec![("the server's log".to_owned(), log), ("the server's stdout".to_owned(), stdout)];
    places.extend(cli_runs.iter().map(|c| (format!("`sixgate {}`", c.args.join(" ")), c.to_string())));
    let mut found = Vec::new();
    for (what, forms) in &secrets {
        for (place, text) in &places {
            if forms.iter().any(|f| text.contains(f.as_str())) {
                found.push(format!("{what} in {place}"));
            }
        }
    }
    if !found.is_empty() {
        bail!("secrets in the logs:\n{}", found.join("\n"));
    }
    Ok(())
}
