#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fault end-to-end tests (docs/testing.md, "Fault tolerance"): a real heapwatchd, real
interpreters with the agent, raw protocol clients. The daemon frozen by SIGSTOP for 30 s while a
tight host loop runs (its longest gap and its memory growth are printed and bounded; after SIGCONT
every sample the agent took either arrives or is counted as dropped); the agent socket replaced
by a regular file; an agent killed in the middle of a frame; wall-clock steps in sample
timestamps.

Faults covered elsewhere, not repeated here: daemon absent at agent start
(test_e2e.py test_daemon_absent_at_start), daemon killed -9 and restarted under a host loop
(test_e2e.py test_daemon_restart_never_disturbs_the_host; with stored history and three agents:
test_store.py test_kill9_restart_keeps_flushed_history_and_ids), state directory read-only or
full (test_store.py test_readonly_state_dir_serves_from_memory_and_resumes,
test_full_state_dir_serves_from_memory_and_resumes), garbage on the agent socket
(test_e2e.py test_garbage_never_disturbs_the_daemon)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hwtest import DaemonTestCase, find_binary, wait_for, DEADLINE, SANITIZERS  # noqa: E402
from test_e2e import frame  # noqa: E402

HELLO, SAMPLE = 1, 2
# How long the daemon stays frozen (the figure); HW_FAULT_STOP_SECONDS shortens it by hand.
STOP_SECONDS = float(os.environ.get("HW_FAULT_STOP_SECONDS", "30"))
# Generous bounds: an agent that blocked on the frozen daemon would stall the host for the whole
# stop (30 s), one that queued without limit would grow by every sample; these are not
# performance claims (docs/performance.md has the measured figures). The gap bound leaves room for
# the test machine's own scheduling: with the daemon running normally and 2 cores at load 11, the
# same loop once showed a 1.1 s gap (HW_FAULT_CONTROL=1 measures that control).
MAX_HOST_GAP = 5.0
MAX_HOST_RSS_GROWTH = 16 * 1024 * 1024


def hello(service, pid=None):
    return {"protocol": 1, "agent_version": "fault-test", "pid": pid or os.getpid(), "service": service,
            "hostname": "h", "interval": 1.0}


def sample(seq, t, rss=50 * 1024 * 1024):
    return {"seq": seq, "time": t, "process": {"rss_bytes": rss, "rss_peak_bytes": rss}}


