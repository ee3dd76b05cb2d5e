//! What the transfer service (`sixgate_server::transfer`) needs from the
//! control plane: who may transfer which zone, from the secondaries the
//! publisher keeps current, and the journal's versions of a zone for
//! IXFR, read from the store.
//!
//! Access follows the configured secondaries (RFC 5936 §5: a primary
//! SHOULD restrict transfers; Knot's `acl`, BIND's `allow-transfer`):
//! a request is served only from the address of a secondary that carries
//! the zone (its port is the NOTIFY port and is not compared; a transfer
//! comes from any source port), and, when that secondary has a key, only
//! signed with that key. Several secondaries may share one address (a
//! Knot and a BIND on one host): a request passes when any of them would
//! pass it, so an unsigned request needs one of them without a key, and a
//! signed one a key one of them has.

use std::net::IpAddr;
use std::sync::Mutex;

use sixgate_dns::name;
use sixgate_dns::tsig::{Algorithm, Key};
use sixgate_dns::xfr::Delta;
use sixgate_server::transfer::{Access, TransferSource};
use sixgate_store::{JournalKind, Store, TransferKey};

use crate::secondaries::{Secondaries, SharedSecondaries};

/// Decides whether `peer` may transfer `zone` (wire, any case) with a
/// request signed by the key named `key` (lowercased wire), or unsigned.
pub fn decide(secondaries: &Secondaries, peer: IpAddr, zone: &[u8], key: Option<&[u8]>) -> Access {
    // The secondaries at the peer's address that carry the zone (the same
    // entries of the list, so compared by address in memory).
    let mut there =
        secondaries.at(peer).filter(|s| secondaries.carrying(zone).any(|c| std::ptr::eq(c, *s))).peekable();
    if there.peek().is_none() {
        return Access::Refused("not a secondary of the zone");
    }
    match key {
        None if there.any(|s| s.key.is_none()) => Access::Unsigned,
        None => Access::Refused("unsigned; the secondary has a key"),
        Some(wanted) => there
            .filter_map(|s| s.key.as_ref())
            .find(|k| k.name.eq_ignore_ascii_case(wanted))
            .and_then(tsig_key)
            .map_or(Access::UnknownKey, Access::Key),
    }
}

/// A stored transfer key as the TSIG code takes it; `None` for an
/// algorithm this build does not know (never stored by the CLI).
fn tsig_key(k: &TransferKey) -> Option<Key> {
    Some(Key::new(&k.name, Algorithm::from_text(&k.algorithm)?, k.secret.clone()))
}

/// The transfer service's view of the control plane.
pub struct StoreTransfers {
    secondaries: SharedSecondaries,
    /// A read-only connection: the journal is read on the blocking
    /// threads, one read at a time. Reads are short (a zone's entries by
    /// id, then the few needed), so one connection does not queue them
    /// long, and SQLite's WAL never makes it wait for the writer.
    reader: Mutex<Store>,
}

impl std::fmt::Debug for StoreTransfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTransfers").finish_non_exhaustive()
    }
}

impl StoreTransfers {
    /// Decides with `secondaries` (the publisher's,
    /// `Follower::secondaries`) and reads the journal through `reader`
    /// (a `Store::reader`).
    pub fn new(secondaries: SharedSecondaries, reader: Store) -> StoreTransfers {
        StoreTransfers { secondaries, reader: Mutex::new(reader) }
    }
}

impl TransferSource for StoreTransfers {
    fn access(&self, peer: IpAddr, zone: &[u8], key: Option<&[u8]>) -> Access {
        decide(&self.secondaries.load(), peer, zone, key)
    }

    fn query_key(&self, key: &[u8]) -> Option<Key> {
        self.secondaries.load().query_key(key)
    }

    fn history(&self, zone: &[u8], from: u32) -> Option<Vec<Delta>> {
        // The catalog zone is derived, not journaled: always sent whole.
        if self.secondaries.load().is_catalog(zone) {
            return None;
        }
        let entries = {
            let reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
            reader.zone_history_since(zone, from)
        };
        let entries = match entries {
            Ok(e) => e?,
            Err(e) => {
                tracing::warn!(zone = %name::to_text(zone), error = %e, "cannot read the journal for IXFR; sending the whole zone");
                return None;
            }
        };
        let mut deltas = Vec::with_capacity(entries.len());
        for entry in entries {
            let JournalKind::Diff(changes) = entry.kind else { return None };
            match Delta::from_changes(changes) {
                Ok(d) => deltas.push(d),
                Err(e) => {
                    tracing::warn!(zone = %name::to_text(zone), journal_id = entry.id, error = %e, "a journal entry is not one version step; sending the whole zone");
                    return None;
                }
            }
        }
        Some(deltas)
    }
}

#[cfg(test)]
mod tests {
    use sixgate_store::Secondary;

    use super::*;

    fn wire(text: &str) -> Box<[u8]> {
        name::from_text(text, None).unwrap()
    }

    fn key(name: &str) -> TransferKey {
        TransferKey { name: wire(name), algorithm: "hmac-sha256".into(), secret: vec![7; 32] }
    }

    fn secondary(addr: &str, key: Option<TransferKey>, catalog: bool, zones: &[&str]) -> Secondary {
        Secondary {
            address: addr.parse().unwrap(),
            key,
            catalog,
            zones: zones.iter().map(|z| wire(z)).collect(),
        }
    }

