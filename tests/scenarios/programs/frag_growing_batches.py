# SPDX-License-Identifier: MIT
"""LEAK (fragmentation: pymalloc arenas pinned by sparse survivors; signal rss_bytes; the Python
heap stays nearly flat).

A report job runs once a second over a batch of small records that grows with the data (here
+1900 records a second from 32000), and keeps every 16th record of the latest run as a
"sample" for the summary page; the rest of the batch is garbage at once. Each survivor sits in a
pool whose other blocks are free, so no pool and no arena can be given back: RSS stays at the
peak of the largest batch so far, and that peak keeps rising (~200 KiB/s), while the live
objects (1/16 of a batch) grow ~16 times slower. pymalloc's arenas come from mmap, not malloc:
glibc's in-use bytes do not grow either. Classification fragmentation (pymalloc arenas held).
"""
import scenario

svc = scenario.Service("frag_growing_batches")
STATE = scenario.working_set()
N0, GROWTH, KEEP_EVERY = 32000, 1900, 16
SAMPLE = []
runs = 0


def run_report(n):
    global SAMPLE
    batch = [b"%080d" % i for i in range(n)]  # ~113-byte objects: one pymalloc size class
    SAMPLE = batch[::KEEP_EVERY]
    return len(batch)


def step(t):
    global runs
    for _ in range(svc.owed("runs", 1.0)):
        run_report(int(N0 + GROWTH * t))
        runs += 1
    svc.figures.update(runs=runs, sample=len(SAMPLE))


svc.run(step)
