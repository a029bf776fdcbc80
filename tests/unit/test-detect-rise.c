/* SPDX-License-Identifier: MIT */
/* daemon/detect-rise.c on its own: the two shapes of "a rise that levels off" (rise_at(),
 * rise_left()), the least-squares fit of a + b rise + c x (rise_fit(): coefficients of
 * noiseless data recovered, a singular system refused), the best rise over the grid and its
 * refinement (rise_fit_best(): the time scale of a noiseless warm-up or filled cache found,
 * the sign and tau_max rules), the residuals around a fit (rise_residuals()) and the F of the
 * line against the rise alone (rise_fit_f(): large for a line on a rise, small without one). */

#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect-rise.h"
#include "helper-assert.h"
#include "helper-random.h"

START_TEST(test_rise_at) {
        Rise e = { RISE_EXP, 0.25 }, r = { RISE_ENDS, 0.5 };

        /* 1 - exp(-x/s): 0 at 0, 1 - 1/e at s, 1 - e^-40 = 1 - 4e-18, which is 1 in double */
        ck_assert_double_eq(rise_at(e, 0), 0);
        ck_assert_double_eq(rise_left(e, 0), 1);
        ck_assert_double_eq_tol(rise_at(e, 0.25), 0.63212055882855767, 1e-15);
        ck_assert_double_eq_tol(rise_left(e, 0.25), 0.36787944117144233, 1e-15);
        ck_assert_double_eq_tol(rise_left(e, 1), 0.018315638888734179, 1e-15); /* e^-4 */
        ck_assert_double_eq(rise_at(e, 10), 1);
        ck_assert_double_eq(rise_left(e, 10), 0);
        /* 1 - (1 - min(x/s, 1))^2: 0, 1 - 0.75^2 = 0.4375 at s/4, 0.75 at s/2, 1 from s on */
        ck_assert_double_eq(rise_at(r, 0), 0);
        ck_assert_double_eq(rise_at(r, 0.125), 0.4375);
        ck_assert_double_eq(rise_at(r, 0.25), 0.75);
        ck_assert_double_eq(rise_left(r, 0.25), 0.25);
        ck_assert_double_eq(rise_at(r, 0.5), 1);
        ck_assert_double_eq(rise_left(r, 0.5), 0);
        ck_assert_double_eq(rise_at(r, 3), 1);
        ck_assert_double_eq(rise_left(r, 3), 0);
        /* the same in seconds (a stored Horizon's scale): only x / s counts */
        ck_assert_double_eq_tol(rise_at((Rise) { RISE_EXP, 900 }, 900), 0.63212055882855767, 1e-15);
        ck_assert_double_eq(rise_at((Rise) { RISE_ENDS, 3600 }, 1800), 0.75);
        /* both rise steadily from 0 to 1 */
        for (int shape = RISE_EXP; shape <= RISE_ENDS; shape++) {
                Rise rise = { (RiseShape) shape, 0.3 };
                double prev = -1;

                for (double x = 0; x <= 4; x += 1.0 / 64) {
                        double y = rise_at(rise, x);

                        ck_assert(y >= prev && y >= 0 && y <= 1);
                        ck_assert_double_eq_tol(rise_left(rise, x), 1 - y, 1e-15);
                        prev = y;
                }
        }
}
END_TEST

/* n floor points a minute apart from t = 1e9, around a level of 1e8: level + v(x), x the
 * share of the span. */
#define N_FIT 120
#define SPAN (60.0 * (N_FIT - 1))

static FitPoints fit;
static DetectPoint pts[N_FIT];

static double model(Rise rise, double b, double c, double x) {
        return b * rise_at(rise, x) + c * x;
}

static const FitPoints *noiseless(Rise rise, double b, double c) {
        for (size_t i = 0; i < N_FIT; i++) {
                double t = 1e9 + 60.0 * (double) i;

                pts[i] = (DetectPoint) { .t = t, .v = 1e8 + model(rise, b, c, (t - 1e9) / SPAN) };
        }
        return rise_fit_points(pts, N_FIT, SPAN, &fit);
}

