/* SPDX-License-Identifier: MIT */
/* daemon/detect-floor.c on its own: a ring of floor points seen in order (points_*), minima
 * of groups aligned to the newest point (floor_coarsen_by(), floor_coarsen()), the group
 * size for an aliased GC sawtooth (floor_group()), batch spikes dropped while growth and
 * wander stay (floor_drop_spikes()), one-time steps taken out (floor_destep()) and a
 * high-water mark's few steps told from growth and noise (floor_few_steps()), on small
 * hand-made floors and deterministic synthetic ones. */

#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect-floor.h"
#include "helper-random.h"

/* Five points in two segments: times 100..300 in the first, 400 and 500 in the second. */
START_TEST(test_points_ring) {
        static const DetectPoint a[] = { { 100, 1 }, { 200, 2 }, { 300, 3 } }, b[] = { { 400, 4 }, { 500, 5 } };
        static const struct {
                double t;
                size_t lower, upper; /* first index with time >= t, > t */
        } cases[] = {
                { 50, 0, 0 },  { 100, 0, 1 }, { 150, 1, 1 }, { 300, 2, 3 }, { 350, 3, 3 },
                { 400, 3, 4 }, { 450, 4, 4 }, { 500, 4, 5 }, { 600, 5, 5 },
        };
        Points p = { .a = a, .na = 3, .b = b, .nb = 2 };
        Points only_a = { .a = a, .na = 3 }, only_b = { .b = b, .nb = 2 }, none = { 0 };

        ck_assert_uint_eq(points_n(&p), 5);
        for (size_t i = 0; i < 5; i++)
                ck_assert_ptr_eq(points_at(&p, i), i < 3 ? &a[i] : &b[i - 3]);
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
                ck_assert_msg(points_lower_bound(&p, cases[k].t) == cases[k].lower, "lower bound of %g", cases[k].t);
                ck_assert_msg(points_upper_bound(&p, cases[k].t) == cases[k].upper, "upper bound of %g", cases[k].t);
        }
        /* one segment empty, either one; both */
        ck_assert_uint_eq(points_n(&only_a), 3);
        ck_assert_uint_eq(points_lower_bound(&only_a, 300), 2);
        ck_assert_uint_eq(points_upper_bound(&only_a, 300), 3);
        ck_assert_uint_eq(points_lower_bound(&only_a, 301), 3);
        ck_assert_uint_eq(points_n(&only_b), 2);
        ck_assert_ptr_eq(points_at(&only_b, 0), &b[0]);
        ck_assert_uint_eq(points_lower_bound(&only_b, 500), 1);
        ck_assert_uint_eq(points_upper_bound(&only_b, 400), 1);
        ck_assert_uint_eq(points_upper_bound(&only_b, 399), 0);
        ck_assert_uint_eq(points_n(&none), 0);
        ck_assert_uint_eq(points_lower_bound(&none, 0), 0);
        ck_assert_uint_eq(points_upper_bound(&none, 0), 0);
}
END_TEST

/* Eleven points a minute apart, split 4 / 7 in a ring, values 5 3 9 7 | 2 8 6 4 1 10 11.
 * Groups of 3 over all 11: aligned to the end, 3 whole groups, points 0 and 1 left over:
 *   points 2-4 (9 7 2, across the segments), dated t2 = 120: 2;
 *   points 5-7 (8 6 4), t5 = 300: 4;   points 8-10 (1 10 11), t8 = 480: 1.
 * Groups of 2 over [3, 9): 3 groups from point 3: (7 2) -> 2 at 180, (8 6) -> 6 at 300,
 * (4 1) -> 1 at 420. Groups of 4 over [0, 11): 2 groups from point 3: (7 2 8 6) -> 2 at
 * 180, (4 1 10 11) -> 1 at 420. */
static const double ring_v[11] = { 5, 3, 9, 7, 2, 8, 6, 4, 1, 10, 11 };

static Points ring_11(DetectPoint *pts) {
        static DetectPoint ring[11];

        for (size_t i = 0; i < 11; i++)
                pts[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = ring_v[i] };
        /* a ring: the newest points first in memory, the oldest four at the end */
        memcpy(ring, pts + 4, 7 * sizeof ring[0]);
        memcpy(ring + 7, pts, 4 * sizeof ring[0]);
        return (Points) { .a = ring + 7, .na = 4, .b = ring, .nb = 7 };
}

