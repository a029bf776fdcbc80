/* SPDX-License-Identifier: MIT */
/*
 * Daemon wiring (see server.h). One sd-event loop owns signals, the agent socket, libmicrohttpd
 * and the periodic expiry of exited processes — the shape of systemd-journal-remote. It also
 * speaks to the service manager (sd-util.c): READY=1 once everything listens and the history
 * is open, a STATUS= line when the number of agents or open leaks changes, the watchdog
 * through sd-event, and SIGHUP reloads the configuration with Type=notify-reload semantics.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "access.h"
#include "agent-server.h"
#include "fd-limit.h"
#include "heapwatch/protocol.h"
#include "http-limits.h"
#include "http-server.h"
#include "log.h"
#include "macro.h"
#include "persist.h"
#include "proc-util.h"
#include "registry.h"
#include "sd-util.h"
#include "state-lock.h"
#include "census.h"
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
#define STATUS_INTERVAL_USEC (5 * USEC_PER_SEC)

struct Server {
        sd_event *event;
        Registry *registry;
        AgentServer *agents;
        HttpServer *http;
        sd_event_source *expire_timer;
        Store *store;
        int state_lock_fd; /* flock on the state directory's heapwatchd.lock; -1: none */
        bool store_restored; /* the stored process records were read back (persist_restore) */
        double detect_horizon; /* what a restore replays */
        sd_event_source *flush_timer, *maintain_timer, *resume_timer;
        uint64_t flush_interval_usec;
        sd_event_source *status_timer;
        size_t status_agents, status_leaks; /* what the last STATUS= said */
        bool status_sent;
        /* Reload (SIGHUP) reads the file and this command line again; argv is main()'s. */
        int argc;
        char **argv;
        Options options; /* what runs now */
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
        size_t n;

        agent_server_check_lost(s->agents, now_unix());
        n = registry_expire(s->registry, now_unix());
        if (n > 0) {
                daemon_stats.processes_expired_total += n;
                log_debug("Dropped %zu exited process(es) past retention.", n);
        }
        return rearm(source, usec + EXPIRE_INTERVAL_USEC);
}

/* Read back the stored process records once the store can be read: at start, or when it opens
 * later (it was unusable at start: a full disk, a read-only directory), else the processes
 * live at the last stop were never restored, and their records stayed live in the file for
 * good. Records of processes connected meanwhile are theirs already and skipped. */
static void restore_once_available(Server *s) {
        if (s->store_restored || !store_is_available(s->store))
                return;
        s->store_restored = true;
        if (persist_restore(s->registry, now_unix(), s->detect_horizon) > 0 && s->resume_timer)
                (void) sd_event_source_set_enabled(s->resume_timer, SD_EVENT_ONESHOT);
}

/* Queue the changed process rows and write; when the slice ran out, come back right after the
 * loop has served everything else. */
static int on_flush(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        int r;

        persist_sync(s->registry);
        r = store_flush(s->store, now_unix(), FLUSH_ROWS, FLUSH_BUDGET_SECONDS);
        restore_once_available(s);
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
        if (persist_resume_step(s->registry, available, RESUME_POINTS_PER_SLICE, agent_server_leak_event) > 0)
                return rearm(source, usec + RESUME_YIELD_USEC);
        return sd_event_source_set_enabled(source, SD_EVENT_OFF);
}

static size_t count_open_leaks(Registry *r) {
        size_t n = 0;

        for (size_t i = 0; i < registry_count(r); i++) {
                Process *p = registry_at(r, i);
                if (p->state == PROCESS_LIVE && process_leaks_verdict(&p->leaks) != VERDICT_NONE)
                        n++;
        }
        return n;
}

static void server_update_status(Server *s, bool force) {
        size_t agents = agent_server_connections(s->agents), leaks = count_open_leaks(s->registry);

        if (!force && s->status_sent && agents == s->status_agents && leaks == s->status_leaks)
                return;
        s->status_agents = agents;
        s->status_leaks = leaks;
        s->status_sent = true;
        sd_util_notify_status("%zu agent(s) connected, %zu leak(s) open.", agents, leaks);
}

static int on_status(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;

        server_update_status(s, false);
        return rearm(source, usec + STATUS_INTERVAL_USEC);
}

