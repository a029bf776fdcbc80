/* SPDX-License-Identifier: MIT */
/*
 * `heapwatch status`: ask heapwatchd for the processes it tracks (GET /api/v1/processes) and
 * show them as a table, or as the daemon's raw JSON with --json. The JSON comes from the
 * network and is read defensively: a missing member, a null or a value of the wrong type
 * shows as "-", and every string is made safe for the terminal before it is printed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define STATUS_DEFAULT_URL "http://127.0.0.1:9847"

/* The daemon's base URL for a subcommand: `flag` (--url) when given, else $HEAPWATCH_URL when
 * set and not empty, else STATUS_DEFAULT_URL. *ret_origin is text to append to messages about
 * it (" (from HEAPWATCH_URL)" or ""), so a wrong URL in the environment is easy to spot. */
const char *status_daemon_url(const char *flag, const char **ret_origin);

struct HttpResponse;
/* GET `url` from the daemon at `base` (named in messages). Returns 0 with a 2xx answer in
 * *resp, or EXIT_FAIL after telling the operator why (unreachable, or the daemon's own error
 * message with the HTTP status). */
int status_daemon_get(const char *base, const char *url, struct HttpResponse *resp);

/* Renders a daemon answer's body into a malloc'd text; -EBADMSG when it is not what was asked. */
typedef int (*status_render_fn)(const char *body, size_t size, void *userdata, char **ret);

/* GET path?query (query may be NULL) from the daemon (`flag`, else $HEAPWATCH_URL, else the
 * default) and print the answer to stdout: as it came with `json`, else through render. `noun`
 * names the expected answer in messages ("process list"). Returns the exit status, having told
 * the operator what went wrong. */
int status_fetch_and_print(const char *flag, const char *path, const char *query, bool json, status_render_fn render,
                           void *userdata, const char *noun);

typedef enum StatusFilter {
        STATUS_FILTER_LIVE,     /* the default: what is running now */
        STATUS_FILTER_ALL,
        STATUS_FILTER_EXITED,
} StatusFilter;

typedef struct StatusArgs {
        bool help;
        const char *url;        /* NULL: $HEAPWATCH_URL, else STATUS_DEFAULT_URL */
        StatusFilter filter;
        bool json;
} StatusArgs;

/*
 * Parse `status [--url URL] [--all|--exited] [--json]`; argv[0] is "status". Pure.
 * Returns 0 and fills *ret, or -EINVAL with a one-line reason in error[error_size].
 */
int status_parse_args(int argc, char *argv[], StatusArgs *ret, char *error, size_t error_size);

/* The value of the API's ?state= parameter for a filter. */
const char *status_filter_to_string(StatusFilter f);

/*
 * Render a /api/v1/processes response body as the status table. `now` (Unix seconds) is the
 * reference for AGE and LAST; max_width > 0 shrinks the COMMAND column to fit. With no
 * processes the text is one sentence saying so. Returns 0 and a malloc'd text in *ret,
 * -EBADMSG when the body is not JSON or has no "processes" array, -ENOMEM.
 */
int status_render(const char *body, size_t size, StatusFilter filter, double now, size_t max_width, char **ret);

/* Usage text for `heapwatch status --help`. */
void status_help(void);

/* The subcommand; returns the exit status. */
int verb_status(int argc, char *argv[]);
