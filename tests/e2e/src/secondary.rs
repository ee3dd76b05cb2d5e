//! Real secondaries of a primary under test: private knotd (Knot 3.2),
//! named (BIND 9.18) and nsd (NSD 4.6), each following a primary at a given
//! `127.0.0.1:PORT` by AXFR/IXFR after NOTIFY (RFC 5936, RFC 1995,
//! RFC 1996).
//!
//! [`Secondary::start`] writes the peer's configuration into a temporary
//! directory, starts it in the foreground on a port the OS says is free for
//! UDP and TCP (retried on a clash, as [`crate::knot`] does) and waits until
//! it answers queries. Everything the peer writes (journal, zone files,
//! pid file, control socket, named's session key and managed keys, NSD's
//! xfrd state) stays in that directory, also when the tests run as root:
//! no `/etc`, `/var` or system service is touched.
//!
//! What a secondary follows ([`SecondaryConfig`]): zones named statically,
//! and/or a catalog zone (RFC 9432) on knotd (`catalog-role: interpret`)
//! and named (`catalog-zones`); NSD 4.6 predates catalog zones, so it only
//! takes static zones. With a [`TransferKey`] every transfer request is
//! signed with it (RFC 8945) and a NOTIFY signed with it is accepted; an
//! unsigned NOTIFY from the primary's address is accepted too, since a
//! NOTIFY only makes the secondary ask, over a signed transfer.
//!
//! How a version of a zone arrived ([`Secondary::last_transfer`]) is read
//! from what each peer says itself:
//! - knotd (`info`): `[zone.] IXFR, incoming, remote ..., finished` or
//!   `AXFR, incoming, ...`, then `refresh, ..., zone updated, ..., serial
//!   A -> B`;
//! - named (category `xfer-in` at `debug 3`): `transfer of 'zone/IN' from
//!   ...: got incremental response` or `got nonincremental response`, then
//!   `Transfer completed: ... (serial B)`;
//! - nsd logs neither kind (`zone zone. serial A is updated to B` alone),
//!   so it keeps what it receives by IXFR (`store-ixfr: yes`, which keeps
//!   nothing of an AXFR) and is asked for an IXFR from A: it answers with
//!   the versions (IXFR form) only if it received them by IXFR, and with
//!   the whole zone otherwise.
//!
//! A forced refresh ([`Secondary::refresh`]) uses each peer's own control
//! tool: knotc on the control socket in the directory, rndc with a key
//! generated for the instance on a port of its own, nsd-control on a unix
//! socket in the directory (no certificates needed).

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;

use crate::client::UdpClient;
use crate::knot::free_port_pair;
use crate::normalize::Response;
use crate::process::{ChildGuard, free_tcp_port, require_program, wait_until};
use crate::query::QuerySpec;

/// How long a start may take before it counts as failed.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long [`Secondary::wait_for_serial`] and [`Secondary::wait_for_absent`]
/// wait: a NOTIFY and a transfer take milliseconds, but a loaded machine
/// and a retry after a lost NOTIFY take longer.
pub const FOLLOW_DEADLINE: Duration = Duration::from_secs(20);

/// How many ports to try before giving up.
const START_ATTEMPTS: usize = 5;

/// Which server a secondary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// knotd, Knot DNS 3.2.
    Knot,
    /// named, BIND 9.18.
    Bind,
    /// nsd, NSD 4.6 (no catalog zones).
    Nsd,
}

impl Peer {
    /// All three.
    pub const ALL: [Peer; 3] = [Peer::Knot, Peer::Bind, Peer::Nsd];

    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            Peer::Knot => "knotd",
            Peer::Bind => "named",
            Peer::Nsd => "nsd",
        }
    }

    /// The Debian package that has it.
    fn package(self) -> &'static str {
        match self {
            Peer::Knot => "knot",
            Peer::Bind => "bind9",
            Peer::Nsd => "nsd",
        }
    }

    /// Whether it can follow a catalog zone.
    pub fn follows_catalogs(self) -> bool {
        self != Peer::Nsd
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.program())
    }
}

