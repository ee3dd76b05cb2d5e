//! Backup and restore: every table comes back, and what must be refused
//! is.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rusqlite::types::Value;
use sixgate_dns::name;
use sixgate_dns::zonefile;
use sixgate_dnssec::policy::Policy;

use super::*;
use crate::sealed::Kek;
use crate::{Actor, BackendPrefix, ProxyProtocol, Scope, Secondary, TransferKey};

fn wire(text: &str) -> Box<[u8]> {
    name::from_text(text, None).unwrap()
}

fn zone(s: &mut Store, apex: &str, extra: &str) {
    let apex = wire(apex);
    let text = format!("@ 300 SOA ns hm 1 7200 3600 1209600 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n{extra}");
    s.by(Actor::Task("test")).replace_zone(&apex, zonefile::parse(&text, &apex).unwrap()).unwrap();
}

/// A store with something in every table: zones (one signed, one with
/// an ANAME, one deleted), accounts with limits, prefixes and tokens,
/// TSIG and transfer keys, secondaries, the proxy, a hold, settings.
fn everything(dir: &Path, kek: Option<Arc<Kek>>) -> Store {
    let mut s = Store::open_with_kek(dir, kek).unwrap();
    s.set_serial_scheme(crate::SerialScheme::Increment).unwrap();
    zone(&mut s, "example.com.", "www 300 A 192.0.2.9\n");
    zone(&mut s, "signed.test.", "www 300 AAAA 2001:db8::1\n");
    zone(&mut s, "gone.test.", "");
    s.by(Actor::Task("test")).delete_zone(&wire("gone.test.")).unwrap();
    s.by(Actor::Task("test")).dnssec_enable(&wire("signed.test."), &Policy::default()).unwrap();
    let customer = s.create_account("customer").unwrap();
    s.create_token(customer.id, Scope::Account).unwrap();
    s.create_token(crate::OPERATOR_ACCOUNT, Scope::Admin).unwrap();
    s.set_backend_prefixes(customer.id, &[BackendPrefix::parse("2001:db8:42::/48").unwrap()]).unwrap();
    s.create_tsig_key(&wire("update-key."), "hmac-sha256", &wire("example.com."), false).unwrap();
    let xfr = TransferKey { name: wire("xfr-key."), algorithm: "hmac-sha256".into(), secret: vec![7; 32] };
    s.add_secondary(&Secondary {
        address: "[2001:db8::53]:53".parse().unwrap(),
        key: Some(xfr),
        catalog: false,
        zones: vec![wire("example.com.")],
    })
    .unwrap();
    s.by(Actor::Task("test")).set_proxy_addresses(&["192.0.2.80".parse().unwrap()]).unwrap();
    s.by(Actor::Task("test")).proxy_enable(&wire("app.example.com."), ProxyProtocol::V2, 80, 443).unwrap();
    s.set_hold(&wire("example.com."), Some("test hold")).unwrap();
    s.save_serve_unverified(false).unwrap();
    // What the ANAME refresher and the limits commands write.
    s.conn
        .execute_batch(
            "INSERT INTO aname_state (zone_name, owner, target, addresses, last_success)
             VALUES (X'076578616d706c6503636f6d00', X'03617069076578616d706c6503636f6d00', X'0474617267657400', '192.0.2.7', 1);
             INSERT INTO account_limits (account_id, zones) VALUES (2, 5);",
        )
        .unwrap();
    s
}

/// Every table's rows, in rowid order (or key order without rowid).
fn dump(dir: &Path) -> BTreeMap<String, Vec<Vec<Value>>> {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    let tables: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for (table, sql) in tables {
        let order = if sql.contains("WITHOUT ROWID") { "1" } else { "rowid" };
        let mut st = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {order}")).unwrap();
        let n = st.column_count();
        let rows: Vec<Vec<Value>> = st
            .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(table, rows);
    }
    out
}

