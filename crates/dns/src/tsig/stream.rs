//! Responses of several messages (RFC 8945 §5.3.1): a zone transfer over
//! TCP is signed message by message, each MAC chained to the one before.
//!
//! The first message is signed as any response is: the request MAC, the
//! message and every TSIG variable are digested. Each later message
//! digests the MAC of the message before it (with its length, as a
//! request MAC is), the message, and of its own TSIG record only the
//! timers (time signed and fudge). A message dropped, repeated or
//! reordered on the way therefore breaks the MAC of every later one.
//!
//! [`StreamSigner`] signs every message. RFC 8945 §5.3.1 lets a server
//! leave up to 99 messages in a row unsigned (never the first nor the
//! last); [`StreamVerifier`] accepts that, digesting an unsigned message
//! whole into the MAC of the next signed one, as the RFC asks of clients.

use super::mac::{Hasher, Variables};
use super::sign::append;
use super::{Algorithm, Key, ResponseError, SignError, Verified, find};
use crate::name::NameBuf;
use crate::octets::be16;
use std::borrow::Borrow;

/// Signs the messages of one response in order (RFC 8945 §5.3.1).
#[derive(Debug, Clone)]
pub struct StreamSigner {
    key: Key,
    /// The request MAC before the first message, then the MAC of the
    /// message signed last.
    prior: Vec<u8>,
    fudge: u16,
    first: bool,
}

impl StreamSigner {
    /// A signer for the response to a request signed with `key` whose
    /// MAC was `request_mac`; `fudge` is echoed in every record (normally
    /// the request's).
    pub fn new(key: Key, request_mac: &[u8], fudge: u16) -> StreamSigner {
        StreamSigner { key, prior: request_mac.to_vec(), fudge, first: true }
    }

    /// A signer for the response to a verified request: its key, MAC and
    /// fudge.
    pub fn for_request<K: Borrow<Key>>(request: &Verified<K>) -> StreamSigner {
        StreamSigner::new(request.key.borrow().clone(), &request.mac, request.fudge)
    }

    /// The octets the TSIG record adds to each message (with an empty
    /// Other Data field), so a message can be filled up to its limit less
    /// this.
    pub fn record_len(&self) -> usize {
        // Owner, type, class, TTL, rdata length; then algorithm, time (6),
        // fudge, MAC size, MAC, original ID, error, other length.
        self.key.name.len() + 10 + self.key.algorithm.name_wire().len() + 16 + self.key.algorithm.mac_len()
    }

    /// Signs the next message of the response, appending its TSIG record
    /// with `now` as the time signed. A message that cannot be signed
    /// leaves the chain where it was.
    pub fn sign(&mut self, msg: &mut Vec<u8>, now: u64) -> Result<(), SignError> {
        let id = be16(msg, 0).ok_or(SignError::NoHeader)?;
        let key_name = NameBuf::lowercased(&self.key.name);
        let v = Variables {
            key_name: key_name.as_slice(),
            algorithm: self.key.algorithm.name_wire(),
            ttl: 0,
            time_signed: now,
            fudge: self.fudge,
            error: 0,
            other: &[],
        };
        // Unreachable: HMAC accepts keys of every length.
        let mut h = Hasher::new(&self.key).ok_or(SignError::TooLong)?;
        h.prior_mac(&self.prior);
        h.message(msg, msg.len(), id, 0);
        if self.first {
            h.variables(&v);
        } else {
            h.timers(now, self.fudge);
        }
        let mac = h.finish();
        append(msg, &v, &mac)?;
        self.prior = mac;
        self.first = false;
        Ok(())
    }
}

/// Checks the messages of a response to a request we signed, in order
/// (RFC 8945 §5.3.1, §5.4.1).
pub struct StreamVerifier<'k> {
    key: &'k Key,
    prior: Vec<u8>,
    /// The digest of the unsigned messages since the last signed one,
    /// the prior MAC first.
    running: Option<Hasher>,
    unsigned: usize,
    signed: usize,
    failed: bool,
}

