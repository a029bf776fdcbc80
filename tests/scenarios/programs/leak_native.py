# SPDX-License-Identifier: MIT
"""LEAK (native memory; signal rss_bytes; the Python heap stays flat).

A C library returns a malloc'ed buffer per request and the Python wrapper never frees it (here:
libc malloc through ctypes, filled so the pages are really touched). 25 requests/s of 2-6 KiB:
~100 KiB/s, ~0.4 %/s of a ~25 MB RSS (≙ ~24 %/h in production time). No Python object is kept.
"""
import ctypes
import ctypes.util
import json

import scenario

svc = scenario.Service("leak_native")
STATE = scenario.working_set()
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
leaked = 0
served = 0


def native_render(doc):
    """Stands for a C extension: encodes into a malloc'ed buffer ... and forgets to free it."""
    global leaked
    size = svc.rnd.randint(2048, 6144)
    buf = libc.malloc(size)
    if buf:
        ctypes.memset(buf, 0x5A, size)
        data = json.dumps(doc).encode()[: size - 1]
        ctypes.memmove(buf, data, len(data))
        leaked += size
    return size  # the pointer is dropped: the buffer is lost


def step(t):
    global served
    for _ in range(svc.owed("requests", 25.0)):
        rec = STATE[svc.rnd.randrange(len(STATE))]
        native_render({"customer": rec["name"], "balance": rec["balance"], "n": served})
        served += 1
    svc.figures["leaked_bytes"] = leaked


svc.run(step)
