/* SPDX-License-Identifier: MIT */
/*
 * The daemon's open-file limit. Every agent connection and every HTTP client holds a file
 * descriptor, so the default --max-connections (1024) alone exceeds the soft RLIMIT_NOFILE a
 * systemd service starts with (1024; the hard limit is 524288 since systemd 240, which expects
 * programs that need more to raise their own soft limit, as Redis does for maxclients). Without
 * it accept() fails with EMFILE long before the connection limit the operator configured.
 */
#pragma once

#include <stdint.h>

/* Descriptors the daemon holds besides agent and HTTP connections: listeners, the event loop's
 * epoll/signal/timer fds, MHD's epoll fd, SQLite's database, WAL and shm files and the
 * checkpoint thread's connection, /proc and cgroup files read in passing. Generous on purpose. */
#define FD_LIMIT_RESERVE 64u

/* The soft limit to ask for: `needed`, capped by the hard limit, never below the current soft
 * limit (a limit raised by the operator stays). Pure; exposed for tests. */
uint64_t fd_limit_target(uint64_t soft, uint64_t hard, uint64_t needed);

/* The agent connections that fit in an open-file limit of `limit` beside `http_connections`
 * HTTP clients and the reserve: at most `max_connections`, at least 1. Agents beyond it are
 * refused at accept (counted), not left to run the process out of descriptors, which would
 * starve HTTP (libmicrohttpd then busy-waits in accept() and takes no client). */
uint64_t fd_limit_agent_connections(uint64_t limit, uint64_t max_connections, uint64_t http_connections);

/* Raise the soft RLIMIT_NOFILE towards `needed` (fd_limit_target()). Returns the soft limit in
 * force afterwards (>= 0; below `needed` when the hard limit is lower), or -errno if the limit
 * could not be read. Does not log. */
int64_t fd_limit_raise(uint64_t needed);
