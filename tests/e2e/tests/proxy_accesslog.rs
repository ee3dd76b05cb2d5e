//! The proxy's access log, end to end: requests through `sixgate serve
//! --proxy-http` (keep-alive, a body, an upgrade, an unroutable name) and
//! connections through `--proxy-tls`, with `--proxy-access-log`; each line
//! read back from the file, its octet counts against what the client and
//! the backend of `sixgate_e2e::backend` saw.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use sixgate_e2e::backend::{BODY, Backend, Behaviour};
use sixgate_e2e::proxylab::{Host, ProxyLab, client_hello};
use sixgate_e2e::wait_until;

const APP: &str = "app.example.test";
const TLS: &str = "tls.example.test";
const TIMEOUT: Duration = Duration::from_secs(20);

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    Ok(s)
}

/// The backend's answer to every plain request.
fn ok_response() -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}", BODY.len())
}

fn read_n(s: &mut TcpStream, n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// The file's lines, once there are `n`.
fn read_lines(path: &Path, n: usize) -> Result<Vec<String>> {
    wait_until("the access log lines", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        ensure!(lines.len() <= n, "more lines than entries: {lines:#?}");
        Ok((lines.len() == n).then_some(lines))
    })
}

/// A TLS connection through the proxy to an echo backend: `extra` after
/// the ClientHello, everything echoed, then closed from the client.
/// Returns the octets each way and the client's address.
fn tls_echo(lab: &ProxyLab, extra: &[u8]) -> Result<(usize, SocketAddr)> {
    let mut s = connect(lab.tls)?;
    let mut sent = client_hello(TLS);
    sent.extend_from_slice(extra);
    s.write_all(&sent)?;
    ensure!(read_n(&mut s, sent.len())? == sent, "the tunnel did not echo");
    s.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    ensure!(rest.is_empty(), "more than the echo: {rest:?}");
    Ok((sent.len(), s.local_addr()?))
}

/// The metrics once `sixgate_proxy_access_log_lines_total` is `n`.
fn counted(lab: &ProxyLab, n: u64) -> Result<sixgate_e2e::proxylab::Metrics> {
    wait_until("the lines to be counted", Duration::from_secs(30), || {
        let m = lab.metrics()?;
        let lines = m.value("sixgate_proxy_access_log_lines_total");
        ensure!(lines <= n, "{lines} lines counted, not {n}: {}", m.0);
        Ok((lines == n).then_some(m))
    })
}

