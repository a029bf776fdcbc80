#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the heapwatch agent costs the program it watches: wall time side by side with no agent,
and next to tracemalloc (SPEC.md, "The agent's promises to the host": at most 2 % on real
workloads, far below tracemalloc).

    /usr/bin/python3 bench/agent_overhead.py --builddir BUILDDIR [--python PY] [--rounds 5]

(`make bench` runs exactly that with the interpreter the agent was built for.) Stdlib only; the
driver may run under another interpreter than the one measured.

What it does:
 1. Starts a real heapwatchd (BUILDDIR/heapwatchd) on a temporary socket and loopback port.
 2. Runs each workload of bench/workloads.py -- real code nobody on the team wrote: Debian's
    pyflakes, ast/compile, tokenize, json, xml.dom.minidom, plus one labelled synthetic GC stress
    test -- as a separate interpreter process in every configuration:
      baseline        python3 workloads.py W
      baseline-again  the same once more: an A/A control, the size of pure noise
      agent-1s        heapwatch run --interval 1 -- python3 workloads.py W   (the default)
      agent-0.1s      heapwatch run --interval 0.1 -- ...                    (aggressive)
      tracemalloc     python3 -X tracemalloc=1 workloads.py W
    interleaved round-robin (round r, workload w, every configuration back to back, in an order
    rotated each round), after one untimed warm-up round. Three measures per run: the
    workload's own time.perf_counter() region (printed by the child), the whole process as the
    parent sees it (interpreter start, agent start, exit with the final sample and flush), and
    the process's CPU time (all threads).
 3. Checks every run was what it claims (agent loaded, running and connected to the daemon at
    the right interval, or tracemalloc tracing, or neither).
 4. Watches the machine: /proc/stat busy time minus our own is other work. Each round waits
    (--quiet-timeout) for a quiet second; a group during which other work kept more than
    --max-background CPUs busy is run again (--retries), and the report warns when the figures
    measure contention more than the agent.
 5. Probes: fixed cost (`python3 -c pass` without the agent, with it through the environment,
    through heapwatch run); sampler cost (each workload at 0.1 s while polling the daemon's
    /api/v1/processes/{id} for agent.sample_seconds and /proc/PID/task/TID/schedstat for the
    sampler thread's CPU, plus heapwatch.snapshot() timed in the child); stall probe (agent on
    and off in one process, a Python loop measuring the time it did not run, and the
    gc.callbacks hook's cost per collection); heap probe (sample cost at 256 MiB and 1 GiB).
 6. Prints Markdown: per workload and configuration the median over rounds, the ratio of the
    medians to baseline, and the min..max of the per-round paired ratios; geometric means; a
    verdict against SPEC.md's 2 %. --json keeps every raw figure; --from-json prints the report
    of a saved run again.
"""
import argparse
import json
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
WORKLOADS_PY = os.path.join(HERE, "workloads.py")

ALL_WORKLOADS = ["pyflakes", "ast_compile", "tokenize", "json", "minidom", "gc_cycles", "sympy", "networkx"]
SYNTHETIC = {"gc_cycles"}
THIRD_PARTY = {"sympy": "sympy", "networkx": "networkx"}  # workload -> module; skipped when absent
ALL_CONFIGS = ["baseline", "baseline-again", "agent-heap-off", "agent-1s", "agent-0.1s", "tracemalloc"]
CONFIGS = list(ALL_CONFIGS)  # the ones measured (--configs)
AGENT_INTERVALS = {"agent-heap-off": 1.0, "agent-1s": 1.0, "agent-0.1s": 0.1}
CONFIG_LABELS = {"baseline": "baseline", "baseline-again": "baseline-again (A/A)",
                 "agent-heap-off": "agent 1 s, heap profiler off", "agent-1s": "agent 1 s (default: heap profiler on)",
                 "agent-0.1s": "agent 0.1 s (heap profiler on)", "tracemalloc": "tracemalloc (1 frame)"}
LIMIT = 2.0  # percent: SPEC.md's promise
RSS_LIMIT = 5.0  # percent: the heap profiler issue's goal for peak RSS


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def die(msg):
    log("agent_overhead: " + msg)
    sys.exit(1)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(ratio):
    return (ratio - 1.0) * 100.0


# ---- environment ---------------------------------------------------------------------------

def python_from_makefile(builddir):
    """The interpreter the agent was built for: PYTHON in BUILDDIR/Makefile (AM_PATH_PYTHON)."""
    try:
        with open(os.path.join(builddir, "Makefile")) as f:
            for line in f:
                if line.startswith("PYTHON = "):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "python3"


def describe_python(py):
    """Resolve PY (a name on PATH, a pyenv shim...) to the real executable and its facts: every
    run then execs the interpreter itself, not a wrapper script whose cost would be noise."""
    code = ("import json, sys, sysconfig; print(json.dumps({'executable': sys.executable, "
            "'version': sys.version.split()[0], 'implementation': sys.implementation.name, "
            "'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX') or '.so', "
            "'build': ' '.join(sys.version.split()[1:])}))")
    try:
        out = subprocess.run([py, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        die("cannot run the target interpreter %r: %s" % (py, e))
    info = json.loads(out.strip().splitlines()[-1])
    if not info["executable"]:
        die("%r does not know its own executable" % py)
    return info


def find_agent(builddir, pyinfo, tmp):
    """The directory holding heapwatch<EXT_SUFFIX> + sitecustomize.py for the target interpreter:
    BUILDDIR/agent/python when it was built for it, else built now with tests/e2e/build-agent.sh."""
    d = os.path.join(builddir, "agent", "python")
    if os.path.isfile(os.path.join(d, "heapwatch" + pyinfo["ext_suffix"])) and \
            os.path.isfile(os.path.join(d, "sitecustomize.py")):
        return d, "built by make"
    out = os.path.join(tmp, "agent")
    script = os.path.join(SRCDIR, "tests", "e2e", "build-agent.sh")
    log("agent_overhead: no agent for %s in %s, building one with %s"
        % (pyinfo["ext_suffix"], d, script))
    r = subprocess.run(["sh", script, pyinfo["executable"], out], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode != 0:
        die("building the agent for %s failed:\n%s" % (pyinfo["executable"], r.stderr))
    return out, "built by tests/e2e/build-agent.sh"


def find_pyflakes(py, tmp):
    """Debian's python3-pyflakes lives in /usr/lib/python3/dist-packages, which only the system
    interpreter searches. Returns (extra_path or None, note) so that py can import pyflakes, or
    (False, why) when it cannot."""
    if subprocess.run([py, "-c", "import pyflakes.api"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode == 0:
        return None, "pyflakes importable by the target interpreter"
    candidates = []
    try:
        import pyflakes  # the driver's own interpreter (/usr/bin/python3 on Debian)
        candidates.append(os.path.dirname(os.path.abspath(pyflakes.__file__)))
    except ImportError:
        pass
    candidates.append("/usr/lib/python3/dist-packages/pyflakes")
    for pkg in candidates:
        if not os.path.isfile(os.path.join(pkg, "api.py")):
            continue
        # A directory with just pyflakes in it: nothing else of dist-packages leaks into the run.
        extra = os.path.join(tmp, "pyflakes-path")
        os.makedirs(extra, exist_ok=True)
        link = os.path.join(extra, "pyflakes")
        if not os.path.lexists(link):
            os.symlink(pkg, link)
        if subprocess.run([py, "-c", "import sys; sys.path.append(%r); import pyflakes.api" % extra],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            return extra, "pyflakes from %s" % pkg
    return False, "pyflakes not found: apt-get install python3-pyflakes"


def available_workloads(wanted, pyinfo, tmp):
    """The workloads of `wanted` that the target interpreter can run: pyflakes found (Debian's,
    through an extra path if need be), the third-party ones installed. Returns (workloads,
    extra_paths {workload: [dir]}, notes)."""
    notes = []
    extra_paths = {}
    workloads = []
    for w in wanted:
        if w == "pyflakes":
            extra, note = find_pyflakes(pyinfo["executable"], tmp)
            if extra is False:
                notes.append("pyflakes skipped: " + note)
                continue
            if extra:
                extra_paths[w] = [extra]
            notes.append(note)
        if w in THIRD_PARTY:
            mod = THIRD_PARTY[w]
            if subprocess.run([pyinfo["executable"], "-c", "import " + mod], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0:
                notes.append("%s skipped: %s is not installed for %s" % (w, mod, pyinfo["executable"]))
                continue
            ver = subprocess.run([pyinfo["executable"], "-c", "import %s; print(%s.__version__)" % (mod, mod)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 universal_newlines=True).stdout.strip()
            notes.append("%s %s (pip) for %s" % (mod, ver, pyinfo["executable"]))
        workloads.append(w)
    return workloads, extra_paths, notes


def machine_info(pyinfo):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
    except OSError:
        load = []
    commit = ""
    try:
        commit = subprocess.run(["git", "-C", SRCDIR, "describe", "--always", "--dirty"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                universal_newlines=True).stdout.strip()
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": pyinfo["version"],
        "python_executable": pyinfo["executable"],
        "driver_python": sys.version.split()[0],
        "loadavg_at_start": load,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "commit": commit,
        "command": " ".join(shlex.quote(a) for a in [sys.executable, os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }


# ---- the daemon ----------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, builddir, tmp):
        self.binary = os.path.join(builddir, "heapwatchd")
        if not os.access(self.binary, os.X_OK):
            die("%s not built (make first)" % self.binary)
        self.socket = os.path.join(tmp, "agent.sock")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.logpath = os.path.join(tmp, "heapwatchd.log")
        self.proc = None

    def start(self):
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen([self.binary, "--socket", self.socket, "--http",
                                      "127.0.0.1:%d" % self.port, "--log-level", "warning"],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                die("heapwatchd exited at start (%d): see %s" % (self.proc.returncode, self.logpath))
            try:
                if self.get("/healthz").get("status") == "ok" and os.path.exists(self.socket):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        die("heapwatchd did not become healthy within 10 s")

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=2) as r:
            return json.loads(r.read().decode("utf-8"))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()


class Session:
    """For the other bench drivers: a temporary directory and, once start_daemon() is called, a
    heapwatchd on a socket in it; both cleaned up when the `with` block ends."""

    def __init__(self, prefix):
        # SIGTERM (a cut-short run) unwinds like an exception, so the daemon is stopped too
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.daemon = None

    def start_daemon(self, builddir):
        self.daemon = Daemon(builddir, self.tmp)
        self.daemon.start()
        return self.daemon

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.daemon:
            self.daemon.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


# ---- how busy the machine is besides us ----------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_jiffies():
    """(busy, steal) jiffies of all CPUs from /proc/stat's "cpu" line, or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...
    steal = v[7] if len(v) > 7 else 0
    return v[0] + v[1] + v[2] + v[5] + v[6] + steal, steal


class Meter:
    """Wall time, the child's CPU time (it is our only child while this runs), and the CPUs kept
    busy by anything else meanwhile (other processes, heapwatchd; not the driver itself)."""

    def __enter__(self):
        self.j0 = cpu_jiffies()
        self.c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.s0 = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        j1 = cpu_jiffies()
        self.child_cpu = (c1.ru_utime - self.c0.ru_utime) + (c1.ru_stime - self.c0.ru_stime)
        own = (s1.ru_utime - self.s0.ru_utime) + (s1.ru_stime - self.s0.ru_stime)
        if self.j0 and j1 and self.wall > 0:
            busy = (j1[0] - self.j0[0]) / CLK_TCK
            self.background = max(0.0, busy - self.child_cpu - own) / self.wall
            self.steal = (j1[1] - self.j0[1]) / CLK_TCK / self.wall
        else:
            self.background = self.steal = float("nan")
        return False


def wait_for_quiet(limit, timeout):
    """Wait (up to timeout seconds) for one second during which other work keeps fewer than
    `limit` CPUs busy. Returns the background load of the last second looked at."""
    end = time.monotonic() + timeout
    while True:
        j0 = cpu_jiffies()
        time.sleep(1.0)
        j1 = cpu_jiffies()
        load = (j1[0] - j0[0]) / CLK_TCK if j0 and j1 else 0.0
        if load < limit or time.monotonic() >= end:
            return load


# ---- running one configuration ---------------------------------------------------------------

class Runner:
    def __init__(self, args, pyinfo, agent_dir, daemon, extra_paths, tmp):
        self.py = pyinfo["executable"]
        self.heapwatch = os.path.join(args.builddir, "heapwatch")
        if not os.access(self.heapwatch, os.X_OK):
            die("%s not built (make first)" % self.heapwatch)
        self.daemon = daemon
        self.scale = args.scale
        self.extra_paths = extra_paths
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HEAPWATCH") and k not in ("PYTHONPATH", "PYTHONTRACEMALLOC",
                                                               "PYTHONMALLOC", "PYTHONDEVMODE",
                                                               "PYTHONHOME", "PYTHONSTARTUP",
                                                               "PYTHONDONTWRITEBYTECODE")}
        env["PYTHONHASHSEED"] = "0"  # the same dict and set layouts in every run
        # Bytecode caches in one private tree: modules whose __pycache__ is not writable for this
        # interpreter (Debian's pyflakes under another Python) are compiled once in the warm-up,
        # not in every run, and nothing is written outside the temporary directory. (With
        # PYTHONDONTWRITEBYTECODE from the caller's environment the tree would stay empty and
        # every run would compile every module it imports, the agent's bootstrap included.)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        self.env = env
        self.agent_dir = agent_dir
        self.agent_env = dict(env, HEAPWATCH_AGENT_PATH=agent_dir)

    def command(self, config, argv):
        """argv: what follows `python3` (a script and its arguments, or -c CODE)."""
        if config in ("baseline", "baseline-again"):
            return [self.py] + argv, self.env
        if config == "tracemalloc":
            return [self.py, "-X", "tracemalloc=1"] + argv, self.env
        interval = AGENT_INTERVALS[config]
        env = self.agent_env
        if config == "agent-heap-off":
            env = dict(env, HEAPWATCH_SAMPLE_BYTES="0")
        return ([self.heapwatch, "run", "--socket", self.daemon.socket, "--interval", "%g" % interval,
                 "--service", "bench", "--", self.py] + argv, env)

    def workload_argv(self, workload, scale=None, extra=()):
        argv = [WORKLOADS_PY, workload, "--scale", "%g" % (self.scale if scale is None else scale)]
        for p in self.extra_paths.get(workload, []):
            argv += ["--extra-path", p]
        return argv + list(extra)

    def run(self, config, workload, scale=None):
        cmd, env = self.command(config, self.workload_argv(workload, scale))
        with Meter() as m:
            p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
        if p.returncode != 0:
            die("%s/%s failed (exit %d):\n%s\n%s" % (workload, config, p.returncode, " ".join(cmd),
                                                      p.stderr))
        res = json.loads(p.stdout.strip().splitlines()[-1])
        res["process_seconds"] = m.wall
        res["cpu_seconds"] = m.child_cpu
        res["background_cpus"] = m.background
        res["steal_cpus"] = m.steal
        res["stderr"] = p.stderr.strip()
        check_configuration(config, workload, res)
        return res


