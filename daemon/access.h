/* SPDX-License-Identifier: MIT */
/*
 * Who may use heapwatchd's HTTP API, and how often (docs/security.md "Access"). One policy per
 * HTTP server, installed for the route handlers to reach:
 *
 *  - With a bearer token (http-token-file), every endpoint but /healthz requires
 *    "Authorization: Bearer <token>"; the comparison takes the same time whatever the bytes.
 *    Refusals are 401 with a JSON error and "WWW-Authenticate: Bearer realm="heapwatch"".
 *  - Every request is counted against a token bucket per client address (IPv6 per /64), 429
 *    with Retry-After beyond it (http-requests-per-second).
 *  - Endpoints that make an agent do work inside its target process (a census, a profile on
 *    demand) need the token, or a loopback client when no token is configured, and are
 *    rate-limited per process and per client address. A route handler calls
 *
 *        if (http_access_check_agent_work(connection, route->id, &status, &message) != 0)
 *                return error_response(status, message);   // 401/403/429, nothing done
 *
 *    first thing, with the MHD connection api_handle() got as its query userdata; it counts the
 *    hit (heapwatch_daemon_limit_hits_total{limit="agent_work_rate"}) and needs no other state.
 *
 * The decisions are pure functions of (policy, peer address, Authorization header, time) so the
 * unit tests drive them without sockets; the MHD glue is a thin layer on top.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "peer-limits.h"
#include "router.h"

struct MHD_Connection;

#define ACCESS_TOKEN_MIN 16   /* bytes; shorter tokens are refused at start */
#define ACCESS_TOKEN_MAX 4096 /* bytes */
#define ACCESS_ADDRESS_KEY_MAX 64
#define ACCESS_CLIENTS_MAX 1024 /* client addresses with their own request bucket */

/* A group name or decimal gid; "" means none ((gid_t) -1). Returns 0 or -ENOENT/-errno. */
int access_resolve_group(const char *name, gid_t *ret);

/* Read a token file: the first line, trailing whitespace removed; at least ACCESS_TOKEN_MIN and
 * at most ACCESS_TOKEN_MAX bytes of visible ASCII. Returns 0 and a malloc'd token, or -errno
 * with a message in error[]. *ret_loose says the file is readable by group or others. */
int access_token_load(const char *path, char **ret_token, bool *ret_loose, char *error, size_t size);

/* Constant-time comparison: the time depends on the length of `expected` only. */
bool access_token_equal(const char *expected, const char *given, size_t given_len);

/* The token of an "Authorization: Bearer <token>" header value (scheme case-insensitive).
 * Returns 0 with a pointer into header, or -EINVAL. */
int access_parse_bearer(const char *header, const char **ret_token, size_t *ret_len);

bool access_sockaddr_is_loopback(const struct sockaddr *sa);
/* The rate-limit key of a client: its IPv4 address, or its IPv6 /64 prefix (one host owns a
 * whole /64 and could otherwise cycle through fresh buckets). "unknown" without an address. */
void access_address_key(const struct sockaddr *sa, char buf[ACCESS_ADDRESS_KEY_MAX]);

typedef enum AccessDecision {
        ACCESS_ALLOW = 0,
        ACCESS_UNAUTHORIZED = 401,
        ACCESS_FORBIDDEN = 403,
        ACCESS_RATE_LIMITED = 429,
} AccessDecision;

typedef struct HttpAccess HttpAccess;

/* token: NULL for none (copied). Returns NULL on ENOMEM. */
HttpAccess *http_access_new(const char *token, const LimitsConfig *limits);
HttpAccess *http_access_free(HttpAccess *a);
bool http_access_has_token(const HttpAccess *a);

/* Any request: token (unless /healthz), then the per-client request rate. */
AccessDecision http_access_decide_request(HttpAccess *a, RouteKind kind, const struct sockaddr *peer,
                                          const char *authorization, uint64_t now_usec, double *ret_retry_after);
/* A request that makes an agent work: token or loopback, then per-client and per-process rates. */
AccessDecision http_access_decide_agent_work(HttpAccess *a, const struct sockaddr *peer, const char *authorization,
                                             const char *process_id, uint64_t now_usec, double *ret_retry_after);
/* A short explanation of a refusal, for the JSON error body. */
const char *access_decision_message(AccessDecision d, bool work);

/* The policy the running HTTP server uses (http-server.c installs it; NULL uninstalls). */
void http_access_install(HttpAccess *a);
/* The installed policy, or NULL. */
HttpAccess *http_access_installed(void);
/* Replace the token (NULL: none from now on; copied). For a reload: rotating the token file
 * needs no restart. Returns 0 or -ENOMEM (the old token stays). */
int http_access_set_token(HttpAccess *a, const char *token);

/* For route handlers: decide about a request that would make process_id's agent work, from
 * the connection's peer address and Authorization header. Returns 0 when allowed; otherwise
 * the HTTP status (401/403/429) with *ret_status and a static *ret_message set and the limit
 * hit counted. Without an installed policy (unit tests of api.c) everything is allowed. */
int http_access_check_agent_work(struct MHD_Connection *c, const char *process_id, int *ret_status,
                                 const char **ret_message);

/* For http-server.c: check any request on its first call. Returns true when the request was
 * refused and a response (401 + WWW-Authenticate, or 429 + Retry-After) queued; *ret_result is
 * then what the access handler returns. */
bool http_access_filter(struct MHD_Connection *c, RouteKind kind, int *ret_result);
