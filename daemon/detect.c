/* SPDX-License-Identifier: MIT */
/*
 * Leak trend detection (see detect.h, and docs/detection.md for the method and why every
 * threshold is what it is). Pure computation: no I/O, no logging, no globals, deterministic.
 * detect_evaluate() works on a bounded scratch on the stack (about 70 KiB: the pairwise slopes
 * of DETECT_MAX_POINTS points, and the history before a horizon at its resolution) and is
 * O(DETECT_MAX_POINTS^2) per horizon; the only allocation is a SeriesDetector's floor ring.
 * This file holds the rules: the horizons, their verdicts, the evaluation and the
 * SeriesDetector's hysteresis. What they measure with is beside it: detect-floor.c (the floor's
 * groups, spikes and steps), detect-trend.c (Mann-Kendall and Theil-Sen), detect-rise.c (a
 * rise that levels off, plus a line) and detect-acf.c (the floor's autocorrelation).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect-acf.h"
#include "detect-floor.h"
#include "detect-rise.h"
#include "detect-trend.h"
#include "detect.h"
#include "order-stats.h"

/* "Decelerating": the newer half of a horizon grows at less than this share of the older
 * half's rate... An exponential approach to a plateau or a cache filling with fewer and
 * fewer new keys always decelerates; a leak does not. */
#define DECEL_RATIO 0.8
/* ... and the difference of the two slopes is at least this many standard errors (taken from
 * their 95 % intervals). One standard error, not two: every longer horizon is asked, and a
 * warm-up that has slowed down only a little must already count, while a steady leak's halves
 * differ by more than one standard error in only ~16 % of the cases on one horizon. */
#define DECEL_Z 1.0

/* A leak verdict at horizon H looks for deceleration at the longer horizons up to this many
 * times H (a warm-up with time constant T looks linear over H << T but not over ~4 T). */
#define LOOKBACK_FACTOR 4.0

/* Twice the horizon must grow at least at this share of the horizon's rate to confirm it. */
#define CONFIRM_RATIO 0.5

/* A horizon longer than twice the one under test (up to UNDONE_FACTOR times it: LOOKBACK_FACTOR
 * times the twice that confirms it) that holds no trend at all, not even at UNDONE_ALPHA, while
 * its older half does not hold still, contradicts the growth (horizon_undone()). */
#define UNDONE_ALPHA 0.05
#define UNDONE_FACTOR 8.0

/* A daily or weekly cycle repeats; a leak does not. Memory that follows load (caches, pools,
 * buffers, sessions held by the hour of the day, quieter weekends) rises for hours every day,
 * as steadily as a leak, and a detector that sees only the rise pages every day at the same
 * hour (the benchmark's diurnal kind over 72 h: 14 of 20 leak-free series opened a finding a
 * day). So once the history reaches back one lag (a day, a week) and a little more, a horizon
 * shorter than a day (longer ones span a whole day's cycle themselves) must stand higher than
 * it stood one lag ago at the same time of day: the median of the floor over the newest
 * CYCLE_SHARE of the horizon, less the median over the same clock span one lag earlier (its
 * "rise since a day / a week ago", horizon_cycle_rise()), must reach CYCLE_RATIO of the
 * horizon's own growth, for every lag the history covers. Memory that leaked a day ago is
 * still there, and a leak that began within the day has grown since, by at least the growth
 * of the horizon's newer half (its older half grows too, or the horizon is left to a shorter
 * one: step 6), so a leak stands higher by about its growth over H or more; a cycle stands
 * where it stood, give or take the noise and the day's differences. Both lags: a weekday
 * morning's rise after a quiet weekend stands higher than yesterday's (Sunday's) but not
 * than a week ago. Shifts of the cycle are not followed (a daylight-saving change moves it by
 * an hour for a day). */
#define CYCLE_SHARE 0.5
#define CYCLE_RATIO 0.5
#define CYCLE_MIN_POINTS 3
#define CYCLE_MAX_POINTS 4096
#define DAY_SECONDS 86400.0
static const double cycle_lags[] = { DAY_SECONDS, 7 * DAY_SECONDS };
/* History kept (SeriesDetector) for the week's lag of a horizon up to a day long: the week
 * and the newest CYCLE_SHARE of a day. */
#define CYCLE_HISTORY_SECONDS (7 * DAY_SECONDS + CYCLE_SHARE * DAY_SECONDS)

/* Evidence-scaled confirmation (horizon_self_confirmed()): while twice the horizon does not
 * exist yet (a young process), a horizon confirms itself when its evidence is overwhelming:
 * it spans SELF_MIN_LENGTH to SELF_MAX_HORIZONS minimum horizons (over that long a warm-up
 * or a cache still filling decelerates visibly; beyond it the ordinary confirmation is there
 * by then, or the process is old enough to wait for it), its p-value is below
 * alpha_leak * SELF_ALPHA_SCALE even when its points' own autocorrelation is weighed the way
 * the reference's is (p_self: a wander shows it, a leak under white noise does not), the
 * lower bound of its slope is of practical size, and its
 * newer half grows at no less than SELF_HALVES_RATIO of the older half's rate — whatever the
 * standard errors say, so a curve that bends at all waits for the ordinary confirmation. */
/* Beyond SELF_MAX_HORIZONS, the whole history may still confirm itself when its floor is
 * periodic (floor_acf_period()): the post-GC floor of a GC sawtooth slower than any grouping of
 * windows (20-50 min), whose short horizons see the sawtooth and whose twice, for the longest
 * horizon, never exists. Leaks from the start under such a sawtooth waited 11-16 h for it, or
 * were never found in 24 h (series 1939, 2243, 2371, 595, 611, 675, 947 of the benchmark). A
 * wander is what the horizon's own autocorrelation underestimates (the slope swallows it): its
 * autocorrelation decays and does not come back, so it does not pass for periodic; with any
 * whole history allowed to confirm itself, two churn series of 1050 alarmed (tau 54 min,
 * sigma 2 %: a 6 h climb of 1 %/h at p_self 1e-7). */
#define SELF_MIN_HORIZONS 3.0
#define SELF_MAX_HORIZONS 4.0
/* The shortest horizon that may confirm itself is SELF_MIN_LENGTH minimum horizons: the
 * horizon just below SELF_MIN_HORIZONS of the grid that grows by HORIZON_STEP (85 min with
 * min_horizon 30 min), on a process at least SELF_MIN_HORIZONS old (young_history()), and
 * while it is shorter than SELF_MIN_HORIZONS only if it passes horizon_self_guarded()'s two
 * guards against a wander. A leak from the start under batches or a GC sawtooth often has no
 * 90 min-2 h horizon conclusive before 2 h: the only one is the whole history, whose first
 * minutes hold what the spike filter cannot drop at the edge (benchmark batch 251, 2.7 %/h:
 * at 93 min its 85 min horizon p_self 7.9e-7, the whole history's 1.6e-4). Measured on the
 * 2400 series (docs/detection-benchmark.md, 2026-12-06): 4 leaks of 525 cross the 2 h line
 * (batch 251 2.10 -> 1.68 h, flat 481, sawtooth 1379, cache 1433), 35 are found earlier, none
 * later, and no leak-free series changed; without the first guard leak-free churn 876
 * (tau 51 min) alarmed at 1.70 h. */
