/* SPDX-License-Identifier: MIT */
/*
 * Tests for daemon/classify.c (why a finding's memory grows) with synthetic evidence, and for
 * daemon/evidence.c (the per-process allocator and GC trends it is computed from): each cause
 * with its sub-case, reason and remedy; the order of the questions (gc.garbage before a census
 * chain before GC disabled before retained); missing figures giving "unknown" with the reason;
 * the thinning history's trends, GC events and time with GC disabled.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "classify.h"
#include "evidence.h"

#define KIB 1024.0

/* A process that grows 100 KiB/s of RSS, nothing else known yet. */
static ClassifyInput base(void) {
        ClassifyInput in;

        classify_input_init(&in);
        in.span_seconds = 600;
        in.rss_growth = 100 * KIB;
        in.gc_known = true;
        in.gc_disabled_share = 0;
        in.gen0_collections = 50;
        in.garbage_added = 0;
        return in;
}

static Classification run(const ClassifyInput *in) {
        Classification c;

        classify_finding(in, &c);
        ck_assert_ptr_nonnull(leak_class_to_string(c.cls));
        ck_assert_ptr_nonnull(c.remedy[0]);
        ck_assert_uint_gt(strlen(c.reason), 10);
        return c;
}

START_TEST(test_names) {
        ck_assert_str_eq(leak_class_to_string(LEAK_CLASS_UNKNOWN), "unknown");
        ck_assert_str_eq(leak_class_to_string(LEAK_CLASS_PYTHON_OBJECTS_RETAINED), "python_objects_retained");
        ck_assert_str_eq(leak_class_to_string(LEAK_CLASS_UNCOLLECTABLE_CYCLES), "uncollectable_cycles");
        ck_assert_str_eq(leak_class_to_string(LEAK_CLASS_NATIVE_MEMORY), "native_memory");
        ck_assert_str_eq(leak_class_to_string(LEAK_CLASS_FRAGMENTATION), "fragmentation");
        ck_assert_ptr_null(leak_class_to_string(_LEAK_CLASS_MAX));
        ck_assert_ptr_null(leak_class_to_string((LeakClass) -1));
}
END_TEST

START_TEST(test_retained) {
        ClassifyInput in = base();
        Classification c;

        /* The Python heap grows as fast as RSS, the GC runs, nothing in gc.garbage. */
        in.python_growth = 95 * KIB;
        in.blocks_growth = 1400;
        in.sites = 2;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_PYTHON_OBJECTS_RETAINED);
        ck_assert_str_eq(c.detail, "retained");
        ck_assert_ptr_nonnull(strstr(c.reason, "2 allocation sites"));
        ck_assert_ptr_nonnull(strstr(c.remedy[0], "Bound the cache"));

        /* Blocks alone (heap profiler off) count too, weighed by the default 64 bytes. */
        in = base();
        in.blocks_growth = 1400; /* ~90 KB/s */
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_PYTHON_OBJECTS_RETAINED);
        ck_assert_ptr_null(c.detail);

        /* The Python heap detector itself says it grows: Python, whatever RSS does. */
        in = base();
        in.rss_growth = NAN;
        in.python_signal_grows = true;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_PYTHON_OBJECTS_RETAINED);
}
END_TEST

START_TEST(test_cycles) {
        ClassifyInput in = base();
        Classification c;

        /* GC disabled for most of the span while the Python heap grows. */
        in.python_growth = 90 * KIB;
        in.gc_disabled_share = 0.98;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNCOLLECTABLE_CYCLES);
        ck_assert_str_eq(c.detail, "gc_disabled");
        ck_assert_ptr_nonnull(strstr(c.remedy[0], "gc.enable()"));
        ck_assert_ptr_nonnull(strstr(c.reason, "disabled for 98 %"));
        ck_assert_ptr_null(strstr(c.reason, "finalizer"));
        /* collected objects with finalizers (the GC ran now and then): part of the evidence */
        in.collected_finalizers = 40;
        c = run(&in);
        ck_assert_str_eq(c.detail, "gc_disabled");
        ck_assert_ptr_nonnull(strstr(c.reason, "; 40 collected objects had a finalizer"));
        in.collected_finalizers = 0;
        c = run(&in);
        ck_assert_ptr_null(strstr(c.reason, "finalizer"));
        in.collected_finalizers = NAN;

        /* Enabled, but no collection in the recent half: with a normal threshold that only
         * means few allocations (a slow leak of large objects): retained. */
        in.gc_disabled_share = 0;
        in.gen0_collections = 0;
        in.threshold0 = 700;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_PYTHON_OBJECTS_RETAINED);

        /* ... with the threshold raised (or 0): starved. */
        in.threshold0 = 1e9;
        in.thresholds_changed = true;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNCOLLECTABLE_CYCLES);
        ck_assert_str_eq(c.detail, "gc_starved");
        ck_assert_ptr_nonnull(strstr(c.reason, "threshold is 1000000000 (changed at runtime)"));
        ck_assert_ptr_nonnull(strstr(c.remedy[0], "set_threshold"));
        in.threshold0 = 0;
        c = run(&in);
        ck_assert_str_eq(c.detail, "gc_starved");
        in.gen0_collections = 3;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_PYTHON_OBJECTS_RETAINED);

        /* gc.garbage grows: uncollectable, before anything else. */
        in = base();
        in.python_growth = 60 * KIB;
        in.garbage_added = 3000;
        in.garbage_finalizers = 1500;
        in.gc_disabled_share = 0.9;
        in.census_chains = 2;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNCOLLECTABLE_CYCLES);
        ck_assert_str_eq(c.detail, "uncollectable");
        ck_assert_ptr_nonnull(strstr(c.reason, "3000 entries (1500 with a finalizer)"));
        ck_assert_ptr_nonnull(strstr(c.remedy[1], "DEBUG_SAVEALL"));
}
END_TEST