static void check_points(const DetectPoint *got, size_t n_got, const DetectPoint *want, size_t n_want) {
        ck_assert_uint_eq(n_got, n_want);
        for (size_t i = 0; i < n_want; i++)
                ck_assert_msg(got[i].t == want[i].t && got[i].v == want[i].v, "point %zu: (%g, %g), want (%g, %g)", i,
                              got[i].t, got[i].v, want[i].t, want[i].v);
}

START_TEST(test_coarsen_by) {
        static const DetectPoint by3[] = { { 120, 2 }, { 300, 4 }, { 480, 1 } },
                                 by2[] = { { 180, 2 }, { 300, 6 }, { 420, 1 } },
                                 by4[] = { { 180, 2 }, { 420, 1 } };
        DetectPoint pts[11], out[11];
        Points p = ring_11(pts);

        check_points(out, floor_coarsen_by(&p, 0, 11, 3, out), by3, 3);
        check_points(out, floor_coarsen_by(&p, 3, 9, 2, out), by2, 3);
        check_points(out, floor_coarsen_by(&p, 0, 11, 4, out), by4, 2);
        /* groups of one: the points themselves */
        check_points(out, floor_coarsen_by(&p, 0, 11, 1, out), pts, 11);
        /* fewer points than a group: nothing */
        ck_assert_uint_eq(floor_coarsen_by(&p, 5, 9, 5, out), 0);
}
END_TEST

/* More points than DETECT_MAX_POINTS (120) are grouped by ceil(m / 120): 250 -> 3 (83 groups,
 * the first from point 1), 240 -> 2 (120), 241 -> 3 (80, from point 1); up to 120, by
 * min_group. Values rise with the index, so a group's minimum is its first point's value. */
START_TEST(test_coarsen) {
        static const struct {
                size_t lo, end, min_group, group, n;
        } cases[] = {
                { 0, 250, 1, 3, 83 }, { 0, 250, 5, 5, 50 }, { 10, 250, 1, 2, 120 }, { 9, 250, 1, 3, 80 },
                { 0, 120, 1, 1, 120 }, { 0, 121, 1, 2, 60 }, { 30, 150, 4, 4, 30 },
        };
        static DetectPoint pts[250], out[250];
        Points p = { .a = pts, .na = 100, .b = pts + 100, .nb = 150 };

        for (size_t i = 0; i < 250; i++)
                pts[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = 1000 + (double) i };
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
                size_t group = 0, n = floor_coarsen(&p, cases[k].lo, cases[k].end, cases[k].min_group, out, &group),
                       first = cases[k].end - cases[k].n * cases[k].group;

                ck_assert_msg(group == cases[k].group && n == cases[k].n, "case %zu: %zu points of %zu", k, n, group);
                ck_assert_uint_le(n, DETECT_MAX_POINTS);
                for (size_t i = 0; i < n; i++) {
                        ck_assert(out[i].t == pts[first + i * group].t);
                        ck_assert(out[i].v == pts[first + i * group].v);
                }
        }
}
END_TEST

/* A day of floor points (1440 windows of 60 s) of Gaussian noise: the minima of more points
 * shrink only slowly (about x0.7 from 1 to 10 points), never by half from one group size to
 * the next: no grouping. Neither for a floor that holds still, nor one too short to judge
 * (fewer than 11 points). */
START_TEST(test_group_noise) {
        static DetectPoint pts[SAW_MAX_POINTS];
        static double buf[2 * SAW_MAX_POINTS];
        Points p = { .a = pts, .na = SAW_MAX_POINTS };

        for (unsigned long long seed = 1; seed <= 4; seed++) {
                unsigned long long state = seed * 0x9e3779b97f4a7c15ull;

                for (size_t i = 0; i < SAW_MAX_POINTS; i++)
                        pts[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = 1e8 + 1e6 * gauss(&state) };
                ck_assert_uint_eq(floor_group(&p, buf), 1);
        }
        for (size_t i = 0; i < SAW_MAX_POINTS; i++)
                pts[i].v = 1e8;
        ck_assert_uint_eq(floor_group(&p, buf), 1);
        p.na = 10;
        for (size_t i = 0; i < 10; i++)
                pts[i].v = i % 2 ? 1e8 : 2e8;
        ck_assert_uint_eq(floor_group(&p, buf), 1);
}
END_TEST

