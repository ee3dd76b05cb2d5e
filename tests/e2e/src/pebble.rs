//! A private pebble, Let's Encrypt's test ACME server, validating for real.
//!
//! Pebble serves ACME over HTTPS only and the Debian package ships no
//! certificate, so [`Pebble::start`] first makes a throwaway TLS CA and a
//! certificate for `127.0.0.1`/`localhost` signed by it, with the `openssl`
//! command line. The ACME clients trust that CA through their own knobs
//! (`LEGO_CA_CERTIFICATES`, `REQUESTS_CA_BUNDLE`); nothing is added to a
//! system trust store.
//!
//! Pebble cannot listen on port 0 and report the port, so free ports are
//! picked (bind, read, release) for the ACME and management listeners and for
//! the HTTP-01/TLS-ALPN-01 validation ports (unused by DNS-01, but pebble
//! wants them). If pebble exits because a port was taken in the meantime, the
//! start is retried on new ports. Readiness is the ACME directory answering
//! over verified HTTPS (`curl --cacert`); as the CA is new for every start,
//! another test's pebble that took the port cannot pass for this one.
//!
//! Validation is real: pebble sends its DNS-01 TXT queries to `-dnsserver`,
//! the server under test, and nowhere else.
//! `PEBBLE_VA_ALWAYS_VALID` is removed from the environment, because with it
//! pebble would accept every challenge without a query and prove nothing.
//! `PEBBLE_VA_NOSLEEP=1` drops pebble's random 0–5 s sleep before each
//! validation, `PEBBLE_WFE_NONCEREJECT=0` its deliberate rejection of 5 % of
//! good nonces, and `PEBBLE_AUTHZREUSE=0` its reuse of valid authorizations,
//! so every identifier of every order is validated through DNS.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::{ChildGuard, free_tcp_port, require_program, wait_until};

/// How long a start may take before it counts as failed.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// How many port choices to try before giving up.
const START_ATTEMPTS: usize = 5;

/// What pebble logs each time a challenge validates.
const VALID_LINE: &str = "set VALID by completed challenge";

/// A running private pebble; killed on drop.
#[derive(Debug)]
pub struct Pebble {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    directory_url: String,
    management_url: String,
    tls_ca: PathBuf,
}

/// The files of pebble's HTTPS listener.
#[derive(Debug)]
struct TlsFiles {
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

impl Pebble {
    /// Starts pebble on 127.0.0.1, validating DNS-01 challenges by querying
    /// `dns_server` (UDP).
    pub fn start(dns_server: SocketAddr) -> Result<Self> {
        Self::start_with_http_port(dns_server, None)
    }

    /// Like [`Pebble::start`], validating HTTP-01 challenges on
    /// `http_port` (pebble's `httpPort`) of the domain's A address.
    pub fn start_with_http_port(dns_server: SocketAddr, http_port: Option<u16>) -> Result<Self> {
        let pebble = require_program("pebble", "pebble")?;
        let openssl = require_program("openssl", "openssl")?;
        require_program("curl", "curl")?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new().prefix("sixgate-e2e-pebble-").tempdir()?;
            let tls = write_tls_files(&openssl, dir.path())?;
            match Self::try_start(&pebble, dir, tls, dns_server, http_port) {
                Ok(started) => return Ok(started),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("pebble never started"))
            .context(format!("starting pebble ({START_ATTEMPTS} attempts)")))
    }

