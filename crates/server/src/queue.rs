//! The UPDATE queue: the listeners' side of RFC 2136 UPDATE.
//!
//! The listeners hand every UPDATE that could be authentic to the control
//! plane's writer (`sixgate_control::update::UpdateHandler`) through a
//! bounded queue instead of answering it themselves: an update writes to
//! the store and waits for an fsync, which must not stall the query
//! workers. The writer sends the answer once the change is durable and
//! served.
//!
//! What cannot be authentic never reaches the queue: [`UpdateQueue::intake`]
//! screens each message first ([`update::screen`], which allocates
//! nothing), answers the unsigned and malformed ones on the spot from the
//! listener's own buffer, and drops those shorter than a header. When the
//! queue is full, the update is dropped (UDP: the client retries) or its
//! connection closed (TCP), and counted. The writer takes jobs from the
//! queue with a fixed number of workers, so the queue's bound is the bound
//! on the work waiting. [`UpdateStats`] counts each outcome for
//! `/metrics`; refusals are logged at a limited rate.

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sixgate_dns::update::{self, Screen};
use sixgate_listen::ratelog::RateLog;
use tokio::sync::{mpsc, oneshot};

/// Updates waiting for the writer; more are dropped (UDP) or their
/// connection closed (TCP) rather than queued without bound.
pub const QUEUE: usize = 256;

static REFUSED_LOG: RateLog = RateLog::new(2);
static FULL_LOG: RateLog = RateLog::new(1);

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

/// What became of the UPDATE requests, from the listeners to the writer.
#[derive(Debug, Default)]
pub struct UpdateStats {
    /// UPDATE requests the listeners received.
    pub received: AtomicU64,
    /// Dropped by a listener: shorter than a header.
    pub ignored: AtomicU64,
    /// Answered by a listener without queueing: unsigned (REFUSED) or
    /// malformed (FORMERR).
    pub screened: AtomicU64,
    /// Queued for the writer.
    pub queued: AtomicU64,
    /// Not queued because the queue was full.
    pub dropped: AtomicU64,
    /// Refused by the writer before the store was touched: malformed,
    /// unsigned, or signed with no known key, a bad MAC, outside the time
    /// window, or replayed.
    pub tsig_refused: AtomicU64,
    /// Authenticated and answered NOERROR.
    pub applied: AtomicU64,
    /// Authenticated and refused (prerequisites, policy, zone) or failed.
    pub refused: AtomicU64,
}

impl UpdateStats {
    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, series: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in series {
                let _ = if labels.is_empty() {
                    writeln!(out, "{name} {v}")
                } else {
                    writeln!(out, "{name}{{{labels}}} {v}")
                };
            }
        };
        counter("sixgate_update_received_total", "UPDATE requests received.", &[("", get(&self.received))]);
        counter(
            "sixgate_update_accepted_total",
            "UPDATE requests queued for the writer.",
            &[("", get(&self.queued))],
        );
        counter(
            "sixgate_update_dropped_total",
            "UPDATE requests not handled: shorter than a header, or the queue was full.",
            &[("reason=\"short\"", get(&self.ignored)), ("reason=\"queue_full\"", get(&self.dropped))],
        );
        counter(
            "sixgate_update_refused_total",
            "UPDATE requests refused, by the check that refused them.",
            &[
                ("check=\"listener\"", get(&self.screened)),
                ("check=\"tsig\"", get(&self.tsig_refused)),
                ("check=\"update\"", get(&self.refused)),
            ],
        );
        counter("sixgate_update_applied_total", "UPDATE requests applied.", &[("", get(&self.applied))]);
        out
    }
}

/// What a listener is to do after [`UpdateQueue::intake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Not an UPDATE request: answer it as a query.
    NotUpdate,
    /// The answer is in the buffer given: send it.
    Answer,
    /// Queued; the writer answers.
    Queued,
    /// Nothing to send: too short to answer, or the queue was full.
    Dropped,
}

/// The sending side the listeners hold.
#[derive(Debug, Clone)]
pub struct UpdateQueue {
    tx: mpsc::Sender<Job>,
    stats: Arc<UpdateStats>,
}

