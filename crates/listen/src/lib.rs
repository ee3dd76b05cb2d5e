//! What every sixgate TCP listener shares.
//!
//! # Architecture
//!
//! DNS over TCP, the API and the proxy live in one process: a listener
//! that one host can exhaust takes every other service down with it
//! (file descriptors, memory, tasks). So each listener runs its
//! connections through the same pieces, and only the phases differ:
//!
//! - [`gate`]: admission. A [`Gate`] caps the connections of one
//!   listener, in total and per client address (a /32 for IPv4, a /64 for
//!   IPv6). At a cap, the oldest *idle* connection is closed to make room
//!   (RFC 7766 §6.2.3); when none is idle, the new connection is accepted
//!   and closed at once, so that nothing waits unaccepted in the kernel
//!   backlog.
//! - [`accept`]: the accept loop's step, with back-off on errors such as
//!   EMFILE instead of a spin, counted, and logged at a limited rate.
//! - [`io`]: a writer that fails when a write makes no progress for a
//!   deadline (a peer that never reads), and the TCP keepalive and
//!   `TCP_USER_TIMEOUT` options.
//! - [`limits`]: the caps and phase deadlines of a listener, with defaults
//!   for the public internet and the peer setting each follows.
//! - [`metrics`]: one metric set for all listeners: open, accepted,
//!   refused at a cap, closed to make room, timed out by phase, reset.
//! - [`ratelog`]: a log line per site at a bounded rate, for what a
//!   flood would otherwise repeat.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod accept;
pub mod gate;
pub mod io;
pub mod limits;
pub mod metrics;
pub mod ratelog;

pub use gate::{Gate, Limits, Refused, Slot};
pub use limits::ListenerLimits;
pub use metrics::{ListenerMetrics, Phase};
