/* SPDX-License-Identifier: MIT */
/*
 * A rise that levels off, plus a line, fitted by least squares (see detect-rise.h).
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "detect-rise.h"

/* The time constants of exponential rises tried: SAT_TAUS of them, from SAT_TAU_MIN of the
 * span to 100 spans (almost a straight line), equally spaced on a log scale. */
#define SAT_TAUS 24
#define SAT_TAU_MIN 0.01

const FitPoints *rise_fit_points(const DetectPoint *p, size_t n, double span, FitPoints *ret) {
        assert(n <= RISE_FIT_MAX_POINTS);
        ret->n = n;
        for (size_t i = 0; i < n; i++) {
                ret->x[i] = (p[i].t - p[0].t) / span;
                ret->dv[i] = p[i].v - p[0].v;
        }
        return ret;
}

double rise_at(Rise r, double x) {
        double u;

        if (r.shape == RISE_EXP)
                return 1 - exp(-x / r.s);
        u = x < r.s ? 1 - x / r.s : 0;
        return 1 - u * u;
}

double rise_left(Rise r, double x) {
        return 1 - rise_at(r, x);
}

/* The i-th of the SAT_TAUS time constants tried, as a share of the span: SAT_TAU_MIN to 100. */
static double rise_tau(size_t i) {
        return SAT_TAU_MIN * pow(1e4, (double) i / (SAT_TAUS - 1));
}

/* The rises tried, as shares of the span (i from 0 while it returns true): the SAT_TAUS time
 * constants of RISE_EXP (up to 100 spans: almost a line), then RISE_ENDS ending at every
 * 1/RISE_ENDS_STEPS of the span up to the span itself, then beyond it in steps of sqrt(2) up
 * to RISE_ENDS_BEYOND spans. Where a cache ends matters to the fit (the kink): hence a linear
 * grid, finer than the time constants' one there, and refined (rise_fit_best()). A rise that
 * ends beyond the span is a parabola still bending over it (a cache still filling), which only
 * the null hypothesis may take (rise_finished()): it is exactly "a rise that ends at the span
 * plus a line" -- 1 - (1 - x/s)^2 = (2x - x^2) / s^2 + 2 (1 - 1/s) x / s -- so without it that
 * fit beat every rise alone on a cache filling for 137 min, 90 min old (F far above SAT_F,
 * detect.c, at 0.5 % noise sampled every second), and the line was taken for a leak. */
#define RISE_ENDS_STEPS 8
#define RISE_ENDS_BEYOND 8.0

static bool rise_grid(size_t i, Rise *ret) {
        double beyond;

        if (i < SAT_TAUS) {
                *ret = (Rise) { RISE_EXP, rise_tau(i) };
                return true;
        }
        i -= SAT_TAUS;
        if (i < RISE_ENDS_STEPS) {
                *ret = (Rise) { RISE_ENDS, (double) (i + 1) / RISE_ENDS_STEPS };
                return true;
        }
        beyond = pow(M_SQRT2, (double) (i - RISE_ENDS_STEPS + 1));
        if (beyond > RISE_ENDS_BEYOND * (1 + 1e-9))
                return false;
        *ret = (Rise) { RISE_ENDS, beyond };
        return true;
}

/* Has the rise levelled off within the span, by the measure of a time constant of at most
 * tau_max spans (INFINITY: any rise of the grid, also those still rising at the span's end)?
 * An exponential with tau_max spans has 95 % of its rise behind it at 3 tau_max, so a rise
 * that ends does so by 3 tau_max, and within the span. */
static bool rise_finished(Rise r, double tau_max) {
        if (isinf(tau_max))
                return true;
        return r.shape == RISE_EXP ? r.s <= tau_max : r.s <= fmin(1.0, 3 * tau_max);
}

/* The best grid rise of each shape is then refined between its grid
 * neighbours (golden section on log s, RISE_REFINE steps: the bracket down to 0.3 %). With
 * low noise a time scale 20 % off the true one (the grid's step) leaves a misfit that a line
 * on top of another shape explains "significantly": the exponential warm-up of 61 min over a
 * 90 min history took "a rise that ends, plus a line" at F 34 against the nearest grid
 * exponential alone. */
#define RISE_REFINE 12

static double rise_fit_signed(const FitPoints *f, Rise rise, bool with_line, double coef[3]) {
        double r = rise_fit(f, rise, with_line, coef);

        /* without the line, the null hypothesis: any sign */
        return coef[1] > 0 || !with_line ? r : INFINITY;
}

