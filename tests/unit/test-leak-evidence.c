/* SPDX-License-Identifier: MIT */
/*
 * Tests for daemon/leak-evidence.c: samples go the daemon's way (registry_add_sample() feeds the
 * evidence history, process_leaks_add_sample() the detectors), a finding opens, and its JSON in
 * /api/v1/leaks and the process detail carries the classification, its reason and remedy and
 * the evidence; /metrics names the class. Three synthetic processes: native memory (malloc in
 * use grows with RSS, Python flat), cycles with the GC disabled at runtime (an event), and
 * fragmentation (pymalloc arena bytes grow, objects do not); plus the census's types and chains
 * taking precedence when a finding's evidence carries them.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api-leaks.h"
#include "helper-registry.h"
#include "leak-evidence.h"
#include "metrics.h"
#include "registry.h"
#include "stats.h"

#define MIB (1024.0 * 1024.0)
#define T0 1764061200.0

typedef enum Kind { NATIVE, CYCLES, FRAG } Kind;

static Registry *new_registry(void) {
        RegistryLimits limits = { .max_processes = 8, .history_capacity = 4000, .exited_retention = 60 };
        Registry *reg;

        detect_config_default(&limits.detect);
        limits.detect.window_seconds = 1;
        limits.detect.min_horizon_seconds = 30;
        limits.detect.max_horizon_seconds = 600;
        limits.detect.min_growth_relative_per_hour = 0.5;
        limits.detect.min_growth_absolute_per_hour = 0;
        reg = registry_new(&limits);
        ck_assert_ptr_nonnull(reg);
        return reg;
}

/* 150 s at 10 Hz of a process that leaks 1 MiB/s in the way `kind` says. */
static void feed(Registry *reg, Process *p, Kind kind) {
        unsigned seed = 7;

        for (int i = 0; i < 1500; i++) {
                double t = T0 + i * 0.1, grown = i * 0.1 * MIB;
                double noise = ((seed = seed * 1103515245u + 12345u) >> 8 & 0xffff) / 65536.0 * 0.2 * MIB;
                HwSample s = {
                        .seq = (uint64_t) i + 1,
                        .time = t,
                        .rss_bytes = (int64_t) (100 * MIB + grown + noise),
                        .rss_peak_bytes = (int64_t) (101 * MIB + grown),
                        .cgroup_memory_max_bytes = -1,
                        .python_allocated_blocks = 200000 + (kind == CYCLES ? (int64_t) (grown / 64) : 0),
                        .has_arenas = true,
                        .arena_allocs_total = 40 + (kind == FRAG ? (int64_t) (grown / MIB) : 0),
                        .arena_frees_total = 0,
                        .arena_size_bytes = 1 << 20,
                        .has_malloc = true,
                        .malloc_arena_bytes = (int64_t) (20 * MIB + (kind == NATIVE ? grown : 0)),
                        .malloc_in_use_bytes = (int64_t) (18 * MIB + (kind == NATIVE ? grown : 0)),
                        .malloc_free_bytes = (int64_t) (2 * MIB),
                        .malloc_mmapped_bytes = 0,
                        .malloc_keepcost_bytes = 1000,
                        .gc_enabled = kind != CYCLES || i < 20, /* disabled at 2 s */
                        .gc_garbage = 0,
                        .gc_garbage_finalizers = 0,
                        .gc_generations = 3,
                };
                LeakEvent e;

                for (int g = 0; g < 3; g++) {
                        s.gc[g].threshold = g == 0 ? 700 : 10;
                        s.gc[g].collections = s.gc_enabled ? i / (g + 1) : 20 / (g + 1);
                        s.gc[g].collected = s.gc[g].collections * 10;
                        s.gc[g].pause_seconds_total = 0.0001;
                }
                ck_assert_int_eq(registry_add_sample(reg, p, &s), 0);
                ck_assert_int_ge(process_leaks_add_sample(&p->leaks, &s, 8192 * MIB, &e), 0);
        }
}

