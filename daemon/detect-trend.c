/* SPDX-License-Identifier: MIT */
/*
 * Mann-Kendall and Theil-Sen on one set of points (see detect-trend.h).
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>

#include "detect-trend.h"
#include "order-stats.h"

_Static_assert(DETECT_MAX_POINTS <= 256, "ranks are indexed with unsigned char");

static void sort_small(double *a, size_t n) {
        /* Insertion sort: n <= DETECT_MAX_POINTS, deterministic, no allocation. */
        for (size_t i = 1; i < n; i++) {
                double x = a[i];
                size_t j = i;
                while (j > 0 && a[j - 1] > x) {
                        a[j] = a[j - 1];
                        j--;
                }
                a[j] = x;
        }
}

/* Hamed & Rao (1998): the variance of S assumes independent points; when the residuals
 * around the trend are autocorrelated (a floor that wanders, a curve that a line does not fit:
 * warm-ups, caches filling, steps), S varies much more than that and a naive test "finds"
 * trends in noise. The factor n/n* = 1 + 2/(n(n-1)(n-2)) * sum (n-k)(n-k-1)(n-k-2) rho_k over
 * the lags k whose rank autocorrelation rho_k of the detrended series is significant (outside
 * +-1.96/sqrt(n)). It is kept >= 1: autocorrelation may only weaken the evidence. */
static double hamed_rao_factor(const DetectPoint *p, size_t n, double slope, double *res, unsigned char *idx) {
        double mean = ((double) n + 1) / 2, denom = 0, sum = 0, bound, nn = (double) n, f;

        if (n < 4)
                return 1;
        for (size_t i = 0; i < n; i++) {
                res[i] = p[i].v - slope * (p[i].t - p[0].t);
                idx[i] = (unsigned char) i;
        }
        /* Indices in order of residual (insertion sort, n <= DETECT_MAX_POINTS). */
        for (size_t i = 1; i < n; i++) {
                unsigned char x = idx[i];
                size_t j = i;
                while (j > 0 && res[idx[j - 1]] > res[x]) {
                        idx[j] = idx[j - 1];
                        j--;
                }
                idx[j] = x;
        }
        /* Ranks, ties averaged, centred; written over the residuals in a second pass. */
        {
                double ranks[DETECT_MAX_POINTS];
                for (size_t i = 0; i < n;) {
                        size_t j = i + 1;
                        while (j < n && res[idx[j]] == res[idx[i]])
                                j++;
                        for (size_t k = i; k < j; k++)
                                ranks[idx[k]] = ((double) i + (double) j + 1) / 2 - mean;
                        i = j;
                }
                for (size_t i = 0; i < n; i++) {
                        res[i] = ranks[i];
                        denom += ranks[i] * ranks[i];
                }
        }
        if (!(denom > 0))
                return 1;
        bound = TREND_Z_975 / sqrt(nn);
        for (size_t k = 1; k + 2 < n; k++) {
                double acf = 0, w;
                for (size_t i = 0; i + k < n; i++)
                        acf += res[i] * res[i + k];
                acf /= denom;
                if (acf > -bound && acf < bound)
                        continue;
                w = (nn - (double) k) * (nn - (double) k - 1) * (nn - (double) k - 2);
                sum += w * acf;
        }
        f = 1 + 2 / (nn * (nn - 1) * (nn - 2)) * sum;
        return f > 1 ? f : 1;
}

void trend_compute(const DetectPoint *p, size_t n, double *slopes, double *vals, unsigned char *idx,
                   double min_ratio, Trend *ret) {
        double nn = (double) n, s = 0, ties = 0, tie_pairs = 0, c, median, r_low, r_high;
        size_t m = 0, k, lo_i, hi_i;

        for (size_t i = 0; i + 1 < n; i++)
                for (size_t j = i + 1; j < n; j++) {
                        double dv = p[j].v - p[i].v;
                        s += (dv > 0) - (dv < 0);
                        slopes[m++] = dv / (p[j].t - p[i].t);
                }

        /* Tie correction: sum over groups of equal values of t(t-1)(2t+5). */
        for (size_t i = 0; i < n; i++)
                vals[i] = p[i].v;
        sort_small(vals, n);
        for (size_t i = 0; i < n;) {
                size_t j = i + 1;
                while (j < n && vals[j] == vals[i])
                        j++;
                if (j - i > 1) {
                        double t = (double) (j - i);
                        ties += t * (t - 1) * (2 * t + 5);
                        tie_pairs += t * (t - 1) / 2;
                }
                i = j;
        }

        ret->n = n;
        ret->s = s;
        ret->var_s = (nn * (nn - 1) * (2 * nn + 5) - ties) / 18;
        ret->tie_pairs = tie_pairs;
        ret->n_ratio = 1;

        /* Median first: afterwards slopes[0..k) <= slopes[k] <= slopes[k+1..m), and the
         * interval's ranks (lo_i <= k <= hi_i, see below) are searched for on their side only,
         * leaving slopes[k] in place. */
        k = (m - 1) / 2;
        median = order_select(slopes, m, k);
        ret->slope = m % 2 == 0 ? (median + order_select(slopes + k + 1, m - k - 1, 0)) / 2 : median;

        ret->n_ratio = hamed_rao_factor(p, n, ret->slope, vals, idx);
        if (ret->n_ratio < min_ratio)
                ret->n_ratio = min_ratio;
        ret->var_s *= ret->n_ratio;

        /* Sen (1968) / Gilbert (1987): with C = z * sqrt(Var S), the interval is the M1-th and
         * (M2+1)-th smallest pairwise slope, M1 = (N-C)/2, M2 = (N+C)/2 — rounded to the
         * nearest rank (half to even, as SciPy's theilslopes does) and clamped. Since C >= 0,
         * lo_i <= k <= hi_i. */
        c = TREND_Z_975 * sqrt(ret->var_s > 0 ? ret->var_s : 0);
        r_low = nearbyint(((double) m - c) / 2) - 1; /* 0-based */
        r_high = nearbyint(((double) m + c) / 2);    /* 0-based */
        lo_i = r_low < 0 ? 0 : (size_t) r_low;
        hi_i = r_high > (double) (m - 1) ? m - 1 : (size_t) r_high;
        if (lo_i > k)
                lo_i = k;
        if (hi_i < k)
                hi_i = k;
        ret->low = lo_i == k ? median : order_select(slopes, k, lo_i);
        ret->high = hi_i == k ? median : order_select(slopes + k + 1, m - k - 1, hi_i - k - 1);
}

