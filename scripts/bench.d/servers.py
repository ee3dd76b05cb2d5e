"""Private instances of sixgate, Knot, NSD and PowerDNS for scripts/bench.

Each server runs in the foreground in its own process group, with its
config, run directory and data under the benchmark's temp directory, on a
loopback port chosen by the OS. `Procs.stop_all()` (called from the
script's exit path and signal handlers) kills every group we started, and
nothing else. System services on :53 are never touched.
"""

import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time

import dnsq


class StartError(RuntimeError):
    pass


def set_priority(pid, nice):
    """Gives process `pid` the nice level `nice`, also against processes of
    other sessions: with the kernel's autogroup scheduling (on by default),
    CPU time is shared between sessions first, so a session's autogroup
    nice matters more than a process's own. Best effort."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass


class Procs:
    """Every process group this run started."""

    nice = 0

    def __init__(self):
        self.live = []
        # Short-lived children (CLI commands, dnsperf) to kill if we are
        # interrupted while they run; removed as soon as they are reaped.
        self.transient = []

    def spawn(self, argv, log_path, cpus=None, **kw):
        if cpus:
            argv = ["taskset", "-c", cpus] + list(argv)
        log = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        log.close()
        if self.nice:
            set_priority(p.pid, self.nice)
        self.live.append(p)
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Children (NSD's server processes) may outlive the leader briefly.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if p.poll() is None:
            p.wait(5)
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(self.transient):
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in list(self.live):
            try:
                self.stop(p, timeout=5)
            except Exception:  # best effort on the way out
                pass


def free_port(host="127.0.0.1"):
    """A port free for both UDP and TCP right now (the OS picks it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
        return port
    raise StartError("no free port")


def mem(pid):
    """(VmRSS, VmHWM) of one process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def tree_pids(pid):
    """`pid` and all its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_pss(pid):
    """Proportional set size of a process tree in KiB: shared pages
    (NSD's forked servers share the zone with their parent) counted once."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_ticks(pids):
    """utime+stime clock ticks summed over the processes and their threads."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return total


def system_ticks():
    """(busy, irq) clock ticks of all CPUs: busy is everything but idle and
    I/O wait; irq is the interrupt and softirq part of it, which with IRQ
    time accounting is not charged to any process (on loopback that is
    mostly packet delivery, so partly the benchmark's own work)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return sum(v[:8]) - v[3] - v[4], v[5] + v[6]


def system_busy_ticks():
    return system_ticks()[0]


def busy_cores(seconds=1.0):
    """How many cores' worth of CPU the whole machine uses right now."""
    b0, t0 = system_busy_ticks(), time.monotonic()
    time.sleep(seconds)
    return (system_busy_ticks() - b0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)


class Server:
    """A started server: name, process, UDP port, the PID that holds the zone."""

    def __init__(self, name, proc, port, started):
        self.name, self.proc, self.port, self.started = name, proc, port, started

    @property
    def pid(self):
        # The process taskset exec'd into keeps taskset's PID.
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None


def wait_ready(server, probes, timeout, log_path):
    """Waits until each (name, type, rdata) probe answers; returns the
    monotonic time the last one did."""
    deadline = time.monotonic() + timeout
    t = None
    for name, rtype, rdata in probes:
        t = dnsq.wait_for(server.port, name, rtype, rdata, deadline, interval=0.005, alive=server.alive)
        if t is None:
            tail = ""
            try:
                with open(log_path, errors="replace") as f:
                    tail = "".join(f.readlines()[-15:])
            except OSError:
                pass
            state = "exited" if not server.alive() else "timed out"
            raise StartError(f"{server.name} {state} before answering {name} {rtype}; log {log_path}:\n{tail}")
    return t


# --- sixgate -----------------------------------------------------------------

def sixgate_import(binary, data, zone, path, timeout=None, procs=None):
    """Runs `sixgate zone import`; returns its wall time and peak RSS, or
    with `timed_out` set if it had to be killed after `timeout` seconds."""
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "zone", "import", zone, path, "--data", data],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if procs:
        procs.transient.append(p)
    timed_out = False
    while True:
        # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux).
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if timeout and time.monotonic() - t0 > timeout:
            timed_out = True
            os.kill(p.pid, signal.SIGKILL)
            _, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.01)
    if procs:
        procs.transient.remove(p)
    seconds = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace").strip()
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0 and not timed_out:
        raise StartError(f"sixgate zone import {zone} failed: {err}")
    return {"seconds": seconds, "maxrss_kib": ru.ru_maxrss, "timed_out": timed_out}


