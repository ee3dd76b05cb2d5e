//! Looking up a name's addresses: the A or AAAA query sent for an ANAME
//! target, and the reading of its answer, whether it comes from sixgate's
//! own answer engine or from an upstream resolver.
//!
//! The answer section is read the way a stub resolver reads it (RFC 1034
//! §5.3.3, RFC 2181 §10.1.1): from the question name, follow the CNAME
//! owned by the current name to its target, then take the RRs of the
//! queried type owned by the last name. An authoritative server stops the
//! chain where its data ends, so a chain that leads out of the answer is
//! handed back as [`Outcome::Cname`] for the caller to resolve further.

use std::ops::Range;

use crate::message::{HEADER_LEN, flags, rcode};
use crate::name::NameBuf;
use crate::octets::{be16, be32};
use crate::rtype::{CLASS_IN, code};

/// Addresses kept from one answer at most (the lowest, after sorting). An
/// ANAME answer with more would not fit a UDP response anyway.
pub const MAX_ADDRESSES: usize = 64;

/// CNAMEs followed inside one answer at most. Resolvers stop at 8 to 16
/// (BIND stops at 17 names, i.e. 16 hops); longer chains are refused.
pub const MAX_CNAME_HOPS: usize = 16;

/// UDP payload size offered in the query's OPT record (the DNS Flag Day
/// 2020 value, which avoids IP fragmentation).
const EDNS_PAYLOAD: u16 = 1232;

/// What an answer says about the name asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The name, or the end of its CNAME chain, has addresses.
    Addresses {
        /// The smallest TTL over the CNAMEs followed and the address RRset.
        ttl: u32,
        /// Address rdata (4 octets for A, 16 for AAAA), sorted, without
        /// duplicates, at most [`MAX_ADDRESSES`].
        addresses: Vec<Box<[u8]>>,
    },
    /// The name, or the end of its CNAME chain, does not exist (NXDOMAIN;
    /// RFC 6604 §3: the rcode speaks of the last name of the chain).
    NxDomain,
    /// The name, or the end of its CNAME chain, exists without addresses.
    NoData,
    /// The chain leads to a name this answer says nothing about: the
    /// server stopped where its data ends. The caller resolves `target`
    /// next, for at most `ttl` seconds.
    Cname {
        /// The last CNAME's target, lowercased wire form.
        target: Box<[u8]>,
        /// The smallest TTL over the CNAMEs followed.
        ttl: u32,
    },
}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// Not a well-formed DNS response.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The response does not answer our query: another ID, not a
    /// response, or another question. The caller keeps waiting.
    #[error("response does not match the query")]
    Mismatch,
    /// The server answered with an error code (extended with the OPT
    /// record's upper bits, RFC 6891 §6.1.3, hence 12 bits).
    #[error("server answered rcode {0}")]
    Rcode(u16),
    /// The TC bit is set: ask again over TCP.
    #[error("response truncated")]
    Truncated,
    /// The CNAME chain comes back to a name it has passed.
    #[error("cname loop")]
    CnameLoop,
    /// The CNAME chain is longer than [`MAX_CNAME_HOPS`].
    #[error("cname chain longer than {MAX_CNAME_HOPS}")]
    TooLong,
    /// Only A and AAAA are looked up.
    #[error("type {0} is not an address type")]
    UnsupportedType(u16),
}

const SHORT: LookupError = LookupError::Malformed("truncated");

/// A query of type `qtype` for `name` (a wire name) with recursion desired and
/// EDNS (1232 octets).
pub fn query(id: u16, name: &[u8], qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + name.len() + 4 + 11);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags::RD.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root owner, type 41, payload, no extended rcode or flags, no
    // options.
    m.extend_from_slice(&[0]);
    m.extend_from_slice(&code::OPT.to_be_bytes());
    m.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    m
}

/// One answer-section record, its owner lowercased, its rdata a range of
/// the message (so that names in it can be decompressed).
struct Rr {
    owner: Box<[u8]>,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Range<usize>,
}

