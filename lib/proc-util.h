/* SPDX-License-Identifier: MIT */
/*
 * Reading process identity from procfs: the daemon takes a peer's start time and parent from
 * the kernel rather than from what the agent claims. proc_root is "/proc" except in tests.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* Read a small file (a /proc or cgroup file) whole into buf, NUL-terminated, at most size - 1
 * bytes (the rest is cut off). 0 or -errno; buf is untouched only when open() fails. */
int proc_read_small_file(const char *path, char *buf, size_t size);

/* Parse /proc/<pid>/stat: ppid (field 4) and starttime in clock ticks since boot (field 22).
 * Returns 0, -ENOENT (no such process), -EBADMSG (unparsable) or another -errno. */
int proc_read_stat(const char *proc_root, pid_t pid, pid_t *ret_ppid, int64_t *ret_starttime_ticks);

/* Parse the content of a stat file (exposed for tests). */
int proc_parse_stat(const char *content, pid_t *ret_ppid, int64_t *ret_starttime_ticks);

/* The same with the state (field 3: R, S, D, Z for a zombie, X for dead...); ret_state may be NULL. */
int proc_parse_stat_state(const char *content, char *ret_state, pid_t *ret_ppid, int64_t *ret_starttime_ticks);

/* Whether the process pid that started at start_ticks still runs: there, the same start time,
 * and not a zombie. A killed process is a zombie until its parent reaps it, and its agent's
 * connection closes before that: taken for a running one, its leak finding never closed. */
bool proc_still_runs(const char *proc_root, pid_t pid, int64_t start_ticks);

/* Boot time as Unix seconds, from the "btime" line of /proc/stat. */
int proc_boot_time(const char *proc_root, double *ret);

/* The machine's MemAvailable from /proc/meminfo, in bytes. */
int proc_mem_available(const char *proc_root, double *ret);

/* The file that counts OOM kills in the memory cgroup of a process, into buf[size]:
 * <cgroup_root><path>/memory.events for cgroup v2 (the "0::" line of <proc_root>/<pid>/cgroup),
 * else <cgroup_root>/memory<path>/memory.oom_control for a v1 memory hierarchy. Both have an
 * "oom_kill N" line. Returns 0, -ENOENT (no process, no such file), -ENAMETOOLONG. */
int proc_oom_kill_file(const char *proc_root, const char *cgroup_root, pid_t pid, char *buf, size_t size);

/* The "oom_kill N" count of such a file. Returns 0, -ENOENT, -EBADMSG. */
int oom_kill_read(const char *file, int64_t *ret);
