//! RFC 2136 UPDATE with TSIG, driven by Knot's `knsupdate` against a real
//! `sixgate serve`: keys made with `sixgate tsig create`, answers checked
//! over DNS, refusals checked to change nothing.

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sixgate_e2e::knot::which;
use sixgate_e2e::{Cli, QuerySpec, Response, Sixgate, ZoneFile, udp_exchange};

const EXAMPLE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster 1 3600 900 604800 300\n\
@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn start(dir: &Path, config: Option<&str>) -> Result<Sixgate> {
    let path = dir.join("example.test.zone");
    std::fs::write(&path, EXAMPLE)?;
    let data = dir.join("data");
    let cli = Cli::new(&data)?;
    cli.import(&ZoneFile::new("example.test.", path))?;
    match config {
        Some(text) => {
            let file = dir.join("sixgate.toml");
            std::fs::write(&file, text)?;
            Sixgate::serve_with(cli, &["--config", &file.display().to_string()])
        }
        None => Sixgate::serve(cli),
    }
}

fn key(server: &Sixgate, name: &str, extra: &[&str]) -> Result<String> {
    let mut args = vec![name, "--zone", "example.test"];
    args.extend_from_slice(extra);
    Ok(server.cli().run(&["tsig", "create"], &args)?.ok()?.stdout.trim().to_string())
}

/// Runs knsupdate with `script` (server and zone lines are added); returns
/// its combined output.
fn knsupdate(server: SocketAddr, key: Option<&str>, tcp: bool, script: &str) -> Result<String> {
    let mut cmd = Command::new(which("knsupdate")?);
    if let Some(k) = key {
        cmd.args(["-y", k]);
    }
    if tcp {
        cmd.arg("-v");
    }
    cmd.args(["-t", "5", "-r", "1"]);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let full =
        format!("server {} {}\nzone example.test.\n{script}\nsend\nanswer\n", server.ip(), server.port());
    child.stdin.take().context("stdin")?.write_all(full.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn rdatas(server: SocketAddr, name: &str, rtype: u16) -> Result<Vec<Vec<u8>>> {
    let q = QuerySpec::parse(name, rtype)?.with_id(0x1234).encode()?;
    let bytes = udp_exchange(server, &q, Duration::from_secs(2), 3)?.context("no answer")?;
    Ok(Response::parse(&bytes)?.answers_of(rtype).map(|rr| rr.rdata.clone()).collect())
}

#[test]
fn signed_updates_are_applied_over_udp_and_tcp() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start(dir.path(), None)?;
    let dns = server.udp_addr();
    for (alg, tcp) in [("hmac-sha256", false), ("hmac-sha512", true)] {
        let k = key(&server, &format!("k-{alg}"), &["--algorithm", alg])?;
        let name = format!("{alg}.example.test.");
        let out = knsupdate(dns, Some(&k), tcp, &format!("update add {name} 60 A 192.0.2.99"))?;
        ensure!(out.contains("status: NOERROR"), "{alg}: {out}");
        // knsupdate verified our signed answer; DNS serves the change now.
        ensure!(rdatas(dns, &name, 1)? == vec![vec![192, 0, 2, 99]], "{alg}: not served");
        // Prerequisites: "name is in use" holds, "RRset does not exist" fails.
        let out = knsupdate(
            dns,
            Some(&k),
            tcp,
            &format!("prereq nxrrset {name} A\nupdate add {name} 60 A 192.0.2.100"),
        )?;
        ensure!(out.contains("YXRRSET"), "{alg}: {out}");
        ensure!(rdatas(dns, &name, 1)?.len() == 1, "{alg}: failed prerequisite changed data");
        let out = knsupdate(dns, Some(&k), tcp, &format!("prereq yxdomain {name}\nupdate delete {name} A"))?;
        ensure!(out.contains("status: NOERROR"), "{alg}: {out}");
        ensure!(rdatas(dns, &name, 1)?.is_empty(), "{alg}: delete not served");
    }
    Ok(())
}

#[test]
fn acme_only_keys_change_only_acme_challenge_txt() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start(dir.path(), None)?;
    let dns = server.udp_addr();
    let k = key(&server, "acme", &["--acme-only"])?;
    let out = knsupdate(dns, Some(&k), false, "update add _acme-challenge.example.test. 60 TXT token-one")?;
    ensure!(out.contains("status: NOERROR"), "{out}");
    ensure!(rdatas(dns, "_acme-challenge.example.test.", 16)?.len() == 1);
    for script in [
        "update add www.example.test. 60 A 192.0.2.66",
        "update delete www.example.test. A",
        "update add _acme-challenge.example.test. 60 A 192.0.2.66",
        "update add example.test. 60 MX 10 evil.example.",
        // One allowed and one forbidden change: all or nothing.
        "update add _acme-challenge.example.test. 60 TXT two\nupdate add www.example.test. 60 A 192.0.2.66",
    ] {
        let out = knsupdate(dns, Some(&k), false, script)?;
        ensure!(out.contains("REFUSED"), "{script}: {out}");
    }
    ensure!(rdatas(dns, "www.example.test.", 1)? == vec![vec![192, 0, 2, 1]], "www changed");
    ensure!(rdatas(dns, "_acme-challenge.example.test.", 16)?.len() == 1, "refused batch half applied");
    Ok(())
}

