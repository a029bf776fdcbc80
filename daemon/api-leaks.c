/* SPDX-License-Identifier: MIT */
/*
 * JSON of leak findings (see api-leaks.h). Numbers that may be undefined (a time to limit when
 * memory does not grow in bytes, an infinite upper bound) are null, never invalid JSON.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "api-leaks.h"
#include "census.h"
#include "json-util.h"
#include "leak-evidence.h"
#include "macro.h"

static json_t *evaluation_new(const SeriesDetector *d) {
        _cleanup_json_ json_t *o = json_object();
        const DetectResult *r = &d->last;

        if (!o)
                return NULL;
        if (json_add(o, "state", json_string(leak_verdict_to_string(d->state))) < 0 ||
            json_add(o, "verdict", d->evaluated ? json_string(leak_verdict_to_string(r->verdict)) : json_null()) < 0 ||
            json_add(o, "slope", d->evaluated ? json_number_or_null(r->slope) : json_null()) < 0 ||
            json_add(o, "slope_low", d->evaluated ? json_number_or_null(r->slope_low) : json_null()) < 0 ||
            json_add(o, "slope_high", d->evaluated ? json_number_or_null(r->slope_high) : json_null()) < 0 ||
            json_add(o, "p_value", d->evaluated ? json_number_or_null(r->p_value) : json_null()) < 0 ||
            json_add(o, "horizon_seconds", d->evaluated ? json_number_or_null(r->horizon) : json_null()) < 0 ||
            json_add(o, "since", d->evaluated ? json_time_or_null(r->since) : json_null()) < 0 ||
            json_add(o, "points", json_integer(d->evaluated ? r->points : 0)) < 0 ||
            json_add(o, "current", d->evaluated ? json_value(r->current) : json_null()) < 0 ||
            json_add(o, "reason", json_string_lossy(d->evaluated && r->reason ? r->reason : "not evaluated yet")) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Seconds, or null where a bound does not exist (infinite: memory may stop growing). */
static json_t *seconds_or_null(bool has, double s) {
        return has && isfinite(s) ? json_real(s) : json_null();
}

#define SUSPECTS_MAX 5

/* The allocation sites whose sampled live bytes grew while the finding's signal grew: over the
 * recent half of the finding's span (since .. its close or last update). A leak grows all along;
 * a one-time step early in the span (the program importing modules, a cache warming up) must not
 * outweigh it, and it drops out of the recent half. */
static json_t *suspects_new(const Process *p, const Finding *f) {
        double end = !f->open && f->closed_at > 0 ? f->closed_at : f->updated_at;
        double from = f->since;

        if (end > from)
                from += (end - from) / 2;
        return process_heap_suspects_json(p->heap, from, f->open ? INFINITY : end, SUSPECTS_MAX);
}

/* The finding's "evidence" (docs/api.md): the census part is "types" (growing since the
 * finding opened) and "chains" (taken since); other evidence joins it as further members. */
