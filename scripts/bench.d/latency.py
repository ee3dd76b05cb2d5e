"""The tail-latency phase of `scripts/bench dns`: sixgate against Knot at
fixed fractions of Knot's capacity, with sixgate's own account of where
a query's time goes.

1. Both servers serve the same 10k-name zone with the same worker count,
   pinned alike, logging at "warning" (sixgate through SIXGATE_LOG, which
   it reads, Knot through its `log` section).
2. Knot's capacity: the median queries per second of saturated dnsperf
   runs (the throughput runs' settings) on the query mix file.
3. For each round (`--lat-rounds`, default 7) and each load (`--lat-loads`,
   default 50% and 90% of that capacity), sixgate and Knot are each run
   once with `dnsperf -Q RATE -v`, alternating which goes first. The
   per-query latencies dnsperf prints give p50, p99 and p99.9 per run;
   the report takes the median over rounds per server and load, and the
   ratio sixgate/Knot of the median p99 against the target (1.1).
4. Around each sixgate run, its `/metrics` is scraped: the growth of
   `sixgate_dns_udp_wait_seconds` (from the return of `recvmmsg` to the
   return of the `sendmmsg` that carries the answer) and of
   `sixgate_dns_udp_batch_datagrams` over the rounds of a load shows how
   much of the client's latency is spent inside the worker, and in what
   bursts queries come.
"""

import os
import re
import statistics
import urllib.request

import gen
import perf
import servers

TARGET = 1.1


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def token(log_path):
    """The first admin token: `serve` names its file in its output."""
    with open(log_path, errors="replace") as f:
        m = re.search(r"^admin token written to (.+)$", f.read(), re.M)
    if not m:
        raise servers.StartError(f"sixgate printed no admin token file; see {log_path}")
    with open(m.group(1).strip()) as f:
        return f.read().strip()


