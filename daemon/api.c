/* SPDX-License-Identifier: MIT */
/*
 * JSON responses of the HTTP API (see api.h and docs/api.md). Objects are built member by member
 * with json_add(), which owns the value it is given even when it fails, chained with || so the first
 * failure stops construction without leaking: every builder returns a new reference or NULL, and
 * NULL means out of memory.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "access.h"
#include "api-census.h"
#include "peer-limits.h"
#include "api-leaks.h"
#include "json-util.h"
#include "leak-evidence.h"
#include "macro.h"
#include "metrics.h"
#include "router.h"
#include "stats.h"
#include "store.h"
#include "time-util.h"


/* 16 significant digits: microseconds on a Unix timestamp, and 1764061234.56 prints as such
 * rather than as the 17-digit 1764061234.5599999. */
#define API_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(16))
/* Ended processes listed from the store at most (the registry's own are always listed). */
#define API_STORED_PROCESSES_MAX 10000
/* Bytes of argv strings a listing carries per process: the agent may send 64 strings of 1 KiB,
 * which made a record 66 KB and a listing of 1000 of them 66 MB (found by review). The detail,
 * /api/v1/processes/{id}, has the whole argv. */
#define API_LIST_ARGV_BYTES_MAX 4096


static json_t *json_string_or_null(const char *s) {
        return s ? json_string_lossy(s) : json_null();
}

/* Serialize with a trailing newline (friendlier for curl) and hand the buffer over. */
static int dump(json_t *root, char **ret_body, size_t *ret_size) {
        _cleanup_free_ char *text = NULL;
        char *grown;
        size_t n;

        text = json_dumps(root, API_JSON_FLAGS);
        if (!text)
                return -ENOMEM;
        n = strlen(text);
        grown = realloc(text, n + 2);
        if (!grown)
                return -ENOMEM;
        text = grown;
        text[n] = '\n';
        text[n + 1] = '\0';

        *ret_size = n + 1;
        *ret_body = TAKE_PTR(text);
        return 0;
}

int api_error_body(const char *message, char **ret_body, size_t *ret_size) {
        _cleanup_json_ json_t *root = NULL, *msg = NULL;

        if (!ret_body || !ret_size)
                return -EINVAL;

        /* A message that echoes a client's bytes may not be UTF-8; say something generic then. */
        msg = json_string(message ? message : "error");
        if (!msg)
                msg = json_string("invalid request");
        root = json_object();
        if (!root || json_add(root, "error", TAKE_PTR(msg)) < 0)
                return -ENOMEM;
        return dump(root, ret_body, ret_size);
}

/* Bytes a string's byte takes in the JSON we write (no JSON_ENSURE_ASCII): a control character
 * is \u00XX, a quote or backslash is escaped, the rest (UTF-8 included) is itself. */
static size_t json_byte_cost(unsigned char c) {
        if (c < 0x20)
                return c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f' ? 2 : 6;
        return c == '"' || c == '\\' ? 2 : 1;
}

/* Cut argv (an array of strings) so that its strings take at most max bytes once written as
 * JSON (counted as written: 4 KiB of control characters were 24 KiB of \u00XX, found by
 * review): the string that crosses the bound is cut at a UTF-8 character boundary, those after
 * it are dropped. Returns whether anything was cut, or -ENOMEM. */
static int argv_bound(json_t *argv, size_t max) {
        size_t used = 0, i;

        for (i = 0; i < json_array_size(argv); i++) {
                json_t *a = json_array_get(argv, i);
                const char *text = json_string_value(a);
                size_t len = json_string_length(a), keep = 0;

                while (keep < len && used + json_byte_cost((unsigned char) text[keep]) <= max)
                        used += json_byte_cost((unsigned char) text[keep++]);
                if (keep == len)
                        continue;
                while (keep > 0 && ((unsigned char) text[keep] & 0xC0) == 0x80)
                        keep--;
                if (keep == 0) {
                        if (json_array_remove(argv, i) < 0)
                                return -ENOMEM;
                } else if (json_array_set_new(argv, i++, json_stringn(text, keep)) < 0)
                        return -ENOMEM;
                while (json_array_size(argv) > i)
                        if (json_array_remove(argv, i) < 0)
                                return -ENOMEM;
                return 1;
        }
        return 0;
}

/* Add "argv" (cut to API_LIST_ARGV_BYTES_MAX when listed) and "argv_truncated"; takes argv. */
static int add_argv(json_t *o, json_t *argv, bool listed) {
        int truncated = 0;

        if (!argv)
                return -ENOMEM;
        if (listed)
                truncated = argv_bound(argv, API_LIST_ARGV_BYTES_MAX);
        if (truncated < 0) {
                json_decref(argv);
                return -ENOMEM;
        }
        if (json_add(o, "argv", argv) < 0 || json_add(o, "argv_truncated", json_boolean(truncated)) < 0)
                return -ENOMEM;
        return 0;
}

/* The members every listing shows (docs/api.md, "the summary"); argv whole in the detail
 * (listed false), cut short in listings. */
