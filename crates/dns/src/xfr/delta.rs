//! The versions an IXFR is made of, and the choice between IXFR, the
//! current SOA alone and a full AXFR.
//!
//! A [`Delta`] is one version step of a zone as RFC 1995 §4 sends it: the
//! old SOA, the records deleted, the new SOA, the records added. The
//! store's journal keeps each committed write as a list of changes in the
//! order they were made, with the SOA's own change among them;
//! [`Delta::from_changes`] turns such a list into a delta, keeping only
//! its net effect: a client applies all the deletions of a version before
//! its additions (RFC 1995 §4), so a record added and then removed in one
//! write must appear in neither list.

use std::collections::HashMap;

use crate::name;
use crate::rtype::code;
use crate::zone::{Change, Record, soa_serial};

use super::{is_up_to_date, serial_gt};

/// One version step of a zone (RFC 1995 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The SOA of the version before.
    pub old_soa: Record,
    /// Records of the version before that this one lacks.
    pub removed: Vec<Record>,
    /// The SOA of this version.
    pub new_soa: Record,
    /// Records of this version that the one before lacks.
    pub added: Vec<Record>,
}

/// Why a list of changes is not one version step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// No SOA is removed: there is no old version to name.
    #[error("the changes remove no soa")]
    NoOldSoa,
    /// No SOA is added: there is no new version to name.
    #[error("the changes add no soa")]
    NoNewSoa,
    /// A second SOA is removed, or added, besides the net one.
    #[error("the changes hold more than one soa change")]
    SoaTwice,
    /// SOA rdata whose serial cannot be read.
    #[error("malformed soa rdata")]
    BadSoa,
    /// The serial does not move forward (RFC 1982).
    #[error("serial {new} does not follow serial {old}")]
    SerialBackwards {
        /// The old SOA's serial.
        old: u32,
        /// The new SOA's serial.
        new: u32,
    },
}

/// A record as an IXFR deletion matches it: owner (lowercased), type and
/// rdata, without the TTL.
type RecordKey = (Box<[u8]>, u16, Box<[u8]>);

/// What one record went through within a list of changes.
struct Fate {
    /// The record as it was before, when the first change removed it.
    before: Option<Record>,
    /// The record as it is after, when it is there.
    after: Option<Record>,
}

impl Delta {
    /// The delta a list of changes makes, read in order (see the module
    /// docs). The old SOA is the one removed that was not added first;
    /// the new SOA the one added that is not removed later. A record
    /// whose TTL changed is deleted and added again (RFC 1995 §4 matches
    /// deletions without the TTL).
    pub fn from_changes(changes: impl IntoIterator<Item = Change>) -> Result<Delta, DeltaError> {
        let mut old_soa: Option<Record> = None;
        let mut new_soa: Option<Record> = None;
        let mut fates: Vec<Fate> = Vec::new();
        let mut index: HashMap<RecordKey, usize> = HashMap::new();
        for change in changes {
            let record = change.record();
            if record.rtype == code::SOA {
                match change {
                    Change::Remove(r) if new_soa.as_ref().is_some_and(|n| n.rdata == r.rdata) => {
                        new_soa = None
                    }
                    Change::Remove(r) if old_soa.is_none() => old_soa = Some(r),
                    Change::Add(r) if new_soa.is_none() => new_soa = Some(r),
                    _ => return Err(DeltaError::SoaTwice),
                }
                continue;
            }
            let key = (name::to_lowercase(&record.owner), record.rtype, record.rdata.clone());
            match index.get(&key).and_then(|&i| fates.get_mut(i)) {
                Some(fate) => match change {
                    Change::Remove(_) => fate.after = None,
                    Change::Add(r) => fate.after = Some(r),
                },
                // The first change to a record says whether it was there.
                None => {
                    index.insert(key, fates.len());
                    fates.push(match change {
                        Change::Remove(r) => Fate { before: Some(r), after: None },
                        Change::Add(r) => Fate { before: None, after: Some(r) },
                    });
                }
            }
        }
        let old_soa = old_soa.ok_or(DeltaError::NoOldSoa)?;
        let new_soa = new_soa.ok_or(DeltaError::NoNewSoa)?;
        let (old, new) = (serial_of(&old_soa)?, serial_of(&new_soa)?);
        if !serial_gt(new, old) {
            return Err(DeltaError::SerialBackwards { old, new });
        }
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for fate in fates {
            match (fate.before, fate.after) {
                (Some(b), Some(a)) if b.ttl == a.ttl => {}
                (b, a) => {
                    removed.extend(b);
                    added.extend(a);
                }
            }
        }
        Ok(Delta { old_soa, removed, new_soa, added })
    }

