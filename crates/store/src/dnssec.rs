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
use sixgate_dnssec::policy::{Denial, Policy};
use sixgate_dnssec::rollover::{
    self, Action, Cds, KeyId, KeyRecord, Keyring, ParentDs, Role, RolloverError, Wait, ZoneKeys,
};
use sixgate_dnssec::{Algorithm, KeyPair};

use crate::sealed::{Row, Sealer};
use crate::signer::{self, LoadedKey, ZoneSigning};
use crate::write::{Kind, rows};
use crate::{Commit, LimitError, Store, StoreError, Writer, display, record_of, zone_row};

/// How often a key is generated again when its tag collides with a live
/// key's (RFC 4034 Appendix B: tags are not unique).
const KEY_TAG_ATTEMPTS: usize = 8;

/// Signatures start this long before they are made, for validators whose
/// clocks are behind (Knot uses 90 minutes, BIND one hour).
const INCEPTION_OFFSET: u32 = 3600;

/// A zone's DNSSEC state, as stored: its keys' timelines and intentions,
/// what was last seen at the parent, and what the planner said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZoneState {
    /// The keys and what is intended for them.
    pub keyring: Keyring,
    /// The last successful look at the parent's DS RRset.
    pub parent: Option<ParentDs>,
    /// The DS records the parent served then, rdata.
    pub parent_ds: Vec<Vec<u8>>,
    /// When the parent was last asked, and the error if that failed.
    pub parent_checked_at: Option<u64>,
    /// Why the last look at the parent failed.
    pub parent_error: Option<String>,
    /// When the keys are next due to move.
    pub next_event: Option<u64>,
    /// When the parent is next to be asked.
    pub query_parent_at: Option<u64>,
    /// What the zone waits for.
    pub waiting: Vec<Wait>,
    /// The last alert (signing failed, signatures about to expire).
    pub alert: Option<String>,
}

impl ZoneState {
    /// When the parent is next to be asked for the DS RRset: when the
    /// planner wants it, but after a failed look no sooner than one check
    /// interval later, so an unreachable parent is not asked every tick.
    pub fn parent_due(&self, check_interval: u32) -> Option<u64> {
        let planned = self.query_parent_at?;
        match (&self.parent_error, self.parent_checked_at) {
            (Some(_), Some(at)) => Some(planned.max(at.saturating_add(u64::from(check_interval)))),
            _ => Some(planned),
        }
    }
}

/// A zone's key, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its timeline and states.
    pub record: KeyRecord,
    /// DNSKEY flags.
    pub flags: u16,
    /// DNSKEY rdata.
    pub dnskey: Vec<u8>,
}

/// A signed zone's settings, keys and state.
#[derive(Debug, Clone)]
pub struct DnssecInfo {
    /// The apex, original case.
    pub apex: Box<[u8]>,
    /// The policy.
    pub policy: Policy,
    /// The state.
    pub state: ZoneState,
    /// Its live keys, oldest first.
    pub keys: Vec<KeyInfo>,
}

/// A signed zone's apex (original case) and when it is next due.
pub type SignedZoneDue = (Box<[u8]>, Option<u64>);

/// What [`Store::dnssec_maintain`] did and when to call it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintained {
    /// The commit, if the zone changed.
    pub commit: Option<Commit>,
    /// When keys are next due to move.
    pub next_event: Option<u64>,
    /// When the parent is next to be asked for the DS RRset.
    pub query_parent_at: Option<u64>,
}

/// A manual key operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Roll {
    /// Roll the KSK (or the CSK) by double signature.
    Ksk,
    /// Roll the ZSK by pre-publication.
    Zsk,
    /// Move every key to another algorithm.
    Algorithm(Algorithm),
}

fn policy_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::BadInput(format!("DNSSEC policy: {e}"))
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Signing(e.to_string())
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

pub(crate) fn save_state(conn: &Connection, zone_id: i64, state: &ZoneState) -> Result<(), StoreError> {
    let json = serde_json::to_string(state).map_err(json_error)?;
    conn.execute("UPDATE dnssec_zones SET state = ?1 WHERE zone_id = ?2", params![json, zone_id])?;
    Ok(())
}

