//! The plain-HTTP side of the proxy, end to end with nginx as the
//! customer's IPv6 backend on ::1: curl from 127.0.0.1 through `sixgate
//! serve --proxy-http`, routed by Host; nginx logs the PROXY protocol
//! address and X-Forwarded-For of every request. Where nginx cannot show
//! what arrived (trailers, a header name spelled with `_`), or cannot
//! answer 101, a tiny backend of `sixgate_e2e::backend` records the raw
//! requests instead.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sixgate_e2e::backend::{Backend, Behaviour};
use sixgate_e2e::process::{ChildGuard, require_program, start_retried};
use sixgate_e2e::proxylab::{Host, ProxyLab};
use sixgate_e2e::{Cli, Sixgate, ZoneFile, wait_until};

const HOST: &str = "app.example.test";

/// nginx on [::1]:port, `proxy_protocol` on the listener when `pp`, logging
/// `PP|XFF|FORWARDED|REQUEST|X-REAL-IP|X-FORWARDED-PROTO|X-FORWARDED-HOST|CONNECTION`
/// per request to DIR/access.log ([`Logged`]). Header names with `_` are
/// kept (`underscores_in_headers on`), as CGI-style backends see them. The port is picked free
/// and may be taken by another test before nginx binds it, so a start
/// whose bind fails is retried on another port.
fn nginx(dir: &Path, pp: bool) -> Result<(ChildGuard, u16)> {
    nginx_on(dir, pp, "::1")
}

/// [`nginx`] on another loopback address.
fn nginx_on(dir: &Path, pp: bool, ip: &str) -> Result<(ChildGuard, u16)> {
    start_retried("nginx", || nginx_once(dir, pp, ip))
}

fn nginx_once(dir: &Path, pp: bool, ip: &str) -> Result<(ChildGuard, u16)> {
    let nginx = require_program("nginx", "nginx")?;
    let ipaddr: std::net::IpAddr = ip.parse()?;
    let port = TcpListener::bind((ipaddr, 0))?.local_addr()?.port();
    let host = if ipaddr.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
    std::fs::create_dir_all(dir.join("logs"))?;
    let pid = dir.join("nginx.pid");
    let _ = std::fs::remove_file(&pid);
    let listen = if pp { format!("{host}:{port} proxy_protocol") } else { format!("{host}:{port}") };
    let conf = format!(
        "master_process off;\ndaemon off;\nerror_log {d}/logs/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         underscores_in_headers on;\n\
         log_format pp '$proxy_protocol_addr|$http_x_forwarded_for|$http_forwarded|$request|$http_x_real_ip|$http_x_forwarded_proto|$http_x_forwarded_host|$http_connection';\n\
         server {{\n    listen {listen};\n    access_log {d}/access.log pp;\n    location /.well-known/acme-challenge/ {{ root {d}/www; }}\n    location = /bulk {{ alias {d}/bulk.bin; }}\n    location / {{ return 200 \"hello\\n\"; }}\n  }}\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf)?;
    let mut cmd = Command::new(nginx);
    cmd.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf")).stdin(Stdio::null()).stdout(Stdio::null());
    let mut child = ChildGuard::spawn("nginx", &mut cmd)?;
    // nginx writes its pid file only after binding its listeners: a port
    // answering before that may belong to someone else.
    wait_until("nginx to listen", Duration::from_secs(20), || {
        if let Some(status) = child.exit_status() {
            anyhow::bail!("nginx exited with {status}: {}", child.stderr_tail(10));
        }
        Ok((pid.exists() && TcpStream::connect((ipaddr, port)).is_ok()).then_some(()))
    })?;
    Ok((child, port))
}

fn proxy(dir: &Path, enable: &[&str]) -> Result<(Sixgate, SocketAddr)> {
    let zone = dir.join("example.test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\napp AAAA ::1\noff AAAA ::1\n",
    )?;
    let cli = Cli::new(dir.join("data"))?;
    cli.import(&ZoneFile::new("example.test.", zone))?;
    cli.run(&["proxy", "addresses", "set"], &["198.51.100.7"])?.ok()?;
    let mut args = vec![HOST];
    args.extend_from_slice(enable);
    cli.run(&["proxy", "enable"], &args)?.ok()?;
    let server =
        Sixgate::serve_with(cli, &["--proxy-http", "127.0.0.1:0", "--proxy-allow-backend", "::1/128"])?;
    let addr = server.listening("proxy-http").context("no `listening proxy-http` line")?;
    Ok((server, addr))
}

/// Three requests on one keep-alive connection, with a spoofed
/// X-Forwarded-For, through curl.
fn three_requests(proxy: SocketAddr) -> Result<String> {
    let url = format!("http://{HOST}:{}/n", proxy.port());
    let out = Command::new(require_program("curl", "curl")?)
        .args(["-sS", "--max-time", "20", "-H", "X-Forwarded-For: 6.6.6.6"])
        .args(["--resolve", &format!("{HOST}:{}:127.0.0.1", proxy.port())])
        .args([format!("{url}1"), format!("{url}2"), format!("{url}3")])
        .output()?;
    ensure!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn log_lines(dir: &Path, n: usize) -> Result<Vec<String>> {
    wait_until("nginx to log the requests", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        Ok((lines.len() >= n).then_some(lines))
    })
}

#[test]
fn every_keep_alive_request_carries_the_client_address_with_proxy_v1_and_v2() -> Result<()> {
    for (mode, pp) in [("v1", true), ("v2", true), ("off", false)] {
        let dir = tempfile::tempdir()?;
        let (_nginx, port) = nginx(dir.path(), pp)?;
        let (_server, proxy) =
            proxy(dir.path(), &["--proxy-protocol", mode, "--backend-http-port", &port.to_string()])?;
        let body = three_requests(proxy)?;
        ensure!(body.matches("hello").count() == 3, "{mode}: responses: {body:?}");
        let lines = log_lines(dir.path(), 3)?;
        for (i, line) in lines.iter().enumerate() {
            let parts: Vec<&str> = line.split('|').collect();
            ensure!(parts.len() == 8, "{mode}: log line {line:?}");
            if pp {
                ensure!(parts[0] == "127.0.0.1", "{mode}: request {i}: PROXY address {line:?}");
            }
            // The spoofed value is gone; the real client is the only one.
            ensure!(parts[1] == "127.0.0.1", "{mode}: request {i}: X-Forwarded-For {line:?}");
            ensure!(parts[2] == "-", "{mode}: request {i}: Forwarded is off by default: {line:?}");
            ensure!(parts[3] == format!("GET /n{} HTTP/1.1", i + 1), "{mode}: request {i}: {line:?}");
        }
    }
    Ok(())
}

/// Sends raw bytes and returns the status line of the answer.
fn raw(proxy: SocketAddr, request: &str) -> Result<String> {
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    Ok(text.lines().next().unwrap_or("").to_string())
}

#[test]
fn smuggling_literals_and_disabled_hosts_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &port.to_string()])?;
    let cases = [
        (
            "CL+TE",
            format!(
                "POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            "400",
        ),
        (
            "duplicate CL",
            format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
            "400",
        ),
        ("obs-fold", format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX: a\r\n b\r\n\r\n"), "400"),
        ("bare LF", format!("GET / HTTP/1.1\nHost: {HOST}\n\n"), "400"),
        ("IP literal Host", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_string(), "400"),
        ("IPv6 literal Host", "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n".to_string(), "400"),
        ("disabled host", "GET / HTTP/1.1\r\nHost: off.example.test\r\n\r\n".to_string(), "421"),
    ];
    for (what, req, want) in cases {
        let status = raw(proxy, &req)?;
        ensure!(status.split(' ').nth(1) == Some(want), "{what}: got {status:?}, want {want}");
    }
    // None of them reached nginx (each was answered by the proxy itself).
    let logged = std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default();
    ensure!(logged.is_empty(), "refused requests reached the backend:\n{logged}");
    // A Host change mid-connection is not sent to the first backend.
    let both =
        format!("GET /a HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /b HTTP/1.1\r\nHost: off.example.test\r\n\r\n");
    let _ = raw(proxy, &both)?;
    let lines = log_lines(dir.path(), 1)?;
    ensure!(
        lines.iter().all(|l| !l.contains("/b")),
        "the second Host's request reached the first backend: {lines:?}"
    );
    Ok(())
}

/// `proxy check` tells a PROXY-mode mismatch from a working backend: nginx
/// set up for PROXY protocol answers 400 to requests without it.
#[test]
fn proxy_check_catches_a_proxy_mode_mismatch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), true)?;
    let zone = dir.path().join("example.test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\napp AAAA ::1\n",
    )?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", zone))?;
    let p = port.to_string();
    cli.run(&["proxy", "enable"], &[HOST, "--proxy-protocol", "off", "--backend-http-port", &p])?.ok()?;
    let out = cli.run(&["proxy", "check"], &[HOST])?;
    ensure!(!out.success(), "a mismatch passed the check:\n{out}");
    ensure!(out.stdout.contains("mismatch") && out.stdout.contains("PROXY v1"), "{out}");
    cli.run(&["proxy", "enable"], &[HOST, "--proxy-protocol", "v1", "--backend-http-port", &p])?.ok()?;
    let out = cli.run(&["proxy", "check"], &[HOST])?.ok()?;
    ensure!(out.stdout.contains("\tok\tHTTP 200"), "{out}");
    Ok(())
}

