/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the daemon's heap profile path: the "heap" member of SAMPLE is decoded to the
 * values it carries and every bound (sites, stacks, frames, string lengths, control characters,
 * ranges) is enforced by refusing the whole message; daemon/heap.c keeps per-site history within
 * its bounds (sites beyond HEAP_SITES_MAX and sites with unknown stacks go to "other"), starts
 * afresh on a new epoch, reports growth over a window and names the growing sites of a leak
 * with their share; the router matches /heap and validates its query.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "message.h"
#include "router.h"
#include "sample.h"

static char *sample_with_heap(const char *heap) {
        char *s = NULL;

        ck_assert_int_ge(asprintf(&s, "{\"seq\": 1, \"time\": 1764061251.02, \"process\": {\"rss_bytes\": 1000},"
                                      " \"heap\": %s}",
                                  heap),
                         0);
        return s;
}

static int decode(const char *heap, HwHeapReport **ret, char *err, size_t size) {
        char *s = sample_with_heap(heap);
        HwSample sample;
        int r;

        *ret = NULL;
        r = message_decode_sample_heap((const uint8_t *) s, strlen(s), false, &sample, ret, err, size);
        free(s);
        return r;
}

static const char good_heap[] =
        "{\"epoch\": 77, \"sample_bytes\": 524288, \"depth\": 32, \"live_bytes\": 3000, \"live_count\": 3,"
        " \"alloc_bytes_total\": 9000, \"alloc_count_total\": 9, \"samples_total\": 5, \"samples_live\": 2,"
        " \"tracked_full_total\": 0, \"stacks_full_total\": 0, \"lost_total\": 1, \"future\": {\"x\": 1},"
        " \"sites\": [{\"stack\": 1, \"live_bytes\": 2000, \"live_count\": 2, \"alloc_bytes_total\": 8000,"
        "             \"alloc_count_total\": 8, \"new\": true}],"
        " \"stacks\": [{\"id\": 1, \"frames\": [[\"app.py\", \"load\", 12], [\"app.py\", \"<module>\", 40]]}]}";

START_TEST(test_decode_good) {
        HwHeapReport *h = NULL;
        char err[200] = "";

        ck_assert_int_eq(decode(good_heap, &h, err, sizeof err), 0);
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(h->epoch, 77);
        ck_assert_int_eq(h->sample_bytes, 524288);
        ck_assert_int_eq(h->live_bytes, 3000);
        ck_assert_int_eq(h->lost_total, 1);
        ck_assert_uint_eq(h->n_sites, 1);
        ck_assert_int_eq(h->sites[0].stack, 1);
        ck_assert_int_eq(h->sites[0].alloc_count_total, 8);
        ck_assert_uint_eq(h->n_stacks, 1);
        ck_assert_uint_eq(h->stacks[0].n_frames, 2);
        ck_assert_str_eq(h->stacks[0].frames[0].func, "load");
        ck_assert_int_eq(h->stacks[0].frames[1].line, 40);
        hw_heap_report_free(h);

        /* a sample without "heap" has none; the plain decoder accepts one with it */
        {
                const char *s = "{\"seq\": 1, \"time\": 1764061251.02, \"process\": {\"rss_bytes\": 1}}";
                char *with = sample_with_heap(good_heap);
                HwSample sample;

                h = (HwHeapReport *) 1;
                ck_assert_int_eq(message_decode_sample_heap((const uint8_t *) s, strlen(s), false, &sample, &h, err,
                                                            sizeof err),
                                 0);
                ck_assert_ptr_null(h);
                ck_assert_int_eq(message_decode_sample((const uint8_t *) with, strlen(with), false, &sample, err,
                                                       sizeof err),
                                 0);
                free(with);
        }
}
END_TEST

/* want: -EINVAL for a wrong member, -E2BIG for one beyond the protocol's bounds. */
static void expect_refused(const char *heap, const char *what, int want) {
        HwHeapReport *h = NULL;
        char err[200] = "";
        int r = decode(heap, &h, err, sizeof err);

        ck_assert_msg(r == want, "%s: %d, expected %d", heap, r, want);
        ck_assert_ptr_null(h);
        ck_assert_msg(strstr(err, what), "error '%s' does not mention '%s'", err, what);
}

