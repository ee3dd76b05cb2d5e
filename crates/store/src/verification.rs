//! Verified customer zones: per-account nameserver names, the state of
//! each zone's delegation check, and which zones are served.
//!
//! A customer's zone counts as verified once its parent delegates it to
//! sixgate, and until then it is not served at all (unless the store is
//! told to, [`TenancyPolicy::serve_unverified`]): the publisher builds
//! zones through [`Store::visit_zones`] and [`Store::visit_zone`], which
//! leave such zones out, and a change of whether a zone is served is
//! journaled as a replacement, so a running publisher drops or adds the
//! zone at once, without a change of its own.
//!
//! This is the defence against "sitting ducks", lame delegations taken
//! over by whoever creates the zone first. Each account has nameserver
//! names of its own ([`AccountNameservers`], `ns1.LABEL.DOMAIN`, the
//! label random and stored with the account), and with those configured
//! a customer zone is verified only when its parent delegates to its own
//! account's names, which a delegation left behind for another account
//! never does. Serving nothing before that matters as much: a recursive
//! resolver asked for a served zone's NS set answers with the zone's own
//! NS records, which the claimant writes.

use rusqlite::{OptionalExtension, params};
use sixgate_dns::name;

use crate::tenancy::OPERATOR_ACCOUNT;
use crate::{Store, StoreError, TenancyPolicy, display, now};

/// How accounts' own nameserver names are formed: `ns1.LABEL.DOMAIN` up
/// to `nsCOUNT.LABEL.DOMAIN`. Stored, so the CLI shows what `serve` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountNameservers {
    /// The operator's nameserver domain (wire form, lowercased).
    pub domain: Box<[u8]>,
    /// How many names each account gets (1 to [`AccountNameservers::MAX`]).
    pub count: u8,
}

impl AccountNameservers {
    /// Most names per account.
    pub const MAX: u8 = 8;

    /// The names for an account label, in order.
    pub fn names(&self, label: &str) -> Result<Vec<Box<[u8]>>, StoreError> {
        let domain = display(&self.domain);
        (1..=self.count)
            .map(|i| {
                name::from_text(&format!("ns{i}.{label}.{domain}"), None)
                    .map_err(|e| StoreError::BadInput(format!("nameserver name for {label:?}: {e}")))
            })
            .collect()
    }
}

/// A customer's zone and whether its delegation is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerZone {
    /// Apex, wire form, original case.
    pub apex: Box<[u8]>,
    /// Verified now.
    pub verified: bool,
    /// The names the parent must delegate to: its account's own, when
    /// per-account names are configured; `None` means the shared
    /// nameservers.
    pub nameservers: Option<Vec<Box<[u8]>>>,
}

impl Store {
    /// Gives an existing zone to an account, verified or not. Whether it
    /// is served may change with it, so the change is journaled.
    pub fn set_zone_owner(&mut self, apex: &[u8], account_id: i64, verified: bool) -> Result<(), StoreError> {
        let key = name::to_lowercase(apex);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let before = served_state(&tx, &key)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        tx.execute(
            "UPDATE zones SET account_id = ?1, verified = ?2 WHERE name = ?3",
            params![account_id, verified, &key[..]],
        )?;
        journal_if_served_changed(&tx, &key, before)?;
        tx.commit()?;
        Ok(())
    }

    /// Records the result of a delegation check. When the verified state
    /// changes, the zone is journaled as replaced: the publisher reloads
    /// it, and so starts or stops serving a customer's zone within
    /// milliseconds of the check.
    pub fn set_verified(
        &mut self,
        apex: &[u8],
        verified: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = name::to_lowercase(apex);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(before) = served_state(&tx, &key)? else {
            // Deleted while it was being checked: nothing to record.
            return Ok(());
        };
        tx.execute(
            "UPDATE zones SET verified = ?1, verify_checked_at = ?2, verify_error = ?3 WHERE name = ?4",
            params![verified, now(), error, &key[..]],
        )?;
        journal_if_served_changed(&tx, &key, before)?;
        tx.commit()?;
        Ok(())
    }

