# SPDX-License-Identifier: MIT
"""NOT A LEAK (fragmentation plateau: RSS stays high and flat while the live objects fell).

At start-up the service parses a large import file into 300 000 small records, keeps every
16th (the ones it needs) and drops the rest. The survivors pin pymalloc's pools and arenas, so
RSS stays where the import took it, although most of that memory holds no live object; then
steady light traffic, no growth. No finding may open; the process's evidence shows a large
free-but-held share of RSS.
"""
import scenario

svc = scenario.Service("frag_plateau")
STATE = scenario.working_set()
IMPORT = [b"%080d" % i for i in range(300000)]
KEPT = IMPORT[::16]
del IMPORT
served = 0


def step(t):
    global served
    for _ in range(svc.owed("requests", 50.0)):
        rec = KEPT[svc.rnd.randrange(len(KEPT))]
        svc.respond({"record": rec[:8], "n": served})
        served += 1
    svc.figures.update(requests=served, kept=len(KEPT))


svc.run(step)
