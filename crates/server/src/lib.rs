//! sixgate's DNS server: the listeners.
//!
//! # Architecture
//!
//! The listeners are the read path's last step: they answer from the
//! current [`Catalog`], an immutable snapshot in an `ArcSwap` that the
//! control plane's publisher (`sixgate_control::publish`) swaps after each
//! commit. They never open the store; this crate does not depend on it.
//!
//! - [`bind`]: the sockets, one `SO_REUSEPORT` UDP socket per worker.
//! - [`udp`]: one OS thread per worker, each with its own `SO_REUSEPORT`
//!   socket, answering with no locks and no allocation per query.
//! - [`cookies`]: counts of what DNS cookies proved, per UDP batch.
//! - [`counters`]: responses by rcode, type and transport, and the time
//!   a UDP query waits inside its worker, counted without shared cache
//!   lines on the UDP hot path.
//! - [`tcp`]: RFC 7766 TCP on tokio, with pipelining, a deadline for each
//!   phase of a connection (idle, a message's rest, a write the client
//!   does not read), and connection caps in total and per client address
//!   (`sixgate_listen`).
//! - [`rrl`]: response-rate limiting of UDP answers, a lock-free table of
//!   token buckets shared by every worker.
//! - [`queue`]: an RFC 2136 UPDATE is not answered here but, once the
//!   listener has checked that it could be authentic, queued as a
//!   [`queue::Job`] for the control plane's writer, which answers it once
//!   the change is durable and served.
//! - [`transfer`]: outgoing AXFR and IXFR on the TCP listener, under an
//!   access decision, the journal's history and caps that the control
//!   plane provides ([`transfer::TransferSource`]).
//!
//! Every listener takes a shutdown signal and stops cleanly.
#![warn(missing_docs)]

pub mod bind;
pub mod cookies;
pub mod counters;
pub mod queue;
pub mod rrl;
pub mod tcp;
pub mod transfer;
pub mod udp;

use std::sync::Arc;

use arc_swap::ArcSwap;
use sixgate_dns::Catalog;

/// The catalog shared by all listeners.
pub type SharedCatalog = Arc<ArcSwap<Catalog>>;
