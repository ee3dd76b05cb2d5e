//! Managed DNSSEC: turning signing on and off, keys, and what the signer
//! needs to keep a zone signed.
//!
//! Keys live in `dnssec_keys`, private halves as PKCS#8, never logged; the
//! policy and the zone's DNSSEC state in `dnssec_zones`. The apex records
//! the keys imply (DNSKEY, CDS, CDNSKEY, NSEC3PARAM) are derived records
//! of the signer's kind, so they are journaled and transferred like the
//! signatures.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record};
use sixgate_dnssec::denial::Nsec3Params;
use sixgate_dnssec::ds;
use sixgate_dnssec::key::flags;
use sixgate_dnssec::policy::{Denial, KeyLayout, Policy};
use sixgate_dnssec::{Algorithm, KeyPair};

use crate::signer::{self, LoadedKey, ZoneSigning};
use crate::{Commit, Store, StoreError, display, finish_diff_signed, record_of, zone_row};

/// Signatures start this long before they are made, for validators whose
/// clocks are behind (Knot uses 90 minutes, BIND one hour).
const INCEPTION_OFFSET: u32 = 3600;

/// The role of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// Combined signing key: signs everything, named by the parent's DS.
    Csk,
    /// Key-signing key: signs the DNSKEY RRset, named by the parent's DS.
    Ksk,
    /// Zone-signing key: signs the rest.
    Zsk,
}

impl KeyRole {
    /// The name shown in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Csk => "csk",
            KeyRole::Ksk => "ksk",
            KeyRole::Zsk => "zsk",
        }
    }
}

/// Where a key is in its life, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    /// Its role.
    pub role: KeyRole,
    /// Its DNSKEY is in the zone.
    pub published: bool,
    /// It signs what its role signs.
    pub signing: bool,
    /// CDS and CDNSKEY name it (KSK and CSK).
    pub submitted: bool,
    /// When each of these last changed (seconds since the epoch).
    pub since: i64,
}

/// A zone's key, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Row id.
    pub id: i64,
    /// Algorithm.
    pub algorithm: u8,
    /// Key tag.
    pub key_tag: u16,
    /// DNSKEY flags.
    pub flags: u16,
    /// DNSKEY rdata.
    pub dnskey: Vec<u8>,
    /// Its state.
    pub state: KeyState,
    /// When it was made.
    pub created_at: i64,
}

/// A zone's DNSSEC state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZoneState {
    /// `dnssec disable` asked for: CDS/CDNSKEY say "delete", and the zone
    /// goes unsigned once the parent has no DS.
    pub unsigning: bool,
    /// The last alert (signing failed, signatures about to expire).
    pub alert: Option<String>,
}

/// A signed zone's settings, keys and state.
#[derive(Debug, Clone)]
pub struct DnssecInfo {
    /// The policy.
    pub policy: Policy,
    /// The state.
    pub state: ZoneState,
    /// Its keys, oldest first.
    pub keys: Vec<KeyInfo>,
}

fn policy_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::BadInput(format!("DNSSEC policy: {e}"))
}

/// The zone's policy and state, if it is signed.
pub(crate) fn zone_row_dnssec(
    conn: &Connection,
    zone_id: i64,
) -> Result<Option<(Policy, ZoneState)>, StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT policy, state FROM dnssec_zones WHERE zone_id = ?1")?
        .query_row(params![zone_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((policy, state)) = row else { return Ok(None) };
    let policy: Policy = serde_json::from_str(&policy).map_err(|_| StoreError::Corrupt(zone_id))?;
    let state: ZoneState = serde_json::from_str(&state).map_err(|_| StoreError::Corrupt(zone_id))?;
    Ok(Some((policy, state)))
}

/// The keys of a zone.
pub(crate) fn keys(conn: &Connection, zone_id: i64) -> Result<Vec<KeyInfo>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT id, algorithm, key_tag, flags, dnskey, state, created_at FROM dnssec_keys WHERE zone_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map(params![zone_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?, r.get(6)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, algorithm, key_tag, flags, dnskey, state, created_at) = row?;
        let state: KeyState = serde_json::from_str(&state).map_err(|_| StoreError::Corrupt(id))?;
        out.push(KeyInfo { id, algorithm, key_tag, flags, dnskey, state, created_at });
    }
    Ok(out)
}