#define SELF_MIN_LENGTH (2 * M_SQRT2)
#define SELF_ALPHA_SCALE 1e-3
#define SELF_HALVES_RATIO 0.8
/* ... and its halves grow, on average, at no less than SELF_MEAN_RATIO of its whole slope: a
 * steady leak's halves grow as fast as its whole (Sen's slopes of the parts of a line are its
 * slope), while a floor that climbed between its halves, a wander of the level in the middle
 * of a young process's history, grows over the whole far faster than within either half
 * (benchmark churn series 2124, tau 24 min, alarmed at 1.9 h in each of three draws of its
 * sampling moments: its 114 min whole history grew 1.5 %/h at p_self 1e-9 to 1e-6, its halves
 * 0.8-1.0 %/h, a mean of 0.58-0.65 of the whole). 0.7 leaves room for the halves' noise: each
 * has half the points, so their mean's standard error is twice the whole slope's. */
#define SELF_MEAN_RATIO 0.7

/* A floor that holds exactly still between changes (most consecutive points equal: RSS of a
 * process whose allocators keep what they got, pages and arenas, until a batch needs more)
 * rises in steps, and its steps are the evidence, whatever the number of points: a
 * high-water mark that a few batches pushed up looks like steady growth to the trend test,
 * and so does a horizon holding one big step on top of a little creep. No horizon of such a
 * floor is a leak unless it rose (above its own earlier maximum) in an effective number of
 * at least STEP_MIN_STEPS equal steps, and its newer half in half as many
 * (floor_few_steps()): a leak in RSS moves the floor page by page, window after window.
 * A longer horizon holding more steps may be a leak. Measured on the scenarios
 * (tests/scenarios/stress.py, 20 copies of batch_sawtooth beside two busy loops, every
 * horizon from 45 s on): batch_sawtooth's floors at most 6.3 effective steps, their newer
 * halves 4.2. History: the rule first counted separate rises (12, the two largest at most
 * 75 % of the rise). batch_sawtooth passed it in 2 of 20 copies and in two CI runs: its
 * floor dips when a batch frees and climbs back, and pads the count with steps of a page or
 * two; counted that way the floor rose in 12-18 steps, as a high-water mark in 4-6. Before,
 * it guarded only the self-confirmation of young processes; a CI run then alarmed the
 * ordinary way (a 1 h horizon, one +3.5 MB step and a little creep, confirmed by the 2 h
 * horizon that was the process's whole history). */
#define STEP_MIN_STEPS 12.0

/* Horizons grow by this factor from min_horizon: sqrt(2), so that "twice this horizon" is
 * always evaluated two steps later and a confirmation waits no longer than it must. */
#define HORIZON_STEP M_SQRT2

/* The floor's own wander is measured over up to this many horizons' length before the
 * horizon under test (at least ACF_MIN_POINTS points, else the in-horizon estimate alone). */
#define REF_FACTOR 4

/* A leak on a warm-up or cache that has levelled off (sat_fit_line()): a horizon that
 * decelerates is also fitted with "a rise that levels off, plus a straight line" (a + b r(x)
 * + c x, r an exponential approach or a rise that ends: Rise in detect-rise.h) against the
 * rise alone (the best of rise_fit_best(), up to a line), and its veto on a shorter horizon is lifted when the line is needed (the F statistic of c,
 * divided by the autocorrelation factor of the fit's own residuals, is at least SAT_F: about
 * 5 standard errors, as every decelerating horizon of every evaluation is asked), the line is
 * of practical size and grows at least at CONFIRM_RATIO of the shorter horizon's rate, and
 * the rise has nearly levelled off when the shorter horizon begins (what is left of it there
 * is below SAT_LEFT of the line's rise over the shorter horizon: at least two thirds of that
 * growth is the line's; the line itself, needed by F, is the leak). The rise may take at most
 * SAT_TAU_MAX of the horizon's span as time constant (or end by 3 SAT_TAU_MAX, within the
 * span: rise_fit_best()'s tau_max): one that does not level off inside the horizon is not "finished". */
#define SAT_TAU_MAX 0.5
#define SAT_F 25.0
#define SAT_LEFT 0.5

/* A half with fewer points than this cannot be judged (gaps): the horizon is skipped. */
#define HALF_MIN_POINTS 3

/* Grouped points (an aliased sawtooth, floor_group()) each stand for `group` windows and hold
 * a trough of the sawtooth each: fewer of them make a horizon (horizon_min_points()), but
 * never fewer than this, where Mann-Kendall's normal approximation is still the one the
 * literature uses (Gilbert 1987: n > 10). */
#define GROUPED_MIN_POINTS 10

_Static_assert(2 * SAW_MAX_POINTS <= DETECT_MAX_POINTS * (DETECT_MAX_POINTS - 1) / 2,
               "floor_group() works in the slopes scratch");
#define MAX_PAIRS (DETECT_MAX_POINTS * (DETECT_MAX_POINTS - 1) / 2)
#define MAX_HORIZONS 64

/* Config bounds that keep the floor ring and the number of horizons sane. */
#define MAX_FLOOR_POINTS 1000000.0
#define MIN_POINTS_LOWEST 6

const char *leak_verdict_to_string(LeakVerdict v) {
        switch (v) {
        case VERDICT_NONE:
                return "none";
        case VERDICT_SUSPECT:
                return "suspect";
        case VERDICT_LEAK:
                return "leak";
        default:
                return NULL;
        }
}

void detect_config_default(DetectConfig *c) {
        *c = (DetectConfig) {
                .window_seconds = 60,
                .min_horizon_seconds = 30 * 60,
                .max_horizon_seconds = 7 * 24 * 3600,
                .min_points = 20,
                .alpha_suspect = 1e-3,
                .alpha_leak = 1e-3,
                .min_growth_relative_per_hour = 0.005,
                .min_growth_absolute_per_hour = 1024 * 1024,
                .halves_ratio = 0.3,
                .open_after = 3,
                .close_after = 10,
                .high_water = true,
        };
}

static int config_error(char *error, size_t error_size, const char *msg) {
        if (error && error_size > 0)
                snprintf(error, error_size, "%s", msg);
        return -EINVAL;
}

int detect_config_validate(const DetectConfig *c, char *error, size_t error_size) {
        if (!c)
                return config_error(error, error_size, "no configuration");
        /* Written as !(x > 0) so that NaN fails too. */
        if (!(c->window_seconds > 0) || !isfinite(c->window_seconds))
                return config_error(error, error_size, "window_seconds must be a finite number > 0");
        if (c->min_points < MIN_POINTS_LOWEST || c->min_points > DETECT_MAX_POINTS) {
                char msg[128];
                snprintf(msg, sizeof msg, "min_points must be between %d and %d", MIN_POINTS_LOWEST,
                         DETECT_MAX_POINTS);
                return config_error(error, error_size, msg);
        }
        if (!(c->min_horizon_seconds > 0) || !isfinite(c->min_horizon_seconds))
                return config_error(error, error_size, "min_horizon_seconds must be a finite number > 0");
        if (c->min_horizon_seconds < c->window_seconds * (c->min_points - 1))
                return config_error(error, error_size,
                                    "min_horizon_seconds must hold min_points windows "
                                    "(>= window_seconds * (min_points - 1))");
        if (!(c->max_horizon_seconds >= c->min_horizon_seconds) || !isfinite(c->max_horizon_seconds))
                return config_error(error, error_size, "max_horizon_seconds must be finite and >= min_horizon_seconds");
        if (c->max_horizon_seconds / c->window_seconds > MAX_FLOOR_POINTS)
                return config_error(error, error_size,
                                    "max_horizon_seconds / window_seconds must be <= 1000000 (floor points kept)");
        if (!(c->alpha_leak > 0 && c->alpha_leak < 0.5))
                return config_error(error, error_size, "alpha_leak must be > 0 and < 0.5");
        if (!(c->alpha_suspect >= c->alpha_leak && c->alpha_suspect < 0.5))
                return config_error(error, error_size, "alpha_suspect must be >= alpha_leak and < 0.5");
        if (!(c->min_growth_relative_per_hour >= 0) || !isfinite(c->min_growth_relative_per_hour))
                return config_error(error, error_size, "min_growth_relative_per_hour must be a finite number >= 0");
        if (!(c->min_growth_absolute_per_hour >= 0) || !isfinite(c->min_growth_absolute_per_hour))
                return config_error(error, error_size, "min_growth_absolute_per_hour must be a finite number >= 0");
        if (!(c->halves_ratio >= 0 && c->halves_ratio < 1))
                return config_error(error, error_size, "halves_ratio must be >= 0 and < 1");
        if (c->open_after < 1)
                return config_error(error, error_size, "open_after must be >= 1");
        if (c->close_after < 1)
                return config_error(error, error_size, "close_after must be >= 1");
        return 0;
}

