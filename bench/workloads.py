# SPDX-License-Identifier: MIT
"""Workloads for bench/agent_overhead.py: real code that nobody on the heapwatch team wrote.

Run by the interpreter under test, one workload per process:

    python3 bench/workloads.py NAME [--scale F] [--extra-path DIR] [--snapshots N]

Each workload prepares its input first (untimed), then runs the real code between two
time.perf_counter() calls, and prints one JSON line on stdout: the workload's seconds, what it
did (so a broken run does not pass for a fast one), the interpreter's GC collection counts, and
whether the heapwatch agent / tracemalloc were active in this process (the driver checks the
configuration it asked for is the one that ran).

The code that runs inside the timed region is the standard library's own (ast, compile,
tokenize, json, xml.dom.minidom) or Debian's python3-pyflakes; the one exception is `gc_cycles`,
a deliberately synthetic stress test of the garbage collector (the agent hooks gc.callbacks),
labelled as such in the reports.

Kept to syntax and APIs of Python 3.8, the oldest interpreter the agent supports.
"""
import gc
import json
import os
import random
import sys
import sysconfig
import time

# Directories of the standard library that are not "the library": test suites (some hold files
# with deliberate syntax errors), IDLE, third-party installs, bytecode caches.
SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "site-packages", "dist-packages", "__pycache__",
             "lib2to3", "turtledemo", "ensurepip"}


def stdlib_sources(max_bytes):
    """The standard library's .py files, in a fixed order (sorted paths), up to max_bytes of
    source. Returns [(path, bytes)]. Test suites are left out (they hold deliberately invalid
    files), so every file is one this interpreter imports."""
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(".py"):
                paths.append(os.path.join(dirpath, f))
    paths.sort()
    out, total = [], 0
    for p in paths:
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        out.append((p, data))
        total += len(data)
        if total >= max_bytes:
            break
    return out


# ---- workloads: each returns (prepare, run); run() returns a small dict describing the work ----

def w_pyflakes(scale):
    """Debian's pyflakes over a chunk of the standard library: what `python3 -m pyflakes FILES`
    does (pyflakes.api.checkPath per file), with the report written to a buffer."""
    from pyflakes import api, reporter

    srcs = stdlib_sources(int(1000000 * scale))

    def run():
        import io
        out, err = io.StringIO(), io.StringIO()
        rep = reporter.Reporter(out, err)
        warnings = 0
        for p, _ in srcs:
            warnings += api.checkPath(p, rep)
        return {"files": len(srcs), "bytes": sum(len(d) for _, d in srcs), "warnings": warnings}
    return run


def w_ast_compile(scale):
    """ast.parse and compile() of standard library sources (what import does on a cold cache)."""
    import ast

    srcs = stdlib_sources(int(4000000 * scale))

    def run():
        nodes = 0
        for p, data in srcs:
            tree = ast.parse(data, p)
            nodes += sum(1 for _ in ast.walk(tree))
            compile(tree, p, "exec")
        return {"files": len(srcs), "bytes": sum(len(d) for _, d in srcs), "nodes": nodes}
    return run


def w_tokenize(scale):
    """The pure-Python tokenize module (regular-expression driven) over standard library
    sources, as linters and formatters use it."""
    import io
    import tokenize

    srcs = stdlib_sources(int(3000000 * scale))

    def run():
        tokens = 0
        names = {}
        for p, data in srcs:
            for tok in tokenize.tokenize(io.BytesIO(data).readline):
                tokens += 1
                if tok.type == tokenize.NAME:
                    names[tok.string] = names.get(tok.string, 0) + 1
        return {"files": len(srcs), "bytes": sum(len(d) for _, d in srcs), "tokens": tokens,
                "distinct_names": len(names)}
    return run


