/* SPDX-License-Identifier: MIT */
/*
 * heapwatchd's few calls into libsystemd outside the event loop, behind tiny wrappers (the shape
 * of Knot's knotd/systemd.c) so callers carry no #ifdef and tests can read one file to see what
 * the daemon tells the service manager: readiness, reload, stopping and status notifications
 * (sd_notify; no-ops without $NOTIFY_SOCKET), the socket-activated listeners, and the journal.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* The fixed MESSAGE_ID of leak events (journalctl MESSAGE_ID=...; docs/operations.md). */
#define HEAPWATCH_MESSAGE_LEAK_FOUND "5e1c3b7a9d2f4c60a8e71b04d93f6a2c"
#define HEAPWATCH_MESSAGE_LEAK_CLOSED "b7d04e2a6c9f41d38e5a20f17c6b9d41"

/* READY=1 with a status line. */
void sd_util_notify_ready(const char *status);
/* RELOADING=1 and MONOTONIC_USEC=now (Type=notify-reload). */
void sd_util_notify_reloading(void);
void sd_util_notify_stopping(void);
void sd_util_notify_status(const char *format, ...) _printf_(1, 2);

/* The socket-activated listeners (sd_listen_fds_with_names): the first listening Unix stream
 * socket not named "http" is the agent socket (FileDescriptorName=agent), the first listening
 * inet stream socket is HTTP (named http, or sharing heapwatchd.socket's name). -1 where none
 * was passed. Others are closed and logged, except one named "agent" or "http" that is not a
 * listening socket of that kind: -EINVAL, logged (binding our own socket instead would replace
 * the socket unit's file, and nothing could connect while the daemon is down). */
int sd_util_listen_fds(int *ret_agent_fd, int *ret_http_fd);

/* True when stderr is connected to the journal (JOURNAL_STREAM names stderr's device and inode,
 * the check systemd's own tools do) and journald's socket is there; then log lines go to the
 * journal natively, with fields. */
bool sd_util_stderr_is_journal(void);
/* Route log.c's output to the journal (sd_journal_send with PRIORITY, CODE_*, ERRNO and the
 * message's own fields). */
void sd_util_log_to_journal(void);