static void expect_bad(const char *heap, const char *what) {
        expect_refused(heap, what, -EINVAL);
}

static void expect_over_bound(const char *heap, const char *what) {
        expect_refused(heap, what, -E2BIG);
}

START_TEST(test_decode_bad) {
        char *big;
        size_t n = 0;

        expect_bad("[]", "heap");
        expect_bad("{\"sample_bytes\": 1}", "epoch");
        expect_bad("{\"epoch\": 1}", "sample_bytes");
        expect_bad("{\"epoch\": 0, \"sample_bytes\": 1}", "epoch");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"live_bytes\": -5}", "live_bytes");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"live_bytes\": 1.5}", "live_bytes");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"sites\": {}}", "sites");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"sites\": [3]}", "sites");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"sites\": [{\"live_bytes\": 1}]}", "stack");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"sites\": [{\"stack\": 0, \"live_bytes\": 1}]}", "stack");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"sites\": [{\"stack\": 4294967296, \"live_bytes\": 1}]}", "stack");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"stacks\": [{\"id\": 1}]}", "frames");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"stacks\": [{\"id\": 1, \"frames\": [[\"a\", \"b\"]]}]}", "frames");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"stacks\": [{\"id\": 1, \"frames\": [[\"a\", \"b\", -1]]}]}", "line");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"stacks\": [{\"id\": 1, \"frames\": [[\"a\\u001b\", \"b\", 1]]}]}",
                   "control");
        expect_bad("{\"epoch\": 1, \"sample_bytes\": 1, \"stacks\": [{\"id\": 1, \"frames\": [[1, \"b\", 1]]}]}", "string");

        /* counts and lengths over the bounds */
        big = malloc(200000);
        n += (size_t) sprintf(big + n, "{\"epoch\": 1, \"sample_bytes\": 1, \"sites\": [");
        for (int i = 0; i <= HW_HEAP_SITES_MAX; i++)
                n += (size_t) sprintf(big + n, "%s{\"stack\": 1, \"live_bytes\": 1}", i ? "," : "");
        sprintf(big + n, "]}");
        expect_over_bound(big, "sites");
        n = (size_t) sprintf(big, "{\"epoch\": 1, \"sample_bytes\": 1, \"stacks\": [{\"id\": 1, \"frames\": [");
        for (int i = 0; i <= HW_HEAP_FRAMES_MAX; i++)
                n += (size_t) sprintf(big + n, "%s[\"a\", \"b\", 1]", i ? "," : "");
        sprintf(big + n, "]}]}");
        expect_over_bound(big, "frames");
        n = (size_t) sprintf(big, "{\"epoch\": 1, \"sample_bytes\": 1, \"stacks\": [{\"id\": 1, \"frames\": [[\"");
        memset(big + n, 'f', HW_HEAP_FILE_MAX + 1);
        n += HW_HEAP_FILE_MAX + 1;
        sprintf(big + n, "\", \"b\", 1]]}]}");
        expect_over_bound(big, "longer");
        free(big);
}
END_TEST

/* ---- heap.c ---------------------------------------------------------------------------------- */

/* A report with sites (stack id, live bytes) and, for each id in `stacks`, a one-frame stack
 * whose function is "f<id>". */
static HwHeapReport *report(int64_t epoch, const int64_t (*sites)[2], size_t n_sites, const int64_t *stacks,
                            size_t n_stacks) {
        HwHeapReport *r = calloc(1, sizeof *r);
        int64_t total = 0;

        r->epoch = epoch;
        r->sample_bytes = 524288;
        r->sites = calloc(n_sites + 1, sizeof *r->sites);
        r->stacks = calloc(n_stacks + 1, sizeof *r->stacks);
        for (size_t i = 0; i < n_sites; i++) {
                r->sites[i] = (HwHeapSite) { .stack = sites[i][0], .live_bytes = sites[i][1], .live_count = 1 };
                total += sites[i][1];
        }
        r->n_sites = n_sites;
        for (size_t i = 0; i < n_stacks; i++) {
                HwHeapStack *s = &r->stacks[i];
                char name[32];

                snprintf(name, sizeof name, "f%lld", (long long) stacks[i]);
                s->id = stacks[i];
                s->n_frames = 1;
                s->frames = calloc(1, sizeof *s->frames);
                s->frames[0] = (HwHeapFrame) { .file = strdup("app.py"), .func = strdup(name), .line = 7 };
        }
        r->n_stacks = n_stacks;
        r->live_bytes = total + 1000; /* 1000 bytes in sites below the agent's top list */
        return r;
}

