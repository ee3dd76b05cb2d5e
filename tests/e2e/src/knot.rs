//! A private knotd, the reference server of the differential test.
//!
//! knotd cannot bind port 0 and report the port, so [`Knot::start`] picks a
//! port the OS says is free for both UDP and TCP (bind both to port 0's
//! choice, then release), writes a configuration into a temporary directory,
//! and starts `knotd -c CONF` in the foreground. If the port was taken in the
//! meantime, knotd fails to answer; the start is retried on a new port.
//! Readiness is "every zone's SOA answers with AA", checked with real queries.
//!
//! The configuration makes Knot a plain authoritative server and nothing
//! more: zone files loaded whole and never written back, no journal, no
//! semantic checks beyond Knot's mandatory ones, CH identity and version and
//! the NSID option disabled (so CH queries are REFUSED and NSID requests
//! ignored, rather than answered with the host's name and Knot's version),
//! and AXFR allowed from 127.0.0.1 so tests can read back what Knot loaded.
//! Without `dnssec-signing` Knot signs nothing: a signed zone file (one
//! exported by sixgate, say) is served as it is, its RRSIG, NSEC, NSEC3 and
//! NSEC3PARAM records included, and DNSSEC answers are built from them.

use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::client::{UdpClient, axfr};
use crate::corpus::ZoneContent;
use crate::normalize::{Response, Rr};
use crate::process::{ChildGuard, ZoneFile, wait_until};
use crate::query::{QuerySpec, parse_name};
use anyhow::{Context, Result, bail};

/// How long a start may take before it counts as failed.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// How many ports to try before giving up.
const START_ATTEMPTS: usize = 5;

/// A running private knotd; killed on drop.
#[derive(Debug)]
pub struct Knot {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    zones: Vec<ZoneFile>,
}

impl Knot {
    /// Starts knotd serving `zones` on 127.0.0.1 (UDP and TCP, same port).
    pub fn start(zones: &[ZoneFile]) -> Result<Self> {
        Self::start_awaiting(zones, zones)
    }

    /// Starts knotd with `zones` configured, ready once the zones of
    /// `awaited` answer: for a test that some other configured zone is
    /// refused (its SOA then gets SERVFAIL; the reason is in
    /// [`Knot::log_text`]).
    pub fn start_awaiting(zones: &[ZoneFile], awaited: &[ZoneFile]) -> Result<Self> {
        let knotd = which("knotd")?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&knotd, zones, awaited) {
                Ok(knot) => return Ok(knot),
                // A zone knotd will not load fails the same way on any port.
                Err(error) if error.is::<ZoneRefused>() => return Err(error),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("knotd never started"))
            .context(format!("starting knotd ({START_ATTEMPTS} attempts)")))
    }

    fn try_start(knotd: &Path, zones: &[ZoneFile], awaited: &[ZoneFile]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-knot-").tempdir()?;
        let port = free_port_pair()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = write_config(dir.path(), port, zones)?;
        let mut command = Command::new(knotd);
        command.arg("-c").arg(&config).stdout(Stdio::null());
        let mut child = ChildGuard::spawn("knotd", &mut command)?;
        let client = UdpClient::new(addr)?;
        let ready = wait_until("knotd to serve every zone's SOA", START_DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!(
                    "knotd exited with {status}; log {}:\n{}",
                    child.stderr_path().display(),
                    child.stderr_tail(20)
                );
            }
            // A refused zone ends the wait at once (an error would not).
            let log = child.log_text();
            if let Some(lines) = awaited.iter().find_map(|zone| load_failure(&log, &zone.origin)) {
                return Ok(Some(Err(ZoneRefused(lines))));
            }
            for zone in awaited {
                if !soa_answers(&client, &zone.origin)? {
                    return Ok(None);
                }
            }
            Ok(Some(Ok(())))
        });
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return Err(anyhow::Error::new(refused)),
            Err(error) => {
                return Err(error.context(format!("knotd on port {port}, config {}", config.display())));
            }
        }
        Ok(Self { child, dir, addr, zones: zones.to_vec() })
    }

    /// The address knotd answers on, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zones it serves.
    pub fn zones(&self) -> &[ZoneFile] {
        &self.zones
    }

    /// The temporary directory holding the configuration and storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// knotd's log so far (stderr, `info` and above).
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// True while knotd runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Every record of `zone` as knotd loaded it (AXFR, closing SOA excluded).
    pub fn records(&self, zone: &str) -> Result<Vec<Rr>> {
        axfr(self.addr, &parse_name(zone)?, Duration::from_secs(10))
    }
}

impl Knot {
    /// The content of every zone as knotd loaded it, for building corpora.
    pub fn zone_contents(&self) -> Result<Vec<ZoneContent>> {
        self.zones
            .iter()
            .map(|zone| {
                Ok(ZoneContent { apex: parse_name(&zone.origin)?, records: self.records(&zone.origin)? })
            })
            .collect()
    }
}

