//! The one write path.
//!
//! Every change to a zone's records or serial, by whoever makes it (the
//! API and its dialects, RFC 2136 UPDATE, the CLI, zone import, the ANAME
//! refresher, proxy publication, DNSSEC events), goes through this
//! module, and nothing outside it writes the `records` table, a zone's
//! serial or the journal:
//!
//! 1. [`Store::by`] names the actor; the write methods exist only on the
//!    [`Writer`] it returns, so no write can be made without one.
//! 2. [`Writer::begin`] opens an IMMEDIATE transaction on the zone and
//!    reads its row, account and limits: a [`WriteTx`].
//! 3. The head does its part through the row primitives of [`rows`].
//! 4. [`WriteTx::commit_diff`], [`WriteTx::commit_replace`] or
//!    [`WriteTx::commit_delete`] checks the limits of every owner the
//!    change touched, bumps the serial (RFC 1982, never back, not even
//!    across a delete and re-create), signs what changed if the zone is
//!    signed, journals the change with its actor, and commits.
//!
//! The journal is also the audit log ([`Store::audit`]): each entry says
//! who made the change, when, and what changed.

use rusqlite::{Connection, OptionalExtension, params};
use sixgate_dns::check::CheckError;
use sixgate_dns::limits::{self, LimitError, SizeLimits};
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record, changed_owners, soa_serial};

use crate::{
    Commit, SerialScheme, Store, StoreError, codec, display, dnssec, next_serial, owner_records, signer,
    tenancy, with_serial,
};

/// Who made a change. Recorded with it in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Actor {
    /// An API token, by id.
    Token(i64),
    /// A TSIG key (RFC 2136 UPDATE), by name.
    Tsig(String),
    /// The command line, by the local user's name.
    Cli(String),
    /// One of sixgate's own tasks: `aname`, `dnssec`, `proxy`, `verify`.
    Task(&'static str),
}

impl Actor {
    /// The CLI as the user running it (`$USER`, else the uid).
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty() && u.len() <= 64)
            .unwrap_or_else(|| format!("uid{}", process_uid()));
        Actor::Cli(user)
    }
}

fn process_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the process's real uid; no libc call.
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Token(id) => write!(f, "token:{id}"),
            Actor::Tsig(key) => write!(f, "tsig:{key}"),
            Actor::Cli(user) => write!(f, "cli:{user}"),
            Actor::Task(task) => write!(f, "task:{task}"),
        }
    }
}

/// Per-account quotas, besides the [`SizeLimits`] of each zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Zones the account may have.
    pub zones: Option<u64>,
    /// Records in all its zones together (its own records, not derived
    /// ones such as signatures).
    pub records: Option<u64>,
    /// API tokens it may have.
    pub tokens: Option<u64>,
}

impl Quotas {
    /// The defaults for a customer account.
    pub const CUSTOMER: Quotas = Quotas { zones: Some(1000), records: Some(1_000_000), tokens: Some(1000) };
    /// The operator's account: none.
    pub const OPERATOR: Quotas = Quotas { zones: None, records: None, tokens: None };
}

/// An account's limits and quotas, as the operator set them (unset ones
/// take the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// Per zone.
    pub size: SizeLimits,
    /// Per account.
    pub quotas: Quotas,
}

/// One journal entry as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Journal id.
    pub id: i64,
    /// Unix seconds (the store's clock).
    pub at: i64,
    /// The zone's apex (wire, lowercased).
    pub apex: Box<[u8]>,
    /// The serial after the change.
    pub serial: u32,
    /// `diff`, `replace` or `delete`.
    pub kind: String,
    /// Who made it (see [`Actor`]'s display form); `unknown` for entries
    /// written before actors were recorded.
    pub actor: String,
    /// For a diff, the records added and removed.
    pub changes: Vec<Change>,
}

/// What a record row is: the zone's own data or derived by sixgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Written by a user (import, API, UPDATE, CLI).
    Source = 0,
    /// An ANAME's resolved addresses.
    Aname = 1,
    /// The proxy's published A records.
    Proxy = 2,
    /// The signer's records (RRSIG, NSEC, NSEC3, DNSKEY, CDS, CDNSKEY,
    /// NSEC3PARAM).
    Signer = 3,
}

/// Writes on behalf of one actor: the only way to change DNS data.
pub struct Writer<'s> {
    pub(crate) store: &'s mut Store,
    pub(crate) actor: Actor,
}

impl std::ops::Deref for Writer<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store
    }
}

impl std::ops::DerefMut for Writer<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        self.store
    }
}

impl Store {
    /// Writes made through the returned handle are journaled as `actor`'s.
    pub fn by(&mut self, actor: Actor) -> Writer<'_> {
        Writer { store: self, actor }
    }
}

/// An open write on one zone.
pub(crate) struct WriteTx<'a> {
    pub(crate) tx: rusqlite::Transaction<'a>,
    /// The zone's row id.
    pub(crate) id: i64,
    /// The apex, wire form, lowercased.
    pub(crate) key: Box<[u8]>,
    pub(crate) old_serial: u32,
    /// This write made the zone's row.
    created: bool,
    /// ... and no zone of that name existed before: its first serial is
    /// the one proposed, as written.
    fresh: bool,
    pub(crate) account_id: i64,
    /// The store's clock at the start of the write.
    pub(crate) at: i64,
    scheme: SerialScheme,
    actor: String,
    pub(crate) limits: AccountLimits,
    /// Change of the zone's own record count and name count made by the
    /// head, applied at commit.
    counts: (i64, i64),
    /// Seals and opens the DNSSEC keys the write generates or signs with.
    pub(crate) sealer: crate::sealed::Sealer,
    /// When the transaction began (after the write lock was taken), for
    /// the commit latency ([`crate::metrics`]).
    started: std::time::Instant,
}

