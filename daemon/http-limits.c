/* SPDX-License-Identifier: MIT */
/*
 * HTTP connection limits (see http-limits.h). Connections are tracked in a list, newest first
 * (at most http_limits_mhd_connections() of them), so counting one address's connections,
 * finding the oldest one still waiting for a request head and sweeping for overdue heads are
 * short linear walks.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "access.h"
#include "http-limits.h"
#include "log.h"
#include "time-util.h"

#define SWEEP_INTERVAL_USEC (USEC_PER_SEC / 2)

typedef struct Tracked Tracked;
struct Tracked {
        Tracked *prev, *next;
        HttpLimits *owner;
        char key[ACCESS_ADDRESS_KEY_MAX];
        uint64_t waiting_since; /* monotonic: connected, or the previous response completed */
        bool in_request;        /* a complete head arrived; MHD's own timeout governs the rest */
        bool closing;           /* we shut it down: it counts toward no limit any more */
        int fd;
        uint64_t response_bytes; /* of the response queued and not yet sent whole */
};

struct HttpLimits {
        sd_event *event;
        sd_event_source *sweep;
        LimitsConfig limits;
        Tracked *list;          /* newest first */
        size_t n;               /* tracked, closing ones included */
        size_t n_closing;       /* shut down by us, waiting for MHD to close them */
        uint64_t response_bytes; /* responses queued and not yet sent, every connection's */
};

/* A response this small is always sent (errors, /healthz, a small listing): the budget is for
 * the ones that can hold megabytes. */
#define RESPONSE_SMALL_MAX (16u * 1024u)

size_t http_limits_connections(const HttpLimits *h) {
        return h ? h->n - h->n_closing : 0;
}

size_t http_limits_mhd_connections(const LimitsConfig *limits) {
        return limits->http_max_connections + HTTP_LIMITS_EVICTED_MAX + 1;
}

/* Close a connection from outside MHD. MHD 0.9.75 has no call for it: MHD_suspend_connection()
 * is only allowed from the connection's own access handler (so never for one that has not sent
 * a request head) and needs MHD_ALLOW_SUSPEND_RESUME, which a resumed connection would not even
 * close; MHD_quiesce_daemon() is for the listening socket. A socket shut down for reading and
 * writing reads EOF, which MHD's epoll set (edge-triggered, the connection's fd is in it since
 * accept) reports at its next MHD_run(), and MHD then closes the connection itself and tells us
 * (MHD_CONNECTION_NOTIFY_CLOSED). We never close() the descriptor: MHD owns it and would close
 * the number again, by then perhaps someone else's. Until MHD closes it, the connection counts
 * toward neither limit: it is over, and the client that took its place must be accepted now. */
static void tracked_shut_down(Tracked *t) {
        (void) shutdown(t->fd, SHUT_RDWR);
        t->closing = true;
        t->owner->n_closing++;
}

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpLimits *h = userdata;
        uint64_t now = now_usec_monotonic(), timeout = (uint64_t) (h->limits.http_timeout * USEC_PER_SEC);

        for (Tracked *t = h->list; t; t = t->next)
                if (!t->in_request && !t->closing && t->fd >= 0 && now - t->waiting_since >= timeout) {
                        tracked_shut_down(t);
                        limit_hit(LIMIT_HTTP_TIMEOUT);
                }
        if (h->n == 0)
                return sd_event_source_set_enabled(source, SD_EVENT_OFF);
        (void) sd_event_source_set_time(source, now + SWEEP_INTERVAL_USEC);
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

HttpLimits *http_limits_new(sd_event *e, const LimitsConfig *limits) {
        HttpLimits *h = calloc(1, sizeof *h);

        if (!h)
                return NULL;
        h->event = sd_event_ref(e);
        h->limits = *limits;
        if (sd_event_add_time(e, &h->sweep, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC * 50, on_sweep, h) < 0)
                return http_limits_free(h);
        (void) sd_event_source_set_enabled(h->sweep, SD_EVENT_OFF);
        (void) sd_event_source_set_description(h->sweep, "http-sweep");
        return h;
}

