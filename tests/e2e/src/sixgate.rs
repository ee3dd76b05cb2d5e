//! A private `sixgate serve`, and the rest of its command line.
//!
//! [`Sixgate`] owns a data directory (temporary unless the test brings its
//! own), imports zones into it with `sixgate zone import`, starts
//! `sixgate serve --data DIR --dns 127.0.0.1:0 --workers 2`, and reads the
//! addresses from the `listening dns-udp ADDR` / `listening dns-tcp ADDR`
//! lines that come before `ready` on stdout (docs/cli.md), and the first
//! admin token from the file named by `admin token written to PATH`
//! ([`Sixgate::admin_token`]). The metrics listener gets a free port
//! (`--metrics 127.0.0.1:0`); [`Sixgate::scrape`] reads it without a
//! token. stdout keeps being drained by a thread so the server never
//! blocks on a full pipe; stderr goes to a log file under
//! `target/e2e-logs/`. [`Sixgate::serve_at`] takes a
//! fixed DNS address instead, for a server that is stopped and started again
//! where its clients expect it, and [`Sixgate::restart`] stops a server
//! with SIGTERM and starts `serve` again on the same data directory.
//!
//! [`Cli`] runs any other subcommand on a data directory and returns exit
//! status, stdout and stderr. `--data DIR` is passed right after the
//! subcommand path (`sixgate zone import --data DIR ZONE FILE`).
//! [`Cli::with_umask`] runs every command, `serve` included, under a given
//! umask.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{ChildGuard, ZoneFile, sixgate_binary};

/// How long `serve` may take to print `ready`.
pub const READY_DEADLINE: Duration = Duration::from_secs(30);

/// How long `serve` may take to exit after SIGTERM.
pub const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// The output of one CLI run.
#[derive(Clone, Debug)]
pub struct CliOutput {
    /// The arguments, for messages.
    pub args: Vec<String>,
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
}

