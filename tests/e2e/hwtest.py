# SPDX-License-Identifier: MIT
"""Helpers for the end-to-end tests: start a real heapwatchd, start real interpreters with the
agent (through `heapwatch run`), talk real HTTP, and wait for conditions by polling with a
deadline (never fixed sleeps)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOP_BUILDDIR = os.environ.get("top_builddir") or TOP_SRCDIR
TARGET_PYTHON = os.environ.get("HW_TARGET_PYTHON", "/usr/bin/python3")
AGENT_DIR = os.environ.get("HW_AGENT_DIR", "")
# HW_SANITIZERS (configure --enable-sanitizers): "yes" is AddressSanitizer + UBSan, "thread"
# ThreadSanitizer; either way the agent needs its runtime preloaded into a stock interpreter.
SANITIZERS = os.environ.get("HW_SANITIZERS", "no") == "yes"
TSAN = os.environ.get("HW_SANITIZERS", "no") == "thread"
PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")
# Deadlines are generous: they bound a failing test, they are not performance claims.
DEADLINE = float(os.environ.get("HW_E2E_DEADLINE", "20"))
# HW_E2E_VALGRIND=1 (run-valgrind-e2e.sh): every heapwatchd runs under valgrind memcheck, which
# makes it exit with VALGRIND_ERROR_EXIT on any memory error or definite leak (checked when the
# daemon is stopped); the driver raises HW_E2E_DEADLINE, valgrind slows the daemon ~20-50x.
VALGRIND = os.environ.get("HW_E2E_VALGRIND", "0") == "1"
VALGRIND_ERROR_EXIT = 99
# Reports of every daemon that ended with something to say, whether a test checked its exit
# status or not (one killed with SIGKILL, or stopped by a helper that ignores it): at exit the
# test program prints them and fails.
_valgrind_findings = []


def _valgrind_exit_check():
    if _valgrind_findings:
        sys.stderr.write("==== valgrind memcheck found errors in heapwatchd ====\n" + "\n".join(_valgrind_findings))
        sys.stderr.flush()
        os._exit(1)


if VALGRIND:
    import atexit
    atexit.register(_valgrind_exit_check)


def find_binary(*names):
    for name in names:
        path = os.path.join(TOP_BUILDDIR, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise RuntimeError("binary not built: %s" % " or ".join(names))


def wait_for(predicate, timeout=DEADLINE, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value; return it, or fail after timeout."""
    end = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # the daemon may be restarting; keep polling
            last_exc = e
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last error: %r)" % (timeout, what, last_exc))


def write_command(state_path, text):
    """Give a target program (or its fork child, whose state path is <state>.child) a command:
    programs poll <state_path>.cmd, read it and unlink it. Written to a temporary name and renamed
    into place: a program that opened the file between its creation and the write would read ""
    and unlink it, and the command would be lost (a fork test then waited for a child that never
    heard "exit")."""
    tmp = "%s.cmd.%d.tmp" % (state_path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, state_path + ".cmd")


