#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Load and soak benchmark (docs/performance.md, "Load and soak"): a real heapwatchd from this
build tree (durable history in a temp dir), bench/hwload simulating N agents on the real
protocol at 1 Hz (one forked process each, heap reports in every sample, every tenth agent
leaking), and meanwhile two HTTP clients asking /metrics every 5 seconds and /api/v1/leaks four
times a second (one keep-alive connection each) and timing every answer.

Reports: the daemon's CPU share (utime+stime from /proc over the warm part), its RSS before the
load, once warm, in the middle and at the end, the least-squares RSS slope over the warm part
and the growth of the last third over the middle third; frames sent by the agents against
frames the daemon counted (lost = the difference, once the daemon has read everything), frames
rejected, connections refused; latency percentiles of both endpoints; the machine's load
average (other jobs share the cores).

"Warm" means the per-process history rings are full (--history-points samples; the daemon's
default keeps 3600, one hour, so a short run would only watch them fill) and every agent is
connected. Leak detection runs time-scaled (--detect-scale: every duration divided, every
per-hour threshold multiplied, as in tests/scenarios) so leaking agents are found within the
run and /api/v1/leaks has findings to serve; --detect-scale 1 runs the production defaults.

tests/e2e/test_soak.py imports this module for the short soak in `make check`.

    bench/load_bench.py --builddir BUILD [--agents 1000] [--seconds 600] [--json out.json]
