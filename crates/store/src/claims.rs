//! Zone claims: which names an account may create as zones.
//!
//! A zone answers for every name at or below its apex that no deeper zone
//! holds (longest match), so creating a zone is a claim on a part of the
//! namespace. A customer account may not claim:
//! - the root, a top-level domain, or a name on the Public Suffix List
//!   (compiled into the binary by the `psl` crate, both its ICANN and its
//!   private section), unless the operator allow-lists the name
//!   ([`TenancyPolicy::allow_suffixes`]): a customer holding `com.` would
//!   answer NXDOMAIN for every .com name not hosted here and block every
//!   other customer below it;
//! - a name at, above or below a zone of another account: above, its zone
//!   would hold the other zone's delegation and DS; below, it would take
//!   over names the other account serves.
//!
//! The operator (account 1, and zones an admin token creates verified for
//! an account) may claim anything: that is how the operator hosts a TLD or
//! hands a customer a name by hand.
//!
//! The check runs inside the IMMEDIATE write transaction that creates the
//! zone ([`claim`], called by the store's zone creation), so two creations
//! racing for overlapping names cannot both pass. Ancestors are found by
//! walking up the name (one primary-key probe per label, root included);
//! descendants as one range of `zone_keys.canon`, the zone's canonical key
//! (`sixgate_dns::name::canonical_key`), under which a name's descendants
//! are exactly the longer keys that start with its key.
//!
//! Every refusal because of another account is the same neutral
//! [`ClaimError::Unavailable`]: it names only the requested name, never
//! the other zone, and it does not say whether the conflict is the name
//! itself, a parent or a child, so an account cannot map the others'
//! zones by probing.

use rusqlite::{Connection, OptionalExtension, params};
use sixgate_dns::name;

use crate::tenancy::OPERATOR_ACCOUNT;
use crate::{StoreError, display};

/// Why a zone may not be created for an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The root zone.
    #[error("the root zone is reserved to the operator")]
    Root,
    /// A top-level domain.
    #[error("{0} is a top-level domain, reserved to the operator")]
    TopLevel(String),
    /// A name on the Public Suffix List.
    #[error("{0} is a public suffix, reserved to the operator")]
    PublicSuffix(String),
    /// The name overlaps a zone of another account (is it, lies above or
    /// below it). Deliberately says no more.
    #[error("zone {0} is not available to this account")]
    Unavailable(String),
}

/// How the store treats customer accounts' zones; set by `serve` from its
/// `[tenancy]` configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenancyPolicy {
    /// Names (wire form, lowercased) a customer may claim although they
    /// are a TLD or on the Public Suffix List. Never the root.
    pub allow_suffixes: Vec<Box<[u8]>>,
    /// Serve customers' zones before their delegation is verified (labs
    /// only: it reopens the lame-delegation takeover).
    pub serve_unverified: bool,
}

/// Is this a name no customer may claim by itself: the root, a TLD, or
/// a public suffix? `key` is the lowercased wire name.
pub(crate) fn reserved(key: &[u8], policy: &TenancyPolicy) -> Result<(), ClaimError> {
    let labels = labels(key);
    if labels.is_empty() {
        return Err(ClaimError::Root);
    }
    if policy.allow_suffixes.iter().any(|a| a[..] == *key) {
        return Ok(());
    }
    if labels.len() == 1 {
        return Err(ClaimError::TopLevel(display(key)));
    }
    if is_public_suffix(&labels) {
        return Err(ClaimError::PublicSuffix(display(key)));
    }
    Ok(())
}

/// The labels of a wire name, leftmost first.
fn labels(wire: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        let Some(label) = wire.get(pos + 1..pos + 1 + len as usize).filter(|_| len != 0) else { break };
        out.push(label);
        pos += 1 + len as usize;
    }
    out
}