START_TEST(test_census_chain_beats_disabled_gc) {
        ClassifyInput in = base();
        Classification c;

        /* A chain from a root reaches the growing objects: they are reachable, so retained,
         * although the GC is off too. Without the census the same evidence reads as cycles. */
        in.python_growth = 90 * KIB;
        in.gc_disabled_share = 1;
        in.census_types = 1;
        in.census_chains = 1;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_PYTHON_OBJECTS_RETAINED);
        ck_assert_str_eq(c.detail, "reachable");
        ck_assert_ptr_nonnull(strstr(c.reason, "1 referrer chain from a root"));
        ck_assert_ptr_nonnull(strstr(c.reason, "GC is disabled too"));

        in.census_types = -1;
        in.census_chains = -1;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNCOLLECTABLE_CYCLES);

        /* A census that found no chain is no proof either way. */
        in.census_types = 3;
        in.census_chains = 0;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNCOLLECTABLE_CYCLES);
}
END_TEST

START_TEST(test_native) {
        ClassifyInput in = base();
        Classification c;

        in.python_growth = 0.3 * KIB;
        in.blocks_growth = 10;
        in.malloc_in_use_growth = 101 * KIB;
        in.malloc_free_growth = 0;
        in.arena_growth = 0;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_NATIVE_MEMORY);
        ck_assert_str_eq(c.detail, "malloc_in_use");
        ck_assert_ptr_nonnull(strstr(c.reason, "malloc in use 101 KiB/s (101 %)"));
        ck_assert_ptr_nonnull(strstr(c.remedy[0], "free the native buffer"));
}
END_TEST

START_TEST(test_fragmentation) {
        ClassifyInput in = base();
        Classification c;

        /* pymalloc arenas grow while the objects in them do not. */
        in.python_growth = 5 * KIB;
        in.blocks_growth = 120;
        in.malloc_in_use_growth = 1 * KIB;
        in.malloc_free_growth = 0;
        in.arena_growth = 98 * KIB;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_FRAGMENTATION);
        ck_assert_str_eq(c.detail, "pymalloc_arenas_held");
        ck_assert_ptr_nonnull(strstr(c.remedy[0], "malloc_trim"));
        ck_assert_ptr_nonnull(c.remedy[1]);

        /* glibc's free chunks grow: malloc holds what was freed. */
        in.arena_growth = 0;
        in.malloc_free_growth = 80 * KIB;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_FRAGMENTATION);
        ck_assert_str_eq(c.detail, "malloc_free_held");

        /* In use grows faster than free: native wins. */
        in.malloc_in_use_growth = 90 * KIB;
        in.malloc_free_growth = 60 * KIB;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_NATIVE_MEMORY);
}
END_TEST

START_TEST(test_unknown) {
        ClassifyInput in;
        Classification c;

        /* Nothing known at all. */
        classify_input_init(&in);
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNKNOWN);
        ck_assert_ptr_nonnull(strstr(c.reason, "does not grow"));

        /* RSS grows, no Python figures: cannot tell. */
        in = base();
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNKNOWN);
        ck_assert_ptr_nonnull(strstr(c.reason, "no Python heap figures"));

        /* Python flat, no allocator figures (not glibc, no pymalloc). */
        in.python_growth = 0;
        in.blocks_growth = 0;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNKNOWN);
        ck_assert_ptr_nonnull(strstr(c.reason, "no allocator figures"));

        /* Python flat, allocators flat: something else (mmap outside malloc, thread stacks). */
        in.malloc_in_use_growth = 2 * KIB;
        in.malloc_free_growth = 0;
        in.arena_growth = 0;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNKNOWN);
        ck_assert_ptr_nonnull(strstr(c.reason, "neither malloc in use nor free"));
        ck_assert_ptr_nonnull(strstr(c.remedy[0], "smaps"));

        /* Mixed: a third each, nobody explains half. */
        in.python_growth = 33 * KIB;
        in.malloc_in_use_growth = 33 * KIB;
        in.arena_growth = 33 * KIB + 33 * KIB;
        c = run(&in);
        ck_assert_int_eq(c.cls, LEAK_CLASS_UNKNOWN);
        ck_assert_ptr_nonnull(strstr(c.reason, "no single cause"));
}
END_TEST

