//! `sixgate proxy ...`: the proxy's addresses and hostnames, on the data
//! directory; a running server publishes the changes at once.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use sixgate_control::publish::poke;
use sixgate_dns::name;
use sixgate_store::{ProxyProtocol, Store};

use crate::zonecmd::zone_name;

fn open(dir: &Path) -> anyhow::Result<Store> {
    Store::open(dir).with_context(|| format!("opening store in {}", dir.display()))
}

pub(crate) fn addresses_set(dir: &Path, addresses: &[String]) -> anyhow::Result<()> {
    let mut addrs = Vec::new();
    for a in addresses {
        let ip: Ipv4Addr = a.parse().map_err(|_| anyhow!("{a:?} is not an IPv4 address"))?;
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
            bail!("{ip} cannot be a public proxy address");
        }
        if ip.is_loopback() || ip.is_private() {
            eprintln!(
                "note: {ip} is not a public address; only clients that can reach it will use the proxy"
            );
        }
        addrs.push(ip);
    }
    open(dir)?.by(sixgate_store::Actor::cli()).set_proxy_addresses(&addrs)?;
    poke(dir);
    Ok(())
}

pub(crate) fn addresses_list(dir: &Path) -> anyhow::Result<()> {
    for a in open(dir)?.proxy_addresses()? {
        println!("{a}");
    }
    Ok(())
}

pub(crate) fn enable(dir: &Path, host: &str, mode: &str, http: u16, tls: u16) -> anyhow::Result<()> {
    let mode = ProxyProtocol::from_name(mode)
        .ok_or_else(|| anyhow!("--proxy-protocol must be off, v1 or v2, not {mode:?}"))?;
    if http == 0 || tls == 0 {
        bail!("backend ports must be between 1 and 65535");
    }
    let host = zone_name(host)?;
    let mut store = open(dir)?;
    if store.proxy_addresses()?.is_empty() {
        eprintln!(
            "note: no proxy addresses are set yet (sixgate proxy addresses set ADDR...); nothing is published"
        );
    }
    store.by(sixgate_store::Actor::cli()).proxy_enable(&host, mode, http, tls)?;
    poke(dir);
    Ok(())
}

pub(crate) fn disable(dir: &Path, host: &str) -> anyhow::Result<()> {
    let host = zone_name(host)?;
    open(dir)?.by(sixgate_store::Actor::cli()).proxy_disable(&host)?;
    poke(dir);
    Ok(())
}

pub(crate) fn list(dir: &Path) -> anyhow::Result<()> {
    for h in open(dir)?.proxy_hosts()? {
        println!(
            "{}\t{}\t{}\t{}",
            name::to_text(&h.name),
            h.proxy_protocol.as_str(),
            h.http_port,
            h.tls_port
        );
    }
    Ok(())
}

/// What one HTTP probe of a backend got back: the status code, or why
/// there was none.
fn probe(addr: std::net::SocketAddr, host: &str, header: &[u8]) -> Result<u16, String> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(5);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let req = format!(
        "HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sixgate-proxy-check\r\nConnection: close\r\n\r\n"
    );
    s.write_all(header).and_then(|()| s.write_all(req.as_bytes())).map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).map_err(|e| format!("no answer: {e}"))?;
    let text = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[])).into_owned();
    let status = text.strip_prefix("HTTP/1.").and_then(|r| r.get(2..5)).and_then(|c| c.parse().ok());
    status.ok_or_else(|| {
        if n == 0 {
            "closed without an answer".into()
        } else {
            format!("not HTTP: {:?}", text.lines().next().unwrap_or(""))
        }
    })
}

