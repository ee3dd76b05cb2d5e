//! Secondaries and transfer keys: the servers that follow this primary
//! by AXFR/IXFR after a NOTIFY (RFC 5936, RFC 1995, RFC 1996), and the
//! TSIG keys (RFC 8945) they sign their transfer requests with.
//!
//! A secondary is an `ADDR:PORT` that is sent NOTIFY and may transfer
//! its zones: every zone, the zones named for it, and the catalog zone
//! (RFC 9432) when it follows the catalog. Its transfers must come from
//! its address and, when it has a key, be signed with that key.
//!
//! Transfer keys live apart from the UPDATE keys (`tsig_keys`), which are
//! bound to one zone and allow writes: a transfer key only reads, and
//! one key serves a secondary for all its zones. A key name names one
//! key across both tables, so a signed message is never ambiguous.

use std::net::SocketAddr;

use rusqlite::{OptionalExtension, params};

use crate::sealed::{Row, Sealer};
use crate::{LimitError, Store, StoreError, display, now};
use sixgate_dns::name;
use sixgate_dns::tsig::Algorithm;

/// Most secondaries one primary notifies: each change costs one NOTIFY
/// and, soon after, one transfer per secondary.
pub const MAX_SECONDARIES: u64 = 64;
/// Most zones named for one secondary (`--zone`); more is a catalog's job.
pub const MAX_SECONDARY_ZONES: usize = 10_000;

/// A TSIG key that signs zone transfers.
#[derive(Clone, PartialEq, Eq)]
pub struct TransferKey {
    /// The key's name, wire form, lowercased.
    pub name: Box<[u8]>,
    /// `hmac-sha256`, `hmac-sha512`, ...
    pub algorithm: String,
    /// The shared secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TransferKey {
    // The secret stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferKey")
            .field("name", &display(&self.name))
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A secondary as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secondary {
    /// Where NOTIFY goes and transfers come from.
    pub address: SocketAddr,
    /// The key its transfers must be signed with, if any.
    pub key: Option<TransferKey>,
    /// Whether it follows the catalog zone (and with it every zone).
    pub catalog: bool,
    /// The zones named for it (wire form, lowercased, sorted). Empty with
    /// `catalog` false means every zone.
    pub zones: Vec<Box<[u8]>>,
}

impl Secondary {
    /// Does it carry the zone `apex` (wire form, any case)? The catalog
    /// zone itself is the caller's to add for catalog secondaries.
    pub fn carries(&self, apex: &[u8]) -> bool {
        if self.catalog || self.zones.is_empty() {
            return true;
        }
        let key = name::to_lowercase(apex);
        self.zones.binary_search_by(|z| z[..].cmp(&key[..])).is_ok()
    }
}

/// What the catalog zone lists now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogMembers {
    /// The catalog zone's serial: it moves whenever the list does, and
    /// whenever a member's group does.
    pub serial: u32,
    /// The served zones, by name.
    pub members: Vec<CatalogMember>,
}

/// One zone the catalog zone lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogMember {
    /// The apex, wire form, original case.
    pub apex: Box<[u8]>,
    /// Its member id, unique to this incarnation of the zone.
    pub id: u64,
    /// Its group property (RFC 9432 §4.4.2): the name of the account the
    /// zone belongs to (`operator` for the operator's own), so that a
    /// secondary can give an account's zones a configuration of their
    /// own. An account name is 1 to 64 letters, digits, `-`, `_` or `.`
    /// (tenancy.rs), always a valid TXT character-string.
    pub group: String,
}

impl CatalogMember {
    /// As [`sixgate_dns::catzone`] takes it.
    pub fn as_member(&self) -> sixgate_dns::catzone::Member<'_> {
        sixgate_dns::catzone::Member { apex: &self.apex, id: self.id, group: Some(self.group.as_bytes()) }
    }
}

