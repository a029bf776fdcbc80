/* SPDX-License-Identifier: MIT */
/*
 * Agent socket server (see agent-server.h). Each connection goes through two states: waiting
 * for HELLO (with a deadline), then attached to a process record, receiving SAMPLEs until
 * GOODBYE or EOF. All I/O is non-blocking and driven by sd-event; a connection never makes
 * the loop wait, and one connection's bad bytes never reach another's state.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent-server.h"
#include "census.h"
#include "sd-util.h"
#include "frame-reader.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "leak-resume.h"
#include "peer-limits.h"
#include "message.h"
#include "peer-identity.h"
#include "persist.h"
#include "proc-util.h"
#include "stats.h"
#include "time-util.h"

const char *agent_server_proc_root = "/proc";

/* Bytes read per wake-up before yielding to other sources, so one chatty agent cannot starve
 * the loop (sd-event will call us again while data is pending). */
#define READ_BUDGET (256u * 1024u)

/* At most this often one agent is asked to send its heap stacks again (RESEND_STACKS): a lost
 * report leaves its sites unknown for at most this long, and when the stacks cannot be kept
 * anyway (our stack table full) the agent resends them no more often than this. */
#define STACKS_ASK_INTERVAL_USEC (30 * USEC_PER_SEC)

/* A sample may be stamped at most this far ahead of the daemon's clock (seconds): the agent
 * reads the same clock before it sends, so only a clock stepped back between the two, or a
 * forged frame, comes from further ahead. */
#define SAMPLE_AHEAD_MAX 60.0

/* How long the agent socket is not listened on after accept() ran out of descriptors. */
#define ACCEPT_BACK_OFF_USEC (250 * USEC_PER_MSEC)

typedef struct Connection Connection;

struct AgentServer {
        sd_event *event;
        Registry *registry;
        AgentServerLimits limits;
        int listen_fd;
        sd_event_source *listen_source;
        sd_event_source *accept_pause; /* one-shot: the listener back on after EMFILE/ENFILE */
        char *socket_path; /* set when we created the socket file (to unlink it) */
        Connection *connections;
        size_t n_connections;
        double boot_time;
        RateLimit log_ratelimit;
        double mem_available;      /* host MemAvailable, bytes; < 0 unknown */
        uint64_t mem_available_at; /* when read (monotonic usec) */
};

struct Connection {
        AgentServer *server;
        Connection *prev, *next;
        int fd;
        sd_event_source *io_source;
        sd_event_source *hello_timer;
        struct ucred peer;
        FrameReader reader;
        TokenBucket frames;         /* max-frames-per-second */
        sd_event_source *idle_timer; /* armed after HELLO: agent-idle-timeout */
        uint64_t last_frame_usec;   /* monotonic, last complete frame */
        Process *process;         /* NULL until HELLO */
        ExitReason goodbye;       /* set by GOODBYE: how the process ended */
        bool stacks_lost;           /* a heap report's stacks did not reach the profile */
        uint64_t stacks_asked_usec; /* monotonic, last RESEND_STACKS (0: never) */
};

static void leak_end(Process *p);