/// HTTP-01 through the proxy: pebble looks up the hostname in sixgate's
/// DNS, connects to the proxy's HTTP port over IPv4, and the proxy routes
/// by Host to the backend, where lego left the token.
///
/// Lab detail: pebble 2.4 dials the AAAA address when there is one, never
/// falling back to the A record. So the backend's AAAA here is
/// ::ffff:127.0.0.1 (allowed explicitly), which pebble dials as IPv4
/// 127.0.0.1, the proxy's address; the proxy dials the same AAAA to reach
/// nginx on 127.0.0.1. In production the AAAA is the customer's global
/// address and IPv4 clients use the A record.
#[test]
fn http_01_is_validated_through_the_proxy() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("www"))?;
    let (_nginx, port) = nginx_on(dir.path(), false, "127.0.0.1")?;
    let zone = dir.path().join("example.test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\napp AAAA ::ffff:127.0.0.1\n",
    )?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", zone))?;
    cli.run(&["proxy", "addresses", "set"], &["127.0.0.1"])?.ok()?;
    cli.run(&["proxy", "enable"], &[HOST, "--backend-http-port", &port.to_string()])?.ok()?;
    let server = Sixgate::serve_with(
        cli,
        &["--proxy-http", "127.0.0.1:0", "--proxy-allow-backend", "::ffff:127.0.0.1/128"],
    )?;
    let proxy: SocketAddr = server.listening("proxy-http").context("no `listening proxy-http` line")?;
    let pebble = sixgate_e2e::pebble::Pebble::start_with_http_port(server.udp_addr(), Some(proxy.port()))?;
    let issued = sixgate_e2e::acme::lego_http(&pebble, &dir.path().join("www"), &[HOST])?;
    let names = sixgate_e2e::acme::certificate_names(&issued.certificate)?;
    ensure!(names == vec![HOST.to_string()], "certificate names: {names:?}");
    // pebble's validation went through the proxy to nginx, which got the
    // client's IPv4 address in X-Forwarded-For.
    let lines = log_lines(dir.path(), 1)?;
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("/.well-known/acme-challenge/") && l.split('|').nth(1) == Some("127.0.0.1")),
        "no challenge request reached nginx through the proxy: {lines:?}"
    );
    Ok(())
}

