//! ACME DNS-01 end to end: real clients obtain a certificate for a zone's
//! apex and its wildcard from a real CA, through sixgate.
//!
//! Each test hosts `example.test` on a private server, starts a private
//! pebble whose only DNS server is that server, and runs one client with one
//! way of publishing the challenge:
//!
//! | client  | publishes through                         | credentials            |
//! |---------|-------------------------------------------|------------------------|
//! | lego    | `httpreq`: sixgate's `/v1/acme/httpreq`   | ACME-only zone token   |
//! | lego    | `rfc2136`: DNS UPDATE + TSIG (UDP)        | ACME-only TSIG key     |
//! | lego    | `pdns`: sixgate's PowerDNS-compatible API | ACME-only zone token   |
//! | certbot | `dns-rfc2136`: DNS UPDATE + TSIG (TCP)    | ACME-only TSIG key     |
//!
//! Pebble validates for real: both challenges (apex and wildcard share the
//! owner `_acme-challenge.example.test.`) must be served by the server when
//! pebble asks, or there is no certificate. Each test then checks the
//! certificate names exactly the two domains and chains to this pebble's
//! root, that pebble logged a validation per domain, that the client's
//! cleanup left no challenge TXT behind, and that the rest of the zone is
//! untouched.
//!
//! The `powerdns_*` tests run the same clients against a real PowerDNS, for
//! the flows PowerDNS has (all but httpreq): they prove the harness, so a
//! failure of the sixgate test next to a passing PowerDNS one is sixgate's.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sixgate_e2e::acme::{self, Issued, LegoDns, TsigKey};
use sixgate_e2e::normalize::Response;
use sixgate_e2e::{Cli, Pebble, PowerDns, QuerySpec, Sixgate, ZoneFile, udp_exchange, wait_until};

const ZONE: &str = "example.test";

/// The order: apex and wildcard, the pair that needs two TXT records at one
/// owner name.
const DOMAINS: [&str; 2] = ["example.test", "*.example.test"];

const KEY_NAME: &str = "acme-key";

/// What lego's pdns provider logs when its second cleanup finds the RRset
/// already deleted by the first (it deletes whole RRsets); lego 4.9.1 does
/// that against PowerDNS itself, so it is not held against the server.
const LEGO_PDNS_SECOND_CLEANUP: &str = "pdns: no existing record found";

fn write_zone(dir: &Path) -> Result<ZoneFile> {
    // ns1 is on loopback so that a server that sends NOTIFY to the NS names
    // (PowerDNS would, as a primary) never sends anything off the machine.
    let path = dir.join("example.test.zone");
    fs::write(
        &path,
        "$ORIGIN example.test.\n\
         $TTL 300\n\
         @\tSOA\tns1 hostmaster 1 3600 900 604800 60\n\
         @\tNS\tns1\n\
         ns1\tA\t127.0.0.1\n\
         www\tA\t192.0.2.80\n",
    )?;
    Ok(ZoneFile::new(ZONE, path))
}

/// `example.test` on a private sixgate with its HTTP API, credentials made
/// with the CLI before the server starts.
struct HostedBySixgate {
    server: Sixgate,
    api: String,
    _data: tempfile::TempDir,
}

impl HostedBySixgate {
    fn start<C>(credentials: impl FnOnce(&Cli) -> Result<C>) -> Result<(Self, C)> {
        let data = tempfile::Builder::new().prefix("sixgate-e2e-acme-").tempdir()?;
        let cli = Cli::new(data.path())?;
        cli.import(&write_zone(data.path())?)?;
        let made = credentials(&cli)?;
        let server = Sixgate::serve(cli)?;
        let api = server.api_url().with_context(|| {
            format!("`serve --api` printed no `listening api URL` line: {:?}", server.stdout_lines())
        })?;
        ensure!(
            server.udp_addr() == server.tcp_addr(),
            "UDP {} and TCP {} differ; certbot has one port for both",
            server.udp_addr(),
            server.tcp_addr()
        );
        Ok((Self { server, api, _data: data }, made))
    }

    fn dns(&self) -> SocketAddr {
        self.server.udp_addr()
    }
}

/// `sixgate token create --zone example.test --acme-only`.
fn acme_token(cli: &Cli) -> Result<String> {
    let output = cli.run(&["token", "create"], &["--zone", ZONE, "--acme-only"])?.ok()?;
    let token = output.stdout.trim().to_owned();
    ensure!(!token.is_empty() && !token.contains(char::is_whitespace), "not one token:\n{output}");
    Ok(token)
}

