#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the agent does during one in-process slice of bench/paired_overhead.py, counted rather
than timed against a baseline: where the agent's time goes with the heap profiler off.

    /usr/bin/python3 bench/slice_probe.py --builddir BUILDDIR [--python PY] [--pairs 8]
        [--scale 0.2] [--workloads tokenize,pyflakes] [--interval 1.0]

Each slice is exactly paired_overhead.py's --inprocess slice (start() with the same arguments,
gc.collect(), the workload between two clock reads, status(), stop()) in the same rotated order
of no agent / heap profiler off / defaults, and records, besides the workload's time and the
process's CPU time: the host thread's own CPU time (CLOCK_THREAD_CPUTIME_ID), the sampler
thread's on-CPU time from start() to the end of the slice and inside the timed part alone
(/proc/self/task/TID/schedstat, nanoseconds), the samples the agent sent, the GIL hold of its
ticks (status()["tick_gil_hold"]), the collections per generation inside the timed part, and
the host thread's voluntary and involuntary context switches (a GIL hand-over to the sampler
and back is two). Stdlib only; reuses agent_overhead.py's daemon and checks. Prints a Markdown
table of medians per workload and configuration; --json keeps every slice.

Instructions per slice (valgrind; deterministic, whatever else the machine runs): the child
alone, one configuration, 1 and 3 slices, under callgrind with --separate-threads=yes (thread 1
is the host's, thread 2 the sampler's); (3 slices - 1 slice) / 2 is one slice:

    PYTHONHASHSEED=0 PYTHONPATH=BUILDDIR/agent/python:bench valgrind --tool=callgrind \
        --separate-threads=yes python3 bench/slice_probe.py --child tokenize --only agent-heap-off \
        --pairs 3 --scale 0.2 --socket SOCKET
