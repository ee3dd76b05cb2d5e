//! Accounts, zone ownership and verification, API tokens and TSIG keys.
//!
//! Every zone belongs to an account. Account 1, `operator`, is the
//! operator's own: zones made on the data directory (the CLI) or with an
//! admin token land there and count as verified. A customer's zone stays
//! unverified until its parent delegates it to sixgate; features that trust
//! zone contents across accounts check [`ZoneOwner::trusted_by`].
//!
//! Which zones are served and which delegations verify them is
//! verification.rs; which names an account may claim, claims.rs.
//!
//! Token secrets are random 256-bit values; only their SHA-256 is stored,
//! so a copy of the database does not hand out API access. (A plain hash is
//! enough here: the secret is random, not a password, so there is nothing to
//! guess and no need for a slow KDF.) TSIG secrets must be kept as they are,
//! because the server computes HMACs with them.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use sixgate_dns::name;

use crate::verification::assign_label;
use crate::{Store, StoreError, display, now};

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
#[derive(Clone, PartialEq, Eq)]
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

impl std::fmt::Debug for TsigKey {
    // The secret stays out of logs and panic messages, as it does for
    // sixgate_dns::tsig::Key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &name::to_text(&self.name))
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} octets>", self.secret.len()))
            .field("zone", &name::to_text(&self.zone))
            .field("acme_only", &self.acme_only)
            .finish()
    }
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
/// An account's name, for messages.
pub(crate) fn account_name(conn: &rusqlite::Connection, id: i64) -> Result<String, StoreError> {
    Ok(conn
        .query_row("SELECT name FROM accounts WHERE id = ?1", params![id], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| format!("#{id}")))
}

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
        let rows = st.query_map([], account_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One account by id; `None` if there is none.
    pub fn account_by_id(&self, id: i64) -> Result<Option<Account>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT a.id, a.name, (SELECT count(*) FROM zones z WHERE z.account_id = a.id), a.ns_label
                 FROM accounts a WHERE a.id = ?1",
            )?
            .query_row(params![id], account_of)
            .optional()?)
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

    /// Creates a token and returns it with its secret, which is not
    /// stored and cannot be shown again.
    pub fn create_token(&mut self, account_id: i64, scope: Scope) -> Result<(Token, String), StoreError> {
        if let Some(max) = crate::write::account_limits(&self.conn, account_id)?.quotas.tokens {
            let n: i64 = self.conn.query_row(
                "SELECT count(*) FROM tokens WHERE account_id = ?1",
                params![account_id],
                |r| r.get(0),
            )?;
            if n as u64 >= max {
                return Err(crate::LimitError::new(
                    format!("account {}", account_name(&self.conn, account_id)?),
                    n as u64 + 1,
                    "tokens",
                    "tokens",
                    max,
                )
                .into());
            }
        }
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
        crate::secondaries::refuse_name_of(
            &self.conn,
            &name::to_lowercase(key_name),
            crate::secondaries::KeyKind::Transfer,
        )?;
        // 256 bits: as long as the longest hash we offer is wide, per
        // RFC 8945 §6's advice to use keys no shorter than the output.
        let mut secret = vec![0u8; 64];
        rand::fill(&mut secret[..]);
        let lower = name::to_lowercase(key_name);
        let (stored, sealed) = self.sealer.seal(&crate::sealed::Row::Tsig(&lower), &secret);
        let n = self.conn.execute(
            "INSERT INTO tsig_keys (name, algorithm, secret, sealed, zone_id, acme_only, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(name) DO NOTHING",
            params![&lower[..], algorithm, stored, sealed, zone_id, acme_only, now()],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("TSIG key {} already exists", display(key_name))));
        }
        Ok(secret)
    }

    /// The TSIG key with this name (wire form, any case).
    pub fn tsig_key(&self, key_name: &[u8]) -> Result<Option<TsigKey>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT k.name, k.algorithm, k.secret, z.name, k.acme_only, k.sealed
             FROM tsig_keys k JOIN zones z ON z.id = k.zone_id WHERE k.name = ?1",
        )?;
        let row = st
            .query_row(params![&name::to_lowercase(key_name)[..]], |r| {
                Ok((
                    TsigKey {
                        name: r.get::<_, Vec<u8>>(0)?.into_boxed_slice(),
                        algorithm: r.get(1)?,
                        secret: r.get(2)?,
                        zone: r.get::<_, Vec<u8>>(3)?.into_boxed_slice(),
                        acme_only: r.get(4)?,
                    },
                    r.get::<_, bool>(5)?,
                ))
            })
            .optional()?;
        let Some((mut key, sealed)) = row else { return Ok(None) };
        key.secret = self.sealer.open(
            &crate::sealed::Row::Tsig(&key.name),
            std::mem::take(&mut key.secret),
            sealed,
        )?;
        Ok(Some(key))
    }

    /// Every TSIG key this server knows, UPDATE and transfer keys alike
    /// (a name is one key across both), as name (wire, lowercased),
    /// algorithm and secret, by name.
    pub fn all_tsig_keys(&self) -> Result<Vec<crate::TransferKey>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT name, algorithm, secret, sealed, 0 FROM tsig_keys
             UNION ALL SELECT name, algorithm, secret, sealed, 1 FROM transfer_keys ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                crate::TransferKey {
                    name: r.get::<_, Vec<u8>>(0)?.into_boxed_slice(),
                    algorithm: r.get(1)?,
                    secret: r.get(2)?,
                },
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut key, sealed, transfer) = row?;
            let id = if transfer {
                crate::sealed::Row::Transfer(&key.name)
            } else {
                crate::sealed::Row::Tsig(&key.name)
            };
            key.secret = self.sealer.open(&id, std::mem::take(&mut key.secret), sealed)?;
            out.push(key);
        }
        Ok(out)
    }

    /// Deletes a TSIG key; false if there was none.
    pub fn delete_tsig_key(&mut self, key_name: &[u8]) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM tsig_keys WHERE name = ?1", params![&name::to_lowercase(key_name)[..]])?;
        Ok(n > 0)
    }
}

