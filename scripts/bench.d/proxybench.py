"""`scripts/bench proxy`: sixgate's proxy against HAProxy, plain HTTP and
TLS passthrough, with access logging off and on.

One nginx backend answers `GET /` with "hello\\n" and serves a large file
at /bulk, over plain HTTP on [::1]:P6 and 127.0.0.1:P4, and over TLS (an
ECDSA P-256 certificate made with openssl in the temp dir, no session
tickets, no session cache: every connection a full handshake) on [::1]:T6
and 127.0.0.1:T4. The paths, all on loopback:

- direct:  client -> nginx 127.0.0.1:P4 (or T4);
- sixgate: client -> `sixgate serve --proxy-http 127.0.0.1:0 --proxy-tls
  127.0.0.1:0` -> nginx [::1], routed by `Host` or the SNI
  `app.example.test` (zone example.test with app AAAA ::1, `sixgate proxy
  enable app.example.test --backend-http-port P6 --backend-tls-port T6`);
- haproxy: client -> HAProxy (`mode http`, `option forwardfor`,
  `http-reuse safe`, an ACL on Host; and a `mode tcp` frontend routing on
  `req.ssl_sni`) -> nginx [::1].

Both proxies get the same number of threads (`--workers`, the CPUs the
servers are pinned to): HAProxy `nbthread`, sixgate `--proxy-threads`
(passed when `sixgate serve --help` lists it). sixgate logs at warn
(SIXGATE_LOG), HAProxy has no log line, unless access logging is on.

Each proxy runs twice, once with access logging off and once on ("log
off", "log on" sets of rows; `--access-log` picks): sixgate with
`--proxy-access-log text --proxy-access-log-path FILE` (skipped, with a
note, when the binary has no such flag), HAProxy with `log stdout format
raw local0`, `option httplog` / `option tcplog`, its stdout in a file. At
the end the lines of each log are counted against the requests the
clients got answers to, so a log that writes nothing is caught. nginx
never logs; direct is measured once, in the first set.

Measured, in alternating rounds where a baseline takes part:

- wrk (one thread, 32 connections) keep-alive, and with `Connection:
  close` (a new TCP connection per request, to the proxy and from the
  proxy to nginx): requests/s and p99, the proxy's CPU seconds (utime +
  stime from /proc) and its CPU ms per 1,000 requests (= connections for
  the closing case);
- p50/p99/p99.9 at a fixed rate, `--rate-fraction` (0.5) of HAProxy's
  keep-alive requests/s of the same set, measured just before: `proxyload
  rate`, open loop, each latency from the request's scheduled send time;
- TLS passthrough: `proxyload tls` (`--tls-threads` threads, a new TLS
  connection with SNI, one GET and its answer per connection), handshakes/s
  and the proxy's CPU ms per 1,000 connections;
- the time to download the bulk file once (MB/s, best of 3);
- VmRSS after the runs; VmRSS with `--idle` client connections each kept
  open after one request and its answer, and the growth per connection;
  the same with connections that send nothing.

The idle clients come from as many loopback addresses (127.0.0.2, ...) and
hostnames (idle1.example.test, ...) as sixgate's default `[proxy.limits]`
need to let them all in (per_address 512, per_host 3750): the limits stay
on, the clients look like many visitors of several sites.

The proxies and nginx share the server CPU(s); wrk, proxyload and the
Python client get the others. Ratios are sixgate/haproxy: above 1 is better
for rates, below 1 for times, CPU per unit and memory. With `--baseline`, a
second sixgate proxy (`baseline`, built from another revision, with its
own store) is a path of its own, ratios sixgate/baseline (current/baseline,
read the same way), and the direct and HAProxy paths are left out unless
`--baseline-peers`.
"""

import math
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
MODES = ("off", "on")
CLIENT = "proxyload"
# sixgate's default [proxy.limits] that the idle phase must stay under.
PER_ADDRESS = 512
PER_HOST = 3750
IDLE_PER_SOURCE = 400
IDLE_PER_HOST = 2500
# HAProxy's raw httplog and tcplog lines start with the client's address.
HAPROXY_LINE = re.compile(r"^\d+\.\d+\.\d+\.\d+:\d+ \[", re.M)


def say(msg):
    print(msg, flush=True)


def build_client(root, no_build, say=say):
    """The path of `proxyload` (tests/e2e/src/bin/proxyload.rs), built
    with the release profile unless `no_build` and it exists."""
    path = os.path.join(root, "target", "release", CLIENT)
    if no_build and os.access(path, os.X_OK):
        return path
    say(f"# cargo build --release -p sixgate-e2e --bin {CLIENT}")
    subprocess.run(["cargo", "build", "--release", "-p", "sixgate-e2e", "--bin", CLIENT], cwd=root, check=True)
    return path


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