/* The bearer token of path ("" none: *ret NULL), with a warning when others may read the file.
 * Logs a refusal at level with prefix and suffix around the reason. Returns 0 or -errno. */
static int load_token(const char *path, int level, const char *prefix, const char *suffix, char **ret) {
        char why[512];
        bool loose = false;
        int r;

        *ret = NULL;
        if (!path[0])
                return 0;
        r = access_token_load(path, ret, &loose, why, sizeof why);
        if (r < 0) {
                log_full_errno(level, 0, "%s%s%s", prefix, why, suffix);
                return r;
        }
        if (loose)
                log_warning("The token file %s is readable by group or others; chmod 0600 it.", path);
        return 0;
}

/* Read the token file again (or drop the token when the key is gone), so a token is rotated
 * with a reload. Returns 1 when applied, 0 without HTTP, -errno when the file was refused (the
 * running token stays). Logs. */
static int server_reload_token(Server *s, const Options *n) {
        _cleanup_free_ char *token = NULL;
        HttpAccess *a = http_access_installed();
        int r;

        if (!s->http || !a)
                return 0;
        r = load_token(n->http_token_file, LOG_WARNING, "Reload: ", "; the running token stays", &token);
        if (r < 0)
                return r;
        r = http_access_set_token(a, token);
        if (token)
                explicit_bzero(token, strlen(token));
        if (r < 0)
                return log_oom();
        if (!n->http_token_file[0] && s->options.http_token_file[0])
                log_warning("Reload: http-token-file removed; HTTP no longer requires a token.");
        return 1;
}

/* Apply what can change while running; say what cannot. Logs. */
static void server_apply(Server *s, const Options *n) {
        Options *o = &s->options;
        char changed[256] = "";
        size_t len = 0;
        bool store_applied = false;

#define NOTE(...) \
        do { \
                int _k = snprintf(changed + len, sizeof changed - len, __VA_ARGS__); \
                if (_k > 0 && (size_t) _k < sizeof changed - len) \
                        len += (size_t) _k; \
        } while (0)
        if (n->log_level != o->log_level) {
                log_set_max_level(n->log_level);
                NOTE(" log-level");
        }
        if (memcmp(&n->detect, &o->detect, sizeof n->detect) != 0) {
                registry_set_detect(s->registry, &n->detect);
                NOTE(" detection");
                if (n->detect.window_seconds != o->detect.window_seconds ||
                    n->detect.min_horizon_seconds != o->detect.min_horizon_seconds ||
                    n->detect.max_horizon_seconds != o->detect.max_horizon_seconds)
                        log_notice("Reload: the new detection window and horizons apply to processes that connect "
                                   "from now on; growth thresholds apply to all.");
        }
        if (n->exited_retention != o->exited_retention) {
                registry_set_exited_retention(s->registry, n->exited_retention);
                NOTE(" exited-retention");
        }
        if (memcmp(&n->census, &o->census, sizeof n->census) != 0) {
                census_config = n->census;
                o->census = n->census;
                NOTE(" census");
        }
        if (s->store && n->store_enabled &&
            (memcmp(n->store.tiers, o->store.tiers, sizeof n->store.tiers) != 0 ||
             n->store.max_disk_bytes != o->store.max_disk_bytes ||
             n->store.flush_interval != o->store.flush_interval)) {
                if (store_set_retention(s->store, &n->store) < 0)
                        log_warning("Reload: store-tiers changes the tiers' resolutions or number; "
                                    "that needs a restart (retentions left as they were).");
                else {
                        s->flush_interval_usec = (uint64_t) (n->store.flush_interval * USEC_PER_SEC);
                        store_applied = true;
                        NOTE(" store-retention");
                }
        }
#undef NOTE
        /* Everything else is bound at start: listeners, limits sizing memory, the state. */
        if (strcmp(n->socket_path, o->socket_path) != 0)
                log_warning("Reload: socket cannot change while running; restart heapwatchd to apply it.");
        if (n->http_enabled != o->http_enabled || strcmp(n->http_host, o->http_host) != 0 ||
            n->http_port != o->http_port)
                log_warning("Reload: http cannot change while running; restart heapwatchd to apply it.");
        if (n->history_points != o->history_points)
                log_warning("Reload: history-points cannot change while running; restart heapwatchd to apply it.");
        if (n->max_processes != o->max_processes)
                log_warning("Reload: max-processes cannot change while running; restart heapwatchd to apply it.");
        if (n->max_connections != o->max_connections)
                log_warning("Reload: max-connections cannot change while running; restart heapwatchd to apply it.");
        if (n->store_enabled != o->store_enabled || strcmp(n->store.state_dir, o->store.state_dir) != 0)
                log_warning("Reload: no-store/state-dir cannot change while running; restart heapwatchd to apply it.");
        if (memcmp(&n->limits, &o->limits, sizeof n->limits) != 0 || n->socket_mode != o->socket_mode ||
            strcmp(n->socket_group, o->socket_group) != 0)
                log_warning("Reload: access and limit keys (docs/security.md) are read at start; "
                            "restart heapwatchd to apply them.");
        if (server_reload_token(s, n) > 0)
                snprintf(o->http_token_file, sizeof o->http_token_file, "%s", n->http_token_file);

        /* Keep what runs: the applied values from n, the rest as they were. */
        o->log_level = n->log_level;
        o->detect = n->detect;
        o->exited_retention = n->exited_retention;
        if (store_applied) {
                for (size_t i = 0; i < o->store.n_tiers; i++)
                        o->store.tiers[i].retention = n->store.tiers[i].retention;
                o->store.max_disk_bytes = n->store.max_disk_bytes;
                o->store.flush_interval = n->store.flush_interval;
        }
        log_info("Configuration reloaded from %s; applied:%s.", n->config_path, len > 0 ? changed : " nothing changed");
}