/// Is the name with these (lowercase, leftmost first) labels itself a
/// public suffix? The list's lookup takes labels from the TLD down and
/// answers the length of the matching suffix in text form (labels joined
/// by dots); the name is a suffix when that is all of it. A label that
/// contains a dot matches no entry, so it cannot make a suffix look
/// shorter or longer than it is.
fn is_public_suffix(labels: &[&[u8]]) -> bool {
    use psl::Psl as _;
    let text_len = labels.iter().map(|l| l.len()).sum::<usize>() + labels.len().saturating_sub(1);
    let info = psl::List.find(labels.iter().rev().copied());
    info.len == text_len
}

/// Decides, inside the write transaction `tx`, whether the zone `key`
/// (lowercased wire apex) may be created; `create` is the account and
/// verified flag of a creation (`None`: the operator's zone import,
/// which creates or replaces). A zone made verified, or for the operator
/// account, is the operator's decision and is not checked. On success,
/// a new zone's canonical key is recorded for later descendant checks.
///
/// When the zone exists already, a customer of another account gets the
/// neutral refusal; the zone's own account (and the operator) fall
/// through to "already exists" or the replacement.
pub(crate) fn claim(
    tx: &Connection,
    key: &[u8],
    create: Option<(i64, bool)>,
    policy: &TenancyPolicy,
) -> Result<(), StoreError> {
    let customer =
        create.filter(|&(account, verified)| account != OPERATOR_ACCOUNT && !verified).map(|c| c.0);
    let mut owner_of = tx.prepare_cached("SELECT account_id FROM zones WHERE name = ?1")?;
    if let Some(owner) = owner_of.query_row(params![key], |r| r.get::<_, i64>(0)).optional()? {
        return match customer {
            Some(account) if owner != account => Err(ClaimError::Unavailable(display(key)).into()),
            _ => Ok(()),
        };
    }
    if let Some(account) = customer {
        reserved(key, policy)?;
        let unavailable = || StoreError::from(ClaimError::Unavailable(display(key)));
        // Ancestors, up to and including the root.
        let mut cur = key;
        while let Some(parent) = name::parent(cur).filter(|p| !p.is_empty()) {
            if owner_of
                .query_row(params![parent], |r| r.get::<_, i64>(0))
                .optional()?
                .is_some_and(|o| o != account)
            {
                return Err(unavailable());
            }
            cur = parent;
        }
        if foreign_descendant(tx, key, account)? {
            return Err(unavailable());
        }
    }
    index(tx, key)
}

/// Does another account hold a zone strictly below `key`? One range of
/// the canonical-key index; it reads only the zones below `key`.
fn foreign_descendant(tx: &Connection, key: &[u8], account: i64) -> Result<bool, StoreError> {
    let canon = name::canonical_key(key);
    let Some(end) = name::canonical_key_end(&canon) else {
        // The root: everything is below it (refused before as reserved).
        return Ok(true);
    };
    let mut st = tx.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM zone_keys k JOIN zones z ON z.name = k.name
                       WHERE k.canon > ?1 AND k.canon < ?2 AND z.account_id != ?3)",
    )?;
    Ok(st.query_row(params![&canon[..], &end[..], account], |r| r.get(0))?)
}

/// Records a zone's canonical key. Rows of deleted zones go with them (a
/// trigger); a stale row could not mislead anyway, because the descendant
/// check joins `zones`.
fn index(tx: &Connection, key: &[u8]) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO zone_keys (name, canon) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET canon = excluded.canon",
    )?
    .execute(params![key, &name::canonical_key(key)[..]])?;
    Ok(())
}

