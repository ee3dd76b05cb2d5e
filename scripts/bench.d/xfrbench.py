"""`scripts/bench xfr`: sixgate as a primary against Knot as a primary.

Each primary is followed by its own private Knot secondary, configured
alike (journal on, NOTIFY accepted from the primary), on loopback:

1. write-to-secondary: N writes, one at a time and `--interval` apart
   (1.1 s by default: Knot as a secondary refreshes a zone at most once
   per second of its clock, so writes closer together measure that; 0
   writes back to back), each timed from the first byte of the write
   until the SECONDARY answers the new address over UDP
   (httpapi.write_to_served, pointed at the secondary's port). sixgate is
   written through its HTTP API (`PUT .../rrsets/NAME/A`), Knot by an RFC
   2136 UPDATE over TCP, the write path Knot has; either way the write is
   acknowledged once committed, and the primary then sends NOTIFY and
   serves IXFR. p50 and p99 per primary, and the ratio.
2. AXFR of a zone of `--axfr-records` A records (1M by default), in
   alternating rounds: (a) a raw client that reads the whole response
   (length prefixes and ANCOUNT only, so the client costs little) and (b)
   a fresh Knot secondary that loads the zone by AXFR (the time until it
   answers the zone's SOA with AA). For each: the wall time, the
   primary's CPU seconds (utime+stime) during the transfer, and its
   resident memory, sampled every 10 ms: before the transfer and the peak
   during it (a streamed transfer adds little; a transfer built in memory
   adds the zone's size again).

Ratios are Knot/sixgate for times, CPU and memory, so above 1 means sixgate
is better.
"""

import os
import socket
import statistics
import struct
import subprocess
import threading
import time

import dnsq
import gen
import httpapi
import servers

ZONE = "bench.test."
BIG = "bench1m.test."
PRIMARIES = ("sixgate", "knot")


def say(msg):
    print(msg, flush=True)


# --- Knot configurations -------------------------------------------------------

# What both Knots' configurations start with: workers, control socket,
# database and logging alike.
KNOT_HEAD = """\
server:
    rundir: "{run}"
    pidfile: "{run}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: {workers}
    tcp-workers: {workers}
    background-workers: 1
control:
    listen: "{run}/knot.sock"
database:
    storage: "{run}/db"
log:
  - target: stderr
    any: info
"""

KNOT_PRIMARY = KNOT_HEAD + """\
remote:
  - id: secondary
    address: 127.0.0.1@{secondary_port}
acl:
  - id: local
    address: 127.0.0.1
    action: [transfer, update]
template:
  - id: default
    storage: "{zdir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: off
    acl: local
zone:
  - domain: {zone}
    file: "{zfile}"
{notify}"""

KNOT_SECONDARY = KNOT_HEAD + """\
remote:
  - id: primary
    address: 127.0.0.1@{primary_port}
acl:
  - id: notify
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "{run}"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    semantic-checks: off
zone:
  - domain: {zone}
    master: primary
    acl: notify
"""


def knot_primary(procs, tmp, tag, zone, zfile, workers, cpus, secondary_port=None):
    run = os.path.join(tmp, f"knot-primary-{tag}")
    os.makedirs(os.path.join(run, "db"), exist_ok=True)
    port = servers.free_port()
    notify = "    notify: secondary\n" if secondary_port else ""
    conf = os.path.join(run, "knot.conf")
    with open(conf, "w") as f:
        f.write(KNOT_PRIMARY.format(run=run, port=port, workers=workers, zdir=os.path.dirname(zfile), zone=zone,
                                    zfile=zfile, secondary_port=secondary_port or 9, notify=notify))
    log = os.path.join(run, "knot.log")
    p = procs.spawn(["knotd", "-c", conf], log, cpus=cpus)
    srv = servers.Server("knot", p, port, time.monotonic())
    srv.log = log
    return srv


def knot_secondary(procs, tmp, tag, zone, primary_port, cpus, port=None):
    run = os.path.join(tmp, f"knot-secondary-{tag}")
    os.makedirs(os.path.join(run, "db"), exist_ok=True)
    port = port or servers.free_port()
    conf = os.path.join(run, "knot.conf")
    with open(conf, "w") as f:
        f.write(KNOT_SECONDARY.format(run=run, port=port, workers=1, zone=zone, primary_port=primary_port))
    log = os.path.join(run, "knot.log")
    p = procs.spawn(["knotd", "-c", conf], log, cpus=cpus)
    srv = servers.Server("knot-secondary", p, port, time.monotonic())
    srv.log = log
    return srv


