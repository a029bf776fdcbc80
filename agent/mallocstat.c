/* SPDX-License-Identifier: MIT */
/*
 * glibc malloc statistics for the sampler (see mallocstat.h).
 */
#include "agent-util.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <time.h>

#include "mallocstat.h"

/* mallinfo2() appeared in glibc 2.33; mallinfo()'s int fields wrap above 2 GiB, so it is only
 * the fallback. Checked here rather than by configure: tests/e2e/build-agent.sh builds this file
 * for every interpreter without config.h. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define HW_HAVE_MALLINFO2 1
#elif defined(__GLIBC__)
#define HW_HAVE_MALLINFO 1
#endif

/* The calling thread's CPU time: what the walk over the free lists costs. Wall time would also
 * count the sampler thread being preempted on a busy machine, and give up for no reason. */
static double thread_cpu_seconds(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
                return hw_now_monotonic();
        return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

void hw_mallocstat_init(struct hw_mallocstat *m) {
        memset(m, 0, sizeof(*m));
        pthread_mutex_init(&m->lock, NULL);
}

bool hw_mallocstat_supported(void) {
#if defined(HW_HAVE_MALLINFO2) || defined(HW_HAVE_MALLINFO)
        return true;
#else
        return false;
#endif
}

static void read_now(struct hw_agent_malloc *ret) {
#if defined(HW_HAVE_MALLINFO2)
        struct mallinfo2 mi = mallinfo2();
#elif defined(HW_HAVE_MALLINFO)
        struct mallinfo mi = mallinfo();
#endif
#if defined(HW_HAVE_MALLINFO2) || defined(HW_HAVE_MALLINFO)
        ret->present = true;
        /* arena: bytes obtained with brk/sbrk and by the per-thread arenas' heaps (non-mmapped) */
        ret->arena_bytes = (int64_t) mi.arena;
        ret->in_use_bytes = (int64_t) mi.uordblks;  /* allocated chunks (not mmapped ones) */
        ret->free_bytes = (int64_t) mi.fordblks;    /* free chunks malloc keeps */
        ret->mmapped_bytes = (int64_t) mi.hblkhd;   /* chunks served by their own mmap */
        ret->keepcost_bytes = (int64_t) mi.keepcost; /* releasable top of the main heap */
#else
        (void) ret;
#endif
}

void hw_mallocstat_account(struct hw_mallocstat *m, double now, double cost) {
        /* Spend at most HW_MALLOCSTAT_DUTY of the time in here: a call that took 1 ms (a badly
         * fragmented heap, many arenas) is repeated after 1 s at the soonest. */
        m->next_at = now + cost / HW_MALLOCSTAT_DUTY;
        m->strikes = cost > HW_MALLOCSTAT_CALL_MAX ? m->strikes + 1 : 0;
        if (m->strikes >= HW_MALLOCSTAT_STRIKES || cost > HW_MALLOCSTAT_CALL_MAX_ONCE)
                m->given_up = true;
}

int hw_mallocstat_read(struct hw_mallocstat *m, double now, bool may_call, struct hw_agent_malloc *ret) {
        double t0, cost;

        if (!hw_mallocstat_supported()) {
                memset(ret, 0, sizeof(*ret));
                return -EOPNOTSUPP;
        }
        pthread_mutex_lock(&m->lock);
        if (m->given_up) {
                pthread_mutex_unlock(&m->lock);
                memset(ret, 0, sizeof(*ret));
                return -ECANCELED;
        }
        if (!may_call && !m->last.present) {
                pthread_mutex_unlock(&m->lock);
                memset(ret, 0, sizeof(*ret));
                return -ENODATA;
        }
        if (may_call && (!m->last.present || now >= m->next_at)) {
                t0 = thread_cpu_seconds();
                read_now(&m->last);
                cost = thread_cpu_seconds() - t0;
                if (cost < 0)
                        cost = 0;
                m->last.read_seconds = cost;
                m->last_at = now; /* the caller's clock: ages and spacing are in its terms */
                /* This one's figures still go out, even when it is the last. */
                hw_mallocstat_account(m, now, cost);
        }
        *ret = m->last;
        ret->age_seconds = now > m->last_at ? now - m->last_at : 0;
        pthread_mutex_unlock(&m->lock);
        return 0;
}