/// Reads `msg` as the response to `query(id, name, qtype)`, `qtype` being
/// A or AAAA.
///
/// The whole message must be well formed, with no trailing octets, even
/// the sections that are not used: a datagram cut short is an error,
/// never a smaller answer.
pub fn parse_response(msg: &[u8], id: u16, name: &[u8], qtype: u16) -> Result<Outcome, LookupError> {
    let address_len = match qtype {
        code::A => 4,
        code::AAAA => 16,
        other => return Err(LookupError::UnsupportedType(other)),
    };
    let header = msg.get(..HEADER_LEN).ok_or(SHORT)?;
    let word = |at| be16(header, at).ok_or(SHORT);
    let (rid, fl, qd) = (word(0)?, word(2)?, word(4)?);
    if rid != id || fl & flags::QR == 0 || fl & flags::OPCODE_MASK != 0 || qd != 1 {
        return Err(LookupError::Mismatch);
    }
    let want = NameBuf::lowercased(name);
    let mut owner = NameBuf::new();
    let mut pos = owner.decode(msg, HEADER_LEN).map_err(|_| LookupError::Mismatch)?;
    owner.make_lowercase();
    if owner.as_slice() != want.as_slice()
        || be16(msg, pos) != Some(qtype)
        || be16(msg, pos + 2) != Some(CLASS_IN)
    {
        return Err(LookupError::Mismatch);
    }
    pos += 4;
    // RFC 2181 §9: the rest of a truncated response cannot be relied on.
    if fl & flags::TC != 0 {
        return Err(LookupError::Truncated);
    }

    let mut answers = Vec::new();
    let mut ext_rcode: Option<u8> = None;
    for (section, count) in [(0, word(6)?), (1, word(8)?), (2, word(10)?)] {
        for _ in 0..count {
            pos = owner.decode(msg, pos).map_err(|_| LookupError::Malformed("owner name"))?;
            let rtype = be16(msg, pos).ok_or(SHORT)?;
            let class = be16(msg, pos + 2).ok_or(SHORT)?;
            let ttl = be32(msg, pos + 4).ok_or(SHORT)?;
            let start = pos + 10;
            let end = start + usize::from(be16(msg, pos + 8).ok_or(SHORT)?);
            if end > msg.len() {
                return Err(SHORT);
            }
            match section {
                0 => {
                    owner.make_lowercase();
                    // RFC 2181 §8: a TTL with the top bit set means zero.
                    let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
                    answers.push(Rr { owner: owner.as_slice().into(), rtype, class, ttl, rdata: start..end });
                }
                2 if rtype == code::OPT => {
                    // RFC 6891 §6.1.1: more than one OPT is a FORMERR.
                    if ext_rcode.is_some() {
                        return Err(LookupError::Malformed("two OPT records"));
                    }
                    ext_rcode = Some((ttl >> 24) as u8);
                }
                _ => {}
            }
            pos = end;
        }
    }
    if pos != msg.len() {
        return Err(LookupError::Malformed("trailing octets"));
    }
    let rc = (u16::from(ext_rcode.unwrap_or(0)) << 4) | (fl & 0x000f);
    if rc != rcode::NOERROR && rc != rcode::NXDOMAIN {
        return Err(LookupError::Rcode(rc));
    }

    // The chain: `seen` holds the question name and every target passed,
    // the last one being the current name.
    let mut seen: Vec<Box<[u8]>> = vec![want.as_slice().into()];
    let mut ttl = u32::MAX;
    loop {
        let current = seen.last().map_or(&[][..], |n| &n[..]);
        let Some(Hop { target, ttl: cname_ttl }) = cname_of(msg, &answers, current)? else { break };
        if seen.contains(&target) {
            return Err(LookupError::CnameLoop);
        }
        if seen.len() > MAX_CNAME_HOPS {
            return Err(LookupError::TooLong);
        }
        ttl = ttl.min(cname_ttl);
        seen.push(target);
    }
    let hops = seen.len() - 1;
    let last = seen.pop().unwrap_or_default();

    let mut addresses: Vec<Box<[u8]>> = Vec::new();
    let mut last_owns_data = false;
    for rr in answers.iter().filter(|rr| rr.owner == last) {
        last_owns_data = true;
        if rr.rtype == qtype && rr.class == CLASS_IN {
            let rdata = msg.get(rr.rdata.clone()).ok_or(SHORT)?;
            if rdata.len() != address_len {
                return Err(LookupError::Malformed("address length"));
            }
            ttl = ttl.min(rr.ttl);
            addresses.push(rdata.into());
        }
    }
    if !addresses.is_empty() {
        if rc == rcode::NXDOMAIN {
            return Err(LookupError::Malformed("addresses for a name that does not exist"));
        }
        addresses.sort_unstable();
        addresses.dedup();
        addresses.truncate(MAX_ADDRESSES);
        return Ok(Outcome::Addresses { ttl, addresses });
    }
    Ok(if rc == rcode::NXDOMAIN {
        Outcome::NxDomain
    } else if hops > 0 && !last_owns_data {
        Outcome::Cname { target: last, ttl }
    } else {
        Outcome::NoData
    })
}

/// One step of a CNAME chain.
struct Hop {
    /// Lowercased wire form.
    target: Box<[u8]>,
    ttl: u32,
}

/// The CNAME owned by `owner`, if any.
/// RFC 2181 §10.1: a name has one CNAME at most, so two different targets
/// make the answer malformed; a repeated record is tolerated.
fn cname_of(msg: &[u8], answers: &[Rr], owner: &[u8]) -> Result<Option<Hop>, LookupError> {
    let mut found: Option<Hop> = None;
    for rr in
        answers.iter().filter(|rr| rr.rtype == code::CNAME && rr.class == CLASS_IN && &rr.owner[..] == owner)
    {
        let mut target = NameBuf::new();
        let end = target.decode(msg, rr.rdata.start).map_err(|_| LookupError::Malformed("CNAME target"))?;
        if end != rr.rdata.end {
            return Err(LookupError::Malformed("CNAME rdata length"));
        }
        target.make_lowercase();
        found = match found {
            None => Some(Hop { target: target.as_slice().into(), ttl: rr.ttl }),
            Some(hop) if &hop.target[..] == target.as_slice() => {
                Some(Hop { ttl: hop.ttl.min(rr.ttl), ..hop })
            }
            Some(_) => return Err(LookupError::Malformed("two CNAMEs for one name")),
        };
    }
    Ok(found)
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
