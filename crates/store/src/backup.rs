//! Backup and restore of the whole store.
//!
//! Everything the service needs to stand up again lives in the database:
//! zones and records (derived ones too: ANAME addresses, the proxy's A
//! records, signatures and chains), the journal, DNSSEC keys with their
//! states, TSIG and transfer keys, accounts, token hashes, limits, backend
//! prefixes, proxy addresses and hostnames, secondaries and the stored
//! settings. The other files in the data directory are not state: the
//! first admin token (a plaintext copy of a secret whose hash is in the
//! database, left out so that a backup sealed with a key-encryption key
//! holds no secret in the clear), the notify socket and the lock.
//!
//! A backup is `VACUUM INTO` a new file from a read transaction: it holds
//! exactly one committed state, WAL frames included (a reader sees the
//! committed WAL), and in WAL mode a reader never blocks the server's
//! writer, so one pass is better than the online backup API's steps,
//! which start over whenever another process commits and so may never
//! finish under a stream of writes. The copy is also compacted: no free
//! page of it can carry an old value.

use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::files::{self, FILE_MODE};
use crate::{BUSY_TIMEOUT, DB_FILE, Store, StoreError};

/// What a backup holds, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// The schema version it was written with.
    pub schema_version: i64,
    /// Zones.
    pub zones: u64,
    /// Records, derived ones included.
    pub records: u64,
    /// Signed zones.
    pub signed_zones: u64,
    /// DNSSEC keys.
    pub dnssec_keys: u64,
    /// TSIG keys: UPDATE and transfer keys.
    pub tsig_keys: u64,
    /// Accounts.
    pub accounts: u64,
    /// API tokens (hashes).
    pub tokens: u64,
    /// Hostnames enabled for the proxy.
    pub proxy_hosts: u64,
    /// Secondaries.
    pub secondaries: u64,
    /// The id of the key-encryption key its secrets are sealed with.
    pub kek_id: Option<String>,
    /// Size in octets.
    pub size: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "schema_version\t{}", self.schema_version)?;
        writeln!(f, "zones\t{}", self.zones)?;
        writeln!(f, "records\t{}", self.records)?;
        writeln!(f, "signed_zones\t{}", self.signed_zones)?;
        writeln!(f, "dnssec_keys\t{}", self.dnssec_keys)?;
        writeln!(f, "tsig_keys\t{}", self.tsig_keys)?;
        writeln!(f, "accounts\t{}", self.accounts)?;
        writeln!(f, "tokens\t{}", self.tokens)?;
        writeln!(f, "proxy_hosts\t{}", self.proxy_hosts)?;
        writeln!(f, "secondaries\t{}", self.secondaries)?;
        writeln!(
            f,
            "secrets\t{}",
            self.kek_id.as_ref().map_or("plaintext".into(), |id| format!("sealed with kek {id}"))
        )?;
        write!(f, "size\t{}", self.size)
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// The schema version this sixgate writes.
pub fn schema_version() -> i64 {
    crate::schema::latest()
}

/// Writes a consistent copy of the store in `dir` to `dest`, while
/// servers and commands keep using it: into a private file beside `dest`,
/// synced, checked, then renamed over it. The store is not migrated: a
/// server of an older version may be running on it.
pub fn backup(dir: &Path, dest: &Path) -> Result<Summary, StoreError> {
    let db = dir.join(DB_FILE);
    if !db.is_file() {
        return Err(StoreError::NotFound(format!("no store in {}", dir.display())));
    }
    let src = Connection::open_with_flags(
        &db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(BUSY_TIMEOUT)?;
    let version = stored_version(&src)?.ok_or_else(|| {
        StoreError::BadInput(format!("{} is not a sixgate store: it has no schema version", db.display()))
    })?;
    if version > schema_version() {
        return Err(StoreError::TooNew(version, schema_version()));
    }
    let tmp = sibling(dest, ".tmp");
    remove_if_there(&tmp)?;
    // VACUUM INTO writes into an empty file as it finds it, so the mode
    // set here is the copy's: it holds token hashes, and secrets unless
    // they are sealed.
    OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&tmp).map_err(io_error(&tmp))?;
    let done = (|| -> Result<Summary, StoreError> {
        let target =
            tmp.to_str().ok_or_else(|| StoreError::BadInput(format!("{} is not UTF-8", tmp.display())))?;
        src.execute("VACUUM INTO ?1", [target])?;
        drop(src);
        let summary = check(&tmp)?;
        let file = OpenOptions::new().read(true).open(&tmp).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, dest).map_err(io_error(dest))?;
        sync_parent(dest)?;
        Ok(summary)
    })();
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}

