/* SPDX-License-Identifier: MIT */
/*
 * Check tests of the sampler's schedule (agent/sampler.c, hw_sampler_schedule): one sample in
 * every interval at the given moment of it, the long-run rate exact, no burst after falling
 * behind; and why the moment is random: a GC sawtooth whose period is close to a multiple of
 * the interval, sampled at the start of every interval, makes the per-minute minima climb for
 * hours (an aliased "leak"); sampled at random moments, they do not.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "sampler.h"

START_TEST(test_one_sample_in_every_interval) {
        static const double moments[] = { 0, 0.5, 0.999, 0.25, 0.75, 0 };
        double slot = 100, due;

        for (unsigned k = 0; k < sizeof(moments) / sizeof(moments[0]); k++) {
                /* the sample of the interval before is taken on time, somewhere in it */
                due = hw_sampler_schedule(&slot, 10, slot + 5, moments[k]);
                ck_assert_double_eq_tol(slot, 110 + 10.0 * k, 1e-9);
                ck_assert_double_eq_tol(due, slot + 10 * moments[k], 1e-9);
                ck_assert(due >= slot && due < slot + 10);
        }
}
END_TEST

START_TEST(test_late_sample_stays_in_its_interval) {
        double slot = 0, due;

        /* Taken late, in the next interval already: that interval's sample is still its own
         * (due at once when its moment has passed), not skipped. */
        due = hw_sampler_schedule(&slot, 10, 15, 0.2);
        ck_assert_double_eq_tol(slot, 10, 1e-9);
        ck_assert_double_eq_tol(due, 12, 1e-9);
}
END_TEST

START_TEST(test_no_burst_after_falling_behind) {
        double slot = 0, due;

        /* Suspended for 3.5 intervals: the next interval starts now, one sample in it. */
        due = hw_sampler_schedule(&slot, 10, 35, 0.4);
        ck_assert_double_eq_tol(slot, 35, 1e-9);
        ck_assert_double_eq_tol(due, 39, 1e-9);
        due = hw_sampler_schedule(&slot, 10, 39, 0.9);
        ck_assert_double_eq_tol(slot, 45, 1e-9);
        ck_assert_double_eq_tol(due, 54, 1e-9);
}
END_TEST

/* A 38 % sawtooth of 59.9 s (a timer or a GC cycle about once a minute), sampled every 10 s
 * for 8 h by the schedule, moments from `moment` (NULL: at the start of every interval, as the
 * agent sampled before); the per-minute minima, as the daemon's detector keeps them. Returns
 * how much slower than white noise their 30-minute means vary: Var(means) x 30 / Var(minima),
 * about 1 for noise, far above when the minima drift together for hours. */
static double aliased_drift(double (*moment)(uint64_t *), uint64_t seed) {
        enum { MINUTES = 8 * 60, BLOCK = 30 };
        const double period = 59.9, amplitude = 0.38, interval = 10;
        double minima[MINUTES], slot = 0, t = 0, sum = 0, sum2 = 0, bsum = 0, bsum2 = 0;

        for (unsigned m = 0; m < MINUTES; m++)
                minima[m] = INFINITY;
        while (t < MINUTES * 60.0) {
                unsigned m = (unsigned) (t / 60);

                minima[m] = fmin(minima[m], amplitude * fmod(t / period, 1.0));
                t = hw_sampler_schedule(&slot, interval, t, moment ? moment(&seed) : 0);
        }
        for (unsigned m = 0; m < MINUTES; m++) {
                sum += minima[m];
                sum2 += minima[m] * minima[m];
        }
        for (unsigned b = 0; b < MINUTES / BLOCK; b++) {
                double mean = 0;

                for (unsigned m = b * BLOCK; m < (b + 1) * BLOCK; m++)
                        mean += minima[m] / BLOCK;
                bsum += mean;
                bsum2 += mean * mean;
        }
        {
                double var = sum2 / MINUTES - (sum / MINUTES) * (sum / MINUTES);
                double nb = MINUTES / BLOCK, bvar = bsum2 / nb - (bsum / nb) * (bsum / nb);

                return bvar * BLOCK / var;
        }
}

static double lcg_uniform(uint64_t *state) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (double) (*state >> 11) * 0x1.0p-53;
}

START_TEST(test_random_moments_do_not_alias) {
        double regular = aliased_drift(NULL, 0);

        /* At the start of every interval the sampled phase moves by 0.1 s a minute: the minima
         * climb and drop together over hours (measured: 15.9 times white noise's variance). */
        ck_assert_msg(regular > 8, "regular sampling: %.2f", regular);
        for (uint64_t seed = 1; seed <= 16; seed++) {
                double jittered = aliased_drift(lcg_uniform, seed);

                ck_assert_msg(jittered < 3, "seed %u: %.2f, regular %.2f", (unsigned) seed, jittered, regular);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("agent-sampler");
        TCase *tc = tcase_create("schedule");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_one_sample_in_every_interval);
        tcase_add_test(tc, test_late_sample_stays_in_its_interval);
        tcase_add_test(tc, test_no_burst_after_falling_behind);
        tcase_add_test(tc, test_random_moments_do_not_alias);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
