# SPDX-License-Identifier: MIT
"""A target for what the agent's hooks report about their own cost: GC disabled (so only the
collections it is told to make happen), and heapwatch.status() in every state it writes (the
GIL hold per sampler tick, the heap report's lock hold). Commands: exit, collect (5 of
generation 0, 3 of generation 1, 2 of generation 2, then hold still again), finalizers (300
cycles of an object with __del__ and one without, dropped, then a collection of generation 1;
four times: the agent counts one in four of those collections, so 300 objects with a finalizer
among the collected), freeze (gc.freeze() from a finalizer during collections the agent
watches, then gc.unfreeze()), dying_type (five censuses in 1 ms slices during which another
thread lets a class with 50000 instances die; the state says what each census named and
whether the class was freed afterwards), collector_threads (the collector on, at a threshold of
one object, for three sampler ticks while this thread sleeps: the state says how many other
threads ran a collection)."""
import gc
import sys
import threading
import time
import weakref

import heapwatch
import hwprog



class WithDel:
    def __del__(self):
        pass


class Plain:
    pass


class FreezeOnDel:
    def __del__(self):
        gc.freeze()


def freeze_in_collections():
    """gc.freeze() called by a finalizer moves every generation's objects into the permanent
    generation in the middle of a collection: the agent's gc callback, which at the collection's
    start remembered the last object of the generation the survivors go to, must not walk on
    from it into the permanent generation's list head (it took that head for an object and
    crashed the host). Generation 0's collections here: the agent watches one in four. Frozen
    first, so that the walk from that last object meets the permanent generation's head within
    its bound (the oldest generation, which the freeze appends after it, is empty)."""
    gc.freeze()
    older = []
    for _ in range(8):
        # three collections a round: so the one with a finalizer that freezes is among those
        # the agent watches in some rounds (one in four); the two before it leave survivors
        # in generation 1, whose last object the agent remembers
        for _ in range(2):
            older.append([[j] for j in range(10)])
            gc.collect(0)
        a = FreezeOnDel()
        a.self = a
        del a
        gc.collect(0)
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    return frozen


def census_while_a_type_dies():
    """A census in 1 ms slices (the GIL released between them) while another thread drops a
    class and its instances and collects them: the census holds every type it counted until it
    names them at the end (it read a freed type's name before, and crashed the host), and lets
    go of them afterwards (the class is freed)."""
    holder = {}
    gc.freeze()  # everything older is walked last (the permanent generation)
    cls = type("Dying", (object,), {"__slots__": ("a",)})
    ref = weakref.ref(cls)
    holder["objs"] = [cls() for _ in range(50000)]
    holder["cls"] = cls
    del cls
    gc.collect()  # the instances alone in the oldest generation, the one walked first
    filler = [[i] for i in range(500000)]  # noqa: F841 (generation 0, GC off: walked in later slices)
    go = threading.Event()

    def drop():
        go.wait()  # runs once the census releases the GIL between two slices
        holder.clear()
        gc.collect()
        holder["junk"] = [bytearray(1200) for _ in range(2000)]  # reuse the freed memory
    t = threading.Thread(target=drop)
    t.start()
    # drop() gets the GIL when the census lets go of it (between its first two slices), not
    # before the census begins: no forced switch within a second
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        go.set()
        r = heapwatch.census(budget_ms=1, top=4, slices=100)
    finally:
        sys.setswitchinterval(switch)
    t.join()
    gc.unfreeze()
    gc.collect()
    return {"slices": r.get("slices"), "types": [x["type"] for x in r.get("types", [])],
            "freed": ref() is None}


def collections_on_other_threads():
    """The sampler thread's objects (gc.get_stats() and the like) must not run a collection, and
    with it the host's finalizers and gc.callbacks, on the thread that stop(), fork and exit wait
    for. With a threshold of one object every tracked allocation crosses it; this thread sleeps
    (it allocates nothing meanwhile), so any collection during the ticks is another thread's.
    The free lists are emptied first: the sampler's tuples, lists and dicts come from them when
    they can, and those allocations do not count towards the threshold."""
    threads = set()

    def callback(phase, info):
        threads.add(threading.get_ident())
    hold = ([(i, i, i) for i in range(5000)] + [(i, i) for i in range(5000)] + [{} for _ in range(500)] +
            [[] for _ in range(500)])
    ticks = heapwatch.status()["tick_gil_hold"]["count"]
    gc.callbacks.append(callback)
    gc.set_threshold(1)
    gc.enable()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.05)
            gc.disable()  # status() allocates: not counted as a collection of this thread's
            done = heapwatch.status()["tick_gil_hold"]["count"] >= ticks + 3
            gc.enable()
            if done:
                break
    finally:
        gc.disable()
        gc.set_threshold(700, 10, 10)
        gc.callbacks.remove(callback)
    del hold
    return len(threads - {threading.get_ident()})


state = sys.argv[1]
gc.disable()
phase = "ready"
keep = []
frozen = None
censuses = []
collector_threads = None
while True:
    cmd = hwprog.take_command(state)
    if cmd == "exit":
        sys.exit(0)
    if cmd == "collect":
        for g, n in ((0, 5), (1, 3), (2, 2)):
            for _ in range(n):
                gc.collect(g)
        phase = "collected"
    if cmd == "finalizers":
        # the agent counts one in four collections of generation 1 (GC is off here: only
        # these run), so one of these four rounds is counted
        for _ in range(4):
            for _ in range(300):
                a, b = WithDel(), Plain()
                a.other, b.other = b, a
            del a, b
            gc.collect(1)
        phase = "finalized"
    if cmd == "freeze":
        frozen = freeze_in_collections()
        phase = "frozen"
    if cmd == "collector_threads":
        collector_threads = collections_on_other_threads()
        phase = "collector_threads"
    if cmd == "dying_type":
        censuses = [census_while_a_type_dies() for _ in range(5)]
        phase = "censused"
    keep.append(bytearray(4096))  # some allocation for the heap profiler to sample
    if len(keep) > 2000:
        keep = []
    hwprog.write_state(state, phase=phase, status=heapwatch.status(), frozen=frozen, censuses=censuses,
                       collector_threads=collector_threads)
    time.sleep(0.02)
