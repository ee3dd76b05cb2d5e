//! kdig, Knot's command-line DNS client, as an operator would use it.
//!
//! Where [`crate::client`] shows the bytes a server sent, this shows what a
//! person running `kdig @server name type` reads: the status, the header
//! flags and the records of each section in presentation format, unknown
//! types in RFC 3597 `\# len hex` form. The text is kdig 3.x's default
//! output (`;; ->>HEADER<<- ... status: NOERROR`, `;; Flags: qr aa; ...`,
//! `;; ANSWER SECTION:` followed by tab-separated records and a blank line);
//! anything that does not parse is an error that quotes the whole output.

use std::net::SocketAddr;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::require_program;

/// One record line of kdig's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigRecord {
    /// The owner as printed (absolute, trailing dot).
    pub owner: String,
    /// The TTL.
    pub ttl: u32,
    /// The class mnemonic (`IN`).
    pub class: String,
    /// The type mnemonic, or `TYPEnnn` for a type kdig does not know.
    pub rtype: String,
    /// The RDATA as printed.
    pub data: String,
}

/// kdig's answer to one query.
#[derive(Clone, Debug)]
pub struct Dig {
    /// The command line, for messages.
    pub command: String,
    /// The whole output.
    pub text: String,
    /// The status (`NOERROR`, `NXDOMAIN`, ...).
    pub status: String,
    /// The header flags (`qr`, `aa`, ...).
    pub flags: Vec<String>,
    /// The answer section.
    pub answer: Vec<DigRecord>,
    /// The authority section.
    pub authority: Vec<DigRecord>,
}

impl Dig {
    /// The AA flag.
    pub fn aa(&self) -> bool {
        self.flag("aa")
    }

    /// The AD flag: a validating resolver found the answer secure
    /// (RFC 4035 §3.2.3).
    pub fn ad(&self) -> bool {
        self.flag("ad")
    }

    /// True if the header has `flag` (`qr`, `aa`, `tc`, `rd`, `ra`, `ad`,
    /// `cd`).
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The answer records of type `rtype` (mnemonic, case-insensitive).
    pub fn answers(&self, rtype: &str) -> Vec<&DigRecord> {
        self.answer.iter().filter(|r| r.rtype.eq_ignore_ascii_case(rtype)).collect()
    }

    /// The RDATA of the answer records of type `rtype`, sorted.
    pub fn data(&self, rtype: &str) -> Vec<String> {
        let mut data: Vec<String> = self.answers(rtype).iter().map(|r| r.data.clone()).collect();
        data.sort();
        data
    }
}

impl std::fmt::Display for Dig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "$ {}\n{}", self.command, self.text)
    }
}

