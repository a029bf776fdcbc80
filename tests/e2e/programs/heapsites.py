# SPDX-License-Identifier: MIT
"""Targets for the heap profiler's end-to-end tests. Known amounts retained at known sites
(sizes measured with sys.getsizeof, written to the state file as the truth) and the agent's own
estimate (heapwatch.snapshot()["heap"], by innermost function). Modes (argv[2]):

  accuracy  site_a keeps 50 MiB, site_b 10 MiB, site_c 1 MiB of small objects, site_d churns
            ~600 MB without keeping anything; then holds still.
  fork      the parent keeps site_a, forks; the child keeps site_child: each reports its own.
  stop      starts with the profiler off (HEAPWATCH_SAMPLE_BYTES=0), then start() with it on,
            then stop(): records the interpreter's allocators (all three domains) at each step.
            Small lists sampled before stop() are grown (realloc) and freed after it.
  arena     keeps 200000 small objects in steps of 1000, each step once the agent's pool of
            padded blocks holds at least 48 (so that the pool's refills, not the machine's load,
            set the pace); records how many of them lie in the host's main malloc heap ([heap] in
            /proc/self/maps) and status()["heap_padded_blocks"] before and after.
  small     small objects (pymalloc's, <= 512 bytes): site_small_keep keeps 20000 of 200 bytes,
            site_small_churn makes and drops 400000, then the kept ones are dropped; records
            the estimates and sys.getallocatedblocks() around the churn (gc disabled). Then
            site_small_grow keeps 20000 lists grown by realloc past 512 bytes, and drops them.
  threads   four threads allocate and free at a high sampling rate while the main thread keeps
            site_a; checks the profiler under concurrency.
  leak      leak_records keeps ~2 MB/s of small records, churn allocates without keeping.
  exec      exec() runs 400 sources, each keeping 150 KB at line L = 1..5 in turn (blank lines
            before it): the same code at a reused address, only the line table differs; records
            the live bytes by the line the agent names.
  turmoil   started with the profiler off (HEAPWATCH_SAMPLE_BYTES=0); four threads allocate and
            free while the main thread restarts the agent with other settings, stops it and
            forks (children that allocate, take a snapshot and leave by os._exit() or by a
            normal exit) 60 times; for the last 30 a fifth thread takes snapshot(), status()
            and small census() calls (not before: what those lock orders the sampler thread's
            reads before the main thread's writes, which would hide a race from TSan);
            then stop(): records the allocators before and after, and each child's status.
            "turmoil nofork" does all but fork.
Commands: exit."""
import ctypes
import os
import random
import sys
import threading
import time

import hwprog

MiB = 1 << 20
state = sys.argv[1]
mode = sys.argv[2]


def site_a(keep):
    for _ in range(10):
        keep.append(bytearray(5 * MiB))


def site_b(keep):
    for _ in range(2):
        keep.append(bytearray(5 * MiB))


def site_c(keep):
    small = []
    for _ in range(1000):
        small.append(bytes(1000))
    keep.append(small)


def site_d():
    n = 0
    for i in range(20000):
        b = bytes(1000 + (i % 60) * 1000)
        n += len(b)
    return n


def site_child(keep):
    for _ in range(2):
        keep.append(bytearray(5 * MiB))


def size_of(objs):
    return sum(sys.getsizeof(o) for o in objs)


def heap_by_function():
    """The agent's estimate per innermost function, from snapshot() (no daemon involved)."""
    import heapwatch

    h = heapwatch.snapshot().get("heap")
    if not h:
        return None
    stacks = {s["id"]: s["frames"] for s in h["stacks"]}
    out = {}
    for site in h["sites"]:
        frames = stacks.get(site["stack"], [])
        name = frames[0][1] if frames else "<none>"
        out[name] = out.get(name, 0) + site["live_bytes"]
    return {"sites": out, "live_bytes": h["live_bytes"], "samples_total": h["samples_total"]}


class Allocator(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p), ("calloc", ctypes.c_void_p),
                ("realloc", ctypes.c_void_p), ("free", ctypes.c_void_p)]


def allocators():
    """The raw (0), mem (1) and object (2) domains' allocators as the interpreter has them:
    (ctx, malloc, calloc, realloc, free) each."""
    get = ctypes.pythonapi.PyMem_GetAllocator
    get.argtypes = [ctypes.c_int, ctypes.POINTER(Allocator)]
    get.restype = None
    out = []
    for domain in (0, 1, 2):
        a = Allocator()
        get(domain, ctypes.byref(a))
        out.append([a.ctx, a.malloc, a.calloc, a.realloc, a.free])
    return out


