//! Derived records: the A and AAAA records an ANAME's target resolves to.
//!
//! They live in the `records` table beside the zone's own (source)
//! records, marked `derived`, so the publisher, zone transfers and
//! `export --as-served` see them like any record, while the source view
//! (plain export, the API's RRset listings, the zone rules) does not. They
//! are written through the same kind of transaction as any change: serial
//! bump and journaled diff. A derived record exists only while its owner
//! has an ANAME; removing the ANAME removes them in the same transaction.
//!
//! The resolution state of each ANAME (addresses, last success, last
//! error, next refresh) is kept in `aname_state`, outside the journal: it
//! changes on every refresh and is not zone data.

use rusqlite::{Connection, params};
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record};

use crate::write::{Kind, rows};
use crate::{Commit, Store, StoreError, Writer, record_of};

/// An ANAME record as stored, with its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aname {
    /// The zone's apex, wire form, lowercased.
    pub apex: Box<[u8]>,
    /// The zone's account.
    pub account_id: i64,
    /// The owner, wire form, lowercased.
    pub owner: Box<[u8]>,
    /// The target name, wire form.
    pub target: Box<[u8]>,
    /// The ANAME's TTL.
    pub ttl: u32,
}

/// What is known about one ANAME's resolution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnameState {
    /// The zone's apex, wire form, lowercased.
    pub apex: Box<[u8]>,
    /// The owner, wire form, lowercased.
    pub owner: Box<[u8]>,
    /// The target, wire form.
    pub target: Box<[u8]>,
    /// The addresses served now, sorted, as text.
    pub addresses: Vec<String>,
    /// When resolution last succeeded (unix seconds).
    pub last_success: Option<i64>,
    /// Why the last resolution failed, if it did.
    pub last_error: Option<String>,
    /// When the next resolution is due (unix seconds).
    pub next_refresh: Option<i64>,
}

