# SPDX-License-Identifier: MIT
"""heapwatch autoload: `HEAPWATCH=1 python app.py` loads the agent with no code change.

Installed beside the heapwatch module in the interpreter's site-packages together with
heapwatch-autoload.pth, a one-line file that `site` runs at every start of this interpreter:
it imports this module only when HEAPWATCH=1 is set, so the cost when unset is one dictionary
lookup (measured in docs/operations.md). The agent takes its settings from the environment
(HEAPWATCH_SERVICE, HEAPWATCH_SOCKET, HEAPWATCH_INTERVAL, HEAPWATCH_SAMPLE_BYTES) and never
raises into the program: a failure is one line on stderr. Workers forked by a pre-fork server
keep the agent (it is fork-safe); children started with spawn inherit HEAPWATCH=1 and load it
themselves.
"""
import sys

try:
    import heapwatch

    heapwatch._autostart()
except Exception as e:  # the host program runs on, whatever happened here
    try:
        sys.stderr.write("heapwatch: agent not loaded: %s\n" % (e,))
    except Exception:
        pass
