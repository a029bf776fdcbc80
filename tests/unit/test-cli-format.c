/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the CLI's pure helpers: cli/format.c (sizes, durations, terminal-safe text,
 * tables) and the option parsing of `heapwatch run` and `heapwatch status`, with good and bad
 * command lines.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "run.h"
#include "status.h"

#define ARGC(a) ((int) ELEMENTSOF(a) - 1)

/* ---- sizes and durations -------------------------------------------------------------------- */

static const char *bytes(uint64_t b) {
        static char buf[FORMAT_BYTES_MAX];
        return format_bytes(buf, sizeof buf, b);
}

static const char *duration(double d) {
        static char buf[FORMAT_DURATION_MAX];
        return format_duration(buf, sizeof buf, d);
}

START_TEST(test_format_bytes) {
        ck_assert_str_eq(bytes(0), "0 B");
        ck_assert_str_eq(bytes(1), "1 B");
        ck_assert_str_eq(bytes(1023), "1023 B");
        ck_assert_str_eq(bytes(1024), "1.0 KiB");
        ck_assert_str_eq(bytes(1536), "1.5 KiB");
        ck_assert_str_eq(bytes(31457280 + 524288), "30.5 MiB");
        ck_assert_str_eq(bytes(33030144), "31.5 MiB");
        /* 1023.999 KiB must not print as "1024.0 KiB". */
        ck_assert_str_eq(bytes(1048575), "1.0 MiB");
        ck_assert_str_eq(bytes(1048576), "1.0 MiB");
        ck_assert_str_eq(bytes(2147483648ULL), "2.0 GiB");
        ck_assert_str_eq(bytes(1099511627776ULL * 3), "3.0 TiB");
        ck_assert_str_eq(bytes(UINT64_MAX), "16.0 EiB");
}
END_TEST

/* Numbers from a daemon's JSON: out of range they were cast to uint64_t (undefined; 1e300
 * printed "0 B"). */
START_TEST(test_format_bytes_number) {
        char buf[FORMAT_BYTES_MAX];

        ck_assert_str_eq(format_bytes_number(buf, sizeof buf, 1536), "1.5 KiB");
        ck_assert_str_eq(format_bytes_number(buf, sizeof buf, 1e300), "16.0 EiB");
        ck_assert_str_eq(format_bytes_number(buf, sizeof buf, 18446744073709551616.0), "16.0 EiB");
        ck_assert_str_eq(format_bytes_number(buf, sizeof buf, -1), "-");
        ck_assert_str_eq(format_bytes_number(buf, sizeof buf, NAN), "-");
        ck_assert_str_eq(format_bytes_number(buf, sizeof buf, INFINITY), "-");
}
END_TEST

START_TEST(test_format_duration) {
        ck_assert_str_eq(duration(0), "0s");
        ck_assert_str_eq(duration(0.4), "0s");
        ck_assert_str_eq(duration(59.9), "59s");
        ck_assert_str_eq(duration(60), "1m00s");
        ck_assert_str_eq(duration(303), "5m03s");
        ck_assert_str_eq(duration(3599), "59m59s");
        ck_assert_str_eq(duration(3600), "1h00m");
        ck_assert_str_eq(duration(11520), "3h12m");
        ck_assert_str_eq(duration(86399), "23h59m");
        ck_assert_str_eq(duration(86400), "1d00h");
        ck_assert_str_eq(duration(200000), "2d07h");
        ck_assert_str_eq(duration(86400.0 * 400), "400d00h");
        ck_assert_str_eq(duration(-1), "-");
        ck_assert_str_eq(duration(NAN), "-");
        ck_assert_str_eq(duration(INFINITY), "-");
        ck_assert_str_eq(duration(1e13), "-");
}
END_TEST

/* ---- terminal-safe text -------------------------------------------------------------------- */

static void assert_sanitized(const char *in, const char *expected) {
        char *out = NULL;

        ck_assert_int_eq(format_sanitize(in, &out), 0);
        ck_assert_str_eq(out, expected);
        ck_assert_int_eq(format_is_printable(in), strcmp(in, expected) == 0);
        free(out);
}

