//! The signature expiry watchdog.
//!
//! Signatures are refreshed by the maintenance task long before they
//! expire (the policy's `signature_refresh`, 7 days by default, ahead of
//! a 14-day validity). If that task dies, is switched off, or cannot
//! sign, nothing is published, so nothing else looks at the zone: the
//! signatures served run out and validators call the zone bogus. This
//! task looks at what is *served* (the published catalog, which is the
//! last good version of a held zone), finds each signed zone's earliest
//! RRSIG expiration, and raises an alert when it is less than
//! `[dnssec] expiry_alert` away (3 days by default), or half the zone's
//! `signature_refresh` if that is less (a zone whose policy refreshes
//! signatures one day before they expire would otherwise alert always):
//! - a log line, WARN (ERROR once a signature has expired), naming the
//!   zone, the time and the first RRset to expire;
//! - the zone's `alert` in `dnssec status` and the API (unless another
//!   alert, such as a hold, already says what is wrong);
//! - the metrics `sixgate_dnssec_signature_expiry_seconds{zone=...}`,
//!   `sixgate_dnssec_signatures_expiring{zone=...}` and
//!   `sixgate_dnssec_zones_expiring` on `/metrics`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sixgate_dns::{Catalog, name};
use sixgate_dnssec::check::signature_expiry;
use sixgate_server::SharedCatalog;
use sixgate_store::{Store, rfc3339};
use tokio::sync::watch;

/// The start of the alerts this task sets; it clears only those.
pub const ALERT_PREFIX: &str = "signatures expire soon";
/// Default `[dnssec] expiry_alert`: three days, well after the default
/// refresh (7 days before expiry) should have happened, and time enough
/// for an operator to act.
pub const DEFAULT_THRESHOLD: u32 = 3 * 86400;

/// What the task needs.
#[derive(Debug, Clone)]
pub struct WatchdogSettings {
    /// Alert when a served signature expires sooner than this (seconds).
    pub threshold: u32,
    /// How often the served zones are looked at.
    pub interval: Duration,
    /// Added to the system clock (the server's simulated clock, if any).
    pub clock_offset: i64,
}

/// One signed zone as last looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneExpiry {
    /// The apex, presentation form.
    pub zone: String,
    /// When it was looked at (unix seconds).
    pub checked_at: i64,
    /// The earliest expiration of a signature it serves (unix seconds).
    pub earliest: i64,
    /// The owner and type of an RRset whose signature expires first.
    pub first: (String, u16),
    /// Signatures expiring within the threshold.
    pub expiring: u64,
    /// Signatures served.
    pub signatures: u64,
    /// True when the earliest expiration is within the threshold.
    pub alerting: bool,
}

/// The last look at every signed zone, for the metrics.
pub type ExpiryReport = Arc<arc_swap::ArcSwap<Vec<ZoneExpiry>>>;

/// The watchdog's memory between rounds: the expiration each alerting
/// zone was last logged with, so a log line comes when the alert starts
/// or changes, not every round.
#[derive(Debug, Default)]
pub struct Watchdog {
    threshold: u32,
    logged: HashMap<String, i64>,
}

/// The alert text for a zone, `None` when nothing expires soon.
pub fn alert_text(e: &ZoneExpiry) -> Option<String> {
    e.alerting.then(|| {
        format!(
            "{ALERT_PREFIX}: the first at {} ({} type {}), {} of {} signatures within the alert threshold; \
             is DNSSEC maintenance running?",
            rfc3339(e.earliest),
            e.first.0,
            sixgate_dns::zonefile::type_text(e.first.1),
            e.expiring,
            e.signatures
        )
    })
}

impl Watchdog {
    /// The zone's threshold: the configured one, or half its policy's
    /// refresh if less.
    fn threshold_of(&self, store: Option<&Store>, apex: &[u8]) -> u32 {
        let refresh =
            store.and_then(|s| s.dnssec_info(apex).ok().flatten()).map(|i| i.policy.signature_refresh);
        refresh.map_or(self.threshold, |r| self.threshold.min(r / 2))
    }