impl WriteTx<'_> {
    /// The write's time as unsigned seconds (signatures).
    pub(crate) fn now(&self) -> u64 {
        self.at.max(0) as u64
    }

    /// The zone's own records changed by `records` and its names by
    /// `names` (both may be negative).
    pub(crate) fn count(&mut self, records: i64, names: i64) {
        self.counts.0 += records;
        self.counts.1 += names;
    }

    /// Commits nothing: the zone stays as it was (no serial, no journal).
    pub(crate) fn commit_nothing(self) -> Result<Commit, StoreError> {
        self.tx.commit()?;
        crate::metrics::WRITES.committed(0, self.started);
        Ok(Commit { journal_id: 0, serial: self.old_serial })
    }

    /// Ends a diff write: checks the limits of every owner it touched,
    /// bumps the serial (the SOA change is part of the same diff), signs
    /// what changed if the zone is signed, journals the diff and commits.
    pub(crate) fn commit_diff(self, mut effective: Vec<Change>) -> Result<Commit, StoreError> {
        let owners = changed_owners(
            effective.iter().filter(|c| !sixgate_dns::check::is_signer_managed(c.record().rtype)),
        );
        for o in &owners {
            check_owner_size(&self.tx, self.id, o, &self.limits.size)?;
        }
        let added = effective.iter().filter_map(|c| match c {
            Change::Add(r) => Some(r),
            Change::Remove(_) => None,
        });
        dnssec::check_signed_ttls(&self.tx, self.id, added)?;
        self.apply_counts()?;
        let (serial, soa) = self.bump_serial(None)?;
        effective.extend(soa);
        crate::LAST_SIGNING.with(|t| t.set(None));
        // Loading the keys counts as signing: every signed write does it.
        let started = std::time::Instant::now();
        if let Some(zs) = dnssec::load_signing(&self.tx, &self.sealer, self.id)? {
            let mut changed: Vec<(Box<[u8]>, u16)> = effective
                .iter()
                .map(Change::record)
                .filter(|r| !matches!(r.rtype, code::RRSIG | code::NSEC | code::NSEC3))
                .map(|r| (r.owner.clone(), r.rtype))
                .collect();
            changed.sort();
            changed.dedup();
            effective.extend(signer::resign(&self.tx, self.id, &zs, &changed, self.now())?);
            crate::LAST_SIGNING.with(|t| t.set(Some(started.elapsed())));
        }
        let journal_id = self.journal(serial, "diff", Some(&codec::encode_changes(&effective)))?;
        self.tx.commit()?;
        crate::metrics::WRITES.committed(journal_id, self.started);
        Ok(Commit { journal_id, serial })
    }

    /// Ends a write that signs the whole zone again (a key event: signing
    /// turned on, other keys signing): bumps the serial, signs every
    /// RRset, and journals `changes` (the key records' own) with the SOA
    /// and every signature and chain record that changed as one diff,
    /// which secondaries follow by IXFR like any change.
    pub(crate) fn commit_resign(
        self,
        mut changes: Vec<Change>,
        signing: &signer::ZoneSigning,
    ) -> Result<Commit, StoreError> {
        self.apply_counts()?;
        let (serial, soa) = self.bump_serial(None)?;
        changes.extend(soa);
        changes.extend(signer::sign_all_changes(&self.tx, self.id, signing, self.now())?);
        let encoded = codec::encode_changes(&changes);
        // A diff this large (every signature of a big zone, twice) costs a
        // secondary more than the whole zone, and would be one huge
        // journal row for every reader to decode: a replacement instead,
        // which IXFR answers with the whole zone (RFC 1995 §2 allows it).
        let journal_id = match encoded.len() > MAX_RESIGN_DIFF {
            true => self.journal(serial, "replace", None)?,
            false => self.journal(serial, "diff", Some(&encoded))?,
        };
        self.tx.commit()?;
        crate::metrics::WRITES.committed(journal_id, self.started);
        Ok(Commit { journal_id, serial })
    }

    /// Ends a whole-zone write: bumps the serial (to `proposed`, an
    /// imported file's own serial, when that is newer), signs the whole
    /// zone when `signing` says so, journals a replacement and commits.
    pub(crate) fn commit_replace(
        self,
        proposed: Option<u32>,
        signing: Option<&signer::ZoneSigning>,
    ) -> Result<Commit, StoreError> {
        self.apply_counts()?;
        let (serial, _) = self.bump_serial(proposed)?;
        if let Some(zs) = signing {
            signer::sign_all(&self.tx, self.id, zs, self.now())?;
        }
        let journal_id = self.journal(serial, "replace", None)?;
        self.tx.commit()?;
        crate::metrics::WRITES.committed(journal_id, self.started);
        Ok(Commit { journal_id, serial })
    }

    /// Deletes the zone with all its records, keys and settings. Its last
    /// serial is remembered, so the zone made again later continues from
    /// it (RFC 1982: secondaries never see a serial go back).
    pub(crate) fn commit_delete(self) -> Result<Commit, StoreError> {
        let (id, key, serial) = (self.id, self.key.clone(), self.old_serial);
        rows::delete_zone(&self.tx, id)?;
        for table in ["dnssec_zones", "dnssec_keys", "dnssec_names", "dnssec_chain"] {
            self.tx.execute(&format!("DELETE FROM {table} WHERE zone_id = ?1"), params![id])?;
        }
        self.tx.execute("DELETE FROM proxy_hosts WHERE zone_name = ?1", params![&key[..]])?;
        self.tx.execute(
            "INSERT INTO zone_serials (name, serial) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET serial = excluded.serial",
            params![&key[..], serial as i64],
        )?;
        let journal_id = self.journal(serial, "delete", None)?;
        self.tx.commit()?;
        crate::metrics::WRITES.committed(journal_id, self.started);
        Ok(Commit { journal_id, serial })
    }

    fn apply_counts(&self) -> Result<(), StoreError> {
        let (records, names) = self.counts;
        if records == 0 && names == 0 {
            return Ok(());
        }
        self.tx.execute(
            "UPDATE zones SET records = max(records + ?1, 0), names = max(names + ?2, 0) WHERE id = ?3",
            params![records, names, self.id],
        )?;
        if records > 0 || names > 0 {
            self.check_counts()?;
        }
        Ok(())
    }

    /// The zone's name count and the account's record quota, after the
    /// write.
    fn check_counts(&self) -> Result<(), StoreError> {
        let names: i64 =
            self.tx.query_row("SELECT names FROM zones WHERE id = ?1", params![self.id], |r| r.get(0))?;
        limits::check_names(&self.key, names as u64, &self.limits.size)?;
        if let Some(max) = self.limits.quotas.records {
            let total: i64 = self.tx.query_row(
                "SELECT coalesce(sum(records), 0) FROM zones WHERE account_id = ?1",
                params![self.account_id],
                |r| r.get(0),
            )?;
            if total as u64 > max {
                return Err(LimitError::new(
                    format!("account {}", tenancy::account_name(&self.tx, self.account_id)?),
                    total as u64,
                    "records",
                    "records",
                    max,
                )
                .into());
            }
        }
        Ok(())
    }

    /// Bumps the serial to the next one after the old serial (or to
    /// `proposed` when newer) in the zone row and the SOA record; returns
    /// it and the SOA's change.
    fn bump_serial(&self, proposed: Option<u32>) -> Result<(u32, Vec<Change>), StoreError> {
        let serial = match (self.fresh, proposed) {
            (true, p) => p.unwrap_or(1),
            (false, p) => next_serial(self.old_serial, p, self.scheme, self.at),
        };
        let mut changes = Vec::new();
        if let Some(soa) =
            owner_records(&self.tx, self.id, &self.key)?.into_iter().find(|r| r.rtype == code::SOA)
            && let Some(rd) = with_serial(&soa.rdata, serial)
        {
            self.tx.execute(
                "UPDATE records SET rdata = ?1 WHERE zone_id = ?2 AND owner_key = ?3 AND rtype = ?4",
                params![&rd[..], self.id, &self.key[..], code::SOA],
            )?;
            changes.push(Change::Remove(soa.clone()));
            changes.push(Change::Add(Record { rdata: rd, ..soa }));
        }
        self.tx.execute(
            "UPDATE zones SET serial = ?1, updated_at = ?2 WHERE id = ?3",
            params![serial as i64, self.at, self.id],
        )?;
        Ok((serial, changes))
    }

    fn journal(&self, serial: u32, kind: &str, changes: Option<&[u8]>) -> Result<i64, StoreError> {
        journal(&self.tx, self.id, &self.key, serial, kind, changes, &self.actor, self.at)
    }
}

