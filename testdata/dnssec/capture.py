#!/usr/bin/env python3
"""Captures Knot DNS's answers to DNSSEC queries (DO set, EDNS 1232) for
the signed test zones, for the comparison test in crates/dns
(answer_dnssec_tests.rs).

For each signing mode (nsec, nsec3) starts a private knotd on 127.0.0.1
(an OS-chosen free port) serving dnssec.test.MODE.signed as it is (Knot
does not sign it again), sends each query of QUERIES over UDP and writes
MODE/STEM.query and MODE/STEM.response here. knotd is stopped before the
script exits.

    python3 testdata/dnssec/capture.py
"""
import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APEX = "dnssec.test."

# (file stem, name relative to the apex ("@" for the apex), qtype, DO)
QUERIES = [
    ("apex-soa", "@", 6, True),
    ("apex-ns", "@", 2, True),
    ("apex-mx", "@", 15, True),
    ("apex-dnskey", "@", 48, True),
    ("apex-nsec3param", "@", 51, True),
    ("apex-ds", "@", 43, True),
    ("apex-any", "@", 255, True),
    ("www-a", "www", 1, True),
    ("www-a-mixed-case", "WwW", 1, True),
    ("www-aaaa", "www", 28, True),
    ("www-txt", "www", 16, True),
    ("www-nsec", "www", 47, True),
    ("www-mx-nodata", "www", 15, True),
    ("nope-nxdomain", "nope", 1, True),
    ("zzz-nxdomain", "zzz", 1, True),
    ("below-leaf-nxdomain", "x.a.b.ent", 1, True),
    ("ent-nodata", "ent", 1, True),
    ("ent-deeper-nodata", "b.ent", 28, True),
    ("below-ent-nxdomain", "c.b.ent", 1, True),
    ("ent-leaf-a", "a.b.ent", 1, True),
    ("wildcard-a", "host.w", 1, True),
    ("wildcard-deep-a", "a.b.w", 1, True),
    ("wildcard-txt", "host.w", 16, True),
    ("wildcard-nodata", "host.w", 15, True),
    ("wildcard-literal", "*.w", 1, True),
    ("wildcard-parent-nodata", "w", 1, True),
    ("cname", "alias", 1, True),
    ("cname-qtype", "alias", 5, True),
    ("cname-to-wildcard", "wc", 1, True),
    ("cname-dangling", "dangling", 1, True),
    ("dname", "www.dn", 1, True),
    ("referral-ds", "host.secure", 1, True),
    ("referral-ds-at-cut", "secure", 1, True),
    ("referral-glue-name", "ns1.secure", 1, True),
    ("referral-no-ds", "www.insecure", 28, True),
    ("referral-no-ds-at-cut", "insecure", 2, True),
    ("ds-at-cut", "secure", 43, True),
    ("ds-at-cut-nodata", "insecure", 43, True),
    ("www-rrsig", "www", 46, True),
    ("nsec3-owner-a", "NSEC3:www", 1, True),
    ("nsec3-owner-nsec3", "NSEC3:www", 50, True),
    ("below-nsec3-owner-a", "x.NSEC3:www", 1, True),
    ("no-do-www-a", "www", 1, False),
    ("no-do-nxdomain", "nope", 1, False),
    ("no-do-referral", "host.secure", 1, False),
]


def wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def fqdn(rel):
    """`@` is the apex; `NSEC3:x` is the NSEC3 owner name of x (SHA-1, no
    salt, no extra iterations: the parameters sign.sh uses)."""
    if rel == "@":
        return APEX
    head, _, tail = rel.rpartition("NSEC3:")
    if _:
        digest = hashlib.sha1(wire(f"{tail}.{APEX}")).digest()
        rel = head + base64.b32hexencode(digest).decode().lower()
    return f"{rel}.{APEX}"


def query(ident, name, qtype, do):
    """RD clear, one question, OPT with payload 1232 and DO as given."""
    header = struct.pack(">HHHHHH", ident, 0, 1, 0, 0, 1)
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000 if do else 0, 0)
    return header + wire(name) + struct.pack(">HH", qtype, 1) + opt


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exchange(sock, port, q, knotd):
    deadline = time.time() + 20
    while True:
        if knotd.poll() is not None:
            raise SystemExit(f"knotd exited with {knotd.returncode}")
        sock.sendto(q, ("127.0.0.1", port))
        try:
            r, _ = sock.recvfrom(65535)
            if r[:2] == q[:2]:
                return r
        except socket.timeout:
            pass
        if time.time() > deadline:
            raise SystemExit("knotd did not answer")
        time.sleep(0.1)


def capture(mode):
    out = os.path.join(HERE, mode)
    shutil.rmtree(out, ignore_errors=True)
    os.mkdir(out)
    with tempfile.TemporaryDirectory(prefix="sixgate-dnssec-capture-") as tmp:
        for sub in ("run", "storage"):
            os.mkdir(os.path.join(tmp, sub))
        zonefile = os.path.join(HERE, f"dnssec.test.{mode}.signed")
        port = free_port()
        conf = os.path.join(tmp, "knot.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
    rundir: "{tmp}/run"
    listen: 127.0.0.1@{port}
    identity: ""
    version: ""
    nsid: ""
database:
    storage: "{tmp}/storage"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{tmp}"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
zone:
  - domain: {APEX}
    file: "{zonefile}"
""")
        knotd = subprocess.Popen(["knotd", "-c", conf], stdout=subprocess.DEVNULL)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(0.2)
            # Wait until the zone is loaded: the SOA answers with AA.
            while True:
                r = exchange(sock, port, query(1, APEX, 6, False), knotd)
                if r[2] & 0x04 and r[7] > 0:
                    break
                time.sleep(0.1)
            for i, (stem, rel, qtype, do) in enumerate(QUERIES):
                q = query(0x5A00 + i, fqdn(rel), qtype, do)
                r = exchange(sock, port, q, knotd)
                for ext, data in (("query", q), ("response", r)):
                    with open(os.path.join(out, f"{stem}.{ext}"), "wb") as f:
                        f.write(data)
            print(f"{mode}: {len(QUERIES)} queries")
        finally:
            knotd.terminate()
            knotd.wait(timeout=10)


if __name__ == "__main__":
    for mode in ("nsec", "nsec3"):
        capture(mode)
