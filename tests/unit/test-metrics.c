/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/metrics.c: every family of docs/api.md is present with one HELP and one
 * TYPE, its samples together; counters end in _total; every frame type and reject reason shows
 * even at zero; optional per-process families follow the data; label values are escaped (a
 * service name with ", \ and a newline) and kept valid UTF-8; and, when /usr/bin/promtool is
 * installed, `promtool check metrics` accepts the page.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "registry.h"
#include "stats.h"

#define T0 1764061234.0
#define PROMTOOL "/usr/bin/promtool"

static Registry *new_registry(void) {
        RegistryLimits limits = { .max_processes = 16, .history_capacity = 16, .exited_retention = 600 };
        Registry *r = registry_new(&limits);

        ck_assert_ptr_nonnull(r);
        return r;
}

static Process *attach(Registry *reg, pid_t pid, int64_t ticks, const char *service) {
        HwHello h = { .protocol = 1, .pid = pid, .ppid = -1, .start_time_ticks = ticks };
        char id[PROCESS_ID_MAX];
        Process *p = NULL;

        snprintf(h.service, sizeof h.service, "%s", service);
        process_id_format(id, pid, ticks);
        ck_assert_int_eq(registry_attach(reg, id, pid, 0, 0, 1, ticks, T0 - 10.25, &h, T0, &p), 0);
        return p;
}

static HwSample make_sample(uint64_t seq, double time) {
        HwSample s = {
                .seq = seq, .time = time, .rss_bytes = 31457280, .rss_peak_bytes = 33554432, .vm_bytes = 412090368,
                .threads = 3, .python_allocated_blocks = 61234, .gc_enabled = true, .gc_garbage = 2,
                .gc_generations = 3, .agent_samples_dropped_total = 5, .agent_reconnects_total = 1,
        };

        for (unsigned g = 0; g < 3; g++) {
                s.gc[g] = (HwGcGeneration) { .count = 412, .threshold = 700, .collections = 120, .collected = 3100,
                                             .uncollectable = 1, .pauses = 3, .pause_seconds_total = 0.00021,
                                             .pause_seconds_max = 0.00009 };
        }
        return s;
}

static char *render(Registry *reg) {
        char *text = NULL;
        size_t size = 0;

        ck_assert_int_eq(metrics_render(reg, &daemon_stats, &text, &size), 0);
        ck_assert_ptr_nonnull(text);
        ck_assert_uint_eq(strlen(text), size);
        ck_assert_int_eq(text[size - 1], '\n');
        return text;
}

static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);

        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return true;
        return false;
}

static void assert_line(const char *text, const char *line) {
        ck_assert_msg(has_line(text, line), "missing line: %s\n--- page ---\n%s", line, text);
}

static void assert_no_prefix(const char *text, const char *prefix) {
        for (const char *p = text; (p = strstr(p, prefix)); p++)
                ck_assert_msg(!(p == text || p[-1] == '\n'), "unexpected line starting %s", prefix);
}

/* Every family: HELP then TYPE exactly once, then only its own samples; no family appears
 * twice; counters (and only counters) end in _total. Returns the number of families. */
