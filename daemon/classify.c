/* SPDX-License-Identifier: MIT */
/*
 * Leak classification (see classify.h).
 *
 * The order of the questions matters, and each answer says why:
 *  1. Does the Python heap grow (its detector says so, or Python objects account for at least
 *     half of the RSS growth)? Then it is Python objects, and the GC decides which kind:
 *     gc.garbage growing means uncollectable cycles; a referrer chain from a root (the census)
 *     proves the objects are reachable, so retained, even with the GC off; GC disabled for
 *     most of the span, or no collection at all while enabled (starved by thresholds), means
 *     cycles nobody collects; otherwise retained.
 *  2. Otherwise RSS grows without the Python heap: glibc's in-use bytes growing with it is
 *     native memory (a C extension, ctypes, a native library); free bytes held by malloc or
 *     pymalloc arenas growing while the objects in them do not is fragmentation (allocator
 *     retention).
 *  3. Anything else is unknown, with the shares that were measured.
 * "Accounts for" is a share of the RSS floor's growth over the same span; half is the bar, a
 * quarter is where the Python heap counts as flat.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "classify.h"

#define SHARE_EXPLAINS 0.5 /* a cause explains the growth when it accounts for this much of it */
#define SHARE_FLAT 0.25    /* the Python heap is "flat" below this share */
#define BYTES_PER_BLOCK_DEFAULT 64.0

static const char *const class_names[_LEAK_CLASS_MAX] = {
        [LEAK_CLASS_UNKNOWN] = "unknown",
        [LEAK_CLASS_PYTHON_OBJECTS_RETAINED] = "python_objects_retained",
        [LEAK_CLASS_UNCOLLECTABLE_CYCLES] = "uncollectable_cycles",
        [LEAK_CLASS_NATIVE_MEMORY] = "native_memory",
        [LEAK_CLASS_FRAGMENTATION] = "fragmentation",
};

const char *leak_class_to_string(LeakClass c) {
        return (unsigned) c < _LEAK_CLASS_MAX ? class_names[c] : NULL;
}

void classify_input_init(ClassifyInput *in) {
        *in = (ClassifyInput) {
                .span_seconds = NAN,
                .rss_growth = NAN,
                .python_growth = NAN,
                .blocks_growth = NAN,
                .bytes_per_block = NAN,
                .arena_growth = NAN,
                .malloc_in_use_growth = NAN,
                .malloc_free_growth = NAN,
                .garbage_added = NAN,
                .garbage_finalizers = NAN,
                .collected_finalizers = NAN,
                .gc_disabled_share = NAN,
                .gen0_collections = NAN,
                .threshold0 = NAN,
                .census_types = -1,
                .census_chains = -1,
        };
}

/* The larger of two rates, ignoring an unknown one. */
static double max_known(double a, double b) {
        if (isnan(a))
                return b;
        if (isnan(b))
                return a;
        return a > b ? a : b;
}

static double pos(double v) {
        return isnan(v) || v < 0 ? 0 : v;
}

static void set(Classification *c, LeakClass cls, const char *detail, const char *remedy0, const char *remedy1) {
        c->cls = cls;
        c->detail = detail;
        c->remedy[0] = remedy0;
        c->remedy[1] = remedy1;
}

/* "<label>98.2 KiB/s (97 %)", appended to the reason. */
static void add(Classification *c, const char *label, double rate, double share) {
        size_t n = strlen(c->reason);
        char rbuf[48];

        if (n >= sizeof c->reason - 1)
                return;
        if (isnan(rate))
                snprintf(rbuf, sizeof rbuf, "unknown");
        else if (fabs(rate) >= 1024 * 1024)
                snprintf(rbuf, sizeof rbuf, "%.3g MiB/s", rate / (1024 * 1024));
        else
                snprintf(rbuf, sizeof rbuf, "%.3g KiB/s", rate / 1024);
        if (isnan(share))
                snprintf(c->reason + n, sizeof c->reason - n, "%s%s", label, rbuf);
        else
                snprintf(c->reason + n, sizeof c->reason - n, "%s%s (%.0f %%)", label, rbuf, share * 100);
}

