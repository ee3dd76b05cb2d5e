//! Configuration: the TOML file (raw, as written) and the validated
//! settings the server runs on. Command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Default DNS listen addresses: loopback, an unprivileged port.
pub(crate) const DEFAULT_DNS: [&str; 2] = ["127.0.0.1:5300", "[::1]:5300"];
/// Default API listen address: loopback only.
pub(crate) const DEFAULT_API: &str = "127.0.0.1:8053";
/// Default metrics listen address: loopback only, apart from the DNS
/// (5300) and API (8053) defaults.
pub(crate) const DEFAULT_METRICS: &str = "127.0.0.1:9053";
/// `[proxy] drain_timeout` by default: long enough for a page and its
/// assets, short enough for a supervisor's stop timeout (systemd: 90 s).
pub(crate) const DEFAULT_DRAIN: u64 = 30;
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
    /// The HTTP API.
    #[serde(default)]
    pub(crate) api: RawApi,
    /// RFC 2136 UPDATE.
    #[serde(default)]
    pub(crate) update: RawUpdate,
    /// Delegation checks of customer zones.
    #[serde(default)]
    pub(crate) verify: RawVerify,
    /// ANAME resolution.
    #[serde(default)]
    pub(crate) aname: RawAname,
    /// The IPv4-to-IPv6 proxy.
    #[serde(default)]
    pub(crate) proxy: RawProxy,
    /// Managed DNSSEC.
    #[serde(default)]
    pub(crate) dnssec: RawDnssec,
    /// Customer accounts: zone claims, nameserver names, serving.
    #[serde(default)]
    pub(crate) tenancy: RawTenancy,
    /// Secondaries: the catalog zone, NOTIFY, transfers.
    #[serde(default)]
    pub(crate) secondaries: RawSecondaries,
    /// The store: the key-encryption key of its secrets.
    #[serde(default)]
    pub(crate) store: RawStore,
    /// The metrics listener.
    #[serde(default)]
    pub(crate) metrics: RawMetrics,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    /// A file holding the key-encryption key that seals DNSSEC private
    /// keys and TSIG secrets (`sixgate kek create`); or $SIXGATE_KEK.
    pub(crate) kek_file: Option<PathBuf>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    /// Listen addresses of `/metrics`, `/health` and `/ready` without a
    /// token; an empty list turns the listener off.
    pub(crate) listen: Option<Vec<String>>,
}

/// `[secondaries]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecondaries {
    /// The catalog zone's name (RFC 9432); `catalog.invalid.` by default.
    pub(crate) catalog_zone: Option<String>,
    /// Tries of an unanswered NOTIFY (RFC 1996 §3.6); default 5.
    pub(crate) notify_tries: Option<u32>,
    /// The first try's timeout in milliseconds, doubling; default 1000.
    pub(crate) notify_timeout_ms: Option<u64>,
    /// Seconds between reads of each secondary's serial per zone, besides
    /// those after a NOTIFY; default 60.
    pub(crate) probe_interval: Option<u64>,
    /// At most this many of those reads a second; default 20.
    pub(crate) probes_per_second: Option<u32>,
    /// lego httpreq `present` waits for the secondaries; default false.
    pub(crate) httpreq_wait: Option<bool>,
    /// How long it waits, seconds (1 to 60); default 10.
    pub(crate) httpreq_wait_timeout: Option<u64>,
    /// Zone transfers sent at once, in total (16 by default).
    pub(crate) max_transfers: Option<u64>,
    /// Zone transfers sent at once to one client address (4 by default).
    pub(crate) max_transfers_per_address: Option<u64>,
    /// Journal entries kept per zone, the reach of IXFR (1000 by default).
    pub(crate) journal_keep: Option<u64>,
}

/// Most transfers at once that `[secondaries] max_transfers` may ask for:
/// each holds a connection and a zone snapshot.
const MAX_TRANSFERS: u64 = 1024;
/// The range of `[secondaries] journal_keep`: fewer than 10 versions
/// would send whole zones to a secondary one NOTIFY late; more than a
/// million would keep a busy zone's every change on disk for years.
const JOURNAL_KEEP: std::ops::RangeInclusive<u64> = 10..=1_000_000;

/// `[secondaries]`'s transfer settings: the caps and the journal's reach.
fn transfer_settings(raw: &RawSecondaries) -> anyhow::Result<(sixgate_server::transfer::TransferCaps, u32)> {
    let default = sixgate_server::transfer::TransferCaps::default();
    let total = raw.max_transfers.unwrap_or(default.total as u64);
    if !(1..=MAX_TRANSFERS).contains(&total) {
        bail!("secondaries.max_transfers must be 1 to {MAX_TRANSFERS}, not {total}");
    }
    let per_address = raw.max_transfers_per_address.unwrap_or((default.per_address as u64).min(total));
    if !(1..=total).contains(&per_address) {
        bail!(
            "secondaries.max_transfers_per_address must be 1 to max_transfers ({total}), not {per_address}"
        );
    }
    let keep = raw.journal_keep.unwrap_or(sixgate_store::JOURNAL_KEEP as u64);
    if !JOURNAL_KEEP.contains(&keep) {
        bail!(
            "secondaries.journal_keep must be {} to {}, not {keep}",
            JOURNAL_KEEP.start(),
            JOURNAL_KEEP.end()
        );
    }
    let caps =
        sixgate_server::transfer::TransferCaps { total: total as usize, per_address: per_address as usize };
    Ok((caps, keep as u32))
}

/// `[tenancy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenancy {
    /// The domain under which each account gets its own nameserver names,
    /// `ns1.LABEL.DOMAIN` and on; its customer zones verify only when
    /// delegated to them.
    pub(crate) nameserver_domain: Option<String>,
    /// How many names each account gets (default 2).
    pub(crate) nameserver_count: Option<u8>,
    /// Names customers may create although they are a TLD or on the
    /// Public Suffix List.
    pub(crate) allow_suffixes: Option<Vec<String>>,
    /// Serve customer zones before their delegation is verified (labs).
    pub(crate) serve_unverified: Option<bool>,
}

/// `[dnssec]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDnssec {
    /// Keep signed zones signed and roll their keys (default true). Off,
    /// nothing moves until `sixgate dnssec maintain` is run.
    pub(crate) maintain: Option<bool>,
    /// Seconds between looks at every signed zone for signatures to
    /// refresh (default 3600).
    pub(crate) check_interval: Option<u64>,
    /// Seconds before a served signature expires at which the expiry
    /// watchdog alerts (default 3 days).
    pub(crate) expiry_alert: Option<u64>,
    /// Parent servers to ask for a zone's DS, by zone ("." for all
    /// zones): ADDR:PORT lists that replace discovery through NS records.
    pub(crate) parents: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// `[proxy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxy {
    /// Plain HTTP listen addresses (port 80 in production).
    pub(crate) http: Option<Vec<String>>,
    /// TLS listen addresses (port 443 in production).
    pub(crate) tls: Option<Vec<String>>,
    /// Backend prefixes (the customer networks); nothing is proxied without.
    pub(crate) allow_backend: Option<Vec<String>>,
    /// The NAT64 prefix in use, never a backend unless named explicitly.
    pub(crate) nat64_prefix: Option<String>,
    /// Also send `Forwarded: for=CLIENT` (RFC 7239) on plain HTTP.
    pub(crate) forwarded: Option<bool>,
    /// Threads of the proxy's own, each with its own listening sockets.
    pub(crate) threads: Option<usize>,
    /// Seconds connections in flight have to finish at shutdown.
    pub(crate) drain_timeout: Option<u64>,
    /// Give each connection an ID, sent as PP2_TYPE_UNIQUE_ID in PROXY v2
    /// headers.
    pub(crate) proxy_v2_unique_id: Option<bool>,
    /// Relay TLS tunnels, upgraded connections and large bodies with
    /// splice(2) (default true).
    pub(crate) splice: Option<bool>,
    /// `"off"` (the default), `"text"` or `"json"`.
    pub(crate) access_log: Option<String>,
    /// The access log file (default DATA_DIR/proxy-access.log).
    pub(crate) access_log_path: Option<PathBuf>,
    /// One request (HTTP) or connection (TLS) in N is logged (default 1).
    pub(crate) access_log_sample: Option<u32>,
    /// `"idempotent"` (the default), `"safe"` or `"never"`: which of a
    /// client's requests may go over idle pooled backend connections?
    pub(crate) backend_reuse: Option<String>,
    /// Idle backend connections per proxy thread (default 256).
    pub(crate) backend_pool_max: Option<usize>,
    /// Idle backend connections per proxy thread for one hostname and
    /// backend address (default 64).
    pub(crate) backend_pool_max_per_host: Option<usize>,
    /// Milliseconds an idle backend connection is kept (default 2000).
    pub(crate) backend_pool_idle_ms: Option<u64>,
    /// Milliseconds an idle kept-alive client keeps its backend connection
    /// before it goes to the pool (default 100).
    pub(crate) backend_pool_grace_ms: Option<u64>,
    /// Caps and deadlines of both proxy listeners.
    pub(crate) limits: Option<RawLimits>,
}