/* A GC sawtooth longer than the window: the heap climbs by `amp` over `period` seconds and
 * drops back, sampled every 10 s, with a little noise; the floor is the minimum of each 60 s
 * window. A window catches the ramp at whatever phase it starts in, so consecutive floor
 * points jump by a good part of the amplitude. */
static void sawtooth_floor(DetectPoint *pts, size_t n, double t0, double period, double amp, double noise,
                           unsigned long long seed) {
        unsigned long long state = seed;
        double phase0 = uniform(&state) * period;

        for (size_t w = 0; w < n; w++) {
                double min = INFINITY;

                for (int j = 0; j < 6; j++) {
                        double t = t0 + 60.0 * (double) w + 10.0 * j, ramp = fmod(t + phase0, period) / period;
                        double v = 1e8 * (1 + amp * ramp + noise * gauss(&state));

                        if (v < min)
                                min = v;
                }
                pts[w] = (DetectPoint) { .t = t0 + 60.0 * (double) w, .v = min };
        }
}

/* Which group size? A group of g windows holds the sample right after a drop (the trough,
 * within 10 s of the ramp's bottom) when the drop falls in a stretch of 60 g s: for
 * 60 g = f P (f < 1) with probability f. floor_group() compares groups with the g windows after
 * them: two adjacent stretches of f P, both holding a drop when the first one's drop, at x
 * in [0, f P), is followed by the next at x + P < 2 f P: probability 2 f - 1. Their minima's
 * median difference collapses to the noise once that is most pairs, f > 3/4, and not before;
 * a larger size then halves nothing more. Periods where the sizes tried (2 3 4 6 8 12 16)
 * are clearly on either side of 3/4:
 *   186 s (3.1 windows): 2 -> f 0.65, 3 -> 0.97;   258 s: 3 -> 0.70, 4 -> 0.93;
 *   500 s: 6 -> 0.72, 8 -> 0.96;                   840 s: 8 -> 0.57, 12 -> 0.86.
 * A day of windows, 10 % sawtooth, 0.1 % noise, four phases each. */
START_TEST(test_group_sawtooth) {
        static const struct {
                double period;
                size_t group;
        } cases[] = { { 186, 3 }, { 258, 4 }, { 500, 8 }, { 840, 12 } };
        enum { OLDER = 1600, N = OLDER + SAW_MAX_POINTS }; /* more than the newest day */
        static DetectPoint pts[N];
        static double buf[2 * SAW_MAX_POINTS];
        /* a ring: the day in two segments */
        Points p = { .a = pts + OLDER, .na = 700, .b = pts + OLDER + 700, .nb = SAW_MAX_POINTS - 700 };
        Points longer = { .a = pts, .na = 700, .b = pts + 700, .nb = N - 700 };
        unsigned long long state = 3;

        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
                for (unsigned long long seed = 1; seed <= 4; seed++) {
                        size_t g;

                        sawtooth_floor(pts + OLDER, SAW_MAX_POINTS, 60.0 * OLDER, cases[k].period, 0.1, 0.001, seed * 7919);
                        g = floor_group(&p, buf);
                        ck_assert_msg(g == cases[k].group, "period %g s, seed %llu: group %zu, want %zu",
                                      cases[k].period, seed, g, cases[k].group);
                }
        /* Only the newest day counts: a sawtooth before it changes nothing, ... */
        for (size_t i = 0; i < N; i++)
                pts[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = 1e8 * (1 + 0.001 * gauss(&state)) };
        sawtooth_floor(pts, OLDER, 0, 258, 0.1, 0.001, 1);
        ck_assert_uint_eq(floor_group(&longer, buf), 1);
        /* ... and noise before it neither. */
        sawtooth_floor(pts + OLDER, SAW_MAX_POINTS, 60.0 * OLDER, 258, 0.1, 0.001, 1);
        for (size_t i = 0; i < OLDER; i++)
                pts[i].v = 1e8 * (1 + 0.001 * gauss(&state));
        ck_assert_uint_eq(floor_group(&longer, buf), 4);
}
END_TEST

