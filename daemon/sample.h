/* SPDX-License-Identifier: MIT */
/*
 * The daemon's validated, in-memory form of the agent's HELLO and SAMPLE payloads
 * (docs/protocol.md). message.c fills these from JSON; everything downstream (registry,
 * history, HTTP, metrics) reads only these structs, never raw JSON from a peer.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define HW_SERVICE_MAX 128
#define HW_HOSTNAME_MAX 255
#define HW_ARGV_MAX 64
#define HW_ARG_MAX 1024
#define HW_SHORT_STRING_MAX 64
#define HW_BUILD_STRING_MAX 256
#define HW_CGROUP_PATH_MAX 512
#define HW_GC_GENERATIONS_MAX 4

typedef struct HwHello {
        int64_t protocol;
        char agent_version[HW_SHORT_STRING_MAX + 1];
        int64_t pid;              /* as the agent sees itself (its pid namespace) */
        int64_t ppid;             /* -1 if not sent */
        int64_t start_time_ticks; /* -1 if not sent */
        double start_time;        /* Unix seconds; 0 if not sent */
        char **argv;              /* NULL-terminated, owned; at most HW_ARGV_MAX entries */
        char service[HW_SERVICE_MAX + 1];
        char hostname[HW_HOSTNAME_MAX + 1];
        char python_version[HW_SHORT_STRING_MAX + 1];
        char python_implementation[HW_SHORT_STRING_MAX + 1];
        char python_build[HW_BUILD_STRING_MAX + 1];
        char python_compiler[HW_BUILD_STRING_MAX + 1];
        int64_t python_hexversion;
        double interval; /* seconds; 0 if not sent */
        bool holders_only; /* "features" has HW_FEATURE_HOLDERS_ONLY */
} HwHello;

typedef struct HwGcGeneration {
        int64_t count;
        int64_t threshold;
        int64_t collections;
        int64_t collected;
        int64_t uncollectable;
        int64_t pauses;             /* collections of this generation since the previous sample */
        double pause_seconds_total; /* their total duration */
        double pause_seconds_max;   /* the longest of them */
} HwGcGeneration;

typedef struct HwSample {
        uint64_t seq;
        double time; /* Unix seconds, when the agent took it */

        int64_t rss_bytes;
        int64_t rss_peak_bytes;
        int64_t vm_bytes;
        int64_t threads;

        bool has_cgroup;
        char cgroup_path[HW_CGROUP_PATH_MAX + 1];
        int64_t cgroup_memory_current_bytes;
        int64_t cgroup_memory_max_bytes; /* -1: no limit ("max") */
        int64_t cgroup_limit_usage_bytes; /* the limit's own cgroup's usage less its inactive page
                                           * cache; <= 0 unknown (an older agent, a replayed point:
                                           * memory_current_bytes stands in) */

        int64_t python_allocated_blocks;
        bool has_arenas;
        int64_t arena_allocs_total;
        int64_t arena_frees_total;
        int64_t arena_size_bytes;

        bool gc_enabled;
        int64_t gc_garbage;
        int64_t gc_garbage_finalizers; /* gc.garbage entries with a finalizer; -1 not sent */
        /* objects with a finalizer among those collected by the young collections the agent
         * counted since it started, those collections, and those it did not count; -1 not sent */
        int64_t gc_finalizers_collected;
        int64_t gc_finalizers_collections;
        int64_t gc_finalizers_skipped;
        unsigned gc_generations; /* entries used in gc[] */
        HwGcGeneration gc[HW_GC_GENERATIONS_MAX];

        /* glibc malloc (mallinfo2()), bytes; has_malloc false when not sent. */
        bool has_malloc;
        int64_t malloc_arena_bytes;    /* non-mmapped memory malloc obtained (all arenas) */
        int64_t malloc_in_use_bytes;   /* allocated chunks in it (uordblks) */
        int64_t malloc_free_bytes;     /* free chunks malloc holds (fordblks) */
        int64_t malloc_mmapped_bytes;  /* chunks served by their own mmap (hblkhd) */
        int64_t malloc_keepcost_bytes; /* releasable top of the main heap */
        double malloc_read_seconds;    /* what mallinfo2() cost the agent */

        int64_t agent_samples_dropped_total;
        int64_t agent_reconnects_total;
        double agent_sample_seconds;

        bool is_goodbye;
        char goodbye_reason[16]; /* "exit", "stop", or "" */
} HwSample;

void hw_hello_done(HwHello *h);

/* The heap profiler's report, the optional "heap" member of SAMPLE/GOODBYE (docs/protocol.md),
 * validated. Bounds: what one agent report may carry. */
#define HW_HEAP_SITES_MAX 256
#define HW_HEAP_STACKS_MAX 256 /* stacks sent in one report */
#define HW_HEAP_FRAMES_MAX 128 /* frames of one stack */
#define HW_HEAP_FILE_MAX 512
#define HW_HEAP_FUNC_MAX 256

typedef struct HwHeapFrame {
        char *file; /* owned */
        char *func; /* owned */
        int64_t line;
} HwHeapFrame;

typedef struct HwHeapStack {
        int64_t id; /* the agent's stack id, 1..2^32-1, valid within one epoch */
        size_t n_frames;
        HwHeapFrame *frames; /* owned; innermost first */
} HwHeapStack;

typedef struct HwHeapSite {
        int64_t stack;
        int64_t live_bytes, live_count; /* estimates */
        int64_t alloc_bytes_total, alloc_count_total;
} HwHeapSite;

typedef struct HwHeapReport {
        int64_t epoch;
        int64_t sample_bytes;
        int64_t depth;
        int64_t live_bytes, live_count, alloc_bytes_total, alloc_count_total;
        int64_t samples_total, samples_live, tracked_full_total, stacks_full_total, lost_total;
        size_t n_sites;
        HwHeapSite *sites; /* owned; largest first as the agent sent them */
        size_t n_stacks;
        HwHeapStack *stacks; /* owned */
} HwHeapReport;

/* Free a report and all it owns; accepts NULL; returns NULL. */
HwHeapReport *hw_heap_report_free(HwHeapReport *r);
void hw_heap_stack_done(HwHeapStack *s);