/// `[aname]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAname {
    /// Upstream resolvers (ADDR:PORT) for targets outside sixgate's zones.
    pub(crate) resolvers: Option<Vec<String>>,
    /// Refresh floor in seconds.
    pub(crate) min_refresh: Option<u64>,
    /// Refresh ceiling in seconds.
    pub(crate) max_refresh: Option<u64>,
    /// Most ANAMEs resolved per zone.
    pub(crate) max_per_zone: Option<usize>,
    /// Most upstream queries per second.
    pub(crate) queries_per_second: Option<u32>,
    /// Where upstream answers are validated from: `"iana"` (the built-in
    /// root anchors), `"none"`, or a file of root DS/DNSKEY records.
    pub(crate) trust_anchor: Option<String>,
    /// Most resolutions of one account in flight at once.
    pub(crate) per_account: Option<usize>,
}

/// `[api]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApi {
    /// Listen addresses; an empty list turns the API off.
    pub(crate) listen: Option<Vec<String>>,
    /// PEM certificate chain; with `tls_key`, the API speaks HTTPS.
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub(crate) tls_key: Option<PathBuf>,
    /// Requests per second per customer token.
    pub(crate) rate_limit: Option<u32>,
    /// Burst per customer token.
    pub(crate) rate_burst: Option<u32>,
    /// Largest request body in bytes.
    pub(crate) max_body: Option<usize>,
    /// Caps and deadlines of the API listener.
    pub(crate) limits: Option<RawLimits>,
}

/// `[update]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpdate {
    /// Accept hmac-md5 TSIG keys (certbot-dns-rfc2136's default).
    pub(crate) hmac_md5: Option<bool>,
}

/// `[verify]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVerify {
    /// Recursive resolvers (ADDR:PORT) asked for a zone's delegation.
    pub(crate) resolvers: Option<Vec<String>>,
    /// Seconds between checks of unverified zones.
    pub(crate) interval: Option<u64>,
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
    /// TCP idle timeout in seconds (an alias of `limits.idle_timeout`).
    pub(crate) tcp_idle_timeout: Option<u64>,
    /// Most open TCP connections (an alias of `limits.max_connections`).
    pub(crate) tcp_max_connections: Option<usize>,
    /// Caps and deadlines of DNS over TCP.
    pub(crate) limits: Option<RawLimits>,
    /// Create a demo zone when the store is empty.
    pub(crate) demo_zone: Option<bool>,
    /// sixgate's nameserver names: the NS records of new zones, and what a
    /// customer zone's parent must delegate to.
    pub(crate) nameservers: Option<Vec<String>>,
    /// How serials advance: "unixtime" (default), "date" or "increment".
    pub(crate) serial: Option<String>,
    /// Response-rate limiting of UDP answers.
    pub(crate) rrl: Option<RawRrl>,
    /// The server's identifier: NSID (RFC 5001) and the `id.server` and
    /// `hostname.bind` CH TXT answer (RFC 4892). Off when absent.
    pub(crate) nsid: Option<String>,
    /// DNS cookies (RFC 7873, RFC 9018).
    pub(crate) cookies: Option<RawCookies>,
}

/// `[dns.rrl]`: response-rate limiting (docs/configuration.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRrl {
    /// Responses per second per client prefix, class and name; 0 is off.
    pub(crate) rate: Option<u32>,
    /// Every Nth limited response is sent truncated; 0 never.
    pub(crate) slip: Option<u32>,
    /// Client prefix length for IPv4 (default 24).
    pub(crate) ipv4_prefix: Option<u8>,
    /// Client prefix length for IPv6 (default 56).
    pub(crate) ipv6_prefix: Option<u8>,
    /// Prefixes never limited (default loopback).
    pub(crate) exempt: Option<Vec<String>>,
    /// Buckets in the table (default 393241).
    pub(crate) table_size: Option<usize>,
}

/// `[dns.rrl] rate` by default. On, because an authoritative server on
/// port 53 is used as an amplifier from its first hour; 20 a second
/// because a resolver caches what it is told and asks for the same name
/// (or, for NXDOMAIN and referrals, the same zone) a few times a second
/// at most, while a victim gets at most 20 full answers a second per
/// name; BIND's guidance for authoritative servers is 5 to 20.
pub(crate) const DEFAULT_RRL_RATE: u32 = 20;
/// `[dns.rrl] slip` by default: every other limited response is sent
/// truncated, so a real client behind a limited network retries over
/// TCP, while a victim's traffic is halved again (Knot's, NSD's and
/// BIND's recommendation).
pub(crate) const DEFAULT_RRL_SLIP: u32 = 2;

/// Validates `[dns.rrl]`; `None` when the rate is 0 (off).
fn rrl_settings(raw: Option<RawRrl>) -> anyhow::Result<Option<sixgate_server::rrl::RrlConfig>> {
    use sixgate_server::rrl;
    let raw = raw.unwrap_or_default();
    let rate = raw.rate.unwrap_or(DEFAULT_RRL_RATE);
    if rate == 0 {
        return Ok(None);
    }
    let exempt = match raw.exempt {
        None => rrl::loopback(),
        Some(list) => list
            .iter()
            .map(|p| rrl::Prefix::parse(p).map_err(|e| anyhow::anyhow!("dns.rrl.exempt: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let config = rrl::RrlConfig {
        rate,
        slip: raw.slip.unwrap_or(DEFAULT_RRL_SLIP),
        ipv4_prefix: raw.ipv4_prefix.unwrap_or(24),
        ipv6_prefix: raw.ipv6_prefix.unwrap_or(56),
        exempt,
        table_size: raw.table_size.unwrap_or(rrl::DEFAULT_TABLE_SIZE),
    };
    config.validate().map_err(|e| anyhow::anyhow!("dns.rrl.{e}"))?;
    Ok(Some(config))
}

/// `[dns.cookies]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCookies {
    /// Answer COOKIE options (default true).
    pub(crate) enabled: Option<bool>,
    /// The server secret, 32 hexadecimal digits; random at each start
    /// when absent.
    pub(crate) secret: Option<String>,
    /// The secret before a rollover, still accepted.
    pub(crate) previous_secret: Option<String>,
    /// BADCOOKIE to UDP queries with a client cookie but no valid server
    /// cookie (default false).
    pub(crate) require: Option<bool>,
}

/// Validated `[dns.cookies]`, when on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CookieSettings {
    /// `None`: a random secret is drawn at start.
    pub(crate) secret: Option<sixgate_dns::cookie::Secret>,
    pub(crate) previous: Option<sixgate_dns::cookie::Secret>,
    pub(crate) require: bool,
}

/// Validates `[dns] nsid` and `[dns.cookies]`.
fn identity_settings(
    nsid: Option<&str>,
    c: Option<&RawCookies>,
) -> anyhow::Result<(Option<sixgate_dns::ident::Nsid>, Option<CookieSettings>)> {
    let nsid = match nsid {
        Some(text) => Some(
            sixgate_dns::ident::Nsid::new(text.as_bytes()).map_err(|e| anyhow::anyhow!("dns.nsid: {e}"))?,
        ),
        None => None,
    };
    let secret = |key: &str, v: Option<&String>| -> anyhow::Result<Option<sixgate_dns::cookie::Secret>> {
        v.map(|t| {
            sixgate_dns::cookie::Secret::from_hex(t).map_err(|e| anyhow::anyhow!("dns.cookies.{key}: {e}"))
        })
        .transpose()
    };
    let current = secret("secret", c.and_then(|c| c.secret.as_ref()))?;
    let previous = secret("previous_secret", c.and_then(|c| c.previous_secret.as_ref()))?;
    if previous.is_some() && current.is_none() {
        bail!("dns.cookies.previous_secret needs dns.cookies.secret: a rollover moves from one to the other");
    }
    let cookies = c.and_then(|c| c.enabled).unwrap_or(true).then_some(CookieSettings {
        secret: current,
        previous,
        require: c.and_then(|c| c.require).unwrap_or(false),
    });
    Ok((nsid, cookies))
}

/// `[dns.limits]`, `[api.limits]`, `[proxy.limits]`: caps and a deadline
/// (in seconds) for each phase of a connection. Each listener takes the
/// keys that apply to it ([`LIMIT_KEYS`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_connections: Option<usize>,
    pub(crate) per_address: Option<usize>,
    pub(crate) per_host: Option<usize>,
    pub(crate) handshake_timeout: Option<u64>,
    pub(crate) head_timeout: Option<u64>,
    pub(crate) body_timeout: Option<u64>,
    pub(crate) idle_timeout: Option<u64>,
    pub(crate) write_timeout: Option<u64>,
    pub(crate) tunnel_timeout: Option<u64>,
    pub(crate) connect_timeout: Option<u64>,
    pub(crate) keepalive: Option<u64>,
    pub(crate) user_timeout: Option<u64>,
}