static json_t *finding_of(Registry *reg, const Process *p) {
        json_t *doc = api_leaks_new(reg, LEAK_FILTER_OPEN), *l;
        size_t i;

        ck_assert_ptr_nonnull(doc);
        json_array_foreach(json_object_get(doc, "leaks"), i, l)
                if (strcmp(json_string_value(json_object_get(l, "process_id")), p->id) == 0) {
                        json_incref(l);
                        json_decref(doc);
                        return l;
                }
        ck_abort_msg("no open finding for %s", p->id);
        return NULL;
}

static const char *jstr(json_t *o, const char *a, const char *b) {
        json_t *v = json_object_get(o, a);
        if (b)
                v = json_object_get(v, b);
        return json_string_value(v);
}

static double jnum(json_t *o, const char *a, const char *b, const char *c) {
        json_t *v = json_object_get(json_object_get(json_object_get(o, a), b), c);
        return json_is_number(v) ? json_number_value(v) : NAN;
}

START_TEST(test_classified_findings) {
        Registry *reg = new_registry();
        Process *native = helper_attach(reg, 201, T0), *cycles = helper_attach(reg, 202, T0),
                *frag = helper_attach(reg, 203, T0);
        json_t *f, *ev, *doc;
        char *text = NULL;
        size_t size;

        feed(reg, native, NATIVE);
        feed(reg, cycles, CYCLES);
        feed(reg, frag, FRAG);

        f = finding_of(reg, native);
        ck_assert_str_eq(jstr(f, "classification", NULL), "native_memory");
        ck_assert_str_eq(jstr(f, "classification_detail", NULL), "malloc_in_use");
        ck_assert_ptr_nonnull(strstr(jstr(f, "classification_reason", NULL), "malloc in use"));
        ck_assert_uint_eq(json_array_size(json_object_get(f, "remedy")), 2);
        ev = json_object_get(f, "evidence");
        ck_assert_double_eq_tol(jnum(ev, "memory", "growth", "rss_bytes_per_second") / MIB, 1, 0.05);
        ck_assert_double_eq_tol(json_number_value(json_object_get(json_object_get(json_object_get(ev, "memory"), "growth"),
                                                                  "malloc_in_use_bytes_per_second")) / MIB, 1, 0.05);
        ck_assert_double_eq_tol(jnum(ev, "memory", "share_of_growth", "native"), 1, 0.05);
        ck_assert_double_eq(jnum(ev, "allocator", "malloc", "free_bytes"), 2 * MIB);
        ck_assert_double_eq(jnum(ev, "allocator", "pymalloc", "arenas_in_use"), 40);
        ck_assert(jnum(ev, "allocator", "pymalloc", "arena_bytes") > 0);
        /* the deciding horizon's reason, as docs/detection.md step 8 says the findings carry */
        ck_assert_ptr_nonnull(strstr(jstr(f, "reason", NULL), "growth"));
        ck_assert(json_is_true(json_object_get(json_object_get(ev, "gc"), "enabled")));
        ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(ev, "span"), "points")), 2);
        json_decref(f);

        f = finding_of(reg, cycles);
        ck_assert_str_eq(jstr(f, "classification", NULL), "uncollectable_cycles");
        ck_assert_str_eq(jstr(f, "classification_detail", NULL), "gc_disabled");
        ev = json_object_get(json_object_get(f, "evidence"), "gc");
        ck_assert(json_is_false(json_object_get(ev, "enabled")));
        ck_assert_int_eq(json_integer_value(json_object_get(ev, "disabled_changes")), 1);
        ck_assert_double_eq(json_real_value(json_object_get(ev, "disabled_since")), T0 + 2);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(ev, "events"), 0), "what")),
                         "gc_disabled");
        ck_assert(json_number_value(json_object_get(ev, "disabled_share")) > 0.9);
        json_decref(f);

        f = finding_of(reg, frag);
        ck_assert_str_eq(jstr(f, "classification", NULL), "fragmentation");
        ck_assert_str_eq(jstr(f, "classification_detail", NULL), "pymalloc_arenas_held");
        json_decref(f);

        /* The process detail's own evidence, and its finding classified the same way. */
        doc = api_process_leak_new(native);
        ck_assert_str_eq(jstr(json_object_get(doc, "finding"), "classification", NULL), "native_memory");
        json_decref(doc);
        doc = leak_evidence_process_json(frag);
        ck_assert_ptr_nonnull(doc);
        ck_assert(jnum(doc, "memory", "growth", "pymalloc_arena_bytes_per_second") > 0.9 * MIB);
        json_decref(doc);

        /* /metrics: one class per open finding, and the allocator families. */
        daemon_stats = (DaemonStats) { .start_time = T0 };
        ck_assert_int_eq(metrics_render(reg, &daemon_stats, &text, &size), 0);
        ck_assert_ptr_nonnull(strstr(text, "heapwatch_leak_classification{id=\"201-1201\",service=\"svc-201\",pid=\"201\",class=\"native_memory\"} 1\n"));
        ck_assert_ptr_nonnull(strstr(text, "class=\"uncollectable_cycles\"} 1\n"));
        ck_assert_ptr_nonnull(strstr(text, "class=\"fragmentation\"} 1\n"));
        ck_assert_ptr_nonnull(strstr(text, "heapwatch_malloc_free_bytes{id=\"201-1201\",service=\"svc-201\",pid=\"201\"} 2097152\n"));
        ck_assert_ptr_nonnull(strstr(text, "heapwatch_gc_disables_total{id=\"202-1202\",service=\"svc-202\",pid=\"202\"} 1\n"));
        ck_assert_ptr_nonnull(strstr(text, "heapwatch_python_arenas{id=\"203-1203\",service=\"svc-203\",pid=\"203\"} 189\n"));
        free(text);
        ck_assert_int_eq(leak_evidence_current_class(native), LEAK_CLASS_NATIVE_MEMORY);
        registry_free(reg);
}
END_TEST

