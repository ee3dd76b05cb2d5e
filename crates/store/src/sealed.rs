//! Secrets at rest: DNSSEC private keys and TSIG secrets sealed with a
//! key-encryption key (KEK).
//!
//! The store needs these secrets as they are (HMAC and signing), so it
//! cannot hash them as it does API tokens. With a KEK configured, each is
//! kept sealed with AES-256-GCM instead; a copy of the database (a backup,
//! a stolen disk) without the KEK reveals none of them.
//!
//! A sealed value is `VERSION || KEK-ID (8) || NONCE (12) || CIPHERTEXT+TAG`.
//! The nonce is random per value: a 96-bit random nonce under one key is
//! safe for far more values than a store holds (NIST SP 800-38D §8.2.2).
//! The associated data names the row (table and the row's identity: a
//! TSIG key's name, a DNSSEC key's zone and public key), so a value copied
//! into another row does not open. The KEK id (a hash of the KEK) lets a
//! wrong KEK be told apart from a damaged value.
//!
//! Each secret column has a `sealed` flag beside it, so a plaintext value
//! is never mistaken for a sealed one (a TSIG secret is random octets that
//! may start like anything). Once a store has been sealed, `meta.kek_id`
//! records the KEK, and the store cannot be opened without it.
//!
//! The KEK is the process's, like its credentials: every part of a server
//! opens the store by its directory (the API, the control tasks, the ANAME
//! refresher), and each must unseal with the same key, so the binary
//! installs it once with [`install`] before the first [`Store::open`](crate::Store::open).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest as _, Sha256};

use crate::StoreError;

/// The first octet of a sealed value.
const VERSION: u8 = 1;
/// Length of the KEK id in a sealed value.
const ID_LEN: usize = 8;
/// Length of the AES-256-GCM tag.
const TAG_LEN: usize = 16;
/// Length of a KEK.
pub const KEK_LEN: usize = 32;
/// The environment variable a KEK may be given in (hex or base64).
pub const KEK_ENV: &str = "SIXGATE_KEK";

/// What can go wrong with a KEK or a sealed value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    /// The text is not a KEK.
    #[error("a key-encryption key is 32 octets in hex (64 digits) or base64; {0}")]
    Malformed(String),
    /// The KEK file could not be read.
    #[error("reading the key-encryption key {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store is sealed and no KEK is configured.
    #[error(
        "the store's secrets are sealed with a key-encryption key (id {0}) and none is configured: \
         set [store] kek_file, --kek-file or SIXGATE_KEK"
    )]
    Missing(String),
    /// The KEK configured is not the store's.
    #[error(
        "the key-encryption key configured (id {given}) is not the one the store is sealed with (id {store})"
    )]
    Wrong {
        /// The id of the KEK given.
        given: String,
        /// The id of the store's KEK.
        store: String,
    },
    /// A sealed value does not open with the right KEK: it was changed or
    /// moved from another row.
    #[error("the sealed secret of {0} does not open: it was altered or copied from another row")]
    Damaged(String),
    /// A sealed value in a store opened without a KEK (another process
    /// sealed it after this one opened the store).
    #[error("the secret of {0} is sealed and this process has no key-encryption key")]
    Sealed(String),
}

/// A key-encryption key.
pub struct Kek {
    key: LessSafeKey,
    id: [u8; ID_LEN],
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself stays out of logs and panics.
        f.debug_struct("Kek").field("id", &self.id_text()).finish_non_exhaustive()
    }
}

impl Kek {
    /// A KEK from its 32 octets.
    pub fn from_bytes(bytes: &[u8; KEK_LEN]) -> Kek {
        let digest = Sha256::new().chain_update(b"sixgate kek id\0").chain_update(bytes).finalize();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(digest.get(..ID_LEN).unwrap_or(&[0; ID_LEN]));
        // AES-256 takes any 32 octets: this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable!("32-octet key"));
        Kek { key: LessSafeKey::new(unbound), id }
    }

