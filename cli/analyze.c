/* SPDX-License-Identifier: MIT */
/*
 * Implementation of `heapwatch analyze` (see analyze.h). The input is untrusted and may be
 * large: every number is parsed strictly (no hex, no "inf"), every point checked (finite,
 * in range, time strictly increasing) and every error names the line or the JSON index, so
 * an operator can fix an export instead of guessing. The analysis itself is nothing but the
 * daemon's SeriesDetector fed point by point: this file adds no statistics of its own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "analyze.h"
#include "cli-util.h"
#include "error-util.h"
#include "format.h"
#include "json-util.h"

/* Longest number text accepted (a double needs < 30 characters; the rest is padding). */
#define NUMBER_MAX 64
/* Longest series label kept (Prometheus label sets can be long; the rest is cut). */
#define LABEL_MAX 512
/* How much of an offending field an error message quotes. */
#define QUOTE_MAX 32
/* Longest message of another program's (a Prometheus error, jansson's) quoted. */
#define ERROR_QUOTE_MAX 200

const char *analyze_format_to_string(AnalyzeFormat f) {
        switch (f) {
        case ANALYZE_FORMAT_SERIES_JSON:
                return "heapwatch-json";
        case ANALYZE_FORMAT_PROMETHEUS:
                return "prometheus";
        case ANALYZE_FORMAT_CSV:
        default:
                return "csv";
        }
}

void analyze_input_clear(AnalyzeInput *in) {
        if (!in)
                return;
        for (size_t i = 0; i < in->n_series; i++) {
                free(in->series[i].label);
                free(in->series[i].points);
        }
        free(in->series);
        *in = (AnalyzeInput) {};
}

/* ---- numbers and points ------------------------------------------------------------------- */

/* A short, terminal-safe quote of untrusted text for an error message: at most size - 1
 * characters (QUOTE_MAX for a buffer of QUOTE_MAX + 1), control characters and non-ASCII as
 * '?', "..." when cut. */
static const char *quote(char *buf, size_t size, const char *s, size_t len) {
        size_t i, n = len < size - 1 ? len : size - 1;

        for (i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                buf[i] = c < 0x20 || c >= 0x7f ? '?' : (char) c;
        }
        buf[i] = '\0';
        if (len > n && n >= 3)
                memcpy(buf + n - 3, "...", 3);
        return buf;
}

/*
 * A decimal number: digits, sign, point, exponent. strtod() alone would also take hex, "inf",
 * "nan" and leading blanks; "0x10" in a CSV column is a broken export, not sixteen bytes.
 * Returns 0, -EINVAL (not a number), -ERANGE (NaN, infinity or overflow).
 */
static int parse_number(const char *s, size_t len, double *ret) {
        char buf[NUMBER_MAX];
        const char *p;
        char *end;
        double v;

        if (len == 0 || len >= sizeof buf)
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';

        p = buf + (buf[0] == '+' || buf[0] == '-');
        if (strncasecmp(p, "nan", 3) == 0 || strncasecmp(p, "inf", 3) == 0)
                return -ERANGE;
        for (size_t i = 0; i < len; i++)
                if (!strchr("0123456789+-.eE", buf[i]))
                        return -EINVAL;

        errno = 0;
        v = strtod(buf, &end);
        if (end != buf + len)
                return -EINVAL;
        /* ERANGE with a tiny result is underflow: as good as zero for bytes and seconds. */
        if ((errno == ERANGE && fabs(v) >= 1.0) || !isfinite(v))
                return -ERANGE;
        *ret = v;
        return 0;
}

typedef enum PointCheck {
        POINT_OK,
        POINT_TIME_RANGE,
        POINT_VALUE_NEGATIVE,
        POINT_VALUE_RANGE,
        POINT_NOT_AFTER,
} PointCheck;

static PointCheck point_check(double t, double v, const DetectPoint *prev) {
        if (!(fabs(t) <= ANALYZE_TIME_MAX))
                return POINT_TIME_RANGE;
        if (v < 0)
                return POINT_VALUE_NEGATIVE;
        if (!(v <= ANALYZE_VALUE_MAX))
                return POINT_VALUE_RANGE;
        /* The detector needs time to move forward: equal timestamps are a duplicated row. */
        if (prev && !(t > prev->t))
                return POINT_NOT_AFTER;
        return POINT_OK;
}

/* The message for a failed point_check(); `where` is "line 17" or "points[16]". */
static int point_error(char *error, size_t error_size, const char *where, PointCheck c, double t, double v,
                       double prev_t) {
        switch (c) {
        case POINT_TIME_RANGE:
                return set_error(error, error_size,
                                 "%s: timestamp %.6g is out of range (Unix seconds expected, within +-1e11; milliseconds?)",
                                 where, t);
        case POINT_VALUE_NEGATIVE:
                return set_error(error, error_size, "%s: value %.6g is negative", where, v);
        case POINT_VALUE_RANGE:
                return set_error(error, error_size, "%s: value %.6g is out of range (more than 2^64)",
                                 where, v);
        case POINT_NOT_AFTER:
                return set_error(error, error_size,
                                 "%s: timestamp %.15g is not after the previous one (%.15g): points must be in time order without duplicates",
                                 where, t, prev_t);
        case POINT_OK:
        default:
                return 0;
        }
}

/* Growable point array with the global cap on the number of points. */
typedef struct PointBuf {
        DetectPoint *points;
        size_t n, alloc;
} PointBuf;

static int point_buf_append(PointBuf *b, size_t *total, double t, double v) {
        if (*total >= ANALYZE_POINTS_MAX)
                return -E2BIG;
        if (b->n == b->alloc) {
                size_t a = b->alloc ? b->alloc * 2 : 1024;
                DetectPoint *p;

                if (a > ANALYZE_POINTS_MAX)
                        a = ANALYZE_POINTS_MAX;
                p = reallocarray(b->points, a, sizeof *p);
                if (!p)
                        return -ENOMEM;
                b->points = p;
                b->alloc = a;
        }
        b->points[b->n++] = (DetectPoint) { .t = t, .v = v };
        (*total)++;
        return 0;
}

static int too_many_points(char *error, size_t error_size) {
        return error_setf(error, error_size, -E2BIG, "more than %u points", ANALYZE_POINTS_MAX);
}

/* ---- CSV --------------------------------------------------------------------------------- */

static void trim(const char **s, const char **e) {
        while (*s < *e && (**s == ' ' || **s == '\t'))
                (*s)++;
        while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
                (*e)--;
}

