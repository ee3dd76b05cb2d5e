//! When to resolve an ANAME's target again, and what to serve meanwhile.
//!
//! Sans-IO: every function takes the time. An [`Entry`] holds what is
//! served for one ANAME and when to look again:
//! - an answer with addresses replaces the set and is refreshed when its
//!   TTL runs out, kept between the floor and the ceiling, a little early
//!   by a random jitter so that many ANAMEs do not refresh in lockstep;
//! - NXDOMAIN or NODATA for the target empties the set
//!   (draft-ietf-dnsop-aname §6: the owner then has no addresses);
//! - a failure (timeout, SERVFAIL, REFUSED, a broken answer, a CNAME
//!   loop) keeps the last good set and retries after the floor, doubling
//!   per failure up to the ceiling.
//!
//! Whether the set "changed" compares sorted sets only, so rotating
//! answers and TTL changes alone cause no write.

use std::net::IpAddr;

/// Refresh limits, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Never sooner than this after a resolution.
    pub floor: u64,
    /// Never later than this.
    pub ceiling: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { floor: 60, ceiling: 86_400 }
    }
}

/// The result of resolving a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Addresses with the smallest TTL seen.
    Addresses {
        /// IPv4 and IPv6 addresses.
        addresses: Vec<IpAddr>,
        /// Seconds they may be kept.
        ttl: u32,
    },
    /// NXDOMAIN or NODATA for both types: no addresses; look again after
    /// `ttl` (the negative TTL).
    Empty {
        /// Seconds the absence may be kept.
        ttl: u32,
        /// What was found, for the status (`NXDOMAIN`, `NODATA`).
        why: String,
    },
    /// No usable answer; keep what is served.
    Failed(String),
    /// Not tried: no upstream query was allowed now (the query rate
    /// limit). Nothing is known about the target, so nothing changes but
    /// the time of the next try.
    Deferred(String),
}

/// One ANAME's served addresses and schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The addresses served, sorted.
    pub addresses: Vec<IpAddr>,
    /// The TTL the last answer allowed.
    pub ttl: u32,
    /// When resolution last gave a definite answer.
    pub last_success: Option<u64>,
    /// Why the last resolution failed, or what the last empty answer was.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub failures: u32,
    /// When to resolve next.
    pub next_refresh: u64,
}

/// How soon a resolution the rate limit deferred is tried again.
pub const DEFERRED_RETRY: u64 = 1;

/// How far before the TTL runs out a refresh may happen, as a fraction.
const JITTER: f64 = 0.1;

impl Entry {
    /// Takes a resolution made at `now`. `jitter` in [0, 1) picks how
    /// early inside the jitter window the next refresh is. Returns true if
    /// the served set changed.
    pub fn apply(&mut self, r: Resolution, now: u64, policy: &Policy, jitter: f64) -> bool {
        let clamp = |secs: u64| secs.clamp(policy.floor, policy.ceiling.max(policy.floor));
        let early = |secs: u64| {
            let cut = (secs as f64 * JITTER * jitter.clamp(0.0, 1.0)) as u64;
            clamp(secs.saturating_sub(cut).max(policy.floor))
        };
        match r {
            Resolution::Addresses { mut addresses, ttl } => {
                addresses.sort_unstable();
                addresses.dedup();
                let changed = addresses != self.addresses;
                self.addresses = addresses;
                self.ttl = ttl;
                self.last_success = Some(now);
                self.last_error = None;
                self.failures = 0;
                self.next_refresh = now + early(clamp(u64::from(ttl)));
                changed
            }
            Resolution::Empty { ttl, why } => {
                let changed = !self.addresses.is_empty();
                self.addresses.clear();
                self.ttl = ttl;
                self.last_success = Some(now);
                self.last_error = Some(why);
                self.failures = 0;
                self.next_refresh = now + early(clamp(u64::from(ttl)));
                changed
            }
            Resolution::Failed(why) => {
                self.last_error = Some(why);
                self.failures = self.failures.saturating_add(1);
                let backoff = policy.floor.max(1).saturating_mul(1u64 << (self.failures - 1).min(20));
                self.next_refresh = now + early(clamp(backoff));
                false
            }
            // The served set, the error and the failure count stay: the
            // target was not asked, so it has not failed.
            Resolution::Deferred(_) => {
                self.next_refresh = now + DEFERRED_RETRY;
                false
            }
        }
    }

