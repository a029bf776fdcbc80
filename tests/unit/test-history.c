/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/history.c: metric names round-trip and unknown names are refused;
 * points must come in strictly increasing time; the ring grows lazily and, once at capacity,
 * keeps exactly the newest `capacity` points in order (checked after every append across the
 * growth steps and many wrap-arounds); history_lower_bound() on empty, before, between, exact
 * and after; and the values history_point_from_sample() derives from a sample (per-generation
 * figures, sums over generations, the maximum of the pause maxima).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "sample.h"

static HwSample sample_at(double t) {
        HwSample s = { .time = t, .rss_bytes = (int64_t) (t * 1000), .vm_bytes = 2 * (int64_t) t, .threads = 1 };
        return s;
}

START_TEST(test_metric_names) {
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++) {
                const char *name = history_metric_to_string((HistoryMetric) m);
                ck_assert_ptr_nonnull(name);
                ck_assert_int_eq(history_metric_from_string(name), m);
                for (int n = 0; n < m; n++)
                        ck_assert_str_ne(name, history_metric_to_string((HistoryMetric) n));
        }
        ck_assert_str_eq(history_metric_to_string(HISTORY_RSS_BYTES), "rss_bytes");
        ck_assert_str_eq(history_metric_to_string(HISTORY_GC_PAUSE_MAX_SECONDS), "gc_pause_max_seconds");
        ck_assert_int_eq(history_metric_from_string("gc_count_gen2"), HISTORY_GC_COUNT_GEN2);

        ck_assert_ptr_null(history_metric_to_string(_HISTORY_METRIC_MAX));
        ck_assert_ptr_null(history_metric_to_string((HistoryMetric) -1));
        ck_assert_ptr_null(history_metric_to_string((HistoryMetric) 1000));

        ck_assert_int_eq(history_metric_from_string(NULL), -EINVAL);
        ck_assert_int_eq(history_metric_from_string(""), -EINVAL);
        ck_assert_int_eq(history_metric_from_string("nope"), -EINVAL);
        ck_assert_int_eq(history_metric_from_string("RSS_BYTES"), -EINVAL);
        ck_assert_int_eq(history_metric_from_string("rss_bytes "), -EINVAL);
        ck_assert_int_eq(history_metric_from_string("rss"), -EINVAL);
        ck_assert_int_eq(history_metric_from_string("rss_bytesx"), -EINVAL);
        ck_assert_int_eq(history_metric_from_string("gc_count_gen3"), -EINVAL);
}
END_TEST

START_TEST(test_new_free) {
        History *h;

        ck_assert_ptr_null(history_new(0));
        ck_assert_ptr_null(history_free(NULL));
        h = history_new(7);
        ck_assert_ptr_nonnull(h);
        ck_assert_uint_eq(history_capacity(h), 7);
        ck_assert_uint_eq(history_size(h), 0);
        ck_assert_ptr_null(history_get(h, 0));
        ck_assert_uint_eq(history_lower_bound(h, 0), 0);
        ck_assert_ptr_null(history_free(h));
}
END_TEST

START_TEST(test_append_increasing) {
        History *h = history_new(100);
        HwSample s;

        for (int i = 1; i <= 10; i++) {
                s = sample_at(i * 1.5);
                ck_assert_int_eq(history_append(h, &s), 0);
                ck_assert_uint_eq(history_size(h), (size_t) i);
        }
        for (size_t i = 0; i < 10; i++) {
                const HistoryPoint *p = history_get(h, i);
                ck_assert_ptr_nonnull(p);
                ck_assert_double_eq(p->time, (double) (i + 1) * 1.5);
                ck_assert_double_eq(p->values[HISTORY_RSS_BYTES], (double) (int64_t) ((double) (i + 1) * 1.5 * 1000));
        }
        ck_assert_ptr_null(history_get(h, 10));
        ck_assert_ptr_null(history_get(h, SIZE_MAX));
        history_free(h);
}
END_TEST

