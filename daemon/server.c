/* SPDX-License-Identifier: MIT */
/*
 * Daemon wiring (see server.h). One sd-event loop owns signals, the agent socket, libmicrohttpd
 * and the periodic expiry of exited processes — the shape of systemd-journal-remote.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent-server.h"
#include "heapwatch/protocol.h"
#include "http-server.h"
#include "log.h"
#include "macro.h"
#include "persist.h"
#include "proc-util.h"
#include "registry.h"
#include "server.h"
#include "stats.h"
#include "store.h"
#include "time-util.h"

#define EXPIRE_INTERVAL_USEC (10 * USEC_PER_SEC)
/* Flush and housekeeping work in slices so no single callback holds the loop for long: a
 * transaction writes at most FLUSH_ROWS rows, a flush call spends at most FLUSH_BUDGET_SECONDS
 * before yielding for FLUSH_YIELD_USEC (docs/performance.md has the measured stalls). */
#define FLUSH_ROWS 200
#define FLUSH_BUDGET_SECONDS 0.005
#define FLUSH_YIELD_USEC (5 * USEC_PER_MSEC)
#define MAINTAIN_INTERVAL_USEC (1 * USEC_PER_SEC)
#define MAINTAIN_YIELD_USEC (20 * USEC_PER_MSEC)
#define VACUUM_PAGES 32
#define RESUME_POINTS_PER_SLICE 4
#define RESUME_YIELD_USEC (2 * USEC_PER_MSEC)

struct Server {
        sd_event *event;
        Registry *registry;
        AgentServer *agents;
        HttpServer *http;
        sd_event_source *expire_timer;
        Store *store;
        sd_event_source *flush_timer, *maintain_timer, *resume_timer;
        uint64_t flush_interval_usec;
};

/* Time sources are one-shot: set the next expiry and enable once more. */
static int rearm(sd_event_source *source, uint64_t usec) {
        int r = sd_event_source_set_time(source, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

static int on_expire(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        size_t n = registry_expire(s->registry, now_unix());

        if (n > 0) {
                daemon_stats.processes_expired_total += n;
                log_debug("Dropped %zu exited process(es) past retention.", n);
        }
        return rearm(source, usec + EXPIRE_INTERVAL_USEC);
}

/* Queue the changed process rows and write; when the slice ran out, come back right after the
 * loop has served everything else. */
static int on_flush(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r;

        persist_sync(s->registry);
        r = store_flush(s->store, now_unix(), FLUSH_ROWS, FLUSH_BUDGET_SECONDS);
        return rearm(source, usec + (r == 0 ? FLUSH_YIELD_USEC : s->flush_interval_usec));
}

static int on_maintain(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r = store_maintain(s->store, now_unix(), VACUUM_PAGES);

        return rearm(source, usec + (r > 0 ? MAINTAIN_YIELD_USEC : MAINTAIN_INTERVAL_USEC));
}

/* Replays stored floors into the detectors a few points at a time (each may cost a millisecond
 * of evaluation); disables itself when every replay is done. */
static int on_resume(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        double available = -1;

        (void) proc_mem_available("/proc", &available);
        if (persist_resume_step(s->registry, available, RESUME_POINTS_PER_SLICE) > 0)
                return rearm(source, usec + RESUME_YIELD_USEC);
        return sd_event_source_set_enabled(source, SD_EVENT_OFF);
}

static void persist_on_free_cb(void *userdata, Process *p) {
        persist_on_free(userdata, p);
}

static int server_open_store(Server *s, const Options *o, uint64_t now) {
        int r;

        r = store_open(&o->store, now_unix(), &s->store);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the history store: %m");
        registry_set_store(s->registry, s->store, persist_on_free_cb, s->store);
        (void) persist_restore(s->registry, now_unix(), o->detect.max_horizon_seconds);

        s->flush_interval_usec = (uint64_t) (o->store.flush_interval * USEC_PER_SEC);
        r = sd_event_add_time(s->event, &s->flush_timer, CLOCK_MONOTONIC, now + s->flush_interval_usec,
                              USEC_PER_MSEC, on_flush, s);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->maintain_timer, CLOCK_MONOTONIC, now + MAINTAIN_INTERVAL_USEC,
                                      USEC_PER_MSEC, on_maintain, s);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->resume_timer, CLOCK_MONOTONIC, now + RESUME_YIELD_USEC,
                                      USEC_PER_MSEC, on_resume, s);
        if (r >= 0) {
                /* Housekeeping and replays yield to agents and HTTP. */
                (void) sd_event_source_set_priority(s->maintain_timer, SD_EVENT_PRIORITY_IDLE);
                (void) sd_event_source_set_priority(s->resume_timer, SD_EVENT_PRIORITY_IDLE);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to add the history store's timers: %m");
        return 0;
}

/* Socket activation: a Unix stream socket is the agent socket, an inet stream socket is HTTP. */
static void take_listen_fds(int *ret_agent_fd, int *ret_http_fd) {
        int n = sd_listen_fds(1);

        *ret_agent_fd = *ret_http_fd = -1;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (*ret_agent_fd < 0 && sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0)
                        *ret_agent_fd = fd;
                else if (*ret_http_fd < 0 && sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0)
                        *ret_http_fd = fd;
                else
                        log_warning("Ignoring unexpected socket-activated fd %d.", fd);
        }
}