/* Median of the floor points in (from, to], every stride-th of them when there are more than
 * CYCLE_MAX_POINTS (a short window_seconds); *ret_n says how many were taken. buf: room for
 * CYCLE_MAX_POINTS. */
static double floor_median(const Points *p, double from, double to, double *buf, size_t *ret_n) {
        size_t lo = points_upper_bound(p, from), hi = points_upper_bound(p, to), m = 0;
        size_t stride = (hi - lo) / CYCLE_MAX_POINTS + 1;

        for (size_t i = lo; i < hi; i += stride)
                buf[m++] = points_at(p, i)->v;
        *ret_n = m;
        return m > 0 ? order_select(buf, m, m / 2) : NAN;
}

/* See CYCLE_SHARE. The smallest rise since one lag ago over the lags whose same clock span
 * the history holds whole, with at least half as many points as the newest span (a gap in
 * the history is no evidence); NAN when there is none. buf: room for CYCLE_MAX_POINTS. */
static double horizon_cycle_rise(const Points *p, double horizon, double *buf) {
        double end = points_at(p, points_n(p) - 1)->t, first = points_at(p, 0)->t, span = CYCLE_SHARE * horizon;
        double now, rise = NAN;
        size_t n_now, n_then;

        if (horizon >= DAY_SECONDS)
                return NAN;
        now = floor_median(p, end - span, end, buf, &n_now);
        if (n_now < CYCLE_MIN_POINTS)
                return NAN;
        for (size_t i = 0; i < sizeof cycle_lags / sizeof cycle_lags[0]; i++) {
                double then, lag_end = end - cycle_lags[i];

                if (first > lag_end - span)
                        break; /* the lags grow: no longer one is covered either */
                then = floor_median(p, lag_end - span, lag_end, buf, &n_then);
                if (n_then < CYCLE_MIN_POINTS || 2 * n_then < n_now)
                        continue;
                if (isnan(rise) || now - then < rise)
                        rise = now - then;
        }
        return rise;
}

/* ---- one horizon ---------------------------------------------------------------------- */

typedef struct Scratch {
        DetectPoint pts[DETECT_MAX_POINTS];
        DetectPoint ref[REF_FACTOR * DETECT_MAX_POINTS];
        double slopes[MAX_PAIRS];
        double vals[DETECT_MAX_POINTS];
        unsigned char idx[DETECT_MAX_POINTS];
        bool flag[REF_FACTOR * DETECT_MAX_POINTS];
        FitPoints fit;
} Scratch;

/* slopes is also the spike filter's room (floor_drop_spikes(): 4 n for the reference's n points) */
_Static_assert(MAX_PAIRS >= 4 * REF_FACTOR * DETECT_MAX_POINTS, "Scratch.slopes too small for floor_drop_spikes()");
_Static_assert(MAX_PAIRS >= CYCLE_MAX_POINTS, "Scratch.slopes too small for horizon_cycle_rise()");
_Static_assert(REF_FACTOR * DETECT_MAX_POINTS <= RISE_FIT_MAX_POINTS, "Scratch.fit too small for the reference");

typedef struct Horizon {
        double horizon;
        double since;
        size_t first_index; /* of the floor points the horizon starts at */
        size_t points;      /* after coarsening */
        size_t group;       /* floor points per point (floor_coarsen()) */
        bool enough;       /* enough points overall and in each half */
        bool decelerating; /* the newer half significantly slower than the older one */
        bool growing;      /* significant growth of practical size, whatever its shape */
        Trend whole, first, second;
        double p_value, tau;
        double p_self; /* p_value with the horizon's own autocorrelation weighed in too */
        /* When the halves differ, "a levelled-off rise plus a line" is fitted (sat_fitted), with
         * the F of its line (sat_f) and the line's slope (sat_c, bytes/s); sat_line when that
         * fits much better than the rise alone, and then the rise's start, height and time
         * constant too. */
        bool sat_fitted, sat_line;
        double sat_f, sat_c;
        double sat_t0, sat_b;
        Rise sat_rise; /* its shape and time scale, in seconds */
        /* The floor held still between most points and rose in a few steps only (see
         * STEP_MIN_STEPS): not a leak on this horizon. */
        bool few_steps;
        /* The whole history, longer than a self-confirmation's length, with overwhelming
         * evidence of growth, and a periodic floor around it (see SELF_MAX_HORIZONS). */
        bool periodic;
        /* How much higher the floor stands at the horizon's end than one lag ago (a day, a
         * week), the smallest over the lags the history covers; NAN if none or the horizon is
         * a day or longer (horizon_cycle_rise()). */
        double cycle_rise;
        LeakVerdict verdict;
        const char *reason;
} Horizon;

/* A reference that holds a rise which levelled off -- the warm-up or the cache fill before a
 * leak -- is not wander, but around a straight line it leaves residuals that look like hours
 * of it, and every horizon for 4 horizons' length after it is held back (a 7 %/h leak on a
 * cache filled in 66 min: its 60 min horizons at p 5e-3). When "a rise that levels off plus a
 * line" fits the reference far better than a line (sat_fit_line()'s test: F of the rise,
 * divided by the autocorrelation factor of the fit's own residuals, >= SAT_F; a wander keeps
 * its residuals' autocorrelation and does not pass), the reference's autocorrelation is taken
 * around that fit instead: *ret is replaced. p is overwritten with the residuals. Only rises
 * with a time constant of at most REF_RISE_TAU_MAX of the reference's span: a rise that is
 * not over when the reference ends goes on inside the horizon, and there a slow warm-up must
 * keep the protection of its wander-like reference (a warm-up of 2 h alarmed at 0.5). */
#define REF_RISE_TAU_MAX 0.25

static void reference_without_rise(DetectPoint *p, size_t n, FitPoints *fit, FloorAcf *ret) {
        double span, rss_line, rss, best[3], coef[3];
        const FitPoints *f;
        Rise best_rise;
        FloorAcf acf;

        if (n < ACF_MIN_POINTS || !(p[n - 1].t - p[0].t > 0))
                return;
        span = p[n - 1].t - p[0].t;
        f = rise_fit_points(p, n, span, fit);
        /* a rise with a time constant of 100 spans is a straight line */
        rss_line = rise_fit(f, (Rise) { RISE_EXP, 100.0 }, false, coef);
        rss = rise_fit_best(f, true, REF_RISE_TAU_MAX, best, &best_rise);
        if (!isfinite(rss) || !(rss > 0) || !(rss < rss_line))
                return;
        rise_residuals(p, n, span, best, best_rise, p);
        if (rise_fit_f(p, n, rss_line, rss, &acf) >= SAT_F)
                *ret = acf;
}


/* The autocorrelation of the floor before the horizon starting at lo, over up to REF_FACTOR
 * times the horizon's length, at the horizon's resolution (groups of `group` points): how
 * much the floor wanders on its own, measured where the growth under test is not. */
