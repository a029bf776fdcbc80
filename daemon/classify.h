/* SPDX-License-Identifier: MIT */
/*
 * Why a leak finding's memory grows: one of Python objects retained, uncollectable or
 * uncollected cycles, native memory, fragmentation (allocator retention), or unknown, with the
 * reason in one line and one or two lines of remedy. A pure function of the evidence over the
 * finding's span (evidence.h trends, GC state, and the census of growing types and referrer
 * chains when one was taken), so it is tested with synthetic evidence, without a daemon.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum LeakClass {
        LEAK_CLASS_UNKNOWN,
        LEAK_CLASS_PYTHON_OBJECTS_RETAINED,
        LEAK_CLASS_UNCOLLECTABLE_CYCLES,
        LEAK_CLASS_NATIVE_MEMORY,
        LEAK_CLASS_FRAGMENTATION,
        _LEAK_CLASS_MAX,
} LeakClass;

/* "unknown", "python_objects_retained", "uncollectable_cycles", "native_memory",
 * "fragmentation"; NULL out of range. */
const char *leak_class_to_string(LeakClass c);

/* Rates are per second over the finding's span; NaN where unknown (no glibc figures, heap
 * profiler off, pymalloc not in use, no census). */
typedef struct ClassifyInput {
        double span_seconds;
        bool python_signal_grows; /* the Python heap detector is at suspect or leak */
        double rss_growth;        /* bytes/s: the RSS floor detector's slope, else the trend */
        double python_growth;     /* bytes/s of Python objects (heap profiler live bytes) */
        double blocks_growth;     /* pymalloc blocks/s */
        double bytes_per_block;   /* live bytes per block now, to weigh blocks (NaN: 64) */
        double arena_growth;      /* pymalloc arena bytes/s */
        double malloc_in_use_growth; /* glibc in use + mmapped, bytes/s */
        double malloc_free_growth;   /* glibc free chunks held, bytes/s */

        double garbage_added;      /* gc.garbage entries added over the span */
        double garbage_finalizers; /* gc.garbage entries with a finalizer now */
        double collected_finalizers; /* collected objects with a finalizer over the span (young
                                      * collections only; NaN unknown) */
        bool gc_known;             /* GC figures were sent at all */
        double gc_disabled_share;  /* of the span, 0..1 */
        double gen0_collections;   /* in the recent half of the span (its start may predate a
                                    * threshold change that starved the GC) */
        bool thresholds_changed;   /* at runtime, seen by the daemon */
        double threshold0;         /* generation 0's threshold now; NaN unknown */

        int census_types;  /* growing types from the census; < 0: no census taken */
        int census_chains; /* referrer chains from a root to growing objects; < 0: none searched */
        int sites;         /* allocation sites that grew (heap profiler suspects) */
} ClassifyInput;

/* Every input unknown: NaN rates, no census. */
void classify_input_init(ClassifyInput *in);

/* A generation-0 threshold this high (10x CPython's largest default, 2000 in 3.13) or 0 means
 * automatic collection is effectively off: with no collection over the span, the GC is starved.
 * Without it, no collection only means few allocations (a slow leak of large objects). */
#define CLASSIFY_THRESHOLD_STARVED 20000

#define CLASSIFY_REASON_MAX 320

typedef struct Classification {
        LeakClass cls;
        const char *detail; /* a static string naming the sub-case, e.g. "gc_disabled"; NULL */
        char reason[CLASSIFY_REASON_MAX];
        const char *remedy[2]; /* static strings; [1] may be NULL */
} Classification;

/* Classify. Never fails: without enough evidence the class is unknown and the reason says what
 * is missing. */
void classify_finding(const ClassifyInput *in, Classification *ret);
