/* SPDX-License-Identifier: MIT */
/*
 * Implementation of `heapwatch status` (see status.h): argument parsing and the JSON-to-table
 * rendering are pure and unit-tested; verb_status() adds the HTTP request and the output.
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
#include "http-client.h"
#include "status.h"
#include "time-util.h"

/* The daemon bounds argv to 64 entries of 1 KiB; bound the joined line anyway, since this
 * JSON may come from anything listening on the URL. */
#define COMMAND_MAX 16384

/* jansson (>= 2.11) ships json_decrefp() for exactly this. */
#define _cleanup_json_decref_ _cleanup_(json_decrefp)

enum {
        COLUMN_ID,
        COLUMN_PID,
        COLUMN_SERVICE,
        COLUMN_STATE,
        COLUMN_RSS,
        COLUMN_PY_BLOCKS,
        COLUMN_SAMPLES,
        COLUMN_AGE,
        COLUMN_LAST,
        COLUMN_COMMAND,
        _COLUMN_MAX,
};

/* Caps keep one odd value (a 128-byte service name) from pushing the command off screen. */
static const TableColumn status_columns[_COLUMN_MAX] = {
        [COLUMN_ID] = { "ID", TABLE_ALIGN_LEFT, 32 },
        [COLUMN_PID] = { "PID", TABLE_ALIGN_RIGHT, 10 },
        [COLUMN_SERVICE] = { "SERVICE", TABLE_ALIGN_LEFT, 24 },
        [COLUMN_STATE] = { "STATE", TABLE_ALIGN_LEFT, 32 },
        [COLUMN_RSS] = { "RSS", TABLE_ALIGN_RIGHT, FORMAT_BYTES_MAX },
        [COLUMN_PY_BLOCKS] = { "PY BLOCKS", TABLE_ALIGN_RIGHT, 20 },
        [COLUMN_SAMPLES] = { "SAMPLES", TABLE_ALIGN_RIGHT, 20 },
        [COLUMN_AGE] = { "AGE", TABLE_ALIGN_RIGHT, 12 },
        [COLUMN_LAST] = { "LAST", TABLE_ALIGN_RIGHT, 12 },
        [COLUMN_COMMAND] = { "COMMAND", TABLE_ALIGN_LEFT, 0, .shrink = true, .min_width = 16 },
};

const char *status_filter_to_string(StatusFilter f) {
        switch (f) {
        case STATUS_FILTER_ALL:
                return "all";
        case STATUS_FILTER_EXITED:
                return "exited";
        case STATUS_FILTER_LIVE:
        default:
                return "live";
        }
}

int status_parse_args(int argc, char *argv[], StatusArgs *ret, char *error, size_t error_size) {
        StatusArgs a = { .filter = STATUS_FILTER_LIVE };
        bool all = false, exited = false;

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                _cleanup_free_ char *q = NULL;

                if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                        *ret = (StatusArgs) { .help = true };
                        return 0;
                } else if (strcmp(arg, "--all") == 0 || strcmp(arg, "-a") == 0)
                        all = true;
                else if (strcmp(arg, "--exited") == 0)
                        exited = true;
                else if (strcmp(arg, "--json") == 0)
                        a.json = true;
                else if (strncmp(arg, "--url=", 6) == 0)
                        a.url = arg + 6;
                else if (strcmp(arg, "--url") == 0) {
                        if (i + 1 >= argc)
                                return set_error(error, error_size, "option --url requires a value");
                        a.url = argv[++i];
                } else if (arg[0] == '-')
                        return set_error(error, error_size, "unknown option '%s'", cli_printable(arg, &q));
                else
                        return set_error(error, error_size, "unexpected argument '%s'", cli_printable(arg, &q));
        }

        if (all && exited)
                return set_error(error, error_size, "--all and --exited cannot be combined");
        if (a.url && !*a.url)
                return set_error(error, error_size, "--url must not be empty");
        a.filter = all ? STATUS_FILTER_ALL : exited ? STATUS_FILTER_EXITED : STATUS_FILTER_LIVE;

        *ret = a;
        return 0;
}

