/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the built heapwatch binary: subcommand dispatch and exit codes,
 * `heapwatch run` (environment handed to the program, exec without a lingering parent, exit
 * status and signals passed through, 126/127/2 failures, a real python3 loading the
 * bootstrap when one is installed) and `heapwatch status` against a forked one-shot HTTP
 * server. No shell in the test itself: the binary is started with fork/execve.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "run.h"

#ifndef HEAPWATCH_BINARY
#error "HEAPWATCH_BINARY must point at the built heapwatch"
#endif
#define HW HEAPWATCH_BINARY

static char agent_dir[PATH_MAX];   /* a fake agent: sitecustomize.py only */
static char empty_dir[PATH_MAX];   /* a directory without sitecustomize.py */

typedef struct Result {
        pid_t pid;
        int status;
        char *out, *err;
} Result;

static void result_clear(Result *r) {
        free(r->out);
        free(r->err);
}

static char *read_all(int fd) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        char chunk[4096];
        ssize_t n;

        ck_assert_ptr_nonnull(f);
        while ((n = read(fd, chunk, sizeof chunk)) > 0)
                fwrite(chunk, 1, (size_t) n, f);
        fclose(f);
        close(fd);
        return buf;
}

/* Run heapwatch with argv (argv[0] is ignored) and exactly the environment env (NULL-ended)
 * plus PATH. Outputs are small, so reading stdout before stderr cannot deadlock. */
static void run_hw(char *const argv[], char *const env[], Result *ret) {
        int out[2], err[2];
        char *envp[32];
        _cleanup_free_ char *path = NULL;
        size_t n = 0;

        ck_assert_int_ge(asprintf(&path, "PATH=%s", getenv("PATH") ?: "/usr/bin:/bin"), 0);
        envp[n++] = path;
        for (size_t i = 0; env && env[i]; i++) {
                ck_assert_uint_lt(n, ELEMENTSOF(envp) - 1);
                envp[n++] = env[i];
        }
        envp[n] = NULL;

        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);

        ret->pid = fork();
        ck_assert_int_ge(ret->pid, 0);
        if (ret->pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                /* The test runner's SIGTERM handler must not follow into the program. */
                signal(SIGTERM, SIG_DFL);
                execve(HW, argv, envp);
                _exit(99);
        }
        close(out[1]);
        close(err[1]);
        ret->out = read_all(out[0]);
        ret->err = read_all(err[0]);
        ck_assert_int_eq(waitpid(ret->pid, &ret->status, 0), ret->pid);
}

static void assert_exit(const Result *r, int code) {
        ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == code,
                      "expected exit %d, got status 0x%x; stderr: %s", code, r->status, r->err);
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode) {
        _cleanup_free_ char *p = NULL;
        FILE *f;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(chmod(p, mode), 0);
}

static void setup(void) {
        char a[] = "/tmp/heapwatch-test-agent.XXXXXX", e[] = "/tmp/heapwatch-test-empty.XXXXXX";

        ck_assert_ptr_nonnull(mkdtemp(a));
        ck_assert_ptr_nonnull(mkdtemp(e));
        /* realpath: what heapwatch itself will put on PYTHONPATH. */
        ck_assert_ptr_nonnull(realpath(a, agent_dir));
        ck_assert_ptr_nonnull(realpath(e, empty_dir));
        write_file(agent_dir, "sitecustomize.py",
                   "import os, sys\n"
                   "sys.stderr.write('AGENT-LOADED service=%s\\n' % os.environ.get('HEAPWATCH_SERVICE'))\n",
                   0644);
        write_file(agent_dir, "not-executable", "#!/bin/sh\nexit 0\n", 0644);
}

static void remove_in(const char *dir, const char *name) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, name) >= 0)
                unlink(p);
}

static void teardown(void) {
        remove_in(agent_dir, "sitecustomize.py");
        remove_in(agent_dir, "not-executable");
        remove_in(agent_dir, "__pycache__/sitecustomize.cpython-311.pyc");
        remove_in(agent_dir, "__pycache__");
        rmdir(agent_dir);
        rmdir(empty_dir);
}

