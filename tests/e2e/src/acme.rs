//! Real ACME clients, lego and certbot, obtaining certificates from a
//! [`Pebble`] with DNS-01 challenges published through the server under test.
//!
//! Each run gets its own temporary state directory (account, keys,
//! certificates), its provider settings through the environment or a
//! credentials file exactly as an operator would write them, and trusts
//! pebble's HTTPS through `LEGO_CA_CERTIFICATES` / `REQUESTS_CA_BUNDLE`.
//! Output goes to a log under `target/e2e-logs/` (certbot's own debug log
//! too), quoted in the error when a run fails.
//!
//! Every wait that lego or certbot would otherwise do on the real Internet
//! scale is shrunk to about a second: the propagation check is disabled
//! (`--dns.disable-cp`; it would query the zone's NS names on port 53),
//! polling intervals are 1 s, lego's rfc2136 sequence interval (60 s by
//! default between the apex and the wildcard challenge, which share one
//! owner name) is 1 s, and certbot's propagation sleep is 1 s. Nothing here
//! sleeps itself; a client that hangs is killed at [`CLIENT_DEADLINE`].
//!
//! [`certificate_names`] and [`verify_chain`] check the result with the
//! `openssl` command line: the names really in the certificate, and a chain
//! up to the root of the pebble process that issued it.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::client::udp_exchange;
use crate::normalize::Response;
use crate::pebble::Pebble;
use crate::process::{ChildGuard, new_log_path, require_program, wait_until};
use crate::query::QuerySpec;

/// How long one lego or certbot run may take, account registration and
/// issuance included (a run takes 5–20 s on an idle machine).
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(240);

/// How long a change may take to be served.
pub const PROPAGATION: Duration = Duration::from_secs(20);

/// The contact address the clients register with.
const EMAIL: &str = "acme@sixgate.test";

/// A TSIG algorithm, spelled as each tool wants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigAlgorithm {
    /// HMAC-MD5 (RFC 8945 keeps it for compatibility; certbot's default).
    HmacMd5,
    /// HMAC-SHA256.
    HmacSha256,
    /// HMAC-SHA512.
    HmacSha512,
}

impl TsigAlgorithm {
    /// The name used by kdig/knsupdate `-y`, pdnsutil and sixgate
    /// (`hmac-sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5",
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// lego's `RFC2136_TSIG_ALGORITHM` (miekg/dns constants are absolute
    /// names, `hmac-sha256.`; MD5 is the long `hmac-md5.sig-alg.reg.int.`).
    pub fn lego_name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "hmac-md5.sig-alg.reg.int.",
            Self::HmacSha256 => "hmac-sha256.",
            Self::HmacSha512 => "hmac-sha512.",
        }
    }

    /// certbot's `dns_rfc2136_algorithm` (`HMAC-SHA256`).
    pub fn certbot_name(self) -> &'static str {
        match self {
            Self::HmacMd5 => "HMAC-MD5",
            Self::HmacSha256 => "HMAC-SHA256",
            Self::HmacSha512 => "HMAC-SHA512",
        }
    }

    /// Parses `hmac-sha256` and the like (case-insensitive, trailing dot
    /// allowed).
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-md5" | "hmac-md5.sig-alg.reg.int" => Ok(Self::HmacMd5),
            "hmac-sha256" => Ok(Self::HmacSha256),
            "hmac-sha512" => Ok(Self::HmacSha512),
            _ => bail!("unknown TSIG algorithm {text:?}"),
        }
    }
}

/// A TSIG key as the clients need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigKey {
    /// The key name, as configured (without a trailing dot).
    pub name: String,
    /// The algorithm.
    pub algorithm: TsigAlgorithm,
    /// The secret, base64.
    pub secret: String,
}

impl TsigKey {
    /// Parses the kdig `-y` form `ALGORITHM:NAME:SECRET` that
    /// `sixgate tsig create` prints.
    pub fn parse(line: &str) -> Result<Self> {
        let mut parts = line.trim().splitn(3, ':');
        let (Some(algorithm), Some(name), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("expected ALGORITHM:NAME:SECRET, got {line:?}");
        };
        ensure!(!name.is_empty() && !secret.is_empty(), "empty key name or secret in {line:?}");
        Ok(Self {
            name: name.trim_end_matches('.').to_owned(),
            algorithm: TsigAlgorithm::parse(algorithm)?,
            secret: secret.to_owned(),
        })
    }
}

