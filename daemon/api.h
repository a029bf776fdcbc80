/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API's responses (docs/api.md), built from the Registry without any socket: given a
 * Route (router.h) and a way to look up query parameters, api_handle() produces the status code,
 * the body and its content type. http-server.c is only transport around it, and the unit tests
 * call it directly. JSON is built with jansson; /metrics is delegated to metrics.c.
 */
#pragma once

#include <stddef.h>

#include "registry.h"
#include "router.h"

#define API_CONTENT_TYPE_JSON "application/json"

/* Look up query parameter `key` of the current request; NULL when absent (or given without a
 * value). The returned string is borrowed for the duration of api_handle(). */
typedef const char *(*ApiQueryFunc)(void *userdata, const char *key);

/* Answer one request. query may be NULL (no parameters). `now` is the current Unix time: the
 * default end of /series and the reference of /healthz's uptime.
 * On success returns 0 and writes the HTTP status (200, 400, 404, 405), the body (malloc'd,
 * ownership passes to the caller, not NUL-terminated for /metrics' sake: use *ret_size) and its
 * content type (a static string). Returns -ENOMEM when the response could not be built; nothing
 * is written then and the caller should send a static 500. */
int api_handle(Registry *reg, const Route *route, ApiQueryFunc query, void *userdata, double now,
               int *ret_status, char **ret_body, size_t *ret_size, const char **ret_content_type);

/* The JSON error body {"error": message} (plus a newline), for errors decided outside
 * api_handle() (413, 500...). A message that is not valid UTF-8 is replaced by a generic one.
 * Returns 0 with a malloc'd body, or -ENOMEM. */
int api_error_body(const char *message, char **ret_body, size_t *ret_size);
