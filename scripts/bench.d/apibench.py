"""`scripts/bench api`: sixgate's HTTP API against PowerDNS Authoritative's.

Both servers hold the same zone `bench.test.` (apex records and 1,000
`hostN` A records) and get the same writes, in alternation:

1. write-to-served: one write at a time, timed from sending the request
   until a UDP query returns the new data (httpapi.write_to_served), for a
   NEW name and for a CHANGED value of a name a client queried just before
   (so that a cache holds the old answer);
2. sustained writes: K writes of distinct new names over C client threads,
   each with its own connection, in alternating rounds;
3. memory: VmRSS of each server after the run.

The sustained rounds also read the server's CPU time (utime+stime of its
process in /proc) from the first write until the round's served check:
server CPU seconds per 1,000 writes, and writes per server CPU second.

Ratios against PowerDNS are written so that above 1 means sixgate is
better: PowerDNS/sixgate for times, CPU and memory, sixgate/PowerDNS for
writes per second. With `--baseline`, a second sixgate (`baseline`, built
from another revision) takes part like a third server, and its ratios are
always current/baseline (see baseline.py).
"""

import http.client
import os
import secrets
import subprocess
import threading
import time

import baseline
import dnsq
import gen
import httpapi
import perf
import servers

SERVERS = ("sixgate", baseline.BASELINE, "pdns")
PEERS = ("pdns",)
ZONE = "bench.test."
SOA = "ns1.bench.test. hostmaster.bench.test. 2024060101 7200 3600 1209600 300"


def say(msg):
    print(msg, flush=True)


def sixgate_has_api(binary):
    r = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True)
    return "--api" in r.stdout + r.stderr


def start_servers(args, procs, tmp, srv_cpus, res):
    zfile = os.path.join(tmp, "zones", "bench.test.zone")
    gen.write_api_zone(zfile, ZONE, args.records)
    last = args.records - 1
    probes = [("bench.test", "SOA", SOA), (f"host{last}.bench.test", "A", gen.host_v4(last))]
    running = {}
    for s in args.servers:
        try:
            if s in args.bins:
                binary = args.bins[s]
                if not sixgate_has_api(binary):
                    raise servers.StartError(f"this {s} build has no HTTP API (`sixgate serve --help` shows no"
                                             f" --api); no {s} figures")
                data = os.path.join(tmp, s)
                servers.sixgate_import(binary, data, ZONE, zfile)
                r = subprocess.run([binary, "token", "create", "--data", data], capture_output=True, text=True)
                if r.returncode != 0 or not r.stdout.strip():
                    raise servers.StartError(f"{s} token create: {r.stdout}{r.stderr}".strip())
                key = r.stdout.strip().splitlines()[-1]
                srv, dt = servers.start(procs, "sixgate", tmp, ZONE, zfile, args.workers, srv_cpus,
                                        "api" if s == "sixgate" else f"api-{s}", probes,
                                        sixgate_bin=binary, sixgate_data=data, api=True)
                srv.kind = "sixgate"
            else:
                run = os.path.join(tmp, "pdns")
                key = secrets.token_hex(16)
                servers.pdns_prepare(run, ZONE, zfile, key, args.pdns_conf)
                if args.pdns_conf:
                    say(f"# PowerDNS configuration added: {' '.join(args.pdns_conf)}")
                srv, dt = servers.start(procs, "pdns", tmp, ZONE, zfile, args.workers, srv_cpus, "api", probes,
                                        pdns_run=run, api_key=key)
                srv.kind = "pdns"
        except servers.StartError as e:
            say(f"# ERROR: {e}")
            res.setdefault("errors", []).append(str(e))
            continue
        srv.key = key
        running[s] = srv
        rss, _ = servers.mem(srv.pid)
        res.setdefault("start", {})[s] = {"ready_s": dt, "rss_mib": rss / 1024}
        say(f"# {s} ready after {dt:.2f} s: dns 127.0.0.1:{srv.port}, api http://{srv.api}; VmRSS {rss / 1024:.0f} MiB")
    return running


def check_zone(running, records):
    """Both servers answer the same from the zone before any write; the
    SOA serial may differ (each has its own serial policy)."""
    qs = [("bench.test", "NS"), ("host0.bench.test", "A"), (f"host{records - 1}.bench.test", "A"),
          ("nosuchname.bench.test", "A"), ("bench.test", "SOA")]
    notes = []
    for name, qtype in qs:
        got = {}
        for s, srv in running.items():
            r = dnsq.query(srv.port, name, qtype)
            got[s] = None if r is None else (r["rcode"], r["aa"], tuple(
                (o, t, ttl, " ".join(d.split()[:2]) if t == "SOA" else d) for o, t, ttl, d in r["answer"]))
        if len(set(got.values())) > 1 or None in got.values():
            notes.append(f"{name} {qtype}: " + "; ".join(f"{s} {v}" for s, v in got.items()))
    return len(qs), notes


