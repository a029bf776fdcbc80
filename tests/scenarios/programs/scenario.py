# SPDX-License-Identifier: MIT
"""Shared by the scenario programs: what every small "service" here has in common.

- `Service`: a paced main loop. Traffic is owed by the wall clock (`owed(rate)`), so a program
  starved of CPU under `make -j check` catches up instead of silently leaking slower than its
  label says. Once a second the program writes its own view of itself (RSS, pymalloc blocks,
  scenario figures) to the state file the test reads, and takes commands ("exit").
  It exits by itself when its parent goes away or after a maximum lifetime, so a crashed test
  never leaves programs behind.
- `working_set()`: the state a real service holds (a loaded table of customer records), so
  that relative growth rates mean something: ~25k records, ~175k pymalloc blocks, ~14 MB.
- `record()`: one small record (~7 pymalloc blocks, ~550 bytes), the unit most programs
  allocate, retain or drop.

Programs are started by the test as `python3 PROGRAM STATE_PATH [MAX_SECONDS]`.
"""
import json
import os
import random
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def record(i, rnd):
    """A customer/request record: a dict, two strings, a float, a tuple (~7 pymalloc blocks)."""
    return {"id": i + 100000, "name": "customer-%08d" % i, "balance": rnd.random() * 1000.0,
            "tags": ("vip" if i % 7 == 0 else "std", "region-%d" % (i % 50))}


def working_set(n=25000, seed=1):
    rnd = random.Random(seed)
    return [record(i, rnd) for i in range(n)]


class Service:
    def __init__(self, name, argv=None):
        argv = sys.argv if argv is None else argv
        self.name = name
        self.state_path = argv[1]
        self.max_seconds = float(argv[2]) if len(argv) > 2 else 300.0
        self.rnd = random.Random(name)
        self.t0 = time.monotonic()
        self.ppid = os.getppid()
        self.phase = "starting"
        self.figures = {}  # scenario-specific numbers, reported with the state
        self._served = {}
        self._next_report = 0.0
        self.responses = 0
        self.report()

    def elapsed(self):
        return time.monotonic() - self.t0

    def owed(self, key, rate):
        """How many events of kind `key` are due now at `rate` per second since the last call
        (rate may change over time: the schedule integrates it)."""
        now = self.elapsed()
        last_t, carry = self._served.get(key, (now, 0.0))
        carry += rate * (now - last_t)
        n = int(carry)
        self._served[key] = (now, carry - n)
        return n

    def respond(self, response):
        """Send a response (here: count it); the response is garbage afterwards."""
        self.responses += 1

    def report(self, **extra):
        self.figures.update(extra)
        doc = {"pid": os.getpid(), "scenario": self.name, "phase": self.phase,
               "elapsed": self.elapsed(), "time": time.time(), "rss_bytes": rss_bytes(),
               "allocated_blocks": sys.getallocatedblocks(),
               "agent_loaded": "heapwatch" in sys.modules,
               "python": "%d.%d.%d" % sys.version_info[:3]}
        doc.update(self.figures)
        tmp = "%s.%d.tmp" % (self.state_path, os.getpid())
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, self.state_path)

    def _command(self):
        path = self.state_path + ".cmd"
        try:
            with open(path) as f:
                text = f.read().strip()
            os.unlink(path)
            return text
        except OSError:
            return None

    def run(self, step, period=0.05):
        """Call step(elapsed) every `period` seconds until told to exit."""
        self.phase = "running"
        next_t = time.monotonic()
        while True:
            now = time.monotonic()
            if now - self.t0 > self.max_seconds or os.getppid() != self.ppid:
                sys.exit(3)  # the test is gone or forgot us: never outlive it
            step(now - self.t0)
            if now - self.t0 >= self._next_report:
                self._next_report = now - self.t0 + 1.0
                self.report()
                if self._command() == "exit":
                    sys.exit(0)
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:
                next_t = time.monotonic()  # far behind (stopped, starved): do not burst