fn derived_at(conn: &Connection, zone_id: i64, owner_key: &[u8]) -> Result<Vec<Record>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND derived = 1",
    )?;
    let rows = st.query_map(params![zone_id, owner_key], record_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The (type, rdata) pairs of a set of records, sorted: what "the address
/// set changed" compares.
fn address_set(records: &[Record]) -> Vec<(u16, &[u8])> {
    let mut v: Vec<(u16, &[u8])> = records.iter().map(|r| (r.rtype, &r.rdata[..])).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Every ANAME of every zone. The type is a literal so that SQLite uses the
/// partial index `records_aname`.
const ANAMES_SQL: &str =
    "SELECT z.name, z.account_id, r.owner_key, r.rdata, r.ttl FROM records r JOIN zones z ON z.id = r.zone_id
     WHERE r.rtype = 65401 AND r.derived = 0 ORDER BY z.name, r.owner_key";

impl Store {
    /// Every ANAME in every zone.
    pub fn anames(&self) -> Result<Vec<Aname>, StoreError> {
        let mut st = self.conn.prepare(ANAMES_SQL)?;
        let rows = st.query_map([], |r| {
            Ok(Aname {
                apex: r.get::<_, Vec<u8>>(0)?.into_boxed_slice(),
                account_id: r.get(1)?,
                owner: r.get::<_, Vec<u8>>(2)?.into_boxed_slice(),
                target: r.get::<_, Vec<u8>>(3)?.into_boxed_slice(),
                ttl: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of ANAMEs in a zone.
    pub fn aname_count(&self, apex: &[u8]) -> Result<usize, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM records r JOIN zones z ON z.id = r.zone_id
             WHERE z.name = ?1 AND r.rtype = ?2 AND r.derived = 0",
            params![&name::to_lowercase(apex)[..], code::ANAME],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }
}

impl Writer<'_> {
    /// Puts the derived address records of several owners of one zone in
    /// place, in one transaction (one serial, one journal entry), but only
    /// where the address set really changed: a TTL alone does not count, so
    /// targets with short TTLs do not churn serials. Owners that no longer
    /// have an ANAME are skipped. `None` when nothing changed.
    pub fn set_derived(
        &mut self,
        apex: &[u8],
        sets: &[(Box<[u8]>, Vec<Record>)],
    ) -> Result<Option<Commit>, StoreError> {
        let w = self.begin(apex)?;
        let mut effective = Vec::new();
        for (owner, new) in sets {
            let owner_key = name::to_lowercase(owner);
            let has_aname: bool = w.tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND rtype = ?3 AND derived = 0)",
                params![w.id, &owner_key[..], code::ANAME],
                |r| r.get(0),
            )?;
            if !has_aname {
                continue;
            }
            if new.iter().any(|r| {
                !(r.rtype == code::A || r.rtype == code::AAAA) || name::to_lowercase(&r.owner) != owner_key
            }) {
                return Err(StoreError::BadInput(
                    "derived records must be A or AAAA at the ANAME's owner".into(),
                ));
            }
            let old = derived_at(&w.tx, w.id, &owner_key)?;
            if address_set(&old) == address_set(new) {
                continue;
            }
            rows::delete_at(&w.tx, w.id, &owner_key, Kind::Aname)?;
            let mut seen = Vec::new();
            for r in new {
                if seen.contains(&(r.rtype, &r.rdata)) {
                    continue;
                }
                seen.push((r.rtype, &r.rdata));
                rows::insert(&w.tx, w.id, r, Kind::Aname)?;
            }
            effective.extend(old.into_iter().map(Change::Remove));
            effective.extend(new.iter().cloned().map(Change::Add));
        }
        if effective.is_empty() {
            return Ok(None);
        }
        w.commit_diff(effective).map(Some)
    }
}

impl Store {
    /// Every ANAME (of one zone, or all) with its resolution state; a state
    /// not saved yet is empty.
    pub fn aname_status(&self, apex: Option<&[u8]>) -> Result<Vec<(Aname, AnameState)>, StoreError> {
        let key = apex.map(name::to_lowercase);
        let states = self.aname_states(key.as_deref())?;
        Ok(self
            .anames()?
            .into_iter()
            .filter(|a| key.as_deref().is_none_or(|k| a.apex[..] == *k))
            .map(|a| {
                let st = states
                    .iter()
                    .find(|s| s.apex == a.apex && s.owner == a.owner && s.target == a.target)
                    .cloned()
                    .unwrap_or_else(|| AnameState {
                        apex: a.apex.clone(),
                        owner: a.owner.clone(),
                        target: a.target.clone(),
                        ..Default::default()
                    });
                (a, st)
            })
            .collect())
    }

    /// Saved resolution states, of one zone or all.
    pub fn aname_states(&self, apex: Option<&[u8]>) -> Result<Vec<AnameState>, StoreError> {
        let key = apex.map(name::to_lowercase);
        let mut st = self.conn.prepare(
            "SELECT zone_name, owner, target, addresses, last_success, last_error, next_refresh FROM aname_state
             WHERE ?1 IS NULL OR zone_name = ?1 ORDER BY zone_name, owner",
        )?;
        let rows = st.query_map(params![key.as_deref()], |r| {
            let addrs: String = r.get(3)?;
            Ok(AnameState {
                apex: r.get::<_, Vec<u8>>(0)?.into_boxed_slice(),
                owner: r.get::<_, Vec<u8>>(1)?.into_boxed_slice(),
                target: r.get::<_, Vec<u8>>(2)?.into_boxed_slice(),
                addresses: addrs.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect(),
                last_success: r.get(4)?,
                last_error: r.get(5)?,
                next_refresh: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves resolution states, replacing older ones, and forgets states
    /// of ANAMEs that no longer exist.
    pub fn save_aname_states(&mut self, states: &[AnameState]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for s in states {
            tx.execute(
                "INSERT INTO aname_state (zone_name, owner, target, addresses, last_success, last_error, next_refresh)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(zone_name, owner) DO UPDATE SET target = excluded.target, addresses = excluded.addresses,
                   last_success = excluded.last_success, last_error = excluded.last_error, next_refresh = excluded.next_refresh",
                params![
                    &s.apex[..],
                    &s.owner[..],
                    &s.target[..],
                    s.addresses.join(","),
                    s.last_success,
                    s.last_error,
                    s.next_refresh
                ],
            )?;
        }
        tx.execute(
            "DELETE FROM aname_state WHERE NOT EXISTS (SELECT 1 FROM records r JOIN zones z ON z.id = r.zone_id
               WHERE z.name = aname_state.zone_name AND r.owner_key = aname_state.owner AND r.rtype = ?1 AND r.derived = 0)",
            params![code::ANAME],
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Actor;
    use sixgate_dns::zonefile;

    use super::*;
    use crate::{JournalKind, SerialScheme};

    /// Regression: the orphan check of a one-owner write read every record
    /// of the zone (a 200k-name signed zone: 40 ms a change).
    #[test]
    fn orphans_at_one_owner_are_found_by_index_not_by_zone_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN SELECT owner FROM records WHERE {}", rows::orphan_at_sql()))
            .unwrap()
            .query_map(params![1, &b"\x01x\x00"[..], code::ANAME], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let reads: Vec<&String> =
            plan.iter().filter(|s| s.starts_with("SEARCH") || s.starts_with("SCAN")).collect();
        assert!(!reads.is_empty(), "{plan:?}");
        for step in reads {
            assert!(step.starts_with("SEARCH") && step.contains("owner_key=?"), "{plan:?}");
        }
    }

    fn apex() -> Box<[u8]> {
        name::from_text("example.com.", None).unwrap()
    }

    fn recs(text: &str) -> Vec<Record> {
        zonefile::parse(text, &apex()).unwrap()
    }

    #[test]
    fn derived_addresses_follow_their_aname_and_stay_out_of_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.set_serial_scheme(SerialScheme::Increment).unwrap();
        s.by(Actor::Task("test"))
            .replace_zone(
                &apex(),
                recs("@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns.x.\n@ 300 ANAME host.example.net.\n"),
            )
            .unwrap();
        let addrs = recs("@ 60 A 192.0.2.1\n@ 60 AAAA 2001:db8::1\n");
        let c = s.by(Actor::Task("test")).set_derived(&apex(), &[(apex(), addrs.clone())]).unwrap().unwrap();
        assert_eq!(c.serial, 2);
        // The same set again (another TTL): nothing is written.
        let ttl_only: Vec<Record> = addrs.iter().map(|r| Record { ttl: 30, ..r.clone() }).collect();
        assert_eq!(s.by(Actor::Task("test")).set_derived(&apex(), &[(apex(), ttl_only)]).unwrap(), None);
        // Served (snapshot) has them; the source view does not.
        let (_, all) = s.zone_snapshot(&apex()).unwrap().unwrap();
        assert_eq!(all.records.len(), 5);
        assert_eq!(s.records(&apex()).unwrap().len(), 3);
        assert!(s.rrset(&apex(), &apex(), code::A).unwrap().is_empty());
        // An explicit A beside the ANAME is refused.
        let a = recs("@ 60 A 192.0.2.9\n");
        assert!(
            s.by(Actor::Task("test"))
                .apply(&apex(), &[Change::Add(a[0].clone())])
                .unwrap_err()
                .to_string()
                .contains("ANAME")
        );
        // Removing the ANAME removes the derived records in the same diff.
        let aname = s.rrset(&apex(), &apex(), code::ANAME).unwrap();
        let c = s.by(Actor::Task("test")).apply(&apex(), &[Change::Remove(aname[0].clone())]).unwrap();
        let (_, all) = s.zone_snapshot(&apex()).unwrap().unwrap();
        assert_eq!(all.records.len(), 2);
        let j = s.journal_since(c.journal_id - 1, 10).unwrap();
        let JournalKind::Diff(ch) = &j[0].kind else { panic!("diff expected") };
        assert_eq!(
            ch.iter()
                .filter(|c| matches!(c, Change::Remove(r) if r.rtype == code::A || r.rtype == code::AAAA))
                .count(),
            2
        );
        // Without an ANAME, derived records are not written at all.
        assert_eq!(s.by(Actor::Task("test")).set_derived(&apex(), &[(apex(), addrs)]).unwrap(), None);
    }

    /// Every ANAME is listed from the partial index `records_aname`, never
    /// by reading the whole records table. Every step of the plan is
    /// checked: the zones table may be scanned (it has a row per zone), the
    /// records table only through the index.
    #[test]
    fn listing_anames_uses_the_partial_index() {
        assert_eq!(code::ANAME, 65401, "the index and the query name the type literally");
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let plan: Vec<String> = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {ANAMES_SQL}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let records: Vec<&String> =
            plan.iter().filter(|step| step.contains(" r ") || step.ends_with(" r")).collect();
        assert!(!records.is_empty(), "{plan:?}");
        for step in records {
            assert!(step.contains("USING INDEX records_aname"), "records read without the index: {plan:?}");
        }
    }

    #[test]
    fn reimport_keeps_derived_records_of_anames_that_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let zone = "@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns.x.\n@ 300 ANAME host.example.net.\nw 300 ANAME h.example.net.\n";
        s.by(Actor::Task("test")).replace_zone(&apex(), recs(zone)).unwrap();
        let w = name::from_text("w.example.com.", None).unwrap();
        s.by(Actor::Task("test"))
            .set_derived(&apex(), &[(apex(), recs("@ 60 A 192.0.2.1\n")), (w, recs("w 60 A 192.0.2.2\n"))])
            .unwrap();
        s.by(Actor::Task("test"))
            .replace_zone(
                &apex(),
                recs("@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns.x.\n@ 300 ANAME host.example.net.\n"),
            )
            .unwrap();
        let (_, all) = s.zone_snapshot(&apex()).unwrap().unwrap();
        let a: Vec<_> = all.records.iter().filter(|r| r.rtype == code::A).collect();
        assert_eq!(a.len(), 1, "the apex keeps its address, w's goes with its ANAME");
        let st = AnameState {
            apex: apex(),
            owner: apex(),
            target: apex(),
            addresses: vec!["192.0.2.1".into()],
            ..Default::default()
        };
        s.save_aname_states(std::slice::from_ref(&st)).unwrap();
        assert_eq!(s.aname_states(None).unwrap(), vec![st]);
        assert_eq!(s.anames().unwrap().len(), 1);
        assert_eq!(s.aname_count(&apex()).unwrap(), 1);
    }
}
