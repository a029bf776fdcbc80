#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of zero-code rollout to a host's Python services: under Debian's gunicorn
(3 sync workers, with and without --preload) started through `heapwatch run`, the master and
every worker are their own process records, each worker with the master as parent (ppid and
parent_id); workers recycled by --max-requests end cleanly ("exit") in the history while new
ones take their place; multiprocessing with fork and with spawn likewise. The installed
autoload hook (heapwatch-autoload.pth in a site directory) loads the agent when HEAPWATCH=1 and
leaves the interpreter untouched otherwise."""
import os
import shutil
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hwtest import (AGENT_DIR, DEADLINE, PROGRAMS, TARGET_PYTHON, TOP_SRCDIR, Daemon, Target,  # noqa: E402
                    TmpDir, find_binary, free_port, sanitizer_env, wait_for)

GUNICORN = shutil.which("gunicorn")


def gunicorn_python():
    """gunicorn runs under the interpreter of its #! line; the agent must be built for that one."""
    with open(GUNICORN) as f:
        line = f.readline()
    return line[2:].strip().split()[0] if line.startswith("#!") else None


def get(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2) as r:
        return r.read()


class RolloutTest(unittest.TestCase):
    def live(self, d, service):
        return [p for p in d.processes("live") if p["service"] == service]

    def start_gunicorn(self, tmp, d, service, extra):
        port = free_port()
        env = sanitizer_env(dict(os.environ, HEAPWATCH_AGENT_PATH=AGENT_DIR))
        env.pop("PYTHONPATH", None)
        cmd = [find_binary("heapwatch", "cli/heapwatch"), "run", "--service", service, "--interval", "0.2",
               "--socket", d.socket_path, "--", GUNICORN, "--bind", "127.0.0.1:%d" % port,
               "--chdir", PROGRAMS, "--worker-class", "sync", "--graceful-timeout", "5"] + extra + ["wsgi_app:app"]
        log = open(os.path.join(tmp, "gunicorn-%s.log" % service), "wb")
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.addCleanup(self.stop_gunicorn, p)
        return p, port

    def stop_gunicorn(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def check_family(self, d, service, master_pid, workers):
        """The master plus exactly `workers` live workers, each the master's child."""
        def family():
            procs = self.live(d, service)
            return procs if len(procs) == workers + 1 else None
        procs = wait_for(family, what="%d live %s processes" % (workers + 1, service))
        masters = [p for p in procs if p["pid"] == master_pid]
        self.assertEqual(len(masters), 1, procs)
        master = masters[0]
        kids = [p for p in procs if p is not master]
        for k in kids:
            self.assertEqual(k["ppid"], master_pid, k)
            self.assertEqual(k["parent_id"], master["id"], k)
        self.assertEqual(len({k["pid"] for k in kids}), workers)
        return master, kids

    def gunicorn_case(self, service, extra):
        if not GUNICORN:
            self.skipTest("gunicorn not installed (Debian package gunicorn)")
        if os.path.realpath(gunicorn_python() or "") != os.path.realpath(TARGET_PYTHON):
            self.skipTest("gunicorn runs under %s, the agent was built for %s" % (gunicorn_python(), TARGET_PYTHON))
        with TmpDir() as tmp:
            d = Daemon(tmp).start()
            try:
                p, port = self.start_gunicorn(tmp, d, service, ["--workers", "3"] + extra)
                master, kids = self.check_family(d, service, p.pid, 3)
                # The workers serve, and the one that answered is one of those listed.
                body = wait_for(lambda: get(port), what="gunicorn to answer")
                pid, ppid = map(int, body.split())
                self.assertEqual(ppid, p.pid)
                self.assertIn(pid, [k["pid"] for k in kids])
                self.assertIsNone(master["parent_id"])
            finally:
                self.assertEqual(d.stop(), 0)

    def test_gunicorn_3_workers(self):
        self.gunicorn_case("gunicorn", [])

    def test_gunicorn_3_workers_preload(self):
        self.gunicorn_case("gunicorn-preload", ["--preload"])

    def test_gunicorn_max_requests_recycles_cleanly(self):
        if not GUNICORN:
            self.skipTest("gunicorn not installed (Debian package gunicorn)")
        if os.path.realpath(gunicorn_python() or "") != os.path.realpath(TARGET_PYTHON):
            self.skipTest("gunicorn runs under %s, the agent was built for %s" % (gunicorn_python(), TARGET_PYTHON))
        with TmpDir() as tmp:
            d = Daemon(tmp).start()
            try:
                p, port = self.start_gunicorn(tmp, d, "recycled", ["--workers", "2", "--max-requests", "2"])
                _, first = self.check_family(d, "recycled", p.pid, 2)
                first_pids = {k["pid"] for k in first}

                def recycled():
                    get(port)
                    ended = [x for x in d.processes("exited") if x["service"] == "recycled"]
                    return ended if len(ended) >= 2 else None
                ended = wait_for(recycled, what="workers recycled after max_requests")
                for x in ended:
                    self.assertEqual(x["exit_reason"], "exit", x)
                    self.assertEqual(x["ppid"], p.pid)
                self.assertTrue({x["pid"] for x in ended} & first_pids)
                # The master lives on with 2 fresh workers.
                self.check_family(d, "recycled", p.pid, 2)
            finally:
                self.assertEqual(d.stop(), 0)

    def multiprocessing_case(self, method):
        with TmpDir() as tmp:
            d = Daemon(tmp).start()
            service = "mp-" + method
            t = Target(tmp, "mp_workers.py", args=(method,), service=service, socket_path=d.socket_path)
            try:
                st = t.wait_state(lambda s: "workers" in s, what="workers started")
                parent = wait_for(lambda: d.find_process(t.pid, "live"), what="the parent")
                for pid in st["workers"]:
                    w = wait_for(lambda: d.find_process(pid, "live"), what="worker %d" % pid)
                    self.assertEqual(w["ppid"], t.pid)
                    self.assertEqual(w["parent_id"], parent["id"])
                    self.assertEqual(w["service"], service)
                open(t.state_path + ".exit", "w").close()
                done = t.wait_state(lambda s: s.get("done"), what="workers joined")
                self.assertEqual(done["exitcodes"], [0, 0])
                # A spawned child is a whole interpreter that exits normally: final sample and
                # GOODBYE. multiprocessing ends a forked child with os._exit(), which skips atexit
                # and so the agent's goodbye: the daemon sees the connection go (known limit).
                for pid in st["workers"]:
                    w = wait_for(lambda: d.find_process(pid, "exited"), what="worker %d ended" % pid)
                    self.assertEqual(w["exit_reason"], "exit" if method == "spawn" else "connection_lost")
                self.assertEqual(t.wait(), 0)
            finally:
                t.kill()
                self.assertEqual(d.stop(), 0)

    def test_multiprocessing_fork(self):
        self.multiprocessing_case("fork")

    def test_multiprocessing_spawn(self):
        self.multiprocessing_case("spawn")

    def test_autoload_hook(self):
        # A private user site stands in for site-packages: `site` reads .pth files there too.
        with TmpDir() as tmp:
            d = Daemon(tmp).start()
            try:
                ver = subprocess.check_output([TARGET_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                              universal_newlines=True).strip()
                site = os.path.join(tmp, "userbase", "lib", "python" + ver, "site-packages")
                os.makedirs(site)
                for f in ("heapwatch-autoload.pth", "_heapwatch_autoload.py"):
                    shutil.copy(os.path.join(TOP_SRCDIR, "agent", "autoload", f), site)
                for f in os.listdir(AGENT_DIR):
                    if f.startswith("heapwatch") and f.endswith(".so"):
                        shutil.copy(os.path.join(AGENT_DIR, f), site)
                env = sanitizer_env(dict(os.environ, PYTHONUSERBASE=os.path.join(tmp, "userbase"),
                                         HEAPWATCH_SOCKET=d.socket_path, HEAPWATCH_SERVICE="autoloaded",
                                         HEAPWATCH_INTERVAL="0.2"))
                env.pop("PYTHONPATH", None)
                env.pop("HEAPWATCH", None)
                probe = "import sys; print('heapwatch' in sys.modules, '_heapwatch_autoload' in sys.modules)"
                off = subprocess.run([TARGET_PYTHON, "-c", probe], env=env, stdout=subprocess.PIPE,
                                     universal_newlines=True, timeout=DEADLINE)
                self.assertEqual(off.stdout.split(), ["False", "False"])
                env["HEAPWATCH"] = "1"
                on = subprocess.Popen([TARGET_PYTHON, "-c", probe + "; sys.stdout.flush(); sys.stdin.read()"],
                                      env=env, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                      universal_newlines=True)
                try:
                    self.assertEqual(on.stdout.readline().split(), ["True", "True"])
                    proc = wait_for(lambda: d.find_process(on.pid, "live"), what="the autoloaded agent")
                    self.assertEqual(proc["service"], "autoloaded")
                finally:
                    on.stdin.close()
                    self.assertEqual(on.wait(timeout=DEADLINE), 0)
                self.assertEqual(wait_for(lambda: d.find_process(on.pid, "exited"),
                                          what="a clean end")["exit_reason"], "exit")
            finally:
                self.assertEqual(d.stop(), 0)

    def test_install_puts_the_hook_where_the_interpreter_looks(self):
        """`make install` with docs/operations.md's configure line put the autoload hook in
        /usr/lib/python3.11/site-packages, a directory Debian's python3 never reads: HEAPWATCH=1
        then loaded nothing, silently (found by review). The default is now the first of the
        interpreter's own site directories under the prefix."""
        python = "/usr/bin/python3"
        if not os.path.exists(python):
            self.skipTest("no %s" % python)
        sitedirs = subprocess.check_output([python, "-c", "import site; print('\\n'.join(site.getsitepackages()))"],
                                           universal_newlines=True).split()
        if not [d for d in sitedirs if d.startswith("/usr/lib/")]:
            self.skipTest("%s reads no site directory under /usr/lib" % python)
        with TmpDir() as tmp:
            build, dest = os.path.join(tmp, "build"), os.path.join(tmp, "dest")
            os.mkdir(build)
            r = subprocess.run([os.path.join(TOP_SRCDIR, "configure"), "--prefix=/usr", "--sysconfdir=/etc",
                                "--localstatedir=/var", "PYTHON=" + python], cwd=build, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:])
            # the hook alone (the module needs a build; it goes to the same directory)
            r = subprocess.run(["make", "install-dist_pythonsiteDATA", "DESTDIR=" + dest], cwd=build,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:])
            found = [d for d in sitedirs if os.path.exists(dest + d + "/heapwatch-autoload.pth")]
            self.assertEqual(len(found), 1, "installed under %s, read from %s" % (
                [dp for dp, _, fs in os.walk(dest) if "heapwatch-autoload.pth" in fs], sitedirs))


if __name__ == "__main__":
    unittest.main()
