//! What the DNS listeners count: responses by rcode, by question type
//! and by transport, truncated responses, and for UDP the time a query
//! waits inside its worker and the size of the batches it receives.
//!
//! The UDP hot path never touches a shared cache line for this. A worker
//! counts into a plain [`Tally`] on its own stack while it answers a
//! batch and, once the batch is sent, publishes the tally to its own
//! [`Counters`] (cache-line aligned, one per worker, registered in
//! [`UdpStats`]). The worker is the only writer of its counters, so a
//! publication is a relaxed load and store per changed counter, with no
//! locked instruction; a scrape sums the workers ([`UdpStats::totals`]).
//! TCP answers one message at a time on tokio, so its connections add to
//! one shared [`Counters`] with relaxed `fetch_add`s.
//!
//! Responses are classified from their own header and question
//! ([`Summary::of`]), not from the query: what is counted is what was
//! sent, whatever step (the answer, a transfer check, an UPDATE screen)
//! wrote it. The rcode is the header's 4 bits: an extended rcode (RFC 6891
//! §6.1.3, e.g. BADVERS or BADCOOKIE) counts under its low bits. There is
//! no per-zone split: it would cost a catalog lookup per response, and
//! with one label value per customer zone a scrape would grow with the
//! number of zones.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sixgate_dns::message::Summary;

/// The question types counted by name (RFC 1035 §3.2.2, RFC 3596,
/// RFC 2782, RFC 4034, RFC 8659, RFC 9460, RFC 1995, RFC 5936); every
/// other type counts as `other`, the last slot.
pub const QTYPES: [(u16, &str); 17] = [
    (1, "A"),
    (28, "AAAA"),
    (5, "CNAME"),
    (15, "MX"),
    (2, "NS"),
    (6, "SOA"),
    (16, "TXT"),
    (33, "SRV"),
    (12, "PTR"),
    (257, "CAA"),
    (43, "DS"),
    (48, "DNSKEY"),
    (65, "HTTPS"),
    (64, "SVCB"),
    (255, "ANY"),
    (252, "AXFR"),
    (251, "IXFR"),
];
/// Type slots: the named ones and `other`.
const TYPE_SLOTS: usize = QTYPES.len() + 1;

/// Header rcodes by value (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 6895
/// §2.3); 11-15 are unassigned and printed only when seen.
pub const RCODES: [&str; 16] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET",
    "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
];

/// Upper bounds of the wait histogram's buckets in microseconds: 1, 2,
/// 4, ... 16384 (2^0 to 2^14), then +Inf. Log2 steps resolve the few
/// microseconds an answer takes and still place a stall of milliseconds
/// (a preempted worker, a page fault) in a bucket of its own.
pub const WAIT_BUCKETS_US: [u64; 15] = {
    let mut b = [0u64; 15];
    let mut i = 0;
    while i < b.len() {
        b[i] = 1 << i;
        i += 1;
    }
    b
};
const WAIT_SLOTS: usize = WAIT_BUCKETS_US.len() + 1;

/// Upper bounds of the batch-size histogram's buckets, in datagrams per
/// `recvmmsg`: 1, 2, 4, 8, 16, 32 (the largest batch).
pub const BATCH_BUCKETS: [u64; 6] = [1, 2, 4, 8, 16, 32];
const BATCH_SLOTS: usize = BATCH_BUCKETS.len() + 1;

/// The slot of question type `qtype`: its place in [`QTYPES`] (a jump
/// table, not a search, on the hot path), or `other`.
pub fn type_slot(qtype: u16) -> usize {
    match qtype {
        1 => 0,
        28 => 1,
        5 => 2,
        15 => 3,
        2 => 4,
        6 => 5,
        16 => 6,
        33 => 7,
        12 => 8,
        257 => 9,
        43 => 10,
        48 => 11,
        65 => 12,
        64 => 13,
        255 => 14,
        252 => 15,
        251 => 16,
        _ => QTYPES.len(),
    }
}

/// The bucket of a wait of `nanos` nanoseconds: the first whose bound
/// (`le`) it does not exceed, or the +Inf bucket.
pub fn wait_bucket(nanos: u64) -> usize {
    let micros = nanos.div_ceil(1000);
    if micros <= 1 {
        return 0;
    }
    // ceil(log2(micros)): the smallest i with micros <= 2^i.
    let i = (u64::BITS - (micros - 1).leading_zeros()) as usize;
    i.min(WAIT_BUCKETS_US.len())
}

