//! sixgate's managed DNSSEC.
//!
//! # Architecture
//!
//! Everything here is sans-IO: no sockets, no clock reads, no sleeps. The
//! time is passed in as Unix seconds, and what was observed at the parent
//! zone is passed in as data, so every rollover can be replayed in a test
//! by stepping a simulated clock.
//!
//! - [`policy`]: the signing policy (algorithm, key layout, NSEC/NSEC3,
//!   signature validity, TTLs and delays) and its validation.
//! - [`rollover`]: the keys of a zone, their RFC 7583 states, the
//!   planner that moves them through ZSK, KSK/CSK and algorithm
//!   rollovers, into and out of DNSSEC, and the view of which keys the
//!   zone publishes and signs with at a given moment.
//!
//! Keys appear here only as an opaque id with a role, an algorithm number
//! and a key tag; generating key material, signing RRsets and building
//! NSEC/NSEC3 chains belong to other modules of this crate. The store
//! keeps the [`rollover::Keyring`] (it is serde-serializable) and calls
//! [`rollover::plan`] when [`rollover::Plan::next_event`] comes due.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]
// Tests fail by panicking; the lints guard the code that faces input.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod policy;
pub mod rollover;

pub use policy::{Algorithm, Denial, KeyLayout, Policy, PolicyError};
