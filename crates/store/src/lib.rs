//! sixgate's durable store.
//!
//! # Architecture
//!
//! One SQLite database (`sixgate.db` in the data directory) in WAL mode with
//! `synchronous=FULL`, so a write is on disk before it is acknowledged and a
//! crash or `kill -9` loses nothing that was acknowledged.
//!
//! Every change to DNS data goes through one write path (the `write`
//! module): [`Store::by`] names the actor and returns the only handle with
//! write methods ([`Writer`]); each validates, applies the size limits and
//! quotas, writes the records, bumps the SOA serial and appends the change
//! with its actor to the journal, all in one transaction. The journal is
//! how running servers learn about changes made by other processes (the
//! CLI, a second API node), the audit log ([`Store::audit`]) and, later,
//! the IXFR source.
//!
//! Readers follow the journal with [`Store::journal_since`]; an entry is a
//! diff (apply it to the snapshot), a full replacement (reload the zone) or
//! a deletion.
#![warn(missing_docs)]

pub mod backup;
mod claims;
mod codec;
mod derived;
mod dnssec;
pub mod files;
mod holds;
pub mod metrics;
mod occlusion;
pub use holds::Hold;
mod prefixes;
mod proxy;
mod purge;
mod schema;
pub mod sealed;
mod secondaries;
mod serial;
mod signer;
mod tenancy;
mod verification;
mod write;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use sixgate_dns::check::CheckError;
use sixgate_dns::name;
use sixgate_dns::zone::{Change, Record};

pub use claims::{ClaimError, TenancyPolicy};
pub use codec::{decode_changes, encode_changes};
pub use derived::{Aname, AnameState};
pub use dnssec::{
    DnssecInfo, KeyInfo, Maintained, Roll, SignatureSummary, SignedZoneDue, Verdict, ZoneState, denial_name,
};
pub use prefixes::{BackendPrefix, MAX_BACKEND_PREFIXES};
pub use proxy::{ProxyHost, ProxyProtocol};
pub use secondaries::{
    CatalogMember, CatalogMembers, MAX_SECONDARIES, MAX_SECONDARY_ZONES, Secondary, TransferKey,
};
pub use serial::{SerialScheme, rfc3339};
pub use sixgate_dns::limits::{LimitError, SizeLimits};
pub use tenancy::{
    Account, OPERATOR_ACCOUNT, Scope, TOKEN_PREFIX, Token, TsigKey, ZoneOwner, ip6_arpa, is_acme_challenge,
};
pub use verification::{AccountNameservers, CustomerZone};
pub use write::{AccountLimits, Actor, AuditEntry, JOURNAL_KEEP, Quotas, Writer};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "sixgate.db";
/// How long a writer waits for another connection's write to finish.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The data directory could not be created or read.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The zone does not exist.
    #[error("zone {0} does not exist")]
    NoSuchZone(String),
    /// The zone already exists.
    #[error("zone {0} already exists")]
    ZoneExists(String),
    /// The change breaks a zone rule.
    #[error(transparent)]
    Invalid(#[from] CheckError),
    /// The database was written by a newer sixgate.
    #[error(
        "the store's schema version {0} is newer than this sixgate's ({1}): it was written by a newer sixgate; \
         run that version or a later one"
    )]
    TooNew(i64, i64),
    /// A stored value could not be decoded.
    #[error("corrupt journal entry {0}")]
    Corrupt(i64),
    /// A value given by the caller is not acceptable.
    #[error("{0}")]
    BadInput(String),
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Signing failed (a key could not be used, or a signed zone is
    /// inconsistent).
    #[error("signing: {0}")]
    Signing(String),
    /// The write would go over a size limit or an account's quota.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The account may not create this zone (claims.rs).
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The key-encryption key is missing or wrong, or a sealed secret
    /// does not open (sealed.rs).
    #[error(transparent)]
    Kek(#[from] sealed::KekError),
}

/// A zone as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneInfo {
    /// Apex in wire form, as first created (original case).
    pub apex: Box<[u8]>,
    /// Current SOA serial.
    pub serial: u32,
    /// Number of records.
    pub records: u64,
    /// The owning account.
    pub account_id: i64,
    /// Whether the zone's delegation is verified.
    pub verified: bool,
    /// Why the server does not serve the zone as stored, if it does not
    /// (see `zone_holds`).
    pub held: Option<String>,
}