/// Flags and DNSKEY rdata of a stored key.
fn key_row(conn: &Connection, id: KeyId) -> Result<Option<(u16, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT flags, dnskey FROM dnssec_keys WHERE id = ?1")?
        .query_row(params![id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The live keys of a zone with their public halves.
fn keys(conn: &Connection, state: &ZoneState) -> Result<Vec<KeyInfo>, StoreError> {
    let mut out = Vec::new();
    for k in state.keyring.live() {
        let (flags, dnskey) = key_row(conn, k.id)?.ok_or(StoreError::Corrupt(k.id as i64))?;
        out.push(KeyInfo { record: k.clone(), flags, dnskey });
    }
    Ok(out)
}

/// The signing inputs of a zone in `view`.
fn signing_for(
    conn: &Connection,
    sealer: &Sealer,
    apex: &[u8],
    policy: &Policy,
    view: &ZoneKeys,
) -> Result<ZoneSigning, StoreError> {
    let mut ids: Vec<KeyId> = view.dnskey_signers.iter().chain(&view.zone_signers).map(|k| k.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut loaded = Vec::new();
    for id in ids {
        let (alg, fl, tag, private, sealed, zone_id, dnskey): (u8, u16, u16, Vec<u8>, bool, i64, Vec<u8>) = conn
            .prepare_cached(
                "SELECT algorithm, flags, key_tag, private, sealed, zone_id, dnskey FROM dnssec_keys WHERE id = ?1",
            )?
            .query_row(params![id as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
        let private = sealer.open(&Row::Dnssec(zone_id, &dnskey), private, sealed)?;
        let algorithm = Algorithm::from_code(alg).ok_or(StoreError::Corrupt(id as i64))?;
        let pair =
            KeyPair::from_pkcs8(algorithm, fl, &private).map_err(|e| StoreError::Signing(e.to_string()))?;
        loaded.push(LoadedKey {
            pair,
            tag,
            signs_keys: view.dnskey_signers.iter().any(|k| k.id == id),
            signs_zone: view.zone_signers.iter().any(|k| k.id == id),
        });
    }
    Ok(ZoneSigning {
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
    })
}

/// Loads what signing the zone takes now, or `None` for an unsigned zone.
pub(crate) fn load_signing(
    conn: &Connection,
    sealer: &Sealer,
    zone_id: i64,
) -> Result<Option<ZoneSigning>, StoreError> {
    let Some((policy, state)) = zone_row_dnssec(conn, zone_id)? else { return Ok(None) };
    let apex: Vec<u8> =
        conn.query_row("SELECT apex FROM zones WHERE id = ?1", params![zone_id], |r| r.get(0))?;
    let view = rollover::zone_view(&state.keyring);
    Ok(Some(signing_for(conn, sealer, &apex, &policy, &view)?))
}

/// The apex records the keys imply: DNSKEY of every published key,
/// CDS/CDNSKEY as the view says, NSEC3PARAM for NSEC3.
fn key_records(
    conn: &Connection,
    apex: &[u8],
    policy: &Policy,
    view: &ZoneKeys,
) -> Result<Vec<Record>, StoreError> {
    let ttl = policy.dnskey_ttl;
    let rec = |rtype, rdata: Vec<u8>| Record { owner: apex.into(), rtype, ttl, rdata: rdata.into() };
    let mut out = Vec::new();
    for k in &view.dnskey {
        let (_, dnskey) = key_row(conn, k.id)?.ok_or(StoreError::Corrupt(k.id as i64))?;
        out.push(rec(code::DNSKEY, dnskey));
    }
    match &view.cds {
        Cds::Delete => {
            out.push(rec(code::CDS, ds::CDS_DELETE.to_vec()));
            out.push(rec(code::CDNSKEY, ds::CDNSKEY_DELETE.to_vec()));
        }
        Cds::Keys(keys) => {
            for k in keys {
                let (_, dnskey) = key_row(conn, k.id)?.ok_or(StoreError::Corrupt(k.id as i64))?;
                if let Some(d) = ds::ds_rdata(apex, &dnskey, ds::SHA256) {
                    out.push(rec(code::CDS, d));
                }
                out.push(rec(code::CDNSKEY, dnskey));
            }
        }
        _ => {}
    }
    if !matches!(policy.denial, Denial::Nsec) && !view.dnskey.is_empty() {
        out.push(rec(code::NSEC3PARAM, Nsec3Params::default().nsec3param_rdata()));
    }
    Ok(out)
}

/// Replaces the apex key records by `want`; returns the changes.
fn sync_key_records(conn: &Connection, zone_id: i64, want: &[Record]) -> Result<Vec<Change>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1 AND derived = 3 AND rtype IN (48, 51, 59, 60)",
    )?;
    let have: Vec<Record> = st.query_map(params![zone_id], record_of)?.collect::<Result<_, _>>()?;
    let mut changes = Vec::new();
    for h in &have {
        if !want.contains(h) {
            rows::delete(conn, zone_id, h, Kind::Signer)?;
            changes.push(Change::Remove(h.clone()));
        }
    }
    for w in want {
        if !have.contains(w) {
            rows::insert(conn, zone_id, w, Kind::Signer)?;
            changes.push(Change::Add(w.clone()));
        }
    }
    Ok(changes)
}

/// Generates a key for `role`, stores it and adds it to the keyring.
fn generate_key(
    conn: &Connection,
    sealer: &Sealer,
    zone_id: i64,
    state: &mut ZoneState,
    role: Role,
    algorithm: Algorithm,
    now: u64,
) -> Result<(), StoreError> {
    let fl = if role.is_secure_entry() { flags::ZONE | flags::SEP } else { flags::ZONE };
    for _ in 0..KEY_TAG_ATTEMPTS {
        let pair = KeyPair::generate(algorithm, fl).map_err(|e| StoreError::Signing(e.to_string()))?;
        let tag = pair.key_tag();
        if state.keyring.live().any(|k| k.key_tag == tag && k.algorithm == algorithm.code()) {
            continue;
        }
        let dnskey = pair.dnskey_rdata();
        let (private, sealed) = sealer.seal(&Row::Dnssec(zone_id, &dnskey), pair.pkcs8());
        conn.execute(
            "INSERT INTO dnssec_keys (zone_id, algorithm, flags, key_tag, private, sealed, dnskey, state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![zone_id, algorithm.code(), fl, tag, private, sealed, dnskey, "{}", now as i64],
        )?;
        let id = conn.last_insert_rowid() as KeyId;
        state
            .keyring
            .add(KeyRecord::generated(id, role, algorithm.code(), tag, now))
            .map_err(|e| StoreError::Signing(e.to_string()))?;
        return Ok(());
    }
    Err(StoreError::Signing("could not generate a key with an unused key tag".into()))
}

/// Runs the rollover planner at `now` and applies what it says; keys it
/// asks for are generated on the way.
fn run_planner(
    conn: &Connection,
    sealer: &Sealer,
    zone_id: i64,
    policy: &Policy,
    state: &mut ZoneState,
    max_ttl: u32,
    now: u64,
) -> Result<(), StoreError> {
    // Each round applies actions up to a key generation, which changes
    // what the planner sees; a handful of rounds is plenty.
    for _ in 0..16 {
        let plan = rollover::plan(policy, &state.keyring, state.parent.as_ref(), max_ttl, now);
        state.next_event = plan.next_event;
        state.query_parent_at = plan.query_parent_at;
        state.waiting = plan.waiting;
        let mut generated = false;
        for action in &plan.actions {
            match action {
                Action::Generate { role, algorithm } => {
                    generate_key(conn, sealer, zone_id, state, *role, *algorithm, now)?;
                    generated = true;
                    break;
                }
                other => state.keyring.apply(other, now).map_err(|e| StoreError::Signing(e.to_string()))?,
            }
        }
        if !generated {
            return Ok(());
        }
    }
    Ok(())
}

/// The refusal of a step that would make the zone bogus for validators,
/// with the reason and, when known, the time it becomes safe.
fn unsafe_error(apex: &[u8], what: &str, e: RolloverError) -> StoreError {
    let zone = display(apex);
    let at = |t: u64| crate::rfc3339(t.min(i64::MAX as u64) as i64);
    StoreError::Conflict(match e {
        RolloverError::SignaturesCached { until, .. } => format!(
            "{zone}: refused {what}: resolvers may still hold signatures it made until {}, and would see the zone as bogus; safe from {} (the key is removed by itself then)",
            at(until),
            at(until)
        ),
        RolloverError::ParentServesDs => format!(
            "{zone}: refused {what}: the parent serves a DS for it, so validators would see the zone as bogus; use `dnssec disable` without --now, which unsigns it once the DS is gone from the parent and from caches"
        ),
        RolloverError::ParentNotSeen => format!(
            "{zone}: refused {what}: not every server of the parent has been seen without a DS for it, so it may serve one; safe once `dnssec status` shows the parent without DS (run `dnssec maintain` to ask)"
        ),
        RolloverError::DsCached { until: Some(until) } => format!(
            "{zone}: refused {what}: resolvers may still hold the parent's old DS until {}, and would see the zone as bogus; safe from {}",
            at(until),
            at(until)
        ),
        RolloverError::DsCached { until: None } => format!(
            "{zone}: refused {what}: the parent served a DS for it, which resolvers may still hold; use `dnssec disable` without --now, which unsigns it once the DS has left every cache"
        ),
        other => format!("{zone}: refused {what}: {other}"),
    })
}

/// Refuses to delete a signed zone while unsigning it at once would make
/// it bogus ([`Keyring::unsign_check`]): its keys go with it. A no-op for
/// an unsigned zone.
pub(crate) fn check_delete(conn: &Connection, zone_id: i64, apex: &[u8], now: u64) -> Result<(), StoreError> {
    let Some((policy, state)) = zone_row_dnssec(conn, zone_id)? else { return Ok(()) };
    state
        .keyring
        .unsign_check(state.parent.as_ref(), &policy, now)
        .map_err(|e| unsafe_error(apex, "deleting it with its keys", e))
}

/// Refuses records of a signed zone whose TTL is above what its policy
/// allows ([`Policy::max_record_ttl`]), in the words of the size limits.
/// A no-op for an unsigned zone. The signer's own records (DNSKEY, CDS,
/// CDNSKEY, NSEC3PARAM, signatures and denial) follow the policy and are
/// not checked.
pub(crate) fn check_signed_ttls<'a>(
    conn: &Connection,
    zone_id: i64,
    records: impl IntoIterator<Item = &'a Record>,
) -> Result<(), StoreError> {
    let Some((policy, _)) = zone_row_dnssec(conn, zone_id)? else { return Ok(()) };
    let max = policy.max_record_ttl();
    match records
        .into_iter()
        .filter(|r| !sixgate_dns::check::is_signer_managed(r.rtype))
        .find(|r| r.ttl > max)
    {
        Some(r) => Err(LimitError::new(
            format!("{} {}", name::to_text(&r.owner), sixgate_dns::zonefile::type_text(r.rtype)),
            u64::from(r.ttl),
            "seconds of ttl",
            "signed zone ttl",
            u64::from(max),
        )
        .into()),
        None => Ok(()),
    }
}

/// The largest TTL of the zone's data (the planner waits for it).
fn max_ttl(conn: &Connection, zone_id: i64) -> Result<u32, StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(max(ttl), 0) FROM records WHERE zone_id = ?1 AND rtype NOT IN (46, 47, 50)",
        params![zone_id],
        |r| r.get(0),
    )?)
}

