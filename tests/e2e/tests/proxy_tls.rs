//! The TLS side of the IPv4-to-IPv6 proxy, end to end: a client on
//! 127.0.0.1 reaches a TLS backend on ::1 through `sixgate serve
//! --proxy-tls`, routed by SNI, without sixgate terminating TLS; PROXY
//! headers reach the backend first; everything not routable is closed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::backend::{Backend, Behaviour};
use sixgate_e2e::knot::which;
use sixgate_e2e::process::ChildGuard;
use sixgate_e2e::proxylab::{
    Host, ProxyLab, TcpEntry, client_hello, self_signed, socket_inodes, tcp_sockets,
};
use sixgate_e2e::{Cli, Sixgate, ZoneFile, wait_until};

const HOST: &str = "app.example.test";

/// `openssl s_server` on [::1]:port, answering with a small page. The port
/// is picked free and may be taken before s_server binds it: s_server says
/// `ACCEPT` once it listens, and a start that fails is retried.
fn tls_backend(dir: &Path) -> Result<(ChildGuard, u16)> {
    let mut last = None;
    for _ in 0..5 {
        let port = TcpListener::bind("[::1]:0")?.local_addr()?.port();
        let out = dir.join(format!("s_server-{port}.out"));
        let mut cmd = Command::new(which("openssl")?);
        cmd.current_dir(dir)
            .args([
                "s_server",
                "-accept",
                &format!("[::1]:{port}"),
                "-6",
                "-cert",
                "c.pem",
                "-key",
                "k.pem",
                "-www",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?);
        let mut child = ChildGuard::spawn("openssl-s_server", &mut cmd)?;
        let ready = wait_until("s_server to listen", Duration::from_secs(20), || {
            if let Some(status) = child.exit_status() {
                bail!("s_server exited with {status}");
            }
            Ok(std::fs::read_to_string(&out).unwrap_or_default().contains("ACCEPT").then_some(()))
        });
        match ready {
            Ok(()) => return Ok((child, port)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("s_server never started")))
}

/// A sixgate serving example.test with `app` AAAA ::1, enabled for the
/// proxy with `extra` enable flags, ::1/128 allowed as a backend.
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
        Sixgate::serve_with(cli, &["--proxy-tls", "127.0.0.1:0", "--proxy-allow-backend", "::1/128"])?;
    let addr = server.listening("proxy-tls").context("no `listening proxy-tls` line")?;
    Ok((server, addr))
}

/// The certificate chain `openssl s_client` sees, as PEM.
fn seen_certificate(proxy: SocketAddr, sni: Option<&str>) -> Result<String> {
    let mut cmd = Command::new(which("openssl")?);
    cmd.args(["s_client", "-connect", &proxy.to_string(), "-showcerts"]);
    match sni {
        Some(s) => cmd.args(["-servername", s]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::null()).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = text.find("-----BEGIN CERTIFICATE-----");
    let end = text.find("-----END CERTIFICATE-----");
    Ok(match (start, end) {
        (Some(s), Some(e)) => text[s..e + "-----END CERTIFICATE-----".len()].to_string(),
        _ => String::new(),
    })
}

#[test]
fn tls_is_routed_by_sni_to_the_backends_own_certificate() -> Result<()> {
    let dir = tempfile::tempdir()?;
    self_signed(dir.path(), HOST)?;
    let (_backend, port) = tls_backend(dir.path())?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-tls-port", &port.to_string()])?;
    // The certificate through the proxy is the backend's, byte for byte.
    let own = std::fs::read_to_string(dir.path().join("c.pem"))?;
    let seen = seen_certificate(proxy, Some(HOST))?;
    ensure!(!seen.is_empty() && own.trim() == seen.trim(), "certificate through the proxy differs:\n{seen}");
    // curl verifies it against that certificate and gets the page.
    let out = Command::new(which("curl")?)
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(dir.path().join("c.pem"))
        .args([
            "--resolve",
            &format!("{HOST}:{}:127.0.0.1", proxy.port()),
            &format!("https://{HOST}:{}/", proxy.port()),
        ])
        .output()?;
    ensure!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    ensure!(String::from_utf8_lossy(&out.stdout).contains("<HTML>"), "no page from the backend");
    // No SNI, or a name that is not enabled: closed, no certificate.
    ensure!(seen_certificate(proxy, None)?.is_empty(), "a connection without SNI was forwarded");
    ensure!(seen_certificate(proxy, Some("off.example.test"))?.is_empty(), "a disabled host was forwarded");
    ensure!(seen_certificate(proxy, Some("127.0.0.1"))?.is_empty(), "an IP literal was routed");
    // The metrics count what happened, by side.
    let (server, _) = (_server, ());
    let token = server.admin_token()?;
    let base = server.api_url().context("no api url")?;
    let auth = format!("Bearer {token}");
    let m = sixgate_e2e::http::request(
        "GET",
        &format!("{base}/metrics"),
        &[("Authorization", &auth)],
        None,
        Duration::from_secs(10),
    )?;
    ensure!(m.status == 200, "metrics: {} {}", m.status, m.body);
    let value = |line: &str| -> u64 {
        m.body
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    ensure!(value("sixgate_proxy_forwarded_total") >= 2, "{}", m.body);
    ensure!(value("sixgate_proxy_errors_total{side=\"client\"}") >= 2, "no SNI and IP literal: {}", m.body);
    ensure!(value("sixgate_proxy_errors_total{side=\"route\"}") >= 1, "disabled host: {}", m.body);
    let anon =
        sixgate_e2e::http::request("GET", &format!("{base}/metrics"), &[], None, Duration::from_secs(10))?;
    ensure!(anon.status == 401, "metrics without a token: {}", anon.status);
    Ok(())
}

/// A backend that records what arrives first, for checking the PROXY
/// header; it closes after reading.
fn recording_backend() -> Result<(TcpListener, u16)> {
    let l = TcpListener::bind("[::1]:0")?;
    let port = l.local_addr()?.port();
    Ok((l, port))
}

fn first_bytes(l: &TcpListener) -> Result<Vec<u8>> {
    l.set_nonblocking(false)?;
    let (mut s, _) = l.accept()?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Read until the ClientHello's record header has come after the PROXY header.
    while Instant::now() < deadline && !got.windows(2).any(|w| w == [0x16, 0x03]) {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// Starts a TLS handshake towards the proxy (the answer is not awaited).
fn hello(proxy: SocketAddr) -> Result<ChildGuard> {
    let mut cmd = Command::new(which("openssl")?);
    cmd.args(["s_client", "-connect", &proxy.to_string(), "-servername", HOST])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    ChildGuard::spawn("openssl-s_client", &mut cmd)
}

#[test]
fn proxy_protocol_v1_and_v2_carry_the_ipv4_client_address() -> Result<()> {
    for mode in ["v1", "v2"] {
        let dir = tempfile::tempdir()?;
        let (backend, port) = recording_backend()?;
        let (_server, proxy) =
            proxy(dir.path(), &["--proxy-protocol", mode, "--backend-tls-port", &port.to_string()])?;
        let _client = hello(proxy)?;
        let got = first_bytes(&backend)?;
        match mode {
            "v1" => {
                let line_end = got.windows(2).position(|w| w == b"\r\n").context("no CRLF")?;
                let line = std::str::from_utf8(&got[..line_end])?;
                let words: Vec<&str> = line.split(' ').collect();
                // The client is IPv4 (127.0.0.1); both addresses of one family.
                ensure!(words.len() == 6 && words[0] == "PROXY" && words[1] == "TCP4", "v1 line: {line:?}");
                ensure!(words[2] == "127.0.0.1" && words[3] == "127.0.0.1", "v1 addresses: {line:?}");
                ensure!(words[5] == proxy.port().to_string(), "v1 destination port: {line:?}");
                ensure!(got.get(line_end + 2) == Some(&0x16), "the ClientHello must follow the PROXY line");
            }
            _ => {
                const SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
                ensure!(got.starts_with(SIG), "no v2 signature: {:?}", &got[..got.len().min(16)]);
                ensure!(
                    got[12] == 0x21 && got[13] == 0x11,
                    "v2 command/family: {:02x} {:02x}",
                    got[12],
                    got[13]
                );
                let len = u16::from_be_bytes([got[14], got[15]]) as usize;
                ensure!(len >= 12 && got[16..20] == [127, 0, 0, 1], "v2 source address");
                ensure!(got.get(16 + len) == Some(&0x16), "the ClientHello must follow the v2 header");
            }
        }
    }
    Ok(())
}

#[test]
fn slow_and_oversized_client_hellos_are_closed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (backend, port) = recording_backend()?;
    backend.set_nonblocking(true)?;
    let (_server, proxy) = proxy(dir.path(), &["--backend-tls-port", &port.to_string()])?;
    // A handshake announcing 20 KiB: closed at once.
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x50, 0x00])?;
    let mut b = [0u8; 16];
    ensure!(matches!(s.read(&mut b), Ok(0)), "a 20 KiB ClientHello was not closed");
    // One byte at a time: closed by the deadline, before the hello is whole.
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let started = Instant::now();
    let dribble = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    let mut closed = false;
    for byte in dribble.iter().cycle().take(600) {
        if s.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        match s.read(&mut b) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => bail!("the proxy answered a dribbled ClientHello"),
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    ensure!(closed, "a dribbled ClientHello was never closed");
    ensure!(started.elapsed() < Duration::from_secs(30), "closed too late: {:?}", started.elapsed());
    ensure!(backend.accept().is_err(), "the backend was contacted");
    Ok(())
}

/// Backends outside the allowed prefixes, and special ranges without an
/// explicit exception, are never connected to.
#[test]
fn backends_outside_the_prefixes_or_in_special_ranges_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    self_signed(dir.path(), HOST)?;
    let (_backend, port) = tls_backend(dir.path())?;
    let zone = dir.path().join("example.test.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n\
         outside AAAA 2a02:db8::1\nlocal AAAA ::1\nlink AAAA fe80::1\n",
    )?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", zone))?;
    cli.run(&["proxy", "addresses", "set"], &["198.51.100.7"])?.ok()?;
    for h in ["outside", "local", "link"] {
        cli.run(
            &["proxy", "enable"],
            &[&format!("{h}.example.test"), "--backend-tls-port", &port.to_string()],
        )?
        .ok()?;
    }
    // A wide customer prefix: ::1 and fe80::/10 stay closed without being named.
    let server = Sixgate::serve_with(cli, &["--proxy-tls", "127.0.0.1:0", "--proxy-allow-backend", "::/0"])?;
    let proxy: SocketAddr = server.listening("proxy-tls").context("no `listening proxy-tls` line")?;
    for h in ["local", "link"] {
        ensure!(seen_certificate(proxy, Some(&format!("{h}.example.test")))?.is_empty(), "{h}: forwarded");
    }
    // Refused by the route policy, not by a failed connect.
    ensure!(errors(&server, "route")? >= 2 && errors(&server, "backend")? == 0, "not refused by policy");
    drop(server);
    // Only 2a01:4f8::/32 allowed: 2a02:db8::1 is outside it.
    let cli = Cli::new(dir.path().join("data"))?;
    let server =
        Sixgate::serve_with(cli, &["--proxy-tls", "127.0.0.1:0", "--proxy-allow-backend", "2a01:4f8::/32"])?;
    let proxy: SocketAddr = server.listening("proxy-tls").context("no `listening proxy-tls` line")?;
    ensure!(
        seen_certificate(proxy, Some("outside.example.test"))?.is_empty(),
        "outside the prefixes: forwarded"
    );
    ensure!(
        seen_certificate(proxy, Some("local.example.test"))?.is_empty(),
        "::1 forwarded without the exception"
    );
    ensure!(errors(&server, "route")? >= 2 && errors(&server, "backend")? == 0, "not refused by policy");
    Ok(())
}

/// A proxy error counter from the server's metrics.
fn errors(server: &Sixgate, side: &str) -> Result<u64> {
    let token = server.cli().run(&["token", "create"], &[])?.ok()?.stdout.trim().to_string();
    let base = server.api_url().context("no api url")?;
    let auth = format!("Bearer {token}");
    let m = sixgate_e2e::http::request(
        "GET",
        &format!("{base}/metrics"),
        &[("Authorization", &auth)],
        None,
        Duration::from_secs(10),
    )?;
    let key = format!("sixgate_proxy_errors_total{{side=\"{side}\"}} ");
    m.body
        .lines()
        .find_map(|l| l.strip_prefix(&key)?.parse().ok())
        .with_context(|| format!("no {key} in metrics:\n{}", m.body))
}

/// Regression: after the backend closed, the tunnel half-closed the client
/// side and then read from the client for ever: a client that neither
/// sends nor closes kept two descriptors open. Once one side has closed,
/// the other has `idle_timeout` to follow.
#[test]
fn a_closed_backend_left_the_client_side_of_the_tunnel_open() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = Backend::start(Behaviour::CloseAfterRead)?;
    let mut lab = ProxyLab::start(dir.path(), &[Host::tls("app", backend.port())], "idle_timeout = 1")?;
    let pid = lab.server.process().id();
    let mut s = TcpStream::connect(lab.tls)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let client = s.local_addr()?;
    let to_backend = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, backend.port()));
    // Only this tunnel's two sockets count: the server opens and closes
    // others (metrics scrapes, the store) at any time.
    let held = || -> Result<Vec<TcpEntry>> {
        let owned = socket_inodes(pid)?;
        Ok(tcp_sockets()?
            .into_iter()
            .filter(|e| (e.local == lab.tls && e.remote == client) || e.remote == to_backend)
            .filter(|e| owned.contains(&e.inode))
            .collect())
    };
    s.write_all(&client_hello(HOST))?;
    // The backend's close reaches the client as the end of the stream.
    let mut b = [0u8; 16];
    ensure!(matches!(s.read(&mut b), Ok(0)), "the backend's close did not reach the client");
    // The client stays, silent and open; the proxy lets go of both sockets
    // (the idle-timeout count below says which deadline did it).
    wait_until("the proxy to close the tunnel", Duration::from_secs(30), || {
        Ok(held()?.is_empty().then_some(()))
    })?;
    let m = lab.metrics()?;
    ensure!(m.timeouts("proxy_tls", "idle") == 1 && m.open("proxy_tls") == 0, "{}", m.0);
    drop(s);
    Ok(())
}