    fn secondaries(list: Vec<Secondary>) -> Secondaries {
        Secondaries { generation: 1, list, catalog: wire("catalog.invalid."), keys: vec![] }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_secondary_that_carries_the_zone_may_transfer_it() {
        let s = secondaries(vec![
            secondary("127.0.0.1:5301", None, false, &["a.test."]),
            secondary("[2001:db8::1]:53", None, false, &[]),
        ]);
        assert_eq!(decide(&s, ip("127.0.0.1"), &wire("a.test."), None), Access::Unsigned);
        assert_eq!(decide(&s, ip("127.0.0.1"), &wire("A.Test."), None), Access::Unsigned, "any case");
        assert_eq!(
            decide(&s, ip("127.0.0.1"), &wire("b.test."), None),
            Access::Refused("not a secondary of the zone")
        );
        assert_eq!(
            decide(&s, ip("127.0.0.2"), &wire("a.test."), None),
            Access::Refused("not a secondary of the zone"),
            "another address, whatever the port"
        );
        assert_eq!(decide(&s, ip("2001:db8::1"), &wire("b.test."), None), Access::Unsigned, "every zone");
        // The catalog zone goes to catalog followers only.
        assert_eq!(
            decide(&s, ip("2001:db8::1"), &wire("catalog.invalid."), None),
            Access::Refused("not a secondary of the zone")
        );
    }

    #[test]
    fn a_secondary_with_a_key_needs_requests_signed_with_it() {
        let s = secondaries(vec![secondary("127.0.0.1:5301", Some(key("xfr.key.")), true, &[])]);
        let zone = wire("a.test.");
        assert_eq!(
            decide(&s, ip("127.0.0.1"), &zone, None),
            Access::Refused("unsigned; the secondary has a key")
        );
        match decide(&s, ip("::ffff:127.0.0.1"), &zone, Some(&wire("xfr.key."))) {
            Access::Key(k) => assert_eq!((k.name, k.algorithm), (wire("xfr.key."), Algorithm::HmacSha256)),
            other => panic!("{other:?}"),
        }
        assert_eq!(decide(&s, ip("127.0.0.1"), &zone, Some(&wire("other.key."))), Access::UnknownKey);
        assert!(matches!(
            decide(&s, ip("127.0.0.1"), &wire("catalog.invalid."), Some(&wire("xfr.key."))),
            Access::Key(_)
        ));
    }

    #[test]
    fn secondaries_sharing_an_address_each_admit_their_own_requests() {
        // Knot with a key, NSD without, BIND with another key, all on
        // 127.0.0.1; NSD carries one zone only.
        let s = secondaries(vec![
            secondary("127.0.0.1:5301", Some(key("knot.key.")), true, &[]),
            secondary("127.0.0.1:5302", None, false, &["a.test."]),
            secondary("127.0.0.1:5303", Some(key("bind.key.")), false, &[]),
        ]);
        let (a, b) = (wire("a.test."), wire("b.test."));
        let local = ip("127.0.0.1");
        assert_eq!(decide(&s, local, &a, None), Access::Unsigned, "as NSD");
        assert_eq!(
            decide(&s, local, &b, None),
            Access::Refused("unsigned; the secondary has a key"),
            "NSD does not carry b.test."
        );
        assert!(
            matches!(decide(&s, local, &b, Some(&wire("bind.key."))), Access::Key(k) if k.name == wire("bind.key."))
        );
        assert!(
            matches!(decide(&s, local, &a, Some(&wire("knot.key."))), Access::Key(k) if k.name == wire("knot.key."))
        );
        // BIND's key does not open the catalog, which BIND does not follow.
        assert_eq!(
            decide(&s, local, &wire("catalog.invalid."), Some(&wire("bind.key."))),
            Access::UnknownKey
        );
    }

    #[test]
    fn the_history_is_the_journal_as_versions_and_none_across_a_replace() {
        use sixgate_dns::{Change, zonefile};
        use sixgate_store::Actor;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let apex = wire("a.test.");
        let zone = |extra: &str| {
            let text = format!("@ 3600 SOA ns1 hostmaster 1 3600 900 604800 300\n@ 3600 NS ns1\n{extra}");
            zonefile::parse(&text, &apex).unwrap()
        };
        store.by(Actor::Task("test")).replace_zone(&apex, zone("")).unwrap();
        let first = store.serial(&apex).unwrap();
        let www = zonefile::parse("www 300 AAAA 2001:db8::1", &apex).unwrap();
        let c = store.by(Actor::Task("test")).apply(&apex, &[Change::Add(www[0].clone())]).unwrap();
        let source = StoreTransfers::new(
            std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(secondaries(vec![]))),
            store.reader().unwrap(),
        );
        let deltas = source.history(&apex, first).unwrap();
        assert_eq!(deltas.len(), 1);
        assert_eq!((deltas[0].old_serial(), deltas[0].new_serial()), (first, c.serial));
        assert_eq!(deltas[0].added, www);
        assert!(deltas[0].removed.is_empty());
        assert_eq!(source.history(&apex, c.serial).unwrap(), vec![], "up to date");
        // A replace since: the journal cannot lead from before it.
        store.by(Actor::Task("test")).replace_zone(&apex, zone("x 300 TXT x\n")).unwrap();
        assert_eq!(source.history(&apex, first), None);
        assert_eq!(source.history(&wire("catalog.invalid."), 1), None, "the catalog is sent whole");
    }
}
