/* SPDX-License-Identifier: MIT */
/*
 * Routing and query validation (see router.h). Everything here works on borrowed strings and
 * fixed-size structs: a request that is malformed in any way costs no allocation, and its error
 * message is written into the caller's buffer, ready to become the {"error": ...} body.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error-util.h"
#include "macro.h"
#include "parse-util.h"
#include "router.h"

#define API_PREFIX "/api/v1/processes"

static const char *const route_names[_ROUTE_MAX] = {
        [ROUTE_NOT_FOUND] = "not_found",
        [ROUTE_METHOD_NOT_ALLOWED] = "method_not_allowed",
        [ROUTE_HEALTHZ] = "healthz",
        [ROUTE_METRICS] = "metrics",
        [ROUTE_PROCESSES] = "processes",
        [ROUTE_PROCESS] = "process",
        [ROUTE_SERIES] = "series",
        [ROUTE_HEAP] = "heap",
        [ROUTE_LEAKS] = "leaks",
        [ROUTE_CENSUS] = "census",
        [ROUTE_CENSUS_REQUEST] = "census_request",
};

const char *route_kind_to_string(RouteKind k) {
        if ((unsigned) k >= _ROUTE_MAX)
                return NULL;
        return route_names[k];
}

/* Error messages quote what the client sent; keep at most ECHO_MAX bytes of it and replace
 * anything but printable ASCII, so the message stays one line of valid UTF-8 (jansson refuses
 * anything else) whatever bytes arrived percent-encoded. */
#define ECHO_MAX 64
static const char *echo(const char *s, char buf[static ECHO_MAX + 1]) {
        size_t i;

        for (i = 0; i < ECHO_MAX && s[i]; i++) {
                unsigned char c = (unsigned char) s[i];
                buf[i] = c >= 0x20 && c < 0x7f ? (char) c : '?';
        }
        buf[i] = '\0';
        return buf;
}

bool router_process_id_is_valid(const char *s) {
        size_t n, digits;

        if (!s)
                return false;
        n = strnlen(s, PROCESS_ID_MAX);
        if (n >= PROCESS_ID_MAX)
                return false;

        /* two or three runs of digits: <pid>-<start ticks>, or -<n> after it for a record of an
         * earlier boot (store.c, archive_other_boots()) */
        for (int part = 0;; part++) {
                digits = strspn(s, "0123456789");
                if (digits == 0)
                        return false;
                if (s[digits] == '\0')
                        return part >= 1;
                if (s[digits] != '-' || part == 2)
                        return false;
                s += digits + 1;
        }
}

/* Does the path segment s[0..n) equal the literal? */
static bool segment_is(const char *s, size_t n, const char *literal) {
        return strlen(literal) == n && memcmp(s, literal, n) == 0;
}

int router_match(const char *method, const char *path, Route *ret) {
        Route route = { .kind = ROUTE_NOT_FOUND };
        size_t len, rest_len, id_len;
        const char *rest, *slash;
        bool post = false, other = false;

        if (!method || !path || !ret)
                return -EINVAL;

        /* Method first: the API has no other methods on any path, so a POST to an unknown path is
         * as wrong as a POST to /metrics, and 405 with Allow tells the client what to fix. */
        if (strcmp(method, "GET") == 0)
                route.head = false;
        else if (strcmp(method, "HEAD") == 0)
                route.head = true;
        else if (strcmp(method, "POST") == 0)
                post = true; /* only to ask for a census; checked below */
        else
                other = true; /* 405, with the methods the path allows: matched below */

        /* One trailing slash is tolerated, so "/metrics/" from a hand-written scrape config works;
         * everything else must match exactly. */
        len = strlen(path);
        if (len > 1 && path[len - 1] == '/')
                len--;

        if (segment_is(path, len, "/healthz"))
                route.kind = ROUTE_HEALTHZ;
        else if (segment_is(path, len, "/metrics"))
                route.kind = ROUTE_METRICS;
        else if (segment_is(path, len, API_PREFIX))
                route.kind = ROUTE_PROCESSES;
        else if (segment_is(path, len, "/api/v1/leaks"))
                route.kind = ROUTE_LEAKS;
        else if (len > strlen(API_PREFIX) + 1 && memcmp(path, API_PREFIX "/", strlen(API_PREFIX) + 1) == 0) {
                /* "/api/v1/processes/" {id} [ "/series" ] */
                rest = path + strlen(API_PREFIX) + 1;
                rest_len = len - strlen(API_PREFIX) - 1;
                slash = memchr(rest, '/', rest_len);
                id_len = slash ? (size_t) (slash - rest) : rest_len;

                if (id_len > 0 && id_len < PROCESS_ID_MAX) {
                        char id[PROCESS_ID_MAX];

                        memcpy(id, rest, id_len);
                        id[id_len] = '\0';
                        if (router_process_id_is_valid(id)) {
                                if (!slash)
                                        route.kind = ROUTE_PROCESS;
                                else if (segment_is(slash, rest_len - id_len, "/series"))
                                        route.kind = ROUTE_SERIES;
                                else if (segment_is(slash, rest_len - id_len, "/heap"))
                                        route.kind = ROUTE_HEAP;
                                else if (segment_is(slash, rest_len - id_len, "/census"))
                                        route.kind = post ? ROUTE_CENSUS_REQUEST : ROUTE_CENSUS;
                                if (route.kind != ROUTE_NOT_FOUND)
                                        memcpy(route.id, id, id_len + 1);
                        }
                }
        }

        if (other || (post && route.kind != ROUTE_CENSUS_REQUEST)) {
                bool census = route.kind == ROUTE_CENSUS || route.kind == ROUTE_CENSUS_REQUEST;

                route = (Route) { .kind = ROUTE_METHOD_NOT_ALLOWED, .allows_post = census };
        }
        *ret = route;
        return 0;
}

