//! The signer's side: appending TSIG records to requests and responses
//! (RFC 8945 §4.3, §5.3), and checking the response to a request we
//! signed (§5.4.1).

use super::mac::{Hasher, Variables};
use super::{Algorithm, Key, TIME_MASK, Tsig, TsigError, find};
use crate::name::NameBuf;
use crate::octets::be16;
use crate::rtype::{CLASS_ANY, code};

/// Why a message could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The message is shorter than a header.
    #[error("message shorter than a header")]
    NoHeader,
    /// ARCOUNT is already 65535.
    #[error("no room for another additional record")]
    TooManyRecords,
    /// The TSIG rdata would be longer than 65535 octets.
    #[error("tsig rdata too long")]
    TooLong,
}

/// Appends a TSIG record and counts it in ARCOUNT.
pub(super) fn append(msg: &mut Vec<u8>, v: &Variables<'_>, mac: &[u8]) -> Result<(), SignError> {
    let id = be16(msg, 0).ok_or(SignError::NoHeader)?;
    let ar = be16(msg, 10).ok_or(SignError::NoHeader)?;
    let ar = ar.checked_add(1).ok_or(SignError::TooManyRecords)?;
    let rdlen = v.algorithm.len() + 16 + mac.len() + v.other.len();
    let rdlen = u16::try_from(rdlen).map_err(|_| SignError::TooLong)?;
    msg.extend_from_slice(v.key_name);
    msg.extend_from_slice(&code::TSIG.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&v.ttl.to_be_bytes());
    msg.extend_from_slice(&rdlen.to_be_bytes());
    msg.extend_from_slice(v.algorithm);
    msg.extend_from_slice((v.time_signed & TIME_MASK).to_be_bytes().get(2..).unwrap_or(&[]));
    msg.extend_from_slice(&v.fudge.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    // The original ID of a message we sign is its own ID (RFC 8945 §4.2).
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&v.error.to_be_bytes());
    msg.extend_from_slice(&(v.other.len() as u16).to_be_bytes());
    msg.extend_from_slice(v.other);
    if let Some(h) = msg.get_mut(10..12) {
        h.copy_from_slice(&ar.to_be_bytes());
    }
    Ok(())
}

/// Signs `msg` with `key` and appends the TSIG record, with `prior` (a
/// request MAC) digested first when given.
fn sign(
    msg: &mut Vec<u8>,
    key: &Key,
    prior: Option<&[u8]>,
    time_signed: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) -> Result<Vec<u8>, SignError> {
    let id = be16(msg, 0).ok_or(SignError::NoHeader)?;
    if u16::try_from(other.len()).is_err() {
        return Err(SignError::TooLong);
    }
    // Digested in canonical form (RFC 8945 §4.3.3) even if the caller
    // built the key with a mixed-case name.
    let key_name = NameBuf::lowercased(&key.name);
    let v = Variables {
        key_name: key_name.as_slice(),
        algorithm: key.algorithm.name_wire(),
        ttl: 0,
        time_signed,
        fudge,
        error,
        other,
    };
    // Unreachable: HMAC accepts keys of every length.
    let mut h = Hasher::new(key).ok_or(SignError::TooLong)?;
    if let Some(p) = prior {
        h.prior_mac(p);
    }
    h.message(msg, msg.len(), id, 0);
    h.variables(&v);
    let mac = h.finish();
    append(msg, &v, &mac)?;
    Ok(mac)
}

/// Signs a response to a verified request and appends the TSIG record
/// (RFC 8945 §5.3): the request MAC, the response and the TSIG variables
/// are digested. Normally `time_signed` is the current time, `fudge` the
/// request's and `error` 0; [`TsigFailure::append_tsig`](super::TsigFailure::append_tsig) covers the error
/// cases.
pub fn sign_response(
    response: &mut Vec<u8>,
    key: &Key,
    request_mac: &[u8],
    time_signed: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) -> Result<(), SignError> {
    sign(response, key, Some(request_mac), time_signed, fudge, error, other).map(|_| ())
}

/// Signs a request and appends the TSIG record (RFC 8945 §4.3.1). Returns
/// the MAC, which [`verify_response`] needs.
pub fn sign_request(
    msg: &mut Vec<u8>,
    key: &Key,
    time_signed: u64,
    fudge: u16,
) -> Result<Vec<u8>, SignError> {
    sign(msg, key, None, time_signed, fudge, 0, &[])
}

/// Appends an unsigned TSIG record carrying `error` (RFC 8945 §5.3.2):
/// the request's key and algorithm names, an empty MAC.
pub(super) fn append_unsigned(
    response: &mut Vec<u8>,
    request: &Tsig<'_>,
    error: u16,
    now: u64,
) -> Result<(), SignError> {
    let v = Variables {
        key_name: request.key_name.as_slice(),
        algorithm: request.algorithm.as_slice(),
        ttl: 0,
        time_signed: now,
        fudge: request.fudge,
        error,
        other: &[],
    };
    append(response, &v, &[])
}

/// Why a response to a signed request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The response has no TSIG record.
    #[error("response is not signed")]
    Unsigned,
    /// The TSIG record could not be read.
    #[error(transparent)]
    Malformed(#[from] TsigError),
    /// Signed with another key or algorithm.
    #[error("response signed with another key")]
    WrongKey,
    /// The MAC length is not allowed (RFC 8945 §5.2.2.1).
    #[error("tsig mac of {0} octets is outside the allowed lengths")]
    MacLength(usize),
    /// The MAC does not match.
    #[error("tsig signature does not match")]
    BadSig,
    /// The time is outside the fudge.
    #[error("tsig time is outside the fudge")]
    BadTime,
    /// The server reports a TSIG error (BADSIG, BADKEY, BADTIME...).
    #[error("server reports tsig error {0}")]
    Server(u16),
}

/// Verifies the response to a request we signed with `key`, whose MAC
/// was `request_mac` (RFC 8945 §5.4.1).
pub fn verify_response(msg: &[u8], key: &Key, request_mac: &[u8], now: u64) -> Result<(), ResponseError> {
    let tsig = find(msg)?.ok_or(ResponseError::Unsigned)?;
    if tsig.mac.is_empty() && tsig.error != 0 {
        // §5.3.2: BADKEY and BADSIG answers are unsigned.
        return Err(ResponseError::Server(tsig.error));
    }
    if !key.name.eq_ignore_ascii_case(tsig.key_name.as_slice())
        || Algorithm::from_name(tsig.algorithm.as_slice()) != Some(key.algorithm)
    {
        return Err(ResponseError::WrongKey);
    }
    let len = tsig.mac.len();
    if len > key.algorithm.mac_len() || len < key.algorithm.min_mac_len() {
        return Err(ResponseError::MacLength(len));
    }
    let mut h = Hasher::new(key).ok_or(ResponseError::WrongKey)?;
    h.prior_mac(request_mac);
    h.message(msg, tsig.offset, tsig.original_id, 1);
    h.variables(&Variables {
        key_name: tsig.key_name.as_slice(),
        algorithm: key.algorithm.name_wire(),
        ttl: tsig.ttl,
        time_signed: tsig.time_signed,
        fudge: tsig.fudge,
        error: tsig.error,
        other: tsig.other,
    });
    if !h.verify_left(tsig.mac) {
        return Err(ResponseError::BadSig);
    }
    if tsig.error != 0 {
        return Err(ResponseError::Server(tsig.error));
    }
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return Err(ResponseError::BadTime);
    }
    Ok(())
}
