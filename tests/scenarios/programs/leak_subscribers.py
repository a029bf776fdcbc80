# SPDX-License-Identifier: MIT
"""LEAK (Python objects retained by a registry of handlers; signal python_allocated_blocks).

An event bus keeps a module-level list of subscribers; every request subscribes a small
per-request listener (a bound method of an object holding the request's context) to be told
when the price table changes, and never unsubscribes. 150 requests/s of ~9 blocks: ~1350
blocks/s. Classification python_objects_retained (remedy: remove the handler, weak references).
"""
import scenario

svc = scenario.Service("leak_subscribers")
STATE = scenario.working_set()


class EventBus:
    def __init__(self):
        self.subscribers = []  # the leak: never pruned

    def subscribe(self, fn):
        self.subscribers.append(fn)


BUS = EventBus()
served = 0


class RequestContext:
    def __init__(self, rid, customer):
        self.rid = rid
        self.customer = customer
        self.meta = {"rid": rid, "tag": "req-%d" % rid}

    def on_prices_changed(self, table):
        return self.customer in table


def step(t):
    global served
    for _ in range(svc.owed("requests", 150.0)):
        ctx = RequestContext(served, STATE[svc.rnd.randrange(len(STATE))]["name"])
        BUS.subscribe(ctx.on_prices_changed)
        served += 1
    svc.figures["subscribers"] = len(BUS.subscribers)


svc.run(step)
