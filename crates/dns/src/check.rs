//! Semantic checks a zone must pass before it is stored.
//!
//! These are the rules every write (zone import, API, UPDATE) is held to:
//! one SOA, at the apex; NS at the apex; CNAME alone at its owner
//! (RFC 1034 §3.6.2, RFC 2181 §10.1) and never at the apex; one TTL per
//! RRset (RFC 2181 §5.2); TTLs within RFC 2181 §8; no meta types; nothing
//! below a DNAME (RFC 6672 §2.3) and no NS beside one below the apex (as
//! Knot refuses both). Data below a delegation is allowed but occluded:
//! [`occluded_by_delegations`] lists it, for a warning.

/// A fast hasher: these maps hold every name of a zone being imported.
type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

use crate::name;
use crate::rtype::{self, code};
use crate::zone::Record;

/// Largest TTL allowed (RFC 2181 §8).
pub const MAX_TTL: u32 = 0x7FFF_FFFF;

/// A rule broken by the record at `index` of the checked slice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct CheckError {
    /// Index of the offending record, if one record is to blame.
    pub index: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

fn err(index: Option<usize>, reason: String) -> CheckError {
    CheckError { index, reason }
}

/// The rules' wording, shared by the whole-zone and per-owner checks.
mod reason {
    use crate::name;

    pub(super) const SOA_OFF_APEX: &str = "SOA is only allowed at the zone apex";
    pub(super) const CNAME_AT_APEX: &str = "CNAME is not allowed at the zone apex";

    pub(super) fn meta_type(rtype: u16) -> String {
        format!("type {rtype} cannot be stored in a zone")
    }

    pub(super) fn ttl_too_large(ttl: u32) -> String {
        format!("TTL {ttl} is above the maximum {}", super::MAX_TTL)
    }

    pub(super) fn two_cnames(owner: &[u8]) -> String {
        format!("{} has more than one CNAME", name::to_text(owner))
    }

    pub(super) fn two_anames(owner: &[u8]) -> String {
        format!("{} has more than one ANAME; an owner has at most one", name::to_text(owner))
    }

    pub(super) fn aname_to_itself(owner: &[u8]) -> String {
        format!("the ANAME at {} points at its own owner (a loop)", name::to_text(owner))
    }

    pub(super) fn aname_and_address(owner: &[u8], rtype: u16) -> String {
        format!(
            "{} has an ANAME, so its A and AAAA records come from the ANAME's target and cannot be set ({} given)",
            name::to_text(owner),
            crate::zonefile::type_text(rtype)
        )
    }

    /// The DNSSEC records sixgate makes itself (`dnssec enable`).
    pub(super) fn managed(owner: &[u8], rtype: u16, rdata: &[u8]) -> String {
        let what = crate::zonefile::type_text(rtype);
        // A DNSKEY names its algorithm in its fourth octet (RFC 4034 §2.1).
        let alg = rdata.get(3).copied().filter(|_| rtype == crate::rtype::code::DNSKEY);
        let known = matches!(alg, Some(8 | 13 | 14 | 15 | 16));
        match alg {
            Some(a) if !known => format!(
                "{} has a DNSKEY of unknown or unsupported algorithm {a}; DNSKEY records are made by sixgate (dnssec enable), remove it",
                name::to_text(owner)
            ),
            _ => format!(
                "{} has a {what} record, but {what} records are made by sixgate's signer: remove them (and any RRSIG, NSEC, NSEC3) and use `sixgate dnssec enable` instead of importing a signed zone",
                name::to_text(owner)
            ),
        }
    }

    pub(super) fn below_dname(owner: &[u8], dname: &[u8]) -> String {
        format!(
            "{} is below the DNAME at {}, which occludes it (RFC 6672 §2.3: no data may exist below a DNAME); remove it or the DNAME",
            name::to_text(owner),
            name::to_text(dname)
        )
    }

    pub(super) fn ns_and_dname(owner: &[u8]) -> String {
        format!(
            "{} has both NS and DNAME records; below the apex a name may have only one of them (RFC 6672 §2.3)",
            name::to_text(owner)
        )
    }

    pub(super) fn cname_and_other(owner: &[u8], rtype: u16) -> String {
        format!(
            "{} has a CNAME and other data ({}); a CNAME must be alone",
            name::to_text(owner),
            crate::zonefile::type_text(rtype)
        )
    }
}

/// Types that may share an owner with a CNAME (RFC 4035 §2.5, RFC 2181
/// §10.1): the DNSSEC records of the CNAME itself.
pub(crate) fn may_accompany_cname(t: u16) -> bool {
    matches!(t, code::CNAME | code::RRSIG | code::NSEC)
}

