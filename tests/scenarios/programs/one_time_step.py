# SPDX-License-Identifier: MIT
"""NOT A LEAK: a one-time step.

A service with steady traffic; 25 s in (≙ 25 min) a feature flag flips and it loads a large
reference table (12k records, ~+40 % of the heap, over ~1 s), which then stays loaded and is
only read. Steady before, steady after.
"""
import scenario

svc = scenario.Service("one_time_step")
STATE = scenario.working_set()
STEP_AT = 25.0
TABLE = []
TABLE_SIZE = 12000
served = 0


def step(t):
    global served
    if t >= STEP_AT and len(TABLE) < TABLE_SIZE:
        start = len(TABLE)
        TABLE.extend(scenario.record(300000 + i, svc.rnd) for i in range(start, min(TABLE_SIZE, start + 800)))
    for _ in range(svc.owed("requests", 200.0)):
        rec = STATE[svc.rnd.randrange(len(STATE))]
        extra = TABLE[served % len(TABLE)]["tags"] if TABLE else None
        svc.respond({"name": rec["name"], "balance": rec["balance"], "extra": extra})
        served += 1
    svc.figures.update(table_rows=len(TABLE), requests=served)


svc.run(step)