/// A zone's records as read in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneData {
    /// Apex in wire form, original case.
    pub apex: Box<[u8]>,
    /// All records.
    pub records: Vec<Record>,
}

/// What a journal entry says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalKind {
    /// These changes were applied.
    Diff(Vec<Change>),
    /// The zone was created or replaced as a whole; reload it.
    Replace,
    /// The zone was deleted.
    Delete,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Monotonic id.
    pub id: i64,
    /// The id of the zone's previous entry (0 for its first).
    pub prev: i64,
    /// The zone's apex (wire, lowercased).
    pub apex: Box<[u8]>,
    /// Serial after the change.
    pub serial: u32,
    /// What happened.
    pub kind: JournalKind,
}

/// The journal's size ([`Store::journal_size`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalSize {
    /// Entries kept.
    pub entries: u64,
    /// Octets of their encoded changes.
    pub octets: u64,
}

/// The result of a committed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The journal id of the change.
    pub journal_id: i64,
    /// The zone's new serial.
    pub serial: u32,
}

/// A whole RRset to put in place: owner, type and the records (none
/// deletes the RRset).
pub type RrSetReplacement = (Box<[u8]>, u16, Vec<Record>);

/// The store.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    serials: SerialScheme,
    /// Added to the system clock: simulated time for tests of what
    /// happens days or months from now (signature refresh, rollovers).
    clock_offset: i64,
    /// Which names customers may claim, and whether their unverified
    /// zones are served (claims.rs, verification.rs).
    tenancy: TenancyPolicy,
    /// Seals and opens the secrets (sealed.rs).
    sealer: sealed::Sealer,
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// RFC 1982 serial comparison: is `a` greater than `b`?
fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// The next serial after `old`. An imported zone file's own serial
/// (`proposed`) wins if it is newer: the operator chose it. Otherwise the
/// scheme proposes a value for `now`, taken only if it is newer than
/// `old` plus one. Never `old` or anything before it (RFC 1982).
fn next_serial(old: u32, proposed: Option<u32>, scheme: SerialScheme, now: i64) -> u32 {
    if let Some(p) = proposed
        && serial_gt(p, old)
    {
        return p;
    }
    let next = old.wrapping_add(1);
    match scheme.at(now) {
        Some(s) if serial_gt(s, next) => s,
        _ => next,
    }
}

/// Replaces the serial in SOA rdata.
fn with_serial(rdata: &[u8], serial: u32) -> Option<Box<[u8]>> {
    let m = name::wire_len(rdata)?;
    let r = name::wire_len(rdata.get(m..)?)?;
    let mut v = rdata.to_vec();
    v.get_mut(m + r..m + r + 4)?.copy_from_slice(&serial.to_be_bytes());
    Some(v.into_boxed_slice())
}

