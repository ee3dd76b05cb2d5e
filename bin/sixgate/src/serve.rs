//! `sixgate serve`: open the store, publish the catalog, bind listeners,
//! answer until SIGINT/SIGTERM, then shut down cleanly.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow};
use sixgate_control::publish::Follower;
use sixgate_dns::{Limits, name, zonefile};
use sixgate_server::udp::UdpStats;
use sixgate_server::{bind, tcp, udp};
use sixgate_store::{Store, files};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Settings;
use crate::{demo, proxyroutes};

fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIXGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .map_err(|e| anyhow!("bad log level {level:?}: {e}"))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    Ok(())
}

fn ensure_demo_zone(store: &mut Store) -> anyhow::Result<()> {
    if !store.zones()?.is_empty() {
        return Ok(());
    }
    let apex = name::from_text(demo::DEMO_ZONE, None).map_err(|e| anyhow!("demo zone name: {e}"))?;
    let records = zonefile::parse(demo::DEMO_ZONE_TEXT, &apex).map_err(|e| anyhow!("demo zone: {e}"))?;
    store.by(sixgate_store::Actor::Task("demo")).replace_zone(&apex, records)?;
    tracing::info!(zone = demo::DEMO_ZONE, "created the demo zone");
    Ok(())
}

/// On a store without any token, makes an admin token so the API can be
/// used at all, and returns the file that holds it. The secret goes only
/// into that 0600 file in the data directory, never to stdout or the log:
/// under systemd both end up in the journal, which more users may read
/// than the service's own.
fn first_admin_token(store: &mut Store) -> anyhow::Result<Option<PathBuf>> {
    if !store.tokens(None)?.is_empty() {
        return Ok(None);
    }
    let (token, secret) = store.create_token(sixgate_store::OPERATOR_ACCOUNT, sixgate_store::Scope::Admin)?;
    let path = store.dir().join(files::ADMIN_TOKEN_FILE);
    if let Err(e) = files::write_private(&path, format!("{secret}\n").as_bytes()) {
        // The store keeps only a hash: a token whose one copy was not
        // written is of no use, and without it the next start tries again.
        let _ = store.revoke_token(token.id, None);
        return Err(e).context("writing the first admin token");
    }
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    tracing::info!(path = %path.display(), "created the first admin token; the store keeps only its hash");
    Ok(Some(path))
}

/// The metric set of every TCP listener, one per kind, shared by all its
/// addresses.
pub(crate) struct ListenerSet {
    pub(crate) dns_tcp: Arc<sixgate_listen::ListenerMetrics>,
    pub(crate) api: Arc<sixgate_listen::ListenerMetrics>,
    pub(crate) proxy_http: Arc<sixgate_listen::ListenerMetrics>,
    pub(crate) proxy_tls: Arc<sixgate_listen::ListenerMetrics>,
    pub(crate) metrics: Arc<sixgate_listen::ListenerMetrics>,
}

impl ListenerSet {
    fn new() -> Arc<ListenerSet> {
        let m = |name| Arc::new(sixgate_listen::ListenerMetrics::new(name));
        Arc::new(ListenerSet {
            dns_tcp: m("dns_tcp"),
            api: m("api"),
            proxy_http: m("proxy_http"),
            proxy_tls: m("proxy_tls"),
            metrics: m("metrics"),
        })
    }

    fn render(&self) -> String {
        sixgate_listen::metrics::render(&[
            &self.dns_tcp,
            &self.api,
            &self.proxy_http,
            &self.proxy_tls,
            &self.metrics,
        ])
    }
}

/// Everything `/metrics` reads, shared with the tasks that count.
struct MetricSources {
    listeners: Arc<ListenerSet>,
    udp: Arc<UdpStats>,
    dns_tcp: Arc<sixgate_server::counters::Counters>,
    updates: Arc<sixgate_server::queue::UpdateStats>,
    transfers: Arc<sixgate_server::transfer::TransferStats>,
    held: Arc<std::sync::atomic::AtomicUsize>,
    expiry: sixgate_control::watchdog::ExpiryReport,
    proxy: Arc<std::sync::OnceLock<Arc<sixgate_proxy::tls::Shared>>>,
    secondaries: Arc<sixgate_control::notify::Status>,
    rrl: Option<Arc<sixgate_server::rrl::Rrl>>,
    publish: Arc<sixgate_control::metrics::PublishMetrics>,
    store_gauges: Arc<sixgate_control::metrics::StoreGauges>,
    aname: Arc<sixgate_aname::refresher::Stats>,
}