def make_cert(tmp):
    """A self-signed ECDSA P-256 certificate for HOST: (cert.pem, key.pem,
    cert.der), the DER for proxyload to recognise the backend by."""
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)
    pem, key, der = (os.path.join(d, n) for n in ("cert.pem", "key.pem", "cert.der"))
    for argv in (["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", key, "-out", pem, "-days", "2", "-subj", f"/CN={HOST}",
                  "-addext", f"subjectAltName=DNS:{HOST}"],
                 ["openssl", "x509", "-in", pem, "-outform", "DER", "-out", der]):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise servers.StartError(f"{' '.join(argv[:3])}: {r.stderr.strip()}")
    return pem, key, der


def start_nginx(procs, tmp, bulk, cpus, tls=None, conns=10000):
    """nginx on [::1]:P6 and 127.0.0.1:P4; returns (process, P6, P4). With
    `tls` (cert.pem, key.pem) also TLS on [::1]:T6 and 127.0.0.1:T4, as
    the process's `tls_ports` (T6, T4)."""
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    p6, p4 = _free_port6(), servers.free_port()
    t6, t4 = (_free_port6(), servers.free_port()) if tls else (None, None)
    tls_server = ""
    if tls:
        tls_server = f"""  server {{
    listen [::1]:{t6} ssl;
    listen 127.0.0.1:{t4} ssl;
    ssl_certificate {tls[0]};
    ssl_certificate_key {tls[1]};
    ssl_session_tickets off;
    ssl_session_cache off;
    location / {{ return 200 "hello\\n"; }}
  }}
"""
    conf = f"""master_process off;
daemon off;
error_log {d}/logs/error.log;
pid {d}/nginx.pid;
worker_rlimit_nofile {2 * conns};
events {{ worker_connections {conns}; }}
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
{tls_server}}}
"""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    log = os.path.join(tmp, "nginx.log")
    p = procs.spawn(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf")], log, cpus=cpus)
    pid = os.path.join(d, "nginx.pid")
    _wait_connect(p, "127.0.0.1", p4, log, "nginx", extra=lambda: os.path.exists(pid))
    _wait_connect(p, "::1", p6, log, "nginx")
    if tls:
        _wait_connect(p, "::1", t6, log, "nginx")
        _wait_connect(p, "127.0.0.1", t4, log, "nginx")
    p.tls_ports = (t6, t4)
    return p, p6, p4


def serve_help(binary, _cache={}):
    """`sixgate serve --help` of `binary`: which flags this build has."""
    if binary not in _cache:
        r = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True)
        _cache[binary] = r.stdout + r.stderr
    return _cache[binary]


def has_access_log(binary):
    return "--proxy-access-log" in serve_help(binary)


def start_sixgate(procs, binary, tmp, backend_port, cpus, label="sixgate", threads=1, tls_port=None,
                  idle_hosts=(), access_log=None):
    """`sixgate serve` with the HTTP proxy (and with `tls_port`, the TLS
    proxy routing HOST there); returns (process, HTTP port, TLS port or
    None, log path). `access_log` is the path of a text access log."""
    data = os.path.join(tmp, label)
    zfile = os.path.join(tmp, "zones", "example.test.zone")
    with open(zfile, "w") as f:
        f.write("$ORIGIN example.test.\n@ 300 SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ 300 NS ns1\n"
                "ns1 300 A 192.0.2.1\napp 300 AAAA ::1\n" + "".join(f"{h.split('.')[0]} 300 AAAA ::1\n"
                                                                   for h in idle_hosts))
    servers.sixgate_import(binary, data, "example.test.", zfile)
    tls_args = ["--backend-tls-port", str(tls_port)] if tls_port else []
    cmds = [["proxy", "addresses", "set", "198.51.100.7", "--data", data],
            ["proxy", "enable", HOST, "--backend-http-port", str(backend_port), *tls_args, "--data", data]]
    cmds += [["proxy", "enable", h, "--backend-http-port", str(backend_port), "--data", data] for h in idle_hosts]
    for argv in cmds:
        r = subprocess.run([binary, *argv], capture_output=True, text=True)
        if r.returncode != 0:
            raise servers.StartError(f"sixgate {' '.join(argv)}: {r.stdout}{r.stderr}".strip())
    log = os.path.join(tmp, f"{label}-proxy.log")
    argv = [binary, "serve", "--data", data, "--dns", "127.0.0.1:0", "--api", "127.0.0.1:0",
            "--proxy-http", "127.0.0.1:0", "--proxy-allow-backend", "::1/128", "--workers", "1"]
    if tls_port:
        argv += ["--proxy-tls", "127.0.0.1:0"]
    help_text = serve_help(binary)
    if "--proxy-threads" in help_text:
        argv += ["--proxy-threads", str(threads)]
    if "--metrics" in help_text:
        argv += ["--metrics", "127.0.0.1:0"]  # not the fixed default port, taken by the first instance
    if access_log:
        argv += ["--proxy-access-log", "text", "--proxy-access-log-path", access_log]
    # sixgate reads SIXGATE_LOG (not RUST_LOG): warnings only, as HAProxy
    # logs nothing here; the access log, when on, is a file of its own.
    p = procs.spawn(argv, log, cpus=cpus, env=dict(os.environ, SIXGATE_LOG="warn"))
    deadline = time.monotonic() + 120
    while True:
        if p.poll() is not None or time.monotonic() > deadline:
            raise servers.StartError(f"sixgate serve did not get ready; log {log}:\n{_tail(log)}")
        with open(log, errors="replace") as f:
            text = f.read()
        m = re.search(r"^listening proxy-http 127\.0\.0\.1:(\d+)$", text, re.M)
        t = re.search(r"^listening proxy-tls 127\.0\.0\.1:(\d+)$", text, re.M)
        if m and (t or not tls_port) and re.search(r"^ready$", text, re.M):
            return p, int(m.group(1)), int(t.group(1)) if t else None, log