/// A TSIG key (RFC 8945) as the three peers configure it.
#[derive(Clone, PartialEq, Eq)]
pub struct TransferKey {
    /// The key's name, absolute (trailing dot).
    pub name: String,
    /// `hmac-sha256`, `hmac-sha512`, ...
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl std::fmt::Debug for TransferKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TransferKey {
    /// `ALG:NAME:SECRET`, as `sixgate tsig create --transfer` prints it and
    /// `kdig -y` takes it.
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = text.trim().splitn(3, ':');
        let (Some(algorithm), Some(name), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("not ALG:NAME:SECRET: {text:?}");
        };
        base64::engine::general_purpose::STANDARD
            .decode(secret)
            .with_context(|| format!("the secret of {name} is not base64"))?;
        Ok(Self { name: absolute(name), algorithm: algorithm.to_owned(), secret: secret.to_owned() })
    }

    /// A fresh HMAC-SHA256 key named `name` with a random 256-bit secret
    /// (RFC 8945 §6: no shorter than the hash output).
    pub fn random(name: &str) -> Result<Self> {
        // From the OS, not the seeded test generator: a replayed seed must
        // not make a "wrong" key equal to the right one.
        let mut secret = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
            .context("reading /dev/urandom")?;
        Ok(Self {
            name: absolute(name),
            algorithm: "hmac-sha256".into(),
            secret: base64::engine::general_purpose::STANDARD.encode(secret),
        })
    }

    /// The same name and algorithm with another random secret: a key the
    /// primary will not verify.
    pub fn wrong(&self) -> Result<Self> {
        Ok(Self { algorithm: self.algorithm.clone(), ..Self::random(&self.name)? })
    }

    /// `ALG:NAME:SECRET`.
    pub fn to_text(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret)
    }
}

/// What a secondary follows, and from where.
#[derive(Clone, Debug)]
pub struct SecondaryConfig {
    /// The primary, `127.0.0.1:PORT`: where transfers are requested.
    pub primary: SocketAddr,
    /// The key transfers are signed with (and NOTIFY may be signed with).
    pub key: Option<TransferKey>,
    /// Zones followed by static configuration (absolute names).
    pub zones: Vec<String>,
    /// A catalog zone (RFC 9432) to follow, absolute; every member it lists
    /// is followed from the same primary with the same key.
    pub catalog: Option<String>,
    /// The address NOTIFY is accepted from (any port).
    pub notify_from: IpAddr,
}

impl SecondaryConfig {
    /// Follows nothing yet from `primary`, NOTIFY accepted from its address.
    pub fn new(primary: SocketAddr) -> Self {
        Self { primary, key: None, zones: Vec::new(), catalog: None, notify_from: primary.ip() }
    }

    /// With transfers signed by `key`.
    pub fn with_key(mut self, key: &TransferKey) -> Self {
        self.key = Some(key.clone());
        self
    }

    /// Also follows `zone` statically.
    pub fn with_zone(mut self, zone: &str) -> Self {
        self.zones.push(absolute(zone));
        self
    }

    /// Follows the catalog zone `catalog`.
    pub fn with_catalog(mut self, catalog: &str) -> Self {
        self.catalog = Some(absolute(catalog));
        self
    }
}

/// How a version of a zone reached a secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XfrKind {
    /// The whole zone (RFC 5936).
    Axfr,
    /// The differences (RFC 1995).
    Ixfr,
}

/// One completed incoming transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// AXFR or IXFR.
    pub kind: XfrKind,
    /// The serial it brought.
    pub serial: u32,
}

/// A running secondary; killed on drop.
#[derive(Debug)]
pub struct Secondary {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    peer: Peer,
    addr: SocketAddr,
    /// named's rndc port.
    control_port: Option<u16>,
    config: SecondaryConfig,
}

impl Secondary {
    /// Starts `peer` as a secondary as `config` says, on 127.0.0.1.
    pub fn start(peer: Peer, config: &SecondaryConfig) -> Result<Self> {
        Self::start_announced(peer, config, |_| Ok(()))
    }

