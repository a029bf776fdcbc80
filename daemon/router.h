/* SPDX-License-Identifier: MIT */
/*
 * HTTP routing and query validation for heapwatchd's API (docs/api.md). Pure functions, no I/O
 * and no allocation: they map (method, path) to a Route and turn the query parameters of the
 * routes that take some into validated structs. Anything a client got wrong is reported as
 * -EINVAL with a human readable message in a caller-supplied buffer (the body of the 400), so
 * http-server.c and api.c never see unvalidated text.
 *
 * Paths are matched exactly, with one trailing slash tolerated ("/healthz/" is "/healthz");
 * empty segments ("//") and anything else are 404. Method is checked before path: any method
 * other than GET and HEAD is 405 on every path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "history.h"
#include "registry.h"

/* The most points /series returns (the same cap Prometheus puts on a range query). */
#define SERIES_POINTS_MAX 11000
/* The default window of /series when `from` is not given: the hour before `to`. */
#define SERIES_DEFAULT_WINDOW 3600.0
/* Bounds of /series?step=S, in seconds. Below a millisecond a bucket cannot hold two samples of
 * any real agent; above a year it is a typo. */
#define SERIES_STEP_MIN 0.001
#define SERIES_STEP_MAX (366.0 * 24 * 3600)

/* Room for any message the router writes; callers may pass smaller buffers (truncated). */
#define ROUTER_ERROR_MAX 256

typedef enum RouteKind {
        ROUTE_NOT_FOUND,
        ROUTE_METHOD_NOT_ALLOWED,
        ROUTE_HEALTHZ,   /* GET /healthz */
        ROUTE_METRICS,   /* GET /metrics */
        ROUTE_PROCESSES, /* GET /api/v1/processes */
        ROUTE_PROCESS,   /* GET /api/v1/processes/{id} */
        ROUTE_SERIES,    /* GET /api/v1/processes/{id}/series */
        ROUTE_HEAP,      /* GET /api/v1/processes/{id}/heap */
        ROUTE_LEAKS,     /* GET /api/v1/leaks */
        ROUTE_CENSUS,    /* GET /api/v1/processes/{id}/census */
        ROUTE_CENSUS_REQUEST, /* POST /api/v1/processes/{id}/census: the only POST */
        _ROUTE_MAX,
} RouteKind;

typedef struct Route {
        RouteKind kind;
        bool head;               /* HEAD: same status and headers as GET, no body (MHD drops it) */
        bool allows_post;        /* ROUTE_METHOD_NOT_ALLOWED on the census path: Allow names POST too */
        char id[PROCESS_ID_MAX]; /* ROUTE_PROCESS / _SERIES / _HEAP / _CENSUS*: a well-formed id; "" otherwise */
} Route;

/* "healthz", "metrics", ... for logs; NULL when out of range. */
const char *route_kind_to_string(RouteKind k);

/* Match a request. `path` is the URL path without the query string, as libmicrohttpd hands it
 * over (already percent-decoded). Never fails for well-formed arguments: an unknown path or a
 * malformed id is ROUTE_NOT_FOUND, a method other than GET/HEAD is ROUTE_METHOD_NOT_ALLOWED,
 * except POST on /api/v1/processes/{id}/census (ROUTE_CENSUS_REQUEST).
 * Returns 0, or -EINVAL when method or path is NULL. */
int router_match(const char *method, const char *path, Route *ret);

/* Whether s is a well-formed process id: "<digits>-<digits>" or, for a record of an earlier
 * boot, "<digits>-<digits>-<digits>"; shorter than PROCESS_ID_MAX. */
bool router_process_id_is_valid(const char *s);

typedef enum ProcessFilter {
        PROCESS_FILTER_ALL,
        PROCESS_FILTER_LIVE,
        PROCESS_FILTER_EXITED,
} ProcessFilter;

/* Rows of one /api/v1/processes page: without ?limit= and at most. */
#define PROCESSES_LIMIT_DEFAULT 100
#define PROCESSES_LIMIT_MAX 1000
/* The largest ?offset=: beyond every record the daemon and its store can list. */
#define PROCESSES_OFFSET_MAX 100000000

typedef struct ProcessesQuery {
        ProcessFilter filter;
        size_t limit;  /* rows in this page, 1..PROCESSES_LIMIT_MAX */
        size_t offset; /* rows of the whole listing skipped before it */
} ProcessesQuery;

/* /api/v1/processes?state=live|exited|all&limit=N&offset=N; each NULL when absent (all, the
 * default limit, 0). limit and offset are plain decimal integers.
 * Returns 0, or -EINVAL with a message in err[err_size]. */
int router_parse_processes_query(const char *state, const char *limit, const char *offset, ProcessesQuery *ret,
                                 char *err, size_t err_size);

typedef enum LeakFilter {
        LEAK_FILTER_OPEN,
        LEAK_FILTER_CLOSED,
        LEAK_FILTER_ALL,
} LeakFilter;

/* /api/v1/leaks?state=open|closed|all; NULL means absent (open). Returns 0 or -EINVAL. */
int router_parse_leaks_query(const char *state, LeakFilter *ret, char *err, size_t err_size);

typedef struct SeriesQuery {
        HistoryMetric metric;
        double from; /* Unix seconds, inclusive */
        double to;   /* Unix seconds, inclusive; from <= to */
        double step; /* seconds; 0: no bucketing, every stored point */
} SeriesQuery;

/* /api/v1/processes/{id}/series?metric=NAME&from=T&to=T&step=S; each argument NULL when absent.
 * `now` (Unix seconds) is the default of `to`; `from` defaults to to - SERIES_DEFAULT_WINDOW.
 * Checks everything that can be checked without the data: metric required and known, finite
 * numbers, from <= to, step within bounds, and a range that SERIES_POINTS_MAX buckets of
 * SERIES_STEP_MAX can cover. (api.c raises a step that gives too many points.)
 * Returns 0, or -EINVAL with a message in err[err_size]. */
int router_parse_series_query(const char *metric, const char *from, const char *to, const char *step,
                              double now, SeriesQuery *ret, char *err, size_t err_size);

/* Bounds of /heap?window=S (seconds) and ?limit=N (sites). */
#define HEAP_QUERY_WINDOW_MIN 1.0
#define HEAP_QUERY_WINDOW_MAX (366.0 * 24 * 3600)

typedef struct HeapQuery {
        double window; /* seconds of growth to report */
        size_t limit;  /* sites to return */
} HeapQuery;

/* GET /api/v1/processes/{id}/census?from=T&to=T: with either, the stored censuses in [from, to]
 * come too ("history"). */
#define CENSUS_HISTORY_ROWS_MAX 64 /* rows of "history" in one reply */
typedef struct CensusQuery {
        bool history;
        double from, to; /* to defaults to now, from to 0 */
} CensusQuery;

/* NULL means absent. Returns 0, or -EINVAL with a message in err[err_size]. */
int router_parse_census_query(const char *from, const char *to, double now, CensusQuery *ret, char *err,
                              size_t err_size);

/* /api/v1/processes/{id}/heap?window=S&limit=N; NULL means absent (defaults: heap.h).
 * Returns 0, or -EINVAL with a message in err[err_size]. */
int router_parse_heap_query(const char *window, const char *limit, HeapQuery *ret, char *err, size_t err_size);

/* Number of step buckets in [from, to] (each [from + i*step, from + (i+1)*step), the last one
 * also holding `to`). Saturates at SIZE_MAX on absurd input. step must be > 0. */
size_t series_bucket_count(double from, double to, double step);
