"""`scripts/bench sign`: DNSSEC signing, sixgate against kzonesign and
ldns-signzone, then sixgate's re-signing of one-record changes.

Whole-zone signing: one generated zone file (default 200k names, one
AAAA each, plus the apex SOA and NS and the name servers' addresses) is
signed from cold by each signer with the same algorithm, the same denial
(NSEC, or NSEC3 with no extra iterations and no salt) and the same
thread count, in alternating rounds; every run is pinned with taskset to
as many CPUs as it has threads, so a one-thread run gets one core.

- sixgate: `sixgate dnssec sign-file`, which makes a new key, signs and
  writes the signed zone file.
- kzonesign (Knot DNS): a knot.conf with a CSK policy and
  `signing-threads`, and a new empty key database per run, so that key
  generation is part of the run, as it is for sixgate.
- ldns-signzone: single-threaded, so only in the one-thread rows. Its key
  is made with ldns-keygen before timing (it cannot make one itself).

Each run's wall time, CPU time and peak RSS come from /usr/bin/time.
The first output of each signer and thread count is checked with
ldns-verify-zone, after the timed rounds, so that no broken signer is
benchmarked; a signer whose output fails is reported as such.

Re-signing: a big zone (default 1M names) is imported into sixgate's
store, copied (the unsigned baseline), signed with `sixgate dnssec
enable` (the product's whole-zone path: signing into SQLite, timed), and
`sixgate bench resign` then times one-record changes through the write
path: the whole change, the signing inside it (the store's own timing),
and the same change on the unsigned copy.

With `--baseline`, a second sixgate (`baseline`, built from another
revision) is a signer of its own in the signing rounds and gets its own
stores (imported, signed) for the re-signing rounds, which alternate
between the two; ratios against it are current/baseline (see baseline.py).
The peers are left out unless `--baseline-peers`.
"""

import os
import shutil
import sqlite3
import statistics
import subprocess
import time

import baseline
import gen
import servers

ZONE = "sign.test."
SIGNERS = ("sixgate", baseline.BASELINE, "kzonesign", "ldns-signzone")
PEERS = ("kzonesign", "ldns-signzone")
VERIFIED = "Zone is verified and complete"
# ldns-keygen's names for the algorithms.
LDNS_ALG = {"ecdsap256sha256": "ECDSAP256SHA256", "ed25519": "ED25519"}


def say(msg):
    print(msg, flush=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def pinned(threads, args=None):
    """The CPUs a run with `threads` threads is pinned to: the first ones
    (None with --no-pin)."""
    if args is not None and args.no_pin:
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return ",".join(map(str, cpus[:max(1, min(threads, len(cpus)))]))


def timed(argv, cpus, procs, tmp, cwd=None, timeout=3600):
    """Runs argv pinned to `cpus` under /usr/bin/time. Returns wall seconds,
    CPU seconds (user + system), peak RSS in MiB, exit code and stderr."""
    tfile = os.path.join(tmp, "time.out")
    full = ["/usr/bin/time", "-o", tfile, "-f", "%U %S %M"] + (["taskset", "-c", cpus] if cpus else []) + argv
    t0 = time.monotonic()
    p = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
                         start_new_session=True)
    procs.transient.append(p)
    if procs.nice:
        servers.set_priority(p.pid, procs.nice)
    try:
        err = p.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        err = p.communicate()[1] + " (killed: timed out)"
    procs.transient.remove(p)
    wall = time.monotonic() - t0
    user = sys_ = rss = float("nan")
    try:
        with open(tfile) as f:
            last = f.read().strip().splitlines()[-1].split()
        user, sys_, rss = float(last[0]), float(last[1]), int(last[2]) / 1024
    except (OSError, IndexError, ValueError):
        pass
    return {"wall_s": wall, "cpu_s": user + sys_, "rss_mib": rss, "rc": p.returncode, "stderr": err.strip()}


def knot_conf(path, storage, zfile, algorithm, nsec3, threads):
    policy = [f"    algorithm: {algorithm}", "    single-type-signing: on", f"    signing-threads: {threads}"]
    if nsec3:
        policy += ["    nsec3: on", "    nsec3-iterations: 0", "    nsec3-salt-length: 0"]
    with open(path, "w") as f:
        f.write(f"database:\n    storage: {storage}\n\n"
                "policy:\n  - id: bench\n" + "\n".join(policy) + "\n\n"
                f"zone:\n  - domain: {ZONE}\n    file: {zfile}\n"
                "    dnssec-signing: on\n    dnssec-policy: bench\n")