START_TEST(test_reason_bounded) {
        ClassifyInput in = base();
        Classification c;

        /* Huge and negative rates still format within the buffer (held: free + arenas, 2x). */
        in.rss_growth = 1e300;
        in.python_growth = -1e300;
        in.blocks_growth = -5;
        in.malloc_in_use_growth = 1e300;
        in.malloc_free_growth = 1e300;
        in.arena_growth = 1e300;
        classify_finding(&in, &c);
        ck_assert_uint_lt(strlen(c.reason), CLASSIFY_REASON_MAX);
        ck_assert_int_eq(c.cls, LEAK_CLASS_FRAGMENTATION);
}
END_TEST

/* ---- evidence.c --------------------------------------------------------------------------- */

#define T0 1764061200.0

static HwSample sample(double t, double rss, double blocks, double in_use, double arenas, bool gc_on, int64_t thr0) {
        HwSample s = {
                .time = t,
                .rss_bytes = (int64_t) rss,
                .python_allocated_blocks = (int64_t) blocks,
                .has_arenas = true,
                .arena_allocs_total = (int64_t) arenas + 5,
                .arena_frees_total = 5,
                .arena_size_bytes = 1 << 20,
                .has_malloc = true,
                .malloc_in_use_bytes = (int64_t) in_use,
                .malloc_free_bytes = 1000,
                .malloc_mmapped_bytes = 0,
                .gc_enabled = gc_on,
                .gc_garbage = 0,
                .gc_garbage_finalizers = 0,
                .gc_generations = 3,
        };
        for (int g = 0; g < 3; g++) {
                s.gc[g].threshold = g == 0 ? thr0 : 10;
                s.gc[g].collections = (int64_t) (t - T0) / (g + 1);
                s.gc[g].collected = s.gc[g].collections * 7;
                s.gc[g].pause_seconds_total = g == 0 ? 0.01 : 0; /* 1 % of each 1 s interval */
        }
        return s;
}

START_TEST(test_evidence_trends) {
        ProcessEvidence e;
        EvidenceSpan s;
        HwSample x;

        process_evidence_init(&e);
        /* 2000 s at 1 Hz: native memory grows 100 B/s, the rest flat; more than fits, so the
         * history thins and still spans everything. */
        for (int i = 0; i <= 2000; i++) {
                x = sample(T0 + i, 50e6 + 100.0 * i, 200000, 10e6 + 100.0 * i, 20, true, 700);
                process_evidence_add(&e, &x, 16e6);
        }
        ck_assert_uint_le(e.n_points, EVIDENCE_POINTS);
        ck_assert_double_le(e.points[0].start, T0);
        ck_assert_double_eq(e.points[e.n_points - 1].time, T0 + 2000);

        ck_assert_int_eq(process_evidence_span(&e, T0 + 500, T0 + 2000, &s), 0);
        ck_assert_double_eq_tol(s.slope[EVIDENCE_RSS], 100, 1);
        ck_assert_double_eq_tol(s.slope[EVIDENCE_MALLOC_IN_USE], 100, 1);
        ck_assert_double_eq_tol(s.slope[EVIDENCE_PYTHON_BLOCKS], 0, 1e-9);
        ck_assert_double_eq_tol(s.slope[EVIDENCE_PYTHON_LIVE], 0, 1e-9);
        ck_assert_double_eq_tol(s.slope[EVIDENCE_ARENA_BYTES], 0, 1e-9);
        ck_assert_double_eq(s.last[EVIDENCE_ARENA_BYTES], 20.0 * (1 << 20));
        /* counters: collections of generation 0 over the span, time in GC (1 %) */
        ck_assert_double_eq_tol(evidence_span_delta(&s, EVIDENCE_GC_COLLECTIONS0), s.to - s.from, 40);
        ck_assert_double_eq_tol(evidence_span_delta(&s, EVIDENCE_GC_PAUSE) / (s.to - s.from), 0.01, 0.001);
        ck_assert_double_eq_tol(e.recent_gc_ratio, 0.01, 1e-6);
        ck_assert_double_eq(evidence_span_delta(&s, EVIDENCE_GC_DISABLED), 0);
        ck_assert(isnan(evidence_span_delta(&s, _EVIDENCE_FIGURE_MAX)));

        /* Too few points in a span: no trend. */
        ck_assert_int_eq(process_evidence_span(&e, T0 + 5000, T0 + 6000, &s), -ENODATA);

        /* Out-of-order samples are ignored. */
        x = sample(T0 + 10, 1, 1, 1, 1, true, 700);
        process_evidence_add(&e, &x, 1);
        ck_assert_double_eq(e.last_time, T0 + 2000);
}
END_TEST

