//! DNSViz, the DNSSEC analyser that operators and registries use to find
//! out why a zone is bogus, run against a lab.
//!
//! [`probe`] runs `dnsviz probe -A` (authoritative analysis: it follows
//! the delegations itself rather than asking a resolver) with `-x .:ROOT`,
//! so the analysis starts at the lab root instead of the real one, IPv4
//! only, `-E` for its EDNS compatibility queries, and `-R` for the types
//! to ask at each name. `-N` and `-D` (delegation and DS given on the
//! command line, for a zone not yet delegated) are not used: they cannot
//! be combined with `-x .`, they serve the would-be parent from a private
//! BIND (`named`, not installed), and the lab has a real delegation, DS
//! included, to check. [`grok`] assesses the probe with `dnsviz grok -P` (loopback
//! servers allowed) and the lab root's KSK as the only trusted key, and
//! returns the assessment as [`Assessment`].
//!
//! Debian bookworm's dnsviz 0.9.4 checks for `pygraphviz.release`, which
//! its pygraphviz 1.7 no longer has, so `grok` would stop with "pygraphviz
//! is required, but not installed". Both commands therefore run through
//! [`SHIM`], which provides that module from `pygraphviz.__version__` when
//! it is missing and then runs the packaged `dnsviz` script unchanged.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::lab::run_tool;
use crate::process::require_program;

/// Runs the dnsviz script given as the first argument, with
/// `pygraphviz.release` provided if pygraphviz lacks it.
pub const SHIM: &str = r#"
import runpy, sys, types
try:
    import pygraphviz.release
except ImportError:
    import pygraphviz
    release = types.ModuleType("pygraphviz.release")
    release.version = pygraphviz.__version__
    sys.modules["pygraphviz.release"] = release
    pygraphviz.release = release
script = sys.argv[1]
sys.argv = [script] + sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"#;

/// The types asked at every name: addresses (ANAME, wildcard, CNAME
/// targets), TXT (the wildcard), MX, SOA, NS (referrals at the
/// delegations), CNAME itself, and HTTPS; each one that a name lacks is a
/// NODATA proof to check. Not DS: with DS in `-R`, DNSViz 0.9.4 also asks
/// it at the root, and grok then fails on the root's missing parent
/// (`'NoneType' object has no attribute 'zone'`); it asks DS at every zone
/// cut anyway.
pub const TYPES: &str = "A,AAAA,TXT,MX,SOA,NS,CNAME,HTTPS";

/// A `dnsviz` command run through [`SHIM`] by the script's own interpreter.
fn dnsviz() -> Result<Command> {
    let script = require_program("dnsviz", "dnsviz")?;
    let text = fs::read_to_string(&script).with_context(|| format!("reading {}", script.display()))?;
    // The interpreter the package installed its modules for (Debian:
    // /usr/bin/python3), not whatever python3 comes first on PATH.
    let interpreter = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("#!"))
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains(' '))
        .map(PathBuf::from)
        .with_context(|| {
            format!("{} does not start with a #! line naming its interpreter", script.display())
        })?;
    let mut command = Command::new(interpreter);
    command.arg("-c").arg(SHIM).arg(&script);
    Ok(command)
}

/// Probes `names` from the lab root at `root` (`NAME=ADDRESS`, e.g.
/// `a.root-servers.net.=127.0.53.1`) and writes the probe to `output`.
pub fn probe(root: &str, names: &[&str], output: &Path) -> Result<()> {
    let mut command = dnsviz()?;
    command
        .args(["probe", "-A", "-4", "-E", "-R", TYPES, "-x"])
        .arg(format!(".:{root}"))
        .arg("-o")
        .arg(output)
        .args(names);
    let log = output.with_extension("stdout");
    run_tool("dnsviz-probe", &mut command, &log)
}