/// knotd refused to load a zone the start waits for; the error lines of its
/// log about that zone.
#[derive(Debug)]
struct ZoneRefused(String);

impl std::fmt::Display for ZoneRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "knotd refused to load a zone:\n{}", self.0)
    }
}

impl std::error::Error for ZoneRefused {}

/// knotd's error lines about `origin` if its log says the zone failed to
/// load.
fn load_failure(log: &str, origin: &str) -> Option<String> {
    let tag = format!("[{origin}]");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("error: ") && l.contains(&tag)).collect();
    errors.iter().any(|l| l.contains("failed to load zone")).then(|| errors.join("\n"))
}

/// A port that is free for UDP and TCP on 127.0.0.1 right now.
pub fn free_port_pair() -> Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP after 50 tries")
}

fn soa_answers(client: &UdpClient, origin: &str) -> Result<bool> {
    let query = QuerySpec::parse(origin, 6)?.with_id(0x50a0).encode()?;
    let Some(bytes) = client.exchange(&query, Duration::from_millis(200), 1)? else {
        return Ok(false);
    };
    let response = Response::parse(&bytes)?;
    Ok(response.aa() && response.rcode() == 0 && response.answers_of(6).next().is_some())
}

fn write_config(dir: &Path, port: u16, zones: &[ZoneFile]) -> Result<PathBuf> {
    let listen = [std::net::SocketAddr::from(([127, 0, 0, 1], port))];
    knot_config(dir, &listen, KnotRole::Reference, zones)
}

/// What a knotd of the suite is for, which decides the few lines where
/// its configurations differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnotRole {
    /// The reference server of the differential tests: two workers of each
    /// kind, transfers from 127.0.0.1, semantic checks off (the zones hold
    /// shapes Knot would warn about on purpose).
    Reference,
    /// A lab's authoritative server of presigned or unsigned files: one
    /// worker of each kind, Knot's default checks.
    Lab,
}

/// Writes `knot.conf` in `dir` for knotd on `listen`, serving `zones` as
/// files (no signing, no journal, files never written back).
pub(crate) fn knot_config(
    dir: &Path,
    listen: &[std::net::SocketAddr],
    role: KnotRole,
    zones: &[ZoneFile],
) -> Result<PathBuf> {
    let run = dir.join("run");
    let storage = dir.join("storage");
    fs::create_dir_all(&run)?;
    fs::create_dir_all(&storage)?;
    let (workers, acl, template) = match role {
        KnotRole::Reference => (
            2,
            "acl:\n  - id: local_transfer\n    address: 127.0.0.1\n    action: transfer\n\n",
            "    semantic-checks: off\n    acl: local_transfer\n",
        ),
        KnotRole::Lab => (1, "", ""),
    };
    let mut text = format!(
        r#"{head}{acl}template:
  - id: default
    storage: "{storage}"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
{template}
zone:
"#,
        head = conf_head(&run, &storage, listen, workers),
        storage = storage.display(),
    );
    for zone in zones {
        let path = zone.path.canonicalize().with_context(|| format!("zone file {}", zone.path.display()))?;
        text.push_str(&format!("  - domain: \"{}\"\n    file: \"{}\"\n", zone.origin, path.display()));
    }
    let config = dir.join("knot.conf");
    fs::write(&config, text)?;
    Ok(config)
}

/// Fails with an install hint if `program` is not on PATH.
pub fn which(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("{program} is not installed; scripts/test installs it (apt-get install knot knot-dnsutils)")
}

/// The `server`, `database` and `log` sections that every private knotd
/// of these tests starts its configuration with: listening on `listen`,
/// `workers` UDP and TCP workers, no identity, version or NSID (so CH
/// queries and NSID requests tell nothing), logging to stderr at info.
pub fn conf_head(run: &Path, storage: &Path, listen: &[SocketAddr], workers: usize) -> String {
    let listen: Vec<String> = listen.iter().map(|addr| format!("{}@{}", addr.ip(), addr.port())).collect();
    format!(
        r#"server:
    rundir: "{run}"
    listen: [ {listen} ]
    udp-workers: {workers}
    tcp-workers: {workers}
    background-workers: 1
    identity: ""
    version: ""
    nsid: ""

database:
    storage: "{storage}"

log:
  - target: stderr
    any: info

"#,
        run = run.display(),
        storage = storage.display(),
        listen = listen.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knot_serves_the_testdata_zones_and_axfr_reads_them_back() {
        let zones = ZoneFile::all_testdata().unwrap();
        let knot = Knot::start(&zones).unwrap();
        let records = knot.records("example.test.").unwrap();
        assert!(records.len() > 100, "{} records", records.len());
        let owners: Vec<String> = records.iter().map(|rr| rr.owner.to_ascii()).collect();
        assert!(owners.iter().any(|o| o == "a\\.b.example.test."), "{owners:?}");
        // The empty-RDATA unknown record survives the transfer.
        assert!(records.iter().any(|rr| rr.rtype == 65280 && rr.rdata.is_empty()));
    }
}