/// With `[proxy] forwarded = true`, RFC 7239 `Forwarded: for=CLIENT` goes
/// with X-Forwarded-For, and the client's own is replaced.
#[test]
fn the_forwarded_header_is_sent_when_configured() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let zone = dir.path().join("example.test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\napp AAAA ::1\n",
    )?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", zone))?;
    cli.run(&["proxy", "enable"], &[HOST, "--backend-http-port", &port.to_string()])?.ok()?;
    let config = dir.path().join("sixgate.toml");
    std::fs::write(
        &config,
        "[proxy]\nforwarded = true\nhttp = [\"127.0.0.1:0\"]\nallow_backend = [\"::1/128\"]\n",
    )?;
    let server = Sixgate::serve_with(cli, &["--config", &config.display().to_string()])?;
    let proxy: SocketAddr = server.listening("proxy-http").context("no `listening proxy-http` line")?;
    let status = raw(
        proxy,
        &format!("GET /f HTTP/1.1\r\nHost: {HOST}\r\nForwarded: for=6.6.6.6\r\nConnection: close\r\n\r\n"),
    )?;
    ensure!(status.contains(" 200 "), "{status}");
    let lines = log_lines(dir.path(), 1)?;
    let parts: Vec<&str> = lines[0].split('|').collect();
    ensure!(parts.get(2) == Some(&"for=127.0.0.1"), "Forwarded: {:?}", lines[0]);
    Ok(())
}

/// Regression: a large response to a `Connection: close` request stopped
/// after about 4 MB, because the proxy half-closed the backend connection
/// and nginx took that as the client going away.
#[test]
fn a_large_response_to_a_closing_request_arrives_whole() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let size = 24 * 1024 * 1024;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("bulk.bin"), &data)?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &port.to_string()])?;
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("GET /bulk HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").context("no response head")? + 4;
    ensure!(out.len() - body_at == size, "got {} of {size} body bytes", out.len() - body_at);
    ensure!(out[body_at..] == data[..], "the body differs");
    Ok(())
}

/// Octets without a period (xorshift), so that a piece lost, doubled or
/// moved anywhere in a body does not compare equal.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// 100 MB from nginx through the proxy on a kept-alive connection, with
/// `[proxy] splice` on and off: the body arrives byte for byte, the next
/// request on the connection is answered right after it, the access log
/// counts every octet, and the metrics say which path carried the body.
#[test]
fn a_100_mb_download_is_byte_exact_spliced_or_copied() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let size = 100 * 1024 * 1024;
    let data = noise(size);
    std::fs::write(dir.path().join("bulk.bin"), &data)?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    for splice in [true, false] {
        let run = dir.path().join(format!("splice-{splice}"));
        std::fs::create_dir_all(&run)?;
        let log = run.join("access.log");
        let log_arg = log.display().to_string();
        let lab = ProxyLab::start_full(
            &run,
            &[Host::http("app", port)],
            &format!("splice = {splice}"),
            "",
            &["--proxy-access-log", "json", "--proxy-access-log-path", &log_arg],
        )?;
        let mut s = keep_alive(lab.http)?;
        s.write_all(format!("GET /bulk HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())?;
        let head = read_head(&mut s)?;
        ensure!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let mut at = 0;
        let mut chunk = vec![0u8; 1 << 20];
        while at < size {
            let want = chunk.len().min(size - at);
            s.read_exact(&mut chunk[..want]).with_context(|| format!("after {at} of {size} octets"))?;
            ensure!(
                chunk[..want] == data[at..at + want],
                "splice {splice}: the body differs within {at}..{}",
                at + want
            );
            at += want;
        }
        // The next response starts right where the body's length ended.
        s.write_all(format!("GET /after HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())?;
        let (status, body) = response(&mut s)?;
        ensure!(status.contains(" 200 ") && body == b"hello\n", "{status} {body:?}");
        drop(s);
        let lines = wait_until("the access log lines", Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Ok((text.lines().count() >= 2).then(|| text.lines().map(str::to_owned).collect::<Vec<_>>()))
        })?;
        let bulk: serde_json::Value = serde_json::from_str(&lines[0])?;
        ensure!(bulk["path"] == "/bulk", "{bulk}");
        ensure!(
            bulk["bytes_to_client"] == (head.len() + size) as u64,
            "{bulk}: the client got {}",
            head.len() + size
        );
        let m = wait_until("the octets to be counted", Duration::from_secs(30), || {
            let m = lab.metrics()?;
            let counted = m.value("sixgate_proxy_relayed_octets_total{path=\"splice\"}")
                + m.value("sixgate_proxy_relayed_octets_total{path=\"copy\"}");
            Ok((counted > 0).then_some(m))
        })?;
        let spliced = m.value("sixgate_proxy_relayed_octets_total{path=\"splice\"}");
        let copied = m.value("sixgate_proxy_relayed_octets_total{path=\"copy\"}");
        if splice {
            ensure!(
                spliced >= (size - 64 * 1024) as u64 && copied < 256 * 1024,
                "spliced {spliced}, copied {copied}"
            );
        } else {
            ensure!(spliced == 0 && copied >= size as u64, "spliced {spliced}, copied {copied}");
        }
    }
    Ok(())
}

/// Reads one response head from `s`, byte by byte (nothing after it is
/// consumed), as text.
fn read_head(s: &mut TcpStream) -> Result<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b)?;
        ensure!(n == 1, "the connection closed after {:?}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Reads one response with a Content-Length body (or none) from a kept-alive
/// connection: the status line and the body.
fn response(s: &mut TcpStream) -> Result<(String, Vec<u8>)> {
    let head = read_head(s)?;
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
        .map(|v| v.parse::<usize>())
        .transpose()?
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok((head.lines().next().unwrap_or("").to_string(), body))
}

/// Does the proxy close `s` (end of stream or reset) within 20 s, before
/// sending anything?
fn closed_by_proxy(s: &mut TcpStream) -> Result<bool> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut byte = [0u8; 1];
    Ok(match s.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    })
}

fn keep_alive(proxy: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

const WEBSOCKET: &str = "Connection: Upgrade\r\nUpgrade: websocket\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Regression: `Upgrade` made the connection a raw tunnel as soon as the
/// request was seen, not when a 101 came back. nginx answers such a request
/// 200 and keeps the connection, so every later request on it reached nginx
/// unparsed and with the client's own X-Forwarded-For.
#[test]
fn an_upgrade_answered_200_tunnelled_the_next_requests_past_the_rewrite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &port.to_string()])?;
    let mut s = keep_alive(proxy)?;
    s.write_all(format!("GET /upgrade HTTP/1.1\r\nHost: {HOST}\r\n{WEBSOCKET}\r\n").as_bytes())?;
    let (status, _) = response(&mut s)?;
    ensure!(status.contains(" 200 "), "upgrade: {status}");
    s.write_all(
        format!("GET /after HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n").as_bytes(),
    )?;
    let (status, _) = response(&mut s)?;
    ensure!(status.contains(" 200 "), "after: {status}");
    // The connection is still parsed: a head the proxy refuses is refused.
    s.write_all(b"GET /literal HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    let (status, _) = response(&mut s)?;
    ensure!(status.contains(" 400 "), "an IP-literal Host after the upgrade: {status}");
    let lines = log_lines(dir.path(), 2)?;
    let after = lines.iter().find(|l| l.contains("GET /after")).context("no /after in the log")?;
    ensure!(after.split('|').nth(1) == Some("127.0.0.1"), "X-Forwarded-For of /after: {after}");
    ensure!(!lines.iter().any(|l| l.contains("/literal")), "a refused head reached nginx: {lines:?}");
    Ok(())
}

