//! sixgate's DNS server: listeners and snapshot publication.
//!
//! # Architecture
//!
//! - [`publish`]: the current [`Catalog`] lives in an `ArcSwap`. A follower
//!   thread reads the store's journal and swaps in a new catalog after each
//!   commit, sharing every unchanged zone (and every unchanged shard of a
//!   changed zone) with the old one.
//! - [`udp`]: one OS thread per worker, each with its own `SO_REUSEPORT`
//!   socket, answering with no locks and no allocation per query.
//! - [`tcp`]: RFC 7766 TCP on tokio, with pipelining, idle timeouts and a
//!   connection limit.
//!
//! Every listener takes a shutdown signal and stops cleanly.
#![warn(missing_docs)]

pub mod bind;
pub mod dnssec;
pub mod exchange;
pub mod publish;
pub mod tcp;
pub mod udp;
pub mod update;
pub mod verify;

use std::sync::Arc;

use arc_swap::ArcSwap;
use sixgate_dns::Catalog;

/// The catalog shared by all listeners.
pub type SharedCatalog = Arc<ArcSwap<Catalog>>;
