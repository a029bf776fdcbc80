/* SPDX-License-Identifier: MIT */
/*
 * Registry <-> Store glue (see persist.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json-util.h"
#include "leak-resume.h"
#include "log.h"
#include "macro.h"
#include "persist.h"
#include "proc-util.h"

const char *persist_proc_root = "/proc";

/* Seconds between two reads of a sampling process's cgroup OOM kill count. */
#define OOM_KILLS_REREAD 10.0
const char *persist_cgroup_root = "/sys/fs/cgroup";

void persist_process_info(const Process *p, StoreProcessInfo *ret) {
        _cleanup_json_ json_t *argv = json_array();
        _cleanup_free_ char *argv_text = NULL;

        memset(ret, 0, sizeof *ret);
        snprintf(ret->id, sizeof ret->id, "%s", p->id);
        ret->pid = p->pid;
        ret->ppid = p->ppid;
        ret->uid = p->uid;
        ret->gid = p->gid;
        ret->start_time_ticks = p->start_time_ticks;
        ret->start_time = p->start_time;
        snprintf(ret->service, sizeof ret->service, "%s", p->hello.service);
        snprintf(ret->hostname, sizeof ret->hostname, "%s", p->hello.hostname);
        snprintf(ret->agent_version, sizeof ret->agent_version, "%s", p->hello.agent_version);
        snprintf(ret->python_version, sizeof ret->python_version, "%s", p->hello.python_version);
        /* argv is bounded by the decoder, but the column is not: drop trailing arguments
         * rather than store a truncated (invalid) JSON text. */
        if (argv && p->hello.argv)
                for (char **a = p->hello.argv; *a; a++) {
                        if (json_append(argv, json_string_lossy(*a)) < 0)
                                break;
                        free(argv_text);
                        argv_text = json_dumps(argv, JSON_COMPACT);
                        if (!argv_text || strlen(argv_text) >= sizeof ret->argv_json) {
                                json_array_remove(argv, json_array_size(argv) - 1);
                                break;
                        }
                }
        free(argv_text);
        argv_text = argv ? json_dumps(argv, JSON_COMPACT) : NULL;
        snprintf(ret->argv_json, sizeof ret->argv_json, "%s",
                 argv_text && strlen(argv_text) < sizeof ret->argv_json ? argv_text : "[]");
        ret->connected_at = p->connected_at;
        ret->exited_at = p->state == PROCESS_EXITED ? p->exited_at : 0;
        snprintf(ret->exit_reason, sizeof ret->exit_reason, "%s",
                 p->state == PROCESS_EXITED && exit_reason_to_string(p->exit_reason) ? exit_reason_to_string(p->exit_reason) : "");
        ret->last_sample_at = p->has_sample ? p->latest.time : 0;
        ret->samples = (int64_t) p->samples_received;
        ret->last_rss_bytes = p->has_sample ? p->latest.rss_bytes : -1;
        ret->last_python_allocated_blocks = p->has_sample ? p->latest.python_allocated_blocks : -1;
        snprintf(ret->leak_verdict, sizeof ret->leak_verdict, "%s",
                 leak_verdict_to_string(process_leaks_verdict(&p->leaks)));
}

static void queue_info(Store *store, Process *p) {
        StoreProcessInfo info;

        persist_process_info(p, &info);
        store_series_set_info(store, p->stored, &info);
        p->stored_samples = p->samples_received;
}

void persist_attach(Registry *reg, Process *p) {
        Store *store = registry_get_store(reg);

        /* The daemon's own view of the cgroup: the agent's claim is not evidence of an OOM kill. */
        p->oom_kills_at_attach = -1;
        p->oom_kill_file[0] = '\0';
        if (p->pid > 0 && proc_oom_kill_file(persist_proc_root, persist_cgroup_root, p->pid, p->oom_kill_file,
                                             sizeof p->oom_kill_file) >= 0 &&
            oom_kill_read(p->oom_kill_file, &p->oom_kills_at_attach) < 0)
                p->oom_kills_at_attach = -1;
        if (!store)
                return;
        if (!p->stored && store_series_get(store, p->id, &p->stored) < 0)
                return; /* out of memory: this process has no durable history, the rest goes on */
        queue_info(store, p);
}

void persist_sample(Registry *reg, Process *p) {
        Store *store = registry_get_store(reg);
        const HistoryPoint *pt;

        if (p->oom_kills_at_attach >= 0 && p->oom_kill_file[0] && p->has_sample &&
            p->latest.time - p->oom_kills_read_at >= OOM_KILLS_REREAD) {
                int64_t n;

                if (oom_kill_read(p->oom_kill_file, &n) >= 0)
                        p->oom_kills_at_attach = n;
                p->oom_kills_read_at = p->latest.time;
        }
        if (!store || !p->stored || history_size(p->history) == 0)
                return;
        pt = history_get(p->history, history_size(p->history) - 1);
        (void) store_series_add(store, p->stored, pt);
}