/// A 101 makes the connection a tunnel: bytes go both ways unparsed. An
/// `Upgrade: h2c` (RFC 9113 §3.1 deprecates it) never becomes one: the
/// backend gets a plain HTTP/1.1 request, without Upgrade and
/// HTTP2-Settings, so its answer is not 101 and the connection stays HTTP.
#[test]
fn a_101_opens_the_tunnel_and_an_h2c_upgrade_never_does() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = Backend::start(Behaviour::Http { switch: true })?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &backend.port().to_string()])?;
    let mut s = keep_alive(proxy)?;
    s.write_all(format!("GET /ws HTTP/1.1\r\nHost: {HOST}\r\n{WEBSOCKET}\r\n").as_bytes())?;
    let head = read_head(&mut s)?;
    ensure!(head.starts_with("HTTP/1.1 101 "), "websocket: {head}");
    let frames = b"GET / HTTP/1.1\nnot a request\r\n\r\n\x00\xff";
    s.write_all(frames)?;
    let mut echoed = vec![0; frames.len()];
    s.read_exact(&mut echoed)?;
    ensure!(echoed == frames, "the tunnel changed the bytes: {:?}", String::from_utf8_lossy(&echoed));

    let mut s = keep_alive(proxy)?;
    s.write_all(
        format!(
            "GET /h2c HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
             HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let (status, _) = response(&mut s)?;
    ensure!(status.contains(" 200 "), "h2c upgrade: {status}");
    s.write_all(
        format!("GET /next HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n").as_bytes(),
    )?;
    let (status, _) = response(&mut s)?;
    ensure!(status.contains(" 200 "), "after h2c: {status}");
    let requests = backend.requests();
    let seen: Vec<String> = requests
        .iter()
        .map(|r| String::from_utf8_lossy(r).to_ascii_lowercase())
        .filter(|r| !r.contains("/ws"))
        .collect();
    ensure!(seen.len() == 2, "{seen:?}");
    for r in &seen {
        ensure!(
            !r.contains("upgrade") && !r.contains("http2-settings"),
            "the backend saw an h2c upgrade: {r}"
        );
        ensure!(!r.contains("6.6.6.6") && r.contains("x-forwarded-for: 127.0.0.1\r\n"), "{r}");
    }
    Ok(())
}

/// Sends each request (`Connection: close`) and checks it was answered 200
/// and that the backend got none of `forged`.
fn forged_never_arrive(
    proxy: SocketAddr,
    backend: &Backend,
    requests: &[String],
    forged: &str,
) -> Result<()> {
    for r in requests {
        let status = raw(proxy, r)?;
        ensure!(status.contains(" 200 "), "{status}: {r:?}");
    }
    let seen = backend.requests();
    ensure!(
        seen.len() == requests.len(),
        "{} of {} requests reached the backend",
        seen.len(),
        requests.len()
    );
    for (sent, got) in requests.iter().zip(&seen) {
        let got = String::from_utf8_lossy(got);
        ensure!(!got.contains(forged), "sent {sent:?}\nthe backend got {got:?}");
        ensure!(got.contains("X-Forwarded-For: 127.0.0.1\r\n"), "no X-Forwarded-For of ours in {got:?}");
    }
    Ok(())
}

/// Regression: forwarding headers were matched by exact name, so
/// `X-Forwarded_For` (the underscore class of CVE-2024-45614) and its
/// siblings passed the strip; CGI-style backends read them as
/// X-Forwarded-For.
#[test]
fn forwarding_headers_spelled_with_underscores_reached_the_backend() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = Backend::start(Behaviour::Http { switch: false })?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &backend.port().to_string()])?;
    let names = [
        "X-Forwarded_For",
        "X_Forwarded_For",
        "x-real_ip",
        "X-Forwarded_Proto",
        "X_Forwarded-Host",
        "X-Forwarded_Port",
    ];
    let requests: Vec<String> = names
        .iter()
        .map(|n| format!("GET /{n} HTTP/1.1\r\nHost: {HOST}\r\n{n}: 6.6.6.6\r\nConnection: close\r\n\r\n"))
        .collect();
    forged_never_arrive(proxy, &backend, &requests, "6.6.6.6")
}

/// Regression: `Connection` was forwarded as sent, so a client could
/// nominate X-Forwarded-For as hop-by-hop (RFC 9110 §7.6.1) and have the
/// next intermediate behind the proxy delete the one the proxy adds.
#[test]
fn connection_could_nominate_x_forwarded_for_for_removal() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = Backend::start(Behaviour::Http { switch: false })?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &backend.port().to_string()])?;
    let tokens = [
        "close, X-Forwarded-For",
        "X_Forwarded_For, close",
        "close, x-real-ip, Forwarded, X-Forwarded-Proto",
    ];
    let requests: Vec<String> =
        tokens.iter().map(|t| format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: {t}\r\n\r\n")).collect();
    for r in &requests {
        let status = raw(proxy, r)?;
        ensure!(status.contains(" 200 "), "{status}: {r:?}");
    }
    for got in backend.requests() {
        let got = String::from_utf8_lossy(&got).to_ascii_lowercase();
        let connection = got.lines().find_map(|l| l.strip_prefix("connection:")).unwrap_or_default();
        let tokens: Vec<String> = connection.split(',').map(|t| t.trim().replace('_', "-")).collect();
        // Nothing it nominated reaches the backend. The client's own `close`
        // may be kept from it (`backend_reuse = "idempotent"` keeps the
        // backend connection for the pool, RFC 9110 §7.6.1).
        ensure!(
            tokens.iter().all(|t| t.is_empty() || t == "close"),
            "the backend got Connection: {connection:?}"
        );
    }
    Ok(())
}

