/* SPDX-License-Identifier: MIT */
/*
 * Is there a monotonic trend in one set of floor points, and how steep is it? Mann-Kendall's
 * test (the exact null distribution of S for short series, Hamed & Rao's correction for
 * autocorrelation) and Theil-Sen's slope with Sen's 95 % interval: docs/detection.md, steps 3
 * and 4. Internal to libhwdetect; detect.c runs it on every horizon and on each of its halves.
 * Pure computation: no allocation; the exact distribution's table is built once, thread-safely.
 */
#pragma once

#include <stddef.h>

#include "detect.h"

/* Two-sided 95 % normal quantile, for Sen's confidence interval of the slope. */
#define TREND_Z_975 1.959963984540054

typedef struct Trend {
        size_t n;
        double s;      /* Mann-Kendall S */
        double var_s;  /* its variance under H0, corrected for ties and autocorrelation */
        double n_ratio; /* Hamed-Rao n/n*: how much autocorrelation inflated var_s (>= 1) */
        double tie_pairs; /* pairs tied in value (for tau-b) */
        double slope;  /* Theil-Sen: median of pairwise slopes */
        double low, high; /* Sen's 95 % interval */
} Trend;

/* Mann-Kendall's S and its variance, Theil-Sen's slope and Sen's interval of p[0..n) into *ret.
 * p: n points, strictly increasing in time, 2 <= n <= DETECT_MAX_POINTS. slopes: room for
 * n(n-1)/2, vals: room for n, idx: room for n. min_ratio: the variance inflation known from
 * elsewhere (the autocorrelation of the history before the horizon), applied when larger than
 * the one estimated from these points (Hamed & Rao, see detect-trend.c). */
void trend_compute(const DetectPoint *p, size_t n, double *slopes, double *vals, unsigned char *idx,
                   double min_ratio, Trend *ret);

/* One-sided (increasing) Mann-Kendall p-value. No variance (every value tied) is no evidence:
 * p = 1. Short series without ties and with S > 0 take the exact tail; autocorrelation, which
 * inflates Var S beyond its value under independence (var0), shrinks S by sqrt(Var S / var0)
 * there, as it shrinks z in the normal approximation (with continuity correction) used
 * everywhere else. */
double trend_p_increasing(const Trend *t);

/* Kendall's tau-b (equal to tau-a when nothing is tied; times are never tied). */
double trend_tau(const Trend *t);
