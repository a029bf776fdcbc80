#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the agent adds to an interpreter's start and exit (`python3 -c pass`), side by side
with no agent and with the agent of an earlier revision: for a change to the bootstrap or the
module's start, and for short-lived programs (a cron job, a CLI) started under the agent.

    /usr/bin/python3 bench/startup_cost.py --builddir BUILDDIR [--against REV] [--runs 60]
        [--python PY] [--instructions]

Configurations, run interleaved in a rotated order after one untimed run each, every one with
the agent set up as `heapwatch run` sets it up (PYTHONPATH, HEAPWATCH_SOCKET of a heapwatchd of
BUILDDIR, a 1 s interval) but without exec'ing through the CLI:
  none        no agent;
  against     REV's agent (built from `git archive REV` with its own tests/e2e/build-agent.sh);
  this        this tree's agent, its bootstrap's bytecode cached (as after `make install`,
              which byte-compiles it, or in a directory the program can write);
  this, no bytecode   the same with the bootstrap compiled from source at every start (a
              directory the program cannot write, installed without bytecode).
The cached configurations read bytecode from a private PYTHONPYCACHEPREFIX filled by the
untimed runs; "no bytecode" sets PYTHONDONTWRITEBYTECODE and reads the stdlib's own caches.
Reports medians of wall and CPU time (the child's user + system) and their difference to no
agent; --instructions also counts one run of each under valgrind's cachegrind (deterministic,
whatever else the machine runs). Stdlib only.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_overhead as ao  # noqa: E402
from peak_rss_ab import build_agent_at  # noqa: E402

NO_BYTECODE = "this, no bytecode"


def environments(agent_dirs, daemon, tmp):
    """Each configuration's environment: the caller's, less what would change the runs."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX") and not k.startswith("HEAPWATCH")}
    agent = dict(base, HEAPWATCH_SOCKET=daemon.socket, HEAPWATCH_INTERVAL="1", HEAPWATCH_SERVICE="bench")
    cache = os.path.join(tmp, "pycache")
    envs = {"none": dict(base, PYTHONPYCACHEPREFIX=cache)}
    for name, d in agent_dirs.items():
        if name == NO_BYTECODE:
            envs[name] = dict(agent, PYTHONPATH=d, PYTHONDONTWRITEBYTECODE="1")
        else:
            envs[name] = dict(agent, PYTHONPATH=d, PYTHONPYCACHEPREFIX=cache)
    return envs


def timed_run(py, env):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    rc = subprocess.run([py, "-c", "pass"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        ao.die("python -c pass exited %d" % rc)
    return (t1 - t0) * 1e3, (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1e3


def instructions(py, env):
    if not shutil.which("valgrind"):
        ao.die("--instructions needs valgrind")
    r = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                        py, "-c", "pass"], env=dict(env, PYTHONHASHSEED="0"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, universal_newlines=True)
    for line in r.stderr.splitlines():
        if "I   refs:" in line or "I refs:" in line:
            return int(line.split(":")[1].replace(",", "").strip())
    ao.die("no instruction count from cachegrind:\n" + r.stderr)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True, help="the build tree (heapwatchd, this agent)")
    ap.add_argument("--against", metavar="REV", help="git revision whose agent to compare with")
    ap.add_argument("--runs", type=int, default=60, help="runs of each configuration (default 60)")
    ap.add_argument("--python", help="interpreter (default: the one the build tree's agent was built for)")
    ap.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ao.die("--runs must be at least 1")

    with ao.Session("hw-startup-") as session:
        tmp = session.tmp
        pyinfo = ao.describe_python(args.python or ao.python_from_makefile(args.builddir))
        py = pyinfo["executable"]
        this_dir, _ = ao.find_agent(args.builddir, pyinfo, tmp)
        # the bootstrap without any bytecode next to it (a build tree may hold a __pycache__)
        bare = os.path.join(tmp, "agent-no-bytecode")
        shutil.copytree(this_dir, bare, ignore=shutil.ignore_patterns("__pycache__"))
        dirs = {}
        if args.against:
            dirs["against %s" % args.against] = build_agent_at(args.against, pyinfo, tmp)
        dirs["this"] = this_dir
        dirs[NO_BYTECODE] = bare
        daemon = session.start_daemon(args.builddir)
        envs = environments(dirs, daemon, tmp)
        names = list(envs)
        for c in names:  # untimed: fills the bytecode cache, warms the page cache
            timed_run(py, envs[c])
        wall = {c: [] for c in names}
        cpu = {c: [] for c in names}
        for i in range(args.runs):
            for c in ao.rotated(names, i):
                w, u = timed_run(py, envs[c])
                wall[c].append(w)
                cpu[c].append(u)
        counts = {c: instructions(py, envs[c]) for c in names} if args.instructions else {}

    print("`%s -c pass`, %d interleaved runs each, medians; daemon connected, 1 s interval" % (py, args.runs))
    print()
    print("| configuration | wall | vs no agent | CPU | vs no agent |%s" % (" instructions | vs no agent |" if counts else ""))
    print("|---|---|---|---|---|%s" % ("---|---|" if counts else ""))
    w0, c0 = ao.median(wall["none"]), ao.median(cpu["none"])
    for c in names:
        w, u = ao.median(wall[c]), ao.median(cpu[c])
        row = "| %s | %.1f ms | %+.1f ms | %.1f ms | %+.1f ms |" % (c, w, w - w0, u, u - c0)
        if counts:
            row += " %.1f M | %+.1f M |" % (counts[c] / 1e6, (counts[c] - counts["none"]) / 1e6)
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
