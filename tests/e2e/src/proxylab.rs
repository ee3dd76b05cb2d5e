//! A `sixgate serve` with both proxy listeners, and what the proxy's tests
//! look at from outside: `/metrics`, the server's open descriptors, the
//! kernel's TCP timers, a ClientHello for a name, and connections from
//! another loopback address.
//!
//! [`ProxyLab::start`] imports `example.test` with an AAAA `::1` for each
//! hostname given, enables each for the proxy with its own backend ports,
//! and serves HTTP and TLS on 127.0.0.1 with `[proxy.limits]` from the
//! caller. Every backend is on ::1, allowed with `::1/128`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

pub use crate::metrics::Metrics;
use crate::{Cli, Sixgate, ZoneFile};

/// One hostname to enable: `NAME.example.test` with these `proxy enable`
/// flags (`--backend-http-port`, `--backend-tls-port`, ...).
#[derive(Clone, Debug)]
pub struct Host {
    /// The first label; the name is `LABEL.example.test`.
    pub label: &'static str,
    /// Flags for `sixgate proxy enable`.
    pub flags: Vec<String>,
}

impl Host {
    /// `label` with its HTTP backend on ::1 `port`.
    pub fn http(label: &'static str, port: u16) -> Host {
        Host { label, flags: vec!["--backend-http-port".into(), port.to_string()] }
    }

    /// `label` with its TLS backend on ::1 `port`.
    pub fn tls(label: &'static str, port: u16) -> Host {
        Host { label, flags: vec!["--backend-tls-port".into(), port.to_string()] }
    }

    /// The full name.
    pub fn name(&self) -> String {
        format!("{}.example.test", self.label)
    }
}

/// A server with both proxy listeners.
#[derive(Debug)]
pub struct ProxyLab {
    /// The server.
    pub server: Sixgate,
    /// The HTTP listener.
    pub http: SocketAddr,
    /// The TLS listener.
    pub tls: SocketAddr,
    token: String,
}

impl ProxyLab {
    /// Serves `hosts` from a data directory under `dir`, with `limits` as
    /// the body of `[proxy.limits]` (TOML lines, may be empty).
    pub fn start(dir: &Path, hosts: &[Host], limits: &str) -> Result<ProxyLab> {
        ProxyLab::start_with(dir, hosts, "", limits)
    }

    /// [`ProxyLab::start`] with `proxy` as more lines of `[proxy]` (TOML,
    /// may be empty).
    pub fn start_with(dir: &Path, hosts: &[Host], proxy: &str, limits: &str) -> Result<ProxyLab> {
        ProxyLab::start_full(dir, hosts, proxy, limits, &[])
    }

    /// [`ProxyLab::start`] with `extra` arguments to `serve` (flags over
    /// the file).
    pub fn start_args(dir: &Path, hosts: &[Host], limits: &str, extra: &[&str]) -> Result<ProxyLab> {
        ProxyLab::start_full(dir, hosts, "", limits, extra)
    }

    /// [`ProxyLab::start_with`] and [`ProxyLab::start_args`] together.
    pub fn start_full(
        dir: &Path,
        hosts: &[Host],
        proxy: &str,
        limits: &str,
        extra: &[&str],
    ) -> Result<ProxyLab> {
        let mut zone =
            String::from("$ORIGIN example.test.\n@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
        for h in hosts {
            zone.push_str(&format!("{} AAAA ::1\n", h.label));
        }
        let zone_path = dir.join("example.test.zone");
        std::fs::write(&zone_path, zone)?;
        let cli = Cli::new(dir.join("data"))?;
        cli.import(&ZoneFile::new("example.test.", zone_path))?;
        cli.run(&["proxy", "addresses", "set"], &["198.51.100.7"])?.ok()?;
        for h in hosts {
            let name = h.name();
            let mut args = vec![name.as_str()];
            args.extend(h.flags.iter().map(String::as_str));
            cli.run(&["proxy", "enable"], &args)?.ok()?;
        }
        let config = dir.join("sixgate.toml");
        std::fs::write(
            &config,
            format!(
                "[proxy]\nhttp = [\"127.0.0.1:0\"]\ntls = [\"127.0.0.1:0\"]\nallow_backend = [\"::1/128\"]\n{proxy}\n\
                 [proxy.limits]\n{limits}\n"
            ),
        )?;
        let config = config.display().to_string();
        let mut args = vec!["--config", config.as_str()];
        args.extend_from_slice(extra);
        let server = Sixgate::serve_with(cli, &args)?;
        let http = server.listening("proxy-http").context("no `listening proxy-http` line")?;
        let tls = server.listening("proxy-tls").context("no `listening proxy-tls` line")?;
        let token = server.admin_token()?;
        Ok(ProxyLab { server, http, tls, token })
    }

    /// `/metrics`, as text.
    pub fn metrics(&self) -> Result<Metrics> {
        crate::metrics::fetch(&self.server.api_url().context("no api url")?, &self.token)
    }

    /// Sockets the server has open now.
    pub fn open_sockets(&mut self) -> Result<usize> {
        open_sockets(self.server.process().id())
    }
}

/// Sockets process `pid` has open: its descriptors, less files (the
/// store's background tasks open and close database handles at any time).
pub fn open_sockets(pid: u32) -> Result<usize> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).with_context(|| format!("/proc/{pid}/fd"))?;
    Ok(dir
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")))
        .count())
}

