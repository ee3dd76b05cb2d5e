//! Signing inside the write transaction.
//!
//! A signed zone's RRSIG, NSEC and NSEC3 records are derived records of
//! kind 3, written in the same transaction as the change
//! they follow and journaled with it, so a reader (the DNS server, a
//! transfer) never sees a changed RRset without its signature.
//!
//! [`sign_all`] signs a zone from scratch with the whole-zone signer of
//! `sixgate_dnssec::sign` and records its names and chain in
//! `dnssec_names` and `dnssec_chain`. [`resign`] then keeps it signed one
//! change at a time: the changed RRsets are re-signed, and the chain
//! links of names that appear, disappear or change their types are
//! rewritten, found by index probes rather than a walk of the zone. The
//! per-name rules are the whole-zone signer's, so both produce the same
//! zone (a test checks exactly that after random changes).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rusqlite::{Connection, OptionalExtension, params};
use sixgate_dns::name;
use sixgate_dns::nsec3;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Facts, Record};
use sixgate_dnssec::KeyPair;
use sixgate_dnssec::denial::{Nsec3Params, nsec_rdata};
use sixgate_dnssec::rrsig::{RrSet, Rrsig};
use sixgate_dnssec::sign::{self, ActiveKey, Signer, Status};

use crate::write::{Kind, rows};
use crate::{StoreError, record_of};

/// A key loaded for signing, and what it signs now.
pub(crate) struct LoadedKey {
    pub(crate) pair: KeyPair,
    pub(crate) tag: u16,
    pub(crate) signs_keys: bool,
    pub(crate) signs_zone: bool,
}

/// What a signed zone is signed with.
pub(crate) struct ZoneSigning {
    pub(crate) apex: Box<[u8]>,
    pub(crate) keys: Vec<LoadedKey>,
    pub(crate) nsec3: Option<Nsec3Params>,
    pub(crate) validity: u32,
    pub(crate) refresh: u32,
    pub(crate) jitter: u32,
    pub(crate) inception_offset: u32,
    pub(crate) threads: usize,
}

impl ZoneSigning {
    fn signer(&self, now: u64) -> Signer<'_> {
        Signer {
            apex: self.apex.clone(),
            keys: self
                .keys
                .iter()
                .map(|k| ActiveKey {
                    key: &k.pair,
                    tag: k.tag,
                    signs_keys: k.signs_keys,
                    signs_zone: k.signs_zone,
                })
                .collect(),
            nsec3: self.nsec3.clone(),
            now,
            inception_offset: self.inception_offset,
            validity: self.validity,
            jitter: self.jitter,
        }
    }

    /// True if a signature by (`tag`, `alg`) over `rtype` is one the
    /// current keys make.
    fn signs(&self, rtype: u16, tag: u16, alg: u8) -> bool {
        let keyset = sign::is_key_rrset(rtype);
        self.keys.iter().any(|k| {
            k.tag == tag
                && k.pair.algorithm().code() == alg
                && if keyset { k.signs_keys } else { k.signs_zone }
        })
    }

    /// The number of keys that sign `rtype`.
    fn signer_count(&self, rtype: u16) -> usize {
        let keyset = sign::is_key_rrset(rtype);
        self.keys.iter().filter(|k| if keyset { k.signs_keys } else { k.signs_zone }).count()
    }
}

fn status_code(s: Status) -> i64 {
    match s {
        Status::Authoritative => 0,
        Status::Delegation => 1,
        Status::EmptyNonTerminal => 2,
        Status::Occluded => 3,
    }
}

const DATA_COLUMNS: &str = "SELECT owner, rtype, ttl, rdata FROM records";

