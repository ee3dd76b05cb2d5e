//! knotd as a zone-transfer primary: the reference primary that proves the
//! secondaries of [`crate::secondary`] follow a primary as they should,
//! independently of sixgate's own transfer service.
//!
//! [`KnotPrimary`] serves small zones written into its temporary directory
//! and, optionally, a catalog zone (RFC 9432 version 2) written by hand: a
//! member's `<id>.zones` PTR, and its `group.<id>.zones` TXT when it has a
//! group (§4.4.2), so that a test can give members groups the secondaries
//! know nothing about. Each change rewrites a file with the serial
//! incremented and runs `knotc zone-reload`; with `zonefile-load:
//! difference` and a journal of changes, Knot computes the difference and
//! serves it by IXFR (RFC 1995), as a primary that journals its changes
//! must. NOTIFY (RFC 1996) goes to the secondaries set with
//! [`KnotPrimary::notify`], signed with the key when there is one;
//! transfers are allowed from 127.0.0.1, with the key when there is one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::knot::{free_port_pair, which};
use crate::process::{ChildGuard, require_program, wait_until};
use crate::secondary::{TransferKey, soa_serial};

/// How long a start or a reload may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// How many ports to try before giving up.
const START_ATTEMPTS: usize = 5;

/// A catalog member: its zone, its member id and its group.
#[derive(Debug, Clone)]
struct Member {
    zone: String,
    id: u64,
    group: Option<String>,
}

/// The catalog zone as last written.
#[derive(Debug, Clone)]
struct CatalogState {
    name: String,
    serial: u32,
    members: Vec<Member>,
    next_id: u64,
}

/// A running knotd primary; killed on drop.
#[derive(Debug)]
pub struct KnotPrimary {
    // Field order matters: the process dies before its directory goes.
    child: ChildGuard,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    key: Option<TransferKey>,
    /// Zone name to (serial, the text of its `www` TXT record).
    zones: BTreeMap<String, (u32, String)>,
    catalog: Option<CatalogState>,
    notify: Vec<SocketAddr>,
}