/// Regression: trailer fields of a chunked request were forwarded as
/// sent, X-Forwarded-For among them, and stacks that merge trailers into
/// the header fields saw the forged value. The proxy drops the trailer
/// section (RFC 9112 §7.1.2 allows it).
#[test]
fn x_forwarded_for_in_chunked_trailers_reached_the_backend() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = Backend::start(Behaviour::Http { switch: false })?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &backend.port().to_string()])?;
    let requests = [format!(
        "POST /t HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         5\r\nhello\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nExpires: never\r\n\r\n"
    )];
    forged_never_arrive(proxy, &backend, &requests, "6.6.6.6")?;
    let got = String::from_utf8_lossy(&backend.requests()[0]).into_owned();
    ensure!(got.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "the body arrived as {got:?}");
    Ok(())
}

/// The same bypasses as nginx sees them: with `underscores_in_headers on`
/// nginx reads `X-Real_IP` as `$http_x_real_ip` (and so on), and logs the
/// Connection header it got.
#[test]
fn forged_forwarding_headers_never_reach_nginx() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-http-port", &port.to_string()])?;
    let request = format!(
        "GET /forged HTTP/1.1\r\nHost: {HOST}\r\nX-Real_IP: 6.6.6.6\r\nX-Forwarded_Proto: 6.6.6.6\r\n\
         X_Forwarded_Host: 6.6.6.6\r\nConnection: close, X-Forwarded-For\r\n\r\n"
    );
    let status = raw(proxy, &request)?;
    ensure!(status.contains(" 200 "), "{status}");
    let lines = log_lines(dir.path(), 1)?;
    let line = lines.iter().find(|l| l.contains("/forged")).context("no /forged in the log")?;
    let f: Vec<&str> = line.split('|').collect();
    ensure!(f.len() == 8 && f[1] == "127.0.0.1", "X-Forwarded-For: {line}");
    ensure!(!line.contains("6.6.6.6"), "a forged value reached nginx: {line}");
    // Only the client's own `close` may be left, and it may be kept from
    // nginx (`backend_reuse = "idempotent"` pools the backend connection).
    ensure!(f[7] == "close" || f[7] == "-", "Connection at nginx: {line}");
    Ok(())
}

/// Regression: the proxy had no connection cap. At its cap, a listener
/// closes its connection that has been idle longest (a kept-alive one
/// waiting for its next request), not the new one.
#[test]
fn a_full_listener_closes_its_oldest_idle_keep_alive_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    // Two hostnames: the evicted connection gives its hostname's place
    // back only when its task ends, after the new one is admitted.
    let lab = ProxyLab::start(
        dir.path(),
        &[Host::http("app", port), Host::http("other", port)],
        "max_connections = 2\nper_address = 2\nper_host = 2",
    )?;
    let get = |s: &mut TcpStream, host: &str, path: &str| -> Result<String> {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())?;
        Ok(response(s)?.0)
    };
    let mut a = keep_alive(lab.http)?;
    ensure!(get(&mut a, HOST, "/a")?.contains(" 200 "));
    let mut b = keep_alive(lab.http)?;
    ensure!(get(&mut b, "other.example.test", "/b")?.contains(" 200 "));
    // Both are idle now, a the longer: the third connection takes a's slot.
    let mut c = keep_alive(lab.http)?;
    ensure!(get(&mut c, HOST, "/c")?.contains(" 200 "), "the third connection was not served");
    ensure!(closed_by_proxy(&mut a)?, "the oldest idle connection is still open");
    ensure!(
        get(&mut b, "other.example.test", "/b2")?.contains(" 200 "),
        "the newer idle connection was closed"
    );
    let m = lab.metrics()?;
    ensure!(m.value("sixgate_listener_evicted_total{listener=\"proxy_http\"}") == 1, "{}", m.0);
    Ok(())
}

/// Regression: one client address could open any number of connections.
/// Over `per_address`, with none of its own idle, a new one is reset at
/// once; another address is still served.
#[test]
fn one_address_could_hold_every_proxy_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let lab = ProxyLab::start(
        dir.path(),
        &[Host::http("app", port)],
        "max_connections = 10\nper_address = 2\nper_host = 10",
    )?;
    // Two connections that have sent part of a head: busy, not idle.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = keep_alive(lab.http)?;
        s.write_all(b"GET / HTTP/1.1\r\n")?;
        held.push(s);
    }
    // Admitted before the third comes: each proxy thread accepts on a
    // socket of its own, so connections are not taken in the order made.
    wait_until("the two to be admitted", Duration::from_secs(20), || {
        Ok((lab.metrics()?.open("proxy_http") == 2).then_some(()))
    })?;
    let mut third = keep_alive(lab.http)?;
    let _ = third.write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes());
    ensure!(closed_by_proxy(&mut third)?, "a third connection from one address was served");
    let answer = sixgate_e2e::proxylab::exchange_from(
        "127.0.0.2".parse()?,
        lab.http,
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes(),
        Duration::from_secs(20),
    )?;
    ensure!(answer.starts_with("HTTP/1.1 200 "), "another address: {answer:?}");
    let m = lab.metrics()?;
    ensure!(m.refused("proxy_http", "address") == 1, "{}", m.0);
    drop(held);
    Ok(())
}

/// Regression: one hostname could take every connection of a listener.
/// Over `per_host`, a request for it is answered 503; another hostname is
/// still served.
#[test]
fn one_hostname_could_take_every_proxy_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let lab = ProxyLab::start(
        dir.path(),
        &[Host::http("app", port), Host::http("other", port)],
        "max_connections = 10\nper_address = 10\nper_host = 2",
    )?;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = keep_alive(lab.http)?;
        s.write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())?;
        ensure!(response(&mut s)?.0.contains(" 200 "));
        held.push(s);
    }
    let status = raw(lab.http, &format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"))?;
    ensure!(status.contains(" 503 "), "a third connection for one hostname: {status}");
    let status = raw(lab.http, "GET / HTTP/1.1\r\nHost: other.example.test\r\nConnection: close\r\n\r\n")?;
    ensure!(status.contains(" 200 "), "another hostname: {status}");
    let m = lab.metrics()?;
    ensure!(m.refused("proxy_http", "host") == 1, "{}", m.0);
    drop(held);
    Ok(())
}