static int csv_number_error(char *error, size_t error_size, size_t line, const char *what, int r, const char *s,
                            size_t len) {
        char q[QUOTE_MAX + 1];

        if (len == 0)
                return set_error(error, error_size, "line %zu: %s is missing", line, what);
        return set_error(error, error_size, "line %zu: %s '%s' is %s", line, what,
                         quote(q, sizeof q, s, len), r == -ERANGE ? "not a finite number" : "not a number");
}

static int parse_csv(const char *data, size_t size, AnalyzeInput *ret, char *error, size_t error_size) {
        _cleanup_free_ AnalyzeSeries *series = NULL;
        PointBuf b = {};
        const char *p = data, *end = data + size;
        size_t line = 0, total = 0;
        bool header = false;
        int r;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t) (end - p));
                const char *s = p, *e = eol ? eol : end, *comma, *ts, *te, *vs, *ve;
                double t, v;
                char where[32];
                PointCheck c;

                p = eol ? eol + 1 : end;
                line++;
                trim(&s, &e);
                if (memchr(s, '\0', (size_t) (e - s))) {
                        r = set_error(error, error_size, "line %zu: NUL byte: not a text file", line);
                        goto fail;
                }
                if (s == e || *s == '#')
                        continue;

                comma = memchr(s, ',', (size_t) (e - s));
                if (!comma || memchr(comma + 1, ',', (size_t) (e - comma - 1))) {
                        r = set_error(error, error_size,
                                      "line %zu: expected two columns, timestamp,bytes; found %s", line,
                                      comma ? "more" : "one");
                        goto fail;
                }
                ts = s, te = comma, vs = comma + 1, ve = e;
                trim(&ts, &te);
                trim(&vs, &ve);

                r = parse_number(ts, (size_t) (te - ts), &t);
                /* A header (e.g. "timestamp,bytes") is allowed once, before any data; a first
                 * column that starts like a number ("1700000000O", "0x10") is a broken row, not
                 * a header: taken for one, the row was dropped without a word. */
                if (r == -EINVAL && te > ts && b.n == 0 && !header && !strchr("0123456789+-.", *ts)) {
                        header = true;
                        continue;
                }
                if (r < 0) {
                        r = csv_number_error(error, error_size, line, "timestamp", r, ts, (size_t) (te - ts));
                        goto fail;
                }
                r = parse_number(vs, (size_t) (ve - vs), &v);
                if (r < 0) {
                        r = csv_number_error(error, error_size, line, "bytes value", r, vs, (size_t) (ve - vs));
                        goto fail;
                }
                c = point_check(t, v, b.n > 0 ? &b.points[b.n - 1] : NULL);
                if (c != POINT_OK) {
                        snprintf(where, sizeof where, "line %zu", line);
                        r = point_error(error, error_size, where, c, t, v, b.n > 0 ? b.points[b.n - 1].t : 0);
                        goto fail;
                }
                r = point_buf_append(&b, &total, t, v);
                if (r == -E2BIG) {
                        r = too_many_points(error, error_size);
                        goto fail;
                }
                if (r < 0)
                        goto fail;
        }

        if (b.n == 0) {
                r = set_error(error, error_size, "%s",
                              size == 0 ? "empty input" :
                              header    ? "no data points after the header" :
                                          "no data points");
                goto fail;
        }

        series = calloc(1, sizeof *series);
        if (!series) {
                r = -ENOMEM;
                goto fail;
        }
        series[0] = (AnalyzeSeries) { .points = b.points, .n = b.n };
        *ret = (AnalyzeInput) { .format = ANALYZE_FORMAT_CSV, .series = TAKE_PTR(series), .n_series = 1 };
        return 0;

fail:
        free(b.points);
        return r;
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* A number, or a string holding one (Prometheus sends values as strings: "31457280"). */
static int json_number_of(const json_t *j, double *ret) {
        const char *s;

        if (json_is_number(j)) {
                *ret = json_number_value(j);
                return isfinite(*ret) ? 0 : -ERANGE;
        }
        if (!json_is_string(j))
                return -EINVAL;
        s = json_string_value(j);
        return parse_number(s, strlen(s), ret);
}

/* Append the [t, v] pairs of a JSON array; `where` names it in errors ("points",
 * "data.result[2].values"). */
static int parse_json_pairs(const json_t *pairs, const char *where, PointBuf *b, size_t *total, char *error,
                            size_t error_size) {
        const json_t *pair;
        size_t i;
        int r;

        if (!json_is_array(pairs))
                return set_error(error, error_size, "%s: expected an array of [timestamp, value] pairs",
                                 where);

        json_array_foreach(pairs, i, pair) {
                char at[256], q[QUOTE_MAX + 1];
                double t, v;
                PointCheck c;

                snprintf(at, sizeof at, "%s[%zu]", where, i);
                if (!json_is_array(pair) || json_array_size(pair) != 2)
                        return set_error(error, error_size, "%s: expected [timestamp, value]", at);
                r = json_number_of(json_array_get(pair, 0), &t);
                if (r < 0)
                        return set_error(error, error_size, "%s: timestamp is %s", at,
                                         r == -ERANGE ? "not a finite number" : "not a number");
                r = json_number_of(json_array_get(pair, 1), &v);
                if (r < 0) {
                        const json_t *j = json_array_get(pair, 1);

                        if (json_is_string(j))
                                return set_error(error, error_size, "%s: value \"%s\" is %s", at,
                                                 quote(q, sizeof q, json_string_value(j), strlen(json_string_value(j))),
                                                 r == -ERANGE ? "not a finite number" : "not a number");
                        return set_error(error, error_size, "%s: value is %s", at,
                                         json_is_null(j) ? "null" : "not a number");
                }
                c = point_check(t, v, b->n > 0 ? &b->points[b->n - 1] : NULL);
                if (c != POINT_OK)
                        return point_error(error, error_size, at, c, t, v, b->n > 0 ? b->points[b->n - 1].t : 0);
                r = point_buf_append(b, total, t, v);
                if (r == -E2BIG)
                        return too_many_points(error, error_size);
                if (r < 0)
                        return r;
        }
        if (b->n == 0)
                return set_error(error, error_size, "%s: no data points", where);
        return 0;
}

