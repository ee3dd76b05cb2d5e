//! A model of what validating resolvers may hold in their caches while a
//! zone's keys change, and the check that every combination of cached
//! data still validates.
//!
//! The model works on [`ZoneKeys`] (which keys are published and sign
//! what) and on the parent's DS set, not on real signatures; a validator
//! with real signatures is another piece of work. It assumes what the
//! planner assumes: a resolver may hold the zone's DNSKEY RRset (with its
//! signatures) from any view of the zone served during the last DNSKEY
//! TTL plus the propagation delay, any other RRset (with its signatures)
//! from any view served during the last largest TTL plus the propagation
//! delay, and the parent's DS RRset from any state of the parent during
//! the last DS TTL plus the parent's propagation delay. These three are
//! cached independently of each other, so every combination must work.

use std::collections::BTreeSet;

use super::{KeyId, ZoneKeys};

/// A value over time: each entry holds from its time until the next.
pub(super) struct History<T> {
    entries: Vec<(u64, T)>,
}

impl<T: PartialEq> History<T> {
    pub(super) fn new() -> History<T> {
        History { entries: Vec::new() }
    }

    /// Records the value from `at` on (times must not go backwards).
    pub(super) fn record(&mut self, at: u64, value: T) {
        if let Some((t, last)) = self.entries.last_mut() {
            assert!(*t <= at, "history goes backwards");
            if *last == value {
                return;
            }
            if *t == at {
                *last = value;
                return;
            }
        }
        self.entries.push((at, value));
    }

    /// Every value that held at some moment of `from..=to`.
    pub(super) fn window(&self, from: u64, to: u64) -> impl Iterator<Item = &T> {
        let first = self.entries.iter().rposition(|(t, _)| *t <= from).unwrap_or(0);
        self.entries.iter().skip(first).take_while(move |(t, _)| *t <= to).map(|(_, v)| v)
    }

    pub(super) fn current(&self) -> Option<&T> {
        self.entries.last().map(|(_, v)| v)
    }
}

/// The parent's DS set: (key tag, algorithm, the key whose DNSKEY the
/// digest was computed from). A DS whose digest matches no key (a typo at
/// the registrar) names a key id that no DNSKEY has.
pub(super) type DsSet = BTreeSet<(u16, u8, KeyId)>;

/// The zone and its parent over time, and how long caches hold each.
pub(super) struct Model {
    pub(super) zone: History<ZoneKeys>,
    pub(super) parent: History<DsSet>,
    /// DNSKEY TTL plus propagation delay.
    pub(super) dnskey_window: u64,
    /// Largest TTL (at least the DNSKEY TTL) plus propagation delay.
    pub(super) rrset_window: u64,
    /// The parent's real DS TTL plus its propagation delay.
    pub(super) ds_window: u64,
}

