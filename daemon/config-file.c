/* SPDX-License-Identifier: MIT */
/*
 * Configuration file reader (see config-file.h). libinih does the INI syntax; every key and
 * value goes through options_set_key(), the same validation the command line gets.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-file.h"
#include "macro.h"

typedef struct LoadContext {
        Options *options;
        const char *path;
        char *error;
        size_t error_size;
        bool failed; /* only the first error is reported */
        /* The reader below hands inih one line a call (lines are checked to fit its buffer), so
         * counting calls gives the line a key is on: Debian's libinih is built without
         * INI_HANDLER_LINENO. */
        const char *next;
        int line;
        /* Keys seen, with their line: a key given twice is refused (which one was meant?). Every
         * key is an option's name (others are refused), so there are never more than those. */
        struct {
                char name[64];
                int line;
        } seen[128];
        size_t n_seen;
} LoadContext;

static char *read_line(char *buf, int num, void *userdata) {
        LoadContext *c = userdata;
        size_t n = 0;

        if (!*c->next || num < 2)
                return NULL;
        /* Indentation is not meaningful here: inih (built with INI_ALLOW_MULTILINE) would take
         * an indented line for the continuation of the previous key's value. */
        while (*c->next == ' ' || *c->next == '\t')
                c->next++;
        while (c->next[n] && c->next[n] != '\n' && n < (size_t) num - 2)
                n++;
        if (c->next[n] == '\n')
                n++;
        memcpy(buf, c->next, n);
        buf[n] = '\0';
        c->next += n;
        c->line++;
        return buf;
}

static int on_key(void *userdata, const char *section, const char *name, const char *value) {
        LoadContext *c = userdata;
        int lineno = c->line;
        char why[256];

        if (c->failed)
                return 1;
        if (strcmp(section, CONFIG_SECTION) != 0) {
                snprintf(c->error, c->error_size, "%s:%d: key '%s' outside the [%s] section%s%s%s", c->path, lineno,
                         name, CONFIG_SECTION, section[0] ? " (in [" : "", section, section[0] ? "])" : "");
                c->failed = true;
                return 0;
        }
        for (size_t i = 0; i < c->n_seen; i++)
                if (strcmp(c->seen[i].name, name) == 0) {
                        snprintf(c->error, c->error_size, "%s:%d: '%s' is already set on line %d", c->path, lineno, name,
                                 c->seen[i].line);
                        c->failed = true;
                        return 0;
                }
        if (options_set_key(c->options, name, value, why, sizeof why) < 0) {
                snprintf(c->error, c->error_size, "%s:%d: %s", c->path, lineno, why);
                c->failed = true;
                return 0;
        }
        if (c->n_seen < ELEMENTSOF(c->seen)) {
                snprintf(c->seen[c->n_seen].name, sizeof c->seen[0].name, "%s", name);
                c->seen[c->n_seen++].line = lineno;
        }
        return 1;
}

/* Read the whole file, bounded. */
static int read_bounded(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        struct stat st;

        /* O_NONBLOCK: a FIFO in its place would block the open (and a reload, the event loop)
         * until a writer came; it is refused below as not a regular file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        buf = malloc(CONFIG_FILE_MAX_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, CONFIG_FILE_MAX_BYTES + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CONFIG_FILE_MAX_BYTES)
                        return -EFBIG;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int config_file_load(Options *o, const char *path, bool required, char *error, size_t size) {
        _cleanup_free_ char *text = NULL;
        LoadContext c = { .options = o, .path = path, .error = error, .error_size = size };
        size_t n = 0, line = 1, col = 0;
        int r;

        o->config_found = false;
        r = read_bounded(path, &text, &n);
        if (r == -ENOENT && !required)
                return 0;
        if (r == -EFBIG) {
                snprintf(error, size, "%s: larger than %d bytes", path, CONFIG_FILE_MAX_BYTES);
                return -EINVAL;
        }
        if (r == -EINVAL) {
                snprintf(error, size, "%s: not a regular file", path);
                return -EINVAL;
        }
        if (r < 0) {
                snprintf(error, size, "%s: %s", path, strerror(-r));
                return r;
        }
        /* What inih would mangle rather than refuse: NUL bytes and lines longer than its buffer. */
        for (size_t i = 0; i < n; i++) {
                if (text[i] == '\0') {
                        snprintf(error, size, "%s:%zu: NUL byte", path, line);
                        return -EINVAL;
                }
                if (text[i] == '\n') {
                        line++;
                        col = 0;
                } else if (++col > CONFIG_LINE_MAX) {
                        snprintf(error, size, "%s:%zu: line longer than %d characters", path, line, CONFIG_LINE_MAX);
                        return -EINVAL;
                }
        }
        c.next = text;
        r = ini_parse_stream(read_line, &c, on_key, &c);
        if (c.failed)
                return -EINVAL;
        if (r > 0) {
                /* inih's own syntax error (no '=' or ':', an unclosed section). */
                snprintf(error, size, "%s:%d: syntax error (expected 'key = value' or '[section]')", path, r);
                return -EINVAL;
        }
        if (r < 0) {
                snprintf(error, size, "%s: cannot be parsed", path);
                return -ENOMEM;
        }
        o->config_found = true;
        return 0;
}