START_TEST(test_format_sanitize) {
        assert_sanitized("", "");
        assert_sanitized("billing", "billing");
        assert_sanitized("a\033[31mb", "a?[31mb");          /* ESC: no colours, no cursor moves */
        assert_sanitized("t\033]0;pwned\007", "t?]0;pwned?"); /* terminal title */
        assert_sanitized("a\nb\tc\rd", "a?b?c?d");
        assert_sanitized("\x7f", "?");
        assert_sanitized("w\xc3\xa9" "b", "w\xc3\xa9" "b");                 /* é */
        assert_sanitized("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");         /* U+1F600 */
        assert_sanitized("\xff", "?");                                    /* not UTF-8 */
        assert_sanitized("\x9b" "31m", "?31m");                           /* raw 8-bit CSI */
        assert_sanitized("\xc2\x9b" "31m", "?31m");                       /* U+009B CSI */
        assert_sanitized("\xc0\xaf", "??");                               /* overlong '/' */
        assert_sanitized("x\xe2\x82", "x??");                             /* cut sequence */
        assert_sanitized("\xed\xa0\x80", "???");                          /* surrogate */
        assert_sanitized("\xf4\x90\x80\x80", "????");                     /* > U+10FFFF */
        assert_sanitized("a\xe2\x80\xae" "b", "a?b");                     /* RLO bidi override */
        assert_sanitized("a\xe2\x81\xa6" "b", "a?b");                     /* LRI bidi isolate */
}
END_TEST

START_TEST(test_format_width) {
        ck_assert_uint_eq(format_display_width(""), 0);
        ck_assert_uint_eq(format_display_width("abc"), 3);
        ck_assert_uint_eq(format_display_width("w\xc3\xa9" "b"), 3);
        ck_assert_uint_eq(format_prefix_bytes("abc", 0), 0);
        ck_assert_uint_eq(format_prefix_bytes("abc", 2), 2);
        ck_assert_uint_eq(format_prefix_bytes("abc", 10), 3);
        /* Never cut inside "é". */
        ck_assert_uint_eq(format_prefix_bytes("w\xc3\xa9" "b", 1), 1);
        ck_assert_uint_eq(format_prefix_bytes("w\xc3\xa9" "b", 2), 3);
}
END_TEST

/* ---- tables -------------------------------------------------------------------------------- */

static const TableColumn cols[] = {
        { "NAME", TABLE_ALIGN_LEFT, 8 },
        { "SIZE", TABLE_ALIGN_RIGHT },
        { "COMMAND", TABLE_ALIGN_LEFT, 0, .shrink = true, .min_width = 7 },
};

static char *render(Table *t, size_t width) {
        char *s = NULL;
        ck_assert_int_eq(table_format(t, width, &s), 0);
        return s;
}

START_TEST(test_table_basic) {
        _cleanup_table_free_ Table *t = NULL;
        _cleanup_free_ char *s = NULL;

        ck_assert_int_eq(table_new(cols, ELEMENTSOF(cols), &t), 0);
        s = render(t, 0);
        ck_assert_str_eq(s, "NAME  SIZE  COMMAND\n");
        free(s);

        ck_assert_int_eq(table_add_row(t, (const char *[]) { "a", "1.0 KiB", "python3 app.py" }), 0);
        ck_assert_int_eq(table_add_row(t, (const char *[]) { "w\xc3\xa9" "b", NULL, "" }), 0);
        ck_assert_int_eq(table_add_row(t, (const char *[]) { "averylongname", "12 B", "x\033[2J" }), 0);
        ck_assert_uint_eq(table_n_rows(t), 3);
        s = render(t, 0);
        ck_assert_str_eq(s,
                         "NAME         SIZE  COMMAND\n"
                         "a         1.0 KiB  python3 app.py\n"
                         "w\xc3\xa9" "b             -  -\n"
                         "avery...     12 B  x?[2J\n");
}
END_TEST

