//! The shared token-bucket table: a fixed array of one-word buckets that
//! every UDP worker updates with compare-and-swap, never a lock.
//!
//! Each bucket is one `AtomicU64` holding a 16-bit tag of its key, the
//! time it was last refilled (24 bits of 1/16 s ticks) and its tokens
//! (24 bits, in 1/16 of a token, so that one tick refills exactly `rate`
//! units and a second refills `rate` tokens without rounding). Because
//! the whole state is one word, a response is counted by one successful
//! CAS: workers racing on one key each take their own token, and N
//! workers never let N times the rate through.
//!
//! Buckets are grouped eight to a 64-octet line; a key hashes to one
//! line and lives in any of its eight slots (8-way set-associative, as a
//! CPU cache). Workers touching different keys touch different lines and
//! do not share a cache line unless their keys collide there.
//!
//! A full bucket (one that has refilled to its burst) is exactly what a
//! new key would start with, so replacing it loses nothing: a new key
//! takes an empty or a full slot. Only when all eight slots of its line
//! hold keys that are being limited or recovering (the table is full
//! there) is one of them evicted, the one with the most tokens, and the
//! newcomer starts with half a burst, as Knot's slow start after a
//! collision does, so that churning keys cannot buy full bursts.
//!
//! Two workers inserting one new key at the same instant into different
//! slots (each saw the line differently) leave it twice in the line; the
//! first slot is used from then on and the other refills and is reused.
//! That key got at most one extra burst. A table that is contended on
//! every CAS round for `ATTEMPTS` rounds lets the response through
//! uncounted (fail open) rather than spin on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

/// Ticks in a second: the granularity of the bucket clock.
pub const TICKS_PER_SECOND: u32 = 16;

/// A point on the table's clock, in 1/16 s since it started. Workers read
/// the clock once per batch and pass it in; tests inject it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Tick(pub u32);

impl Tick {
    /// The tick `d` after the clock's start.
    pub fn after(d: std::time::Duration) -> Tick {
        Tick((d.as_millis() * u128::from(TICKS_PER_SECOND) / 1000) as u32)
    }
}

/// Slots per line: 8 words fill one 64-octet cache line.
pub(crate) const WAYS: usize = 8;

const TAG_BITS: u32 = 16;
const TIME_BITS: u32 = 24;
const TOKEN_BITS: u32 = 24;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;
/// One response costs one token, `TICKS_PER_SECOND` units.
const COST: u64 = TICKS_PER_SECOND as u64;
/// Largest rate whose burst fits the token field.
pub const MAX_RATE: u32 = (TOKEN_MASK / COST) as u32;
/// A clock read a little behind the bucket's (another worker's batch
/// started later) is "no time passed", not a wrap of the 24-bit time
/// field (which wraps after about 12 days): up to this many ticks.
const BEHIND: u64 = 64;
/// CAS rounds before a response is let through uncounted: only a line
/// rewritten by other workers on every round gets there.
const ATTEMPTS: usize = 8;

#[repr(align(64))]
struct Line([AtomicU64; WAYS]);

/// The outcome of taking a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// There was a token.
    Pass,
    /// The bucket is empty: the response is over the rate.
    Limited,
}

/// The bucket table.
pub(crate) struct Table {
    lines: Box<[Line]>,
    /// Units added per tick, which is the rate in tokens per second.
    rate: u64,
    /// The burst: one second's worth of tokens, in units.
    cap: u64,
}

fn pack(tag: u64, time: u64, tokens: u64) -> u64 {
    (tag << (TIME_BITS + TOKEN_BITS)) | ((time & TIME_MASK) << TOKEN_BITS) | (tokens & TOKEN_MASK)
}

fn tag_of(w: u64) -> u64 {
    w >> (TIME_BITS + TOKEN_BITS)
}

fn time_of(w: u64) -> u64 {
    (w >> TOKEN_BITS) & TIME_MASK
}

fn tokens_of(w: u64) -> u64 {
    w & TOKEN_MASK
}

