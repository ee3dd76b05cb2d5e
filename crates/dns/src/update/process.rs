//! What an UPDATE means for a zone: prerequisites (RFC 2136 §3.2), the
//! update section's prescan (§3.4.1) and the changes it makes (§3.4.2).
//!
//! The zone is read through [`ZoneView`]. [`changes`] edits a copy of each
//! owner it touches (the overlay), so every update RR sees the ones before
//! it, as §3.4.2 requires, and then returns the difference between the
//! overlay and the view. Whole-zone rules (one SOA, CNAME alone, TTL
//! limits) stay with the store's checker; the rules here are the ones
//! RFC 2136 states as "ignore this RR".

use std::collections::{HashMap, HashSet};

use super::{CLASS_NONE, Rcode, Update, UpdateRr, same_rdata};
use crate::check::may_accompany_cname;
use crate::name;
use crate::rtype::{self, CLASS_ANY, code};
use crate::zone::{Change, Record, Zone};

/// WKS (RFC 1035 §3.4.2): duplicates are by address and protocol.
const WKS: u16 = 11;

/// Read access to the zone being updated. Owners are lowercased wire
/// names; returned records keep their stored case.
pub trait ZoneView {
    /// The records of one RRset (empty if there is none).
    fn rrset(&self, owner: &[u8], rtype: u16) -> Vec<Record>;
    /// Every record at one owner (empty for an empty non-terminal).
    fn owner_records(&self, owner: &[u8]) -> Vec<Record>;
}

impl ZoneView for Zone {
    fn rrset(&self, owner: &[u8], rtype: u16) -> Vec<Record> {
        let Some(node) = self.node(owner) else {
            return Vec::new();
        };
        let Some(set) = node.rrset(rtype) else {
            return Vec::new();
        };
        set.rdatas()
            .map(|rd| Record { owner: node.name().into(), rtype, ttl: set.ttl, rdata: rd.into() })
            .collect()
    }

    fn owner_records(&self, owner: &[u8]) -> Vec<Record> {
        let Some(node) = self.node(owner) else {
            return Vec::new();
        };
        node.rrsets()
            .flat_map(|set| {
                set.rdatas().map(move |rd| Record {
                    owner: node.name().into(),
                    rtype: set.rtype,
                    ttl: set.ttl,
                    rdata: rd.into(),
                })
            })
            .collect()
    }
}

/// A prerequisite RRset: owner (lowercased), type, rdatas.
type ValueSet<'a> = (Box<[u8]>, u16, Vec<&'a [u8]>);

/// Checks the prerequisite section against the zone (RFC 2136 §3.2.5).
/// `apex` is the zone's name.
pub fn check_prerequisites(apex: &[u8], update: &Update, view: &dyn ZoneView) -> Result<(), Rcode> {
    let apex = name::to_lowercase(apex);
    // "RRset exists (value dependent)" prerequisites, gathered into RRsets
    // by (owner, type) in order of first appearance (§3.2.3).
    let mut sets: Vec<ValueSet<'_>> = Vec::new();
    let mut index: HashMap<(Box<[u8]>, u16), usize> = HashMap::new();
    for rr in &update.prerequisites {
        if rr.ttl != 0 {
            return Err(Rcode::FormErr);
        }
        let owner = name::to_lowercase(&rr.owner);
        if !name::is_at_or_below(&owner, &apex) {
            return Err(Rcode::NotZone);
        }
        match rr.class {
            CLASS_ANY | CLASS_NONE if !rr.rdata.is_empty() => return Err(Rcode::FormErr),
            // §3.2.1: name in use / RRset exists (value independent). An
            // empty non-terminal owns no RRs, so it is not "in use" (§2.4.4).
            CLASS_ANY if rr.rtype == code::ANY => {
                if view.owner_records(&owner).is_empty() {
                    return Err(Rcode::NxDomain);
                }
            }
            CLASS_ANY => {
                if view.rrset(&owner, rr.rtype).is_empty() {
                    return Err(Rcode::NxRrSet);
                }
            }
            // §3.2.2: name not in use / RRset does not exist.
            CLASS_NONE if rr.rtype == code::ANY => {
                if !view.owner_records(&owner).is_empty() {
                    return Err(Rcode::YxDomain);
                }
            }
            CLASS_NONE => {
                if !view.rrset(&owner, rr.rtype).is_empty() {
                    return Err(Rcode::YxRrSet);
                }
            }
            c if c == update.zone_class => {
                let i = *index.entry((owner.clone(), rr.rtype)).or_insert_with(|| {
                    sets.push((owner, rr.rtype, Vec::new()));
                    sets.len() - 1
                });
                if let Some((_, _, rdatas)) = sets.get_mut(i) {
                    rdatas.push(&rr.rdata);
                }
            }
            _ => return Err(Rcode::FormErr),
        }
    }
    // §3.2.3: each gathered RRset must equal the zone's, "same members,
    // no more, no less" (duplicates in the request count once).
    for (owner, rtype, wanted) in sets {
        let have = view.rrset(&owner, rtype);
        let covered = wanted.iter().all(|w| have.iter().any(|h| same_rdata(rtype, w, &h.rdata)));
        let exact = have.iter().all(|h| wanted.iter().any(|w| same_rdata(rtype, w, &h.rdata)));
        if !covered || !exact {
            return Err(Rcode::NxRrSet);
        }
    }
    Ok(())
}

