/* SPDX-License-Identifier: MIT */
/*
 * Implementation of `heapwatch heap` (see heap-view.h): argument parsing and rendering are pure and
 * unit-tested; verb_heap() adds the HTTP request and the output.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli-util.h"
#include "error-util.h"
#include "format.h"
#include "heap-view.h"
#include "http-client.h"
#include "status.h"

#define _cleanup_json_decref_ _cleanup_(json_decrefp)
#define ID_MAX 47

enum {
        COLUMN_RANK,
        COLUMN_LIVE,
        COLUMN_COUNT,
        COLUMN_GROWTH,
        COLUMN_RATE,
        COLUMN_SITE,
        _COLUMN_MAX,
};

static const TableColumn heap_columns[_COLUMN_MAX] = {
        [COLUMN_RANK] = { "#", TABLE_ALIGN_RIGHT, 4 },
        [COLUMN_LIVE] = { "LIVE", TABLE_ALIGN_RIGHT, FORMAT_BYTES_MAX },
        [COLUMN_COUNT] = { "OBJECTS", TABLE_ALIGN_RIGHT, 20 },
        [COLUMN_GROWTH] = { "GROWTH", TABLE_ALIGN_RIGHT, FORMAT_BYTES_MAX + 1 },
        [COLUMN_RATE] = { "PER SECOND", TABLE_ALIGN_RIGHT, FORMAT_BYTES_MAX + 3 },
        [COLUMN_SITE] = { "SITE", TABLE_ALIGN_LEFT, 0, .shrink = true, .min_width = 20 },
};

/* "<digits>-<digits>": the daemon's process ids; nothing else goes into the URL path. */
static bool id_is_valid(const char *s) {
        size_t n = strlen(s), dash = strcspn(s, "-");

        if (n == 0 || n > ID_MAX || dash == 0 || dash >= n - 1)
                return false;
        for (size_t i = 0; i < n; i++)
                if (i != dash && (s[i] < '0' || s[i] > '9'))
                        return false;
        return true;
}

static const char *option_value(int argc, char *argv[], int *i, const char *name) {
        size_t len = strlen(name);

        if (strncmp(argv[*i], name, len) == 0 && argv[*i][len] == '=')
                return argv[*i] + len + 1;
        if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
                return argv[++*i];
        return NULL;
}

static bool is_option(const char *arg, const char *name) {
        size_t len = strlen(name);
        return strncmp(arg, name, len) == 0 && (arg[len] == '\0' || arg[len] == '=');
}

int heap_parse_args(int argc, char *argv[], HeapArgs *ret, char *error, size_t error_size) {
        HeapArgs a = { .frames = HEAP_FRAMES_DEFAULT };

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *v;
                _cleanup_free_ char *q = NULL;

                if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                        *ret = (HeapArgs) { .help = true };
                        return 0;
                } else if (strcmp(arg, "--json") == 0)
                        a.json = true;
                else if (is_option(arg, "--url") || is_option(arg, "--window") || is_option(arg, "--limit") ||
                           is_option(arg, "--frames")) {
                        const char *name = arg[2] == 'u' ? "--url" : arg[2] == 'w' ? "--window" : arg[2] == 'l' ? "--limit" : "--frames";

                        v = option_value(argc, argv, &i, name);
                        if (!v || !*v)
                                return set_error(error, error_size, "option %s requires a value", name);
                        if (name[2] == 'u')
                                a.url = v;
                        else if (name[2] == 'w')
                                a.window = v;
                        else if (name[2] == 'l')
                                a.limit = v;
                        else {
                                char *end;
                                long n;

                                errno = 0;
                                n = strtol(v, &end, 10);
                                if (end == v || *end || errno || n < 0 || n > HEAP_FRAMES_MAX)
                                        return set_error(error, error_size, "--frames must be an integer within 0..%d",
                                                         HEAP_FRAMES_MAX);
                                a.frames = (unsigned) n;
                        }
                } else if (arg[0] == '-')
                        return set_error(error, error_size, "unknown option '%s'", cli_printable(arg, &q));
                else if (a.id)
                        return set_error(error, error_size, "unexpected argument '%s'", cli_printable(arg, &q));
                else
                        a.id = arg;
        }
        if (!a.id)
                return set_error(error, error_size, "missing process ID (see 'heapwatch status')");
        if (!id_is_valid(a.id)) {
                _cleanup_free_ char *q = NULL;
                return set_error(error, error_size, "invalid process ID '%s': expected PID-TICKS as 'heapwatch status' shows",
                                 cli_printable(a.id, &q));
        }
        *ret = a;
        return 0;
}

/* ---- rendering ------------------------------------------------------------------------------- */

static bool get_number(const json_t *o, const char *key, double *ret) {
        const json_t *v = json_object_get(o, key);
        double d;

        if (!json_is_number(v))
                return false;
        d = json_number_value(v);
        if (!isfinite(d))
                return false;
        *ret = d;
        return true;
}