/// The largest encoded diff a whole-zone re-signing is journaled as
/// (about 200,000 signatures replaced); beyond it, a replacement.
const MAX_RESIGN_DIFF: usize = 64 << 20;

/// Journal entries kept per zone (the newest) unless `serve` stored
/// another number ([`Store::save_journal_keep`]); older ones are pruned. A
/// reader that falls further behind on a zone reloads that zone, and an
/// IXFR from further back gets the whole zone.
pub const JOURNAL_KEEP: i64 = 1000;

/// The journal entries kept per zone: the number the last `serve` stored
/// (`[secondaries] journal_keep`), so that a CLI write on the same data
/// directory prunes alike; else [`JOURNAL_KEEP`].
fn journal_keep(conn: &Connection) -> Result<i64, StoreError> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = 'journal_keep'", [], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|v| v.parse::<i64>().ok()).filter(|&n| n >= 1).unwrap_or(JOURNAL_KEEP))
}

impl Store {
    /// Keeps `keep` journal entries per zone from the next write on, for
    /// every process writing to this data directory (the setting is
    /// stored). IXFR reaches back that many versions.
    pub fn save_journal_keep(&mut self, keep: u32) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ('journal_keep', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![keep.max(1).to_string()],
        )?;
        Ok(())
    }
}

/// Appends a journal entry, linked to the zone's previous one so readers
/// can tell when entries of a zone were pruned under them, and prunes the
/// zone's entries beyond [`JOURNAL_KEEP`].
#[allow(clippy::too_many_arguments)] // one row's columns
pub(crate) fn journal(
    conn: &Connection,
    zone_id: i64,
    key: &[u8],
    serial: u32,
    kind: &str,
    changes: Option<&[u8]>,
    actor: &str,
    at: i64,
) -> Result<i64, StoreError> {
    let prev: Option<i64> =
        conn.query_row("SELECT max(id) FROM journal WHERE zone_name = ?1", params![key], |r| r.get(0))?;
    conn.execute(
        "INSERT INTO journal (zone_id, zone_name, serial, kind, changes, at, actor, prev_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![zone_id, key, serial as i64, kind, changes, at, actor, prev.unwrap_or(0)],
    )?;
    let id = conn.last_insert_rowid();
    // Keep the newest entries of this zone.
    conn.execute(
        "DELETE FROM journal WHERE zone_name = ?1 AND id < (
             SELECT id FROM journal WHERE zone_name = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![key, journal_keep(conn)? - 1],
    )?;
    Ok(id)
}

/// Checks the size limits of everything at one owner after a write: its
/// own records and the derived ones (an ANAME's target can answer with
/// thousands of addresses), not the signer's, which follow from them.
fn check_owner_size(
    conn: &Connection,
    zone_id: i64,
    owner_key: &[u8],
    limits: &SizeLimits,
) -> Result<(), StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND derived != 3",
    )?;
    let at: Vec<Record> =
        st.query_map(params![zone_id, owner_key], crate::record_of)?.collect::<Result<_, _>>()?;
    if let Some(first) = at.first() {
        limits::check_owner(&first.owner, &at, limits)?;
    }
    Ok(())
}