def ldns_key(workdir, algorithm):
    """A key made with ldns-keygen (KSK flag, so it is the zone's only
    key, a CSK); returns its base name."""
    r = subprocess.run(["ldns-keygen", "-a", LDNS_ALG[algorithm], "-k", ZONE], cwd=workdir,
                       capture_output=True, text=True, check=True)
    return os.path.join(workdir, r.stdout.strip())


def sign_once(signer, threads, args, procs, tmp, zfile, ldns_keybase, tag):
    """One cold signing run. Returns the measurement and the output file."""
    work = os.path.join(tmp, f"{signer}-{threads}t-{tag}")
    os.makedirs(work)
    cpus = pinned(threads, args)
    if signer in args.bins:
        out = os.path.join(work, "signed.zone")
        argv = [args.bins[signer], "dnssec", "sign-file", zfile, "--origin", ZONE, "--algorithm", args.algorithm,
                "--threads", str(threads), "-o", out] + (["--nsec3"] if args.nsec3 else [])
    elif signer == "kzonesign":
        storage = os.path.join(work, "storage")
        os.makedirs(storage)  # kzonesign refuses a storage directory that does not exist
        conf = os.path.join(work, "knot.conf")
        knot_conf(conf, storage, zfile, args.algorithm, args.nsec3, threads)
        outdir = os.path.join(work, "out")
        os.makedirs(outdir)
        out = os.path.join(outdir, ZONE + "zone")
        argv = ["kzonesign", "-c", conf, "-o", outdir, ZONE]
    else:
        out = os.path.join(work, "signed.zone")
        argv = ["ldns-signzone"] + (["-n", "-t", "0"] if args.nsec3 else []) + [
            "-o", ZONE, "-f", out, zfile, ldns_keybase]
    m = timed(argv, cpus, procs, tmp, cwd=work)
    if m["rc"] != 0 or not os.path.exists(out):
        m["error"] = f"exit {m['rc']}: {m['stderr'][-300:]}"
        out = None
    return m, out, work


def verify(path):
    r = subprocess.run(["ldns-verify-zone", path], capture_output=True, text=True)
    text = (r.stdout + r.stderr).strip()
    return VERIFIED in text, text.splitlines()[-1] if text else f"exit {r.returncode}"


def phase_sign(args, procs, tmp, res):
    zfile = os.path.join(tmp, "zones", ZONE + "zone")
    t0 = time.monotonic()
    gen.write_sign_zone(zfile, args.names, ZONE)
    say(f"# zone {ZONE}: {args.names} names, {os.path.getsize(zfile) / 2**20:.0f} MiB, "
        f"written in {time.monotonic() - t0:.1f} s")
    ldns_keybase = None
    if "ldns-signzone" in args.signers:
        keydir = os.path.join(tmp, "ldns-key")
        os.makedirs(keydir)
        ldns_keybase = ldns_key(keydir, args.algorithm)
        say(f"# ldns-signzone's key made with ldns-keygen before timing: {os.path.basename(ldns_keybase)}")
    cases = [(s, t) for t in args.threads for s in SIGNERS
             if s in args.signers and not (s == "ldns-signzone" and t != 1)]
    runs = {f"{s} {t}": [] for s, t in cases}
    kept = {}
    for r in range(args.rounds):
        for s, t in baseline.order(cases, r, args.alternate):
            m, out, work = sign_once(s, t, args, procs, tmp, zfile, ldns_keybase, f"r{r + 1}")
            runs[f"{s} {t}"].append(m)
            say(f"# round {r + 1} {s:13s} threads {t} (CPUs {pinned(t, args) or 'any'}): {m['wall_s']:7.2f} s wall,"
                f" {m['cpu_s']:7.2f} s CPU, peak RSS {m['rss_mib']:5.0f} MiB"
                + (f"  ERROR {m['error']}" if "error" in m else ""))
            if out and f"{s} {t}" not in kept:
                kept[f"{s} {t}"] = out
            else:
                shutil.rmtree(work, ignore_errors=True)
    checks = {}
    for k, path in kept.items():
        ok, last = verify(path)
        checks[k] = {"ok": ok, "says": last}
        say(f"# ldns-verify-zone {k} threads: {'ok' if ok else 'FAILED'} ({last})")
        shutil.rmtree(os.path.dirname(path) if not k.startswith("kzonesign") else
                      os.path.dirname(os.path.dirname(path)), ignore_errors=True)
    res["sign"] = {"names": args.names, "algorithm": args.algorithm, "denial": "nsec3" if args.nsec3 else "nsec",
                   "threads": args.threads, "runs": runs, "verify": checks}