def _descendants(pid):
    """pid and every process below it (from /proc/*/stat), parents first."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(sorted(children.get(p, [])))
    return out


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\0", " ").strip()
    except OSError as e:
        return "(%s)" % e.strerror


def process_diagnostics(pid):
    """What every thread of pid and of its descendants is doing: state and wchan of each task, its
    kernel stack when readable, and the user-space stacks from gdb when it is installed. For a
    target that does not exit, so the failure explains itself."""
    out = []
    for p in _descendants(pid):
        out.append("==== pid %d: %s" % (p, _read("/proc/%d/cmdline" % p)))
        try:
            tids = sorted(os.listdir("/proc/%d/task" % p), key=int)
        except OSError:
            continue
        for tid in tids:
            task = "/proc/%d/task/%s" % (p, tid)
            state = [l for l in _read(task + "/status").splitlines() if l.startswith("State:")]
            out.append("-- task %s (%s) %s wchan=%s" % (tid, _read(task + "/comm"), state[0] if state else "?",
                                                        _read(task + "/wchan")))
            stack = _read(task + "/stack")
            if stack and not stack.startswith("("):
                out.append(stack)
        gdb = shutil.which("gdb")
        if gdb:
            try:
                r = subprocess.run([gdb, "-p", str(p), "-batch", "-iex", "set auto-load safe-path /", "-ex", "thread apply all bt",
                                    "-ex", "thread apply all py-bt"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
                out.append(r.stdout)
            except (OSError, subprocess.SubprocessError) as e:
                out.append("(gdb: %r)" % e)
    return "\n".join(out)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sanitizer_env(env):
    """A sanitizer-built agent loaded into a stock interpreter needs the runtime preloaded."""
    if SANITIZERS or TSAN:
        runtime = "libasan.so" if SANITIZERS else "libtsan.so"
        lib = subprocess.run([os.environ.get("CC", "gcc"), "-print-file-name=" + runtime],
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
        env["LD_PRELOAD"] = lib
    if SANITIZERS:
        env["ASAN_OPTIONS"] = "detect_leaks=0:verify_asan_link_order=0"
    if TSAN:
        # A data race ends the host at once (exit 66) with the report on its stderr, which the
        # tests read: no test passes over a race. TSAN_OPTIONS from the make check environment.
        env.setdefault("TSAN_OPTIONS", "halt_on_error=1:exitcode=66")
    return env


class Daemon:
    """A real heapwatchd on a private socket and a free loopback port."""

    def __init__(self, tmpdir, extra_args=(), log_level="debug"):
        self.tmpdir = tmpdir
        self.log_level = log_level
        # Its own (empty) configuration file, so a heapwatchd.conf installed on the machine
        # never changes what a test runs.
        self.config_path = os.path.join(tmpdir, "heapwatchd.conf")
        self.socket_path = os.path.join(tmpdir, "agent.sock")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(tmpdir, "heapwatchd.log")
        # Durable history goes to the test's own directory, never /var/lib/heapwatch.
        self.state_dir = os.path.join(tmpdir, "state")
        self.prefix = []  # a wrapper command (e.g. prlimit) before the binary

    def start(self):
        binary = find_binary("heapwatchd", "daemon/heapwatchd")
        self.log = open(self.log_path, "ab")
        if not os.path.exists(self.config_path):
            open(self.config_path, "w").close()
        level = ["--log-level", self.log_level] if self.log_level else []
        self.proc = subprocess.Popen(
            self.valgrind_prefix() + self.prefix + [binary, "--config", self.config_path, "--socket", self.socket_path,
             "--http", "127.0.0.1:%d" % self.port, "--state-dir", self.state_dir] + level + self.extra_args,
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.get("/healthz")[0] == 200, what="heapwatchd to serve /healthz")
        return self

    def valgrind_prefix(self):
        if not VALGRIND:
            return []
        # One log per daemon start (%p): a test may restart the daemon in the same directory.
        return ["valgrind", "--quiet", "--error-exitcode=%d" % VALGRIND_ERROR_EXIT, "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "--track-fds=no",
                "--log-file=" + os.path.join(self.tmpdir, "valgrind-%p.log")]

    def valgrind_report(self):
        """What memcheck said so far, from every daemon started in this directory ('' if nothing)."""
        text = ""
        for name in sorted(os.listdir(self.tmpdir)):
            if name.startswith("valgrind-") and name.endswith(".log"):
                with open(os.path.join(self.tmpdir, name), "rb") as f:
                    text += f.read().decode("utf-8", "replace")
        return text

    def _collect_valgrind(self):
        report = self.valgrind_report() if VALGRIND else ""
        if report and report not in _valgrind_findings:
            _valgrind_findings.append(report)
        return report

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=DEADLINE)
        if self.proc:
            self._collect_valgrind()
            self.log.close()

    def stop(self):
        """SIGTERM and expect a clean exit (under valgrind: also no memory error, no definite leak:
        the exit code is then VALGRIND_ERROR_EXIT and the report is appended to the daemon's log)."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=DEADLINE)
        report = self._collect_valgrind()
        if report:
            self.log.write(b"---- valgrind ----\n" + report.encode())
        self.log.close()
        return rc

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def request(self, path, method="GET", data=None):
        req = urllib.request.Request(self.url + path, method=method, data=data)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get(self, path):
        status, _, body = self.request(path)
        return status, body

    def get_json(self, path):
        status, body = self.get(path)
        return status, json.loads(body.decode("utf-8"))

    def processes(self, state="all"):
        """Every page of the listing (docs/api.md: ?limit=, ?offset=, next_offset)."""
        out, offset = [], 0
        while offset is not None:
            status, doc = self.get_json("/api/v1/processes?state=%s&limit=1000&offset=%d" % (state, offset))
            assert status == 200, (status, doc)
            out += doc["processes"]
            offset = doc.get("next_offset")
        return out

    def find_process(self, pid, state=None):
        for p in self.processes():
            if p["pid"] == pid and (state is None or p["state"] == state):
                return p
        return None

    def metric_value(self, name, **labels):
        """The value of one sample of the /metrics exposition (0 when absent)."""
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            lname, _, lbl = key.partition("{")
            got = ",".join(sorted(lbl.rstrip("}").split(","))) if lbl else ""
            if lname == name and got == want:
                return float(value)
        return 0.0

    def metrics(self):
        status, body = self.get("/metrics")
        assert status == 200
        return body.decode("utf-8")


class Target:
    """A Python program started with `heapwatch run` (no code change), talking to `daemon`."""

    def __init__(self, tmpdir, program, args=(), service="e2e", interval="0.2", socket_path=None,
                 use_cli=True, env=None, programs_dir=PROGRAMS, cgroup_procs=None):
        self.tmpdir = tmpdir
        self.state_path = os.path.join(tmpdir, "%s-%d.state.json" % (os.path.basename(program), id(self)))
        cmd = [TARGET_PYTHON, os.path.join(programs_dir, program), self.state_path] + list(args)
        e = dict(os.environ)
        e.pop("PYTHONPATH", None)
        e.update(env or {})
        sanitizer_env(e)
        if use_cli:
            cli = find_binary("heapwatch", "cli/heapwatch")
            e["HEAPWATCH_AGENT_PATH"] = AGENT_DIR
            cmd = [cli, "run", "--service", service, "--interval", interval, "--socket", socket_path, "--"] + cmd
        else:
            e["PYTHONPATH"] = AGENT_DIR
            e["HEAPWATCH_SOCKET"] = socket_path
            e["HEAPWATCH_SERVICE"] = service
            e["HEAPWATCH_INTERVAL"] = interval
        self.stderr_path = self.state_path + ".stderr"
        self.stderr = open(self.stderr_path, "wb")
        def enter_cgroup():
            # Before exec, so the process is in its cgroup before its agent says HELLO.
            with open(cgroup_procs, "w") as f:
                f.write(str(os.getpid()))
        self.proc = subprocess.Popen(cmd, env=e, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     preexec_fn=enter_cgroup if cgroup_procs else None)
        self.pid = self.proc.pid

    def state(self):
        """What the program reports about itself (it writes this file atomically)."""
        try:
            with open(self.state_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_state(self, predicate=lambda s: True, what="program state"):
        return wait_for(lambda: (lambda s: s if s and predicate(s) else None)(self.state()), what=what)

    def command(self, text):
        """Programs poll <state>.cmd for instructions ("exit", "stop", "fork", ...)."""
        write_command(self.state_path, text)

    def wait(self, timeout=DEADLINE):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            sys.stderr.write("---- %s did not exit within %.0fs: its threads and its children's ----\n%s\n"
                             % (self.pid, timeout, process_diagnostics(self.pid)))
            raise
        self.stderr.close()
        return rc

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.stderr.closed:
            self.stderr.close()


class TmpDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="hw-e2e-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


class DaemonTestCase(unittest.TestCase):
    """A test with its own directory and daemon; its targets are killed and the daemon must stop
    cleanly (exit 0: under valgrind, no memory error and no definite leak) at the end. On
    failure the daemon's log and the targets' stderr are printed."""

    target_interval = "0.2"

    def setUp(self):
        self._tmp = TmpDir()
        self.tmp = self._tmp.__enter__()
        self.daemon = Daemon(self.tmp).start()
        self.targets = []
        self._failures_before = self._failures()

    def tearDown(self):
        for t in self.targets:
            t.kill()
        if self.daemon.proc and self.daemon.proc.poll() is None:
            rc = self.daemon.stop()
            self.assertEqual(rc, 0, "heapwatchd did not exit cleanly on SIGTERM:\n" + self.daemon.logs())
        if self._failures() > self._failures_before:
            sys.stderr.write("---- heapwatchd log ----\n" + self.daemon.logs())
            for t in self.targets:
                sys.stderr.write("---- target stderr ----\n" + t.stderr_text())
        self._tmp.__exit__(None, None, None)

    def _failures(self):
        outcome = getattr(self, "_outcome", None)
        errors = getattr(outcome, "errors", None)
        if errors is None:  # Python 3.11+: one result for every test, so count this one's
            result = getattr(outcome, "result", None)
            return len(result.failures) + len(result.errors) if result else 0
        return sum(1 for _, exc in errors if exc)

    def start_target(self, program, **kw):
        kw.setdefault("socket_path", self.daemon.socket_path)
        kw.setdefault("interval", self.target_interval)
        t = Target(self.tmp, program, **kw)
        self.targets.append(t)
        return t

    def wait_process(self, pid, predicate=lambda p: True, what=None):
        return wait_for(lambda: (lambda p: p if p and predicate(p) else None)(self.daemon.find_process(pid)),
                        what=what or "process %d in /api/v1/processes" % pid)

    def restart_daemon(self):
        """A new daemon on the same socket, port and state directory (after a kill)."""
        d = Daemon(self.tmp)
        d.socket_path = self.daemon.socket_path
        d.port = self.daemon.port
        d.url = self.daemon.url
        self.daemon = d.start()
        return self.daemon
