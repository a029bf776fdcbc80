/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/api.c on a real Registry: the JSON shapes of docs/api.md for /healthz,
 * /api/v1/processes (order, state filter, nulls before the first sample and while live),
 * /api/v1/processes/{id} (optional cgroup and arena members, GC pause sums), /series (bounds,
 * with and without step, the point cap, errors), and the status codes and error bodies of
 * 400/404/405. No sockets: api_handle() is called directly with a table of query parameters.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "metrics.h"
#include "registry.h"
#include "router.h"
#include "stats.h"

#define T0 1764061234.0

typedef struct Param {
        const char *key;
        const char *value;
} Param;

/* params: NULL-key-terminated */
static const char *lookup_param(void *userdata, const char *key) {
        for (const Param *p = userdata; p && p->key; p++)
                if (strcmp(p->key, key) == 0)
                        return p->value;
        return NULL;
}

static Registry *new_registry(size_t history_capacity) {
        RegistryLimits limits = { .max_processes = 16, .history_capacity = history_capacity, .exited_retention = 600 };
        Registry *r = registry_new(&limits);

        ck_assert_ptr_nonnull(r);
        return r;
}

/* argv: NULL-terminated, or NULL for "python3 app.py". */
static Process *attach_argv(Registry *reg, pid_t pid, pid_t ppid, int64_t ticks, const char *service, double now,
                            const char *const *argv) {
        HwHello h = {
                .protocol = 1, .pid = pid, .ppid = ppid, .start_time_ticks = ticks, .python_hexversion = 51054576,
                .interval = 1.0,
        };
        char id[PROCESS_ID_MAX];
        Process *p = NULL;

        snprintf(h.agent_version, sizeof h.agent_version, "0.1.0");
        snprintf(h.service, sizeof h.service, "%s", service);
        snprintf(h.hostname, sizeof h.hostname, "web-1");
        snprintf(h.python_version, sizeof h.python_version, "3.11.7");
        snprintf(h.python_implementation, sizeof h.python_implementation, "cpython");
        snprintf(h.python_build, sizeof h.python_build, "main");
        snprintf(h.python_compiler, sizeof h.python_compiler, "GCC 12.2.0");
        if (argv) {
                size_t n = 0;
                while (argv[n])
                        n++;
                h.argv = calloc(n + 1, sizeof(char *));
                ck_assert_ptr_nonnull(h.argv);
                for (size_t i = 0; i < n; i++)
                        h.argv[i] = strdup(argv[i]);
        } else {
                h.argv = calloc(3, sizeof(char *));
                ck_assert_ptr_nonnull(h.argv);
                h.argv[0] = strdup("python3");
                h.argv[1] = strdup("app.py");
        }

        process_id_format(id, pid, ticks);
        ck_assert_int_eq(registry_attach(reg, id, pid, 1000, 1000, ppid, ticks, T0 - 100, &h, now, &p), 0);
        return p;
}

static Process *attach(Registry *reg, pid_t pid, pid_t ppid, int64_t ticks, const char *service, double now) {
        return attach_argv(reg, pid, ppid, ticks, service, now, NULL);
}

static HwSample make_sample(uint64_t seq, double time, int64_t rss) {
        HwSample s = {
                .seq = seq, .time = time, .rss_bytes = rss, .rss_peak_bytes = rss + 100, .vm_bytes = 4 * rss,
                .threads = 3, .python_allocated_blocks = 61234, .gc_enabled = true, .gc_generations = 3,
                .agent_sample_seconds = 0.00004,
        };

        for (unsigned g = 0; g < 3; g++) {
                s.gc[g].count = 10 + g;
                s.gc[g].threshold = g == 0 ? 700 : 10;
                s.gc[g].collections = (int64_t) seq;
                s.gc[g].pauses = 1;
                s.gc[g].pause_seconds_total = 0.001 * (g + 1);
                s.gc[g].pause_seconds_max = 0.001 * (g + 1);
        }
        return s;
}

static void add_sample(Registry *reg, Process *p, const HwSample *s) {
        ck_assert_int_eq(registry_add_sample(reg, p, s), 0);
}