/// Assesses the probe in `input`, trusting only the DNSKEY in
/// `trusted_key`.
pub fn grok(input: &Path, trusted_key: &str, dir: &Path) -> Result<Assessment> {
    let keys = dir.join("trusted-keys");
    fs::write(&keys, format!("{trusted_key}\n")).with_context(|| format!("writing {}", keys.display()))?;
    let out = dir.join("grok.json");
    let mut command = dnsviz()?;
    command.args(["grok", "-P", "-t"]).arg(&keys).arg("-r").arg(input).arg("-o").arg(&out);
    run_tool("dnsviz-grok", &mut command, &dir.join("grok.stdout"))?;
    let text = fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let value = serde_json::from_str(&text).with_context(|| format!("dnsviz grok wrote no JSON: {text}"))?;
    Ok(Assessment { value, path: out })
}

/// A problem DNSViz found: where in the assessment, its code, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The JSON path, e.g. `example./delegation`.
    pub at: String,
    /// `DIGEST_INVALID`, `NO_SEP`...
    pub code: String,
    /// DNSViz's explanation.
    pub description: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.at, self.code, self.description)
    }
}

/// What `dnsviz grok` made of a probe.
#[derive(Clone, Debug)]
pub struct Assessment {
    value: Value,
    path: PathBuf,
}

impl Assessment {
    /// Every entry of every `errors` list, anywhere.
    pub fn errors(&self) -> Vec<Problem> {
        let mut found = Vec::new();
        collect(&self.value, "", "errors", &mut found);
        found
    }

    /// Every entry of every `warnings` list, anywhere.
    pub fn warnings(&self) -> Vec<Problem> {
        let mut found = Vec::new();
        collect(&self.value, "", "warnings", &mut found);
        found
    }

    /// The status of the delegation to `zone` (`SECURE`, `BOGUS`,
    /// `INSECURE`...), if DNSViz assessed one.
    pub fn delegation(&self, zone: &str) -> Option<&str> {
        self.value.get(zone)?.get("delegation")?.get("status")?.as_str()
    }

    /// For every query of `name`, each answer, NODATA and NXDOMAIN
    /// response's status: `("www.example./IN/A", "SECURE")`.
    pub fn statuses(&self, name: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let Some(queries) = self.value.get(name).and_then(|n| n.get("queries")).and_then(Value::as_object)
        else {
            return found;
        };
        for (query, responses) in queries {
            for kind in ["answer", "nodata", "nxdomain"] {
                for response in responses.get(kind).and_then(Value::as_array).into_iter().flatten() {
                    let status = response.get("status").and_then(Value::as_str).unwrap_or("(none)");
                    found.push((format!("{query} {kind}"), status.to_owned()));
                }
            }
        }
        found
    }

    /// Where the full assessment was written, for failure messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn collect(value: &Value, at: &str, key: &str, found: &mut Vec<Problem>) {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                let here = if at.is_empty() { name.clone() } else { format!("{at}/{name}") };
                if name == key {
                    for problem in child.as_array().into_iter().flatten() {
                        let text =
                            |field: &str| problem.get(field).and_then(Value::as_str).unwrap_or_default();
                        found.push(Problem {
                            at: at.to_owned(),
                            code: text("code").to_owned(),
                            description: text("description").to_owned(),
                        });
                    }
                } else {
                    collect(child, &here, key, found);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect(item, &format!("{at}[{index}]"), key, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_found_at_any_depth() {
        let value: Value = serde_json::from_str(
            r#"{"example.": {"delegation": {"status": "BOGUS",
                  "ds": [{"status": "INVALID", "errors": [{"code": "DIGEST_INVALID", "description": "d"}]}],
                  "errors": [{"code": "NO_SEP", "description": "n"}]},
                "queries": {"example./IN/A": {"answer": [{"status": "BOGUS"}]}}}}"#,
        )
        .unwrap();
        let assessment = Assessment { value, path: PathBuf::new() };
        let codes: Vec<String> = assessment.errors().into_iter().map(|p| p.code).collect();
        assert_eq!(codes, ["DIGEST_INVALID", "NO_SEP"]);
        assert!(assessment.warnings().is_empty());
        assert_eq!(assessment.delegation("example."), Some("BOGUS"));
        assert_eq!(
            assessment.statuses("example."),
            [("example./IN/A answer".to_owned(), "BOGUS".to_owned())]
        );
    }
}