def check_configuration(config, workload, res):
    """A run that silently lacked its agent (or had one it should not) would make the bench lie."""
    what = "%s/%s" % (workload, config)
    if config.startswith("agent"):
        if not res.get("agent_running") or not res.get("agent_connected"):
            die("%s: the agent was not running and connected: %s (stderr: %s)"
                % (what, {k: v for k, v in res.items() if k.startswith("agent")}, res["stderr"]))
        if abs(res.get("agent_interval", 0) - AGENT_INTERVALS[config]) > 1e-9:
            die("%s: agent interval %r" % (what, res.get("agent_interval")))
        if bool(res.get("agent_heap_profiling")) != (config != "agent-heap-off"):
            die("%s: heap profiling is %r" % (what, res.get("agent_heap_profiling")))
    elif res.get("agent_loaded"):
        die("%s: the agent was loaded in a run without it" % what)
    if (config == "tracemalloc") != bool(res.get("tracemalloc")):
        die("%s: tracemalloc tracing is %r" % (what, res.get("tracemalloc")))
    if res["stderr"]:
        log("agent_overhead: note: %s wrote to stderr: %s" % (what, res["stderr"][:300]))


# ---- phases --------------------------------------------------------------------------------

def rotated(seq, r):
    r %= len(seq)
    return seq[r:] + seq[:r]


