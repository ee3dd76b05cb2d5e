//! What the control plane counts, for `/metrics`.
//!
//! - [`PublishMetrics`], kept by the publisher ([`crate::publish`]): how
//!   long building and swapping in a catalog snapshot takes, how long a
//!   commit waits until the snapshot serving it is swapped in (commits of
//!   this process, see `sixgate_store::metrics`), and which zones are
//!   held. One series per held zone is bounded by [`MAX_HELD_SERIES`]:
//!   held zones are few (each is an operator's incident), and the count
//!   `sixgate_zones_held` stays exact beyond it.
//! - [`StoreGauges`], read from the store on a timer by [`run`]: the
//!   journal's size and where every signed zone's chain of trust stands.
//!   Both read whole tables, so never per scrape.
//!
//! [`render`] writes them with the store's commit histogram.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sixgate_dnssec::rollover::DsState;
use sixgate_metrics::{Histogram, Kind, LATENCY, Text, label_value};
use sixgate_store::{Store, StoreError, Verdict};
use tokio::sync::watch;

/// Most `sixgate_zone_held{zone=...}` series written.
pub const MAX_HELD_SERIES: usize = 100;

/// How often [`run`] reads the store by default.
pub const GAUGE_INTERVAL: Duration = Duration::from_secs(30);

/// The publisher's metrics.
#[derive(Debug)]
pub struct PublishMetrics {
    /// Building a catalog snapshot (applying a journal batch, a whole
    /// load, the verdicts of whole verifications) and swapping it in.
    pub build: Histogram,
    /// From a commit (in this process) to the swap of the snapshot that
    /// serves it.
    pub write_to_served: Histogram,
    /// The held zones, presentation form, sorted.
    held: arc_swap::ArcSwap<Vec<String>>,
}

impl Default for PublishMetrics {
    fn default() -> Self {
        PublishMetrics {
            build: Histogram::new(&LATENCY),
            write_to_served: Histogram::new(&LATENCY),
            held: arc_swap::ArcSwap::from_pointee(Vec::new()),
        }
    }
}

impl PublishMetrics {
    /// Sets the held zones (presentation form) if they changed.
    pub(crate) fn set_held(&self, mut zones: Vec<String>) {
        zones.sort_unstable();
        if **self.held.load() != zones {
            self.held.store(Arc::new(zones));
        }
    }

    /// The held zones, sorted.
    pub fn held(&self) -> Arc<Vec<String>> {
        self.held.load_full()
    }

    /// Takes the commits the catalog swapped in for `position` serves.
    pub(crate) fn served(&self, position: i64) {
        sixgate_store::metrics::WRITES.served(position, |d| self.write_to_served.observe(d));
    }
}

/// Gauges read from the store on a timer.
#[derive(Debug, Default)]
pub struct StoreGauges {
    /// Journal entries kept.
    pub journal_entries: AtomicU64,
    /// Octets of their changes.
    pub journal_octets: AtomicU64,
    /// Signed zones whose parent serves a DS for a key they sign with.
    pub secure: AtomicU64,
    /// Signed zones whose parent serves no DS yet (or was not asked).
    pub waiting_for_ds: AtomicU64,
    /// Signed zones whose parent's DS names none of their keys.
    pub ds_mismatch: AtomicU64,
    /// Signed zones going insecure.
    pub going_insecure: AtomicU64,
    /// The longest time a zone has waited since a DS was submitted
    /// (listed in its CDS) and not yet seen at the parent, in seconds.
    pub ds_wait_longest: AtomicU64,
    /// When the store was last read (unix seconds of the store's clock).
    pub read_at: AtomicU64,
    /// Reads that failed.
    pub read_errors: AtomicU64,
}

/// One reading of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Journal entries and octets.
    pub journal: sixgate_store::JournalSize,
    /// Signed zones by verdict: secure, waiting for DS, DS mismatch,
    /// going insecure.
    pub chains: [u64; 4],
    /// See [`StoreGauges::ds_wait_longest`].
    pub ds_wait_longest: u64,
    /// The store's clock when read.
    pub at: i64,
}