static void ingest(ProcessHeap **h, HwHeapReport *r, double t) {
        ck_assert_int_eq(process_heap_ingest(h, r, t), 0);
        hw_heap_report_free(r);
}

static json_t *site_by_stack(json_t *doc, int64_t id) {
        json_t *s;
        size_t i;

        json_array_foreach(json_object_get(doc, "sites"), i, s) if (json_integer_value(json_object_get(s, "stack_id")) == id) return s;
        return NULL;
}

START_TEST(test_history_growth_and_suspects) {
        ProcessHeap *h = NULL;
        json_t *doc, *s, *sus;

        doc = process_heap_json(NULL, "1-2", 100, 600, 20);
        ck_assert(json_is_false(json_object_get(doc, "profiling")));
        json_decref(doc);

        /* site 1 leaks 1000 B/s, site 2 is flat, stacks sent once */
        for (int t = 0; t <= 100; t++) {
                int64_t sites[2][2] = { { 1, 10000 + 1000 * t }, { 2, 50000 } };
                int64_t stacks[2] = { 1, 2 };
                ingest(&h, report(5, sites, 2, stacks, t == 0 ? 2 : 0), 1000 + t);
        }
        doc = process_heap_json(h, "1-2", 1100, 60, 20);
        ck_assert(json_is_true(json_object_get(doc, "profiling")));
        s = site_by_stack(doc, 1);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "live_bytes")), 110000);
        ck_assert_double_eq_tol(json_number_value(json_object_get(s, "growth_bytes")), 60000, 1);
        ck_assert_double_eq_tol(json_number_value(json_object_get(s, "growth_bytes_per_second")), 1000, 1);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(s, "frames"), 0), "function")), "f1");
        ck_assert_double_eq_tol(json_number_value(json_object_get(site_by_stack(doc, 2), "growth_bytes")), 0, 1e-9);
        /* largest first: site 1 (110000) before site 2 (50000) */
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(doc, "sites"), 0), "stack_id")), 1);
        ck_assert_double_eq_tol(json_number_value(json_object_get(json_object_get(doc, "other"), "live_bytes")), 1000, 1);
        ck_assert_int_le(json_integer_value(json_object_get(doc, "history_points")), HEAP_POINTS);
        json_decref(doc);

        sus = process_heap_suspects_json(h, 1050, 1100, 5);
        ck_assert_uint_eq(json_array_size(sus), 1);
        s = json_array_get(sus, 0);
        ck_assert_str_eq(json_string_value(json_object_get(s, "function")), "f1");
        ck_assert_str_eq(json_string_value(json_object_get(s, "kind")), "allocation_site");
        ck_assert_double_eq_tol(json_number_value(json_object_get(s, "share")), 1.0, 1e-9);
        json_decref(sus);

        /* a new epoch (stop() and start() in the agent): old sites and stacks are gone */
        {
                int64_t sites[1][2] = { { 1, 500 } };
                int64_t stacks[1] = { 1 };
                ingest(&h, report(6, sites, 1, stacks, 1), 1101);
        }
        doc = process_heap_json(h, "1-2", 1101, 600, 20);
        ck_assert_uint_eq(json_array_size(json_object_get(doc, "sites")), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, "history_points")), 1);
        json_decref(doc);
        process_heap_free(h);
}
END_TEST

