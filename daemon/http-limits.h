/* SPDX-License-Identifier: MIT */
/*
 * Connection-level limits of the HTTP listener that libmicrohttpd 0.9.75 either lacks or does
 * not report (docs/security.md): the total and per-address connection limits are enforced in
 * MHD's accept policy callback so each refusal is counted, and when every slot is taken a new
 * connection evicts the one that has waited longest for a request head; a request head (URL and headers)
 * must arrive whole within http-timeout of the connection or of the previous response, which
 * MHD's idle timeout alone cannot guarantee (a slowloris client sending a byte every few seconds
 * resets it forever): a sweep timer shuts such connections down; and MHD's own 414/431
 * answers (the per-connection memory limit) are counted from its log messages; and the bytes of
 * responses queued and not yet sent are held to a budget across all connections; a query of more
 * than HTTP_QUERY_PARAMETERS_MAX parameters is cut before MHD parses it and answered 400.
 * Single-threaded (the event loop runs MHD in external epoll mode).
 */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include <microhttpd.h>

#include "peer-limits.h"

typedef struct HttpLimits HttpLimits;

/* Returns NULL on ENOMEM or when the sweep timer cannot be added. */
HttpLimits *http_limits_new(sd_event *e, const LimitsConfig *limits);
HttpLimits *http_limits_free(HttpLimits *h);

/* MHD_OPTION_APPLY_POLICY (cls: the HttpLimits). */
enum MHD_Result http_limits_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION (cls: the HttpLimits). */
void http_limits_notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                                   enum MHD_ConnectionNotificationCode code);
/* The access handler saw a complete request head on c / MHD finished a request on c. */
void http_limits_request_started(struct MHD_Connection *c);
void http_limits_request_completed(struct MHD_Connection *c);
/* A response of size bytes is about to be queued on c: counts it against http-response-budget
 * until MHD has sent it (http_limits_request_completed()) or the connection closes. Returns 0,
 * or -ENOBUFS (counted) when it is larger than a small answer and would take the bytes held by
 * unsent responses over the budget; the caller then answers 503 instead. */
int http_limits_response_reserve(struct MHD_Connection *c, size_t size);

/* Query parameters a request may carry; no endpoint takes more than six. */
#define HTTP_QUERY_PARAMETERS_MAX 64

/* MHD_OPTION_URI_LOG_CALLBACK: the request line's URI, before MHD parses its query. Returns
 * http_limits_too_many_parameters (the request's first *con_cls, for the access handler to
 * answer 400) when the query has more than HTTP_QUERY_PARAMETERS_MAX parameters, after cutting
 * the query short so that MHD parses none of them (see the function); NULL otherwise. */
void *http_limits_uri_callback(void *cls, const char *uri, struct MHD_Connection *c);
extern const char http_limits_too_many_parameters[];

/* A formatted MHD log line: counts the per-connection memory limit (414/431). */
void http_limits_note_mhd_message(const char *message);

/* Connections open and counted toward the limits (not those we shut down and MHD has yet to
 * close). */
size_t http_limits_connections(const HttpLimits *h);

/* Connections evicted and not yet closed by MHD at most: each keeps its descriptor until MHD's
 * next run, and MHD accepts at most 10 connections a run. */
#define HTTP_LIMITS_EVICTED_MAX 16

/* MHD's own connection limit, and so the most descriptors HTTP clients hold: http-max-connections
 * plus HTTP_LIMITS_EVICTED_MAX plus one, because a connection evicted for a new one (when every
 * slot is taken, the new one replaces the connection that waited longest for a request head)
 * keeps its descriptor until MHD closes it at its next run. MHD checks its limit before our
 * policy, which refuses first. */
size_t http_limits_mhd_connections(const LimitsConfig *limits);
