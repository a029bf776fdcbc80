/* SPDX-License-Identifier: MIT */
/*
 * The floor made fit for the trend tests: groups, spikes and steps (see detect-floor.h).
 */
#include <math.h>
#include <stddef.h>

#include "detect-acf.h"
#include "detect-floor.h"
#include "order-stats.h"

/* Sawtooth aliasing (floor_group()): at least SAW_MIN_STEPS consecutive differences per group
 * size; a group size is taken when it shrinks the floor's steps below SAW_DROP of their size,
 * and a larger one while it shrinks them below SAW_DROP of the taken size's again. */
#define SAW_MIN_STEPS 10
#define SAW_DROP 0.5

size_t floor_coarsen_by(const Points *p, size_t lo, size_t end, size_t g, DetectPoint *out) {
        size_t groups = (end - lo) / g, start = end - groups * g;

        for (size_t k = 0; k < groups; k++) {
                const DetectPoint *first = points_at(p, start + k * g);
                double v = first->v;
                for (size_t i = 1; i < g; i++) {
                        double w = points_at(p, start + k * g + i)->v;
                        if (w < v)
                                v = w;
                }
                out[k] = (DetectPoint) { .t = first->t, .v = v };
        }
        return groups;
}

size_t floor_coarsen(const Points *p, size_t lo, size_t end, size_t min_group, DetectPoint *out,
                     size_t *ret_group) {
        size_t m = end - lo, g = (m + DETECT_MAX_POINTS - 1) / DETECT_MAX_POINTS;

        *ret_group = g > min_group ? g : min_group;
        return floor_coarsen_by(p, lo, end, *ret_group, out);
}

/* Median absolute difference between the minima of two groups of g points that follow each
 * other, over points [lo, n) and every alignment of the groups: the minimum of points
 * [k, k + g) against that of [k + g, k + 2g), for every k. NAN when fewer than
 * SAW_MIN_STEPS + 1 whole groups fit. Every alignment, not only the one the horizons use
 * (groups aligned to the newest point, floor_coarsen_by()): that one shifts by a point with every
 * new window, and over a young process's 80-120 points its median jumped from one
 * evaluation to the next, so that the group size taken flipped between 1, 4 and 8 minute
 * after minute (benchmark series 668: 132 changes in 1409 evaluations, 993: 470 between 2
 * and 3), and every flip changed every horizon's points and verdict (a self-confirmed leak
 * at g = 1, none at g = 4, "not enough data" at g = 8). Over every alignment the median
 * moves by a point's worth of differences per window (993: 25 changes, 668: none).
 * minima: room for n - lo; diffs: room for n - lo. */
static double group_roughness(const Points *p, size_t lo, size_t g, double *minima, double *diffs) {
        size_t n = points_n(p), m = 0, nmin;

        if ((n - lo) / g < SAW_MIN_STEPS + 1)
                return NAN;
        nmin = n - lo - g + 1;
        for (size_t k = 0; k < nmin; k++) {
                double v = points_at(p, lo + k)->v;
                for (size_t i = 1; i < g; i++)
                        if (points_at(p, lo + k + i)->v < v)
                                v = points_at(p, lo + k + i)->v;
                minima[k] = v;
        }
        for (size_t k = g; k < nmin; k++)
                diffs[m++] = fabs(minima[k] - minima[k - g]);
        return order_select(diffs, m, m / 2);
}

/* How many floor points make one point of every horizon: 1, unless the floor aliases a
 * sawtooth longer than the window. Then window minima sample the ramp at whatever phase each
 * window starts in, and the floor jumps by a good part of the sawtooth's amplitude from one
 * point to the next, in patterns that beat with the window and look like trends. Groups that
 * span a whole period all hold its bottom, and the jumps collapse to the noise: a group size
 * is taken when its consecutive minima differ by less than SAW_DROP of those of every smaller
 * size tried (the floor's own included), and the largest size taken so is used. A collapse,
 * not a decline: without a sawtooth, or under one buried in noise, the minima of more samples
 * shrink a little with every size, and measured against the floor's own steps alone they
 * reached half at 16 windows (benchmark series 705, 1.4 % noise under a 4 % sawtooth of 4.3
 * windows, over its first 10 h: steps of 1.20, 1.25, 0.91, 0.74, 0.71, 0.69, 0.63 and 0.47 % of
 * the heap for 1, 2, 3, 4, 6, 8, 12 and 16 windows), where every horizon shorter than 160 min
 * had too few points to be judged and a 5.9 %/h leak waited 2.7 h. Against the smoothest
 * smaller size 16 is no collapse (0.47 against 0.63), and 1 stays; a sawtooth of 14 windows,
 * whose floor steps along the ramp (1.9, 3.9, 5.9, 7.7, 9.2 and 5.4 % for 1, 2, 3, 4, 6 and 8
 * windows), still collapses at 12 (0.54 %). buf: room for 2 SAW_MAX_POINTS. */
