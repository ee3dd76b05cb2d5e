//! Zonemaster, the delegation checker that registries run before they
//! accept a zone, run against a lab.
//!
//! [`zonemaster`] runs `zonemaster-cli` (Debian package `zonemaster-cli`)
//! on one zone with every test case of its default profile, IPv4 only (the
//! lab has no IPv6), root hints pointing at the lab root
//! ([`crate::lab::LabRoot::hints`]), and `--json --raw`: one JSON array of
//! messages, each with its level, test case, tag and arguments, untranslated
//! so that tests match tags rather than prose. Every query it sends goes to
//! the lab: it resolves everything, the name servers' addresses included,
//! from the hints down.
//!
//! [`Report::findings`] are the messages at WARNING or above. A lab cannot
//! avoid two of them, and [`LAB_ONLY`] names those: its name servers have
//! loopback addresses, and those addresses have no PTR records.

use std::fmt;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::lab::run_tool;
use crate::process::require_program;

/// Tags that every lab raises and no real deployment would: the name
/// servers' addresses are loopback (ADDRESS01, RFC 1122 §3.2.1.3) and have
/// no reverse (ADDRESS02) nor matching PTR (ADDRESS03) records.
pub const LAB_ONLY: &[&str] = &[
    "NAMESERVER_IP_PRIVATE_NETWORK",
    "NAMESERVER_IP_WITHOUT_REVERSE",
    "NAMESERVER_IP_PTR_MISMATCH",
    "NO_RESPONSE_PTR_QUERY",
];

/// One Zonemaster message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG.
    pub level: String,
    /// The test case (`DNSSEC02`), or `UNSPECIFIED`.
    pub testcase: String,
    /// The message tag (`DS02_NO_MATCH_DS_DNSKEY`).
    pub tag: String,
    /// The arguments, as JSON text.
    pub args: String,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.level, self.testcase, self.tag, self.args)
    }
}

/// Everything one run reported.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every message down to INFO, in order.
    pub messages: Vec<Message>,
}

impl Report {
    /// The messages at WARNING, ERROR or CRITICAL.
    pub fn findings(&self) -> Vec<&Message> {
        self.messages
            .iter()
            .filter(|m| matches!(m.level.as_str(), "WARNING" | "ERROR" | "CRITICAL"))
            .collect()
    }

    /// The findings whose tag is not in [`LAB_ONLY`].
    pub fn faults(&self) -> Vec<&Message> {
        self.findings().into_iter().filter(|m| !LAB_ONLY.contains(&m.tag.as_str())).collect()
    }

    /// True if some message has this tag.
    pub fn has(&self, tag: &str) -> bool {
        self.messages.iter().any(|m| m.tag == tag)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for message in &self.messages {
            writeln!(f, "{message}")?;
        }
        Ok(())
    }
}

/// Runs every default test case of Zonemaster on `zone`, resolving from
/// the root `hints` file; the JSON output is written to `output` and kept.
pub fn zonemaster(zone: &str, hints: &Path, output: &Path) -> Result<Report> {
    let program = require_program("zonemaster-cli", "zonemaster-cli")?;
    let mut command = Command::new(&program);
    command.arg("--hints").arg(hints).args([
        "--no-ipv6",
        "--level",
        "INFO",
        "--json",
        "--raw",
        "--no-progress",
        zone,
    ]);
    run_tool("zonemaster-cli", &mut command, output)?;
    let text = fs::read_to_string(output).with_context(|| format!("reading {}", output.display()))?;
    parse(&text).with_context(|| format!("zonemaster-cli {zone} printed:\n{text}"))
}

/// Parses `--json --raw` output: an array of `{level, testcase, tag, args}`.
pub fn parse(text: &str) -> Result<Report> {
    let value: Value = serde_json::from_str(text.trim()).context("zonemaster-cli output is not JSON")?;
    let Value::Array(entries) = value else { bail!("zonemaster-cli output is not a JSON array") };
    let field = |entry: &Value, key: &str| -> Result<String> {
        entry
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("no {key} in {entry}"))
    };
    let messages = entries
        .iter()
        .map(|entry| {
            Ok(Message {
                level: field(entry, "level")?,
                testcase: field(entry, "testcase")?,
                tag: field(entry, "tag")?,
                args: entry.get("args").map(Value::to_string).unwrap_or_default(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Report { messages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_only_findings_are_not_faults() {
        let report = parse(
            r#"[{"args":{"ns_ip":"127.0.53.2"},"level":"ERROR","module":"ADDRESS","tag":"NAMESERVER_IP_PRIVATE_NETWORK","testcase":"ADDRESS01","timestamp":0.02},
                {"args":{"keytag":1},"level":"ERROR","module":"DNSSEC","tag":"DS02_NO_MATCH_DS_DNSKEY","testcase":"DNSSEC02","timestamp":0.04},
                {"args":{},"level":"INFO","module":"DNSSEC","tag":"DS15_NO_CDS_CDNSKEY","testcase":"DNSSEC15","timestamp":0.07}]"#,
        )
        .unwrap();
        assert_eq!(report.findings().len(), 2);
        let faults = report.faults();
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].tag, "DS02_NO_MATCH_DS_DNSKEY");
        assert!(report.has("DS15_NO_CDS_CDNSKEY"));
        assert!(parse("not json").is_err());
    }
}
