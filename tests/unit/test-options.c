/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/options.c: the defaults (including the socket path for root and for a
 * user with $XDG_RUNTIME_DIR), every option with good values and with bad ones (--http forms,
 * --log-level names and digits, the numeric bounds), unknown options, options missing their
 * value, stray arguments, and parsing several command lines in one process (getopt state is
 * reset each time). A refused value must leave the parsed Options as they were where the parser
 * promises it, and the error text must say what was wrong.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "options.h"

#define MAX_ARGS 16

/* Parse a NULL-terminated list of arguments (program name prepended). getopt permutes argv, so
 * it gets a private, writable copy. */
static int parse_v(Options *o, char *error, size_t size, va_list ap) {
        char *argv[MAX_ARGS + 2];
        char *copies[MAX_ARGS + 2];
        int argc = 0, r;
        const char *a;

        argv[argc] = copies[argc] = strdup("heapwatchd");
        argc++;
        while ((a = va_arg(ap, const char *))) {
                ck_assert_int_lt(argc, MAX_ARGS + 1);
                argv[argc] = copies[argc] = strdup(a);
                ck_assert_ptr_nonnull(argv[argc]);
                argc++;
        }
        argv[argc] = NULL;
        r = options_parse(o, argc, argv, error, size);
        for (int i = 0; i < argc; i++)
                free(copies[i]);
        return r;
}

/* Parse over fresh defaults. */
static int parse(Options *o, char *error, size_t size, ...) {
        va_list ap;
        int r;

        options_init(o);
        error[0] = '\0';
        va_start(ap, size);
        r = parse_v(o, error, size, ap);
        va_end(ap);
        return r;
}

/* Parse over whatever *o already holds. */
static int parse_more(Options *o, char *error, size_t size, ...) {
        va_list ap;
        int r;

        error[0] = '\0';
        va_start(ap, size);
        r = parse_v(o, error, size, ap);
        va_end(ap);
        return r;
}