START_TEST(test_shares_two_leaks) {
        ProcessHeap *h = NULL;
        json_t *sus;

        for (int t = 0; t <= 20; t++) {
                int64_t sites[3][2] = { { 1, 3000 * t }, { 2, 1000 * t }, { 3, 100000 - 10 * t } };
                int64_t stacks[3] = { 1, 2, 3 };
                ingest(&h, report(1, sites, 3, stacks, t == 0 ? 3 : 0), 10 + t);
        }
        sus = process_heap_suspects_json(h, 0, 1e12, 5);
        ck_assert_uint_eq(json_array_size(sus), 2);
        ck_assert_double_eq_tol(json_number_value(json_object_get(json_array_get(sus, 0), "share")), 0.75, 1e-6);
        ck_assert_double_eq_tol(json_number_value(json_object_get(json_array_get(sus, 1), "share")), 0.25, 1e-6);
        ck_assert_double_eq_tol(json_number_value(json_object_get(json_array_get(sus, 0), "growth_bytes")), 60000, 1);
        json_decref(sus);
        sus = process_heap_suspects_json(NULL, 0, 1, 5);
        ck_assert_uint_eq(json_array_size(sus), 0);
        json_decref(sus);
        process_heap_free(h);
}
END_TEST

START_TEST(test_bounds_unknown_and_other) {
        ProcessHeap *h = NULL;
        json_t *doc;
        int64_t sites[HEAP_SITES_MAX + 10][2], stacks[HEAP_SITES_MAX + 10];

        /* a site whose stack was never sent goes to "other" and is counted */
        {
                int64_t s1[1][2] = { { 99, 5000 } };
                ingest(&h, report(1, s1, 1, NULL, 0), 1);
        }
        ck_assert_uint_eq(process_heap_unknown_sites_total(h), 1);
        doc = process_heap_json(h, "1-2", 1, 600, 20);
        ck_assert_uint_eq(json_array_size(json_object_get(doc, "sites")), 0);
        ck_assert_double_eq_tol(json_number_value(json_object_get(json_object_get(doc, "other"), "live_bytes")), 6000, 1);
        json_decref(doc);

        /* more sites than slots: the extra (smallest) ones are merged into other */
        for (size_t i = 0; i < HEAP_SITES_MAX + 10; i++) {
                sites[i][0] = (int64_t) i + 1;
                sites[i][1] = 100000 - (int64_t) i;
                stacks[i] = (int64_t) i + 1;
        }
        ingest(&h, report(1, sites, HEAP_SITES_MAX + 10, stacks, HEAP_SITES_MAX + 10), 2);
        doc = process_heap_json(h, "1-2", 2, 600, HEAP_LIMIT_MAX);
        ck_assert_uint_eq(json_array_size(json_object_get(doc, "sites")), HEAP_SITES_MAX);
        ck_assert_double_eq_tol(json_number_value(json_object_get(json_object_get(doc, "other"), "live_bytes")),
                                1000 + 10 * 100000 - (HEAP_SITES_MAX * 10 + 45), 1);
        json_decref(doc);

        /* long runs keep at most HEAP_POINTS points spanning the whole run */
        for (int t = 3; t < 3000; t++)
                ingest(&h, report(1, sites, 1, NULL, 0), t);
        doc = process_heap_json(h, "1-2", 3000, 1e6, 5);
        ck_assert_int_le(json_integer_value(json_object_get(doc, "history_points")), HEAP_POINTS);
        ck_assert_double_le(json_number_value(json_object_get(doc, "history_from")), 20);
        json_decref(doc);
        process_heap_free(h);
}
END_TEST

/* A report carrying one stack of HW_HEAP_FRAMES_MAX frames named file and func and, when
 * with_site, a site that uses it (a tracked site's stack is never released). */
static HwHeapReport *long_stack_report(int64_t id, const char *file, const char *func, bool with_site) {
        HwHeapReport *r = calloc(1, sizeof *r);
        HwHeapStack *s;

        r->epoch = 1;
        r->sample_bytes = 1;
        r->live_bytes = 10;
        r->stacks = calloc(1, sizeof *r->stacks);
        r->n_stacks = 1;
        s = &r->stacks[0];
        s->id = id;
        s->n_frames = HW_HEAP_FRAMES_MAX;
        s->frames = calloc(HW_HEAP_FRAMES_MAX, sizeof *s->frames);
        for (size_t k = 0; k < HW_HEAP_FRAMES_MAX; k++)
                s->frames[k] = (HwHeapFrame) { .file = strdup(file), .func = strdup(func), .line = 1 };
        if (with_site) {
                r->sites = calloc(1, sizeof *r->sites);
                r->sites[0] = (HwHeapSite) { .stack = id, .live_bytes = 10, .live_count = 1 };
                r->n_sites = 1;
        }
        return r;
}

