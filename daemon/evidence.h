/* SPDX-License-Identifier: MIT */
/*
 * What a process's samples say about *why* its memory grows, kept per process beside its leak
 * detectors: a thinned history of the allocator and GC figures (glibc malloc in use and free,
 * pymalloc arenas, Python blocks and the heap profiler's live bytes, gc.garbage, collections,
 * collected objects, time in GC, time with GC disabled) that spans the whole process life in at
 * most EVIDENCE_POINTS points, so the trend of each figure over any finding's span can be
 * measured; and the GC's configuration changes seen between samples (disabled, re-enabled,
 * thresholds changed) as events. Fixed size, no allocation, no I/O; classify.c turns a span's
 * trends into a classification.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

#define EVIDENCE_POINTS 128
#define EVIDENCE_EVENTS_MAX 8
#define EVIDENCE_GENERATIONS 3

/* One point: the minimum of level figures over its span (the post-GC floor, as the leak
 * detectors use), the last value of counters. NaN: not known in that span. */
typedef enum EvidenceFigure {
        EVIDENCE_RSS,              /* bytes */
        EVIDENCE_PYTHON_LIVE,      /* bytes, the heap profiler's live estimate */
        EVIDENCE_PYTHON_BLOCKS,    /* sys.getallocatedblocks() */
        EVIDENCE_ARENA_BYTES,      /* pymalloc arenas in use x arena size */
        EVIDENCE_MALLOC_IN_USE,    /* uordblks + hblkhd */
        EVIDENCE_MALLOC_FREE,      /* fordblks */
        EVIDENCE_GC_GARBAGE,       /* len(gc.garbage) */
        _EVIDENCE_LEVEL_MAX,
        /* counters (last value) */
        EVIDENCE_GC_FINALIZERS = _EVIDENCE_LEVEL_MAX, /* gc.garbage entries with a finalizer */
        EVIDENCE_GC_PAUSE,         /* seconds in GC since the daemon first saw the process */
        EVIDENCE_GC_DISABLED,      /* seconds with GC disabled, same origin */
        EVIDENCE_GC_COLLECTIONS0,  /* gc.get_stats() collections of generation 0, 1, 2 */
        EVIDENCE_GC_COLLECTIONS1,
        EVIDENCE_GC_COLLECTIONS2,
        EVIDENCE_GC_COLLECTED0, /* ... and objects they collected */
        EVIDENCE_GC_COLLECTED1,
        EVIDENCE_GC_COLLECTED2,
        EVIDENCE_GC_FINALIZERS_COLLECTED, /* collected objects with a finalizer (young collections) */
        _EVIDENCE_FIGURE_MAX,
} EvidenceFigure;

typedef struct EvidencePoint {
        double time; /* of the newest sample folded in */
        double start; /* of the first */
        double v[_EVIDENCE_FIGURE_MAX];
} EvidencePoint;

typedef enum GcEventKind {
        GC_EVENT_DISABLED,
        GC_EVENT_ENABLED,
        GC_EVENT_THRESHOLDS,
} GcEventKind;

const char *gc_event_kind_to_string(GcEventKind k); /* "gc_disabled", "gc_enabled", "thresholds_changed" */

typedef struct GcEvent {
        double time;
        GcEventKind kind;
        int64_t thresholds[EVIDENCE_GENERATIONS]; /* after the change */
} GcEvent;

typedef struct ProcessEvidence {
        EvidencePoint points[EVIDENCE_POINTS];
        size_t n_points;
        double spacing; /* seconds a point spans at least; doubles at each compaction */

        /* running sums from the first sample */
        bool started;
        double last_time;
        bool last_enabled;
        int64_t first_thresholds[EVIDENCE_GENERATIONS];
        int64_t last_thresholds[EVIDENCE_GENERATIONS];
        double gc_pause_total;
        double gc_disabled_total;
        int64_t gc_disabled_changes; /* enabled -> disabled transitions seen */
        int64_t gc_enabled_changes;  /* disabled -> enabled */
        int64_t gc_threshold_changes;
        double gc_disabled_since; /* 0 while enabled */

        GcEvent events[EVIDENCE_EVENTS_MAX]; /* the newest, oldest first */
        size_t n_events;

        /* For the per-sample ratio of time in GC: the previous sample's time. */
        double recent_gc_ratio; /* exponentially weighted over ~1 min; NaN until two samples */
} ProcessEvidence;

void process_evidence_init(ProcessEvidence *e);

/* Fold one sample in. python_live_bytes: the heap profiler's live estimate (< 0 unknown). */
void process_evidence_add(ProcessEvidence *e, const HwSample *s, double python_live_bytes);

/* Trends over [from, to] (seconds since the epoch), from the kept points. */
typedef struct EvidenceSpan {
        double from, to; /* the points' actual span */
        size_t points;
        double slope[_EVIDENCE_LEVEL_MAX]; /* per second, least squares; NaN unknown */
        double first[_EVIDENCE_FIGURE_MAX], last[_EVIDENCE_FIGURE_MAX]; /* NaN unknown */
} EvidenceSpan;

/* Returns 0 and *ret, or -ENODATA when fewer than 3 points fall in the span. */
int process_evidence_span(const ProcessEvidence *e, double from, double to, EvidenceSpan *ret);

/* The change of counter f over the span (last - first), NaN unknown. */
double evidence_span_delta(const EvidenceSpan *s, EvidenceFigure f);
