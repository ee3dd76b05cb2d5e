//! Schema and migrations. Each migration runs once, in order, inside a
//! transaction; `meta.schema_version` records how far a database is.

use rusqlite::{Connection, params};

use crate::StoreError;

/// Migrations, in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: zones, records, journal.
    "CREATE TABLE zones (
        id INTEGER PRIMARY KEY,
        name BLOB NOT NULL UNIQUE,      -- apex, wire form, lowercased
        apex BLOB NOT NULL,             -- apex, wire form, original case
        serial INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
        owner BLOB NOT NULL,            -- wire form, original case
        owner_key BLOB NOT NULL,        -- wire form, lowercased
        rtype INTEGER NOT NULL,
        ttl INTEGER NOT NULL,
        rdata BLOB NOT NULL             -- uncompressed wire form
    );
    CREATE INDEX records_owner ON records (zone_id, owner_key, rtype);
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        zone_id INTEGER NOT NULL,
        zone_name BLOB NOT NULL,
        serial INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('diff', 'replace', 'delete')),
        changes BLOB,
        at INTEGER NOT NULL
    );
    CREATE INDEX journal_zone ON journal (zone_name, id);",
];

/// Brings the database to the latest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 =
        tx.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap_or(0);
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(StoreError::TooNew(version, latest));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![i as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(())
}
