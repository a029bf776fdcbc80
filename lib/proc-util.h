/* SPDX-License-Identifier: MIT */
/*
 * Reading process identity from procfs: the daemon takes a peer's start time and parent from
 * the kernel rather than from what the agent claims. proc_root is "/proc" except in tests.
 */
#pragma once

#include <stdint.h>
#include <stddef.h>
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

/* The cgroup v2 path of a process ("/system.slice/x.service") from <proc_root>/<pid>/cgroup
 * (the "0::" line), into buf[size]. Returns 0, -ENOENT, -ENODATA (no v2 line), -ENAMETOOLONG. */
int proc_read_cgroup(const char *proc_root, pid_t pid, char *buf, size_t size);

/* The oom_kill count of <cgroup_root><path>/memory.events. Returns 0, -ENOENT, -EBADMSG. */
int cgroup_read_oom_kills(const char *cgroup_root, const char *path, int64_t *ret);