size_t floor_group(const Points *p, double *buf) {
        static const size_t groups[] = { 2, 3, 4, 6, 8, 12, 16 };
        enum { N_GROUPS = sizeof groups / sizeof groups[0] };
        size_t n = points_n(p), lo = n > SAW_MAX_POINTS ? n - SAW_MAX_POINTS : 0, taken = 1;
        double d_best = group_roughness(p, lo, 1, buf, buf + SAW_MAX_POINTS);

        if (!(d_best > 0))
                return 1;
        for (size_t i = 0; i < N_GROUPS; i++) {
                double d = group_roughness(p, lo, groups[i], buf, buf + SAW_MAX_POINTS);
                if (isnan(d))
                        break;
                /* The first group that halves the floor's steps may still alias: a period of
                 * 3.1 windows halves them in pairs of windows (a pair holds the trough two
                 * times in three) and collapses them to the noise only in threes, 5-7 times
                 * smaller again. So groups grow for as long as the next size halves the steps
                 * again; on noise it shrinks them by far less. */
                if (d < SAW_DROP * d_best)
                        taken = groups[i];
                else if (taken > 1)
                        break;
                if (d < d_best)
                        d_best = d;
        }
        return taken;
}


/* Take the sudden level shifts out of the reference (a one-time load, a quantized leak's
 * increment; batch spikes are dropped before, so their edges do not count): a jump between
 * consecutive points further from the median jump than DESTEP_MADS robust standard
 * deviations of the jumps is a step, and so are the jump before a run of steps and the one
 * after it when they go the same way by more than DESTEP_EDGE_MADS of them: a load that
 * takes minutes ramps over a few points, and its partial first and last jumps, each too
 * small to be a step on its own, stayed and made one. Every step's jump is replaced by the
 * mean of the other jumps (the floor's own trend), and everything after it moves with it.
 * The mean, not the median jump: a floor whose jumps are skewed (small rises and fewer,
 * larger drops: a GC sawtooth that the sampling beats against) has a median jump well above
 * its trend, and a ramp of six steps filled with it was a step again. Benchmark series 535
 * (+55 % over 8 min, an 11 % / 88 s sawtooth sampled every 10 s): 2 % of a step was left,
 * the reference's variance factor was 16 instead of 1, and a 9.8 %/h leak 2.25 h later was
 * found after 3.0 h instead of 1.1 h. A wander moves by Gaussian jumps, which stay; one step
 * would otherwise leave residuals around the reference's line that look like hours of
 * autocorrelated wander, and weaken every horizon after it for 4 horizons' length. buf: room
 * for n doubles; step: for n flags. */
#define DESTEP_MADS 6.0
#define DESTEP_EDGE_MADS 2.0