/* ~17 KB as malloc counts it */
static HwHeapReport *big_stack_report(int64_t id, bool with_site) {
        return long_stack_report(id, "/srv/app/lib/python3.11/site-packages/service/handlers.py", "handle", with_site);
}

/* Send n stacks of HW_HEAP_FRAMES_MAX frames named file and func, one per report, then a site
 * report for each: how many of them can still be named (their stack kept). Those kept must be
 * the newest (least recently used go first). */
static size_t stacks_kept(const char *file, const char *func, int64_t n) {
        ProcessHeap *h = NULL;
        json_t *doc;
        size_t kept = 0;

        for (int64_t id = 1; id <= n; id++)
                ingest(&h, long_stack_report(id, file, func, false), (double) id);
        for (int64_t id = 1; id <= n; id++) {
                int64_t sites[1][2] = { { id, 100 } };
                ingest(&h, report(1, sites, 1, NULL, 0), 10.0 * (double) n + (double) id);
                doc = process_heap_json(h, "1-2", 0, 600, 20);
                if (json_array_size(json_object_get(doc, "sites")) == 1)
                        kept++;
                else
                        ck_assert_uint_eq(kept, 0); /* none kept before one lost */
                json_decref(doc);
        }
        process_heap_free(h);
        return kept;
}

/* A peer sending huge stacks cannot make the daemon keep more than HEAP_STACK_BYTES_MAX of
 * names per process: older unused stacks are released, the newest stay usable. */
START_TEST(test_stack_bytes_bounded) {
        char file[HW_HEAP_FILE_MAX + 1];
        size_t kept;

        memset(file, 'f', HW_HEAP_FILE_MAX);
        file[HW_HEAP_FILE_MAX] = '\0';
        /* 200 stacks of ~66 KB: only the newest ~31 fit in 2 MiB */
        kept = stacks_kept(file, "f", 200);
        ck_assert_uint_ge(kept, 20);
        ck_assert_uint_le(kept, HEAP_STACK_BYTES_MAX / (HW_HEAP_FRAMES_MAX * HW_HEAP_FILE_MAX) + 1);
}
END_TEST

/* The bound counts what malloc takes, not the characters: a name of one character is a block of
 * 32 bytes (glibc, 64 bits), so a frame of two such names costs 88 bytes with its own 24 in the
 * frames array. Counted as 2 characters, a peer sending short names held three times the
 * budget (about 600 stacks of 128 frames instead of about 185). */
START_TEST(test_stack_bytes_bounded_for_short_names) {
        size_t kept = stacks_kept("f", "g", 1000);

        ck_assert_uint_ge(kept, 100);
        ck_assert_uint_le(kept, HEAP_STACK_BYTES_MAX / (HW_HEAP_FRAMES_MAX * (32 + 32 + 24)) + 1);
}
END_TEST

/* Whether a site of stack id is named in h (its stack kept); the site is tracked afterwards. */
static bool stack_known(ProcessHeap **h, int64_t id, double t) {
        int64_t sites[1][2] = { { id, 100 } };
        uint64_t unknown = process_heap_unknown_sites_total(*h);

        ingest(h, report(1, sites, 1, NULL, 0), t);
        return process_heap_unknown_sites_total(*h) == unknown;
}

/* All processes' stacks together stay within the daemon-wide bound (lowered to 1 MiB here, 60
 * stacks): the newcomer's stacks are kept by releasing unused ones, an ended process's first,
 * then the biggest holder's; tracked sites' stacks are never taken, and when only those are
 * left a new stack is not kept (its sites go to "other" until the agent is asked again). */
