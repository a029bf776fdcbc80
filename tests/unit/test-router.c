/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/router.c: path and method matching (trailing slashes, malformed ids,
 * wrong methods) and the validation of /processes and /series query parameters (missing,
 * garbage, NaN/inf, out of range, from > to, the point cap), including that a failed parse
 * leaves the output untouched and explains itself.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "router.h"

static void assert_route(const char *method, const char *path, RouteKind kind, const char *id) {
        Route r;

        ck_assert_int_eq(router_match(method, path, &r), 0);
        ck_assert_msg(r.kind == kind, "%s %s: got route %s, expected %s", method, path,
                      route_kind_to_string(r.kind), route_kind_to_string(kind));
        ck_assert_str_eq(r.id, id ? id : "");
}

START_TEST(test_match_routes) {
        assert_route("GET", "/healthz", ROUTE_HEALTHZ, NULL);
        assert_route("GET", "/metrics", ROUTE_METRICS, NULL);
        assert_route("GET", "/api/v1/processes", ROUTE_PROCESSES, NULL);
        assert_route("GET", "/api/v1/processes/4242-1234567", ROUTE_PROCESS, "4242-1234567");
        assert_route("GET", "/api/v1/processes/4242-1234567/series", ROUTE_SERIES, "4242-1234567");
        assert_route("GET", "/api/v1/processes/1-0", ROUTE_PROCESS, "1-0");
}
END_TEST

START_TEST(test_match_trailing_slash) {
        assert_route("GET", "/healthz/", ROUTE_HEALTHZ, NULL);
        assert_route("GET", "/metrics/", ROUTE_METRICS, NULL);
        assert_route("GET", "/api/v1/processes/", ROUTE_PROCESSES, NULL);
        assert_route("GET", "/api/v1/processes/4242-1/", ROUTE_PROCESS, "4242-1");
        assert_route("GET", "/api/v1/processes/4242-1/series/", ROUTE_SERIES, "4242-1");
        /* only one */
        assert_route("GET", "/healthz//", ROUTE_NOT_FOUND, NULL);
        assert_route("GET", "/api/v1/processes//", ROUTE_NOT_FOUND, NULL);
        assert_route("GET", "/api/v1/processes/4242-1//", ROUTE_NOT_FOUND, NULL);
}
END_TEST

START_TEST(test_match_not_found) {
        static const char *const paths[] = {
                "", "/", "//", "/healthzx", "/healthz/x", "/HEALTHZ", "/metrics.txt", "/api", "/api/v1",
                "/api/v1/", "/api/v1/processesx", "/api/v2/processes", "/API/v1/processes",
                "/api/v1/processes/abc", "/api/v1/processes/42", "/api/v1/processes/42-",
                "/api/v1/processes/-42", "/api/v1/processes/4-2-3-4", "/api/v1/processes/42-1x",
                "/api/v1/processes/42-1 ", "/api/v1/processes/+42-1", "/api/v1/processes/0x2a-1",
                "/api/v1/processes/42-1/censusx", "/api/v1/processes/42-1/heapx", "/api/v1/processes/42-1/seriesx",
                "/api/v1/processes/42-1/series/x", "/api/v1/processes/42-1/series//",
                "/api/v1/processes//series", "/api/v1/processes/../healthz", "/api/v1/leaks/x", "/api/v1/leak",
        };

        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
                assert_route("GET", paths[i], ROUTE_NOT_FOUND, NULL);
}
END_TEST

START_TEST(test_match_census) {
        static const char *const bad[] = { "PUT", "DELETE", "PATCH", "post", "" };

        assert_route("GET", "/api/v1/processes/42-1/census", ROUTE_CENSUS, "42-1");
        assert_route("HEAD", "/api/v1/processes/42-1/census/", ROUTE_CENSUS, "42-1");
        /* POST is the one other method, and only here */
        assert_route("POST", "/api/v1/processes/42-1/census", ROUTE_CENSUS_REQUEST, "42-1");
        assert_route("POST", "/api/v1/processes/42-1/census/", ROUTE_CENSUS_REQUEST, "42-1");
        assert_route("POST", "/api/v1/processes/42-1", ROUTE_METHOD_NOT_ALLOWED, NULL);
        assert_route("POST", "/api/v1/processes/42-1/heap", ROUTE_METHOD_NOT_ALLOWED, NULL);
        assert_route("POST", "/api/v1/processes/42/census", ROUTE_METHOD_NOT_ALLOWED, NULL);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                assert_route(bad[i], "/api/v1/processes/42-1/census", ROUTE_METHOD_NOT_ALLOWED, NULL);
        ck_assert_str_eq(route_kind_to_string(ROUTE_CENSUS_REQUEST), "census_request");
}
END_TEST