impl Writer<'_> {
    /// Opens a write on an existing zone.
    pub(crate) fn begin(&mut self, apex: &[u8]) -> Result<WriteTx<'_>, StoreError> {
        self.open(apex, None, None)
    }

    /// Opens a write on a zone; with `create`, makes the zone's row for
    /// that account (verified or not) when there is none, in the same
    /// transaction, after the zone quota check. `claim` is the account
    /// (and verified state) a zone is being created for: the claim rules
    /// (claims.rs) are decided here, in the same transaction.
    fn open(
        &mut self,
        apex: &[u8],
        create: Option<(i64, bool)>,
        claim: Option<(i64, bool)>,
    ) -> Result<WriteTx<'_>, StoreError> {
        let key = name::to_lowercase(apex);
        let (scheme, at) = (self.store.serials, self.store.now());
        let actor = self.actor.to_string();
        let sealer = self.store.sealer.clone();
        let tx = self.store.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let started = std::time::Instant::now();
        let row = |tx: &Connection| -> Result<Option<(i64, i64, i64)>, StoreError> {
            Ok(tx
                .query_row(
                    "SELECT id, serial, account_id FROM zones WHERE name = ?1",
                    params![&key[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?)
        };
        if claim.is_some() {
            crate::claims::claim(&tx, &key, claim, &self.store.tenancy)?;
        }
        let (mut created, mut fresh) = (false, false);
        let (id, old_serial, account_id) = match (row(&tx)?, create) {
            (Some(r), _) => r,
            (None, None) => return Err(StoreError::NoSuchZone(display(apex))),
            (None, Some((account_id, verified))) => {
                let last = insert_zone(&tx, apex, &key, account_id, verified, at)?;
                (created, fresh) = (true, last.is_none());
                row(&tx)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?
            }
        };
        let limits = account_limits(&tx, account_id)?;
        Ok(WriteTx {
            tx,
            id,
            key,
            old_serial: old_serial as u32,
            created,
            fresh,
            account_id,
            at,
            scheme,
            actor,
            limits,
            counts: (0, 0),
            sealer,
            started,
        })
    }

    /// Creates the zone or replaces all its records (zone import). The
    /// records are checked as a whole first; on any error nothing changes.
    /// The serial becomes the file's serial if that is newer than the
    /// stored one, else the stored serial plus one.
    pub fn replace_zone(&mut self, apex: &[u8], records: Vec<Record>) -> Result<Commit, StoreError> {
        self.write_zone(apex, records, None)
    }

    /// Creates a new zone for an account; fails if the zone exists. The
    /// operator's zones are verified from the start, a customer's are not.
    pub fn create_zone(
        &mut self,
        apex: &[u8],
        records: Vec<Record>,
        account_id: i64,
        verified: bool,
    ) -> Result<Commit, StoreError> {
        self.write_zone(apex, records, Some((account_id, verified)))
    }

    fn write_zone(
        &mut self,
        apex: &[u8],
        mut records: Vec<Record>,
        create: Option<(i64, bool)>,
    ) -> Result<Commit, StoreError> {
        sixgate_dns::check::check_zone(apex, &mut records)?;
        let key = name::to_lowercase(apex);
        // A replace of a zone that does not exist makes an operator zone
        // (zone import on the data directory).
        let owner = create.unwrap_or((tenancy::OPERATOR_ACCOUNT, true));
        let mut w = self.open(apex, Some(owner), Some(create.unwrap_or(owner)))?;
        if create.is_some() && !w.created {
            return Err(StoreError::ZoneExists(display(apex)));
        }
        limits::check_zone(apex, &records, &w.limits.size)?;
        dnssec::check_signed_ttls(&w.tx, w.id, &records)?;
        for host in crate::proxy::hosts_in(&w.tx, &key)? {
            let at_host: Vec<Record> =
                records.iter().filter(|r| name::to_lowercase(&r.owner) == host).cloned().collect();
            crate::proxy::check_owner(&host, &at_host)?;
        }
        let file_serial = records.iter().find(|r| r.rtype == code::SOA).and_then(|r| soa_serial(&r.rdata));
        // Derived records stay while their ANAME does (below), so a
        // re-import does not blank the addresses until the next resolution.
        rows::delete_kind(&w.tx, w.id, Kind::Source)?;
        let mut seen: hashbrown::HashSet<_, foldhash::fast::RandomState> = Default::default();
        let mut names: hashbrown::HashSet<Box<[u8]>, foldhash::fast::RandomState> = Default::default();
        for r in &records {
            let owner_key = name::to_lowercase(&r.owner);
            // RFC 2181 §5: duplicate RRs collapse into one.
            if !seen.insert((owner_key.clone(), r.rtype, r.rdata.clone())) {
                continue;
            }
            rows::insert(&w.tx, w.id, r, Kind::Source)?;
            names.insert(owner_key);
        }
        rows::set_counts(&w.tx, w.id, seen.len() as i64, names.len() as i64)?;
        w.counts = (0, 0);
        w.check_counts()?;
        rows::drop_orphans(&w.tx, w.id, None)?;
        let signing = dnssec::load_signing(&w.tx, &w.sealer, w.id)?;
        w.commit_replace(file_serial, signing.as_ref())
    }

    /// Applies changes to an existing zone through the write path: the
    /// changed owners are re-checked, the serial is bumped, and the diff
    /// (including the SOA change) is journaled. Adding an RR that exists
    /// or removing one that does not is a no-op, not an error.
    pub fn apply(&mut self, apex: &[u8], changes: &[Change]) -> Result<Commit, StoreError> {
        self.apply_with(apex, |_| Ok::<_, StoreError>(changes.to_vec()))
    }

    /// Replaces whole RRsets (an empty list deletes one), computing the
    /// difference inside the write transaction, so concurrent writers
    /// cannot interleave between read and write. Nothing to change: no
    /// new serial, and the commit's journal id is 0.
    pub fn replace_rrsets(
        &mut self,
        apex: &[u8],
        sets: &[crate::RrSetReplacement],
    ) -> Result<Commit, StoreError> {
        self.apply_with(apex, |zone| {
            let mut changes = Vec::new();
            for (owner, rtype, new) in sets {
                let old = zone.rrset(owner, *rtype)?;
                changes.extend(
                    old.iter()
                        .filter(|o| !new.iter().any(|n| n.rdata == o.rdata))
                        .map(|o| Change::Remove(o.clone())),
                );
                // An Add carries the RRset's TTL, so a kept record is
                // re-added when the TTL changes.
                changes.extend(
                    new.iter()
                        .filter(|n| !old.iter().any(|o| o.rdata == n.rdata && o.ttl == n.ttl))
                        .cloned()
                        .map(Change::Add),
                );
            }
            Ok::<_, StoreError>(changes)
        })
    }

    /// The general write: `plan` reads the zone inside the write
    /// transaction and returns the changes to make (RFC 2136 checks its
    /// prerequisites this way). An empty plan commits nothing and returns
    /// the current serial with journal id 0.
    pub fn apply_with<E: From<StoreError>>(
        &mut self,
        apex: &[u8],
        plan: impl FnOnce(&crate::ZoneReader<'_>) -> Result<Vec<Change>, E>,
    ) -> Result<Commit, E> {
        let w = self.begin(apex)?;
        let changes = plan(&crate::ZoneReader { conn: &w.tx, zone_id: w.id })?;
        if changes.is_empty() {
            return Ok(w.commit_nothing()?);
        }
        Ok(apply_source(w, apex, &changes)?)
    }

    /// Deletes a zone and all its records. A signed zone is refused while
    /// its keys may still be needed by validators holding the parent's DS
    /// (see [`Writer::delete_zone_forced`]).
    pub fn delete_zone(&mut self, apex: &[u8]) -> Result<Commit, StoreError> {
        let w = self.begin(apex)?;
        dnssec::check_delete(&w.tx, w.id, apex, w.now())?;
        w.commit_delete()
    }

    /// Deletes a zone whatever its keys: the operator's `--force`.
    pub fn delete_zone_forced(&mut self, apex: &[u8]) -> Result<Commit, StoreError> {
        self.begin(apex)?.commit_delete()
    }
}

/// Applies changes to a zone's own records: each added record is checked
/// on its own, every touched owner against the zone rules afterwards; an
/// ANAME gone takes its derived addresses with it.
fn apply_source(mut w: WriteTx<'_>, apex: &[u8], changes: &[Change]) -> Result<Commit, StoreError> {
    let mut effective = Vec::with_capacity(changes.len() + 2);
    let owners = changed_owners(changes);
    let mut had = Vec::with_capacity(owners.len());
    for o in &owners {
        had.push(rows::owner_exists(&w.tx, w.id, o, Kind::Source)?);
    }
    let mut added = 0i64;
    for c in changes {
        match c {
            Change::Add(r) => {
                let owner_key = name::to_lowercase(&r.owner);
                if !name::is_at_or_below(&owner_key, &w.key) {
                    return Err(CheckError {
                        index: None,
                        reason: format!("{} is outside the zone {}", name::to_text(&r.owner), display(apex)),
                    }
                    .into());
                }
                sixgate_dns::zonefile::check_rdata(r.rtype, &r.rdata)
                    .map_err(|reason| CheckError { index: None, reason })?;
                sixgate_dns::check::check_not_managed(r)?;
                // One TTL per RRset: an added RR sets the RRset's TTL.
                let changed_ttl = rows::set_ttl(&w.tx, w.id, &owner_key, r.rtype, r.ttl, Kind::Source)?;
                let exists = rows::exists(&w.tx, w.id, r, Kind::Source)?;
                if !exists {
                    rows::insert(&w.tx, w.id, r, Kind::Source)?;
                    added += 1;
                }
                // An Add of an existing RR still carries a TTL change.
                if !exists || changed_ttl > 0 {
                    effective.push(c.clone());
                }
            }
            Change::Remove(r) => {
                if rows::delete(&w.tx, w.id, r, Kind::Source)? {
                    added -= 1;
                    effective.push(c.clone());
                }
            }
        }
    }
    let mut names = 0i64;
    for (o, had) in owners.iter().zip(had) {
        let recs = owner_records(&w.tx, w.id, o)?;
        names += i64::from(!recs.is_empty()) - i64::from(had);
        sixgate_dns::check::check_owner(apex, o, &recs)?;
        crate::occlusion::check_owner(&w.tx, w.id, &w.key, o, &recs)?;
        if crate::proxy::is_proxied(&w.tx, o)? {
            crate::proxy::check_owner(o, &recs)?;
        }
        effective.extend(rows::drop_orphans(&w.tx, w.id, Some(o))?.into_iter().map(Change::Remove));
    }
    w.count(added, names);
    w.commit_diff(effective)
}

/// An account's limits as stored; `None`: the default.
fn stored_limits(conn: &Connection, account_id: i64) -> Result<[Option<u64>; 6], StoreError> {
    let row: Option<[Option<i64>; 6]> = conn
        .query_row(
            "SELECT records_per_rrset, rrsets_per_name, names_per_zone, zones, records, tokens
             FROM account_limits WHERE account_id = ?1",
            params![account_id],
            |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?]),
        )
        .optional()?;
    Ok(row.unwrap_or([None; 6]).map(|v| v.map(|v| v.max(0) as u64)))
}