/// `sixgate tsig create acme-key --zone example.test --acme-only`.
fn acme_tsig_key(cli: &Cli) -> Result<TsigKey> {
    let output = cli
        .run(&["tsig", "create"], &[KEY_NAME, "--zone", ZONE, "--acme-only", "--algorithm", "hmac-sha256"])?
        .ok()?;
    let key = TsigKey::parse(&output.stdout).with_context(|| format!("{output}"))?;
    ensure!(key.name == KEY_NAME, "key printed as {:?}", key.name);
    Ok(key)
}

/// `example.test` on a private PowerDNS with a TSIG key for UPDATE.
fn hosted_by_powerdns() -> Result<(PowerDns, tempfile::TempDir)> {
    let files = tempfile::tempdir()?;
    let powerdns = PowerDns::start(&write_zone(files.path())?, KEY_NAME)?;
    Ok((powerdns, files))
}

/// Everything a successful flow must leave behind.
fn check_outcome(issued: &Issued, pebble: &Pebble, dns: SocketAddr) -> Result<()> {
    let mut names = acme::certificate_names(&issued.certificate)?;
    names.sort();
    let mut expected = DOMAINS.map(str::to_owned).to_vec();
    expected.sort();
    ensure!(names == expected, "certificate {} names {names:?}", issued.certificate.display());

    let root = tempfile::tempdir()?;
    let root = root.path().join("pebble-root.pem");
    pebble.write_issuing_root(&root)?;
    acme::verify_chain(issued, &root)?;

    // Authorizations are never reused (PEBBLE_AUTHZREUSE=0) and this pebble
    // saw no other order: exactly one DNS validation per domain.
    let validated = pebble.validated_challenges();
    ensure!(
        validated == DOMAINS.len(),
        "pebble logged {validated} validations for {} domains; log {}",
        DOMAINS.len(),
        pebble.log_path().display()
    );

    acme::wait_for_challenges_gone(dns, ZONE)?;
    check_zone_intact(dns)
}

/// The records that were there before the run still are.
fn check_zone_intact(dns: SocketAddr) -> Result<()> {
    let query = QuerySpec::parse("www.example.test.", 1)?.with_id(0x0aaa).encode()?;
    wait_until("www.example.test A to be answered", acme::PROPAGATION, || {
        let Some(bytes) = udp_exchange(dns, &query, Duration::from_secs(1), 2)? else {
            return Ok(None);
        };
        let response = Response::parse(&bytes)?;
        let answers: Vec<&[u8]> = response.answers_of(1).map(|rr| rr.rdata.as_slice()).collect();
        ensure!(
            response.rcode() == 0 && response.aa() && answers == [[192, 0, 2, 80]],
            "www.example.test A after the run: rcode {} aa {} answers {answers:?}",
            response.rcode(),
            response.aa()
        );
        Ok(Some(()))
    })
}

/// lego logs cleanup failures as warnings and still exits 0.
fn check_clean_cleanup(issued: &Issued, tolerated: Option<&str>) -> Result<()> {
    let log = fs::read_to_string(&issued.log)?;
    let failures: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("cleaning up failed"))
        .filter(|line| tolerated.is_none_or(|t| !line.contains(t)))
        .collect();
    ensure!(failures.is_empty(), "cleanup failed ({}):\n{}", issued.log.display(), failures.join("\n"));
    Ok(())
}

#[test]
fn lego_httpreq_gets_apex_and_wildcard_certificate_from_sixgate() -> Result<()> {
    let (hosted, token) = HostedBySixgate::start(acme_token)?;
    let pebble = Pebble::start(hosted.dns())?;
    let dns = LegoDns::HttpReq {
        endpoint: format!("{}/v1/acme/httpreq", hosted.api),
        username: "acme".into(),
        password: token,
    };
    let issued = acme::lego(&pebble, hosted.dns(), &dns, &DOMAINS)?;
    check_clean_cleanup(&issued, None)?;
    check_outcome(&issued, &pebble, hosted.dns())
}

#[test]
fn lego_rfc2136_with_tsig_gets_apex_and_wildcard_certificate_from_sixgate() -> Result<()> {
    let (hosted, key) = HostedBySixgate::start(acme_tsig_key)?;
    let pebble = Pebble::start(hosted.dns())?;
    let dns = LegoDns::Rfc2136 { nameserver: hosted.dns(), key };
    let issued = acme::lego(&pebble, hosted.dns(), &dns, &DOMAINS)?;
    check_clean_cleanup(&issued, None)?;
    check_outcome(&issued, &pebble, hosted.dns())
}