impl Store {
    /// The zones the catalog zone lists: every served zone (a customer's
    /// unverified zone is not served, so not listed, unless the server
    /// serves unverified zones), each with its member id and its
    /// account's name as its group.
    pub fn catalog_members(&self) -> Result<CatalogMembers, StoreError> {
        let serial: i64 =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'catalog_serial'", [], |r| r.get(0))?;
        let mut zones = crate::verification::served_zones(&self.conn, None, self.serves_unverified()?)?;
        zones.sort_by_cached_key(|z| name::to_lowercase(&z.apex));
        // One pass over the accounts' zones rather than a lookup per
        // member: a catalog may list a million zones.
        let groups: std::collections::HashMap<i64, String> = {
            let mut st = self
                .conn
                .prepare_cached("SELECT z.id, a.name FROM zones z JOIN accounts a ON a.id = z.account_id")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let members = zones
            .into_iter()
            .map(|z| {
                // zones.account_id references accounts: a zone without
                // one is corruption, reported rather than listed ungrouped.
                let group = groups.get(&z.id).cloned().ok_or_else(|| {
                    StoreError::BadInput(format!("zone {} has no account", display(&z.apex)))
                })?;
                Ok(CatalogMember { apex: z.apex.into_boxed_slice(), id: z.member_id as u64, group })
            })
            .collect::<Result<_, StoreError>>()?;
        // Serial arithmetic (RFC 1982) wraps: the low 32 bits keep
        // increasing as far as a secondary can tell.
        Ok(CatalogMembers { serial: serial as u32, members })
    }

    /// Makes a transfer key with a fresh secret as long as the
    /// algorithm's output and returns it.
    pub fn create_transfer_key(
        &mut self,
        key_name: &[u8],
        algorithm: Algorithm,
    ) -> Result<TransferKey, StoreError> {
        // RFC 8945 §6: a key no shorter than the hash output.
        let mut secret = vec![0u8; algorithm.mac_len()];
        rand::fill(&mut secret[..]);
        let key =
            TransferKey { name: name::to_lowercase(key_name), algorithm: algorithm.to_text().into(), secret };
        let tx = self.conn.transaction()?;
        if insert_key(&tx, &self.sealer, &key)?.is_none() {
            return Err(StoreError::Conflict(format!("TSIG key {} already exists", display(key_name))));
        }
        tx.commit()?;
        Ok(key)
    }

    /// The transfer key with this name (wire form, any case).
    pub fn transfer_key(&self, key_name: &[u8]) -> Result<Option<TransferKey>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name, algorithm, secret, sealed FROM transfer_keys WHERE name = ?1")?;
        let row = st.query_row(params![&name::to_lowercase(key_name)[..]], |r| key_at(r, 0)).optional()?;
        row.map(|row| open_key(&self.sealer, row)).transpose()
    }