static void reference_acf(const DetectConfig *c, const Points *p, size_t lo, size_t horizon_points, size_t group,
                          Scratch *s, FloorAcf *ret) {
        size_t want = REF_FACTOR * horizon_points, ref_lo = lo > want ? lo - want : 0,
               n = floor_coarsen_by(p, ref_lo, lo, group, s->ref);

        /* spikes first: what is left of a sudden shift is then a step that holds */
        n = floor_drop_spikes(c, s->ref, n, s->slopes, s->flag);
        /* A periodic floor has no one-time steps: its drops are its period. Taken out one by
         * one, the drops of a GC sawtooth slower than any grouping turn it into a staircase
         * whose every replaced drop is off by however much of the ramp the drop's group
         * caught, and those errors add up to a wander that depends on the groups' phase
         * (series 627 of the benchmark, a 13 % / 45 min sawtooth: reference factor 2.2 or
         * 17 from one window to the next, so a 3.3 %/h leak from 6.1 h, at "leak" two
         * evaluations in three, never held for open_after and was not found in 24 h). */
        if (floor_acf_period(s->ref, n) == 0)
                floor_destep(s->ref, n, s->slopes, s->flag);
        floor_acf_estimate(s->ref, n, ret);
        reference_without_rise(s->ref, n, &s->fit, ret);
}

/* A decelerating horizon: is it a rise that levelled off with a line on top (a leak on a
 * finished warm-up or filled cache) rather than a rise alone (see SAT_F)? The F statistic is
 * divided by the autocorrelation factor of the fit's own residuals (a wander of the floor
 * makes any extra term look needed); not by the horizon's, which a line's misfit to the
 * curve inflates. res: room for n points. */
static void sat_fit_line(const DetectPoint *p, size_t n, DetectPoint *res, FitPoints *fit, Horizon *h) {
        double span = p[n - 1].t - p[0].t, rss0, rss1, best[3], coef[3];
        const FitPoints *f;
        Rise rise, best_rise;
        FloorAcf acf;

        if (n < 8 || !(span > 0))
                return;
        f = rise_fit_points(p, n, span, fit);
        /* Every rise, finished or not (up to 100 spans: almost a line). */
        rss0 = rise_fit_best(f, false, INFINITY, coef, &rise);
        rss1 = rise_fit_best(f, true, SAT_TAU_MAX, best, &best_rise);
        if (!isfinite(rss1) || !(rss1 > 0) || !(best[2] > 0))
                return;
        rise_residuals(p, n, span, best, best_rise, res);
        h->sat_fitted = true;
        h->sat_f = rise_fit_f(res, n, rss0, rss1, &acf);
        h->sat_c = best[2] / span;
        if (!(h->sat_f >= SAT_F))
                return;
        h->sat_line = true;
        h->sat_t0 = p[0].t;
        h->sat_b = best[1];
        h->sat_rise = (Rise) { best_rise.shape, best_rise.s * span };
}


/* The fewest points a horizon of points grouped by `group` needs: as many as make min_points
 * windows, at least GROUPED_MIN_POINTS (or min_points when that is fewer). Without it, an
 * aliased sawtooth that floor_group() groups by 6 or 8 left every horizon shorter than 2-3 h
 * unevaluated (20 points of 6-8 min): its leaks were found after 2 h from the start at the
 * earliest, and at 5.7 h when grouped by 8 (a 170 min horizon waiting for its twice). */
static size_t horizon_min_points(const DetectConfig *c, size_t group) {
        size_t need = (c->min_points + group - 1) / group,
               lowest = c->min_points < GROUPED_MIN_POINTS ? c->min_points : GROUPED_MIN_POINTS;

        return need > lowest ? need : lowest;
}

/* Is h of a length that may confirm itself on a young process (SELF_MIN_LENGTH to
 * SELF_MAX_HORIZONS minimum horizons)? */
static bool horizon_self_length(const DetectConfig *c, const Horizon *h) {
        return h->horizon >= SELF_MIN_LENGTH * c->min_horizon_seconds * (1 - 1e-9) &&
               h->horizon <= SELF_MAX_HORIZONS * c->min_horizon_seconds * (1 + 1e-9);
}

static void horizon_compute(const DetectConfig *c, const Points *p, size_t lo, size_t min_group, double horizon,
                            Scratch *s, Horizon *h) {
        size_t group, n = floor_coarsen(p, lo, points_n(p), min_group, s->pts, &group), n1, spanned = n;
        double mid, se1, se2;
        FloorAcf acf;

        n = floor_drop_spikes(c, s->pts, n, s->slopes, s->flag);
        *h = (Horizon) {
                .horizon = horizon,
                .since = n > 0 ? s->pts[0].t : 0,
                .first_index = lo,
                .points = n,
                .group = group,
                .p_value = 1,
                .p_self = 1,
        };
        /* Enough points is asked of the points the horizon spans, before the spike filter: a
         * horizon of exactly 10 groups (120 min of a floor grouped by 12) lost one to the
         * filter whenever a group missed the sawtooth's trough, and "not enough data" between
         * its verdicts kept it from three in a row (benchmark series 1443: 1.5 %/h from 5.6 h
         * under a 28 % / 14 min sawtooth, found 2.8 h after its onset, 2.0 h now). Up to 20
         * points Mann-Kendall's tail is exact (step 3), and each half still needs
         * HALF_MIN_POINTS. */
        if (spanned < horizon_min_points(c, group) || n < 2)
                return;

        /* The halves split the horizon's time span in the middle. */
        mid = (s->pts[0].t + s->pts[n - 1].t) / 2;
        for (n1 = 0; n1 < n && s->pts[n1].t < mid; n1++)
                ;
        if (n1 < HALF_MIN_POINTS || n - n1 < HALF_MIN_POINTS)
                return;

        h->enough = true;
        /* The whole horizon's evidence is weighed with the autocorrelation of the history
         * before it too; the halves only compare slopes with each other, with their own. */
        reference_acf(c, p, lo, points_n(p) - lo, group, s, &acf);
        trend_compute(s->pts, n, s->slopes, s->vals, s->idx, floor_acf_variance_factor(&acf, n), &h->whole);
        h->p_value = trend_p_increasing(&h->whole);
        h->tau = trend_tau(&h->whole);
        /* The in-horizon Hamed-Rao factor sums the significant lags of residuals around the
         * horizon's own slope, negative ones too: a wander that the slope mostly swallows
         * leaves residuals whose long lags are negative, and the factor stays small. The
         * estimate of the reference (positive lags only, up to the first non-significant one)
         * is not fooled that way; a self-confirmation (no history beyond the horizon to
         * measure it on) must pass it on the horizon's own points, counted past positive lags
         * that are not significant: a GC sawtooth aliased by the windows can make one lag
         * small between correlated ones and hide a wander as long as the horizon. */
        floor_acf_estimate_past_dips(s->pts, n, &acf);
        {
                double own = floor_acf_variance_factor(&acf, n);
                Trend t = h->whole;
                size_t period = 0;

                /* A floor that is periodic (a GC sawtooth left in it: slower than the windows
                 * and not taken out by step 1's groups, or slower than any group) is weighed over
                 * its first period, where its swings cancel, when that weighs less: up to the
                 * first non-positive lag a sawtooth of ten points counts as a wander, and a
                 * young process's 4 %/h under an 11 % / 590 s sawtooth waited with p_self 2e-6
                 * where p was 1e-10 (benchmark series 1031). Only where a self-confirmation can
                 * follow (the test is O(n^2 / 4)); p_self >= p_value, so p_value must pass. */
                if (h->p_value < c->alpha_leak * SELF_ALPHA_SCALE && (lo == 0 || horizon_self_length(c, h))) {
                        period = floor_acf_period(s->pts, n);
                        if (period > 0) {
                                double over_period = floor_acf_periodic_factor(s->pts, n, period);

                                if (over_period < own)
                                        own = over_period;
                        }
                }
                if (own > t.n_ratio)
                        t.var_s *= own / t.n_ratio;
                h->p_self = trend_p_increasing(&t);
                h->periodic = lo == 0 && horizon > SELF_MAX_HORIZONS * c->min_horizon_seconds * (1 + 1e-9) &&
                              h->p_self < c->alpha_leak * SELF_ALPHA_SCALE && period > 0;
        }
        trend_compute(s->pts, n1, s->slopes, s->vals, s->idx, 1, &h->first);
        trend_compute(s->pts + n1, n - n1, s->slopes, s->vals, s->idx, 1, &h->second);
        se1 = (h->first.high - h->first.low) / (2 * TREND_Z_975);
        se2 = (h->second.high - h->second.low) / (2 * TREND_Z_975);
        h->decelerating = h->first.slope > 0 && h->second.slope < DECEL_RATIO * h->first.slope &&
                          h->first.slope - h->second.slope > DECEL_Z * sqrt(se1 * se1 + se2 * se2);
        /* A horizon that bends at all is fitted too: a young process's horizon is judged on
         * its fit even when its bend is not significant (horizon_young_sat()). */
        if (h->decelerating || h->second.slope < SELF_HALVES_RATIO * h->first.slope)
                sat_fit_line(s->pts, n, s->ref, &s->fit, h); /* the reference is used up: its room is free */
        /* The newer half too, with half the steps: a warm-up's steps at the start of a young
         * process's horizon must not lend a high-water mark after it the count it lacks. */
        h->few_steps = c->high_water && (floor_few_steps(s->pts, n, STEP_MIN_STEPS) ||
                                         floor_few_steps(s->pts + n1, n - n1, STEP_MIN_STEPS / 2));
}

