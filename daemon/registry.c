/* SPDX-License-Identifier: MIT */
/*
 * The registry of tracked processes (see registry.h). A flat array of records in attach order:
 * the number of processes is bounded (max_processes), lookups by id happen per HTTP request,
 * not per sample (a connection keeps a pointer to its record), so a linear scan is the simple
 * and fast-enough choice.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "registry.h"

struct Registry {
        RegistryLimits limits;
        Store *store;
        void (*on_free)(void *userdata, Process *p);
        void *on_free_userdata;
        Process **processes;
        size_t n;
        size_t alloc;
};

const char *process_state_to_string(ProcessState s) {
        return s == PROCESS_LIVE ? "live" : "exited";
}

const char *exit_reason_to_string(ExitReason r) {
        switch (r) {
        case EXIT_REASON_CLEAN:
                return "exit";
        case EXIT_REASON_STOPPED:
                return "stop";
        case EXIT_REASON_CONNECTION_LOST:
                return "connection_lost";
        case EXIT_REASON_OOM_KILLED:
                return "oom_killed";
        default:
                return NULL;
        }
}

ExitReason exit_reason_from_string(const char *s) {
        for (ExitReason r = EXIT_REASON_CLEAN; s && r <= EXIT_REASON_OOM_KILLED; r++)
                if (strcmp(s, exit_reason_to_string(r)) == 0)
                        return r;
        return EXIT_REASON_NONE;
}

void registry_set_store(Registry *r, Store *store, void (*on_free)(void *userdata, Process *p), void *userdata) {
        r->store = store;
        r->on_free = on_free;
        r->on_free_userdata = userdata;
}

Store *registry_get_store(const Registry *r) {
        return r ? r->store : NULL;
}

void process_id_format(char buf[PROCESS_ID_MAX], pid_t pid, int64_t start_time_ticks) {
        snprintf(buf, PROCESS_ID_MAX, "%" PRIi64 "-%" PRIi64, (int64_t) pid,
                 start_time_ticks >= 0 ? start_time_ticks : 0);
}

void hw_hello_done(HwHello *h) {
        if (!h || !h->argv)
                return;
        for (char **a = h->argv; *a; a++)
                free(*a);
        free(h->argv);
        h->argv = NULL;
}

static Process *process_free(Process *p) {
        if (!p)
                return NULL;
        hw_hello_done(&p->hello);
        history_free(p->history);
        process_leaks_done(&p->leaks);
        process_heap_free(p->heap);
        process_census_free(p->census);
        free(p);
        return NULL;
}

Registry *registry_new(const RegistryLimits *limits) {
        Registry *r;

        if (!limits || limits->max_processes == 0 || limits->history_capacity == 0)
                return NULL;
        r = calloc(1, sizeof *r);
        if (!r)
                return NULL;
        r->limits = *limits;
        /* Callers that do not care about detection (tests) leave it zeroed: the defaults. */
        if (r->limits.detect.window_seconds <= 0)
                detect_config_default(&r->limits.detect);
        return r;
}

void registry_set_exited_retention(Registry *r, double seconds) {
        r->limits.exited_retention = seconds;
}

void registry_set_detect(Registry *r, const DetectConfig *config) {
        r->limits.detect = *config;
        for (size_t i = 0; i < r->n; i++)
                process_leaks_set_thresholds(&r->processes[i]->leaks, config);
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n; i++) {
                if (r->on_free)
                        r->on_free(r->on_free_userdata, r->processes[i]);
                process_free(r->processes[i]);
        }
        free(r->processes);
        free(r);
        return NULL;
}

static void registry_remove_at(Registry *r, size_t i) {
        if (r->on_free)
                r->on_free(r->on_free_userdata, r->processes[i]);
        process_free(r->processes[i]);
        memmove(&r->processes[i], &r->processes[i + 1], (r->n - i - 1) * sizeof(Process *));
        r->n--;
}

/* Make room for one more record: evict the exited record that exited first. */
static int registry_make_room(Registry *r) {
        size_t victim = SIZE_MAX;

        if (r->n < r->limits.max_processes)
                return 0;
        for (size_t i = 0; i < r->n; i++) {
                Process *p = r->processes[i];
                if (p->state == PROCESS_EXITED &&
                    (victim == SIZE_MAX || p->exited_at < r->processes[victim]->exited_at))
                        victim = i;
        }
        if (victim == SIZE_MAX)
                return -ENOSPC;
        registry_remove_at(r, victim);
        return 0;
}

/* The parent is the most recently attached record with pid == ppid, live ones first. */
static const Process *registry_find_parent(Registry *r, pid_t ppid) {
        const Process *best = NULL;

        if (ppid <= 0)
                return NULL;
        for (size_t i = r->n; i > 0; i--) {
                const Process *p = r->processes[i - 1];
                if (p->pid != ppid)
                        continue;
                if (p->state == PROCESS_LIVE)
                        return p;
                if (!best)
                        best = p;
        }
        return best;
}

