/* SPDX-License-Identifier: MIT */
/*
 * JSON responses of the HTTP API (see api.h and docs/api.md). Objects are built member by member
 * with json_add(), which owns the value it is given even when it fails, chained with || so the first
 * failure stops construction without leaking: every builder returns a new reference or NULL, and
 * NULL means out of memory.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "api-leaks.h"
#include "json-util.h"
#include "macro.h"
#include "metrics.h"
#include "router.h"
#include "stats.h"


/* 16 significant digits: microseconds on a Unix timestamp, and 1764061234.56 prints as such
 * rather than as the 17-digit 1764061234.5599999. */
#define API_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(16))


static json_t *json_string_or_null(const char *s) {
        return s ? json_string_lossy(s) : json_null();
}

/* Serialize with a trailing newline (friendlier for curl) and hand the buffer over. */
static int dump(json_t *root, char **ret_body, size_t *ret_size) {
        _cleanup_free_ char *text = NULL;
        char *grown;
        size_t n;

        text = json_dumps(root, API_JSON_FLAGS);
        if (!text)
                return -ENOMEM;
        n = strlen(text);
        grown = realloc(text, n + 2);
        if (!grown)
                return -ENOMEM;
        text = grown;
        text[n] = '\n';
        text[n + 1] = '\0';

        *ret_size = n + 1;
        *ret_body = TAKE_PTR(text);
        return 0;
}

int api_error_body(const char *message, char **ret_body, size_t *ret_size) {
        _cleanup_json_ json_t *root = NULL, *msg = NULL;

        if (!ret_body || !ret_size)
                return -EINVAL;

        /* A message that echoes a client's bytes may not be UTF-8; say something generic then. */
        msg = json_string(message ? message : "error");
        if (!msg)
                msg = json_string("invalid request");
        root = json_object();
        if (!root || json_add(root, "error", TAKE_PTR(msg)) < 0)
                return -ENOMEM;
        return dump(root, ret_body, ret_size);
}

/* The members every listing shows (docs/api.md, "the summary"). */
static int add_process_summary(json_t *o, const Process *p) {
        _cleanup_json_ json_t *argv = NULL;

        argv = json_array();
        if (!argv)
                return -ENOMEM;
        if (p->hello.argv)
                for (char **a = p->hello.argv; *a; a++)
                        if (json_append(argv, json_string_lossy(*a)) < 0)
                                return -ENOMEM;

        if (json_add(o, "id", json_string(p->id)) < 0 ||
            json_add(o, "pid", json_integer(p->pid)) < 0 ||
            json_add(o, "ppid", json_integer(p->ppid)) < 0 ||
            json_add(o, "parent_id", p->parent_id[0] ? json_string_lossy(p->parent_id) : json_null()) < 0 ||
            json_add(o, "service", json_string_lossy(p->hello.service)) < 0 ||
            json_add(o, "argv", TAKE_PTR(argv)) < 0 ||
            json_add(o, "uid", json_integer(p->uid)) < 0 ||
            json_add(o, "gid", json_integer(p->gid)) < 0 ||
            json_add(o, "state", json_string(process_state_to_string(p->state))) < 0 ||
            json_add(o, "exit_reason",
                p->state == PROCESS_EXITED ? json_string_or_null(exit_reason_to_string(p->exit_reason)) : json_null()) < 0 ||
            json_add(o, "started_at", json_time_or_null(p->start_time)) < 0 ||
            json_add(o, "connected_at", json_time_or_null(p->connected_at)) < 0 ||
            json_add(o, "exited_at", p->state == PROCESS_EXITED ? json_time_or_null(p->exited_at) : json_null()) < 0 ||
            json_add(o, "last_sample_at", p->has_sample ? json_number_or_null(p->latest.time) : json_null()) < 0 ||
            json_add(o, "samples", json_integer((json_int_t) p->samples_received)) < 0 ||
            json_add(o, "rss_bytes", p->has_sample ? json_integer(p->latest.rss_bytes) : json_null()) < 0 ||
            json_add(o, "python_allocated_blocks",
                p->has_sample ? json_integer(p->latest.python_allocated_blocks) : json_null()) < 0)
                return -ENOMEM;
        return 0;
}

