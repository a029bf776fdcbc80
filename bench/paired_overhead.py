#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The agent's overhead per workload with an uncertainty, on a machine whose timing noise is
larger than the effect (a shared 2-vCPU VM: A/A ratios of whole runs x0.85-x1.21).

    /usr/bin/python3 bench/paired_overhead.py --builddir BUILDDIR [--pairs 15] [--scale 0.25]

(`make bench-paired` runs exactly that.) Stdlib only; reuses agent_overhead.py's daemon, runner
and checks (every run is verified to be what it claims).

Method: many short runs instead of a few long ones. Each round runs, for each workload, every
configuration back to back -- no agent, no agent again (A/A control), agent with the heap
profiler off, agent at the defaults -- in an order rotated each round (ABCD, BCDA, ...), so
each configuration has a no-agent run right beside it that saw the same machine. Per round the
ratio configuration / no agent is one paired sample; the report gives per workload the median
of those ratios and a 95 % bootstrap confidence interval of that median (resampling rounds),
for three measures: the workload's own time (perf_counter in the child), the child's CPU time
(user + system of all its threads, from wait4's rusage: less sensitive to other load than
wall time, and it includes the sampler thread's own work) and the whole process's wall time.
The A/A row shows the method's own resolution on this machine. Verdict per workload against
the 1.02x goal: "met" when the CI's upper end is at most 1.02, "missed" when its lower end is
above 1.02, "open" when the CI contains 1.02 (the machine's noise does not allow a decision).
The load average and the other work measured during the runs are printed: other sessions
share the CPUs, which is what the pairing is for.

--inprocess: the same rounds inside one interpreter per workload, the agent started and stopped
between slices (heapwatch.start()/stop(); stop() restores the allocators), so the two halves of
a pair are a fraction of a second apart instead of several process starts: much less drift of
the machine's load between them. It measures the steady state (per-process start and exit
costs are agent_overhead.py's fixed-cost probe) with the workload's time and the process's CPU
time (time.process_time(): all threads, the sampler thread's work included).

--tracemalloc: tracemalloc with one frame as a fifth configuration of every round, for the
comparison SPEC.md asks for (in-process: tracemalloc.start(1) before the slice, stop() after).
"""
import argparse
import json
import os
import random
import subprocess
import time
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import agent_overhead as ao  # noqa: E402  (the bench's shared runner)

CONFIGS = ["baseline", "baseline-again", "agent-heap-off", "agent-1s"]
COMPARED = ["baseline-again", "agent-heap-off", "agent-1s"]
LABELS = {"baseline-again": "A/A control", "agent-heap-off": "agent, heap profiler off",
          "agent-1s": "agent, defaults", "tracemalloc": "tracemalloc (1 frame)"}
MEASURES = [("seconds", "workload time"), ("cpu_seconds", "CPU time (user+sys)"),
            ("process_seconds", "process wall time")]
GOAL = 1.02


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def bootstrap_ci(ratios, reps=4000, seed=1):
    """95 % percentile-bootstrap interval of the median of ratios (resampling rounds)."""
    rng = random.Random(seed)
    n = len(ratios)
    meds = sorted(median([ratios[rng.randrange(n)] for _ in range(n)]) for _ in range(reps))
    return meds[int(0.025 * reps)], meds[int(0.975 * reps) - 1]


def verdict(lo, hi, n):
    if n < 6:
        return "too few rounds"
    if hi <= GOAL:
        return "met"
    if lo > GOAL:
        return "missed"
    return "open"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return []


def rounds(runner, workloads, pairs, save=None):
    results = {w: {c: [] for c in CONFIGS} for w in workloads}
    loads = []
    ao.log("paired_overhead: warm-up (untimed)")
    for w in workloads:
        for c in CONFIGS:
            runner.run(c, w)
    for r in range(pairs):
        loads.append(loadavg())
        for w in workloads:
            for c in ao.rotated(CONFIGS, r):
                results[w][c].append(runner.run(c, w))
        ao.log("paired_overhead: round %d/%d done, loadavg %s" % (r + 1, pairs, loads[-1]))
        if save:
            save(results, loads)  # a run cut short still leaves its rounds
    loads.append(loadavg())
    return results, loads


def inprocess_child(args):
    """Under the target interpreter, agent on PYTHONPATH: run one workload args.pairs rounds,
    every configuration once per round in rotated order; print the runs as JSON."""
    import gc
    import heapwatch
    import tracemalloc
    import workloads as wl

    for p in args.extra_path:
        sys.path.append(p)
    # The agent's directory (on PYTHONPATH) holds its bootstrap sitecustomize, which started the
    # agent at startup (heap profiler on, default socket, likely not connected): without this it
    # would run through the warm-up and round 0's no-agent slices.
    if heapwatch.is_running():
        heapwatch.stop()
    run = wl.WORKLOADS[args.child_inprocess](args.scale)
    run()  # warm: imports, caches, specialisation
    out = {c: [] for c in CONFIGS}
    for r in range(args.pairs):
        for c in ao.rotated(CONFIGS, r):
            if c.startswith("agent"):
                kw = {"socket": args.socket, "interval": 1.0, "service": "bench-paired"}
                if c == "agent-heap-off":
                    kw["sample_bytes"] = 0
                heapwatch.start(**kw)
            elif c == "tracemalloc":
                tracemalloc.start(1)
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            t1, c1 = time.perf_counter(), time.process_time()
            res = {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "background_cpus": float("nan")}
            if c.startswith("agent"):
                st = heapwatch.status()
                res["connected"] = st["connected"]
                res["heap_profiling"] = st["heap_profiling"]
                heapwatch.stop()
            elif c == "tracemalloc":
                res["tracing"] = tracemalloc.is_tracing()
                tracemalloc.stop()
            out[c].append(res)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def inprocess_rounds(runner, workloads, pairs, agent_dir, daemon):
    """One interpreter per workload runs all its rounds (inprocess_child)."""
    results, loads = {}, [loadavg()]
    for w in workloads:
        argv = [os.path.abspath(__file__), "--child-inprocess", w, "--pairs", str(pairs), "--scale",
                "%g" % runner.scale, "--socket", daemon.socket] + (["--tracemalloc"] if "tracemalloc" in CONFIGS else [])
        for p in runner.extra_paths.get(w, []):
            argv += ["--extra-path", p]
        env = dict(runner.env, PYTHONPATH=os.pathsep.join([agent_dir, HERE]))
        p = subprocess.run([runner.py] + argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        if p.returncode != 0:
            ao.die("paired_overhead: %s in-process failed:\n%s" % (w, p.stderr))
        results[w] = json.loads(p.stdout.strip().splitlines()[-1])
        for c in COMPARED:
            if c.startswith("agent"):
                for res in results[w][c]:
                    if not res["connected"] or res["heap_profiling"] != (c == "agent-1s"):
                        ao.die("paired_overhead: %s/%s was not what it claims: %r" % (w, c, res))
            elif c == "tracemalloc" and not all(res["tracing"] for res in results[w][c]):
                ao.die("paired_overhead: %s/tracemalloc was not tracing" % w)
        loads.append(loadavg())
        ao.log("paired_overhead: %s done (in-process), loadavg %s" % (w, loads[-1]))
    return results, loads


def ratio_summary(ratios):
    lo, hi = bootstrap_ci(ratios)
    return {"median": median(ratios), "lo": lo, "hi": hi, "n": len(ratios), "verdict": verdict(lo, hi, len(ratios))}


def summarize(results, workloads):
    """Per workload, and pooled over all workloads ("*": every workload's paired ratios together,
    a tighter interval for the agent's typical cost), per measure and configuration."""
    out = {"*": {}}
    for w in workloads:
        out[w] = {}
        base = results[w]["baseline"]
        for key, _ in MEASURES:
            if key not in base[0]:
                continue
            out[w][key] = {}
            for c in COMPARED:
                ratios = [run[key] / b[key] for run, b in zip(results[w][c], base) if b[key] > 0]
                out[w][key][c] = ratio_summary(ratios)
                out["*"].setdefault(key, {}).setdefault(c, []).extend(ratios)
            out[w][key]["baseline_median_s"] = median([b[key] for b in base])
    for key in out["*"]:
        for c in COMPARED:
            out["*"][key][c] = ratio_summary(out["*"][key][c])
        out["*"][key]["baseline_median_s"] = float("nan")
    return out


def report(summary, workloads, machine, loads, background, args):
    lines = ["%sPaired ratios to no agent, median over %d rounds [95 %% bootstrap CI of the median]; "
             "verdict against %.2fx: met (CI <= %.2f), missed (CI > %.2f), open (CI contains it)."
             % ("In-process (agent started and stopped between slices). " if getattr(args, "inprocess", False)
                else "", args.pairs, GOAL, GOAL, GOAL), ""]
    lines.append("- interpreter: %s (Python %s); scale %g; %s" % (machine["python_executable"], machine["python"],
                                                                  args.scale, machine["date"]))
    lines.append("- command: `%s`" % machine["command"])
    flat = [x for la in loads for x in la[:1]]
    if flat:
        lines.append("- load average (1 min) during the rounds: %.2f to %.2f (median %.2f) on %d CPUs"
                     % (min(flat), max(flat), median(flat), machine["nproc"]))
    if background:
        lines.append("- other work during the runs (CPUs busy besides the measured process): median %.2f, "
                     "max %.2f" % (median(background), max(background)))
    for key, title in MEASURES:
        if key not in summary["*"]:
            continue
        lines += ["", "#### %s" % title, "",
                  "| workload | no agent (median) | %s | verdict, defaults |" % " | ".join(LABELS[c] for c in COMPARED),
                  "|---|---|%s---|" % ("---|" * len(COMPARED))]
        for w in workloads + ["*"]:
            s = summary[w][key]
            cells = [("**x%.3f [%.3f, %.3f]**" if c == "agent-1s" else "x%.3f [%.3f, %.3f]")
                     % (s[c]["median"], s[c]["lo"], s[c]["hi"]) for c in COMPARED]
            name = w + (" (synthetic)" if w in ao.SYNTHETIC else "") if w != "*" else "all workloads, pooled"
            base = "%.3f s" % s["baseline_median_s"] if w != "*" else ""
            lines.append("| %s | %s | %s | %s |" % (name, base, " | ".join(cells), s["agent-1s"]["verdict"]))
    return "\n".join(lines) + "\n"


def print_report(results, workloads, machine, loads, notes, args):
    background = [run["background_cpus"] for w in workloads for c in CONFIGS for run in results[w][c]
                  if run["background_cpus"] == run["background_cpus"]]
    summary = summarize(results, workloads)
    sys.stdout.write(report(summary, workloads, machine, loads, background, args))
    for n in notes:
        sys.stdout.write("- note: %s\n" % n)
    return summary


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", help="the build tree (required unless --from-json)")
    ap.add_argument("--python", help="interpreter to measure (default: the one the agent was built for)")
    ap.add_argument("--pairs", type=int, default=15, help="rounds: paired samples per workload (default 15)")
    ap.add_argument("--scale", type=float, default=0.25, help="workload size (default 0.25: short runs)")
    ap.add_argument("--workloads", default=",".join(ao.ALL_WORKLOADS))
    ap.add_argument("--json", metavar="PATH", help="write every raw figure here (after every round)")
    ap.add_argument("--from-json", metavar="PATH", help="measure nothing: report the rounds saved with --json")
    ap.add_argument("--inprocess", action="store_true",
                    help="rounds inside one interpreter per workload, the agent started/stopped between slices")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="a fifth configuration in every round: tracemalloc with 1 frame (python -X "
                         "tracemalloc=1, or tracemalloc.start(1)/stop() around the slice in-process)")
    ap.add_argument("--child-inprocess", metavar="WORKLOAD", help=argparse.SUPPRESS)
    ap.add_argument("--socket", help=argparse.SUPPRESS)
    ap.add_argument("--extra-path", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.tracemalloc:
        CONFIGS.append("tracemalloc")
        COMPARED.append("tracemalloc")
    if args.child_inprocess:
        return inprocess_child(args)
    if args.from_json:
        with open(args.from_json) as f:
            d = json.load(f)
        done = min(len(d["results"][w]["baseline"]) for w in d["workloads"])
        for w in d["workloads"]:
            for c in CONFIGS:
                d["results"][w][c] = d["results"][w][c][:done]
        saved = argparse.Namespace(**dict(d["args"], pairs=done))
        if getattr(saved, "tracemalloc", False) and "tracemalloc" not in CONFIGS:
            CONFIGS.append("tracemalloc")
            COMPARED.append("tracemalloc")
        print_report(d["results"], d["workloads"], d["machine"], d["loads"], d["notes"], saved)
        return 0
    if not args.builddir:
        ao.die("--builddir is required")
    if args.pairs < 3:
        ao.die("--pairs must be at least 3")
    args.builddir = os.path.abspath(args.builddir)
    wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in wanted:
        if w not in ao.ALL_WORKLOADS:
            ao.die("unknown workload %r" % w)

    with ao.Session("hw-paired-") as session:
        tmp = session.tmp
        pyinfo = ao.describe_python(args.python or ao.python_from_makefile(args.builddir))
        agent_dir, _ = ao.find_agent(args.builddir, pyinfo, tmp)
        workloads, extra_paths, notes = ao.available_workloads(wanted, pyinfo, tmp)
        if not workloads:
            ao.die("no workload to run")
        machine = ao.machine_info(pyinfo)
        daemon = session.start_daemon(args.builddir)
        ao_args = argparse.Namespace(builddir=args.builddir, scale=args.scale)
        runner = ao.Runner(ao_args, pyinfo, agent_dir, daemon, extra_paths, tmp)
        def save(results, loads, summary=None):
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"machine": machine, "args": vars(args), "workloads": workloads, "notes": notes,
                               "loads": loads, "results": results, "summary": summary}, f, indent=1)
        if args.inprocess:
            results, loads = inprocess_rounds(runner, workloads, args.pairs, agent_dir, daemon)
        else:
            results, loads = rounds(runner, workloads, args.pairs, save)
        summary = print_report(results, workloads, machine, loads, notes, args)
        save(results, loads, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