/* Run one request; returns the parsed JSON body (or NULL for /metrics) and the status. */
static json_t *request(Registry *reg, const char *path, const Param *params, int *ret_status) {
        Route route;
        char *body = NULL;
        size_t size = 0;
        const char *ctype = NULL;
        json_error_t error;
        json_t *j;

        ck_assert_int_eq(router_match("GET", path, &route), 0);
        ck_assert_int_eq(api_handle(reg, &route, lookup_param, (void *) params, T0 + 1000, ret_status, &body, &size,
                                    &ctype), 0);
        ck_assert_ptr_nonnull(body);
        ck_assert_uint_gt(size, 0);
        ck_assert_ptr_nonnull(ctype);
        if (route.kind == ROUTE_METRICS) {
                ck_assert_str_eq(ctype, METRICS_CONTENT_TYPE);
                free(body);
                return NULL;
        }
        ck_assert_str_eq(ctype, API_CONTENT_TYPE_JSON);
        ck_assert_int_eq(body[size - 1], '\n');
        j = json_loadb(body, size, 0, &error);
        ck_assert_msg(j != NULL, "invalid JSON from %s: %s: %.*s", path, error.text, (int) size, body);
        free(body);
        return j;
}

static json_t *request_ok(Registry *reg, const char *path, const Param *params) {
        int status = 0;
        json_t *j = request(reg, path, params, &status);

        ck_assert_msg(status == 200, "%s: status %d", path, status);
        return j;
}

/* Expect an error status and {"error": "...needle..."} with nothing else in it. */
static void assert_error(Registry *reg, const char *path, const Param *params, int status, const char *needle) {
        int got = 0;
        json_t *j = request(reg, path, params, &got);
        const char *msg;

        ck_assert_msg(got == status, "%s: status %d, expected %d", path, got, status);
        ck_assert(json_is_object(j));
        ck_assert_uint_eq(json_object_size(j), 1);
        msg = json_string_value(json_object_get(j, "error"));
        ck_assert_ptr_nonnull(msg);
        ck_assert_msg(strstr(msg, needle), "%s: error \"%s\" lacks \"%s\"", path, msg, needle);
        json_decref(j);
}

static json_int_t int_member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        ck_assert_msg(json_is_integer(v), "member %s is not an integer", key);
        return json_integer_value(v);
}

static double real_member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        ck_assert_msg(json_is_number(v), "member %s is not a number", key);
        return json_number_value(v);
}

static void assert_null_member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        ck_assert_msg(v != NULL, "member %s is missing", key);
        ck_assert_msg(json_is_null(v), "member %s is not null", key);
}

static const char *str_member(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));

        ck_assert_msg(s != NULL, "member %s is not a string", key);
        return s;
}

START_TEST(test_healthz) {
        Registry *reg = new_registry(16);
        json_t *j;

        daemon_stats = (DaemonStats) { .start_time = T0, .agents_connected = 2 };
        attach(reg, 100, 1, 5, "a", T0);

        j = request_ok(reg, "/healthz", NULL);
        ck_assert_str_eq(str_member(j, "status"), "ok");
        ck_assert_str_eq(str_member(j, "version"), PACKAGE_VERSION);
        ck_assert(fabs(real_member(j, "uptime_seconds") - 1000) < 1e-6);
        ck_assert_int_eq(int_member(j, "agents_connected"), 2);
        ck_assert_int_eq(int_member(j, "processes_tracked"), 1);
        json_decref(j);
        registry_free(reg);
}
END_TEST

START_TEST(test_processes_empty) {
        Registry *reg = new_registry(16);
        json_t *j = request_ok(reg, "/api/v1/processes", NULL);

        ck_assert(json_is_array(json_object_get(j, "processes")));
        ck_assert_uint_eq(json_array_size(json_object_get(j, "processes")), 0);
        json_decref(j);
        registry_free(reg);
}
END_TEST