/* The practical size (bytes per hour) that growth from `current` must reach. */
static double practical_size(const DetectConfig *c, double current) {
        double need = c->min_growth_relative_per_hour * current;

        return need > c->min_growth_absolute_per_hour ? need : c->min_growth_absolute_per_hour;
}

/* Does horizon h show growth at all: a significant increasing trend of practical size,
 * whatever its shape? (Hysteresis: an open finding closes only after evaluations without it.) */
static bool horizon_growing(const DetectConfig *c, double current, const Horizon *h) {
        double need = practical_size(c, current);

        return h->enough && h->p_value < c->alpha_suspect && h->whole.s > 0 && h->whole.slope > 0 &&
               h->whole.slope * 3600 >= need;
}

/* Growth that keeps an open finding open: the thresholds of horizon_growing() relaxed
 * (hysteresis on the statistics too, not only on the count of evaluations), so a leak right
 * at the practical size does not open and close with every wobble of its p-value or slope.
 * The newer half must still grow too: a horizon long enough to hold a rise that has stopped
 * (a cache now full) would otherwise keep the finding open for hours after the growth. */
#define SUSTAIN_ALPHA 1e-2
#define SUSTAIN_SIZE 0.5

static bool horizon_sustained(const DetectConfig *c, double current, const Horizon *h) {
        double need = practical_size(c, current);

        return h->enough && h->p_value < SUSTAIN_ALPHA && h->whole.s > 0 && h->whole.slope > 0 &&
               h->whole.slope * 3600 >= SUSTAIN_SIZE * need && h->second.slope * 3600 >= SUSTAIN_SIZE * need;
}

/* Can horizon h stand in for the confirmation over twice its length, which the history does
 * not hold yet? Only on overwhelming evidence of growth that does not bend (see above). */
static bool horizon_self_confirmed(const DetectConfig *c, double current, const Horizon *h) {
        double need = practical_size(c, current);

        return (horizon_self_length(c, h) || h->periodic) &&
               h->p_self < c->alpha_leak * SELF_ALPHA_SCALE && h->whole.low * 3600 >= need &&
               h->first.slope > 0 && h->second.slope >= SELF_HALVES_RATIO * h->first.slope &&
               (h->first.slope + h->second.slope) / 2 >= SELF_MEAN_RATIO * h->whole.slope;
}

/* Is the longest horizon the whole history of a process younger than SELF_MIN_HORIZONS
 * minimum horizons (90 min)? Then twice a horizon is most of the process's life and does not
 * confirm it: over its first hour a cache that fills for 2-3 h grows almost linearly (its
 * rate falls to 0.6-0.8 of what it was, which the halves of an hour resolve only now and
 * then), and the longer horizons that would show it slowing down do not exist yet. (No
 * horizon of such a process is long enough to confirm itself either.) */
static bool young_history(const DetectConfig *c, const Horizon *longest) {
        return longest->first_index == 0 &&
               longest->horizon < SELF_MIN_HORIZONS * c->min_horizon_seconds * (1 - 1e-9);
}

/* May h confirm itself although it is shorter than SELF_MIN_HORIZONS (see SELF_MIN_LENGTH)?
 * Not when longest, the longest horizon, is the whole history of the process and its older
 * half falls: a leak from the start grows in both halves, a wander of the floor that went
 * down before it came up again does not (churn 876, 100 min old: halves -0.63 and +2.70 %/h).
 * Nor when h's halves grow, on average, faster than its whole slope by more than
 * 1 / SELF_MEAN_RATIO: the level fell between them, a wander again (the floor of
 * test_wander_does_not_confirm_itself's churn 1100, 85 min halves of +3.5 and +5.0 %/h over a
 * whole of +2.6, alarmed at 1.8 h without this, at ratios of 1.5-1.65; of the four leaks the
 * shorter horizon finds before 2 h, flat 481 reached 1.43 and is found about 10 min later
 * for it, at 1.97 h; batch 251 and sawtooth 1379 stayed at or below 1.11, and
 * cache 1433 confirms itself by its fit, horizon_young_sat()). */
static bool horizon_self_guarded(const DetectConfig *c, const Horizon *h, const Horizon *longest) {
        if (h->horizon >= SELF_MIN_HORIZONS * c->min_horizon_seconds * (1 - 1e-9))
                return true;
        if ((h->first.slope + h->second.slope) / 2 > h->whole.slope / SELF_MEAN_RATIO)
                return false;
        return !(longest->first_index == 0 && longest->enough && !(longest->first.slope >= 0));
}

/* Does twice, the horizon of twice h's length, show h's growth beginning after a floor that
 * held still (a leak's onset in an old process)? Its older half's slope is zero within its 95 %
 * interval and well below h's (below CONFIRM_RATIO of it: otherwise twice confirms h the
 * ordinary way), its newer half grows at h's rate. A wander that went down before it came up
 * again does not: its older half falls. Then h may confirm itself on its own evidence
 * (horizon_self_confirmed()), as on a young process, instead of waiting until twice's slope,
 * half flat, catches up. */
static bool horizon_onset(const Horizon *twice, const Horizon *h) {
        return twice->first.low <= 0 && twice->first.high >= 0 &&
               twice->first.slope < CONFIRM_RATIO * h->whole.slope &&
               twice->second.slope >= CONFIRM_RATIO * h->whole.slope;
}

/* Is the growth of h undone over the longer horizon j: no trend there even at UNDONE_ALPHA,
 * though its older half does not hold still (its slope's 95 % interval is not inside
 * +-CONFIRM_RATIO times h's slope; a half holding a drop has a wide interval)? Memory
 * that leaked stays: every longer time scale shows it, unless the leak began within it, and
 * then the older half of that longer horizon is flat. A floor that rises and drops back — the
 * post-GC floor of a sawtooth slower than the window, a full collection every hour or two
 * resetting what the younger generations let grow, churn that wanders up and back down —
 * shows growth on one horizon and its twice (both inside one rise), and nothing on the
 * horizons that hold a drop: 4 of the 150 leak-free sawtooths of a 2400-series benchmark run
 * alarmed that way, a 30-42 min horizon confirmed by its twice while every horizon from 85 min
 * to a day showed no trend (p 0.08-0.57). */
