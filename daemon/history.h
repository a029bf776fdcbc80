/* SPDX-License-Identifier: MIT */
/*
 * Per-process in-memory history: a bounded ring of compact samples (a timestamp and one double
 * per series metric), oldest overwritten first. The ring grows lazily up to its capacity so
 * short-lived processes cost little. Not thread-safe (the daemon has one event loop).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sample.h"

/* The metrics kept as history and served by /api/v1/processes/{id}/series?metric=NAME. */
typedef enum HistoryMetric {
        HISTORY_RSS_BYTES,
        HISTORY_VM_BYTES,
        HISTORY_THREADS,
        HISTORY_CGROUP_MEMORY_BYTES,
        HISTORY_PYTHON_ALLOCATED_BLOCKS,
        HISTORY_GC_COUNT_GEN0,
        HISTORY_GC_COUNT_GEN1,
        HISTORY_GC_COUNT_GEN2,
        HISTORY_GC_COLLECTIONS_GEN0,
        HISTORY_GC_COLLECTIONS_GEN1,
        HISTORY_GC_COLLECTIONS_GEN2,
        HISTORY_GC_COLLECTED_TOTAL,
        HISTORY_GC_UNCOLLECTABLE_TOTAL,
        HISTORY_GC_GARBAGE,
        HISTORY_GC_PAUSE_SECONDS,     /* total GC pause in the interval before the sample */
        HISTORY_GC_PAUSE_MAX_SECONDS, /* longest GC pause in that interval */
        _HISTORY_METRIC_MAX,
} HistoryMetric;

/* "rss_bytes" etc.; NULL for out-of-range. */
const char *history_metric_to_string(HistoryMetric m);
/* Returns the metric or -EINVAL. */
int history_metric_from_string(const char *s);

typedef struct HistoryPoint {
        double time;
        double values[_HISTORY_METRIC_MAX];
} HistoryPoint;

typedef struct History History;

/* capacity: the most points kept (> 0). Returns NULL on OOM. */
History *history_new(size_t capacity);
History *history_free(History *h);

/* Append a point made from a sample. Points must come in increasing time; a point not newer
 * than the last one is refused with -EINVAL. Returns 0 or -ENOMEM/-EINVAL. */
int history_append(History *h, const HwSample *s);
/* Extract the compact values from a sample (exposed for tests and the API). */
void history_point_from_sample(HistoryPoint *p, const HwSample *s);

size_t history_size(const History *h);
size_t history_capacity(const History *h);
/* i-th oldest point, 0 <= i < history_size(); NULL otherwise. */
const HistoryPoint *history_get(const History *h, size_t i);
/* Index of the first point with time >= t (history_size() if none). Binary search. */
size_t history_lower_bound(const History *h, double t);