/// Types that only sixgate's signer writes: a zone is imported unsigned
/// and signed by `dnssec enable`, so these never come from a user.
pub fn is_signer_managed(rtype: u16) -> bool {
    matches!(
        rtype,
        code::RRSIG | code::NSEC | code::NSEC3 | code::NSEC3PARAM | code::DNSKEY | code::CDS | code::CDNSKEY
    )
}

/// Refuses a record of a type only the signer writes.
pub fn check_not_managed(r: &Record) -> Result<(), CheckError> {
    if is_signer_managed(r.rtype) {
        return Err(err(None, reason::managed(&r.owner, r.rtype, &r.rdata)));
    }
    Ok(())
}

/// Checks a whole zone and makes TTLs of each RRset equal to the first
/// RR's TTL (as BIND and Knot do for zone files with mixed TTLs).
pub fn check_zone(apex: &[u8], records: &mut [Record]) -> Result<(), CheckError> {
    let apex_l = name::to_lowercase(apex);
    // (owner, type) -> (first index, ttl, count)
    type SetKey = (Box<[u8]>, u16);
    let mut sets: HashMap<SetKey, (usize, u32, usize)> = HashMap::default();
    let mut soa = None;
    let mut apex_ns = false;
    for (i, r) in records.iter_mut().enumerate() {
        let owner = name::to_lowercase(&r.owner);
        if !name::is_at_or_below(&owner, &apex_l) {
            return Err(err(Some(i), format!("{} is outside the zone", name::to_text(&r.owner))));
        }
        if rtype::is_meta(r.rtype) {
            return Err(err(Some(i), reason::meta_type(r.rtype)));
        }
        if r.ttl > MAX_TTL {
            return Err(err(Some(i), reason::ttl_too_large(r.ttl)));
        }
        if is_signer_managed(r.rtype) {
            return Err(err(Some(i), reason::managed(&r.owner, r.rtype, &r.rdata)));
        }
        if r.rtype == code::SOA {
            if owner != apex_l {
                return Err(err(Some(i), reason::SOA_OFF_APEX.into()));
            }
            if soa.is_some() {
                return Err(err(Some(i), "a zone has exactly one SOA record".into()));
            }
            soa = Some(i);
        }
        if r.rtype == code::NS && owner == apex_l {
            apex_ns = true;
        }
        let e = sets.entry((owner, r.rtype)).or_insert((i, r.ttl, 0));
        e.2 += 1;
        r.ttl = e.1;
    }
    if soa.is_none() {
        return Err(err(None, "the zone has no SOA record at its apex".into()));
    }
    if !apex_ns {
        return Err(err(None, "the zone has no NS records at its apex".into()));
    }
    // CNAME exclusivity: only owners with a CNAME need a second look, so
    // no per-owner lists are built for the (usually many) others.
    let cname_owners: HashMap<&[u8], (usize, usize)> = sets
        .iter()
        .filter(|((_, t), _)| *t == code::CNAME)
        .map(|((owner, _), (i, _, n))| (&owner[..], (*i, *n)))
        .collect();
    for (&owner, &(i, n)) in &cname_owners {
        if owner == &apex_l[..] {
            return Err(err(Some(i), reason::CNAME_AT_APEX.into()));
        }
        if n > 1 {
            return Err(err(Some(i), reason::two_cnames(owner)));
        }
    }
    // ANAME: at most one per owner, not pointing at itself, and no A/AAAA
    // of one's own beside it.
    for (i, r) in records.iter().enumerate() {
        if r.rtype == code::ANAME && name::to_lowercase(&r.rdata) == name::to_lowercase(&r.owner) {
            return Err(err(Some(i), reason::aname_to_itself(&r.owner)));
        }
    }
    for ((owner, t), (i, _, n)) in &sets {
        if *t != code::ANAME {
            continue;
        }
        if *n > 1 {
            return Err(err(Some(*i), reason::two_anames(owner)));
        }
        for addr in [code::A, code::AAAA] {
            if let Some((j, _, _)) = sets.get(&(owner.clone(), addr)) {
                return Err(err(Some((*i).max(*j)), reason::aname_and_address(owner, addr)));
            }
        }
    }
    // RFC 6672 §2.3: nothing below a DNAME; Knot refuses such a zone
    // ("child record exists under DNAME") and so do we, on every write.
    let dnames: hashbrown::HashSet<&[u8], foldhash::fast::RandomState> =
        sets.keys().filter(|(_, t)| *t == code::DNAME).map(|(o, _)| &o[..]).collect();
    if !dnames.is_empty() {
        let mut worst: Option<(usize, String)> = None;
        for ((owner, t), (i, _, _)) in &sets {
            if *t == code::NS && owner[..] != apex_l[..] && dnames.contains(&owner[..]) {
                worst = worst.filter(|(w, _)| w < i).or(Some((*i, reason::ns_and_dname(owner))));
            }
            if let Some(d) = dname_above(owner, &apex_l, |a| dnames.contains(a)) {
                worst = worst.filter(|(w, _)| w < i).or(Some((*i, reason::below_dname(owner, d))));
            }
        }
        if let Some((i, reason)) = worst {
            return Err(err(Some(i), reason));
        }
    }
    if !cname_owners.is_empty() {
        for ((owner, t), (j, _, _)) in &sets {
            if let Some(&(i, _)) = cname_owners.get(&owner[..])
                && !may_accompany_cname(*t)
            {
                return Err(err(Some(i.max(*j)), reason::cname_and_other(owner, *t)));
            }
        }
    }
    Ok(())
}