START_TEST(test_census_in_evidence) {
        Registry *reg = new_registry();
        Process *cycles = helper_attach(reg, 301, T0);
        json_t *o;

        feed(reg, cycles, CYCLES);
        /* What the census adds to a finding before the classification is made: a chain from a
         * root proves the objects reachable, so retained although the GC is off. */
        o = json_pack("{s:[], s:{s:[{s:s}], s:[s]}}", "suspects", "evidence", "types", "type", "Request", "chains",
                      "app.requests -> list -> Request");
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(leak_evidence_add_json(o, cycles, &cycles->leaks.current), 0);
        ck_assert_str_eq(jstr(o, "classification", NULL), "python_objects_retained");
        ck_assert_str_eq(jstr(o, "classification_detail", NULL), "reachable");
        ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(o, "evidence"), "types")), 1);
        ck_assert_ptr_nonnull(json_object_get(json_object_get(o, "evidence"), "gc"));
        json_decref(o);
        registry_free(reg);
}
END_TEST

START_TEST(test_no_samples) {
        Registry *reg = new_registry();
        Process *p = helper_attach(reg, 401, T0);
        json_t *o;

        o = leak_evidence_process_json(p);
        ck_assert(json_is_null(o));
        json_decref(o);
        ck_assert(isnan(leak_evidence_python_share(p)));
        ck_assert(isnan(leak_evidence_free_held_share(p)));
        ck_assert(isnan(leak_evidence_collected_per_collection(p, 0)));
        ck_assert_int_eq(leak_evidence_current_class(p), LEAK_CLASS_UNKNOWN);
        registry_free(reg);
}
END_TEST

int main(void) {
        Suite *s = suite_create("leak-evidence");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_classified_findings);
        tcase_add_test(tc, test_census_in_evidence);
        tcase_add_test(tc, test_no_samples);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
