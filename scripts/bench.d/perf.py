"""Running dnsperf and reading its report, for scripts/bench.

dnsperf 2.10 has no latency histogram (`dnsperf -H` lists no
`latency-histogram` option), so percentiles come from `-v`, which prints
one line per answered query with its latency (`> NOERROR name type 0.000123`).
That costs the client some CPU, so `-v` is used only in the fixed-rate
latency runs, never in the throughput runs.
"""

import os
import re
import resource
import subprocess
import time

import servers


def _num(pattern, text, default=None):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else default


def parse_report(text):
    return {
        "qps": _num(r"Queries per second:\s+([\d.]+)", text, 0.0),
        "sent": _num(r"Queries sent:\s+(\d+)", text, 0),
        "completed": _num(r"Queries completed:\s+(\d+)", text, 0),
        "lost": _num(r"Queries lost:\s+(\d+)", text, 0),
        "avg_ms": _num(r"Average Latency \(s\):\s+([\d.]+)", text, 0.0) * 1000,
        "max_ms": _num(r"Average Latency \(s\):.*max ([\d.]+)\)", text, 0.0) * 1000,
        "stddev_ms": _num(r"Latency StdDev \(s\):\s+([\d.]+)", text, 0.0) * 1000,
        "rcodes": (re.search(r"Response codes:\s+(.*)$", text, re.M) or [None, ""])[1],
    }


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def run(port, qfile, duration, clients, outstanding, cpus=None, rate=None, verbose_out=None,
        server_pid=None, procs=None, threads=1):
    """One dnsperf run. Returns the parsed report plus, with `verbose_out`,
    latency percentiles, and the CPU used by client and server."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-c", str(clients),
            "-T", str(threads), "-q", str(outstanding), "-l", str(duration)]
    if rate:
        argv += ["-Q", str(int(rate))]
    if verbose_out:
        argv += ["-v"]
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    srv_pids = servers.tree_pids(server_pid) if server_pid else []
    srv0 = servers.cpu_ticks(srv_pids)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys0, irq0 = servers.system_ticks()
    t0 = time.monotonic()
    out = open(verbose_out, "w") if verbose_out else subprocess.PIPE
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True, start_new_session=True)
    if procs:
        procs.transient.append(p)
        if procs.nice:
            servers.set_priority(p.pid, procs.nice)
    stdout, stderr = p.communicate(timeout=duration + 60)
    if procs:
        procs.transient.remove(p)
    wall = time.monotonic() - t0
    hz = os.sysconf("SC_CLK_TCK")
    srv_cpu = (servers.cpu_ticks(srv_pids) - srv0) / hz
    sys1, irq1 = servers.system_ticks()
    sys_cpu, irq_cpu = (sys1 - sys0) / hz, (irq1 - irq0) / hz
    # dnsperf is the only child reaped meanwhile (servers are reaped when
    # stopped), so the growth of the children's rusage is its CPU time.
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    if verbose_out:
        out.close()
        with open(verbose_out) as f:
            text = f.read()
    else:
        text = stdout
    if p.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({p.returncode}): {stderr.strip()}")
    res = parse_report(text)
    res["client_cpu"] = client_cpu / max(wall, 1e-9)
    # Everything else the machine did meanwhile (other processes, kernel
    # threads): a noise indicator. Softirq work done in the server's or
    # dnsperf's context is already charged to them.
    res["other_cpu"] = max(0.0, (sys_cpu - srv_cpu - client_cpu) / max(wall, 1e-9))
    res["irq_cpu"] = irq_cpu / max(wall, 1e-9)
    res["server_cpu"] = srv_cpu / max(wall, 1e-9)
    if verbose_out:
        lat = sorted(float(m) * 1000 for m in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", text, re.M))
        res["p50_ms"] = percentile(lat, 50)
        res["p99_ms"] = percentile(lat, 99)
        res["p999_ms"] = percentile(lat, 99.9)
        res["samples"] = len(lat)
        os.unlink(verbose_out)
    return res