/// Every record of the zone that is signed: all but RRSIG, NSEC, NSEC3.
fn data_records(conn: &Connection, zone_id: i64) -> Result<Vec<Record>, StoreError> {
    let mut st =
        conn.prepare_cached(&format!("{DATA_COLUMNS} WHERE zone_id = ?1 AND rtype NOT IN (46, 47, 50)"))?;
    let rows = st.query_map(params![zone_id], record_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The signed records at one owner (lowercased).
fn data_at(conn: &Connection, zone_id: i64, key: &[u8]) -> Result<Vec<Record>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "{DATA_COLUMNS} WHERE zone_id = ?1 AND owner_key = ?2 AND rtype NOT IN (46, 47, 50)"
    ))?;
    let rows = st.query_map(params![zone_id, key], record_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The signer's records of one type at one owner (lowercased).
fn signer_records(
    conn: &Connection,
    zone_id: i64,
    key: &[u8],
    rtype: u16,
) -> Result<Vec<Record>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "{DATA_COLUMNS} WHERE zone_id = ?1 AND owner_key = ?2 AND rtype = ?3 AND derived = 3"
    ))?;
    let rows = st.query_map(params![zone_id, key, rtype], record_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn insert(conn: &Connection, zone_id: i64, r: &Record) -> Result<(), StoreError> {
    rows::insert(conn, zone_id, r, Kind::Signer)
}

fn delete(conn: &Connection, zone_id: i64, r: &Record) -> Result<(), StoreError> {
    rows::delete(conn, zone_id, r, Kind::Signer).map(|_| ())
}

/// Removes every signer record of a zone and its signing index.
pub(crate) fn unsign(conn: &Connection, zone_id: i64) -> Result<Vec<Record>, StoreError> {
    let mut st = conn.prepare_cached(&format!("{DATA_COLUMNS} WHERE zone_id = ?1 AND derived = 3"))?;
    let gone: Vec<Record> = st.query_map(params![zone_id], record_of)?.collect::<Result<_, _>>()?;
    rows::delete_kind(conn, zone_id, Kind::Signer)?;
    conn.execute("DELETE FROM dnssec_names WHERE zone_id = ?1", params![zone_id])?;
    conn.execute("DELETE FROM dnssec_chain WHERE zone_id = ?1", params![zone_id])?;
    Ok(gone)
}

/// Signs the zone from scratch: drops the old signatures and chain and
/// writes new ones. The apex's key records (DNSKEY, CDS, CDNSKEY,
/// NSEC3PARAM) must already be in place.
pub(crate) fn sign_all(
    conn: &Connection,
    zone_id: i64,
    zs: &ZoneSigning,
    now: u64,
) -> Result<usize, StoreError> {
    rows::delete_signatures_and_chain(conn, zone_id)?;
    conn.execute("DELETE FROM dnssec_names WHERE zone_id = ?1", params![zone_id])?;
    conn.execute("DELETE FROM dnssec_chain WHERE zone_id = ?1", params![zone_id])?;
    let data = data_records(conn, zone_id)?;
    let signed = zs.signer(now).sign_zone(&data, zs.threads).map_err(sign_error)?;
    for r in &signed.records {
        insert(conn, zone_id, r)?;
    }
    let mut ins = conn
        .prepare_cached("INSERT INTO dnssec_names (zone_id, canon, owner, status) VALUES (?1, ?2, ?3, ?4)")?;
    for (owner, status) in &signed.names {
        ins.execute(params![zone_id, name::canonical_key(owner), &owner[..], status_code(*status)])?;
    }
    let mut ins =
        conn.prepare_cached("INSERT INTO dnssec_chain (zone_id, key, owner) VALUES (?1, ?2, ?3)")?;
    for (key, owner) in &signed.chain {
        ins.execute(params![zone_id, key, &owner[..]])?;
    }
    Ok(signed.records.len())
}

/// Signs the whole zone again like [`sign_all`], and returns what that
/// changed among the signer's records (RRSIG, NSEC, NSEC3): every
/// signature or chain record that went, and every one that came, as a
/// journal diff, so that secondaries follow a key event by IXFR. Chain
/// records that stayed the same are in neither list.
pub(crate) fn sign_all_changes(
    conn: &Connection,
    zone_id: i64,
    zs: &ZoneSigning,
    now: u64,
) -> Result<Vec<Change>, StoreError> {
    let signer_rows = |conn: &Connection| -> Result<Vec<Record>, StoreError> {
        let mut st = conn.prepare_cached(&format!(
            "{DATA_COLUMNS} WHERE zone_id = ?1 AND derived = 3 AND rtype IN (46, 47, 50)"
        ))?;
        let rows = st.query_map(params![zone_id], record_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let key = |r: &Record| (name::to_lowercase(&r.owner), r.rtype, r.ttl, r.rdata.clone());
    let before = signer_rows(conn)?;
    sign_all(conn, zone_id, zs, now)?;
    let after = signer_rows(conn)?;
    let mut old: std::collections::HashMap<_, Record> = before.into_iter().map(|r| (key(&r), r)).collect();
    let mut changes = Vec::new();
    for r in after {
        if old.remove(&key(&r)).is_none() {
            changes.push(Change::Add(r));
        }
    }
    // Removals first, as a client applies them (RFC 1995 §4).
    let mut out: Vec<Change> = old.into_values().map(Change::Remove).collect();
    out.append(&mut changes);
    Ok(out)
}

pub(crate) fn sign_error(e: sign::SignError) -> StoreError {
    StoreError::Signing(e.to_string())
}

/// The incremental signer's view of one zone inside a transaction.
struct Incremental<'a> {
    conn: &'a Connection,
    zone_id: i64,
    zs: &'a ZoneSigning,
    signer: Signer<'a>,
    apex_key: Box<[u8]>,
    denial_ttl: u32,
    out: Vec<Change>,
    scratch: Vec<u8>,
}

/// Re-signs after `changed` (owner, type) pairs: the RRsets themselves,
/// and the chain around names whose existence or types changed. Returns
/// the signer's changes, already written. (Owner, RRSIG) or (owner,
/// NSEC/NSEC3) pairs force a fresh signature over that chain record, as
/// refreshing needs.
pub(crate) fn resign(
    conn: &Connection,
    zone_id: i64,
    zs: &ZoneSigning,
    changed: &[OwnerType],
    now: u64,
) -> Result<Vec<Change>, StoreError> {
    let apex_key = name::to_lowercase(&zs.apex);
    let soa = data_at(conn, zone_id, &apex_key)?;
    let denial_ttl =
        sign::denial_ttl(&soa, &apex_key).ok_or(StoreError::Signing("the zone has no SOA".into()))?;
    let mut inc = Incremental {
        conn,
        zone_id,
        zs,
        signer: zs.signer(now),
        apex_key,
        denial_ttl,
        out: Vec::new(),
        scratch: Vec::with_capacity(1024),
    };
    inc.run(changed)?;
    Ok(inc.out)
}

impl Incremental<'_> {
    fn run(&mut self, changed: &[OwnerType]) -> Result<(), StoreError> {
        let nsec3 = self.zs.nsec3.is_some();
        let mut types_changed: HashSet<(Box<[u8]>, u16)> = HashSet::new();
        let mut touched: BTreeMap<Vec<u8>, Box<[u8]>> = BTreeMap::new();
        let mut dirty: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut forced: HashSet<Vec<u8>> = HashSet::new();
        for (owner, rtype) in changed {
            let key = name::to_lowercase(owner);
            if matches!(*rtype, code::NSEC | code::NSEC3) {
                // A chain record to re-sign: find its chain key.
                let ck = match (*rtype, nsec3::owner_hash(&key)) {
                    (code::NSEC3, Some(h)) => h.to_vec(),
                    _ => name::canonical_key(&key),
                };
                forced.insert(ck.clone());
                dirty.insert(ck);
                continue;
            }
            if (*rtype == code::NS && key != self.apex_key) || *rtype == code::DNAME {
                // Everything below a cut changes status with it: the names
                // with data, and the empty non-terminals between them and
                // the cut, which enter or leave the NSEC3 chain.
                for d in self.descendants(&key)? {
                    let d = name::to_lowercase(&d);
                    if nsec3 {
                        let mut p = name::parent(&d);
                        while let Some(a) = p.filter(|a| a.len() > key.len()) {
                            touched.insert(name::canonical_key(a), a.into());
                            p = name::parent(a);
                        }
                    }
                    touched.insert(name::canonical_key(&d), d);
                }
            }
            types_changed.insert((key.clone(), *rtype));
            touched.insert(name::canonical_key(&key), key.clone());
            if nsec3 {
                let mut p = name::parent(&key);
                while let Some(a) = p.filter(|a| a.len() > self.apex_key.len()) {
                    touched.insert(name::canonical_key(a), a.into());
                    p = name::parent(a);
                }
            }
        }
        // Deepest first: a name's status as an empty non-terminal depends
        // on its descendants' rows, which are then already current.
        for (canon, key) in touched.iter().rev() {
            self.name(canon, key, &types_changed, &mut dirty)?;
        }
        for ck in &dirty {
            self.denial(ck, forced.contains(ck))?;
        }
        Ok(())
    }

    /// Names with data strictly below `key`.
    fn descendants(&self, key: &[u8]) -> Result<Vec<Box<[u8]>>, StoreError> {
        let canon = name::canonical_key(key);
        let Some(end) = name::canonical_key_end(&canon) else {
            return Ok(Vec::new());
        };
        let mut st = self.conn.prepare_cached(
            "SELECT owner FROM dnssec_names WHERE zone_id = ?1 AND canon > ?2 AND canon < ?3",
        )?;
        let rows =
            st.query_map(params![self.zone_id, canon, end], |r| Ok(r.get_ref(0)?.as_blob()?.into()))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// True if some name with data below `key` is not occluded.
    fn has_live_descendant(&self, canon: &[u8]) -> Result<bool, StoreError> {
        let Some(end) = name::canonical_key_end(canon) else {
            return Ok(false);
        };
        Ok(self.conn.prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM dnssec_names WHERE zone_id = ?1 AND canon > ?2 AND canon < ?3 AND status != 3)",
        )?
        .query_row(params![self.zone_id, canon, end], |r| r.get(0))?)
    }

    /// What the name `key` inherits from its ancestors up to the apex
    /// (below a delegation, below a DNAME), by the zone snapshot's rules
    /// ([`Facts`]), from an index probe per ancestor.
    fn inherited(&self, key: &[u8]) -> Result<Facts, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT rtype FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND rtype IN (?3, ?4)",
        )?;
        let mut f = Facts::default();
        let mut p = name::parent(key);
        while let Some(a) = p.filter(|a| a.len() >= self.apex_key.len()) {
            let types: Vec<u16> = st
                .query_map(params![self.zone_id, a, code::NS, code::DNAME], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            f = f.union(Facts::inherited(Facts::own(a == &self.apex_key[..], types)));
            p = name::parent(a);
        }
        Ok(f)
    }

    /// The status of a name from its data, or `None` if it is not a name
    /// of the zone (no data and no live descendants, or an occluded
    /// empty name).
    fn status(&self, key: &[u8], canon: &[u8], data: &[Record]) -> Result<Option<Status>, StoreError> {
        let is_apex = key == &self.apex_key[..];
        if data.is_empty() {
            let ent = self.zs.nsec3.is_some()
                && !is_apex
                && self.has_live_descendant(canon)?
                && !self.inherited(key)?.occluded();
            return Ok(ent.then_some(Status::EmptyNonTerminal));
        }
        let facts = Facts::own(is_apex, data.iter().map(|r| r.rtype)).union(self.inherited(key)?);
        Ok(Some(Status::of(facts, false)))
    }

    fn chain_key(&self, key: &[u8], canon: &[u8]) -> Vec<u8> {
        match &self.zs.nsec3 {
            Some(p) => p.hash(key).to_vec(),
            None => canon.to_vec(),
        }
    }

    /// Brings one touched name up to date: its index row, its chain
    /// membership and its RRSIGs.
    fn name(
        &mut self,
        canon: &[u8],
        key: &[u8],
        types_changed: &HashSet<(Box<[u8]>, u16)>,
        dirty: &mut BTreeSet<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let nsec3 = self.zs.nsec3.is_some();
        let data = self.data(key)?;
        let status = self.status(key, canon, &data)?;
        let owner: Box<[u8]> = data.first().map_or_else(|| key.into(), |r| r.owner.clone());
        match status {
            Some(s) if s != Status::EmptyNonTerminal => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO dnssec_names (zone_id, canon, owner, status) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (zone_id, canon) DO UPDATE SET owner = excluded.owner, status = excluded.status",
                    )?
                    .execute(params![self.zone_id, canon, &owner[..], status_code(s)])?;
            }
            _ => {
                self.conn
                    .prepare_cached("DELETE FROM dnssec_names WHERE zone_id = ?1 AND canon = ?2")?
                    .execute(params![self.zone_id, canon])?;
            }
        }
        let member = status.is_some_and(|s| sign::in_chain(s, nsec3));
        let ck = self.chain_key(key, canon);
        let was = self.chain_owner(&ck)?.is_some();
        if member && !was {
            self.conn
                .prepare_cached("INSERT INTO dnssec_chain (zone_id, key, owner) VALUES (?1, ?2, ?3)")?
                .execute(params![self.zone_id, &ck, &owner[..]])?;
            if let Some(p) = self.neighbour(&ck, false)? {
                dirty.insert(p);
            }
        } else if !member && was {
            self.conn
                .prepare_cached("DELETE FROM dnssec_chain WHERE zone_id = ?1 AND key = ?2")?
                .execute(params![self.zone_id, &ck])?;
            self.drop_denial(key, &ck)?;
            dirty.remove(&ck);
            if let Some(p) = self.neighbour(&ck, false)? {
                dirty.insert(p);
            }
        }
        if member {
            dirty.insert(ck);
        }
        // RRSIGs over the data at this name.
        let types: Vec<u16> = {
            let mut t: Vec<u16> = data.iter().map(|r| r.rtype).collect();
            t.dedup();
            t
        };
        let want = status.map(|s| sign::signed_types(s, &types)).unwrap_or_default();
        let sigs = signer_records(self.conn, self.zone_id, key, code::RRSIG)?;
        let mut by_type: BTreeMap<u16, Vec<(Record, Rrsig)>> = BTreeMap::new();
        for r in sigs {
            if let Ok(s) = Rrsig::decode(&r.rdata) {
                by_type.entry(s.type_covered).or_default().push((r, s));
            }
        }
        for (t, sigs) in &by_type {
            // NSEC signatures belong to the chain step.
            if *t != code::NSEC && !want.contains(t) {
                for (r, _) in sigs {
                    self.remove(r.clone())?;
                }
            }
        }
        for t in want {
            let sigs = by_type.remove(&t).unwrap_or_default();
            let current = !types_changed.contains(&(key.into(), t))
                && sigs.len() == self.zs.signer_count(t)
                && sigs.iter().all(|(_, s)| self.zs.signs(t, s.key_tag, s.algorithm));
            if current {
                continue;
            }
            for (r, _) in sigs {
                self.remove(r)?;
            }
            let rdatas: Vec<&[u8]> = data.iter().filter(|r| r.rtype == t).map(|r| &r.rdata[..]).collect();
            let ttl = data.iter().find(|r| r.rtype == t).map_or(0, |r| r.ttl);
            let set = RrSet { owner: &owner, rtype: t, ttl, rdatas: &rdatas };
            let new = self.signer.sign_rrset(&set, &mut self.scratch).map_err(sign_error)?;
            for r in new {
                self.add(r)?;
            }
        }
        Ok(())
    }

    fn data(&self, key: &[u8]) -> Result<Vec<Record>, StoreError> {
        let mut d = data_at(self.conn, self.zone_id, key)?;
        d.sort_by_key(|r| r.rtype);
        Ok(d)
    }

    fn chain_owner(&self, ck: &[u8]) -> Result<Option<Box<[u8]>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT owner FROM dnssec_chain WHERE zone_id = ?1 AND key = ?2")?
            .query_row(params![self.zone_id, ck], |r| Ok(r.get_ref(0)?.as_blob()?.into()))
            .optional()?)
    }

    /// The chain key after (`next`) or before `ck`, wrapping around.
    fn neighbour(&self, ck: &[u8], next: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let (near, wrap) = if next {
            (
                "SELECT key FROM dnssec_chain WHERE zone_id = ?1 AND key > ?2 ORDER BY key LIMIT 1",
                "SELECT key FROM dnssec_chain WHERE zone_id = ?1 ORDER BY key LIMIT 1",
            )
        } else {
            (
                "SELECT key FROM dnssec_chain WHERE zone_id = ?1 AND key < ?2 ORDER BY key DESC LIMIT 1",
                "SELECT key FROM dnssec_chain WHERE zone_id = ?1 ORDER BY key DESC LIMIT 1",
            )
        };
        if let Some(k) =
            self.conn.prepare_cached(near)?.query_row(params![self.zone_id, ck], |r| r.get(0)).optional()?
        {
            return Ok(Some(k));
        }
        Ok(self.conn.prepare_cached(wrap)?.query_row(params![self.zone_id], |r| r.get(0)).optional()?)
    }

    /// The owner and type of the denial record of chain key `ck`.
    fn denial_owner(&self, owner: &[u8], ck: &[u8]) -> (Box<[u8]>, u16) {
        match <[u8; nsec3::HASH_LEN]>::try_from(ck).ok().filter(|_| self.zs.nsec3.is_some()) {
            Some(h) => (nsec3::owner_name(&h, &self.apex_key), code::NSEC3),
            None => (owner.into(), code::NSEC),
        }
    }

    /// Removes the denial record (and its RRSIGs) of a name leaving the chain.
    fn drop_denial(&mut self, key: &[u8], ck: &[u8]) -> Result<(), StoreError> {
        let (owner, rtype) = self.denial_owner(key, ck);
        let okey = name::to_lowercase(&owner);
        for r in signer_records(self.conn, self.zone_id, &okey, rtype)? {
            self.remove(r)?;
        }
        for r in signer_records(self.conn, self.zone_id, &okey, code::RRSIG)? {
            if Rrsig::decode(&r.rdata).is_ok_and(|s| s.type_covered == rtype) {
                self.remove(r)?;
            }
        }
        Ok(())
    }

    /// Rewrites the denial record of chain member `ck` if its next name
    /// or types changed (or `force`), and signs it.
    fn denial(&mut self, ck: &[u8], force: bool) -> Result<(), StoreError> {
        let Some(owner) = self.chain_owner(ck)? else {
            return Ok(());
        };
        let key = name::to_lowercase(&owner);
        let canon = name::canonical_key(&key);
        let data = self.data(&key)?;
        // A member that is no longer a name of the chain leaves it, with
        // its denial record, rather than keeping a record nothing re-signs.
        let status = self.status(&key, &canon, &data)?;
        let Some(status) = status.filter(|s| sign::in_chain(*s, self.zs.nsec3.is_some())) else {
            self.conn
                .prepare_cached("DELETE FROM dnssec_chain WHERE zone_id = ?1 AND key = ?2")?
                .execute(params![self.zone_id, ck])?;
            self.drop_denial(&key, ck)?;
            if let Some(p) = self.neighbour(ck, false)? {
                self.denial(&p, false)?;
            }
            return Ok(());
        };
        let types: Vec<u16> = data.iter().map(|r| r.rtype).collect();
        let listed = sign::denial_types(status, &types, self.zs.nsec3.is_some());
        let next = self.neighbour(ck, true)?.unwrap_or_else(|| ck.to_vec());
        let rdata: Box<[u8]> = match &self.zs.nsec3 {
            Some(p) => {
                let h = <[u8; nsec3::HASH_LEN]>::try_from(&next[..]).map_err(|_| StoreError::Corrupt(0))?;
                p.nsec3_rdata(&h, &listed).into()
            }
            None => {
                let next_owner = self.chain_owner(&next)?.unwrap_or_else(|| self.zs.apex.clone());
                nsec_rdata(&next_owner, &listed).into()
            }
        };
        let (downer, dtype) = self.denial_owner(&owner, ck);
        let dkey = name::to_lowercase(&downer);
        let existing = signer_records(self.conn, self.zone_id, &dkey, dtype)?;
        let same =
            existing.len() == 1 && existing.iter().all(|r| r.rdata == rdata && r.ttl == self.denial_ttl);
        if same && !force {
            return Ok(());
        }
        self.drop_denial(&owner, ck)?;
        let rec = Record { owner: downer, rtype: dtype, ttl: self.denial_ttl, rdata };
        let set = RrSet { owner: &rec.owner, rtype: dtype, ttl: rec.ttl, rdatas: &[&rec.rdata] };
        let sigs = self.signer.sign_rrset(&set, &mut self.scratch).map_err(sign_error)?;
        self.add(rec)?;
        for s in sigs {
            self.add(s)?;
        }
        Ok(())
    }

    fn add(&mut self, r: Record) -> Result<(), StoreError> {
        insert(self.conn, self.zone_id, &r)?;
        self.out.push(Change::Add(r));
        Ok(())
    }

    fn remove(&mut self, r: Record) -> Result<(), StoreError> {
        delete(self.conn, self.zone_id, &r)?;
        self.out.push(Change::Remove(r));
        Ok(())
    }
}