START_TEST(test_evidence_gc_events) {
        ProcessEvidence e;
        EvidenceSpan s;
        HwSample x;

        process_evidence_init(&e);
        for (int i = 0; i <= 300; i++) {
                bool on = i < 100 || i >= 200;        /* disabled for 100 s */
                int64_t thr = i < 250 ? 700 : 100000; /* thresholds raised at 250 s */
                x = sample(T0 + i, 50e6, 200000, 10e6, 20, on, thr);
                x.malloc_in_use_bytes = -1; /* glibc figures partly missing: that figure unknown */
                process_evidence_add(&e, &x, -1);
        }
        ck_assert_int_eq(e.gc_disabled_changes, 1);
        ck_assert_int_eq(e.gc_enabled_changes, 1);
        ck_assert_int_eq(e.gc_threshold_changes, 1);
        ck_assert_double_eq_tol(e.gc_disabled_total, 99, 1.01);
        ck_assert_int_eq(e.first_thresholds[0], 700);
        ck_assert_int_eq(e.last_thresholds[0], 100000);
        ck_assert_uint_eq(e.n_events, 3);
        ck_assert_str_eq(gc_event_kind_to_string(e.events[0].kind), "gc_disabled");
        ck_assert_double_eq(e.events[0].time, T0 + 100);
        ck_assert_str_eq(gc_event_kind_to_string(e.events[1].kind), "gc_enabled");
        ck_assert_str_eq(gc_event_kind_to_string(e.events[2].kind), "thresholds_changed");
        ck_assert_int_eq(e.events[2].thresholds[0], 100000);
        ck_assert_double_eq(e.gc_disabled_since, 0);

        ck_assert_int_eq(process_evidence_span(&e, T0, T0 + 300, &s), 0);
        ck_assert_double_eq_tol(evidence_span_delta(&s, EVIDENCE_GC_DISABLED) / (s.to - s.from), 1.0 / 3, 0.01);
        ck_assert(isnan(s.slope[EVIDENCE_MALLOC_IN_USE]));
        ck_assert(isnan(s.slope[EVIDENCE_PYTHON_LIVE]));

        /* More events than kept: the newest stay. */
        for (int i = 301; i <= 320; i++) {
                x = sample(T0 + i, 50e6, 200000, 10e6, 20, i % 2, 700);
                process_evidence_add(&e, &x, -1);
        }
        ck_assert_uint_eq(e.n_events, EVIDENCE_EVENTS_MAX);
        ck_assert_double_eq(e.events[EVIDENCE_EVENTS_MAX - 1].time, T0 + 320);
        ck_assert_ptr_null(gc_event_kind_to_string((GcEventKind) 99));
}
END_TEST

START_TEST(test_evidence_no_gc) {
        ProcessEvidence e;
        EvidenceSpan s;

        /* An agent that sends neither GC nor allocator figures: only RSS is known. */
        process_evidence_init(&e);
        for (int i = 0; i < 10; i++) {
                HwSample x = { .time = T0 + i, .rss_bytes = 1000 + 10 * i, .python_allocated_blocks = 0 };
                process_evidence_add(&e, &x, -1);
        }
        ck_assert_int_eq(process_evidence_span(&e, 0, INFINITY, &s), 0);
        ck_assert_double_eq_tol(s.slope[EVIDENCE_RSS], 10, 1e-9);
        ck_assert(isnan(s.slope[EVIDENCE_PYTHON_BLOCKS]));
        ck_assert(isnan(s.slope[EVIDENCE_GC_GARBAGE]));
        ck_assert(isnan(evidence_span_delta(&s, EVIDENCE_GC_PAUSE)));
        ck_assert(isnan(e.recent_gc_ratio));
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("classify");
        TCase *tc = tcase_create("classify");

        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_retained);
        tcase_add_test(tc, test_cycles);
        tcase_add_test(tc, test_census_chain_beats_disabled_gc);
        tcase_add_test(tc, test_native);
        tcase_add_test(tc, test_fragmentation);
        tcase_add_test(tc, test_unknown);
        tcase_add_test(tc, test_reason_bounded);
        tcase_add_test(tc, test_evidence_trends);
        tcase_add_test(tc, test_evidence_gc_events);
        tcase_add_test(tc, test_evidence_no_gc);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
