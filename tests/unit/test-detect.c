/* SPDX-License-Identifier: MIT */
/*
 * Tests for daemon/detect.c, the leak detector: configuration validation, time to limit, and
 * verdicts on deterministic synthetic floors (a noisy linear leak, flat noise, a warm-up that
 * levels off, a one-time step, a GC sawtooth removed by window minima), through both
 * detect_evaluate() and the stateful SeriesDetector with its hysteresis.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "detect.h"

#define MIB (1024.0 * 1024.0)
#define N_FLOOR 120

/* Deterministic noise in [-1, 1). */
static double noise(unsigned *state) {
        *state = *state * 1103515245u + 12345u;
        return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* Floor points one per minute over two hours: base + f(minute) + noise. */
typedef double (*ShapeFn)(double minute);

static double leak_1pct_per_hour_fast(double m) { return 100 * MIB * 0.05 * m / 60; } /* 5 %/h */
static double flat(double m) { (void) m; return 0; }
static double warmup(double m) { return 50 * MIB * (1 - exp(-m / 8)); }     /* levels off in ~30 min */
static double step(double m) { return m < 60 ? 0 : 30 * MIB; }              /* one-time load */

static size_t make_floor(DetectPoint *p, ShapeFn f, double noise_bytes, unsigned seed) {
        for (size_t i = 0; i < N_FLOOR; i++) {
                p[i].t = 1e9 + 60.0 * (double) i;
                p[i].v = 100 * MIB + f((double) i) + noise(&seed) * noise_bytes;
        }
        return N_FLOOR;
}

START_TEST(test_config) {
        DetectConfig c;
        char e[256] = "";

        detect_config_default(&c);
        ck_assert_msg(detect_config_validate(&c, e, sizeof e) == 0, "%s", e);
        c.window_seconds = 0;
        ck_assert_int_eq(detect_config_validate(&c, e, sizeof e), -EINVAL);
        ck_assert(e[0] != '\0');
        detect_config_default(&c);
        c.window_seconds = NAN;
        ck_assert_int_eq(detect_config_validate(&c, e, sizeof e), -EINVAL);
        detect_config_default(&c);
        c.max_horizon_seconds = c.min_horizon_seconds / 2;
        ck_assert_int_eq(detect_config_validate(&c, e, sizeof e), -EINVAL);
        detect_config_default(&c);
        c.min_horizon_seconds = c.window_seconds; /* cannot hold min_points windows */
        ck_assert_int_eq(detect_config_validate(&c, e, sizeof e), -EINVAL);
        ck_assert_str_eq(leak_verdict_to_string(VERDICT_NONE), "none");
        ck_assert_str_eq(leak_verdict_to_string(VERDICT_SUSPECT), "suspect");
        ck_assert_str_eq(leak_verdict_to_string(VERDICT_LEAK), "leak");
}
END_TEST

START_TEST(test_time_to_limit) {
        double eta, early, late;

        /* 100 MiB left at 1 MiB/s (0.5..2): 100 s, 50 s at the fastest, 200 s at the slowest. */
        ck_assert_int_eq(detect_time_to_limit(900 * MIB, 1 * MIB, 0.5 * MIB, 2 * MIB, 1000 * MIB, &eta, &early, &late), 0);
        ck_assert_double_eq_tol(eta, 100, 1e-9);
        ck_assert_double_eq_tol(early, 50, 1e-9);
        ck_assert_double_eq_tol(late, 200, 1e-9);
        /* The interval includes no growth: no upper bound. */
        ck_assert_int_eq(detect_time_to_limit(900 * MIB, 1 * MIB, -1, 2 * MIB, 1000 * MIB, &eta, &early, &late), 0);
        ck_assert(isinf(late));
        /* Not growing: no projection. */
        ck_assert_int_eq(detect_time_to_limit(900 * MIB, 0, 0, 0, 1000 * MIB, &eta, &early, &late), -ERANGE);
}
END_TEST

START_TEST(test_linear_leak_is_a_leak) {
        DetectPoint p[N_FLOOR];
        DetectConfig c;
        DetectResult r;
        size_t n = make_floor(p, leak_1pct_per_hour_fast, 0.5 * MIB, 1);

        detect_config_default(&c);
        ck_assert_int_eq(detect_evaluate(&c, p, n, &r), 0);
        ck_assert_msg(r.verdict == VERDICT_LEAK, "verdict %s: %s", leak_verdict_to_string(r.verdict), r.reason);
        /* 5 MiB/h = 1456 B/s, within the interval, the interval tight around it. */
        ck_assert_double_eq_tol(r.slope, 5 * MIB / 3600, 0.1 * 5 * MIB / 3600);
        ck_assert(r.slope_low <= r.slope && r.slope <= r.slope_high);
        ck_assert(r.slope_low > 0);
        ck_assert(r.p_value < c.alpha_leak);
        ck_assert(r.tau > 0.5);
        ck_assert(r.horizon >= c.min_horizon_seconds);
        ck_assert(r.since >= p[0].t && r.since < p[n - 1].t);
        ck_assert(r.points >= c.min_points);
}
END_TEST

START_TEST(test_not_leaks) {
        static const struct {
                ShapeFn f;
                const char *name;
        } shapes[] = { { flat, "flat" }, { warmup, "warm-up" }, { step, "step" } };
        DetectPoint p[N_FLOOR];
        DetectConfig c;
        DetectResult r;

        detect_config_default(&c);
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
                for (unsigned seed = 1; seed <= 50; seed++) {
                        size_t n = make_floor(p, shapes[k].f, 0.5 * MIB, seed);
                        ck_assert_int_eq(detect_evaluate(&c, p, n, &r), 0);
                        ck_assert_msg(r.verdict != VERDICT_LEAK, "%s (seed %u): leak, %s", shapes[k].name, seed,
                                      r.reason);
                }
}
END_TEST

START_TEST(test_too_little_data) {
        DetectPoint p[N_FLOOR];
        DetectConfig c;
        DetectResult r;

        detect_config_default(&c);
        make_floor(p, leak_1pct_per_hour_fast, 0, 1);
        ck_assert_int_eq(detect_evaluate(&c, p, 5, &r), 0);
        ck_assert_int_eq(r.verdict, VERDICT_NONE);
        ck_assert_ptr_nonnull(r.reason);
}
END_TEST

/* Raw samples every 5 s with a GC sawtooth (40 % of the heap, period 30 s, shorter than the
 * 60 s window) on top of a leak: window minima remove the sawtooth, hysteresis opens after
 * open_after evaluations and the state never flaps. */
START_TEST(test_series_detector_sawtooth_leak) {
        SeriesDetector d;
        DetectConfig c;
        unsigned seed = 3, changes = 0;
        bool changed;
        int r;

        detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        for (double t = 0; t < 3 * 3600; t += 5) {
                double saw = fmod(t, 30) / 30 * 40 * MIB;
                double v = 100 * MIB + 10 * MIB * t / 3600 + saw + noise(&seed) * 0.2 * MIB;
                r = series_detector_add(&d, 1e9 + t, v, &changed);
                ck_assert_int_ge(r, 0);
                changes += changed;
        }
        ck_assert_int_eq(d.state, VERDICT_LEAK);
        ck_assert_uint_le(changes, 2); /* none -> (suspect ->) leak, and no flapping back */
        ck_assert_double_eq_tol(d.last.slope, 10 * MIB / 3600, 0.15 * 10 * MIB / 3600);
        /* Out of order: refused, state unchanged. */
        ck_assert_int_eq(series_detector_add(&d, 1e9, 1, &changed), -EINVAL);
        ck_assert_int_eq(d.state, VERDICT_LEAK);
        series_detector_done(&d);
}
END_TEST

START_TEST(test_series_detector_flat_sawtooth) {
        SeriesDetector d;
        DetectConfig c;
        unsigned seed = 5;
        bool changed;

        detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        for (double t = 0; t < 6 * 3600; t += 5) {
                double saw = fmod(t, 30) / 30 * 40 * MIB;
                ck_assert_int_ge(series_detector_add(&d, 1e9 + t, 100 * MIB + saw + noise(&seed) * 0.5 * MIB, &changed), 0);
                ck_assert_int_eq(d.state, VERDICT_NONE);
        }
        ck_assert(d.evaluated);
        series_detector_done(&d);
}
END_TEST

int main(void) {
        Suite *s = suite_create("detect");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_config);
        tcase_add_test(tc, test_time_to_limit);
        tcase_add_test(tc, test_linear_leak_is_a_leak);
        tcase_add_test(tc, test_not_leaks);
        tcase_add_test(tc, test_too_little_data);
        tcase_add_test(tc, test_series_detector_sawtooth_leak);
        tcase_add_test(tc, test_series_detector_flat_sawtooth);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