    /// A KEK from text: 64 hex digits or the base64 of 32 octets,
    /// surrounding white space ignored.
    pub fn parse(text: &str) -> Result<Kek, KekError> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEK_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..KEK_LEN)
                .map(|i| text.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
        } else {
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        };
        let bytes = bytes.ok_or_else(|| KekError::Malformed("this is neither".into()))?;
        let key: [u8; KEK_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KekError::Malformed(format!("this is {} octets", bytes.len())))?;
        Ok(Kek::from_bytes(&key))
    }

    /// A KEK from a file holding it as text ([`Kek::parse`]) or as its 32
    /// raw octets.
    pub fn read_file(path: &Path) -> Result<Kek, KekError> {
        let bytes =
            std::fs::read(path).map_err(|source| KekError::Read { path: path.to_path_buf(), source })?;
        if let Ok(raw) = <[u8; KEK_LEN]>::try_from(bytes.as_slice()) {
            // 32 octets of text would be too short for either text form.
            return Ok(Kek::from_bytes(&raw));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| KekError::Malformed(format!("{} is neither text nor 32 octets", path.display())))?;
        Kek::parse(&text)
    }

    /// A new random KEK, as the 64 hex digits [`Kek::parse`] reads.
    pub fn generate_text() -> String {
        let mut key = [0u8; KEK_LEN];
        rand::fill(&mut key[..]);
        key.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The KEK's id: not secret, a hash of the key.
    pub fn id(&self) -> i64 {
        i64::from_be_bytes(self.id)
    }

    fn id_text(&self) -> String {
        id_text(self.id())
    }

    /// Seals `plain` for the row named by `aad`.
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let mut out = Vec::with_capacity(1 + ID_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        // Sealing fails only for inputs of more than 64 GiB.
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .unwrap_or_else(|_| unreachable!("a secret is far below the AES-GCM input limit"));
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Opens a value sealed for the row named by `aad`; `what` names the
    /// row in errors.
    fn open(&self, aad: &[u8], sealed: &[u8], what: &dyn Fn() -> String) -> Result<Vec<u8>, StoreError> {
        let damaged = || StoreError::Kek(KekError::Damaged(what()));
        let (&version, rest) = sealed.split_first().ok_or_else(damaged)?;
        let (id, rest) = rest.split_at_checked(ID_LEN).ok_or_else(damaged)?;
        let (nonce, body) = rest.split_at_checked(NONCE_LEN).ok_or_else(damaged)?;
        if version != VERSION {
            return Err(damaged());
        }
        if id != self.id {
            let mut store = [0u8; ID_LEN];
            store.copy_from_slice(id);
            return Err(StoreError::Kek(KekError::Wrong {
                given: self.id_text(),
                store: id_text(i64::from_be_bytes(store)),
            }));
        }
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged())?;
        let mut body = body.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(aad), &mut body).map_err(|_| damaged())?;
        Ok(plain.to_vec())
    }
}

fn id_text(id: i64) -> String {
    format!("{:016x}", id as u64)
}

/// The process's KEK, set once by [`install`].
static PROCESS_KEK: OnceLock<Option<Arc<Kek>>> = OnceLock::new();

/// Sets the KEK every [`Store::open`](crate::Store::open) of this process
/// uses. Only the first call counts; it returns false if a KEK was already
/// installed (or the store already opened without one).
pub fn install(kek: Option<Kek>) -> bool {
    PROCESS_KEK.set(kek.map(Arc::new)).is_ok()
}

/// The process's KEK.
pub(crate) fn process_kek() -> Option<Arc<Kek>> {
    PROCESS_KEK.get_or_init(|| None).clone()
}

/// The tables with a secret column: (table, secret column). Every one has
/// a `sealed` column beside it (schema 15).
pub(crate) const SECRET_COLUMNS: [(&str, &str); 3] =
    [("tsig_keys", "secret"), ("transfer_keys", "secret"), ("dnssec_keys", "private")];

/// A row's identity, the associated data of its sealed secret.
pub(crate) enum Row<'a> {
    /// An UPDATE key, by name (wire form, lowercased).
    Tsig(&'a [u8]),
    /// A transfer key, by name (wire form, lowercased).
    Transfer(&'a [u8]),
    /// A DNSSEC key: its zone's row id and its DNSKEY rdata.
    Dnssec(i64, &'a [u8]),
}

impl Row<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut out = b"sixgate sealed secret\0".to_vec();
        match self {
            Row::Tsig(name) => {
                out.extend_from_slice(b"tsig_keys\0");
                out.extend_from_slice(name);
            }
            Row::Transfer(name) => {
                out.extend_from_slice(b"transfer_keys\0");
                out.extend_from_slice(name);
            }
            Row::Dnssec(zone, dnskey) => {
                out.extend_from_slice(b"dnssec_keys\0");
                out.extend_from_slice(&zone.to_be_bytes());
                out.extend_from_slice(dnskey);
            }
        }
        out
    }

    fn describe(&self) -> String {
        match self {
            Row::Tsig(name) => format!("TSIG key {}", crate::display(name)),
            Row::Transfer(name) => format!("transfer key {}", crate::display(name)),
            Row::Dnssec(zone, _) => format!("a DNSSEC key of zone id {zone}"),
        }
    }
}

