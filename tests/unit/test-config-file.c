/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/config-file.c and options_load(): a file setting every key is read with
 * the values it says; comments and blank lines are ignored; the command line overrides the file;
 * typos in key names, bad values, keys outside [heapwatchd], syntax errors, over-long lines,
 * NUL bytes and oversized files are refused with "FILE:LINE:" and what was wrong; a missing
 * default file is fine, a missing --config file is not; the sample etc/heapwatchd.conf that is
 * installed parses and changes nothing from the built-in defaults.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config-file.h"
#include "options.h"

static char dir[] = "/tmp/hw-test-config-XXXXXX";

static const char *write_file(const char *name, const char *text) {
        static char path[512];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fwrite(text, 1, strlen(text), f), strlen(text));
        ck_assert_int_eq(fclose(f), 0);
        return path;
}

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
        strcpy(dir, "/tmp/hw-test-config-XXXXXX");
}

/* Load path over defaults; expect -EINVAL and "path:line:" plus needle in the error. */
static void expect_bad(const char *text, int line, const char *needle) {
        const char *path = write_file("bad.conf", text);
        char error[512], where[600];
        Options o;
        int r;

        options_init(&o);
        r = config_file_load(&o, path, true, error, sizeof error);
        ck_assert_msg(r == -EINVAL, "'%s': expected -EINVAL, got %d", text, r);
        snprintf(where, sizeof where, "%s:%d: ", path, line);
        ck_assert_msg(strstr(error, where), "'%s': error '%s' lacks '%s'", text, error, where);
        ck_assert_msg(strstr(error, needle), "'%s': error '%s' lacks '%s'", text, error, needle);
}

START_TEST(test_every_key) {
        const char *path = write_file("all.conf",
                                      "# heapwatchd.conf\n"
                                      "; another comment\n"
                                      "\n"
                                      "[heapwatchd]\n"
                                      "socket = /tmp/x/agent.sock\n"
                                      "http = [::1]:9999\n"
                                      "log-level = debug\n"
                                      "history-points = 100\n"
                                      "exited-retention = 60\n"
                                      "max-processes = 10\n"
                                      "max-connections = 20\n"
                                      "detect-window = 5\n"
                                      "detect-min-horizon = 120\n"
                                      "detect-max-horizon = 600\n"
                                      "detect-min-growth-per-hour = 0.5\n"
                                      "detect-min-bytes-per-hour = 1000\n"
                                      "state-dir = /tmp/x/state\n"
                                      "store-tiers = 10s:1d,1m:7d\n"
                                      "flush-interval = 2   ; inline comment\n"
                                      "max-disk-bytes = 2097152\n"
                                      "no-store = no\n");
        char error[512];
        Options o;

        options_init(&o);
        ck_assert_int_eq(config_file_load(&o, path, true, error, sizeof error), 0);
        ck_assert_msg(options_validate(&o, error, sizeof error) == 0, "%s", error);
        ck_assert_str_eq(o.socket_path, "/tmp/x/agent.sock");
        ck_assert_str_eq(o.http_host, "::1");
        ck_assert_uint_eq(o.http_port, 9999);
        ck_assert_int_eq(o.log_level, LOG_DEBUG);
        ck_assert_uint_eq(o.history_points, 100);
        ck_assert_double_eq(o.exited_retention, 60);
        ck_assert_uint_eq(o.max_processes, 10);
        ck_assert_uint_eq(o.max_connections, 20);
        ck_assert_double_eq(o.detect.window_seconds, 5);
        ck_assert_double_eq(o.detect.min_horizon_seconds, 120);
        ck_assert_double_eq(o.detect.max_horizon_seconds, 600);
        ck_assert_double_eq(o.detect.min_growth_relative_per_hour, 0.5);
        ck_assert_double_eq(o.detect.min_growth_absolute_per_hour, 1000);
        ck_assert_str_eq(o.store.state_dir, "/tmp/x/state");
        ck_assert_uint_eq(o.store.n_tiers, 2);
        ck_assert_double_eq(o.store.tiers[1].retention, 7 * 86400);
        ck_assert_double_eq(o.store.flush_interval, 2);
        ck_assert_uint_eq(o.store.max_disk_bytes, 2097152);
        ck_assert(o.store_enabled);
        ck_assert(o.http_enabled);
}
END_TEST

START_TEST(test_booleans) {
        char error[512];
        Options o;

        options_init(&o);
        ck_assert_int_eq(config_file_load(&o, write_file("b.conf", "[heapwatchd]\nno-http = yes\nno-store = true\n"), true,
                                          error, sizeof error), 0);
        ck_assert(!o.http_enabled);
        ck_assert(!o.store_enabled);
        expect_bad("[heapwatchd]\nno-http = perhaps\n", 2, "boolean");
}
END_TEST

