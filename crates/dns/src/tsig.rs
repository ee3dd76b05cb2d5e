//! Transaction signatures (TSIG, RFC 8945): finding the TSIG record of a
//! message, verifying a signed request, and signing responses.
//!
//! Everything here is a function of the message bytes, a key and the time,
//! which the caller passes in. A server uses it in this order:
//!
//! 1. [`find`] the TSIG record. A misplaced or malformed one is FORMERR,
//!    answered without a TSIG record.
//! 2. [`verify_request`] it. On success the request is authentic; pass the
//!    [`Verified`] through a [`ReplayCache`] and answer with
//!    [`sign_response`]. On failure answer with [`TsigFailure::rcode`] and
//!    append the record [`TsigFailure::append_tsig`] makes: unsigned for
//!    BADKEY and BADSIG, signed for BADTIME and BADTRUNC (RFC 8945 §5.3.2).
//!
//! [`sign_request`] and [`verify_response`] are the client side, for tests
//! and for outgoing NOTIFY and transfers. A response of several messages
//! (a zone transfer over TCP, RFC 8945 §5.3.1) is signed by a
//! [`StreamSigner`] and checked by a [`StreamVerifier`].

mod mac;
mod replay;
mod sign;
mod stream;

use std::borrow::Borrow;
use std::fmt;

use crate::message::{HEADER_LEN, rcode};
use crate::name::{NameBuf, NameError};
use crate::octets::{be16, be32};
use crate::rtype::{CLASS_ANY, code};
use mac::{Hasher, Variables};
use sign::append_unsigned;

pub use replay::ReplayCache;
pub use sign::{ResponseError, SignError, sign_request, sign_response, verify_response};
pub use stream::{StreamSigner, StreamVerifier};

/// The fudge we put in requests we sign (RFC 8945 §10 recommends 300 s).
pub const DEFAULT_FUDGE: u16 = 300;
/// Times are 48-bit seconds since the epoch (RFC 8945 §4.2).
const TIME_MASK: u64 = 0xFFFF_FFFF_FFFF;

/// A TSIG algorithm we implement (RFC 8945 §6). HMAC-MD5 is kept only for
/// old clients; §6 makes HMAC-SHA256 the one to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `hmac-md5.sig-alg.reg.int.`
    HmacMd5,
    /// `hmac-sha256.`
    HmacSha256,
    /// `hmac-sha512.`
    HmacSha512,
}

impl Algorithm {
    const ALL: [Algorithm; 3] = [Algorithm::HmacMd5, Algorithm::HmacSha256, Algorithm::HmacSha512];

    /// The algorithm named by a wire name, in any case.
    pub fn from_name(wire: &[u8]) -> Option<Algorithm> {
        Self::ALL.into_iter().find(|a| a.name_wire().eq_ignore_ascii_case(wire))
    }

    /// The algorithm's name in wire form, lowercased (its canonical form).
    pub fn name_wire(self) -> &'static [u8] {
        match self {
            Algorithm::HmacMd5 => b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The algorithm from the text used in configuration and by `knsupdate
    /// -y`: `hmac-sha256`, with or without a trailing dot, in any case.
    /// HMAC-MD5 is also accepted under its full name.
    pub fn from_text(text: &str) -> Option<Algorithm> {
        let t = text.strip_suffix('.').unwrap_or(text);
        Self::ALL.into_iter().find(|a| {
            t.eq_ignore_ascii_case(a.to_text())
                || (*a == Algorithm::HmacMd5 && t.eq_ignore_ascii_case("hmac-md5.sig-alg.reg.int"))
        })
    }

    /// The short text form (`hmac-sha256`).
    pub fn to_text(self) -> &'static str {
        match self {
            Algorithm::HmacMd5 => "hmac-md5",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The length of a full MAC in octets.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacMd5 => 16,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha512 => 64,
        }
    }

    /// The shortest truncated MAC the RFC allows: the larger of 10 octets
    /// and half the hash length (RFC 8945 §5.2.2.1).
    pub fn min_mac_len(self) -> usize {
        (self.mac_len() / 2).max(10)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_text())
    }
}

/// A shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's name in wire form, lowercased.
    pub name: Box<[u8]>,
    /// The algorithm the key is used with.
    pub algorithm: Algorithm,
    /// The secret.
    pub secret: Vec<u8>,
}

impl Key {
    /// A key named by the wire name `name` (lowercased here).
    pub fn new(name: &[u8], algorithm: Algorithm, secret: Vec<u8>) -> Key {
        Key { name: crate::name::to_lowercase(name), algorithm, secret }
    }
}

impl fmt::Debug for Key {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &crate::name::to_text(&self.name))
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} octets>", self.secret.len()))
            .finish()
    }
}

