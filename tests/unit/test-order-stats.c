/* SPDX-License-Identifier: MIT */
/* order_select() against sorting: the k-th value, the partition around it and the multiset
 * kept, on random inputs and on the inputs that hurt selection algorithms (sorted, reversed,
 * all equal, two values, organ pipes, median-of-three killers, long runs of ties). */

#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "order-stats.h"

#define MAX_N 20000

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Deterministic pseudo-random numbers (xorshift64). */
static unsigned long long next_random(unsigned long long *state) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        return *state;
}

typedef enum Shape {
        SHAPE_RANDOM,
        SHAPE_FEW_VALUES,
        SHAPE_SORTED,
        SHAPE_REVERSED,
        SHAPE_EQUAL,
        SHAPE_TWO_VALUES,
        SHAPE_ORGAN_PIPE,
        SHAPE_MEDIAN_OF_3_KILLER,
        SHAPE_RUNS,
        SHAPE_SIGNED_ZEROS,
        _SHAPE_MAX,
} Shape;

static void fill(double *a, size_t n, Shape shape, unsigned long long *state) {
        for (size_t i = 0; i < n; i++) {
                switch (shape) {
                case SHAPE_RANDOM:
                        a[i] = (double) (next_random(state) % 1000003) / 7.0 - 50000;
                        break;
                case SHAPE_FEW_VALUES:
                        a[i] = (double) (next_random(state) % 5);
                        break;
                case SHAPE_SORTED:
                        a[i] = (double) i;
                        break;
                case SHAPE_REVERSED:
                        a[i] = (double) (n - i);
                        break;
                case SHAPE_EQUAL:
                        a[i] = 42;
                        break;
                case SHAPE_TWO_VALUES:
                        a[i] = i % 2 ? 1e300 : -1e300;
                        break;
                case SHAPE_ORGAN_PIPE:
                        a[i] = (double) (i < n / 2 ? i : n - i);
                        break;
                case SHAPE_MEDIAN_OF_3_KILLER:
                        /* Musser's sequence: 1, k+1, 3, k+3, ..., then 2, 4, ..., 2k */
                        a[i] = i < n / 2 ? (double) (i % 2 ? n / 2 + i : i + 1) : (double) (2 * (i - n / 2) + 2);
                        break;
                case SHAPE_RUNS:
                        a[i] = (double) (i / 97);
                        break;
                case SHAPE_SIGNED_ZEROS:
                        a[i] = next_random(state) % 2 ? 0.0 : -0.0;
                        break;
                default:
                        break;
                }
        }
}

/* order_select(a, n, k) agrees with sorting: the value, the partition, the multiset. */
static void check_select(const double *input, size_t n, size_t k) {
        static double a[MAX_N], sorted[MAX_N], after[MAX_N];
        double got;

        memcpy(a, input, n * sizeof a[0]);
        memcpy(sorted, input, n * sizeof a[0]);
        qsort(sorted, n, sizeof sorted[0], cmp_double);
        got = order_select(a, n, k);
        ck_assert_msg(got == sorted[k], "n %zu k %zu: %g, sorting says %g", n, k, got, sorted[k]);
        ck_assert(a[k] == got);
        for (size_t i = 0; i < k; i++)
                ck_assert_msg(a[i] <= got, "n %zu k %zu: a[%zu] = %g above the %g at k", n, k, i, a[i], got);
        for (size_t i = k + 1; i < n; i++)
                ck_assert_msg(a[i] >= got, "n %zu k %zu: a[%zu] = %g below the %g at k", n, k, i, a[i], got);
        memcpy(after, a, n * sizeof a[0]);
        qsort(after, n, sizeof after[0], cmp_double);
        for (size_t i = 0; i < n; i++) /* == : sorting may order 0 and -0 either way */
                ck_assert_msg(after[i] == sorted[i], "n %zu k %zu: values lost or changed", n, k);
}

START_TEST(test_every_rank_of_small_arrays) {
        static double a[MAX_N];
        unsigned long long state = 0x9e3779b97f4a7c15ull;

        for (Shape shape = 0; shape < _SHAPE_MAX; shape++)
                for (size_t n = 1; n <= 40; n++) {
                        fill(a, n, shape, &state);
                        for (size_t k = 0; k < n; k++)
                                check_select(a, n, k);
                }
}
END_TEST

/* Large enough for the sampled pivots (ranges over 600) and their recursion; the ranks the
 * detector asks for (the median, its neighbours, the ends) and random ones. */
START_TEST(test_large_arrays) {
        static double a[MAX_N];
        static const size_t sizes[] = { 601, 1770, 7140, 7141, MAX_N };
        unsigned long long state = 12345;

        for (Shape shape = 0; shape < _SHAPE_MAX; shape++)
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                        size_t n = sizes[s], ranks[] = { 0, 1, (n - 1) / 2, n / 2, n - 2, n - 1,
                                                         (size_t) (next_random(&state) % n),
                                                         (size_t) (next_random(&state) % n) };

                        fill(a, n, shape, &state);
                        for (size_t r = 0; r < sizeof ranks / sizeof ranks[0]; r++)
                                check_select(a, n, ranks[r]);
                }
}
END_TEST

/* The detector selects again in the parts a selection left on either side of k (Sen's
 * interval around the median): they must hold exactly the values below and above. */
START_TEST(test_select_again_on_either_side) {
        static double a[MAX_N], sorted[MAX_N];
        unsigned long long state = 777;
        size_t n = 7140, k = (n - 1) / 2;

        for (Shape shape = 0; shape < _SHAPE_MAX; shape++) {
                fill(a, n, shape, &state);
                memcpy(sorted, a, n * sizeof a[0]);
                qsort(sorted, n, sizeof sorted[0], cmp_double);
                ck_assert(order_select(a, n, k) == sorted[k]);
                ck_assert(order_select(a, k, k - 431) == sorted[k - 431]);
                ck_assert(order_select(a + k + 1, n - k - 1, 431) == sorted[k + 1 + 431]);
                ck_assert(order_select(a + k + 1, n - k - 1, 0) == sorted[k + 1]);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("order-stats");
        TCase *tc = tcase_create("select");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_every_rank_of_small_arrays);
        tcase_add_test(tc, test_large_arrays);
        tcase_add_test(tc, test_select_again_on_either_side);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