/* Four hours of floor points a minute apart; the spike filter's envelopes are half and one
 * min_horizon (30 min: 15 and 30 points) wide. */
#define SPIKE_N 240

static DetectConfig spike_config(void) {
        DetectConfig c;

        detect_config_default(&c);
        ck_assert_double_eq(c.min_horizon_seconds, 1800);
        return c;
}

/* Returns how many points floor_drop_spikes() kept; each kept point must be one of the input's,
 * unchanged and in order. *ret_wrong counts the points whose fate is not want_drop's. */
static size_t drop_spikes(const DetectPoint *in, size_t n, const bool *want_drop, size_t *ret_wrong) {
        static DetectPoint p[SPIKE_N];
        static double buf[4 * SPIKE_N];
        static bool flag[SPIKE_N];
        DetectConfig c = spike_config();
        size_t m, j = 0, wrong = 0;

        memcpy(p, in, n * sizeof p[0]);
        m = floor_drop_spikes(&c, p, n, buf, flag);
        ck_assert_uint_le(m, n);
        /* the kept points are the input's, in order: walk both */
        for (size_t i = 0; i < n; i++) {
                bool kept = j < m && p[j].t == in[i].t;

                if (kept) {
                        ck_assert(p[j].v == in[i].v);
                        j++;
                }
                wrong += kept == want_drop[i];
        }
        ck_assert_uint_eq(j, m);
        *ret_wrong = wrong;
        return m;
}

/* A flat floor (1 % noise) with batches every 50 min that hold +50 % for 3 windows: every
 * batch point goes, every other point stays. Then one more batch, in progress at the end:
 * the interior has spikes, so an end point of their size goes too. Then the batches on a
 * leak of 2 %/h under 0.1 % noise: the batches go, but the leak's newest points, which stand
 * above the 30 before them by 1 % (10 noise sigmas: more than the 6 an interior point needs)
 * stay: far less than half the batches' height, which an end point must reach. */
START_TEST(test_drop_spikes_batches) {
        static DetectPoint in[SPIKE_N];
        static bool drop[SPIKE_N];
        unsigned long long state = 42;
        size_t wrong, batch_points = 0;

        for (size_t i = 0; i < SPIKE_N; i++) {
                drop[i] = i >= 40 && i % 50 >= 40 && i % 50 < 43; /* 40-42, 90-92, 140-142, 190-192 */
                in[i] = (DetectPoint) { .t = 1e9 + 60.0 * (double) i, .v = 1e8 * (1 + 0.01 * gauss(&state)) };
                if (drop[i]) {
                        in[i].v += 5e7;
                        batch_points++;
                }
        }
        ck_assert_uint_eq(batch_points, 12);
        ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N - 12);
        ck_assert_uint_eq(wrong, 0);

        for (size_t i = SPIKE_N - 2; i < SPIKE_N; i++) {
                in[i].v += 5e7;
                drop[i] = true;
        }
        ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N - 14);
        ck_assert_uint_eq(wrong, 0);

        /* The benchmark's batches fill over up to 10 windows: one that has been filling for
         * 10 at the end goes as well, although most of the 15 points before its newest one
         * are its own ramp; the floor before the ramp held still */
        for (size_t i = SPIKE_N - 10; i < SPIKE_N; i++) {
                double share = (double) (i - (SPIKE_N - 11)) / 10; /* 0.1, 0.2, ..., 1 */

                in[i].v += 5e7 * (share - (i >= SPIKE_N - 2));
                drop[i] = share > 0.45; /* of the interior spikes' size (half their height) */
        }
        ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N - 18);
        ck_assert_uint_eq(wrong, 0);

        for (size_t i = 0; i < SPIKE_N; i++) {
                drop[i] = i >= 40 && i % 50 >= 40 && i % 50 < 43;
                in[i].v = 1e8 * (1 + 0.02 * (double) i / 60 + 0.001 * gauss(&state) + (drop[i] ? 0.5 : 0));
        }
        ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N - 12);
        ck_assert_uint_eq(wrong, 0);
}
END_TEST