/// Why a message's TSIG record could not be read. Each is answered with
/// FORMERR and no TSIG record (RFC 8945 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsigError {
    /// The message is shorter than a header.
    #[error("message shorter than a header")]
    NoHeader,
    /// A name in the message could not be read.
    #[error("bad name in message: {0}")]
    Name(#[from] NameError),
    /// A record runs past the end of the message.
    #[error("record runs past the end of the message")]
    ShortMessage,
    /// Octets after the last record.
    #[error("trailing octets after the last record")]
    TrailingData,
    /// A TSIG record that is not the last record of the additional section,
    /// or a second one (RFC 8945 §5.1).
    #[error("tsig record is not the last record of the message")]
    NotLast,
    /// A TSIG record whose class is not ANY (RFC 8945 §4.2).
    #[error("tsig record of class {0}, not ANY")]
    BadClass(u16),
    /// TSIG rdata that does not parse, or has octets left over.
    #[error("malformed tsig rdata")]
    BadRdata,
}

/// The TSIG record of a message (RFC 8945 §4.2), borrowed from it.
#[derive(Clone)]
pub struct Tsig<'a> {
    /// The key name (the record's owner), lowercased.
    pub key_name: NameBuf,
    /// The algorithm name, lowercased.
    pub algorithm: NameBuf,
    /// The record's TTL (RFC 8945 says 0; it is digested as received).
    pub ttl: u32,
    /// Seconds since the epoch when the message was signed (48 bits).
    pub time_signed: u64,
    /// Seconds of clock error permitted.
    pub fudge: u16,
    /// The MAC as received, possibly truncated.
    pub mac: &'a [u8],
    /// The message ID the message was signed with.
    pub original_id: u16,
    /// The TSIG error (RFC 8945 §4.2), 0 in requests.
    pub error: u16,
    /// Other data (the server's time in a BADTIME response).
    pub other: &'a [u8],
    /// Where the TSIG record starts. The signed message is
    /// `msg[..offset]` with ARCOUNT one lower and the ID replaced by
    /// `original_id`.
    pub offset: usize,
}

impl fmt::Debug for Tsig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tsig")
            .field("key_name", &crate::name::to_text(self.key_name.as_slice()))
            .field("algorithm", &crate::name::to_text(self.algorithm.as_slice()))
            .field("time_signed", &self.time_signed)
            .field("fudge", &self.fudge)
            .field("mac", &self.mac)
            .field("original_id", &self.original_id)
            .field("error", &self.error)
            .field("other", &self.other)
            .field("offset", &self.offset)
            .finish()
    }
}

fn be48(b: &[u8], at: usize) -> Option<u64> {
    let hi = u64::from(be16(b, at)?);
    let lo = u64::from(be32(b, at.checked_add(2)?)?);
    Some(hi << 32 | lo)
}

/// Finds the TSIG record of `msg`, if it has one. It must be the last
/// record of the message (RFC 8945 §5.1). Every record is walked, so a
/// message that passes has well-formed sections and no trailing octets.
pub fn find(msg: &[u8]) -> Result<Option<Tsig<'_>>, TsigError> {
    if msg.len() < HEADER_LEN {
        return Err(TsigError::NoHeader);
    }
    let count = |at| usize::from(be16(msg, at).unwrap_or(0));
    let (qd, ar) = (count(4), count(10));
    let rrs = count(6) + count(8) + ar;
    let mut scratch = NameBuf::new();
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = scratch.decode(msg, pos)? + 4;
    }
    if pos > msg.len() {
        return Err(TsigError::ShortMessage);
    }
    let mut found = None;
    for i in 0..rrs {
        let start = pos;
        let p = scratch.decode(msg, pos)?;
        let (Some(rtype), Some(rdlen)) = (be16(msg, p), be16(msg, p + 8)) else {
            return Err(TsigError::ShortMessage);
        };
        pos = p + 10 + usize::from(rdlen);
        if pos > msg.len() {
            return Err(TsigError::ShortMessage);
        }
        if rtype == code::TSIG {
            // Last of all, and in the additional section (ar > 0).
            if i + 1 != rrs || ar == 0 {
                return Err(TsigError::NotLast);
            }
            found = Some(parse(msg, start, p)?);
        }
    }
    if pos != msg.len() {
        return Err(TsigError::TrailingData);
    }
    Ok(found)
}

