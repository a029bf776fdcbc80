/* SPDX-License-Identifier: MIT */
/*
 * Check tests of the heap profiler's core (agent/heapprof.c) without an interpreter: simulated
 * allocation streams with known retained bytes per site check that the estimates are unbiased
 * and converge, that freed samples leave the table and the filter, that the caps hold and are
 * counted, and that reports send each stack once per connection generation within their budget.
 */
#include "agent-util.h"

#include <check.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapprof.h"

static struct hw_heapprof_frame site(const char *func, int line) {
        return (struct hw_heapprof_frame) { .file = "app.py", .file_len = 6, .func = func, .func_len = strlen(func),
                                            .line = line };
}

/* Fake, distinct, 16-byte aligned addresses; never dereferenced. */
static const void *addr(uint64_t i) {
        return (const void *) (uintptr_t) (0x100000 + i * 16);
}

static void alloc(struct hw_heapprof *hp, const void *p, size_t size, const struct hw_heapprof_frame *f, size_t n) {
        if (hw_heapprof_account(hp, size))
                hw_heapprof_record(hp, p, size, f, n, true);
}

static void release(struct hw_heapprof *hp, const void *p) {
        if (hw_heapprof_maybe_tracked(hp, p))
                hw_heapprof_forget(hp, p);
}

/* The live bytes the report gives the site whose innermost function is func (0 if absent). */
static double site_live(json_t *report, const char *func, json_t *known_stacks) {
        json_t *sites = json_object_get(report, "sites"), *stacks = json_object_get(report, "stacks"), *s;
        size_t i;

        json_array_foreach(stacks, i, s) {
                char key[32];
                snprintf(key, sizeof(key), "%lld", (long long) json_integer_value(json_object_get(s, "id")));
                json_object_set(known_stacks, key, json_object_get(s, "frames"));
        }
        json_array_foreach(sites, i, s) {
                char key[32];
                json_t *frames;

                snprintf(key, sizeof(key), "%lld", (long long) json_integer_value(json_object_get(s, "stack")));
                frames = json_object_get(known_stacks, key);
                ck_assert_msg(frames, "site refers to stack %s that was never sent", key);
                if (json_array_size(frames) > 0 &&
                    strcmp(json_string_value(json_array_get(json_array_get(frames, 0), 1)), func) == 0)
                        return (double) json_integer_value(json_object_get(s, "live_bytes"));
        }
        return 0;
}

/* One run: site A retains a_bytes in objects of a_size, B churns (allocates and frees) churn
 * bytes in objects of 256..4096 bytes. Returns the estimate of A's and B's live bytes. */
static void run(uint64_t seed, uint64_t mean, size_t a_size, size_t a_bytes, size_t churn, double *ret_a,
                double *ret_b) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame fa[2] = { site("retain", 10), site("main", 100) };
        struct hw_heapprof_frame fb[2] = { site("churn", 20), site("main", 101) };
        json_t *known = json_object(), *rep;
        uint64_t next = 0, rng = seed;
        size_t done = 0;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, mean, 32, seed);
        for (size_t i = 0; i < a_bytes / a_size; i++) {
                alloc(&hp, addr(next++), a_size, fa, 2);
                /* interleave some churn */
                for (int k = 0; k < 4 && done < churn; k++) {
                        size_t sz;
                        const void *p = addr(next++);
                        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                        sz = 256 + (size_t) ((rng >> 33) % 3840);
                        alloc(&hp, p, sz, fb, 2);
                        release(&hp, p);
                        done += sz;
                }
        }
        rep = hw_heapprof_report(&hp, 1, true, 32, 1u << 20);
        ck_assert_ptr_nonnull(rep);
        *ret_a = site_live(rep, "retain", known);
        *ret_b = site_live(rep, "churn", known);
        json_decref(rep);
        json_decref(known);
        hw_heapprof_destroy(&hp);
}

START_TEST(test_off_samples_nothing) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("f", 1);

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        for (int i = 0; i < 100000; i++)
                ck_assert(!hw_heapprof_account(&hp, 1u << 20));
        ck_assert_ptr_null(hw_heapprof_report(&hp, 1, true, 32, 1 << 20));
        hw_heapprof_reset(&hp, 0, 32, 7);
        alloc(&hp, addr(1), 1u << 30, &f, 1);
        ck_assert_ptr_null(hw_heapprof_report(&hp, 1, true, 32, 1 << 20));
        hw_heapprof_destroy(&hp);
}
END_TEST

