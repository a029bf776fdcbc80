/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/peer-limits.c and the limit keys of daemon/options.c: the token bucket
 * (full at first use, refills at its rate, never beyond its burst, tolerates a clock that goes
 * back, rate 0 unlimited), the keyed bucket table (independent keys, eviction of refilled
 * buckets only, newcomers beyond capacity sharing one overflow bucket so cycling keys gains
 * nothing), the limit counters and their /metrics family, and every limit key with a good and a
 * bad value.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "peer-limits.h"

#define SEC 1000000ULL

START_TEST(test_bucket_basics) {
        TokenBucket b = {};
        uint64_t t = 10 * SEC;
        int taken = 0;

        /* full at first use: burst 5 back to back, then nothing */
        for (int i = 0; i < 10; i++)
                taken += token_bucket_take(&b, 2.0, 5.0, t);
        ck_assert_int_eq(taken, 5);
        ck_assert(token_bucket_wait(&b, 2.0, 5.0, t) > 0.49 && token_bucket_wait(&b, 2.0, 5.0, t) < 0.51);
        /* 2 per second */
        ck_assert(!token_bucket_take(&b, 2.0, 5.0, t + SEC / 4));
        ck_assert(token_bucket_take(&b, 2.0, 5.0, t + SEC / 2));
        /* an hour of quiet refills to the burst, not beyond */
        taken = 0;
        for (int i = 0; i < 100; i++)
                taken += token_bucket_take(&b, 2.0, 5.0, t + 3600 * SEC);
        ck_assert_int_eq(taken, 5);
        /* a clock going back mints nothing */
        ck_assert(!token_bucket_take(&b, 2.0, 5.0, t));
        /* rate 0: unlimited */
        for (int i = 0; i < 1000; i++)
                ck_assert(token_bucket_take(&b, 0, 1, t));
}
END_TEST

START_TEST(test_bucket_sustained_rate) {
        TokenBucket b = {};
        int taken = 0;

        /* 100 s of a client trying every millisecond at 20/s, burst 200: 200 + 20 * 100 */
        for (uint64_t us = SEC; us <= 101 * SEC; us += 1000)
                taken += token_bucket_take(&b, 20.0, 200.0, us);
        ck_assert_int_ge(taken, 2199);
        ck_assert_int_le(taken, 2201);
}
END_TEST

START_TEST(test_table_keys) {
        BucketTable *t = bucket_table_new(4, 1.0, 2.0);
        double retry = 0;

        ck_assert_ptr_nonnull(t);
        ck_assert(bucket_table_take(t, "a", SEC, NULL));
        ck_assert(bucket_table_take(t, "a", SEC, NULL));
        ck_assert(!bucket_table_take(t, "a", SEC, &retry));
        ck_assert(retry > 0.9 && retry <= 1.0);
        /* another key has its own bucket */
        ck_assert(bucket_table_take(t, "b", SEC, NULL));
        ck_assert_uint_eq(bucket_table_size(t), 2);
        /* a refill later, a is allowed again */
        ck_assert(bucket_table_take(t, "a", 2 * SEC, NULL));
        ck_assert_ptr_null(bucket_table_free(t));
        ck_assert_ptr_null(bucket_table_new(0, 1, 1));
}
END_TEST

START_TEST(test_table_overflow) {
        BucketTable *t = bucket_table_new(2, 1.0, 1.0);
        char key[16];
        int allowed = 0;

        /* two keys fill the table and stay active (empty buckets) */
        ck_assert(bucket_table_take(t, "x", SEC, NULL));
        ck_assert(bucket_table_take(t, "y", SEC, NULL));
        /* a hundred fresh keys at the same instant: they share one overflow bucket, so one of
         * them gets a token, not a hundred */
        for (int i = 0; i < 100; i++) {
                snprintf(key, sizeof key, "k%d", i);
                allowed += bucket_table_take(t, key, SEC, NULL);
        }
        ck_assert_int_eq(allowed, 1);
        ck_assert_uint_eq(bucket_table_size(t), 2);
        /* once x and y have refilled completely, their slots can be reused */
        ck_assert(bucket_table_take(t, "new", 10 * SEC, NULL));
        ck_assert(!bucket_table_take(t, "new", 10 * SEC, NULL));
        bucket_table_free(t);
}
END_TEST

START_TEST(test_counters_and_metrics) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        limit_hits_reset();
        for (int k = 0; k < _LIMIT_MAX; k++)
                ck_assert_ptr_nonnull(limit_kind_to_string((LimitKind) k));
        ck_assert_ptr_null(limit_kind_to_string(_LIMIT_MAX));
        limit_hit(LIMIT_FRAME_RATE);
        limit_hits_add(LIMIT_HTTP_TIMEOUT, 3);
        limit_hit(_LIMIT_MAX); /* ignored */
        ck_assert_uint_eq(limit_hits_get(LIMIT_FRAME_RATE), 1);
        ck_assert_uint_eq(limit_hits_get(LIMIT_HTTP_TIMEOUT), 3);
        f = open_memstream(&buf, &size);
        limits_write_metrics(f);
        fclose(f);
        ck_assert_ptr_nonnull(strstr(buf, "# TYPE heapwatch_daemon_limit_hits_total counter\n"));
        ck_assert_ptr_nonnull(strstr(buf, "heapwatch_daemon_limit_hits_total{limit=\"frame_rate\"} 1\n"));
        ck_assert_ptr_nonnull(strstr(buf, "heapwatch_daemon_limit_hits_total{limit=\"http_timeout\"} 3\n"));
        ck_assert_ptr_nonnull(strstr(buf, "heapwatch_daemon_limit_hits_total{limit=\"agent_connections_per_uid\"} 0\n"));
        free(buf);
        limit_hits_reset();
        ck_assert_uint_eq(limit_hits_get(LIMIT_HTTP_TIMEOUT), 0);
}
END_TEST