def start_sixgate(procs, binary, data, workers, tmp, cpus, tag, api=False, extra=(), log=None):
    """Starts `sixgate serve` on OS-chosen loopback ports. With `api`, also
    the HTTP API (`--api`), and waits for `ready`, which follows the
    `listening ...` lines; the server's `api` is then "127.0.0.1:PORT".
    `extra` is appended to the command line (e.g. `--config FILE`).
    `log` is a log filter for SIXGATE_LOG (e.g. "warn"), the variable
    sixgate reads; without, the environment's or sixgate's default."""
    log_path = os.path.join(tmp, f"sixgate-{tag}.log")
    argv = [binary, "serve", "--data", data, "--dns", "127.0.0.1:0", "--workers", str(workers)] + list(extra)
    if api or _serve_has(binary, "--api"):
        # Also when the API is not measured: `serve` runs it anyway, by
        # default on 127.0.0.1:8053, where a second sixgate (the baseline)
        # or anything else may already listen.
        argv += ["--api", "127.0.0.1:0"]
    t0 = time.monotonic()
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
    if log:
        env["SIXGATE_LOG"] = log
    p = procs.spawn(argv, log_path, cpus=cpus, env=env)
    found = {}
    deadline = time.monotonic() + 600
    while not found.get("done"):
        if p.poll() is not None or time.monotonic() > deadline:
            raise StartError(f"sixgate serve did not get ready; see {log_path}")
        with open(log_path, errors="replace") as f:
            found = parse_sixgate_listening(f.read(), api)
        if not found.get("done"):
            time.sleep(0.002)
    srv = Server("sixgate", p, found["dns"], t0)
    srv.api = found.get("api")
    return srv, log_path


def _serve_has(binary, flag):
    r = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True)
    return flag in r.stdout + r.stderr


def parse_sixgate_listening(text, api=False):
    """Reads what `sixgate serve` printed so far: {"dns": UDP port, "api":
    "127.0.0.1:PORT", "done": bool}. Without `api` it is done at the UDP
    port (the one line every version prints); with `api` at `ready`."""
    out = {}
    m = re.search(r"^listening dns-udp 127\.0\.0\.1:(\d+)$", text, re.M)
    if m:
        out["dns"] = int(m.group(1))
    m = re.search(r"^listening api http://(127\.0\.0\.1:\d+)/?$", text, re.M)
    if m:
        out["api"] = m.group(1)
    if api:
        out["done"] = "dns" in out and "api" in out and re.search(r"^ready$", text, re.M) is not None
    else:
        out["done"] = "dns" in out
    return out


# --- Knot --------------------------------------------------------------------

KNOT_CONF = """\
server:
    rundir: "{run}"
    pidfile: "{run}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: {workers}
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{run}/knot.sock"
database:
    storage: "{run}/db"
log:
  - target: stderr
    any: {log}
{modules}template:
  - id: default
    storage: "{zdir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
{template_extra}zone:
  - domain: {zone}
    file: "{zfile}"
"""


