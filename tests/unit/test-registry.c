/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/registry.c: records are created under process_id_format() ids and take
 * ownership of the HELLO's allocations; a detached record revived by the same id keeps its
 * history and counts the connection; a record that still has an owner answers -EBUSY; parent ids
 * are resolved preferring live records, and given to children that attached before their
 * parent (not to those started before it); max_processes evicts the exited record that exited first
 * and refuses (-ENOSPC) when every record is live; expiry honours the retention; samples
 * accumulate GC pause totals. Ownership of argv is checked by running under valgrind
 * (CK_FORK=no valgrind --leak-check=full tests/unit/.libs/test-registry).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static const RegistryLimits default_limits = {
        .max_processes = 16,
        .history_capacity = 100,
        .exited_retention = 60,
};

/* A HELLO as the decoder returns it: argv is heap-allocated, owned by whoever holds it. */
static HwHello make_hello(const char *service, const char *arg0) {
        HwHello h = { .protocol = 1, .pid = 1, .ppid = -1, .start_time_ticks = -1 };

        snprintf(h.service, sizeof h.service, "%s", service);
        h.argv = calloc(3, sizeof(char *));
        ck_assert_ptr_nonnull(h.argv);
        h.argv[0] = strdup(arg0);
        h.argv[1] = strdup("app.py");
        ck_assert_ptr_nonnull(h.argv[0]);
        ck_assert_ptr_nonnull(h.argv[1]);
        return h;
}

/* Attach pid with ticks as its id and a fresh HELLO; must succeed. */
static Process *attach(Registry *r, pid_t pid, int64_t ticks, pid_t ppid, double now) {
        char id[PROCESS_ID_MAX];
        HwHello h = make_hello("svc", "python3");
        Process *p = NULL;
        int k;

        process_id_format(id, pid, ticks);
        k = registry_attach(r, id, pid, 1000, 1000, ppid, ticks, 1764000000.0 + (double) ticks, &h, now, &p);
        ck_assert_msg(k == 0, "attach %s: %d", id, k);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_null(h.argv); /* taken */
        return p;
}

static HwSample sample_at(double t, double pause0, int64_t pauses0, double pause1, int64_t pauses1) {
        HwSample s = {
                .time = t,
                .rss_bytes = 1000,
                .gc_generations = 2,
                .gc = { { .pauses = pauses0, .pause_seconds_total = pause0, .pause_seconds_max = pause0 },
                        { .pauses = pauses1, .pause_seconds_total = pause1, .pause_seconds_max = pause1 } },
        };
        return s;
}

START_TEST(test_new_free) {
        RegistryLimits l = default_limits;

        ck_assert_ptr_null(registry_new(NULL));
        l.max_processes = 0;
        ck_assert_ptr_null(registry_new(&l));
        l = default_limits;
        l.history_capacity = 0;
        ck_assert_ptr_null(registry_new(&l));
        ck_assert_ptr_null(registry_free(NULL));
        ck_assert_ptr_null(registry_free(registry_new(&default_limits)));
}
END_TEST

/* Reload: the growth thresholds reach existing records' detectors (the Python heap one in
 * blocks), window and horizons only new records; the exited retention changes expiry. */
