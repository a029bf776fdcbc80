/* SPDX-License-Identifier: MIT */
/*
 * Per-process allocator and GC evidence (see evidence.h). Points thin out as the process ages
 * (the heap.c scheme: when full, every two neighbours merge and the spacing doubles), so the
 * history always covers the whole life of the process in a fixed 20 KB.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "evidence.h"
#include "macro.h"

/* Seconds over which the recent share of time in GC is averaged. */
#define EVIDENCE_GC_RATIO_TAU 60.0

const char *gc_event_kind_to_string(GcEventKind k) {
        switch (k) {
        case GC_EVENT_DISABLED:
                return "gc_disabled";
        case GC_EVENT_ENABLED:
                return "gc_enabled";
        case GC_EVENT_THRESHOLDS:
                return "thresholds_changed";
        }
        return NULL;
}

void process_evidence_init(ProcessEvidence *e) {
        memset(e, 0, sizeof *e);
        e->recent_gc_ratio = NAN;
}

static void event_push(ProcessEvidence *e, double t, GcEventKind kind) {
        GcEvent *ev;

        if (e->n_events == EVIDENCE_EVENTS_MAX) {
                memmove(&e->events[0], &e->events[1], (EVIDENCE_EVENTS_MAX - 1) * sizeof(GcEvent));
                e->n_events--;
        }
        ev = &e->events[e->n_events++];
        ev->time = t;
        ev->kind = kind;
        memcpy(ev->thresholds, e->last_thresholds, sizeof ev->thresholds);
}

static double known(int64_t v) {
        return v >= 0 ? (double) v : NAN;
}

/* The GC's running sums and configuration changes, from the sample before to this one. */
static void gc_update(ProcessEvidence *e, const HwSample *s) {
        unsigned gens = s->gc_generations < EVIDENCE_GENERATIONS ? s->gc_generations : EVIDENCE_GENERATIONS;
        double dt = e->started ? s->time - e->last_time : 0, pause = 0;
        bool thresholds_changed = false;

        if (s->gc_generations == 0)
                return; /* the agent sent no GC figures */
        for (unsigned g = 0; g < s->gc_generations && g < HW_GC_GENERATIONS_MAX; g++)
                pause += s->gc[g].pause_seconds_total;
        e->gc_pause_total += pause;
        if (dt > 0) {
                double a = 1 - exp(-dt / EVIDENCE_GC_RATIO_TAU), r = fmin(1.0, pause / dt);
                e->recent_gc_ratio = isnan(e->recent_gc_ratio) ? r : e->recent_gc_ratio + a * (r - e->recent_gc_ratio);
                if (!e->last_enabled && !s->gc_enabled)
                        e->gc_disabled_total += dt;
        }

        for (unsigned g = 0; g < gens; g++) {
                int64_t t = s->gc[g].threshold;
                if (!e->started)
                        e->first_thresholds[g] = t;
                else if (t != e->last_thresholds[g])
                        thresholds_changed = true;
                e->last_thresholds[g] = t;
        }
        if (!e->started) {
                e->last_enabled = s->gc_enabled;
                e->gc_disabled_since = s->gc_enabled ? 0 : s->time;
                return;
        }
        if (thresholds_changed) {
                e->gc_threshold_changes++;
                event_push(e, s->time, GC_EVENT_THRESHOLDS);
        }
        if (e->last_enabled && !s->gc_enabled) {
                e->gc_disabled_changes++;
                e->gc_disabled_since = s->time;
                event_push(e, s->time, GC_EVENT_DISABLED);
        } else if (!e->last_enabled && s->gc_enabled) {
                e->gc_enabled_changes++;
                e->gc_disabled_since = 0;
                event_push(e, s->time, GC_EVENT_ENABLED);
        }
        e->last_enabled = s->gc_enabled;
}