/// Signing keys (what signs the key RRsets, what signs the rest) of a view.
fn signers(view: &ZoneKeys) -> (Vec<KeyId>, Vec<KeyId>) {
    let ids = |v: &[rollover::KeyRef]| {
        let mut ids: Vec<KeyId> = v.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        ids
    };
    (ids(&view.dnskey_signers), ids(&view.zone_signers))
}

impl Writer<'_> {
    /// Turns signing on for a zone: generates its keys per `policy`,
    /// publishes them, signs the whole zone and publishes CDS/CDNSKEY for
    /// the parent. Enabling an already signed zone with the same
    /// algorithm, layout and denial is a no-op (journal id 0); another
    /// one is refused (that is a rollover).
    pub fn dnssec_enable(&mut self, apex: &[u8], policy: &Policy) -> Result<Commit, StoreError> {
        policy.validate().map_err(policy_error)?;
        let w = self.begin(apex)?;
        let (id, old_serial, now) = (w.id, w.old_serial, w.now());
        let max_ttl = max_ttl(&w.tx, id)?;
        policy.check_zone_max_ttl(max_ttl).map_err(policy_error)?;
        if let Some((old, state)) = zone_row_dnssec(&w.tx, id)? {
            if matches!(state.keyring.goal, rollover::Goal::Insecure { .. }) {
                return Err(StoreError::Conflict(format!(
                    "{} is being made insecure; wait until it is, then enable it again",
                    display(apex)
                )));
            }
            if old.algorithm == policy.algorithm && old.denial == policy.denial && old.layout == policy.layout
            {
                return Ok(Commit { journal_id: 0, serial: old_serial });
            }
            return Err(StoreError::Conflict(format!(
                "{} is already signed with {} and {}; changing the algorithm, key layout or denial is a rollover, not an enable",
                display(apex),
                old.algorithm,
                denial_name(&old.denial)
            )));
        }
        let mut state = ZoneState::default();
        let policy_json = serde_json::to_string(policy).map_err(json_error)?;
        w.tx.execute(
            "INSERT INTO dnssec_zones (zone_id, policy, state, created_at) VALUES (?1, ?2, '{}', ?3)",
            params![id, policy_json, w.at],
        )?;
        run_planner(&w.tx, &w.sealer, id, policy, &mut state, max_ttl, now)?;
        save_state(&w.tx, id, &state)?;
        let apex_case = zone_apex(&w.tx, apex)?;
        let view = rollover::zone_view(&state.keyring);
        let changes = sync_key_records(&w.tx, id, &key_records(&w.tx, &apex_case, policy, &view)?)?;
        let zs = signing_for(&w.tx, &w.sealer, &apex_case, policy, &view)?;
        w.commit_resign(changes, &zs)
    }

    /// Makes a zone unsigned at once: removes keys, signatures and the
    /// chain. Refused (with the reason and, when known, the time it becomes
    /// safe) while validators may hold a DS of the parent for it, since
    /// they would see the zone as bogus: the parent serves a DS, was never
    /// seen without one, or served one that may still be cached
    /// ([`Keyring::unsign_check`]). `force` is the operator's way past
    /// that; `dnssec disable` without `--now` goes the safe way through
    /// [`Store::dnssec_start_unsigning`].
    pub fn dnssec_unsign(&mut self, apex: &[u8], force: bool) -> Result<Commit, StoreError> {
        let w = self.begin(apex)?;
        let (id, old_serial, now) = (w.id, w.old_serial, w.now());
        let Some((policy, state)) = zone_row_dnssec(&w.tx, id)? else {
            return Ok(Commit { journal_id: 0, serial: old_serial });
        };
        if !force {
            state
                .keyring
                .unsign_check(state.parent.as_ref(), &policy, now)
                .map_err(|e| unsafe_error(apex, "unsigning it now", e))?;
        }
        let changes = unsign_rows(&w.tx, id)?;
        w.commit_diff(changes)
    }

    /// Starts going insecure (RFC 8078 §4): CDS and CDNSKEY become the
    /// "delete" records and the zone stays signed until the parent has
    /// removed its DS; [`Store::dnssec_maintain`] finishes the job.
    pub fn dnssec_start_unsigning(&mut self, apex: &[u8]) -> Result<Maintained, StoreError> {
        self.dnssec_change(apex, None, |state, _, now| {
            state.keyring.go_insecure(now).map_err(|e| StoreError::Conflict(e.to_string()))
        })
    }

    /// Starts a rollover by hand.
    pub fn dnssec_roll(&mut self, apex: &[u8], roll: Roll) -> Result<Maintained, StoreError> {
        self.dnssec_change(apex, None, |state, _, _| {
            let r = match roll {
                Roll::Ksk => state.keyring.start_ksk_roll().map(|_| ()),
                Roll::Zsk => state.keyring.start_zsk_roll().map(|_| ()),
                Roll::Algorithm(a) => state.keyring.start_algorithm_roll(a),
            };
            r.map_err(|e| StoreError::Conflict(e.to_string()))
        })
    }

    /// Removes a key by hand (by key tag). Refused while the parent's DS
    /// names it or the parent has not been asked, while resolvers may
    /// still hold signatures it made (with the time that ends), and while
    /// it signs or is listed in CDS: the planner removes keys itself when
    /// they are safe to remove. `force` (the operator's) skips the first
    /// two.
    pub fn dnssec_remove_key(
        &mut self,
        apex: &[u8],
        key_tag: u16,
        force: bool,
    ) -> Result<Maintained, StoreError> {
        self.dnssec_change(apex, None, |state, policy, now| {
            let id = state
                .keyring
                .live()
                .find(|k| k.key_tag == key_tag)
                .map(|k| k.id)
                .ok_or_else(|| StoreError::NotFound(format!("no live key with tag {key_tag}")))?;
            let parent = state.parent.clone();
            let (policy, max_ttl) = policy;
            state
                .keyring
                .remove(id, parent.as_ref(), policy, max_ttl, now, force)
                .map_err(|e| unsafe_error(apex, &format!("removing key {key_tag}"), e))
        })
    }

    /// Moves the zone's keys along their timelines at the store's time:
    /// records what was seen at the parent (`parent`: the DS RRset's key
    /// tags and algorithms, its TTL, and the DS rdata), generates,
    /// publishes, activates, retires and removes keys as the planner
    /// says, updates DNSKEY/CDS/CDNSKEY, re-signs what that needs, and
    /// refreshes signatures that expire within the refresh window. First
    /// it deletes the private halves of keys removed longer than the
    /// policy's key retention ago ([`Store::dnssec_purge_keys`]).
    pub fn dnssec_maintain(
        &mut self,
        apex: &[u8],
        parent: Option<(ParentDs, Vec<Vec<u8>>)>,
    ) -> Result<Maintained, StoreError> {
        self.dnssec_purge_keys(apex)?;
        self.dnssec_change(apex, parent, |_, _, _| Ok(()))
    }
}

