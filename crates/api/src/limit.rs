//! Per-token rate limiting: a token bucket per token id, refilled
//! continuously. The clock is passed in, so tests need no sleeps.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets idle longer than this are forgotten, bounding memory by the
/// number of tokens active in that window.
const IDLE_SECS: f64 = 600.0;

/// A rate limiter keyed by token id.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl Limiter {
    /// `rate` requests per second on average, bursts of `burst`.
    pub(crate) fn new(rate: u32, burst: u32) -> Limiter {
        Limiter { rate: f64::from(rate.max(1)), burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Takes one request from `key`'s bucket; on refusal, the seconds until
    /// one is available.
    pub(crate) fn take(&self, key: i64, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < IDLE_SECS);
        }
        let (level, at) = buckets.entry(key).or_insert((self.burst, now));
        let refill = now.duration_since(*at).as_secs_f64() * self.rate;
        *level = (*level + refill).min(self.burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *level) / self.rate).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_rate() {
        let l = Limiter::new(2, 3);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.take(1, t).is_ok());
        }
        assert_eq!(l.take(1, t), Err(1));
        // Another token has its own bucket.
        assert!(l.take(2, t).is_ok());
        // Half a second at 2/s refills one request.
        assert!(l.take(1, t + Duration::from_millis(500)).is_ok());
        assert!(l.take(1, t + Duration::from_millis(500)).is_err());
    }
}