START_TEST(test_fit_points) {
        const FitPoints *f = noiseless((Rise) { RISE_EXP, 0.2 }, 4e6, 1e6);

        ck_assert_ptr_eq(f, &fit);
        ck_assert_uint_eq(f->n, N_FIT);
        ck_assert_double_eq(f->x[0], 0);
        ck_assert_double_eq(f->dv[0], 0);
        ck_assert_double_eq(f->x[N_FIT - 1], 1);
        for (size_t i = 0; i < N_FIT; i++) {
                ck_assert_double_eq(f->x[i], (pts[i].t - pts[0].t) / SPAN);
                ck_assert_double_eq(f->dv[i], pts[i].v - pts[0].v);
        }
}
END_TEST

/* Noiseless a + b rise + c x is fitted exactly. Through rise_fit_points() the values are
 * relative to the first point, where rise and line are 0: a = 0. Built by hand, a FitPoints
 * may carry an offset: a = 7e5 is recovered too. Tolerances: the values are ~1e8 (rounding
 * ~1e-8) and the columns 1, rise and x are far from collinear at these time scales, so the
 * coefficients come back to 1e-6 of their size and the residual sum of squares to nothing
 * (1 byte^2 over 120 points: residuals of a few 0.1 bytes at most). */
START_TEST(test_fit_recovers_coefficients) {
        static const Rise rises[] = { { RISE_EXP, 0.2 }, { RISE_EXP, 0.05 }, { RISE_ENDS, 0.6 }, { RISE_ENDS, 0.3 } };
        double coef[3];

        for (size_t k = 0; k < sizeof rises / sizeof rises[0]; k++) {
                Rise rise = rises[k];
                const FitPoints *f = noiseless(rise, 4e6, 1.5e6);
                double rss = rise_fit(f, rise, true, coef);

                ck_assert_double_le(rss, 1);
                ck_assert_double_le(fabs(coef[0]), 1e-6 * 4e6);
                ck_assert_rel(coef[1], 4e6, 1e-6);
                ck_assert_rel(coef[2], 1.5e6, 1e-6);

                /* a rise alone (c = 0), fitted without the line: coef[2] is 0 */
                f = noiseless(rise, -3e6, 0);
                rss = rise_fit(f, rise, false, coef);
                ck_assert_double_le(rss, 1);
                ck_assert_double_le(fabs(coef[0]), 1e-6 * 3e6);
                ck_assert_rel(coef[1], -3e6, 1e-6);
                ck_assert_double_eq(coef[2], 0);

                /* by hand, with an offset */
                fit.n = 50;
                for (size_t i = 0; i < 50; i++) {
                        fit.x[i] = (double) i / 49;
                        fit.dv[i] = 7e5 + model(rise, 4e6, 1.5e6, fit.x[i]);
                }
                rss = rise_fit(&fit, rise, true, coef);
                ck_assert_double_le(rss, 1);
                ck_assert_rel(coef[0], 7e5, 1e-6);
                ck_assert_rel(coef[1], 4e6, 1e-6);
                ck_assert_rel(coef[2], 1.5e6, 1e-6);
        }
}
END_TEST

/* A system without a unique solution is refused (INFINITY): every x the same (1, rise and x
 * are then the same column up to a factor), no point, one point, two points for three
 * coefficients. Two points for two coefficients are fitted exactly: at x = 0 and 1 with
 * dv = 0 and 5, a = 0 and b = 5 / rise(1). */
