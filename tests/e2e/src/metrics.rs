//! A server's `/metrics` text and the samples tests read from it: one
//! reader for every test that looks at counters from outside.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

/// A `/metrics` text (Prometheus exposition format).
#[derive(Clone, Debug)]
pub struct Metrics(pub String);

impl Metrics {
    /// The sample `key` (name and labels exactly as printed), if present
    /// and of type `T`.
    pub fn get<T: FromStr>(&self, key: &str) -> Option<T> {
        self.0.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// The counter or gauge `key`; 0 when absent (a labelled counter is
    /// printed only once it has counted).
    pub fn value(&self, key: &str) -> u64 {
        self.get(key).unwrap_or(0)
    }

    /// The counter or gauge `key`, which must be present.
    pub fn require(&self, key: &str) -> Result<u64> {
        self.get(key).with_context(|| format!("no {key} in /metrics:\n{}", self.0))
    }

    /// `sixgate_listener_timeouts_total` of `listener` in `phase`.
    pub fn timeouts(&self, listener: &str, phase: &str) -> u64 {
        self.value(&format!("sixgate_listener_timeouts_total{{listener=\"{listener}\",phase=\"{phase}\"}}"))
    }

    /// `sixgate_listener_open_connections` of `listener`.
    pub fn open(&self, listener: &str) -> u64 {
        self.value(&format!("sixgate_listener_open_connections{{listener=\"{listener}\"}}"))
    }

    /// `sixgate_listener_refused_total` of `listener` at `cap`.
    pub fn refused(&self, listener: &str, cap: &str) -> u64 {
        self.value(&format!("sixgate_listener_refused_total{{listener=\"{listener}\",cap=\"{cap}\"}}"))
    }

    /// `sixgate_listener_evicted_total` of `listener`.
    pub fn evicted(&self, listener: &str) -> u64 {
        self.value(&format!("sixgate_listener_evicted_total{{listener=\"{listener}\"}}"))
    }
}

/// `GET {api_base}/metrics` with `token`.
pub fn fetch(api_base: &str, token: &str) -> Result<Metrics> {
    let m = crate::http::bearer("GET", api_base, "/metrics", token, None, Duration::from_secs(20))?;
    ensure!(m.status == 200, "GET /metrics: {} {}", m.status, m.body);
    Ok(Metrics(m.body))
}

/// `GET {metrics_base}/metrics` on the metrics listener, without a token.
pub fn scrape(metrics_base: &str) -> Result<Metrics> {
    let m =
        crate::http::request("GET", &format!("{metrics_base}/metrics"), &[], None, Duration::from_secs(20))?;
    ensure!(m.status == 200, "GET /metrics on the metrics listener: {} {}", m.status, m.body);
    Ok(Metrics(m.body))
}

impl Metrics {
    /// The names of the `sixgate_*` families (from their `# TYPE` lines).
    pub fn families(&self) -> std::collections::BTreeSet<String> {
        self.0
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next())
            .filter(|n| n.starts_with("sixgate_"))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_found_by_its_whole_key_only() {
        let m = Metrics(
            "# TYPE a_total counter\na_total{x=\"1\"} 5\na_total_more 9\nb -3\nc{zone=\"z.\"} 12\n".into(),
        );
        assert_eq!(m.get::<u64>("a_total{x=\"1\"}"), Some(5));
        assert_eq!(m.get::<u64>("a_total"), None, "a_total_more and the labelled one are other series");
        assert_eq!(m.get::<i64>("b"), Some(-3));
        assert_eq!(m.value("missing"), 0);
        assert!(m.require("missing").is_err());
        assert_eq!(m.require("c{zone=\"z.\"}").ok(), Some(12));
    }
}