START_TEST(test_processes_shape_and_nulls) {
        Registry *reg = new_registry(16);
        Process *parent, *child;
        HwSample s = make_sample(1, T0 + 1, 31457280);
        json_t *j, *list, *p;

        parent = attach(reg, 4200, 1, 1233000, "billing", T0);
        child = attach(reg, 4242, 4200, 1234567, "billing", T0 + 0.5);
        add_sample(reg, child, &s);

        j = request_ok(reg, "/api/v1/processes", NULL);
        list = json_object_get(j, "processes");
        ck_assert_uint_eq(json_array_size(list), 2);

        /* the parent: no sample yet, no tracked parent */
        p = json_array_get(list, 0);
        ck_assert_str_eq(str_member(p, "id"), parent->id);
        ck_assert_int_eq(int_member(p, "pid"), 4200);
        ck_assert_int_eq(int_member(p, "ppid"), 1);
        assert_null_member(p, "parent_id");
        ck_assert_str_eq(str_member(p, "service"), "billing");
        ck_assert_uint_eq(json_array_size(json_object_get(p, "argv")), 2);
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "argv"), 1)), "app.py");
        ck_assert_int_eq(int_member(p, "uid"), 1000);
        ck_assert_int_eq(int_member(p, "gid"), 1000);
        ck_assert_str_eq(str_member(p, "state"), "live");
        assert_null_member(p, "exit_reason");
        ck_assert(real_member(p, "started_at") == T0 - 100);
        ck_assert(real_member(p, "connected_at") == T0);
        assert_null_member(p, "exited_at");
        assert_null_member(p, "last_sample_at");
        ck_assert_int_eq(int_member(p, "samples"), 0);
        assert_null_member(p, "rss_bytes");
        assert_null_member(p, "python_allocated_blocks");
        ck_assert(json_is_false(json_object_get(p, "argv_truncated")));
        ck_assert_uint_eq(json_object_size(p), 18);

        /* the child: parent known, one sample */
        p = json_array_get(list, 1);
        ck_assert_str_eq(str_member(p, "id"), "4242-1234567");
        ck_assert_str_eq(str_member(p, "parent_id"), "4200-1233000");
        ck_assert(real_member(p, "last_sample_at") == T0 + 1);
        ck_assert_int_eq(int_member(p, "samples"), 1);
        ck_assert_int_eq(int_member(p, "rss_bytes"), 31457280);
        ck_assert_int_eq(int_member(p, "python_allocated_blocks"), 61234);
        json_decref(j);

        /* exited: reason and time */
        registry_detach(reg, parent, EXIT_REASON_CONNECTION_LOST, T0 + 50);
        j = request_ok(reg, "/api/v1/processes", NULL);
        p = json_array_get(json_object_get(j, "processes"), 1); /* exited ones last */
        ck_assert_str_eq(str_member(p, "id"), parent->id);
        ck_assert_str_eq(str_member(p, "state"), "exited");
        ck_assert_str_eq(str_member(p, "exit_reason"), "connection_lost");
        ck_assert(real_member(p, "exited_at") == T0 + 50);
        json_decref(j);
        registry_free(reg);
}
END_TEST

static void assert_ids(json_t *j, const char *const *ids, size_t n) {
        json_t *list = json_object_get(j, "processes");

        ck_assert_uint_eq(json_array_size(list), n);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(str_member(json_array_get(list, i), "id"), ids[i]);
}

START_TEST(test_processes_order_and_filter) {
        Registry *reg = new_registry(16);
        Process *a, *b, *c, *d;
        json_t *j;

        /* attach order a, b, c, d; connection times b < a < d < c */
        a = attach(reg, 1, 0, 1, "s", T0 + 10);
        b = attach(reg, 2, 0, 2, "s", T0 + 5);
        c = attach(reg, 3, 0, 3, "s", T0 + 30);
        d = attach(reg, 4, 0, 4, "s", T0 + 20);
        registry_detach(reg, a, EXIT_REASON_CLEAN, T0 + 40);
        registry_detach(reg, c, EXIT_REASON_STOPPED, T0 + 41);
        (void) b;
        (void) d;

        j = request_ok(reg, "/api/v1/processes", NULL);
        assert_ids(j, (const char *const[]) { "2-2", "4-4", "1-1", "3-3" }, 4);
        ck_assert_str_eq(str_member(json_array_get(json_object_get(j, "processes"), 2), "exit_reason"), "exit");
        ck_assert_str_eq(str_member(json_array_get(json_object_get(j, "processes"), 3), "exit_reason"), "stop");
        json_decref(j);

        j = request_ok(reg, "/api/v1/processes/", (const Param[]) { { "state", "all" }, {} });
        assert_ids(j, (const char *const[]) { "2-2", "4-4", "1-1", "3-3" }, 4);
        json_decref(j);
        j = request_ok(reg, "/api/v1/processes", (const Param[]) { { "state", "live" }, {} });
        assert_ids(j, (const char *const[]) { "2-2", "4-4" }, 2);
        json_decref(j);
        j = request_ok(reg, "/api/v1/processes", (const Param[]) { { "state", "exited" }, {} });
        assert_ids(j, (const char *const[]) { "1-1", "3-3" }, 2);
        json_decref(j);

        assert_error(reg, "/api/v1/processes", (const Param[]) { { "state", "zombie" }, {} }, 400, "invalid state");
        /* a percent-decoded byte that is not UTF-8 must still give a JSON 400, not a 500 */
        assert_error(reg, "/api/v1/processes", (const Param[]) { { "state", "\xc3\x28" }, {} }, 400, "invalid state");
        registry_free(reg);
}
END_TEST

/* Found by review: 64 argv strings of 1 KiB made every listed record 66 KB, a listing of 1000
 * records 66 MB. Listings carry at most API_LIST_ARGV_BYTES_MAX (4096) bytes of argv, cut at a
 * character boundary and flagged; the detail has it whole. */