/// Loads what signing the zone takes now, or `None` for an unsigned zone.
pub(crate) fn load_signing(conn: &Connection, zone_id: i64) -> Result<Option<ZoneSigning>, StoreError> {
    let Some((policy, _)) = zone_row_dnssec(conn, zone_id)? else { return Ok(None) };
    let apex: Vec<u8> =
        conn.query_row("SELECT apex FROM zones WHERE id = ?1", params![zone_id], |r| r.get(0))?;
    let mut st = conn.prepare_cached(
        "SELECT id, algorithm, flags, key_tag, private, state FROM dnssec_keys WHERE zone_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map(params![zone_id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, u8>(1)?,
            r.get::<_, u16>(2)?,
            r.get::<_, u16>(3)?,
            r.get::<_, Vec<u8>>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut loaded = Vec::new();
    for row in rows {
        let (id, alg, fl, tag, private, state) = row?;
        let state: KeyState = serde_json::from_str(&state).map_err(|_| StoreError::Corrupt(id))?;
        if !state.signing {
            continue;
        }
        let algorithm = Algorithm::from_code(alg).ok_or(StoreError::Corrupt(id))?;
        let pair =
            KeyPair::from_pkcs8(algorithm, fl, &private).map_err(|e| StoreError::Signing(e.to_string()))?;
        let (signs_keys, signs_zone) = match state.role {
            KeyRole::Csk => (true, true),
            KeyRole::Ksk => (true, false),
            KeyRole::Zsk => (false, true),
        };
        loaded.push(LoadedKey { pair, tag, signs_keys, signs_zone });
    }
    Ok(Some(ZoneSigning {
        apex: apex.into(),
        keys: loaded,
        nsec3: match policy.denial {
            Denial::Nsec => None,
            _ => Some(Nsec3Params::default()),
        },
        validity: policy.signature_validity,
        refresh: policy.signature_refresh,
        jitter: policy.signature_jitter,
        inception_offset: INCEPTION_OFFSET,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }))
}

/// The apex records the keys imply: DNSKEY of every published key, CDS
/// and CDNSKEY of the submitted ones (or the delete form while going
/// insecure), NSEC3PARAM for NSEC3.
fn key_records(apex: &[u8], policy: &Policy, state: &ZoneState, keys: &[KeyInfo]) -> Vec<Record> {
    let ttl = policy.dnskey_ttl;
    let rec = |rtype, rdata: Vec<u8>| Record { owner: apex.into(), rtype, ttl, rdata: rdata.into() };
    let mut out = Vec::new();
    for k in keys.iter().filter(|k| k.state.published) {
        out.push(rec(code::DNSKEY, k.dnskey.clone()));
    }
    if state.unsigning {
        out.push(rec(code::CDS, ds::CDS_DELETE.to_vec()));
        out.push(rec(code::CDNSKEY, ds::CDNSKEY_DELETE.to_vec()));
    } else {
        for k in keys.iter().filter(|k| k.state.submitted) {
            if let Some(d) = ds::ds_rdata(apex, &k.dnskey, ds::SHA256) {
                out.push(rec(code::CDS, d));
            }
            out.push(rec(code::CDNSKEY, k.dnskey.clone()));
        }
    }
    if !matches!(policy.denial, Denial::Nsec) {
        // RFC 5155 §4: the NSEC3PARAM's TTL is of no consequence; use the
        // DNSKEY TTL.
        out.push(rec(code::NSEC3PARAM, Nsec3Params::default().nsec3param_rdata()));
    }
    out
}

/// Replaces the apex key records by what the keys imply now; returns the
/// changes (empty if nothing differs).
fn sync_key_records(
    conn: &Connection,
    zone_id: i64,
    apex: &[u8],
    policy: &Policy,
    state: &ZoneState,
) -> Result<Vec<Change>, StoreError> {
    let want = key_records(apex, policy, state, &keys(conn, zone_id)?);
    let mut st = conn.prepare_cached(
        "SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1 AND derived = 3 AND rtype IN (48, 51, 59, 60)",
    )?;
    let have: Vec<Record> = st.query_map(params![zone_id], record_of)?.collect::<Result<_, _>>()?;
    let mut changes = Vec::new();
    for h in &have {
        if !want.contains(h) {
            conn.execute(
                "DELETE FROM records WHERE zone_id = ?1 AND derived = 3 AND rtype = ?2 AND rdata = ?3",
                params![zone_id, h.rtype, &h.rdata[..]],
            )?;
            changes.push(Change::Remove(h.clone()));
        }
    }
    for w in &want {
        if !have.contains(w) {
            conn.execute(
                "INSERT INTO records (zone_id, owner, owner_key, rtype, ttl, rdata, derived) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 3)",
                params![zone_id, &w.owner[..], &name::to_lowercase(&w.owner)[..], w.rtype, w.ttl, &w.rdata[..]],
            )?;
            changes.push(Change::Add(w.clone()));
        }
    }
    Ok(changes)
}

fn insert_key(
    conn: &Connection,
    zone_id: i64,
    pair: &KeyPair,
    state: &KeyState,
    at: i64,
) -> Result<(), StoreError> {
    let state = serde_json::to_string(state).map_err(|e| StoreError::Signing(e.to_string()))?;
    conn.execute(
        "INSERT INTO dnssec_keys (zone_id, algorithm, flags, key_tag, private, dnskey, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            zone_id,
            pair.algorithm().code(),
            pair.flags(),
            pair.key_tag(),
            pair.pkcs8(),
            pair.dnskey_rdata(),
            state,
            at
        ],
    )?;
    Ok(())
}

