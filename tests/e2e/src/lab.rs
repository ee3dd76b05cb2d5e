//! A lab DNS tree on loopback: a signed root zone on knotd, on port 53.
//!
//! The tools that registries and operators run against a zone (Zonemaster,
//! DNSViz) start at the root and cannot be given a port: they follow the
//! delegation from root hints, on port 53, exactly as resolvers do. So a lab
//! gets a network of its own, 127.0.X.0/24 ([`LabNet`]), where every server
//! listens on port 53 of its own address; Linux routes all of 127.0.0.0/8
//! to the loopback interface, so no address needs configuring. Each test
//! takes its own X, so labs running at the same time never collide (see
//! [`LabNet::new`] for the ones in use). Port 53 needs root (or
//! CAP_NET_BIND_SERVICE); without it, or when something else holds port 53,
//! [`LabNet::check_free`] fails with the reason rather than letting a
//! tool time out.
//!
//! [`LabRoot`] is knotd on `127.0.X.1:53` serving the root zone `.`,
//! presigned by ldns-signzone with a KSK and a ZSK of its own (NSEC,
//! signatures valid from an hour ago, so no tool sees an inception within
//! its clock-skew margin, see [`validity`]), plus any other zone files the
//! test adds (children below the zone under test, presigned or not), also
//! on further addresses of the same /24.
//! Its name is `a.root-servers.net.`, an address record in the root zone
//! itself; [`LabRoot::hints`] writes the root hints file that points the
//! tools at it and [`LabRoot::trust_anchor`] is the KSK's DNSKEY, the lab's
//! trust anchor.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::client::UdpClient;
use crate::knot::{KnotRole, knot_config};
use crate::ldns::{self, Key, Validity};
use crate::normalize::Response;
use crate::process::{ChildGuard, ZoneFile, require_program, wait_until};
use crate::query::QuerySpec;

/// The DNS port, the only one the tools can talk to.
pub const DNS_PORT: u16 = 53;

/// The root server's name in the lab, as in the real root hints.
pub const ROOT_SERVER: &str = "a.root-servers.net.";

/// How long knotd may take to serve every zone.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long the root's signatures stay valid; far longer than any test.
const SIGNATURE_VALIDITY: Duration = Duration::from_secs(30 * 86_400);

/// How far back the root's signatures start: more than any tool's
/// clock-skew margin (DNSViz warns within 45 s).
const SIGNATURE_BACKDATE: Duration = Duration::from_secs(3_600);

/// Signature validity for zones presigned for a lab: from an hour ago
/// (beyond any tool's clock-skew margin) to 30 days from now.
pub fn validity() -> Result<Validity> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    Ok(Validity {
        inception: now.saturating_sub(SIGNATURE_BACKDATE).as_secs(),
        expiration: (now + SIGNATURE_VALIDITY).as_secs(),
    })
}

/// One lab's network, 127.0.X.0/24; hosts are numbered from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabNet {
    third_octet: u8,
}

impl LabNet {
    /// The network 127.0.`third_octet`.0/24. Labs in use, one per test so
    /// that concurrent tests never share one: 53, 54 and 55
    /// (tests/e2e/tests/registry_tools.rs). 0 is refused: 127.0.0.0/24 has
    /// 127.0.0.1, where every other test runs, and 127.0.0.53, where
    /// systemd-resolved listens.
    pub fn new(third_octet: u8) -> Result<Self> {
        if third_octet == 0 {
            bail!("127.0.0.0/24 is the shared loopback network, not a lab");
        }
        Ok(Self { third_octet })
    }

    /// X.
    pub fn third_octet(&self) -> u8 {
        self.third_octet
    }

    /// 127.0.X.`host`.
    pub fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, self.third_octet, host)
    }

    /// 127.0.X.`host`:53.
    pub fn addr(&self, host: u8) -> SocketAddr {
        SocketAddr::from((self.ip(host), DNS_PORT))
    }

    /// Fails, naming the reason, unless port 53 of 127.0.X.`host` is free
    /// for UDP and TCP and this process may bind it.
    pub fn check_free(&self, host: u8) -> Result<()> {
        let addr = self.addr(host);
        // The two usual causes: not root, or a DNS server started by its
        // package (pdns-server, knot, unbound) listening on 0.0.0.0:53.
        let hint = "port 53 needs root or CAP_NET_BIND_SERVICE, and no other server on 0.0.0.0:53";
        UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr} ({hint})"))?;
        TcpListener::bind(addr).with_context(|| format!("binding TCP {addr} ({hint})"))?;
        Ok(())
    }
}

/// A running lab root: knotd serving the signed root zone; killed on drop.
#[derive(Debug)]
pub struct LabRoot {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    net: LabNet,
    ksk: Key,
}