START_TEST(test_append_not_newer_refused) {
        History *h = history_new(10);
        HwSample s;

        s = sample_at(100);
        ck_assert_int_eq(history_append(h, &s), 0);
        s = sample_at(100); /* same time */
        ck_assert_int_eq(history_append(h, &s), -EINVAL);
        s = sample_at(99.999); /* older */
        ck_assert_int_eq(history_append(h, &s), -EINVAL);
        s = sample_at(NAN); /* never "newer" */
        ck_assert_int_eq(history_append(h, &s), -EINVAL);
        ck_assert_uint_eq(history_size(h), 1);
        ck_assert_double_eq(history_get(h, 0)->time, 100);
        s = sample_at(nextafter(100, 200)); /* the smallest step is enough */
        ck_assert_int_eq(history_append(h, &s), 0);
        ck_assert_uint_eq(history_size(h), 2);

        /* Also after wrapping: the comparison is with the newest point, not slot 0. */
        for (int i = 0; i < 25; i++) {
                s = sample_at(200 + i);
                ck_assert_int_eq(history_append(h, &s), 0);
        }
        ck_assert_uint_eq(history_size(h), 10);
        s = sample_at(224);
        ck_assert_int_eq(history_append(h, &s), -EINVAL);
        s = sample_at(215.5);
        ck_assert_int_eq(history_append(h, &s), -EINVAL);
        s = sample_at(224.5);
        ck_assert_int_eq(history_append(h, &s), 0);
        ck_assert_double_eq(history_get(h, 9)->time, 224.5);
        ck_assert_double_eq(history_get(h, 0)->time, 216);
        history_free(h);
}
END_TEST

/* Append n points at times 1..n to a history of `capacity` and check after every append that
 * it holds exactly the newest min(i, capacity) points, oldest first. */
static void check_ring(size_t capacity, size_t n) {
        History *h = history_new(capacity);

        ck_assert_ptr_nonnull(h);
        for (size_t i = 1; i <= n; i++) {
                HwSample s = sample_at((double) i);
                size_t expect = i < capacity ? i : capacity;

                ck_assert_int_eq(history_append(h, &s), 0);
                ck_assert_uint_eq(history_size(h), expect);
                ck_assert_uint_eq(history_capacity(h), capacity);
                /* Plain comparisons in the inner loop: every ck_assert is a round trip to the
                 * runner, and this loop runs ~10^6 times (too slow under valgrind otherwise). */
                for (size_t j = 0; j < expect; j++) {
                        const HistoryPoint *p = history_get(h, j);
                        double t = (double) (i - expect + 1 + j);
                        if (!p || p->time != t || p->values[HISTORY_RSS_BYTES] != t * 1000 ||
                            p->values[HISTORY_VM_BYTES] != 2 * t)
                                ck_abort_msg("capacity %zu after %zu: point %zu is %g, want %g", capacity, i, j,
                                             p ? p->time : -1.0, t);
                }
                ck_assert_ptr_null(history_get(h, expect));
        }
        history_free(h);
}

START_TEST(test_ring_growth_and_wrap) {
        check_ring(1, 10);
        check_ring(2, 9);
        check_ring(5, 23);
        check_ring(63, 200);
        check_ring(64, 200);   /* exactly the first allocation */
        check_ring(65, 300);   /* one over: grows 64 -> 65 */
        check_ring(200, 1000); /* grows 64 -> 128 -> 200 (clamped), then wraps 4 times */
        check_ring(256, 700);  /* 64 -> 128 -> 256 */
}
END_TEST

START_TEST(test_ring_large_capacity_lazy) {
        /* A huge capacity costs nothing until used: a short-lived process with three points. */
        History *h = history_new(SIZE_MAX / 2);
        HwSample s;

        ck_assert_ptr_nonnull(h);
        for (int i = 1; i <= 3; i++) {
                s = sample_at(i);
                ck_assert_int_eq(history_append(h, &s), 0);
        }
        ck_assert_uint_eq(history_size(h), 3);
        ck_assert_double_eq(history_get(h, 2)->time, 3);
        history_free(h);
}
END_TEST