/// Parses the TSIG record whose owner starts at `start` and whose type
/// field is at `p`.
fn parse(msg: &[u8], start: usize, p: usize) -> Result<Tsig<'_>, TsigError> {
    let mut key_name = NameBuf::new();
    key_name.decode(msg, start)?;
    key_name.make_lowercase();
    let class = be16(msg, p + 2).ok_or(TsigError::ShortMessage)?;
    if class != CLASS_ANY {
        return Err(TsigError::BadClass(class));
    }
    let ttl = be32(msg, p + 4).ok_or(TsigError::ShortMessage)?;
    let rdlen = usize::from(be16(msg, p + 8).ok_or(TsigError::ShortMessage)?);
    let rd_start = p + 10;
    let rd_end = rd_start + rdlen;
    // RFC 8945 §4.2 says the algorithm name is not compressed; reading a
    // backward pointer anyway costs nothing and harms nothing.
    let mut algorithm = NameBuf::new();
    let mut q = algorithm.decode(msg, rd_start).map_err(|_| TsigError::BadRdata)?;
    algorithm.make_lowercase();
    let fixed = |q: usize, n: usize| (q + n <= rd_end).then_some(q);
    let time_signed = fixed(q, 6).and_then(|q| be48(msg, q)).ok_or(TsigError::BadRdata)?;
    let fudge = fixed(q + 6, 2).and_then(|q| be16(msg, q)).ok_or(TsigError::BadRdata)?;
    let mac_len = usize::from(fixed(q + 8, 2).and_then(|q| be16(msg, q)).ok_or(TsigError::BadRdata)?);
    q += 10;
    let mac = fixed(q, mac_len).and_then(|q| msg.get(q..q + mac_len)).ok_or(TsigError::BadRdata)?;
    q += mac_len;
    let original_id = fixed(q, 2).and_then(|q| be16(msg, q)).ok_or(TsigError::BadRdata)?;
    let error = fixed(q + 2, 2).and_then(|q| be16(msg, q)).ok_or(TsigError::BadRdata)?;
    let other_len = usize::from(fixed(q + 4, 2).and_then(|q| be16(msg, q)).ok_or(TsigError::BadRdata)?);
    q += 6;
    let other = fixed(q, other_len).and_then(|q| msg.get(q..q + other_len)).ok_or(TsigError::BadRdata)?;
    if q + other_len != rd_end {
        return Err(TsigError::BadRdata);
    }
    Ok(Tsig { key_name, algorithm, ttl, time_signed, fudge, mac, original_id, error, other, offset: start })
}

/// How short a truncated MAC the local policy accepts (RFC 8945 §5.2.4).
/// MACs shorter than the RFC's minimum are FORMERR whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Only full-length MACs (BADTRUNC otherwise), as BIND does by default.
    #[default]
    Refuse,
    /// MACs of at least this many octets.
    AtLeast(usize),
}

/// A request whose TSIG record checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<K> {
    /// The key it was signed with, as the lookup returned it.
    pub key: K,
    /// The request MAC as received, to digest into the response
    /// (RFC 8945 §5.3; it may be truncated, §5.2.2.1).
    pub mac: Vec<u8>,
    /// The full, untruncated MAC of the request: the same for every
    /// truncation of one signature, so this is what replays are keyed by.
    pub full_mac: Vec<u8>,
    /// The request's time signed.
    pub time_signed: u64,
    /// The request's fudge, echoed in the response.
    pub fudge: u16,
}

/// Why a signed request was not accepted (RFC 8945 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsigFailure<K> {
    /// A MAC longer than the hash or shorter than RFC 8945 §5.2.2.1
    /// allows: FORMERR, and no TSIG record in the answer.
    #[error("tsig mac of {0} octets is outside the allowed lengths")]
    MacLength(usize),
    /// Unknown key, or an algorithm other than the key's (§5.2.1).
    #[error("unknown tsig key or algorithm")]
    BadKey,
    /// The MAC does not match (§5.2.2).
    #[error("tsig signature does not match")]
    BadSig,
    /// The signature is good but the time is outside the fudge, or the
    /// request was seen before (§5.2.3).
    #[error("tsig time is outside the fudge, or the request is replayed")]
    BadTime(Verified<K>),
    /// The signature is good but its MAC is truncated more than the
    /// local policy allows (§5.2.4).
    #[error("tsig mac is truncated more than policy allows")]
    BadTrunc(Verified<K>),
}

impl<K: Borrow<Key>> TsigFailure<K> {
    /// The response's RCODE: FORMERR or NOTAUTH (RFC 8945 §5.2).
    pub fn rcode(&self) -> u16 {
        match self {
            TsigFailure::MacLength(_) => rcode::FORMERR,
            _ => rcode::NOTAUTH,
        }
    }

