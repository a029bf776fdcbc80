/* SPDX-License-Identifier: MIT */
/*
 * Implementation of `heapwatch leaks` (see leaks-view.h): parsing and rendering are pure and
 * unit-tested; verb_leaks() adds the HTTP request and the output.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli-util.h"
#include "format.h"
#include "http-client.h"
#include "leaks-view.h"
#include "status.h"

#define _cleanup_json_decref_ _cleanup_(json_decrefp)

int leaks_parse_args(int argc, char *argv[], LeaksArgs *ret, char *error, size_t error_size) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "url", required_argument, NULL, 'u' },
                { "all", no_argument, NULL, 'a' },
                { "closed", no_argument, NULL, 'c' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        LeaksArgs a = { .state = "open" };
        int c;

        opterr = 0;
        optind = 0; /* reset getopt, also for the tests that call this repeatedly */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        *ret = (LeaksArgs) { .help = true };
                        return 0;
                case 'u':
                        if (!*optarg) {
                                snprintf(error, error_size, "option --url requires a value");
                                return -EINVAL;
                        }
                        a.url = optarg;
                        break;
                case 'a':
                        a.state = "all";
                        break;
                case 'c':
                        a.state = "closed";
                        break;
                case 'j':
                        a.json = true;
                        break;
                default: {
                        _cleanup_free_ char *q = NULL;
                        if (optopt == 'u')
                                snprintf(error, error_size, "option --url requires a value");
                        else
                                snprintf(error, error_size, "unknown option '%s'", cli_printable(argv[optind - 1], &q));
                        return -EINVAL;
                }
                }
        if (optind < argc) {
                _cleanup_free_ char *q = NULL;
                snprintf(error, error_size, "unexpected argument '%s'", cli_printable(argv[optind], &q));
                return -EINVAL;
        }
        *ret = a;
        return 0;
}

/* ---- rendering ------------------------------------------------------------------------------- */