/// Fills what the claims migration added for data written before it:
/// every zone's canonical key and every account's nameserver label. Runs
/// inside the migration transaction, once (the migration leaves a flag
/// in `meta`).
pub(crate) fn backfill(tx: &Connection) -> Result<(), StoreError> {
    let pending: Option<i64> =
        tx.query_row("SELECT value FROM meta WHERE key = 'claims_backfill'", [], |r| r.get(0)).optional()?;
    if pending.is_none() {
        return Ok(());
    }
    let names: Vec<Vec<u8>> = {
        let mut st = tx.prepare("SELECT name FROM zones")?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for key in names {
        index(tx, &key)?;
    }
    let accounts: Vec<i64> = {
        let mut st = tx.prepare("SELECT id FROM accounts WHERE ns_label IS NULL")?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for id in accounts {
        crate::verification::assign_label(tx, id)?;
    }
    tx.execute("DELETE FROM meta WHERE key = 'claims_backfill'", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Box<[u8]> {
        name::to_lowercase(&name::from_text(text, None).unwrap())
    }

    #[test]
    fn the_root_tlds_and_public_suffixes_are_reserved() {
        let p = TenancyPolicy::default();
        assert_eq!(reserved(&key("."), &p), Err(ClaimError::Root));
        for t in ["com.", "COM.", "example.", "test.", "arpa."] {
            assert!(matches!(reserved(&key(t), &p), Err(ClaimError::TopLevel(_))), "{t}");
        }
        // ICANN and private entries, a wildcard rule (*.ck) and punycode.
        for t in ["co.uk.", "ip6.arpa.", "github.io.", "foo.ck.", "xn--55qx5d.cn."] {
            assert!(matches!(reserved(&key(t), &p), Err(ClaimError::PublicSuffix(_))), "{t}");
        }
        // Registrable names and below, and an exception rule (!www.ck).
        for t in ["example.com.", "shop.example.co.uk.", "corp.example.", "www.ck.", "me.github.io."] {
            assert_eq!(reserved(&key(t), &p), Ok(()), "{t}");
        }
        // A label with a dot in it is one label, not two.
        assert_eq!(reserved(&key("co\\.uk.example."), &p), Ok(()));
    }

    fn zone(text: &str) -> (Box<[u8]>, Vec<sixgate_dns::zone::Record>) {
        let apex = name::from_text(text, None).unwrap();
        let recs =
            sixgate_dns::zonefile::parse("@ 60 SOA ns.x. h 1 2 3 4 5\n@ 60 NS ns.x.\n", &apex).unwrap();
        (apex, recs)
    }

    fn create(
        s: &mut crate::Store,
        zone: &str,
        account: i64,
        verified: bool,
    ) -> Result<crate::Commit, StoreError> {
        let (apex, recs) = self::zone(zone);
        s.by(crate::Actor::Task("test")).create_zone(&apex, recs, account, verified)
    }

    /// Regression (issue 11, fault 3): an account token created `com.` and
    /// `example.` while another account held `shop.example.`; both were
    /// served, the first answering NXDOMAIN for all of .com, the second
    /// the DS of the other account's zone. The check looked only at
    /// ancestors, stopped before the root, and ran outside the write
    /// transaction.
    #[test]
    fn a_customer_cannot_claim_com_or_a_parent_of_another_accounts_zone() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let mallory = s.create_account("mallory").unwrap().id;
        create(&mut s, "shop.corp.example.", alice, false).unwrap();
        let before = s.zones().unwrap();
        let mut shapes = Vec::new();
        for zone in [".", "com.", "co.uk.", "corp.example.", "deep.shop.corp.example.", "shop.corp.example."]
        {
            let e = create(&mut s, zone, mallory, false).expect_err(zone).to_string();
            // The requested name may appear; no other zone's name may.
            let rest = if zone == "." { e.clone() } else { e.replace(zone, "ZONE") };
            assert!(!rest.contains("shop.corp.example"), "{zone}: {e}");
            if zone.ends_with("corp.example.") {
                shapes.push(rest);
            }
        }
        // Parent, child and the very name: one neutral refusal, so the
        // answer does not tell which of them another account holds.
        assert!(shapes.windows(2).all(|w| w[0] == w[1]), "{shapes:?}");
        assert_eq!(s.zones().unwrap(), before, "a refused claim writes nothing");
        // Mallory may nest her own zones; the operator may claim anything.
        create(&mut s, "mallory.example.", mallory, false).unwrap();
        create(&mut s, "www.mallory.example.", mallory, false).unwrap();
        for zone in [".", "com.", "co.uk.", "corp.example.", "deep.shop.corp.example."] {
            create(&mut s, zone, OPERATOR_ACCOUNT, true).unwrap_or_else(|e| panic!("{zone}: {e}"));
        }
    }

    #[test]
    fn descendants_are_one_index_range_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::Store::open(dir.path()).unwrap();
        let plan: Vec<String> = s
            .conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT EXISTS(SELECT 1 FROM zone_keys k JOIN zones z ON z.name = k.name
                 WHERE k.canon > ?1 AND k.canon < ?2 AND z.account_id != ?3)",
            )
            .unwrap()
            .query_map(params![&b"a"[..], &b"b"[..], 2], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("SEARCH k USING INDEX zone_keys_canon (canon>? AND canon<?)"), "{plan}");
        assert!(!plan.contains("SCAN k") && !plan.contains("SCAN z"), "{plan}");
    }

    #[test]
    fn a_deleted_zone_frees_its_names_and_an_allowed_suffix_can_be_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let bob = s.create_account("bob").unwrap().id;
        let (apex, recs) = zone("shop.corp.example.");
        s.by(crate::Actor::Task("test")).create_zone(&apex, recs, alice, false).unwrap();
        let (parent, precs) = zone("corp.example.");
        assert!(s.by(crate::Actor::Task("test")).create_zone(&parent, precs.clone(), bob, false).is_err());
        s.by(crate::Actor::Task("test")).delete_zone(&apex).unwrap();
        s.by(crate::Actor::Task("test")).create_zone(&parent, precs, bob, false).unwrap();
        let (gh, recs) = zone("github.io.");
        let e = s.by(crate::Actor::Task("test")).create_zone(&gh, recs.clone(), bob, false).unwrap_err();
        assert!(matches!(e, StoreError::Claim(ClaimError::PublicSuffix(_))), "{e}");
        s.set_tenancy(TenancyPolicy { allow_suffixes: vec![key("github.io.")], ..Default::default() });
        s.by(crate::Actor::Task("test")).create_zone(&gh, recs, bob, false).unwrap();
        // An admin may make a customer's zone anywhere (it is verified).
        let (deep, recs) = zone("x.shop.corp.example.");
        s.by(crate::Actor::Task("test")).create_zone(&deep, recs, alice, true).unwrap();
    }

    /// The claim is decided inside the write transaction: two stores
    /// racing for a parent and a child of each other, for two accounts,
    /// never both win.
    #[test]
    fn racing_claims_for_overlapping_names_never_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = {
            let mut s = crate::Store::open(dir.path()).unwrap();
            (s.create_account("alice").unwrap().id, s.create_account("bob").unwrap().id)
        };
        for round in 0..20 {
            let parent = format!("r{round}.example.");
            let child = format!("shop.r{round}.example.");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = [(parent, alice), (child, bob)]
                .into_iter()
                .map(|(zone_name, account)| {
                    let (dir, barrier) = (dir.path().to_path_buf(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut s = crate::Store::open(&dir).unwrap();
                        let (apex, recs) = zone(&zone_name);
                        barrier.wait();
                        s.by(crate::Actor::Task("test")).create_zone(&apex, recs, account, false).is_ok()
                    })
                })
                .collect();
            let won: Vec<bool> = racers.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(won.iter().filter(|&&w| w).count(), 1, "round {round}: {won:?}");
        }
    }

    #[test]
    fn the_operator_may_allow_suffixes_but_never_the_root() {
        let p = TenancyPolicy {
            allow_suffixes: vec![key("github.io."), key("lab."), key(".")],
            ..Default::default()
        };
        assert_eq!(reserved(&key("github.io."), &p), Ok(()));
        assert_eq!(reserved(&key("lab."), &p), Ok(()));
        assert_eq!(reserved(&key("."), &p), Err(ClaimError::Root));
        assert!(reserved(&key("gitlab.io."), &p).is_err());
    }
}