impl Store {
    /// Sets (or clears) the zone's alert, shown by `dnssec status` and the
    /// API. A no-op for an unsigned zone.
    pub fn dnssec_alert(&mut self, apex: &[u8], alert: Option<&str>) -> Result<(), StoreError> {
        let Some((id, _)) = zone_row(&self.conn, &name::to_lowercase(apex))? else { return Ok(()) };
        if let Some((_, mut state)) = zone_row_dnssec(&self.conn, id)?
            && state.alert.as_deref() != alert
        {
            state.alert = alert.map(str::to_owned);
            save_state(&self.conn, id, &state)?;
        }
        Ok(())
    }

    /// Records that asking the parent for the DS RRset failed.
    pub fn dnssec_parent_error(&mut self, apex: &[u8], error: &str) -> Result<(), StoreError> {
        let now = self.now().max(0) as u64;
        let (id, _) = zone_row(&self.conn, &name::to_lowercase(apex))?
            .ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        if let Some((_, mut state)) = zone_row_dnssec(&self.conn, id)? {
            state.parent_checked_at = Some(now);
            state.parent_error = Some(error.to_owned());
            save_state(&self.conn, id, &state)?;
        }
        Ok(())
    }
}

impl Writer<'_> {
    /// The common path of maintenance and manual operations.
    fn dnssec_change(
        &mut self,
        apex: &[u8],
        parent: Option<(ParentDs, Vec<Vec<u8>>)>,
        change: impl FnOnce(&mut ZoneState, (&Policy, u32), u64) -> Result<(), StoreError>,
    ) -> Result<Maintained, StoreError> {
        let w = self.begin(apex)?;
        let (id, now) = (w.id, w.now());
        let Some((policy, mut state)) = zone_row_dnssec(&w.tx, id)? else {
            return Err(StoreError::Conflict(format!("{} is not signed", display(apex))));
        };
        if let Some((mut observed, ds)) = parent {
            // Which keys the DS served by every answering server names is
            // decided here, where the DNSKEYs are, digest and all: a DS
            // with a key's tag but a wrong digest is not that key's.
            let apex_case = zone_apex(&w.tx, apex)?;
            observed.keys = served_keys(&apex_case, &ds, &keys(&w.tx, &state)?);
            state.parent_checked_at = Some(observed.observed_at);
            state.parent_error = None;
            state.parent = Some(observed);
            state.parent_ds = ds;
        }
        let before = rollover::zone_view(&state.keyring);
        let zone_max_ttl = max_ttl(&w.tx, id)?;
        change(&mut state, (&policy, zone_max_ttl), now)?;
        run_planner(&w.tx, &w.sealer, id, &policy, &mut state, zone_max_ttl, now)?;
        let after = rollover::zone_view(&state.keyring);
        save_state(&w.tx, id, &state)?;
        let apex_case = zone_apex(&w.tx, apex)?;
        let done =
            Maintained { commit: None, next_event: state.next_event, query_parent_at: state.query_parent_at };
        if matches!(state.keyring.goal, rollover::Goal::Insecure { .. })
            && after.dnskey.is_empty()
            && after.dnskey_signers.is_empty()
            && after.zone_signers.is_empty()
        {
            // Going insecure is complete: the parent has no DS, the keys
            // are gone.
            let changes = unsign_rows(&w.tx, id)?;
            let commit = w.commit_diff(changes)?;
            return Ok(Maintained { commit: Some(commit), next_event: None, query_parent_at: None });
        }
        let records = key_records(&w.tx, &apex_case, &policy, &after)?;
        if signers(&before) != signers(&after) {
            // Other keys sign now: every signature is made again, and
            // goes out as a diff (secondaries follow by IXFR).
            let changes = sync_key_records(&w.tx, id, &records)?;
            let zs = signing_for(&w.tx, &w.sealer, &apex_case, &policy, &after)?;
            let commit = w.commit_resign(changes, &zs)?;
            return Ok(Maintained { commit: Some(commit), ..done });
        }
        let mut changes = sync_key_records(&w.tx, id, &records)?;
        let zs = signing_for(&w.tx, &w.sealer, &apex_case, &policy, &after)?;
        let refreshed = signer::refresh(&w.tx, id, &zs, now)?;
        if !refreshed.is_empty() {
            changes.extend(refreshed);
            // What is still due now has no key to sign it: say so.
            let left = signer::expiring(&w.tx, id, now + u64::from(zs.refresh))?;
            let alert = (!left.is_empty()).then(|| {
                format!(
                    "{} signatures expire within the refresh window and could not be renewed (first: {} type {})",
                    left.len(),
                    name::to_text(&left[0].0),
                    left[0].1
                )
            });
            if alert != state.alert {
                state.alert = alert;
                save_state(&w.tx, id, &state)?;
            }
        }
        if changes.is_empty() {
            w.commit_nothing()?;
            return Ok(done);
        }
        let commit = w.commit_diff(changes)?;
        Ok(Maintained { commit: Some(commit), ..done })
    }
}