#define PARSE_OK(o, ...)                                                                    \
        do {                                                                                \
                char _e[256];                                                               \
                int _r = parse(o, _e, sizeof _e, __VA_ARGS__, (const char *) NULL);         \
                ck_assert_msg(_r == 0, "%s: expected success, got %d: %s", #__VA_ARGS__, _r, _e); \
        } while (0)

/* Expect -EINVAL and an error text containing `needle`. */
#define PARSE_BAD(needle, ...)                                                              \
        do {                                                                                \
                Options _o;                                                                 \
                char _e[256];                                                               \
                int _r = parse(&_o, _e, sizeof _e, __VA_ARGS__, (const char *) NULL);       \
                ck_assert_msg(_r == -EINVAL, "%s: expected -EINVAL, got %d", #__VA_ARGS__, _r); \
                ck_assert_msg(strstr(_e, needle), "%s: error '%s' lacks '%s'", #__VA_ARGS__, _e, needle); \
        } while (0)

static void check_defaults(const Options *o) {
        ck_assert_str_eq(o->http_host, DEFAULT_HTTP_HOST);
        ck_assert_str_eq(o->http_host, "127.0.0.1");
        ck_assert_uint_eq(o->http_port, 9847);
        ck_assert(o->http_enabled);
        ck_assert(!o->foreground);
        ck_assert_int_eq(o->log_level, LOG_INFO);
        ck_assert_uint_eq(o->history_points, 3600);
        ck_assert_double_eq(o->exited_retention, 3600.0);
        ck_assert_uint_eq(o->max_processes, 1024);
        ck_assert_uint_eq(o->max_connections, 1024);
        ck_assert_uint_eq(o->socket_mode, 0666);
        ck_assert(!o->show_help);
        ck_assert(!o->show_version);
}

START_TEST(test_defaults) {
        Options o;

        memset(&o, 0xee, sizeof o);
        options_init(&o);
        check_defaults(&o);
        if (geteuid() == 0)
                ck_assert_str_eq(o.socket_path, "/run/heapwatch/agent.sock");

        /* No arguments at all: the defaults. */
        PARSE_OK(&o, (const char *) NULL);
        check_defaults(&o);
}
END_TEST

/* The socket path of an unprivileged user depends on $XDG_RUNTIME_DIR. As root, check it in a
 * child that drops its effective uid, so the test process itself is not affected. */
static int user_socket_path_checks(void) {
        char longdir[200];
        Options o;

        setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
        options_init(&o);
        if (strcmp(o.socket_path, "/run/user/1000/heapwatch/agent.sock") != 0)
                return 1;
        setenv("XDG_RUNTIME_DIR", "run/user/1000", 1); /* relative: ignored */
        options_init(&o);
        if (strcmp(o.socket_path, "/run/heapwatch/agent.sock") != 0)
                return 2;
        memset(longdir, 'd', sizeof longdir - 1);
        longdir[0] = '/';
        longdir[sizeof longdir - 1] = '\0';
        setenv("XDG_RUNTIME_DIR", longdir, 1); /* would not fit sun_path: ignored */
        options_init(&o);
        if (strcmp(o.socket_path, "/run/heapwatch/agent.sock") != 0)
                return 3;
        unsetenv("XDG_RUNTIME_DIR");
        options_init(&o);
        if (strcmp(o.socket_path, "/run/heapwatch/agent.sock") != 0)
                return 4;
        return 0;
}

START_TEST(test_default_socket_path_user) {
        pid_t pid;
        int status;

        if (geteuid() != 0) {
                ck_assert_int_eq(user_socket_path_checks(), 0);
                return;
        }
        /* Root ignores $XDG_RUNTIME_DIR. */
        {
                Options o;
                char *saved = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
                setenv("XDG_RUNTIME_DIR", "/run/user/0", 1);
                options_init(&o);
                ck_assert_str_eq(o.socket_path, "/run/heapwatch/agent.sock");
                if (saved)
                        setenv("XDG_RUNTIME_DIR", saved, 1);
                else
                        unsetenv("XDG_RUNTIME_DIR");
                free(saved);
        }
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (seteuid(65534) < 0)
                        _exit(77);
                _exit(user_socket_path_checks());
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77)
                return; /* could not drop privileges here; nothing to check */
        ck_assert_msg(WEXITSTATUS(status) == 0, "user socket path check %d failed", WEXITSTATUS(status));
}
END_TEST

START_TEST(test_socket) {
        Options o;
        char path[200];

        PARSE_OK(&o, "--socket", "/tmp/hw.sock");
        ck_assert_str_eq(o.socket_path, "/tmp/hw.sock");
        PARSE_OK(&o, "--socket=/run/x/agent.sock");
        ck_assert_str_eq(o.socket_path, "/run/x/agent.sock");

        /* sun_path is 108 bytes: 107 characters plus the NUL fit, 108 do not. */
        memset(path, 'p', sizeof path);
        path[0] = '/';
        path[107] = '\0';
        PARSE_OK(&o, "--socket", path);
        ck_assert_uint_eq(strlen(o.socket_path), 107);
        path[107] = 'p';
        path[108] = '\0';
        PARSE_BAD("--socket", "--socket", path);

        PARSE_BAD("--socket", "--socket", "agent.sock");
        PARSE_BAD("--socket", "--socket", "./agent.sock");
        PARSE_BAD("--socket", "--socket", "");
        PARSE_BAD("--socket", "--socket=");
}
END_TEST

START_TEST(test_http_good) {
        Options o;

        PARSE_OK(&o, "--http", "127.0.0.1:80");
        ck_assert_str_eq(o.http_host, "127.0.0.1");
        ck_assert_uint_eq(o.http_port, 80);
        ck_assert(o.http_enabled);

        PARSE_OK(&o, "--http=0.0.0.0:65535");
        ck_assert_str_eq(o.http_host, "0.0.0.0");
        ck_assert_uint_eq(o.http_port, 65535);

        PARSE_OK(&o, "--http", "[::1]:80");
        ck_assert_str_eq(o.http_host, "::1");
        ck_assert_uint_eq(o.http_port, 80);

        PARSE_OK(&o, "--http", "[::]:9847");
        ck_assert_str_eq(o.http_host, "::");

        PARSE_OK(&o, "--http", "[fe80::1:2:3:4]:1");
        ck_assert_str_eq(o.http_host, "fe80::1:2:3:4");
        ck_assert_uint_eq(o.http_port, 1);

        PARSE_OK(&o, "--http", "[::ffff:192.168.1.1]:8080");
        ck_assert_str_eq(o.http_host, "::ffff:192.168.1.1");

        /* --no-http and --http: the last one wins. */
        PARSE_OK(&o, "--no-http");
        ck_assert(!o.http_enabled);
        PARSE_OK(&o, "--no-http", "--http", "127.0.0.2:81");
        ck_assert(o.http_enabled);
        ck_assert_str_eq(o.http_host, "127.0.0.2");
        PARSE_OK(&o, "--http", "127.0.0.2:81", "--no-http");
        ck_assert(!o.http_enabled);
}
END_TEST

START_TEST(test_http_bad) {
        static const char *const bad[] = {
                "127.0.0.1",          /* missing port */
                "127.0.0.1:",         /* empty port */
                ":80",                /* missing address */
                "127.0.0.1:70000",    /* port out of range */
                "127.0.0.1:65536",
                "127.0.0.1:-1",
                "127.0.0.1:99999999999999999999",
                "127.0.0.1:80x",      /* trailing junk */
                "127.0.0.1: 80",
                "127.0.0.1:80 ",
                " 127.0.0.1:80",
                "localhost:80",       /* a hostname, not an address */
                "example.com:9847",
                "256.0.0.1:80",
                "1.2.3:80",
                "::1:80",             /* IPv6 needs brackets */
                "[::1]",              /* bracketed, no port */
                "[::1]:",
                "[::1]80",
                "[::1:80",
                "[]:80",
                "[localhost]:80",
                "[127.0.0.1]:80",     /* brackets are for IPv6 */
                "",
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                Options o;
                char e[256];
                int r;

                /* Start from a known value: a refused --http changes nothing. */
                r = parse(&o, e, sizeof e, "--http", "10.0.0.1:1234", "--http", bad[i], (const char *) NULL);
                ck_assert_msg(r == -EINVAL, "--http '%s' accepted", bad[i]);
                ck_assert_msg(strstr(e, "--http"), "--http '%s': error '%s'", bad[i], e);
                ck_assert_msg(strstr(e, bad[i]), "--http '%s': error '%s' does not quote it", bad[i], e);
                ck_assert_str_eq(o.http_host, "10.0.0.1");
                ck_assert_uint_eq(o.http_port, 1234);
        }
}
END_TEST

START_TEST(test_log_level) {
        static const struct {
                const char *s;
                int level;
        } good[] = {
                { "emerg", LOG_EMERG },  { "alert", LOG_ALERT },     { "crit", LOG_CRIT },   { "err", LOG_ERR },
                { "error", LOG_ERR },    { "warning", LOG_WARNING }, { "warn", LOG_WARNING }, { "notice", LOG_NOTICE },
                { "info", LOG_INFO },    { "debug", LOG_DEBUG },     { "DEBUG", LOG_DEBUG }, { "Warning", LOG_WARNING },
                { "0", 0 },              { "3", 3 },                 { "7", 7 },
        };
        static const char *const bad[] = { "8", "9", "-1", "07", "77", "1.0", " 7", "7 ", "verbose", "trace", "", "infoo" };
        Options o;

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                PARSE_OK(&o, "--log-level", good[i].s);
                ck_assert_msg(o.log_level == good[i].level, "--log-level %s -> %d", good[i].s, o.log_level);
        }
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char e[256];
                int r = parse(&o, e, sizeof e, "--log-level", bad[i], (const char *) NULL);
                ck_assert_msg(r == -EINVAL, "--log-level '%s' accepted", bad[i]);
                ck_assert_msg(strstr(e, "--log-level"), "error '%s'", e);
        }
}
END_TEST

