//! Hostnames enabled for the IPv4-to-IPv6 proxy, and the proxy's public
//! IPv4 addresses.
//!
//! Enabling a hostname publishes the proxy's addresses as its A records.
//! They are derived records (kind 2), written through a diff transaction
//! like any change (serial, journal), so they are served, transferred and
//! signed like other records, and they go when the hostname is disabled.
//! While a hostname is proxied, an A record or an ANAME of its own is
//! refused: the proxy's addresses are its IPv4 face.

use std::net::Ipv4Addr;

use rusqlite::{Connection, OptionalExtension, params};
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record};

use crate::write::{Kind, rows};
use crate::{Commit, Store, StoreError, Writer, display, now, record_of, zone_row};

/// TTL of the published A records.
const TTL: u32 = 300;

/// PROXY protocol towards a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyProtocol {
    /// None (the default).
    #[default]
    Off,
    /// Version 1 (text), which every receiver understands.
    V1,
    /// Version 2 (binary).
    V2,
}

impl ProxyProtocol {
    /// The name used in the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }

    /// The protocol version, 0 for off.
    pub fn version(self) -> u8 {
        match self {
            ProxyProtocol::Off => 0,
            ProxyProtocol::V1 => 1,
            ProxyProtocol::V2 => 2,
        }
    }

    /// From a protocol version; anything but 1 and 2 is off.
    pub fn from_version(version: u8) -> ProxyProtocol {
        match version {
            1 => ProxyProtocol::V1,
            2 => ProxyProtocol::V2,
            _ => ProxyProtocol::Off,
        }
    }

    /// Parses `off`, `v1` or `v2`.
    pub fn from_name(text: &str) -> Option<ProxyProtocol> {
        [ProxyProtocol::Off, ProxyProtocol::V1, ProxyProtocol::V2].into_iter().find(|p| p.as_str() == text)
    }
}

/// A hostname enabled for proxying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHost {
    /// The hostname, wire form, lowercased.
    pub name: Box<[u8]>,
    /// Its zone's apex, wire form, lowercased.
    pub zone: Box<[u8]>,
    /// PROXY protocol towards the backend.
    pub proxy_protocol: ProxyProtocol,
    /// Backend port for plain HTTP.
    pub http_port: u16,
    /// Backend port for TLS.
    pub tls_port: u16,
    /// The account that owns its zone, whose backend prefixes it may use
    /// (`None` if the zone is gone).
    pub account_id: Option<i64>,
}

fn a_records(owner: &[u8], addrs: &[Ipv4Addr]) -> Vec<Record> {
    addrs
        .iter()
        .map(|a| Record { owner: owner.into(), rtype: code::A, ttl: TTL, rdata: a.octets().into() })
        .collect()
}