START_TEST(test_fit_singular) {
        Rise rise = { RISE_EXP, 0.3 };
        double coef[3];

        fit.n = 10;
        for (size_t i = 0; i < 10; i++) {
                fit.x[i] = 0.5;
                fit.dv[i] = (double) i;
        }
        ck_assert(isinf(rise_fit(&fit, rise, false, coef)));
        ck_assert(isinf(rise_fit(&fit, rise, true, coef)));
        ck_assert(isinf(rise_fit(&fit, (Rise) { RISE_ENDS, 0.3 }, true, coef)));
        fit.n = 0;
        ck_assert(isinf(rise_fit(&fit, rise, false, coef)));
        fit.n = 1;
        fit.x[0] = 0;
        fit.dv[0] = 0;
        ck_assert(isinf(rise_fit(&fit, rise, false, coef)));
        fit.n = 2;
        fit.x[1] = 1;
        fit.dv[1] = 5;
        ck_assert(isinf(rise_fit(&fit, rise, true, coef)));
        ck_assert_double_eq_tol(rise_fit(&fit, rise, false, coef), 0, 1e-20);
        ck_assert_double_eq_tol(coef[0], 0, 1e-14);
        ck_assert_double_eq_tol(coef[1], 5 / rise_at(rise, 1), 1e-12);
        ck_assert_double_eq(coef[2], 0);
}
END_TEST

/* rise_fit_best() on a noiseless rise whose time scale lies between two grid values: the
 * grid finds the nearest, and the golden section between that one's neighbours narrows the
 * bracket by 0.618^12 = 0.0031 on log s; the noiseless fit's optimum, the true s, stays inside
 * it. The brackets are two grid steps: log 1.49^2 = 0.80 for the exponentials, at most
 * log(0.375/0.125) = 1.10 for the rises that end (the grid's first steps), log 2 = 0.69 beyond
 * the span; so s within 0.34 %. b and c within 1 %: what a time scale off by that much moves
 * them, at most (measured: s within 0.05 %, b and c within 0.05 %). Across the grid without
 * the line (exponentials of 2 % to 1.3 spans, rises that end from 0.19 to 1.2 spans), then
 * with a line on top. */
START_TEST(test_fit_best_recovers_time_scale) {
        static const Rise rises[] = {
                { RISE_EXP, 0.021 }, { RISE_EXP, 0.042 }, { RISE_EXP, 0.0605 }, { RISE_EXP, 0.09 },
                { RISE_EXP, 0.137 }, /* between grid 0.111 and 0.166 */
                { RISE_EXP, 0.2 },   { RISE_EXP, 0.3 },   { RISE_EXP, 0.45 },   { RISE_EXP, 0.7 },
                { RISE_EXP, 1.3 },   { RISE_ENDS, 0.19 }, { RISE_ENDS, 0.44 },
                { RISE_ENDS, 0.6 }, /* between grid 0.5 and 0.625 */
                { RISE_ENDS, 0.7 },  { RISE_ENDS, 0.81 }, { RISE_ENDS, 0.93 }, { RISE_ENDS, 1.2 },
        };
        static const struct {
                Rise rise;
                double c;
        } with_line[] = {
                { { RISE_EXP, 0.137 }, 2e6 },
                { { RISE_ENDS, 0.3 }, 2e6 }, /* between 0.25 and 0.375 */
                { { RISE_ENDS, 0.6 }, -1e6 },
        };
        double best[3], coef[3], rss;
        Rise got;

        for (size_t k = 0; k < sizeof rises / sizeof rises[0]; k++) {
                const FitPoints *f = noiseless(rises[k], 5e6, 0);

                rss = rise_fit_best(f, false, INFINITY, best, &got);
                ck_assert_msg(got.shape == rises[k].shape, "%zu: shape %d", k, (int) got.shape);
                ck_assert_rel(got.s, rises[k].s, 0.0034);
                ck_assert_rel(best[1], 5e6, 0.01);
                ck_assert_double_eq(best[2], 0);
                /* the fit at what it found is the one it reports */
                ck_assert_double_eq(rise_fit(f, got, false, coef), rss);
                ck_assert(memcmp(coef, best, sizeof coef) == 0);
        }
        for (size_t k = 0; k < sizeof with_line / sizeof with_line[0]; k++) {
                const FitPoints *f = noiseless(with_line[k].rise, 5e6, with_line[k].c);

                rss = rise_fit_best(f, true, INFINITY, best, &got);
                ck_assert_msg(got.shape == with_line[k].rise.shape, "%zu: shape %d", k, (int) got.shape);
                ck_assert_rel(got.s, with_line[k].rise.s, 0.0034);
                ck_assert_rel(best[1], 5e6, 0.01);
                ck_assert_rel(best[2], with_line[k].c, 0.01);
                ck_assert_double_eq(rise_fit(f, got, true, coef), rss);
                ck_assert(memcmp(coef, best, sizeof coef) == 0);
        }
}
END_TEST

