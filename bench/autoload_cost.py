#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The cost of the HEAPWATCH=1 autoload hook when HEAPWATCH is unset: interpreter start-up
(`python -c pass`) with heapwatch-autoload.pth in a site directory and without, interleaved
run by run so machine load hits both alike; plus the cost of the .pth line itself (timeit).

    bench/autoload_cost.py [PYTHON] [RUNS]

Uses a private user site (PYTHONUSERBASE) so nothing is installed. Prints medians and the
difference; docs/operations.md quotes a run."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
PTH = os.path.join(HERE, "..", "agent", "autoload", "heapwatch-autoload.pth")


def main():
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    base = tempfile.mkdtemp(prefix="hw-autoload-")
    try:
        ver = subprocess.check_output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                      universal_newlines=True).strip()
        site = os.path.join(base, "lib", "python" + ver, "site-packages")
        os.makedirs(site)
        env = dict(os.environ, PYTHONUSERBASE=base)
        env.pop("HEAPWATCH", None)
        pth = os.path.join(site, "heapwatch-autoload.pth")
        times = {True: [], False: []}
        for i in range(runs * 2):
            with_hook = i % 2 == 0
            if with_hook:
                shutil.copy(PTH, pth)
            elif os.path.exists(pth):
                os.unlink(pth)
            t = time.perf_counter()
            subprocess.run([python, "-c", "pass"], env=env, check=True)
            times[with_hook].append(time.perf_counter() - t)
        line = open(PTH).read().strip()
        per_line = min(timeit.repeat(lambda: exec(line, {}), number=10000, repeat=5)) / 10000
        a, b = statistics.median(times[True]), statistics.median(times[False])
        print("%s: start-up median %.2f ms with the hook, %.2f ms without (difference %+.2f ms, %d runs each)"
              % (python, a * 1e3, b * 1e3, (a - b) * 1e3, runs))
        print("the .pth line itself (HEAPWATCH unset): %.2f us" % (per_line * 1e6))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
