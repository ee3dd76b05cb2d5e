"""`scripts/bench proxy`: sixgate's plain-HTTP proxy against HAProxy.

One nginx backend (on [::1]:P6 and 127.0.0.1:P4) answers `GET /` with
"hello\\n" and serves a large file at /bulk. Three paths reach it, all on
loopback:

- direct:  client -> nginx 127.0.0.1:P4;
- sixgate: client -> `sixgate serve --proxy-http 127.0.0.1:0` -> nginx [::1]:P6,
  routed by `Host: app.example.test` (zone example.test with app AAAA ::1,
  `sixgate proxy enable app.example.test --backend-http-port P6`);
- haproxy: client -> HAProxy (mode http, option forwardfor, nbthread 1,
  an ACL on Host) -> nginx [::1]:P6.

Measured, in alternating rounds: wrk keep-alive requests/s and p99 (one
thread, 32 connections), the same with `Connection: close` (a new TCP
connection per request, to the proxy and from the proxy to nginx), the
time to download the bulk file once (MB/s, best of 3), then each proxy's
VmRSS, and its VmRSS growth per idle client connection (N connections
opened, nothing sent).

Each wrk run also reads the CPU time (utime+stime in /proc) of the server
process of its path (nginx for direct, the proxy alone otherwise):
requests per server CPU second, what the proxy costs whether or not wrk
kept it busy.

The proxies and nginx share the server CPU(s); wrk and the Python client
get the others. Ratios are sixgate/haproxy: above 1 is better for rates,
below 1 for times and memory. With `--baseline`, a second sixgate proxy
(`baseline`, built from another revision, with its own store) is a path of
its own, ratios sixgate/baseline (current/baseline, read the same way),
and the direct and HAProxy paths are left out unless `--baseline-peers`.
"""

import os
import re
import resource
import socket
import subprocess
import time

import baseline
import servers

HOST = "app.example.test"
PATHS = ("direct", "sixgate", baseline.BASELINE, "haproxy")
PEERS = ("direct", "haproxy")


def say(msg):
    print(msg, flush=True)


