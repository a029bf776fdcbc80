# SPDX-License-Identifier: MIT
"""LEAK (fast; Python objects; signal python_allocated_blocks; chain plugins.HANDLERS).

Every request subscribes a completion handler to a module-level registry
(plugins.HANDLERS) and never unsubscribes it; the handler keeps the request's record. 200
requests/s, ~8 pymalloc blocks retained per request. The census must show plugins.Handler
growing and the referrer chain must start at the module global plugins.HANDLERS.
"""
import plugins
import scenario

svc = scenario.Service("leak_registry")
STATE = scenario.working_set()
RATE = 200.0
served = 0


def handle(i):
    rec = scenario.record(i, svc.rnd)
    done = plugins.subscribe("request.done", rec)  # the leak: never unsubscribed
    return {"status": 200, "customer": done(rec["balance"])[0]}


def step(t):
    global served
    for _ in range(svc.owed("requests", RATE)):
        svc.respond(handle(served))
        served += 1
    svc.figures["handlers"] = len(plugins.HANDLERS)


svc.run(step)
