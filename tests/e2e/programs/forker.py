# SPDX-License-Identifier: MIT
"""A pre-fork server in miniature: the parent forks one worker, which reports its own pid
and then both hold still until told to exit."""
import os
import sys
import time

import hwprog

state = sys.argv[1]
child = os.fork()
if child == 0:
    hwprog.write_state(state + ".child", role="child")
    while hwprog.take_command(state + ".child") != "exit":
        time.sleep(0.02)
    os._exit(0)
hwprog.write_state(state, role="parent", child=child)
while hwprog.take_command(state) != "exit":
    time.sleep(0.02)
os.waitpid(child, 0)