START_TEST(test_refused) {
        expect_bad("[heapwatchd]\nlog-level = info\nlog-levle = debug\n", 3, "unknown key 'log-levle'");
        expect_bad("[heapwatchd]\n\n\nhistory-points = 5\n", 4, "history-points must be an integer in 10..10000000");
        expect_bad("[heapwatchd]\nhttp = localhost\n", 2, "not 'localhost'");
        /* plain decimal only (found by review) */
        expect_bad("[heapwatchd]\nmax-frames-per-second = 1e-9\n", 2,
                   "max-frames-per-second must be 0 (unlimited) or frames per second in 1..1000000, not '1e-9'");
        expect_bad("[heapwatchd]\nagent-hello-timeout = 0x1p3\n", 2,
                   "agent-hello-timeout must be seconds in 0.1..3600, not '0x1p3'");
        expect_bad("[heapwatchd]\nsocket-mode = +777\n", 2, "socket-mode must be an octal mode in 0..0777");
        expect_bad("[heapwatchd]\nsocket = relative.sock\n", 2, "absolute path");
        expect_bad("[heapwatchd]\nlog-level = loud\n", 2, "not 'loud'");
        expect_bad("[heapwatchd]\nstore-tiers = 10s\n", 2, "store-tiers");
        expect_bad("[heapwatchd]\nlog-level =\n", 2, "needs a value");
        expect_bad("log-level = info\n", 1, "outside the [heapwatchd] section");
        expect_bad("[heapwatchd]\n[other]\nlog-level = info\n", 3, "(in [other])");
        expect_bad("[heapwatchd]\nthis line has no equals sign\n", 2, "syntax error");
        expect_bad("[heapwatchd\n", 1, "syntax error");
        /* Settings about this invocation are not keys. */
        expect_bad("[heapwatchd]\nconfig = /etc/x\n", 2, "unknown key 'config'");
        expect_bad("[heapwatchd]\nhelp = yes\n", 2, "unknown key 'help'");
        /* Which one was meant? */
        expect_bad("[heapwatchd]\nlog-level = info\n\nlog-level = debug\n", 4, "'log-level' is already set on line 2");
}
END_TEST

/* Indentation means nothing: inih's multi-line values would make an indented key part of the
 * previous key's value ("log-level must be one of ..., not 'info socket = ...'"). */
START_TEST(test_indented_keys) {
        const char *path = write_file("i.conf", "[heapwatchd]\n  log-level = debug\n\tmax-processes = 9\n");
        char error[512];
        Options o;

        options_init(&o);
        ck_assert_msg(config_file_load(&o, path, true, error, sizeof error) == 0, "%s", error);
        ck_assert_int_eq(o.log_level, LOG_DEBUG);
        ck_assert_uint_eq(o.max_processes, 9);
}
END_TEST

START_TEST(test_bounds) {
        char text[CONFIG_FILE_MAX_BYTES + 100], error[512];
        const char *path;
        Options o;

        /* A line too long for the parser's buffer is refused, not split. */
        snprintf(text, sizeof text, "[heapwatchd]\n# %0*d\n", CONFIG_LINE_MAX, 0);
        expect_bad(text, 2, "longer than");
        /* An oversized file is refused as a whole. */
        memset(text, '\n', sizeof text - 1);
        text[sizeof text - 1] = '\0';
        path = write_file("big.conf", text);
        options_init(&o);
        ck_assert_int_eq(config_file_load(&o, path, true, error, sizeof error), -EINVAL);
        ck_assert_msg(strstr(error, "larger than"), "%s", error);
        /* NUL bytes. */
        path = write_file("nul.conf", "[heapwatchd]\n");
        {
                FILE *f = fopen(path, "a");
                ck_assert_ptr_nonnull(f);
                fputs("log-level = info", f);
                fputc('\0', f);
                fputs("\n", f);
                fclose(f);
        }
        options_init(&o);
        ck_assert_int_eq(config_file_load(&o, path, true, error, sizeof error), -EINVAL);
        ck_assert_msg(strstr(error, ":2: NUL byte"), "%s", error);
        /* A directory is not a configuration file. */
        options_init(&o);
        ck_assert_int_eq(config_file_load(&o, dir, true, error, sizeof error), -EINVAL);
        /* Nor is a FIFO, and opening one must not wait for a writer (a reload would hang the
         * event loop until the watchdog killed the daemon). */
        snprintf(text, sizeof text, "%s/fifo.conf", dir);
        ck_assert_int_eq(mkfifo(text, 0600), 0);
        options_init(&o);
        ck_assert_int_eq(config_file_load(&o, text, true, error, sizeof error), -EINVAL);
        ck_assert_msg(strstr(error, "not a regular file"), "%s", error);
}
END_TEST

START_TEST(test_missing) {
        char path[600], error[512];
        Options o;

        snprintf(path, sizeof path, "%s/none.conf", dir);
        options_init(&o);
        ck_assert_int_eq(config_file_load(&o, path, false, error, sizeof error), 0);
        ck_assert(!o.config_found); /* the defaults: a reload holds that against a file gone */
        ck_assert_int_eq(config_file_load(&o, path, true, error, sizeof error), -ENOENT);
        ck_assert_msg(strstr(error, path), "%s", error);
}
END_TEST