/// The inodes of the sockets process `pid` holds, to match against
/// [`TcpEntry::inode`].
pub fn socket_inodes(pid: u32) -> Result<std::collections::HashSet<u64>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).with_context(|| format!("/proc/{pid}/fd"))?;
    Ok(dir
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect())
}

/// What process `pid`'s descriptors are, counted by kind (`socket`,
/// `anon_inode:[eventpoll]`, a path...), for messages.
pub fn fd_kinds(pid: u32) -> String {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        let target = std::fs::read_link(e.path()).map(|t| t.display().to_string()).unwrap_or_default();
        let kind = target.split(':').next().unwrap_or_default().to_string();
        *kinds.entry(if kind.starts_with('/') { target } else { kind }).or_default() += 1;
    }
    format!("{kinds:?}")
}

/// CPU time (user and system) process `pid` has used.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').context("no command in stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields.get(11).context("utime")?.parse::<u64>()? + fields.get(12).context("stime")?.parse::<u64>()?;
    // In USER_HZ ticks, which Linux fixes at 100 for user space.
    Ok(Duration::from_millis(ticks * 10))
}

/// Raises this process's soft descriptor limit to the hard one (children
/// started later inherit it); fails when the hard limit is below `need`.
pub fn raise_fd_limit(need: u64) -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    ensure!(hard >= need, "the hard descriptor limit is {hard}; this test needs {need} (ulimit -Hn)");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

/// A TCP connection from `src` (another loopback address) to `dst`.
pub fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let SocketAddr::V4(dst) = dst else { bail!("{dst}: IPv4 only") };
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(dst)).with_context(|| format!("connecting {src} to {dst}"))?;
    Ok(TcpStream::from(fd))
}

/// A one-record TLS 1.3 ClientHello naming `host` (RFC 8446 §4.1.2), the
/// shape sixgate's reader routes by; no TLS server would complete it.
pub fn client_hello(host: &str) -> Vec<u8> {
    fn vec16(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }
    // server_name (0): one host_name (0) entry.
    let entry = [&[0u8][..], &vec16(host.as_bytes())].concat();
    let sni = [&0u16.to_be_bytes()[..], &vec16(&vec16(&entry))].concat();
    // supported_versions (43): TLS 1.3.
    let versions = [&43u16.to_be_bytes()[..], &[0, 3, 2, 3, 4]].concat();
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(32);
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&vec16(&[0x13, 0x01]));
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&vec16(&[sni, versions].concat()));
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![22, 3, 1];
    record.extend_from_slice(&vec16(&hs));
    record
}

/// A self-signed ECDSA P-256 certificate for `host`, valid two days:
/// `DIR/c.pem`, its key in `DIR/k.pem` (openssl).
pub fn self_signed(dir: &Path, host: &str) -> Result<()> {
    use std::process::{Command, Stdio};
    let status = Command::new(crate::knot::which("openssl")?)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args([
            "-days",
            "2",
            "-subj",
            &format!("/CN={host}"),
            "-addext",
            &format!("subjectAltName=DNS:{host}"),
        ])
        .arg("-keyout")
        .arg(dir.join("k.pem"))
        .arg("-out")
        .arg(dir.join("c.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "openssl req failed");
    Ok(())
}

/// Sends `request` on a new connection from `src` to `proxy` and reads the
/// answer to the end (the request should say `Connection: close`).
pub fn exchange_from(src: Ipv4Addr, proxy: SocketAddr, request: &[u8], timeout: Duration) -> Result<String> {
    let mut s = connect_from(src, proxy)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// What /proc/net/tcp{,6} says about one socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpEntry {
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
    /// The state (1 is ESTABLISHED).
    pub state: u8,
    /// The pending timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT,
    /// 4 zero-window probe.
    pub timer: u8,
    /// The socket's inode: 0 once no process holds it (an orphan the
    /// kernel finishes closing).
    pub inode: u64,
}

/// Every TCP socket of this network namespace.
pub fn tcp_sockets() -> Result<Vec<TcpEntry>> {
    fn addr(hex: &str) -> Option<SocketAddr> {
        let (ip, port) = hex.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let ip = match ip.len() {
            8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes())),
            32 => {
                let mut octets = [0u8; 16];
                for (i, word) in octets.chunks_mut(4).enumerate() {
                    let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?.swap_bytes();
                    word.copy_from_slice(&w.to_be_bytes());
                }
                IpAddr::from(octets)
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(l), Some(r), Some(st), Some(tm), Some(ino)) =
                (f.get(1), f.get(2), f.get(3), f.get(5), f.get(9))
            else {
                continue;
            };
            let (Some(local), Some(remote)) = (addr(l), addr(r)) else { continue };
            let state = u8::from_str_radix(st, 16).unwrap_or(0);
            let timer = tm.split(':').next().and_then(|t| u8::from_str_radix(t, 16).ok()).unwrap_or(0);
            let inode = ino.parse().unwrap_or(0);
            out.push(TcpEntry { local, remote, state, timer, inode });
        }
    }
    Ok(out)
}
