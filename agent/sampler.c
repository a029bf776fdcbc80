/* SPDX-License-Identifier: MIT */
/*
 * The sampler thread (see sampler.h).
 */
#include "agent-util.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "encode.h"
#include "procstat.h"
#include "sampler.h"

double hw_sampler_schedule(double *slot_start, double interval, double now, double u) {
        *slot_start += interval;
        if (*slot_start + interval <= now)
                *slot_start = now;
        return *slot_start + u * interval;
}

/* splitmix64 (Steele, Lea & Flood 2014): a well-mixed stream from any seed, enough for
 * scheduling; the host's own random state is never touched. */
static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Uniform in [0, 1), from the top 53 bits. */
static double jitter_uniform(struct hw_sampler *s) {
        return (double) (splitmix64(&s->jitter_state) >> 11) * 0x1.0p-53;
}

/* A seed that differs between processes (and between a fork's parent and child, which would
 * otherwise sample in step). */
static void jitter_seed(struct hw_sampler *s) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->jitter_state = ((uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec) ^
                          ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) s;
}

void hw_sampler_init(struct hw_sampler *s) {
        memset(s, 0, sizeof(*s));
        s->wake_fd = -1;
        pthread_mutex_init(&s->join_lock, NULL);
        hw_mallocstat_init(&s->malloc_stats);
}

void hw_sampler_take(struct hw_sampler *s, struct hw_agent_sample *ret, bool consume, hw_sampler_python_fn python,
                     void *userdata) {
        double start = hw_now_monotonic();
        struct hw_transport_status st;

        hw_agent_sample_init(ret);
        ret->time = hw_now_unix();
        if (consume)
                ret->seq = __atomic_add_fetch(&s->seq, 1, __ATOMIC_RELAXED);
        else
                ret->seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

        (void) hw_procstat_read_process(s->config.proc_root, &ret->process);
        (void) hw_procstat_read_cgroup(s->config.proc_root, &ret->cgroup);
        /* Before the GIL, and only on the sampler thread: malloc's locks are never taken while
         * the host waits for the GIL (snapshot() and the final sample reuse the last figures). */
        (void) hw_mallocstat_read(&s->malloc_stats, start, hw_sampler_is_current_thread(s), &ret->malloc_stats);
        if (python)
                (void) python(userdata, ret, consume);

        if (s->config.transport) {
                hw_transport_get_status(s->config.transport, &st);
                ret->samples_dropped_total = st.samples_dropped_total;
                ret->reconnects_total = st.reconnects_total;
        }
        ret->sample_seconds = hw_now_monotonic() - start;
}

static void sample_and_queue(struct hw_sampler *s) {
        struct hw_agent_sample sample;
        uint8_t *frame = NULL;
        size_t size = 0;
        int r;

        hw_sampler_take(s, &sample, true, s->config.python, s->config.userdata);
        r = hw_encode_sample(&sample, NULL, &frame, &size);
        if (r == -E2BIG && sample.heap) {
                /* never lose the sample to an oversized heap report: send it without (and
                 * the stacks it was to carry go with a later report) */
                json_decref(sample.heap);
                sample.heap = NULL;
                hw_transport_stacks_lost(s->config.transport);
                r = hw_encode_sample(&sample, NULL, &frame, &size);
        }
        hw_agent_sample_clear(&sample);
        if (r < 0) {
                hw_transport_count_dropped(s->config.transport, 1);
                return;
        }
        hw_transport_enqueue(s->config.transport, HW_FRAME_SAMPLE, frame, size);
}

/* Daemon requests (census, chains) run here, on our own thread, never on a host thread: the
 * callback takes the GIL for at most the request's budget. At most the transport's bound of
 * them wait, so this loop is bounded too. */
static void serve_requests(struct hw_sampler *s) {
        struct hw_request req;

        if (!s->config.request)
                return;
        while (__atomic_load_n(&s->stop_requested, __ATOMIC_ACQUIRE) == 0 &&
               hw_transport_take_request(s->config.transport, &req))
                s->config.request(s->config.userdata, &req);
}

static bool stop_requested(struct hw_sampler *s) {
        return __atomic_load_n(&s->stop_requested, __ATOMIC_ACQUIRE) != 0;
}

