//! One metric set for every listener.
//!
//! Each kind of listener (DNS over TCP, the API, the proxy's HTTP and TLS
//! sides) owns one [`ListenerMetrics`], shared by all its addresses, and
//! [`render`] writes them all in the Prometheus text format under the
//! same names, told apart by a `listener` label.
//!
//! The histogram and text writer every crate shares live in
//! `sixgate-metrics`, re-exported here for the listeners' users.

use std::fmt::Write as _;

pub use sixgate_metrics::{FINE, Histogram, Kind, LATENCY, Snapshot, Text, label_value};
use std::sync::atomic::{AtomicU64, Ordering};

/// A phase of a connection that has its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The TLS handshake (API) or the ClientHello (proxy).
    Handshake,
    /// A request head, or a DNS message once its first octet came.
    Head,
    /// A request body.
    Body,
    /// Waiting for the next request on an open connection.
    Idle,
    /// A write that made no progress: the peer does not read.
    Write,
    /// A tunnel with no traffic either way.
    Tunnel,
    /// Connecting to a backend.
    Connect,
}

impl Phase {
    /// Every phase, in label order.
    pub const ALL: [Phase; 7] = [
        Phase::Handshake,
        Phase::Head,
        Phase::Body,
        Phase::Idle,
        Phase::Write,
        Phase::Tunnel,
        Phase::Connect,
    ];

    /// The `phase` label.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Handshake => "handshake",
            Phase::Head => "head",
            Phase::Body => "body",
            Phase::Idle => "idle",
            Phase::Write => "write",
            Phase::Tunnel => "tunnel",
            Phase::Connect => "connect",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one kind of listener.
#[derive(Debug)]
pub struct ListenerMetrics {
    name: &'static str,
    /// Connections open now (a gauge).
    pub open: AtomicU64,
    /// Connections accepted and admitted.
    pub accepted: AtomicU64,
    /// Connections refused because the listener was full.
    pub refused_global: AtomicU64,
    /// Connections refused because their client address was at its cap.
    pub refused_address: AtomicU64,
    /// Connections refused because the name they asked for was at its cap
    /// (the proxy's per-hostname cap).
    pub refused_host: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub evicted: AtomicU64,
    timed_out: [AtomicU64; Phase::ALL.len()],
    /// Connections that ended with a reset or another I/O error.
    pub reset: AtomicU64,
    /// Failed `accept` calls (EMFILE, ENFILE, ENOBUFS...).
    pub accept_errors: AtomicU64,
}

impl ListenerMetrics {
    /// Counters for the listener named `name` (the `listener` label:
    /// `dns_tcp`, `api`, `proxy_http`, `proxy_tls`).
    pub fn new(name: &'static str) -> ListenerMetrics {
        ListenerMetrics {
            name,
            open: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused_global: AtomicU64::new(0),
            refused_address: AtomicU64::new(0),
            refused_host: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            timed_out: Default::default(),
            reset: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
        }
    }

    /// The `listener` label.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Counts a connection closed because `phase` ran out of time.
    pub fn timed_out(&self, phase: Phase) {
        if let Some(c) = self.timed_out.get(phase.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connections closed because `phase` ran out of time, so far.
    pub fn timeouts(&self, phase: Phase) -> u64 {
        self.timed_out.get(phase.index()).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts a connection that ended with a reset or an I/O error.
    pub fn reset(&self) {
        self.reset.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes `listeners` in the Prometheus text format.
pub fn render(listeners: &[&ListenerMetrics]) -> String {
    let mut out = String::new();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&ListenerMetrics) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for l in listeners {
            let _ = writeln!(out, "{name}{{listener=\"{}\"}} {}", l.name, value(l));
        }
    };
    family("sixgate_listener_open_connections", "gauge", "Connections open now.", &|l| get(&l.open));
    family("sixgate_listener_accepted_total", "counter", "Connections accepted and admitted.", &|l| {
        get(&l.accepted)
    });
    family("sixgate_listener_evicted_total", "counter", "Idle connections closed to make room.", &|l| {
        get(&l.evicted)
    });
    family(
        "sixgate_listener_reset_total",
        "counter",
        "Connections ended by a reset or an I/O error.",
        &|l| get(&l.reset),
    );
    family("sixgate_listener_accept_errors_total", "counter", "Failed accept calls.", &|l| {
        get(&l.accept_errors)
    });
    let _ = writeln!(
        out,
        "# HELP sixgate_listener_refused_total Connections refused at a cap, by cap.\n# TYPE sixgate_listener_refused_total counter"
    );
    for l in listeners {
        let _ = writeln!(
            out,
            "sixgate_listener_refused_total{{listener=\"{}\",cap=\"listener\"}} {}",
            l.name,
            get(&l.refused_global)
        );
        let _ = writeln!(
            out,
            "sixgate_listener_refused_total{{listener=\"{}\",cap=\"address\"}} {}",
            l.name,
            get(&l.refused_address)
        );
        let _ = writeln!(
            out,
            "sixgate_listener_refused_total{{listener=\"{}\",cap=\"host\"}} {}",
            l.name,
            get(&l.refused_host)
        );
    }
    let _ = writeln!(
        out,
        "# HELP sixgate_listener_timeouts_total Connections closed because a phase ran out of time.\n# TYPE sixgate_listener_timeouts_total counter"
    );
    for l in listeners {
        for p in Phase::ALL {
            let _ = writeln!(
                out,
                "sixgate_listener_timeouts_total{{listener=\"{}\",phase=\"{}\"}} {}",
                l.name,
                p.label(),
                l.timeouts(p)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listener_is_rendered_under_the_same_names() {
        let dns = ListenerMetrics::new("dns_tcp");
        let api = ListenerMetrics::new("api");
        dns.timed_out(Phase::Write);
        dns.timed_out(Phase::Write);
        api.refused_address.fetch_add(3, Ordering::Relaxed);
        api.refused_host.fetch_add(2, Ordering::Relaxed);
        let text = render(&[&dns, &api]);
        assert!(
            text.contains("sixgate_listener_timeouts_total{listener=\"dns_tcp\",phase=\"write\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_listener_timeouts_total{listener=\"api\",phase=\"write\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_listener_refused_total{listener=\"api\",cap=\"address\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("sixgate_listener_refused_total{listener=\"api\",cap=\"host\"} 2\n"), "{text}");
        assert!(text.contains("sixgate_listener_open_connections{listener=\"dns_tcp\"} 0\n"), "{text}");
        // One HELP and TYPE per family, however many listeners.
        assert_eq!(text.matches("# TYPE sixgate_listener_timeouts_total").count(), 1);
    }
}