/* Prometheus' way to name a series: name{label="value", ...}, in the order of the export. */
static int prometheus_label(const json_t *metric, char **ret) {
        _cleanup_free_ char *buf = NULL;
        const char *key, *name = NULL;
        const json_t *v;
        size_t size = 0;
        bool first = true;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        if (json_is_object(metric)) {
                v = json_object_get(metric, "__name__");
                if (json_is_string(v))
                        name = json_string_value(v);
        }
        fputs(name ? name : "", f);
        fputc('{', f);
        if (json_is_object(metric))
                json_object_foreach((json_t *) metric, key, v) {
                        if (strcmp(key, "__name__") == 0 || !json_is_string(v))
                                continue;
                        fprintf(f, "%s%s=\"", first ? "" : ", ", key);
                        for (const char *c = json_string_value(v); *c; c++) {
                                if (*c == '"' || *c == '\\')
                                        fputc('\\', f);
                                fputc(*c, f);
                        }
                        fputc('"', f);
                        first = false;
                        if (ftell(f) > LABEL_MAX)
                                break;
                }
        fputc('}', f);
        if (fclose(f) != 0)
                return -ENOMEM;
        if (size > LABEL_MAX) {
                /* Never cut inside a UTF-8 sequence: the terminal sanitizer would show '?'. */
                size_t n = LABEL_MAX - 4;
                while (n > 0 && ((unsigned char) buf[n] & 0xc0) == 0x80)
                        n--;
                memcpy(buf + n, "...", 4);
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

static int parse_prometheus(const json_t *root, AnalyzeInput *ret, char *error, size_t error_size) {
        const json_t *status = json_object_get(root, "status"), *data, *type, *result, *s;
        AnalyzeInput in = { .format = ANALYZE_FORMAT_PROMETHEUS };
        size_t i, total = 0;
        int r;

        if (json_is_string(status) && strcmp(json_string_value(status), "success") != 0) {
                const json_t *e = json_object_get(root, "error");
                char q[QUOTE_MAX + 1], qm[ERROR_QUOTE_MAX + 1];
                const char *m = json_is_string(e) ? json_string_value(e) : "no message";

                /* the server's message is untrusted text too: an escape sequence in it would
                 * reach the terminal */
                return set_error(error, error_size, "the export is a failed query (status \"%s\"): %s",
                                 quote(q, sizeof q, json_string_value(status), strlen(json_string_value(status))),
                                 quote(qm, sizeof qm, m, strlen(m)));
        }
        data = json_object_get(root, "data");
        if (!json_is_object(data))
                return set_error(error, error_size, "data: expected an object");
        type = json_object_get(data, "resultType");
        if (!json_is_string(type))
                return set_error(error, error_size, "data.resultType: expected a string");
        if (strcmp(json_string_value(type), "matrix") != 0)
                return set_error(error, error_size,
                                 "data.resultType is \"%s\", not \"matrix\": export a range query (/api/v1/query_range)",
                                 strcmp(json_string_value(type), "vector") == 0 ? "vector" :
                                 strcmp(json_string_value(type), "scalar") == 0 ? "scalar" :
                                 strcmp(json_string_value(type), "string") == 0 ? "string" : "?");
        result = json_object_get(data, "result");
        if (!json_is_array(result))
                return set_error(error, error_size, "data.result: expected an array");
        if (json_array_size(result) == 0)
                return set_error(error, error_size, "data.result: no series (the query matched nothing)");
        if (json_array_size(result) > ANALYZE_SERIES_MAX)
                return error_setf(error, error_size, -E2BIG, "data.result: more than %u series", ANALYZE_SERIES_MAX);

        in.series = calloc(json_array_size(result), sizeof *in.series);
        if (!in.series)
                return -ENOMEM;

        json_array_foreach(result, i, s) {
                char where[64];
                PointBuf b = {};

                snprintf(where, sizeof where, "data.result[%zu]", i);
                if (!json_is_object(s)) {
                        r = set_error(error, error_size, "%s: expected an object", where);
                        goto fail;
                }
                if (!json_object_get(s, "values")) {
                        r = set_error(error, error_size, "%s: no \"values\"%s", where,
                                      json_object_get(s, "histograms") ? " (native histograms cannot be analyzed)" : "");
                        goto fail;
                }
                snprintf(where, sizeof where, "data.result[%zu].values", i);
                r = parse_json_pairs(json_object_get(s, "values"), where, &b, &total, error, error_size);
                if (r >= 0)
                        r = prometheus_label(json_object_get(s, "metric"), &in.series[i].label);
                /* Owned by `in` from here, whatever happened. */
                in.series[i].points = b.points;
                in.series[i].n = b.n;
                in.n_series = i + 1;
                if (r < 0)
                        goto fail;
        }

        *ret = in;
        return 0;

fail:
        analyze_input_clear(&in);
        return r;
}

static int parse_series_json(const json_t *root, AnalyzeInput *ret, char *error, size_t error_size) {
        _cleanup_free_ AnalyzeSeries *series = NULL;
        _cleanup_free_ char *label = NULL;
        const json_t *pairs = root;
        PointBuf b = {};
        size_t total = 0;
        bool live_count = false;
        int r;

        if (json_is_object(root)) {
                const json_t *id = json_object_get(root, "id"), *metric = json_object_get(root, "metric");

                /* The Python heap's blocks are live objects (docs/detection.md step 6). */
                live_count = json_is_string(metric) && strcmp(json_string_value(metric), "python_allocated_blocks") == 0;

                pairs = json_object_get(root, "points");
                if (json_is_string(id) && json_is_string(metric) &&
                    asprintf(&label, "%s %s", json_string_value(id), json_string_value(metric)) < 0)
                        return -ENOMEM;
        }
        r = parse_json_pairs(pairs, "points", &b, &total, error, error_size);
        if (r < 0) {
                free(b.points);
                return r;
        }
        series = calloc(1, sizeof *series);
        if (!series) {
                free(b.points);
                return -ENOMEM;
        }
        series[0] = (AnalyzeSeries) { .label = TAKE_PTR(label), .points = b.points, .n = b.n, .live_count = live_count };
        *ret = (AnalyzeInput) { .format = ANALYZE_FORMAT_SERIES_JSON, .series = TAKE_PTR(series), .n_series = 1 };
        return 0;
}

static int parse_json(const char *data, size_t size, AnalyzeInput *ret, char *error, size_t error_size) {
        _cleanup_json_ json_t *root = NULL;
        json_error_t e;

        if (size > ANALYZE_JSON_MAX)
                return error_setf(error, error_size, -E2BIG, "JSON input larger than %u MiB (convert it to CSV)",
                                 ANALYZE_JSON_MAX >> 20);
        /* Integers as reals: byte counts past 2^63 must give a range error below, not a jansson
         * "too big integer". Duplicate keys would make the meaning depend on the parser. */
        root = json_loadb(data, size, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &e);
        if (!root) {
                char q[ERROR_QUOTE_MAX + 1];

                /* jansson quotes the offending bytes ("invalid token near '<ESC>'") */
                return set_error(error, error_size, "JSON error at line %d, column %d: %s", e.line, e.column,
                                 quote(q, sizeof q, e.text, strlen(e.text)));
        }

        if (json_is_array(root))
                return parse_series_json(root, ret, error, error_size);
        if (json_is_object(root) && json_object_get(root, "points"))
                return parse_series_json(root, ret, error, error_size);
        if (json_is_object(root) && (json_object_get(root, "data") || json_object_get(root, "status")))
                return parse_prometheus(root, ret, error, error_size);
        return set_error(error, error_size,
                         "JSON input is neither a heapwatch series ({\"points\": [[t, v], ...]}) nor a Prometheus range query result ({\"data\": {\"result\": ...}})");
}

int analyze_parse(const char *data, size_t size, AnalyzeInput *ret, char *error, size_t error_size) {
        size_t i = 0;

        if (!data && size > 0)
                return -EINVAL;
        if (size > ANALYZE_CSV_MAX)
                return error_setf(error, error_size, -E2BIG, "input larger than %u MiB", ANALYZE_CSV_MAX >> 20);

        /* Skip a UTF-8 byte order mark and leading blanks to see what the content is. */
        if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
                data += 3, size -= 3;
        while (i < size && data[i] != '\0' && strchr(" \t\r\n", data[i]))
                i++;
        if (i < size && (data[i] == '{' || data[i] == '['))
                return parse_json(data, size, ret, error, error_size);
        return parse_csv(data, size, ret, error, error_size);
}

/* ---- command line ------------------------------------------------------------------------ */

/* "300", "300s", "5m", "2h", "1d", "1.5h". */
static int parse_duration(const char *s, double *ret) {
        size_t len = strlen(s);
        double mult = 1, v;
        int r;

        if (len > 0 && strchr("smhd", s[len - 1])) {
                mult = s[len - 1] == 'm' ? 60 : s[len - 1] == 'h' ? 3600 : s[len - 1] == 'd' ? 86400 : 1;
                len--;
        }
        r = parse_number(s, len, &v);
        if (r < 0)
                return r;
        v *= mult;
        if (!(v > 0) || !isfinite(v))
                return -ERANGE;
        *ret = v;
        return 0;
}

/* "2147483648", "2G", "2GiB", "512MB", "1.5T": binary multiples (a memory limit is set so). */
static int parse_size(const char *s, double *ret) {
        static const char units[] = "KMGTP";
        size_t len = strlen(s);
        double mult = 1, v;
        const char *u;
        int r;

        if (len >= 3 && strcmp(s + len - 2, "iB") == 0 && strchr(units, s[len - 3]))
                len -= 2;
        else if (len >= 2 && s[len - 1] == 'B' && strchr(units, s[len - 2]))
                len -= 1;
        else if (len >= 2 && s[len - 1] == 'B' && strchr("0123456789.", s[len - 2]))
                len -= 1;
        if (len > 0 && (u = strchr(units, s[len - 1]))) {
                for (const char *k = units; k <= u; k++)
                        mult *= 1024;
                len--;
        }
        r = parse_number(s, len, &v);
        if (r < 0)
                return r;
        v *= mult;
        if (v < 0 || !(v <= ANALYZE_VALUE_MAX))
                return -ERANGE;
        *ret = v;
        return 0;
}

/* "0.01" or "1%". */
static int parse_fraction(const char *s, double *ret) {
        size_t len = strlen(s);
        double v;
        int r;
        bool percent = len > 0 && s[len - 1] == '%';

        r = parse_number(s, len - percent, &v);
        if (r < 0)
                return r;
        if (percent)
                v /= 100;
        if (v < 0)
                return -ERANGE;
        *ret = v;
        return 0;
}

typedef enum ArgKind { ARG_DURATION, ARG_SIZE, ARG_FRACTION } ArgKind;

static const struct {
        const char *name;
        ArgKind kind;
} value_options[] = {
        { "--window", ARG_DURATION },
        { "--min-horizon", ARG_DURATION },
        { "--max-horizon", ARG_DURATION },
        { "--min-growth-per-hour", ARG_FRACTION },
        { "--min-bytes-per-hour", ARG_SIZE },
        { "--limit", ARG_SIZE },
};

int analyze_parse_args(int argc, char *argv[], AnalyzeArgs *ret, char *error, size_t error_size) {
        AnalyzeArgs a = {};
        bool options = true;
        int r;

        detect_config_default(&a.config);

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *value = NULL;
                _cleanup_free_ char *q = NULL;
                size_t k;

                if (options && strcmp(arg, "--") == 0) {
                        options = false;
                        continue;
                }
                if (!options || arg[0] != '-' || strcmp(arg, "-") == 0) {
                        if (a.file)
                                return set_error(error, error_size, "unexpected argument '%s': one FILE only",
                                                 cli_printable(arg, &q));
                        a.file = arg;
                        continue;
                }
                if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                        *ret = (AnalyzeArgs) { .help = true };
                        return 0;
                }
                if (strcmp(arg, "--json") == 0) {
                        a.json = true;
                        continue;
                }
                if (strcmp(arg, "--trace") == 0) {
                        a.trace = true;
                        continue;
                }
                if (strcmp(arg, "--no-high-water") == 0) {
                        a.config.high_water = false;
                        continue;
                }

                for (k = 0; k < ELEMENTSOF(value_options); k++) {
                        size_t n = strlen(value_options[k].name);

                        if (strncmp(arg, value_options[k].name, n) != 0)
                                continue;
                        if (arg[n] == '=') {
                                value = arg + n + 1;
                                break;
                        }
                        if (arg[n] == '\0') {
                                if (i + 1 >= argc)
                                        return set_error(error, error_size, "option %s requires a value",
                                                         value_options[k].name);
                                value = argv[++i];
                                break;
                        }
                }
                if (k == ELEMENTSOF(value_options))
                        return set_error(error, error_size, "unknown option '%s'", cli_printable(arg, &q));

                double v = 0;
                switch (value_options[k].kind) {
                case ARG_DURATION:
                        r = parse_duration(value, &v);
                        break;
                case ARG_SIZE:
                        r = parse_size(value, &v);
                        break;
                case ARG_FRACTION:
                default:
                        r = parse_fraction(value, &v);
                        break;
                }
                if (r < 0)
                        return set_error(error, error_size, "invalid value '%s' for %s: expected %s",
                                         cli_printable(value, &q), value_options[k].name,
                                         value_options[k].kind == ARG_DURATION ? "a positive duration (e.g. 300, 5m, 2h)" :
                                         value_options[k].kind == ARG_SIZE     ? "a size in bytes (e.g. 2147483648, 2G)" :
                                                                                 "a fraction (e.g. 0.01 or 1%)");

                switch (k) {
                case 0:
                        a.config.window_seconds = v;
                        break;
                case 1:
                        a.config.min_horizon_seconds = v;
                        break;
                case 2:
                        a.config.max_horizon_seconds = v;
                        break;
                case 3:
                        a.config.min_growth_relative_per_hour = v;
                        break;
                case 4:
                        a.config.min_growth_absolute_per_hour = v;
                        break;
                default:
                        if (!(v > 0))
                                return set_error(error, error_size, "--limit must be more than 0 bytes");
                        a.limit = v;
                        break;
                }
        }

        if (!a.file)
                return set_error(error, error_size, "missing FILE (use - for standard input)");
        if (!*a.file)
                return set_error(error, error_size, "FILE must not be empty");

        char m[256];
        if (detect_config_validate(&a.config, m, sizeof m) < 0)
                return set_error(error, error_size, "invalid detector settings: %s", m);

        *ret = a;
        return 0;
}

