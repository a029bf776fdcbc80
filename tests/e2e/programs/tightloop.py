# SPDX-License-Identifier: MIT
"""A host program that measures its own responsiveness: a tight loop that records the longest
gap between iterations, and keeps allocating a little. Reports progress; "exit" ends it."""
import sys
import time

import hwprog

state = sys.argv[1]
max_gap = 0.0
iterations = 0
last = time.monotonic()
last_report = last
keep = []
while True:
    now = time.monotonic()
    gap = now - last
    last = now
    if gap > max_gap:
        max_gap = gap
    iterations += 1
    keep.append(bytearray(64))
    if len(keep) > 10000:
        keep = []
    if now - last_report > 0.05:
        last_report = now
        hwprog.write_state(state, iterations=iterations, max_gap=max_gap)
        cmd = hwprog.take_command(state)
        if cmd == "exit":
            sys.exit(0)
        if cmd == "reset":
            max_gap = 0.0