#[test]
fn a_backup_restores_every_table_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy, restored) = (dir.path().join("live"), dir.path().join("b.db"), dir.path().join("new"));
    let s = everything(&live, None);
    let summary = backup(&live, &copy).unwrap();
    assert_eq!(summary.schema_version, schema_version());
    assert_eq!((summary.zones, summary.signed_zones, summary.tsig_keys, summary.accounts), (2, 1, 2, 2));
    assert!(summary.dnssec_keys >= 1 && summary.tokens == 2 && summary.proxy_hosts == 1);
    drop(s);
    restore(&copy, &restored, false).unwrap();
    let (before, after) = (dump(&live), dump(&restored));
    // A table added later must be given rows above, or this test does not
    // show that backups carry it.
    let empty: Vec<&String> = before.iter().filter(|(_, rows)| rows.is_empty()).map(|(t, _)| t).collect();
    assert!(empty.is_empty(), "tables without rows in the test store: {empty:?}");
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    for (table, rows) in &before {
        assert_eq!(Some(rows), after.get(table), "table {table}");
    }
    // And it serves: the signed zone's keys sign a change.
    let mut s = Store::open(&restored).unwrap();
    let www = zonefile::parse("new 300 A 192.0.2.3\n", &wire("signed.test.")).unwrap();
    s.by(Actor::Task("test"))
        .apply(&wire("signed.test."), &[sixgate_dns::zone::Change::Add(www[0].clone())])
        .unwrap();
}

#[test]
fn a_backup_holds_what_was_committed_while_another_connection_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy, restored) = (dir.path().join("live"), dir.path().join("b.db"), dir.path().join("new"));
    let mut s = Store::open(&live).unwrap();
    zone(&mut s, "example.com.", "");
    // Committed, still in the WAL: the writer's connection stays open.
    for i in 0..20 {
        let rr = zonefile::parse(&format!("h{i} 60 A 192.0.2.{i}\n"), &wire("example.com.")).unwrap();
        s.by(Actor::Task("test"))
            .apply(&wire("example.com."), &[sixgate_dns::zone::Change::Add(rr[0].clone())])
            .unwrap();
    }
    assert!(fs::metadata(live.join("sixgate.db-wal")).unwrap().len() > 0, "nothing in the WAL");
    backup(&live, &copy).unwrap();
    restore(&copy, &restored, false).unwrap();
    let r = Store::open(&restored).unwrap();
    assert_eq!(r.records(&wire("example.com.")).unwrap().len(), 23);
    assert!(!dir.path().join(".b.db.tmp").exists());
}

#[test]
fn a_store_of_a_newer_schema_is_refused_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy) = (dir.path().join("live"), dir.path().join("b.db"));
    let s = Store::open(&live).unwrap();
    backup(&live, &copy).unwrap();
    let newer = schema_version() + 1;
    s.conn.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [newer]).unwrap();
    drop(s);
    let want = format!("schema version {newer} is newer than this sixgate's ({})", schema_version());
    let e = Store::open(&live).err().unwrap();
    assert!(matches!(e, StoreError::TooNew(..)) && e.to_string().contains(&want), "{e}");
    let e = backup(&live, &dir.path().join("c.db")).unwrap_err();
    assert!(e.to_string().contains(&want), "{e}");
    let conn = Connection::open(&copy).unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [newer]).unwrap();
    drop(conn);
    let e = restore(&copy, &dir.path().join("new"), false).unwrap_err();
    assert!(e.to_string().contains(&want), "{e}");
    assert!(!dir.path().join("new").join(DB_FILE).exists(), "a refused restore installed something");
}

#[test]
fn an_older_backup_is_migrated_forward_on_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy, restored) = (dir.path().join("live"), dir.path().join("b.db"), dir.path().join("new"));
    let mut s = Store::open(&live).unwrap();
    zone(&mut s, "example.com.", "");
    drop(s);
    backup(&live, &copy).unwrap();
    // What a sixgate of schema 14 wrote: no `sealed` columns yet.
    let conn = Connection::open(&copy).unwrap();
    conn.execute_batch(
        "ALTER TABLE tsig_keys DROP COLUMN sealed; ALTER TABLE transfer_keys DROP COLUMN sealed;
         ALTER TABLE dnssec_keys DROP COLUMN sealed; UPDATE meta SET value = 14 WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);
    let summary = restore(&copy, &restored, false).unwrap();
    assert_eq!(summary.schema_version, schema_version());
    let mut s = Store::open(&restored).unwrap();
    s.create_tsig_key(&wire("k."), "hmac-sha256", &wire("example.com."), false).unwrap();
}

