//! Accounts, zone ownership and verification, API tokens and TSIG keys.
//!
//! Every zone belongs to an account. Account 1, `operator`, is the
//! operator's own: zones made on the data directory (the CLI) or with an
//! admin token land there and count as verified. A customer's zone stays
//! unverified until its parent delegates it to sixgate; features that trust
//! zone contents across accounts check [`ZoneOwner::trusted_by`].
//!
//! Unverified customer zones are not served at all (unless the store is
//! told to, [`crate::TenancyPolicy::serve_unverified`]): the publisher
//! builds zones through [`Store::visit_zones`], which leaves them out,
//! and a change of a zone's verified state is journaled as a replacement,
//! so a running publisher drops or adds the zone at once. This is the
//! defence against "sitting ducks", lame delegations taken over by
//! whoever creates the zone first: each account has nameserver names of
//! its own ([`AccountNameservers`], `ns1.LABEL.DOMAIN`), and a zone is
//! verified only when its parent delegates to its own account's names,
//! which a delegation left behind for another account never does.
//!
//! Token secrets are random 256-bit values; only their SHA-256 is stored,
//! so a copy of the database does not hand out API access. (A plain hash is
//! enough here: the secret is random, not a password, so there is nothing to
//! guess and no need for a slow KDF.) TSIG secrets must be kept as they are,
//! because the server computes HMACs with them.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use sixgate_dns::name;

use crate::{Store, StoreError, TenancyPolicy, display, journal, now};

/// The operator's own account.
pub const OPERATOR_ACCOUNT: i64 = 1;
/// Prefix of every token secret, so secret scanners and humans can tell
/// what leaked.
pub const TOKEN_PREFIX: &str = "sgt_";

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Number of zones.
    pub zones: u64,
    /// The account's label in its nameserver names (`ns1.LABEL.DOMAIN`):
    /// random, so that public NS records do not publish who the customer
    /// is, and stable.
    pub ns_label: String,
}

/// How accounts' own nameserver names are formed: `ns1.LABEL.DOMAIN` up
/// to `nsCOUNT.LABEL.DOMAIN`. Stored, so the CLI shows what `serve` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountNameservers {
    /// The operator's nameserver domain (wire form, lowercased).
    pub domain: Box<[u8]>,
    /// How many names each account gets (1 to [`AccountNameservers::MAX`]).
    pub count: u8,
}

impl AccountNameservers {
    /// Most names per account.
    pub const MAX: u8 = 8;

    /// The names for an account label, in order.
    pub fn names(&self, label: &str) -> Result<Vec<Box<[u8]>>, StoreError> {
        let domain = display(&self.domain);
        (1..=self.count)
            .map(|i| {
                name::from_text(&format!("ns{i}.{label}.{domain}"), None)
                    .map_err(|e| StoreError::BadInput(format!("nameserver name for {label:?}: {e}")))
            })
            .collect()
    }
}

/// Who owns a zone and whether its delegation is proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneOwner {
    /// The owning account.
    pub account_id: i64,
    /// The parent delegates the zone to sixgate (or the operator made it).
    pub verified: bool,
    /// When the delegation was last checked (unix seconds).
    pub checked_at: Option<i64>,
    /// Why the last check failed.
    pub error: Option<String>,
}

impl ZoneOwner {
    /// May data of this zone be used on behalf of `account`? Only for the
    /// same account, or once the zone's delegation is verified.
    pub fn trusted_by(&self, account: i64) -> bool {
        self.verified || self.account_id == account
    }
}