def _ckpt_copy(src, dst):
    """Copies a data directory after folding its WAL into the database."""
    with sqlite3.connect(os.path.join(src, "sixgate.db")) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(src, dst)


def phase_resign(args, procs, tmp, res):
    zone = "resign.test."
    zfile = os.path.join(tmp, "zones", zone + "zone")
    t0 = time.monotonic()
    gen.write_sign_zone(zfile, args.resign_names, zone)
    say(f"# zone {zone}: {args.resign_names} names, written in {time.monotonic() - t0:.1f} s")
    res["resign"] = {}
    ready = {}
    for s in [s for s in baseline.FAMILY if s in args.signers]:
        out = {"names": args.resign_names}
        res["resign"][s] = out
        dirs = resign_stores(args, procs, tmp, args.bins[s], s, zone, zfile, out)
        if dirs:
            ready[s] = dirs
    os.remove(zfile)
    one = pinned(1, args)
    # One run of --changes changes; with a baseline, R rounds that
    # alternate between the two binaries.
    for r in range(args.rounds if args.alternate else 1):
        for s, (data, base) in baseline.order(ready, r, args.alternate):
            out = res["resign"][s]
            if "error" in out:
                continue
            argv = (["taskset", "-c", one] if one else []) + [
                args.bins[s], "bench", "resign", "--data", data, "--zone", zone,
                "--changes", str(args.changes), "--unsigned", base]
            p = subprocess.run(argv, capture_output=True, text=True)
            if p.returncode != 0:
                say(f"# ERROR {s} bench resign: {p.stderr.strip()[-300:]}")
                out["error"] = p.stderr.strip()
                continue
            changes = []
            for line in p.stdout.splitlines():
                f = line.split("\t")
                if f[0] == "change":
                    changes.append({"what": f[2], "round": r + 1,
                                    **{f[i]: float(f[i + 1]) for i in range(3, len(f) - 1, 2)}})
            out.setdefault("changes", []).extend(changes)
            st = {k: _spread([c[k] for c in changes if k in c]) for k in ("signed_ms", "signing_ms", "unsigned_ms")}
            say(f"# round {r + 1} {s} bench resign ({len(changes)} changes, one CPU): median"
                f" {fmt(st['signed_ms']['median_ms'], 2)} ms a change, of which signing"
                f" {fmt(st['signing_ms']['median_ms'], 2)} ms; the same change unsigned"
                f" {fmt(st['unsigned_ms']['median_ms'], 2)} ms")
    # Over every round's changes, nearest rank as `sixgate bench resign` does.
    for out in res["resign"].values():
        if out.get("changes"):
            for key, k in (("signed", "signed_ms"), ("signing", "signing_ms"), ("unsigned", "unsigned_ms")):
                out[key] = _spread([c[k] for c in out["changes"] if k in c])


def resign_stores(args, procs, tmp, binary, label, zone, zfile, out):
    """A signed store of the zone and an unsigned copy, made with `binary`;
    (signed, unsigned) data directories, or None after an error."""
    data = os.path.join(tmp, f"resign-{label}-signed")
    base = os.path.join(tmp, f"resign-{label}-unsigned")
    imp = servers.sixgate_import(binary, data, zone, zfile, procs=procs)
    out["import_s"] = imp["seconds"]
    say(f"# {label} zone import {zone}: {imp['seconds']:.2f} s")
    _ckpt_copy(data, base)
    allcpus = pinned(os.cpu_count() or 1, args)
    m = timed([binary, "dnssec", "enable", zone, "--data", data, "--algorithm", args.algorithm]
              + (["--nsec3"] if args.nsec3 else []), allcpus, procs, tmp)
    out["enable"] = m
    if m["rc"] != 0:
        say(f"# ERROR {label} dnssec enable: {m['stderr'][-300:]}")
        out["error"] = m["stderr"]
        return None
    say(f"# {label} dnssec enable {zone} (whole-zone signing into the store, CPUs {allcpus or 'any'}):"
        f" {m['wall_s']:.2f} s wall, {m['cpu_s']:.2f} s CPU, peak RSS {m['rss_mib']:.0f} MiB")
    return data, base