static char *env_agent(void) {
        static char buf[PATH_MAX + 32];
        snprintf(buf, sizeof buf, "HEAPWATCH_AGENT_PATH=%s", agent_dir);
        return buf;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

START_TEST(test_dispatch) {
        Result r = {};

        run_hw((char *[]) { "heapwatch", "--version", NULL }, NULL, &r);
        assert_exit(&r, 0);
        ck_assert_str_eq(r.out, "heapwatch " PACKAGE_VERSION "\n");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "--help", NULL }, NULL, &r);
        assert_exit(&r, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "Usage: heapwatch COMMAND"));
        ck_assert_ptr_nonnull(strstr(r.out, "\n  run "));
        ck_assert_ptr_nonnull(strstr(r.out, "\n  status "));
        ck_assert_str_eq(r.err, "");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "help", NULL }, NULL, &r);
        assert_exit(&r, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "Usage: heapwatch COMMAND"));
        result_clear(&r);

        /* stdout a full disk: a help or version that could not be written is not a success */
        if (access("/dev/full", W_OK) == 0)
                for (int i = 0; i < 2; i++) {
                        char *argv[] = { (char *) "heapwatch", (char *) (i == 0 ? "--help" : "--version"), NULL };
                        int status;
                        pid_t pid = fork();

                        ck_assert_int_ge(pid, 0);
                        if (pid == 0) {
                                int full = open("/dev/full", O_WRONLY), null = open("/dev/null", O_WRONLY);

                                dup2(full, STDOUT_FILENO);
                                dup2(null, STDERR_FILENO);
                                execv(HW, argv);
                                _exit(99);
                        }
                        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s: status 0x%x", argv[1],
                                      status);
                }

        run_hw((char *[]) { "heapwatch", "help", "run", NULL }, NULL, &r);
        assert_exit(&r, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "Usage: heapwatch run [OPTIONS] -- CMD [ARGS...]"));
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "status", "--help", NULL }, NULL, &r);
        assert_exit(&r, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "Usage: heapwatch status"));
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", NULL }, NULL, &r);
        assert_exit(&r, 2);
        ck_assert_ptr_nonnull(strstr(r.err, "Usage: heapwatch COMMAND"));
        ck_assert_str_eq(r.out, "");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "frobnicate", NULL }, NULL, &r);
        assert_exit(&r, 2);
        ck_assert_str_eq(r.err, "heapwatch: unknown command 'frobnicate'\nTry 'heapwatch --help'.\n");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "leaks", "--help", NULL }, NULL, &r);
        assert_exit(&r, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "Usage: heapwatch leaks"));
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "leaks", "--frob", NULL }, NULL, &r);
        assert_exit(&r, 2);
        ck_assert_str_eq(r.err, "heapwatch: leaks: unknown option '--frob'\nTry 'heapwatch leaks --help'.\n");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "--frob", NULL }, NULL, &r);
        assert_exit(&r, 2);
        ck_assert_str_eq(r.err, "heapwatch: unknown option '--frob'\nTry 'heapwatch --help'.\n");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "help", "frob", NULL }, NULL, &r);
        assert_exit(&r, 2);
        result_clear(&r);
}
END_TEST

/* ---- run ----------------------------------------------------------------------------------- */

START_TEST(test_loads_no_http_library) {
        /* `heapwatch run` starts every process it wraps: libcurl, and the thirty-odd libraries
         * it pulls in, are loaded only by the commands that make a request (cli/http-client.c).
         * With LD_TRACE_LOADED_OBJECTS the dynamic loader lists what it loads and runs nothing. */
        char *argv[] = { "heapwatch", "--version", NULL };
        char *env[] = { "LD_TRACE_LOADED_OBJECTS=1", NULL };
        Result r = {};

        run_hw(argv, env, &r);
        assert_exit(&r, 0);
        ck_assert_msg(strstr(r.out, "libc.so"), "no library list: %s", r.out);
        ck_assert_msg(!strstr(r.out, "libcurl"), "heapwatch links libcurl: %s", r.out);
        result_clear(&r);
}
END_TEST