/* Close and free the connection alone; its process, if any, is the caller's business. */
static void connection_release(Connection *c) {
        AgentServer *s = c->server;

        sd_event_source_disable_unref(c->io_source);
        sd_event_source_disable_unref(c->hello_timer);
        sd_event_source_disable_unref(c->idle_timer);
        frame_reader_done(&c->reader);
        safe_close(c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;
        if (daemon_stats.agents_connected > 0)
                daemon_stats.agents_connected--;
        free(c);
}

static void connection_free(Connection *c, ExitReason reason) {
        AgentServer *s;

        if (!c)
                return;
        s = c->server;
        if (c->process) {
                /* A GOODBYE said how it ended; otherwise the caller's reason stands, unless the
                 * cgroup shows the OOM killer struck. */
                registry_detach(s->registry, c->process,
                                c->goodbye != EXIT_REASON_NONE ? c->goodbye : persist_exit_reason(c->process, reason),
                                now_unix());
                leak_end(c->process);
                persist_detach(s->registry, c->process);
                process_census_detach(c->process->census);
                log_debug("Agent %s (pid %d) disconnected.", c->process->id, (int) c->peer.pid);
        }
        connection_release(c);
}

/* The daemon stops: a process whose agent said no GOODBYE still runs, and its agent will
 * reconnect to the next daemon. Its record stays live (the store keeps it so, and the next
 * daemon restores it, its leak detection replayed and its censuses back, as after a crash):
 * marked ended here, it was restored by nothing, and a clean restart or an upgrade lost every
 * open finding (found by review). */
static void connection_free_at_stop(Connection *c) {
        if (c->process && c->goodbye == EXIT_REASON_NONE) {
                c->process->owner = NULL;
                process_census_detach(c->process->census);
                connection_release(c);
                return;
        }
        connection_free(c, EXIT_REASON_CONNECTION_LOST);
}

/* Refuse the peer: count why, log (rate-limited) and close. Always returns 0 so the
 * event loop carries on. */
static int connection_reject(Connection *c, FrameRejectReason reason, const char *detail) {
        AgentServer *s = c->server;

        daemon_stats.frames_rejected_total[reason]++;
        if (ratelimit_below(&s->log_ratelimit))
                log_warning("Closing agent connection from pid %d (uid %d): %s%s%s",
                            (int) c->peer.pid, (int) c->peer.uid, frame_reject_reason_to_string(reason),
                            detail && *detail ? ": " : "", detail ? detail : "");
        connection_free(c, EXIT_REASON_CONNECTION_LOST);
        return 0;
}

/* The agent's start time and parent from the kernel where we can see the peer's /proc entry
 * (same pid namespace); from its claims otherwise. Returns whether the kernel said. */
static bool peer_identity(AgentServer *s, const Connection *c, const HwHello *hello, pid_t *ret_ppid,
                          int64_t *ret_ticks, double *ret_start_time) {
        pid_t ppid = hello->ppid >= 0 ? (pid_t) hello->ppid : 0;
        int64_t ticks = hello->start_time_ticks >= 0 ? hello->start_time_ticks : 0;
        double start = hello->start_time;

        bool kernel = c->peer.pid > 0 && proc_read_stat("/proc", c->peer.pid, &ppid, &ticks) >= 0;

        if (kernel && s->boot_time > 0)
                start = s->boot_time + (double) ticks / (double) sysconf(_SC_CLK_TCK);
        *ret_ppid = ppid;
        *ret_ticks = ticks;
        *ret_start_time = start;
        return kernel;
}

/* How many connections uid holds: a linear walk, once per accept, over at most max-connections. */
static size_t connections_of_uid(const AgentServer *s, uid_t uid) {
        size_t n = 0;

        for (const Connection *c = s->connections; c; c = c->next)
                n += c->peer.uid == uid;
        return n;
}

/* A message refused for a string or array beyond the protocol's bounds (message.c says so with
 * -E2BIG) counts as a limit hit too. */
static void count_message_bound(int r) {
        if (r == -E2BIG)
                limit_hit(LIMIT_MESSAGE_FIELD);
}

/* Judge the HELLO's pid against the kernel and learn namespace, cgroup and container. Returns 0
 * and *ret, or -EPERM with the reason in ret->cgroup (for the log line). */
static int identity_check(const Connection *c, const HwHello *hello, PeerIdentity *ret) {
        PeerIdentity id = {};
        PeerClaimVerdict v;

        (void) peer_read_namespace(agent_server_proc_root, c->peer.pid, &id.ns);
        v = peer_judge_claim(c->peer.pid, hello->pid, &id.ns);
        if (v == PEER_CLAIM_FORGED) {
                snprintf(ret->cgroup, sizeof ret->cgroup, "HELLO claims pid %lld, the kernel says %d (%d in its namespace)",
                         (long long) hello->pid, (int) c->peer.pid, (int) id.ns.inner_pid);
                return -EPERM;
        }
        if (!peer_runs_as(&id.ns, c->peer.uid)) {
                snprintf(ret->cgroup, sizeof ret->cgroup,
                         "pid %d runs as uid %d, not as uid %d that connected (the pid reused since?)", (int) c->peer.pid,
                         (int) id.ns.uids[1], (int) c->peer.uid);
                return -EPERM;
        }
        id.claim_verified = v == PEER_CLAIM_OK;
        if (peer_read_cgroup(agent_server_proc_root, c->peer.pid, id.cgroup, sizeof id.cgroup) >= 0)
                (void) peer_container_id(id.cgroup, id.container_id, sizeof id.container_id);
        *ret = id;
        return 0;
}

static int on_idle_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Connection *c = userdata;
        uint64_t timeout = c->server->limits.idle_timeout_usec, interval = 0;

        /* An agent sampling slower than the timeout is not idle: allow three of its intervals. */
        if (c->process && c->process->hello.interval > 0)
                interval = (uint64_t) (c->process->hello.interval * 3 * USEC_PER_SEC);
        if (interval > timeout)
                timeout = interval;
        if (now_usec_monotonic() - c->last_frame_usec >= timeout) {
                limit_hit(LIMIT_AGENT_IDLE_TIMEOUT);
                return connection_reject(c, REJECT_UNEXPECTED, "idle: no complete frame in time");
        }
        (void) sd_event_source_set_time(source, c->last_frame_usec + timeout);
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

static void arm_idle_timer(Connection *c) {
        int r;

        if (c->idle_timer || c->server->limits.idle_timeout_usec == 0)
                return;
        r = sd_event_add_time(c->server->event, &c->idle_timer, CLOCK_MONOTONIC,
                              c->last_frame_usec + c->server->limits.idle_timeout_usec, USEC_PER_SEC, on_idle_timer, c);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the idle timer of an agent connection: %m");
}

static void send_welcome(Connection *c) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t len;

        if (message_encode_welcome(c->process->id, &frame, &len) < 0)
                return;
        /* Advisory: a few dozen bytes into an empty socket buffer. If it does not fit, the
         * agent simply does not learn its id. Never block for it. */
        (void) !send(c->fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int handle_hello(Connection *c) {
        AgentServer *s = c->server;
        char error[MESSAGE_ERROR_MAX] = "";
        char id[PROCESS_ID_MAX];
        HwHello hello;
        pid_t ppid;
        int64_t ticks;
        double start;
        PeerIdentity ident;
        bool kernel_ticks;
        Process *p;
        int r;

        r = message_decode_hello(c->reader.payload, c->reader.payload_len, &hello, error, sizeof error);
        if (r == -ENOMEM)
                return connection_reject(c, REJECT_BAD_MESSAGE, "out of memory");
        if (r < 0) {
                count_message_bound(r);
                return connection_reject(c, r == -EBADMSG ? REJECT_BAD_JSON : REJECT_BAD_MESSAGE, error);
        }

        r = identity_check(c, &hello, &ident);
        if (r < 0) {
                hw_hello_done(&hello);
                return connection_reject(c, REJECT_IDENTITY, ident.cgroup);
        }
        kernel_ticks = peer_identity(s, c, &hello, &ppid, &ticks, &start);
        process_id_format(id, c->peer.pid, ticks);
        p = registry_find(s->registry, id);
        if (p && p->uid != c->peer.uid) {
                /* With the start time from the kernel, the id is this very process lifetime: it
                 * changed its uid (a service dropping privileges after the agent started) and
                 * keeps its record under the new one. With a claimed start time, the id may be
                 * a collision with another user's process: never take over or extend another
                 * user's history. */
                if (!kernel_ticks) {
                        char why[96];
                        snprintf(why, sizeof why, "record %s belongs to uid %d", id, (int) p->uid);
                        hw_hello_done(&hello);
                        return connection_reject(c, REJECT_IDENTITY, why);
                }
                log_notice("Agent %s now runs as uid %d (was %d).", id, (int) c->peer.uid, (int) p->uid);
        }

        r = registry_attach(s->registry, id, c->peer.pid > 0 ? c->peer.pid : (pid_t) hello.pid, c->peer.uid,
                            c->peer.gid, ppid, ticks, start, &hello, now_unix(), &p);
        if (r == -EBUSY) {
                /* The same process connected again while we still hold its old connection (it
                 * saw that one die before we did). The new connection is the live one. */
                Connection *old = p->owner;
                log_debug("Agent %s reconnected; retiring its previous connection.", id);
                old->process = NULL;
                p->owner = NULL;
                connection_free(old, EXIT_REASON_CONNECTION_LOST);
                r = registry_attach(s->registry, id, c->peer.pid > 0 ? c->peer.pid : (pid_t) hello.pid,
                                    c->peer.uid, c->peer.gid, ppid, ticks, start, &hello, now_unix(), &p);
        }
        hw_hello_done(&hello);
        if (r == -ENOSPC) {
                limit_hit(LIMIT_PROCESSES);
                return connection_reject(c, REJECT_PROCESS_LIMIT, "too many tracked processes");
        }
        if (r < 0)
                return connection_reject(c, REJECT_BAD_MESSAGE, "out of memory");

        p->identity = ident;
        if (!ident.claim_verified)
                log_notice("Agent %s claims pid %lld; the kernel says %d and its namespace view could not be read: "
                           "recorded under pid %d, flagged unverified.", id, (long long) p->hello.pid,
                           (int) c->peer.pid, (int) c->peer.pid);
        else if (p->hello.pid != c->peer.pid)
                log_info("Agent %s is pid %lld in its own pid namespace (container %s, cgroup %s).", id,
                         (long long) p->hello.pid, ident.container_id[0] ? ident.container_id : "unknown",
                         ident.cgroup[0] ? ident.cgroup : "unknown");

        p->owner = c;
        c->process = p;
        persist_attach(s->registry, p);
        c->hello_timer = sd_event_source_disable_unref(c->hello_timer);
        arm_idle_timer(c);
        daemon_stats.frames_hello_total++;
        log_info("Agent connected: %s service=%s pid=%d uid=%d%s%s", p->id, p->hello.service, (int) p->pid,
                 (int) p->uid, p->parent_id[0] ? " parent=" : "", p->parent_id);
        send_welcome(c);
        return 1;
}

/* The machine's available memory, read at most every few seconds: it is the limit of
 * processes without a cgroup limit. */
static double host_mem_available(AgentServer *s) {
        uint64_t now = now_usec_monotonic();

        if (s->mem_available_at == 0 || now - s->mem_available_at > 5 * USEC_PER_SEC) {
                if (proc_mem_available("/proc", &s->mem_available) < 0)
                        s->mem_available = -1;
                s->mem_available_at = now;
        }
        return s->mem_available;
}

/* Run the process's leak detectors on a stored sample; a finding that opens, escalates or
 * closes gets one log line (the journal is where operators grep for leak history). */
/* The journal fields of a leak event: `journalctl MESSAGE_ID=<id>` finds every leak reported,
 * HEAPWATCH_SERVICE= / HEAPWATCH_PID= narrow it down (docs/operations.md). */
typedef struct LeakFields {
        char message_id[48], id[80], service[HW_SERVICE_MAX + 32], pid[32], signal[64], growth[64], verdict[48], ttl[64];
        const char *v[8];
} LeakFields;

static void leak_fields_format(LeakFields *lf, const Process *p, const Finding *f, const char *message_id) {
        snprintf(lf->message_id, sizeof lf->message_id, "MESSAGE_ID=%s", message_id);
        snprintf(lf->id, sizeof lf->id, "HEAPWATCH_PROCESS_ID=%s", p->id);
        snprintf(lf->service, sizeof lf->service, "HEAPWATCH_SERVICE=%s", p->hello.service);
        snprintf(lf->pid, sizeof lf->pid, "HEAPWATCH_PID=%d", (int) p->pid);
        snprintf(lf->signal, sizeof lf->signal, "HEAPWATCH_SIGNAL=%s", leak_signal_to_string(f->signal));
        snprintf(lf->growth, sizeof lf->growth, "HEAPWATCH_GROWTH_BYTES_PER_SECOND=%.6g", f->growth_bytes_per_second);
        snprintf(lf->verdict, sizeof lf->verdict, "HEAPWATCH_VERDICT=%s", leak_verdict_to_string(f->verdict));
        if (f->has_time_to_limit)
                snprintf(lf->ttl, sizeof lf->ttl, "HEAPWATCH_SECONDS_TO_LIMIT=%.0f", f->seconds_to_limit);
        else
                snprintf(lf->ttl, sizeof lf->ttl, "HEAPWATCH_SECONDS_TO_LIMIT=");
        lf->v[0] = lf->message_id;
        lf->v[1] = lf->id;
        lf->v[2] = lf->service;
        lf->v[3] = lf->pid;
        lf->v[4] = lf->signal;
        lf->v[5] = lf->growth;
        lf->v[6] = lf->verdict;
        lf->v[7] = lf->ttl;
}

/* Does the process still run (the same pid with the same start time, not a zombie)? A
 * connection lost without a GOODBYE may be an agent that reconnects. */
static bool process_still_runs(const Process *p) {
        return proc_still_runs(agent_server_proc_root, p->pid, p->start_time_ticks);
}

/* The connection of p ended (registry_detach() said how): its open leak finding closes -- the
 * process exited, was OOM-killed or stopped its agent (nothing watches it any more) -- unless
 * the connection was lost while the process still runs, whose agent reconnects. Otherwise the
 * finding stayed open, and the alerts on it firing, for the exited record's retention (1 h).
 * One log line, as for any close. */
static void leak_close(Process *p, double at) {
        LeakFields lf;

        if (!process_leaks_end(&p->leaks, at, p->exit_reason == EXIT_REASON_STOPPED))
                return;
        daemon_stats.leak_findings_closed_total++;
        leak_fields_format(&lf, p, &p->leaks.current, HEAPWATCH_MESSAGE_LEAK_CLOSED);
        log_struct(LOG_NOTICE, lf.v, ELEMENTSOF(lf.v), "Leak finding closed: %s (service %s, pid %d): the process %s.",
                   p->id, p->hello.service, (int) p->pid,
                   p->exit_reason == EXIT_REASON_STOPPED       ? "stopped its agent"
                   : p->exit_reason == EXIT_REASON_OOM_KILLED ? "was killed by the OOM killer"
                                                              : "exited");
}

static void leak_end(Process *p) {
        if (p->exit_reason == EXIT_REASON_CONNECTION_LOST && process_still_runs(p))
                return;
        leak_close(p, p->exited_at);
}

void agent_server_check_lost(AgentServer *s, double now) {
        for (size_t i = 0; i < registry_count(s->registry); i++) {
                Process *p = registry_at(s->registry, i);

                if (p->state == PROCESS_EXITED && p->exit_reason == EXIT_REASON_CONNECTION_LOST && p->leaks.current.open &&
                    !p->resume && !process_still_runs(p))
                        leak_close(p, now);
        }
}

void agent_server_leak_event(Process *p, LeakEvent event) {
        const Finding *f = &p->leaks.current;
        LeakFields lf;
        char limit[160] = "";
        double scale;

        switch (event) {
        case LEAK_EVENT_OPENED:
        case LEAK_EVENT_ESCALATED:
                daemon_stats.leak_findings_opened_total += event == LEAK_EVENT_OPENED;
                /* Bytes read best in MiB; blocks are counted. */
                scale = f->signal == LEAK_SIGNAL_RSS ? 3600.0 / (1024 * 1024) : 3600.0;
                leak_fields_format(&lf, p, f, HEAPWATCH_MESSAGE_LEAK_FOUND);
                /* one line per event (docs/detection.md step 11): the projection goes in it */
                if (f->has_time_to_limit)
                        snprintf(limit, sizeof limit, " At %.3g MiB/h the %s memory limit is reached in %.1f h (%.1f..%.1f h).",
                                 f->growth_bytes_per_second * 3600 / (1024 * 1024), limit_source_to_string(f->limit_source),
                                 f->seconds_to_limit / 3600, f->seconds_to_limit_low / 3600,
                                 f->seconds_to_limit_high / 3600);
                log_struct(LOG_NOTICE, lf.v, ELEMENTSOF(lf.v), "Leak %s: %s (service %s, pid %d): %s grows %.3g %s/h (95%% CI %.3g..%.3g), "
                           "p=%.2g, over the last %.0f s.%s",
                           event == LEAK_EVENT_OPENED ? (f->verdict == VERDICT_LEAK ? "found" : "suspected") : "confirmed",
                           p->id, p->hello.service, (int) p->pid, leak_signal_to_string(f->signal),
                           f->result.slope * scale, f->signal == LEAK_SIGNAL_RSS ? "MiB" : "blocks",
                           f->result.slope_low * scale, f->result.slope_high * scale, f->result.p_value,
                           f->result.horizon, limit);
                break;
        case LEAK_EVENT_CLOSED:
                daemon_stats.leak_findings_closed_total++;
                leak_fields_format(&lf, p, f, HEAPWATCH_MESSAGE_LEAK_CLOSED);
                log_struct(LOG_NOTICE, lf.v, ELEMENTSOF(lf.v), "Leak finding closed: %s (service %s, pid %d): no growth any more.", p->id,
                           p->hello.service, (int) p->pid);
                break;
        default:
                break;
        }
}

static void detect_leaks(AgentServer *s, Process *p, const HwSample *sample) {
        LeakEvent event;
        int r;

        /* Stored history is still being replayed into the detectors: queue behind it (the
         * replay reports what it does to the finding: persist_resume_step()). */
        if (p->resume) {
                (void) leak_resume_queue(p->resume, sample);
                return;
        }
        r = process_leaks_add_sample(&p->leaks, sample, host_mem_available(s), &event);
        if (r < 0) {
                if (ratelimit_below(&s->log_ratelimit))
                        log_warning_errno(r, "Leak detection failed for %s: %m", p->id);
                return;
        }
        agent_server_leak_event(p, event);
}

/* ---- Censuses and referrer chains (census.c, docs/protocol.md "Census") ---------------------- */

/* Send a small frame to the agent without ever waiting: only when the socket's send queue has
 * room to spare (the agent reads what we send at once; a full queue means it is stuck, and a
 * request can wait for the next occasion). A partial write would cut the stream, so the room is
 * checked first. Returns 0, -EAGAIN (no room: try later) or -errno. */
static int connection_send_small(Connection *c, const uint8_t *frame, size_t len) {
        int queued = 0, sndbuf = 0;
        socklen_t sl = sizeof sndbuf;
        ssize_t n;

        if (ioctl(c->fd, SIOCOUTQ, &queued) < 0 || getsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0)
                return -errno;
        if (queued < 0 || (size_t) queued + len * 4 > (size_t) sndbuf / 2)
                return -EAGAIN;
        n = send(c->fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        if ((size_t) n != len)
                return -EIO; /* cannot happen with the room checked; the caller drops the connection */
        return 0;
}

/* Ask the agent of p for a census or chains (census.c picks the id and the types). Returns 0,
 * -ENODATA (chains: nothing grows), -ENOTCONN (no agent attached), -EAGAIN, -ENOMEM. */
static int census_send(Process *p, CensusKind kind, double since, double now) {
        Connection *c = p->owner;
        _cleanup_free_ uint8_t *frame = NULL;
        CensusRequest req;
        size_t len;
        int r;

        if (!c || p->state != PROCESS_LIVE)
                return -ENOTCONN;
        r = process_census_ensure(&p->census);
        if (r < 0)
                return r;
        /* p->hello is the attached agent's, refreshed at every HELLO */
        process_census_set_holders_only(p->census, p->hello.holders_only);
        r = process_census_next_request(p->census, kind, since, now, &req);
        if (r < 0)
                return r;
        r = message_encode_request(&req, &frame, &len);
        if (r >= 0)
                r = connection_send_small(c, frame, len);
        if (r < 0) {
                process_census_request_failed(p->census);
                if (r == -EIO)
                        log_warning("Agent %s: a request frame was cut short; closing the connection.", p->id);
                return r;
        }
        daemon_stats.census_requests_total++;
        log_debug("Agent %s: %s request %u sent.", p->id, census_kind_to_string(kind), req.id);
        return 0;
}

int agent_server_request_census(Process *p, double now) {
        return census_send(p, CENSUS_KIND_CENSUS, process_leaks_open_since(&p->leaks), now);
}

/* After each sample: a census when a finding opens, then every --census-interval while it
 * stays open. */
static void census_schedule(Process *p) {
        double now = now_unix(), since = process_leaks_open_since(&p->leaks);

        if (process_census_due(p->census, since, now))
                (void) census_send(p, CENSUS_KIND_CENSUS, since, now);
}

/* The agent marks a stack sent once it is in a report it built (per connection, and again
 * after a loss it can see); a report lost here (dropped unread or out of order, or naming a
 * stack we do not have) would leave its sites unknown until the next connection. Ask it to send
 * its stacks again, at most every STACKS_ASK_INTERVAL_USEC; with no room on the socket, after
 * a later frame. Agents that predate RESEND_STACKS ignore it. */
static void stacks_ask(Connection *c, uint64_t now) {
        uint8_t frame[HW_FRAME_HEADER_SIZE];

        if (!c->stacks_lost || (c->stacks_asked_usec != 0 && now - c->stacks_asked_usec < STACKS_ASK_INTERVAL_USEC))
                return;
        hw_frame_header_pack(frame, HW_FRAME_RESEND_STACKS, 0);
        if (connection_send_small(c, frame, sizeof frame) < 0)
                return;
        c->stacks_lost = false;
        c->stacks_asked_usec = now;
        log_debug("Agent %s: asked to send its heap stacks again.", c->process->id);
}

static int handle_census(Connection *c) {
        _cleanup_free_ CensusReply *reply = NULL;
        char error[MESSAGE_ERROR_MAX] = "";
        Process *p = c->process;
        double now = now_unix();
        int r;

        reply = malloc(sizeof *reply);
        if (!reply)
                return connection_reject(c, REJECT_BAD_MESSAGE, "out of memory");
        r = message_decode_census(c->reader.payload, c->reader.payload_len, reply, error, sizeof error);
        if (r == -ENOMEM)
                return connection_reject(c, REJECT_BAD_MESSAGE, "out of memory");
        if (r < 0) {
                count_message_bound(r);
                return connection_reject(c, r == -EBADMSG ? REJECT_BAD_JSON : REJECT_BAD_MESSAGE, error);
        }
        daemon_stats.frames_census_total++;
        if (!p->census || process_census_ingest(p->census, reply, now) < 0) {
                /* not what we asked for (an old request, a reply after a timeout): harmless */
                daemon_stats.census_replies_unexpected_total++;
                return 1;
        }
        if (reply->kind == CENSUS_KIND_CENSUS && !reply->error[0])
                persist_census(c->server->registry, p);
        if (reply->error[0])
                log_info("Agent %s: %s request %u refused: %s", p->id, census_kind_to_string(reply->kind), reply->id,
                         reply->error);
        /* A census that shows growth is followed at once by the chains to the growing types. */
        if (reply->kind == CENSUS_KIND_CENSUS && !reply->error[0])
                (void) census_send(p, CENSUS_KIND_CHAINS, process_leaks_open_since(&p->leaks), now);
        return 1;
}

static int handle_sample(Connection *c, bool goodbye) {
        char error[MESSAGE_ERROR_MAX] = "";
        HwSample sample;
        HwHeapReport *heap = NULL;
        int r;

        r = message_decode_sample_heap(c->reader.payload, c->reader.payload_len, goodbye, &sample, &heap, error,
                                       sizeof error);
        if (r < 0) {
                count_message_bound(r);
                return connection_reject(c, r == -EBADMSG ? REJECT_BAD_JSON : REJECT_BAD_MESSAGE, error);
        }

        /* The agent stamps its samples with the clock the daemon reads, on the same host: one
         * stamped ahead of it is forged (or the clock stepped back in between). Stored, it would
         * outlive every retention pass (they delete what is older than a cutoff) and stop the
         * process's history from taking newer samples until its time came. */
        if (sample.time > now_unix() + SAMPLE_AHEAD_MAX) {
                hw_heap_report_free(heap);
                snprintf(error, sizeof error, "sample time %.0f is %.0f s ahead of the daemon's clock", sample.time,
                         sample.time - now_unix());
                return connection_reject(c, REJECT_BAD_MESSAGE, error);
        }

        if (goodbye) {
                daemon_stats.frames_goodbye_total++;
                c->goodbye = strcmp(sample.goodbye_reason, "stop") == 0 ? EXIT_REASON_STOPPED : EXIT_REASON_CLEAN;
        } else
                daemon_stats.frames_sample_total++;

        r = registry_add_sample(c->server->registry, c->process, &sample);
        if (r == -EINVAL) {
                /* Not newer than what we have (a clock step, a resent frame): keep the history
                 * monotonic, drop this one, keep the connection. */
                daemon_stats.frames_rejected_total[REJECT_OUT_OF_ORDER]++;
                if (heap && heap->n_stacks > 0)
                        c->stacks_lost = true;
        } else if (r >= 0) {
                /* the heap profile first: a finding opened by this sample names its sites */
                if (heap) {
                        uint64_t unknown = process_heap_unknown_sites_total(c->process->heap), after;
                        daemon_stats.heap_reports_total++;
                        if (process_heap_ingest(&c->process->heap, heap, sample.time) < 0) {
                                daemon_stats.heap_reports_dropped_total++;
                                c->stacks_lost = true;
                        }
                        after = process_heap_unknown_sites_total(c->process->heap);
                        if (after > unknown) { /* a new epoch starts the count afresh */
                                limit_hits_add(LIMIT_HEAP_SITES, after - unknown);
                                c->stacks_lost = true;
                        }
                }
                persist_sample(c->server->registry, c->process);
                detect_leaks(c->server, c->process, &sample);
                if (!goodbye)
                        census_schedule(c->process);
        }
        hw_heap_report_free(heap);
        if (!goodbye)
                stacks_ask(c, now_usec_monotonic());
        return 1;
}

/* Returns 1 to go on reading, 0 if the connection was closed (c is freed). */
static int handle_frame(Connection *c) {
        uint8_t type = c->reader.hdr.type;
        uint64_t now = now_usec_monotonic();

        c->last_frame_usec = now;
        /* The GOODBYE is an agent's last frame: anything after it is a client that uses the
         * GOODBYE's way past the rate limit (below). */
        if (c->process && c->goodbye != EXIT_REASON_NONE)
                return connection_reject(c, REJECT_UNEXPECTED, "a frame after GOODBYE");
        /* Over the rate: dropped before it costs a JSON parse. A GOODBYE always gets through
         * (it says how the process ended), and so does the HELLO (it is the first frame). */
        if (c->process && type != HW_FRAME_GOODBYE &&
            !token_bucket_take(&c->frames, c->server->limits.frames_per_second, c->server->limits.frames_burst, now)) {
                limit_hit(LIMIT_FRAME_RATE);
                if (type == HW_FRAME_SAMPLE) { /* dropped unread: it may have carried stacks */
                        c->stacks_lost = true;
                        stacks_ask(c, now);
                }
                return 1;
        }

        if (!c->process) {
                if (type != HW_FRAME_HELLO)
                        return connection_reject(c, REJECT_UNEXPECTED, "first frame is not HELLO");
                return handle_hello(c);
        }
        switch (type) {
        case HW_FRAME_SAMPLE:
                return handle_sample(c, false);
        case HW_FRAME_GOODBYE:
                return handle_sample(c, true);
        case HW_FRAME_CENSUS:
                return handle_census(c);
        case HW_FRAME_HELLO:
                return connection_reject(c, REJECT_UNEXPECTED, "second HELLO");
        default:
                if (type < 64) {
                        /* A newer agent's message we do not know yet: ignore it. */
                        daemon_stats.frames_unknown_total++;
                        return 1;
                }
                return connection_reject(c, REJECT_UNEXPECTED, "frame type of the daemon's direction");
        }
}

static int on_connection_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;
        uint8_t buf[65536];
        size_t budget = READ_BUDGET;

        while (budget > 0) {
                ssize_t n = recv(fd, buf, sizeof buf < budget ? sizeof buf : budget, MSG_DONTWAIT);
                size_t off = 0;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        log_debug_errno(errno, "Agent connection read failed: %m");
                        connection_free(c, EXIT_REASON_CONNECTION_LOST);
                        return 0;
                }
                if (n == 0) {
                        /* A partial frame at EOF is simply lost with the connection. */
                        connection_free(c, EXIT_REASON_CONNECTION_LOST);
                        return 0;
                }
                budget -= (size_t) n;
                daemon_stats.bytes_received_total += (uint64_t) n;

                while (off < (size_t) n) {
                        FrameRejectReason reason = REJECT_BAD_MAGIC;
                        size_t used = 0;
                        int r = frame_reader_push(&c->reader, buf + off, (size_t) n - off, &used, &reason);

                        off += used;
                        if (r == -ENOMEM) {
                                log_oom();
                                connection_free(c, EXIT_REASON_CONNECTION_LOST);
                                return 0;
                        }
                        if (r < 0) {
                                if (reason == REJECT_TOO_LARGE)
                                        limit_hit(LIMIT_FRAME_SIZE);
                                return connection_reject(c, reason, NULL);
                        }
                        if (r == FRAME_COMPLETE) {
                                if (handle_frame(c) == 0)
                                        return 0;
                                frame_reader_next(&c->reader);
                        }
                }
        }
        return 0;
}

static int on_hello_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Connection *c = userdata;
        limit_hit(LIMIT_HELLO_TIMEOUT);
        return connection_reject(c, REJECT_UNEXPECTED, "no HELLO in time");
}

