/* SPDX-License-Identifier: MIT */
/*
 * heapwatchd's HTTP listener: libmicrohttpd in external epoll mode, driven by the daemon's
 * sd-event loop the way systemd-journal-remote does it (MHD's epoll fd is an sd-event I/O
 * source, and a timer re-armed from MHD_get_timeout() after every MHD_run() serves MHD's
 * timeouts), so requests are answered on the event loop thread and read the Registry without
 * locks. Only transport lives here: routing is router.c, responses api.c.
 *
 * Limits on what a client controls: 64 connections, 32 per client address, 10 s for a request
 * head (slowloris), 32 KiB of memory per connection (which also bounds the URL and headers: MHD
 * answers 414/431 itself), no request bodies (413), GET and HEAD only (405 with Allow). Those
 * are the defaults of the LimitsConfig given to http_server_new_secured() (peer-limits.h,
 * configurable, counted by http-limits.c); the HTTP_* constants below are kept for reference.
 * A bearer token and request rates are access.c's.
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

#include "peer-limits.h"
#include "registry.h"


typedef struct HttpServer HttpServer;

/* Serve the API on event loop e from registry reg (both borrowed; they must outlive the server).
 * With listen_fd >= 0 (a listening TCP socket, e.g. from socket activation) that socket is
 * served and addr/port are ignored; otherwise a socket is bound to addr (an IPv4 or IPv6
 * literal, brackets allowed; IPv6 sockets accept IPv4 too) and port (0: any free port, see
 * http_server_get_port()). On success the server owns listen_fd and closes it in
 * http_server_free(); on failure the caller still owns it.
 * Returns 0 and *ret, or a negative errno (-EINVAL bad address or fd, -EADDRINUSE..., -ENOMEM);
 * logs the reason. */
int http_server_new(sd_event *e, const char *addr, uint16_t port, int listen_fd, Registry *reg,
                    HttpServer **ret);

/* The same with the configurable limits (peer-limits.h; http_server_new() uses the defaults) and a
 * bearer token (NULL: none; copied) that every endpoint but /healthz then requires (access.h).
 * Warns when the socket is not on loopback and no token is given. */
int http_server_new_secured(sd_event *e, const char *addr, uint16_t port, int listen_fd, Registry *reg,
                            const LimitsConfig *limits, const char *token, HttpServer **ret);

/* Stop listening, close every connection, release the event sources. Accepts NULL; returns NULL. */
HttpServer *http_server_free(HttpServer *s);

/* The local port the server listens on. Returns 0, or -errno. */
int http_server_get_port(HttpServer *s, uint16_t *ret_port);
