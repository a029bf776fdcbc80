#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Many copies of one scenario program side by side: the reproducer for what a scenario does
only now and then (a false alarm or a missing chain seen once in CI).

One heapwatchd with the suite's accelerated detection (test_scenarios.DETECT_ARGS), COPIES
copies of PROGRAM (tests/scenarios/programs/PROGRAM.py) under the agent, optionally BURN busy
loops beside them (a loaded CI machine), for SECONDS. Then, per copy: whether a finding opened
and when (test seconds since the process started), on which signal, and the referrer chains of
its evidence; and every copy's rss_bytes and python_allocated_blocks series saved into OUTDIR
as PROGRAM<i>.<metric>.json, to replay offline with the same detector:

    heapwatch analyze --window 0.5 --min-horizon 15 --max-horizon 5040 \\
        --min-growth-per-hour 0.6 --min-bytes-per-hour 125829120 --trace OUTDIR/PROGRAM3.rss_bytes.json

Not part of `make check` (it judges nothing): a tool for tuning. Run from the build directory,
with the agent built for the target interpreter (tests/e2e/build-agent.sh):

    HW_TARGET_PYTHON=/usr/bin/python3 HW_AGENT_DIR=/tmp/agent top_builddir=$PWD \\
        python3 ../tests/scenarios/stress.py batch_sawtooth 6 /tmp/stress 90 --burn 2

Measured with it (2026-12-02): batch_sawtooth's RSS alarmed in 1 of 14 copies before the
few-steps rule applied to every horizon (docs/detection.md step 6); leak_dict_cache had no
chain in 6 of 6 copies before the daemon asked for the largest containers when no tracked type
grows, and had it in 6 of 6 after.
(2026-12-04) batch_sawtooth alarmed in 2 of 20 copies beside two busy loops (--burn 2) while the
few steps were counted as separate rises, in 0 of 20 once counted as a high-water mark's.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from hwtest import Daemon, Target, TmpDir, wait_for  # noqa: E402
from test_scenarios import DETECT_ARGS, INTERVAL, PROGRAMS, RSS, BLOCKS  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("program", help="a program of tests/scenarios/programs, without .py")
    ap.add_argument("copies", type=int, help="how many copies run at once (1-32)")
    ap.add_argument("outdir", help="where the series go")
    ap.add_argument("seconds", type=float, help="how long they run (test seconds, 1-600)")
    ap.add_argument("--burn", type=int, default=0, help="busy loops beside them (0-16)")
    a = ap.parse_args()
    if not os.path.isfile(os.path.join(PROGRAMS, a.program + ".py")):
        ap.error("no program %s in %s" % (a.program, PROGRAMS))
    if not 1 <= a.copies <= 32 or not 1 <= a.seconds <= 600 or not 0 <= a.burn <= 16:
        ap.error("copies 1-32, seconds 1-600, --burn 0-16")
    os.makedirs(a.outdir, exist_ok=True)

    with TmpDir() as tmp:
        daemon = Daemon(tmp, extra_args=DETECT_ARGS).start()
        burners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(a.burn)]
        targets = []
        try:
            targets = [Target(tmp, a.program + ".py", args=[str(a.seconds + 60)], service="%s%d" % (a.program, i),
                              interval=INTERVAL, socket_path=daemon.socket_path, programs_dir=PROGRAMS)
                       for i in range(a.copies)]
            procs = [wait_for(lambda t=t: daemon.find_process(t.pid), timeout=30, what="copy %d in the daemon" % i)
                     for i, t in enumerate(targets)]
            time.sleep(a.seconds)
            status, leaks = daemon.get_json("/api/v1/leaks?state=all")
            assert status == 200, leaks
            for i, p in enumerate(procs):
                for metric in (RSS, BLOCKS):
                    status, series = daemon.get_json("/api/v1/processes/%s/series?metric=%s" % (p["id"], metric))
                    with open(os.path.join(a.outdir, "%s%d.%s.json" % (a.program, i, metric)), "w") as f:
                        json.dump(series, f)
                found = [f for f in leaks["leaks"] if f["process_id"] == p["id"]]
                print("%s%d: %s" % (a.program, i, "; ".join(
                    "%s %s on %s at %.1f s, chains %s" % (
                        f["state"], f["verdict"], f["signal"], f["opened_at"] - p["started_at"],
                        [c.get("chain") for c in (f.get("evidence") or {}).get("chains", [])])
                    for f in found) or "no finding"))
        finally:
            for b in burners:
                b.kill()
            for t in targets:
                t.kill()
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
