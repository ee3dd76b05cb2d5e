"""Seeding a sixgate store directly, for when `zone import` is too slow.

`sixgate zone import` of a 1M-name zone can take far longer than the
benchmark's time box (see docs/benchmarks.md). To still measure what the
*server* does with a 1M-name zone (load time, memory, change latency), the
zone is created through the CLI with only its apex records, and the rest of
the records are inserted with SQLite straight into the `records` table, the
way `replace_zone` stores them (wire-form owner, lowercased owner key,
type, TTL, uncompressed wire rdata). This only works on the schema it was
written for; on any other schema version it refuses, and the benchmark
reports the 1M sixgate figures as unavailable.
"""

import socket
import sqlite3

SCHEMA_VERSION = 1
RECORD_COLUMNS = ["id", "zone_id", "owner", "owner_key", "rtype", "ttl", "rdata"]


class SeedError(RuntimeError):
    pass


def wire_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".") if l) + b"\0"


def _rows(path, zone_id, skip_types=("SOA", "NS")):
    """Rows from a zone file written by gen.py: one fully qualified record
    per line, `OWNER TTL IN TYPE RDATA`, A and AAAA only below the apex."""
    with open(path) as f:
        for line in f:
            owner, ttl, _cls, rtype, rdata = line.split(None, 4)
            if rtype == "A":
                yield zone_id, wire_name(owner), wire_name(owner.lower()), 1, int(ttl), socket.inet_pton(
                    socket.AF_INET, rdata.strip())
            elif rtype == "AAAA":
                yield zone_id, wire_name(owner), wire_name(owner.lower()), 28, int(ttl), socket.inet_pton(
                    socket.AF_INET6, rdata.strip())
            elif rtype not in skip_types:
                raise SeedError(f"cannot seed type {rtype}")


def seed(db_path, zone, zfile, apex_names):
    """Adds every A/AAAA record of `zfile` whose owner is not in
    `apex_names` (those came in through the CLI) to the existing `zone`."""
    con = sqlite3.connect(db_path, timeout=30)
    try:
        ver = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        cols = [r[1] for r in con.execute("PRAGMA table_info(records)")]
        if not ver or ver[0] != SCHEMA_VERSION or cols != RECORD_COLUMNS:
            raise SeedError(f"store schema {ver and ver[0]} with records{cols} is not the one this seeder knows")
        row = con.execute("SELECT id FROM zones WHERE name = ?", (wire_name(zone.lower()),)).fetchone()
        if not row:
            raise SeedError(f"zone {zone} is not in the store")
        skip = {wire_name(n.lower()) for n in apex_names}
        with con:
            con.executemany("INSERT INTO records (zone_id, owner, owner_key, rtype, ttl, rdata) VALUES (?,?,?,?,?,?)",
                            (r for r in _rows(zfile, row[0]) if r[2] not in skip))
        return con.execute("SELECT count(*) FROM records WHERE zone_id = ?", (row[0],)).fetchone()[0]
    finally:
        con.close()