START_TEST(test_live_settings) {
        Registry *r = registry_new(&default_limits);
        DetectConfig c;
        Process *old, *fresh;

        ck_assert_ptr_nonnull(r);
        old = attach(r, 100, 1, 1, 10.0);
        detect_config_default(&c);
        c.min_growth_relative_per_hour = 0.25;
        c.min_growth_absolute_per_hour = 6400;
        c.window_seconds = 2 * c.window_seconds;
        c.min_horizon_seconds = 2 * c.min_horizon_seconds;
        registry_set_detect(r, &c);
        for (int i = 0; i < _LEAK_SIGNAL_MAX; i++) {
                const DetectConfig *dc = &old->leaks.detectors[i].config;
                ck_assert_double_eq(dc->min_growth_relative_per_hour, 0.25);
                ck_assert_double_eq(dc->min_growth_absolute_per_hour,
                                    i == LEAK_SIGNAL_PYTHON_BLOCKS ? 6400 / LEAK_BYTES_PER_BLOCK : 6400);
                ck_assert_double_ne(dc->window_seconds, c.window_seconds); /* sized at attach */
        }
        fresh = attach(r, 101, 1, 1, 11.0);
        ck_assert_double_eq(fresh->leaks.detectors[LEAK_SIGNAL_RSS].config.window_seconds, c.window_seconds);
        ck_assert_double_eq(fresh->leaks.detectors[LEAK_SIGNAL_RSS].config.min_growth_absolute_per_hour, 6400);

        registry_detach(r, old, EXIT_REASON_CLEAN, 20.0);
        registry_set_exited_retention(r, 5.0);
        ck_assert_uint_eq(registry_expire(r, 24.0), 0);
        ck_assert_uint_eq(registry_expire(r, 25.5), 1);
        registry_free(r);
}
END_TEST

START_TEST(test_process_id_format) {
        char id[PROCESS_ID_MAX];

        process_id_format(id, 4242, 1234567);
        ck_assert_str_eq(id, "4242-1234567");
        process_id_format(id, 1, 0);
        ck_assert_str_eq(id, "1-0");
        process_id_format(id, 4242, -1); /* unknown start time */
        ck_assert_str_eq(id, "4242-0");
        process_id_format(id, INT32_MAX, INT64_MAX);
        ck_assert_str_eq(id, "2147483647-9223372036854775807");
}
END_TEST

START_TEST(test_strings) {
        ck_assert_str_eq(process_state_to_string(PROCESS_LIVE), "live");
        ck_assert_str_eq(process_state_to_string(PROCESS_EXITED), "exited");
        ck_assert_ptr_null(exit_reason_to_string(EXIT_REASON_NONE));
        ck_assert_str_eq(exit_reason_to_string(EXIT_REASON_CLEAN), "exit");
        ck_assert_str_eq(exit_reason_to_string(EXIT_REASON_STOPPED), "stop");
        ck_assert_str_eq(exit_reason_to_string(EXIT_REASON_CONNECTION_LOST), "connection_lost");
        ck_assert_ptr_null(exit_reason_to_string((ExitReason) 99));
}
END_TEST

START_TEST(test_attach_creates) {
        Registry *r = registry_new(&default_limits);
        HwHello h = make_hello("billing", "python3");
        char **argv = h.argv;
        Process *p = NULL;

        ck_assert_int_eq(registry_attach(r, "4242-1234567", 4242, 1000, 1001, 4200, 1234567, 1764061234.5, &h, 50.0, &p),
                         0);
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(p->id, "4242-1234567");
        ck_assert_str_eq(p->parent_id, "");
        ck_assert_int_eq(p->pid, 4242);
        ck_assert_uint_eq(p->uid, 1000);
        ck_assert_uint_eq(p->gid, 1001);
        ck_assert_int_eq(p->ppid, 4200);
        ck_assert_int_eq(p->start_time_ticks, 1234567);
        ck_assert_double_eq(p->start_time, 1764061234.5);
        ck_assert_int_eq(p->state, PROCESS_LIVE);
        ck_assert_int_eq(p->exit_reason, EXIT_REASON_NONE);
        ck_assert_double_eq(p->connected_at, 50.0);
        ck_assert_double_eq(p->exited_at, 0);
        ck_assert_uint_eq(p->connections, 1);
        ck_assert_ptr_null(p->owner);
        ck_assert(!p->has_sample);
        ck_assert_uint_eq(p->samples_received, 0);
        ck_assert_ptr_nonnull(p->history);
        ck_assert_uint_eq(history_capacity(p->history), default_limits.history_capacity);
        ck_assert_uint_eq(history_size(p->history), 0);

        /* The HELLO moved into the record: same argv, caller's copy zeroed. */
        ck_assert_ptr_eq(p->hello.argv, argv);
        ck_assert_str_eq(p->hello.argv[0], "python3");
        ck_assert_str_eq(p->hello.service, "billing");
        ck_assert_ptr_null(h.argv);
        ck_assert_str_eq(h.service, "");

        ck_assert_ptr_eq(registry_find(r, "4242-1234567"), p);
        ck_assert_ptr_null(registry_find(r, "4242-1234568"));
        ck_assert_ptr_null(registry_find(r, "4242"));
        ck_assert_ptr_null(registry_find(r, NULL));
        ck_assert_uint_eq(registry_count(r), 1);
        ck_assert_ptr_eq(registry_at(r, 0), p);
        ck_assert_ptr_null(registry_at(r, 1));
        registry_free(r); /* frees the argv (valgrind) */
}
END_TEST

