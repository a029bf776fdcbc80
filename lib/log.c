/* SPDX-License-Identifier: MIT */
/*
 * Logging implementation (see log.h). Formats into a bounded stack buffer and writes the line
 * with one write(2) so concurrent lines never interleave mid-line.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "time-util.h"

static int max_level = LOG_INFO;
static bool prefix_priority = false;
static LogWriter writer = NULL;

void log_set_writer(LogWriter w) {
        writer = w;
}

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

/* Per-call-site rate limit for warnings and errors: a small table keyed by the site's
 * file/line (string literals, so pointer identity is enough); a collision merely shares a
 * budget. */
#define LOG_SITES 64
typedef struct LogSite {
        const char *file;
        int line;
        RateLimit rl;
} LogSite;
static LogSite log_sites[LOG_SITES];

/* Returns true to log; *ret_suppressed says how many were dropped since the last logged one. */
static bool log_site_allow(const char *file, int line, unsigned *ret_suppressed) {
        LogSite *site = &log_sites[((uintptr_t) file / 8 + (unsigned) line * 31u) % LOG_SITES];

        *ret_suppressed = 0;
        if (site->file != file || site->line != line) {
                *site = (LogSite) { file, line, RATELIMIT_INIT(LOG_SITE_INTERVAL_USEC, LOG_SITE_BURST) };
        }
        if (!ratelimit_below(&site->rl))
                return false;
        if (site->rl.num == 1 && site->rl.suppressed > 0) {
                *ret_suppressed = site->rl.suppressed;
                site->rl.suppressed = 0;
        }
        return true;
}

static void log_write(int level, int error, const char *file, int line, const char *func, const char *message,
                      const char *const *fields, size_t n_fields) {
        char buf[2200];
        size_t n = 0;
        int r;

        if (writer) {
                writer(level, error, file, line, func, message, fields, n_fields);
                return;
        }
        if (prefix_priority)
                n = (size_t) snprintf(buf, sizeof buf, "<%d>", level);
        else if (level <= LOG_WARNING)
                n = (size_t) snprintf(buf, sizeof buf, "%s: ", level <= LOG_ERR ? "error" : "warning");
        r = snprintf(buf + n, sizeof buf - n, "%s", message);
        if (r > 0)
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
}

/* _printf_(8, 0): clang checks the callers' formats through here (and asks for it under -Wformat=2). */
_printf_(8, 0) static int log_valist(int level, int error, const char *file, int line, const char *func,
                                     const char *const *fields, size_t n_fields, const char *format, va_list ap) {
        char message[2048];
        unsigned suppressed = 0;

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;
        if (level <= LOG_WARNING && !log_site_allow(file, line, &suppressed))
                return -error;
        if (suppressed > 0) {
                char note[160];
                snprintf(note, sizeof note, "(%u similar message(s) from %s:%d suppressed)", suppressed, file, line);
                log_write(level, 0, file, line, func, note, NULL, 0);
        }
        /* %m must see the caller's error, not whatever errno is now. */
        errno = error;
        if (vsnprintf(message, sizeof message, format, ap) < 0)
                message[0] = '\0';
        log_write(level, error, file, line, func, message, fields, n_fields);
        return -error;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_valist(level, error, file, line, func, NULL, 0, format, ap);
        va_end(ap);
        return r;
}

int log_internal_fields(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, size_t n_fields, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_valist(level, error, file, line, func, fields, n_fields, format, ap);
        va_end(ap);
        return r;
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
