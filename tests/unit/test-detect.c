/* SPDX-License-Identifier: MIT */
/*
 * Tests for daemon/detect.c, the leak detector: configuration validation, time to limit, and
 * verdicts on deterministic synthetic floors (a noisy linear leak, flat noise, a warm-up that
 * levels off, a one-time step, a GC sawtooth removed by window minima), through both
 * detect_evaluate() and the stateful SeriesDetector with its hysteresis; the floor's
 * autocorrelation (detect-acf.c) against hand-computed values.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect-acf.h"
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

/* Mann-Kendall and Theil-Sen against values computed by hand from the textbook formulas
 * (Kendall 1975, Sen 1968, Gilbert 1987) for ten points one minute apart: S = 39 of 45 pairs,
 * Var S = n(n-1)(2n+5)/18 = 125, z = (S-1)/sqrt(125) = 3.39882, one-sided p = 3.3838e-4,
 * tau = 39/45; the 45 pairwise slopes have median 1/60 per second and the 95 % interval is
 * the 12th and 34th smallest (C = 1.96 sqrt(125) = 21.913): 0.0125 and 0.02222. The rank
 * autocorrelations of the residuals are all inside +-1.96/sqrt(10), so no Hamed-Rao
 * correction applies. Ten points without ties take the exact p-value, not the normal one:
 * S = 39 is 3 inversions, and permutations of 10 with at most 3 inversions are
 * 1 + 9 + 44 + 155 = 209 (Mahonian numbers), p = 209/10! = 5.7595e-5 (the normal
 * approximation above: 3.3838e-4). */
START_TEST(test_mann_kendall_sen_reference) {
        static const double v[] = { 10, 12, 11, 14, 13, 15, 17, 16, 18, 20 };
        DetectPoint p[10];
        DetectConfig c;
        DetectResult r;

        for (size_t i = 0; i < 10; i++)
                p[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = v[i] };
        detect_config_default(&c);
        c.window_seconds = 60;
        c.min_points = 6;
        c.min_horizon_seconds = 540; /* one horizon: the whole series */
        c.max_horizon_seconds = 540;
        c.min_growth_absolute_per_hour = 0;
        ck_assert_int_eq(detect_evaluate(&c, p, 10, &r), 0);
        ck_assert_uint_eq(r.points, 10);
        ck_assert_double_eq_tol(r.horizon, 540, 1e-9);
        ck_assert_double_eq_tol(r.p_value, 209.0 / 3628800.0, 1e-15);
        ck_assert_double_eq_tol(r.tau, 39.0 / 45.0, 1e-12);
        ck_assert_double_eq_tol(r.slope, 1.0 / 60.0, 1e-12);
        ck_assert_double_eq_tol(r.slope_low, 0.0125, 1e-12);
        ck_assert_double_eq_tol(r.slope_high, 1.0 / 45.0, 1e-12);
}
END_TEST

/* One horizon over all n points, one minute apart; returns the Mann-Kendall p-value. */
static double mann_kendall_p(const double *v, size_t n) {
        DetectPoint p[32];
        DetectConfig c;
        DetectResult r;

        ck_assert_uint_le(n, 32);
        for (size_t i = 0; i < n; i++)
                p[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = v[i] };
        detect_config_default(&c);
        c.window_seconds = 60;
        c.min_points = 6;
        c.min_horizon_seconds = 60.0 * (double) (n - 1);
        c.max_horizon_seconds = c.min_horizon_seconds;
        c.min_growth_absolute_per_hour = 0;
        ck_assert_int_eq(detect_evaluate(&c, p, n, &r), 0);
        ck_assert_uint_eq(r.points, n);
        return r.p_value;
}

/* The exact null distribution for short series without ties, the normal approximation for
 * longer ones and for ties. Increments vary so that the residuals around the Theil-Sen line
 * carry no significant autocorrelation (no Hamed-Rao inflation). */
START_TEST(test_mann_kendall_exact) {
        static const double step[] = { 1.0, 1.3, 0.8, 1.1, 0.9, 1.4, 0.7, 1.2, 1.0, 1.25, 0.85,
                                       1.15, 0.95, 1.35, 0.75, 1.05, 1.3, 0.9, 1.2, 0.8 };
        double v[21];

        v[0] = 100;
        for (size_t i = 1; i < 21; i++)
                v[i] = v[i - 1] + step[i - 1];
        /* Ten points in order: 1 permutation of 10! (normal approximation: 4.2e-5). */
        ck_assert_double_eq_tol(mann_kendall_p(v, 10), 1.0 / 3628800.0, 1e-15);
        /* Twenty: 1/20! = 4.1e-19, where the normal approximation says 4.3e-10. */
        ck_assert_double_le(mann_kendall_p(v, 20), 1e-18);
        /* Twenty-one points: the normal approximation, z = (210 - 1)/sqrt(21*20*47/18). */
        ck_assert_double_eq_tol(mann_kendall_p(v, 21), 0.5 * erfc(209 / sqrt(21.0 * 20 * 47 / 18) / M_SQRT2), 1e-15);
        /* One tie among ten points: S = 44 of 45 pairs, Var S = (10*9*25 - 2*1*9)/18 = 124:
         * the normal approximation, z = 43/sqrt(124). */
        v[5] = v[4];
        ck_assert_double_eq_tol(mann_kendall_p(v, 10), 0.5 * erfc(43 / sqrt(124.0) / M_SQRT2), 1e-12);
}
END_TEST

/* Feed raw samples every 10 s from t = 0 and return the first time the state reached `want`
 * (NAN: never) and the number of state changes. */
typedef double (*SignalFn)(double t, unsigned *seed);

/* config: NULL for the defaults. */
static double run_detector_config(const DetectConfig *config, SignalFn f, double hours, double every,
                                  LeakVerdict want, unsigned seed, unsigned *ret_changes) {
        SeriesDetector d;
        DetectConfig c;
        unsigned changes = 0;
        double first = NAN;
        bool changed;

        if (config)
                c = *config;
        else
                detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        for (double t = 0; t < hours * 3600; t += every) {
                ck_assert_int_ge(series_detector_add(&d, 1.7e9 + t, f(t, &seed), &changed), 0);
                changes += changed;
                if (isnan(first) && d.state >= want)
                        first = t;
        }
        series_detector_done(&d);
        *ret_changes = changes;
        return first;
}

static double run_detector_every(SignalFn f, double hours, double every, LeakVerdict want, unsigned seed,
                                 unsigned *ret_changes) {
        return run_detector_config(NULL, f, hours, every, want, seed, ret_changes);
}

static double run_detector_seeded(SignalFn f, double hours, LeakVerdict want, unsigned seed, unsigned *ret_changes) {
        return run_detector_every(f, hours, 10, want, seed, ret_changes);
}
static double run_detector(SignalFn f, double hours, LeakVerdict want, unsigned *ret_changes) {
        return run_detector_seeded(f, hours, want, 11, ret_changes);
}