/// Counters in Prometheus text format.
fn metrics_text(m: &MetricSources) -> String {
    use std::fmt::Write as _;
    let (udp, held, proxy) = (m.udp.totals(), &m.held, m.proxy.get());
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, labels: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (l, v) in labels {
            let _ =
                if l.is_empty() { writeln!(out, "{name} {v}") } else { writeln!(out, "{name}{{{l}}} {v}") };
        }
    };
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter("sixgate_dns_udp_received_total", "UDP queries received.", &[("", udp.received)]);
    counter("sixgate_dns_udp_answered_total", "UDP responses sent.", &[("", udp.answered)]);
    counter("sixgate_dns_udp_dropped_total", "UDP messages not answered.", &[("", udp.dropped)]);
    if let Some(p) = proxy {
        let st = &p.stats;
        counter("sixgate_proxy_connections_total", "Proxy connections accepted.", &[("", get(&st.accepted))]);
        counter(
            "sixgate_proxy_forwarded_total",
            "Proxy connections forwarded to a backend.",
            &[("", get(&st.forwarded))],
        );
        counter(
            "sixgate_proxy_errors_total",
            "Proxy connections refused or failed, by side.",
            &[
                ("side=\"client\"", get(&st.client_errors)),
                ("side=\"route\"", get(&st.unroutable)),
                ("side=\"backend\"", get(&st.backend_errors)),
            ],
        );
        let pool = &st.pool;
        counter(
            "sixgate_proxy_backend_connections_total",
            "Plain HTTP requests' backend connections: opened anew, or reused from a pool.",
            &[("how=\"opened\"", get(&pool.opened)), ("how=\"reused\"", get(&pool.reused))],
        );
        counter(
            "sixgate_proxy_backend_pool_closed_total",
            "Idle pooled backend connections closed: expired, found dead, or no room.",
            &[
                ("why=\"expired\"", get(&pool.expired)),
                ("why=\"dead\"", get(&pool.dead)),
                ("why=\"full\"", get(&pool.full)),
            ],
        );
        counter(
            "sixgate_proxy_backend_reuse_failed_total",
            "Requests over a pooled backend connection that closed before answering: sent again, or the client's connection closed.",
            &[("then=\"retried\"", get(&pool.retried)), ("then=\"closed\"", get(&pool.aborted))],
        );
        counter(
            "sixgate_proxy_relayed_octets_total",
            "Octets the proxy relayed, counted as each connection or tunnel ends: by splice(2) or through its buffers.",
            &[("path=\"splice\"", get(&st.spliced)), ("path=\"copy\"", get(&st.copied))],
        );
        let log = &p.access_log;
        counter(
            "sixgate_proxy_access_log_lines_total",
            "Proxy access log lines written.",
            &[("", log.lines())],
        );
        counter(
            "sixgate_proxy_access_log_dropped_total",
            "Proxy access log lines lost: the writer's queue was full, or the write failed.",
            &[("", log.dropped())],
        );
    }
    let _ = writeln!(
        out,
        "# HELP sixgate_zones_held Zones not served as stored (their last good version stays served).\n# TYPE sixgate_zones_held gauge\nsixgate_zones_held {}",
        held.load(Ordering::Relaxed)
    );
    sixgate_server::counters::render(&udp, &m.dns_tcp.totals(), &mut out);
    out.push_str(&sixgate_control::watchdog::metrics_text(&m.expiry.load()));
    out.push_str(&m.udp.cookies.render());
    out.push_str(&m.listeners.render());
    out.push_str(&m.updates.render());
    out.push_str(&m.transfers.render());
    out.push_str(&m.secondaries.metrics_text());
    if let Some(rrl) = &m.rrl {
        out.push_str(&rrl.metrics_text());
    }
    let mut text = sixgate_metrics::Text::new();
    sixgate_control::metrics::render(&mut text, &m.publish, &m.store_gauges);
    m.aname.render(&mut text);
    out.push_str(&text.finish());
    out
}

