/* SPDX-License-Identifier: MIT */
/*
 * Resuming leak detection after a restart: a process's detectors (leaks.c) are fed the post-GC
 * floor it had before, read back from the durable tiers (store.h), instead of starting from
 * nothing. Detectors evaluate each time a window closes, about a millisecond each at the
 * longest horizons, so seven days of one-minute floor points would keep the event loop busy for
 * seconds per process. Two things bound it: the stored history is thinned with age (one point
 * per minute for the last two hours, then coarser, so every horizon still sees ~60 points per
 * doubling, each the minimum of its span: the same floor the detector would have computed), and
 * the points are fed a bounded slice at a time from a timer of the caller's. Samples that arrive
 * while a process's replay is still running queue behind it, so the detectors always see time
 * in order. Nothing here logs; leak_resume_step() says when a replay finished.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "leaks.h"
#include "sample.h"
#include "store.h"

typedef struct LeakResume LeakResume;

#define LEAK_RESUME_LIVE_MAX 4096 /* live samples queued behind a replay; newer ones skip detection */

/* Build the replay of `id` from the store: floor points in [now - horizon, now). Returns 0 and
 * *ret (NULL when there is nothing stored), -errno. */
int leak_resume_new(Store *store, const char *id, double now, double horizon, LeakResume **ret);
LeakResume *leak_resume_free(LeakResume *r);

/* Queue a live sample behind the replay. Returns 0, or -ENOBUFS when the queue is full (the
 * sample is then not seen by the detectors). */
int leak_resume_queue(LeakResume *r, const HwSample *s);

/* What a live sample queued behind the replay did to the finding (opened, confirmed, closed): it
 * happened now, and is reported as detect_leaks() reports one. Stored points' events are not:
 * they are history, said when they happened. */
typedef void (*LeakLiveEventFn)(void *userdata, LeakEvent event);

/* Feed at most max_points queued points into l. Returns 1 when everything was fed (free it
 * then), 0 when more remain, -errno from the detectors. ret_fed: stored points fed so far.
 * on_live_event (may be NULL) gets the events of live samples. */
int leak_resume_step(LeakResume *r, ProcessLeaks *l, double host_available, size_t max_points, size_t *ret_fed,
                     LeakLiveEventFn on_live_event, void *userdata);

size_t leak_resume_remaining(const LeakResume *r);
