/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the internal library lib/: the strict number parsers (empty strings, spaces,
 * trailing junk, overflow, "inf"/"nan" text) and parse_listen_address(); proc_parse_stat() on
 * stat lines whose comm holds spaces and parentheses, short or malformed lines, and
 * proc_read_stat() / proc_boot_time() against the real /proc and a fake proc root; log level
 * names, the log line format (prefixes, %m from the given error), and the rate limiter's burst
 * and refill (time is moved by rewinding the limiter's window, never by sleeping).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "fs-util.h"
#include "log.h"
#include "parse-util.h"
#include "proc-util.h"
#include "time-util.h"

/* ---- parse-util ------------------------------------------------------------------------- */

START_TEST(test_parse_double) {
        static const struct {
                const char *s;
                double v;
        } good[] = {
                { "0", 0 }, { "1.5", 1.5 }, { "-2", -2 }, { "1e3", 1000 }, { "+4.25", 4.25 }, { ".5", 0.5 },
                { "1764061251.02", 1764061251.02 }, { "1e308", 1e308 },
        };
        static const struct {
                const char *s;
                int r;
        } bad[] = {
                { "", -EINVAL },       { " ", -EINVAL },      { " 1", -EINVAL },     { "\t1", -EINVAL },
                { "1 ", -EINVAL },     { "1\n", -EINVAL },    { "1x", -EINVAL },     { "1.5.2", -EINVAL },
                { "abc", -EINVAL },    { "-", -EINVAL },      { "1e", -EINVAL },     { "1,5", -EINVAL },
                { "inf", -ERANGE },    { "-inf", -ERANGE },   { "INF", -ERANGE },    { "infinity", -ERANGE },
                { "nan", -ERANGE },    { "NaN", -ERANGE },    { "-nan", -ERANGE },   { "nan(0x1)", -ERANGE },
                { "1e400", -ERANGE },  { "-1e400", -ERANGE }, { "1e-400", -ERANGE }, /* underflow */
        };
        double v;

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                v = -12345;
                ck_assert_msg(parse_double(good[i].s, &v) == 0, "'%s'", good[i].s);
                ck_assert_double_eq(v, good[i].v);
        }
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                v = -12345;
                ck_assert_msg(parse_double(bad[i].s, &v) == bad[i].r, "'%s' -> %d", bad[i].s, parse_double(bad[i].s, &v));
                ck_assert_double_eq(v, -12345); /* untouched */
        }
        ck_assert_int_eq(parse_double(NULL, &v), -EINVAL);
}
END_TEST

/* Configuration numbers: plain decimal only (found by review: "1e-9", "0x1p3" and "+5" were
 * taken for rates and timeouts). */
START_TEST(test_parse_decimal) {
        static const struct {
                const char *s;
                double v;
        } good[] = {
                { "0", 0 }, { "10", 10 }, { "0.5", 0.5 }, { "3600", 3600 }, { "007", 7 }, { "0.005", 0.005 },
                { "1764061251.02", 1764061251.02 }, { "12345678901234567890123456789012", 12345678901234567890123456789012.0 },
        };
        static const char *const bad[] = {
                "", ".5", "5.", "1e3", "1E3", "1e-9", "0x10", "0x1p3", "+5", "-5", "-0", " 5", "5 ", "\t5", "inf",
                "nan", "infinity", "1.5.2", "1,5", "5s", "..", ".", "123456789012345678901234567890123",
        };
        double v;

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                v = -12345;
                ck_assert_msg(parse_decimal(good[i].s, &v) == 0, "'%s'", good[i].s);
                ck_assert_double_eq(v, good[i].v);
        }
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                v = -12345;
                ck_assert_msg(parse_decimal(bad[i], &v) < 0, "'%s' accepted", bad[i]);
                ck_assert_double_eq(v, -12345); /* untouched */
        }
        ck_assert_int_eq(parse_decimal(NULL, &v), -EINVAL);
}
END_TEST

