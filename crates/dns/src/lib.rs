//! sixgate's DNS core: names, wire codec, zone snapshots and the answer
//! engine.
//!
//! # Architecture
//!
//! Everything here is sans-IO: functions from bytes to bytes, with no
//! sockets, threads or clocks, so that it can be tested and fuzzed alone.
//!
//! - [`name`]: wire-form names, bounded decompression, presentation text.
//! - [`message`]: decoding a query (header, question, OPT and the COOKIE
//!   and NSID options).
//! - [`cookie`]: DNS cookies (RFC 7873) with RFC 9018 server cookies,
//!   made and checked with the time and address passed in.
//! - [`ident`]: the server's identifier for NSID (RFC 5001) and the
//!   `id.server` CH TXT answer (RFC 4892).
//! - [`zone`]: an immutable zone snapshot with copy-on-write updates, and
//!   an ordered index of its NSEC and NSEC3 owners.
//! - [`catalog`]: the set of zones, found by longest match.
//! - [`answer`]: RFC 1034 §4.3.2 lookup producing the response bytes,
//!   with signatures and NSEC/NSEC3 denial for DO queries to signed zones
//!   (RFC 4035 §3.1, RFC 5155 §7.2).
//! - [`writer`]: response building with compression and whole-RRset
//!   truncation.
//! - [`zonefile`]: RFC 1035 zone files in and out; [`present`]: the fast
//!   writer of the common and DNSSEC types it renders with. Before the
//!   third-party scanner reads a file, `prescan` makes `@` in rdata the
//!   origin and encodes the types the scanner lacks (`rdatatext`).
//! - [`tsig`]: RFC 8945 transaction signatures: verifying requests,
//!   signing responses, refusing replays.
//! - [`delegation`], [`lookup`]: queries sixgate sends (NS to check a
//!   delegation, A/AAAA for ANAME targets) and the reading of their
//!   answers.
//! - [`limits`]: the size limits every write is held to (RRset wire
//!   size, and per-account counts).
//! - [`update`]: RFC 2136 dynamic updates: decoding, prerequisites, and
//!   the zone changes an update makes.
//! - [`xfr`]: outgoing zone transfers: reading AXFR and IXFR requests,
//!   choosing between IXFR and AXFR, and writing the response message by
//!   message from a snapshot or the journal's versions, signed with TSIG.
//! - [`notify`]: the NOTIFY (RFC 1996) a primary sends, the SOA query
//!   that reads a secondary's serial, and the reading of their answers.
//!
//! The server crate owns the sockets and publishes new [`catalog::Catalog`]
//! values by atomic pointer swap; the store crate owns durability.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]
// Tests fail by panicking; the lints guard the code that faces input.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod answer;
pub mod catalog;
pub mod catzone;
pub mod check;
pub mod civil;
pub mod cookie;
pub mod delegation;
pub mod dsquery;
pub mod ident;
pub mod limits;
pub mod lookup;
pub mod message;
pub mod name;
pub mod notify;
pub mod nsec3;
mod octets;
mod prescan;
pub mod present;
mod privtype;
mod rdatatext;
pub mod rtype;
pub mod tsig;
pub mod update;
pub mod writer;
pub mod xfr;
pub mod zone;
pub mod zonefile;

pub use answer::{
    Answered, Client, Limits, Outcome, Transport, badcookie_reply, respond, respond_signed, respond_to,
};
pub use catalog::Catalog;
pub use cookie::CookieStatus;
pub use zone::{Change, Record, Zone};
