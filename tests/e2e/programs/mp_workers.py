# SPDX-License-Identifier: MIT
"""multiprocessing workers with a given start method (fork or spawn): the parent starts two
Process objects, each reports its pid into <state>.worker-N and waits until <state>.exit exists,
then returns normally (a clean interpreter exit in the child). The parent reports the workers'
pids in its own state file and waits for them."""
import multiprocessing
import os
import sys
import time


def worker(state, n):
    tmp = "%s.worker-%d.tmp" % (state, n)
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, "%s.worker-%d" % (state, n))
    while not os.path.exists(state + ".exit"):
        time.sleep(0.02)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hwprog

    state, method = sys.argv[1], sys.argv[2]
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=worker, args=(state, n)) for n in range(2)]
    for p in procs:
        p.start()
    hwprog.write_state(state, method=method, workers=[p.pid for p in procs])
    for p in procs:
        p.join()
    hwprog.write_state(state, method=method, workers=[p.pid for p in procs],
                       exitcodes=[p.exitcode for p in procs], done=True)