#[test]
fn lego_pdns_api_gets_apex_and_wildcard_certificate_from_sixgate() -> Result<()> {
    let (hosted, token) = HostedBySixgate::start(acme_token)?;
    let pebble = Pebble::start(hosted.dns())?;
    let dns = LegoDns::Pdns { api_url: hosted.api.clone(), api_key: token };
    let issued = acme::lego(&pebble, hosted.dns(), &dns, &DOMAINS)?;
    check_clean_cleanup(&issued, Some(LEGO_PDNS_SECOND_CLEANUP))?;
    check_outcome(&issued, &pebble, hosted.dns())
}

#[test]
fn certbot_rfc2136_gets_apex_and_wildcard_certificate_from_sixgate() -> Result<()> {
    let (hosted, key) = HostedBySixgate::start(acme_tsig_key)?;
    let pebble = Pebble::start(hosted.dns())?;
    let issued = acme::certbot_rfc2136(&pebble, hosted.dns(), &key, &DOMAINS)?;
    check_outcome(&issued, &pebble, hosted.dns())
}

#[test]
fn powerdns_reference_lego_rfc2136_with_tsig() -> Result<()> {
    let (powerdns, _files) = hosted_by_powerdns()?;
    let pebble = Pebble::start(powerdns.dns_addr())?;
    let dns = LegoDns::Rfc2136 { nameserver: powerdns.dns_addr(), key: powerdns.tsig_key().clone() };
    let issued = acme::lego(&pebble, powerdns.dns_addr(), &dns, &DOMAINS)?;
    check_clean_cleanup(&issued, None)?;
    check_outcome(&issued, &pebble, powerdns.dns_addr())
}

#[test]
fn powerdns_reference_lego_pdns_api() -> Result<()> {
    let (powerdns, _files) = hosted_by_powerdns()?;
    let pebble = Pebble::start(powerdns.dns_addr())?;
    let dns =
        LegoDns::Pdns { api_url: powerdns.api_url().to_owned(), api_key: powerdns.api_key().to_owned() };
    let issued = acme::lego(&pebble, powerdns.dns_addr(), &dns, &DOMAINS)?;
    check_clean_cleanup(&issued, Some(LEGO_PDNS_SECOND_CLEANUP))?;
    check_outcome(&issued, &pebble, powerdns.dns_addr())
}

#[test]
fn powerdns_reference_certbot_rfc2136() -> Result<()> {
    let (powerdns, _files) = hosted_by_powerdns()?;
    let pebble = Pebble::start(powerdns.dns_addr())?;
    let issued = acme::certbot_rfc2136(&pebble, powerdns.dns_addr(), powerdns.tsig_key(), &DOMAINS)?;
    check_outcome(&issued, &pebble, powerdns.dns_addr())
}

/// A key with the right name and algorithm but another secret.
fn forged(key: &TsigKey) -> TsigKey {
    // 32 zero bytes, base64: a well-formed secret that is not the key's.
    let secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned();
    assert_ne!(secret, key.secret);
    TsigKey { secret, ..key.clone() }
}

/// lego with a forged TSIG secret must get nothing, and must leave nothing.
fn check_forged_update_is_refused(result: Result<Issued>, dns: SocketAddr) -> Result<()> {
    let error = match result {
        Ok(issued) => anyhow::bail!("a forged TSIG key got a certificate: {}", issued.certificate.display()),
        Err(error) => format!("{error:#}"),
    };
    ensure!(error.contains("rfc2136: failed to insert"), "lego failed, but not at the UPDATE:\n{error}");
    let left = acme::served_txt(dns, "_acme-challenge.example.test.")?.context("no answer")?;
    ensure!(left.is_empty(), "the forged UPDATE left TXT records: {left:?}");
    check_zone_intact(dns)
}

#[test]
fn lego_rfc2136_with_a_forged_tsig_secret_gets_nothing_from_sixgate() -> Result<()> {
    let (hosted, key) = HostedBySixgate::start(acme_tsig_key)?;
    let pebble = Pebble::start(hosted.dns())?;
    let dns = LegoDns::Rfc2136 { nameserver: hosted.dns(), key: forged(&key) };
    check_forged_update_is_refused(acme::lego(&pebble, hosted.dns(), &dns, &DOMAINS), hosted.dns())
}

#[test]
fn powerdns_reference_lego_rfc2136_with_a_forged_tsig_secret_gets_nothing() -> Result<()> {
    let (powerdns, _files) = hosted_by_powerdns()?;
    let pebble = Pebble::start(powerdns.dns_addr())?;
    let dns = LegoDns::Rfc2136 { nameserver: powerdns.dns_addr(), key: forged(powerdns.tsig_key()) };
    check_forged_update_is_refused(
        acme::lego(&pebble, powerdns.dns_addr(), &dns, &DOMAINS),
        powerdns.dns_addr(),
    )
}