def timing_rounds(runner, workloads, args):
    """Round r, workload w: one group of runs, every configuration back to back (order rotated
    each round). A group during which other work kept more than --max-background CPUs busy in
    any run is run again (up to --retries times), so that the paired ratios compare runs that
    saw the same machine; what was retried and what stayed contended is reported."""
    results = {w: {c: [] for c in CONFIGS} for w in workloads}
    contention = {"groups": 0, "retried": 0, "kept_contended": 0, "waited_s": 0.0, "discarded": []}
    log("agent_overhead: warm-up round (untimed)")
    for w in workloads:
        for c in CONFIGS:
            runner.run(c, w, scale=min(runner.scale, 0.2))
    for r in range(args.rounds):
        t_round = time.monotonic()
        t_wait = time.monotonic()
        load = wait_for_quiet(args.max_background, args.quiet_timeout)
        contention["waited_s"] += time.monotonic() - t_wait
        busy = load >= args.max_background
        if busy:
            # Persistently busy: re-running groups would only triple the time for the same result.
            log("agent_overhead: the machine is busy (%.2f CPUs of other work); measuring this round "
                "anyway, without re-runs" % load)
        for w in workloads:
            contention["groups"] += 1
            attempts = 0
            while True:
                group = {c: runner.run(c, w) for c in rotated(CONFIGS, r)}
                worst = max(g["background_cpus"] for g in group.values())
                if not worst > args.max_background:
                    break
                t_wait = time.monotonic()
                if busy or attempts >= args.retries or \
                        wait_for_quiet(args.max_background, args.quiet_timeout) >= args.max_background:
                    contention["waited_s"] += time.monotonic() - t_wait
                    contention["kept_contended"] += 1
                    break
                contention["waited_s"] += time.monotonic() - t_wait
                attempts += 1
                contention["retried"] += 1
                contention["discarded"].append({"round": r + 1, "workload": w, "max_background_cpus": worst,
                                                "runs": group})
                log("agent_overhead: %s round %d: up to %.2f CPUs of other work during the runs, "
                    "running the group again" % (w, r + 1, worst))
            for c in CONFIGS:
                results[w][c].append(group[c])
        log("agent_overhead: round %d/%d done in %.0f s" % (r + 1, args.rounds, time.monotonic() - t_round))
    return results, contention