START_TEST(test_counts) {
        Options o;

        PARSE_OK(&o, "--history-points", "10");
        ck_assert_uint_eq(o.history_points, 10);
        PARSE_OK(&o, "--history-points", "10000000");
        ck_assert_uint_eq(o.history_points, 10000000);
        PARSE_BAD("--history-points", "--history-points", "9");
        PARSE_BAD("--history-points", "--history-points", "10000001");
        PARSE_BAD("--history-points", "--history-points", "0");
        PARSE_BAD("--history-points", "--history-points", "-10");
        PARSE_BAD("--history-points", "--history-points", "+10");
        PARSE_BAD("--history-points", "--history-points", "1e3");
        PARSE_BAD("--history-points", "--history-points", "100 ");
        PARSE_BAD("--history-points", "--history-points", " 100");
        PARSE_BAD("--history-points", "--history-points", "abc");
        PARSE_BAD("--history-points", "--history-points", "");
        PARSE_BAD("--history-points", "--history-points", "18446744073709551616");

        PARSE_OK(&o, "--max-processes", "1");
        ck_assert_uint_eq(o.max_processes, 1);
        PARSE_OK(&o, "--max-processes", "1000000");
        ck_assert_uint_eq(o.max_processes, 1000000);
        PARSE_BAD("--max-processes", "--max-processes", "0");
        PARSE_BAD("--max-processes", "--max-processes", "1000001");
        PARSE_BAD("--max-processes", "--max-processes", "-1");
        PARSE_BAD("--max-processes", "--max-processes", "0x10");

        PARSE_OK(&o, "--max-connections", "1");
        ck_assert_uint_eq(o.max_connections, 1);
        PARSE_OK(&o, "--max-connections=1000000");
        ck_assert_uint_eq(o.max_connections, 1000000);
        PARSE_BAD("--max-connections", "--max-connections", "0");
        PARSE_BAD("--max-connections", "--max-connections", "1000001");
        PARSE_BAD("--max-connections", "--max-connections", "many");
}
END_TEST