def start_haproxy(procs, tmp, backend_port, cpus, threads=1, tls_port=None, idle_hosts=(), log_on=False,
                  label="haproxy", maxconn=5000):
    """HAProxy in `mode http` (and with `tls_port`, a `mode tcp` frontend
    routing HOST's SNI there); returns (process, HTTP port, TLS port or
    None, log path). With `log_on` every request and every TCP connection
    is logged to stdout, which is the log file."""
    port = servers.free_port()
    tport = servers.free_port() if tls_port else None
    cfg = os.path.join(tmp, f"{label}.cfg")
    glog, dlog, hlog, tlog = ("    log stdout format raw local0\n", "    log global\n", "    option httplog\n",
                              "    option tcplog\n") if log_on else ("", "", "", "")
    tls = f"""frontend fe_tls
    mode tcp
{tlog}    bind 127.0.0.1:{tport}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend be_tls if {{ req.ssl_sni -i {HOST} }}
backend be_tls
    mode tcp
    server s1 [::1]:{tls_port}
""" if tls_port else ""
    with open(cfg, "w") as f:
        f.write(f"""global
    nbthread {threads}
    maxconn {maxconn}
{glog}defaults
{dlog}    timeout connect 3s
    timeout client 60s
    timeout server 60s
frontend fe
    mode http
{hlog}    option forwardfor
    timeout http-request 60s
    bind 127.0.0.1:{port}
    acl app hdr(host) -i {' '.join((HOST, *idle_hosts))}
    use_backend be if app
backend be
    mode http
    http-reuse safe
    server s1 [::1]:{backend_port}
{tls}""")
    log = os.path.join(tmp, f"{label}.log")
    p = procs.spawn(["haproxy", "-f", cfg, "-db"], log, cpus=cpus)
    _wait_connect(p, "127.0.0.1", port, log, "haproxy")
    if tport:
        _wait_connect(p, "127.0.0.1", tport, log, "haproxy")
    return p, port, tport, log


def get(port, path="/", timeout=10, host=HOST):
    """One request with Connection: close; (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
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


def _cpu(pid):
    pids = servers.tree_pids(pid) if pid else []
    return pids, servers.cpu_ticks(pids)


def _cpu_s(pids, c0):
    return (servers.cpu_ticks(pids) - c0) / os.sysconf("SC_CLK_TCK") if pids else None


def _per_1k(cpu_s, n):
    """CPU ms per 1,000 requests (or connections)."""
    return cpu_s * 1e6 / n if cpu_s is not None and n else None


def _run_client(argv, cpus, procs, timeout):
    """Runs one client to its end; (exit code, output, its CPU seconds)."""
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    procs.transient.append(p)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0] + " (killed: client hung)"
    procs.transient.remove(p)
    # Only this child is reaped meanwhile (taskset execs the client).
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return p.returncode, out, cpu


def wrk(port, seconds, cpus, procs, close=False, conns=32, server_pid=None):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-H", f"Host: {HOST}"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    pids, c0 = _cpu(server_pid)
    _, out, client_cpu = _run_client(argv, cpus, procs, seconds + 60)
    cpu_s = _cpu_s(pids, c0)
    x = {"rps": None, "p50_ms": None, "p99_ms": None, "non2xx": 0, "socket_errors": 0, "requests": 0,
         "server_cpu_s": cpu_s, "client_cpu_s": client_cpu, "seconds": seconds}
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
    x["per_cpu_s"] = x["requests"] / cpu_s if cpu_s else None
    x["cpu_ms_per_1k"] = _per_1k(cpu_s, x["requests"])
    if x["rps"] is None:
        x["output"] = out
    return x


def _kv(out):
    """proxyload's `key value` lines."""
    x = {}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        if re.fullmatch(r"[a-z0-9_]+", k) and v:
            try:
                x[k] = float(v)
            except ValueError:
                x[k] = None
    return x


def _client_run(argv, seconds, cpus, procs, server_pid, done, result):
    """Runs one `proxyload` client for `seconds` and reads its key=value
    lines, with the server's and the client's CPU seconds, and the
    server's CPU ms per 1,000 of `done`; `output` is kept when `result` is
    missing."""
    pids, c0 = _cpu(server_pid)
    rc, out, client_cpu = _run_client(argv, cpus, procs, seconds + 60)
    cpu_s = _cpu_s(pids, c0)
    x = _kv(out) if rc == 0 else {}
    x["server_cpu_s"], x["client_cpu_s"], x["seconds"] = cpu_s, client_cpu, seconds
    x["cpu_ms_per_1k"] = _per_1k(cpu_s, x.get(done))
    if rc != 0 or result not in x:
        x["output"] = out
    return x


