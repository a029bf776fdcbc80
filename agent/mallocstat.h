/* SPDX-License-Identifier: MIT */
/*
 * glibc's view of the C heap: mallinfo2() (arena, in use, free, mmapped, keepcost), the
 * figures that tell native memory growth (in use grows) from allocator retention (free grows)
 * when RSS rises and the Python heap does not. mallinfo2() takes every malloc arena's lock in
 * turn and walks the free lists under it, so its cost grows with fragmentation and the host's
 * threads that malloc wait for it meanwhile: the reader times each call and spaces the calls so
 * that at most HW_MALLOCSTAT_DUTY of the time is spent in it; in between it repeats the last
 * figures (with their age). Called from the sampler thread without the GIL. No Python here.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "agent-sample.h"

/* Share of wall time the agent may spend inside mallinfo2() (holding malloc's locks). */
#define HW_MALLOCSTAT_DUTY 0.001
/* A call slower than this (a heap with tens of thousands of free chunks: ~0.1-1 us each, see
 * bench/mallinfo_bench.c) stalls the host's mallocs in that arena for as long: after
 * HW_MALLOCSTAT_STRIKES such calls in a row, or one over HW_MALLOCSTAT_CALL_MAX_ONCE, the agent
 * stops asking for good in this process, and the figures are absent from then on. Not after one
 * call over HW_MALLOCSTAT_CALL_MAX: the same heap's calls vary 2- to 5-fold beside two busy
 * threads (bench/mallinfo_jitter.py: 5000 free chunks, 0.45-0.67 ms median, 1.5-2.1 ms max) and
 * 26-fold on a machine at load 13 (bench/mallinfo_bench.c: 0.48 ms median, 12.3 ms max), and one
 * unlucky call gave the figures up for the process's life (the likely cause of a CI failure of
 * the leak_native scenario on a busy machine). Costs are the
 * sampler thread's CPU time in the call (preemption on a busy machine is not the heap's cost). */
#define HW_MALLOCSTAT_CALL_MAX 0.005
#define HW_MALLOCSTAT_STRIKES 3
#define HW_MALLOCSTAT_CALL_MAX_ONCE 0.05

struct hw_mallocstat {
        pthread_mutex_t lock; /* the sampler thread and snapshot() may both read */
        double next_at;       /* CLOCK_MONOTONIC before which the cached figures are reused */
        struct hw_agent_malloc last;
        double last_at;       /* when `last` was read (monotonic) */
        unsigned strikes;     /* calls over HW_MALLOCSTAT_CALL_MAX in a row */
        bool given_up;        /* too slow (see HW_MALLOCSTAT_CALL_MAX): never again */
};

void hw_mallocstat_init(struct hw_mallocstat *m);

/* Whether this build can read glibc's figures at all. */
bool hw_mallocstat_supported(void);

/* Fill *ret with the allocator's figures, reading them now unless the duty cycle says to reuse
 * the last ones, or `may_call` is false (a caller holding the GIL: snapshot(), the final sample
 * of stop() and exit get the last figures the sampler thread read, never a fresh walk).
 * now: CLOCK_MONOTONIC seconds. Returns 0 (ret->present), -ENODATA when nothing was read yet
 * and may_call is false, -EOPNOTSUPP when the C library has no mallinfo2()/mallinfo(),
 * -ECANCELED once the calls were too slow (then ret->present = false). */
int hw_mallocstat_read(struct hw_mallocstat *m, double now, bool may_call, struct hw_agent_malloc *ret);

/* Account for a call that cost `cost` seconds at `now`: when the next may be made, and whether
 * to give up. Called by hw_mallocstat_read() with m->lock held; apart for the tests. */
void hw_mallocstat_account(struct hw_mallocstat *m, double now, double cost);