/* A leak: found (state `leak`) within limit seconds, and the finding stays open. */
static void assert_leak_within(SignalFn f, double hours, double limit) {
        unsigned changes;
        double found = run_detector(f, hours, VERDICT_LEAK, &changes);

        ck_assert_msg(!isnan(found) && found <= limit, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
}

/* 1 %/h of a 500 MiB heap from the start, under 0.3 % noise and a 10 % GC sawtooth with a
 * period of 30 s (window minima remove it). */
static double leak_1pct(double t, unsigned *seed) {
        return 500 * MIB * (1 + 0.01 * t / 3600 + 0.1 * fmod(t, 30) / 30 + 0.003 * noise(seed));
}

/* The promise: a leak of 1 % of the heap per hour is found within two hours, and
 * the finding stays open. */
START_TEST(test_one_percent_per_hour_within_two_hours) {
        assert_leak_within(leak_1pct, 6, 2 * 3600);
}
END_TEST

/* Right at the practical size: 0.5 %/h of a 1 GiB floor (5 MiB/h), under noise of the same
 * order as an hour's growth. Whatever the detector decides, it must not flap: at most one
 * opening and one closing over a day. */
static double borderline(double t, unsigned *seed) {
        return 1024 * MIB * (1 + 0.005 * t / 3600 + 0.004 * noise(seed));
}

START_TEST(test_borderline_does_not_flap) {
        unsigned changes;

        (void) run_detector(borderline, 24, VERDICT_LEAK, &changes);
        ck_assert_uint_le(changes, 3);
}
END_TEST

/* A warm-up with a time constant of 40 min (+50 % of the heap) and a cache that fills in
 * 2 h with an ease-out: both look like a leak on a 30 min horizon; neither may become one. */
static double warmup_40min(double t, unsigned *seed) {
        return 300 * MIB * (1 + 0.5 * (1 - exp(-t / 2400)) + 0.003 * noise(seed));
}

static double cache_2h(double t, unsigned *seed) {
        double f = t >= 7200 ? 1 : t / 7200;
        return 300 * MIB * (1 + 0.4 * (1 - (1 - f) * (1 - f)) + 0.003 * noise(seed));
}

START_TEST(test_warmup_and_cache_are_not_leaks) {
        unsigned changes;

        ck_assert(isnan(run_detector(warmup_40min, 12, VERDICT_LEAK, &changes)));
        ck_assert(isnan(run_detector(cache_2h, 12, VERDICT_LEAK, &changes)));
}
END_TEST

/* A process young enough that no horizon has twice its length behind it yet: 1.5 %/h from the
 * start under noise of +-4 % (uniform). The 30-60 min horizons are not conclusive, and 2 h of
 * history would be needed to confirm the first one that is; at 90 min the whole history's
 * evidence is overwhelming and its halves grow alike, so it confirms itself (found at 92 min;
 * with the confirmation over 2 H only, at 123 min). */
static double leak_young_noisy(double t, unsigned *seed) {
        return 800 * MIB * (1 + 0.015 * t / 3600 + 0.04 * noise(seed));
}

/* What that must not let through: a warm-up with a time constant of 2 h (+60 %) and a cache
 * that fills in 3 h (+30 %), both still growing fast when the process is 90 min old; they bend
 * visibly over that long (newer half below 0.8 x the older one's rate). */
static double warmup_2h(double t, unsigned *seed) {
        return 300 * MIB * (1 + 0.6 * (1 - exp(-t / 7200)) + 0.01 * noise(seed));
}

static double cache_3h(double t, unsigned *seed) {
        double f = t >= 10800 ? 1 : t / 10800;
        return 300 * MIB * (1 + 0.3 * (1 - (1 - f) * (1 - f)) + 0.01 * noise(seed));
}

START_TEST(test_young_process_strong_evidence) {
        unsigned changes;

        assert_leak_within(leak_young_noisy, 6, 100 * 60);
        ck_assert(isnan(run_detector(warmup_2h, 12, VERDICT_LEAK, &changes)));
        ck_assert(isnan(run_detector(cache_3h, 12, VERDICT_LEAK, &changes)));
}
END_TEST

/* A leak on a warm-up that has levelled off: +50 % of a 400 MiB heap with a time constant of
 * 11 min (over after ~45 min), and 4 %/h from the start, under 0.5 % noise. The horizons
 * longer than an hour still hold the warm-up and decelerate; a levelled-off rise plus a line
 * fits them much better than the rise alone, so they do not veto the shorter horizons (found
 * after 134 min; without it, after 205 min). The warm-up alone, with the same noise, is not
 * even a suspect over a day. */
static double warmup_11min(double t, unsigned *seed) {
        return 400 * MIB * (1 + 0.5 * (1 - exp(-t / 660)) + 0.005 * noise(seed));
}

static double warmup_11min_leak(double t, unsigned *seed) {
        return warmup_11min(t, seed) + 400 * MIB * 0.04 * t / 3600;
}

START_TEST(test_leak_on_levelled_off_warmup) {
        unsigned changes;

        assert_leak_within(warmup_11min_leak, 8, 3 * 3600);
        ck_assert(isnan(run_detector(warmup_11min, 24, VERDICT_SUSPECT, &changes)));
        ck_assert_uint_eq(changes, 0);
}
END_TEST

/* A leak from the process's start on a warm-up: the same warm-up and leak as above, found
 * within 2 h. When the process is 90 min-2 h old, its whole history holds the finished rise
 * and bends, so it cannot confirm itself as a straight line; a levelled-off rise plus a line
 * fits it much better than the rise alone and the newer half grows along the line, so it does
 * (found after 93 min; without it, after 134 min). A warm-up alone, and the same warm-up with
 * ten times the noise, never: without a line on top nothing is fitted to confirm. */
static double warmup_11min_noisy(double t, unsigned *seed) {
        return 400 * MIB * (1 + 0.5 * (1 - exp(-t / 660)) + 0.05 * noise(seed));
}

START_TEST(test_young_leak_on_warmup) {
        unsigned changes;
        double found = run_detector(warmup_11min_leak, 8, VERDICT_LEAK, &changes);

        ck_assert_msg(!isnan(found) && found <= 2 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
        ck_assert(isnan(run_detector(warmup_11min, 24, VERDICT_SUSPECT, &changes)));
        ck_assert(isnan(run_detector(warmup_11min_noisy, 24, VERDICT_SUSPECT, &changes)));
        ck_assert(isnan(run_detector(warmup_40min, 24, VERDICT_SUSPECT, &changes)));
}
END_TEST

/* The floor's autocorrelation, by hand. 40 points one minute apart: a line (1000 + 5 i) plus
 * residuals repeating 1, 1, -1, -1, -1, -1, 1, 1. Each period of the residuals sums to 0 and
 * to 0 against its own index (0+1-2-3-4-5+6+7), so least squares recovers the line exactly
 * and the residuals are these. Sum of squares 40. Lag 1: products 1,-1,1,1,1,-1,1,1 per
 * period (the period wraps 1 to 1): 4 full periods = 16, then i = 32..38 = 3, so 19 / 40 =
 * 0.475, above 1.96 / sqrt(40) = 0.3099: go on. Lag 2: products -1,-1,1,1,-1,-1,1,1 per
 * period: 0, then i = 32..37 = -2, so -0.05: not significant, the last lag. */
START_TEST(test_floor_acf_reference) {
        static const double r[8] = { 1, 1, -1, -1, -1, -1, 1, 1 };
        DetectPoint p[40];
        FloorAcf acf;

        for (size_t i = 0; i < 40; i++)
                p[i] = (DetectPoint) { .t = 1e9 + 60.0 * (double) i, .v = 1000 + 5.0 * (double) i + r[i % 8] };
        floor_acf_estimate(p, 40, &acf);
        ck_assert_uint_eq(acf.n, 40);
        ck_assert_uint_eq(acf.n_lags, 2);
        ck_assert_double_eq(acf.lag[0], 1);
        ck_assert_double_eq_tol(acf.rho[0], 0.475, 1e-9);
        ck_assert_double_eq(acf.lag[1], 2);
        ck_assert_double_eq_tol(acf.rho[1], -0.05, 1e-9);

        /* Between grid lags: linear; from lag 0 (1); past the last lag: 0. */
        ck_assert_double_eq(floor_acf_at(&acf, 0), 1);
        ck_assert_double_eq_tol(floor_acf_at(&acf, 0.5), 0.7375, 1e-12);
        ck_assert_double_eq_tol(floor_acf_at(&acf, 1.5), 0.2125, 1e-12);
        ck_assert_double_eq(floor_acf_at(&acf, 3), 0);

        /* Hamed-Rao for n = 5: 1 + 2 / (5*4*3) * (4*3*2 * 0.475 + 3*2*1 * -0.05)
         * = 1 + (11.4 - 0.3) / 30 = 1.37. For n = 3 nothing is summed: 1. */
        ck_assert_double_eq_tol(floor_acf_variance_factor(&acf, 5), 1.37, 1e-12);
        ck_assert_double_eq(floor_acf_variance_factor(&acf, 3), 1);

        /* Negative autocorrelation may not strengthen the evidence: kept at 1. */
        acf.rho[0] = -0.4;
        ck_assert_double_eq(floor_acf_variance_factor(&acf, 5), 1);

        /* Too few points, or no variation around the line: no estimate, factor 1. */
        floor_acf_estimate(p, ACF_MIN_POINTS - 1, &acf);
        ck_assert_uint_eq(acf.n, 0);
        ck_assert_double_eq(floor_acf_variance_factor(&acf, 50), 1);
        for (size_t i = 0; i < 40; i++)
                p[i].v = 7.0 * (double) i;
        floor_acf_estimate(p, 40, &acf);
        ck_assert_uint_eq(acf.n, 0);
}
END_TEST

/* The estimate for a self-confirmation goes on past lags that are positive but not significant,
 * to the first non-positive one, which counts as 0. 48 points one minute apart: a line plus
 * residuals repeating -1, -1, 0, 1, 0, 1, 1, 0, 1, 0, -1, -1 (sum 0 and 0 against the index, so
 * the line is recovered exactly). Sum of squares 32; sums of products at lag 1: 15, lag 2: 6,
 * lag 3: 3, lag 5: -18. The bound is 1.96 / sqrt(48) = 0.2829: the reference estimate keeps
 * lag 1 (0.46875) and stops at lag 2 (0.1875); this one goes on to lag 3 (0.09375) and stops
 * at lag 5 (-0.5625, counted as 0). Hamed-Rao for n = 8 sums k = 1..5 with weights
 * (8-k)(7-k)(6-k) = 210, 120, 60, 24, 6: the reference 1 + 2/336 * (210 * 0.46875 + 120 *
 * 0.1875) = 1.719866..; this one adds 60 * 0.09375 and 24 * 0.046875 (halfway to lag 5's 0):
 * 1.760045.. Never smaller: it only makes a self-confirmation more cautious. */
START_TEST(test_floor_acf_past_dips) {
        static const double r[12] = { -1, -1, 0, 1, 0, 1, 1, 0, 1, 0, -1, -1 };
        DetectPoint p[48];
        FloorAcf ref, own;

        for (size_t i = 0; i < 48; i++)
                p[i] = (DetectPoint) { .t = 1e9 + 60.0 * (double) i, .v = 5000 + 3.0 * (double) i + r[i % 12] };
        floor_acf_estimate(p, 48, &ref);
        ck_assert_uint_eq(ref.n_lags, 2);
        ck_assert_double_eq_tol(ref.rho[0], 0.46875, 1e-9);
        ck_assert_double_eq_tol(ref.rho[1], 0.1875, 1e-9);

        floor_acf_estimate_past_dips(p, 48, &own);
        ck_assert_uint_eq(own.n, 48);
        ck_assert_uint_eq(own.n_lags, 4);
        ck_assert_double_eq_tol(own.rho[0], 0.46875, 1e-9);
        ck_assert_double_eq_tol(own.rho[1], 0.1875, 1e-9);
        ck_assert_double_eq(own.lag[2], 3);
        ck_assert_double_eq_tol(own.rho[2], 0.09375, 1e-9);
        ck_assert_double_eq(own.lag[3], 5);
        ck_assert_double_eq(own.rho[3], 0);

        ck_assert_double_eq_tol(floor_acf_variance_factor(&ref, 8), 1 + 241.875 / 336, 1e-9);
        ck_assert_double_eq_tol(floor_acf_variance_factor(&own, 8), 1 + 255.375 / 336, 1e-9);

        /* Where the reference estimate ends on a negative lag after significant ones only
         * (the pattern of test_floor_acf_reference: lag 2 at -0.05), this one is the same,
         * negative lag included: a sawtooth's residuals swing negative after their positive
         * lags, and the periodic self-confirmation (step 7) is measured with that. */
        {
                static const double r8[8] = { 1, 1, -1, -1, -1, -1, 1, 1 };

                for (size_t i = 0; i < 40; i++)
                        p[i] = (DetectPoint) { .t = 1e9 + 60.0 * (double) i, .v = 1000 + 5.0 * (double) i + r8[i % 8] };
                floor_acf_estimate_past_dips(p, 40, &own);
                ck_assert_uint_eq(own.n_lags, 2);
                ck_assert_double_eq_tol(own.rho[0], 0.475, 1e-9);
                ck_assert_double_eq_tol(own.rho[1], -0.05, 1e-9);
                ck_assert_double_eq_tol(floor_acf_variance_factor(&own, 5), 1.37, 1e-12);
        }
}
END_TEST

/* floor_acf_periodic_factor(): a square wave of 8 points (+-2) on a line is periodic with 8
 * points; over 40 points its residuals' autocorrelation (exact fractions, the least-squares
 * slope is 5 per point) is 19/40, -1/20, -19/40, -9/10, -17/40, 1/20, 17/40, 4/5 at lags 1-8,
 * its first period, and sums with Hamed-Rao's weights to 1 + 2/(40 * 39 * 38) * sum
 * (40-k)(39-k)(38-k) rho(k) = 50937/98800 (0.52): a periodic component weighs nothing, kept
 * at 1. floor_acf_estimate_past_dips() stops at lag 2 (-1/20) and weighs the same points as a
 * wander (1 + 2/59280 * (54834 * 0.475 - 50616 * 0.05) = 1.79). With a plateau of
 * +2 over points 10-29 riding on the wave (a wander, and still periodic), the sum is
 * 117631/59280 (1.98): the wander counts. Computed with Python's fractions. */
START_TEST(test_floor_acf_periodic_factor) {
        static const double square[8] = { 1, 1, -1, -1, -1, -1, 1, 1 };
        DetectPoint p[40];
        FloorAcf own;

        for (size_t i = 0; i < 40; i++)
                p[i] = (DetectPoint) { .t = 1e9 + 60.0 * (double) i, .v = 1000 + 5.0 * (double) i + 2 * square[i % 8] };
        ck_assert_uint_eq(floor_acf_period(p, 40), 8);
        ck_assert_double_eq(floor_acf_periodic_factor(p, 40, 8), 1);
        floor_acf_estimate_past_dips(p, 40, &own);
        ck_assert_double_eq_tol(floor_acf_variance_factor(&own, 40), 1 + 2 / 59280.0 * (54834 * 0.475 - 50616 * 0.05), 1e-9);

        for (size_t i = 10; i < 30; i++)
                p[i].v += 2;
        ck_assert_uint_eq(floor_acf_period(p, 40), 8);
        ck_assert_double_eq_tol(floor_acf_periodic_factor(p, 40, 8), 117631.0 / 59280, 1e-9);
        ck_assert_double_eq(floor_acf_periodic_factor(p, 40, 0), 1);
        ck_assert_double_eq(floor_acf_periodic_factor(p, ACF_MIN_POINTS - 1, 8), 1);
}
END_TEST

/* Steady churn: the floor wanders (an AR(1) with a 40 min correlation time, 2 % of the heap)
 * and nothing else. Over an hour or two such a wander rises like a leak; the autocorrelation
 * measured before each horizon says it is one, so no finding may open over a day. */
static double churn_40min(double t, unsigned *seed) {
        static double x;

        if (t == 0)
                x = 0;
        /* AR(1) step per 10 s sample, driven by the uniform noise (variance 1/3). */
        x = x * exp(-10.0 / 2400) + 0.02 * sqrt(1 - exp(-20.0 / 2400)) * sqrt(3) * noise(seed);
        return 400 * MIB * (1 + x + 0.002 * noise(seed));
}

START_TEST(test_churn_is_not_a_leak) {
        unsigned changes;

        ck_assert(isnan(run_detector(churn_40min, 24, VERDICT_SUSPECT, &changes)));
}
END_TEST

/* A GC sawtooth of 12 % with a 7 min period under 60 s windows: window minima catch the ramp
 * at a different phase each time, and the floor jumps in patterns that beat with the window.
 * The detector must see that groups of whole periods (8 windows) hold the period's bottom,
 * never call the flat one a leak, and still find 4 %/h on the same background: later than on
 * a clean floor, since 20 points of 8 minutes take 2 h 40 and their confirmation twice that,
 * but within 5 h. */
static double saw_7min(double t, unsigned *seed) {
        return 600 * MIB * (1 + 0.12 * fmod(t, 420) / 420 + 0.002 * noise(seed));
}

static double saw_7min_leak(double t, unsigned *seed) {
        return saw_7min(t, seed) + 600 * MIB * 0.04 * t / 3600;
}

START_TEST(test_long_sawtooth_aliasing) {
        unsigned changes;
        double found;

        ck_assert(isnan(run_detector(saw_7min, 24, VERDICT_SUSPECT, &changes)));
        found = run_detector(saw_7min_leak, 8, VERDICT_LEAK, &changes);
        ck_assert_msg(!isnan(found) && found <= 5 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
}
END_TEST

/* RSS of a batch worker whose allocators keep what they got (the batch_sawtooth scenario):
 * every 7-9 min a batch needs 35-60 % of a 20 MiB heap more for a while; RSS is the running
 * maximum of what was ever needed, in pages, and objects made during a batch pin a little
 * more (up to +5 %: fragmentation that later batches fill). No noise: RSS holds exactly still
 * between the batches that set a new high-water mark. The trend test sees a monotone rise;
 * only the few steps tell it from a leak. */
static double hw_rss, hw_pinned, hw_next;

static double batch_high_water(double t, unsigned *seed) {
        const double heap = 20 * MIB, base = 15 * MIB;

        if (t == 0) {
                hw_rss = base + 0.3 * heap;
                hw_pinned = 0;
                hw_next = 300;
        }
        if (t >= hw_next) {
                double need = base + hw_pinned + (0.35 + 0.125 * (noise(seed) + 1)) * heap;

                if (noise(seed) > 0 && hw_pinned < 0.05 * heap)
                        hw_pinned += 0.01 * heap;
                if (need > hw_rss)
                        hw_rss = need;
                hw_next = t + 480 + 60 * noise(seed);
        }
        return floor(hw_rss / 4096) * 4096;
}

/* A leak in RSS as the kernel counts it, also without noise: 3 %/h of 200 MiB from the start,
 * in pages, plus a 2 % GC sawtooth of 40 s. Its floor rises window after window. */
static double rss_leak_pages(double t, unsigned *seed) {
        (void) seed;
        return floor(200 * MIB * (1 + 0.03 * t / 3600 + 0.02 * fmod(t, 40) / 40) / 4096) * 4096;
}

/* The RSS floor (pages) of tests/scenarios/programs/batch_sawtooth.py from a loaded machine
 * where it alarmed (saved with HW_SCENARIO_SAVE, 0.5 s windows = 1 min of production time):
 * {minute, pages} at each change. A high-water mark that creeps by fragmentation and takes one
 * +3.5 MiB step (the largest batch so far) at 109 min: the 1 h horizon holding the step and a
 * little creep was confirmed the ordinary way by the 2 h horizon, the process's whole
 * history, at 2.3 h. */
static const double batch_steps_floor[][2] = {
        { 0, 2482 },   { 1, 4721 },   { 2, 5761 },   { 4, 5762 },   { 5, 7033 },   { 6, 7035 },   { 7, 6779 },
        { 13, 7260 },  { 14, 7261 },  { 15, 7001 },  { 21, 7724 },  { 22, 7725 },  { 23, 7453 },  { 29, 7525 },
        { 31, 7269 },  { 37, 7417 },  { 45, 7525 },  { 68, 7532 },  { 75, 7672 },  { 77, 7640 },  { 83, 7795 },
        { 99, 7863 },  { 109, 8763 }, { 115, 8766 }, { 133, 8772 }, { 140, 8779 }, { 149, 8788 }, { 159, 8821 },
        { 174, 9072 },
};

/* Two more recorded floors of batch_sawtooth (1 min = 0.5 s windows, as above), from the copies
 * of 20 run side by side with two busy loops (tests/scenarios/stress.py) whose daemon opened a
 * leak at 59.9 s and 56.3 s (2 h of production time), as two CI runs had: after the warm-up the
 * floor creeps in steps of 1-180 pages, dips when a batch frees and climbs back. Counted as
 * separate rises, the dips' rebounds and the tiny steps made 12 and more; as a high-water mark
 * the floor rose in about 5 steps' worth. */
static const double batch_creep_floors[2][36][2] = {
        {
                { 0, 2415 },   { 1, 4564 },   { 2, 5764 },   { 5, 7022 },   { 6, 7023 },   { 7, 6519 },
                { 8, 6520 },   { 12, 7240 },  { 15, 6975 },  { 20, 7700 },  { 22, 7194 },  { 29, 7201 },
                { 31, 7181 },  { 37, 7385 },  { 44, 7433 },  { 75, 7616 },  { 77, 7615 },  { 82, 7708 },
                { 84, 7456 },  { 99, 7514 },  { 107, 7708 }, { 109, 7709 }, { 115, 7741 }, { 117, 7709 },
                { 119, 7771 }, { 129, 7775 }, { 133, 7777 }, { 134, 7778 }, { 135, 7776 }, { 139, 7780 },
                { 140, 7851 }, { 142, 7847 }, { 149, 8032 }, { 173, 8037 }, { 176, 8032 }, { -1, 0 },
        },
        {
                { 0, 2325 },   { 1, 5458 },   { 2, 5742 },   { 4, 5743 },   { 5, 7013 },   { 6, 7015 },
                { 7, 6511 },   { 12, 7229 },  { 14, 6980 },  { 20, 7715 },  { 22, 7178 },  { 29, 7185 },
                { 37, 7389 },  { 38, 7391 },  { 44, 7462 },  { 61, 7440 },  { 67, 7447 },  { 75, 7615 },
                { 82, 7710 },  { 84, 7458 },  { 92, 7459 },  { 99, 7516 },  { 100, 7517 }, { 106, 7711 },
                { 111, 7772 }, { 115, 7786 }, { 121, 7799 }, { 139, 7866 }, { 140, 7867 }, { 148, 8052 },
                { -1, 0 },
        },
};
static unsigned batch_creep_which;

/* The RSS (bytes) at t seconds of a recorded floor: {minute, pages} at each change, up to n
 * entries, ending early at a minute of -1. */
static double recorded_floor(const double (*f)[2], size_t n, double t) {
        size_t i = 0;

        while (i + 1 < n && f[i + 1][0] >= 0 && f[i + 1][0] * 60 <= t)
                i++;
        return f[i][1] * 4096;
}

static double batch_creep(double t, unsigned *seed) {
        (void) seed;
        return recorded_floor(batch_creep_floors[batch_creep_which],
                              sizeof(batch_creep_floors[0]) / sizeof(batch_creep_floors[0][0]), t);
}

static double batch_steps(double t, unsigned *seed) {
        (void) seed;
        return recorded_floor(batch_steps_floor, sizeof(batch_steps_floor) / sizeof(batch_steps_floor[0]), t);
}

START_TEST(test_high_water_steps_are_not_leaks) {
        unsigned changes, alarmed = 0;
        double steps_at;

        for (unsigned i = 0; i < 24; i++) {
                SignalFn f = batch_high_water;
                double found = run_detector_seeded(f, 4, VERDICT_LEAK, 100 + i, &changes);

                if (!isnan(found)) {
                        fprintf(stderr, "batch high-water seed %u: leak at %.0f s\n", 100 + i, found);
                        alarmed++;
                }
        }
        ck_assert_uint_eq(alarmed, 0);
        steps_at = run_detector(batch_steps, 4, VERDICT_SUSPECT, &changes);
        ck_assert_msg(isnan(steps_at), "recorded batch high-water mark: suspect at %.0f s", steps_at);
        for (batch_creep_which = 0; batch_creep_which < 2; batch_creep_which++) {
                steps_at = run_detector(batch_creep, 4, VERDICT_SUSPECT, &changes);
                ck_assert_msg(isnan(steps_at), "recorded creeping batch floor %u: suspect at %.0f s", batch_creep_which,
                              steps_at);
        }
        assert_leak_within(rss_leak_pages, 6, 2 * 3600);
}
END_TEST

/* The Python heap's blocks of a batch job that keeps 0.5 % of its 700k blocks from every batch
 * (the leak_sawtooth scenario): every 8 min, exactly, and nothing moves in between. Each step
 * holds because the objects are alive, not because an allocator kept their room: with
 * high_water off (the daemon's Python-heap signal) it is found within 2 h. As a high-water
 * mark, a horizon must hold 12 steps first. */
static double blocks_kept_per_batch(double t, unsigned *seed) {
        (void) seed;
        return 700000 * (1 + 0.005 * floor(t / 480));
}

START_TEST(test_live_object_steps_are_leaks) {
        DetectConfig c;
        unsigned changes;
        double found_live, found_high_water;

        detect_config_default(&c);
        c.min_growth_absolute_per_hour /= 64; /* blocks, as the daemon counts them */
        found_high_water = run_detector_config(&c, blocks_kept_per_batch, 6, 10, VERDICT_LEAK, 11, &changes);
        c.high_water = false;
        found_live = run_detector_config(&c, blocks_kept_per_batch, 6, 10, VERDICT_LEAK, 11, &changes);
        fprintf(stderr, "blocks kept per batch: leak at %.0f s as live objects, %.0f s as a high-water mark\n",
                found_live, found_high_water);
        ck_assert_msg(!isnan(found_live) && found_live <= 2 * 3600, "live objects: found at %.0f s", found_live);
        ck_assert_uint_le(changes, 2);
        ck_assert(isnan(found_high_water) || found_high_water > found_live);
}
END_TEST

/* A cache that fills at a constant rate for 4 h (+40 % of 500 MiB), then stays full. While it
 * fills, nothing in the memory tells it from a leak (docs/detection.md, "What it does not do"):
 * it is reported as one, with the time to the limit it would reach at that rate. What must
 * hold is the end: once the fill stops, the finding closes within 3 h (the newer half of every
 * horizon stops growing), and does not open again. */
static double cache_linear_4h(double t, unsigned *seed) {
        double fill = t >= 4 * 3600 ? 1 : t / (4 * 3600);
        return 500 * MIB * (1 + 0.4 * fill + 0.003 * noise(seed));
}

START_TEST(test_linear_cache_fill_closes) {
        SeriesDetector d;
        DetectConfig c;
        unsigned seed = 11, opened = 0;
        double closed_at = NAN;
        bool changed;

        detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        for (double t = 0; t < 16 * 3600; t += 10) {
                ck_assert_int_ge(series_detector_add(&d, 1.7e9 + t, cache_linear_4h(t, &seed), &changed), 0);
                if (changed && d.state == VERDICT_LEAK)
                        opened++;
                if (changed && d.state == VERDICT_NONE)
                        closed_at = t;
        }
        ck_assert_uint_eq(opened, 1);
        ck_assert_msg(!isnan(closed_at) && closed_at <= 7 * 3600, "closed at %.0f s", closed_at);
        ck_assert(d.state == VERDICT_NONE);
        series_detector_done(&d);
}
END_TEST

/* Batch spikes that outlast the window: every 48 min a batch adds 74 % of a 300 MiB heap for
 * 20 min (5 min ramp), and window minima keep it. Without taking the spikes out, 2.7 %/h from
 * the start under them was not found within 8 h (the spikes break the halves and the p-value
 * of every horizon); the spikes alone must never be a leak, nor a one-time step up under them,
 * nor a large GC sawtooth with a period of 46 min (a ramp is not a spike). */
static double batch_48min(double t, unsigned *seed) {
        double u = fmod(t + 600, 2880), x = 1 + 0.003 * noise(seed);

        if (u < 300)
                x += 0.74 * u / 300;
        else if (u < 1200)
                x += 0.74;
        return 300 * MIB * x;
}

static double batch_48min_leak(double t, unsigned *seed) {
        return batch_48min(t, seed) + 300 * MIB * 0.027 * t / 3600;
}

static double batch_48min_step(double t, unsigned *seed) {
        return batch_48min(t, seed) + (t >= 5 * 3600 ? 60 * MIB : 0);
}

static double saw_46min(double t, unsigned *seed) {
        return 600 * MIB * (1 + 0.5 * fmod(t, 2741) / 2741 + 0.01 * noise(seed));
}

START_TEST(test_batch_spikes) {
        unsigned changes;
        double found;

        ck_assert(isnan(run_detector(batch_48min, 24, VERDICT_SUSPECT, &changes)));
        ck_assert(isnan(run_detector(batch_48min_step, 24, VERDICT_SUSPECT, &changes)));
        ck_assert(isnan(run_detector(saw_46min, 24, VERDICT_SUSPECT, &changes)));
        found = run_detector(batch_48min_leak, 8, VERDICT_LEAK, &changes);
        ck_assert_msg(!isnan(found) && found <= 2.5 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
}
END_TEST

/* A leak that starts in an old process (onset at 10 h, 3 %/h of a 500 MiB heap, 0.3 % noise):
 * twice the 2 h horizon holds the flat floor before the onset and grows at half the rate, so
 * the ordinary confirmation waits until the onset is far enough back. The horizon that holds
 * only the growth may confirm itself on its own evidence when twice shows a floor that held
 * still before it: found 1.4 h after the onset. (The rule's gain is on floors whose 2 h
 * horizon is strong before twice catches up: benchmark series 227, 2.6 -> 1.6 h.) */
static double onset_10h(double t, unsigned *seed) {
        double leak = t > 10 * 3600 ? 0.03 * (t - 10 * 3600) / 3600 : 0;

        return 500 * MIB * (1 + leak + 0.05 * fmod(t, 40) / 40 + 0.003 * noise(seed));
}

/* A one-time step of +40 % at 1.8 h, then 3.85 %/h from 4.1 h (a leak after a load): the
 * step sits in the history the horizons' autocorrelation is measured on, and read as a
 * wander it weakened every horizon for hours: found 0.8 h after the onset (never within 8 h
 * when the step was left in). */
static double step_then_leak(double t, unsigned *seed) {
        double x = 1 + 0.0055 * noise(seed);

        if (t >= 1.8 * 3600)
                x += 0.4;
        if (t >= 4.1 * 3600)
                x += 0.0385 * (t - 4.1 * 3600) / 3600;
        return 418 * MIB * x;
}

/* Series 535 of the benchmark: a +55 % step that ramps over 8 min at 9 h, under an 11 % GC
 * sawtooth of 88 s that the 10 s sampling beats against (the floor creeps up a little and
 * drops back: small rises, fewer larger falls), then 9.8 %/h in increments every 19 min from
 * 11.25 h. The step is in the history the 2-3 h horizons' autocorrelation is measured on:
 * its ramp's partial first and last jumps, each too small for a step, and its middle jumps
 * filled with the skewed floor's median jump, left 2 % of a step there (reference factor
 * 16), and the leak was found 3 h after its onset. */
static double ramped_step(double t, unsigned *seed) {
        double x = 1 + 0.11 * fmod(t, 88) / 88 + 0.003 * noise(seed);

        if (t >= 9 * 3600 + 480)
                x += 0.55;
        else if (t > 9 * 3600)
                x += 0.55 * (t - 9 * 3600) / 480;
        return 505 * MIB * x;
}

static double ramped_step_then_leak(double t, unsigned *seed) {
        double since = t - 11.25 * 3600;

        return ramped_step(t, seed) + (since > 0 ? 505 * MIB * 0.098 * floor(since / 1128) * 1128 / 3600 : 0);
}

START_TEST(test_leak_onset_in_old_process) {
        unsigned changes;
        double found;

        found = run_detector(onset_10h, 14, VERDICT_LEAK, &changes);
        ck_assert_msg(!isnan(found) && found > 10 * 3600 && found <= 12 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
        found = run_detector(step_then_leak, 8, VERDICT_LEAK, &changes);
        ck_assert_msg(!isnan(found) && found > 4.1 * 3600 && found <= 6.1 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
}
END_TEST

START_TEST(test_leak_after_ramped_step) {
        unsigned changes;
        double found;

        ck_assert(isnan(run_detector(ramped_step, 24, VERDICT_SUSPECT, &changes)));
        for (unsigned seed = 1; seed <= 4; seed++) {
                found = run_detector_seeded(ramped_step_then_leak, 16, VERDICT_LEAK, seed, &changes);
                fprintf(stderr, "ramped step, seed %u: leak found %.0f min after its onset\n", seed,
                        (found - 11.25 * 3600) / 60);
                ck_assert_msg(!isnan(found) && found > 11.25 * 3600 && found <= 13.25 * 3600,
                              "seed %u: found after %.0f s", seed, found);
                ck_assert_uint_le(changes, 2);
        }
}
END_TEST

/* A leak 4 h after a warm-up (+22 % of a 1.2 GiB heap, time constant 25 min; then 5.9 %/h
 * under 1.5 % noise): the warm-up is in the history the horizons' autocorrelation is measured
 * on, and around a straight line it looks like hours of wander. Taken around "a rise that
 * levels off plus a line" instead, the leak is found 1.1 h after its onset (2.8 h before). The
 * warm-up alone stays quiet for a day (and so does test_young_process_strong_evidence's
 * warm-up of 2 h, which a reference fitted with rises of up to half its span let through). */
static double warmup_25min(double t, unsigned *seed) {
        return 1205 * MIB * (1 + 0.22 * (1 - exp(-t / 1500)) + 0.015 * noise(seed));
}

static double warmup_then_leak(double t, unsigned *seed) {
        return warmup_25min(t, seed) + (t > 4 * 3600 ? 1205 * MIB * 0.059 * (t - 4 * 3600) / 3600 : 0);
}

START_TEST(test_leak_after_warmup_in_reference) {
        unsigned changes;
        double found;

        ck_assert(isnan(run_detector(warmup_25min, 24, VERDICT_SUSPECT, &changes)));
        found = run_detector(warmup_then_leak, 8, VERDICT_LEAK, &changes);
        ck_assert_msg(!isnan(found) && found > 4 * 3600 && found <= 5.5 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
}
END_TEST

/* A leak an hour after a bounded cache filled (+41 % of a 337 MiB heap in 164 min, filling
 * ever slower until it is full; then 4.3 %/h under 1.7 % noise): benchmark series 297. An
 * exponential rise fits the cache's end badly, so the history before the leak's horizons
 * kept looking like wander and the leak was found 4.2 h after its onset; with a rise that
 * *ends* among the shapes fitted, within 2 h. The cache alone stays quiet for a day. */
static double cache_164min(double t, unsigned *seed) {
        double f = t >= 9840 ? 1 : t / 9840;
        return 337 * MIB * (1 + 0.41 * (1 - (1 - f) * (1 - f)) + 0.03 * noise(seed));
}

static double cache_then_leak(double t, unsigned *seed) {
        return cache_164min(t, seed) + (t > 3.8 * 3600 ? 337 * MIB * 0.043 * (t - 3.8 * 3600) / 3600 : 0);
}

START_TEST(test_leak_after_filled_cache) {
        unsigned changes;
        double found;

        ck_assert(isnan(run_detector(cache_164min, 24, VERDICT_SUSPECT, &changes)));
        found = run_detector(cache_then_leak, 10, VERDICT_LEAK, &changes);
        ck_assert_msg(!isnan(found) && found > 3.8 * 3600 && found <= 5.8 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
}
END_TEST

/* Benchmark series 104's shape: a cache filling by 47 % over 137 min with ease-out, sampled
 * every second under 0.9 % noise. At 90 min, "a rise that ends at the span plus a line" is
 * exactly the fill's parabola still bending; the null hypothesis (the rise alone) must be able
 * to take it too, or the line looks needed and a longer horizon lifts the veto of a shorter one
 * whose growth is the fill. */
static double cache_137min(double t, unsigned *seed) {
        double f = t >= 8220 ? 1 : t / 8220;
        return 149 * MIB * (1 + 0.47 * (1 - (1 - f) * (1 - f)) + 0.009 * noise(seed));
}

/* Benchmark series 229's shape: a warm-up of +45 % with a time constant of 56 min, a GC
 * sawtooth of 6 % with a period of 321 s (longer than the window: aliased floors), and a leak
 * of 6.5 %/h of the heap from the start. The warm-up's slope falls below the leak's at 1.9 h;
 * over the 4 h horizon its tail and the leak look like one slow rise, over the 6 h one they do
 * not, and that longer horizon's fit must lift the 4 h one's veto. */
static double warmup_56min(double t, unsigned *seed) {
        return 123 * MIB * (1 + 0.45 * (1 - exp(-t / 3360)) + 0.06 * fmod(t + 100, 321) / 321 + 0.002 * noise(seed));
}
static double warmup_56min_leak(double t, unsigned *seed) {
        return warmup_56min(t, seed) + 123 * MIB * 0.065 * t / 3600;
}

START_TEST(test_leak_on_slow_warmup_and_filling_cache) {
        unsigned changes;
        double found;

        found = run_detector_every(cache_137min, 6, 1, VERDICT_SUSPECT, 11, &changes);
        ck_assert_msg(isnan(found), "cache still filling: suspect after %.0f s", found);
        ck_assert(isnan(run_detector(warmup_56min, 24, VERDICT_SUSPECT, &changes)));
        found = run_detector(warmup_56min_leak, 8, VERDICT_LEAK, &changes);
        printf("leak on a 56 min warm-up found after %.2f h\n", found / 3600);
        ck_assert_msg(!isnan(found) && found <= 4.5 * 3600, "found after %.0f s", found);
        ck_assert_uint_le(changes, 2);
}
END_TEST

/* Benchmark series 1032's shape (one of five of 150 leak-free caches among 2400 series that
 * alarmed at 63-65 min): a cache filling by 12 % of 284 MiB over 123 min with ease-out,
 * sampled every 10 s under 1.1 % Gaussian noise. Over its first hour its rate falls only to 0.6-0.8 of
 * what it was, which the halves of that hour do not always resolve, and no horizon longer
 * than the whole history exists to show it slowing down: until the process is 90 min old
 * twice a horizon is most of its life and confirms nothing. With these seeds the detector of
 * dc9e8a0, which let twice the horizon confirm from 60 min, alarmed at 63-64 min (3 of the
 * first 30 seeds). */
static double gauss(unsigned *seed) {
        double u1 = (noise(seed) + 1.0001) / 2.0002, u2 = (noise(seed) + 1) / 2;

        return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static double cache_123min(double t, unsigned *seed) {
        double f = t >= 7380 ? 1 : t / 7380;
        return 284 * MIB * (1 + 0.12 * (1 - (1 - f) * (1 - f)) + 0.011 * gauss(seed));
}

/* The price: a leak from the start that is plain after an hour (8 %/h of 284 MiB under the
 * same noise) waits for 90 min, and is found then. */
static double leak_8pct_young(double t, unsigned *seed) {
        return 284 * MIB * (1 + 0.08 * t / 3600 + 0.011 * gauss(seed));
}

START_TEST(test_young_process_waits_90_minutes) {
        static const unsigned seeds[] = { 14, 20, 26 };
        unsigned changes;
        double found;

        for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
                unsigned seed = seeds[i];
                found = run_detector_seeded(cache_123min, 6, VERDICT_SUSPECT, seed, &changes);
                ck_assert_msg(isnan(found), "seed %u: cache filling for 123 min: suspect after %.0f s", seed, found);
        }
        found = run_detector(leak_8pct_young, 3, VERDICT_LEAK, &changes);
        printf("8 %%/h from the start found after %.0f min\n", found / 60);
        ck_assert_msg(!isnan(found) && found >= 90 * 60 && found <= 100 * 60, "found after %.0f s", found);
}
END_TEST

/* A floor that rises and drops back is no leak, however often its rises look like one:
 * memory that leaked stays, so every longer horizon shows it (unless the leak began within
 * it, and then that horizon's older half holds still). Two leak-free series of the benchmark
 * that alarmed before that rule (detect_bench --series 2400, index 1186 and 1970): a 38 %
 * GC sawtooth of 100 s sampled every 10 s, whose window minima beat into a floor that climbs
 * 3 % over 2 h and drops back (1186 opened a finding 11 times in a day), and a 45 % sawtooth
 * with a 59 min period (22 times): a 30-42 min horizon inside one rise, confirmed by its
 * twice, while every horizon from 85 min to a day showed no trend. Both start half-way up a
 * rise, so that the history holds a drop before it is 90 min old. */
static double saw_100s_beat(double t, unsigned *seed) {
        return 329 * MIB * (1 + 0.379 * fmod(t / 99.85 + 0.55, 1.0) + 0.0019 * gauss(seed));
}

static double saw_59min(double t, unsigned *seed) {
        return 1233 * MIB * (1 + 0.451 * fmod(t / 3541 + 0.5, 1.0) + 0.0069 * gauss(seed));
}

/* Feed f (a function of the time the process has run) every 10 s for `before` seconds, then
 * nothing for `gap` seconds of the stamps (a machine suspended, a clock stepped forward), then
 * `after` seconds more. Returns the time run when the state first reached want (NAN: never). */
static double run_detector_with_gap(SignalFn f, double before, double gap, double after, LeakVerdict want) {
        SeriesDetector d;
        DetectConfig c;
        double first = NAN;
        unsigned seed = 11;
        bool changed;

        detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        for (double run = 0; run < before + after; run += 10) {
                double stamp = 1.7e9 + run + (run >= before ? gap : 0);

                ck_assert_int_ge(series_detector_add(&d, stamp, f(run, &seed), &changed), 0);
                if (isnan(first) && d.state >= want)
                        first = run;
        }
        series_detector_done(&d);
        return first;
}

static double warmup_60min(double t, unsigned *seed) {
        return 300 * MIB * (1 + 0.5 * (1 - exp(-t / 3600)) + 0.01 * noise(seed));
}

/* A process whose samples stop for hours while it is young: the minutes before the gap and the
 * warm-up after it made a horizon of hours, too long for the young-process rules, and the
 * warm-up was taken for a leak (8 h gap 10 min into a warm-up of 60 min: a finding for 10 h;
 * found by review). A young history is begun again after a gap of a minimum horizon or more;
 * a leak across such a gap is still found, as on a process starting then. */
START_TEST(test_gap_in_a_young_process) {
        double found = run_detector_with_gap(warmup_60min, 600, 8 * 3600, 14 * 3600, VERDICT_SUSPECT);

        ck_assert_msg(isnan(found), "warm-up with an 8 h gap: suspect at %.0f min run", found / 60);
        found = run_detector_with_gap(leak_8pct_young, 600, 8 * 3600, 4 * 3600, VERDICT_LEAK);
        printf("8 %%/h across an 8 h gap 10 min in: found after %.0f min run\n", found / 60);
        ck_assert_msg(!isnan(found) && found <= 600 + 100 * 60, "found after %.0f s run", found);
        /* an older process keeps its history across the gap */
        found = run_detector_with_gap(leak_8pct_young, 3 * 3600, 8 * 3600, 2 * 3600, VERDICT_LEAK);
        ck_assert_msg(!isnan(found) && found < 3 * 3600, "found after %.0f s run", found);
}
END_TEST

START_TEST(test_growth_undone_is_not_a_leak) {
        unsigned changes;
        double found;

        found = run_detector(saw_100s_beat, 24, VERDICT_LEAK, &changes);
        ck_assert_msg(isnan(found), "sawtooth beat: leak after %.0f s (%u state changes)", found, changes);
        found = run_detector(saw_59min, 24, VERDICT_LEAK, &changes);
        ck_assert_msg(isnan(found), "59 min sawtooth: leak after %.0f s (%u state changes)", found, changes);
}
END_TEST

/* Memory that follows load by the hour of the day (the benchmark's diurnal kind: a sine of
 * 24 h, steepest at 9.6 h of every day, here 13 % of a 1 GiB floor under 0.5 % noise), and on
 * the weekend (days 5 and 6 from the start) a quieter one of 4 %; with a leak of
 * cycle_leak_per_hour of the floor from cycle_onset (seconds). */
static double cycle_leak_per_hour = 0, cycle_onset = 0;

static double daily_cycle(double t, unsigned *seed) {
        double day = fmod(t / 86400, 7), amplitude = day >= 5 ? 0.04 : 0.13;
        double leak = t > cycle_onset ? cycle_leak_per_hour * (t - cycle_onset) / 3600 : 0;

        return 1024 * MIB * (1 + amplitude * sin(2 * M_PI * (t / 86400 + 0.6)) + leak + 0.005 * gauss(seed));
}

/* Replay `hours` of f every 60 s at the default configuration; count the findings opened
 * (the state reaching `leak`) after `after` seconds, and return the first time after `after`
 * the state was `leak` (NAN: never). */
static double run_cycle(double hours, double after, unsigned *ret_opened) {
        SeriesDetector d;
        DetectConfig c;
        double first = NAN;
        LeakVerdict was = VERDICT_NONE;
        unsigned seed = 11;
        bool changed;

        *ret_opened = 0;
        detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        for (double t = 0; t < hours * 3600; t += 60) {
                ck_assert_int_ge(series_detector_add(&d, 1.7e9 + t, daily_cycle(t, &seed), &changed), 0);
                if (t > after && d.state == VERDICT_LEAK) {
                        *ret_opened += was != VERDICT_LEAK;
                        if (isnan(first))
                                first = t;
                }
                was = d.state;
        }
        series_detector_done(&d);
        return first;
}

/* A daily cycle is a leak on its first day's data alone (a rise for 12 h), and only then:
 * once the history reaches back a day, a horizon's growth must stand higher than the floor
 * stood at the same time the day before (horizon_cycle_rise()). Before that rule every day
 * opened a finding at the steepest hours of its rise (the benchmark's diurnal kind over 72 h:
 * 14 of 20 leak-free series, a finding a day). The weekend's quieter days stand lower than
 * the weekdays before them; the Monday after (day 7) stands higher than Sunday, not than the
 * Monday before: nothing opens from the second day to the second Monday's rise (182 h). */
START_TEST(test_daily_cycle_is_not_a_leak) {
        unsigned opened;
        double found;

        cycle_leak_per_hour = 0;
        found = run_cycle(7 * 24 + 14, 25 * 3600, &opened);
        ck_assert_msg(opened == 0, "daily cycle: %u findings opened after the first day, the first at %.1f h", opened,
                      found / 3600);
}
END_TEST

/* A leak on top of the cycle stands higher than a day ago: one of 2 %/h that begins on the
 * second day (30 h) is found on that day's rise (default build: 4.7 h after its onset), and
 * one from the start is a leak again on the second day's rise, a day's growth above the
 * first day's. */
START_TEST(test_leak_on_daily_cycle) {
        unsigned opened;
        double found;

        cycle_leak_per_hour = 0.02;
        cycle_onset = 30 * 3600;
        found = run_cycle(40, 25 * 3600, &opened);
        fprintf(stderr, "daily cycle, leak of 2 %%/h from 30 h: found %.1f h after its onset\n",
                (found - cycle_onset) / 3600);
        ck_assert_msg(!isnan(found) && found - cycle_onset <= 8 * 3600, "leak from 30 h: found at %.1f h", found / 3600);

        cycle_onset = 0;
        found = run_cycle(40, 25 * 3600, &opened);
        ck_assert_msg(!isnan(found), "leak from the start: not a leak on the second day");
        cycle_leak_per_hour = 0;
}
END_TEST

/* A GC sawtooth as the benchmark generates it: heap_mib * (1 + amplitude * the ramp's phase +
 * noise * Gaussian), the ramp `period` seconds long starting at `phase`; its leaking twin adds
 * leak_per_hour of the heap per hour from `onset` (seconds; 0: from the start). */
typedef struct Sawtooth {
        const char *name;
        double heap_mib, amplitude, period, phase, noise;
        double leak_per_hour, onset;
} Sawtooth;

/* The one the two signals below replay (SignalFn takes no context). */
static const Sawtooth *sawtooth;

static double sawtooth_quiet(double t, unsigned *seed) {
        const Sawtooth *w = sawtooth;

        return w->heap_mib * MIB * (1 + w->amplitude * fmod(t / w->period + w->phase, 1.0) + w->noise * gauss(seed));
}

static double sawtooth_leaking(double t, unsigned *seed) {
        const Sawtooth *w = sawtooth;

        return sawtooth_quiet(t, seed) + (t > w->onset ? w->heap_mib * MIB * w->leak_per_hour * (t - w->onset) / 3600 : 0);
}

/* Under a sawtooth: the leak-free series is not even suspect for a day, and its twin with a
 * leak is found within `limit` seconds of the onset over four seeds (replayed for `hours`),
 * without flapping. */
static void assert_sawtooth_leak_found(const Sawtooth *w, double hours, double limit) {
        unsigned changes;
        double found;

        sawtooth = w;
        found = run_detector(sawtooth_quiet, 24, VERDICT_SUSPECT, &changes);
        ck_assert_msg(isnan(found), "%s, leak-free: suspect after %.0f s", w->name, found);
        for (unsigned seed = 1; seed <= 4; seed++) {
                found = run_detector_seeded(sawtooth_leaking, hours, VERDICT_LEAK, seed, &changes);
                fprintf(stderr, "%s, seed %u: leak found %.0f min after its onset\n", w->name, seed,
                        (found - w->onset) / 60);
                ck_assert_msg(!isnan(found) && found - w->onset <= limit, "%s, seed %u: found %.0f s after the onset",
                              w->name, seed, found - w->onset);
                ck_assert_uint_le(changes, 2);
        }
}

/* A GC sawtooth of 72 s sampled every 10 s (as 1937 of the 2400-series benchmark): 60 s window
 * minima miss the trough in some windows, and floor_group() groups the floor by 2-4 windows.
 * Horizons needed 20 such points, so none shorter than 2-3 h was evaluated; with 10-20
 * (horizon_min_points()) a leak of 2 %/h that begins in a 10 h old process is found within
 * 75 min of its onset over four seeds (48-64 min; before: 60 and 85 min for the first two);
 * the leak-free twin stays quiet for a day. */
static const Sawtooth saw_72s = {
        .name = "aliased sawtooth", .heap_mib = 108, .amplitude = 0.118, .period = 72, .phase = 0.3,
        .noise = 0.0016, .leak_per_hour = 0.02, .onset = 10 * 3600.0,
};

START_TEST(test_aliased_sawtooth_horizons) {
        assert_sawtooth_leak_found(&saw_72s, 13, 75 * 60);
}
END_TEST

/* A GC sawtooth of 184 s (3.1 windows, as 817 of the 2400-series benchmark): pairs of
 * windows halve the floor's steps (they hold the trough two times in three), threes collapse
 * them to the noise. floor_group() must not stop at pairs, whose minima still jump by 2 % of
 * the heap: a leak of 1.6 %/h from the start is found within 2 h over four seeds (93 min
 * each; with pairs 119 and 135 min on the first two), and the leak-free twin stays quiet for
 * a day. */
static const Sawtooth saw_184s = {
        .name = "184 s sawtooth", .heap_mib = 231, .amplitude = 0.145, .period = 184, .phase = 0.4,
        .noise = 0.0028, .leak_per_hour = 0.016, .onset = 0,
};

START_TEST(test_sawtooth_of_three_windows) {
        assert_sawtooth_leak_found(&saw_184s, 4, 2 * 3600);
}
END_TEST

/* floor_acf_period(): a sawtooth or a sine around a line is periodic (its period in points);
 * a wander, white noise, too few points, a period of under PERIOD_MIN_POINTS or over a
 * quarter of the points are not. */
START_TEST(test_floor_acf_period) {
        DetectPoint p[120];
        unsigned seed = 5;
        double x = 0;

        for (size_t i = 0; i < 120; i++)
                p[i] = (DetectPoint) { .t = 1e9 + 60.0 * (double) i,
                                       .v = 1000 + 2.0 * (double) i + 50.0 * (double) (i % 15) / 15 };
        ck_assert_uint_eq(floor_acf_period(p, 120), 15);
        for (size_t i = 0; i < 120; i++)
                p[i].v = 1000 - 3.0 * (double) i + 20 * sin(2 * M_PI * (double) i / 10) + noise(&seed);
        ck_assert_uint_eq(floor_acf_period(p, 120), 10);

        /* A wander: AR(1) with a correlation time of 20 points, a sixth of them. */
        for (size_t i = 0; i < 120; i++) {
                x = x * exp(-1.0 / 20) + noise(&seed);
                p[i].v = 1000 + 2.0 * (double) i + 10 * x;
        }
        ck_assert_uint_eq(floor_acf_period(p, 120), 0);
        for (size_t i = 0; i < 120; i++)
                p[i].v = 1000 + 2.0 * (double) i + 10 * noise(&seed);
        ck_assert_uint_eq(floor_acf_period(p, 120), 0);

        for (size_t i = 0; i < 120; i++)
                p[i].v = 1000 + 50.0 * (double) (i % 3) / 3; /* period 3 */
        ck_assert_uint_eq(floor_acf_period(p, 120), 0);
        for (size_t i = 0; i < 120; i++)
                p[i].v = 1000 + 50.0 * (double) (i % 40) / 40; /* three periods only */
        ck_assert_uint_eq(floor_acf_period(p, 120), 0);
        for (size_t i = 0; i < 120; i++)
                p[i].v = 1000 + 50.0 * (double) (i % 10) / 10;
        ck_assert_uint_eq(floor_acf_period(p, ACF_MIN_POINTS - 1), 0);
        ck_assert_uint_eq(floor_acf_period(p, ACF_MIN_POINTS), 0); /* 2 periods */
        ck_assert_uint_eq(floor_acf_period(p, 40), 10);
        for (size_t i = 0; i < 120; i++)
                p[i].v = 7.0 * (double) i; /* nothing around the line */
        ck_assert_uint_eq(floor_acf_period(p, 120), 0);
}
END_TEST

/* A GC sawtooth of 40 % every 30 min (as 947 of the 2400-series benchmark): slower than any
 * grouping of windows, so every horizon sees the sawtooth, and a leak of 3 %/h from the start
 * hides under it for hours. The longest horizon never has a twice; it confirms itself once it
 * holds at least four periods, its floor is periodic and the evidence overwhelming: within
 * 8 h over four seeds (5.9 h since its floor is weighed over its first period, 7.4-7.8 h
 * before; without the periodic self-confirmation, not in 24 h). The leak-free twin stays
 * quiet for a day. */
static const Sawtooth saw_30min = {
        .name = "30 min sawtooth", .heap_mib = 165, .amplitude = 0.40, .period = 1823, .phase = 0.3,
        .noise = 0.0018, .leak_per_hour = 0.03, .onset = 0,
};

START_TEST(test_periodic_floor_confirms_itself) {
        assert_sawtooth_leak_found(&saw_30min, 9, 8 * 3600);
}
END_TEST

/* A leak that begins at 6 h under a GC sawtooth of 13 % every 45 min (as 627 of the
 * 2400-series benchmark, low noise): the history before each horizon is the sawtooth alone,
 * and its autocorrelation weighs the horizon's evidence (step 3). Taking the sawtooth's drops
 * out as if they were one-time steps made that weight depend on how the groups of windows
 * fall, and the verdict alternated with it (leak two evaluations in three, never three in a
 * row): not found in 24 h on two seeds of four, at 16 h on the others. Found within 5 h of
 * the onset over four seeds (3.4-3.5 h; 3.9-4.0 h while the spike filter still took a newest
 * ramp for a batch in progress); the leak-free twin stays quiet for a day. */
static const Sawtooth saw_45min = {
        .name = "45 min sawtooth", .heap_mib = 1661, .amplitude = 0.128, .period = 2711, .phase = 0.3,
        .noise = 0.0011, .leak_per_hour = 0.033, .onset = 6 * 3600.0,
};

START_TEST(test_leak_onset_under_slow_sawtooth) {
        assert_sawtooth_leak_found(&saw_45min, 12, 5 * 3600);
}
END_TEST

/* A young process's leak of 4.1 %/h from its start under an 11 % GC sawtooth of 590 s (as 1031
 * of the 2400-series benchmark): 9.8 windows, too slow for the windows' minima, and with
 * noise as large as the ramp's rise per window no group of windows halves the floor's steps
 * (step 1). The residuals around the line are the sawtooth: autocorrelation 0.45 at lag 1,
 * about 0 at lag 2, then negative. Counted to the first non-positive lag they doubled Var S,
 * and the 90-120 min horizons waited at p_self 2e-6 while p was 1e-10: found at 143 min (131
 * min on seed 1 here). Over its first period (floor_acf_periodic_factor()) the sawtooth weighs
 * nothing: found within 2 h over four seeds (94-96 min); the leak-free twin stays quiet for a
 * day. */
static const Sawtooth saw_590s = {
        .name = "590 s sawtooth", .heap_mib = 900, .amplitude = 0.114, .period = 590, .phase = 0.3,
        .noise = 0.0087, .leak_per_hour = 0.041, .onset = 0,
};

START_TEST(test_young_leak_under_periodic_floor) {
        assert_sawtooth_leak_found(&saw_590s, 4, 2 * 3600);
}
END_TEST

/* A leak of 1.5 %/h that begins 5.6 h into a process under a GC sawtooth of 28 % every 858 s
 * (as 1443 of the 2400-series benchmark): floor_group() groups the floor by 12 windows, and
 * the 120 min horizon spans exactly 10 groups, the fewest a grouped horizon is judged on.
 * Whenever a group missed the sawtooth's trough the spike filter took it out and the horizon
 * went "not enough data" between its verdicts (62 of 240 evaluations from 6 to 10 h on the
 * benchmark's series), never three in a row: found 2.8 h after the onset there. With enough
 * points asked of what the horizon spans, it is judged at every evaluation, and the leak is
 * found within 4.4 h of its onset over four seeds (121-194 min; 166-194 min before); the
 * leak-free twin stays quiet for a day. */
static const Sawtooth saw_858s = {
        .name = "858 s sawtooth", .heap_mib = 209, .amplitude = 0.276, .period = 858, .phase = 0.3,
        .noise = 0.0046, .leak_per_hour = 0.015, .onset = 5.6 * 3600,
};

/* Replay f every 10 s for `hours` at the default configuration, every evaluation handed to
 * trace. */
static void replay_traced(SignalFn f, double hours, unsigned seed, DetectTraceFn trace, void *userdata) {
        SeriesDetector d;
        DetectConfig c;
        bool changed;

        detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        series_detector_set_trace(&d, trace, userdata);
        for (double t = 0; t < hours * 3600; t += 10)
                ck_assert_int_ge(series_detector_add(&d, 1.7e9 + t, f(t, &seed), &changed), 0);
        series_detector_done(&d);
}

/* Evaluations from 6 h on whose 120 min horizon was not judged, and all of them. */
typedef struct HorizonCount {
        double start;
        unsigned unjudged, evaluations;
} HorizonCount;

static void count_unjudged_120min(void *userdata, double now, double current, const DetectHorizonTrace *h, size_t n) {
        HorizonCount *count = userdata;

        (void) current;
        if (now - count->start < 6 * 3600)
                return;
        for (size_t i = 0; i < n; i++)
                if (fabs(h[i].horizon - 7200) < 1) {
                        count->evaluations++;
                        count->unjudged += strcmp(h[i].reason, "not enough data") == 0;
                }
}

START_TEST(test_grouped_horizon_keeps_its_points) {
        HorizonCount count = { .start = 1.7e9 };

        sawtooth = &saw_858s;
        replay_traced(sawtooth_leaking, 10, 1, count_unjudged_120min, &count);
        ck_assert_uint_ge(count.evaluations, 200);
        ck_assert_msg(count.unjudged == 0, "120 min horizon unjudged in %u of %u evaluations", count.unjudged,
                      count.evaluations);

        assert_sawtooth_leak_found(&saw_858s, 10, 4.4 * 3600);
}
END_TEST

/* How the floor is grouped (floor_group(), seen as the shortest horizon's windows per point),
 * evaluation after evaluation: how often it changed, and how often an evaluation had no
 * horizon judged on it ("not enough data" at the shortest one). */
typedef struct GroupCount {
        unsigned last, changes, evaluations;
} GroupCount;

static void count_group_changes(void *userdata, double now, double current, const DetectHorizonTrace *h, size_t n) {
        GroupCount *count = userdata;

        (void) now;
        (void) current;
        if (n == 0 || h[0].points == 0)
                return;
        if (count->evaluations++ > 0 && h[0].group != count->last)
                count->changes++;
        count->last = h[0].group;
}

/* A GC sawtooth of 169 s (2.8 windows) under noise, a leak of 1.6 %/h from the start (as 993
 * of the 2400-series benchmark): pairs of windows hold most troughs, threes every one, and
 * the two differ little. Judged on the groups the horizons use (aligned to the newest point,
 * so shifted by one every window), the choice between them flipped from one evaluation to
 * the next: 993 changed its group 470 times in 1409 evaluations, and every change changed
 * every horizon's points and verdicts, which step 9 wants three in a row of. Judged over
 * every alignment (group_roughness()), it holds still for hours at a time. */
static const Sawtooth saw_169s = {
        .name = "169 s sawtooth", .heap_mib = 544, .amplitude = 0.054, .period = 169, .phase = 0.2,
        .noise = 0.0025, .leak_per_hour = 0.016, .onset = 0,
};

START_TEST(test_floor_grouping_holds_still) {
        for (unsigned seed = 1; seed <= 4; seed++) {
                GroupCount count = { 0 };

                sawtooth = &saw_169s;
                replay_traced(sawtooth_leaking, 8, seed, count_group_changes, &count);
                fprintf(stderr, "169 s sawtooth, seed %u: the group changed %u times in %u evaluations\n", seed,
                        count.changes, count.evaluations);
                ck_assert_uint_ge(count.evaluations, 400);
                ck_assert_uint_le(count.changes, count.evaluations / 10);
        }
}
END_TEST

/* A sawtooth buried in noise (as 705 of the 2400-series benchmark: 4 % of a 270 MiB heap
 * every 259 s under 1.4 % noise, a leak of 5.9 %/h from 9.3 h): the minima of groups of more
 * windows shrink a little with every size, and measured against the ungrouped floor alone they
 * reached half at 16 windows, where no horizon shorter than 160 min has the points to be
 * judged. floor_group() takes a size only when it halves the steps of every smaller size (a
 * collapse, as a sawtooth's whole periods give), so the floor stays ungrouped: the leak is
 * found within 75 min over four seeds (2.7 h in the benchmark before), the leak-free twin stays
 * quiet for a day. */
static const Sawtooth saw_buried = {
        .name = "buried sawtooth", .heap_mib = 270, .amplitude = 0.04, .period = 259, .phase = 0.1,
        .noise = 0.0136, .leak_per_hour = 0.059, .onset = 9.3 * 3600,
};

START_TEST(test_buried_sawtooth_is_not_grouped) {
        GroupCount count = { 0 };

        sawtooth = &saw_buried;
        replay_traced(sawtooth_quiet, 9, 1, count_group_changes, &count);
        ck_assert_uint_ge(count.evaluations, 400);
        ck_assert_msg(count.last == 1 && count.changes <= count.evaluations / 20,
                      "grouped by %u at the end, %u changes in %u evaluations", count.last, count.changes,
                      count.evaluations);

        assert_sawtooth_leak_found(&saw_buried, 12, 75 * 60);
}
END_TEST

/* Replay a recorded floor (tests/unit/data/NAME: seconds from the start, bytes; one point per
 * 60 s window, so the detector's floor is the file) and return the first time the state
 * reached `leak` (NAN: never). */
static double replay_floor(const char *name) {
        const char *top = getenv("top_srcdir");
        char path[1024], line[256];
        SeriesDetector d;
        DetectConfig c;
        double first = NAN, t, v;
        bool changed;
        FILE *f;

        snprintf(path, sizeof path, "%s/tests/unit/data/%s", top ? top : "..", name);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        detect_config_default(&c);
        ck_assert_int_eq(series_detector_init(&d, &c), 0);
        while (fgets(line, sizeof line, f))
                if (line[0] != '#' && sscanf(line, "%lf,%lf", &t, &v) == 2) {
                        ck_assert_int_ge(series_detector_add(&d, 1.7e9 + t, v, &changed), 0);
                        if (isnan(first) && d.state == VERDICT_LEAK)
                                first = t;
                }
        fclose(f);
        series_detector_done(&d);
        return first;
}

/* Two churn series of the benchmark whose whole history climbed like a leak (12: 1 %/h for
 * 5.5 h, p_self 1e-7; 1100: 2 %/h for 3.4 h) alarmed when any whole history of 90 min or more
 * could confirm itself. Their floors are not periodic: no finding. */
START_TEST(test_wander_does_not_confirm_itself) {
        double found = replay_floor("churn-12.csv");

        ck_assert_msg(isnan(found), "churn-12: leak after %.0f s", found);
        found = replay_floor("churn-1100.csv");
        ck_assert_msg(isnan(found), "churn-1100: leak after %.0f s", found);
}
END_TEST

/* A churn series whose young floor climbed between the halves of its whole history (2124:
 * 1.5 %/h over 114 min at p_self 1e-9, each half 0.8-1.0 %/h) alarmed at 1.9 h in every draw
 * of its sampling moments: a climb in the middle is not steady growth, and does not confirm
 * itself. */
START_TEST(test_climb_between_halves_does_not_confirm_itself) {
        double found = replay_floor("churn-2124.csv");

        ck_assert_msg(isnan(found), "churn-2124: leak after %.0f s", found);
}
END_TEST

/* An 85 min horizon confirms itself on a process at least 90 min old, unless it looks like a
 * wander (the whole history's older half falls, or the level fell between its halves). Batch 251 of the benchmark (2.7 %/h from the start under a batch
 * every 48 min) had no 90 min-2 h horizon conclusive before 2 h: its whole history begins with
 * a batch the spike filter cannot drop at the edge. Its 85 min horizon finds it before 2 h
 * (at 1.7 h on its raw samples). Leak-free churn 876 (tau 51 min) fell and then rose over its
 * first 100 min (halves -0.63 and +2.70 %/h): without the guard its 85 min horizon confirmed
 * itself on that wander and alarmed at 1.7 h. */
START_TEST(test_85_minute_horizon_confirms_itself) {
        double found = replay_floor("batch-251.csv");

        printf("batch 251 (2.7 %%/h from the start) found after %.0f min\n", found / 60);
        ck_assert_msg(!isnan(found) && found >= 90 * 60 && found < 2 * 3600, "batch-251: leak after %.0f s", found);
        found = replay_floor("churn-876.csv");
        ck_assert_msg(isnan(found), "churn-876: leak after %.0f s", found);
}
END_TEST

/* The cases fall into three groups, each a TCase; the build compiles this file into one test
 * binary per group (DETECT_TCASE names the group it runs: tests/Makefile.inc), so that make -j
 * runs them side by side. As one binary they were the last 3 minutes of `make check` in the
 * default build and the last 10 in the sanitizer build, with the other core idle. Without
 * DETECT_TCASE every group runs. */
static TCase *detect_tcase(const char *name) {
        TCase *tc = tcase_create(name);

        tcase_set_timeout(tc, 120);
        return tc;
}

int main(void) {
        Suite *s = suite_create("detect");
        /* The statistics, verdicts on short floors, and young processes (their first hours). */
        TCase *young = detect_tcase("young");
        /* Leaks that begin in an old process, after a step, a warm-up or a filled cache. */
        TCase *onsets = detect_tcase("onsets");
        /* Days and a week of history: 33 s and 8 s in the default build, x2.5-3 under ASan */
        TCase *cycles = detect_tcase("cycles");
        /* Backgrounds that are not leaks and leaks under them: churn, sawtooths (aliased,
         * grouped, periodic), batches and high-water steps. */
        TCase *backgrounds = detect_tcase("backgrounds");
        SRunner *sr;
        int failed;

        tcase_add_test(young, test_config);
        tcase_add_test(young, test_time_to_limit);
        tcase_add_test(young, test_linear_leak_is_a_leak);
        tcase_add_test(young, test_not_leaks);
        tcase_add_test(young, test_too_little_data);
        tcase_add_test(young, test_series_detector_sawtooth_leak);
        tcase_add_test(young, test_series_detector_flat_sawtooth);
        tcase_add_test(young, test_mann_kendall_sen_reference);
        tcase_add_test(young, test_mann_kendall_exact);
        tcase_add_test(young, test_one_percent_per_hour_within_two_hours);
        tcase_add_test(young, test_borderline_does_not_flap);
        tcase_add_test(young, test_warmup_and_cache_are_not_leaks);
        tcase_add_test(young, test_young_process_strong_evidence);
        tcase_add_test(young, test_floor_acf_reference);
        tcase_add_test(young, test_floor_acf_past_dips);
        tcase_add_test(young, test_floor_acf_periodic_factor);
        tcase_add_test(young, test_floor_acf_period);
        tcase_add_test(young, test_leak_on_levelled_off_warmup);
        tcase_add_test(young, test_young_leak_on_warmup);
        tcase_add_test(young, test_linear_cache_fill_closes);
        tcase_add_test(young, test_young_process_waits_90_minutes);
        tcase_add_test(young, test_wander_does_not_confirm_itself);
        tcase_add_test(young, test_climb_between_halves_does_not_confirm_itself);
        tcase_add_test(young, test_85_minute_horizon_confirms_itself);
        tcase_add_test(young, test_young_leak_under_periodic_floor);
        tcase_add_test(young, test_gap_in_a_young_process);

        tcase_add_test(onsets, test_leak_onset_in_old_process);
        tcase_add_test(onsets, test_leak_after_ramped_step);
        tcase_add_test(onsets, test_leak_after_warmup_in_reference);
        tcase_add_test(onsets, test_leak_after_filled_cache);
        tcase_add_test(onsets, test_leak_on_slow_warmup_and_filling_cache);
        tcase_add_test(onsets, test_growth_undone_is_not_a_leak);
        tcase_set_timeout(cycles, 600);
        tcase_add_test(cycles, test_daily_cycle_is_not_a_leak);
        tcase_add_test(cycles, test_leak_on_daily_cycle);
        tcase_add_test(onsets, test_leak_onset_under_slow_sawtooth);

        tcase_add_test(backgrounds, test_churn_is_not_a_leak);
        tcase_add_test(backgrounds, test_long_sawtooth_aliasing);
        tcase_add_test(backgrounds, test_high_water_steps_are_not_leaks);
        tcase_add_test(backgrounds, test_live_object_steps_are_leaks);
        tcase_add_test(backgrounds, test_batch_spikes);
        tcase_add_test(backgrounds, test_aliased_sawtooth_horizons);
        tcase_add_test(backgrounds, test_sawtooth_of_three_windows);
        tcase_add_test(backgrounds, test_floor_grouping_holds_still);
        tcase_add_test(backgrounds, test_buried_sawtooth_is_not_grouped);
        tcase_add_test(backgrounds, test_periodic_floor_confirms_itself);
        tcase_add_test(backgrounds, test_grouped_horizon_keeps_its_points);

        suite_add_tcase(s, young);
        suite_add_tcase(s, onsets);
        suite_add_tcase(s, cycles);
        suite_add_tcase(s, backgrounds);
        sr = srunner_create(s);
#ifdef DETECT_TCASE
        srunner_run(sr, NULL, DETECT_TCASE, CK_NORMAL);
#else
        srunner_run_all(sr, CK_NORMAL);
#endif
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
