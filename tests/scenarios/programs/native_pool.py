# SPDX-License-Identifier: MIT
"""NOT A LEAK (native buffers, bounded: every buffer is freed when its slot is reused).

A "C library" keeps a ring of 400 malloc'ed 2-6 KiB buffers (libc through ctypes): each request
mallocs one, fills it, and frees the buffer it replaces. Native memory churns at ~100 KiB/s but
stays bounded at ~1.6 MB.
"""
import ctypes
import ctypes.util

import scenario

svc = scenario.Service("native_pool")
STATE = scenario.working_set()
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.restype = None
libc.free.argtypes = [ctypes.c_void_p]
RING = [None] * 400
served = 0


def step(t):
    global served
    for _ in range(svc.owed("requests", 25.0)):
        size = svc.rnd.randint(2048, 6144)
        buf = libc.malloc(size)
        if buf:
            ctypes.memset(buf, 0x5A, size)
        slot = served % len(RING)
        if RING[slot]:
            libc.free(RING[slot])
        RING[slot] = buf
        served += 1
    svc.figures["requests"] = served


svc.run(step)