def fixed_cost(runner, n):
    """Interpreter start and exit with and without the agent: `python3 -c pass`, n times each,
    interleaved. The agent's import, thread start, connection, HELLO, and at exit the join, the
    final sample and the GOODBYE flush are all in the difference. "agent-env" sets up exactly
    what `heapwatch run` does (PYTHONPATH, HEAPWATCH_SOCKET, HEAPWATCH_INTERVAL) without the
    wrapper, which separates the agent's cost from that of exec'ing through the CLI."""
    out = {"baseline": [], "agent-env": [], "agent-1s": []}
    cpu = {c: [] for c in out}
    for i in range(n):
        for c in rotated(list(out), i):
            if c == "agent-env":
                cmd = [runner.py, "-c", "pass"]
                env = dict(runner.env, PYTHONPATH=runner.agent_dir, HEAPWATCH_SOCKET=runner.daemon.socket,
                           HEAPWATCH_INTERVAL="1", HEAPWATCH_SERVICE="bench")
            else:
                cmd, env = runner.command(c, ["-c", "pass"])
            with Meter() as m:
                rc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            out[c].append(m.wall)
            cpu[c].append(m.child_cpu)
            if rc != 0:
                die("fixed cost probe %s failed (exit %d)" % (c, rc))
    out["cpu"] = cpu
    return out


def heapwatch_thread_cpu(pid):
    """On-CPU nanoseconds of the agent's thread (named "heapwatch"), or None."""
    base = "/proc/%d/task" % pid
    try:
        tids = os.listdir(base)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("%s/%s/comm" % (base, tid)) as f:
                if f.read().strip() != "heapwatch":
                    continue
            with open("%s/%s/schedstat" % (base, tid)) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return None


