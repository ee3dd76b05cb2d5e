//! Metric types every sixgate crate shares.
//!
//! # Architecture
//!
//! Counters and gauges are plain atomics owned by whoever counts; what
//! they need in common is the text they are scraped as (the Prometheus
//! exposition format, version 0.0.4) and one histogram type, so that every
//! latency reads alike on a dashboard:
//!
//! - [`Histogram`]: lock-free (one relaxed atomic add per bucket, count
//!   and sum), over a fixed set of upper bounds in nanoseconds given at
//!   compile time ([`LATENCY`] for whole operations, [`FINE`] for waits of
//!   microseconds). A hot path that cannot afford a shared cache line
//!   keeps one histogram per thread and merges their [`Snapshot`]s when
//!   scraped.
//! - [`Text`]: writes families (`# HELP`, `# TYPE`, then the samples),
//!   escaping label values.
//!
//! Bounds are integers (nanoseconds) so that `le` labels print exactly
//! (`0.00025`, not `0.00025000000000000006`) and the sum adds without
//! rounding.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// Bounds for whole operations (a store commit, a snapshot build, a write
/// until DNS serves it): 100 µs to 10 s, about three per decade.
pub const LATENCY: [u64; 16] = [
    100 * US,
    250 * US,
    500 * US,
    MS,
    2_500 * US,
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    S,
    2_500 * MS,
    5 * S,
    10 * S,
];

/// Bounds for short waits on a hot path (a query inside a worker): 1 µs to
/// 100 ms, about three per decade.
pub const FINE: [u64; 16] = [
    US,
    2_500,
    5 * US,
    10 * US,
    25 * US,
    50 * US,
    100 * US,
    250 * US,
    500 * US,
    MS,
    2_500 * US,
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
];