impl Model {
    /// Checks every combination of cached DS RRset, DNSKEY RRset and
    /// other RRset that a resolver may hold at `now`.
    pub(super) fn check(&self, now: u64) -> Result<(), String> {
        let since = |w: u64| now.saturating_sub(w);
        for ds in self.parent.window(since(self.ds_window), now) {
            if ds.is_empty() {
                // No DS: the zone is insecure, nothing is validated.
                continue;
            }
            for keys in self.zone.window(since(self.dnskey_window), now) {
                // RFC 4035 §5.2: the DNSKEY RRset validates if a DS matches
                // a DNSKEY in it (digest and all) that signs it.
                let anchor = keys.dnskey.iter().any(|k| {
                    ds.contains(&(k.key_tag, k.algorithm, k.id))
                        && keys.dnskey_signers.iter().any(|s| s.id == k.id)
                });
                if !anchor {
                    return Err(format!(
                        "at {now}: cached DS {ds:?} matches no DNSKEY signing the cached DNSKEY RRset {keys:?}"
                    ));
                }
                let algorithms: BTreeSet<u8> = keys.dnskey.iter().map(|k| k.algorithm).collect();
                for &alg in &algorithms {
                    // RFC 4035 §2.2: every algorithm in the DNSKEY RRset
                    // signs every RRset, the DNSKEY RRset included.
                    if !keys.dnskey_signers.iter().any(|s| s.algorithm == alg) {
                        return Err(format!(
                            "at {now}: DNSKEY RRset {keys:?} lacks a signature of algorithm {alg}"
                        ));
                    }
                }
                for rrsets in self.zone.window(since(self.rrset_window), now) {
                    // A cached RRset validates if one of its cached
                    // signatures is by a key in the cached DNSKEY RRset.
                    let signed = rrsets.zone_signers.iter().any(|s| keys.dnskey.iter().any(|k| k.id == s.id));
                    if !signed {
                        return Err(format!(
                            "at {now}: signatures by {:?} match no key of the cached DNSKEY RRset {:?}",
                            rrsets.zone_signers, keys.dnskey
                        ));
                    }
                    for &alg in &algorithms {
                        if !rrsets.zone_signers.iter().any(|s| s.algorithm == alg) {
                            return Err(format!(
                                "at {now}: signatures by {:?} lack algorithm {alg} of the cached DNSKEY RRset {:?}",
                                rrsets.zone_signers, keys.dnskey
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cds, KeyRef, Role};
    use super::*;

    fn key(id: u64, algorithm: u8) -> KeyRef {
        KeyRef { id, role: Role::Csk, algorithm, key_tag: id as u16 }
    }

    fn signed_by(keys: &[KeyRef]) -> ZoneKeys {
        ZoneKeys {
            dnskey: keys.to_vec(),
            dnskey_signers: keys.to_vec(),
            zone_signers: keys.to_vec(),
            cds: Cds::None,
            ds: Vec::new(),
        }
    }

    fn model() -> Model {
        let mut zone = History::new();
        zone.record(0, signed_by(&[]));
        let mut parent = History::new();
        parent.record(0, DsSet::new());
        Model { zone, parent, dnskey_window: 100, rrset_window: 200, ds_window: 1000 }
    }

    #[test]
    fn catches_a_ds_before_the_unsigned_records_expired() {
        let mut m = model();
        m.zone.record(10, signed_by(&[key(1, 13)]));
        m.parent.record(150, [(1, 13, 1)].into());
        assert!(m.check(150).is_err());
        assert!(m.check(210).is_ok());
    }

    #[test]
    fn catches_a_key_swap_without_pre_publication() {
        let mut m = model();
        m.zone.record(10, signed_by(&[key(1, 13)]));
        m.parent.record(500, [(1, 13, 1), (2, 13, 2)].into());
        assert!(m.check(2000).is_ok());
        // Key 2 published and signing at once, key 1 gone.
        m.zone.record(2000, signed_by(&[key(2, 13)]));
        assert!(m.check(2000).is_err());
    }

    #[test]
    fn catches_a_missing_algorithm() {
        let mut m = model();
        let mut both = signed_by(&[key(1, 13), key(2, 15)]);
        both.zone_signers = vec![key(1, 13)];
        m.zone.record(10, both);
        m.parent.record(500, [(1, 13, 1)].into());
        assert!(m.check(500).unwrap_err().contains("algorithm 15"));
    }

    #[test]
    fn catches_a_ds_with_a_wrong_digest() {
        let mut m = model();
        m.zone.record(10, signed_by(&[key(1, 13)]));
        // Right key tag and algorithm, digest of no key.
        m.parent.record(500, [(1, 13, 0)].into());
        assert!(m.check(500).unwrap_err().contains("matches no DNSKEY"));
    }

    #[test]
    fn window_holds_the_value_in_effect_at_its_start() {
        let mut h = History::new();
        h.record(10, 'a');
        h.record(20, 'b');
        h.record(20, 'c');
        h.record(30, 'c');
        h.record(40, 'd');
        let w = |from, to| h.window(from, to).copied().collect::<String>();
        assert_eq!(w(0, 5), "");
        assert_eq!(w(0, 10), "a");
        assert_eq!(w(15, 25), "ac");
        assert_eq!(w(20, 39), "c");
        assert_eq!(w(25, 45), "cd");
        assert_eq!(h.current(), Some(&'d'));
    }
}