START_TEST(test_processes_argv_bounded_in_listings) {
        Registry *reg = new_registry(16);
        const char *argv[66];
        char big[1001], accents[1001];
        json_t *j, *list_argv, *detail_argv, *p;
        size_t total = 0;

        memset(big, 'x', 1000);
        big[1000] = '\0';
        /* "a" then two-byte characters: byte 4096 of the whole argv falls inside one */
        accents[0] = 'a';
        for (size_t i = 1; i + 1 < 1000; i += 2)
                memcpy(accents + i, "\xc3\xa9", 2);
        accents[999] = '\0';
        for (size_t i = 0; i < 64; i++)
                argv[i] = i == 4 ? accents : big;
        argv[64] = NULL;
        attach_argv(reg, 7, 1, 70, "wide", T0, argv);

        j = request_ok(reg, "/api/v1/processes", NULL);
        p = json_array_get(json_object_get(j, "processes"), 0);
        list_argv = json_object_get(p, "argv");
        ck_assert(json_is_true(json_object_get(p, "argv_truncated")));
        ck_assert_uint_eq(json_array_size(list_argv), 5);
        for (size_t i = 0; i < json_array_size(list_argv); i++)
                total += json_string_length(json_array_get(list_argv, i));
        ck_assert_uint_le(total, 4096);
        /* 4000 bytes of x, then "a" and 47 whole characters: 4095 */
        ck_assert_uint_eq(total, 4095);
        ck_assert_uint_eq(json_string_length(json_array_get(list_argv, 4)), 95);
        ck_assert_int_eq(memcmp(json_string_value(json_array_get(list_argv, 4)), accents, 95), 0);
        json_decref(j);

        j = request_ok(reg, "/api/v1/processes/7-70", NULL);
        p = json_object_get(j, "process");
        detail_argv = json_object_get(p, "argv");
        ck_assert(json_is_false(json_object_get(p, "argv_truncated")));
        ck_assert_uint_eq(json_array_size(detail_argv), 64);
        ck_assert_str_eq(json_string_value(json_array_get(detail_argv, 4)), accents);
        json_decref(j);

        /* Bounded as written: control characters are six bytes each (\u0001), quotes two */
        {
                char ctl[4097];
                const char *cargv[] = { ctl, NULL };
                size_t written = 0;

                memset(ctl, '\x01', 4000);
                memset(ctl + 4000, '"', 96);
                ctl[4096] = '\0';
                attach_argv(reg, 8, 1, 80, "controls", T0, cargv);
                j = request_ok(reg, "/api/v1/processes/8-80", NULL);
                ck_assert(json_is_false(json_object_get(json_object_get(j, "process"), "argv_truncated")));
                json_decref(j);
                j = request_ok(reg, "/api/v1/processes", NULL);
                for (size_t k = 0; k < json_array_size(json_object_get(j, "processes")); k++) {
                        json_t *q = json_array_get(json_object_get(j, "processes"), k);

                        if (strcmp(json_string_value(json_object_get(q, "service")), "controls") != 0)
                                continue;
                        ck_assert(json_is_true(json_object_get(q, "argv_truncated")));
                        for (size_t i = 0; i < json_array_size(json_object_get(q, "argv")); i++) {
                                char *text = json_dumps(json_array_get(json_object_get(q, "argv"), i),
                                                        JSON_COMPACT | JSON_ENCODE_ANY);

                                written += strlen(text) - 2; /* without its quotes */
                                free(text);
                        }
                }
                ck_assert_uint_gt(written, 4090);
                ck_assert_uint_le(written, 4096);
                json_decref(j);
        }
        registry_free(reg);
}
END_TEST

/* ?limit= and ?offset= page through the listing in its order; next_offset says where the next
 * page starts, null on the last. */
START_TEST(test_processes_pages) {
        Registry *reg = new_registry(16);
        json_t *j;

        for (int i = 1; i <= 5; i++)
                attach(reg, i, 0, i, "s", T0 + i);

        j = request_ok(reg, "/api/v1/processes", (const Param[]) { { "limit", "2" }, {} });
        assert_ids(j, (const char *const[]) { "1-1", "2-2" }, 2);
        ck_assert_int_eq(int_member(j, "next_offset"), 2);
        json_decref(j);
        j = request_ok(reg, "/api/v1/processes", (const Param[]) { { "limit", "2" }, { "offset", "2" }, {} });
        assert_ids(j, (const char *const[]) { "3-3", "4-4" }, 2);
        ck_assert_int_eq(int_member(j, "next_offset"), 4);
        json_decref(j);
        j = request_ok(reg, "/api/v1/processes", (const Param[]) { { "limit", "2" }, { "offset", "4" }, {} });
        assert_ids(j, (const char *const[]) { "5-5" }, 1);
        assert_null_member(j, "next_offset");
        json_decref(j);
        /* exactly the rest: no next page */
        j = request_ok(reg, "/api/v1/processes", (const Param[]) { { "limit", "3" }, { "offset", "2" }, {} });
        assert_ids(j, (const char *const[]) { "3-3", "4-4", "5-5" }, 3);
        assert_null_member(j, "next_offset");
        json_decref(j);
        j = request_ok(reg, "/api/v1/processes", (const Param[]) { { "offset", "10" }, {} });
        assert_ids(j, NULL, 0);
        assert_null_member(j, "next_offset");
        json_decref(j);
        j = request_ok(reg, "/api/v1/processes", NULL);
        assert_ids(j, (const char *const[]) { "1-1", "2-2", "3-3", "4-4", "5-5" }, 5);
        assert_null_member(j, "next_offset");
        json_decref(j);

        assert_error(reg, "/api/v1/processes", (const Param[]) { { "limit", "0" }, {} }, 400, "invalid limit");
        assert_error(reg, "/api/v1/processes", (const Param[]) { { "limit", "1001" }, {} }, 400, "invalid limit");
        assert_error(reg, "/api/v1/processes", (const Param[]) { { "offset", "-1" }, {} }, 400, "invalid offset");
        registry_free(reg);
}
END_TEST