/// A new key of `role`, generated and published at once.
fn new_key(
    conn: &Connection,
    zone_id: i64,
    policy: &Policy,
    role: KeyRole,
    at: i64,
) -> Result<(), StoreError> {
    let fl = match role {
        KeyRole::Zsk => flags::ZONE,
        KeyRole::Csk | KeyRole::Ksk => flags::ZONE | flags::SEP,
    };
    let pair = KeyPair::generate(policy.algorithm, fl).map_err(|e| StoreError::Signing(e.to_string()))?;
    let state = KeyState { role, published: true, signing: true, submitted: role != KeyRole::Zsk, since: at };
    insert_key(conn, zone_id, &pair, &state, at)
}

impl Store {
    /// Turns signing on for a zone: generates its keys per `policy`,
    /// publishes them, signs the whole zone and publishes CDS/CDNSKEY for
    /// the parent. Enabling an already signed zone with the same
    /// algorithm and denial is a no-op (journal id 0); a different one is
    /// refused (that is a rollover).
    pub fn dnssec_enable(&mut self, apex: &[u8], policy: &Policy) -> Result<Commit, StoreError> {
        policy.validate().map_err(policy_error)?;
        let key = name::to_lowercase(apex);
        let at = self.now();
        let scheme = self.serial_scheme();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (id, old_serial) = zone_row(&tx, &key)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let max_ttl: u32 = tx.query_row(
            "SELECT coalesce(max(ttl), 0) FROM records WHERE zone_id = ?1 AND derived != 3",
            params![id],
            |r| r.get(0),
        )?;
        policy.check_zone_max_ttl(max_ttl).map_err(policy_error)?;
        if let Some((old, state)) = zone_row_dnssec(&tx, id)? {
            if state.unsigning {
                return Err(StoreError::Conflict(format!(
                    "{} is being made insecure; wait until it is, then enable it again",
                    display(apex)
                )));
            }
            if old.algorithm == policy.algorithm && old.denial == policy.denial && old.layout == policy.layout
            {
                return Ok(Commit { journal_id: 0, serial: old_serial as u32 });
            }
            return Err(StoreError::Conflict(format!(
                "{} is already signed with {} and {}; changing the algorithm, key layout or denial is a rollover, not an enable",
                display(apex),
                old.algorithm,
                denial_name(&old.denial)
            )));
        }
        let policy_json = serde_json::to_string(policy).map_err(|e| StoreError::Signing(e.to_string()))?;
        let state_json =
            serde_json::to_string(&ZoneState::default()).map_err(|e| StoreError::Signing(e.to_string()))?;
        tx.execute(
            "INSERT INTO dnssec_zones (zone_id, policy, state, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, policy_json, state_json, at],
        )?;
        match policy.layout {
            KeyLayout::Csk => new_key(&tx, id, policy, KeyRole::Csk, at)?,
            _ => {
                new_key(&tx, id, policy, KeyRole::Ksk, at)?;
                new_key(&tx, id, policy, KeyRole::Zsk, at)?;
            }
        }
        sync_key_records(&tx, id, apex, policy, &ZoneState::default())?;
        let zs = load_signing(&tx, id)?.ok_or(StoreError::Corrupt(id))?;
        finish_replace_signed(tx, id, &key, old_serial, scheme, at, &zs)
    }

    /// Makes a zone unsigned at once: removes keys, signatures and the
    /// chain. Only safe when the parent has no DS for the zone (else
    /// validators see it as bogus); `dnssec disable` without `--now` goes
    /// the safe way through [`Store::dnssec_start_unsigning`].
    pub fn dnssec_unsign(&mut self, apex: &[u8]) -> Result<Commit, StoreError> {
        let key = name::to_lowercase(apex);
        let at = self.now();
        let scheme = self.serial_scheme();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (id, old_serial) = zone_row(&tx, &key)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        if zone_row_dnssec(&tx, id)?.is_none() {
            return Ok(Commit { journal_id: 0, serial: old_serial as u32 });
        }
        let gone = signer::unsign(&tx, id)?;
        tx.execute("DELETE FROM dnssec_keys WHERE zone_id = ?1", params![id])?;
        tx.execute("DELETE FROM dnssec_zones WHERE zone_id = ?1", params![id])?;
        let changes: Vec<Change> = gone.into_iter().map(Change::Remove).collect();
        finish_diff_signed(tx, id, &key, old_serial, scheme, at, changes)
    }