impl Store {
    /// The zone's DNSSEC settings, keys and state; `None` if unsigned.
    pub fn dnssec_info(&self, apex: &[u8]) -> Result<Option<DnssecInfo>, StoreError> {
        let (id, _) = zone_row(&self.conn, &name::to_lowercase(apex))?
            .ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let Some((policy, state)) = zone_row_dnssec(&self.conn, id)? else { return Ok(None) };
        let keys = keys(&self.conn, &state)?;
        Ok(Some(DnssecInfo { apex: zone_apex(&self.conn, apex)?, policy, state, keys }))
    }

    /// The zone's live keys with their private halves (PKCS#8): only for
    /// an explicit export by the operator.
    pub fn dnssec_private_keys(&self, apex: &[u8]) -> Result<Vec<(KeyInfo, Vec<u8>)>, StoreError> {
        let Some(info) = self.dnssec_info(apex)? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for k in info.keys {
            let (private, sealed, zone_id, dnskey): (Vec<u8>, bool, i64, Vec<u8>) = self.conn.query_row(
                "SELECT private, sealed, zone_id, dnskey FROM dnssec_keys WHERE id = ?1",
                params![k.record.id as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let private = self.sealer.open(&Row::Dnssec(zone_id, &dnskey), private, sealed)?;
            out.push((k, private));
        }
        Ok(out)
    }

    /// Every signed zone (apex, original case) with when it is next due:
    /// the earlier of its next key event and its next parent query.
    pub fn dnssec_zones(&self) -> Result<Vec<SignedZoneDue>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT z.apex, d.policy, d.state FROM dnssec_zones d JOIN zones z ON z.id = d.zone_id ORDER BY z.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (apex, policy, state) = row?;
            let policy: Policy = serde_json::from_str(&policy).unwrap_or_default();
            let state: ZoneState = serde_json::from_str(&state).unwrap_or_default();
            let due =
                [state.next_event, state.parent_due(policy.ds_check_interval)].into_iter().flatten().min();
            out.push((apex.into_boxed_slice(), due));
        }
        Ok(out)
    }

