# SPDX-License-Identifier: MIT
"""NOT A LEAK: an idle service.

Its working set is loaded and then nothing happens but a heartbeat (twice a second).
"""
import scenario

svc = scenario.Service("idle")
STATE = scenario.working_set()
beats = 0


def step(t):
    global beats
    beats += 1
    svc.figures["heartbeats"] = beats


svc.run(step, period=0.5)
