#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of heapwatchd as a systemd service, without needing systemd as PID 1: the
daemon started by `systemd-socket-activate` takes the activated agent socket (and HTTP socket)
by name and receives a real agent through it; readiness, status, watchdog, reload and stopping
messages arrive on a NOTIFY_SOCKET this test listens on (READY=1 only once the agent socket and
HTTP answer); a configuration with a typo is refused at start with file:line; SIGHUP applies a
new log level from the file (and a bad file on reload keeps the running configuration); the
journal is used natively when JOURNAL_STREAM names stderr. The unit files pass
`systemd-analyze verify` and score "OK" in `systemd-analyze security --offline=true`."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hwtest import (Daemon, Target, TmpDir, find_binary, free_port, wait_for, DEADLINE,  # noqa: E402
                    TOP_SRCDIR, TOP_BUILDDIR)


class Notify:
    """A NOTIFY_SOCKET: a datagram socket collecting what the daemon tells its manager."""

    def __init__(self, tmpdir):
        self.path = os.path.join(tmpdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []  # (monotonic time, {key: value})

    def poll(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait(self, key, value=None, after=0, what=None):
        """Wait for a message (index >= after) with key (=value); return its index."""
        def found():
            self.poll()
            for i, (_, m) in enumerate(self.messages[after:], after):
                if key in m and (value is None or m[key] == value):
                    return i + 1
            return None
        return wait_for(found, what=what or "%s=%s on NOTIFY_SOCKET" % (key, value or "...")) - 1

    def close(self):
        self.sock.close()


def heapwatchd():
    return find_binary("heapwatchd", "daemon/heapwatchd")


def http_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False


class SystemdTest(unittest.TestCase):
    def setUp(self):
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def spawn(self, argv, tmp, env=None):
        log = open(os.path.join(tmp, "heapwatchd.log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.procs.append(p)
        return p

    def log_text(self, tmp):
        with open(os.path.join(tmp, "heapwatchd.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_socket_activation_readiness_watchdog(self):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        with TmpDir() as tmp:
            notify = Notify(tmp)
            conf = os.path.join(tmp, "heapwatchd.conf")
            open(conf, "w").close()
            agent_sock = os.path.join(tmp, "activated.sock")
            port = free_port()
            # The daemon's own --socket path must stay unused: the activated one is taken.
            unused = os.path.join(tmp, "unused.sock")
            argv = ["systemd-socket-activate", "-l", agent_sock, "-l", "127.0.0.1:%d" % port,
                    "--fdname=agent:http",
                    "-E", "NOTIFY_SOCKET=" + notify.path, "-E", "WATCHDOG_USEC=1000000",
                    heapwatchd(), "--config", conf, "--socket", unused, "--no-http",
                    "--state-dir", os.path.join(tmp, "state"), "--log-level", "debug"]
            p = self.spawn(argv, tmp)
            wait_for(lambda: os.path.exists(agent_sock), what="systemd-socket-activate to listen")
            # systemd-socket-activate execs heapwatchd on the first connection: the agent's.
            t = Target(tmp, "steady.py", socket_path=agent_sock, service="activated")
            try:
                ready = notify.wait("READY", "1")
                self.assertTrue(http_ok(port), "READY=1 before HTTP answers")
                daemon = Daemon(tmp)
                daemon.port = port
                daemon.url = "http://127.0.0.1:%d" % port
                proc = wait_for(lambda: daemon.find_process(t.pid), what="the agent through the activated socket")
                self.assertEqual(proc["service"], "activated")
                self.assertFalse(os.path.exists(unused), "heapwatchd bound its own socket despite activation")
                log = self.log_text(tmp)
                self.assertIn("socket-activated", log)
                self.assertIn("Service watchdog enabled", log)
                # STATUS= follows the number of agents.
                notify.wait("STATUS", "1 agent(s) connected, 0 leak(s) open.", what="STATUS with one agent")
                # The watchdog: WATCHDOG=1 at least twice, at about half of WATCHDOG_USEC.
                first = notify.wait("WATCHDOG", "1", after=ready)
                second = notify.wait("WATCHDOG", "1", after=first + 1)
                gap = notify.messages[second][0] - notify.messages[first][0]
                self.assertLess(gap, 1.0, "watchdog pings further apart than WATCHDOG_USEC")
                # Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
                p.send_signal(signal.SIGHUP)
                i = notify.wait("RELOADING", "1", after=second)
                now_usec = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
                self.assertLess(abs(int(notify.messages[i][1]["MONOTONIC_USEC"]) - now_usec), 60e6)
                notify.wait("READY", "1", after=i + 1)
            finally:
                t.kill()
            p.send_signal(signal.SIGTERM)
            notify.wait("STOPPING", "1")
            self.assertEqual(p.wait(timeout=DEADLINE), 0)
            notify.close()

    def test_activated_socket_of_the_wrong_type_refused(self):
        """A socket unit passing the agent socket as something else than a listening Unix stream
        socket (ListenSequentialPacket= by mistake) was warned about and ignored: the daemon
        then bound its own socket at the same path, replacing the unit's file, and nothing could
        connect while the daemon was down (found by review). It refuses to start instead, and
        the unit's socket stays."""
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        with TmpDir() as tmp:
            conf = os.path.join(tmp, "heapwatchd.conf")
            open(conf, "w").close()
            agent_sock = os.path.join(tmp, "activated.sock")
            p = self.spawn(["systemd-socket-activate", "--seqpacket", "-l", agent_sock, "--fdname=agent",
                            heapwatchd(), "--config", conf, "--socket", agent_sock, "--no-http", "--no-store"], tmp)
            wait_for(lambda: os.path.exists(agent_sock), what="systemd-socket-activate to listen")
            inode = os.stat(agent_sock).st_ino
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(agent_sock)  # systemd-socket-activate execs heapwatchd now
            try:
                self.assertNotEqual(p.wait(timeout=DEADLINE), 0)
            finally:
                s.close()
            self.assertIn("named 'agent' is not a listening Unix stream socket", self.log_text(tmp))
            self.assertEqual(os.stat(agent_sock).st_ino, inode)

    def test_ready_after_listening_when_binding_itself(self):
        with TmpDir() as tmp:
            notify = Notify(tmp)
            d = Daemon(tmp)
            env = dict(os.environ, NOTIFY_SOCKET=notify.path)
            env.pop("LISTEN_FDS", None)
            open(d.config_path, "w").close()
            p = self.spawn([heapwatchd(), "--config", d.config_path, "--socket", d.socket_path,
                            "--http", "127.0.0.1:%d" % d.port, "--state-dir", d.state_dir], tmp, env=env)
            notify.wait("READY", "1")
            # At READY=1 both listeners already exist (no polling: they must be there now).
            self.assertTrue(os.path.exists(d.socket_path))
            self.assertTrue(http_ok(d.port))
            self.assertTrue(os.path.exists(os.path.join(d.state_dir, "history.db")))
            p.send_signal(signal.SIGTERM)
            notify.wait("STOPPING", "1")
            self.assertEqual(p.wait(timeout=DEADLINE), 0)
            notify.close()

    def test_config_typo_refused(self):
        with TmpDir() as tmp:
            conf = os.path.join(tmp, "heapwatchd.conf")
            with open(conf, "w") as f:
                f.write("# test\n[heapwatchd]\nlog-levl = debug\n")
            r = subprocess.run([heapwatchd(), "--config", conf, "--no-http", "--no-store",
                                "--socket", os.path.join(tmp, "a.sock")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               timeout=DEADLINE)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("%s:3: unknown key 'log-levl'" % conf, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "a.sock")))
            with open(conf, "w") as f:
                f.write("[heapwatchd]\nmax-connections = 0\n")
            r = subprocess.run([heapwatchd(), "--config", conf, "--no-http", "--no-store"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               timeout=DEADLINE)
            self.assertEqual(r.returncode, 2)
            self.assertIn("%s:2: max-connections must be an integer in 1..1000000" % conf, r.stderr)
            # Under a service the same error is an error to the journal ("<3>" on a stderr that
            # is not the journal's own socket): `journalctl -p err` showed nothing of why the
            # service did not start (found by review).
            env = dict(os.environ, INVOCATION_ID="0123456789abcdef0123456789abcdef", JOURNAL_STREAM="1:1")
            r = subprocess.run([heapwatchd(), "--config", conf, "--no-http", "--no-store"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               timeout=DEADLINE)
            self.assertEqual(r.returncode, 2)
            self.assertRegex(r.stderr, re.compile(r"^<3>Bad configuration: %s:2: max-connections" % re.escape(conf),
                                                  re.M))

    def test_sighup_applies_log_level(self):
        with TmpDir() as tmp:
            d = Daemon(tmp, log_level=None)
            with open(d.config_path, "w") as f:
                f.write("[heapwatchd]\nlog-level = info\n")
            d.start()
            try:
                # At info, an agent leaving is not logged (a debug line).
                t = Target(tmp, "steady.py", socket_path=d.socket_path, service="before")
                wait_for(lambda: d.find_process(t.pid), what="first agent")
                t.kill()
                wait_for(lambda: d.find_process(t.pid, state="exited"), what="first agent to exit")
                self.assertNotIn("disconnected", d.logs())

                with open(d.config_path, "w") as f:
                    f.write("[heapwatchd]\nlog-level = debug\nhistory-points = 20\n"
                            "detect-min-bytes-per-hour = 2048\nexited-retention = 120\n"
                            "store-tiers = 10s:1d,1m:7d,10m:90d\n")
                d.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "Configuration reloaded" in d.logs(), what="the reload")
                self.assertIn("applied: log-level detection exited-retention store-retention.", d.logs())
                self.assertIn("history-points cannot change while running", d.logs())
                t = Target(tmp, "steady.py", socket_path=d.socket_path, service="after")
                wait_for(lambda: d.find_process(t.pid), what="second agent")
                t.kill()
                wait_for(lambda: "Agent %s" % d.find_process(t.pid)["id"] in d.logs() and
                         "disconnected" in d.logs(), what="a debug line after the reload")

                # Tiers of another resolution need a restart: said, and the rest applies.
                with open(d.config_path, "w") as f:
                    f.write("[heapwatchd]\nlog-level = debug\nstore-tiers = 5s:1d\n")
                d.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "resolutions or number; that needs a restart" in d.logs(), what="tiers refused live")

                # A bad file on reload: refused with file:line, the running settings stay.
                with open(d.config_path, "w") as f:
                    f.write("[heapwatchd]\nlog-level = chatty\n")
                d.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: "Reload failed" in d.logs(), what="the refused reload")
                self.assertIn("%s:2: log-level must be one of" % d.config_path, d.logs())
                self.assertEqual(d.get("/healthz")[0], 200)
            finally:
                self.assertEqual(d.stop(), 0)

    def test_reload_keeps_the_configuration_when_its_file_is_gone(self):
        """Under systemd the file is found through $CONFIGURATION_DIRECTORY, so a missing one
        means the defaults at start. A file that was read and is gone at a reload (moved away
        while being edited) is refused: the defaults would have dropped the HTTP token and
        shortened the retentions. A file that turns up later is read, and held to that too."""
        with TmpDir() as tmp:
            confdir = os.path.join(tmp, "conf")
            os.mkdir(confdir)
            conf = os.path.join(confdir, "heapwatchd.conf")
            token = os.path.join(tmp, "token")
            with open(token, "w") as f:
                f.write("a-token-of-32-characters-or-more-0123\n")
            os.chmod(token, 0o600)
            port = free_port()
            env = dict(os.environ, CONFIGURATION_DIRECTORY=confdir)
            p = self.spawn([heapwatchd(), "--socket", os.path.join(tmp, "agent.sock"), "--http",
                            "127.0.0.1:%d" % port, "--no-store", "--log-level", "debug"], tmp, env)
            wait_for(lambda: http_ok(port), what="HTTP up")
            self.assertEqual(self.status(port, "/metrics"), 200)  # no file: the defaults

            with open(conf, "w") as f:
                f.write("[heapwatchd]\nhttp-token-file = %s\n" % token)
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: self.status(port, "/metrics") == 401, what="the token required after a reload")

            os.rename(conf, conf + ".moved")
            p.send_signal(signal.SIGHUP)
            wait_for(lambda: "Reload failed" in self.log_text(tmp), what="the refused reload")
            self.assertIn("%s is gone" % conf, self.log_text(tmp))
            self.assertEqual(self.status(port, "/metrics"), 401)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=DEADLINE), 0)

    def status(self, port, path):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
        try:
            c.request("GET", path)
            return c.getresponse().status
        finally:
            c.close()

    def failing_start(self, tmp, env, stderr):
        conf = os.path.join(tmp, "empty.conf")
        open(conf, "w").close()
        # A socket path under a regular file cannot be bound: an error at start.
        return subprocess.run([heapwatchd(), "--config", conf, "--socket", "/dev/null/a.sock", "--no-http",
                               "--no-store"], stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                              timeout=DEADLINE)

    def test_journal_when_stderr_is_the_journal(self):
        # JOURNAL_STREAM naming stderr's device:inode: entries go to the journal natively (or,
        # with no journald listening, to stderr with "<N>" so nothing is lost).
        with TmpDir() as tmp:
            path = os.path.join(tmp, "err")
            with open(path, "wb") as f:
                st = os.fstat(f.fileno())
                env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
                r = self.failing_start(tmp, env, f)
            self.assertNotEqual(r.returncode, 0)
            with open(path) as f:
                err = f.read()
            if os.access("/run/systemd/journal/socket", os.W_OK):
                self.assertNotIn("/dev/null/a.sock", err, "logged to stderr although it is the journal")
            else:
                self.assertRegex(err, re.compile(r"^<3>.*/dev/null/a\.sock", re.M))

    def test_stderr_priority_prefixes_under_a_service(self):
        # Under a service manager whose stderr is not the journal (JOURNAL_STREAM inherited and
        # stale): plain stderr with "<N>" prefixes.
        with TmpDir() as tmp:
            env = dict(os.environ, INVOCATION_ID="0123456789abcdef0123456789abcdef", JOURNAL_STREAM="1:1")
            r = self.failing_start(tmp, env, subprocess.PIPE)
            self.assertNotEqual(r.returncode, 0)
            self.assertRegex(r.stderr.decode(), re.compile(r"^<3>.*/dev/null/a\.sock", re.M))


class UnitFilesTest(unittest.TestCase):
    """The installed units, checked by systemd's own tools."""

    def units(self, tmp):
        # The .service is generated at build time (paths substituted).
        service = os.path.join(TOP_BUILDDIR, "systemd", "heapwatchd.service")
        socket_unit = os.path.join(TOP_SRCDIR, "systemd", "heapwatchd.socket")
        self.assertTrue(os.path.exists(service), "systemd/heapwatchd.service not built")
        for u in (service, socket_unit):
            shutil.copy(u, tmp)
        # verify wants ExecStart= to exist: point it at the built binary.
        path = os.path.join(tmp, "heapwatchd.service")
        with open(path) as f:
            text = f.read()
        text = re.sub(r"^ExecStart=\S+", "ExecStart=" + heapwatchd(), text, flags=re.M)
        with open(path, "w") as f:
            f.write(text)
        return path, os.path.join(tmp, "heapwatchd.socket")

    def test_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze not installed")
        with TmpDir() as tmp:
            service, socket_unit = self.units(tmp)
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", service, socket_unit],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=120)
            # Only complaints about our own units count (the host's units may have their own).
            ours = [l for l in r.stdout.splitlines() if "heapwatchd" in l]
            self.assertEqual(ours, [], r.stdout)

    def test_the_socket_units_directory_stays_public(self):
        """heapwatchd.socket makes /run/heapwatch and the agent socket for every user's agents.
        With DynamicUser=, a RuntimeDirectory= the service preserves is private to systemd: it
        moves the socket unit's directory under /run/private (0700) behind a symlink at the
        service's start, and every agent not running as root gets EACCES at its next connect
        (systemd's own TEST-34 checks that move; the unit had it). Without Preserve= systemd
        would delete the socket at every stop. So the service declares no RuntimeDirectory= for
        the socket unit's directory."""
        with TmpDir() as tmp:
            service, socket_unit = self.units(tmp)
            with open(service) as f:
                directives = dict(l.split("=", 1) for l in f.read().splitlines() if re.match(r"^[A-Za-z]+=", l))
            with open(socket_unit) as f:
                listen = re.search(r"^ListenStream=(/\S+)$", f.read(), re.M).group(1)
            self.assertEqual(directives.get("DynamicUser"), "yes")
            runtime = directives.get("RuntimeDirectory", "").split()
            self.assertNotIn(os.path.basename(os.path.dirname(listen)), runtime, directives)

    def test_security_score(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze not installed")
        help_text = subprocess.run(["systemd-analyze", "security", "--help"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True).stdout
        if "--offline" not in help_text:
            self.skipTest("systemd-analyze security lacks --offline (systemd < 250)")
        with TmpDir() as tmp:
            service, _ = self.units(tmp)
            r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", service],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=120)
            m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", r.stdout)
            self.assertIsNotNone(m, r.stdout)
            self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)
            self.assertEqual(m.group(2), "OK")


if __name__ == "__main__":
    unittest.main()