START_TEST(test_table_shrink) {
        _cleanup_table_free_ Table *t = NULL;
        _cleanup_free_ char *s = NULL, *s2 = NULL, *s3 = NULL;

        ck_assert_int_eq(table_new(cols, ELEMENTSOF(cols), &t), 0);
        ck_assert_int_eq(table_add_row(t, (const char *[]) { "svc", "1 B", "python3 -m gunicorn app:wsgi" }), 0);

        /* Fits: untouched. */
        s = render(t, 80);
        ck_assert_str_eq(s, "NAME  SIZE  COMMAND\n"
                            "svc    1 B  python3 -m gunicorn app:wsgi\n");
        /* 24 columns: COMMAND gets 24 - 4 - 2 - 4 - 2 = 12. */
        s2 = render(t, 24);
        ck_assert_str_eq(s2, "NAME  SIZE  COMMAND\n"
                             "svc    1 B  python3 -...\n");
        /* Narrower than the fixed columns allow: COMMAND stops at its min_width, lines wrap. */
        s3 = render(t, 10);
        ck_assert_str_eq(s3, "NAME  SIZE  COMMAND\n"
                             "svc    1 B  pyth...\n");
}
END_TEST

START_TEST(test_table_bad) {
        Table *t = NULL;

        ck_assert_int_eq(table_new(cols, 0, &t), -EINVAL);
        ck_assert_ptr_null(t);
        ck_assert_ptr_null(table_free(NULL));
}
END_TEST

/* ---- heapwatch run: options ------------------------------------------------------------------ */

START_TEST(test_run_args_good) {
        char error[256] = "";
        RunArgs a;

        {
                char *argv[] = { "run", "--", "python3", "app.py", NULL };
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert(!a.help);
                ck_assert_ptr_null(a.service);
                ck_assert_ptr_null(a.socket);
                ck_assert_str_eq(a.interval, "");
                ck_assert_ptr_eq(a.command, argv + 2);
                ck_assert_str_eq(a.command[0], "python3");
                ck_assert_str_eq(a.command[1], "app.py");
                ck_assert_ptr_null(a.command[2]);
        }
        {
                char *argv[] = { "run", "--service", "billing", "--socket", "/run/heapwatch/agent.sock",
                                 "--interval", "0.5", "--", "python3", "-m", "app", "--help", "--", NULL };
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert(!a.help); /* --help after "--" is the program's */
                ck_assert_str_eq(a.service, "billing");
                ck_assert_str_eq(a.socket, "/run/heapwatch/agent.sock");
                ck_assert_str_eq(a.interval, "0.5");
                ck_assert_str_eq(a.command[0], "python3");
                ck_assert_str_eq(a.command[4], "--");
        }
        {
                /* "=" forms, the last occurrence wins, intervals are normalized, bounds included. */
                char *argv[] = { "run", "--service=a", "--service=w\xc3\xa9" "b", "--interval=1e0", "--", "x", NULL };
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert_str_eq(a.service, "w\xc3\xa9" "b");
                ck_assert_str_eq(a.interval, "1");
        }
        {
                char *argv[] = { "run", "--interval", "0.05", "--", "x", NULL };
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert_str_eq(a.interval, "0.05");
        }
        {
                char *argv[] = { "run", "--interval", "3600", "--", "x", NULL };
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert_str_eq(a.interval, "3600");
        }
        {
                /* --help wins over errors around it. */
                char *argv[] = { "run", "--interval", "0", "--help", NULL };
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert(a.help);
        }
        {
                char service[RUN_SERVICE_MAX + 1];
                memset(service, 's', RUN_SERVICE_MAX);
                service[RUN_SERVICE_MAX] = '\0';
                char *argv[] = { "run", "--service", service, "--", "x", NULL };
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
        }
}
END_TEST

static void assert_run_args_bad(int argc, char *argv[], const char *expected_error) {
        char error[256] = "";
        RunArgs a = { .service = "untouched" };

        ck_assert_int_eq(run_parse_args(argc, argv, &a, error, sizeof error), -EINVAL);
        ck_assert_str_eq(error, expected_error);
        ck_assert_str_eq(a.service, "untouched"); /* no output on failure */
}
#define ASSERT_RUN_BAD(expected, ...)                                    \
        do {                                                             \
                char *_argv[] = { "run", __VA_ARGS__, NULL };            \
                assert_run_args_bad(ARGC(_argv), _argv, expected);       \
        } while (0)

