/* SPDX-License-Identifier: MIT */
/*
 * The agent's plain-C view of what it sends: its identity (the HELLO payload) and one sample
 * (the SAMPLE/GOODBYE payload), as docs/protocol.md describes them. module.c fills these from
 * the interpreter, procstat.c from /proc and /sys, encode.c turns them into JSON frames.
 * No Python types here, so the Check tests can build them by hand.
 *
 * Integer members use -1 for "unknown": encode.c leaves such members out of the JSON.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HW_AGENT_VERSION "0.1.0"

/* Bounds from docs/protocol.md (and what the daemon accepts). Byte counts exclude the NUL. */
#define HW_AGENT_SERVICE_MAX 128
#define HW_AGENT_HOSTNAME_MAX 255
#define HW_AGENT_ARGV_MAX 64
#define HW_AGENT_ARG_MAX 1024
#define HW_AGENT_SHORT_STRING_MAX 64  /* python.version, python.implementation */
#define HW_AGENT_BUILD_STRING_MAX 256 /* python.build, python.compiler */
#define HW_AGENT_CGROUP_PATH_MAX 512
#define HW_AGENT_ID_MAX 128 /* WELCOME id */
#define HW_AGENT_GC_GENERATIONS_MAX 4

/* Interval bounds and default, seconds. */
#define HW_AGENT_INTERVAL_MIN 0.05
#define HW_AGENT_INTERVAL_MAX 3600.0
#define HW_AGENT_INTERVAL_DEFAULT 1.0

struct hw_agent_identity {
        int64_t pid;
        int64_t ppid;             /* -1: unknown */
        int64_t start_time_ticks; /* -1: unknown */
        double start_time;        /* Unix seconds; < 0: unknown */
        char *argv[HW_AGENT_ARGV_MAX]; /* owned, malloc'd; encode.c bounds and sanitizes */
        size_t argc;
        char service[HW_AGENT_SERVICE_MAX + 1];
        char hostname[HW_AGENT_HOSTNAME_MAX + 1];
        char python_version[HW_AGENT_SHORT_STRING_MAX + 1];
        char python_implementation[HW_AGENT_SHORT_STRING_MAX + 1];
        char python_build[HW_AGENT_BUILD_STRING_MAX + 1];
        char python_compiler[HW_AGENT_BUILD_STRING_MAX + 1];
        int64_t python_hexversion; /* -1: unknown */
        double interval;
};

/* Free the argv strings and reset argc; the rest is plain data. Accepts NULL. */
void hw_agent_identity_clear(struct hw_agent_identity *id);

/* Append one argv entry (copied); silently ignores entries beyond HW_AGENT_ARGV_MAX.
 * Returns 0, or -ENOMEM. */
int hw_agent_identity_add_arg(struct hw_agent_identity *id, const char *arg, size_t len);

struct hw_agent_process {
        int64_t rss_bytes;      /* VmRSS */
        int64_t rss_peak_bytes; /* VmHWM */
        int64_t vm_bytes;       /* VmSize */
        int64_t threads;        /* Threads */
};

struct hw_agent_cgroup {
        bool present; /* false: the whole "cgroup" member is left out */
        char path[HW_AGENT_CGROUP_PATH_MAX + 1];
        int64_t memory_current_bytes;
        int64_t memory_max_bytes; /* the limit that binds (of this cgroup and its ancestors, the one
                                   * with the least room); -1: no limit ("max"), sent as null */
        int64_t limit_usage_bytes; /* what the limit's own cgroup uses, less its inactive page
                                    * cache; -1 unknown or no limit, left out */
};

struct hw_agent_gc_generation {
        int64_t count;
        int64_t threshold;
        int64_t collections;
        int64_t collected;
        int64_t uncollectable;
        /* Collections of this generation since the previous sample, timed by the gc callback. */
        int64_t pauses;
        double pause_seconds_total;
        double pause_seconds_max;
};

/* glibc malloc's figures (mallocstat.h); sent as the "malloc" member when present. */
struct hw_agent_malloc {
        bool present;
        int64_t arena_bytes, in_use_bytes, free_bytes, mmapped_bytes, keepcost_bytes;
        double read_seconds; /* what the mallinfo2() call that produced them cost */
        double age_seconds;  /* how long ago they were read (calls are spaced by their cost) */
};

struct hw_agent_sample {
        uint64_t seq;
        double time; /* Unix seconds when taken */

        struct hw_agent_process process;
        struct hw_agent_cgroup cgroup;

        /* "python": present when allocated_blocks >= 0 */
        int64_t allocated_blocks;
        bool has_arenas; /* pymalloc in use and the arena allocator wrapped */
        uint64_t arena_allocs_total;
        uint64_t arena_frees_total;
        uint64_t arena_size_bytes;

        /* "gc": present when has_gc */
        bool has_gc;
        bool gc_enabled;
        int64_t gc_garbage;
        /* Entries of gc.garbage whose type has a finalizer (__del__ / tp_finalize, legacy
         * tp_del), -1 unknown; counted incrementally within a bounded scan per sample. */
        int64_t gc_garbage_finalizers;
        /* Objects with a finalizer among those collected by the collections counted since the
         * agent started (one in four of generations 0 and 1), those
         * collections, and those not counted; -1 unknown (the collector's state was not
         * found). heapwalk.h. */
        int64_t gc_finalizers_collected;
        int64_t gc_finalizers_collections;
        int64_t gc_finalizers_skipped;
        size_t gc_generations;
        struct hw_agent_gc_generation gc[HW_AGENT_GC_GENERATIONS_MAX];

        /* "malloc" */
        struct hw_agent_malloc malloc_stats;

        /* "heap": the heap profiler's report (heapprof.h), owned; NULL when profiling is off */
        json_t *heap;

        /* "agent" */
        uint64_t samples_dropped_total;
        uint64_t reconnects_total;
        double sample_seconds;
};

/* Reset a sample to "nothing known" (all figures -1 / absent). */
void hw_agent_sample_init(struct hw_agent_sample *s);

/* Release what a sample owns (the heap report); the sample is then "nothing known" again. */
void hw_agent_sample_clear(struct hw_agent_sample *s);
