/* SPDX-License-Identifier: MIT */
/*
 * What the kernel says about an agent beyond SO_PEERCRED: its pid as seen inside its own pid
 * namespace (the NSpid line of /proc/<pid>/status, readable without ptrace rights), whether that
 * namespace is the daemon's, its pid namespace inode where the daemon may read it, and the
 * cgroup it runs in with a container id derived from the cgroup path. And the rule that decides
 * whether a HELLO's claimed pid is believable (docs/security.md "Identity"). Pure parsing plus
 * reads under a proc root that tests can point at a fake tree; no logging.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PEER_CGROUP_MAX 512
#define PEER_CONTAINER_ID_MAX 80

typedef struct PeerNamespace {
        bool known;          /* NSpid was read */
        pid_t inner_pid;     /* the last NSpid entry: what getpid() returns inside */
        unsigned depth;      /* entries in NSpid: 1 = the daemon's own pid namespace */
        uint64_t pidns_inode; /* /proc/<pid>/ns/pid; 0 unknown (needs ptrace read rights) */
        /* From the same status file, the Uid line: real, effective, saved and filesystem uid
         * of whatever process has the pid now (maybe not the one that connected: pids are
         * reused) */
        bool uids_known;
        uid_t uids[4];
} PeerNamespace;

typedef struct PeerIdentity {
        PeerNamespace ns;
        bool claim_verified;  /* the HELLO's pid matched the kernel's view */
        char cgroup[PEER_CGROUP_MAX];             /* "" unknown */
        char container_id[PEER_CONTAINER_ID_MAX]; /* "" none recognised */
} PeerIdentity;

/* Parse the NSpid line of a /proc/<pid>/status text. Returns 0, -ENOENT without such a line
 * (kernel < 4.1), -EINVAL when malformed. */
int peer_parse_nspid(const char *status, PeerNamespace *ret);
/* Read /proc/<pid>/status and ns/pid under proc_root. Returns 0 (ret->known) or -errno. */
int peer_read_namespace(const char *proc_root, pid_t pid, PeerNamespace *ret);

/* The cgroup v2 path ("0::/..." line) of a /proc/<pid>/cgroup text, else the name=systemd v1
 * hierarchy, else the first line's path. Returns 0 or -ENOENT. */
int peer_parse_cgroup(const char *text, char *buf, size_t size);
int peer_read_cgroup(const char *proc_root, pid_t pid, char *buf, size_t size);
/* A container id in a cgroup path: the last path component holding 64 hex digits (docker-<id>
 * .scope, /docker/<id>, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope ...).
 * Returns 0 and the 64 digits, or -ENOENT. */
int peer_container_id(const char *cgroup, char *buf, size_t size);

typedef enum PeerClaimVerdict {
        PEER_CLAIM_OK,         /* the claimed pid is the kernel's (in the agent's namespace) */
        PEER_CLAIM_UNVERIFIED, /* the kernel's view could not be read: accepted, flagged */
        PEER_CLAIM_FORGED,     /* the claim contradicts the kernel: refuse the connection */
} PeerClaimVerdict;

/* Parse the Uid line of a /proc/<pid>/status text into uids[4]. Returns 0, -ENOENT without
 * one, -EINVAL when malformed. */
int peer_parse_uids(const char *status, uid_t uids[4]);
/* Does the process now at the peer's pid run as the uid that connected (SO_PEERCRED's, taken
 * at connect())? Its real, effective, saved or filesystem uid must be that uid; unknown uids
 * (status unreadable) are given the benefit of the doubt. A process that connected and exited
 * hands its pid to the next process started, maybe another user's, while a child it forked
 * keeps the connection: the pid alone would give that child the other process's identity. */
bool peer_runs_as(const PeerNamespace *ns, uid_t uid);

/* Judge a HELLO's pid against the kernel: kernel_pid from SO_PEERCRED (the daemon's namespace),
 * ns from peer_read_namespace() (ns->known false when unreadable). */
PeerClaimVerdict peer_judge_claim(pid_t kernel_pid, int64_t claimed_pid, const PeerNamespace *ns);
