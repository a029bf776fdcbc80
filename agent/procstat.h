/* SPDX-License-Identifier: MIT */
/*
 * What the kernel says about this process: memory and thread figures from /proc/self/status,
 * identity (pid, ppid, start time) from /proc/self/stat and /proc/stat, the command line from
 * /proc/self/cmdline, and the cgroup's memory use and limit from /proc/self/cgroup and
 * /sys/fs/cgroup. Plain C, no Python, no logging; safe to call without the GIL from any thread.
 *
 * Every function takes `root`, the directory that stands for "/" (NULL or "" for the real
 * root), so tests can point it at a fake tree: "<root>/proc/self/status" and so on.
 */
#pragma once

#include <stdint.h>

#include "agent-sample.h"

struct hw_procstat_identity {
        int64_t pid;
        int64_t ppid;
        int64_t start_time_ticks; /* field 22 of /proc/self/stat: clock ticks since boot */
        double start_time;        /* Unix seconds: btime + ticks / CLK_TCK; -1 when btime unknown */
};

/* Read pid, ppid and start time. Returns 0, or -errno (nothing written on failure). */
int hw_procstat_read_identity(const char *root, struct hw_procstat_identity *ret);

/* Read VmRSS, VmHWM, VmSize and Threads. Members the file lacks are set to -1.
 * Returns 0, or -errno when the file cannot be read (then *ret is untouched). */
int hw_procstat_read_process(const char *root, struct hw_agent_process *ret);

/* Find this process's cgroup and read its memory use and limit: cgroup v2 (the "0::" line,
 * <root>/sys/fs/cgroup<path>/memory.current and memory.max, also tried under
 * /sys/fs/cgroup/unified for the hybrid layout), else cgroup v1 (the "memory" controller line,
 * memory.usage_in_bytes and memory.limit_in_bytes under /sys/fs/cgroup/memory). A limit of
 * "max" (or v1's "unlimited" page-counter maximum) becomes memory_max_bytes = -1.
 * Returns 0 and ret->present = true, or -errno (-ENOENT: no readable cgroup memory figures)
 * with ret->present = false. */
int hw_procstat_read_cgroup(const char *root, struct hw_agent_cgroup *ret);

/* Append the entries of /proc/self/cmdline to id->argv (at most HW_AGENT_ARGV_MAX).
 * Returns the number of entries added, or -errno. */
int hw_procstat_read_cmdline(const char *root, struct hw_agent_identity *id);