START_TEST(test_many_records_order) {
        /* More than the initial array allocation (16): exercises growth; order is attach order. */
        RegistryLimits l = default_limits;
        Registry *r;
        Process *ps[100];

        l.max_processes = 100;
        r = registry_new(&l);
        for (int i = 0; i < 100; i++)
                ps[i] = attach(r, 1000 + i, i, 0, i);
        ck_assert_uint_eq(registry_count(r), 100);
        for (int i = 0; i < 100; i++) {
                char id[PROCESS_ID_MAX];
                ck_assert_ptr_eq(registry_at(r, (size_t) i), ps[i]);
                process_id_format(id, 1000 + i, i);
                ck_assert_ptr_eq(registry_find(r, id), ps[i]);
        }
        registry_free(r);
}
END_TEST

START_TEST(test_reattach_revives) {
        Registry *r = registry_new(&default_limits);
        Process *p = attach(r, 4242, 777, 1, 10.0), *q = NULL;
        HwHello h2 = make_hello("renamed", "python3.12");
        char **argv2 = h2.argv;
        HwSample s;

        for (int i = 1; i <= 5; i++) {
                s = sample_at(100 + i, 0.1, 1, 0.2, 2);
                ck_assert_int_eq(registry_add_sample(r, p, &s), 0);
        }
        registry_detach(r, p, EXIT_REASON_CONNECTION_LOST, 20.0);
        ck_assert_int_eq(p->state, PROCESS_EXITED);
        ck_assert_int_eq(p->exit_reason, EXIT_REASON_CONNECTION_LOST);
        ck_assert_double_eq(p->exited_at, 20.0);
        ck_assert_ptr_null(p->owner);

        /* The daemon restarted / the agent reconnected: same id, same record. */
        ck_assert_int_eq(registry_attach(r, "4242-777", 4242, 1000, 1000, 1, 777, 1.0, &h2, 30.0, &q), 0);
        ck_assert_ptr_eq(q, p);
        ck_assert_uint_eq(registry_count(r), 1);
        ck_assert_int_eq(p->state, PROCESS_LIVE);
        ck_assert_int_eq(p->exit_reason, EXIT_REASON_NONE);
        ck_assert_double_eq(p->exited_at, 0);
        ck_assert_double_eq(p->connected_at, 30.0);
        ck_assert_uint_eq(p->connections, 2);
        /* History and counters survive... */
        ck_assert_uint_eq(history_size(p->history), 5);
        ck_assert_uint_eq(p->samples_received, 5);
        ck_assert_double_eq_tol(p->gc_pause_seconds_total[0], 0.5, 1e-12);
        ck_assert(p->has_sample);
        /* ...the claims are refreshed, the old argv freed (valgrind), the new one taken. */
        ck_assert_ptr_eq(p->hello.argv, argv2);
        ck_assert_str_eq(p->hello.service, "renamed");
        ck_assert_ptr_null(h2.argv);
        /* And the revived record keeps refusing stale samples. */
        s = sample_at(105, 0, 0, 0, 0);
        ck_assert_int_eq(registry_add_sample(r, p, &s), -EINVAL);
        s = sample_at(106, 0, 0, 0, 0);
        ck_assert_int_eq(registry_add_sample(r, p, &s), 0);

        /* Detach and revive once more: a third connection. */
        registry_detach(r, p, EXIT_REASON_STOPPED, 40.0);
        ck_assert_ptr_eq(attach(r, 4242, 777, 1, 50.0), p);
        ck_assert_uint_eq(p->connections, 3);
        registry_free(r);
}
END_TEST

