//! Log lines at a bounded rate.
//!
//! A flood repeats the same event thousands of times a second; logging
//! each one costs more than the event and buries everything else. A
//! [`RateLog`] per call site lets a few lines through per second and
//! reports how many it held back in the next line it lets through.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Lets at most a number of events per second through.
#[derive(Debug)]
pub struct RateLog {
    per_second: u32,
    second: AtomicU64,
    count: AtomicU32,
    suppressed: AtomicU64,
}

impl RateLog {
    /// At most `per_second` lines per second.
    pub const fn new(per_second: u32) -> RateLog {
        RateLog {
            per_second,
            second: AtomicU64::new(0),
            count: AtomicU32::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(held back)` when this event may be logged: the number of
    /// events held back since the last one let through. `None` when it
    /// must not.
    pub fn allow(&self) -> Option<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.allow_at(now)
    }

    fn allow_at(&self, now: u64) -> Option<u64> {
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.count.store(0, Ordering::Relaxed);
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < self.per_second {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_a_few_times_a_second_with_the_count_held_back() {
        let log = RateLog::new(3);
        let first: Vec<_> = (0..1000).map(|_| log.allow_at(100)).collect();
        assert_eq!(first.iter().filter(|a| a.is_some()).count(), 3);
        assert_eq!(first[0], Some(0));
        // The next second lets lines through again and says how many were
        // held back.
        assert_eq!(log.allow_at(101), Some(997));
        assert_eq!(log.allow_at(101), Some(0));
    }
}