/// Inserts a new zone's row, after the zone quota check, with the serial
/// a deleted zone of the same name last had (or 0); returns that serial.
fn insert_zone(
    tx: &Connection,
    apex: &[u8],
    key: &[u8],
    account_id: i64,
    verified: bool,
    at: i64,
) -> Result<Option<u32>, StoreError> {
    let limits = account_limits(tx, account_id)?;
    if let Some(max) = limits.quotas.zones {
        let n: i64 =
            tx.query_row("SELECT count(*) FROM zones WHERE account_id = ?1", params![account_id], |r| {
                r.get(0)
            })?;
        if n as u64 >= max {
            return Err(LimitError::new(
                format!("account {}", tenancy::account_name(tx, account_id)?),
                n as u64 + 1,
                "zones",
                "zones",
                max,
            )
            .into());
        }
    }
    let last: Option<i64> = tx
        .query_row("SELECT serial FROM zone_serials WHERE name = ?1", params![key], |r| r.get(0))
        .optional()?;
    tx.execute(
        "INSERT INTO zones (name, apex, serial, created_at, updated_at, account_id, verified, records, names)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, 0, 0)",
        params![key, apex, last.unwrap_or(0), at, account_id, verified],
    )?;
    Ok(last.map(|s| s as u32))
}

/// The limits of an account: the operator's account has only the
/// message-size limit; a customer's has the defaults unless the operator
/// set others.
pub(crate) fn account_limits(conn: &Connection, account_id: i64) -> Result<AccountLimits, StoreError> {
    if account_id == tenancy::OPERATOR_ACCOUNT {
        return Ok(AccountLimits { size: SizeLimits::OPERATOR, quotas: Quotas::OPERATOR });
    }
    let [rr, rn, nz, z, rec, tok] = stored_limits(conn, account_id)?;
    let (s, q) = (SizeLimits::CUSTOMER, Quotas::CUSTOMER);
    Ok(AccountLimits {
        size: SizeLimits {
            records_per_rrset: rr.or(s.records_per_rrset),
            rrsets_per_name: rn.or(s.rrsets_per_name),
            names_per_zone: nz.or(s.names_per_zone),
        },
        quotas: Quotas { zones: z.or(q.zones), records: rec.or(q.records), tokens: tok.or(q.tokens) },
    })
}

