# SPDX-License-Identifier: MIT
"""Target for the census tests. Commands: "grow N" adds N handlers to the module-level
registry (registry_app.handlers), "big N" allocates N small container objects (a large heap for
the budget test), "census B S" runs heapwatch.census(budget_ms=B, slices=S) in this thread and
reports it, "get_objects" / "collect" time gc.get_objects() / gc.collect() (for
bench/census_pause.py), "chains N" runs heapwatch.chains() N times and reports the Python heap
blocks it left, "malloc N" reports glibc's mallinfo2() and whether a malloc() of N bytes is
served by mmap (what the agent's censuses must leave as they found it), "churn N" starts a
thread that keeps replacing a module-level list of N objects with a finalizer by a new one
(one of the largest containers: the agent's chains requests hold it as a holder), "churn-report"
reports the threads their finalizers ran on and the agent's status(), "exit". A ticker thread
measures the longest gap between its 1 ms ticks (the host's longest pause) and reports it with
every state."""
import ctypes
import gc
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hwprog  # noqa: E402
import registry_app  # noqa: E402

class Small:
    """The cheapest GC-tracked object: 5 million of them are ~250 MB."""


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_figures(size):
    """glibc's view of the heap, and whether malloc(size) still goes to mmap: glibc raises its
    mmap threshold to the size of any mmapped chunk freed, after which such blocks come from the
    heap, where the host's churn fragments them. The probe moves it too (to its own chunk, a
    page more than size): probe again only with a larger size. None where glibc's mallinfo2()
    is missing."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = MallInfo2
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    before = libc.mallinfo2()
    block = libc.malloc(size)
    during = libc.mallinfo2()
    libc.free(block)
    return {"arena": before.arena, "free": before.fordblks, "in_use": before.uordblks, "mmapped": before.hblkhd,
            "probe_mmapped": during.hblkhd - before.hblkhd >= size}


state = sys.argv[1]
longest = [0.0]
reset = [False]


def ticker():
    last = time.perf_counter()
    while True:
        time.sleep(0.001)
        now = time.perf_counter()
        if reset[0]:
            longest[0] = 0.0
            reset[0] = False
        elif now - last > longest[0]:
            longest[0] = now - last
        last = now


class Doomed:
    """Records the thread its finalizer runs on, when it is not one of the host's own."""
    host_threads = set()
    foreign = []

    def __del__(self):
        ident = threading.get_ident()
        if ident not in Doomed.host_threads:
            Doomed.foreign.append(ident)


churned = {}


def churn(n):
    """Each new list replaces the previous one, whose objects die with it: if the agent held
    the old list across a GIL release (a chains request's holders), its reference is the last."""
    Doomed.host_threads.add(threading.get_ident())
    while churned.get("on"):
        churned["box"] = [Doomed() for _ in range(n)]
        churned["rounds"] = churned.get("rounds", 0) + 1
        time.sleep(0.0005)
    churned.pop("box", None)


Doomed.host_threads.add(threading.get_ident())
threading.Thread(target=ticker, daemon=True).start()
big = []
extra = {}
hwprog.write_state(state, phase="ready", handlers=0, longest_pause=0.0)
while True:
    cmd = hwprog.take_command(state)
    if cmd:
        words = cmd.split()
        if words[0] == "exit":
            sys.exit(0)
        if words[0] == "grow":
            registry_app.register(int(words[1]))
        if words[0] == "big":
            big = [Small() for _ in range(int(words[1]))]
        if words[0] == "reset-pause":
            time.sleep(0.05)
            reset[0] = True
            time.sleep(0.05)
        if words[0] in ("get_objects", "collect"):
            t0 = time.perf_counter()
            gc.get_objects() if words[0] == "get_objects" else gc.collect()
            extra = {"seconds": time.perf_counter() - t0}
        if words[0] == "chains":
            # heapwatch.chains() in this thread, N times after two to warm up: the Python heap
            # blocks it leaves behind (strings kept by CPython's type attribute cache, ...)
            import heapwatch
            for _ in range(2):
                heapwatch.chains(["registry_app.Handler"], holders=True)
            gc.collect()
            before = sys.getallocatedblocks()
            for _ in range(int(words[1])):
                heapwatch.chains(["registry_app.Handler"], holders=True)
            gc.collect()
            extra = {"chains_blocks_left": sys.getallocatedblocks() - before}
        if words[0] == "custom-locals":
            # A thread runs code whose locals are a mapping of the host's own (exec with a dict
            # subclass): a chain search must not call it (it ran on the agent's thread)
            import heapwatch
            calls = []
            stop = [False]

            searcher = threading.get_ident()  # the exec'd code's own name lookups do not count

            class Locals(dict):
                def items(self):
                    calls.append(threading.get_ident())
                    return super().items()

                def keys(self):
                    calls.append(threading.get_ident())
                    return super().keys()

                def __getitem__(self, key):
                    calls.append(threading.get_ident())
                    return super().__getitem__(key)

                def __setitem__(self, key, value):
                    calls.append(threading.get_ident())
                    return super().__setitem__(key, value)

            ready = threading.Event()
            th = threading.Thread(target=lambda: exec("ready.set()\nwhile not stop[0]: time.sleep(0.005)\n",
                                                      {"ready": ready, "stop": stop, "time": time}, Locals()),
                                  daemon=True)
            th.start()
            ready.wait()
            del calls[:]
            for _ in range(int(words[1])):
                heapwatch.chains(["registry_app.Handler"], holders=True)
            stop[0] = True
            th.join()
            extra = {"custom_locals_calls": calls.count(searcher)}
        if words[0] == "malloc":
            extra = {"malloc": malloc_figures(int(words[1]))}
        if words[0] == "churn":
            churned["on"] = True
            churned["thread"] = threading.Thread(target=churn, args=(int(words[1]),), daemon=True)
            churned["thread"].start()
        if words[0] == "churn-report":
            if words[1:] == ["stop"]:
                churned["on"] = False
                churned["thread"].join()
            import heapwatch
            extra = {"churn_rounds": churned.get("rounds", 0), "foreign_finalizers": len(Doomed.foreign),
                     "status": heapwatch.status()}
        if words[0] == "census":
            import heapwatch
            r = heapwatch.census(budget_ms=int(words[1]), slices=int(words[2]))
            extra = {"census": {k: v for k, v in r.items() if k != "types"}}
        hwprog.write_state(state, phase="done " + cmd, handlers=len(registry_app.handlers),
                           longest_pause=longest[0], **extra)
    time.sleep(0.01)
