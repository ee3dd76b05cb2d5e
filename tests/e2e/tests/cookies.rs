//! DNS cookies (RFC 7873, RFC 9018), NSID (RFC 5001) and `id.server` (RFC
//! 4892) against real clients: kdig, and BIND's `named` as a resolver that
//! sends cookies to the servers it asks.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::kdig::kdig;
use sixgate_e2e::metrics::Metrics;
use sixgate_e2e::process::{ChildGuard, require_program, wait_until};
use sixgate_e2e::{Cli, Sixgate};

const NSID: &str = "ns1.cookie-lab";
/// Shared by the sites of an anycast address; fixed here so that the test
/// can also check that the server cookie is RFC 9018's.
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

fn cookies(m: &Metrics, status: &str) -> u64 {
    m.value(&format!("sixgate_dns_cookies_total{{transport=\"udp\",status=\"{status}\"}}"))
}

/// A server on the demo zone with an NSID and a fixed cookie secret (and
/// `extra` config lines), and the temporary directory that holds it.
fn server(extra: &str) -> Result<(Sixgate, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sixgate.toml");
    std::fs::write(
        &config,
        format!("[dns]\nnsid = \"{NSID}\"\n[dns.cookies]\nsecret = \"{SECRET}\"\n{extra}"),
    )?;
    let cli = Cli::new(dir.path().join("data"))?;
    let sixgate = Sixgate::serve_with(cli, &["--config", &config.display().to_string()])?;
    Ok((sixgate, dir))
}

/// The COOKIE kdig printed, in hex.
fn printed_cookie(text: &str) -> Result<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(";; COOKIE:"))
        .map(|c| c.split_whitespace().next().unwrap_or("").to_ascii_lowercase())
        .with_context(|| format!("no COOKIE in\n{text}"))
}

#[test]
fn kdig_learns_a_server_cookie_and_presents_it() -> Result<()> {
    let (sixgate, _dir) = server("")?;
    let at = sixgate.udp_addr();
    let before = sixgate.metrics()?;
    let client = "0123456789abcdef";
    let first = kdig(at, &[&format!("+cookie={client}"), "www.demo.sixgate.test", "AAAA"])?;
    ensure!(first.status == "NOERROR" && first.data("AAAA") == ["2001:db8::80"], "{first}");
    let cookie = printed_cookie(&first.text)?;
    ensure!(cookie.len() == 48 && cookie.starts_with(client), "client and server cookie: {first}");
    ensure!(&cookie[16..18] == "01", "RFC 9018 version 1: {first}");

    // Presented again, it is valid: answered normally, and kdig (which
    // checks that the client cookie comes back) does not complain.
    let second = kdig(at, &[&format!("+cookie={cookie}"), "www.demo.sixgate.test", "A"])?;
    ensure!(second.status == "NOERROR" && second.data("A") == ["192.0.2.80"], "{second}");
    ensure!(printed_cookie(&second.text)?.starts_with(client), "{second}");
    // A server cookie of another secret is not.
    let forged = format!("{client}010000006b16dce2b524395a6c0fc6e9");
    let third = kdig(at, &[&format!("+cookie={forged}"), "www.demo.sixgate.test", "A"])?;
    ensure!(third.status == "NOERROR", "an invalid cookie still gets the answer: {third}");
    ensure!(printed_cookie(&third.text)? != forged, "a fresh cookie replaces it: {third}");

    let after = wait_until("the cookie counters", Duration::from_secs(10), || {
        let m = sixgate.metrics()?;
        Ok((cookies(&m, "invalid") > cookies(&before, "invalid")).then_some(m))
    })?;
    for (status, want) in [("client_only", 1), ("valid", 1), ("invalid", 1)] {
        let got = cookies(&after, status) - cookies(&before, status);
        ensure!(got == want, "{status}: {got} queries, not {want}\n{}", after.0);
    }
    Ok(())
}

#[test]
fn kdig_sees_the_nsid_and_id_server() -> Result<()> {
    let (sixgate, _dir) = server("")?;
    let at = sixgate.udp_addr();
    let d = kdig(at, &["+nsid", "www.demo.sixgate.test", "A"])?;
    let line = d.text.lines().find(|l| l.contains(";; NSID:")).with_context(|| format!("no NSID: {d}"))?;
    ensure!(line.contains(&format!("\"{NSID}\"")), "{d}");
    for name in ["id.server", "hostname.bind"] {
        let d = kdig(at, &["-c", "CH", name, "TXT"])?;
        ensure!(d.status == "NOERROR" && d.aa(), "{d}");
        let rr = d.answers("TXT");
        ensure!(rr.len() == 1 && rr[0].ttl == 0 && rr[0].data == format!("\"{NSID}\""), "{d}");
    }
    // Over TCP too; and other CH names stay refused.
    let d = kdig(sixgate.tcp_addr(), &["+tcp", "-c", "CH", "id.server", "TXT"])?;
    ensure!(d.data("TXT") == [format!("\"{NSID}\"")], "{d}");
    let d = kdig(at, &["-c", "CH", "version.bind", "TXT"])?;
    ensure!(d.status == "REFUSED", "{d}");
    Ok(())
}

