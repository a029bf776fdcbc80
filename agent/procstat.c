/* SPDX-License-Identifier: MIT */
/*
 * Reading /proc and /sys for the agent (see procstat.h). Files are read with open/read into
 * bounded stack buffers: no stdio (no hidden locks or allocations), no logging. Called once per
 * sample from the sampler thread without the GIL, so a slow /proc costs the host nothing.
 */
#include "agent-util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

/* Deepest cgroup nesting we walk looking for the tightest memory limit. */
#define CGROUP_MAX_DEPTH 32
/* cgroup v1 reports "no limit" as the page counter's maximum (LONG_MAX rounded down to a page);
 * anything this large is no limit in practice. */
#define CGROUP_V1_UNLIMITED (INT64_C(1) << 62)

static int build_path(char *buf, size_t size, const char *root, const char *rel) {
        int n = snprintf(buf, size, "%s%s", root ? root : "", rel);

        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

/* Read a whole small file (at most size - 1 bytes; the rest is cut) and NUL-terminate it. */
static int read_file(const char *path, char *buf, size_t size, size_t *ret_len) {
        HW_CLEANUP_CLOSE int fd = -1;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        while (len < size - 1) {
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return 0;
}

static int read_rel_file(const char *root, const char *rel, char *buf, size_t size, size_t *ret_len) {
        char path[PATH_MAX];
        int r = build_path(path, sizeof(path), root, rel);

        if (r < 0)
                return r;
        return read_file(path, buf, size, ret_len);
}

/* Parse a decimal int64 that may be followed by whitespace only. */
static int parse_int64(const char *s, int64_t *ret) {
        char *end;
        long long v;

        while (*s == ' ' || *s == '\t')
                s++;
        if (!isdigit((unsigned char) *s) && *s != '-')
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s)
                return -EINVAL;
        while (*end == ' ' || *end == '\t' || *end == '\n')
                end++;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Find "Key:" at the start of a line of /proc/self/status and parse "<n> kB" or "<n>". */
static int64_t status_field(const char *text, const char *key, bool kib) {
        size_t klen = strlen(key);
        const char *p = text;

        while (p && *p) {
                if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
                        char *end;
                        long long v;

                        errno = 0;
                        v = strtoll(p + klen + 1, &end, 10);
                        if (errno != 0 || end == p + klen + 1 || v < 0)
                                return -1;
                        if (kib) {
                                if (v > INT64_MAX / 1024)
                                        return -1;
                                v *= 1024;
                        }
                        return v;
                }
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return -1;
}

int hw_procstat_read_process(const char *root, struct hw_agent_process *ret) {
        char buf[8192];
        int r;

        r = read_rel_file(root, "/proc/self/status", buf, sizeof(buf), NULL);
        if (r < 0)
                return r;
        ret->rss_bytes = status_field(buf, "VmRSS", true);
        ret->rss_peak_bytes = status_field(buf, "VmHWM", true);
        ret->vm_bytes = status_field(buf, "VmSize", true);
        ret->threads = status_field(buf, "Threads", false);
        return 0;
}

static int read_btime(const char *root, int64_t *ret) {
        char buf[16384];
        const char *p;
        int r;

        /* btime sits after the per-CPU lines; 16 KiB covers a few dozen CPUs. On machines with
         * more, it may be cut off: then start_time is reported as unknown. */
        r = read_rel_file(root, "/proc/stat", buf, sizeof(buf), NULL);
        if (r < 0)
                return r;
        for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                if (strncmp(p, "btime ", 6) == 0) {
                        char *end;
                        long long v;

                        errno = 0;
                        v = strtoll(p + 6, &end, 10);
                        if (errno != 0 || end == p + 6 || v <= 0)
                                return -EINVAL;
                        *ret = v;
                        return 0;
                }
        }
        return -ENOENT;
}

int hw_procstat_read_identity(const char *root, struct hw_procstat_identity *ret) {
        char buf[2048];
        const char *p;
        char *end;
        long long pid, ppid = -1, ticks = -1;
        int64_t btime;
        long hz;
        int r;

        r = read_rel_file(root, "/proc/self/stat", buf, sizeof(buf), NULL);
        if (r < 0)
                return r;

        errno = 0;
        pid = strtoll(buf, &end, 10);
        if (errno != 0 || end == buf || pid <= 0)
                return -EINVAL;

        /* comm (field 2) is in parentheses and may itself contain spaces and ')': the fields
         * we want follow the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EINVAL;
        p++;
        /* Fields after comm: 3 state, 4 ppid, ..., 22 starttime. */
        for (int field = 3; field <= 22; field++) {
                while (*p == ' ')
                        p++;
                if (*p == '\0' || *p == '\n')
                        return -EINVAL;
                if (field == 4 || field == 22) {
                        errno = 0;
                        long long v = strtoll(p, &end, 10);
                        if (errno != 0 || end == p || v < 0)
                                return -EINVAL;
                        if (field == 4)
                                ppid = v;
                        else
                                ticks = v;
                }
                while (*p && *p != ' ' && *p != '\n')
                        p++;
        }

        ret->pid = pid;
        ret->ppid = ppid;
        ret->start_time_ticks = ticks;
        hz = sysconf(_SC_CLK_TCK);
        if (hz > 0 && read_btime(root, &btime) >= 0)
                ret->start_time = (double) btime + (double) ticks / (double) hz;
        else
                ret->start_time = -1;
        return 0;
}

int hw_procstat_read_cmdline(const char *root, struct hw_agent_identity *id) {
        char path[PATH_MAX];
        char chunk[4096];
        char arg[HW_AGENT_ARG_MAX + 1];
        size_t arg_len = 0;
        bool in_arg = false;
        int added = 0, r;
        HW_CLEANUP_CLOSE int fd = -1;

        r = build_path(path, sizeof(path), root, "/proc/self/cmdline");
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        /* Stream it: entries may be long, only the first HW_AGENT_ARG_MAX bytes of each and the
         * first HW_AGENT_ARGV_MAX entries are kept, so memory stays bounded. */
        while (id->argc < HW_AGENT_ARGV_MAX) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                for (ssize_t i = 0; i < n && id->argc < HW_AGENT_ARGV_MAX; i++) {
                        if (chunk[i] == '\0') {
                                r = hw_agent_identity_add_arg(id, arg, arg_len);
                                if (r < 0)
                                        return r;
                                added++;
                                arg_len = 0;
                                in_arg = false;
                        } else {
                                in_arg = true;
                                if (arg_len < HW_AGENT_ARG_MAX)
                                        arg[arg_len++] = chunk[i];
                        }
                }
        }
        if (in_arg && id->argc < HW_AGENT_ARGV_MAX) {
                /* A process that rewrote its title may leave no final NUL. */
                r = hw_agent_identity_add_arg(id, arg, arg_len);
                if (r < 0)
                        return r;
                added++;
        }
        return added;
}