/// The keys of a limits section that each listener has.
pub(crate) const LIMIT_KEYS: [(&str, &[&str]); 3] = [
    ("dns", &["max_connections", "per_address", "head_timeout", "idle_timeout", "write_timeout"]),
    (
        "api",
        &[
            "max_connections",
            "per_address",
            "handshake_timeout",
            "head_timeout",
            "body_timeout",
            "idle_timeout",
            "write_timeout",
        ],
    ),
    (
        "proxy",
        &[
            "max_connections",
            "per_address",
            "per_host",
            "handshake_timeout",
            "head_timeout",
            "body_timeout",
            "idle_timeout",
            "write_timeout",
            "tunnel_timeout",
            "connect_timeout",
            "keepalive",
            "user_timeout",
        ],
    ),
];

/// Longest deadline a limits section accepts, in seconds (one day).
const MAX_DEADLINE: u64 = 86_400;

/// Validates one limits section over the listener's defaults.
pub(crate) fn limits(
    section: &str,
    raw: Option<RawLimits>,
    mut out: sixgate_listen::ListenerLimits,
) -> anyhow::Result<sixgate_listen::ListenerLimits> {
    let Some(raw) = raw else { return Ok(out) };
    let keys = LIMIT_KEYS.iter().find(|(s, _)| *s == section).map_or(&[][..], |(_, k)| *k);
    let given: [(&str, Option<u64>); 12] = [
        ("max_connections", raw.max_connections.map(|v| v as u64)),
        ("per_address", raw.per_address.map(|v| v as u64)),
        ("per_host", raw.per_host.map(|v| v as u64)),
        ("handshake_timeout", raw.handshake_timeout),
        ("head_timeout", raw.head_timeout),
        ("body_timeout", raw.body_timeout),
        ("idle_timeout", raw.idle_timeout),
        ("write_timeout", raw.write_timeout),
        ("tunnel_timeout", raw.tunnel_timeout),
        ("connect_timeout", raw.connect_timeout),
        ("keepalive", raw.keepalive),
        ("user_timeout", raw.user_timeout),
    ];
    for (key, value) in given {
        let Some(v) = value else { continue };
        if !keys.contains(&key) {
            bail!("{section}.limits.{key} does not apply to this listener (it has {})", keys.join(", "));
        }
        let counts = matches!(key, "max_connections" | "per_address" | "per_host");
        if counts && !(1..=1_000_000).contains(&v) {
            bail!("{section}.limits.{key} must be 1 to 1000000, not {v}");
        }
        if !counts && !(1..=MAX_DEADLINE).contains(&v) {
            bail!("{section}.limits.{key} must be 1 to {MAX_DEADLINE} seconds, not {v}");
        }
        let d = Duration::from_secs(v);
        match key {
            "max_connections" => out.caps.max_connections = v as usize,
            "per_address" => out.caps.per_address = v as usize,
            "per_host" => out.per_host = v as usize,
            "handshake_timeout" => out.handshake = d,
            "head_timeout" => out.head = d,
            "body_timeout" => out.body = d,
            "idle_timeout" => out.idle = d,
            "write_timeout" => out.write = d,
            "tunnel_timeout" => out.tunnel = d,
            "connect_timeout" => out.connect = d,
            "keepalive" => out.tcp.keepalive = Some(d),
            _ => out.tcp.user_timeout = Some(d),
        }
    }
    // One hostname keeps its share of a cap the operator changed.
    if raw.per_host.is_none() && raw.max_connections.is_some() {
        out.per_host = (out.caps.max_connections / 4).max(1);
    }
    for (key, v) in [("per_address", out.caps.per_address), ("per_host", out.per_host)] {
        if v > out.caps.max_connections {
            bail!(
                "{section}.limits.{key} ({v}) is above {section}.limits.max_connections ({})",
                out.caps.max_connections
            );
        }
    }
    Ok(out)
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
    /// `[dns] nsid`.
    pub(crate) nsid: Option<sixgate_dns::ident::Nsid>,
    /// `[dns.cookies]`; `None` when off.
    pub(crate) cookies: Option<CookieSettings>,
    /// `[dns.limits]`: DNS over TCP.
    pub(crate) dns_limits: sixgate_listen::ListenerLimits,
    /// `[dns.rrl]`; `None` when off.
    pub(crate) rrl: Option<sixgate_server::rrl::RrlConfig>,
    /// `[api.limits]`.
    pub(crate) api_limits: sixgate_listen::ListenerLimits,
    /// `[proxy.limits]`: both proxy listeners.
    pub(crate) proxy_limits: sixgate_listen::ListenerLimits,
    pub(crate) demo_zone: bool,
    pub(crate) log_level: String,
    pub(crate) nameservers: Vec<Box<[u8]>>,
    pub(crate) serial: sixgate_store::SerialScheme,
    pub(crate) api: Vec<SocketAddr>,
    pub(crate) api_tls: Option<(PathBuf, PathBuf)>,
    pub(crate) rate_limit: u32,
    pub(crate) rate_burst: u32,
    pub(crate) max_body: usize,
    pub(crate) hmac_md5: bool,
    pub(crate) verify_resolvers: Vec<SocketAddr>,
    /// `[dnssec] maintain`.
    pub(crate) dnssec_maintain: bool,
    /// `[dnssec] check_interval`.
    pub(crate) dnssec_check_interval: Duration,
    /// `[dnssec] expiry_alert`, seconds.
    pub(crate) dnssec_expiry_alert: u32,
    /// `[dnssec] parents`, lowercased apex → servers.
    pub(crate) dnssec_parents: Vec<(Box<[u8]>, Vec<SocketAddr>)>,
    pub(crate) verify_interval: Duration,
    pub(crate) aname_resolvers: Option<Vec<SocketAddr>>,
    pub(crate) aname_policy: (u64, u64),
    pub(crate) aname_max_per_zone: usize,
    pub(crate) aname_qps: u32,
    pub(crate) aname_trust_anchor: Option<sixgate_aname::chain::TrustAnchor>,
    pub(crate) aname_per_account: usize,
    pub(crate) proxy_http: Vec<SocketAddr>,
    pub(crate) proxy_tls: Vec<SocketAddr>,
    pub(crate) proxy_policy: sixgate_proxy::policy::BackendPolicy,
    /// `[proxy] allow_backend`: the operator account's backend prefixes
    /// (customer accounts have their own, in the store).
    pub(crate) proxy_allow_backend: Vec<sixgate_proxy::policy::Prefix>,
    pub(crate) proxy_forwarded: bool,
    /// `[proxy] threads`.
    pub(crate) proxy_threads: usize,
    /// `[proxy] drain_timeout`.
    pub(crate) proxy_drain: Duration,
    /// `[proxy] proxy_v2_unique_id`: connection IDs in PROXY v2 headers.
    pub(crate) proxy_v2_unique_id: bool,
    /// `[proxy] splice`.
    pub(crate) proxy_splice: bool,
    /// `[proxy] access_log`, `access_log_path`, `access_log_sample`.
    pub(crate) proxy_access_log: sixgate_proxy::accesslog::Settings,
    /// `[proxy] backend_reuse` and `backend_pool_*`.
    pub(crate) proxy_reuse: sixgate_proxy::plain::Reuse,
    /// `[tenancy] nameserver_domain` and `nameserver_count`.
    pub(crate) account_nameservers: Option<sixgate_store::AccountNameservers>,
    /// `[tenancy] allow_suffixes` and `serve_unverified`.
    pub(crate) tenancy: sixgate_store::TenancyPolicy,
    /// `[secondaries] catalog_zone`, wire form.
    pub(crate) catalog_zone: Box<[u8]>,
    /// `[secondaries] max_transfers` and `max_transfers_per_address`.
    pub(crate) transfer_caps: sixgate_server::transfer::TransferCaps,
    /// `[secondaries] journal_keep`.
    pub(crate) journal_keep: u32,
    /// `[secondaries]` NOTIFY and probe settings.
    pub(crate) notify: sixgate_control::notify::NotifySettings,
    /// `[secondaries] httpreq_wait` with its timeout.
    pub(crate) httpreq_wait: Option<Duration>,
    /// `[metrics] listen`.
    pub(crate) metrics: Vec<SocketAddr>,
    /// True when `metrics` is the default (a taken port then turns the
    /// listener off with a warning rather than stopping the start).
    pub(crate) metrics_is_default: bool,
}