/* Children that attached before their parent (a pre-fork server's workers whose agents
 * connect first: the agents connect on their own threads, in no set order) get its id now.
 * Only those started no earlier than p (by the kernel's start ticks): a record with that
 * ppid started before p belongs to an earlier process that had p's pid. */
static void adopt_children(Registry *r, const Process *p) {
        for (size_t i = 0; i < r->n; i++) {
                Process *c = r->processes[i];

                if (c != p && c->ppid == p->pid && !c->parent_id[0] && c->start_time_ticks >= p->start_time_ticks)
                        snprintf(c->parent_id, sizeof c->parent_id, "%s", p->id);
        }
}

int registry_attach(Registry *r, const char *id, pid_t pid, uid_t uid, gid_t gid, pid_t ppid,
                    int64_t start_time_ticks, double start_time, HwHello *hello, double now,
                    Process **ret) {
        _cleanup_free_ Process *fresh = NULL;
        Process *p;
        const Process *parent;
        int k;

        p = registry_find(r, id);
        if (p) {
                if (p->owner) {
                        *ret = p;
                        return -EBUSY;
                }
                /* The same process lifetime reconnected: keep its history, refresh the claims. */
                hw_hello_done(&p->hello);
        } else {
                /* Allocate before evicting, so a failed allocation loses no record. */
                if (r->n == r->alloc) {
                        size_t n = r->alloc ? r->alloc * 2 : 16;
                        Process **a = realloc(r->processes, n * sizeof *a);
                        if (!a)
                                return -ENOMEM;
                        r->processes = a;
                        r->alloc = n;
                }
                fresh = calloc(1, sizeof *fresh);
                if (!fresh)
                        return -ENOMEM;
                fresh->history = history_new(r->limits.history_capacity);
                if (!fresh->history)
                        return -ENOMEM;
                process_evidence_init(&fresh->evidence);
                k = process_leaks_init(&fresh->leaks, &r->limits.detect);
                if (k < 0) {
                        history_free(fresh->history);
                        return k;
                }
                k = registry_make_room(r);
                if (k < 0) {
                        process_leaks_done(&fresh->leaks);
                        history_free(fresh->history);
                        return k;
                }
                snprintf(fresh->id, sizeof fresh->id, "%s", id);
                fresh->oom_kills_at_attach = -1;
                p = fresh;
        }

        p->pid = pid;
        p->uid = uid;
        p->gid = gid;
        p->ppid = ppid;
        p->start_time_ticks = start_time_ticks;
        p->start_time = start_time;
        p->hello = *hello;
        memset(hello, 0, sizeof *hello);
        p->state = PROCESS_LIVE;
        process_heap_set_ended(p->heap, false);
        p->exit_reason = EXIT_REASON_NONE;
        p->connected_at = now;
        p->exited_at = 0;
        p->connections++;

        parent = registry_find_parent(r, ppid);
        snprintf(p->parent_id, sizeof p->parent_id, "%s", parent && parent != p ? parent->id : "");
        adopt_children(r, p);

        if (fresh)
                r->processes[r->n++] = TAKE_PTR(fresh);
        *ret = p;
        return 0;
}

int registry_add_sample(Registry *r, Process *p, const HwSample *s) {
        int k = history_append(p->history, s);

        if (k < 0)
                return k;
        p->latest = *s;
        p->has_sample = true;
        p->samples_received++;
        for (unsigned g = 0; g < s->gc_generations && g < HW_GC_GENERATIONS_MAX; g++) {
                p->gc_pause_seconds_total[g] += s->gc[g].pause_seconds_total;
                p->gc_pauses_total[g] += s->gc[g].pauses;
        }
        process_evidence_add(&p->evidence, s, process_heap_live_bytes(p->heap));
        return 0;
}

void registry_detach(Registry *r, Process *p, ExitReason reason, double now) {
        p->owner = NULL;
        p->state = PROCESS_EXITED;
        process_heap_set_ended(p->heap, true);
        p->exit_reason = reason;
        p->exited_at = now;
}

size_t registry_expire(Registry *r, double now) {
        size_t dropped = 0;

        for (size_t i = r->n; i > 0; i--) {
                Process *p = r->processes[i - 1];
                if (p->state == PROCESS_EXITED && now - p->exited_at >= r->limits.exited_retention) {
                        registry_remove_at(r, i - 1);
                        dropped++;
                }
        }
        return dropped;
}

Process *registry_find(Registry *r, const char *id) {
        if (!id)
                return NULL;
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->processes[i]->id, id) == 0)
                        return r->processes[i];
        return NULL;
}

size_t registry_count(const Registry *r) {
        return r->n;
}

Process *registry_at(Registry *r, size_t i) {
        return i < r->n ? r->processes[i] : NULL;
}

size_t registry_count_state(const Registry *r, ProcessState s) {
        size_t n = 0;
        for (size_t i = 0; i < r->n; i++)
                if (r->processes[i]->state == s)
                        n++;
        return n;
}
