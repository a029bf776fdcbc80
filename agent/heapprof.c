/* SPDX-License-Identifier: MIT */
/*
 * The sampling heap profiler's tables and report (see heapprof.h). Three tables, all bounded:
 * sampled allocations still alive (keyed by address), interned stacks (a stack is a sequence of
 * (location, line) pairs; its record carries the per-site estimates) and interned locations
 * (file, function). Stacks and locations live until the next reset, so a stack id stays valid
 * for the daemon for the whole epoch.
 *
 * Memory comes from the C library's malloc, never from the interpreter's allocators (which are
 * what we wrap): recording a sample cannot re-enter the wrappers.
 */
#include "agent-util.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "heapprof.h"
#include "pages.h"

#define STRINGS_MAX (4u * 1024u * 1024u) /* bytes of interned names at most */
#define NEVER_SENT UINT64_MAX

struct hw_heapprof_location {
        uint64_t hash;
        uint32_t file_off, file_len, func_off, func_len;
};

struct hw_heapprof_stack {
        uint64_t hash;
        uint32_t frames_off; /* index of the first (location, line) pair in hp->frames / 2 */
        uint32_t n;
        uint64_t sent_gen;
        uint64_t live_samples;
        double live_bytes, live_count, alloc_bytes, alloc_count;
};

/* index_reserve() reads each record's hash from its first bytes */
_Static_assert(offsetof(struct hw_heapprof_location, hash) == 0, "hash first");
_Static_assert(offsetof(struct hw_heapprof_stack, hash) == 0, "hash first");

struct hw_heapprof_live {
        uintptr_t ptr; /* 0: empty slot */
        uint32_t stack;
        double bytes, count;
};

/* ---- small helpers --------------------------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
        const unsigned char *p = data;

        /* FNV-1a: names are short; this runs only when an allocation is sampled */
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

#define HASH_INIT UINT64_C(0xcbf29ce484222325)

static uint64_t rng_next(uint64_t *state) {
        /* splitmix64: tiny, good enough for sampling intervals */
        uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
}

/* Next interval: exponentially distributed with mean hp->sample_bytes, at least 1 byte.
 * 0 (off): an interval no program ever allocates. */