static bool horizon_undone(const Horizon *j, const Horizon *h) {
        double bound = CONFIRM_RATIO * h->whole.slope;
        bool older_still = j->first.low > -bound && j->first.high < bound;

        return j->enough && !(j->p_value < UNDONE_ALPHA && j->whole.slope > 0) && !older_still;
}

/* A young process's horizon of SELF_MIN_HORIZONS to SELF_MAX_HORIZONS (as
 * horizon_self_confirmed()) that bends because it holds a rise that levelled off before its
 * newer half, with a line on top that the newer half grows along (a leak from the process's
 * start on a warm-up or a cache): the fit of sat_fit_line() with the thresholds that lift a
 * longer horizon's veto, the newer half standing in for the shorter horizon, and the newer
 * half's slope significantly above zero. Then the bend is the rise, not the growth: it
 * confirms itself. The evidence is the fit's F (SAT_F, discounted by its residuals' own
 * autocorrelation), not p_self: around a straight line the curve's misfit inflates the
 * horizon's own factor (p_self 3e-5 on a 6 %/h leak on a finished warm-up, 103 min old). */
static bool horizon_young_sat(const DetectConfig *c, double current, const Horizon *h) {
        double end = h->since + h->horizon, mid = h->since + h->horizon / 2, left, line;

        if (!horizon_self_length(c, h) || !h->sat_line ||
            h->sat_c * 3600 < practical_size(c, current) || h->sat_c < CONFIRM_RATIO * h->second.slope ||
            !(h->second.low > 0))
                return false;
        left = h->sat_b * rise_left(h->sat_rise, mid - h->sat_t0);
        line = h->sat_c * (end - mid);
        return left <= SAT_LEFT * line;
}

/* Does the longer horizon j, which decelerates, show a rise that levelled off before h
 * begins with a line on top that accounts for h's growth (a leak on a finished warm-up or a
 * filled cache)? Then its deceleration is the old rise, not h's growth: no veto. */
static bool sat_line_explains(const DetectConfig *c, double current, const Horizon *j, const Horizon *h) {
        double end = h->since + h->horizon, left, line;

        if (!j->sat_line || j->sat_c * 3600 < practical_size(c, current) ||
            j->sat_c < CONFIRM_RATIO * h->whole.slope)
                return false;
        /* What is left of the rise when h begins, against the line's rise over h. */
        left = j->sat_b * rise_left(j->sat_rise, h->since - j->sat_t0);
        line = j->sat_c * (end - h->since);
        return left <= SAT_LEFT * line;
}

/* Is the deceleration of the longer horizon hs[j] the end of a rise with h's growth on top:
 * by hs[j]'s own fit, or by that of a horizon longer still, up to LOOKBACK_FACTOR times h
 * (which holds all of hs[j])? Over hs[j] alone a rise that ended early in it and a line are
 * hard to tell from one slow rise (an exponential of a few spans is almost a line that bends
 * a little), so its F stays small; a longer horizon that also holds the fast part of the rise
 * is not fitted by one exponential, and its F is decisive (a 6.5 %/h leak on a 56 min warm-up:
 * the 4 h horizon at F < 25, the 6 h one far above, for hours). */
static bool sat_line_explained(const DetectConfig *c, double current, const Horizon *hs, size_t nh, size_t j,
                               const Horizon *h) {
        for (size_t k = j; k < nh && hs[k].horizon <= LOOKBACK_FACTOR * h->horizon * (1 + 1e-9); k++)
                if (hs[k].enough && sat_line_explains(c, current, &hs[k], h))
                        return true;
        return false;
}

/* The verdict of horizon hs[i] (horizons in increasing length), which may look at the longer
 * ones: growth that is real on one time scale must not contradict the next ones. */
static void horizon_decide(const DetectConfig *c, double current, Horizon *hs, size_t nh, size_t i) {
        Horizon *h = &hs[i];
        const Horizon *twice = NULL;
        Horizon newer;
        double ratio_slope;
        bool first_ok, second_ok, young_sat;
        /* how the growth was confirmed, for the reason of a leak (the trace, the findings) */
        const char *confirmed = "steady growth";

        h->verdict = VERDICT_NONE;
        if (!h->enough) {
                h->reason = "not enough data";
                return;
        }
        if (!(h->p_value < c->alpha_suspect) || h->whole.s <= 0) {
                h->reason = "no significant trend";
                return;
        }
        if (!h->growing) {
                h->reason = "below practical size";
                return;
        }
        if (h->few_steps) {
                h->reason = "a few steps of a high-water mark";
                return;
        }
        for (size_t j = i + 1; j < nh && !twice; j++)
                if (hs[j].horizon >= 2 * h->horizon * (1 - 1e-9))
                        twice = &hs[j];
        /* A young process's horizon that holds a finished rise with a line on top: the halves
         * compare the rise with the line, so its fit judges its shape instead. */
        young_sat = (!twice || !twice->enough) && horizon_young_sat(c, current, h);
        ratio_slope = c->halves_ratio * h->whole.slope;
        first_ok = h->first.slope >= ratio_slope;
        second_ok = h->second.slope >= ratio_slope || young_sat;
        if (!first_ok && !second_ok) {
                h->reason = "one-time step";
                return;
        }
        if (!second_ok || (h->decelerating && !young_sat)) {
                h->reason = "levelling off";
                return;
        }
        if (!first_ok) {
                /* Flat, then growing: if it is a leak, a shorter horizon will show it. */
                h->reason = "growth began within the horizon";
                return;
        }
        /* The longer horizons, up to LOOKBACK_FACTOR times this one: if one of them slows
         * down, what we see is the tail of something that grew faster before — a warm-up, a
         * cache filling up — and a leak does not do that. */
        /* For young_sat, the growth a longer horizon's line must explain is the newer half's. */
        newer = *h;
        if (young_sat) {
                newer.since = h->since + h->horizon / 2;
                newer.horizon = h->horizon / 2;
                newer.whole = h->second;
        }
        for (size_t j = i + 1; j < nh && hs[j].horizon <= LOOKBACK_FACTOR * h->horizon * (1 + 1e-9); j++)
                if (hs[j].enough && hs[j].decelerating && !sat_line_explained(c, current, hs, nh, j, &newer)) {
                        h->reason = "levelling off over a longer horizon";
                        return;
                }
        /* A leak keeps growing on the next time scale too; a wander of the floor (churn with a
         * long correlation time, a slow cycle) goes back down. So unless this is the longest
         * horizon there can be, twice this horizon must be there and grow at a comparable
         * rate. On a young process this also waits for history beyond the first horizon:
         * there, a warm-up and a leak look the same; and until 90 min (young_history()). */
        if (h->horizon < c->max_horizon_seconds) {
                bool alone = !twice || !twice->enough;

                if (alone && !young_sat &&
                    !(horizon_self_confirmed(c, current, h) && horizon_self_guarded(c, h, &hs[nh - 1]))) {
                        h->reason = "growth not yet confirmed over a longer horizon";
                        return;
                }
                if (young_history(c, &hs[nh - 1])) {
                        h->reason = "process too young to confirm growth";
                        return;
                }
                if (twice && twice->enough &&
                    (!twice->growing || twice->whole.slope < CONFIRM_RATIO * h->whole.slope)) {
                        if (!(horizon_onset(twice, h) && horizon_self_confirmed(c, current, h))) {
                                h->reason = "growth not confirmed over a longer horizon";
                                return;
                        }
                        confirmed = "steady growth since an onset, overwhelming on its own";
                }
                if (alone)
                        confirmed = young_sat     ? "steady growth on a finished rise, by its own fit"
                                    : h->periodic ? "steady growth under a periodic floor, overwhelming on its own"
                                                  : "steady growth, overwhelming on its own";
                for (size_t j = i + 1; j < nh && hs[j].horizon <= UNDONE_FACTOR * h->horizon * (1 + 1e-9); j++)
                        if (&hs[j] != twice && horizon_undone(&hs[j], h)) {
                                h->reason = "growth undone over a longer horizon";
                                return;
                        }
        }
        if (h->cycle_rise < CYCLE_RATIO * h->whole.slope * h->horizon) { /* false when NAN */
                h->reason = "no higher than a day or a week ago (a daily or weekly cycle)";
                return;
        }
        if (h->p_value < c->alpha_leak && h->whole.low > 0) {
                h->verdict = VERDICT_LEAK;
                h->reason = confirmed;
        } else {
                h->verdict = VERDICT_SUSPECT;
                h->reason = "growth, not yet conclusive";
        }
}