START_TEST(test_reattach_busy) {
        Registry *r = registry_new(&default_limits);
        Process *p = attach(r, 4242, 777, 1, 10.0), *q = NULL;
        HwHello h = make_hello("svc", "python3");
        char **argv = h.argv;
        int dummy_connection;

        p->owner = &dummy_connection;
        ck_assert_int_eq(registry_attach(r, "4242-777", 4242, 1000, 1000, 1, 777, 1.0, &h, 20.0, &q), -EBUSY);
        ck_assert_ptr_eq(q, p);
        /* Nothing changed, and the HELLO is still the caller's. */
        ck_assert_ptr_eq(h.argv, argv);
        ck_assert_str_eq(h.service, "svc");
        ck_assert_uint_eq(p->connections, 1);
        ck_assert_double_eq(p->connected_at, 10.0);
        ck_assert_ptr_eq(p->owner, &dummy_connection);
        ck_assert_uint_eq(registry_count(r), 1);

        /* The caller retires the old connection and tries again. */
        registry_detach(r, p, EXIT_REASON_CONNECTION_LOST, 20.0);
        ck_assert_ptr_null(p->owner);
        q = NULL;
        ck_assert_int_eq(registry_attach(r, "4242-777", 4242, 1000, 1000, 1, 777, 1.0, &h, 20.0, &q), 0);
        ck_assert_ptr_eq(q, p);
        ck_assert_ptr_null(h.argv);
        ck_assert_ptr_eq(p->hello.argv, argv);
        ck_assert_uint_eq(p->connections, 2);
        ck_assert_int_eq(p->state, PROCESS_LIVE);
        registry_free(r);
}
END_TEST

START_TEST(test_parent_resolution) {
        Registry *r = registry_new(&default_limits);
        Process *old_parent, *parent, *child, *orphan, *p;

        /* Not tracked, or no ppid at all. */
        orphan = attach(r, 300, 1, 299, 1.0);
        ck_assert_str_eq(orphan->parent_id, "");
        ck_assert_str_eq(attach(r, 301, 1, 0, 1.0)->parent_id, "");
        ck_assert_str_eq(attach(r, 302, 1, -1, 1.0)->parent_id, "");

        /* A live parent. */
        parent = attach(r, 100, 50, 1, 2.0);
        child = attach(r, 200, 60, 100, 3.0);
        ck_assert_str_eq(child->parent_id, "100-50");

        /* Only an exited record with that pid: used as the parent (the child may have outlived it). */
        registry_detach(r, parent, EXIT_REASON_CLEAN, 4.0);
        p = attach(r, 201, 70, 100, 5.0);
        ck_assert_str_eq(p->parent_id, "100-50");

        /* pid 100 reused by a new live process: it wins over the exited one. */
        parent = attach(r, 100, 90, 1, 6.0);
        p = attach(r, 202, 95, 100, 7.0);
        ck_assert_str_eq(p->parent_id, "100-90");

        /* Live preferred even over a more recently attached exited record with the same pid. */
        old_parent = attach(r, 500, 1, 1, 8.0);     /* live */
        registry_detach(r, attach(r, 500, 2, 1, 9.0), EXIT_REASON_CLEAN, 9.5); /* newer, exited */
        p = attach(r, 600, 1, 500, 10.0);
        ck_assert_str_eq(p->parent_id, "500-1");

        /* Among exited ones only, the most recently attached. */
        registry_detach(r, old_parent, EXIT_REASON_CLEAN, 11.0);
        p = attach(r, 601, 1, 500, 12.0);
        ck_assert_str_eq(p->parent_id, "500-2");

        /* A child that attached before its parent gets the parent's id when the parent
         * attaches; one started before the new process with its ppid's pid does not (that
         * parent was an earlier process with the same pid). */
        {
                Process *early = attach(r, 701, 80, 700, 15.0), *stale = attach(r, 702, 20, 700, 15.5);

                ck_assert_str_eq(early->parent_id, "");
                p = attach(r, 700, 40, 1, 16.0);
                ck_assert_str_eq(early->parent_id, "700-40");
                ck_assert_str_eq(stale->parent_id, "");
                ck_assert_str_eq(p->parent_id, "");
        }

        /* A record is never its own parent (pid == ppid on a revival). */
        registry_detach(r, child, EXIT_REASON_CLEAN, 13.0);
        {
                HwHello h = make_hello("svc", "python3");
                Process *q = NULL;
                ck_assert_int_eq(registry_attach(r, "200-60", 200, 0, 0, 200, 60, 0, &h, 14.0, &q), 0);
                ck_assert_ptr_eq(q, child);
                ck_assert_str_eq(child->parent_id, "");
        }
        (void) parent;
        registry_free(r);
}
END_TEST

