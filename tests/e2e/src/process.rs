//! Child processes, paths and polling.
//!
//! Every server a test starts lives in a [`ChildGuard`]: the process is killed
//! and reaped when the guard drops (also while a test panics), and its stderr
//! goes to a log file under `target/e2e-logs/` that outlives the test, so a
//! failure can be read after the fact. Readiness is never a sleep: callers
//! poll real behaviour with [`wait_until`] and a generous deadline.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The environment variable that overrides where the `sixgate` binary is.
pub const SIXGATE_BIN_ENV: &str = "SIXGATE_BIN";

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `testdata/zones/` in the workspace.
pub fn zones_dir() -> PathBuf {
    workspace_root().join("testdata").join("zones")
}

/// A zone file and the origin it is loaded at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneFile {
    /// The zone's name, absolute, with the trailing dot (`example.test.`).
    pub origin: String,
    /// The RFC 1035 file.
    pub path: PathBuf,
}

impl ZoneFile {
    /// A zone file with an explicit origin (a trailing dot is added if absent).
    pub fn new(origin: &str, path: impl Into<PathBuf>) -> Self {
        let origin = if origin.ends_with('.') { origin.to_owned() } else { format!("{origin}.") };
        Self { origin, path: path.into() }
    }

    /// The origin without its trailing dot, as typed on a command line.
    pub fn name(&self) -> &str {
        self.origin.strip_suffix('.').unwrap_or(&self.origin)
    }

    /// Every `testdata/zones/*.zone`, origin taken from the file name
    /// (`example.test.zone` is `example.test.`), sorted by origin.
    pub fn all_testdata() -> Result<Vec<Self>> {
        let dir = zones_dir();
        let mut zones = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(origin) = file_name.strip_suffix(".zone") {
                zones.push(Self::new(origin, path.clone()));
            }
        }
        zones.sort_by(|a, b| a.origin.cmp(&b.origin));
        if zones.is_empty() {
            bail!("no *.zone files in {}", dir.display());
        }
        Ok(zones)
    }
}

/// The `target/<profile>/` directory the running test executable was built
/// into: the parent of the `deps/` directory that holds test executables.
pub fn target_profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    for dir in exe.ancestors().skip(1) {
        if dir.file_name().is_some_and(|name| name == "deps")
            && let Some(profile) = dir.parent()
        {
            return Ok(profile.to_path_buf());
        }
    }
    exe.parent().map(Path::to_path_buf).context("test executable has no parent directory")
}

/// The `sixgate` binary: `$SIXGATE_BIN` if set, else `target/<profile>/sixgate`
/// next to this test's own build (see the crate docs for why).
pub fn sixgate_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(SIXGATE_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    let path = target_profile_dir()?.join("sixgate");
    if !path.is_file() {
        bail!(
            "sixgate binary not found at {}: run scripts/test, or `cargo build -p sixgate` \
             first, or set {SIXGATE_BIN_ENV}",
            path.display()
        );
    }
    warn_if_stale(&path);
    Ok(path)
}

/// Warns once per process if `binary` is older than a source file of the
/// server, the usual sign of `cargo nextest run -p sixgate-e2e` without a
/// `cargo build -p sixgate` first.
fn warn_if_stale(binary: &Path) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        let Ok(built) = fs::metadata(binary).and_then(|m| m.modified()) else {
            return;
        };
        let root = workspace_root();
        let newer = ["bin", "crates"]
            .iter()
            .filter_map(|dir| newest_source(&root.join(dir)))
            .max()
            .filter(|(modified, _)| *modified > built);
        if let Some((_, source)) = newer {
            eprintln!(
                "warning: {} is older than {}; run `cargo build -p sixgate` to test current code",
                binary.display(),
                source.display()
            );
        }
    });
}

/// The most recently modified `*.rs` or `Cargo.toml` under `dir`.
fn newest_source(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
                continue;
            }
            let source = path.extension().is_some_and(|e| e == "rs")
                || path.file_name().is_some_and(|n| n == "Cargo.toml");
            if let (true, Ok(modified)) = (source, meta.modified())
                && newest.as_ref().is_none_or(|(t, _)| modified > *t)
            {
                newest = Some((modified, path));
            }
        }
    }
    newest
}