/// What seals and opens secrets for one connection: the KEK, if any.
#[derive(Clone, Default)]
pub(crate) struct Sealer(pub(crate) Option<Arc<Kek>>);

impl Sealer {
    /// The value to store for `plain` and its `sealed` flag.
    pub(crate) fn seal(&self, row: &Row<'_>, plain: &[u8]) -> (Vec<u8>, bool) {
        match &self.0 {
            Some(kek) => (kek.seal(&row.aad(), plain), true),
            None => (plain.to_vec(), false),
        }
    }

    /// The secret of a stored value with its `sealed` flag.
    pub(crate) fn open(&self, row: &Row<'_>, stored: Vec<u8>, sealed: bool) -> Result<Vec<u8>, StoreError> {
        if !sealed {
            return Ok(stored);
        }
        match &self.0 {
            Some(kek) => kek.open(&row.aad(), &stored, &|| row.describe()),
            None => Err(StoreError::Kek(KekError::Sealed(row.describe()))),
        }
    }
}

/// At open, after the migrations: checks the KEK against the store's and,
/// with a KEK, seals every plaintext secret in one transaction. Without a
/// KEK, a sealed store does not open: serving without its keys would be
/// worse than not starting.
pub(crate) fn on_open(conn: &mut Connection, sealer: &Sealer) -> Result<(), StoreError> {
    let store_id: Option<i64> =
        conn.query_row("SELECT value FROM meta WHERE key = 'kek_id'", [], |r| r.get(0)).optional()?;
    let Some(kek) = &sealer.0 else {
        if let Some(id) = store_id {
            return Err(StoreError::Kek(KekError::Missing(id_text(id))));
        }
        return Ok(());
    };
    if let Some(id) = store_id
        && id != kek.id()
    {
        return Err(StoreError::Kek(KekError::Wrong { given: kek.id_text(), store: id_text(id) }));
    }
    let mut plain = 0i64;
    for (table, _) in SECRET_COLUMNS {
        plain += conn.query_row(&format!("SELECT count(*) FROM {table} WHERE sealed = 0"), [], |r| {
            r.get::<_, i64>(0)
        })?;
    }
    if store_id.is_some() && plain == 0 {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let sealed = seal_all(&tx, sealer)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('kek_id', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![kek.id()],
    )?;
    tx.commit()?;
    if sealed > 0 {
        // The plaintext is gone from the database's pages (secure_delete)
        // but its old pages are still in the WAL until a checkpoint
        // overwrites them; a reader elsewhere may hold that back, so this
        // is only a best effort, and the WAL is private (files.rs).
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        tracing::info!(secrets = sealed, kek = %kek.id_text(), "sealed the store's plaintext secrets");
    }
    Ok(())
}

/// A `dnssec_keys` row as rekeying reads it: id, zone id, DNSKEY rdata,
/// the stored private half and its `sealed` flag.
type DnssecKeyRow = (i64, i64, Vec<u8>, Vec<u8>, bool);

impl crate::Store {
    /// Seals every secret with `new` instead of the store's key-encryption
    /// key (or plaintext), in one transaction, and makes `new` the store's.
    /// Returns how many secrets were sealed. Processes that still have the
    /// old key can no longer read them: rotate with the servers stopped.
    pub fn rekey(&mut self, new: Arc<Kek>) -> Result<usize, StoreError> {
        let old = self.sealer.clone();
        let next = Sealer(Some(new.clone()));
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut n = 0;
        for (table, transfer) in [("tsig_keys", false), ("transfer_keys", true)] {
            let rows: Vec<(i64, Vec<u8>, Vec<u8>, bool)> = tx
                .prepare(&format!("SELECT id, name, secret, sealed FROM {table}"))?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            for (id, name, stored, sealed) in rows {
                let row = if transfer { Row::Transfer(&name) } else { Row::Tsig(&name) };
                let (value, flag) = next.seal(&row, &old.open(&row, stored, sealed)?);
                tx.execute(
                    &format!("UPDATE {table} SET secret = ?1, sealed = ?2 WHERE id = ?3"),
                    params![value, flag, id],
                )?;
                n += 1;
            }
        }
        let rows: Vec<DnssecKeyRow> = tx
            .prepare("SELECT id, zone_id, dnskey, private, sealed FROM dnssec_keys")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<_, _>>()?;
        for (id, zone_id, dnskey, stored, sealed) in rows {
            let row = Row::Dnssec(zone_id, &dnskey);
            let (value, flag) = next.seal(&row, &old.open(&row, stored, sealed)?);
            tx.execute(
                "UPDATE dnssec_keys SET private = ?1, sealed = ?2 WHERE id = ?3",
                params![value, flag, id],
            )?;
            n += 1;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('kek_id', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![new.id()],
        )?;
        tx.commit()?;
        self.sealer = next;
        let _ = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(n)
    }
}

/// Seals every plaintext secret; returns how many.
fn seal_all(conn: &Connection, sealer: &Sealer) -> Result<usize, StoreError> {
    let mut n = 0;
    for (table, column) in [("tsig_keys", "secret"), ("transfer_keys", "secret")] {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = conn
            .prepare(&format!("SELECT id, name, {column} FROM {table} WHERE sealed = 0"))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (id, name, secret) in rows {
            let row = if table == "tsig_keys" { Row::Tsig(&name) } else { Row::Transfer(&name) };
            let (value, flag) = sealer.seal(&row, &secret);
            conn.execute(
                &format!("UPDATE {table} SET {column} = ?1, sealed = ?2 WHERE id = ?3"),
                params![value, flag, id],
            )?;
            n += 1;
        }
    }
    let rows: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = conn
        .prepare("SELECT id, zone_id, dnskey, private FROM dnssec_keys WHERE sealed = 0")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, zone_id, dnskey, private) in rows {
        let (value, flag) = sealer.seal(&Row::Dnssec(zone_id, &dnskey), &private);
        conn.execute(
            "UPDATE dnssec_keys SET private = ?1, sealed = ?2 WHERE id = ?3",
            params![value, flag, id],
        )?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(fill: u8) -> Kek {
        Kek::from_bytes(&[fill; KEK_LEN])
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_row() {
        let k = kek(1);
        let sealer = Sealer(Some(Arc::new(k)));
        let row = Row::Tsig(b"\x03key\x00");
        let (value, sealed) = sealer.seal(&row, b"secret octets");
        assert!(sealed);
        assert!(!value.windows(6).any(|w| w == b"secret"), "plaintext in the sealed value");
        assert_eq!(sealer.open(&row, value.clone(), true).unwrap(), b"secret octets");
        // The same name in the other key table is another row.
        let e = sealer.open(&Row::Transfer(b"\x03key\x00"), value.clone(), true).unwrap_err();
        assert!(e.to_string().contains("copied from another row"), "{e}");
        let e = sealer.open(&Row::Tsig(b"\x03kez\x00"), value.clone(), true).unwrap_err();
        assert!(e.to_string().contains("copied from another row"), "{e}");
        let mut flipped = value;
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert!(sealer.open(&row, flipped, true).is_err());
    }

    #[test]
    fn two_seals_of_one_secret_differ() {
        let sealer = Sealer(Some(Arc::new(kek(2))));
        let row = Row::Dnssec(7, b"dnskey");
        assert_ne!(sealer.seal(&row, b"x").0, sealer.seal(&row, b"x").0, "a nonce was reused");
    }

    #[test]
    fn a_wrong_kek_is_named_as_such() {
        let row = Row::Tsig(b"\x01k\x00");
        let (value, _) = Sealer(Some(Arc::new(kek(1)))).seal(&row, b"s");
        let e = Sealer(Some(Arc::new(kek(2)))).open(&row, value.clone(), true).unwrap_err();
        assert!(e.to_string().contains("not the one the store is sealed with"), "{e}");
        let e = Sealer(None).open(&row, value, true).unwrap_err();
        assert!(e.to_string().contains("no key-encryption key"), "{e}");
    }

    #[test]
    fn a_kek_is_read_as_hex_base64_or_raw() {
        let hex = "01".repeat(KEK_LEN);
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; KEK_LEN]);
        assert_eq!(Kek::parse(&hex).unwrap().id(), kek(1).id());
        assert_eq!(Kek::parse(&format!(" {b64}\n")).unwrap().id(), kek(1).id());
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [1u8; KEK_LEN]).unwrap();
        assert_eq!(Kek::read_file(&raw).unwrap().id(), kek(1).id());
        assert!(Kek::parse("00ff").is_err());
        assert!(Kek::parse(&"zz".repeat(KEK_LEN)).is_err());
        assert_eq!(Kek::parse(&Kek::generate_text()).map(|_| ()).ok(), Some(()));
        assert_ne!(Kek::generate_text(), Kek::generate_text());
    }

    #[test]
    fn a_kek_is_not_in_its_debug_form() {
        let text = format!("{:?}", kek(0xab));
        assert!(!text.contains("ab, ab") && !text.contains("abab"), "{text}");
    }

    fn wire(text: &str) -> Box<[u8]> {
        sixgate_dns::name::from_text(text, None).unwrap()
    }

    /// A store with a signed zone (KSK and ZSK) and an UPDATE key.
    fn store(dir: &Path, kek: Option<Kek>) -> crate::Store {
        let mut s = crate::Store::open_with_kek(dir, kek.map(Arc::new)).unwrap();
        let apex = wire("example.com.");
        let text = "@ 300 SOA ns hm 1 7200 3600 1209600 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n";
        let records = sixgate_dns::zonefile::parse(text, &apex).unwrap();
        s.by(crate::Actor::Task("test")).replace_zone(&apex, records).unwrap();
        let policy = sixgate_dnssec::policy::Policy {
            layout: sixgate_dnssec::policy::KeyLayout::KskZsk,
            ..Default::default()
        };
        s.by(crate::Actor::Task("test")).dnssec_enable(&apex, &policy).unwrap();
        s.create_tsig_key(&wire("k."), "hmac-sha256", &apex, false).unwrap();
        s
    }

    fn unsealed(s: &crate::Store) -> i64 {
        SECRET_COLUMNS
            .iter()
            .map(|(t, _)| {
                s.conn
                    .query_row(&format!("SELECT count(*) FROM {t} WHERE sealed = 0"), [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .unwrap()
            })
            .sum()
    }

    fn change(s: &mut crate::Store) -> Result<crate::Commit, StoreError> {
        let apex = wire("example.com.");
        let rr = sixgate_dns::zonefile::parse("x 60 A 192.0.2.9\n", &apex).unwrap();
        s.by(crate::Actor::Task("test")).apply(&apex, &[sixgate_dns::zone::Change::Add(rr[0].clone())])
    }

    #[test]
    fn plaintext_secrets_are_sealed_at_the_first_open_with_a_kek() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), None);
        let tsig = s.tsig_key(&wire("k.")).unwrap().unwrap().secret;
        let keys = s.dnssec_private_keys(&wire("example.com.")).unwrap();
        assert_eq!(unsealed(&s), 3);
        drop(s);
        let mut s = crate::Store::open_with_kek(dir.path(), Some(Arc::new(kek(5)))).unwrap();
        assert_eq!(unsealed(&s), 0);
        assert_eq!(s.tsig_key(&wire("k.")).unwrap().unwrap().secret, tsig);
        assert_eq!(s.dnssec_private_keys(&wire("example.com.")).unwrap(), keys);
        change(&mut s).unwrap();
        drop(s);
        let db = std::fs::read(dir.path().join(crate::DB_FILE)).unwrap();
        assert!(
            !db.windows(tsig.len()).any(|w| w == tsig.as_slice()),
            "the TSIG secret is still in the file"
        );
        // Sealed now: without the KEK, or with another, the store does not open.
        let e = crate::Store::open_with_kek(dir.path(), None).err().unwrap();
        assert!(e.to_string().contains("none is configured"), "{e}");
        let e = crate::Store::open_with_kek(dir.path(), Some(Arc::new(kek(6)))).err().unwrap();
        assert!(e.to_string().contains("not the one the store is sealed with"), "{e}");
    }

    #[test]
    fn a_rotated_kek_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), Some(kek(5)));
        let tsig = s.tsig_key(&wire("k.")).unwrap().unwrap().secret;
        let keys = s.dnssec_private_keys(&wire("example.com.")).unwrap();
        assert_eq!(s.rekey(Arc::new(kek(6))).unwrap(), 3);
        change(&mut s).unwrap();
        drop(s);
        let e = crate::Store::open_with_kek(dir.path(), Some(Arc::new(kek(5)))).err().unwrap();
        assert!(e.to_string().contains("not the one the store is sealed with"), "{e}");
        let s = crate::Store::open_with_kek(dir.path(), Some(Arc::new(kek(6)))).unwrap();
        assert_eq!(s.tsig_key(&wire("k.")).unwrap().unwrap().secret, tsig);
        assert_eq!(s.dnssec_private_keys(&wire("example.com.")).unwrap(), keys);
    }

    #[test]
    fn a_sealed_private_key_moved_to_another_row_does_not_sign() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), Some(kek(5)));
        assert_eq!(unsealed(&s), 0);
        change(&mut s).unwrap();
        // Swap the two keys' sealed private halves.
        s.conn
            .execute_batch(
                "UPDATE dnssec_keys SET private = (SELECT private FROM dnssec_keys d WHERE d.id != dnssec_keys.id)",
            )
            .unwrap();
        let e = change(&mut s).unwrap_err();
        assert!(e.to_string().contains("copied from another row"), "{e}");
    }
}