static int on_accept_resume(sd_event_source *source, uint64_t usec, void *userdata) {
        AgentServer *s = userdata;

        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        return 0;
}

/* Out of descriptors, the connection waiting stays in the backlog and the level-triggered
 * listener fires again at once: the loop would spin on accept() (42 % of a CPU seen) while
 * nothing closes. Stop listening for a moment instead; agents wait in the backlog and retry. */
static void accept_back_off(AgentServer *s) {
        uint64_t now;
        int r;

        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (s->accept_pause) {
                r = sd_event_source_set_time(s->accept_pause, now + ACCEPT_BACK_OFF_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->accept_pause, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(s->event, &s->accept_pause, CLOCK_MONOTONIC, now + ACCEPT_BACK_OFF_USEC,
                                      USEC_PER_MSEC, on_accept_resume, s);
        /* no timer, no way back: keep listening (and spinning) rather than go deaf */
        if (r >= 0)
                (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
}

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        AgentServer *s = userdata;
        _cleanup_close_ int cfd = -1;
        socklen_t len = sizeof(struct ucred);
        Connection *c;
        uint64_t now;
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                int e = errno;

                if (e != EAGAIN && e != EINTR && ratelimit_below(&s->log_ratelimit))
                        log_warning_errno(e, "accept() on the agent socket failed: %m");
                if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
                        accept_back_off(s);
                return 0;
        }
        if (s->n_connections >= s->limits.max_connections) {
                daemon_stats.connections_refused_total++;
                limit_hit(LIMIT_AGENT_CONNECTIONS);
                if (ratelimit_below(&s->log_ratelimit))
                        log_warning("Refusing agent connection: %zu connections is the limit.",
                                    s->limits.max_connections);
                return 0;
        }

        c = calloc(1, sizeof *c);
        if (!c) {
                log_oom();
                return 0;
        }
        c->server = s;
        c->fd = -1;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0) {
                log_warning_errno(errno, "SO_PEERCRED failed, refusing agent connection: %m");
                free(c);
                return 0;
        }
        if (c->peer.pid <= 0) {
                /* The peer is in a pid namespace the daemon cannot see (the daemon runs in a
                 * container, the agent outside): its record would rest on a claim alone. */
                daemon_stats.frames_rejected_total[REJECT_IDENTITY]++;
                if (ratelimit_below(&s->log_ratelimit))
                        log_warning("Refusing agent connection from uid %d: the kernel gives no pid for it.",
                                    (int) c->peer.uid);
                free(c);
                return 0;
        }
        if (s->limits.max_connections_per_uid > 0 &&
            connections_of_uid(s, c->peer.uid) >= s->limits.max_connections_per_uid) {
                daemon_stats.connections_refused_total++;
                limit_hit(LIMIT_AGENT_CONNECTIONS_PER_UID);
                if (ratelimit_below(&s->log_ratelimit))
                        log_warning("Refusing agent connection from uid %d: %zu connections per user is the limit.",
                                    (int) c->peer.uid, s->limits.max_connections_per_uid);
                free(c);
                return 0;
        }
        frame_reader_init(&c->reader, s->limits.max_frame_payload);

        r = sd_event_add_io(s->event, &c->io_source, cfd, EPOLLIN | EPOLLRDHUP, on_connection_io, c);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch agent connection: %m");
                free(c);
                return 0;
        }
        c->fd = TAKE_FD(cfd);
        sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(s->event, &c->hello_timer, CLOCK_MONOTONIC, now + s->limits.hello_timeout_usec, 0,
                              on_hello_timeout, c);
        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;
        daemon_stats.connections_accepted_total++;
        daemon_stats.agents_connected++;
        if (r < 0) {
                log_warning_errno(r, "Failed to arm HELLO timer: %m");
                connection_free(c, EXIT_REASON_CONNECTION_LOST);
        }
        return 0;
}