static size_t check_structure(const char *text) {
        char families[128][128];
        size_t n_families = 0;
        char current[128] = "";
        const char *line = text;

        while (*line) {
                const char *end = strchr(line, '\n');
                char buf[1024], name[128], type[32];

                ck_assert_ptr_nonnull(end);
                ck_assert_uint_lt((size_t) (end - line), sizeof buf);
                memcpy(buf, line, (size_t) (end - line));
                buf[end - line] = '\0';
                line = end + 1;

                if (sscanf(buf, "# HELP %127s ", name) == 1) {
                        for (size_t i = 0; i < n_families; i++)
                                ck_assert_msg(strcmp(families[i], name) != 0, "family %s appears twice", name);
                        ck_assert_uint_lt(n_families, 128);
                        snprintf(families[n_families++], sizeof families[0], "%s", name);
                        snprintf(current, sizeof current, "%s", name);
                        ck_assert_msg(strlen(buf) > strlen("# HELP ") + strlen(name) + 1, "empty HELP for %s", name);
                        continue;
                }
                if (sscanf(buf, "# TYPE %127s %31s", name, type) == 2) {
                        size_t len = strlen(name);
                        bool total = len > 6 && strcmp(name + len - 6, "_total") == 0;

                        ck_assert_str_eq(name, current);
                        ck_assert_msg(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0, "type %s", type);
                        ck_assert_msg(total == (strcmp(type, "counter") == 0), "%s is a %s", name, type);
                        continue;
                }
                ck_assert_msg(buf[0] != '#', "stray comment: %s", buf);
                /* a sample: its name must be the current family's */
                ck_assert_msg(sscanf(buf, "%127[a-zA-Z0-9_:]", name) == 1, "bad sample line: %s", buf);
                ck_assert_msg(strcmp(name, current) == 0, "sample %s outside its family (in %s)", name, current);
                ck_assert_msg(buf[strlen(name)] == '{' || buf[strlen(name)] == ' ', "bad sample line: %s", buf);
        }
        return n_families;
}

static void promtool_check(const char *text) {
        char path[] = "/tmp/heapwatch-test-metrics-XXXXXX", cmd[256];
        FILE *f;
        int fd, status;

        if (access(PROMTOOL, X_OK) < 0) {
                fprintf(stderr, "promtool check skipped: %s not installed (Debian package prometheus)\n", PROMTOOL);
                return;
        }
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        f = fdopen(fd, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);

        /* promtool reads the exposition on stdin and exits non-zero on errors and lint problems */
        snprintf(cmd, sizeof cmd, "%s check metrics < %s", PROMTOOL, path);
        status = system(cmd);
        unlink(path);
        ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "promtool check metrics failed (status %d) on:\n%s", status, text);
}

START_TEST(test_daemon_families) {
        Registry *reg = new_registry();
        char *text, line[256];

        daemon_stats = (DaemonStats) {
                .start_time = T0, .connections_accepted_total = 7, .connections_refused_total = 1,
                .agents_connected = 2, .frames_hello_total = 3, .frames_sample_total = 40,
                .frames_goodbye_total = 1, .bytes_received_total = 123456, .processes_expired_total = 4,
                .http_requests_total = 99,
        };
        daemon_stats.frames_rejected_total[REJECT_BAD_JSON] = 6;

        text = render(reg);
        assert_line(text, "heapwatch_build_info{version=\"" PACKAGE_VERSION "\"} 1");
        assert_line(text, "heapwatch_daemon_start_time_seconds 1764061234");
        assert_line(text, "heapwatch_daemon_agents_connected 2");
        assert_line(text, "heapwatch_daemon_processes{state=\"live\"} 0");
        assert_line(text, "heapwatch_daemon_processes{state=\"exited\"} 0");
        assert_line(text, "heapwatch_daemon_connections_accepted_total 7");
        assert_line(text, "heapwatch_daemon_connections_refused_total 1");
        assert_line(text, "heapwatch_daemon_frames_received_total{type=\"hello\"} 3");
        assert_line(text, "heapwatch_daemon_frames_received_total{type=\"sample\"} 40");
        assert_line(text, "heapwatch_daemon_frames_received_total{type=\"goodbye\"} 1");
        assert_line(text, "heapwatch_daemon_frames_received_total{type=\"unknown\"} 0");
        assert_line(text, "heapwatch_daemon_received_bytes_total 123456");
        assert_line(text, "heapwatch_daemon_processes_expired_total 4");
        assert_line(text, "heapwatch_daemon_http_requests_total 99");
        assert_line(text, "# TYPE heapwatch_daemon_frames_rejected_total counter");
        /* every reason, zeros included */
        for (int r = 0; r < _REJECT_MAX; r++) {
                snprintf(line, sizeof line, "heapwatch_daemon_frames_rejected_total{reason=\"%s\"} %d",
                         frame_reject_reason_to_string((FrameRejectReason) r), r == REJECT_BAD_JSON ? 6 : 0);
                assert_line(text, line);
        }
        /* no process, no per-process samples, but the families are declared */
        assert_line(text, "# TYPE heapwatch_process_resident_memory_bytes gauge");
        assert_no_prefix(text, "heapwatch_process_up{");

        check_structure(text);
        promtool_check(text);
        free(text);
        registry_free(reg);
}
END_TEST

