# SPDX-License-Identifier: MIT
"""LEAK (reference cycles with the cyclic GC disabled; Python objects; signal
python_allocated_blocks).

The service turns the cyclic garbage collector off for latency (as some do with gc.disable()
or gc.freeze()), and every request builds a Request and a Handler that point at each other, plus
a completion callback closing over the handler. Once the request is done nothing refers to the
pair from outside, but only the cyclic GC could free it, and it never runs. 120 requests/s of
~13 blocks (~850 bytes): ~1600 blocks/s, ~100 KB/s of RSS, ~0.4 %/s of RSS.
"""
import gc

gc.disable()

import scenario  # noqa: E402

svc = scenario.Service("leak_cycles")
STATE = scenario.working_set()
served = 0


class Request:
    def __init__(self, rid, customer):
        self.rid = rid
        self.customer = customer
        self.handler = Handler(self)


class Handler:
    def __init__(self, request):
        self.request = request
        self.on_done = lambda: self.request.rid  # closes over self: one more cycle
        self.result = None

    def run(self):
        rec = STATE[self.request.customer]
        self.result = {"name": rec["name"], "due": rec["balance"] * 0.1, "rid": "r-%d" % self.request.rid}
        return self.on_done()


def step(t):
    global served
    for _ in range(svc.owed("requests", 120.0)):
        req = Request(served, svc.rnd.randrange(len(STATE)))
        req.handler.run()
        served += 1
    svc.figures.update(requests=served, gc_enabled=gc.isenabled(), gc_count=list(gc.get_count()))


svc.run(step)
