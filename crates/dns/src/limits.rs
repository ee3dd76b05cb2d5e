//! Size limits every write is held to.
//!
//! A zone is data that many tenants share one server with, so what one
//! writer may store is bounded here, in the check every writer passes
//! (the store's write path calls it for each owner a change touches and
//! for whole zones on import):
//!
//! - **Every account, the operator's too:** an RRset's wire size is at
//!   most [`RRSET_OCTETS`]. An RRset that does not fit a DNS message
//!   cannot be answered at all, and the zone snapshot cannot even hold
//!   one over 65535 octets; a limit at half of that leaves room in a TCP
//!   response (RFC 1035 §4.2.2, 65535 octets) for the question, the
//!   RRSIGs of two keys during an algorithm rollover, the SOA or NS of
//!   the authority section, OPT and TSIG.
//! - **Customer accounts:** records per RRset, RRsets per name and names
//!   per zone, with defaults in [`SizeLimits::CUSTOMER`] and per-account
//!   values set by the operator. The operator account has none of these,
//!   so its million-record zones still import.
//!
//! A write over a limit is refused whole, with a [`LimitError`] that
//! names the limit.

use crate::name;
use crate::zone::Record;

/// Largest wire size of one RRset, in octets (see the module docs).
pub const RRSET_OCTETS: u64 = 32768;

/// Octets an RR adds to a message besides its rdata: a compressed owner
/// (a 2-octet pointer), type, class, TTL and rdata length (RFC 1035
/// §4.1.3).
const RR_OVERHEAD: u64 = 2 + 2 + 2 + 4 + 2;

/// The limits one account's zones are held to, besides [`RRSET_OCTETS`];
/// `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Records in one RRset.
    pub records_per_rrset: Option<u64>,
    /// RRsets (types) at one name.
    pub rrsets_per_name: Option<u64>,
    /// Names with records in one zone.
    pub names_per_zone: Option<u64>,
}

impl SizeLimits {
    /// The operator's account: only the message-size limit.
    pub const OPERATOR: SizeLimits =
        SizeLimits { records_per_rrset: None, rrsets_per_name: None, names_per_zone: None };

    /// The defaults for a customer account. Generous for hosting (a round
    /// robin of hundreds of addresses, tens of types at a name, a hundred
    /// thousand names) and small enough that no tenant can make the
    /// snapshot, a transfer or a signing run of everyone's server huge.
    pub const CUSTOMER: SizeLimits = SizeLimits {
        records_per_rrset: Some(1000),
        rrsets_per_name: Some(64),
        names_per_zone: Some(100_000),
    };
}

/// A write over a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {value} {unit} over the {limit} limit of {max}")]
#[non_exhaustive]
pub struct LimitError {
    /// What is too large (an RRset, a name, a zone, an account).
    pub what: String,
    /// Its size with the write.
    pub value: u64,
    /// What `value` counts.
    pub unit: &'static str,
    /// The limit's name, as set in configuration and shown in errors.
    pub limit: &'static str,
    /// The limit.
    pub max: u64,
}

impl LimitError {
    /// A limit error; `what` is shown as given.
    pub fn new(what: String, value: u64, unit: &'static str, limit: &'static str, max: u64) -> LimitError {
        LimitError { what, value, unit, limit, max }
    }
}

/// The wire size of an RRset with these rdata lengths.
pub fn rrset_octets(rdata_lens: impl IntoIterator<Item = usize>) -> u64 {
    rdata_lens.into_iter().map(|l| RR_OVERHEAD + l as u64).sum()
}

fn rrset_what(owner: &[u8], rtype: u16) -> String {
    format!("{} {}", name::to_text(owner), crate::zonefile::type_text(rtype))
}

/// Checks one RRset (all given records share owner and type).
pub fn check_rrset(
    owner: &[u8],
    rtype: u16,
    rdata_lens: &[usize],
    limits: &SizeLimits,
) -> Result<(), LimitError> {
    let octets = rrset_octets(rdata_lens.iter().copied());
    if octets > RRSET_OCTETS {
        return Err(LimitError::new(
            rrset_what(owner, rtype),
            octets,
            "octets",
            "rrset_octets",
            RRSET_OCTETS,
        ));
    }
    if let Some(max) = limits.records_per_rrset
        && rdata_lens.len() as u64 > max
    {
        return Err(LimitError::new(
            rrset_what(owner, rtype),
            rdata_lens.len() as u64,
            "records",
            "records_per_rrset",
            max,
        ));
    }
    Ok(())
}

/// Checks every record at one owner (all given records share it, in any
/// case).
pub fn check_owner(owner: &[u8], records: &[Record], limits: &SizeLimits) -> Result<(), LimitError> {
    let mut types: Vec<(u16, usize)> = records.iter().map(|r| (r.rtype, r.rdata.len())).collect();
    check_types(owner, &mut types, limits)
}

