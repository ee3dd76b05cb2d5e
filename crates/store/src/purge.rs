//! Deleting DNSSEC key material that nothing needs any more.
//!
//! The rollover planner moves a key to `Removed` once nothing in the zone
//! or at the parent refers to it, but its row in `dnssec_keys`, private
//! half included, used to stay for good. Here a maintenance step deletes
//! the row once the key has been removed for the policy's `key_retention`,
//! and forgets the key in the keyring. With `secure_delete` (set at open)
//! SQLite overwrites the row in the database file; a checkpoint then
//! empties the WAL, which may still hold older copies of its page.

use rusqlite::{TransactionBehavior, params};
use sixgate_dns::name;

use crate::dnssec::{save_state, zone_row_dnssec};
use crate::{BUSY_TIMEOUT, Store, StoreError, display, zone_row};

/// How long the checkpoint after a purge waits for readers. It holds up
/// writers while it waits, so it gets much less than a writer would.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

impl Store {
    /// Deletes the key material of the zone's keys that were removed at
    /// least the policy's `key_retention` ago and forgets them in the
    /// keyring; rows of keys the keyring does not name at all go too.
    /// Returns the key tags deleted. Nothing served changes, so the zone's
    /// serial and journal stay as they are. [`Store::dnssec_maintain`]
    /// calls this first.
    pub fn dnssec_purge_keys(&mut self, apex: &[u8]) -> Result<Vec<u16>, StoreError> {
        let now = self.now().max(0) as u64;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (zone_id, _) =
            zone_row(&tx, &name::to_lowercase(apex))?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        let Some((policy, mut state)) = zone_row_dnssec(&tx, zone_id)? else { return Ok(Vec::new()) };
        let forgotten = state.keyring.purge(policy.key_retention, now);
        let rows: Vec<(i64, u16)> = tx
            .prepare_cached("SELECT id, key_tag FROM dnssec_keys WHERE zone_id = ?1")?
            .query_map(params![zone_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let unused: Vec<(i64, u16)> = rows
            .into_iter()
            .filter(|(id, _)| !state.keyring.keys.iter().any(|k| k.id as i64 == *id))
            .collect();
        if unused.is_empty() && forgotten.is_empty() {
            return Ok(Vec::new());
        }
        for (id, _) in &unused {
            tx.execute("DELETE FROM dnssec_keys WHERE id = ?1", params![id])?;
        }
        if !forgotten.is_empty() {
            save_state(&tx, zone_id, &state)?;
        }
        tx.commit()?;
        let tags: Vec<u16> = unused.iter().map(|(_, tag)| *tag).collect();
        let zone = display(apex);
        tracing::info!(
            %zone,
            key_tags = ?tags,
            retention = policy.key_retention,
            "deleted the private keys of removed DNSSEC keys"
        );
        self.empty_wal();
        Ok(tags)
    }

    /// Copies every page into the database file and truncates the WAL, so
    /// that older versions of the pages that held deleted keys are gone
    /// from it. Best effort: while a reader holds an old snapshot it gives
    /// up, and SQLite's own checkpoints overwrite the WAL from its start.
    fn empty_wal(&self) {
        let _ = self.conn.busy_timeout(CHECKPOINT_WAIT);
        let done = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
        match done {
            Ok(0) => {}
            Ok(_) => tracing::debug!("WAL not truncated after deleting keys: readers are busy"),
            Err(e) => tracing::warn!(error = %e, "WAL not truncated after deleting keys"),
        }
    }
}

#[cfg(test)]
mod tests {
    use sixgate_dns::name;
    use sixgate_dns::zonefile;
    use sixgate_dnssec::policy::{KeyLayout, Policy};
    use sixgate_dnssec::rollover::{KeyState, Role};

    use crate::{DB_FILE, Roll, Store};

    const DAY: u32 = 86_400;

    fn apex() -> Box<[u8]> {
        name::from_text("example.com.", None).unwrap()
    }

    fn signed_store(dir: &std::path::Path, retention: u32) -> Store {
        let mut s = Store::open(dir).unwrap();
        let text = "@ 300 SOA ns hm 1 7200 3600 1209600 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n";
        s.by(crate::Actor::Task("test"))
            .replace_zone(&apex(), zonefile::parse(text, &apex()).unwrap())
            .unwrap();
        let policy = Policy { layout: KeyLayout::KskZsk, key_retention: retention, ..Policy::default() };
        s.by(crate::Actor::Task("test")).dnssec_enable(&apex(), &policy).unwrap();
        s
    }

    fn key_rows(s: &Store) -> Vec<i64> {
        let mut st = s.conn.prepare("SELECT id FROM dnssec_keys ORDER BY id").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    /// The 32 octets of an ECDSA P-256 private key inside its PKCS#8
    /// document (RFC 5915 ECPrivateKey: version 1, then the key).
    fn scalar(pkcs8: &[u8]) -> Vec<u8> {
        let at = pkcs8.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20]).unwrap() + 5;
        pkcs8[at..at + 32].to_vec()
    }

    /// Whether `needle` is anywhere in the database or its WAL.
    fn on_disk(dir: &std::path::Path, needle: &[u8]) -> bool {
        ["", "-wal"].iter().any(|suffix| {
            let bytes = std::fs::read(dir.join(format!("{DB_FILE}{suffix}"))).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
    }

    /// Rolls the ZSK and maintains the zone at each next event until the
    /// old ZSK is removed; returns its id and when it was removed.
    fn roll_zsk_out(s: &mut Store) -> (u64, u64) {
        let old = s.dnssec_info(&apex()).unwrap().unwrap().keys;
        let old = old.iter().find(|k| k.record.role == Role::Zsk).unwrap().record.id;
        let mut next = s.by(crate::Actor::Task("test")).dnssec_roll(&apex(), Roll::Zsk).unwrap().next_event;
        for _ in 0..20 {
            let info = s.dnssec_info(&apex()).unwrap().unwrap();
            if let Some(k) = info.state.keyring.key(old)
                && k.state == KeyState::Removed
            {
                return (old, k.times.removed.unwrap());
            }
            let at = next.unwrap() as i64;
            s.set_clock_offset(at - crate::now());
            next = s.by(crate::Actor::Task("test")).dnssec_maintain(&apex(), None).unwrap().next_event;
        }
        panic!("the old ZSK was never removed");
    }

    #[test]
    fn retired_keys_are_purged_after_their_retention_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = signed_store(dir.path(), 10 * DAY);
        let (old, removed) = roll_zsk_out(&mut s);
        assert!(key_rows(&s).contains(&(old as i64)), "a removed key stays for its retention");
        // A second before the retention ends, it is still there.
        let end = removed as i64 + i64::from(10 * DAY);
        s.set_clock_offset(end - 1 - crate::now());
        s.by(crate::Actor::Task("test")).dnssec_maintain(&apex(), None).unwrap();
        assert!(key_rows(&s).contains(&(old as i64)));
        s.set_clock_offset(end - crate::now());
        s.by(crate::Actor::Task("test")).dnssec_maintain(&apex(), None).unwrap();
        let info = s.dnssec_info(&apex()).unwrap().unwrap();
        assert!(!key_rows(&s).contains(&(old as i64)), "the key's row is still there");
        assert!(info.state.keyring.key(old).is_none(), "the keyring still names the purged key");
        // The live keys, and only they, are left, and the zone still signs.
        let live: Vec<i64> = info.keys.iter().map(|k| k.record.id as i64).collect();
        assert_eq!(key_rows(&s), live);
        s.by(crate::Actor::Task("test")).dnssec_refresh(&apex()).unwrap();
        assert!(s.dnssec_signatures(&apex()).unwrap().iter().any(|sig| sig.type_covered == 6));
    }

    #[test]
    fn a_purged_key_leaves_no_trace_in_the_database_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = signed_store(dir.path(), 0);
        let zsk = s.dnssec_private_keys(&apex()).unwrap();
        let (info, pkcs8) = zsk.iter().find(|(k, _)| k.record.role == Role::Zsk).unwrap();
        let secret = scalar(pkcs8);
        let (old, _) = roll_zsk_out(&mut s);
        assert_eq!(old, info.record.id);
        assert!(on_disk(dir.path(), &secret), "the test looks for the wrong octets");
        assert_eq!(s.dnssec_purge_keys(&apex()).unwrap(), vec![info.record.key_tag]);
        assert!(!on_disk(dir.path(), &secret), "the purged private key is still in the files");
        assert!(s.dnssec_purge_keys(&apex()).unwrap().is_empty());
    }

    #[test]
    fn an_unsigned_zone_has_nothing_to_purge() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = signed_store(dir.path(), 0);
        s.by(crate::Actor::Task("test")).dnssec_unsign(&apex(), true).unwrap();
        assert!(s.dnssec_purge_keys(&apex()).unwrap().is_empty());
        assert!(key_rows(&s).is_empty());
    }
}
