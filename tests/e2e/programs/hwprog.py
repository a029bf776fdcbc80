# SPDX-License-Identifier: MIT
"""Shared helpers for the target programs: report the program's own view of itself (what the
daemon's figures are checked against) and take commands from the test."""
import gc
import json
import os
import sys
import time


def own_view():
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    rss = int(status["VmRSS"].split()[0]) * 1024
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "time": time.time(),
        "rss_bytes": rss,
        "threads": int(status["Threads"]),
        "gc_stats": gc.get_stats(),
        "gc_count": list(gc.get_count()),
        "gc_threshold": list(gc.get_threshold()),
        "gc_enabled": gc.isenabled(),
        "gc_garbage": len(gc.garbage),
        "allocated_blocks": sys.getallocatedblocks(),
        "agent_loaded": "heapwatch" in sys.modules,
        "python": "%d.%d.%d" % sys.version_info[:3],
    }


def write_state(path, **extra):
    doc = own_view()
    doc.update(extra)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)


def take_command(path):
    cmd_path = path + ".cmd"
    try:
        with open(cmd_path) as f:
            text = f.read().strip()
        os.unlink(cmd_path)
        return text
    except OSError:
        return None