    /// The DS records the registry should hold for the zone (SHA-256):
    /// one per key the CDS names.
    pub fn dnssec_ds(&self, apex: &[u8]) -> Result<Vec<Record>, StoreError> {
        Ok(self.dnssec_ds_publish_after(apex)?.into_iter().map(|(r, _)| r).collect())
    }

    /// [`Store::dnssec_ds`], each DS with the time from which the
    /// registry may publish it: before then, resolvers may still hold
    /// unsigned data or DNSKEY RRsets without the key, and a DS would make
    /// those bogus (the planner's own time for listing it in CDS).
    pub fn dnssec_ds_publish_after(&self, apex: &[u8]) -> Result<Vec<(Record, Option<u64>)>, StoreError> {
        let Some(info) = self.dnssec_info(apex)? else {
            return Err(StoreError::Conflict(format!("{} is not signed", display(apex))));
        };
        let (zone_id, _) = zone_row(&self.conn, &name::to_lowercase(apex))?
            .ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let zone_max_ttl = max_ttl(&self.conn, zone_id)?;
        let keyring = &info.state.keyring;
        let view = rollover::zone_view(keyring);
        // Before the first CDS goes out (the DNSKEY is still reaching
        // caches), the DS to give the registry is that of the published
        // secure-entry keys that sign the key set.
        let ids: Vec<KeyId> =
            if !view.ds.is_empty() || matches!(keyring.goal, rollover::Goal::Insecure { .. }) {
                view.ds.iter().map(|k| k.id).collect()
            } else {
                view.dnskey
                    .iter()
                    .filter(|k| k.role.is_secure_entry() && view.dnskey_signers.iter().any(|s| s.id == k.id))
                    .map(|k| k.id)
                    .collect()
            };
        let mut out = Vec::new();
        for id in ids {
            if let Some(ki) = info.keys.iter().find(|i| i.record.id == id)
                && let Some(rd) = ds::ds_rdata(&info.apex, &ki.dnskey, ds::SHA256)
            {
                let after = rollover::ds_publish_after(&info.policy, keyring, zone_max_ttl, &ki.record);
                let ds = Record {
                    owner: info.apex.clone(),
                    rtype: code::DS,
                    ttl: info.policy.dnskey_ttl,
                    rdata: rd.into(),
                };
                out.push((ds, after));
            }
        }
        Ok(out)
    }
}