/// Checks one owner's records given as (type, rdata length) pairs.
fn check_types(owner: &[u8], types: &mut [(u16, usize)], limits: &SizeLimits) -> Result<(), LimitError> {
    types.sort_unstable();
    let mut rrsets = 0u64;
    for set in types.chunk_by(|a, b| a.0 == b.0) {
        let rtype = set.first().map_or(0, |s| s.0);
        let lens: Vec<usize> = set.iter().map(|s| s.1).collect();
        check_rrset(owner, rtype, &lens, limits)?;
        rrsets += 1;
    }
    if let Some(max) = limits.rrsets_per_name
        && rrsets > max
    {
        return Err(LimitError::new(name::to_text(owner), rrsets, "RRsets", "rrsets_per_name", max));
    }
    Ok(())
}

/// Checks the number of names of a zone.
pub fn check_names(apex: &[u8], names: u64, limits: &SizeLimits) -> Result<(), LimitError> {
    match limits.names_per_zone {
        Some(max) if names > max => {
            Err(LimitError::new(name::to_text(apex), names, "names", "names_per_zone", max))
        }
        _ => Ok(()),
    }
}

/// Checks a whole zone: every RRset, every name, and the number of names.
pub fn check_zone(apex: &[u8], records: &[Record], limits: &SizeLimits) -> Result<(), LimitError> {
    let mut order: Vec<(Box<[u8]>, usize)> =
        records.iter().enumerate().map(|(i, r)| (name::to_lowercase(&r.owner), i)).collect();
    order.sort_unstable();
    let mut names = 0u64;
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        // (type, rdata length) of the owner's records: no copy of the
        // records themselves, which for a large import would be a second
        // copy of the zone.
        let mut types: Vec<(u16, usize)> =
            group.iter().filter_map(|(_, i)| records.get(*i)).map(|r| (r.rtype, r.rdata.len())).collect();
        if let Some(first) = group.first().and_then(|(_, i)| records.get(*i)) {
            check_types(&first.owner, &mut types, limits)?;
        }
        names += 1;
    }
    check_names(apex, names, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zonefile;

    fn apex() -> Box<[u8]> {
        name::from_text("example.test.", None).unwrap()
    }

    fn txts(owner: &str, n: usize, len: usize) -> Vec<Record> {
        let value = "x".repeat(len);
        let text: String = (0..n).map(|i| format!("{owner} 60 TXT \"{i:04}{value}\"\n")).collect();
        zonefile::parse(&text, &apex()).unwrap()
    }

    /// Regression: an acme-only token stored 280 TXT values of 250
    /// octets at one name, an RRset the zone snapshot cannot hold, and
    /// stopped publishing for every tenant.
    #[test]
    fn an_rrset_over_32_kib_is_refused_for_every_account() {
        let recs = txts("_acme-challenge", 280, 246);
        for limits in [SizeLimits::OPERATOR, SizeLimits::CUSTOMER] {
            let e = check_owner(&recs[0].owner, &recs, &limits).unwrap_err();
            assert_eq!(e.limit, "rrset_octets");
            assert_eq!(e.value, 280 * (12 + 251));
            assert_eq!(
                e.to_string(),
                "_acme-challenge.example.test. TXT: 73640 octets over the rrset_octets limit of 32768"
            );
        }
        // Just under the limit is fine: 124 * 263 = 32612.
        let recs = txts("_acme-challenge", 124, 246);
        check_owner(&recs[0].owner, &recs, &SizeLimits::CUSTOMER).unwrap();
    }

    #[test]
    fn customer_counts_are_limited_and_the_operator_is_not() {
        let many = txts("www", 1001, 1);
        let e = check_owner(&many[0].owner, &many, &SizeLimits::CUSTOMER).unwrap_err();
        assert_eq!((e.limit, e.value, e.max), ("records_per_rrset", 1001, 1000));
        check_owner(&many[0].owner, &many, &SizeLimits::OPERATOR).unwrap();

        let types: String = (1..=65).map(|t| format!("www 60 TYPE{} \\# 1 00\n", 65280 + t)).collect();
        let recs = zonefile::parse(&types, &apex()).unwrap();
        let e = check_owner(&recs[0].owner, &recs, &SizeLimits::CUSTOMER).unwrap_err();
        assert_eq!((e.limit, e.value), ("rrsets_per_name", 65));
        check_owner(&recs[0].owner, &recs, &SizeLimits::OPERATOR).unwrap();

        let small = SizeLimits { names_per_zone: Some(2), ..SizeLimits::CUSTOMER };
        let zone =
            zonefile::parse("a 60 A 192.0.2.1\nb 60 A 192.0.2.1\nB 60 A 192.0.2.2\n", &apex()).unwrap();
        check_zone(&apex(), &zone, &small).unwrap();
        let zone =
            zonefile::parse("a 60 A 192.0.2.1\nb 60 A 192.0.2.1\nc 60 A 192.0.2.1\n", &apex()).unwrap();
        let e = check_zone(&apex(), &zone, &small).unwrap_err();
        assert_eq!(e.to_string(), "example.test.: 3 names over the names_per_zone limit of 2");
    }
}