/// The bucket of a batch of `n` datagrams.
pub fn batch_bucket(n: u64) -> usize {
    BATCH_BUCKETS.iter().position(|&b| n <= b).unwrap_or(BATCH_BUCKETS.len())
}

/// Plain counters of one worker for the batch it is working on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    received: u64,
    dropped: u64,
    answered: u64,
    rcodes: [u64; 16],
    types: [u64; TYPE_SLOTS],
    truncated: u64,
    wait: [u64; WAIT_SLOTS],
    wait_nanos: u64,
    batches: [u64; BATCH_SLOTS],
    sends: u64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            received: 0,
            dropped: 0,
            answered: 0,
            rcodes: [0; 16],
            types: [0; TYPE_SLOTS],
            truncated: 0,
            wait: [0; WAIT_SLOTS],
            wait_nanos: 0,
            batches: [0; BATCH_SLOTS],
            sends: 0,
        }
    }
}

impl Tally {
    /// A batch of `n` datagrams came in.
    pub fn batch(&mut self, n: usize) {
        let n = n as u64;
        self.received += n;
        if let Some(b) = self.batches.get_mut(batch_bucket(n)) {
            *b += 1;
        }
    }

    /// `n` datagrams got no answer.
    pub fn dropped(&mut self, n: usize) {
        self.dropped += n as u64;
    }

    /// A response was queued for sending.
    pub fn response(&mut self, response: &[u8]) {
        self.answered += 1;
        let Some(s) = Summary::of(response) else { return };
        if let Some(r) = self.rcodes.get_mut(usize::from(s.rcode & 0x0f)) {
            *r += 1;
        }
        if let Some(t) = self.types.get_mut(type_slot(s.qtype)) {
            *t += 1;
        }
        if s.truncated() {
            self.truncated += 1;
        }
    }

    /// One `sendmmsg` round sent `replies` responses, each of which waited
    /// `waited` inside the worker.
    pub fn sent(&mut self, replies: usize, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        let k = replies as u64;
        self.sends += 1;
        if let Some(w) = self.wait.get_mut(wait_bucket(nanos)) {
            *w += k;
        }
        self.wait_nanos = self.wait_nanos.saturating_add(nanos.saturating_mul(k));
    }

    /// Every counter with the atomic it goes to, for `f`.
    fn pairs<'a>(&'a mut self, c: &'a Counters, mut f: impl FnMut(&mut u64, &AtomicU64)) {
        f(&mut self.received, &c.received);
        f(&mut self.dropped, &c.dropped);
        f(&mut self.answered, &c.answered);
        f(&mut self.truncated, &c.truncated);
        f(&mut self.wait_nanos, &c.wait_nanos);
        f(&mut self.sends, &c.sends);
        for (v, a) in self.rcodes.iter_mut().zip(&c.rcodes) {
            f(v, a);
        }
        for (v, a) in self.types.iter_mut().zip(&c.types) {
            f(v, a);
        }
        for (v, a) in self.wait.iter_mut().zip(&c.wait) {
            f(v, a);
        }
        for (v, a) in self.batches.iter_mut().zip(&c.batches) {
            f(v, a);
        }
    }
}

/// The published counters of one UDP worker, or of every TCP connection.
///
/// Aligned to 128 octets, two cache lines (the adjacent-line prefetcher
/// pulls pairs), so that no two workers' counters share one.
#[derive(Debug)]
#[repr(align(128))]
pub struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
    answered: AtomicU64,
    rcodes: [AtomicU64; 16],
    types: [AtomicU64; TYPE_SLOTS],
    truncated: AtomicU64,
    wait: [AtomicU64; WAIT_SLOTS],
    wait_nanos: AtomicU64,
    batches: [AtomicU64; BATCH_SLOTS],
    sends: AtomicU64,
}

impl Default for Counters {
    fn default() -> Counters {
        let z = || AtomicU64::new(0);
        Counters {
            received: z(),
            dropped: z(),
            answered: z(),
            rcodes: std::array::from_fn(|_| z()),
            types: std::array::from_fn(|_| z()),
            truncated: z(),
            wait: std::array::from_fn(|_| z()),
            wait_nanos: z(),
            batches: std::array::from_fn(|_| z()),
            sends: z(),
        }
    }
}

