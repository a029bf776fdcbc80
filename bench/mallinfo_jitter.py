#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How much one heap's mallinfo2() calls vary: a Python process that churns JSON documents and
leaks 2-6 KiB malloc buffers (like tests/scenarios/programs/leak_native.py) calls mallinfo2()
through ctypes every 200 operations for SECONDS and prints the median, 99th percentile and
maximum of each call's thread CPU time, the cost agent/mallocstat.c times and gives up on.
Run it beside busy loops (e.g. `yes > /dev/null &` twice) to see a busy machine's spread.

    python3 bench/mallinfo_jitter.py [SECONDS]
"""
import ctypes
import json
import random
import sys
import time


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    rnd = random.Random(1)
    docs = [json.dumps({"a": list(range(50))}) for _ in range(20000)]
    costs = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(200):
            libc.malloc(rnd.randint(2048, 6144))  # never freed, as a leaking C extension
            docs[rnd.randrange(len(docs))] = json.dumps({"a": list(range(rnd.randint(1, 300)))})
        t0 = time.thread_time()
        info = libc.mallinfo2()
        costs.append(time.thread_time() - t0)
    costs.sort()
    print("mallinfo2(): %d calls, median %.1f us, p99 %.1f us, max %.1f us; %d free chunks at the end" % (
        len(costs), costs[len(costs) // 2] * 1e6, costs[int(len(costs) * 0.99)] * 1e6, costs[-1] * 1e6,
        info.ordblks))


if __name__ == "__main__":
    main()