def make_document(n, rng):
    """A generated JSON-like document: n records of nested dicts, lists, strings and numbers,
    the shape of an API response or a log export."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
             "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]
    doc = []
    for i in range(n):
        doc.append({
            "id": i,
            "name": " ".join(rng.choice(words) for _ in range(3)),
            "price": round(rng.random() * 1000, 2),
            "active": rng.random() < 0.5,
            "tags": [rng.choice(words) for _ in range(rng.randint(0, 6))],
            "dims": {"w": rng.random(), "h": rng.random(), "d": None},
            "history": [{"t": 1700000000 + j * 60, "v": rng.randint(0, 10 ** 6)}
                        for j in range(rng.randint(1, 5))],
            "note": "caf\u00e9 \u2014 %d \"quoted\" \\ text" % i,
        })
    return {"version": 3, "items": doc}


def w_json(scale):
    """json.dumps and json.loads (the C accelerator where available, as real services use it)
    of a large generated document, encoded compact and indented, decoded back, several times."""
    doc = make_document(int(6000 * scale), random.Random(1234))

    def run():
        total = 0
        for _ in range(3):
            s = json.dumps(doc)
            back = json.loads(s)
            s2 = json.dumps(back, indent=2, sort_keys=True)
            total += len(s) + len(s2)
            back = json.loads(s2)
        assert len(back["items"]) == len(doc["items"])
        return {"records": len(doc["items"]), "chars": total}
    return run


def make_xml(n, rng):
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<catalog>']
    for i in range(n):
        parts.append('<book id="b%d" lang="%s"><title>Title %d</title><author>Author %d</author>'
                     '<price currency="EUR">%.2f</price><tags><tag>t%d</tag><tag>t%d</tag></tags>'
                     '</book>' % (i, rng.choice(["en", "fr", "de"]), i, rng.randint(0, 999),
                                  rng.random() * 100, rng.randint(0, 50), rng.randint(0, 50)))
    parts.append("</catalog>")
    return "".join(parts).encode("utf-8")


def w_minidom(scale):
    """xml.dom.minidom: parse a generated XML catalogue, walk and query it, serialize it, drop
    it. A DOM is a web of reference cycles (parentNode, ownerDocument, sibling links), so every
    tree is left to the cycle collector: real code with a GC-heavy allocation pattern."""
    from xml.dom import minidom

    data = make_xml(int(4000 * scale), random.Random(99))

    def run():
        books = chars = 0
        for _ in range(3):
            dom = minidom.parseString(data)
            for b in dom.getElementsByTagName("book"):
                books += 1
                b.setAttribute("seen", "1")
            chars += len(dom.toxml())
            del dom
        return {"books": books, "chars": chars}
    return run


class _Node(object):
    __slots__ = ("parent", "children", "payload", "__weakref__")

    def __init__(self, parent, payload):
        self.parent = parent
        self.children = []
        self.payload = payload


def w_gc_cycles(scale):
    """SYNTHETIC: many small objects in reference cycles (trees with parent back-links, dicts
    that point at each other), built and dropped in batches, so that the cycle collector runs
    often and has real work: the worst case for the agent's gc.callbacks hook."""
    batches = int(120 * scale) or 1

    def run():
        made = 0
        for b in range(batches):
            roots = []
            for r in range(200):
                root = _Node(None, {"batch": b, "root": r})
                for c in range(20):
                    child = _Node(root, [c, str(c)])
                    root.children.append(child)
                    d1, d2 = {"i": c}, {"j": c}
                    d1["peer"], d2["peer"] = d2, d1
                    child.payload.append(d1)
                    made += 4
                roots.append(root)
            del roots  # every object here is in a cycle: only the collector frees them
        return {"batches": batches, "objects": made}
    return run


def w_sympy(scale):
    """SymPy (third-party, pip), where installed: expand, factor, differentiate, integrate and
    simplify symbolic expressions; the expression trees are many small immutable objects, and
    SymPy's caches grow with the work (a realistic allocation pattern for the heap profiler)."""
    import sympy

    x, y, z = sympy.symbols("x y z")
    n = max(1, int(3 * scale))

    def run():
        sizes = 0
        for k in range(n):
            e = sympy.expand((x + y + z + k + 1) ** 9)
            sizes += len(e.args)
            f = sympy.factor(x ** 6 - (k + 1) ** 6)
            sizes += len(str(f))
            d = sympy.diff(sympy.sin(x * y) * sympy.exp(x ** 2 + k), x, 3)
            sizes += sympy.count_ops(d)
            i = sympy.integrate(x ** 3 * sympy.exp(-x) * sympy.cos(x + k), x)
            sizes += len(str(sympy.simplify(i)))
        return {"rounds": n, "size": sizes}
    return run


