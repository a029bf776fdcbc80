# SPDX-License-Identifier: MIT
"""LEAK (uncollectable: gc.garbage grows; objects with __del__ in cycles; signal
python_allocated_blocks).

Someone debugging a leak left gc.set_debug(gc.DEBUG_SAVEALL) on: the collector still finds the
garbage, but appends it to gc.garbage instead of freeing it. Every request leaves a cycle of a
Job and a Worker that both define __del__ (collected since Python 3.4, but here saved). 100
requests/s of ~10 blocks, ~4 objects a request into gc.garbage. The agent reports gc.garbage's
length and how many of its entries have a finalizer: classification uncollectable_cycles
(uncollectable).
"""
import gc

import scenario

svc = scenario.Service("leak_saveall_finalizers")
STATE = scenario.working_set()
gc.set_debug(gc.DEBUG_SAVEALL)
served = 0
finalized = 0


class Job:
    def __init__(self, jid):
        self.jid = jid
        self.worker = Worker(self)
        self.result = None

    def __del__(self):
        global finalized
        finalized += 1


class Worker:
    def __init__(self, job):
        self.job = job
        self.log = ["start %d" % job.jid]

    def __del__(self):
        global finalized
        finalized += 1


def step(t):
    global served
    for _ in range(svc.owed("requests", 100.0)):
        j = Job(served)
        rec = STATE[svc.rnd.randrange(len(STATE))]
        j.result = (rec["name"], rec["balance"] * 0.9)
        served += 1
    svc.figures.update(requests=served, gc_garbage=len(gc.garbage), finalized=finalized)


svc.run(step)