fn published(conn: &Connection, zone_id: i64, owner_key: &[u8]) -> Result<Vec<Record>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT owner, rtype, ttl, rdata FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND derived = ?3",
    )?;
    let rows = st.query_map(params![zone_id, owner_key, Kind::Proxy as u8], record_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Puts exactly `addrs` as the published A records at `owner`; returns the
/// changes made.
fn publish(
    conn: &Connection,
    zone_id: i64,
    owner: &[u8],
    addrs: &[Ipv4Addr],
) -> Result<Vec<Change>, StoreError> {
    let key = name::to_lowercase(owner);
    let old = published(conn, zone_id, &key)?;
    let new = a_records(owner, addrs);
    let mut changes = Vec::new();
    for o in &old {
        if !new.iter().any(|n| n.rdata == o.rdata) {
            rows::delete(conn, zone_id, o, Kind::Proxy)?;
            changes.push(Change::Remove(o.clone()));
        }
    }
    for n in new {
        if !old.iter().any(|o| o.rdata == n.rdata) {
            rows::insert(conn, zone_id, &n, Kind::Proxy)?;
            changes.push(Change::Add(n));
        }
    }
    Ok(changes)
}

/// Is `owner_key` a proxied hostname?
pub(crate) fn is_proxied(conn: &Connection, owner_key: &[u8]) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM proxy_hosts WHERE name = ?1", params![owner_key], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The proxied hostnames of a zone.
pub(crate) fn hosts_in(conn: &Connection, zone_key: &[u8]) -> Result<Vec<Box<[u8]>>, StoreError> {
    let mut st = conn.prepare_cached("SELECT name FROM proxy_hosts WHERE zone_name = ?1")?;
    let rows = st.query_map(params![zone_key], |r| Ok(r.get::<_, Vec<u8>>(0)?.into_boxed_slice()))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The rule for the source records at a proxied owner.
pub(crate) fn check_owner(owner: &[u8], records: &[Record]) -> Result<(), StoreError> {
    if let Some(r) = records.iter().find(|r| r.rtype == code::A || r.rtype == code::ANAME) {
        return Err(StoreError::Invalid(sixgate_dns::check::CheckError {
            index: None,
            reason: format!(
                "{} is enabled for the proxy, so its A records are the proxy's addresses; \
                 an {} of its own is not allowed (disable the proxy first)",
                name::to_text(owner),
                sixgate_dns::zonefile::type_text(r.rtype)
            ),
        }));
    }
    Ok(())
}

fn addresses(conn: &Connection) -> Result<Vec<Ipv4Addr>, StoreError> {
    let mut st = conn.prepare("SELECT addr FROM proxy_addresses ORDER BY addr")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.filter_map(|r| r.ok()?.parse().ok()).collect())
}

impl Store {
    /// The proxy's public IPv4 addresses.
    pub fn proxy_addresses(&self) -> Result<Vec<Ipv4Addr>, StoreError> {
        addresses(&self.conn)
    }

    /// Hostnames enabled for proxying.
    pub fn proxy_hosts(&self) -> Result<Vec<ProxyHost>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT h.name, h.zone_name, h.proxy_protocol, h.http_port, h.tls_port, z.account_id
             FROM proxy_hosts h LEFT JOIN zones z ON z.name = h.zone_name ORDER BY h.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(ProxyHost {
                name: r.get::<_, Vec<u8>>(0)?.into_boxed_slice(),
                zone: r.get::<_, Vec<u8>>(1)?.into_boxed_slice(),
                proxy_protocol: ProxyProtocol::from_name(&r.get::<_, String>(2)?).unwrap_or_default(),
                http_port: r.get(3)?,
                tls_port: r.get(4)?,
                account_id: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The proxy's routes generation: it moves with every committed write
    /// to what the route table is built from (hostnames enabled and their
    /// options, zones made, deleted, verified or given to another account,
    /// accounts' backend prefixes), whoever makes it, by triggers in the
    /// same transaction (schema migration 9). A running proxy rebuilds its
    /// routes when it moves; DNS record changes need no rebuild (routes
    /// read them from the served snapshot) and do not move it.
    pub fn routes_generation(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = 'routes_generation'", [], |r| r.get(0))?)
    }

    /// The deepest zone at or above `key`.
    fn zone_of(&self, key: &[u8]) -> Result<Option<Box<[u8]>>, StoreError> {
        let mut cur: &[u8] = key;
        loop {
            if zone_row(&self.conn, cur)?.is_some() {
                return Ok(Some(cur.into()));
            }
            match name::parent(cur) {
                Some(p) => cur = p,
                None => return Ok(None),
            }
        }
    }
}

impl Writer<'_> {
    /// Sets the proxy's public IPv4 addresses and republishes them at every
    /// enabled hostname (one diff per zone).
    pub fn set_proxy_addresses(&mut self, addrs: &[Ipv4Addr]) -> Result<(), StoreError> {
        {
            let tx = self.conn.transaction()?;
            tx.execute("DELETE FROM proxy_addresses", [])?;
            for a in addrs {
                tx.execute(
                    "INSERT OR IGNORE INTO proxy_addresses (addr) VALUES (?1)",
                    params![a.to_string()],
                )?;
            }
            tx.commit()?;
        }
        let addrs = addresses(&self.conn)?;
        let hosts = self.proxy_hosts()?;
        let mut zones: Vec<Box<[u8]>> = hosts.iter().map(|h| h.zone.clone()).collect();
        zones.sort();
        zones.dedup();
        for zone in zones {
            let names: Vec<Box<[u8]>> =
                hosts.iter().filter(|h| h.zone == zone).map(|h| h.name.clone()).collect();
            self.proxy_diff(&zone, |tx, id| {
                let mut changes = Vec::new();
                for n in &names {
                    let owner = case_of(tx, id, n)?;
                    changes.extend(publish(tx, id, &owner, &addrs)?);
                }
                Ok(changes)
            })?;
        }
        Ok(())
    }

    /// Enables (or re-configures) proxying for `host`, publishing the
    /// proxy's addresses as its A records. Refused when the host has an A
    /// record or an ANAME of its own, or lies in no zone.
    pub fn proxy_enable(
        &mut self,
        host: &[u8],
        proxy_protocol: ProxyProtocol,
        http_port: u16,
        tls_port: u16,
    ) -> Result<Option<Commit>, StoreError> {
        let key = name::to_lowercase(host);
        let zone = self
            .zone_of(&key)?
            .ok_or_else(|| StoreError::NotFound(format!("no zone contains {}", display(host))))?;
        let addrs = addresses(&self.conn)?;
        self.proxy_diff(&zone, |tx, id| {
            let own: Vec<Record> = crate::owner_records(tx, id, &key)?;
            check_owner(host, &own)?;
            tx.execute(
                "INSERT INTO proxy_hosts (name, zone_name, proxy_protocol, http_port, tls_port, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(name) DO UPDATE SET proxy_protocol = excluded.proxy_protocol,
                   http_port = excluded.http_port, tls_port = excluded.tls_port",
                params![&key[..], &zone[..], proxy_protocol.as_str(), http_port, tls_port, now()],
            )?;
            publish(tx, id, host, &addrs)
        })
    }

    /// Disables proxying for `host` and withdraws its published A records.
    pub fn proxy_disable(&mut self, host: &[u8]) -> Result<Option<Commit>, StoreError> {
        let key = name::to_lowercase(host);
        let zone: Vec<u8> = self
            .conn
            .query_row("SELECT zone_name FROM proxy_hosts WHERE name = ?1", params![&key[..]], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("{} is not enabled for the proxy", display(host))))?;
        self.proxy_diff(&zone, |tx, id| {
            tx.execute("DELETE FROM proxy_hosts WHERE name = ?1", params![&key[..]])?;
            publish(tx, id, host, &[])
        })
    }

    /// Runs `f` in a write transaction on the zone; commits its changes as
    /// a journaled diff with a new serial, or nothing if it changed nothing.
    fn proxy_diff(
        &mut self,
        apex: &[u8],
        f: impl FnOnce(&Connection, i64) -> Result<Vec<Change>, StoreError>,
    ) -> Result<Option<Commit>, StoreError> {
        let w = self.begin(apex)?;
        let changes = f(&w.tx, w.id)?;
        if changes.is_empty() {
            w.commit_nothing()?;
            return Ok(None);
        }
        w.commit_diff(changes).map(Some)
    }
}

/// The owner name in the case first written, or the key itself.
fn case_of(conn: &Connection, zone_id: i64, key: &[u8]) -> Result<Box<[u8]>, StoreError> {
    let owner: Option<Vec<u8>> = conn
        .query_row(
            "SELECT owner FROM records WHERE zone_id = ?1 AND owner_key = ?2 LIMIT 1",
            params![zone_id, key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(owner.map_or_else(|| key.into(), Vec::into_boxed_slice))
}

#[cfg(test)]
mod tests {
    use crate::{Actor, OPERATOR_ACCOUNT};
    use sixgate_dns::zonefile;

    use super::*;

    fn n(t: &str) -> Box<[u8]> {
        name::from_text(t, None).unwrap()
    }

    #[test]
    fn enabling_publishes_the_proxy_addresses_and_guards_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let apex = n("example.com.");
        let text =
            "@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns.x.\nwww 300 AAAA 2001:db8::80\nold 300 A 192.0.2.9\n";
        s.by(Actor::Task("test")).replace_zone(&apex, zonefile::parse(text, &apex).unwrap()).unwrap();
        s.by(Actor::Task("test")).set_proxy_addresses(&["198.51.100.1".parse().unwrap()]).unwrap();
        let www = n("www.example.com.");
        let c = s.by(Actor::Task("test")).proxy_enable(&www, ProxyProtocol::V1, 80, 443).unwrap();
        assert!(c.is_some());
        let served = |s: &mut Store| {
            let (_, z) = s.zone_snapshot(&apex).unwrap().unwrap();
            z.records
                .into_iter()
                .filter(|r| r.rtype == code::A && name::to_lowercase(&r.owner) == www)
                .count()
        };
        assert_eq!(served(&mut s), 1);
        assert!(s.rrset(&apex, &www, code::A).unwrap().is_empty(), "not in the source view");
        // An A of its own is refused while proxied; so is enabling a name with one.
        let a = zonefile::parse("www 60 A 192.0.2.1\n", &apex).unwrap();
        assert!(
            s.by(Actor::Task("test"))
                .apply(&apex, &[Change::Add(a[0].clone())])
                .unwrap_err()
                .to_string()
                .contains("proxy")
        );
        assert!(
            s.by(Actor::Task("test"))
                .proxy_enable(&n("old.example.com."), ProxyProtocol::Off, 80, 443)
                .is_err()
        );
        // New addresses are republished; disabling withdraws them.
        s.by(Actor::Task("test"))
            .set_proxy_addresses(&["198.51.100.1".parse().unwrap(), "198.51.100.2".parse().unwrap()])
            .unwrap();
        assert_eq!(served(&mut s), 2);
        assert_eq!(s.proxy_hosts().unwrap()[0].proxy_protocol, ProxyProtocol::V1);
        // A re-import may not sneak an A in either, and keeps the published ones.
        let with_a = format!("{text}www 60 A 192.0.2.1\n");
        assert!(
            s.by(Actor::Task("test")).replace_zone(&apex, zonefile::parse(&with_a, &apex).unwrap()).is_err()
        );
        s.by(Actor::Task("test")).replace_zone(&apex, zonefile::parse(text, &apex).unwrap()).unwrap();
        assert_eq!(served(&mut s), 2);
        s.by(Actor::Task("test")).proxy_disable(&www).unwrap();
        assert_eq!(served(&mut s), 0);
        assert!(s.proxy_hosts().unwrap().is_empty());
        assert!(s.by(Actor::Task("test")).proxy_disable(&www).is_err());
    }

    /// Regression: `proxy enable` with new options on an enabled hostname
    /// and a change of verification wrote no journal entry, so a running
    /// proxy, which rebuilt its routes only after journal entries, kept
    /// the old ones.
    #[test]
    fn every_write_routes_depend_on_moves_the_routes_generation_and_record_changes_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let apex = n("example.com.");
        let text = "@ 300 SOA ns h 1 2 3 4 5\n@ 300 NS ns.x.\nwww 300 AAAA 2001:db8::80\n";
        let mut last = s.routes_generation().unwrap();
        let mut moved = |s: &Store, what: &str, want: bool| {
            let now = s.routes_generation().unwrap();
            assert_eq!(now != last, want, "{what}: {last} -> {now}");
            last = now;
        };
        s.by(Actor::Task("test"))
            .create_zone(&apex, zonefile::parse(text, &apex).unwrap(), alice, true)
            .unwrap();
        moved(&s, "zone created", true);
        let www = n("www.example.com.");
        s.by(Actor::Task("test")).proxy_enable(&www, ProxyProtocol::Off, 80, 443).unwrap();
        moved(&s, "enabled", true);
        s.by(Actor::Task("test")).proxy_enable(&www, ProxyProtocol::Off, 80, 443).unwrap();
        moved(&s, "enabled again as it was", false);
        let c = s.by(Actor::Task("test")).proxy_enable(&www, ProxyProtocol::V2, 80, 443).unwrap();
        assert_eq!(c, None, "no record changed");
        moved(&s, "PROXY mode changed", true);
        s.by(Actor::Task("test")).proxy_enable(&www, ProxyProtocol::V2, 8080, 443).unwrap();
        moved(&s, "port changed", true);
        let a = zonefile::parse("www 60 AAAA 2001:db8::81\n", &apex).unwrap();
        s.by(Actor::Task("test")).apply(&apex, &[Change::Add(a[0].clone())]).unwrap();
        moved(&s, "a record added", false);
        s.set_verified(&apex, true, None).unwrap();
        moved(&s, "checked, still verified", false);
        s.set_verified(&apex, false, Some("gone")).unwrap();
        moved(&s, "verification lost", true);
        s.set_zone_owner(&apex, OPERATOR_ACCOUNT, false).unwrap();
        moved(&s, "another owner", true);
        s.set_backend_prefixes(alice, &[crate::BackendPrefix::parse("2001:db8::/32").unwrap()]).unwrap();
        moved(&s, "prefixes set", true);
        s.set_backend_prefixes(alice, &[]).unwrap();
        moved(&s, "prefixes cleared", true);
        s.by(Actor::Task("test")).proxy_disable(&www).unwrap();
        moved(&s, "disabled", true);
        s.by(Actor::Task("test")).delete_zone(&apex).unwrap();
        moved(&s, "zone deleted", true);
        // It survives a reopen, and other connections see it.
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.routes_generation().unwrap(), last);
    }
}
