/* SPDX-License-Identifier: MIT */
/*
 * Leak trend detection for one memory signal (RSS, Python heap, cgroup memory, a site's live
 * bytes). Pure computation, no I/O, no logging, no globals: heapwatchd runs it live on every
 * process, `heapwatch analyze` on recorded series, the benchmark on synthetic ones — the same
 * code, so offline verdicts are the daemon's verdicts. docs/detection.md explains the method
 * and every threshold.
 *
 * The pipeline:
 *   raw samples --(window minima: the post-GC floor)--> floor points
 *   floor points --(per horizon, coarsened to <= DETECT_MAX_POINTS)--> Mann-Kendall trend test
 *     + Theil-Sen slope with a confidence interval, a "both halves grow" check that rejects
 *     warm-ups, plateaus and one-time steps, and thresholds on practical size
 *   evaluations --(hysteresis)--> the reported verdict: none, suspect, leak
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct DetectPoint {
        double t; /* Unix seconds */
        double v; /* the signal's value, e.g. bytes */
} DetectPoint;

typedef enum LeakVerdict {
        VERDICT_NONE,
        VERDICT_SUSPECT,
        VERDICT_LEAK,
} LeakVerdict;

const char *leak_verdict_to_string(LeakVerdict v); /* "none", "suspect", "leak" */

/* Most points one horizon is evaluated on (the floor is coarsened further by minima to fit):
 * Theil-Sen is O(n^2) in pairs. */
#define DETECT_MAX_POINTS 120

typedef struct DetectConfig {
        double window_seconds;       /* raw samples -> one floor point (minimum) per window */
        double min_horizon_seconds;  /* shortest horizon evaluated */
        double max_horizon_seconds;  /* longest horizon evaluated (the floor history kept:
                                      * detect_history_seconds()) */
        unsigned min_points;         /* fewest floor points a horizon needs to be evaluated */
        double alpha_suspect;        /* Mann-Kendall one-sided p-value for "suspect" */
        double alpha_leak;           /* ... for "leak" */
        double min_growth_relative_per_hour; /* practical size: share of the current level per hour */
        double min_growth_absolute_per_hour; /* practical size: units (bytes) per hour */
        double halves_ratio;         /* each half of the horizon must grow at >= this share of the
                                      * whole horizon's slope (rejects plateaus and steps) */
        unsigned open_after;         /* consecutive "leak" evaluations to open a finding */
        unsigned close_after;        /* consecutive evaluations below "suspect" to close it */
        bool high_water;             /* the signal is a high-water mark (RSS: the allocators keep
                                      * what they got): a floor that rose in a few steps is not
                                      * a leak. Not so a count of live objects, whose every step
                                      * is kept. */
} DetectConfig;

/* Production defaults (docs/detection.md says why each). */
void detect_config_default(DetectConfig *c);
/* Check ranges and consistency; on error writes a message and returns -EINVAL. */
int detect_config_validate(const DetectConfig *c, char *error, size_t error_size);
/* Seconds of floor history a detector keeps and needs: the longest horizon, and at least a
 * week and half a day, to compare the newer half of a horizon with the same time a
 * day and a week ago (a daily or weekly cycle is not a leak; docs/detection.md). */
double detect_history_seconds(const DetectConfig *c);

typedef struct DetectResult {
        LeakVerdict verdict;   /* this evaluation alone, before hysteresis */
        double slope;          /* Theil-Sen, units per second */
        double slope_low;      /* 95 % confidence interval of the slope */
        double slope_high;
        double p_value;        /* Mann-Kendall, one-sided (increasing trend) */
        double tau;            /* Kendall's tau */
        double horizon;        /* seconds of the horizon that decided */
        double since;          /* start of that horizon: when the growth is seen from */
        unsigned points;       /* floor points used */
        double current;        /* the floor now (last floor point) */
        const char *reason;    /* static text: why this verdict (e.g. "levelling off") */
        bool growing;          /* some horizon still shows growth, of whatever shape, at the
                                * relaxed thresholds that keep an open finding open */
} DetectResult;

