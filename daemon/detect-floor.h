/* SPDX-License-Identifier: MIT */
/*
 * The floor (the window minima of one signal) made fit for the trend tests: seen in order
 * whether it lies in one array or in a ring's two segments, coarsened into minima of groups of
 * windows (an aliased GC sawtooth, or more points than a horizon may hold), without the batch
 * spikes that outlast a window, and -- for the history whose wander is measured -- without its
 * one-time steps; and whether it rose in a few steps of a high-water mark only
 * (docs/detection.md, steps 1, 3 and 6). Internal to libhwdetect. Pure computation.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "detect.h"

/* Sawtooth aliasing (floor_group()) is looked for over the newest SAW_MAX_POINTS floor points
 * (a day of 60 s windows). */
#define SAW_MAX_POINTS 1440

/* ---- the floor as one or two contiguous segments (a ring seen in order) --------------- */

typedef struct Points {
        const DetectPoint *a, *b;
        size_t na, nb;
} Points;

static inline const DetectPoint *points_at(const Points *p, size_t i) {
        return i < p->na ? &p->a[i] : &p->b[i - p->na];
}

static inline size_t points_n(const Points *p) {
        return p->na + p->nb;
}

/* First index whose time is >= t. */
static inline size_t points_lower_bound(const Points *p, double t) {
        size_t lo = 0, hi = points_n(p);

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (points_at(p, mid)->t < t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* First index whose time is > t. */
static inline size_t points_upper_bound(const Points *p, double t) {
        size_t lo = 0, hi = points_n(p);

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (points_at(p, mid)->t <= t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* Minima of consecutive groups of g points of [lo, end) into out. Groups are aligned to
 * `end` so that every group is full: a group with fewer members has a higher minimum, and a
 * high newest point would look like growth. The incomplete oldest group is dropped. A group
 * is dated by its first point, as a floor point is dated by its window's start. */
size_t floor_coarsen_by(const Points *p, size_t lo, size_t end, size_t g, DetectPoint *out);

/* Points [lo, end) into out, coarsened by minima of groups (the floor of the floor) of at
 * least min_group points, and more when there would be more than DETECT_MAX_POINTS;
 * *ret_group says how many points make one. */
size_t floor_coarsen(const Points *p, size_t lo, size_t end, size_t min_group, DetectPoint *out,
                     size_t *ret_group);

/* How many floor points make one point of every horizon: 1, unless the floor aliases a GC
 * sawtooth longer than the window, and then the group size whose minima each hold a trough of
 * it (the why and the measurements: detect-floor.c). buf: room for 2 SAW_MAX_POINTS. */
size_t floor_group(const Points *p, double *buf);

/* Take the sudden level shifts (and a ramp of a few points around them) out of p[0..n), in
 * place: each step's jump is replaced by the mean of the other jumps, and everything after it
 * moves with it (why: detect-floor.c). buf: room for n doubles; step: for n flags. */
void floor_destep(DetectPoint *p, size_t n, double *buf, bool *step);

/* Drop the batch spikes of p[0..n) that outlast the window -- points standing well above the
 * floor's lower envelope on both sides, on a floor that holds still on one side at least and
 * returns to where it was, and within the envelope of either end the points of the interior
 * spikes' size that left such a floor (a batch in progress), judged on envelopes of half and
 * one c->min_horizon_seconds (why and thresholds: detect-floor.c).
 * Returns the points kept, in place. buf: room for 4 n doubles; flag: room for n. */
size_t floor_drop_spikes(const DetectConfig *c, DetectPoint *p, size_t n, double *buf, bool *flag);

/* Does the floor hold exactly still between most points and owe its rise to fewer than
 * min_steps steps? Its rise is counted as a high-water mark's: a point rises only above every
 * point before it, by what it adds to that maximum (a floor that dips when a batch frees and
 * climbs back has not grown twice). The steps are counted by their effective number,
 * (sum of rises)^2 / sum of squared rises: as many as there are when they are equal, fewer
 * when a few large ones carry the rise and tiny ones (a page here and there) pad the count.
 * Noisy floors (fewer than half the consecutive points equal) are never "few steps": their
 * statistics weigh the noise. */
bool floor_few_steps(const DetectPoint *p, size_t n, double min_steps);