    /// [`Secondary::start`], calling `announce` with the address it will
    /// serve on before it starts: an operator configures the primary
    /// before the secondary, whose first refresh then succeeds (named,
    /// whose first refresh fails, waits minutes before the next).
    pub fn start_announced(
        peer: Peer,
        config: &SecondaryConfig,
        mut announce: impl FnMut(SocketAddr) -> Result<()>,
    ) -> Result<Self> {
        ensure!(
            config.catalog.is_none() || peer.follows_catalogs(),
            "{peer} cannot follow a catalog zone (NSD 4.6 predates RFC 9432)"
        );
        let program = require_program(peer.program(), peer.package())?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&program, peer, config, &mut announce) {
                Ok(secondary) => return Ok(secondary),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("{peer} never started"))
            .context(format!("starting {peer} as a secondary ({START_ATTEMPTS} attempts)")))
    }

    fn try_start(
        program: &Path,
        peer: Peer,
        config: &SecondaryConfig,
        announce: &mut impl FnMut(SocketAddr) -> Result<()>,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix(&format!("sixgate-e2e-{peer}-")).tempdir()?;
        let port = free_port_pair()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        announce(addr)?;
        let mut command = Command::new(program);
        let mut control_port = None;
        let conf = match peer {
            Peer::Knot => {
                let conf = write_knot(dir.path(), addr, config)?;
                command.arg("-c").arg(&conf);
                conf
            }
            Peer::Bind => {
                let rndc = free_tcp_port()?;
                control_port = Some(rndc);
                let conf = write_named(dir.path(), addr, rndc, config)?;
                // -f: foreground, logging as configured (-g would ignore the
                // configuration's xfer-in channel, and with it the lines that
                // tell IXFR from AXFR). -n 1: one worker thread.
                command.arg("-c").arg(&conf).args(["-f", "-n", "1"]);
                conf
            }
            Peer::Nsd => {
                let conf = write_nsd(dir.path(), addr, config)?;
                // -d: foreground, log to stderr.
                command.arg("-d").arg("-c").arg(&conf);
                conf
            }
        };
        command.stdout(Stdio::null());
        let mut child = ChildGuard::spawn(peer.program(), &mut command)?;
        let client = UdpClient::new(addr)?;
        let started = match peer {
            Peer::Knot => "server started",
            Peer::Bind => "general: notice: running",
            Peer::Nsd => "nsd started",
        };
        let ready = wait_until(&format!("{peer} to answer on {addr}"), START_DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!(
                    "{peer} exited with {status}; log {}:\n{}",
                    child.stderr_path().display(),
                    child.stderr_tail(20)
                );
            }
            let log = child.log_text();
            // Another process took a port between the check and the bind:
            // this instance would answer nothing, or another server would.
            if let Some(line) = log.lines().find(|l| l.to_ascii_lowercase().contains("address in use")) {
                return Ok(Some(Err(anyhow::anyhow!("{peer}: a port was taken: {line}"))));
            }
            if !log.contains(started) {
                return Ok(None);
            }
            // Any answer at all (REFUSED for a zone it does not have) means
            // it listens.
            let query = QuerySpec::parse(".", 6)?.with_id(0x5ec0).encode()?;
            if client.exchange(&query, Duration::from_millis(200), 1)?.is_none() {
                return Ok(None);
            }
            // named logs its command channel before its logging is set up,
            // so whether rndc works is asked of rndc.
            if let Some(port) = control_port {
                let status = rndc(dir.path(), port, &["status"])?.output()?;
                if !status.status.success() {
                    return Ok(None);
                }
            }
            Ok(Some(Ok(())))
        });
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(error) => {
                return Err(error.context(format!(
                    "{peer} on {addr}, config {}; log:\n{}",
                    conf.display(),
                    child.stderr_tail(20)
                )));
            }
        }
        Ok(Self { child, dir, peer, addr, control_port, config: config.clone() })
    }

    /// Which server this is.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The address it answers on, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &SecondaryConfig {
        &self.config
    }

    /// Its temporary directory (configuration, state, logs of its own).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log so far (stderr).
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// The serial of `zone` it serves, or `None` if it does not answer for
    /// the zone with authority (not configured, not loaded yet, dropped).
    pub fn serial(&self, zone: &str) -> Result<Option<u32>> {
        soa_serial(self.addr, zone)
    }

    /// Waits until it answers `serial` for `zone` (SOA, AA); the error
    /// quotes what it answered last and its log.
    pub fn wait_for_serial(&self, zone: &str, serial: u32) -> Result<()> {
        let mut last = None;
        let waited =
            wait_until(&format!("{} to serve {zone} at serial {serial}", self.peer), FOLLOW_DEADLINE, || {
                last = self.serial(zone)?;
                Ok((last == Some(serial)).then_some(()))
            });
        waited.with_context(|| {
            format!(
                "{} on {} last answered serial {last:?}; log:\n{}",
                self.peer,
                self.addr,
                self.child.stderr_tail(40)
            )
        })
    }

    /// Waits until it no longer answers for `zone` with authority.
    pub fn wait_for_absent(&self, zone: &str) -> Result<()> {
        let waited = wait_until(&format!("{} to drop {zone}", self.peer), FOLLOW_DEADLINE, || {
            Ok(self.serial(zone)?.is_none().then_some(()))
        });
        waited
            .with_context(|| format!("{} on {}; log:\n{}", self.peer, self.addr, self.child.stderr_tail(40)))
    }

    /// How the newest version of `zone` it logged arrived, or `None` if no
    /// transfer of the zone completed yet. For nsd, see the module
    /// documentation: the kind is that of every version since the one
    /// before the newest.
    pub fn last_transfer(&self, zone: &str) -> Result<Option<Transfer>> {
        let log = self.log_text();
        match self.peer {
            Peer::Knot => Ok(knot_transfers(&log, zone).last().copied()),
            Peer::Bind => Ok(named_transfers(&log, zone).last().copied()),
            Peer::Nsd => {
                let Some((from, to)) = nsd_updates(&log, zone).last().copied() else {
                    return Ok(None);
                };
                let kind = match from {
                    // Nothing to take differences from.
                    0 => XfrKind::Axfr,
                    _ => ixfr_answer_kind(self.addr, zone, from)?,
                };
                Ok(Some(Transfer { kind, serial: to }))
            }
        }
    }

    /// Its copy of `zone` in zone file format, read back by AXFR (kdig),
    /// for a zone checker (`kzonecheck`) or a comparison with the
    /// primary's.
    pub fn zone_text(&self, zone: &str) -> Result<String> {
        let kdig = require_program("kdig", "knot-dnsutils")?;
        let zone = absolute(zone);
        let output = Command::new(kdig)
            .args([
                &format!("@{}", self.addr.ip()),
                "-p",
                &self.addr.port().to_string(),
                "+time=10",
                "+noall",
                "+answer",
                &zone,
                "AXFR",
            ])
            .output()
            .context("running kdig AXFR")?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        ensure!(
            output.status.success() && text.lines().any(|l| l.split_whitespace().nth(3) == Some("SOA")),
            "kdig AXFR of {zone} from {} at {} failed:\n{text}{}",
            self.peer,
            self.addr,
            String::from_utf8_lossy(&output.stderr)
        );
        // AXFR repeats the SOA at its end (RFC 5936 §2.2); a zone file
        // has it once.
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() > 1 && lines.last().and_then(|l| l.split_whitespace().nth(3)) == Some("SOA") {
            lines.pop();
        }
        Ok(lines.join("\n") + "\n")
    }

    /// The log lines saying that a refresh or a transfer of `zone` failed
    /// (a TSIG failure, a refused transfer).
    pub fn failures(&self, zone: &str) -> Vec<String> {
        let log = self.log_text();
        let lower = zone_key(zone);
        let bare = lower.strip_suffix('.').unwrap_or(&lower).to_owned();
        log.lines()
            .filter(|line| {
                let l = line.to_ascii_lowercase();
                match self.peer {
                    Peer::Knot => {
                        l.contains(&format!("[{lower}]"))
                            && l.contains("failed")
                            && (l.contains("refresh") || l.contains("xfr"))
                    }
                    Peer::Bind => {
                        (l.contains(&format!("zone {bare}/in: refresh: failure"))
                            || (l.contains(&format!("'{bare}/in'")) && l.contains("failed")))
                            && !l.contains("debug")
                    }
                    Peer::Nsd => {
                        l.contains(&format!("zone {lower}"))
                            && (l.contains("bad transfer")
                                || l.contains("tsig error")
                                || l.contains("error code"))
                    }
                }
            })
            .map(str::to_owned)
            .collect()
    }

    /// Makes it ask the primary for `zone` now (SOA query, and a transfer
    /// if the primary has a newer serial), as its operator would.
    pub fn refresh(&self, zone: &str) -> Result<()> {
        let zone = absolute(zone);
        let mut command = match self.peer {
            Peer::Knot => {
                let mut c = Command::new(require_program("knotc", "knot")?);
                c.arg("-s").arg(self.dir().join("run/knot.sock")).args(["zone-refresh", &zone]);
                c
            }
            Peer::Bind => {
                let port = self.control_port.context("named without a control port")?;
                rndc(self.dir(), port, &["refresh", &zone])?
            }
            Peer::Nsd => {
                let mut c = Command::new(require_program("nsd-control", "nsd")?);
                c.arg("-c").arg(self.dir().join("nsd.conf")).args(["transfer", &zone]);
                c
            }
        };
        let output = command.output().with_context(|| format!("running {command:?}"))?;
        ensure!(
            output.status.success(),
            "{command:?} exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        // nsd -d runs as three processes (xfrd, main, a server): the one
        // started here is xfrd, and the others only notice its death. Stop
        // it in order, then make sure of the main process by its pid file.
        if self.peer == Peer::Nsd {
            let main = fs::read_to_string(self.dir().join("nsd.pid"))
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok());
            let _ = self.child.terminate(Duration::from_secs(10));
            if let Some(pid) = main {
                let pid = nix::unistd::Pid::from_raw(pid);
                let gone = wait_until("nsd's main process to exit", Duration::from_secs(10), || {
                    Ok(nix::sys::signal::kill(pid, None).is_err().then_some(()))
                });
                if gone.is_err() {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
}

/// `rndc ARGS` for the named whose directory is `dir`, on its control
/// port, with its own key (and no system rndc.conf read).
fn rndc(dir: &Path, port: u16, args: &[&str]) -> Result<Command> {
    let mut c = Command::new(require_program("rndc", "bind9-utils")?);
    c.arg("-k").arg(dir.join("rndc.key")).args(["-s", "127.0.0.1", "-p", &port.to_string()]).args(args);
    Ok(c)
}

/// `name` with a trailing dot.
fn absolute(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

/// `zone` lowercased with its trailing dot, as compared in logs.
fn zone_key(zone: &str) -> String {
    absolute(zone).to_ascii_lowercase()
}

/// The SOA serial `server` answers for `zone` with authority (AA, NOERROR),
/// or `None`.
pub fn soa_serial(server: SocketAddr, zone: &str) -> Result<Option<u32>> {
    let client = UdpClient::new(server)?;
    let query = QuerySpec::parse(&absolute(zone), 6)?.with_id(0x50a1).encode()?;
    let Some(bytes) = client.exchange(&query, Duration::from_millis(300), 2)? else {
        return Ok(None);
    };
    let response = Response::parse(&bytes)?;
    if !response.aa() || response.rcode() != 0 {
        return Ok(None);
    }
    Ok(response.answers_of(6).next().and_then(|soa| soa_rdata_serial(&soa.rdata)))
}

/// The serial of an SOA RDATA: the first of the five 32-bit numbers that
/// end it (RFC 1035 §3.3.13).
fn soa_rdata_serial(rdata: &[u8]) -> Option<u32> {
    let at = rdata.len().checked_sub(20)?;
    let bytes = rdata.get(at..at + 4)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// The "serial A -> B" of a knotd or "serial N" of a named log line.
fn serial_after(line: &str, marker: &str) -> Option<u32> {
    let rest = line.rsplit_once(marker)?.1;
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// knotd's completed incoming transfers of `zone`, oldest first.
fn knot_transfers(log: &str, zone: &str) -> Vec<Transfer> {
    let tag = format!("[{}]", zone_key(zone));
    let mut kind = None;
    let mut out = Vec::new();
    for line in log.lines().filter(|l| l.to_ascii_lowercase().contains(&tag)) {
        // An IXFR that falls back logs "IXFR, incoming, ..., fallback to
        // AXFR" and then the AXFR's own lines: only "finished" counts.
        if line.contains(", incoming, ") && line.contains("finished") {
            if line.contains("IXFR, incoming") {
                kind = Some(XfrKind::Ixfr);
            } else if line.contains("AXFR, incoming") {
                kind = Some(XfrKind::Axfr);
            }
        } else if line.contains("refresh, ")
            && line.contains("zone updated")
            && let (Some(k), Some(serial)) = (kind.take(), serial_after(line, "-> "))
        {
            out.push(Transfer { kind: k, serial });
        }
    }
    out
}

/// named's completed incoming transfers of `zone`, oldest first.
fn named_transfers(log: &str, zone: &str) -> Vec<Transfer> {
    let key = zone_key(zone);
    let tag = format!("'{}/in'", key.strip_suffix('.').unwrap_or(&key));
    let mut kind = None;
    let mut out = Vec::new();
    for line in log.lines().filter(|l| l.to_ascii_lowercase().contains(&tag)) {
        if line.contains("got incremental response") {
            kind = Some(XfrKind::Ixfr);
        } else if line.contains("got nonincremental response") {
            kind = Some(XfrKind::Axfr);
        } else if line.contains("Transfer completed")
            && let (Some(k), Some(serial)) = (kind.take(), serial_after(line, "(serial "))
        {
            out.push(Transfer { kind: k, serial });
        }
    }
    out
}

/// nsd's `zone Z. serial A is updated to B` lines as (A, B), oldest first.
fn nsd_updates(log: &str, zone: &str) -> Vec<(u32, u32)> {
    let prefix = format!("zone {} serial ", zone_key(zone));
    log.lines()
        .filter_map(|line| {
            let lower = line.to_ascii_lowercase();
            let rest = lower.split_once(&prefix)?.1;
            let (from, to) = rest.split_once(" is updated to ")?;
            Some((from.trim().parse().ok()?, to.trim().parse().ok()?))
        })
        .collect()
}

/// Asks `server` for an IXFR of `zone` from `from` (kdig, TCP): IXFR if
/// the answer is in the incremental form (a second SOA right after the
/// first, RFC 1995 §4), AXFR if it is the whole zone.
fn ixfr_answer_kind(server: SocketAddr, zone: &str, from: u32) -> Result<XfrKind> {
    let kdig = require_program("kdig", "knot-dnsutils")?;
    let output = Command::new(kdig)
        .args([
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
            "+time=5",
            "+noall",
            "+answer",
            &absolute(zone),
            &format!("IXFR={from}"),
        ])
        .output()
        .context("running kdig IXFR")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "kdig IXFR={from} of {zone} at {server} failed:\n{text}");
    let types: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(3)).collect();
    match types.as_slice() {
        ["SOA", "SOA", ..] => Ok(XfrKind::Ixfr),
        ["SOA", _, ..] => Ok(XfrKind::Axfr),
        _ => bail!("kdig IXFR={from} of {zone} at {server}: no transfer in\n{text}"),
    }
}

/// knotd as a secondary: the catalog interpreted with one template for its
/// members (the first, which Knot applies to a member whose group names no
/// template), static zones from the default template.
fn write_knot(dir: &Path, addr: SocketAddr, config: &SecondaryConfig) -> Result<PathBuf> {
    let run = dir.join("run");
    let storage = dir.join("storage");
    fs::create_dir_all(&run)?;
    fs::create_dir_all(&storage)?;
    let primary = config.primary;
    let mut text = crate::knot::conf_head(&run, &storage, &[addr], 1);
    let key_ref = match &config.key {
        Some(key) => {
            writeln!(
                text,
                "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
                key.name, key.algorithm, key.secret
            )?;
            format!("\n    key: {}", key.name)
        }
        None => String::new(),
    };
    write!(
        text,
        r#"remote:
  - id: primary
    address: {pip}@{pport}{key_ref}

acl:
  - id: local_transfer
    address: 127.0.0.1
    action: transfer
  - id: notify_unsigned
    address: {notify}
    action: notify
"#,
        pip = primary.ip(),
        pport = primary.port(),
        notify = config.notify_from,
    )?;
    if let Some(key) = &config.key {
        write!(
            text,
            "  - id: notify_signed\n    address: {}\n    key: {}\n    action: notify\n",
            config.notify_from, key.name
        )?;
    }
    // local_transfer: the lab reads the secondary's copy back
    // (Secondary::zone_text).
    let acls = if config.key.is_some() {
        "[local_transfer, notify_unsigned, notify_signed]"
    } else {
        "[local_transfer, notify_unsigned]"
    };
    // zonefile-sync -1: nothing written back as zone files; the journal
    // keeps the zone, and Knot asks for IXFR from what it has.
    let template = |id: &str| {
        format!(
            "  - id: {id}\n    storage: \"{}\"\n    master: primary\n    acl: {acls}\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: changes\n",
            storage.display()
        )
    };
    write!(text, "\ntemplate:\n{}{}\nzone:\n", template("default"), template("member"))?;
    if let Some(catalog) = &config.catalog {
        write!(
            text,
            "  - domain: \"{catalog}\"\n    catalog-role: interpret\n    catalog-template: member\n"
        )?;
    }
    for zone in &config.zones {
        writeln!(text, "  - domain: \"{zone}\"")?;
    }
    let conf = dir.join("knot.conf");
    fs::write(&conf, text)?;
    Ok(conf)
}

/// named as a secondary: every file it writes named into `dir`, no
/// recursion, no validation (no trust anchor file read), no NOTIFY of its
/// own, and the xfer-in category at debug 3 for the IXFR/AXFR lines.
fn write_named(dir: &Path, addr: SocketAddr, rndc_port: u16, config: &SecondaryConfig) -> Result<PathBuf> {
    let d = dir.display();
    let rndc_key = dir.join("rndc.key");
    let rndc_secret = TransferKey::random("rndc-key")?;
    fs::write(
        &rndc_key,
        format!("key \"rndc-key\" {{ algorithm hmac-sha256; secret \"{}\"; }};\n", rndc_secret.secret),
    )?;
    let mut text = format!("include \"{}\";\n", rndc_key.display());
    writeln!(
        text,
        "controls {{ inet 127.0.0.1 port {rndc_port} allow {{ 127.0.0.1; }} keys {{ \"rndc-key\"; }}; }};"
    )?;
    let key_clause = match &config.key {
        Some(key) => {
            writeln!(
                text,
                "key \"{}\" {{ algorithm {}; secret \"{}\"; }};",
                key.name, key.algorithm, key.secret
            )?;
            format!(" key \"{}\"", key.name)
        }
        None => String::new(),
    };
    let primaries = format!("{{ {} port {}{key_clause}; }}", config.primary.ip(), config.primary.port());
    write!(
        text,
        r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    lock-file "{d}/named.lock";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    dump-file "{d}/named_dump.db";
    statistics-file "{d}/named.stats";
    memstatistics-file "{d}/named.memstats";
    secroots-file "{d}/named.secroots";
    recursing-file "{d}/named.recursing";
    bindkeys-file "{d}/bind.keys";
    listen-on port {port} {{ {ip}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-notify {{ {notify}; }};
    allow-transfer {{ 127.0.0.1; }};
    version none;
    hostname none;
    server-id none;
"#,
        port = addr.port(),
        ip = addr.ip(),
        notify = config.notify_from,
    )?;
    if let Some(catalog) = &config.catalog {
        writeln!(
            text,
            "    catalog-zones {{ zone \"{catalog}\" default-primaries {primaries} in-memory yes; }};"
        )?;
    }
    text.push_str("};\n");
    text.push_str(
        r#"logging {
    channel to_stderr { stderr; severity info; print-time yes; print-category yes; print-severity yes; };
    channel xfer_debug { stderr; severity debug 3; print-time yes; print-category yes; print-severity yes; };
    category default { to_stderr; };
    category xfer-in { xfer_debug; };
    category lame-servers { null; };
};
"#,
    );
    let zones = config.catalog.iter().chain(&config.zones);
    for (i, zone) in zones.enumerate() {
        writeln!(text, "zone \"{zone}\" {{ type secondary; file \"zone{i}.db\"; primaries {primaries}; }};")?;
    }
    let conf = dir.join("named.conf");
    fs::write(&conf, text)?;
    Ok(conf)
}

/// nsd as a secondary of static zones: no database, every state file in
/// `dir`, no privilege drop or chroot, control on a unix socket in `dir`,
/// and what it receives by IXFR kept (`store-ixfr`) and served back to
/// 127.0.0.1, for [`Secondary::last_transfer`].
fn write_nsd(dir: &Path, addr: SocketAddr, config: &SecondaryConfig) -> Result<PathBuf> {
    let d = dir.display();
    let mut text = format!(
        r#"server:
    ip-address: {ip}@{port}
    port: {port}
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    server-count: 1
    verbosity: 2
    hide-version: yes
    hide-identity: yes
    reuseport: no

remote-control:
    control-enable: yes
    control-interface: "{d}/nsd.ctl"

"#,
        ip = addr.ip(),
        port = addr.port(),
    );
    let key_name = match &config.key {
        Some(key) => {
            writeln!(
                text,
                "key:\n    name: \"{}\"\n    algorithm: {}\n    secret: \"{}\"\n",
                key.name, key.algorithm, key.secret
            )?;
            key.name.clone()
        }
        None => "NOKEY".to_owned(),
    };
    let primary = format!("{}@{}", config.primary.ip(), config.primary.port());
    // The pattern of docs/secondaries.md, plus what the lab needs to
    // tell IXFR from AXFR.
    write!(
        text,
        r#"pattern:
    name: "primary"
    zonefile: "%s.zone"
    request-xfr: {primary} {key_name}
    allow-notify: {notify} NOKEY
    allow-notify: {notify} {key_name}
    store-ixfr: yes
    provide-xfr: 127.0.0.1 NOKEY

"#,
        notify = config.notify_from,
    )?;
    for zone in &config.zones {
        write!(
            text,
            "zone:
    name: \"{zone}\"
    include-pattern: \"primary\"

"
        )?;
    }
    let conf = dir.join("nsd.conf");
    fs::write(&conf, text)?;
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knotd_log_lines_give_the_kind_and_serial_of_each_transfer() {
        let log = "\
info: [A.lab.] AXFR, incoming, remote 127.0.0.1@5300, started
info: [a.lab.] AXFR, incoming, remote 127.0.0.1@5300, finished, 0.00 seconds, 1 messages, 177 bytes
info: [a.lab.] refresh, remote 127.0.0.1@5300, zone updated, 0.00 seconds, serial none -> 1, expires in 86400 seconds
info: [b.lab.] IXFR, incoming, remote 127.0.0.1@5300, finished, 0.00 seconds, 1 messages, 605 bytes
info: [a.lab.] IXFR, incoming, remote 127.0.0.1@5300, started
info: [a.lab.] IXFR, incoming, remote 127.0.0.1@5300, finished, 0.00 seconds, 1 messages, 605 bytes
info: [a.lab.] refresh, remote 127.0.0.1@5300, zone updated, 0.01 seconds, serial 1 -> 5, expires in 86400 seconds
";
        let got = knot_transfers(log, "a.lab");
        assert_eq!(
            got,
            [Transfer { kind: XfrKind::Axfr, serial: 1 }, Transfer { kind: XfrKind::Ixfr, serial: 5 }]
        );
    }

    #[test]
    fn named_log_lines_give_the_kind_and_serial_of_each_transfer() {
        let log = "\
xfer-in: debug 3: transfer of 'a.lab/IN' from 127.0.0.1#5300: got nonincremental response
xfer-in: info: transfer of 'a.lab/IN' from 127.0.0.1#5300: Transfer completed: 1 messages, 5 records, 234 bytes, 0.004 secs (58500 bytes/sec) (serial 3)
xfer-in: debug 3: transfer of 'a.lab/IN' from 127.0.0.1#5300: requesting IXFR for serial 3
xfer-in: debug 3: transfer of 'a.lab/IN' from 127.0.0.1#5300: got incremental response
xfer-in: info: transfer of 'a.lab/IN' from 127.0.0.1#5300: Transfer completed: 1 messages, 6 records, 302 bytes, 0.001 secs (302000 bytes/sec) (serial 4)
";
        assert_eq!(
            named_transfers(log, "a.lab."),
            [Transfer { kind: XfrKind::Axfr, serial: 3 }, Transfer { kind: XfrKind::Ixfr, serial: 4 }]
        );
        assert!(named_transfers(log, "b.lab.").is_empty());
    }

    #[test]
    fn nsd_update_lines_give_old_and_new_serials() {
        let log = "\
[2026-12-07 12:55:20.596] nsd[31899]: info: zone a.lab. serial 0 is updated to 5
[2026-12-07 12:55:22.474] nsd[31899]: info: zone a.lab. serial 5 is updated to 6
";
        assert_eq!(nsd_updates(log, "a.lab"), [(0, 5), (5, 6)]);
    }

    #[test]
    fn a_transfer_key_reads_from_its_cli_form_and_back() {
        let key = TransferKey::random("xfr").unwrap();
        assert_eq!(key.name, "xfr.");
        let back = TransferKey::parse(&key.to_text()).unwrap();
        assert_eq!(back, key);
        assert_ne!(key.wrong().unwrap().secret, key.secret);
        assert!(TransferKey::parse("hmac-sha256:k.").is_err());
        assert!(TransferKey::parse("hmac-sha256:k.:not base64!").is_err());
    }

    #[test]
    fn an_soa_rdata_gives_its_serial_and_a_short_one_nothing() {
        let mut rdata = vec![0u8, 0];
        for v in [7u32, 1, 2, 3, 4] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(soa_rdata_serial(&rdata), Some(7));
        assert_eq!(soa_rdata_serial(&rdata[..10]), None);
    }
}
