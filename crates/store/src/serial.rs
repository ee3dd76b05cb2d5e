//! How SOA serials advance. Whatever the scheme, a serial only moves
//! forward in RFC 1982 terms: the scheme proposes a value for the current
//! time and the store takes it only if it is newer than the old serial
//! plus one, so a clock that steps back or a burst of changes within one
//! second never produces a serial that secondaries would ignore.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// A serial scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerialScheme {
    /// Seconds since 1970 (the default): readable as a time, and the same
    /// on every node that writes.
    #[default]
    Unixtime,
    /// `YYYYMMDDnn`, the date-counter convention of RFC 1912 §2.2.
    Date,
    /// Plus one per change.
    Increment,
}

impl SerialScheme {
    /// The serial this scheme proposes at `now` (unix seconds); `None` for
    /// [`SerialScheme::Increment`].
    pub fn at(self, now: i64) -> Option<u32> {
        match self {
            SerialScheme::Unixtime => u32::try_from(now).ok(),
            SerialScheme::Date => {
                let (y, m, d) = sixgate_dns::civil::from_days(now.div_euclid(86_400));
                u32::try_from(y * 1_000_000 + m * 10_000 + d * 100).ok()
            }
            SerialScheme::Increment => None,
        }
    }

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SerialScheme::Unixtime => "unixtime",
            SerialScheme::Date => "date",
            SerialScheme::Increment => "increment",
        }
    }

    /// Parses a configuration name.
    pub fn from_name(text: &str) -> Option<SerialScheme> {
        [SerialScheme::Unixtime, SerialScheme::Date, SerialScheme::Increment]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    fn code(self) -> i64 {
        match self {
            SerialScheme::Unixtime => 0,
            SerialScheme::Date => 1,
            SerialScheme::Increment => 2,
        }
    }
}

/// A stored time (unix seconds) in RFC 3339 form, UTC:
/// `2026-11-25T18:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = sixgate_dns::civil::from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", t / 3600, t / 60 % 60, t % 60)
}

pub(crate) fn load(conn: &Connection) -> Result<SerialScheme, StoreError> {
    let code: Option<i64> =
        conn.query_row("SELECT value FROM meta WHERE key = 'serial_scheme'", [], |r| r.get(0)).optional()?;
    Ok(match code {
        Some(1) => SerialScheme::Date,
        Some(2) => SerialScheme::Increment,
        _ => SerialScheme::Unixtime,
    })
}

pub(crate) fn save(conn: &Connection, scheme: SerialScheme) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('serial_scheme', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![scheme.code()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(SerialScheme::Date.at(1_795_600_000), Some(2_026_112_500));
        assert_eq!(rfc3339(1_795_600_000), "2026-11-25T09:46:40Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