START_TEST(test_max_processes_eviction) {
        RegistryLimits l = default_limits;
        Registry *r;
        Process *a, *b, *c, *p = (Process *) 0x1;
        HwHello h;
        char **argv;

        l.max_processes = 3;
        r = registry_new(&l);
        a = attach(r, 1, 1, 0, 1.0);
        b = attach(r, 2, 1, 0, 2.0);
        c = attach(r, 3, 1, 0, 3.0);

        /* All live: refused, nothing taken, *ret untouched. */
        h = make_hello("svc", "python3");
        argv = h.argv;
        ck_assert_int_eq(registry_attach(r, "4-1", 4, 0, 0, 0, 1, 0, &h, 4.0, &p), -ENOSPC);
        ck_assert_ptr_eq(p, (Process *) 0x1);
        ck_assert_ptr_eq(h.argv, argv);
        ck_assert_uint_eq(registry_count(r), 3);

        /* b exited before a: b is the victim, though a was attached first. */
        registry_detach(r, b, EXIT_REASON_CLEAN, 5.0);
        registry_detach(r, a, EXIT_REASON_CLEAN, 7.0);
        ck_assert_int_eq(registry_attach(r, "4-1", 4, 0, 0, 0, 1, 0, &h, 8.0, &p), 0);
        ck_assert_ptr_null(h.argv);
        ck_assert_uint_eq(registry_count(r), 3);
        ck_assert_ptr_null(registry_find(r, "2-1"));
        ck_assert_ptr_eq(registry_find(r, "1-1"), a);
        ck_assert_ptr_eq(registry_find(r, "4-1"), p);
        /* Order stays attach order after the removal. */
        ck_assert_ptr_eq(registry_at(r, 0), a);
        ck_assert_ptr_eq(registry_at(r, 1), c);
        ck_assert_ptr_eq(registry_at(r, 2), p);

        /* Reviving an existing record needs no room. */
        ck_assert_ptr_eq(attach(r, 1, 1, 0, 9.0), a);
        ck_assert_uint_eq(registry_count(r), 3);

        /* Now all live again: refused. */
        h = make_hello("svc", "python3");
        ck_assert_int_eq(registry_attach(r, "5-1", 5, 0, 0, 0, 1, 0, &h, 10.0, &p), -ENOSPC);
        hw_hello_done(&h); /* still ours after a refusal */

        /* Evict the next-oldest exited one. */
        registry_detach(r, c, EXIT_REASON_CONNECTION_LOST, 11.0);
        p = attach(r, 5, 1, 0, 12.0);
        ck_assert_ptr_null(registry_find(r, "3-1"));
        ck_assert_uint_eq(registry_count_state(r, PROCESS_LIVE), 3);
        registry_free(r);
}
END_TEST

