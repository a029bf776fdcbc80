/* SPDX-License-Identifier: MIT */
/*
 * Census history, growth and chains per process (see census.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "json-util.h"
#include "macro.h"

static size_t min_size(size_t a, size_t b) {
        return a < b ? a : b;
}

CensusConfig census_config = {
        .interval = CENSUS_INTERVAL_DEFAULT,
        .budget_ms = HW_CENSUS_BUDGET_MS_DEFAULT,
        .api_min_interval = CENSUS_API_MIN_INTERVAL_DEFAULT,
        .timeout = CENSUS_TIMEOUT_DEFAULT,
};

/* A container holding many instances of a growing type, as the latest chains reply named it,
 * and the count it held when first named (matched by type and chain text): its growth. */
typedef struct CensusHolder {
        CensusChain chain;
        double time;      /* of the latest reply naming it */
        double base_time; /* of the first reply of the series naming it */
        int64_t base_holds;
} CensusHolder;

struct ProcessCensus {
        CensusRecord history[CENSUS_HISTORY_MAX]; /* oldest first */
        size_t n;

        CensusChain chains[HW_CHAINS_MAX];
        size_t n_chains;
        double chains_time; /* 0: none yet */
        uint64_t chains_visited;
        bool chains_complete;

        CensusHolder holders[HW_HOLDERS_MAX]; /* the latest holders (section "Holders" below) */
        size_t n_holders;

        uint32_t next_id;
        uint32_t pending_id; /* 0: nothing outstanding */
        CensusKind pending_kind;
        double pending_since;
        double last_census_request;
        double last_api_request;
        double finding_since; /* the open finding's opening time, 0 without: its baseline stays */
        bool holders_only;    /* the agent takes a chains request without types */
        double latest_finding_since; /* finding_since when the latest census came in */
        /* After a restart: the stored finding's start and when the history was restored. The
         * replay of the stored floor opens that finding again, at a time near (not exactly at)
         * the original one; a finding opening in between is the same finding. */
        double restored_since, restored_at;

        uint64_t requests_total, replies_total, errors_total, timeouts_total, stale_total;
        char last_error[CENSUS_ERROR_MAX + 1];
};

const char *census_kind_to_string(CensusKind k) {
        return k == CENSUS_KIND_CHAINS ? "chains" : "census";
}

ProcessCensus *process_census_free(ProcessCensus *c) {
        free(c);
        return NULL;
}

int process_census_ensure(ProcessCensus **c) {
        if (*c)
                return 0;
        *c = calloc(1, sizeof **c);
        if (!*c)
                return -ENOMEM;
        (*c)->next_id = 1;
        return 0;
}

static void expire_pending(ProcessCensus *c, double now) {
        if (c->pending_id != 0 && now - c->pending_since >= census_config.timeout) {
                c->timeouts_total++;
                snprintf(c->last_error, sizeof c->last_error, "request %u (%s) timed out", c->pending_id,
                         census_kind_to_string(c->pending_kind));
                c->pending_id = 0;
        }
}

bool process_census_due(ProcessCensus *c, double finding_opened_at, double now) {
        if (!c)
                return finding_opened_at > 0 && census_config.interval > 0;
        c->finding_since = finding_opened_at;
        expire_pending(c, now);
        if (finding_opened_at <= 0 || census_config.interval <= 0 || c->pending_id != 0)
                return false;
        return c->last_census_request < finding_opened_at || now - c->last_census_request >= census_config.interval;
}

int process_census_api_allow(ProcessCensus *c, double now, double *ret_retry_after) {
        expire_pending(c, now);
        if (c->pending_id != 0)
                return -EBUSY;
        if (c->last_api_request > 0 && now - c->last_api_request < census_config.api_min_interval) {
                *ret_retry_after = census_config.api_min_interval - (now - c->last_api_request);
                return -EAGAIN;
        }
        c->last_api_request = now;
        return 0;
}

static size_t baseline_index(const ProcessCensus *c, double since);

/* Is there a census after the baseline, i.e. has growth been looked for? */
static bool census_compared(const ProcessCensus *c, double since) {
        return c->n >= 2 && baseline_index(c, since) + 1 < c->n;
}

void process_census_set_holders_only(ProcessCensus *c, bool holders_only) {
        c->holders_only = holders_only;
}

