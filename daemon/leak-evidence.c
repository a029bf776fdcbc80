/* SPDX-License-Identifier: MIT */
/*
 * Evidence and classification of leak findings (see leak-evidence.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>

#include "evidence.h"
#include "heap.h"
#include "json-util.h"
#include "leak-evidence.h"
#include "macro.h"

/* The span a finding covers: since growth began until it closed, or until the latest sample. */
static void finding_span(const Process *p, const Finding *f, double *ret_from, double *ret_to) {
        double to = !f->open && f->closed_at > 0 ? f->closed_at : (p->has_sample ? p->latest.time : f->updated_at);
        double from = f->since > 0 ? f->since : f->opened_at;

        *ret_from = from;
        *ret_to = to;
}

static double share(double part, double whole) {
        return isfinite(part) && isfinite(whole) && whole > 0 ? part / whole : NAN;
}

void leak_evidence_census(const Process *p, int *ret_types, int *ret_chains) {
        /* The census keeps its history per process (census.c); the counts are those since the
         * open finding's start, so a census from an earlier finding does not decide this one. */
        double since = process_leaks_open_since(&p->leaks);

        if (since <= 0) {
                *ret_types = -1;
                *ret_chains = -1;
                return;
        }
        process_census_counts(p->census, since, ret_types, ret_chains);
}

static void input_from_span(const Process *p, const EvidenceSpan *s, ClassifyInput *in) {
        const ProcessEvidence *e = &p->evidence;
        double live = s->last[EVIDENCE_PYTHON_LIVE], blocks = s->last[EVIDENCE_PYTHON_BLOCKS];
        EvidenceSpan recent;

        in->span_seconds = s->to - s->from;
        in->rss_growth = s->slope[EVIDENCE_RSS];
        in->python_growth = s->slope[EVIDENCE_PYTHON_LIVE];
        in->blocks_growth = s->slope[EVIDENCE_PYTHON_BLOCKS];
        in->bytes_per_block = blocks > 0 ? live / blocks : NAN;
        in->arena_growth = s->slope[EVIDENCE_ARENA_BYTES];
        in->malloc_in_use_growth = s->slope[EVIDENCE_MALLOC_IN_USE];
        in->malloc_free_growth = s->slope[EVIDENCE_MALLOC_FREE];
        in->garbage_added = evidence_span_delta(s, EVIDENCE_GC_GARBAGE);
        in->garbage_finalizers = s->last[EVIDENCE_GC_FINALIZERS];
        in->collected_finalizers = evidence_span_delta(s, EVIDENCE_GC_FINALIZERS_COLLECTED);
        in->gc_known = p->has_sample && p->latest.gc_generations > 0;
        in->gc_disabled_share = in->span_seconds > 0 ? evidence_span_delta(s, EVIDENCE_GC_DISABLED) / in->span_seconds : NAN;
        if (process_evidence_span(e, s->from + (s->to - s->from) / 2, s->to, &recent) >= 0)
                in->gen0_collections = evidence_span_delta(&recent, EVIDENCE_GC_COLLECTIONS0);
        in->thresholds_changed = false;
        in->threshold0 = p->has_sample && p->latest.gc_generations > 0 && p->latest.gc[0].threshold >= 0
                                 ? (double) p->latest.gc[0].threshold : NAN;
        for (size_t i = 0; i < e->n_events; i++)
                if (e->events[i].kind == GC_EVENT_THRESHOLDS && e->events[i].time <= s->to)
                        in->thresholds_changed = true;
}