static void point_from_sample(EvidencePoint *p, const ProcessEvidence *e, const HwSample *s, double live) {
        p->start = p->time = s->time;
        for (int i = 0; i < _EVIDENCE_FIGURE_MAX; i++)
                p->v[i] = NAN;
        p->v[EVIDENCE_RSS] = known(s->rss_bytes);
        p->v[EVIDENCE_PYTHON_LIVE] = live >= 0 ? live : NAN;
        p->v[EVIDENCE_PYTHON_BLOCKS] = s->python_allocated_blocks > 0 ? (double) s->python_allocated_blocks : NAN;
        if (s->has_arenas && s->arena_allocs_total >= s->arena_frees_total && s->arena_size_bytes > 0)
                p->v[EVIDENCE_ARENA_BYTES] = (double) (s->arena_allocs_total - s->arena_frees_total) *
                                             (double) s->arena_size_bytes;
        if (s->has_malloc && s->malloc_in_use_bytes >= 0)
                p->v[EVIDENCE_MALLOC_IN_USE] = (double) s->malloc_in_use_bytes +
                                               (s->malloc_mmapped_bytes > 0 ? (double) s->malloc_mmapped_bytes : 0);
        if (s->has_malloc)
                p->v[EVIDENCE_MALLOC_FREE] = known(s->malloc_free_bytes);
        if (s->gc_generations > 0) {
                p->v[EVIDENCE_GC_GARBAGE] = known(s->gc_garbage);
                p->v[EVIDENCE_GC_FINALIZERS] = known(s->gc_garbage_finalizers);
                p->v[EVIDENCE_GC_FINALIZERS_COLLECTED] = known(s->gc_finalizers_collected);
                p->v[EVIDENCE_GC_PAUSE] = e->gc_pause_total;
                p->v[EVIDENCE_GC_DISABLED] = e->gc_disabled_total;
        }
        for (unsigned g = 0; g < s->gc_generations && g < EVIDENCE_GENERATIONS; g++) {
                p->v[EVIDENCE_GC_COLLECTIONS0 + g] = known(s->gc[g].collections);
                p->v[EVIDENCE_GC_COLLECTED0 + g] = known(s->gc[g].collected);
        }
}

/* b (newer) folded into a: levels keep their minimum, counters the newer value. */
static void point_merge(EvidencePoint *a, const EvidencePoint *b) {
        a->time = b->time;
        for (int i = 0; i < _EVIDENCE_LEVEL_MAX; i++)
                a->v[i] = fmin(a->v[i], b->v[i]); /* fmin ignores a NaN operand */
        for (int i = _EVIDENCE_LEVEL_MAX; i < _EVIDENCE_FIGURE_MAX; i++)
                if (!isnan(b->v[i]))
                        a->v[i] = b->v[i];
}

/* Full: merge neighbours pairwise (the newest point stays alone if the count is odd). */
static void compact(ProcessEvidence *e) {
        size_t n = 0;

        for (size_t i = 0; i + 1 < e->n_points; i += 2, n++) {
                EvidencePoint p = e->points[i];
                point_merge(&p, &e->points[i + 1]);
                e->points[n] = p;
        }
        if (e->n_points % 2)
                e->points[n++] = e->points[e->n_points - 1];
        e->n_points = n;
        if (n >= 2)
                e->spacing = (e->points[n - 1].time - e->points[0].start) / (double) n;
}

void process_evidence_add(ProcessEvidence *e, const HwSample *s, double python_live_bytes) {
        EvidencePoint p;

        if (e->started && !(s->time > e->last_time))
                return; /* out of order: the registry refuses those too */
        gc_update(e, s);
        point_from_sample(&p, e, s, python_live_bytes);
        e->started = true;
        e->last_time = s->time;

        if (e->n_points > 0 && s->time - e->points[e->n_points - 1].start < e->spacing) {
                point_merge(&e->points[e->n_points - 1], &p);
                return;
        }
        if (e->n_points == EVIDENCE_POINTS)
                compact(e);
        e->points[e->n_points++] = p;
}

int process_evidence_span(const ProcessEvidence *e, double from, double to, EvidenceSpan *ret) {
        EvidenceSpan s = { .from = NAN, .to = NAN };
        size_t lo = e->n_points, hi = 0;

        for (size_t i = 0; i < e->n_points; i++)
                if (e->points[i].time >= from && e->points[i].start <= to) {
                        if (lo == e->n_points)
                                lo = i;
                        hi = i + 1;
                }
        if (lo >= hi || hi - lo < 3)
                return -ENODATA;

        s.points = hi - lo;
        s.from = e->points[lo].start;
        s.to = e->points[hi - 1].time;
        for (int f = 0; f < _EVIDENCE_FIGURE_MAX; f++) {
                double n = 0, st = 0, sv = 0, stt = 0, stv = 0, t0 = e->points[lo].time;

                s.first[f] = s.last[f] = NAN;
                for (size_t i = lo; i < hi; i++) {
                        double v = e->points[i].v[f], t = e->points[i].time - t0;
                        if (isnan(v))
                                continue;
                        if (isnan(s.first[f]))
                                s.first[f] = v;
                        s.last[f] = v;
                        n++;
                        st += t;
                        sv += v;
                        stt += t * t;
                        stv += t * v;
                }
                if (f < _EVIDENCE_LEVEL_MAX) {
                        double d = n * stt - st * st;
                        s.slope[f] = n >= 3 && d > 0 ? (n * stv - st * sv) / d : NAN;
                }
        }
        *ret = s;
        return 0;
}

double evidence_span_delta(const EvidenceSpan *s, EvidenceFigure f) {
        if ((unsigned) f >= _EVIDENCE_FIGURE_MAX)
                return NAN;
        return s->last[f] - s->first[f];
}