START_TEST(test_expire) {
        Registry *r = registry_new(&default_limits); /* retention 60 s */
        Process *a = attach(r, 1, 1, 0, 0), *b = attach(r, 2, 1, 0, 0), *c = attach(r, 3, 1, 0, 0);

        ck_assert_uint_eq(registry_expire(r, 1e9), 0); /* all live: nothing, however late */
        registry_detach(r, a, EXIT_REASON_CLEAN, 100.0);
        registry_detach(r, b, EXIT_REASON_CONNECTION_LOST, 130.0);

        ck_assert_uint_eq(registry_expire(r, 100.0), 0);
        ck_assert_uint_eq(registry_expire(r, 159.999), 0);
        ck_assert_uint_eq(registry_count(r), 3);
        ck_assert_uint_eq(registry_expire(r, 160.0), 1); /* exactly the retention */
        ck_assert_ptr_null(registry_find(r, "1-1"));
        ck_assert_ptr_eq(registry_at(r, 0), b);
        ck_assert_ptr_eq(registry_at(r, 1), c);
        ck_assert_uint_eq(registry_expire(r, 189.0), 0);
        ck_assert_uint_eq(registry_expire(r, 190.0), 1);
        ck_assert_uint_eq(registry_count(r), 1);
        ck_assert_ptr_eq(registry_at(r, 0), c);
        ck_assert_int_eq(c->state, PROCESS_LIVE);
        registry_free(r);
}
END_TEST

START_TEST(test_expire_many_and_zero_retention) {
        RegistryLimits l = default_limits;
        Registry *r;
        Process *ps[10];

        l.exited_retention = 0;
        r = registry_new(&l);
        for (int i = 0; i < 10; i++)
                ps[i] = attach(r, 10 + i, 1, 0, 0);
        /* Detach every other one: removal while iterating must not skip neighbours. */
        for (int i = 0; i < 10; i += 2)
                registry_detach(r, ps[i], EXIT_REASON_CLEAN, 5.0);
        registry_detach(r, ps[1], EXIT_REASON_CLEAN, 5.0);
        ck_assert_uint_eq(registry_expire(r, 4.0), 0);
        ck_assert_uint_eq(registry_expire(r, 5.0), 6);
        ck_assert_uint_eq(registry_count(r), 4);
        ck_assert_ptr_eq(registry_at(r, 0), ps[3]);
        ck_assert_ptr_eq(registry_at(r, 1), ps[5]);
        ck_assert_ptr_eq(registry_at(r, 2), ps[7]);
        ck_assert_ptr_eq(registry_at(r, 3), ps[9]);
        registry_free(r);
}
END_TEST

START_TEST(test_add_sample_accumulates) {
        Registry *r = registry_new(&default_limits);
        Process *p = attach(r, 1, 1, 0, 0);
        HwSample s;

        s = sample_at(10, 0.001, 2, 0.01, 1);
        ck_assert_int_eq(registry_add_sample(r, p, &s), 0);
        s = sample_at(11, 0.002, 3, 0, 0);
        ck_assert_int_eq(registry_add_sample(r, p, &s), 0);
        s = sample_at(12, 0.004, 1, 0.02, 2);
        s.gc_generations = 3;
        s.gc[2].pauses = 1;
        s.gc[2].pause_seconds_total = 0.5;
        s.seq = 3;
        ck_assert_int_eq(registry_add_sample(r, p, &s), 0);

        ck_assert(p->has_sample);
        ck_assert_uint_eq(p->samples_received, 3);
        ck_assert_uint_eq(p->latest.seq, 3);
        ck_assert_double_eq(p->latest.time, 12);
        ck_assert_int_eq(p->gc_pauses_total[0], 6);
        ck_assert_int_eq(p->gc_pauses_total[1], 3);
        ck_assert_int_eq(p->gc_pauses_total[2], 1);
        ck_assert_int_eq(p->gc_pauses_total[3], 0);
        ck_assert_double_eq_tol(p->gc_pause_seconds_total[0], 0.007, 1e-12);
        ck_assert_double_eq_tol(p->gc_pause_seconds_total[1], 0.03, 1e-12);
        ck_assert_double_eq_tol(p->gc_pause_seconds_total[2], 0.5, 1e-12);
        ck_assert_double_eq(p->gc_pause_seconds_total[3], 0);
        ck_assert_uint_eq(history_size(p->history), 3);

        /* A sample not newer than the last is refused and changes nothing. */
        s = sample_at(12, 100, 100, 100, 100);
        ck_assert_int_eq(registry_add_sample(r, p, &s), -EINVAL);
        s = sample_at(11.5, 100, 100, 100, 100);
        ck_assert_int_eq(registry_add_sample(r, p, &s), -EINVAL);
        ck_assert_uint_eq(p->samples_received, 3);
        ck_assert_uint_eq(p->latest.seq, 3);
        ck_assert_int_eq(p->gc_pauses_total[0], 6);
        ck_assert_double_eq_tol(p->gc_pause_seconds_total[0], 0.007, 1e-12);
        ck_assert_uint_eq(history_size(p->history), 3);
        registry_free(r);
}
END_TEST