    /// Starts going insecure (RFC 8078 §4): CDS and CDNSKEY become the
    /// "delete" records and the zone stays signed until the parent has
    /// removed its DS.
    pub fn dnssec_start_unsigning(&mut self, apex: &[u8]) -> Result<Commit, StoreError> {
        let key = name::to_lowercase(apex);
        let at = self.now();
        let scheme = self.serial_scheme();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (id, old_serial) = zone_row(&tx, &key)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let Some((policy, mut state)) = zone_row_dnssec(&tx, id)? else {
            return Err(StoreError::Conflict(format!("{} is not signed", display(apex))));
        };
        if state.unsigning {
            return Ok(Commit { journal_id: 0, serial: old_serial as u32 });
        }
        state.unsigning = true;
        save_state(&tx, id, &state)?;
        let changes = sync_key_records(&tx, id, apex, &policy, &state)?;
        finish_diff_signed(tx, id, &key, old_serial, scheme, at, changes)
    }

    /// The zone's DNSSEC settings, keys and state; `None` if unsigned.
    pub fn dnssec_info(&self, apex: &[u8]) -> Result<Option<DnssecInfo>, StoreError> {
        let (id, _) = zone_row(&self.conn, &name::to_lowercase(apex))?
            .ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let Some((policy, state)) = zone_row_dnssec(&self.conn, id)? else { return Ok(None) };
        Ok(Some(DnssecInfo { policy, state, keys: keys(&self.conn, id)? }))
    }

    /// The DS records the registry should hold for the zone (SHA-256):
    /// one per key the CDS names.
    pub fn dnssec_ds(&self, apex: &[u8]) -> Result<Vec<Record>, StoreError> {
        let Some(info) = self.dnssec_info(apex)? else {
            return Err(StoreError::Conflict(format!("{} is not signed", display(apex))));
        };
        let owner = zone_apex(&self.conn, apex)?;
        let mut out = Vec::new();
        if info.state.unsigning {
            return Ok(out);
        }
        for k in info.keys.iter().filter(|k| k.state.submitted) {
            if let Some(rd) = ds::ds_rdata(&owner, &k.dnskey, ds::SHA256) {
                out.push(Record {
                    owner: owner.clone(),
                    rtype: code::DS,
                    ttl: info.policy.dnskey_ttl,
                    rdata: rd.into(),
                });
            }
        }
        Ok(out)
    }

    /// Re-signs what expires within the refresh window at `now` (store
    /// time if `None`). Returns `None` when nothing was due.
    pub fn dnssec_refresh(&mut self, apex: &[u8]) -> Result<Option<Commit>, StoreError> {
        let key = name::to_lowercase(apex);
        let at = self.now();
        let scheme = self.serial_scheme();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (id, old_serial) = zone_row(&tx, &key)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let Some(zs) = load_signing(&tx, id)? else { return Ok(None) };
        let due = signer::expiring(&tx, id, at.max(0) as u64 + u64::from(zs.refresh))?;
        if due.is_empty() {
            return Ok(None);
        }
        let changes = signer::resign(&tx, id, &zs, &due, at.max(0) as u64)?;
        finish_diff_signed(tx, id, &key, old_serial, scheme, at, changes).map(Some)
    }
}

/// The apex in its original case.
fn zone_apex(conn: &Connection, apex: &[u8]) -> Result<Box<[u8]>, StoreError> {
    let a: Vec<u8> = conn
        .query_row("SELECT apex FROM zones WHERE name = ?1", params![&name::to_lowercase(apex)[..]], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
    Ok(a.into())
}

fn save_state(conn: &Connection, zone_id: i64, state: &ZoneState) -> Result<(), StoreError> {
    let json = serde_json::to_string(state).map_err(|e| StoreError::Signing(e.to_string()))?;
    conn.execute("UPDATE dnssec_zones SET state = ?1 WHERE zone_id = ?2", params![json, zone_id])?;
    Ok(())
}

/// The name of a denial method.
pub fn denial_name(d: &Denial) -> &'static str {
    match d {
        Denial::Nsec => "NSEC",
        _ => "NSEC3",
    }
}

/// Bumps the serial, signs the whole zone and journals a replacement.
fn finish_replace_signed(
    tx: rusqlite::Transaction<'_>,
    id: i64,
    key: &[u8],
    old_serial: i64,
    scheme: crate::SerialScheme,
    at: i64,
    zs: &ZoneSigning,
) -> Result<Commit, StoreError> {
    let (serial, _) = crate::bump_serial(&tx, id, key, old_serial, None, scheme, at)?;
    signer::sign_all(&tx, id, zs, at.max(0) as u64)?;
    let journal_id = crate::journal(&tx, id, key, serial, "replace", None)?;
    tx.commit()?;
    Ok(Commit { journal_id, serial })
}