START_TEST(test_lower_bound) {
        History *h = history_new(5);
        HwSample s;

        ck_assert_uint_eq(history_lower_bound(h, 0), 0);
        ck_assert_uint_eq(history_lower_bound(h, -1e300), 0);

        s = sample_at(10);
        history_append(h, &s);
        ck_assert_uint_eq(history_lower_bound(h, 5), 0);
        ck_assert_uint_eq(history_lower_bound(h, 10), 0);
        ck_assert_uint_eq(history_lower_bound(h, 10.5), 1);

        /* Wrap so the oldest point is not in slot 0: times 30..70 step 10 remain. */
        for (int t = 20; t <= 70; t += 10) {
                s = sample_at(t);
                ck_assert_int_eq(history_append(h, &s), 0);
        }
        ck_assert_uint_eq(history_size(h), 5);
        ck_assert_double_eq(history_get(h, 0)->time, 30);
        ck_assert_uint_eq(history_lower_bound(h, 0), 0);    /* before all */
        ck_assert_uint_eq(history_lower_bound(h, 29.9), 0); /* just before */
        ck_assert_uint_eq(history_lower_bound(h, 30), 0);   /* exact first */
        ck_assert_uint_eq(history_lower_bound(h, 30.1), 1); /* between */
        ck_assert_uint_eq(history_lower_bound(h, 45), 2);
        ck_assert_uint_eq(history_lower_bound(h, 50), 2);   /* exact middle */
        ck_assert_uint_eq(history_lower_bound(h, 69), 4);
        ck_assert_uint_eq(history_lower_bound(h, 70), 4);   /* exact last */
        ck_assert_uint_eq(history_lower_bound(h, 70.1), 5); /* after all: size */
        ck_assert_uint_eq(history_lower_bound(h, INFINITY), 5);
        ck_assert_uint_eq(history_lower_bound(h, -INFINITY), 0);

        /* Exhaustive against a linear scan on a larger, wrapped ring. */
        history_free(h);
        h = history_new(37);
        for (int i = 0; i < 100; i++) {
                s = sample_at(i * 2.0);
                history_append(h, &s);
        }
        for (double t = 100; t <= 202; t += 0.5) {
                size_t want = 0;
                while (want < history_size(h) && history_get(h, want)->time < t)
                        want++;
                ck_assert_msg(history_lower_bound(h, t) == want, "t=%g", t);
        }
        history_free(h);
}
END_TEST