/* ---- analysis ---------------------------------------------------------------------------- */

int analyze_series(const DetectConfig *c, const DetectPoint *points, size_t n, double limit, DetectTraceFn trace,
                   void *trace_userdata, AnalyzeReport *ret) {
        AnalyzeReport a = {
                .n = n,
                .start = n > 0 ? points[0].t : NAN,
                .end = n > 0 ? points[n - 1].t : NAN,
                .verdict_since = NAN,
                .first_suspect = NAN,
                .first_leak = NAN,
                .limit = limit,
                .limit_r = -ENODATA,
                .eta = NAN,
                .eta_earliest = NAN,
                .eta_latest = NAN,
        };
        SeriesDetector d;
        int r;

        r = series_detector_init(&d, c);
        if (r < 0)
                return r;
        series_detector_set_trace(&d, trace, trace_userdata);

        for (size_t i = 0; i < n; i++) {
                bool changed = false;

                r = series_detector_add(&d, points[i].t, points[i].v, &changed);
                if (r < 0) {
                        series_detector_done(&d);
                        return r;
                }
                if (r > 0)
                        a.evaluations++;
                if (changed)
                        a.changes++;
                if (d.state >= VERDICT_SUSPECT && isnan(a.first_suspect))
                        a.first_suspect = points[i].t;
                if (d.state == VERDICT_LEAK && isnan(a.first_leak))
                        a.first_leak = points[i].t;
        }

        a.verdict = d.state;
        a.evaluated = d.evaluated;
        if (d.evaluated)
                a.last = d.last;
        if (a.changes > 0)
                a.verdict_since = d.state_since;
        if (limit > 0 && d.evaluated)
                a.limit_r = detect_time_to_limit(d.last.current, d.last.slope, d.last.slope_low, d.last.slope_high,
                                                 limit, &a.eta, &a.eta_earliest, &a.eta_latest);
        series_detector_done(&d);

        *ret = a;
        return 0;
}

