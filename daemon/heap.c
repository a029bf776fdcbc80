/* SPDX-License-Identifier: MIT */
/*
 * Per-process heap profile state (see heap.h). A site is the agent's stack id; its history is
 * one float per point (NaN where the site was not among the agent's reported top sites, i.e.
 * small, or not yet tracked). "other" is what the sampled total had beyond the tracked sites.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "heap.h"
#include "json-util.h"
#include "macro.h"

typedef struct HeapStackEntry {
        int64_t id;
        size_t n_frames;
        HwHeapFrame *frames; /* owned */
        double last_used;
        size_t bytes; /* what it holds, counted against HEAP_STACK_BYTES_MAX */
} HeapStackEntry;

typedef struct HeapSiteSlot {
        bool used;
        bool in_latest; /* among the sites of the latest report */
        int64_t stack;
        double first_seen;
        int64_t live_bytes, live_count, alloc_bytes_total, alloc_count_total; /* as last reported */
        float values[HEAP_POINTS];
} HeapSiteSlot;

struct ProcessHeap {
        ProcessHeap *prev_heap, *next_heap; /* every ProcessHeap: the daemon-wide bound */
        bool ended;                         /* its process ended: its stacks go first */
        unsigned tried;                     /* the eviction round that found nothing to take */

        HwHeapReport latest; /* scalars only: sites/stacks are NULL */
        double latest_time;
        uint64_t unknown_sites_total;

        HeapStackEntry *stacks;
        size_t n_stacks, cap_stacks;
        size_t stack_bytes;

        HeapSiteSlot sites[HEAP_SITES_MAX];

        size_t n_points;
        double spacing; /* minimum seconds between two kept points; doubles at each compaction */
        double times[HEAP_POINTS];
        float total[HEAP_POINTS];
        float other[HEAP_POINTS];
};

/* The daemon-wide bound (single-threaded: the event loop owns all of it). */
static ProcessHeap *all_heaps;
static size_t all_stack_bytes;
static size_t all_stack_bytes_max = HEAP_STACK_BYTES_ALL_MAX;

static void clear_stacks(ProcessHeap *h) {
        for (size_t i = 0; i < h->n_stacks; i++) {
                HwHeapStack s = { .n_frames = h->stacks[i].n_frames, .frames = h->stacks[i].frames };
                hw_heap_stack_done(&s);
        }
        h->n_stacks = 0;
        all_stack_bytes -= h->stack_bytes;
        h->stack_bytes = 0;
}

/* What malloc takes for a block of n bytes (glibc on 64 bits: 8 bytes of header, 16-byte
 * steps, 32 at least): a name of one character costs 32 bytes, not 2, and a bound that counted
 * only the characters let a peer sending short names hold three times the budget. */
static size_t malloc_cost(size_t n) {
        size_t c = (n + 8 + 15) & ~(size_t) 15;

        return c < 32 ? 32 : c;
}

static size_t stack_cost(const HwHeapFrame *frames, size_t n) {
        size_t c = sizeof(HeapStackEntry) + malloc_cost(n * sizeof(HwHeapFrame));

        for (size_t i = 0; i < n; i++)
                c += malloc_cost(strlen(frames[i].file) + 1) + malloc_cost(strlen(frames[i].func) + 1);
        return c;
}

ProcessHeap *process_heap_free(ProcessHeap *h) {
        if (!h)
                return NULL;
        clear_stacks(h);
        free(h->stacks);
        if (h->prev_heap)
                h->prev_heap->next_heap = h->next_heap;
        else
                all_heaps = h->next_heap;
        if (h->next_heap)
                h->next_heap->prev_heap = h->prev_heap;
        free(h);
        return NULL;
}

void process_heap_set_ended(ProcessHeap *h, bool ended) {
        if (h)
                h->ended = ended;
}

size_t process_heap_stack_bytes_all(void) {
        return all_stack_bytes;
}

void process_heap_set_stack_bytes_all_max(size_t max) {
        all_stack_bytes_max = max;
}

static void start_epoch(ProcessHeap *h) {
        clear_stacks(h);
        memset(h->sites, 0, sizeof h->sites);
        h->n_points = 0;
        h->spacing = 0;
}

static HeapStackEntry *find_stack(const ProcessHeap *h, int64_t id) {
        if (id <= 0)
                return NULL; /* 0 marks a free entry */
        for (size_t i = 0; i < h->n_stacks; i++)
                if (h->stacks[i].id == id)
                        return &h->stacks[i];
        return NULL;
}

