#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the agent adds to a fork: `subprocess.run(preexec_fn=...)` (the one subprocess that runs
the fork hooks), `os.fork()` with a child that exits at once, and a plain `subprocess.run()`
(vfork/posix_spawn, no hooks), side by side with no agent and with an earlier revision's agent.

    /usr/bin/python3 bench/fork_cost.py --builddir BUILDDIR [--against REV] [--runs 15]
        [--forks 100] [--python PY]

Each run is one interpreter with the agent set up as `heapwatch run` sets it up (PYTHONPATH,
HEAPWATCH_SOCKET of a heapwatchd of BUILDDIR, a 1 s interval), doing --forks of each kind and
printing the time per fork; configurations interleaved in a rotated order after one untimed run
each. Reports the medians over runs and their ratio to no agent. Stdlib only.
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_overhead as ao  # noqa: E402
from peak_rss_ab import build_agent_at  # noqa: E402
from startup_cost import environments  # noqa: E402

KINDS = ("Popen(preexec_fn)", "os.fork()", "Popen")

CHILD = r"""
import os, subprocess, sys, time
n = int(sys.argv[1])
def noop():
    pass
def popen_preexec():
    subprocess.run(["/bin/true"], preexec_fn=noop)
def fork_exit():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
def popen():
    subprocess.run(["/bin/true"])
out = []
for fn in (popen_preexec, fork_exit, popen):
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    out.append((time.perf_counter() - t0) / n * 1e6)
print(" ".join("%.1f" % v for v in out))
"""


def timed_run(py, env, forks):
    r = subprocess.run([py, "-W", "ignore::DeprecationWarning", "-c", CHILD, str(forks)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        ao.die("the fork loop exited %d:\n%s" % (r.returncode, r.stderr))
    return [float(v) for v in r.stdout.split()]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True, help="the build tree (heapwatchd, this agent)")
    ap.add_argument("--against", metavar="REV", help="git revision whose agent to compare with")
    ap.add_argument("--runs", type=int, default=15, help="runs of each configuration (default 15)")
    ap.add_argument("--forks", type=int, default=100, help="forks of each kind per run (default 100)")
    ap.add_argument("--python", help="interpreter (default: the one the build tree's agent was built for)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.forks < 1:
        ao.die("--runs and --forks must be at least 1")

    with ao.Session("hw-fork-") as session:
        tmp = session.tmp
        pyinfo = ao.describe_python(args.python or ao.python_from_makefile(args.builddir))
        py = pyinfo["executable"]
        this_dir, _ = ao.find_agent(args.builddir, pyinfo, tmp)
        dirs = {}
        if args.against:
            dirs["against %s" % args.against] = build_agent_at(args.against, pyinfo, tmp)
        dirs["this"] = this_dir
        daemon = session.start_daemon(args.builddir)
        envs = environments(dirs, daemon, tmp)
        names = list(envs)
        for c in names:  # untimed: warms the page cache
            timed_run(py, envs[c], args.forks)
        per_fork = {c: [] for c in names}
        for i in range(args.runs):
            for c in ao.rotated(names, i):
                per_fork[c].append(timed_run(py, envs[c], args.forks))

    print("`%s`, %d forks of each kind per run, %d interleaved runs per configuration, medians;"
          " daemon connected, 1 s interval" % (py, args.forks, args.runs))
    print()
    print("| configuration | " + " | ".join("%s per call | vs no agent" % k for k in KINDS) + " |")
    print("|---|" + "---|---|" * len(KINDS))
    base = [ao.median([run[k] for run in per_fork["none"]]) for k in range(len(KINDS))]
    for c in names:
        cells = []
        for k in range(len(KINDS)):
            m = ao.median([run[k] for run in per_fork[c]])
            cells.append("%.0f us | x%.2f" % (m, m / base[k]))
        print("| %s | %s |" % (c, " | ".join(cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