START_TEST(test_run_environment) {
        _cleanup_free_ char *expected = NULL;
        Result r = {};

        run_hw((char *[]) { "heapwatch", "run", "--service", "billing", "--interval", "2.50", "--socket",
                            "/run/heapwatch/agent.sock", "--", "sh", "-c",
                            "printf '%s|%s|%s|%s' \"$PYTHONPATH\" \"$HEAPWATCH_SERVICE\" \"$HEAPWATCH_INTERVAL\" \"$HEAPWATCH_SOCKET\"",
                            NULL },
               (char *[]) { env_agent(), "PYTHONPATH=/srv/app:/srv/lib", NULL }, &r);
        assert_exit(&r, 0);
        ck_assert_int_ge(asprintf(&expected, "%s:/srv/app:/srv/lib|billing|2.5|/run/heapwatch/agent.sock", agent_dir), 0);
        ck_assert_str_eq(r.out, expected);
        ck_assert_str_eq(r.err, "");
        result_clear(&r);

        /* Without options, what the environment already says stays. */
        run_hw((char *[]) { "heapwatch", "run", "--", "sh", "-c",
                            "printf '%s|%s|%s' \"$PYTHONPATH\" \"$HEAPWATCH_SERVICE\" \"${HEAPWATCH_INTERVAL-unset}\"", NULL },
               (char *[]) { env_agent(), "HEAPWATCH_SERVICE=keep", NULL }, &r);
        assert_exit(&r, 0);
        free(expected);
        ck_assert_int_ge(asprintf(&expected, "%s|keep|unset", agent_dir), 0);
        ck_assert_str_eq(r.out, expected);
        result_clear(&r);
}
END_TEST

START_TEST(test_run_execs) {
        char pid[32];
        Result r = {};

        /* The program has heapwatch's pid: nothing was forked, nothing lingers. */
        run_hw((char *[]) { "heapwatch", "run", "--", "sh", "-c", "echo $$", NULL }, (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 0);
        snprintf(pid, sizeof pid, "%d\n", (int) r.pid);
        ck_assert_str_eq(r.out, pid);
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "run", "--", "sh", "-c", "exit 42", NULL }, (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 42);
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "run", "--", "sh", "-c", "kill -TERM $$", NULL }, (char *[]) { env_agent(), NULL }, &r);
        ck_assert(WIFSIGNALED(r.status));
        ck_assert_int_eq(WTERMSIG(r.status), SIGTERM);
        result_clear(&r);
}
END_TEST

START_TEST(test_run_cannot_exec) {
        _cleanup_free_ char *cmd = NULL, *expected = NULL;
        Result r = {};

        run_hw((char *[]) { "heapwatch", "run", "--", "heapwatch-no-such-command", "x", NULL }, (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 127);
        ck_assert_str_eq(r.err, "heapwatch: cannot run heapwatch-no-such-command: No such file or directory\n");
        ck_assert_str_eq(r.out, "");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "run", "--", "/nonexistent/python3", NULL }, (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 127);
        result_clear(&r);

        ck_assert_int_ge(asprintf(&cmd, "%s/not-executable", agent_dir), 0);
        run_hw((char *[]) { "heapwatch", "run", "--", cmd, NULL }, (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 126);
        ck_assert_int_ge(asprintf(&expected, "heapwatch: cannot run %s: Permission denied\n", cmd), 0);
        ck_assert_str_eq(r.err, expected);
        result_clear(&r);
}
END_TEST

START_TEST(test_run_bad_agent_dir) {
        _cleanup_free_ char *env = NULL, *expected = NULL;
        Result r = {};

        run_hw((char *[]) { "heapwatch", "run", "--", "true", NULL },
               (char *[]) { "HEAPWATCH_AGENT_PATH=/nonexistent/heapwatch", NULL }, &r);
        assert_exit(&r, 2);
        ck_assert_str_eq(r.err, "heapwatch: agent directory /nonexistent/heapwatch (from HEAPWATCH_AGENT_PATH) does not exist\n");
        result_clear(&r);

        ck_assert_int_ge(asprintf(&env, "HEAPWATCH_AGENT_PATH=%s", empty_dir), 0);
        run_hw((char *[]) { "heapwatch", "run", "--", "true", NULL }, (char *[]) { env, NULL }, &r);
        assert_exit(&r, 2);
        ck_assert_int_ge(asprintf(&expected, "heapwatch: agent directory %s (from HEAPWATCH_AGENT_PATH) has no "
                                             "sitecustomize.py; is the heapwatch agent installed there?\n", empty_dir), 0);
        ck_assert_str_eq(r.err, expected);
        result_clear(&r);
}
END_TEST

START_TEST(test_run_usage) {
        Result r = {};

        run_hw((char *[]) { "heapwatch", "run", "python3", "app.py", NULL }, (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 2);
        ck_assert_str_eq(r.err, "heapwatch: run: missing '--' before the command 'python3'\nTry 'heapwatch run --help'.\n");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "run", "--interval", "0", "--", "true", NULL }, (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 2);
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "run", "--help", NULL }, NULL, &r);
        assert_exit(&r, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "--service NAME"));
        result_clear(&r);
}
END_TEST