def _wait_connect(proc, host, port, log_path, name, timeout=20, extra=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise servers.StartError(f"{name} exited; log {log_path}:\n{_tail(log_path)}")
        if extra is None or extra():
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                pass
        time.sleep(0.01)
    raise servers.StartError(f"{name} did not listen on {host}:{port}; log {log_path}:\n{_tail(log_path)}")


def _tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def start_nginx(procs, tmp, bulk, cpus):
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    p6, p4 = _free_port6(), servers.free_port()
    conf = f"""master_process off;
daemon off;
error_log {d}/logs/error.log;
pid {d}/nginx.pid;
worker_rlimit_nofile 20000;
events {{ worker_connections 10000; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  sendfile on;
  keepalive_requests 1000000;
  server {{
    listen [::1]:{p6};
    listen 127.0.0.1:{p4};
    location /bulk {{ alias {bulk}; default_type application/octet-stream; }}
    location / {{ return 200 "hello\\n"; }}
  }}
}}
"""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    log = os.path.join(tmp, "nginx.log")
    p = procs.spawn(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf")], log, cpus=cpus)
    pid = os.path.join(d, "nginx.pid")
    _wait_connect(p, "127.0.0.1", p4, log, "nginx", extra=lambda: os.path.exists(pid))
    _wait_connect(p, "::1", p6, log, "nginx")
    return p, p6, p4


def serve_help(binary, _cache={}):
    """`sixgate serve --help` of `binary`: which flags this build has."""
    if binary not in _cache:
        r = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True)
        _cache[binary] = r.stdout + r.stderr
    return _cache[binary]


def start_sixgate(procs, binary, tmp, backend_port, cpus, label="sixgate", threads=1):
    data = os.path.join(tmp, label)
    zfile = os.path.join(tmp, "zones", "example.test.zone")
    with open(zfile, "w") as f:
        f.write("$ORIGIN example.test.\n@ 300 SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ 300 NS ns1\n"
                "ns1 300 A 192.0.2.1\napp 300 AAAA ::1\n")
    servers.sixgate_import(binary, data, "example.test.", zfile)
    for argv in (["proxy", "addresses", "set", "198.51.100.7", "--data", data],
                 ["proxy", "enable", HOST, "--backend-http-port", str(backend_port), "--data", data]):
        r = subprocess.run([binary, *argv], capture_output=True, text=True)
        if r.returncode != 0:
            raise servers.StartError(f"sixgate {' '.join(argv)}: {r.stdout}{r.stderr}".strip())
    log = os.path.join(tmp, f"{label}-proxy.log")
    argv = [binary, "serve", "--data", data, "--dns", "127.0.0.1:0", "--api", "127.0.0.1:0",
            "--proxy-http", "127.0.0.1:0", "--proxy-allow-backend", "::1/128", "--workers", "1"]
    help_text = serve_help(binary)
    if "--proxy-threads" in help_text:
        argv += ["--proxy-threads", str(threads)]
    if "--metrics" in help_text:
        argv += ["--metrics", "127.0.0.1:0"]  # not the fixed default port, taken by the first instance
    # sixgate reads SIXGATE_LOG (not RUST_LOG): warnings only, as HAProxy
    # logs nothing here.
    p = procs.spawn(argv, log, cpus=cpus, env=dict(os.environ, SIXGATE_LOG="warn"))
    deadline = time.monotonic() + 120
    while True:
        if p.poll() is not None or time.monotonic() > deadline:
            raise servers.StartError(f"sixgate serve did not get ready; log {log}:\n{_tail(log)}")
        with open(log, errors="replace") as f:
            text = f.read()
        m = re.search(r"^listening proxy-http 127\.0\.0\.1:(\d+)$", text, re.M)
        if m and re.search(r"^ready$", text, re.M):
            return p, int(m.group(1)), log
        time.sleep(0.005)


def start_haproxy(procs, tmp, backend_port, cpus, threads=1):
    port = servers.free_port()
    cfg = os.path.join(tmp, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
    nbthread {threads}
    maxconn 5000
defaults
    mode http
    option forwardfor
    http-reuse safe
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    timeout http-request 60s
frontend fe
    bind 127.0.0.1:{port}
    acl app hdr(host) -i {HOST}
    use_backend be if app
backend be
    server s1 [::1]:{backend_port}
""")
    log = os.path.join(tmp, "haproxy.log")
    p = procs.spawn(["haproxy", "-f", cfg, "-db"], log, cpus=cpus)
    _wait_connect(p, "127.0.0.1", port, log, "haproxy")
    return p, port, log


def get(port, path="/", timeout=10):
    """One request with Connection: close; (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        buf = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    head, _, body = bytes(buf).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def bulk(port, size):
    """Downloads /bulk once; returns MB/s (10^6 bytes) from sending the
    request to the last byte, or None if the body was short (the bytes
    received are then recorded in `short`)."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    t0 = time.perf_counter()
    got = 0
    head_len = None
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET /bulk HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        first = bytearray()
        while head_len is None:
            n = s.recv_into(view)
            if not n:
                return None
            first += view[:n]
            i = first.find(b"\r\n\r\n")
            if i >= 0:
                head_len = i + 4
                got = len(first) - head_len
        while True:
            n = s.recv_into(view)
            if not n:
                break
            got += n
    dt = time.perf_counter() - t0
    if got != size:
        short.append(got)
        return None
    return size / dt / 1e6


short = []  # body bytes of the short bulk downloads, in order

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def wrk(port, seconds, cpus, procs, close=False, conns=32, server_pid=None):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-H", f"Host: {HOST}"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    pids = servers.tree_pids(server_pid) if server_pid else []
    c0 = servers.cpu_ticks(pids)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    procs.transient.append(p)
    try:
        out, _ = p.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0] + " (killed: wrk hung)"
    procs.transient.remove(p)
    cpu_s = (servers.cpu_ticks(pids) - c0) / os.sysconf("SC_CLK_TCK")
    x = {"rps": None, "p50_ms": None, "p99_ms": None, "non2xx": 0, "socket_errors": 0, "requests": 0,
         "server_cpu_s": cpu_s if pids else None}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if m:
        x["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            x[key] = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        x["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        x["socket_errors"] = sum(int(g) for g in m.groups())
    m = re.search(r"(\d+) requests in", out)
    if m:
        x["requests"] = int(m.group(1))
    x["per_cpu_s"] = x["requests"] / cpu_s if pids and cpu_s > 0 else None
    if x["rps"] is None:
        x["output"] = out
    return x


def idle_conns(pid, port, n, settle=1.0):
    """Opens n client connections that send nothing; returns (KiB of VmRSS
    per connection, connections the server had closed by the end)."""
    before, _ = servers.mem(pid)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        time.sleep(settle)
        after, _ = servers.mem(pid)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
    finally:
        for s in socks:
            s.close()
    return (after - before) / n, closed, before, after


def run(args, procs, tmp, srv_cpus, cli_cpus, res):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.idle + 1000))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by the servers too
    size = args.bulk_mb * 1_000_000
    bulk_file = os.path.join(tmp, "bulk.bin")
    with open(bulk_file, "wb") as f:
        for _ in range(args.bulk_mb):
            f.write(os.urandom(1_000_000))
    res["bulk_bytes"] = size
    ports, pids = {}, {}
    try:
        ng, p6, p4 = start_nginx(procs, tmp, bulk_file, srv_cpus)
        say(f"# nginx on [::1]:{p6} and 127.0.0.1:{p4} (CPUs {srv_cpus or 'any'}, with the proxies)")
        pids["nginx"] = ng.pid
        for k in args.paths:
            if k == "direct":
                ports[k] = p4
            elif k in args.bins:
                p, ports[k], _ = start_sixgate(procs, args.bins[k], tmp, p6, srv_cpus, k, threads=args.workers)
                pids[k] = p.pid
                say(f"# {k} proxy-http on 127.0.0.1:{ports[k]}")
            else:
                p, ports[k], _ = start_haproxy(procs, tmp, p6, srv_cpus, threads=args.workers)
                pids[k] = p.pid
                say(f"# haproxy on 127.0.0.1:{ports[k]}")
    except servers.StartError as e:
        say(f"# ERROR: {e}")
        res.setdefault("errors", []).append(str(e))
        return
    # The process whose CPU a path's wrk run costs.
    server_of = {k: pids["nginx" if k == "direct" else k] for k in ports}
    res["rss_start_mib"] = {k: servers.mem(p)[0] / 1024 for k, p in pids.items()}
    if cli_cpus:
        os.sched_setaffinity(0, [int(c) for c in cli_cpus.split(",")])
    for k, port in ports.items():
        st, body = get(port)
        if st != 200 or body != b"hello\n":
            msg = f"{k}: GET / gave {st} {body[:80]!r}"
            say(f"# ERROR: {msg}")
            res.setdefault("errors", []).append(msg)
            return
    say("# check: GET / answers 200 hello through every path")

    for k, port in ports.items():  # warm-up
        wrk(port, 1, cli_cpus, procs)
    runs = {case: {k: [] for k in ports} for case in ("keepalive", "close")}
    for r in range(args.rounds):
        for case in runs:
            for k, port in baseline.order(ports, r, args.alternate):
                x = wrk(port, args.duration, cli_cpus, procs, close=(case == "close"), server_pid=server_of[k])
                runs[case][k].append(x)
                if x["rps"] is None:
                    say(f"# round {r + 1} {case} {k}: wrk failed: {x.get('output', '')[-300:]}")
                    continue
                say(f"# round {r + 1} {case:9s} {k:8s} req/s {x['rps']:9.0f}  p50 {x['p50_ms']:.3f} ms"
                    f"  p99 {x['p99_ms']:.3f} ms  non-2xx {x['non2xx']}  socket errors {x['socket_errors']}"
                    f"  req per server CPU s {fmt(x['per_cpu_s'])}")
    res["wrk"] = runs

    mbs = {k: [] for k in ports}
    for i in range(3):
        for k, port in baseline.order(ports, i, args.alternate):
            n = len(short)
            mbs[k].append(bulk(port, size))
            if len(short) > n:
                res.setdefault("bulk_short", []).append(f"{k} {short[-1]}/{size}")
    res["bulk_runs"] = mbs
    say("# bulk MB/s (3 downloads each): " + "  ".join(
        f"{k} " + "/".join("short" if v is None else f"{v:.0f}" for v in vs) for k, vs in mbs.items()))
    for line in res.get("bulk_short", []):
        say(f"# bulk download short: {line} bytes of body before the connection closed")

    res["rss_mib"] = {k: servers.mem(p)[0] / 1024 for k, p in pids.items()}
    say("# VmRSS after the runs MiB: " + "  ".join(f"{k} {v:.1f}" for k, v in res["rss_mib"].items()))
    res["idle"] = {}
    for k in [k for k in ports if k != "direct"]:
        per, closed, before, after = idle_conns(pids[k], ports[k], args.idle)
        res["idle"][k] = {"kib_per_conn": per, "closed": closed, "rss_before_kib": before, "rss_after_kib": after}
        say(f"# {k}: {args.idle} idle connections: VmRSS {before} -> {after} KiB, {per:.2f} KiB each,"
            f" {closed} closed by the server within the {1.0:.0f} s")


# --- report -------------------------------------------------------------------

def _med(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def fmt(x, nd=0):
    return "n/a" if x is None else f"{x:.{nd}f}"


def rows(res):
    """(label, {path: value}, decimals, higher is better)."""
    out = []
    for case, label in (("keepalive", "keep-alive"), ("close", "new conn/request")):
        w = res.get("wrk", {}).get(case)
        if not w:
            continue
        out.append((f"{label} req/s", {k: _med([x["rps"] for x in v]) for k, v in w.items()}, 0, True))
        out.append((f"{label} p99 ms", {k: _med([x["p99_ms"] for x in v]) for k, v in w.items()}, 2, False))
        out.append((f"{label} req/server CPU s",
                    {k: _med([x.get("per_cpu_s") for x in v]) for k, v in w.items()}, 0, True))
        bad = {k: sum(x["non2xx"] + x["socket_errors"] for x in v) for k, v in w.items()}
        if any(bad.values()):
            out.append((f"{label} errors+non-2xx", bad, 0, False))
    if "bulk_runs" in res:
        out.append((f"bulk {res['bulk_bytes'] // 1_000_000} MB MB/s",
                    {k: max((x for x in v if x is not None), default=None) for k, v in res["bulk_runs"].items()},
                    0, True))
    if "rss_mib" in res:
        out.append(("VmRSS after runs MiB", {k: v for k, v in res["rss_mib"].items() if k in PATHS}, 1, False))
    if "idle" in res:
        out.append(("KiB per idle conn", {k: v["kib_per_conn"] for k, v in res["idle"].items()}, 2, False))
    return out


def _ratio(v, other="haproxy"):
    sg, o = v.get("sixgate"), v.get(other)
    return sg / o if sg is not None and o else None


def _paths(res):
    return [k for k in PATHS if k in res.get("wrk", {}).get("keepalive", {})]


def tables(args, res):
    ks = _paths(res)
    others = [o for o in (baseline.BASELINE, "haproxy") if o in ks]
    short = {baseline.BASELINE: "sg/base", "haproxy": "sg/hap"}
    out = [f"{'':34s}" + "".join(f" {k:>9s}" for k in ks) + "".join(f" {short[o]:>7s}" for o in others)
           + "  (rates: >1 sixgate better; times, memory: <1 sixgate better"
           + ("; sg/base is current/baseline)" if baseline.BASELINE in ks else ")")]
    for label, v, nd, _ in rows(res):
        out.append(f"{label:34s}" + "".join(f" {fmt(v.get(k), nd):>9s}" for k in ks)
                   + "".join(f" {fmt(_ratio(v, o), 2):>7s}" for o in others))
    if res.get("bulk_short"):
        out.append("(short bulk downloads, body bytes received: " + ", ".join(res["bulk_short"]) + ")")
    if "idle" in res:
        closed = {k: x["closed"] for k, x in res["idle"].items() if x["closed"]}
        if closed:
            out.append("(idle connections closed by the server before the measurement: "
                       + ", ".join(f"{k} {n}" for k, n in closed.items()) + ")")
    out.append("(req/server CPU s: requests per CPU second of nginx for direct, of the proxy process alone"
               " otherwise)")
    return out


def summary(args, res):
    lines = []
    ks = _paths(res)
    others = [o for o in (baseline.BASELINE, "haproxy") if o in ks]
    for label, v, nd, _ in rows(res):
        lines.append(f"proxy {label}: " + " ".join(f"{k} {fmt(v.get(k), nd)}" for k in ks if k in v)
                     + (" ratio " + " ".join(f"sixgate/{o} {fmt(_ratio(v, o), 2)}" for o in others)
                        if others else ""))
    if res.get("errors"):
        lines.append(f"errors: {len(res['errors'])} (see the log above)")
    return lines
