/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for `heapwatch status` rendering (cli/status.c): /api/v1/processes bodies, the
 * documented sample and hostile ones (nulls, wrong types, non-objects, escape sequences,
 * huge argv), rendered at a fixed "now" and width, every line asserted.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "status.h"

/* The time the documented sample's last sample is half a second old. */
#define NOW 1764061300.5

#define DOC_SAMPLE                                                                                  \
        "{\"processes\": [\n"                                                                       \
        "  {\"id\": \"4242-1234567\", \"pid\": 4242, \"ppid\": 4200, \"parent_id\": \"4200-1233000\",\n" \
        "   \"service\": \"billing\", \"argv\": [\"python3\", \"app.py\"], \"uid\": 1000, \"gid\": 1000,\n" \
        "   \"state\": \"live\", \"exit_reason\": null, \"started_at\": 1764061234.56,\n"            \
        "   \"connected_at\": 1764061234.9, \"exited_at\": null, \"last_sample_at\": 1764061300.0,\n" \
        "   \"samples\": 66, \"rss_bytes\": 31457280, \"python_allocated_blocks\": 61234}\n"          \
        "]}"

static char *render(const char *body, StatusFilter filter, size_t width) {
        char *s = NULL;

        ck_assert_int_eq(status_render(body, strlen(body), filter, NOW, width, &s), 0);
        ck_assert_ptr_nonnull(s);
        return s;
}

START_TEST(test_doc_sample) {
        _cleanup_free_ char *s = render(DOC_SAMPLE, STATUS_FILTER_LIVE, 0);

        ck_assert_str_eq(s,
                "ID             PID  SERVICE  STATE       RSS  PY BLOCKS  SAMPLES    AGE  LAST  COMMAND\n"
                "4242-1234567  4242  billing  live   30.0 MiB      61234       66  1m05s    0s  python3 app.py\n");
}
END_TEST

/* A page of a longer listing (docs/api.md: next_offset) says so under the table. */
START_TEST(test_more_pages_noted) {
        static const char body[] =
                "{\"processes\": [{\"id\": \"10-1\", \"pid\": 10, \"service\": \"api\", \"argv\": [\"python3\"],"
                " \"argv_truncated\": false, \"state\": \"live\", \"samples\": 0}], \"next_offset\": 1000}";
        _cleanup_free_ char *s = render(body, STATUS_FILTER_LIVE, 0);
        _cleanup_free_ char *last = render(DOC_SAMPLE, STATUS_FILTER_LIVE, 0);

        ck_assert_ptr_nonnull(strstr(s, "10-1"));
        ck_assert_ptr_nonnull(strstr(s, "(the first 1 shown; more at /api/v1/processes?offset=1000)\n"));
        ck_assert_ptr_null(strstr(last, "more at"));
}
END_TEST