/* Agents send only to a listener that is root, their own user, or the owner of a socket
 * directory nobody else can write (agent/transport.c listener_trusted(), docs/security.md): say
 * so at start when a daemon that is not root listens where agents of other users will refuse it
 * (they say nothing: it is their host's process). */
static void warn_if_agents_will_not_trust(const char *path) {
        char dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        char *slash;
        struct stat st;

        if (geteuid() == 0)
                return;
        snprintf(dir, sizeof dir, "%s", path);
        slash = strrchr(dir, '/');
        if (!slash)
                snprintf(dir, sizeof dir, ".");
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';
        if (stat(dir, &st) < 0)
                return;
        if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                log_warning("The agent socket %s is in %s, which %s: agents of other users will not send "
                            "to a listener that is not root there (docs/security.md, \"What the agent "
                            "trusts\"); use a directory of the daemon's own that only it can write.",
                            path, dir, st.st_uid != geteuid() ? "another user owns" : "others can write");
}

/* Bind a fresh listening socket at path. An existing socket file that nobody answers on is a
 * leftover of a crashed daemon and is replaced; one that answers belongs to a live daemon. */
static int bind_unix_socket(const char *path, unsigned mode, gid_t gid) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int r;

        if (strlen(path) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG, "Agent socket path too long: %s", path);
        strcpy(sa.sun_path, path);

        r = mkdir_parents(path, 0755); /* agents of every user must reach the socket */
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory of %s: %m", path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create agent socket: %m");

        if (lstat(path, &st) == 0) {
                _cleanup_close_ int probe = -1;
                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(EEXIST, "%s exists and is not a socket; refusing to replace it.", path);
                probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return log_error_errno(EADDRINUSE, "Another heapwatchd is listening on %s.", path);
                (void) unlink(path);
        }

        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return log_error_errno(errno, "Failed to bind agent socket %s: %m", path);
        if (chmod(path, mode) < 0)
                return log_error_errno(errno, "Failed to set the mode of %s: %m", path);
        if (gid != (gid_t) -1 && chown(path, (uid_t) -1, gid) < 0)
                return log_error_errno(errno, "Failed to give %s to group %d: %m", path, (int) gid);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Failed to listen on %s: %m", path);
        warn_if_agents_will_not_trust(path);
        return TAKE_FD(fd);
}