def fixed_rate(client, port, rate, seconds, cpus, procs, conns=32, server_pid=None):
    """`proxyload rate`: keep-alive GETs at `rate` req/s for `seconds`."""
    argv = [client, "rate", "--addr", f"127.0.0.1:{port}", "--host", HOST, "--rate", f"{rate:.0f}",
            "--duration", str(seconds), "--connections", str(conns)]
    return _client_run(argv, seconds, cpus, procs, server_pid, "completed", "p99_us")


def tls_run(client, port, der, seconds, threads, cpus, procs, server_pid=None):
    """`proxyload tls`: new TLS connections with SNI HOST for `seconds`."""
    argv = [client, "tls", "--addr", f"127.0.0.1:{port}", "--sni", HOST, "--cert", der,
            "--duration", str(seconds), "--threads", str(threads)]
    return _client_run(argv, seconds, cpus, procs, server_pid, "ok", "handshakes_per_s")


def _read_answer(s):
    """Reads one Content-Length answer from `s`; its status, or 0."""
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        if not b:
            return 0
        buf += b
    head, _, body = bytes(buf).partition(b"\r\n\r\n")
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    want = int(m.group(1)) if m else 0
    while len(body) < want:
        b = s.recv(4096)
        if not b:
            return 0
        body += b
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0


def idle_conns(pid, port, n, hosts, settle=1.0):
    """Opens n client connections from ceil(n / IDLE_PER_SOURCE) loopback
    addresses and leaves them idle, nothing sent; then sends one GET on
    each (Host one of `hosts`, in turn), reads its answer and leaves them
    idle again. Both VmRSS readings are taken `settle` s after the step,
    against the one before the first connection: a second round of
    connections would reuse what the first freed. Returns {"rss_before_kib",
    "rss_empty_kib", "rss_after_kib", "empty_kib_per_conn", "kib_per_conn",
    "not_200": answers that were not 200, "closed": connections the server
    had closed by the end}."""
    sources = [f"127.0.0.{2 + i}" for i in range(math.ceil(n / IDLE_PER_SOURCE))]
    before, _ = servers.mem(pid)
    socks = []
    bad = 0
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.settimeout(10)
            s.bind((sources[i % len(sources)], 0))
            s.connect(("127.0.0.1", port))
        time.sleep(settle)
        empty, _ = servers.mem(pid)
        batch = 200
        for i0 in range(0, n, batch):
            part = list(enumerate(socks))[i0:i0 + batch]
            for i, s in part:
                try:
                    s.sendall(f"GET / HTTP/1.1\r\nHost: {hosts[i % len(hosts)]}\r\n\r\n".encode())
                except OSError:
                    pass  # closed by the server: seen as a bad answer below
            for _, s in part:
                try:
                    if _read_answer(s) != 200:
                        bad += 1
                except OSError:
                    bad += 1
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
    return {"rss_before_kib": before, "rss_empty_kib": empty, "rss_after_kib": after,
            "empty_kib_per_conn": (empty - before) / n, "kib_per_conn": (after - before) / n,
            "not_200": bad, "closed": closed}


