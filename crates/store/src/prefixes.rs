//! Backend prefixes of accounts: the IPv6 networks where an account's
//! proxied hostnames may send the proxy.
//!
//! Customers firewall their servers to the proxy's source address
//! (docs/proxy.md), which makes that address a credential: a hostname
//! must reach only its own account's servers, never aim the proxy at
//! another tenant's. So the operator gives each customer account the
//! prefixes its servers are in, and a hostname's backends must lie inside
//! the prefixes of the account that owns the hostname's zone. An address
//! belongs to one account only: the prefixes of two accounts may not
//! overlap. The operator account's prefixes are the configuration's
//! (`[proxy] allow_backend`), not stored here. An account has at most
//! [`MAX_BACKEND_PREFIXES`].

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use rusqlite::{OptionalExtension, params};

use crate::tenancy::{OPERATOR_ACCOUNT, account_name};
use crate::{LimitError, Store, StoreError};

/// Most backend prefixes of one account.
pub const MAX_BACKEND_PREFIXES: u64 = 64;

/// An IPv6 prefix an account's backends may be in, `ADDR/LEN` with no
/// bits set after the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendPrefix {
    /// The network address.
    pub addr: Ipv6Addr,
    /// The prefix length, 0 to 128.
    pub len: u8,
}

impl BackendPrefix {
    /// Reads `2001:db8:42::/48`.
    pub fn parse(text: &str) -> Result<BackendPrefix, StoreError> {
        let bad = || {
            StoreError::BadInput(format!("{text:?} is not an IPv6 prefix (ADDR/LEN, e.g. 2001:db8:42::/48)"))
        };
        let (a, l) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let len: u8 = l.parse().ok().filter(|l| *l <= 128).ok_or_else(bad)?;
        let p = BackendPrefix { addr, len };
        if p.network() != u128::from(addr) {
            return Err(StoreError::BadInput(format!(
                "{text} has bits set after its length; the network is {}/{len}",
                Ipv6Addr::from(p.network())
            )));
        }
        Ok(p)
    }

    fn mask(&self) -> u128 {
        if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) }
    }

    fn network(&self) -> u128 {
        u128::from(self.addr) & self.mask()
    }

    /// Do the two share an address? Prefixes nest or are apart: they
    /// overlap when the shorter one holds the other's network.
    pub fn overlaps(&self, other: &BackendPrefix) -> bool {
        let wider = if self.len <= other.len { self } else { other };
        let narrower = if self.len <= other.len { other } else { self };
        narrower.network() & wider.mask() == wider.network()
    }
}

impl std::fmt::Display for BackendPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn prefix_of(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<BackendPrefix> {
    let text: String = r.get(at)?;
    // Stored only after `parse`: a row that does not read is corruption.
    BackendPrefix::parse(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, Box::new(e)))
}

