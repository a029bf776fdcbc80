/* SPDX-License-Identifier: MIT */
/*
 * The autocorrelation of a signal's floor, estimated over its history (internal to
 * libhwdetect; detect.c uses it, test-detect checks it against hand-computed values).
 *
 * Why: Mann-Kendall assumes independent points. The Hamed-Rao correction makes up for
 * autocorrelation, but when it estimates the autocorrelation from the horizon under test, the
 * slope it removes first swallows most of a slow wander (churn with a correlation time close
 * to the horizon): the residuals look independent and the wander passes for a trend. Over the
 * floor's history before the horizon (several times as long) the same wander shows its real
 * correlation time, and the variance of S is inflated by that. The history before the horizon,
 * not the horizon itself: a leak that began inside the horizon must not count as wander.
 */
#pragma once

#include <stddef.h>

#include "detect.h"

/* Lags are estimated on a grid growing by ~sqrt(2) (1, 2, 3, 5, 8, 12, 17, ...) and
 * interpolated in between: cost O(points * lags) instead of O(points^2). */
#define ACF_MAX_LAGS 40
/* Fewer points than this estimate nothing (the in-horizon correction alone applies). */
#define ACF_MIN_POINTS 20

typedef struct FloorAcf {
        size_t n;           /* points estimated from; 0: no estimate */
        unsigned n_lags;
        double lag[ACF_MAX_LAGS]; /* in points, increasing */
        double rho[ACF_MAX_LAGS]; /* autocorrelation at lag[i]; 0 beyond the last lag */
} FloorAcf;

/* Estimate the autocorrelation of p[0..n) (regularly spaced in time) around their
 * least-squares line, at grid lags up to a quarter of the points, stopping at the first lag
 * whose autocorrelation is no longer significantly positive (below 1.96 / sqrt(n)): beyond
 * it, estimates are noise. */
void floor_acf_estimate(const DetectPoint *p, size_t n, FloorAcf *ret);

/* The same, going on past lags that are positive but not significant, up to the first
 * non-positive one, which counts as 0 (as itself where no lag before it was non-significant:
 * there both estimates are the same). For a horizon's own points only (a self-confirmation,
 * detect.c horizon_compute()): a sawtooth aliased by the windows can make one lag
 * non-significant between correlated ones and hide a wander as long as the horizon. Every
 * lag floor_acf_estimate() counts is counted here too, and where this one goes further, with
 * no negative value: the variance factor is never smaller than floor_acf_estimate()'s, only
 * more cautious. */
void floor_acf_estimate_past_dips(const DetectPoint *p, size_t n, FloorAcf *ret);

/* Is the floor p[0..n) periodic around its least-squares line (the post-GC floor of a GC
 * sawtooth slower than any grouping of windows, seen over several of its periods)? Its
 * residuals' autocorrelation first dips below PERIOD_DIP, then peaks at PERIOD_PEAK or more at
 * a lag of PERIOD_MIN_POINTS to n / 4 points (at least four periods in the points), and is at
 * PERIOD_AGAIN or more again at twice that lag (+-1 point). Returns the period in points, 0
 * if not periodic. A wander (churn) decays and does not come back: the dip of a wander whose
 * correlation time is a sixth of the points is followed by nothing above 0.1 (series 12 of
 * the benchmark), where sawtooths of 20-50 min peak at 0.68-0.87 and again at 0.42-0.77.
 * O(n^2 / 4). */
#define PERIOD_DIP (-0.2)
#define PERIOD_PEAK 0.5
#define PERIOD_AGAIN 0.25
#define PERIOD_MIN_POINTS 4
size_t floor_acf_period(const DetectPoint *p, size_t n);

/* Hamed & Rao's n/n* (kept >= 1) for a floor p[0..n) that floor_acf_period() found periodic
 * with `period` points (at most n / 4), from its residuals' autocorrelation at every lag of its
 * first period, negative lags too. A periodic component's lags sum to about nothing over a
 * period (positive near 0 and near the period, negative half a period on), so what is left is
 * the wander riding on it; counted only up to its first non-positive lag, as
 * floor_acf_estimate_past_dips() does, a sawtooth of ten points (lag 1 at 0.45) weighs like a
 * wander and doubles Var S. One period, not all that fit: a wander's residual autocorrelation
 * around the line turns negative at longer lags (the line swallows part of it), and summed
 * over three periods that cancelled the wander of benchmark series 1196 (churn under an 8 %
 * sawtooth of 8 windows: +0.79 over the first period, -0.84 over the second), which alarmed.
 * O(n * period). */
double floor_acf_periodic_factor(const DetectPoint *p, size_t n, size_t period);

/* The autocorrelation at `lag` points: 1 at 0, linear between grid lags, 0 past the last one
 * (and with no estimate). */
double floor_acf_at(const FloorAcf *acf, double lag);

/* Hamed & Rao's n/n* for n points with the estimated autocorrelation:
 * 1 + 2 / (n (n-1) (n-2)) * sum_{k=1}^{n-3} (n-k)(n-k-1)(n-k-2) rho(k), kept >= 1. */
double floor_acf_variance_factor(const FloorAcf *acf, size_t n);