def raise_nofile(want):
    """Raises RLIMIT_NOFILE (inherited by the servers) towards `want`, the
    hard limit too when allowed (root); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if want > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            pass
    want = min(hard, max(soft, want))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return max(soft, want)


def _count_lines(path, pattern=None):
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return 0
    if pattern is not None:
        return len(pattern.findall(text))
    return sum(1 for line in text.splitlines() if line.strip())


# --- the run --------------------------------------------------------------------


class Inst:
    """One proxy (or direct) instance of one log set."""

    def __init__(self, path, mode, pid, http, tls, proc=None, access_log=None):
        self.path, self.mode, self.pid, self.http, self.tls = path, mode, pid, http, tls
        self.proc, self.access_log = proc, access_log
        self.answered = 0  # requests (connections for TLS) the clients got an answer to


def _note(res, msg):
    say(f"# note: {msg}")
    res.setdefault("notes", []).append(msg)


def _error(res, msg):
    say(f"# ERROR: {msg}")
    res.setdefault("errors", []).append(msg)


def run(args, procs, tmp, srv_cpus, cli_cpus, res):
    n_idle = args.idle
    idle_hosts = [f"idle{i + 1}.example.test" for i in range(math.ceil(n_idle / IDLE_PER_HOST))]
    modes = [m for m in MODES if args.access_log in (m, "both")]
    proxies = [k for k in args.paths if k != "direct"]
    n_inst = len(proxies) * len(modes)
    nofile = raise_nofile(4 * n_idle * max(1, n_inst) + 4000)
    res["nofile"] = nofile
    size = args.bulk_mb * 1_000_000
    bulk_file = os.path.join(tmp, "bulk.bin")
    with open(bulk_file, "wb") as f:
        for _ in range(args.bulk_mb):
            f.write(os.urandom(1_000_000))
    res["bulk_bytes"] = size
    res["idle_n"] = n_idle
    res["modes"] = modes
    insts = {m: {} for m in modes}
    try:
        pem, key, der = make_cert(tmp)
        # nginx keeps the backend side of every idle connection of every
        # proxy (HAProxy's idle pool outlives its client connections).
        ng, p6, p4 = start_nginx(procs, tmp, bulk_file, srv_cpus, tls=(pem, key),
                                 conns=min(nofile // 2, n_idle * max(1, n_inst) + 2000))
        t6, t4 = ng.tls_ports
        say(f"# nginx on [::1]:{p6} and 127.0.0.1:{p4}, TLS on [::1]:{t6} and 127.0.0.1:{t4}"
            f" (CPUs {srv_cpus or 'any'}, with the proxies)")
        res["nginx_pid"] = ng.pid
        for m in modes:
            for k in args.paths:
                if k == "direct":
                    if m == modes[0]:
                        insts[m][k] = Inst(k, m, ng.pid, p4, t4)
                    continue
                label = f"{k}-log{m}"
                if k in args.bins:
                    alog = os.path.join(tmp, f"{label}-access.log") if m == "on" else None
                    if alog and not has_access_log(args.bins[k]):
                        _note(res, f"{k}: this build has no --proxy-access-log; its 'log on' rows are left out")
                        continue
                    p, hp, tp, _ = start_sixgate(procs, args.bins[k], tmp, p6, srv_cpus, label, threads=args.workers,
                                                 tls_port=t6, idle_hosts=idle_hosts, access_log=alog)
                    insts[m][k] = Inst(k, m, p.pid, hp, tp, p, alog)
                else:
                    p, hp, tp, hlog = start_haproxy(procs, tmp, p6, srv_cpus, threads=args.workers, tls_port=t6,
                                                    idle_hosts=idle_hosts, log_on=(m == "on"), label=label,
                                                    maxconn=max(5000, n_idle + 2000))
                    insts[m][k] = Inst(k, m, p.pid, hp, tp, p, hlog if m == "on" else None)
                say(f"# {k} (log {m}) http on 127.0.0.1:{hp}, tls on 127.0.0.1:{tp}")
    except servers.StartError as e:
        _error(res, str(e))
        return
    every = [i for m in modes for i in insts[m].values()]
    res["rss_start_mib"] = {f"{i.path} log {i.mode}": servers.mem(i.pid)[0] / 1024 for i in every}
    res["client_cpus"] = len(cli_cpus.split(",")) if cli_cpus else os.cpu_count()
    if cli_cpus:
        os.sched_setaffinity(0, [int(c) for c in cli_cpus.split(",")])
    for i in every:
        st, body = get(i.http)
        if st != 200 or body != b"hello\n":
            _error(res, f"{i.path} log {i.mode}: GET / gave {st} {body[:80]!r}")
            return
        i.answered += 1
    say("# check: GET / answers 200 hello through every path")
    # A short TLS run through each path: the check that the TLS side
    # routes by SNI to nginx (proxyload checks the certificate), and a
    # warm-up.
    for i in every:
        x = tls_run(args.client, i.tls, der, 1, 2, cli_cpus, procs)
        if not x.get("ok"):
            _error(res, f"{i.path} log {i.mode}: TLS check failed: {x.get('output', '')[-300:]}")
            return
        i.answered += int(x["ok"])
    say("# check: a TLS GET / with SNI answers 200 with nginx's certificate through every path")

    sets = res["sets"] = {m: {} for m in modes}
    order = [(m, k) for k in args.paths for m in modes if k in insts[m]]
    for i in every:  # warm-up
        i.answered += wrk(i.http, 1, cli_cpus, procs)["requests"]
    for m in modes:
        sets[m]["wrk"] = {case: {k: [] for k in insts[m]} for case in ("keepalive", "close")}
        sets[m]["tls"] = {k: [] for k in insts[m]}
    for r in range(args.rounds):
        for case in ("keepalive", "close"):
            for m, k in baseline.order(order, r, args.alternate):
                i = insts[m][k]
                x = wrk(i.http, args.duration, cli_cpus, procs, close=(case == "close"), server_pid=i.pid)
                sets[m]["wrk"][case][k].append(x)
                i.answered += x["requests"]
                if x["rps"] is None:
                    say(f"# round {r + 1} {case} {k} log {m}: wrk failed: {x.get('output', '')[-300:]}")
                    continue
                say(f"# round {r + 1} {case:9s} {k:8s} log {m:3s} req/s {x['rps']:9.0f}  p99 {x['p99_ms']:.3f} ms"
                    f"  non-2xx {x['non2xx']}  socket errors {x['socket_errors']}"
                    f"  CPU {fmt(x['server_cpu_s'], 2)} s, {fmt(x['cpu_ms_per_1k'], 1)} ms per 1k"
                    f"  (wrk CPU {x['client_cpu_s']:.2f} s)")

    # Fixed rate: a fraction of HAProxy's keep-alive capacity of the set,
    # or of the slowest proxy's without HAProxy.
    for m in modes:
        sets[m]["rate"] = {}
        ka = sets[m]["wrk"]["keepalive"]
        cap_of = "haproxy" if "haproxy" in ka else None
        caps = {k: _med([x["rps"] for x in v]) for k, v in ka.items() if k != "direct"}
        cap = caps.get("haproxy") if cap_of else min((c for c in caps.values() if c), default=None)
        rate = args.rate or (cap * args.rate_fraction if cap else None)
        sets[m]["rate_target"] = rate
        sets[m]["rate_basis"] = ("--rate" if args.rate else
                                 f"{args.rate_fraction:g} of {cap_of or 'the slowest proxy'}'s keep-alive req/s")
        if not rate:
            _note(res, f"log {m}: no keep-alive capacity measured, no fixed-rate run")
            continue
        say(f"# log {m}: fixed rate {rate:.0f} req/s ({sets[m]['rate_basis']})")
        sets[m]["rate"] = {k: [] for k in insts[m] if k != "direct"}
    for r in range(args.rounds):
        for m, k in baseline.order([(m, k) for m, k in order if k in sets[m].get("rate", {})], r, args.alternate):
            i = insts[m][k]
            x = fixed_rate(args.client, i.http, sets[m]["rate_target"], args.duration, cli_cpus, procs,
                           server_pid=i.pid)
            sets[m]["rate"][k].append(x)
            i.answered += int(x.get("completed") or 0)
            if "output" in x:
                say(f"# round {r + 1} fixed rate {k} log {m}: proxyload failed: {x['output'][-300:]}")
                continue
            say(f"# round {r + 1} fixed rate {k:8s} log {m:3s} {fmt(x.get('achieved_rate'))} req/s of"
                f" {fmt(x.get('target_rate'))}  p50 {fmt(_us_ms(x.get('p50_us')), 3)} ms"
                f"  p99 {fmt(_us_ms(x.get('p99_us')), 3)} ms  p99.9 {fmt(_us_ms(x.get('p999_us')), 3)} ms"
                f"  errors {fmt(x.get('errors'))}  unfinished {fmt(x.get('unfinished'))}"
                f"  CPU {fmt(x['cpu_ms_per_1k'], 1)} ms per 1k  send lag p99"
                f" {fmt(_us_ms(x.get('send_lag_p99_us')), 3)} ms")

    for r in range(args.rounds):
        for m, k in baseline.order(order, r, args.alternate):
            i = insts[m][k]
            x = tls_run(args.client, i.tls, der, args.duration, args.tls_threads, cli_cpus, procs, server_pid=i.pid)
            sets[m]["tls"][k].append(x)
            i.answered += int(x.get("ok") or 0)
            if "output" in x:
                say(f"# round {r + 1} tls {k} log {m}: proxyload failed: {x['output'][-300:]}")
                continue
            say(f"# round {r + 1} tls       {k:8s} log {m:3s} handshakes/s {fmt(x.get('handshakes_per_s')):>7s}"
                f"  p99 {fmt(_us_ms(x.get('p99_us')), 2)} ms  errors {fmt(x.get('errors'))}"
                f"  non-2xx {fmt(x.get('non2xx'))}"
                f"  CPU {fmt(x['server_cpu_s'], 2)} s, {fmt(x['cpu_ms_per_1k'], 1)} ms per 1k connections"
                f"  (client CPU {x['client_cpu_s']:.2f} s)")

    for m in modes:
        sets[m]["bulk_runs"] = {k: [] for k in insts[m]}
    for j in range(3):
        for m, k in baseline.order(order, j, args.alternate):
            n = len(short)
            v = bulk(insts[m][k].http, size)
            sets[m]["bulk_runs"][k].append(v)
            if v is not None:
                insts[m][k].answered += 1
            if len(short) > n:
                res.setdefault("bulk_short", []).append(f"{k} log {m} {short[-1]}/{size}")
    for m in modes:
        say(f"# log {m}: bulk MB/s (3 downloads each): " + "  ".join(
            f"{k} " + "/".join("short" if v is None else f"{v:.0f}" for v in vs)
            for k, vs in sets[m]["bulk_runs"].items()))
    for line in res.get("bulk_short", []):
        say(f"# bulk download short: {line} bytes of body before the connection closed")

    for m in modes:
        sets[m]["rss_mib"] = {k: servers.mem(i.pid)[0] / 1024 for k, i in insts[m].items() if k != "direct"}
        say(f"# log {m}: VmRSS after the runs MiB: "
            + "  ".join(f"{k} {v:.1f}" for k, v in sets[m]["rss_mib"].items()))
    idle_phase(res, sets, insts, order, n_idle, idle_hosts)

    # The access logs, counted once their writers are stopped (flushed).
    for m in modes:
        sets[m]["access_log"] = {}
    for i in every:
        if i.access_log is None:
            continue
        procs.stop(i.proc)
        lines = _count_lines(i.access_log, HAPROXY_LINE if i.path == "haproxy" else None)
        sets[i.mode]["access_log"][i.path] = {"lines": lines, "answered": i.answered, "path": i.access_log}
        say(f"# {i.path} log on: {lines} access log lines for {i.answered} requests and TLS connections"
            f" answered to the clients ({i.access_log})")
        if lines == 0:
            _error(res, f"{i.path} log on: the access log {i.access_log} is empty")
        elif lines < 0.99 * i.answered:
            _note(res, f"{i.path} log on: {lines} access log lines for {i.answered} answered requests"
                  f" ({lines / i.answered:.3f} per request): lines are missing")


def idle_phase(res, sets, insts, order, n_idle, idle_hosts):
    """`n_idle` idle connections to each proxy in turn (see idle_conns),
    into sets[mode]["idle"][path]."""
    for m, k in [(m, k) for m, k in order if k != "direct"]:
        i = insts[m][k]
        try:
            x = idle_conns(i.pid, i.http, n_idle, [HOST, *idle_hosts])
        except OSError as e:
            _error(res, f"{k} log {m}: {n_idle} idle connections: {e}")
            continue
        i.answered += n_idle - x["not_200"]
        if x["not_200"]:
            _note(res, f"{k} log {m}: {x['not_200']} of the {n_idle} idle connections' requests were not"
                  f" answered 200")
        sets[m].setdefault("idle", {})[k] = x
        say(f"# {k} log {m}: {n_idle} idle connections: VmRSS {x['rss_before_kib']} KiB, nothing sent"
            f" {x['rss_empty_kib']} KiB ({x['empty_kib_per_conn']:.2f} KiB each), after one request each"
            f" {x['rss_after_kib']} KiB ({x['kib_per_conn']:.2f} KiB each); {x['closed']} closed by the server")
        # Let the proxy see the closes before the next measurement.
        time.sleep(0.5)


# --- report -------------------------------------------------------------------

def _med(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _us_ms(us):
    return None if us is None else us / 1e3


def fmt(x, nd=0):
    return "n/a" if x is None else f"{x:.{nd}f}"


def _meds(runs, key, f=lambda v: v):
    return {k: _med([f(x.get(key)) if x.get(key) is not None else None for x in v]) for k, v in runs.items()}


def set_rows(st, idle_n):
    """One log set's rows: (label, {path: value}, decimals, higher is better)."""
    out = []
    for case, label, per in (("keepalive", "keep-alive", "req"), ("close", "new conn/request", "conn")):
        w = st.get("wrk", {}).get(case)
        if not w:
            continue
        out.append((f"{label} req/s", _meds(w, "rps"), 0, True))
        out.append((f"{label} p99 ms", _meds(w, "p99_ms"), 2, False))
        out.append((f"{label} server CPU s", _meds(w, "server_cpu_s"), 2, False))
        out.append((f"{label} CPU ms/1k {per}", _meds(w, "cpu_ms_per_1k"), 1, False))
        bad = {k: sum(x["non2xx"] + x["socket_errors"] for x in v) for k, v in w.items()}
        if any(bad.values()):
            out.append((f"{label} errors+non-2xx", bad, 0, False))
    rt = st.get("rate")
    if rt:
        out.append(("fixed rate achieved req/s", _meds(rt, "achieved_rate"), 0, True))
        out.append(("fixed rate p50 ms", _meds(rt, "p50_us", _us_ms), 3, False))
        out.append(("fixed rate p99 ms", _meds(rt, "p99_us", _us_ms), 3, False))
        out.append(("fixed rate p99.9 ms", _meds(rt, "p999_us", _us_ms), 3, False))
        out.append(("fixed rate CPU ms/1k req", _meds(rt, "cpu_ms_per_1k"), 1, False))
        bad = {k: sum((x.get("errors") or 0) + (x.get("non2xx") or 0) + (x.get("unfinished") or 0) for x in v)
               for k, v in rt.items()}
        if any(bad.values()):
            out.append(("fixed rate errors+non-2xx+unfinished", bad, 0, False))
    tl = st.get("tls")
    if tl:
        out.append(("TLS handshakes/s", _meds(tl, "handshakes_per_s"), 0, True))
        out.append(("TLS p99 ms", _meds(tl, "p99_us", _us_ms), 2, False))
        out.append(("TLS server CPU s", _meds(tl, "server_cpu_s"), 2, False))
        out.append(("TLS CPU ms/1k conn", _meds(tl, "cpu_ms_per_1k"), 1, False))
        bad = {k: sum((x.get("errors") or 0) + (x.get("non2xx") or 0) for x in v) for k, v in tl.items()}
        if any(bad.values()):
            out.append(("TLS errors+non-2xx", bad, 0, False))
    if "bulk_runs" in st:
        out.append(("bulk MB/s", {k: max((x for x in v if x is not None), default=None)
                                  for k, v in st["bulk_runs"].items()}, 0, True))
    if "rss_mib" in st:
        out.append(("VmRSS after runs MiB", dict(st["rss_mib"]), 1, False))
    if st.get("idle"):
        out.append((f"VmRSS {idle_n} idle MiB", {k: v["rss_after_kib"] / 1024 for k, v in st["idle"].items()},
                    1, False))
        out.append(("KiB per idle conn", {k: v["kib_per_conn"] for k, v in st["idle"].items()}, 2, False))
        out.append(("KiB per idle conn, none sent", {k: v["empty_kib_per_conn"] for k, v in st["idle"].items()},
                    2, False))
    if st.get("access_log"):
        out.append(("access log lines/request", {k: v["lines"] / v["answered"] if v["answered"] else None
                                                 for k, v in st["access_log"].items()}, 3, True))
    return out