/// Checks that `file` is a sound sixgate store this version can open
/// (after migrating it forward) and counts what it holds. `file` is
/// turned into a single file (no WAL) if it is not one.
fn check(file: &Path) -> Result<Summary, StoreError> {
    let not_ours =
        |why: &str| StoreError::BadInput(format!("{} is not a sixgate backup: {why}", file.display()));
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let result: String = match conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)) {
        Ok(r) => r,
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::NotADatabase => {
            return Err(not_ours("not an SQLite database"));
        }
        Err(e) => return Err(e.into()),
    };
    if result != "ok" {
        return Err(StoreError::BadInput(format!("{} is damaged: {result}", file.display())));
    }
    let version = stored_version(&conn)?.ok_or_else(|| not_ours("it has no schema version"))?;
    if version > schema_version() {
        return Err(StoreError::TooNew(version, schema_version()));
    }
    // One self-contained file: what is installed must not depend on a
    // WAL beside it.
    conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    let mut s = summary(&conn)?;
    s.schema_version = version;
    drop(conn);
    s.size = fs::metadata(file).map_err(io_error(file))?.len();
    Ok(s)
}

/// Installs the backup `file` as the store in `dir`: checked, migrated
/// forward to this version, then renamed into place. Refused while a
/// server runs on `dir` ([`files::lock_exclusive`]), and over an existing
/// store unless `force`. The process's key-encryption key must open the
/// backup's secrets (it seals plaintext ones, as [`Store::open`] does).
pub fn restore(file: &Path, dir: &Path, force: bool) -> Result<Summary, StoreError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    fs::set_permissions(dir, Permissions::from_mode(files::DIR_MODE)).map_err(io_error(dir))?;
    let _lock = files::lock_exclusive(dir)?;
    let db = dir.join(DB_FILE);
    let existing = fs::metadata(&db).map(|m| m.len() > 0).unwrap_or(false);
    if existing && !force {
        return Err(StoreError::Conflict(format!(
            "{} already holds a store; restore into a new directory, or give --force to replace it",
            dir.display()
        )));
    }
    let staging = dir.join(".restore");
    match fs::remove_dir_all(&staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(&staging)(e)),
        _ => {}
    }
    let done = (|| -> Result<Summary, StoreError> {
        fs::create_dir(&staging).map_err(io_error(&staging))?;
        let staged = staging.join(DB_FILE);
        {
            let mut from = fs::File::open(file).map_err(io_error(file))?;
            let mut to = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&staged)
                .map_err(io_error(&staged))?;
            std::io::copy(&mut from, &mut to).map_err(io_error(&staged))?;
        }
        check(&staged)?;
        // Migrations forward and the key-encryption key, as any open.
        drop(Store::open(&staging)?);
        let summary = check(&staged)?;
        fs::File::open(&staged).and_then(|f| f.sync_all()).map_err(io_error(&staged))?;
        // The old store's WAL must not be applied to the new database.
        for suffix in ["-wal", "-shm", "-journal"] {
            remove_if_there(&dir.join(format!("{DB_FILE}{suffix}")))?;
        }
        fs::rename(&staged, &db).map_err(io_error(&db))?;
        sync_parent(&db)?;
        Ok(summary)
    })();
    let _ = fs::remove_dir_all(&staging);
    let summary = done?;
    drop_stale_admin_token(dir)?;
    Ok(summary)
}

/// The first admin token's file names a token of the store it was made
/// for; after a restore it stays only if the restored store knows it.
fn drop_stale_admin_token(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(files::ADMIN_TOKEN_FILE);
    let Ok(text) = fs::read_to_string(&path) else { return Ok(()) };
    let store = Store::open(dir)?;
    if store.token_by_secret(text.trim())?.is_none() {
        remove_if_there(&path)?;
    }
    Ok(())
}

fn stored_version(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let has_meta: bool = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |_| Ok(()))
        .optional()?
        .is_some();
    if !has_meta {
        return Ok(None);
    }
    Ok(conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()?)
}

fn summary(conn: &Connection) -> Result<Summary, StoreError> {
    let count = |table: &str| -> Result<u64, StoreError> {
        let exists = conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Ok(0);
        }
        Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))? as u64)
    };
    let kek: Option<i64> =
        conn.query_row("SELECT value FROM meta WHERE key = 'kek_id'", [], |r| r.get(0)).optional()?;
    Ok(Summary {
        schema_version: 0,
        zones: count("zones")?,
        records: count("records")?,
        signed_zones: count("dnssec_zones")?,
        dnssec_keys: count("dnssec_keys")?,
        tsig_keys: count("tsig_keys")? + count("transfer_keys")?,
        accounts: count("accounts")?,
        tokens: count("tokens")?,
        proxy_hosts: count("proxy_hosts")?,
        secondaries: count("secondaries")?,
        kek_id: kek.map(|id| format!("{:016x}", id as u64)),
        size: 0,
    })
}

/// `path` with `suffix` added to its file name, hidden (a leading dot).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(suffix);
    path.with_file_name(name)
}

fn remove_if_there(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path)(e)),
        _ => Ok(()),
    }
}

/// Syncs the directory holding `path`, so a rename into it survives a
/// crash.
fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io_error(parent))
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
