//! sixgate's managed DNSSEC: keys, signatures, denial of existence, DS,
//! the signing policy and key rollovers.
//!
//! # Architecture
//!
//! Everything here is sans-IO like the DNS core: no sockets, no clock
//! reads, no sleeps. The time is passed in as Unix seconds, and what was
//! observed at the parent zone is passed in as data, so every rollover can
//! be replayed in a test by stepping a simulated clock. Keys are ring key
//! pairs stored as PKCS#8 by the store crate, which owns when and what to
//! sign; this crate owns how.
//!
//! - [`algorithm`]: the signing algorithms (13 and 15, RFC 8624).
//! - [`key`]: key generation and loading, DNSKEY rdata, key tags.
//! - [`canonical`]: the canonical RR form signatures cover.
//! - [`check`]: the check a signed snapshot passes before it is served.
//! - [`rrsig`]: making, reading and checking RRSIGs.
//! - [`denial`]: NSEC and NSEC3 rdata and type bitmaps.
//! - [`ds`]: DS digests and the CDS/CDNSKEY delete records.
//! - [`sign`]: what is signed and chained, and the whole-zone signer.
//! - [`policy`]: the signing policy (algorithm, key layout, NSEC/NSEC3,
//!   signature validity, TTLs and delays) and its validation.
//! - [`rollover`]: the keys of a zone, their RFC 7583 states, the planner
//!   that moves them through ZSK, KSK/CSK and algorithm rollovers, into
//!   and out of DNSSEC, and the view of which keys the zone publishes and
//!   signs with at a given moment. Keys appear there only as an opaque id
//!   with a role, an algorithm number and a key tag. The store keeps the
//!   [`rollover::Keyring`] (it is serde-serializable) and calls
//!   [`rollover::plan`] when [`rollover::Plan::next_event`] comes due.
//! - [`validate`]: the other side: a validator (RFC 4035 §5, RFC 5155 §8)
//!   and a validating resolver with a TTL-aware cache on a simulated
//!   clock, which asks sixgate's answer engine, so that rollovers can be
//!   shown never to leave a cached resolver with a bogus answer.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]
// Tests fail by panicking; the lints guard the code that faces input.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod algorithm;
pub mod canonical;
pub mod check;
pub mod denial;
pub mod ds;
pub mod key;
pub mod policy;
pub mod rollover;
pub mod rrsig;
pub mod sign;
pub mod validate;

pub use algorithm::Algorithm;
pub use key::KeyPair;
pub use policy::{Denial, KeyLayout, Policy, PolicyError};

#[cfg(test)]
mod tests;
