/* SPDX-License-Identifier: MIT */
/*
 * What glibc's mallinfo2() costs the host (docs/performance.md, "malloc figures"): the agent
 * reads it from its sampler thread, and it takes each malloc arena's lock in turn while it walks
 * that arena's free lists, so a host thread that mallocs meanwhile waits. Measured here on heaps
 * of increasing fragmentation (free chunks the walk must visit) and arena counts: the duration
 * of one call (median and max of 50), and the longest malloc()+free() of a concurrent thread
 * while the calls run versus while they do not. Also shows the agent's duty limiter: how often
 * hw_mallocstat_read() really calls mallinfo2() when asked every 50 ms.
 *
 *   make bench-mallinfo
 */
#include "agent-util.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mallocstat.h"

#define CALLS 50

static volatile int stop_worker;
static volatile int measuring;
static double worker_max[2]; /* [0] calls not running, [1] calls running */

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void *malloc_worker(void *arg) {
        (void) arg;
        while (!stop_worker) {
                double t0 = hw_now_monotonic(), d;
                void *p = malloc(64);
                free(p);
                d = hw_now_monotonic() - t0;
                if (d > worker_max[measuring])
                        worker_max[measuring] = d;
        }
        return NULL;
}

/* Fragment the calling thread's arena: n chunks of 16..1040 bytes, every other one freed, so
 * the free chunks cannot coalesce and sit in the bins mallinfo2() walks. Returns what to free. */
static void **fragment(size_t n) {
        void **v = calloc(n, sizeof *v);
        unsigned seed = 1;

        for (size_t i = 0; i < n && v; i++)
                v[i] = malloc(16 + (rand_r(&seed) % 64) * 16);
        for (size_t i = 0; i < n && v; i += 2) {
                free(v[i]);
                v[i] = NULL;
        }
        return v;
}

static void release(void **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

struct arena_thread {
        size_t n;
        void **v;
        pthread_barrier_t *ready, *done;
};

/* Each thread gets its own malloc arena (glibc gives threads separate arenas up to 8 x cores). */
static void *arena_main(void *arg) {
        struct arena_thread *a = arg;
        a->v = fragment(a->n);
        pthread_barrier_wait(a->ready);
        pthread_barrier_wait(a->done);
        release(a->v, a->n);
        return NULL;
}

static void measure(const char *what, size_t threads, size_t chunks) {
        pthread_barrier_t ready, done;
        struct arena_thread at[16];
        pthread_t th[16], w;
        double d[CALLS];
        void **mine = NULL;
        struct mallinfo2 mi;

        if (threads > 16)
                threads = 16;
        pthread_barrier_init(&ready, NULL, (unsigned) threads + 1);
        pthread_barrier_init(&done, NULL, (unsigned) threads + 1);
        for (size_t i = 0; i < threads; i++) {
                at[i] = (struct arena_thread) { .n = chunks, .ready = &ready, .done = &done };
                pthread_create(&th[i], NULL, arena_main, &at[i]);
        }
        if (threads == 0 && chunks > 0)
                mine = fragment(chunks);
        pthread_barrier_wait(&ready);

        stop_worker = 0;
        measuring = 0;
        worker_max[0] = worker_max[1] = 0;
        pthread_create(&w, NULL, malloc_worker, NULL);
        /* the worker alone, as long as the calls will take */
        for (int i = 0; i < CALLS; i++) {
                double t0 = hw_now_monotonic();
                while (hw_now_monotonic() - t0 < 0.002) {
                }
        }
        for (int i = 0; i < CALLS; i++) {
                double t0;
                measuring = 1;
                t0 = hw_now_monotonic();
                mi = mallinfo2();
                d[i] = hw_now_monotonic() - t0;
                measuring = 0;
                t0 = hw_now_monotonic();
                while (hw_now_monotonic() - t0 < 0.002) {
                }
        }
        stop_worker = 1;
        pthread_join(w, NULL);
        qsort(d, CALLS, sizeof d[0], cmp_double);
        printf("%-44s %9zu %12.1f %10.1f %10.1f %14.1f %14.1f\n", what, (size_t) mi.fordblks / 1024, d[CALLS / 2] * 1e6,
               d[CALLS - 1] * 1e6, d[CALLS - 1] / 1.0 * 1e6 / HW_MALLOCSTAT_DUTY / 1e6, worker_max[0] * 1e6,
               worker_max[1] * 1e6);

        pthread_barrier_wait(&done);
        for (size_t i = 0; i < threads; i++)
                pthread_join(th[i], NULL);
        release(mine, chunks);
        pthread_barrier_destroy(&ready);
        pthread_barrier_destroy(&done);
}

int main(void) {
        struct hw_mallocstat m;
        struct hw_agent_malloc out;
        void **v;
        int calls = 0;
        double last = -1;

        printf("mallinfo2() cost, %d calls each (us); 'spacing' = the duty limiter's gap after the slowest call (s);\n"
               "'worker max' = longest malloc+free of a concurrent thread, without / during the calls (us)\n\n",
               CALLS);
        printf("%-44s %9s %12s %10s %10s %14s %14s\n", "heap", "free KiB", "median", "max", "spacing", "worker max off",
               "worker max on");
        measure("fresh (main arena only)", 0, 0);
        measure("main arena, 10k chunks, half free", 0, 10000);
        measure("main arena, 100k chunks, half free", 0, 100000);
        measure("main arena, 1M chunks, half free", 0, 1000000);
        measure("8 thread arenas x 100k chunks, half free", 8, 100000);

        /* The limiter: asked every 50 ms for 5 s on the 10k-chunk heap, how many real calls. */
        v = fragment(10000);
        hw_mallocstat_init(&m);
        for (double t = 0; t < 5.0; t += 0.05) {
                hw_mallocstat_read(&m, hw_now_monotonic(), true, &out);
                if (out.age_seconds == 0 || m.last_at != last)
                        calls += m.last_at != last;
                last = m.last_at;
                {
                        double t0 = hw_now_monotonic();
                        while (hw_now_monotonic() - t0 < 0.05) {
                        }
                }
        }
        printf("\nduty limiter on the 10k-chunk heap: %d real mallinfo2() calls for 100 samples in 5 s "
               "(last call %.0f us%s)\n", calls, out.read_seconds * 1e6,
               m.given_up ? ", then given up: over HW_MALLOCSTAT_CALL_MAX" : "");
        release(v, 10000);
        return 0;
}