/// `target/e2e-logs/`, created on demand: server logs that outlive the test.
pub fn log_dir() -> Result<PathBuf> {
    let dir = match target_profile_dir()?.parent() {
        Some(target) => target.join("e2e-logs"),
        None => std::env::temp_dir().join("sixgate-e2e-logs"),
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A fresh, unique log file path `target/e2e-logs/<stem>-<pid>-<n>.log`.
pub fn new_log_path(stem: &str) -> Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(log_dir()?.join(format!("{stem}-{}-{n}.log", std::process::id())))
}

/// `program` from PATH (or `/usr/sbin`, `/sbin`), or an error naming the
/// Debian `package` that `scripts/test` installs for it. Tests fail on a
/// missing tool rather than skip: a skipped peer test proves nothing.
pub fn require_program(program: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("{program} is not installed; scripts/test installs it (apt-get install {package})")
}

/// A TCP port that is free on 127.0.0.1 right now, for servers that cannot
/// bind port 0 and report what they got. Another process may take it before
/// the server binds it, so starts that use it are retried.
pub fn free_tcp_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Starts a peer on a port it picked itself, up to five times: between
/// choosing a free port and binding it, another test may take it first.
/// The last failure if every start failed.
pub fn start_retried<T>(what: &str, mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..5 {
        match start() {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{what} never started")))
}

/// A running child process that is killed and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    stderr_path: PathBuf,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed and stderr sent to a new log file
    /// (`name` is used in messages and in the log file name). Stdout is left
    /// as configured on `command`.
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self> {
        let stderr_path = new_log_path(name)?;
        let stderr =
            File::create(&stderr_path).with_context(|| format!("creating {}", stderr_path.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Self { name: name.to_owned(), child, stderr_path })
    }

    /// Like [`ChildGuard::spawn`], with stdout going to the same log file as
    /// stderr: for programs that log on stdout (pebble) or whose output only
    /// matters when they fail (lego, certbot).
    pub fn spawn_logged(name: &str, command: &mut Command) -> Result<Self> {
        let log_path = new_log_path(name)?;
        let log = File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        // Both descriptors share one open file, so the writes interleave in
        // order instead of overwriting each other.
        let stdout = log.try_clone().with_context(|| format!("duplicating {}", log_path.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Self { name: name.to_owned(), child, stderr_path: log_path })
    }

    /// Waits up to `deadline` for the process to exit on its own and returns
    /// its status. On timeout the process keeps running until the guard drops.
    pub fn wait_for_exit(&mut self, deadline: Duration) -> Result<ExitStatus> {
        let name = self.name.clone();
        wait_until(&format!("{name} to finish"), deadline, || Ok(self.child.try_wait()?))
    }

    /// The whole log (stderr, and stdout for [`ChildGuard::spawn_logged`]).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, e.g. to take its stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// `None` while the process runs, its exit status once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Where stderr goes.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The last `lines` lines of stderr, for error messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        all.get(start..).unwrap_or_default().join("\n")
    }

    /// Sends SIGTERM and waits up to `deadline` for the process to exit.
    pub fn terminate(&mut self, deadline: Duration) -> Result<ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .with_context(|| format!("sending SIGTERM to {}", self.name))?;
        let name = self.name.clone();
        wait_until(&format!("{name} to exit after SIGTERM"), deadline, || Ok(self.child.try_wait()?))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- {} (pid {}) stderr, last lines, full log at {} ---\n{}",
                self.name,
                self.child.id(),
                self.stderr_path.display(),
                self.stderr_tail(40)
            );
        }
    }
}

/// Polls `probe` every 20–200 ms until it returns `Ok(Some(value))` or
/// `deadline` passes. An `Err` from `probe` does not stop the polling; the
/// last one is reported if the deadline passes.
pub fn wait_until<T>(
    what: &str,
    deadline: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    let mut last_error = None;
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if start.elapsed() >= deadline {
            match last_error {
                Some(error) => {
                    return Err(error.context(format!("timed out after {deadline:?} waiting for {what}")));
                }
                None => bail!("timed out after {deadline:?} waiting for {what}"),
            }
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_file_names_are_origins() {
        let zones = ZoneFile::all_testdata().unwrap();
        assert!(zones.iter().any(|z| z.origin == "example.test."));
        assert!(zones.iter().all(|z| z.origin.ends_with('.')));
        assert_eq!(ZoneFile::new("a.test", "x").name(), "a.test");
    }

    #[test]
    fn wait_until_returns_the_value_and_times_out() {
        let mut n = 0;
        let got = wait_until("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            Ok((n >= 3).then_some(n))
        })
        .unwrap();
        assert_eq!(got, 3);
        let error = wait_until::<()>("never", Duration::from_millis(50), || Ok(None)).unwrap_err();
        assert!(error.to_string().contains("timed out"));
    }

    #[test]
    fn target_dir_is_found_from_the_test_executable() {
        let dir = target_profile_dir().unwrap();
        assert!(dir.join("deps").is_dir(), "{}", dir.display());
    }
}
