/* SPDX-License-Identifier: MIT */
/*
 * Per-process sample history: a ring buffer of compact points (see history.h). The buffer
 * starts small and doubles up to its capacity, so a process that lives a minute costs a minute
 * of points, and one that lives for days costs at most `capacity` points.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "macro.h"

#define HISTORY_INITIAL_ALLOC 64

struct History {
        HistoryPoint *points;
        size_t alloc;    /* allocated entries; <= capacity */
        size_t capacity; /* the most points kept */
        size_t head;     /* index of the oldest point */
        size_t size;     /* points stored */
};

static const char *const metric_names[_HISTORY_METRIC_MAX] = {
        [HISTORY_RSS_BYTES] = "rss_bytes",
        [HISTORY_VM_BYTES] = "vm_bytes",
        [HISTORY_THREADS] = "threads",
        [HISTORY_CGROUP_MEMORY_BYTES] = "cgroup_memory_bytes",
        [HISTORY_PYTHON_ALLOCATED_BLOCKS] = "python_allocated_blocks",
        [HISTORY_GC_COUNT_GEN0] = "gc_count_gen0",
        [HISTORY_GC_COUNT_GEN1] = "gc_count_gen1",
        [HISTORY_GC_COUNT_GEN2] = "gc_count_gen2",
        [HISTORY_GC_COLLECTIONS_GEN0] = "gc_collections_gen0",
        [HISTORY_GC_COLLECTIONS_GEN1] = "gc_collections_gen1",
        [HISTORY_GC_COLLECTIONS_GEN2] = "gc_collections_gen2",
        [HISTORY_GC_COLLECTED_TOTAL] = "gc_collected_total",
        [HISTORY_GC_UNCOLLECTABLE_TOTAL] = "gc_uncollectable_total",
        [HISTORY_GC_GARBAGE] = "gc_garbage",
        [HISTORY_GC_PAUSE_SECONDS] = "gc_pause_seconds",
        [HISTORY_GC_PAUSE_MAX_SECONDS] = "gc_pause_max_seconds",
};

const char *history_metric_to_string(HistoryMetric m) {
        if ((unsigned) m >= _HISTORY_METRIC_MAX)
                return NULL;
        return metric_names[m];
}

int history_metric_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _HISTORY_METRIC_MAX; i++)
                if (strcmp(s, metric_names[i]) == 0)
                        return i;
        return -EINVAL;
}

History *history_new(size_t capacity) {
        History *h;

        if (capacity == 0)
                return NULL;
        h = calloc(1, sizeof *h);
        if (!h)
                return NULL;
        h->capacity = capacity;
        return h;
}

History *history_free(History *h) {
        if (!h)
                return NULL;
        free(h->points);
        free(h);
        return NULL;
}

void history_point_from_sample(HistoryPoint *p, const HwSample *s) {
        double collected = 0, uncollectable = 0, pause = 0, pause_max = 0;

        memset(p, 0, sizeof *p);
        p->time = s->time;
        p->values[HISTORY_RSS_BYTES] = (double) s->rss_bytes;
        p->values[HISTORY_VM_BYTES] = (double) s->vm_bytes;
        p->values[HISTORY_THREADS] = (double) s->threads;
        p->values[HISTORY_CGROUP_MEMORY_BYTES] = s->has_cgroup ? (double) s->cgroup_memory_current_bytes : 0;
        p->values[HISTORY_PYTHON_ALLOCATED_BLOCKS] = (double) s->python_allocated_blocks;
        for (unsigned g = 0; g < s->gc_generations && g < HW_GC_GENERATIONS_MAX; g++) {
                if (g < 3) {
                        p->values[HISTORY_GC_COUNT_GEN0 + g] = (double) s->gc[g].count;
                        p->values[HISTORY_GC_COLLECTIONS_GEN0 + g] = (double) s->gc[g].collections;
                }
                collected += (double) s->gc[g].collected;
                uncollectable += (double) s->gc[g].uncollectable;
                pause += s->gc[g].pause_seconds_total;
                if (s->gc[g].pause_seconds_max > pause_max)
                        pause_max = s->gc[g].pause_seconds_max;
        }
        p->values[HISTORY_GC_COLLECTED_TOTAL] = collected;
        p->values[HISTORY_GC_UNCOLLECTABLE_TOTAL] = uncollectable;
        p->values[HISTORY_GC_GARBAGE] = (double) s->gc_garbage;
        p->values[HISTORY_GC_PAUSE_SECONDS] = pause;
        p->values[HISTORY_GC_PAUSE_MAX_SECONDS] = pause_max;
}

/* Make room for one more point while the buffer is below capacity: the ring is unrolled into
 * a larger array so that head is 0 again. */
static int history_grow(History *h) {
        size_t n = h->alloc ? h->alloc * 2 : HISTORY_INITIAL_ALLOC;
        HistoryPoint *p;

        if (n > h->capacity)
                n = h->capacity;
        p = malloc(n * sizeof *p);
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < h->size; i++)
                p[i] = h->points[(h->head + i) % h->alloc];
        free(h->points);
        h->points = p;
        h->alloc = n;
        h->head = 0;
        return 0;
}

int history_append(History *h, const HwSample *s) {
        HistoryPoint point;

        if (h->size > 0 && !(s->time > history_get(h, h->size - 1)->time))
                return -EINVAL;
        history_point_from_sample(&point, s);

        if (h->size == h->alloc && h->alloc < h->capacity) {
                int r = history_grow(h);
                if (r < 0)
                        return r;
        }
        if (h->size < h->alloc) {
                h->points[(h->head + h->size) % h->alloc] = point;
                h->size++;
        } else {
                /* Full at capacity: overwrite the oldest. */
                h->points[h->head] = point;
                h->head = (h->head + 1) % h->alloc;
        }
        return 0;
}

size_t history_size(const History *h) {
        return h->size;
}

size_t history_capacity(const History *h) {
        return h->capacity;
}

const HistoryPoint *history_get(const History *h, size_t i) {
        if (i >= h->size)
                return NULL;
        return &h->points[(h->head + i) % h->alloc];
}

size_t history_lower_bound(const History *h, double t) {
        size_t lo = 0, hi = h->size;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (history_get(h, mid)->time < t)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}