def wait_soa(srv, zone, deadline, serial=None):
    """Polls `srv` until it answers `zone` SOA with AA (and `serial`, when
    given); the monotonic time it did, or None at `deadline`."""
    while time.monotonic() < deadline:
        if not srv.alive():
            return None
        r = dnsq.query(srv.port, zone, "SOA", timeout=0.2, tries=1)
        if r is not None and r["rcode"] == "NOERROR" and r["aa"] and r["answer"]:
            if serial is None or int(r["answer"][0][3].split()[2]) == serial:
                return time.monotonic()
        time.sleep(0.002)
    return None


def soa_serial(port, zone):
    r = dnsq.query(port, zone, "SOA")
    if r is None or not r["answer"]:
        return None
    return int(r["answer"][0][3].split()[2])


# --- sixgate ---------------------------------------------------------------------

def sixgate_primary(procs, binary, tmp, tag, zone, zfile, workers, cpus, secondary_port):
    """A sixgate data directory with the zone and one secondary at
    127.0.0.1:`secondary_port` (which also lets 127.0.0.1 transfer), serving
    DNS and the API; its token."""
    data = os.path.join(tmp, f"sixgate-{tag}")
    servers.sixgate_import(binary, data, zone, zfile)
    r = subprocess.run([binary, "secondary", "add", f"127.0.0.1:{secondary_port}", "--zone", zone, "--data", data],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise servers.StartError(f"sixgate secondary add: {r.stdout}{r.stderr}".strip())
    r = subprocess.run([binary, "token", "create", "--data", data], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise servers.StartError(f"sixgate token create: {r.stdout}{r.stderr}".strip())
    key = r.stdout.strip().splitlines()[-1]
    srv, log = servers.start_sixgate(procs, binary, data, workers, tmp, cpus, tag, api=True)
    srv.key, srv.log = key, log
    return srv


# --- the raw AXFR client -----------------------------------------------------------

def _question(zone, qtype):
    return b"".join(bytes([len(label)]) + label.encode() for label in zone.rstrip(".").split(".")) + b"\0" + \
        struct.pack("!HH", qtype, 1)


def raw_axfr(port, zone, expect, timeout=600):
    """Reads an AXFR of `zone` over TCP: {"seconds", "messages", "records",
    "bytes"}. Only each message's length and ANCOUNT are read; the transfer
    ends when `expect` records (the zone's records plus the closing SOA)
    have come, or the server closes."""
    msg = struct.pack("!HHHHHH", 0x5AFE, 0, 1, 0, 0, 0) + _question(zone, 252)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(msg)) + msg)
        f = s.makefile("rb", buffering=1 << 20)
        messages = records = total = 0
        while records < expect:
            head = f.read(2)
            if len(head) < 2:
                break
            n = struct.unpack("!H", head)[0]
            body = f.read(n)
            if len(body) < n or n < 12:
                break
            rcode = body[3] & 0x0F
            if rcode:
                raise RuntimeError(f"AXFR answered rcode {rcode}")
            messages += 1
            records += struct.unpack("!H", body[6:8])[0]
            total += n + 2
    return {"seconds": time.monotonic() - t0, "messages": messages, "records": records, "bytes": total}


