/* SPDX-License-Identifier: MIT */
/*
 * The HTTP listener (see http-server.h): libmicrohttpd in external epoll mode on heapwatchd's
 * sd-event loop. The shape is systemd-journal-remote's: MHD's epoll fd is an sd-event I/O source
 * whose callback calls MHD_run(), and a CLOCK_MONOTONIC timer, re-armed from MHD_get_timeout()
 * after every MHD_run(), makes MHD run when a connection times out or when MHD still has work
 * queued that no fd will announce (MHD uses edge-triggered epoll internally).
 *
 * The API has no request bodies: a request announcing one (Content-Length, Transfer-Encoding)
 * is refused with 413 from the first call of the access handler, before MHD reads it, and so is
 * a method other than GET/HEAD (405); everything else is answered from MHD's final call for the
 * request, which keeps HTTP/1.1 connections alive.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/epoll.h>

#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include "access.h"
#include "api.h"
#include "http-limits.h"
#include "http-server.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "router.h"
#include "stats.h"
#include "time-util.h"

struct HttpServer {
        sd_event *event;
        Registry *registry;
        struct MHD_Daemon *mhd;
        sd_event_source *io_source;
        sd_event_source *timer_source;
        HttpLimits *limits;  /* connection counts, request-head deadline (http-limits.c) */
        HttpAccess *access;  /* token and rates (access.c); installed while we run */
        bool accept_failed;  /* MHD said accept() failed during this MHD_run() */
        bool paused;         /* io_source off after a failed accept(), until the timer */
        /* Out of descriptors with connections open, MHD stops accepting ("at limit") and takes
         * its listening socket out of its epoll set until one of them closes; it puts it back
         * only at the start of the MHD_run() after that. With nothing left to wake us (no
         * connection, so no MHD timeout; the socket not in the set), HTTP stayed dead for good
         * (found by review). From a failed accept() until two runs in a row end with no
         * connection open, the timer runs MHD at least every ACCEPT_BACK_OFF_USEC. */
        bool accept_episode;
        unsigned episode_quiet_runs;
        /* HTTP's share of the loop (see http_server_account()): the time MHD_run() took since
         * HTTP last got its high priority back, whether it is demoted now, and the timer that
         * gives the priority back. */
        uint64_t burst_usec;
        uint64_t burst_window_start;
        bool demoted;
        sd_event_source *restore_source;
};

/* HTTP work allowed at high priority within HTTP_BURST_WINDOW_USEC; then as long again at the
 * agents' priority. */
#define HTTP_BURST_USEC (10 * USEC_PER_MSEC)
#define HTTP_BURST_WINDOW_USEC (100 * USEC_PER_MSEC)

/* How long MHD is not run after its accept() failed (out of descriptors). */
#define ACCEPT_BACK_OFF_USEC (250 * USEC_PER_MSEC)

DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_free);

/* Seconds a client refused for the response budget is told to wait. */
#define RESPONSE_BUSY_RETRY_AFTER "2"

static const char oom_body[] = "{\"error\":\"out of memory\"}\n";

static inline void MHD_destroy_responsep(struct MHD_Response **r) {
        if (*r)
                MHD_destroy_response(*r);
}

/* MHD's own messages are mostly about peers (resets, malformed requests, the connection limit):
 * worth seeing, never worth flooding the journal. */
_printf_(2, 0) static void mhd_logger(void *cls, const char *format, va_list ap) {
        static RateLimit rl = RATELIMIT_INIT(10 * USEC_PER_SEC, 20);
        HttpServer *s = cls;
        char buf[512];
        size_t n;

        (void) vsnprintf(buf, sizeof buf, format, ap);
        /* MHD tells of a failed accept() (EAGAIN aside) only here; see http_server_dispatch() */
        if (s && strncmp(buf, "Error accepting connection", strlen("Error accepting connection")) == 0)
                s->accept_failed = true;
        /* Counted before the log rate limit: the 414/431 answers of the memory limit. */
        http_limits_note_mhd_message(buf);
        if (!ratelimit_below(&rl))
                return;
        n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
        log_info("libmicrohttpd: %s", buf);
}