/* ---- the exact null distribution of S for short series ------------------------------------
 *
 * The normal approximation of S is conservative in the far tail for short series: ten points
 * in perfect order have p = 1/10! = 2.8e-7, the approximation says 4.2e-5. The evidence a young
 * process or a grouped floor (10-20 points) needs is in that tail, so for n <= MK_EXACT_MAX
 * without ties the tail is taken from the exact distribution (Kendall 1938): with no ties,
 * S = N - 2 * (number of inversions), N = n(n-1)/2, and under H0 every permutation is equally
 * likely, so P(inversions = k) is the Mahonian number M(n, k) / n!. */

#define MK_EXACT_MAX 20
#define MK_EXACT_PAIRS (MK_EXACT_MAX * (MK_EXACT_MAX - 1) / 2)

/* mk_exact_cdf[n][k] = P(inversions <= k) for a random permutation of n. Summed from the small
 * side, so the tiny tail probabilities keep their relative precision. */
static double mk_exact_cdf[MK_EXACT_MAX + 1][MK_EXACT_PAIRS + 1];
static pthread_once_t mk_exact_once = PTHREAD_ONCE_INIT;

static void mk_exact_build(void) {
        static double pmf[2][MK_EXACT_PAIRS + 1];
        double *prev = pmf[0], *cur = pmf[1];

        prev[0] = 1; /* n = 1: one permutation, no inversion */
        for (size_t n = 2; n <= MK_EXACT_MAX; n++) {
                size_t pairs = n * (n - 1) / 2, prev_pairs = (n - 1) * (n - 2) / 2;
                /* P_n(k) = (1/n) * sum_{i < n} P_{n-1}(k - i): the n-th element adds 0..n-1
                 * inversions, each equally likely. */
                for (size_t k = 0; k <= pairs; k++) {
                        double sum = 0;
                        for (size_t i = 0; i < n && i <= k; i++)
                                if (k - i <= prev_pairs)
                                        sum += prev[k - i];
                        cur[k] = sum / (double) n;
                }
                for (size_t k = 0; k <= pairs; k++)
                        mk_exact_cdf[n][k] = (k > 0 ? mk_exact_cdf[n][k - 1] : 0) + cur[k];
                double *t = prev;
                prev = cur;
                cur = t;
        }
}

/* P(S >= s) under H0 for n points without ties, s > 0; s need not be an attainable value
 * (the autocorrelation correction scales it): between two attainable values, which are 2
 * apart, the tail is interpolated linearly. */
static double mk_exact_tail(size_t n, double s) {
        double pairs = (double) n * ((double) n - 1) / 2, inv, lo, frac;
        size_t k;

        pthread_once(&mk_exact_once, mk_exact_build);
        if (s > pairs)
                s = pairs;
        inv = (pairs - s) / 2; /* P(S >= s) = P(inversions <= inv) */
        lo = floor(inv);
        k = (size_t) lo;
        frac = inv - lo;
        if (frac == 0 || k >= (size_t) pairs)
                return mk_exact_cdf[n][k];
        return mk_exact_cdf[n][k] + frac * (mk_exact_cdf[n][k + 1] - mk_exact_cdf[n][k]);
}

double trend_p_increasing(const Trend *t) {
        double z;

        if (!(t->var_s > 0))
                return 1;
        if (t->n >= 3 && t->n <= MK_EXACT_MAX && t->tie_pairs == 0 && t->s > 0) {
                double nn = (double) t->n, var0 = nn * (nn - 1) * (2 * nn + 5) / 18;
                double inflation = t->var_s > var0 ? t->var_s / var0 : 1;
                return mk_exact_tail(t->n, t->s / sqrt(inflation));
        }
        if (t->s > 0)
                z = (t->s - 1) / sqrt(t->var_s);
        else if (t->s < 0)
                z = (t->s + 1) / sqrt(t->var_s);
        else
                z = 0;
        return 0.5 * erfc(z / M_SQRT2);
}

double trend_tau(const Trend *t) {
        double n0 = (double) t->n * ((double) t->n - 1) / 2;
        double d = n0 * (n0 - t->tie_pairs);

        return d > 0 ? t->s / sqrt(d) : 0;
}