/* Growth per second as a share of the floor per hour, for people: "+1.23". */
static double percent_per_hour(double slope, double current) {
        return current > 0 ? 100 * slope * 3600 / current : NAN;
}

int analyze_trace_line(FILE *f, const char *label, double start, double now, double current,
                       const DetectHorizonTrace *h, size_t n) {
        fprintf(f, "trace%s%s +%.2fh floor %.6g:", label ? " " : "", label ? label : "", (now - start) / 3600, current);
        if (n == 0)
                fputs(" (shorter than the shortest horizon)", f);
        for (size_t i = 0; i < n; i++) {
                fprintf(f, " | %.0fm %s", h[i].horizon / 60, leak_verdict_to_string(h[i].verdict));
                if (h[i].points > 0)
                        fprintf(f, " p %.1e (own %.1e) %+.2f%%/h [%+.2f, %+.2f] halves %+.2f/%+.2f", h[i].p_value, h[i].p_self,
                                percent_per_hour(h[i].slope, current), percent_per_hour(h[i].slope_low, current),
                                percent_per_hour(h[i].slope_high, current),
                                percent_per_hour(h[i].older_slope, current),
                                percent_per_hour(h[i].newer_slope, current));
                if (h[i].points > 0 && h[i].group > 1)
                        fprintf(f, " on minima of %u windows", h[i].group);
                if (h[i].line_fitted)
                        fprintf(f, " rise+line F %.3g line %+.2f%%/h", h[i].line_f,
                                percent_per_hour(h[i].line_slope, current));
                fprintf(f, " (%s)", h[i].reason);
        }
        fputc('\n', f);
        return ferror(f) ? -EIO : 0;
}

int analyze_exit_status(LeakVerdict v) {
        switch (v) {
        case VERDICT_LEAK:
                return EXIT_ANALYZE_LEAK;
        case VERDICT_SUSPECT:
                return EXIT_ANALYZE_SUSPECT;
        case VERDICT_NONE:
        default:
                return EXIT_OK;
        }
}

static LeakVerdict worst_verdict(const AnalyzeReport *reports, size_t n) {
        LeakVerdict w = VERDICT_NONE;

        for (size_t i = 0; i < n; i++)
                if (reports[i].verdict > w)
                        w = reports[i].verdict;
        return w;
}

/* ---- text output ------------------------------------------------------------------------- */

/* Unix times as UTC; small numbers are relative seconds (a series recorded as 0, 10, 20...). */
static const char *fmt_time(char *buf, size_t size, double t) {
        struct tm tm;
        time_t tt;

        if (!isfinite(t)) {
                snprintf(buf, size, "-");
                return buf;
        }
        if (t < 1e8) {
                snprintf(buf, size, "t=%.0fs", t);
                return buf;
        }
        tt = (time_t) floor(t);
        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "%.0f", t);
        return buf;
}

static const char *fmt_bytes(char *buf, size_t size, double v) {
        char b[FORMAT_BYTES_MAX];
        double a = fabs(v);

        if (!isfinite(v)) {
                snprintf(buf, size, "-");
                return buf;
        }
        format_bytes(b, sizeof b, a >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t) llround(a));
        snprintf(buf, size, "%s%s", v < 0 ? "-" : "", b);
        return buf;
}