static void key_ok(Options *o, const char *key, const char *value) {
        char error[256] = "";
        ck_assert_msg(options_set_key(o, key, value, error, sizeof error) == 0, "%s=%s: %s", key, value, error);
}

static void key_bad(const char *key, const char *value) {
        char error[256] = "";
        Options o;

        options_init(&o);
        ck_assert_msg(options_set_key(&o, key, value, error, sizeof error) == -EINVAL, "%s=%s accepted", key, value);
        ck_assert_msg(strstr(error, key), "error does not name %s: %s", key, error);
}

START_TEST(test_option_keys) {
        Options o;

        options_init(&o);
        ck_assert_uint_eq(o.socket_mode, 0666);
        ck_assert_str_eq(o.socket_group, "");
        ck_assert_str_eq(o.http_token_file, "");
        ck_assert_uint_eq(o.limits.max_connections_per_uid, LIMITS_DEFAULT_MAX_CONNECTIONS_PER_UID);
        ck_assert(o.limits.frames_per_second == LIMITS_DEFAULT_FRAMES_PER_SECOND);
        ck_assert(o.limits.idle_timeout == LIMITS_DEFAULT_IDLE_TIMEOUT);
        ck_assert_uint_eq(o.limits.http_connection_memory, LIMITS_DEFAULT_HTTP_CONNECTION_MEMORY);
        ck_assert_uint_eq(o.limits.http_response_budget, LIMITS_DEFAULT_HTTP_RESPONSE_BUDGET);

        {
                static const char *const good[][2] = {
                        { "socket-mode", "0660" },
                        { "socket-group", "heapwatch" },
                        { "http-token-file", "/etc/heapwatch/token" },
                        { "max-connections-per-uid", "8" },
                        { "max-frames-per-second", "5" },
                        { "max-frames-burst", "10" },
                        { "agent-hello-timeout", "2" },
                        { "agent-idle-timeout", "30" },
                        { "http-max-connections", "4" },
                        { "http-max-connections-per-address", "2" },
                        { "http-connection-memory", "8192" },
                        { "http-response-budget", "65536" },
                        { "http-timeout", "3" },
                        { "http-requests-per-second", "0" },
                        { "agent-work-per-minute", "2" },
                        { "agent-work-per-minute-per-client", "4" },
                };
                for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
                        key_ok(&o, good[i][0], good[i][1]);
        }
        ck_assert_uint_eq(o.socket_mode, 0660);
        ck_assert_str_eq(o.socket_group, "heapwatch");
        ck_assert_str_eq(o.http_token_file, "/etc/heapwatch/token");
        ck_assert_uint_eq(o.limits.max_connections_per_uid, 8);
        ck_assert(o.limits.frames_per_second == 5 && o.limits.frames_burst == 10);
        ck_assert(o.limits.hello_timeout == 2 && o.limits.idle_timeout == 30);
        ck_assert_uint_eq(o.limits.http_max_connections, 4);
        ck_assert_uint_eq(o.limits.http_max_connections_per_address, 2);
        ck_assert_uint_eq(o.limits.http_connection_memory, 8192);
        ck_assert_uint_eq(o.limits.http_response_budget, 65536);
        ck_assert(o.limits.http_timeout == 3 && o.limits.http_requests_per_second == 0);
        ck_assert(o.limits.work_per_minute_process == 2 && o.limits.work_per_minute_client == 4);

        key_bad("socket-mode", "0999");
        key_bad("socket-mode", "1777");
        key_bad("socket-mode", "rw");
        key_bad("socket-group", "a/b");
        key_bad("http-token-file", "relative/token");
        key_bad("max-connections-per-uid", "0");
        key_bad("max-frames-per-second", "-1");
        key_bad("max-frames-burst", "0");
        key_bad("agent-hello-timeout", "0");
        key_bad("agent-idle-timeout", "0.5");
        key_bad("http-max-connections", "0");
        key_bad("http-max-connections-per-address", "100000");
        key_bad("http-connection-memory", "1024");
        key_bad("http-response-budget", "65535");
        key_bad("http-response-budget", "1099511627777");
        key_bad("http-timeout", "0");
        key_bad("http-requests-per-second", "x");
        key_bad("agent-work-per-minute", "-2");
        key_bad("agent-work-per-minute-per-client", "99999");
}
END_TEST

static Suite *limits_suite(void) {
        Suite *s = suite_create("peer-limits");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_bucket_basics);
        tcase_add_test(tc, test_bucket_sustained_rate);
        tcase_add_test(tc, test_table_keys);
        tcase_add_test(tc, test_table_overflow);
        tcase_add_test(tc, test_counters_and_metrics);
        tcase_add_test(tc, test_option_keys);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(limits_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