/* What must stay whole: a leak's floor (it stands above what came before, not above what
 * follows), with its newest points well above the older ones and no interior spike to make
 * them look like one in progress; a step up that holds (it stands above neither side); a
 * sawtooth slower than the envelopes (a ramp of 20 % over 100 min, then a drop: its top
 * stands above both sides by the ramp over 15-30 min, 3-6 %, but the floor does not return
 * to where it was: the left side is the ramp, the right the bottom, 14-17 % apart); and a
 * slow wander (two waves of 1.5 % of the floor, periods of 6 and 9.7 h, under 0.1 % noise:
 * over the widest envelope, 30 points, its crests stand above both sides by at most
 * 1.5 % (1 - cos(2 pi 30/360)) + 1.5 % (1 - cos(2 pi 30/582)) = 0.28 %, under 3 noise sigmas
 * where the limit is 6). Nothing goes, four seeds each. */
START_TEST(test_drop_spikes_keeps_growth_and_wander) {
        static DetectPoint in[SPIKE_N];
        static bool drop[SPIKE_N];
        size_t wrong;

        for (unsigned long long seed = 1; seed <= 4; seed++) {
                unsigned long long state = seed * 0x9e3779b97f4a7c15ull;
                double ph1, ph2;

                /* 2 %/h under 0.2 % noise */
                for (size_t i = 0; i < SPIKE_N; i++)
                        in[i] = (DetectPoint) { .t = 1e9 + 60.0 * (double) i,
                                                .v = 1e8 * (1 + 0.02 * (double) i / 60 + 0.002 * gauss(&state)) };
                ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N);
                ck_assert_uint_eq(wrong, 0);

                /* +30 % from point 100 on, 0.5 % noise */
                for (size_t i = 0; i < SPIKE_N; i++)
                        in[i].v = 1e8 * (1 + (i >= 100 ? 0.3 : 0) + 0.005 * gauss(&state));
                ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N);
                ck_assert_uint_eq(wrong, 0);

                /* the slow sawtooth, 0.1 % noise */
                for (size_t i = 0; i < SPIKE_N; i++)
                        in[i].v = 1e8 * (1 + 0.2 * (double) ((i + 37 * seed) % 100) / 100 + 0.001 * gauss(&state));
                ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N);
                ck_assert_uint_eq(wrong, 0);

                /* the wander, at a random phase */
                ph1 = 2 * M_PI * uniform(&state);
                ph2 = 2 * M_PI * uniform(&state);
                for (size_t i = 0; i < SPIKE_N; i++) {
                        double m = (double) i;
                        in[i].v = 1e8 * (1 + 0.015 * sin(2 * M_PI * m / 360 + ph1) + 0.015 * sin(2 * M_PI * m / 582 + ph2) +
                                         0.001 * gauss(&state));
                }
                ck_assert_uint_eq(drop_spikes(in, SPIKE_N, drop, &wrong), SPIKE_N);
                ck_assert_uint_eq(wrong, 0);
        }
}
END_TEST

/* A smooth floor's crests are not spikes. The noise limit comes from the jumps between
 * consecutive points, which a smooth wave keeps tiny, and a wave's crest stands above both
 * sides of its envelope and returns to where it was, as a batch does; but it stands on its own
 * slopes, not on a floor that holds still (SPIKE_FLAT). Before that rule a 2 % wave of 4 h
 * (240 points) without noise lost its crest (points 57-63) and, the interior then "having
 * spikes", its newest 30 points as a spike in progress; under a 1 %/h leak the leak's newest
 * 30. Without noise every point now stays; at 0.1 % noise a noise peak on the crest's top
 * still counts (see SPIKE_FLAT). */
START_TEST(test_drop_spikes_keeps_smooth_crests) {
        static DetectPoint in[SPIKE_N];
        static bool drop[SPIKE_N];
        size_t wrong;

        for (unsigned leak = 0; leak <= 1; leak++)
                for (double period = 240; period <= 480; period *= 2) {
                        for (size_t i = 0; i < SPIKE_N; i++) {
                                double m = (double) i;
                                in[i] = (DetectPoint) { .t = 1e9 + 60 * m,
                                                        .v = 1e8 * (1 + 0.02 * sin(2 * M_PI * m / period) +
                                                                    (leak ? 0.01 * m / 60 : 0)) };
                        }
                        ck_assert_msg(drop_spikes(in, SPIKE_N, drop, &wrong) == SPIKE_N && wrong == 0,
                                      "wave of %.0f points, leak %u: points dropped", period, leak);
                }
}
END_TEST

