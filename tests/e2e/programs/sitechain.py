# SPDX-License-Identifier: MIT
"""What the interpreter looks like to the program once the agent's bootstrap (sitecustomize,
put first on PYTHONPATH by `heapwatch run`) has run: the modules already imported when the
program starts, which sitecustomize module is in sys.modules, whether an application's own
sitecustomize (APP_SITE_MARK set by it) ran, and whether the agent runs. Commands: exit."""
import sys

modules_at_start = sorted(sys.modules)  # first, before this program imports anything

import time  # noqa: E402

import hwprog  # noqa: E402

state = sys.argv[1]
heapwatch = sys.modules.get("heapwatch")
site = sys.modules.get("sitecustomize")
hwprog.write_state(state, phase="ready", modules=modules_at_start,
                   sitecustomize=getattr(site, "__file__", None),
                   app_site_ran=getattr(sys, "APP_SITE_MARK", False),
                   agent_running=bool(heapwatch and heapwatch.is_running()),
                   sys_path=sys.path)
while hwprog.take_command(state) != "exit":
    time.sleep(0.02)
