//! The catalog zone (RFC 9432, version 2): a zone whose content is the
//! list of the other zones, so that catalog-following secondaries (Knot,
//! BIND) pick up a new customer zone, and drop a deleted one, with no
//! configuration of their own.
//!
//! Pure: the caller gives the catalog's name, its serial and the member
//! zones, each with a member id unique to that zone's incarnation; this
//! module gives the records. A zone deleted and created again must get a
//! new id: a changed member label is how RFC 9432 §5.4 tells a secondary
//! to drop what it kept of the old zone instead of reusing it.
//!
//! A member may carry a group (RFC 9432 §4.4.2): sixgate gives each zone
//! its account's name, so that a secondary can treat an account's zones
//! alike (Knot applies the `catalog-template` whose id is the group). A
//! secondary that knows no such group still serves the member: Knot 3.2
//! falls back to its first catalog template, BIND 9.18 ignores the
//! property (it logs the record as invalid and adds the zone), and the
//! e2e lab (tests/e2e/tests/secondary_lab.rs) checks both.

use crate::name::{self, NameError};
use crate::rtype::code as rtype;
use crate::zone::Record;

/// The catalog zone's default name (RFC 9432 §4.1 suggests a name under
/// `invalid.`, which no resolver will ever look up).
pub const DEFAULT_NAME: &str = "catalog.invalid.";

/// RFC 1035 §3.3: a character-string is a length octet and that many
/// octets; a group is one TXT character-string (RFC 9432 §4.4.2).
pub const MAX_GROUP_LEN: usize = 255;

/// RFC 9432 §4.1: TTLs in a catalog zone mean nothing (it is never
/// queried for answers); 0 keeps them from being cached anywhere.
const TTL: u32 = 0;

/// A member of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// The member zone's apex, wire form.
    pub apex: &'a [u8],
    /// Unique to this zone's incarnation (see the module comment).
    pub id: u64,
    /// Its group property (RFC 9432 §4.4.2), if any: at most
    /// [`MAX_GROUP_LEN`] octets.
    pub group: Option<&'a [u8]>,
}

/// Catalog zone errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogZoneError {
    /// The catalog's name with a member label below it is too long.
    #[error("catalog zone name: {0}")]
    Name(#[from] NameError),
    /// A member is the catalog zone itself.
    #[error("the catalog zone cannot list itself")]
    SelfMember,
    /// A group longer than one TXT character-string holds.
    #[error("a group of {0} octets; a group holds at most 255")]
    GroupTooLong(usize),
}