def sampler_cost(runner, daemon, workload, interval_config="agent-0.1s", poll=0.02):
    """One run of the workload under the agent at 0.1 s while polling the daemon for each
    sample's agent.sample_seconds and /proc for the sampler thread's CPU time."""
    cmd, env = runner.command(interval_config, runner.workload_argv(workload, extra=["--snapshots", "200"]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    pid = proc.pid  # heapwatch run execs the interpreter: same pid
    pid_id = None
    samples = {}  # seq -> sample_seconds (live samples only, not the GOODBYE)
    cpu_first = cpu_last = None  # (seq, on-CPU ns) at the first and last look
    while proc.poll() is None:
        try:
            if pid_id is None:
                for p in daemon.get("/api/v1/processes?state=live")["processes"]:
                    if p["pid"] == pid:
                        pid_id = p["id"]
            if pid_id is not None:
                d = daemon.get("/api/v1/processes/%s" % pid_id)
                ls = d.get("latest_sample")
                if d["process"]["state"] == "live" and ls and ls.get("agent"):
                    samples[ls["seq"]] = ls["agent"].get("sample_seconds")
                    ns = heapwatch_thread_cpu(pid)
                    if ns is not None:
                        cpu_last = (ls["seq"], ns)
                        if cpu_first is None:
                            cpu_first = cpu_last
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(poll)
    out, err = proc.communicate()
    if proc.returncode != 0:
        die("sampler cost run of %s failed: %s" % (workload, err))
    res = json.loads(out.strip().splitlines()[-1])
    vals = sorted(v for v in samples.values() if isinstance(v, (int, float)))
    # Between the first and the last look: steady state, without the thread's start (connect,
    # HELLO) that the first sample pays for.
    per_sample = None
    if cpu_first and cpu_last and cpu_last[0] > cpu_first[0]:
        per_sample = (cpu_last[1] - cpu_first[1]) / 1e9 / (cpu_last[0] - cpu_first[0])
    return {
        "samples_seen": len(vals),
        "samples_sent": res.get("agent_samples_sent"),
        "sample_seconds_median": median(vals),
        "sample_seconds_max": max(vals) if vals else float("nan"),
        "sample_seconds_min": min(vals) if vals else float("nan"),
        "thread_cpu_seconds": cpu_last[1] / 1e9 if cpu_last else None,
        "thread_cpu_per_sample": per_sample,
        "snapshot_seconds_median": res.get("snapshot_seconds_median"),
    }


def heap_probe(runner, mb):
    """workloads.py heap_probe under the agent (1 s): the GIL-held part of a sample against the
    size of the Python heap."""
    cmd, env = runner.command("agent-1s", [WORKLOADS_PY, "heap_probe", "--heap-mb", str(mb), "--snapshots", "15"])
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        die("heap probe at %d MiB failed (exit %d): %s" % (mb, p.returncode, p.stderr))
    res = json.loads(p.stdout.strip().splitlines()[-1])
    if not res.get("agent_loaded"):
        die("heap probe ran without the agent")
    return res


def stall_probe(runner, reps, slice_s):
    """workloads.py stall_probe: the agent started and stopped in one process (at 0.1 s), a pure
    Python loop measuring the time it did not run. -S keeps `site` (and so heapwatch run's
    bootstrap) out: the probe starts the agent itself."""
    env = dict(runner.env, PYTHONPATH=runner.agent_dir)
    cmd = [runner.py, "-S", WORKLOADS_PY, "stall_probe", "--socket", runner.daemon.socket,
           "--interval", "0.1", "--reps", str(reps), "--slice", "%g" % slice_s]
    with Meter() as m:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        die("stall probe failed (exit %d): %s" % (p.returncode, p.stderr))
    res = json.loads(p.stdout.strip().splitlines()[-1])
    st = res["stall"]
    if not all(x["connected"] for x in st["on"]):
        die("stall probe: the agent was not connected")
    samples = median([x["samples"] for x in st["on"]])
    paired = [a["stall"] - b["stall"] for a, b in zip(st["on"], st["off"])]
    rate = [a["rate"] / b["rate"] for a, b in zip(st["on"], st["off"])]
    q = statistics.quantiles(paired, n=4) if len(paired) >= 2 else [paired[0]] * 3
    rq = statistics.quantiles(rate, n=4) if len(rate) >= 2 else [rate[0]] * 3
    res["summary"] = {
        "samples_per_slice": samples,
        "stall_off_median": median([x["stall"] for x in st["off"]]),
        "stall_on_median": median([x["stall"] for x in st["on"]]),
        "stall_per_sample": median(paired) / samples if samples else float("nan"),
        "stall_per_sample_q1": q[0] / samples if samples else float("nan"),
        "stall_per_sample_q3": q[2] / samples if samples else float("nan"),
        "rate_ratio": median(rate), "rate_q1": rq[0], "rate_q3": rq[2],
        "background_cpus": m.background,
    }
    return res


# ---- report --------------------------------------------------------------------------------

def fmt_pct(x):
    return "%+.1f %%" % x


def fmt_range(lo, hi):
    return "%+.1f…%+.1f" % (lo, hi)


def summarize(results, key):
    """Per workload and configuration: median seconds, ratio of medians to the baseline, and
    the per-round paired ratios (config in round r / baseline in round r)."""
    summary = {}
    for w, byc in results.items():
        base = [r[key] for r in byc["baseline"]]
        mb = median(base)
        summary[w] = {}
        for c in CONFIGS:
            xs = [r[key] for r in byc[c]]
            paired = [x / b for x, b in zip(xs, base)]
            summary[w][c] = {
                "median": median(xs),
                "min": min(xs), "max": max(xs),
                "ratio": median(xs) / mb,
                "paired_median": median(paired),
                "paired_min": min(paired), "paired_max": max(paired),
            }
    return summary


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def fmt_value(v, unit):
    return "%.0f MiB" % (v / 2 ** 20) if unit == "bytes" else "%.3f s" % v


def table(summary, title, unit="s"):
    configs = [c for c in CONFIGS if c != "baseline"]
    lines = ["#### %s" % title, "",
             "| workload | baseline | %s |" % " | ".join(CONFIG_LABELS[c] for c in configs),
             "|---|---|" + "---|" * len(configs)]
    for w, s in summary.items():
        b = s["baseline"]
        cells = ["%s (spread %.1f %%)" % (fmt_value(b["median"], unit), (b["max"] - b["min"]) / b["median"] * 100)]
        for c in configs:
            x = s[c]
            if c == "tracemalloc":
                cells.append("%s **×%.2f** [×%.2f…×%.2f]" % (fmt_value(x["median"], unit), x["ratio"],
                                                             x["paired_min"], x["paired_max"]))
            else:
                cells.append("%s **×%.3f** [%s]" % (fmt_value(x["median"], unit), x["ratio"],
                                                    fmt_range(pct(x["paired_min"]), pct(x["paired_max"]))))
        name = w + (" (synthetic)" if w in SYNTHETIC else "")
        lines.append("| %s | %s |" % (name, " | ".join(cells)))
    gm = {c: geomean([s[c]["ratio"] for s in summary.values()]) for c in CONFIGS}
    lines.append("| geometric mean | | %s |" % " | ".join("**×%.3f**" % gm[c] for c in configs))
    return lines, gm


def verdict(summary, label, limit=LIMIT):
    """One line per agent configuration whose ratio of medians is over the limit. It counts as
    a consistent slowdown only if the agent run was the slower one in every round (paired ratio
    above 1 each time: with 5 rounds, 1 chance in 32 under pure noise) and the A/A control moves
    less than the effect; otherwise it is noise as far as this run can tell."""
    lines = []
    for w, s in summary.items():
        aa = s.get("baseline-again")  # absent when --configs leaves the A/A control out
        noise = max(abs(pct(aa["ratio"])), abs(pct(aa["paired_min"])), abs(pct(aa["paired_max"]))) \
            if aa else float("inf")
        for c in (c for c in CONFIGS if c.startswith("agent")):
            x = s[c]
            p = pct(x["ratio"])
            if p <= limit:
                continue
            if x["paired_min"] > 1.0 and noise < p:
                why = "**a consistent slowdown**: slower in every round, beyond the A/A noise (±%.1f %%)" % noise
            elif x["paired_min"] <= 1.0:
                why = ("inconclusive: the agent run was the faster one in at least one round; the A/A "
                       "control moves by up to ±%.1f %%" % noise)
            else:
                why = "inconclusive: the A/A control moves by up to ±%.1f %% on this workload" % noise
            lines.append("- %s, %s, %s: %s [paired %s], over the %.0f %% limit; %s"
                         % (label, w, c, fmt_pct(p), fmt_range(pct(x["paired_min"]), pct(x["paired_max"])),
                            limit, why))
    return lines


def contention_lines(results, contention, args):
    bg = sorted(r["background_cpus"] for byc in results.values() for runs in byc.values() for r in runs
                if not math.isnan(r["background_cpus"]))
    steal = sorted(r["steal_cpus"] for byc in results.values() for runs in byc.values() for r in runs
                   if not math.isnan(r["steal_cpus"]))
    if not bg:
        return ["- other work during the timed runs: unknown (no /proc/stat)"], False
    busy = median(bg) > args.max_background or contention["kept_contended"] > contention["groups"] // 4
    lines = ["- other work during the timed runs (CPUs kept busy besides the measured process): median "
             "%.2f, max %.2f; steal median %.2f; %d groups (workload × round) measured, %d re-runs "
             "of a contended group, %d kept although still contended; %.0f s spent waiting for a "
             "quiet machine"
             % (median(bg), bg[-1], median(steal) if steal else float("nan"), contention["groups"],
                contention["retried"], contention["kept_contended"], contention["waited_s"])]
    if busy:
        lines.append("- **WARNING: the machine was busy with other work during this run; the wall-time "
                     "figures below measure that contention more than the agent. Run again on a quiet "
                     "machine.**")
    return lines, busy


def report(args, machine, pyinfo, agent_note, notes, workloads, results, contention, fixed, sampler, stall,
           heap, elapsed):
    out = []
    out.append("### Machine")
    out.append("")
    out.append("- %d CPUs, %s; kernel %s; %s" % (machine["nproc"], machine["cpu"], machine["kernel"], machine["os"]))
    out.append("- measured interpreter: Python %s (%s); driver: Python %s"
               % (machine["python"], machine["python_executable"], machine["driver_python"]))
    out.append("- agent: %s; heapwatch %s; load average at start %s; %s"
               % (agent_note, machine["commit"] or "(no git)", " ".join(machine["loadavg_at_start"]),
                  machine["date"]))
    out.append("- command: `%s`" % machine["command"])
    out.append("- %d rounds (+1 warm-up), scale %g, %d workloads; total %.0f s"
               % (args.rounds, args.scale, len(workloads), elapsed))
    clines, busy = contention_lines(results, contention, args)
    out += clines
    for n in notes:
        out.append("- note: %s" % n)
    out.append("")
    out.append("Cells: median over rounds, **ratio of the medians to baseline**, [min…max of the "
               "per-round paired ratios, %]. Baseline: median (max−min spread over rounds, % of the "
               "median). baseline-again is the same command as baseline: an A/A control showing how "
               "far noise alone moves a ratio.")
    out.append("")
    all_verdicts = []
    gms = {}
    for key, title in (("seconds", "Workload time (time.perf_counter() around the work, in the child)"),
                       ("process_seconds", "Whole process (spawn to exit, from the parent: includes "
                                           "interpreter start, agent start, final sample and flush)"),
                       ("cpu_seconds", "CPU time of the process (user + system, all threads: the "
                                       "sampler thread's own work counts; less sensitive to other load)"),
                       ("peak_rss_bytes", "Peak RSS of the process (VmHWM, reported by the child at its end)")):
        if not all(key in r for byc in results.values() for runs in byc.values() for r in runs):
            continue  # a run saved before this measure existed
        s = summarize(results, key)
        lines, gm = table(s, title, "bytes" if key == "peak_rss_bytes" else "s")
        gms[key] = gm
        out += lines + [""]
        if key == "peak_rss_bytes":
            all_verdicts += verdict(s, "peak RSS", RSS_LIMIT)
        elif key != "cpu_seconds":
            all_verdicts += verdict(s, "workload time" if key == "seconds" else "whole process")

    fb = median(fixed["baseline"])
    out.append("#### Fixed cost per process (`python3 -c pass`, %d runs each, interleaved)" % len(fixed["baseline"]))
    out.append("")
    cpu = fixed.get("cpu")
    out.append("| | wall median | min | max | wall median − baseline | CPU median − baseline |")
    out.append("|---|---|---|---|---|---|")
    for c, label in (("baseline", "baseline"),
                     ("agent-env", "agent, environment set directly (no `heapwatch run`)"),
                     ("agent-1s", "agent through `heapwatch run`")):
        xs = fixed[c]
        dcpu = ""
        if cpu and c != "baseline":
            dcpu = "%+.1f ms" % ((median(cpu[c]) - median(cpu["baseline"])) * 1e3)
        out.append("| %s | %.1f ms | %.1f ms | %.1f ms | %s | %s |"
                   % (label, median(xs) * 1e3, min(xs) * 1e3, max(xs) * 1e3,
                      "" if c == "baseline" else "**%+.1f ms**" % ((median(xs) - fb) * 1e3), dcpu))
    out.append("")

    out.append("#### Sampler cost (one run per workload at --interval 0.1, daemon polled every 20 ms)")
    out.append("")
    out.append("| workload | samples seen | `agent.sample_seconds` median (min…max) | sampler thread CPU "
               "per sample (steady state) | `heapwatch.snapshot()` median (GIL held, no wait) |")
    out.append("|---|---|---|---|---|")
    for w, s in sampler.items():
        cpu = s["thread_cpu_per_sample"]
        snap = s["snapshot_seconds_median"]
        out.append("| %s | %d of %s | %.0f µs (%.0f…%.0f µs) | %s | %s |"
                   % (w, s["samples_seen"], s["samples_sent"], s["sample_seconds_median"] * 1e6,
                      s["sample_seconds_min"] * 1e6, s["sample_seconds_max"] * 1e6,
                      "%.0f µs" % (cpu * 1e6) if cpu else "n/a",
                      "%.0f µs" % (snap * 1e6) if snap else "n/a"))
    out.append("")
    out.append("`agent.sample_seconds` is wall time inside the sampler thread and includes waiting "
               "for the GIL (up to the interpreter's switch interval, 5 ms by default, while the main "
               "thread computes, longer when a C call holds the GIL); the thread's CPU time and "
               "snapshot() show the work itself.")
    out.append("")
    if stall:
        ss, gh = stall["summary"], stall["gc_hook"]
        out.append("#### What a sample costs the host's Python code (stall probe, agent at 0.1 s, "
                   "%d × %g s slices with and without the agent, alternating in one process)"
                   % (len(stall["stall"]["on"]), stall["stall"]["slice_seconds"]))
        out.append("")
        out.append("| | value |")
        out.append("|---|---|")
        out.append("| time the loop did not run (gaps > 20 µs), per slice, without / with the agent "
                   "(medians) | %.2f ms / %.2f ms |" % (ss["stall_off_median"] * 1e3, ss["stall_on_median"] * 1e3))
        out.append("| samples per slice | %g |" % ss["samples_per_slice"])
        out.append("| **extra stall per sample** (median of paired differences; IQR) | **%.0f µs** (%.0f…%.0f µs) |"
                   % (ss["stall_per_sample"] * 1e6, ss["stall_per_sample_q1"] * 1e6, ss["stall_per_sample_q3"] * 1e6))
        out.append("| implied overhead at 1 s / 0.1 s | %.3f %% / %.2f %% |"
                   % (ss["stall_per_sample"] / 1.0 * 100, ss["stall_per_sample"] / 0.1 * 100))
        out.append("| loop throughput with / without the agent at 0.1 s (median paired ratio; IQR) | "
                   "%+.2f %% (%+.2f…%+.2f %%) |" % (pct(ss["rate_ratio"]), pct(ss["rate_q1"]), pct(ss["rate_q3"])))
        out.append("| gc.callbacks hook: extra time per collection (gc.collect(0), best of 5 × 100000) | "
                   "%.2f µs |" % (gh["extra_per_collection"] * 1e6))
        out.append("| other work on the machine during the probe | %.2f CPUs |" % ss["background_cpus"])
        out.append("")
        lines = []
        for w, byc in results.items():
            runs = byc["baseline"]
            rate = median([sum(r["gc_collections"]) / r["seconds"] for r in runs])
            lines.append("%s %.0f/s → %.2f %%" % (w, rate, rate * gh["extra_per_collection"] * 100))
        out.append("GC hook cost by workload (collections per second at baseline × cost per collection): "
                   + "; ".join(lines) + ".")
        out.append("")
    if heap:
        out.append("#### Sample cost against heap size (caches evicted before each call, 15 calls, median)")
        out.append("")
        out.append("| RSS | pymalloc blocks | `sys.getallocatedblocks()` | whole `heapwatch.snapshot()` | "
                   "GIL-held share of wall time at 1 s / 0.1 s (getallocatedblocks alone) |")
        out.append("|---|---|---|---|---|")
        for h in heap:
            b = h["getallocatedblocks_seconds_median"]
            out.append("| %.0f MiB | %d | %.0f µs | %.0f µs | %.2f %% / %.2f %% |"
                       % (h["rss_bytes"] / 2 ** 20, h["allocated_blocks"], b * 1e6,
                          h["snapshot_seconds_median"] * 1e6, b / 1.0 * 100, b / 0.1 * 100))
        out.append("")
        out.append("CPython computes `sys.getallocatedblocks()` by visiting every pool of every pymalloc "
                   "arena, under the GIL: its cost grows linearly with the heap (RSS includes the "
                   "probe's 64 MiB cache-eviction buffer).")
        out.append("")
    out.append("#### Verdict (limits: +%.0f %% wall time, +%.0f %% peak RSS, on the ratio of medians)"
               % (LIMIT, RSS_LIMIT))
    out.append("")
    if busy:
        out.append("- the machine was busy: see the warning above")
    if all_verdicts:
        out += all_verdicts
    else:
        out.append("- every workload, every agent configuration: within +%.0f %% wall time and +%.0f %% "
                   "peak RSS" % (LIMIT, RSS_LIMIT))
    for key, label in (("seconds", "workload time"), ("process_seconds", "whole process"),
                       ("cpu_seconds", "CPU time"), ("peak_rss_bytes", "peak RSS")):
        if key not in gms:
            continue
        g = gms[key]
        out.append("- geometric means, %s: %s"
                   % (label, ", ".join("%s ×%.3f" % (CONFIG_LABELS[c], g[c]) for c in CONFIGS if c != "baseline")))
    return "\n".join(out) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builddir", help="the build tree (heapwatchd, heapwatch, agent/python); required "
                                       "unless --from-json")
    ap.add_argument("--python", help="interpreter to measure (default: PYTHON of BUILDDIR/Makefile, "
                                     "the one the agent was built for)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="workload size factor (default 1: about 1-1.5 s each at baseline)")
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                    help="comma-separated subset of: " + ", ".join(ALL_WORKLOADS))
    ap.add_argument("--configs", default=",".join(ALL_CONFIGS),
                    help="comma-separated subset of: %s (baseline and tracemalloc are always measured)"
                         % ", ".join(ALL_CONFIGS))
    ap.add_argument("--fixed-runs", type=int, default=30, help="runs per configuration of the fixed-cost probe")
    ap.add_argument("--stall-reps", type=int, default=30,
                    help="0.5 s slices with and without the agent in the stall probe (default 30; 0 skips)")
    ap.add_argument("--heap-probe-mb", default="256,1024",
                    help="comma-separated heap sizes (MiB of RSS) for the sample-cost-against-heap probe; "
                         "empty to skip (default 256,1024)")
    ap.add_argument("--max-background", type=float, default=0.3,
                    help="CPUs other work may keep busy during a run before its group is run again "
                         "(default 0.3)")
    ap.add_argument("--retries", type=int, default=2, help="re-runs of a contended group (default 2)")
    ap.add_argument("--quiet-timeout", type=float, default=30,
                    help="seconds to wait for a quiet machine before each round and retry (default 30)")
    ap.add_argument("--json", metavar="PATH", help="write every raw figure here")
    ap.add_argument("--from-json", metavar="PATH", help="measure nothing: print the report of a run saved "
                                                        "with --json")
    args = ap.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            d = json.load(f)
        CONFIGS[:] = [c for c in ALL_CONFIGS if c in next(iter(d["results"].values()))]
        saved = argparse.Namespace(**d["args"])
        sys.stdout.write(report(saved, d["machine"], None, d.get("agent_note", "?"), d["notes"],
                                d.get("workloads", list(d["results"])), d["results"], d["contention"],
                                d["fixed_cost"], d["sampler"], d.get("stall_probe"), d["heap_probe"],
                                d.get("elapsed", float("nan"))))
        return 0
    if not args.builddir:
        die("--builddir is required")
    if args.rounds < 1:
        die("--rounds must be at least 1")
    args.builddir = os.path.abspath(args.builddir)
    try:
        args.heap_probe_mb = [int(x) for x in args.heap_probe_mb.split(",") if x.strip() and int(x) > 0]
    except ValueError:
        die("--heap-probe-mb: comma-separated MiB counts expected")

    want_configs = {c.strip() for c in args.configs.split(",") if c.strip()} | {"baseline", "tracemalloc"}
    for c in want_configs:
        if c not in ALL_CONFIGS:
            die("unknown configuration %r" % c)
    CONFIGS[:] = [c for c in ALL_CONFIGS if c in want_configs]

    wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in wanted:
        if w not in ALL_WORKLOADS:
            die("unknown workload %r" % w)

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="hw-bench-")
    daemon = None
    try:
        pyinfo = describe_python(args.python or python_from_makefile(args.builddir))
        if pyinfo["implementation"] != "cpython":
            die("%s is %s: the agent supports CPython only" % (pyinfo["executable"], pyinfo["implementation"]))
        agent_dir, agent_note = find_agent(args.builddir, pyinfo, tmp)
        workloads, extra_paths, notes = available_workloads(wanted, pyinfo, tmp)
        if not workloads:
            die("no workload to run")
        machine = machine_info(pyinfo)
        log("agent_overhead: measuring %s (Python %s), %d rounds of %s"
            % (pyinfo["executable"], pyinfo["version"], args.rounds, ", ".join(workloads)))

        daemon = Daemon(args.builddir, tmp)
        daemon.start()
        runner = Runner(args, pyinfo, agent_dir, daemon, extra_paths, tmp)

        results, contention = timing_rounds(runner, workloads, args)
        log("agent_overhead: fixed cost probe")
        fixed = fixed_cost(runner, args.fixed_runs)
        log("agent_overhead: sampler cost probe")
        sampler = {w: sampler_cost(runner, daemon, w) for w in workloads}
        stall = None
        if args.stall_reps > 0:
            log("agent_overhead: stall probe")
            stall = stall_probe(runner, args.stall_reps, 0.5)
        heap = []
        for mb in args.heap_probe_mb:
            log("agent_overhead: heap probe at %d MiB" % mb)
            heap.append(heap_probe(runner, mb))
        elapsed = time.monotonic() - started

        if args.json:  # first: a failing report must not lose the measurements (--from-json)
            with open(args.json, "w") as f:
                json.dump({"machine": machine, "args": vars(args), "agent_note": agent_note, "notes": notes,
                           "workloads": workloads, "elapsed": elapsed, "results": results, "contention": contention,
                           "fixed_cost": fixed, "sampler": sampler, "stall_probe": stall, "heap_probe": heap}, f,
                          indent=1)
        text = report(args, machine, pyinfo, agent_note, notes, workloads, results, contention, fixed, sampler,
                      stall, heap, elapsed)
        sys.stdout.write(text)
        if daemon.proc.poll() is not None:
            die("heapwatchd died during the bench (exit %d): see %s" % (daemon.proc.returncode, daemon.logpath))
    finally:
        if daemon:
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
