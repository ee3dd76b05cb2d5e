//! A private validating unbound, the resolver that judges DNSSEC answers.
//!
//! [`Unbound::start`] runs `unbound -d` on a free 127.0.0.1 port with a
//! configuration written into a temporary directory: the zones of the test
//! as stub zones (each pointing at the loopback address of sixgate or knotd
//! that serves it), the test's trust anchors, and optionally a
//! `val-override-date` so signatures are judged at a simulated time.
//! [`Unbound::query`] asks it with kdig (DO bit set), and the `expect_*`
//! helpers check the three outcomes a validator knows (RFC 4033 §5): secure
//! (AD set), insecure (no AD) and bogus (SERVFAIL, with the reason unbound
//! logs at `val-log-level: 2`).
//!
//! # Nothing leaves loopback
//!
//! A resolver resolves; left alone it would prime the root from its built-in
//! hints and chase any name it meets (a CNAME target, an NS name without
//! glue) on the internet. Three settings keep it in:
//! - `outgoing-interface: 127.0.0.1` binds every upstream socket to the
//!   loopback address. Linux refuses to send from a loopback source to any
//!   other destination (EINVAL), so this holds even if unbound picked a
//!   public target.
//! - `do-not-query-address` lists every IPv4 block except 127.0.0.0/8, and
//!   `::/0` with `do-ip6: no`, so unbound does not pick one: the built-in
//!   root servers are never queried, a name outside the stub zones fails at
//!   once with SERVFAIL instead of waiting for timeouts.
//!   `do-not-query-localhost: no` lets it query the stubs at all.
//! - `local-zone: "." refuse` answers client questions outside the stub
//!   zones with REFUSED without resolving them (each stub zone is
//!   `transparent`, which also overrides unbound's built-in empty `test.`
//!   zone of RFC 6761). The built-in empty zones below other names keep
//!   answering NXDOMAIN locally.
//!
//! There is no `root-hints` file (it would only replace the built-in hints,
//! which are unreachable anyway), `trust-anchor-signaling` and
//! `root-key-sentinel` are off so no RFC 8145 queries are made, and the
//! remote control listens on a Unix socket in the temporary directory, not on
//! a port. A test can check all of this with `verbosity: 3`, where unbound
//! logs every `sending to target:` line.
//!
//! # Other choices
//!
//! - `qname-minimisation: no`: the server under test sees the whole question,
//!   so each query of a test is exactly one question to it.
//! - `aggressive-nsec: no` by default ([`UnboundConfig::aggressive_nsec`]):
//!   every NXDOMAIN and NODATA answer comes from the server, not synthesized
//!   from NSEC records cached by an earlier query (RFC 8198).
//! - `harden-referral-path: yes`: NS RRsets on the way down are validated
//!   too, which costs some extra queries to the stubs and nothing else.
//! - One thread, small caches, `so-reuseport: no` so the start fails (and is
//!   retried on another port) if some other process already has the port.
//! - Signatures are judged with unbound's default clock skew: 10 % of the
//!   signature's lifetime, at least one hour, at most one day
//!   (`val-sig-skew-min`/`-max`).
//!
//! # A clean cache
//!
//! [`Unbound::flush`] is `unbound-control reload`: it drops every cache (the
//! message and RRset caches, the key cache, bogus and negative entries, the
//! infrastructure cache) and rereads the configuration, which is also how
//! [`Unbound::set_override_date`] moves the validation clock. The listening
//! sockets stay open across a reload. `unbound-control status` afterwards
//! returns only once the reload is done, since the control socket is served
//! by the same event loop.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::kdig::{Dig, kdig};
use crate::knot::free_port_pair;
use crate::process::{ChildGuard, require_program, wait_until};

/// How long a start (or a reload) may take before it counts as failed.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long an `unbound-control` command may take.
const CONTROL_DEADLINE: Duration = Duration::from_secs(30);

/// How many ports to try before giving up.
const START_ATTEMPTS: usize = 5;

/// The IPv4 blocks that together are everything except 127.0.0.0/8: the
/// `do-not-query-address` list.
const NOT_LOOPBACK_V4: [&str; 8] = [
    "0.0.0.0/2",
    "64.0.0.0/3",
    "96.0.0.0/4",
    "112.0.0.0/5",
    "120.0.0.0/6",
    "124.0.0.0/7",
    "126.0.0.0/8",
    "128.0.0.0/1",
];