START_TEST(test_process_detail) {
        Registry *reg = new_registry(16);
        Process *p = attach(reg, 4242, 1, 1234567, "billing", T0);
        HwSample s1 = make_sample(1, T0 + 1, 1000), s2 = make_sample(2, T0 + 2, 2000);
        json_t *j, *proc, *latest, *o, *gens;

        /* before the first sample */
        j = request_ok(reg, "/api/v1/processes/4242-1234567", NULL);
        proc = json_object_get(j, "process");
        ck_assert_str_eq(str_member(proc, "id"), "4242-1234567");
        ck_assert_str_eq(str_member(proc, "hostname"), "web-1");
        ck_assert_str_eq(str_member(proc, "agent_version"), "0.1.0");
        ck_assert_int_eq(int_member(proc, "agent_pid"), 4242);
        ck_assert(real_member(proc, "interval") == 1.0);
        ck_assert_int_eq(int_member(proc, "connections"), 1);
        o = json_object_get(proc, "python");
        ck_assert_str_eq(str_member(o, "version"), "3.11.7");
        ck_assert_str_eq(str_member(o, "implementation"), "cpython");
        ck_assert_int_eq(int_member(o, "hexversion"), 51054576);
        ck_assert_str_eq(str_member(o, "build"), "main");
        ck_assert_str_eq(str_member(o, "compiler"), "GCC 12.2.0");
        assert_null_member(j, "latest_sample");
        ck_assert_uint_eq(json_array_size(json_object_get(j, "gc_pause_seconds_total")), 0);
        json_decref(j);

        /* first sample without cgroup or arenas, second with both */
        add_sample(reg, p, &s1);
        s2.has_cgroup = true;
        snprintf(s2.cgroup_path, sizeof s2.cgroup_path, "/system.slice/billing.service");
        s2.cgroup_memory_current_bytes = 52428800;
        s2.cgroup_memory_max_bytes = -1;
        s2.has_arenas = true;
        s2.arena_allocs_total = 12;
        s2.arena_frees_total = 2;
        s2.arena_size_bytes = 1048576;
        add_sample(reg, p, &s2);

        j = request_ok(reg, "/api/v1/processes/4242-1234567/", NULL);
        latest = json_object_get(j, "latest_sample");
        ck_assert(json_is_object(latest));
        ck_assert_int_eq(int_member(latest, "seq"), 2);
        ck_assert(real_member(latest, "time") == T0 + 2);
        o = json_object_get(latest, "process");
        ck_assert_int_eq(int_member(o, "rss_bytes"), 2000);
        ck_assert_int_eq(int_member(o, "rss_peak_bytes"), 2100);
        ck_assert_int_eq(int_member(o, "vm_bytes"), 8000);
        ck_assert_int_eq(int_member(o, "threads"), 3);
        o = json_object_get(latest, "cgroup");
        ck_assert_str_eq(str_member(o, "path"), "/system.slice/billing.service");
        ck_assert_int_eq(int_member(o, "memory_current_bytes"), 52428800);
        assert_null_member(o, "memory_max_bytes");
        o = json_object_get(latest, "python");
        ck_assert_int_eq(int_member(o, "allocated_blocks"), 61234);
        ck_assert_int_eq(int_member(o, "arena_allocs_total"), 12);
        ck_assert_int_eq(int_member(o, "arena_frees_total"), 2);
        ck_assert_int_eq(int_member(o, "arena_size_bytes"), 1048576);
        o = json_object_get(latest, "gc");
        ck_assert(json_is_true(json_object_get(o, "enabled")));
        ck_assert_int_eq(int_member(o, "garbage"), 0);
        gens = json_object_get(o, "generations");
        ck_assert_uint_eq(json_array_size(gens), 3);
        ck_assert_int_eq(int_member(json_array_get(gens, 0), "threshold"), 700);
        ck_assert_int_eq(int_member(json_array_get(gens, 2), "count"), 12);
        ck_assert_int_eq(int_member(json_array_get(gens, 1), "pauses"), 1);
        ck_assert(fabs(real_member(json_array_get(gens, 2), "pause_seconds_max") - 0.003) < 1e-12);
        ck_assert_uint_eq(json_object_size(json_array_get(gens, 0)), 8);
        o = json_object_get(latest, "agent");
        ck_assert_int_eq(int_member(o, "samples_dropped_total"), 0);
        ck_assert_int_eq(int_member(o, "reconnects_total"), 0);
        ck_assert(fabs(real_member(o, "sample_seconds") - 0.00004) < 1e-12);

        /* the daemon's sums over both samples */
        o = json_object_get(j, "gc_pause_seconds_total");
        ck_assert_uint_eq(json_array_size(o), 3);
        ck_assert(fabs(json_number_value(json_array_get(o, 0)) - 0.002) < 1e-12);
        ck_assert(fabs(json_number_value(json_array_get(o, 2)) - 0.006) < 1e-12);
        json_decref(j);

        /* a limited cgroup reports its limit; no cgroup means no member at all */
        s1 = make_sample(3, T0 + 3, 3000);
        s1.has_cgroup = true;
        s1.cgroup_memory_max_bytes = 1073741824;
        add_sample(reg, p, &s1);
        j = request_ok(reg, "/api/v1/processes/4242-1234567", NULL);
        ck_assert_int_eq(int_member(json_object_get(json_object_get(j, "latest_sample"), "cgroup"), "memory_max_bytes"),
                         1073741824);
        json_decref(j);

        s1 = make_sample(4, T0 + 4, 4000);
        add_sample(reg, p, &s1);
        j = request_ok(reg, "/api/v1/processes/4242-1234567", NULL);
        latest = json_object_get(j, "latest_sample");
        ck_assert_ptr_null(json_object_get(latest, "cgroup"));
        ck_assert_ptr_null(json_object_get(json_object_get(latest, "python"), "arena_allocs_total"));
        json_decref(j);

        registry_free(reg);
}
END_TEST

