//! What the write path counts, for `/metrics`.
//!
//! Every zone write ends in one transaction ([`crate::write`]); its
//! latency, from `BEGIN IMMEDIATE` to the end of `COMMIT` (the fsync of
//! the WAL with `synchronous=FULL` included), goes into one histogram.
//! The time a write waits for the write lock before `BEGIN` returns is
//! not in it: that is queueing, not the cost of a commit.
//!
//! The write-to-served latency needs the moment of each commit on the
//! reading side. Writers in this process (the API, UPDATE, the ANAME
//! refresher, DNSSEC maintenance) each open their own connection, so the
//! moments go through one process-wide list, [`WRITES`]: a commit adds
//! its journal id and time, and the publisher, once the snapshot that
//! serves a journal position is swapped in, takes every commit up to it
//! ([`WriteMetrics::served`]). Commits made by another process (the CLI)
//! are not in the list and not measured. The list is bounded
//! ([`MAX_PENDING`]): with no publisher taking them (a CLI process), the
//! oldest are forgotten.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sixgate_metrics::{Histogram, LATENCY};

/// Commits remembered until served; beyond, the oldest are forgotten.
pub const MAX_PENDING: usize = 4096;

/// The write path's metrics.
#[derive(Debug)]
pub struct WriteMetrics {
    /// Zone write transactions, begin to durable commit.
    pub commit: Histogram,
    /// Journal id and time of the commits not yet served, oldest first.
    pending: Mutex<VecDeque<(i64, Instant)>>,
}

/// The write path's metrics of this process.
pub static WRITES: WriteMetrics = WriteMetrics::new();

impl WriteMetrics {
    /// Empty metrics.
    pub const fn new() -> WriteMetrics {
        WriteMetrics { commit: Histogram::new(&LATENCY), pending: Mutex::new(VecDeque::new()) }
    }

    /// A transaction begun at `started` has committed as `journal_id` (0:
    /// nothing changed, nothing to serve).
    pub(crate) fn committed(&self, journal_id: i64, started: Instant) {
        let now = Instant::now();
        self.commit.observe(now.saturating_duration_since(started));
        if journal_id <= 0 {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= MAX_PENDING {
            pending.pop_front();
        }
        pending.push_back((journal_id, now));
    }

    /// The catalog serving everything up to `position` is swapped in:
    /// calls `took` with the time from each commit up to it to now, and
    /// forgets those commits.
    pub fn served(&self, position: i64, mut took: impl FnMut(Duration)) {
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Ids are mostly in order; a commit whose id is lower than one
        // before it (two writers racing) is still found.
        pending.retain(|&(id, at)| {
            if id > position {
                return true;
            }
            took(now.saturating_duration_since(at));
            false
        });
    }
}

impl Default for WriteMetrics {
    fn default() -> Self {
        WriteMetrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_served_once_each_up_to_the_position() {
        let m = WriteMetrics::new();
        let t = Instant::now();
        m.committed(0, t);
        m.committed(5, t);
        m.committed(3, t);
        m.committed(9, t);
        assert_eq!(m.commit.count(), 4, "every transaction is timed, the empty one too");
        let mut seen = 0;
        m.served(5, |_| seen += 1);
        assert_eq!(seen, 2, "ids 3 and 5, not the empty commit nor 9");
        m.served(5, |_| seen += 1);
        assert_eq!(seen, 2, "each commit is served once");
        m.served(100, |_| seen += 1);
        assert_eq!(seen, 3);
    }

    #[test]
    fn unserved_commits_are_bounded() {
        let m = WriteMetrics::new();
        let t = Instant::now();
        for id in 1..=(MAX_PENDING as i64 + 10) {
            m.committed(id, t);
        }
        let mut seen = 0;
        m.served(i64::MAX, |_| seen += 1);
        assert_eq!(seen, MAX_PENDING);
    }
}