START_TEST(test_exited_retention) {
        Options o;

        PARSE_OK(&o, "--exited-retention", "0");
        ck_assert_double_eq(o.exited_retention, 0);
        PARSE_OK(&o, "--exited-retention", "0.5");
        ck_assert_double_eq(o.exited_retention, 0.5);
        PARSE_OK(&o, "--exited-retention", "31536000");
        ck_assert_double_eq(o.exited_retention, 31536000);
        PARSE_BAD("--exited-retention", "--exited-retention", "31536000.5");
        PARSE_BAD("--exited-retention", "--exited-retention", "-1");
        PARSE_BAD("--exited-retention", "--exited-retention", "inf");
        PARSE_BAD("--exited-retention", "--exited-retention", "nan");
        PARSE_BAD("--exited-retention", "--exited-retention", "1e400");
        PARSE_BAD("--exited-retention", "--exited-retention", "1h");
        PARSE_BAD("--exited-retention", "--exited-retention", "");
        PARSE_BAD("--exited-retention", "--exited-retention", " 5");
}
END_TEST

START_TEST(test_store_options) {
        Options o;

        PARSE_OK(&o, "--flush-interval", "1");
        ck_assert(o.store_enabled);
        ck_assert_uint_eq(o.store.n_tiers, 3);
        ck_assert_double_eq(o.store.tiers[0].resolution, 10);
        ck_assert_double_eq(o.store.tiers[2].retention, 180 * 86400.0);
        ck_assert_double_eq(o.store.flush_interval, 1);
        ck_assert_uint_eq(o.store.max_disk_bytes, 1024ULL * 1024 * 1024);
        if (geteuid() == 0)
                ck_assert_str_eq(o.store.state_dir, "/var/lib/heapwatch");
        ck_assert(o.store.state_dir[0] == '/');

        PARSE_OK(&o, "--state-dir", "/tmp/hw-state", "--store-tiers", "5s:1h,1m:1d", "--max-disk-bytes", "0");
        ck_assert_str_eq(o.store.state_dir, "/tmp/hw-state");
        ck_assert_uint_eq(o.store.n_tiers, 2);
        ck_assert_double_eq(o.store.tiers[0].resolution, 5);
        ck_assert_double_eq(o.store.tiers[1].retention, 86400);
        ck_assert_uint_eq(o.store.max_disk_bytes, 0);
        PARSE_OK(&o, "--max-disk-bytes", "1048576");
        ck_assert_uint_eq(o.store.max_disk_bytes, 1048576);
        PARSE_OK(&o, "--no-store");
        ck_assert(!o.store_enabled);
        /* the last of --no-store and --state-dir wins */
        PARSE_OK(&o, "--no-store", "--state-dir", "/tmp/x");
        ck_assert(o.store_enabled);

        PARSE_BAD("--state-dir", "--state-dir", "relative/dir");
        PARSE_BAD("--state-dir", "--state-dir", "");
        PARSE_BAD("--store-tiers", "--store-tiers", "10s");
        PARSE_BAD("--store-tiers", "--store-tiers", "10s:2d,");
        PARSE_BAD("--store-tiers", "--store-tiers", "10q:2d");
        PARSE_BAD("fine to coarse", "--store-tiers", "1m:1d,10s:2d");
        PARSE_BAD("--flush-interval", "--flush-interval", "0");
        PARSE_BAD("--flush-interval", "--flush-interval", "3601");
        PARSE_BAD("--flush-interval", "--flush-interval", "nan");
        PARSE_BAD("--max-disk-bytes", "--max-disk-bytes", "1000");
        PARSE_BAD("--max-disk-bytes", "--max-disk-bytes", "-1");
        PARSE_BAD("--max-disk-bytes", "--max-disk-bytes", "1G");
}
END_TEST