    /// Deletes a transfer key; false if there was none. A key a secondary
    /// still uses is refused.
    pub fn delete_transfer_key(&mut self, key_name: &[u8]) -> Result<bool, StoreError> {
        let key = name::to_lowercase(key_name);
        let users: Vec<String> = {
            let mut st = self.conn.prepare(
                "SELECT s.address FROM secondaries s JOIN transfer_keys k ON k.id = s.key_id
                 WHERE k.name = ?1 ORDER BY s.address",
            )?;
            let rows = st.query_map(params![&key[..]], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "TSIG key {} is the key of secondary {}; remove the secondary first",
                display(key_name),
                users.join(", ")
            )));
        }
        Ok(self.conn.execute("DELETE FROM transfer_keys WHERE name = ?1", params![&key[..]])? > 0)
    }

    /// Adds a secondary, or replaces the one at the same address. A key
    /// given with it is stored as a transfer key; one of that name must
    /// have the same algorithm and secret. Named zones need not exist
    /// yet: a zone created later is carried once it does.
    pub fn add_secondary(&mut self, secondary: &Secondary) -> Result<(), StoreError> {
        if secondary.zones.len() > MAX_SECONDARY_ZONES {
            return Err(StoreError::BadInput(format!(
                "{} zones named for one secondary; at most {MAX_SECONDARY_ZONES} (use --catalog for more)",
                secondary.zones.len()
            )));
        }
        if secondary.address.port() == 0 || secondary.address.ip().is_unspecified() {
            return Err(StoreError::BadInput(format!(
                "{} is not a secondary's address: it needs an address and a port",
                secondary.address
            )));
        }
        let address = secondary.address.to_string();
        let tx = self.conn.transaction()?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM secondaries WHERE address = ?1", params![address], |_| Ok(()))
            .optional()?
            .is_some();
        let count: i64 = tx.query_row("SELECT count(*) FROM secondaries", [], |r| r.get(0))?;
        if !exists && count as u64 >= MAX_SECONDARIES {
            return Err(LimitError::new(
                "secondaries".into(),
                count as u64 + 1,
                "secondaries",
                "max_secondaries",
                MAX_SECONDARIES,
            )
            .into());
        }
        // Stored, compared and looked up by the lowercased name, whatever
        // the spelling given.
        let key =
            secondary.key.as_ref().map(|k| TransferKey { name: name::to_lowercase(&k.name), ..k.clone() });
        let key_id = match &key {
            None => None,
            Some(key) => Some(match insert_key(&tx, &self.sealer, key)? {
                Some(id) => id,
                None => {
                    let (stored, id) = tx.query_row(
                        "SELECT name, algorithm, secret, sealed, id FROM transfer_keys WHERE name = ?1",
                        params![&key.name[..]],
                        |r| Ok((key_at(r, 0)?, r.get::<_, i64>(4)?)),
                    )?;
                    let stored = open_key(&self.sealer, stored)?;
                    if stored != *key {
                        return Err(StoreError::Conflict(format!(
                            "transfer key {} exists with another algorithm or secret",
                            display(&key.name)
                        )));
                    }
                    id
                }
            }),
        };
        tx.execute("DELETE FROM secondaries WHERE address = ?1", params![address])?;
        tx.execute(
            "INSERT INTO secondaries (address, key_id, catalog, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![address, key_id, secondary.catalog, now()],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut st =
                tx.prepare("INSERT OR IGNORE INTO secondary_zones (secondary_id, zone) VALUES (?1, ?2)")?;
            for zone in &secondary.zones {
                st.execute(params![id, &name::to_lowercase(zone)[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes the secondary at `address`; false if there was none. Its
    /// key stays (`tsig delete` removes it).
    pub fn remove_secondary(&mut self, address: SocketAddr) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM secondaries WHERE address = ?1", params![address.to_string()])? > 0)
    }

    /// A number that moves with every change to the secondaries, their
    /// zones and the transfer keys, by this process or another: a reader
    /// reloads [`Store::secondaries`] when it does.
    pub fn secondaries_generation(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'secondaries_generation'", [], |r| r.get(0))?)
    }

    /// The catalog zone's serial alone: it moves whenever its list does.
    pub fn catalog_serial(&self) -> Result<u32, StoreError> {
        let serial: i64 =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'catalog_serial'", [], |r| r.get(0))?;
        Ok(serial as u32)
    }

    /// The catalog zone's name (wire form): the one `serve` was last
    /// configured with (`[secondaries] catalog_zone`), else
    /// [`sixgate_dns::catzone::DEFAULT_NAME`].
    pub fn catalog_name(&self) -> Result<Box<[u8]>, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = 'catalog_name'", [], |r| r.get(0))
            .optional()?;
        let text = v.as_deref().unwrap_or(sixgate_dns::catzone::DEFAULT_NAME);
        name::from_text(text, None)
            .map_err(|e| StoreError::BadInput(format!("stored catalog zone name {text:?}: {e}")))
    }

    /// Records the catalog zone's name, so that the CLI (`zone list`),
    /// which does not read `serve`'s configuration, names it alike.
    pub fn save_catalog_name(&mut self, catalog: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ('catalog_name', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![display(catalog)],
        )?;
        Ok(())
    }

    /// Every secondary, by address.
    pub fn secondaries(&self) -> Result<Vec<Secondary>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT s.id, s.address, s.catalog, k.name, k.algorithm, k.secret, k.sealed
             FROM secondaries s LEFT JOIN transfer_keys k ON k.id = s.key_id ORDER BY s.address",
        )?;
        let rows = st.query_map([], |r| {
            // A LEFT JOIN: no key name, no key.
            let key = match r.get::<_, Option<Vec<u8>>>(3)? {
                Some(_) => Some(key_at(r, 3)?),
                None => None,
            };
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, key))
        })?;
        let mut zones =
            self.conn.prepare_cached("SELECT zone FROM secondary_zones WHERE secondary_id = ?1")?;
        let mut out = Vec::new();
        for row in rows {
            let (id, address, catalog, key) = row?;
            let key = key.map(|k| open_key(&self.sealer, k)).transpose()?;
            // Written only from a SocketAddr: one that does not read back is
            // corruption, reported rather than skipped.
            let address = address.parse().map_err(|_| {
                StoreError::BadInput(format!("stored secondary address {address:?} does not parse"))
            })?;
            let mut names: Vec<Box<[u8]>> = zones
                .query_map(params![id], |r| Ok(r.get::<_, Vec<u8>>(0)?.into_boxed_slice()))?
                .collect::<Result<_, _>>()?;
            names.sort();
            out.push(Secondary { address, key, catalog, zones: names });
        }
        Ok(out)
    }
}