/* A `state` parameter: one of names[] (its index into *ret), absent means the default. */
static int parse_state(const char *state, const char *const *names, size_t n, int dflt, const char *expected,
                       int *ret, char *err, size_t err_size) {
        char buf[ECHO_MAX + 1];

        if (!state) {
                *ret = dflt;
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                if (strcmp(state, names[i]) == 0) {
                        *ret = (int) i;
                        return 0;
                }
        return set_error(err, err_size, "invalid state \"%s\": expected %s", echo(state, buf), expected);
}

/* A count parameter: plain decimal within [min, max]; absent means dflt. */
static int parse_count_param(const char *name, const char *s, uint64_t min, uint64_t max, size_t dflt, size_t *ret,
                             char *err, size_t err_size) {
        char buf[ECHO_MAX + 1];
        uint64_t v;

        if (!s) {
                *ret = dflt;
                return 0;
        }
        if (parse_uint64(s, &v) < 0 || v < min || v > max)
                return set_error(err, err_size, "invalid %s \"%s\": expected an integer between %" PRIu64 " and %" PRIu64,
                                 name, echo(s, buf), min, max);
        *ret = (size_t) v;
        return 0;
}

int router_parse_processes_query(const char *state, const char *limit, const char *offset, ProcessesQuery *ret,
                                 char *err, size_t err_size) {
        static const char *const names[] = {
                [PROCESS_FILTER_ALL] = "all", [PROCESS_FILTER_LIVE] = "live", [PROCESS_FILTER_EXITED] = "exited"
        };
        ProcessesQuery q = {};
        int f = 0, r;

        if (!ret)
                return -EINVAL;
        r = parse_state(state, names, ELEMENTSOF(names), PROCESS_FILTER_ALL, "live, exited or all", &f, err, err_size);
        if (r < 0)
                return r;
        q.filter = (ProcessFilter) f;
        r = parse_count_param("limit", limit, 1, PROCESSES_LIMIT_MAX, PROCESSES_LIMIT_DEFAULT, &q.limit, err, err_size);
        if (r < 0)
                return r;
        r = parse_count_param("offset", offset, 0, PROCESSES_OFFSET_MAX, 0, &q.offset, err, err_size);
        if (r < 0)
                return r;
        *ret = q;
        return 0;
}

int router_parse_leaks_query(const char *state, LeakFilter *ret, char *err, size_t err_size) {
        static const char *const names[] = {
                [LEAK_FILTER_OPEN] = "open", [LEAK_FILTER_CLOSED] = "closed", [LEAK_FILTER_ALL] = "all"
        };
        int f = 0, r;

        if (!ret)
                return -EINVAL;
        r = parse_state(state, names, ELEMENTSOF(names), LEAK_FILTER_OPEN, "open, closed or all", &f, err, err_size);
        if (r < 0)
                return r;
        *ret = (LeakFilter) f;
        return 0;
}

size_t series_bucket_count(double from, double to, double step) {
        double n;

        if (!(step > 0) || !(to >= from))
                return 0;
        n = floor((to - from) / step);
        /* Compare as doubles before converting: a NaN or a value beyond SIZE_MAX must not reach
         * the cast (undefined behaviour). */
        if (!(n < (double) (SIZE_MAX - 1)))
                return SIZE_MAX;
        return (size_t) n + 1;
}

/* Parse a time parameter: any finite number of Unix seconds. */
static int parse_time_param(const char *name, const char *value, double *ret, char *err, size_t err_size) {
        char buf[ECHO_MAX + 1];
        double v;
        int r;

        r = parse_double(value, &v);
        if (r == -ERANGE)
                return set_error(err, err_size, "invalid %s \"%s\": must be a finite number of Unix seconds",
                                 name, echo(value, buf));
        if (r < 0)
                return set_error(err, err_size, "invalid %s \"%s\": expected Unix seconds, e.g. 1764061234.5",
                                 name, echo(value, buf));
        *ret = v;
        return 0;
}

int router_parse_series_query(const char *metric, const char *from, const char *to, const char *step,
                              double now, SeriesQuery *ret, char *err, size_t err_size) {
        char buf[ECHO_MAX + 1];
        SeriesQuery q = {};
        size_t buckets;
        int m, r;

        if (!ret)
                return -EINVAL;

        if (!metric || !*metric)
                return set_error(err, err_size, "missing parameter metric (e.g. metric=rss_bytes)");
        m = history_metric_from_string(metric);
        if (m < 0)
                return set_error(err, err_size, "unknown metric \"%s\"", echo(metric, buf));
        q.metric = (HistoryMetric) m;

        if (to) {
                r = parse_time_param("to", to, &q.to, err, err_size);
                if (r < 0)
                        return r;
        } else
                q.to = now;

        if (from) {
                r = parse_time_param("from", from, &q.from, err, err_size);
                if (r < 0)
                        return r;
        } else
                q.from = q.to - SERIES_DEFAULT_WINDOW;

        if (!(q.from <= q.to))
                return set_error(err, err_size, "from (%.3f) is after to (%.3f)", q.from, q.to);

        if (step) {
                r = parse_seconds(step, SERIES_STEP_MIN, SERIES_STEP_MAX, &q.step);
                if (r == -ERANGE)
                        return set_error(err, err_size, "invalid step \"%s\": must be between %g and %.0f seconds",
                                         echo(step, buf), SERIES_STEP_MIN, SERIES_STEP_MAX);
                if (r < 0)
                        return set_error(err, err_size, "invalid step \"%s\": expected seconds, e.g. 60",
                                         echo(step, buf));
        }
        /* A step (or a range) that would give more than SERIES_POINTS_MAX points is not refused:
         * api.c raises the step and says so. Only a range no step can cover is. */
        buckets = series_bucket_count(q.from, q.to, SERIES_STEP_MAX);
        if (buckets > SERIES_POINTS_MAX)
                return set_error(err, err_size, "range too wide: more than %d points even at step %.0f",
                                 SERIES_POINTS_MAX, SERIES_STEP_MAX);

        *ret = q;
        return 0;
}

int router_parse_census_query(const char *from, const char *to, double now, CensusQuery *ret, char *err,
                              size_t err_size) {
        CensusQuery q = { .history = from || to, .from = 0, .to = now };
        int r;

        if (!ret)
                return -EINVAL;
        if (to && (r = parse_time_param("to", to, &q.to, err, err_size)) < 0)
                return r;
        if (from && (r = parse_time_param("from", from, &q.from, err, err_size)) < 0)
                return r;
        if (!(q.from <= q.to))
                return set_error(err, err_size, "from (%.3f) is after to (%.3f)", q.from, q.to);
        *ret = q;
        return 0;
}

int router_parse_heap_query(const char *window, const char *limit, HeapQuery *ret, char *err, size_t err_size) {
        char buf[ECHO_MAX + 1];
        HeapQuery q = { .window = HEAP_WINDOW_DEFAULT, .limit = HEAP_LIMIT_DEFAULT };
        int r;

        if (!ret)
                return -EINVAL;
        if (window) {
                r = parse_seconds(window, HEAP_QUERY_WINDOW_MIN, HEAP_QUERY_WINDOW_MAX, &q.window);
                if (r < 0)
                        return set_error(err, err_size, "invalid window \"%s\": expected seconds between %.0f and %.0f",
                                         echo(window, buf), HEAP_QUERY_WINDOW_MIN, HEAP_QUERY_WINDOW_MAX);
        }
        if (limit) {
                char *end;
                long v;

                errno = 0;
                v = strtol(limit, &end, 10);
                if (end == limit || *end || errno == ERANGE || v < 1 || v > HEAP_LIMIT_MAX)
                        return set_error(err, err_size, "invalid limit \"%s\": expected an integer between 1 and %d",
                                         echo(limit, buf), HEAP_LIMIT_MAX);
                q.limit = (size_t) v;
        }
        *ret = q;
        return 0;
}