/// Regression: no TCP keepalive on either socket of a tunnel, so a peer that
/// vanished without a FIN or RST was never noticed.
#[test]
fn tunnel_sockets_had_no_tcp_keepalive() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = Backend::start(Behaviour::Echo)?;
    let lab = ProxyLab::start(dir.path(), &[Host::tls("app", backend.port())], "")?;
    let mut s = TcpStream::connect(lab.tls)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let hello = client_hello(HOST);
    s.write_all(&hello)?;
    let mut echoed = vec![0; hello.len()];
    s.read_exact(&mut echoed)?;
    ensure!(echoed == hello, "no tunnel");
    let client = s.local_addr()?;
    let to_backend = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, backend.port()));
    let sockets = tcp_sockets()?;
    let front =
        sockets.iter().find(|e| e.local == lab.tls && e.remote == client).context("no client socket")?;
    let back =
        sockets.iter().find(|e| e.remote == to_backend && e.state == 1).context("no backend socket")?;
    ensure!(
        front.timer == 2 && back.timer == 2,
        "keepalive timers: client side {front:?}, backend side {back:?}"
    );
    Ok(())
}

/// Regression: the ClientHello had a fixed 5 s, whatever
/// `handshake_timeout` said, and a timeout was not counted.
#[test]
fn the_client_hello_deadline_ignored_handshake_timeout() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = Backend::start(Behaviour::Echo)?;
    let lab = ProxyLab::start(dir.path(), &[Host::tls("app", backend.port())], "handshake_timeout = 1")?;
    let hello = client_hello(HOST);
    let mut s = TcpStream::connect(lab.tls)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(&hello[..hello.len() / 2])?;
    let mut b = [0u8; 16];
    ensure!(matches!(s.read(&mut b), Ok(0)), "half a ClientHello was not closed");
    let m = lab.metrics()?;
    ensure!(m.timeouts("proxy_tls", "handshake") == 1, "{}", m.0);
    ensure!(backend.accepted() == 0, "the backend was contacted");
    Ok(())
}