    /// Customers' zones (not the operator's), whose delegation is checked
    /// periodically: apex in original case, whether it is verified now,
    /// and the names its parent must delegate to.
    pub fn customer_zones(&self) -> Result<Vec<CustomerZone>, StoreError> {
        let scheme = self.account_nameserver_scheme()?;
        let mut st = self.conn.prepare(
            "SELECT z.apex, z.verified, a.ns_label FROM zones z JOIN accounts a ON a.id = z.account_id
             WHERE z.account_id != ?1 ORDER BY z.name",
        )?;
        let rows = st.query_map(params![OPERATOR_ACCOUNT], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, bool>(1)?, r.get::<_, Option<String>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (apex, verified, label) = row?;
            let nameservers = match (&scheme, label) {
                (Some(s), Some(l)) => Some(s.names(&l)?),
                // An account without a label cannot be delegated to its
                // own names: nothing verifies it.
                (Some(_), None) => Some(Vec::new()),
                (None, _) => None,
            };
            out.push(CustomerZone { apex: apex.into_boxed_slice(), verified, nameservers });
        }
        Ok(out)
    }

    /// Sets how customer zones are claimed and served (see
    /// [`TenancyPolicy`]). Held by this store only: `serve` sets it on the
    /// stores it opens.
    pub fn set_tenancy(&mut self, policy: TenancyPolicy) {
        self.tenancy = policy;
    }

    /// The tenancy policy in force on this store.
    pub fn tenancy(&self) -> &TenancyPolicy {
        &self.tenancy
    }

    /// Sets (or, with `None`, removes) the scheme of per-account
    /// nameserver names, for every process using this data directory.
    pub fn set_account_nameserver_scheme(
        &mut self,
        scheme: Option<&AccountNameservers>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM settings WHERE key IN ('nameserver_domain', 'nameserver_count')", [])?;
        if let Some(s) = scheme {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('nameserver_domain', ?1), ('nameserver_count', ?2)",
                params![display(&s.domain), s.count.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records whether `serve` answers unverified customer zones
    /// (`[tenancy] serve_unverified`), so that the CLI, which does not
    /// read `serve`'s configuration, can tell which zones are served. It
    /// does not change this store's own behaviour: see
    /// [`Store::set_tenancy`].
    pub fn save_serve_unverified(&mut self, serve: bool) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ('serve_unverified', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![if serve { "true" } else { "false" }],
        )?;
        Ok(())
    }

    /// Whether the last `serve` on this data directory answers unverified
    /// customer zones (false if it never said). A zone of a customer
    /// account ([`ZoneInfo::account_id`](crate::ZoneInfo) not
    /// [`OPERATOR_ACCOUNT`]) that is not verified is served only then.
    pub fn serves_unverified(&self) -> Result<bool, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = 'serve_unverified'", [], |r| r.get(0))
            .optional()?;
        Ok(v.as_deref() == Some("true"))
    }

    /// The scheme of per-account nameserver names, if one is configured.
    pub fn account_nameserver_scheme(&self) -> Result<Option<AccountNameservers>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?;
        let mut get = |k: &str| st.query_row(params![k], |r| r.get::<_, String>(0)).optional();
        let (Some(domain), Some(count)) = (get("nameserver_domain")?, get("nameserver_count")?) else {
            return Ok(None);
        };
        let domain = name::from_text(&domain, None)
            .map_err(|e| StoreError::BadInput(format!("stored nameserver domain {domain:?}: {e}")))?;
        let count = count
            .parse::<u8>()
            .ok()
            .filter(|c| (1..=AccountNameservers::MAX).contains(c))
            .ok_or_else(|| StoreError::BadInput(format!("stored nameserver count {count:?}")))?;
        Ok(Some(AccountNameservers { domain: name::to_lowercase(&domain), count }))
    }

    /// The account's own nameserver names; `None` when per-account names
    /// are not configured, for the operator's account, whose zones use
    /// the shared nameservers, and for an account that does not exist.
    pub fn account_nameservers(&self, account_id: i64) -> Result<Option<Vec<Box<[u8]>>>, StoreError> {
        if account_id == OPERATOR_ACCOUNT {
            return Ok(None);
        }
        let Some(scheme) = self.account_nameserver_scheme()? else { return Ok(None) };
        let label: Option<String> = self
            .conn
            .prepare_cached("SELECT ns_label FROM accounts WHERE id = ?1")?
            .query_row(params![account_id], |r| r.get(0))
            .optional()?
            .flatten();
        label.map(|l| scheme.names(&l)).transpose()
    }
}