void floor_destep(DetectPoint *p, size_t n, double *buf, bool *step) {
        double med, mad, trend = 0, shift = 0;
        size_t others = 0;

        if (n < ACF_MIN_POINTS)
                return;
        for (size_t i = 1; i < n; i++)
                buf[i - 1] = p[i].v - p[i - 1].v;
        med = order_select(buf, n - 1, (n - 1) / 2);
        for (size_t i = 1; i < n; i++)
                buf[i - 1] = fabs(p[i].v - p[i - 1].v - med);
        mad = 1.4826 * order_select(buf, n - 1, (n - 1) / 2);
        if (!(mad > 0))
                return;
        /* buf[j], step[j]: the jump into point j + 1 (order_select() reordered buf) */
        for (size_t j = 0; j + 1 < n; j++) {
                buf[j] = p[j + 1].v - p[j].v;
                step[j] = fabs(buf[j] - med) > DESTEP_MADS * mad;
        }
        /* A run of steps takes the jump before it and the one after it when they go its way:
         * one each, the partial ends of a ramp. Not more: a warm-up's first jumps are steps
         * too, and the ones after them shrink slowly; eaten up to 2 robust deviations, what
         * was left of the warm-up no longer fitted a rise (benchmark series 1461: 3.7 h later). */
        for (size_t j = 0; j + 1 < n; j++) {
                double way = buf[j] > med ? 1 : -1;
                size_t last = j;

                /* from a run's first jump; a run right after another's edge continues that
                 * ramp and takes no edge of its own */
                if (!step[j] || (j > 0 && step[j - 1]))
                        continue;
                while (last + 2 < n && step[last + 1])
                        last++;
                if (j > 0 && way * (buf[j - 1] - med) > DESTEP_EDGE_MADS * mad)
                        step[j - 1] = true;
                if (last + 2 < n && way * (buf[last + 1] - med) > DESTEP_EDGE_MADS * mad) {
                        step[last + 1] = true;
                        last++;
                }
                j = last; /* past the run and the edge it took */
        }
        for (size_t j = 0; j + 1 < n; j++)
                if (!step[j]) {
                        trend += buf[j];
                        others++;
                }
        if (others == 0)
                return;
        trend /= (double) others;
        for (size_t j = 0; j + 1 < n; j++) {
                if (step[j])
                        shift -= buf[j] - trend;
                p[j + 1].v += shift;
        }
}

/* Batch spikes that outlast the window survive window minima: the floor jumps up for minutes
 * and comes back. A handful of them in a horizon breaks its halves, its p-value and its shape
 * checks, and hides a leak under them. An interior point is a spike when
 *  - it stands above the lower envelope on *both* sides (the minima of the k points before it
 *    and of the k after it, k = SPIKE_HORIZONS x min_horizon) by more than the limit, and
 *  - the floor returns to where it was: the two envelopes differ by at most SPIKE_RETURN of the
 *    height. A sawtooth's ramp top stands above both sides too, but its left side is the ramp
 *    and its right side the bottom after the drop; once its period is longer than 2.5 k they
 *    differ by more than half the height, and
 *  - it stands on a floor that holds still on at least one side: the median of the k points
 *    before it (or after it) lies within SPIKE_FLAT of the height above their minimum. A batch
 *    leaves the floor and comes back to it, so on the side away from its ramp the floor is at
 *    its minimum most of the time; the crest of a smooth wave (a slow wander, a daily cycle)
 *    stands above both sides as well, but on its own slopes, whose median is far above their
 *    far end. Without this a floor whose point-to-point noise is small lost its crests (a 2 %
 *    wave of 4 h at 0.1 % noise: 2-4 points), and then its newest k points as a "spike in
 *    progress" too (below): on a rising floor, a leak's newest points. A noise peak on a
 *    crest's flat top still counts.
 * The limit is the larger of SPIKE_SIGMAS times the noise (from the median jump between
 * consecutive points) and SPIKE_SPREAD times the median height of all interior points above
 * their envelope: a batch floor sits on its envelope between batches (median height ~ noise),
 * while a wandering floor (churn) stands above its local minima most of the time -- its
 * excursions are the wander itself, not spikes, and its slow ones are not told apart from
 * consecutive jumps.
 * Growth never is a spike: a rising floor's points stand above what came before, not above what
 * comes after; a step up stands above neither once it holds.
 * Within k of either end one side is missing. Only when the interior has spikes (whose median
 * stands at least SPIKE_END_CLEAR times the noise limit above their envelope), an end point
 * is judged on the side it has (a spike in progress at the end is taken out as the ones before
 * it were, so the horizon does not keep the newest spike while dropping the older ones: that
 * would make growth); never when the interior has none or only a crest's noise peaks (a
 * leak's newest points stand above what came before); and only when it left a floor that held still: the k points up to the
 * side's latest minimum (at the head: from its earliest) have their median within
 * SPIKE_FLAT_END of the end point's height above their own minimum. The side's minimum is where
 * a batch in progress began to fill, and before it lies the floor between batches; a rising
 * floor was rising before its side's minimum too (a leak, a wave's slope, a slow sawtooth's
 * previous ramp). The side itself does not tell them apart: the benchmark's batches fill over
 * up to 10 windows, half the short envelope, like a leak's climb (asking it of the side delayed
 * leaks under batches: within 2 h 346 -> 342 of 525). Before this rule a leak under a sawtooth
 * of 40-50 min, whose interior ramp tops count as spikes at the long envelope, lost its newest
 * ramp at every evaluation (benchmark series 1875: found at 4.2 h instead of 2.9 h). A rise
 * from a smooth wave's trough still looks like a batch in progress when the wave's noise peaks
 * stand well clear of the limit: the trough held still (docs/detection.md, "What it does not
 * do").
 * Returns the points kept, in place. buf: room for 4 n doubles; flag: room for n. */