    /// The TSIG error code, or 0 for FORMERR.
    pub fn error(&self) -> u16 {
        match self {
            TsigFailure::MacLength(_) => 0,
            TsigFailure::BadKey => rcode::BADKEY,
            TsigFailure::BadSig => rcode::BADSIG,
            TsigFailure::BadTime(_) => rcode::BADTIME,
            TsigFailure::BadTrunc(_) => rcode::BADTRUNC,
        }
    }

    /// Appends the TSIG record the error response carries to `response`
    /// (which already has its header and sections, and the RCODE from
    /// [`rcode`](Self::rcode)). `request` is the request's TSIG record.
    ///
    /// RFC 8945 §5.3.2: BADKEY and BADSIG get an unsigned record (empty
    /// MAC); BADTIME and BADTRUNC are signed with the request's key.
    /// §5.2.3: a BADTIME record carries the client's time as time signed
    /// and ours in Other Data, so the client can check it. FORMERR gets
    /// no record at all.
    pub fn append_tsig(&self, response: &mut Vec<u8>, request: &Tsig<'_>, now: u64) -> Result<(), SignError> {
        match self {
            TsigFailure::MacLength(_) => Ok(()),
            TsigFailure::BadKey | TsigFailure::BadSig => {
                append_unsigned(response, request, self.error(), now)
            }
            TsigFailure::BadTime(v) => {
                let server_time = (now & TIME_MASK).to_be_bytes();
                let other = server_time.get(2..).unwrap_or(&[]);
                sign_response(response, v.key.borrow(), &v.mac, v.time_signed, v.fudge, rcode::BADTIME, other)
            }
            TsigFailure::BadTrunc(v) => {
                sign_response(response, v.key.borrow(), &v.mac, now, v.fudge, rcode::BADTRUNC, &[])
            }
        }
    }
}

/// Verifies a signed request (RFC 8945 §5.2), refusing truncated MACs.
/// `key_lookup` is given the lowercased key name.
pub fn verify_request<K: Borrow<Key>>(
    msg: &[u8],
    tsig: &Tsig<'_>,
    key_lookup: impl FnOnce(&[u8]) -> Option<K>,
    now: u64,
) -> Result<Verified<K>, TsigFailure<K>> {
    verify_request_with(msg, tsig, key_lookup, now, Truncation::Refuse)
}

/// [`verify_request`] with a local truncation policy.
pub fn verify_request_with<K: Borrow<Key>>(
    msg: &[u8],
    tsig: &Tsig<'_>,
    key_lookup: impl FnOnce(&[u8]) -> Option<K>,
    now: u64,
    truncation: Truncation,
) -> Result<Verified<K>, TsigFailure<K>> {
    // The checks run in the order of RFC 8945 §5.2: key, MAC, time,
    // truncation. Time comes after the MAC so that an unauthenticated
    // message cannot learn our clock or make us sign a BADTIME answer.
    let key = key_lookup(tsig.key_name.as_slice()).ok_or(TsigFailure::BadKey)?;
    let k: &Key = key.borrow();
    let algorithm = Algorithm::from_name(tsig.algorithm.as_slice());
    if algorithm != Some(k.algorithm) || !k.name.eq_ignore_ascii_case(tsig.key_name.as_slice()) {
        return Err(TsigFailure::BadKey);
    }
    // §5.2.2.1: longer than the hash, or shorter than max(10, hash/2),
    // "MUST cause the DNS message to be dropped and RCODE 1 (FORMERR)".
    let len = tsig.mac.len();
    if len > k.algorithm.mac_len() || len < k.algorithm.min_mac_len() {
        return Err(TsigFailure::MacLength(len));
    }
    let mut h = Hasher::new(k).ok_or(TsigFailure::BadKey)?;
    h.message(msg, tsig.offset, tsig.original_id, 1);
    h.variables(&Variables {
        key_name: tsig.key_name.as_slice(),
        algorithm: k.algorithm.name_wire(),
        ttl: tsig.ttl,
        time_signed: tsig.time_signed,
        fudge: tsig.fudge,
        error: tsig.error,
        other: tsig.other,
    });
    let full_mac = h.clone().finish();
    if !h.verify_left(tsig.mac) {
        return Err(TsigFailure::BadSig);
    }
    let verified =
        Verified { key, mac: tsig.mac.to_vec(), full_mac, time_signed: tsig.time_signed, fudge: tsig.fudge };
    // §5.2.3: the server's time must lie within time signed ± fudge.
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return Err(TsigFailure::BadTime(verified));
    }
    let min = match truncation {
        Truncation::Refuse => verified.key.borrow().algorithm.mac_len(),
        Truncation::AtLeast(n) => n,
    };
    if len < min {
        return Err(TsigFailure::BadTrunc(verified));
    }
    Ok(verified)
}

#[cfg(test)]
#[path = "tsig_tests.rs"]
mod tests;