impl KnotPrimary {
    /// Starts knotd on 127.0.0.1 serving `zones` at serial 1 and, with
    /// `catalog`, an empty catalog zone of that name; transfers allowed
    /// from 127.0.0.1, signed with `key` if given.
    pub fn start(zones: &[&str], catalog: Option<&str>, key: Option<&TransferKey>) -> Result<Self> {
        let knotd = which("knotd")?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&knotd, zones, catalog, key) {
                Ok(primary) => return Ok(primary),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("knotd never started"))
            .context(format!("starting a knotd primary ({START_ATTEMPTS} attempts)")))
    }

    fn try_start(
        knotd: &Path,
        zones: &[&str],
        catalog: Option<&str>,
        key: Option<&TransferKey>,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-knot-primary-").tempdir()?;
        let port = free_port_pair()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let zones: BTreeMap<String, (u32, String)> =
            zones.iter().map(|z| (absolute(z), (1, "v1".to_owned()))).collect();
        let catalog = catalog.map(|name| CatalogState {
            name: absolute(name),
            serial: 1,
            members: Vec::new(),
            next_id: 1,
        });
        for (zone, (serial, text)) in &zones {
            fs::write(dir.path().join(format!("{zone}zone")), zone_text(zone, *serial, text))?;
        }
        if let Some(c) = &catalog {
            fs::write(dir.path().join(format!("{}zone", c.name)), catalog_text(c))?;
        }
        let conf =
            write_config(dir.path(), addr, key, zones.keys().chain(catalog.iter().map(|c| &c.name)), &[])?;
        let mut command = Command::new(knotd);
        command.arg("-c").arg(&conf).stdout(Stdio::null());
        let mut child = ChildGuard::spawn("knotd-primary", &mut command)?;
        let awaited: Vec<(String, u32)> = zones
            .iter()
            .map(|(z, (s, _))| (z.clone(), *s))
            .chain(catalog.iter().map(|c| (c.name.clone(), c.serial)))
            .collect();
        let ready = wait_until("the knotd primary to serve every zone", DEADLINE, || {
            if let Some(status) = child.exit_status() {
                bail!("knotd exited with {status}:\n{}", child.stderr_tail(20));
            }
            if let Some(line) = child.log_text().lines().find(|l| l.contains("address in use")) {
                return Ok(Some(Err(anyhow::anyhow!("a port was taken: {line}"))));
            }
            for (zone, serial) in &awaited {
                if soa_serial(addr, zone)? != Some(*serial) {
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
                    "knotd primary, config {}; log:\n{}",
                    conf.display(),
                    child.stderr_tail(20)
                )));
            }
        }
        Ok(Self { child, dir, addr, key: key.cloned(), zones, catalog, notify: Vec::new() })
    }

    /// The address it answers on and transfers from.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log (stderr, `info`).
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// The serial `zone` was last written with.
    pub fn serial(&self, zone: &str) -> Result<u32> {
        let zone = absolute(zone);
        if let Some(c) = self.catalog.as_ref().filter(|c| c.name == zone) {
            return Ok(c.serial);
        }
        self.zones.get(&zone).map(|(s, _)| *s).with_context(|| format!("no zone {zone} on the primary"))
    }

    /// Sends NOTIFY for every zone to `secondaries` from now on (replacing
    /// the list), and once now.
    pub fn notify(&mut self, secondaries: &[SocketAddr]) -> Result<()> {
        self.notify = secondaries.to_vec();
        let names: Vec<String> =
            self.zones.keys().cloned().chain(self.catalog.iter().map(|c| c.name.clone())).collect();
        write_config(self.dir.path(), self.addr, self.key.as_ref(), names.iter(), &self.notify)?;
        self.knotc(&["reload"])?;
        for zone in &names {
            self.knotc(&["zone-notify", zone])?;
        }
        Ok(())
    }

    /// Changes `zone`'s `www` TXT record to `text` with the next serial,
    /// and waits until knotd serves it (and has notified); the new serial.
    pub fn change(&mut self, zone: &str, text: &str) -> Result<u32> {
        let zone = absolute(zone);
        let (serial, old) =
            self.zones.get_mut(&zone).with_context(|| format!("no zone {zone} on the primary"))?;
        *serial += 1;
        *old = text.to_owned();
        let serial = *serial;
        fs::write(self.dir.path().join(format!("{zone}zone")), zone_text(&zone, serial, text))?;
        self.reload(&zone, serial)?;
        Ok(serial)
    }

    /// Makes the catalog list `members` (zone, group), in that order: a
    /// zone that stays keeps its member id, a new one gets a new id
    /// (RFC 9432 §5.4); the catalog's new serial.
    pub fn set_catalog(&mut self, members: &[(&str, Option<&str>)]) -> Result<u32> {
        let catalog = self.catalog.as_mut().context("the primary has no catalog zone")?;
        let mut next = Vec::new();
        for (zone, group) in members {
            let zone = absolute(zone);
            let id = match catalog.members.iter().find(|m| m.zone == zone) {
                Some(m) => m.id,
                None => {
                    catalog.next_id += 1;
                    catalog.next_id
                }
            };
            next.push(Member { zone, id, group: group.map(str::to_owned) });
        }
        catalog.members = next;
        catalog.serial += 1;
        let (name, serial) = (catalog.name.clone(), catalog.serial);
        fs::write(self.dir.path().join(format!("{name}zone")), catalog_text(catalog))?;
        self.reload(&name, serial)?;
        Ok(serial)
    }

    /// Reloads `zone` from its file and waits for `serial` to be served.
    fn reload(&self, zone: &str, serial: u32) -> Result<()> {
        self.knotc(&["zone-reload", zone])?;
        wait_until(&format!("the primary to serve {zone} at serial {serial}"), DEADLINE, || {
            Ok((soa_serial(self.addr, zone)? == Some(serial)).then_some(()))
        })
        .with_context(|| format!("knotd primary log:\n{}", self.child.stderr_tail(20)))
    }

    fn knotc(&self, args: &[&str]) -> Result<()> {
        let knotc = require_program("knotc", "knot")?;
        let output = Command::new(knotc)
            .arg("-s")
            .arg(self.dir.path().join("run/knot.sock"))
            .args(args)
            .output()
            .with_context(|| format!("running knotc {args:?}"))?;
        ensure!(
            output.status.success(),
            "knotc {args:?} exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}

/// `name` with a trailing dot.
fn absolute(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

fn zone_text(zone: &str, serial: u32, text: &str) -> String {
    format!(
        "$ORIGIN {zone}\n$TTL 60\n@ SOA ns.{zone} hostmaster.{zone} {serial} 3600 600 86400 60\n\
         @ NS ns\nns A 127.0.0.1\nwww TXT \"{text}\"\n"
    )
}

/// RFC 9432 §4: SOA and NS at the apex, `version` TXT "2", a PTR per
/// member at `<id>.zones`, and its group as `group.<id>.zones` TXT
/// (§4.4.2).
fn catalog_text(catalog: &CatalogState) -> String {
    let name = &catalog.name;
    let mut text = format!(
        "$ORIGIN {name}\n$TTL 0\n@ SOA invalid. invalid. {} 3600 600 2147483646 0\n@ NS invalid.\nversion TXT \"2\"\n",
        catalog.serial
    );
    for m in &catalog.members {
        let _ = writeln!(text, "{:x}.zones PTR {}", m.id, m.zone);
        if let Some(group) = &m.group {
            let _ = writeln!(text, "group.{:x}.zones TXT \"{group}\"", m.id);
        }
    }
    text
}

fn write_config<'a>(
    dir: &Path,
    addr: SocketAddr,
    key: Option<&TransferKey>,
    zones: impl Iterator<Item = &'a String>,
    notify: &[SocketAddr],
) -> Result<PathBuf> {
    let run = dir.join("run");
    fs::create_dir_all(&run)?;
    let mut text = crate::knot::conf_head(&run, dir, &[addr], 1);
    let key_line = match key {
        Some(k) => {
            writeln!(
                text,
                "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
                k.name, k.algorithm, k.secret
            )?;
            format!("\n    key: {}", k.name)
        }
        None => String::new(),
    };
    if !notify.is_empty() {
        text.push_str("remote:\n");
        for (i, s) in notify.iter().enumerate() {
            writeln!(text, "  - id: secondary{i}\n    address: {}@{}{key_line}", s.ip(), s.port())?;
        }
        text.push('\n');
    }
    write!(text, "acl:\n  - id: transfer\n    address: 127.0.0.1{key_line}\n    action: transfer\n\n")?;
    let notify_line = match notify.len() {
        0 => String::new(),
        n => format!(
            "    notify: [{}]\n",
            (0..n).map(|i| format!("secondary{i}")).collect::<Vec<_>>().join(", ")
        ),
    };
    // difference: a reload compares the file with the zone and journals
    // the changes, which is what an IXFR is served from.
    write!(
        text,
        "template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-load: difference\n    zonefile-sync: -1\n    journal-content: changes\n    semantic-checks: off\n    acl: transfer\n{notify_line}\nzone:\n",
        d = dir.display()
    )?;
    for zone in zones {
        writeln!(text, "  - domain: \"{zone}\"\n    file: \"{zone}zone\"")?;
    }
    let conf = dir.join("knot.conf");
    fs::write(&conf, text)?;
    Ok(conf)
}