static bool stack_in_use(const ProcessHeap *h, int64_t id) {
        for (size_t i = 0; i < HEAP_SITES_MAX; i++)
                if (h->sites[i].used && h->sites[i].stack == id)
                        return true;
        return false;
}

static HeapStackEntry *lru_unused(const ProcessHeap *h, const HeapStackEntry *except) {
        HeapStackEntry *e = NULL;

        for (size_t i = 0; i < h->n_stacks; i++)
                if (&h->stacks[i] != except && h->stacks[i].id != 0 && !stack_in_use(h, h->stacks[i].id) &&
                    (!e || h->stacks[i].last_used < e->last_used))
                        e = &h->stacks[i];
        return e;
}

/* Free what an entry holds and mark it free (id 0: no stack has it). */
static void release_stack(ProcessHeap *h, HeapStackEntry *e) {
        HwHeapStack old = { .n_frames = e->n_frames, .frames = e->frames };

        hw_heap_stack_done(&old);
        h->stack_bytes -= e->bytes;
        all_stack_bytes -= e->bytes;
        *e = (HeapStackEntry) { .id = 0 };
}

/* Room for `cost` more bytes under the daemon-wide bound: release stacks no tracked site needs,
 * first those of processes that ended (their records stay for a while, their sites with them),
 * then those of the process holding the most (possibly h itself), so every process keeps its
 * share. `keep` (h's entry being replaced, or NULL) is not taken. False when nothing more can
 * be released: every stack left is some tracked site's. */
static bool make_room_daemon_wide(ProcessHeap *h, const HeapStackEntry *keep, size_t cost) {
        static unsigned round;

        round++;
        while (all_stack_bytes + cost > all_stack_bytes_max) {
                ProcessHeap *victim = NULL;
                HeapStackEntry *e;

                for (ProcessHeap *x = all_heaps; x; x = x->next_heap)
                        if (x->tried != round && x->stack_bytes > 0 &&
                            (!victim || x->ended > victim->ended ||
                             (x->ended == victim->ended && x->stack_bytes > victim->stack_bytes)))
                                victim = x;
                if (!victim)
                        return false;
                e = lru_unused(victim, victim == h ? keep : NULL);
                if (!e)
                        victim->tried = round; /* all of its stacks are in use: look elsewhere */
                else
                        release_stack(victim, e);
        }
        return true;
}

/* Move one stack of a report into the table. Returns 0, or -ENOMEM. */
static int take_stack(ProcessHeap *h, HwHeapStack *st, double t) {
        HeapStackEntry *e = find_stack(h, st->id);
        size_t cost = stack_cost(st->frames, st->n_frames);

        if (e)
                release_stack(h, e); /* the agent sent it again (a new connection): take the new one */
        /* Room for its names: release the least recently used stacks no tracked site needs; their
         * sites, should they come back, go to "other" until the agent sends them again. */
        while (h->stack_bytes + cost > HEAP_STACK_BYTES_MAX) {
                HeapStackEntry *victim = lru_unused(h, e);

                if (!victim)
                        return 0; /* no room: this stack's sites go to "other" */
                release_stack(h, victim);
        }
        if (!make_room_daemon_wide(h, e, cost))
                return 0; /* the same, daemon-wide: the agent is asked again later */
        if (!e)
                for (size_t i = 0; i < h->n_stacks && !e; i++)
                        if (h->stacks[i].id == 0)
                                e = &h->stacks[i];
        if (!e && h->n_stacks < HEAP_STACKS_MAX) {
                if (h->n_stacks == h->cap_stacks) {
                        size_t cap = h->cap_stacks ? h->cap_stacks * 2 : 32;
                        HeapStackEntry *n = realloc(h->stacks, cap * sizeof *n);

                        if (!n)
                                return -ENOMEM;
                        h->stacks = n;
                        h->cap_stacks = cap;
                }
                e = &h->stacks[h->n_stacks++];
                *e = (HeapStackEntry) { .id = 0 };
        }
        if (!e) {
                /* full: replace the least recently used stack that no tracked site needs */
                e = lru_unused(h, NULL);
                if (!e)
                        return 0; /* every stack is in use: this one's sites go to "other" */
                release_stack(h, e);
        }
        e->id = st->id;
        e->n_frames = st->n_frames;
        e->frames = TAKE_PTR(st->frames);
        e->last_used = t;
        e->bytes = cost;
        h->stack_bytes += cost;
        all_stack_bytes += cost;
        st->n_frames = 0;
        return 0;
}