#define SPIKE_HORIZONS_SHORT 0.5
#define SPIKE_HORIZONS_LONG 1.0
#define SPIKE_EDGE_SHARE 0.5
#define SPIKE_SIGMAS 6.0
#define SPIKE_SPREAD 6.0
#define SPIKE_RETURN 0.5
#define SPIKE_FLAT 0.5
#define SPIKE_FLAT_END 0.25
#define SPIKE_END_CLEAR 1.25

/* The smaller of two values that are not NaN (the floor's values are finite): fmin() without
 * its call. */
static double min_d(double a, double b) {
        return b < a ? b : a;
}

/* out[a] = the minimum of p[a..a+k).v for every 0 <= a <= n - k, in O(n) whatever k (van Herk,
 * Gil-Werman): within consecutive blocks of k points, the running minimum from each block's
 * start (head) and to its end (tail); a run of k starts in one block and ends in the next, or
 * is a block, so its minimum is that of the tail where it starts and the head where it ends.
 * Exactly the minimum a loop over the run finds: a minimum is one of the values, in whatever
 * order they are compared. The spike filter takes the minima of k points on both sides of
 * every point, k up to a quarter of the points: by loops over them, a sixth of the time of
 * the detector's unit tests. head, tail: room for n each; 1 <= k <= n. */
static void run_minima(const DetectPoint *p, size_t n, size_t k, double *head, double *tail, double *out) {
        for (size_t j = 0; j < n; j++)
                head[j] = j % k == 0 ? p[j].v : min_d(head[j - 1], p[j].v);
        for (size_t j = n; j-- > 0;)
                tail[j] = j + 1 == n || (j + 1) % k == 0 ? p[j].v : min_d(tail[j + 1], p[j].v);
        for (size_t a = 0; a + k <= n; a++)
                out[a] = min_d(tail[a], head[a + k - 1]);
}

/* Does the floor hold still on the k points from `from`: is their median within `tolerance`
 * above their minimum? buf: room for k. */
static bool side_flat(const DetectPoint *p, size_t from, size_t k, double tolerance, double *buf) {
        double low = INFINITY;

        for (size_t j = 0; j < k; j++) {
                buf[j] = p[from + j].v;
                low = min_d(low, buf[j]);
        }
        return order_select(buf, k, k / 2) - low <= tolerance;
}

/* Mark (in flag, or-ed) the spikes of the envelope k points wide (1 <= k <= n / 4); sigma: the
 * noise. buf: room for 4 n. An interior point i (k <= i < n - k) stands above its lower
 * envelope by its height: above the higher of the minima of the k points before it (left) and
 * the k after it (right). */