def _trial(case, i, records):
    if case == "new":
        return f"new{i}.bench.test", f"192.0.2.{i % 250 + 1}"
    return f"host{i % records}.bench.test", f"203.0.{(i >> 8) & 255}.{i & 255}"


def write_to_served(args, running, res):
    writers = {s: httpapi.Writer(srv.kind, srv.api, ZONE, srv.key) for s, srv in running.items()}
    for s, srv in running.items():  # warm-up: connections, caches, first allocations
        for i in range(20):
            name, addr = f"warm{i}.bench.test", f"192.0.2.{i + 1}"
            try:
                httpapi.write_to_served(writers[s], srv.port, name, addr, timeout=args.served_timeout)
            except (httpapi.WriteError, OSError) as e:
                say(f"# {s} warm-up write failed: {e}")
                writers[s] = httpapi.Writer(srv.kind, srv.api, ZONE, srv.key)
                break
    out = {s: {"new": [], "changed": []} for s in running}
    for case in ("new", "changed"):
        unprimed = {s: 0 for s in running}
        for i in range(args.writes):
            for s, srv in baseline.order(running, i, args.alternate):
                name, addr = _trial(case, i, args.records)
                if case == "changed":
                    # A client asks first: a cache in front of the data now
                    # holds the old address.
                    before = dnsq.query(srv.port, name, "A")
                    if before is None or not before["answer"] or dnsq.has_answer(before, "A", addr):
                        unprimed[s] += 1
                try:
                    x = httpapi.write_to_served(writers[s], srv.port, name, addr, timeout=args.served_timeout)
                except (httpapi.WriteError, OSError) as e:
                    x = {"served_ms": None, "ack_ms": None, "error": str(e)}
                    writers[s].close()
                    writers[s] = httpapi.Writer(srv.kind, srv.api, ZONE, srv.key)
                out[s][case].append(x)
        for s in running:
            st = stats(out[s][case], args.served_timeout * 1000)
            say(f"# {case:7s} {s:7s} served p50 {fmt(st['served_p50'], 2)} p99 {fmt(st['served_p99'], 2)}"
                f" max {fmt(st['served_max'], 2)} ms; 2xx p50 {fmt(st['ack_p50'], 2)} p99 {fmt(st['ack_p99'], 2)} ms;"
                f" served before the 2xx {st['before_ack']}/{st['n']}"
                + (f"; still old data 1 s after the 2xx {st['late']}" if st["late"] else "")
                + (f"; not served within {args.served_timeout:g} s {st['never']}" if st["never"] else "")
                + (f"; errors {st['errors']}" if st["errors"] else "")
                + (f"; pre-query without the old answer {unprimed[s]}" if unprimed[s] else ""))
            if st["first_error"]:
                say(f"#   first error: {st['first_error']}")
    res["connects"] = {s: w.connects for s, w in writers.items()}
    for w in writers.values():
        w.close()
    res["served"] = out
    res["served_timeout_ms"] = args.served_timeout * 1000


class AtLeast(float):
    """A lower bound: printed with '>'."""


def stats(trials, timeout_ms):
    """Percentiles of the trials without an HTTP error. One never served
    within --served-timeout counts as served at the timeout, and a
    percentile that falls on such a trial is only a lower bound."""
    served = sorted(timeout_ms if x["served_ms"] is None else x["served_ms"] for x in trials if "error" not in x)
    served = [AtLeast(v) if v >= timeout_ms else v for v in served]
    acks = sorted(x["ack_ms"] for x in trials if x.get("ack_ms") is not None)
    errs = [x["error"] for x in trials if "error" in x]
    return {
        "n": len(trials),
        "served_p50": perf.percentile(served, 50) if served else None,
        "served_p99": perf.percentile(served, 99) if served else None,
        "served_max": served[-1] if served else None,
        "ack_p50": perf.percentile(acks, 50) if acks else None,
        "ack_p99": perf.percentile(acks, 99) if acks else None,
        "before_ack": sum(1 for x in trials if x["served_ms"] is not None and x.get("ack_ms") is not None
                          and x["served_ms"] < x["ack_ms"]),
        "never": sum(1 for x in trials if x["served_ms"] is None and "error" not in x),
        "late": sum(1 for x in trials if x.get("ack_ms") is not None and "error" not in x
                    and (x["served_ms"] is None or x["served_ms"] - x["ack_ms"] > 1000)),
        "errors": len(errs),
        "first_error": errs[0] if errs else None,
    }


