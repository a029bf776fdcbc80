#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What the identity checks and the frame-rate limit cost heapwatchd (docs/security.md), in
daemon CPU time read from /proc/<pid>/stat, on a real daemon from a build tree:

  1. HELLO: N connections one after another, each HELLO + one SAMPLE + close (accept, SO_PEERCRED,
     NSpid, cgroup, /proc/<pid>/stat, record attach/detach): CPU per connection.
  2. Frames over the rate: one connection sends M SAMPLEs as fast as it can with the default
     rate limit (50/s): nearly all are dropped before JSON parsing. CPU per frame.
  3. The same M frames with --max-frames-per-second 0: every one decoded and stored. CPU per frame.

  python3 bench/limits_cost.py --builddir build [--connections 5000] [--frames 500000]

Prints one JSON object. A CPU-time measure, so other load on the machine changes it little."""
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def frame(ftype, payload):
    data = json.dumps(payload).encode()
    return b"HWP\0" + bytes([1, ftype, 0, 0]) + struct.pack(">I", len(data)) + data


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


class Daemon:
    def __init__(self, builddir, tmp, args=()):
        self.sock = os.path.join(tmp, "agent-%d.sock" % len(os.listdir(tmp)))
        self.port = free_port()
        conf = os.path.join(tmp, "empty.conf")
        open(conf, "w").close()
        self.proc = subprocess.Popen([os.path.join(builddir, "heapwatchd"), "--config", conf, "--no-store",
                                      "--log-level", "warning", "--socket", self.sock,
                                      "--http", "127.0.0.1:%d" % self.port] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.port, timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("heapwatchd did not start")

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        return s

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def hello():
    return frame(1, {"protocol": 1, "pid": os.getpid(), "service": "bench", "interval": 1.0})


def sample(seq, t):
    return frame(2, {"seq": seq, "time": t, "process": {"rss_bytes": 1 << 20}})


def wait_received(d, count, name):
    end = time.monotonic() + 120
    while time.monotonic() < end and metric(d.port, name) < count:
        time.sleep(0.1)


def frames_cost(d, frames):
    """CPU per frame sent as fast as possible on one connection, until the daemon has read all."""
    s = d.connect()
    s.sendall(hello())
    t0 = time.time()
    data = b"".join(sample(i, t0 + i * 1e-3) for i in range(frames))
    before = cpu_seconds(d.proc.pid)
    bytes0 = metric(d.port, "heapwatch_daemon_received_bytes_total")
    s.sendall(data)
    wait_received(d, bytes0 + len(data), "heapwatch_daemon_received_bytes_total")
    cpu = cpu_seconds(d.proc.pid) - before
    s.close()
    return cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builddir", required=True)
    # Enough work for the 10 ms ticks of /proc/<pid>/stat to resolve it well.
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--frames", type=int, default=500000)
    a = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(a.builddir, tmp)
        before = cpu_seconds(d.proc.pid)
        for i in range(a.connections):
            s = d.connect()
            s.sendall(hello() + sample(0, time.time()))
            s.shutdown(socket.SHUT_WR)
            s.recv(4096)  # WELCOME, then EOF once the daemon is done with us
            s.close()
        out["hello_connections"] = a.connections
        out["daemon_cpu_us_per_connection"] = round(1e6 * (cpu_seconds(d.proc.pid) - before) / a.connections, 1)
        cpu = frames_cost(d, a.frames)
        out["frames"] = a.frames
        out["daemon_cpu_us_per_frame_over_the_rate"] = round(1e6 * cpu / a.frames, 3)
        d.stop()

        d = Daemon(a.builddir, tmp, ["--max-frames-per-second", "0"])
        cpu = frames_cost(d, a.frames)
        out["daemon_cpu_us_per_frame_decoded"] = round(1e6 * cpu / a.frames, 3)
        d.stop()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