"""
import argparse
import gc
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import agent_overhead as ao  # noqa: E402

CONFIGS = ["baseline", "agent-heap-off", "agent-1s"]


def task_dir(tid):
    return "/proc/self/task/%d" % tid


def thread_ns(tid):
    """On-CPU nanoseconds of one of our threads (schedstat), None if it is gone."""
    try:
        with open(task_dir(tid) + "/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ctx_switches(tid):
    v = n = 0
    with open(task_dir(tid) + "/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                v = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                n = int(line.split()[1])
    return v, n


def sampler_tid():
    for t in os.listdir("/proc/self/task"):
        try:
            with open(task_dir(int(t)) + "/comm") as f:
                if f.read().strip() == "heapwatch":
                    return int(t)
        except OSError:
            continue
    return None


def child(args):
    import heapwatch
    import workloads as wl

    for p in args.extra_path:
        sys.path.append(p)
    if heapwatch.is_running():
        heapwatch.stop()  # the agent's directory holds its sitecustomize: it started at startup
    me = ao_threading_native_id()
    run = wl.WORKLOADS[args.child](args.scale)
    run()  # warm, as paired_overhead.py does
    configs = [args.only] if args.only else CONFIGS
    out = {c: [] for c in configs}
    for r in range(args.pairs):
        for c in ao.rotated(configs, r):
            tid = None
            if c.startswith("agent"):
                kw = {"socket": args.socket, "interval": args.interval, "service": "bench-slice-probe"}
                if c == "agent-heap-off":
                    kw["sample_bytes"] = 0
                heapwatch.start(**kw)
                tid = sampler_tid()
            gc.collect()
            g0 = [s["collections"] for s in gc.get_stats()]
            s0 = thread_ns(tid) if tid else 0
            x0 = ctx_switches(me)
            t0, c0, h0 = time.perf_counter(), time.process_time(), time.thread_time()
            run()
            t1, c1, h1 = time.perf_counter(), time.process_time(), time.thread_time()
            x1 = ctx_switches(me)
            s1 = thread_ns(tid) if tid else 0
            g1 = [s["collections"] for s in gc.get_stats()]
            res = {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "host_thread_cpu": h1 - h0,
                   "gc": [b - a for a, b in zip(g0, g1)], "vol_cs": x1[0] - x0[0], "invol_cs": x1[1] - x0[1]}
            if tid:
                st = heapwatch.status()
                res["sampler_cpu_slice"] = ((s1 or 0) - (s0 or 0)) / 1e9
                res["sampler_cpu_total"] = (s1 or 0) / 1e9  # from the thread's start
                res["samples_sent"] = st["samples_sent"]
                res["connected"] = st["connected"]
                res["heap_profiling"] = st["heap_profiling"]
                res["tick_gil_hold_mean_us"] = st["tick_gil_hold"]["mean_us"]
                res["tick_gil_hold_count"] = st["tick_gil_hold"]["count"]
                heapwatch.stop()
            out[c].append(res)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def ao_threading_native_id():
    import threading
    return threading.get_native_id() if hasattr(threading, "get_native_id") else os.getpid()


def med(xs):
    xs = [x for x in xs if x is not None]
    return ao.median(xs) if xs else float("nan")


def report(results, workloads):
    lines = ["| workload | configuration | workload time | process CPU | host thread CPU | other threads' CPU "
             "(process - host) | sampler thread CPU: in the timed part / start to end | samples sent | "
             "GIL hold per tick (mean) | collections gen 0/1/2 | host context switches vol/invol |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in workloads:
        for c in CONFIGS:
            rs = results[w][c]
            other = med([r["cpu_seconds"] - r["host_thread_cpu"] for r in rs])
            sam = "-"
            if c != "baseline":
                sam = "%.2f ms / %.2f ms" % (med([r["sampler_cpu_slice"] for r in rs]) * 1e3,
                                             med([r["sampler_cpu_total"] for r in rs]) * 1e3)
            lines.append("| %s | %s | %.4f s | %.4f s | %.4f s | %.2f ms | %s | %s | %s | %s | %s / %s |" % (
                w, c, med([r["seconds"] for r in rs]), med([r["cpu_seconds"] for r in rs]),
                med([r["host_thread_cpu"] for r in rs]), other * 1e3, sam,
                "-" if c == "baseline" else "%g" % med([r["samples_sent"] for r in rs]),
                "-" if c == "baseline" else "%.1f us" % med([r["tick_gil_hold_mean_us"] for r in rs]),
                "/".join("%g" % med([r["gc"][g] for r in rs]) for g in range(3)),
                "%g" % med([r["vol_cs"] for r in rs]), "%g" % med([r["invol_cs"] for r in rs])))
    return "\n".join(lines) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir")
    ap.add_argument("--python")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--workloads", default="tokenize,pyflakes")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--child", metavar="WORKLOAD",
                    help="be the child: run WORKLOAD's slices in this interpreter (needs --socket)")
    ap.add_argument("--only", choices=CONFIGS,
                    help="with --child: only this configuration's slices (for instruction counts "
                         "under valgrind: run it with --pairs 1 and 3, the difference is two slices)")
    ap.add_argument("--socket", help="with --child: the daemon's agent socket")
    ap.add_argument("--extra-path", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if not args.builddir:
        ao.die("--builddir is required")
    args.builddir = os.path.abspath(args.builddir)
    wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
    with ao.Session("hw-slice-") as session:
        pyinfo = ao.describe_python(args.python or ao.python_from_makefile(args.builddir))
        agent_dir, _ = ao.find_agent(args.builddir, pyinfo, session.tmp)
        workloads, extra_paths, notes = ao.available_workloads(wanted, pyinfo, session.tmp)
        daemon = session.start_daemon(args.builddir)
        results = {}
        for w in workloads:
            argv2 = [os.path.abspath(__file__), "--child", w, "--pairs", str(args.pairs), "--scale",
                     "%g" % args.scale, "--interval", "%g" % args.interval, "--socket", daemon.socket]
            for p in extra_paths.get(w, []):
                argv2 += ["--extra-path", p]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([agent_dir, HERE]), PYTHONHASHSEED="0")
            p = ao.subprocess.run([pyinfo["executable"]] + argv2, env=env, stdout=ao.subprocess.PIPE,
                                  stderr=ao.subprocess.PIPE, universal_newlines=True)
            if p.returncode != 0:
                ao.die("slice_probe: %s failed:\n%s" % (w, p.stderr))
            results[w] = json.loads(p.stdout.strip().splitlines()[-1])
            for c in CONFIGS[1:]:
                for r in results[w][c]:
                    if not r["connected"] or r["heap_profiling"] != (c == "agent-1s"):
                        ao.die("slice_probe: %s/%s was not what it claims: %r" % (w, c, r))
        sys.stdout.write("- %s (Python %s), scale %g, %d rounds, interval %g s, load average %s\n\n"
                         % (pyinfo["executable"], pyinfo["version"], args.scale, args.pairs, args.interval,
                            open("/proc/loadavg").read().split()[:3]))
        sys.stdout.write(report(results, workloads))
        for n in notes:
            sys.stdout.write("- note: %s\n" % n)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