#[test]
fn required_cookies_send_kdig_a_badcookie_it_recovers_from() -> Result<()> {
    let (sixgate, _dir) = server("require = true\n")?;
    let at = sixgate.udp_addr();
    // kdig repeats the query with the cookie BADCOOKIE gave it (+badcookie
    // is its default) and gets the answer; it prints both replies.
    let d = kdig(at, &["+cookie", "www.demo.sixgate.test", "A"])?;
    ensure!(d.status == "BADCOOKIE", "{d}");
    let retry = d.text.split(";; ->>HEADER<<-").nth(2).with_context(|| format!("no retry: {d}"))?;
    ensure!(retry.contains("status: NOERROR") && retry.contains("192.0.2.80"), "{d}");
    ensure!(printed_cookie(retry)? == printed_cookie(&d.text)?, "the learned cookie is kept: {d}");
    let m = wait_until("a BADCOOKIE and a valid cookie counted", Duration::from_secs(10), || {
        let m = sixgate.metrics()?;
        Ok((cookies(&m, "valid") >= 1).then_some(m))
    })?;
    ensure!(m.value("sixgate_dns_badcookie_total{transport=\"udp\"}") == 1, "{}", m.0);
    // Without the retry, the BADCOOKIE itself shows.
    let d = kdig(at, &["+cookie", "+nobadcookie", "www.demo.sixgate.test", "A"])?;
    ensure!(d.status == "BADCOOKIE" && d.answer.is_empty(), "{d}");
    // A client without cookies is answered as ever.
    let d = kdig(at, &["+nocookie", "www.demo.sixgate.test", "A"])?;
    ensure!(d.status == "NOERROR", "{d}");
    Ok(())
}

/// A private `named` resolving through sixgate: `send-cookie yes` and a
/// forward zone pointing at sixgate's loopback port.
struct Named {
    _child: ChildGuard,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Named {
    fn start(upstream: SocketAddr) -> Result<Named> {
        let named = require_program("named", "bind9")?;
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-named-").tempdir()?;
        let port = sixgate_e2e::knot::free_port_pair()?;
        let d = dir.path().display();
        let conf = dir.path().join("named.conf");
        std::fs::write(
            &conf,
            format!(
                r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion yes;
    allow-query {{ 127.0.0.1; }};
    dnssec-validation no;
    send-cookie yes;
    qname-minimization off;
}};
controls {{ }};
server {} {{ send-cookie yes; edns yes; }};
zone "demo.sixgate.test" {{
    type forward;
    forward only;
    forwarders {{ {} port {}; }};
}};
"#,
                upstream.ip(),
                upstream.ip(),
                upstream.port()
            ),
        )?;
        let mut command = Command::new(named);
        command.args(["-g", "-c"]).arg(&conf).args(["-n", "1"]);
        let mut child = ChildGuard::spawn("named", &mut command)?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        // Ready once it answers anything (a refusal for a name outside the
        // forward zone is an answer too).
        wait_until("named to answer", Duration::from_secs(30), || {
            if !child.is_running() {
                bail!("named exited:\n{}", child.stderr_tail(30));
            }
            Ok(kdig(addr, &["+norecurse", "+time=1", "+retry=0", "version.bind", "-c", "CH", "TXT"]).ok())
        })?;
        Ok(Named { _child: child, addr, _dir: dir })
    }
}

#[test]
fn named_as_a_resolver_sends_a_client_cookie_then_the_server_cookie() -> Result<()> {
    let (sixgate, _dir) = server("")?;
    let named = Named::start(sixgate.udp_addr())?;
    let before = sixgate.metrics()?;
    // Two names, so that the second is not answered from named's cache.
    let first = kdig(named.addr, &["www.demo.sixgate.test", "A"])?;
    ensure!(first.data("A") == ["192.0.2.80"], "{first}");
    let m = sixgate.metrics()?;
    ensure!(
        cookies(&m, "client_only") > cookies(&before, "client_only"),
        "no client cookie from named\n{}",
        m.0
    );
    let second = kdig(named.addr, &["mail.demo.sixgate.test", "AAAA"])?;
    ensure!(second.data("AAAA") == ["2001:db8::25"], "{second}");
    let m = wait_until("named's valid server cookie counted", Duration::from_secs(10), || {
        let m = sixgate.metrics()?;
        Ok((cookies(&m, "valid") > cookies(&before, "valid")).then_some(m))
    })?;
    ensure!(cookies(&m, "invalid") == cookies(&before, "invalid"), "named sent a bad cookie\n{}", m.0);
    Ok(())
}