START_TEST(test_run_args_bad) {
        char *argv0[] = { "run", NULL };
        char service[RUN_SERVICE_MAX + 2];

        assert_run_args_bad(ARGC(argv0), argv0, "missing '--' and the command to run");
        ASSERT_RUN_BAD("missing '--' before the command 'python3'", "python3", "app.py");
        ASSERT_RUN_BAD("missing '--' before the command 'python3'", "--service", "x", "python3");
        ASSERT_RUN_BAD("missing the command to run after '--'", "--");
        ASSERT_RUN_BAD("missing the command to run after '--'", "--service", "x", "--");
        ASSERT_RUN_BAD("the command to run is an empty string", "--", "");
        ASSERT_RUN_BAD("missing '--' and the command to run", "--service", "x");
        ASSERT_RUN_BAD("option --service requires a value", "--service");
        ASSERT_RUN_BAD("option --interval requires a value", "--interval");
        ASSERT_RUN_BAD("unknown option '--bogus'", "--bogus", "--", "x");
        ASSERT_RUN_BAD("unknown option '--services=x'", "--services=x", "--", "x");
        ASSERT_RUN_BAD("unknown option '-s'", "-s", "x", "--", "x");
        ASSERT_RUN_BAD("unknown option '--?[2J'", "--\033[2J", "--", "x");

        ASSERT_RUN_BAD("invalid --service '': must be 1 to 128 bytes of printable UTF-8, without control characters",
                       "--service", "", "--", "x");
        ASSERT_RUN_BAD("invalid --service 'a?b': must be 1 to 128 bytes of printable UTF-8, without control characters",
                       "--service", "a\nb", "--", "x");
        ASSERT_RUN_BAD("invalid --service '?': must be 1 to 128 bytes of printable UTF-8, without control characters",
                       "--service=\xff", "--", "x");
        memset(service, 's', RUN_SERVICE_MAX + 1);
        service[RUN_SERVICE_MAX + 1] = '\0';
        {
                char *argv[] = { "run", "--service", service, "--", "x", NULL };
                char error[512];
                RunArgs a;
                ck_assert_int_eq(run_parse_args(ARGC(argv), argv, &a, error, sizeof error), -EINVAL);
                ck_assert_ptr_nonnull(strstr(error, "must be 1 to 128 bytes"));
        }

        ASSERT_RUN_BAD("invalid --socket 'agent.sock': must be an absolute path", "--socket", "agent.sock", "--", "x");
        ASSERT_RUN_BAD("invalid --socket '': must be an absolute path", "--socket=", "--", "x");
        {
                char path[200];
                memset(path, 'a', sizeof path - 1);
                path[0] = '/';
                path[sizeof path - 1] = '\0';
                char *argv[] = { "run", "--socket", path, "--", "x", NULL };
                assert_run_args_bad(ARGC(argv), argv, "invalid --socket: path longer than 107 bytes");
        }

#define BAD_INTERVAL(v) "invalid --interval '" v "': must be a number of seconds from 0.05 to 3600"
        ASSERT_RUN_BAD(BAD_INTERVAL("0"), "--interval", "0", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL("0.049"), "--interval", "0.049", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL("3600.5"), "--interval", "3600.5", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL("-1"), "--interval", "-1", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL("1s"), "--interval", "1s", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL(" 1"), "--interval", " 1", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL(""), "--interval=", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL("nan"), "--interval", "nan", "--", "x");
        ASSERT_RUN_BAD(BAD_INTERVAL("inf"), "--interval", "inf", "--", "x");
}
END_TEST

START_TEST(test_run_validate_service) {
        ck_assert_int_eq(run_validate_service("billing"), 0);
        ck_assert_int_eq(run_validate_service("web 1 (eu-west)"), 0);
        ck_assert_int_eq(run_validate_service(""), -EINVAL);
        ck_assert_int_eq(run_validate_service("a\tb"), -EINVAL);
        ck_assert_int_eq(run_validate_service("a\x7f"), -EINVAL);
}
END_TEST