def site_small_keep(keep, n=20000):
    for _ in range(n):
        keep.append(bytes(200))


def site_small_lists():
    return [list(range(10)) for _ in range(100000)]


def site_small_grow(n=20000):
    """Lists whose arrays grow by realloc from a pymalloc block (32 bytes) past 512 bytes into
    the raw domain and on (about 11 reallocs each): a sampled array that moves must leave the
    profile at its old address."""
    out = []
    for _ in range(n):
        x = []
        for i in range(120):
            x.append(i)
        out.append(x)
    return out


def brk_heap():
    """The main malloc heap's address range (glibc's main arena: [heap]), or (0, 0)."""
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith("[heap]"):
                lo, hi = line.split()[0].split("-")
                return int(lo, 16), int(hi, 16)
    return 0, 0


def site_small_churn():
    n = 0
    for i in range(400000):
        n += len(bytes(16 + i % 400))
    return n


def hold():
    while hwprog.take_command(state) != "exit":
        time.sleep(0.02)


if mode == "accuracy":
    a, b, c = [], [], []
    site_a(a)
    site_b(b)
    site_c(c)
    churned = site_d()
    truth = {"site_a": size_of(a), "site_b": size_of(b), "site_c": size_of(c) + size_of(c[0]), "site_d": 0}
    hwprog.write_state(state, phase="ready", truth=truth, churned=churned, heap=heap_by_function())
    hold()
elif mode == "fork":
    keep = []
    site_a(keep)
    pid = os.fork()
    if pid == 0:
        mine = []
        site_child(mine)
        hwprog.write_state(state + ".child", role="child", heap=heap_by_function())
        while hwprog.take_command(state + ".child") != "exit":
            time.sleep(0.02)
        os._exit(0)
    hwprog.write_state(state, role="parent", child=pid, heap=heap_by_function())
    hold()
    os.waitpid(pid, 0)
elif mode == "stop":
    import heapwatch

    off = allocators()
    status_off = heapwatch.status()
    hwprog.write_state(state, phase="off", status=status_off)
    while hwprog.take_command(state) != "start":
        time.sleep(0.02)
    started = heapwatch.start(sample_bytes=512 * 1024, socket=status_off["socket"], interval=status_off["interval"],
                              service=status_off["service"])
    on = allocators()
    keep = []
    site_a(keep)
    lists = site_small_lists()  # sampled ones outlive stop(): over pymalloc, pooled blocks
    status_on = heapwatch.status()
    heap_on = heap_by_function()
    heapwatch.stop()
    restored = allocators()
    keep.append([bytes(100) for _ in range(10000)])  # the interpreter allocates on as before
    for x in lists:
        x.extend(range(100))  # past 512 bytes: realloc of the blocks sampled before stop()
    del lists  # and freed, through the original allocators
    hwprog.write_state(state, phase="stopped", started=started, off=off, on=on, restored=restored,
                       status_on=status_on, heap_on=heap_on, status_after=heapwatch.status())
    hold()
elif mode == "small":
    import gc

    gc.disable()  # no collection inside the churn: the block count moves by the churn alone
    before = sys.getallocatedblocks()
    churned = site_small_churn()
    after_churn = sys.getallocatedblocks()
    keep = []
    site_small_keep(keep)
    truth = size_of(keep) + sys.getsizeof(keep)  # the list's array grows (realloc) at the same site
    heap_kept = heap_by_function()
    del keep[:]
    heap_dropped = heap_by_function()
    grown = site_small_grow()
    grown_truth = size_of(grown) + sys.getsizeof(grown)  # the outer list grows at the same site
    heap_grown = heap_by_function()
    del grown[:]
    heap_grown_dropped = heap_by_function()
    gc.enable()
    hwprog.write_state(state, phase="ready", blocks_before=before, blocks_after_churn=after_churn, churned=churned,
                       truth={"site_small_keep": truth, "site_small_grow": grown_truth}, heap_kept=heap_kept,
                       heap_dropped=heap_dropped, heap_grown=heap_grown, heap_grown_dropped=heap_grown_dropped)
    hold()