START_TEST(test_resolve_agent_dir) {
        char cwd[PATH_MAX], *slash;
        _cleanup_free_ char *abs = NULL, *parent = strdup(agent_dir);
        char *none = NULL;

        /* A relative directory comes back absolute. */
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
        slash = strrchr(parent, '/');
        *slash = '\0';
        ck_assert_int_eq(chdir(parent[0] ? parent : "/"), 0);
        ck_assert_int_eq(run_resolve_agent_dir(slash + 1, &abs), 0);
        ck_assert_int_eq(chdir(cwd), 0);
        ck_assert_str_eq(abs, agent_dir);

        ck_assert_int_eq(run_resolve_agent_dir("/nonexistent/heapwatch", &none), -ENOENT);
        ck_assert_int_eq(run_resolve_agent_dir(empty_dir, &none), -ENOPKG);
        ck_assert_int_eq(run_resolve_agent_dir("/etc/passwd", &none), -ENOTDIR);
        ck_assert_ptr_null(none);
}
END_TEST

static bool have_python3(void) {
        _cleanup_free_ char *path = strdup(getenv("PATH") ?: "/usr/bin:/bin");
        char *save = NULL;

        for (char *d = strtok_r(path, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/python3", d);
                if (access(p, X_OK) == 0)
                        return true;
        }
        return false;
}

START_TEST(test_run_python) {
        Result r = {};

        if (!have_python3())
                return; /* the rest of the suite still covers run; e2e tests need python3 anyway */

        run_hw((char *[]) { "heapwatch", "run", "--service", "billing", "--", "python3", "-c",
                            "import sys; print(sys.path[1] if sys.path[0] == '' else sys.path[0])", NULL },
               (char *[]) { env_agent(), NULL }, &r);
        assert_exit(&r, 0);
        ck_assert_str_eq(r.err, "AGENT-LOADED service=billing\n");
        ck_assert_int_eq(strncmp(r.out, agent_dir, strlen(agent_dir)), 0);
        result_clear(&r);
}
END_TEST

/* ---- status -------------------------------------------------------------------------------- */

/* One-shot server: answer the first request with response, report the request line. */
static pid_t serve_once(const char *response, int *ret_port, int *ret_request_fd) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd, p[2];
        pid_t pid;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(listen(fd, 4), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char req[8192];
                size_t n = 0;
                int c = accept(fd, NULL, NULL);

                if (c < 0)
                        _exit(1);
                while (n < sizeof req - 1) {
                        ssize_t k = read(c, req + n, sizeof req - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t) k;
                        req[n] = '\0';
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                req[n] = '\0';
                (void) !write(p[1], req, strcspn(req, "\r"));
                (void) !send(c, response, strlen(response), MSG_NOSIGNAL);
                shutdown(c, SHUT_WR);
                while (read(c, req, sizeof req) > 0)
                        ;
                _exit(0);
        }
        close(fd);
        close(p[1]);
        *ret_port = ntohs(sa.sin_port);
        *ret_request_fd = p[0];
        return pid;
}

static void status_against(const char *response, char *const extra_argv[], char *const env[], Result *r, char **ret_request) {
        char *argv[16] = { "heapwatch", "status", "--url" };
        char url[64];
        size_t n = 3;
        int port, reqfd, st;
        pid_t pid;

        pid = serve_once(response, &port, &reqfd);
        snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
        argv[n++] = url;
        for (size_t i = 0; extra_argv && extra_argv[i]; i++)
                argv[n++] = extra_argv[i];
        argv[n] = NULL;

        run_hw(argv, env, r);
        kill(pid, SIGKILL);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        *ret_request = read_all(reqfd);
}

static char *response(const char *status_line, const char *body) {
        char *s;
        ck_assert_int_ge(asprintf(&s, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                                      "Connection: close\r\n\r\n%s", status_line, strlen(body), body), 0);
        return s;
}

START_TEST(test_status_table) {
        static const char body[] =
                "{\"processes\": [{\"id\": \"4242-1234567\", \"pid\": 4242, \"service\": \"billing\","
                " \"argv\": [\"python3\", \"app.py\"], \"state\": \"live\", \"samples\": 66,"
                " \"rss_bytes\": 31457280, \"python_allocated_blocks\": 61234}]}";
        _cleanup_free_ char *ok = response("200 OK", body), *request = NULL;
        Result r = {};

        status_against(ok, NULL, NULL, &r, &request);
        assert_exit(&r, 0);
        ck_assert_str_eq(request, "GET /api/v1/processes?state=live&limit=1000 HTTP/1.1");
        ck_assert_str_eq(r.out,
                "ID             PID  SERVICE  STATE       RSS  PY BLOCKS  SAMPLES  AGE  LAST  COMMAND\n"
                "4242-1234567  4242  billing  live   30.0 MiB      61234       66    -     -  python3 app.py\n");
        ck_assert_str_eq(r.err, "");
        result_clear(&r);
        free(request);

        status_against(ok, (char *[]) { "--all", "--json", NULL }, NULL, &r, &request);
        assert_exit(&r, 0);
        ck_assert_str_eq(request, "GET /api/v1/processes?state=all&limit=1000 HTTP/1.1");
        ck_assert_int_eq(strncmp(r.out, body, strlen(body)), 0);
        ck_assert_str_eq(r.out + strlen(body), "\n");
        result_clear(&r);
}
END_TEST

START_TEST(test_status_errors) {
        _cleanup_free_ char *bad = response("400 Bad Request", "{\"error\": \"bad state \\u001b[2J x\"}\n");
        _cleanup_free_ char *html = response("200 OK", "<html>hi</html>");
        _cleanup_free_ char *request = NULL;
        char *port_end;
        Result r = {};

        status_against(bad, (char *[]) { "--exited", NULL }, NULL, &r, &request);
        assert_exit(&r, 1);
        ck_assert_str_eq(request, "GET /api/v1/processes?state=exited&limit=1000 HTTP/1.1");
        ck_assert_int_eq(strncmp(r.err, "heapwatch: heapwatchd at http://127.0.0.1:", 42), 0);
        port_end = strchr(r.err + 42, ' ');
        ck_assert_str_eq(port_end, " answered HTTP 400: bad state ?[2J x\n");
        ck_assert_str_eq(r.out, "");
        result_clear(&r);
        free(request);

        status_against(html, NULL, NULL, &r, &request);
        assert_exit(&r, 1);
        ck_assert_ptr_nonnull(strstr(r.err, ": not a heapwatchd process list\n"));
        result_clear(&r);

        /* Nobody listening: bind a port, close it, ask there. */
        {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t len = sizeof sa;
                char url[64], prefix[128];
                int fd = socket(AF_INET, SOCK_STREAM, 0);

                ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
                ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
                close(fd);
                snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
                snprintf(prefix, sizeof prefix, "heapwatch: cannot reach heapwatchd at %s: ", url);

                run_hw((char *[]) { "heapwatch", "status", "--url", url, NULL }, NULL, &r);
                assert_exit(&r, 1);
                ck_assert_int_eq(strncmp(r.err, prefix, strlen(prefix)), 0);
                result_clear(&r);

                /* HEAPWATCH_URL is the default's override. */
                char env[96];
                snprintf(env, sizeof env, "HEAPWATCH_URL=%s", url);
                run_hw((char *[]) { "heapwatch", "status", NULL }, (char *[]) { env, NULL }, &r);
                assert_exit(&r, 1);
                ck_assert_int_eq(strncmp(r.err, prefix, strlen(prefix)), 0);
                result_clear(&r);
        }

        run_hw((char *[]) { "heapwatch", "status", NULL }, (char *[]) { "HEAPWATCH_URL=ftp://h/", NULL }, &r);
        assert_exit(&r, 2);
        ck_assert_str_eq(r.err, "heapwatch: invalid URL 'ftp://h/' (from HEAPWATCH_URL): must be an http:// or https:// URL\n");
        result_clear(&r);

        run_hw((char *[]) { "heapwatch", "status", "--all", "--exited", NULL }, NULL, &r);
        assert_exit(&r, 2);
        result_clear(&r);
}
END_TEST

static Suite *cli_main_suite(void) {
        Suite *s = suite_create("cli-main");
        TCase *tc;

        tc = tcase_create("dispatch");
        tcase_add_test(tc, test_dispatch);
        suite_add_tcase(s, tc);

        tc = tcase_create("run");
        tcase_add_unchecked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_loads_no_http_library);
        tcase_add_test(tc, test_run_environment);
        tcase_add_test(tc, test_run_execs);
        tcase_add_test(tc, test_run_cannot_exec);
        tcase_add_test(tc, test_run_bad_agent_dir);
        tcase_add_test(tc, test_run_usage);
        tcase_add_test(tc, test_resolve_agent_dir);
        tcase_add_test(tc, test_run_python);
        suite_add_tcase(s, tc);

        tc = tcase_create("status");
        tcase_add_test(tc, test_status_table);
        tcase_add_test(tc, test_status_errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(cli_main_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
