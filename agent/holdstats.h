/* SPDX-License-Identifier: MIT */
/*
 * Durations of a section the host can feel, kept cheaply enough to stay always on: how long the
 * sampler thread holds the GIL per tick (the host's Python threads cannot run meanwhile), and
 * how long a heap report holds the heap profiler's lock (a host thread that samples an
 * allocation meanwhile waits for it). Recording is two clock reads around the section and a
 * store into a ring of the latest HW_HOLDSTATS_KEPT durations, plus a count and an all-time
 * maximum; percentiles are computed only when someone asks (heapwatch.status(), bench/).
 *
 * No lock: the caller serialises record and summary (module.c records and reads both under the
 * GIL).
 */
#pragma once

#include <stdint.h>

#define HW_HOLDSTATS_KEPT 1024u /* latest durations kept for percentiles */

struct hw_holdstats {
        uint64_t count;   /* sections recorded since the last reset */
        uint64_t max_ns;  /* longest since the last reset */
        uint64_t total_ns;
        uint32_t ring_ns[HW_HOLDSTATS_KEPT]; /* the latest min(count, KEPT), saturated at ~4.3 s */
};

struct hw_holdstats_summary {
        uint64_t count;
        double p50_us, p99_us;  /* over the latest min(count, KEPT) sections; 0 when count == 0 */
        double max_us, mean_us; /* since the last reset */
        uint32_t window;        /* how many sections the percentiles cover */
};

void hw_holdstats_reset(struct hw_holdstats *h);

/* Record one section of d_ns nanoseconds. */
void hw_holdstats_record(struct hw_holdstats *h, uint64_t d_ns);

/* Percentiles (nearest rank) and maximum. Never fails. */
void hw_holdstats_summarize(const struct hw_holdstats *h, struct hw_holdstats_summary *ret);

/* CLOCK_MONOTONIC in nanoseconds (for the two reads around a section). */
uint64_t hw_holdstats_now_ns(void);