void persist_census(Registry *reg, Process *p) {
        Store *store = registry_get_store(reg);
        const CensusRecord *rec;
        double since;

        if (!store || !p->stored || process_census_latest(p->census, &rec, &since) < 0)
                return;
        (void) store_series_add_census(store, p->stored, rec, since); /* ENOMEM: not durable, still served */
}

typedef struct CensusRestore {
        ProcessCensus *census;
        double now;
} CensusRestore;

static int on_stored_census(void *userdata, const CensusRecord *r, double finding_since) {
        CensusRestore *cr = userdata;

        (void) process_census_restore(cr->census, r, finding_since, cr->now);
        return 0;
}

/* The censuses of a restored record: what GET .../census showed before, and the baseline its
 * open finding's growing types are measured from. */
static void restore_censuses(Store *store, Process *p, double now) {
        CensusRestore cr = { .now = now };
        size_t n = 0;
        int r;

        if (process_census_ensure(&p->census) < 0)
                return;
        cr.census = p->census;
        r = store_load_censuses(store, p->id, CENSUS_HISTORY_MAX, on_stored_census, &cr, &n);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Failed to read the stored censuses of %s: %m", p->id);
        if (n == 0)
                p->census = process_census_free(p->census); /* as for a process never censused */
}

ExitReason persist_exit_reason(const Process *p, ExitReason reason) {
        int64_t now_kills;

        if (reason != EXIT_REASON_CONNECTION_LOST || p->oom_kills_at_attach < 0 || !p->oom_kill_file[0])
                return reason;
        /* The kill is counted when the victim is chosen, before its socket closes: a rise since
         * the count was last read (at most OOM_KILLS_REREAD seconds ago, while the process
         * sampled) is this one's. A kill of another member of the cgroup before that is not: read
         * once at attach, any kill since labelled every later lost connection an OOM kill.
         * (Whether the pid still exists says nothing: the victim may not be a zombie yet when its
         * socket closes.) */
        if (oom_kill_read(p->oom_kill_file, &now_kills) < 0 || now_kills <= p->oom_kills_at_attach)
                return reason;
        return EXIT_REASON_OOM_KILLED;
}

void persist_detach(Registry *reg, Process *p) {
        Store *store = registry_get_store(reg);

        if (store && p->stored)
                queue_info(store, p);
}

void persist_sync(Registry *reg) {
        Store *store = registry_get_store(reg);

        if (!store)
                return;
        for (size_t i = 0; i < registry_count(reg); i++) {
                Process *p = registry_at(reg, i);
                if (p->stored && p->samples_received != p->stored_samples)
                        queue_info(store, p);
        }
}

void persist_on_free(void *userdata, Process *p) {
        Store *store = userdata;

        p->resume = leak_resume_free(p->resume);
        if (store && p->stored) {
                store_series_release(store, p->stored);
                p->stored = NULL;
        }
}

typedef struct Restore {
        Registry *reg;
        Store *store;
        double now, horizon;
        int restored, closed;
        StoreProcessInfo *stale; /* records live at the crash whose process is gone */
        size_t n_stale;
} Restore;

static int hello_from_info(const StoreProcessInfo *in, HwHello *h) {
        _cleanup_json_ json_t *argv = NULL;
        size_t n;

        memset(h, 0, sizeof *h);
        h->pid = in->pid;
        h->ppid = in->ppid;
        h->start_time_ticks = in->start_time_ticks;
        h->start_time = in->start_time;
        snprintf(h->service, sizeof h->service, "%s", in->service);
        snprintf(h->hostname, sizeof h->hostname, "%s", in->hostname);
        snprintf(h->agent_version, sizeof h->agent_version, "%s", in->agent_version);
        snprintf(h->python_version, sizeof h->python_version, "%s", in->python_version);
        argv = json_loads(in->argv_json, 0, NULL);
        n = json_is_array(argv) ? json_array_size(argv) : 0;
        if (n > HW_ARGV_MAX)
                n = HW_ARGV_MAX;
        h->argv = calloc(n + 1, sizeof(char *));
        if (!h->argv)
                return -ENOMEM;
        for (size_t i = 0, k = 0; i < n; i++) {
                const char *a = json_string_value(json_array_get(argv, i));
                if (!a)
                        continue;
                h->argv[k] = strdup(a);
                if (!h->argv[k++]) {
                        hw_hello_done(h);
                        return -ENOMEM;
                }
        }
        return 0;
}

