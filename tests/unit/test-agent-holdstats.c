/* SPDX-License-Identifier: MIT */
/*
 * Check tests of agent/holdstats.c: percentiles by nearest rank over the latest durations only,
 * the all-time maximum and count across the ring's wrap, saturation of huge durations in the
 * ring, and an empty summary.
 */
#include <check.h>
#include <stdlib.h>

#include "holdstats.h"

START_TEST(test_empty) {
        struct hw_holdstats h;
        struct hw_holdstats_summary s;

        hw_holdstats_reset(&h);
        hw_holdstats_summarize(&h, &s);
        ck_assert_uint_eq(s.count, 0);
        ck_assert_uint_eq(s.window, 0);
        ck_assert(s.p50_us == 0 && s.p99_us == 0 && s.max_us == 0 && s.mean_us == 0);
}
END_TEST

START_TEST(test_percentiles) {
        struct hw_holdstats h;
        struct hw_holdstats_summary s;

        hw_holdstats_reset(&h);
        /* 1..100 us, in a scrambled order */
        for (unsigned i = 0; i < 100; i++)
                hw_holdstats_record(&h, (uint64_t) ((i * 37) % 100 + 1) * 1000);
        hw_holdstats_summarize(&h, &s);
        ck_assert_uint_eq(s.count, 100);
        ck_assert_uint_eq(s.window, 100);
        ck_assert_double_eq_tol(s.p50_us, 50, 1e-9);
        ck_assert_double_eq_tol(s.p99_us, 99, 1e-9);
        ck_assert_double_eq_tol(s.max_us, 100, 1e-9);
        ck_assert_double_eq_tol(s.mean_us, 50.5, 1e-9);
}
END_TEST

START_TEST(test_ring_wraps_max_kept) {
        struct hw_holdstats h;
        struct hw_holdstats_summary s;

        hw_holdstats_reset(&h);
        hw_holdstats_record(&h, 10ull * 1000000000ull); /* 10 s: saturates in the ring, not in max */
        for (unsigned i = 0; i < 3 * HW_HOLDSTATS_KEPT; i++)
                hw_holdstats_record(&h, 2000);
        hw_holdstats_summarize(&h, &s);
        ck_assert_uint_eq(s.count, 3 * HW_HOLDSTATS_KEPT + 1);
        ck_assert_uint_eq(s.window, HW_HOLDSTATS_KEPT);
        ck_assert_double_eq_tol(s.p99_us, 2, 1e-9); /* the 10 s section left the window */
        ck_assert_double_eq_tol(s.max_us, 1e7, 1e-3);

        hw_holdstats_reset(&h);
        hw_holdstats_record(&h, 10ull * 1000000000ull);
        hw_holdstats_summarize(&h, &s);
        ck_assert_double_eq_tol(s.p50_us, (double) UINT32_MAX / 1e3, 1e-3);
        ck_assert_double_eq_tol(s.max_us, 1e7, 1e-3);
}
END_TEST

START_TEST(test_clock_moves) {
        uint64_t a = hw_holdstats_now_ns(), b = hw_holdstats_now_ns();

        ck_assert_uint_gt(a, 0);
        ck_assert_uint_ge(b, a);
}
END_TEST

int main(void) {
        Suite *s = suite_create("agent-holdstats");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_percentiles);
        tcase_add_test(tc, test_ring_wraps_max_kept);
        tcase_add_test(tc, test_clock_moves);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
