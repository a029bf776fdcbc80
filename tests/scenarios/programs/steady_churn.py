# SPDX-License-Identifier: MIT
"""NOT A LEAK: steady churn.

A busy API handler (200 req/s): each request parses a JSON payload of varying size, builds a
tree of order lines with parent links (reference cycles) and renders a JSON response; all of it
is garbage when the request ends, the cycles reclaimed by the cyclic GC. Constant allocation and
freeing, a GC sawtooth, a flat floor.
"""
import json

import scenario

svc = scenario.Service("steady_churn")
STATE = scenario.working_set()
PAYLOADS = [json.dumps({"order": n, "lines": [{"sku": "sku-%05d" % (n * 31 + k), "qty": k % 5 + 1,
                                               "price": 1.5 * k} for k in range(n)]})
            for n in range(5, 120, 7)]
served = 0


class Line:
    def __init__(self, order, d):
        self.order = order  # child -> parent: with order.lines, a cycle
        self.sku = d["sku"]
        self.amount = d["qty"] * d["price"]


class Order:
    def __init__(self, d):
        self.id = d["order"]
        self.lines = [Line(self, x) for x in d["lines"]]


def handle(payload):
    order = Order(json.loads(payload))
    return json.dumps({"order": order.id, "total": sum(l.amount for l in order.lines),
                       "skus": [l.sku for l in order.lines]})


def step(t):
    global served
    for _ in range(svc.owed("requests", 200.0)):
        svc.respond(handle(PAYLOADS[svc.rnd.randrange(len(PAYLOADS))]))
        served += 1
    svc.figures["requests"] = served


svc.run(step)
