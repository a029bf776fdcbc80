# SPDX-License-Identifier: MIT
"""LEAK (uncollected cycles: the GC is enabled but starved; Python objects; signal
python_allocated_blocks).

After start-up the service raises the collection thresholds "to cut GC pauses"
(gc.set_threshold(10**9, ...)): the collector stays enabled, but no collection ever runs again.
Every request leaves a Session <-> Connection cycle behind, which only the cyclic GC could free.
120 requests/s of ~12 blocks: ~1400 blocks/s. The daemon sees the thresholds change between
two samples and no collection since: classification uncollectable_cycles (gc_starved).
"""
import gc

import scenario

svc = scenario.Service("leak_gc_starved")
STATE = scenario.working_set()
gc.set_threshold(10 ** 9, 10 ** 9, 10 ** 9)  # "tuning": nothing is collected any more
served = 0


class Session:
    def __init__(self, sid, customer):
        self.sid = sid
        self.customer = customer
        self.conn = Connection(self)


class Connection:
    def __init__(self, session):
        self.session = session
        self.buffer = {"sid": session.sid, "out": []}


def step(t):
    global served
    for _ in range(svc.owed("requests", 120.0)):
        s = Session(served, svc.rnd.randrange(len(STATE)))
        rec = STATE[s.customer]
        s.conn.buffer["out"].append("%s:%.2f" % (rec["name"], rec["balance"]))
        served += 1
    svc.figures.update(requests=served, gc_threshold=list(gc.get_threshold()), gc_count=list(gc.get_count()))


svc.run(step)
