/* SPDX-License-Identifier: MIT */
/*
 * `heapwatch analyze`: offline leak analysis of a recorded memory series, for post-mortems and
 * for tuning thresholds on real data. The file (CSV `timestamp,bytes`, the JSON of heapwatchd's
 * series endpoint, or a Prometheus range-query export) is parsed strictly and within bounds,
 * then every point is fed in order to the daemon's own SeriesDetector (daemon/detect.h), so
 * windows, horizons, hysteresis and timing are exactly what heapwatchd would have reported
 * live. Parsing, analysis and rendering are pure and unit-tested; verb_analyze() adds the file
 * and the output.
 *
 * Exit status (part of the contract, for scripts): 0 no leak, 3 leak, 4 suspect, judged on the
 * verdict after hysteresis at the end of the series (the worst one when a Prometheus export
 * holds several series); 1 the file could not be read or the output written; 2 bad command
 * line or bad input.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include "detect.h"

#define EXIT_ANALYZE_LEAK 3
#define EXIT_ANALYZE_SUSPECT 4

/* Bounds on input. CSV costs 16 bytes a point once parsed; jansson's tree about 200 bytes a
 * point, hence the lower cap for JSON (measured: a 62 MB export of 2.6 M points peaks at
 * 620 MiB RSS; heapwatchd and Prometheus return at most 11000 points per series and query). */
#define ANALYZE_CSV_MAX (256u * 1024u * 1024u)
#define ANALYZE_JSON_MAX (64u * 1024u * 1024u)
#define ANALYZE_POINTS_MAX 10000000u
#define ANALYZE_SERIES_MAX 10000u
/* Timestamps are Unix seconds (or any seconds): beyond this they are likely milliseconds. */
#define ANALYZE_TIME_MAX 1e11
/* Largest value accepted: 2^64 bytes. */
#define ANALYZE_VALUE_MAX 18446744073709551616.0

typedef enum AnalyzeFormat {
        ANALYZE_FORMAT_CSV,
        ANALYZE_FORMAT_SERIES_JSON,  /* GET /api/v1/processes/{id}/series, or a bare [[t, v], ...] */
        ANALYZE_FORMAT_PROMETHEUS,   /* /api/v1/query_range result, resultType "matrix" */
} AnalyzeFormat;

const char *analyze_format_to_string(AnalyzeFormat f); /* "csv", "heapwatch-json", "prometheus" */

typedef struct AnalyzeSeries {
        char *label;        /* Prometheus: name{labels}; series JSON: "ID METRIC"; CSV: NULL */
        DetectPoint *points; /* strictly increasing t, finite t and v, 0 <= v <= 2^64 */
        size_t n;           /* >= 1 */
        bool live_count;    /* series JSON of python_allocated_blocks: not a high-water mark */
} AnalyzeSeries;

typedef struct AnalyzeInput {
        AnalyzeFormat format;
        AnalyzeSeries *series;
        size_t n_series;    /* >= 1 */
} AnalyzeInput;

/* Free everything an AnalyzeInput owns and zero it; accepts a zeroed one. */
void analyze_input_clear(AnalyzeInput *in);

/*
 * Parse a recorded series; the format is recognised from the content (JSON starts with '{' or
 * '['; anything else is CSV). CSV: `timestamp,bytes` per line, one optional header line before
 * the data, blank lines and lines starting with '#' ignored, CRLF accepted. Timestamps must
 * be finite seconds within +-1e11 and strictly increasing; values finite, 0..2^64.
 * Returns 0 and fills *ret; -EINVAL (bad input) or -E2BIG (more than ANALYZE_POINTS_MAX points
 * or ANALYZE_SERIES_MAX series) with a one-line reason naming the line or the JSON index in
 * error[error_size]; -ENOMEM. Nothing is written to *ret on failure.
 */
int analyze_parse(const char *data, size_t size, AnalyzeInput *ret, char *error, size_t error_size);

typedef struct AnalyzeArgs {
        bool help;
        bool json;
        bool trace;           /* --trace: every evaluation's horizons on standard error */
        DetectConfig config;  /* detect_config_default() with the options applied, validated */
        double limit;         /* bytes; 0 = no --limit */
        const char *file;     /* "-" = standard input */
} AnalyzeArgs;

/*
 * Parse `analyze [OPTIONS] FILE|-`; argv[0] is "analyze". Pure. Durations take an optional
 * unit (s, m, h, d), sizes an optional binary suffix (K, M, G, T, with or without "iB"),
 * fractions an optional '%'. Returns 0 and fills *ret, or -EINVAL with a one-line reason.
 */
int analyze_parse_args(int argc, char *argv[], AnalyzeArgs *ret, char *error, size_t error_size);

typedef struct AnalyzeReport {
        size_t n;               /* points fed */
        double start, end;      /* first and last timestamp */
        LeakVerdict verdict;    /* after hysteresis, at the end of the series */
        double verdict_since;   /* when the hysteresis state last changed (NAN: never) */
        bool evaluated;         /* at least one evaluation ran (else `last` is empty) */
        DetectResult last;      /* the last evaluation */
        unsigned evaluations;
        unsigned changes;       /* hysteresis state changes (a flapping finding shows here) */
        double first_suspect;   /* first time the state was suspect or leak (NAN: never) */
        double first_leak;      /* first time the state was leak (NAN: never) */
        double limit;           /* bytes, 0: no limit given */
        int limit_r;            /* detect_time_to_limit()'s return: 0, or -ERANGE: no projection */
        double eta, eta_earliest, eta_latest; /* seconds from the last evaluation */
} AnalyzeReport;

/*
 * Replay points through a fresh SeriesDetector configured by c and summarise what it said.
 * limit > 0 adds the time to reach it from the last evaluation. trace (NULL: none) is called
 * after every evaluation (series_detector_set_trace()). Returns 0, -EINVAL, -ENOMEM.
 */
int analyze_series(const DetectConfig *c, const DetectPoint *points, size_t n, double limit, DetectTraceFn trace,
                   void *trace_userdata, AnalyzeReport *ret);

/* One evaluation as one line of `--trace` output (ending in '\n'): time since start, the floor,
 * then per horizon its length, verdict, p-value, slope with its interval and the halves' slopes
 * as % of the floor per hour, and the reason. Returns 0 or -errno from the stream. */
int analyze_trace_line(FILE *f, const char *label, double start, double now, double current,
                       const DetectHorizonTrace *h, size_t n);

/* Human text for all series (reports[i] belongs to in->series[i]), each line ending in '\n'.
 * `source` names the file in the header. Returns 0 and a malloc'd string, or -ENOMEM. */
int analyze_render_text(const AnalyzeInput *in, const AnalyzeReport *reports, const char *source,
                        char **ret);

/* The same as a JSON document (see `heapwatch analyze --help`). Returns 0 and a malloc'd
 * string, or -ENOMEM. */
int analyze_render_json(const AnalyzeInput *in, const AnalyzeReport *reports, const DetectConfig *c,
                        const char *source, char **ret);

/* 0 for none, EXIT_ANALYZE_SUSPECT, EXIT_ANALYZE_LEAK. */
int analyze_exit_status(LeakVerdict v);

/* Usage text for `heapwatch analyze --help`. */
void analyze_help(void);

/* The subcommand; returns the exit status. */
int verb_analyze(int argc, char *argv[]);
