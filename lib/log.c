/* SPDX-License-Identifier: MIT */
/*
 * Logging implementation (see log.h). Formats into a bounded stack buffer and writes the line
 * with one write(2) so concurrent lines never interleave mid-line.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "time-util.h"

static int max_level = LOG_INFO;
static bool prefix_priority = false;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_prefix_priority(bool on) {
        prefix_priority = on;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

        if (!s)
                return -EINVAL;
        for (int i = 0; i < (int) ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        return i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        size_t n = 0;
        va_list ap;
        int r;

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;

        if (prefix_priority)
                n = (size_t) snprintf(buf, sizeof buf, "<%d>", level);
        else if (level <= LOG_WARNING)
                n = (size_t) snprintf(buf, sizeof buf, "%s: ", level <= LOG_ERR ? "error" : "warning");

        /* %m must see the caller's error, not whatever errno is now. */
        errno = error;
        va_start(ap, format);
        r = vsnprintf(buf + n, sizeof buf - n, format, ap);
        va_end(ap);
        if (r < 0)
                r = 0;
        n += (size_t) r;
        if (n > sizeof buf - 2)
                n = sizeof buf - 2;
        if (max_level >= LOG_DEBUG && !prefix_priority && level == LOG_DEBUG) {
                r = snprintf(buf + n, sizeof buf - n, " (%s:%d %s)", file, line, func);
                if (r > 0)
                        n += (size_t) r;
                if (n > sizeof buf - 2)
                        n = sizeof buf - 2;
        }
        buf[n++] = '\n';
        (void) !write(STDERR_FILENO, buf, n);
        return -error;
}

bool ratelimit_below(RateLimit *rl) {
        unsigned long long now = now_usec_monotonic();

        if (rl->begin_usec == 0 || now - rl->begin_usec > rl->interval_usec) {
                rl->begin_usec = now;
                rl->num = 0;
        }
        if (rl->num < rl->burst) {
                rl->num++;
                return true;
        }
        rl->suppressed++;
        return false;
}