def rows(res):
    """Every row, the set's name first: (label, {path: value}, decimals,
    higher is better)."""
    out = []
    for m in res.get("modes", []):
        st = res.get("sets", {}).get(m)
        if st:
            out += [(f"log {m} {label}", v, nd, hb) for label, v, nd, hb in set_rows(st, res.get("idle_n"))]
    return out


def _ratio(v, other="haproxy"):
    sg, o = v.get("sixgate"), v.get(other)
    return sg / o if sg is not None and o else None


def _paths(res):
    seen = set()
    for st in res.get("sets", {}).values():
        seen |= set(st.get("wrk", {}).get("keepalive", {}))
    return [k for k in PATHS if k in seen]


def tables(args, res):
    ks = _paths(res)
    others = [o for o in (baseline.BASELINE, "haproxy") if o in ks]
    short_name = {baseline.BASELINE: "sg/base", "haproxy": "sg/hap"}
    out = [f"{'':42s}" + "".join(f" {k:>9s}" for k in ks) + "".join(f" {short_name[o]:>7s}" for o in others)
           + "  (rates: >1 sixgate better; times, CPU, memory: <1 sixgate better"
           + ("; sg/base is current/baseline)" if baseline.BASELINE in ks else ")")]
    for label, v, nd, _ in rows(res):
        out.append(f"{label:42s}" + "".join(f" {fmt(v.get(k), nd):>9s}" for k in ks)
                   + "".join(f" {fmt(_ratio(v, o), 2):>7s}" for o in others))
    for m in res.get("modes", []):
        st = res.get("sets", {}).get(m, {})
        if st.get("rate_target"):
            out.append(f"(log {m} fixed rate: {st['rate_target']:.0f} req/s offered, {st['rate_basis']};"
                       f" latency from each request's scheduled send time)")
        closed = {k: x["closed"] for k, x in st.get("idle", {}).items() if x["closed"]}
        if closed:
            out.append(f"(log {m}: idle connections closed by the server before the measurement: "
                       + ", ".join(f"{k} {n}" for k, n in closed.items()) + ")")
        for k, a in st.get("access_log", {}).items():
            out.append(f"(log {m} {k}: {a['lines']} access log lines, {a['answered']} requests and TLS connections"
                       f" answered)")
    bound = client_bound(res)
    if bound:
        out.append("(the client used over 90% of its CPUs, so it may have been the bound, in: "
                   + ", ".join(bound) + ")")
    if res.get("bulk_short"):
        out.append("(short bulk downloads, body bytes received: " + ", ".join(res["bulk_short"]) + ")")
    out.append("(server CPU s and CPU ms/1k: of nginx for direct, of the proxy process alone otherwise;"
               " direct is measured in the first set only)")
    for note in res.get("notes", []):
        out.append(f"(note: {note})")
    return out


