/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for `heapwatch analyze` (cli/analyze.c): parsing of each input format, good and
 * hostile (garbage, NUL bytes, missing columns, NaN, decreasing or duplicate time, empty input,
 * huge numbers, oversized input), the option parser, and whole analyses of generated series
 * (a leak under sawtooth and noise, a flat one) both through the library and through the built
 * binary, whose exit status is part of the contract: 0 none, 3 leak, 4 suspect, 1 I/O, 2 input.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "analyze.h"
#include "json-util.h"
#include "macro.h"

#ifndef HEAPWATCH_BINARY
#error "HEAPWATCH_BINARY must point at the built heapwatch"
#endif

#define ARGC(a) ((int) ELEMENTSOF(a) - 1)
#define MiB (1024.0 * 1024.0)

/* ---- helpers ------------------------------------------------------------------------------ */

static void parse_ok(const char *text, AnalyzeInput *in) {
        char error[512] = "";
        int r = analyze_parse(text, strlen(text), in, error, sizeof error);

        ck_assert_msg(r == 0, "parse failed (%d): %s", r, error);
        ck_assert_uint_ge(in->n_series, 1);
}

/* Parsing fails with -EINVAL (or `expect`) and a message that contains `needle`. */
static void parse_bad_n(const char *text, size_t size, int expect, const char *needle) {
        AnalyzeInput in = {};
        char error[512] = "";
        int r = analyze_parse(text, size, &in, error, sizeof error);

        ck_assert_msg(r == expect, "expected %d, got %d for input \"%.40s\" (%s)", expect, r, text, error);
        ck_assert_msg(strstr(error, needle), "error \"%s\" does not mention \"%s\"", error, needle);
        ck_assert_ptr_null(in.series);
}

static void parse_bad(const char *text, const char *needle) {
        parse_bad_n(text, strlen(text), -EINVAL, needle);
}