/// One counter from `GET /metrics` (0 when absent).
fn metric(server: &Sixgate, series: &str) -> Result<u64> {
    Ok(server.metrics()?.value(series))
}

/// Regression: only DNS and proxy listen addresses that were IPv6 and not
/// a wildcard counted as sixgate's own, so a hostname aimed at the
/// proxy's own listener (its AAAA the listener's address, its backend
/// port the listener's) was proxied into the proxy, which routed it
/// again, and again, until descriptors ran out.
#[test]
fn a_backend_at_the_proxys_own_listener_is_refused_not_looped() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = dir.path().join("example.test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\napp AAAA ::ffff:127.0.0.1\n",
    )?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", zone))?;
    cli.run(&["proxy", "addresses", "set"], &["198.51.100.7"])?.ok()?;
    let server = Sixgate::serve_with(
        cli,
        &["--proxy-http", "127.0.0.1:0", "--proxy-allow-backend", "::ffff:127.0.0.1/128"],
    )?;
    let proxy: SocketAddr = server.listening("proxy-http").context("no `listening proxy-http` line")?;
    // The port is known only now: aim the hostname at the running proxy.
    server
        .cli()
        .run(&["proxy", "enable"], &[HOST, "--backend-http-port", &proxy.port().to_string()])?
        .ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    let status = wait_until("the hostname to be routed", Duration::from_secs(20), || {
        let s = raw(proxy, &request)?;
        Ok((!s.contains(" 421 ")).then_some(s))
    })?;
    ensure!(status.contains(" 502 "), "a backend at the proxy's own listener: {status:?}");
    ensure!(metric(&server, "sixgate_proxy_forwarded_total")? == 0, "the proxy forwarded to itself");
    Ok(())
}

/// A request for `host` through the proxy; the status line.
fn get(proxy: SocketAddr, host: &str, path: &str) -> Result<String> {
    raw(proxy, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"))
}

/// Accounts `alice` and `bob` with a verified zone each, made by an
/// admin through the API, whose `www` AAAA is ::1 (bob's server, nginx on
/// `port`), enabled for the proxy on the running server. Returns the
/// server, its proxy-http address and an admin token.
fn two_tenants(
    dir: &Path,
    port: u16,
    before_serve: impl FnOnce(&Cli) -> Result<()>,
) -> Result<(Sixgate, SocketAddr, String)> {
    let cli = Cli::new(dir.join("data"))?;
    for who in ["alice", "bob"] {
        cli.run(&["account", "create"], &[who])?.ok()?;
    }
    cli.run(&["proxy", "addresses", "set"], &["198.51.100.7"])?.ok()?;
    before_serve(&cli)?;
    let admin = cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_string();
    // The operator's own prefix is ::1/128 too: it is not the customers'.
    let server =
        Sixgate::serve_with(cli, &["--proxy-http", "127.0.0.1:0", "--proxy-allow-backend", "::1/128"])?;
    let base = server.api_url().context("no API")?;
    for who in ["alice", "bob"] {
        let zonefile =
            format!("$ORIGIN {who}.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns.example.\nwww AAAA ::1\n");
        let body = serde_json::json!({"name": format!("{who}.test"), "account": who, "zonefile": zonefile});
        let r = sixgate_e2e::http::bearer(
            "POST",
            &base,
            "/v1/zones",
            &admin,
            Some(&body),
            Duration::from_secs(20),
        )?;
        ensure!(
            r.status == 201 && r.body.contains("\"verified\":true"),
            "{who}'s zone: {} {}",
            r.status,
            r.body
        );
        let host = format!("www.{who}.test");
        server.cli().run(&["proxy", "enable"], &[&host, "--backend-http-port", &port.to_string()])?.ok()?;
    }
    let proxy: SocketAddr = server.listening("proxy-http").context("no `listening proxy-http` line")?;
    Ok((server, proxy, admin))
}

/// Regression: backend prefixes were one list for every account, so a
/// customer could point an enabled hostname at another customer's server
/// (which lets the proxy's address through its firewall) and reach it
/// through the proxy. Bob's prefix is his; Alice's hostname aimed at his
/// server is refused, and the operator's own prefix opens nothing for
/// customers.
#[test]
fn a_hostname_reaches_only_backends_in_its_own_accounts_prefixes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let (server, proxy, admin) = two_tenants(dir.path(), port, |cli| {
        cli.run(&["account", "prefixes", "set"], &["bob", "::1/128"])?.ok()?;
        Ok(())
    })?;
    // Alice's hostname was enabled first: once Bob's is routed, hers is
    // in the route table too.
    wait_until("bob's hostname to be proxied", Duration::from_secs(20), || {
        Ok(get(proxy, "www.bob.test", "/bob")?.contains(" 200 ").then_some(()))
    })?;
    let alice = get(proxy, "www.alice.test", "/alice")?;
    ensure!(alice.contains(" 421 "), "alice's hostname reached bob's server: {alice}");
    let logged = std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default();
    ensure!(!logged.contains("/alice"), "{logged}");
    // The same list on the data directory and through the API.
    let base = server.api_url().context("no API")?;
    let env = [("SIXGATE_API", base.as_str()), ("SIXGATE_TOKEN", admin.as_str())];
    for (who, want) in [("bob", "::1/128\n"), ("alice", "")] {
        for out in [
            server.cli().run(&["account", "prefixes", "show"], &[who])?.ok()?,
            server.cli().run_env(&env, &["account", "prefixes", "show"], &[who])?.ok()?,
        ] {
            ensure!(out.stdout == want, "{who}: {out}");
        }
    }
    let refused = server.cli().run_env(&env, &["account", "prefixes", "set"], &["alice", "::1/128"])?;
    ensure!(!refused.success() && refused.stderr.contains("account bob"), "{refused}");
    Ok(())
}