pub(crate) fn display(apex: &[u8]) -> String {
    name::to_text(apex)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, and makes the
    /// directory and its files private to this user ([`files`]).
    ///
    /// Secrets are sealed with the process's key-encryption key
    /// ([`sealed::install`]), if it has one.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_kek(dir, sealed::process_kek())
    }

    /// [`Store::open`] with this key-encryption key rather than the
    /// process's. With one, plaintext secrets are sealed now; without one,
    /// a sealed store does not open.
    pub fn open_with_kek(dir: &Path, kek: Option<std::sync::Arc<sealed::Kek>>) -> Result<Store, StoreError> {
        let db = files::prepare(dir)?;
        let conn = Connection::open(db)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted rows (TSIG secrets, purged DNSSEC keys) are overwritten
        // with zeros instead of lingering in free pages, where a copy of
        // the file would still carry them.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let mut s = Store {
            conn,
            dir: dir.to_path_buf(),
            serials: SerialScheme::default(),
            clock_offset: 0,
            tenancy: TenancyPolicy::default(),
            sealer: sealed::Sealer(kek),
        };
        schema::migrate(&mut s.conn)?;
        sealed::on_open(&mut s.conn, &s.sealer)?;
        s.serials = serial::load(&s.conn)?;
        Ok(s)
    }

    /// A second connection to this store's database, for reads only.
    ///
    /// In WAL mode a reader sees the last commit and never waits for a
    /// writer, nor a writer for it, so reads need not queue behind a
    /// write. `query_only` makes every write through it fail: writes keep
    /// one path, through the store that made the reader. The reader shares
    /// this store's clock, serial scheme and tenancy policy.
    pub fn reader(&self) -> Result<Store, StoreError> {
        let conn = Connection::open(self.dir.join(DB_FILE))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", "ON")?;
        Ok(Store {
            conn,
            dir: self.dir.clone(),
            serials: self.serials,
            clock_offset: self.clock_offset,
            tenancy: self.tenancy.clone(),
            sealer: self.sealer.clone(),
        })
    }

    /// Moves this store's clock by `offset` seconds from the system
    /// clock. Everything time-driven (serials, signature inception and
    /// expiration, key timelines) follows it.
    pub fn set_clock_offset(&mut self, offset: i64) {
        self.clock_offset = offset;
    }

    /// The store's time: seconds since the epoch.
    pub fn now(&self) -> i64 {
        now() + self.clock_offset
    }

    /// Sets how serials advance, for every process using this data
    /// directory (the setting is stored).
    pub fn set_serial_scheme(&mut self, scheme: SerialScheme) -> Result<(), StoreError> {
        serial::save(&self.conn, scheme)?;
        self.serials = scheme;
        Ok(())
    }

    /// How serials advance.
    pub fn serial_scheme(&self) -> SerialScheme {
        self.serials
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// SQLite's `data_version`: changes when another connection commits.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// All zones.
    pub fn zones(&self) -> Result<Vec<ZoneInfo>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT z.apex, z.serial, (SELECT count(*) FROM records r WHERE r.zone_id = z.id),
                    z.account_id, z.verified, h.reason
             FROM zones z LEFT JOIN zone_holds h ON h.name = z.name ORDER BY z.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(ZoneInfo {
                apex: r.get::<_, Vec<u8>>(0)?.into_boxed_slice(),
                serial: r.get::<_, i64>(1)? as u32,
                records: r.get::<_, i64>(2)? as u64,
                account_id: r.get(3)?,
                verified: r.get(4)?,
                held: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn zone_id(&self, apex: &[u8]) -> Result<Option<(i64, u32)>, StoreError> {
        Ok(zone_row(&self.conn, &name::to_lowercase(apex))?.map(|(id, serial)| (id, serial as u32)))
    }

    /// A zone's current serial.
    pub fn serial(&self, apex: &[u8]) -> Result<u32, StoreError> {
        Ok(self.zone_id(apex)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?.1)
    }

    /// The records of a zone.
    pub fn records(&self, apex: &[u8]) -> Result<Vec<Record>, StoreError> {
        let (id, _) = self.zone_id(apex)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        read_records(&self.conn, id)
    }

    /// The records of one RRset.
    pub fn rrset(&self, apex: &[u8], owner: &[u8], rtype: u16) -> Result<Vec<Record>, StoreError> {
        let (id, _) = self.zone_id(apex)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        Ok(owner_records(&self.conn, id, &name::to_lowercase(owner))?
            .into_iter()
            .filter(|r| r.rtype == rtype)
            .collect())
    }

    /// Streams every zone's records to `visit` (apex, record count,
    /// records), all in one read transaction, and returns the journal
    /// position the data is consistent with. Nothing is collected in memory
    /// here, so a large zone is built without a second copy of its records.
    pub fn visit_zones<E: From<StoreError>>(
        &mut self,
        mut visit: impl FnMut(&[u8], u64, &mut dyn Iterator<Item = Result<Record, StoreError>>) -> Result<(), E>,
    ) -> Result<i64, E> {
        let tx = self.conn.transaction().map_err(StoreError::from)?;
        let pos = journal_position(&tx)?;
        // Customers' zones only once verified (verification.rs: sitting ducks).
        let zones = verification::served_zones(&tx, None, self.tenancy.serve_unverified)?;
        for z in zones {
            stream_records(&tx, z.id, &z.apex, &mut visit)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(pos)
    }

    /// Like [`Store::visit_zones`] for one zone; `None` if it does not
    /// exist or is not served (a customer's zone not yet verified).
    pub fn visit_zone<E: From<StoreError>>(
        &mut self,
        apex: &[u8],
        visit: impl FnMut(&[u8], u64, &mut dyn Iterator<Item = Result<Record, StoreError>>) -> Result<(), E>,
    ) -> Result<Option<i64>, E> {
        let all = self.tenancy.serve_unverified;
        self.stream_zone(apex, all, visit)
    }

    fn stream_zone<E: From<StoreError>>(
        &mut self,
        apex: &[u8],
        unverified_too: bool,
        mut visit: impl FnMut(&[u8], u64, &mut dyn Iterator<Item = Result<Record, StoreError>>) -> Result<(), E>,
    ) -> Result<Option<i64>, E> {
        let tx = self.conn.transaction().map_err(StoreError::from)?;
        let pos = journal_position(&tx)?;
        let key = name::to_lowercase(apex);
        let z = verification::served_zones(&tx, Some(&key), unverified_too)?.pop();
        let Some(z) = z else {
            return Ok(None);
        };
        stream_records(&tx, z.id, &z.apex, &mut visit)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(Some(pos))
    }

    /// One zone's records and the journal position they are consistent
    /// with, whether the zone is served or not.
    pub fn zone_snapshot(&mut self, apex: &[u8]) -> Result<Option<(i64, ZoneData)>, StoreError> {
        let mut out = None;
        let pos = self.stream_zone(apex, true, |apex, _, recs| {
            out = Some(ZoneData { apex: apex.into(), records: recs.collect::<Result<_, _>>()? });
            Ok::<_, StoreError>(())
        })?;
        Ok(pos.zip(out))
    }

    /// A zone's own records (without derived ones), as a plain export and
    /// backups show them; `None` if the zone does not exist.
    pub fn source_zone(&mut self, apex: &[u8]) -> Result<Option<ZoneData>, StoreError> {
        let tx = self.conn.transaction()?;
        let z: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT id, apex FROM zones WHERE name = ?1",
                params![&name::to_lowercase(apex)[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, apex_case)) = z else { return Ok(None) };
        let records = read_records(&tx, id)?;
        tx.commit()?;
        Ok(Some(ZoneData { apex: apex_case.into_boxed_slice(), records }))
    }

    /// The journal's size: entries, and octets of their changes. It reads
    /// the whole table (SQLite reads a blob's length without its content),
    /// so it is for a timer, not for every scrape.
    pub fn journal_size(&self) -> Result<JournalSize, StoreError> {
        let (entries, octets): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(length(changes)), 0) FROM journal",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(JournalSize { entries: entries.max(0) as u64, octets: octets.max(0) as u64 })
    }

    /// Journal entries after `after`, oldest first, at most `limit`.
    ///
    /// Each entry names the zone's previous entry ([`JournalEntry::prev`]).
    /// Entries are pruned per zone ([`JOURNAL_KEEP`]), so a reader that
    /// fell behind can find that an entry's `prev` lies after its position
    /// but was never returned: that zone's history has a gap, and the
    /// reader must reload that zone (only that one). An entry that cannot
    /// be decoded comes back as [`JournalKind::Replace`], so the reader
    /// reloads the zone from its records instead of stopping.
    pub fn journal_since(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, zone_name, serial, kind, changes, coalesce(prev_id, 0) FROM journal
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = st.query_map(params![after, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, apex, serial, kind, changes, prev) = row?;
            let kind = match kind.as_str() {
                "diff" => decode_changes(changes.as_deref().unwrap_or(&[]))
                    .map_or(JournalKind::Replace, JournalKind::Diff),
                "delete" => JournalKind::Delete,
                _ => JournalKind::Replace,
            };
            out.push(JournalEntry { id, prev, apex: apex.into_boxed_slice(), serial: serial as u32, kind });
        }
        Ok(out)
    }
}

impl Store {
    /// The journal's diffs that lead the zone at `apex` (wire, any case)
    /// from its version `from` (a serial) to its newest, oldest first:
    /// the versions an IXFR from `from` sends (RFC 1995). `Some(vec![])`
    /// when `from` is the newest. `None` when the journal cannot: no
    /// entry has that serial any more (pruned, or never), or a
    /// replacement, a deletion or an entry that does not decode lies
    /// between; the client then needs the whole zone.
    ///
    /// Only the entries needed are decoded: the zone's entries are walked
    /// newest first by id and serial alone until `from` is found.
    pub fn zone_history_since(
        &self,
        apex: &[u8],
        from: u32,
    ) -> Result<Option<Vec<JournalEntry>>, StoreError> {
        let zone = name::to_lowercase(apex);
        let mut st = self
            .conn
            .prepare_cached("SELECT id, serial, kind FROM journal WHERE zone_name = ?1 ORDER BY id DESC")?;
        let mut rows = st.query(params![&zone[..]])?;
        // The zone's newest entry, and the one at the client's version.
        let mut newest = None;
        let mut found = None;
        while let Some(r) = rows.next()? {
            let (id, serial, kind): (i64, i64, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if serial as u32 == from {
                found = Some(id);
                break;
            }
            if kind != "diff" {
                return Ok(None);
            }
            newest.get_or_insert(id);
        }
        drop(rows);
        let Some(found) = found else { return Ok(None) };
        // Exactly the entries walked over: a later commit is not read.
        let mut st = self.conn.prepare_cached(
            "SELECT id, serial, changes, coalesce(prev_id, 0) FROM journal
             WHERE zone_name = ?1 AND id > ?2 AND id <= ?3 ORDER BY id",
        )?;
        let rows = st.query_map(params![&zone[..], found, newest.unwrap_or(found)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, serial, changes, prev) = row?;
            let Some(changes) = decode_changes(changes.as_deref().unwrap_or(&[])) else {
                return Ok(None);
            };
            out.push(JournalEntry {
                id,
                prev,
                apex: zone.clone(),
                serial: serial as u32,
                kind: JournalKind::Diff(changes),
            });
        }
        Ok(Some(out))
    }
}

thread_local! {
    /// How long incremental signing took in this thread's last diff write.
    static LAST_SIGNING: std::cell::Cell<Option<std::time::Duration>> = const { std::cell::Cell::new(None) };
}

/// How long incremental signing (re-signing the changed RRsets and chain
/// links, and writing them, inside the transaction) took in the last
/// change this thread made through the write path; `None` if that zone
/// is not signed. A timing hook for `sixgate bench resign`, which reports
/// it apart from the whole write.
pub fn last_signing_time() -> Option<std::time::Duration> {
    LAST_SIGNING.with(std::cell::Cell::get)
}

/// Read access to one zone inside a write transaction.
pub struct ZoneReader<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) zone_id: i64,
}

impl ZoneReader<'_> {
    /// All records at an owner (any case).
    pub fn owner_records(&self, owner: &[u8]) -> Result<Vec<Record>, StoreError> {
        owner_records(self.conn, self.zone_id, &name::to_lowercase(owner))
    }

    /// One RRset.
    pub fn rrset(&self, owner: &[u8], rtype: u16) -> Result<Vec<Record>, StoreError> {
        Ok(self.owner_records(owner)?.into_iter().filter(|r| r.rtype == rtype).collect())
    }
}

