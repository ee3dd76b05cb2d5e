//! A private PowerDNS Authoritative, the reference peer of the ACME tests.
//!
//! The ACME clients' PowerDNS provider (lego `pdns`) and their RFC 2136
//! providers (lego `rfc2136`, certbot `dns-rfc2136`) were written against
//! real servers; running the same flows against PowerDNS shows the harness
//! itself is right, so that a failure against sixgate is sixgate's.
//!
//! [`PowerDns::start`] makes an sqlite database from the schema the
//! `pdns-backend-sqlite3` package ships, loads one zone and a generated
//! HMAC-SHA256 TSIG key with `pdnsutil`, allows that key (and only it) to
//! UPDATE the zone, and runs `pdns_server` in the foreground with its own
//! configuration directory: DNS on a free loopback port (UDP and TCP), the
//! HTTP API on another, with an API key.
//!
//! Nothing leaves the loopback: notifications go nowhere (`only-notify=`
//! empty, not a primary), the security poll (a DNS query to
//! powerdns.com) is off, and no resolver is configured. Caches are off, so a
//! change is served as soon as it is committed. Readiness is the zone's SOA
//! answering with AA and the API answering with the key.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

use crate::acme::{TsigAlgorithm, TsigKey};
use crate::client::UdpClient;
use crate::http;
use crate::knot::free_port_pair;
use crate::normalize::Response;
use crate::process::{ChildGuard, ZoneFile, free_tcp_port, require_program, wait_until};
use crate::query::QuerySpec;

/// How long a start may take before it counts as failed.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// How many port choices to try before giving up.
const START_ATTEMPTS: usize = 5;

/// The schema the Debian package installs.
const SCHEMA: &str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";

/// A new API key. Unique per instance so that the readiness probe cannot be
/// answered by another test's PowerDNS that took the same port first.
fn new_api_key() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("sixgate-e2e-{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A running private PowerDNS; killed on drop.
#[derive(Debug)]
pub struct PowerDns {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    dns: SocketAddr,
    api_url: String,
    api_key: String,
    tsig: TsigKey,
}

impl PowerDns {
    /// Starts PowerDNS serving `zone`, updatable with a new TSIG key named
    /// `key_name`.
    pub fn start(zone: &ZoneFile, key_name: &str) -> Result<Self> {
        let server = require_program("pdns_server", "pdns-server pdns-backend-sqlite3")?;
        let pdnsutil = require_program("pdnsutil", "pdns-server")?;
        ensure!(
            Path::new(SCHEMA).is_file(),
            "{SCHEMA} is missing; scripts/test installs it (apt-get install pdns-backend-sqlite3)"
        );
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&server, &pdnsutil, zone, key_name) {
                Ok(started) => return Ok(started),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("pdns_server never started"))
            .context(format!("starting PowerDNS ({START_ATTEMPTS} attempts)")))
    }

    fn try_start(server: &Path, pdnsutil: &Path, zone: &ZoneFile, key_name: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-pdns-").tempdir()?;
        let database = dir.path().join("pdns.sqlite3");
        let schema = fs::read_to_string(SCHEMA).with_context(|| format!("reading {SCHEMA}"))?;
        rusqlite::Connection::open(&database)
            .and_then(|db| db.execute_batch(&schema))
            .with_context(|| format!("creating {}", database.display()))?;
        let dns_port = free_port_pair()?;
        let api_port = free_tcp_port()?;
        let api_key = new_api_key();
        write_config(dir.path(), &database, dns_port, api_port, &api_key)?;
        let util = Pdnsutil { program: pdnsutil, config_dir: dir.path() };
        let zone_path = zone.path.display().to_string();
        util.run(&["load-zone", zone.name(), &zone_path])?;
        let algorithm = TsigAlgorithm::HmacSha256;
        util.run(&["generate-tsig-key", key_name, algorithm.name()])?;
        util.run(&["set-meta", zone.name(), "TSIG-ALLOW-DNSUPDATE", key_name])?;
        let tsig = util.tsig_key(key_name, algorithm)?;

        let mut command = Command::new(server);
        command.arg(format!("--config-dir={}", dir.path().display()));
        let mut child = ChildGuard::spawn_logged("pdns", &mut command)?;
        let dns = SocketAddr::from(([127, 0, 0, 1], dns_port));
        let api_url = format!("http://127.0.0.1:{api_port}");
        let client = UdpClient::new(dns)?;
        let ready = wait_until("PowerDNS to serve the zone and its API", START_DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!(
                    "pdns_server exited with {status}; log {}:\n{}",
                    child.stderr_path().display(),
                    child.stderr_tail(20)
                );
            }
            if !soa_answers(&client, &zone.origin)? {
                return Ok(None);
            }
            let response = http::request(
                "GET",
                &format!("{api_url}/api/v1/servers/localhost"),
                &[("X-API-Key", &api_key)],
                None,
                Duration::from_secs(5),
            )?;
            Ok((response.status == 200).then_some(()))
        });
        if let Err(error) = ready {
            return Err(error.context(format!("PowerDNS in {}", dir.path().display())));
        }
        Ok(Self { child, dir, dns, api_url, api_key, tsig })
    }

    /// The DNS address (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns
    }

    /// The API base URL, `http://127.0.0.1:PORT` (without `/api`).
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The API key (`X-API-Key`).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The TSIG key allowed to UPDATE the zone.
    pub fn tsig_key(&self) -> &TsigKey {
        &self.tsig
    }

    /// PowerDNS's log (queries included).
    pub fn log_path(&self) -> &Path {
        self.child.stderr_path()
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// True while pdns_server runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}

/// `pdnsutil --config-dir=DIR ...`.
struct Pdnsutil<'a> {
    program: &'a Path,
    config_dir: &'a Path,
}