/// The DNAME owner at a proper ancestor of `owner` (both lowercased), up
/// to the apex, for which `is_dname` holds; the topmost if several.
pub fn dname_above<'a>(owner: &'a [u8], apex: &[u8], is_dname: impl Fn(&[u8]) -> bool) -> Option<&'a [u8]> {
    let mut found = None;
    let mut p = name::parent(owner);
    while let Some(a) = p.filter(|a| a.len() >= apex.len()) {
        if is_dname(a) {
            found = Some(a);
        }
        p = name::parent(a);
    }
    found
}

/// Refuses data at `owner` below the DNAME at `dname` (RFC 6672 §2.3).
pub fn below_dname(owner: &[u8], dname: &[u8]) -> CheckError {
    err(None, reason::below_dname(owner, dname))
}

/// A record kept but not served: at or below a delegation, and neither
/// the delegation's NS and DS nor glue (addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occluded {
    /// Index of the record in the checked slice.
    pub index: usize,
    /// The record's owner, presentation form.
    pub owner: String,
    /// The record's type.
    pub rtype: u16,
    /// The delegation point, presentation form.
    pub cut: String,
}

impl std::fmt::Display for Occluded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} is at or below the delegation {} and is not served (occluded by the cut, RFC 1034 §4.2.1)",
            self.owner,
            crate::zonefile::type_text(self.rtype),
            self.cut
        )
    }
}

/// The records of a checked zone that a delegation occludes (for a
/// warning: they are kept, as Knot keeps them, but never answered from or
/// signed). Glue (A and AAAA) below a cut is not listed.
pub fn occluded_by_delegations(apex: &[u8], records: &[Record]) -> Vec<Occluded> {
    let apex_l = name::to_lowercase(apex);
    let cuts: hashbrown::HashSet<Box<[u8]>, foldhash::fast::RandomState> = records
        .iter()
        .filter(|r| r.rtype == code::NS)
        .map(|r| name::to_lowercase(&r.owner))
        .filter(|o| *o != apex_l)
        .collect();
    if cuts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (index, r) in records.iter().enumerate() {
        if matches!(r.rtype, code::A | code::AAAA) {
            continue;
        }
        let owner = name::to_lowercase(&r.owner);
        let at_cut = cuts.contains(&owner) && !matches!(r.rtype, code::NS | code::DS);
        let above = dname_above(&owner, &apex_l, |a| a.len() > apex_l.len() && cuts.contains(a));
        let cut = match (above, at_cut) {
            (Some(c), _) => c,
            (None, true) => &owner[..],
            (None, false) => continue,
        };
        out.push(Occluded { index, owner: name::to_text(&r.owner), rtype: r.rtype, cut: name::to_text(cut) });
    }
    out
}

