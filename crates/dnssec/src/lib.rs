//! sixgate's DNSSEC: keys, signatures, denial of existence, DS.
//!
//! # Architecture
//!
//! Sans-IO like the DNS core: no sockets, no clocks; times are passed in.
//! Keys are ring key pairs stored as PKCS#8 by the store crate, which owns
//! when and what to sign; this crate owns how.
//!
//! - [`algorithm`]: the signing algorithms (13 and 15, RFC 8624).
//! - [`key`]: key generation and loading, DNSKEY rdata, key tags.
//! - [`canonical`]: the canonical RR form signatures cover.
//! - [`rrsig`]: making, reading and checking RRSIGs.
//! - [`denial`]: NSEC and NSEC3 rdata and type bitmaps.
//! - [`ds`]: DS digests and the CDS/CDNSKEY delete records.
//! - [`sign`]: what is signed and chained, and the whole-zone signer.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]
// Tests fail by panicking; the lints guard the code that faces input.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod algorithm;
pub mod canonical;
pub mod denial;
pub mod ds;
pub mod key;
pub mod policy;
pub mod rrsig;
pub mod sign;

pub use algorithm::Algorithm;
pub use key::KeyPair;

#[cfg(test)]
mod tests;