/* Is a better than b? Stronger verdict; then the smaller p-value; then the shorter horizon. */
static bool horizon_better(const Horizon *a, const Horizon *b) {
        if (a->verdict != b->verdict)
                return a->verdict > b->verdict;
        if (a->p_value != b->p_value)
                return a->p_value < b->p_value;
        return a->horizon < b->horizon;
}

/* Hand every horizon of this evaluation to a tracer (series_detector_set_trace()). */
static void trace_horizons(DetectTraceFn trace, void *userdata, double now, double current, const Horizon *hs,
                           size_t nh) {
        DetectHorizonTrace t[MAX_HORIZONS];

        for (size_t i = 0; i < nh; i++)
                t[i] = (DetectHorizonTrace) {
                        .horizon = hs[i].horizon,
                        .since = hs[i].since,
                        .points = (unsigned) hs[i].points,
                        .group = (unsigned) hs[i].group,
                        .verdict = hs[i].verdict,
                        .reason = hs[i].reason ? hs[i].reason : "",
                        .p_value = hs[i].p_value,
                        .p_self = hs[i].p_self,
                        .slope = hs[i].whole.slope,
                        .slope_low = hs[i].whole.low,
                        .slope_high = hs[i].whole.high,
                        .older_slope = hs[i].first.slope,
                        .newer_slope = hs[i].second.slope,
                        .line_fitted = hs[i].sat_fitted,
                        .line_f = hs[i].sat_f,
                        .line_slope = hs[i].sat_c,
                };
        trace(userdata, now, current, t, nh);
}

static int evaluate_points(const DetectConfig *c, const Points *p, DetectTraceFn trace, void *userdata,
                           DetectResult *ret) {
        Horizon hs[MAX_HORIZONS];
        size_t n = points_n(p), nh = 0, best, lo, group;
        double last_t, span, current, limit;
        bool growing;
        Scratch *s;
        Scratch scratch;

        if (detect_config_validate(c, NULL, 0) < 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                const DetectPoint *q = points_at(p, i);
                if (!isfinite(q->t) || !isfinite(q->v))
                        return -EINVAL;
                if (i > 0 && !(q->t > points_at(p, i - 1)->t))
                        return -EINVAL;
        }

        if (n == 0) {
                *ret = (DetectResult) { .verdict = VERDICT_NONE, .p_value = 1, .reason = "not enough data" };
                return 0;
        }

        last_t = points_at(p, n - 1)->t;
        current = points_at(p, n - 1)->v;
        span = last_t - points_at(p, 0)->t;
        limit = span < c->max_horizon_seconds ? span : c->max_horizon_seconds;
        s = &scratch;

        if (span >= c->min_horizon_seconds) {
                group = floor_group(p, s->slopes);
                /* min_horizon doubling while shorter than what there is (or may be looked at),
                 * then that: the max horizon, or the whole history when it is shorter. */
                for (double h = c->min_horizon_seconds; h < limit && nh < MAX_HORIZONS - 1; h *= HORIZON_STEP)
                        horizon_compute(c, p, points_lower_bound(p, last_t - h), group, h, s, &hs[nh++]);
                lo = limit >= span ? 0 : points_lower_bound(p, last_t - limit);
                /* Unless it holds the same points as the last doubling did. */
                if (nh == 0 || lo < hs[nh - 1].first_index)
                        horizon_compute(c, p, lo, group, limit, s, &hs[nh++]);
        }

        if (nh == 0) {
                if (trace)
                        trace(userdata, last_t, current, NULL, 0);
                *ret = (DetectResult) {
                        .verdict = VERDICT_NONE,
                        .p_value = 1,
                        .horizon = span,
                        .since = points_at(p, 0)->t,
                        .points = (unsigned) (n < DETECT_MAX_POINTS ? n : DETECT_MAX_POINTS),
                        .current = current,
                        .reason = "not enough data",
                };
                return 0;
        }

        /* Growth first, for every horizon: a verdict looks at the longer ones. */
        for (size_t i = 0; i < nh; i++) {
                hs[i].growing = horizon_growing(c, current, &hs[i]);
                hs[i].cycle_rise = horizon_cycle_rise(p, hs[i].horizon, s->slopes);
        }
        for (size_t i = 0; i < nh; i++)
                horizon_decide(c, current, hs, nh, i);
        if (trace)
                trace_horizons(trace, userdata, last_t, current, hs, nh);

        best = 0;
        growing = false;
        for (size_t i = 0; i < nh; i++) {
                if (horizon_better(&hs[i], &hs[best]))
                        best = i;
                growing = growing || horizon_sustained(c, current, &hs[i]);
        }

        *ret = (DetectResult) {
                .verdict = hs[best].verdict,
                .slope = hs[best].whole.slope,
                .slope_low = hs[best].whole.low,
                .slope_high = hs[best].whole.high,
                .p_value = hs[best].p_value,
                .tau = hs[best].tau,
                .horizon = hs[best].horizon,
                .since = hs[best].since,
                .points = (unsigned) hs[best].points,
                .current = current,
                .reason = hs[best].reason,
                .growing = growing,
        };
        return 0;
}

int detect_evaluate(const DetectConfig *c, const DetectPoint *floor, size_t n, DetectResult *ret) {
        Points p = { .a = floor, .na = n };

        if (!c || !ret || (n > 0 && !floor))
                return -EINVAL;
        return evaluate_points(c, &p, NULL, NULL, ret);
}

int detect_time_to_limit(double current, double slope, double slope_low, double slope_high, double limit,
                         double *ret_eta, double *ret_earliest, double *ret_latest) {
        double room, eta, earliest, latest;

        if (!isfinite(current) || !isfinite(limit) || isnan(slope) || isnan(slope_low) || isnan(slope_high))
                return -EINVAL;
        if (current >= limit) {
                eta = earliest = latest = 0;
                goto done;
        }
        if (!(slope > 0) || isinf(slope))
                return -ERANGE;

        room = limit - current;
        eta = room / slope;
        /* A faster slope reaches the limit earlier; an interval that does not contain the
         * estimate (inconsistent input) is widened to it. */
        earliest = slope_high > slope ? room / slope_high : eta;
        latest = slope_low <= 0 ? INFINITY : slope_low < slope ? room / slope_low : eta;

done:
        if (ret_eta)
                *ret_eta = eta;
        if (ret_earliest)
                *ret_earliest = earliest;
        if (ret_latest)
                *ret_latest = latest;
        return 0;
}

