//! `sixgate proxy ...`: the proxy's addresses and hostnames, on the data
//! directory; a running server publishes the changes at once.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use sixgate_dns::name;
use sixgate_server::publish::poke;
use sixgate_store::{ProxyProtocol, Store};

use crate::zonecmd::zone_name;

fn open(dir: &Path) -> anyhow::Result<Store> {
    Store::open(dir).with_context(|| format!("opening store in {}", dir.display()))
}

pub(crate) fn addresses_set(dir: &Path, addresses: &[String]) -> anyhow::Result<()> {
    let mut addrs = Vec::new();
    for a in addresses {
        let ip: Ipv4Addr = a.parse().map_err(|_| anyhow!("{a:?} is not an IPv4 address"))?;
        if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
            bail!("{ip} cannot be a public proxy address");
        }
        addrs.push(ip);
    }
    open(dir)?.set_proxy_addresses(&addrs)?;
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
    store.proxy_enable(&host, mode, http, tls)?;
    poke(dir);
    Ok(())
}

pub(crate) fn disable(dir: &Path, host: &str) -> anyhow::Result<()> {
    let host = zone_name(host)?;
    open(dir)?.proxy_disable(&host)?;
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