impl Counters {
    /// Adds `tally` to these counters and zeroes it, for a single writer:
    /// the one thread that ever publishes here. A relaxed load and store
    /// need no locked instruction; a reader sees each counter grow.
    pub fn publish(&self, tally: &mut Tally) {
        tally.pairs(self, |v, a| {
            if *v != 0 {
                a.store(a.load(Ordering::Relaxed).wrapping_add(*v), Ordering::Relaxed);
                *v = 0;
            }
        });
    }

    /// Adds `tally` to these counters and zeroes it, for many writers.
    pub fn add(&self, tally: &mut Tally) {
        tally.pairs(self, |v, a| {
            if *v != 0 {
                a.fetch_add(*v, Ordering::Relaxed);
                *v = 0;
            }
        });
    }

    /// The counts so far.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        t.add(self);
        t
    }
}

/// Counts summed over workers, as read at one scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Datagrams received.
    pub received: u64,
    /// Messages that got no answer.
    pub dropped: u64,
    /// Responses queued for sending.
    pub answered: u64,
    /// Responses by header rcode.
    pub rcodes: [u64; 16],
    /// Responses by question type, in [`QTYPES`] order, then `other`.
    pub types: [u64; TYPE_SLOTS],
    /// Responses with TC set.
    pub truncated: u64,
    /// Responses by wait inside the worker, per [`WAIT_BUCKETS_US`]
    /// bucket (not cumulative), then +Inf.
    pub wait: [u64; WAIT_SLOTS],
    /// The sum of those waits, in nanoseconds.
    pub wait_nanos: u64,
    /// `recvmmsg` batches per [`BATCH_BUCKETS`] bucket (not cumulative).
    pub batches: [u64; BATCH_SLOTS],
    /// `sendmmsg` rounds (one per sub-batch).
    pub sends: u64,
}

impl Totals {
    fn add(&mut self, c: &Counters) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sum = |t: &mut [u64], a: &[AtomicU64]| t.iter_mut().zip(a).for_each(|(t, a)| *t += get(a));
        self.received += get(&c.received);
        self.dropped += get(&c.dropped);
        self.answered += get(&c.answered);
        self.truncated += get(&c.truncated);
        self.wait_nanos += get(&c.wait_nanos);
        self.sends += get(&c.sends);
        sum(&mut self.rcodes, &c.rcodes);
        sum(&mut self.types, &c.types);
        sum(&mut self.wait, &c.wait);
        sum(&mut self.batches, &c.batches);
    }
}

/// The UDP workers' counters, one [`Counters`] per worker.
#[derive(Debug, Default)]
pub struct UdpStats {
    // Locked only to register a worker and to scrape; never by a worker
    // once it runs.
    workers: Mutex<Vec<Arc<Counters>>>,
    /// What the queries' COOKIE options proved.
    pub cookies: crate::cookies::CookieStats,
}

impl UdpStats {
    /// The counters of a new worker, included in every later total.
    pub fn register(&self) -> Arc<Counters> {
        let c = Arc::new(Counters::default());
        if let Ok(mut w) = self.workers.lock() {
            w.push(c.clone());
        }
        c
    }

    /// The sums over every worker.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        if let Ok(w) = self.workers.lock() {
            for c in w.iter() {
                t.add(c);
            }
        }
        t
    }
}