static json_t *process_summary_new(const Process *p) {
        _cleanup_json_ json_t *o = json_object();

        if (!o || add_process_summary(o, p) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *gc_generation_new(const HwGcGeneration *g) {
        _cleanup_json_ json_t *o = json_object();

        if (!o ||
            json_add(o, "count", json_integer(g->count)) < 0 ||
            json_add(o, "threshold", json_integer(g->threshold)) < 0 ||
            json_add(o, "collections", json_integer(g->collections)) < 0 ||
            json_add(o, "collected", json_integer(g->collected)) < 0 ||
            json_add(o, "uncollectable", json_integer(g->uncollectable)) < 0 ||
            json_add(o, "pauses", json_integer(g->pauses)) < 0 ||
            json_add(o, "pause_seconds_total", json_number_or_null(g->pause_seconds_total)) < 0 ||
            json_add(o, "pause_seconds_max", json_number_or_null(g->pause_seconds_max)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *sample_new(const HwSample *s) {
        _cleanup_json_ json_t *o = NULL, *process = NULL, *cgroup = NULL, *python = NULL,
                              *gens = NULL, *gc = NULL, *agent = NULL;
        unsigned n = s->gc_generations < HW_GC_GENERATIONS_MAX ? s->gc_generations : HW_GC_GENERATIONS_MAX;

        process = json_object();
        if (!process ||
            json_add(process, "rss_bytes", json_integer(s->rss_bytes)) < 0 ||
            json_add(process, "rss_peak_bytes", json_integer(s->rss_peak_bytes)) < 0 ||
            json_add(process, "vm_bytes", json_integer(s->vm_bytes)) < 0 ||
            json_add(process, "threads", json_integer(s->threads)) < 0)
                return NULL;

        if (s->has_cgroup) {
                cgroup = json_object();
                if (!cgroup ||
                    json_add(cgroup, "path", json_string_lossy(s->cgroup_path)) < 0 ||
                    json_add(cgroup, "memory_current_bytes", json_integer(s->cgroup_memory_current_bytes)) < 0 ||
                    json_add(cgroup, "memory_max_bytes",
                        s->cgroup_memory_max_bytes >= 0 ? json_integer(s->cgroup_memory_max_bytes) : json_null()) < 0)
                        return NULL;
        }

        python = json_object();
        if (!python || json_add(python, "allocated_blocks", json_integer(s->python_allocated_blocks)) < 0)
                return NULL;
        if (s->has_arenas &&
            (json_add(python, "arena_allocs_total", json_integer(s->arena_allocs_total)) < 0 ||
             json_add(python, "arena_frees_total", json_integer(s->arena_frees_total)) < 0 ||
             json_add(python, "arena_size_bytes", json_integer(s->arena_size_bytes)) < 0))
                return NULL;

        gens = json_array();
        if (!gens)
                return NULL;
        for (unsigned g = 0; g < n; g++)
                if (json_append(gens, gc_generation_new(&s->gc[g])) < 0)
                        return NULL;
        gc = json_object();
        if (!gc ||
            json_add(gc, "enabled", json_boolean(s->gc_enabled)) < 0 ||
            json_add(gc, "garbage", json_integer(s->gc_garbage)) < 0 ||
            json_add(gc, "generations", TAKE_PTR(gens)) < 0)
                return NULL;

        agent = json_object();
        if (!agent ||
            json_add(agent, "samples_dropped_total", json_integer(s->agent_samples_dropped_total)) < 0 ||
            json_add(agent, "reconnects_total", json_integer(s->agent_reconnects_total)) < 0 ||
            json_add(agent, "sample_seconds", json_number_or_null(s->agent_sample_seconds)) < 0)
                return NULL;

        o = json_object();
        if (!o ||
            json_add(o, "seq", json_integer((json_int_t) s->seq)) < 0 ||
            json_add(o, "time", json_number_or_null(s->time)) < 0 ||
            json_add(o, "process", TAKE_PTR(process)) < 0 ||
            (cgroup && json_add(o, "cgroup", TAKE_PTR(cgroup)) < 0) ||
            json_add(o, "python", TAKE_PTR(python)) < 0 ||
            json_add(o, "gc", TAKE_PTR(gc)) < 0 ||
            json_add(o, "agent", TAKE_PTR(agent)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *process_detail_new(const Process *p) {
        _cleanup_json_ json_t *root = NULL, *o = NULL, *python = NULL, *pauses = NULL;
        unsigned n = 0;

        o = process_summary_new(p);
        if (!o)
                return NULL;

        python = json_object();
        if (!python ||
            json_add(python, "version", json_string_lossy(p->hello.python_version)) < 0 ||
            json_add(python, "implementation", json_string_lossy(p->hello.python_implementation)) < 0 ||
            json_add(python, "hexversion", json_integer(p->hello.python_hexversion)) < 0 ||
            json_add(python, "build", json_string_lossy(p->hello.python_build)) < 0 ||
            json_add(python, "compiler", json_string_lossy(p->hello.python_compiler)) < 0)
                return NULL;

        if (json_add(o, "hostname", json_string_lossy(p->hello.hostname)) < 0 ||
            json_add(o, "agent_version", json_string_lossy(p->hello.agent_version)) < 0 ||
            json_add(o, "agent_pid", json_integer(p->hello.pid)) < 0 ||
            json_add(o, "interval", p->hello.interval > 0 ? json_number_or_null(p->hello.interval) : json_null()) < 0 ||
            json_add(o, "connections", json_integer(p->connections)) < 0 ||
            json_add(o, "python", TAKE_PTR(python)) < 0)
                return NULL;

        /* Daemon-side sums over every sample received, one per generation the agent reports. */
        pauses = json_array();
        if (!pauses)
                return NULL;
        if (p->has_sample)
                n = p->latest.gc_generations < HW_GC_GENERATIONS_MAX ? p->latest.gc_generations : HW_GC_GENERATIONS_MAX;
        for (unsigned g = 0; g < n; g++)
                if (json_append(pauses, json_number_or_null(p->gc_pause_seconds_total[g])) < 0)
                        return NULL;

        root = json_object();
        if (!root ||
            json_add(root, "process", TAKE_PTR(o)) < 0 ||
            json_add(root, "latest_sample", p->has_sample ? sample_new(&p->latest) : json_null()) < 0 ||
            json_add(root, "gc_pause_seconds_total", TAKE_PTR(pauses)) < 0 ||
            json_add(root, "leak", api_process_leak_new(p)) < 0)
                return NULL;
        return TAKE_PTR(root);
}

typedef struct ProcessRef {
        const Process *p;
        size_t index;
} ProcessRef;

/* Live first, then exited; within each, oldest connection first (registry order breaks ties,
 * which makes the sort stable). */
static int process_ref_compare(const void *a, const void *b) {
        const ProcessRef *x = a, *y = b;

        if (x->p->state != y->p->state)
                return x->p->state == PROCESS_LIVE ? -1 : 1;
        if (x->p->connected_at != y->p->connected_at)
                return x->p->connected_at < y->p->connected_at ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

static bool filter_accepts(ProcessFilter f, const Process *p) {
        switch (f) {
        case PROCESS_FILTER_LIVE:
                return p->state == PROCESS_LIVE;
        case PROCESS_FILTER_EXITED:
                return p->state == PROCESS_EXITED;
        default:
                return true;
        }
}

static json_t *processes_new(Registry *reg, ProcessFilter filter) {
        _cleanup_json_ json_t *root = NULL, *list = NULL;
        _cleanup_free_ ProcessRef *refs = NULL;
        size_t n = 0, count = registry_count(reg);

        if (count > 0) {
                refs = calloc(count, sizeof *refs);
                if (!refs)
                        return NULL;
        }
        for (size_t i = 0; i < count; i++) {
                const Process *p = registry_at(reg, i);
                if (p && filter_accepts(filter, p))
                        refs[n++] = (ProcessRef) { .p = p, .index = i };
        }
        if (n > 1)
                qsort(refs, n, sizeof *refs, process_ref_compare);

        list = json_array();
        if (!list)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_append(list, process_summary_new(refs[i].p)) < 0)
                        return NULL;

        root = json_object();
        if (!root || json_add(root, "processes", TAKE_PTR(list)) < 0)
                return NULL;
        return TAKE_PTR(root);
}

static json_t *healthz_new(Registry *reg, double now) {
        _cleanup_json_ json_t *o = json_object();
        double uptime = daemon_stats.start_time > 0 ? now - daemon_stats.start_time : 0;

        if (!o ||
            json_add(o, "status", json_string("ok")) < 0 ||
            json_add(o, "version", json_string(PACKAGE_VERSION)) < 0 ||
            json_add(o, "uptime_seconds", json_real(isfinite(uptime) && uptime > 0 ? uptime : 0.0)) < 0 ||
            json_add(o, "agents_connected", json_integer((json_int_t) daemon_stats.agents_connected)) < 0 ||
            json_add(o, "processes_tracked", json_integer((json_int_t) registry_count(reg))) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* The points of one process's history in [q->from, q->to]: every stored point, or with a step
 * the mean of each bucket that holds at least one point, reported at the bucket's start (empty
 * buckets are left out, as are non-finite values). Returns 0 and the array, -E2BIG when there
 * would be more than SERIES_POINTS_MAX points, -ENOMEM. */
static int series_points_new(const History *h, const SeriesQuery *q, json_t **ret) {
        _cleanup_json_ json_t *points = NULL;
        size_t lo, hi, buckets = 0, current = SIZE_MAX, count = 0;
        double sum = 0;

        points = json_array();
        if (!points)
                return -ENOMEM;

        if (h) {
                lo = history_lower_bound(h, q->from);
                /* The first point after `to`, so `to` itself is included. */
                hi = history_lower_bound(h, nextafter(q->to, INFINITY));
        } else
                lo = hi = 0;

        if (q->step <= 0) {
                if (hi - lo > SERIES_POINTS_MAX)
                        return -E2BIG;
                for (size_t i = lo; i < hi; i++) {
                        const HistoryPoint *pt = history_get(h, i);
                        _cleanup_json_ json_t *pair = NULL;

                        if (!isfinite(pt->values[q->metric]))
                                continue;
                        pair = json_array();
                        if (!pair ||
                            json_append(pair, json_real(pt->time)) < 0 ||
                            json_append(pair, json_value(pt->values[q->metric])) < 0 ||
                            json_append(points, TAKE_PTR(pair)) < 0)
                                return -ENOMEM;
                }
                *ret = TAKE_PTR(points);
                return 0;
        }

        /* router.c capped the bucket count; points come sorted, so buckets are filled in order and
         * one running sum is enough. */
        buckets = series_bucket_count(q->from, q->to, q->step);
        for (size_t i = lo; i <= hi; i++) {
                const HistoryPoint *pt = i < hi ? history_get(h, i) : NULL;
                size_t b = SIZE_MAX;

                if (pt) {
                        double v = pt->values[q->metric];
                        if (!isfinite(v))
                                continue;
                        b = (size_t) floor((pt->time - q->from) / q->step);
                        if (b >= buckets) /* rounding at `to` */
                                b = buckets - 1;
                }
                if (b != current && count > 0) {
                        _cleanup_json_ json_t *pair = json_array();

                        if (!pair ||
                            json_append(pair, json_real(q->from + (double) current * q->step)) < 0 ||
                            json_append(pair, json_value(sum / (double) count)) < 0 ||
                            json_append(points, TAKE_PTR(pair)) < 0)
                                return -ENOMEM;
                        sum = 0;
                        count = 0;
                }
                if (!pt)
                        break;
                current = b;
                sum += pt->values[q->metric];
                count++;
        }
        *ret = TAKE_PTR(points);
        return 0;
}

typedef struct Reply {
        int status;
        char error[ROUTER_ERROR_MAX];
        json_t *json;
} Reply;

static const char *lookup(ApiQueryFunc query, void *userdata, const char *key) {
        return query ? query(userdata, key) : NULL;
}

static int handle_series(Registry *reg, const Route *route, ApiQueryFunc query, void *userdata, double now,
                         Reply *reply) {
        _cleanup_json_ json_t *root = NULL, *points = NULL;
        SeriesQuery q;
        Process *p;
        int r;

        p = registry_find(reg, route->id);
        if (!p) {
                reply->status = 404;
                snprintf(reply->error, sizeof reply->error, "unknown process id \"%s\"", route->id);
                return 0;
        }

        r = router_parse_series_query(lookup(query, userdata, "metric"), lookup(query, userdata, "from"),
                                      lookup(query, userdata, "to"), lookup(query, userdata, "step"), now, &q,
                                      reply->error, sizeof reply->error);
        if (r < 0) {
                reply->status = 400;
                return 0;
        }

        r = series_points_new(p->history, &q, &points);
        if (r == -E2BIG) {
                reply->status = 400;
                snprintf(reply->error, sizeof reply->error,
                         "too many points: more than %d stored points in [from, to]; pass step or narrow the range",
                         SERIES_POINTS_MAX);
                return 0;
        }
        if (r < 0)
                return r;

        root = json_object();
        if (!root ||
            json_add(root, "id", json_string(p->id)) < 0 ||
            json_add(root, "metric", json_string(history_metric_to_string(q.metric))) < 0 ||
            json_add(root, "from", json_real(q.from)) < 0 ||
            json_add(root, "to", json_real(q.to)) < 0 ||
            json_add(root, "step", q.step > 0 ? json_real(q.step) : json_null()) < 0 ||
            json_add(root, "points", TAKE_PTR(points)) < 0)
                return -ENOMEM;

        reply->status = 200;
        reply->json = TAKE_PTR(root);
        return 0;
}

static int handle_json(Registry *reg, const Route *route, ApiQueryFunc query, void *userdata, double now,
                       Reply *reply) {
        ProcessesQuery pq;
        Process *p;

        switch (route->kind) {
        case ROUTE_HEALTHZ:
                reply->json = healthz_new(reg, now);
                break;

        case ROUTE_PROCESSES:
                if (router_parse_processes_query(lookup(query, userdata, "state"), &pq, reply->error,
                                                 sizeof reply->error) < 0) {
                        reply->status = 400;
                        return 0;
                }
                reply->json = processes_new(reg, pq.filter);
                break;

        case ROUTE_PROCESS:
                p = registry_find(reg, route->id);
                if (!p) {
                        reply->status = 404;
                        snprintf(reply->error, sizeof reply->error, "unknown process id \"%s\"", route->id);
                        return 0;
                }
                reply->json = process_detail_new(p);
                break;

        case ROUTE_SERIES:
                return handle_series(reg, route, query, userdata, now, reply);

        case ROUTE_HEAP: {
                HeapQuery hq;

                p = registry_find(reg, route->id);
                if (!p) {
                        reply->status = 404;
                        snprintf(reply->error, sizeof reply->error, "unknown process id \"%s\"", route->id);
                        return 0;
                }
                if (router_parse_heap_query(lookup(query, userdata, "window"), lookup(query, userdata, "limit"), &hq,
                                            reply->error, sizeof reply->error) < 0) {
                        reply->status = 400;
                        return 0;
                }
                reply->json = process_heap_json(p->heap, p->id, now, hq.window, hq.limit);
                break;
        }

        case ROUTE_LEAKS: {
                LeakFilter lf;
                if (router_parse_leaks_query(lookup(query, userdata, "state"), &lf, reply->error,
                                             sizeof reply->error) < 0) {
                        reply->status = 400;
                        return 0;
                }
                reply->json = api_leaks_new(reg, lf);
                break;
        }

        case ROUTE_METHOD_NOT_ALLOWED:
                reply->status = 405;
                snprintf(reply->error, sizeof reply->error, "method not allowed: use GET or HEAD");
                return 0;

        default:
                reply->status = 404;
                snprintf(reply->error, sizeof reply->error, "not found");
                return 0;
        }

        if (!reply->json)
                return -ENOMEM;
        reply->status = 200;
        return 0;
}

int api_handle(Registry *reg, const Route *route, ApiQueryFunc query, void *userdata, double now,
               int *ret_status, char **ret_body, size_t *ret_size, const char **ret_content_type) {
        _cleanup_free_ char *body = NULL;
        Reply reply = {};
        size_t size;
        int r;

        if (!reg || !route || !ret_status || !ret_body || !ret_size || !ret_content_type)
                return -EINVAL;

        if (route->kind == ROUTE_METRICS) {
                r = metrics_render(reg, &daemon_stats, &body, &size);
                if (r < 0)
                        return r;
                *ret_status = 200;
                *ret_body = TAKE_PTR(body);
                *ret_size = size;
                *ret_content_type = METRICS_CONTENT_TYPE;
                return 0;
        }

        r = handle_json(reg, route, query, userdata, now, &reply);
        if (r >= 0) {
                if (reply.json)
                        r = dump(reply.json, &body, &size);
                else
                        r = api_error_body(reply.error, &body, &size);
        }
        json_decref(reply.json);
        if (r < 0)
                return r;

        *ret_status = reply.status;
        *ret_body = TAKE_PTR(body);
        *ret_size = size;
        *ret_content_type = API_CONTENT_TYPE_JSON;
        return 0;
}