HttpLimits *http_limits_free(HttpLimits *h) {
        if (!h)
                return NULL;
        /* Connections still tracked are freed by MHD's close notifications when the server
         * stops, which happens before this; whatever remains is only unlinked. */
        for (Tracked *t = h->list; t; t = t->next)
                t->owner = NULL;
        sd_event_source_disable_unref(h->sweep);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

/* Whether bytes wait unread on the connection's socket: MHD runs the accept policy before it
 * reads the connections that are ready, so a kept-alive client whose next request has arrived
 * still looks idle; evicted, it got no answer to a request it sent first (found by review).
 * Such bytes are read at MHD's next run, so this shelters no slowloris for long. */
static bool has_unread_bytes(const Tracked *t) {
        int n = 0;

        return ioctl(t->fd, FIONREAD, &n) == 0 && n > 0;
}

/* The connection that has waited longest for a request head (a new one, or a kept-alive one
 * between requests), or NULL when every open connection is inside a request. */
static Tracked *oldest_waiting(HttpLimits *h) {
        Tracked *oldest = NULL;

        for (Tracked *t = h->list; t; t = t->next)
                if (!t->in_request && !t->closing && t->fd >= 0 &&
                    (!oldest || t->waiting_since <= oldest->waiting_since) && !has_unread_bytes(t))
                        oldest = t;
        return oldest;
}

enum MHD_Result http_limits_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
        HttpLimits *h = cls;
        char key[ACCESS_ADDRESS_KEY_MAX];
        size_t same = 0;
        Tracked *victim;

        access_address_key(addr, key);
        for (const Tracked *t = h->list; t; t = t->next)
                same += !t->closing && strcmp(t->key, key) == 0;
        if (same >= h->limits.http_max_connections_per_address) {
                limit_hit(LIMIT_HTTP_CONNECTIONS_PER_ADDRESS);
                return MHD_NO;
        }
        if (http_limits_connections(h) < h->limits.http_max_connections)
                return MHD_YES;
        /* Full. Refusing here let a few addresses hold every slot for good by opening
         * connections that send nothing and reopening each just before its head deadline
         * (found by review: two loopback addresses, 32 each, and no other client got through).
         * Like nginx and HAProxy, a new connection instead takes the place of the one that has
         * waited longest without sending a request head: a client that sends its request at
         * once is always served, and one that holds a slot idle gives it up first. Connections
         * inside a request are never evicted; when all are, the new one is refused. The evicted
         * one holds its descriptor until the next MHD_run() (MHD accepts at most 10 connections
         * a run): MHD's own connection limit (http_limits_mhd_connections()) leaves room for
         * HTTP_LIMITS_EVICTED_MAX of them, and we refuse, counted, before MHD would. */
        victim = oldest_waiting(h);
        if (!victim || h->n_closing >= HTTP_LIMITS_EVICTED_MAX) {
                limit_hit(LIMIT_HTTP_CONNECTIONS);
                return MHD_NO;
        }
        tracked_shut_down(victim);
        limit_hit(LIMIT_HTTP_CONNECTIONS_EVICTED);
        return MHD_YES;
}

