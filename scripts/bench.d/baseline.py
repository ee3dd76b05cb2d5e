"""`scripts/bench ... --baseline REV`: a second sixgate, built from another
revision, measured in the same run as the current tree.

REV (a commit, tag or branch, resolved in this tree's repository) is
checked out with `git worktree add --detach` into
target/bench-baseline/COMMIT (the first 12 hex digits) and built with the
release profile, as the current binary is, with
CARGO_TARGET_DIR=target/bench-baseline/cargo-target: never this tree's
target/, so the two builds do not clobber each other, and one target
directory for every baseline, so that the dependencies are compiled once.
The binary is then copied to target/bench-baseline/bin/sixgate-COMMIT. A
later run with a baseline at the same commit, under whatever name, uses
that copy and builds nothing. A lock file serializes baseline builds of
concurrent runs (they share the target directory).

In the results the current binary is `sixgate` and the baseline binary
`baseline`; every ratio against the baseline is current / baseline.
"""

import fcntl
import os
import shutil
import subprocess

CURRENT = "sixgate"
BASELINE = "baseline"
FAMILY = (CURRENT, BASELINE)


class BaselineError(RuntimeError):
    pass


def _git(root, *argv, check=True):
    r = subprocess.run(["git", "-C", root, *argv], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise BaselineError(f"git {' '.join(argv)}: {(r.stderr or r.stdout).strip()}")
    return r.stdout.strip()


def resolve(root, rev):
    """{"rev", "commit", "short", "subject"} of REV; raises BaselineError
    if it names no commit."""
    r = subprocess.run(["git", "-C", root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise BaselineError(f"--baseline {rev}: not a commit, tag or branch of {root}")
    commit = r.stdout.strip()
    return {"rev": rev, "commit": commit, "short": commit[:12],
            "subject": _git(root, "log", "-1", "--format=%s", commit)}


def build(root, rev, say):
    """The path of a release binary of sixgate at REV, built if needed, and
    what REV resolved to."""
    info = resolve(root, rev)
    base = os.path.join(root, "target", "bench-baseline")
    binary = os.path.join(base, "bin", f"sixgate-{info['short']}")
    info["binary"] = binary
    if os.access(binary, os.X_OK):
        say(f"# baseline {rev} = {info['short']} ({info['subject'][:60]}): reusing {binary}")
        info["built"] = False
        return binary, info
    os.makedirs(os.path.join(base, "bin"), exist_ok=True)
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(binary, os.X_OK):  # a concurrent run built it meanwhile
            info["built"] = False
            return binary, info
        tree = os.path.join(base, info["short"])
        _worktree(root, tree, info["commit"])
        target = os.path.join(base, "cargo-target")
        say(f"# baseline {rev} = {info['short']} ({info['subject'][:60]}): cargo build --release -p sixgate"
            f" in {tree}, CARGO_TARGET_DIR={target}")
        r = subprocess.run(["cargo", "build", "--release", "-p", "sixgate"], cwd=tree,
                           env=dict(os.environ, CARGO_TARGET_DIR=target))
        if r.returncode != 0:
            raise BaselineError(f"the baseline build at {info['short']} failed (exit {r.returncode})")
        # Copied under the lock: the next baseline build overwrites
        # cargo-target/release/sixgate.
        tmp = binary + ".part"
        shutil.copy2(os.path.join(target, "release", "sixgate"), tmp)
        os.replace(tmp, binary)
    info["built"] = True
    return binary, info


def _worktree(root, tree, commit):
    """A detached work tree of `commit` at `tree`, made or checked again."""
    if os.path.isdir(tree):
        head = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0 and head.stdout.strip() == commit:
            return
        raise BaselineError(f"{tree} exists but is not a work tree at {commit[:12]}; remove it"
                            f" (git worktree remove --force {tree})")
    # --force: also when the path is still registered from a work tree
    # whose directory was deleted by hand.
    _git(root, "worktree", "add", "--force", "--detach", tree, commit)


def order(items, r, alternate):
    """The items of round `r` (a dict's keys and values, or a list): in a
    baseline run, every other round in reverse order, so that neither
    binary always runs right after the other."""
    xs = list(items.items()) if isinstance(items, dict) else list(items)
    return xs[::-1] if alternate and r % 2 else xs


def ratio(cur, base):
    """current / baseline, or None when either is missing or the baseline is 0."""
    if cur is None or base is None or cur != cur or base != base or not base:
        return None
    return cur / base