static int64_t draw_interval(struct hw_heapprof *hp) {
        double u, v;

        if (hp->sample_bytes == 0)
                return INT64_MAX / 2;
        u = ((double) (rng_next(&hp->rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
        v = -log(u) * (double) hp->sample_bytes;
        if (!(v >= 1.0))
                return 1;
        if (v > (double) (INT64_MAX / 4))
                return INT64_MAX / 4;
        return (int64_t) v;
}

/* Grow *arr (elements of size elem) to hold at least need elements. 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t initial) {
        size_t n = *cap ? *cap : initial;
        void *p;

        if (need <= *cap)
                return 0;
        while (n < need)
                n *= 2;
        /* from the kernel, not the host's malloc (pages.h): a copy over 128 KiB freed by realloc
         * would raise glibc's mmap threshold for the host */
        p = *arr ? hw_pages_grow(*arr, *cap * elem, n * elem) : hw_pages_alloc(n * elem);
        if (!p)
                return -ENOMEM;
        *arr = p;
        *cap = n;
        return 0;
}

/* ---- lifetime ---------------------------------------------------------------------------------- */

static void free_tables(struct hw_heapprof *hp) {
        hw_pages_free(hp->live, hp->live_cap * sizeof(*hp->live));
        hw_pages_free(hp->locs, hp->locs_cap * sizeof(*hp->locs));
        hw_pages_free(hp->locs_index, hp->locs_index_cap * sizeof(*hp->locs_index));
        hw_pages_free(hp->loc_cache, HW_HEAPPROF_LOC_CACHE * sizeof(*hp->loc_cache));
        hw_pages_free(hp->strings, hp->strings_cap);
        hw_pages_free(hp->stacks, hp->stacks_cap * sizeof(*hp->stacks));
        hw_pages_free(hp->stacks_index, hp->stacks_index_cap * sizeof(*hp->stacks_index));
        hw_pages_free(hp->frames, hp->frames_cap * sizeof(*hp->frames));
        hp->live = NULL;
        hp->locs = NULL;
        hp->locs_index = NULL;
        hp->loc_cache = NULL;
        hp->strings = NULL;
        hp->stacks = NULL;
        hp->stacks_index = NULL;
        hp->frames = NULL;
        hp->live_cap = 0;
        __atomic_store_n(&hp->live_len, 0, __ATOMIC_RELAXED); /* hw_heapprof_tracking_full() */
        hp->locs_len = hp->locs_cap = hp->locs_index_cap = 0;
        hp->strings_len = hp->strings_cap = 0;
        hp->stacks_len = hp->stacks_cap = hp->stacks_index_cap = 0;
        hp->frames_len = hp->frames_cap = 0;
}

/* Lock held (or no other user). */
static void reset_locked(struct hw_heapprof *hp, uint64_t sample_bytes, unsigned depth, uint64_t seed) {
        free_tables(hp);
        memset(hp->filter, 0, sizeof(hp->filter));
        memset(hp->filter_count, 0, sizeof(hp->filter_count));
        hp->sample_bytes = sample_bytes > HW_HEAPPROF_SAMPLE_BYTES_MAX ? HW_HEAPPROF_SAMPLE_BYTES_MAX : sample_bytes;
        hp->depth = depth < 1 ? 1 : depth > HW_HEAPPROF_DEPTH_MAX ? HW_HEAPPROF_DEPTH_MAX : depth;
        hp->rng = seed;
        hp->epoch = rng_next(&hp->rng) >> 12; /* fits a JSON integer (< 2^53) */
        if (hp->epoch == 0)
                hp->epoch = 1;
        hp->alloc_bytes = hp->alloc_count = 0;
        hp->samples_total = hp->tracked_full_total = hp->stacks_full_total = 0;
        hp->nomem_total = hp->busy_total = 0;
        __atomic_store_n(&hp->countdown, draw_interval(hp), __ATOMIC_RELAXED);
}

int hw_heapprof_init(struct hw_heapprof *hp) {
        int r;

        memset(hp, 0, sizeof(*hp));
        r = pthread_mutex_init(&hp->lock, NULL);
        if (r != 0)
                return -r;
        reset_locked(hp, 0, HW_HEAPPROF_DEPTH_DEFAULT, 1);
        return 0;
}

void hw_heapprof_reset(struct hw_heapprof *hp, uint64_t sample_bytes, unsigned depth, uint64_t seed) {
        pthread_mutex_lock(&hp->lock);
        reset_locked(hp, sample_bytes, depth, seed);
        pthread_mutex_unlock(&hp->lock);
}

void hw_heapprof_forget_after_fork(struct hw_heapprof *hp) {
        /* The lock is free here: the agent's fork handlers hold it across fork() and release it
         * in the child (agent/module.c), so no thread of the parent's can have left it taken. */
        pthread_mutex_lock(&hp->lock);
        reset_locked(hp, hp->sample_bytes, hp->depth, hp->rng ^ (uint64_t) getpid());
        pthread_mutex_unlock(&hp->lock);
}

void hw_heapprof_destroy(struct hw_heapprof *hp) {
        free_tables(hp);
        pthread_mutex_destroy(&hp->lock);
}

/* ---- locations and stacks ---------------------------------------------------------------------- */

/* Append a sanitized, bounded copy of s to the string pool. Returns its offset, or -1. */
static int64_t add_string(struct hw_heapprof *hp, const char *s, size_t len, size_t max, uint32_t *ret_len) {
        char buf[HW_HEAPPROF_FILE_MAX + 1];
        size_t n;
        int64_t off;

        n = hw_utf8_copy(buf, sizeof(buf), s ? s : "?", s ? len : 1, max, 1);
        if (hp->strings_len + n > STRINGS_MAX)
                return -1;
        if (grow((void **) &hp->strings, &hp->strings_cap, hp->strings_len + n, 1, 4096) < 0)
                return -1;
        memcpy(hp->strings + hp->strings_len, buf, n);
        off = (int64_t) hp->strings_len;
        hp->strings_len += n;
        *ret_len = (uint32_t) n;
        return off;
}

static int index_insert(uint32_t **index, size_t *cap, size_t len, uint32_t id, uint64_t hash) {
        /* keep the load at most 1/2; rebuilding needs the hashes, so callers pass a rehash */
        (void) len;
        for (size_t i = (size_t) hash & (*cap - 1);; i = (i + 1) & (*cap - 1))
                if ((*index)[i] == 0) {
                        (*index)[i] = id;
                        return 0;
                }
}

/* Make *index (open addressing over count records of stride bytes, each starting with its
 * uint64_t hash) big enough for need entries at a load of at most 1/2, rebuilding it from the
 * records' hashes. One function for the location and the stack tables. 0 or -ENOMEM (then the
 * old index stays). */
static int index_reserve(uint32_t **index, size_t *cap, size_t need, const void *records, size_t count,
                         size_t stride) {
        size_t n = *cap ? *cap : 256;
        uint32_t *idx;

        if (need * 2 <= *cap)
                return 0;
        while (need * 2 > n)
                n *= 2;
        idx = hw_pages_alloc(n * sizeof(*idx));
        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                uint64_t h;

                memcpy(&h, (const char *) records + i * stride, sizeof(h));
                (void) index_insert(&idx, &n, i, (uint32_t) (i + 1), h);
        }
        hw_pages_free(*index, *cap * sizeof(*idx));
        *index = idx;
        *cap = n;
        return 0;
}

/* The id of location (file, func), interned; beyond the limits the shared "?" location.
 * 0 on ENOMEM. */
static uint32_t intern_location(struct hw_heapprof *hp, const char *file, size_t file_len, const char *func,
                                size_t func_len, bool force) {
        uint64_t h;
        uint32_t fl, gl;
        int64_t fo, go;
        char fbuf[HW_HEAPPROF_FILE_MAX + 1], gbuf[HW_HEAPPROF_FUNC_MAX + 1];
        size_t fn, gn;

        /* compare and hash the sanitized, bounded forms: the same as what we store */
        fn = hw_utf8_copy(fbuf, sizeof(fbuf), file ? file : "?", file ? file_len : 1, HW_HEAPPROF_FILE_MAX, 1);
        gn = hw_utf8_copy(gbuf, sizeof(gbuf), func ? func : "?", func ? func_len : 1, HW_HEAPPROF_FUNC_MAX, 1);
        h = hash_bytes(hash_bytes(HASH_INIT, fbuf, fn + 1), gbuf, gn);

        if (hp->locs_index_cap) {
                for (size_t i = (size_t) h & (hp->locs_index_cap - 1);; i = (i + 1) & (hp->locs_index_cap - 1)) {
                        uint32_t id = hp->locs_index[i];
                        const struct hw_heapprof_location *l;

                        if (id == 0)
                                break;
                        l = &hp->locs[id - 1];
                        if (l->hash == h && l->file_len == fn && l->func_len == gn &&
                            memcmp(hp->strings + l->file_off, fbuf, fn) == 0 &&
                            memcmp(hp->strings + l->func_off, gbuf, gn) == 0)
                                return id;
                }
        }
        if (!force && (hp->locs_len >= HW_HEAPPROF_LOCATIONS_MAX - 1 || hp->strings_len + fn + gn > STRINGS_MAX - 64))
                return intern_location(hp, "?", 1, "?", 1, true);
        if (grow((void **) &hp->locs, &hp->locs_cap, hp->locs_len + 1, sizeof(*hp->locs), 64) < 0 ||
            index_reserve(&hp->locs_index, &hp->locs_index_cap, hp->locs_len + 1, hp->locs, hp->locs_len,
                          sizeof(*hp->locs)) < 0)
                return 0;
        fo = add_string(hp, fbuf, fn, HW_HEAPPROF_FILE_MAX, &fl);
        go = fo < 0 ? -1 : add_string(hp, gbuf, gn, HW_HEAPPROF_FUNC_MAX, &gl);
        if (go < 0)
                return 0;
        hp->locs[hp->locs_len] = (struct hw_heapprof_location) {
                .hash = h, .file_off = (uint32_t) fo, .file_len = fl, .func_off = (uint32_t) go, .func_len = gl
        };
        hp->locs_len++;
        (void) index_insert(&hp->locs_index, &hp->locs_index_cap, hp->locs_len, (uint32_t) hp->locs_len, h);
        return (uint32_t) hp->locs_len;
}

/* The id of the stack made of pairs[0..2n) (location id, line), interned. 0 on ENOMEM. */
static uint32_t intern_pairs(struct hw_heapprof *hp, const uint32_t *pairs, size_t n, bool force) {
        uint64_t h = hash_bytes(HASH_INIT, pairs, n * 2 * sizeof(*pairs));
        struct hw_heapprof_stack *st;

        if (hp->stacks_index_cap) {
                for (size_t i = (size_t) h & (hp->stacks_index_cap - 1);; i = (i + 1) & (hp->stacks_index_cap - 1)) {
                        uint32_t id = hp->stacks_index[i];

                        if (id == 0)
                                break;
                        st = &hp->stacks[id - 1];
                        /* n == 0 (no Python frame): hp->frames may still be NULL */
                        if (st->hash == h && st->n == n &&
                            (n == 0 || memcmp(hp->frames + (size_t) st->frames_off * 2, pairs,
                                              n * 2 * sizeof(*pairs)) == 0))
                                return id;
                }
        }
        if (!force && hp->stacks_len >= HW_HEAPPROF_STACKS_MAX - 1)
                return 0; /* the caller files the sample under the overflow stack */
        if (grow((void **) &hp->stacks, &hp->stacks_cap, hp->stacks_len + 1, sizeof(*hp->stacks), 64) < 0 ||
            index_reserve(&hp->stacks_index, &hp->stacks_index_cap, hp->stacks_len + 1, hp->stacks, hp->stacks_len,
                          sizeof(*hp->stacks)) < 0 ||
            grow((void **) &hp->frames, &hp->frames_cap, hp->frames_len + n * 2, sizeof(*hp->frames), 1024) < 0)
                return 0;
        if (n > 0)
                memcpy(hp->frames + hp->frames_len, pairs, n * 2 * sizeof(*pairs));
        hp->stacks[hp->stacks_len] = (struct hw_heapprof_stack) {
                .hash = h, .frames_off = (uint32_t) (hp->frames_len / 2), .n = (uint32_t) n, .sent_gen = NEVER_SENT,
        };
        hp->frames_len += n * 2;
        hp->stacks_len++;
        (void) index_insert(&hp->stacks_index, &hp->stacks_index_cap, hp->stacks_len, (uint32_t) hp->stacks_len, h);
        return (uint32_t) hp->stacks_len;
}

/* Lock held. 0 on ENOMEM. */
static uint32_t intern_stack(struct hw_heapprof *hp, const struct hw_heapprof_frame *frames, size_t n) {
        uint32_t pairs[HW_HEAPPROF_DEPTH_MAX * 2];
        uint32_t id;

        if (n > hp->depth)
                n = hp->depth;
        if (!hp->loc_cache)
                hp->loc_cache = hw_pages_alloc(HW_HEAPPROF_LOC_CACHE * sizeof(*hp->loc_cache)); /* NULL: no cache */
        for (size_t i = 0; i < n; i++) {
                const uintptr_t *key = frames[i].key;
                struct hw_heapprof_loc_cache_entry *c = NULL;

                /* Most samples come from the same few functions: a cache hit skips copying,
                 * hashing and comparing the names. */
                if (hp->loc_cache && (key[0] | key[1])) {
                        uint64_t h = ((uint64_t) key[0] ^ ((uint64_t) key[1] << 7)) * UINT64_C(0x9E3779B97F4A7C15);
                        c = &hp->loc_cache[h >> 52 & (HW_HEAPPROF_LOC_CACHE - 1)];
                        if (c->id && c->key[0] == key[0] && c->key[1] == key[1]) {
                                pairs[2 * i] = c->id;
                                pairs[2 * i + 1] = (uint32_t) (frames[i].line < 0 ? 0 : frames[i].line);
                                continue;
                        }
                }
                pairs[2 * i] = intern_location(hp, frames[i].file, frames[i].file_len, frames[i].func,
                                               frames[i].func_len, false);
                if (pairs[2 * i] == 0)
                        return 0;
                if (c)
                        *c = (struct hw_heapprof_loc_cache_entry) { .key = { key[0], key[1] }, .id = pairs[2 * i] };
                pairs[2 * i + 1] = (uint32_t) (frames[i].line < 0 ? 0 : frames[i].line);
        }
        id = intern_pairs(hp, pairs, n, false);
        if (id == 0 && hp->stacks_len >= HW_HEAPPROF_STACKS_MAX - 1) {
                /* too many distinct stacks: one shared overflow site, so totals stay right */
                uint32_t loc = intern_location(hp, "<heapwatch>", 11, "<other stacks>", 14, true);

                if (loc == 0)
                        return 0;
                pairs[0] = loc;
                pairs[1] = 0;
                hp->stacks_full_total++;
                id = intern_pairs(hp, pairs, 1, true);
        }
        return id;
}

/* ---- the filter in front of the live table (lock held) --------------------------------------------- */

static void filter_add(struct hw_heapprof *hp, const void *ptr) {
        size_t s = hw_heapprof_filter_slot(ptr);
        uint8_t c = hp->filter_count[s];

        if (c == UINT8_MAX)
                return; /* saturated */
        hp->filter_count[s] = (uint8_t) (c + 1);
        if (c == 0)
                __atomic_store_n(&hp->filter[s / 64],
                                 __atomic_load_n(&hp->filter[s / 64], __ATOMIC_RELAXED) | UINT64_C(1) << (s % 64),
                                 __ATOMIC_RELAXED);
}

static void filter_remove(struct hw_heapprof *hp, const void *ptr) {
        size_t s = hw_heapprof_filter_slot(ptr);
        uint8_t c = hp->filter_count[s];

        if (c == 0 || c == UINT8_MAX) /* a saturated slot stays set: we lost count */
                return;
        hp->filter_count[s] = (uint8_t) (c - 1);
        if (c == 1)
                __atomic_store_n(&hp->filter[s / 64],
                                 __atomic_load_n(&hp->filter[s / 64], __ATOMIC_RELAXED) & ~(UINT64_C(1) << (s % 64)),
                                 __ATOMIC_RELAXED);
}

/* ---- the live table ------------------------------------------------------------------------------ */

static size_t live_slot(const struct hw_heapprof *hp, uintptr_t ptr) {
        return (size_t) (((uint64_t) ptr >> 4) * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (hp->live_cap - 1);
}

static int live_grow(struct hw_heapprof *hp) {
        size_t cap = hp->live_cap ? hp->live_cap * 2 : 1024;
        struct hw_heapprof_live *old = hp->live, *t;
        size_t old_cap = hp->live_cap;

        t = hw_pages_alloc(cap * sizeof(*t));
        if (!t)
                return -ENOMEM;
        hp->live = t;
        hp->live_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
                if (old[i].ptr) {
                        size_t j = live_slot(hp, old[i].ptr);
                        while (t[j].ptr)
                                j = (j + 1) & (cap - 1);
                        t[j] = old[i];
                }
        hw_pages_free(old, old_cap * sizeof(*old));
        return 0;
}

static struct hw_heapprof_live *live_find(struct hw_heapprof *hp, uintptr_t ptr) {
        if (!hp->live_cap)
                return NULL;
        for (size_t i = live_slot(hp, ptr);; i = (i + 1) & (hp->live_cap - 1)) {
                if (hp->live[i].ptr == ptr)
                        return &hp->live[i];
                if (hp->live[i].ptr == 0)
                        return NULL;
        }
}

/* Remove the entry e (linear probing: shift the followers back so no search stops early). */
static void live_remove(struct hw_heapprof *hp, struct hw_heapprof_live *e) {
        size_t mask = hp->live_cap - 1, i = (size_t) (e - hp->live), j = i;

        for (;;) {
                size_t k;

                j = (j + 1) & mask;
                if (hp->live[j].ptr == 0)
                        break;
                k = live_slot(hp, hp->live[j].ptr);
                /* move j to i when its home k is not cyclically within (i, j] */
                if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
                        hp->live[i] = hp->live[j];
                        i = j;
                }
        }
        hp->live[i].ptr = 0;
        __atomic_store_n(&hp->live_len, hp->live_len - 1, __ATOMIC_RELAXED); /* tracking_full() */
}

static void untrack(struct hw_heapprof *hp, struct hw_heapprof_live *e) {
        struct hw_heapprof_stack *st = &hp->stacks[e->stack - 1];

        if (st->live_samples > 0)
                st->live_samples--;
        st->live_bytes -= e->bytes;
        st->live_count -= e->count;
        if (st->live_samples == 0 || st->live_bytes < 0 || st->live_count < 0) {
                /* no rounding residue on an empty site */
                st->live_bytes = st->live_count = 0;
        }
        filter_remove(hp, (const void *) e->ptr);
        live_remove(hp, e);
}

/* ---- recording ------------------------------------------------------------------------------------ */

void hw_heapprof_record(struct hw_heapprof *hp, const void *ptr, size_t size, const struct hw_heapprof_frame *frames,
                        size_t n, bool track) {
        double s, p, wb, wc;
        struct hw_heapprof_live *e;
        struct hw_heapprof_stack *st;
        uint32_t id;

        pthread_mutex_lock(&hp->lock);
        __atomic_store_n(&hp->countdown, draw_interval(hp), __ATOMIC_RELAXED);
        if (!ptr || hp->sample_bytes == 0)
                goto out;

        /* the probability that this allocation was sampled, and so its weight */
        s = size ? (double) size : 1.0;
        p = -expm1(-s / (double) hp->sample_bytes);
        if (!(p > 0))
                p = 1.0 / (double) hp->sample_bytes;
        wb = s / p;
        wc = 1.0 / p;
        hp->samples_total++;
        hp->alloc_bytes += wb;
        hp->alloc_count += wc;

        id = intern_stack(hp, frames, n);
        if (id == 0) {
                hp->nomem_total++;
                goto out;
        }
        st = &hp->stacks[id - 1];
        st->alloc_bytes += wb;
        st->alloc_count += wc;

        e = live_find(hp, (uintptr_t) ptr);
        if (e) /* freed behind our back (e.g. while we were not in the chain): forget it */
                untrack(hp, e);
        if (!track || hp->live_len >= HW_HEAPPROF_TRACKED_MAX) {
                hp->tracked_full_total++;
                goto out;
        }
        if ((hp->live_len + 1) * 2 > hp->live_cap && live_grow(hp) < 0) {
                hp->nomem_total++;
                goto out;
        }
        {
                size_t i = live_slot(hp, (uintptr_t) ptr);
                while (hp->live[i].ptr)
                        i = (i + 1) & (hp->live_cap - 1);
                hp->live[i] = (struct hw_heapprof_live) { .ptr = (uintptr_t) ptr, .stack = id, .bytes = wb, .count = wc };
                __atomic_store_n(&hp->live_len, hp->live_len + 1, __ATOMIC_RELAXED);
        }
        st = &hp->stacks[id - 1]; /* intern_stack may have moved the array; re-read after it */
        st->live_samples++;
        st->live_bytes += wb;
        st->live_count += wc;
        filter_add(hp, ptr);
out:
        pthread_mutex_unlock(&hp->lock);
}

void hw_heapprof_skip(struct hw_heapprof *hp) {
        pthread_mutex_lock(&hp->lock);
        hp->busy_total++;
        __atomic_store_n(&hp->countdown, draw_interval(hp), __ATOMIC_RELAXED);
        pthread_mutex_unlock(&hp->lock);
}

void hw_heapprof_forget(struct hw_heapprof *hp, const void *ptr) {
        struct hw_heapprof_live *e;

        if (!ptr)
                return; /* 0 is the live table's empty key */
        pthread_mutex_lock(&hp->lock);
        e = live_find(hp, (uintptr_t) ptr);
        if (e)
                untrack(hp, e);
        pthread_mutex_unlock(&hp->lock);
}

/* ---- the report --------------------------------------------------------------------------------- */

static json_t *stack_json(const struct hw_heapprof *hp, uint32_t id) {
        const struct hw_heapprof_stack *st = &hp->stacks[id - 1];
        json_t *frames = json_array(), *o;

        if (!frames)
                return NULL;
        for (uint32_t i = 0; i < st->n; i++) {
                const uint32_t *pair = hp->frames + ((size_t) st->frames_off + i) * 2;
                const struct hw_heapprof_location *l = &hp->locs[pair[0] - 1];
                json_t *fr = json_pack("[s%s%I]", hp->strings + l->file_off, (size_t) l->file_len,
                                       hp->strings + l->func_off, (size_t) l->func_len, (json_int_t) pair[1]);

                if (!fr || json_array_append_new(frames, fr) < 0) {
                        json_decref(frames);
                        return NULL;
                }
        }
        o = json_pack("{s:I,s:O}", "id", (json_int_t) id, "frames", frames);
        json_decref(frames);
        return o;
}

/* An upper bound of the encoded size of a stack (quotes and backslashes double at most). */
static size_t stack_cost(const struct hw_heapprof *hp, uint32_t id) {
        const struct hw_heapprof_stack *st = &hp->stacks[id - 1];
        size_t cost = 32;

        for (uint32_t i = 0; i < st->n; i++) {
                const struct hw_heapprof_location *l = &hp->locs[hp->frames[((size_t) st->frames_off + i) * 2] - 1];
                cost += 2 * ((size_t) l->file_len + l->func_len) + 24;
        }
        return cost;
}

static json_int_t est(double v) {
        if (!(v > 0))
                return 0;
        if (v > 9.0e15)
                return (json_int_t) 9.0e15;
        return (json_int_t) llround(v);
}

json_t *hw_heapprof_report(struct hw_heapprof *hp, uint64_t gen, bool mark_sent, size_t max_sites, size_t budget) {
        uint32_t top[HW_HEAPPROF_SITES_MAX];
        size_t ntop = 0, used = 0;
        double live_bytes = 0, live_count = 0;
        json_t *sites = NULL, *stacks = NULL, *o = NULL;

        if (max_sites > HW_HEAPPROF_SITES_MAX)
                max_sites = HW_HEAPPROF_SITES_MAX;
        pthread_mutex_lock(&hp->lock);
        if (hp->sample_bytes == 0)
                goto out;

        /* top max_sites by live bytes: insertion into a short sorted array; most stacks are
         * rejected by one comparison with the smallest kept */
        for (size_t i = 0; i < hp->stacks_len; i++) {
                const struct hw_heapprof_stack *st = &hp->stacks[i];
                size_t j;

                live_bytes += st->live_bytes;
                live_count += st->live_count;
                if (!(st->live_bytes > 0) || max_sites == 0)
                        continue;
                if (ntop == max_sites && st->live_bytes <= hp->stacks[top[ntop - 1] - 1].live_bytes)
                        continue;
                if (ntop < max_sites)
                        ntop++;
                for (j = ntop - 1; j > 0 && hp->stacks[top[j - 1] - 1].live_bytes < st->live_bytes; j--)
                        top[j] = top[j - 1];
                top[j] = (uint32_t) (i + 1);
        }

        sites = json_array();
        stacks = json_array();
        if (!sites || !stacks)
                goto fail;
        for (size_t k = 0; k < ntop; k++) {
                struct hw_heapprof_stack *st = &hp->stacks[top[k] - 1];
                json_t *site;

                if (!mark_sent || st->sent_gen != gen) {
                        size_t cost = stack_cost(hp, top[k]);
                        json_t *sj;

                        if (used + cost > budget)
                                continue; /* next time */
                        sj = stack_json(hp, top[k]);
                        if (!sj || json_array_append_new(stacks, sj) < 0)
                                goto fail;
                        used += cost;
                        if (mark_sent)
                                st->sent_gen = gen;
                }
                site = json_pack("{s:I,s:I,s:I,s:I,s:I}", "stack", (json_int_t) top[k], "live_bytes",
                                 est(st->live_bytes), "live_count", est(st->live_count), "alloc_bytes_total",
                                 est(st->alloc_bytes), "alloc_count_total", est(st->alloc_count));
                if (!site || json_array_append_new(sites, site) < 0)
                        goto fail;
        }
        o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:O}", "epoch", (json_int_t) hp->epoch,
                      "sample_bytes", (json_int_t) hp->sample_bytes, "depth", (json_int_t) hp->depth,
                      "live_bytes", est(live_bytes), "live_count", est(live_count), "alloc_bytes_total",
                      est(hp->alloc_bytes), "alloc_count_total", est(hp->alloc_count), "samples_total",
                      (json_int_t) hp->samples_total, "samples_live", (json_int_t) hp->live_len,
                      "tracked_full_total", (json_int_t) hp->tracked_full_total, "stacks_full_total",
                      (json_int_t) hp->stacks_full_total, "lost_total",
                      (json_int_t) (hp->nomem_total + hp->busy_total), "sites", sites, "stacks", stacks);
out:
fail:
        pthread_mutex_unlock(&hp->lock);
        json_decref(sites);
        json_decref(stacks);
        return o;
}

double hw_heapprof_live_bytes(struct hw_heapprof *hp) {
        double sum = 0;

        pthread_mutex_lock(&hp->lock);
        for (size_t i = 0; i < hp->stacks_len; i++)
                sum += hp->stacks[i].live_bytes;
        pthread_mutex_unlock(&hp->lock);
        return sum;
}