/* A number of bytes in a given binary unit, with three significant digits or so. */
static const char *fmt_scaled(char *buf, size_t size, double v, double unit) {
        double x = v / unit, a = fabs(x);

        snprintf(buf, size, a < 10 ? "%+.2f" : a < 100 ? "%+.1f" : "%+.0f", x);
        return buf;
}

/* The unit fitting |v|: B, KiB, ... EiB. */
static double unit_for(double v, const char **ret_name) {
        static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double u = 1;
        size_t i = 0;

        while (i + 1 < ELEMENTSOF(names) && fabs(v) >= 1024 * u) {
                u *= 1024;
                i++;
        }
        *ret_name = names[i];
        return u;
}

/* "+2.93 MiB/h (+834 B/s), 95 % CI +2.90 to +2.95 MiB/h": the interval in the estimate's unit. */
static void render_growth(FILE *f, const DetectResult *l) {
        char a[32], b[32], c[32], d[32];
        const char *name, *sname;
        double u = unit_for(l->slope * 3600, &name), su = unit_for(l->slope, &sname);

        fprintf(f, "  Growth:         %s %s/h (%s %s/s), 95 %% CI %s to %s %s/h", fmt_scaled(a, sizeof a, l->slope * 3600, u),
                name, fmt_scaled(b, sizeof b, l->slope, su), sname, fmt_scaled(c, sizeof c, l->slope_low * 3600, u),
                fmt_scaled(d, sizeof d, l->slope_high * 3600, u), name);
        if (l->current > 0)
                fprintf(f, "; %+.2f %% of the floor per hour", percent_per_hour(l->slope, l->current));
        fputc('\n', f);
}

static const char *fmt_confidence(char *buf, size_t size, double p) {
        double c = 100.0 * (1.0 - p);

        if (!isfinite(p))
                snprintf(buf, size, "-");
        else if (c >= 99.995)
                snprintf(buf, size, "> 99.99 %%");
        else
                snprintf(buf, size, "%.2f %%", c);
        return buf;
}

static void render_limit(FILE *f, const AnalyzeReport *a) {
        char lim[FORMAT_BYTES_MAX + 2], eta[FORMAT_DURATION_MAX], lo[FORMAT_DURATION_MAX], hi[FORMAT_DURATION_MAX];

        fmt_bytes(lim, sizeof lim, a->limit);
        if (a->limit_r == -ENODATA)
                fprintf(f, "  Time to limit:  - (not evaluated) to reach %s\n", lim);
        else if (a->limit_r < 0)
                fprintf(f, "  Time to limit:  never: the floor is not growing (limit %s)\n", lim);
        else if (a->eta <= 0)
                fprintf(f, "  Time to limit:  now: the floor is at or above the limit %s\n", lim);
        else
                fprintf(f, "  Time to limit:  %s (range %s to %s) to reach %s, from the last evaluation\n",
                        format_duration(eta, sizeof eta, a->eta), format_duration(lo, sizeof lo, a->eta_earliest),
                        isfinite(a->eta_latest) ? format_duration(hi, sizeof hi, a->eta_latest) : "never", lim);
}

static void render_first(FILE *f, const char *what, double t, double start) {
        char tb[64], d[FORMAT_DURATION_MAX];

        if (isnan(t))
                fprintf(f, "  %-15s never\n", what);
        else
                fprintf(f, "  %-15s %s, %s after the series start\n", what, fmt_time(tb, sizeof tb, t),
                        format_duration(d, sizeof d, t - start));
}

static int render_one(FILE *f, const AnalyzeSeries *s, const AnalyzeReport *a, const char *source) {
        _cleanup_free_ char *label = NULL;
        char t0[64], t1[64], dur[FORMAT_DURATION_MAX], b1[64], tb[64];
        const DetectResult *l = &a->last;

        if (s->label && format_sanitize(s->label, &label) < 0)
                return -ENOMEM;
        fprintf(f, "%s: %zu point%s from %s to %s (%s)\n", label ? label : source, a->n, a->n == 1 ? "" : "s",
                fmt_time(t0, sizeof t0, a->start), fmt_time(t1, sizeof t1, a->end),
                format_duration(dur, sizeof dur, a->end - a->start));

        if (!a->evaluated) {
                fprintf(f, "  Verdict:        %s (not evaluated: the series is shorter than one window)\n",
                        leak_verdict_to_string(a->verdict));
                if (a->limit > 0)
                        render_limit(f, a);
                return 0;
        }

        if (isnan(a->verdict_since))
                fprintf(f, "  Verdict:        %s\n", leak_verdict_to_string(a->verdict));
        else
                fprintf(f, "  Verdict:        %s since %s\n", leak_verdict_to_string(a->verdict),
                        fmt_time(tb, sizeof tb, a->verdict_since));
        fprintf(f, "  Last check:     %s: %s\n", leak_verdict_to_string(l->verdict), l->reason ? l->reason : "-");
        render_growth(f, l);
        fprintf(f, "  Confidence:     %s (Mann-Kendall p = %.2g, tau %.2f)\n",
                fmt_confidence(b1, sizeof b1, l->p_value), l->p_value, l->tau);
        fprintf(f, "  Since:          %s (horizon %s, %u floor points)\n", fmt_time(tb, sizeof tb, l->since),
                format_duration(dur, sizeof dur, l->horizon), l->points);
        fprintf(f, "  Floor now:      %s\n", fmt_bytes(b1, sizeof b1, l->current));
        render_first(f, "First suspect:", a->first_suspect, a->start);
        render_first(f, "First leak:", a->first_leak, a->start);
        if (a->changes > 2)
                fprintf(f, "  State changes:  %u (the finding opened and closed more than once)\n", a->changes);
        if (a->limit > 0)
                render_limit(f, a);
        return 0;
}

int analyze_render_text(const AnalyzeInput *in, const AnalyzeReport *reports, const char *source, char **ret) {
        _cleanup_free_ char *buf = NULL, *src = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        if (format_sanitize(source ? source : "-", &src) < 0)
                return -ENOMEM;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_series && r >= 0; i++) {
                if (i > 0)
                        fputc('\n', f);
                r = render_one(f, &in->series[i], &reports[i], src);
        }
        if (in->n_series > 1 && r >= 0)
                fprintf(f, "\n%zu series; worst verdict: %s\n", in->n_series,
                        leak_verdict_to_string(worst_verdict(reports, in->n_series)));
        if (fclose(f) != 0 || r < 0)
                return r < 0 ? r : -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- JSON output ------------------------------------------------------------------------- */

static json_t *delay_or_null(double t, double start) {
        return isfinite(t) ? json_real(t - start) : json_null();
}