/* The rules on which rises may be taken: with the line only b > 0, so a falling exponential
 * plus a line has no fit at all (it is convex, every rise concave: least squares gives each
 * rise b < 0, and each is refused); without the line any b (the falling one is recovered);
 * with tau_max only rises finished within it: an exponential of at most tau_max, a rise that
 * ends by 3 tau_max (and within the span). */
START_TEST(test_fit_best_rules) {
        double best[3], rss;
        Rise got;
        const FitPoints *f = noiseless((Rise) { RISE_EXP, 0.137 }, -5e6, 2e6);

        ck_assert(isinf(rise_fit_best(f, true, INFINITY, best, &got)));
        rss = rise_fit_best(f, false, INFINITY, best, &got);
        ck_assert(isfinite(rss));
        ck_assert_double_lt(best[1], 0);

        f = noiseless((Rise) { RISE_EXP, 0.137 }, -5e6, 0);
        rss = rise_fit_best(f, false, INFINITY, best, &got);
        ck_assert_int_eq(got.shape, RISE_EXP);
        ck_assert_rel(got.s, 0.137, 0.0034);
        ck_assert_rel(best[1], -5e6, 0.01);

        f = noiseless((Rise) { RISE_EXP, 0.137 }, 5e6, 1e6);
        for (double tau_max = 0.02; tau_max < 0.5; tau_max *= 2) {
                rss = rise_fit_best(f, true, tau_max, best, &got);
                ck_assert(isfinite(rss) && rss > 0);
                if (got.shape == RISE_EXP)
                        ck_assert_msg(got.s <= tau_max * (1 + 1e-12), "tau_max %g: exponential of %g", tau_max, got.s);
                else
                        ck_assert_msg(got.s <= fmin(1, 3 * tau_max) * (1 + 1e-12), "tau_max %g: ends at %g", tau_max,
                                      got.s);
        }
        /* nothing finished that soon: no fit */
        ck_assert(isinf(rise_fit_best(f, true, 0.001, best, &got)));
}
END_TEST

/* Residuals: v - v0 - a - b rise(x) - c x. By hand at x = 0, 1/2, 1 (t 0, 50, 100 s, span
 * 100) for v = 10, 20, 35, a b c = 1 2 3, a rise that ends at 1 (0, 0.75, 1):
 * 0 - 1 - 0 - 0 = -1;  10 - 1 - 1.5 - 1.5 = 6;  25 - 1 - 2 - 3 = 19.
 * Around an exact fit of noiseless data, nothing; into the points themselves too. */
START_TEST(test_residuals) {
        static const double coef_hand[3] = { 1, 2, 3 };
        DetectPoint p[3] = { { 1e9, 10 }, { 1e9 + 50, 20 }, { 1e9 + 100, 35 } }, out[3];
        static DetectPoint res[N_FIT];
        Rise rise = { RISE_ENDS, 0.6 };
        double coef[3];
        const FitPoints *f;

        rise_residuals(p, 3, 100, coef_hand, (Rise) { RISE_ENDS, 1 }, out);
        ck_assert_double_eq(out[0].v, -1);
        ck_assert_double_eq(out[1].v, 6);
        ck_assert_double_eq(out[2].v, 19);
        for (size_t i = 0; i < 3; i++)
                ck_assert_double_eq(out[i].t, p[i].t);

        f = noiseless(rise, 4e6, 1.5e6);
        ck_assert_double_le(rise_fit(f, rise, true, coef), 1);
        rise_residuals(pts, N_FIT, SPAN, coef, rise, res);
        for (size_t i = 0; i < N_FIT; i++) {
                ck_assert_double_eq(res[i].t, pts[i].t);
                ck_assert_double_le(fabs(res[i].v), 0.1); /* bytes, on 1e8 */
        }
        rise_residuals(pts, N_FIT, SPAN, coef, rise, pts);
        ck_assert(memcmp(pts, res, sizeof res) == 0);
}
END_TEST