/* Queue a response, with one more header when header is not NULL; takes ownership of body
 * (malloc'd) in all cases. */
static enum MHD_Result respond(struct MHD_Connection *c, int status, char *body, size_t size,
                               const char *content_type, const char *header, const char *value) {
        _cleanup_(MHD_destroy_responsep) struct MHD_Response *r = NULL;

        r = MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(body);
                return MHD_NO;
        }
        if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_NO)
                return MHD_NO;
        if (header && MHD_add_response_header(r, header, value) == MHD_NO)
                return MHD_NO;
        return MHD_queue_response(c, (unsigned) status, r);
}

static enum MHD_Result respond_oom(struct MHD_Connection *c) {
        _cleanup_(MHD_destroy_responsep) struct MHD_Response *r = NULL;

        r = MHD_create_response_from_buffer(sizeof oom_body - 1, (void *) oom_body, MHD_RESPMEM_PERSISTENT);
        if (!r)
                return MHD_NO;
        if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, API_CONTENT_TYPE_JSON) == MHD_NO)
                return MHD_NO;
        return MHD_queue_response(c, MHD_HTTP_INTERNAL_SERVER_ERROR, r);
}

static enum MHD_Result respond_error_with(struct MHD_Connection *c, int status, const char *message,
                                         const char *header, const char *value) {
        char *body;
        size_t size;

        if (api_error_body(message, &body, &size) < 0)
                return respond_oom(c);
        return respond(c, status, body, size, API_CONTENT_TYPE_JSON, header, value);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *message) {
        return respond_error_with(c, status, message, NULL, NULL);
}

/* Does the request announce a body? The API takes none; Content-Length: 0 is no body. */
static bool request_has_body(struct MHD_Connection *c) {
        const char *v;
        uint64_t n;

        if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
                return true;
        v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!v)
                return false;
        /* An unparsable length is treated as a body: refusing is the safe side. */
        return parse_uint64(v, &n) < 0 || n > 0;
}

