/* SPDX-License-Identifier: MIT */
/*
 * "A rise that levels off", with or without a straight line on top, fitted by least squares to
 * floor points: a warm-up (an exponential approach) or a bounded cache (a rise that ends), and
 * a leak growing on top of it (docs/detection.md, step 6; step 3 takes such a rise out of the
 * history before a horizon). Internal to libhwdetect: detect.c decides with it whether a
 * horizon that slows down is a rise alone or a rise plus a line. Pure computation.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "detect-acf.h"
#include "detect.h"

/* Points as every fit of them takes them: x, the time since the first point as a share of the
 * span, and dv, the value less the first one's. rise_fit_best() tries about 70 fits of the
 * same points; computed once for all of them instead of in each fit (two divisions per point
 * and fit), and the same doubles, so the fits are exactly what they were. */
#define RISE_FIT_MAX_POINTS (4 * DETECT_MAX_POINTS)

typedef struct FitPoints {
        size_t n;
        double x[RISE_FIT_MAX_POINTS];
        double dv[RISE_FIT_MAX_POINTS];
} FitPoints;

/* p: n <= RISE_FIT_MAX_POINTS points spanning span > 0 seconds. */
const FitPoints *rise_fit_points(const DetectPoint *p, size_t n, double span, FitPoints *ret);

/* "A rise that levels off", in one of two shapes with a time scale s (a share of the span
 * while fitting, seconds once stored in a Horizon):
 *  - RISE_EXP: 1 - exp(-x / s), an exponential approach (a warm-up, keys drawn at random
 *    into a cache: fewer and fewer are new);
 *  - RISE_ENDS: 1 - (1 - min(x / s, 1))^2, growth that slows down steadily and *ends* at s
 *    (a bounded cache reaching its size, a pool reaching its maximum). An exponential fits
 *    its end badly: the kink leaves residuals that look like wander for hours and a misfit
 *    that looks like a line, so a leak after a filled cache waited hours (series 297 of
 *    the benchmark: 4.2 h for 4.3 %/h starting an hour after its cache was full). */
typedef enum RiseShape {
        RISE_EXP,
        RISE_ENDS,
        _RISE_SHAPE_MAX,
} RiseShape;

typedef struct Rise {
        RiseShape shape;
        double s;
} Rise;

/* The rise at x (same unit as r.s), 0 at x = 0, rising to 1. */
double rise_at(Rise r, double x);

/* What is left of the rise at x, as a share of its height. */
double rise_left(Rise r, double x);

/* Least squares of the points on 1, rise_at(rise, x) and, with_line, x (x: time since the
 * first point over span); coef gets a, b, c. Returns the residual sum of squares, INFINITY
 * when the system is singular. Values are taken relative to the first point's. */
double rise_fit(const FitPoints *f, Rise rise, bool with_line, double coef[3]);

/* The best fit of "a rise that levels off" (b > 0; any b without the line), plus a line
 * with_line, over the rises of rise_grid() that have levelled off within tau_max (INFINITY:
 * any rise): its residual sum of squares (INFINITY: none), coefficients into best and rise
 * into *ret_rise.
 * Rises are tried on a grid of time scales and refined (see detect-rise.c). */
double rise_fit_best(const FitPoints *f, bool with_line, double tau_max, double best[3], Rise *ret_rise);

/* The residuals of the points around a fit (rise_fit()'s coefficients and rise) into out, which
 * may be p itself. */
void rise_residuals(const DetectPoint *p, size_t n, double span, const double coef[3], Rise rise,
                    DetectPoint *out);

/* F of the terms a fit adds (residual sums of squares rss_null without them, rss with them,
 * res its residuals), divided by the autocorrelation factor of those residuals (a wander of
 * the floor makes any extra term look needed); that autocorrelation into *ret_acf. */
double rise_fit_f(const DetectPoint *res, size_t n, double rss_null, double rss, FloorAcf *ret_acf);