/* Large objects (5x the mean) are almost always sampled: the estimate is close in every run. */
START_TEST(test_large_objects_accurate) {
        for (uint64_t seed = 1; seed <= 20; seed++) {
                double a, b;
                run(seed, 512 * 1024, 2621440, 50 * 2621440, 200u << 20, &a, &b);
                ck_assert_msg(fabs(a - 50.0 * 2621440) < 0.10 * 50 * 2621440, "seed %llu: A %.0f",
                              (unsigned long long) seed, a);
                ck_assert_msg(b < 1.0 * 1024 * 1024, "seed %llu: churn site keeps %.0f bytes", (unsigned long long) seed, b);
        }
}
END_TEST

/* Small objects: each run's error is about sqrt(total * mean) (Poisson), but the estimator is
 * unbiased, so the mean over many runs converges to the truth. */
START_TEST(test_small_objects_unbiased) {
        const size_t total = 20u << 20, size = 1000;
        double sum = 0, sumsq = 0;
        int runs = 40;

        for (int seed = 1; seed <= runs; seed++) {
                double a, b;
                run((uint64_t) seed * 7919, 512 * 1024, size, total, 20u << 20, &a, &b);
                sum += a;
                sumsq += a * a;
        }
        {
                double truth = (double) (total / size * size), mean = sum / runs;
                double sd_run = sqrt(sumsq / runs - mean * mean), sd_theory = sqrt(truth * 512 * 1024);

                /* the mean of 40 runs: standard error ~ sd_theory / 6.3 (~ 2.6 % here) */
                ck_assert_msg(fabs(mean - truth) < 4 * sd_theory / sqrt(runs), "mean %.0f truth %.0f", mean, truth);
                /* and the spread is what theory says, not more */
                ck_assert_msg(sd_run < 1.6 * sd_theory, "spread %.0f theory %.0f", sd_run, sd_theory);
        }
}
END_TEST

START_TEST(test_free_untracks) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("f", 1);
        json_t *rep;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3); /* mean 1 byte: every allocation is sampled */
        for (int i = 0; i < 1000; i++) {
                alloc(&hp, addr((uint64_t) i), 100, &f, 1);
                ck_assert(hw_heapprof_maybe_tracked(&hp, addr((uint64_t) i)));
        }
        ck_assert_double_eq_tol(hw_heapprof_live_bytes(&hp), 100000, 1);
        for (int i = 0; i < 1000; i++)
                release(&hp, addr((uint64_t) i));
        ck_assert_double_eq(hw_heapprof_live_bytes(&hp), 0);
        for (size_t i = 0; i < HW_ELEMENTSOF(hp.filter); i++)
                ck_assert_msg(hp.filter[i] == 0, "filter word %zu still set", i);
        for (size_t i = 0; i < HW_ELEMENTSOF(hp.filter_count); i++)
                ck_assert_msg(hp.filter_count[i] == 0, "filter slot %zu still counted", i);
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "samples_live")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "samples_total")), 1000);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "sites")), 0);
        ck_assert_int_ge(json_integer_value(json_object_get(rep, "alloc_bytes_total")), 100000);
        json_decref(rep);
        /* an untracked address: the filter says no, forget() is harmless anyway */
        ck_assert(!hw_heapprof_maybe_tracked(&hp, addr(5)));
        hw_heapprof_forget(&hp, addr(5));
        hw_heapprof_destroy(&hp);
}
END_TEST

START_TEST(test_tracked_cap_counted) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("f", 1);
        json_t *rep;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        for (uint64_t i = 0; i < HW_HEAPPROF_TRACKED_MAX + 100; i++)
                alloc(&hp, addr(i), 64, &f, 1);
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "samples_live")), HW_HEAPPROF_TRACKED_MAX);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "tracked_full_total")), 100);
        json_decref(rep);
        ck_assert(hw_heapprof_tracking_full(&hp));
        release(&hp, addr(0));
        ck_assert(!hw_heapprof_tracking_full(&hp));
        hw_heapprof_destroy(&hp);
}
END_TEST

/* A sample the caller cannot track (memhooks.c: full table when it allocated, so not padded,
 * and its free unseen) counts as allocated, never as live, though a slot is free by then. */
