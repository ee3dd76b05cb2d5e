//! Schema and migrations. Each migration runs once, in order, inside a
//! transaction; `meta.schema_version` records how far a database is.

use rusqlite::{Connection, params};

use crate::StoreError;

/// Migrations, in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: zones, records, journal.
    "CREATE TABLE zones (
        id INTEGER PRIMARY KEY,
        name BLOB NOT NULL UNIQUE,      -- apex, wire form, lowercased
        apex BLOB NOT NULL,             -- apex, wire form, original case
        serial INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
        owner BLOB NOT NULL,            -- wire form, original case
        owner_key BLOB NOT NULL,        -- wire form, lowercased
        rtype INTEGER NOT NULL,
        ttl INTEGER NOT NULL,
        rdata BLOB NOT NULL             -- uncompressed wire form
    );
    CREATE INDEX records_owner ON records (zone_id, owner_key, rtype);
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        zone_id INTEGER NOT NULL,
        zone_name BLOB NOT NULL,
        serial INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('diff', 'replace', 'delete')),
        changes BLOB,
        at INTEGER NOT NULL
    );
    CREATE INDEX journal_zone ON journal (zone_name, id);",
    // 2: accounts, zone ownership and verification, API tokens, TSIG keys.
    // Account 1 is the operator's own; zones that existed before belong to
    // it and count as verified.
    "CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    INSERT INTO accounts (id, name, created_at) VALUES (1, 'operator', CAST(strftime('%s', 'now') AS INTEGER));
    ALTER TABLE zones ADD COLUMN account_id INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE zones ADD COLUMN verified INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE zones ADD COLUMN verify_checked_at INTEGER;
    ALTER TABLE zones ADD COLUMN verify_error TEXT;
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        hash BLOB NOT NULL UNIQUE,      -- SHA-256 of the secret
        scope TEXT NOT NULL CHECK (scope IN ('admin', 'account', 'zone', 'acme', 'ptr')),
        zone BLOB,                      -- wire form, lowercased (zone, acme)
        prefix TEXT,                    -- IPv6 prefix (ptr)
        created_at INTEGER NOT NULL
    );
    CREATE TABLE tsig_keys (
        id INTEGER PRIMARY KEY,
        name BLOB NOT NULL UNIQUE,      -- wire form, lowercased
        algorithm TEXT NOT NULL,
        secret BLOB NOT NULL,
        zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
        acme_only INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );",
    // 3: derived records (ANAME addresses) beside the source records, and
    // the state of each ANAME's resolution.
    "ALTER TABLE records ADD COLUMN derived INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE aname_state (
        zone_name BLOB NOT NULL,        -- apex, wire form, lowercased
        owner BLOB NOT NULL,            -- wire form, lowercased
        target BLOB NOT NULL,           -- wire form, as resolved
        addresses TEXT NOT NULL,        -- comma-separated, sorted
        last_success INTEGER,
        last_error TEXT,
        next_refresh INTEGER,
        PRIMARY KEY (zone_name, owner)
    );
    -- The refresher lists ANAMEs every second: keep that off a table scan.
    CREATE INDEX records_aname ON records (zone_id, owner_key) WHERE rtype = 65401 AND derived = 0;",
    // 4: the proxy: its public IPv4 addresses and the hostnames enabled
    // for proxying. Their A records are derived records of kind 2.
    "CREATE TABLE proxy_addresses (addr TEXT PRIMARY KEY);
    CREATE TABLE proxy_hosts (
        name BLOB PRIMARY KEY,          -- wire form, lowercased
        zone_name BLOB NOT NULL,        -- apex, wire form, lowercased
        proxy_protocol TEXT NOT NULL CHECK (proxy_protocol IN ('off', 'v1', 'v2')),
        http_port INTEGER NOT NULL,
        tls_port INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );",
    // 5: managed DNSSEC. The signer's records (RRSIG, NSEC, NSEC3 and the
    // apex's DNSKEY, CDS, CDNSKEY, NSEC3PARAM) are derived records of kind
    // 3. `dnssec_names` holds every name with data of a signed zone in
    // canonical order (sixgate_dns::name::canonical_key), so the signer
    // finds descendants as one range; `dnssec_chain` holds the names of
    // the NSEC or NSEC3 chain by their order key (canonical key or hash),
    // so it finds a name's neighbours with one index probe.
    "CREATE TABLE dnssec_zones (
        zone_id INTEGER PRIMARY KEY,
        policy TEXT NOT NULL,           -- JSON
        state TEXT NOT NULL,            -- JSON: rollover intentions, parent view, alerts
        created_at INTEGER NOT NULL
    );
    CREATE TABLE dnssec_keys (
        id INTEGER PRIMARY KEY,
        zone_id INTEGER NOT NULL,
        algorithm INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        key_tag INTEGER NOT NULL,
        private BLOB NOT NULL,          -- PKCS#8; never logged, exported only on request
        dnskey BLOB NOT NULL,           -- DNSKEY rdata
        state TEXT NOT NULL,            -- JSON: role, timeline
        created_at INTEGER NOT NULL
    );
    CREATE INDEX dnssec_keys_zone ON dnssec_keys (zone_id);
    CREATE TABLE dnssec_names (
        zone_id INTEGER NOT NULL,
        canon BLOB NOT NULL,
        owner BLOB NOT NULL,            -- wire form, original case
        status INTEGER NOT NULL,        -- 0 authoritative, 1 delegation, 3 occluded
        PRIMARY KEY (zone_id, canon)
    ) WITHOUT ROWID;
    CREATE TABLE dnssec_chain (
        zone_id INTEGER NOT NULL,
        key BLOB NOT NULL,              -- canonical key (NSEC) or hash (NSEC3)
        owner BLOB NOT NULL,            -- the name it stands for, original case
        PRIMARY KEY (zone_id, key)
    ) WITHOUT ROWID;
    -- Refreshing finds signatures by expiration (rdata octets 9..12).
    CREATE INDEX records_rrsig_expiry ON records (zone_id, substr(rdata, 9, 4)) WHERE rtype = 46;",
    // 6: the one write path. The journal records who made each change
    // (the audit log) and links each entry to its zone's previous one, so
    // a reader finds a zone's gap after pruning. Zones count their own
    // records and names for the limits and quotas. A deleted zone's last
    // serial is kept, so a zone made again under that name never goes
    // back (RFC 1982). Per-account limits, where the operator set them.
    // Zones the publisher could not build, with the reason (held).
    "ALTER TABLE journal ADD COLUMN actor TEXT;
    ALTER TABLE journal ADD COLUMN prev_id INTEGER;
    ALTER TABLE zones ADD COLUMN records INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE zones ADD COLUMN names INTEGER NOT NULL DEFAULT 0;
    UPDATE zones SET
        records = (SELECT count(*) FROM records r WHERE r.zone_id = zones.id AND r.derived = 0),
        names = (SELECT count(DISTINCT owner_key) FROM records r WHERE r.zone_id = zones.id AND r.derived = 0);
    CREATE TABLE zone_serials (
        name BLOB PRIMARY KEY,          -- apex, wire form, lowercased
        serial INTEGER NOT NULL         -- the serial when the zone was deleted
    ) WITHOUT ROWID;
    CREATE TABLE account_limits (
        account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        records_per_rrset INTEGER,
        rrsets_per_name INTEGER,
        names_per_zone INTEGER,
        zones INTEGER,
        records INTEGER,
        tokens INTEGER
    );
    CREATE TABLE zone_holds (
        name BLOB PRIMARY KEY,          -- apex, wire form, lowercased
        reason TEXT NOT NULL,
        since INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 7 (the number reserved for it; 6 is the write path's): zone claims
    // and per-account nameserver names (claims.rs, verification.rs).
    // `zone_keys` holds each zone's canonical key, so the zones below a
    // name are one index range; a trigger drops a deleted zone's key.
    // `accounts.ns_label` is the account's label in its nameserver names
    // (ns1.LABEL.DOMAIN). `settings` keeps values `serve` configures that
    // the CLI also needs (the nameserver scheme, serve_unverified). The
    // flag in `meta` has claims::backfill fill the keys and labels of
    // existing rows, in this transaction.
    "CREATE TABLE zone_keys (
        name BLOB PRIMARY KEY,          -- apex, wire form, lowercased (zones.name)
        canon BLOB NOT NULL             -- sixgate_dns::name::canonical_key of it
    );
    CREATE UNIQUE INDEX zone_keys_canon ON zone_keys (canon);
    CREATE TRIGGER zone_keys_gone AFTER DELETE ON zones BEGIN
        DELETE FROM zone_keys WHERE name = old.name;
    END;
    ALTER TABLE accounts ADD COLUMN ns_label TEXT;
    CREATE UNIQUE INDEX accounts_ns_label ON accounts (ns_label);
    -- An account's zones (its zone count, its customer zones) without a scan.
    CREATE INDEX zones_account ON zones (account_id);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('claims_backfill', 1);",
    // 8: backend prefixes per account (prefixes.rs): where the proxy may
    // send an account's hostnames. Text as `BackendPrefix` writes it.
    "CREATE TABLE account_prefixes (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        prefix TEXT NOT NULL,           -- ADDR/LEN, canonical
        PRIMARY KEY (account_id, prefix)
    ) WITHOUT ROWID;",
    // 9: the proxy's routes generation (proxy.rs). Every write to what
    // the route table is built from bumps it in its own transaction, by
    // trigger, so no write path can forget to: enabled hostnames and their
    // options, a zone's coming and going, its verification and owner, and
    // accounts' backend prefixes. Record changes do not: routes read the
    // AAAA records from the served snapshot.
    "INSERT INTO meta (key, value) VALUES ('routes_generation', 0);
    CREATE TRIGGER routes_host_added AFTER INSERT ON proxy_hosts BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_host_changed AFTER UPDATE ON proxy_hosts
    WHEN old.name IS NOT new.name OR old.zone_name IS NOT new.zone_name
        OR old.proxy_protocol IS NOT new.proxy_protocol
        OR old.http_port IS NOT new.http_port OR old.tls_port IS NOT new.tls_port BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_host_removed AFTER DELETE ON proxy_hosts BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_zone_added AFTER INSERT ON zones BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_zone_changed AFTER UPDATE OF verified, account_id ON zones
    WHEN old.verified IS NOT new.verified OR old.account_id IS NOT new.account_id BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_zone_removed AFTER DELETE ON zones BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_prefix_added AFTER INSERT ON account_prefixes BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_prefix_changed AFTER UPDATE ON account_prefixes BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;
    CREATE TRIGGER routes_prefix_removed AFTER DELETE ON account_prefixes BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'routes_generation';
    END;",
    // 10: secondaries and their transfer keys (secondaries.rs). A transfer
    // key only reads, so it is not bound to a zone as an UPDATE key is;
    // a secondary's zones are names, so that one named before its zone
    // exists is carried once it does.
    "CREATE TABLE transfer_keys (
        id INTEGER PRIMARY KEY,
        name BLOB NOT NULL UNIQUE,      -- wire form, lowercased
        algorithm TEXT NOT NULL,
        secret BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE secondaries (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,   -- ADDR:PORT as SocketAddr prints it
        key_id INTEGER REFERENCES transfer_keys(id) ON DELETE RESTRICT,
        catalog INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE secondary_zones (
        secondary_id INTEGER NOT NULL REFERENCES secondaries(id) ON DELETE CASCADE,
        zone BLOB NOT NULL,             -- wire form, lowercased
        PRIMARY KEY (secondary_id, zone)
    );
    -- The catalog zone's serial moves with its membership, by trigger like
    -- the routes generation: a zone's coming and going and its
    -- verification. Each zone gets the serial of its creation as its
    -- member id, unique to that incarnation, so a zone deleted and made
    -- again is a new member (RFC 9432 §5.4).
    INSERT INTO meta (key, value) VALUES ('catalog_serial', 1);
    ALTER TABLE zones ADD COLUMN member_id INTEGER NOT NULL DEFAULT 0;
    UPDATE zones SET member_id = id;
    UPDATE meta SET value = value + (SELECT coalesce(max(id), 0) FROM zones) WHERE key = 'catalog_serial';
    CREATE TRIGGER catalog_zone_added AFTER INSERT ON zones BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'catalog_serial';
        UPDATE zones SET member_id = (SELECT value FROM meta WHERE key = 'catalog_serial') WHERE id = new.id;
    END;
    CREATE TRIGGER catalog_zone_changed AFTER UPDATE OF verified ON zones
    WHEN old.verified IS NOT new.verified BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'catalog_serial';
    END;
    CREATE TRIGGER catalog_zone_removed AFTER DELETE ON zones BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'catalog_serial';
    END;",
    // 11: the secondaries generation moves with every change to the
    // secondaries, their zones and the transfer keys, by trigger, so
    // that a running server (the transfer access list, NOTIFY) notices
    // the CLI's changes with one read.
    "INSERT INTO meta (key, value) VALUES ('secondaries_generation', 1);
    CREATE TRIGGER secondaries_added AFTER INSERT ON secondaries BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER secondaries_changed AFTER UPDATE ON secondaries BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER secondaries_removed AFTER DELETE ON secondaries BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER secondary_zones_added AFTER INSERT ON secondary_zones BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER secondary_zones_removed AFTER DELETE ON secondary_zones BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER transfer_keys_added AFTER INSERT ON transfer_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER transfer_keys_changed AFTER UPDATE ON transfer_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER transfer_keys_removed AFTER DELETE ON transfer_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;",
    // 12: member ids are random, not the catalog serial of the zone's
    // creation. The catalog zone answers queries like any zone, and a
    // member's PTR at a guessable `<id>.zones.` name would let anyone
    // list every customer zone one query at a time; 64 random bits
    // cannot be guessed (RFC 9432 §4.1 leaves the id opaque). Existing
    // ids change once, before any secondary could have followed them.
    "DROP TRIGGER catalog_zone_added;
    CREATE TRIGGER catalog_zone_added AFTER INSERT ON zones BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'catalog_serial';
        UPDATE zones SET member_id = random() WHERE id = new.id;
    END;
    UPDATE zones SET member_id = random();
    UPDATE meta SET value = value + 1 WHERE key = 'catalog_serial';",
    // 13: a catalog member's group is its zone's account (RFC 9432
    // §4.4.2, secondaries.rs), so a zone changing hands changes the
    // catalog, and its serial moves for the secondaries to see it.
    "CREATE TRIGGER catalog_zone_regrouped AFTER UPDATE OF account_id ON zones
    WHEN old.account_id IS NOT new.account_id BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'catalog_serial';
    END;",
    // 14: the UPDATE keys move the secondaries generation too: a running
    // server answers queries signed with any key it knows (RFC 8945
    // §5.3), from one snapshot of the keys.
    "CREATE TRIGGER tsig_keys_added AFTER INSERT ON tsig_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER tsig_keys_changed AFTER UPDATE ON tsig_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;
    CREATE TRIGGER tsig_keys_removed AFTER DELETE ON tsig_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE key = 'secondaries_generation';
    END;",
    // 15: secrets at rest (sealed.rs). Each secret column gets a flag
    // saying whether its value is sealed with the key-encryption key, so a
    // plaintext secret is never taken for a sealed one. A sixgate older
    // than this refuses the store (it would read sealed values as keys).
    "ALTER TABLE tsig_keys ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE transfer_keys ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE dnssec_keys ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;",
];

/// The schema version this sixgate writes: the number of migrations.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to the latest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 =
        tx.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap_or(0);
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(StoreError::TooNew(version, latest));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![i as i64 + 1],
        )?;
    }
    crate::claims::backfill(&tx)?;
    tx.commit()?;
    Ok(())
}