impl Writer<'_> {
    /// Re-signs what expires within the refresh window. Returns `None`
    /// when nothing was due.
    pub fn dnssec_refresh(&mut self, apex: &[u8]) -> Result<Option<Commit>, StoreError> {
        let w = self.begin(apex)?;
        let (id, now) = (w.id, w.now());
        let Some(zs) = load_signing(&w.tx, &w.sealer, id)? else { return Ok(None) };
        let changes = signer::refresh(&w.tx, id, &zs, now)?;
        if changes.is_empty() {
            return Ok(None);
        }
        w.commit_diff(changes).map(Some)
    }
}

/// Removes a zone's keys, signatures, chain and DNSSEC rows; returns the
/// removals.
fn unsign_rows(conn: &Connection, zone_id: i64) -> Result<Vec<Change>, StoreError> {
    let gone = signer::unsign(conn, zone_id)?;
    conn.execute("DELETE FROM dnssec_keys WHERE zone_id = ?1", params![zone_id])?;
    conn.execute("DELETE FROM dnssec_zones WHERE zone_id = ?1", params![zone_id])?;
    Ok(gone.into_iter().map(Change::Remove).collect())
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

/// The name of a denial method.
pub fn denial_name(d: &Denial) -> &'static str {
    match d {
        Denial::Nsec => "NSEC",
        _ => "NSEC3",
    }
}