/* The same 2 % wave of 4 h under a 1 %/h leak, at 0.1 % noise, 40 noise draws: a noise peak on
 * a crest's top still counts as a spike, but one that barely clears the noise limit does not
 * make the ends judged (SPIKE_END_CLEAR): otherwise the leak's newest climb, from the wave's
 * trough, which held still, was taken for a batch in progress (9 of these 40 draws lost 18-29
 * of their newest 30 points). The draws whose crest peaks stand well clear of the limit still
 * do: 3 of 40 (docs/detection.md, "What it does not do"). */
START_TEST(test_drop_spikes_keeps_a_noisy_waves_newest_climb) {
        static DetectPoint in[SPIKE_N], p[SPIKE_N];
        static double buf[4 * SPIKE_N];
        static bool flag[SPIKE_N];
        DetectConfig c = spike_config();
        unsigned losing = 0;

        for (unsigned long long seed = 1; seed <= 40; seed++) {
                unsigned long long state = seed * 0x9e3779b97f4a7c15ull;
                size_t m;
                bool lost = false;

                for (size_t i = 0; i < SPIKE_N; i++) {
                        double x = (double) i;

                        in[i] = (DetectPoint) { .t = 1e9 + 60 * x,
                                                .v = 1e8 * (1 + 0.02 * sin(2 * M_PI * x / 240) + 0.01 * x / 60 +
                                                            0.001 * gauss(&state)) };
                }
                memcpy(p, in, sizeof p);
                m = floor_drop_spikes(&c, p, SPIKE_N, buf, flag);
                ck_assert_uint_ge(m, 30);
                for (size_t j = 1; j <= 30; j++)
                        lost |= p[m - j].t != in[SPIKE_N - j].t;
                losing += lost;
        }
        ck_assert_msg(losing <= 3, "%u of 40 noisy waves lost some of their newest 30 points", losing);
}
END_TEST

/* A leak under a sawtooth slower than the short envelope (28 %, 43 points: series 1875 of the
 * benchmark, 9 %/h, 0.4 % noise): the ramp tops of the interior go as spikes at the long
 * envelope (k = 30: the top stands above both sides, which differ by less than half its
 * height, and the floor after the drop climbs slowly), but the newest ramp is not a batch in
 * progress: before its start, the trough, the floor was climbing the previous ramp, not holding
 * still. Dropping it took the newest 15 points of the leak away (the leak was found 1.3 h
 * later on that series). */
START_TEST(test_drop_spikes_keeps_a_newest_ramp) {
        static DetectPoint in[SPIKE_N], p[SPIKE_N];
        static double buf[4 * SPIKE_N];
        static bool flag[SPIKE_N];
        DetectConfig c = spike_config();
        unsigned long long state = 7;
        size_t m;

        for (size_t i = 0; i < SPIKE_N; i++) {
                double x = (double) i;

                in[i] = (DetectPoint) { .t = 1e9 + 60 * x,
                                        .v = 1e8 * (1 + 0.28 * fmod(x, 43) / 43 + 0.09 * x / 60 + 0.004 * gauss(&state)) };
        }
        memcpy(p, in, sizeof p);
        m = floor_drop_spikes(&c, p, SPIKE_N, buf, flag);
        ck_assert_msg(m < SPIKE_N - 4, "the interior tops go: %zu of %d points kept", m, SPIKE_N);
        for (size_t j = 1; j <= 15; j++)
                ck_assert_msg(p[m - j].t == in[SPIKE_N - j].t, "newest point %d dropped", SPIKE_N - (int) j);
}
END_TEST

/* A one-time step of +40 % between points 99 and 100 of a noisy floor (sigma = 0.1 % of the
 * level), flat or under a slope: the step's jump J is the one far beyond 6 robust deviations
 * of the jumps (noise jumps have sigma sqrt(2)); the jumps either side of it are noise that
 * does not go its way by 2 deviations in these seeds, so it takes no edge. J is replaced by
 * the mean of the other 198 jumps, trend = (v199 - v0 - J) / 198, and everything after it
 * moves with it: exactly, points 0-99 stay and every later point moves by trend - J. So no
 * jump of the result is larger than the noise's own (at most 5 sigma here), and the floor's
 * slope survives: trend is the slope give or take the noise of the two ends and of the step's
 * jump over 198 jumps (at most 24 sigma / 198 for noise bounded by 6 sigma). */