/* ---- reading the JSON defensively --------------------------------------------------------- */

static const char *json_get_string(const json_t *o, const char *key) {
        const json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A non-negative count; a real that holds an integral count is accepted too. */
static bool json_get_u64(const json_t *o, const char *key, uint64_t *ret) {
        const json_t *v = json_object_get(o, key);

        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);
                if (i < 0)
                        return false;
                *ret = (uint64_t) i;
                return true;
        }
        if (json_is_real(v)) {
                double d = json_real_value(v);
                if (!isfinite(d) || d < 0 || d >= 18446744073709551616.0)
                        return false;
                *ret = (uint64_t) d;
                return true;
        }
        return false;
}

static bool json_get_time(const json_t *o, const char *key, double *ret) {
        const json_t *v = json_object_get(o, key);
        double d;

        if (!json_is_number(v))
                return false;
        d = json_number_value(v);
        if (!isfinite(d) || d <= 0)
                return false;
        *ret = d;
        return true;
}

static const char *cell_u64(char *buf, size_t size, const json_t *o, const char *key) {
        uint64_t v;

        if (!json_get_u64(o, key, &v))
                return NULL;
        snprintf(buf, size, "%" PRIu64, v);
        return buf;
}

/* Time elapsed from a timestamp to now. A timestamp a little in the future is clock skew
 * between the daemon and us (or a sample that arrived this very instant): show 0s. */
static const char *cell_elapsed(char *buf, size_t size, const json_t *o, const char *key, double now) {
        double t, d;

        if (!json_get_time(o, key, &t))
                return NULL;
        d = now - t;
        if (d < 0 && d > -2)
                d = 0;
        return format_duration(buf, size, d);
}

