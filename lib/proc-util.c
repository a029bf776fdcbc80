/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "proc-util.h"

/* Read a small file fully into buf (NUL-terminated). */
static int read_small_file(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -1;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
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
        const char *p = strrchr(content, ')'); /* comm may contain spaces and ')' itself */
        long long ppid = 0, start = 0;
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
        *ret_ppid = (pid_t) ppid;
        *ret_starttime_ticks = start;
        return 0;
}

int proc_read_stat(const char *proc_root, pid_t pid, pid_t *ret_ppid, int64_t *ret_starttime_ticks) {
        char path[256], buf[1024];
        int r;

        snprintf(path, sizeof path, "%s/%" PRIi64 "/stat", proc_root, (int64_t) pid);
        r = read_small_file(path, buf, sizeof buf);
        if (r < 0)
                return r;
        return proc_parse_stat(buf, ret_ppid, ret_starttime_ticks);
}

int proc_boot_time(const char *proc_root, double *ret) {
        char path[256], buf[16384];
        const char *line;
        int r;

        snprintf(path, sizeof path, "%s/stat", proc_root);
        r = read_small_file(path, buf, sizeof buf);
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
        r = read_small_file(path, buf, sizeof buf);
        if (r < 0)
                return r;
        line = strstr(buf, "MemAvailable:");
        if (!line || sscanf(line + strlen("MemAvailable:"), "%lld", &kib) != 1 || kib < 0)
                return -EBADMSG;
        *ret = (double) kib * 1024.0;
        return 0;
}

int proc_read_cgroup(const char *proc_root, pid_t pid, char *buf, size_t size) {
        char path[256], content[4096];
        const char *line, *end;
        int r;

        snprintf(path, sizeof path, "%s/%" PRIi64 "/cgroup", proc_root, (int64_t) pid);
        r = read_small_file(path, content, sizeof content);
        if (r < 0)
                return r;
        /* One line per hierarchy; cgroup v2 is the one with id 0 and no controllers. */
        for (line = content; line && *line; line = end ? end + 1 : NULL) {
                end = strchr(line, '\n');
                if (strncmp(line, "0::", 3) == 0) {
                        size_t n = end ? (size_t) (end - line - 3) : strlen(line + 3);
                        if (n == 0 || line[3] != '/')
                                return -ENODATA;
                        if (n >= size)
                                return -ENAMETOOLONG;
                        memcpy(buf, line + 3, n);
                        buf[n] = '\0';
                        return 0;
                }
        }
        return -ENODATA;
}

int cgroup_read_oom_kills(const char *cgroup_root, const char *path, int64_t *ret) {
        char file[1024], content[1024];
        const char *line;
        int r;

        if (snprintf(file, sizeof file, "%s%s/memory.events", cgroup_root, path) >= (int) sizeof file)
                return -ENAMETOOLONG;
        r = read_small_file(file, content, sizeof content);
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