/* 405's Allow names POST where POST is allowed: the census path */
START_TEST(test_method_not_allowed_says_what_is) {
        Route r;

        ck_assert_int_eq(router_match("PUT", "/api/v1/processes/42-1/census", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_METHOD_NOT_ALLOWED);
        ck_assert(r.allows_post);
        ck_assert_int_eq(router_match("PUT", "/metrics", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_METHOD_NOT_ALLOWED);
        ck_assert(!r.allows_post);
        ck_assert_int_eq(router_match("POST", "/metrics", &r), 0);
        ck_assert(!r.allows_post);
}
END_TEST

START_TEST(test_match_id_length) {
        char id[PROCESS_ID_MAX + 8], path[128];

        /* PROCESS_ID_MAX - 1 characters: the longest id the registry can hold. */
        memset(id, '1', PROCESS_ID_MAX - 1);
        id[1] = '-';
        id[PROCESS_ID_MAX - 1] = '\0';
        ck_assert(router_process_id_is_valid(id));
        snprintf(path, sizeof path, "/api/v1/processes/%s/series", id);
        assert_route("GET", path, ROUTE_SERIES, id);

        /* one more is malformed, hence 404 */
        memset(id, '1', PROCESS_ID_MAX);
        id[1] = '-';
        id[PROCESS_ID_MAX] = '\0';
        ck_assert(!router_process_id_is_valid(id));
        snprintf(path, sizeof path, "/api/v1/processes/%s", id);
        assert_route("GET", path, ROUTE_NOT_FOUND, NULL);

        ck_assert(!router_process_id_is_valid(NULL));
        ck_assert(!router_process_id_is_valid(""));
        ck_assert(!router_process_id_is_valid("-"));
}
END_TEST

/* An earlier boot's record is <pid>-<start ticks>-<n> (store.c, archive_other_boots()): two or
 * three runs of digits, nothing else. */
START_TEST(test_match_id_parts) {
        static const char *const good[] = { "42-1", "42-1-7", "1-2-3" };
        static const char *const bad[] = { "42", "42-", "-1", "42-1-", "42--1", "42-1-7-9", "42-1-x", "4a-1", "42-1 " };

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                ck_assert_msg(router_process_id_is_valid(good[i]), "%s", good[i]);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                ck_assert_msg(!router_process_id_is_valid(bad[i]), "%s", bad[i]);
        assert_route("GET", "/api/v1/processes/42-1-7/series", ROUTE_SERIES, "42-1-7");
        assert_route("GET", "/api/v1/processes/42-1-7-9", ROUTE_NOT_FOUND, NULL);
}
END_TEST

START_TEST(test_match_methods) {
        static const char *const bad[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
                                           "get", "Get", "", "GETX" };
        Route r;

        ck_assert_int_eq(router_match("HEAD", "/metrics", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_METRICS);
        ck_assert(r.head);
        ck_assert_int_eq(router_match("GET", "/metrics", &r), 0);
        ck_assert(!r.head);

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                /* 405 on known and unknown paths alike */
                assert_route(bad[i], "/metrics", ROUTE_METHOD_NOT_ALLOWED, NULL);
                assert_route(bad[i], "/api/v1/processes/1-2", ROUTE_METHOD_NOT_ALLOWED, NULL);
                assert_route(bad[i], "/nope", ROUTE_METHOD_NOT_ALLOWED, NULL);
        }
}
END_TEST

START_TEST(test_match_null) {
        Route r = { .kind = ROUTE_HEALTHZ };

        ck_assert_int_eq(router_match(NULL, "/healthz", &r), -EINVAL);
        ck_assert_int_eq(router_match("GET", NULL, &r), -EINVAL);
        ck_assert_int_eq(router_match("GET", "/healthz", NULL), -EINVAL);
        ck_assert_int_eq(r.kind, ROUTE_HEALTHZ);
        ck_assert_ptr_null(route_kind_to_string(_ROUTE_MAX));
}
END_TEST

START_TEST(test_processes_query) {
        ProcessesQuery q;
        char err[ROUTER_ERROR_MAX];

        ck_assert_int_eq(router_parse_processes_query(NULL, NULL, NULL, &q, err, sizeof err), 0);
        ck_assert_int_eq(q.filter, PROCESS_FILTER_ALL);
        ck_assert_int_eq(router_parse_processes_query("all", NULL, NULL, &q, err, sizeof err), 0);
        ck_assert_int_eq(q.filter, PROCESS_FILTER_ALL);
        ck_assert_int_eq(router_parse_processes_query("live", NULL, NULL, &q, err, sizeof err), 0);
        ck_assert_int_eq(q.filter, PROCESS_FILTER_LIVE);
        ck_assert_int_eq(router_parse_processes_query("exited", NULL, NULL, &q, err, sizeof err), 0);
        ck_assert_int_eq(q.filter, PROCESS_FILTER_EXITED);

        q.filter = PROCESS_FILTER_LIVE;
        ck_assert_int_eq(router_parse_processes_query("LIVE", NULL, NULL, &q, err, sizeof err), -EINVAL);
        ck_assert_int_eq(q.filter, PROCESS_FILTER_LIVE); /* untouched on failure */
        ck_assert_ptr_nonnull(strstr(err, "state"));
        ck_assert_ptr_nonnull(strstr(err, "LIVE"));
        ck_assert_int_eq(router_parse_processes_query("", NULL, NULL, &q, err, sizeof err), -EINVAL);
        ck_assert_int_eq(router_parse_processes_query("dead", NULL, NULL, &q, err, sizeof err), -EINVAL);

        /* a NULL or tiny error buffer is fine */
        ck_assert_int_eq(router_parse_processes_query("x", NULL, NULL, &q, NULL, 0), -EINVAL);
        ck_assert_int_eq(router_parse_processes_query("x", NULL, NULL, &q, err, 1), -EINVAL);
        ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_processes_query_pages) {
        static const char *const bad_limits[] = { "0", "1001", "-1", "+5", " 5", "5 ", "0x10", "1e2", "5.0", "", "abc",
                                                  "99999999999999999999999" };
        static const char *const bad_offsets[] = { "-1", "+1", "1e3", "0x1", " 1", "100000001", "", "1.5" };
        ProcessesQuery q;
        char err[ROUTER_ERROR_MAX];

        ck_assert_int_eq(router_parse_processes_query(NULL, NULL, NULL, &q, err, sizeof err), 0);
        ck_assert_uint_eq(q.limit, PROCESSES_LIMIT_DEFAULT);
        ck_assert_uint_eq(q.offset, 0);
        ck_assert_int_eq(router_parse_processes_query("live", "1", "0", &q, err, sizeof err), 0);
        ck_assert_uint_eq(q.limit, 1);
        ck_assert_int_eq(router_parse_processes_query(NULL, "1000", "100000000", &q, err, sizeof err), 0);
        ck_assert_uint_eq(q.limit, PROCESSES_LIMIT_MAX);
        ck_assert_uint_eq(q.offset, PROCESSES_OFFSET_MAX);

        for (size_t i = 0; i < ELEMENTSOF(bad_limits); i++) {
                ck_assert_int_eq(router_parse_processes_query(NULL, bad_limits[i], NULL, &q, err, sizeof err), -EINVAL);
                ck_assert_ptr_nonnull(strstr(err, "invalid limit"));
                ck_assert_ptr_nonnull(strstr(err, "between 1 and 1000"));
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_offsets); i++) {
                ck_assert_int_eq(router_parse_processes_query(NULL, NULL, bad_offsets[i], &q, err, sizeof err), -EINVAL);
                ck_assert_ptr_nonnull(strstr(err, "invalid offset"));
        }
}
END_TEST

START_TEST(test_leaks_query) {
        LeakFilter f = LEAK_FILTER_ALL;
        char err[ROUTER_ERROR_MAX];
        Route r;

        ck_assert_int_eq(router_match("GET", "/api/v1/leaks", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_LEAKS);
        ck_assert_int_eq(router_match("GET", "/api/v1/leaks/", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_LEAKS);
        ck_assert_int_eq(router_match("POST", "/api/v1/leaks", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_METHOD_NOT_ALLOWED);

        ck_assert_int_eq(router_parse_leaks_query(NULL, &f, err, sizeof err), 0);
        ck_assert_int_eq(f, LEAK_FILTER_OPEN); /* the default: what needs attention now */
        ck_assert_int_eq(router_parse_leaks_query("closed", &f, err, sizeof err), 0);
        ck_assert_int_eq(f, LEAK_FILTER_CLOSED);
        ck_assert_int_eq(router_parse_leaks_query("all", &f, err, sizeof err), 0);
        ck_assert_int_eq(f, LEAK_FILTER_ALL);
        ck_assert_int_eq(router_parse_leaks_query("live", &f, err, sizeof err), -EINVAL);
        ck_assert_int_eq(f, LEAK_FILTER_ALL); /* untouched on failure */
        ck_assert_ptr_nonnull(strstr(err, "open, closed or all"));
        ck_assert_int_eq(router_parse_leaks_query("", &f, err, sizeof err), -EINVAL);
}
END_TEST

START_TEST(test_series_defaults) {
        SeriesQuery q;
        char err[ROUTER_ERROR_MAX];

        ck_assert_int_eq(router_parse_series_query("rss_bytes", NULL, NULL, NULL, 1000000.5, &q, err, sizeof err), 0);
        ck_assert_int_eq(q.metric, HISTORY_RSS_BYTES);
        ck_assert(q.to == 1000000.5);
        ck_assert(q.from == 1000000.5 - 3600);
        ck_assert(q.step == 0);

        /* from defaults relative to an explicit to */
        ck_assert_int_eq(router_parse_series_query("threads", NULL, "5000", NULL, 1e9, &q, err, sizeof err), 0);
        ck_assert(q.to == 5000 && q.from == 1400);

        ck_assert_int_eq(router_parse_series_query("gc_pause_max_seconds", "10.25", "20.5", "0.5", 1e9, &q, err,
                                                   sizeof err), 0);
        ck_assert_int_eq(q.metric, HISTORY_GC_PAUSE_MAX_SECONDS);
        ck_assert(q.from == 10.25 && q.to == 20.5 && q.step == 0.5);

        /* from == to is a valid (one instant) range */
        ck_assert_int_eq(router_parse_series_query("vm_bytes", "7", "7", "1", 1e9, &q, err, sizeof err), 0);
}
END_TEST

START_TEST(test_series_every_metric) {
        SeriesQuery q;
        char err[ROUTER_ERROR_MAX];

        for (int m = 0; m < _HISTORY_METRIC_MAX; m++) {
                const char *name = history_metric_to_string((HistoryMetric) m);

                ck_assert_ptr_nonnull(name);
                ck_assert_int_eq(router_parse_series_query(name, NULL, NULL, NULL, 1e9, &q, err, sizeof err), 0);
                ck_assert_int_eq(q.metric, m);
        }
}
END_TEST

static void assert_series_fails(const char *metric, const char *from, const char *to, const char *step,
                                const char *needle) {
        SeriesQuery q = { .metric = HISTORY_THREADS, .from = -1, .to = -2, .step = -3 };
        char err[ROUTER_ERROR_MAX] = "";

        ck_assert_int_eq(router_parse_series_query(metric, from, to, step, 1e9, &q, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, needle), "metric=%s from=%s to=%s step=%s: error \"%s\" lacks \"%s\"",
                      metric, from, to, step, err, needle);
        /* untouched on failure */
        ck_assert(q.metric == HISTORY_THREADS && q.from == -1 && q.to == -2 && q.step == -3);
}

START_TEST(test_series_bad_metric) {
        assert_series_fails(NULL, NULL, NULL, NULL, "missing parameter metric");
        assert_series_fails("", NULL, NULL, NULL, "missing parameter metric");
        assert_series_fails("rss", NULL, NULL, NULL, "unknown metric \"rss\"");
        assert_series_fails("RSS_BYTES", NULL, NULL, NULL, "unknown metric");
        assert_series_fails("rss_bytes ", NULL, NULL, NULL, "unknown metric");
}
END_TEST

START_TEST(test_series_bad_times) {
        static const char *const bad[] = { "", "abc", "12abc", " 12", "12 ", "0x", "1,5", "--1" };
        static const char *const nonfinite[] = { "nan", "NaN", "inf", "-inf", "infinity", "1e999", "-1e999" };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                assert_series_fails("rss_bytes", bad[i], NULL, NULL, "invalid from");
                assert_series_fails("rss_bytes", NULL, bad[i], NULL, "invalid to");
        }
        for (size_t i = 0; i < sizeof nonfinite / sizeof nonfinite[0]; i++) {
                assert_series_fails("rss_bytes", nonfinite[i], "100", NULL, "finite");
                assert_series_fails("rss_bytes", "0", nonfinite[i], NULL, "finite");
        }
        assert_series_fails("rss_bytes", "101", "100", NULL, "after to");
        /* from defaults to to - 3600; a from after now with to defaulted is an error too */
        assert_series_fails("rss_bytes", "2e9", NULL, NULL, "after to");
}
END_TEST

START_TEST(test_series_bad_step) {
        static const char *const out_of_range[] = { "0", "-1", "0.0001", "1e9", "nan", "inf", "-inf" };
        static const char *const garbage[] = { "", "abc", "60s", "1m", " 1" };

        for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++)
                assert_series_fails("rss_bytes", "0", "100", out_of_range[i], "must be between");
        for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
                assert_series_fails("rss_bytes", "0", "100", garbage[i], "invalid step");
}
END_TEST

START_TEST(test_series_point_cap) {
        SeriesQuery q;
        char err[ROUTER_ERROR_MAX];

        /* [0, 10999] at step 1: buckets 0..10999 = 11000, the most allowed */
        ck_assert_int_eq(router_parse_series_query("rss_bytes", "0", "10999", "1", 1e9, &q, err, sizeof err), 0);
        ck_assert_uint_eq(series_bucket_count(q.from, q.to, q.step), SERIES_POINTS_MAX);
        /* more buckets than the cap are no longer refused here: api.c raises the step */
        ck_assert_int_eq(router_parse_series_query("rss_bytes", "0", "11000", "1", 1e9, &q, err, sizeof err), 0);
        ck_assert_int_eq(router_parse_series_query("rss_bytes", "0", "31536000", "0.001", 1e9, &q, err, sizeof err), 0);
        /* only a range no step can cover is; extreme but finite values must not overflow anything */
        assert_series_fails("rss_bytes", "-1e308", "1e308", "31622400", "range too wide");
        assert_series_fails("rss_bytes", "-1e308", "1e308", NULL, "range too wide");
}
END_TEST

START_TEST(test_bucket_count) {
        ck_assert_uint_eq(series_bucket_count(0, 0, 1), 1);
        ck_assert_uint_eq(series_bucket_count(0, 0.5, 1), 1);
        ck_assert_uint_eq(series_bucket_count(0, 1, 1), 2);
        ck_assert_uint_eq(series_bucket_count(0, 3600, 60), 61);
        ck_assert_uint_eq(series_bucket_count(10, 0, 1), 0);
        ck_assert_uint_eq(series_bucket_count(0, 10, 0), 0);
        ck_assert_uint_eq(series_bucket_count(0, 10, NAN), 0);
        ck_assert_uint_eq(series_bucket_count(-1e308, 1e308, 1), SIZE_MAX);
        ck_assert_uint_eq(series_bucket_count(0, INFINITY, 1), SIZE_MAX);
}
END_TEST

START_TEST(test_error_echo_is_sanitized) {
        SeriesQuery q;
        char err[ROUTER_ERROR_MAX], long_metric[600];

        /* bytes a client sent percent-encoded come back as '?', never raw */
        ck_assert_int_eq(router_parse_series_query("a\xff\n\"b", NULL, NULL, NULL, 1e9, &q, err, sizeof err), -EINVAL);
        ck_assert_str_eq(err, "unknown metric \"a??\"b\"");

        /* and long input is cut short */
        memset(long_metric, 'x', sizeof long_metric - 1);
        long_metric[sizeof long_metric - 1] = '\0';
        ck_assert_int_eq(router_parse_series_query(long_metric, NULL, NULL, NULL, 1e9, &q, err, sizeof err), -EINVAL);
        ck_assert_uint_lt(strlen(err), 100);
}
END_TEST

static Suite *router_suite(void) {
        Suite *s = suite_create("router");
        TCase *tc;

        tc = tcase_create("match");
        tcase_add_test(tc, test_match_routes);
        tcase_add_test(tc, test_match_trailing_slash);
        tcase_add_test(tc, test_match_not_found);
        tcase_add_test(tc, test_match_id_length);
        tcase_add_test(tc, test_match_id_parts);
        tcase_add_test(tc, test_match_census);
        tcase_add_test(tc, test_method_not_allowed_says_what_is);
        tcase_add_test(tc, test_match_methods);
        tcase_add_test(tc, test_match_null);
        suite_add_tcase(s, tc);

        tc = tcase_create("query");
        tcase_add_test(tc, test_processes_query);
        tcase_add_test(tc, test_processes_query_pages);
        tcase_add_test(tc, test_leaks_query);
        tcase_add_test(tc, test_series_defaults);
        tcase_add_test(tc, test_series_every_metric);
        tcase_add_test(tc, test_series_bad_metric);
        tcase_add_test(tc, test_series_bad_times);
        tcase_add_test(tc, test_series_bad_step);
        tcase_add_test(tc, test_series_point_cap);
        tcase_add_test(tc, test_bucket_count);
        tcase_add_test(tc, test_error_echo_is_sanitized);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(router_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