impl Table {
    /// A table of at least `buckets` buckets (rounded up to whole lines)
    /// for `rate` responses per second, 1 to [`MAX_RATE`].
    pub(crate) fn new(buckets: usize, rate: u32) -> Table {
        let lines = buckets.div_ceil(WAYS).clamp(1, u32::MAX as usize);
        let rate = u64::from(rate.clamp(1, MAX_RATE));
        Table {
            lines: (0..lines).map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0)))).collect(),
            rate,
            cap: rate * COST,
        }
    }

    /// Buckets in the table.
    pub(crate) fn buckets(&self) -> usize {
        self.lines.len() * WAYS
    }

    /// `w`'s tokens and time after refilling up to `now`.
    fn refill(&self, w: u64, now: u64) -> (u64, u64) {
        let last = time_of(w);
        let passed = now.wrapping_sub(last) & TIME_MASK;
        if passed > TIME_MASK - BEHIND {
            return (tokens_of(w), last);
        }
        // A second refills a bucket from empty; more adds nothing.
        let passed = passed.min(u64::from(TICKS_PER_SECOND));
        ((tokens_of(w) + passed * self.rate).min(self.cap), now)
    }

    /// Takes one token from the bucket of the key hashed to `hash`.
    pub(crate) fn take(&self, hash: u64, now: Tick) -> Take {
        // The high half picks the line (multiply-shift, no division), the
        // low 16 bits are the tag; tag 0 marks an empty slot.
        let index = (((hash >> 32) * self.lines.len() as u64) >> 32) as usize;
        let Some(line) = self.lines.get(index) else { return Take::Pass };
        let tag = (hash & ((1 << TAG_BITS) - 1)).max(1);
        let now = u64::from(now.0) & TIME_MASK;
        'attempt: for _ in 0..ATTEMPTS {
            // The slot holding the key, else the best one to replace: an
            // empty or full one (no loss), else the one with most tokens.
            let mut victim: Option<(&AtomicU64, u64, u64)> = None;
            for slot in &line.0 {
                let w = slot.load(Ordering::Relaxed);
                if w != 0 && tag_of(w) == tag {
                    let mut cur = w;
                    loop {
                        if tag_of(cur) != tag {
                            continue 'attempt;
                        }
                        let (tokens, time) = self.refill(cur, now);
                        let (left, take) = if tokens >= COST {
                            (tokens - COST, Take::Pass)
                        } else {
                            (tokens, Take::Limited)
                        };
                        let new = pack(tag, time, left);
                        if new == cur {
                            return take;
                        }
                        match slot.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                            Ok(_) => return take,
                            Err(actual) => cur = actual,
                        }
                    }
                }
                let score = if w == 0 { u64::MAX } else { self.refill(w, now).0 };
                if victim.is_none_or(|(_, _, best)| score > best) {
                    victim = Some((slot, w, score));
                }
            }
            let Some((slot, old, score)) = victim else { return Take::Pass };
            let start = if score >= self.cap { self.cap } else { (self.cap / 2).max(COST) };
            let new = pack(tag, now, start - COST);
            if slot.compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                return Take::Pass;
            }
        }
        Take::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(t: &Table, hash: u64, now: u32, n: usize) -> usize {
        (0..n).filter(|_| t.take(hash, Tick(now)) == Take::Pass).count()
    }

    #[test]
    fn a_bucket_holds_one_second_of_burst_and_refills_at_the_rate() {
        let t = Table::new(1024, 10);
        let k = 0xdead_beef_0000_1234;
        // A new key has a full bucket: one second's worth.
        assert_eq!(passes(&t, k, 0, 100), 10);
        // Within the same tick, nothing more.
        assert_eq!(passes(&t, k, 0, 100), 0);
        // 1/16 s adds 10/16 of a token: not yet a whole one.
        assert_eq!(passes(&t, k, 1, 100), 0);
        // Two ticks make 20/16: one token, and 4/16 left over.
        assert_eq!(passes(&t, k, 2, 100), 1);
        // 8 ticks later, 4/16 + 80/16 = 5.25 tokens: five, 4/16 kept.
        assert_eq!(passes(&t, k, 10, 100), 5);
        // A long pause refills only to the burst.
        assert_eq!(passes(&t, k, 10_000, 100), 10);
        // A steady second at a tick each refills exactly the rate.
        let steady: usize = (10_001..10_001 + TICKS_PER_SECOND).map(|now| passes(&t, k, now, 100)).sum();
        assert_eq!(steady, 10);
    }

    #[test]
    fn a_clock_read_behind_the_bucket_is_no_time_not_a_wrap() {
        let t = Table::new(64, 4);
        let k = 77 << 32;
        assert_eq!(passes(&t, k, 100, 10), 4);
        // Another worker's batch began a tick earlier.
        assert_eq!(passes(&t, k, 99, 10), 0);
        assert_eq!(passes(&t, k, 100, 10), 0);
        // The 24-bit time wraps; time still moves forward across it.
        let near = (1 << TIME_BITS) - 1;
        assert_eq!(passes(&t, k, near, 10), 4);
        assert_eq!(passes(&t, k, near + 16, 10), 4);
    }

    #[test]
    fn keys_on_one_line_share_no_tokens_until_the_line_is_full() {
        let t = Table::new(WAYS, 2);
        assert_eq!(t.buckets(), WAYS);
        // Eight keys on the single line, each limited, fill it.
        for tag in 1..=WAYS as u64 {
            assert_eq!(passes(&t, tag, 0, 5), 2, "key {tag}");
        }
        // A ninth key evicts one and starts with half a burst (slow
        // start): one token here, not two.
        assert_eq!(passes(&t, 100, 0, 5), 1);
        // The others that are still there are still limited.
        let limited = (2..=WAYS as u64).filter(|&tag| passes(&t, tag, 0, 1) == 0).count();
        assert!(limited >= WAYS - 2, "{limited}");
        // Once a second has passed every bucket is full again, so the
        // next new key replaces a full one and gets a whole burst.
        assert_eq!(passes(&t, 200, 20, 5), 2);
    }

    #[test]
    fn a_full_bucket_is_replaced_before_a_limited_one() {
        let t = Table::new(WAYS, 3);
        // Seven keys drained, one key used once and then left to refill.
        for tag in 1..WAYS as u64 {
            assert_eq!(passes(&t, tag, 0, 5), 3);
        }
        assert_eq!(passes(&t, 50, 0, 1), 1);
        // Half a second on: key 50 has refilled to full; the drained keys
        // have only half their burst.
        assert_eq!(passes(&t, 60, 8, 5), 3, "a new key takes key 50's full slot");
        for tag in 1..WAYS as u64 {
            assert_eq!(passes(&t, tag, 8, 5), 1, "key {tag} kept its bucket");
        }
    }

    /// Workers on all cores limit one key together: what passes is the
    /// rate, not the rate times the number of workers.
    #[test]
    fn n_workers_do_not_let_n_times_the_rate_through() {
        let t = std::sync::Arc::new(Table::new(1024, 50));
        let k = 0x1234_5678_9abc_def0;
        let threads = 4;
        let run = |now: u32| -> usize {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (t, barrier) = (t.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        passes(&t, k, now, 2000)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        };
        // Each thread alone would pass 50; together they pass 50.
        assert_eq!(run(0), 50, "the first burst");
        assert_eq!(run(0), 0, "the same tick again");
        assert_eq!(run(8), 25, "half a second of refill");
        assert_eq!(run(8 + 16 * 3), 50, "a long pause refills to the burst only");
        // Threads whose clocks disagree by a few ticks still share one
        // budget: a thread behind the bucket takes no refill.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads as u32)
            .map(|i| {
                let (t, barrier) = (t.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..TICKS_PER_SECOND).map(|tick| passes(&t, k, 100 + tick + i, 50)).sum::<usize>()
                })
            })
            .collect();
        let skewed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        // The burst plus at most the refill up to the latest tick read.
        assert!((50..=50 + 50 * (TICKS_PER_SECOND as usize + threads) / 16).contains(&skewed), "{skewed}");
    }
}