/// Gives account `id` a new random nameserver label and returns it.
/// Eight characters of a 32-letter alphabet without look-alikes (no l,
/// o, 0, 1): 40 bits, so a clash is rare and simply drawn again.
pub(crate) fn assign_label(tx: &rusqlite::Connection, id: i64) -> Result<String, StoreError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    for _ in 0..16 {
        let mut raw = [0u8; 8];
        rand::fill(&mut raw[..]);
        // 256 is a multiple of 32: every letter is equally likely.
        let label: String = raw.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
        let n = tx.execute(
            "UPDATE accounts SET ns_label = ?1 WHERE id = ?2
             AND NOT EXISTS (SELECT 1 FROM accounts WHERE ns_label = ?1)",
            params![label, id],
        )?;
        if n == 1 {
            return Ok(label);
        }
    }
    Err(StoreError::Conflict("no free nameserver label found".into()))
}

/// A zone that is served.
pub(crate) struct ServedZone {
    pub(crate) id: i64,
    /// Apex, wire form, original case.
    pub(crate) apex: Vec<u8>,
    /// Its id in the catalog zone (secondaries.rs).
    pub(crate) member_id: i64,
}

/// The zones to serve: all, or the one with this lowercased apex.
/// Customers' zones are left out until they are verified, unless
/// `unverified_too`.
pub(crate) fn served_zones(
    tx: &rusqlite::Connection,
    key: Option<&[u8]>,
    unverified_too: bool,
) -> Result<Vec<ServedZone>, StoreError> {
    // Two statements, so the one-zone lookup is a probe of the name's
    // unique index, not a scan.
    let mut st = match key {
        Some(_) => tx.prepare_cached(
            "SELECT id, apex, member_id FROM zones
             WHERE name = ?1 AND (?2 OR verified OR account_id = ?3)",
        )?,
        None => tx.prepare_cached(
            "SELECT id, apex, member_id FROM zones
             WHERE ?1 IS NULL AND (?2 OR verified OR account_id = ?3)",
        )?,
    };
    let rows = st.query_map(params![key, unverified_too, OPERATOR_ACCOUNT], |r| {
        Ok(ServedZone { id: r.get(0)?, apex: r.get(1)?, member_id: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the zone would be served by a store that serves only verified
/// customer zones, and its id and serial; `None` if it does not exist.
fn served_state(tx: &rusqlite::Connection, key: &[u8]) -> Result<Option<(bool, i64, i64)>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT verified OR account_id = ?2, id, serial FROM zones WHERE name = ?1",
            params![key, OPERATOR_ACCOUNT],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

/// Journals the zone as replaced if whether it is served changed since
/// `before`: the publisher then reloads it, which drops it or adds it.
/// The serial stays: the zone's content did not change.
fn journal_if_served_changed(
    tx: &rusqlite::Connection,
    key: &[u8],
    before: (bool, i64, i64),
) -> Result<(), StoreError> {
    let (was, id, serial) = before;
    if served_state(tx, key)?.is_some_and(|(now_served, ..)| now_served != was) {
        crate::write::journal(tx, id, key, serial as u32, "replace", None, "task:verify", crate::now())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_zone(text: &str) -> (Box<[u8]>, Vec<sixgate_dns::zone::Record>) {
        let apex = name::from_text(text, None).unwrap();
        let recs =
            sixgate_dns::zonefile::parse("@ 60 SOA ns.x. h 1 2 3 4 5\n@ 60 NS ns.x.\n", &apex).unwrap();
        (apex, recs)
    }

    fn claim(s: &mut Store, zone: &str, account: i64, verified: bool) -> Result<crate::Commit, StoreError> {
        let (apex, recs) = new_zone(zone);
        s.by(crate::Actor::Task("test")).create_zone(&apex, recs, account, verified)
    }

    fn served(s: &mut Store) -> Vec<String> {
        let mut out = Vec::new();
        s.visit_zones(|apex, _, _| {
            out.push(name::to_text(apex));
            Ok::<_, StoreError>(())
        })
        .unwrap();
        out.sort();
        out
    }

    /// Sitting ducks: a customer's zone is not served until it is
    /// verified, and the change of state reaches a running publisher as a
    /// journaled replacement.
    #[test]
    fn unverified_customer_zones_are_not_served_and_verification_is_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let bob = s.create_account("bob").unwrap().id;
        let (op, recs) = new_zone("op.test.");
        s.by(crate::Actor::Task("test")).create_zone(&op, recs, OPERATOR_ACCOUNT, true).unwrap();
        let (apex, recs) = new_zone("bob.test.");
        let created = s.by(crate::Actor::Task("test")).create_zone(&apex, recs, bob, false).unwrap();
        assert_eq!(served(&mut s), ["op.test."]);
        assert_eq!(s.visit_zone(&apex, |_, _, _| Ok::<_, StoreError>(())).unwrap(), None);
        // Its records are still there for the CLI and the API.
        assert!(s.zone_snapshot(&apex).unwrap().is_some());
        // A check that finds nothing new journals nothing.
        s.set_verified(&apex, false, Some("not delegated")).unwrap();
        assert_eq!(s.journal_since(created.journal_id, 10).unwrap(), []);
        s.set_verified(&apex, true, None).unwrap();
        let j = s.journal_since(created.journal_id, 10).unwrap();
        assert_eq!(j.len(), 1);
        assert_eq!((j[0].kind.clone(), j[0].serial), (crate::JournalKind::Replace, created.serial));
        assert_eq!(served(&mut s), ["bob.test.", "op.test."]);
        s.set_verified(&apex, true, None).unwrap();
        s.set_verified(&apex, false, Some("delegated elsewhere")).unwrap();
        assert_eq!(s.journal_since(j[0].id, 10).unwrap().len(), 1);
        assert_eq!(served(&mut s), ["op.test."]);
        // Handing it to the operator serves it again, journaled too.
        let last = s.journal_since(0, 100).unwrap().last().unwrap().id;
        s.set_zone_owner(&apex, OPERATOR_ACCOUNT, false).unwrap();
        assert_eq!(s.journal_since(last, 10).unwrap().len(), 1);
        assert_eq!(served(&mut s), ["bob.test.", "op.test."]);
        // A lab store serves everything.
        s.set_zone_owner(&apex, bob, false).unwrap();
        s.set_tenancy(TenancyPolicy { serve_unverified: true, ..Default::default() });
        assert_eq!(served(&mut s), ["bob.test.", "op.test."]);
    }

    #[test]
    fn accounts_get_stable_unique_nameserver_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s.create_account("alice").unwrap();
        let b = s.create_account("Alice").unwrap();
        for l in [&a.ns_label, &b.ns_label] {
            assert_eq!(l.len(), 8, "{l}");
            assert!(l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{l}");
        }
        assert_ne!(a.ns_label, b.ns_label);
        assert_eq!(s.account("alice").unwrap().ns_label, a.ns_label);
        // No scheme: shared nameservers for everyone.
        assert_eq!(s.account_nameservers(a.id).unwrap(), None);
        let scheme =
            AccountNameservers { domain: name::from_text("ns.sixgate.example.", None).unwrap(), count: 2 };
        s.set_account_nameserver_scheme(Some(&scheme)).unwrap();
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.account_nameserver_scheme().unwrap(), Some(scheme));
        let names: Vec<String> =
            s.account_nameservers(a.id).unwrap().unwrap().iter().map(|n| name::to_text(n)).collect();
        let l = &a.ns_label;
        assert_eq!(names, [format!("ns1.{l}.ns.sixgate.example."), format!("ns2.{l}.ns.sixgate.example.")]);
        assert_eq!(
            s.account_nameservers(OPERATOR_ACCOUNT).unwrap(),
            None,
            "the operator uses the shared names"
        );
        assert_eq!(s.account_nameservers(999).unwrap(), None);
        let (apex, recs) = new_zone("alice.test.");
        s.by(crate::Actor::Task("test")).create_zone(&apex, recs, a.id, false).unwrap();
        let cz = s.customer_zones().unwrap();
        assert_eq!(cz[0].nameservers.as_ref().map(|n| n.len()), Some(2));
        s.set_account_nameserver_scheme(None).unwrap();
        assert_eq!(s.customer_zones().unwrap()[0].nameservers, None);
        assert!(!s.serves_unverified().unwrap());
        s.save_serve_unverified(true).unwrap();
        assert!(s.serves_unverified().unwrap());
    }

    /// Data from before the claims migration: zones without a canonical
    /// key and accounts without a label get both at the next open.
    #[test]
    fn the_claims_migration_backfills_existing_zones_and_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let mallory = s.create_account("mallory").unwrap().id;
        claim(&mut s, "shop.corp.example.", alice, false).unwrap();
        // As an older version left it.
        s.conn
            .execute_batch(
                "DELETE FROM zone_keys; UPDATE accounts SET ns_label = NULL;
                 INSERT INTO meta (key, value) VALUES ('claims_backfill', 1);",
            )
            .unwrap();
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert!(s.accounts().unwrap().iter().all(|a| a.ns_label.len() == 8));
        assert!(claim(&mut s, "corp.example.", mallory, false).is_err(), "the old zone is found as a child");
        let left: i64 = s
            .conn
            .query_row("SELECT count(*) FROM meta WHERE key = 'claims_backfill'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