def w_networkx(scale):
    """NetworkX (third-party, pip), where installed: a random graph built, then shortest paths,
    clustering, k-cores, betweenness on a sample, connected components and a minimum spanning
    tree (all pure Python): graph code made of dicts of dicts, allocation-heavy."""
    import networkx as nx

    n = max(100, int(3000 * scale))

    def run():
        g = nx.gnm_random_graph(n, n * 4, seed=7)
        for u, v in g.edges():
            g[u][v]["weight"] = (u * 31 + v * 17) % 97 + 1
        lengths = dict(nx.single_source_dijkstra_path_length(g, 0))
        clustering = nx.average_clustering(g)  # pure Python (pagerank would need numpy/scipy)
        cores = nx.core_number(g)
        bc = nx.betweenness_centrality(g, k=min(200, n), seed=3)
        comps = nx.number_connected_components(g)
        mst = nx.minimum_spanning_tree(g)
        return {"nodes": n, "reached": len(lengths), "clustering": clustering, "max_core": max(cores.values()),
                "betweenness": len(bc), "components": comps, "mst_edges": mst.number_of_edges()}
    return run


WORKLOADS = {
    "pyflakes": w_pyflakes,
    "ast_compile": w_ast_compile,
    "tokenize": w_tokenize,
    "json": w_json,
    "minidom": w_minidom,
    "gc_cycles": w_gc_cycles,
    "sympy": w_sympy,
    "networkx": w_networkx,
}


