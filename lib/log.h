/* SPDX-License-Identifier: MIT */
/*
 * Logging for heapwatchd and the CLI: syslog priorities, stderr with "<N>" prefixes (which
 * journald understands when the daemon runs under systemd) or plain for a terminal.
 * log_*_errno() return -abs(error) so callers can write
 *         return log_error_errno(r, "Failed to open %s: %m", path);
 * Library code (lib/, the agent) never logs above debug.
 *
 * A program may install a writer (log_set_writer()) that takes over the output, e.g. heapwatchd
 * writing to the journal with structured fields (daemon/sd-util.c); lib/ itself knows nothing
 * of systemd. Messages at warning and above are rate-limited per call site (LOG_SITE_BURST a
 * LOG_SITE_INTERVAL_USEC), with a line saying how many were suppressed, so one failing peer or
 * disk cannot flood the log.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parse "debug", "info", "notice", "warning", "err"/"error", "crit", "alert", "emerg" or 0..7. */
int log_level_from_string(const char *s);
/* Prefix lines with "<N>" (for journald/systemd) instead of plain text for a terminal. */
void log_set_prefix_priority(bool on);

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);
/* The same with extra structured fields ("KEY=value", for the journal; plain stderr drops them
 * since the message says the same). */
int log_internal_fields(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, size_t n_fields, const char *format, ...) _printf_(8, 9);

/* Writes one formatted line (no newline) with its fields; returns nothing, must not log. */
typedef void (*LogWriter)(int level, int error, const char *file, int line, const char *func, const char *message,
                          const char *const *fields, size_t n_fields);
void log_set_writer(LogWriter writer); /* NULL: back to stderr */

#define LOG_SITE_BURST 10
#define LOG_SITE_INTERVAL_USEC (30ULL * 1000000)

#define log_full_errno(level, error, ...) log_internal(level, error, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
#define log_struct(level, fields, n_fields, ...) \
        log_internal_fields(level, 0, __FILE__, __LINE__, __func__, fields, n_fields, __VA_ARGS__)
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

/* Rate limiting for repeated failures: at most `burst` messages per `interval_usec`. */
typedef struct RateLimit {
        unsigned long long interval_usec;
        unsigned burst;
        unsigned long long begin_usec;
        unsigned num;
        unsigned suppressed;
} RateLimit;

#define RATELIMIT_INIT(interval, b) { .interval_usec = (interval), .burst = (b) }
/* Returns true if the caller may log now. */
bool ratelimit_below(RateLimit *rl);
