/* SPDX-License-Identifier: MIT */
/*
 * Implementation of cli-util.h: the CLI's error printer and terminal width. Separate from
 * lib/log.c on purpose: the daemon's log lines carry a priority ("error: ", "<3>"), while a
 * command-line tool's message names the program, as the usage contract of heapwatch(1) shows.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli-util.h"
#include "format.h"
#include "parse-util.h"

int cli_error_errno(int error, const char *format, ...) {
        va_list ap;

        if (error < 0)
                error = -error;

        /* Build the whole line first so it reaches stderr in one write(2): it never
         * interleaves with output of another process sharing the same stderr. */
        char buf[2048];
        int n = snprintf(buf, sizeof buf, "%s: ", PROGRAM_NAME);
        errno = error; /* %m must see the caller's error, not whatever errno is now. */
        va_start(ap, format);
        int m = vsnprintf(buf + n, sizeof buf - (size_t) n, format, ap);
        va_end(ap);
        if (m < 0)
                m = 0;
        size_t len = (size_t) n + (size_t) m;
        if (len > sizeof buf - 2)
                len = sizeof buf - 2;
        buf[len++] = '\n';
        fflush(stdout); /* keep the order the operator would expect when both go to a terminal */
        (void) !write(STDERR_FILENO, buf, len);

        return error > 0 ? -error : -EINVAL;
}

const char *cli_printable(const char *s, char **buf) {
        if (!s)
                return "(null)";
        if (format_sanitize(s, buf) < 0)
                return "(unprintable)";
        return *buf;
}

size_t cli_output_columns(void) {
        struct winsize ws;
        const char *e;
        uint64_t v;

        if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;

        e = getenv("COLUMNS");
        if (e && parse_uint64(e, &v) >= 0 && v >= 20 && v <= 10000)
                return (size_t) v;

        return 0;
}