#[test]
fn bad_unsigned_foreign_and_md5_updates_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start(dir.path(), None)?;
    let dns = server.udp_addr();
    let k = key(&server, "k1", &[])?;
    let (alg_name, secret) = k.rsplit_once(':').context("key form")?;
    // Same length, one character changed: a valid key, the wrong secret.
    let first = if secret.starts_with('A') { "B" } else { "A" };
    let forged = format!("{alg_name}:{first}{}", &secret[1..]);
    let out = knsupdate(dns, Some(&forged), false, "update add bad.example.test. 60 A 192.0.2.66")?;
    ensure!(out.contains("BADSIG") || out.contains("NOTAUTH"), "forged: {out}");
    let out = knsupdate(
        dns,
        Some("hmac-sha256:nokey:c2VjcmV0c2VjcmV0c2VjcmV0"),
        false,
        "update add bad.example.test. 60 A 192.0.2.66",
    )?;
    ensure!(out.contains("BADKEY") || out.contains("NOTAUTH"), "unknown key: {out}");
    let out = knsupdate(dns, None, false, "update add bad.example.test. 60 A 192.0.2.66")?;
    ensure!(out.contains("REFUSED"), "unsigned: {out}");
    // A zone we do not serve.
    let mut cmd = Command::new(which("knsupdate")?);
    let mut child = cmd
        .args(["-y", &k, "-t", "5", "-r", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let script = format!(
        "server {} {}\nzone nothere.test.\nupdate add x.nothere.test. 60 A 192.0.2.1\nsend\nanswer\n",
        dns.ip(),
        dns.port()
    );
    child.stdin.take().context("stdin")?.write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(text.contains("NOTAUTH"), "foreign zone: {text}");
    // hmac-md5 keys can be made but are refused unless enabled.
    let md5 = key(&server, "md5", &["--algorithm", "hmac-md5"])?;
    let out = knsupdate(dns, Some(&md5), false, "update add md5.example.test. 60 A 192.0.2.66")?;
    ensure!(out.contains("BADKEY") || out.contains("NOTAUTH"), "md5 off: {out}");
    ensure!(
        rdatas(dns, "bad.example.test.", 1)?.is_empty() && rdatas(dns, "md5.example.test.", 1)?.is_empty()
    );
    Ok(())
}

#[test]
fn hmac_md5_works_when_enabled() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start(dir.path(), Some("[update]\nhmac_md5 = true\n"))?;
    let md5 = key(&server, "md5", &["--algorithm", "hmac-md5"])?;
    let out =
        knsupdate(server.udp_addr(), Some(&md5), false, "update add md5.example.test. 60 A 192.0.2.66")?;
    ensure!(out.contains("status: NOERROR"), "{out}");
    ensure!(rdatas(server.udp_addr(), "md5.example.test.", 1)?.len() == 1);
    Ok(())
}