/// A histogram over fixed upper bounds (nanoseconds, increasing), plus
/// an overflow bucket (`+Inf`).
#[derive(Debug)]
pub struct Histogram<const N: usize = 16> {
    bounds: &'static [u64; N],
    /// Observations in each bucket alone (not cumulative): `buckets[i]`
    /// holds those above `bounds[i - 1]` and at most `bounds[i]`.
    buckets: [AtomicU64; N],
    over: AtomicU64,
    sum_ns: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram over `bounds`; `const`, so it can be a `static`.
    pub const fn new(bounds: &'static [u64; N]) -> Histogram<N> {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            over: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `d`.
    pub fn observe(&self, d: Duration) {
        self.observe_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Counts one observation of `ns` nanoseconds.
    pub fn observe_ns(&self, ns: u64) {
        let slot = self.bounds.iter().position(|&b| ns <= b);
        match slot.and_then(|i| self.buckets.get(i)) {
            Some(b) => b.fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The observations so far. Read bucket by bucket while others may
    /// count: a scrape racing an observation may see it in the sum and
    /// not yet in its bucket, which Prometheus tolerates.
    pub fn snapshot(&self) -> Snapshot {
        let mut counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        counts.push(self.over.load(Ordering::Relaxed));
        Snapshot { bounds: self.bounds, counts, sum_ns: self.sum_ns.load(Ordering::Relaxed) }
    }

    /// Observations counted so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum::<u64>()
            + self.over.load(Ordering::Relaxed)
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    bounds: &'static [u64],
    /// One per bound, then the overflow; not cumulative.
    counts: Vec<u64>,
    sum_ns: u64,
}

impl Snapshot {
    /// Adds `other`'s observations, when it has the same bounds (the
    /// histograms of several threads); returns false, adding nothing,
    /// when it does not.
    pub fn merge(&mut self, other: &Snapshot) -> bool {
        if self.bounds != other.bounds {
            return false;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        true
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the observations.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns)
    }
}

/// Nanoseconds as decimal seconds, exactly: `250000` is `0.00025`.
pub fn seconds_text(ns: u64) -> String {
    let (whole, frac) = (ns / S, ns % S);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Escapes a label value (backslash, double quote, newline).
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The kind of a family, its `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (names end in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Prometheus text being written.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    /// Empty text.
    pub fn new() -> Text {
        Text::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Text {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample; `labels` as written inside the braces (`zone="a."`),
    /// empty for none. Label values must be escaped ([`label_value`]).
    pub fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) -> &mut Text {
        let _ = match labels.is_empty() {
            true => writeln!(self.out, "{name} {value}"),
            false => writeln!(self.out, "{name}{{{labels}}} {value}"),
        };
        self
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl std::fmt::Display) -> &mut Text {
        self.family(name, kind, help).sample(name, "", value)
    }

    /// A histogram family with one series per `(labels, snapshot)`: the
    /// cumulative `_bucket` lines with `le` in seconds, `_sum` (seconds)
    /// and `_count`.
    pub fn histogram(&mut self, name: &str, help: &str, series: &[(&str, &Snapshot)]) -> &mut Text {
        self.family(name, Kind::Histogram, help);
        for (labels, s) in series {
            let sep = if labels.is_empty() { "" } else { "," };
            let mut total = 0u64;
            for (i, c) in s.counts.iter().enumerate() {
                total = total.saturating_add(*c);
                let le = s.bounds.get(i).map_or_else(|| "+Inf".to_owned(), |&b| seconds_text(b));
                let _ = writeln!(self.out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {total}");
            }
            let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
            let _ = writeln!(self.out, "{name}_sum{braces} {}", seconds_text(s.sum_ns));
            let _ = writeln!(self.out, "{name}_count{braces} {total}");
        }
        self
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_lands_in_the_first_bucket_whose_bound_holds_it() {
        static BOUNDS: [u64; 3] = [10, 100, 1000];
        let h = Histogram::new(&BOUNDS);
        for ns in [0, 10, 11, 100, 999, 1000, 1001, u64::MAX / 4] {
            h.observe_ns(ns);
        }
        let s = h.snapshot();
        // 0 and 10; 11 and 100; 999 and 1000; above.
        assert_eq!(s.counts, vec![2, 2, 2, 2]);
        assert_eq!(s.count(), 8);
        assert_eq!(h.count(), 8);
        assert_eq!(s.sum_ns, 10 + 11 + 100 + 999 + 1000 + 1001 + u64::MAX / 4);
    }

    #[test]
    fn durations_count_in_nanoseconds_and_never_overflow() {
        let h: Histogram = Histogram::new(&LATENCY);
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_secs(u64::MAX));
        let s = h.snapshot();
        assert_eq!(s.counts.first(), Some(&1), "100 µs is within the first bound, inclusive");
        assert_eq!(s.counts.last(), Some(&1), "a huge duration goes to +Inf");
    }

    #[test]
    fn the_text_has_cumulative_buckets_in_exact_seconds() {
        static BOUNDS: [u64; 3] = [250_000, 1_000_000, 2_500_000_000];
        let h = Histogram::new(&BOUNDS);
        h.observe(Duration::from_micros(200));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_secs(3));
        let mut t = Text::new();
        t.histogram("x_seconds", "X.", &[("zone=\"a.\"", &h.snapshot())]);
        let text = t.finish();
        assert_eq!(
            text,
            "# HELP x_seconds X.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{zone=\"a.\",le=\"0.00025\"} 1\n\
             x_seconds_bucket{zone=\"a.\",le=\"0.001\"} 2\n\
             x_seconds_bucket{zone=\"a.\",le=\"2.5\"} 2\n\
             x_seconds_bucket{zone=\"a.\",le=\"+Inf\"} 3\n\
             x_seconds_sum{zone=\"a.\"} 3.0012\n\
             x_seconds_count{zone=\"a.\"} 3\n"
        );
        let mut t = Text::new();
        t.histogram("y_seconds", "Y.", &[("", &Histogram::new(&BOUNDS).snapshot())]);
        let text = t.finish();
        assert!(
            text.contains("y_seconds_bucket{le=\"+Inf\"} 0\ny_seconds_sum 0\ny_seconds_count 0\n"),
            "{text}"
        );
    }

    #[test]
    fn snapshots_of_the_same_bounds_merge() {
        let (a, b): (Histogram, Histogram) = (Histogram::new(&FINE), Histogram::new(&FINE));
        a.observe(Duration::from_micros(3));
        b.observe(Duration::from_micros(3));
        b.observe(Duration::from_secs(1));
        let mut s = a.snapshot();
        assert!(s.merge(&b.snapshot()));
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum(), Duration::from_micros(6) + Duration::from_secs(1));
        let other: Histogram = Histogram::new(&LATENCY);
        assert!(!s.merge(&other.snapshot()), "other bounds are not merged");
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn bounds_increase_and_print_exactly() {
        for bounds in [&LATENCY, &FINE] {
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        }
        assert_eq!(seconds_text(100_000), "0.0001");
        assert_eq!(seconds_text(2_500_000_000), "2.5");
        assert_eq!(seconds_text(10 * S), "10");
        assert_eq!(seconds_text(0), "0");
        assert_eq!(seconds_text(1), "0.000000001");
    }

    #[test]
    fn families_and_label_values_are_written_as_prometheus_reads_them() {
        let mut t = Text::new();
        t.single("a_total", Kind::Counter, "A.", 3);
        t.family("b", Kind::Gauge, "B.").sample("b", &format!("zone=\"{}\"", label_value("q\"\\\n.")), 1);
        assert_eq!(
            t.finish(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n\
             # HELP b B.\n# TYPE b gauge\nb{zone=\"q\\\"\\\\\\n.\"} 1\n"
        );
    }
}
