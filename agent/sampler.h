/* SPDX-License-Identifier: MIT */
/*
 * The agent's native background thread. Every interval it takes a sample (the /proc and /sys
 * figures without the GIL; the Python figures through a callback that module.c provides and
 * that takes the GIL briefly), frames it, queues it on the transport and lets the transport
 * write. Between samples it waits in poll() on the socket and on an eventfd that stop uses to
 * wake it, so it never spins and stops promptly.
 *
 * The thread is created with every signal blocked: signals meant for the host are never
 * delivered to it.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent-sample.h"
#include "mallocstat.h"
#include "transport.h"

/* Fills the Python part of a sample (python.*, gc.*); consume: the sample is sent, so GC pause
 * figures restart from zero. Returns 0, or a negative errno when the figures are unavailable
 * (then the sample goes without them). Must never block for long. */
typedef int (*hw_sampler_python_fn)(void *userdata, struct hw_agent_sample *s, bool consume);

/* Serves one daemon REQUEST (census.h) on the sampler thread: does the work (taking the GIL
 * within the request's budget), and queues the reply on the transport. May be NULL. */
typedef void (*hw_sampler_request_fn)(void *userdata, const struct hw_request *req);

struct hw_sampler_config {
        double interval;             /* seconds */
        const char *proc_root;       /* see procstat.h; NULL for "/" */
        struct hw_transport *transport;
        hw_sampler_python_fn python; /* called from the sampler thread; may be NULL */
        void *userdata;
        uint64_t seq_base;           /* the first sample gets seq_base + 1 */
        hw_sampler_request_fn request; /* called from the sampler thread; may be NULL */
        /* Called on the sampler thread, without the GIL, every time it wakes (hw_sampler_wake()
         * or otherwise); must be quick. May be NULL. */
        void (*housekeeping)(void *userdata);
        /* Called on the sampler thread as the last thing before it ends (module.c frees the
         * thread's Python thread state there). May be NULL. */
        void (*thread_end)(void *userdata);
};

struct hw_sampler {
        struct hw_sampler_config config;
        pthread_t thread;
        bool thread_started;      /* accessed atomically */
        pthread_mutex_t join_lock; /* serialises hw_sampler_join(); never held with the GIL */
        int wake_fd;               /* eventfd, kept across starts */
        int stop_requested; /* accessed atomically */
        uint64_t seq;       /* last sequence number used; accessed atomically */
        double slot_start;  /* CLOCK_MONOTONIC start of the interval the next sample falls in */
        double next_sample; /* CLOCK_MONOTONIC when the next sample is due; both kept across a pause */
        uint64_t jitter_state; /* the schedule's random stream (hw_sampler_schedule) */
        struct hw_mallocstat malloc_stats; /* glibc figures, read without the GIL, duty-limited */
};

/* The schedule: one sample at a uniformly random moment u (in [0, 1)) of each interval, not at
 * its start (stratified random sampling). A workload that repeats at a period close to a
 * multiple of the interval (a GC sawtooth at a steady request rate, a timer) is otherwise
 * sampled at a phase that drifts slowly, and the minima the daemon's leak detector keeps climb
 * for an hour or two and drop: an aliased "leak" that nothing in the samples tells from a real
 * one (docs/detection.md, "What it does not do"). Random phases turn it into noise.
 * Given the interval [*slot_start, + interval) whose sample was just taken at now, moves
 * *slot_start to the next interval and returns when its sample is due. When the sampler fell
 * a whole interval behind (suspended, starved of the GIL), the next interval starts now: no
 * burst of samples to catch up. Pure, for the tests. */
double hw_sampler_schedule(double *slot_start, double interval, double now, double u);

/* Prepare an idle sampler (no thread). */
void hw_sampler_init(struct hw_sampler *s);

/* Start the thread. The first sample is taken at once, then one in every interval, at a random
 * moment of it (hw_sampler_schedule).
 * Returns 0, or -errno (eventfd, pthread_create); then no thread runs. */
int hw_sampler_start(struct hw_sampler *s, const struct hw_sampler_config *config);

/* Start the thread again after hw_sampler_request_stop() + hw_sampler_join(), with the same
 * configuration, sequence numbers and schedule (used around fork(): see module.c).
 * Returns 0 or -errno. */
int hw_sampler_resume(struct hw_sampler *s);

/* Wake the thread (one write to an eventfd; never blocks), from any thread: it runs its
 * housekeeping and goes back to waiting. */
void hw_sampler_wake(struct hw_sampler *s);

/* Ask the thread to end (a flag and one write to an eventfd; never blocks). */
void hw_sampler_request_stop(struct hw_sampler *s);

/* Wait for the thread to end, after hw_sampler_request_stop(). The thread may itself be waiting
 * for the GIL: a caller that holds it must release it around this call. Safe to call from two
 * threads at once, and when no thread runs. */
void hw_sampler_join(struct hw_sampler *s);

/* True while a thread is started and not yet joined. */
bool hw_sampler_thread_running(const struct hw_sampler *s);

/* True when called from the sampler thread itself. */
bool hw_sampler_is_current_thread(const struct hw_sampler *s);

/* In a child after fork(): the thread does not exist there; forget it and its eventfd. */
void hw_sampler_forget_after_fork(struct hw_sampler *s);

/* Take one sample in the calling thread: process and cgroup figures, then python(userdata,...)
 * when non-NULL, then the transport's counters; times itself into sample_seconds. With consume
 * the sample gets the next sequence number, else the last one used (a peek). */
void hw_sampler_take(struct hw_sampler *s, struct hw_agent_sample *ret, bool consume, hw_sampler_python_fn python,
                     void *userdata);
