# SPDX-License-Identifier: MIT
"""NOT A LEAK: warm-up to a plateau.

Product details are memoised in a dict over a finite catalogue (8000 products). Requests
(2000/s) draw products at random, so the cache fills fast at first and ever slower (a coupon
collector: 1 - e^(-t/4s), ≙ 8 min in production time), and stops growing when the catalogue is
in: ~+30 % of the heap, 95 % of it within ~12 s (≙ 24 min), flat afterwards.
"""
import scenario

svc = scenario.Service("warmup_plateau")
STATE = scenario.working_set()
CATALOGUE = 8000
_PRODUCTS = {}


def product(sku):
    key = "sku-%05d" % sku
    p = _PRODUCTS.get(key)
    if p is None:
        p = {"price": 9.99 + sku % 500, "name": "product %d" % sku, "stock": 1000 + sku,
             "desc": "a fine product number %d" % sku}
        _PRODUCTS[key] = p
    return p


def step(t):
    for _ in range(svc.owed("requests", 2000.0)):
        p = product(svc.rnd.randrange(CATALOGUE))
        svc.respond((p["name"], p["price"] * 1.2))
    svc.figures["cached_products"] = len(_PRODUCTS)


svc.run(step)