static int add_process_summary(json_t *o, const Process *p, bool listed) {
        _cleanup_json_ json_t *argv = NULL;

        argv = json_array();
        if (!argv)
                return -ENOMEM;
        if (p->hello.argv)
                for (char **a = p->hello.argv; *a; a++)
                        if (json_append(argv, json_string_lossy(*a)) < 0)
                                return -ENOMEM;

        if (json_add(o, "id", json_string(p->id)) < 0 ||
            json_add(o, "pid", json_integer(p->pid)) < 0 ||
            json_add(o, "ppid", json_integer(p->ppid)) < 0 ||
            json_add(o, "parent_id", p->parent_id[0] ? json_string_lossy(p->parent_id) : json_null()) < 0 ||
            json_add(o, "service", json_string_lossy(p->hello.service)) < 0 ||
            add_argv(o, TAKE_PTR(argv), listed) < 0 ||
            json_add(o, "uid", json_integer(p->uid)) < 0 ||
            json_add(o, "gid", json_integer(p->gid)) < 0 ||
            json_add(o, "state", json_string(process_state_to_string(p->state))) < 0 ||
            json_add(o, "exit_reason",
                p->state == PROCESS_EXITED ? json_string_or_null(exit_reason_to_string(p->exit_reason)) : json_null()) < 0 ||
            json_add(o, "started_at", json_time_or_null(p->start_time)) < 0 ||
            json_add(o, "connected_at", json_time_or_null(p->connected_at)) < 0 ||
            json_add(o, "exited_at", p->state == PROCESS_EXITED ? json_time_or_null(p->exited_at) : json_null()) < 0 ||
            json_add(o, "last_sample_at", p->has_sample ? json_number_or_null(p->latest.time) : json_null()) < 0 ||
            json_add(o, "samples", json_integer((json_int_t) p->samples_received)) < 0 ||
            json_add(o, "rss_bytes", p->has_sample ? json_integer(p->latest.rss_bytes) : json_null()) < 0 ||
            json_add(o, "python_allocated_blocks",
                p->has_sample ? json_integer(p->latest.python_allocated_blocks) : json_null()) < 0)
                return -ENOMEM;
        return 0;
}

