//! Configuration: the TOML file (raw, as written) and the validated
//! settings the server runs on. Command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Default DNS listen addresses: loopback, an unprivileged port.
pub(crate) const DEFAULT_DNS: [&str; 2] = ["127.0.0.1:5300", "[::1]:5300"];
/// Default data directory.
pub(crate) const DEFAULT_DATA: &str = "./sixgate-data";

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// Data directory.
    pub(crate) data: Option<PathBuf>,
    /// DNS settings.
    #[serde(default)]
    pub(crate) dns: RawDns,
    /// Logging.
    #[serde(default)]
    pub(crate) log: RawLog,
}

/// `[dns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDns {
    /// Listen addresses.
    pub(crate) listen: Option<Vec<String>>,
    /// UDP worker threads.
    pub(crate) workers: Option<usize>,
    /// Largest UDP response and the size advertised in OPT.
    pub(crate) udp_payload: Option<u16>,
    /// TCP idle timeout in seconds.
    pub(crate) tcp_idle_timeout: Option<u64>,
    /// Most open TCP connections.
    pub(crate) tcp_max_connections: Option<usize>,
    /// Create a demo zone when the store is empty.
    pub(crate) demo_zone: Option<bool>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    /// A tracing filter, e.g. "info" or "sixgate_server=debug".
    pub(crate) level: Option<String>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) data: PathBuf,
    pub(crate) dns: Vec<SocketAddr>,
    /// True when the addresses are the defaults (an unavailable IPv6
    /// loopback is then skipped rather than fatal).
    pub(crate) dns_is_default: bool,
    pub(crate) workers: usize,
    pub(crate) udp_payload: u16,
    pub(crate) tcp_idle_timeout: Duration,
    pub(crate) tcp_max_connections: usize,
    pub(crate) demo_zone: bool,
    pub(crate) log_level: String,
}

/// Reads and parses a configuration file.
pub(crate) fn read(path: &Path) -> anyhow::Result<RawConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " ")))
}

fn parse_addr(s: &str) -> anyhow::Result<SocketAddr> {
    s.parse().with_context(|| format!("bad listen address {s:?} (expected ADDR:PORT, IPv6 as [ADDR]:PORT)"))
}

/// Merges flags over the file and validates.
pub(crate) fn settings(
    raw: RawConfig,
    data: Option<PathBuf>,
    dns: &[String],
    workers: Option<usize>,
) -> anyhow::Result<Settings> {
    let (listen, dns_is_default) = if !dns.is_empty() {
        (dns.to_vec(), false)
    } else if let Some(l) = raw.dns.listen {
        (l, false)
    } else {
        (DEFAULT_DNS.iter().map(|s| s.to_string()).collect(), true)
    };
    let dns = listen.iter().map(|s| parse_addr(s)).collect::<anyhow::Result<Vec<_>>>()?;
    if dns.is_empty() {
        bail!("dns.listen is empty: give at least one address");
    }
    let workers = workers
        .or(raw.dns.workers)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(1..=256).contains(&workers) {
        bail!("workers must be between 1 and 256, not {workers}");
    }
    let udp_payload = raw.dns.udp_payload.unwrap_or(1232);
    if udp_payload < 512 {
        bail!("dns.udp_payload must be at least 512, not {udp_payload}");
    }
    let idle = raw.dns.tcp_idle_timeout.unwrap_or(10);
    if !(1..=3600).contains(&idle) {
        bail!("dns.tcp_idle_timeout must be 1..=3600 seconds, not {idle}");
    }
    let max_conn = raw.dns.tcp_max_connections.unwrap_or(1000);
    if max_conn == 0 {
        bail!("dns.tcp_max_connections must be at least 1");
    }
    Ok(Settings {
        data: data.or(raw.data).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
        dns,
        dns_is_default,
        workers,
        udp_payload,
        tcp_idle_timeout: Duration::from_secs(idle),
        tcp_max_connections: max_conn,
        demo_zone: raw.dns.demo_zone.unwrap_or(true),
        log_level: raw.log.level.unwrap_or_else(|| "info".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = toml::from_str::<RawConfig>("[dns]\nlisten = []\nworkerz = 2\n").unwrap_err();
        assert!(e.to_string().contains("workerz"), "{e}");
    }

    #[test]
    fn flags_override_the_file_and_values_are_checked() {
        let raw: RawConfig = toml::from_str("[dns]\nlisten = [\"127.0.0.1:53\"]\nworkers = 3\n").unwrap();
        let s = settings(raw, None, &["127.0.0.1:0".into()], None).unwrap();
        assert_eq!(s.dns, vec!["127.0.0.1:0".parse().unwrap()]);
        assert_eq!(s.workers, 3);
        let raw: RawConfig = toml::from_str("[dns]\nudp_payload = 100\n").unwrap();
        assert!(settings(raw, None, &[], None).is_err());
        assert!(settings(RawConfig::default(), None, &["nonsense".into()], None).is_err());
    }
}