/// A customer's zone and whether its delegation is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerZone {
    /// Apex, wire form, original case.
    pub apex: Box<[u8]>,
    /// Verified now.
    pub verified: bool,
    /// The names the parent must delegate to: its account's own, when
    /// per-account names are configured; `None` means the shared
    /// nameservers.
    pub nameservers: Option<Vec<Box<[u8]>>>,
}

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything, every account.
    Admin,
    /// Every zone of its account.
    Account,
    /// One zone (wire form, lowercased).
    Zone(Box<[u8]>),
    /// Only `_acme-challenge` TXT records of one zone.
    Acme(Box<[u8]>),
    /// Only PTR records inside one IPv6 prefix, given as its ip6.arpa
    /// name (wire form, lowercased); the prefix text is kept for display.
    Ptr {
        /// The ip6.arpa name covering the prefix.
        reverse: Box<[u8]>,
        /// The prefix as given, e.g. `2001:db8:42::/48`.
        prefix: String,
    },
}

impl Scope {
    fn kind(&self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Account => "account",
            Scope::Zone(_) => "zone",
            Scope::Acme(_) => "acme",
            Scope::Ptr { .. } => "ptr",
        }
    }
}

/// A token as stored (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Id (for revocation).
    pub id: i64,
    /// The owning account.
    pub account_id: i64,
    /// What it may do.
    pub scope: Scope,
}

/// A TSIG key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Key name, wire form, lowercased.
    pub name: Box<[u8]>,
    /// Algorithm name as text (`hmac-sha256`, ...).
    pub algorithm: String,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// The zone it may update (wire form, lowercased).
    pub zone: Box<[u8]>,
    /// Only `_acme-challenge` TXT records.
    pub acme_only: bool,
}

/// Is this an ACME DNS-01 challenge record (RFC 8555 §8.4): a TXT RRset
/// whose owner's first label is `_acme-challenge`? This is all that
/// acme-only tokens and TSIG keys may change.
pub fn is_acme_challenge(owner: &[u8], rtype: u16) -> bool {
    const LABEL: &[u8] = b"_acme-challenge";
    rtype == sixgate_dns::rtype::code::TXT
        && owner.first() == Some(&(LABEL.len() as u8))
        && owner.get(1..=LABEL.len()).is_some_and(|l| l.eq_ignore_ascii_case(LABEL))
}