/// Reads the journal's size and every signed zone's chain of trust.
pub fn read(store: &Store) -> Result<Reading, StoreError> {
    let now = store.now();
    let mut r = Reading { journal: store.journal_size()?, at: now, ..Reading::default() };
    for (apex, _) in store.dnssec_zones()? {
        let Some(info) = store.dnssec_info(&apex)? else { continue };
        let verdict = info.verdict();
        let slot = match verdict {
            Verdict::Secure => 0,
            Verdict::WaitingForDs => 1,
            Verdict::DsMismatch => 2,
            _ => 3,
        };
        if let Some(n) = r.chains.get_mut(slot) {
            *n += 1;
        }
        if matches!(verdict, Verdict::WaitingForDs | Verdict::DsMismatch) {
            let since = info
                .keys
                .iter()
                .filter(|k| k.record.ds == DsState::Submitted)
                .filter_map(|k| k.record.times.ds_submitted)
                .min();
            if let Some(since) = since {
                let waited = (now.max(0) as u64).saturating_sub(since);
                r.ds_wait_longest = r.ds_wait_longest.max(waited);
            }
        }
    }
    Ok(r)
}

impl StoreGauges {
    fn set(&self, r: &Reading) {
        let put = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        put(&self.journal_entries, r.journal.entries);
        put(&self.journal_octets, r.journal.octets);
        let [secure, waiting, mismatch, insecure] = r.chains;
        put(&self.secure, secure);
        put(&self.waiting_for_ds, waiting);
        put(&self.ds_mismatch, mismatch);
        put(&self.going_insecure, insecure);
        put(&self.ds_wait_longest, r.ds_wait_longest);
        put(&self.read_at, r.at.max(0) as u64);
    }
}

/// Reads the store into `gauges` at once, then every `interval`, until
/// `shutdown`.
pub async fn run(
    dir: PathBuf,
    interval: Duration,
    gauges: Arc<StoreGauges>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut store: Option<Store> = None;
    loop {
        let (dir, g) = (dir.clone(), gauges.clone());
        let mut held = store.take();
        let done = tokio::task::spawn_blocking(move || {
            if held.is_none() {
                match Store::open(&dir).and_then(|s| s.reader()) {
                    Ok(s) => held = Some(s),
                    Err(e) => tracing::warn!(error = %e, "the store gauges could not open the store"),
                }
            }
            if let Some(s) = &held {
                match read(s) {
                    Ok(r) => g.set(&r),
                    Err(e) => {
                        g.read_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "reading the store gauges failed");
                    }
                }
            }
            held
        })
        .await;
        store = done.unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|&s| s) => return,
        }
    }
}

