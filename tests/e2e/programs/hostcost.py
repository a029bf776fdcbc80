# SPDX-License-Identifier: MIT
"""A target for what the agent's hooks report about their own cost: GC disabled (so only the
collections it is told to make happen), and heapwatch.status() in every state it writes (the
GIL hold per sampler tick, the heap report's lock hold). Commands: exit, collect (5 of
generation 0, 3 of generation 1, 2 of generation 2, then hold still again), finalizers (300
cycles of an object with __del__ and one without, dropped, then a collection of generation 1;
four times: the agent counts one in four of those collections, so 300 objects with a finalizer
among the collected)."""
import gc
import sys
import time

import heapwatch
import hwprog



class WithDel:
    def __del__(self):
        pass


class Plain:
    pass


state = sys.argv[1]
gc.disable()
phase = "ready"
keep = []
while True:
    cmd = hwprog.take_command(state)
    if cmd == "exit":
        sys.exit(0)
    if cmd == "collect":
        for g, n in ((0, 5), (1, 3), (2, 2)):
            for _ in range(n):
                gc.collect(g)
        phase = "collected"
    if cmd == "finalizers":
        # the agent counts one in four collections of generation 1 (GC is off here: only
        # these run), so one of these four rounds is counted
        for _ in range(4):
            for _ in range(300):
                a, b = WithDel(), Plain()
                a.other, b.other = b, a
            del a, b
            gc.collect(1)
        phase = "finalized"
    keep.append(bytearray(4096))  # some allocation for the heap profiler to sample
    if len(keep) > 2000:
        keep = []
    hwprog.write_state(state, phase=phase, status=heapwatch.status())
    time.sleep(0.02)
