/* SPDX-License-Identifier: MIT */
/* Order statistics for the leak detector: see order-stats.h. */

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "order-stats.h"

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Floyd and Rivest's SELECT (1975): on a range of more than SELECT_SAMPLE_MIN values the
 * pivot is first selected, recursively, from a sample around the k-th's expected place, so
 * that one partition leaves the k-th in a small range near it (about n + min(k, n - k)
 * comparisons, where quickselect with a median-of-three pivot, which shorter ranges use, takes
 * about 2.75 n). Each partition is Lomuto's without a branch on the comparison: comparisons
 * of slopes are coin flips to a branch predictor, and with Hoare's partition and its branches
 * Theil-Sen's order statistics of 7140 slopes were a third of the detector's time. A range
 * with no value below its pivot is split at the values equal to it (runs of equal slopes:
 * quantised memory, plateaus). If a range has not shrunk to one value after 2 log2(n) + 4
 * rounds the input is adversarial and the range is sorted, so the worst case stays
 * O(n log n) whatever an agent sends. */
#define SELECT_SAMPLE_MIN 600

/* Values of a[left..right) below pivot (or_equal: and those equal to it) to its start, in the
 * order met; returns the end of them. */
static size_t partition_below(double *a, size_t left, size_t right, double pivot, bool or_equal) {
        size_t j = left;

        if (or_equal)
                for (size_t i = left; i < right; i++) {
                        double x = a[i];

                        a[i] = a[j];
                        a[j] = x;
                        j += x <= pivot;
                }
        else
                for (size_t i = left; i < right; i++) {
                        double x = a[i];

                        a[i] = a[j];
                        a[j] = x;
                        j += x < pivot;
                }
        return j;
}

double order_select(double *a, size_t n, size_t k) {
        size_t left = 0, right = n; /* the answer is in [left, right) */
        unsigned budget = 4;

        for (size_t m = n; m > 1; m >>= 1)
                budget += 2;
        while (right - left > 1) {
                size_t j;
                double pivot;

                if (budget-- == 0) {
                        qsort(a + left, right - left, sizeof(double), cmp_double);
                        break;
                }
                if (right - left > SELECT_SAMPLE_MIN) {
                        /* the pivot: the k-th of a sample of size s = n^(2/3) / 2 around k,
                         * offset by sd as Floyd and Rivest do; the range's k-th is then likely
                         * within a few sd of it, and the next round's range small */
                        double size = (double) (right - left), rank = (double) (k - left + 1), z = log(size),
                               s = 0.5 * exp(2 * z / 3), sd = 0.5 * sqrt(z * s * (size - s) / size),
                               lo = (double) k - rank * s / size + (rank < size / 2 ? -sd : sd),
                               hi = (double) k + (size - rank) * s / size + (rank < size / 2 ? -sd : sd);
                        size_t from = lo > (double) left ? (size_t) lo : left,
                               to = hi < (double) (right - 1) ? (size_t) hi : right - 1;

                        pivot = order_select(a + from, to - from + 1, k - from);
                } else {
                        /* the median of the range's ends and middle */
                        double x = a[left], y = a[left + (right - left) / 2], w = a[right - 1];

                        pivot = x < y ? (y < w ? y : (x < w ? w : x)) : (x < w ? x : (y < w ? w : y));
                }
                j = partition_below(a, left, right, pivot, false);
                if (k < j) {
                        right = j;
                        continue;
                }
                if (j == left) {
                        /* nothing below the pivot: are we among the values equal to it? */
                        j = partition_below(a, left, right, pivot, true);
                        if (k < j)
                                return pivot;
                }
                left = j;
        }
        return a[k];
}