/* Find the line of /proc/self/cgroup for cgroup v2 ("0::/path") or, when v2 is false, the v1
 * line whose controller list names "memory". Writes the path into ret (NUL-terminated). */
static int cgroup_find_path(const char *text, bool v2, char *ret, size_t size) {
        const char *line = text;

        while (line && *line) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t) (eol - line) : strlen(line);
                const char *c1 = memchr(line, ':', len);
                const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t) (c1 + 1 - line)) : NULL;

                if (c1 && c2) {
                        const char *ctrl = c1 + 1;
                        size_t ctrl_len = (size_t) (c2 - ctrl);
                        bool match = false;

                        if (v2)
                                match = c1 - line == 1 && line[0] == '0' && ctrl_len == 0;
                        else {
                                /* comma-separated controllers, e.g. "memory" or "cpu,memory" */
                                const char *q = ctrl;
                                while (q < c2 && !match) {
                                        const char *comma = memchr(q, ',', (size_t) (c2 - q));
                                        const char *tok_end = comma ? comma : c2;
                                        match = (size_t) (tok_end - q) == 6 && memcmp(q, "memory", 6) == 0;
                                        q = tok_end + 1;
                                }
                        }
                        if (match) {
                                size_t plen = len - (size_t) (c2 + 1 - line);
                                if (plen == 0 || c2[1] != '/')
                                        return -EINVAL;
                                if (plen >= size)
                                        return -ENAMETOOLONG;
                                memcpy(ret, c2 + 1, plen);
                                ret[plen] = '\0';
                                return 0;
                        }
                }
                line = eol ? eol + 1 : NULL;
        }
        return -ENOENT;
}