START_TEST(test_process_families) {
        static const char *const families[] = {
                "heapwatch_process_up", "heapwatch_process_start_time_seconds",
                "heapwatch_process_last_sample_timestamp_seconds", "heapwatch_process_resident_memory_bytes",
                "heapwatch_process_resident_memory_peak_bytes", "heapwatch_process_virtual_memory_bytes",
                "heapwatch_process_threads", "heapwatch_process_cgroup_memory_bytes",
                "heapwatch_process_cgroup_memory_limit_bytes", "heapwatch_python_allocated_blocks",
                "heapwatch_python_arena_allocations_total", "heapwatch_python_arena_frees_total",
                "heapwatch_gc_enabled", "heapwatch_gc_garbage_objects", "heapwatch_python_heap_sampled_live_bytes",
                "heapwatch_gc_objects",
                "heapwatch_gc_threshold", "heapwatch_gc_collections_total", "heapwatch_gc_collected_objects_total",
                "heapwatch_gc_uncollectable_objects_total", "heapwatch_gc_pause_seconds_total",
                "heapwatch_gc_pauses_total", "heapwatch_agent_samples_dropped_total",
                "heapwatch_agent_reconnects_total",
                "heapwatch_leak_suspected", "heapwatch_leak_confirmed",
                "heapwatch_leak_growth_bytes_per_second", "heapwatch_leak_seconds_to_limit",
                /* issue 8: allocators, GC behaviour, classification */
                "heapwatch_gc_collected_per_collection", "heapwatch_malloc_arena_bytes",
                "heapwatch_malloc_in_use_bytes", "heapwatch_malloc_free_bytes", "heapwatch_malloc_mmapped_bytes",
                "heapwatch_malloc_keepcost_bytes", "heapwatch_python_arenas", "heapwatch_python_arena_bytes",
                "heapwatch_memory_python_ratio", "heapwatch_memory_free_held_ratio", "heapwatch_gc_time_ratio",
                "heapwatch_gc_disabled_seconds_total", "heapwatch_gc_disables_total",
                "heapwatch_gc_threshold_changes_total", "heapwatch_gc_garbage_finalizer_objects",
                "heapwatch_gc_collected_finalizer_objects_total",
                "heapwatch_leak_classification",
        };
        Registry *reg = new_registry();
        Process *live, *exited, *fresh;
        HwSample s;
        char *text, line[256];
        size_t n;

        daemon_stats = (DaemonStats) { .start_time = T0 };
        live = attach(reg, 4242, 1234567, "billing");
        exited = attach(reg, 4243, 1234568, "billing");
        fresh = attach(reg, 4244, 1234569, "billing");
        (void) fresh;

        s = make_sample(1, T0 + 1.5);
        s.has_cgroup = true;
        s.cgroup_memory_current_bytes = 52428800;
        s.cgroup_memory_max_bytes = 1073741824;
        s.has_arenas = true;
        s.arena_allocs_total = 12;
        s.arena_frees_total = 2;
        ck_assert_int_eq(registry_add_sample(reg, live, &s), 0);
        s = make_sample(2, T0 + 2.5);
        s.has_cgroup = true;
        s.cgroup_memory_current_bytes = 52428801;
        s.cgroup_memory_max_bytes = 1073741824;
        s.has_arenas = true;
        ck_assert_int_eq(registry_add_sample(reg, live, &s), 0);

        s = make_sample(1, T0 + 1);
        s.has_cgroup = true;
        s.cgroup_memory_max_bytes = -1; /* unlimited */
        ck_assert_int_eq(registry_add_sample(reg, exited, &s), 0);
        registry_detach(reg, exited, EXIT_REASON_CLEAN, T0 + 5);

        text = render(reg);
        for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
                snprintf(line, sizeof line, "# TYPE %s %s", families[i],
                         strstr(families[i], "_total") ? "counter" : "gauge");
                assert_line(text, line);
        }