static const char *str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static double num(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A terminal-safe copy of a string from the daemon ("-" when absent), owned by *buf. */
static const char *safe(const char *s, char **buf) {
        free(*buf);
        *buf = NULL;
        if (!s)
                return "-";
        return format_sanitize(s, buf) < 0 ? "?" : *buf;
}

static const char *bytes(char buf[FORMAT_BYTES_MAX], double v) {
        return format_bytes_number(buf, FORMAT_BYTES_MAX, v);
}

static void rate_line(FILE *f, const char *label, double per_second) {
        char b[FORMAT_BYTES_MAX];

        if (isfinite(per_second))
                fprintf(f, "%s%s%s/s", label, per_second < 0 ? "-" : "", bytes(b, fabs(per_second)));
}

/* "12 %", or "0.4 %" below 10 % (time in GC is usually a fraction of a percent). */
static void percent(FILE *f, const char *label, double share) {
        if (isfinite(share))
                fprintf(f, "%s%.*f %%", label, fabs(share) < 0.1 ? 1 : 0, share * 100);
}

static void render_growth(FILE *f, json_t *l) {
        const char *unit = str(l, "unit");
        double g = num(l, "growth_per_second"), gb = num(l, "growth_bytes_per_second");
        double ttl = num(l, "seconds_to_limit"), limit = num(l, "limit_bytes"), conf = num(l, "confidence");
        char b[FORMAT_BYTES_MAX], d[FORMAT_DURATION_MAX];

        fputs("  growth    ", f);
        if (unit && strcmp(unit, "blocks") == 0 && isfinite(g))
                fprintf(f, "%.3g blocks/s", g);
        else if (isfinite(g))
                rate_line(f, "", g);
        if (isfinite(gb) && !(unit && strcmp(unit, "bytes") == 0))
                rate_line(f, ", RSS ", gb);
        if (isfinite(conf))
                fprintf(f, ", confidence %.3f", conf);
        fputc('\n', f);
        if (isfinite(ttl)) {
                _cleanup_free_ char *q = NULL;
                fprintf(f, "  limit     %s (%s) reached in %s at this rate\n", bytes(b, limit),
                        safe(str(l, "limit_source"), &q), format_duration(d, sizeof d, ttl));
        }
}

static void render_cause(FILE *f, json_t *l) {
        _cleanup_free_ char *q1 = NULL, *q2 = NULL, *q3 = NULL;
        const char *detail = str(l, "classification_detail");
        json_t *remedy = json_object_get(l, "remedy"), *r;
        size_t i;

        fprintf(f, "  cause     %s", safe(str(l, "classification"), &q1));
        if (detail)
                fprintf(f, " (%s)", safe(detail, &q2));
        fputc('\n', f);
        if (str(l, "classification_reason"))
                fprintf(f, "            %s\n", safe(str(l, "classification_reason"), &q3));
        json_array_foreach(remedy, i, r) {
                _cleanup_free_ char *q = NULL;
                if (json_is_string(r))
                        fprintf(f, "  %s - %s\n", i == 0 ? "remedy  " : "        ", safe(json_string_value(r), &q));
        }
}

static void render_evidence(FILE *f, json_t *ev) {
        json_t *mem = json_object_get(ev, "memory"), *gc = json_object_get(ev, "gc");
        json_t *alloc = json_object_get(ev, "allocator");
        json_t *m = json_object_get(alloc, "malloc"), *py = json_object_get(alloc, "pymalloc");
        json_t *gens = json_object_get(gc, "generations"), *g;
        char b1[FORMAT_BYTES_MAX], b2[FORMAT_BYTES_MAX];
        size_t i;

        if (json_is_object(mem)) {
                fprintf(f, "  memory    RSS %s, Python objects %s", bytes(b1, num(mem, "rss_bytes")),
                        bytes(b2, num(mem, "python_live_bytes")));
                percent(f, " (", num(mem, "python_share"));
                if (isfinite(num(mem, "python_share")))
                        fputc(')', f);
                fprintf(f, ", free but held by allocators %s", bytes(b1, num(mem, "free_held_bytes")));
                percent(f, " (", num(mem, "free_held_share"));
                if (isfinite(num(mem, "free_held_share")))
                        fputc(')', f);
                fputc('\n', f);
        }
        if (json_is_object(gc)) {
                fprintf(f, "  gc        %s", json_is_false(json_object_get(gc, "enabled")) ? "DISABLED" : "enabled");
                percent(f, ", disabled ", num(gc, "disabled_share"));
                if (isfinite(num(gc, "disabled_share")))
                        fputs(" of the span", f);
                percent(f, ", time in GC ", num(gc, "time_ratio"));
                if (isfinite(num(gc, "garbage")))
                        fprintf(f, ", gc.garbage %.0f (+%.0f, %.0f with finalizers)", num(gc, "garbage"),
                                isfinite(num(gc, "garbage_added")) ? num(gc, "garbage_added") : 0,
                                isfinite(num(gc, "garbage_with_finalizers")) ? num(gc, "garbage_with_finalizers") : 0);
                if (num(gc, "threshold_changes") > 0)
                        fprintf(f, ", thresholds changed %.0f times", num(gc, "threshold_changes"));
                if (num(gc, "collected_with_finalizers") > 0)
                        fprintf(f, ", %.0f collected objects had finalizers", num(gc, "collected_with_finalizers"));
                fputc('\n', f);
                json_array_foreach(gens, i, g)
                        if (isfinite(num(g, "collections")))
                                fprintf(f, "            generation %zu: %.0f collection%s, %.3g collected each\n", i,
                                        num(g, "collections"), num(g, "collections") == 1 ? "" : "s", isfinite(num(g, "collected_per_collection")) ? num(g, "collected_per_collection") : 0);
        }
        if (json_is_object(m))
                fprintf(f, "  malloc    in use %s, free %s, mmapped %s\n", bytes(b1, num(m, "in_use_bytes")),
                        bytes(b2, num(m, "free_bytes")), bytes((char[FORMAT_BYTES_MAX]) {}, num(m, "mmapped_bytes")));
        if (json_is_object(py))
                fprintf(f, "  pymalloc  %.0f arenas (%s), %.0f blocks\n", num(py, "arenas_in_use"),
                        bytes(b1, num(py, "arena_bytes")), num(py, "blocks"));
}

/* Suspects (allocation sites), and the census's types and chains when present. */
static void render_suspects(FILE *f, json_t *l, json_t *ev) {
        json_t *sites = json_object_get(l, "suspects"), *types = json_object_get(ev, "types");
        json_t *chains = json_object_get(ev, "chains"), *x;
        char b[FORMAT_BYTES_MAX];
        size_t i;

        json_array_foreach(sites, i, x) {
                _cleanup_free_ char *q1 = NULL, *q2 = NULL;
                fprintf(f, "  %s %s:%.0f in %s, +%s (%.0f %%)\n", i == 0 ? "sites   " : "        ",
                        safe(str(x, "file"), &q1), num(x, "line"), safe(str(x, "function"), &q2),
                        bytes(b, num(x, "growth_bytes")), isfinite(num(x, "share")) ? num(x, "share") * 100 : 0);
        }
        json_array_foreach(types, i, x) {
                _cleanup_free_ char *q = NULL;
                const char *name = str(x, "type") ? str(x, "type") : str(x, "name");
                double growth = isfinite(num(x, "count_growth")) ? num(x, "count_growth") : num(x, "growth");

                fprintf(f, "  %s %s", i == 0 ? "types   " : "        ", safe(name, &q));
                if (isfinite(growth))
                        fprintf(f, " +%.0f", growth);
                if (isfinite(num(x, "count")))
                        fprintf(f, " (%.0f now)", num(x, "count"));
                fputc('\n', f);
        }
        json_array_foreach(chains, i, x) {
                _cleanup_free_ char *q = NULL, *q2 = NULL, *dump = NULL;
                const char *text = json_is_string(x) ? json_string_value(x) : str(x, "chain") ? str(x, "chain") : str(x, "text");
                if (!text)
                        text = dump = json_dumps(x, JSON_COMPACT);
                fprintf(f, "  %s %s", i == 0 ? "chains  " : "        ", safe(text, &q));
                /* a holder: how many of the type it holds, and its growth */
                if (isfinite(num(x, "holds"))) {
                        fprintf(f, " (holds %.0f %s", num(x, "holds"), str(x, "type") ? safe(str(x, "type"), &q2) : "");
                        if (isfinite(num(x, "holds_growth")))
                                fprintf(f, ", +%.0f", num(x, "holds_growth"));
                        if (isfinite(num(x, "share_of_growth")))
                                fprintf(f, ", %.0f %% of the type's growth", num(x, "share_of_growth") * 100);
                        fputc(')', f);
                }
                fputc('\n', f);
        }
}

static void render_finding(FILE *f, json_t *l, double now) {
        _cleanup_free_ char *q1 = NULL, *q2 = NULL, *q3 = NULL, *q4 = NULL;
        double since = num(l, "since");
        char d[FORMAT_DURATION_MAX];

        fprintf(f, "%s %s: %s (service %s, pid %.0f) - %s grows", safe(str(l, "verdict"), &q1),
                safe(str(l, "state"), &q4), safe(str(l, "process_id"), &q2), safe(str(l, "service"), &q3),
                num(l, "pid"), str(l, "signal") && strcmp(str(l, "signal"), "rss_bytes") == 0 ? "RSS" : "the Python heap");
        if (isfinite(since) && now > since)
                fprintf(f, " since %s ago", format_duration(d, sizeof d, now - since));
        fputc('\n', f);
        render_growth(f, l);
        render_cause(f, l);
        render_evidence(f, json_object_get(l, "evidence"));
        render_suspects(f, l, json_object_get(l, "evidence"));
}

int leaks_render(const char *body, size_t size, double now, char **ret) {
        _cleanup_json_decref_ json_t *root = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, i;
        FILE *f;
        json_t *list, *l;

        root = json_loadb(body, size, 0, NULL);
        list = json_object_get(root, "leaks");
        if (!json_is_array(list))
                return -EBADMSG;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        if (json_array_size(list) == 0)
                fputs("No leak findings.\n", f);
        json_array_foreach(list, i, l) {
                if (!json_is_object(l))
                        continue;
                if (i > 0)
                        fputc('\n', f);
                render_finding(f, l, now);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

void leaks_help(void) {
        printf("Usage: %s leaks [--url URL] [--all | --closed] [--json]\n"
               "\n"
               "Show heapwatchd's leak findings, most urgent first: what grows and how fast, when\n"
               "the memory limit is reached, the cause (Python objects retained, uncollectable\n"
               "cycles, native memory, fragmentation, or unknown) with the evidence and a remedy,\n"
               "and the suspects.\n"
               "\n"
               "Options:\n"
               "  --url URL   heapwatchd's HTTP address (default $HEAPWATCH_URL, else %s)\n"
               "  --all       closed findings too (default: open ones)\n"
               "  --closed    closed findings only\n"
               "  --json      print the daemon's JSON as it came\n"
               "  -h, --help  show this help\n",
               PROGRAM_NAME, STATUS_DEFAULT_URL);
}

static int render_leaks(const char *body, size_t size, void *userdata, char **ret) {
        (void) userdata;
        return leaks_render(body, size, (double) time(NULL), ret);
}

int verb_leaks(int argc, char *argv[]) {
        char error[512], query[32];
        LeaksArgs a;
        int r;

        r = leaks_parse_args(argc, argv, &a, error, sizeof error);
        if (r < 0) {
                cli_error("leaks: %s", error);
                fprintf(stderr, "Try '%s leaks --help'.\n", PROGRAM_NAME);
                return EXIT_USAGE;
        }
        if (a.help) {
                leaks_help();
                return EXIT_OK;
        }
        snprintf(query, sizeof query, "state=%s", a.state);
        return status_fetch_and_print(a.url, "/api/v1/leaks", query, a.json, render_leaks, NULL, "leak list");
}
