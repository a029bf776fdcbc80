# SPDX-License-Identifier: MIT
"""LEAK (medium; Python objects; signal python_allocated_blocks).

A memo cache with no eviction, keyed by something unique: rendered responses are cached under
(user, request id), and the request id never repeats, so the cache only grows. Traffic varies
over the "day" (300 req/s ± 50 %, period 30 s ≙ 1 h). ~4 blocks per entry: ~1200 blocks/s,
~90 KB/s of RSS, ~0.35 %/s of RSS; the dict's table doubles now and then (RSS steps).
"""
import math

import scenario

svc = scenario.Service("leak_dict_cache")
STATE = scenario.working_set()
_RENDERED = {}  # the leak
served = 0


def render(user, request_id):
    key = (user, request_id)
    hit = _RENDERED.get(key)
    if hit is not None:
        return hit
    rec = STATE[user]
    body = "<tr><td>%s</td><td>%.2f</td><td>%s</td><td>%s</td></tr>" % (
        rec["name"], rec["balance"], rec["tags"][1], request_id)
    _RENDERED[key] = body
    return body


def step(t):
    global served
    rate = 300.0 * (1.0 + 0.5 * math.sin(2 * math.pi * t / 30.0))
    for _ in range(svc.owed("requests", rate)):
        render(svc.rnd.randrange(len(STATE)), "req-%010d" % served)
        served += 1
    svc.figures["cache_entries"] = len(_RENDERED)


svc.run(step)