/// What the private unbound resolves and trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnboundConfig {
    /// Stub zones: zone name (absolute, trailing dot) → the authoritative
    /// servers to ask for it, each on 127.0.0.0/8 (UDP and TCP). The zone
    /// under test, its parent up to the trust anchor, and every child zone a
    /// test queries (unbound cannot follow a referral to a port other than
    /// 53, so delegations are reached as stubs of their own).
    pub stubs: BTreeMap<String, Vec<SocketAddr>>,
    /// Trust anchors: DS or DNSKEY records in presentation format, one per
    /// entry, written to a `trust-anchor-file`.
    pub trust_anchors: Vec<String>,
    /// `val-override-date`: judge signature validity at this time (Unix
    /// seconds) instead of the clock.
    pub override_date: Option<u64>,
    /// `aggressive-nsec` (RFC 8198).
    pub aggressive_nsec: bool,
    /// unbound's `verbosity` (0–5): 1 logs operational messages, 3 every
    /// query sent upstream.
    pub verbosity: u8,
}

impl Default for UnboundConfig {
    fn default() -> Self {
        Self {
            stubs: BTreeMap::new(),
            trust_anchors: Vec::new(),
            override_date: None,
            aggressive_nsec: false,
            verbosity: 1,
        }
    }
}

impl UnboundConfig {
    /// No stubs, no trust anchors, the real clock, `verbosity: 1`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `server` as an authoritative server of `zone`.
    pub fn stub(mut self, zone: &str, server: SocketAddr) -> Self {
        self.stubs.entry(absolute(zone)).or_default().push(server);
        self
    }

    /// Adds a trust anchor (a DS or DNSKEY record, presentation format).
    pub fn trust_anchor(mut self, record: &str) -> Self {
        self.trust_anchors.push(record.trim().to_owned());
        self
    }

    /// Sets `val-override-date` to `unix` seconds.
    pub fn override_date(mut self, unix: u64) -> Self {
        self.override_date = Some(unix);
        self
    }

    /// Sets `verbosity`.
    pub fn verbosity(mut self, verbosity: u8) -> Self {
        self.verbosity = verbosity;
        self
    }

    /// Checks what unbound would only half enforce: every stub on loopback
    /// IPv4, at least one trust anchor.
    fn validate(&self) -> Result<()> {
        for (zone, servers) in &self.stubs {
            for server in servers {
                let loopback_v4 = matches!(server, SocketAddr::V4(v4) if v4.ip().is_loopback());
                if !loopback_v4 {
                    bail!(
                        "stub {server} of {zone} is not on 127.0.0.0/8; unbound here only queries loopback"
                    );
                }
            }
        }
        if self.trust_anchors.is_empty() {
            bail!("no trust anchor: nothing would ever validate");
        }
        Ok(())
    }

    /// The `unbound.conf` text for a server on `port`, with files in `dir`.
    fn render(&self, dir: &Path, port: u16, identity: &str) -> String {
        let dir = dir.display();
        let mut text = format!(
            r#"server:
    verbosity: {verbosity}
    interface: 127.0.0.1
    port: {port}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    so-reuseport: no
    num-threads: 1
    outgoing-range: 64
    num-queries-per-thread: 32
    msg-cache-size: 4m
    rrset-cache-size: 4m
    key-cache-size: 4m
    chroot: ""
    username: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    logfile: ""
    use-syslog: no
    log-time-ascii: yes
    log-servfail: yes
    hide-identity: no
    identity: "{identity}"
    hide-version: yes
    module-config: "validator iterator"
    trust-anchor-file: "{dir}/anchors"
    trust-anchor-signaling: no
    root-key-sentinel: no
    val-log-level: 2
    val-override-date: "{override_date}"
    aggressive-nsec: {aggressive_nsec}
    qname-minimisation: no
    harden-referral-path: yes
    do-not-query-localhost: no
    outgoing-interface: 127.0.0.1
"#,
            verbosity = self.verbosity,
            override_date = self.override_date.map_or_else(|| "0".to_owned(), rrsig_time),
            aggressive_nsec = if self.aggressive_nsec { "yes" } else { "no" },
        );
        for block in NOT_LOOPBACK_V4.iter().chain(&["::/0"]) {
            let _ = writeln!(text, "    do-not-query-address: {block}");
        }
        if !self.stubs.contains_key(".") {
            text.push_str("    local-zone: \".\" refuse\n");
        }
        for zone in self.stubs.keys() {
            let _ = writeln!(text, "    local-zone: \"{zone}\" transparent");
        }
        let _ = write!(
            text,
            r#"
remote-control:
    control-enable: yes
    control-interface: "{dir}/control.sock"
    control-use-cert: no
"#
        );
        for (zone, servers) in &self.stubs {
            let _ = write!(text, "\nstub-zone:\n    name: \"{zone}\"\n");
            for server in servers {
                let _ = writeln!(text, "    stub-addr: {}@{}", server.ip(), server.port());
            }
        }
        text
    }
}

