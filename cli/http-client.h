/* SPDX-License-Identifier: MIT */
/*
 * The CLI's HTTP client: one bounded GET through libcurl (loaded on first use), returning the status and the body,
 * for talking to heapwatchd's JSON API. Bounded because the peer is on the network: connect
 * timeout 2 s, whole request 10 s, body at most 16 MiB, http and https only, no redirects.
 * Never prints; failures come back as -errno plus a human sentence in the caller's buffer.
 * With $HEAPWATCH_TOKEN_FILE set, every request carries "Authorization: Bearer <its first line>"
 * (heapwatchd's http-token-file, docs/security.md).
 */
#pragma once

#include <stddef.h>

#define HTTP_CONNECT_TIMEOUT_MS 2000L
#define HTTP_TIMEOUT_MS 10000L
#define HTTP_BODY_MAX ((size_t) 16 * 1024 * 1024)

typedef struct HttpResponse {
        long status;    /* HTTP status code */
        char *body;     /* owned; NUL-terminated, the NUL not counted in size */
        size_t size;
} HttpResponse;

/* Free the body and reset *r; safe on a zeroed or already-cleared response. */
void http_response_clear(HttpResponse *r);

/*
 * Join a base URL ("http://127.0.0.1:9847", "https://host/prefix/", or "host:9847", which
 * means http) with an absolute API path and an optional query (without '?'; NULL for none).
 * The base's own query and fragment are dropped. Returns 0 and a malloc'd URL in *ret,
 * -EINVAL for a malformed URL, -EPROTONOSUPPORT for a scheme other than http/https, -ENOMEM,
 * or -ELIBACC when libcurl cannot be loaded (http_client_load_error() says why).
 */
int http_build_url(const char *base, const char *path, const char *query, char **ret);

/* Why libcurl could not be loaded, after a call returned -ELIBACC. */
const char *http_client_load_error(void);

/*
 * GET url. body_max bounds the body (0 means HTTP_BODY_MAX). Returns 0 when a response
 * arrived, whatever its status, with *ret filled in (the caller clears it). On failure
 * returns -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -EFBIG (body too large), -EINVAL,
 * -EPROTONOSUPPORT, -ENOMEM, -EIO or -ELIBACC (libcurl cannot be loaded), writes a description into error[error_size] (may be
 * NULL) and leaves *ret untouched.
 */
int http_get(const char *url, size_t body_max, HttpResponse *ret, char *error, size_t error_size);