START_TEST(test_stack_bytes_bounded_daemon_wide) {
        const size_t max = 1024 * 1024;
        ProcessHeap *a = NULL, *b = NULL, *c = NULL;
        double t = 1;

        ck_assert_uint_eq(process_heap_stack_bytes_all(), 0);
        process_heap_set_stack_bytes_all_max(max);
        for (int64_t id = 1; id <= 50; id++) /* a: 50 unused stacks, ~870 KB */
                ingest(&a, big_stack_report(id, false), t++);
        ck_assert_uint_gt(process_heap_stack_bytes_all(), max * 3 / 4);
        for (int64_t id = 1; id <= 30; id++) { /* b: 30 more; a holds the most, so a gives way */
                ingest(&b, big_stack_report(id, false), t++);
                ck_assert_uint_le(process_heap_stack_bytes_all(), max);
        }
        ck_assert(stack_known(&b, 1, t++));  /* b's oldest is still there */
        ck_assert(!stack_known(&a, 1, t++)); /* a's oldest went */
        ck_assert(stack_known(&a, 50, t++)); /* a's newest stayed */

        /* a ended: c's stacks come from a's unused ones first, though b holds as much */
        process_heap_set_ended(a, true);
        for (int64_t id = 1; id <= 10; id++)
                ingest(&c, big_stack_report(id, true), t++);
        ck_assert_uint_le(process_heap_stack_bytes_all(), max);
        for (int64_t id = 2; id <= 30; id++)
                ck_assert_msg(stack_known(&b, id, t++), "b lost stack %d while a's were there", (int) id);
        ck_assert(stack_known(&c, 10, t++));

        /* a's record goes: now every stack left is a tracked site's, so a new one is not kept
         * once the room is used up, and nothing is taken from anyone */
        process_heap_free(a);
        a = NULL;
        for (int64_t id = 11; id <= 60; id++)
                ingest(&c, big_stack_report(id, true), t++);
        ck_assert_uint_le(process_heap_stack_bytes_all(), max);
        ck_assert(stack_known(&b, 30, t++));
        ck_assert(stack_known(&c, 1, t++));
        ck_assert_uint_gt(process_heap_unknown_sites_total(c), 0);

        process_heap_free(b);
        process_heap_free(c);
        ck_assert_uint_eq(process_heap_stack_bytes_all(), 0);
        process_heap_set_stack_bytes_all_max(HEAP_STACK_BYTES_ALL_MAX);
}
END_TEST

START_TEST(test_router) {
        Route r;
        HeapQuery q;
        char err[ROUTER_ERROR_MAX];

        ck_assert_int_eq(router_match("GET", "/api/v1/processes/4242-1/heap", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_HEAP);
        ck_assert_str_eq(r.id, "4242-1");
        ck_assert_int_eq(router_match("GET", "/api/v1/processes/4242-1/heap/", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_HEAP);
        ck_assert_int_eq(router_match("GET", "/api/v1/processes/4242-1/heapx", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_NOT_FOUND);
        ck_assert_int_eq(router_match("POST", "/api/v1/processes/4242-1/heap", &r), 0);
        ck_assert_int_eq(r.kind, ROUTE_METHOD_NOT_ALLOWED);

        ck_assert_int_eq(router_parse_heap_query(NULL, NULL, &q, err, sizeof err), 0);
        ck_assert_double_eq(q.window, HEAP_WINDOW_DEFAULT);
        ck_assert_uint_eq(q.limit, HEAP_LIMIT_DEFAULT);
        ck_assert_int_eq(router_parse_heap_query("60", "5", &q, err, sizeof err), 0);
        ck_assert_double_eq(q.window, 60);
        ck_assert_uint_eq(q.limit, 5);
        ck_assert_int_eq(router_parse_heap_query("0", NULL, &q, err, sizeof err), -EINVAL);
        ck_assert_int_eq(router_parse_heap_query("nan", NULL, &q, err, sizeof err), -EINVAL);
        ck_assert_int_eq(router_parse_heap_query(NULL, "0", &q, err, sizeof err), -EINVAL);
        ck_assert_int_eq(router_parse_heap_query(NULL, "65", &q, err, sizeof err), -EINVAL);
        ck_assert_int_eq(router_parse_heap_query(NULL, "5x", &q, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "limit"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("heap");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_decode_good);
        tcase_add_test(tc, test_decode_bad);
        tcase_add_test(tc, test_history_growth_and_suspects);
        tcase_add_test(tc, test_shares_two_leaks);
        tcase_add_test(tc, test_bounds_unknown_and_other);
        tcase_add_test(tc, test_stack_bytes_bounded);
        tcase_add_test(tc, test_stack_bytes_bounded_for_short_names);
        tcase_add_test(tc, test_stack_bytes_bounded_daemon_wide);
        tcase_add_test(tc, test_router);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