/// Connects to each backend of HOST with its PROXY mode and, to tell a
/// mismatch from a broken backend, also with the other modes; prints one
/// line per backend and fails if any backend does not answer sensibly in
/// the configured mode.
pub(crate) fn check(dir: &Path, host: &str) -> anyhow::Result<()> {
    let key = zone_name(host)?;
    let mut store = open(dir)?;
    let h = store
        .proxy_hosts()?
        .into_iter()
        .find(|h| h.name == sixgate_dns::name::to_lowercase(&key))
        .ok_or_else(|| anyhow!("{} is not enabled for the proxy", name::to_text(&key)))?;
    let (_, data) =
        store.zone_snapshot(&h.zone)?.ok_or_else(|| anyhow!("zone {} is gone", name::to_text(&h.zone)))?;
    let zone = sixgate_dns::Zone::build(&data.apex, data.records, 0)?;
    let mut catalog = sixgate_dns::Catalog::new();
    catalog.insert(std::sync::Arc::new(zone));
    let mut routes = sixgate_proxy::route::Routes::default();
    let mode = h.proxy_protocol.version();
    routes.hosts.insert(
        h.name.clone(),
        sixgate_proxy::route::HostConfig {
            proxy_protocol: mode,
            http_port: h.http_port,
            tls_port: h.tls_port,
            verified: true,
            zone: std::sync::Arc::from(name::to_lowercase(&data.apex)),
            // Every address is probed here, whatever the serving policy
            // says: this is the operator looking at the backend.
            prefixes: std::sync::Arc::new([sixgate_proxy::policy::Prefix {
                addr: std::net::Ipv6Addr::UNSPECIFIED,
                len: 0,
            }]),
        },
    );
    let open_policy = sixgate_proxy::policy::BackendPolicy::new(None);
    let text = name::to_text(&h.name);
    let host_text = text.trim_end_matches('.');
    let route = routes.route(&catalog, host_text, &open_policy);
    let backends = match route {
        Ok(r) => r.backends,
        Err(sixgate_proxy::route::RouteError::Refused(_, _)) | Err(_) => {
            // Special-range addresses (e.g. ::1 in a lab) are refused even by
            // ::/0; read them straight from the zone instead.
            let node = catalog.find(&h.name).and_then(|z| {
                z.node(&h.name).map(|n| {
                    n.rrset(sixgate_dns::rtype::code::AAAA)
                        .map(|s| {
                            s.rdatas()
                                .filter_map(|r| <[u8; 16]>::try_from(r).ok())
                                .map(std::net::Ipv6Addr::from)
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                })
            });
            node.unwrap_or_default()
        }
    };
    if backends.is_empty() {
        bail!("{host_text} has no AAAA records to proxy to");
    }
    // The proxy's view: an IPv4 client and the proxy's own IPv4 address.
    let client: std::net::SocketAddr = "192.0.2.1:40000".parse()?;
    let local: std::net::SocketAddr = "192.0.2.2:80".parse()?;
    let tlvs = sixgate_proxy::proxyproto::Tlvs { authority: Some(host_text), unique_id: None };
    let header = |m: u8| sixgate_proxy::proxyproto::header(m, client, local, &tlvs);
    let sensible = |code: u16| (100..400).contains(&code) || code == 401 || code == 403 || code == 404;
    let mut failed = false;
    for b in backends {
        let addr = std::net::SocketAddr::from((b, h.http_port));
        let verdict = match probe(addr, host_text, &header(mode)) {
            Ok(code) if sensible(code) => format!("ok\tHTTP {code} with PROXY {}", h.proxy_protocol.as_str()),
            configured => {
                failed = true;
                // Would another mode have worked? That tells a mismatch.
                let other = [0u8, 1, 2]
                    .into_iter()
                    .filter(|m| *m != mode)
                    .find(|m| matches!(probe(addr, host_text, &header(*m)), Ok(code) if sensible(code)));
                let got = match configured {
                    Ok(code) => format!("HTTP {code}"),
                    Err(e) => e,
                };
                match other {
                    Some(m) => format!(
                        "mismatch\twith PROXY {} the backend gives {got}, but it answers with PROXY {}: set --proxy-protocol {} or fix the backend",
                        h.proxy_protocol.as_str(),
                        ProxyProtocol::from_version(m).as_str(),
                        ProxyProtocol::from_version(m).as_str()
                    ),
                    None => format!("failed\t{got}"),
                }
            }
        };
        println!("[{b}]:{}\t{verdict}", h.http_port);
    }
    if failed {
        bail!("{host_text}: a backend does not answer sensibly with PROXY {}", h.proxy_protocol.as_str());
    }
    Ok(())
}
