#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What one allocation costs the host with an allocator hook installed: no hook, the cheapest
possible hook (bench/hook_floor.c: pass every call on, nothing else), and the agent's heap
profiler at its defaults, in one process, in nanoseconds per loop iteration.

    PY bench/alloc_cost.py --builddir BUILDDIR [--reps 21] [--iterations 300000]
        [--loops bytes,list] [--only CONFIG]

Runs under the interpreter given as PY (the agent must be built for its version; hook_floor.c is
compiled here with PY's own headers, `cc -O2`). Loops, each allocating and freeing in the
interpreter's allocator domains and nothing else of note:
  bytes  `bytes(100)`: one object-domain malloc and free per iteration
  list   `[None] * 8`: one mem-domain malloc and free (the items; the list object comes from its
         free list)
Configurations: none; floor-all (hook_floor, malloc/calloc/realloc/free); floor-alloc (hook_floor
without free: what a hook that leaves free alone costs); agent (heapwatch.start() with the
default sample_bytes, interval 3600 s, no daemon); agent-off (heapwatch.start(sample_bytes=0)).
Each round runs every configuration once, order rotated; the median over rounds is printed, and
its difference to none. Time depends on the machine's load: for a deterministic count, run one
configuration under valgrind (`--only CONFIG --reps 1`) with two values of --iterations: the
difference of the instruction counts divided by the difference of the iterations is one
iteration's (the warm-up, run before any configuration, is the same in both).
"""
import argparse
import gc
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = ["none", "floor-all", "floor-alloc", "agent", "agent-off"]


# Each loop first makes a few hundred blocks of its size class that stay alive while it runs:
# pymalloc then never empties the pool the loop allocates from (a pool's last free block moves it
# to the free pools, and the next malloc sets up a pool again: ~10 instructions more on each of
# them), which would otherwise happen or not with where earlier allocations left the heap --
# a difference between configurations that is not the hook's (it showed as +37 and -15
# instructions per iteration for the agent with the heap profiler off, which hooks nothing).


def loop_bytes(n):
    anchors = [bytes(100) for _ in range(300)]  # noqa: F841
    for _ in range(n):
        bytes(100)


def loop_list(n):
    anchors = [[None] * 8 for _ in range(300)]  # noqa: F841
    for _ in range(n):
        [None] * 8


LOOPS = {"bytes": loop_bytes, "list": loop_list}


def build_floor(tmp):
    out = os.path.join(tmp, "hw_hook_floor" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    cmd = [os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"],
           os.path.join(HERE, "hook_floor.c"), "-o", out]
    subprocess.run(cmd, check=True)
    sys.path.insert(0, tmp)
    import hw_hook_floor
    return hw_hook_floor


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default="build")
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--iterations", type=int, default=300000)
    ap.add_argument("--loops", default="bytes,list")
    ap.add_argument("--only", choices=CONFIGS)
    args = ap.parse_args()
    loops = args.loops.split(",")
    for name in loops:
        if name not in LOOPS:
            ap.error("unknown loop %r (known: %s)" % (name, ", ".join(LOOPS)))
    tmp = tempfile.mkdtemp(prefix="hw-alloc-cost.")
    try:
        floor = build_floor(tmp)
        sys.path.insert(0, os.path.join(os.path.abspath(args.builddir), "agent", "python"))
        import heapwatch
        heapwatch.stop()  # started by the bootstrap if it was on PYTHONPATH at start
        sock = os.path.join(tmp, "no-daemon.sock")
        setup = {
            "none": (lambda: None, lambda: None),
            "floor-all": (lambda: floor.install("all"), floor.uninstall),
            "floor-alloc": (lambda: floor.install("alloc"), floor.uninstall),
            "agent": (lambda: heapwatch.start(socket=sock, interval=3600.0), heapwatch.stop),
            "agent-off": (lambda: heapwatch.start(socket=sock, interval=3600.0, sample_bytes=0), heapwatch.stop),
        }
        configs = [args.only] if args.only else CONFIGS
        ns = {(c, w): [] for c in configs for w in loops}
        for w in loops:
            LOOPS[w](30000)  # warm up: a fixed count, so that it cancels between runs of other --iterations
        for r in range(args.reps):
            for c in configs[r % len(configs):] + configs[:r % len(configs)]:
                start, stop = setup[c]
                start()
                try:
                    for w in loops:
                        gc.collect()
                        t0 = time.perf_counter_ns()
                        LOOPS[w](args.iterations)
                        ns[(c, w)].append((time.perf_counter_ns() - t0) / args.iterations)
                finally:
                    stop()
        print("Python %s (%s), %d rounds of %d iterations; ns per iteration, median over rounds"
              % (sys.version.split()[0], sys.executable, args.reps, args.iterations))
        print()
        print("| loop | " + " | ".join(configs) + " |")
        print("|---|" + "---|" * len(configs))
        for w in loops:
            med = {c: sorted(ns[(c, w)])[len(ns[(c, w)]) // 2] for c in configs}
            cells = []
            for c in configs:
                if c == "none" or "none" not in med:
                    cells.append("%.1f" % med[c])
                else:
                    cells.append("%.1f (%+.1f)" % (med[c], med[c] - med["none"]))
            print("| %s | %s |" % (w, " | ".join(cells)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