    fn try_start(
        pebble: &Path,
        dir: tempfile::TempDir,
        tls: TlsFiles,
        dns_server: SocketAddr,
        http_port: Option<u16>,
    ) -> Result<Self> {
        let [acme, management, http, tls_alpn] =
            [free_tcp_port()?, free_tcp_port()?, free_tcp_port()?, free_tcp_port()?];
        let http = http_port.unwrap_or(http);
        let config = dir.path().join("pebble.json");
        fs::write(
            &config,
            format!(
                r#"{{
  "pebble": {{
    "listenAddress": "127.0.0.1:{acme}",
    "managementListenAddress": "127.0.0.1:{management}",
    "certificate": {certificate},
    "privateKey": {key},
    "httpPort": {http},
    "tlsPort": {tls_alpn},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }}
}}
"#,
                certificate = json_string(&tls.certificate),
                key = json_string(&tls.key),
            ),
        )?;
        let mut command = Command::new(pebble);
        command
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(dns_server.to_string())
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0");
        let mut child = ChildGuard::spawn_logged("pebble", &mut command)?;
        let directory_url = format!("https://127.0.0.1:{acme}/dir");
        let ready = wait_until("pebble's ACME directory to answer", START_DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!(
                    "pebble exited with {status}; log {}:\n{}",
                    child.stderr_path().display(),
                    child.stderr_tail(20)
                );
            }
            let body = https_get(&tls.ca, &directory_url)?;
            if body.contains("newOrder") {
                Ok(Some(()))
            } else {
                bail!("{directory_url} answered without newOrder: {body}")
            }
        });
        if let Err(error) = ready {
            return Err(error.context(format!("pebble with config {}", config.display())));
        }
        Ok(Self {
            child,
            dir,
            directory_url,
            management_url: format!("https://127.0.0.1:{management}"),
            tls_ca: tls.ca,
        })
    }

    /// The ACME directory URL, `https://127.0.0.1:PORT/dir`.
    pub fn directory_url(&self) -> &str {
        &self.directory_url
    }

    /// The CA certificate (PEM) that pebble's HTTPS certificate chains to;
    /// ACME clients must trust it.
    pub fn tls_ca(&self) -> &Path {
        &self.tls_ca
    }

    /// Writes the root of the chain pebble issues certificates under (new for
    /// every pebble process) to `path`, from the management interface.
    pub fn write_issuing_root(&self, path: &Path) -> Result<()> {
        let pem = https_get(&self.tls_ca, &format!("{}/roots/0", self.management_url))?;
        if !pem.contains("BEGIN CERTIFICATE") {
            bail!("pebble's /roots/0 is not a PEM certificate: {pem}");
        }
        fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
    }

    /// How many challenges pebble has validated so far (it logs each one).
    pub fn validated_challenges(&self) -> usize {
        self.child.log_text().matches(VALID_LINE).count()
    }

    /// Pebble's log (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        self.child.stderr_path()
    }

    /// The last lines of pebble's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.child.stderr_tail(lines)
    }

    /// The temporary directory holding the configuration and TLS files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// True while pebble runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}

/// `curl` GET of `url`, trusting only `ca`; the body, or an error.
fn https_get(ca: &Path, url: &str) -> Result<String> {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg(url)
        .output()
        .context("running curl")?;
    if !output.status.success() {
        bail!("curl {url}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A CA and a certificate for 127.0.0.1 and localhost signed by it, made with
/// the `openssl` command line into `dir`. A separate CA rather than one
/// self-signed certificate: that is the shape every TLS client accepts as a
/// trust anchor plus leaf, Python's strict checks included.
fn write_tls_files(openssl: &Path, dir: &Path) -> Result<TlsFiles> {
    let ca = dir.join("tls-ca.pem");
    let ca_key = dir.join("tls-ca.key");
    let certificate = dir.join("pebble.pem");
    let key = dir.join("pebble.key");
    let request = dir.join("pebble.csr");
    let extensions = dir.join("pebble.ext");
    fs::write(
        &extensions,
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n",
    )?;
    let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run_openssl(
        openssl,
        Command::new(openssl)
            .args(["req", "-x509"])
            .args(p256)
            .args(["-days", "7", "-subj", "/CN=sixgate e2e pebble TLS CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
    )?;
    run_openssl(
        openssl,
        Command::new(openssl)
            .args(["req", "-new"])
            .args(p256)
            .args(["-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&request),
    )?;
    run_openssl(
        openssl,
        Command::new(openssl)
            .args(["x509", "-req", "-days", "7", "-CAcreateserial"])
            .arg("-in")
            .arg(&request)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-CAserial")
            .arg(dir.join("tls-ca.srl"))
            .arg("-extfile")
            .arg(&extensions)
            .arg("-out")
            .arg(&certificate),
    )?;
    Ok(TlsFiles { ca, certificate, key })
}

fn run_openssl(openssl: &Path, command: &mut Command) -> Result<()> {
    let output = command.output().with_context(|| format!("running {}", openssl.display()))?;
    if !output.status.success() {
        bail!("{command:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// `path` as a JSON string literal.
fn json_string(path: &Path) -> String {
    let mut quoted = String::from("\"");
    for c in path.display().to_string().chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_json_strings() {
        assert_eq!(json_string(Path::new("/tmp/a\"b\\c")), r#""/tmp/a\"b\\c""#);
    }

    #[test]
    fn pebble_serves_its_directory_over_https_we_trust() {
        // No DNS server is needed to answer the directory.
        let pebble = Pebble::start("127.0.0.1:9".parse().unwrap()).unwrap();
        let body = https_get(pebble.tls_ca(), pebble.directory_url()).unwrap();
        assert!(body.contains("newAccount"), "{body}");
        let root = pebble.dir().join("root.pem");
        pebble.write_issuing_root(&root).unwrap();
        assert!(fs::read_to_string(&root).unwrap().contains("BEGIN CERTIFICATE"));
    }
}