int process_census_next_request(ProcessCensus *c, CensusKind kind, double since, double now, CensusRequest *ret) {
        CensusRequest req = { .kind = kind, .budget_ms = census_config.budget_ms, .top = CENSUS_TYPES_MAX };

        if (kind == CENSUS_KIND_CHAINS) {
                CensusGrowth g[CENSUS_GROWING_MAX];
                size_t n = process_census_growing(c, since, g, ELEMENTSOF(g));

                /* Builtin types too: the agent finds the containers holding the most instances
                 * (the holders), not the first instance it meets, which for a dict or a tuple is
                 * nearly always an unrelated one (`sys.modules -> dict`). An agent without
                 * holders answers without them, and its chains to builtin types are dropped
                 * (process_census_ingest()). */
                for (size_t i = 0; i < n && req.n_types < HW_CHAINS_TYPES_MAX; i++)
                        snprintf(req.types[req.n_types++], sizeof req.types[0], "%s", g[i].type);
                /* No type the collector tracks grew between two censuses: what grows may be
                 * nothing it tracks (a dict of strings, records whose dicts were untracked).
                 * The largest containers still name it, once their sizes are compared between
                 * two replies. An agent that does not say it takes such a request would see a
                 * protocol error in it. (After one census nothing is known to grow or not.) */
                if (req.n_types == 0 && (!c->holders_only || !census_compared(c, since)))
                        return -ENODATA;
                req.holders = true;
        } else
                c->last_census_request = now;
        req.id = c->next_id++;
        if (c->next_id == 0)
                c->next_id = 1;
        c->pending_id = req.id;
        c->pending_kind = kind;
        c->pending_since = now;
        c->requests_total++;
        *ret = req;
        return 0;
}

void process_census_request_failed(ProcessCensus *c) {
        c->pending_id = 0;
        c->errors_total++;
        snprintf(c->last_error, sizeof c->last_error, "the request could not be sent to the agent");
}

void process_census_detach(ProcessCensus *c) {
        if (c)
                c->pending_id = 0;
}

/* The first record at or after since (the baseline of a finding; c->n when there is none
 * yet), or the oldest without a finding (since 0). */
static size_t baseline_index(const ProcessCensus *c, double since) {
        if (since <= 0)
                return 0;
        if (c->restored_since > 0 && since >= c->restored_since && since <= c->restored_at)
                since = c->restored_since;
        for (size_t i = 0; i < c->n; i++)
                if (c->history[i].time >= since)
                        return i;
        return c->n;
}

/* The slot of a new record at the end, the oldest one dropped when full except the open
 * finding's baseline. */
static CensusRecord *history_append(ProcessCensus *c) {
        if (c->n == CENSUS_HISTORY_MAX) {
                /* drop the oldest record except the open finding's baseline */
                size_t keep = baseline_index(c, c->finding_since), drop = keep == 0 ? 1 : 0;

                memmove(&c->history[drop], &c->history[drop + 1], (c->n - drop - 1) * sizeof c->history[0]);
                c->n--;
        }
        return &c->history[c->n++];
}

static void history_add(ProcessCensus *c, const CensusReply *r) {
        CensusRecord *rec = history_append(c);

        *rec = (CensusRecord) {
                .id = r->id,
                .time = r->time,
                .duration_seconds = r->duration_seconds,
                .gil_seconds = r->gil_seconds,
                .gil_cpu_seconds = r->gil_cpu_seconds,
                .budget_seconds = r->budget_seconds,
                .slices = r->slices,
                .complete = r->complete,
                .sampled = r->sampled,
                .consistent = r->consistent,
                .fraction = r->fraction,
                .objects = r->objects,
                .types_total = r->types_total,
                .n_types = min_size(r->n_types, CENSUS_TYPES_MAX),
        };
        memcpy(rec->types, r->types, rec->n_types * sizeof rec->types[0]);
        c->latest_finding_since = c->finding_since;
}

int process_census_latest(const ProcessCensus *c, const CensusRecord **ret, double *ret_finding_since) {
        if (!c || c->n == 0)
                return -ENODATA;
        *ret = &c->history[c->n - 1];
        *ret_finding_since = c->latest_finding_since;
        return 0;
}