fn is_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Every kind of entry once, in JSON: three requests on one keep-alive
/// connection (one with a body), an upgrade whose tunnel echoes, a request
/// for a name that is not routed, and a TLS connection. Each line has its
/// fields, and its octet counts are those that went each way.
#[test]
fn every_request_and_tls_connection_has_its_json_line_with_its_octets() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let http = Backend::start(Behaviour::Http { switch: true })?;
    let echo = Backend::start(Behaviour::Echo)?;
    let log = dir.path().join("access.log");
    let log_arg = log.display().to_string();
    let lab = ProxyLab::start_args(
        dir.path(),
        &[Host::http("app", http.port()), Host::tls("tls", echo.port())],
        "",
        &["--proxy-access-log", "json", "--proxy-access-log-path", &log_arg],
    )?;

    // Three requests on one connection.
    let mut s = connect(lab.http)?;
    let keepalive_client = s.local_addr()?;
    let requests = [
        format!("GET /one?x=1 HTTP/1.1\r\nHost: {APP}\r\n\r\n"),
        format!("POST /two HTTP/1.1\r\nHost: {APP}\r\nContent-Length: 5\r\n\r\nhello"),
        format!("GET /three HTTP/1.1\r\nHost: {APP}\r\n\r\n"),
    ];
    let ok = ok_response();
    for r in &requests {
        s.write_all(r.as_bytes())?;
        ensure!(read_n(&mut s, ok.len())? == ok.as_bytes(), "response to {r:?}");
    }
    drop(s);

    // An upgrade, then five octets each way through its tunnel.
    let mut s = connect(lab.http)?;
    let upgrade_client = s.local_addr()?;
    s.write_all(
        format!("GET /ws HTTP/1.1\r\nHost: {APP}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .as_bytes(),
    )?;
    let switched = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    ensure!(read_n(&mut s, switched.len())? == switched.as_bytes(), "no 101");
    s.write_all(b"hello")?;
    ensure!(read_n(&mut s, 5)? == b"hello", "the upgraded connection did not echo");
    s.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    drop(s);

    // A name the proxy does not route: its own 421.
    let mut s = connect(lab.http)?;
    s.write_all(b"GET /nowhere HTTP/1.1\r\nHost: nowhere.example.test\r\n\r\n")?;
    let mut refused = Vec::new();
    s.read_to_end(&mut refused)?;
    ensure!(refused.starts_with(b"HTTP/1.1 421 "), "{}", String::from_utf8_lossy(&refused));

    // A TLS connection.
    let (tls_octets, tls_client) = tls_echo(&lab, b"ping")?;

    let lines = read_lines(&log, 6)?;
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect::<Result<_>>()?;
    for e in &entries {
        ensure!(e["time"].as_str().is_some_and(is_timestamp), "time: {e}");
        ensure!(e["ms"].as_u64().is_some_and(|ms| ms < 60_000), "ms: {e}");
    }
    let find = |listener: &str, path: Option<&str>| -> Result<&Value> {
        entries
            .iter()
            .find(|e| e["listener"] == listener && path.is_none_or(|p| e["path"] == p))
            .with_context(|| format!("no {listener} line for {path:?}: {lines:#?}"))
    };
    let seen = http.requests();
    ensure!(seen.len() == 4, "the backend saw {} requests", seen.len());
    let http_backend = format!("[::1]:{}", http.port());
    for (i, path) in ["/one?x=1", "/two", "/three"].into_iter().enumerate() {
        let e = find("http", Some(path))?;
        let method = if i == 1 { "POST" } else { "GET" };
        ensure!(e["client"] == keepalive_client.to_string(), "{e}");
        ensure!(e["host"] == APP && e["method"] == method && e["status"] == 200, "{e}");
        // What the backend got: the head rewritten (X-Forwarded-For) and
        // the body.
        ensure!(e["bytes_to_backend"] == seen[i].len(), "{e}: the backend read {} octets", seen[i].len());
        ensure!(e["bytes_to_client"] == ok.len(), "{e}");
        ensure!(e["backend"] == http_backend.as_str() && e["end"] == "done", "{e}");
    }
    let e = find("http", Some("/ws"))?;
    ensure!(e["client"] == upgrade_client.to_string() && e["status"] == 101, "{e}");
    ensure!(e["bytes_to_backend"] == seen[3].len() + 5, "{e}: the backend read {} + 5", seen[3].len());
    ensure!(e["bytes_to_client"] == switched.len() + 5, "{e}");
    ensure!(e["end"] == "closed", "{e}");
    let e = find("http", Some("/nowhere"))?;
    ensure!(e["host"] == "nowhere.example.test" && e["status"] == 421, "{e}");
    ensure!(e["bytes_to_backend"] == 0 && e["bytes_to_client"] == refused.len(), "{e}");
    ensure!(e["backend"].is_null() && e["end"] == "unroutable", "{e}");
    let e = find("tls", None)?;
    ensure!(e["client"] == tls_client.to_string() && e["host"] == TLS, "{e}");
    ensure!(e["method"].is_null() && e["path"].is_null() && e["status"].is_null(), "{e}");
    ensure!(e["bytes_to_backend"] == tls_octets && e["bytes_to_client"] == tls_octets, "{e}");
    ensure!(e["backend"] == format!("[::1]:{}", echo.port()) && e["end"] == "closed", "{e}");

    // Counted once written: the count may follow the file by a moment.
    let m = counted(&lab, 6)?;
    ensure!(m.value("sixgate_proxy_access_log_dropped_total") == 0, "{}", m.0);
    Ok(())
}