START_TEST(test_unknown_process) {
        Registry *reg = new_registry(16);

        attach(reg, 1, 0, 1, "s", T0);
        assert_error(reg, "/api/v1/processes/1-2", NULL, 404, "unknown process id \"1-2\"");
        assert_error(reg, "/api/v1/processes/1-2/series", (const Param[]) { { "metric", "rss_bytes" }, {} }, 404,
                     "unknown process id");
        /* malformed ids and other paths are plain 404s */
        assert_error(reg, "/api/v1/processes/abc", NULL, 404, "not found");
        assert_error(reg, "/nope", NULL, 404, "not found");
        registry_free(reg);
}
END_TEST

START_TEST(test_method_not_allowed) {
        Registry *reg = new_registry(16);
        Route route;
        char *body = NULL;
        size_t size;
        const char *ctype;
        int status;

        ck_assert_int_eq(router_match("POST", "/metrics", &route), 0);
        ck_assert_int_eq(api_handle(reg, &route, NULL, NULL, T0, &status, &body, &size, &ctype), 0);
        ck_assert_int_eq(status, 405);
        ck_assert_str_eq(ctype, API_CONTENT_TYPE_JSON);
        ck_assert_ptr_nonnull(strstr(body, "\"error\""));
        free(body);
        registry_free(reg);
}
END_TEST

/* Points as [[t, v], ...] */
static void assert_points(json_t *j, const double (*expected)[2], size_t n) {
        json_t *points = json_object_get(j, "points");

        ck_assert(json_is_array(points));
        ck_assert_msg(json_array_size(points) == n, "%zu points, expected %zu", json_array_size(points), n);
        for (size_t i = 0; i < n; i++) {
                json_t *pt = json_array_get(points, i);

                ck_assert_uint_eq(json_array_size(pt), 2);
                ck_assert_msg(fabs(json_number_value(json_array_get(pt, 0)) - expected[i][0]) < 1e-6,
                              "point %zu: time %f, expected %f", i, json_number_value(json_array_get(pt, 0)),
                              expected[i][0]);
                ck_assert_msg(fabs(json_number_value(json_array_get(pt, 1)) - expected[i][1]) < 1e-6,
                              "point %zu: value %f, expected %f", i, json_number_value(json_array_get(pt, 1)),
                              expected[i][1]);
        }
}

