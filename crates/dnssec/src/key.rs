//! Signing keys: generation, storage form (PKCS#8), DNSKEY rdata, key tags.
//!
//! Private keys only leave this type as PKCS#8 bytes for the store; the
//! `Debug` form shows the public side only, so a key can never end up in a
//! log by accident.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

// Ed25519 signs with aws-lc-rs: about 9 µs a signature against ring's 23
// (measured on the benchmark machine), which decides whole-zone signing
// time. P-256 stays with ring, where the two are within 10 % of each other.
// Both read the same PKCS#8 documents, so stored keys do not change.
use aws_lc_rs::signature::{Ed25519KeyPair as FastEd25519, KeyPair as _};

use crate::algorithm::Algorithm;

/// DNSKEY flag bits (RFC 4034 §2.1.1, RFC 5011 §3).
pub mod flags {
    /// Zone Key: set on every key that signs zone data.
    pub const ZONE: u16 = 0x0100;
    /// Secure Entry Point: a KSK or CSK, the key the parent's DS names.
    pub const SEP: u16 = 0x0001;
    /// Revoked (RFC 5011).
    pub const REVOKE: u16 = 0x0080;
}

/// DNSKEY protocol field, always 3 (RFC 4034 §2.1.2).
const PROTOCOL: u8 = 3;

/// Why a key could not be made, loaded or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The random generator failed.
    #[error("could not generate a key")]
    Generate,
    /// Stored key bytes that do not hold a key of this algorithm.
    #[error("stored private key is not a valid {0} key")]
    BadPrivateKey(Algorithm),
    /// Signing failed.
    #[error("signing failed")]
    Sign,
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(FastEd25519),
}

/// A private key with its DNSKEY flags.
pub struct KeyPair {
    algorithm: Algorithm,
    flags: u16,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    inner: Inner,
    rng: SystemRandom,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm)
            .field("flags", &self.flags)
            .field("key_tag", &self.key_tag())
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Generates a new key.
    pub fn generate(algorithm: Algorithm, flags: u16) -> Result<KeyPair, KeyError> {
        let rng = SystemRandom::new();
        let doc = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| KeyError::Generate)?;
        KeyPair::from_pkcs8(algorithm, flags, doc.as_ref())
    }

    /// Loads a key from its stored PKCS#8 form.
    pub fn from_pkcs8(algorithm: Algorithm, flags: u16, pkcs8: &[u8]) -> Result<KeyPair, KeyError> {
        let rng = SystemRandom::new();
        let bad = |_| KeyError::BadPrivateKey(algorithm);
        let (inner, public) = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let k =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).map_err(bad)?;
                // RFC 6605 §4: the DNSKEY holds X | Y, without the SEC1
                // uncompressed-point prefix 0x04.
                let p = k.public_key().as_ref().get(1..).unwrap_or(&[]).to_vec();
                (Inner::Ecdsa(k), p)
            }
            Algorithm::Ed25519 => {
                let k = FastEd25519::from_pkcs8_maybe_unchecked(pkcs8)
                    .map_err(|_| KeyError::BadPrivateKey(algorithm))?;
                let p = k.public_key().as_ref().to_vec();
                (Inner::Ed25519(k), p)
            }
        };
        Ok(KeyPair { algorithm, flags, pkcs8: pkcs8.to_vec(), public, inner, rng })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The DNSKEY flags.
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// The private key in PKCS#8, for the store only.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as the DNSKEY carries it.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// The DNSKEY rdata (RFC 4034 §2.1).
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        dnskey_rdata(self.flags, self.algorithm.code(), &self.public)
    }

    /// The key tag (RFC 4034 Appendix B).
    pub fn key_tag(&self) -> u16 {
        key_tag(&self.dnskey_rdata())
    }

    /// Signs `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut out = Vec::with_capacity(self.algorithm.signature_len());
        self.sign_into(data, &mut out)?;
        Ok(out)
    }

    /// Signs `data`, appending the signature to `out`.
    pub fn sign_into(&self, data: &[u8], out: &mut Vec<u8>) -> Result<(), KeyError> {
        match &self.inner {
            Inner::Ecdsa(k) => {
                out.extend_from_slice(k.sign(&self.rng, data).map_err(|_| KeyError::Sign)?.as_ref())
            }
            Inner::Ed25519(k) => out.extend_from_slice(k.sign(data).as_ref()),
        }
        Ok(())
    }
}

/// DNSKEY rdata from its parts.
pub fn dnskey_rdata(flags: u16, algorithm: u8, public_key: &[u8]) -> Vec<u8> {
    let mut rd = Vec::with_capacity(4 + public_key.len());
    rd.extend_from_slice(&flags.to_be_bytes());
    rd.push(PROTOCOL);
    rd.push(algorithm);
    rd.extend_from_slice(public_key);
    rd
}

/// The key tag of DNSKEY rdata (RFC 4034 Appendix B; algorithm 1 is not
/// special-cased, it is not used).
pub fn key_tag(dnskey_rdata: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, &b) in dnskey_rdata.iter().enumerate() {
        acc += if i % 2 == 0 { u32::from(b) << 8 } else { u32::from(b) };
    }
    acc += (acc >> 16) & 0xffff;
    (acc & 0xffff) as u16
}

/// The fields of DNSKEY rdata: flags, protocol, algorithm, public key.
pub fn decode_dnskey(rdata: &[u8]) -> Option<(u16, u8, u8, &[u8])> {
    let (head, key) = rdata.split_at_checked(4)?;
    let flags = u16::from_be_bytes([*head.first()?, *head.get(1)?]);
    Some((flags, *head.get(2)?, *head.get(3)?, key))
}
