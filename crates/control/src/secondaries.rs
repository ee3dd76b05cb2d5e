//! The secondaries as the running server sees them: a snapshot of the
//! store's list, swapped in by the publisher ([`crate::publish`]) when
//! the store's secondaries generation moves, so that the transfer access
//! list and NOTIFY follow `sixgate secondary add` and `remove` made by
//! another process without a restart.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sixgate_dns::name;
use sixgate_store::{Secondary, Store, StoreError};

/// The secondaries and the catalog zone's name, as of one generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secondaries {
    /// The store's secondaries generation this was read at (0: never).
    pub generation: i64,
    /// Every secondary, by address.
    pub list: Vec<Secondary>,
    /// The catalog zone's name, wire form, lowercased.
    pub catalog: Box<[u8]>,
    /// Every TSIG key the server knows (UPDATE and transfer keys), by
    /// name: a query signed with one is answered signed.
    pub keys: Vec<sixgate_store::TransferKey>,
}

/// The snapshot every task shares.
pub type SharedSecondaries = Arc<ArcSwap<Secondaries>>;

impl Secondaries {
    /// Reads the secondaries and the catalog zone's name from `store`.
    pub fn load(store: &Store) -> Result<Secondaries, StoreError> {
        // The generation first: a change committed between the reads is
        // read again on the next check.
        let generation = store.secondaries_generation()?;
        Ok(Secondaries {
            generation,
            list: store.secondaries()?,
            catalog: name::to_lowercase(&store.catalog_name()?),
            keys: store.all_tsig_keys()?,
        })
    }

    /// The key named `key` (wire, any case) that a query may be signed
    /// with (RFC 8945 §5.3: the answer is signed with it): any key the
    /// server knows, from any address, since verifying a query and
    /// signing its answer grants nothing. A secondary signs the SOA query
    /// it sends before a transfer; certbot's rfc2136 plugin signs the one
    /// that finds the zone before an UPDATE.
    pub fn query_key(&self, key: &[u8]) -> Option<sixgate_dns::tsig::Key> {
        use sixgate_dns::tsig::{Algorithm, Key};
        let k = self.keys.iter().find(|k| k.name.eq_ignore_ascii_case(key))?;
        Some(Key::new(&k.name, Algorithm::from_text(&k.algorithm)?, k.secret.clone()))
    }

    /// Whether any secondary follows the catalog: only then is the
    /// catalog zone served.
    pub fn has_catalog(&self) -> bool {
        self.list.iter().any(|s| s.catalog)
    }

    /// Whether `apex` (wire, any case) is the catalog zone.
    pub fn is_catalog(&self, apex: &[u8]) -> bool {
        apex.eq_ignore_ascii_case(&self.catalog)
    }

    /// The secondaries that carry the zone `apex`: the catalog zone goes
    /// to the catalog's followers only.
    pub fn carrying<'a>(&'a self, apex: &'a [u8]) -> impl Iterator<Item = &'a Secondary> + 'a {
        let catalog = self.is_catalog(apex);
        self.list.iter().filter(move |s| if catalog { s.catalog } else { s.carries(apex) })
    }

    /// The secondaries at `ip` (any port): those a transfer request from
    /// that address may come from. An IPv4-mapped IPv6 address is its
    /// IPv4 address.
    pub fn at(&self, ip: IpAddr) -> impl Iterator<Item = &Secondary> + '_ {
        let ip = ip.to_canonical();
        self.list.iter().filter(move |s| s.address.ip().to_canonical() == ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secondary(addr: &str, catalog: bool, zones: &[&str]) -> Secondary {
        Secondary {
            address: addr.parse().unwrap(),
            key: None,
            catalog,
            zones: zones.iter().map(|z| name::from_text(z, None).unwrap()).collect(),
        }
    }

    #[test]
    fn the_catalog_zone_goes_to_its_followers_and_named_zones_to_theirs() {
        let s = Secondaries {
            generation: 1,
            list: vec![
                secondary("127.0.0.1:5301", true, &[]),
                secondary("127.0.0.1:5302", false, &[]),
                secondary("[::1]:5303", false, &["a.test."]),
            ],
            catalog: name::from_text("catalog.invalid.", None).unwrap(),
            keys: vec![],
        };
        let ports = |apex: &str| {
            let apex = name::from_text(apex, None).unwrap();
            s.carrying(&apex).map(|s| s.address.port()).collect::<Vec<_>>()
        };
        assert_eq!(ports("CATALOG.invalid."), [5301]);
        assert_eq!(ports("a.test."), [5301, 5302, 5303]);
        assert_eq!(ports("b.test."), [5301, 5302]);
        assert!(s.has_catalog());
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(s.at(mapped).count(), 2);
        assert_eq!(s.at("127.0.0.2".parse().unwrap()).count(), 0);
    }
}