def _nearest(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = max(1, min(len(sorted_values), -(-p * len(sorted_values) // 100))) - 1
    return sorted_values[k]


def _spread(values):
    v = sorted(values)
    return {"median_ms": _nearest(v, 50), "p90_ms": _nearest(v, 90), "max_ms": v[-1] if v else float("nan"),
            "changes": len(v)}


def run(args, procs, tmp, res):
    if "sign" not in args.skip:
        phase_sign(args, procs, tmp, res)
    if "resign" not in args.skip:
        phase_resign(args, procs, tmp, res)


# --- report -------------------------------------------------------------------

def fmt(x, nd=0):
    return "n/a" if x is None or x != x else f"{x:.{nd}f}"


def _med(runs, key):
    return med([m[key] for m in runs if "error" not in m])


def _label(n):
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else (f"{n // 1000}k" if n % 1000 == 0 else str(n))


def tables(args, res):
    out = []
    if "sign" in res:
        sg = res["sign"]
        out.append(f"signing {_label(sg['names'])} names, {sg['algorithm']}, {sg['denial']}"
                   f" (median of {args.rounds} rounds; ldns-signzone is single-threaded)")
        out.append(f"{'signer':13s} {'threads':>7s} {'wall s':>7s} {'range':>13s} {'CPU s':>7s} {'RSS MiB':>8s}"
                   f" {'sixgate faster':>14s} {'verified':>8s}")
        for t in sg["threads"]:
            base = _med(sg["runs"].get(f"sixgate {t}", []), "wall_s")
            for s in SIGNERS:
                runs = sg["runs"].get(f"{s} {t}")
                if runs is None:
                    continue
                ok = [m for m in runs if "error" not in m]
                w = _med(runs, "wall_s")
                rng = f"{min(m['wall_s'] for m in ok):6.2f}-{max(m['wall_s'] for m in ok):6.2f}" if ok else "n/a"
                v = sg["verify"].get(f"{s} {t}")
                out.append(f"{s:13s} {t:7d} {fmt(w, 2):>7s} {rng:>13s} {fmt(_med(runs, 'cpu_s'), 2):>7s}"
                           f" {fmt(_med(runs, 'rss_mib')):>8s} {('-' if s == 'sixgate' else fmt(w / base, 2) + 'x'):>14s}"
                           f" {('n/a' if v is None else ('yes' if v['ok'] else 'NO')):>8s}")
    rows = [(k, rs) for k, rs in res.get("resign", {}).items() if "signed" in rs]
    if rows:
        out.append("")
        out.append(f"re-signing one-record changes, {_label(rows[0][1]['names'])}-name zone"
                   f" ({len(rows[0][1]['changes'])} changes)")
        out.append(f"{'':30s} {'':8s} {'median ms':>9s} {'p90 ms':>7s} {'max ms':>7s}")
        for k, label in (("signed", "whole change, signed zone"), ("signing", "  of which signing"),
                         ("unsigned", "same change, unsigned copy")):
            for s, rs in rows:
                out.append(f"{label:30s} {s:8s} {rs[k]['median_ms']:9.3f} {rs[k]['p90_ms']:7.3f}"
                           f" {rs[k]['max_ms']:7.3f}")
        for s, rs in rows:
            out.append(f"({s}: zone import {rs['import_s']:.1f} s;"
                       f" dnssec enable {rs['enable']['wall_s']:.1f} s wall, {rs['enable']['cpu_s']:.1f} s CPU,"
                       f" peak RSS {rs['enable']['rss_mib']:.0f} MiB)")
    return out


def _base(d):
    """' ratio sixgate/baseline R' (current/baseline), or '' without a baseline."""
    if baseline.BASELINE not in d or "sixgate" not in d:
        return ""
    return f" ratio sixgate/baseline {fmt(baseline.ratio(d['sixgate'], d[baseline.BASELINE]), 2)}"


def summary(args, res):
    lines = []
    if "sign" in res:
        sg = res["sign"]
        what = f"{_label(sg['names'])} {sg['algorithm']} {sg['denial']}"
        for t in sg["threads"]:
            ss = [s for s in SIGNERS if f"{s} {t}" in sg["runs"]]
            wall = {s: _med(sg["runs"][f"{s} {t}"], "wall_s") for s in ss}
            cpu = {s: _med(sg["runs"][f"{s} {t}"], "cpu_s") for s in ss}
            rss = {s: _med(sg["runs"][f"{s} {t}"], "rss_mib") for s in ss}
            peers = [s for s in ss if s in PEERS and "sixgate" in ss]

            def vs(word, d, peer_over_sixgate):
                if not peers:
                    return ""
                return f" {word} " + " ".join(
                    f"sixgate/{p} {fmt(baseline.ratio(d[p], d['sixgate']) if peer_over_sixgate else baseline.ratio(d['sixgate'], d[p]), 2)}"
                    for p in peers)
            lines.append(f"sign {what} threads {t} wall s: " + " ".join(f"{s} {fmt(wall[s], 2)}" for s in ss)
                         + _base(wall) + vs("faster", wall, True))
            lines.append(f"sign {what} threads {t} cpu s: " + " ".join(f"{s} {fmt(cpu[s], 2)}" for s in ss)
                         + _base(cpu) + vs("less", cpu, True))
            rss_ratio = _base(rss)
            if peers:
                rss_ratio = (rss_ratio or " ratio") + vs("", rss, False)[1:]
            lines.append(f"sign {what} threads {t} rss MiB: " + " ".join(f"{s} {fmt(rss[s])}" for s in ss)
                         + rss_ratio)
        lines.append("sign verified: " + " ".join(
            f"{k.replace(' ', '@')}t {'ok' if v['ok'] else 'FAILED'}" for k, v in sg["verify"].items()))
    if "resign" in res:
        lines += resign_summary(res["resign"])
    return lines


def resign_summary(rr):
    lines = []
    done = {s: rs for s, rs in rr.items() if "signed" in rs}
    lab = _label(next(iter(rr.values()))["names"]) if rr else ""
    keys = (("median", "signed", "median_ms"), ("p90", "signed", "p90_ms"), ("max", "signed", "max_ms"),
            ("signing-median", "signing", "median_ms"), ("signing-p90", "signing", "p90_ms"),
            ("signing-max", "signing", "max_ms"), ("unsigned-median", "unsigned", "median_ms"))
    if list(done) == ["sixgate"]:
        rs = done["sixgate"]
        lines.append(f"resign {lab} ms: " + " ".join(f"{k} {fmt(rs[a][b], 3)}" for k, a, b in keys)
                     + f" changes {len(rs['changes'])}")
    elif done:
        lines.append(f"resign {lab} ms: " + " ".join(
            f"{s} " + " ".join(f"{k} {fmt(rs[a][b], 3)}" for k, a, b in keys) + f" changes {len(rs['changes'])}"
            for s, rs in done.items())
            + (" ratio sixgate/baseline " + " ".join(
                f"{k} {fmt(baseline.ratio(done['sixgate'][a][b], done[baseline.BASELINE][a][b]), 2)}"
                for k, a, b in keys if k.endswith("median")) if len(done) == 2 else ""))
    setup = {s: rs for s, rs in rr.items() if "enable" in rs}
    if list(setup) == ["sixgate"]:
        rs = setup["sixgate"]
        lines.append(f"resign {lab} setup s: import {fmt(rs['import_s'], 1)}"
                     f" dnssec-enable {fmt(rs['enable']['wall_s'], 1)}"
                     f" dnssec-enable-rss-mib {fmt(rs['enable']['rss_mib'])}")
    elif setup:
        lines.append(f"resign {lab} setup s: " + " ".join(
            f"{s} import {fmt(rs['import_s'], 1)} dnssec-enable {fmt(rs['enable']['wall_s'], 1)}"
            f" dnssec-enable-rss-mib {fmt(rs['enable']['rss_mib'])}" for s, rs in setup.items())
            + (f" ratio sixgate/baseline import"
               f" {fmt(baseline.ratio(setup['sixgate']['import_s'], setup[baseline.BASELINE]['import_s']), 2)}"
               f" dnssec-enable {fmt(baseline.ratio(setup['sixgate']['enable']['wall_s'], setup[baseline.BASELINE]['enable']['wall_s']), 2)}"
               if len(setup) == 2 else ""))
    if any("error" in rs for rs in rr.values()):
        lines.append("resign error: see the log above")
    return lines
