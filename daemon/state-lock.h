/* SPDX-License-Identifier: MIT */
/*
 * One heapwatchd per state directory. Two daemons on one history.db would both write it and
 * both run its housekeeping, and a second one refused later at the agent socket had already
 * restored the first one's live processes, and wrote them back as ended when it exited. So
 * the daemon takes an exclusive flock(2) on <state-dir>/heapwatchd.lock before it opens the
 * store, and holds it for its life: the kernel lets go of it however the daemon exits (a
 * SIGKILL leaves no stale lock). The file holds the holder's pid, for the error message.
 */
#pragma once

#include <sys/types.h>

#define STATE_LOCK_FILE_NAME "heapwatchd.lock"

/* Creates dir (0750) if needed. Returns 0 and the locked fd in *ret_fd; -EBUSY when another
 * process holds the lock (its pid in *ret_holder, 0 if unknown); another -errno when the file
 * cannot be made or locked (a read-only directory: the store cannot write there either). */
int state_dir_lock(const char *dir, int *ret_fd, pid_t *ret_holder);
