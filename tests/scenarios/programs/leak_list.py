# SPDX-License-Identifier: MIT
"""LEAK (fast; Python objects; signal python_allocated_blocks).

An audit trail kept "for debugging": every request's record is appended to a module-level list
that nothing ever trims. 200 requests/s, ~7 pymalloc blocks (~550 bytes) retained per request:
~1400 blocks/s on a ~215k-block heap, ~0.65 %/s (≙ ~40 %/h in production time, x60).
"""
import scenario

svc = scenario.Service("leak_list")
STATE = scenario.working_set()
AUDIT = []  # the leak
RATE = 200.0
served = 0


def handle(i):
    rec = scenario.record(i, svc.rnd)
    response = {"status": 200, "customer": rec["name"], "total": rec["balance"] * 1.2}
    AUDIT.append(rec)
    return response


def step(t):
    global served
    for _ in range(svc.owed("requests", RATE)):
        svc.respond(handle(served))
        served += 1
    svc.figures["retained_records"] = len(AUDIT)


svc.run(step)