START_TEST(test_destep) {
        enum { N = 200 };
        static DetectPoint p[N], orig[N];
        static double buf[N];
        static bool step[N];
        const double sigma = 1e5;

        for (unsigned long long seed = 1; seed <= 4; seed++) {
                unsigned long long state = seed * 0x9e3779b97f4a7c15ull;
                double slope = seed % 2 ? 0 : 2e4, max_noise_jump = 0, max_jump = 0, jump, trend;

                for (size_t i = 0; i < N; i++) {
                        orig[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = 1e8 + slope * (double) i + sigma * gauss(&state) };
                        if (i >= 100)
                                orig[i].v += 4e7;
                        if (i > 0 && i != 100)
                                max_noise_jump = fmax(max_noise_jump, fabs(orig[i].v - orig[i - 1].v - slope));
                }
                jump = orig[100].v - orig[99].v;
                trend = (orig[N - 1].v - orig[0].v - jump) / (N - 2);
                memcpy(p, orig, sizeof p);
                floor_destep(p, N, buf, step);
                for (size_t i = 0; i < N; i++) {
                        ck_assert(p[i].t == orig[i].t);
                        if (i < 100)
                                ck_assert(p[i].v == orig[i].v);
                        else
                                ck_assert_double_eq_tol(p[i].v, orig[i].v - jump + trend, 1e-6);
                }
                for (size_t i = 1; i < N; i++)
                        max_jump = fmax(max_jump, fabs(p[i].v - p[i - 1].v - slope));
                ck_assert_msg(max_jump <= max_noise_jump + 1e-6, "seed %llu: jump %g, the noise's %g", seed, max_jump,
                              max_noise_jump);
                ck_assert_double_le(max_jump, 5 * sigma);
                ck_assert_double_eq_tol(trend, slope, 24 * sigma / (N - 2));
        }
}
END_TEST

/* A step that ramps over five points, as a load that takes minutes: +0.6 % (a partial first
 * window), +10 % three times, +0.6 % (a partial last one), under 0.1 % noise (sigma). The
 * jumps' robust deviation is the noise's, sigma sqrt(2): the +10 % jumps are far beyond 6 of
 * them (a run of steps); the partial ones, 6e5 = 4.2 deviations, are not steps on their own
 * but edges of the run (beyond 2, the same way). All five go: the result's jumps are all the
 * noise's (none above the largest noise jump elsewhere, nor 5 sigma), and the level after
 * the ramp comes down by the whole 31.2 % (give or take the noise of the points at either end
 * of the ramp: 12 sigma at most). Without a step, and with fewer than ACF_MIN_POINTS (20)
 * points, nothing changes. */
static double ramp(size_t i) {
        static const double level[] = { 6e5, 1.06e7, 2.06e7, 3.06e7, 3.12e7 };

        return i < 100 ? 0 : level[i - 100 < 4 ? i - 100 : 4];
}

START_TEST(test_destep_ramp_and_nothing) {
        enum { N = 200 };
        static DetectPoint p[N], orig[N];
        static double buf[N];
        static bool step[N];
        const double sigma = 1e5;
        unsigned long long state = 99;
        double max_jump = 0, max_noise_jump = 0;

        for (size_t i = 0; i < N; i++) {
                orig[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = 1e8 + sigma * gauss(&state) + ramp(i) };
                if (i > 0 && (i < 100 || i > 104))
                        max_noise_jump = fmax(max_noise_jump, fabs(orig[i].v - orig[i - 1].v));
        }
        memcpy(p, orig, sizeof p);
        floor_destep(p, N, buf, step);
        for (size_t i = 1; i < N; i++)
                max_jump = fmax(max_jump, fabs(p[i].v - p[i - 1].v));
        ck_assert_double_le(max_jump, max_noise_jump + 1e-6);
        ck_assert_double_le(max_jump, 5 * sigma);
        ck_assert_double_eq_tol(p[N - 1].v - orig[N - 1].v, -3.12e7, 12 * sigma);

        /* no step: the same floor without it */
        for (size_t i = 100; i < N; i++)
                orig[i].v -= ramp(i);
        memcpy(p, orig, sizeof p);
        floor_destep(p, N, buf, step);
        ck_assert(memcmp(p, orig, sizeof p) == 0);

        /* 19 points with a step: too few to judge */
        for (size_t i = 10; i < 19; i++)
                orig[i].v += 4e7;
        memcpy(p, orig, sizeof p);
        floor_destep(p, 19, buf, step);
        ck_assert(memcmp(p, orig, 19 * sizeof p[0]) == 0);
}
END_TEST