/// A running private unbound; killed on drop.
#[derive(Debug)]
pub struct Unbound {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    identity: String,
    config: UnboundConfig,
    control: PathBuf,
}

impl Unbound {
    /// Starts unbound on 127.0.0.1 with `config`, once it answers queries and
    /// its remote control.
    pub fn start(config: UnboundConfig) -> Result<Self> {
        let unbound = require_program("unbound", "unbound")?;
        let checkconf = require_program("unbound-checkconf", "unbound")?;
        let control = require_program("unbound-control", "unbound")?;
        require_program("kdig", "knot-dnsutils")?;
        config.validate()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&unbound, &checkconf, &control, &config) {
                Ok(started) => return Ok(started),
                Err(error) if error.is::<ConfigError>() => return Err(error),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("unbound never started"))
            .context(format!("starting unbound ({START_ATTEMPTS} attempts)")))
    }

    fn try_start(unbound: &Path, checkconf: &Path, control: &Path, config: &UnboundConfig) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-unbound-").tempdir()?;
        let port = free_port_pair()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // A name no other server on the port would give as its identity, so
        // the readiness probe cannot be answered by whoever took the port.
        let identity = format!("sixgate-e2e-unbound-{}-{port}", std::process::id());
        let path = write_files(dir.path(), port, &identity, config)?;
        let check = Command::new(checkconf).arg(&path).output()?;
        if !check.status.success() {
            return Err(anyhow::Error::new(ConfigError(format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            ))))
            .with_context(|| format!("unbound-checkconf {}", path.display()));
        }
        let mut command = Command::new(unbound);
        command.arg("-d").arg("-c").arg(&path).stdout(Stdio::null());
        let child = ChildGuard::spawn("unbound", &mut command)?;
        let mut started =
            Self { child, dir, addr, identity, config: config.clone(), control: control.to_path_buf() };
        started.wait_ready().with_context(|| format!("unbound on port {port}, config {}", path.display()))?;
        Ok(started)
    }

    /// The address unbound answers on, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &UnboundConfig {
        &self.config
    }

    /// The temporary directory with `unbound.conf` and the trust anchors.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// Where the log is.
    pub fn log_path(&self) -> &Path {
        self.child.stderr_path()
    }

    /// Asks `name` `rtype` (type mnemonic) with kdig, DO bit set (so the
    /// answer carries RRSIG and NSEC records and the AD bit, RFC 3225), RD
    /// set, CD clear.
    pub fn query(&self, name: &str, rtype: &str) -> Result<Dig> {
        kdig(self.addr, &["+dnssec", name, rtype])
    }

    /// Asks `name` `rtype` and requires status `rcode` (`NOERROR`,
    /// `NXDOMAIN`) with the AD bit: a secure answer. On failure the error
    /// quotes the answer and unbound's validation log lines for the query.
    pub fn expect_secure(&self, name: &str, rtype: &str, rcode: &str) -> Result<Dig> {
        let mark = self.log_len();
        let dig = self.query(name, rtype)?;
        if dig.status == rcode && dig.ad() {
            return Ok(dig);
        }
        bail!(
            "expected a secure {rcode} (AD set) for {name} {rtype}, got {} with flags {:?}\n{dig}\n{}",
            dig.status,
            dig.flags,
            self.explain(mark)
        )
    }

    /// Asks `name` `rtype` and requires status `rcode` without the AD bit:
    /// an insecure answer (e.g. below a delegation without DS).
    pub fn expect_insecure(&self, name: &str, rtype: &str, rcode: &str) -> Result<Dig> {
        let mark = self.log_len();
        let dig = self.query(name, rtype)?;
        if dig.status == rcode && !dig.ad() {
            return Ok(dig);
        }
        bail!(
            "expected an insecure {rcode} (AD clear) for {name} {rtype}, got {} with flags {:?}\n{dig}\n{}",
            dig.status,
            dig.flags,
            self.explain(mark)
        )
    }

    /// Asks `name` `rtype` and requires a bogus answer: SERVFAIL, and a
    /// `validation failure <NAME ...>` line logged for this query. Returns
    /// that line, whose end is unbound's reason. A bogus answer is cached
    /// (`val-bogus-ttl`) and a cached one is not logged again, so ask again
    /// only after [`Unbound::flush`].
    pub fn expect_bogus(&self, name: &str, rtype: &str) -> Result<String> {
        let mark = self.log_len();
        let dig = self.query(name, rtype)?;
        if dig.status != "SERVFAIL" || dig.ad() {
            bail!(
                "expected a bogus answer (SERVFAIL) for {name} {rtype}, got {} with flags {:?}\n{dig}\n{}",
                dig.status,
                dig.flags,
                self.explain(mark)
            );
        }
        let wanted = format!("validation failure <{} ", absolute(name).to_ascii_lowercase());
        let found = wait_until("unbound to log the validation failure", Duration::from_secs(5), || {
            Ok(self
                .log_since(mark)
                .lines()
                .find(|l| l.to_ascii_lowercase().contains(&wanted))
                .map(str::to_owned))
        });
        found.with_context(|| {
            format!("SERVFAIL for {name} {rtype} without a validation failure\n{}", self.explain(mark))
        })
    }

    /// Every `validation failure` line logged so far.
    pub fn validation_failures(&self) -> Vec<String> {
        self.log_text().lines().filter(|l| l.contains("validation failure")).map(str::to_owned).collect()
    }

    /// Empties every cache (`unbound-control reload`), so the next queries
    /// go to the servers again and are validated afresh.
    pub fn flush(&mut self) -> Result<()> {
        self.reload()
    }

    /// Sets (or with `None` clears) `val-override-date` and reloads, which
    /// also empties every cache.
    pub fn set_override_date(&mut self, unix: Option<u64>) -> Result<()> {
        self.config.override_date = unix;
        write_files(self.dir.path(), self.addr.port(), &self.identity, &self.config)?;
        self.reload()
    }

    fn reload(&mut self) -> Result<()> {
        self.control(&["reload"])?;
        self.wait_ready().context("unbound after reload")
    }

    /// Runs `unbound-control -c CONF ARGS` and returns its output; fails on
    /// a non-zero exit.
    pub fn control(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.control);
        command.arg("-c").arg(self.dir.path().join("unbound.conf")).args(args);
        let mut child = ChildGuard::spawn_logged("unbound-control", &mut command)?;
        let status = child.wait_for_exit(CONTROL_DEADLINE)?;
        let output = child.log_text();
        if !status.success() {
            bail!("unbound-control {} exited with {status}:\n{output}", args.join(" "));
        }
        Ok(output)
    }

    /// Waits until unbound runs, answers `id.server CH TXT` with its own
    /// identity on the DNS port, and answers its remote control (which after
    /// a reload means the reload is done).
    fn wait_ready(&mut self) -> Result<()> {
        let identity = format!("\"{}\"", self.identity);
        wait_until("unbound to answer its control and id.server", START_DEADLINE, || {
            if let Some(status) = self.child.exit_status() {
                bail!(
                    "unbound exited with {status}; log {}:\n{}",
                    self.child.stderr_path().display(),
                    self.child.stderr_tail(20)
                );
            }
            let dig = kdig(self.addr, &["+time=1", "+retry=0", "id.server", "CH", "TXT"])?;
            if !dig.data("TXT").contains(&identity) {
                return Ok(None);
            }
            self.control(&["status"])?;
            Ok(Some(()))
        })
    }

    fn log_len(&self) -> u64 {
        fs::metadata(self.child.stderr_path()).map(|m| m.len()).unwrap_or(0)
    }

    fn log_since(&self, mark: u64) -> String {
        let text = fs::read(self.child.stderr_path()).unwrap_or_default();
        let start = usize::try_from(mark).unwrap_or(usize::MAX).min(text.len());
        String::from_utf8_lossy(text.get(start..).unwrap_or_default()).into_owned()
    }

    /// unbound's lines about validation and failures since `mark`, or its
    /// last lines if there are none.
    fn explain(&self, mark: u64) -> String {
        let since = self.log_since(mark);
        let relevant: Vec<&str> = since
            .lines()
            .filter(|l| l.contains("validation failure") || l.contains("SERVFAIL") || l.contains("error"))
            .collect();
        let path = self.child.stderr_path().display();
        if relevant.is_empty() {
            format!(
                "unbound log {path}, no validation failure logged; last lines:\n{}",
                self.child.stderr_tail(15)
            )
        } else {
            format!("unbound log {path}, validation lines since the query:\n{}", relevant.join("\n"))
        }
    }
}