#[test]
fn a_restore_does_not_replace_a_store_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy, other) = (dir.path().join("live"), dir.path().join("b.db"), dir.path().join("other"));
    let mut s = Store::open(&live).unwrap();
    zone(&mut s, "example.com.", "");
    drop(s);
    backup(&live, &copy).unwrap();
    let mut o = Store::open(&other).unwrap();
    zone(&mut o, "other.test.", "");
    drop(o);
    let e = restore(&copy, &other, false).unwrap_err();
    assert!(e.to_string().contains("already holds a store"), "{e}");
    assert_eq!(Store::open(&other).unwrap().zones().unwrap()[0].apex, wire("other.test."));
    restore(&copy, &other, true).unwrap();
    let zones = Store::open(&other).unwrap().zones().unwrap();
    assert_eq!(zones.iter().map(|z| z.apex.clone()).collect::<Vec<_>>(), vec![wire("example.com.")]);
}

#[test]
fn a_restore_is_refused_while_a_server_holds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy, target) = (dir.path().join("live"), dir.path().join("b.db"), dir.path().join("t"));
    drop(Store::open(&live).unwrap());
    backup(&live, &copy).unwrap();
    drop(Store::open(&target).unwrap());
    let held = files::lock_shared(&target).unwrap();
    let e = restore(&copy, &target, true).unwrap_err();
    assert!(e.to_string().contains("server is running"), "{e}");
    // A second server may share the directory; a restore may not start it.
    let second = files::lock_shared(&target).unwrap();
    drop((held, second));
    restore(&copy, &target, true).unwrap();
}

#[test]
fn a_file_that_is_not_a_sixgate_store_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let e = restore(&junk, &dir.path().join("a"), false).unwrap_err();
    assert!(e.to_string().contains("not a sixgate backup"), "{e}");
    let other = dir.path().join("other.db");
    Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    let e = restore(&other, &dir.path().join("b"), false).unwrap_err();
    assert!(e.to_string().contains("no schema version"), "{e}");
}

#[test]
fn a_restore_drops_an_admin_token_file_the_restored_store_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy, target) = (dir.path().join("live"), dir.path().join("b.db"), dir.path().join("t"));
    let mut s = Store::open(&live).unwrap();
    let (_, kept) = s.create_token(crate::OPERATOR_ACCOUNT, Scope::Admin).unwrap();
    drop(s);
    backup(&live, &copy).unwrap();
    let mut t = Store::open(&target).unwrap();
    let (_, stale) = t.create_token(crate::OPERATOR_ACCOUNT, Scope::Admin).unwrap();
    drop(t);
    fs::write(target.join(files::ADMIN_TOKEN_FILE), format!("{stale}\n")).unwrap();
    restore(&copy, &target, true).unwrap();
    assert!(!target.join(files::ADMIN_TOKEN_FILE).exists());
    fs::write(target.join(files::ADMIN_TOKEN_FILE), format!("{kept}\n")).unwrap();
    restore(&copy, &target, true).unwrap();
    assert!(target.join(files::ADMIN_TOKEN_FILE).exists());
}

/// The octets of every secret in `s`, read through the store.
fn secrets(s: &Store) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = s.all_tsig_keys().unwrap().into_iter().map(|k| k.secret).collect();
    for (_, pkcs8) in s.dnssec_private_keys(&wire("signed.test.")).unwrap() {
        // The ECDSA P-256 private key inside its PKCS#8 document (RFC 5915
        // ECPrivateKey: version 1, then the 32-octet key).
        let at = pkcs8.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20]).unwrap() + 5;
        out.push(pkcs8[at..at + 32].to_vec());
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_backup_of_a_sealed_store_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (live, copy) = (dir.path().join("live"), dir.path().join("b.db"));
    let kek = Arc::new(Kek::from_bytes(&[9; 32]));
    let s = everything(&live, Some(kek.clone()));
    let all = secrets(&s);
    assert_eq!(all.len(), 3, "two TSIG secrets and one private key");
    let summary = backup(&live, &copy).unwrap();
    assert!(summary.kek_id.is_some());
    let bytes = fs::read(&copy).unwrap();
    for secret in &all {
        assert!(!contains(&bytes, secret), "a secret is in the backup");
    }
    // Restored without the KEK: refused, naming it; with it: the same keys.
    let e = restore(&copy, &dir.path().join("a"), false).unwrap_err();
    assert!(e.to_string().contains("none is configured"), "{e}");
    let target = dir.path().join("b");
    fs::create_dir(&target).unwrap();
    fs::copy(&copy, target.join(DB_FILE)).unwrap();
    let s = Store::open_with_kek(&target, Some(kek)).unwrap();
    assert_eq!(secrets(&s), all);
}
