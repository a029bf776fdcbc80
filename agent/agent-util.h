/* SPDX-License-Identifier: MIT */
/*
 * Small header-only helpers for the agent's plain-C files: clocks, scope-bound cleanup and
 * fd handling. The agent shares nothing with the daemon but include/heapwatch/, so it keeps
 * its own few lines of what lib/macro.h offers the daemon. Include this first in every agent
 * .c file except those that include Python.h, which must come first: it sets _GNU_SOURCE.
 */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define HW_ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define HW_UNUSED __attribute__((unused))

static inline void hw_freep(void *p) {
        free(*(void **) p);
}

static inline void hw_closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

#define HW_CLEANUP_FREE __attribute__((cleanup(hw_freep)))
#define HW_CLEANUP_CLOSE __attribute__((cleanup(hw_closep)))

#define HW_TAKE_PTR(p)                             \
        ({                                         \
                __typeof__(p) _taken_ = (p);       \
                (p) = NULL;                        \
                _taken_;                           \
        })

/* Close an fd; accepts -1; returns -1 so callers can write fd = hw_safe_close(fd). */
static inline int hw_safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

/* CLOCK_MONOTONIC in seconds. */
static inline double hw_now_monotonic(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Wall clock, Unix seconds. */
static inline double hw_now_unix(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