/// Inserts `key` (its name lowercased) into `transfer_keys`; its id, or
/// None when a transfer key of that name exists. A name taken by an
/// UPDATE key is a conflict.
fn insert_key(
    tx: &rusqlite::Transaction<'_>,
    sealer: &Sealer,
    key: &TransferKey,
) -> Result<Option<i64>, StoreError> {
    refuse_name_of(tx, &key.name, KeyKind::Update)?;
    let (stored, sealed) = sealer.seal(&Row::Transfer(&key.name), &key.secret);
    let n = tx.execute(
        "INSERT INTO transfer_keys (name, algorithm, secret, sealed, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(name) DO NOTHING",
        params![&key.name[..], key.algorithm, stored, sealed, now()],
    )?;
    Ok((n > 0).then(|| tx.last_insert_rowid()))
}

/// The two kinds of TSIG key, each in its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// RFC 2136 UPDATE keys, bound to a zone (`tsig_keys`).
    Update,
    /// Zone-transfer keys (`transfer_keys`).
    Transfer,
}

/// Refuses `name` (wire form, lowercased) for a new key when a key of
/// the `other` kind has it: one name names one key, so a signed message
/// never leaves in doubt which key it means.
pub(crate) fn refuse_name_of(
    conn: &rusqlite::Connection,
    name: &[u8],
    other: KeyKind,
) -> Result<(), StoreError> {
    let (sql, other_text, this_text) = match other {
        KeyKind::Update => ("SELECT 1 FROM tsig_keys WHERE name = ?1", "an UPDATE key", "a transfer key"),
        KeyKind::Transfer => {
            ("SELECT 1 FROM transfer_keys WHERE name = ?1", "a transfer key", "an UPDATE key")
        }
    };
    if conn.query_row(sql, params![name], |_| Ok(())).optional()?.is_some() {
        return Err(StoreError::Conflict(format!(
            "TSIG key {} exists as {other_text}; {this_text} needs a name of its own",
            display(name)
        )));
    }
    Ok(())
}

/// The transfer key in the row's columns `at` (name), `at + 1`
/// (algorithm), `at + 2` (secret, as stored) and `at + 3` (sealed).
fn key_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<(TransferKey, bool)> {
    Ok((
        TransferKey {
            name: r.get::<_, Vec<u8>>(at)?.into_boxed_slice(),
            algorithm: r.get(at + 1)?,
            secret: r.get(at + 2)?,
        },
        r.get(at + 3)?,
    ))
}