/// Where a signed zone's chain of trust stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The parent's DS names a key the zone publishes and signs with.
    Secure,
    /// The parent has no DS yet (or has not been asked).
    WaitingForDs,
    /// The parent has DS records, none for this zone's keys: validators
    /// see the zone as bogus.
    DsMismatch,
    /// Going insecure: CDS/CDNSKEY delete are published.
    GoingInsecure,
}

impl Verdict {
    /// The words shown in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Secure => "secure",
            Verdict::WaitingForDs => "waiting for DS",
            Verdict::DsMismatch => "DS mismatch",
            Verdict::GoingInsecure => "going insecure",
        }
    }
}

impl DnssecInfo {
    /// The verdict on the chain of trust, from the last look at the
    /// parent: its DS rdata must match (digest and all) a published
    /// key that signs the DNSKEY RRset.
    pub fn verdict(&self) -> Verdict {
        if matches!(self.state.keyring.goal, rollover::Goal::Insecure { .. }) {
            return Verdict::GoingInsecure;
        }
        if self.state.parent.is_none() || self.state.parent_ds.is_empty() {
            return Verdict::WaitingForDs;
        }
        let view = rollover::zone_view(&self.state.keyring);
        let signing = self
            .keys
            .iter()
            .filter(|k| view.dnskey.iter().any(|v| v.id == k.record.id))
            .filter(|k| view.dnskey_signers.iter().any(|v| v.id == k.record.id));
        let matched = !served_keys(&self.apex, &self.state.parent_ds, signing).is_empty();
        if matched { Verdict::Secure } else { Verdict::DsMismatch }
    }
}

/// The keys among `keys` that some DS rdata of `parent_ds` names, digest
/// and all ([`ds::names_key`]).
pub(crate) fn served_keys<'a>(
    apex: &[u8],
    parent_ds: &[Vec<u8>],
    keys: impl IntoIterator<Item = &'a KeyInfo>,
) -> Vec<KeyId> {
    keys.into_iter()
        .filter(|k| parent_ds.iter().any(|d| ds::names_key(d, apex, &k.dnskey)))
        .map(|k| k.record.id)
        .collect()
}

/// The signatures over one type by one key, summarized: the chain of
/// trust's last link, with its validity windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSummary {
    /// The type signed.
    pub type_covered: u16,
    /// The signing key's tag.
    pub key_tag: u16,
    /// Its algorithm.
    pub algorithm: u8,
    /// How many RRsets of the type it signs.
    pub count: u64,
    /// The earliest inception and expiration among them.
    pub earliest: (u32, u32),
    /// The latest inception and expiration among them.
    pub latest: (u32, u32),
}

impl Store {
    /// The zone's signatures by type and key, read in one pass over the
    /// RRSIG rows (the fields are fixed-offset octets of the rdata).
    pub fn dnssec_signatures(&self, apex: &[u8]) -> Result<Vec<SignatureSummary>, StoreError> {
        let (id, _) = zone_row(&self.conn, &name::to_lowercase(apex))?
            .ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let mut st = self.conn.prepare_cached(
            "SELECT substr(rdata, 1, 2), substr(rdata, 17, 2), substr(rdata, 3, 1), count(*),
                    min(substr(rdata, 13, 4)), min(substr(rdata, 9, 4)),
                    max(substr(rdata, 13, 4)), max(substr(rdata, 9, 4))
             FROM records WHERE zone_id = ?1 AND rtype = 46
             GROUP BY 1, 2, 3 ORDER BY 1, 2",
        )?;
        let be = |b: Vec<u8>| b.iter().fold(0u32, |acc, &x| acc << 8 | u32::from(x));
        let rows = st.query_map(params![id], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, Vec<u8>>(5)?,
                r.get::<_, Vec<u8>>(6)?,
                r.get::<_, Vec<u8>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (t, tag, alg, count, i0, e0, i1, e1) = row?;
            out.push(SignatureSummary {
                type_covered: be(t) as u16,
                key_tag: be(tag) as u16,
                algorithm: be(alg) as u8,
                count: count.max(0) as u64,
                earliest: (be(i0), be(e0)),
                latest: (be(i1), be(e1)),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::ZoneState;

    #[test]
    fn an_unreachable_parent_is_asked_again_only_after_the_check_interval() {
        let planned = ZoneState { query_parent_at: Some(1000), ..ZoneState::default() };
        assert_eq!(planned.parent_due(3600), Some(1000));
        let failed = ZoneState {
            parent_checked_at: Some(1000),
            parent_error: Some("no parent server answered".into()),
            ..planned.clone()
        };
        assert_eq!(failed.parent_due(3600), Some(4600));
        assert_eq!(ZoneState::default().parent_due(3600), None);
    }
}

#[cfg(test)]
#[path = "dnssec_tests.rs"]
mod store_tests;