impl<'k> StreamVerifier<'k> {
    /// Unsigned messages in a row a client must accept (RFC 8945 §5.3.1);
    /// one more fails the response.
    pub const MAX_UNSIGNED: usize = 99;

    /// A verifier for the response to a request signed with `key` whose
    /// MAC was `request_mac`.
    pub fn new(key: &'k Key, request_mac: &[u8]) -> StreamVerifier<'k> {
        StreamVerifier {
            key,
            prior: request_mac.to_vec(),
            running: None,
            unsigned: 0,
            signed: 0,
            failed: false,
        }
    }

    /// Checks the next message at time `now`. After a failure every later
    /// message fails too: RFC 8945 §5.3.1 has the client close the
    /// connection.
    pub fn verify(&mut self, msg: &[u8], now: u64) -> Result<(), ResponseError> {
        if self.failed {
            return Err(ResponseError::BadSig);
        }
        let r = self.step(msg, now);
        self.failed = r.is_err();
        r
    }

    /// Whether the response ended well: at least one message, the last
    /// one signed (RFC 8945 §5.3.1).
    pub fn finish(&self) -> Result<(), ResponseError> {
        if self.failed {
            return Err(ResponseError::BadSig);
        }
        if self.signed == 0 || self.unsigned > 0 {
            return Err(ResponseError::Unsigned);
        }
        Ok(())
    }

    /// Messages verified so far, signed ones only.
    pub fn signed(&self) -> usize {
        self.signed
    }

    fn hasher(&mut self) -> Result<Hasher, ResponseError> {
        match self.running.take() {
            Some(h) => Ok(h),
            None => {
                let mut h = Hasher::new(self.key).ok_or(ResponseError::WrongKey)?;
                h.prior_mac(&self.prior);
                Ok(h)
            }
        }
    }

    fn step(&mut self, msg: &[u8], now: u64) -> Result<(), ResponseError> {
        let Some(tsig) = find(msg)? else {
            // The first message is always signed; later ones may not be,
            // up to a limit.
            if self.signed == 0 || self.unsigned >= Self::MAX_UNSIGNED {
                return Err(ResponseError::Unsigned);
            }
            let id = be16(msg, 0).unwrap_or(0);
            let mut h = self.hasher()?;
            h.message(msg, msg.len(), id, 0);
            self.running = Some(h);
            self.unsigned += 1;
            return Ok(());
        };
        if tsig.mac.is_empty() && tsig.error != 0 {
            // §5.3.2: BADKEY and BADSIG answers are unsigned.
            return Err(ResponseError::Server(tsig.error));
        }
        if !self.key.name.eq_ignore_ascii_case(tsig.key_name.as_slice())
            || Algorithm::from_name(tsig.algorithm.as_slice()) != Some(self.key.algorithm)
        {
            return Err(ResponseError::WrongKey);
        }
        let len = tsig.mac.len();
        let alg = self.key.algorithm;
        if len > alg.mac_len() || len < alg.min_mac_len() {
            return Err(ResponseError::MacLength(len));
        }
        let mut h = self.hasher()?;
        h.message(msg, tsig.offset, tsig.original_id, 1);
        if self.signed == 0 {
            h.variables(&Variables {
                key_name: tsig.key_name.as_slice(),
                algorithm: alg.name_wire(),
                ttl: tsig.ttl,
                time_signed: tsig.time_signed,
                fudge: tsig.fudge,
                error: tsig.error,
                other: tsig.other,
            });
        } else {
            h.timers(tsig.time_signed, tsig.fudge);
        }
        if !h.verify_left(tsig.mac) {
            return Err(ResponseError::BadSig);
        }
        if tsig.error != 0 {
            return Err(ResponseError::Server(tsig.error));
        }
        if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
            return Err(ResponseError::BadTime);
        }
        self.prior = tsig.mac.to_vec();
        self.unsigned = 0;
        self.signed += 1;
        Ok(())
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