static const char *query_lookup(void *userdata, const char *key) {
        return MHD_lookup_connection_value(userdata, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result request_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                       const char *version, const char *upload_data, size_t *upload_data_size,
                                       void **con_cls) {
        static int seen; /* marker: the headers of this request were checked */
        HttpServer *s = cls;
        const char *content_type;
        char *body;
        size_t size;
        Route route;
        int status, r;

        if (router_match(method, url, &route) < 0)
                return respond_error(c, MHD_HTTP_BAD_REQUEST, "malformed request");

        if (!*con_cls || *con_cls == http_limits_too_many_parameters) {
                bool too_many_parameters = *con_cls == http_limits_too_many_parameters;

                /* First call, headers only. Refuse what must not be read any further right away (MHD
                 * then skips the body and closes the connection); otherwise wait for MHD's final
                 * call, because a response queued before the (empty) body is complete makes MHD
                 * close the connection, and scrapers should keep theirs alive. */
                *con_cls = &seen;
                daemon_stats.http_requests_total++;
                http_limits_request_started(c);

                /* Token and request rate (access.c), before anything else is revealed. */
                {
                        int result;
                        if (http_access_filter(c, route.kind, &result))
                                return (enum MHD_Result) result;
                }
                /* The URI callback cut off a query too long to parse (http-limits.c). */
                if (too_many_parameters) {
                        char message[64];

                        snprintf(message, sizeof message, "too many query parameters (at most %d)",
                                 HTTP_QUERY_PARAMETERS_MAX);
                        return respond_error(c, MHD_HTTP_BAD_REQUEST, message);
                }

                /* 405 before 413: a POST with a body is wrong because of its method. */
                if (route.kind == ROUTE_METHOD_NOT_ALLOWED)
                        goto answer;
                if (request_has_body(c))
                        return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request bodies are not accepted");
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                /* Body bytes that no header announced: not HTTP we speak; drop the connection. */
                *upload_data_size = 0;
                return MHD_NO;
        }

answer:
        r = api_handle(s->registry, &route, query_lookup, c, now_unix(), &status, &body, &size, &content_type);
        if (r < 0) {
                log_warning_errno(r, "Failed to answer a %s request: %m", route_kind_to_string(route.kind));
                return respond_oom(c);
        }
        if (http_limits_response_reserve(c, size) < 0) {
                /* The responses already queued hold the whole http-response-budget. */
                free(body);
                return respond_error_with(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                          "busy: too many large responses are being sent; retry later",
                                          MHD_HTTP_HEADER_RETRY_AFTER, RESPONSE_BUSY_RETRY_AFTER);
        }
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                return respond(c, status, body, size, content_type, MHD_HTTP_HEADER_ALLOW,
                               route.allows_post ? "GET, HEAD, POST" : "GET, HEAD");
        return respond(c, status, body, size, content_type, NULL, NULL);
}

/* Arm the timer for MHD's next deadline, or switch it off when MHD has none. */
static int http_server_arm_timer(HttpServer *s) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        uint64_t now, when;
        int r;

        if (MHD_get_timeout(s->mhd, &timeout_ms) == MHD_NO) {
                if (!s->accept_episode)
                        return sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
                timeout_ms = ACCEPT_BACK_OFF_USEC / USEC_PER_MSEC;
        } else if (s->accept_episode && timeout_ms > ACCEPT_BACK_OFF_USEC / USEC_PER_MSEC)
                timeout_ms = ACCEPT_BACK_OFF_USEC / USEC_PER_MSEC;

        r = sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        if (timeout_ms >= (UINT64_MAX - now) / USEC_PER_MSEC)
                when = UINT64_MAX - 1;
        else
                when = now + timeout_ms * USEC_PER_MSEC;

        r = sd_event_source_set_time(s->timer_source, when);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
}

static void http_server_set_priority(HttpServer *s, int64_t priority) {
        (void) sd_event_source_set_priority(s->io_source, priority);
        (void) sd_event_source_set_priority(s->timer_source, priority);
}

/* HTTP runs ahead of the agent connections (see http_server_new_secured()), but at that
 * priority back-to-back requests that each cost milliseconds (/metrics over 1000 records, 12 ms,
 * from two keep-alive connections within the request rate) left no turn to the agents: a HELLO
 * waited 9-11 s for its WELCOME (found by review). After HTTP_BURST_USEC of MHD work within
 * HTTP_BURST_WINDOW_USEC (work spread wider starts a new window: a scrape now and then never
 * adds up to a burst), HTTP drops to the agents' priority for as long as it worked, where sd-event serves equal
 * priorities oldest pending first, so every agent connection waiting gets its turn; a timer
 * then gives the high priority back. Cheap requests (/healthz) rarely add up to a burst, so
 * they still come first when ingest falls behind. */
static void http_server_account(HttpServer *s, uint64_t started, uint64_t ended) {
        uint64_t used = ended > started ? ended - started : 0;

        if (s->demoted || !s->restore_source)
                return;
        if (started - s->burst_window_start > HTTP_BURST_WINDOW_USEC) {
                s->burst_window_start = started;
                s->burst_usec = 0;
        }
        s->burst_usec += used;
        if (s->burst_usec < HTTP_BURST_USEC)
                return;
        if (sd_event_source_set_time(s->restore_source, ended + s->burst_usec) < 0 ||
            sd_event_source_set_enabled(s->restore_source, SD_EVENT_ONESHOT) < 0) {
                s->burst_usec = 0;
                return;
        }
        http_server_set_priority(s, SD_EVENT_PRIORITY_NORMAL);
        s->demoted = true;
}

