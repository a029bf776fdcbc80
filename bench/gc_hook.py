#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the agent's gc.callbacks hook costs per garbage collection, split into gc's own price
for having any callback (it builds a phase string and an info dict for every call, whoever
listens) and the agent's callback itself.

    /usr/bin/python3 bench/gc_hook.py --builddir BUILDDIR [--python PY] [--collections 20000] [--young N]

(`make bench-gc-hook`.) Three modes of one loop of gc.collect(0) on an empty young generation:
no callback; a Python no-op callback (lambda phase, info: None: gc's own price plus a Python
call); the agent running (heap profiler off, interval 3600 s, so only the hook differs).
Instructions per collection are counted with valgrind's callgrind: the inclusive cost of gc's
callback invocation (invoke_gc_callback: phase string, info dict, the calls) and of the agent's
callback, as the difference between a run with --collections and one with none, so other load
on the machine does not matter; wall time per collection (best of 7 x 100000, interleaved in
one process) is printed beside it for scale. Needs valgrind for the instruction counts.
With --young N each collection finds N live lists in the young generation (made just before it,
automatic collection off): the agent's hook then also walks them, at "start" and as survivors
at "stop", counting objects with finalizers among the collected (docs/protocol.md, SAMPLE).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

LOOP = r"""
import gc, sys, time
mode, n, young = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
if mode == "agent":
    import heapwatch
    heapwatch.start(socket=sys.argv[3], interval=3600, sample_bytes=0)
elif mode == "noop":
    gc.callbacks.append(lambda phase, info: None)
gc.collect()
if young:
    gc.disable()
live = None
for _ in range(n):
    live = [[] for _ in range(young)] if young else None
    gc.collect(0)
"""

TIMING = r"""
import gc, json, sys, time, heapwatch
sock, young = sys.argv[1], int(sys.argv[2])
if young:
    gc.disable()
def per(calls=100000 // max(1, young // 10)):
    t0 = time.perf_counter()
    for _ in range(calls):
        live = [[] for _ in range(young)] if young else None
        gc.collect(0)
    return (time.perf_counter() - t0) / calls * 1e9
noop = lambda phase, info: None
r = {"none": [], "noop": [], "agent": []}
for _ in range(7):
    r["none"].append(per())
    gc.callbacks.append(noop); r["noop"].append(per()); gc.callbacks.remove(noop)
    heapwatch.start(socket=sock, interval=3600, sample_bytes=0); r["agent"].append(per()); heapwatch.stop()
print(json.dumps({k: min(v) for k, v in r.items()}))
"""


def callgrind(py, env, mode, n, sock, tmp, young):
    """Inclusive instructions of gc's callback invocation (invoke_gc_callback: the phase string,
    the info dict, the calls) and of the agent's callback, over a run of n collections."""
    out = os.path.join(tmp, "cg.%s.%d" % (mode, n))
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, py, "-c", LOOP, mode,
                        str(n), sock, str(young)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if p.returncode != 0:
        sys.exit("gc_hook: valgrind run failed (%s %d):\n%s" % (mode, n, p.stderr[-2000:]))
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    figures = {"invoke": 0, "ours": 0, "total": 0}
    for line in ann.splitlines():
        t = re.match(r"\s*([\d,]+) .*PROGRAM TOTALS", line)
        if t:
            figures["total"] = int(t.group(1).replace(",", ""))
        m = re.match(r"\s*([\d,]+) \(", line)
        if not m:
            continue
        v = int(m.group(1).replace(",", ""))
        if ":invoke_gc_callback" in line:  # Modules/gcmodule.c, 3.13: Python/gc.c
            figures["invoke"] = max(figures["invoke"], v)
        elif "module.c:gc_callback" in line:
            figures["ours"] = max(figures["ours"], v)
    return figures


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--python", help="interpreter (default: the one the agent was built for)")
    ap.add_argument("--collections", type=int, default=20000)
    ap.add_argument("--young", type=int, default=0, help="live lists in the young generation at each collection")
    args = ap.parse_args(argv)
    sys.path.insert(0, HERE)
    import agent_overhead as ao

    builddir = os.path.abspath(args.builddir)
    pyinfo = ao.describe_python(args.python or ao.python_from_makefile(builddir))
    with ao.Session("hw-gchook-") as session:
        tmp = session.tmp
        agent_dir, _ = ao.find_agent(builddir, pyinfo, tmp)
        sock = os.path.join(tmp, "absent.sock")  # no daemon needed: the agent keeps retrying, quietly
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEAPWATCH")}
        env.update(PYTHONPATH=agent_dir, PYTHONHASHSEED="0")
        py = pyinfo["executable"]
        t = json.loads(subprocess.run([py, "-c", TIMING, sock, str(args.young)], env=env, stdout=subprocess.PIPE,
                                      universal_newlines=True, check=True).stdout)
        per = {}
        if shutil.which("valgrind") and shutil.which("callgrind_annotate"):
            for mode in ("none", "noop", "agent"):  # "none": only its total, for scale
                a = callgrind(py, env, mode, args.collections, sock, tmp, args.young)
                b = callgrind(py, env, mode, 0, sock, tmp, args.young)
                per[mode] = {k: (a[k] - b[k]) / args.collections for k in a}
        print("gc.collect(0) on a young generation of %d live lists, %s (Python %s), %s"
              % (args.young, py, pyinfo["version"], ao.machine_info(pyinfo)["date"]))
        print()
        print("| per collection | no callback | Python no-op callback | agent's hook |")
        print("|---|---|---|---|")
        if per:
            print("| instructions in gc's callback invocation (callgrind, inclusive) | 0 | %.0f | %.0f |"
                  % (per["noop"]["invoke"], per["agent"]["invoke"]))
            print("| of which the agent's callback itself | | | %.0f |" % per["agent"]["ours"])
            # for scale; not per mode: with the agent its thread's own work (reconnecting to the
            # absent daemon, as often as valgrind's slow clock lets it) mixes into the totals
            print("| for scale: a whole loop iteration with no callback (the young lists made, the collection) | %.0f | | |"
                  % per["none"]["total"])
        print("| wall time, best of 7 x %d (load %.2f) | %.0f ns | %.0f ns | %.0f ns |"
              % (100000 // max(1, args.young // 10), os.getloadavg()[0], t["none"], t["noop"], t["agent"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