void http_limits_notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                                   enum MHD_ConnectionNotificationCode code) {
        HttpLimits *h = cls;
        Tracked *t;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

                t = calloc(1, sizeof *t);
                if (!t) {
                        *socket_context = NULL;
                        return;
                }
                t->owner = h;
                access_address_key(addr ? addr->client_addr : NULL, t->key);
                t->fd = fd ? fd->connect_fd : -1;
                t->waiting_since = now_usec_monotonic();
                t->next = h->list;
                if (t->next)
                        t->next->prev = t;
                h->list = t;
                h->n++;
                *socket_context = t;
                if (h->n == 1) {
                        (void) sd_event_source_set_time(h->sweep, t->waiting_since + SWEEP_INTERVAL_USEC);
                        (void) sd_event_source_set_enabled(h->sweep, SD_EVENT_ONESHOT);
                }
                return;
        }
        /* MHD_CONNECTION_NOTIFY_CLOSED */
        t = *socket_context;
        if (!t)
                return;
        if (t->owner) {
                t->owner->response_bytes -= t->response_bytes;
                if (t->prev)
                        t->prev->next = t->next;
                else
                        t->owner->list = t->next;
                if (t->next)
                        t->next->prev = t->prev;
                t->owner->n--;
                if (t->closing)
                        t->owner->n_closing--;
        }
        free(t);
        *socket_context = NULL;
}

static Tracked *tracked_of(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return info ? info->socket_context : NULL;
}

void http_limits_request_started(struct MHD_Connection *c) {
        Tracked *t = tracked_of(c);
        if (t)
                t->in_request = true;
}

void http_limits_request_completed(struct MHD_Connection *c) {
        Tracked *t = tracked_of(c);
        if (t) {
                t->in_request = false;
                t->waiting_since = now_usec_monotonic();
                if (t->owner)
                        t->owner->response_bytes -= t->response_bytes;
                t->response_bytes = 0;
        }
}

int http_limits_response_reserve(struct MHD_Connection *c, size_t size) {
        Tracked *t = tracked_of(c);
        HttpLimits *h;

        if (!t || !t->owner)
                return 0;
        h = t->owner;
        /* A slow reader keeps its response in memory until the last byte is sent (20 of them
         * reading 66 MB listings took the daemon from 180 MB to 1.5 GB, found by review). Past
         * the budget a large response is refused; one is always allowed when nothing else is
         * held, or a response larger than the budget could never be sent. */
        if (size > RESPONSE_SMALL_MAX && h->response_bytes > 0 &&
            h->response_bytes + size > h->limits.http_response_budget) {
                limit_hit(LIMIT_HTTP_RESPONSE_BUDGET);
                return -ENOBUFS;
        }
        h->response_bytes += size;
        t->response_bytes += size;
        return 0;
}

const char http_limits_too_many_parameters[] = "too many query parameters";

void *http_limits_uri_callback(void *cls, const char *uri, struct MHD_Connection *c) {
        const char *query = uri ? strchr(uri, '?') : NULL;
        size_t n = 1;

        if (!query || !query[1])
                return NULL;
        for (const char *p = query + 1; *p; p++)
                n += *p == '&';
        if (n <= HTTP_QUERY_PARAMETERS_MAX)
                return NULL;
        /* libmicrohttpd 0.9.75 parses the query right after this callback into the connection's
         * memory pool, 48 bytes of record for each "a=1&" (4 bytes of URL): 478 parameters in
         * 1.9 KB ran the 32 KiB pool out, MHD could not even build its own 431 and dropped the
         * connection without an answer, or left it hanging until the head deadline (found by
         * review). No memory limit helps: the records always outgrow the URL that fills the
         * buffer. The URI is the request line in MHD's read buffer, which MHD itself cuts and
         * unescapes in place, and it parses the query from there after we return: ending the
         * string right after the '?' leaves it no parameter to store. The access handler then
         * answers 400 from a pool with room to spare. (Should a later MHD hand us a copy, the
         * write is harmless and the handler still answers.) */
        ((char *) query)[1] = '\0';
        limit_hit(LIMIT_HTTP_QUERY_PARAMETERS);
        return (void *) http_limits_too_many_parameters;
}

void http_limits_note_mhd_message(const char *message) {
        /* Only the answer, once per connection: MHD may also log the pool running out before it. */
        if (strstr(message, "response code is 431") || strstr(message, "response code is 414"))
                limit_hit(LIMIT_HTTP_CONNECTION_MEMORY);
}