impl CliOutput {
    /// True if the command exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Fails with the command's output unless it exited 0.
    pub fn ok(self) -> Result<Self> {
        if !self.success() {
            bail!("{self}");
        }
        Ok(self)
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`sixgate {}` exited with {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// The sixgate command line on one data directory.
#[derive(Clone, Debug)]
pub struct Cli {
    binary: PathBuf,
    data: PathBuf,
    umask: Option<u32>,
}

impl Cli {
    /// A CLI for `data` using the built binary (see [`sixgate_binary`]).
    pub fn new(data: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self { binary: sixgate_binary()?, data: data.into(), umask: None })
    }

    /// The same CLI, every command of it (`serve` too) run under the
    /// process umask `mask` instead of the test's own.
    pub fn with_umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }

    /// A command that runs the binary, under [`Cli::with_umask`]'s umask if
    /// one is set.
    fn command(&self) -> Command {
        match self.umask {
            None => Command::new(&self.binary),
            Some(mask) => {
                // std's Command cannot set the umask: a shell sets it and
                // execs the binary, which keeps the shell's process id.
                let mut command = Command::new("/bin/sh");
                command.arg("-c").arg(format!("umask {mask:03o} && exec \"$0\" \"$@\"")).arg(&self.binary);
                command
            }
        }
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs `sixgate <command...> --data DIR <args...>`, e.g.
    /// `run(&["zone", "import"], &["example.test", "file.zone"])`.
    pub fn run(&self, command: &[&str], args: &[&str]) -> Result<CliOutput> {
        self.run_env(&[], command, args)
    }

    /// [`Cli::run`] with extra environment variables, e.g.
    /// `SIXGATE_CLOCK` for a step in simulated time.
    pub fn run_env(&self, env: &[(&str, &str)], command: &[&str], args: &[&str]) -> Result<CliOutput> {
        let mut all: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
        all.push("--data".into());
        all.push(self.data.display().to_string());
        all.extend(args.iter().map(|s| (*s).to_owned()));
        let output = self
            .command()
            .envs(env.iter().copied())
            .args(&all)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} {}", self.binary.display(), all.join(" ")))?;
        Ok(CliOutput {
            args: all,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// `sixgate zone import ZONE FILE`, which must succeed.
    pub fn import(&self, zone: &ZoneFile) -> Result<CliOutput> {
        let path = zone.path.display().to_string();
        self.run(&["zone", "import"], &[zone.name(), &path])?.ok()
    }
}

/// A running `sixgate serve`; killed on drop.
#[derive(Debug)]
pub struct Sixgate {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    cli: Cli,
    udp: SocketAddr,
    tcp: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    // How it was started, for `restart`.
    dns: String,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    _temp: Option<tempfile::TempDir>,
}

impl Sixgate {
    /// A fresh temporary data directory with `zones` imported, served.
    pub fn start(zones: &[ZoneFile]) -> Result<Self> {
        let temp = tempfile::Builder::new().prefix("sixgate-e2e-data-").tempdir()?;
        let cli = Cli::new(temp.path())?;
        for zone in zones {
            cli.import(zone)?;
        }
        let mut server = Self::serve(cli)?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// Serves an existing data directory (which the caller keeps alive).
    pub fn serve(cli: Cli) -> Result<Self> {
        Self::serve_with(cli, &[])
    }

    /// Like [`Sixgate::serve`], with extra `serve` arguments (e.g.
    /// `--config FILE`).
    pub fn serve_with(cli: Cli, extra: &[&str]) -> Result<Self> {
        Self::spawn(cli, "127.0.0.1:0", extra)
    }

    /// Like [`Sixgate::serve_with`], with DNS on the fixed address `dns`
    /// instead of an OS-chosen port: for a server that must come back on the
    /// same address after a restart (pick the port with
    /// [`crate::knot::free_port_pair`]). If the port is taken, the start
    /// is tried again until [`READY_DEADLINE`], then fails.
    pub fn serve_at(cli: Cli, dns: SocketAddr, extra: &[&str]) -> Result<Self> {
        let server = Self::spawn(cli, &dns.to_string(), extra)?;
        if server.udp != dns || server.tcp != dns {
            bail!("sixgate serve --dns {dns} listens on {} (UDP) and {} (TCP)", server.udp, server.tcp);
        }
        Ok(server)
    }

    /// [`Sixgate::serve_with`] with extra environment variables (e.g.
    /// `SIXGATE_LOG=debug`).
    pub fn serve_with_env(cli: Cli, extra: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        Self::spawn_env(cli, "127.0.0.1:0", extra, env)
    }

    /// [`Sixgate::serve_at`] with extra environment variables (e.g.
    /// `SIXGATE_CLOCK`, for a server in simulated time).
    pub fn serve_at_env(cli: Cli, dns: SocketAddr, extra: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let server = Self::spawn_env(cli, &dns.to_string(), extra, env)?;
        if server.udp != dns || server.tcp != dns {
            bail!("sixgate serve --dns {dns} listens on {} (UDP) and {} (TCP)", server.udp, server.tcp);
        }
        Ok(server)
    }

    fn spawn(cli: Cli, dns: &str, extra: &[&str]) -> Result<Self> {
        Self::spawn_env(cli, dns, extra, &[])
    }

    /// Starts `serve`. A fixed port can be held for a moment by some other
    /// process's socket (client sockets get ports from the same range)
    /// between a stop and a start on it, as in a simulated-time lab that
    /// restarts on one address: a start that fails only because the
    /// address is in use is tried again until [`READY_DEADLINE`].
    fn spawn_env(cli: Cli, dns: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match Self::spawn_once(cli.clone(), dns, extra, env) {
                Err(e)
                    if Instant::now() < deadline && format!("{e:#}").contains("Address already in use") =>
                {
                    thread::sleep(Duration::from_millis(200));
                }
                started => return started,
            }
        }
    }

    fn spawn_once(cli: Cli, dns: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let data = cli.data().display().to_string();
        let mut command = cli.command();
        command
            .envs(env.iter().copied())
            .args(["serve", "--data", &data, "--dns", dns, "--api", "127.0.0.1:0", "--workers", "2"])
            // The metrics listener on a free port too: its default port
            // would be shared by every server of a parallel run.
            .args(["--metrics", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped());
        let mut child = ChildGuard::spawn("sixgate", &mut command)?;
        let stdout = child.child_mut().stdout.take().context("sixgate stdout was not captured")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel();
        let kept = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line.clone());
                }
                // The receiver is gone once the server is ready; keep draining.
                let _ = sender.send(line);
            }
        });
        let (udp, tcp) = match wait_ready(&receiver) {
            Ok(addrs) => addrs,
            Err(error) => {
                let status = child.exit_status();
                return Err(error.context(format!(
                    "sixgate serve did not become ready (exit status {status:?}); stdout so far: {:?}; \
                     stderr ({}):\n{}",
                    lines.lock().map(|l| l.clone()).unwrap_or_default(),
                    child.stderr_path().display(),
                    child.stderr_tail(30)
                )));
            }
        };
        Ok(Self {
            child,
            cli,
            udp,
            tcp,
            stdout: lines,
            dns: dns.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            _temp: None,
        })
    }

    /// Stops the server with SIGTERM, which it must obey with exit status 0
    /// within [`STOP_DEADLINE`], and starts `serve` again on the same data
    /// directory with the same arguments and environment. DNS comes back on
    /// the same address if it was fixed ([`Sixgate::serve_at`]), else on
    /// new OS-chosen ports; the API always gets a new port. A temporary data
    /// directory moves to the new server.
    pub fn restart(self) -> Result<Self> {
        let Self { mut child, cli, dns, extra, env, _temp: temp, .. } = self;
        let status = child.terminate(STOP_DEADLINE)?;
        if !status.success() {
            bail!(
                "sixgate serve exited with {status} after SIGTERM; stderr ({}):\n{}",
                child.stderr_path().display(),
                child.stderr_tail(30)
            );
        }
        drop(child);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut server = Self::spawn_env(cli, &dns, &extra, &env).context("starting sixgate serve again")?;
        server._temp = temp;
        Ok(server)
    }