/* The summary of an ended process that only the store still holds (same members). */
static json_t *stored_summary_new(const StoreProcessInfo *in, bool listed) {
        _cleanup_json_ json_t *o = json_object(), *argv = json_loads(in->argv_json, 0, NULL);

        if (!json_is_array(argv)) {
                json_decref(argv);
                argv = json_array();
        }
        if (!o || !argv ||
            json_add(o, "id", json_string_lossy(in->id)) < 0 ||
            json_add(o, "pid", json_integer(in->pid)) < 0 ||
            json_add(o, "ppid", json_integer(in->ppid)) < 0 ||
            json_add(o, "parent_id", json_null()) < 0 ||
            json_add(o, "service", json_string_lossy(in->service)) < 0 ||
            add_argv(o, TAKE_PTR(argv), listed) < 0 ||
            json_add(o, "uid", json_integer(in->uid)) < 0 ||
            json_add(o, "gid", json_integer(in->gid)) < 0 ||
            json_add(o, "state", json_string("exited")) < 0 ||
            json_add(o, "exit_reason", in->exit_reason[0] ? json_string_lossy(in->exit_reason) : json_null()) < 0 ||
            json_add(o, "started_at", json_time_or_null(in->start_time)) < 0 ||
            json_add(o, "connected_at", json_time_or_null(in->connected_at)) < 0 ||
            json_add(o, "exited_at", json_time_or_null(in->exited_at)) < 0 ||
            json_add(o, "last_sample_at", in->last_sample_at > 0 ? json_real(in->last_sample_at) : json_null()) < 0 ||
            json_add(o, "samples", json_integer(in->samples)) < 0 ||
            json_add(o, "rss_bytes", in->last_rss_bytes >= 0 ? json_integer(in->last_rss_bytes) : json_null()) < 0 ||
            json_add(o, "python_allocated_blocks",
                in->last_python_allocated_blocks >= 0 ? json_integer(in->last_python_allocated_blocks) : json_null()) < 0 ||
            json_add(o, "leak_verdict", json_string_lossy(in->leak_verdict[0] ? in->leak_verdict : "none")) < 0 ||
            json_add(o, "stored_only", json_true()) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *stored_detail_new(const StoreProcessInfo *in) {
        _cleanup_json_ json_t *root = json_object(), *o = stored_summary_new(in, false), *leak = json_object();

        if (!root || !o || !leak ||
            json_add(o, "hostname", json_string_lossy(in->hostname)) < 0 ||
            json_add(o, "agent_version", json_string_lossy(in->agent_version)) < 0 ||
            json_add(leak, "verdict", json_string_lossy(in->leak_verdict[0] ? in->leak_verdict : "none")) < 0 ||
            json_add(root, "process", TAKE_PTR(o)) < 0 ||
            json_add(root, "latest_sample", json_null()) < 0 ||
            json_add(root, "leak", TAKE_PTR(leak)) < 0)
                return NULL;
        return TAKE_PTR(root);
}

/* One page of a listing: entries before `offset` are skipped, `limit` are kept, and one more
 * only tells that there is a next page. */
typedef struct Page {
        size_t offset, limit;
        size_t position; /* entries seen so far */
        json_t *list;
} Page;

/* Whether the entry at the page's position is to be listed; advances the position. */
static bool page_take(Page *pg) {
        size_t at = pg->position++;
        return at >= pg->offset && at < pg->offset + pg->limit;
}

static bool page_full(const Page *pg) {
        return pg->position > pg->offset + pg->limit;
}

typedef struct StoredList {
        const char **ids; /* the registry's ids, sorted */
        size_t n_ids;
        Page *page;
} StoredList;

static int compare_ids(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int on_stored_process(void *userdata, const StoreProcessInfo *in) {
        StoredList *sl = userdata;
        const char *key = in->id;

        /* Records the registry holds were listed already, from memory (fresher). A sorted
         * copy of their ids: up to 10000 stored rows against up to max_processes records. */
        if (in->exited_at <= 0 || (sl->n_ids > 0 && bsearch(&key, sl->ids, sl->n_ids, sizeof *sl->ids, compare_ids)))
                return 0;
        if (page_take(sl->page) && json_append(sl->page->list, stored_summary_new(in, true)) < 0)
                return -ENOMEM;
        /* One past the page: there is a next one, and nothing more to read. */
        return page_full(sl->page) ? -ECANCELED : 0;
}

static json_t *process_summary_new(const Process *p, bool listed) {
        _cleanup_json_ json_t *o = json_object();

        if (!o || add_process_summary(o, p, listed) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *gc_generation_new(const HwGcGeneration *g) {
        _cleanup_json_ json_t *o = json_object();

        if (!o ||
            json_add(o, "count", json_integer(g->count)) < 0 ||
            json_add(o, "threshold", json_integer(g->threshold)) < 0 ||
            json_add(o, "collections", json_integer(g->collections)) < 0 ||
            json_add(o, "collected", json_integer(g->collected)) < 0 ||
            json_add(o, "uncollectable", json_integer(g->uncollectable)) < 0 ||
            json_add(o, "pauses", json_integer(g->pauses)) < 0 ||
            json_add(o, "pause_seconds_total", json_number_or_null(g->pause_seconds_total)) < 0 ||
            json_add(o, "pause_seconds_max", json_number_or_null(g->pause_seconds_max)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *sample_new(const HwSample *s) {
        _cleanup_json_ json_t *o = NULL, *process = NULL, *cgroup = NULL, *python = NULL,
                              *gens = NULL, *gc = NULL, *agent = NULL;
        unsigned n = s->gc_generations < HW_GC_GENERATIONS_MAX ? s->gc_generations : HW_GC_GENERATIONS_MAX;

        process = json_object();
        if (!process ||
            json_add(process, "rss_bytes", json_integer(s->rss_bytes)) < 0 ||
            json_add(process, "rss_peak_bytes", json_integer(s->rss_peak_bytes)) < 0 ||
            json_add(process, "vm_bytes", json_integer(s->vm_bytes)) < 0 ||
            json_add(process, "threads", json_integer(s->threads)) < 0)
                return NULL;

        if (s->has_cgroup) {
                cgroup = json_object();
                if (!cgroup ||
                    json_add(cgroup, "path", json_string_lossy(s->cgroup_path)) < 0 ||
                    json_add(cgroup, "memory_current_bytes", json_integer(s->cgroup_memory_current_bytes)) < 0 ||
                    json_add(cgroup, "memory_max_bytes",
                        s->cgroup_memory_max_bytes >= 0 ? json_integer(s->cgroup_memory_max_bytes) : json_null()) < 0)
                        return NULL;
        }

        python = json_object();
        if (!python || json_add(python, "allocated_blocks", json_integer(s->python_allocated_blocks)) < 0)
                return NULL;
        if (s->has_arenas &&
            (json_add(python, "arena_allocs_total", json_integer(s->arena_allocs_total)) < 0 ||
             json_add(python, "arena_frees_total", json_integer(s->arena_frees_total)) < 0 ||
             json_add(python, "arena_size_bytes", json_integer(s->arena_size_bytes)) < 0))
                return NULL;

        gens = json_array();
        if (!gens)
                return NULL;
        for (unsigned g = 0; g < n; g++)
                if (json_append(gens, gc_generation_new(&s->gc[g])) < 0)
                        return NULL;
        gc = json_object();
        if (!gc ||
            json_add(gc, "enabled", json_boolean(s->gc_enabled)) < 0 ||
            json_add(gc, "garbage", json_integer(s->gc_garbage)) < 0 ||
            json_add(gc, "generations", TAKE_PTR(gens)) < 0)
                return NULL;

        agent = json_object();
        if (!agent ||
            json_add(agent, "samples_dropped_total", json_integer(s->agent_samples_dropped_total)) < 0 ||
            json_add(agent, "reconnects_total", json_integer(s->agent_reconnects_total)) < 0 ||
            json_add(agent, "sample_seconds", json_number_or_null(s->agent_sample_seconds)) < 0)
                return NULL;

        o = json_object();
        if (!o ||
            json_add(o, "seq", json_integer((json_int_t) s->seq)) < 0 ||
            json_add(o, "time", json_number_or_null(s->time)) < 0 ||
            json_add(o, "process", TAKE_PTR(process)) < 0 ||
            (cgroup && json_add(o, "cgroup", TAKE_PTR(cgroup)) < 0) ||
            json_add(o, "python", TAKE_PTR(python)) < 0 ||
            json_add(o, "gc", TAKE_PTR(gc)) < 0 ||
            json_add(o, "agent", TAKE_PTR(agent)) < 0)
                return NULL;
        if (s->gc_garbage_finalizers >= 0 &&
            json_add(json_object_get(o, "gc"), "garbage_finalizers", json_integer(s->gc_garbage_finalizers)) < 0)
                return NULL;
        if (s->gc_finalizers_collected >= 0 &&
            (json_add(json_object_get(o, "gc"), "finalizers_collected", json_integer(s->gc_finalizers_collected)) < 0 ||
             json_add(json_object_get(o, "gc"), "finalizers_collections", json_integer(s->gc_finalizers_collections)) < 0 ||
             json_add(json_object_get(o, "gc"), "finalizers_skipped", json_integer(s->gc_finalizers_skipped)) < 0))
                return NULL;
        if (s->has_malloc &&
            json_add(o, "malloc", json_pack("{s:I,s:I,s:I,s:I,s:I}", "arena_bytes", (json_int_t) s->malloc_arena_bytes,
                                            "in_use_bytes", (json_int_t) s->malloc_in_use_bytes, "free_bytes",
                                            (json_int_t) s->malloc_free_bytes, "mmapped_bytes",
                                            (json_int_t) s->malloc_mmapped_bytes, "keepcost_bytes",
                                            (json_int_t) s->malloc_keepcost_bytes)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* What the kernel says about the process (docs/security.md "Identity"): pid, uid and gid from
 * SO_PEERCRED in the daemon's pid namespace; the pid the agent sees in its own namespace and
 * whether its claim was checked against the kernel; the namespace, cgroup and container. */
static json_t *identity_new(const Process *p) {
        _cleanup_json_ json_t *o = NULL, *ns = NULL;
        const PeerIdentity *id = &p->identity;

        ns = json_object();
        if (!ns ||
            json_add(ns, "known", json_boolean(id->ns.known)) < 0 ||
            json_add(ns, "same_as_daemon", id->ns.known ? json_boolean(id->ns.depth == 1) : json_null()) < 0 ||
            json_add(ns, "depth", id->ns.known ? json_integer(id->ns.depth) : json_null()) < 0 ||
            json_add(ns, "inode", id->ns.pidns_inode ? json_integer((json_int_t) id->ns.pidns_inode) : json_null()) < 0)
                return NULL;
        o = json_object();
        if (!o ||
            json_add(o, "pid", json_integer(p->pid)) < 0 ||
            json_add(o, "uid", json_integer(p->uid)) < 0 ||
            json_add(o, "gid", json_integer(p->gid)) < 0 ||
            json_add(o, "agent_pid", json_integer(p->hello.pid)) < 0 ||
            json_add(o, "agent_pid_verified", json_boolean(id->claim_verified)) < 0 ||
            json_add(o, "pid_namespace", TAKE_PTR(ns)) < 0 ||
            json_add(o, "cgroup", id->cgroup[0] ? json_string_lossy(id->cgroup) : json_null()) < 0 ||
            json_add(o, "container_id", id->container_id[0] ? json_string(id->container_id) : json_null()) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *process_detail_new(const Process *p) {
        _cleanup_json_ json_t *root = NULL, *o = NULL, *python = NULL, *pauses = NULL;
        unsigned n = 0;

        o = process_summary_new(p, false);
        if (!o)
                return NULL;

        python = json_object();
        if (!python ||
            json_add(python, "version", json_string_lossy(p->hello.python_version)) < 0 ||
            json_add(python, "implementation", json_string_lossy(p->hello.python_implementation)) < 0 ||
            json_add(python, "hexversion", json_integer(p->hello.python_hexversion)) < 0 ||
            json_add(python, "build", json_string_lossy(p->hello.python_build)) < 0 ||
            json_add(python, "compiler", json_string_lossy(p->hello.python_compiler)) < 0)
                return NULL;

        if (json_add(o, "hostname", json_string_lossy(p->hello.hostname)) < 0 ||
            json_add(o, "agent_version", json_string_lossy(p->hello.agent_version)) < 0 ||
            json_add(o, "agent_pid", json_integer(p->hello.pid)) < 0 ||
            json_add(o, "interval", p->hello.interval > 0 ? json_number_or_null(p->hello.interval) : json_null()) < 0 ||
            json_add(o, "connections", json_integer(p->connections)) < 0 ||
            json_add(o, "python", TAKE_PTR(python)) < 0 ||
            json_add(o, "identity", identity_new(p)) < 0)
                return NULL;

        /* Daemon-side sums over every sample received, one per generation the agent reports. */
        pauses = json_array();
        if (!pauses)
                return NULL;
        if (p->has_sample)
                n = p->latest.gc_generations < HW_GC_GENERATIONS_MAX ? p->latest.gc_generations : HW_GC_GENERATIONS_MAX;
        for (unsigned g = 0; g < n; g++)
                if (json_append(pauses, json_number_or_null(p->gc_pause_seconds_total[g])) < 0)
                        return NULL;

        root = json_object();
        if (!root ||
            json_add(root, "process", TAKE_PTR(o)) < 0 ||
            json_add(root, "latest_sample", p->has_sample ? sample_new(&p->latest) : json_null()) < 0 ||
            json_add(root, "gc_pause_seconds_total", TAKE_PTR(pauses)) < 0 ||
            json_add(root, "leak", api_process_leak_new(p)) < 0 ||
            json_add(root, "evidence", leak_evidence_process_json(p)) < 0)
                return NULL;
        return TAKE_PTR(root);
}

typedef struct ProcessRef {
        const Process *p;
        size_t index;
} ProcessRef;

/* Live first, then exited; within each, oldest connection first (registry order breaks ties,
 * which makes the sort stable). */
static int process_ref_compare(const void *a, const void *b) {
        const ProcessRef *x = a, *y = b;

        if (x->p->state != y->p->state)
                return x->p->state == PROCESS_LIVE ? -1 : 1;
        if (x->p->connected_at != y->p->connected_at)
                return x->p->connected_at < y->p->connected_at ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

static bool filter_accepts(ProcessFilter f, const Process *p) {
        switch (f) {
        case PROCESS_FILTER_LIVE:
                return p->state == PROCESS_LIVE;
        case PROCESS_FILTER_EXITED:
                return p->state == PROCESS_EXITED;
        default:
                return true;
        }
}

static json_t *processes_new(Registry *reg, const ProcessesQuery *q) {
        _cleanup_json_ json_t *root = NULL, *list = NULL;
        _cleanup_free_ ProcessRef *refs = NULL;
        size_t n = 0, count = registry_count(reg);
        Page page = { .offset = q->offset, .limit = q->limit };

        if (count > 0) {
                refs = calloc(count, sizeof *refs);
                if (!refs)
                        return NULL;
        }
        for (size_t i = 0; i < count; i++) {
                const Process *p = registry_at(reg, i);
                if (p && filter_accepts(q->filter, p))
                        refs[n++] = (ProcessRef) { .p = p, .index = i };
        }
        if (n > 1)
                qsort(refs, n, sizeof *refs, process_ref_compare);

        list = json_array();
        if (!list)
                return NULL;
        page.list = list;
        for (size_t i = 0; i < n && !page_full(&page); i++)
                if (page_take(&page) && json_append(list, process_summary_new(refs[i].p, true)) < 0)
                        return NULL;
        /* Then ended processes only the store remembers, most recently ended first, within the
         * longest retention and the row cap. */
        if (q->filter != PROCESS_FILTER_LIVE && registry_get_store(reg) && !page_full(&page)) {
                Store *store = registry_get_store(reg);
                const StoreConfig *c = store_get_config(store);
                _cleanup_free_ const char **ids = count > 0 ? calloc(count, sizeof *ids) : NULL;
                StoredList sl = { ids, 0, &page };
                int r;

                if (count > 0 && !ids)
                        return NULL;
                for (size_t i = 0; i < count; i++)
                        ids[sl.n_ids++] = registry_at(reg, i)->id;
                if (sl.n_ids > 1)
                        qsort(ids, sl.n_ids, sizeof *ids, compare_ids);
                r = store_list_processes(store, now_unix() - c->tiers[c->n_tiers - 1].retention, true,
                                             API_STORED_PROCESSES_MAX, on_stored_process, &sl);
                if (r == -ENOMEM)
                        return NULL;
        }

        root = json_object();
        if (!root || json_add(root, "processes", TAKE_PTR(list)) < 0 ||
            json_add(root, "next_offset", page_full(&page) ? json_integer((json_int_t) (q->offset + q->limit)) : json_null()) < 0)
                return NULL;
        return TAKE_PTR(root);
}

static json_t *healthz_new(Registry *reg, double now) {
        _cleanup_json_ json_t *o = json_object();
        double uptime = daemon_stats.start_time > 0 ? now - daemon_stats.start_time : 0;

        if (!o ||
            json_add(o, "status", json_string("ok")) < 0 ||
            json_add(o, "version", json_string(PACKAGE_VERSION)) < 0 ||
            json_add(o, "uptime_seconds", json_real(isfinite(uptime) && uptime > 0 ? uptime : 0.0)) < 0 ||
            json_add(o, "agents_connected", json_integer((json_int_t) daemon_stats.agents_connected)) < 0 ||
            json_add(o, "processes_tracked", json_integer((json_int_t) registry_count(reg))) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* One point or bucket of a series, from memory (n = 1) or from a stored tier. */
typedef struct Cell {
        double t;
        double n;
        double min, max, sum, last;
} Cell;

typedef enum SeriesAgg {
        AGG_MEAN,
        AGG_MIN,
        AGG_MAX,
        AGG_LAST,
} SeriesAgg;

static const char *const agg_names[] = { [AGG_MEAN] = "mean", [AGG_MIN] = "min", [AGG_MAX] = "max", [AGG_LAST] = "last" };

typedef struct Cells {
        Cell *c;
        size_t n, alloc, max;
} Cells;

static int cells_push(Cells *cs, const Cell *c) {
        if (cs->n >= cs->max)
                return -E2BIG;
        if (cs->n == cs->alloc) {
                size_t n = cs->alloc ? cs->alloc * 2 : 1024;
                Cell *a = realloc(cs->c, n * sizeof *a);
                if (!a)
                        return -ENOMEM;
                cs->c = a;
                cs->alloc = n;
        }
        cs->c[cs->n++] = *c;
        return 0;
}

typedef struct DiskRead {
        Cells *cells;
        HistoryMetric metric;
        double before; /* rows starting at or after this are left to memory */
        double last_t;
} DiskRead;

static int on_disk_row(void *userdata, double t, uint32_t n, const StoreAgg aggs[_HISTORY_METRIC_MAX]) {
        DiskRead *d = userdata;
        const StoreAgg *a = &aggs[d->metric];

        if (t >= d->before)
                return -ECANCELED;
        if (!isfinite(a->mean) || !isfinite(a->min) || !isfinite(a->max) || !isfinite(a->last))
                return 0;
        d->last_t = t;
        return cells_push(d->cells, &(Cell) { t, n, a->min, a->max, a->mean * n, a->last });
}

static double cell_value(const Cell *c, SeriesAgg agg) {
        switch (agg) {
        case AGG_MIN:
                return c->min;
        case AGG_MAX:
                return c->max;
        case AGG_LAST:
                return c->last;
        default:
                return c->sum / c->n;
        }
}

static int append_point(json_t *points, double t, double v) {
        _cleanup_json_ json_t *pair = json_array();

        if (!pair || json_append(pair, json_real(t)) < 0 || json_append(pair, json_value(v)) < 0 ||
            json_append(points, TAKE_PTR(pair)) < 0)
                return -ENOMEM;
        return 0;
}

/* The series of one process in [from, to]: the stored tier for the part before the process's
 * in-memory history begins (the finest tier whose retention reaches `from`, or with a step the
 * coarsest such tier that is still at least as fine as the step), then the raw points in memory.
 * The stored bucket that straddles the start of memory is used too (it holds the samples from
 * before a restart that memory lost), and raw points follow from the start of memory. Without a step every point or bucket is returned; with one, cells
 * are merged into buckets aligned to `from` (weighted by their sample counts for the mean).
 * More than SERIES_POINTS_MAX points raises the step. */
typedef struct SeriesResult {
        json_t *points;
        double step;            /* effective; 0 without */
        bool step_adjusted;
        double resolution;      /* of the stored tier used; 0 when memory only */
        double memory_from;     /* where raw points take over (NAN: no memory part) */
} SeriesResult;

static double adjusted_step(double from, double to, double step) {
        /* The smallest whole-millisecond step that fits the cap. */
        double s = fmax(fmax(step, SERIES_STEP_MIN), (to - from) / (SERIES_POINTS_MAX - 2));
        s = ceil(s * 1000) / 1000;
        /* One bucket to spare: buckets align to the requested `from`, not to where data starts. */
        while (series_bucket_count(from, to, s) > SERIES_POINTS_MAX - 1)
                s = ceil(s * 1.01 * 1000) / 1000;
        return s;
}

static int series_build(const Process *p, Store *store, const char *id, const SeriesQuery *q, double data_from,
                        SeriesAgg agg, double now, SeriesResult *ret) {
        _cleanup_json_ json_t *points = NULL;
        _cleanup_free_ Cell *cells_mem = NULL;
        Cells cs = { .max = 4 * SERIES_POINTS_MAX + 16 }; /* stored rows read at most; plus memory's */
        const History *h = p ? p->history : NULL;
        double mem_first = INFINITY, step = q->step, disk_to;
        size_t lo = 0, hi = 0, tier = 0;
        bool use_disk, adjusted = false;
        const StoreConfig *c = store ? store_get_config(store) : NULL;
        int r;

        if (h && history_size(h) > 0) {
                mem_first = history_get(h, 0)->time;
                lo = history_lower_bound(h, q->from);
                /* The first point after `to`, so `to` itself is included. */
                hi = history_lower_bound(h, nextafter(q->to, INFINITY));
        }
        cs.max += hi - lo;
        use_disk = c && q->from < mem_first && store_is_readable(store);
        disk_to = fmin(q->to, mem_first);

        if (use_disk) {
                /* The finest tier reaching back to where the data starts... */
                for (tier = 0; tier + 1 < c->n_tiers && now - c->tiers[tier].retention > data_from; tier++)
                        ;
        }
        /* Raise a step that gives too many points (only the part of the range after the process
         * started can hold any); without a step, estimate what the range holds. */
        if (step > 0 && series_bucket_count(data_from, q->to, step) > SERIES_POINTS_MAX) {
                step = adjusted_step(data_from, q->to, step);
                adjusted = true;
        } else if (step <= 0) {
                double estimate = (double) (hi - lo);
                if (use_disk)
                        estimate += (disk_to - data_from) / c->tiers[tier].resolution;
                if (estimate > SERIES_POINTS_MAX) {
                        step = adjusted_step(data_from, q->to, 0);
                        adjusted = true;
                }
        }
        if (use_disk && step > 0)
                /* ...or a coarser one that still reaches back and is no coarser than the step. */
                while (tier + 1 < c->n_tiers && c->tiers[tier + 1].resolution <= step)
                        tier++;

        if (use_disk) {
                DiskRead d = { .cells = &cs, .metric = q->metric, .before = mem_first, .last_t = NAN };
                /* Buckets that overlap [from, to], including the one `from` falls in. */
                r = store_read(store, id, tier, q->from - c->tiers[tier].resolution + 1, disk_to, cs.max, on_disk_row,
                               &d, NULL);
                if (r < 0 && r != -ECANCELED && r != -ENOENT && r != -EAGAIN) {
                        free(cs.c);
                        return r == -E2BIG ? -E2BIG : r;
                }
        }
        cells_mem = cs.c;
        for (size_t i = lo; i < hi; i++) {
                const HistoryPoint *pt = history_get(h, i);
                double v = pt->values[q->metric];
                if (!isfinite(v))
                        continue;
                r = cells_push(&cs, &(Cell) { pt->time, 1, v, v, v, v });
                cells_mem = cs.c;
                if (r < 0)
                        return r;
        }

        if (step <= 0 && cs.n > SERIES_POINTS_MAX) {
                step = adjusted_step(data_from, q->to, 0);
                adjusted = true;
        }

        points = json_array();
        if (!points)
                return -ENOMEM;
        if (step <= 0) {
                for (size_t i = 0; i < cs.n; i++)
                        if (append_point(points, cs.c[i].t, cell_value(&cs.c[i], agg)) < 0)
                                return -ENOMEM;
        } else {
                size_t buckets = series_bucket_count(q->from, q->to, step), current = SIZE_MAX;
                Cell acc = {};

                for (size_t i = 0; i <= cs.n; i++) {
                        const Cell *cell = i < cs.n ? &cs.c[i] : NULL;
                        size_t b = SIZE_MAX;

                        if (cell) {
                                /* A stored bucket that began before `from` counts in the first. */
                                b = cell->t <= q->from ? 0 : (size_t) floor((cell->t - q->from) / step);
                                if (b >= buckets) /* rounding at `to` */
                                        b = buckets - 1;
                        }
                        if (b != current && acc.n > 0) {
                                if (append_point(points, q->from + (double) current * step, cell_value(&acc, agg)) < 0)
                                        return -ENOMEM;
                                acc = (Cell) {};
                        }
                        if (!cell)
                                break;
                        if (acc.n == 0) {
                                acc = *cell;
                        } else {
                                acc.n += cell->n;
                                acc.sum += cell->sum;
                                acc.min = fmin(acc.min, cell->min);
                                acc.max = fmax(acc.max, cell->max);
                                acc.last = cell->last;
                        }
                        current = b;
                }
        }
        ret->points = TAKE_PTR(points);
        ret->step = step;
        ret->step_adjusted = adjusted;
        if (adjusted)
                limit_hit(LIMIT_SERIES_POINTS);
        ret->resolution = use_disk ? c->tiers[tier].resolution : 0;
        ret->memory_from = hi > lo ? history_get(h, lo)->time : NAN;
        return 0;
}

typedef struct Reply {
        int status;
        char error[ROUTER_ERROR_MAX];
        json_t *json;
} Reply;

static const char *lookup(ApiQueryFunc query, void *userdata, const char *key) {
        return query ? query(userdata, key) : NULL;
}

static int handle_series(Registry *reg, const Route *route, ApiQueryFunc query, void *userdata, double now,
                         Reply *reply) {
        _cleanup_json_ json_t *root = NULL;
        Store *store = registry_get_store(reg);
        SeriesResult res = {};
        SeriesAgg agg = AGG_MEAN;
        const char *agg_text;
        double started, data_from;
        SeriesQuery q;
        Process *p;
        int r;

        p = registry_find(reg, route->id);
        if (p)
                started = p->start_time;
        else {
                /* An ended process the daemon no longer holds in memory: the store has it. */
                StoreProcessInfo info;
                if (!store || store_get_process(store, route->id, &info) < 0) {
                        reply->status = 404;
                        snprintf(reply->error, sizeof reply->error, "unknown process id \"%s\"", route->id);
                        return 0;
                }
                started = info.start_time;
        }

        r = router_parse_series_query(lookup(query, userdata, "metric"), lookup(query, userdata, "from"),
                                      lookup(query, userdata, "to"), lookup(query, userdata, "step"), now, &q,
                                      reply->error, sizeof reply->error);
        if (r < 0) {
                reply->status = 400;
                return 0;
        }
        /* Nothing exists before the process started: from=0 means "all of it", at the finest
         * tier that holds it, not a step stretched over decades. */
        /* A clock that stepped back (or an agent in another pid namespace) may date samples
         * before the start: never clamp past the data. */
        if (p && history_size(p->history) > 0)
                started = fmin(started, history_get(p->history, 0)->time);
        if (store && store_is_readable(store)) {
                const StoreConfig *c = store_get_config(store);
                double first;
                if (store_span(store, route->id, c->n_tiers - 1, &first, NULL) >= 0)
                        started = fmin(started, first);
        }
        data_from = started > 0 && q.from < started ? fmin(floor(started), q.to) : q.from;
        agg_text = lookup(query, userdata, "agg");
        if (agg_text) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(agg_names); i++)
                        if (strcmp(agg_text, agg_names[i]) == 0)
                                break;
                if (i == ELEMENTSOF(agg_names)) {
                        reply->status = 400;
                        snprintf(reply->error, sizeof reply->error, "invalid agg: expected mean, min, max or last");
                        return 0;
                }
                agg = (SeriesAgg) i;
        }

        r = series_build(p, store, route->id, &q, data_from, agg, now, &res);
        if (r == -E2BIG) {
                reply->status = 400;
                snprintf(reply->error, sizeof reply->error, "too many points in [from, to]; pass a larger step");
                return 0;
        }
        if (r < 0)
                return r;

        root = json_object();
        if (!root ||
            json_add(root, "id", json_string(route->id)) < 0 ||
            json_add(root, "metric", json_string(history_metric_to_string(q.metric))) < 0 ||
            json_add(root, "agg", json_string(agg_names[agg])) < 0 ||
            json_add(root, "from", json_real(q.from)) < 0 ||
            json_add(root, "to", json_real(q.to)) < 0 ||
            json_add(root, "step", res.step > 0 ? json_real(res.step) : json_null()) < 0 ||
            json_add(root, "requested_step", q.step > 0 ? json_real(q.step) : json_null()) < 0 ||
            json_add(root, "step_adjusted", json_boolean(res.step_adjusted)) < 0 ||
            json_add(root, "resolution", res.resolution > 0 ? json_real(res.resolution) : json_null()) < 0 ||
            json_add(root, "memory_from", isfinite(res.memory_from) ? json_real(res.memory_from) : json_null()) < 0 ||
            json_add(root, "points", TAKE_PTR(res.points)) < 0) {
                json_decref(res.points);
                return -ENOMEM;
        }

        reply->status = 200;
        reply->json = TAKE_PTR(root);
        return 0;
}

static int handle_json(Registry *reg, const Route *route, ApiQueryFunc query, void *userdata, double now,
                       Reply *reply) {
        ProcessesQuery pq;
        Process *p;

        switch (route->kind) {
        case ROUTE_HEALTHZ:
                reply->json = healthz_new(reg, now);
                break;

        case ROUTE_PROCESSES:
                if (router_parse_processes_query(lookup(query, userdata, "state"), lookup(query, userdata, "limit"),
                                                 lookup(query, userdata, "offset"), &pq, reply->error,
                                                 sizeof reply->error) < 0) {
                        reply->status = 400;
                        return 0;
                }
                reply->json = processes_new(reg, &pq);
                break;

        case ROUTE_PROCESS:
                p = registry_find(reg, route->id);
                if (!p) {
                        StoreProcessInfo info;
                        Store *store = registry_get_store(reg);
                        if (store && store_get_process(store, route->id, &info) >= 0) {
                                reply->json = stored_detail_new(&info);
                                break;
                        }
                        reply->status = 404;
                        snprintf(reply->error, sizeof reply->error, "unknown process id \"%s\"", route->id);
                        return 0;
                }
                reply->json = process_detail_new(p);
                break;

        case ROUTE_SERIES:
                return handle_series(reg, route, query, userdata, now, reply);

        case ROUTE_HEAP: {
                HeapQuery hq;

                p = registry_find(reg, route->id);
                if (!p) {
                        reply->status = 404;
                        snprintf(reply->error, sizeof reply->error, "unknown process id \"%s\"", route->id);
                        return 0;
                }
                if (router_parse_heap_query(lookup(query, userdata, "window"), lookup(query, userdata, "limit"), &hq,
                                            reply->error, sizeof reply->error) < 0) {
                        reply->status = 400;
                        return 0;
                }
                reply->json = process_heap_json(p->heap, p->id, now, hq.window, hq.limit);
                break;
        }

        case ROUTE_LEAKS: {
                LeakFilter lf;
                if (router_parse_leaks_query(lookup(query, userdata, "state"), &lf, reply->error,
                                             sizeof reply->error) < 0) {
                        reply->status = 400;
                        return 0;
                }
                reply->json = api_leaks_new(reg, lf);
                break;
        }

        case ROUTE_CENSUS: {
                CensusQuery cq;

                if (router_parse_census_query(lookup(query, userdata, "from"), lookup(query, userdata, "to"), now, &cq,
                                              reply->error, sizeof reply->error) < 0) {
                        reply->status = 400;
                        return 0;
                }
                return api_census_get(reg, route->id, &cq, now, &reply->status, &reply->json, reply->error,
                                      sizeof reply->error);
        }

        case ROUTE_CENSUS_REQUEST: {
                const char *message = NULL;
                int status = 0;

                /* It makes an agent work inside its process: the daemon's access policy first
                 * (token or loopback client, per-process and per-client rates; query userdata
                 * is the MHD connection). */
                if (http_access_check_agent_work(userdata, route->id, &status, &message) != 0) {
                        reply->status = status;
                        snprintf(reply->error, sizeof reply->error, "%s", message ? message : "refused");
                        return 0;
                }
                return api_census_request(reg, route->id, now, &reply->status, &reply->json, reply->error,
                                          sizeof reply->error);
        }

        case ROUTE_METHOD_NOT_ALLOWED:
                reply->status = 405;
                snprintf(reply->error, sizeof reply->error, "method not allowed: use GET or HEAD");
                return 0;

        default:
                reply->status = 404;
                snprintf(reply->error, sizeof reply->error, "not found");
                return 0;
        }

        if (!reply->json)
                return -ENOMEM;
        reply->status = 200;
        return 0;
}

int api_handle(Registry *reg, const Route *route, ApiQueryFunc query, void *userdata, double now,
               int *ret_status, char **ret_body, size_t *ret_size, const char **ret_content_type) {
        _cleanup_free_ char *body = NULL;
        Reply reply = {};
        size_t size;
        int r;

        if (!reg || !route || !ret_status || !ret_body || !ret_size || !ret_content_type)
                return -EINVAL;

        if (route->kind == ROUTE_METRICS) {
                r = metrics_render(reg, &daemon_stats, &body, &size);
                if (r < 0)
                        return r;
                *ret_status = 200;
                *ret_body = TAKE_PTR(body);
                *ret_size = size;
                *ret_content_type = METRICS_CONTENT_TYPE;
                return 0;
        }

        r = handle_json(reg, route, query, userdata, now, &reply);
        if (r >= 0) {
                if (reply.json)
                        r = dump(reply.json, &body, &size);
                else
                        r = api_error_body(reply.error, &body, &size);
        }
        json_decref(reply.json);
        if (r < 0)
                return r;

        *ret_status = reply.status;
        *ret_body = TAKE_PTR(body);
        *ret_size = size;
        *ret_content_type = API_CONTENT_TYPE_JSON;
        return 0;
}