START_TEST(test_untrackable_sample_counted_not_live) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("f", 1);
        json_t *rep;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        ck_assert(hw_heapprof_account(&hp, 64));
        hw_heapprof_record(&hp, addr(1), 64, &f, 1, false);
        ck_assert(!hw_heapprof_maybe_tracked(&hp, addr(1)));
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "samples_live")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "samples_total")), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "tracked_full_total")), 1);
        ck_assert_int_ge(json_integer_value(json_object_get(rep, "alloc_bytes_total")), 64);
        json_decref(rep);
        hw_heapprof_destroy(&hp);
}
END_TEST

START_TEST(test_stack_cap_overflow_site) {
        struct hw_heapprof hp;
        json_t *rep;
        char name[32];

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        for (uint64_t i = 0; i < HW_HEAPPROF_STACKS_MAX + 50; i++) {
                struct hw_heapprof_frame f;
                snprintf(name, sizeof(name), "f%llu", (unsigned long long) i);
                f = site(name, 1);
                alloc(&hp, addr(i), i < HW_HEAPPROF_STACKS_MAX ? 10 : 1000, &f, 1);
        }
        rep = hw_heapprof_report(&hp, 1, true, 1, 1 << 20);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "stacks_full_total")), 51);
        /* the overflow site holds the 51 largest allocations: it is the top site */
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(rep, "sites"), 0), "live_bytes")),
                         50 * 1000 + 10); /* the 16384th stack is the first over the limit */
        ck_assert_str_eq(json_string_value(json_array_get(
                                 json_array_get(json_object_get(json_array_get(json_object_get(rep, "stacks"), 0), "frames"), 0), 1)),
                         "<other stacks>");
        json_decref(rep);
        hw_heapprof_destroy(&hp);
}
END_TEST

START_TEST(test_stacks_once_per_generation) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f[3] = { site("a", 1), site("b", 2), site("c\x01\xff", 3) };
        json_t *rep;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 2, 3); /* depth 2: the third frame is cut */
        alloc(&hp, addr(1), 100, f, 3);
        alloc(&hp, addr(2), 200, f + 1, 2);

        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "sites")), 2);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "stacks")), 2);
        ck_assert_int_eq(json_array_size(json_object_get(json_array_get(json_object_get(rep, "stacks"), 0), "frames")), 2);
        json_decref(rep);
        /* same generation: sites again, stacks not */
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "sites")), 2);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "stacks")), 0);
        json_decref(rep);
        /* a peek sends every stack it names and marks nothing */
        rep = hw_heapprof_report(&hp, 1, false, 32, 1 << 20);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "stacks")), 2);
        json_decref(rep);
        /* a new connection: all stacks again; the largest site first */
        rep = hw_heapprof_report(&hp, 2, true, 32, 1 << 20);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "stacks")), 2);
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(rep, "sites"), 0), "live_bytes")),
                         200);
        json_decref(rep);
        /* a budget too small for any stack: sites whose stack is not known wait */
        rep = hw_heapprof_report(&hp, 3, true, 32, 10);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "stacks")), 0);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "sites")), 0);
        json_decref(rep);
        hw_heapprof_destroy(&hp);
}
END_TEST

START_TEST(test_control_chars_sanitized) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("bad\x01name\xff", 7);
        json_t *rep;
        const char *name;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        alloc(&hp, addr(1), 100, &f, 1);
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        name = json_string_value(json_array_get(
                json_array_get(json_object_get(json_array_get(json_object_get(rep, "stacks"), 0), "frames"), 0), 1));
        ck_assert_str_eq(name, "bad?name?");
        json_decref(rep);
        hw_heapprof_destroy(&hp);
}
END_TEST

START_TEST(test_reset_new_epoch) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("f", 1);
        json_t *rep;
        json_int_t e1;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        alloc(&hp, addr(1), 100, &f, 1);
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        e1 = json_integer_value(json_object_get(rep, "epoch"));
        json_decref(rep);
        hw_heapprof_forget_after_fork(&hp);
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        ck_assert_int_ne(json_integer_value(json_object_get(rep, "epoch")), e1);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "samples_total")), 0);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "sites")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(rep, "sample_bytes")), 1);
        json_decref(rep);
        hw_heapprof_destroy(&hp);
}
END_TEST

/* Allocations with no Python frame (interpreter start, C extensions, the agent's own thread)
 * form one site with an empty stack, first of all before any other stack exists. */