/// Runs `kdig @ADDR -p PORT +time=2 +retry=2 ARGS...` and parses its output.
/// Fails if kdig is not installed, exits non-zero (no answer) or prints
/// something this module cannot read.
pub fn kdig(server: SocketAddr, args: &[&str]) -> Result<Dig> {
    let program = require_program("kdig", "knot-dnsutils")?;
    let at = format!("@{}", server.ip());
    let port = server.port().to_string();
    let mut all = vec![at.as_str(), "-p", &port, "+time=2", "+retry=2"];
    all.extend_from_slice(args);
    let command = format!("kdig {}", all.join(" "));
    let output = Command::new(program).args(&all).output().with_context(|| format!("running {command}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("{command} exited with {}:\n{text}{}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    parse(&command, text)
}

fn parse(command: &str, text: String) -> Result<Dig> {
    let fail = |what: &str| anyhow::anyhow!("{what} in the output of {command}:\n{text}");
    let status = text
        .lines()
        .find(|l| l.starts_with(";; ->>HEADER<<-"))
        .and_then(|l| l.split("status: ").nth(1))
        .and_then(|rest| rest.split(';').next())
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| fail("no status"))?;
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; Flags:"))
        .and_then(|rest| rest.split(';').next())
        .map(|f| f.split_whitespace().map(str::to_owned).collect())
        .ok_or_else(|| fail("no flags line"))?;
    let answer = section(&text, "ANSWER").map_err(|e| fail(&e.to_string()))?;
    let authority = section(&text, "AUTHORITY").map_err(|e| fail(&e.to_string()))?;
    Ok(Dig { command: command.to_owned(), text, status, flags, answer, authority })
}

/// The records under `;; NAME SECTION:`, up to the next blank line; none if
/// the section is absent (kdig leaves empty sections out).
fn section(text: &str, name: &str) -> Result<Vec<DigRecord>> {
    let header = format!(";; {name} SECTION:");
    let mut lines = text.lines().skip_while(|l| l.trim_end() != header);
    if lines.next().is_none() {
        return Ok(Vec::new());
    }
    lines.take_while(|l| !l.trim().is_empty()).map(record).collect()
}

fn record(line: &str) -> Result<DigRecord> {
    // kdig pads the owner with spaces to a column and then writes a tab, but
    // an owner longer than the column is followed by a single space instead,
    // so the owner ends at the first whitespace of any kind (a presentation
    // name has none unescaped); the other fields are tab-separated.
    let line = line.trim_start();
    let (owner, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let fields: Vec<&str> = rest.trim_start().splitn(4, '\t').map(str::trim).collect();
    let [ttl, class, rtype, data] = fields.as_slice() else {
        bail!("a record line without an owner and four tab-separated fields: {line:?}");
    };
    Ok(DigRecord {
        owner: (*owner).to_owned(),
        ttl: ttl.parse().with_context(|| format!("bad TTL in {line:?}"))?,
        class: (*class).to_owned(),
        rtype: (*rtype).to_owned(),
        data: (*data).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOERROR: &str = ";; ->>HEADER<<- opcode: QUERY; status: NOERROR; id: 1842\n\
;; Flags: qr aa; QUERY: 1; ANSWER: 2; AUTHORITY: 0; ADDITIONAL: 0\n\
\n\
;; QUESTION SECTION:\n\
;; example.test.       \t\tIN\tTYPE65401\n\
\n\
;; ANSWER SECTION:\n\
example.test.       \t300\tIN\tTYPE65401\t\\# 20 04686F73740870726F7669646572047465737400\n\
example.test.       \t1\tIN\tA\t192.0.2.10\n\
\n\
;; Received 62 B\n";

    const NODATA: &str = ";; ->>HEADER<<- opcode: QUERY; status: NOERROR; id: 6438\n\
;; Flags: qr aa; QUERY: 1; ANSWER: 0; AUTHORITY: 1; ADDITIONAL: 0\n\
\n\
;; QUESTION SECTION:\n\
;; example.test.       \t\tIN\tAAAA\n\
\n\
;; AUTHORITY SECTION:\n\
example.test.       \t300\tIN\tSOA\tns1.example.test. h. 1 3600 900 604800 300\n\
\n\
;; Received 71 B\n";

    #[test]
    fn kdig_output_parses_into_status_flags_and_sections() {
        let dig = parse("kdig", NOERROR.to_owned()).unwrap();
        assert_eq!(dig.status, "NOERROR");
        assert!(dig.aa());
        assert!(!dig.ad());
        assert_eq!(dig.answer.len(), 2);
        assert_eq!(dig.data("type65401"), vec!["\\# 20 04686F73740870726F7669646572047465737400"]);
        assert_eq!(dig.answers("A").first().map(|r| r.ttl), Some(1));
        assert!(dig.authority.is_empty());

        let dig = parse("kdig", NODATA.to_owned()).unwrap();
        assert!(dig.answer.is_empty());
        assert_eq!(dig.authority.first().map(|r| r.rtype.as_str()), Some("SOA"));
    }

    #[test]
    fn a_long_owner_followed_by_a_space_instead_of_a_tab_parses() {
        let text =
            NOERROR.replace("example.test.       \t1\tIN\tA", "anything.wild.child.parent.test. 1\tIN\tA");
        let dig = parse("kdig", text).unwrap();
        let record = dig.answers("A").first().copied().cloned().unwrap();
        assert_eq!(record.owner, "anything.wild.child.parent.test.");
        assert_eq!((record.ttl, record.data.as_str()), (1, "192.0.2.10"));
    }

    #[test]
    fn output_without_a_header_is_an_error() {
        assert!(parse("kdig", ";; Flags: qr\n".to_owned()).is_err());
        assert!(parse("kdig", NOERROR.replace("\t300\t", "\tx\t")).is_err());
    }
}