int server_new(const Options *o, Server **ret) {
        RegistryLimits rl = {
                .max_processes = o->max_processes,
                .history_capacity = o->history_points,
                .exited_retention = o->exited_retention,
                .detect = o->detect,
        };
        AgentServerLimits al = {
                .max_connections = o->max_connections,
                .max_frame_payload = HW_FRAME_MAX_PAYLOAD,
                .hello_timeout_usec = 10 * USEC_PER_SEC,
        };
        Server *s;
        int agent_fd, http_fd, r;
        uint64_t now;

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        daemon_stats.start_time = now_unix();

        r = sd_event_default(&s->event);
        if (r < 0) {
                log_error_errno(r, "Failed to create the event loop: %m");
                goto fail;
        }
        /* sd-event turns these into events; they must be blocked first. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(s->event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGINT, NULL, NULL)) < 0) {
                log_error_errno(r, "Failed to watch signals: %m");
                goto fail;
        }
        (void) sd_event_set_watchdog(s->event, true);

        s->registry = registry_new(&rl);
        if (!s->registry) {
                r = log_oom();
                goto fail;
        }

        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (o->store_enabled) {
                r = server_open_store(s, o, now);
                if (r < 0)
                        goto fail;
        } else
                log_info("History store disabled (--no-store): history is kept in memory only.");

        take_listen_fds(&agent_fd, &http_fd);
        r = agent_server_new(s->event, o->socket_path, agent_fd, o->socket_mode, s->registry, &al, &s->agents);
        if (r < 0)
                goto fail;
        log_info("Listening for agents on %s.", agent_fd >= 0 ? "the socket-activated socket" : o->socket_path);

        if (o->http_enabled || http_fd >= 0) {
                r = http_server_new(s->event, o->http_host, o->http_port, http_fd, s->registry, &s->http);
                if (r < 0)
                        goto fail;
                if (http_fd >= 0)
                        log_info("Serving HTTP on the socket-activated socket.");
                else
                        log_info("Serving HTTP on %s%s%s:%u.", strchr(o->http_host, ':') ? "[" : "", o->http_host,
                                 strchr(o->http_host, ':') ? "]" : "", o->http_port);
        }

        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(s->event, &s->expire_timer, CLOCK_MONOTONIC, now + EXPIRE_INTERVAL_USEC, USEC_PER_SEC,
                              on_expire, s);
        if (r < 0) {
                log_error_errno(r, "Failed to add the expiry timer: %m");
                goto fail;
        }
        *ret = s;
        return 0;

fail:
        server_free(s);
        return r;
}

int server_run(Server *s) {
        int r;

        (void) sd_notify(false, "READY=1\nSTATUS=Accepting agents.");
        r = sd_event_loop(s->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->expire_timer);
        sd_event_source_disable_unref(s->flush_timer);
        sd_event_source_disable_unref(s->maintain_timer);
        sd_event_source_disable_unref(s->resume_timer);
        http_server_free(s->http);
        /* Connections close first (their processes are marked exited and queued), then the
         * registry lets go of its series, then the store writes what is left and closes. */
        agent_server_free(s->agents);
        if (s->store)
                persist_sync(s->registry);
        registry_free(s->registry);
        store_free(s->store);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
