#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Where the heap profiler's CPU time goes: the allocator wrappers' fast path, or sampling.

    PYTHONPATH=BUILDDIR/agent/python PY bench/heapprof_split.py WORKLOAD [ROUNDS] [SOCKET] [--extra-path DIR]

Runs under the interpreter the agent was built for, with the agent on PYTHONPATH. One workload
of bench/workloads.py (scale 0.2) in one process, ROUNDS rounds (default 21), each round the agent
started and stopped around one slice in three settings, order rotated: heap profiler off (no
wrappers), sample_bytes 1 GiB (the wrappers and their countdown and filter on every call, next
to no sampling), and the default 512 KiB. Prints the median ratio of process CPU time
(time.process_time(), all threads) to the heap-off slice of the same round: the first is the
fast path's cost, the difference between the two is sampling's (stack capture, tables, reports).
No daemon is needed (the agent keeps retrying its socket quietly).
"""
import gc
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import workloads  # noqa: E402


def main(argv):
    args = [a for a in argv if not a.startswith("--extra-path")]
    for i, a in enumerate(argv):
        if a == "--extra-path" and i + 1 < len(argv):
            sys.path.append(argv[i + 1])
            args.remove(argv[i + 1])
    import heapwatch

    w = args[0]
    rounds = int(args[1]) if len(args) > 1 else 21
    sock = args[2] if len(args) > 2 else "/nonexistent/heapwatch.sock"
    settings = [("heap off", 0), ("sample_bytes 1 GiB", 1 << 30), ("default 512 KiB", None)]
    run = workloads.WORKLOADS[w](0.2)
    run()
    cpu = {name: [] for name, _ in settings}
    for r in range(rounds):
        for name, sb in settings[r % 3:] + settings[:r % 3]:
            kw = {"socket": sock, "interval": 1.0}
            if sb is not None:
                kw["sample_bytes"] = sb
            heapwatch.start(**kw)
            gc.collect()
            c0 = time.process_time()
            run()
            cpu[name].append(time.process_time() - c0)
            heapwatch.stop()
    for name, _ in settings[1:]:
        ratios = sorted(a / b for a, b in zip(cpu[name], cpu["heap off"]))
        print("%s: %s, CPU time ratio to heap off, median of %d rounds: x%.3f"
              % (w, name, rounds, ratios[len(ratios) // 2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