#define LABELS(pid, ticks) "{id=\"" #pid "-" #ticks "\",service=\"billing\",pid=\"" #pid "\"}"
        assert_line(text, "heapwatch_daemon_processes{state=\"live\"} 2");
        assert_line(text, "heapwatch_daemon_processes{state=\"exited\"} 1");
        assert_line(text, "heapwatch_process_up" LABELS(4242, 1234567) " 1");
        assert_line(text, "heapwatch_process_up" LABELS(4243, 1234568) " 0");
        assert_line(text, "heapwatch_process_up" LABELS(4244, 1234569) " 1");
        assert_line(text, "heapwatch_process_start_time_seconds" LABELS(4242, 1234567) " 1764061223.75");
        assert_line(text, "heapwatch_process_last_sample_timestamp_seconds" LABELS(4242, 1234567) " 1764061236.5");
        assert_line(text, "heapwatch_process_resident_memory_bytes" LABELS(4242, 1234567) " 31457280");
        assert_line(text, "heapwatch_process_resident_memory_peak_bytes" LABELS(4242, 1234567) " 33554432");
        assert_line(text, "heapwatch_process_virtual_memory_bytes" LABELS(4242, 1234567) " 412090368");
        assert_line(text, "heapwatch_process_threads" LABELS(4242, 1234567) " 3");
        assert_line(text, "heapwatch_process_cgroup_memory_bytes" LABELS(4242, 1234567) " 52428801");
        assert_line(text, "heapwatch_process_cgroup_memory_limit_bytes" LABELS(4242, 1234567) " 1073741824");
        assert_line(text, "heapwatch_python_allocated_blocks" LABELS(4242, 1234567) " 61234");
        assert_line(text, "heapwatch_gc_enabled" LABELS(4242, 1234567) " 1");
        assert_line(text, "heapwatch_gc_garbage_objects" LABELS(4242, 1234567) " 2");
        assert_line(text, "heapwatch_agent_samples_dropped_total" LABELS(4242, 1234567) " 5");
        assert_line(text, "heapwatch_agent_reconnects_total" LABELS(4242, 1234567) " 1");
        /* the exited process keeps its last figures */
        assert_line(text, "heapwatch_process_resident_memory_bytes" LABELS(4243, 1234568) " 31457280");
#undef LABELS

#define GEN(name, g) name "{id=\"4242-1234567\",service=\"billing\",pid=\"4242\",generation=\"" #g "\"}"
        assert_line(text, GEN("heapwatch_gc_objects", 0) " 412");
        assert_line(text, GEN("heapwatch_gc_threshold", 2) " 700");
        assert_line(text, GEN("heapwatch_gc_collections_total", 1) " 120");
        assert_line(text, GEN("heapwatch_gc_collected_objects_total", 0) " 3100");
        assert_line(text, GEN("heapwatch_gc_uncollectable_objects_total", 2) " 1");
        /* daemon-side sums over the two samples */
        assert_line(text, GEN("heapwatch_gc_pause_seconds_total", 0) " 0.00042");
        assert_line(text, GEN("heapwatch_gc_pauses_total", 2) " 6");
