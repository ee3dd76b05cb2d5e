//! Zone transfers out of sixgate as secondaries see them: kdig's AXFR and
//! IXFR output read back, and a private knotd configured as a static
//! secondary of a sixgate primary.
//!
//! [`xfr`] runs `kdig AXFR`/`IXFR=SERIAL` (optionally signed with `-y`
//! and from a chosen loopback source with `-b`) and reads its output:
//! the records in order (TSIG records apart), the message count kdig
//! reports, and the rcode of a refusal. Each TSIG record kdig prints is
//! one it verified: kdig fails a transfer whose signature does not.
//!
//! [`KnotSecondary`] starts knotd with one zone whose master is the
//! sixgate under test, optionally with a TSIG key, and `zonefile-sync: 0`
//! so that its copy is on disk after every transfer (for kzonecheck).
//! Transfers are driven explicitly with `knotc zone-refresh` (a SOA query,
//! then IXFR when the primary is ahead) or `zone-retransfer` (AXFR);
//! readiness is its SOA answering with the serial awaited. knotd allows
//! AXFR from 127.0.0.1, so a test can compare its copy with sixgate's.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::knot::{free_port_pair, which};
use crate::process::{ChildGuard, require_program, wait_until};

/// How long a secondary may take to start or to reach a serial.
pub const SECONDARY_DEADLINE: Duration = Duration::from_secs(30);

/// One record line of a kdig transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XfrRecord {
    /// Owner, as printed.
    pub owner: String,
    /// Type mnemonic.
    pub rtype: String,
    /// Rdata, as printed.
    pub data: String,
}

impl XfrRecord {
    /// The serial of an SOA record.
    pub fn serial(&self) -> Option<u32> {
        (self.rtype == "SOA").then(|| self.data.split_whitespace().nth(2)?.parse().ok()).flatten()
    }
}

/// What kdig got for one transfer.
#[derive(Clone, Debug)]
pub struct XfrAnswer {
    /// The command line and its whole output, for messages.
    pub text: String,
    /// The records in order, TSIG records left out.
    pub records: Vec<XfrRecord>,
    /// The TSIG records printed (one per signed message, each verified).
    pub tsig: usize,
    /// The messages kdig reports having received.
    pub messages: usize,
    /// The rcode of a refused transfer (`REFUSED`, `NOTAUTH`...).
    pub error: Option<String>,
}

impl XfrAnswer {
    /// The serials of the SOA records, in order.
    pub fn soa_serials(&self) -> Vec<u32> {
        self.records.iter().filter_map(XfrRecord::serial).collect()
    }
}

impl std::fmt::Display for XfrAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Runs `kdig @server ZONE QTYPE` for a transfer (`AXFR` or
/// `IXFR=SERIAL`), signed with `key` (`ALG:NAME:SECRET`) and from
/// `source` when given.
pub fn xfr(
    server: SocketAddr,
    zone: &str,
    qtype: &str,
    key: Option<&str>,
    source: Option<&str>,
) -> Result<XfrAnswer> {
    run_xfr(server, zone, qtype, key, source, &[])
}

/// [`xfr`] over UDP (`+notcp`), unsigned.
pub fn xfr_udp(server: SocketAddr, zone: &str, qtype: &str, source: Option<&str>) -> Result<XfrAnswer> {
    run_xfr(server, zone, qtype, None, source, &["+notcp"])
}

fn run_xfr(
    server: SocketAddr,
    zone: &str,
    qtype: &str,
    key: Option<&str>,
    source: Option<&str>,
    extra: &[&str],
) -> Result<XfrAnswer> {
    let program = require_program("kdig", "knot-dnsutils")?;
    let at = format!("@{}", server.ip());
    let port = server.port().to_string();
    let mut args = vec![at.as_str(), "-p", &port, "+time=10", "+retry=0"];
    args.extend_from_slice(extra);
    if let Some(source) = source {
        args.extend(["-b", source]);
    }
    if let Some(key) = key {
        args.extend(["-y", key]);
    }
    args.extend([zone, qtype]);
    let out = Command::new(program).args(&args).output().context("running kdig")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("$ kdig {}\n{stdout}{stderr}", args.join(" "));
    let mut records = Vec::new();
    let mut tsig = 0;
    for line in stdout.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(owner), Some(_ttl), Some(class), Some(rtype)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            bail!("a record line kdig printed does not parse: {line:?}\n{text}");
        };
        if rtype == "TSIG" && class == "ANY" {
            tsig += 1;
            continue;
        }
        let data = fields.collect::<Vec<_>>().join(" ");
        records.push(XfrRecord { owner: owner.to_owned(), rtype: rtype.to_owned(), data });
    }
    let messages = stdout
        .lines()
        .find_map(|l| l.strip_prefix(";; Received ")?.split('(').nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    let error = stderr
        .lines()
        .find_map(|l| l.split("replied with error '").nth(1)?.split('\'').next().map(str::to_owned));
    if error.is_none() && !out.status.success() {
        bail!("kdig failed without an rcode:\n{text}");
    }
    Ok(XfrAnswer { text, records, tsig, messages, error })
}

/// A private knotd following one zone from a sixgate primary; killed on
/// drop.
#[derive(Debug)]
pub struct KnotSecondary {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    config: PathBuf,
    addr: SocketAddr,
    zone: String,
}

