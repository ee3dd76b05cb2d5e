//! The transfer service's counters: requests by what they became and how
//! they ended, the messages and records sent, the transfers running, in
//! the Prometheus text format for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a transfer request became, for the metrics' `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XfrKind {
    /// AXFR asked for.
    Axfr,
    /// IXFR answered incrementally (or refused before it was planned).
    Ixfr,
    /// IXFR answered with the whole zone (RFC 1995 §4).
    IxfrFull,
    /// IXFR from a client that is up to date: the current SOA alone.
    UpToDate,
}

impl XfrKind {
    const ALL: [XfrKind; 4] = [XfrKind::Axfr, XfrKind::Ixfr, XfrKind::IxfrFull, XfrKind::UpToDate];

    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            XfrKind::Axfr => "axfr",
            XfrKind::Ixfr => "ixfr",
            XfrKind::IxfrFull => "ixfr_full",
            XfrKind::UpToDate => "up_to_date",
        }
    }
}

/// How a transfer request ended, for the metrics' `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XfrOutcome {
    /// Sent whole.
    Done,
    /// Refused: not allowed, or over a cap.
    Refused,
    /// NOTAUTH: a zone not served here, or a TSIG that did not verify.
    NotAuth,
    /// Cut short: a write error, or a message that could not be made.
    Failed,
}

impl XfrOutcome {
    const ALL: [XfrOutcome; 4] =
        [XfrOutcome::Done, XfrOutcome::Refused, XfrOutcome::NotAuth, XfrOutcome::Failed];

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            XfrOutcome::Done => "done",
            XfrOutcome::Refused => "refused",
            XfrOutcome::NotAuth => "notauth",
            XfrOutcome::Failed => "failed",
        }
    }
}

/// The transfer service's counters.
#[derive(Debug, Default)]
pub struct TransferStats {
    /// By kind, then outcome.
    requests: [[AtomicU64; XfrOutcome::ALL.len()]; XfrKind::ALL.len()],
    /// Response messages sent.
    pub messages: AtomicU64,
    /// Records sent.
    pub records: AtomicU64,
    /// Transfers running now (a gauge).
    pub active: AtomicU64,
}

impl TransferStats {
    /// Counts one request.
    pub fn count(&self, kind: XfrKind, outcome: XfrOutcome) {
        if let Some(c) = self.requests.get(kind as usize).and_then(|k| k.get(outcome as usize)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests of `kind` that ended with `outcome`, so far.
    pub fn requests(&self, kind: XfrKind, outcome: XfrOutcome) -> u64 {
        self.requests
            .get(kind as usize)
            .and_then(|k| k.get(outcome as usize))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP sixgate_xfr_requests_total Zone transfer requests, by what they became and how they ended.\n# TYPE sixgate_xfr_requests_total counter"
        );
        for kind in XfrKind::ALL {
            for outcome in XfrOutcome::ALL {
                let _ = writeln!(
                    out,
                    "sixgate_xfr_requests_total{{kind=\"{}\",outcome=\"{}\"}} {}",
                    kind.label(),
                    outcome.label(),
                    self.requests(kind, outcome)
                );
            }
        }
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP sixgate_xfr_messages_total Zone transfer response messages sent.\n# TYPE sixgate_xfr_messages_total counter\nsixgate_xfr_messages_total {}",
            get(&self.messages)
        );
        let _ = writeln!(
            out,
            "# HELP sixgate_xfr_records_total Records sent in zone transfers.\n# TYPE sixgate_xfr_records_total counter\nsixgate_xfr_records_total {}",
            get(&self.records)
        );
        let _ = writeln!(
            out,
            "# HELP sixgate_xfr_active Zone transfers running now.\n# TYPE sixgate_xfr_active gauge\nsixgate_xfr_active {}",
            get(&self.active)
        );
        out
    }
}