def knot_rrl_conf(rate, slip=2):
    """The `modules` and `template_extra` parts of KNOT_CONF for mod-rrl
    at `rate` on every zone; empty without a rate."""
    if not rate:
        return "", ""
    return (f"mod-rrl:\n  - id: bench\n    rate-limit: {rate}\n    slip: {slip}\n",
            "    global-module: mod-rrl/bench\n")


def start_knot(procs, tmp, zone, zfile, workers, cpus, tag, rrl_rate=None, log="info"):
    run = os.path.join(tmp, f"knot-{tag}")
    os.makedirs(os.path.join(run, "db"), exist_ok=True)
    port = free_port()
    conf = os.path.join(run, "knot.conf")
    modules, template_extra = knot_rrl_conf(rrl_rate)
    with open(conf, "w") as f:
        f.write(KNOT_CONF.format(run=run, port=port, workers=workers, zdir=os.path.dirname(zfile),
                                 zone=zone, zfile=zfile, modules=modules, template_extra=template_extra, log=log))
    log_path = os.path.join(run, "knot.log")
    t0 = time.monotonic()
    p = procs.spawn(["knotd", "-c", conf], log_path, cpus=cpus)
    return Server("knot", p, port, t0), log_path


# --- NSD ---------------------------------------------------------------------

NSD_CONF = """\
server:
    server-count: {workers}
    reuseport: yes
    ip-address: 127.0.0.1
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{run}"
    database: ""
    zonelistfile: "{run}/zone.list"
    xfrdfile: "{run}/xfrd.state"
    xfrdir: "{run}"
    pidfile: "{run}/nsd.pid"
    logfile: "{run}/nsd.log"
    verbosity: 1
    # Debian builds NSD with response rate limiting on (200 qps per
    # source by default); every benchmark query comes from 127.0.0.1.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    # Like Knot and sixgate, no NS RRset in the authority section and no
    # addresses in the additional section of positive answers.
    minimal-responses: yes
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{zfile}"
"""


def start_nsd(procs, tmp, zone, zfile, workers, cpus, tag):
    run = os.path.join(tmp, f"nsd-{tag}")
    os.makedirs(run, exist_ok=True)
    port = free_port()
    conf = os.path.join(run, "nsd.conf")
    with open(conf, "w") as f:
        f.write(NSD_CONF.format(run=run, port=port, workers=workers, zone=zone, zfile=zfile))
    r = subprocess.run(["nsd-checkconf", conf], capture_output=True, text=True)
    if r.returncode != 0:
        raise StartError(f"nsd-checkconf: {r.stdout}{r.stderr}")
    log_path = os.path.join(run, "nsd.out")
    t0 = time.monotonic()
    p = procs.spawn(["nsd", "-d", "-c", conf], log_path, cpus=cpus)
    return Server("nsd", p, port, t0), os.path.join(run, "nsd.log")


# --- PowerDNS ----------------------------------------------------------------

# PowerDNS Authoritative with its SQLite backend and HTTP API. Everything
# not set here (packet cache, query cache, thread counts) keeps its
# default: that is what users run.
PDNS_CONF = """\
launch=gsqlite3
gsqlite3-database={run}/pdns.sqlite3
# WAL (the backend's default journal mode) with synchronous=FULL: a commit
# is fsynced before the API answers, as sixgate's store does (WAL with
# NORMAL may lose the last commits on power loss).
gsqlite3-pragma-journal-mode=WAL
gsqlite3-pragma-synchronous=FULL
api=yes
api-key={api_key}
webserver-address=127.0.0.1
webserver-port={web_port}
webserver-allow-from=127.0.0.1
local-address=127.0.0.1
local-port={port}
socket-dir={run}
guardian=no
daemon=no
disable-syslog=yes
# No security-status lookup through the system resolver: loopback only.
security-poll-suffix=
# Lines added with `scripts/bench api --pdns-conf`, if any.
include-dir={run}/conf.d
"""

PDNS_SCHEMA = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"