START_TEST(test_nulls_and_wrong_types) {
        static const char body[] =
                "{\"processes\": ["
                /* live, no sample yet: the documented nulls */
                " {\"id\": \"10-1\", \"pid\": 10, \"parent_id\": null, \"service\": \"api\","
                "  \"argv\": [\"python3\", \"-m\", \"api\"], \"state\": \"live\", \"exit_reason\": null,"
                "  \"started_at\": 1764061290.5, \"exited_at\": null, \"last_sample_at\": null,"
                "  \"samples\": 0, \"rss_bytes\": null, \"python_allocated_blocks\": null},"
                /* exited, each documented reason */
                " {\"id\": \"11-1\", \"pid\": 11, \"service\": \"api\", \"argv\": [\"python3\"],"
                "  \"state\": \"exited\", \"exit_reason\": \"exit\", \"started_at\": 1764057700.5,"
                "  \"last_sample_at\": 1764061000.5, \"samples\": 3300, \"rss_bytes\": 2147483648,"
                "  \"python_allocated_blocks\": 1500000},"
                " {\"id\": \"12-1\", \"pid\": 12, \"service\": \"api\", \"argv\": [\"python3\"],"
                "  \"state\": \"exited\", \"exit_reason\": \"connection_lost\", \"started_at\": 1763861300.5,"
                "  \"last_sample_at\": 1763861400.5, \"samples\": 100, \"rss_bytes\": 1023,"
                "  \"python_allocated_blocks\": 0},"
                /* every member of the wrong type */
                " {\"id\": 5, \"pid\": \"4242\", \"service\": 17, \"argv\": \"python3 app.py\","
                "  \"state\": true, \"exit_reason\": 3, \"started_at\": \"yesterday\","
                "  \"last_sample_at\": [], \"samples\": -1, \"rss_bytes\": \"big\","
                "  \"python_allocated_blocks\": -5},"
                /* numbers as reals, argv with non-strings, pid 0, a start in the near future */
                " {\"id\": \"13-1\", \"pid\": 0, \"service\": \"\", \"argv\": [\"python3\", 7, null],"
                "  \"state\": \"exited\", \"exit_reason\": null, \"started_at\": 1764061301.0,"
                "  \"last_sample_at\": 1764061400.0, \"samples\": 12.0, \"rss_bytes\": 1536.0,"
                "  \"python_allocated_blocks\": 1e300},"
                /* not processes at all: skipped */
                " 42, null, \"x\", [],"
                /* an object with nothing in it */
                " {}"
                "]}";
        _cleanup_free_ char *s = render(body, STATUS_FILTER_ALL, 0);

        ck_assert_str_eq(s,
                "ID    PID  SERVICE  STATE              RSS  PY BLOCKS  SAMPLES    AGE   LAST  COMMAND\n"
                "10-1   10  api      live                 -          -        0    10s      -  python3 -m api\n"
                "11-1   11  api      exited (exit)  2.0 GiB    1500000     3300  1h00m  5m00s  python3\n"
                "12-1   12  api      exited (lost)   1023 B          0      100  2d07h  2d07h  python3\n"
                "-       -  -        -                    -          -        -      -      -  -\n"
                "13-1    -  -        exited         1.5 KiB          -       12     0s      -  python3 ? ?\n"
                "-       -  -        -                    -          -        -      -      -  -\n");
}
END_TEST

START_TEST(test_hostile_strings) {
        /* A process may claim any argv and service; none of it may reach the terminal raw. */
        static const char body[] =
                "{\"processes\": [{\"id\": \"1-1\", \"pid\": 1, \"service\": \"\\u001b[31mred\","
                " \"argv\": [\"sh\", \"-c\", \"\\u001b]0;pwned\\u0007\\r\\n\\u202etxt.exe\"], \"state\": \"live\"}]}";
        _cleanup_free_ char *s = render(body, STATUS_FILTER_LIVE, 0);

        ck_assert_str_eq(s,
                "ID   PID  SERVICE   STATE  RSS  PY BLOCKS  SAMPLES  AGE  LAST  COMMAND\n"
                "1-1    1  ?[31mred  live     -          -        -    -     -  sh -c ?]0;pwned????txt.exe\n");
        ck_assert_ptr_null(strchr(s, '\033'));
}
END_TEST

START_TEST(test_width) {
        static const char body[] =
                "{\"processes\": [{\"id\": \"4242-1234567\", \"pid\": 4242, \"service\": \"billing\","
                " \"argv\": [\"/usr/bin/python3\", \"-m\", \"gunicorn\", \"--workers\", \"4\", \"app:wsgi\"],"
                " \"state\": \"live\", \"started_at\": 1764061234.56, \"last_sample_at\": 1764061300.0,"
                " \"samples\": 66, \"rss_bytes\": 31457280, \"python_allocated_blocks\": 61234}]}";
        _cleanup_free_ char *wide = render(body, STATUS_FILTER_LIVE, 0);
        _cleanup_free_ char *s100 = render(body, STATUS_FILTER_LIVE, 100);
        _cleanup_free_ char *s80 = render(body, STATUS_FILTER_LIVE, 80);

        ck_assert_str_eq(wide,
                "ID             PID  SERVICE  STATE       RSS  PY BLOCKS  SAMPLES    AGE  LAST  COMMAND\n"
                "4242-1234567  4242  billing  live   30.0 MiB      61234       66  1m05s    0s  /usr/bin/python3 -m gunicorn --workers 4 app:wsgi\n");
        /* 100 columns: the command gets what the other columns leave, 21. */
        ck_assert_str_eq(s100,
                "ID             PID  SERVICE  STATE       RSS  PY BLOCKS  SAMPLES    AGE  LAST  COMMAND\n"
                "4242-1234567  4242  billing  live   30.0 MiB      61234       66  1m05s    0s  /usr/bin/python3 -...\n");
        /* 80 columns: the command keeps its minimum of 16; the line wraps rather than lose it. */
        ck_assert_str_eq(s80,
                "ID             PID  SERVICE  STATE       RSS  PY BLOCKS  SAMPLES    AGE  LAST  COMMAND\n"
                "4242-1234567  4242  billing  live   30.0 MiB      61234       66  1m05s    0s  /usr/bin/pyth...\n");
}
END_TEST

