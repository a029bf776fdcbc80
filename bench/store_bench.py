#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Durable-history benchmark (docs/performance.md, "Durable history"): a real heapwatchd from
this build tree with its database in a temp dir, bench/hwload speaking the real protocol
for N processes at 1 Hz, and meanwhile an HTTP probe that asks /healthz every 10 ms and keeps
the slowest answer (an answer waits for whatever holds the event loop: a flush, a vacuum step).
Then a second phase restarts the daemon on the same database with retentions of seconds, so
retention deletes nearly every row and incremental vacuum returns the pages, probed the same way.

Reports: samples ingested, daemon CPU per 1000 samples (utime+stime from /proc over the steady
part), the longest flush transaction and maintenance step the daemon measured itself, the
slowest /healthz answer, and from the database afterwards the bytes per row and per
process-day of each tier.

    bench/store_bench.py --builddir BUILD [--processes 500] [--seconds 240] [--json out.json]
"""
import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


from load_bench import free_port, proc_cpu_seconds as cpu_seconds  # noqa: E402 (this directory)


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Probe(threading.Thread):
    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.stop = False
        self.worst = 0.0
        self.count = 0
        self.over_10ms = 0

    def run(self):
        while not self.stop:
            t0 = time.monotonic()
            try:
                get(self.url + "/healthz", timeout=10)
            except Exception:
                pass
            dt = time.monotonic() - t0
            self.count += 1
            self.worst = max(self.worst, dt)
            self.over_10ms += dt > 0.010
            time.sleep(0.010)


def vacuum_phase(a, daemon, sock, state, tmp):
    """Restart on the same database with retentions of seconds: retention deletes nearly every
    row, and incremental vacuum returns the pages step by step while /healthz is probed."""
    size0 = os.path.getsize(os.path.join(state, "history.db"))
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "heapwatchd-vacuum.log"), "wb")
    d = subprocess.Popen([daemon, "--socket", sock, "--http", "127.0.0.1:%d" % port, "--state-dir", state,
                          "--store-tiers", "10s:10s,1m:1m,10m:10m", "--max-processes", str(a.processes + 100)],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get(url + "/healthz")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        probe = Probe(url)
        probe.start()
        # Until the file stopped shrinking for a few seconds (or two minutes).
        last, still, end = None, 0, time.monotonic() + 120
        while time.monotonic() < end and still < 5:
            time.sleep(1)
            pages = metric(get(url + "/metrics"), "heapwatch_store_vacuumed_pages_total")
            still = still + 1 if pages == last and pages else 0
            last = pages
        probe.stop = True
        probe.join()
        m = get(url + "/metrics")
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=60)
        return {
            "db_bytes_before": size0,
            "db_bytes_after": os.path.getsize(os.path.join(state, "history.db")),
            "rows_deleted": metric(m, "heapwatch_store_rows_deleted_total"),
            "pages_vacuumed": metric(m, "heapwatch_store_vacuumed_pages_total"),
            "maintenance_steps": metric(m, "heapwatch_store_maintenance_steps_total"),
            "maintenance_step_max_ms": 1000 * metric(m, "heapwatch_store_maintenance_step_seconds_max"),
            "maintenance_step_cpu_max_ms": 1000 * metric(m, "heapwatch_store_maintenance_step_cpu_seconds_max"),
            "maintenance_steps_over_5ms": metric(m, "heapwatch_store_maintenance_steps_slow_total"),
            "healthz_worst_ms": 1000 * probe.worst,
            "healthz_probes": probe.count,
            "healthz_over_10ms": probe.over_10ms,
        }
    finally:
        if d.poll() is None:
            d.kill()
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--processes", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--tiers", default="10s:2d,1m:14d,10m:180d",
                    help="the tiers of the load phase (the vacuum phase then shrinks them to seconds)")
    ap.add_argument("--json")
    ap.add_argument("--no-store", action="store_true", help="the same load on a memory-only daemon (baseline CPU)")
    a = ap.parse_args()

    daemon = os.path.join(a.builddir, "heapwatchd")
    load = os.path.join(a.builddir, "bench", "hwload")
    tmp = tempfile.mkdtemp(prefix="hw-store-bench-")
    sock = os.path.join(tmp, "agent.sock")
    state = os.path.join(tmp, "state")
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "heapwatchd.log"), "wb")
    d = subprocess.Popen([daemon, "--socket", sock, "--http", "127.0.0.1:%d" % port, "--state-dir", state,
                          "--store-tiers", a.tiers, "--max-connections", str(a.processes + 100),
                          "--max-processes", str(a.processes + 100)] + (["--no-store"] if a.no_store else []),
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get(url + "/healthz")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        probe = Probe(url)
        probe.start()
        # No heap reports and nobody leaking: the load this benchmark was first measured with.
        gen = subprocess.Popen([load, "--socket", sock, "--agents", str(a.processes), "--seconds", str(a.seconds),
                                "--interval", "1", "--sites", "0", "--leak-every", "0"], stdout=subprocess.PIPE,
                               universal_newlines=True)
        # The steady part: after every process connected, before they stop.
        time.sleep(min(15, a.seconds / 4))
        cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
        m0 = get(url + "/metrics")
        time.sleep(a.seconds - 2 * min(15, a.seconds / 4))
        cpu1, t1 = cpu_seconds(d.pid), time.monotonic()
        m1 = get(url + "/metrics")
        out, _ = gen.communicate()
        probe.stop = True
        probe.join()
        samples = json.loads(out)["samples"]
        frames = (metric(m1, 'heapwatch_daemon_frames_received_total{type="sample"}') -
                  metric(m0, 'heapwatch_daemon_frames_received_total{type="sample"}'))
        m2 = get(url + "/metrics")
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=60)

        if a.no_store:
            result = {"processes": a.processes, "seconds": a.seconds, "store": False, "samples_sent": samples,
                      "samples_in_cpu_window": frames, "daemon_cpu_seconds": cpu1 - cpu0,
                      "daemon_cpu_share": (cpu1 - cpu0) / (t1 - t0),
                      "daemon_cpu_ms_per_1000_samples": 1000 * (cpu1 - cpu0) / (frames / 1000) if frames else None,
                      "healthz_worst_ms": 1000 * probe.worst, "healthz_probes": probe.count,
                      "healthz_over_10ms": probe.over_10ms}
            print(json.dumps(result, indent=2))
            if a.json:
                with open(a.json, "w") as f:
                    json.dump(result, f, indent=2)
            return 0
        con = sqlite3.connect(os.path.join(state, "history.db"))
        tiers = con.execute("SELECT tier, count(*), avg(length(data)), count(DISTINCT proc) FROM points "
                            "GROUP BY tier ORDER BY tier").fetchall()
        try:
            btree = con.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'points'").fetchone()[0]
            payload = con.execute("SELECT sum(length(data)) FROM points").fetchone()[0]
            overhead = btree / payload
        except sqlite3.Error:
            overhead = None
        con.close()
        res = [int(s[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[s[-1]]
               for s in (t.split(":")[0] for t in a.tiers.split(","))]
        result = {
            "processes": a.processes,
            "seconds": a.seconds,
            "samples_sent": samples,
            "samples_in_cpu_window": frames,
            "daemon_cpu_seconds": cpu1 - cpu0,
            "daemon_cpu_share": (cpu1 - cpu0) / (t1 - t0),
            "daemon_cpu_ms_per_1000_samples": 1000 * (cpu1 - cpu0) / (frames / 1000) if frames else None,
            "flush_transaction_max_ms": 1000 * metric(m2, "heapwatch_store_flush_transaction_seconds_max"),
            "flush_transaction_cpu_max_ms": 1000 * metric(m2, "heapwatch_store_flush_transaction_cpu_seconds_max"),
            "transactions": metric(m2, "heapwatch_store_transactions_total"),
            "transactions_over_5ms": metric(m2, "heapwatch_store_transactions_slow_total"),
            "maintenance_step_max_ms": 1000 * metric(m2, "heapwatch_store_maintenance_step_seconds_max"),
            "maintenance_step_cpu_max_ms": 1000 * metric(m2, "heapwatch_store_maintenance_step_cpu_seconds_max"),
            "maintenance_steps": metric(m2, "heapwatch_store_maintenance_steps_total"),
            "maintenance_steps_over_5ms": metric(m2, "heapwatch_store_maintenance_steps_slow_total"),
            "checkpoint_max_ms_off_loop": 1000 * metric(m2, "heapwatch_store_checkpoint_seconds_max"),
            "rows_deleted": metric(m2, "heapwatch_store_rows_deleted_total"),
            "pages_vacuumed": metric(m2, "heapwatch_store_vacuumed_pages_total"),
            "healthz_worst_ms": 1000 * probe.worst,
            "healthz_probes": probe.count,
            "healthz_over_10ms": probe.over_10ms,
            "btree_bytes_per_payload_byte": overhead,
            "tiers": [],
        }
        for (tier, rows, avg, procs), r in zip(tiers, res):
            per_row = avg * (overhead or 1)
            result["tiers"].append({"resolution_seconds": r, "rows": rows, "payload_bytes_per_row": avg,
                                    "stored_bytes_per_row": per_row,
                                    "bytes_per_process_day": per_row * 86400 / r})
        result["vacuum_phase"] = vacuum_phase(a, daemon, sock, state, tmp)
        print(json.dumps(result, indent=2))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        if d.poll() is None:
            d.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
