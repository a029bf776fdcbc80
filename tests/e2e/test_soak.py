#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The short soak (issue 7 item 7), part of `make check`: a real heapwatchd from this build tree
under bench/hwload (SOAK_AGENTS simulated agents on the real protocol at 1 Hz, heap reports in
every sample, every tenth agent leaking, /metrics and /api/v1/leaks asked meanwhile) for about
a minute and a half, through bench/load_bench.py (the 10-minute `make bench-load` is the same
run, longer and larger). It fails if the daemon dies or does not exit cleanly, if a frame the
agents sent is lost or rejected, or if the daemon's memory keeps growing once warm.

"Warm": after SOAK_WARMUP seconds every agent is connected, the per-process history rings
(--history-points SOAK_HISTORY) are full, the detectors' floor arrays (time-scaled detection:
one 5-s window) have their first allocation, and the store has flushed and rolled its first
buckets. What is left must be flat. RSS is read every second over the SOAK_SECONDS-long warm
part; two checks, both in bytes, never in time:
  - the least-squares slope, times the warm part's length, stays under GROWTH_BOUND;
  - the median RSS of the last third exceeds the median of the middle third by less than
    GROWTH_BOUND.
GROWTH_BOUND (2 MiB over the minute at 300 samples a second) is what 18,000 samples would
leave behind at ~116 bytes each: a leak of one small allocation per sample fails it; malloc's
own settling (a few hundred KiB once warm, measured: docs/performance.md "Load and soak")
stays well under it.

Under ASan+UBSan the growth checks are skipped: ASan holds freed memory in its quarantine (up
to 256 MiB) and adds redzones, so RSS climbs for reasons that are not the daemon's (measured:
189 to 337 MiB within the 30 s measured, 100 agents). The run
itself still happens there, smaller, and still fails on a crash, a sanitizer report (the
daemon's exit status on SIGTERM), a lost or rejected frame.
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(HERE, "..", ".."))
TOP_BUILDDIR = os.environ.get("top_builddir") or TOP_SRCDIR
SANITIZERS = os.environ.get("HW_SANITIZERS", "no") == "yes"
TSAN = os.environ.get("HW_SANITIZERS", "no") == "thread"
sys.path.insert(0, os.path.join(TOP_SRCDIR, "bench"))
import load_bench  # noqa: E402

SOAK_AGENTS = int(os.environ.get("HW_SOAK_AGENTS", "100" if SANITIZERS else "300"))
SOAK_HISTORY = 20
SOAK_WARMUP = 30.0
SOAK_SECONDS = float(os.environ.get("HW_SOAK_SECONDS", "30" if SANITIZERS else "60"))
GROWTH_BOUND = 2 * 1024 * 1024


class SoakTest(unittest.TestCase):
    def test_soak(self):
        r = load_bench.run(TOP_BUILDDIR, agents=SOAK_AGENTS, seconds=SOAK_WARMUP + SOAK_SECONDS,
                           warmup=SOAK_WARMUP, history_points=SOAK_HISTORY, rss_period=1.0,
                           progress=lambda s: print("soak: " + s, flush=True))
        print(load_bench.report(r), flush=True)
        self.assertTrue(r["daemon_alive"], "heapwatchd died under load")
        self.assertEqual(r["daemon_exit_status"], 0, "heapwatchd did not exit cleanly on SIGTERM "
                         "(a sanitizer report?)")
        self.assertEqual(r["generator_rc"], 0, "the load generator failed: %s" % r["generator"])
        self.assertEqual(r["generator"]["connected"], SOAK_AGENTS)
        self.assertEqual(r["frames_lost"], 0, "frames lost: sent %s, received %s" % (
            r["frames_sent"], r["frames_received"]))
        self.assertEqual(r["frames_rejected"], 0)
        self.assertEqual(r["connections_refused"], 0)
        self.assertGreater(r["metrics"]["requests"], 0)
        self.assertGreater(r["leaks"]["requests"], 0)
        self.assertEqual(r["metrics"]["errors"] + r["leaks"]["errors"], 0)
        if SANITIZERS:
            print("soak: growth checks skipped under ASan (its quarantine and redzones grow RSS)")
            return
        if TSAN:
            # TSAN_OPTIONS=profile_memory=FILE on one run (docs/testing.md): of the daemon's
            # +5 MB in the warm minute, 4 MB were TSan's shadow (4 bytes per byte of heap address
            # range touched; its allocator spreads over more of it) and 1 MB its heap.
            print("soak: growth checks skipped under TSan (its shadow memory grows RSS 4x with "
                  "the heap's address range)")
            return
        g = r["growth"]
        warm_seconds = SOAK_SECONDS
        self.assertLess(g["slope_bytes_per_second"] * warm_seconds, GROWTH_BOUND,
                        "RSS keeps growing once warm: %.0f KiB/min" % (g["slope_bytes_per_second"] * 60 / 1024))
        self.assertLess(g["last_third_minus_middle_third_bytes"], GROWTH_BOUND,
                        "RSS of the last third %.0f KiB above the middle third" % (
                            g["last_third_minus_middle_third_bytes"] / 1024))


if __name__ == "__main__":
    if not os.path.exists(os.path.join(TOP_BUILDDIR, "bench", "hwload")):
        print("soak: SKIP: bench/hwload not built (make check builds it)")
        sys.exit(77)
    unittest.main(verbosity=2)
