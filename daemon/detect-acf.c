/* SPDX-License-Identifier: MIT */
/*
 * The floor's autocorrelation over its history, and the variance inflation of
 * Mann-Kendall's S it implies (see detect-acf.h for why); and whether a floor is periodic.
 * Pure computation, no allocation: O(points * lags) per estimate (O(points * period) over a
 * periodic floor's first period), O(points^2 / 4) per periodicity test (at most 480 points:
 * about 1.5 % more detector time on a day's series).
 */
#include <math.h>
#include <stdbool.h>

#include "detect-acf.h"

/* Two-sided 95 % normal quantile: the significance bound of one autocorrelation. */
#define ACF_Z 1.959963984540054

/* The least-squares line through p[0..n), as the mean time (from p[0].t), the mean value and
 * the slope: it only centres the residuals. Times are taken from the first point to keep the
 * sums well conditioned. */
typedef struct Line {
        double t0, mt, mv, slope;
} Line;

static Line line_fit(const DetectPoint *p, size_t n) {
        Line l = { .t0 = p[0].t };
        double stt = 0, stv = 0;

        for (size_t i = 0; i < n; i++) {
                l.mt += p[i].t - l.t0;
                l.mv += p[i].v;
        }
        l.mt /= (double) n;
        l.mv /= (double) n;
        for (size_t i = 0; i < n; i++) {
                double dt = p[i].t - l.t0 - l.mt;
                stt += dt * dt;
                stv += dt * (p[i].v - l.mv);
        }
        l.slope = stt > 0 ? stv / stt : 0;
        return l;
}

static double residual(const DetectPoint *p, size_t i, const Line *l) {
        return p[i].v - l->mv - l->slope * (p[i].t - l->t0 - l->mt);
}

/* The autocorrelation of the residuals at `lag` points, divided by their full sum of squares
 * c0 (the usual biased estimator: it shrinks the long lags, whose few products are the
 * noisiest). */
static double residual_acf(const DetectPoint *p, size_t n, const Line *l, double c0, size_t lag) {
        double c = 0;

        for (size_t i = 0; i + lag < n; i++)
                c += residual(p, i, l) * residual(p, i + lag, l);
        return c / c0;
}

static double residual_c0(const DetectPoint *p, size_t n, const Line *l) {
        double c0 = 0;

        for (size_t i = 0; i < n; i++)
                c0 += residual(p, i, l) * residual(p, i, l);
        return c0;
}

/* The estimate behind both entry points: stop at the first lag below the significance bound,
 * or (past_dips) at the first non-positive one, which counts as 0 when a non-significant lag
 * came before it (see detect-acf.h). */
static void acf_estimate(const DetectPoint *p, size_t n, FloorAcf *ret, bool past_dips) {
        bool passed_bound = false;
        double c0, bound;
        Line line;

        *ret = (FloorAcf) { 0 };
        if (n < ACF_MIN_POINTS)
                return;
        line = line_fit(p, n);
        c0 = residual_c0(p, n, &line);
        if (!(c0 > 0))
                return;

        ret->n = n;
        bound = ACF_Z / sqrt((double) n);
        for (double l = 1; l <= (double) n / 4 && ret->n_lags < ACF_MAX_LAGS; l = ceil(l * M_SQRT2)) {
                double rho = residual_acf(p, n, &line, c0, (size_t) l);
                bool last = past_dips ? rho <= 0 : rho < bound;

                if (last && passed_bound && rho < 0)
                        rho = 0;
                passed_bound = passed_bound || rho < bound;
                ret->lag[ret->n_lags] = l;
                ret->rho[ret->n_lags] = rho;
                ret->n_lags++;
                if (last)
                        break;
        }
}

void floor_acf_estimate(const DetectPoint *p, size_t n, FloorAcf *ret) {
        acf_estimate(p, n, ret, false);
}

void floor_acf_estimate_past_dips(const DetectPoint *p, size_t n, FloorAcf *ret) {
        acf_estimate(p, n, ret, true);
}

size_t floor_acf_period(const DetectPoint *p, size_t n) {
        double c0, peak = -1, again = -1;
        size_t period = 0;
        bool dipped = false;
        Line line;

        if (n < ACF_MIN_POINTS)
                return 0;
        line = line_fit(p, n);
        c0 = residual_c0(p, n, &line);
        if (!(c0 > 0))
                return 0;
        /* The highest peak after the first dip, up to a quarter of the points. */
        for (size_t lag = 1; lag <= n / 4; lag++) {
                double rho = residual_acf(p, n, &line, c0, lag);

                if (!dipped) {
                        dipped = rho < PERIOD_DIP;
                        continue;
                }
                if (rho > peak) {
                        peak = rho;
                        period = lag;
                }
        }
        if (period < PERIOD_MIN_POINTS || peak < PERIOD_PEAK)
                return 0;
        /* And again one period later (the period need not be a whole number of points). */
        for (size_t lag = 2 * period - 1; lag <= 2 * period + 1 && lag < n; lag++) {
                double rho = residual_acf(p, n, &line, c0, lag);

                if (rho > again)
                        again = rho;
        }
        return again >= PERIOD_AGAIN ? period : 0;
}

double floor_acf_periodic_factor(const DetectPoint *p, size_t n, size_t period) {
        double nn = (double) n, sum = 0, c0, f;
        Line line;

        if (period == 0 || period > n / 4 || n < ACF_MIN_POINTS)
                return 1;
        line = line_fit(p, n);
        c0 = residual_c0(p, n, &line);
        if (!(c0 > 0))
                return 1;
        for (size_t k = 1; k <= period; k++) {
                double kk = (double) k;

                sum += (nn - kk) * (nn - kk - 1) * (nn - kk - 2) * residual_acf(p, n, &line, c0, k);
        }
        f = 1 + 2 / (nn * (nn - 1) * (nn - 2)) * sum;
        return f > 1 ? f : 1;
}

double floor_acf_at(const FloorAcf *acf, double lag) {
        double l0 = 0, r0 = 1;

        if (lag <= 0)
                return 1;
        for (unsigned i = 0; i < acf->n_lags; i++) {
                if (lag <= acf->lag[i])
                        return r0 + (acf->rho[i] - r0) * (lag - l0) / (acf->lag[i] - l0);
                l0 = acf->lag[i];
                r0 = acf->rho[i];
        }
        return 0;
}

double floor_acf_variance_factor(const FloorAcf *acf, size_t n) {
        double nn = (double) n, sum = 0, f;

        if (n < 4 || acf->n == 0)
                return 1;
        for (size_t k = 1; k + 2 < n; k++) {
                double kk = (double) k, rho = floor_acf_at(acf, kk);

                if (kk > acf->lag[acf->n_lags - 1])
                        break; /* 0 from here on */
                sum += (nn - kk) * (nn - kk - 1) * (nn - kk - 2) * rho;
        }
        f = 1 + 2 / (nn * (nn - 1) * (nn - 2)) * sum;
        return f > 1 ? f : 1;
}