START_TEST(test_flags) {
        Options o;

        PARSE_OK(&o, "--foreground");
        ck_assert(o.foreground);
        PARSE_OK(&o, "-h");
        ck_assert(o.show_help);
        ck_assert(!o.show_version);
        PARSE_OK(&o, "--help");
        ck_assert(o.show_help);
        PARSE_OK(&o, "--version");
        ck_assert(o.show_version);
        ck_assert(!o.show_help);

        /* Everything at once. */
        PARSE_OK(&o, "--socket", "/tmp/a.sock", "--http", "[::1]:1", "--foreground", "--log-level", "debug",
                 "--history-points", "20", "--exited-retention", "1.5", "--max-processes", "2", "--max-connections", "3");
        ck_assert_str_eq(o.socket_path, "/tmp/a.sock");
        ck_assert_str_eq(o.http_host, "::1");
        ck_assert_uint_eq(o.http_port, 1);
        ck_assert(o.foreground);
        ck_assert_int_eq(o.log_level, LOG_DEBUG);
        ck_assert_uint_eq(o.history_points, 20);
        ck_assert_double_eq(o.exited_retention, 1.5);
        ck_assert_uint_eq(o.max_processes, 2);
        ck_assert_uint_eq(o.max_connections, 3);
}
END_TEST

START_TEST(test_unknown_option) {
        PARSE_BAD("--bogus", "--bogus");
        PARSE_BAD("--bogus", "--bogus=1");
        PARSE_BAD("-x", "-x");
        PARSE_BAD("-x", "-hx");
        PARSE_BAD("unknown option", "--max", "5"); /* ambiguous abbreviation */
        PARSE_BAD("unexpected argument '-'", "-"); /* "-" alone is an argument (stdin) */
        {
                /* An argument for an option that takes none is refused too. */
                Options o;
                char e[256];
                ck_assert_int_eq(parse(&o, e, sizeof e, "--no-http=yes", (const char *) NULL), -EINVAL);
                ck_assert_int_eq(parse(&o, e, sizeof e, "--foreground=1", (const char *) NULL), -EINVAL);
                ck_assert_msg(strstr(e, "takes no value"), "error '%s'", e);
        }
}
END_TEST

