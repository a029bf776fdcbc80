/* SPDX-License-Identifier: MIT */
/*
 * The glue between the in-memory Registry and the durable Store: what the ingest path calls
 * when an agent attaches, sends a sample or goes away; what the flush timer calls to queue
 * changed process rows; and the restore at start, which brings back the records of processes
 * that were live when the daemon stopped (so a reconnecting agent finds the same {id} and its
 * leak detectors resume from the stored floor) and closes the records of those that ended
 * while the daemon was away. Also decides whether a lost connection was the OOM killer (the
 * process's cgroup oom_kill count rose since it attached). Censuses go the same way: each one
 * an agent answers is queued for the store, and a restored record gets its censuses back (the
 * newest, with the baseline of the finding open then), so the growing types of an open finding
 * survive a restart. Every function is a no-op without a
 * store. Logs only the restore summary and failures, rate-limited by the caller's RateLimit.
 */
#pragma once

#include "registry.h"
#include "store.h"

/* After registry_attach(): open the process's series, note its cgroup and oom_kill count. */
void persist_attach(Registry *reg, Process *p);
/* After a sample was stored in memory. */
void persist_sample(Registry *reg, Process *p);
/* The reason a connection ended, corrected to EXIT_REASON_OOM_KILLED when the cgroup says so. */
ExitReason persist_exit_reason(const Process *p, ExitReason reason);
/* After a census was added to p->census: queue it for the store. */
void persist_census(Registry *reg, Process *p);
/* After registry_detach(): queue the final process row. */
void persist_detach(Registry *reg, Process *p);
/* Queue the rows of processes that changed since the last call (before store_flush()). */
void persist_sync(Registry *reg);
/* Registry hook: the record is going away. */
void persist_on_free(void *userdata, Process *p);

/* Bring back stored process records (see above). detect_horizon: how far back leak detection
 * is replayed. Returns how many records were restored, or -errno. */
int persist_restore(Registry *reg, double now, double detect_horizon);

/* What a live sample queued behind a replay did to its process's finding. */
typedef void (*PersistLeakEventFn)(Process *p, LeakEvent event);

/* Feed queued replay points of processes that have some, at most max_points in all; the
 * events of live samples among them go to on_live_event (may be NULL). Returns 1 while work
 * remains, 0 when none. */
int persist_resume_step(Registry *reg, double host_available, size_t max_points, PersistLeakEventFn on_live_event);

/* Fill the persisted record from a process (exposed for tests). */
void persist_process_info(const Process *p, StoreProcessInfo *ret);

/* Where cgroups and processes are read; tests point these elsewhere. */
extern const char *persist_proc_root;
extern const char *persist_cgroup_root;