START_TEST(test_series) {
        Registry *reg = new_registry(64);
        Process *p = attach(reg, 7, 1, 70, "s", T0);
        json_t *j;

        /* samples at T0+0 .. T0+9, rss 1000 * (i+1) */
        for (unsigned i = 0; i < 10; i++) {
                HwSample s = make_sample(i + 1, T0 + i, 1000 * (i + 1));
                add_sample(reg, p, &s);
        }

        /* no step: every point in [from, to], both ends included */
        j = request_ok(reg, "/api/v1/processes/7-70/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "1764061236" }, { "to", "1764061238" }, {} });
        ck_assert_str_eq(str_member(j, "id"), "7-70");
        ck_assert_str_eq(str_member(j, "metric"), "rss_bytes");
        ck_assert(real_member(j, "from") == T0 + 2);
        ck_assert(real_member(j, "to") == T0 + 4);
        assert_null_member(j, "step");
        assert_points(j, (const double[][2]) { { T0 + 2, 3000 }, { T0 + 3, 4000 }, { T0 + 4, 5000 } }, 3);
        /* counts come out as JSON integers */
        ck_assert(json_is_integer(json_array_get(json_array_get(json_object_get(j, "points"), 0), 1)));
        json_decref(j);

        /* defaults: to = now (T0+1000), from = to - 3600: everything */
        j = request_ok(reg, "/api/v1/processes/7-70/series/", (const Param[]) { { "metric", "threads" }, {} });
        ck_assert(real_member(j, "to") == T0 + 1000);
        ck_assert(real_member(j, "from") == T0 + 1000 - 3600);
        ck_assert_uint_eq(json_array_size(json_object_get(j, "points")), 10);
        json_decref(j);

        /* with step: means of buckets aligned to from, reported at the bucket start; the
         * bucket holding `to` is the last one */
        j = request_ok(reg, "/api/v1/processes/7-70/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "1764061234" }, { "to", "1764061243" },
                                         { "step", "4" }, {} });
        ck_assert(real_member(j, "step") == 4);
        assert_points(j, (const double[][2]) { { T0, 2500 }, { T0 + 4, 6500 }, { T0 + 8, 9500 } }, 3);
        json_decref(j);

        /* empty buckets are left out; a fractional mean is a real */
        j = request_ok(reg, "/api/v1/processes/7-70/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "1764061200" }, { "to", "1764061235" },
                                         { "step", "17" }, {} });
        assert_points(j, (const double[][2]) { { T0 - 34 + 34, 1500 } }, 1);
        json_decref(j);

        j = request_ok(reg, "/api/v1/processes/7-70/series",
                       (const Param[]) { { "metric", "gc_pause_seconds" }, { "from", "1764061234" }, { "to", "1764061234" }, {} });
        assert_points(j, (const double[][2]) { { T0, 0.006 } }, 1);
        ck_assert(json_is_real(json_array_get(json_array_get(json_object_get(j, "points"), 0), 1)));
        json_decref(j);

        /* a range with no data */
        j = request_ok(reg, "/api/v1/processes/7-70/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "0" }, { "to", "10" }, { "step", "1" }, {} });
        assert_points(j, NULL, 0);
        json_decref(j);

        assert_error(reg, "/api/v1/processes/7-70/series", NULL, 400, "missing parameter metric");
        assert_error(reg, "/api/v1/processes/7-70/series", (const Param[]) { { "metric", "heap" }, {} }, 400,
                     "unknown metric");
        assert_error(reg, "/api/v1/processes/7-70/series",
                     (const Param[]) { { "metric", "rss_bytes" }, { "from", "nan" }, {} }, 400, "invalid from");
        assert_error(reg, "/api/v1/processes/7-70/series",
                     (const Param[]) { { "metric", "rss_bytes" }, { "from", "5" }, { "to", "4" }, {} }, 400, "after to");
        assert_error(reg, "/api/v1/processes/7-70/series",
                     (const Param[]) { { "metric", "rss_bytes" }, { "step", "0" }, {} }, 400, "invalid step");
        registry_free(reg);
}
END_TEST

