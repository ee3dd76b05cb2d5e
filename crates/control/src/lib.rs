//! sixgate's control plane: the tasks that write the store or turn it into
//! what the listeners serve.
//!
//! # Architecture
//!
//! Every writer here goes through the store's one write path
//! (`Store::by(actor)`); the listeners in `sixgate_server` only read the
//! snapshots that [`publish`] swaps in.
//!
//! - [`publish`]: the current catalog lives in an `ArcSwap`
//!   ([`sixgate_server::SharedCatalog`]). A follower thread reads the
//!   store's journal and swaps in a new catalog after each commit, sharing
//!   every unchanged zone (and every unchanged shard of a changed zone)
//!   with the old one.
//! - [`secondaries`]: the secondaries as the server sees them, reloaded
//!   by the follower when the store's list changes; the follower also
//!   serves the catalog zone (RFC 9432) once a secondary follows it.
//! - [`transfer`]: the transfer service's access decisions (over the
//!   secondaries) and IXFR history (over the journal).
//! - [`update`]: the RFC 2136 UPDATE writer. The listeners queue each
//!   UPDATE as a `sixgate_server::queue::Job`; [`update::run`] consumes
//!   the queue, checks TSIG and applies the change in a store transaction.
//! - [`notify`]: NOTIFY (RFC 1996) to the secondaries after every
//!   served change, coalesced and retried, and the table of what each
//!   secondary serves (SOA queries), which writes may wait on.
//! - [`dnssec`]: keeping signed zones signed: key rollovers, re-signing,
//!   and asking the parent for its DS RRset.
//! - [`watchdog`]: the signature expiry watchdog over what is served: an
//!   alert (log, zone status, metrics) days before a signature expires,
//!   whatever became of the maintenance task. The publisher's whole-zone
//!   signature checks run on their own worker threads (`verifier`).
//! - [`verify`]: delegation checks, marking a zone verified once its
//!   parent delegates it to this account's nameservers.
//! - [`metrics`]: the publisher's histograms and held zones, and gauges
//!   read from the store on a timer (journal size, chains of trust).
//! - [`exchange`]: one DNS question over UDP to another server, used by
//!   the delegation and DS checks (and by the ANAME resolver).
//!
//! Every task stops cleanly: the follower and the checks on a shutdown
//! signal, the UPDATE writer when its queue closes.
#![warn(missing_docs)]

pub mod dnssec;
pub mod exchange;
pub mod metrics;
pub mod notify;
pub mod publish;
pub mod secondaries;
pub mod transfer;
pub mod update;
mod verifier;
pub mod verify;
pub mod watchdog;
