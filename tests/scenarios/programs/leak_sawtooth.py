# SPDX-License-Identifier: MIT
"""LEAK (slow, under a large batch sawtooth; Python objects; signal python_allocated_blocks).

A batch worker holding a large table (100k records, ~740k pymalloc blocks, ~75 MB RSS): every
~4 s (≙ 8 min) it loads a batch worth ~50 % of its heap (55k records), works through it for
~1.5 s, then drops it. Records that fail validation (~0.9 %) are parked in a module-level
"retry later" list that is never drained: ~510 records (~3600 blocks, ~280 KB) per cycle, i.e.
~870 blocks/s, ~0.12 %/s of the floor (≙ ~3.5 %/h and ~2 MiB/h in production time: twice the
detector's absolute floor of 1 MiB/h) under a sawtooth of +50 %: the floor grows by 0.5 % per
cycle, the spikes are 100 times that.
The retained records come from the batch itself, so they also pin some of the batch's pymalloc
arenas: RSS keeps most of the peak (fragmentation); the Python heap shows the sawtooth and,
under it, the slow leak.
"""
import scenario

svc = scenario.Service("leak_sawtooth")
STATE = scenario.working_set(100000)
RETRY_LATER = []  # the leak
BATCH = 55000
FAIL_EVERY = 108   # ~0.9 % of each batch fails validation and is kept
batch = None
batch_pos = 0
next_batch_at = 2.0
batch_done_at = 0.0
cycles = 0
base = 0


def step(t):
    global batch, batch_pos, next_batch_at, batch_done_at, cycles, base
    if batch is None and t >= next_batch_at:
        base += BATCH
        batch = [scenario.record(base + i, svc.rnd) for i in range(BATCH)]
        batch_pos = 0
        batch_done_at = t + 1.5
    if batch is not None:
        # Work through the batch in slices; failed records go to the retry list.
        end = min(len(batch), batch_pos + 2500)
        for i in range(batch_pos, end):
            rec = batch[i]
            if rec["id"] % FAIL_EVERY == 0:
                RETRY_LATER.append(rec)
        batch_pos = end
        if t >= batch_done_at and batch_pos >= len(batch):
            batch = None  # the batch is dropped: back to the floor
            cycles += 1
            next_batch_at = t + svc.rnd.uniform(2.0, 3.0)
    svc.figures.update(cycles=cycles, retained_records=len(RETRY_LATER), in_batch=batch is not None)


svc.run(step)