START_TEST(test_count_state) {
        Registry *r = registry_new(&default_limits);
        Process *a, *b;

        ck_assert_uint_eq(registry_count(r), 0);
        ck_assert_uint_eq(registry_count_state(r, PROCESS_LIVE), 0);
        ck_assert_uint_eq(registry_count_state(r, PROCESS_EXITED), 0);
        a = attach(r, 1, 1, 0, 0);
        b = attach(r, 2, 1, 0, 0);
        attach(r, 3, 1, 0, 0);
        ck_assert_uint_eq(registry_count_state(r, PROCESS_LIVE), 3);
        registry_detach(r, a, EXIT_REASON_CLEAN, 1);
        registry_detach(r, b, EXIT_REASON_STOPPED, 1);
        ck_assert_uint_eq(registry_count_state(r, PROCESS_LIVE), 1);
        ck_assert_uint_eq(registry_count_state(r, PROCESS_EXITED), 2);
        ck_assert_int_eq(b->exit_reason, EXIT_REASON_STOPPED);
        attach(r, 1, 1, 0, 2);
        ck_assert_uint_eq(registry_count_state(r, PROCESS_LIVE), 2);
        ck_assert_uint_eq(registry_count_state(r, PROCESS_EXITED), 1);
        ck_assert_uint_eq(registry_count(r), 3);
        registry_free(r);
}
END_TEST

START_TEST(test_hello_without_argv) {
        /* A HELLO without argv (NULL) is fine to hand over and to free. */
        Registry *r = registry_new(&default_limits);
        HwHello h = { .protocol = 1, .pid = 9 };
        Process *p = NULL;

        ck_assert_int_eq(registry_attach(r, "9-9", 9, 0, 0, 0, 9, 0, &h, 0, &p), 0);
        ck_assert_ptr_null(p->hello.argv);
        registry_detach(r, p, EXIT_REASON_CLEAN, 1);
        h = make_hello("svc", "python3");
        ck_assert_int_eq(registry_attach(r, "9-9", 9, 0, 0, 0, 9, 0, &h, 2, &p), 0);
        ck_assert_str_eq(p->hello.argv[0], "python3");
        registry_detach(r, p, EXIT_REASON_CLEAN, 3);
        h = (HwHello) { .protocol = 1, .pid = 9 };
        ck_assert_int_eq(registry_attach(r, "9-9", 9, 0, 0, 0, 9, 0, &h, 4, &p), 0); /* frees the old argv */
        ck_assert_ptr_null(p->hello.argv);
        registry_free(r);
}
END_TEST

static Suite *registry_suite(void) {
        Suite *s = suite_create("registry");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_new_free);
        tcase_add_test(tc, test_live_settings);
        tcase_add_test(tc, test_process_id_format);
        tcase_add_test(tc, test_strings);
        tcase_add_test(tc, test_attach_creates);
        tcase_add_test(tc, test_many_records_order);
        tcase_add_test(tc, test_reattach_revives);
        tcase_add_test(tc, test_reattach_busy);
        tcase_add_test(tc, test_parent_resolution);
        tcase_add_test(tc, test_max_processes_eviction);
        tcase_add_test(tc, test_expire);
        tcase_add_test(tc, test_expire_many_and_zero_retention);
        tcase_add_test(tc, test_add_sample_accumulates);
        tcase_add_test(tc, test_count_state);
        tcase_add_test(tc, test_hello_without_argv);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(registry_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