/// Hashes a token secret for lookup.
fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn random_hex(bytes: usize) -> String {
    use std::fmt::Write as _;
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    buf.iter().fold(String::with_capacity(bytes * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The ip6.arpa name for an IPv6 prefix whose length is a multiple of 4.
pub fn ip6_arpa(prefix: &str) -> Result<Box<[u8]>, String> {
    let (addr, len) = prefix.split_once('/').ok_or_else(|| format!("{prefix:?} is not ADDR/LEN"))?;
    let addr: std::net::Ipv6Addr = addr.parse().map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
    let len: u32 = len.parse().map_err(|_| format!("bad prefix length {len:?}"))?;
    if len == 0 || len > 128 || !len.is_multiple_of(4) {
        return Err(format!("prefix length must be a multiple of 4 between 4 and 128, not {len}"));
    }
    let bits = u128::from(addr);
    if len < 128 && bits << len != 0 {
        return Err(format!("{prefix} has bits set after the prefix length"));
    }
    let nibbles = (len / 4) as usize;
    let mut text = String::new();
    for i in (0..nibbles).rev() {
        let nib = (bits >> (124 - 4 * i as u32)) & 0xf;
        text.push_str(&format!("{nib:x}."));
    }
    text.push_str("ip6.arpa.");
    name::from_text(&text, None).map_err(|e| e.to_string())
}

impl Store {
    /// Creates an account.
    pub fn create_account(&mut self, account: &str) -> Result<Account, StoreError> {
        let valid = !account.is_empty()
            && account.len() <= 64
            && account.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !valid {
            return Err(StoreError::BadInput(format!(
                "bad account name {account:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT INTO accounts (name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![account, now()],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("account {account} already exists")));
        }
        let id = tx.last_insert_rowid();
        let ns_label = assign_label(&tx, id)?;
        tx.commit()?;
        Ok(Account { id, name: account.into(), zones: 0, ns_label })
    }

    /// All accounts.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT a.id, a.name, (SELECT count(*) FROM zones z WHERE z.account_id = a.id), a.ns_label
             FROM accounts a ORDER BY a.id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Account {
                id: r.get(0)?,
                name: r.get(1)?,
                zones: r.get::<_, i64>(2)? as u64,
                ns_label: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One account by name.
    pub fn account(&self, account: &str) -> Result<Account, StoreError> {
        self.accounts()?
            .into_iter()
            .find(|a| a.name == account)
            .ok_or_else(|| StoreError::NotFound(format!("account {account} does not exist")))
    }

    /// Who owns the zone; `None` if it does not exist.
    pub fn zone_owner(&self, apex: &[u8]) -> Result<Option<ZoneOwner>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT account_id, verified, verify_checked_at, verify_error FROM zones WHERE name = ?1",
                params![&name::to_lowercase(apex)[..]],
                |r| {
                    Ok(ZoneOwner {
                        account_id: r.get(0)?,
                        verified: r.get(1)?,
                        checked_at: r.get(2)?,
                        error: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Gives an existing zone to an account, verified or not. Whether it
    /// is served may change with it, so the change is journaled.
    pub fn set_zone_owner(&mut self, apex: &[u8], account_id: i64, verified: bool) -> Result<(), StoreError> {
        let key = name::to_lowercase(apex);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let before = served_state(&tx, &key)?.ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        tx.execute(
            "UPDATE zones SET account_id = ?1, verified = ?2 WHERE name = ?3",
            params![account_id, verified, &key[..]],
        )?;
        journal_if_served_changed(&tx, &key, before)?;
        tx.commit()?;
        Ok(())
    }

    /// Records the result of a delegation check. When the verified state
    /// changes, the zone is journaled as replaced: the publisher reloads
    /// it, and so starts or stops serving a customer's zone within
    /// milliseconds of the check.
    pub fn set_verified(
        &mut self,
        apex: &[u8],
        verified: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = name::to_lowercase(apex);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(before) = served_state(&tx, &key)? else {
            // Deleted while it was being checked: nothing to record.
            return Ok(());
        };
        tx.execute(
            "UPDATE zones SET verified = ?1, verify_checked_at = ?2, verify_error = ?3 WHERE name = ?4",
            params![verified, now(), error, &key[..]],
        )?;
        journal_if_served_changed(&tx, &key, before)?;
        tx.commit()?;
        Ok(())
    }

    /// Customers' zones (not the operator's), whose delegation is checked
    /// periodically: apex in original case, whether it is verified now,
    /// and the names its parent must delegate to.
    pub fn customer_zones(&self) -> Result<Vec<CustomerZone>, StoreError> {
        let scheme = self.account_nameserver_scheme()?;
        let mut st = self.conn.prepare(
            "SELECT z.apex, z.verified, a.ns_label FROM zones z JOIN accounts a ON a.id = z.account_id
             WHERE z.account_id != ?1 ORDER BY z.name",
        )?;
        let rows = st.query_map(params![OPERATOR_ACCOUNT], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, bool>(1)?, r.get::<_, Option<String>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (apex, verified, label) = row?;
            let nameservers = match (&scheme, label) {
                (Some(s), Some(l)) => Some(s.names(&l)?),
                // An account without a label cannot be delegated to its
                // own names: nothing verifies it.
                (Some(_), None) => Some(Vec::new()),
                (None, _) => None,
            };
            out.push(CustomerZone { apex: apex.into_boxed_slice(), verified, nameservers });
        }
        Ok(out)
    }

    /// Sets how customer zones are claimed and served (see
    /// [`TenancyPolicy`]). Held by this store only: `serve` sets it on the
    /// stores it opens.
    pub fn set_tenancy(&mut self, policy: TenancyPolicy) {
        self.tenancy = policy;
    }

    /// The tenancy policy in force on this store.
    pub fn tenancy(&self) -> &TenancyPolicy {
        &self.tenancy
    }

    /// Sets (or, with `None`, removes) the scheme of per-account
    /// nameserver names, for every process using this data directory.
    pub fn set_account_nameserver_scheme(
        &mut self,
        scheme: Option<&AccountNameservers>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM settings WHERE key IN ('nameserver_domain', 'nameserver_count')", [])?;
        if let Some(s) = scheme {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('nameserver_domain', ?1), ('nameserver_count', ?2)",
                params![display(&s.domain), s.count.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records whether `serve` answers unverified customer zones
    /// (`[tenancy] serve_unverified`), so that the CLI, which does not
    /// read `serve`'s configuration, can tell which zones are served. It
    /// does not change this store's own behaviour: see
    /// [`Store::set_tenancy`].
    pub fn save_serve_unverified(&mut self, serve: bool) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ('serve_unverified', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![if serve { "true" } else { "false" }],
        )?;
        Ok(())
    }

    /// Whether the last `serve` on this data directory answers unverified
    /// customer zones (false if it never said). A zone of a customer
    /// account ([`ZoneInfo::account_id`](crate::ZoneInfo) not
    /// [`OPERATOR_ACCOUNT`]) that is not verified is served only then.
    pub fn serves_unverified(&self) -> Result<bool, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = 'serve_unverified'", [], |r| r.get(0))
            .optional()?;
        Ok(v.as_deref() == Some("true"))
    }

    /// The scheme of per-account nameserver names, if one is configured.
    pub fn account_nameserver_scheme(&self) -> Result<Option<AccountNameservers>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")?;
        let mut get = |k: &str| st.query_row(params![k], |r| r.get::<_, String>(0)).optional();
        let (Some(domain), Some(count)) = (get("nameserver_domain")?, get("nameserver_count")?) else {
            return Ok(None);
        };
        let domain = name::from_text(&domain, None)
            .map_err(|e| StoreError::BadInput(format!("stored nameserver domain {domain:?}: {e}")))?;
        let count = count
            .parse::<u8>()
            .ok()
            .filter(|c| (1..=AccountNameservers::MAX).contains(c))
            .ok_or_else(|| StoreError::BadInput(format!("stored nameserver count {count:?}")))?;
        Ok(Some(AccountNameservers { domain: name::to_lowercase(&domain), count }))
    }

    /// The account's own nameserver names; `None` when per-account names
    /// are not configured, or for the operator's account, whose zones
    /// use the shared nameservers.
    pub fn account_nameservers(&self, account: &Account) -> Result<Option<Vec<Box<[u8]>>>, StoreError> {
        if account.id == OPERATOR_ACCOUNT || account.ns_label.is_empty() {
            return Ok(None);
        }
        self.account_nameserver_scheme()?.map(|s| s.names(&account.ns_label)).transpose()
    }

    /// Creates a token and returns it with its secret, which is not
    /// stored and cannot be shown again.
    pub fn create_token(&mut self, account_id: i64, scope: Scope) -> Result<(Token, String), StoreError> {
        let secret = format!("{TOKEN_PREFIX}{}", random_hex(32));
        let (zone, prefix): (Option<&[u8]>, Option<&str>) = match &scope {
            Scope::Zone(z) | Scope::Acme(z) => (Some(z), None),
            Scope::Ptr { reverse, prefix } => (Some(reverse), Some(prefix)),
            Scope::Admin | Scope::Account => (None, None),
        };
        self.conn.execute(
            "INSERT INTO tokens (account_id, hash, scope, zone, prefix, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![account_id, &token_hash(&secret)[..], scope.kind(), zone, prefix, now()],
        )?;
        Ok((Token { id: self.conn.last_insert_rowid(), account_id, scope }, secret))
    }

    /// The token with this secret, if it exists.
    pub fn token_by_secret(&self, secret: &str) -> Result<Option<Token>, StoreError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT id, account_id, scope, zone, prefix FROM tokens WHERE hash = ?1")?;
        Ok(st.query_row(params![&token_hash(secret)[..]], token_of).optional()?)
    }

    /// Tokens of an account (all accounts for `None`).
    pub fn tokens(&self, account_id: Option<i64>) -> Result<Vec<Token>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, account_id, scope, zone, prefix FROM tokens
             WHERE ?1 IS NULL OR account_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![account_id], token_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a token; false if there was none with this id (in this
    /// account, when one is given).
    pub fn revoke_token(&mut self, id: i64, account_id: Option<i64>) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM tokens WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)",
            params![id, account_id],
        )?;
        Ok(n > 0)
    }

    /// Creates a TSIG key for a zone and returns its secret.
    pub fn create_tsig_key(
        &mut self,
        key_name: &[u8],
        algorithm: &str,
        apex: &[u8],
        acme_only: bool,
    ) -> Result<Vec<u8>, StoreError> {
        let key = name::to_lowercase(apex);
        let zone_id: i64 = self
            .conn
            .query_row("SELECT id FROM zones WHERE name = ?1", params![&key[..]], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NoSuchZone(display(apex)))?;
        // 256 bits: as long as the longest hash we offer is wide, per
        // RFC 8945 §6's advice to use keys no shorter than the output.
        let mut secret = vec![0u8; 64];
        rand::fill(&mut secret[..]);
        let n = self.conn.execute(
            "INSERT INTO tsig_keys (name, algorithm, secret, zone_id, acme_only, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO NOTHING",
            params![&name::to_lowercase(key_name)[..], algorithm, &secret[..], zone_id, acme_only, now()],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("TSIG key {} already exists", display(key_name))));
        }
        Ok(secret)
    }

    /// The TSIG key with this name (wire form, any case).
    pub fn tsig_key(&self, key_name: &[u8]) -> Result<Option<TsigKey>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT k.name, k.algorithm, k.secret, z.name, k.acme_only
             FROM tsig_keys k JOIN zones z ON z.id = k.zone_id WHERE k.name = ?1",
        )?;
        Ok(st
            .query_row(params![&name::to_lowercase(key_name)[..]], |r| {
                Ok(TsigKey {
                    name: r.get::<_, Vec<u8>>(0)?.into_boxed_slice(),
                    algorithm: r.get(1)?,
                    secret: r.get(2)?,
                    zone: r.get::<_, Vec<u8>>(3)?.into_boxed_slice(),
                    acme_only: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// Deletes a TSIG key; false if there was none.
    pub fn delete_tsig_key(&mut self, key_name: &[u8]) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM tsig_keys WHERE name = ?1", params![&name::to_lowercase(key_name)[..]])?;
        Ok(n > 0)
    }
}

/// Gives account `id` a new random nameserver label and returns it.
/// Eight characters of a 32-letter alphabet without look-alikes (no l,
/// o, 0, 1): 40 bits, so a clash is rare and simply drawn again.
pub(crate) fn assign_label(tx: &rusqlite::Connection, id: i64) -> Result<String, StoreError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    for _ in 0..16 {
        let mut raw = [0u8; 8];
        rand::fill(&mut raw[..]);
        // 256 is a multiple of 32: every letter is equally likely.
        let label: String = raw.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
        let n = tx.execute(
            "UPDATE accounts SET ns_label = ?1 WHERE id = ?2
             AND NOT EXISTS (SELECT 1 FROM accounts WHERE ns_label = ?1)",
            params![label, id],
        )?;
        if n == 1 {
            return Ok(label);
        }
    }
    Err(StoreError::Conflict("no free nameserver label found".into()))
}

/// The zones to serve, with id and apex (original case): all, or the one
/// with this lowercased apex. Customers' zones are left out until they
/// are verified, unless `unverified_too`.
pub(crate) fn served_zones(
    tx: &rusqlite::Connection,
    key: Option<&[u8]>,
    unverified_too: bool,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    // Two statements, so the one-zone lookup is a probe of the name's
    // unique index, not a scan.
    let mut st = match key {
        Some(_) => tx.prepare_cached(
            "SELECT id, apex FROM zones WHERE name = ?1 AND (?2 OR verified OR account_id = ?3)",
        )?,
        None => tx.prepare_cached(
            "SELECT id, apex FROM zones WHERE ?1 IS NULL AND (?2 OR verified OR account_id = ?3)",
        )?,
    };
    let rows =
        st.query_map(params![key, unverified_too, OPERATOR_ACCOUNT], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the zone would be served by a store that serves only verified
/// customer zones, and its id and serial; `None` if it does not exist.
fn served_state(tx: &rusqlite::Connection, key: &[u8]) -> Result<Option<(bool, i64, i64)>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT verified OR account_id = ?2, id, serial FROM zones WHERE name = ?1",
            params![key, OPERATOR_ACCOUNT],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

/// Journals the zone as replaced if whether it is served changed since
/// `before`: the publisher then reloads it, which drops it or adds it.
/// The serial stays: the zone's content did not change.
fn journal_if_served_changed(
    tx: &rusqlite::Connection,
    key: &[u8],
    before: (bool, i64, i64),
) -> Result<(), StoreError> {
    let (was, id, serial) = before;
    if served_state(tx, key)?.is_some_and(|(now_served, ..)| now_served != was) {
        journal(tx, id, key, serial as u32, "replace", None)?;
    }
    Ok(())
}

fn token_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Token> {
    let kind: String = r.get(2)?;
    let zone: Option<Vec<u8>> = r.get(3)?;
    let zone = || zone.clone().unwrap_or_default().into_boxed_slice();
    let scope = match kind.as_str() {
        "admin" => Scope::Admin,
        "account" => Scope::Account,
        "zone" => Scope::Zone(zone()),
        "acme" => Scope::Acme(zone()),
        _ => Scope::Ptr { reverse: zone(), prefix: r.get::<_, Option<String>>(4)?.unwrap_or_default() },
    };
    Ok(Token { id: r.get(0)?, account_id: r.get(1)?, scope })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_secret_only_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let acct = s.create_account("alice").unwrap();
        assert!(s.create_account("alice").is_err());
        assert!(s.create_account("bad name").is_err());
        let zone = name::from_text("example.com.", None).unwrap();
        let (t, secret) = s.create_token(acct.id, Scope::Acme(zone.clone())).unwrap();
        assert!(secret.starts_with(TOKEN_PREFIX));
        assert_eq!(s.token_by_secret(&secret).unwrap(), Some(t.clone()));
        assert_eq!(s.token_by_secret("sgt_00").unwrap(), None);
        assert_eq!(s.token_by_secret(&secret[..secret.len() - 1]).unwrap(), None);
        // Another account cannot revoke it; its own can.
        assert!(!s.revoke_token(t.id, Some(OPERATOR_ACCOUNT)).unwrap());
        assert!(s.revoke_token(t.id, Some(acct.id)).unwrap());
        assert_eq!(s.token_by_secret(&secret).unwrap(), None);
    }

    #[test]
    fn unverified_zones_are_trusted_only_by_their_own_account() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let bob = s.create_account("bob").unwrap().id;
        let apex = name::from_text("alice.test.", None).unwrap();
        let recs = sixgate_dns::zonefile::parse("@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns.x.\n", &apex).unwrap();
        s.create_zone(&apex, recs, alice, false).unwrap();
        let owner = s.zone_owner(&apex).unwrap().unwrap();
        assert!(owner.trusted_by(alice) && !owner.trusted_by(bob));
        s.set_verified(&apex, true, None).unwrap();
        assert!(s.zone_owner(&apex).unwrap().unwrap().trusted_by(bob));
        assert_eq!(
            s.customer_zones().unwrap(),
            vec![CustomerZone { apex, verified: true, nameservers: None }]
        );
    }

    fn new_zone(text: &str) -> (Box<[u8]>, Vec<sixgate_dns::zone::Record>) {
        let apex = name::from_text(text, None).unwrap();
        let recs =
            sixgate_dns::zonefile::parse("@ 60 SOA ns.x. h 1 2 3 4 5\n@ 60 NS ns.x.\n", &apex).unwrap();
        (apex, recs)
    }

    fn claim(s: &mut Store, zone: &str, account: i64, verified: bool) -> Result<crate::Commit, StoreError> {
        let (apex, recs) = new_zone(zone);
        s.create_zone(&apex, recs, account, verified)
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
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let mallory = s.create_account("mallory").unwrap().id;
        claim(&mut s, "shop.corp.example.", alice, false).unwrap();
        let before = s.zones().unwrap();
        let mut shapes = Vec::new();
        for zone in [".", "com.", "co.uk.", "corp.example.", "deep.shop.corp.example.", "shop.corp.example."]
        {
            let e = claim(&mut s, zone, mallory, false).expect_err(zone).to_string();
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
        claim(&mut s, "mallory.example.", mallory, false).unwrap();
        claim(&mut s, "www.mallory.example.", mallory, false).unwrap();
        for zone in [".", "com.", "co.uk.", "corp.example.", "deep.shop.corp.example."] {
            claim(&mut s, zone, OPERATOR_ACCOUNT, true).unwrap_or_else(|e| panic!("{zone}: {e}"));
        }
    }

    fn served(s: &mut Store) -> Vec<String> {
        let mut out = Vec::new();
        s.visit_zones(|apex, _, _| {
            out.push(name::to_text(apex));
            Ok::<_, StoreError>(())
        })
        .unwrap();
        out.sort();
        out
    }

    /// Sitting ducks: a customer's zone is not served until it is
    /// verified, and the change of state reaches a running publisher as a
    /// journaled replacement.
    #[test]
    fn unverified_customer_zones_are_not_served_and_verification_is_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let bob = s.create_account("bob").unwrap().id;
        let (op, recs) = new_zone("op.test.");
        s.create_zone(&op, recs, OPERATOR_ACCOUNT, true).unwrap();
        let (apex, recs) = new_zone("bob.test.");
        let created = s.create_zone(&apex, recs, bob, false).unwrap();
        assert_eq!(served(&mut s), ["op.test."]);
        assert_eq!(s.visit_zone(&apex, |_, _, _| Ok::<_, StoreError>(())).unwrap(), None);
        // Its records are still there for the CLI and the API.
        assert!(s.zone_snapshot(&apex).unwrap().is_some());
        // A check that finds nothing new journals nothing.
        s.set_verified(&apex, false, Some("not delegated")).unwrap();
        assert_eq!(s.journal_since(created.journal_id, 10).unwrap().unwrap(), []);
        s.set_verified(&apex, true, None).unwrap();
        let j = s.journal_since(created.journal_id, 10).unwrap().unwrap();
        assert_eq!(j.len(), 1);
        assert_eq!((j[0].kind.clone(), j[0].serial), (crate::JournalKind::Replace, created.serial));
        assert_eq!(served(&mut s), ["bob.test.", "op.test."]);
        s.set_verified(&apex, true, None).unwrap();
        s.set_verified(&apex, false, Some("delegated elsewhere")).unwrap();
        assert_eq!(s.journal_since(j[0].id, 10).unwrap().unwrap().len(), 1);
        assert_eq!(served(&mut s), ["op.test."]);
        // Handing it to the operator serves it again, journaled too.
        let last = s.journal_since(0, 100).unwrap().unwrap().last().unwrap().id;
        s.set_zone_owner(&apex, OPERATOR_ACCOUNT, false).unwrap();
        assert_eq!(s.journal_since(last, 10).unwrap().unwrap().len(), 1);
        assert_eq!(served(&mut s), ["bob.test.", "op.test."]);
        // A lab store serves everything.
        s.set_zone_owner(&apex, bob, false).unwrap();
        s.set_tenancy(TenancyPolicy { serve_unverified: true, ..Default::default() });
        assert_eq!(served(&mut s), ["bob.test.", "op.test."]);
    }

    #[test]
    fn accounts_get_stable_unique_nameserver_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let a = s.create_account("alice").unwrap();
        let b = s.create_account("Alice").unwrap();
        for l in [&a.ns_label, &b.ns_label] {
            assert_eq!(l.len(), 8, "{l}");
            assert!(l.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{l}");
        }
        assert_ne!(a.ns_label, b.ns_label);
        assert_eq!(s.account("alice").unwrap().ns_label, a.ns_label);
        // No scheme: shared nameservers for everyone.
        assert_eq!(s.account_nameservers(&a).unwrap(), None);
        let scheme =
            AccountNameservers { domain: name::from_text("ns.sixgate.example.", None).unwrap(), count: 2 };
        s.set_account_nameserver_scheme(Some(&scheme)).unwrap();
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.account_nameserver_scheme().unwrap(), Some(scheme));
        let names: Vec<String> =
            s.account_nameservers(&a).unwrap().unwrap().iter().map(|n| name::to_text(n)).collect();
        let l = &a.ns_label;
        assert_eq!(names, [format!("ns1.{l}.ns.sixgate.example."), format!("ns2.{l}.ns.sixgate.example.")]);
        let operator = s.accounts().unwrap().into_iter().find(|x| x.id == OPERATOR_ACCOUNT).unwrap();
        assert_eq!(s.account_nameservers(&operator).unwrap(), None, "the operator uses the shared names");
        let (apex, recs) = new_zone("alice.test.");
        s.create_zone(&apex, recs, a.id, false).unwrap();
        let cz = s.customer_zones().unwrap();
        assert_eq!(cz[0].nameservers.as_ref().map(|n| n.len()), Some(2));
        s.set_account_nameserver_scheme(None).unwrap();
        assert_eq!(s.customer_zones().unwrap()[0].nameservers, None);
        assert!(!s.serves_unverified().unwrap());
        s.save_serve_unverified(true).unwrap();
        assert!(s.serves_unverified().unwrap());
    }

    /// Data from before the claims migration: zones without a canonical
    /// key and accounts without a label get both at the next open.
    #[test]
    fn the_claims_migration_backfills_existing_zones_and_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let mallory = s.create_account("mallory").unwrap().id;
        claim(&mut s, "shop.corp.example.", alice, false).unwrap();
        // As an older version left it.
        s.conn
            .execute_batch(
                "DELETE FROM zone_keys; UPDATE accounts SET ns_label = NULL;
                 INSERT INTO meta (key, value) VALUES ('claims_backfill', 1);",
            )
            .unwrap();
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert!(s.accounts().unwrap().iter().all(|a| a.ns_label.len() == 8));
        assert!(claim(&mut s, "corp.example.", mallory, false).is_err(), "the old zone is found as a child");
        let left: i64 = s
            .conn
            .query_row("SELECT count(*) FROM meta WHERE key = 'claims_backfill'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn acme_challenge_is_the_first_label_and_txt_only() {
        let n = |t| name::from_text(t, None).unwrap();
        let txt = sixgate_dns::rtype::code::TXT;
        assert!(is_acme_challenge(&n("_acme-challenge.example.com."), txt));
        assert!(is_acme_challenge(&n("_ACME-Challenge.www.example.com."), txt));
        assert!(!is_acme_challenge(&n("_acme-challenge.example.com."), sixgate_dns::rtype::code::A));
        assert!(!is_acme_challenge(&n("x._acme-challenge.example.com."), txt));
        assert!(!is_acme_challenge(&n("_acme-challengex.example.com."), txt));
    }

    #[test]
    fn ip6_arpa_names_cover_nibble_prefixes() {
        let n = ip6_arpa("2001:db8:42::/48").unwrap();
        assert_eq!(name::to_text(&n), "2.4.0.0.8.b.d.0.1.0.0.2.ip6.arpa.");
        assert!(ip6_arpa("2001:db8::/47").is_err());
        assert!(ip6_arpa("2001:db8::1/64").is_err());
        assert!(ip6_arpa("192.0.2.0/24").is_err());
    }
}
