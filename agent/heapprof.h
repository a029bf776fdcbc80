/* SPDX-License-Identifier: MIT */
/*
 * The sampling heap profiler's plain-C core: the byte countdown that decides which allocations
 * are sampled (exponentially distributed intervals of mean `sample_bytes`, the tcmalloc / Go
 * way), the table of sampled allocations still alive with the small filter in front of it that
 * makes the common free() a single load from an L1-resident bitmap, the interned stacks and
 * their per-site estimates, and the "heap" report member (docs/protocol.md). No Python here:
 * memhooks.c wraps the interpreter's allocators, captures the Python stack on a sample and hands
 * it over as plain strings, so Check tests drive all of this without an interpreter.
 *
 * Estimates are unbiased: an allocation of s bytes is sampled with probability
 * p = 1 - exp(-s / sample_bytes) and counts s / p bytes and 1 / p allocations.
 *
 * Concurrency: the fast paths (hw_heapprof_account, hw_heapprof_maybe_tracked) take no lock;
 * they are called from the interpreter's mem/object allocators, which run with the GIL held, so
 * they are not contended (relaxed atomics keep them well-defined all the same). Everything else
 * takes the profiler's mutex, which is never held while waiting for anything else.
 */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HW_HEAPPROF_SAMPLE_BYTES_DEFAULT (512u * 1024u)
#define HW_HEAPPROF_SAMPLE_BYTES_MAX (1ull << 30) /* 1 GiB: beyond that nothing is sampled */
#define HW_HEAPPROF_DEPTH_DEFAULT 32
#define HW_HEAPPROF_DEPTH_MAX 128
#define HW_HEAPPROF_TRACKED_MAX 65536 /* live sampled allocations tracked at once */
#define HW_HEAPPROF_STACKS_MAX 16384  /* distinct stacks interned per profile */
#define HW_HEAPPROF_LOCATIONS_MAX 65536 /* distinct (file, function) pairs */
#define HW_HEAPPROF_FILE_MAX 512   /* bytes of a file name kept (and sent) */
#define HW_HEAPPROF_FUNC_MAX 256   /* bytes of a function name kept (and sent) */
#define HW_HEAPPROF_SITES_DEFAULT 32 /* sites per report */
#define HW_HEAPPROF_SITES_MAX 256
#define HW_HEAPPROF_FILTER_BITS 16 /* 64 Ki filter slots */

/* One frame as memhooks.c captured it: borrowed strings (not NUL-terminated), copied by
 * hw_heapprof_record(). */
struct hw_heapprof_frame {
        const char *file;
        size_t file_len;
        const char *func;
        size_t func_len;
        int32_t line;
        /* Optional identity of (file, func) for the location cache, e.g. the addresses of the
         * code object and of its name objects: the same key must always mean the same names.
         * {0, 0}: no key, the strings are looked up. */
        uintptr_t key[2];
};

#define HW_HEAPPROF_LOC_CACHE 4096 /* direct-mapped (key -> location id) entries */

struct hw_heapprof_loc_cache_entry {
        uintptr_t key[2];
        uint32_t id;
};

struct hw_heapprof_location;
struct hw_heapprof_stack;
struct hw_heapprof_live;

struct hw_heapprof {
        /* The free path's filter: one bit per slot, set while a tracked pointer hashes there.
         * 8 KiB of whole cache lines, and the slot keeps an address's locality (see
         * hw_heapprof_filter_slot), so the lines that frees touch stay in L1; the one-byte
         * counters of the first version (64 KiB, a mixing hash) missed L1 on two thirds of all
         * frees (docs/performance.md). Written under the lock, read without it (relaxed
         * atomics). First in the struct: the fast path indexes it without an offset. */
        _Alignas(64) uint64_t filter[(1u << HW_HEAPPROF_FILTER_BITS) / 64];
        /* fast path: bytes until the next sample (below 0: sample now); relaxed atomics */
        int64_t countdown;

        pthread_mutex_t lock; /* guards everything below */
        uint64_t sample_bytes; /* mean interval; 0: off (countdown never goes below 0) */
        unsigned depth;
        uint64_t rng;
        uint64_t epoch; /* changes at every reset: stack ids of another epoch mean nothing */
        /* behind each filter bit: how many tracked pointers hash to the slot, saturating (a
         * saturated slot stays set until the next reset: we lost count) */
        uint8_t filter_count[1u << HW_HEAPPROF_FILTER_BITS];

        struct hw_heapprof_live *live; /* open addressing, linear probing, key ptr (0 = empty) */
        size_t live_cap, live_len;

        struct hw_heapprof_location *locs; /* id = index + 1 */
        size_t locs_len, locs_cap;
        uint32_t *locs_index; /* open addressing over locs; 0 = empty */
        struct hw_heapprof_loc_cache_entry *loc_cache; /* HW_HEAPPROF_LOC_CACHE entries, or NULL */
        size_t locs_index_cap;
        char *strings; /* file and function names, back to back */
        size_t strings_len, strings_cap;

        struct hw_heapprof_stack *stacks; /* id = index + 1 */
        size_t stacks_len, stacks_cap;
        uint32_t *stacks_index;
        size_t stacks_index_cap;
        uint32_t *frames; /* pairs (location id, line), back to back */
        size_t frames_len, frames_cap;

        /* totals since the reset (estimates are doubles, counters exact) */
        double alloc_bytes, alloc_count;
        uint64_t samples_total;
        uint64_t tracked_full_total; /* samples not tracked: HW_HEAPPROF_TRACKED_MAX reached */
        uint64_t stacks_full_total;  /* samples filed under the overflow stack */
        uint64_t nomem_total;        /* samples lost to a failed allocation of ours */
        uint64_t busy_total;         /* samples skipped while another was being recorded */
};