/// The records of the catalog zone `catalog` (wire form) at `serial`
/// listing `members`: SOA and NS at the apex, `version` TXT "2", a PTR
/// per member at `<id>.zones.<catalog>` (RFC 9432 §4), and a TXT at
/// `group.<id>.zones.<catalog>` for a member with a group (§4.4.2).
pub fn records<'a>(
    catalog: &[u8],
    serial: u32,
    members: impl IntoIterator<Item = Member<'a>>,
) -> Result<Vec<Record>, CatalogZoneError> {
    let invalid = name::from_text("invalid.", None)?;
    let mut soa = Vec::with_capacity(2 * invalid.len() + 20);
    soa.extend_from_slice(&invalid); // MNAME
    soa.extend_from_slice(&invalid); // RNAME
    // Secondaries follow NOTIFY; refresh (1 h) and retry (10 min) only
    // bound how long a lost one goes unnoticed. Expire is the largest
    // 31-bit value: a secondary cut off from the primary keeps its list
    // of zones for as long as it can, instead of letting the catalog
    // expire and with it, on some secondaries, every member zone.
    for v in [serial, 3600, 600, 2_147_483_646, 0] {
        soa.extend_from_slice(&v.to_be_bytes());
    }
    let mut out = vec![
        Record { owner: catalog.into(), rtype: rtype::SOA, ttl: TTL, rdata: soa.into() },
        Record { owner: catalog.into(), rtype: rtype::NS, ttl: TTL, rdata: invalid },
        Record {
            owner: name::from_text("version", Some(catalog))?,
            rtype: rtype::TXT,
            ttl: TTL,
            rdata: Box::new([1, b'2']),
        },
    ];
    let zones = name::from_text("zones", Some(catalog))?;
    for m in members {
        // Length octets are below 64, never letters: a case-blind compare
        // of the wire forms compares the names.
        if m.apex.eq_ignore_ascii_case(catalog) {
            return Err(CatalogZoneError::SelfMember);
        }
        let member = name::from_text(&format!("{:016x}", m.id), Some(&zones))?;
        let group = match m.group {
            Some(group) if group.len() > MAX_GROUP_LEN => {
                return Err(CatalogZoneError::GroupTooLong(group.len()));
            }
            Some(group) => {
                let mut rdata = Vec::with_capacity(1 + group.len());
                rdata.push(group.len() as u8);
                rdata.extend_from_slice(group);
                let owner = name::from_text("group", Some(&member))?;
                Some(Record { owner, rtype: rtype::TXT, ttl: TTL, rdata: rdata.into() })
            }
            None => None,
        };
        out.push(Record { owner: member, rtype: rtype::PTR, ttl: TTL, rdata: m.apex.into() });
        out.extend(group);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Zone;

    fn wire(text: &str) -> Box<[u8]> {
        name::from_text(text, None).expect("name")
    }

    /// The catalog as zone file lines, TTL and class left out.
    fn text(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| {
                let mut rdata = String::new();
                assert!(crate::present::write_rdata(&mut rdata, r.rtype, &r.rdata), "{r:?}");
                format!("{} {} {rdata}", name::to_text(&r.owner), crate::zonefile::type_text(r.rtype))
            })
            .collect()
    }

    #[test]
    fn the_catalog_has_the_rfc_9432_layout() {
        let catalog = wire(DEFAULT_NAME);
        let (a, b) = (wire("example.com."), wire("b.test."));
        let members =
            [Member { apex: &a, id: 1, group: Some(b"alice") }, Member { apex: &b, id: 0xabc, group: None }];
        let recs = records(&catalog, 7, members).expect("records");
        assert_eq!(
            text(&recs),
            [
                "catalog.invalid. SOA invalid. invalid. 7 3600 600 2147483646 0",
                "catalog.invalid. NS invalid.",
                "version.catalog.invalid. TXT \"2\"",
                "0000000000000001.zones.catalog.invalid. PTR example.com.",
                "group.0000000000000001.zones.catalog.invalid. TXT \"alice\"",
                "0000000000000abc.zones.catalog.invalid. PTR b.test.",
            ]
        );
        assert!(recs.iter().all(|r| r.ttl == 0));
        // And it is a zone the server can build and serve.
        let zone = Zone::build(&catalog, recs, 0).expect("a valid zone");
        assert_eq!(zone.serial(), Some(7));
    }

    #[test]
    fn a_catalog_listing_itself_is_refused() {
        let catalog = wire(DEFAULT_NAME);
        let me = wire("Catalog.Invalid.");
        let e = records(&catalog, 1, [Member { apex: &me, id: 1, group: None }]).expect_err("itself");
        assert_eq!(e, CatalogZoneError::SelfMember);
    }

    #[test]
    fn a_catalog_name_too_long_for_a_member_label_is_an_error_not_a_panic() {
        // 4 labels of 60 octets: 245 octets, no room for a 16-octet label
        // and "zones".
        let long = format!("{}.", vec!["a".repeat(60); 4].join("."));
        let catalog = wire(&long);
        let a = wire("a.test.");
        assert!(matches!(
            records(&catalog, 1, [Member { apex: &a, id: 1, group: None }]),
            Err(CatalogZoneError::Name(_))
        ));
    }

    #[test]
    fn a_group_is_one_character_string_and_a_longer_one_is_an_error_not_a_panic() {
        let catalog = wire(DEFAULT_NAME);
        let a = wire("a.test.");
        let longest = [b'g'; MAX_GROUP_LEN];
        let recs = records(&catalog, 1, [Member { apex: &a, id: 2, group: Some(&longest) }])
            .expect("255 octets fit");
        let txt =
            recs.iter().find(|r| r.rtype == rtype::TXT && r.owner[..6] == *b"\x05group").expect("group");
        assert_eq!(txt.rdata.len(), 256);
        assert_eq!(txt.rdata[0], 255);
        let zone = Zone::build(&catalog, recs, 0).expect("a valid zone");
        assert_eq!(zone.serial(), Some(1));

        let over = [b'g'; MAX_GROUP_LEN + 1];
        let e = records(&catalog, 1, [Member { apex: &a, id: 2, group: Some(&over) }]).expect_err("256");
        assert_eq!(e, CatalogZoneError::GroupTooLong(256));
    }

    #[test]
    fn an_empty_group_is_an_empty_character_string() {
        let catalog = wire(DEFAULT_NAME);
        let a = wire("a.test.");
        let recs = records(&catalog, 1, [Member { apex: &a, id: 2, group: Some(b"") }]).expect("records");
        assert!(text(&recs).contains(&"group.0000000000000002.zones.catalog.invalid. TXT \"\"".to_owned()));
    }
}