"""
import argparse
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Production detector defaults (docs/detection.md), scaled by --detect-scale.
PROD_WINDOW = 60.0
PROD_MIN_HORIZON = 30 * 60.0
PROD_MAX_HORIZON = 7 * 24 * 3600.0
PROD_MIN_GROWTH_PER_HOUR = 0.005
PROD_MIN_BYTES_PER_HOUR = 1024 * 1024.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def metric_values(text):
    """{'name{labels}': value} of a Prometheus exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def slope(points):
    """Least-squares slope of [(t, y)], y units per t unit (0 for fewer than 2 points)."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / den if den else 0.0


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if v else None


def growth(points):
    """Memory growth over the warm part [(t, rss)]: the least-squares slope (bytes per second),
    and the median of the last third minus the median of the middle third (bytes)."""
    third = len(points) // 3
    mid = [y for _, y in points[third:2 * third]]
    last = [y for _, y in points[2 * third:]]
    return {
        "slope_bytes_per_second": slope(points),
        "last_third_minus_middle_third_bytes": (median(last) - median(mid)) if mid and last else 0,
    }


class Daemon:
    def __init__(self, builddir, tmp, agents, history_points, detect_scale, nofile=None, extra=()):
        self.tmp = tmp
        self.socket_path = os.path.join(tmp, "agent.sock")
        self.port = free_port()
        self.log_path = os.path.join(tmp, "heapwatchd.log")
        config = os.path.join(tmp, "heapwatchd.conf")
        open(config, "w").close()
        args = [os.path.join(builddir, "heapwatchd"), "--config", config, "--socket", self.socket_path,
                "--http", "127.0.0.1:%d" % self.port, "--state-dir", os.path.join(tmp, "state"),
                "--max-connections", str(agents + 64), "--max-processes", str(agents + 64),
                "--history-points", str(history_points), "--log-level", "notice"]
        if detect_scale != 1:
            s = float(detect_scale)
            args += ["--detect-window", "%g" % (PROD_WINDOW / s),
                     "--detect-min-horizon", "%g" % (PROD_MIN_HORIZON / s),
                     "--detect-max-horizon", "%g" % (PROD_MAX_HORIZON / s),
                     "--detect-min-growth-per-hour", "%g" % (PROD_MIN_GROWTH_PER_HOUR * s),
                     "--detect-min-bytes-per-hour", "%d" % (PROD_MIN_BYTES_PER_HOUR * s)]
        args += list(extra)
        self.log = open(self.log_path, "wb")

        def limit_files():
            if nofile:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=limit_files)
        self.pid = self.proc.pid
        end = time.monotonic() + 30
        while True:
            try:
                if self.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("heapwatchd did not start; see %s" % self.log_path)
            time.sleep(0.05)

    def get(self, path, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def metrics(self):
        return metric_values(self.get("/metrics")[1].decode())

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns the exit status (0: clean)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode


class Prober(threading.Thread):
    """Asks one endpoint every `period` seconds (at once when an answer took longer) on a
    keep-alive connection and keeps every latency (request sent to body read; Python's client
    adds ~0.1 ms)."""

    def __init__(self, port, path, period):
        super().__init__(daemon=True)
        self.port, self.path, self.period = port, path, period
        self.latencies = []
        self.errors = 0
        self.bytes_max = 0
        self.stopping = threading.Event()

    def run(self):
        conn = None
        next_t = time.monotonic()
        while not self.stopping.is_set():
            next_t = max(next_t + self.period, time.monotonic())
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                t0 = time.perf_counter()
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = r.read()
                dt = time.perf_counter() - t0
                if r.status == 200:
                    self.latencies.append(dt)
                    self.bytes_max = max(self.bytes_max, len(body))
                else:
                    self.errors += 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if conn:
                    conn.close()
                conn = None
            self.stopping.wait(max(0.0, next_t - time.monotonic()))
        if conn:
            conn.close()

    def summary(self):
        v = sorted(self.latencies)
        ms = lambda x: None if x is None else round(1000 * x, 3)
        return {"requests": len(v), "errors": self.errors, "body_bytes_max": self.bytes_max,
                "p50_ms": ms(percentile(v, 50)), "p90_ms": ms(percentile(v, 90)),
                "p99_ms": ms(percentile(v, 99)), "max_ms": ms(v[-1] if v else None)}


FRAME_KEYS = {t: 'heapwatch_daemon_frames_received_total{type="%s"}' % t for t in ("hello", "sample", "goodbye")}


def run(builddir, agents=1000, seconds=600.0, interval=1.0, warmup=None, history_points=120, detect_scale=12,
        leak_every=10, sites=16, metrics_period=5.0, leaks_period=0.25, rss_period=2.0, nofile=None, daemon_args=(), keep=False,
        progress=None):
    """One load run; returns the results dict (see the module docstring). The warm part starts
    `warmup` seconds after the load did (default: the history rings' fill time plus one
    interval), so `seconds` must be longer."""
    if warmup is None:
        warmup = history_points * interval + 2 * interval
    if seconds <= warmup + 10 * rss_period:
        raise ValueError("--seconds must exceed the warm-up (%.0f s) by at least %.0f s" % (warmup, 10 * rss_period))
    say = progress or (lambda *a: None)
    tmp = tempfile.mkdtemp(prefix="hw-load-")
    d = gen = None
    probes = []
    try:
        d = Daemon(builddir, tmp, agents, history_points, detect_scale, nofile, daemon_args)
        rss_idle = proc_rss_bytes(d.pid)
        load0 = os.getloadavg()
        gen = subprocess.Popen([os.path.join(builddir, "bench", "hwload"), "--socket", d.socket_path,
                                "--agents", str(agents), "--seconds", str(seconds), "--interval", str(interval),
                                "--leak-every", str(leak_every), "--sites", str(sites)],
                               stdout=subprocess.PIPE, universal_newlines=True, start_new_session=True)
        t0 = time.monotonic()
        probes = [Prober(d.port, "/metrics", metrics_period), Prober(d.port, "/api/v1/leaks?state=all", leaks_period)]
        for p in probes:
            p.start()
        samples = []  # (seconds since the load started, rss bytes, cpu seconds)
        next_t = t0
        last_say = t0
        # The agents stop sending `seconds` after their start; sample until then.
        while time.monotonic() - t0 < seconds and gen.poll() is None and d.alive():
            now = time.monotonic()
            samples.append((now - t0, proc_rss_bytes(d.pid), proc_cpu_seconds(d.pid)))
            if now - last_say >= 30:
                say("%4.0f s: daemon RSS %.1f MiB, CPU %.1f s" % (now - t0, samples[-1][1] / 2**20, samples[-1][2]))
                last_say = now
            next_t += rss_period
            time.sleep(max(0.0, next_t - time.monotonic()))
        for p in probes:
            p.stopping.set()
        for p in probes:
            p.join()
        load1 = os.getloadavg()
        out, _ = gen.communicate(timeout=120)
        gen_rc = gen.returncode
        sent = json.loads(out) if out.strip() else {}
        # Lost frames: wait (bounded) until the daemon has read what the agents sent.
        received = {}
        end = time.monotonic() + 60
        while d.alive():
            m = d.metrics()
            received = {t: int(m.get(k, 0)) for t, k in FRAME_KEYS.items()}
            if (received["sample"] >= sent.get("samples", 0) and received["hello"] >= sent.get("hellos", 0) and
                    received["goodbye"] >= sent.get("goodbyes", 0)) or time.monotonic() > end:
                break
            time.sleep(0.2)
        m = d.metrics() if d.alive() else {}
        alive = d.alive()
        exit_status = d.stop()
        warm = [(t, rss) for t, rss, _ in samples if t >= warmup]
        warm_cpu = [(t, cpu) for t, _, cpu in samples if t >= warmup]
        mid = warm[len(warm) // 2] if warm else (None, None)
        result = {
            "agents": agents, "seconds": seconds, "interval": interval, "warmup_seconds": warmup,
            "history_points": history_points, "detect_scale": detect_scale, "leak_every": leak_every,
            "heap_sites": sites, "daemon_args": list(daemon_args), "metrics_period": metrics_period, "leaks_period": leaks_period, "nofile": nofile,
            "loadavg_start": load0, "loadavg_end": load1, "cpus": os.cpu_count(),
            "daemon_alive": alive, "daemon_exit_status": exit_status,
            "generator": sent, "generator_rc": gen_rc,
            "frames_sent": {"hello": sent.get("hellos", 0), "sample": sent.get("samples", 0),
                            "goodbye": sent.get("goodbyes", 0)},
            "frames_received": received,
            "frames_lost": sum(max(0, sent.get(k + "s", 0) - received.get(k, 0)) for k in ("hello", "sample", "goodbye")),
            "frames_rejected": sum(v for k, v in m.items() if k.startswith("heapwatch_daemon_frames_rejected_total")),
            "connections_refused": m.get("heapwatch_daemon_connections_refused_total"),
            "leak_findings_opened": m.get("heapwatch_daemon_leak_findings_opened_total"),
            "store_flush_transaction_max_seconds": m.get("heapwatch_store_flush_transaction_seconds_max"),
            "rss_idle_bytes": rss_idle,
            "rss_warm_bytes": warm[0][1] if warm else None,
            "rss_middle_bytes": mid[1],
            "rss_end_bytes": warm[-1][1] if warm else None,
            "rss_max_bytes": max(r for _, r in warm) if warm else None,
            "growth": growth(warm),
            "rss_samples": [(round(t, 1), r) for t, r, _ in samples],
            "cpu_share_warm": ((warm_cpu[-1][1] - warm_cpu[0][1]) / (warm_cpu[-1][0] - warm_cpu[0][0])
                               if len(warm_cpu) > 1 else None),
            "cpu_seconds_total": samples[-1][2] if samples else None,
            "metrics": probes[0].summary(),
            "leaks": probes[1].summary(),
        }
        return result
    finally:
        for p in probes:
            p.stopping.set()
        if gen and gen.poll() is None:
            os.killpg(gen.pid, signal.SIGKILL)
            gen.wait()
        if d:
            d.stop()
        if keep:
            print("kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(r):
    mib = lambda b: "%.1f MiB" % (b / 2**20) if b is not None else "n/a"
    g = r["growth"]
    lines = [
        "%d agents at %g s for %.0f s (warm after %.0f s; history %d points; detection x%g; loadavg %.1f -> %.1f on %d CPUs)"
        % (r["agents"], r["interval"], r["seconds"], r["warmup_seconds"], r["history_points"], r["detect_scale"],
           r["loadavg_start"][0], r["loadavg_end"][0], r["cpus"]),
        "daemon CPU (warm part): %.1f %% of one core" % (100 * r["cpu_share_warm"]) if r["cpu_share_warm"] is not None
        else "daemon CPU: n/a",
        "daemon RSS: idle %s, warm %s, middle %s, end %s, max %s" % (
            mib(r["rss_idle_bytes"]), mib(r["rss_warm_bytes"]), mib(r["rss_middle_bytes"]), mib(r["rss_end_bytes"]),
            mib(r["rss_max_bytes"])),
        "RSS growth once warm: slope %.1f KiB/min, last third - middle third %+.1f KiB" % (
            g["slope_bytes_per_second"] * 60 / 1024, g["last_third_minus_middle_third_bytes"] / 1024),
        "frames sent %s, received %s, lost %d, rejected %d, connections refused %s, findings opened %s" % (
            r["frames_sent"], r["frames_received"], r["frames_lost"], r["frames_rejected"], r["connections_refused"],
            r["leak_findings_opened"]),
        "agents late by more than one interval: %s samples (max %.3f s)" % (
            r["generator"].get("late"), r["generator"].get("late_max_seconds", 0)),
    ]
    for name in ("metrics", "leaks"):
        s = r[name]
        lines.append("%-8s %6d requests, %d errors, body <= %d B: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms" % (
            name, s["requests"], s["errors"], s["body_bytes_max"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, help="seconds before the warm part (default: history fill + 2 intervals)")
    ap.add_argument("--history-points", type=int, default=120)
    ap.add_argument("--detect-scale", type=float, default=12)
    ap.add_argument("--leak-every", type=int, default=10)
    ap.add_argument("--sites", type=int, default=16)
    ap.add_argument("--metrics-period", type=float, default=5.0,
                    help="seconds between /metrics requests (Prometheus scrapes every 15-60 s; 3.5 MB at 1000 processes)")
    ap.add_argument("--leaks-period", type=float, default=0.25, help="seconds between /api/v1/leaks requests")
    ap.add_argument("--nofile", type=int, help="the daemon's soft RLIMIT_NOFILE (systemd's default is 1024)")
    ap.add_argument("--daemon-arg", action="append", default=[], help="one more heapwatchd argument (repeat)")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (daemon log, database)")
    a = ap.parse_args()
    r = run(a.builddir, a.agents, a.seconds, a.interval, a.warmup, a.history_points, a.detect_scale, a.leak_every,
            a.sites, a.metrics_period, a.leaks_period, nofile=a.nofile, daemon_args=a.daemon_arg, keep=a.keep, progress=lambda s: print(s, file=sys.stderr))
    print(report(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    ok = r["daemon_alive"] and r["frames_lost"] == 0 and r["generator_rc"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
