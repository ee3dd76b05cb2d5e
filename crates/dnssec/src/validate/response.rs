//! Where a [`super::Resolver`] gets its answers: the [`Authority`] trait,
//! an authority that changes over time ([`Timeline`]), and sixgate's own
//! answer engine as an authority ([`query_catalog`]), whose wire response
//! is read back by [`decode_response`].

use sixgate_dns::catalog::Catalog;
use sixgate_dns::message::{HEADER_LEN, flags};
use sixgate_dns::name::NameBuf;
use sixgate_dns::rtype::{CLASS_IN, code, compressible_name_offset};
use sixgate_dns::zone::Record;
use sixgate_dns::{Limits, Outcome, Transport, respond};

/// The ID of the queries sent to the answer engine.
const QUERY_ID: u16 = 0x5167;
/// The UDP payload size offered (the queries go over "TCP" anyway).
const EDNS_PAYLOAD: u16 = 1232;
/// The DO bit in the OPT record's TTL field (RFC 3225 §3).
const DO: u32 = 0x8000;
/// Most records read from one response: a response holds at most 65535
/// octets, and every record takes 11 at least.
const MAX_RECORDS: usize = 65535 / 11;

/// What an authoritative server answered, in the parts a validator reads.
/// Records are uncompressed; the additional section is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The response code (NOERROR, NXDOMAIN, ...).
    pub rcode: u16,
    /// The answer section.
    pub answer: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
}

/// Why a response cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not a well-formed DNS response.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// No server answered (nothing served at that time, or the query was
    /// dropped).
    #[error("no response")]
    NoResponse,
    /// The response is truncated.
    #[error("the response is truncated")]
    Truncated,
}

/// An authoritative source: answers a query as a signed zone serves it
/// to a query with the DO bit set, at the simulated time `now`.
pub trait Authority {
    /// Answers `name` (wire form) and `rtype`.
    fn query(&self, name: &[u8], rtype: u16, now: u64) -> Result<Response, ResponseError>;
}

impl<A: Authority + ?Sized> Authority for &A {
    fn query(&self, name: &[u8], rtype: u16, now: u64) -> Result<Response, ResponseError> {
        (**self).query(name, rtype, now)
    }
}

/// sixgate's answer engine over a catalog, the same at every time.
impl Authority for Catalog {
    fn query(&self, name: &[u8], rtype: u16, _now: u64) -> Result<Response, ResponseError> {
        query_catalog(self, name, rtype)
    }
}

/// An authority that changes over time: each entry serves from its time
/// until the next one's. Before the first, nothing answers.
#[derive(Clone)]
pub struct Timeline<A> {
    steps: Vec<(u64, A)>,
}

impl<A> Default for Timeline<A> {
    fn default() -> Self {
        Timeline { steps: Vec::new() }
    }
}

impl<A> Timeline<A> {
    /// An empty timeline.
    pub fn new() -> Timeline<A> {
        Timeline::default()
    }

    /// Serves `authority` from `from` on, until a later entry. An entry at
    /// the same time as another replaces it; an earlier one is slotted in
    /// by time.
    pub fn push(&mut self, from: u64, authority: A) {
        match self.steps.binary_search_by_key(&from, |(t, _)| *t) {
            Ok(i) => {
                if let Some(s) = self.steps.get_mut(i) {
                    s.1 = authority;
                }
            }
            Err(i) => self.steps.insert(i, (from, authority)),
        }
    }

    /// What serves at `now`.
    pub fn at(&self, now: u64) -> Option<&A> {
        self.steps.iter().rev().find(|(t, _)| *t <= now).map(|(_, a)| a)
    }

    /// The times at which the authority changes.
    pub fn times(&self) -> impl Iterator<Item = u64> + '_ {
        self.steps.iter().map(|(t, _)| *t)
    }
}

impl<A: Authority> Authority for Timeline<A> {
    fn query(&self, name: &[u8], rtype: u16, now: u64) -> Result<Response, ResponseError> {
        self.at(now).ok_or(ResponseError::NoResponse)?.query(name, rtype, now)
    }
}