/// The counters in Prometheus text format: responses by rcode and type,
/// truncated responses for `udp` and `tcp`, and UDP's wait and batch
/// histograms.
pub fn render(udp: &Totals, tcp: &Totals, out: &mut String) {
    let both = [("udp", udp), ("tcp", tcp)];
    let _ = writeln!(
        out,
        "# HELP sixgate_dns_responses_total DNS responses sent, by transport and header rcode.\n\
         # TYPE sixgate_dns_responses_total counter"
    );
    for (transport, t) in both {
        for (i, (name, v)) in RCODES.iter().zip(t.rcodes).enumerate() {
            // Unassigned rcodes only once seen.
            if i <= 10 || v > 0 {
                let _ = writeln!(
                    out,
                    "sixgate_dns_responses_total{{transport=\"{transport}\",rcode=\"{name}\"}} {v}"
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP sixgate_dns_queries_by_type_total DNS responses sent, by transport and question type.\n\
         # TYPE sixgate_dns_queries_by_type_total counter"
    );
    for (transport, t) in both {
        let names = QTYPES.iter().map(|&(_, n)| n).chain(["other"]);
        for (name, v) in names.zip(t.types) {
            let _ = writeln!(
                out,
                "sixgate_dns_queries_by_type_total{{transport=\"{transport}\",type=\"{name}\"}} {v}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP sixgate_dns_truncated_total DNS responses sent with TC set, by transport.\n\
         # TYPE sixgate_dns_truncated_total counter"
    );
    for (transport, t) in both {
        let _ = writeln!(out, "sixgate_dns_truncated_total{{transport=\"{transport}\"}} {}", t.truncated);
    }
    let _ = writeln!(
        out,
        "# HELP sixgate_dns_udp_wait_seconds Time a UDP query waits inside its worker, from the receive \
         call's return to the return of the send call that carries its answer.\n\
         # TYPE sixgate_dns_udp_wait_seconds histogram"
    );
    let mut cumulative = 0;
    for (bound, v) in WAIT_BUCKETS_US.iter().zip(udp.wait) {
        cumulative += v;
        let le = *bound as f64 / 1e6;
        let _ = writeln!(out, "sixgate_dns_udp_wait_seconds_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let count: u64 = udp.wait.iter().sum();
    let _ = writeln!(out, "sixgate_dns_udp_wait_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "sixgate_dns_udp_wait_seconds_sum {}", udp.wait_nanos as f64 / 1e9);
    let _ = writeln!(out, "sixgate_dns_udp_wait_seconds_count {count}");
    let _ = writeln!(
        out,
        "# HELP sixgate_dns_udp_batch_datagrams Datagrams taken by one UDP receive call.\n\
         # TYPE sixgate_dns_udp_batch_datagrams histogram"
    );
    let mut cumulative = 0;
    for (bound, v) in BATCH_BUCKETS.iter().zip(udp.batches) {
        cumulative += v;
        let _ = writeln!(out, "sixgate_dns_udp_batch_datagrams_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let batches: u64 = udp.batches.iter().sum();
    let _ = writeln!(out, "sixgate_dns_udp_batch_datagrams_bucket{{le=\"+Inf\"}} {batches}");
    let _ = writeln!(out, "sixgate_dns_udp_batch_datagrams_sum {}", udp.received);
    let _ = writeln!(out, "sixgate_dns_udp_batch_datagrams_count {batches}");
    let _ = writeln!(
        out,
        "# HELP sixgate_dns_udp_send_calls_total UDP send rounds (one sendmmsg per sub-batch of answers).\n\
         # TYPE sixgate_dns_udp_send_calls_total counter\nsixgate_dns_udp_send_calls_total {}",
        udp.sends
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_falls_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        assert_eq!(wait_bucket(0), 0);
        assert_eq!(wait_bucket(1000), 0, "1 µs is le=1µs");
        assert_eq!(wait_bucket(1001), 1);
        assert_eq!(wait_bucket(2000), 1);
        assert_eq!(wait_bucket(2001), 2);
        assert_eq!(wait_bucket(4000), 2);
        assert_eq!(wait_bucket(5000), 3);
        assert_eq!(wait_bucket(1_024_000), 10);
        assert_eq!(wait_bucket(16_384_000), 14, "the last finite bound");
        assert_eq!(wait_bucket(16_384_001), 15, "+Inf");
        assert_eq!(wait_bucket(u64::MAX), 15);
        for (i, &b) in WAIT_BUCKETS_US.iter().enumerate() {
            assert_eq!(wait_bucket(b * 1000), i, "bound {b} µs");
            assert_eq!(wait_bucket(b * 1000 + 1), i + 1, "just over {b} µs");
        }
    }

    #[test]
    fn batch_sizes_and_types_have_their_slots() {
        assert_eq!(
            [1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33].map(batch_bucket),
            [0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
        );
        for (i, &(t, name)) in QTYPES.iter().enumerate() {
            assert_eq!(type_slot(t), i, "{name}");
        }
        assert_eq!(type_slot(251), QTYPES.len() - 1);
        assert_eq!(type_slot(99), QTYPES.len(), "other");
        assert_eq!(type_slot(0), QTYPES.len(), "no question");
    }

    fn response(rcode: u8, qtype: u16, tc: bool) -> Vec<u8> {
        let mut r = vec![0x12, 0x34, 0x84 | if tc { 0x02 } else { 0 }, rcode, 0, 1, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(b"\x03www\x07example\x00");
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1]);
        r
    }

    #[test]
    fn workers_publish_to_their_own_counters_and_a_scrape_sums_them() {
        let stats = UdpStats::default();
        let (w1, w2) = (stats.register(), stats.register());
        let mut t1 = Tally::default();
        t1.batch(3);
        t1.response(&response(0, 1, false));
        t1.response(&response(3, 28, false));
        t1.dropped(1);
        t1.sent(2, Duration::from_micros(3));
        w1.publish(&mut t1);
        assert_eq!(t1, Tally::default(), "a publication zeroes the tally");
        let mut t2 = Tally::default();
        t2.batch(32);
        for _ in 0..4 {
            t2.response(&response(0, 1, true));
        }
        t2.response(&response(5, 99, false));
        t2.response(&[0; 5]);
        t2.dropped(26);
        t2.sent(6, Duration::from_millis(100));
        w2.publish(&mut t2);
        // A second batch of the first worker adds to what it published.
        t1.batch(1);
        t1.response(&response(0, 15, false));
        t1.sent(1, Duration::ZERO);
        w1.publish(&mut t1);

        let t = stats.totals();
        assert_eq!((t.received, t.answered, t.dropped, t.truncated, t.sends), (36, 9, 27, 4, 3));
        assert_eq!(t.rcodes[..6], [6, 0, 0, 1, 0, 1], "NOERROR, NXDOMAIN, REFUSED (one too short to read)");
        assert_eq!(t.types[type_slot(1)], 5);
        assert_eq!((t.types[type_slot(28)], t.types[type_slot(15)], t.types[QTYPES.len()]), (1, 1, 1));
        assert_eq!(t.wait[0], 1);
        assert_eq!(t.wait[2], 2, "3 µs is le=4µs");
        assert_eq!(t.wait[15], 6, "100 ms is +Inf");
        assert_eq!(t.wait_nanos, 2 * 3_000 + 6 * 100_000_000);
        assert_eq!(t.batches, [1, 0, 1, 0, 0, 1, 0]);
        assert_eq!(w1.totals().received + w2.totals().received, t.received);
    }

    #[test]
    fn many_writers_add_without_losing_counts() {
        let c = Arc::new(Counters::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let mut t = Tally::default();
                        t.response(&response(3, 1, false));
                        c.add(&mut t);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let t = c.totals();
        assert_eq!((t.answered, t.rcodes[3], t.types[0]), (4000, 4000, 4000));
    }

    #[test]
    fn the_histograms_render_cumulative_buckets_in_seconds() {
        let mut udp = Totals::default();
        udp.wait[0] = 2;
        udp.wait[3] = 1;
        udp.wait[15] = 1;
        udp.wait_nanos = 1_500_000_000;
        udp.batches[0] = 4;
        udp.received = 4;
        udp.rcodes[3] = 7;
        udp.rcodes[12] = 1;
        let mut out = String::new();
        render(&udp, &Totals::default(), &mut out);
        for line in [
            "sixgate_dns_udp_wait_seconds_bucket{le=\"0.000001\"} 2",
            "sixgate_dns_udp_wait_seconds_bucket{le=\"0.000004\"} 2",
            "sixgate_dns_udp_wait_seconds_bucket{le=\"0.000008\"} 3",
            "sixgate_dns_udp_wait_seconds_bucket{le=\"0.016384\"} 3",
            "sixgate_dns_udp_wait_seconds_bucket{le=\"+Inf\"} 4",
            "sixgate_dns_udp_wait_seconds_sum 1.5",
            "sixgate_dns_udp_wait_seconds_count 4",
            "sixgate_dns_udp_batch_datagrams_bucket{le=\"32\"} 4",
            "sixgate_dns_udp_batch_datagrams_sum 4",
            "sixgate_dns_responses_total{transport=\"udp\",rcode=\"NXDOMAIN\"} 7",
            "sixgate_dns_responses_total{transport=\"udp\",rcode=\"RCODE12\"} 1",
            "sixgate_dns_responses_total{transport=\"tcp\",rcode=\"NOTZONE\"} 0",
            "sixgate_dns_queries_by_type_total{transport=\"tcp\",type=\"other\"} 0",
            "sixgate_dns_truncated_total{transport=\"udp\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
        }
        assert!(!out.contains("RCODE11"), "an unassigned rcode never seen is left out");
    }
}