def _pdns_conf(run, port, web_port, api_key):
    with open(os.path.join(run, "pdns.conf"), "w") as f:
        f.write(PDNS_CONF.format(run=run, port=port, web_port=web_port, api_key=api_key))


def pdns_prepare(run, zone, zfile, api_key, extra=()):
    """Creates PowerDNS's SQLite database from the packaged schema and loads
    `zone` from `zfile` with pdnsutil. The zone then gets SOA-EDIT-API
    DEFAULT, the metadata a zone created through the API gets, so that API
    writes raise the SOA serial as sixgate's do. `extra` configuration
    lines go into an included file."""
    os.makedirs(os.path.join(run, "conf.d"), exist_ok=True)
    with open(os.path.join(run, "conf.d", "extra.conf"), "w") as f:
        f.write("".join(line + "\n" for line in extra))
    with open(PDNS_SCHEMA) as f:
        schema = f.read()
    db = sqlite3.connect(os.path.join(run, "pdns.sqlite3"))
    db.executescript(schema)
    db.close()
    _pdns_conf(run, 0, 0, api_key)
    bare = zone.rstrip(".")
    for argv in (["load-zone", bare, zfile], ["set-meta", bare, "SOA-EDIT-API", "DEFAULT"]):
        r = subprocess.run(["pdnsutil", "--config-dir", run] + argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise StartError(f"pdnsutil {' '.join(argv)}: {r.stdout}{r.stderr}")


def start_pdns(procs, run, api_key, cpus):
    port, web_port = free_port(), free_port()
    _pdns_conf(run, port, web_port, api_key)
    log_path = os.path.join(run, "pdns.log")
    t0 = time.monotonic()
    p = procs.spawn(["pdns_server", f"--config-dir={run}"], log_path, cpus=cpus)
    srv = Server("pdns", p, port, t0)
    srv.api = f"127.0.0.1:{web_port}"
    return srv, log_path


def wait_http(server, path, headers, timeout, log_path):
    """Waits until GET `path` on the server's API answers 200."""
    deadline = time.monotonic() + timeout
    host, port = server.api.rsplit(":", 1)
    last = None
    while time.monotonic() < deadline and server.alive():
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=2)
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return
            last = f"HTTP {r.status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.01)
    raise StartError(f"{server.name} API {path} not ready ({last}); log {log_path}")


def start(procs, name, tmp, zone, zfile, workers, cpus, tag, probes, sixgate_bin=None,
          sixgate_data=None, timeout=600, api=False, pdns_run=None, api_key=None, sixgate_args=(),
          knot_rrl=None, log=None):
    """Starts one server and waits for `probes`; retries on a port
    collision. Returns (server, seconds from process start to ready).
    PowerDNS needs `pdns_prepare(pdns_run, ...)` first. `log` (sixgate
    and Knot only) is the log level, e.g. "warning" for both alike."""
    last = None
    for _ in range(3):
        if name == "sixgate":
            sg_log = {"warning": "warn"}.get(log, log)
            srv, log_path = start_sixgate(procs, sixgate_bin, sixgate_data, workers, tmp, cpus, tag, api=api,
                                          extra=sixgate_args, log=sg_log)
        elif name == "knot":
            srv, log_path = start_knot(procs, tmp, zone, zfile, workers, cpus, tag, rrl_rate=knot_rrl,
                                       log=log or "info")
        elif name == "pdns":
            srv, log_path = start_pdns(procs, pdns_run, api_key, cpus)
        else:
            srv, log_path = start_nsd(procs, tmp, zone, zfile, workers, cpus, tag)
        try:
            t = wait_ready(srv, probes, timeout, log_path)
            if name == "pdns":
                wait_http(srv, "/api/v1/servers/localhost", {"X-API-Key": api_key}, timeout, log_path)
                t = time.monotonic()
            return srv, t - srv.started
        except StartError as e:
            last = e
            procs.stop(srv.proc)
            if name == "sixgate":
                break
    raise last
