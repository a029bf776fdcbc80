/* SPDX-License-Identifier: MIT */
/*
 * The registry of tracked processes. Each record is one process lifetime, named by an id
 * "<pid>-<start time in clock ticks since boot>" taken from the kernel where possible, so a
 * reused pid never merges two histories and a reconnecting agent finds its record again.
 * Records of processes whose connection ended are kept (state EXITED) for a configurable while
 * and then dropped. Bounded: at most max_processes records. Single-threaded (event loop).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "census.h"
#include "evidence.h"
#include "heap.h"
#include "history.h"
#include "leaks.h"
#include "peer-identity.h"
#include "sample.h"

#define PROCESS_ID_MAX 48
#define PROCESS_CGROUP_MAX 512

typedef struct Store Store;
typedef struct StoreSeries StoreSeries;
typedef struct LeakResume LeakResume;

typedef enum ProcessState {
        PROCESS_LIVE,   /* an agent connection is attached */
        PROCESS_EXITED, /* the connection ended (goodbye or lost) */
} ProcessState;

typedef enum ExitReason {
        EXIT_REASON_NONE,            /* still live */
        EXIT_REASON_CLEAN,           /* GOODBYE with reason "exit": final sample at shutdown */
        EXIT_REASON_STOPPED,         /* GOODBYE with reason "stop": heapwatch.stop() */
        EXIT_REASON_CONNECTION_LOST, /* connection closed without GOODBYE */
        EXIT_REASON_OOM_KILLED,      /* connection lost and the cgroup's oom_kill count rose */
} ExitReason;

const char *process_state_to_string(ProcessState s);  /* "live", "exited" */
const char *exit_reason_to_string(ExitReason r);      /* NULL, "exit", "stop", "connection_lost", "oom_killed" */
ExitReason exit_reason_from_string(const char *s);   /* EXIT_REASON_NONE for NULL or unknown */

typedef struct Process {
        char id[PROCESS_ID_MAX];
        char parent_id[PROCESS_ID_MAX]; /* "" when the parent is not tracked */

        /* identity from the kernel (SO_PEERCRED, /proc/<pid>/stat) */
        pid_t pid;
        uid_t uid;
        gid_t gid;
        int64_t start_time_ticks;
        double start_time; /* Unix seconds */
        pid_t ppid;

        HwHello hello; /* the agent's own claims; hello.pid may differ in another pid namespace */

        void *owner; /* the agent connection attached while LIVE (opaque to the registry) */
        ProcessState state;
        ExitReason exit_reason;
        double connected_at; /* last (re)connection, Unix seconds */
        double exited_at;    /* 0 while live */
        unsigned connections; /* how many connections this record has seen */

        bool has_sample;
        HwSample latest;  /* last sample received (SAMPLE or GOODBYE) */
        History *history;

        /* Cumulative GC pause figures, summed over all samples the daemon received. */
        double gc_pause_seconds_total[HW_GC_GENERATIONS_MAX];
        int64_t gc_pauses_total[HW_GC_GENERATIONS_MAX];
        uint64_t samples_received;

        ProcessLeaks leaks; /* leak detectors and findings, fed by the ingest path */

        /* Durable history (persist.c); NULL without a store. */
        StoreSeries *stored;
        uint64_t stored_samples; /* samples_received when the process row was last queued */
        LeakResume *resume;      /* stored floor still being fed to the detectors */
        /* The memory cgroup's OOM kill counter as the daemon finds it (/proc/<pid>/cgroup), and
         * its count when the agent attached, read again every 10 s of samples (-1 unknown): a
         * rise by the time the connection is lost says the OOM killer ended the process. */
        char oom_kill_file[PROCESS_CGROUP_MAX];
        int64_t oom_kills_at_attach;
        double oom_kills_read_at; /* sample time of the last read */
        ProcessHeap *heap;  /* heap profile by allocation site; NULL until a first report */
        ProcessEvidence evidence; /* allocator and GC trends for classifying findings */
        /* The kernel's view beyond SO_PEERCRED (peer-identity.h), refreshed at every HELLO:
         * the pid inside the agent's pid namespace, the namespace, cgroup and container. */
        PeerIdentity identity;
        ProcessCensus *census; /* object censuses and chains; NULL until the first request */
} Process;

typedef struct Registry Registry;

typedef struct RegistryLimits {
        size_t max_processes;      /* live + exited */
        size_t history_capacity;   /* points per process */
        double exited_retention;   /* seconds an exited record is kept */
        DetectConfig detect;       /* leak detection settings for new records */
} RegistryLimits;

/* limits->detect must be valid (detect_config_validate()); zeroed means the defaults. */
Registry *registry_new(const RegistryLimits *limits);
Registry *registry_free(Registry *r);

/* The durable store the API reads ended processes and old history from (NULL: none), and a
 * hook run on every record just before it is freed (to release what the store holds for it). */
void registry_set_store(Registry *r, Store *store, void (*on_free)(void *userdata, Process *p), void *userdata);
Store *registry_get_store(const Registry *r);

/* Find or create the record for a connecting agent. If a record with the same id exists (the
 * agent reconnected) it is revived as LIVE and keeps its history; if that record still has an
 * owner (an older connection of the same process), -EBUSY is returned and *ret points to it, so
 * the caller can retire the old connection and try again. Takes ownership of *hello's
 * allocations on success (zeroing *hello). Returns 0 and *ret, -ENOSPC when max_processes live
 * records exist and no exited one can be evicted, -ENOMEM. */
int registry_attach(Registry *r, const char *id, pid_t pid, uid_t uid, gid_t gid, pid_t ppid,
                    int64_t start_time_ticks, double start_time, HwHello *hello, double now,
                    Process **ret);

/* Record one sample; refuses (-EINVAL) samples not newer than the last one. */
int registry_add_sample(Registry *r, Process *p, const HwSample *s);

/* The agent connection ended. */
void registry_detach(Registry *r, Process *p, ExitReason reason, double now);

/* Live changes (reload): how long exited records stay, and the leak detection settings. New
 * records get the whole DetectConfig; existing ones get the new growth thresholds (window and
 * horizons size their detectors' history, so those apply to new records only). config must be
 * valid. */
void registry_set_exited_retention(Registry *r, double seconds);
void registry_set_detect(Registry *r, const DetectConfig *config);

/* Drop exited records older than the retention. Returns how many were dropped. */
size_t registry_expire(Registry *r, double now);

Process *registry_find(Registry *r, const char *id);
/* Iterate: i from 0 while < registry_count(). Order: first attached first. */
size_t registry_count(const Registry *r);
Process *registry_at(Registry *r, size_t i);
size_t registry_count_state(const Registry *r, ProcessState s);

/* Build "<pid>-<ticks>" into buf[PROCESS_ID_MAX]. */
void process_id_format(char buf[PROCESS_ID_MAX], pid_t pid, int64_t start_time_ticks);