START_TEST(test_no_frames) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("f", 1);
        json_t *rep, *st;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        alloc(&hp, addr(1), 100, NULL, 0);
        alloc(&hp, addr(2), 100, NULL, 0);
        alloc(&hp, addr(3), 50, &f, 1);
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        ck_assert_int_eq(json_array_size(json_object_get(rep, "sites")), 2);
        st = json_array_get(json_object_get(rep, "stacks"), 0);
        ck_assert_int_eq(json_array_size(json_object_get(st, "frames")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(rep, "sites"), 0), "live_bytes")),
                         200);
        json_decref(rep);
        hw_heapprof_destroy(&hp);
}
END_TEST

/* The location cache: frames with the same key resolve to the same location without their
 * strings being looked at; different keys with the same names still share one location. */
START_TEST(test_location_cache) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame a = site("cached", 1), b = site("cached", 2);
        json_t *rep, *stacks;

        a.key[0] = 0x1000;
        a.key[1] = 0x2000;
        b.key[0] = 0x3000;
        b.key[1] = 0x4000;
        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        alloc(&hp, addr(1), 100, &a, 1);
        a.func = "ignored on a cache hit";
        a.func_len = strlen(a.func);
        alloc(&hp, addr(2), 100, &a, 1);
        alloc(&hp, addr(3), 100, &b, 1);
        ck_assert_uint_eq(hp.locs_len, 1);
        rep = hw_heapprof_report(&hp, 1, true, 32, 1 << 20);
        stacks = json_object_get(rep, "stacks");
        ck_assert_int_eq(json_array_size(stacks), 2); /* lines 1 and 2: two stacks, one location */
        ck_assert_str_eq(json_string_value(json_array_get(json_array_get(json_object_get(json_array_get(stacks, 0), "frames"), 0), 1)),
                         "cached");
        json_decref(rep);
        hw_heapprof_destroy(&hp);
}
END_TEST

/* Both interning tables grow their index many times (one rehash serves both): every location
 * and stack interned before a growth is still found after it, never interned twice. */
START_TEST(test_index_growth_keeps_entries) {
        struct hw_heapprof hp;
        char name[32];
        const size_t n = 3000; /* index 256 -> 8192 slots: five rebuilds of each table */

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3);
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        struct hw_heapprof_frame f;

                        snprintf(name, sizeof(name), "g%zu", i);
                        f = site(name, (int) (i % 7));
                        alloc(&hp, addr(pass * n + i), 10, &f, 1);
                }
        ck_assert_uint_eq(hp.locs_len, n);
        ck_assert_uint_eq(hp.stacks_len, n);
        ck_assert_uint_ge(hp.locs_index_cap, 2 * n);
        ck_assert_uint_ge(hp.stacks_index_cap, 2 * n);
        hw_heapprof_destroy(&hp);
}
END_TEST

/* The profile's tables grow by doubling as samples and sites come; the copies they leave must
 * not come from (and go back to) the host's malloc: glibc raises its mmap threshold to the size
 * of every mmapped chunk freed, for the whole process (agent/pages.h). 40,000 tracked samples:
 * the live table doubles up to 128 Ki slots (a 1.5 MiB copy given back on the way). */
START_TEST(test_tables_leave_mmap_threshold) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        /* the sanitizers' own allocator has no such threshold, and pages.c uses it then */
#else
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("hold", 1);
        struct mallinfo2 before, during;
        /* through a volatile pointer: the compiler may drop a malloc()/free() pair it sees */
        void *(*volatile do_malloc)(size_t) = malloc;
        void *probe;

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 5);
        for (size_t i = 0; i < 40000; i++)
                alloc(&hp, addr(i), 64, &f, 1);
        ck_assert_uint_ge(hp.live_cap, 65536);
        hw_heapprof_destroy(&hp);
        before = mallinfo2();
        probe = do_malloc(600 << 10);
        during = mallinfo2();
        free(probe);
        ck_assert_msg(during.hblkhd - before.hblkhd >= (600u << 10), "a 600 KiB malloc no longer goes to mmap");
#endif
}
END_TEST