/* xorshift64*: the tests' series are the same on every run and machine. */
static uint64_t rng_state;
static double rng_uniform(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (double) ((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}
static double rng_gauss(void) {
        double u = rng_uniform(), v = rng_uniform();
        return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* 24 h at 10 s: 500 MiB, a GC sawtooth of 20 % with a 5-minute period, 0.5 % noise, and a leak
 * of `leak_per_hour` (a share of the starting heap per hour). */
static DetectPoint *generate(double leak_per_hour, size_t *ret_n) {
        const double heap = 500 * MiB, t0 = 1764000000.0, step = 10;
        size_t n = 24 * 3600 / 10;
        DetectPoint *p = calloc(n, sizeof *p);

        ck_assert_ptr_nonnull(p);
        rng_state = 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i < n; i++) {
                double t = (double) i * step, saw = fmod(t, 300.0) / 300.0;

                p[i].t = t0 + t;
                p[i].v = heap * (1 + leak_per_hour * t / 3600 + 0.2 * saw + 0.005 * rng_gauss());
        }
        *ret_n = n;
        return p;
}

static char *to_csv(const DetectPoint *p, size_t n) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        fputs("timestamp,bytes\n", f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%.3f,%.0f\n", p[i].t, p[i].v);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

/* ---- CSV ---------------------------------------------------------------------------------- */

START_TEST(test_csv_good) {
        _cleanup_(analyze_input_clear) AnalyzeInput in = {};

        parse_ok("\xef\xbb\xbf# recorded by hand\r\n"
                 "timestamp , bytes\r\n"
                 "\r\n"
                 "1764061234.5, 31457280\r\n"
                 "  1764061244.5 ,31459000.5  \n"
                 "# a comment between points\n"
                 "\t1764061254.5,\t0\n"
                 "1764061264.5,1.8e19", &in);
        ck_assert_int_eq(in.format, ANALYZE_FORMAT_CSV);
        ck_assert_uint_eq(in.n_series, 1);
        ck_assert_ptr_null(in.series[0].label);
        ck_assert_uint_eq(in.series[0].n, 4);
        ck_assert_double_eq(in.series[0].points[0].t, 1764061234.5);
        ck_assert_double_eq(in.series[0].points[0].v, 31457280);
        ck_assert_double_eq(in.series[0].points[1].v, 31459000.5);
        ck_assert_double_eq(in.series[0].points[2].v, 0);
        ck_assert_double_eq(in.series[0].points[3].v, 1.8e19);
}
END_TEST

START_TEST(test_csv_relative_time_no_header) {
        _cleanup_(analyze_input_clear) AnalyzeInput in = {};

        parse_ok("0,100\n10,101\n20,102\n", &in);
        ck_assert_uint_eq(in.series[0].n, 3);
        ck_assert_double_eq(in.series[0].points[2].t, 20);
}
END_TEST

START_TEST(test_csv_bad) {
        /* garbage */
        parse_bad("hello world\n", "line 1: expected two columns");
        parse_bad("GIF89a\x01\x02\x03", "line 1: expected two columns");
        parse_bad_n("1,2\n3,\0\n", 8, -EINVAL, "line 2: NUL byte");
        parse_bad("a,b\nc,d\n", "line 2: timestamp 'c' is not a number");
        parse_bad("1,2\n0x10,20\n", "line 2: timestamp '0x10' is not a number");
        parse_bad("t,b\n1,2\ntimestamp,bytes\n", "line 3: timestamp 'timestamp' is not a number");
        parse_bad("1,2\n3,4 5\n", "line 2: bytes value '4 5' is not a number");
        parse_bad("1,2\n3,\x1b[31mred\n", "line 2: bytes value '?[31mred' is not a number");
        /* missing and extra columns */
        parse_bad("1764061234\n", "line 1: expected two columns, timestamp,bytes; found one");
        parse_bad("1,2\n3,4,5\n", "line 2: expected two columns, timestamp,bytes; found more");
        parse_bad("1,2\n3,\n", "line 2: bytes value is missing");
        parse_bad("1,2\n,4\n", "line 2: timestamp is missing");
        /* non-finite */
        parse_bad("1,2\n2,NaN\n", "line 2: bytes value 'NaN' is not a finite number");
        parse_bad("1,2\n2,-inf\n", "line 2: bytes value '-inf' is not a finite number");
        parse_bad("1,2\ninfinity,3\n", "line 2: timestamp 'infinity' is not a finite number");
        /* time must move forward */
        parse_bad("# c\n10,1\n20,2\n15,3\n", "line 4: timestamp 15 is not after the previous one (20)");
        parse_bad("10,1\n10,2\n", "line 2: timestamp 10 is not after the previous one (10)");
        /* empty */
        parse_bad("", "empty input");
        parse_bad("\n\n  \n# only comments\n", "no data points");
        parse_bad("timestamp,bytes\n", "no data points after the header");
        /* a first row that starts like a number is a broken row, not a header to skip */
        parse_bad("1700000000O,100\n1700000060,200\n", "line 1: timestamp '1700000000O' is not a number");
        parse_bad("0x10,1\n20,2\n", "line 1: timestamp '0x10' is not a number");
        /* huge numbers */
        parse_bad("1,1e30\n", "line 1: value 1e+30 is out of range (more than 2^64)");
        parse_bad("1,1e400\n", "line 1: bytes value '1e400' is not a finite number");
        parse_bad("1,99999999999999999999999\n", "out of range (more than 2^64)");
        parse_bad("1764061234000,5\n", "line 1: timestamp 1.76406e+12 is out of range");
        parse_bad("1,-5\n", "line 1: value -5 is negative");
        parse_bad("1,12345678901234567890123456789012345678901234567890123456789012345678\n",
                  "line 1: bytes value '12345678901234567890123456789...' is not a number");
}
END_TEST

START_TEST(test_too_large) {
        /* calloc'd pages stay untouched: the size check comes before any byte is read. */
        _cleanup_free_ char *big = calloc(ANALYZE_CSV_MAX + 1, 1), *json = calloc(ANALYZE_JSON_MAX + 1, 1);

        ck_assert_ptr_nonnull(big);
        ck_assert_ptr_nonnull(json);
        parse_bad_n(big, ANALYZE_CSV_MAX + 1, -E2BIG, "input larger than 256 MiB");
        json[0] = '{';
        parse_bad_n(json, ANALYZE_JSON_MAX + 1, -E2BIG, "JSON input larger than 64 MiB");
}
END_TEST

/* ---- heapwatch series JSON ---------------------------------------------------------------- */

START_TEST(test_series_json) {
        _cleanup_(analyze_input_clear) AnalyzeInput in = {}, bare = {}, blocks = {};

        parse_ok("{\"id\": \"4242-1234567\", \"metric\": \"rss_bytes\", \"from\": 1764057700.0, \"to\": 1764061300.0,\n"
                 " \"step\": null, \"points\": [[1764061234.9, 31457280], [1764061235.9, 31459000],"
                 " [1764061236.9, 18446744073709551615]]}", &in);
        ck_assert_int_eq(in.format, ANALYZE_FORMAT_SERIES_JSON);
        ck_assert_str_eq(in.series[0].label, "4242-1234567 rss_bytes");
        ck_assert_uint_eq(in.series[0].n, 3);
        ck_assert_double_eq(in.series[0].points[1].t, 1764061235.9);
        ck_assert_double_eq(in.series[0].points[1].v, 31459000);
        ck_assert_double_eq(in.series[0].points[2].v, 18446744073709551615.0);
        ck_assert(!in.series[0].live_count);

        /* The Python heap's blocks are live objects, not a high-water mark. */
        parse_ok("{\"id\": \"4242-1234567\", \"metric\": \"python_allocated_blocks\", \"points\": [[0, 5], [1, 6]]}",
                 &blocks);
        ck_assert(blocks.series[0].live_count);

        parse_ok("  [[0, 1], [1, 2]]", &bare);
        ck_assert_int_eq(bare.format, ANALYZE_FORMAT_SERIES_JSON);
        ck_assert_ptr_null(bare.series[0].label);
        ck_assert_uint_eq(bare.series[0].n, 2);
}
END_TEST

START_TEST(test_series_json_bad) {
        parse_bad("{\"points\": [[1, 2], [2, null]]}", "points[1]: value is null");
        parse_bad("{\"points\": [[1, 2], [2, 3, 4]]}", "points[1]: expected [timestamp, value]");
        parse_bad("{\"points\": [[1, 2], 7]}", "points[1]: expected [timestamp, value]");
        parse_bad("{\"points\": {}}", "points: expected an array");
        parse_bad("{\"points\": []}", "points: no data points");
        parse_bad("{\"points\": [[2, 1], [1, 2]]}", "points[1]: timestamp 1 is not after the previous one (2)");
        parse_bad("{\"points\": [[1, -2]]}", "points[0]: value -2 is negative");
        parse_bad("{\"points\": [[1, 1e300]]}", "points[0]: value 1e+300 is out of range");
        parse_bad("{\"points\": [[\"x\", 1]]}", "points[0]: timestamp is not a number");
        parse_bad("{\"points\": [[1, 1e999]]}", "JSON error at line 1");
        parse_bad("{\"points\": [[1, 2]]", "JSON error at line 1");
        parse_bad("{\"points\": [[1, 2]], \"points\": [[3, 4]]}", "JSON error");
        parse_bad("{\"hello\": 1}", "neither a heapwatch series");
        parse_bad("[1, 2]", "points[0]: expected [timestamp, value]");
        parse_bad("[]", "points: no data points");
}
END_TEST

/* ---- Prometheus --------------------------------------------------------------------------- */

START_TEST(test_prometheus) {
        _cleanup_(analyze_input_clear) AnalyzeInput in = {};

        parse_ok("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                 "{\"metric\":{\"__name__\":\"heapwatch_process_resident_memory_bytes\",\"service\":\"billing\","
                 "\"id\":\"42-1\",\"note\":\"a \\\"quoted\\\" \\\\ value\"},"
                 "\"values\":[[1764061200,\"31457280\"],[1764061215.5,\"31460000\"]]},"
                 "{\"metric\":{},\"values\":[[1764061200,\"1e6\"]]}"
                 "]}}", &in);
        ck_assert_int_eq(in.format, ANALYZE_FORMAT_PROMETHEUS);
        ck_assert_uint_eq(in.n_series, 2);
        ck_assert_str_eq(in.series[0].label,
                         "heapwatch_process_resident_memory_bytes{service=\"billing\", id=\"42-1\", "
                         "note=\"a \\\"quoted\\\" \\\\ value\"}");
        ck_assert_uint_eq(in.series[0].n, 2);
        ck_assert_double_eq(in.series[0].points[1].t, 1764061215.5);
        ck_assert_double_eq(in.series[0].points[1].v, 31460000);
        ck_assert_str_eq(in.series[1].label, "{}");
        ck_assert_double_eq(in.series[1].points[0].v, 1e6);
}
END_TEST

START_TEST(test_prometheus_bad) {
        parse_bad("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}",
                  "failed query (status \"error\"): parse error");
        /* the server's message reaches the terminal only made safe: no title change, no clear */
        {
                const char *hostile = "{\"status\":\"error\",\"error\":\"\\u001b]0;PWNED\\u0007\\u001b[2Jx\"}";
                AnalyzeInput in = {};
                char error[512] = "";

                ck_assert_int_eq(analyze_parse(hostile, strlen(hostile), &in, error, sizeof error), -EINVAL);
                ck_assert_msg(strstr(error, "?]0;PWNED??[2Jx"), "%s", error);
                for (const char *c = error; *c; c++)
                        ck_assert_msg((unsigned char) *c >= 0x20, "a control character in \"%s\"", error);
        }
        /* jansson quotes the offending byte in its own message */
        {
                const char *esc = "[1, \033]";
                AnalyzeInput in = {};
                char error[512] = "";

                ck_assert_int_eq(analyze_parse(esc, strlen(esc), &in, error, sizeof error), -EINVAL);
                for (const char *c = error; *c; c++)
                        ck_assert_msg((unsigned char) *c >= 0x20, "a control character in \"%s\"", error);
        }
        parse_bad("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
                  "data.resultType is \"vector\", not \"matrix\"");
        parse_bad("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
                  "data.result: no series");
        parse_bad("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                  "{\"metric\":{},\"values\":[[1,\"2\"]]},"
                  "{\"metric\":{},\"values\":[[1,\"2\"],[2,\"NaN\"]]}]}}",
                  "data.result[1].values[1]: value \"NaN\" is not a finite number");
        parse_bad("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                  "{\"metric\":{},\"values\":[[1,\"+Inf\"]]}]}}",
                  "data.result[0].values[0]: value \"+Inf\" is not a finite number");
        parse_bad("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                  "{\"metric\":{},\"values\":[[1,\"12MB\"]]}]}}",
                  "data.result[0].values[0]: value \"12MB\" is not a number");
        parse_bad("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                  "{\"metric\":{},\"histograms\":[]}]}}",
                  "data.result[0]: no \"values\" (native histograms cannot be analyzed)");
        parse_bad("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[3]}}",
                  "data.result[0]: expected an object");
        parse_bad("{\"status\":\"success\",\"data\":7}", "data: expected an object");
}
END_TEST

/* ---- options ------------------------------------------------------------------------------ */

START_TEST(test_args) {
        char *defaults[] = { "analyze", "rss.csv", NULL };
        char *all[] = { "analyze", "--window=90s", "--min-horizon", "30m", "--max-horizon", "2d",
                        "--min-growth-per-hour", "0.5%", "--min-bytes-per-hour=1M", "--limit", "4GiB",
                        "--json", "--trace", "--no-high-water", "-", NULL };
        char *dash[] = { "analyze", "--", "-rss.csv", NULL };
        char *help[] = { "analyze", "--bogus", "--help", NULL };
        DetectConfig c;
        AnalyzeArgs a;
        char error[256];

        detect_config_default(&c);
        ck_assert_int_eq(analyze_parse_args(ARGC(defaults), defaults, &a, error, sizeof error), 0);
        ck_assert_str_eq(a.file, "rss.csv");
        ck_assert(!a.json && !a.help && !a.trace);
        ck_assert(a.config.high_water); /* RSS-like unless told */
        ck_assert_double_eq(a.limit, 0);
        ck_assert_double_eq(a.config.window_seconds, c.window_seconds);
        ck_assert_double_eq(a.config.max_horizon_seconds, c.max_horizon_seconds);

        ck_assert_msg(analyze_parse_args(ARGC(all), all, &a, error, sizeof error) == 0, "%s", error);
        ck_assert_str_eq(a.file, "-");
        ck_assert(a.json);
        ck_assert_double_eq(a.config.window_seconds, 90);
        ck_assert_double_eq(a.config.min_horizon_seconds, 1800);
        ck_assert_double_eq(a.config.max_horizon_seconds, 2 * 86400);
        ck_assert_double_eq_tol(a.config.min_growth_relative_per_hour, 0.005, 1e-15);
        ck_assert_double_eq(a.config.min_growth_absolute_per_hour, 1048576);
        ck_assert_double_eq(a.limit, 4294967296.0);
        ck_assert(!a.config.high_water);

        ck_assert_int_eq(analyze_parse_args(ARGC(dash), dash, &a, error, sizeof error), 0);
        ck_assert_str_eq(a.file, "-rss.csv");

        /* --help wins, as in the other subcommands' parsers, only when reached first */
        ck_assert_int_eq(analyze_parse_args(ARGC(help), help, &a, error, sizeof error), -EINVAL);
        ck_assert_str_eq(error, "unknown option '--bogus'");
}
END_TEST

static void args_bad(const char *needle, char *a1, char *a2, char *a3) {
        char *argv[] = { "analyze", a1, a2, a3, NULL };
        int argc = 1 + !!a1 + !!a2 + !!a3;
        AnalyzeArgs a;
        char error[256] = "";

        ck_assert_int_eq(analyze_parse_args(argc, argv, &a, error, sizeof error), -EINVAL);
        ck_assert_msg(strstr(error, needle), "error \"%s\" does not mention \"%s\"", error, needle);
}

START_TEST(test_args_bad) {
        args_bad("missing FILE", NULL, NULL, NULL);
        args_bad("missing FILE", "--json", NULL, NULL);
        args_bad("one FILE only", "a.csv", "b.csv", NULL);
        args_bad("option --window requires a value", "a.csv", "--window", NULL);
        args_bad("invalid value '0' for --window", "--window", "0", "a.csv");
        args_bad("invalid value '-5m' for --min-horizon", "--min-horizon=-5m", "a.csv", NULL);
        args_bad("invalid value '5x' for --max-horizon", "--max-horizon=5x", "a.csv", NULL);
        args_bad("invalid value 'lots' for --limit", "--limit", "lots", "a.csv");
        args_bad("--limit must be more than 0 bytes", "--limit=0", "a.csv", NULL);
        args_bad("invalid value 'nan' for --min-growth-per-hour", "--min-growth-per-hour=nan", "a.csv", NULL);
        args_bad("invalid detector settings", "--min-horizon=2d", "--max-horizon=1h", "a.csv");
        args_bad("unknown option '--windowx=5'", "--windowx=5", "a.csv", NULL);
        args_bad("FILE must not be empty", "", NULL, NULL);
}
END_TEST

/* ---- analysis ----------------------------------------------------------------------------- */

static void analyze_points(const DetectPoint *p, size_t n, double limit, AnalyzeReport *ret) {
        DetectConfig c;

        detect_config_default(&c);
        ck_assert_int_eq(analyze_series(&c, p, n, limit, NULL, NULL, ret), 0);
}

START_TEST(test_analyze_leak) {
        _cleanup_free_ DetectPoint *p = NULL;
        _cleanup_free_ char *text = NULL, *json = NULL;
        AnalyzeInput in = {};
        AnalyzeSeries s;
        AnalyzeReport a;
        size_t n;
        DetectConfig c;

        p = generate(0.05, &n); /* 5 % of the heap per hour */
        analyze_points(p, n, 4096 * MiB, &a);
        ck_assert_int_eq(a.verdict, VERDICT_LEAK);
        ck_assert_int_eq(analyze_exit_status(a.verdict), 3);
        ck_assert(a.evaluated);
        ck_assert_uint_eq(a.n, n);
        /* found within three hours of the start (the 5-min sawtooth of 20 % is longer than the
         * 60-s window, so the floor keeps most of it: a 30-min horizon cannot see 2.5 % of
         * growth under it and the 1-h one waits for 2 h of confirmation, docs/detection.md),
         * growth within 20 % of 25 MiB/h */
        ck_assert(isfinite(a.first_leak));
        ck_assert(isfinite(a.first_suspect));
        ck_assert_double_le(a.first_suspect, a.first_leak);
        ck_assert_double_le(a.first_leak - a.start, 3 * 3600);
        ck_assert_double_ge(a.last.slope * 3600, 0.8 * 25 * MiB);
        ck_assert_double_le(a.last.slope * 3600, 1.2 * 25 * MiB);
        ck_assert_double_le(a.last.slope_low, a.last.slope);
        ck_assert_double_ge(a.last.slope_high, a.last.slope);
        ck_assert_double_lt(a.last.p_value, 0.01);
        /* the floor ends near 500 MiB * (1 + 0.05 * 24) = 1100 MiB: 4 GiB is ~5 days away */
        ck_assert_int_eq(a.limit_r, 0);
        ck_assert_double_gt(a.eta, 3 * 86400);
        ck_assert_double_lt(a.eta, 8 * 86400);
        ck_assert_double_le(a.eta_earliest, a.eta);
        ck_assert_double_ge(a.eta_latest, a.eta);

        s = (AnalyzeSeries) { .points = p, .n = n };
        in = (AnalyzeInput) { .format = ANALYZE_FORMAT_CSV, .series = &s, .n_series = 1 };
        ck_assert_int_eq(analyze_render_text(&in, &a, "leak.csv", &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "leak.csv: 8640 points from 2025-11-24 16:00:00 UTC"));
        ck_assert_ptr_nonnull(strstr(text, "\n  Verdict:        leak since "));
        ck_assert_ptr_nonnull(strstr(text, "\n  Time to limit:  "));

        detect_config_default(&c);
        ck_assert_int_eq(analyze_render_json(&in, &a, &c, "leak.csv", &json), 0);
        {
                _cleanup_json_ json_t *root = json_loads(json, 0, NULL);
                json_t *s0;

                ck_assert_ptr_nonnull(root);
                ck_assert_str_eq(json_string_value(json_object_get(root, "verdict")), "leak");
                ck_assert_str_eq(json_string_value(json_object_get(root, "format")), "csv");
                s0 = json_array_get(json_object_get(root, "series"), 0);
                ck_assert_ptr_nonnull(s0);
                ck_assert(json_is_real(json_object_get(s0, "leak_delay_seconds")));
                ck_assert(json_is_real(json_object_get(s0, "time_to_limit_seconds")));
                ck_assert(json_is_object(json_object_get(s0, "last_evaluation")));
                ck_assert(json_is_real(json_object_get(json_object_get(s0, "last_evaluation"), "confidence")));
        }
}
END_TEST

START_TEST(test_analyze_flat) {
        _cleanup_free_ DetectPoint *p = NULL;
        AnalyzeReport a;
        size_t n;

        p = generate(0, &n);
        analyze_points(p, n, 4096 * MiB, &a);
        ck_assert_int_eq(a.verdict, VERDICT_NONE);
        ck_assert_int_eq(analyze_exit_status(a.verdict), 0);
        ck_assert(isnan(a.first_leak));
        ck_assert(a.evaluated);
}
END_TEST

START_TEST(test_analyze_too_short) {
        static const DetectPoint p[] = { { 0, 100 }, { 1, 100 } };
        _cleanup_free_ char *text = NULL;
        AnalyzeSeries s = { .points = (DetectPoint *) p, .n = 2 };
        AnalyzeInput in = { .series = &s, .n_series = 1 };
        AnalyzeReport a;

        analyze_points(p, 2, 0, &a);
        ck_assert_int_eq(a.verdict, VERDICT_NONE);
        ck_assert(isnan(a.first_suspect));
        ck_assert_int_eq(analyze_render_text(&in, &a, "short.csv", &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "short.csv: 2 points from t=0s to t=1s (1s)\n"));
        ck_assert_ptr_nonnull(strstr(text, "Verdict:        none"));
}
END_TEST

/* ---- the binary --------------------------------------------------------------------------- */

/* Run heapwatch analyze ARGS with `input` on stdin; returns the exit status, output in *out. */
/* --trace: the detector hands every evaluation's horizons to the tracer, shortest first, each
 * with a verdict and a reason; on a leak the last evaluation has a horizon at "leak". */
typedef struct TraceCount {
        unsigned calls;
        LeakVerdict last_best;
        size_t last_n;
} TraceCount;

static void count_trace(void *userdata, double now, double current, const DetectHorizonTrace *h, size_t n) {
        TraceCount *t = userdata;
        LeakVerdict best = VERDICT_NONE;

        ck_assert(isfinite(now));
        ck_assert_double_gt(current, 0);
        t->calls++;
        if (n == 0) { /* the history is still shorter than the shortest horizon */
                ck_assert_uint_eq(t->last_n, 0);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                ck_assert_ptr_nonnull(h[i].reason);
                if (i > 0)
                        ck_assert_double_gt(h[i].horizon, h[i - 1].horizon);
                if (h[i].verdict > best)
                        best = h[i].verdict;
        }
        t->last_best = best;
        t->last_n = n;
}

START_TEST(test_analyze_trace) {
        _cleanup_free_ DetectPoint *p = NULL;
        _cleanup_free_ char *line = NULL;
        TraceCount t = { 0 };
        DetectConfig c;
        AnalyzeReport a;
        size_t n, size = 0;
        FILE *f;
        DetectHorizonTrace h[3] = {
                { .horizon = 1800, .points = 30, .verdict = VERDICT_NONE, .reason = "no significant trend",
                  .p_value = 0.25, .p_self = 0.5, .slope = 1000.0 / 3600, .slope_low = -1000.0 / 3600, .slope_high = 3000.0 / 3600,
                  .older_slope = 2000.0 / 3600, .newer_slope = 0 },
                { .horizon = 3600, .points = 0, .verdict = VERDICT_NONE, .reason = "not enough data" },
                { .horizon = 5100, .points = 85, .group = 2, .verdict = VERDICT_NONE, .reason = "levelling off",
                  .p_value = 1e-6, .p_self = 1e-5, .slope = 2000.0 / 3600, .slope_low = 1000.0 / 3600,
                  .slope_high = 3000.0 / 3600, .older_slope = 3000.0 / 3600, .newer_slope = 1000.0 / 3600,
                  .line_fitted = true, .line_f = 31.25, .line_slope = 500.0 / 3600 },
        };

        p = generate(0.05, &n);
        detect_config_default(&c);
        ck_assert_int_eq(analyze_series(&c, p, n, 0, count_trace, &t, &a), 0);
        ck_assert_uint_eq(t.calls, a.evaluations);
        ck_assert_uint_gt(t.calls, 100);
        ck_assert_int_eq(t.last_best, VERDICT_LEAK);

        /* One line: time since start, the floor, then per horizon; growth in % of the floor per
         * hour (1000 units/h of a floor of 100 000 = +1.00 %/h); no figures without points; a horizon
         * on grouped windows how many make a point; one that bends also its "rise plus a line" F
         * (3 significant digits) and the line's growth. */
        f = open_memstream(&line, &size);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(analyze_trace_line(f, "rss{pod=\"a\"}", 1000, 1000 + 5400, 100000, h, 3), 0);
        fclose(f);
        ck_assert_str_eq(line, "trace rss{pod=\"a\"} +1.50h floor 100000: | 30m none p 2.5e-01 (own 5.0e-01) +1.00%/h [-1.00, +3.00] "
                               "halves +2.00/+0.00 (no significant trend) | 60m none (not enough data) | 85m none p 1.0e-06 "
                               "(own 1.0e-05) +2.00%/h [+1.00, +3.00] halves +3.00/+1.00 on minima of 2 windows rise+line F 31.2 "
                               "line +0.50%/h "
                               "(levelling off)\n");
}
END_TEST

static int run_binary(const char *input, char **out, char *const args[]) {
        char *argv[16] = { HEAPWATCH_BINARY, "analyze" };
        int in_pipe[2], out_pipe[2], status;
        size_t k = 2, size = 0;
        FILE *f;
        pid_t pid;
        char buf[4096];
        ssize_t n;

        for (size_t i = 0; args[i] && k < ELEMENTSOF(argv) - 1; i++)
                argv[k++] = args[i];
        argv[k] = NULL;

        ck_assert_int_eq(pipe2(in_pipe, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(out_pipe, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                dup2(in_pipe[0], STDIN_FILENO);
                dup2(out_pipe[1], STDOUT_FILENO);
                dup2(out_pipe[1], STDERR_FILENO);
                execv(argv[0], argv);
                _exit(127);
        }
        close(in_pipe[0]);
        close(out_pipe[1]);
        /* The input fits the pipe buffer for small inputs; larger ones are files. */
        if (input)
                ck_assert_int_eq(write(in_pipe[1], input, strlen(input)), (ssize_t) strlen(input));
        close(in_pipe[1]);

        f = open_memstream(out, &size);
        ck_assert_ptr_nonnull(f);
        while ((n = read(out_pipe[0], buf, sizeof buf)) > 0)
                fwrite(buf, 1, (size_t) n, f);
        fclose(f);
        close(out_pipe[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_binary_exit_status) {
        char dir[] = "/tmp/test-cli-analyze-XXXXXX", leak[64], flat[64];
        _cleanup_free_ DetectPoint *pl = NULL, *pf = NULL;
        _cleanup_free_ char *csv_leak = NULL, *csv_flat = NULL;
        size_t n;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(leak, sizeof leak, "%s/leak.csv", dir);
        snprintf(flat, sizeof flat, "%s/flat.csv", dir);
        pl = generate(0.05, &n);
        csv_leak = to_csv(pl, n);
        pf = generate(0, &n);
        csv_flat = to_csv(pf, n);
        write_file(leak, csv_leak);
        write_file(flat, csv_flat);

        {
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { leak, "--limit", "4G", NULL }), 3);
                ck_assert_msg(strstr(out, "Verdict:        leak since"), "%s", out);
        }
        {
                _cleanup_free_ char *out = NULL;
                _cleanup_json_ json_t *root = NULL;

                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { "--json", leak, NULL }), 3);
                root = json_loads(out, 0, NULL);
                ck_assert_msg(root, "%s", out);
                ck_assert_str_eq(json_string_value(json_object_get(root, "verdict")), "leak");
        }
        {
                /* --trace adds one line per evaluation (standard error), the report stays */
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { "--trace", leak, NULL }), 3);
                ck_assert_msg(strstr(out, "trace +0.5") && strstr(out, "| 30m "), "%.300s", out);
                ck_assert_msg(strstr(out, "Verdict:        leak since"), "%.300s", out);
        }
        {
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { flat, NULL }), 0);
                ck_assert_msg(strstr(out, "Verdict:        none"), "%s", out);
        }
        {
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary("1,2\n2,NaN\n", &out, (char *[]) { "-", NULL }), 2);
                ck_assert_str_eq(out, "heapwatch: analyze: standard input: line 2: bytes value 'NaN' is not a finite number\n");
        }
        {
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { "/nonexistent/rss.csv", NULL }), 1);
                ck_assert_str_eq(out, "heapwatch: analyze: cannot open /nonexistent/rss.csv: No such file or directory\n");
        }
        {
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { dir, NULL }), 1);
        }
        {
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { "--window", NULL }), 2);
        }
        {
                _cleanup_free_ char *out = NULL;
                ck_assert_int_eq(run_binary(NULL, &out, (char *[]) { "--help", NULL }), 0);
                ck_assert_ptr_nonnull(strstr(out, "Exit status: 0 no leak, 3 leak, 4 suspect"));
        }

        unlink(leak);
        unlink(flat);
        rmdir(dir);
}
END_TEST

static Suite *cli_analyze_suite(void) {
        Suite *s = suite_create("cli-analyze");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_csv_good);
        tcase_add_test(tc, test_csv_relative_time_no_header);
        tcase_add_test(tc, test_csv_bad);
        tcase_add_test(tc, test_too_large);
        tcase_add_test(tc, test_series_json);
        tcase_add_test(tc, test_series_json_bad);
        tcase_add_test(tc, test_prometheus);
        tcase_add_test(tc, test_prometheus_bad);
        tcase_add_test(tc, test_args);
        tcase_add_test(tc, test_args_bad);
        suite_add_tcase(s, tc);

        tc = tcase_create("analyze");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_analyze_leak);
        tcase_add_test(tc, test_analyze_flat);
        tcase_add_test(tc, test_analyze_too_short);
        tcase_add_test(tc, test_analyze_trace);
        tcase_add_test(tc, test_binary_exit_status);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(cli_analyze_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