static void *sampler_main(void *arg) {
        struct hw_sampler *s = arg;
        struct hw_transport *t = s->config.transport;
        double next = s->next_sample;

        if (!(next > 0)) /* a fresh start: at once, and the first interval begins now */
                next = s->slot_start = hw_now_monotonic();

        while (!stop_requested(s)) {
                struct pollfd pfd[2];
                double now, wait, t_wait;
                int ms;

                if (s->config.housekeeping)
                        s->config.housekeeping(s->config.userdata);
                now = hw_now_monotonic();

                if (now >= next) {
                        sample_and_queue(s);
                        now = hw_now_monotonic();
                        next = hw_sampler_schedule(&s->slot_start, s->config.interval, now, jitter_uniform(s));
                }
                s->next_sample = next; /* read by hw_sampler_resume() after the join */
                hw_transport_run(t, now, 0);

                pfd[0] = (struct pollfd) { .fd = s->wake_fd, .events = POLLIN };
                hw_transport_poll_setup(t, now, &pfd[1], &t_wait);
                wait = next - now;
                if (t_wait >= 0 && t_wait < wait)
                        wait = t_wait;
                ms = wait > 0 ? (int) ceil(wait * 1000) : 0;

                if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, ms) < 0)
                        continue; /* EINTR */
                if (pfd[0].revents) {
                        uint64_t v;
                        if (read(s->wake_fd, &v, sizeof(v)) < 0) {
                                /* EAGAIN: someone else drained it; nothing to do */
                        }
                }
                if (pfd[1].fd >= 0 && pfd[1].revents)
                        hw_transport_run(t, hw_now_monotonic(), pfd[1].revents);
                serve_requests(s);
        }
        if (s->config.thread_end)
                s->config.thread_end(s->config.userdata);
        return NULL;
}

static bool thread_started(const struct hw_sampler *s) {
        return __atomic_load_n(&s->thread_started, __ATOMIC_ACQUIRE);
}

static int spawn(struct hw_sampler *s) {
        sigset_t all, saved;
        uint64_t v;
        int r;

        /* The eventfd lives as long as the sampler (until a fork child forgets it), so a
         * concurrent hw_sampler_request_stop() never writes to a closed, maybe reused, fd. */
        if (s->wake_fd < 0) {
                int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

                if (fd < 0)
                        return -errno;
                __atomic_store_n(&s->wake_fd, fd, __ATOMIC_RELAXED); /* hw_sampler_wake() reads it */
        }
        while (read(s->wake_fd, &v, sizeof(v)) > 0) {
                /* drop a wake-up left from the previous thread */
        }
        __atomic_store_n(&s->stop_requested, 0, __ATOMIC_RELEASE);

        /* The thread inherits the signal mask: block everything so the host's signals always go
         * to the host's threads, and restore our caller's mask. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        r = pthread_create(&s->thread, NULL, sampler_main, s);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r != 0)
                return -r;
        (void) pthread_setname_np(s->thread, "heapwatch");
        __atomic_store_n(&s->thread_started, true, __ATOMIC_RELEASE);
        return 0;
}

int hw_sampler_start(struct hw_sampler *s, const struct hw_sampler_config *config) {
        if (thread_started(s))
                return -EBUSY;
        if (!(config->interval > 0) || !config->transport)
                return -EINVAL;
        s->config = *config;
        __atomic_store_n(&s->seq, s->config.seq_base, __ATOMIC_RELAXED);
        s->next_sample = 0;
        jitter_seed(s);
        return spawn(s);
}

int hw_sampler_resume(struct hw_sampler *s) {
        if (thread_started(s))
                return -EBUSY;
        if (!(s->config.interval > 0) || !s->config.transport)
                return -EINVAL;
        return spawn(s);
}

void hw_sampler_wake(struct hw_sampler *s) {
        uint64_t one = 1;
        int fd = __atomic_load_n(&s->wake_fd, __ATOMIC_RELAXED);

        if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
                /* EAGAIN: the counter is already non-zero, the thread will wake anyway */
        }
}

void hw_sampler_request_stop(struct hw_sampler *s) {
        __atomic_store_n(&s->stop_requested, 1, __ATOMIC_RELEASE);
        hw_sampler_wake(s);
}

void hw_sampler_join(struct hw_sampler *s) {
        /* Two callers may race here (stop() in one thread, the fork hook in another, both
         * without the GIL): the lock makes the second wait for the first and then find nothing
         * left to join. It is never taken with the GIL held. */
        pthread_mutex_lock(&s->join_lock);
        if (thread_started(s)) {
                pthread_join(s->thread, NULL);
                __atomic_store_n(&s->thread_started, false, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&s->join_lock);
}

bool hw_sampler_thread_running(const struct hw_sampler *s) {
        return thread_started(s);
}

bool hw_sampler_is_current_thread(const struct hw_sampler *s) {
        return thread_started(s) && pthread_equal(s->thread, pthread_self());
}

void hw_sampler_forget_after_fork(struct hw_sampler *s) {
        /* Another thread of the parent may have been inside hw_sampler_join(), which holds
         * join_lock while it waits for the thread to end, so the fork handlers cannot take it:
         * start it afresh, as CPython does with its own locks (_PyThread_at_fork_reinit). The
         * malloc_stats lock is held across fork() by the fork handlers and free here. The
         * eventfd is shared with the parent's copy: never write to it again. */
        pthread_mutex_init(&s->join_lock, NULL);
        __atomic_store_n(&s->thread_started, false, __ATOMIC_RELEASE);
        s->next_sample = 0;
        jitter_seed(s);
        s->wake_fd = hw_safe_close(s->wake_fd);
        __atomic_store_n(&s->stop_requested, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&s->seq, 0, __ATOMIC_RELAXED);
}