/// How lego publishes the challenges: its `--dns` provider and settings.
#[derive(Clone, Debug)]
pub enum LegoDns {
    /// `httpreq`: `POST {endpoint}/present` and `/cleanup` with Basic auth.
    HttpReq {
        /// The base URL.
        endpoint: String,
        /// The Basic auth user name (lego sends no credentials at all unless
        /// both user name and password are set).
        username: String,
        /// The Basic auth password.
        password: String,
    },
    /// `rfc2136`: DNS UPDATE signed with TSIG.
    Rfc2136 {
        /// Where the UPDATE goes (and the SOA lookup that finds the zone).
        nameserver: SocketAddr,
        /// The key.
        key: TsigKey,
    },
    /// `pdns`: the PowerDNS HTTP API.
    Pdns {
        /// The API base URL, `http://ADDR` (lego appends `/api/v1/...`).
        api_url: String,
        /// Sent as `X-API-Key`.
        api_key: String,
    },
}

impl LegoDns {
    /// The `--dns` provider code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::HttpReq { .. } => "httpreq",
            Self::Rfc2136 { .. } => "rfc2136",
            Self::Pdns { .. } => "pdns",
        }
    }

    /// The provider's environment, names from `lego dnshelp -c CODE` (4.9.1).
    fn environment(&self) -> Vec<(String, String)> {
        let (prefix, specific) = match self {
            Self::HttpReq { endpoint, username, password } => (
                "HTTPREQ",
                vec![
                    ("ENDPOINT", endpoint.clone()),
                    ("USERNAME", username.clone()),
                    ("PASSWORD", password.clone()),
                ],
            ),
            Self::Rfc2136 { nameserver, key } => (
                "RFC2136",
                vec![
                    ("NAMESERVER", nameserver.to_string()),
                    ("TSIG_KEY", key.name.clone()),
                    ("TSIG_SECRET", key.secret.clone()),
                    ("TSIG_ALGORITHM", key.algorithm.lego_name().to_owned()),
                    ("SEQUENCE_INTERVAL", "1".into()),
                ],
            ),
            Self::Pdns { api_url, api_key } => {
                ("PDNS", vec![("API_URL", api_url.clone()), ("API_KEY", api_key.clone())])
            }
        };
        // Seconds. lego sleeps one polling interval before its (disabled)
        // propagation check of each challenge.
        let timing = [("POLLING_INTERVAL", "1".to_owned()), ("PROPAGATION_TIMEOUT", "60".to_owned())];
        specific.into_iter().chain(timing).map(|(name, value)| (format!("{prefix}_{name}"), value)).collect()
    }
}

/// A certificate a client obtained, and where its run was logged.
#[derive(Debug)]
pub struct Issued {
    /// The certificate (PEM; the leaf comes first).
    pub certificate: PathBuf,
    /// The intermediate(s) the ACME server sent with it (PEM).
    pub chain: PathBuf,
    /// The client's log.
    pub log: PathBuf,
    _state: tempfile::TempDir,
}

/// Runs `lego run` against `pebble` for `domains` (the first names the
/// certificate files), with `--dns.resolvers resolver`.
pub fn lego(pebble: &Pebble, resolver: SocketAddr, dns: &LegoDns, domains: &[&str]) -> Result<Issued> {
    let lego = require_program("lego", "lego")?;
    let first = *domains.first().context("no domains")?;
    let state = tempfile::Builder::new().prefix("sixgate-e2e-lego-").tempdir()?;
    let mut command = Command::new(lego);
    command
        .args(["--accept-tos", "--email", EMAIL, "--server", pebble.directory_url()])
        .arg("--path")
        .arg(state.path())
        .args(["--dns", dns.code(), "--dns.resolvers", &resolver.to_string(), "--dns.disable-cp"]);
    for domain in domains {
        command.args(["--domains", domain]);
    }
    command.arg("run").env("LEGO_CA_CERTIFICATES", pebble.tls_ca()).envs(dns.environment());
    let log = run_client(&format!("lego-{}", dns.code()), &mut command)?;
    // lego names the files after the first domain, `*` spelled `_`.
    let stem = first.replace('*', "_");
    let certificates = state.path().join("certificates");
    let certificate = certificates.join(format!("{stem}.crt"));
    let chain = certificates.join(format!("{stem}.issuer.crt"));
    for path in [&certificate, &chain] {
        ensure!(path.is_file(), "lego succeeded but wrote no {} (log {})", path.display(), log.display());
    }
    Ok(Issued { certificate, chain, log, _state: state })
}