static void add_text(Classification *c, const char *text) {
        size_t n = strlen(c->reason);

        if (n < sizeof c->reason - 1)
                snprintf(c->reason + n, sizeof c->reason - n, "%s", text);
}

/* Cycles: how many collected objects had a finalizer over the span, when any did (cycles with
 * __del__ are collected since Python 3.4, but their finalizers run inside the collection: a
 * slow or resurrecting __del__ is worth knowing about). */
static void add_collected_finalizers(const ClassifyInput *in, Classification *c) {
        size_t n = strlen(c->reason);

        if (!isnan(in->collected_finalizers) && in->collected_finalizers >= 1 && n < sizeof c->reason - 1)
                snprintf(c->reason + n, sizeof c->reason - n, "; %.0f collected objects had a finalizer",
                         in->collected_finalizers);
}

static void classify_python(const ClassifyInput *in, Classification *c) {
        bool gc_off = in->gc_known && !isnan(in->gc_disabled_share) && in->gc_disabled_share >= 0.5;
        bool starved = in->gc_known && !gc_off && !isnan(in->gc_disabled_share) && in->gen0_collections == 0 &&
                       (in->threshold0 == 0 || in->threshold0 >= CLASSIFY_THRESHOLD_STARVED);

        if (!isnan(in->garbage_added) && in->garbage_added >= 1) {
                set(c, LEAK_CLASS_UNCOLLECTABLE_CYCLES, "uncollectable",
                    "Objects in gc.garbage are never freed: break the cycles (weakref) or drop the legacy finalizers (tp_del) that keep them there.",
                    "Do not leave gc.DEBUG_SAVEALL set; clear gc.garbage after inspecting it.");
                snprintf(c->reason + strlen(c->reason), sizeof c->reason - strlen(c->reason),
                         "; gc.garbage grew by %.0f entries (%.0f with a finalizer)", in->garbage_added,
                         isnan(in->garbage_finalizers) ? 0 : in->garbage_finalizers);
                add_collected_finalizers(in, c);
                return;
        }
        if (in->census_chains > 0) {
                set(c, LEAK_CLASS_PYTHON_OBJECTS_RETAINED, "reachable",
                    "Bound the cache or registry the chain starts from (LRU/TTL), or remove entries when done (unregister the handler).",
                    "Where the holder only needs to find live objects, use weak references (weakref.WeakValueDictionary, WeakSet).");
                snprintf(c->reason + strlen(c->reason), sizeof c->reason - strlen(c->reason),
                         "; %d referrer chain%s from a root reach%s the growing objects%s", in->census_chains,
                         in->census_chains == 1 ? "" : "s", in->census_chains == 1 ? "es" : "", gc_off ? " (the GC is disabled too)" : "");
                return;
        }
        if (gc_off) {
                set(c, LEAK_CLASS_UNCOLLECTABLE_CYCLES, "gc_disabled",
                    "The cyclic GC is disabled: re-enable it (gc.enable()), or collect explicitly (gc.collect()) at quiet moments.",
                    "Or avoid the cycles: weak back-references (weakref.ref) or clearing them when a request ends.");
                snprintf(c->reason + strlen(c->reason), sizeof c->reason - strlen(c->reason),
                         "; the cyclic GC was disabled for %.0f %% of the span", in->gc_disabled_share * 100);
                add_collected_finalizers(in, c);
                return;
        }
        if (starved) {
                set(c, LEAK_CLASS_UNCOLLECTABLE_CYCLES, "gc_starved",
                    "No collection ran over the span: restore the GC thresholds (gc.set_threshold(700, 10, 10)) or collect explicitly.",
                    "Or avoid the cycles: weak back-references (weakref.ref).");
                snprintf(c->reason + strlen(c->reason), sizeof c->reason - strlen(c->reason),
                         "; no collection ran in the recent half of the span, generation 0's threshold is %.0f%s",
                         in->threshold0, in->thresholds_changed ? " (changed at runtime)" : "");
                add_collected_finalizers(in, c);
                return;
        }
        set(c, LEAK_CLASS_PYTHON_OBJECTS_RETAINED, in->sites > 0 || in->census_types > 0 ? "retained" : NULL,
            "Bound the cache, list or registry that keeps growing (LRU/TTL, a maximum size), or remove entries when done (unregister handlers).",
            "Where the holder only needs to find live objects, use weak references; stream with generators instead of building lists.");
        if (in->sites > 0)
                snprintf(c->reason + strlen(c->reason), sizeof c->reason - strlen(c->reason),
                         "; %d allocation site%s grow%s", in->sites, in->sites == 1 ? "" : "s", in->sites == 1 ? "s" : "");
        if (in->census_types > 0)
                snprintf(c->reason + strlen(c->reason), sizeof c->reason - strlen(c->reason),
                         "; %d type%s grow%s", in->census_types, in->census_types == 1 ? "" : "s",
                         in->census_types == 1 ? "s" : "");
}

