//! The MAC computation shared by signing and verifying (RFC 8945 §4.3):
//! one HMAC over the algorithms we implement, fed the digest components
//! in their wire forms.

use hmac::{Hmac, KeyInit, Mac};

use super::{Algorithm, Key, TIME_MASK};
use crate::message::HEADER_LEN;
use crate::octets::be16;
use crate::rtype::CLASS_ANY;

/// An HMAC in progress, for any of our algorithms.
#[derive(Clone)]
pub(super) enum Hasher {
    Md5(Hmac<md5::Md5>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl Hasher {
    pub(super) fn new(key: &Key) -> Option<Hasher> {
        // HMAC takes keys of any length (RFC 2104 §2), so these never fail.
        Some(match key.algorithm {
            Algorithm::HmacMd5 => Hasher::Md5(Hmac::new_from_slice(&key.secret).ok()?),
            Algorithm::HmacSha256 => Hasher::Sha256(Hmac::new_from_slice(&key.secret).ok()?),
            Algorithm::HmacSha512 => Hasher::Sha512(Hmac::new_from_slice(&key.secret).ok()?),
        })
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(m) => m.update(data),
            Hasher::Sha256(m) => m.update(data),
            Hasher::Sha512(m) => m.update(data),
        }
    }

    pub(super) fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Md5(m) => m.finalize().into_bytes().to_vec(),
            Hasher::Sha256(m) => m.finalize().into_bytes().to_vec(),
            Hasher::Sha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }

    /// Compares `tag` with the leftmost octets of the MAC in constant time
    /// (a truncated MAC keeps the leftmost octets, RFC 8945 §5.2.2.1).
    pub(super) fn verify_left(self, tag: &[u8]) -> bool {
        match self {
            Hasher::Md5(m) => m.verify_truncated_left(tag).is_ok(),
            Hasher::Sha256(m) => m.verify_truncated_left(tag).is_ok(),
            Hasher::Sha512(m) => m.verify_truncated_left(tag).is_ok(),
        }
    }

    /// Digests `msg[..end]` as it was before signing: the ID replaced by
    /// `id` and ARCOUNT lowered by `removed` (RFC 8945 §4.3.1).
    pub(super) fn message(&mut self, msg: &[u8], end: usize, id: u16, removed: u16) {
        let ar = be16(msg, 10).unwrap_or(0).wrapping_sub(removed);
        self.update(&id.to_be_bytes());
        self.update(msg.get(2..10).unwrap_or(&[]));
        self.update(&ar.to_be_bytes());
        self.update(msg.get(HEADER_LEN..end).unwrap_or(&[]));
    }

    /// Digests the TSIG variables (RFC 8945 §4.3.3): names in canonical
    /// (lowercased, uncompressed) form.
    pub(super) fn variables(&mut self, v: &Variables<'_>) {
        self.update(v.key_name);
        self.update(&CLASS_ANY.to_be_bytes());
        self.update(&v.ttl.to_be_bytes());
        self.update(v.algorithm);
        self.update((v.time_signed & TIME_MASK).to_be_bytes().get(2..).unwrap_or(&[]));
        self.update(&v.fudge.to_be_bytes());
        self.update(&v.error.to_be_bytes());
        self.update(&(v.other.len() as u16).to_be_bytes());
        self.update(v.other);
    }

    /// Digests the TSIG timers alone (RFC 8945 §5.3.1): what a message
    /// after the first of a multi-message response contributes of its
    /// TSIG record.
    pub(super) fn timers(&mut self, time_signed: u64, fudge: u16) {
        self.update((time_signed & TIME_MASK).to_be_bytes().get(2..).unwrap_or(&[]));
        self.update(&fudge.to_be_bytes());
    }

    /// Digests a prior MAC with its length (RFC 8945 §4.3.1).
    pub(super) fn prior_mac(&mut self, mac: &[u8]) {
        self.update(&(mac.len() as u16).to_be_bytes());
        self.update(mac);
    }
}

/// The TSIG fields that are digested, plus the MAC-independent rest.
pub(super) struct Variables<'a> {
    pub(super) key_name: &'a [u8],
    pub(super) algorithm: &'a [u8],
    pub(super) ttl: u32,
    pub(super) time_signed: u64,
    pub(super) fudge: u16,
    pub(super) error: u16,
    pub(super) other: &'a [u8],
}