elif mode == "arena":
    import heapwatch

    def pool_ready(need=48, timeout=30.0):
        end = time.monotonic() + timeout
        while heapwatch.status()["heap_padded_blocks"]["ready"] < need:
            if time.monotonic() > end:
                return False
            time.sleep(0.001)
        return True

    keep = []
    refilled = pool_ready()
    before = heapwatch.status()["heap_padded_blocks"]
    for _ in range(200):
        refilled = pool_ready() and refilled
        site_small_keep(keep, 1000)
    after = heapwatch.status()["heap_padded_blocks"]
    lo, hi = brk_heap()
    hwprog.write_state(state, phase="ready", kept=len(keep), in_brk_heap=sum(1 for o in keep if lo <= id(o) < hi),
                       refilled=refilled, padded_before=before, padded_after=after)
    hold()
elif mode == "threads":
    stop = threading.Event()

    def worker(seed):
        rnd = random.Random(seed)
        pool = []
        while not stop.is_set():
            pool.append(bytes(rnd.randrange(1, 20000)))
            if len(pool) > 200:
                del pool[:rnd.randrange(1, 200)]
            if rnd.random() < 0.01:
                pool = [bytearray(rnd.randrange(1, 100000)) for _ in range(3)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    keep = []
    time.sleep(0.5)
    site_a(keep)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    hwprog.write_state(state, phase="ready", truth={"site_a": size_of(keep)}, heap=heap_by_function())
    hold()
elif mode == "turmoil":
    import warnings

    import heapwatch

    # 3.12+ warns that fork() in a threaded process may deadlock the child: that it does not is
    # what this mode checks, and the warning would land on the stderr the test reads.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    off = allocators()
    settings = heapwatch.status()
    stop = threading.Event()
    errors = []

    def worker(seed):
        rnd = random.Random(seed)
        pool = []
        while not stop.is_set():
            pool.append(bytes(rnd.randrange(1, 20000)))
            pool.append([rnd.random() for _ in range(rnd.randrange(1, 50))])
            if len(pool) > 200:
                del pool[:rnd.randrange(1, 200)]

    def observer():
        n = 0
        while not stop.is_set():
            try:
                heapwatch.snapshot()
                heapwatch.status()
                n += 1
                if n % 10 == 0:
                    heapwatch.census(budget_ms=2, slices=2)
            except Exception as e:  # noqa: BLE001 - any exception is the finding
                errors.append(repr(e))
            time.sleep(0.005)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    children = []
    rnd = random.Random(7)
    for i in range(60):
        if i == 30:
            threads.append(threading.Thread(target=observer))
            threads[-1].start()
        if i % 5 == 4:
            heapwatch.stop()
        heapwatch.start(sample_bytes=rnd.choice([0, 512, 4096, 65536, 512 * 1024]),
                        stack_depth=rnd.choice([1, 8, 32]), interval=rnd.choice([0.05, 0.2]),
                        socket=settings["socket"], service=settings["service"])
        if i % 4 == 3 and sys.argv[3:] != ["nofork"]:
            pid = os.fork()
            if pid == 0:
                mine = [bytes(1000) for _ in range(2000)]
                heapwatch.snapshot()
                if i % 8 == 3:
                    os._exit(0)
                sys.exit(0)  # the interpreter's own exit: atexit, the agent's goodbye
            children.append(pid)
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    heapwatch.stop()
    hwprog.write_state(state, phase="ready", off=off, restored=allocators(), children=statuses, errors=errors,
                       status_after=heapwatch.status())
    hold()
elif mode == "exec":
    import heapwatch

    kept = {}
    for i in range(400):
        line = i % 5 + 1
        source = "\n" * (line - 1) + "kept.setdefault(%d, []).append(bytearray(150000))\n" % line
        exec(compile(source, "<exec>", "exec"), {"kept": kept})
    h = heapwatch.snapshot()["heap"]
    stacks = {s["id"]: s["frames"] for s in h["stacks"]}
    by_line = {}
    for site in h["sites"]:
        frames = [f for f in stacks.get(site["stack"], []) if f[0] == "<exec>"]
        if frames:
            by_line[str(frames[0][2])] = by_line.get(str(frames[0][2]), 0) + site["live_bytes"]
    hwprog.write_state(state, phase="ready", by_line=by_line)
    hold()
elif mode == "leak":
    records = []

    def leak_records(i):
        for k in range(80):
            records.append({"id": i * 80 + k, "payload": "x" * 200})

    def churn():
        return sum(len(str(list(range(50)))) for _ in range(20))

    i = 0
    hwprog.write_state(state, phase="leaking")
    t0 = time.monotonic()
    while hwprog.take_command(state) != "exit" and time.monotonic() - t0 < 120:
        leak_records(i)
        churn()
        i += 1
        time.sleep(0.02)