impl LabRoot {
    /// Signs `.` with the records in `root_records` (RFC 1035 lines with
    /// absolute owners: delegations, glue, DS) added to the root's own SOA,
    /// NS and address record, and starts knotd on 127.0.X.1:53 serving it,
    /// and `extra` (zone files served as they are, signed or not), on
    /// 127.0.X.1:53 and each address in `extra_hosts`.
    pub fn start(net: LabNet, root_records: &str, extra: &[ZoneFile], extra_hosts: &[u8]) -> Result<Self> {
        let knotd = require_program("knotd", "knot")?;
        for host in std::iter::once(1).chain(extra_hosts.iter().copied()) {
            net.check_free(host)?;
        }
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-lab-root-").tempdir()?;
        let keys = dir.path().join("keys");
        fs::create_dir_all(&keys)?;
        let ksk = Key::generate(&keys, ".", true)?;
        let zsk = Key::generate(&keys, ".", false)?;
        let text = format!(
            "$TTL 86400\n\
             .                 SOA  {ROOT_SERVER} hostmaster.root-servers.net. 1 1800 900 604800 86400\n\
             .                 NS   {ROOT_SERVER}\n\
             {ROOT_SERVER}     A    {root_ip}\n\
             {root_records}\n",
            root_ip = net.ip(1),
        );
        let root = ldns::sign_zone(dir.path(), ".", &text, &[&ksk, &zsk], Some(validity()?))?;
        let mut zones = vec![root];
        zones.extend_from_slice(extra);
        let listen: Vec<SocketAddr> =
            std::iter::once(1).chain(extra_hosts.iter().copied()).map(|host| net.addr(host)).collect();
        let config = knot_config(dir.path(), &listen, KnotRole::Lab, &zones)?;
        let mut command = Command::new(knotd);
        command.arg("-c").arg(&config).stdout(Stdio::null());
        let mut child = ChildGuard::spawn("knotd-lab-root", &mut command)?;
        let clients: Vec<UdpClient> =
            listen.iter().map(|addr| UdpClient::new(*addr)).collect::<Result<_>>()?;
        wait_until("the lab root's knotd to serve every zone's SOA", START_DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!(
                    "knotd exited with {status}; log {}:\n{}",
                    child.stderr_path().display(),
                    child.stderr_tail(20)
                );
            }
            for client in &clients {
                for zone in &zones {
                    if !soa_answers(client, &zone.origin)? {
                        return Ok(None);
                    }
                }
            }
            Ok(Some(()))
        })
        .with_context(|| format!("config {}", config.display()))?;
        Ok(Self { child, dir, net, ksk })
    }

    /// Where the root answers.
    pub fn addr(&self) -> SocketAddr {
        self.net.addr(1)
    }

    /// The lab's network.
    pub fn net(&self) -> LabNet {
        self.net
    }

    /// The root KSK's DNSKEY record, one line: the lab's trust anchor.
    pub fn trust_anchor(&self) -> Result<String> {
        self.ksk.dnskey()
    }

    /// Writes a root hints file (named.root format) naming the lab root and
    /// returns its path.
    pub fn hints(&self) -> Result<PathBuf> {
        let path = self.dir.path().join("root.hints");
        let text = format!(".\t3600000\tNS\t{ROOT_SERVER}\n{ROOT_SERVER}\t3600000\tA\t{}\n", self.net.ip(1));
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// A directory that lives as long as the root, for the tools' files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// True while knotd runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}

/// How long one run of a checking tool may take; a run on loopback takes
/// a second or two.
pub const TOOL_DEADLINE: Duration = Duration::from_secs(50);

/// Runs a checking tool to completion with stdout going to `stdout` and
/// stderr to a log under `target/e2e-logs/`; kills it after
/// [`TOOL_DEADLINE`]. A non-zero exit is an error quoting its stderr.
pub fn run_tool(name: &str, command: &mut Command, stdout: &Path) -> Result<()> {
    let file = fs::File::create(stdout).with_context(|| format!("creating {}", stdout.display()))?;
    command.stdout(Stdio::from(file));
    let mut child = ChildGuard::spawn(name, command)?;
    let status = child.wait_for_exit(TOOL_DEADLINE)?;
    if !status.success() {
        bail!(
            "{name} exited with {status}; stdout in {}, stderr ({}):\n{}",
            stdout.display(),
            child.stderr_path().display(),
            child.stderr_tail(30)
        );
    }
    Ok(())
}

fn soa_answers(client: &UdpClient, origin: &str) -> Result<bool> {
    let query = QuerySpec::parse(origin, 6)?.with_id(0x1ab0).encode()?;
    let Some(bytes) = client.exchange(&query, Duration::from_millis(200), 1)? else {
        return Ok(false);
    };
    let response = Response::parse(&bytes)?;
    Ok(response.aa() && response.rcode() == 0 && response.answers_of(6).next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_addresses_are_in_their_own_network() {
        let net = LabNet::new(53).unwrap();
        assert_eq!(net.addr(2), "127.0.53.2:53".parse().unwrap());
        assert!(LabNet::new(0).is_err());
    }
}