static json_t *evidence_new(const Process *p, const Finding *f) {
        _cleanup_json_ json_t *o = json_object();

        if (!o || process_census_evidence(p->census, f->opened_at, o) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_t *finding_new(const Process *p, const Finding *f) {
        _cleanup_json_ json_t *o = json_object();
        const DetectResult *r = &f->result;
        const char *source = limit_source_to_string(f->limit_source);
        bool ttl = f->has_time_to_limit;

        if (!o)
                return NULL;
        if (json_add(o, "process_id", json_string(p->id)) < 0 ||
            json_add(o, "pid", json_integer(p->pid)) < 0 ||
            json_add(o, "service", json_string_lossy(p->hello.service)) < 0 ||
            json_add(o, "process_state", json_string(process_state_to_string(p->state))) < 0 ||
            json_add(o, "state", json_string(f->open ? "open" : "closed")) < 0 ||
            json_add(o, "verdict", json_string(leak_verdict_to_string(f->open ? f->verdict : f->worst))) < 0 ||
            json_add(o, "signal", json_string(leak_signal_to_string(f->signal))) < 0 ||
            json_add(o, "unit", json_string(leak_signal_unit(f->signal))) < 0 ||
            json_add(o, "growth_per_second", json_number_or_null(r->slope)) < 0 ||
            json_add(o, "growth_per_second_low", json_number_or_null(r->slope_low)) < 0 ||
            json_add(o, "growth_per_second_high", json_number_or_null(r->slope_high)) < 0 ||
            json_add(o, "confidence", json_number_or_null(1.0 - r->p_value)) < 0 ||
            json_add(o, "p_value", json_number_or_null(r->p_value)) < 0 ||
            json_add(o, "since", json_time_or_null(f->since)) < 0 ||
            json_add(o, "opened_at", json_time_or_null(f->opened_at)) < 0 ||
            json_add(o, "updated_at", json_time_or_null(f->updated_at)) < 0 ||
            json_add(o, "closed_at", json_time_or_null(f->closed_at)) < 0 ||
            json_add(o, "closed_because",
                     f->open          ? json_null() :
                     f->closed_at_stop ? json_string("agent_stopped") :
                     json_string(f->closed_at_end ? "process_ended" : "growth_ended")) < 0 ||
            json_add(o, "horizon_seconds", json_number_or_null(r->horizon)) < 0 ||
            json_add(o, "reason", r->reason ? json_string(r->reason) : json_null()) < 0 ||
            json_add(o, "current", json_value(r->current)) < 0 ||
            json_add(o, "growth_bytes_per_second",
                     f->growth_bytes_per_second > 0 ? json_number_or_null(f->growth_bytes_per_second) : json_null()) < 0 ||
            json_add(o, "current_bytes", source ? json_value(f->current_bytes) : json_null()) < 0 ||
            json_add(o, "limit_bytes", source ? json_value(f->limit_bytes) : json_null()) < 0 ||
            json_add(o, "limit_source", source ? json_string(source) : json_null()) < 0 ||
            json_add(o, "seconds_to_limit", seconds_or_null(ttl, f->seconds_to_limit)) < 0 ||
            json_add(o, "seconds_to_limit_low", seconds_or_null(ttl, f->seconds_to_limit_low)) < 0 ||
            json_add(o, "seconds_to_limit_high", seconds_or_null(ttl, f->seconds_to_limit_high)) < 0 ||
            /* Allocation sites from the heap profiler; types come with the census. */
            json_add(o, "suspects", suspects_new(p, f)) < 0 ||
            json_add(o, "evidence", evidence_new(p, f)) < 0 ||
            leak_evidence_add_json(o, p, f) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_t *api_process_leak_new(const Process *p) {
        _cleanup_json_ json_t *o = json_object(), *signals = json_object(), *history = json_array();
        const ProcessLeaks *l = &p->leaks;

        if (!o || !signals || !history)
                return NULL;
        for (int i = 0; i < _LEAK_SIGNAL_MAX; i++)
                if (json_add(signals, leak_signal_to_string((LeakSignal) i), evaluation_new(&l->detectors[i])) < 0)
                        return NULL;
        for (size_t i = 0; i < l->n_history; i++)
                if (json_append(history, finding_new(p, &l->history[i])) < 0)
                        return NULL;
        if (json_add(o, "verdict", json_string(leak_verdict_to_string(process_leaks_verdict(l)))) < 0 ||
            json_add(o, "signals", TAKE_PTR(signals)) < 0 ||
            json_add(o, "finding", l->current.open ? finding_new(p, &l->current) : json_null()) < 0 ||
            json_add(o, "closed_findings", TAKE_PTR(history)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

typedef struct FindingRef {
        const Process *p;
        const Finding *f;
} FindingRef;

/* Open before closed; open ones by urgency; closed ones newest first. */
static int finding_ref_compare(const void *a, const void *b) {
        const FindingRef *x = a, *y = b;

        if (x->f->open != y->f->open)
                return x->f->open ? -1 : 1;
        if (x->f->open)
                return finding_compare_urgency(x->f, y->f);
        return x->f->closed_at > y->f->closed_at ? -1 : x->f->closed_at < y->f->closed_at;
}

json_t *api_leaks_new(Registry *reg, LeakFilter filter) {
        _cleanup_json_ json_t *root = NULL, *list = NULL;
        _cleanup_free_ FindingRef *refs = NULL;
        size_t n = 0, cap = 0;

        for (size_t i = 0; i < registry_count(reg); i++) {
                const ProcessLeaks *l = &registry_at(reg, i)->leaks;
                cap += (l->current.open ? 1 : 0) + l->n_history;
        }
        if (cap > 0) {
                refs = calloc(cap, sizeof *refs);
                if (!refs)
                        return NULL;
        }
        for (size_t i = 0; i < registry_count(reg); i++) {
                const Process *p = registry_at(reg, i);
                if (p->leaks.current.open && filter != LEAK_FILTER_CLOSED)
                        refs[n++] = (FindingRef) { p, &p->leaks.current };
                if (filter != LEAK_FILTER_OPEN)
                        for (size_t k = 0; k < p->leaks.n_history; k++)
                                refs[n++] = (FindingRef) { p, &p->leaks.history[k] };
        }
        if (n > 1)
                qsort(refs, n, sizeof *refs, finding_ref_compare);

        list = json_array();
        if (!list)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_append(list, finding_new(refs[i].p, refs[i].f)) < 0)
                        return NULL;
        root = json_object();
        if (!root || json_add(root, "leaks", TAKE_PTR(list)) < 0)
                return NULL;
        return TAKE_PTR(root);
}
