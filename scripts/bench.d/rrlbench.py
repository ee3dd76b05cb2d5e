"""`scripts/bench dns --rrl`: the per-query cost of response-rate limiting.

sixgate and Knot each run twice on the same 10k-name zone and query file
as the throughput phase: once with RRL off and once with it on at a rate
so high that nothing is limited (every query still goes through the
classification, the hash and the bucket update, which is the cost an
operator pays on every answer). sixgate's RRL exempts loopback by
default, so its "on" instance is given `exempt = []`; Knot's `mod-rrl`
has no whitelist unless configured. The four instances are measured
with saturated dnsperf runs in alternating rounds (the order reversed
every other round), and each cost is reported from the medians, as
queries per second and as queries per second of server CPU (the better
figure where dnsperf saturates its own core first):

    RRL cost: sixgate -x.x% knot -y.y% (qps); ... (per server core)
"""

import os

import gen
import perf
import servers

# High enough that no client prefix, class and name of the query file is
# ever limited, low enough for both servers' token counters.
NOT_LIMITING = 1_000_000


def _order(names, r):
    return names if r % 2 == 0 else list(reversed(names))


def run(args, procs, tmp, srv_cpus, cli_cpus, res, say, med):
    if "sixgate" not in args.bins:
        return
    mix = gen.MixZone(args.names)
    zfile = os.path.join(tmp, "zones", "rrl.bench.test.zone")
    mix.write(zfile)
    qfile = os.path.join(tmp, "rrl-queries.txt")
    gen.write_queries(qfile, mix.queries(args.queries))
    conf = os.path.join(tmp, "sixgate-rrl.toml")
    with open(conf, "w") as f:
        f.write(f"[dns.rrl]\nrate = {NOT_LIMITING}\nslip = 2\nexempt = []\n")
    off = os.path.join(tmp, "sixgate-rrl-off.toml")
    with open(off, "w") as f:
        f.write("[dns.rrl]\nrate = 0\n")
    data = {}
    for label in ("sixgate-off", "sixgate-on"):
        data[label] = os.path.join(tmp, f"{label}-data")
        servers.sixgate_import(args.bins["sixgate"], data[label], "bench.test.", zfile)
    probes = [("bench.test", "SOA", "ns1.bench.test. hostmaster.bench.test. 2024060101 7200 3600 1209600 300")]
    plan = [("sixgate-off", "sixgate", {"sixgate_args": ["--config", off]}),
            ("sixgate-on", "sixgate", {"sixgate_args": ["--config", conf]})]
    if "knot" in args.servers:
        plan += [("knot-off", "knot", {}), ("knot-on", "knot", {"knot_rrl": NOT_LIMITING})]
    running = {}
    for label, kind, kw in plan:
        try:
            srv, dt = servers.start(procs, kind, tmp, "bench.test.", zfile, args.workers, srv_cpus, f"rrl-{label}",
                                    probes, sixgate_bin=args.bins["sixgate"], sixgate_data=data.get(label), **kw)
        except servers.StartError as e:
            say(f"# ERROR: {e}")
            res.setdefault("errors", []).append(str(e))
            continue
        running[label] = srv
        say(f"# rrl: {label} ready on 127.0.0.1:{srv.port} after {dt:.2f} s")
    for srv in running.values():
        perf.run(srv.port, qfile, 2, args.clients, args.outstanding, cli_cpus, server_pid=srv.pid, procs=procs,
                 threads=args.client_threads)
    runs = {label: [] for label in running}
    for r in range(args.rounds):
        for label in _order(list(running), r):
            srv = running[label]
            x = perf.run(srv.port, qfile, args.duration, args.clients, args.outstanding, cli_cpus,
                         server_pid=srv.pid, procs=procs, threads=args.client_threads)
            runs[label].append(x)
            say(f"# rrl round {r + 1} {label:12s} qps {x['qps']:9.0f}  lost {int(x['lost'])}"
                f"  cpu server {x['server_cpu']:.2f} client {x['client_cpu']:.2f} other {x['other_cpu']:.2f}")
    for srv in running.values():
        procs.stop(srv.proc)
    res["rrl_runs"] = runs
    res["rrl_rate"] = NOT_LIMITING


def summary(res, med, fmt):
    """The summary lines of the RRL phase."""
    runs = res.get("rrl_runs")
    if not runs:
        return []
    qps = {k: med([x["qps"] for x in v]) for k, v in runs.items() if v}
    core = {k: med([x["qps"] / x["server_cpu"] for x in v if x["server_cpu"] > 0]) for k, v in runs.items() if v}

    def costs(d):
        out = {}
        for who in ("sixgate", "knot"):
            on, off = d.get(f"{who}-on"), d.get(f"{who}-off")
            if on and off:
                out[who] = 100.0 * (on / off - 1.0)
        return out

    lines = []
    for what, d in (("qps", qps), ("per server core", core)):
        c = costs(d)
        line = f"RRL cost ({what}): " + " ".join(f"{who} {c[who]:+.1f}%" for who in c)
        if "sixgate" in c and "knot" in c:
            line += f" sixgate-minus-knot {c['sixgate'] - c['knot']:+.1f} points"
        if "sixgate-on" in d and "knot-on" in d and d["knot-on"]:
            line += f"; with RRL on sixgate/knot {fmt(d['sixgate-on'] / d['knot-on'], 2)}"
        lines.append(line)
    lines.append("RRL qps: " + " ".join(f"{k} {fmt(v)}" for k, v in qps.items())
                 + f" (rate {res.get('rrl_rate')}, nothing limited)")
    return lines