    /// The UDP listener.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The TCP listener.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }

    /// The HTTP API's base URL (`http://127.0.0.1:PORT`, no trailing slash)
    /// from the `listening api URL` line that `serve --api` prints before
    /// `ready`.
    pub fn api_url(&self) -> Option<String> {
        self.stdout_lines().iter().find_map(|line| {
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["listening", "api", url] => Some(url.trim_end_matches('/').to_owned()),
                _ => None,
            }
        })
    }

    /// The metrics listener's base URL (`http://127.0.0.1:PORT`) from the
    /// `listening metrics URL` line.
    pub fn metrics_url(&self) -> Option<String> {
        self.stdout_lines().iter().find_map(|line| {
            line.strip_prefix("listening metrics ").map(|url| url.trim().trim_end_matches('/').to_owned())
        })
    }

    /// `/metrics` from the metrics listener, without a token.
    pub fn scrape(&self) -> Result<crate::metrics::Metrics> {
        crate::metrics::scrape(&self.metrics_url().context("serve printed no `listening metrics` line")?)
    }

    /// The address of the first `listening KIND ADDR` line (e.g.
    /// `proxy-http`), if `serve` printed one.
    pub fn listening(&self, kind: &str) -> Option<SocketAddr> {
        let prefix = format!("listening {kind} ");
        self.stdout_lines().iter().find_map(|l| l.strip_prefix(&prefix).and_then(|a| a.parse().ok()))
    }

    /// The first admin token: on a store without tokens `serve` writes it
    /// to a file in the data directory and prints `admin token written to
    /// PATH` before `ready` (docs/cli.md).
    pub fn admin_token(&self) -> Result<String> {
        let path = self
            .stdout_lines()
            .iter()
            .find_map(|l| l.strip_prefix("admin token written to ").map(PathBuf::from))
            .context("serve printed no `admin token written to PATH` line")?;
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(text.trim().to_owned())
    }

    /// `/metrics`, read with the admin token.
    pub fn metrics(&self) -> Result<crate::metrics::Metrics> {
        crate::metrics::fetch(&self.api_url().context("no api url")?, &self.admin_token()?)
    }

    /// The CLI on this server's data directory.
    pub fn cli(&self) -> &Cli {
        &self.cli
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// True while the process runs (`try_wait` is `None`).
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// The last lines of stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        self.child.stderr_tail(lines)
    }

    /// The process guard, e.g. to send SIGTERM.
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.child
    }
}

/// Reads stdout lines until `ready`; returns the first 127.0.0.1 UDP and TCP
/// listener addresses printed before it.
fn wait_ready(lines: &mpsc::Receiver<String>) -> Result<(SocketAddr, SocketAddr)> {
    let deadline = Instant::now() + READY_DEADLINE;
    let (mut udp, mut tcp) = (None, None);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("no `ready` line on stdout within {READY_DEADLINE:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("sixgate closed stdout (exited?) before printing `ready`")
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["listening", kind @ ("dns-udp" | "dns-tcp"), addr] => {
                let addr: SocketAddr = addr.parse().with_context(|| format!("bad address in {line:?}"))?;
                if addr.port() == 0 {
                    bail!("sixgate printed port 0 in {line:?}; it must print the bound port");
                }
                match *kind {
                    "dns-udp" if udp.is_none() => udp = Some(addr),
                    "dns-tcp" if tcp.is_none() => tcp = Some(addr),
                    _ => {}
                }
            }
            ["ready"] => {
                return match (udp, tcp) {
                    (Some(udp), Some(tcp)) => Ok((udp, tcp)),
                    _ => bail!("`ready` before both `listening dns-udp` and `listening dns-tcp`"),
                };
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> Result<(SocketAddr, SocketAddr)> {
        let (sender, receiver) = mpsc::channel();
        for line in lines {
            sender.send((*line).to_owned()).unwrap();
        }
        drop(sender);
        wait_ready(&receiver)
    }

    #[test]
    fn ready_lines_give_the_addresses() {
        let (udp, tcp) = feed(&[
            "some banner",
            "listening dns-udp 127.0.0.1:40001",
            "listening dns-tcp 127.0.0.1:40001",
            "listening http 127.0.0.1:8080",
            "listening api http://127.0.0.1:8053",
            "ready",
        ])
        .unwrap();
        assert_eq!(udp.port(), 40001);
        assert_eq!(tcp.port(), 40001);
    }

    #[test]
    fn missing_ready_or_listener_is_an_error() {
        assert!(feed(&["listening dns-udp 127.0.0.1:1"]).is_err());
        assert!(feed(&["listening dns-udp 127.0.0.1:1", "ready"]).is_err());
        assert!(feed(&["listening dns-udp 127.0.0.1:0", "ready"]).is_err());
    }
}