/// The row primitives: the only SQL in sixgate that writes the `records`
/// table.
pub(crate) mod rows {
    use rusqlite::{Connection, params};
    use sixgate_dns::name;
    use sixgate_dns::rtype::code;
    use sixgate_dns::zone::Record;

    use super::Kind;
    use crate::{StoreError, record_of};

    /// Inserts one record row.
    pub(crate) fn insert(conn: &Connection, zone_id: i64, r: &Record, kind: Kind) -> Result<(), StoreError> {
        conn.prepare_cached(
            "INSERT INTO records (zone_id, owner, owner_key, rtype, ttl, rdata, derived) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            zone_id,
            &r.owner[..],
            &name::to_lowercase(&r.owner)[..],
            r.rtype,
            r.ttl,
            &r.rdata[..],
            kind as u8
        ])?;
        Ok(())
    }

    /// Deletes the row of one record of `kind`; returns whether it was there.
    pub(crate) fn delete(
        conn: &Connection,
        zone_id: i64,
        r: &Record,
        kind: Kind,
    ) -> Result<bool, StoreError> {
        let n = conn
            .prepare_cached(
                "DELETE FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND rtype = ?3 AND rdata = ?4 AND derived = ?5",
            )?
            .execute(params![zone_id, &name::to_lowercase(&r.owner)[..], r.rtype, &r.rdata[..], kind as u8])?;
        Ok(n > 0)
    }

    /// Does the zone hold this record (of `kind`)?
    pub(crate) fn exists(
        conn: &Connection,
        zone_id: i64,
        r: &Record,
        kind: Kind,
    ) -> Result<bool, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND rtype = ?3 AND rdata = ?4 AND derived = ?5)",
            )?
            .query_row(
                params![zone_id, &name::to_lowercase(&r.owner)[..], r.rtype, &r.rdata[..], kind as u8],
                |row| row.get(0),
            )?)
    }

    /// Does the owner have any record of `kind`?
    pub(crate) fn owner_exists(
        conn: &Connection,
        zone_id: i64,
        owner_key: &[u8],
        kind: Kind,
    ) -> Result<bool, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND derived = ?3)",
            )?
            .query_row(params![zone_id, owner_key, kind as u8], |row| row.get(0))?)
    }

    /// Sets the TTL of an RRset of `kind` (RFC 2181 §5.2: one TTL per
    /// RRset); returns the number of rows changed.
    pub(crate) fn set_ttl(
        conn: &Connection,
        zone_id: i64,
        owner_key: &[u8],
        rtype: u16,
        ttl: u32,
        kind: Kind,
    ) -> Result<usize, StoreError> {
        Ok(conn
            .prepare_cached(
                "UPDATE records SET ttl = ?1 WHERE zone_id = ?2 AND owner_key = ?3 AND rtype = ?4 AND derived = ?5 AND ttl != ?1",
            )?
            .execute(params![ttl, zone_id, owner_key, rtype, kind as u8])?)
    }

    /// Deletes every row of `kind` at one owner.
    pub(crate) fn delete_at(
        conn: &Connection,
        zone_id: i64,
        owner_key: &[u8],
        kind: Kind,
    ) -> Result<(), StoreError> {
        conn.execute(
            "DELETE FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND derived = ?3",
            params![zone_id, owner_key, kind as u8],
        )?;
        Ok(())
    }

    /// Deletes every row of `kind` in the zone.
    pub(crate) fn delete_kind(conn: &Connection, zone_id: i64, kind: Kind) -> Result<(), StoreError> {
        conn.execute(
            "DELETE FROM records WHERE zone_id = ?1 AND derived = ?2",
            params![zone_id, kind as u8],
        )?;
        Ok(())
    }

    /// Deletes the signer's signatures and chain (RRSIG, NSEC, NSEC3),
    /// keeping its key records.
    pub(crate) fn delete_signatures_and_chain(conn: &Connection, zone_id: i64) -> Result<(), StoreError> {
        conn.execute(
            "DELETE FROM records WHERE zone_id = ?1 AND derived = ?2 AND rtype IN (?3, ?4, ?5)",
            params![zone_id, Kind::Signer as u8, code::RRSIG, code::NSEC, code::NSEC3],
        )?;
        Ok(())
    }

    /// Deletes the zone's row and every record of it.
    pub(crate) fn delete_zone(conn: &Connection, zone_id: i64) -> Result<(), StoreError> {
        conn.execute("DELETE FROM records WHERE zone_id = ?1", params![zone_id])?;
        conn.execute("DELETE FROM zones WHERE id = ?1", params![zone_id])?;
        Ok(())
    }

    /// Sets the zone's own record and name counts (after a whole-zone write).
    pub(crate) fn set_counts(
        conn: &Connection,
        zone_id: i64,
        records: i64,
        names: i64,
    ) -> Result<(), StoreError> {
        conn.execute(
            "UPDATE zones SET records = ?1, names = ?2 WHERE id = ?3",
            params![records, names, zone_id],
        )?;
        Ok(())
    }

    /// Derived records at owner ?2 whose ANAME (type ?3) is gone.
    const ORPHAN_AT: &str = "zone_id = ?1 AND owner_key = ?2 AND derived = 1 AND NOT EXISTS \
        (SELECT 1 FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND rtype = ?3 AND derived = 0)";
    /// Derived records anywhere in the zone whose ANAME is gone (?2 is NULL).
    const ORPHAN_ANYWHERE: &str = "zone_id = ?1 AND derived = 1 AND ?2 IS NULL AND owner_key NOT IN \
        (SELECT owner_key FROM records WHERE zone_id = ?1 AND derived = 0 AND rtype = ?3)";

    /// Deletes ANAME-derived records whose owner has no ANAME any more
    /// (at `owner` only, or in the whole zone) and returns them.
    pub(crate) fn drop_orphans(
        conn: &Connection,
        zone_id: i64,
        owner: Option<&[u8]>,
    ) -> Result<Vec<Record>, StoreError> {
        // Two queries, not one with `?2 IS NULL OR owner_key = ?2`: SQLite
        // plans that one for the whole zone (an index range on zone_id
        // only), which made every write to a large zone read all its
        // records.
        let orphan = match owner {
            Some(_) => ORPHAN_AT,
            None => ORPHAN_ANYWHERE,
        };
        let gone: Vec<Record> = {
            let mut st =
                conn.prepare_cached(&format!("SELECT owner, rtype, ttl, rdata FROM records WHERE {orphan}"))?;
            let rows = st.query_map(params![zone_id, owner, code::ANAME], record_of)?;
            rows.collect::<Result<_, _>>()?
        };
        if !gone.is_empty() {
            conn.execute(
                &format!("DELETE FROM records WHERE {orphan}"),
                params![zone_id, owner, code::ANAME],
            )?;
        }
        Ok(gone)
    }

    #[cfg(test)]
    pub(crate) fn orphan_at_sql() -> &'static str {
        ORPHAN_AT
    }
}

