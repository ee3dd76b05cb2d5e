//! Writing into a stopped server's `sixgate.db` behind its back.
//!
//! Some faults are about data that today's write path refuses but an older
//! version wrote (an RRset larger than a DNS message, say): a test can only
//! reach them by putting the rows there itself, with SQLite, while no
//! `sixgate` process has the database open. The rows follow the schema of
//! `crates/store/src/schema.rs`: `zones.name` is the apex in wire form,
//! lowercased; `records` holds one row per record with the owner in wire
//! form (`owner`, as written, and `owner_key`, lowercased) and the RDATA in
//! uncompressed wire form. The zone's serial goes up by one, as a write
//! through the store would have done; no journal entry is written, since a
//! server reads every zone whole from the `records` table when it starts.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// The database file in a data directory (`sixgate_store::DB_FILE`).
pub const DB_FILE: &str = "sixgate.db";

/// `name` (absolute or not, `.` for the root) in uncompressed wire form.
/// Only plain ASCII labels without escapes, which is all the tests use.
pub fn wire_name(name: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        ensure!(label.len() <= 63 && !label.contains('\\'), "label {label:?} of {name:?}");
        out.push(u8::try_from(label.len())?);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    ensure!(out.len() <= 255, "{name:?} is longer than 255 octets");
    Ok(out)
}

/// TXT RDATA holding one character-string per item of `strings` (each at
/// most 255 octets).
pub fn txt_rdata(strings: &[&str]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for s in strings {
        out.push(u8::try_from(s.len()).with_context(|| format!("TXT string of {} octets", s.len()))?);
        out.extend_from_slice(s.as_bytes());
    }
    Ok(out)
}

/// Adds the records `owner rtype ttl rdata` (one per item of `rdatas`) to
/// `zone` in the database of the data directory `data`, and bumps the
/// zone's serial. No server may be running on `data`.
pub fn plant_rrset(
    data: &Path,
    zone: &str,
    owner: &str,
    rtype: u16,
    ttl: u32,
    rdatas: &[Vec<u8>],
) -> Result<()> {
    let path = data.join(DB_FILE);
    ensure!(path.is_file(), "no {} (import a zone first)", path.display());
    let mut db = rusqlite::Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let apex = wire_name(&zone.to_ascii_lowercase())?;
    let owner_wire = wire_name(owner)?;
    let owner_key = owner_wire.to_ascii_lowercase();
    let tx = db.transaction()?;
    let zone_id: i64 = match tx.query_row("SELECT id FROM zones WHERE name = ?1", [&apex], |row| row.get(0)) {
        Ok(id) => id,
        Err(rusqlite::Error::QueryReturnedNoRows) => bail!("no zone {zone} in {}", path.display()),
        Err(error) => return Err(error.into()),
    };
    {
        let mut insert = tx.prepare(
            "INSERT INTO records (zone_id, owner, owner_key, rtype, ttl, rdata) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for rdata in rdatas {
            insert.execute(rusqlite::params![zone_id, owner_wire, owner_key, rtype, ttl, rdata])?;
        }
    }
    tx.execute(
        "UPDATE zones SET serial = serial + 1, updated_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = ?1",
        [zone_id],
    )?;
    tx.commit().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_txt_data_in_wire_form() {
        assert_eq!(wire_name("a.Test.").unwrap(), b"\x01a\x04Test\x00");
        assert_eq!(wire_name("a.test").unwrap(), b"\x01a\x04test\x00");
        assert_eq!(wire_name(".").unwrap(), b"\x00");
        assert!(wire_name(&format!("{}.test.", "x".repeat(64))).is_err());
        assert_eq!(txt_rdata(&["ab", ""]).unwrap(), b"\x02ab\x00");
        assert!(txt_rdata(&[&"x".repeat(256)]).is_err());
    }
}