# A sustained round ends after this many seconds even if writes are left
# (PowerDNS did 16 writes/s on a 20,000-record zone: 2,000 writes in 125 s).
ROUND_LIMIT_S = 600.0


def sustained_run(srv, kind, tag, total, clients, timeout, retries, limit=ROUND_LIMIT_S):
    """`total` writes of distinct new names over `clients` threads, each
    with its own connection, started together. A write answered with a 5xx
    is sent again, up to `retries` times (httpapi.Writer.write): PowerDNS's
    SQLite backend answers 500 ("database is locked") when API writes
    overlap.

    The server's CPU time is read at the start and again after the served
    check that follows the last write, so that it includes publishing the
    round's writes, which sixgate may still be doing after the last 2xx."""
    per = [total // clients + (1 if k < total % clients else 0) for k in range(clients)]
    writers = [httpapi.Writer(kind, srv.api, ZONE, srv.key, timeout=timeout) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    results = [None] * clients

    def work(k):
        lat, errors = [], []
        w = writers[k]
        barrier.wait()
        deadline = time.monotonic() + limit
        for j in range(per[k]):
            t = time.monotonic()
            if t > deadline:
                break
            try:
                w.write(f"w{tag}-{k}-{j}.bench.test", gen.host_v4(j), retries=retries)
                lat.append((time.monotonic() - t) * 1000)
            except (httpapi.WriteError, OSError, http.client.HTTPException) as e:
                errors.append(str(e))
                w.close()
        results[k] = (lat, errors)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    pids = servers.tree_pids(srv.pid)
    s0, c0 = servers.cpu_ticks(pids), time.process_time()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    client_cpu = (time.process_time() - c0) / wall
    tick = os.sysconf("SC_CLK_TCK")
    lat = sorted(x for r in results for x in r[0])
    errors = [e for r in results for e in r[1]]
    for w in writers:
        w.close()
    served_check = _served_check(srv.port, tag, per)
    cpu_s = (servers.cpu_ticks(pids) - s0) / tick
    server_cpu = cpu_s / wall
    return {
        "writes": len(lat), "seconds": wall, "writes_per_s": len(lat) / wall,
        "ack_p50_ms": perf.percentile(lat, 50), "ack_p99_ms": perf.percentile(lat, 99),
        "server_cpu": server_cpu, "client_cpu": client_cpu, "server_cpu_s": cpu_s,
        "per_server_cpu_s": len(lat) / cpu_s if cpu_s > 0 else float("nan"),
        "cpu_s_per_1k": cpu_s / len(lat) * 1000 if lat else float("nan"),
        "connects": sum(w.connects for w in writers), "reconnects": sum(w.reconnects for w in writers),
        "server_errors": sum(w.server_errors for w in writers),
        "errors": len(errors), "first_error": errors[0] if errors else None,
        "unsent": total - len(lat) - len(errors),
        "served_check": served_check,
    }


def _served_check(port, tag, per):
    """A sample of the written names, asked over DNS: (served, asked)."""
    sample = [(k, j) for k in range(len(per)) for j in sorted({0, per[k] // 2, per[k] - 1}) if per[k]]
    ok = sum(1 for k, j in sample
             if dnsq.has_answer(dnsq.query(port, f"w{tag}-{k}-{j}.bench.test", "A"), "A", gen.host_v4(j)))
    return [ok, len(sample)]


def sustained(args, running, res):
    runs = {s: [] for s in running}
    for r in range(args.rounds):
        for s, srv in baseline.order(running, r, args.alternate):
            x = sustained_run(srv, srv.kind, r, args.sustained, args.clients, 30.0, args.retries)
            runs[s].append(x)
            say(f"# round {r + 1} {s:7s} {x['writes_per_s']:7.0f} writes/s ({x['writes']} in {x['seconds']:.2f} s,"
                f" {args.clients} clients); 2xx p50 {x['ack_p50_ms']:.2f} p99 {x['ack_p99_ms']:.2f} ms;"
                f" cpu server {x['server_cpu']:.2f} ({x['cpu_s_per_1k']:.3f} s per 1k writes)"
                f" client {x['client_cpu']:.2f}; connects {x['connects']};"
                f" 5xx retried {x['server_errors']};"
                f" served {x['served_check'][0]}/{x['served_check'][1]}"
                + (f"; errors {x['errors']}: {x['first_error']}" if x["errors"] else "")
                + (f"; not sent within {ROUND_LIMIT_S:.0f} s {x['unsent']}" if x["unsent"] else ""))
    res["sustained"] = runs


def run(args, procs, tmp, srv_cpus, cli_cpus, res):
    running = start_servers(args, procs, tmp, srv_cpus, res)
    if not running:
        return
    n, notes = check_zone(running, args.records)
    res["zone_check"] = {"queries": n, "notes": notes}
    say(f"# zone check: {n} queries, {len(notes)} differences")
    for line in notes:
        say(f"#   {line}")
    if cli_cpus:
        # This thread's affinity; the client threads started later inherit it.
        os.sched_setaffinity(0, [int(c) for c in cli_cpus.split(",")])
    write_to_served(args, running, res)
    sustained(args, running, res)
    res["rss"] = {}
    for s, srv in running.items():
        rss, hwm = servers.mem(srv.pid)
        res["rss"][s] = {"rss_mib": rss / 1024, "hwm_mib": hwm / 1024}
        say(f"# {s} after the run: VmRSS {rss / 1024:.0f} MiB, VmHWM {hwm / 1024:.0f} MiB")


# --- report -------------------------------------------------------------------

def fmt(x, nd=0):
    if x is None or x != x:
        return "n/a"
    return (">" if isinstance(x, AtLeast) else "") + f"{x:.{nd}f}"


def _ratio(num, den):
    """num/den; a lower bound if num is one (the denominators never are)."""
    if num is None or den is None or num != num or den != den or not den or isinstance(den, AtLeast):
        return None
    return AtLeast(num / den) if isinstance(num, AtLeast) else num / den


def _pdns_ratio(v, higher_better):
    """The ratio against PowerDNS, above 1 when sixgate is better."""
    sg, pd = v.get("sixgate"), v.get("pdns")
    return _ratio(sg, pd) if higher_better else _ratio(pd, sg)


def _base_ratio(v):
    """current / baseline (None without a baseline)."""
    return _ratio(v.get("sixgate"), v.get(baseline.BASELINE))


def rows(res):
    """(label, {server: value}, decimals, higher is better or None) for the
    table: None for counts, which get no ratio."""
    out = []
    if "served" in res:
        st = {s: {c: stats(v, res["served_timeout_ms"]) for c, v in cases.items()}
              for s, cases in res["served"].items()}
        for case, label in (("new", "new name"), ("changed", "changed value")):
            for key, what in (("served_p50", "served p50 ms"), ("served_p99", "served p99 ms"),
                              ("ack_p50", "2xx p50 ms"), ("ack_p99", "2xx p99 ms")):
                out.append((f"{label} {what}", {s: x[case][key] for s, x in st.items()}, 2, False))
            out.append((f"{label} old >1 s after 2xx", {s: x[case]["late"] for s, x in st.items()}, 0, None))
    if "sustained" in res:
        m = {s: {k: perf_med([x[k] for x in v])
                 for k in ("writes_per_s", "per_server_cpu_s", "cpu_s_per_1k", "ack_p50_ms", "ack_p99_ms")}
             for s, v in res["sustained"].items()}
        for key, label, high, nd in (("writes_per_s", "sustained writes/s", True, 0),
                                     ("per_server_cpu_s", "writes per server CPU s", True, 0),
                                     ("cpu_s_per_1k", "server CPU s per 1k writes", False, 3),
                                     ("ack_p50_ms", "sustained 2xx p50 ms", False, 2),
                                     ("ack_p99_ms", "sustained 2xx p99 ms", False, 2)):
            out.append((label, {s: x[key] for s, x in m.items()}, nd, high))
    if "rss" in res:
        out.append(("VmRSS after the run MiB", {s: x["rss_mib"] for s, x in res["rss"].items()}, 0, False))
        out.append(("VmHWM after the run MiB", {s: x["hwm_mib"] for s, x in res["rss"].items()}, 0, False))
    return out


def args_writes(res):
    return max((len(v) for cases in res.get("served", {}).values() for v in cases.values()), default=0)


def perf_med(xs):
    xs = sorted(x for x in xs if x == x)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _present(res):
    return [s for s in SERVERS if s in res.get("start", {})]


def tables(args, res):
    ss = _present(res)
    base, pdns = baseline.BASELINE in ss, "pdns" in ss and "sixgate" in ss
    names = {"sixgate": "sixgate", baseline.BASELINE: "baseline", "pdns": "PowerDNS"}
    head = f"{'':32s}" + "".join(f" {names[s]:>9s}" for s in ss)
    if base:
        head += f" {'cur/base':>8s}"
    if pdns:
        head += f" {'vs pdns':>8s}"
    notes = []
    if base:
        notes.append("cur/base is current/baseline (rates >1, times, CPU and memory <1: current better)")
    if pdns:
        notes.append("vs pdns is >1: sixgate better")
    out = [head + "  " + "; ".join(notes)]
    for label, v, nd, high in rows(res):
        line = f"{label:32s}" + "".join(f" {fmt(v.get(s), nd):>9s}" for s in ss)
        if base:
            line += f" {fmt(None if high is None else _base_ratio(v), 2):>8s}"
        if pdns:
            line += f" {fmt(None if high is None else _pdns_ratio(v, high), 2):>8s}"
            if high is None:
                line += f"  count of {args_writes(res)} writes"
            else:
                line += "  " + ("sixgate/PowerDNS" if high else "PowerDNS/sixgate")
        out.append(line)
    return out


def _ratios(v, higher_better, keys=None):
    """' ratio sixgate/baseline ... pdns/sixgate ...' for the servers in `v`
    ({server: value}, or {server: {key: value}} with `keys`)."""
    parts = []
    for other, num, den in ((baseline.BASELINE, "sixgate", baseline.BASELINE),
                            ("pdns", *(("sixgate", "pdns") if higher_better else ("pdns", "sixgate")))):
        if other not in v or "sixgate" not in v:
            continue
        if keys is None:
            parts.append(f"{num}/{den} {fmt(_ratio(v[num], v[den]), 2)}")
        else:
            parts.append(f"{num}/{den} " + " ".join(f"{k} {fmt(_ratio(v[num][k], v[den][k]), 2)}" for k in keys))
    return " ratio " + " ".join(parts) if parts else ""


def summary(args, res):
    lines = []
    if "served" in res:
        for case in ("new", "changed"):
            st = {s: stats(v[case], res["served_timeout_ms"]) for s, v in res["served"].items()}
            parts = " ".join(f"{s} p50 {fmt(x['served_p50'], 2)} p99 {fmt(x['served_p99'], 2)}" for s, x in st.items())
            parts += _ratios({s: {"p50": x["served_p50"], "p99": x["served_p99"]} for s, x in st.items()},
                             False, ("p50", "p99"))
            errors = {s: x["errors"] for s, x in st.items() if x["errors"]}
            late = {s: x["late"] for s, x in st.items() if x["late"]}
            lines.append(f"api served {case} ms: {parts}"
                         + (" late " + " ".join(f"{s} {x['late']}/{x['n']}" for s, x in st.items()) if late else "")
                         + (" errors " + " ".join(f"{s} {n}" for s, n in errors.items()) if errors else ""))
            acks = {s: {"p50": x["ack_p50"], "p99": x["ack_p99"]} for s, x in st.items()}
            lines.append(f"api 2xx {case} ms: " + " ".join(
                f"{s} p50 {fmt(x['ack_p50'], 2)} p99 {fmt(x['ack_p99'], 2)}" for s, x in st.items())
                + (_ratios(acks, False, ("p50", "p99")) if baseline.BASELINE in st else ""))
    if "sustained" in res:
        sus = res["sustained"]
        w = {s: perf_med([x["writes_per_s"] for x in v]) for s, v in sus.items()}
        c = {s: perf_med([x["client_cpu"] for x in v]) for s, v in sus.items()}
        bound = [s for s in w if c[s] is not None and c[s] > 0.9]
        lines.append(f"api writes/s c{args.clients}: " + " ".join(f"{s} {fmt(x)}" for s, x in w.items())
                     + _ratios(w, True) + (f" client-bound {','.join(bound)}" if bound else ""))
        # What a write costs the server, whether or not the client kept it
        # busy: on 2 cores a client-bound rate hides it.
        k = {s: perf_med([x["cpu_s_per_1k"] for x in v]) for s, v in sus.items()}
        lines.append(f"api server cpu s per 1k writes c{args.clients}: "
                     + " ".join(f"{s} {fmt(x, 3)}" for s, x in k.items()) + _ratios(k, False))
        p = {s: perf_med([x["per_server_cpu_s"] for x in v]) for s, v in sus.items()}
        lines.append(f"api writes per server cpu s c{args.clients}: "
                     + " ".join(f"{s} {fmt(x)}" for s, x in p.items()) + _ratios(p, True))
    if "rss" in res:
        r = {s: x["rss_mib"] for s, x in res["rss"].items()}
        lines.append("api rss MiB: " + " ".join(f"{s} {fmt(x)}" for s, x in r.items()) + _ratios(r, False))
    if res.get("errors"):
        lines.append(f"errors: {len(res['errors'])} (see the log above)")
    return lines
