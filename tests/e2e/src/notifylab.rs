//! Secondaries for the NOTIFY tests: a private knotd configured as a
//! secondary of a sixgate primary, and a plain UDP socket that plays one
//! (it counts NOTIFYs, answers them or not, and answers SOA queries with
//! a fixed serial), so that a test can see what sixgate sends without a
//! zone transfer.
//!
//! The knotd takes NOTIFY from 127.0.0.1 (signed with a key when one is
//! given) and refreshes from the primary's address; knotd logs each
//! NOTIFY it takes at info level (Knot 3.2: "notify, incoming"; other
//! versions capitalise it).

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::client::UdpClient;
use crate::knot::{free_port_pair, which};
use crate::process::{ChildGuard, wait_until};
use crate::query::QuerySpec;

/// How long a knotd start may take.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A TSIG key as `sixgate tsig create --transfer` prints it:
/// `ALGORITHM:NAME:BASE64`.
#[derive(Debug, Clone)]
pub struct TsigLine {
    /// `hmac-sha256`, ...
    pub algorithm: String,
    /// The key's name, without the trailing dot.
    pub name: String,
    /// Base64.
    pub secret: String,
}

impl TsigLine {
    /// Reads `ALGORITHM:NAME:BASE64`.
    pub fn parse(line: &str) -> Result<TsigLine> {
        let mut parts = line.trim().splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(n), Some(s)) => Ok(TsigLine {
                algorithm: a.to_owned(),
                name: n.trim_end_matches('.').to_owned(),
                secret: s.to_owned(),
            }),
            _ => bail!("not ALGORITHM:NAME:SECRET: {line}"),
        }
    }
}

/// A private knotd, secondary of `primary` for some zones; killed on drop.
#[derive(Debug)]
pub struct KnotSecondary {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl KnotSecondary {
    /// Starts knotd on a free 127.0.0.1 port as a secondary of `primary`
    /// for `zones`, taking NOTIFY from 127.0.0.1 (with `key` when given:
    /// then unsigned NOTIFYs are refused, and transfers are signed).
    pub fn start(primary: SocketAddr, zones: &[&str], key: Option<&TsigLine>) -> Result<KnotSecondary> {
        let knotd = which("knotd")?;
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-knot-secondary-").tempdir()?;
        let port = free_port_pair()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let (run, storage) = (dir.path().join("run"), dir.path().join("storage"));
        fs::create_dir_all(&run)?;
        fs::create_dir_all(&storage)?;
        let (key_section, key_ref) = match key {
            Some(k) => (
                format!(
                    "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n\n",
                    k.name, k.algorithm, k.secret
                ),
                format!("    key: {}\n", k.name),
            ),
            None => (String::new(), String::new()),
        };
        let mut text = format!(
            r#"{head}{key_section}remote:
  - id: primary
    address: {primary}
{key_ref}
acl:
  - id: notify_from_primary
    address: 127.0.0.1
{key_ref}    action: notify

template:
  - id: default
    storage: "{storage}"
    master: primary
    acl: notify_from_primary
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none

zone:
"#,
            head = crate::knot::conf_head(
                &run,
                &storage,
                &[std::net::SocketAddr::from(([127, 0, 0, 1], port))],
                1
            ),
            storage = storage.display(),
            primary = format_args!("{}@{}", primary.ip(), primary.port()),
        );
        for z in zones {
            text.push_str(&format!("  - domain: \"{z}\"\n"));
        }
        let config = dir.path().join("knot.conf");
        fs::write(&config, text)?;
        let mut command = Command::new(knotd);
        command.arg("-c").arg(&config).stdout(Stdio::null());
        let mut child = ChildGuard::spawn("knotd", &mut command)?;
        let client = UdpClient::new(addr)?;
        // Its zones are empty until a transfer: any answer (SERVFAIL for
        // a zone not loaded) says it is up.
        let query = QuerySpec::parse("ready.invalid.", 6)?.with_id(0x6e6f).encode()?;
        wait_until("knotd to answer", START_DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!("knotd exited with {status}:\n{}", child.stderr_tail(20));
            }
            Ok(client.exchange(&query, Duration::from_millis(200), 1)?.map(|_| ()))
        })
        .with_context(|| format!("knotd secondary on {addr}, config {}", config.display()))?;
        Ok(KnotSecondary { child, _dir: dir, addr })
    }

    /// Where it answers (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// knotd's log so far.
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// The serials of the NOTIFYs knotd took for `zone` (with the dot,
    /// lowercase), in order, from its log: `[zone] notify, incoming,
    /// remote ..., serial N`.
    pub fn notified_serials(&self, zone: &str) -> Vec<u32> {
        let tag = format!("[{zone}] notify, incoming");
        self.log_text()
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains(&tag))
            .filter_map(|l| {
                l.rsplit("serial ").next()?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
            })
            .collect()
    }
}

/// A secondary played by a UDP socket on 127.0.0.1; its thread stops when
/// this is dropped.
#[derive(Debug)]
pub struct FakeSecondary {
    addr: SocketAddr,
    state: Arc<FakeState>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct FakeState {
    answer_notify: AtomicBool,
    /// SOA queries are answered with this serial (0: not answered).
    serial: AtomicU32,
    notifies: AtomicUsize,
}

impl FakeSecondary {
    /// A socket that acknowledges NOTIFYs when `answer_notify`, and answers
    /// SOA queries with `serial` (never, when 0).
    pub fn start(answer_notify: bool, serial: u32) -> Result<FakeSecondary> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = sock.local_addr()?;
        let state = Arc::new(FakeState::default());
        state.answer_notify.store(answer_notify, Ordering::Relaxed);
        state.serial.store(serial, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !sp.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                if let Some(answer) = answer(&st, &buf[..n]) {
                    let _ = sock.send_to(&answer, from);
                }
            }
        });
        Ok(FakeSecondary { addr, state, stop, thread: Some(thread) })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// NOTIFYs received so far.
    pub fn notifies(&self) -> usize {
        self.state.notifies.load(Ordering::Relaxed)
    }
}

impl Drop for FakeSecondary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The end of the question of `msg`, or `None`.
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut pos = 12;
    loop {
        let len = usize::from(*msg.get(pos)?);
        if len == 0 {
            return Some(pos + 1 + 4);
        }
        if len & 0xC0 != 0 {
            return None;
        }
        pos += 1 + len;
    }
}

/// What the fake secondary answers to `msg`.
fn answer(st: &FakeState, msg: &[u8]) -> Option<Vec<u8>> {
    let qend = question_end(msg)?;
    let mut out = msg.get(..qend)?.to_vec();
    out.get_mut(6..12)?.fill(0);
    let opcode = (msg.get(2)? >> 3) & 0x0f;
    if opcode == 4 {
        st.notifies.fetch_add(1, Ordering::Relaxed);
        if !st.answer_notify.load(Ordering::Relaxed) {
            return None;
        }
        // QR, opcode NOTIFY, AA.
        out.get_mut(2..4)?.copy_from_slice(&[0x80 | 0x20 | 0x04, 0]);
        return Some(out);
    }
    let serial = st.serial.load(Ordering::Relaxed);
    if opcode != 0 || serial == 0 {
        return None;
    }
    out.get_mut(2..4)?.copy_from_slice(&[0x84, 0]);
    out.get_mut(6..8)?.copy_from_slice(&[0, 1]);
    let mut rd = vec![2, b'n', b's', 0xC0, 12, 2, b'h', b'm', 0xC0, 12];
    for v in [serial, 3600, 900, 604_800, 300] {
        rd.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&[0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 60]);
    out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    out.extend_from_slice(&rd);
    Some(out)
}