/// A signed UPDATE captured from knsupdate and sent twice: the second copy
/// is a replay inside the fudge window and must be refused with BADTIME.
#[test]
fn a_replayed_update_is_refused_with_badtime() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start(dir.path(), None)?;
    let k = key(&server, "k1", &[])?;
    // Capture: knsupdate sends to our socket, which never answers.
    let trap = UdpSocket::bind("127.0.0.1:0")?;
    trap.set_read_timeout(Some(Duration::from_secs(10)))?;
    let trap_addr = trap.local_addr()?;
    let mut child = Command::new(which("knsupdate")?)
        .args(["-y", &k, "-t", "2", "-r", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let script = format!(
        "server {} {}\nzone example.test.\nupdate add replay.example.test. 60 A 192.0.2.42\nsend\n",
        trap_addr.ip(),
        trap_addr.port()
    );
    child.stdin.take().context("stdin")?.write_all(script.as_bytes())?;
    let mut buf = [0u8; 4096];
    let (n, _) = trap.recv_from(&mut buf).context("knsupdate sent nothing")?;
    let _ = child.kill();
    let _ = child.wait();
    let msg = &buf[..n];
    let first = udp_exchange(server.udp_addr(), msg, Duration::from_secs(5), 1)?.context("no answer")?;
    ensure!(first[3] & 0x0f == 0, "first copy: rcode {}", first[3] & 0x0f);
    ensure!(rdatas(server.udp_addr(), "replay.example.test.", 1)?.len() == 1);
    let second = udp_exchange(server.udp_addr(), msg, Duration::from_secs(5), 1)?.context("no answer")?;
    ensure!(second[3] & 0x0f == 9, "replay: rcode {} (want NOTAUTH)", second[3] & 0x0f);
    // The TSIG error (RFC 8945 §4.2) is BADTIME (18): the two octets
    // before the Other Len field, which is the last field (6 octets of
    // server time follow it).
    let tail = &second[second.len() - 12..];
    ensure!(u16::from_be_bytes([tail[2], tail[3]]) == 18, "replay: TSIG error is not BADTIME: {tail:?}");
    ensure!(u16::from_be_bytes([tail[4], tail[5]]) == 6, "BADTIME carries the server's time");
    Ok(())
}

/// ANAMEs arrive through RFC 2136 too (type 65401, generic rdata); an A
/// beside one is refused, and the refusal changes nothing.
#[test]
fn anames_can_be_added_by_update_and_guard_their_owner() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start(dir.path(), None)?;
    let dns = server.udp_addr();
    let k = key(&server, "k1", &[])?;
    // www.example.test. in wire form: 3 www 7 example 4 test 0 (18 octets).
    let target = "03777777076578616d706c650474657374 00".replace(' ', "");
    let out = knsupdate(
        dns,
        Some(&k),
        false,
        &format!(
            "update delete app.example.test. A\nupdate add app.example.test. 60 TYPE65401 \\# 18 {target}"
        ),
    )?;
    ensure!(out.contains("status: NOERROR"), "{out}");
    let aname = rdatas(dns, "app.example.test.", 65401)?;
    ensure!(aname.len() == 1 && aname[0].len() == 18, "TYPE65401 at app: {aname:?}");
    // The refresher resolves www.example.test. internally (an operator zone).
    sixgate_e2e::wait_until("app.example.test. A to be derived from www", Duration::from_secs(30), || {
        Ok((rdatas(dns, "app.example.test.", 1)? == vec![vec![192, 0, 2, 1]]).then_some(()))
    })?;
    let out = knsupdate(dns, Some(&k), false, "update add app.example.test. 60 A 192.0.2.66")?;
    ensure!(out.contains("REFUSED"), "A beside an ANAME: {out}");
    ensure!(
        rdatas(dns, "app.example.test.", 1)? == vec![vec![192, 0, 2, 1]],
        "refused UPDATE changed the addresses"
    );
    Ok(())
}
