//! Asking a parent zone's server for a child's DS RRset (RFC 4035 §5.2,
//! RFC 7344 §4.1's "DS at the parent" check), and reading the answer.
//!
//! The query goes straight to the parent's authoritative servers without
//! recursion. Only an authoritative answer counts: the DS RRset owned by
//! the child's apex, or an authoritative NODATA/NXDOMAIN meaning the
//! parent has none. A referral (the server is not the parent's) and
//! anything malformed are errors.

use crate::message::{HEADER_LEN, flags, rcode};
use crate::name::NameBuf;
use crate::octets::{be16, be32};
use crate::rtype::{CLASS_IN, code};

/// Most DS records kept from one answer.
pub const MAX_DS: usize = 32;

/// What the parent serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsAnswer {
    /// The DS RRset's TTL (the negative TTL when there is none).
    pub ttl: u32,
    /// DS rdata, sorted, at most [`MAX_DS`].
    pub rdatas: Vec<Box<[u8]>>,
}

/// Why a DS answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DsError {
    /// Not a response to our query (ID, question).
    #[error("response does not match the query")]
    Mismatch,
    /// Broken message.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// Truncated over UDP.
    #[error("truncated response")]
    Truncated,
    /// The server does not answer authoritatively for the parent.
    #[error("not authoritative for the parent zone")]
    NotAuthoritative,
    /// An error rcode.
    #[error("rcode {0}")]
    Rcode(u16),
}

const SHORT: DsError = DsError::Malformed("truncated");