static void mark_spikes(const DetectPoint *p, size_t n, size_t k, double sigma, double *buf, bool *flag) {
        double limit, typical, *heights = buf, *minima = buf + n;
        size_t inner = 0, spikes = 0;

        if (n < 2 * k + 1)
                return;
        /* minima[a]: of points a..a+k-1; so left of i is minima[i - k], right minima[i + 1] */
        run_minima(p, n, k, buf + 2 * n, buf + 3 * n, minima);
        /* heights above the envelope, first for their median, then judged */
        for (size_t i = k; i + k < n; i++)
                heights[inner++] = p[i].v - fmax(minima[i - k], minima[i + 1]);
        limit = fmax(SPIKE_SIGMAS * sigma, SPIKE_SPREAD * fmax(0, order_select(heights, inner, inner / 2)));
        for (size_t i = k; i + k < n; i++) {
                double left = minima[i - k], right = minima[i + 1], height = p[i].v - fmax(left, right);

                /* buf + 2 n on is free once the minima are taken */
                if (height > limit && fabs(left - right) <= SPIKE_RETURN * height &&
                    (side_flat(p, i - k, k, SPIKE_FLAT * height, buf + 2 * n) ||
                     side_flat(p, i + 1, k, SPIKE_FLAT * height, buf + 2 * n))) {
                        flag[i] = true;
                        heights[spikes++] = height;
                }
        }
        if (spikes == 0)
                return;
        /* An end point stands for a spike in progress only when it is of the interior spikes'
         * size: a leak's newest points stand above what came before by the growth over k,
         * far less than a batch's working set. */
        typical = SPIKE_EDGE_SHARE * order_select(heights, spikes, spikes / 2);
        /* Interior spikes that barely clear the noise limit are a crest's noise peaks, not
         * batches: a batch's working set stands well clear of the noise. Judging the ends on
         * them took a rise from a smooth wave's trough for a batch in progress (2 %/4 h waves at
         * 0.1 % noise with a 1 %/h leak: 9 of 40 lost their newest points; 3 at 1.25). The
         * margin is small on purpose: at 1.5 a batch leak's newest batch in progress counts
         * as growth and delays it (benchmark series 363, 42 % batches over a 9 % sawtooth at
         * 1 % noise: 1.93 -> 2.07 h); at 1.25 the 2400 benchmark series keep their headline. */
        if (typical / SPIKE_EDGE_SHARE < SPIKE_END_CLEAR * limit)
                return;
        for (size_t i = 0; i < n; i++) {
                double side = INFINITY;
                size_t at = i, from, count;

                if (i >= k && i + k < n)
                        continue;
                if (i < k) { /* the head: what follows, down to its nearest minimum */
                        for (size_t j = i + 1; j < n && j <= i + k; j++)
                                if (p[j].v < side) {
                                        side = p[j].v;
                                        at = j;
                                }
                        from = at;
                        count = n - at < k ? n - at : k;
                } else { /* the tail: what came before, up from its latest minimum */
                        for (size_t j = i - k; j < i; j++)
                                if (p[j].v <= side) {
                                        side = p[j].v;
                                        at = j;
                                }
                        from = at + 1 > k ? at + 1 - k : 0;
                        count = at + 1 - from;
                }
                /* ... left from (or returning to) a floor that held still: a batch in progress
                 * rose from the floor between batches within its last few points, while a
                 * rising floor (a leak, a wave's slope, a sawtooth's previous ramp) was
                 * climbing before its side's minimum too */
                if (p[i].v - side > fmax(limit, typical) &&
                    side_flat(p, from, count, SPIKE_FLAT_END * (p[i].v - side), buf + 2 * n))
                        flag[i] = true;
        }
}

size_t floor_drop_spikes(const DetectConfig *c, DetectPoint *p, size_t n, double *buf, bool *flag) {
        static const double widths[] = { SPIKE_HORIZONS_SHORT, SPIKE_HORIZONS_LONG };
        double span, sigma;
        size_t m = 0;

        if (n < 8)
                return n;
        span = p[n - 1].t - p[0].t;
        for (size_t i = 1; i < n; i++)
                buf[i - 1] = fabs(p[i].v - p[i - 1].v);
        /* median |jump| = 0.954 sigma for Gaussian noise (0.6745 sqrt(2)) */
        sigma = order_select(buf, n - 1, (n - 1) / 2) / 0.954;
        if (!(sigma > 0) || !(span > 0))
                return n;
        for (size_t i = 0; i < n; i++)
                flag[i] = false;
        for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
                double k_f = ceil(widths[w] * c->min_horizon_seconds / (span / (double) (n - 1)));
                size_t k = k_f > (double) (n / 4) ? n / 4 : (size_t) k_f;

                mark_spikes(p, n, k < 1 ? 1 : k, sigma, buf, flag);
        }
        for (size_t i = 0; i < n; i++)
                if (!flag[i])
                        p[m++] = p[i];
        return m;
}

bool floor_few_steps(const DetectPoint *p, size_t n, double min_steps) {
        size_t still = 0;
        double high, sum = 0, sum_sq = 0;

        if (n < 2)
                return false;
        high = p[0].v;
        for (size_t i = 1; i < n; i++) {
                if (p[i].v == p[i - 1].v)
                        still++;
                if (p[i].v > high) {
                        double d = p[i].v - high;

                        sum += d;
                        sum_sq += d * d;
                        high = p[i].v;
                }
        }
        if (2 * still < n - 1)
                return false;
        return !(sum_sq > 0) || sum * sum < min_steps * sum_sq;
}