impl Store {
    /// The audit log: journal entries (of one zone, or all), newest
    /// first, at most `limit`. The journal keeps [`JOURNAL_KEEP`] entries
    /// per zone, so this reaches back that far.
    pub fn audit(&self, apex: Option<&[u8]>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let key = apex.map(name::to_lowercase);
        let mut st = self.conn.prepare_cached(
            "SELECT id, at, zone_name, serial, kind, coalesce(actor, 'unknown'), changes FROM journal
             WHERE ?1 IS NULL OR zone_name = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![key.as_deref(), limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<Vec<u8>>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at, apex, serial, kind, actor, changes) = row?;
            let changes = match changes {
                Some(c) => codec::decode_changes(&c).ok_or(StoreError::Corrupt(id))?,
                None => Vec::new(),
            };
            out.push(AuditEntry { id, at, apex: apex.into(), serial: serial as u32, kind, actor, changes });
        }
        Ok(out)
    }

    /// Sets an account's limits and quotas; `None` fields take the
    /// defaults.
    pub fn set_account_limits(
        &mut self,
        account_id: i64,
        size: &SizeLimits,
        quotas: &Quotas,
    ) -> Result<(), StoreError> {
        let v = |x: Option<u64>| x.map(|x| x.min(i64::MAX as u64) as i64);
        self.conn.execute(
            "INSERT INTO account_limits (account_id, records_per_rrset, rrsets_per_name, names_per_zone, zones, records, tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(account_id) DO UPDATE SET records_per_rrset = excluded.records_per_rrset,
                rrsets_per_name = excluded.rrsets_per_name, names_per_zone = excluded.names_per_zone,
                zones = excluded.zones, records = excluded.records, tokens = excluded.tokens",
            params![
                account_id,
                v(size.records_per_rrset),
                v(size.rrsets_per_name),
                v(size.names_per_zone),
                v(quotas.zones),
                v(quotas.records),
                v(quotas.tokens)
            ],
        )?;
        Ok(())
    }

    /// An account's limits as the operator set them (`None`: the
    /// default), in the order records_per_rrset, rrsets_per_name,
    /// names_per_zone, zones, records, tokens.
    pub fn stored_account_limits(&self, account_id: i64) -> Result<[Option<u64>; 6], StoreError> {
        stored_limits(&self.conn, account_id)
    }

    /// An account's limits and quotas in force.
    pub fn account_limits(&self, account_id: i64) -> Result<AccountLimits, StoreError> {
        account_limits(&self.conn, account_id)
    }
}

#[cfg(test)]
mod tests {
    use sixgate_dns::zonefile;

    use super::*;
    use crate::JournalKind;

    fn apex() -> Box<[u8]> {
        name::from_text("shop.example.", None).unwrap()
    }

    fn zone(serial: u32, extra: &str) -> Vec<Record> {
        let text =
            format!("@ 300 SOA ns hm {serial} 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n{extra}");
        zonefile::parse(&text, &apex()).unwrap()
    }

    fn cli() -> Actor {
        Actor::Cli("test".into())
    }