START_TEST(test_parse_int64) {
        int64_t v;

        ck_assert_int_eq(parse_int64("0", &v), 0);
        ck_assert_int_eq(v, 0);
        ck_assert_int_eq(parse_int64("-1", &v), 0);
        ck_assert_int_eq(v, -1);
        ck_assert_int_eq(parse_int64("9223372036854775807", &v), 0);
        ck_assert_int_eq(v, INT64_MAX);
        ck_assert_int_eq(parse_int64("-9223372036854775808", &v), 0);
        ck_assert_int_eq(v, INT64_MIN);
        ck_assert_int_eq(parse_int64("007", &v), 0); /* decimal, not octal */
        ck_assert_int_eq(v, 7);

        v = 42;
        ck_assert_int_eq(parse_int64("9223372036854775808", &v), -ERANGE);
        ck_assert_int_eq(parse_int64("-9223372036854775809", &v), -ERANGE);
        ck_assert_int_eq(parse_int64("99999999999999999999999", &v), -ERANGE);
        ck_assert_int_eq(parse_int64(NULL, &v), -EINVAL);
        ck_assert_int_eq(parse_int64("", &v), -EINVAL);
        ck_assert_int_eq(parse_int64(" 1", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("1 ", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("1.0", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("1e3", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("0x10", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("-", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("--1", &v), -EINVAL);
        ck_assert_int_eq(parse_int64("12abc", &v), -EINVAL);
        ck_assert_int_eq(v, 42);
}
END_TEST

START_TEST(test_parse_uint64) {
        uint64_t v;

        ck_assert_int_eq(parse_uint64("0", &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(parse_uint64("18446744073709551615", &v), 0);
        ck_assert_uint_eq(v, UINT64_MAX);

        v = 42;
        ck_assert_int_eq(parse_uint64("18446744073709551616", &v), -ERANGE);
        /* strtoull() would happily wrap "-1" to UINT64_MAX: refused. */
        ck_assert_int_eq(parse_uint64("-1", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("-0", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("+1", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64(" 1", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("1 ", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64(NULL, &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("1a", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("0x1", &v), -EINVAL);
        ck_assert_int_eq(parse_uint64("1.0", &v), -EINVAL);
        ck_assert_uint_eq(v, 42);
}
END_TEST

START_TEST(test_parse_seconds) {
        double v = -1;

        ck_assert_int_eq(parse_seconds("5", 0, 10, &v), 0);
        ck_assert_double_eq(v, 5);
        ck_assert_int_eq(parse_seconds("0", 0, 10, &v), 0);
        ck_assert_double_eq(v, 0);
        ck_assert_int_eq(parse_seconds("10", 0, 10, &v), 0);
        ck_assert_int_eq(parse_seconds("0.25", 0, 10, &v), 0);
        ck_assert_double_eq(v, 0.25);

        v = -1;
        ck_assert_int_eq(parse_seconds("10.0001", 0, 10, &v), -ERANGE);
        ck_assert_int_eq(parse_seconds("-0.1", 0, 10, &v), -ERANGE);
        ck_assert_int_eq(parse_seconds("0.5", 1, 10, &v), -ERANGE);
        ck_assert_int_eq(parse_seconds("inf", 0, INFINITY, &v), -ERANGE);
        ck_assert_int_eq(parse_seconds("nan", 0, 10, &v), -ERANGE);
        ck_assert_int_eq(parse_seconds("1e400", 0, 10, &v), -ERANGE);
        ck_assert_int_eq(parse_seconds("5s", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_seconds("", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_seconds(" 5", 0, 10, &v), -EINVAL);
        ck_assert_double_eq(v, -1);
}
END_TEST

START_TEST(test_parse_listen_address) {
        char host[64];
        uint16_t port;

        ck_assert_int_eq(parse_listen_address("127.0.0.1:9847", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "127.0.0.1");
        ck_assert_uint_eq(port, 9847);
        ck_assert_int_eq(parse_listen_address("0.0.0.0:65535", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "0.0.0.0");
        ck_assert_uint_eq(port, 65535);
        ck_assert_int_eq(parse_listen_address("[::1]:80", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "::1");
        ck_assert_uint_eq(port, 80);
        ck_assert_int_eq(parse_listen_address("[2001:db8::42]:443", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "2001:db8::42");
        ck_assert_uint_eq(port, 443);
        ck_assert_int_eq(
                parse_listen_address("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:1", host, sizeof host, &port), 0);
        ck_assert_str_eq(host, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");

        /* The host buffer must hold the address and its NUL. */
        {
                char small[10];
                uint16_t p2 = 7;
                memset(small, 'X', sizeof small);
                ck_assert_int_eq(parse_listen_address("127.0.0.1:80", small, 9, &p2), -ENOBUFS);
                ck_assert_uint_eq(p2, 7);
                ck_assert_int_eq(small[0], 'X');
                ck_assert_int_eq(parse_listen_address("127.0.0.1:80", small, 10, &p2), 0);
                ck_assert_str_eq(small, "127.0.0.1");
                ck_assert_int_eq(parse_listen_address("[::1]:80", small, 3, &p2), -ENOBUFS);
                ck_assert_int_eq(parse_listen_address("[::1]:80", small, 4, &p2), 0);
                ck_assert_str_eq(small, "::1");
        }

        /* Failures leave both outputs alone. */
        {
                static const char *const bad[] = {
                        "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:70000", "127.0.0.1:65536", "127.0.0.1:-1",
                        "127.0.0.1:80x", "127.0.0.1: 80", "localhost:80", "::1:80", "[::1]", "[::1]:", "[::1]80",
                        "[::1", "[]:80", "[localhost]:80", "[127.0.0.1]:80", "1.2.3.4.5:80", "", "[::1]:80:80",
                        "127.0.0.1:80:80",
                };
                for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                        strcpy(host, "unchanged");
                        port = 7;
                        ck_assert_msg(parse_listen_address(bad[i], host, sizeof host, &port) == -EINVAL, "'%s'", bad[i]);
                        ck_assert_str_eq(host, "unchanged");
                        ck_assert_uint_eq(port, 7);
                }
                ck_assert_int_eq(parse_listen_address(NULL, host, sizeof host, &port), -EINVAL);
        }

        /* Port 0 (no fixed address to serve on) and signed ports are refused. */
        ck_assert_int_eq(parse_listen_address("127.0.0.1:0", host, sizeof host, &port), -EINVAL);
        ck_assert_int_eq(parse_listen_address("127.0.0.1:+80", host, sizeof host, &port), -EINVAL);
        ck_assert_int_eq(parse_listen_address("127.0.0.1: 80", host, sizeof host, &port), -EINVAL);

        /* An address too long for any real IPv6 text. */
        {
                char buf[200];
                memset(buf, 'f', sizeof buf);
                buf[0] = '[';
                strcpy(buf + 150, "]:80");
                ck_assert_int_eq(parse_listen_address(buf, host, sizeof host, &port), -EINVAL);
        }
}
END_TEST

/* ---- proc-util --------------------------------------------------------------------------- */

/* Fields 3.. of a stat line with ppid (field 4) and starttime (field 22) filled in. */
static void stat_line(char *buf, size_t size, const char *comm, const char *ppid, const char *starttime,
                      const char *tail) {
        snprintf(buf, size,
                 "4242 (%s) S %s 4242 4242 0 -1 4194560 1234 0 0 0 12 3 0 0 20 0 3 0 %s 412090368 7680 "
                 "18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 2 0 0 0 0 0%s",
                 comm, ppid, starttime, tail);
}

START_TEST(test_proc_parse_stat) {
        static const char *const comms[] = {
                "python3", "a b", "(a b) c)", "a) S 1 2 3", ")", "((", "x y z ) ) )", "", "emoji \xf0\x9f\x90\x8d",
        };
        char line[1024];
        pid_t ppid;
        int64_t ticks;

        for (size_t i = 0; i < sizeof comms / sizeof comms[0]; i++) {
                ppid = -5;
                ticks = -5;
                stat_line(line, sizeof line, comms[i], "4200", "1234567", "\n");
                ck_assert_msg(proc_parse_stat(line, &ppid, &ticks) == 0, "comm '%s'", comms[i]);
                ck_assert_int_eq(ppid, 4200);
                ck_assert_int_eq(ticks, 1234567);
        }

        /* No trailing newline; starttime 0; ppid 0 (init, kernel threads' parent). */
        stat_line(line, sizeof line, "init", "0", "0", "");
        ck_assert_int_eq(proc_parse_stat(line, &ppid, &ticks), 0);
        ck_assert_int_eq(ppid, 0);
        ck_assert_int_eq(ticks, 0);

        /* A line that ends right after field 22 is enough. */
        ck_assert_int_eq(proc_parse_stat("1 (x) S 2 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99", &ppid, &ticks), 0);
        ck_assert_int_eq(ppid, 2);
        ck_assert_int_eq(ticks, 99);
        ck_assert_int_eq(proc_parse_stat("1 (x) S 2 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 98\n", &ppid, &ticks), 0);
        ck_assert_int_eq(ticks, 98);
}
END_TEST

START_TEST(test_proc_parse_stat_bad) {
        char line[1024];
        pid_t ppid = -5;
        int64_t ticks = -5;

        static const char *const bad[] = {
                "",
                "\n",
                "4242 python3 S 4200",                                  /* no parentheses */
                "4242 (python3",                                         /* unterminated comm */
                "4242 (python3)",                                        /* nothing after comm */
                "4242 (python3) S",                                      /* no ppid */
                "4242 (python3) S 4200",                                 /* short */
                "1 (x) S 2 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0",         /* 21 fields */
                "1 (x) S 2 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 \n",      /* 21 fields and a newline */
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_msg(proc_parse_stat(bad[i], &ppid, &ticks) == -EBADMSG, "'%s'", bad[i]);

        stat_line(line, sizeof line, "p", "x", "1", "\n"); /* non-numeric ppid */
        ck_assert_int_eq(proc_parse_stat(line, &ppid, &ticks), -EBADMSG);
        stat_line(line, sizeof line, "p", "12abc", "1", "\n");
        ck_assert_int_eq(proc_parse_stat(line, &ppid, &ticks), -EBADMSG);
        stat_line(line, sizeof line, "p", "-1", "1", "\n"); /* negative ppid */
        ck_assert_int_eq(proc_parse_stat(line, &ppid, &ticks), -EBADMSG);
        stat_line(line, sizeof line, "p", "1", "-1", "\n"); /* negative start time */
        ck_assert_int_eq(proc_parse_stat(line, &ppid, &ticks), -EBADMSG);
        stat_line(line, sizeof line, "p", "1", "99999999999999999999", "\n"); /* overflow */
        ck_assert_int_eq(proc_parse_stat(line, &ppid, &ticks), -EBADMSG);
        stat_line(line, sizeof line, "p", "1", "12.5", "\n");
        ck_assert_int_eq(proc_parse_stat(line, &ppid, &ticks), -EBADMSG);

        ck_assert_int_eq(ppid, -5); /* untouched */
        ck_assert_int_eq(ticks, -5);
}
END_TEST

START_TEST(test_proc_read_stat_self) {
        pid_t ppid = -1, pppid = -1;
        int64_t ticks = -1, parent_ticks = -1;
        double boot = 0;

        ck_assert_int_eq(proc_read_stat("/proc", getpid(), &ppid, &ticks), 0);
        ck_assert_int_eq(ppid, getppid());
        ck_assert_int_ge(ticks, 0);
        /* Our parent started no later than we did. */
        ck_assert_int_eq(proc_read_stat("/proc", getppid(), &pppid, &parent_ticks), 0);
        ck_assert_int_le(parent_ticks, ticks);

        ck_assert_int_eq(proc_read_stat("/proc", 0, &ppid, &ticks), -ENOENT);
        ck_assert_int_eq(proc_read_stat("/proc", INT_MAX, &ppid, &ticks), -ENOENT);
        ck_assert_int_eq(proc_read_stat("/nonexistent-proc", getpid(), &ppid, &ticks), -ENOENT);

        ck_assert_int_eq(proc_boot_time("/proc", &boot), 0);
        ck_assert(boot > 946684800.0); /* after 2000 */
        ck_assert(boot <= now_unix());
}
END_TEST

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        fputs(content, f);
        ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_proc_fake_root) {
        char root[] = "/tmp/test-lib-proc.XXXXXX", path[256], line[1024];
        pid_t ppid = -1;
        int64_t ticks = -1;
        double boot = -1;

        ck_assert_ptr_nonnull(mkdtemp(root));

        snprintf(path, sizeof path, "%s/123", root);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/123/stat", root);
        stat_line(line, sizeof line, "(a b) c)", "77", "55555", "\n");
        write_file(path, line);
        ck_assert_int_eq(proc_read_stat(root, 123, &ppid, &ticks), 0);
        ck_assert_int_eq(ppid, 77);
        ck_assert_int_eq(ticks, 55555);
        /* running: there, the same start time, not a zombie (a killed process is one until
         * reaped, and its agent's connection closed before that) */
        ck_assert(proc_still_runs(root, 123, 55555));
        ck_assert(!proc_still_runs(root, 123, 55556));
        ck_assert(!proc_still_runs(root, 999, 55555));
        {
                char *state = strstr(line, ") S ");

                ck_assert_ptr_nonnull(state);
                state[2] = 'Z';
                write_file(path, line);
                ck_assert(!proc_still_runs(root, 123, 55555));
                state[2] = 'S';
                write_file(path, line);
        }

        snprintf(path, sizeof path, "%s/124", root);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/124/stat", root);
        write_file(path, ""); /* e.g. a process that vanished mid-read */
        ck_assert_int_eq(proc_read_stat(root, 124, &ppid, &ticks), -EBADMSG);
        ck_assert_int_eq(proc_read_stat(root, 125, &ppid, &ticks), -ENOENT);
        ck_assert_int_eq(ppid, 77);

        snprintf(path, sizeof path, "%s/stat", root);
        write_file(path, "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1764000000\nprocesses 7\n");
        ck_assert_int_eq(proc_boot_time(root, &boot), 0);
        ck_assert_double_eq(boot, 1764000000.0);
        write_file(path, "cpu  1 2 3 4\nctxt 6\n");
        boot = -1;
        ck_assert_int_eq(proc_boot_time(root, &boot), -EBADMSG);
        ck_assert_double_eq(boot, -1);
        ck_assert_int_eq(proc_boot_time("/nonexistent-proc", &boot), -ENOENT);

        /* Clean up. */
        snprintf(path, sizeof path, "%s/stat", root);
        unlink(path);
        snprintf(path, sizeof path, "%s/123/stat", root);
        unlink(path);
        snprintf(path, sizeof path, "%s/124/stat", root);
        unlink(path);
        snprintf(path, sizeof path, "%s/123", root);
        rmdir(path);
        snprintf(path, sizeof path, "%s/124", root);
        rmdir(path);
        ck_assert_int_eq(rmdir(root), 0);
}
END_TEST

static void mkdirs(const char *root, const char *rel) {
        char path[512], *p;
        snprintf(path, sizeof path, "%s/%s", root, rel);
        for (p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
                *p = '/';
        }
        ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
}

/* The OOM kill counter of a process's memory cgroup: v2 memory.events, else v1
 * memory.oom_control, from a fake /proc and a fake cgroup root. */
START_TEST(test_oom_kill_file) {
        char root[] = "/tmp/test-lib-cg.XXXXXX", proc[128], cg[128], path[512], file[512], want[512];
        int64_t n = -1;

        ck_assert_ptr_nonnull(mkdtemp(root));
        snprintf(proc, sizeof proc, "%s/proc", root);
        snprintf(cg, sizeof cg, "%s/cg", root);

        /* cgroup v2 */
        mkdirs(root, "proc/200");
        snprintf(path, sizeof path, "%s/200/cgroup", proc);
        write_file(path, "0::/app.slice/web.service\n");
        mkdirs(root, "cg/app.slice/web.service");
        snprintf(want, sizeof want, "%s/app.slice/web.service/memory.events", cg);
        write_file(want, "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n");
        ck_assert_int_eq(proc_oom_kill_file(proc, cg, 200, file, sizeof file), 0);
        ck_assert_str_eq(file, want);
        ck_assert_int_eq(oom_kill_read(file, &n), 0);
        ck_assert_int_eq(n, 2);
        /* too small a buffer */
        ck_assert_int_eq(proc_oom_kill_file(proc, cg, 200, file, 8), -ENAMETOOLONG);

        /* a v1 memory hierarchy beside an empty v2 root (hybrid) */
        mkdirs(root, "proc/201");
        snprintf(path, sizeof path, "%s/201/cgroup", proc);
        write_file(path, "5:cpu,cpuacct:/\n4:memory:/box\n0::/\n");
        mkdirs(root, "cg/memory/box");
        snprintf(want, sizeof want, "%s/memory/box/memory.oom_control", cg);
        write_file(want, "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n");
        ck_assert_int_eq(proc_oom_kill_file(proc, cg, 201, file, sizeof file), 0);
        ck_assert_str_eq(file, want);
        ck_assert_int_eq(oom_kill_read(file, &n), 0);
        ck_assert_int_eq(n, 7);

        /* no memory cgroup file anywhere; no such process */
        mkdirs(root, "proc/202");
        snprintf(path, sizeof path, "%s/202/cgroup", proc);
        write_file(path, "0::/nowhere\n1:name=systemd:/x\n");
        ck_assert_int_eq(proc_oom_kill_file(proc, cg, 202, file, sizeof file), -ENOENT);
        ck_assert_int_eq(proc_oom_kill_file(proc, cg, 203, file, sizeof file), -ENOENT);

        /* counters that cannot be read */
        n = -1;
        write_file(want, "oom_kill_disable 0\nunder_oom 0\n");
        ck_assert_int_eq(oom_kill_read(want, &n), -EBADMSG);
        write_file(want, "oom_kill x\n");
        ck_assert_int_eq(oom_kill_read(want, &n), -EBADMSG);
        write_file(want, "oom_kill -1\n");
        ck_assert_int_eq(oom_kill_read(want, &n), -EBADMSG);
        ck_assert_int_eq(n, -1);
        ck_assert_int_eq(oom_kill_read("/nonexistent/memory.events", &n), -ENOENT);

        snprintf(path, sizeof path, "rm -rf '%s'", root);
        ck_assert_int_eq(system(path), 0);
}
END_TEST

/* ---- log --------------------------------------------------------------------------------- */

START_TEST(test_log_level_from_string) {
        static const struct {
                const char *s;
                int level;
        } good[] = {
                { "emerg", LOG_EMERG }, { "alert", LOG_ALERT },     { "crit", LOG_CRIT },     { "err", LOG_ERR },
                { "error", LOG_ERR },   { "warning", LOG_WARNING }, { "warn", LOG_WARNING },  { "notice", LOG_NOTICE },
                { "info", LOG_INFO },   { "debug", LOG_DEBUG },     { "INFO", LOG_INFO },     { "Err", LOG_ERR },
                { "0", 0 },             { "1", 1 },                 { "6", 6 },               { "7", 7 },
        };
        static const char *const bad[] = { "", "8", "9", "-1", "07", "70", "1 ", " 1", "debug ", "inf", "fatal",
                                           "information", "e", "warningx" };

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                ck_assert_msg(log_level_from_string(good[i].s) == good[i].level, "'%s'", good[i].s);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_msg(log_level_from_string(bad[i]) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_int_eq(log_level_from_string(NULL), -EINVAL);
}
END_TEST

/* Run the logging calls with stderr redirected into a temporary file; return what was written. */
static char captured[4096];
static const char *capture_begin_end(int begin) {
        static int saved = -1, fd = -1;
        static char path[] = "/tmp/test-lib-log.XXXXXX";

        if (begin) {
                strcpy(path, "/tmp/test-lib-log.XXXXXX");
                fd = mkstemp(path);
                ck_assert_int_ge(fd, 0);
                fflush(stderr);
                saved = dup(STDERR_FILENO);
                ck_assert_int_ge(saved, 0);
                ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
                return NULL;
        } else {
                ssize_t n;
                ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
                close(saved);
                n = pread(fd, captured, sizeof captured - 1, 0);
                ck_assert_int_ge(n, 0);
                captured[n] = '\0';
                close(fd);
                unlink(path);
                return captured;
        }
}

START_TEST(test_log_output) {
        const char *out;
        int saved_level = log_get_max_level();

        log_set_max_level(LOG_INFO);
        ck_assert_int_eq(log_get_max_level(), LOG_INFO);
        log_set_prefix_priority(false);

        capture_begin_end(1);
        ck_assert_int_eq(log_error_errno(EIO, "open %s: %m", "x"), -EIO);
        ck_assert_int_eq(log_error_errno(-ENOENT, "gone: %m"), -ENOENT); /* either sign */
        ck_assert_int_eq(log_warning("careful"), 0);
        ck_assert_int_eq(log_info("hello %d", 42), 0);
        ck_assert_int_eq(log_debug("not shown"), 0); /* above the max level */
        ck_assert_int_eq(log_debug_errno(EPERM, "not shown either"), -EPERM);
        out = capture_begin_end(0);
        ck_assert_str_eq(out, "error: open x: Input/output error\n"
                              "error: gone: No such file or directory\n"
                              "warning: careful\n"
                              "hello 42\n");

        /* "<N>" prefixes for journald instead of words. */
        log_set_prefix_priority(true);
        log_set_max_level(LOG_DEBUG);
        capture_begin_end(1);
        log_error("e");
        log_notice("n");
        log_debug("d");
        out = capture_begin_end(0);
        ck_assert_str_eq(out, "<3>e\n<5>n\n<7>d\n");

        /* An over-long message is cut, still one line ending in a newline. */
        log_set_prefix_priority(false);
        log_set_max_level(LOG_INFO);
        capture_begin_end(1);
        {
                char big[3000];
                memset(big, 'z', sizeof big - 1);
                big[sizeof big - 1] = '\0';
                log_info("%s", big);
        }
        out = capture_begin_end(0);
        ck_assert_uint_le(strlen(out), 2048);
        ck_assert_int_eq(out[strlen(out) - 1], '\n');
        ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);

        log_set_max_level(saved_level);
}
END_TEST

START_TEST(test_ratelimit) {
        RateLimit rl = RATELIMIT_INIT(3600 * USEC_PER_SEC, 3);

        /* A burst of three, then silence for the rest of the (hour-long) window. */
        ck_assert(ratelimit_below(&rl));
        ck_assert(ratelimit_below(&rl));
        ck_assert(ratelimit_below(&rl));
        for (int i = 0; i < 10; i++)
                ck_assert(!ratelimit_below(&rl));
        ck_assert_uint_eq(rl.suppressed, 10);
        ck_assert_uint_eq(rl.num, 3);

        /* Move the window start back past the interval instead of sleeping: a new burst. */
        rl.begin_usec -= 3600 * USEC_PER_SEC + 1;
        ck_assert(ratelimit_below(&rl));
        ck_assert_uint_eq(rl.num, 1);
        ck_assert(ratelimit_below(&rl));
        ck_assert(ratelimit_below(&rl));
        ck_assert(!ratelimit_below(&rl));
        ck_assert_uint_eq(rl.suppressed, 11);

        /* Half-way through the window it is still closed. */
        {
                RateLimit r2 = RATELIMIT_INIT(3600 * USEC_PER_SEC, 1);
                ck_assert(ratelimit_below(&r2));
                ck_assert(!ratelimit_below(&r2));
                r2.begin_usec -= 1800 * USEC_PER_SEC;
                ck_assert(!ratelimit_below(&r2));
        }

        /* A burst of zero never lets anything through. */
        {
                RateLimit r0 = RATELIMIT_INIT(USEC_PER_SEC, 0);
                for (int i = 0; i < 5; i++)
                        ck_assert(!ratelimit_below(&r0));
                ck_assert_uint_eq(r0.suppressed, 5);
        }
}
END_TEST

/* A LogWriter that records what it gets. */
static char written[16][256];
static size_t n_written;
static char written_fields[256];

static void capture_writer(int level, int error, const char *file, int line, const char *func, const char *message,
                           const char *const *fields, size_t n_fields) {
        if (n_written < 16)
                snprintf(written[n_written], sizeof written[0], "%d %d %s", level, error, message);
        n_written++;
        written_fields[0] = '\0';
        for (size_t i = 0; i < n_fields; i++) {
                strncat(written_fields, fields[i], sizeof written_fields - strlen(written_fields) - 2);
                strcat(written_fields, ";");
        }
}

static void warn_from_one_site(int i) {
        log_warning("the same failure %d", i);
}

START_TEST(test_log_writer_and_site_ratelimit) {
        const char *fields[] = { "MESSAGE_ID=5e1c3b7a9d2f4c60a8e71b04d93f6a2c", "HEAPWATCH_PID=42" };
        int saved_level = log_get_max_level();

        log_set_max_level(LOG_INFO);
        log_set_writer(capture_writer);
        n_written = 0;
        ck_assert_int_eq(log_error_errno(EIO, "failed: %m"), -EIO);
        ck_assert_str_eq(written[0], "3 5 failed: Input/output error");
        log_struct(LOG_NOTICE, fields, 2, "leak in %s", "billing");
        ck_assert_str_eq(written[1], "5 0 leak in billing");
        ck_assert_str_eq(written_fields, "MESSAGE_ID=5e1c3b7a9d2f4c60a8e71b04d93f6a2c;HEAPWATCH_PID=42;");

        /* One call site: LOG_SITE_BURST lines, then silence within the interval. */
        n_written = 0;
        for (int i = 0; i < LOG_SITE_BURST + 5; i++)
                warn_from_one_site(i);
        ck_assert_uint_eq(n_written, LOG_SITE_BURST);
        /* Another site is not affected, and info lines are never limited. */
        log_warning("elsewhere");
        for (int i = 0; i < LOG_SITE_BURST + 5; i++)
                log_info("info %d", i);
        ck_assert_uint_eq(n_written, LOG_SITE_BURST + 1 + LOG_SITE_BURST + 5);

        log_set_writer(NULL);
        log_set_max_level(saved_level);
}
END_TEST

/* A fresh account has no ~/.local/state: the default state directory's parents are made (0700,
 * as XDG asks), the directory itself with its own mode; existing ones are fine. */
START_TEST(test_mkdir_p) {
        char dir[] = "/tmp/hw-test-mkdir-XXXXXX", path[256], cmd[300];
        struct stat st;
        mode_t old = umask(0);

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/home/.local/state/heapwatch", dir);
        ck_assert_int_eq(mkdir_p(path, 0750, 0700), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0750);
        snprintf(path, sizeof path, "%s/home/.local", dir);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        snprintf(path, sizeof path, "%s/home/.local/state/heapwatch", dir);
        ck_assert_int_eq(mkdir_p(path, 0750, 0700), 0); /* again: already there */
        /* the socket's directories, not the socket */
        snprintf(path, sizeof path, "%s/run/heapwatch/agent.sock", dir);
        ck_assert_int_eq(mkdir_parents(path, 0755), 0);
        snprintf(path, sizeof path, "%s/run/heapwatch", dir);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        snprintf(path, sizeof path, "%s/run/heapwatch/agent.sock", dir);
        ck_assert_int_eq(stat(path, &st), -1);
        /* a file in the way */
        snprintf(path, sizeof path, "%s/run/heapwatch/agent.sock", dir);
        ck_assert_int_eq(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
        snprintf(path, sizeof path, "%s/run/heapwatch/agent.sock/x", dir);
        ck_assert_int_eq(mkdir_p(path, 0750, 0700), -ENOTDIR);
        umask(old);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *lib_suite(void) {
        Suite *s = suite_create("lib");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parse_double);
        tcase_add_test(tc, test_parse_decimal);
        tcase_add_test(tc, test_log_writer_and_site_ratelimit);
        tcase_add_test(tc, test_parse_int64);
        tcase_add_test(tc, test_parse_uint64);
        tcase_add_test(tc, test_parse_seconds);
        tcase_add_test(tc, test_parse_listen_address);
        tcase_add_test(tc, test_proc_parse_stat);
        tcase_add_test(tc, test_proc_parse_stat_bad);
        tcase_add_test(tc, test_proc_read_stat_self);
        tcase_add_test(tc, test_oom_kill_file);
        tcase_add_test(tc, test_proc_fake_root);
        tcase_add_test(tc, test_log_level_from_string);
        tcase_add_test(tc, test_log_output);
        tcase_add_test(tc, test_ratelimit);
        tcase_add_test(tc, test_mkdir_p);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(lib_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