def rss_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Faults(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.children = []

    def tearDown(self):
        for c in self.children:
            if c.poll() is None:
                c.kill()
                c.wait()
        if self.daemon.proc and self.daemon.proc.poll() is None:
            self.daemon.proc.send_signal(signal.SIGCONT)  # a failed test may leave it stopped
        super().tearDown()

    def detail(self, pid):
        p = self.wait_process(pid)
        status, doc = self.daemon.get_json("/api/v1/processes/" + p["id"])
        self.assertEqual(status, 200, doc)
        return doc

    # ------------------------------------------------------------------------------------

    def test_sigstop_30s_host_unaffected_and_samples_accounted(self):
        # A fast interval so the agent's queue (64 frames / 512 KiB) and the socket buffer fill
        # well within the stop.
        t = self.start_target("tightloop.py", interval="0.05")
        self.wait_process(t.pid, lambda p: p["samples"] >= 20, "the agent to report")
        t.wait_state(lambda s: s["iterations"] > 0, "the host loop")
        if os.environ.get("HW_FAULT_CONTROL") == "1":
            # For docs/performance.md: the same loop for the same time with the daemon running, so
            # the machine's own scheduling noise can be told from the agent's.
            t.command("reset")
            t.wait_state(lambda s: s["max_gap"] < 0.5, "the host loop's gap counter to reset")
            start = time.monotonic()
            while time.monotonic() - start < STOP_SECONDS:
                time.sleep(0.1)
            st = t.state()
            sys.stderr.write("control, daemon running %.0f s: host loop %d iterations, longest gap %.2f ms\n"
                             % (STOP_SECONDS, st["iterations"], st["max_gap"] * 1000))
        t.command("reset")
        t.wait_state(lambda s: s["max_gap"] < 0.5, "the host loop's gap counter to reset")
        rss_before = rss_of(t.pid)

        self.daemon.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        rss_max = rss_before
        # The measurement period: the host's RSS is read every 100 ms while the daemon is frozen.
        while time.monotonic() - stopped_at < STOP_SECONDS:
            self.assertIsNone(t.proc.poll(), "the host program died while the daemon was stopped")
            rss_max = max(rss_max, rss_of(t.pid))
            time.sleep(0.1)
        st = t.state()
        self.daemon.proc.send_signal(signal.SIGCONT)

        gap = st["max_gap"]
        growth = rss_max - rss_before
        sys.stderr.write("SIGSTOP %.0f s: host loop %d iterations, longest gap %.2f ms; host RSS %.1f MiB before, "
                         "max %.1f MiB while stopped (growth %+.2f MiB)\n"
                         % (STOP_SECONDS, st["iterations"], gap * 1000, rss_before / 2**20, rss_max / 2**20,
                            growth / 2**20))
        self.assertLess(gap, MAX_HOST_GAP, "the host loop was blocked while the daemon was stopped")
        if SANITIZERS:
            # libasan preloaded into the host keeps freed memory in its quarantine (up to 256 MiB),
            # so RSS says nothing about the agent's queue here; the default build checks it.
            sys.stderr.write("RSS bound not checked: sanitizer build (ASan quarantine)\n")
        else:
            self.assertLess(growth, MAX_HOST_RSS_GROWTH, "the agent's memory grew without bound")

        # After SIGCONT the agent catches up; what did not fit its queue is counted as dropped and
        # reported to the daemon, so taken == received + dropped (give or take frames in flight).
        last = {}

        def accounted():
            received = self.wait_process(t.pid)["samples"]
            latest = self.detail(t.pid).get("latest_sample") or {}
            dropped = latest.get("agent", {}).get("samples_dropped_total", 0)
            seq = latest.get("seq", 0)
            last.update(seq=seq, received=received, dropped=dropped)
            if dropped > 0 and seq - (received + dropped) <= 2:
                return seq, received, dropped
            return None
        try:
            seq, received, dropped = wait_for(accounted, what="received + dropped to account for every sample taken")
        except AssertionError as e:
            raise AssertionError("%s: last seen %r" % (e, last))
        sys.stderr.write("after SIGCONT: %d samples taken, %d received, %d dropped (counted by the agent)\n"
                         % (seq, received, dropped))
        self.assertGreaterEqual(received + dropped, seq - 2)
        self.assertIsNone(t.proc.poll())
        t.command("exit")
        self.assertEqual(t.wait(), 0)
        self.assertNotIn("Traceback", t.stderr_text())

    def test_socket_path_replaced_by_a_file(self):
        t = self.start_target("tightloop.py")
        p = self.wait_process(t.pid, lambda p: p["samples"] >= 2, "the agent to report")
        path = self.daemon.socket_path
        self.daemon.kill(signal.SIGKILL)
        os.unlink(path)
        with open(path, "w") as f:
            f.write("not a socket\n")
        # The agent keeps trying (connect() fails with ECONNREFUSED) and the host keeps running.
        # Two seconds by the program's own clock: several connection attempts (the first backoff
        # steps are well below a second).
        before = t.wait_state(lambda s: s["iterations"] > 0, "progress")
        t.wait_state(lambda s: s["iterations"] > before["iterations"] and s["time"] > before["time"] + 2.0,
                     "2 s of progress with a file as the socket")
        self.assertIsNone(t.proc.poll(), "the host died with a regular file at the socket path")
        # The daemon refuses to replace a file it did not create...
        d = subprocess.run([find_binary("heapwatchd", "daemon/heapwatchd"), "--config", self.daemon.config_path,
                            "--socket", path, "--no-http", "--no-store"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=DEADLINE)
        self.assertNotEqual(d.returncode, 0)
        self.assertIn("not a socket", d.stdout)
        # ...so the operator removes it; the real socket comes back and the agent reconnects into
        # the same record.
        os.unlink(path)
        self.restart_daemon()
        p2 = self.wait_process(t.pid, lambda q: q["state"] == "live" and q["samples"] >= 1, "the agent to reconnect")
        self.assertEqual(p2["id"], p["id"])
        wait_for(lambda: (self.detail(t.pid).get("latest_sample") or {}).get("agent", {}).get("reconnects_total", 0) >= 1,
                 what="a sample sent over the new connection")
        self.assertEqual(t.stderr_text(), "", "the agent must stay silent")
        t.command("exit")
        self.assertEqual(t.wait(), 0)

    def test_agent_killed_mid_frame(self):
        other = self.start_target("steady.py")
        p = self.wait_process(other.pid, lambda q: q["samples"] >= 2, "the other agent to report")
        # A separate process (its own pid, so its own record) sends HELLO, one good SAMPLE and half
        # of the next frame, says so, and is killed with SIGKILL mid-frame.
        # The HELLO must claim the child's own pid (a forged claim is refused): the child frames it.
        half = frame(SAMPLE, sample(2, time.time() + 1))
        code = (
            "import json, os, socket, struct, sys, time\n"
            "h = json.loads(sys.argv[3]); h['pid'] = os.getpid(); h = json.dumps(h).encode()\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "s.connect(sys.argv[1])\n"
            "s.sendall(b'HWP\\0' + bytes([1, %d, 0, 0]) + struct.pack('>I', len(h)) + h + bytes.fromhex(sys.argv[2]))\n"
            "print('sent', flush=True)\n"
            "time.sleep(600)\n" % HELLO)
        data = frame(SAMPLE, sample(1, time.time())) + half[:len(half) // 2]
        child = subprocess.Popen([sys.executable, "-c", code, self.daemon.socket_path, data.hex(),
                                  json.dumps(hello("midframe"))],
                                 stdout=subprocess.PIPE, universal_newlines=True)
        self.children.append(child)
        self.assertEqual(child.stdout.readline().strip(), "sent")
        dead = self.wait_process(child.pid, lambda q: q["samples"] >= 1, "the half-frame client's first sample")
        child.kill()
        child.wait()
        dead = self.wait_process(child.pid, lambda q: q["state"] == "exited", "the killed client to be marked exited")
        self.assertEqual(dead["exit_reason"], "connection_lost")
        self.assertEqual(dead["samples"], 1, "the half frame must not be stored")
        # The daemon serves on and the other agent's data is intact and still growing.
        self.assertEqual(self.daemon.get("/healthz")[0], 200)
        before = self.wait_process(other.pid)["samples"]
        p2 = self.wait_process(other.pid, lambda q: q["samples"] > before + 2, "the other agent to keep reporting")
        self.assertEqual(p2["id"], p["id"])
        self.assertEqual(p2["state"], "live")
        other.command("exit")
        self.assertEqual(other.wait(), 0)

    def test_wall_clock_steps_in_timestamps(self):
        # A real agent runs alongside: its record must not notice anything.
        other = self.start_target("steady.py")
        self.wait_process(other.pid, lambda q: q["samples"] >= 2, "the other agent to report")
        rejected = lambda: self.daemon.metric_value("heapwatch_daemon_frames_rejected_total", reason="out_of_order")
        rejected_before = rejected()
        base = time.time()
        # (seq, time, kept): a step back by an hour, then forward by 30 s (within the minute a
        # sample may be stamped ahead of the daemon's clock), then a sample at the pre-step time
        # (not newer than the history: dropped), then later than everything again.
        steps = [(1, base, True), (2, base + 1, True), (3, base - 3600, False), (4, base + 2, True),
                 (5, base + 30, True), (6, base + 3, False), (7, base + 31, True)]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.connect(self.daemon.socket_path)
        s.sendall(frame(HELLO, hello("clock")))
        for seq, t, _ in steps:
            s.sendall(frame(SAMPLE, sample(seq, t, rss=(40 + seq) * 1024 * 1024)))
        kept = [t for _, t, k in steps if k]
        me = self.wait_process(os.getpid(), lambda q: q["samples"] >= len(kept), "the clock client's samples")
        # The connection stays up: out-of-order samples are counted and dropped, not fatal.
        self.assertEqual(me["state"], "live")
        self.assertEqual(rejected() - rejected_before, len(steps) - len(kept))
        status, doc = self.daemon.get_json("/api/v1/processes/%s/series?metric=rss_bytes&from=%f&to=%f"
                                           % (me["id"], base - 7200, base + 7200))
        self.assertEqual(status, 200, doc)
        times = [pt[0] if isinstance(pt, list) else pt["t"] for pt in doc["points"]]
        self.assertEqual(len(times), len(kept), doc)
        self.assertEqual(times, sorted(times), "the series must stay ordered")
        for a, b in zip(times, kept):
            self.assertAlmostEqual(a, b, places=2)
        # Detection and the API keep working, for this process and the others.
        s.sendall(frame(SAMPLE, sample(8, base + 32)))
        self.wait_process(os.getpid(), lambda q: q["samples"] >= len(kept) + 1, "a sample after the steps")
        for path in ("/healthz", "/api/v1/leaks?state=all", "/api/v1/processes/" + me["id"], "/metrics"):
            self.assertEqual(self.daemon.get(path)[0], 200, path)
        # An hour ahead is no clock the daemon shares: refused with the connection (kept, it
        # would block every newer sample for that hour and outlive retention), the history kept.
        bad = self.daemon.metric_value("heapwatch_daemon_frames_rejected_total", reason="bad_message")
        s.sendall(frame(SAMPLE, sample(9, base + 3600)))
        wait_for(lambda: self.daemon.metric_value("heapwatch_daemon_frames_rejected_total", reason="bad_message") == bad + 1,
                 what="the sample an hour ahead refused")
        me = self.wait_process(os.getpid(), lambda q: q["state"] == "exited", "the clock client's connection closed")
        self.assertEqual(me["samples"], len(kept) + 1)
        before = self.wait_process(other.pid)["samples"]
        self.wait_process(other.pid, lambda q: q["samples"] > before + 2, "the other agent to keep reporting")
        other.command("exit")
        self.assertEqual(other.wait(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
