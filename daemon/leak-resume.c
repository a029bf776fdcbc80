/* SPDX-License-Identifier: MIT */
/*
 * Replay of stored floor points into a process's leak detectors (see leak-resume.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "leak-resume.h"
#include "macro.h"

typedef struct ResumePoint {
        double t;
        double rss_min, rss_max, blocks_min;
        bool live;
        bool has_limit;
        double cgroup_current, cgroup_max;
} ResumePoint;

struct LeakResume {
        ResumePoint *points;
        size_t n, alloc, next;
        size_t live;
        size_t fed;
        double rss_peak; /* running maximum: the peak the replayed samples report */
};

static int push(LeakResume *r, const ResumePoint *p) {
        if (r->n == r->alloc) {
                size_t n = r->alloc ? r->alloc * 2 : 256;
                ResumePoint *a = realloc(r->points, n * sizeof *a);
                if (!a)
                        return -ENOMEM;
                r->points = a;
                r->alloc = n;
        }
        r->points[r->n++] = *p;
        return 0;
}

/* Spacing of replayed points by age: 60 s doubled while a horizon covering that age still
 * gets >= 60 points (the detector's coarsening takes minima over bins of horizon / 120). */
static double spacing_for_age(double age) {
        double s = 60;
        while (s * 2 * 60 <= age)
                s *= 2;
        return s;
}

typedef struct Builder {
        LeakResume *r;
        double now;
        ResumePoint cur;
        bool open;
        int error;
} Builder;

static int on_row(void *userdata, double t, uint32_t n, const StoreAgg aggs[_HISTORY_METRIC_MAX]) {
        Builder *b = userdata;
        double spacing = spacing_for_age(b->now - t), bin = floor(t / spacing) * spacing;
        double rmin = aggs[HISTORY_RSS_BYTES].min, rmax = aggs[HISTORY_RSS_BYTES].max;
        double bmin = aggs[HISTORY_PYTHON_ALLOCATED_BLOCKS].min;
        int r;

        if (!isfinite(rmin) || !isfinite(rmax))
                return 0;
        if (!isfinite(bmin))
                bmin = 0;
        if (b->open && bin > b->cur.t) {
                if ((r = push(b->r, &b->cur)) < 0)
                        return r;
                b->open = false;
        }
        if (!b->open) {
                b->cur = (ResumePoint) { .t = bin, .rss_min = rmin, .rss_max = rmax, .blocks_min = bmin };
                b->open = true;
                return 0;
        }
        b->cur.rss_min = fmin(b->cur.rss_min, rmin);
        b->cur.rss_max = fmax(b->cur.rss_max, rmax);
        b->cur.blocks_min = fmin(b->cur.blocks_min, bmin);
        return 0;
}

int leak_resume_new(Store *store, const char *id, double now, double horizon, LeakResume **ret) {
        _cleanup_free_ LeakResume *r = NULL;
        const StoreConfig *c;
        Builder b = {};
        size_t tier;
        int k;

        if (!store || !id || !ret || !(horizon > 0))
                return -EINVAL;
        c = store_get_config(store);
        /* The finest tier that still reaches back over the whole horizon; the coarsest else. */
        for (tier = 0; tier + 1 < c->n_tiers && c->tiers[tier].retention < horizon; tier++)
                ;
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        b.r = r;
        b.now = now;
        /* At most one row per resolution over the horizon, plus slack for rounding. */
        k = store_read(store, id, tier, now - horizon, now, (size_t) (horizon / c->tiers[tier].resolution) + 2, on_row,
                       &b, NULL);
        if (k >= 0 && b.open)
                k = push(r, &b.cur);
        if (k < 0) {
                free(r->points);
                return k == -ENOENT ? (*ret = NULL, 0) : k;
        }
        if (r->n == 0) {
                free(r->points);
                *ret = NULL;
                return 0;
        }
        *ret = TAKE_PTR(r);
        return 0;
}

LeakResume *leak_resume_free(LeakResume *r) {
        if (!r)
                return NULL;
        free(r->points);
        free(r);
        return NULL;
}

int leak_resume_queue(LeakResume *r, const HwSample *s) {
        ResumePoint p = {
                .t = s->time,
                .rss_min = (double) s->rss_bytes,
                .rss_max = (double) (s->rss_peak_bytes > 0 ? s->rss_peak_bytes : s->rss_bytes),
                .blocks_min = (double) s->python_allocated_blocks,
                .live = true,
                .has_limit = s->has_cgroup,
                /* what leaks.c counts against the limit (a stored point has memory.current) */
                .cgroup_current = (double) (s->cgroup_limit_usage_bytes > 0 ? s->cgroup_limit_usage_bytes
                                                                           : s->cgroup_memory_current_bytes),
                .cgroup_max = (double) s->cgroup_memory_max_bytes,
        };

        if (r->live >= LEAK_RESUME_LIVE_MAX)
                return -ENOBUFS;
        r->live++;
        return push(r, &p);
}

int leak_resume_step(LeakResume *r, ProcessLeaks *l, double host_available, size_t max_points, size_t *ret_fed,
                     LeakLiveEventFn on_live_event, void *userdata) {
        for (size_t i = 0; i < max_points && r->next < r->n; i++) {
                const ResumePoint *p = &r->points[r->next++];
                HwSample s = {
                        .time = p->t,
                        .rss_bytes = (int64_t) p->rss_min,
                        .python_allocated_blocks = (int64_t) p->blocks_min,
                        .has_cgroup = p->has_limit,
                        .cgroup_memory_current_bytes = (int64_t) p->cgroup_current,
                        .cgroup_memory_max_bytes = (int64_t) p->cgroup_max,
                };
                LeakEvent event;
                int k;

                /* Stored points carry their bucket's maximum; the peak only ever rises. */
                if (p->rss_max > r->rss_peak)
                        r->rss_peak = p->rss_max;
                s.rss_peak_bytes = p->live ? (int64_t) p->rss_max : (int64_t) r->rss_peak;
                k = process_leaks_add_sample(l, &s, host_available, &event);
                if (k < 0 && k != -EINVAL)
                        return k;
                if (!p->live)
                        r->fed++;
                else if (k >= 0 && event != LEAK_EVENT_NONE && on_live_event)
                        on_live_event(userdata, event);
        }
        if (ret_fed)
                *ret_fed = r->fed;
        return r->next >= r->n;
}

size_t leak_resume_remaining(const LeakResume *r) {
        return r ? r->n - r->next : 0;
}