/// Re-signs what expires within the refresh window at `now`; returns the
/// changes (empty when nothing was due).
pub(crate) fn refresh(
    conn: &Connection,
    zone_id: i64,
    zs: &ZoneSigning,
    now: u64,
) -> Result<Vec<Change>, StoreError> {
    let due = expiring(conn, zone_id, now + u64::from(zs.refresh))?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    resign(conn, zone_id, zs, &due, now)
}

/// An owner name and a type.
pub(crate) type OwnerType = (Box<[u8]>, u16);

/// The (owner, type) pairs whose signatures expire before `before`
/// (seconds since the epoch): what a refresh re-signs. The covered type
/// is reported, or NSEC/NSEC3 for chain records.
pub(crate) fn expiring(conn: &Connection, zone_id: i64, before: u64) -> Result<Vec<OwnerType>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT owner, rdata FROM records WHERE zone_id = ?1 AND rtype = 46 AND substr(rdata, 9, 4) < ?2",
    )?;
    let limit = (before.min(u64::from(u32::MAX)) as u32).to_be_bytes();
    let rows = st.query_map(params![zone_id, &limit[..]], |r| {
        Ok((Box::<[u8]>::from(r.get_ref(0)?.as_blob()?), r.get_ref(1)?.as_blob()?.to_vec()))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (owner, rdata) = row?;
        if let Ok(s) = Rrsig::decode(&rdata) {
            out.push((owner, s.type_covered));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
#[path = "signer_tests.rs"]
mod tests;