START_TEST(test_missing_value) {
        static const char *const opts[] = { "--socket", "--http", "--log-level", "--history-points",
                                            "--exited-retention", "--max-processes", "--max-connections" };

        for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
                Options o;
                char e[256], needle[64];
                int r = parse(&o, e, sizeof e, "--no-http", opts[i], (const char *) NULL);

                ck_assert_msg(r == -EINVAL, "%s without a value accepted", opts[i]);
                snprintf(needle, sizeof needle, "'%s' needs a value", opts[i]);
                ck_assert_msg(strstr(e, needle), "%s: error '%s'", opts[i], e);
        }
}
END_TEST

START_TEST(test_stray_argument) {
        PARSE_BAD("unexpected argument 'foo'", "foo");
        PARSE_BAD("unexpected argument 'foo'", "--no-http", "foo");
        /* GNU getopt moves non-options to the end; still refused. */
        PARSE_BAD("unexpected argument 'foo'", "foo", "--no-http");
        PARSE_BAD("unexpected argument '--no-http'", "--", "--no-http");
        /* An option's value is not a stray argument. */
        {
                Options o;
                PARSE_OK(&o, "--socket", "/tmp/foo");
        }
}
END_TEST

START_TEST(test_parse_twice) {
        /* getopt keeps global state; each options_parse() must start afresh, including after an
         * error in the middle of a short-option cluster or a stray argument. */
        Options o;
        char e[256];

        ck_assert_int_eq(parse(&o, e, sizeof e, "-hx", (const char *) NULL), -EINVAL);
        PARSE_OK(&o, "-h");
        ck_assert(o.show_help);
        ck_assert_int_eq(parse(&o, e, sizeof e, "--no-http", "stray", (const char *) NULL), -EINVAL);
        PARSE_OK(&o, "--max-processes", "7");
        ck_assert_uint_eq(o.max_processes, 7);
        ck_assert(o.http_enabled);

        /* Parsing over previous results keeps what the second command line does not set. */
        options_init(&o);
        ck_assert_int_eq(parse_more(&o, e, sizeof e, "--no-http", "--history-points", "50", (const char *) NULL), 0);
        ck_assert_int_eq(parse_more(&o, e, sizeof e, "--max-processes", "9", (const char *) NULL), 0);
        ck_assert(!o.http_enabled);
        ck_assert_uint_eq(o.history_points, 50);
        ck_assert_uint_eq(o.max_processes, 9);

        for (int i = 0; i < 100; i++) {
                PARSE_OK(&o, "--http", "127.0.0.1:1", "--log-level", "3");
                ck_assert_int_eq(o.log_level, 3);
                ck_assert_int_eq(parse(&o, e, sizeof e, "--log-level", (const char *) NULL), -EINVAL);
        }
}
END_TEST

/* Found by review: every number was read with strtod()/strtoul(), so "1e-9" was a rate, "0x1p3"
 * eight seconds and "+777" a socket mode. Now plain decimal within documented bounds, and the
 * error names the option, what it takes and the value. */
