/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "proc-util.h"

int proc_read_small_file(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -1;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        return 0;
}

int proc_parse_stat(const char *content, pid_t *ret_ppid, int64_t *ret_starttime_ticks) {
        return proc_parse_stat_state(content, NULL, ret_ppid, ret_starttime_ticks);
}

int proc_parse_stat_state(const char *content, char *ret_state, pid_t *ret_ppid, int64_t *ret_starttime_ticks) {
        const char *p = strrchr(content, ')'); /* comm may contain spaces and ')' itself */
        long long ppid = 0, start = 0;
        char state = 0;
        int field = 2;

        if (!p)
                return -EBADMSG;
        p++;
        /* Walk fields 3.. separated by single spaces. */
        while (*p) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        break;
                field++;
                if (field == 3)
                        state = *p;
                if (field == 4 || field == 22) {
                        char *end;
                        long long v;
                        errno = 0;
                        v = strtoll(p, &end, 10);
                        if (errno != 0 || end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
                                return -EBADMSG;
                        if (field == 4)
                                ppid = v;
                        else
                                start = v;
                }
                if (field == 22)
                        break;
                while (*p && *p != ' ')
                        p++;
        }
        if (field < 22 || ppid < 0 || start < 0)
                return -EBADMSG;
        if (ret_state)
                *ret_state = state;
        *ret_ppid = (pid_t) ppid;
        *ret_starttime_ticks = start;
        return 0;
}

bool proc_still_runs(const char *proc_root, pid_t pid, int64_t start_ticks) {
        char path[256], buf[1024], state;
        pid_t ppid;
        int64_t ticks;

        if (pid <= 0)
                return false;
        snprintf(path, sizeof path, "%s/%" PRIi64 "/stat", proc_root, (int64_t) pid);
        if (proc_read_small_file(path, buf, sizeof buf) < 0 || proc_parse_stat_state(buf, &state, &ppid, &ticks) < 0)
                return false;
        return ticks == start_ticks && state != 'Z' && state != 'X' && state != 'x';
}

int proc_read_stat(const char *proc_root, pid_t pid, pid_t *ret_ppid, int64_t *ret_starttime_ticks) {
        char path[256], buf[1024];
        int r;

        snprintf(path, sizeof path, "%s/%" PRIi64 "/stat", proc_root, (int64_t) pid);
        r = proc_read_small_file(path, buf, sizeof buf);
        if (r < 0)
                return r;
        return proc_parse_stat(buf, ret_ppid, ret_starttime_ticks);
}

int proc_boot_time(const char *proc_root, double *ret) {
        char path[256], buf[16384];
        const char *line;
        int r;

        snprintf(path, sizeof path, "%s/stat", proc_root);
        r = proc_read_small_file(path, buf, sizeof buf);
        if (r < 0)
                return r;
        line = strstr(buf, "\nbtime ");
        if (!line)
                return -EBADMSG;
        *ret = (double) strtoll(line + 7, NULL, 10);
        return 0;
}

int proc_mem_available(const char *proc_root, double *ret) {
        char path[256], buf[8192];
        const char *line;
        long long kib;
        int r;

        snprintf(path, sizeof path, "%s/meminfo", proc_root);
        r = proc_read_small_file(path, buf, sizeof buf);
        if (r < 0)
                return r;
        line = strstr(buf, "MemAvailable:");
        if (!line || sscanf(line + strlen("MemAvailable:"), "%lld", &kib) != 1 || kib < 0)
                return -EBADMSG;
        *ret = (double) kib * 1024.0;
        return 0;
}

/* Whether `controllers` (a comma-separated list from /proc/<pid>/cgroup) names `want`. */
static bool has_controller(const char *controllers, size_t n, const char *want) {
        size_t w = strlen(want);
        for (size_t i = 0; i + w <= n; ) {
                const char *comma = memchr(controllers + i, ',', n - i);
                size_t len = comma ? (size_t) (comma - controllers) - i : n - i;
                if (len == w && memcmp(controllers + i, want, w) == 0)
                        return true;
                i += len + 1;
        }
        return false;
}

int proc_oom_kill_file(const char *proc_root, const char *cgroup_root, pid_t pid, char *buf, size_t size) {
        char path[256], content[4096], candidate[1024];
        const char *line, *end;
        int r;

        snprintf(path, sizeof path, "%s/%" PRIi64 "/cgroup", proc_root, (int64_t) pid);
        r = proc_read_small_file(path, content, sizeof content);
        if (r < 0)
                return r;
        /* v2 first: that is where a modern system keeps memory; then a v1 memory hierarchy. */
        for (int pass = 0; pass < 2; pass++)
                for (line = content; line && *line; line = end ? end + 1 : NULL) {
                        const char *c1, *c2;
                        size_t len;

                        end = strchr(line, '\n');
                        len = end ? (size_t) (end - line) : strlen(line);
                        c1 = memchr(line, ':', len);
                        c2 = c1 ? memchr(c1 + 1, ':', len - (size_t) (c1 + 1 - line)) : NULL;
                        if (!c2 || c2[1] != '/')
                                continue;
                        if (pass == 0 && c2 == c1 + 1 && c1 == line + 1 && line[0] == '0')
                                r = snprintf(candidate, sizeof candidate, "%s%.*s/memory.events", cgroup_root,
                                             (int) (len - (size_t) (c2 + 1 - line)), c2 + 1);
                        else if (pass == 1 && has_controller(c1 + 1, (size_t) (c2 - c1 - 1), "memory"))
                                r = snprintf(candidate, sizeof candidate, "%s/memory%.*s/memory.oom_control", cgroup_root,
                                             (int) (len - (size_t) (c2 + 1 - line)), c2 + 1);
                        else
                                continue;
                        if (r < 0 || (size_t) r >= sizeof candidate)
                                return -ENAMETOOLONG;
                        /* "/" gives "<root>//memory.events": harmless, but keep it tidy. */
                        if (access(candidate, R_OK) < 0)
                                continue;
                        if (strlen(candidate) >= size)
                                return -ENAMETOOLONG;
                        memcpy(buf, candidate, strlen(candidate) + 1);
                        return 0;
                }
        return -ENOENT;
}

int oom_kill_read(const char *file, int64_t *ret) {
        char content[1024];
        const char *line;
        int r;

        r = proc_read_small_file(file, content, sizeof content);
        if (r < 0)
                return r;
        for (line = content; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, "oom_kill ", 9) == 0) {
                        char *e;
                        long long v = strtoll(line + 9, &e, 10);
                        if (e == line + 9 || v < 0 || (*e != '\n' && *e != '\0'))
                                return -EBADMSG;
                        *ret = v;
                        return 0;
                }
        return -EBADMSG;
}