def scrape(api, tok):
    """The histogram samples and counters this phase reads, as a dict."""
    req = urllib.request.Request(f"http://{api}/metrics", headers={"Authorization": f"Bearer {tok}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    out = {"wait": {}, "batch": {}}
    for line in text.splitlines():
        m = re.match(r'^sixgate_dns_udp_(wait_seconds|batch_datagrams)_bucket\{le="([^"]+)"\} (\d+)$', line)
        if m:
            out["wait" if m.group(1) == "wait_seconds" else "batch"][m.group(2)] = int(m.group(3))
            continue
        m = re.match(r"^(sixgate_dns_udp_\w+) ([\d.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def delta(before, after):
    d = {"wait": {k: after["wait"].get(k, 0) - v for k, v in before["wait"].items()},
         "batch": {k: after["batch"].get(k, 0) - v for k, v in before["batch"].items()}}
    for k, v in after.items():
        if isinstance(v, float):
            d[k] = v - before.get(k, 0.0)
    return d


def add(total, d):
    for part in ("wait", "batch"):
        for k, v in d[part].items():
            total[part][k] = total[part].get(k, 0) + v
    for k, v in d.items():
        if isinstance(v, float):
            total[k] = total.get(k, 0.0) + v


def _bounds(cum):
    """(bound, cumulative count) in ascending order, +Inf last."""
    return sorted(cum.items(), key=lambda kv: float("inf") if kv[0] == "+Inf" else float(kv[0]))


def quantile(cum, q):
    """The upper bound of the bucket that holds quantile `q` of a
    cumulative histogram, as text ("+Inf" past the last bound)."""
    items = _bounds(cum)
    total = items[-1][1] if items else 0
    for le, c in items:
        if total and c >= q * total:
            return le
    return "n/a"


def histogram_lines(h, unit):
    """Per bucket: its share of the total and the cumulative share."""
    items = _bounds(h)
    total = items[-1][1] if items else 0
    out, prev = [], 0
    for le, c in items:
        n = c - prev
        prev = c
        if total and n:
            label = le if le == "+Inf" else (f"{float(le) * 1e6:g} us" if unit == "s" else le)
            out.append(f"    le {label:>9s}: {n:9d} {100 * n / total:6.2f}%  cumulative {100 * c / total:6.2f}%")
    return out


def run(args, procs, tmp, srv_cpus, cli_cpus, res, say):
    mix = gen.MixZone(args.names)
    zfile = os.path.join(tmp, "zones", "bench.test.zone")
    if not os.path.exists(zfile):
        mix.write(zfile)
    qfile = os.path.join(tmp, "queries.txt")
    if not os.path.exists(qfile):
        gen.write_queries(qfile, mix.queries(args.queries))
    data = os.path.join(tmp, "sixgate-latency")
    servers.sixgate_import(args.bins["sixgate"], data, "bench.test.", zfile)
    probes = [("bench.test", "SOA", "ns1.bench.test. hostmaster.bench.test. 2024060101 7200 3600 1209600 300")]
    running = {}
    for s in ("sixgate", "knot"):
        srv, _ = servers.start(procs, s, tmp, "bench.test.", zfile, args.workers, srv_cpus, "latency", probes,
                               sixgate_bin=args.bins["sixgate"], sixgate_data=data, api=(s == "sixgate"),
                               log="warning")
        running[s] = srv
    tok = token(os.path.join(tmp, "sixgate-latency.log"))
    sg = running["sixgate"]

    def dnsperf(srv, rate=None, duration=args.lat_duration):
        return perf.run(srv.port, qfile, duration, args.clients, args.outstanding, cli_cpus, rate=rate,
                        verbose_out=os.path.join(tmp, "dnsperf-v.txt") if rate else None,
                        server_pid=srv.pid, procs=procs, threads=args.client_threads)

    for srv in running.values():
        dnsperf(srv, duration=2)
    caps = [dnsperf(running["knot"], duration=args.duration)["qps"] for _ in range(args.cap_runs)]
    capacity = med(caps)
    say(f"# latency: Knot capacity {capacity:.0f} qps (median of {len(caps)} saturated runs: "
        + ", ".join(f"{c:.0f}" for c in caps) + ")")
    loads = args.lat_loads
    rates = {f: max(1000, int(capacity * f)) for f in loads}
    runs = {f: {s: [] for s in running} for f in loads}
    inside = {f: {"wait": {}, "batch": {}} for f in loads}
    for r in range(args.lat_rounds):
        for f in loads:
            order = list(running.items())
            if r % 2:
                order.reverse()
            for s, srv in order:
                before = scrape(sg.api, tok) if s == "sixgate" else None
                x = dnsperf(srv, rate=rates[f])
                if before is not None:
                    add(inside[f], delta(before, scrape(sg.api, tok)))
                runs[f][s].append(x)
                say(f"# latency round {r + 1} {int(f * 100)}% {s:8s} at {rates[f]} qps (got {x['qps']:.0f}):"
                    f" p50 {x['p50_ms']:.3f} p99 {x['p99_ms']:.3f} p99.9 {x['p999_ms']:.3f} ms"
                    f"  lost {int(x['lost'])}  cpu server {x['server_cpu']:.2f} other {x['other_cpu']:.2f}")
    for srv in running.values():
        procs.stop(srv.proc)
    res["latency_phase"] = {"capacity": capacity, "capacity_runs": caps, "rates": rates,
                            "runs": {str(f): v for f, v in runs.items()},
                            "inside": {str(f): v for f, v in inside.items()}}


def lines(args, res):
    """The phase's report: per load, the medians, the ratio, the verdict,
    and sixgate's histograms."""
    lp = res.get("latency_phase")
    if not lp:
        return []
    out = [f"latency vs Knot at fixed load ({args.lat_rounds} alternating rounds,"
           f" Knot capacity {lp['capacity']:.0f} qps)"]
    for f, rate in lp["rates"].items():
        rs = lp["runs"][str(f)]
        p = {s: {k: med([x[k] for x in v]) for k in ("p50_ms", "p99_ms", "p999_ms", "qps")} for s, v in rs.items()}
        out.append(f"{int(f * 100)}% = {rate} qps:")
        for s in ("sixgate", "knot"):
            p99s = [x["p99_ms"] for x in rs[s]]
            out.append(f"  {s:8s} p50 {p[s]['p50_ms']:.3f}"
                       f" p99 {p[s]['p99_ms']:.3f} (range {min(p99s):.3f}-{max(p99s):.3f})"
                       f" p99.9 {p[s]['p999_ms']:.3f} ms  answered {p[s]['qps']:.0f} qps")
        h = lp["inside"][str(f)]
        n = h["wait"].get("+Inf", 0)
        out.append(f"  sixgate wait inside the worker: {n} answers, p50 <= {quantile(h['wait'], 0.5)} s,"
                   f" p99 <= {quantile(h['wait'], 0.99)} s, p99.9 <= {quantile(h['wait'], 0.999)} s;"
                   f" mean {1e6 * h.get('sixgate_dns_udp_wait_seconds_sum', 0.0) / max(n, 1):.1f} us;"
                   f" send calls per answer {h.get('sixgate_dns_udp_send_calls_total', 0.0) / max(n, 1):.2f}")
        out += histogram_lines(h["wait"], "s")
        out.append(f"  sixgate datagrams per receive call: mean"
                   f" {h.get('sixgate_dns_udp_received_total', 0.0) / max(h['batch'].get('+Inf', 0), 1):.2f}")
        out += histogram_lines(h["batch"], "n")
    return out


def summary(args, res):
    lp = res.get("latency_phase")
    if not lp:
        return []
    out = []
    for f, rate in lp["rates"].items():
        rs = lp["runs"][str(f)]
        p = {s: {k: med([x[k] for x in v]) for k in ("p50_ms", "p99_ms", "p999_ms")} for s, v in rs.items()}
        ratio = p["sixgate"]["p99_ms"] / p["knot"]["p99_ms"] if p["knot"]["p99_ms"] else float("nan")
        verdict = "ok" if ratio <= TARGET else "over"
        out.append(f"dns latency {int(f * 100)}% of knot capacity ({rate} qps, {len(rs['sixgate'])} rounds):"
                   f" p99 ms sixgate {p['sixgate']['p99_ms']:.3f} knot {p['knot']['p99_ms']:.3f}"
                   f" ratio sixgate/knot {ratio:.2f} target <= {TARGET} {verdict};"
                   f" p50 {p['sixgate']['p50_ms']:.3f}/{p['knot']['p50_ms']:.3f}"
                   f" p99.9 {p['sixgate']['p999_ms']:.3f}/{p['knot']['p999_ms']:.3f};"
                   f" sixgate in-worker wait p99 <= {quantile(lp['inside'][str(f)]['wait'], 0.99)} s")
    others = [x["other_cpu"] for by_server in lp["runs"].values() for v in by_server.values() for x in v]
    if others:
        noisy = " (above 0.1: not comparable with a quiet run)" if med(others) > 0.1 else ""
        out.append(f"dns latency noise other-cpu cores: median {med(others):.2f} max {max(others):.2f}{noisy}")
    return out