#undef GEN

        /* optional families follow the data: the exited process has an unlimited cgroup, the
         * fresh one no sample at all, only the live one reported arenas */
        assert_no_prefix(text, "heapwatch_process_cgroup_memory_limit_bytes{id=\"4243-");
        ck_assert_ptr_nonnull(strstr(text, "heapwatch_process_cgroup_memory_bytes{id=\"4243-"));
        assert_no_prefix(text, "heapwatch_python_arena_allocations_total{id=\"4243-");
        assert_no_prefix(text, "heapwatch_process_resident_memory_bytes{id=\"4244-");
        assert_no_prefix(text, "heapwatch_gc_objects{id=\"4244-");
        assert_line(text, "heapwatch_python_arena_allocations_total{id=\"4242-1234567\",service=\"billing\",pid=\"4242\"} 0");

        n = check_structure(text);
        /* 16 daemon-wide families, heapwatch_daemon_limit_hits_total (docs/security.md), and 2 of
         * censuses */
        ck_assert_uint_eq(n, 17 + 2 + sizeof families / sizeof families[0]);
        assert_line(text, "heapwatch_daemon_heap_stack_bytes 0");
        assert_line(text, "heapwatch_daemon_limit_hits_total{limit=\"frame_rate\"} 0");
        /* no heap profile received: no heap series for anyone */
        assert_no_prefix(text, "heapwatch_python_heap_sampled_live_bytes{");
        /* no leak: every process says so, and nothing is projected */
        assert_line(text, "heapwatch_leak_suspected{id=\"4242-1234567\",service=\"billing\",pid=\"4242\"} 0");
        assert_no_prefix(text, "heapwatch_leak_seconds_to_limit{");
        promtool_check(text);
        free(text);
        registry_free(reg);
}
END_TEST

START_TEST(test_label_escaping) {
        Registry *reg = new_registry();
        Process *p;
        HwSample s = make_sample(1, T0 + 1);
        char *text;

        daemon_stats = (DaemonStats) { .start_time = T0 };
        /* control characters are refused by message.c, but the renderer must not rely on it */
        p = attach(reg, 77, 7, "we\"ird\\svc\nname");
        ck_assert_int_eq(registry_add_sample(reg, p, &s), 0);

        text = render(reg);
        assert_line(text, "heapwatch_process_up{id=\"77-7\",service=\"we\\\"ird\\\\svc\\nname\",pid=\"77\"} 1");
        check_structure(text);
        promtool_check(text);
        free(text);
        registry_free(reg);
}
END_TEST

static char *escape(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        metrics_write_label_value(f, s);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

static void assert_escape(const char *in, const char *expected) {
        char *out = escape(in);

        ck_assert_str_eq(out, expected);
        free(out);
}

START_TEST(test_escape_function) {
        assert_escape("", "");
        assert_escape(NULL, "");
        assert_escape("plain", "plain");
        assert_escape("a\"b", "a\\\"b");
        assert_escape("a\\b", "a\\\\b");
        assert_escape("a\nb", "a\\nb");
        assert_escape("\\\\n", "\\\\\\\\n");
        /* valid UTF-8 passes through */
        assert_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d");
        /* invalid UTF-8 becomes '?' byte by byte: stray continuation, truncated sequence, overlong,
         * surrogate, beyond U+10FFFF */
        assert_escape("a\x80z", "a?z");
        assert_escape("a\xc3", "a?");
        assert_escape("a\xe2\x82", "a??");
        assert_escape("\xc0\xaf", "??");
        assert_escape("\xed\xa0\x80", "???");
        assert_escape("\xf4\x90\x80\x80", "????");
}
END_TEST

START_TEST(test_bad_arguments) {
        Registry *reg = new_registry();
        char *text = (char *) "untouched";
        size_t size = 42;

        ck_assert_int_eq(metrics_render(NULL, &daemon_stats, &text, &size), -EINVAL);
        ck_assert_int_eq(metrics_render(reg, NULL, &text, &size), -EINVAL);
        ck_assert_int_eq(metrics_render(reg, &daemon_stats, NULL, &size), -EINVAL);
        ck_assert_str_eq(text, "untouched");
        ck_assert_uint_eq(size, 42);
        registry_free(reg);
}
END_TEST

static Suite *metrics_suite(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("metrics");

        tcase_add_test(tc, test_daemon_families);
        tcase_add_test(tc, test_process_families);
        tcase_add_test(tc, test_label_escaping);
        tcase_add_test(tc, test_escape_function);
        tcase_add_test(tc, test_bad_arguments);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(metrics_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