/* The high-water mark's effective steps, (sum of rises)^2 / sum of squared rises:
 *  - 4 equal steps of 100, exactly equal in between (95 of 99 consecutive pairs equal):
 *    400^2 / (4 * 100^2) = 4: fewer than 12 (and than 4.01), not fewer than 4;
 *  - the same with a dip of 50 and back between the steps: the climbs back are no rises;
 *  - one step of 370 and three of 10: 400^2 / (370^2 + 3 * 10^2) = 1.17 steps;
 *  - 14 equal steps: 14, not fewer than 12;
 *  - a floor rising a little at every point, or noisy: not still (fewer than half the
 *    consecutive points equal): never "few steps", whatever min_steps;
 *  - a still floor that never rises above its first point: no rise, fewer than any count. */
START_TEST(test_few_steps) {
        static DetectPoint p[100];
        unsigned long long state = 5;

        for (size_t i = 0; i < 100; i++)
                p[i] = (DetectPoint) { .t = 60.0 * (double) i, .v = 1000 + 100 * (double) (i / 20) };
        ck_assert(floor_few_steps(p, 100, 12));
        ck_assert(floor_few_steps(p, 100, 4.01));
        ck_assert(!floor_few_steps(p, 100, 4));

        for (size_t i = 10; i < 100; i += 20)
                p[i].v -= 50; /* 10 more unequal pairs: 85 of 99 still */
        ck_assert(floor_few_steps(p, 100, 4.01));
        ck_assert(!floor_few_steps(p, 100, 4));

        for (size_t i = 0; i < 100; i++)
                p[i].v = 1000 + (i >= 20 ? 370 : 0) + 10 * (double) (i >= 40) + 10 * (double) (i >= 60) + 10 * (double) (i >= 80);
        ck_assert(floor_few_steps(p, 100, 1.2));
        ck_assert(!floor_few_steps(p, 100, 1.16));

        for (size_t i = 0; i < 100; i++)
                p[i].v = 1000 + 50 * (double) (i / 7); /* steps at 7, 14, ..., 98: 14 */
        ck_assert(!floor_few_steps(p, 100, 12));
        ck_assert(floor_few_steps(p, 100, 14.01));

        for (size_t i = 0; i < 100; i++)
                p[i].v = 1000 + (double) i;
        ck_assert(!floor_few_steps(p, 100, 12));
        ck_assert(!floor_few_steps(p, 100, 1000));

        for (size_t i = 0; i < 100; i++)
                p[i].v = 1000 + 10 * gauss(&state);
        ck_assert(!floor_few_steps(p, 100, 12));
        ck_assert(!floor_few_steps(p, 100, 1000));

        for (size_t i = 0; i < 100; i++)
                p[i].v = i % 25 == 24 ? 900 : 1000;
        ck_assert(floor_few_steps(p, 100, 1));
        ck_assert(!floor_few_steps(p, 1, 12));
}
END_TEST

int main(void) {
        Suite *s = suite_create("detect-floor");
        TCase *tc = tcase_create("floor");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_points_ring);
        tcase_add_test(tc, test_coarsen_by);
        tcase_add_test(tc, test_coarsen);
        tcase_add_test(tc, test_group_noise);
        tcase_add_test(tc, test_group_sawtooth);
        tcase_add_test(tc, test_drop_spikes_batches);
        tcase_add_test(tc, test_drop_spikes_keeps_growth_and_wander);
        tcase_add_test(tc, test_drop_spikes_keeps_smooth_crests);
        tcase_add_test(tc, test_drop_spikes_keeps_a_noisy_waves_newest_climb);
        tcase_add_test(tc, test_drop_spikes_keeps_a_newest_ramp);
        tcase_add_test(tc, test_destep);
        tcase_add_test(tc, test_destep_ramp_and_nothing);
        tcase_add_test(tc, test_few_steps);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