static int on_restore(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpServer *s = userdata;

        http_server_set_priority(s, SD_EVENT_PRIORITY_IMPORTANT);
        s->demoted = false;
        s->burst_usec = 0;
        return 0;
}

/* Let MHD do its work, then re-arm the timer. Returns 0 always: a failing sd-event callback gets
 * its source disabled, and the HTTP side must not stop serving over one bad iteration. */
static int http_server_dispatch(HttpServer *s) {
        uint64_t now, started;
        int r;

        if (s->paused) {
                s->paused = false;
                (void) sd_event_source_set_enabled(s->io_source, SD_EVENT_ON);
        }
        s->accept_failed = false;
        started = now_usec_monotonic();
        if (MHD_run(s->mhd) == MHD_NO)
                log_warning("MHD_run() failed.");
        http_server_account(s, started, now_usec_monotonic());
        if (s->accept_failed) {
                s->accept_episode = true;
                s->episode_quiet_runs = 0;
        } else if (s->accept_episode) {
                const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

                if (info && info->num_connections > 0)
                        s->episode_quiet_runs = 0;
                else if (++s->episode_quiet_runs >= 2)
                        s->accept_episode = false; /* the second such run put the socket back */
        }
        if (s->accept_failed) {
                /* Out of descriptors, MHD's listening socket stays ready (MHD polls it
                 * level-triggered, and with no connection of its own "busy-waits") and its
                 * epoll fd with it: at our higher priority the agent connections whose closing
                 * would free descriptors were never served, a livelock (found by review). Off
                 * for a moment; the timer brings it back. */
                sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                r = sd_event_source_set_time(s->timer_source, now + ACCEPT_BACK_OFF_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
                if (r >= 0 && sd_event_source_set_enabled(s->io_source, SD_EVENT_OFF) >= 0) {
                        s->paused = true;
                        return 0;
                }
        }
        r = http_server_arm_timer(s);
        if (r < 0)
                log_warning_errno(r, "Failed to re-arm the HTTP timer, requests may stall: %m");
        return 0;
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        return http_server_dispatch(userdata);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        return http_server_dispatch(userdata);
}

/* MHD_start_daemon() closes the listening socket on some of its failure paths and not on
 * others. Close it here only if the descriptor still is the socket we passed: during startup
 * nothing else can have taken the number in between. */
static void close_listen_socket_after_failure(int fd, const struct stat *before) {
        struct stat now;

        if (fstat(fd, &now) < 0)
                return;
        if (now.st_dev == before->st_dev && now.st_ino == before->st_ino)
                (void) safe_close(fd);
}

static int socket_family(int fd) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;

        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        return sa.ss_family;
}

/* Bind and listen on addr:port. Returns the fd or -errno. */
static int http_listen(const char *addr, uint16_t port) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        _cleanup_close_ int fd = -1;
        socklen_t salen;
        char host[INET6_ADDRSTRLEN + 2];
        size_t n;
        int one = 1, zero = 0;

        if (!addr)
                return -EINVAL;
        /* "[::1]" as written in URLs and --http. */
        n = strlen(addr);
        if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
                if (n - 2 >= sizeof host)
                        return -EINVAL;
                memcpy(host, addr + 1, n - 2);
                host[n - 2] = '\0';
        } else {
                if (n >= sizeof host)
                        return -EINVAL;
                memcpy(host, addr, n + 1);
        }

        if (inet_pton(AF_INET, host, &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(port);
                salen = sizeof sa.in;
        } else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                salen = sizeof sa.in6;
        } else
                return -EINVAL;

        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A restarted daemon must not fail on its predecessor's TIME_WAIT connections. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return -errno;
        /* Dual stack: "::" serves IPv4 clients too, whatever net.ipv6.bindv6only says. */
        if (sa.sa.sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
                return -errno;
        if (bind(fd, &sa.sa, salen) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static void on_request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                                 enum MHD_RequestTerminationCode toe) {
        http_limits_request_completed(c);
}

/* Whether the listening socket is bound to a loopback address (or the wildcard: no). */
static bool listen_is_loopback(int fd) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;

        return getsockname(fd, (struct sockaddr *) &sa, &len) == 0 && access_sockaddr_is_loopback((struct sockaddr *) &sa);
}