/// Runs `lego run --http --http.webroot webroot` against `pebble` for
/// `domains`: HTTP-01, the token served from `webroot` by whatever web
/// server pebble reaches at the domains' A addresses.
pub fn lego_http(pebble: &Pebble, webroot: &Path, domains: &[&str]) -> Result<Issued> {
    let lego = require_program("lego", "lego")?;
    let first = *domains.first().context("no domains")?;
    let state = tempfile::Builder::new().prefix("sixgate-e2e-lego-").tempdir()?;
    let mut command = Command::new(lego);
    command
        .args(["--accept-tos", "--email", EMAIL, "--server", pebble.directory_url()])
        .arg("--path")
        .arg(state.path())
        .args(["--http", "--http.webroot"])
        .arg(webroot);
    for domain in domains {
        command.args(["--domains", domain]);
    }
    command.arg("run").env("LEGO_CA_CERTIFICATES", pebble.tls_ca());
    let log = run_client("lego-http", &mut command)?;
    let certificates = state.path().join("certificates");
    let certificate = certificates.join(format!("{first}.crt"));
    let chain = certificates.join(format!("{first}.issuer.crt"));
    for path in [&certificate, &chain] {
        ensure!(path.is_file(), "lego succeeded but wrote no {} (log {})", path.display(), log.display());
    }
    Ok(Issued { certificate, chain, log, _state: state })
}

/// Runs `certbot certonly --dns-rfc2136` against `pebble` for `domains`,
/// sending its UPDATEs (and SOA queries) to `server` signed with `key`.
pub fn certbot_rfc2136(
    pebble: &Pebble,
    server: SocketAddr,
    key: &TsigKey,
    domains: &[&str],
) -> Result<Issued> {
    let certbot = require_program("certbot", "certbot python3-certbot-dns-rfc2136")?;
    let state = tempfile::Builder::new().prefix("sixgate-e2e-certbot-").tempdir()?;
    let credentials = state.path().join("rfc2136.ini");
    fs::write(
        &credentials,
        format!(
            "dns_rfc2136_server = {}\n\
             dns_rfc2136_port = {}\n\
             dns_rfc2136_name = {}\n\
             dns_rfc2136_secret = {}\n\
             dns_rfc2136_algorithm = {}\n",
            server.ip(),
            server.port(),
            key.name,
            key.secret,
            key.algorithm.certbot_name()
        ),
    )?;
    // certbot warns about credentials others can read; its documentation
    // asks for 0600.
    set_private(&credentials)?;
    // certbot's own debug log is far more useful than its stderr; keep it.
    let logs = new_log_path("certbot-logs")?.with_extension("");
    let mut command = Command::new(certbot);
    command
        .args(["certonly", "--non-interactive", "--agree-tos", "--no-eff-email", "--email", EMAIL])
        .args(["--server", pebble.directory_url()])
        .args(["--dns-rfc2136", "--dns-rfc2136-propagation-seconds", "1", "--dns-rfc2136-credentials"])
        .arg(&credentials)
        .arg("--config-dir")
        .arg(state.path().join("config"))
        .arg("--work-dir")
        .arg(state.path().join("work"))
        .arg("--logs-dir")
        .arg(&logs);
    for domain in domains {
        command.args(["--domain", domain]);
    }
    command.env("REQUESTS_CA_BUNDLE", pebble.tls_ca());
    let log = run_client("certbot", &mut command).map_err(|error| {
        if format!("{error:#}").contains("unrecognized arguments: --dns-rfc2136") {
            return error.context(
                "certbot has no dns-rfc2136 plugin; scripts/test installs it \
                 (apt-get install python3-certbot-dns-rfc2136)",
            );
        }
        let debug = fs::read_to_string(logs.join("letsencrypt.log")).unwrap_or_default();
        let tail: Vec<&str> = debug.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        error.context(format!("certbot debug log {}, last lines:\n{}", logs.display(), tail.join("\n")))
    })?;
    // One lineage under live/, named by certbot.
    let live = state.path().join("config").join("live");
    let mut lineages = Vec::new();
    for entry in
        fs::read_dir(&live).with_context(|| format!("certbot succeeded but has no {}", live.display()))?
    {
        let path = entry?.path();
        if path.join("cert.pem").is_file() {
            lineages.push(path);
        }
    }
    let [lineage] = lineages.as_slice() else {
        bail!("expected one certificate lineage under {}, found {lineages:?}", live.display());
    };
    Ok(Issued { certificate: lineage.join("cert.pem"), chain: lineage.join("chain.pem"), log, _state: state })
}

#[cfg(unix)]
fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))
}

