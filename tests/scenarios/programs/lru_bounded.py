# SPDX-License-Identifier: MIT
"""NOT A LEAK: a bounded cache.

functools.lru_cache(maxsize=5000) in front of a "database" lookup. Customer ids are skewed over a
large space (a few hot, most cold), so the cache fills in ~6 s with misses (~+20 % of the heap)
and then stays full, evicting one entry per miss (~800 misses/s) for the rest of its life.
"""
import functools

import scenario

svc = scenario.Service("lru_bounded")
STATE = scenario.working_set()
misses = 0


@functools.lru_cache(maxsize=5000)
def customer(cid):
    global misses
    misses += 1
    return scenario.record(cid, svc.rnd)  # stands for a database round trip


def step(t):
    for _ in range(svc.owed("requests", 1000.0)):
        cid = int(1000000 * svc.rnd.random() ** 3)
        c = customer(cid)
        svc.respond({"name": c["name"], "balance": c["balance"]})
    info = customer.cache_info()
    svc.figures.update(cache_size=info.currsize, misses=misses, hits=info.hits)


svc.run(step)