/// The id and serial of the zone with this (lowercased) apex.
pub(crate) fn zone_row(conn: &Connection, key: &[u8]) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(conn
        .query_row("SELECT id, serial FROM zones WHERE name = ?1", params![key], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

fn journal_position(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT coalesce(max(id), 0) FROM journal", [], |r| r.get(0))?)
}

fn stream_records<E: From<StoreError>>(
    conn: &Connection,
    zone_id: i64,
    apex: &[u8],
    visit: &mut impl FnMut(&[u8], u64, &mut dyn Iterator<Item = Result<Record, StoreError>>) -> Result<(), E>,
) -> Result<(), E> {
    let count: i64 = conn
        .query_row("SELECT count(*) FROM records WHERE zone_id = ?1", params![zone_id], |r| r.get(0))
        .map_err(StoreError::from)?;
    let mut st = conn
        .prepare_cached("SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1")
        .map_err(StoreError::from)?;
    let mut rows = st
        .query_map(params![zone_id], record_of)
        .map_err(StoreError::from)?
        .map(|r| r.map_err(StoreError::from));
    visit(apex, count as u64, &mut rows)
}

/// A record from a row of `SELECT owner, rtype, ttl, rdata`.
pub(crate) fn record_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        owner: r.get_ref(0)?.as_blob()?.into(),
        rtype: r.get(1)?,
        ttl: r.get(2)?,
        rdata: r.get_ref(3)?.as_blob()?.into(),
    })
}