int http_server_new(sd_event *e, const char *addr, uint16_t port, int listen_fd, Registry *reg,
                    HttpServer **ret) {
        LimitsConfig l;

        limits_config_default(&l);
        return http_server_new_secured(e, addr, port, listen_fd, reg, &l, NULL, ret);
}

int http_server_new_secured(sd_event *e, const char *addr, uint16_t port, int listen_fd, Registry *reg,
                            const LimitsConfig *limits, const char *token, HttpServer **ret) {
        _cleanup_(http_server_freep) HttpServer *s = NULL;
        _cleanup_close_ int fd = -1;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        struct stat st;
        int family, flags_fl, r;

        if (!e || !reg || !ret)
                return -EINVAL;

        if (listen_fd >= 0) {
                r = sd_is_socket(listen_fd, AF_UNSPEC, SOCK_STREAM, 1);
                if (r < 0)
                        return log_error_errno(r, "Failed to check the HTTP socket fd %d: %m", listen_fd);
                if (r == 0)
                        return log_error_errno(EINVAL, "The HTTP socket fd %d is not a listening stream socket.",
                                               listen_fd);
                /* MHD's epoll loop must never block in accept(). */
                flags_fl = fcntl(listen_fd, F_GETFL);
                if (flags_fl < 0 || fcntl(listen_fd, F_SETFL, flags_fl | O_NONBLOCK) < 0)
                        return log_error_errno(errno, "Failed to make the HTTP socket non-blocking: %m");
                /* MHD gets its own descriptor, so that on failure the caller's is untouched. */
                fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return log_error_errno(errno, "Failed to duplicate the HTTP socket: %m");
        } else {
                fd = http_listen(addr, port);
                if (fd == -EINVAL)
                        return log_error_errno(fd, "Invalid HTTP listen address \"%s\": expected an IPv4 or IPv6 address.",
                                               addr ? addr : "(null)");
                if (fd < 0)
                        return log_error_errno(fd, "Failed to listen for HTTP on %s port %u: %m",
                                               addr, (unsigned) port);
        }

        family = socket_family(fd);
        if (family < 0)
                return log_error_errno(family, "Failed to query the HTTP socket: %m");
        if (family != AF_INET && family != AF_INET6)
                return log_error_errno(EINVAL, "The HTTP socket is not an IPv4 or IPv6 socket.");
        if (family == AF_INET6)
                flags |= MHD_USE_DUAL_STACK;
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Failed to stat the HTTP socket: %m");

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        s->event = sd_event_ref(e);
        s->registry = reg;
        s->limits = http_limits_new(e, limits);
        s->access = http_access_new(token, limits);
        if (!s->limits || !s->access)
                return log_oom();
        if (!token && !listen_is_loopback(fd))
                log_warning("HTTP is served on a non-loopback address without a bearer token (http-token-file): "
                            "anyone who can reach it reads every process's memory history.");

        /* Our accept policy enforces (and counts) the connection limits; MHD's own limit,
         * higher (room for evicted connections MHD has yet to close), never triggers first.
         * MHD's idle timeout, a little longer than ours, still bounds a client reading a
         * response slowly; the request-head deadline is ours. */
        s->mhd = MHD_start_daemon(flags, 0, http_limits_accept_policy, s->limits, request_handler, s,
                                  MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
                                  MHD_OPTION_LISTEN_SOCKET, fd,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned) http_limits_mhd_connections(limits),
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) limits->http_timeout + 2,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, limits->http_connection_memory,
                                  MHD_OPTION_NOTIFY_CONNECTION, http_limits_notify_connection, s->limits,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, NULL,
                                  MHD_OPTION_URI_LOG_CALLBACK, http_limits_uri_callback, NULL,
                                  MHD_OPTION_STRICT_FOR_CLIENT, (int) 1,
                                  MHD_OPTION_END);
        if (!s->mhd) {
                close_listen_socket_after_failure(TAKE_FD(fd), &st);
                return log_error_errno(EINVAL, "Failed to start the HTTP server (libmicrohttpd).");
        }
        /* From here on MHD owns the socket and closes it in MHD_stop_daemon(). */
        TAKE_FD(fd);

        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0)
                return log_error_errno(EOPNOTSUPP, "libmicrohttpd has no epoll fd.");

        r = sd_event_add_io(e, &s->io_source, info->epoll_fd, EPOLLIN, on_io, s);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the HTTP server: %m");
        (void) sd_event_source_set_description(s->io_source, "http-io");
        /* Ahead of the agent connections: when ingest falls behind, every agent socket is
         * pending and sd-event serves equal priorities oldest first, so a request waited for a
         * callback on each of them (measured with 1000 agents: /healthz unanswered for over 20 s,
         * docs/performance.md "Load and soak"). MHD's own connection and rate limits bound what
         * HTTP can take from ingest, and a burst of costly requests drops HTTP to the agents'
         * priority for a while (http_server_account()). */
        (void) sd_event_source_set_priority(s->io_source, SD_EVENT_PRIORITY_IMPORTANT);

        /* Accuracy 1 µs: sd-event's default slack (250 ms) would delay work MHD asked to do now. */
        r = sd_event_add_time(e, &s->timer_source, CLOCK_MONOTONIC, UINT64_MAX, 1, on_timer, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP timer: %m");
        (void) sd_event_source_set_description(s->timer_source, "http-timer");
        (void) sd_event_source_set_priority(s->timer_source, SD_EVENT_PRIORITY_IMPORTANT);

        /* Gives HTTP its priority back after a burst (http_server_account()); without it HTTP
         * simply keeps its priority. */
        r = sd_event_add_time(e, &s->restore_source, CLOCK_MONOTONIC, UINT64_MAX, 1, on_restore, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the HTTP priority timer: %m");
        (void) sd_event_source_set_enabled(s->restore_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(s->restore_source, "http-restore");
        (void) sd_event_source_set_priority(s->restore_source, SD_EVENT_PRIORITY_IMPORTANT);

        r = http_server_arm_timer(s);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the HTTP timer: %m");

        http_access_install(s->access);

        /* The caller's descriptor was duplicated for MHD; ours now, and no longer needed. */
        if (listen_fd >= 0)
                (void) safe_close(listen_fd);

        *ret = TAKE_PTR(s);
        return 0;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;
        /* Sources first: they watch MHD's epoll fd, which MHD_stop_daemon() closes. */
        s->io_source = sd_event_source_disable_unref(s->io_source);
        s->timer_source = sd_event_source_disable_unref(s->timer_source);
        s->restore_source = sd_event_source_disable_unref(s->restore_source);
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        http_limits_free(s->limits);
        http_access_free(s->access);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int http_server_get_port(HttpServer *s, uint16_t *ret_port) {
        const union MHD_DaemonInfo *info;
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;

        if (!s || !ret_port)
                return -EINVAL;
        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_LISTEN_FD);
        if (!info)
                return -EOPNOTSUPP;
        if (getsockname(info->listen_fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        if (sa.ss_family == AF_INET)
                *ret_port = ntohs(((struct sockaddr_in *) &sa)->sin_port);
        else if (sa.ss_family == AF_INET6)
                *ret_port = ntohs(((struct sockaddr_in6 *) &sa)->sin6_port);
        else
                return -EAFNOSUPPORT;
        return 0;
}
