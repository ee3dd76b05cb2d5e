//! Backend connection reuse on the plain-HTTP side (`[proxy]
//! backend_reuse = "safe"`), end to end with nginx on ::1 logging its own
//! connection number (`$connection`) for every request: a kept-alive
//! client's later requests go over pooled connections, a connection nginx
//! closes while pooled never costs a request, and neither PROXY protocol
//! hostnames nor responses that say `Connection: close` are pooled.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Result, ensure};
use sixgate_e2e::process::{ChildGuard, require_program, start_retried};
use sixgate_e2e::proxylab::{Host, ProxyLab};
use sixgate_e2e::wait_until;

const HOST: &str = "app.example.test";

/// nginx on [::1] at a free port (retried: another test may take the port
/// first), logging `CONNECTION|PROXY ADDRESS|REQUEST` to DIR/access.log;
/// `proxy_protocol` on its listener when `pp`, and `extra` in its server
/// block.
fn nginx(dir: &Path, pp: bool, extra: &str) -> Result<(ChildGuard, u16)> {
    start_retried("nginx", || nginx_once(dir, pp, extra))
}

fn nginx_once(dir: &Path, pp: bool, extra: &str) -> Result<(ChildGuard, u16)> {
    let nginx = require_program("nginx", "nginx")?;
    let port = TcpListener::bind("[::1]:0")?.local_addr()?.port();
    std::fs::create_dir_all(dir.join("logs"))?;
    let pid = dir.join("nginx.pid");
    let _ = std::fs::remove_file(&pid);
    let pp = if pp { " proxy_protocol" } else { "" };
    let conf = format!(
        "master_process off;\ndaemon off;\nerror_log {d}/logs/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         log_format conn '$connection|$proxy_protocol_addr|$request';\n\
         server {{\n    listen [::1]:{port}{pp};\n    access_log {d}/access.log conn;\n    {extra}\n    location / {{ return 200 \"hello\\n\"; }}\n  }}\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf)?;
    let mut cmd = Command::new(nginx);
    cmd.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf")).stdin(Stdio::null()).stdout(Stdio::null());
    let mut child = ChildGuard::spawn("nginx", &mut cmd)?;
    // nginx writes its pid file only after binding its listener.
    wait_until("nginx to listen", Duration::from_secs(20), || {
        if let Some(status) = child.exit_status() {
            anyhow::bail!("nginx exited with {status}: {}", child.stderr_tail(10));
        }
        Ok((pid.exists() && TcpStream::connect(("::1", port)).is_ok()).then_some(()))
    })?;
    Ok((child, port))
}

/// nginx's log lines once there are `n`, as (connection, PROXY address,
/// request line).
fn logged(dir: &Path, n: usize) -> Result<Vec<(String, String, String)>> {
    wait_until("nginx to log the requests", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
        let lines: Vec<(String, String, String)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '|');
                Some((f.next()?.to_string(), f.next()?.to_string(), f.next()?.to_string()))
            })
            .collect();
        Ok((lines.len() >= n).then_some(lines))
    })
}

fn client(proxy: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

/// One GET on `s`: the status line and whether the response said
/// `Connection: close`.
fn get(s: &mut TcpStream, path: &str) -> Result<(String, bool)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"hello\n")) {
        let n = s.read(&mut buf)?;
        ensure!(n > 0, "the proxy closed without an answer to {path}: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let status = text.lines().next().unwrap_or_default().to_string();
    Ok((status, text.contains("\r\nconnection: close\r\n")))
}

fn reused(lab: &ProxyLab) -> Result<(u64, u64)> {
    let m = lab.metrics()?;
    Ok((
        m.require("sixgate_proxy_backend_connections_total{how=\"opened\"}")?,
        m.require("sixgate_proxy_backend_connections_total{how=\"reused\"}")?,
    ))
}

fn distinct(lines: &[(String, String, String)]) -> usize {
    lines.iter().map(|l| l.0.as_str()).collect::<HashSet<_>>().len()
}

/// `backend_reuse = "safe"` (HAProxy's rule). Two kept-alive clients,
/// three requests each, one after the other:
/// each client's first request opens a connection of its own; the later
/// ones go over whichever is idle, so nginx sees two connections for six
/// requests, and a client's requests over both.
#[test]
fn a_kept_alive_clients_later_requests_go_over_pooled_backend_connections() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false, "")?;
    let lab = ProxyLab::start_with(
        dir.path(),
        &[Host::http("app", port)],
        "threads = 1\nbackend_reuse = \"safe\"\nbackend_pool_grace_ms = 0",
        "",
    )?;
    let (mut a, mut b) = (client(lab.http)?, client(lab.http)?);
    for i in 0..3 {
        ensure!(get(&mut a, &format!("/a{i}"))?.0.contains(" 200 "));
        ensure!(get(&mut b, &format!("/b{i}"))?.0.contains(" 200 "));
    }
    let lines = logged(dir.path(), 6)?;
    ensure!(distinct(&lines) == 2, "nginx connections for six requests: {lines:?}");
    let of =
        |c: &str| lines.iter().filter(|l| l.2.starts_with(&format!("GET /{c}"))).cloned().collect::<Vec<_>>();
    ensure!(distinct(&of("a")) == 2 || distinct(&of("b")) == 2, "each client kept one connection: {lines:?}");
    ensure!(reused(&lab)? == (2, 4), "opened, reused: {:?}", reused(&lab)?);
    Ok(())
}