/// An account from a row of `SELECT id, name, zone count, ns_label`.
fn account_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        name: r.get(1)?,
        zones: r.get::<_, i64>(2)? as u64,
        ns_label: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
    })
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
    use crate::Actor;

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

    /// Regression: `TsigKey` derived Debug, so logging one (or a panic
    /// message holding one) printed the shared secret.
    #[test]
    fn a_tsig_key_debugs_without_its_secret() {
        let key = TsigKey {
            name: name::from_text("k.example.com.", None).unwrap(),
            algorithm: "hmac-sha256".into(),
            secret: b"0123456789abcdef".to_vec(),
            zone: name::from_text("example.com.", None).unwrap(),
            acme_only: false,
        };
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains("k.example.com.") && shown.contains("<16 octets>"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", key.secret)), "{shown}");
    }

    #[test]
    fn unverified_zones_are_trusted_only_by_their_own_account() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let alice = s.create_account("alice").unwrap().id;
        let bob = s.create_account("bob").unwrap().id;
        let apex = name::from_text("alice.test.", None).unwrap();
        let recs = sixgate_dns::zonefile::parse("@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns.x.\n", &apex).unwrap();
        s.by(Actor::Task("test")).create_zone(&apex, recs, alice, false).unwrap();
        let owner = s.zone_owner(&apex).unwrap().unwrap();
        assert!(owner.trusted_by(alice) && !owner.trusted_by(bob));
        s.set_verified(&apex, true, None).unwrap();
        assert!(s.zone_owner(&apex).unwrap().unwrap().trusted_by(bob));
        assert_eq!(
            s.customer_zones().unwrap(),
            vec![crate::CustomerZone { apex, verified: true, nameservers: None }]
        );
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
