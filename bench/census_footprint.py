#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What a census and chain searches leave behind in the host's memory: a batch job's RSS,
glibc's arenas and the Python heap after a dozen searches, against the same job without them.

    /usr/bin/python3 bench/census_footprint.py --agent DIR [--agent DIR2 ...] [--python PY]
                                              [--cycles 12] [--rounds 5]

(`make bench-census-footprint` runs it with the agent of the build tree.)

The job (run in a fresh interpreter per round, the agent imported from DIR, no daemon): a working
set of 25,000 small records (dicts with strings, a float, a tuple), then CYCLES batches of
10,500-18,000 such records, each dropped after it was built. With searches, every batch is
searched while it is alive, as a finding's census would meet it: heapwatch.census(), then
heapwatch.chains(["builtins.dict"], holders=True). Without, nothing else happens. At the end:
RSS, glibc's mallinfo2() arena and free bytes, whether a 1 MiB malloc() is still served by mmap
(glibc raises its mmap threshold to the size of any mmapped chunk freed), and
sys.getallocatedblocks() after a full collection.

Prints Markdown: per agent directory, the median (min..max over rounds) of each figure without
and with searches, run alternately. Stdlib only (ctypes for mallinfo2).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

JOB = r'''
import ctypes, gc, json, random, sys
import heapwatch

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
rnd = random.Random(1)

def record(i):
    return {"id": i, "name": "customer-%08d" % i, "balance": rnd.random() * 1000.0,
            "tags": ("vip" if i % 7 == 0 else "std", "region-%d" % (i % 50))}

searches, cycles = sys.argv[1] == "1", int(sys.argv[2])
working_set = [record(i) for i in range(25000)]
for _ in range(cycles):
    batch = [record(i) for i in range(int(30000 * rnd.uniform(0.35, 0.60)))]
    if searches:
        heapwatch.census()
        heapwatch.chains(["builtins.dict"], holders=True)
    batch = None
gc.collect()
m = libc.mallinfo2()
block = libc.malloc(1 << 20)
mmapped = libc.mallinfo2().hblkhd - m.hblkhd >= (1 << 20)
libc.free(block)
with open("/proc/self/statm") as f:
    rss = int(f.read().split()[1]) * 4096
print(json.dumps({"rss": rss, "arena": m.arena, "free": m.fordblks, "mmap_1mib": mmapped,
                  "blocks": sys.getallocatedblocks()}))
'''


def run(python, agent_dir, searches, cycles):
    env = dict(os.environ, PYTHONPATH=agent_dir, HEAPWATCH_SOCKET="/nonexistent/heapwatch.sock",
               HEAPWATCH_SAMPLE_BYTES="0", PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([python, "-c", JOB, "1" if searches else "0", str(cycles)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def spread(values, scale, fmt):
    return ("%s (%s..%s)" % (fmt, fmt, fmt)) % (statistics.median(values) / scale, min(values) / scale,
                                               max(values) / scale)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agent", action="append", required=True, help="a directory holding the heapwatch module")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--cycles", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if not 1 <= a.cycles <= 1000 or not 1 <= a.rounds <= 50:
        ap.error("--cycles 1-1000, --rounds 1-50")
    print("`%s bench/census_footprint.py --cycles %d --rounds %d` (%s)\n" % (
        sys.executable, a.cycles, a.rounds, a.python))
    print("| agent | searches | RSS MB | malloc arena MB | malloc free MB | 1 MiB malloc by mmap | Python blocks (k) |")
    print("|---|---|---|---|---|---|---|")
    for d in a.agent:
        results = {False: [], True: []}
        for _ in range(a.rounds):
            for searches in (False, True):
                results[searches].append(run(a.python, d, searches, a.cycles))
        for searches in (False, True):
            r = results[searches]
            print("| %s | %s | %s | %s | %s | %d of %d | %s |" % (
                d, "census + chains per batch" if searches else "none",
                spread([x["rss"] for x in r], 1e6, "%.1f"), spread([x["arena"] for x in r], 1e6, "%.2f"),
                spread([x["free"] for x in r], 1e6, "%.2f"), sum(x["mmap_1mib"] for x in r), len(r),
                spread([x["blocks"] for x in r], 1e3, "%.1f")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