START_TEST(test_long_values) {
        /* A 128-byte service is capped at 24 columns; a huge argv is bounded. */
        size_t n = 5 * 20000 + 1000; /* 20000 times ,"a" plus the rest */
        _cleanup_free_ char *body = malloc(n), *s = NULL;
        char service[129];
        size_t len;
        char *line2;

        memset(service, 's', 128);
        service[128] = '\0';
        len = (size_t) snprintf(body, n, "{\"processes\": [{\"id\": \"1-1\", \"pid\": 1, \"service\": \"%s\", \"argv\": [", service);
        for (int i = 0; i < 20000; i++)
                len += (size_t) snprintf(body + len, n - len, "%s\"a\"", i ? "," : "");
        snprintf(body + len, n - len, "], \"state\": \"live\"}]}");

        s = render(body, STATUS_FILTER_LIVE, 0);
        line2 = strchr(s, '\n') + 1;
        ck_assert_int_eq(strncmp(line2, "1-1    1  sssssssssssssssssssss...  live", 40), 0);
        ck_assert_uint_le(strlen(line2), 16384 + 100);
        /* Cut at 16380 bytes of "a a a ...", where a space follows an 'a'. */
        ck_assert_str_eq(line2 + strlen(line2) - 9, " a a ...\n");
        ck_assert_uint_eq(strlen(strstr(line2, "  a a a") + 2), 16380 + strlen("...\n"));
}
END_TEST

START_TEST(test_empty) {
        static const char body[] = "{\"processes\": []}";
        _cleanup_free_ char *live = render(body, STATUS_FILTER_LIVE, 0);
        _cleanup_free_ char *all = render(body, STATUS_FILTER_ALL, 0);
        _cleanup_free_ char *exited = render(body, STATUS_FILTER_EXITED, 0);
        _cleanup_free_ char *junk = render("{\"processes\": [1, \"a\", null]}", STATUS_FILTER_ALL, 0);

        ck_assert_str_eq(live, "No live processes are tracked (--all includes exited ones).\n");
        ck_assert_str_eq(all, "No processes are tracked.\n");
        ck_assert_str_eq(exited, "No exited processes are tracked.\n");
        ck_assert_str_eq(junk, "No processes are tracked.\n");
}
END_TEST

START_TEST(test_not_a_process_list) {
        static const char *const bodies[] = {
                "",
                "<html>404</html>",
                "[]",
                "null",
                "{}",
                "{\"processes\": null}",
                "{\"processes\": {}}",
                "{\"processes\": [",
                "{\"processes\": [], \"processes\": []}",
                "{\"error\": \"unknown path\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
                char *s = NULL;
                ck_assert_int_eq(status_render(bodies[i], strlen(bodies[i]), STATUS_FILTER_ALL, NOW, 0, &s), -EBADMSG);
                ck_assert_ptr_null(s);
        }

        /* A NUL inside the body (jansson refuses \u0000 and raw NULs alike). */
        {
                static const char body[] = "{\"processes\": [{\"id\": \"a\\u0000b\"}]}";
                char *s = NULL;
                ck_assert_int_eq(status_render(body, sizeof body - 1, STATUS_FILTER_ALL, NOW, 0, &s), -EBADMSG);
        }
}
END_TEST

static Suite *cli_status_suite(void) {
        Suite *s = suite_create("cli-status");
        TCase *tc = tcase_create("render");

        tcase_add_test(tc, test_doc_sample);
        tcase_add_test(tc, test_more_pages_noted);
        tcase_add_test(tc, test_nulls_and_wrong_types);
        tcase_add_test(tc, test_hostile_strings);
        tcase_add_test(tc, test_width);
        tcase_add_test(tc, test_long_values);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_not_a_process_list);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(cli_status_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