fn read_records(conn: &Connection, zone_id: i64) -> Result<Vec<Record>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1 AND derived = 0")?;
    let rows = st.query_map(params![zone_id], record_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn owner_records(
    conn: &Connection,
    zone_id: i64,
    owner_key: &[u8],
) -> Result<Vec<Record>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND derived = 0",
    )?;
    let rows = st.query_map(params![zone_id, owner_key], record_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Actor;
    use sixgate_dns::rtype::code;
    use sixgate_dns::zonefile;

    fn apex() -> Box<[u8]> {
        name::from_text("example.com.", None).unwrap()
    }

    fn zone(extra: &str) -> Vec<Record> {
        let text = format!("@ 300 SOA ns hm 7 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n{extra}");
        zonefile::parse(&text, &apex()).unwrap()
    }

    #[test]
    fn import_then_diff_bumps_serial_and_journals() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set_serial_scheme(SerialScheme::Increment).unwrap();
        let c1 = s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        assert_eq!(c1.serial, 7);
        let www = zonefile::parse("www 60 A 192.0.2.9\n", &apex()).unwrap();
        let c2 = s.by(Actor::Task("test")).apply(&apex(), &[Change::Add(www[0].clone())]).unwrap();
        assert_eq!(c2.serial, 8);
        let entries = s.journal_since(c1.journal_id, 10).unwrap();
        assert_eq!(entries.len(), 1);
        let JournalKind::Diff(ch) = &entries[0].kind else { panic!("not a diff") };
        assert!(ch.contains(&Change::Add(www[0].clone())));
        assert_eq!(ch.iter().filter(|c| matches!(c, Change::Add(r) if r.rtype == code::SOA)).count(), 1);
        // Reopening sees the same data.
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.serial_scheme(), SerialScheme::Increment);
        assert_eq!(s.records(&apex()).unwrap().len(), 4);
        assert_eq!(s.zones().unwrap()[0].serial, 8);
    }

    #[test]
    fn the_journal_size_counts_entries_and_change_octets_and_commits_are_timed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.journal_size().unwrap(), JournalSize::default());
        let timed = metrics::WRITES.commit.count();
        let c1 = s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        let after_replace = s.journal_size().unwrap();
        assert_eq!(after_replace, JournalSize { entries: 1, octets: 0 }, "a replacement has no changes");
        let www = zonefile::parse("www 60 A 192.0.2.9\n", &apex()).unwrap();
        s.by(Actor::Task("test")).apply(&apex(), &[Change::Add(www[0].clone())]).unwrap();
        let size = s.journal_size().unwrap();
        let JournalKind::Diff(ch) = &s.journal_since(c1.journal_id, 1).unwrap()[0].kind else { panic!() };
        assert_eq!(size, JournalSize { entries: 2, octets: encode_changes(ch).len() as u64 });
        // Other tests commit in this process too: at least these two.
        assert!(metrics::WRITES.commit.count() >= timed + 2);
        let mut served = 0;
        metrics::WRITES.served(i64::MAX, |_| served += 1);
        assert!(served >= 2, "both commits wait to be served");
    }

    #[test]
    fn a_zones_history_since_a_serial_is_its_diffs_after_it_until_a_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set_serial_scheme(SerialScheme::Increment).unwrap();
        let c1 = s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        let mut serials = vec![c1.serial];
        for i in 1..=3 {
            let rr = zonefile::parse(&format!("h{i} 60 A 192.0.2.{i}\n"), &apex()).unwrap();
            serials.push(
                s.by(Actor::Task("test")).apply(&apex(), &[Change::Add(rr[0].clone())]).unwrap().serial,
            );
        }
        // Another zone's entries in between are not this zone's history.
        let other = name::from_text("other.test.", None).unwrap();
        let text = "@ 300 SOA ns hm 7 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n";
        s.by(Actor::Task("test")).replace_zone(&other, zonefile::parse(text, &other).unwrap()).unwrap();
        let rr = zonefile::parse("x 60 A 192.0.2.9\n", &other).unwrap();
        s.by(Actor::Task("test")).apply(&other, &[Change::Add(rr[0].clone())]).unwrap();
        let h = s.zone_history_since(&apex(), serials[1]).unwrap().unwrap();
        assert_eq!(h.iter().map(|e| e.serial).collect::<Vec<_>>(), serials[2..]);
        assert!(h.iter().all(|e| matches!(e.kind, JournalKind::Diff(_))));
        let upper = name::from_text("EXAMPLE.com.", None).unwrap();
        assert_eq!(s.zone_history_since(&upper, serials[0]).unwrap().unwrap().len(), 3, "any case");
        assert_eq!(s.zone_history_since(&apex(), serials[3]).unwrap(), Some(vec![]));
        assert_eq!(s.zone_history_since(&apex(), 12345).unwrap(), None, "a serial never seen");
        // A replacement ends the history behind it.
        let c5 = s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        assert_eq!(s.zone_history_since(&apex(), serials[1]).unwrap(), None);
        assert_eq!(s.zone_history_since(&apex(), c5.serial).unwrap(), Some(vec![]));
    }

    #[test]
    fn a_reader_sees_every_commit_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let r = s.reader().unwrap();
        assert!(r.zones().unwrap().is_empty());
        s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        assert_eq!(r.zones().unwrap().len(), 1, "a commit is seen at once");
        let mut r = r;
        let e = r.by(Actor::Task("test")).delete_zone(&apex()).unwrap_err();
        assert!(e.to_string().contains("readonly"), "{e}");
        assert_eq!(s.zones().unwrap().len(), 1);
    }

    #[test]
    fn a_bad_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set_serial_scheme(SerialScheme::Increment).unwrap();
        s.by(Actor::Task("test")).replace_zone(&apex(), zone("www 300 A 192.0.2.2\n")).unwrap();
        let cname = zonefile::parse("www 300 CNAME ns\n", &apex()).unwrap();
        let e = s.by(Actor::Task("test")).apply(&apex(), &[Change::Add(cname[0].clone())]).unwrap_err();
        assert!(e.to_string().contains("CNAME"), "{e}");
        assert_eq!(s.records(&apex()).unwrap().len(), 4);
        assert_eq!(s.zones().unwrap()[0].serial, 7);
        // A whole bad zone leaves the old one in place.
        let mut bad = zone("x 300 CNAME ns\n");
        bad.extend(zonefile::parse("x 300 TXT hi\n", &apex()).unwrap());
        assert!(s.by(Actor::Task("test")).replace_zone(&apex(), bad).is_err());
        assert_eq!(s.records(&apex()).unwrap().len(), 4);
    }

    /// Regression: zone rule errors printed twice on the CLI ("reason:
    /// reason"), once as the error and once as its source.
    #[test]
    fn a_rule_error_is_reported_once() {
        let e = StoreError::from(CheckError { index: None, reason: "www has a CNAME".into() });
        assert_eq!(e.to_string(), "www has a CNAME");
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn reimport_with_old_serial_still_increases() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set_serial_scheme(SerialScheme::Increment).unwrap();
        s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        let c = s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        assert_eq!(c.serial, 8);
        s.by(Actor::Task("test")).delete_zone(&apex()).unwrap();
        assert!(s.zones().unwrap().is_empty());
        let j = s.journal_since(0, 100).unwrap();
        assert_eq!(j.last().unwrap().kind, JournalKind::Delete);
    }

    #[test]
    fn serial_arithmetic_follows_rfc1982() {
        assert!(serial_gt(1, 0));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(5, 5));
        let inc = SerialScheme::Increment;
        assert_eq!(next_serial(u32::MAX, None, inc, 0), 0);
        assert_eq!(next_serial(10, Some(5), inc, 0), 11);
        assert_eq!(next_serial(10, Some(2026112501), inc, 0), 2026112501);
    }

    #[test]
    fn serials_follow_the_scheme_and_never_go_back() {
        let t = 1_795_600_000; // 2026-11-25T...Z
        let unix = SerialScheme::Unixtime;
        assert_eq!(next_serial(7, None, unix, t), t as u32);
        // Faster than one change a second: keep counting up.
        assert_eq!(next_serial(t as u32, None, unix, t), t as u32 + 1);
        // A clock that went back changes nothing.
        assert_eq!(next_serial(t as u32 + 5, None, unix, t), t as u32 + 6);
        let date = SerialScheme::Date;
        assert_eq!(next_serial(7, None, date, t), 2026112500);
        assert_eq!(next_serial(2026112500, None, date, t), 2026112501);
        // A date serial is far ahead of unixtime: switching keeps counting.
        assert_eq!(next_serial(2026112599, None, unix, t), 2026112600);
    }

    #[test]
    fn serials_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let c1 = s.by(Actor::Task("test")).replace_zone(&apex(), zone("")).unwrap();
        assert_eq!(c1.serial, 7, "a new zone keeps its file's serial");
        let www = zonefile::parse("www 60 A 192.0.2.9\n", &apex()).unwrap();
        let c2 = s.by(Actor::Task("test")).apply(&apex(), &[Change::Add(www[0].clone())]).unwrap();
        assert!(c2.serial > 1_700_000_000, "unixtime is the default scheme: {}", c2.serial);
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        let c3 = s.by(Actor::Task("test")).apply(&apex(), &[Change::Remove(www[0].clone())]).unwrap();
        assert!(serial_gt(c2.serial, c1.serial) && serial_gt(c3.serial, c2.serial));
    }
}
