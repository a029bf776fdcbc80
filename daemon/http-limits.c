/* SPDX-License-Identifier: MIT */
/*
 * HTTP connection limits (see http-limits.h). Connections are tracked in a list (at most
 * http-max-connections of them), so counting one address's connections and sweeping for
 * overdue request heads are short linear walks.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
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
        int fd;
};

struct HttpLimits {
        sd_event *event;
        sd_event_source *sweep;
        LimitsConfig limits;
        Tracked *list;
        size_t n;
};

size_t http_limits_connections(const HttpLimits *h) {
        return h ? h->n : 0;
}

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpLimits *h = userdata;
        uint64_t now = now_usec_monotonic(), timeout = (uint64_t) (h->limits.http_timeout * USEC_PER_SEC);

        for (Tracked *t = h->list; t; t = t->next)
                if (!t->in_request && t->fd >= 0 && now - t->waiting_since >= timeout) {
                        /* MHD 0.9 has no call to close a connection from outside; a shut down
                         * socket reads EOF, which MHD's own epoll wakes up for and closes. */
                        (void) shutdown(t->fd, SHUT_RDWR);
                        t->fd = -1;
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

enum MHD_Result http_limits_accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
        HttpLimits *h = cls;
        char key[ACCESS_ADDRESS_KEY_MAX];
        size_t same = 0;

        if (h->n >= h->limits.http_max_connections) {
                limit_hit(LIMIT_HTTP_CONNECTIONS);
                return MHD_NO;
        }
        access_address_key(addr, key);
        for (const Tracked *t = h->list; t; t = t->next)
                same += strcmp(t->key, key) == 0;
        if (same >= h->limits.http_max_connections_per_address) {
                limit_hit(LIMIT_HTTP_CONNECTIONS_PER_ADDRESS);
                return MHD_NO;
        }
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
                if (t->prev)
                        t->prev->next = t->next;
                else
                        t->owner->list = t->next;
                if (t->next)
                        t->next->prev = t->prev;
                t->owner->n--;
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
        }
}

void http_limits_note_mhd_message(const char *message) {
        /* Only the answer, once per connection: MHD may also log the pool running out before it. */
        if (strstr(message, "response code is 431") || strstr(message, "response code is 414"))
                limit_hit(LIMIT_HTTP_CONNECTION_MEMORY);
}
