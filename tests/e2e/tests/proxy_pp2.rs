//! PROXY protocol v2 TLVs end to end, read by a real receiver: HAProxy 2.6
//! behind the proxy, with `accept-proxy` on a plain-HTTP and a TLS
//! listener, answers every request with what the header it got says:
//! `fc_pp_authority` (PP2_TYPE_AUTHORITY, the SNI or the Host) and
//! `fc_pp_unique_id` (PP2_TYPE_UNIQUE_ID, with `[proxy]
//! proxy_v2_unique_id`). HAProxy refuses a connection whose header it
//! cannot read, so every answer also shows that the header's lengths are
//! right. Skipped, saying so, where HAProxy is not installed (scripts/test
//! installs it).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::knot::which;
use sixgate_e2e::process::{ChildGuard, require_program, start_retried};
use sixgate_e2e::proxylab::{Host, ProxyLab, exchange_from};
use sixgate_e2e::wait_until;

const HOST: &str = "app.example.test";
const WAIT: Duration = Duration::from_secs(20);

/// HAProxy's answer: `authority=NAME id=HEX`, the ID in uppercase hex
/// and empty when the header had none.
const ANSWER: &str = r#"lf-string "authority=%[fc_pp_authority] id=%[fc_pp_unique_id,hex]\n""#;

/// HAProxy on [::1] with a plain-HTTP and a TLS (`crt`) listener, both
/// `accept-proxy`.
struct Haproxy {
    _child: ChildGuard,
    http: u16,
    tls: u16,
}

/// A self-signed certificate for HOST: `c.pem`, and `both.pem` with the
/// key for HAProxy's `crt`.
fn certificate(dir: &Path) -> Result<()> {
    sixgate_e2e::proxylab::self_signed(dir, HOST)?;
    let both = std::fs::read_to_string(dir.join("c.pem"))? + &std::fs::read_to_string(dir.join("k.pem"))?;
    std::fs::write(dir.join("both.pem"), both)?;
    Ok(())
}

/// [`Haproxy`] in `dir`, or `None` when HAProxy is not installed.
fn haproxy(dir: &Path) -> Result<Option<Haproxy>> {
    let Ok(program) = require_program("haproxy", "haproxy") else {
        eprintln!("skipped: haproxy is not installed (scripts/test installs it)");
        return Ok(None);
    };
    certificate(dir)?;
    // The ports are picked free and may be taken before HAProxy binds
    // them: a start that fails is retried.
    start_retried("haproxy", || haproxy_once(dir, &program)).map(Some)
}

fn haproxy_once(dir: &Path, program: &Path) -> Result<Haproxy> {
    let http = TcpListener::bind("[::1]:0")?.local_addr()?.port();
    let tls = TcpListener::bind("[::1]:0")?.local_addr()?.port();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "defaults\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend http\n  mode http\n  bind [::1]:{http} accept-proxy\n\
               http-request return status 200 content-type text/plain {ANSWER}\n\
             frontend tls\n  mode http\n  bind [::1]:{tls} accept-proxy ssl crt {crt}\n\
               http-request return status 200 content-type text/plain {ANSWER}\n",
            crt = dir.join("both.pem").display()
        ),
    )?;
    let mut cmd = Command::new(program);
    cmd.arg("-db").arg("-f").arg(&cfg).stdin(Stdio::null()).stdout(Stdio::null());
    let mut child = ChildGuard::spawn("haproxy", &mut cmd)?;
    // A port that answers may be someone else's: HAProxy is ready when
    // its own answer comes back (it binds every listener before serving).
    let probe = b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET / HTTP/1.0\r\n\r\n";
    wait_until("haproxy to answer", WAIT, || {
        if let Some(status) = child.exit_status() {
            bail!("haproxy exited with {status}: {}", child.stderr_tail(10));
        }
        Ok(send(http, probe).is_ok_and(|a| a.contains("authority=")).then_some(()))
    })?;
    Ok(Haproxy { _child: child, http, tls })
}

