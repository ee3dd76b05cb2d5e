#!/usr/bin/env python3
"""Captures real Knot DNS answers to the A/AAAA queries that
`sixgate_dns::lookup::query` builds, for crates/dns/src/lookup_tests.rs.

Starts a private knotd on 127.0.0.1 (an OS-chosen free port) serving
capture.test., whose `www` is a two-hop CNAME chain (`www` -> `edge` ->
`host`) to two A records and one AAAA record, with a different TTL at each
step (Knot serves one TTL per RRset, here 60, and writes the
mixed-case CNAME target in lowercase). Sends each
query over UDP and writes `NAME-TYPE.query` and `NAME-TYPE.response` here.
knotd is stopped before the script exits.

    python3 testdata/lookup/capture.py
"""
import os
import socket
import struct
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ID = 0x5A5A

ZONE = """\
$ORIGIN capture.test.
$TTL 3600
@       SOA   ns hostmaster 1 3600 900 604800 300
@       NS    ns
ns      A     127.0.0.1
www     600   CNAME edge
edge    120   CNAME Host.Capture.Test.
host    300   A     192.0.2.11
host    60    A     192.0.2.10
host    300   AAAA  2001:db8::10
"""

# (file stem, name, qtype)
QUERIES = [("www-a", "www.capture.test.", 1), ("www-aaaa", "www.capture.test.", 28)]


def wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(ident, name, qtype):
    """The same octets as `lookup::query`: RD, one question, OPT 1232."""
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 1)
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return header + wire(name) + struct.pack(">HH", qtype, 1) + opt


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    with tempfile.TemporaryDirectory(prefix="sixgate-lookup-capture-") as tmp:
        for sub in ("run", "storage"):
            os.mkdir(os.path.join(tmp, sub))
        with open(os.path.join(tmp, "capture.test.zone"), "w") as f:
            f.write(ZONE)
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
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: capture.test.
    file: "{tmp}/capture.test.zone"
""")
        knotd = subprocess.Popen(["knotd", "-c", conf], stdout=subprocess.DEVNULL)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(0.2)
            for stem, name, qtype in QUERIES:
                q = query(ID, name, qtype)
                deadline = time.time() + 20
                while True:
                    if knotd.poll() is not None:
                        raise SystemExit(f"knotd exited with {knotd.returncode}")
                    sock.sendto(q, ("127.0.0.1", port))
                    try:
                        r, _ = sock.recvfrom(65535)
                        if r[3] & 0x0F == 0 and r[7] > 0:  # NOERROR with answers: zone loaded
                            break
                    except socket.timeout:
                        pass
                    if time.time() > deadline:
                        raise SystemExit("knotd did not answer")
                    time.sleep(0.1)
                for ext, data in (("query", q), ("response", r)):
                    with open(os.path.join(HERE, f"{stem}.{ext}"), "wb") as f:
                        f.write(data)
                print(f"{stem}: {len(r)} octets")
        finally:
            knotd.terminate()
            knotd.wait(timeout=10)


if __name__ == "__main__":
    main()