double detect_history_seconds(const DetectConfig *c) {
        return c->max_horizon_seconds > CYCLE_HISTORY_SECONDS ? c->max_horizon_seconds : CYCLE_HISTORY_SECONDS;
}

/* ---- SeriesDetector ------------------------------------------------------------------- */

/* The floor is a ring: floor_n points starting at floor_head in an array of floor_alloc,
 * which grows (doubling) up to floor_cap; then the oldest point is overwritten. */

void series_detector_set_trace(SeriesDetector *d, DetectTraceFn fn, void *userdata) {
        if (!d)
                return;
        d->trace = fn;
        d->trace_userdata = fn ? userdata : NULL;
}

int series_detector_init(SeriesDetector *d, const DetectConfig *c) {
        double cap;

        if (!d || detect_config_validate(c, NULL, 0) < 0)
                return -EINVAL;
        cap = ceil(detect_history_seconds(c) / c->window_seconds) + 2;
        *d = (SeriesDetector) {
                .config = *c,
                .floor_cap = (size_t) cap,
                .state = VERDICT_NONE,
        };
        return 0;
}

void series_detector_done(SeriesDetector *d) {
        if (!d)
                return;
        free(d->floor);
        d->floor = NULL;
        d->floor_alloc = d->floor_head = d->floor_n = 0;
}

static int floor_push(SeriesDetector *d, DetectPoint pt) {
        if (d->floor_n == d->floor_alloc && d->floor_alloc < d->floor_cap) {
                size_t alloc = d->floor_alloc < 64 ? 64 : d->floor_alloc * 2;
                DetectPoint *f;

                if (alloc > d->floor_cap)
                        alloc = d->floor_cap;
                f = malloc(alloc * sizeof(DetectPoint));
                if (!f)
                        return -ENOMEM;
                /* Unroll the ring into the new array, oldest first. */
                for (size_t i = 0; i < d->floor_n; i++)
                        f[i] = d->floor[(d->floor_head + i) % d->floor_alloc];
                free(d->floor);
                d->floor = f;
                d->floor_alloc = alloc;
                d->floor_head = 0;
        }
        if (d->floor_n == d->floor_alloc) {
                /* Full at capacity: the oldest point leaves. */
                d->floor[d->floor_head] = pt;
                d->floor_head = (d->floor_head + 1) % d->floor_alloc;
        } else
                d->floor[(d->floor_head + d->floor_n++) % d->floor_alloc] = pt;
        return 0;
}

static Points floor_points(const SeriesDetector *d) {
        size_t first = d->floor_alloc - d->floor_head;

        if (d->floor_n <= first)
                return (Points) { .a = d->floor + d->floor_head, .na = d->floor_n };
        return (Points) { .a = d->floor + d->floor_head, .na = first, .b = d->floor, .nb = d->floor_n - first };
}

static void hysteresis(SeriesDetector *d, const DetectResult *r, double t, bool *ret_changed) {
        LeakVerdict old = d->state, v = r->verdict;
        /* Quiet: no growth at all. While a finding is open, an evaluation that still sees the
         * memory grow but doubts its shape ("levelling off": a leak whose rate varies with
         * traffic) keeps it open; only the absence of growth closes it. */
        bool quiet = d->state == VERDICT_NONE ? v == VERDICT_NONE : !r->growing;

        if (v == VERDICT_LEAK)
                d->leak_streak++;
        else
                d->leak_streak = 0;
        if (v >= VERDICT_SUSPECT)
                d->suspect_streak++;
        else
                d->suspect_streak = 0;
        if (quiet)
                d->quiet_streak++;
        else
                d->quiet_streak = 0;

        /* Up only on a streak (one evaluation shares most of its data with the previous one,
         * but a streak still rejects the short-lived flukes of the shortest horizons); down
         * only after a longer quiet streak, so a borderline series does not flap. A leak that
         * weakens to "suspect" stays a leak until it is quiet. */
        if (d->state < VERDICT_LEAK && d->leak_streak >= d->config.open_after)
                d->state = VERDICT_LEAK;
        else if (d->state == VERDICT_NONE && d->suspect_streak >= d->config.open_after)
                d->state = VERDICT_SUSPECT;
        else if (d->state != VERDICT_NONE && d->quiet_streak >= d->config.close_after)
                d->state = VERDICT_NONE;

        if (d->state != old)
                d->state_since = t;
        if (ret_changed)
                *ret_changed = d->state != old;
}

/* Is the history (the floor so far and the window open now) shorter than young_history()'s
 * SELF_MIN_HORIZONS minimum horizons? */
static bool floor_young(const SeriesDetector *d) {
        double oldest = d->floor_n > 0 ? d->floor[d->floor_head].t : d->window_start;

        return d->window_start - oldest < SELF_MIN_HORIZONS * d->config.min_horizon_seconds;
}

int series_detector_add(SeriesDetector *d, double t, double v, bool *ret_changed) {
        double w, start;
        Points p;
        DetectResult result;
        int r;

        if (!d || !isfinite(t) || !isfinite(v))
                return -EINVAL;
        if (d->window_open && t < d->window_last_t)
                return -EINVAL;

        w = d->config.window_seconds;
        /* Windows are aligned to multiples of the window length since the epoch, so the
         * daemon and `heapwatch analyze` cut the same windows whatever the first sample. */
        start = floor(t / w) * w;

        if (!d->window_open) {
                d->window_open = true;
                d->window_start = start;
                d->window_min = v;
                d->window_last_t = t;
                d->state_since = t;
                if (ret_changed)
                        *ret_changed = false;
                return 0;
        }

        if (t < d->window_start + w) {
                if (v < d->window_min)
                        d->window_min = v;
                d->window_last_t = t;
                if (ret_changed)
                        *ret_changed = false;
                return 0;
        }

        /* After a gap of a minimum horizon or more in the history of a young process (a
         * machine suspended, a clock stepped forward at boot), its history begins again: the
         * minutes before the gap and the warm-up after it made one horizon of hours, too long
         * for the young-process rules (young_history()), and a warm-up was taken for a leak
         * (8 h gap 10 min into a warm-up of 60 min: a finding for 10 h; found by review). An
         * older history keeps its points: its horizons have history on both sides. */
        if (start - d->window_start > w + d->config.min_horizon_seconds && floor_young(d)) {
                d->floor_n = 0;
                d->floor_head = 0;
                d->window_start = start;
                d->window_min = v;
                d->window_last_t = t;
                if (ret_changed)
                        *ret_changed = false;
                return 0;
        }

        /* The sample closes the window: its minimum (the post-GC floor) is dated by the
         * window's start, which keeps floor points on a regular grid. */
        r = floor_push(d, (DetectPoint) { .t = d->window_start, .v = d->window_min });
        if (r < 0)
                return r;
        d->window_start = start;
        d->window_min = v;
        d->window_last_t = t;

        p = floor_points(d);
        r = evaluate_points(&d->config, &p, d->trace, d->trace_userdata, &result);
        if (r < 0)
                return r;
        d->last = result;
        d->evaluated = true;
        hysteresis(d, &result, t, ret_changed);
        return 1;
}

int series_detector_floor(const SeriesDetector *d, DetectPoint **ret, size_t *ret_n) {
        DetectPoint *f;
        Points p;

        if (!d || !ret || !ret_n)
                return -EINVAL;
        if (d->floor_n == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        f = malloc(d->floor_n * sizeof(DetectPoint));
        if (!f)
                return -ENOMEM;
        p = floor_points(d);
        memcpy(f, p.a, p.na * sizeof(DetectPoint));
        if (p.nb > 0)
                memcpy(f + p.na, p.b, p.nb * sizeof(DetectPoint));
        *ret = f;
        *ret_n = d->floor_n;
        return 0;
}
