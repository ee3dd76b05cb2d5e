//! Presigned zones made with ldns-utils, for chains of trust around the
//! server under test.
//!
//! A validating resolver needs a signed path from its trust anchor down to
//! the answer. When the zone under test is a child, its parent has to be
//! signed by something else, with the child's DS in it; this module makes
//! such zones in a temporary directory with the ldnsutils command line:
//! `ldns-keygen` for keys, `ldns-key2ds` for DS records and `ldns-signzone`
//! for NSEC-signed zone files, which knotd then serves as they are.
//!
//! Keys are ECDSA P-256 (algorithm 13): fast to make and to sign with, and
//! what validators must support (RFC 8624 §3.1). A key made with `ksk` has
//! the SEP flag (DNSKEY flags 257); `ldns-signzone` signs the DNSKEY RRset
//! with the KSKs it is given and everything else with the other keys, or
//! with the KSKs alone when there are no others.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

use crate::process::{ZoneFile, require_program};

/// The Debian package that has the ldns command-line tools.
const PACKAGE: &str = "ldnsutils";

/// A key pair made by `ldns-keygen`: `BASE.key` (the DNSKEY record) and
/// `BASE.private` in one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// The zone the key belongs to, absolute (trailing dot).
    pub zone: String,
    /// The path without extension (`DIR/Kzone.+013+12345`), as
    /// `ldns-signzone` wants it.
    pub base: PathBuf,
}

impl Key {
    /// Makes a new ECDSA P-256 key for `zone` in `dir`; with `ksk` it gets
    /// the SEP flag (257).
    pub fn generate(dir: &Path, zone: &str, ksk: bool) -> Result<Self> {
        let program = require_program("ldns-keygen", PACKAGE)?;
        let zone = absolute(zone);
        let mut command = Command::new(program);
        command.current_dir(dir).args(["-a", "ECDSAP256SHA256"]);
        if ksk {
            command.arg("-k");
        }
        command.arg(&zone);
        let output = run(&mut command)?;
        let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if name.is_empty() || name.contains(['/', '\n']) {
            bail!("ldns-keygen printed {name:?}, not a key's base name");
        }
        Ok(Self { zone, base: dir.join(name) })
    }

    /// The DNSKEY record, one line in presentation format (for a
    /// trust anchor or a zone).
    pub fn dnskey(&self) -> Result<String> {
        let path = self.file("key");
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .map(|line| line.split(';').next().unwrap_or_default().trim())
            .find(|line| !line.is_empty())
            .map(str::to_owned)
            .with_context(|| format!("no DNSKEY record in {}", path.display()))
    }

    /// `BASE.EXTENSION`; the base name has dots of its own, so
    /// `Path::with_extension` would cut it.
    fn file(&self, extension: &str) -> PathBuf {
        let mut path = self.base.clone().into_os_string();
        path.push(".");
        path.push(extension);
        PathBuf::from(path)
    }

    /// The SHA-256 DS record of this key (RFC 4509), one line in
    /// presentation format, for the parent zone or a trust anchor.
    pub fn ds(&self) -> Result<String> {
        let program = require_program("ldns-key2ds", PACKAGE)?;
        let key = self.file("key");
        let output = run(Command::new(program).args(["-n", "-2"]).arg(&key))?;
        let ds = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !ds.contains("\tDS\t") && !ds.contains(" DS ") {
            bail!("ldns-key2ds printed {ds:?} for {}", key.display());
        }
        Ok(ds)
    }
}

/// When signatures are valid, in Unix seconds (RRSIG inception and
/// expiration, RFC 4034 §3.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// The inception.
    pub inception: u64,
    /// The expiration.
    pub expiration: u64,
}

/// Signs the zone `text` (RFC 1035 format, `$ORIGIN` optional) at `origin`
/// with `keys`, writing `DIR/ORIGINzone` and the NSEC-signed
/// `DIR/ORIGINsigned`, and returns the signed file. Without `validity`,
/// ldns-signzone's default applies: from now to four weeks from now.
pub fn sign_zone(
    dir: &Path,
    origin: &str,
    text: &str,
    keys: &[&Key],
    validity: Option<Validity>,
) -> Result<ZoneFile> {
    let program = require_program("ldns-signzone", PACKAGE)?;
    let origin = absolute(origin);
    if keys.is_empty() {
        bail!("signing {origin} needs at least one key");
    }
    let unsigned = dir.join(format!("{origin}zone"));
    let signed = dir.join(format!("{origin}signed"));
    fs::write(&unsigned, text).with_context(|| format!("writing {}", unsigned.display()))?;
    let mut command = Command::new(program);
    command.arg("-o").arg(&origin).arg("-f").arg(&signed);
    if let Some(validity) = validity {
        command.arg("-i").arg(validity.inception.to_string());
        command.arg("-e").arg(validity.expiration.to_string());
    }
    command.arg(&unsigned);
    for key in keys {
        if key.zone != origin {
            bail!("key {} belongs to {}, not {origin}", key.base.display(), key.zone);
        }
        command.arg(&key.base);
    }
    run(&mut command)?;
    Ok(ZoneFile::new(&origin, signed))
}

/// Writes an unsigned zone `text` to `DIR/ORIGINzone` and returns it.
pub fn unsigned_zone(dir: &Path, origin: &str, text: &str) -> Result<ZoneFile> {
    let origin = absolute(origin);
    let path = dir.join(format!("{origin}zone"));
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(ZoneFile::new(&origin, path))
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

/// Runs `command` to completion; a non-zero exit is an error quoting its
/// stderr.
fn run(command: &mut Command) -> Result<Output> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} exited with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}
