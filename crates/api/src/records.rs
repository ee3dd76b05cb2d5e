//! Names, types and record data between JSON text and wire form.
//!
//! Record data in presentation format is parsed by the same zone-file
//! parser as imports, one record at a time, so the API accepts exactly what
//! a zone file does. Text that could smuggle a second record or a directive
//! into that line (line breaks, NUL) is refused before parsing.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sixgate_dns::rtype::{self, code};
use sixgate_dns::zone::Record;
use sixgate_dns::zonefile::RdataError;
use sixgate_dns::{name, zonefile};

use crate::ApiError;

/// Largest TTL (RFC 2181 §8).
pub(crate) const MAX_TTL: u32 = 0x7fff_ffff;
/// Most records in one RRset or batch.
pub(crate) const MAX_RECORDS: usize = 10_000;

/// An RRset as the native API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RrSetJson {
    /// Owner, absolute, with trailing dot.
    pub(crate) name: String,
    /// Type mnemonic.
    #[serde(rename = "type")]
    pub(crate) rtype: String,
    /// TTL in seconds.
    pub(crate) ttl: u32,
    /// Record data in presentation format.
    pub(crate) records: Vec<String>,
}

/// Parses an absolute domain name given with or without its trailing dot.
pub(crate) fn parse_name(text: &str) -> Result<Box<[u8]>, ApiError> {
    let t = text.trim();
    if t.is_empty() || t.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ApiError::BadRequest(format!("invalid domain name {text:?}")));
    }
    let abs = if t.ends_with('.') { t.to_string() } else { format!("{t}.") };
    name::from_text(&abs, None)
        .map_err(|e| ApiError::BadRequest(format!("invalid domain name {text:?}: {e}")))
}

/// A name inside the zone `apex`.
pub(crate) fn parse_owner(apex: &[u8], text: &str) -> Result<Box<[u8]>, ApiError> {
    let owner = parse_name(text)?;
    if !name::is_at_or_below(&name::to_lowercase(&owner), &name::to_lowercase(apex)) {
        return Err(ApiError::Unprocessable(format!(
            "{} is outside the zone {}",
            name::to_text(&owner),
            name::to_text(apex)
        )));
    }
    Ok(owner)
}

/// Parses a type mnemonic (`A`, `txt`, `TYPE65280`); meta types are refused.
pub(crate) fn parse_type(text: &str) -> Result<u16, ApiError> {
    let t = zonefile::type_from_text(&text.trim().to_ascii_uppercase())
        .ok_or_else(|| ApiError::BadRequest(format!("unknown record type {text:?}")))?;
    if rtype::is_meta(t) || t == code::OPT {
        return Err(ApiError::Unprocessable(format!("{text} records cannot be stored in a zone")));
    }
    Ok(t)
}

/// Checks a TTL's bounds.
pub(crate) fn check_ttl(ttl: u64) -> Result<u32, ApiError> {
    u32::try_from(ttl)
        .ok()
        .filter(|&t| t <= MAX_TTL)
        .ok_or_else(|| ApiError::Unprocessable(format!("TTL {ttl} is out of range (0 to {MAX_TTL})")))
}

/// How names inside record data are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// As in a zone file: relative names and `@` are relative to the
    /// zone apex (the native API).
    RelativeToApex,
    /// Every name absolute, with its trailing dot; a relative name or `@`
    /// is refused (the PowerDNS API, whose content PowerDNS itself takes
    /// only absolute).
    Absolute,
}

/// Parses one record's data for `owner`/`rtype`, names read as `names`
/// says.
pub(crate) fn parse_rdata(
    apex: &[u8],
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    text: &str,
    names: Names,
) -> Result<Record, ApiError> {
    let parsed = match names {
        Names::RelativeToApex => zonefile::parse_rdata(apex, owner, rtype, ttl, text),
        Names::Absolute => zonefile::parse_rdata_absolute(owner, rtype, ttl, text),
    };
    parsed.map_err(|e| {
        ApiError::Unprocessable(match e {
            RdataError::LineBreak => format!("record data {text:?} contains a line break"),
            RdataError::Empty => e.to_string(),
            e => format!("invalid {} record data {text:?}: {e}", zonefile::type_text(rtype)),
        })
    })
}

/// Parses a whole RRset; duplicates are refused, since a client that sends
/// them probably meant something else.
pub(crate) fn parse_rrset(
    apex: &[u8],
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    texts: &[String],
    names: Names,
) -> Result<Vec<Record>, ApiError> {
    if texts.len() > MAX_RECORDS {
        return Err(ApiError::Unprocessable(format!("more than {MAX_RECORDS} records in one RRset")));
    }
    let mut out: Vec<Record> = Vec::with_capacity(texts.len());
    let mut seen = HashSet::with_capacity(texts.len());
    for t in texts {
        let r = parse_rdata(apex, owner, rtype, ttl, t, names)?;
        if !seen.insert(r.rdata.clone()) {
            return Err(ApiError::Unprocessable(format!(
                "duplicate record {t:?} in {} {}",
                name::to_text(owner),
                zonefile::type_text(rtype)
            )));
        }
        out.push(r);
    }
    Ok(out)
}