/* Initialise (mutex included) a profiler that samples nothing. Returns 0 or -errno. */
int hw_heapprof_init(struct hw_heapprof *hp);

/* Forget everything (tables, stacks, totals), start a new epoch with the given mean interval
 * (0: off, > HW_HEAPPROF_SAMPLE_BYTES_MAX clamped) and stack depth (1..HW_HEAPPROF_DEPTH_MAX,
 * clamped), and seed the random number generator. Memory of the tables is freed. */
void hw_heapprof_reset(struct hw_heapprof *hp, uint64_t sample_bytes, unsigned depth, uint64_t seed);

/* In a child after fork(): forget everything like hw_heapprof_reset() with the same settings.
 * The lock must be free (the agent's fork handlers hold it across fork() and release it). */
void hw_heapprof_forget_after_fork(struct hw_heapprof *hp);

/* Free all memory; the profiler is unusable until hw_heapprof_init(). */
void hw_heapprof_destroy(struct hw_heapprof *hp);

/* Fast path, for every allocation of size bytes: true when this allocation must be sampled
 * (then call hw_heapprof_record(), or hw_heapprof_skip() when it cannot be). */
static inline bool hw_heapprof_account(struct hw_heapprof *hp, size_t size) {
        /* Unsigned arithmetic wraps instead of overflowing: a request of more than 2^62 bytes
         * (which fails anyway) may or may not trigger a sample, never anything undefined. This
         * runs on every allocation of the host: no clamp, a load, a subtraction, a store and a
         * jump on the subtraction's sign. The allocation that takes the count below zero is
         * sampled: the one during which the drawn interval of X bytes (integer part kept) is
         * exceeded, as the weights assume. */
        int64_t c = (int64_t) ((uint64_t) __atomic_load_n(&hp->countdown, __ATOMIC_RELAXED) - (uint64_t) size);

        __atomic_store_n(&hp->countdown, c, __ATOMIC_RELAXED);
        return __builtin_expect(c < 0, 0);
}

static inline size_t hw_heapprof_filter_slot(const void *ptr) {
        /* The address without its alignment bits, modulo 1 MiB: not a mixing hash, on purpose.
         * Blocks freed one after the other mostly sit close together (the same pymalloc pool),
         * and then they share the filter's cache line (one line covers 8 KiB of addresses), so
         * the lines frees touch stay in L1 -- a mixing hash sends every free to a random line.
         * 16-byte aligned blocks within a MiB never share a slot. The price: page-aligned
         * blocks (the large ones glibc mmaps) use only every 256th slot, so a free of such a
         * block meets more false "maybe"s; it costs a munmap anyway. */
        return (size_t) ((uint64_t) (uintptr_t) ptr >> 4) & ((1u << HW_HEAPPROF_FILTER_BITS) - 1);
}

/* Fast path, for every free/realloc: false when ptr is certainly not tracked (the common case:
 * one load from an L1-resident bitmap); true when it may be (then call hw_heapprof_forget()). */
static inline bool hw_heapprof_maybe_tracked(struct hw_heapprof *hp, const void *ptr) {
        uint64_t a = (uint64_t) (uintptr_t) ptr;
        /* the word of slot hw_heapprof_filter_slot(ptr), and its bit: written so that it is a
         * shift, a mask, a load and a bit test */
        uint64_t w = __atomic_load_n(&hp->filter[(a >> 10) & ((1u << HW_HEAPPROF_FILTER_BITS) / 64 - 1)],
                                     __ATOMIC_RELAXED);

        return __builtin_expect((w >> ((a >> 4) & 63)) & 1, 0);
}

/* Record the sampled allocation ptr of size bytes made at the stack frames[0..n) (innermost
 * first; n may be 0: no Python frame). Draws the next interval. Never fails: when a table is
 * full or memory runs out, the sample is counted in the matching counter instead.
 * ptr NULL (a failed allocation): only draws the next interval. track false: counted as
 * allocated, never as live (a block whose free the caller would not see; counted with the
 * samples the full table could not take, as the caller leaves it so only then). */
void hw_heapprof_record(struct hw_heapprof *hp, const void *ptr, size_t size, const struct hw_heapprof_frame *frames,
                        size_t n, bool track);

/* Whether as many samples are live as are tracked at most (HW_HEAPPROF_TRACKED_MAX): a new
 * sample will not be tracked unless one is freed first. Any thread, no lock: a hint. */
static inline bool hw_heapprof_tracking_full(const struct hw_heapprof *hp) {
        return __atomic_load_n(&hp->live_len, __ATOMIC_RELAXED) >= HW_HEAPPROF_TRACKED_MAX;
}

/* An allocation should have been sampled but cannot be (the recording is re-entered): count it
 * and draw the next interval. */
void hw_heapprof_skip(struct hw_heapprof *hp);

/* ptr is being freed (or moved by realloc): stop tracking it if it is tracked. */
void hw_heapprof_forget(struct hw_heapprof *hp, const void *ptr);

/* The "heap" member of a SAMPLE (docs/protocol.md): totals, the top max_sites sites by
 * estimated live bytes and the stacks among them not yet sent in stack generation gen (the
 * transport's stacks_gen, which changes whenever sent stacks may have been lost) (mark_sent:
 * record them as sent; false for a peek such as snapshot(), which sends every stack it names).
 * Stacks are added while their encoding fits in budget bytes; a site whose stack does not fit
 * waits for the next report. Returns a new reference, or NULL on ENOMEM or when
 * the profiler is off. */
json_t *hw_heapprof_report(struct hw_heapprof *hp, uint64_t gen, bool mark_sent, size_t max_sites, size_t budget);

/* Estimated live bytes of all sampled sites (for tests and status()). */
double hw_heapprof_live_bytes(struct hw_heapprof *hp);