/// One entry in N per listener kind, in the text format, in the data
/// directory's proxy-access.log when no path is given; reopened there on
/// SIGHUP after logrotate moved it.
#[test]
fn text_lines_of_one_entry_in_two_go_to_the_data_directory_and_sighup_reopens_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let http = Backend::start(Behaviour::Http { switch: false })?;
    let echo = Backend::start(Behaviour::Echo)?;
    let mut lab = ProxyLab::start_args(
        dir.path(),
        &[Host::http("app", http.port()), Host::tls("tls", echo.port())],
        "",
        &["--proxy-access-log", "text", "--proxy-access-log-sample", "2"],
    )?;
    let mut clients = Vec::new();
    for i in 1..=4 {
        let mut s = connect(lab.http)?;
        clients.push(s.local_addr()?);
        s.write_all(format!("GET /{i} HTTP/1.1\r\nHost: {APP}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?;
        ensure!(got == ok_response().as_bytes(), "request {i}: {}", String::from_utf8_lossy(&got));
    }
    let mut tls = Vec::new();
    for _ in 0..3 {
        tls.push(tls_echo(&lab, b"")?);
    }
    let lines = read_lines(&dir.path().join("data/proxy-access.log"), 4)?;
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split(' ').collect()).collect();
    for f in &fields {
        ensure!(f.len() == 12 && is_timestamp(f[0]), "{f:?}");
    }
    let seen = http.requests();
    let http_lines: Vec<&Vec<&str>> = fields.iter().filter(|f| f[1] == "http").collect();
    ensure!(http_lines.len() == 2, "{lines:#?}");
    // The first and the third request.
    for (f, i) in http_lines.iter().zip([0, 2]) {
        let path = format!("\"/{}\"", i + 1);
        ensure!(f[2] == clients[i].to_string() && f[3] == APP && f[4] == "\"GET\"" && f[5] == path, "{f:?}");
        ensure!(
            f[6] == "200" && f[7] == seen[i].len().to_string() && f[8] == ok_response().len().to_string(),
            "{f:?}"
        );
        ensure!(f[9] == format!("[::1]:{}", http.port()) && f[11] == "done", "{f:?}");
    }
    // The first and the third TLS connection: TLS has its own count.
    let tls_lines: Vec<&Vec<&str>> = fields.iter().filter(|f| f[1] == "tls").collect();
    ensure!(tls_lines.len() == 2, "{lines:#?}");
    for (f, i) in tls_lines.iter().zip([0, 2]) {
        let (octets, client) = tls[i];
        ensure!(f[2] == client.to_string() && f[3] == TLS && f[4..7] == ["-", "-", "-"], "{f:?}");
        ensure!(f[7] == octets.to_string() && f[8] == octets.to_string() && f[11] == "closed", "{f:?}");
    }
    counted(&lab, 4)?;

    // logrotate: the file moved away, then SIGHUP; the next line goes to
    // a new file at the path, and the server goes on.
    let path = dir.path().join("data/proxy-access.log");
    let moved = dir.path().join("data/proxy-access.log.1");
    std::fs::rename(&path, &moved)?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(lab.server.process().id())?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP)?;
    wait_until("the reopened file", Duration::from_secs(30), || Ok(path.exists().then_some(())))?;
    // Sampling goes on: the fifth request is the third logged.
    for i in 5..=6 {
        let mut s = connect(lab.http)?;
        s.write_all(format!("GET /{i} HTTP/1.1\r\nHost: {APP}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?;
        ensure!(got == ok_response().as_bytes(), "request {i} after SIGHUP");
    }
    let after = read_lines(&path, 1)?;
    ensure!(after[0].contains(" \"/5\" 200 "), "{after:?}");
    ensure!(std::fs::read_to_string(&moved)?.lines().count() == 4, "the moved file changed");
    counted(&lab, 5)?;
    Ok(())
}