START_TEST(test_run_pythonpath) {
        char *s = NULL;

        ck_assert_int_eq(run_build_pythonpath("/opt/hw", NULL, &s), 0);
        ck_assert_str_eq(s, "/opt/hw");
        free(s);
        /* An empty PYTHONPATH must not become "/opt/hw:", which would add the cwd. */
        ck_assert_int_eq(run_build_pythonpath("/opt/hw", "", &s), 0);
        ck_assert_str_eq(s, "/opt/hw");
        free(s);
        ck_assert_int_eq(run_build_pythonpath("/opt/hw", "/srv/app:/srv/lib", &s), 0);
        ck_assert_str_eq(s, "/opt/hw:/srv/app:/srv/lib");
        free(s);
        s = NULL;
        ck_assert_int_eq(run_build_pythonpath("/opt/a:b", "/x", &s), -EINVAL);
        ck_assert_int_eq(run_build_pythonpath("", "/x", &s), -EINVAL);
        ck_assert_ptr_null(s);
}
END_TEST

/* ---- heapwatch status: options --------------------------------------------------------------- */

START_TEST(test_status_args) {
        char error[256] = "";
        StatusArgs a;

        {
                char *argv[] = { "status", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert_ptr_null(a.url);
                ck_assert_int_eq(a.filter, STATUS_FILTER_LIVE);
                ck_assert(!a.json);
                ck_assert_str_eq(status_filter_to_string(a.filter), "live");
        }
        {
                char *argv[] = { "status", "--url", "http://h:1", "--all", "--json", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert_str_eq(a.url, "http://h:1");
                ck_assert_int_eq(a.filter, STATUS_FILTER_ALL);
                ck_assert(a.json);
                ck_assert_str_eq(status_filter_to_string(a.filter), "all");
        }
        {
                char *argv[] = { "status", "--exited", "--url=http://h:2", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert_str_eq(a.url, "http://h:2");
                ck_assert_int_eq(a.filter, STATUS_FILTER_EXITED);
                ck_assert_str_eq(status_filter_to_string(a.filter), "exited");
        }
        {
                char *argv[] = { "status", "--bogus", "-h", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), -EINVAL);
                ck_assert_str_eq(error, "unknown option '--bogus'");
        }
        {
                char *argv[] = { "status", "-h", "--bogus", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), 0);
                ck_assert(a.help);
        }
        {
                char *argv[] = { "status", "--all", "--exited", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), -EINVAL);
                ck_assert_str_eq(error, "--all and --exited cannot be combined");
        }
        {
                char *argv[] = { "status", "--url", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), -EINVAL);
                ck_assert_str_eq(error, "option --url requires a value");
        }
        {
                char *argv[] = { "status", "--url=", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), -EINVAL);
                ck_assert_str_eq(error, "--url must not be empty");
        }
        {
                char *argv[] = { "status", "live", NULL };
                ck_assert_int_eq(status_parse_args(ARGC(argv), argv, &a, error, sizeof error), -EINVAL);
                ck_assert_str_eq(error, "unexpected argument 'live'");
        }
}
END_TEST

static Suite *cli_format_suite(void) {
        Suite *s = suite_create("cli-format");
        TCase *tc;

        tc = tcase_create("format");
        tcase_add_test(tc, test_format_bytes);
        tcase_add_test(tc, test_format_bytes_number);
        tcase_add_test(tc, test_format_duration);
        tcase_add_test(tc, test_format_sanitize);
        tcase_add_test(tc, test_format_width);
        suite_add_tcase(s, tc);

        tc = tcase_create("table");
        tcase_add_test(tc, test_table_basic);
        tcase_add_test(tc, test_table_shrink);
        tcase_add_test(tc, test_table_bad);
        suite_add_tcase(s, tc);

        tc = tcase_create("run-args");
        tcase_add_test(tc, test_run_args_good);
        tcase_add_test(tc, test_run_args_bad);
        tcase_add_test(tc, test_run_validate_service);
        tcase_add_test(tc, test_run_pythonpath);
        suite_add_tcase(s, tc);

        tc = tcase_create("status-args");
        tcase_add_test(tc, test_status_args);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        SRunner *sr = srunner_create(cli_format_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
