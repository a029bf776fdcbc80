# SPDX-License-Identifier: MIT
"""A target that does some GC work, then holds still (GC disabled) so its own view of
gc.get_stats() and the agent's samples must agree exactly. Commands: exit, stop, kill-self,
collect (one gc.collect then hold still again)."""
import gc
import os
import signal
import sys
import time

import hwprog

state = sys.argv[1]
junk = []
for i in range(3):
    junk.append([{} for _ in range(2000)])
    gc.collect()
gc.disable()  # hold still: nothing changes gc.get_stats() unless told to
hwprog.write_state(state, phase="steady")
while True:
    cmd = hwprog.take_command(state)
    if cmd == "exit":
        sys.exit(0)
    if cmd == "stop":
        import heapwatch
        heapwatch.stop()
        hwprog.write_state(state, phase="stopped", running=heapwatch.is_running())
    if cmd == "collect":
        gc.collect()
        hwprog.write_state(state, phase="collected")
    if cmd == "kill-self":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.02)