/* Read one cgroup file holding a number, or "max" (then *ret = -1). */
static int cgroup_read_value(const char *dir, const char *file, int64_t *ret) {
        char path[PATH_MAX];
        char buf[64];
        int64_t v;
        int n, r;

        n = snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (n < 0 || (size_t) n >= sizeof(path))
                return -ENAMETOOLONG;
        r = read_file(path, buf, sizeof(buf), NULL);
        if (r < 0)
                return r;
        if (strncmp(buf, "max", 3) == 0 && (buf[3] == '\n' || buf[3] == '\0')) {
                *ret = -1;
                return 0;
        }
        r = parse_int64(buf, &v);
        if (r < 0)
                return r;
        if (v < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* The file names of one cgroup layout. */
struct cgroup_files {
        const char *current;  /* usage, page cache included */
        const char *max;      /* the limit */
        const char *inactive; /* the memory.stat key of inactive page cache */
        bool v1;
};

/* The value of `key` in a memory.stat text ("key value" lines), or -1. */
static int64_t memory_stat_value(const char *text, const char *key) {
        size_t klen = strlen(key);

        for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                int64_t v;

                if (strncmp(line, key, klen) == 0 && line[klen] == ' ' && parse_int64(line + klen + 1, &v) >= 0)
                        return v >= 0 ? v : -1;
        }
        return -1;
}

/* What the cgroup at dir uses, less the page cache the kernel reclaims before it kills
 * (inactive_file, as the kubelet's working set): a service that reads files keeps memory.current
 * near its limit with cache alone. -1 when its usage cannot be read. */
static int64_t cgroup_working_set(const char *dir, const struct cgroup_files *files) {
        char path[PATH_MAX], text[8192];
        int64_t current, inactive = -1;
        int n;

        if (cgroup_read_value(dir, files->current, &current) < 0 || current < 0)
                return -1;
        n = snprintf(path, sizeof(path), "%s/memory.stat", dir);
        if (n > 0 && (size_t) n < sizeof(path) && read_file(path, text, sizeof(text), NULL) >= 0)
                inactive = memory_stat_value(text, files->inactive);
        return inactive > 0 && inactive < current ? current - inactive : current;
}

/* The limit that binds: of the cgroup at dir and its ancestors up to (not including) the mount
 * root `top` (a service's limit is often set on its slice), the one with the least room left,
 * its working set counted against it -- the slice's usage includes its other services. -1 and
 * -1 when none is set. */
static void cgroup_binding_limit(char *dir, size_t top_len, const struct cgroup_files *files, int64_t *ret_max,
                                 int64_t *ret_usage) {
        size_t len = strlen(dir);

        *ret_max = *ret_usage = -1;
        for (int depth = 0; depth < CGROUP_MAX_DEPTH && len > top_len; depth++) {
                int64_t v, used;

                dir[len] = '\0';
                if (cgroup_read_value(dir, files->max, &v) >= 0 && !(files->v1 && v >= CGROUP_V1_UNLIMITED) && v >= 0) {
                        used = cgroup_working_set(dir, files);
                        if (*ret_max < 0 ||
                            (used >= 0 && *ret_usage >= 0 ? v - used < *ret_max - *ret_usage : v < *ret_max)) {
                                *ret_max = v;
                                *ret_usage = used;
                        }
                }
                /* up one level */
                while (len > top_len && dir[len - 1] != '/')
                        len--;
                if (len > top_len)
                        len--; /* drop the '/' */
        }
}

static int cgroup_try(const char *root, const char *mount, const char *cgpath, const char *report_path,
                      const struct cgroup_files *files, struct hw_agent_cgroup *ret) {
        char dir[PATH_MAX];
        size_t top_len;
        int64_t current;
        int n, r;

        n = snprintf(dir, sizeof(dir), "%s%s", root ? root : "", mount);
        if (n < 0 || (size_t) n >= sizeof(dir))
                return -ENAMETOOLONG;
        top_len = (size_t) n;
        if (strcmp(cgpath, "/") != 0) {
                n = snprintf(dir + top_len, sizeof(dir) - top_len, "%s", cgpath);
                if (n < 0 || (size_t) n >= sizeof(dir) - top_len)
                        return -ENAMETOOLONG;
        }

        r = cgroup_read_value(dir, files->current, &current);
        if (r < 0)
                return r;
        if (current < 0)
                return -EINVAL;

        ret->memory_current_bytes = current;
        if (strlen(dir) == top_len) {
                /* The mount root itself (e.g. inside a container with its own cgroup namespace):
                 * its limit files, when present, are the container's. */
                int64_t v;
                ret->memory_max_bytes = ret->limit_usage_bytes = -1;
                if (cgroup_read_value(dir, files->max, &v) >= 0 && v >= 0 && !(files->v1 && v >= CGROUP_V1_UNLIMITED)) {
                        ret->memory_max_bytes = v;
                        ret->limit_usage_bytes = cgroup_working_set(dir, files);
                }
        } else
                cgroup_binding_limit(dir, top_len, files, &ret->memory_max_bytes, &ret->limit_usage_bytes);

        /* The reported path is bounded; the files were read with the full one. */
        snprintf(ret->path, sizeof(ret->path), "%s", report_path);
        ret->present = true;
        return 0;
}

int hw_procstat_read_cgroup(const char *root, struct hw_agent_cgroup *ret) {
        char buf[4096];
        char path[PATH_MAX];
        int r;

        ret->present = false;
        r = read_rel_file(root, "/proc/self/cgroup", buf, sizeof(buf), NULL);
        if (r < 0)
                return r;

        /* For each layout: the cgroup's own directory under the mount, else the mount root,
         * which is the process's own cgroup inside a container without a cgroup namespace
         * (there /proc/self/cgroup names the host's path). */
        if (cgroup_find_path(buf, true, path, sizeof(path)) >= 0) {
                static const char *const mounts[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
                static const struct cgroup_files v2 = { "memory.current", "memory.max", "inactive_file", false };
                for (size_t i = 0; i < HW_ELEMENTSOF(mounts); i++)
                        if (cgroup_try(root, mounts[i], path, path, &v2, ret) >= 0 ||
                            (strcmp(path, "/") != 0 && cgroup_try(root, mounts[i], "/", path, &v2, ret) >= 0))
                                return 0;
        }
        if (cgroup_find_path(buf, false, path, sizeof(path)) >= 0) {
                static const struct cgroup_files v1 = { "memory.usage_in_bytes", "memory.limit_in_bytes",
                                                        "total_inactive_file", true };
                if (cgroup_try(root, "/sys/fs/cgroup/memory", path, path, &v1, ret) >= 0 ||
                    (strcmp(path, "/") != 0 && cgroup_try(root, "/sys/fs/cgroup/memory", "/", path, &v1, ret) >= 0))
                        return 0;
        }
        ret->present = false;
        return -ENOENT;
}