    /// Regression: a zone deleted and created again started from its
    /// file's serial (or 1), so secondaries kept the old, "newer" copy.
    #[test]
    fn a_zone_made_again_never_goes_back_to_an_old_serial() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set_serial_scheme(SerialScheme::Increment).unwrap();
        assert_eq!(s.by(cli()).replace_zone(&apex(), zone(2026120601, "")).unwrap().serial, 2026120601);
        s.by(cli()).delete_zone(&apex()).unwrap();
        let again = s.by(cli()).replace_zone(&apex(), zone(1, "")).unwrap();
        assert_eq!(again.serial, 2026120602);
        // A brand-new name still starts at its file's serial, as written.
        let other = name::from_text("other.example.", None).unwrap();
        let text = "@ 300 SOA ns hm 7 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n";
        assert_eq!(
            s.by(cli()).replace_zone(&other, zonefile::parse(text, &other).unwrap()).unwrap().serial,
            7
        );
    }

    #[test]
    fn every_write_is_journaled_with_its_actor() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.by(cli()).replace_zone(&apex(), zone(1, "")).unwrap();
        let www = zonefile::parse("www 60 AAAA 2001:db8::1\n", &apex()).unwrap();
        s.by(Actor::Token(42)).apply(&apex(), &[Change::Add(www[0].clone())]).unwrap();
        s.by(Actor::Tsig("k.".into())).apply(&apex(), &[Change::Remove(www[0].clone())]).unwrap();
        s.by(Actor::Task("aname")).delete_zone(&apex()).unwrap();
        let log = s.audit(Some(&apex()), 10).unwrap();
        let actors: Vec<&str> = log.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, ["task:aname", "tsig:k.", "token:42", "cli:test"]);
        assert!(log[2].changes.contains(&Change::Add(www[0].clone())));
        assert_eq!(log[0].kind, "delete");
        // Readers see each entry linked to its zone's previous one.
        let j = s.journal_since(0, 10).unwrap();
        assert_eq!(j[0].prev, 0);
        assert!(j.windows(2).all(|w| w[1].prev == w[0].id));
        assert!(matches!(j[1].kind, JournalKind::Diff(_)));
    }

    #[test]
    fn the_journal_is_pruned_per_zone_and_keeps_each_zones_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.by(cli()).replace_zone(&apex(), zone(1, "")).unwrap();
        let quiet = name::from_text("quiet.example.", None).unwrap();
        let text = "@ 300 SOA ns hm 7 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n";
        s.by(cli()).replace_zone(&quiet, zonefile::parse(text, &quiet).unwrap()).unwrap();
        s.conn.pragma_update(None, "synchronous", "OFF").unwrap();
        let www = zonefile::parse("www 60 AAAA 2001:db8::1\n", &apex()).unwrap();
        for i in 0..(JOURNAL_KEEP + 5) {
            let c = if i % 2 == 0 { Change::Add(www[0].clone()) } else { Change::Remove(www[0].clone()) };
            s.by(cli()).apply(&apex(), &[c]).unwrap();
        }
        let count = |z: &[u8]| -> i64 {
            s.conn
                .query_row("SELECT count(*) FROM journal WHERE zone_name = ?1", params![z], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&apex()), JOURNAL_KEEP);
        assert_eq!(count(&quiet), 1, "a quiet zone keeps its entry");
    }

    #[test]
    fn the_journal_keeps_the_number_of_entries_serve_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.save_journal_keep(10).unwrap();
        s.by(cli()).replace_zone(&apex(), zone(1, "")).unwrap();
        s.conn.pragma_update(None, "synchronous", "OFF").unwrap();
        // Another process on the same directory prunes alike.
        let mut other = Store::open(dir.path()).unwrap();
        let www = zonefile::parse("www 60 AAAA 2001:db8::1\n", &apex()).unwrap();
        for i in 0..25 {
            let c = if i % 2 == 0 { Change::Add(www[0].clone()) } else { Change::Remove(www[0].clone()) };
            other.by(cli()).apply(&apex(), &[c]).unwrap();
        }
        let count: i64 = s
            .conn
            .query_row("SELECT count(*) FROM journal WHERE zone_name = ?1", params![&apex()[..]], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(count, 10);
    }

    #[test]
    fn customer_quotas_refuse_the_write_that_crosses_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let bob = s.create_account("bob").unwrap().id;
        let quotas = Quotas { zones: Some(1), records: Some(5), tokens: Some(1) };
        s.set_account_limits(bob, &SizeLimits::CUSTOMER, &quotas).unwrap();
        s.by(cli()).create_zone(&apex(), zone(1, ""), bob, true).unwrap();
        let other = name::from_text("other.example.", None).unwrap();
        let text = "@ 300 SOA ns hm 7 2 3 4 5\n@ 300 NS ns\n";
        let e =
            s.by(cli()).create_zone(&other, zonefile::parse(text, &other).unwrap(), bob, true).unwrap_err();
        assert_eq!(e.to_string(), "account bob: 2 zones over the zones limit of 1");
        // 3 records now; two more fit, a third does not.
        let adds =
            zonefile::parse("a 60 A 192.0.2.1\nb 60 A 192.0.2.1\nc 60 A 192.0.2.1\n", &apex()).unwrap();
        s.by(cli()).apply(&apex(), &[Change::Add(adds[0].clone()), Change::Add(adds[1].clone())]).unwrap();
        let serial = s.serial(&apex()).unwrap();
        let e = s.by(cli()).apply(&apex(), &[Change::Add(adds[2].clone())]).unwrap_err();
        assert_eq!(e.to_string(), "account bob: 6 records over the records limit of 5");
        assert_eq!(s.serial(&apex()).unwrap(), serial, "a refused write changes nothing");
        // A removal and an add in one write fit.
        s.by(cli()).apply(&apex(), &[Change::Remove(adds[0].clone()), Change::Add(adds[2].clone())]).unwrap();
        s.create_token(bob, crate::Scope::Account).unwrap();
        let e = s.create_token(bob, crate::Scope::Account).unwrap_err();
        assert_eq!(e.to_string(), "account bob: 2 tokens over the tokens limit of 1");
        // The operator account has no quotas.
        for _ in 0..3 {
            s.create_token(crate::OPERATOR_ACCOUNT, crate::Scope::Admin).unwrap();
        }
    }

    #[test]
    fn an_oversized_rrset_is_refused_on_every_path_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.by(cli()).replace_zone(&apex(), zone(1, "")).unwrap();
        let value = "x".repeat(250);
        let many: String = (0..140).map(|i| format!("_acme-challenge 60 TXT \"{i:03}{value}\"\n")).collect();
        let recs = zonefile::parse(&many, &apex()).unwrap();
        let serial = s.serial(&apex()).unwrap();
        // A diff (API, UPDATE, httpreq): refused whole.
        let changes: Vec<Change> = recs.iter().cloned().map(Change::Add).collect();
        let e = s.by(Actor::Token(1)).apply(&apex(), &changes).unwrap_err();
        assert!(matches!(&e, StoreError::Limit(l) if l.limit == "rrset_octets"), "{e}");
        assert_eq!(s.serial(&apex()).unwrap(), serial);
        // Adds that accumulate over several writes: the one that crosses.
        let (first, rest) = changes.split_at(100);
        s.by(Actor::Token(1)).apply(&apex(), first).unwrap();
        assert!(s.by(Actor::Token(1)).apply(&apex(), rest).is_err());
        // A whole zone (import), the operator's too.
        let e = s.by(cli()).replace_zone(&apex(), zone(9, &many)).unwrap_err();
        assert!(e.to_string().contains("over the rrset_octets limit of 32768"), "{e}");
        // ANAME-derived addresses are held to it as well.
        let aname = zonefile::parse("@ 300 ANAME target.example.\n", &apex()).unwrap();
        s.by(cli()).apply(&apex(), &[Change::Add(aname[0].clone())]).unwrap();
        let addrs: Vec<Record> = (0..3000u32)
            .map(|i| Record { owner: apex(), rtype: code::A, ttl: 60, rdata: i.to_be_bytes().into() })
            .collect();
        let e = s.by(Actor::Task("aname")).set_derived(&apex(), &[(apex(), addrs)]).unwrap_err();
        assert!(e.to_string().contains("rrset_octets"), "{e}");
    }
}