class RssSampler:
    """Samples a process's VmRSS every 10 ms in a thread: the peak."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.base = servers.mem(pid)[0]
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, servers.mem(self.pid)[0])
            except OSError:
                return
            self._stop.wait(0.01)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.base, max(self.peak, self.base)


def measured(srv, fn):
    """Runs `fn()` while sampling the server: (result, cpu_s, base_mib, peak_mib)."""
    pids = servers.tree_pids(srv.pid)
    c0 = servers.cpu_ticks(pids)
    sampler = RssSampler(srv.pid)
    out = fn()
    base, peak = sampler.stop()
    cpu = (servers.cpu_ticks(pids) - c0) / os.sysconf("SC_CLK_TCK")
    return out, cpu, base / 1024, peak / 1024


# --- RFC 2136 UPDATE for Knot ----------------------------------------------------------

def _wire(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"


class KnotUpdater:
    """One TCP connection to Knot that replaces NAME's A RRset by UPDATE;
    `send` and `finish` split like httpapi.Writer, so write_to_served can
    time it the same way."""

    def __init__(self, port, zone):
        self.zone = zone
        self.conn = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = self.conn
        self.qid = 0

    def send(self, name, addr):
        self.qid = (self.qid + 1) & 0xFFFF
        owner = _wire(name)
        rdata = socket.inet_aton(addr)
        msg = struct.pack("!HHHHHH", self.qid, 5 << 11, 1, 0, 2, 0) + _wire(self.zone) + struct.pack("!HH", 6, 1)
        # Delete the RRset (class ANY, RFC 2136 §2.5.2), then add the record.
        msg += owner + struct.pack("!HHIH", 1, 255, 0, 0)
        msg += owner + struct.pack("!HHIH", 1, 1, 60, 4) + rdata
        self.conn.sendall(struct.pack("!H", len(msg)) + msg)

    def finish(self):
        head = self._read(2)
        body = self._read(struct.unpack("!H", head)[0])
        if struct.unpack("!H", body[:2])[0] != self.qid or body[3] & 0x0F:
            raise httpapi.WriteError(500, f"knot UPDATE answered rcode {body[3] & 0x0F}")
        return 200

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.conn.recv(n - len(out))
            if not chunk:
                raise httpapi.WriteError(500, "knot closed the UPDATE connection")
            out += chunk
        return out

    def close(self):
        self.conn.close()


# --- phases -----------------------------------------------------------------------------

def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def phase_latency(args, procs, tmp, srv_cpus, res):
    zfile = os.path.join(tmp, "zones", "bench.test.zone")
    gen.write_api_zone(zfile, ZONE, args.records)
    out = res.setdefault("latency", {"writes": args.writes, "interval": args.interval, "runs": {}})
    for p in args.primaries:
        say(f"# write-to-secondary: {p} primary, {args.writes} writes")
        sec_port = servers.free_port()
        try:
            if p == "sixgate":
                prim = sixgate_primary(procs, args.bins["sixgate"], tmp, "lat", ZONE, zfile, args.workers, srv_cpus,
                                       sec_port)
                writer = httpapi.Writer("sixgate", prim.api, ZONE, prim.key)
            else:
                prim = knot_primary(procs, tmp, "lat", ZONE, zfile, args.workers, srv_cpus, sec_port)
                if wait_soa(prim, ZONE, time.monotonic() + 60) is None:
                    raise servers.StartError(f"knot primary did not start; see {prim.log}")
                writer = KnotUpdater(prim.port, ZONE)
            sec = knot_secondary(procs, tmp, f"lat-{p}", ZONE, prim.port, srv_cpus, port=sec_port)
            serial = soa_serial(prim.port, ZONE)
            if wait_soa(sec, ZONE, time.monotonic() + 60, serial) is None:
                raise servers.StartError(f"the secondary of {p} did not load the zone; see {sec.log}")
        except servers.StartError as e:
            say(f"# ERROR: {e}")
            res.setdefault("errors", []).append(str(e))
            continue
        served, acked, lost = [], [], 0
        next_write = time.monotonic()
        for i in range(args.writes):
            time.sleep(max(0.0, next_write - time.monotonic()))
            next_write = time.monotonic() + args.interval
            name, addr = f"host{i % args.records}.bench.test", f"203.0.{(i >> 8) & 255}.{i & 255}"
            t = httpapi.write_to_served(writer, sec.port, name, addr, timeout=30.0)
            if t["served_ms"] is None:
                lost += 1
            else:
                served.append(t["served_ms"])
            if t.get("ack_ms") is not None:
                acked.append(t["ack_ms"])
        writer.close()
        log = open(sec.log, errors="replace").read()
        out["runs"][p] = {
            "p50_ms": pct(served, 50), "p99_ms": pct(served, 99), "max_ms": max(served) if served else None,
            "ack_p50_ms": pct(acked, 50), "not_served": lost,
            "secondary_ixfr": log.count("IXFR, incoming"), "secondary_axfr": log.count("AXFR, incoming"),
        }
        r = out["runs"][p]
        say(f"# {p}: served on the secondary p50 {fmt(r['p50_ms'], 1)} ms p99 {fmt(r['p99_ms'], 1)} ms"
            f" (write acknowledged p50 {fmt(r['ack_p50_ms'], 1)} ms), {lost} not served within 30 s;"
            f" secondary log: {r['secondary_ixfr']} IXFR, {r['secondary_axfr']} AXFR lines")
        procs.stop(sec.proc)
        procs.stop(prim.proc)


def write_axfr_zone(path, records, zone=BIG):
    """`records` A records under `zone` plus the apex SOA and NS (and the
    name servers' addresses, as gen's zones have)."""
    with open(path, "w") as f:
        f.write(gen._soa(zone))
        chunk = []
        for i in range(records):
            chunk.append(f"h{i}.{zone} 3600 IN A {gen.host_v4(i)}\n")
            if len(chunk) >= 50_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


def zone_record_count(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip() and not line.lstrip().startswith((";", "$")))


def phase_axfr(args, procs, tmp, srv_cpus, res):
    zfile = os.path.join(tmp, "zones", "bench1m.test.zone")
    t0 = time.monotonic()
    write_axfr_zone(zfile, args.axfr_records)
    total = zone_record_count(zfile)
    say(f"# AXFR: zone {BIG} of {total} records written in {time.monotonic() - t0:.1f} s")
    out = res.setdefault("axfr", {"records": total, "runs": {p: [] for p in args.primaries}})
    running = {}
    for p in args.primaries:
        try:
            if p == "sixgate":
                t0 = time.monotonic()
                prim = sixgate_primary(procs, args.bins["sixgate"], tmp, "axfr", BIG, zfile, args.workers, srv_cpus,
                                       9)
                if wait_soa(prim, BIG, time.monotonic() + 600) is None:
                    raise servers.StartError(f"sixgate did not serve {BIG}; see {prim.log}")
            else:
                t0 = time.monotonic()
                prim = knot_primary(procs, tmp, "axfr", BIG, zfile, args.workers, srv_cpus)
                if wait_soa(prim, BIG, time.monotonic() + 600) is None:
                    raise servers.StartError(f"knot did not serve {BIG}; see {prim.log}")
        except servers.StartError as e:
            say(f"# ERROR: {e}")
            res.setdefault("errors", []).append(str(e))
            continue
        running[p] = prim
        say(f"# {p} primary serves {BIG} after {time.monotonic() - t0:.1f} s; VmRSS"
            f" {servers.mem(prim.pid)[0] / 1024:.0f} MiB")
    # The closing SOA comes on top of the zone's records.
    expect = total + 1
    for rnd in range(args.rounds):
        for p, prim in running.items():
            raw, cpu, base, peak = measured(prim, lambda: raw_axfr(prim.port, BIG, expect))
            ok = raw["records"] == expect
            sec = knot_secondary(procs, tmp, f"axfr-{p}-{rnd}", BIG, prim.port, None)
            serial = soa_serial(prim.port, BIG)
            t0 = time.monotonic()
            loaded, cpu2, base2, peak2 = measured(prim, lambda: wait_soa(sec, BIG, time.monotonic() + 600, serial))
            knot_s = None if loaded is None else loaded - t0
            procs.stop(sec.proc)
            run = {"raw_s": raw["seconds"], "raw_cpu_s": cpu, "raw_messages": raw["messages"],
                   "raw_records": raw["records"], "raw_mib": raw["bytes"] / 2**20, "complete": ok,
                   "base_mib": base, "peak_mib": peak, "secondary_s": knot_s, "secondary_cpu_s": cpu2,
                   "secondary_peak_mib": peak2}
            out["runs"][p].append(run)
            say(f"# round {rnd + 1} {p}: raw AXFR {raw['seconds']:.2f} s, {raw['records']} records in"
                f" {raw['messages']} messages ({raw['bytes'] / 2**20:.0f} MiB){'' if ok else ' INCOMPLETE'},"
                f" primary CPU {cpu:.2f} s, RSS {base:.0f} -> peak {peak:.0f} MiB;"
                f" Knot secondary loaded in {fmt(knot_s, 2)} s, primary CPU {cpu2:.2f} s, peak {peak2:.0f} MiB")
    for prim in running.values():
        procs.stop(prim.proc)


def run(args, procs, tmp, srv_cpus, cli_cpus, res):
    if "latency" not in args.skip:
        phase_latency(args, procs, tmp, srv_cpus, res)
    if "axfr" not in args.skip:
        phase_axfr(args, procs, tmp, srv_cpus, res)


# --- report -------------------------------------------------------------------------

def fmt(x, nd=0):
    return "-" if x is None else f"{x:.{nd}f}"


def ratio(peer, sixgate):
    if peer is None or not sixgate:
        return None
    return peer / sixgate


def _med(runs, key):
    v = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(v) if v else None


def tables(args, res):
    lines = []
    lat = res.get("latency", {}).get("runs", {})
    if lat:
        lines.append(f"write-to-secondary ({res['latency']['writes']} writes {res['latency']['interval']} s apart,"
                     f" served on a Knot secondary)")
        lines.append("primary   p50 ms   p99 ms   max ms   ack p50 ms   not served   secondary IXFR/AXFR")
        for p, r in lat.items():
            lines.append(f"{p:<9} {fmt(r['p50_ms'], 1):>6} {fmt(r['p99_ms'], 1):>8} {fmt(r['max_ms'], 1):>8}"
                         f" {fmt(r['ack_p50_ms'], 1):>12} {r['not_served']:>12}"
                         f"   {r['secondary_ixfr']}/{r['secondary_axfr']}")
    ax = res.get("axfr")
    if ax:
        lines.append("")
        lines.append(f"AXFR of {ax['records']} records (medians over rounds)")
        lines.append("primary   raw s   raw CPU s   base MiB   peak MiB   Knot secondary s   its CPU s")
        for p, runs in ax["runs"].items():
            if runs:
                lines.append(f"{p:<9} {fmt(_med(runs, 'raw_s'), 2):>5} {fmt(_med(runs, 'raw_cpu_s'), 2):>11}"
                             f" {fmt(_med(runs, 'base_mib')):>10} {fmt(_med(runs, 'peak_mib')):>10}"
                             f" {fmt(_med(runs, 'secondary_s'), 2):>18} {fmt(_med(runs, 'secondary_cpu_s'), 2):>11}")
    return lines


def summary(args, res):
    lines = []
    lat = res.get("latency", {}).get("runs", {})
    if lat:
        s, k = lat.get("sixgate", {}), lat.get("knot", {})
        lines.append(f"xfr write-to-secondary ms ({res['latency']['writes']} writes {res['latency']['interval']} s apart): " + " ".join(
            f"{p} p50 {fmt(r['p50_ms'], 1)} p99 {fmt(r['p99_ms'], 1)}" for p, r in lat.items())
            + (f" ratio knot/sixgate p50 {fmt(ratio(k.get('p50_ms'), s.get('p50_ms')), 2)}"
               f" p99 {fmt(ratio(k.get('p99_ms'), s.get('p99_ms')), 2)}" if s and k else ""))
    ax = res.get("axfr")
    if ax:
        med = {p: {key: _med(runs, key) for key in ("raw_s", "raw_cpu_s", "peak_mib", "base_mib", "secondary_s")}
               for p, runs in ax["runs"].items() if runs}
        s, k = med.get("sixgate"), med.get("knot")
        complete = all(r["complete"] for runs in ax["runs"].values() for r in runs)
        for key, label in (("raw_s", "raw s"), ("raw_cpu_s", "primary cpu s"), ("secondary_s", "to knot secondary s"),
                           ("peak_mib", "primary peak rss MiB")):
            lines.append(f"xfr axfr {ax['records']} records {label}: " + " ".join(
                f"{p} {fmt(m[key], 2)}" for p, m in med.items())
                + (f" ratio knot/sixgate {fmt(ratio(k[key], s[key]), 2)}" if s and k else ""))
        if s:
            lines.append(f"xfr axfr sixgate rss during transfer: base {fmt(s['base_mib'])} MiB peak"
                         f" {fmt(s['peak_mib'])} MiB (+{fmt(s['peak_mib'] - s['base_mib'])} MiB)")
        lines.append(f"xfr axfr complete: {'yes' if complete else 'NO'}")
    for e in res.get("errors", []):
        lines.append(f"error: {e}")
    return lines