/// Checks the records at one owner after a change (the incremental form
/// of [`check_zone`]'s per-owner rules).
pub fn check_owner(apex: &[u8], owner: &[u8], records: &[Record]) -> Result<(), CheckError> {
    let apex_l = name::to_lowercase(apex);
    let owner_l = name::to_lowercase(owner);
    if !name::is_at_or_below(&owner_l, &apex_l) {
        return Err(err(None, format!("{} is outside the zone", name::to_text(owner))));
    }
    let count = |t: u16| records.iter().filter(|r| r.rtype == t).count();
    let cnames = count(code::CNAME);
    if cnames > 0 {
        if owner_l == apex_l {
            return Err(err(None, reason::CNAME_AT_APEX.into()));
        }
        if cnames > 1 {
            return Err(err(None, reason::two_cnames(owner)));
        }
        if let Some(r) = records.iter().find(|r| !may_accompany_cname(r.rtype)) {
            return Err(err(None, reason::cname_and_other(owner, r.rtype)));
        }
    }
    match count(code::ANAME) {
        0 => {}
        1 => {
            if records.iter().any(|r| r.rtype == code::ANAME && name::to_lowercase(&r.rdata) == owner_l) {
                return Err(err(None, reason::aname_to_itself(owner)));
            }
            if let Some(r) = records.iter().find(|r| r.rtype == code::A || r.rtype == code::AAAA) {
                return Err(err(None, reason::aname_and_address(owner, r.rtype)));
            }
        }
        _ => return Err(err(None, reason::two_anames(owner))),
    }
    if owner_l != apex_l && count(code::NS) > 0 && count(code::DNAME) > 0 {
        return Err(err(None, reason::ns_and_dname(owner)));
    }
    let soas = count(code::SOA);
    if owner_l == apex_l {
        if soas != 1 {
            return Err(err(None, "the apex must have exactly one SOA record".into()));
        }
        if count(code::NS) == 0 {
            return Err(err(None, "the apex must keep at least one NS record".into()));
        }
    } else if soas > 0 {
        return Err(err(None, reason::SOA_OFF_APEX.into()));
    }
    for r in records {
        if r.ttl > MAX_TTL {
            return Err(err(None, reason::ttl_too_large(r.ttl)));
        }
        if rtype::is_meta(r.rtype) {
            return Err(err(None, reason::meta_type(r.rtype)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zonefile::parse;

    fn check(text: &str) -> Result<(), CheckError> {
        let apex = name::from_text("example.com.", None).unwrap();
        let mut recs = parse(text, &apex).unwrap();
        check_zone(&apex, &mut recs)
    }

    const HEAD: &str = "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\n";

    #[test]
    fn a_good_zone_passes() {
        check(&format!("{HEAD}www 300 A 192.0.2.1\nalias 300 CNAME www\n")).unwrap();
    }

    #[test]
    fn cname_beside_other_data_is_refused() {
        let e = check(&format!("{HEAD}www 300 A 192.0.2.1\nwww 300 CNAME x\n")).unwrap_err();
        assert!(e.reason.contains("CNAME and other data"), "{e}");
        assert_eq!(e.index, Some(3));
        let e = check(&format!("{HEAD}@ 300 CNAME x\n")).unwrap_err();
        assert!(e.reason.contains("apex"), "{e}");
    }

    #[test]
    fn soa_and_ns_rules() {
        assert!(check("@ 300 NS ns\n").unwrap_err().reason.contains("no SOA"));
        assert!(check("@ 300 SOA ns hm 1 2 3 4 5\n").unwrap_err().reason.contains("no NS"));
        let e = check(&format!("{HEAD}www 300 SOA ns hm 1 2 3 4 5\n")).unwrap_err();
        assert!(e.reason.contains("only allowed at the zone apex"), "{e}");
    }

    #[test]
    fn aname_rules() {
        check(&format!(
            "{HEAD}@ 300 ANAME host.example.net.\n@ 300 MX 10 mail\nwww 300 ANAME @.example.com.\n"
        ))
        .unwrap();
        let e = check(&format!("{HEAD}www 300 ANAME a.example.net.\nwww 300 CNAME b.example.net.\n"))
            .unwrap_err();
        assert!(e.reason.contains("CNAME and other data"), "{e}");
        let e = check(&format!("{HEAD}www 300 ANAME a.example.net.\nwww 300 ANAME b.example.net.\n"))
            .unwrap_err();
        assert!(e.reason.contains("more than one ANAME"), "{e}");
        let e = check(&format!("{HEAD}@ 300 ANAME a.example.net.\n@ 300 AAAA 2001:db8::1\n")).unwrap_err();
        assert!(e.reason.contains("has an ANAME"), "{e}");
        let e = check(&format!("{HEAD}www 300 ANAME WWW.example.com.\n")).unwrap_err();
        assert!(e.reason.contains("its own owner"), "{e}");
        let apex = name::from_text("example.com.", None).unwrap();
        let recs = parse(&format!("{HEAD}@ 300 ANAME a.example.net.\n@ 300 A 192.0.2.1\n"), &apex).unwrap();
        assert!(check_owner(&apex, &apex, &recs).unwrap_err().reason.contains("has an ANAME"));
    }

    #[test]
    fn signed_zones_and_dnskeys_are_refused_on_import() {
        let check = |t: &str| check(&format!("{HEAD}ns 300 A 192.0.2.1\n{t}"));
        let e = check("@ 3600 IN RRSIG SOA 13 1 3600 20270101000000 20260101000000 1 example.com. AAAA\n")
            .unwrap_err();
        assert!(e.reason.contains("RRSIG records are made by sixgate's signer"), "{}", e.reason);
        assert!(e.reason.contains("dnssec enable"), "{}", e.reason);
        assert_eq!(e.index, Some(3));
        let e = check("@ 3600 IN DNSKEY 257 3 99 AAAA\n").unwrap_err();
        assert!(e.reason.contains("unknown or unsupported algorithm 99"), "{}", e.reason);
        let e = check("@ 3600 IN NSEC3PARAM 1 0 0 -\n").unwrap_err();
        assert!(e.reason.contains("NSEC3PARAM"), "{}", e.reason);
        // DS at a delegation is the child's, and stays the user's.
        check("sub 3600 IN NS ns.sub\nns.sub 3600 IN A 192.0.2.1\nsub 3600 IN DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000\n").unwrap();
    }

    /// RFC 6672 §2.3; Knot refuses to load such a zone.
    #[test]
    fn data_below_a_dname_is_refused() {
        let e = check(&format!("{HEAD}d 300 DNAME t.example.net.\nhost.d 300 A 192.0.2.2\n")).unwrap_err();
        assert!(e.reason.contains("host.d.example.com. is below the DNAME at d.example.com."), "{e}");
        assert_eq!(e.index, Some(3));
        // Below an empty non-terminal below it, and below a DNAME at the apex.
        let e = check(&format!("{HEAD}d 300 DNAME t.example.net.\nx.y.d 300 TXT hi\n")).unwrap_err();
        assert!(e.reason.contains("x.y.d.example.com. is below the DNAME"), "{e}");
        let e = check(&format!("{HEAD}@ 300 DNAME t.example.net.\nns 300 A 192.0.2.1\n")).unwrap_err();
        assert!(e.reason.contains("below the DNAME at example.com."), "{e}");
        let e = check(&format!("{HEAD}d 300 DNAME t.example.net.\nd 300 NS ns\n")).unwrap_err();
        assert!(e.reason.contains("both NS and DNAME"), "{e}");
        let apex = name::from_text("example.com.", None).unwrap();
        let d = name::from_text("d.example.com.", None).unwrap();
        let recs = parse("d 300 DNAME t.example.net.\nd 300 NS ns\n", &apex).unwrap();
        assert!(check_owner(&apex, &d, &recs).unwrap_err().reason.contains("both NS and DNAME"));
        // A DNAME with nothing below it, beside other data, passes.
        check(&format!("{HEAD}d 300 DNAME t.example.net.\nd 300 TXT hi\nother 300 A 192.0.2.3\n")).unwrap();
    }

    #[test]
    fn data_below_a_delegation_is_occluded_with_a_warning() {
        let apex = name::from_text("example.com.", None).unwrap();
        let text = format!(
            "{HEAD}sub 300 NS ns.sub\nsub 300 MX 10 mail\nns.sub 300 A 192.0.2.1\nx.sub 300 TXT hi\nsub 300 DS 1 13 2 00\n"
        );
        let mut recs = parse(&text, &apex).unwrap();
        check_zone(&apex, &mut recs).unwrap();
        let found: Vec<String> =
            occluded_by_delegations(&apex, &recs).iter().map(|o| o.to_string()).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .any(|w| w.starts_with("sub.example.com. MX is at or below the delegation sub.example.com."))
        );
        assert!(
            found
                .iter()
                .any(|w| w
                    .starts_with("x.sub.example.com. TXT is at or below the delegation sub.example.com."))
        );
        assert!(occluded_by_delegations(&apex, &parse(HEAD, &apex).unwrap()).is_empty());
    }

    #[test]
    fn mixed_ttls_are_unified() {
        let apex = name::from_text("example.com.", None).unwrap();
        let mut recs = parse(&format!("{HEAD}www 300 A 192.0.2.1\nwww 60 A 192.0.2.2\n"), &apex).unwrap();
        check_zone(&apex, &mut recs).unwrap();
        assert!(recs.iter().filter(|r| r.rtype == code::A).all(|r| r.ttl == 300));
    }
}