/// A configuration unbound-checkconf rejected: retrying on another port
/// would not help.
#[derive(Debug)]
struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unbound rejects the configuration: {}", self.0.trim())
    }
}

impl std::error::Error for ConfigError {}

/// Writes `DIR/unbound.conf` and `DIR/anchors`; returns the configuration's
/// path.
fn write_files(dir: &Path, port: u16, identity: &str, config: &UnboundConfig) -> Result<PathBuf> {
    let anchors = dir.join("anchors");
    let mut text = config.trust_anchors.join("\n");
    text.push('\n');
    fs::write(&anchors, text).with_context(|| format!("writing {}", anchors.display()))?;
    let path = dir.join("unbound.conf");
    fs::write(&path, config.render(dir, port, identity))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `unix` seconds as an RRSIG-style UTC time, `YYYYMMDDHHMMSS` (RFC 4034
/// §3.2), the form of `val-override-date` that does not overflow unbound's
/// 32-bit parse of plain seconds in 2038.
pub fn rrsig_time(unix: u64) -> String {
    let days = unix / 86_400;
    let seconds = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}{month:02}{day:02}{:02}{:02}{:02}", seconds / 3600, seconds % 3600 / 60, seconds % 60)
}

/// The proleptic Gregorian date of `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrsig_time_is_utc_calendar_time() {
        assert_eq!(rrsig_time(0), "19700101000000");
        assert_eq!(rrsig_time(951_782_400), "20000229000000");
        assert_eq!(rrsig_time(1_709_210_096), "20240229123456");
        assert_eq!(rrsig_time(2_147_483_648), "20380119031408");
        assert_eq!(rrsig_time(4_102_444_799), "20991231235959");
    }

    #[test]
    fn config_keeps_unbound_on_loopback() {
        let server = SocketAddr::from(([127, 0, 0, 1], 5353));
        let config = UnboundConfig::new()
            .stub("child.parent.test", server)
            .stub("parent.test.", server)
            .trust_anchor("parent.test. IN DS 1 13 2 00");
        config.validate().unwrap();
        let text = config.render(Path::new("/tmp/x"), 5300, "me");
        for line in [
            "outgoing-interface: 127.0.0.1",
            "do-ip6: no",
            "do-not-query-localhost: no",
            "do-not-query-address: 128.0.0.0/1",
            "do-not-query-address: 126.0.0.0/8",
            "local-zone: \".\" refuse",
            "local-zone: \"parent.test.\" transparent",
            "val-override-date: \"0\"",
            "stub-addr: 127.0.0.1@5353",
            "name: \"child.parent.test.\"",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(!text.contains("root-hints"));

        let public = UnboundConfig::new()
            .stub("parent.test.", SocketAddr::from(([192, 0, 2, 1], 53)))
            .trust_anchor("parent.test. IN DS 1 13 2 00");
        assert!(public.validate().is_err());
        assert!(UnboundConfig::new().stub("parent.test.", server).validate().is_err());
    }

    #[test]
    fn do_not_query_blocks_cover_all_of_ipv4_but_loopback() {
        // Each block as (first, size); together they must tile 0..2^32
        // except 127.0.0.0/8.
        let mut blocks: Vec<(u64, u64)> = NOT_LOOPBACK_V4
            .iter()
            .map(|block| {
                let (ip, len) = block.split_once('/').unwrap();
                let ip: std::net::Ipv4Addr = ip.parse().unwrap();
                (u64::from(u32::from(ip)), 1u64 << (32 - len.parse::<u32>().unwrap()))
            })
            .collect();
        blocks.push((127 << 24, 1 << 24));
        blocks.sort_unstable();
        let mut next = 0;
        for (first, size) in blocks {
            assert_eq!(first, next);
            next = first + size;
        }
        assert_eq!(next, 1 << 32);
    }
}