START_TEST(test_filter_slots) {
        const size_t nslots = (size_t) 1 << HW_HEAPPROF_FILTER_BITS;
        uint8_t *seen = calloc(nslots, 1);
        struct hw_heapprof hp;

        ck_assert_ptr_nonnull(seen);
        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        /* the 16-byte aligned addresses of one MiB take every slot once */
        for (uint64_t i = 0; i < nslots; i++) {
                size_t s = hw_heapprof_filter_slot((const void *) (uintptr_t) (UINT64_C(0x7f3a5c100000) + i * 16));

                ck_assert_uint_lt(s, nslots);
                ck_assert_msg(!seen[s], "slot %zu taken twice", s);
                seen[s] = 1;
        }
        /* the fast path tests the slot's bit: every address of the MiB, tracked or not */
        for (uint64_t i = 0; i < nslots; i += 97) {
                const void *p = (const void *) (uintptr_t) (UINT64_C(0x7f3a5c100000) + i * 16);
                size_t s = hw_heapprof_filter_slot(p);

                hp.filter[s / 64] = UINT64_C(1) << (s % 64);
                ck_assert(hw_heapprof_maybe_tracked(&hp, p));
                hp.filter[s / 64] = ~(UINT64_C(1) << (s % 64));
                ck_assert(!hw_heapprof_maybe_tracked(&hp, p));
                hp.filter[s / 64] = 0;
        }
        /* the blocks of an aligned 8 KiB share the slots of one cache line of the filter */
        ck_assert_uint_eq(hw_heapprof_filter_slot((const void *) (uintptr_t) 0x7f3a5c124000) / 512,
                          hw_heapprof_filter_slot((const void *) (uintptr_t) 0x7f3a5c125ff0) / 512);
        hw_heapprof_destroy(&hp);
        free(seen);
}
END_TEST

/* x MiB + 16 bytes: every one of these hashes to filter slot 1 */
static const void *slot1(uint64_t x) {
        return (const void *) (uintptr_t) ((x << 20) + 16);
}

START_TEST(test_filter_shared_slot) {
        struct hw_heapprof hp;
        struct hw_heapprof_frame f = site("f", 1);

        ck_assert_int_eq(hw_heapprof_init(&hp), 0);
        hw_heapprof_reset(&hp, 1, 8, 3); /* every allocation sampled */
        for (uint64_t x = 1; x <= 200; x++) {
                ck_assert_uint_eq(hw_heapprof_filter_slot(slot1(x)), 1);
                alloc(&hp, slot1(x), 100, &f, 1);
        }
        /* the slot stays set while any of its pointers is tracked: never a false "no" */
        for (uint64_t x = 1; x < 200; x++) {
                release(&hp, slot1(x));
                ck_assert(hw_heapprof_maybe_tracked(&hp, slot1(200)));
        }
        ck_assert_double_eq_tol(hw_heapprof_live_bytes(&hp), 100, 1);
        release(&hp, slot1(200));
        ck_assert(!hw_heapprof_maybe_tracked(&hp, slot1(200)));
        ck_assert_double_eq(hw_heapprof_live_bytes(&hp), 0);

        /* more than the counter holds: the slot saturates and stays set (a lost count must not
         * hide a tracked pointer), until the next reset */
        for (uint64_t x = 1; x <= 300; x++)
                alloc(&hp, slot1(x), 100, &f, 1);
        for (uint64_t x = 1; x <= 300; x++) {
                ck_assert(hw_heapprof_maybe_tracked(&hp, slot1(x)));
                hw_heapprof_forget(&hp, slot1(x));
        }
        ck_assert_double_eq(hw_heapprof_live_bytes(&hp), 0);
        ck_assert(hw_heapprof_maybe_tracked(&hp, slot1(1)));
        hw_heapprof_reset(&hp, 1, 8, 4);
        ck_assert(!hw_heapprof_maybe_tracked(&hp, slot1(1)));
        hw_heapprof_destroy(&hp);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("agent-heapprof");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_off_samples_nothing);
        tcase_add_test(tc, test_large_objects_accurate);
        tcase_add_test(tc, test_small_objects_unbiased);
        tcase_add_test(tc, test_free_untracks);
        tcase_add_test(tc, test_tracked_cap_counted);
        tcase_add_test(tc, test_untrackable_sample_counted_not_live);
        tcase_add_test(tc, test_stack_cap_overflow_site);
        tcase_add_test(tc, test_stacks_once_per_generation);
        tcase_add_test(tc, test_control_chars_sanitized);
        tcase_add_test(tc, test_reset_new_epoch);
        tcase_add_test(tc, test_no_frames);
        tcase_add_test(tc, test_location_cache);
        tcase_add_test(tc, test_index_growth_keeps_entries);
        tcase_add_test(tc, test_tables_leave_mmap_threshold);
        tcase_add_test(tc, test_filter_slots);
        tcase_add_test(tc, test_filter_shared_slot);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