impl KnotSecondary {
    /// Starts knotd on a free 127.0.0.1 port as a secondary of `zone`
    /// from `primary`, signing its requests with `key` (`ALG:NAME:SECRET`)
    /// when given. Returns once its first transfer made the zone answer.
    pub fn start(primary: SocketAddr, zone: &str, key: Option<&str>) -> Result<Self> {
        let knotd = which("knotd")?;
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-knot2-").tempdir()?;
        let port = free_port_pair()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = write_config(dir.path(), addr, primary, zone, key)?;
        let mut command = Command::new(knotd);
        command.arg("-c").arg(&config).stdout(Stdio::null());
        let child = ChildGuard::spawn("knotd-secondary", &mut command)?;
        let mut knot = KnotSecondary { child, dir, config, addr, zone: zone.to_owned() };
        knot.wait_for_serial(|_| true).context("knotd's first transfer from sixgate")?;
        Ok(knot)
    }

    /// Where knotd answers, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// knotd's log so far.
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// The zone file knotd writes after each transfer.
    pub fn zone_file(&self) -> PathBuf {
        self.dir.path().join("storage").join(format!("{}.zone", self.zone.trim_end_matches('.')))
    }

    /// The serial knotd answers for the zone, if it answers.
    pub fn serial(&self) -> Result<Option<u32>> {
        let dig = crate::kdig::kdig(self.addr, &[&self.zone, "SOA"])?;
        if dig.status != "NOERROR" || !dig.aa() {
            return Ok(None);
        }
        Ok(dig.answers("SOA").first().and_then(|r| r.data.split_whitespace().nth(2)?.parse().ok()))
    }

    /// Waits until knotd answers a serial that `wanted` accepts.
    pub fn wait_for_serial(&mut self, wanted: impl Fn(u32) -> bool) -> Result<u32> {
        let what = format!("knotd to answer {} at the serial awaited", self.zone);
        let (zone, addr) = (self.zone.clone(), self.addr);
        let child = &mut self.child;
        wait_until(&what, SECONDARY_DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!("knotd exited with {status}:\n{}", child.stderr_tail(20));
            }
            let dig = crate::kdig::kdig(addr, &[&zone, "SOA"])?;
            let serial = (dig.status == "NOERROR" && dig.aa())
                .then(|| {
                    dig.answers("SOA").first().and_then(|r| r.data.split_whitespace().nth(2)?.parse().ok())
                })
                .flatten();
            Ok(serial.filter(|s| wanted(*s)))
        })
        .with_context(|| format!("knotd log:\n{}", self.child.stderr_tail(30)))
    }

    /// `knotc zone-refresh`: knotd asks the primary's SOA and transfers
    /// (IXFR) when the primary is ahead.
    pub fn refresh(&self) -> Result<()> {
        self.knotc("zone-refresh")
    }

    /// `knotc zone-retransfer`: a full AXFR whatever the serials.
    pub fn retransfer(&self) -> Result<()> {
        self.knotc("zone-retransfer")
    }

    fn knotc(&self, command: &str) -> Result<()> {
        let knotc = which("knotc")?;
        let out = Command::new(knotc)
            .arg("-c")
            .arg(&self.config)
            .args([command, &self.zone])
            .output()
            .context("running knotc")?;
        if !out.status.success() {
            bail!(
                "knotc {command} {} failed: {}{}",
                self.zone,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// The lines of knotd's log about incoming transfers of `zone` that
/// finished: `AXFR, incoming ... finished` or `IXFR, incoming ... finished`.
pub fn finished_transfers(log: &str, zone: &str) -> Vec<String> {
    let tag = format!("[{zone}]");
    log.lines()
        .filter(|l| l.contains(&tag) && l.contains("incoming") && l.contains("finished"))
        .map(str::to_owned)
        .collect()
}

fn write_config(
    dir: &Path,
    addr: SocketAddr,
    primary: SocketAddr,
    zone: &str,
    key: Option<&str>,
) -> Result<PathBuf> {
    let run = dir.join("run");
    let storage = dir.join("storage");
    fs::create_dir_all(&run)?;
    fs::create_dir_all(&storage)?;
    let (key_section, remote_key) = match key {
        Some(key) => {
            let mut parts = key.splitn(3, ':');
            let (Some(algorithm), Some(name), Some(secret)) = (parts.next(), parts.next(), parts.next())
            else {
                bail!("a key is ALG:NAME:SECRET, not {key:?}");
            };
            (
                format!("key:\n  - id: {name}\n    algorithm: {algorithm}\n    secret: {secret}\n\n"),
                format!("    key: {name}\n"),
            )
        }
        None => (String::new(), String::new()),
    };
    let text = format!(
        r#"{head}acl:
  - id: local_transfer
    address: 127.0.0.1
    action: transfer

{key_section}remote:
  - id: primary
    address: {pip}@{pport}
{remote_key}
template:
  - id: default
    storage: "{storage}"
    zonefile-sync: 0
    semantic-checks: off
    acl: local_transfer

zone:
  - domain: "{zone}"
    master: primary
"#,
        head = crate::knot::conf_head(&run, &storage, &[addr], 1),
        storage = storage.display(),
        pip = primary.ip(),
        pport = primary.port(),
    );
    let config = dir.join("knot.conf");
    fs::write(&config, text)?;
    Ok(config)
}
