//! ANAME (ALIAS) records: a CNAME-like record that may sit at a zone's
//! apex. sixgate resolves the target and serves its A and AAAA records at
//! the ANAME's owner, as records of the zone.
//!
//! # Architecture
//!
//! - [`schedule`] (sans-IO): what to serve and when to look again, from
//!   TTLs with a floor, a ceiling and jitter; last good answers on
//!   failure, with backoff; empty sets on NXDOMAIN/NODATA.
//! - [`resolve`]: internal targets through sixgate's own answer engine
//!   (no network), others through upstream resolvers, with a query rate
//!   limit (a miss defers, it is no failure); CNAME chains followed,
//!   loops refused. Upstream answers are asked with DO and validated.
//! - [`chain`]: the chain of trust for that validation, from a trust
//!   anchor (the IANA root's, or one configured) down to the target's
//!   zone, with `sixgate_dnssec::validate`: a signed zone's answers must
//!   validate, and a zone is taken as insecure only with the proof.
//! - [`refresher`]: the task that ties them to the store. Resolutions run
//!   concurrently, a bounded number per account. Resolved sets are
//!   written as *derived* records through the store's write path
//!   (serial, journal), so transfers, exports and DNSSEC see them like
//!   any record; nothing is resolved per query.
#![warn(missing_docs)]

pub mod chain;
#[cfg(test)]
mod lab;
pub mod refresher;
pub mod resolve;
pub mod schedule;