int process_census_restore(ProcessCensus *c, const CensusRecord *r, double finding_since, double now) {
        CensusRecord *rec;

        /* times increase along the history: the baseline logic depends on it */
        if (c->n > 0 && !(r->time > c->history[c->n - 1].time))
                return -ESTALE;
        if (finding_since > 0)
                c->finding_since = finding_since;
        c->restored_since = finding_since;
        c->restored_at = now;
        rec = history_append(c);
        *rec = *r;
        rec->n_types = min_size(r->n_types, CENSUS_TYPES_MAX);
        c->latest_finding_since = finding_since;
        /* new request ids follow the restored ones: one id names one census in the API */
        if (r->id >= c->next_id && r->id < UINT32_MAX)
                c->next_id = r->id + 1;
        return 0;
}

/* ---- Holders ----------------------------------------------------------------------------- */

static const CensusHolder *holder_find(const ProcessCensus *c, const CensusChain *h) {
        for (size_t i = 0; i < c->n_holders; i++)
                if (c->holders[i].chain.root[0] && strcmp(c->holders[i].chain.type, h->type) == 0 &&
                    strcmp(c->holders[i].chain.chain, h->chain) == 0)
                        return &c->holders[i];
        return NULL;
}

/* The latest holders replace the previous ones; one named before (same type, same chain from
 * the same root) keeps its first count. A holder no root reaches has no name to match by. */
static void holders_ingest(ProcessCensus *c, const CensusReply *r, double t) {
        CensusHolder next[HW_HOLDERS_MAX];
        size_t n = 0;

        for (size_t i = 0; i < r->n_holders && i < HW_HOLDERS_MAX; i++) {
                const CensusHolder *before = holder_find(c, &r->holders[i]);

                next[n++] = (CensusHolder) {
                        .chain = r->holders[i],
                        .time = t,
                        .base_time = before ? before->base_time : t,
                        .base_holds = before ? before->base_holds : r->holders[i].holds,
                };
        }
        memcpy(c->holders, next, n * sizeof next[0]);
        c->n_holders = n;
}

/* The count of type `name` in the latest census taken at or before t; -1 when unknown. */
static int64_t type_count_at(const ProcessCensus *c, const char *name, double t) {
        for (size_t i = c->n; i > 0; i--) {
                const CensusRecord *rec = &c->history[i - 1];

                if (rec->time > t)
                        continue;
                for (size_t k = 0; k < rec->n_types; k++)
                        if (strcmp(rec->types[k].name, name) == 0)
                                return (int64_t) rec->types[k].count;
                return -1;
        }
        return -1;
}

/* A holder's growth since it was first named (false: named once only, or no root reaches it),
 * and its share of its type's growth over the same censuses (NaN: unknown). */
static bool holder_growth(const ProcessCensus *c, const CensusHolder *h, int64_t *ret_growth, double *ret_share) {
        int64_t before, after;

        *ret_share = NAN;
        if (!h->chain.root[0] || !(h->time > h->base_time))
                return false;
        *ret_growth = h->chain.holds - h->base_holds;
        before = type_count_at(c, h->chain.type, h->base_time);
        after = type_count_at(c, h->chain.type, h->time);
        if (before >= 0 && after > before) {
                double share = (double) *ret_growth / (double) (after - before);
                *ret_share = share < 0 ? 0 : share > 1 ? 1 : share;
        }
        return true;
}

/* Counted as a chain from a root to the growing objects: a holder a root reaches that grew. */
static bool holder_grows(const ProcessCensus *c, const CensusHolder *h) {
        int64_t growth;
        double share;

        return holder_growth(c, h, &growth, &share) && growth > 0;
}

static json_t *holder_json(const ProcessCensus *c, const CensusHolder *h) {
        int64_t growth = 0;
        double share = NAN;
        bool known = holder_growth(c, h, &growth, &share);

        return json_pack("{s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:f}", "type", json_string_lossy(h->chain.type), "chain",
                         json_string_lossy(h->chain.chain), "root", json_string_lossy(h->chain.root), "root_kind",
                         json_string_lossy(h->chain.root_kind), "holds", (json_int_t) h->chain.holds, "holds_growth",
                         known ? json_integer(growth) : json_null(), "share_of_growth",
                         isnan(share) ? json_null() : json_real(share), "holds_since", h->base_time);
}

/* A holder named once holds at least half of its type's growth since the finding opened
 * to be evidence: a small table of the standard library that happens to hold a few tuples is
 * not where thousands of them went. (One of the largest containers, of no type the census
 * counts, is evidence only once it grew.) */
#define HOLDER_UNKNOWN_SHARE_MIN 0.5

