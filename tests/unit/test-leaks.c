/* SPDX-License-Identifier: MIT */
/*
 * Tests for daemon/leaks.c (leak findings of a process) and daemon/api-leaks.c (their JSON):
 * synthetic samples through ProcessLeaks with an accelerated detector configuration; a leak
 * opens a finding with growth and a time to limit, a flat process never does, a finding closes
 * when growth stops and is kept in the history, /api/v1/leaks orders findings by urgency.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api-leaks.h"
#include "helper-registry.h"
#include "leaks.h"
#include "registry.h"

#define MIB (1024.0 * 1024.0)

/* 1 s windows, 30 s minimum horizon: production's minutes become seconds. */
static void fast_config(DetectConfig *c) {
        detect_config_default(c);
        c->window_seconds = 1;
        c->min_horizon_seconds = 30;
        c->max_horizon_seconds = 600;
        c->min_growth_relative_per_hour = 0.5; /* 50 %/h in test time */
        c->min_growth_absolute_per_hour = 0;
        char error[256] = "";
        ck_assert_msg(detect_config_validate(c, error, sizeof error) == 0, "%s", error);
}

/* Deterministic noise in [-1, 1). */
static double noise(unsigned *state) {
        *state = *state * 1103515245u + 12345u;
        return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* What the agent reports as the usage of the cgroup whose limit binds, beyond the process's RSS:
 * 0 reports none (an older agent). */
static double limit_usage_beyond_rss;

static HwSample sample_at(double t, double rss, double blocks, double cgroup_max) {
        HwSample s = { .time = t, .rss_bytes = (int64_t) rss, .python_allocated_blocks = (int64_t) blocks,
                       .cgroup_memory_max_bytes = -1, .cgroup_limit_usage_bytes = -1 };
        if (cgroup_max > 0) {
                s.has_cgroup = true;
                s.cgroup_memory_current_bytes = (int64_t) (rss + 10 * MIB);
                s.cgroup_memory_max_bytes = (int64_t) cgroup_max;
                if (limit_usage_beyond_rss > 0)
                        s.cgroup_limit_usage_bytes = (int64_t) (rss + limit_usage_beyond_rss);
        }
        return s;
}

/* Feed `seconds` of samples every 0.1 s; rss(t) given by a slope (bytes/s) on a base with a
 * GC sawtooth (a 10 % swing, period 0.5 s) and noise. Returns the events seen, OR-ed bits. */
static unsigned feed(ProcessLeaks *l, double *t, double seconds, double *rss, double slope, double cgroup_max,
                     unsigned *seed) {
        unsigned events = 0;
        for (double end = *t + seconds; *t < end; *t += 0.1) {
                double saw = fmod(*t, 0.5) / 0.5 * 0.1 * 100 * MIB;
                HwSample s;
                LeakEvent e;

                *rss += slope * 0.1;
                s = sample_at(*t, *rss + saw + noise(seed) * 0.2 * MIB, 50000 + noise(seed) * 100, cgroup_max);
                ck_assert_int_eq(process_leaks_add_sample(l, &s, 8000 * MIB, &e), 0);
                events |= 1u << e;
        }
        return events;
}

START_TEST(test_leak_opens_with_growth_and_time_to_limit) {
        DetectConfig c;
        ProcessLeaks l;
        double t = 1000, rss = 100 * MIB;
        unsigned seed = 1, events;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        /* 100 MiB growing 1 MiB/s: 3600 %/h of test time, far above the threshold. */
        events = feed(&l, &t, 120, &rss, 1 * MIB, 1024 * MIB, &seed);
        ck_assert(events & (1u << LEAK_EVENT_OPENED));
        ck_assert(l.current.open);
        ck_assert_int_eq(l.current.verdict, VERDICT_LEAK);
        ck_assert_int_eq(l.current.signal, LEAK_SIGNAL_RSS);
        ck_assert_double_eq_tol(l.current.growth_bytes_per_second, 1 * MIB, 0.1 * MIB);
        ck_assert(l.current.growth_bytes_per_second_low <= l.current.growth_bytes_per_second);
        ck_assert(l.current.growth_bytes_per_second_high >= l.current.growth_bytes_per_second);
        ck_assert_int_eq(l.current.limit_source, LIMIT_CGROUP);
        ck_assert(l.current.has_time_to_limit);
        /* (limit - cgroup current) / slope, with the cgroup 10 MiB above RSS. */
        ck_assert_double_eq_tol(l.current.seconds_to_limit,
                                (l.current.limit_bytes - l.current.current_bytes) / l.current.growth_bytes_per_second, 1e-6);
        ck_assert(l.current.seconds_to_limit > 700 && l.current.seconds_to_limit < 900);
        ck_assert(l.current.seconds_to_limit_low <= l.current.seconds_to_limit);
        ck_assert(l.current.seconds_to_limit_high >= l.current.seconds_to_limit);
        ck_assert(l.current.since >= 1000 && l.current.since < t);
        ck_assert_int_eq(process_leaks_verdict(&l), VERDICT_LEAK);
        process_leaks_done(&l);
}
END_TEST

/* The agent names the usage of the cgroup whose limit binds (a slice's, with its other
 * services; page cache left out): the time to the limit counts that, not memory.current. */
START_TEST(test_time_to_limit_counts_the_binding_cgroups_usage) {
        DetectConfig c;
        ProcessLeaks l;
        double t = 1000, rss = 100 * MIB;
        unsigned seed = 1;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        limit_usage_beyond_rss = 700 * MIB; /* the slice's other services */
        feed(&l, &t, 120, &rss, 1 * MIB, 1024 * MIB, &seed);
        limit_usage_beyond_rss = 0;
        ck_assert(l.current.open);
        ck_assert(l.current.has_time_to_limit);
        ck_assert_double_gt(l.current.current_bytes, l.current.limit_bytes - 200 * MIB);
        /* ~100 s left at 1 MiB/s instead of ~800 s against the process's own cgroup */
        ck_assert_double_lt(l.current.seconds_to_limit, 200);
        process_leaks_done(&l);
}
END_TEST

START_TEST(test_flat_process_with_sawtooth_never_opens) {
        DetectConfig c;
        ProcessLeaks l;
        double t = 1000, rss = 300 * MIB;
        unsigned seed = 7, events;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        events = feed(&l, &t, 400, &rss, 0, -1, &seed);
        ck_assert_uint_eq(events & (1u << LEAK_EVENT_OPENED), 0);
        ck_assert(!l.current.open);
        ck_assert_uint_eq(l.n_history, 0);
        ck_assert(l.detectors[LEAK_SIGNAL_RSS].evaluated);
        process_leaks_done(&l);
}
END_TEST

START_TEST(test_finding_closes_when_growth_stops_and_is_kept) {
        DetectConfig c;
        ProcessLeaks l;
        double t = 1000, rss = 100 * MIB;
        unsigned seed = 3, events;

        fast_config(&c);
        c.max_horizon_seconds = 60; /* forget the old growth quickly */
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        feed(&l, &t, 90, &rss, 1 * MIB, -1, &seed);
        ck_assert(l.current.open);
        ck_assert_int_eq(l.current.limit_source, LIMIT_HOST);
        /* what census evidence counts from: the open finding's start, nothing once closed */
        ck_assert(l.current.opened_at > 0);
        ck_assert_double_eq(process_leaks_open_since(&l), l.current.opened_at);
        events = feed(&l, &t, 300, &rss, 0, -1, &seed);
        ck_assert(events & (1u << LEAK_EVENT_CLOSED));
        ck_assert(!l.current.open);
        ck_assert_double_eq(process_leaks_open_since(&l), 0);
        ck_assert_uint_eq(l.n_history, 1);
        ck_assert(l.history[0].closed_at > l.history[0].opened_at);
        ck_assert_int_eq(l.history[0].worst, VERDICT_LEAK);
        ck_assert_int_eq(process_leaks_verdict(&l), VERDICT_NONE);
        ck_assert(!l.history[0].closed_at_end);
        process_leaks_done(&l);
}
END_TEST

/* The process ends while its finding is open: the finding closes then (not when the exited
 * record expires), kept as closed by the end; nothing to close a second time. */
START_TEST(test_finding_closes_when_the_process_ends) {
        DetectConfig c;
        ProcessLeaks l;
        double t = 1000, rss = 100 * MIB;
        unsigned seed = 5;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        ck_assert(!process_leaks_end(&l, t, false)); /* none open yet */
        feed(&l, &t, 120, &rss, 1 * MIB, -1, &seed);
        ck_assert(l.current.open);
        ck_assert(process_leaks_end(&l, t + 1, false));
        ck_assert(!l.current.open);
        ck_assert_int_eq(process_leaks_verdict(&l), VERDICT_NONE);
        ck_assert_double_eq(process_leaks_open_since(&l), 0);
        ck_assert_uint_eq(l.n_history, 1);
        ck_assert_double_eq(l.history[0].closed_at, t + 1);
        ck_assert(l.history[0].closed_at_end);
        ck_assert_int_eq(l.history[0].worst, VERDICT_LEAK);
        ck_assert(!process_leaks_end(&l, t + 2, false));
        ck_assert_uint_eq(l.n_history, 1);
        process_leaks_done(&l);
}
END_TEST

START_TEST(test_python_only_growth_names_python_signal) {
        DetectConfig c;
        ProcessLeaks l;
        unsigned seed = 5;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        /* pymalloc reuses freed arenas: blocks grow while RSS stays flat. */
        for (double t = 1000; t < 1120; t += 0.1) {
                HwSample s = sample_at(t, 200 * MIB + noise(&seed) * MIB, 50000 + (t - 1000) * 100, -1);
                LeakEvent e;
                ck_assert_int_eq(process_leaks_add_sample(&l, &s, -1, &e), 0);
        }
        ck_assert(l.current.open);
        ck_assert_int_eq(l.current.signal, LEAK_SIGNAL_PYTHON_BLOCKS);
        ck_assert_str_eq(leak_signal_unit(l.current.signal), "blocks");
        ck_assert_double_eq_tol(l.current.result.slope, 100, 10);
        /* RSS does not grow: no projection in bytes, and no limit known (host unknown). */
        ck_assert(!l.current.has_time_to_limit);
        ck_assert_int_eq(l.current.limit_source, LIMIT_NONE);
        process_leaks_done(&l);
}
END_TEST

START_TEST(test_floor_under_a_flat_peak_is_not_a_leak) {
        DetectConfig c;
        ProcessLeaks l;
        unsigned seed = 9;
        LeakEvent e;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        /* A batch job peaked at 800 MiB once; afterwards the floor creeps up into that room
         * (allocator retention) while the peak never moves. */
        for (double t = 1000; t < 1120; t += 0.1) {
                HwSample s = sample_at(t, 100 * MIB + (t - 1000) * MIB + noise(&seed) * 0.2 * MIB, 50000, -1);
                s.rss_peak_bytes = (int64_t) (800 * MIB);
                ck_assert_int_eq(process_leaks_add_sample(&l, &s, -1, &e), 0);
        }
        ck_assert_int_eq(l.detectors[LEAK_SIGNAL_RSS].state, VERDICT_LEAK); /* the floor does grow */
        ck_assert(!l.current.open); /* but it is bounded by the peak */
        process_leaks_done(&l);
}
END_TEST

/* The process exec'd itself (same pid and start time: the same record) after a peak of 800 MiB;
 * the new program's VmHWM starts over. The old peak must not hold its leak under it for good
 * (nor must one wrong sample's). */
START_TEST(test_peak_of_an_earlier_program_does_not_hide_a_leak) {
        DetectConfig c;
        ProcessLeaks l;
        unsigned seed = 11;
        LeakEvent e;
        double rss = 100 * MIB;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        for (double t = 1000; t < 1010; t += 0.1) { /* the first program peaked at 800 MiB */
                HwSample s = sample_at(t, 100 * MIB, 50000, -1);
                s.rss_peak_bytes = (int64_t) (800 * MIB);
                ck_assert_int_eq(process_leaks_add_sample(&l, &s, -1, &e), 0);
        }
        for (double t = 1010; t < 1130; t += 0.1) { /* exec: the new program leaks 1 MiB/s */
                HwSample s;

                rss += 0.1 * MIB;
                s = sample_at(t, rss + noise(&seed) * 0.2 * MIB, 50000, -1);
                s.rss_peak_bytes = (int64_t) (rss + 1 * MIB); /* its own VmHWM, just above */
                ck_assert_int_eq(process_leaks_add_sample(&l, &s, -1, &e), 0);
        }
        ck_assert(l.current.open);
        ck_assert_int_eq(l.current.signal, LEAK_SIGNAL_RSS);
        process_leaks_done(&l);
}
END_TEST

/* The Python heap leaks while RSS stays flat under a wave and noise: the finding has no growth
 * in bytes and no time to the limit (RSS does not grow), instead of one that follows the noise
 * of the RSS slope from one window to the next. */
START_TEST(test_blocks_leak_with_flat_rss_has_no_time_to_limit) {
        DetectConfig c;
        ProcessLeaks l;
        unsigned seed = 5, evaluations = 0;
        double blocks = 50000;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        for (double t = 1000; t < 1300; t += 0.1) {
                double wave = 0.01 * 200 * MIB * sin(2 * M_PI * (t - 1000) / 40);
                HwSample s = sample_at(t, 200 * MIB + wave + noise(&seed) * 0.5 * MIB, blocks, -1);
                LeakEvent e;

                blocks += 5; /* 50 blocks a second: 360 % an hour of test time */
                ck_assert_int_eq(process_leaks_add_sample(&l, &s, 8000 * MIB, &e), 0);
                if (l.current.open && l.current.signal == LEAK_SIGNAL_PYTHON_BLOCKS) {
                        evaluations++;
                        ck_assert_msg(l.current.growth_bytes_per_second == 0 || l.detectors[LEAK_SIGNAL_RSS].last.slope_low > 0,
                                      "t=%.1f: growth %g from an RSS slope whose interval reaches %g", t,
                                      l.current.growth_bytes_per_second, l.detectors[LEAK_SIGNAL_RSS].last.slope_low);
                }
        }
        ck_assert_uint_gt(evaluations, 0);
        ck_assert(l.current.open);
        ck_assert_int_eq(l.current.signal, LEAK_SIGNAL_PYTHON_BLOCKS);
        ck_assert(!l.current.has_time_to_limit);
        process_leaks_done(&l);
}
END_TEST

/* A leak whose RSS once spiked far above it (a batch of requests, one big allocation) goes on
 * under that spike's peak: the peak rule must not close its finding when a shorter horizon that
 * starts after the spike decides, and reopen it when a longer one does again. */
START_TEST(test_a_spike_above_an_open_leak_does_not_close_it) {
        DetectConfig c;
        ProcessLeaks l;
        double t = 1000, rss = 100 * MIB;
        unsigned seed = 3, events;
        LeakEvent e;
        HwSample s;

        fast_config(&c);
        ck_assert_int_eq(process_leaks_init(&l, &c), 0);
        feed(&l, &t, 120, &rss, 1 * MIB, -1, &seed);
        ck_assert(l.current.open);
        ck_assert_int_eq(l.current.signal, LEAK_SIGNAL_RSS);
        s = sample_at(t, rss + 2000 * MIB, 50000, -1); /* the peak, far above anything after it */
        ck_assert_int_eq(process_leaks_add_sample(&l, &s, 8000 * MIB, &e), 0);
        t += 0.1;
        events = feed(&l, &t, 400, &rss, 1 * MIB, -1, &seed);
        ck_assert_msg(!(events & (1u << LEAK_EVENT_CLOSED)), "the finding closed under the spike's peak");
        ck_assert(l.current.open);
        ck_assert_uint_eq(l.findings_opened, 1);
        process_leaks_done(&l);
}
END_TEST

START_TEST(test_urgency_order) {
        Finding a = { .open = true, .verdict = VERDICT_LEAK, .has_time_to_limit = true, .seconds_to_limit = 100 };
        Finding b = { .open = true, .verdict = VERDICT_LEAK, .has_time_to_limit = true, .seconds_to_limit = 50 };
        Finding c = { .open = true, .verdict = VERDICT_SUSPECT, .has_time_to_limit = true, .seconds_to_limit = 1 };
        Finding d = { .open = true, .verdict = VERDICT_LEAK };

        ck_assert_int_lt(finding_compare_urgency(&b, &a), 0);
        ck_assert_int_gt(finding_compare_urgency(&a, &b), 0);
        ck_assert_int_lt(finding_compare_urgency(&a, &c), 0); /* leak before suspect, whatever the time */
        ck_assert_int_lt(finding_compare_urgency(&a, &d), 0); /* a projection before none */
        ck_assert_int_eq(finding_compare_urgency(&a, &a), 0);
}
END_TEST

START_TEST(test_api_leaks_json) {
        RegistryLimits limits = { .max_processes = 8, .history_capacity = 100, .exited_retention = 60 };
        Registry *reg;
        Process *slow, *fast, *flat;
        double t, rss;
        unsigned seed = 11;
        json_t *doc, *list, *leak;

        fast_config(&limits.detect);
        reg = registry_new(&limits);
        ck_assert_ptr_nonnull(reg);
        slow = helper_attach(reg, 101, 0);
        fast = helper_attach(reg, 102, 0);
        flat = helper_attach(reg, 103, 0);
        t = 1000, rss = 100 * MIB;
        feed(&slow->leaks, &t, 120, &rss, 1 * MIB, 1024 * MIB, &seed);
        t = 1000, rss = 100 * MIB;
        feed(&fast->leaks, &t, 120, &rss, 3 * MIB, 1024 * MIB, &seed);
        t = 1000, rss = 100 * MIB;
        feed(&flat->leaks, &t, 120, &rss, 0, 1024 * MIB, &seed);

        doc = api_leaks_new(reg, LEAK_FILTER_OPEN);
        ck_assert_ptr_nonnull(doc);
        list = json_object_get(doc, "leaks");
        ck_assert_uint_eq(json_array_size(list), 2);
        /* The fast one reaches its limit first. */
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "process_id")), fast->id);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "process_id")), slow->id);
        leak = json_array_get(list, 0);
        ck_assert_str_eq(json_string_value(json_object_get(leak, "verdict")), "leak");
        ck_assert_str_eq(json_string_value(json_object_get(leak, "state")), "open");
        ck_assert_str_eq(json_string_value(json_object_get(leak, "signal")), "rss_bytes");
        ck_assert_str_eq(json_string_value(json_object_get(leak, "limit_source")), "cgroup");
        ck_assert_str_eq(json_string_value(json_object_get(leak, "service")), "svc-102");
        ck_assert(json_real_value(json_object_get(leak, "seconds_to_limit")) > 0);
        ck_assert(json_real_value(json_object_get(leak, "confidence")) > 0.99);
        ck_assert(json_is_array(json_object_get(leak, "suspects")));
        json_decref(doc);

        doc = api_leaks_new(reg, LEAK_FILTER_CLOSED);
        ck_assert_msg(json_array_size(json_object_get(doc, "leaks")) == 0, "closed: %s", json_dumps(doc, 0));
        json_decref(doc);

        /* heapwatch.stop(): the finding closes, and says why (the process may live on) */
        ck_assert(process_leaks_end(&slow->leaks, t, true));
        doc = api_leaks_new(reg, LEAK_FILTER_CLOSED);
        leak = json_array_get(json_object_get(doc, "leaks"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(leak, "closed_because")), "agent_stopped");
        json_decref(doc);

        doc = api_process_leak_new(flat);
        ck_assert_str_eq(json_string_value(json_object_get(doc, "verdict")), "none");
        ck_assert(json_is_null(json_object_get(doc, "finding")));
        ck_assert_ptr_nonnull(json_object_get(json_object_get(doc, "signals"), "rss_bytes"));
        json_decref(doc);

        registry_free(reg);
}
END_TEST

int main(void) {
        Suite *s = suite_create("leaks");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_leak_opens_with_growth_and_time_to_limit);
        tcase_add_test(tc, test_flat_process_with_sawtooth_never_opens);
        tcase_add_test(tc, test_finding_closes_when_growth_stops_and_is_kept);
        tcase_add_test(tc, test_finding_closes_when_the_process_ends);
        tcase_add_test(tc, test_time_to_limit_counts_the_binding_cgroups_usage);
        tcase_add_test(tc, test_python_only_growth_names_python_signal);
        tcase_add_test(tc, test_floor_under_a_flat_peak_is_not_a_leak);
        tcase_add_test(tc, test_a_spike_above_an_open_leak_does_not_close_it);
        tcase_add_test(tc, test_blocks_leak_with_flat_rss_has_no_time_to_limit);
        tcase_add_test(tc, test_peak_of_an_earlier_program_does_not_hide_a_leak);
        tcase_add_test(tc, test_urgency_order);
        tcase_add_test(tc, test_api_leaks_json);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
