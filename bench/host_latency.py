#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The host's side of the agent (issue 7, item 8): does the agent add tail latency to a program
that serves requests, and how long does one agent tick hold the GIL?

    /usr/bin/python3 bench/host_latency.py --builddir BUILDDIR [--rounds 6] [--seconds 4] [--heap-mb 0]

(`make bench-host` runs exactly that.) Stdlib only, against a real heapwatchd from BUILDDIR.

The host program (this file with --child, under the interpreter the agent was built for) is a
request loop: each request is a small JSON body parsed, validated, turned into a response with
some dict, list and string work, and encoded again -- roughly what a JSON API handler does,
about 20-60 us of Python -- timed one by one with perf_counter_ns, back to back for --seconds.
Every latency goes into a 1 us histogram (exact values above 10 ms), so rounds merge into exact
percentiles. --heap-mb keeps that much of small objects alive first (a service's caches): the
agent's per-tick work includes sys.getallocatedblocks(), which walks the pymalloc heap.

Configurations, as separate processes, interleaved (order rotated every round, so each sees
the same machine as its neighbours): no agent; agent at 1 s with the heap profiler off; agent
at the defaults (1 s, heap profiler on); agent at 0.1 s (defaults otherwise: ten times the
ticks). For the agent runs the child also reports heapwatch.status()'s tick_gil_hold (how long
each sampler tick held the GIL: the longest a host thread can be kept from running by a tick,
beside the interpreter's switch interval) and heap_report_hold (how long each heap report held
the heap profiler's lock, which a host thread waits for only if it samples an allocation
meanwhile), both measured in the agent with two clock reads per tick.

The report: per configuration p50 / p99 / p99.9 / max request latency over all rounds, the
median over rounds of each run's p99.9 and max (their spread shows the noise), and the GIL
hold per tick: p50 and max. Other sessions share the CPUs of this machine: the load average is
printed, and the no-agent rows are the yardstick (preemption by other processes lands in
every configuration alike).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIGS = ["none", "heap-off", "default", "default-0.1s"]
LABELS = {"none": "no agent", "heap-off": "agent 1 s, heap profiler off", "default": "agent, defaults (1 s)",
          "default-0.1s": "agent 0.1 s"}
SETTINGS = {"heap-off": (1.0, 0), "default": (1.0, None), "default-0.1s": (0.1, None)}  # interval, sample_bytes
EXACT_ABOVE_US = 10000


# ---- the host program (child) ----------------------------------------------------------------

def child(args):
    """Run the request loop; print one JSON line: histogram, exact tail, agent figures."""
    import random

    keep = []
    if args.heap_mb > 0:
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        i = 0
        while rss() < args.heap_mb * 2 ** 20:
            keep.append([(j, -j) for j in range(i, i + 50000)])
            i += 50000

    hw = None
    if args.mode != "none":
        import heapwatch as hw
        interval, sample_bytes = SETTINGS[args.mode]
        kw = {"socket": args.socket, "interval": interval, "service": "bench-host-latency"}
        if sample_bytes is not None:
            kw["sample_bytes"] = sample_bytes
        hw.start(**kw)
        deadline = time.monotonic() + 5
        while not hw.status()["connected"] and time.monotonic() < deadline:
            time.sleep(0.01)

    rng = random.Random(42)
    bodies = []
    for n in range(64):
        items = [{"sku": "item-%d" % rng.randrange(10000), "qty": rng.randrange(1, 9),
                  "price": round(rng.uniform(1, 200), 2), "tags": ["t%d" % rng.randrange(50) for _ in range(3)]}
                 for _ in range(rng.randrange(3, 12))]
        bodies.append(json.dumps({"order": n, "customer": "c%d" % rng.randrange(1000), "items": items}))

    def handle(body):
        req = json.loads(body)
        if not isinstance(req.get("items"), list):
            raise ValueError("bad request")
        lines, total = [], 0.0
        for it in req["items"]:
            amount = it["qty"] * it["price"]
            total += amount
            lines.append({"sku": it["sku"].upper(), "amount": round(amount, 2), "tags": sorted(set(it["tags"]))})
        lines.sort(key=lambda x: x["amount"], reverse=True)
        return json.dumps({"order": req["order"], "customer": req["customer"], "total": round(total, 2),
                           "lines": lines, "summary": "%d lines, %.2f" % (len(lines), total)})

    hist = {}
    exact = []
    clock = time.perf_counter_ns
    end = clock() + int(args.seconds * 1e9)
    n = 0
    nb = len(bodies)
    s0 = hw.status()["samples_sent"] if hw else 0
    while True:
        t0 = clock()
        handle(bodies[n % nb])
        t1 = clock()
        us = (t1 - t0) // 1000
        if us >= EXACT_ABOVE_US:
            exact.append((t1 - t0) / 1000.0)
        else:
            hist[us] = hist.get(us, 0) + 1
        n += 1
        if t1 > end:
            break
    out = {"mode": args.mode, "requests": n, "hist": hist, "exact": exact, "heap_mb": args.heap_mb}
    if hw:
        st = hw.status()
        out["samples"] = st["samples_sent"] - s0
        out["connected"] = st["connected"]
        out["heap_profiling"] = st["heap_profiling"]
        out["tick_gil_hold"] = st["tick_gil_hold"]
        out["heap_report_hold"] = st["heap_report_hold"]
        hw.stop()
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