    /// Is a resolution due at `now`?
    pub fn due(&self, now: u64) -> bool {
        now >= self.next_refresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    const P: Policy = Policy { floor: 60, ceiling: 3600 };

    #[test]
    fn refresh_follows_the_ttl_within_floor_and_ceiling() {
        let mut e = Entry::default();
        assert!(e.due(0));
        assert!(e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 300 }, 1000, &P, 0.0));
        assert_eq!(e.next_refresh, 1300);
        assert!(!e.due(1299) && e.due(1300));
        // Short TTLs are held to the floor, long ones to the ceiling.
        e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 5 }, 2000, &P, 0.0);
        assert_eq!(e.next_refresh, 2060);
        e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 86_400 }, 3000, &P, 0.0);
        assert_eq!(e.next_refresh, 6600);
        // Jitter refreshes up to 10 % early, never below the floor.
        e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 1000 }, 0, &P, 0.999);
        assert!((900..=1000).contains(&e.next_refresh), "{}", e.next_refresh);
        e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 61 }, 0, &P, 0.999);
        assert_eq!(e.next_refresh, 60);
    }

    #[test]
    fn only_a_different_set_is_a_change() {
        let mut e = Entry::default();
        assert!(e.apply(
            Resolution::Addresses { addresses: ips(&["192.0.2.2", "2001:db8::1", "192.0.2.1"]), ttl: 60 },
            0,
            &P,
            0.0
        ));
        assert_eq!(e.addresses, ips(&["192.0.2.1", "192.0.2.2", "2001:db8::1"]));
        // Same set, rotated, other TTL: no change.
        assert!(!e.apply(
            Resolution::Addresses { addresses: ips(&["2001:db8::1", "192.0.2.1", "192.0.2.2"]), ttl: 20 },
            60,
            &P,
            0.0
        ));
        assert!(e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 20 }, 120, &P, 0.0));
    }

    #[test]
    fn failures_keep_the_last_good_set_and_back_off() {
        let mut e = Entry::default();
        e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 300 }, 0, &P, 0.0);
        let mut nexts = Vec::new();
        for t in [300, 400, 600, 1000, 2000, 5000, 9000] {
            assert!(!e.apply(Resolution::Failed("timeout".into()), t, &P, 0.0));
            nexts.push(e.next_refresh - t);
        }
        assert_eq!(nexts, vec![60, 120, 240, 480, 960, 1920, 3600]);
        assert_eq!(e.addresses, ips(&["192.0.2.1"]), "last good answer kept");
        assert_eq!(e.last_success, Some(0));
        assert_eq!(e.last_error.as_deref(), Some("timeout"));
        // A success resets the backoff.
        e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 300 }, 10_000, &P, 0.0);
        assert_eq!((e.failures, e.last_error.clone()), (0, None));
    }

    #[test]
    fn nxdomain_or_nodata_empties_the_set() {
        let mut e = Entry::default();
        e.apply(Resolution::Addresses { addresses: ips(&["192.0.2.1"]), ttl: 300 }, 0, &P, 0.0);
        assert!(e.apply(Resolution::Empty { ttl: 120, why: "NXDOMAIN".into() }, 300, &P, 0.0));
        assert!(e.addresses.is_empty());
        assert_eq!(e.next_refresh, 420);
        assert!(!e.apply(Resolution::Empty { ttl: 120, why: "NODATA".into() }, 420, &P, 0.0));
    }
}
