# SPDX-License-Identifier: MIT
"""NOT A LEAK: batch sawtooth.

A batch worker: every 3.5-4.5 s (≙ ~4 min) it loads a batch worth 35-60 % of its heap, works
through it for ~1.5 s, writes the results out and drops it all. Big periodic spikes in both the
Python heap and RSS, nothing kept: the floor between batches stays where it was.
"""
import scenario

svc = scenario.Service("batch_sawtooth")
STATE = scenario.working_set()
batch = None
batch_pos = 0
next_batch_at = 2.0
batch_done_at = 0.0
cycles = 0
written = 0


def step(t):
    global batch, batch_pos, next_batch_at, batch_done_at, cycles, written
    if batch is None and t >= next_batch_at:
        n = int(30000 * svc.rnd.uniform(0.35, 0.60))  # 30k records ≈ the heap
        batch = [scenario.record(i, svc.rnd) for i in range(n)]
        batch_pos = 0
        batch_done_at = t + 1.5
    if batch is not None:
        end = min(len(batch), batch_pos + 600)
        total = 0.0
        for i in range(batch_pos, end):
            total += batch[i]["balance"]
        written += end - batch_pos
        batch_pos = end
        if t >= batch_done_at and batch_pos >= len(batch):
            batch = None
            cycles += 1
            next_batch_at = t + svc.rnd.uniform(2.0, 3.0)
    svc.figures.update(cycles=cycles, written=written, in_batch=batch is not None)


svc.run(step)