/// Waits until a request for `host` gets a status line containing `want`.
fn wait_status(proxy: SocketAddr, host: &str, want: &str, what: &str) -> Result<String> {
    wait_until(what, Duration::from_secs(15), || {
        let s = get(proxy, host, "/")?;
        Ok(s.contains(want).then_some(s))
    })
}

/// Regression: the route table was rebuilt only after a DNS change was
/// published, and `proxy enable` on an enabled hostname with new options
/// changes no record, so a running proxy kept the old PROXY mode (and
/// ports) until some unrelated DNS change.
#[test]
fn a_proxy_protocol_change_takes_effect_without_a_dns_change() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // nginx wants a PROXY header; the hostname is enabled without one.
    let (_nginx, port) = nginx(dir.path(), true)?;
    let p = port.to_string();
    let (server, proxy) = proxy(dir.path(), &["--proxy-protocol", "off", "--backend-http-port", &p])?;
    let first = get(proxy, HOST, "/")?;
    ensure!(!first.contains(" 200 "), "nginx answered without a PROXY header: {first:?}");
    server
        .cli()
        .run(&["proxy", "enable"], &[HOST, "--proxy-protocol", "v1", "--backend-http-port", &p])?
        .ok()?;
    wait_status(proxy, HOST, " 200 ", "the PROXY header to be sent")?;
    let lines = log_lines(dir.path(), 1)?;
    ensure!(lines.iter().any(|l| l.starts_with("127.0.0.1|")), "no PROXY address logged: {lines:?}");
    Ok(())
}

/// Regression: a change of an account's backend prefixes reached a
/// running proxy only with the next unrelated DNS change.
#[test]
fn a_change_of_account_prefixes_takes_effect_without_a_dns_change() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let (server, proxy, admin) = two_tenants(dir.path(), port, |_| Ok(()))?;
    // Refused: without prefixes (or, a moment after `proxy enable`, as not
    // yet enabled; both are 421).
    let refused = get(proxy, "www.bob.test", "/")?;
    ensure!(refused.contains(" 421 "), "bob's hostname without prefixes: {refused:?}");
    server.cli().run(&["account", "prefixes", "set"], &["bob", "::1/128"])?.ok()?;
    wait_status(proxy, "www.bob.test", " 200 ", "bob's prefixes to be used")?;
    // Cleared through the API: refused again.
    let base = server.api_url().context("no API")?;
    let r = sixgate_e2e::http::bearer(
        "PUT",
        &base,
        "/v1/accounts/bob/prefixes",
        &admin,
        Some(&serde_json::json!({"prefixes": []})),
        Duration::from_secs(10),
    )?;
    ensure!(r.status == 200, "{} {}", r.status, r.body);
    wait_status(proxy, "www.bob.test", " 421 ", "bob's prefixes to be gone")?;
    Ok(())
}

/// A customer zone that loses its delegation stops being proxied on the
/// running server at the next check, while (in a lab serving unverified
/// zones) DNS still answers for it.
#[test]
fn a_zone_that_loses_its_delegation_stops_being_proxied() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let zone = dir.path().join("test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN test.\n$TTL 60\n@ SOA ns.test. hostmaster 1 3600 900 604800 60\n@ NS ns\nns A 192.0.2.1\n\
         shop NS ns1.shared.example.\n",
    )?;
    let parent = Sixgate::start(&[ZoneFile::new("test.", zone)])?;
    let config = dir.path().join("sixgate.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nnameservers = [\"ns1.shared.example.\"]\n[tenancy]\nserve_unverified = true\n\
             [verify]\nresolvers = [\"{}\"]\ninterval = 1\n\
             [proxy]\nhttp = [\"127.0.0.1:0\"]\n",
            parent.udp_addr()
        ),
    )?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.run(&["account", "create"], &["alice"])?.ok()?;
    cli.run(&["account", "prefixes", "set"], &["alice", "::1/128"])?.ok()?;
    cli.run(&["proxy", "addresses", "set"], &["198.51.100.7"])?.ok()?;
    let admin = cli.run(&["token", "create"], &[])?.ok()?.stdout.trim().to_string();
    let server = Sixgate::serve_with(cli, &["--config", &config.display().to_string()])?;
    let base = server.api_url().context("no API")?;
    let zonefile = "$ORIGIN shop.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns1.shared.example.\nwww AAAA ::1\n";
    let body = serde_json::json!({"name": "shop.test", "account": "alice", "zonefile": zonefile});
    let r =
        sixgate_e2e::http::bearer("POST", &base, "/v1/zones", &admin, Some(&body), Duration::from_secs(20))?;
    ensure!(r.status == 201, "{} {}", r.status, r.body);
    server
        .cli()
        .run(&["proxy", "enable"], &["www.shop.test", "--backend-http-port", &port.to_string()])?
        .ok()?;
    let proxy: SocketAddr = server.listening("proxy-http").context("no `listening proxy-http` line")?;
    wait_status(proxy, "www.shop.test", " 200 ", "the verified zone's hostname to be proxied")?;
    // The registrant moves the domain elsewhere.
    parent
        .cli()
        .run(&["record", "set"], &["test", "shop", "NS", "--ttl", "60", "ns1.elsewhere.example."])?
        .ok()?;
    wait_status(proxy, "www.shop.test", " 421 ", "the unverified zone's hostname to be refused")?;
    Ok(())
}

/// 100 MB of a pattern no offset repeats within: a short or reordered
/// body is caught by the sum.
fn bulk_file(path: &Path, size: usize) -> Result<u64> {
    let mut data = Vec::with_capacity(size);
    let mut x: u32 = 0x9e37_79b9;
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    std::fs::write(path, &data)?;
    Ok(checksum(0, &data))
}

fn checksum(mut sum: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        sum = sum.wrapping_mul(31).wrapping_add(u64::from(b));
    }
    sum
}