START_TEST(test_series_point_cap) {
        Registry *reg = new_registry(SERIES_POINTS_MAX + 100);
        Process *p = attach(reg, 8, 1, 80, "s", T0);
        json_t *j;

        for (unsigned i = 0; i <= SERIES_POINTS_MAX; i++) {
                HwSample s = make_sample(i + 1, 1000 + i, 1);
                add_sample(reg, p, &s);
        }

        /* 11001 stored points in range: the step is raised (and said so) instead of refusing */
        j = request_ok(reg, "/api/v1/processes/8-80/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "0" }, { "to", "100000" }, {} });
        ck_assert(json_is_true(json_object_get(j, "step_adjusted")));
        ck_assert(json_is_null(json_object_get(j, "requested_step")));
        ck_assert(real_member(j, "step") > 0);
        ck_assert_uint_le(json_array_size(json_object_get(j, "points")), SERIES_POINTS_MAX);
        ck_assert_uint_ge(json_array_size(json_object_get(j, "points")), 100);
        json_decref(j);
        /* exactly 11000 is fine, unadjusted */
        j = request_ok(reg, "/api/v1/processes/8-80/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "1001" }, { "to", "100000" }, {} });
        ck_assert_uint_eq(json_array_size(json_object_get(j, "points")), SERIES_POINTS_MAX);
        json_decref(j);
        /* with a step the same range is small */
        j = request_ok(reg, "/api/v1/processes/8-80/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "0" }, { "to", "100000" }, { "step", "60" }, {} });
        ck_assert_uint_eq(json_array_size(json_object_get(j, "points")), 185); /* 1000..12000: buckets 16..200 of 60 s */
        json_decref(j);
        /* a step that would make too many buckets is raised: the range counts from the
         * process's start (T0 - 100), the reply keeps the requested step */
        j = request_ok(reg, "/api/v1/processes/8-80/series",
                       (const Param[]) { { "metric", "rss_bytes" }, { "from", "0" }, { "to", "1864061234" },
                                         { "step", "0.5" }, {} });
        ck_assert(json_is_true(json_object_get(j, "step_adjusted")));
        ck_assert(real_member(j, "requested_step") == 0.5);
        ck_assert(real_member(j, "step") > 0.5);
        ck_assert(series_bucket_count(T0 - 100, 1864061234, real_member(j, "step")) <= SERIES_POINTS_MAX);
        ck_assert_uint_ge(json_array_size(json_object_get(j, "points")), 1);
        json_decref(j);
        /* and a bad agg is a 400 */
        assert_error(reg, "/api/v1/processes/8-80/series",
                     (const Param[]) { { "metric", "rss_bytes" }, { "agg", "median" }, {} }, 400, "invalid agg");
        registry_free(reg);
}
END_TEST

START_TEST(test_metrics_route) {
        Registry *reg = new_registry(16);
        int status = 0;

        ck_assert_ptr_null(request(reg, "/metrics", NULL, &status));
        ck_assert_int_eq(status, 200);
        registry_free(reg);
}
END_TEST

START_TEST(test_error_body) {
        char *body = NULL;
        size_t size = 0;

        ck_assert_int_eq(api_error_body("request bodies are not accepted", &body, &size), 0);
        ck_assert_str_eq(body, "{\"error\":\"request bodies are not accepted\"}\n");
        ck_assert_uint_eq(size, strlen(body));
        free(body);

        /* not UTF-8: still a valid JSON error */
        ck_assert_int_eq(api_error_body("bad \xff", &body, &size), 0);
        ck_assert_str_eq(body, "{\"error\":\"invalid request\"}\n");
        free(body);

        ck_assert_int_eq(api_error_body("x", NULL, &size), -EINVAL);
}
END_TEST

START_TEST(test_bad_arguments) {
        Registry *reg = new_registry(16);
        Route route = { .kind = ROUTE_HEALTHZ };
        char *body = (char *) "untouched";
        size_t size = 42;
        const char *ctype = "untouched";
        int status = 7;

        ck_assert_int_eq(api_handle(NULL, &route, NULL, NULL, T0, &status, &body, &size, &ctype), -EINVAL);
        ck_assert_int_eq(api_handle(reg, NULL, NULL, NULL, T0, &status, &body, &size, &ctype), -EINVAL);
        ck_assert_int_eq(status, 7);
        ck_assert_str_eq(body, "untouched");
        ck_assert_uint_eq(size, 42);
        registry_free(reg);
}
END_TEST

static Suite *api_suite(void) {
        Suite *s = suite_create("api");
        TCase *tc = tcase_create("api");

        tcase_add_test(tc, test_healthz);
        tcase_add_test(tc, test_processes_empty);
        tcase_add_test(tc, test_processes_shape_and_nulls);
        tcase_add_test(tc, test_processes_order_and_filter);
        tcase_add_test(tc, test_processes_argv_bounded_in_listings);
        tcase_add_test(tc, test_processes_pages);
        tcase_add_test(tc, test_process_detail);
        tcase_add_test(tc, test_unknown_process);
        tcase_add_test(tc, test_method_not_allowed);
        tcase_add_test(tc, test_series);
        tcase_add_test(tc, test_series_point_cap);
        tcase_add_test(tc, test_metrics_route);
        tcase_add_test(tc, test_error_body);
        tcase_add_test(tc, test_bad_arguments);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(api_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
