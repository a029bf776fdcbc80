# SPDX-License-Identifier: MIT
"""NOT A LEAK (the cyclic GC is disabled, but nothing builds cycles).

The service calls gc.disable() for latency, and its requests create only acyclic garbage
(dicts, lists, strings), which reference counting frees at once: memory stays flat. Disabled GC
alone is not a leak; the daemon reports it as evidence (gc.enabled = false, the time disabled),
never as a finding.
"""
import gc

gc.disable()

import scenario  # noqa: E402

svc = scenario.Service("gc_disabled_acyclic")
STATE = scenario.working_set()
served = 0


def step(t):
    global served
    for _ in range(svc.owed("requests", 200.0)):
        rec = STATE[svc.rnd.randrange(len(STATE))]
        doc = {"customer": rec["name"], "lines": [rec["balance"] * k for k in range(5)], "tags": list(rec["tags"])}
        svc.respond(doc)
        served += 1
    svc.figures.update(requests=served, gc_enabled=gc.isenabled())


svc.run(step)