/// Downloads /bulk through `proxy`, reading slowly enough for the test to
/// act during it; `progress` counts the body octets read so far. Returns
/// (body octets, checksum).
fn slow_download(proxy: SocketAddr, progress: &std::sync::atomic::AtomicUsize) -> Result<(usize, u64)> {
    use std::sync::atomic::Ordering;
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("GET /bulk HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut sum) = (0usize, 0u64);
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = buf.get(..n).unwrap_or_default();
        if !head.ends_with(b"\r\n\r\n") {
            // Byte by byte until the end of the head.
            while let Some((&b, rest)) = chunk.split_first() {
                head.push(b);
                chunk = rest;
                if head.ends_with(b"\r\n\r\n") {
                    break;
                }
            }
            ensure!(head.len() < 16 * 1024, "no end of head");
        }
        got += chunk.len();
        sum = checksum(sum, chunk);
        progress.store(got, Ordering::Relaxed);
        // About 3 s for 100 MB at 64 KiB per read.
        std::thread::sleep(Duration::from_millis(2));
    }
    ensure!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    Ok((got, sum))
}

/// Requests on keep-alive connections until `stop`; every one must be
/// answered 200 hello, and a connection may close only after an answer
/// that says so. Returns how many were answered.
fn keep_alive_load(proxy: SocketAddr, stop: &std::sync::atomic::AtomicBool) -> Result<usize> {
    use std::sync::atomic::Ordering;
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    let mut answered = 0;
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        s.write_all(request.as_bytes())?;
        let mut got = Vec::new();
        while !(got.ends_with(b"hello\n") && got.windows(4).any(|w| w == b"\r\n\r\n")) {
            let n = s.read(&mut buf)?;
            ensure!(n > 0, "the proxy closed a keep-alive connection after {answered} answers");
            got.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        ensure!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
        answered += 1;
        // nginx ends a connection after keepalive_requests (1000), and says
        // so in the answer: a new connection then, as any client does.
        if got.windows(17).any(|w| w.eq_ignore_ascii_case(b"connection: close")) {
            s = TcpStream::connect(proxy)?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
        }
    }
    Ok(answered)
}

/// A SIGHUP (routes read again) and a route change during a 100 MB
/// transfer and keep-alive load lose no request and no octet; then a
/// SIGTERM lets the transfer finish (the drain) while DNS still answers,
/// and DNS answers every query throughout.
#[test]
fn a_reload_and_a_stop_during_a_transfer_and_keep_alive_load_lose_no_request() -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const SIZE: usize = 100_000_000;
    let dir = tempfile::tempdir()?;
    let sum = bulk_file(&dir.path().join("bulk.bin"), SIZE)?;
    let (_nginx, port) = nginx(dir.path(), false)?;
    let (mut server, proxy) = proxy(dir.path(), &["--backend-http-port", &port.to_string()])?;
    let pid = Pid::from_raw(i32::try_from(server.process().id())?);
    let dns = server.udp_addr();
    let stop = AtomicBool::new(false);
    let dns_stop = AtomicBool::new(false);
    let progress = AtomicUsize::new(0);
    let dns_answered = AtomicUsize::new(0);
    std::thread::scope(|s| -> Result<()> {
        let download = s.spawn(|| slow_download(proxy, &progress));
        let load: Vec<_> = (0..2).map(|_| s.spawn(|| keep_alive_load(proxy, &stop))).collect();
        let queries = s.spawn(|| -> Result<usize> {
            let client = sixgate_e2e::UdpClient::new(dns)?;
            let mut n = 0u16;
            // DNS ends with the process, once the transfer is through: the
            // queries stop just before its end.
            while !dns_stop.load(Ordering::Relaxed) && progress.load(Ordering::Relaxed) < SIZE - 5_000_000 {
                n = n.wrapping_add(1);
                let q = sixgate_e2e::QuerySpec::parse(HOST, 28)?.with_id(n).encode()?;
                // A resolver's retry: one lost datagram is not an outage.
                let answered = (0..2).any(|_| {
                    client.send(&q).is_ok()
                        && client
                            .receive_any(Duration::from_secs(2))
                            .ok()
                            .flatten()
                            .is_some_and(|a| a.get(..2) == q.get(..2))
                });
                ensure!(answered, "query {n} not answered");
                dns_answered.fetch_add(1, Ordering::Relaxed);
                // Paced: the point is an answer at every moment, not load.
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(usize::from(n))
        });
        let steps = || -> Result<()> {
            let at = |bytes: usize| {
                wait_until("the download to get further", Duration::from_secs(50), || {
                    Ok((progress.load(Ordering::Relaxed) >= bytes).then_some(()))
                })
            };
            at(10_000_000)?;
            kill(pid, Signal::SIGHUP)?;
            // A route change too: the hostname's options written again.
            server
                .cli()
                .run(&["proxy", "enable"], &[HOST, "--backend-http-port", &port.to_string()])?
                .ok()?;
            at(40_000_000)?;
            stop.store(true, Ordering::Relaxed);
            for l in load {
                let n = l.join().map_err(|_| anyhow::anyhow!("load thread panicked"))??;
                ensure!(n > 0, "no keep-alive request answered");
            }
            // The stop: the listener closes, the transfer drains to its end.
            kill(pid, Signal::SIGTERM)?;
            wait_until("the proxy to stop accepting", Duration::from_secs(20), || {
                Ok(TcpStream::connect(proxy).is_err().then_some(()))
            })?;
            // DNS answers while the proxy drains.
            let before = dns_answered.load(Ordering::Relaxed);
            let answered = queries.join().map_err(|_| anyhow::anyhow!("query thread panicked"))??;
            let during = dns_answered.load(Ordering::Relaxed) - before;
            ensure!(during > 10, "{during} DNS queries answered during the drain ({answered} in all)");
            let (got, got_sum) =
                download.join().map_err(|_| anyhow::anyhow!("download thread panicked"))??;
            ensure!(got == SIZE && got_sum == sum, "the transfer lost octets: {got} of {SIZE}");
            Ok(())
        };
        // Whatever happened, the load and the queries stop.
        let r = steps();
        stop.store(true, Ordering::Relaxed);
        dns_stop.store(true, Ordering::Relaxed);
        r
    })
    .with_context(|| server.stderr_tail(30))?;
    let status = server.process().wait_for_exit(Duration::from_secs(30))?;
    ensure!(status.success(), "sixgate exited with {status}");
    let log = server.stderr_tail(usize::MAX);
    ensure!(
        log.contains("SIGHUP: reloading the proxy routes") && log.contains("proxy drained"),
        "no reload or drain logged: {}",
        server.stderr_tail(30)
    );
    Ok(())
}