    /// A watchdog alerting `threshold` seconds before an expiration.
    pub fn new(threshold: u32) -> Watchdog {
        Watchdog { threshold, logged: HashMap::new() }
    }

    /// Looks at every signed zone `catalog` serves at `now`: logs alerts
    /// as they start, change and end, and sets or clears the zones'
    /// alerts in `store`. Returns the report for the metrics, by zone.
    pub fn round(&mut self, catalog: &Catalog, store: Option<&mut Store>, now: i64) -> Vec<ZoneExpiry> {
        let at = now.max(0) as u64;
        let mut report: Vec<ZoneExpiry> = catalog
            .zones()
            .filter_map(|z| {
                z.apex_node()?.rrset(sixgate_dns::rtype::code::DNSKEY)?;
                let threshold = self.threshold_of(store.as_deref(), z.apex());
                let until = now.saturating_add(i64::from(threshold));
                let e = signature_expiry(z, at, threshold)?;
                Some(ZoneExpiry {
                    zone: name::to_text(z.apex()),
                    checked_at: now,
                    earliest: e.earliest,
                    first: e.first,
                    expiring: e.expiring,
                    signatures: e.signatures,
                    alerting: e.earliest < until,
                })
            })
            .collect();
        report.sort_by(|a, b| a.zone.cmp(&b.zone));
        for e in &report {
            if !e.alerting {
                if self.logged.remove(&e.zone).is_some() {
                    tracing::info!(zone = %e.zone, earliest = %rfc3339(e.earliest), "signatures are fresh again");
                }
                continue;
            }
            if self.logged.get(&e.zone) == Some(&e.earliest) {
                continue;
            }
            self.logged.insert(e.zone.clone(), e.earliest);
            let (expires, first) = (rfc3339(e.earliest), format!("{} {}", e.first.0, e.first.1));
            let hours = (e.earliest - now) / 3600;
            if e.earliest <= now {
                tracing::error!(zone = %e.zone, %expires, %first, expiring = e.expiring, "a signature this zone serves has expired: validators see it as bogus");
            } else {
                tracing::warn!(zone = %e.zone, %expires, hours, %first, expiring = e.expiring, "signatures this zone serves expire soon and are not being refreshed");
            }
        }
        // Zones no longer served or signed: forget them.
        self.logged.retain(|z, _| report.iter().any(|e| &e.zone == z));
        if let Some(store) = store {
            for e in &report {
                if let Err(err) = set_alert(store, e) {
                    tracing::warn!(zone = %e.zone, error = %err, "could not record the expiry alert");
                }
            }
        }
        report
    }
}

/// Sets the zone's alert to the expiry alert, or clears an expiry alert
/// that no longer holds; leaves other alerts alone.
fn set_alert(store: &mut Store, e: &ZoneExpiry) -> Result<(), sixgate_store::StoreError> {
    let apex = match name::from_text(&e.zone, None) {
        Ok(a) => a,
        Err(_) => return Ok(()),
    };
    let Some(info) = store.dnssec_info(&apex)? else { return Ok(()) };
    let ours = info.state.alert.as_deref().is_none_or(|a| a.starts_with(ALERT_PREFIX));
    if !ours {
        return Ok(());
    }
    let want = alert_text(e);
    if want != info.state.alert {
        store.dnssec_alert(&apex, want.as_deref())?;
    }
    Ok(())
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The report in Prometheus text format.
pub fn metrics_text(report: &[ZoneExpiry]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP sixgate_dnssec_signature_expiry_seconds Seconds from the last check to the earliest expiration of a signature the zone serves.\n\
         # TYPE sixgate_dnssec_signature_expiry_seconds gauge"
    );
    for e in report {
        let _ = writeln!(
            out,
            "sixgate_dnssec_signature_expiry_seconds{{zone=\"{}\"}} {}",
            label(&e.zone),
            e.earliest - e.checked_at
        );
    }
    let _ = writeln!(
        out,
        "# HELP sixgate_dnssec_signatures_expiring Signatures the zone serves that expire within the alert threshold.\n\
         # TYPE sixgate_dnssec_signatures_expiring gauge"
    );
    for e in report {
        let _ =
            writeln!(out, "sixgate_dnssec_signatures_expiring{{zone=\"{}\"}} {}", label(&e.zone), e.expiring);
    }
    let alerting = report.iter().filter(|e| e.alerting).count();
    let _ = writeln!(
        out,
        "# HELP sixgate_dnssec_zones_expiring Signed zones with a served signature expiring within the alert threshold.\n\
         # TYPE sixgate_dnssec_zones_expiring gauge\nsixgate_dnssec_zones_expiring {alerting}"
    );
    out
}