void leak_evidence_classify(const Process *p, const Finding *f, int census_types, int census_chains, int sites,
                            Classification *ret) {
        ClassifyInput in;
        EvidenceSpan s;
        double from, to;

        classify_input_init(&in);
        finding_span(p, f, &from, &to);
        if (process_evidence_span(&p->evidence, from, to, &s) >= 0)
                input_from_span(p, &s, &in);
        /* The detector's slope of the RSS floor is the better figure when RSS decided. */
        if (f->signal == LEAK_SIGNAL_RSS && f->growth_bytes_per_second > 0 && !(in.rss_growth > 0))
                in.rss_growth = f->growth_bytes_per_second;
        in.python_signal_grows = f->signal == LEAK_SIGNAL_PYTHON_BLOCKS ||
                                 (f->open && p->leaks.detectors[LEAK_SIGNAL_PYTHON_BLOCKS].state >= VERDICT_SUSPECT);
        in.census_types = census_types;
        in.census_chains = census_chains;
        in.sites = sites;
        classify_finding(&in, ret);
}

LeakClass leak_evidence_current_class(const Process *p) {
        Classification c;
        int types, chains;

        if (!p->leaks.current.open)
                return LEAK_CLASS_UNKNOWN;
        leak_evidence_census(p, &types, &chains);
        leak_evidence_classify(p, &p->leaks.current, types, chains, 0, &c);
        return c.cls;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static json_t *rate(const EvidenceSpan *s, EvidenceFigure f) {
        return s ? json_number_or_null(s->slope[f]) : json_null();
}

static json_t *memory_json(const Process *p, const EvidenceSpan *s) {
        const HwSample *l = &p->latest;
        double rss = p->has_sample ? (double) l->rss_bytes : NAN;
        double live = process_heap_live_bytes(p->heap);
        double arena = l->has_arenas ? (double) (l->arena_allocs_total - l->arena_frees_total) * (double) l->arena_size_bytes
                                     : NAN;
        double mfree = l->has_malloc && l->malloc_free_bytes >= 0 ? (double) l->malloc_free_bytes : NAN;
        double held = NAN;
        double g = s ? s->slope[EVIDENCE_RSS] : NAN;
        double held_growth = NAN;
        _cleanup_json_ json_t *o = json_object(), *growth = json_object(), *shares = json_object();

        if (live < 0)
                live = NAN;
        if (!isnan(mfree) || !isnan(arena))
                held = (isnan(mfree) ? 0 : mfree) + (isnan(arena) ? 0 : fmax(0, arena - (isnan(live) ? 0 : live)));
        if (s && (!isnan(s->slope[EVIDENCE_MALLOC_FREE]) || !isnan(s->slope[EVIDENCE_ARENA_BYTES])))
                held_growth = (isnan(s->slope[EVIDENCE_MALLOC_FREE]) ? 0 : s->slope[EVIDENCE_MALLOC_FREE]) +
                              (isnan(s->slope[EVIDENCE_ARENA_BYTES]) ? 0 : s->slope[EVIDENCE_ARENA_BYTES]) -
                              (isnan(s->slope[EVIDENCE_PYTHON_LIVE]) ? 0 : fmax(0, s->slope[EVIDENCE_PYTHON_LIVE]));

        if (!o || !growth || !shares)
                return NULL;
        if (json_add(growth, "rss_bytes_per_second", rate(s, EVIDENCE_RSS)) < 0 ||
            json_add(growth, "python_live_bytes_per_second", rate(s, EVIDENCE_PYTHON_LIVE)) < 0 ||
            json_add(growth, "python_blocks_per_second", rate(s, EVIDENCE_PYTHON_BLOCKS)) < 0 ||
            json_add(growth, "pymalloc_arena_bytes_per_second", rate(s, EVIDENCE_ARENA_BYTES)) < 0 ||
            json_add(growth, "malloc_in_use_bytes_per_second", rate(s, EVIDENCE_MALLOC_IN_USE)) < 0 ||
            json_add(growth, "malloc_free_bytes_per_second", rate(s, EVIDENCE_MALLOC_FREE)) < 0 ||
            json_add(growth, "free_held_bytes_per_second", json_number_or_null(held_growth)) < 0)
                return NULL;
        if (json_add(shares, "python", json_number_or_null(s ? share(s->slope[EVIDENCE_PYTHON_LIVE], g) : NAN)) < 0 ||
            json_add(shares, "native", json_number_or_null(s ? share(s->slope[EVIDENCE_MALLOC_IN_USE], g) : NAN)) < 0 ||
            json_add(shares, "free_held", json_number_or_null(share(held_growth, g))) < 0)
                return NULL;
        if (json_add(o, "rss_bytes", json_value(rss)) < 0 ||
            json_add(o, "python_live_bytes", json_value(live)) < 0 ||
            json_add(o, "python_share", json_number_or_null(share(live, rss))) < 0 ||
            json_add(o, "free_held_bytes", json_value(held)) < 0 ||
            json_add(o, "free_held_share", json_number_or_null(share(held, rss))) < 0 ||
            json_add(o, "growth", TAKE_PTR(growth)) < 0 ||
            json_add(o, "share_of_growth", TAKE_PTR(shares)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *thresholds_json(const int64_t *t, unsigned n) {
        _cleanup_json_ json_t *a = json_array();

        if (!a)
                return NULL;
        for (unsigned g = 0; g < n; g++)
                if (json_append(a, t[g] >= 0 ? json_integer(t[g]) : json_null()) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

static json_t *gc_json(const Process *p, const EvidenceSpan *s) {
        const ProcessEvidence *e = &p->evidence;
        const HwSample *l = &p->latest;
        unsigned n = l->gc_generations < EVIDENCE_GENERATIONS ? l->gc_generations : EVIDENCE_GENERATIONS;
        double span = s ? s->to - s->from : NAN;
        _cleanup_json_ json_t *o = json_object(), *gens = json_array(), *events = json_array();

        if (!o || !gens || !events)
                return NULL;
        for (unsigned g = 0; g < n; g++) {
                double c = s ? evidence_span_delta(s, EVIDENCE_GC_COLLECTIONS0 + g) : NAN;
                double k = s ? evidence_span_delta(s, EVIDENCE_GC_COLLECTED0 + g) : NAN;
                if (json_append(gens, json_pack("{s:o,s:o,s:o}", "collections", json_value(c), "collected", json_value(k),
                                                "collected_per_collection", json_number_or_null(c > 0 ? k / c : NAN))) < 0)
                        return NULL;
        }
        for (size_t i = 0; i < e->n_events; i++)
                if (json_append(events, json_pack("{s:o,s:s,s:o}", "time", json_real(e->events[i].time), "what",
                                                  gc_event_kind_to_string(e->events[i].kind), "thresholds",
                                                  thresholds_json(e->events[i].thresholds, n))) < 0)
                        return NULL;
        if (json_add(o, "enabled", json_boolean(l->gc_enabled)) < 0 ||
            json_add(o, "disabled_since", json_time_or_null(l->gc_enabled ? 0 : e->gc_disabled_since)) < 0 ||
            json_add(o, "disabled_share", json_number_or_null(s && span > 0 ? evidence_span_delta(s, EVIDENCE_GC_DISABLED) / span : NAN)) < 0 ||
            json_add(o, "disabled_changes", json_integer(e->gc_disabled_changes)) < 0 ||
            json_add(o, "enabled_changes", json_integer(e->gc_enabled_changes)) < 0 ||
            json_add(o, "threshold_changes", json_integer(e->gc_threshold_changes)) < 0 ||
            json_add(o, "thresholds", thresholds_json(e->last_thresholds, n)) < 0 ||
            json_add(o, "initial_thresholds", thresholds_json(e->first_thresholds, n)) < 0 ||
            json_add(o, "time_ratio", json_number_or_null(s && span > 0 ? evidence_span_delta(s, EVIDENCE_GC_PAUSE) / span : NAN)) < 0 ||
            json_add(o, "recent_time_ratio", json_number_or_null(e->recent_gc_ratio)) < 0 ||
            json_add(o, "garbage", l->gc_garbage >= 0 ? json_integer(l->gc_garbage) : json_null()) < 0 ||
            json_add(o, "garbage_added", json_value(s ? evidence_span_delta(s, EVIDENCE_GC_GARBAGE) : NAN)) < 0 ||
            json_add(o, "garbage_with_finalizers", l->gc_garbage_finalizers >= 0 ? json_integer(l->gc_garbage_finalizers) : json_null()) < 0 ||
            json_add(o, "collected_with_finalizers", json_value(s ? evidence_span_delta(s, EVIDENCE_GC_FINALIZERS_COLLECTED) : NAN)) < 0 ||
            json_add(o, "collected_with_finalizers_total", l->gc_finalizers_collected >= 0 ? json_integer(l->gc_finalizers_collected) : json_null()) < 0 ||
            json_add(o, "finalizer_collections_counted", l->gc_finalizers_collections >= 0 ? json_integer(l->gc_finalizers_collections) : json_null()) < 0 ||
            json_add(o, "finalizer_collections_skipped", l->gc_finalizers_skipped >= 0 ? json_integer(l->gc_finalizers_skipped) : json_null()) < 0 ||
            json_add(o, "generations", TAKE_PTR(gens)) < 0 ||
            json_add(o, "events", TAKE_PTR(events)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *allocator_json(const Process *p) {
        const HwSample *l = &p->latest;
        _cleanup_json_ json_t *o = json_object(), *m = NULL, *py = NULL;

        if (!o)
                return NULL;
        if (l->has_malloc) {
                m = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "arena_bytes", json_value(l->malloc_arena_bytes >= 0 ? (double) l->malloc_arena_bytes : NAN),
                              "in_use_bytes", json_value(l->malloc_in_use_bytes >= 0 ? (double) l->malloc_in_use_bytes : NAN),
                              "free_bytes", json_value(l->malloc_free_bytes >= 0 ? (double) l->malloc_free_bytes : NAN),
                              "mmapped_bytes", json_value(l->malloc_mmapped_bytes >= 0 ? (double) l->malloc_mmapped_bytes : NAN),
                              "keepcost_bytes", json_value(l->malloc_keepcost_bytes >= 0 ? (double) l->malloc_keepcost_bytes : NAN),
                              "read_seconds", json_number_or_null(l->malloc_read_seconds));
                if (!m)
                        return NULL;
        }
        if (l->has_arenas) {
                int64_t in_use = l->arena_allocs_total - l->arena_frees_total;
                py = json_pack("{s:I,s:I,s:I,s:o,s:o}", "arenas_in_use", (json_int_t) in_use, "arenas_allocated_total",
                               (json_int_t) l->arena_allocs_total, "arena_size_bytes", (json_int_t) l->arena_size_bytes,
                               /* in doubles: an absurd count times the size overflowed int64 */
                               "arena_bytes", json_value((double) in_use * (double) l->arena_size_bytes), "blocks",
                               json_value(l->python_allocated_blocks > 0 ? (double) l->python_allocated_blocks : NAN));
                if (!py)
                        return NULL;
        }
        if (json_add(o, "malloc", m ? TAKE_PTR(m) : json_null()) < 0 ||
            json_add(o, "pymalloc", py ? TAKE_PTR(py) : json_null()) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Fill evidence object ev with the memory, GC and allocator parts over span s (NULL: too few
 * points). */
static int evidence_fill(json_t *ev, const Process *p, const EvidenceSpan *s) {
        if (json_add(ev, "span", s ? json_pack("{s:o,s:o,s:o,s:I}", "from", json_time_or_null(s->from), "to",
                                               json_time_or_null(s->to), "seconds", json_real(s->to - s->from),
                                               "points", (json_int_t) s->points)
                                   : json_null()) < 0 ||
            json_add(ev, "memory", memory_json(p, s)) < 0 ||
            json_add(ev, "gc", gc_json(p, s)) < 0 ||
            json_add(ev, "allocator", allocator_json(p)) < 0)
                return -ENOMEM;
        return 0;
}

static int array_size_or(json_t *o, const char *key, int none) {
        json_t *a = o ? json_object_get(o, key) : NULL;
        return json_is_array(a) ? (int) json_array_size(a) : none;
}

int leak_evidence_add_json(json_t *o, const Process *p, const Finding *f) {
        json_t *ev = json_object_get(o, "evidence");
        _cleanup_json_ json_t *remedy = json_array();
        Classification c;
        EvidenceSpan s;
        double from, to;
        int types, chains, r;

        if (!remedy)
                return -ENOMEM;
        if (!ev) {
                if (json_add(o, "evidence", json_object()) < 0)
                        return -ENOMEM;
                ev = json_object_get(o, "evidence");
        }
        finding_span(p, f, &from, &to);
        r = evidence_fill(ev, p, process_evidence_span(&p->evidence, from, to, &s) >= 0 ? &s : NULL);
        if (r < 0)
                return r;

        leak_evidence_census(p, &types, &chains);
        types = array_size_or(ev, "types", types);
        chains = array_size_or(ev, "chains", chains);
        leak_evidence_classify(p, f, types, chains, array_size_or(o, "suspects", 0), &c);
        for (size_t i = 0; i < ELEMENTSOF(c.remedy); i++)
                if (c.remedy[i] && json_append(remedy, json_string(c.remedy[i])) < 0)
                        return -ENOMEM;
        if (json_add(o, "classification", json_string(leak_class_to_string(c.cls))) < 0 ||
            json_add(o, "classification_detail", c.detail ? json_string(c.detail) : json_null()) < 0 ||
            json_add(o, "classification_reason", json_string(c.reason)) < 0 ||
            json_add(o, "remedy", TAKE_PTR(remedy)) < 0)
                return -ENOMEM;
        return 0;
}

json_t *leak_evidence_process_json(const Process *p) {
        _cleanup_json_ json_t *ev = json_object();
        EvidenceSpan s;

        if (!ev || !p->has_sample)
                return p->has_sample ? NULL : json_null();
        if (evidence_fill(ev, p, process_evidence_span(&p->evidence, 0, INFINITY, &s) >= 0 ? &s : NULL) < 0)
                return NULL;
        return TAKE_PTR(ev);
}

double leak_evidence_python_share(const Process *p) {
        double live = process_heap_live_bytes(p->heap);
        return p->has_sample && live >= 0 ? share(live, (double) p->latest.rss_bytes) : NAN;
}

double leak_evidence_free_held_share(const Process *p) {
        const HwSample *l = &p->latest;
        double live = process_heap_live_bytes(p->heap), held = 0;

        if (!p->has_sample || (!l->has_malloc && !l->has_arenas))
                return NAN;
        if (l->has_malloc && l->malloc_free_bytes >= 0)
                held += (double) l->malloc_free_bytes;
        if (l->has_arenas)
                held += fmax(0, (double) (l->arena_allocs_total - l->arena_frees_total) * (double) l->arena_size_bytes -
                                        (live > 0 ? live : 0));
        return share(held, (double) l->rss_bytes);
}

double leak_evidence_collected_per_collection(const Process *p, unsigned g) {
        EvidenceSpan s;
        double c, k;

        if (g >= EVIDENCE_GENERATIONS || !p->has_sample ||
            process_evidence_span(&p->evidence, p->latest.time - 60, INFINITY, &s) < 0)
                return NAN;
        c = evidence_span_delta(&s, EVIDENCE_GC_COLLECTIONS0 + g);
        k = evidence_span_delta(&s, EVIDENCE_GC_COLLECTED0 + g);
        return c > 0 ? k / c : NAN;
}
