#!/usr/bin/env python3
"""Captures zone transfers between real `kdig` and a real `knotd` (Knot DNS).

Writes the test vectors under testdata/xfr/ that crates/dns loads with
include_bytes!:

- knot-axfr.request, knot-axfr.response: kdig's AXFR request signed with
  TSIG (HMAC-SHA256), and knotd's signed answer for version 4 as TCP
  carried it (each message after its two-octet length);
- knot-ixfr.request, knot-ixfr.response: the same for IXFR from serial 1,
  which knotd answers from its journal with three versions;
- kdig-axfr-unsigned.request, kdig-ixfr-edns.request: kdig's requests
  without TSIG, the IXFR one with EDNS.

knotd listens on a free loopback port; a relay in this script sits
between kdig and knotd and records what passes. TSIG vectors carry the
time they were signed, so re-running this script changes them and the
tests' clocks with them.

    python3 testdata/xfr/capture.py
"""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# A test-only secret; it protects nothing.
KEY_NAME = "xfr-test-key."
SECRET = "c2l4Z2F0ZSB4ZnIgdGVzdCBrZXksIGhtYWMtc2hhMjU2IQ=="
KEY = f"hmac-sha256:{KEY_NAME}:{SECRET}"
ZONE = "example.test."


def zone_text(version):
    """The zone at serial `version` (1 to 4), each a few changes after
    the one before, and large enough that an AXFR takes several messages.
    crates/dns/src/xfr/knot_tests.rs writes the same text."""
    lines = [
        "$ORIGIN example.test.",
        "$TTL 3600",
        f"@ 3600 SOA ns1 hostmaster {version} 7200 3600 1209600 300",
        "@ NS ns1",
        "@ NS ns2.example.net.",
        "@ MX 10 mail",
        "ns1 A 192.0.2.1",
        "mail A 192.0.2.25",
        "www CNAME host0",
        "sub NS ns.sub",
        "ns.sub A 192.0.2.53",
    ]
    removed = {2: {7}, 3: {8, 9}, 4: {10}}
    for i in range(600):
        if any(i in removed[v] for v in removed if v <= version):
            continue
        lines.append(f"host{i} 300 A 192.0.2.{i % 250 + 1}")
        lines.append(f'host{i} 300 TXT "record number {i} of the transfer test zone"')
    for v in range(2, version + 1):
        lines.append(f"v{v} 600 AAAA 2001:db8::{v}")
    if version >= 3:
        # A TTL change of a whole RRset: deleted and added again.
        lines = [l.replace("mail A", "mail 60 A") for l in lines]
    return "\n".join(lines) + "\n"


def free_port():
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def soa_serial(port):
    out = subprocess.run(["kdig", "@127.0.0.1", "-p", str(port), "+short", "+timeout=1", "+retry=0",
                          ZONE, "SOA"], capture_output=True, text=True, timeout=10).stdout.split()
    return int(out[2]) if len(out) >= 3 else None


def wait_serial(port, serial):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if soa_serial(port) == serial:
            return
        time.sleep(0.1)
    raise SystemExit(f"knotd never served serial {serial}")


def relay(upstream_port, args):
    """Runs kdig through a relay to knotd; returns (request, response) octets."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    got = {"up": b"", "down": b""}

    def pump(src, dst, key):
        while True:
            data = src.recv(65536)
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            got[key] += data
            dst.sendall(data)

    def serve():
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", upstream_port))
        a = threading.Thread(target=pump, args=(client, server, "up"))
        b = threading.Thread(target=pump, args=(server, client, "down"))
        a.start()
        b.start()
        a.join()
        b.join()
        client.close()
        server.close()

    t = threading.Thread(target=serve)
    t.start()
    r = subprocess.run(["kdig", "@127.0.0.1", "-p", str(port), "+tcp", "+timeout=5", "+retry=0"] + args,
                       capture_output=True, text=True, timeout=30)
    t.join(timeout=10)
    listener.close()
    if r.returncode != 0:
        raise SystemExit(f"kdig {args} failed: {r.stdout}{r.stderr}")
    up = got["up"]
    length = int.from_bytes(up[:2], "big")
    return up[2:2 + length], got["down"]


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    print(name, len(data), "octets")


def main():
    work = tempfile.mkdtemp(prefix="sixgate-xfr-capture-")
    try:
        port = free_port()
        zonefile = os.path.join(work, "example.test.zone")
        with open(zonefile, "w") as f:
            f.write(zone_text(1))
        conf = os.path.join(work, "knot.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
    rundir: "{work}"
    listen: 127.0.0.1@{port}
    background-workers: 1
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {SECRET}
acl:
  - id: transfer
    address: 127.0.0.1
    key: {KEY_NAME}
    action: transfer
  - id: plain
    address: 127.0.0.1
    action: transfer
database:
    storage: "{work}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{work}"
    zonefile-load: difference
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
    acl: [transfer, plain]
zone:
  - domain: "{ZONE}"
    file: "{zonefile}"
""")
        knotd = subprocess.Popen(["knotd", "-c", conf], stdout=subprocess.DEVNULL)
        try:
            wait_serial(port, 1)
            for v in (2, 3, 4):
                with open(zonefile, "w") as f:
                    f.write(zone_text(v))
                subprocess.run(["knotc", "-c", conf, "zone-reload", ZONE], check=True,
                               capture_output=True, timeout=30)
                wait_serial(port, v)
            req, resp = relay(port, ["-y", KEY, ZONE, "AXFR"])
            write("knot-axfr.request", req)
            write("knot-axfr.response", resp)
            req, resp = relay(port, ["-y", KEY, ZONE, "IXFR=1"])
            write("knot-ixfr.request", req)
            write("knot-ixfr.response", resp)
            req, _ = relay(port, [ZONE, "AXFR"])
            write("kdig-axfr-unsigned.request", req)
            req, _ = relay(port, ["+edns", ZONE, "IXFR=3"])
            write("kdig-ixfr-edns.request", req)
        finally:
            knotd.terminate()
            knotd.wait(timeout=10)
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