/// Checks the update section before anything is changed (RFC 2136
/// §3.4.1): names inside the zone, and class, type, TTL and rdata forms
/// that make sense. Adds must carry well-formed rdata of their type.
pub fn prescan(apex: &[u8], update: &Update) -> Result<(), Rcode> {
    let apex = name::to_lowercase(apex);
    for rr in &update.updates {
        let owner = name::to_lowercase(&rr.owner);
        if !name::is_at_or_below(&owner, &apex) {
            return Err(Rcode::NotZone);
        }
        let meta = rtype::is_meta(rr.rtype);
        let ok = match rr.class {
            // Add: no meta type (ANY, AXFR, MAILA, MAILB, OPT, TSIG...).
            c if c == update.zone_class => !meta && crate::zonefile::check_rdata(rr.rtype, &rr.rdata).is_ok(),
            // Delete an RRset, or every RRset (type ANY) of a name.
            CLASS_ANY => rr.ttl == 0 && rr.rdata.is_empty() && (!meta || rr.rtype == code::ANY),
            // Delete one RR.
            CLASS_NONE => rr.ttl == 0 && !meta,
            _ => false,
        };
        if !ok {
            return Err(Rcode::FormErr);
        }
    }
    Ok(())
}

/// The zone changes the update section makes (RFC 2136 §3.4.2), after
/// [`prescan`] (run here again, so callers may skip it).
///
/// `allow(owner, rtype)` is the caller's policy (§3.3), asked with the
/// lowercased owner about the type of every update RR (except type ANY)
/// and about the type of every resulting change. One refusal refuses the
/// whole message with REFUSED.
///
/// Deletes become [`Change::Remove`] of the records that exist, as
/// stored; adds become [`Change::Add`]. The removes come first. A message
/// that ends where the zone began yields no changes at all.
pub fn changes(
    apex: &[u8],
    update: &Update,
    view: &dyn ZoneView,
    allow: &dyn Fn(&[u8], u16) -> bool,
) -> Result<Vec<Change>, Rcode> {
    prescan(apex, update)?;
    let apex = name::to_lowercase(apex);
    for rr in &update.updates {
        if rr.rtype != code::ANY && !allow(&name::to_lowercase(&rr.owner), rr.rtype) {
            return Err(Rcode::Refused);
        }
    }
    let mut overlay = Overlay::new(view);
    for rr in &update.updates {
        let owner = name::to_lowercase(&rr.owner);
        let at_apex = owner == apex;
        let records = overlay.owner(&owner);
        let is_apex_pair = |t: u16| at_apex && (t == code::SOA || t == code::NS);
        match rr.class {
            c if c == update.zone_class => add(records, rr),
            // §3.4.2.3: delete all RRsets from a name; at the apex the SOA
            // and NS RRsets stay.
            CLASS_ANY if rr.rtype == code::ANY => records.retain(|r| is_apex_pair(r.rtype)),
            // §3.4.2.3: delete an RRset, but never the apex SOA or NS.
            CLASS_ANY if is_apex_pair(rr.rtype) => {}
            CLASS_ANY => records.retain(|r| r.rtype != rr.rtype),
            CLASS_NONE => delete_rr(records, rr, at_apex),
            _ => return Err(Rcode::FormErr),
        }
    }
    let out = overlay.diff();
    for c in &out {
        let (Change::Add(r) | Change::Remove(r)) = c;
        if !allow(&name::to_lowercase(&r.owner), r.rtype) {
            return Err(Rcode::Refused);
        }
    }
    Ok(out)
}