impl Store {
    /// An account's backend prefixes, in order.
    pub fn backend_prefixes(&self, account_id: i64) -> Result<Vec<BackendPrefix>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT prefix FROM account_prefixes WHERE account_id = ?1")?;
        let mut out =
            st.query_map(params![account_id], |r| prefix_of(r, 0))?.collect::<Result<Vec<_>, _>>()?;
        out.sort();
        Ok(out)
    }

    /// Every account's backend prefixes, by account id (accounts without
    /// any are left out).
    pub fn all_backend_prefixes(&self) -> Result<BTreeMap<i64, Vec<BackendPrefix>>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT account_id, prefix FROM account_prefixes")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, prefix_of(r, 1)?)))?;
        let mut out: BTreeMap<i64, Vec<BackendPrefix>> = BTreeMap::new();
        for row in rows {
            let (id, p) = row?;
            out.entry(id).or_default().push(p);
        }
        for v in out.values_mut() {
            v.sort();
        }
        Ok(out)
    }

    /// Replaces an account's backend prefixes (none: its hostnames are
    /// not proxied) and returns them as stored. Refused for the operator
    /// account, over [`MAX_BACKEND_PREFIXES`], or when one overlaps a
    /// prefix of another account. A running server routes by them at once.
    pub fn set_backend_prefixes(
        &mut self,
        account_id: i64,
        prefixes: &[BackendPrefix],
    ) -> Result<Vec<BackendPrefix>, StoreError> {
        if account_id == OPERATOR_ACCOUNT {
            return Err(StoreError::BadInput(
                "the operator account's backend prefixes are the configuration's ([proxy] allow_backend, \
                 --proxy-allow-backend)"
                    .into(),
            ));
        }
        let mut list = prefixes.to_vec();
        list.sort();
        list.dedup();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row("SELECT 1 FROM accounts WHERE id = ?1", params![account_id], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound(format!("account #{account_id} does not exist")));
        }
        if list.len() as u64 > MAX_BACKEND_PREFIXES {
            return Err(LimitError::new(
                format!("account {}", account_name(&tx, account_id)?),
                list.len() as u64,
                "backend prefixes",
                "backend_prefixes",
                MAX_BACKEND_PREFIXES,
            )
            .into());
        }
        let others: Vec<(i64, BackendPrefix)> = {
            let mut st =
                tx.prepare("SELECT account_id, prefix FROM account_prefixes WHERE account_id != ?1")?;
            let rows = st.query_map(params![account_id], |r| Ok((r.get(0)?, prefix_of(r, 1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for p in &list {
            if let Some((other, q)) = others.iter().find(|(_, q)| q.overlaps(p)) {
                return Err(StoreError::Conflict(format!(
                    "{p} overlaps {q} of account {}: an address belongs to one account",
                    account_name(&tx, *other)?
                )));
            }
        }
        tx.execute("DELETE FROM account_prefixes WHERE account_id = ?1", params![account_id])?;
        for p in &list {
            tx.execute(
                "INSERT INTO account_prefixes (account_id, prefix) VALUES (?1, ?2)",
                params![account_id, p.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> BackendPrefix {
        BackendPrefix::parse(t).unwrap()
    }

    #[test]
    fn prefixes_are_read_strictly_with_a_clear_error() {
        assert_eq!(p("2001:db8:42::/48").to_string(), "2001:db8:42::/48");
        assert_eq!(p(" ::1/128 ").to_string(), "::1/128");
        for (bad, says) in [
            ("2001:db8::1/32", "the network is 2001:db8::/32"),
            ("2001:db8::", "not an IPv6 prefix"),
            ("192.0.2.0/24", "not an IPv6 prefix"),
            ("::/129", "not an IPv6 prefix"),
            ("::/x", "not an IPv6 prefix"),
        ] {
            let e = BackendPrefix::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(p("2001:db8::/32").overlaps(&p("2001:db8:1::/48")));
        assert!(p("2001:db8:1::/48").overlaps(&p("2001:db8::/32")));
        assert!(!p("2001:db8:1::/48").overlaps(&p("2001:db8:2::/48")));
        assert!(p("::/0").overlaps(&p("::1/128")));
    }

    #[test]
    fn each_account_has_its_own_prefixes_within_its_quota_and_none_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let bob = s.create_account("bob").unwrap().id;
        assert_eq!(s.backend_prefixes(alice).unwrap(), []);
        let set = s.set_backend_prefixes(alice, &[p("2001:db8:a::/48"), p("::1/128"), p("::1/128")]).unwrap();
        assert_eq!(set, [p("::1/128"), p("2001:db8:a::/48")], "sorted, once each");
        assert_eq!(s.backend_prefixes(alice).unwrap(), set);
        // Bob may not take an address of Alice's, wider or narrower.
        for q in ["2001:db8:a:1::/64", "2001:db8::/32", "::/0"] {
            let e = s.set_backend_prefixes(bob, &[p(q)]).unwrap_err();
            assert!(
                matches!(e, StoreError::Conflict(_)) && e.to_string().contains("account alice"),
                "{q}: {e}"
            );
        }
        s.set_backend_prefixes(bob, &[p("2001:db8:b::/48")]).unwrap();
        let all = s.all_backend_prefixes().unwrap();
        assert_eq!(all.get(&bob).map(Vec::len), Some(1));
        assert_eq!(all.get(&alice).map(Vec::len), Some(2));
        // Replacing is whole; the empty list clears.
        s.set_backend_prefixes(alice, &[]).unwrap();
        assert_eq!(s.backend_prefixes(alice).unwrap(), []);
        s.set_backend_prefixes(bob, &[p("2001:db8:a::/48")]).unwrap();
        // The quota.
        let many: Vec<BackendPrefix> =
            (0..=MAX_BACKEND_PREFIXES as u16).map(|i| p(&format!("2001:db8:c:{i:x}::/64"))).collect();
        let e = s.set_backend_prefixes(alice, &many).unwrap_err();
        assert!(matches!(e, StoreError::Limit(_)) && e.to_string().contains("backend_prefixes"), "{e}");
        s.set_backend_prefixes(alice, &many[..MAX_BACKEND_PREFIXES as usize]).unwrap();
        // The operator's are the configuration's; unknown accounts have none.
        let e = s.set_backend_prefixes(OPERATOR_ACCOUNT, &[p("2001:db8:d::/48")]).unwrap_err();
        assert!(e.to_string().contains("allow_backend"), "{e}");
        assert!(matches!(s.set_backend_prefixes(999, &[]), Err(StoreError::NotFound(_))));
    }
}