    /// The serial of the version before.
    pub fn old_serial(&self) -> u32 {
        soa_serial(&self.old_soa.rdata).unwrap_or(0)
    }

    /// The serial of this version.
    pub fn new_serial(&self) -> u32 {
        soa_serial(&self.new_soa.rdata).unwrap_or(0)
    }

    /// Records an IXFR of this delta sends: both SOAs, the deletions and
    /// the additions. A caller may compare the sum over the deltas with
    /// the zone's size and send the whole zone when that is smaller.
    pub fn record_count(&self) -> usize {
        2 + self.removed.len() + self.added.len()
    }
}

fn serial_of(soa: &Record) -> Result<u32, DeltaError> {
    soa_serial(&soa.rdata).ok_or(DeltaError::BadSoa)
}

/// How to answer an IXFR (RFC 1995 §2, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IxfrPlan {
    /// The client holds the current version or a newer one: the current
    /// SOA alone.
    UpToDate,
    /// The deltas from this index on lead from the client's version to
    /// the current one: send them.
    Incremental {
        /// Index of the client's version step in the deltas given.
        from: usize,
    },
    /// The deltas do not reach back to the client's version, or do not
    /// reach the current one: the whole zone, as AXFR does (RFC 1995 §4).
    Full,
}

/// Chooses how to answer an IXFR from serial `client` for a zone at
/// serial `current`, given its known deltas oldest first (as the journal
/// lists them). A pure function: the same inputs, the same plan.
///
/// The deltas used must form one chain, each new serial the next one's
/// old serial, ending at `current`; the chain is taken from the newest
/// delta back to the first whose old serial is the client's, so older
/// history (before a zone was deleted and made again, say) never mixes
/// in. A gap anywhere on the way, or a client serial nowhere on the
/// chain, gives [`IxfrPlan::Full`].
pub fn plan_ixfr(client: u32, current: u32, deltas: &[Delta]) -> IxfrPlan {
    if is_up_to_date(client, current) {
        return IxfrPlan::UpToDate;
    }
    let mut expect = current;
    for (i, d) in deltas.iter().enumerate().rev() {
        let (old, new) = (d.old_serial(), d.new_serial());
        if new != expect || !serial_gt(new, old) {
            return IxfrPlan::Full;
        }
        if old == client {
            return IxfrPlan::Incremental { from: i };
        }
        expect = old;
    }
    IxfrPlan::Full
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::zonefile;

    pub(in crate::xfr) fn apex() -> Box<[u8]> {
        name::from_text("example.test.", None).unwrap()
    }

    pub(in crate::xfr) fn rec(text: &str) -> Record {
        zonefile::parse(text, &apex()).unwrap().remove(0)
    }

    pub(in crate::xfr) fn soa(serial: u32) -> Record {
        rec(&format!("@ 3600 SOA ns1 hostmaster {serial} 7200 3600 1209600 300"))
    }

    /// A delta from `old` to `new` removing and adding the records given.
    pub(in crate::xfr) fn delta(old: u32, new: u32, removed: &[&str], added: &[&str]) -> Delta {
        Delta {
            old_soa: soa(old),
            removed: removed.iter().map(|t| rec(t)).collect(),
            new_soa: soa(new),
            added: added.iter().map(|t| rec(t)).collect(),
        }
    }

    /// The changes a journal entry holds for `d`: the write's changes,
    /// then the SOA's.
    fn journal_changes(d: &Delta) -> Vec<Change> {
        let mut c: Vec<Change> = d.removed.iter().cloned().map(Change::Remove).collect();
        c.extend(d.added.iter().cloned().map(Change::Add));
        c.push(Change::Remove(d.old_soa.clone()));
        c.push(Change::Add(d.new_soa.clone()));
        c
    }

    #[test]
    fn a_journal_diff_becomes_a_delta() {
        let d = delta(4, 5, &["a 60 A 192.0.2.1", "b 60 TXT old"], &["c 60 A 192.0.2.3"]);
        assert_eq!(Delta::from_changes(journal_changes(&d)).unwrap(), d);
        assert_eq!((d.old_serial(), d.new_serial(), d.record_count()), (4, 5, 5));
    }

    #[test]
    fn only_the_net_effect_of_a_write_is_sent() {
        let a = rec("a 60 A 192.0.2.1");
        let a_ttl = rec("a 300 A 192.0.2.1");
        let b = rec("b 60 A 192.0.2.2");
        let c = rec("C 60 A 192.0.2.3");
        let c_lower = rec("c 60 A 192.0.2.3");
        let changes = vec![
            // Added, then removed: was never there.
            Change::Add(b.clone()),
            Change::Remove(b),
            // Removed, added back with another TTL: deleted and added.
            Change::Remove(a.clone()),
            Change::Add(a_ttl.clone()),
            // Removed, added back the same: nothing.
            Change::Remove(c.clone()),
            Change::Add(c_lower),
            // An edit of the SOA's timers, then the serial's bump.
            Change::Remove(soa(9)),
            Change::Add(rec("@ 3600 SOA ns1 hostmaster 9 1 1 1 1")),
            Change::Remove(rec("@ 3600 SOA ns1 hostmaster 9 1 1 1 1")),
            Change::Add(soa(10)),
        ];
        let d = Delta::from_changes(changes).unwrap();
        assert_eq!(d, Delta { old_soa: soa(9), removed: vec![a], new_soa: soa(10), added: vec![a_ttl] });
    }

    #[test]
    fn a_delta_needs_one_soa_change_forwards() {
        let a = Change::Add(rec("a 60 A 192.0.2.1"));
        assert_eq!(Delta::from_changes([a.clone()]), Err(DeltaError::NoOldSoa));
        assert_eq!(Delta::from_changes([a.clone(), Change::Remove(soa(1))]), Err(DeltaError::NoNewSoa));
        assert_eq!(
            Delta::from_changes([Change::Remove(soa(1)), Change::Remove(soa(2))]),
            Err(DeltaError::SoaTwice)
        );
        assert_eq!(
            Delta::from_changes([Change::Remove(soa(5)), Change::Add(soa(5))]),
            Err(DeltaError::SerialBackwards { old: 5, new: 5 })
        );
        // Across the wrap is forwards.
        let d = Delta::from_changes([Change::Remove(soa(u32::MAX)), Change::Add(soa(0)), a]).unwrap();
        assert_eq!((d.old_serial(), d.new_serial()), (u32::MAX, 0));
    }

    #[test]
    fn the_plan_follows_the_chain_back_to_the_client() {
        let chain = [delta(1, 2, &[], &[]), delta(2, 3, &[], &[]), delta(3, 4, &[], &[])];
        assert_eq!(plan_ixfr(1, 4, &chain), IxfrPlan::Incremental { from: 0 });
        assert_eq!(plan_ixfr(3, 4, &chain), IxfrPlan::Incremental { from: 2 });
        assert_eq!(plan_ixfr(4, 4, &chain), IxfrPlan::UpToDate);
        assert_eq!(plan_ixfr(9, 4, &chain), IxfrPlan::UpToDate, "a client ahead gets the SOA");
        // Before the history, or a serial it never had.
        assert_eq!(plan_ixfr(0, 4, &chain), IxfrPlan::Full);
        assert_eq!(plan_ixfr(0, 4, &[]), IxfrPlan::Full);
        // The deltas stop short of the current serial.
        assert_eq!(plan_ixfr(1, 5, &chain), IxfrPlan::Full);
    }

    #[test]
    fn a_gap_in_the_history_means_a_full_transfer() {
        let gap = [delta(1, 2, &[], &[]), delta(3, 4, &[], &[])];
        assert_eq!(plan_ixfr(1, 4, &gap), IxfrPlan::Full);
        assert_eq!(plan_ixfr(3, 4, &gap), IxfrPlan::Incremental { from: 1 }, "after the gap is fine");
        // A zone deleted and made again: the newest chain counts.
        let again =
            [delta(1, 2, &[], &[]), delta(2, 3, &[], &[]), delta(1, 2, &[], &[]), delta(2, 3, &[], &[])];
        assert_eq!(plan_ixfr(1, 3, &again), IxfrPlan::Incremental { from: 2 });
        // A step that goes backwards is no history to follow.
        let back = [delta(2, 1, &[], &[]), delta(1, 3, &[], &[])];
        assert_eq!(plan_ixfr(2, 3, &back), IxfrPlan::Full);
    }

    #[test]
    fn serials_wrap_within_a_chain() {
        let chain =
            [delta(u32::MAX - 1, u32::MAX, &[], &[]), delta(u32::MAX, 0, &[], &[]), delta(0, 1, &[], &[])];
        assert_eq!(plan_ixfr(u32::MAX - 1, 1, &chain), IxfrPlan::Incremental { from: 0 });
        assert_eq!(plan_ixfr(u32::MAX, 1, &chain), IxfrPlan::Incremental { from: 1 });
        assert_eq!(plan_ixfr(1, 1, &chain), IxfrPlan::UpToDate);
        assert_eq!(plan_ixfr(2, 1, &chain), IxfrPlan::UpToDate, "2 is after 1");
        assert_eq!(plan_ixfr(u32::MAX - 2, 1, &chain), IxfrPlan::Full);
    }
}
