# SPDX-License-Identifier: MIT
"""A target that waits, then on command "hog" allocates memory until the OOM killer of its
memory cgroup ends it (the e2e test puts it in a small cgroup)."""
import sys
import time

import hwprog

state = sys.argv[1]
hwprog.write_state(state, phase="ready")
hog = []
while True:
    cmd = hwprog.take_command(state)
    if cmd == "hog":
        hwprog.write_state(state, phase="hogging")
        while True:
            hog.append(bytearray(1 << 20))
            for i in range(0, 1 << 20, 4096):
                hog[-1][i] = 1
    time.sleep(0.02)
