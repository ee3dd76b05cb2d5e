//! The UPDATE queue: the listeners' side of RFC 2136 UPDATE.
//!
//! The listeners hand every UPDATE to the control plane's writer
//! (`sixgate_control::update::UpdateHandler`) through a bounded queue
//! instead of answering it themselves: an update writes to the store and
//! waits for an fsync, which must not stall the query workers. This module
//! holds what both sides share: the [`Job`] a listener queues, where its
//! [`Reply`] goes, and the queue itself. The writer sends the answer once
//! the change is durable and served.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use sixgate_dns::update;
use tokio::sync::{mpsc, oneshot};

/// Updates waiting to be processed; more are dropped (UDP) or refused
/// (TCP) rather than queued without bound.
pub const QUEUE: usize = 256;

/// Where the answer to an update goes.
#[derive(Debug)]
pub enum Reply {
    /// Send a datagram from this socket.
    Udp(Arc<UdpSocket>, SocketAddr),
    /// Hand the message back to the TCP connection.
    Tcp(oneshot::Sender<Vec<u8>>),
}

/// One UPDATE message and where its answer goes.
#[derive(Debug)]
pub struct Job {
    /// The request.
    pub msg: Vec<u8>,
    /// Where the answer goes.
    pub reply: Reply,
}

/// The sending side the listeners hold.
pub type UpdateQueue = mpsc::Sender<Job>;

/// Is this message an UPDATE request (opcode 5, QR clear)?
pub fn is_update(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|&b| b & 0x80 == 0 && (b >> 3) & 0x0f == update::OPCODE)
}