static int cell_state(const json_t *o, char **ret) {
        const char *state = json_get_string(o, "state"), *reason;
        char *s;

        if (!state) {
                *ret = NULL;
                return 0;
        }
        reason = json_get_string(o, "exit_reason");
        /* "connection_lost" would make STATE the widest column; "lost" says the same here. */
        if (reason && strcmp(reason, "connection_lost") == 0)
                reason = "lost";
        if (strcmp(state, "exited") == 0 && reason && *reason) {
                if (asprintf(&s, "exited (%s)", reason) < 0)
                        return -ENOMEM;
        } else {
                s = strdup(state);
                if (!s)
                        return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* argv joined with spaces, as ps(1) shows it. NULL (shown as "-") without a usable argv. */
static int cell_command(const json_t *o, char **ret) {
        const json_t *argv = json_object_get(o, "argv"), *v;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, i;
        FILE *f;

        if (!json_is_array(argv) || json_array_size(argv) == 0) {
                *ret = NULL;
                return 0;
        }

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        json_array_foreach(argv, i, v) {
                const char *s = json_is_string(v) ? json_string_value(v) : "?";

                if (i > 0)
                        fputc(' ', f);
                fputs(s, f);
                if (ftell(f) > COMMAND_MAX)
                        break;
        }
        if (fclose(f) != 0)
                return -ENOMEM;

        if (size > COMMAND_MAX) {
                /* Never leave half a UTF-8 sequence behind: sanitizing would turn it into '?'. */
                size_t n = COMMAND_MAX - 4; /* room for "...\0" inside what was written */
                while (n > 0 && ((unsigned char) buf[n] & 0xc0) == 0x80)
                        n--;
                memcpy(buf + n, "...", 4);
        }

        *ret = TAKE_PTR(buf);
        return 0;
}

static int add_process_row(Table *t, const json_t *p, double now) {
        _cleanup_free_ char *state = NULL, *command = NULL;
        char pid[32], rss[FORMAT_BYTES_MAX], blocks[32], samples[32], age[FORMAT_DURATION_MAX],
                last[FORMAT_DURATION_MAX];
        const char *cells[_COLUMN_MAX];
        uint64_t v;
        int r;

        r = cell_state(p, &state);
        if (r < 0)
                return r;
        r = cell_command(p, &command);
        if (r < 0)
                return r;

        cells[COLUMN_ID] = json_get_string(p, "id");
        /* pid 0 is no process; shown as "-" like any other value that cannot be one. */
        cells[COLUMN_PID] = NULL;
        if (json_get_u64(p, "pid", &v) && v > 0) {
                snprintf(pid, sizeof pid, "%" PRIu64, v);
                cells[COLUMN_PID] = pid;
        }
        cells[COLUMN_SERVICE] = json_get_string(p, "service");
        cells[COLUMN_STATE] = state;
        cells[COLUMN_RSS] = json_get_u64(p, "rss_bytes", &v) ? format_bytes(rss, sizeof rss, v) : NULL;
        cells[COLUMN_PY_BLOCKS] = cell_u64(blocks, sizeof blocks, p, "python_allocated_blocks");
        cells[COLUMN_SAMPLES] = cell_u64(samples, sizeof samples, p, "samples");
        cells[COLUMN_AGE] = cell_elapsed(age, sizeof age, p, "started_at", now);
        cells[COLUMN_LAST] = cell_elapsed(last, sizeof last, p, "last_sample_at", now);
        cells[COLUMN_COMMAND] = command;

        return table_add_row(t, cells);
}

int status_render(const char *body, size_t size, StatusFilter filter, double now, size_t max_width, char **ret) {
        _cleanup_json_decref_ json_t *root = NULL;
        _cleanup_table_free_ Table *t = NULL;
        const json_t *processes, *p;
        size_t i;
        char *s;
        int r;

        /* JSON_REJECT_DUPLICATES: two "rss_bytes" in one object would make the table show
         * whichever one jansson kept; better to refuse the response. */
        root = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
        if (!root)
                return -EBADMSG;
        processes = json_object_get(root, "processes");
        if (!json_is_array(processes))
                return -EBADMSG;

        r = table_new(status_columns, _COLUMN_MAX, &t);
        if (r < 0)
                return r;

        json_array_foreach(processes, i, p) {
                /* Something that is not an object is no process: skip it, keep the rest. */
                if (!json_is_object(p))
                        continue;
                r = add_process_row(t, p, now);
                if (r < 0)
                        return r;
        }

        if (table_n_rows(t) == 0) {
                const char *m;

                switch (filter) {
                case STATUS_FILTER_ALL:
                        m = "No processes are tracked.\n";
                        break;
                case STATUS_FILTER_EXITED:
                        m = "No exited processes are tracked.\n";
                        break;
                case STATUS_FILTER_LIVE:
                default:
                        m = "No live processes are tracked (--all includes exited ones).\n";
                        break;
                }
                s = strdup(m);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }

        r = table_format(t, max_width, &s);
        if (r < 0)
                return r;
        /* The daemon lists a page at a time (docs/api.md): say that there is more. */
        if (json_is_integer(json_object_get(root, "next_offset"))) {
                char *more;
                if (asprintf(&more, "%s(the first %zu shown; more at /api/v1/processes?offset=%" JSON_INTEGER_FORMAT ")\n",
                             s, json_array_size(processes), json_integer_value(json_object_get(root, "next_offset"))) < 0) {
                        free(s);
                        return -ENOMEM;
                }
                free(s);
                s = more;
        }
        *ret = s;
        return 0;
}

void status_help(void) {
        printf("Usage: %s status [--url URL] [--all|--exited] [--json]\n"
               "\n"
               "Show the Python processes heapwatchd tracks: live ones by default.\n"
               "\n"
               "Options:\n"
               "  --url URL     heapwatchd's HTTP address (default $HEAPWATCH_URL, else %s)\n"
               "  -a, --all     include processes that have exited\n"
               "  --exited      only processes that have exited\n"
               "  --json        print the daemon's JSON as it came\n"
               "  -h, --help    show this help\n",
               PROGRAM_NAME, STATUS_DEFAULT_URL);
}

/* The "error" member of an error response, if the body is a JSON object that has one. */
static char *error_message(const HttpResponse *resp) {
        _cleanup_json_decref_ json_t *root = NULL;
        const char *m;

        root = json_loadb(resp->body, resp->size, 0, NULL);
        m = json_get_string(root, "error");
        return m && *m ? strdup(m) : NULL;
}

int status_daemon_get(const char *base, const char *url, HttpResponse *resp) {
        _cleanup_free_ char *q = NULL, *m = NULL, *qm = NULL;
        char error[512];
        int r;

        r = http_get(url, 0, resp, error, sizeof error);
        if (r < 0) {
                cli_error("cannot reach heapwatchd at %s: %s", cli_printable(base, &q), error);
                return EXIT_FAIL;
        }
        if (resp->status < 200 || resp->status > 299) {
                m = error_message(resp);
                cli_error("heapwatchd at %s answered HTTP %ld: %s", cli_printable(base, &q), resp->status,
                          m ? cli_printable(m, &qm) : "(no error message)");
                return EXIT_FAIL;
        }
        return 0;
}

const char *status_daemon_url(const char *flag, const char **ret_origin) {
        const char *env;

        *ret_origin = "";
        if (flag)
                return flag;
        env = getenv("HEAPWATCH_URL");
        if (env && *env) {
                *ret_origin = " (from HEAPWATCH_URL)";
                return env;
        }
        return STATUS_DEFAULT_URL;
}

int status_fetch_and_print(const char *flag, const char *path, const char *query, bool json, status_render_fn render,
                           void *userdata, const char *noun) {
        _cleanup_free_ char *url = NULL, *text = NULL, *q = NULL;
        _cleanup_(http_response_clear) HttpResponse resp = {};
        const char *base, *origin;
        int r;

        base = status_daemon_url(flag, &origin);
        r = http_build_url(base, path, query, &url);
        if (r == -ENOMEM) {
                cli_error_errno(r, "%m");
                return EXIT_FAIL;
        }
        if (r == -ELIBACC) {
                cli_error("cannot talk HTTP: %s", http_client_load_error());
                return EXIT_FAIL;
        }
        if (r < 0) {
                cli_error("invalid URL '%s'%s: must be an http:// or https:// URL",
                          cli_printable(base, &q), origin);
                return EXIT_USAGE;
        }

        if (status_daemon_get(base, url, &resp) != 0)
                return EXIT_FAIL;

        if (json) {
                /* As it came, for jq and scripts; only make sure the last line is complete. */
                fwrite(resp.body, 1, resp.size, stdout);
                if (resp.size == 0 || resp.body[resp.size - 1] != '\n')
                        fputc('\n', stdout);
        } else {
                r = render(resp.body, resp.size, userdata, &text);
                if (r == -EBADMSG) {
                        cli_error("unexpected answer from %s: not a heapwatchd %s", cli_printable(base, &q), noun);
                        return EXIT_FAIL;
                }
                if (r < 0) {
                        cli_error_errno(r, "cannot format the %s: %m", noun);
                        return EXIT_FAIL;
                }
                fputs(text, stdout);
        }

        if (fflush(stdout) != 0 || ferror(stdout)) {
                cli_error_errno(errno ?: EIO, "cannot write to standard output: %m");
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

static int render_status(const char *body, size_t size, void *userdata, char **ret) {
        return status_render(body, size, *(const StatusFilter *) userdata, now_unix(), cli_output_columns(), ret);
}

int verb_status(int argc, char *argv[]) {
        char error[512], query[64];
        StatusArgs a;
        int r;

        r = status_parse_args(argc, argv, &a, error, sizeof error);
        if (r < 0) {
                cli_error("status: %s", error);
                fprintf(stderr, "Try '%s status --help'.\n", PROGRAM_NAME);
                return EXIT_USAGE;
        }
        if (a.help) {
                status_help();
                return EXIT_OK;
        }
        /* The largest page the daemon serves (PROCESSES_LIMIT_MAX). */
        snprintf(query, sizeof query, "state=%s&limit=1000", status_filter_to_string(a.filter));
        return status_fetch_and_print(a.url, "/api/v1/processes", query, a.json, render_status, &a.filter,
                                      "process list");
}