/// Command-line flags of `serve` that override the file (the rest of
/// `serve`'s flags are in main.rs).
#[derive(Debug, Default, clap::Args)]
pub(crate) struct Flags {
    /// Proxy listen address for plain HTTP; repeatable.
    #[arg(long = "proxy-http", value_name = "ADDR:PORT")]
    pub(crate) proxy_http: Vec<String>,
    /// Proxy listen address for TLS (routed by SNI); repeatable.
    #[arg(long = "proxy-tls", value_name = "ADDR:PORT")]
    pub(crate) proxy_tls: Vec<String>,
    /// An IPv6 prefix backends may be in; repeatable. A prefix named
    /// here is allowed even inside the ranges never used otherwise.
    #[arg(long = "proxy-allow-backend", value_name = "PREFIX")]
    pub(crate) proxy_allow_backend: Vec<String>,
    /// Threads of the proxy's own, each accepting on its own
    /// SO_REUSEPORT sockets. Default: the number of CPUs.
    #[arg(long = "proxy-threads", value_name = "N")]
    pub(crate) proxy_threads: Option<usize>,
    /// Metrics listen address (`/metrics`, `/health`, `/ready`, no
    /// token); repeatable. Port 0 picks a free port.
    #[arg(long = "metrics", value_name = "ADDR:PORT")]
    pub(crate) metrics: Vec<String>,
    /// The proxy's access log: off, text or json (`[proxy]
    /// access_log`).
    #[arg(long = "proxy-access-log", value_name = "FORMAT")]
    pub(crate) proxy_access_log: Option<String>,
    /// The access log file (default DATA_DIR/proxy-access.log).
    #[arg(long = "proxy-access-log-path", value_name = "PATH")]
    pub(crate) proxy_access_log_path: Option<PathBuf>,
    /// Log one request (HTTP) or connection (TLS) in N.
    #[arg(long = "proxy-access-log-sample", value_name = "N")]
    pub(crate) proxy_access_log_sample: Option<u32>,
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
    api: &[String],
    flags: Flags,
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
    let (nsid, cookies) = identity_settings(raw.dns.nsid.as_deref(), raw.dns.cookies.as_ref())?;
    let mut dns_raw_limits = raw.dns.limits;
    // The older `[dns]` keys stay as aliases; a value given both ways
    // must agree.
    if let Some(idle) = raw.dns.tcp_idle_timeout {
        if !(1..=3600).contains(&idle) {
            bail!("dns.tcp_idle_timeout must be 1..=3600 seconds, not {idle}");
        }
        let l = dns_raw_limits.get_or_insert_with(RawLimits::default);
        if l.idle_timeout.is_some_and(|v| v != idle) {
            bail!("dns.tcp_idle_timeout and dns.limits.idle_timeout disagree: give one");
        }
        l.idle_timeout = Some(idle);
    }
    if let Some(max) = raw.dns.tcp_max_connections {
        if max == 0 {
            bail!("dns.tcp_max_connections must be at least 1");
        }
        let l = dns_raw_limits.get_or_insert_with(RawLimits::default);
        if l.max_connections.is_some_and(|v| v != max) {
            bail!("dns.tcp_max_connections and dns.limits.max_connections disagree: give one");
        }
        l.max_connections = Some(max);
        // A cap lowered below the per-address default lowers that too.
        if l.per_address.is_none() {
            l.per_address = Some(max.min(sixgate_listen::ListenerLimits::dns().caps.per_address));
        }
    }
    let dns_limits = limits("dns", dns_raw_limits, sixgate_listen::ListenerLimits::dns())?;
    let rrl = rrl_settings(raw.dns.rrl)?;
    let api_limits = limits("api", raw.api.limits, sixgate_listen::ListenerLimits::api())?;
    let proxy_limits = limits("proxy", raw.proxy.limits, sixgate_listen::ListenerLimits::proxy())?;
    let nameservers = raw
        .dns
        .nameservers
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let abs = if n.ends_with('.') { n.clone() } else { format!("{n}.") };
            sixgate_dns::name::from_text(&abs, None)
                .map_err(|e| anyhow::anyhow!("dns.nameservers: bad name {n:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let serial_name = raw.dns.serial.unwrap_or_else(|| "unixtime".into());
    let serial = sixgate_store::SerialScheme::from_name(&serial_name)
        .with_context(|| format!("dns.serial must be unixtime, date or increment, not {serial_name:?}"))?;
    let api_listen = if !api.is_empty() {
        api.to_vec()
    } else {
        raw.api.listen.unwrap_or_else(|| vec![DEFAULT_API.to_string()])
    };
    let api = api_listen.iter().map(|s| parse_addr(s)).collect::<anyhow::Result<Vec<_>>>()?;
    let api_tls = match (raw.api.tls_cert, raw.api.tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => bail!("api.tls_cert and api.tls_key go together: give both or neither"),
    };
    let max_body = raw.api.max_body.unwrap_or(16 << 20);
    if !(1024..=1 << 30).contains(&max_body) {
        bail!("api.max_body must be between 1024 and 1073741824 bytes, not {max_body}");
    }
    let verify_resolvers = raw
        .verify
        .resolvers
        .unwrap_or_default()
        .iter()
        .map(|s| parse_addr(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let interval = raw.verify.interval.unwrap_or(300);
    if !(1..=86_400 * 7).contains(&interval) {
        bail!("verify.interval must be 1 second to 7 days, not {interval}");
    }
    let aname_resolvers = raw
        .aname
        .resolvers
        .map(|l| l.iter().map(|s| parse_addr(s)).collect::<anyhow::Result<Vec<_>>>())
        .transpose()?;
    let floor = raw.aname.min_refresh.unwrap_or(60);
    let ceiling = raw.aname.max_refresh.unwrap_or(86_400);
    if floor == 0 || ceiling < floor {
        bail!("aname.min_refresh must be at least 1 and at most aname.max_refresh ({floor} > {ceiling})");
    }
    let aname_trust_anchor = match raw.aname.trust_anchor.as_deref() {
        None | Some("iana") => Some(sixgate_aname::chain::TrustAnchor::iana_root()),
        Some("none") => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("aname.trust_anchor: cannot read {path}: {e}"))?;
            Some(
                sixgate_aname::chain::TrustAnchor::from_text(&text)
                    .map_err(|e| anyhow::anyhow!("aname.trust_anchor {path}: {e}"))?,
            )
        }
    };
    let aname_per_account = raw.aname.per_account.unwrap_or(sixgate_aname::refresher::DEFAULT_PER_ACCOUNT);
    if !(1..=256).contains(&aname_per_account) {
        bail!("aname.per_account must be 1 to 256, not {aname_per_account}");
    }
    let pick = |flag: Vec<String>, file: Option<Vec<String>>| {
        if flag.is_empty() { file.unwrap_or_default() } else { flag }
    };
    let addrs = |l: Vec<String>| l.iter().map(|s| parse_addr(s)).collect::<anyhow::Result<Vec<_>>>();
    let proxy_http = addrs(pick(flags.proxy_http, raw.proxy.http))?;
    let proxy_tls = addrs(pick(flags.proxy_tls, raw.proxy.tls))?;
    let prefix = |p: &String| {
        sixgate_proxy::policy::Prefix::parse(p).map_err(|e| anyhow::anyhow!("proxy backend prefix: {e}"))
    };
    let proxy_allow_backend = pick(flags.proxy_allow_backend, raw.proxy.allow_backend)
        .iter()
        .map(prefix)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let nat64 = raw.proxy.nat64_prefix.as_ref().map(prefix).transpose()?;
    let proxy_threads = flags
        .proxy_threads
        .or(raw.proxy.threads)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(1..=256).contains(&proxy_threads) {
        bail!("proxy.threads must be between 1 and 256, not {proxy_threads}");
    }
    let drain = raw.proxy.drain_timeout.unwrap_or(DEFAULT_DRAIN);
    if drain > 86_400 {
        bail!("proxy.drain_timeout must be at most 1 day (in seconds), not {drain}");
    }
    let data = data.or(raw.data).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let proxy_reuse = reuse_settings(
        raw.proxy.backend_reuse.as_deref(),
        raw.proxy.backend_pool_max,
        raw.proxy.backend_pool_max_per_host,
        raw.proxy.backend_pool_idle_ms,
        raw.proxy.backend_pool_grace_ms,
    )?;
    let proxy_access_log = access_log_settings(
        flags.proxy_access_log.or(raw.proxy.access_log),
        flags.proxy_access_log_path.or(raw.proxy.access_log_path),
        flags.proxy_access_log_sample.or(raw.proxy.access_log_sample),
        &data,
    )?;
    // sixgate's own addresses are known only once every listener is bound
    // (serve.rs).
    let proxy_policy = sixgate_proxy::policy::BackendPolicy::new(nat64);
    let check = raw.dnssec.check_interval.unwrap_or(3600);
    if !(1..=86_400).contains(&check) {
        bail!("dnssec.check_interval must be 1 second to 1 day, not {check}");
    }
    let expiry_alert =
        raw.dnssec.expiry_alert.unwrap_or(u64::from(sixgate_control::watchdog::DEFAULT_THRESHOLD));
    if !(3600..=30 * 86_400).contains(&expiry_alert) {
        bail!("dnssec.expiry_alert must be 1 hour to 30 days (in seconds), not {expiry_alert}");
    }
    let mut dnssec_parents = Vec::new();
    for (zone, servers) in raw.dnssec.parents.unwrap_or_default() {
        let apex = crate::zonecmd::zone_name(&zone).map_err(|e| anyhow::anyhow!("dnssec.parents: {e}"))?;
        let servers = addrs(servers)?;
        if servers.is_empty() {
            bail!("dnssec.parents.\"{zone}\" lists no servers");
        }
        dnssec_parents.push((sixgate_dns::name::to_lowercase(&apex), servers));
    }
    let (account_nameservers, tenancy) = tenancy(raw.tenancy)?;
    let catalog_text = raw.secondaries.catalog_zone.as_deref().unwrap_or(sixgate_dns::catzone::DEFAULT_NAME);
    let catalog_zone = crate::zonecmd::zone_name(catalog_text)
        .map_err(|e| anyhow::anyhow!("secondaries.catalog_zone: {e}"))?;
    if sixgate_dns::name::label_count(&catalog_zone) == 0 {
        bail!("secondaries.catalog_zone cannot be the root");
    }
    let (transfer_caps, journal_keep) = transfer_settings(&raw.secondaries)?;
    let (notify, httpreq_wait) = notify_settings(&raw.secondaries)?;
    let (metrics_listen, metrics_is_default) = match (flags.metrics, raw.metrics.listen) {
        (flag, _) if !flag.is_empty() => (flag, false),
        (_, Some(file)) => (file, false),
        (_, None) => (vec![DEFAULT_METRICS.to_owned()], true),
    };
    let metrics = metrics_listen
        .iter()
        .map(|s| parse_addr(s).with_context(|| "metrics.listen"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Settings {
        metrics,
        metrics_is_default,
        catalog_zone,
        transfer_caps,
        journal_keep,
        notify,
        httpreq_wait,
        account_nameservers,
        tenancy,
        dnssec_maintain: raw.dnssec.maintain.unwrap_or(true),
        dnssec_check_interval: Duration::from_secs(check),
        dnssec_expiry_alert: expiry_alert as u32,
        dnssec_parents,
        proxy_http,
        proxy_tls,
        proxy_policy,
        proxy_allow_backend,
        proxy_forwarded: raw.proxy.forwarded.unwrap_or(false),
        proxy_threads,
        proxy_drain: Duration::from_secs(drain),
        proxy_v2_unique_id: raw.proxy.proxy_v2_unique_id.unwrap_or(false),
        proxy_splice: raw.proxy.splice.unwrap_or(true),
        proxy_access_log,
        proxy_reuse,
        aname_resolvers,
        aname_policy: (floor, ceiling),
        aname_max_per_zone: raw.aname.max_per_zone.unwrap_or(100),
        aname_qps: raw.aname.queries_per_second.unwrap_or(50).max(1),
        aname_trust_anchor,
        aname_per_account,
        nameservers,
        serial,
        api,
        api_tls,
        rate_limit: raw.api.rate_limit.unwrap_or(20).max(1),
        rate_burst: raw.api.rate_burst.unwrap_or(100).max(1),
        max_body,
        hmac_md5: raw.update.hmac_md5.unwrap_or(false),
        verify_resolvers,
        verify_interval: Duration::from_secs(interval),
        data,
        dns,
        dns_is_default,
        workers,
        udp_payload,
        nsid,
        cookies,
        dns_limits,
        rrl,
        api_limits,
        proxy_limits,
        demo_zone: raw.dns.demo_zone.unwrap_or(true),
        log_level: raw.log.level.unwrap_or_else(|| "info".into()),
    })
}

/// `[proxy] access_log*`, flags over the file: the format, the file
/// (DATA_DIR/proxy-access.log unless given) and the sampling (at least 1).
fn access_log_settings(
    format: Option<String>,
    path: Option<PathBuf>,
    sample: Option<u32>,
    data: &Path,
) -> anyhow::Result<sixgate_proxy::accesslog::Settings> {
    let format = format.as_deref().unwrap_or("off");
    let format = format.parse().map_err(|e| anyhow::anyhow!("proxy.access_log: {e}"))?;
    let path = path.unwrap_or_else(|| data.join("proxy-access.log"));
    let sample = sample.unwrap_or(1);
    if sample == 0 {
        bail!("proxy.access_log_sample must be at least 1 (one request in N is logged), not 0");
    }
    Ok(sixgate_proxy::accesslog::Settings { format, path, sample })
}

/// `[proxy] backend_reuse` and the pool's bounds.
fn reuse_settings(
    mode: Option<&str>,
    max: Option<usize>,
    max_per_host: Option<usize>,
    idle: Option<u64>,
    grace: Option<u64>,
) -> anyhow::Result<sixgate_proxy::plain::Reuse> {
    use sixgate_proxy::plain::{
        DEFAULT_GRACE, DEFAULT_IDLE, DEFAULT_MAX, DEFAULT_MAX_PER_HOST, Reuse, ReuseMode,
    };
    let mode = match mode.unwrap_or("idempotent") {
        "idempotent" => ReuseMode::Idempotent,
        "safe" => ReuseMode::Safe,
        "never" => ReuseMode::Never,
        other => bail!("proxy.backend_reuse must be \"idempotent\", \"safe\" or \"never\", not {other:?}"),
    };
    let max = max.unwrap_or(DEFAULT_MAX);
    if max > 100_000 {
        bail!("proxy.backend_pool_max must be at most 100000, not {max}");
    }
    let max_per_host = max_per_host.unwrap_or(DEFAULT_MAX_PER_HOST.min(max));
    if max_per_host > max {
        bail!(
            "proxy.backend_pool_max_per_host ({max_per_host}) cannot be more than proxy.backend_pool_max ({max})"
        );
    }
    let idle = idle.unwrap_or(DEFAULT_IDLE.as_millis() as u64);
    if !(100..=300_000).contains(&idle) {
        bail!("proxy.backend_pool_idle_ms must be 100 to 300000 (5 minutes), not {idle}");
    }
    let grace = grace.unwrap_or(DEFAULT_GRACE.as_millis() as u64);
    if grace > 10_000 {
        bail!("proxy.backend_pool_grace_ms must be at most 10000 (10 seconds), not {grace}");
    }
    Ok(Reuse {
        mode,
        max,
        max_per_host,
        idle: Duration::from_millis(idle),
        grace: Duration::from_millis(grace),
    })
}

/// Validates `[secondaries]`' NOTIFY, probe and wait settings.
fn notify_settings(
    raw: &RawSecondaries,
) -> anyhow::Result<(sixgate_control::notify::NotifySettings, Option<Duration>)> {
    let defaults = sixgate_control::notify::NotifySettings::default();
    let tries = raw.notify_tries.unwrap_or(defaults.retry.tries);
    if !(1..=10).contains(&tries) {
        bail!("secondaries.notify_tries must be 1 to 10, not {tries}");
    }
    let timeout = raw.notify_timeout_ms.unwrap_or(defaults.retry.timeout.as_millis() as u64);
    if !(10..=30_000).contains(&timeout) {
        bail!("secondaries.notify_timeout_ms must be 10 to 30000, not {timeout}");
    }
    let interval = raw.probe_interval.unwrap_or(defaults.probe_interval.as_secs());
    if interval == 0 {
        bail!("secondaries.probe_interval must be at least 1 second");
    }
    let rate = raw.probes_per_second.unwrap_or(defaults.probes_per_second);
    if !(1..=10_000).contains(&rate) {
        bail!("secondaries.probes_per_second must be 1 to 10000, not {rate}");
    }
    let wait = raw.httpreq_wait_timeout.unwrap_or(sixgate_api::secondaries::DEFAULT_WAIT.as_secs());
    if wait == 0 || wait > sixgate_api::secondaries::MAX_WAIT.as_secs() {
        bail!(
            "secondaries.httpreq_wait_timeout must be 1 to {} seconds, not {wait}",
            sixgate_api::secondaries::MAX_WAIT.as_secs()
        );
    }
    let settings = sixgate_control::notify::NotifySettings {
        retry: sixgate_control::notify::Retry { tries, timeout: Duration::from_millis(timeout) },
        probe_interval: Duration::from_secs(interval),
        probes_per_second: rate,
    };
    Ok((settings, raw.httpreq_wait.unwrap_or(false).then(|| Duration::from_secs(wait))))
}

/// Validates `[tenancy]`.
fn tenancy(
    raw: RawTenancy,
) -> anyhow::Result<(Option<sixgate_store::AccountNameservers>, sixgate_store::TenancyPolicy)> {
    use sixgate_dns::name;
    let count = raw.nameserver_count.unwrap_or(2);
    if !(1..=sixgate_store::AccountNameservers::MAX).contains(&count) {
        bail!(
            "tenancy.nameserver_count must be 1 to {}, not {count}",
            sixgate_store::AccountNameservers::MAX
        );
    }
    let scheme = match raw.nameserver_domain {
        Some(d) => {
            let domain = crate::zonecmd::zone_name(&d)
                .map_err(|e| anyhow::anyhow!("tenancy.nameserver_domain: {e}"))?;
            if name::label_count(&domain) < 2 {
                bail!("tenancy.nameserver_domain must be a domain of the operator's, not {d:?}");
            }
            let scheme = sixgate_store::AccountNameservers { domain: name::to_lowercase(&domain), count };
            // The longest names must still be names: label and domain fit.
            scheme
                .names("abcdefgh")
                .map_err(|e| anyhow::anyhow!("tenancy.nameserver_domain {d:?} is too long: {e}"))?;
            Some(scheme)
        }
        None if raw.nameserver_count.is_some() => {
            bail!("tenancy.nameserver_count needs tenancy.nameserver_domain")
        }
        None => None,
    };
    let mut allow = Vec::new();
    for s in raw.allow_suffixes.unwrap_or_default() {
        let n = crate::zonecmd::zone_name(&s).map_err(|e| anyhow::anyhow!("tenancy.allow_suffixes: {e}"))?;
        if name::label_count(&n) == 0 {
            bail!("tenancy.allow_suffixes: the root is never a customer's zone");
        }
        allow.push(name::to_lowercase(&n));
    }
    let policy = sixgate_store::TenancyPolicy {
        allow_suffixes: allow,
        serve_unverified: raw.serve_unverified.unwrap_or(false),
    };
    Ok((scheme, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transfer_caps_and_journal_reach_are_read_and_checked() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        let s = ok("").unwrap();
        assert_eq!((s.transfer_caps.total, s.transfer_caps.per_address, s.journal_keep), (16, 4, 1000));
        let s = ok("[secondaries]\nmax_transfers = 2\njournal_keep = 50\n").unwrap();
        assert_eq!((s.transfer_caps.total, s.transfer_caps.per_address, s.journal_keep), (2, 2, 50));
        for bad in [
            "[secondaries]\nmax_transfers = 0\n",
            "[secondaries]\nmax_transfers = 5000\n",
            "[secondaries]\nmax_transfers = 4\nmax_transfers_per_address = 5\n",
            "[secondaries]\nmax_transfers_per_address = 0\n",
            "[secondaries]\njournal_keep = 9\n",
            "[secondaries]\njournal_keep = 1000001\n",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_proxy_access_log_is_read_and_checked_flags_over_the_file() {
        use sixgate_proxy::accesslog::Format;
        let ok = |t: &str, flags: Flags| settings(toml::from_str(t).unwrap(), None, &[], None, &[], flags);
        let s = ok("data = \"/srv/sixgate\"\n", Flags::default()).unwrap();
        let log = s.proxy_access_log;
        assert_eq!(
            (log.format, log.path, log.sample),
            (Format::Off, "/srv/sixgate/proxy-access.log".into(), 1)
        );
        let file =
            "[proxy]\naccess_log = \"json\"\naccess_log_path = \"/var/log/a.log\"\naccess_log_sample = 10\n";
        let log = ok(file, Flags::default()).unwrap().proxy_access_log;
        assert_eq!((log.format, log.path, log.sample), (Format::Json, "/var/log/a.log".into(), 10));
        let flags = Flags {
            proxy_access_log: Some("text".into()),
            proxy_access_log_path: Some("/tmp/b.log".into()),
            proxy_access_log_sample: Some(2),
            ..Flags::default()
        };
        let log = ok(file, flags).unwrap().proxy_access_log;
        assert_eq!((log.format, log.path, log.sample), (Format::Text, "/tmp/b.log".into(), 2));
        for bad in
            ["[proxy]\naccess_log = \"yes\"\n", "[proxy]\naccess_log = \"json\"\naccess_log_sample = 0\n"]
        {
            assert!(ok(bad, Flags::default()).is_err(), "{bad}");
        }
        let zero = Flags { proxy_access_log_sample: Some(0), ..Flags::default() };
        assert!(ok("", zero).is_err(), "0 is refused from the flag too");
    }

    #[test]
    fn tenancy_is_checked() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        let s =
            ok("[tenancy]\nnameserver_domain = \"ns.sixgate.example\"\nallow_suffixes = [\"github.io\"]\n")
                .unwrap();
        let scheme = s.account_nameservers.unwrap();
        assert_eq!(
            (sixgate_dns::name::to_text(&scheme.domain), scheme.count),
            ("ns.sixgate.example.".into(), 2)
        );
        assert_eq!(s.tenancy.allow_suffixes.len(), 1);
        assert!(!s.tenancy.serve_unverified, "unverified zones are not served by default");
        for bad in [
            "[tenancy]\nnameserver_domain = \"example\"\n",
            "[tenancy]\nnameserver_domain = \"ns.example\"\nnameserver_count = 0\n",
            "[tenancy]\nnameserver_count = 3\n",
            "[tenancy]\nallow_suffixes = [\".\"]\n",
            "[tenancy]\nserve_unverifed = true\n",
        ] {
            assert!(toml::from_str::<RawConfig>(bad).is_err() || ok(bad).is_err(), "{bad}");
        }
        assert!(ok("[tenancy]\nserve_unverified = true\n").unwrap().tenancy.serve_unverified);
    }

    #[test]
    fn the_notify_and_wait_settings_are_read_and_checked() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        let s = ok("").unwrap();
        assert_eq!(s.notify, sixgate_control::notify::NotifySettings::default());
        assert_eq!(s.httpreq_wait, None, "lego httpreq does not wait by default");
        let s = ok("[secondaries]\nnotify_tries = 3\nnotify_timeout_ms = 250\nprobe_interval = 30\n\
                    probes_per_second = 5\nhttpreq_wait = true\nhttpreq_wait_timeout = 20\n")
        .unwrap();
        assert_eq!((s.notify.retry.tries, s.notify.retry.timeout), (3, Duration::from_millis(250)));
        assert_eq!((s.notify.probe_interval, s.notify.probes_per_second), (Duration::from_secs(30), 5));
        assert_eq!(s.httpreq_wait, Some(Duration::from_secs(20)));
        assert_eq!(
            ok("[secondaries]\nhttpreq_wait = true\n").unwrap().httpreq_wait,
            Some(Duration::from_secs(10))
        );
        for bad in [
            "notify_tries = 0",
            "notify_tries = 11",
            "notify_timeout_ms = 5",
            "probe_interval = 0",
            "probes_per_second = 0",
            "httpreq_wait_timeout = 0",
            "httpreq_wait_timeout = 61",
        ] {
            let e = ok(&format!("[secondaries]\n{bad}\n")).unwrap_err().to_string();
            assert!(e.contains(bad.split(' ').next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn the_aname_trust_anchor_and_per_account_limit_are_read_and_checked() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        let iana = sixgate_aname::chain::TrustAnchor::iana_root();
        let s = ok("").unwrap();
        assert_eq!((s.aname_trust_anchor.as_ref(), s.aname_per_account), (Some(&iana), 4));
        assert_eq!(ok("[aname]\ntrust_anchor = \"iana\"\n").unwrap().aname_trust_anchor, Some(iana));
        assert_eq!(ok("[aname]\ntrust_anchor = \"none\"\n").unwrap().aname_trust_anchor, None);
        let dir = std::env::temp_dir().join(format!("sixgate-config-anchor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("root.ds");
        std::fs::write(
            &file,
            ". IN DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000\n",
        )
        .unwrap();
        let text = format!("[aname]\ntrust_anchor = \"{}\"\nper_account = 2\n", file.display());
        let s = ok(&text).unwrap();
        assert!(s.aname_trust_anchor.is_some());
        assert_eq!(s.aname_per_account, 2);
        std::fs::write(&file, "example. IN DS 1 13 2 00\n").unwrap();
        let e = ok(&text).unwrap_err().to_string();
        assert!(e.contains("aname.trust_anchor") && e.contains("root"), "{e}");
        let missing = format!("[aname]\ntrust_anchor = \"{}\"\n", dir.join("nope").display());
        assert!(ok(&missing).unwrap_err().to_string().contains("cannot read"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(ok("[aname]\nper_account = 0\n").is_err());
    }

    #[test]
    fn the_default_caps_fit_the_descriptor_limit_of_the_systemd_unit() {
        // docs/deployment.md runs sixgate with LimitNOFILE=65536. Both proxy
        // listeners (HTTP, TLS) have the [proxy.limits] cap each, and a
        // proxied connection holds two descriptors, and while backends race
        // (RFC 8305) the process holds at most MAX_RACING more; what is left
        // is for the store, the UDP sockets, and the moment between accept
        // and refusal.
        use sixgate_listen::ListenerLimits;
        let held = ListenerLimits::dns().caps.max_connections
            + ListenerLimits::api().caps.max_connections
            + 2 * 2 * ListenerLimits::proxy().caps.max_connections
            + sixgate_proxy::backends::MAX_RACING;
        assert!(held + 2048 <= 65536, "the default caps hold {held} descriptors");
    }

    #[test]
    fn nsid_and_cookies_are_read_and_checked() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        let s = ok("").unwrap();
        assert_eq!(s.nsid, None);
        assert_eq!(s.cookies, Some(CookieSettings { secret: None, previous: None, require: false }));
        let s = ok(r#"[dns]
nsid = "ns1.fra"
[dns.cookies]
secret = "e5e973e5a6b2a43f48e7dc849e37bfcf"
previous_secret = "dd3bdf9344b678b185a6f5cb60fca715"
require = true
"#)
        .unwrap();
        assert_eq!(s.nsid.unwrap().as_bytes(), b"ns1.fra");
        let c = s.cookies.unwrap();
        assert_eq!(
            c.secret,
            Some(sixgate_dns::cookie::Secret::from_hex("e5e973e5a6b2a43f48e7dc849e37bfcf").unwrap())
        );
        assert!(c.previous.is_some() && c.require);
        assert_eq!(ok("[dns.cookies]\nenabled = false\n").unwrap().cookies, None);
        for (bad, says) in [
            ("[dns]\nnsid = \"\"\n", "dns.nsid"),
            (&format!("[dns]\nnsid = \"{}\"\n", "x".repeat(129)), "dns.nsid"),
            ("[dns.cookies]\nsecret = \"abc\"\n", "dns.cookies.secret"),
            ("[dns.cookies]\nprevious_secret = \"e5e973e5a6b2a43f48e7dc849e37bfcf\"\n", "previous_secret"),
        ] {
            let e = ok(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(toml::from_str::<RawConfig>("[dns.cookies]\nsecrets = \"x\"\n").is_err());
    }

    #[test]
    fn the_proxy_splices_unless_told_not_to() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        assert!(ok("").unwrap().proxy_splice);
        assert!(ok("[proxy]\nsplice = true\n").unwrap().proxy_splice);
        assert!(!ok("[proxy]\nsplice = false\n").unwrap().proxy_splice);
        assert!(toml::from_str::<RawConfig>("[proxy]\nsplice = \"yes\"\n").is_err());
    }

    #[test]
    fn the_proxy_v2_unique_id_is_off_unless_asked_for() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        assert!(!ok("").unwrap().proxy_v2_unique_id);
        assert!(!ok("[proxy]\nproxy_v2_unique_id = false\n").unwrap().proxy_v2_unique_id);
        assert!(ok("[proxy]\nproxy_v2_unique_id = true\n").unwrap().proxy_v2_unique_id);
        assert!(toml::from_str::<RawConfig>("[proxy]\nproxy_v2_unique_id = 1\n").is_err());
    }

    #[test]
    fn backend_reuse_is_idempotent_by_default_and_its_bounds_are_checked() {
        use sixgate_proxy::plain::{Reuse, ReuseMode};
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        assert_eq!(ok("").unwrap().proxy_reuse, Reuse::default());
        assert_eq!(Reuse::default().mode, ReuseMode::Idempotent);
        assert_eq!(ok("[proxy]\nbackend_reuse = \"safe\"\n").unwrap().proxy_reuse.mode, ReuseMode::Safe);
        let s = ok("[proxy]\nbackend_reuse = \"never\"\nbackend_pool_max = 10\nbackend_pool_idle_ms = 500\n")
            .unwrap();
        assert_eq!(
            s.proxy_reuse,
            Reuse {
                mode: ReuseMode::Never,
                max: 10,
                max_per_host: 10,
                idle: Duration::from_millis(500),
                grace: Duration::from_millis(100)
            }
        );
        for bad in [
            "backend_reuse = \"always\"",
            "backend_pool_max = 4\nbackend_pool_max_per_host = 5",
            "backend_pool_idle_ms = 0",
            "backend_pool_idle_ms = 300001",
            "backend_pool_max = 100001",
        ] {
            assert!(ok(&format!("[proxy]\n{bad}\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_listener_reads_its_limits_over_safe_defaults() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        let s = ok("").unwrap();
        assert_eq!(s.dns_limits, sixgate_listen::ListenerLimits::dns());
        assert_eq!(s.api_limits, sixgate_listen::ListenerLimits::api());
        assert_eq!(s.proxy_limits, sixgate_listen::ListenerLimits::proxy());
        // No default phase deadline above 60 s but the idle tunnel's.
        for l in [s.dns_limits, s.api_limits, s.proxy_limits] {
            for d in [l.handshake, l.head, l.body, l.idle, l.write, l.connect] {
                assert!(d <= Duration::from_secs(60), "{l:?}");
            }
        }
        let s = ok("[proxy.limits]
per_address = 10
tunnel_timeout = 7
user_timeout = 9
")
        .unwrap();
        assert_eq!(s.proxy_limits.caps.per_address, 10);
        assert_eq!(s.proxy_limits.tunnel, Duration::from_secs(7));
        assert_eq!(s.proxy_limits.tcp.user_timeout, Some(Duration::from_secs(9)));
        // One hostname gets a quarter of the proxy's slots unless told.
        assert_eq!(s.proxy_limits.per_host, sixgate_listen::ListenerLimits::proxy().per_host);
        let s = ok("[proxy.limits]
max_connections = 100
per_address = 10
")
        .unwrap();
        assert_eq!(s.proxy_limits.per_host, 25);
        let s = ok("[proxy.limits]
max_connections = 100
per_address = 10
per_host = 100
")
        .unwrap();
        assert_eq!(s.proxy_limits.per_host, 100);
        let s = ok("[api.limits]
head_timeout = 3
")
        .unwrap();
        assert_eq!(s.api_limits.head, Duration::from_secs(3));
        // The older [dns] keys are aliases.
        let s = ok("[dns]
tcp_idle_timeout = 4
tcp_max_connections = 2
")
        .unwrap();
        assert_eq!((s.dns_limits.idle, s.dns_limits.caps.max_connections), (Duration::from_secs(4), 2));
        assert_eq!(s.dns_limits.caps.per_address, 2);
        for (bad, says) in [
            (
                "[dns.limits]
tunnel_timeout = 5
",
                "dns.limits.tunnel_timeout does not apply",
            ),
            (
                "[api.limits]
write_timeout = 0
",
                "api.limits.write_timeout must be 1 to",
            ),
            (
                "[proxy.limits]
max_connections = 10
per_address = 11
",
                "per_address (11) is above",
            ),
            (
                "[proxy.limits]
max_connections = 10
per_address = 10
per_host = 11
",
                "per_host (11) is above",
            ),
            (
                "[api.limits]
per_host = 5
",
                "api.limits.per_host does not apply",
            ),
            (
                "[dns]
tcp_idle_timeout = 4
[dns.limits]
idle_timeout = 5
",
                "disagree",
            ),
        ] {
            let e = ok(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(
            toml::from_str::<RawConfig>(
                "[api.limits]
head_timout = 3
"
            )
            .is_err()
        );
    }

    #[test]
    fn rate_limiting_is_on_by_default_with_loopback_exempt_and_is_checked() {
        let ok = |t: &str| settings(toml::from_str(t).unwrap(), None, &[], None, &[], Flags::default());
        let r = ok("").unwrap().rrl.unwrap();
        assert_eq!(
            (r.rate, r.slip, r.ipv4_prefix, r.ipv6_prefix),
            (DEFAULT_RRL_RATE, DEFAULT_RRL_SLIP, 24, 56)
        );
        assert_eq!(r.table_size, sixgate_server::rrl::DEFAULT_TABLE_SIZE);
        assert_eq!(r.exempt, sixgate_server::rrl::loopback());
        assert!(ok("[dns.rrl]\nrate = 0\n").unwrap().rrl.is_none(), "rate 0 is off");
        let r = ok("[dns.rrl]\nrate = 5\nslip = 0\nipv4_prefix = 32\nipv6_prefix = 64\n\
                    exempt = [\"192.0.2.0/24\", \"2001:db8::/32\"]\ntable_size = 1000\n")
        .unwrap()
        .rrl
        .unwrap();
        assert_eq!((r.rate, r.slip, r.ipv4_prefix, r.ipv6_prefix, r.table_size), (5, 0, 32, 64, 1000));
        assert_eq!(r.exempt.len(), 2);
        assert!(ok("[dns.rrl]\nexempt = []\n").unwrap().rrl.unwrap().exempt.is_empty());
        for (bad, says) in [
            ("slip = 101", "dns.rrl.slip must be 0 to 100"),
            ("ipv4_prefix = 33", "dns.rrl.ipv4_prefix"),
            ("ipv6_prefix = 0", "dns.rrl.ipv6_prefix"),
            ("table_size = 0", "dns.rrl.table_size"),
            ("rate = 2000000", "dns.rrl.rate"),
            ("exempt = [\"10.0.0.1/8\"]", "dns.rrl.exempt"),
        ] {
            let e = ok(&format!("[dns.rrl]\n{bad}\n")).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(toml::from_str::<RawConfig>("[dns.rrl]\nrates = 5\n").is_err());
    }

    #[test]
    fn the_metrics_listener_is_on_loopback_by_default_and_can_be_moved_or_turned_off() {
        let ok = |t: &str, flag: &[&str]| {
            let flags = Flags { metrics: flag.iter().map(|s| (*s).to_owned()).collect(), ..Flags::default() };
            settings(toml::from_str(t).unwrap(), None, &[], None, &[], flags)
        };
        let s = ok("", &[]).unwrap();
        assert_eq!((s.metrics, s.metrics_is_default), (vec![DEFAULT_METRICS.parse().unwrap()], true));
        let default: SocketAddr = DEFAULT_METRICS.parse().unwrap();
        assert!(default.ip().is_loopback());
        let taken: Vec<u16> = DEFAULT_DNS
            .iter()
            .chain([&DEFAULT_API])
            .map(|a| a.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        assert!(!taken.contains(&default.port()), "{taken:?}");
        let s = ok("[metrics]\nlisten = []\n", &[]).unwrap();
        assert!(s.metrics.is_empty() && !s.metrics_is_default);
        let s = ok("[metrics]\nlisten = [\"[::1]:9100\"]\n", &["127.0.0.1:0"]).unwrap();
        assert_eq!(s.metrics, vec!["127.0.0.1:0".parse().unwrap()], "the flag overrides the file");
        let e = ok("[metrics]\nlisten = [\"nowhere\"]\n", &[]).unwrap_err();
        assert!(format!("{e:#}").contains("metrics.listen"), "{e:#}");
        assert!(toml::from_str::<RawConfig>("[metrics]\nlisen = []\n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = toml::from_str::<RawConfig>("[dns]\nlisten = []\nworkerz = 2\n").unwrap_err();
        assert!(e.to_string().contains("workerz"), "{e}");
    }

    #[test]
    fn flags_override_the_file_and_values_are_checked() {
        let raw: RawConfig = toml::from_str("[dns]\nlisten = [\"127.0.0.1:53\"]\nworkers = 3\n").unwrap();
        let s = settings(raw, None, &["127.0.0.1:0".into()], None, &[], Flags::default()).unwrap();
        assert_eq!(s.dns, vec!["127.0.0.1:0".parse().unwrap()]);
        assert_eq!(s.workers, 3);
        let raw: RawConfig = toml::from_str("[dns]\nudp_payload = 100\n").unwrap();
        assert!(settings(raw, None, &[], None, &[], Flags::default()).is_err());
        assert!(
            settings(RawConfig::default(), None, &["nonsense".into()], None, &[], Flags::default()).is_err()
        );
        let raw: RawConfig = toml::from_str("[dns]\nserial = \"weekly\"\n").unwrap();
        assert!(
            settings(raw, None, &[], None, &[], Flags::default())
                .unwrap_err()
                .to_string()
                .contains("dns.serial")
        );
        let raw: RawConfig = toml::from_str("[api]\ntls_cert = \"c.pem\"\n").unwrap();
        assert!(settings(raw, None, &[], None, &[], Flags::default()).is_err());
    }
}