/* Evaluate floor points (sorted by time, window minima) at time `now`: every horizon from
 * min_horizon doubling up to max_horizon (and the whole history), the strongest passing one
 * decides. Returns 0 (result in *ret, VERDICT_NONE with a reason when too little data), or
 * -EINVAL (invalid config; a time or value not finite; times not strictly increasing). */
int detect_evaluate(const DetectConfig *c, const DetectPoint *floor, size_t n, DetectResult *ret);

/* Seconds until `current` growing at slope [low, high] reaches `limit`. *ret_eta from slope,
 * *ret_earliest from slope_high, *ret_latest from slope_low (INFINITY when slope_low <= 0).
 * Returns 0, or -ERANGE when slope <= 0 or current >= limit is not a projection (current >=
 * limit gives 0 s). */
int detect_time_to_limit(double current, double slope, double slope_low, double slope_high, double limit,
                         double *ret_eta, double *ret_earliest, double *ret_latest);

/* One horizon of one evaluation, for tracing (`heapwatch analyze --trace`): what it measured
 * and why it decided what it did. */
typedef struct DetectHorizonTrace {
        double horizon;          /* seconds */
        double since;            /* its first floor point */
        unsigned points;         /* floor points it was evaluated on (after coarsening) */
        unsigned group;          /* windows per point: > 1 when grouped (an aliased sawtooth,
                                  * step 1) or coarsened (more than DETECT_MAX_POINTS) */
        LeakVerdict verdict;
        const char *reason;      /* static text */
        double p_value;          /* Mann-Kendall, one-sided, with the autocorrelation weighed in */
        double p_self;           /* the same with the horizon's own autocorrelation weighed in too
                                  * (what a self-confirmation asks, docs/detection.md step 7) */
        double slope, slope_low, slope_high; /* Theil-Sen and its 95 % interval, units per second */
        double older_slope, newer_slope;     /* the two halves' Theil-Sen slopes */
        bool line_fitted;        /* the horizon bends and was fitted with "a rise plus a line" */
        double line_f;           /* then the F of the line against the rise alone (>= 25: needed) */
        double line_slope;       /* and the line's slope, units per second */
} DetectHorizonTrace;

/* Called after every evaluation with all of its horizons, shortest first (none, n = 0, while
 * the history is shorter than the shortest horizon); `now` is the time of the newest floor
 * point, `current` its value. The array lives only during the call. */
typedef void (*DetectTraceFn)(void *userdata, double now, double current, const DetectHorizonTrace *horizons,
                              size_t n);

/* One signal's detector with state: window minima, the floor history (bounded by
 * max_horizon), the last evaluation and the hysteresis. */
typedef struct SeriesDetector {
        DetectConfig config;
        DetectPoint *floor; /* ring of floor points */
        size_t floor_alloc, floor_head, floor_n, floor_cap;
        bool window_open;
        double window_start, window_min, window_last_t;
        LeakVerdict state;      /* after hysteresis */
        unsigned leak_streak;   /* consecutive evaluations at "leak" */
        unsigned suspect_streak; /* consecutive evaluations at "suspect" or "leak" */
        unsigned quiet_streak;  /* consecutive evaluations below "suspect" */
        double state_since;     /* when state last changed */
        bool evaluated;
        DetectResult last;      /* the last evaluation */
        DetectTraceFn trace;    /* NULL: no tracing (series_detector_set_trace()) */
        void *trace_userdata;
} SeriesDetector;

int series_detector_init(SeriesDetector *d, const DetectConfig *c);
void series_detector_done(SeriesDetector *d);
/* Feed one raw sample (times increasing). When it closes a window, the window's minimum joins
 * the floor and an evaluation runs: returns 1 then (and *ret_changed says whether the
 * hysteresis state changed), 0 otherwise, -ENOMEM/-EINVAL on error. */
int series_detector_add(SeriesDetector *d, double t, double v, bool *ret_changed);
/* Call fn after every evaluation of d with every horizon (fn NULL: stop). For offline
 * analysis and tuning: it costs a copy of the horizons per evaluation. */
void series_detector_set_trace(SeriesDetector *d, DetectTraceFn fn, void *userdata);
/* Floor points in time order into a caller-owned copy (malloc'ed) for inspection. */
int series_detector_floor(const SeriesDetector *d, DetectPoint **ret, size_t *ret_n);