def agent_info(snapshots):
    """What this process knows about the agent and tracemalloc. With snapshots > 0, also the
    median duration of heapwatch.snapshot() (one sample taken in this thread, GIL held: the
    sample's own work, without waiting for the GIL)."""
    info = {"agent_loaded": "heapwatch" in sys.modules}
    try:
        import tracemalloc
        info["tracemalloc"] = tracemalloc.is_tracing()
    except Exception:
        info["tracemalloc"] = None
    if info["agent_loaded"]:
        hw = sys.modules["heapwatch"]
        try:
            st = hw.status()
            info["agent_running"] = bool(hw.is_running())
            info["agent_connected"] = bool(st.get("connected"))
            info["agent_interval"] = st.get("interval")
            info["agent_samples_sent"] = st.get("samples_sent")
            info["agent_samples_dropped"] = st.get("samples_dropped_total")
            info["agent_process_id"] = st.get("process_id")
            info["agent_heap_profiling"] = st.get("heap_profiling")
            info["agent_sample_bytes"] = st.get("sample_bytes")
            info["agent_padded_blocks"] = st.get("heap_padded_blocks")  # None before fd24a35
        except Exception as e:
            info["agent_error"] = repr(e)
        if snapshots > 0:
            durations = []
            for _ in range(snapshots):
                t0 = time.perf_counter()
                hw.snapshot()
                durations.append(time.perf_counter() - t0)
            durations.sort()
            info["snapshot_seconds_median"] = durations[len(durations) // 2]
    return info


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def heap_probe(mb, reps):
    """How the cost of one sample grows with the Python heap. Fills the heap with small objects
    (pymalloc's domain: tuples of two ints) until the process's RSS reaches mb MiB, then times
    sys.getallocatedblocks() (which CPython computes by visiting every pool of every arena) and
    a whole heapwatch.snapshot(), each after evicting the CPU caches by reading a 64 MiB buffer,
    as a sample between two stretches of real work would find them."""
    import heapwatch

    keep = []
    i = 0
    while rss_bytes() < mb * 2 ** 20:
        keep.append([(j, -j) for j in range(i, i + 50000)])
        i += 50000
    evict = bytearray(64 * 2 ** 20)
    blocks, snaps = [], []
    for _ in range(reps):
        evict.count(1)
        t0 = time.perf_counter()
        sys.getallocatedblocks()
        blocks.append(time.perf_counter() - t0)
        evict.count(1)
        t0 = time.perf_counter()
        heapwatch.snapshot()
        snaps.append(time.perf_counter() - t0)
    blocks.sort()
    snaps.sort()
    return {"heap_mb": mb, "rss_bytes": rss_bytes(), "allocated_blocks": sys.getallocatedblocks(),
            "getallocatedblocks_seconds_median": blocks[len(blocks) // 2],
            "snapshot_seconds_median": snaps[len(snaps) // 2],
            "agent_loaded": "heapwatch" in sys.modules}


def stall_probe(socket_path, interval, reps, slice_s, threshold=20e-6):
    """What one sample costs the host's Python code, measured in the host: a pure-Python loop
    reads the clock as fast as it can, and every gap longer than `threshold` between two
    readings is time the thread did not run (the sampler holding the GIL, the forced switch and
    back, or anything else: preemption, page faults). Slices with the agent running at
    `interval` and with it stopped alternate in the same process, so the difference is the
    agent's, whatever else the machine does. Also counts loop iterations per second (the
    throughput of Python code, stalls and cache effects included)."""
    import heapwatch

    pc = time.perf_counter

    def measure():
        end = pc() + slice_s
        last = t0 = pc()
        stall, gaps, n = 0.0, 0, 0
        while True:
            now = pc()
            d = now - last
            if d > threshold:
                stall += d
                gaps += 1
            last = now
            n += 1
            if now > end:
                break
        return {"stall": stall, "gaps": gaps, "rate": n / (now - t0)}

    off, on = [], []
    for i in range(reps):
        for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
            if mode == "on":
                heapwatch.start(socket=socket_path, interval=interval, service="bench-stall-probe")
                s0 = heapwatch.status()["samples_sent"]
                m = measure()
                m["samples"] = heapwatch.status()["samples_sent"] - s0
                m["connected"] = heapwatch.status()["connected"]
                heapwatch.stop()
                on.append(m)
            else:
                off.append(measure())
    return {"interval": interval, "slice_seconds": slice_s, "threshold": threshold, "off": off, "on": on}


def gc_hook_probe(socket_path, reps, calls):
    """The cost of the agent's gc.callbacks entry per collection: gc.collect(0) on an empty
    young generation, agent stopped and running alternately, best of each."""
    import heapwatch

    def per_call():
        t0 = time.perf_counter()
        for _ in range(calls):
            gc.collect(0)
        return (time.perf_counter() - t0) / calls

    off, on = [], []
    for i in range(reps):
        off.append(per_call())
        heapwatch.start(socket=socket_path, interval=3600, service="bench-gc-probe")
        on.append(per_call())
        heapwatch.stop()
    return {"off": min(off), "on": min(on), "extra_per_collection": min(on) - min(off)}


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", choices=sorted(WORKLOADS) + ["heap_probe", "stall_probe"],
                    help="a workload, or heap_probe (see --heap-mb), or stall_probe (run with -S and "
                         "the agent on PYTHONPATH, not through heapwatch run)")
    ap.add_argument("--heap-mb", type=int, default=256, help="heap_probe: RSS to reach, MiB")
    ap.add_argument("--socket", help="stall_probe: the daemon's agent socket")
    ap.add_argument("--interval", type=float, default=0.1, help="stall_probe: sampling interval")
    ap.add_argument("--reps", type=int, default=8, help="stall_probe: slices with and without the agent")
    ap.add_argument("--slice", type=float, default=1.5, help="stall_probe: seconds per slice")
    ap.add_argument("--scale", type=float, default=1.0, help="size factor of the input (default 1)")
    ap.add_argument("--extra-path", action="append", default=[],
                    help="directory appended to sys.path (e.g. one holding Debian's pyflakes)")
    ap.add_argument("--snapshots", type=int, default=0,
                    help="after the workload, time N heapwatch.snapshot() calls")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="seconds to stay alive, idle, after the workload (sampler cost probe)")
    args = ap.parse_args(argv)

    for p in args.extra_path:
        if p not in sys.path:
            sys.path.append(p)
    if args.workload == "stall_probe":
        res = {"stall": stall_probe(args.socket, args.interval, args.reps, args.slice),
               "gc_hook": gc_hook_probe(args.socket, 5, 100000)}
        sys.stdout.write(json.dumps(res) + "\n")
        return 0
    if args.workload == "heap_probe":
        sys.stdout.write(json.dumps(heap_probe(args.heap_mb, max(args.snapshots, 5))) + "\n")
        return 0

    run = WORKLOADS[args.workload](args.scale)
    gc0 = [s["collections"] for s in gc.get_stats()]
    t0 = time.perf_counter()
    what = run()
    t1 = time.perf_counter()
    gc1 = [s["collections"] for s in gc.get_stats()]

    result = {
        "workload": args.workload,
        "seconds": t1 - t0,
        "work": what,
        "gc_collections": [b - a for a, b in zip(gc0, gc1)],
        "python": sys.version.split()[0],
        "executable": sys.executable,
    }
    result.update(agent_info(args.snapshots))
    # Peak RSS of this process (VmHWM): the whole run, input preparation included. ru_maxrss is
    # in KiB on Linux.
    import resource
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.hold > 0:
        time.sleep(args.hold)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