/// Groups records into RRsets, in canonical order.
pub(crate) fn group(mut records: Vec<Record>) -> Vec<RrSetJson> {
    sixgate_dns::zone::sort_canonical(&mut records);
    let mut out: Vec<RrSetJson> = Vec::new();
    let mut last: Option<(Box<[u8]>, u16)> = None;
    for r in records {
        let key = (name::to_lowercase(&r.owner), r.rtype);
        let text = zonefile::rdata_text(r.rtype, &r.rdata);
        match (out.last_mut(), &last) {
            (Some(set), Some(k)) if *k == key => set.records.push(text),
            _ => {
                out.push(RrSetJson {
                    name: name::to_text(&r.owner),
                    rtype: zonefile::type_text(r.rtype),
                    ttl: r.ttl,
                    records: vec![text],
                });
                last = Some(key);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdata_is_parsed_like_a_zone_file_line_and_cannot_smuggle_lines() {
        let apex = parse_name("example.com").unwrap();
        let owner = parse_owner(&apex, "www.example.com.").unwrap();
        let r = parse_rdata(&apex, &owner, code::MX, 60, "10 mail", Names::RelativeToApex).unwrap();
        assert_eq!(zonefile::rdata_text(code::MX, &r.rdata), "10 mail.example.com.");
        assert!(
            parse_rdata(&apex, &owner, code::A, 60, "192.0.2.1\nevil 60 A 192.0.2.2", Names::RelativeToApex)
                .is_err()
        );
        assert!(
            parse_rdata(&apex, &owner, code::A, 60, "192.0.2.1 192.0.2.2", Names::RelativeToApex).is_err()
        );
        assert!(parse_rdata(&apex, &owner, code::A, 60, "not-an-address", Names::RelativeToApex).is_err());
        assert!(parse_owner(&apex, "www.example.org").is_err());
        assert!(parse_type("ANY").is_err());
        assert!(check_ttl(1 << 31).is_err());
        let dup = parse_rrset(
            &apex,
            &owner,
            code::A,
            60,
            &["192.0.2.1".into(), "192.0.2.1".into()],
            Names::RelativeToApex,
        );
        assert!(dup.unwrap_err().to_string().contains("duplicate"));
    }

    /// The native API reads record data as a zone file line: `@` and
    /// relative names are relative to the apex. The PowerDNS API takes
    /// names only absolute, as PowerDNS does, and refuses the rest instead
    /// of completing them with anything.
    #[test]
    fn names_in_record_data_are_relative_to_the_apex_or_refused_when_absolute_is_required() {
        let apex = parse_name("example.com").unwrap();
        let owner = parse_owner(&apex, "www.example.com.").unwrap();
        let text = |r: &Record| zonefile::rdata_text(r.rtype, &r.rdata);
        let rel =
            |t: &str| parse_rdata(&apex, &owner, code::CNAME, 60, t, Names::RelativeToApex).map(|r| text(&r));
        assert_eq!(rel("@").unwrap(), "example.com.");
        assert_eq!(rel("mail").unwrap(), "mail.example.com.");
        assert_eq!(rel("mail.example.net.").unwrap(), "mail.example.net.");
        assert_eq!(rel("\\@").unwrap(), "\\@.example.com.");
        let abs = |rtype: u16, t: &str| {
            parse_rdata(&apex, &owner, rtype, 60, t, Names::Absolute).map(|r| (r.owner.clone(), text(&r)))
        };
        assert_eq!(
            abs(code::CNAME, "mail.example.net.").unwrap(),
            (owner.clone(), "mail.example.net.".to_string())
        );
        assert_eq!(abs(code::MX, "10 .").unwrap().1, "10 .");
        assert_eq!(abs(code::A, "192.0.2.1").unwrap().1, "192.0.2.1");
        for bad in [
            (code::CNAME, "@"),
            (code::CNAME, "mail"),
            (code::CNAME, "mail.example.com"),
            (code::MX, "10 @"),
            (code::SOA, "ns.example.com. hostmaster 1 2 3 4 5"),
            (code::SRV, "0 0 1 host"),
        ] {
            let e = abs(bad.0, bad.1).unwrap_err().to_string();
            assert!(e.contains("must be absolute"), "{bad:?}: {e}");
        }
    }
}
