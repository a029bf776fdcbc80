/* SPDX-License-Identifier: MIT */
/*
 * Directories made on demand: the agent socket's (/run/heapwatch, $XDG_RUNTIME_DIR/heapwatch)
 * and the state directory (/var/lib/heapwatch, $XDG_STATE_HOME/heapwatch or
 * ~/.local/state/heapwatch, whose parents a fresh account does not have).
 */
#pragma once

#include <sys/types.h>

/* Make the missing directories above path (not path itself) with mode. 0 or -errno. */
int mkdir_parents(const char *path, mode_t mode);

/* Make directory path with mode, and its missing parents with parents_mode; an existing path
 * is fine. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode, mode_t parents_mode);