static int on_stored_process(void *userdata, const StoreProcessInfo *in) {
        Restore *rs = userdata;
        HwHello hello;
        Process *p;
        int r;

        if (in->exited_at > 0 || registry_find(rs->reg, in->id))
                return 0; /* ended ones are served from the store directly */

        /* Live when the daemon stopped. Still running (same pid, same start time)? Then its
         * agent will reconnect: keep the record ready. Otherwise it ended while we were away. */
        if (!proc_still_runs(persist_proc_root, (pid_t) in->pid, in->start_time_ticks)) {
                StoreProcessInfo *a = realloc(rs->stale, (rs->n_stale + 1) * sizeof *a);
                if (!a)
                        return -ENOMEM;
                rs->stale = a;
                rs->stale[rs->n_stale++] = *in;
                return 0;
        }

        r = hello_from_info(in, &hello);
        if (r < 0)
                return r;
        r = registry_attach(rs->reg, in->id, (pid_t) in->pid, (uid_t) in->uid, (gid_t) in->gid, (pid_t) in->ppid,
                            in->start_time_ticks, in->start_time, &hello, in->connected_at, &p);
        hw_hello_done(&hello);
        if (r < 0)
                return r == -ENOSPC ? 0 : r;
        registry_detach(rs->reg, p, EXIT_REASON_CONNECTION_LOST, rs->now);
        p->connections = 0; /* the reconnect counts as its first connection to this daemon */
        p->samples_received = in->samples > 0 ? (uint64_t) in->samples : 0;
        p->stored_samples = p->samples_received;
        /* Recorded as ended now (keeping what the row knew of its last sample): if its agent
         * never comes back, that is what it was. */
        if (store_series_get(rs->store, p->id, &p->stored) >= 0) {
                StoreProcessInfo info = *in;
                info.exited_at = rs->now;
                snprintf(info.exit_reason, sizeof info.exit_reason, "%s",
                         exit_reason_to_string(EXIT_REASON_CONNECTION_LOST));
                store_series_set_info(rs->store, p->stored, &info);
                restore_censuses(rs->store, p, rs->now);
        }
        if (leak_resume_new(rs->store, p->id, rs->now, rs->horizon, &p->resume) < 0)
                p->resume = NULL;
        rs->restored++;
        return 0;
}

int persist_restore(Registry *reg, double now, double detect_horizon) {
        Store *store = registry_get_store(reg);
        Restore rs = { .reg = reg, .store = store, .now = now, .horizon = detect_horizon };
        const StoreConfig *c;
        int r;

        if (!store || !store_is_available(store))
                return 0;
        c = store_get_config(store);
        r = store_list_processes(store, now - c->tiers[c->n_tiers - 1].retention, false, 100000, on_stored_process,
                                 &rs);
        /* Those that ended while the daemon was away: ended at their last sample, connection lost. */
        for (size_t i = 0; r >= 0 && i < rs.n_stale; i++) {
                StoreProcessInfo *in = &rs.stale[i];
                StoreSeries *ss;

                in->exited_at = in->last_sample_at > 0 ? in->last_sample_at : (in->connected_at > 0 ? in->connected_at : now);
                snprintf(in->exit_reason, sizeof in->exit_reason, "%s", exit_reason_to_string(EXIT_REASON_CONNECTION_LOST));
                if (store_series_get(store, in->id, &ss) >= 0) {
                        store_series_set_info(store, ss, in);
                        store_series_release(store, ss);
                }
                rs.closed++;
        }
        free(rs.stale);
        if (r < 0)
                return log_warning_errno(r, "Failed to read stored process records: %m");
        if (rs.restored > 0 || rs.closed > 0)
                log_info("Restored %d process record(s) still running; %d ended while heapwatchd was away.",
                         rs.restored, rs.closed);
        return rs.restored;
}

typedef struct LiveEvent {
        PersistLeakEventFn fn;
        Process *p;
} LiveEvent;

static void on_live_event(void *userdata, LeakEvent event) {
        LiveEvent *le = userdata;

        le->fn(le->p, event);
}

int persist_resume_step(Registry *reg, double host_available, size_t max_points, PersistLeakEventFn live_event_fn) {
        bool more = false;

        for (size_t i = 0; i < registry_count(reg) && max_points > 0; i++) {
                Process *p = registry_at(reg, i);
                LiveEvent le = { .fn = live_event_fn, .p = p };
                size_t before, fed = 0;
                int r;

                if (!p->resume)
                        continue;
                before = leak_resume_remaining(p->resume);
                r = leak_resume_step(p->resume, &p->leaks, host_available, max_points, &fed,
                                     live_event_fn ? on_live_event : NULL, &le);
                max_points -= before - leak_resume_remaining(p->resume);
                if (r == 0) {
                        more = true;
                        continue;
                }
                if (r < 0)
                        log_warning_errno(r, "Resuming leak detection of %s failed: %m", p->id);
                else
                        log_info("Leak detection of %s resumed from %zu stored floor point(s): verdict %s.", p->id, fed,
                                 leak_verdict_to_string(process_leaks_verdict(&p->leaks)));
                p->resume = leak_resume_free(p->resume);
        }
        /* The slice may have ended before every process was visited. */
        for (size_t i = 0; !more && i < registry_count(reg); i++)
                more = registry_at(reg, i)->resume != NULL;
        return more;
}