void classify_finding(const ClassifyInput *in, Classification *c) {
        double g = in->rss_growth > 0 ? in->rss_growth : NAN;
        double bpb = in->bytes_per_block > 0 ? in->bytes_per_block : BYTES_PER_BLOCK_DEFAULT;
        double py = max_known(in->python_growth, isnan(in->blocks_growth) ? NAN : in->blocks_growth * bpb);
        double py_share = isnan(g) || isnan(py) ? NAN : py / g;
        double native_share = isnan(g) || isnan(in->malloc_in_use_growth) ? NAN : in->malloc_in_use_growth / g;
        double held = pos(in->malloc_free_growth) + (isnan(in->arena_growth) ? 0 : pos(in->arena_growth - pos(py)));
        double held_share = isnan(g) || (isnan(in->malloc_free_growth) && isnan(in->arena_growth)) ? NAN : held / g;

        memset(c, 0, sizeof *c);
        set(c, LEAK_CLASS_UNKNOWN, NULL,
            "Look at which mappings grow (/proc/PID/smaps) and at native libraries' own caches and allocators.", NULL);

        add(c, "RSS grows ", in->rss_growth, NAN);
        add(c, "; Python objects ", py, py_share);

        if (in->python_signal_grows || (!isnan(py_share) && py_share >= SHARE_EXPLAINS) ||
            (isnan(g) && py > 0)) {
                classify_python(in, c);
                return;
        }

        add(c, "; malloc in use ", in->malloc_in_use_growth, native_share);
        add(c, "; free but held ", isnan(held_share) ? NAN : held, held_share);
        if (isnan(g)) {
                add_text(c, "; the resident memory does not grow");
                return;
        }
        if (isnan(py_share)) {
                add_text(c, "; no Python heap figures to tell Python from native memory");
                return;
        }
        if (py_share >= SHARE_FLAT && (isnan(native_share) || native_share < SHARE_EXPLAINS) &&
            (isnan(held_share) || held_share < SHARE_EXPLAINS)) {
                add_text(c, "; no single cause explains half of the growth");
                return;
        }
        if (!isnan(native_share) && native_share >= SHARE_EXPLAINS &&
            (isnan(held_share) || native_share >= held_share)) {
                set(c, LEAK_CLASS_NATIVE_MEMORY, "malloc_in_use",
                    "Memory allocated outside the Python heap is never freed: free the native buffer (a C extension, ctypes, a native library's handle or cache).",
                    "Find the library with the heap profiler off the Python path: e.g. heaptrack or LD_PRELOAD=libjemalloc with profiling.");
                return;
        }
        if (!isnan(held_share) && held_share >= SHARE_EXPLAINS) {
                set(c, LEAK_CLASS_FRAGMENTATION, !isnan(in->malloc_free_growth) && in->malloc_free_growth > pos(in->arena_growth - pos(py))
                                                     ? "malloc_free_held" : "pymalloc_arenas_held",
                    "The allocator keeps freed memory it cannot return (fragmentation): call malloc_trim(0) after peaks, cap arenas with MALLOC_ARENA_MAX=2.",
                    "Keep fewer long-lived objects between short-lived ones: process in bounded batches, generators or arrays instead of lists of small objects.");
                return;
        }
        if (isnan(native_share) && isnan(held_share))
                add_text(c, "; no allocator figures (not glibc?) to tell native memory from fragmentation");
        else
                add_text(c, "; neither malloc in use nor free memory held explains the growth");
}
