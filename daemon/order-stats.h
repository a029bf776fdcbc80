/* SPDX-License-Identifier: MIT */
/*
 * Order statistics (internal to libhwdetect): the k-th smallest of an array, the leak
 * detector's medians (Theil-Sen's slope and its interval, robust noise estimates). Its own
 * file so that its unit test can check it against sorting on inputs made to hurt it.
 */
#pragma once

#include <stddef.h>

/* Rearrange a[0..n) (no NaN, 1 <= n, k < n) so that a[k] is the k-th smallest (from 0),
 * everything before it <= and everything after it >=; returns a[k]. O(n) expected, O(n log n)
 * at worst. */
double order_select(double *a, size_t n, size_t k);