/// A DS query for `apex` (wire name) without recursion, with EDNS (1232).
pub fn ds_query(id: u16, apex: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + apex.len() + 15);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(apex);
    m.extend_from_slice(&code::DS.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m.extend_from_slice(&[0]);
    m.extend_from_slice(&code::OPT.to_be_bytes());
    m.extend_from_slice(&1232u16.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    m
}

/// Reads the response to `ds_query(id, apex)`.
pub fn parse_ds_response(msg: &[u8], id: u16, apex: &[u8]) -> Result<DsAnswer, DsError> {
    let header = msg.get(..HEADER_LEN).ok_or(SHORT)?;
    let word = |at| be16(header, at).ok_or(SHORT);
    let (rid, fl, qd) = (word(0)?, word(2)?, word(4)?);
    if rid != id || fl & flags::QR == 0 || fl & flags::OPCODE_MASK != 0 || qd != 1 {
        return Err(DsError::Mismatch);
    }
    let want = NameBuf::lowercased(apex);
    let mut owner = NameBuf::new();
    let mut pos = owner.decode(msg, HEADER_LEN).map_err(|_| DsError::Mismatch)?;
    owner.make_lowercase();
    if owner.as_slice() != want.as_slice()
        || be16(msg, pos) != Some(code::DS)
        || be16(msg, pos + 2) != Some(CLASS_IN)
    {
        return Err(DsError::Mismatch);
    }
    pos += 4;
    if fl & flags::TC != 0 {
        return Err(DsError::Truncated);
    }
    let mut ds: Vec<Box<[u8]>> = Vec::new();
    let mut ds_ttl = u32::MAX;
    let mut negative_ttl = 0u32;
    let mut ext_rcode: Option<u8> = None;
    for (section, count) in [(0, word(6)?), (1, word(8)?), (2, word(10)?)] {
        for _ in 0..count {
            pos = owner.decode(msg, pos).map_err(|_| DsError::Malformed("owner name"))?;
            owner.make_lowercase();
            let rtype = be16(msg, pos).ok_or(SHORT)?;
            let class = be16(msg, pos + 2).ok_or(SHORT)?;
            let ttl = be32(msg, pos + 4).ok_or(SHORT)?;
            let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
            let start = pos + 10;
            let end = start + usize::from(be16(msg, pos + 8).ok_or(SHORT)?);
            let rdata = msg.get(start..end).ok_or(SHORT)?;
            match (section, rtype) {
                (0, code::DS) if class == CLASS_IN && owner.as_slice() == want.as_slice() => {
                    // Duplicates do not count against the cap.
                    if !ds.iter().any(|d| d[..] == *rdata) && ds.len() < MAX_DS {
                        ds.push(rdata.into());
                    }
                    ds_ttl = ds_ttl.min(ttl);
                }
                // RFC 2308 §5: the negative TTL is the SOA's TTL capped by
                // its MINIMUM; the SOA's names are not needed.
                (1, code::SOA) => {
                    let min = rdata.len().checked_sub(4).and_then(|p| be32(rdata, p)).unwrap_or(0);
                    negative_ttl = ttl.min(min);
                }
                (2, code::OPT) => {
                    if ext_rcode.is_some() {
                        return Err(DsError::Malformed("two OPT records"));
                    }
                    ext_rcode = Some((ttl >> 24) as u8);
                }
                _ => {}
            }
            pos = end;
        }
    }
    if pos != msg.len() {
        return Err(DsError::Malformed("trailing octets"));
    }
    let rc = (u16::from(ext_rcode.unwrap_or(0)) << 4) | (fl & 0x000f);
    if rc != rcode::NOERROR && rc != rcode::NXDOMAIN {
        return Err(DsError::Rcode(rc));
    }
    // A referral or a cached answer is not the parent speaking.
    if fl & flags::AA == 0 {
        return Err(DsError::NotAuthoritative);
    }
    ds.sort();
    let ttl = if ds.is_empty() { negative_ttl } else { ds_ttl };
    Ok(DsAnswer { ttl, rdatas: ds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{Limits, Transport, respond};
    use crate::catalog::Catalog;
    use crate::name::from_text;
    use crate::zone::Zone;
    use crate::zonefile::parse;

    fn catalog() -> Catalog {
        let apex = from_text("parent.test.", None).unwrap();
        let text = "@ 3600 SOA ns hm 1 2 3 4 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\n\
                    child 3600 NS ns.child\nns.child 3600 A 192.0.2.2\n\
                    child 7200 DS 1234 13 2 0000000000000000000000000000000000000000000000000000000000000000\n\
                    child 7200 DS 99 15 2 1111111111111111111111111111111111111111111111111111111111111111\n\
                    bare 3600 NS ns.child\n";
        let zone = Zone::build(&apex, parse(text, &apex).unwrap(), 1).unwrap();
        let mut c = Catalog::new();
        c.insert(std::sync::Arc::new(zone));
        c
    }

    fn ask(c: &Catalog, name: &str) -> Result<DsAnswer, DsError> {
        let apex = from_text(name, None).unwrap();
        let q = ds_query(7, &apex);
        let mut buf = Vec::new();
        respond(c, &q, &mut buf, Transport::Udp, &Limits::default());
        parse_ds_response(&buf, 7, &apex)
    }

    #[test]
    fn reads_ds_and_its_absence_from_the_answer_engine() {
        let c = catalog();
        let a = ask(&c, "Child.Parent.Test.").unwrap();
        assert_eq!(a.rdatas.len(), 2);
        assert_eq!(a.ttl, 7200);
        assert_eq!(&a.rdatas[0][..2], &99u16.to_be_bytes());
        // A delegation without DS: authoritative NODATA, negative TTL.
        let b = ask(&c, "bare.parent.test.").unwrap();
        assert!(b.rdatas.is_empty());
        assert_eq!(b.ttl, 300);
        // Below the cut: the server refers, it does not know.
        assert_eq!(ask(&c, "x.child.parent.test."), Err(DsError::NotAuthoritative));
        // Not our zone at all.
        assert!(matches!(ask(&c, "other.test."), Err(DsError::Rcode(5))));
    }

    #[test]
    fn mismatched_and_cut_short_responses_are_refused() {
        let c = catalog();
        let apex = from_text("child.parent.test.", None).unwrap();
        let q = ds_query(7, &apex);
        let mut buf = Vec::new();
        respond(&c, &q, &mut buf, Transport::Udp, &Limits::default());
        assert_eq!(parse_ds_response(&buf, 8, &apex), Err(DsError::Mismatch));
        for cut in 0..buf.len() {
            assert!(parse_ds_response(&buf[..cut], 7, &apex).is_err(), "cut at {cut}");
        }
        let mut long = buf.clone();
        long.push(0);
        assert!(parse_ds_response(&long, 7, &apex).is_err());
    }

    #[test]
    fn duplicate_ds_records_do_not_push_out_distinct_ones() {
        let apex = from_text("child.parent.test.", None).unwrap();
        let rr = |rdata: &[u8]| {
            let mut r = vec![0xC0, 0x0C];
            r.extend_from_slice(&code::DS.to_be_bytes());
            r.extend_from_slice(&CLASS_IN.to_be_bytes());
            r.extend_from_slice(&3600u32.to_be_bytes());
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(rdata);
            r
        };
        let copies = MAX_DS + 8;
        let mut msg = vec![0, 7, 0x84, 0, 0, 1];
        msg.extend_from_slice(&((copies + 1) as u16).to_be_bytes());
        msg.extend_from_slice(&[0, 0, 0, 0]);
        msg.extend_from_slice(&apex);
        msg.extend_from_slice(&code::DS.to_be_bytes());
        msg.extend_from_slice(&CLASS_IN.to_be_bytes());
        for _ in 0..copies {
            msg.extend_from_slice(&rr(&[0, 1, 13, 2, 0xAA]));
        }
        msg.extend_from_slice(&rr(&[0, 2, 13, 2, 0xBB]));
        let a = parse_ds_response(&msg, 7, &apex).unwrap();
        assert_eq!(a.rdatas.len(), 2, "{:?}", a.rdatas);
        assert_eq!(a.ttl, 3600);
    }
}