/// `request` to [::1]:`port`, and the answer to the end.
fn send(port: u16, request: &[u8]) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("::1", port))?;
    s.set_read_timeout(Some(WAIT))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The answer's `authority=` and `id=` values.
fn seen(answer: &str) -> Result<(String, String)> {
    let line = answer
        .lines()
        .find(|l| l.starts_with("authority="))
        .with_context(|| format!("no answer: {answer:?}"))?;
    let (authority, id) = line.split_once(" id=").context("no id")?;
    Ok((authority.trim_start_matches("authority=").to_string(), id.to_string()))
}

/// A sixgate with HAProxy as the v2 backend of HOST and of `long` (a
/// 253-octet name, the longest there is), `[proxy]` lines `proxy`.
fn lab(dir: &Path, h: &Haproxy, long: &'static str, proxy: &str) -> Result<ProxyLab> {
    let flags = |http: u16, tls: u16| {
        [
            "--proxy-protocol",
            "v2",
            "--backend-http-port",
            &http.to_string(),
            "--backend-tls-port",
            &tls.to_string(),
        ]
        .map(String::from)
        .to_vec()
    };
    let hosts = [
        Host { label: "app", flags: flags(h.http, h.tls) },
        Host { label: long, flags: flags(h.http, h.tls) },
    ];
    ProxyLab::start_with(dir, &hosts, proxy, "")
}

/// The first labels of a 253-octet name under example.test.
fn long_label() -> &'static str {
    let label = format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(48));
    assert_eq!(label.len() + ".example.test".len(), 253);
    Box::leak(label.into_boxed_str())
}

/// The answer through the plain-HTTP side for `host` (the Host field).
fn through_http(lab: &ProxyLab, host: &str) -> Result<(String, String)> {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    seen(&exchange_from(Ipv4Addr::LOCALHOST, lab.http, request.as_bytes(), WAIT)?)
}

/// The answer through the TLS side, curl verifying HAProxy's certificate
/// for HOST.
fn through_tls(dir: &Path, lab: &ProxyLab) -> Result<(String, String)> {
    let port = lab.tls.port();
    let out = Command::new(which("curl")?)
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(dir.join("c.pem"))
        .args(["--resolve", &format!("{HOST}:{port}:127.0.0.1"), &format!("https://{HOST}:{port}/")])
        .stdin(Stdio::null())
        .output()?;
    ensure!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    seen(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn haproxy_reads_the_authority_from_both_sides() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let Some(h) = haproxy(dir.path())? else { return Ok(()) };
    let long = long_label();
    let lab = lab(dir.path(), &h, long, "")?;
    // The Host as routed: lowercased, without its port.
    assert_eq!(through_http(&lab, "APP.example.test:8080")?, (HOST.to_string(), String::new()));
    // The SNI.
    assert_eq!(through_tls(dir.path(), &lab)?, (HOST.to_string(), String::new()));
    // The longest name fits, and HAProxy takes it.
    let name = format!("{long}.example.test");
    assert_eq!(through_http(&lab, &name)?, (name.clone(), String::new()));
    Ok(())
}

#[test]
fn haproxy_reads_a_unique_id_per_connection_when_configured() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let Some(h) = haproxy(dir.path())? else { return Ok(()) };
    let lab = lab(dir.path(), &h, long_label(), "proxy_v2_unique_id = true")?;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..2 {
        for (authority, id) in [through_http(&lab, HOST)?, through_tls(dir.path(), &lab)?] {
            assert_eq!(authority, HOST);
            // 16 octets, in HAProxy's hex.
            ensure!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "id {id:?}");
            ensure!(ids.insert(id.clone()), "id {id} came twice");
        }
    }
    // One process's IDs share their first 8 octets.
    let prefixes: std::collections::HashSet<_> = ids.iter().map(|i| i[..16].to_string()).collect();
    assert_eq!(prefixes.len(), 1, "{ids:?}");
    Ok(())
}