/// The default, `backend_reuse = "idempotent"`: clients that each send one
/// GET with `Connection: close`, one after the other, are each answered
/// with `Connection: close` and their connection closed, and all their
/// requests go over one nginx connection, which never saw their close.
#[test]
fn closing_clients_first_gets_share_one_pooled_nginx_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false, "")?;
    let lab = ProxyLab::start_with(dir.path(), &[Host::http("app", port)], "threads = 1", "")?;
    for i in 0..5 {
        let mut s = client(lab.http)?;
        s.write_all(format!("GET /c{i} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?;
        let got = String::from_utf8_lossy(&got);
        ensure!(got.starts_with("HTTP/1.1 200 ") && got.ends_with("hello\n"), "{got:?}");
        ensure!(got.contains("\r\nConnection: close\r\n"), "the answer did not say close: {got:?}");
        ensure!(!got.to_ascii_lowercase().contains("keep-alive"), "{got:?}");
    }
    let lines = logged(dir.path(), 5)?;
    ensure!(distinct(&lines) == 1, "nginx connections for five closing clients: {lines:?}");
    ensure!(reused(&lab)? == (1, 4), "opened, reused: {:?}", reused(&lab)?);
    Ok(())
}

/// nginx closes idle connections after 1 s, the pool keeps them 3 s: a
/// pooled connection nginx has closed is found dead and left, and no
/// request fails, a kept-alive client's later one or a new client's first.
#[test]
fn a_backend_that_closes_its_idle_connections_never_fails_a_request() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false, "keepalive_timeout 1s;")?;
    let lab = ProxyLab::start_with(
        dir.path(),
        &[Host::http("app", port)],
        "threads = 1\nbackend_pool_idle_ms = 3000",
        "",
    )?;
    let mut a = client(lab.http)?;
    ensure!(get(&mut a, "/first")?.0.contains(" 200 "));
    let m = || lab.metrics().map(|m| m.value("sixgate_proxy_backend_pool_closed_total{why=\"dead\"}"));
    for round in 0..3 {
        // nginx closes the pooled connection after 1 s.
        std::thread::sleep(Duration::from_millis(1500));
        ensure!(get(&mut a, &format!("/later{round}"))?.0.contains(" 200 "), "a later request failed");
        let mut fresh = client(lab.http)?;
        ensure!(get(&mut fresh, "/new")?.0.contains(" 200 "), "a first request failed");
    }
    ensure!(m()? >= 3, "pooled connections found dead: {}", m()?);
    let failed = lab.metrics()?.value("sixgate_proxy_backend_reuse_failed_total{then=\"closed\"}");
    ensure!(failed == 0, "{failed} client connections closed for a dead pooled connection");
    Ok(())
}

/// With the PROXY protocol every client connection has its backend
/// connection, with its own header: nginx sees one connection per client,
/// each with the client's address, and nothing is reused.
#[test]
fn a_proxy_protocol_hostname_never_reuses_a_backend_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), true, "")?;
    let host = Host {
        label: "app",
        flags: ["--backend-http-port", &port.to_string(), "--proxy-protocol", "v1"]
            .map(String::from)
            .to_vec(),
    };
    let lab = ProxyLab::start_with(dir.path(), &[host], "threads = 1", "")?;
    let (mut a, mut b) = (client(lab.http)?, client(lab.http)?);
    for i in 0..3 {
        ensure!(get(&mut a, &format!("/a{i}"))?.0.contains(" 200 "));
        ensure!(get(&mut b, &format!("/b{i}"))?.0.contains(" 200 "));
    }
    let lines = logged(dir.path(), 6)?;
    ensure!(distinct(&lines) == 2, "nginx connections: {lines:?}");
    ensure!(lines.iter().all(|l| l.1 == "127.0.0.1"), "a request without its PROXY address: {lines:?}");
    ensure!(reused(&lab)?.1 == 0, "reused: {:?}", reused(&lab)?);
    Ok(())
}

/// nginx answers every request with `Connection: close` and closes
/// (`keepalive_requests 1`): no such connection is pooled, so none is
/// found dead or reused, and every client gets its answer.
#[test]
fn a_response_with_connection_close_is_never_pooled() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false, "keepalive_requests 1;")?;
    let lab = ProxyLab::start_with(dir.path(), &[Host::http("app", port)], "threads = 1", "")?;
    for i in 0..10 {
        let mut s = client(lab.http)?;
        let (status, close) = get(&mut s, &format!("/c{i}"))?;
        ensure!(status.contains(" 200 ") && close, "{status}, close: {close}");
    }
    // Past the pool's idle time and its purge: a pooled connection would
    // have been found dead or expired by now.
    std::thread::sleep(Duration::from_millis(3500));
    let m = lab.metrics()?;
    let closed = ["dead", "expired"]
        .map(|why| m.value(&format!("sixgate_proxy_backend_pool_closed_total{{why=\"{why}\"}}")));
    ensure!(
        reused(&lab)? == (10, 0) && closed == [0, 0],
        "opened, reused: {:?}; dead, expired: {closed:?}",
        reused(&lab)?
    );
    Ok(())
}
