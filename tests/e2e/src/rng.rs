//! A small seeded random generator (SplitMix64).
//!
//! Tests print their seed and accept `SIXGATE_E2E_SEED` to replay a run. The
//! generator is written out here rather than taken from `rand` so that a seed
//! keeps meaning the same corpus whatever version of `rand` the workspace
//! moves to.

use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that fixes the seed of every seeded test.
pub const SEED_ENV: &str = "SIXGATE_E2E_SEED";

/// SplitMix64: tiny, fast, and good enough for test inputs.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The seed from `SIXGATE_E2E_SEED` (decimal or `0x` hex) if set, else one
    /// taken from the clock. Returns the seed too, so the caller can print it.
    pub fn from_env_or_clock() -> (Self, u64) {
        let seed = std::env::var(SEED_ENV).ok().and_then(|text| parse_seed(&text)).unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 ^ u64::from(std::process::id()))
                .unwrap_or(0x5158_a7e5)
        });
        (Self::new(seed), seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`0` when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        (self.next_u64() % bound as u64) as usize
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    /// A random 16-bit value, e.g. a message ID.
    pub fn u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }

    /// A random byte.
    pub fn u8(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.u8()).collect()
    }

    /// One element of a non-empty slice (`None` for an empty one).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len()))
    }

    /// Flips the case of each ASCII letter with probability 1/2: DNS 0x20.
    pub fn randomize_case(&mut self, label: &[u8]) -> Vec<u8> {
        label
            .iter()
            .map(|&byte| if byte.is_ascii_alphabetic() && self.chance(50) { byte ^ 0x20 } else { byte })
            .collect()
    }
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(1);
        for bound in 1..50 {
            assert!(rng.below(bound) < bound);
        }
        assert_eq!(rng.range(5, 5), 5);
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("0x2a"), Some(42));
        assert_eq!(parse_seed("nope"), None);
    }
}
