//! Counting what DNS cookies proved (RFC 7873), for `/metrics`.
//!
//! A UDP worker tallies its batch in a plain local [`Tally`] and adds it
//! to the shared [`CookieStats`] once per batch, so that workers do not
//! contend on a cache line per query.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sixgate_dns::CookieStatus;

/// Queries by what their COOKIE option proved, and BADCOOKIE replies.
#[derive(Debug, Default)]
pub struct CookieStats {
    /// A client cookie alone.
    pub client_only: AtomicU64,
    /// A valid server cookie.
    pub valid: AtomicU64,
    /// A server cookie that did not verify.
    pub invalid: AtomicU64,
    /// BADCOOKIE replies sent.
    pub badcookie: AtomicU64,
}

/// One batch's counts, kept by one worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    client_only: u64,
    valid: u64,
    invalid: u64,
    badcookie: u64,
}

impl Tally {
    /// Counts one answered query: what its cookie proved, and whether
    /// the answer is a BADCOOKIE.
    pub fn count(&mut self, cookie: CookieStatus, badcookie: bool) {
        match cookie {
            CookieStatus::None => {}
            CookieStatus::ClientOnly => self.client_only += 1,
            CookieStatus::Valid => self.valid += 1,
            CookieStatus::Invalid => self.invalid += 1,
        }
        self.badcookie += u64::from(badcookie);
    }
}

impl CookieStats {
    /// Adds a batch's counts; nothing is written for a batch without
    /// cookies.
    pub fn add(&self, t: &Tally) {
        for (counter, n) in [
            (&self.client_only, t.client_only),
            (&self.valid, t.valid),
            (&self.invalid, t.invalid),
            (&self.badcookie, t.badcookie),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// The counters in Prometheus text format, for UDP queries.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP sixgate_dns_cookies_total UDP queries with a COOKIE option, by what it proved (RFC 7873).\n\
             # TYPE sixgate_dns_cookies_total counter\n\
             sixgate_dns_cookies_total{{transport=\"udp\",status=\"client_only\"}} {}\n\
             sixgate_dns_cookies_total{{transport=\"udp\",status=\"valid\"}} {}\n\
             sixgate_dns_cookies_total{{transport=\"udp\",status=\"invalid\"}} {}\n\
             # HELP sixgate_dns_badcookie_total BADCOOKIE replies sent over UDP.\n\
             # TYPE sixgate_dns_badcookie_total counter\n\
             sixgate_dns_badcookie_total{{transport=\"udp\"}} {}\n",
            get(&self.client_only),
            get(&self.valid),
            get(&self.invalid),
            get(&self.badcookie),
        )
    }
}

/// Seconds since the epoch: cookie timestamps (RFC 9018 §4.2).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_batch_is_added_once_and_rendered() {
        let stats = CookieStats::default();
        let mut t = Tally::default();
        for (status, bad) in [
            (CookieStatus::None, false),
            (CookieStatus::ClientOnly, false),
            (CookieStatus::ClientOnly, true),
            (CookieStatus::Valid, false),
            (CookieStatus::Invalid, false),
        ] {
            t.count(status, bad);
        }
        stats.add(&t);
        stats.add(&t);
        let text = stats.render();
        assert!(text.contains("status=\"client_only\"} 4\n"), "{text}");
        assert!(text.contains("status=\"valid\"} 2\n"), "{text}");
        assert!(text.contains("status=\"invalid\"} 2\n"), "{text}");
        assert!(text.contains("sixgate_dns_badcookie_total{transport=\"udp\"} 2\n"), "{text}");
    }
}