/// A transfer key as read, its secret opened.
fn open_key(sealer: &Sealer, (mut key, sealed): (TransferKey, bool)) -> Result<TransferKey, StoreError> {
    key.secret = sealer.open(&Row::Transfer(&key.name), std::mem::take(&mut key.secret), sealed)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    fn wire(text: &str) -> Box<[u8]> {
        name::from_text(text, None).expect("name")
    }

    fn secondary(addr: &str) -> Secondary {
        Secondary { address: addr.parse().expect("addr"), key: None, catalog: false, zones: vec![] }
    }

    #[test]
    fn a_secondary_with_its_key_and_zones_reads_back() {
        let (_d, mut s) = store();
        let key =
            TransferKey { name: wire("Xfr-Key."), algorithm: "hmac-sha256".into(), secret: vec![7; 32] };
        let mut one = secondary("[::1]:5301");
        one.key = Some(key.clone());
        one.zones = vec![wire("b.test."), wire("A.test.")];
        s.add_secondary(&one).expect("add");
        s.add_secondary(&Secondary { catalog: true, ..secondary("127.0.0.1:5302") }).expect("add");
        let all = s.secondaries().expect("list");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].address, "127.0.0.1:5302".parse::<SocketAddr>().expect("addr"));
        assert!(all[0].catalog && all[0].key.is_none() && all[0].carries(&wire("any.test.")));
        let got = &all[1];
        assert_eq!(got.key.as_ref().map(|k| &k.name[..]), Some(&wire("xfr-key.")[..]));
        assert_eq!(got.zones, vec![wire("a.test."), wire("b.test.")]);
        assert!(got.carries(&wire("A.TEST.")) && !got.carries(&wire("c.test.")));
        assert_eq!(s.transfer_key(&wire("XFR-KEY.")).expect("read").map(|k| k.secret), Some(vec![7; 32]));
    }

    #[test]
    fn adding_at_the_same_address_replaces_the_secondary() {
        let (_d, mut s) = store();
        s.add_secondary(&Secondary { zones: vec![wire("a.test.")], ..secondary("[::1]:53") }).expect("add");
        s.add_secondary(&Secondary { catalog: true, ..secondary("[::1]:53") }).expect("again");
        let all = s.secondaries().expect("list");
        assert_eq!(all.len(), 1);
        assert!(all[0].catalog && all[0].zones.is_empty());
    }

    #[test]
    fn a_key_of_an_existing_name_must_match() {
        let (_d, mut s) = store();
        let made = s.create_transfer_key(&wire("k."), Algorithm::HmacSha256).expect("create");
        assert_eq!(made.secret.len(), 32);
        let mut other = secondary("[::1]:53");
        other.key = Some(TransferKey { secret: vec![1; 32], ..made.clone() });
        let e = s.add_secondary(&other).expect_err("another secret");
        assert!(e.to_string().contains("another algorithm or secret"), "{e}");
        other.key = Some(made.clone());
        s.add_secondary(&other).expect("the same key");
        assert!(
            s.create_transfer_key(&wire("K."), Algorithm::HmacSha256).is_err(),
            "a second key of the name"
        );
    }

    /// Regression: a key given with a secondary in another case than the
    /// stored one of its name was looked up by its own spelling after the
    /// insert met the stored one, and the add failed with "Query returned
    /// no rows".
    #[test]
    fn a_key_given_in_another_case_is_the_stored_key() {
        let (_d, mut s) = store();
        let made = s.create_transfer_key(&wire("xfr."), Algorithm::HmacSha256).expect("create");
        let key = TransferKey { name: wire("XFR."), ..made.clone() };
        s.add_secondary(&Secondary { key: Some(key), ..secondary("[::1]:53") }).expect("the same key");
        let all = s.secondaries().expect("list");
        assert_eq!(all[0].key.as_ref(), Some(&made));
    }

    #[test]
    fn a_key_in_use_is_not_deleted_and_a_free_one_is() {
        let (_d, mut s) = store();
        let key = s.create_transfer_key(&wire("k."), Algorithm::HmacSha512).expect("create");
        assert_eq!(key.secret.len(), 64, "as long as an HMAC-SHA512 output");
        s.add_secondary(&Secondary { key: Some(key), ..secondary("[::1]:53") }).expect("add");
        let e = s.delete_transfer_key(&wire("k.")).expect_err("in use");
        assert!(e.to_string().contains("remove the secondary first"), "{e}");
        assert!(s.remove_secondary("[::1]:53".parse().expect("addr")).expect("remove"));
        assert!(s.delete_transfer_key(&wire("k.")).expect("delete"));
        assert!(!s.delete_transfer_key(&wire("k.")).expect("again"));
    }

    #[test]
    fn a_key_name_names_one_key_across_update_and_transfer_keys() {
        let (_d, mut s) = store();
        let apex = wire("example.test.");
        let recs =
            sixgate_dns::zonefile::parse("@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns.x.\n", &apex).expect("zone");
        s.by(crate::Actor::Task("test"))
            .create_zone(&apex, recs, crate::tenancy::OPERATOR_ACCOUNT, true)
            .expect("zone");
        s.create_tsig_key(&wire("shared."), "hmac-sha256", &wire("example.test."), false)
            .expect("update key");
        let e = s.create_transfer_key(&wire("shared."), Algorithm::HmacSha256).expect_err("taken");
        assert!(e.to_string().contains("exists as an UPDATE key"), "{e}");
        s.create_transfer_key(&wire("xfr."), Algorithm::HmacSha256).expect("transfer key");
        let e =
            s.create_tsig_key(&wire("XFR."), "hmac-sha256", &apex, false).expect_err("taken the other way");
        assert!(e.to_string().contains("exists as a transfer key"), "{e}");
    }

    fn make_zone(s: &mut Store, apex: &str, account: i64) {
        let apex = wire(apex);
        let recs =
            sixgate_dns::zonefile::parse("@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns.x.\n", &apex).expect("zone");
        s.by(crate::Actor::Task("test")).create_zone(&apex, recs, account, false).expect("zone");
    }

    #[test]
    fn the_catalog_lists_served_zones_and_its_serial_moves_with_the_list() {
        let (_d, mut s) = store();
        let first = s.catalog_members().expect("catalog");
        assert!(first.members.is_empty());
        make_zone(&mut s, "b.test.", crate::tenancy::OPERATOR_ACCOUNT);
        make_zone(&mut s, "a.test.", crate::tenancy::OPERATOR_ACCOUNT);
        let alice = s.create_account("alice").expect("account").id;
        make_zone(&mut s, "alice.test.", alice);
        let two = s.catalog_members().expect("catalog");
        let names: Vec<_> = two.members.iter().map(|m| name::to_text(&m.apex)).collect();
        assert_eq!(names, ["a.test.", "b.test."], "alice's unverified zone is not served, so not listed");
        assert!(two.serial > first.serial);
        assert_ne!(two.members[0].id, two.members[1].id);
        assert!(two.members.iter().all(|m| m.group == "operator"), "{:?}", two.members);

        // A record change leaves the catalog alone.
        let before = s.catalog_members().expect("catalog");
        let txt = sixgate_dns::zonefile::parse("www 60 TXT hello\n", &wire("a.test.")).expect("record");
        let add: Vec<_> = txt.into_iter().map(sixgate_dns::zone::Change::Add).collect();
        s.by(crate::Actor::Task("test")).apply(&wire("a.test."), &add).expect("a record change");
        assert_eq!(s.catalog_members().expect("catalog").serial, before.serial);

        // Deleted and made again: a new member id and a later serial.
        let old_id = two.members[0].id;
        s.by(crate::Actor::Task("test")).delete_zone(&wire("a.test.")).expect("delete");
        let gone = s.catalog_members().expect("catalog");
        assert_eq!(gone.members.len(), 1);
        assert!(gone.serial > two.serial);
        make_zone(&mut s, "a.test.", crate::tenancy::OPERATOR_ACCOUNT);
        let back = s.catalog_members().expect("catalog");
        assert!(back.serial > gone.serial);
        assert_ne!(back.members[0].id, old_id, "a new incarnation is a new member");
    }

    #[test]
    fn a_members_group_is_its_accounts_name_and_moves_the_serial_when_the_zone_changes_hands() {
        let (_d, mut s) = store();
        make_zone(&mut s, "op.test.", crate::tenancy::OPERATOR_ACCOUNT);
        let alice = s.create_account("alice").expect("account").id;
        let bob = s.create_account("bob.example").expect("account").id;
        make_zone(&mut s, "alice.test.", alice);
        s.set_verified(&wire("alice.test."), true, None).expect("verified");
        let before = s.catalog_members().expect("catalog");
        let groups: Vec<_> =
            before.members.iter().map(|m| (name::to_text(&m.apex), m.group.as_str())).collect();
        // By wire form: the shorter first label first.
        assert_eq!(groups, [("op.test.".to_owned(), "operator"), ("alice.test.".to_owned(), "alice")]);

        // Given to another account, verified as before: the same member
        // with another group, and a serial that tells the secondaries.
        s.set_zone_owner(&wire("alice.test."), bob, true).expect("new owner");
        let after = s.catalog_members().expect("catalog");
        assert_eq!(after.members[1].group, "bob.example");
        assert_eq!(after.members[1].id, before.members[1].id);
        assert!(after.serial > before.serial, "{} after {}", after.serial, before.serial);

        // The same owner again changes nothing.
        s.set_zone_owner(&wire("alice.test."), bob, true).expect("same owner");
        assert_eq!(s.catalog_members().expect("catalog").serial, after.serial);
    }

    /// Regression: a member's id was the catalog serial of its creation,
    /// so anyone could list every zone by asking the catalog zone for
    /// `1.zones`, `2.zones`, ... PTR.
    #[test]
    fn member_ids_could_be_guessed_from_the_catalog_serial() {
        let (_d, mut s) = store();
        for i in 0..16 {
            make_zone(&mut s, &format!("z{i}.test."), crate::tenancy::OPERATOR_ACCOUNT);
        }
        let serial = u64::from(s.catalog_members().expect("catalog").serial);
        let ids: Vec<u64> = s.catalog_members().expect("catalog").members.iter().map(|m| m.id).collect();
        assert_eq!(ids.len(), 16);
        // 64 random bits: none near the serial or near another id (each
        // check fails by chance with odds below 2^-30).
        for (i, a) in ids.iter().enumerate() {
            assert!(a.abs_diff(serial) > 1 << 32, "id {a:#x} near the serial {serial}");
            for b in &ids[i + 1..] {
                assert!(a.abs_diff(*b) > 1 << 32, "ids {a:#x} and {b:#x} are close");
            }
        }
    }

    #[test]
    fn secondaries_are_capped_and_addresses_need_a_port() {
        let (_d, mut s) = store();
        for port in 1..=MAX_SECONDARIES as u16 {
            s.add_secondary(&secondary(&format!("[::1]:{port}"))).expect("add");
        }
        let e = s.add_secondary(&secondary("[::1]:9999")).expect_err("over the cap");
        assert!(matches!(e, StoreError::Limit(_)), "{e}");
        s.add_secondary(&Secondary { catalog: true, ..secondary("[::1]:1") })
            .expect("replacing is not adding");
        assert!(s.add_secondary(&secondary("[::1]:0")).is_err());
        assert!(s.add_secondary(&secondary("[::]:53")).is_err());
    }
}
