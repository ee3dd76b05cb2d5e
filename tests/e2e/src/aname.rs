//! `sixgate aname status` output as data.
//!
//! The command prints one line per ANAME record, six tab-separated fields:
//! `OWNER TARGET ADDRESSES LAST_SUCCESS LAST_ERROR NEXT_REFRESH`. ADDRESSES
//! is a comma-separated list (IPv4 before IPv6, each sorted) or `-`; the
//! times are RFC 3339 in UTC (`2026-11-25T18:00:00Z`) or `-`; LAST_ERROR is
//! free text or `-`. [`AnameStatus::parse`] checks all of that, so a test
//! that reads a status line has already checked its format; times become
//! seconds since the Unix epoch so they can be compared with each other and
//! with the test's own clock.

use std::fmt;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

use crate::sixgate::Cli;

/// One line of `sixgate aname status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnameStatus {
    /// The line as printed.
    pub line: String,
    /// The ANAME's owner, as printed.
    pub owner: String,
    /// Its target, as printed.
    pub target: String,
    /// The addresses served at the owner, in the printed order.
    pub addresses: Vec<IpAddr>,
    /// The ADDRESSES field as printed (`-` when empty).
    pub addresses_text: String,
    /// When the target last resolved, seconds since the epoch.
    pub last_success: Option<i64>,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// When the next resolution is due, seconds since the epoch.
    pub next_refresh: Option<i64>,
}

impl AnameStatus {
    /// Parses one line, checking every field's format.
    pub fn parse(line: &str) -> Result<Self> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [owner, target, addresses, last_success, last_error, next_refresh] = fields.as_slice() else {
            bail!("not six tab-separated fields: {line:?}");
        };
        ensure!(!owner.is_empty() && !target.is_empty(), "empty owner or target: {line:?}");
        let addresses_list = parse_addresses(addresses).with_context(|| format!("ADDRESSES of {line:?}"))?;
        Ok(Self {
            line: line.to_owned(),
            owner: (*owner).to_owned(),
            target: (*target).to_owned(),
            addresses: addresses_list,
            addresses_text: (*addresses).to_owned(),
            last_success: optional_time(last_success).with_context(|| format!("LAST_SUCCESS of {line:?}"))?,
            last_error: match *last_error {
                "-" => None,
                "" => bail!("empty LAST_ERROR (expected text or `-`): {line:?}"),
                text => Some(text.to_owned()),
            },
            next_refresh: optional_time(next_refresh).with_context(|| format!("NEXT_REFRESH of {line:?}"))?,
        })
    }

    /// True if this line is about the ANAME at `owner` (absolute, either
    /// with or without the trailing dot, compared case-insensitively).
    pub fn is_at(&self, owner: &str) -> bool {
        same_name(&self.owner, owner)
    }
}

/// The line quoted, tabs shown as `\t`, so that messages show its fields.
impl fmt::Display for AnameStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.line)
    }
}

/// Runs `sixgate aname status ZONE --data DIR`, which must succeed, and
/// parses every line of its stdout.
pub fn status(cli: &Cli, zone: &str) -> Result<Vec<AnameStatus>> {
    let output = cli.run(&["aname", "status"], &[zone])?.ok()?;
    output
        .stdout
        .lines()
        .map(AnameStatus::parse)
        .collect::<Result<_>>()
        .with_context(|| format!("reading the output of {}", output.args.join(" ")))
}

/// The status line of the ANAME at `owner`, which must be listed once.
pub fn status_of(cli: &Cli, zone: &str, owner: &str) -> Result<AnameStatus> {
    let all = status(cli, zone)?;
    let mut matching = all.iter().filter(|s| s.is_at(owner));
    match (matching.next(), matching.next()) {
        (Some(one), None) => Ok(one.clone()),
        _ => bail!(
            "expected exactly one `aname status {zone}` line for {owner}, got:\n{}",
            all.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("\n")
        ),
    }
}

/// Two domain names compare equal ignoring case and a trailing dot.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Now, in seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn parse_addresses(text: &str) -> Result<Vec<IpAddr>> {
    if text == "-" {
        return Ok(Vec::new());
    }
    let addresses = text
        .split(',')
        .map(|a| a.parse::<IpAddr>().with_context(|| format!("{a:?} is not an IP address")))
        .collect::<Result<Vec<_>>>()?;
    ensure!(!addresses.is_empty(), "empty list (expected `-`)");
    // IpAddr orders every V4 before every V6, then by value.
    let mut sorted = addresses.clone();
    sorted.sort();
    ensure!(sorted == addresses, "not sorted IPv4 first, then IPv6: {text}");
    Ok(addresses)
}

fn optional_time(text: &str) -> Result<Option<i64>> {
    if text == "-" { Ok(None) } else { rfc3339_utc(text).map(Some) }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, with optional fractional seconds (RFC 3339
/// §5.6) that are dropped, as seconds since the Unix epoch. Only UTC (`Z`)
/// is accepted.
pub fn rfc3339_utc(text: &str) -> Result<i64> {
    let bad = || anyhow::anyhow!("{text:?} is not an RFC 3339 UTC time like 2026-11-25T18:00:00Z");
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || (body.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    let bytes = whole.as_bytes();
    let shape = "dddd-dd-ddTdd:dd:dd".as_bytes();
    let fits = bytes.len() == shape.len()
        && bytes.iter().zip(shape).all(|(b, s)| if *s == b'd' { b.is_ascii_digit() } else { b == s });
    if !fits {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64> {
        whole.get(range).and_then(|s| s.parse().ok()).ok_or_else(bad)
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_epoch_seconds() {
        assert_eq!(rfc3339_utc("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(rfc3339_utc("2000-03-01T00:00:01Z").unwrap(), 951_868_801);
        assert_eq!(rfc3339_utc("2026-11-25T18:00:00.25Z").unwrap(), 1_795_629_600);
        for bad in ["2026-11-25 18:00:00Z", "2026-11-25T18:00:00", "2026-11-25T18:00:00+00:00", "-", "x"] {
            assert!(rfc3339_utc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines_parse_and_are_checked() {
        let line = "example.test.\thost.provider.test.\t192.0.2.10,2001:db8::10\t2026-11-25T18:00:00Z\t-\t\
                    2026-11-25T18:00:01Z";
        let status = AnameStatus::parse(line).unwrap();
        assert!(status.is_at("EXAMPLE.test"));
        assert_eq!(status.addresses.len(), 2);
        assert_eq!(status.last_error, None);
        assert_eq!(status.next_refresh.zip(status.last_success).map(|(n, s)| n - s), Some(1));

        let empty = AnameStatus::parse("x.\ty.\t-\t-\ttimeout\t2026-11-25T18:00:01Z").unwrap();
        assert!(empty.addresses.is_empty() && empty.last_success.is_none());
        assert_eq!(empty.last_error.as_deref(), Some("timeout"));

        // v6 before v4, five fields, an empty error.
        assert!(AnameStatus::parse("x.\ty.\t2001:db8::1,192.0.2.1\t-\t-\t-").is_err());
        assert!(AnameStatus::parse("x.\ty.\t-\t-\t-").is_err());
        assert!(AnameStatus::parse("x.\ty.\t-\t-\t\t-").is_err());
    }
}