/* Is h, named once, big enough beside its type's growth since `since`? */
static bool holder_big_enough(const ProcessCensus *c, const CensusHolder *h, double since) {
        CensusGrowth g[CENSUS_GROWING_MAX];
        size_t n = process_census_growing(c, since, g, ELEMENTSOF(g));

        for (size_t i = 0; i < n; i++)
                if (strcmp(g[i].type, h->chain.type) == 0)
                        return (double) h->chain.holds >= HOLDER_UNKNOWN_SHARE_MIN * (double) g[i].count_growth;
        return false;
}

/* The same container named twice (as a type's holder and among the largest, or for two types):
 * once is enough. The one whose growth is known is shown, else the first the agent named. */
static bool holder_shadowed(const ProcessCensus *c, const CensusHolder *h) {
        int64_t g;
        double sh;
        bool known = holder_growth(c, h, &g, &sh);

        for (size_t i = 0; i < c->n_holders; i++) {
                const CensusHolder *o = &c->holders[i];
                bool o_known;

                if (o == h || strcmp(o->chain.chain, h->chain.chain) != 0)
                        continue;
                o_known = holder_growth(c, o, &g, &sh);
                if (o_known != known ? o_known : o < h)
                        return true;
        }
        return false;
}

/* The holders into array a: in a finding's evidence (grown_only) those a root reaches that grew,
 * most growth first, then those named once (their growth is not known yet) that hold a fair
 * share of their type's growth since `since`; in the census view all of them, as the agent
 * ranked them. */
static int holders_json(const ProcessCensus *c, json_t *a, bool grown_only, double since) {
        const CensusHolder *order[HW_HOLDERS_MAX];
        size_t n = 0;

        for (size_t i = 0; i < c->n_holders; i++) {
                const CensusHolder *h = &c->holders[i];
                int64_t growth;
                double share;
                bool known = holder_growth(c, h, &growth, &share);

                if (grown_only && (!h->chain.root[0] || (known && growth <= 0) ||
                                   (!known && !holder_big_enough(c, h, since)) || holder_shadowed(c, h)))
                        continue;
                order[n++] = h;
        }
        if (grown_only)
                /* insertion sort (at most HW_HOLDERS_MAX): grown ones by growth, then unknown */
                for (size_t i = 1; i < n; i++)
                        for (size_t j = i; j > 0; j--) {
                                int64_t ga = -1, gb = -1;
                                double sh;
                                const CensusHolder *tmp;

                                if (!holder_growth(c, order[j - 1], &ga, &sh))
                                        ga = -1;
                                if (!holder_growth(c, order[j], &gb, &sh))
                                        gb = -1;
                                if (gb <= ga)
                                        break;
                                tmp = order[j - 1];
                                order[j - 1] = order[j];
                                order[j] = tmp;
                        }
        for (size_t i = 0; i < n; i++)
                if (json_append(a, holder_json(c, order[i])) < 0)
                        return -ENOMEM;
        return 0;
}

int process_census_ingest(ProcessCensus *c, const CensusReply *r, double now) {
        if (c->pending_id == 0 || r->id != c->pending_id || r->kind != c->pending_kind) {
                c->stale_total++;
                return -ESTALE;
        }
        c->pending_id = 0;
        c->replies_total++;
        if (r->error[0]) {
                c->errors_total++;
                snprintf(c->last_error, sizeof c->last_error, "%s", r->error);
                return 0;
        }
        if (r->kind == CENSUS_KIND_CENSUS) {
                /* times must increase for the baseline logic: a reply is timed by the agent */
                CensusReply fixed;
                if (c->n > 0 && !(r->time > c->history[c->n - 1].time)) {
                        fixed = *r;
                        fixed.time = now > c->history[c->n - 1].time ? now : c->history[c->n - 1].time + 1e-3;
                        r = &fixed;
                }
                history_add(c, r);
        } else if (r->n_chains > 0 || r->n_holders > 0 || r->search_complete) {
                /* A search that ran out of budget without a chain says nothing new: the chains
                 * found before stay (a search that saw everything and found none replaces them). */
                double t = r->time > 0 ? r->time : now;

                c->n_chains = 0;
                for (size_t i = 0; i < r->n_chains && i < HW_CHAINS_MAX; i++)
                        if (r->has_holders || strchr(r->chains[i].type, '.'))
                                c->chains[c->n_chains++] = r->chains[i];
                holders_ingest(c, r, t);
                c->chains_time = t;
                c->chains_visited = r->visited;
                c->chains_complete = r->search_complete;
        }
        return 0;
}