/* options_load(): file first, command line over it; --config names the file. */
START_TEST(test_command_line_overrides) {
        const char *path = write_file("o.conf", "[heapwatchd]\nlog-level = debug\nmax-processes = 7\n");
        char arg[600], error[512];
        char *argv[] = { (char *) "heapwatchd", arg, (char *) "--log-level", (char *) "err", NULL };
        char *argv_bad[] = { (char *) "heapwatchd", (char *) "--config", (char *) "relative.conf", NULL };
        Options o;

        snprintf(arg, sizeof arg, "--config=%s", path);
        ck_assert_int_eq(options_load(&o, 4, argv, error, sizeof error), 0);
        ck_assert_int_eq(o.log_level, LOG_ERR);
        ck_assert_uint_eq(o.max_processes, 7);
        ck_assert_str_eq(o.config_path, path);
        ck_assert_int_eq(options_load(&o, 3, argv_bad, error, sizeof error), -EINVAL);
        ck_assert_msg(strstr(error, "--config"), "%s", error);

        /* getopt's abbreviation of --config finds the file too; a bad command line is
         * reported before the file is read. */
        snprintf(arg, sizeof arg, "--conf=%s", path);
        ck_assert_int_eq(options_load(&o, 4, argv, error, sizeof error), 0);
        ck_assert_uint_eq(o.max_processes, 7);
        {
                char *argv_typo[] = { (char *) "heapwatchd", arg, (char *) "--log-levle", (char *) "err", NULL };
                ck_assert_int_eq(options_load(&o, 4, argv_typo, error, sizeof error), -EINVAL);
                ck_assert_msg(strstr(error, "unknown option '--log-levle'"), "%s", error);
        }
        snprintf(arg, sizeof arg, "--config=%s", path);

        write_file("o.conf", "[heapwatchd]\nmax-processes = many\n");
        ck_assert_int_eq(options_load(&o, 4, argv, error, sizeof error), -EINVAL);
        ck_assert_msg(strstr(error, "o.conf:2: max-processes"), "%s", error);
}
END_TEST

/* The installed sample documents every key with its default, all commented out: loading it
 * changes nothing. */
START_TEST(test_sample) {
        char path[1024], error[512];
        const char *top = getenv("top_srcdir");
        Options o, d;

        snprintf(path, sizeof path, "%s/etc/heapwatchd.conf", top ? top : "..");
        options_init(&d);
        options_init(&o);
        ck_assert_msg(config_file_load(&o, path, true, error, sizeof error) == 0, "%s", error);
        ck_assert(o.config_found);
        d.config_found = true;
        ck_assert(memcmp(&o, &d, sizeof o) == 0);
}
END_TEST

/* Under systemd the unit's directories win over the per-user defaults (DynamicUser=). */
START_TEST(test_systemd_directories) {
        Options o;

        setenv("RUNTIME_DIRECTORY", "/run/heapwatch", 1);
        setenv("STATE_DIRECTORY", "/var/lib/private/heapwatch:/var/lib/other", 1);
        setenv("CONFIGURATION_DIRECTORY", "/etc/heapwatch", 1);
        options_init(&o);
        ck_assert_str_eq(o.socket_path, "/run/heapwatch/agent.sock");
        ck_assert_str_eq(o.store.state_dir, "/var/lib/private/heapwatch");
        ck_assert_str_eq(o.config_path, "/etc/heapwatch/heapwatchd.conf");
        /* Relative or oversized values are ignored. */
        setenv("STATE_DIRECTORY", "relative", 1);
        setenv("CONFIGURATION_DIRECTORY", "/x", 1);
        {
                char big[400];
                memset(big, 'a', sizeof big - 1);
                big[0] = '/';
                big[sizeof big - 1] = '\0';
                setenv("RUNTIME_DIRECTORY", big, 1);
        }
        options_init(&o);
        ck_assert_str_ne(o.store.state_dir, "relative");
        ck_assert(o.store.state_dir[0] == '/');
        ck_assert_str_eq(o.config_path, "/x/heapwatchd.conf");
        ck_assert(strlen(o.socket_path) < 108);
        ck_assert(strncmp(o.socket_path, "/aaa", 4) != 0);
        unsetenv("RUNTIME_DIRECTORY");
        unsetenv("STATE_DIRECTORY");
        unsetenv("CONFIGURATION_DIRECTORY");
}
END_TEST

static Suite *config_file_suite(void) {
        Suite *s = suite_create("config-file");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_every_key);
        tcase_add_test(tc, test_booleans);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_indented_keys);
        tcase_add_test(tc, test_bounds);
        tcase_add_test(tc, test_missing);
        tcase_add_test(tc, test_command_line_overrides);
        tcase_add_test(tc, test_sample);
        tcase_add_test(tc, test_systemd_directories);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(config_file_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
