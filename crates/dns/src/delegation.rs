//! Asking who a zone is delegated to: the NS query sent to a resolver and
//! the reading of its answer, for checking that a customer's zone is
//! really delegated to sixgate before it is trusted across accounts.
//!
//! The answer may come from a recursive resolver (NS RRset in the answer
//! section) or from the parent's authoritative server (a referral, NS in
//! the authority section); both are read. Only NS records owned by the
//! zone's apex count.

use crate::name::{self, NameBuf};
use crate::octets::be16;
use crate::rtype::code;

/// NS names read from one answer at most; a delegation has a handful.
pub const MAX_NS: usize = 64;

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelegationError {
    /// Not a well-formed DNS response.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The response does not answer our query.
    #[error("response does not match the query")]
    Mismatch,
    /// The resolver answered with an error code.
    #[error("resolver answered rcode {0}")]
    Rcode(u8),
}

/// An NS query for `apex` with recursion desired and EDNS (1232 octets).
pub fn ns_query(id: u16, apex: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + apex.len() + 4 + 11);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    m.extend_from_slice(apex);
    m.extend_from_slice(&code::NS.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    // OPT: root owner, type 41, payload 1232, no flags, no options.
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    m
}

/// The NS names (lowercased wire form) the response gives for `apex`. An
/// NXDOMAIN or a NODATA answer gives none.
pub fn parse_ns_response(msg: &[u8], id: u16, apex: &[u8]) -> Result<Vec<Box<[u8]>>, DelegationError> {
    let short = DelegationError::Malformed("truncated");
    let header = msg.get(..12).ok_or(short.clone())?;
    let (rid, flags) = (be16(header, 0), be16(header, 2));
    let qd = be16(header, 4);
    let (an, ns) = (be16(header, 6), be16(header, 8));
    if rid != Some(id) || flags.is_none_or(|f| f & 0x8000 == 0) || qd != Some(1) {
        return Err(DelegationError::Mismatch);
    }
    let rcode = flags.map_or(0, |f| (f & 0x0f) as u8);
    match rcode {
        0 => {}
        3 => return Ok(Vec::new()),
        r => return Err(DelegationError::Rcode(r)),
    }
    let apex_l = name::to_lowercase(apex);
    let mut n = NameBuf::new();
    let mut pos = n.decode(msg, 12).map_err(|_| DelegationError::Malformed("question name"))?;
    n.make_lowercase();
    if n.as_slice() != &apex_l[..] || be16(msg, pos) != Some(code::NS) {
        return Err(DelegationError::Mismatch);
    }
    pos += 4;
    let mut out: Vec<Box<[u8]>> = Vec::new();
    for _ in 0..u32::from(an.unwrap_or(0)) + u32::from(ns.unwrap_or(0)) {
        pos = n.decode(msg, pos).map_err(|_| DelegationError::Malformed("owner name"))?;
        n.make_lowercase();
        let rtype = be16(msg, pos).ok_or(short.clone())?;
        let rdlen = be16(msg, pos + 8).ok_or(short.clone())? as usize;
        let rdata = pos + 10;
        if msg.len() < rdata + rdlen {
            return Err(short);
        }
        if rtype == code::NS && n.as_slice() == &apex_l[..] && out.len() < MAX_NS {
            let mut target = NameBuf::new();
            let end = target.decode(msg, rdata).map_err(|_| DelegationError::Malformed("NS name"))?;
            if end != rdata + rdlen {
                return Err(DelegationError::Malformed("NS rdata length"));
            }
            target.make_lowercase();
            let t: Box<[u8]> = target.as_slice().into();
            if !out.contains(&t) {
                out.push(t);
            }
        }
        pos = rdata + rdlen;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str) -> Box<[u8]> {
        name::from_text(t, None).unwrap()
    }

    /// A response to `ns_query(7, alice.test.)` with a referral: one NS in
    /// the authority section, its target compressed against the question.
    fn referral() -> Vec<u8> {
        let q = ns_query(7, &name("alice.test."));
        let mut m = q[..12].to_vec();
        m[2] = 0x81; // QR, RD
        m[3] = 0x00;
        m[7] = 0; // ancount 0
        m[9] = 1; // nscount 1
        m[11] = 0; // no additional
        m.extend_from_slice(&name("Alice.TEST."));
        m.extend_from_slice(&[0, 2, 0, 1]);
        // owner: pointer to the question name (offset 12)
        m.extend_from_slice(&[0xc0, 12, 0, 2, 0, 1, 0, 0, 0x0e, 0x10]);
        let target = [&[3u8][..], b"ns1", &[0xc0, 12 + 6]].concat(); // ns1.test.
        m.extend_from_slice(&(target.len() as u16).to_be_bytes());
        m.extend_from_slice(&target);
        m
    }

    #[test]
    fn reads_ns_from_a_referral_with_compression() {
        let ns = parse_ns_response(&referral(), 7, &name("alice.test.")).unwrap();
        assert_eq!(ns, vec![name("ns1.test.")]);
    }

    #[test]
    fn refuses_mismatches_and_truncation_without_panicking() {
        let r = referral();
        assert_eq!(parse_ns_response(&r, 8, &name("alice.test.")), Err(DelegationError::Mismatch));
        assert_eq!(parse_ns_response(&r, 7, &name("bob.test.")), Err(DelegationError::Mismatch));
        for cut in 0..r.len() {
            assert!(parse_ns_response(&r[..cut], 7, &name("alice.test.")).is_err(), "cut at {cut}");
        }
        let mut nx = r.clone();
        nx[3] = 3;
        assert_eq!(parse_ns_response(&nx, 7, &name("alice.test.")), Ok(vec![]));
        let mut sf = r;
        sf[3] = 2;
        assert_eq!(parse_ns_response(&sf, 7, &name("alice.test.")), Err(DelegationError::Rcode(2)));
    }
}