/// Runs a client to completion; its log path, or an error quoting the log.
fn run_client(name: &str, command: &mut Command) -> Result<PathBuf> {
    let mut child = ChildGuard::spawn_logged(name, command)?;
    let status = child.wait_for_exit(CLIENT_DEADLINE).map_err(|error| {
        error.context(format!(
            "{name} hung; log {}:\n{}",
            child.stderr_path().display(),
            child.stderr_tail(40)
        ))
    })?;
    if !status.success() {
        bail!(
            "{name} exited with {status}; log {}, last lines:\n{}",
            child.stderr_path().display(),
            child.stderr_tail(60)
        );
    }
    Ok(child.stderr_path().to_path_buf())
}

/// The DNS names in the subjectAltName of the first certificate in `pem`.
pub fn certificate_names(pem: &Path) -> Result<Vec<String>> {
    let openssl = require_program("openssl", "openssl")?;
    let output = Command::new(openssl)
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(pem)
        .output()
        .context("running openssl x509")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "openssl x509 {}: {text}{}",
        pem.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(parse_san_dns_names(&text))
}

/// `DNS:` entries of `openssl x509 -ext subjectAltName` output.
fn parse_san_dns_names(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|line| !line.contains("Subject Alternative Name"))
        .skip(1)
        .flat_map(|line| line.split(','))
        .filter_map(|entry| entry.trim().strip_prefix("DNS:"))
        .map(str::to_owned)
        .collect()
}

/// Checks with `openssl verify` that `issued` chains up to `root` (the
/// issuing root of the pebble that ran the order) and is valid now.
pub fn verify_chain(issued: &Issued, root: &Path) -> Result<()> {
    let openssl = require_program("openssl", "openssl")?;
    let output = Command::new(openssl)
        .arg("verify")
        .arg("-CAfile")
        .arg(root)
        .arg("-untrusted")
        .arg(&issued.chain)
        .arg(&issued.certificate)
        .output()
        .context("running openssl verify")?;
    ensure!(
        output.status.success(),
        "openssl verify of {}: {}{}",
        issued.certificate.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The TXT records served at `name`: `Ok(Some(strings))` when `server`
/// answers authoritatively with NOERROR (possibly no records) or NXDOMAIN,
/// `Ok(None)` when it does not answer, an error on any other answer.
pub fn served_txt(server: SocketAddr, name: &str) -> Result<Option<Vec<Vec<u8>>>> {
    let query = QuerySpec::parse(name, 16)?.with_id(0xacde).encode()?;
    let Some(bytes) = udp_exchange(server, &query, Duration::from_secs(1), 2)? else {
        return Ok(None);
    };
    let response = Response::parse(&bytes)?;
    ensure!(
        matches!(response.rcode(), 0 | 3) && response.aa(),
        "{name} TXT: rcode {} aa {} from {server}",
        response.rcode(),
        response.aa()
    );
    Ok(Some(response.answers_of(16).map(|rr| rr.rdata.clone()).collect()))
}

/// Polls until `_acme-challenge.{domain}` has no TXT record left.
pub fn wait_for_challenges_gone(server: SocketAddr, domain: &str) -> Result<()> {
    let name = format!("_acme-challenge.{domain}.");
    let mut last = Vec::new();
    wait_until(&format!("{name} TXT to be gone"), PROPAGATION, || match served_txt(server, &name)? {
        Some(records) if records.is_empty() => Ok(Some(())),
        Some(records) => {
            last = records;
            Ok(None)
        }
        None => Ok(None),
    })
    .with_context(|| format!("still served: {} TXT record(s) {last:?}", last.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsig_keys_parse_from_kdig_form() {
        let key = TsigKey::parse("hmac-sha256:acme-key:c2VjcmV0\n").unwrap();
        assert_eq!(key.name, "acme-key");
        assert_eq!(key.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(key.secret, "c2VjcmV0");
        assert_eq!(key.algorithm.lego_name(), "hmac-sha256.");
        assert_eq!(key.algorithm.certbot_name(), "HMAC-SHA256");
        // Base64 secrets may end in `=`; only the first two colons split.
        assert_eq!(TsigKey::parse("hmac-sha512:k.:YQ==").unwrap().secret, "YQ==");
        assert!(TsigKey::parse("hmac-sha256:acme-key").is_err());
        assert!(TsigKey::parse("hmac-sha1:k:YQ==").is_err());
    }

    #[test]
    fn subject_alt_names_parse_from_openssl_output() {
        let text = "X509v3 Subject Alternative Name: \n    DNS:example.test, DNS:*.example.test, IP Address:127.0.0.1\n";
        assert_eq!(parse_san_dns_names(text), ["example.test", "*.example.test"]);
        assert!(parse_san_dns_names("No extensions in certificate\n").is_empty());
    }
}