impl Pdnsutil<'_> {
    fn run(&self, args: &[&str]) -> Result<String> {
        let output = Command::new(self.program)
            .arg(format!("--config-dir={}", self.config_dir.display()))
            .args(args)
            .output()
            .with_context(|| format!("running pdnsutil {}", args.join(" ")))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "pdnsutil {} exited with {}:\n{stdout}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    /// The secret of `name` from `list-tsig-keys` (`NAME. ALGORITHM. SECRET`).
    fn tsig_key(&self, name: &str, algorithm: TsigAlgorithm) -> Result<TsigKey> {
        let list = self.run(&["list-tsig-keys"])?;
        let secret = list
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find_map(|fields| match fields.as_slice() {
                [key, _, secret] if key.trim_end_matches('.') == name => Some((*secret).to_owned()),
                _ => None,
            })
            .with_context(|| format!("no key {name} in pdnsutil list-tsig-keys:\n{list}"))?;
        Ok(TsigKey { name: name.to_owned(), algorithm, secret })
    }
}

fn soa_answers(client: &UdpClient, origin: &str) -> Result<bool> {
    let query = QuerySpec::parse(origin, 6)?.with_id(0x9d45).encode()?;
    let Some(bytes) = client.exchange(&query, Duration::from_millis(300), 1)? else {
        return Ok(false);
    };
    let response = Response::parse(&bytes)?;
    Ok(response.aa() && response.rcode() == 0 && response.answers_of(6).next().is_some())
}

fn write_config(dir: &Path, database: &Path, dns_port: u16, api_port: u16, api_key: &str) -> Result<PathBuf> {
    let text = format!(
        "# A private PowerDNS for sixgate's end-to-end tests; see tests/e2e/src/powerdns.rs.\n\
         launch=gsqlite3\n\
         gsqlite3-database={database}\n\
         local-address=127.0.0.1:{dns_port}\n\
         socket-dir={dir}\n\
         daemon=no\n\
         guardian=no\n\
         disable-syslog=yes\n\
         loglevel=6\n\
         log-dns-queries=yes\n\
         distributor-threads=1\n\
         receiver-threads=1\n\
         api=yes\n\
         api-key={api_key}\n\
         webserver=yes\n\
         webserver-address=127.0.0.1\n\
         webserver-port={api_port}\n\
         webserver-allow-from=127.0.0.1\n\
         dnsupdate=yes\n\
         allow-dnsupdate-from=127.0.0.1\n\
         primary=no\n\
         only-notify=\n\
         security-poll-suffix=\n\
         cache-ttl=0\n\
         negquery-cache-ttl=0\n\
         query-cache-ttl=0\n",
        database = database.display(),
        dir = dir.display(),
    );
    let path = dir.join("pdns.conf");
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