static const CensusType *find_type(const CensusRecord *rec, const char *name) {
        for (size_t i = 0; i < rec->n_types; i++)
                if (strcmp(rec->types[i].name, name) == 0)
                        return &rec->types[i];
        return NULL;
}

static int growth_compare(const void *a, const void *b) {
        const CensusGrowth *x = a, *y = b;

        if (x->count_growth != y->count_growth)
                return x->count_growth > y->count_growth ? -1 : 1;
        return x->size_growth_bytes > y->size_growth_bytes ? -1 : x->size_growth_bytes < y->size_growth_bytes;
}

size_t process_census_growing(const ProcessCensus *c, double since, CensusGrowth *ret, size_t n) {
        CensusGrowth all[CENSUS_TYPES_MAX];
        const CensusRecord *base, *last;
        size_t m = 0;

        if (!c || c->n < 2 || n == 0)
                return 0;
        if (baseline_index(c, since) + 1 >= c->n)
                return 0; /* no census since the finding opened, or only one */
        base = &c->history[baseline_index(c, since)];
        last = &c->history[c->n - 1];
        for (size_t i = 0; i < last->n_types; i++) {
                const CensusType *t = &last->types[i], *b = find_type(base, t->name);
                uint64_t bc, bs;
                int64_t growth;

                if (b) {
                        bc = b->count;
                        bs = b->size_bytes;
                } else if (base->n_types >= CENSUS_TYPES_MAX) {
                        /* below the baseline's list: at most its smallest count */
                        bc = base->types[base->n_types - 1].count;
                        bs = 0;
                } else
                        bc = bs = 0;
                growth = (int64_t) t->count - (int64_t) bc;
                /* noise: a handful of objects, or under 1 % of the count, is not growth */
                if (growth < 8 || (double) growth < 0.01 * (double) t->count)
                        continue;
                all[m++] = (CensusGrowth) {
                        .type = t->name,
                        .count = t->count,
                        .size_bytes = t->size_bytes,
                        .count_growth = growth,
                        .size_growth_bytes = (int64_t) t->size_bytes - (int64_t) bs,
                };
        }
        qsort(all, m, sizeof all[0], growth_compare);
        m = min_size(m, n);
        memcpy(ret, all, m * sizeof all[0]);
        return m;
}