START_TEST(test_point_from_sample) {
        HwSample s = {
                .time = 1764061251.02,
                .rss_bytes = 31457280,
                .vm_bytes = 412090368,
                .threads = 3,
                .has_cgroup = true,
                .cgroup_memory_current_bytes = 52428800,
                .python_allocated_blocks = 61234,
                .gc_garbage = 2,
                .gc_generations = 4,
                .gc = {
                        { .count = 412, .collections = 120, .collected = 3100, .uncollectable = 1,
                          .pause_seconds_total = 0.00021, .pause_seconds_max = 0.00009 },
                        { .count = 5, .collections = 11, .collected = 200, .uncollectable = 2,
                          .pause_seconds_total = 0.0005, .pause_seconds_max = 0.0005 },
                        { .count = -2, .collections = 1, .collected = 7, .uncollectable = 3,
                          .pause_seconds_total = 0.25, .pause_seconds_max = 0.2 },
                        { .count = 99, .collections = 98, .collected = 1000, .uncollectable = 4,
                          .pause_seconds_total = 0.01, .pause_seconds_max = 0.01 },
                },
        };
        HistoryPoint p;

        memset(&p, 0x5a, sizeof p);
        history_point_from_sample(&p, &s);
        ck_assert_double_eq(p.time, 1764061251.02);
        ck_assert_double_eq(p.values[HISTORY_RSS_BYTES], 31457280);
        ck_assert_double_eq(p.values[HISTORY_VM_BYTES], 412090368);
        ck_assert_double_eq(p.values[HISTORY_THREADS], 3);
        ck_assert_double_eq(p.values[HISTORY_CGROUP_MEMORY_BYTES], 52428800);
        ck_assert_double_eq(p.values[HISTORY_PYTHON_ALLOCATED_BLOCKS], 61234);
        ck_assert_double_eq(p.values[HISTORY_GC_COUNT_GEN0], 412);
        ck_assert_double_eq(p.values[HISTORY_GC_COUNT_GEN1], 5);
        ck_assert_double_eq(p.values[HISTORY_GC_COUNT_GEN2], -2);
        ck_assert_double_eq(p.values[HISTORY_GC_COLLECTIONS_GEN0], 120);
        ck_assert_double_eq(p.values[HISTORY_GC_COLLECTIONS_GEN1], 11);
        ck_assert_double_eq(p.values[HISTORY_GC_COLLECTIONS_GEN2], 1);
        /* Totals include a 4th generation, which has no per-generation series. */
        ck_assert_double_eq(p.values[HISTORY_GC_COLLECTED_TOTAL], 3100 + 200 + 7 + 1000);
        ck_assert_double_eq(p.values[HISTORY_GC_UNCOLLECTABLE_TOTAL], 1 + 2 + 3 + 4);
        ck_assert_double_eq(p.values[HISTORY_GC_GARBAGE], 2);
        ck_assert_double_eq_tol(p.values[HISTORY_GC_PAUSE_SECONDS], 0.00021 + 0.0005 + 0.25 + 0.01, 1e-15);
        ck_assert_double_eq(p.values[HISTORY_GC_PAUSE_MAX_SECONDS], 0.2); /* max, not sum */

        /* Only gc_generations entries count; no cgroup means 0. */
        s.gc_generations = 2;
        s.has_cgroup = false;
        history_point_from_sample(&p, &s);
        ck_assert_double_eq(p.values[HISTORY_CGROUP_MEMORY_BYTES], 0);
        ck_assert_double_eq(p.values[HISTORY_GC_COUNT_GEN2], 0);
        ck_assert_double_eq(p.values[HISTORY_GC_COLLECTIONS_GEN2], 0);
        ck_assert_double_eq(p.values[HISTORY_GC_COLLECTED_TOTAL], 3300);
        ck_assert_double_eq(p.values[HISTORY_GC_UNCOLLECTABLE_TOTAL], 3);
        ck_assert_double_eq_tol(p.values[HISTORY_GC_PAUSE_SECONDS], 0.00071, 1e-15);
        ck_assert_double_eq(p.values[HISTORY_GC_PAUSE_MAX_SECONDS], 0.0005);

        /* No generations at all: zeros, not stale memory. */
        s.gc_generations = 0;
        memset(&p, 0x5a, sizeof p);
        history_point_from_sample(&p, &s);
        for (int m = HISTORY_GC_COUNT_GEN0; m <= HISTORY_GC_UNCOLLECTABLE_TOTAL; m++)
                ck_assert_double_eq(p.values[m], 0);
        ck_assert_double_eq(p.values[HISTORY_GC_PAUSE_SECONDS], 0);
        ck_assert_double_eq(p.values[HISTORY_GC_PAUSE_MAX_SECONDS], 0);

        /* A corrupt generation count cannot read past gc[]. */
        s.gc_generations = 1000;
        history_point_from_sample(&p, &s);
        ck_assert_double_eq(p.values[HISTORY_GC_UNCOLLECTABLE_TOTAL], 10);
}
END_TEST

START_TEST(test_append_stores_point_from_sample) {
        History *h = history_new(3);
        HwSample s = { .time = 5, .rss_bytes = 7, .threads = 2, .gc_generations = 1,
                       .gc = { { .collected = 9, .pause_seconds_max = 0.5, .pause_seconds_total = 0.75 } } };
        HistoryPoint want;

        history_point_from_sample(&want, &s);
        ck_assert_int_eq(history_append(h, &s), 0);
        ck_assert_mem_eq(history_get(h, 0), &want, sizeof want);
        history_free(h);
}
END_TEST

static Suite *history_suite(void) {
        Suite *s = suite_create("history");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_metric_names);
        tcase_add_test(tc, test_new_free);
        tcase_add_test(tc, test_append_increasing);
        tcase_add_test(tc, test_append_not_newer_refused);
        tcase_add_test(tc, test_ring_growth_and_wrap);
        tcase_add_test(tc, test_ring_large_capacity_lazy);
        tcase_add_test(tc, test_lower_bound);
        tcase_add_test(tc, test_point_from_sample);
        tcase_add_test(tc, test_append_stores_point_from_sample);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(history_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