# ---- the driver ------------------------------------------------------------------------------

def merge(runs):
    hist, exact, n = {}, [], 0
    for r in runs:
        for k, v in r["hist"].items():
            hist[int(k)] = hist.get(int(k), 0) + v
        exact += r["exact"]
        n += r["requests"]
    return hist, sorted(exact), n


def percentile(hist, exact, n, q):
    """Nearest-rank percentile in us: 1 us resolution below 10 ms, exact above."""
    rank = max(1, int(q * n + 0.999999))
    seen = 0
    for k in sorted(hist):
        seen += hist[k]
        if seen >= rank:
            return float(k)
    return exact[min(len(exact) - 1, rank - seen - 1)]


def run_stats(r):
    hist = {int(k): v for k, v in r["hist"].items()}
    exact = sorted(r["exact"])
    n = r["requests"]
    mx = exact[-1] if exact else float(max(hist))
    return {"p999": percentile(hist, exact, n, 0.999), "max": mx}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="none", choices=CONFIGS, help=argparse.SUPPRESS)
    ap.add_argument("--socket", help=argparse.SUPPRESS)
    ap.add_argument("--builddir")
    ap.add_argument("--python", help="interpreter to measure (default: the one the agent was built for)")
    ap.add_argument("--rounds", type=int, default=6, help="rounds (default 6)")
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds of requests per run (default 4)")
    ap.add_argument("--heap-mb", type=int, default=0, help="MiB of small objects the host keeps alive (default 0)")
    ap.add_argument("--json", metavar="PATH", help="write every raw figure here")
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if not args.builddir:
        sys.exit("host_latency: --builddir is required")

    sys.path.insert(0, HERE)
    import agent_overhead as ao

    builddir = os.path.abspath(args.builddir)
    with ao.Session("hw-host-") as session:
        tmp = session.tmp
        pyinfo = ao.describe_python(args.python or ao.python_from_makefile(builddir))
        agent_dir, _ = ao.find_agent(builddir, pyinfo, tmp)
        machine = ao.machine_info(pyinfo)
        daemon = session.start_daemon(builddir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEAPWATCH") and k != "PYTHONPATH"}
        env["PYTHONHASHSEED"] = "0"
        runs = {c: [] for c in CONFIGS}
        loads = []
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for c in ao.rotated(CONFIGS, r):
                e = dict(env, PYTHONPATH=agent_dir) if c != "none" else env
                p = subprocess.run([pyinfo["executable"], os.path.abspath(__file__), "--child", "--mode", c,
                                    "--socket", daemon.socket, "--seconds", str(args.seconds),
                                    "--heap-mb", str(args.heap_mb)],
                                   env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
                if p.returncode != 0:
                    ao.die("host_latency: %s failed:\n%s" % (c, p.stderr))
                res = json.loads(p.stdout.strip().splitlines()[-1])
                if c != "none" and (not res.get("connected") or
                                    bool(res.get("heap_profiling")) != (c != "heap-off")):
                    ao.die("host_latency: %s was not what it claims: %r" % (c, {k: v for k, v in res.items()
                                                                                  if k not in ("hist", "exact")}))
                runs[c].append(res)
            ao.log("host_latency: round %d/%d done, loadavg %.2f" % (r + 1, args.rounds, loads[-1]))
        loads.append(os.getloadavg()[0])

        out = ["Request latency of the host program, us (all rounds pooled; 1 us resolution below 10 ms).", "",
               "- interpreter: %s (Python %s); %s; heap kept alive: %d MiB; %d rounds x %g s per configuration"
               % (machine["python_executable"], machine["python"], machine["date"], args.heap_mb, args.rounds,
                  args.seconds),
               "- command: `%s`" % machine["command"],
               "- load average (1 min) during the rounds: %.2f to %.2f on %d CPUs"
               % (min(loads), max(loads), machine["nproc"]), "",
               "| configuration | requests | p50 | p99 | p99.9 | max | per-run p99.9 (median, min-max) "
               "| per-run max (median) | GIL hold per tick: p50 / max (ticks) | heap report: p50 / max |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for c in CONFIGS:
            hist, exact, n = merge(runs[c])
            per = [run_stats(r) for r in runs[c]]
            p999s = [s["p999"] for s in per]
            mx = exact[-1] if exact else float(max(hist))
            gil = heap = "-"
            if c != "none":
                g = [r["tick_gil_hold"] for r in runs[c]]
                h = [r["heap_report_hold"] for r in runs[c]]
                ticks = sum(x["count"] for x in g)
                gil = "%.0f / %.0f (%d)" % (median([x["p50_us"] for x in g if x["count"]]),
                                            max(x["max_us"] for x in g), ticks)
                if any(x["count"] for x in h):
                    heap = "%.0f / %.0f" % (median([x["p50_us"] for x in h if x["count"]]),
                                            max(x["max_us"] for x in h))
            out.append("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f (%.0f-%.0f) | %.0f | %s | %s |"
                       % (LABELS[c], n, percentile(hist, exact, n, 0.5), percentile(hist, exact, n, 0.99),
                          percentile(hist, exact, n, 0.999), mx, median(p999s), min(p999s), max(p999s),
                          median([s["max"] for s in per]), gil, heap))
        sys.stdout.write("\n".join(out) + "\n")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": machine, "args": vars(args), "loads": loads, "runs": runs}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