/// The cookie secrets to answer with: the configured ones, or a random
/// secret drawn now.
fn cookie_secrets(c: Option<crate::config::CookieSettings>) -> Option<sixgate_dns::cookie::Secrets> {
    let c = c?;
    let current = c.secret.unwrap_or_else(|| {
        tracing::info!(
            "dns.cookies.secret is not set: a random secret is used, so server cookies do not survive a \
             restart, and the sites of an anycast address must share one secret"
        );
        sixgate_dns::cookie::Secret::new(rand::random())
    });
    Some(sixgate_dns::cookie::Secrets { current, previous: c.previous, require: c.require })
}

/// Runs the server until a termination signal.
pub(crate) fn run(s: Settings) -> anyhow::Result<()> {
    init_logging(&s.log_level)?;
    let mut store = crate::dnssecmd::open(&s.data)?;
    // Held while the server runs, so that no restore replaces the store
    // under it.
    let _lock = files::lock_shared(&s.data)?;
    if std::env::var_os(crate::dnssecmd::CLOCK_ENV).is_some() {
        tracing::warn!(now = store.now(), "running on a simulated clock ({})", crate::dnssecmd::CLOCK_ENV);
    }
    store.set_serial_scheme(s.serial)?;
    // Stored, so the CLI shows accounts the names this server verifies.
    store.set_account_nameserver_scheme(s.account_nameservers.as_ref())?;
    store.save_serve_unverified(s.tenancy.serve_unverified)?;
    // Stored, so that `zone list` names the catalog zone as served.
    store.save_catalog_name(&s.catalog_zone)?;
    // Stored, so that CLI writes on this directory prune the journal alike.
    store.save_journal_keep(s.journal_keep)?;
    // The publisher builds zones through this store: customer zones not
    // yet verified are left out unless serve_unverified.
    store.set_tenancy(s.tenancy.clone());
    if s.tenancy.serve_unverified {
        tracing::warn!(
            "tenancy.serve_unverified: customer zones are served before their delegation is verified \
             (lame delegations can be taken over; labs only)"
        );
    }
    if s.demo_zone {
        ensure_demo_zone(&mut store)?;
    }
    let first_admin = first_admin_token(&mut store)?;
    let seed: u64 = rand::random();
    // The simulated clock, if any, for the tasks that open their own store.
    let clock_offset = store.now()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
    // Signed zones are verified whole on worker threads: the listeners
    // serve the others meanwhile, and `ready` waits for the verdicts.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    // IXFR reads the journal through its own read-only connection.
    let transfer_reader = store.reader()?;
    let (mut follower, catalog) = Follower::start(store, seed, workers)?;
    let transfer_stats = Arc::new(sixgate_server::transfer::TransferStats::default());
    let transfers = Arc::new(sixgate_server::transfer::Transfers::new(
        Arc::new(sixgate_control::transfer::StoreTransfers::new(follower.secondaries(), transfer_reader)),
        s.transfer_caps,
        transfer_stats.clone(),
    ));
    let published = follower.published();
    let routes_generation = follower.routes();
    let held_zones = follower.held_count();
    let publish_metrics = follower.metrics();
    let verifying = follower.verifying_count();
    // Set once every listener is bound, as "ready" is printed: `GET
    // /ready` answers 503 before.
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // NOTIFY and the secondaries' status: the task wakes on every swap of
    // the served catalog and every reload of the secondaries.
    let notify_status = sixgate_control::notify::Status::new();
    let notify_inputs = sixgate_control::notify::Inputs {
        catalog: catalog.clone(),
        changed: follower.changed(),
        secondaries: follower.secondaries(),
    };

    let mut bound = Vec::new();
    for addr in &s.dns {
        match bind::bind(*addr, s.workers) {
            Ok(b) => bound.push(b),
            Err(e) if s.dns_is_default && addr.is_ipv6() => {
                tracing::warn!(%addr, error = %e, "IPv6 loopback unavailable; skipping");
            }
            Err(e) => return Err(anyhow!("cannot listen on {addr}: {e}")),
        }
    }

    let limits = Limits { udp_payload: s.udp_payload, nsid: s.nsid, cookies: cookie_secrets(s.cookies) };
    // One limiter for every UDP worker of every address: a client's
    // budget is the server's, not each socket's.
    let rrl = s.rrl.clone().map(sixgate_server::rrl::Rrl::new).transpose().context("[dns.rrl]")?;
    if let Some(r) = &rrl {
        let c = r.config();
        tracing::info!(
            rate = c.rate,
            slip = c.slip,
            ipv4_prefix = c.ipv4_prefix,
            ipv6_prefix = c.ipv6_prefix,
            exempt = ?c.exempt.iter().map(ToString::to_string).collect::<Vec<_>>(),
            buckets = r.buckets(),
            "response-rate limiting UDP answers"
        );
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(UdpStats::default());
    let tcp_counters = Arc::new(sixgate_server::counters::Counters::default());
    let listeners = ListenerSet::new();
    tracing::debug!(dns = ?s.dns_limits, api = ?s.api_limits, proxy = ?s.proxy_limits, "listener limits");
    let (sd_tx, sd_rx) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(s.workers.clamp(1, 4))
        .thread_name("sixgate-rt")
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    // RFC 2136 UPDATE: listeners queue the signed ones for one handler.
    let update_stats = Arc::new(sixgate_server::queue::UpdateStats::default());
    let (update_tx, update_rx) =
        sixgate_server::queue::UpdateQueue::new(sixgate_server::queue::QUEUE, update_stats.clone());
    let handler = Arc::new(sixgate_control::update::UpdateHandler::new(
        s.data.clone(),
        s.hmac_md5,
        Some(published.clone()),
        update_stats.clone(),
    )?);
    let update_task = rt.spawn(sixgate_control::update::run(handler, update_rx));

    let mut threads = Vec::new();
    let mut addrs = Vec::new();
    // One gate for every DNS TCP address: the caps are the listener's,
    // not each address's.
    let dns_gate = sixgate_listen::Gate::new(s.dns_limits.caps, listeners.dns_tcp.clone());
    let mut tcp_tasks = Vec::new();
    for b in bound {
        addrs.push(b.addr);
        threads.extend(udp::spawn(
            b.udp,
            catalog.clone(),
            limits,
            shutdown.clone(),
            stats.clone(),
            Some(update_tx.clone()),
            Some(transfers.clone()),
            rrl.clone(),
        )?);
        let _guard = rt.enter();
        tcp_tasks.push(rt.spawn(tcp::serve(
            b.tcp,
            catalog.clone(),
            limits,
            s.dns_limits,
            dns_gate.clone(),
            Some(update_tx.clone()),
            Some(transfers.clone()),
            tcp_counters.clone(),
            sd_rx.clone(),
        )));
    }

    // The expiry watchdog's last look, read by the metrics endpoint.
    let expiry = sixgate_control::watchdog::ExpiryReport::default();
    // Set once the proxy runs; read by the metrics endpoint.
    let proxy_shared: Arc<std::sync::OnceLock<Arc<sixgate_proxy::tls::Shared>>> = Arc::default();
    let store_gauges = Arc::new(sixgate_control::metrics::StoreGauges::default());
    let aname_stats = Arc::new(sixgate_aname::refresher::Stats::default());
    // One metrics text for the API's /metrics (admin token) and the
    // metrics listener's (none).
    let sources = Arc::new(MetricSources {
        listeners: listeners.clone(),
        udp: stats.clone(),
        dns_tcp: tcp_counters.clone(),
        updates: update_stats.clone(),
        transfers: transfer_stats.clone(),
        held: held_zones.clone(),
        expiry: expiry.clone(),
        proxy: proxy_shared.clone(),
        secondaries: notify_status.clone(),
        publish: publish_metrics,
        store_gauges: store_gauges.clone(),
        aname: aname_stats.clone(),
        rrl: rrl.clone(),
    });
    let render = {
        let sources = sources.clone();
        move || metrics_text(&sources)
    };
    // Why the server is not ready, for both /ready.
    let not_ready = {
        let (started, verifying) = (started.clone(), verifying.clone());
        move || {
            if !started.load(Ordering::Relaxed) {
                return Some("starting: the listeners are being bound".into());
            }
            match verifying.load(Ordering::Relaxed) {
                0 => None,
                n => Some(format!("{n} signed zones are being verified before they are served")),
            }
        }
    };
    let mut api_addrs = Vec::new();
    let mut api_bound = Vec::new();
    let mut api_tasks = Vec::new();
    if !s.api.is_empty() {
        let tls = match &s.api_tls {
            Some((cert, key)) => {
                Some(sixgate_api::listen::tls_config(cert, key).map_err(|e| anyhow!("api TLS: {e}"))?)
            }
            None => None,
        };
        let settings = sixgate_api::ApiSettings {
            nameservers: s.nameservers.clone(),
            rate_limit: s.rate_limit,
            rate_burst: s.rate_burst,
            max_body: s.max_body,
        };
        let mut api_store = Store::open(&s.data)?;
        // Zone claims are decided in this store's write transactions.
        api_store.set_tenancy(s.tenancy.clone());
        let dir = s.data.clone();
        let state = sixgate_api::AppState::new(api_store, settings, Some(published.clone()), move || {
            sixgate_control::publish::poke(&dir)
        })?
        .with_metrics(render.clone())
        .with_readiness(not_ready.clone())
        .with_secondaries(notify_status.clone(), s.httpreq_wait);
        let app = sixgate_api::app(state);
        // One gate for every API address: the caps are the API's, not each
        // address's.
        let gate = sixgate_listen::Gate::new(s.api_limits.caps, listeners.api.clone());
        for addr in &s.api {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind(addr))
                .map_err(|e| anyhow!("cannot listen on {addr} for the API: {e}"))?;
            let local = listener.local_addr()?;
            api_bound.push(local);
            api_addrs.push(format!("{}://{local}", if tls.is_some() { "https" } else { "http" }));
            api_tasks.push(rt.spawn(sixgate_api::listen::serve(
                listener,
                app.clone(),
                tls.clone(),
                gate.clone(),
                s.api_limits,
                sd_rx.clone(),
            )));
        }
    }

    // The metrics listener: its own gate with the API's limits, so that a
    // scrape works when the API is full, busy or off.
    let mut metrics_bound = Vec::new();
    if !s.metrics.is_empty() {
        let probe =
            sixgate_api::probe::Probe::new(&Store::open(&s.data)?, render.clone(), not_ready.clone())?;
        let app = sixgate_api::probe::app(probe);
        let gate = sixgate_listen::Gate::new(s.api_limits.caps, listeners.metrics.clone());
        for addr in &s.metrics {
            let listener = match rt.block_on(tokio::net::TcpListener::bind(addr)) {
                Ok(l) => l,
                Err(e) if s.metrics_is_default => {
                    tracing::warn!(%addr, error = %e, "the default metrics address is taken; no metrics listener there (set [metrics] listen)");
                    continue;
                }
                Err(e) => return Err(anyhow!("cannot listen on {addr} for the metrics: {e}")),
            };
            metrics_bound.push(listener.local_addr()?);
            api_tasks.push(rt.spawn(sixgate_api::listen::serve(
                listener,
                app.clone(),
                None,
                gate.clone(),
                s.api_limits,
                sd_rx.clone(),
            )));
        }
    }
    api_tasks.push(rt.spawn(sixgate_control::metrics::run(
        s.data.clone(),
        sixgate_control::metrics::GAUGE_INTERVAL,
        store_gauges.clone(),
        sd_rx.clone(),
    )));

    let checkable = !s.nameservers.is_empty() || s.account_nameservers.is_some();
    let resolvers = match (&s.verify_resolvers, checkable) {
        (r, _) if !r.is_empty() => r.clone(),
        (_, true) => sixgate_control::verify::system_resolvers(),
        (_, false) => Vec::new(),
    };
    let verify = sixgate_control::verify::VerifySettings {
        resolvers,
        nameservers: s.nameservers.clone(),
        account_nameservers: s.account_nameservers.is_some(),
        interval: s.verify_interval,
    };
    let dnssec = sixgate_control::dnssec::DnssecSettings {
        parents: s.dnssec_parents.clone(),
        resolvers: if s.verify_resolvers.is_empty() {
            sixgate_control::verify::system_resolvers()
        } else {
            s.verify_resolvers.clone()
        },
        check_interval: s.dnssec_check_interval,
    };
    api_tasks.push(rt.spawn(sixgate_control::verify::run(s.data.clone(), verify, sd_rx.clone())));
    api_tasks.push(rt.spawn(sixgate_control::notify::run(
        notify_inputs,
        notify_status.clone(),
        s.notify.clone(),
        sd_rx.clone(),
    )));
    if s.dnssec_maintain {
        api_tasks.push(rt.spawn(sixgate_control::dnssec::run(s.data.clone(), dnssec, sd_rx.clone())));
    } else {
        tracing::info!("DNSSEC maintenance off: signed zones change only through `sixgate dnssec maintain`");
    }
    let aname = sixgate_aname::refresher::Settings {
        policy: sixgate_aname::schedule::Policy { floor: s.aname_policy.0, ceiling: s.aname_policy.1 },
        upstream: s.aname_resolvers.clone().unwrap_or_else(sixgate_control::verify::system_resolvers),
        queries_per_second: s.aname_qps,
        max_per_zone: s.aname_max_per_zone,
        trust_anchor: s.aname_trust_anchor.clone(),
        per_account: s.aname_per_account,
        stats: aname_stats.clone(),
    };
    api_tasks.push(rt.spawn(sixgate_aname::refresher::run(
        s.data.clone(),
        catalog.clone(),
        published.clone(),
        aname,
        sd_rx.clone(),
    )));

    // The IPv4-to-IPv6 proxy.
    let mut proxy_addrs = Vec::new();
    let mut proxy_failed: Vec<(&str, std::net::SocketAddr, String)> = Vec::new();
    let mut proxy_threads = None;
    // SIGHUP: the proxy's routes are built again at once.
    let reload = Arc::new(tokio::sync::Notify::new());
    if !s.proxy_tls.is_empty() || !s.proxy_http.is_empty() {
        if s.proxy_allow_backend.is_empty() {
            tracing::info!(
                "no backend prefixes for the operator account's hostnames ([proxy] allow_backend); \
                 customer accounts use their own"
            );
        }
        let shared = Arc::new(sixgate_proxy::tls::Shared {
            catalog: catalog.clone(),
            // Built before the listeners open, so the first connection is
            // routed like every later one.
            routes: arc_swap::ArcSwap::from_pointee(proxyroutes::build(&s.data, &s.proxy_allow_backend)?),
            policy: s.proxy_policy.clone(),
            stats: Default::default(),
            forwarded: s.proxy_forwarded,
            backends: Default::default(),
            unique_ids: s.proxy_v2_unique_id.then(sixgate_proxy::proxyproto::UniqueIds::random),
            access_log: sixgate_proxy::accesslog::AccessLog::start(&s.proxy_access_log).map_err(|e| {
                anyhow!("cannot open the proxy access log {}: {e}", s.proxy_access_log.path.display())
            })?,
            reuse: s.proxy_reuse,
            splice: s.proxy_splice,
        });
        let _ = proxy_shared.set(shared.clone());
        if shared.access_log.is_on() {
            // logrotate moves the file, then sends SIGHUP: the lines after
            // it go to a new file at the path.
            let mut hup = {
                let _guard = rt.enter();
                signal(SignalKind::hangup())?
            };
            let (log, mut sd) = (shared.access_log.clone(), sd_rx.clone());
            api_tasks.push(rt.spawn(async move {
                loop {
                    tokio::select! {
                        s = hup.recv() => match s {
                            Some(()) => log.reopen(),
                            None => return,
                        },
                        _ = sd.wait_for(|&s| s) => return,
                    }
                }
            }));
        }
        // One gate per side, shared by all its addresses: a flood on one
        // port cannot refuse or evict the other's connections, and each
        // has its own metrics. [proxy.limits] applies to each.
        let front = |metrics: &Arc<sixgate_listen::ListenerMetrics>| {
            let gate = sixgate_listen::Gate::new(s.proxy_limits.caps, metrics.clone());
            sixgate_proxy::Front::with_drain(gate, s.proxy_limits, s.proxy_drain)
        };
        let (tls_front, http_front) = (front(&listeners.proxy_tls), front(&listeners.proxy_http));
        // One socket per proxy thread on each address. A proxy address that
        // cannot be bound is logged and left out: DNS and the API start
        // all the same, and a `failed` line on stdout says why.
        let mut groups = Vec::new();
        let sides = s
            .proxy_tls
            .iter()
            .map(|a| (sixgate_proxy::threads::Side::Tls, "proxy-tls", a))
            .chain(s.proxy_http.iter().map(|a| (sixgate_proxy::threads::Side::Http, "proxy-http", a)));
        for (side, kind, addr) in sides {
            match sixgate_listen::accept::bind_group(*addr, &s.proxy_limits.tcp, s.proxy_threads) {
                Ok(sockets) => {
                    if let Some(a) = sockets.first().and_then(|l| l.local_addr().ok()) {
                        proxy_addrs.push((kind, a));
                    }
                    groups.push(sixgate_proxy::threads::Group { side, sockets });
                }
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot listen for the {kind} proxy; serving without it");
                    proxy_failed.push((kind, *addr, e.to_string()));
                }
            }
        }
        // Every listener is bound (ports chosen): they are sixgate's own,
        // never a backend, before the first connection is routed.
        let own = proxyroutes::OwnListeners {
            sockets: addrs
                .iter()
                .chain(&api_bound)
                .chain(&metrics_bound)
                .chain(proxy_addrs.iter().map(|(_, a)| a))
                .copied()
                .collect(),
        };
        own.refresh(&shared.policy);
        api_tasks.push(rt.spawn(proxyroutes::follow(
            s.data.clone(),
            s.proxy_allow_backend.clone(),
            shared.clone(),
            own,
            routes_generation.clone(),
            reload.clone(),
            sd_rx.clone(),
        )));
        if !groups.is_empty() {
            proxy_threads = Some(
                sixgate_proxy::threads::Threads::start(
                    s.proxy_threads,
                    groups,
                    shared.clone(),
                    tls_front,
                    http_front,
                )
                .context("starting the proxy threads")?,
            );
        }
    }

    // Every signed zone's whole verification ends (served or held)
    // before `ready`; the listeners serve the other zones meanwhile.
    if follower.verifying() > 0 {
        tracing::info!(zones = follower.verifying(), "verifying the signatures of signed zones");
        follower.settle();
    }
    let watchdog = sixgate_control::watchdog::WatchdogSettings {
        threshold: s.dnssec_expiry_alert,
        interval: std::time::Duration::from_secs(60),
        clock_offset,
    };
    api_tasks.push(rt.spawn(sixgate_control::watchdog::run(
        s.data.clone(),
        catalog.clone(),
        watchdog,
        expiry.clone(),
        sd_rx.clone(),
    )));
    let dir = s.data.clone();
    let fsd = shutdown.clone();
    threads
        .push(std::thread::Builder::new().name("publisher".into()).spawn(move || follower.run(&dir, fsd))?);

    // Catch SIGTERM and SIGINT before announcing readiness: a supervisor
    // may stop us the moment it reads "ready".
    let (mut term, mut int, mut hup) = {
        let _guard = rt.enter();
        (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?, signal(SignalKind::hangup())?)
    };
    {
        let mut out = std::io::stdout().lock();
        for a in &addrs {
            writeln!(out, "listening dns-udp {a}")?;
            writeln!(out, "listening dns-tcp {a}")?;
        }
        for a in &api_addrs {
            writeln!(out, "listening api {a}")?;
        }
        for a in &metrics_bound {
            writeln!(out, "listening metrics http://{a}")?;
        }
        for (kind, a) in &proxy_addrs {
            writeln!(out, "listening {kind} {a}")?;
        }
        for (kind, a, e) in &proxy_failed {
            writeln!(out, "failed {kind} {a}: {e}")?;
        }
        if let Some(path) = &first_admin {
            writeln!(out, "admin token written to {}", path.display())?;
        }
        writeln!(out, "ready")?;
        out.flush()?;
        started.store(true, Ordering::Relaxed);
    }
    tracing::info!(addresses = ?addrs, workers = s.workers, data = %s.data.display(), "serving DNS");

    rt.block_on(async {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    // Listeners and connections stay; what is read from the
                    // store is read again.
                    tracing::info!("SIGHUP: reloading the proxy routes");
                    reload.notify_one();
                }
            }
        }
    });
    tracing::info!("shutting down");
    // The proxy first: its listeners close at once and its connections
    // drain, while DNS still answers (a new instance on the same ports,
    // SO_REUSEPORT, takes the new connections meanwhile).
    if let Some(p) = proxy_threads.take() {
        p.stop();
        p.join();
        tracing::info!("proxy drained");
    }
    shutdown.store(true, Ordering::Relaxed);
    let _ = sd_tx.send(true);
    rt.block_on(async {
        for t in tcp_tasks {
            let _ = t.await;
        }
        for t in api_tasks {
            let _ = t.await;
        }
    });
    for t in threads {
        let _ = t.join();
    }
    // The last access log lines, written before the process ends.
    if let Some(p) = proxy_shared.get() {
        p.access_log.finish();
    }
    // Every sender is gone with the listeners: the handler drains and ends.
    drop(update_tx);
    let _ = rt.block_on(update_task);
    // Every task has finished above; do not wait on idle runtime threads.
    rt.shutdown_background();
    let udp = stats.totals();
    tracing::info!(received = udp.received, answered = udp.answered, dropped = udp.dropped, "stopped");
    Ok(())
}