static json_t *report_json(const AnalyzeSeries *s, const AnalyzeReport *a) {
        _cleanup_json_ json_t *o = json_object(), *ev = NULL;
        const DetectResult *l = &a->last;

        if (!o)
                return NULL;
        if (json_add(o, "label", s->label ? json_string_lossy(s->label) : json_null()) < 0 ||
            json_add(o, "points", json_integer((json_int_t) a->n)) < 0 ||
            json_add(o, "start", json_number_or_null(a->start)) < 0 ||
            json_add(o, "end", json_number_or_null(a->end)) < 0 ||
            json_add(o, "verdict", json_string(leak_verdict_to_string(a->verdict))) < 0 ||
            json_add(o, "verdict_since", json_number_or_null(a->verdict_since)) < 0 ||
            json_add(o, "evaluations", json_integer(a->evaluations)) < 0 ||
            json_add(o, "state_changes", json_integer(a->changes)) < 0 ||
            json_add(o, "first_suspect", json_number_or_null(a->first_suspect)) < 0 ||
            json_add(o, "first_leak", json_number_or_null(a->first_leak)) < 0 ||
            json_add(o, "suspect_delay_seconds", delay_or_null(a->first_suspect, a->start)) < 0 ||
            json_add(o, "leak_delay_seconds", delay_or_null(a->first_leak, a->start)) < 0)
                return NULL;

        if (a->evaluated) {
                ev = json_object();
                if (!ev ||
                    json_add(ev, "verdict", json_string(leak_verdict_to_string(l->verdict))) < 0 ||
                    json_add(ev, "reason", l->reason ? json_string_lossy(l->reason) : json_null()) < 0 ||
                    json_add(ev, "growth_bytes_per_second", json_number_or_null(l->slope)) < 0 ||
                    json_add(ev, "growth_bytes_per_second_low", json_number_or_null(l->slope_low)) < 0 ||
                    json_add(ev, "growth_bytes_per_second_high", json_number_or_null(l->slope_high)) < 0 ||
                    json_add(ev, "growth_bytes_per_hour", json_number_or_null(l->slope * 3600)) < 0 ||
                    json_add(ev, "growth_relative_per_hour",
                             json_number_or_null(l->current > 0 ? l->slope * 3600 / l->current : NAN)) < 0 ||
                    json_add(ev, "confidence", json_number_or_null(1.0 - l->p_value)) < 0 ||
                    json_add(ev, "p_value", json_number_or_null(l->p_value)) < 0 ||
                    json_add(ev, "tau", json_number_or_null(l->tau)) < 0 ||
                    json_add(ev, "since", json_number_or_null(l->since)) < 0 ||
                    json_add(ev, "horizon_seconds", json_number_or_null(l->horizon)) < 0 ||
                    json_add(ev, "floor_points", json_integer(l->points)) < 0 ||
                    json_add(ev, "floor_bytes", json_value(l->current)) < 0)
                        return NULL;
        }
        if (json_add(o, "last_evaluation", ev ? TAKE_PTR(ev) : json_null()) < 0)
                return NULL;

        if (a->limit > 0) {
                bool ok = a->limit_r >= 0;

                if (json_add(o, "limit_bytes", json_value(a->limit)) < 0 ||
                    json_add(o, "time_to_limit_seconds", json_number_or_null(ok ? a->eta : NAN)) < 0 ||
                    json_add(o, "time_to_limit_earliest_seconds", json_number_or_null(ok ? a->eta_earliest : NAN)) < 0 ||
                    json_add(o, "time_to_limit_latest_seconds", json_number_or_null(ok ? a->eta_latest : NAN)) < 0)
                        return NULL;
        }
        return TAKE_PTR(o);
}