static HeapSiteSlot *slot_for(ProcessHeap *h, int64_t stack, int64_t live_bytes, double t) {
        HeapSiteSlot *free_slot = NULL, *smallest = NULL;

        for (size_t i = 0; i < HEAP_SITES_MAX; i++) {
                HeapSiteSlot *s = &h->sites[i];

                if (s->used && s->stack == stack)
                        return s;
                if (!s->used) {
                        if (!free_slot)
                                free_slot = s;
                } else if (!smallest || (s->in_latest ? s->live_bytes : 0) < (smallest->in_latest ? smallest->live_bytes : 0))
                        smallest = s;
        }
        if (!free_slot) {
                /* all taken: a larger site takes the place of the smallest (whose history ends) */
                if (!smallest || !(live_bytes > (smallest->in_latest ? smallest->live_bytes : 0)) || smallest->in_latest)
                        return NULL;
                free_slot = smallest;
        }
        *free_slot = (HeapSiteSlot) { .used = true, .stack = stack, .first_seen = t };
        for (size_t k = 0; k < HEAP_POINTS; k++)
                free_slot->values[k] = NAN;
        return free_slot;
}

/* History full: keep every other point (the newest always), double the spacing. */
static void compact(ProcessHeap *h) {
        size_t n = 0;

        for (size_t i = 1; i < h->n_points; i += 2, n++) {
                h->times[n] = h->times[i];
                h->total[n] = h->total[i];
                h->other[n] = h->other[i];
                for (size_t k = 0; k < HEAP_SITES_MAX; k++)
                        if (h->sites[k].used)
                                h->sites[k].values[n] = h->sites[k].values[i];
        }
        h->n_points = n;
        if (n >= 2)
                h->spacing = (h->times[n - 1] - h->times[0]) / (double) (n - 1) * 2;
}

int process_heap_ingest(ProcessHeap **hp, HwHeapReport *report, double t) {
        ProcessHeap *h = *hp;
        size_t idx;
        double tracked = 0;

        if (!h) {
                h = calloc(1, sizeof *h);
                if (!h)
                        return -ENOMEM;
                h->next_heap = all_heaps;
                if (all_heaps)
                        all_heaps->prev_heap = h;
                all_heaps = h;
                *hp = h;
        }
        if (h->latest.epoch != report->epoch)
                start_epoch(h);

        for (size_t i = 0; i < report->n_stacks; i++)
                if (take_stack(h, &report->stacks[i], t) < 0)
                        return -ENOMEM;

        for (size_t i = 0; i < HEAP_SITES_MAX; i++)
                h->sites[i].in_latest = false;
        for (size_t i = 0; i < report->n_sites; i++) {
                const HwHeapSite *site = &report->sites[i];
                HeapStackEntry *e = find_stack(h, site->stack);
                HeapSiteSlot *s;

                if (!e) {
                        h->unknown_sites_total++;
                        continue;
                }
                e->last_used = t;
                s = slot_for(h, site->stack, site->live_bytes, t);
                if (!s || s->in_latest)
                        continue; /* no room (or the same stack twice): part of "other" */
                s->in_latest = true;
                s->live_bytes = site->live_bytes;
                s->live_count = site->live_count;
                s->alloc_bytes_total = site->alloc_bytes_total;
                s->alloc_count_total = site->alloc_count_total;
                tracked += (double) site->live_bytes;
        }

        /* Append a point, or refresh the newest one while the spacing is not reached, so the
         * newest point is always the latest report. */
        if (h->n_points >= 2 && t - h->times[h->n_points - 2] < h->spacing)
                idx = h->n_points - 1;
        else {
                if (h->n_points == HEAP_POINTS)
                        compact(h);
                idx = h->n_points++;
        }
        h->times[idx] = t;
        h->total[idx] = (float) report->live_bytes;
        h->other[idx] = (float) fmax(0, (double) report->live_bytes - tracked);
        for (size_t k = 0; k < HEAP_SITES_MAX; k++)
                if (h->sites[k].used)
                        h->sites[k].values[idx] = h->sites[k].in_latest ? (float) h->sites[k].live_bytes : NAN;

        h->latest = *report;
        h->latest.sites = NULL;
        h->latest.n_sites = 0;
        h->latest.stacks = NULL;
        h->latest.n_stacks = 0;
        h->latest_time = t;
        return 0;
}

