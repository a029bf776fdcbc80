/* SPDX-License-Identifier: MIT */
/*
 * How much of the host's time the daemon's requests (census, chains) may take, across requests.
 *
 * Each request holds the GIL for at most its budget at a time and gives it back for as long as it
 * held it (heapwalk.c), but a daemon that sent one request after another kept the host at half
 * its speed or worse for as long as it went on (8 chains requests of 1000 ms every 50 ms: the host
 * did 22-35 % of its work; found by review). So the holds of all requests together draw on a
 * token bucket of GIL seconds: HW_GIL_SHARE_BURST at once, refilled at HW_GIL_SHARE_RATE of the
 * time (a full bucket in 40 s), and a hold starts only after a pause as long as the previous
 * one, whichever request it belonged to. A request that finds the bucket empty is answered
 * "busy" without taking the GIL; a census that empties it mid-way ends as it stands (partial,
 * counts scaled from what it saw). The daemon's own defaults (a census when a finding opens and
 * every 10 minutes while it is open, --agent-work-per-minute) stay far below the rate.
 *
 * Plain C, times in CLOCK_MONOTONIC seconds passed in, so Check tests drive them.
 */
#pragma once

#include <stdbool.h>

#define HW_GIL_SHARE_BURST 2.0 /* seconds of GIL held back to back, from a full bucket */
#define HW_GIL_SHARE_RATE 0.05 /* share of the host's time the requests may take in the long run */

struct hw_gil_share {
        double tokens;    /* GIL seconds that may still be held; negative: debt */
        double updated;   /* when tokens were last refilled */
        double free_from; /* the end of the last hold plus its length: no hold before this */
        bool started;
};

/* Refill to now; whether a new request may start (the bucket is not empty). */
bool hw_gil_share_may_start(struct hw_gil_share *g, double now);

/* Seconds to wait before the next hold may start (0: now). */
double hw_gil_share_wait(const struct hw_gil_share *g, double now);

/* A hold of `held` seconds ended at `end`; returns whether the bucket still has tokens. */
bool hw_gil_share_spent(struct hw_gil_share *g, double end, double held);
