/* SPDX-License-Identifier: MIT */
/*
 * Kernel-side identity of an agent (see peer-identity.h). NSpid lists a process's pid in every
 * pid namespace from the one of the /proc mount being read down to its own, so the last entry is
 * exactly what the agent's getpid() returns: comparing the claim with it needs no privilege, and
 * works the same for a process in the daemon's namespace (one entry, equal to SO_PEERCRED's pid)
 * and one in a container (several entries).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "peer-identity.h"
#include "proc-util.h"

#define STATUS_READ_MAX 16384

int peer_parse_nspid(const char *status, PeerNamespace *ret) {
        const char *line = status;
        PeerNamespace ns = { .known = true };

        while (line && *line) {
                if (strncmp(line, "NSpid:", 6) == 0) {
                        const char *p = line + 6;
                        for (;;) {
                                char *end;
                                long v;

                                while (*p == ' ' || *p == '\t')
                                        p++;
                                if (*p == '\n' || *p == '\0')
                                        break;
                                errno = 0;
                                v = strtol(p, &end, 10);
                                if (errno || end == p || v <= 0 || v > INT_MAX)
                                        return -EINVAL;
                                ns.inner_pid = (pid_t) v;
                                ns.depth++;
                                p = end;
                        }
                        if (ns.depth == 0)
                                return -EINVAL;
                        *ret = ns;
                        return 0;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return -ENOENT;
}

int peer_parse_uids(const char *status, uid_t uids[4]) {
        for (const char *line = status; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                const char *p = line + 4;

                if (strncmp(line, "Uid:", 4) != 0)
                        continue;
                for (size_t i = 0; i < 4; i++) {
                        char *end;
                        unsigned long v;

                        while (*p == ' ' || *p == '\t')
                                p++;
                        if (!isdigit((unsigned char) *p))
                                return -EINVAL;
                        errno = 0;
                        v = strtoul(p, &end, 10);
                        if (errno || v > UINT32_MAX)
                                return -EINVAL;
                        uids[i] = (uid_t) v;
                        p = end;
                }
                return 0;
        }
        return -ENOENT;
}

bool peer_runs_as(const PeerNamespace *ns, uid_t uid) {
        if (!ns->uids_known)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(ns->uids); i++)
                if (ns->uids[i] == uid)
                        return true;
        return false;
}

int peer_read_namespace(const char *proc_root, pid_t pid, PeerNamespace *ret) {
        char path[PATH_MAX], buf[STATUS_READ_MAX];
        PeerNamespace ns;
        struct stat st;
        int r;

        snprintf(path, sizeof path, "%s/%d/status", proc_root, (int) pid);
        r = proc_read_small_file(path, buf, sizeof buf);
        if (r < 0)
                return r;
        r = peer_parse_nspid(buf, &ns);
        if (r < 0)
                return r;
        ns.uids_known = peer_parse_uids(buf, ns.uids) >= 0;
        /* The namespace inode needs ptrace read rights on the process: optional. */
        snprintf(path, sizeof path, "%s/%d/ns/pid", proc_root, (int) pid);
        ns.pidns_inode = stat(path, &st) == 0 ? (uint64_t) st.st_ino : 0;
        *ret = ns;
        return 0;
}

int peer_parse_cgroup(const char *text, char *buf, size_t size) {
        const char *first = NULL, *v1 = NULL, *v2 = NULL;
        const char *line = text, *pick;
        size_t n;

        for (; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                const char *nl = strchr(line, '\n');
                if (!c2 || (nl && c2 > nl))
                        continue;
                if (!first)
                        first = c2 + 1;
                if (strncmp(line, "0::", 3) == 0)
                        v2 = c2 + 1;
                else if ((size_t) (c2 - c1 - 1) == strlen("name=systemd") && strncmp(c1 + 1, "name=systemd", 12) == 0)
                        v1 = c2 + 1;
        }
        pick = v2 ? v2 : v1 ? v1 : first;
        if (!pick)
                return -ENOENT;
        n = strcspn(pick, "\n");
        if (n == 0 || n >= size)
                return -ENOENT;
        memcpy(buf, pick, n);
        buf[n] = '\0';
        return 0;
}

int peer_read_cgroup(const char *proc_root, pid_t pid, char *buf, size_t size) {
        char path[PATH_MAX], text[8192];
        int r;

        snprintf(path, sizeof path, "%s/%d/cgroup", proc_root, (int) pid);
        r = proc_read_small_file(path, text, sizeof text);
        if (r < 0)
                return r;
        return peer_parse_cgroup(text, buf, size);
}

int peer_container_id(const char *cgroup, char *buf, size_t size) {
        const char *found = NULL;
        size_t run = 0;

        if (!cgroup || size <= 64)
                return -ENOENT;
        /* The last run of exactly 64 hex digits wins (nested cgroups name the innermost last). */
        for (const char *p = cgroup;; p++) {
                if (*p && isxdigit((unsigned char) *p) && !isupper((unsigned char) *p)) {
                        run++;
                        continue;
                }
                if (run == 64)
                        found = p - 64;
                run = 0;
                if (!*p)
                        break;
        }
        if (!found)
                return -ENOENT;
        memcpy(buf, found, 64);
        buf[64] = '\0';
        return 0;
}

PeerClaimVerdict peer_judge_claim(pid_t kernel_pid, int64_t claimed_pid, const PeerNamespace *ns) {
        if (ns && ns->known)
                return claimed_pid == (int64_t) ns->inner_pid ? PEER_CLAIM_OK : PEER_CLAIM_FORGED;
        /* Without NSpid, the kernel's pid still decides the record; a different claim is only
         * believable from another pid namespace, which we cannot see: flag it. */
        return claimed_pid == (int64_t) kernel_pid ? PEER_CLAIM_OK : PEER_CLAIM_UNVERIFIED;
}