/// Writes the store's commit histogram, the publisher's metrics and the
/// store gauges.
pub fn render(out: &mut Text, publish: &PublishMetrics, gauges: &StoreGauges) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    out.histogram(
        "sixgate_store_commit_seconds",
        "Zone write transactions, from begin to durable commit.",
        &[("", &sixgate_store::metrics::WRITES.commit.snapshot())],
    );
    out.histogram(
        "sixgate_publish_build_seconds",
        "Building a catalog snapshot and swapping it in.",
        &[("", &publish.build.snapshot())],
    );
    out.histogram(
        "sixgate_write_to_served_seconds",
        "From a commit in this process to the swap of the snapshot serving it.",
        &[("", &publish.write_to_served.snapshot())],
    );
    let held = publish.held();
    out.family(
        "sixgate_zone_held",
        Kind::Gauge,
        "A zone not served as stored (1 per held zone, at most 100).",
    );
    for zone in held.iter().take(MAX_HELD_SERIES) {
        out.sample("sixgate_zone_held", &format!("zone=\"{}\"", label_value(zone)), 1);
    }
    out.single(
        "sixgate_store_journal_entries",
        Kind::Gauge,
        "Journal entries kept (read on a timer).",
        get(&gauges.journal_entries),
    );
    out.single(
        "sixgate_store_journal_bytes",
        Kind::Gauge,
        "Octets of the journal's changes (read on a timer).",
        get(&gauges.journal_octets),
    );
    out.single(
        "sixgate_store_gauges_read_timestamp_seconds",
        Kind::Gauge,
        "When the store gauges were last read (unix time of the store's clock).",
        get(&gauges.read_at),
    );
    out.single(
        "sixgate_store_gauges_read_errors_total",
        Kind::Counter,
        "Reads of the store gauges that failed.",
        get(&gauges.read_errors),
    );
    out.family(
        "sixgate_dnssec_zones",
        Kind::Gauge,
        "Signed zones by where their chain of trust stands (read on a timer).",
    );
    for (chain, v) in [
        ("secure", &gauges.secure),
        ("waiting_for_ds", &gauges.waiting_for_ds),
        ("ds_mismatch", &gauges.ds_mismatch),
        ("going_insecure", &gauges.going_insecure),
    ] {
        out.sample("sixgate_dnssec_zones", &format!("chain=\"{chain}\""), get(v));
    }
    out.single(
        "sixgate_dnssec_zones_waiting_for_ds",
        Kind::Gauge,
        "Signed zones whose parent serves no DS for them yet.",
        get(&gauges.waiting_for_ds),
    );
    out.single(
        "sixgate_dnssec_ds_wait_seconds",
        Kind::Gauge,
        "The longest time a submitted DS has not been seen at the parent.",
        get(&gauges.ds_wait_longest),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use sixgate_dns::name;
    use sixgate_store::Actor;

    #[test]
    fn a_signed_zone_without_a_ds_at_its_parent_is_counted_as_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for z in ["a.test.", "b.test."] {
            let apex = name::from_text(z, None).unwrap();
            let text = "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n";
            let records = sixgate_dns::zonefile::parse(text, &apex).unwrap();
            store.by(Actor::Task("test")).replace_zone(&apex, records).unwrap();
        }
        let before = read(&store).unwrap();
        assert_eq!(before.chains, [0; 4]);
        assert_eq!(before.journal.entries, 2);
        let a = name::from_text("a.test.", None).unwrap();
        store.by(Actor::Task("test")).dnssec_enable(&a, &Default::default()).unwrap();
        let r = read(&store).unwrap();
        assert_eq!(r.chains, [0, 1, 0, 0], "{r:?}");
        assert!(r.journal.entries > before.journal.entries && r.journal.octets > before.journal.octets);

        let gauges = StoreGauges::default();
        gauges.set(&r);
        let publish = PublishMetrics::default();
        publish.set_held(vec!["b.test.".into(), "a\"q.test.".into()]);
        let mut text = Text::new();
        render(&mut text, &publish, &gauges);
        let text = text.finish();
        assert!(text.contains("sixgate_dnssec_zones_waiting_for_ds 1\n"), "{text}");
        assert!(text.contains("sixgate_dnssec_zones{chain=\"secure\"} 0\n"), "{text}");
        assert!(text.contains(&format!("sixgate_store_journal_entries {}\n", r.journal.entries)), "{text}");
        assert!(
            text.contains(
                "sixgate_zone_held{zone=\"a\\\"q.test.\"} 1\nsixgate_zone_held{zone=\"b.test.\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("sixgate_store_commit_seconds_count "), "{text}");
    }

    #[test]
    fn held_zone_series_are_capped() {
        let publish = PublishMetrics::default();
        publish.set_held((0..MAX_HELD_SERIES + 50).map(|i| format!("z{i}.test.")).collect());
        let mut text = Text::new();
        render(&mut text, &publish, &StoreGauges::default());
        let text = text.finish();
        assert_eq!(text.matches("\nsixgate_zone_held{").count(), MAX_HELD_SERIES);
    }
}