static json_t *growing_json(const ProcessCensus *c, double since) {
        _cleanup_json_ json_t *a = json_array();
        CensusGrowth g[CENSUS_GROWING_MAX];
        size_t n = process_census_growing(c, since, g, ELEMENTSOF(g));

        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_append(a, json_pack("{s:o, s:I, s:I, s:I, s:I}", "type", json_string_lossy(g[i].type),
                                             "count", (json_int_t) g[i].count, "count_growth",
                                             (json_int_t) g[i].count_growth, "size_bytes",
                                             (json_int_t) g[i].size_bytes, "size_growth_bytes",
                                             (json_int_t) g[i].size_growth_bytes)) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

/* The chains to sample instances, then the holders (grown_only: see holders_json()). */
static json_t *chains_json(const ProcessCensus *c, double since, bool grown_only) {
        _cleanup_json_ json_t *a = json_array();

        if (!a)
                return NULL;
        if (c->chains_time < since)
                return TAKE_PTR(a); /* chains older than the finding say nothing about it */
        for (size_t i = 0; i < c->n_chains; i++)
                if (json_append(a, json_pack("{s:o, s:o, s:o, s:o}", "type", json_string_lossy(c->chains[i].type),
                                             "chain", json_string_lossy(c->chains[i].chain), "root",
                                             json_string_lossy(c->chains[i].root), "root_kind",
                                             json_string_lossy(c->chains[i].root_kind))) < 0)
                        return NULL;
        if (holders_json(c, a, grown_only, since) < 0)
                return NULL;
        return TAKE_PTR(a);
}

static json_t *record_json(const CensusRecord *r, bool with_types) {
        _cleanup_json_ json_t *o = json_pack(
                "{s:I, s:f, s:f, s:f, s:f, s:f, s:i, s:b, s:b, s:b, s:f, s:I, s:I}", "request_id", (json_int_t) r->id,
                "time", r->time, "duration_seconds", r->duration_seconds, "gil_seconds", r->gil_seconds,
                "gil_cpu_seconds", r->gil_cpu_seconds,
                "budget_seconds", r->budget_seconds, "slices", (int) r->slices, "complete", r->complete, "sampled",
                r->sampled, "consistent", r->consistent, "fraction", r->fraction, "objects", (json_int_t) r->objects,
                "types_total", (json_int_t) r->types_total);
        _cleanup_json_ json_t *types = NULL;

        if (!o)
                return NULL;
        if (!with_types)
                return TAKE_PTR(o);
        types = json_array();
        if (!types)
                return NULL;
        for (size_t i = 0; i < r->n_types; i++)
                if (json_append(types, json_pack("{s:o, s:I, s:I}", "type", json_string_lossy(r->types[i].name),
                                                 "count", (json_int_t) r->types[i].count, "size_bytes",
                                                 (json_int_t) r->types[i].size_bytes)) < 0)
                        return NULL;
        if (json_add(o, "types", TAKE_PTR(types)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_t *census_record_json(const CensusRecord *r) {
        return record_json(r, true);
}

json_t *process_census_json(const ProcessCensus *c, const char *process_id, double since, double now) {
        _cleanup_json_ json_t *o = json_object(), *list = json_array();

        if (!o || !list || json_add(o, "id", json_string(process_id)) < 0)
                return NULL;
        if (!c) {
                if (json_add(o, "censuses", TAKE_PTR(list)) < 0 || json_add(o, "latest", json_null()) < 0 ||
                    json_add(o, "growing", json_array()) < 0 || json_add(o, "chains", json_array()) < 0 ||
                    json_add(o, "pending", json_null()) < 0)
                        return NULL;
                return TAKE_PTR(o);
        }
        for (size_t i = 0; i < c->n; i++)
                if (json_append(list, record_json(&c->history[i], false)) < 0)
                        return NULL;
        if (json_add(o, "censuses", TAKE_PTR(list)) < 0 ||
            json_add(o, "latest", c->n > 0 ? record_json(&c->history[c->n - 1], true) : json_null()) < 0 ||
            json_add(o, "baseline_time",
                     baseline_index(c, since) < c->n ? json_real(c->history[baseline_index(c, since)].time) : json_null()) < 0 ||
            json_add(o, "growing", growing_json(c, since)) < 0 ||
            json_add(o, "chains", chains_json(c, 0, false)) < 0 ||
            json_add(o, "chains_time", c->chains_time > 0 ? json_real(c->chains_time) : json_null()) < 0 ||
            json_add(o, "chains_search_complete", json_boolean(c->chains_complete)) < 0 ||
            json_add(o, "pending",
                     c->pending_id ? json_pack("{s:I, s:s, s:f}", "request_id", (json_int_t) c->pending_id, "kind",
                                               census_kind_to_string(c->pending_kind), "age_seconds",
                                               now - c->pending_since) :
                                     json_null()) < 0 ||
            json_add(o, "requests_total", json_integer((json_int_t) c->requests_total)) < 0 ||
            json_add(o, "errors_total", json_integer((json_int_t) c->errors_total)) < 0 ||
            json_add(o, "timeouts_total", json_integer((json_int_t) c->timeouts_total)) < 0 ||
            json_add(o, "last_error", c->last_error[0] ? json_string_lossy(c->last_error) : json_null()) < 0)
                return NULL;
        return TAKE_PTR(o);
}

int process_census_evidence(const ProcessCensus *c, double since, json_t *evidence) {
        if (!c)
                return json_add(evidence, "types", json_array()) < 0 || json_add(evidence, "chains", json_array()) < 0 ?
                               -ENOMEM :
                               0;
        if (json_add(evidence, "types", growing_json(c, since)) < 0 ||
            json_add(evidence, "chains", chains_json(c, since, true)) < 0)
                return -ENOMEM;
        return 0;
}

void process_census_counts(const ProcessCensus *c, double since, int *ret_types, int *ret_chains) {
        CensusGrowth g[CENSUS_GROWING_MAX];

        *ret_types = *ret_chains = -1;
        if (!c)
                return;
        if (baseline_index(c, since) < c->n)
                *ret_types = (int) process_census_growing(c, since, g, ELEMENTSOF(g));
        if (c->chains_time > 0 && c->chains_time >= since) {
                *ret_chains = (int) c->n_chains;
                for (size_t i = 0; i < c->n_holders; i++)
                        *ret_chains += holder_grows(c, &c->holders[i]) && !holder_shadowed(c, &c->holders[i]);
        }
}