START_TEST(test_strict_numbers) {
        static const char *const numeric[] = {
                "--exited-retention", "--detect-window", "--detect-min-horizon", "--detect-max-horizon",
                "--detect-min-growth-per-hour", "--detect-min-bytes-per-hour", "--flush-interval",
                "--census-interval", "--census-budget-ms", "--census-api-min-interval", "--census-timeout",
                "--max-frames-per-second", "--max-frames-burst", "--agent-hello-timeout", "--agent-idle-timeout",
                "--http-timeout", "--http-requests-per-second", "--agent-work-per-minute",
                "--agent-work-per-minute-per-client", "--history-points", "--max-processes", "--max-connections",
                "--max-connections-per-uid", "--http-max-connections", "--http-max-connections-per-address",
                "--http-connection-memory", "--http-response-budget", "--max-disk-bytes",
        };
        static const char *const forms[] = { "1e-9", "1e3", "0x1p3", "0x10", "+5", "-5", " 5", "5 ", ".5", "5.",
                                             "inf", "nan", "1,5", "5s" };
        static const struct {
                const char *option, *value;
        } out_of_range[] = {
                /* a rate below 1 (burst twice the rate, or the same) never lets one through */
                { "--max-frames-per-second", "0.5" },   { "--http-requests-per-second", "0.4" },
                { "--agent-work-per-minute", "0.9" },   { "--agent-work-per-minute-per-client", "0.1" },
                { "--max-frames-burst", "1.5" },        { "--detect-window", "0.001" },
                { "--agent-hello-timeout", "0.01" },    { "--http-timeout", "3601" },
                { "--socket-mode", "+777" },            { "--socket-mode", " 777" },
                { "--socket-mode", "-0" },              { "--socket-mode", "0o777" },
                { "--socket-mode", "00777" },           { "--socket-mode", "0x1ff" },
                { "--socket-mode", "1000" },            { "--socket-mode", "8" },
        };
        Options o;

        for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++)
                for (size_t j = 0; j < sizeof forms / sizeof forms[0]; j++) {
                        char e[256], quoted[64];
                        int r = parse(&o, e, sizeof e, numeric[i], forms[j], (const char *) NULL);

                        ck_assert_msg(r == -EINVAL, "%s '%s' accepted", numeric[i], forms[j]);
                        ck_assert_msg(strstr(e, numeric[i]), "%s '%s': error '%s' does not name it", numeric[i],
                                      forms[j], e);
                        ck_assert_msg(strstr(e, ".."), "%s '%s': error '%s' gives no range", numeric[i], forms[j], e);
                        snprintf(quoted, sizeof quoted, "not '%s'", forms[j]);
                        ck_assert_msg(strstr(e, quoted), "%s '%s': error '%s' does not echo it", numeric[i], forms[j],
                                      e);
                }
        for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++)
                PARSE_BAD(out_of_range[i].option, out_of_range[i].option, out_of_range[i].value);

        PARSE_OK(&o, "--max-frames-per-second", "0", "--http-requests-per-second", "0", "--agent-work-per-minute",
                 "0", "--agent-work-per-minute-per-client", "0");
        ck_assert(o.limits.frames_per_second == 0 && o.limits.http_requests_per_second == 0);
        PARSE_OK(&o, "--max-frames-per-second", "1", "--http-requests-per-second", "2.5", "--agent-work-per-minute",
                 "1", "--max-frames-burst", "7", "--detect-window", "1.5", "--detect-min-growth-per-hour", "0.005");
        ck_assert(o.limits.frames_per_second == 1 && o.limits.http_requests_per_second == 2.5);
        ck_assert(o.limits.work_per_minute_process == 1 && o.limits.frames_burst == 7);
        ck_assert(o.detect.window_seconds == 1.5 && o.detect.min_growth_relative_per_hour == 0.005);
        PARSE_OK(&o, "--socket-mode", "0660");
        ck_assert_uint_eq(o.socket_mode, 0660);
        PARSE_OK(&o, "--socket-mode", "600");
        ck_assert_uint_eq(o.socket_mode, 0600);
        PARSE_OK(&o, "--socket-mode", "0");
        ck_assert_uint_eq(o.socket_mode, 0);
}
END_TEST

static Suite *options_suite(void) {
        Suite *s = suite_create("options");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_default_socket_path_user);
        tcase_add_test(tc, test_socket);
        tcase_add_test(tc, test_http_good);
        tcase_add_test(tc, test_http_bad);
        tcase_add_test(tc, test_log_level);
        tcase_add_test(tc, test_counts);
        tcase_add_test(tc, test_exited_retention);
        tcase_add_test(tc, test_strict_numbers);
        tcase_add_test(tc, test_store_options);
        tcase_add_test(tc, test_flags);
        tcase_add_test(tc, test_unknown_option);
        tcase_add_test(tc, test_missing_value);
        tcase_add_test(tc, test_stray_argument);
        tcase_add_test(tc, test_parse_twice);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(options_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