/// §3.4.2.2: adds `rr` to the records of its owner.
fn add(records: &mut Vec<Record>, rr: &UpdateRr) {
    // The store owns the SOA and bumps its serial on every change, so an
    // SOA from a client could only fight it; RFC 2136 already ignores any
    // SOA whose serial does not move forward.
    if rr.rtype == code::SOA {
        return;
    }
    // A CNAME is ignored where other data exists, and other data where a
    // CNAME exists; a CNAME replaces a CNAME. The DNSSEC records of a
    // CNAME may stand beside it (RFC 2181 §10.1, RFC 4035 §2.5).
    if rr.rtype == code::CNAME {
        if records.iter().any(|r| !may_accompany_cname(r.rtype)) {
            return;
        }
        records.retain(|r| r.rtype != code::CNAME);
    } else if !may_accompany_cname(rr.rtype) && records.iter().any(|r| r.rtype == code::CNAME) {
        return;
    }
    // A duplicate replaces the RR it duplicates, in place (which changes
    // at most its TTL, or the case of a name in it).
    let duplicates = |r: &Record| {
        r.rtype == rr.rtype
            && if rr.rtype == WKS {
                r.rdata.get(..5) == rr.rdata.get(..5)
            } else {
                same_rdata(rr.rtype, &r.rdata, &rr.rdata)
            }
    };
    let new = Record { owner: rr.owner.clone(), rtype: rr.rtype, ttl: rr.ttl, rdata: rr.rdata.clone() };
    match records.iter().position(duplicates) {
        Some(i) => {
            let mut at = 0;
            records.retain(|r| {
                at += 1;
                at - 1 == i || !duplicates(r)
            });
            if let Some(slot) = records.get_mut(i) {
                *slot = new;
            }
        }
        None => records.push(new),
    }
    // RFC 2181 §5.2: one TTL per RRset; the store gives the newest to all.
    for r in records.iter_mut().filter(|r| r.rtype == rr.rtype) {
        r.ttl = rr.ttl;
    }
}

/// §3.4.2.4: deletes the RRs equal to `rr` from its owner, except the
/// SOA, and except the last NS at the apex.
fn delete_rr(records: &mut Vec<Record>, rr: &UpdateRr, at_apex: bool) {
    if rr.rtype == code::SOA {
        return;
    }
    let matches = |r: &Record| r.rtype == rr.rtype && same_rdata(rr.rtype, &r.rdata, &rr.rdata);
    if at_apex && rr.rtype == code::NS {
        let ns = records.iter().filter(|r| r.rtype == code::NS).count();
        let gone = records.iter().filter(|r| matches(r)).count();
        if gone > 0 && gone == ns {
            return;
        }
    }
    records.retain(|r| !matches(r));
}

/// An owner's records as the view had them, and as they are now.
type Versions = (Vec<Record>, Vec<Record>);

/// The owners an update has touched: each as the view had it and as the
/// update has left it so far.
struct Overlay<'v> {
    view: &'v dyn ZoneView,
    /// Lowercased owner -> (original, current).
    owners: HashMap<Box<[u8]>, Versions>,
    /// Owners in the order first touched, so the changes come out in a
    /// stable order.
    order: Vec<Box<[u8]>>,
}

impl<'v> Overlay<'v> {
    fn new(view: &'v dyn ZoneView) -> Self {
        Overlay { view, owners: HashMap::new(), order: Vec::new() }
    }

    /// The current records of `owner` (lowercased), loaded on first use.
    fn owner(&mut self, owner: &[u8]) -> &mut Vec<Record> {
        let (view, order) = (self.view, &mut self.order);
        let (_, current) = self.owners.entry(owner.into()).or_insert_with(|| {
            order.push(owner.into());
            let original = view.owner_records(owner);
            (original.clone(), original)
        });
        current
    }

    /// Removes of what is gone, then adds of what is new or has a new TTL.
    fn diff(mut self) -> Vec<Change> {
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        for owner in &self.order {
            let Some((original, current)) = self.owners.remove(owner) else {
                continue;
            };
            let now: HashSet<(u16, &[u8])> = current.iter().map(|r| (r.rtype, &r.rdata[..])).collect();
            let before: HashMap<(u16, &[u8]), u32> =
                original.iter().map(|r| ((r.rtype, &r.rdata[..]), r.ttl)).collect();
            for r in &original {
                if !now.contains(&(r.rtype, &r.rdata[..])) {
                    removes.push(Change::Remove(r.clone()));
                }
            }
            for r in &current {
                if before.get(&(r.rtype, &r.rdata[..])) != Some(&r.ttl) {
                    adds.push(Change::Add(r.clone()));
                }
            }
        }
        removes.extend(adds);
        removes
    }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