double rise_fit_best(const FitPoints *f, bool with_line, double tau_max, double best[3], Rise *ret_rise) {
        double rss = INFINITY;
        Rise rise;

        best[0] = best[1] = best[2] = 0;
        *ret_rise = (Rise) { RISE_EXP, 0 };
        for (RiseShape shape = 0; shape < _RISE_SHAPE_MAX; shape++) {
                double lo = 0, hi = 0, grid_rss = INFINITY, coef[3], prev = 0, g = (sqrt(5) - 1) / 2;
                Rise at = { shape, 0 };
                bool found = false;

                /* the best of the grid, and its neighbours as the bracket */
                for (size_t i = 0; rise_grid(i, &rise); i++) {
                        double r;

                        if (rise.shape != shape || !rise_finished(rise, tau_max))
                                continue;
                        if (found && hi == 0)
                                hi = rise.s;
                        r = rise_fit_signed(f, rise, with_line, coef);
                        if (r < grid_rss) {
                                grid_rss = r;
                                at = rise;
                                lo = prev > 0 ? prev : rise.s;
                                hi = 0;
                                found = true;
                        }
                        prev = rise.s;
                }
                if (!found)
                        continue;
                if (hi == 0)
                        hi = at.s;
                /* golden section on log s over [lo, hi]; the grid point is kept if better */
                {
                        double a = log(lo), b = log(hi), x1 = b - g * (b - a), x2 = a + g * (b - a), f1, f2;

                        f1 = rise_fit_signed(f, (Rise) { shape, exp(x1) }, with_line, coef);
                        f2 = rise_fit_signed(f, (Rise) { shape, exp(x2) }, with_line, coef);
                        for (unsigned k = 0; k < RISE_REFINE && b - a > 1e-6; k++) {
                                if (f1 <= f2) {
                                        b = x2;
                                        x2 = x1;
                                        f2 = f1;
                                        x1 = b - g * (b - a);
                                        f1 = rise_fit_signed(f, (Rise) { shape, exp(x1) }, with_line, coef);
                                } else {
                                        a = x1;
                                        x1 = x2;
                                        f1 = f2;
                                        x2 = a + g * (b - a);
                                        f2 = rise_fit_signed(f, (Rise) { shape, exp(x2) }, with_line, coef);
                                }
                        }
                        if (fmin(f1, f2) < grid_rss)
                                at.s = exp(f1 <= f2 ? x1 : x2);
                }
                {
                        double r = rise_fit_signed(f, at, with_line, coef);

                        if (r < rss) {
                                rss = r;
                                memcpy(best, coef, 3 * sizeof best[0]);
                                *ret_rise = at;
                        }
                }
        }
        return rss;
}

void rise_residuals(const DetectPoint *p, size_t n, double span, const double coef[3], Rise rise,
                    DetectPoint *out) {
        double t0 = p[0].t, v0 = p[0].v;

        for (size_t i = 0; i < n; i++) {
                double x = (p[i].t - t0) / span;

                out[i] = (DetectPoint) { .t = p[i].t,
                                         .v = p[i].v - v0 - coef[0] - coef[1] * rise_at(rise, x) - coef[2] * x };
        }
}

double rise_fit_f(const DetectPoint *res, size_t n, double rss_null, double rss, FloorAcf *ret_acf) {
        double n_ratio;

        floor_acf_estimate(res, n, ret_acf);
        n_ratio = floor_acf_variance_factor(ret_acf, n);
        return (rss_null - rss) / (rss / (double) (n - 4)) / (n_ratio > 1 ? n_ratio : 1);
}

double rise_fit(const FitPoints *f, Rise rise, bool with_line, double coef[3]) {
        size_t k = with_line ? 3 : 2, n = f->n;
        double m[3][4], rss = 0;
        /* the rise at each point, computed once for both passes (exp() is most of a fit) */
        double rises[RISE_FIT_MAX_POINTS];
        /* The sums of the normal equations: of 1, rise (r), x, value (v) and their products.
         * Each is added up in the order of the points, as the matrix's loops over rows and
         * columns did (1 * y and y * 1 are y exactly, r * x is x * r). */
        double s1 = 0, sr = 0, sx = 0, sv = 0, srr = 0, srx = 0, srv = 0, sxx = 0, sxv = 0;

        for (size_t i = 0; i < n; i++) {
                double x = f->x[i], rx = rise_at(rise, x), v = f->dv[i];

                rises[i] = rx;
                s1 += 1;
                sr += rx;
                sx += x;
                sv += v;
                srr += rx * rx;
                srx += rx * x;
                srv += rx * v;
                sxx += x * x;
                sxv += x * v;
        }
        if (with_line) {
                double full[3][4] = { { s1, sr, sx, sv }, { sr, srr, srx, srv }, { sx, srx, sxx, sxv } };

                memcpy(m, full, sizeof m);
        } else {
                double part[3][4] = { { s1, sr, 0, sv }, { sr, srr, 0, srv }, { 0 } };

                memcpy(m, part, sizeof m);
        }
        /* Gaussian elimination with partial pivoting, k <= 3. */
        for (size_t col = 0; col < k; col++) {
                size_t piv = col;
                for (size_t r = col + 1; r < k; r++)
                        if (fabs(m[r][col]) > fabs(m[piv][col]))
                                piv = r;
                if (!(fabs(m[piv][col]) > 1e-12 * (fabs(m[0][0]) + 1)))
                        return INFINITY;
                for (size_t q = 0; q < 4; q++) {
                        double t = m[col][q];
                        m[col][q] = m[piv][q];
                        m[piv][q] = t;
                }
                for (size_t r = 0; r < k; r++) {
                        double g;
                        if (r == col)
                                continue;
                        g = m[r][col] / m[col][col];
                        for (size_t q = col; q < 4; q++)
                                m[r][q] -= g * m[col][q];
                }
        }
        coef[2] = 0;
        for (size_t r = 0; r < k; r++)
                coef[r] = m[r][3] / m[r][r];
        for (size_t i = 0; i < n; i++) {
                double e = f->dv[i] - coef[0] - coef[1] * rises[i] - coef[2] * f->x[i];
                rss += e * e;
        }
        return rss;
}
