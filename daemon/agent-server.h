/* SPDX-License-Identifier: MIT */
/*
 * The agent socket: accepts agent connections on a Unix stream socket from an sd-event loop,
 * reassembles and validates their frames, and files what they say into the Registry. A peer's
 * identity comes from the kernel (SO_PEERCRED, /proc/<pid>/stat), never from its claims.
 * A connection that sends anything malformed is logged (rate-limited), counted and closed;
 * nothing already stored is touched. A HELLO whose pid contradicts the kernel's view (NSpid), or
 * that names another uid's record, is refused; connections per uid, frames per second, the HELLO
 * and idle deadlines are bounded (docs/security.md).
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "registry.h"

typedef struct AgentServerLimits {
        size_t max_connections;   /* concurrent agent connections */
        size_t max_frame_payload; /* bytes, <= HW_FRAME_MAX_PAYLOAD */
        uint64_t hello_timeout_usec; /* a connection must say HELLO within this */
        /* docs/security.md: */
        size_t max_connections_per_uid; /* 0: no per-uid bound */
        double frames_per_second;       /* per connection, token bucket; 0: unlimited */
        double frames_burst;
        uint64_t idle_timeout_usec;     /* no complete frame for this long: closed (at least 3 intervals) */
        gid_t socket_gid;               /* group of the socket file we create; (gid_t) -1: unchanged */
} AgentServerLimits;

typedef struct AgentServer AgentServer;

/* Listen on `path` (creating its directory, replacing a stale socket but never a live one), or
 * adopt `listen_fd` (>= 0, socket activation) as is. socket_mode: permissions of the socket
 * file. Returns 0 and *ret, or -errno (logged). */
int agent_server_new(sd_event *e, const char *path, int listen_fd, unsigned socket_mode, Registry *reg,
                     const AgentServerLimits *limits, AgentServer **ret);
/* Closes every connection (their processes are marked exited, connection lost) and the
 * listener; removes the socket file it created. Accepts NULL. */
AgentServer *agent_server_free(AgentServer *s);

/* Close the open findings of processes whose connection was lost while they still ran and that
 * have ended since (nothing else would: their finding stayed open, and its alerts firing, for
 * the exited record's retention). Called periodically. */
void agent_server_check_lost(AgentServer *s, double now);

/* Report what a sample did to p's finding: one log line (with the time to the limit) and the
 * daemon's counters, for an event opened, confirmed or closed; nothing for none. */
void agent_server_leak_event(Process *p, LeakEvent event);

size_t agent_server_connections(const AgentServer *s);

/* Where the daemon reads /proc/<pid>/status and cgroup (tests may point it at a fake tree). */
extern const char *agent_server_proc_root;

/* Ask the agent of a live process for an object census now (POST /api/v1/processes/{id}/census);
 * its reply, and the chains to the growing types that follow it, land in p->census. Returns 0,
 * -ENOTCONN (no agent attached), -EAGAIN (its socket is full: later), -ENOMEM. */
int agent_server_request_census(Process *p, double now);