/* The F of the line against the rise alone, as detect.c asks it: the best rise alone (any,
 * rss0) against the best finished rise plus a line (tau_max 0.5 of the span, rss1), divided
 * by the autocorrelation factor of the second fit's residuals:
 *   F = (rss0 - rss1) / (rss1 / (n - 4)) / max(1, factor).
 * A warm-up (10 % of the level, time constant 0.15 of the 2 h span) under 0.1 % white noise
 * (sigma = 1e5 on 1e8, so rss1 ~ (n - 4) sigma^2):
 *  - with a line of 2 % over the span on top: the part of x that the constant and this rise
 *    do not explain has a sum of squares of 3.77 (of n = 120: the rise's flat tail), so with
 *    the rise held at 0.15 F would be ~ c^2 3.77 / sigma^2 = 1500; the best rise alone bends
 *    slower instead (0.196) and takes part of the line, leaving a misfit of 2.87e12 on the
 *    noiseless points, 287 sigma^2, so F ~ 287 give or take the noise's share of it (2 sqrt(287)
 *    sigma: +-12 %; measured 231-405 over the seeds): asserted above 100, 4 x SAT_F;
 *  - without it, F is F(1, n - 4) distributed, above 25 with a probability of 2e-6: asserted
 *    below 25 (measured 0.2-2.2; the noise's factor near 1). Eight seeds each. */
static double line_f(double c, unsigned long long seed, FloorAcf *acf) {
        static DetectPoint res[N_FIT];
        unsigned long long state = seed * 0x9e3779b97f4a7c15ull;
        Rise rise = { RISE_EXP, 0.15 }, r0, r1;
        double coef[3], best[3], rss0, rss1, f_stat, factor;
        const FitPoints *f;

        for (size_t i = 0; i < N_FIT; i++) {
                double t = 1e9 + 60.0 * (double) i;

                pts[i] = (DetectPoint) { .t = t, .v = 1e8 + model(rise, 1e7, c, (t - 1e9) / SPAN) + 1e5 * gauss(&state) };
        }
        f = rise_fit_points(pts, N_FIT, SPAN, &fit);
        rss0 = rise_fit_best(f, false, INFINITY, coef, &r0);
        rss1 = rise_fit_best(f, true, 0.5, best, &r1);
        ck_assert(isfinite(rss0) && isfinite(rss1));
        rise_residuals(pts, N_FIT, SPAN, best, r1, res);
        f_stat = rise_fit_f(res, N_FIT, rss0, rss1, acf);
        factor = floor_acf_variance_factor(acf, N_FIT);
        ck_assert_uint_eq(acf->n, N_FIT);
        ck_assert_double_eq_tol(f_stat, (rss0 - rss1) / (rss1 / (N_FIT - 4)) / fmax(1, factor), 1e-9 * fabs(f_stat));
        return f_stat;
}

START_TEST(test_fit_f) {
        for (unsigned long long seed = 1; seed <= 8; seed++) {
                FloorAcf acf;
                double with_line = line_f(2e6, seed, &acf), without = line_f(0, seed, &acf);

                ck_assert_msg(with_line > 100, "seed %llu: F %g with a line", seed, with_line);
                ck_assert_msg(without < 25, "seed %llu: F %g without one", seed, without);
                ck_assert_double_lt(floor_acf_variance_factor(&acf, N_FIT), 1.5);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("detect-rise");
        TCase *tc = tcase_create("rise");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_rise_at);
        tcase_add_test(tc, test_fit_points);
        tcase_add_test(tc, test_fit_recovers_coefficients);
        tcase_add_test(tc, test_fit_singular);
        tcase_add_test(tc, test_fit_best_recovers_time_scale);
        tcase_add_test(tc, test_fit_best_rules);
        tcase_add_test(tc, test_residuals);
        tcase_add_test(tc, test_fit_f);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
