/* SPDX-License-Identifier: MIT */
/*
 * Reading process identity from procfs: the daemon takes a peer's start time and parent from
 * the kernel rather than from what the agent claims. proc_root is "/proc" except in tests.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* Parse /proc/<pid>/stat: ppid (field 4) and starttime in clock ticks since boot (field 22).
 * Returns 0, -ENOENT (no such process), -EBADMSG (unparsable) or another -errno. */
int proc_read_stat(const char *proc_root, pid_t pid, pid_t *ret_ppid, int64_t *ret_starttime_ticks);

/* Parse the content of a stat file (exposed for tests). */
int proc_parse_stat(const char *content, pid_t *ret_ppid, int64_t *ret_starttime_ticks);

/* Boot time as Unix seconds, from the "btime" line of /proc/stat. */
int proc_boot_time(const char *proc_root, double *ret);

/* The machine's MemAvailable from /proc/meminfo, in bytes. */
int proc_mem_available(const char *proc_root, double *ret);