/// Runs until `shutdown`: a round at once, then every `interval`.
pub async fn run(
    dir: PathBuf,
    catalog: SharedCatalog,
    settings: WatchdogSettings,
    report: ExpiryReport,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut state = Some((Watchdog::new(settings.threshold), None::<Store>));
    loop {
        let Some((mut dog, mut store)) = state.take() else { return };
        let (catalog, dir, offset) = (catalog.clone(), dir.clone(), settings.clock_offset);
        let done = tokio::task::spawn_blocking(move || {
            if store.is_none() {
                match Store::open(&dir) {
                    Ok(s) => store = Some(s),
                    Err(e) => tracing::warn!(error = %e, "the expiry watchdog could not open the store"),
                }
            }
            let now = unix_now().saturating_add(offset);
            let out = dog.round(&catalog.load(), store.as_mut(), now);
            (dog, store, out)
        })
        .await;
        match done {
            Ok((dog, store, out)) => {
                report.store(Arc::new(out));
                state = Some((dog, store));
            }
            Err(e) => {
                tracing::error!(error = %e, "the expiry watchdog failed; restarting it");
                state = Some((Watchdog::new(settings.threshold), None));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sixgate_store::Actor;

    fn n(text: &str) -> Box<[u8]> {
        name::from_text(text, None).unwrap()
    }

    /// a.test. signed, b.test. not; the catalog as a publisher loads it.
    fn setup() -> (tempfile::TempDir, Store, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for z in ["a.test.", "b.test."] {
            let text = "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n";
            let records = sixgate_dns::zonefile::parse(text, &n(z)).unwrap();
            store.by(Actor::Task("test")).replace_zone(&n(z), records).unwrap();
        }
        store.by(Actor::Task("test")).dnssec_enable(&n("a.test."), &Default::default()).unwrap();
        let mut catalog = Catalog::new();
        for z in ["a.test.", "b.test."] {
            let (_, data) = store.zone_snapshot(&n(z)).unwrap().unwrap();
            catalog.insert(Arc::new(sixgate_dns::Zone::build(&n(z), data.records, 1).unwrap()));
        }
        (dir, store, catalog)
    }

    fn alert(store: &Store) -> Option<String> {
        store.dnssec_info(&n("a.test.")).unwrap().unwrap().state.alert
    }

    /// Regression (issue fault 8): nothing looked at signatures unless
    /// something was published, so a dead maintenance task let a zone's
    /// signatures run out with no alert. Twelve days after signing with
    /// the default 14-day validity, nothing re-signed, the watchdog must
    /// alert (status and metrics) days before the expiration.
    #[test]
    fn fault8_signatures_expiring_within_the_threshold_raise_the_alert_and_metric() {
        let (_dir, mut store, catalog) = setup();
        let now = store.now();
        let mut dog = Watchdog::new(DEFAULT_THRESHOLD);

        let fresh = dog.round(&catalog, Some(&mut store), now);
        assert_eq!(fresh.len(), 1, "only the signed zone is watched: {fresh:?}");
        assert_eq!(fresh[0].zone, "a.test.");
        assert!(!fresh[0].alerting && fresh[0].expiring == 0, "{fresh:?}");
        assert!(fresh[0].earliest - now > 13 * 86400, "{fresh:?}");
        assert_eq!(alert(&store), None);
        let text = metrics_text(&fresh);
        assert!(text.contains("sixgate_dnssec_signatures_expiring{zone=\"a.test.\"} 0\n"), "{text}");
        assert!(text.contains("sixgate_dnssec_zones_expiring 0\n"), "{text}");

        let later = now + 12 * 86400;
        let stale = dog.round(&catalog, Some(&mut store), later);
        assert!(stale[0].alerting, "{stale:?}");
        assert_eq!(stale[0].expiring, stale[0].signatures);
        let a = alert(&store).expect("the zone's status shows the alert");
        assert!(a.starts_with(ALERT_PREFIX) && a.contains(&rfc3339(stale[0].earliest)), "{a}");
        let text = metrics_text(&stale);
        assert!(text.contains("sixgate_dnssec_zones_expiring 1\n"), "{text}");
        let expiring =
            format!("sixgate_dnssec_signatures_expiring{{zone=\"a.test.\"}} {}\n", stale[0].signatures);
        assert!(text.contains(&expiring), "{text}");
        let seconds = format!(
            "sixgate_dnssec_signature_expiry_seconds{{zone=\"a.test.\"}} {}\n",
            stale[0].earliest - later
        );
        assert!(text.contains(&seconds), "{text}");

        // Fresh signatures again (the maintenance task came back): the
        // watchdog's alert goes.
        dog.round(&catalog, Some(&mut store), now);
        assert_eq!(alert(&store), None);
    }

    #[test]
    fn another_alert_is_left_alone() {
        let (_dir, mut store, catalog) = setup();
        store.dnssec_alert(&n("a.test."), Some("maintenance failed: no key")).unwrap();
        let mut dog = Watchdog::new(DEFAULT_THRESHOLD);
        let later = store.now() + 12 * 86400;
        assert!(dog.round(&catalog, Some(&mut store), later)[0].alerting);
        assert_eq!(alert(&store).as_deref(), Some("maintenance failed: no key"));
        let now = store.now();
        dog.round(&catalog, Some(&mut store), now);
        assert_eq!(alert(&store).as_deref(), Some("maintenance failed: no key"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c.\n"), "a\\\"b\\\\c.\\n");
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use sixgate_store::Actor;

    #[test]
    fn a_short_refresh_lowers_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let apex = name::from_text("c.test.", None).unwrap();
        let text = "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n";
        let records = sixgate_dns::zonefile::parse(text, &apex).unwrap();
        store.by(Actor::Task("test")).replace_zone(&apex, records).unwrap();
        let policy = sixgate_dnssec::Policy {
            signature_validity: 2 * 86400,
            signature_refresh: 86400,
            signature_jitter: 600,
            ..Default::default()
        };
        store.by(Actor::Task("test")).dnssec_enable(&apex, &policy).unwrap();
        let (_, data) = store.zone_snapshot(&apex).unwrap().unwrap();
        let mut catalog = Catalog::new();
        catalog.insert(Arc::new(sixgate_dns::Zone::build(&apex, data.records, 1).unwrap()));
        let mut dog = Watchdog::new(DEFAULT_THRESHOLD);
        let now = store.now();
        // Two days of validity, refreshed a day before: fresh, not an alert.
        assert!(!dog.round(&catalog, Some(&mut store), now)[0].alerting);
        // Less than half a day left: the refresh is overdue.
        assert!(dog.round(&catalog, Some(&mut store), now + 2 * 86400 - 40_000)[0].alerting);
    }
}