/// Asks sixgate's answer engine: a query with DO set, answered as over
/// TCP (so never truncated), read back with [`decode_response`].
pub fn query_catalog(catalog: &Catalog, name: &[u8], rtype: u16) -> Result<Response, ResponseError> {
    let mut q = Vec::with_capacity(HEADER_LEN + name.len() + 4 + 11);
    q.extend_from_slice(&QUERY_ID.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(name);
    q.extend_from_slice(&rtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q.push(0);
    q.extend_from_slice(&code::OPT.to_be_bytes());
    q.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    q.extend_from_slice(&DO.to_be_bytes());
    q.extend_from_slice(&[0, 0]);
    let mut buf = Vec::new();
    match respond(catalog, &q, &mut buf, Transport::Tcp, &Limits::default()) {
        Outcome::Reply => decode_response(&buf),
        // The query built above is never signed.
        Outcome::Drop | Outcome::Signed => Err(ResponseError::NoResponse),
    }
}

const SHORT: ResponseError = ResponseError::Malformed("truncated");

/// Reads a response message: the rcode (with the OPT record's extended
/// bits, RFC 6891 §6.1.3), and the answer and authority records with
/// their names decompressed, in rdata too where RFC 3597 §4 allows
/// compression. The whole message must be well formed, with no trailing
/// octets.
pub fn decode_response(msg: &[u8]) -> Result<Response, ResponseError> {
    let word = |at: usize| be16(msg, at).ok_or(SHORT);
    let fl = word(2)?;
    if fl & flags::QR == 0 {
        return Err(ResponseError::Malformed("not a response"));
    }
    if fl & flags::TC != 0 {
        return Err(ResponseError::Truncated);
    }
    let (qd, an, ns, ar) = (word(4)?, word(6)?, word(8)?, word(10)?);
    if usize::from(an) + usize::from(ns) + usize::from(ar) > MAX_RECORDS {
        return Err(ResponseError::Malformed("more records than fit"));
    }
    let mut owner = NameBuf::new();
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = owner.decode(msg, pos).map_err(|_| ResponseError::Malformed("question name"))? + 4;
    }
    let mut out = Response::default();
    let mut ext_rcode: Option<u8> = None;
    for (section, count) in [(0, an), (1, ns), (2, ar)] {
        for _ in 0..count {
            pos = owner.decode(msg, pos).map_err(|_| ResponseError::Malformed("owner name"))?;
            let rtype = word(pos)?;
            let ttl = be32(msg, pos + 4).ok_or(SHORT)?;
            let start = pos + 10;
            let end = start + usize::from(word(pos + 8)?);
            let raw = msg.get(start..end).ok_or(SHORT)?;
            if section == 2 {
                if rtype == code::OPT {
                    if ext_rcode.is_some() {
                        return Err(ResponseError::Malformed("two OPT records"));
                    }
                    ext_rcode = Some((ttl >> 24) as u8);
                }
            } else {
                let rdata = decompress_rdata(msg, rtype, start, raw)?;
                // RFC 2181 §8: a TTL with the top bit set means zero.
                let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
                let record = Record { owner: owner.as_slice().into(), rtype, ttl, rdata: rdata.into() };
                if section == 0 { &mut out.answer } else { &mut out.authority }.push(record);
            }
            pos = end;
        }
    }
    if pos != msg.len() {
        return Err(ResponseError::Malformed("trailing octets"));
    }
    out.rcode = (u16::from(ext_rcode.unwrap_or(0)) << 4) | (fl & 0x000f);
    Ok(out)
}

/// The rdata at `start` of `msg` with its names decompressed, for the
/// types whose names may be compressed (RFC 3597 §4); others as they are.
fn decompress_rdata(msg: &[u8], rtype: u16, start: usize, raw: &[u8]) -> Result<Vec<u8>, ResponseError> {
    let Some(offset) = compressible_name_offset(rtype) else {
        return Ok(raw.to_vec());
    };
    let bad = ResponseError::Malformed("name in rdata");
    let end = start + raw.len();
    let mut out = raw.get(..offset).ok_or(bad)?.to_vec();
    let mut n = NameBuf::new();
    let mut pos = n.decode(msg, start + offset).map_err(|_| bad)?;
    out.extend_from_slice(n.as_slice());
    if rtype == code::SOA {
        // SOA: MNAME, RNAME, then five 32-bit counters.
        pos = n.decode(msg, pos).map_err(|_| bad)?;
        out.extend_from_slice(n.as_slice());
        out.extend_from_slice(msg.get(pos..end).filter(|c| c.len() == 20).ok_or(bad)?);
        pos = end;
    }
    if pos != end {
        return Err(bad);
    }
    Ok(out)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_responses_are_refused() {
        assert_eq!(decode_response(&[]), Err(SHORT));
        // A query, not a response.
        assert_eq!(decode_response(&[0; 12]), Err(ResponseError::Malformed("not a response")));
        let mut tc = vec![0, 0, 0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_response(&tc), Err(ResponseError::Truncated));
        tc[2] = 0x80;
        assert_eq!(decode_response(&tc).unwrap(), Response::default());
        tc.push(0);
        assert_eq!(decode_response(&tc), Err(ResponseError::Malformed("trailing octets")));
        // One answer record announced, none present.
        let short = [0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(decode_response(&short).is_err());
    }

    #[test]
    fn timeline_serves_the_latest_entry() {
        let mut t = Timeline::new();
        t.push(10, 'a');
        t.push(30, 'c');
        t.push(20, 'b');
        t.push(30, 'd');
        assert_eq!(t.at(5), None);
        assert_eq!(t.at(10), Some(&'a'));
        assert_eq!(t.at(29), Some(&'b'));
        assert_eq!(t.at(99), Some(&'d'));
        assert_eq!(t.times().collect::<Vec<_>>(), vec![10, 20, 30]);
    }
}
