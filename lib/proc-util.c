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
