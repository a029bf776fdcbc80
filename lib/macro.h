/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the daemon, the CLI and the tests: scope-bound cleanup
 * (__attribute__((cleanup))), TAKE_PTR/TAKE_FD, ELEMENTSOF. Header-only; never logs.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

/* Take ownership of a pointer/fd out of a _cleanup_ variable, leaving NULL/-1 behind. */
#define TAKE_PTR(p)                                \
        ({                                         \
                __typeof__(p) _taken_ = (p);       \
                (p) = NULL;                        \
                _taken_;                           \
        })
#define TAKE_FD(fd)                                \
        ({                                         \
                int _taken_fd_ = (fd);             \
                (fd) = -1;                         \
                _taken_fd_;                        \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Define a cleanup function for a pointer type whose destructor accepts NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)      \
        static inline void func##p(type *p) {        \
                if (*p)                              \
                        func(*p);                    \
        }

/* Close an fd; accepts -1; returns -1 so callers can write fd = safe_close(fd). */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}