static const char *cell_bytes(char *buf, size_t size, const json_t *o, const char *key) {
        double d;

        if (!get_number(o, key, &d) || !(d >= 0))
                return NULL;
        return format_bytes_number(buf, size, d);
}

/* Bytes with a sign: "+12.0 MiB", "-1.0 KiB", "0 B". suffix follows the number ("/s"). */
static const char *signed_bytes(char *buf, size_t size, double d, const char *suffix) {
        char b[FORMAT_BYTES_MAX];

        format_bytes_number(b, sizeof b, fabs(d));
        snprintf(buf, size, "%s%s%s", d > 0 ? "+" : d < 0 ? "-" : "", b, suffix);
        return buf;
}

static const char *cell_signed(char *buf, size_t size, const json_t *o, const char *key, const char *suffix) {
        double d;

        if (!get_number(o, key, &d))
                return NULL;
        return signed_bytes(buf, size, d, suffix);
}

/* "function (file:line)" of frame f, sanitized; NULL on ENOMEM. */
static char *frame_text(const json_t *f) {
        const json_t *func = json_object_get(f, "function"), *file = json_object_get(f, "file");
        double line = 0;
        char *s = NULL, *safe = NULL;

        (void) get_number(f, "line", &line);
        if (asprintf(&s, "%s (%s:%.0f)", json_is_string(func) ? json_string_value(func) : "?",
                     json_is_string(file) ? json_string_value(file) : "?", line >= 0 ? line : 0) < 0)
                return NULL;
        if (format_sanitize(s, &safe) < 0)
                safe = NULL;
        free(s);
        return safe;
}

int heap_render(const char *body, size_t size, unsigned frames, size_t max_width, char **ret) {
        _cleanup_json_decref_ json_t *root = NULL;
        _cleanup_table_free_ Table *t = NULL;
        _cleanup_free_ char *table = NULL, *buf = NULL, *id = NULL;
        const json_t *sites, *s, *win, *other;
        size_t i, bufsize = 0;
        double live = 0, secs = 0, d;
        FILE *f;
        int r;

        root = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(root))
                return -EBADMSG;
        sites = json_object_get(root, "sites");
        if (!json_is_array(sites))
                return -EBADMSG;
        if (json_is_string(json_object_get(root, "id")) &&
            format_sanitize(json_string_value(json_object_get(root, "id")), &id) < 0)
                return -ENOMEM;

        f = open_memstream(&buf, &bufsize);
        if (!f)
                return -ENOMEM;
        if (!json_is_true(json_object_get(root, "profiling"))) {
                fprintf(f, "Process %s: no heap profile received (the agent's heap profiler is off, "
                           "HEAPWATCH_SAMPLE_BYTES=0, or no report arrived yet).\n", id ? id : "?");
                goto done;
        }

        win = json_object_get(root, "window");
        (void) get_number(win, "seconds", &secs);
        (void) get_number(root, "live_bytes", &live);
        {
                char b[FORMAT_BYTES_MAX], mean[FORMAT_BYTES_MAX], g[FORMAT_BYTES_MAX + 8], dur[FORMAT_DURATION_MAX];
                double samples = 0, sample_bytes = 0, growth = 0;

                (void) get_number(root, "samples_live", &samples);
                (void) get_number(root, "sample_bytes", &sample_bytes);
                (void) get_number(root, "total_growth_bytes", &growth);
                fprintf(f, "Process %s: %s live in the sampled Python heap (%.0f live samples, one per %s allocated); "
                           "%s over the last %s.\n",
                        id ? id : "?", format_bytes_number(b, sizeof b, live > 0 ? live : 0), samples,
                        format_bytes_number(mean, sizeof mean, sample_bytes > 0 ? sample_bytes : 0),
                        signed_bytes(g, sizeof g, growth, ""), format_duration(dur, sizeof dur, secs));
        }

        r = table_new(heap_columns, _COLUMN_MAX, &t);
        if (r < 0) {
                fclose(f);
                return r;
        }
        json_array_foreach(sites, i, s) {
                char rank[24], lv[FORMAT_BYTES_MAX], cnt[32], gr[FORMAT_BYTES_MAX + 4], rt[FORMAT_BYTES_MAX + 8];
                _cleanup_free_ char *site = NULL;
                const json_t *fr = json_object_get(s, "frames");
                const char *cells[_COLUMN_MAX];

                if (!json_is_object(s))
                        continue;
                snprintf(rank, sizeof rank, "%zu", i + 1);
                if (json_is_array(fr) && json_array_size(fr) > 0) {
                        site = frame_text(json_array_get(fr, 0));
                        if (!site) {
                                fclose(f);
                                return -ENOMEM;
                        }
                }
                cells[COLUMN_RANK] = rank;
                cells[COLUMN_LIVE] = cell_bytes(lv, sizeof lv, s, "live_bytes");
                cells[COLUMN_COUNT] = get_number(s, "live_count", &d) && d >= 0 ? (snprintf(cnt, sizeof cnt, "%.0f", d), cnt) : NULL;
                cells[COLUMN_GROWTH] = cell_signed(gr, sizeof gr, s, "growth_bytes", "");
                cells[COLUMN_RATE] = cell_signed(rt, sizeof rt, s, "growth_bytes_per_second", "/s");
                cells[COLUMN_SITE] = site ? site : "(no Python frame)";
                r = table_add_row(t, cells);
                if (r < 0) {
                        fclose(f);
                        return r;
                }
        }
        other = json_object_get(root, "other");
        if (json_is_object(other)) {
                char lv[FORMAT_BYTES_MAX], gr[FORMAT_BYTES_MAX + 4];
                const char *cells[_COLUMN_MAX] = {
                        [COLUMN_RANK] = "", [COLUMN_LIVE] = cell_bytes(lv, sizeof lv, other, "live_bytes"),
                        [COLUMN_GROWTH] = cell_signed(gr, sizeof gr, other, "growth_bytes", ""),
                        [COLUMN_SITE] = "(other sites)",
                };
                r = table_add_row(t, cells);
                if (r < 0) {
                        fclose(f);
                        return r;
                }
        }
        r = table_format(t, max_width, &table);
        if (r < 0) {
                fclose(f);
                return r;
        }
        fputs("\n", f);
        fputs(table, f);

        if (frames > 0 && json_array_size(sites) > 0) {
                fputs("\nStacks (innermost first):\n", f);
                json_array_foreach(sites, i, s) {
                        const json_t *fr = json_object_get(s, "frames"), *x;
                        size_t k;

                        if (!json_is_object(s))
                                continue;
                        fprintf(f, "#%zu\n", i + 1);
                        if (!json_is_array(fr) || json_array_size(fr) == 0)
                                fputs("    (no Python frame: allocated by the interpreter or a C extension)\n", f);
                        json_array_foreach(fr, k, x) {
                                _cleanup_free_ char *text = NULL;

                                if (k >= frames) {
                                        fprintf(f, "    ... %zu more\n", json_array_size(fr) - k);
                                        break;
                                }
                                text = frame_text(x);
                                fprintf(f, "    %s\n", text ? text : "?");
                        }
                }
        }