int analyze_render_json(const AnalyzeInput *in, const AnalyzeReport *reports, const DetectConfig *c,
                        const char *source, char **ret) {
        _cleanup_json_ json_t *root = json_object(), *config = json_object(), *series = json_array();
        char *s;

        if (!root || !config || !series)
                return -ENOMEM;
        if (json_add(config, "window_seconds", json_real(c->window_seconds)) < 0 ||
            json_add(config, "min_horizon_seconds", json_real(c->min_horizon_seconds)) < 0 ||
            json_add(config, "max_horizon_seconds", json_real(c->max_horizon_seconds)) < 0 ||
            json_add(config, "min_points", json_integer(c->min_points)) < 0 ||
            json_add(config, "alpha_suspect", json_real(c->alpha_suspect)) < 0 ||
            json_add(config, "alpha_leak", json_real(c->alpha_leak)) < 0 ||
            json_add(config, "min_growth_relative_per_hour", json_real(c->min_growth_relative_per_hour)) < 0 ||
            json_add(config, "min_growth_absolute_per_hour", json_real(c->min_growth_absolute_per_hour)) < 0 ||
            json_add(config, "halves_ratio", json_real(c->halves_ratio)) < 0 ||
            json_add(config, "open_after", json_integer(c->open_after)) < 0 ||
            json_add(config, "close_after", json_integer(c->close_after)) < 0 ||
            json_add(config, "high_water", json_boolean(c->high_water)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_series; i++)
                if (json_append(series, report_json(&in->series[i], &reports[i])) < 0)
                        return -ENOMEM;
        if (json_add(root, "source", json_string_lossy(source ? source : "-")) < 0 ||
            json_add(root, "format", json_string(analyze_format_to_string(in->format))) < 0 ||
            json_add(root, "verdict", json_string(leak_verdict_to_string(worst_verdict(reports, in->n_series)))) < 0 ||
            json_add(root, "config", TAKE_PTR(config)) < 0 ||
            json_add(root, "series", TAKE_PTR(series)) < 0)
                return -ENOMEM;

        s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- the subcommand ---------------------------------------------------------------------- */

void analyze_help(void) {
        DetectConfig c;

        detect_config_default(&c);
        printf("Usage: %s analyze [OPTIONS] FILE|-\n"
               "\n"
               "Run heapwatchd's leak detector over a recorded memory series and print its verdict:\n"
               "growth per hour with a 95 %% confidence interval, confidence, since when, the floor,\n"
               "when the series first looked suspect and leaking, and the time to a limit.\n"
               "Every point is fed in order, so hysteresis and timing are those of the live daemon.\n"
               "\n"
               "Input (recognised from the content; at most %u MiB and %u M points, JSON %u MiB):\n"
               "  CSV         timestamp,bytes per line (Unix seconds); one header line, blank lines\n"
               "              and '#' comments allowed\n"
               "  JSON        what GET /api/v1/processes/{id}/series returns: {\"points\": [[t, v], ...]}\n"
               "  Prometheus  a range query result (/api/v1/query_range, resultType matrix) as JSON;\n"
               "              each series is analyzed and reported by its labels\n"
               "\n"
               "Options:\n"
               "  --window S                 seconds per floor point, the window minimum (default %g)\n"
               "  --min-horizon S            shortest horizon evaluated (default %g)\n"
               "  --max-horizon S            longest horizon evaluated (default %g)\n"
               "  --min-growth-per-hour F    smallest growth that counts, as a share of the floor\n"
               "                             per hour: 0.005 or 0.5%% (default %g)\n"
               "  --min-bytes-per-hour N     smallest growth that counts in bytes per hour (default %.0f)\n"
               "  --limit BYTES              also project when the floor reaches BYTES (e.g. 4G)\n"
               "  --no-high-water            the series counts live objects, not memory an\n"
               "                             allocator keeps (RSS): a floor that rose in a few\n"
               "                             steps may be a leak (automatic for the series JSON\n"
               "                             of python_allocated_blocks)\n"
               "  --json                     print the result as JSON\n"
               "  --trace                    print every evaluation on standard error: each\n"
               "                             horizon's verdict, p-value, growth with its 95 %%\n"
               "                             interval and the halves' growth (%% of the floor\n"
               "                             per hour), for a horizon that bends the F of\n"
               "                             \"a rise plus a line\" and the line's growth,\n"
               "                             and why (for tuning on real data)\n"
               "  -h, --help                 show this help\n"
               "Durations take s, m, h or d (5m, 2h); sizes K, M, G, T (binary, 1K = 1024).\n"
               "\n"
               "Exit status: 0 no leak, 3 leak, 4 suspect (the verdict at the end of the series;\n"
               "the worst of all series), 1 the file could not be read, 2 bad usage or bad input.\n",
               PROGRAM_NAME, ANALYZE_CSV_MAX >> 20, ANALYZE_POINTS_MAX / 1000000, ANALYZE_JSON_MAX >> 20,
               c.window_seconds, c.min_horizon_seconds, c.max_horizon_seconds, c.min_growth_relative_per_hour,
               c.min_growth_absolute_per_hour);
}

/* Read all of fd, at most max bytes: -EFBIG when there is more. */
static int read_bounded(int fd, size_t max, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max)
                return -EFBIG;

        for (;;) {
                ssize_t n;

                if (size == alloc) {
                        size_t a = alloc ? alloc * 2 : 65536;
                        char *p;

                        if (a > max + 1)
                                a = max + 1;
                        if (a <= size)
                                return -EFBIG;
                        p = realloc(buf, a);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        alloc = a;
                }
                n = read(fd, buf + size, alloc - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max)
                        return -EFBIG;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* --trace: where the lines of one series go. */
typedef struct TraceTarget {
        const char *label;
        double start;
} TraceTarget;

static void trace_to_stderr(void *userdata, double now, double current, const DetectHorizonTrace *h, size_t n) {
        const TraceTarget *t = userdata;

        (void) analyze_trace_line(stderr, t->label, t->start, now, current, h, n);
}

int verb_analyze(int argc, char *argv[]) {
        _cleanup_(analyze_input_clear) AnalyzeInput in = {};
        _cleanup_free_ AnalyzeReport *reports = NULL;
        _cleanup_free_ char *data = NULL, *text = NULL, *q = NULL;
        _cleanup_close_ int fd = -1;
        const char *name;
        char error[512];
        AnalyzeArgs a;
        size_t size = 0;
        int r;

        r = analyze_parse_args(argc, argv, &a, error, sizeof error);
        if (r < 0) {
                cli_error("analyze: %s", error);
                fprintf(stderr, "Try '%s analyze --help'.\n", PROGRAM_NAME);
                return EXIT_USAGE;
        }
        if (a.help) {
                analyze_help();
                return EXIT_OK;
        }

        name = strcmp(a.file, "-") == 0 ? "standard input" : cli_printable(a.file, &q);
        if (strcmp(a.file, "-") != 0) {
                fd = open(a.file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        cli_error_errno(errno, "analyze: cannot open %s: %m", name);
                        return EXIT_FAIL;
                }
        }
        r = read_bounded(fd >= 0 ? fd : STDIN_FILENO, ANALYZE_CSV_MAX, &data, &size);
        if (r == -EFBIG) {
                cli_error("analyze: %s: larger than %u MiB", name, ANALYZE_CSV_MAX >> 20);
                return EXIT_USAGE;
        }
        if (r < 0) {
                cli_error_errno(r, "analyze: cannot read %s: %m", name);
                return EXIT_FAIL;
        }
        fd = safe_close(fd);

        r = analyze_parse(data, size, &in, error, sizeof error);
        if (r == -ENOMEM) {
                cli_error_errno(r, "analyze: %m");
                return EXIT_FAIL;
        }
        if (r < 0) {
                cli_error("analyze: %s: %s", name, error);
                return EXIT_USAGE;
        }
        free(TAKE_PTR(data));

        reports = calloc(in.n_series, sizeof *reports);
        if (!reports) {
                cli_error_errno(ENOMEM, "analyze: %m");
                return EXIT_FAIL;
        }
        for (size_t i = 0; i < in.n_series; i++) {
                _cleanup_free_ char *lq = NULL;
                /* Labels come from the file: shown escaped, as in the report. */
                TraceTarget target = {
                        .label = in.series[i].label ? cli_printable(in.series[i].label, &lq) : NULL,
                        .start = in.series[i].points[0].t,
                };

                DetectConfig config = a.config;

                if (in.series[i].live_count)
                        config.high_water = false;
                r = analyze_series(&config, in.series[i].points, in.series[i].n, a.limit,
                                   a.trace ? trace_to_stderr : NULL, &target, &reports[i]);
                if (r < 0) {
                        cli_error_errno(r, "analyze: %s: detector failed: %m", name);
                        return EXIT_FAIL;
                }
        }

        if (a.json)
                r = analyze_render_json(&in, reports, &a.config, name, &text);
        else
                r = analyze_render_text(&in, reports, name, &text);
        if (r < 0) {
                cli_error_errno(r, "analyze: %m");
                return EXIT_FAIL;
        }
        fputs(text, stdout);
        if (a.json)
                fputc('\n', stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                cli_error_errno(errno ? errno : EIO, "analyze: cannot write the result: %m");
                return EXIT_FAIL;
        }
        return analyze_exit_status(worst_verdict(reports, in.n_series));
}