int agent_server_new(sd_event *e, const char *path, int listen_fd, unsigned socket_mode, Registry *reg,
                     const AgentServerLimits *limits, AgentServer **ret) {
        AgentServer *s;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        s->event = sd_event_ref(e);
        s->registry = reg;
        s->limits = *limits;
        s->listen_fd = -1;
        s->log_ratelimit = (RateLimit) RATELIMIT_INIT(10 * USEC_PER_SEC, 10);
        if (proc_boot_time("/proc", &s->boot_time) < 0)
                s->boot_time = 0;

        if (listen_fd >= 0) {
                s->listen_fd = listen_fd;
                (void) fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
        } else {
                r = bind_unix_socket(path, socket_mode, limits->socket_gid);
                if (r < 0) {
                        agent_server_free(s);
                        return r;
                }
                s->listen_fd = r;
                s->socket_path = strdup(path);
        }

        r = sd_event_add_io(e, &s->listen_source, s->listen_fd, EPOLLIN, on_accept, s);
        if (r < 0) {
                agent_server_free(s);
                return log_error_errno(r, "Failed to watch the agent socket: %m");
        }
        *ret = s;
        return 0;
}

AgentServer *agent_server_free(AgentServer *s) {
        if (!s)
                return NULL;
        while (s->connections)
                connection_free_at_stop(s->connections);
        sd_event_source_disable_unref(s->listen_source);
        sd_event_source_disable_unref(s->accept_pause);
        safe_close(s->listen_fd);
        if (s->socket_path) {
                (void) unlink(s->socket_path);
                free(s->socket_path);
        }
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

size_t agent_server_connections(const AgentServer *s) {
        return s->n_connections;
}