/* Value of a series at time x: the last known value at or before x. With none: 0 when the
 * history reaches back to x (the site was too small to be reported then), else the first known
 * value (we cannot tell). *ret_known false when the series has no value at all. */
static double series_at(const ProcessHeap *h, const float *v, double x, bool *ret_known) {
        ssize_t last = -1, first = -1;

        for (size_t i = 0; i < h->n_points; i++) {
                if (isnan(v[i]))
                        continue;
                if (first < 0)
                        first = (ssize_t) i;
                if (h->times[i] <= x)
                        last = (ssize_t) i;
        }
        *ret_known = first >= 0;
        if (last >= 0)
                return v[last];
        if (first < 0)
                return 0;
        return h->n_points > 0 && h->times[0] <= x ? 0 : v[first];
}

static double growth(const ProcessHeap *h, const float *v, double from, double to) {
        bool known;
        double b = series_at(h, v, to, &known), a;

        if (!known)
                return 0;
        a = series_at(h, v, from, &known);
        return b - a;
}

static json_t *frames_json(const HeapStackEntry *e) {
        _cleanup_json_ json_t *a = json_array();

        if (!a)
                return NULL;
        for (size_t i = 0; e && i < e->n_frames; i++)
                if (json_append(a, json_pack("{s:o,s:o,s:I}", "file", json_string_lossy(e->frames[i].file), "function",
                                             json_string_lossy(e->frames[i].func), "line", (json_int_t) e->frames[i].line)) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

/* The window actually covered: [max(from, first point), latest]. */
static double window_from(const ProcessHeap *h, double from) {
        return h->n_points > 0 && h->times[0] > from ? h->times[0] : from;
}

static json_t *rate_or_null(double g, double seconds) {
        return seconds > 0 ? json_number_or_null(g / seconds) : json_null();
}

typedef struct SlotRef {
        const HeapSiteSlot *s;
        double key;
} SlotRef;

static int slot_ref_desc(const void *a, const void *b) {
        const SlotRef *x = a, *y = b;
        return x->key > y->key ? -1 : x->key < y->key;
}

json_t *process_heap_json(const ProcessHeap *h, const char *process_id, double now, double window, size_t limit) {
        _cleanup_json_ json_t *o = json_object(), *sites = json_array(), *other = NULL, *win = NULL;
        SlotRef refs[HEAP_SITES_MAX];
        size_t n = 0;
        double to, from, secs;

        if (!o || !sites)
                return NULL;
        if (json_add(o, "id", json_string(process_id)) < 0 ||
            json_add(o, "profiling", json_boolean(h != NULL)) < 0)
                return NULL;
        if (!h) {
                if (json_add(o, "sites", TAKE_PTR(sites)) < 0)
                        return NULL;
                return TAKE_PTR(o);
        }
        to = h->latest_time > 0 ? h->latest_time : now;
        from = window_from(h, to - window);
        secs = to - from;

        for (size_t i = 0; i < HEAP_SITES_MAX; i++)
                if (h->sites[i].used && h->sites[i].in_latest)
                        refs[n++] = (SlotRef) { .s = &h->sites[i], .key = (double) h->sites[i].live_bytes };
        qsort(refs, n, sizeof *refs, slot_ref_desc);
        for (size_t i = 0; i < n && i < limit; i++) {
                const HeapSiteSlot *s = refs[i].s;
                double g = growth(h, s->values, from, to);

                if (json_append(sites, json_pack("{s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o}", "stack_id", (json_int_t) s->stack,
                                                 "live_bytes", (json_int_t) s->live_bytes, "live_count",
                                                 (json_int_t) s->live_count, "alloc_bytes_total",
                                                 (json_int_t) s->alloc_bytes_total, "alloc_count_total",
                                                 (json_int_t) s->alloc_count_total, "growth_bytes", json_value(g),
                                                 "growth_bytes_per_second", rate_or_null(g, secs), "first_seen",
                                                 json_time_or_null(s->first_seen), "frames",
                                                 frames_json(find_stack(h, s->stack)))) < 0)
                        return NULL;
        }
        {
                double g = growth(h, h->other, from, to);
                other = json_pack("{s:o,s:o}", "live_bytes", json_value(h->n_points ? h->other[h->n_points - 1] : 0),
                                  "growth_bytes", json_value(g));
        }
        win = json_pack("{s:o,s:o,s:o}", "from", json_time_or_null(from), "to", json_time_or_null(to), "seconds",
                        json_value(secs));
        if (!other || !win ||
            json_add(o, "time", json_time_or_null(h->latest_time)) < 0 ||
            json_add(o, "epoch", json_integer(h->latest.epoch)) < 0 ||
            json_add(o, "sample_bytes", json_integer(h->latest.sample_bytes)) < 0 ||
            json_add(o, "depth", json_integer(h->latest.depth)) < 0 ||
            json_add(o, "live_bytes", json_integer(h->latest.live_bytes)) < 0 ||
            json_add(o, "live_count", json_integer(h->latest.live_count)) < 0 ||
            json_add(o, "alloc_bytes_total", json_integer(h->latest.alloc_bytes_total)) < 0 ||
            json_add(o, "alloc_count_total", json_integer(h->latest.alloc_count_total)) < 0 ||
            json_add(o, "samples_total", json_integer(h->latest.samples_total)) < 0 ||
            json_add(o, "samples_live", json_integer(h->latest.samples_live)) < 0 ||
            json_add(o, "tracked_full_total", json_integer(h->latest.tracked_full_total)) < 0 ||
            json_add(o, "stacks_full_total", json_integer(h->latest.stacks_full_total)) < 0 ||
            json_add(o, "lost_total", json_integer(h->latest.lost_total)) < 0 ||
            json_add(o, "unknown_sites_total", json_integer((json_int_t) h->unknown_sites_total)) < 0 ||
            json_add(o, "total_growth_bytes", json_value(growth(h, h->total, from, to))) < 0 ||
            json_add(o, "window", TAKE_PTR(win)) < 0 ||
            json_add(o, "history_points", json_integer((json_int_t) h->n_points)) < 0 ||
            json_add(o, "history_from", json_time_or_null(h->n_points ? h->times[0] : 0)) < 0 ||
            json_add(o, "sites", TAKE_PTR(sites)) < 0 ||
            json_add(o, "other", TAKE_PTR(other)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_t *process_heap_suspects_json(const ProcessHeap *h, double from, double to, size_t limit) {
        _cleanup_json_ json_t *a = json_array();
        SlotRef refs[HEAP_SITES_MAX];
        size_t n = 0;
        double sum = 0, other, secs;

        if (!a)
                return NULL;
        if (!h || h->n_points < 2)
                return TAKE_PTR(a);
        if (to > h->latest_time)
                to = h->latest_time;
        from = window_from(h, from);
        secs = to - from;
        if (!(secs > 0))
                return TAKE_PTR(a);
        for (size_t i = 0; i < HEAP_SITES_MAX; i++) {
                double g;

                if (!h->sites[i].used)
                        continue;
                g = growth(h, h->sites[i].values, from, to);
                if (g > 0) {
                        refs[n++] = (SlotRef) { .s = &h->sites[i], .key = g };
                        sum += g;
                }
        }
        other = growth(h, h->other, from, to);
        if (other > 0)
                sum += other;
        qsort(refs, n, sizeof *refs, slot_ref_desc);
        for (size_t i = 0; i < n && i < limit; i++) {
                const HeapStackEntry *e = find_stack(h, refs[i].s->stack);
                const HwHeapFrame *top = e && e->n_frames ? &e->frames[0] : NULL;

                if (json_append(a, json_pack("{s:s,s:I,s:o,s:o,s:I,s:o,s:o,s:o,s:I,s:o}", "kind", "allocation_site",
                                             "stack_id", (json_int_t) refs[i].s->stack, "function",
                                             json_string_lossy(top ? top->func : "?"), "file",
                                             json_string_lossy(top ? top->file : "?"), "line",
                                             (json_int_t) (top ? top->line : 0), "growth_bytes", json_value(refs[i].key),
                                             "growth_bytes_per_second", rate_or_null(refs[i].key, secs), "share",
                                             json_real(sum > 0 ? refs[i].key / sum : 0), "live_bytes",
                                             (json_int_t) refs[i].s->live_bytes, "frames", frames_json(e))) < 0)
                        return NULL;
        }
        return TAKE_PTR(a);
}

double process_heap_live_bytes(const ProcessHeap *h) {
        return h ? (double) h->latest.live_bytes : -1;
}

uint64_t process_heap_unknown_sites_total(const ProcessHeap *h) {
        return h ? h->unknown_sites_total : 0;
}