impl UpdateQueue {
    /// A queue of `capacity` jobs, counting into `stats`, and its
    /// receiving end for the writer.
    pub fn new(capacity: usize, stats: Arc<UpdateStats>) -> (UpdateQueue, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(capacity);
        (UpdateQueue { tx, stats }, rx)
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<UpdateStats> {
        &self.stats
    }

    /// Takes `msg` in if it is an UPDATE request: answered into `out`
    /// (which holds only that answer then), queued with the reply `reply`
    /// makes, or dropped. `peer` is for the logs.
    pub fn intake(
        &self,
        msg: &[u8],
        peer: Option<SocketAddr>,
        out: &mut Vec<u8>,
        reply: impl FnOnce() -> Option<Reply>,
    ) -> Intake {
        let rcode = match update::screen(msg) {
            Screen::NotUpdate => return Intake::NotUpdate,
            Screen::Drop => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                return Intake::Dropped;
            }
            Screen::Answer(rcode) => rcode,
            Screen::Queue => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                let Some(reply) = reply() else { return Intake::Dropped };
                return self.offer(Job { msg: msg.to_vec(), reply }, peer);
            }
        };
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        self.stats.screened.fetch_add(1, Ordering::Relaxed);
        if let Some(held) = REFUSED_LOG.allow() {
            tracing::info!(client = ?peer, rcode = rcode.code(), held_back = held, "UPDATE refused: unsigned or malformed");
        } else {
            tracing::debug!(client = ?peer, rcode = rcode.code(), "UPDATE refused: unsigned or malformed");
        }
        update::response_into(msg, rcode.code(), out);
        Intake::Answer
    }

    /// Queues `job` unless the queue is full.
    fn offer(&self, job: Job, peer: Option<SocketAddr>) -> Intake {
        match self.tx.try_send(job) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                Intake::Queued
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = FULL_LOG.allow() {
                    tracing::warn!(client = ?peer, held_back = held, "UPDATE queue full; dropped");
                }
                Intake::Dropped
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x04test\x00\x00\x06\x00\x01");
        m
    }

    /// [`unsigned`] with a TSIG record (its MAC is not checked here).
    fn signed(id: u8) -> Vec<u8> {
        let mut m = unsigned();
        m[1] = id;
        m[11] = 1;
        m.extend_from_slice(b"\x02k1\x00\x00\xfa\x00\xff\x00\x00\x00\x00");
        let mut rdata = b"\x0bhmac-sha256\x00".to_vec();
        rdata.extend_from_slice(&[0, 0, 0x65, 0x53, 0xf1, 0x00, 1, 0x2c, 0, 32]);
        rdata.extend_from_slice(&[7; 32]);
        rdata.extend_from_slice(&[0x12, id, 0, 0, 0, 0]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
        m
    }

    #[test]
    fn each_update_is_counted_once_by_what_became_of_it() {
        let stats = Arc::new(UpdateStats::default());
        let (queue, mut jobs) = UpdateQueue::new(2, stats.clone());
        let mut out = Vec::new();
        let tcp = || Some(Reply::Tcp(oneshot::channel().0));
        assert_eq!(queue.intake(&[0, 0, 0x28], None, &mut out, tcp), Intake::Dropped);
        assert_eq!(queue.intake(&unsigned(), None, &mut out, tcp), Intake::Answer);
        assert_eq!(out, update::response(&unsigned(), 5));
        let mut query = unsigned();
        query[2] = 0;
        assert_eq!(queue.intake(&query, None, &mut out, tcp), Intake::NotUpdate);
        for id in 0..3 {
            let expected = if id < 2 { Intake::Queued } else { Intake::Dropped };
            assert_eq!(queue.intake(&signed(id), None, &mut out, tcp), expected, "update {id}");
        }
        assert_eq!(jobs.try_recv().unwrap().msg, signed(0));
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(
            [&stats.received, &stats.ignored, &stats.screened, &stats.queued, &stats.dropped].map(get),
            [5, 1, 1, 2, 1]
        );
        let text = stats.render();
        assert!(text.contains("sixgate_update_dropped_total{reason=\"queue_full\"} 1\n"), "{text}");
        assert!(text.contains("sixgate_update_refused_total{check=\"listener\"} 1\n"), "{text}");
    }
}
