#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The host's longest pause while heapwatch takes an object census and searches referrer
chains on a large heap (issue 8: "the census and chain searches respect their budgets on a heap
of 5 million objects").

    /usr/bin/python3 bench/census_pause.py --builddir BUILDDIR [--python PY] [--objects 5000000]
                                           [--budgets 10,50] [--rounds 5]

(`make bench-census` runs exactly that with the interpreter the agent was built for.)

What it does, per budget: starts a real heapwatchd (--census-budget-ms BUDGET, no on-demand
rate limit) and one target interpreter with the agent (tests/e2e/programs/registry.py, interval
1 s) whose heap holds --objects GC-tracked objects (instances in a list) plus a module-level
registry of handlers (registry_app.handlers). A thread of the target ticks every 1 ms and
records the longest gap between two ticks: the longest the host's Python code did not run. Each round: reset the gap, grow the
registry by 1000 handlers, POST /api/v1/processes/{id}/census, wait until the census and the
chains that follow it (the registry grew) are in GET .../census, read the gap. The same ticker
measures, for comparison, an idle period of the same length (what the machine's own noise
does to a 1 ms tick), gc.get_objects() and a full gc.collect() on the same heap.

Prints Markdown: per budget the median (min..max over rounds) of the host's longest pause, the
agent's longest GIL hold and its thread's CPU time during that hold (less than the hold: the
kernel ran something else while the agent held the GIL), the census's slices and duration, whether it was complete, and the
chain search's hold and result. Stdlib only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

def http(url, method="GET"):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "{}")


def wait_for(pred, timeout=120, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def run_budget(args, budget, tmp):
    # tests/e2e helpers: a real heapwatchd, and the e2e target program registry.py (module-level
    # registry_app.handlers; "big N"; a ticker thread measuring the longest gap between 1 ms ticks)
    os.environ.update(top_builddir=args.builddir, HW_TARGET_PYTHON=args.python, HW_AGENT_DIR=args.agent_dir)
    from hwtest import Daemon, Target  # noqa: E402 (they read the environment at import)

    daemon = Daemon(tmp, extra_args=["--census-api-min-interval", "0", "--agent-work-per-minute", "600",
                                     "--census-budget-ms", str(budget), "--census-timeout", "600"],
                    log_level="info").start()
    target = Target(tmp, "registry.py", socket_path=daemon.socket_path, interval="1", use_cli=False)

    def command(text):
        target.command(text)
        return target.wait_state(lambda s: s.get("phase") == "done " + text, what=text)

    rows = []
    try:
        target.wait_state(lambda s: s.get("phase") == "ready", what="the target to start")
        pid = wait_for(lambda: next((p["id"] for p in daemon.processes("live") if p["pid"] == target.pid), None),
                       what="the target to connect")
        command("big %d" % args.objects)
        command("collect")
        base = daemon.url + "/api/v1/processes/%s/census" % pid
        for r in range(args.rounds + 1):  # round 0 is the baseline census, not reported
            command("grow 1000")
            before = http(base)[1]
            command("reset-pause")
            status, doc = http(base, "POST")
            assert status == 202, doc
            last_id = (before["latest"] or {}).get("request_id")
            chains_before = before.get("chains_time")

            def done():
                c = http(base)[1]
                if (c["latest"] or {}).get("request_id") == last_id or c.get("pending") is not None:
                    return None
                if r > 0 and c.get("chains_time") == chains_before:
                    return None  # the chains request follows the census: wait for it too
                return c
            c = wait_for(done, what="the census and its chains")
            gap = command("noop %d" % r)["longest_pause"]
            if r == 0:
                continue
            latest = c["latest"]
            rows.append({"gap": gap, "gil": latest["gil_seconds"], "cpu": latest["gil_cpu_seconds"],
                         "slices": latest["slices"], "duration": latest["duration_seconds"],
                         "complete": latest["complete"], "objects": latest["objects"],
                         "chains": [x["chain"] for x in c["chains"]]})
        # The same ticker with nothing to do: what the machine itself does to a 1 ms tick.
        idle = []
        for r in range(args.rounds):
            command("reset-pause")
            time.sleep(statistics.median(x["duration"] for x in rows) + 0.05)
            idle.append(command("noop idle %d" % r)["longest_pause"])
        get_objects = [command("get_objects %d" % i)["seconds"] for i in range(args.rounds)]
        collect = [command("collect %d" % i)["seconds"] for i in range(args.rounds)]
        target.command("exit")
        target.wait()
    finally:
        target.kill()
        daemon.stop()
    return rows, idle, get_objects, collect


def ms(values):
    values = sorted(values)
    return "%.1f (%.1f..%.1f)" % (statistics.median(values) * 1e3, values[0] * 1e3, values[-1] * 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--agent-dir", help="directory holding the agent built for --python (default BUILDDIR/agent/python)")
    ap.add_argument("--objects", type=int, default=5000000)
    ap.add_argument("--budgets", default="10,50")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    args.builddir = os.path.abspath(args.builddir)
    args.agent_dir = args.agent_dir or os.path.join(args.builddir, "agent", "python")
    version = subprocess.check_output([args.python, "-c", "import platform; print(platform.python_version())"],
                                      text=True).strip()
    print("## Census and chains on %d objects (Python %s, %d rounds, load average %.1f at start)\n" % (
        args.objects, version, args.rounds, os.getloadavg()[0]))
    print("| budget | host's longest pause | agent's longest GIL hold | its CPU time | slices | census duration "
          "| complete | idle ticker (noise) | gc.get_objects() | gc.collect() | chains found |")
    print("|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---|")
    for budget in [int(b) for b in args.budgets.split(",")]:
        with tempfile.TemporaryDirectory(prefix="hw-bench-census-") as tmp:
            rows, idle, get_objects, collect = run_budget(args, budget, tmp)
        print("| %d ms | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (
            budget, ms([r["gap"] for r in rows]), ms([r["gil"] for r in rows]), ms([r["cpu"] for r in rows]),
            statistics.median(r["slices"] for r in rows), ms([r["duration"] for r in rows]),
            "%d/%d" % (sum(r["complete"] for r in rows), len(rows)), ms(idle), ms(get_objects), ms(collect),
            "; ".join(sorted(set(c for r in rows for c in r["chains"])))))
        sys.stdout.flush()
    print("\nTimes in ms: median (min..max). The host's longest pause is the longest gap between two "
          "1 ms ticks of a Python thread in the target while the census and the chain search ran; "
          "the idle ticker is the same measure with nothing running.")


if __name__ == "__main__":
    main()