def client_bound(res):
    """The saturated runs (wrk, TLS) whose client used over 90% of the
    client CPUs. The fixed-rate client spins by design and is left out."""
    n = res.get("client_cpus") or 1
    out = []
    for m, st in res.get("sets", {}).items():
        runs = [(f"{case} {k}", x) for case, w in st.get("wrk", {}).items() for k, v in w.items() for x in v]
        runs += [(f"TLS {k}", x) for k, v in st.get("tls", {}).items() for x in v]
        for what, x in runs:
            if x.get("client_cpu_s") and x.get("seconds") and x["client_cpu_s"] > 0.9 * n * x["seconds"]:
                out.append(f"log {m} {what} {x['client_cpu_s'] / x['seconds'] / n:.0%}")
    return out


def summary(args, res):
    lines = []
    ks = _paths(res)
    others = [o for o in (baseline.BASELINE, "haproxy") if o in ks]
    for label, v, nd, _ in rows(res):
        lines.append(f"proxy {label}: " + " ".join(f"{k} {fmt(v.get(k), nd)}" for k in ks if k in v)
                     + (" ratio " + " ".join(f"sixgate/{o} {fmt(_ratio(v, o), 2)}" for o in others)
                        if others else ""))
    for note in res.get("notes", []):
        lines.append(f"note: {note}")
    if res.get("errors"):
        lines.append(f"errors: {len(res['errors'])} (see the log above)")
    return lines
