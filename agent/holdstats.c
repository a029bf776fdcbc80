/* SPDX-License-Identifier: MIT */
/*
 * Hold-time statistics (see holdstats.h): a ring of the latest durations, a count, a total and
 * a maximum; percentiles by sorting a copy of the ring, on demand only.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "holdstats.h"

void hw_holdstats_reset(struct hw_holdstats *h) {
        memset(h, 0, sizeof(*h));
}

void hw_holdstats_record(struct hw_holdstats *h, uint64_t d_ns) {
        h->ring_ns[h->count % HW_HOLDSTATS_KEPT] = d_ns > UINT32_MAX ? UINT32_MAX : (uint32_t) d_ns;
        h->count++;
        h->total_ns += d_ns;
        if (d_ns > h->max_ns)
                h->max_ns = d_ns;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile q (0..1] of n sorted values, n > 0. */
static uint32_t rank(const uint32_t *v, size_t n, double q) {
        size_t k = (size_t) (q * (double) n + 0.999999);

        if (k < 1)
                k = 1;
        if (k > n)
                k = n;
        return v[k - 1];
}

void hw_holdstats_summarize(const struct hw_holdstats *h, struct hw_holdstats_summary *ret) {
        uint32_t v[HW_HOLDSTATS_KEPT];
        size_t n = h->count < HW_HOLDSTATS_KEPT ? (size_t) h->count : HW_HOLDSTATS_KEPT;

        memset(ret, 0, sizeof(*ret));
        ret->count = h->count;
        ret->window = (uint32_t) n;
        if (n == 0)
                return;
        memcpy(v, h->ring_ns, n * sizeof(*v));
        qsort(v, n, sizeof(*v), cmp_u32);
        ret->p50_us = rank(v, n, 0.50) / 1e3;
        ret->p99_us = rank(v, n, 0.99) / 1e3;
        ret->max_us = (double) h->max_ns / 1e3;
        ret->mean_us = (double) h->total_ns / (double) h->count / 1e3;
}

uint64_t hw_holdstats_now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}