done:
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

void heap_help(void) {
        printf("Usage: %s heap ID [--url URL] [--window SECONDS] [--limit N] [--frames N] [--json]\n"
               "\n"
               "Show which code holds a process's memory: the allocation sites with the most\n"
               "estimated live bytes in the sampled Python heap, their growth over the window,\n"
               "and their stacks. ID is a process id as '%s status' shows it.\n"
               "\n"
               "Options:\n"
               "  --url URL         heapwatchd's HTTP address (default $HEAPWATCH_URL, else %s)\n"
               "  --window SECONDS  growth over the last SECONDS (default 600)\n"
               "  --limit N         show the N largest sites (default 20, at most 64)\n"
               "  --frames N        frames of each stack to show (default %d; 0: no stacks)\n"
               "  --json            print the daemon's JSON as it came\n"
               "  -h, --help        show this help\n",
               PROGRAM_NAME, PROGRAM_NAME, STATUS_DEFAULT_URL, HEAP_FRAMES_DEFAULT);
}

static int render_heap(const char *body, size_t size, void *userdata, char **ret) {
        return heap_render(body, size, *(const unsigned *) userdata, cli_output_columns(), ret);
}

int verb_heap(int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL, *query = NULL;
        char error[512];
        HeapArgs a;
        int r;

        r = heap_parse_args(argc, argv, &a, error, sizeof error);
        if (r < 0) {
                cli_error("heap: %s", error);
                fprintf(stderr, "Try '%s heap --help'.\n", PROGRAM_NAME);
                return EXIT_USAGE;
        }
        if (a.help) {
                heap_help();
                return EXIT_OK;
        }

        /* window and limit are the user's text: percent-encode nothing, refuse what needs it */
        if ((a.window && strspn(a.window, "0123456789.eE+-") != strlen(a.window)) ||
            (a.limit && strspn(a.limit, "0123456789") != strlen(a.limit))) {
                cli_error("heap: --window and --limit take numbers");
                return EXIT_USAGE;
        }
        if (asprintf(&path, "/api/v1/processes/%s/heap", a.id) < 0 ||
            asprintf(&query, "%s%s%s%s%s", a.window ? "window=" : "", a.window ? a.window : "",
                     a.window && a.limit ? "&" : "", a.limit ? "limit=" : "", a.limit ? a.limit : "") < 0) {
                cli_error_errno(-ENOMEM, "%m");
                return EXIT_FAIL;
        }
        return status_fetch_and_print(a.url, path, *query ? query : NULL, a.json, render_heap, &a.frames, "heap profile");
}