int server_reload(Server *s) {
        char error[512];
        Options n;
        int r;

        sd_util_notify_reloading();
        r = options_load(&n, s->argc, s->argv, error, sizeof error);
        /* A file that was read before and is gone now is a mistake (moved away while being
         * edited), not a wish for the defaults: those would drop the HTTP token and shorten
         * the retentions. */
        if (r >= 0 && s->options.config_found && !n.config_found) {
                snprintf(error, sizeof error, "%s is gone", n.config_path);
                r = -ENOENT;
        }
        if (r < 0)
                log_error("Reload failed, the running configuration stays: %s", error);
        else {
                server_apply(s, &n);
                s->options.config_found = n.config_found;
        }
        sd_util_notify_ready("Running.");
        server_update_status(s, true);
        return r;
}

static int on_sighup(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        (void) server_reload(userdata);
        return 0;
}

static void persist_on_free_cb(void *userdata, Process *p) {
        persist_on_free(userdata, p);
}

static int server_open_store(Server *s, const Options *o, uint64_t now) {
        int r;

        pid_t holder;

        /* Before anything reads or writes the store: a second daemon must not restore the
         * first one's processes (and write them back as ended). */
        r = state_dir_lock(o->store.state_dir, &s->state_lock_fd, &holder);
        if (r == -EBUSY) {
                if (holder > 0)
                        return log_error_errno(r, "Another heapwatchd (pid %d) uses the state directory %s.", (int) holder,
                                               o->store.state_dir);
                return log_error_errno(r, "Another heapwatchd uses the state directory %s.", o->store.state_dir);
        }
        if (r < 0)
                log_warning_errno(r, "Cannot lock the state directory %s (%m); going on without the lock.",
                                  o->store.state_dir);
        r = store_open(&o->store, now_unix(), &s->store);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the history store: %m");
        registry_set_store(s->registry, s->store, persist_on_free_cb, s->store);
        s->detect_horizon = detect_history_seconds(&o->detect);
        restore_once_available(s);

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

/* Each agent connection and HTTP client holds a descriptor: ask for enough before the first
 * accept() (systemd starts services with a soft limit of 1024; HTTP clients hold up to MHD's
 * own connection limit, see http_limits_mhd_connections()). Returns the agent connections that
 * fit. */
static size_t raise_fd_limit(const Options *o) {
        uint64_t http = (uint64_t) http_limits_mhd_connections(&o->limits);
        uint64_t need = (uint64_t) o->max_connections + http + FD_LIMIT_RESERVE;
        int64_t got = fd_limit_raise(need);
        size_t fit;

        if (got < 0 || (uint64_t) got >= need)
                return o->max_connections;
        fit = (size_t) fd_limit_agent_connections((uint64_t) got, o->max_connections, http);
        log_warning("Open-file limit is %lld, below the %llu that --max-connections %zu and --http-max-connections %zu "
                    "need: at most %zu agent connections, the rest refused (raise LimitNOFILE=).",
                    (long long) got, (unsigned long long) need, o->max_connections, o->limits.http_max_connections,
                    fit);
        return fit;
}

int server_new(const Options *o, int argc, char *argv[], Server **ret) {
        census_config = o->census;
        RegistryLimits rl = {
                .max_processes = o->max_processes,
                .history_capacity = o->history_points,
                .exited_retention = o->exited_retention,
                .detect = o->detect,
        };
        AgentServerLimits al = {
                .max_connections = raise_fd_limit(o),
                .max_frame_payload = HW_FRAME_MAX_PAYLOAD,
                .hello_timeout_usec = (uint64_t) (o->limits.hello_timeout * USEC_PER_SEC),
                .max_connections_per_uid = o->limits.max_connections_per_uid,
                .frames_per_second = o->limits.frames_per_second,
                .frames_burst = o->limits.frames_burst,
                .idle_timeout_usec = (uint64_t) (o->limits.idle_timeout * USEC_PER_SEC),
                .socket_gid = (gid_t) -1,
        };
        Server *s;
        int agent_fd, http_fd, r;
        uint64_t now;

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        s->state_lock_fd = -1;
        daemon_stats.start_time = now_unix();
        s->argc = argc;
        s->argv = argv;
        s->options = *o;

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
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(s->event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGINT, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGHUP, on_sighup, s)) < 0) {
                log_error_errno(r, "Failed to watch signals: %m");
                goto fail;
        }
        /* With WatchdogSec= (WATCHDOG_USEC for our pid), sd-event sends WATCHDOG=1 at half the
         * interval from the loop itself: a stuck loop stops the pings and systemd restarts us. */
        r = sd_event_set_watchdog(s->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the service watchdog, continuing without: %m");
        else if (r > 0)
                log_info("Service watchdog enabled.");

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

        r = access_resolve_group(o->socket_group, &al.socket_gid);
        if (r < 0) {
                log_error_errno(r, "Unknown socket-group '%s': %m", o->socket_group);
                goto fail;
        }
        r = sd_util_listen_fds(&agent_fd, &http_fd);
        if (r < 0)
                goto fail;
        r = agent_server_new(s->event, o->socket_path, agent_fd, o->socket_mode, s->registry, &al, &s->agents);
        if (r < 0)
                goto fail;
        log_info("Listening for agents on %s.", agent_fd >= 0 ? "the socket-activated socket" : o->socket_path);

        if (o->http_enabled || http_fd >= 0) {
                _cleanup_free_ char *token = NULL;
                r = load_token(o->http_token_file, LOG_ERR, "", "", &token);
                if (r < 0)
                        goto fail;
                r = http_server_new_secured(s->event, o->http_host, o->http_port, http_fd, s->registry, &o->limits,
                                            token, &s->http);
                if (token)
                        explicit_bzero(token, strlen(token));
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
        r = sd_event_add_time(s->event, &s->status_timer, CLOCK_MONOTONIC, now + STATUS_INTERVAL_USEC, USEC_PER_SEC,
                              on_status, s);
        if (r < 0) {
                log_error_errno(r, "Failed to add the status timer: %m");
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

        /* server_new() has the agent socket listening, HTTP serving and the history open: only
         * now are we ready. */
        sd_util_notify_ready("Accepting agents.");
        server_update_status(s, true);
        r = sd_event_loop(s->event);
        sd_util_notify_stopping();
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->expire_timer);
        sd_event_source_disable_unref(s->status_timer);
        sd_event_source_disable_unref(s->flush_timer);
        sd_event_source_disable_unref(s->maintain_timer);
        sd_event_source_disable_unref(s->resume_timer);
        http_server_free(s->http);
        /* Connections close first (processes that said GOODBYE are marked exited and queued;
         * the others stay live, to be restored by the next daemon), then the registry lets go
         * of its series, then the store writes what is left and closes. */
        agent_server_free(s->agents);
        if (s->store)
                persist_sync(s->registry);
        registry_free(s->registry);
        store_free(s->store);
        safe_close(s->state_lock_fd); /* last: the store is written and closed */
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
