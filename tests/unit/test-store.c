/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/store.c (durable tiers in SQLite) and daemon/leak-resume.c: tier
 * specifications parse and validate; bucket blobs round-trip and damaged ones are refused; a
 * week of synthetic history at accelerated time lands in every tier with the right min, max,
 * mean and last, and retention then trims each tier to its own length; a crashed writer (a
 * child killed with SIGKILL) loses nothing that was flushed; a reopened store extends the
 * bucket it left open; a garbage file is moved aside; a newer schema is left alone; an
 * unusable directory keeps rows in a bounded queue and writes them once it is usable; the disk
 * budget drops the oldest rows first; and stored floors resume a leak verdict after restart.
 * Censuses: their type blobs round-trip and damaged ones are refused; they are kept per process
 * (the newest and the open finding's baseline), aged out with the longest tier, queued (bounded)
 * while the disk fails, migrated into a schema-1 file, and put back by a restart so the growing
 * types of an open finding are the same as before it.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "census.h"
#include "leak-resume.h"
#include "leaks.h"
#include "persist.h"
#include "proc-util.h"
#include "registry.h"
#include "store.h"
#include "helper-registry.h"

#define T0 1700000400.0 /* a multiple of 600: bucket edges are easy to reason about */

static char tmpdir[64];

static void setup(void) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/hw-test-store-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
}

static void config_in(StoreConfig *c, const char *dir) {
        store_config_default(c);
        snprintf(c->state_dir, sizeof c->state_dir, "%s", dir);
        c->check_seconds = 5;
}

static HistoryPoint point_at(double t, double rss) {
        HistoryPoint p;
        memset(&p, 0, sizeof p);
        p.time = t;
        p.values[HISTORY_RSS_BYTES] = rss;
        p.values[HISTORY_VM_BYTES] = 4e9;
        p.values[HISTORY_THREADS] = 3;
        p.values[HISTORY_PYTHON_ALLOCATED_BLOCKS] = rss / 100;
        p.values[HISTORY_GC_PAUSE_SECONDS] = 0.001;
        return p;
}

/* --- configuration ---------------------------------------------------------------------------- */

START_TEST(test_config) {
        StoreConfig c;
        char err[160];

        config_in(&c, "/tmp/x");
        ck_assert_int_eq(store_config_validate(&c, err, sizeof err), 0);
        ck_assert_uint_eq(c.n_tiers, 3);
        ck_assert(c.tiers[0].resolution == 10 && c.tiers[0].retention == 2 * 86400);
        ck_assert(c.tiers[1].resolution == 60 && c.tiers[1].retention == 14 * 86400);
        ck_assert(c.tiers[2].resolution == 600 && c.tiers[2].retention == 180 * 86400);
        ck_assert(c.flush_interval == 10);

        ck_assert_int_eq(store_tiers_parse(&c, "1s:1h,30s:1d,5m:30d,1h:365d", err, sizeof err), 0);
        ck_assert_uint_eq(c.n_tiers, 4);
        ck_assert(c.tiers[1].resolution == 30 && c.tiers[1].retention == 86400);
        ck_assert(c.tiers[3].resolution == 3600 && c.tiers[3].retention == 365 * 86400.0);
        ck_assert_int_eq(store_config_validate(&c, err, sizeof err), 0);

        const char *bad[] = { "", "10s", "10s:", ":2d", "10x:2d", "0s:2d", "10s:2d,", "s:2d", "10s:2d,1m:14d,10m:180d,1h:1y",
                              "10s:2d,1m:14d,10m:180d,1h:400d,2h:500d", "-1s:2d", "10s:2d;1m:3d", "99999999999s:1d" };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                StoreConfig d = c;
                ck_assert_msg(store_tiers_parse(&d, bad[i], err, sizeof err) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_uint_eq(d.n_tiers, 4); /* untouched on failure */
        }
        /* coarse before fine, or retention shrinking, or retention below resolution */
        const char *disordered[] = { "1m:2d,10s:14d", "10s:14d,1m:2d", "10s:5s", "1s:1d,1s:2d", "1.5s:1d" };
        for (size_t i = 0; i < sizeof disordered / sizeof *disordered; i++) {
                StoreConfig d = c;
                if (store_tiers_parse(&d, disordered[i], err, sizeof err) == 0)
                        ck_assert_msg(store_config_validate(&d, err, sizeof err) == -EINVAL, "accepted '%s'",
                                      disordered[i]);
        }
        config_in(&c, "relative/dir");
        ck_assert_int_eq(store_config_validate(&c, err, sizeof err), -EINVAL);
        config_in(&c, "/tmp/x");
        c.max_disk_bytes = 1000;
        ck_assert_int_eq(store_config_validate(&c, err, sizeof err), -EINVAL);
        c.max_disk_bytes = 0; /* unlimited */
        ck_assert_int_eq(store_config_validate(&c, err, sizeof err), 0);
        c.flush_interval = 0;
        ck_assert_int_eq(store_config_validate(&c, err, sizeof err), -EINVAL);
}
END_TEST

/* --- blob encoding ---------------------------------------------------------------------------- */

static bool same(double a, double b) {
        return (isnan(a) && isnan(b)) || a == b;
}

START_TEST(test_blob_roundtrip) {
        StoreAgg in[_HISTORY_METRIC_MAX], out[_HISTORY_METRIC_MAX];
        uint8_t blob[STORE_BLOB_MAX];
        const double values[] = { 0, 1, -1, 123456789012345.0, -9007199254740992.0, 9007199254740992.0,
                                  9007199254740994.0, 0.5, 1e300, -3.25, NAN, INFINITY, 1e-9, 4294967296.0 };
        unsigned seed = 1;
        size_t len;

        for (int round = 0; round < 2000; round++) {
                for (int m = 0; m < _HISTORY_METRIC_MAX; m++) {
                        seed = seed * 1103515245u + 12345u;
                        if ((seed >> 20) % 3 == 0) {
                                double v = values[(seed >> 8) % (sizeof values / sizeof *values)];
                                in[m] = (StoreAgg) { v, v, v, v };
                        } else
                                for (int k = 0; k < 4; k++) {
                                        seed = seed * 1103515245u + 12345u;
                                        ((double *) &in[m])[k] = values[(seed >> 8) % (sizeof values / sizeof *values)];
                                }
                }
                len = store_encode_aggs(in, blob);
                ck_assert_uint_le(len, STORE_BLOB_MAX);
                ck_assert_int_eq(store_decode_aggs(blob, len, out), 0);
                for (int m = 0; m < _HISTORY_METRIC_MAX; m++) {
                        ck_assert(same(in[m].min, out[m].min) && same(in[m].max, out[m].max) &&
                                  same(in[m].last, out[m].last));
                        /* Whole-number buckets keep their mean to 1/16 of a unit; others exactly. */
                        ck_assert_msg(same(in[m].mean, out[m].mean) || fabs(in[m].mean - out[m].mean) <= 1 / 32.0,
                                      "mean %.17g came back as %.17g", in[m].mean, out[m].mean);
                }
                /* every strict prefix is refused, never read past */
                for (size_t cut = 0; cut < len; cut += 7)
                        ck_assert_int_eq(store_decode_aggs(blob, cut, out), -EBADMSG);
        }
        /* constant whole-number metrics cost two bytes each */
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++)
                in[m] = (StoreAgg) { 3, 3, 3, 3 };
        ck_assert_uint_eq(store_encode_aggs(in, blob), 1 + 2 * _HISTORY_METRIC_MAX);

        /* a byte counter moving a little within a bucket: a few bytes, not 32 */
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++)
                in[m] = (StoreAgg) { 123456789, 123459789, 123457000.3, 123459000 };
        len = store_encode_aggs(in, blob);
        ck_assert_uint_le(len, 1 + 11 * _HISTORY_METRIC_MAX);
        ck_assert_int_eq(store_decode_aggs(blob, len, out), 0);
        ck_assert(out[0].min == 123456789 && out[0].max == 123459789 && out[0].last == 123459000);
        ck_assert(fabs(out[0].mean - 123457000.3) <= 1 / 32.0);
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++)
                in[m] = (StoreAgg) { 3, 3, 3, 3 };

        /* damage: unknown tag bits, trailing bytes, an endless varint */
        len = store_encode_aggs(in, blob);
        blob[1] |= 0x40;
        ck_assert_int_eq(store_decode_aggs(blob, len, out), -EBADMSG);
        len = store_encode_aggs(in, blob);
        blob[len] = 0;
        ck_assert_int_eq(store_decode_aggs(blob, len + 1, out), -EBADMSG);
        {
                uint8_t endless[20] = { 1, 0x81 };
                memset(endless + 2, 0xff, sizeof endless - 2);
                ck_assert_int_eq(store_decode_aggs(endless, sizeof endless, out), -EBADMSG);
        }
        ck_assert_int_eq(store_decode_aggs(NULL, 0, out), -EBADMSG);
        /* a row from a daemon with fewer metrics: the missing ones are NAN */
        {
                uint8_t old[] = { 1, 0x81, 0x0a };
                ck_assert_int_eq(store_decode_aggs(old, sizeof old, out), 0);
                ck_assert(out[0].min == 5 && out[0].last == 5);
                ck_assert(isnan(out[1].mean));
        }
}
END_TEST

/* --- a week of history ------------------------------------------------------------------------ */

typedef struct Rows {
        size_t n;
        double first, last;
        double t[64];
        uint32_t count[64];
        StoreAgg rss[64];
} Rows;

static int collect(void *userdata, double t, uint32_t n, const StoreAgg aggs[_HISTORY_METRIC_MAX]) {
        Rows *r = userdata;
        if (r->n == 0)
                r->first = t;
        r->last = t;
        if (r->n < 64) {
                r->t[r->n] = t;
                r->count[r->n] = n;
                r->rss[r->n] = aggs[HISTORY_RSS_BYTES];
        }
        r->n++;
        return 0;
}

static size_t count_rows(Store *s, const char *id, size_t tier, double from, double to, Rows *ret) {
        size_t n = 0;
        memset(ret, 0, sizeof *ret);
        ck_assert_int_eq(store_read(s, id, tier, from, to, 1000000, collect, ret, &n), 0);
        ck_assert_uint_eq(n, ret->n);
        return n;
}

/* A sawtooth on a slow climb: each 60 s the value drops back (a GC), so min/max/mean/last of a
 * bucket differ and are known exactly. */
static double rss_at(double t) {
        double rel = t - T0;
        return 100e6 + floor(rel / 3600) * 1000 + fmod(rel, 60) * 10;
}

START_TEST(test_week_of_history) {
        const double step = 5, week = 7 * 86400;
        StoreConfig c;
        Store *s;
        StoreSeries *ss;
        StoreProcessInfo info = { .pid = 42, .uid = 1000, .samples = 0 };
        Rows rows;
        double now = T0, cutoff;
        int r = 0;

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(store_is_available(s));
        ck_assert_int_eq(store_series_get(s, "42-4200", &ss), 0);
        snprintf(info.service, sizeof info.service, "billing");
        snprintf(info.argv_json, sizeof info.argv_json, "[\"python3\",\"app.py\"]");
        snprintf(info.leak_verdict, sizeof info.leak_verdict, "none");
        store_series_set_info(s, ss, &info);

        /* Through the ingest path's own calls: add, and flush every 60 s of synthetic time in
         * the daemon's slices (200 rows, a budget); maintenance every 10 minutes. */
        for (now = T0; now < T0 + week; now += step) {
                HistoryPoint p = point_at(now, rss_at(now));
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
                if (fmod(now - T0, 60) == 55)
                        while ((r = store_flush(s, now, 200, 0.005)) == 0)
                                ;
                if (fmod(now - T0, 600) == 595)
                        while (store_maintain(s, now, 32) > 0)
                                ;
                ck_assert_int_ge(r, 0);
        }
        now -= step;
        while (store_flush(s, now, 200, 0) == 0)
                ;
        /* A full retention pass at the end of the week. */
        while (store_maintain(s, now + 61, 32) > 0)
                ;

        /* tier 0 (10 s) keeps 2 days: every bucket from the cutoff on, two samples each */
        cutoff = now + 61 - 2 * 86400;
        ck_assert_uint_eq(count_rows(s, "42-4200", 0, T0, T0 + week, &rows),
                          (size_t) ((T0 + week - 10 - ceil(cutoff / 10) * 10) / 10) + 1);
        ck_assert(rows.first == ceil(cutoff / 10) * 10);
        ck_assert(rows.last == T0 + week - 10);
        ck_assert_uint_eq(rows.count[0], 2);
        /* tier 1 (1 min) keeps the whole week: 10080 buckets of 12 samples */
        ck_assert_uint_eq(count_rows(s, "42-4200", 1, T0, T0 + week, &rows), week / 60);
        ck_assert(rows.first == T0);
        ck_assert_uint_eq(rows.count[0], 12);
        /* ...the sawtooth: 0..55 s of the first minute: min 100e6, max +550, mean +275, last +550 */
        ck_assert(rows.rss[0].min == 100e6 && rows.rss[0].max == 100e6 + 550 && rows.rss[0].mean == 100e6 + 275 &&
                  rows.rss[0].last == 100e6 + 550);
        /* tier 2 (10 min): 1008 buckets of 120 samples; the second hour's floor is +1000 */
        ck_assert_uint_eq(count_rows(s, "42-4200", 2, T0, T0 + week, &rows), week / 600);
        ck_assert_uint_eq(rows.count[0], 120);
        ck_assert(rows.rss[6].min == 100e6 + 1000 && rows.rss[6].max == 100e6 + 1550);
        /* a range inside one tier */
        ck_assert_uint_eq(count_rows(s, "42-4200", 2, T0 + 86400, T0 + 86400 + 3599, &rows), 6);
        ck_assert(rows.first == T0 + 86400);
        {
                double first, last;
                ck_assert_int_eq(store_span(s, "42-4200", 1, &first, &last), 0);
                ck_assert(first == T0 && last == T0 + week - 60);
                ck_assert_int_eq(store_span(s, "nope-1", 1, &first, &last), -ENOENT);
        }
        /* the process row */
        {
                StoreProcessInfo got;
                ck_assert_int_eq(store_get_process(s, "42-4200", &got), 0);
                ck_assert_str_eq(got.service, "billing");
                ck_assert_int_eq(store_get_process(s, "43-1", &got), -ENOENT);
        }
        ck_assert_int_eq(store_read(s, "nope-1", 0, 0, 1, 10, collect, &rows, NULL), -ENOENT);
        ck_assert_int_eq(store_read(s, "42-4200", 3, 0, 1, 10, collect, &rows, NULL), -EINVAL);
        ck_assert_int_eq(store_read(s, "42-4200", 0, 2, 1, 10, collect, &rows, NULL), -EINVAL);
        store_series_release(s, ss);
        store_free(s);

        /* Reopened (a restart): the same rows, read by a fresh connection. */
        ck_assert_int_eq(store_open(&c, now, &s), 0);
        ck_assert_uint_eq(count_rows(s, "42-4200", 1, T0, T0 + week, &rows), week / 60);
        store_free(s);
}
END_TEST

/* --- restart extends the open bucket ---------------------------------------------------------- */

START_TEST(test_reopen_extends_bucket) {
        StoreConfig c;
        Store *s;
        StoreSeries *ss;
        Rows rows;

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "1-1", &ss), 0);
        for (int i = 0; i < 3; i++) {
                HistoryPoint p = point_at(T0 + i, 1000 + i);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        ck_assert_int_eq(store_flush(s, T0 + 3, 200, 0), 1);
        store_free(s);

        ck_assert_int_eq(store_open(&c, T0 + 5, &s), 0);
        ck_assert_int_eq(store_series_get(s, "1-1", &ss), 0);
        for (int i = 5; i < 7; i++) {
                HistoryPoint p = point_at(T0 + i, 900 + i);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        ck_assert_int_eq(store_flush(s, T0 + 7, 200, 0), 1);
        ck_assert_uint_eq(count_rows(s, "1-1", 0, T0, T0 + 10, &rows), 1);
        ck_assert_uint_eq(rows.count[0], 5);
        ck_assert(rows.rss[0].min == 905 && rows.rss[0].max == 1002 && rows.rss[0].last == 906);
        ck_assert(fabs(rows.rss[0].mean - (1000 + 1001 + 1002 + 905 + 906) / 5.0) <= 1 / 32.0); /* 1/16 of a unit */
        store_free(s);
}
END_TEST

/* --- a crash loses only what was not flushed -------------------------------------------------- */

START_TEST(test_crash_keeps_flushed) {
        StoreConfig c;
        Store *s;
        Rows rows;
        pid_t child;
        int status;

        config_in(&c, tmpdir);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                StoreSeries *ss;
                if (store_open(&c, T0, &s) < 0 || store_series_get(s, "7-7", &ss) < 0)
                        _exit(1);
                for (int i = 0; i < 100; i++) {
                        HistoryPoint p = point_at(T0 + i, 1e6 + i);
                        store_series_add(s, ss, &p);
                }
                if (store_flush(s, T0 + 100, 200, 0) != 1)
                        _exit(2);
                for (int i = 100; i < 200; i++) {
                        HistoryPoint p = point_at(T0 + i, 1e6 + i);
                        store_series_add(s, ss, &p);
                }
                raise(SIGKILL); /* no close, no final flush */
                _exit(3);
        }
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        ck_assert_int_eq(store_open(&c, T0 + 300, &s), 0);
        ck_assert(store_is_available(s));
        /* every 10 s bucket up to the flush, the last one with the samples it had then */
        ck_assert_uint_eq(count_rows(s, "7-7", 0, T0, T0 + 1000, &rows), 10);
        ck_assert(rows.last == T0 + 90);
        ck_assert(rows.rss[9].last == 1e6 + 99);
        store_free(s);
}
END_TEST

/* --- damage ----------------------------------------------------------------------------------- */

static size_t count_files(const char *dir, const char *prefix) {
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n = 0;

        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)))
                if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
                        n++;
        closedir(d);
        return n;
}

START_TEST(test_garbage_moved_aside) {
        char path[300], garbage[8192];
        StoreConfig c;
        StoreStats st;
        Store *s;
        StoreSeries *ss;
        Rows rows;
        int fd;

        config_in(&c, tmpdir);
        snprintf(path, sizeof path, "%s/history.db", tmpdir);
        for (size_t i = 0; i < sizeof garbage; i++)
                garbage[i] = (char) (i * 7 + 3);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, garbage, sizeof garbage), (ssize_t) sizeof garbage);
        close(fd);

        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(store_is_available(s));
        store_get_stats(s, &st);
        ck_assert_uint_eq(st.moved_aside_total, 1);
        ck_assert_uint_eq(count_files(tmpdir, "history.db.corrupt-"), 1);
        /* and the fresh database works */
        ck_assert_int_eq(store_series_get(s, "1-1", &ss), 0);
        {
                HistoryPoint p = point_at(T0, 1);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        ck_assert_int_eq(store_flush(s, T0, 200, 0), 1);
        ck_assert_uint_eq(count_rows(s, "1-1", 0, T0 - 10, T0 + 10, &rows), 1);
        store_free(s);
}
END_TEST

START_TEST(test_damaged_page_moved_aside) {
        char path[300];
        StoreConfig c;
        StoreStats st;
        Store *s;
        StoreSeries *ss;
        struct stat sb;
        int fd;

        /* A real database with many pages, then a page in the middle overwritten. */
        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "1-1", &ss), 0);
        for (int i = 0; i < 20000; i++) {
                HistoryPoint p = point_at(T0 + i * 10, 1e6 + (i % 977) * 13.7);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        while (store_flush(s, T0, 200, 0) == 0)
                ;
        store_free(s);
        snprintf(path, sizeof path, "%s/history.db", tmpdir);
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_int_gt(sb.st_size, 20 * 4096);
        fd = open(path, O_WRONLY);
        ck_assert_int_ge(fd, 0);
        {
                char junk[4096];
                memset(junk, 0xa5, sizeof junk);
                ck_assert_int_eq(pwrite(fd, junk, sizeof junk, (off_t) (sb.st_size / 4096 / 2) * 4096),
                                 (ssize_t) sizeof junk);
        }
        close(fd);

        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(store_is_available(s));
        store_get_stats(s, &st);
        ck_assert_uint_eq(st.moved_aside_total, 1);
        store_free(s);
}
END_TEST

/* A history.db in tmpdir made by sql, as another program (or version) left it; its path. */
static const char *database_made_by(const char *sql) {
        static char path[300];
        sqlite3 *db;

        snprintf(path, sizeof path, "%s/history.db", tmpdir);
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        return path;
}

/* The store opens over the file made by sql, is not available, and leaves the file exactly as
 * it was: not moved aside, not grown, not even switched to WAL (header bytes 18 and 19: 1 for a
 * rollback journal, 2 WAL). */
static void assert_file_left_alone(const char *sql) {
        const char *path = database_made_by(sql);
        unsigned char header[20];
        struct stat before, after;
        StoreConfig c;
        Store *s;
        FILE *f;

        ck_assert_int_eq(stat(path, &before), 0);
        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(!store_is_available(s));
        store_free(s);
        ck_assert_int_eq(stat(path, &after), 0);
        ck_assert_uint_eq(count_files(tmpdir, "history.db.corrupt-"), 0);
        ck_assert_int_eq(after.st_size, before.st_size);
        f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fread(header, 1, sizeof header, f), sizeof header);
        fclose(f);
        ck_assert_uint_eq(header[18], 1);
        ck_assert_uint_eq(header[19], 1);
}

START_TEST(test_newer_schema_left_alone) {
        assert_file_left_alone("CREATE TABLE future(x); PRAGMA user_version=99;");
}
END_TEST

/* Our tables without user_version (restored with `sqlite3 .dump`): left alone and said so, not
 * migrated from 0 into "table already exists" (an I/O error, retried for good). */
START_TEST(test_tables_without_a_version_left_alone) {
        assert_file_left_alone("CREATE TABLE processes(key INTEGER PRIMARY KEY, id TEXT);"
                               "INSERT INTO processes VALUES (1, '42-1');");
}
END_TEST

/* A history file we may not write, on a file system that is not read-only: the log says
 * "Permission denied", not "Read-only file system" (SQLite's SQLITE_READONLY covers both; the
 * latter sent operators looking at mounts). Root writes through modes: the store runs as nobody
 * in a child. */
START_TEST(test_file_we_may_not_write_is_permission_denied) {
        const char *path = database_made_by("CREATE TABLE x(y);");
        char log_path[128], out[4096] = "";
        int st, fd;
        pid_t pid;

        if (geteuid() != 0) {
                fprintf(stderr, "test_file_we_may_not_write_is_permission_denied: not root, skipped\n");
                return;
        }
        ck_assert_int_eq(chmod(path, 0444), 0);
        ck_assert_int_eq(chmod(tmpdir, 0777), 0);
        snprintf(log_path, sizeof log_path, "%s.log", tmpdir);
        fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                StoreConfig c;
                Store *s;

                if (dup2(fd, STDERR_FILENO) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                config_in(&c, tmpdir);
                if (store_open(&c, T0, &s) < 0)
                        _exit(3);
                _exit(store_is_available(s) ? 4 : 0);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
        ck_assert_int_ge(pread(fd, out, sizeof out - 1, 0), 0);
        close(fd);
        unlink(log_path);
        ck_assert_msg(strstr(out, "Permission denied") && !strstr(out, "Read-only file system"), "log: %s", out);
}
END_TEST

/* --- an unusable directory, then usable again ------------------------------------------------- */

START_TEST(test_unavailable_then_back) {
        char blocker[128], dir[160];
        StoreConfig c;
        StoreStats st;
        Store *s;
        StoreSeries *ss;
        Rows rows;
        int fd;

        /* The state directory's parent is a regular file: nothing can be created there. */
        snprintf(blocker, sizeof blocker, "%s/blocker", tmpdir);
        snprintf(dir, sizeof dir, "%s/state", blocker);
        fd = open(blocker, O_WRONLY | O_CREAT, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        config_in(&c, dir);
        c.pending_max_rows = 50;
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(!store_is_available(s));
        ck_assert_int_eq(store_series_get(s, "3-3", &ss), 0);
        /* 300 s at 1 Hz: 30 closed 10 s buckets, 5 of 1 min, none of 10 min; then more, past
         * the queue's bound */
        for (int i = 0; i < 1200; i++) {
                HistoryPoint p = point_at(T0 + i, 1000 + i);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        ck_assert_int_eq(store_flush(s, T0 + 1200, 200, 0), -EAGAIN);
        store_get_stats(s, &st);
        ck_assert(!st.available);
        ck_assert_uint_eq(st.pending_rows, 50);
        ck_assert_uint_eq(st.rows_dropped_total, 119 + 19 + 1 - 50);

        /* The directory becomes usable; the retry happens on a later flush. */
        ck_assert_int_eq(unlink(blocker), 0);
        ck_assert_int_eq(mkdir(blocker, 0700), 0);
        ck_assert_int_eq(store_flush(s, T0 + 1201, 200, 0), -EAGAIN); /* too soon to retry */
        ck_assert_int_eq(store_flush(s, T0 + 1300, 200, 0), 1);
        store_get_stats(s, &st);
        ck_assert(st.available);
        ck_assert_uint_eq(st.pending_rows, 0);
        /* the newest 10 s buckets survived the queue's bound, oldest dropped first */
        ck_assert_uint_gt(count_rows(s, "3-3", 0, T0, T0 + 1200, &rows), 30);
        ck_assert(rows.last == T0 + 1190);
        ck_assert(rows.first > T0);
        store_free(s);
}
END_TEST

/* While unavailable, ended processes' unwritten buckets are held only up to a bound. */
START_TEST(test_released_bounded_while_unavailable) {
        char blocker[128], dir[160];
        StoreConfig c;
        StoreStats st;
        Store *s;
        int fd;

        snprintf(blocker, sizeof blocker, "%s/blocker", tmpdir);
        snprintf(dir, sizeof dir, "%s/state", blocker);
        fd = open(blocker, O_WRONLY | O_CREAT, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        config_in(&c, dir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(!store_is_available(s));
        for (int k = 0; k < 5000; k++) {
                char id[32];
                StoreSeries *ss;
                HistoryPoint p = point_at(T0 + k, 1);
                snprintf(id, sizeof id, "%d-1", k + 1);
                ck_assert_int_eq(store_series_get(s, id, &ss), 0);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
                store_series_release(s, ss);
        }
        store_get_stats(s, &st);
        /* 4096 kept with their open bucket in each of 3 tiers; the rest dropped, counted */
        ck_assert_uint_eq(st.rows_dropped_total, (5000 - 4096) * 3);
        store_free(s);
}
END_TEST

/* --- disk budget ------------------------------------------------------------------------------ */

START_TEST(test_disk_budget) {
        StoreConfig c;
        StoreStats st;
        Store *s;
        Rows before, after;
        char id[32];
        double now = T0 + 3 * 86400;

        config_in(&c, tmpdir);
        c.max_disk_bytes = 1024 * 1024;
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        /* 10 processes, three days at 5 s: several MiB unthinned */
        for (int k = 0; k < 10; k++) {
                StoreSeries *ss;
                snprintf(id, sizeof id, "%d-1", 100 + k);
                ck_assert_int_eq(store_series_get(s, id, &ss), 0);
                for (double t = T0; t < now; t += 5) {
                        HistoryPoint p = point_at(t, 1e8 + fmod(t * 7919, 1e5) + k);
                        ck_assert_int_eq(store_series_add(s, ss, &p), 0);
                }
                while (store_flush(s, now, 200, 0) == 0)
                        ;
        }
        count_rows(s, "100-1", 1, 0, now, &before);
        /* Step by step, as the daemon's timer does, until there is nothing left to do. */
        {
                int r = store_maintain(s, now, 256), i;
                store_get_stats(s, &st);
                ck_assert_uint_gt(st.disk_bytes, 4 * c.max_disk_bytes);
                for (i = 0; i < 20000 && (r = store_maintain(s, now, 256)) > 0; i++)
                        ;
                ck_assert_int_eq(r, 0);
        }
        store_get_stats(s, &st);
        ck_assert_msg(st.budget_factor < 1, "budget factor %g", st.budget_factor);
        ck_assert_msg(st.used_bytes <= c.max_disk_bytes, "used %llu", (unsigned long long) st.used_bytes);
        ck_assert_uint_gt(st.rows_deleted_total, 0);
        ck_assert_uint_gt(st.pages_vacuumed_total, 0);
        /* oldest first: the tier lost its beginning, kept its end */
        count_rows(s, "100-1", 1, 0, now, &after);
        ck_assert(after.first > before.first);
        ck_assert(after.last == before.last);
        /* the budget lifted by a reload: every tier keeps its whole retention again at once
         * (the share it had shrunk to stayed until a restart) */
        c.max_disk_bytes = 0;
        ck_assert_int_eq(store_set_retention(s, &c), 0);
        store_get_stats(s, &st);
        ck_assert_double_eq(st.budget_factor, 1.0);
        store_free(s);
}
END_TEST

/* Rows past their retention go a bounded number per step (each step is a transaction the event
 * loop waits for: one process's day of 10 s rows went in one), oldest first, all of them in the
 * end. */
START_TEST(test_retention_in_bounded_steps) {
        StoreConfig c;
        StoreStats st;
        StoreSeries *ss;
        Store *s;
        Rows rows;
        double now = T0 + 3 * 86400;
        uint64_t before;
        int r, steps = 0;

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "100-1", &ss), 0);
        for (double t = T0; t < now; t += 10) {
                HistoryPoint p = point_at(t, 1e8 + t - T0);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        while (store_flush(s, now, 200, 0) == 0)
                ;
        /* tier 0 keeps 2 days: the first day's 8640 rows have aged out */
        store_get_stats(s, &st);
        before = st.rows_deleted_total;
        ck_assert_int_eq(store_maintain(s, now, 0), 1);
        store_get_stats(s, &st);
        ck_assert_uint_gt(st.rows_deleted_total - before, 0);
        ck_assert_uint_le(st.rows_deleted_total - before, 4096);
        while ((r = store_maintain(s, now, 0)) > 0 && steps < 100)
                steps++;
        ck_assert_int_eq(r, 0);
        count_rows(s, "100-1", 0, 0, now, &rows);
        ck_assert_double_ge(rows.first, now - 2 * 86400);
        store_free(s);
}
END_TEST

/* A history.db deleted (or replaced) under the daemon: the open connection went on writing to
 * the unlinked file, everything after it lost at the next restart, nothing said. The next
 * housekeeping step notices and goes on with the file at that path. */
START_TEST(test_deleted_database_reopened) {
        char path[300];
        StoreConfig c;
        StoreStats st;
        StoreSeries *ss;
        Store *s;
        Rows rows;
        const char *suffixes[] = { "", "-wal", "-shm" };

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "100-1", &ss), 0);
        for (double t = T0; t < T0 + 60; t += 10) {
                HistoryPoint p = point_at(t, 1e8);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        while (store_flush(s, T0 + 60, 200, 0) == 0)
                ;
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
                snprintf(path, sizeof path, "%s/history.db%s", tmpdir, suffixes[i]);
                (void) unlink(path);
        }
        (void) store_maintain(s, T0 + 60, 0);
        store_get_stats(s, &st);
        ck_assert_uint_eq(st.reopened_total, 1);
        ck_assert(store_is_available(s));
        snprintf(path, sizeof path, "%s/history.db", tmpdir);
        ck_assert_int_eq(access(path, F_OK), 0);
        /* what comes next is written to the file at the path */
        for (double t = T0 + 60; t < T0 + 120; t += 10) {
                HistoryPoint p = point_at(t, 1e8);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        while (store_flush(s, T0 + 120, 200, 0) == 0)
                ;
        ck_assert_uint_gt(count_rows(s, "100-1", 0, T0 + 60, T0 + 120, &rows), 0);
        (void) store_maintain(s, T0 + 120, 0); /* the same file: nothing to do */
        store_get_stats(s, &st);
        ck_assert_uint_eq(st.reopened_total, 1);
        store_free(s);
}
END_TEST

/* A file rebuilt without auto_vacuum (sqlite3 .recover) cannot give pages back: housekeeping
 * must not ask for it again and again (it came back every 20 ms for ever). */
START_TEST(test_no_incremental_vacuum_without_auto_vacuum) {
        StoreConfig c;
        StoreStats st;
        Store *s;
        int r = 1, steps = 0;

        database_made_by("PRAGMA auto_vacuum=NONE; CREATE TABLE filler(x);"
                         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
                         " INSERT INTO filler SELECT randomblob(1000) FROM n; DELETE FROM filler;");
        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(store_is_available(s));
        while (steps < 100 && (r = store_maintain(s, T0, 32)) > 0)
                steps++;
        ck_assert_int_eq(r, 0);
        store_get_stats(s, &st);
        ck_assert_uint_eq(st.pages_vacuumed_total, 0);
        store_free(s);
}
END_TEST

/* --- leak detection resumes from stored floors ------------------------------------------------ */

START_TEST(test_leak_resume) {
        DetectConfig dc;
        ProcessLeaks fresh, resumed;
        StoreConfig c;
        Store *s;
        StoreSeries *ss;
        LeakResume *lr;
        double now = T0 + 6 * 3600;
        size_t fed = 0;
        int r;

        detect_config_default(&dc);
        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "9-9", &ss), 0);
        /* Six hours of a 20 MiB/h leak under a GC sawtooth, stored. */
        for (double t = T0; t < now; t += 5) {
                HistoryPoint p = point_at(t, 200e6 + (t - T0) * 20 * 1048576 / 3600 + fmod(t, 60) * 1e5);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        while (store_flush(s, now, 200, 0) == 0)
                ;

        /* A fresh detector after a restart knows nothing... */
        ck_assert_int_eq(process_leaks_init(&fresh, &dc), 0);
        ck_assert_int_eq(process_leaks_verdict(&fresh), VERDICT_NONE);
        /* ...the resumed one is fed the stored floor and reaches the verdict. */
        ck_assert_int_eq(process_leaks_init(&resumed, &dc), 0);
        ck_assert_int_eq(leak_resume_new(s, "9-9", now, dc.max_horizon_seconds, &lr), 0);
        ck_assert_ptr_nonnull(lr);
        /* thinned: the last two hours at one point a minute, older ones coarser */
        ck_assert_uint_lt(leak_resume_remaining(lr), 6 * 60);
        ck_assert_uint_gt(leak_resume_remaining(lr), 120);
        {
                HwSample live = { .time = now + 1, .rss_bytes = (int64_t) 320e6, .python_allocated_blocks = 1 };
                ck_assert_int_eq(leak_resume_queue(lr, &live), 0);
        }
        while ((r = leak_resume_step(lr, &resumed, 8e9, 16, &fed, NULL, NULL)) == 0)
                ;
        ck_assert_int_eq(r, 1);
        ck_assert_uint_gt(fed, 120);
        ck_assert_int_eq(process_leaks_verdict(&resumed), VERDICT_LEAK);
        ck_assert(resumed.current.growth_bytes_per_second > 20 * 1048576 / 3600.0 * 0.8);
        ck_assert(resumed.current.growth_bytes_per_second < 20 * 1048576 / 3600.0 * 1.2);
        leak_resume_free(lr);
        /* nothing stored: nothing to resume */
        ck_assert_int_eq(leak_resume_new(s, "8-8", now, dc.max_horizon_seconds, &lr), 0);
        ck_assert_ptr_null(lr);
        process_leaks_done(&fresh);
        process_leaks_done(&resumed);
        store_free(s);
}
END_TEST

/* Replays of several processes share one budget per slice; a slice that runs out before it
 * visited every process must still say there is more (else the timer stops and a process never
 * resumes: a bug the ASan e2e run found by ordering chance). */
START_TEST(test_resume_budget_across_processes) {
        RegistryLimits rl = { .max_processes = 8, .history_capacity = 16 };
        StoreConfig c;
        Store *s;
        Registry *reg;
        int rounds = 0, r;

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        reg = registry_new(&rl);
        ck_assert_ptr_nonnull(reg);
        registry_set_store(reg, s, persist_on_free, s);
        for (int k = 0; k < 3; k++) {
                char id[PROCESS_ID_MAX];
                HwHello h = { .protocol = 1, .pid = 100 + k };
                StoreSeries *ss;
                Process *p;

                process_id_format(id, 100 + k, 1);
                ck_assert_int_eq(store_series_get(s, id, &ss), 0);
                for (int i = 0; i < 120; i++) {
                        HistoryPoint pt = point_at(T0 + i, 1e6);
                        ck_assert_int_eq(store_series_add(s, ss, &pt), 0);
                }
                h.argv = calloc(1, sizeof(char *));
                ck_assert_int_eq(registry_attach(reg, id, 100 + k, 0, 0, 1, 1, T0, &h, T0, &p), 0);
                hw_hello_done(&h);
                p->stored = ss;
        }
        while (store_flush(s, T0 + 120, 200, 0) == 0)
                ;
        for (size_t i = 0; i < registry_count(reg); i++) {
                Process *p = registry_at(reg, i);
                ck_assert_int_eq(leak_resume_new(s, p->id, T0 + 120, 7 * 86400, &p->resume), 0);
                ck_assert_ptr_nonnull(p->resume);
                ck_assert_uint_eq(leak_resume_remaining(p->resume), 2); /* two 1-min buckets */
        }
        /* 4 points a slice: two processes, then the third in the next slice. */
        while ((r = persist_resume_step(reg, -1, 4, NULL)) > 0)
                ck_assert_int_lt(++rounds, 10);
        ck_assert_int_eq(rounds, 1);
        for (size_t i = 0; i < registry_count(reg); i++)
                ck_assert_ptr_null(registry_at(reg, i)->resume);
        registry_free(reg);
        store_free(s);
}
END_TEST

static unsigned live_events_opened, live_events_other;

static void count_live_event(Process *p, LeakEvent event) {
        (void) p;
        if (event == LEAK_EVENT_OPENED)
                live_events_opened++;
        else
                live_events_other++;
}

/* Live samples that arrive while stored history is replayed queue behind it; what they do to
 * the finding happened now, and is reported (a finding opened then was neither logged nor
 * counted). */
START_TEST(test_resume_reports_live_events) {
        RegistryLimits rl = { .max_processes = 8, .history_capacity = 16 };
        HwHello h = { .protocol = 1, .pid = 100 };
        char id[PROCESS_ID_MAX];
        StoreConfig c;
        StoreSeries *ss;
        Store *s;
        Registry *reg;
        Process *p;
        double rss = 100e6;
        int rounds = 0;

        detect_config_default(&rl.detect);
        rl.detect.window_seconds = 1; /* test time: minutes become seconds */
        rl.detect.min_horizon_seconds = 30;
        rl.detect.max_horizon_seconds = 600;
        rl.detect.min_growth_relative_per_hour = 0.5;
        rl.detect.min_growth_absolute_per_hour = 0;
        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        reg = registry_new(&rl);
        ck_assert_ptr_nonnull(reg);
        registry_set_store(reg, s, persist_on_free, s);
        process_id_format(id, 100, 1);
        ck_assert_int_eq(store_series_get(s, id, &ss), 0);
        for (int i = 0; i < 120; i++) { /* flat history */
                HistoryPoint pt = point_at(T0 + i, 100e6);
                ck_assert_int_eq(store_series_add(s, ss, &pt), 0);
        }
        while (store_flush(s, T0 + 120, 200, 0) == 0)
                ;
        h.argv = calloc(1, sizeof(char *));
        ck_assert_int_eq(registry_attach(reg, id, 100, 0, 0, 1, 1, T0, &h, T0, &p), 0);
        hw_hello_done(&h);
        p->stored = ss;
        ck_assert_int_eq(leak_resume_new(s, id, T0 + 120, 7 * 86400, &p->resume), 0);
        ck_assert_ptr_nonnull(p->resume);
        /* then two minutes of steep growth arrive live, before the replay ran */
        for (double t = T0 + 120; t < T0 + 240; t += 0.1) {
                HwSample smp = { .time = t, .rss_bytes = (int64_t) (rss += 0.1e6), .python_allocated_blocks = 50000,
                                 .cgroup_memory_max_bytes = -1, .cgroup_limit_usage_bytes = -1 };
                ck_assert_int_eq(leak_resume_queue(p->resume, &smp), 0);
        }
        live_events_opened = live_events_other = 0;
        while (persist_resume_step(reg, 8e9, 64, count_live_event) > 0)
                ck_assert_int_lt(++rounds, 1000);
        ck_assert(p->leaks.current.open);
        ck_assert_uint_eq(live_events_opened, 1);
        registry_free(reg);
        store_free(s);
}
END_TEST

/* --- censuses --------------------------------------------------------------------------------- */

/* A census at t: `handlers` app.Handler objects, a constant number of dicts, and `extra` more
 * types to fill the record. */
static CensusRecord *census_at(double t, uint32_t id, uint64_t handlers, size_t extra) {
        CensusRecord *r = calloc(1, sizeof *r);

        ck_assert_ptr_nonnull(r);
        r->id = id;
        r->time = t;
        r->duration_seconds = 0.2;
        r->gil_seconds = 0.04;
        r->budget_seconds = 0.05;
        r->slices = 4;
        r->complete = r->consistent = true;
        r->fraction = 1;
        r->objects = 100000 + handlers;
        r->types_total = 300;
        snprintf(r->types[0].name, sizeof r->types[0].name, "app.Handler");
        r->types[0].count = handlers;
        r->types[0].size_bytes = handlers * 48;
        snprintf(r->types[1].name, sizeof r->types[1].name, "dict");
        r->types[1].count = 5000;
        r->types[1].size_bytes = 5000 * 232;
        r->n_types = 2;
        for (size_t i = 0; i < extra && r->n_types < CENSUS_TYPES_MAX; i++, r->n_types++) {
                snprintf(r->types[r->n_types].name, sizeof r->types[0].name, "mod%zu.Type%zu", i, i);
                r->types[r->n_types].count = 100 - i;
                r->types[r->n_types].size_bytes = (100 - i) * 64;
        }
        return r;
}

START_TEST(test_census_blob) {
        uint8_t blob[STORE_CENSUS_BLOB_MAX], bad[16];
        CensusType *out = calloc(CENSUS_TYPES_MAX, sizeof *out);
        CensusRecord *r = census_at(T0, 1, 123456789012ULL, CENSUS_TYPES_MAX);
        size_t len, n = 0;

        /* the longest names and largest counts fit the bound */
        memset(r->types[5].name, 'x', HW_CENSUS_TYPE_NAME_MAX);
        r->types[5].name[HW_CENSUS_TYPE_NAME_MAX] = 0;
        r->types[6].count = UINT64_MAX;
        len = store_encode_census_types(r->types, r->n_types, blob);
        ck_assert_uint_le(len, STORE_CENSUS_BLOB_MAX);
        ck_assert_int_eq(store_decode_census_types(blob, len, out, &n), 0);
        ck_assert_uint_eq(n, CENSUS_TYPES_MAX);
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(out[i].name, r->types[i].name);
                ck_assert_uint_eq(out[i].count, r->types[i].count);
                ck_assert_uint_eq(out[i].size_bytes, r->types[i].size_bytes);
        }
        /* none */
        ck_assert_int_eq(store_decode_census_types(blob, 0, out, &n), 0);
        ck_assert_uint_eq(n, 0);
        /* every truncation is refused, or decodes to fewer whole types */
        for (size_t cut = 1; cut < 40; cut++) {
                int r2 = store_decode_census_types(blob, cut, out, &n);
                ck_assert(r2 == -EBADMSG || (r2 == 0 && n < CENSUS_TYPES_MAX));
        }
        /* a name longer than the protocol allows */
        bad[0] = 0x81;
        bad[1] = 0x02; /* 257 */
        ck_assert_int_eq(store_decode_census_types(bad, 2, out, &n), -EBADMSG);
        /* a NUL inside a name */
        memcpy(bad, "\x03" "a\0b" "\x01\x01", 6);
        ck_assert_int_eq(store_decode_census_types(bad, 6, out, &n), -EBADMSG);
        /* a varint that never ends */
        memcpy(bad, "\x01" "a" "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 13);
        ck_assert_int_eq(store_decode_census_types(bad, 13, out, &n), -EBADMSG);
        /* more types than a record holds */
        {
                uint8_t *many = malloc((CENSUS_TYPES_MAX + 1) * 4);
                for (size_t i = 0; i <= CENSUS_TYPES_MAX; i++)
                        memcpy(many + 4 * i, "\x01" "t" "\x01\x01", 4);
                ck_assert_int_eq(store_decode_census_types(many, (CENSUS_TYPES_MAX + 1) * 4, out, &n), -EBADMSG);
                ck_assert_int_eq(store_decode_census_types(many, CENSUS_TYPES_MAX * 4, out, &n), 0);
                ck_assert_uint_eq(n, CENSUS_TYPES_MAX);
                free(many);
        }
        free(r);
        free(out);
}
END_TEST

typedef struct Collected {
        double time[64], since[64];
        uint32_t id[64];
        uint64_t handlers[64];
        size_t n_types[64];
        size_t n;
} Collected;

static int collect_census(void *userdata, const CensusRecord *r, double finding_since) {
        Collected *c = userdata;

        ck_assert_uint_lt(c->n, 64);
        c->time[c->n] = r->time;
        c->since[c->n] = finding_since;
        c->id[c->n] = r->id;
        c->handlers[c->n] = r->types[0].count;
        c->n_types[c->n] = r->n_types;
        c->n++;
        return 0;
}

/* 30 censuses a minute apart; a finding opens at the 5th (its baseline) and stays open. */
static void store_thirty(Store *s, StoreSeries *ss) {
        for (int i = 0; i < 30; i++) {
                CensusRecord *r = census_at(T0 + 60 * i, (uint32_t) i + 1, 1000 + 100 * (uint64_t) i, 40);
                ck_assert_int_eq(store_series_add_census(s, ss, r, i >= 4 ? T0 + 60 * 4 - 1 : 0), 0);
                free(r);
                /* flushed every few: the per-process bound applies across flushes */
                if (i % 3 == 2)
                        while (store_flush(s, T0 + 60 * i, 200, 0) == 0)
                                ;
        }
        while (store_flush(s, T0 + 60 * 30, 200, 0) == 0)
                ;
}

START_TEST(test_censuses_kept_and_loaded) {
        StoreConfig c;
        Store *s;
        StoreSeries *ss;
        StoreStats st;
        Collected got = {};
        size_t n = 0;

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "7-7", &ss), 0);
        store_thirty(s, ss);
        store_get_stats(s, &st);
        ck_assert_uint_eq(st.rows_dropped_total, 0);
        store_free(s);

        /* Reopened (a restart): the newest 16 and the baseline at T0 + 240 are kept. */
        ck_assert_int_eq(store_open(&c, T0 + 3600, &s), 0);
        ck_assert(store_is_available(s));
        ck_assert_int_eq(store_read_censuses(s, "7-7", 0, 1e12, 100, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, STORE_CENSUSES_PER_PROCESS + 1);
        ck_assert_double_eq(got.time[0], T0 + 240);
        ck_assert_double_eq(got.time[1], T0 + 60 * (30 - STORE_CENSUSES_PER_PROCESS));
        ck_assert_double_eq(got.time[n - 1], T0 + 60 * 29);
        ck_assert_uint_eq(got.id[n - 1], 30);
        ck_assert_uint_eq(got.handlers[n - 1], 1000 + 100 * 29);
        ck_assert_uint_eq(got.n_types[n - 1], 42);
        ck_assert_double_eq(got.since[n - 1], T0 + 239);
        /* a range, and the row bound */
        memset(&got, 0, sizeof got);
        ck_assert_int_eq(store_read_censuses(s, "7-7", T0 + 60 * 20, T0 + 60 * 22, 100, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(got.id[0], 21);
        memset(&got, 0, sizeof got);
        ck_assert_int_eq(store_read_censuses(s, "7-7", 0, 1e12, 2, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(store_read_censuses(s, "7-7", 10, 5, 2, collect_census, &got, &n), -EINVAL);
        ck_assert_int_eq(store_read_censuses(s, "1-2", 0, 1e12, 2, collect_census, &got, &n), -ENOENT);

        /* What a restart loads: the baseline, then the newest after it. */
        memset(&got, 0, sizeof got);
        ck_assert_int_eq(store_load_censuses(s, "7-7", CENSUS_HISTORY_MAX, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, CENSUS_HISTORY_MAX);
        ck_assert_double_eq(got.time[0], T0 + 240);
        ck_assert_double_eq(got.time[1], T0 + 60 * (30 - CENSUS_HISTORY_MAX + 1));
        ck_assert_double_eq(got.time[n - 1], T0 + 60 * 29);
        {
                /* ...into census.c, the growth of the open finding is measured from its baseline */
                ProcessCensus *pc = NULL;
                CensusGrowth g[2];
                Collected again = {};

                ck_assert_int_eq(process_census_ensure(&pc), 0);
                ck_assert_int_eq(store_load_censuses(s, "7-7", CENSUS_HISTORY_MAX, collect_census, &again, &n), 0);
                for (size_t i = 0; i < again.n; i++) {
                        CensusRecord *r = census_at(again.time[i], again.id[i], again.handlers[i], 0);
                        ck_assert_int_eq(process_census_restore(pc, r, again.since[i], T0 + 3600), 0);
                        /* older than the latest: refused, the history stays ordered */
                        ck_assert_int_eq(process_census_restore(pc, r, again.since[i], T0 + 3600), -ESTALE);
                        free(r);
                }
                ck_assert_uint_eq(process_census_growing(pc, T0 + 239, g, 2), 1);
                ck_assert_str_eq(g[0].type, "app.Handler");
                ck_assert_int_eq(g[0].count_growth, 100 * (29 - 4));
                /* the replay reopens the finding a little later (between the stored start and
                 * the restart): the same finding, measured from the same baseline */
                ck_assert_uint_eq(process_census_growing(pc, T0 + 60 * 20 + 7, g, 2), 1);
                ck_assert_int_eq(g[0].count_growth, 100 * (29 - 4));
                /* one that opens after the restart is another finding: no census since */
                ck_assert_uint_eq(process_census_growing(pc, T0 + 3601, g, 2), 0);
                process_census_free(pc);
        }
        /* Without a finding at the newest: the newest only. */
        ck_assert_int_eq(store_series_get(s, "8-8", &ss), 0);
        for (int i = 0; i < 12; i++) {
                CensusRecord *r = census_at(T0 + i, (uint32_t) i + 1, 10, 0);
                ck_assert_int_eq(store_series_add_census(s, ss, r, 0), 0);
                free(r);
                while (store_flush(s, T0 + 3600, 200, 0) == 0)
                        ;
        }
        memset(&got, 0, sizeof got);
        ck_assert_int_eq(store_load_censuses(s, "8-8", CENSUS_HISTORY_MAX, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, CENSUS_HISTORY_MAX);
        ck_assert_double_eq(got.time[0], T0 + 12 - CENSUS_HISTORY_MAX);
        store_free(s);
}
END_TEST

START_TEST(test_censuses_retention) {
        StoreConfig c;
        Store *s;
        StoreSeries *ss;
        Collected got = {};
        size_t n = 0;
        double later;

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "7-7", &ss), 0);
        store_thirty(s, ss);
        /* past the longest tier's retention: aged out like the points */
        later = T0 + c.tiers[c.n_tiers - 1].retention + 60 * 20 + 30;
        while (store_maintain(s, later, 100) > 0)
                ;
        ck_assert_int_eq(store_read_censuses(s, "7-7", 0, 1e12, 100, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, 9); /* those after T0 + 60 * 20 (the baseline at T0 + 240 went too) */
        ck_assert_double_eq(got.time[0], T0 + 60 * 21);
        store_free(s);
}
END_TEST

/* How many rows a table holds, straight from the file. */
static int64_t table_rows(const char *table) {
        char path[300], sql[64];
        sqlite3 *db;
        sqlite3_stmt *st;
        int64_t n;

        snprintf(path, sizeof path, "%s/history.db", tmpdir);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

/* An exited process goes from the store with every point it has, even one stamped after its
 * exit, which the retention pass (older than the cutoff) does not reach: left behind, points
 * belong to no process, or to the next one given the key. */
START_TEST(test_exited_process_leaves_no_points) {
        StoreConfig c;
        StoreProcessInfo info = { 0 };
        Store *s;
        StoreSeries *ss;
        double later;

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert_int_eq(store_series_get(s, "8-8", &ss), 0);
        for (double t = T0; t < T0 + 3600; t += 10) {
                HistoryPoint p = point_at(t, 1e8);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        snprintf(info.id, sizeof info.id, "8-8");
        snprintf(info.argv_json, sizeof info.argv_json, "[]");
        snprintf(info.exit_reason, sizeof info.exit_reason, "exit");
        snprintf(info.leak_verdict, sizeof info.leak_verdict, "none");
        info.pid = info.start_time_ticks = 8;
        info.exited_at = T0 + 60; /* its later points stamped after it */
        store_series_set_info(s, ss, &info);
        store_series_release(s, ss);
        while (store_flush(s, T0 + 3600, 200, 0) == 0)
                ;
        ck_assert_int_gt(table_rows("points"), 0);
        /* the exit is past the longest tier's retention, the last points are not */
        later = T0 + c.tiers[c.n_tiers - 1].retention + 600;
        while (store_maintain(s, later, 100) > 0)
                ;
        store_free(s);
        ck_assert_int_eq(table_rows("processes"), 0);
        ck_assert_int_eq(table_rows("points"), 0);
}
END_TEST

typedef struct Listed {
        size_t n;
        StoreProcessInfo info[4];
} Listed;

static int on_listed(void *userdata, const StoreProcessInfo *info) {
        Listed *l = userdata;

        ck_assert_uint_lt(l->n, 4);
        l->info[l->n++] = *info;
        return 0;
}

/* The record of id in l (NULL when none); prefix: match "id-<digits>" instead. */
static const StoreProcessInfo *listed(const Listed *l, const char *id, bool prefix) {
        for (size_t i = 0; i < l->n; i++) {
                const char *x = l->info[i].id;
                size_t n = strlen(id);

                if (!prefix ? strcmp(x, id) == 0
                            : strncmp(x, id, n) == 0 && x[n] == '-' && x[n + 1] && strspn(x + n + 1, "0123456789") == strlen(x + n + 1))
                        return &l->info[i];
        }
        return NULL;
}

static Listed list_all(Store *s) {
        Listed l = { 0 };

        ck_assert_int_eq(store_list_processes(s, 0, false, 4, on_listed, &l), 0);
        return l;
}

/* An id names one process lifetime within one boot: opened in another boot, the store renames
 * the earlier boot's records <pid>-<ticks>-<key> and ends those the crash left live (at their
 * last sample, connection lost), so a process of this boot with the same pid and start tick
 * starts a history of its own. The same boot again renames nothing. */
START_TEST(test_records_of_an_earlier_boot_are_renamed) {
        StoreConfig c;
        StoreProcessInfo info = { 0 };
        const StoreProcessInfo *live, *ended;
        Store *s;
        StoreSeries *ss;
        Listed l;
        Rows rows;
        char live_id[STORE_ID_MAX];

        config_in(&c, tmpdir);
        snprintf(c.boot_id, sizeof c.boot_id, "boot-a");
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        snprintf(info.argv_json, sizeof info.argv_json, "[]");
        snprintf(info.leak_verdict, sizeof info.leak_verdict, "none");
        for (int k = 5; k <= 6; k++) {
                snprintf(info.id, sizeof info.id, "%d-%d", k, k);
                info.pid = info.start_time_ticks = k;
                info.last_sample_at = T0 + 50;
                info.exited_at = k == 6 ? T0 + 10 : 0; /* 5-5 was live at the "crash" */
                snprintf(info.exit_reason, sizeof info.exit_reason, "%s", k == 6 ? "exit" : "");
                ck_assert_int_eq(store_series_get(s, info.id, &ss), 0);
                for (double t = T0; t <= T0 + 50; t += 10) {
                        HistoryPoint p = point_at(t, 1e8);
                        ck_assert_int_eq(store_series_add(s, ss, &p), 0);
                }
                store_series_set_info(s, ss, &info);
                store_series_release(s, ss);
        }
        while (store_flush(s, T0 + 60, 200, 0) == 0)
                ;
        store_free(s);

        /* the same boot: nothing renamed */
        ck_assert_int_eq(store_open(&c, T0 + 70, &s), 0);
        l = list_all(s);
        ck_assert_uint_eq(l.n, 2);
        ck_assert_ptr_nonnull(listed(&l, "5-5", false));
        ck_assert_ptr_nonnull(listed(&l, "6-6", false));
        store_free(s);

        /* another boot: both renamed, the live one ended */
        snprintf(c.boot_id, sizeof c.boot_id, "boot-b");
        ck_assert_int_eq(store_open(&c, T0 + 80, &s), 0);
        l = list_all(s);
        ck_assert_uint_eq(l.n, 2);
        live = listed(&l, "5-5", true);
        ended = listed(&l, "6-6", true);
        ck_assert_ptr_nonnull(live);
        ck_assert_ptr_nonnull(ended);
        ck_assert_double_eq(live->exited_at, T0 + 50);
        ck_assert_str_eq(live->exit_reason, "connection_lost");
        ck_assert_double_eq(ended->exited_at, T0 + 10);
        ck_assert_str_eq(ended->exit_reason, "exit");
        snprintf(live_id, sizeof live_id, "%s", live->id);
        /* the history under its new name; the old name is free for this boot's process */
        ck_assert_uint_eq(count_rows(s, live_id, 0, T0, T0 + 60, &rows), 6);
        ck_assert_int_eq(store_get_process(s, "5-5", &info), -ENOENT);
        ck_assert_int_eq(store_series_get(s, "5-5", &ss), 0);
        {
                HistoryPoint p = point_at(T0 + 90, 2e8);
                ck_assert_int_eq(store_series_add(s, ss, &p), 0);
        }
        while (store_flush(s, T0 + 200, 200, 0) == 0)
                ;
        ck_assert_uint_eq(count_rows(s, "5-5", 0, T0, T0 + 200, &rows), 1);
        store_free(s);

        /* that boot again: the earlier boot's names stay */
        ck_assert_int_eq(store_open(&c, T0 + 300, &s), 0);
        ck_assert_uint_eq(count_rows(s, live_id, 0, T0, T0 + 60, &rows), 6);
        ck_assert_uint_eq(count_rows(s, "5-5", 0, T0, T0 + 200, &rows), 1);
        store_free(s);
}
END_TEST

START_TEST(test_censuses_while_unavailable) {
        char blocker[128], dir[160];
        StoreConfig c;
        StoreStats st;
        Store *s;
        StoreSeries *ss;
        Collected got = {};
        size_t n = 0;

        /* a state directory below a regular file: cannot be created */
        snprintf(blocker, sizeof blocker, "%s/blocker", tmpdir);
        ck_assert_int_eq(close(open(blocker, O_CREAT | O_WRONLY, 0600)), 0);
        snprintf(dir, sizeof dir, "%s/state", blocker);
        config_in(&c, dir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(!store_is_available(s));
        ck_assert_int_eq(store_series_get(s, "7-7", &ss), 0);
        for (int i = 0; i < STORE_CENSUS_PENDING_MAX + 3; i++) {
                CensusRecord *r = census_at(T0 + i, (uint32_t) i + 1, 10, 0);
                ck_assert_int_eq(store_series_add_census(s, ss, r, 0), 0);
                free(r);
        }
        ck_assert_int_lt(store_flush(s, T0 + 100, 200, 0), 0);
        store_get_stats(s, &st);
        ck_assert_uint_eq(st.rows_dropped_total, 3);
        /* usable again: the kept ones are written */
        ck_assert_int_eq(unlink(blocker), 0);
        ck_assert_int_eq(mkdir(blocker, 0700), 0);
        while (store_flush(s, T0 + 1000, 200, 0) == 0)
                ;
        ck_assert(store_is_available(s));
        ck_assert_int_eq(store_read_censuses(s, "7-7", 0, 1e12, 100, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, STORE_CENSUS_PENDING_MAX);
        ck_assert_uint_eq(got.id[0], 4);
        store_free(s);
}
END_TEST

/* A file of schema 1 (before censuses) gets the table, its rows untouched. The schema-1 text is
 * written out here on purpose: it is the frozen format of files in the field, not whatever
 * store.c's first migration may become. */
START_TEST(test_schema1_migrated) {
        char path[300];
        StoreConfig c;
        Store *s;
        StoreSeries *ss;
        StoreProcessInfo info;
        sqlite3 *db;
        size_t n = 0;
        Collected got = {};

        snprintf(path, sizeof path, "%s/history.db", tmpdir);
        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        ck_assert_int_eq(sqlite3_exec(db,
                "CREATE TABLE processes ("
                " key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
                " pid INTEGER, ppid INTEGER, uid INTEGER, gid INTEGER, start_ticks INTEGER, start_time REAL,"
                " service TEXT, hostname TEXT, agent_version TEXT, python_version TEXT, argv TEXT,"
                " connected_at REAL, exited_at REAL NOT NULL DEFAULT 0, exit_reason TEXT, last_sample_at REAL,"
                " samples INTEGER, last_rss_bytes INTEGER, last_python_blocks INTEGER, leak_verdict TEXT);"
                "CREATE INDEX processes_exited ON processes(exited_at);"
                "CREATE TABLE points ("
                " tier INTEGER NOT NULL, proc INTEGER NOT NULL, t INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,"
                " PRIMARY KEY (tier, proc, t)) WITHOUT ROWID;"
                "INSERT INTO processes(id, pid, service, exited_at) VALUES ('5-5', 5, 'old', 1);"
                "PRAGMA user_version=1;", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

        config_in(&c, tmpdir);
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        ck_assert(store_is_available(s));
        ck_assert_int_eq(store_get_process(s, "5-5", &info), 0);
        ck_assert_str_eq(info.service, "old");
        ck_assert_int_eq(store_series_get(s, "5-5", &ss), 0);
        {
                CensusRecord *r = census_at(T0, 1, 10, 0);
                ck_assert_int_eq(store_series_add_census(s, ss, r, 0), 0);
                free(r);
        }
        while (store_flush(s, T0, 200, 0) == 0)
                ;
        ck_assert_int_eq(store_read_censuses(s, "5-5", 0, 1e12, 10, collect_census, &got, &n), 0);
        ck_assert_uint_eq(n, 1);
        store_free(s);

        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        {
                sqlite3_stmt *st;
                ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
                ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
                ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
}
END_TEST

static const char *query_from_zero(void *userdata, const char *key) {
        (void) userdata;
        return strcmp(key, "from") == 0 ? "0" : NULL;
}

/* The glue: a census ingested by a live process is queued (persist_census()), and a restart
 * (persist_restore() of a process still running: this test's own pid and start time) puts the
 * censuses back; GET .../census?from= shows the stored history. */
START_TEST(test_censuses_survive_restart) {
        RegistryLimits rl = { .max_processes = 8, .history_capacity = 16, .exited_retention = 600 };
        HwHello h = { .protocol = 1, .pid = getpid(), .interval = 1.0 };
        char id[PROCESS_ID_MAX];
        StoreConfig c;
        Store *s;
        Registry *reg;
        Process *p;
        pid_t ppid;
        int64_t ticks;
        CensusGrowth g[2];
        json_t *j;

        census_config = (CensusConfig) { .interval = 600, .budget_ms = 50, .api_min_interval = 0, .timeout = 60 };
        ck_assert_int_eq(proc_read_stat("/proc", getpid(), &ppid, &ticks), 0);
        process_id_format(id, getpid(), ticks);
        config_in(&c, tmpdir);

        /* Before: a live process with a finding open since T0 + 100 and three censuses. */
        ck_assert_int_eq(store_open(&c, T0, &s), 0);
        reg = registry_new(&rl);
        registry_set_store(reg, s, persist_on_free, s);
        h.argv = calloc(1, sizeof(char *));
        ck_assert_int_eq(registry_attach(reg, id, getpid(), getuid(), getgid(), ppid, ticks, T0, &h, T0, &p), 0);
        hw_hello_done(&h);
        persist_attach(reg, p);
        ck_assert_ptr_nonnull(p->stored);
        ck_assert_int_eq(process_census_ensure(&p->census), 0);
        ck_assert(process_census_due(p->census, T0 + 100, T0 + 101));
        for (int i = 0; i < 3; i++) {
                CensusRequest req;
                CensusReply *r = calloc(1, sizeof *r);
                CensusRecord *rec = census_at(T0 + 200 + 600 * i, 0, 1000 + 5000 * (uint64_t) i, 3);

                ck_assert_int_eq(process_census_next_request(p->census, CENSUS_KIND_CENSUS, T0 + 100, rec->time, &req), 0);
                r->id = req.id;
                r->kind = CENSUS_KIND_CENSUS;
                r->time = rec->time;
                r->complete = r->consistent = true;
                r->fraction = 1;
                r->n_types = rec->n_types;
                memcpy(r->types, rec->types, rec->n_types * sizeof rec->types[0]);
                ck_assert_int_eq(process_census_ingest(p->census, r, rec->time), 0);
                persist_census(reg, p);
                free(r);
                free(rec);
        }
        ck_assert_uint_eq(process_census_growing(p->census, T0 + 100, g, 2), 1);
        ck_assert_int_eq(g[0].count_growth, 10000);
        persist_sync(reg);
        while (store_flush(s, T0 + 1500, 200, 0) == 0)
                ;
        registry_free(reg);
        store_free(s);

        /* After: the record comes back with its censuses and the same growth. */
        ck_assert_int_eq(store_open(&c, T0 + 3600, &s), 0);
        reg = registry_new(&rl);
        registry_set_store(reg, s, persist_on_free, s);
        {
                /* before the restore: a process only the store holds answers with its history */
                char path[128];
                snprintf(path, sizeof path, "/api/v1/processes/%s/census", id);
                j = helper_api_json(reg, "GET", path, query_from_zero, T0 + 7200, 200);
                ck_assert_uint_eq(json_array_size(json_object_get(j, "censuses")), 0);
                ck_assert(json_is_null(json_object_get(j, "latest")));
                ck_assert_uint_eq(json_array_size(json_object_get(j, "history")), 3);
                json_decref(j);
        }
        ck_assert_int_eq(persist_restore(reg, T0 + 3600, 7 * 86400), 1);
        p = registry_find(reg, id);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_nonnull(p->census);
        ck_assert_uint_eq(process_census_growing(p->census, T0 + 100, g, 2), 1);
        ck_assert_str_eq(g[0].type, "app.Handler");
        ck_assert_int_eq(g[0].count_growth, 10000);
        /* the replay reopens the finding at another time before the restart: the same growth */
        ck_assert_uint_eq(process_census_growing(p->census, T0 + 500, g, 2), 1);
        ck_assert_int_eq(g[0].count_growth, 10000);
        json_decref(helper_api_json(reg, "GET", "/api/v1/processes/1-1/census", query_from_zero, T0 + 7200, 404));
        {
                char path[128];
                snprintf(path, sizeof path, "/api/v1/processes/%s/census", id);
                j = helper_api_json(reg, "GET", path, NULL, T0 + 7200, 200);
                ck_assert_uint_eq(json_array_size(json_object_get(j, "censuses")), 3);
                ck_assert_ptr_null(json_object_get(j, "history")); /* only when asked */
                json_decref(j);
                j = helper_api_json(reg, "GET", path, query_from_zero, T0 + 7200, 200);
                ck_assert_uint_eq(json_array_size(json_object_get(j, "history")), 3);
                ck_assert(json_is_false(json_object_get(j, "history_truncated")));
                ck_assert_double_eq(json_real_value(json_object_get(json_array_get(json_object_get(j, "history"), 0),
                                                                    "finding_since")), T0 + 100);
                ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(json_object_get(j, "history"), 2),
                                                                  "types")), 5);
                json_decref(j);
        }
        registry_free(reg);
        store_free(s);
}
END_TEST

static Suite *store_suite(void) {
        Suite *s = suite_create("store");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_config);
        tcase_add_test(tc, test_blob_roundtrip);
        tcase_add_test(tc, test_week_of_history);
        tcase_add_test(tc, test_reopen_extends_bucket);
        tcase_add_test(tc, test_crash_keeps_flushed);
        tcase_add_test(tc, test_garbage_moved_aside);
        tcase_add_test(tc, test_damaged_page_moved_aside);
        tcase_add_test(tc, test_newer_schema_left_alone);
        tcase_add_test(tc, test_tables_without_a_version_left_alone);
        tcase_add_test(tc, test_file_we_may_not_write_is_permission_denied);
        tcase_add_test(tc, test_no_incremental_vacuum_without_auto_vacuum);
        tcase_add_test(tc, test_retention_in_bounded_steps);
        tcase_add_test(tc, test_deleted_database_reopened);
        tcase_add_test(tc, test_unavailable_then_back);
        tcase_add_test(tc, test_released_bounded_while_unavailable);
        tcase_add_test(tc, test_disk_budget);
        tcase_add_test(tc, test_leak_resume);
        tcase_add_test(tc, test_resume_budget_across_processes);
        tcase_add_test(tc, test_resume_reports_live_events);
        tcase_add_test(tc, test_census_blob);
        tcase_add_test(tc, test_censuses_kept_and_loaded);
        tcase_add_test(tc, test_censuses_retention);
        tcase_add_test(tc, test_exited_process_leaves_no_points);
        tcase_add_test(tc, test_records_of_an_earlier_boot_are_renamed);
        tcase_add_test(tc, test_censuses_while_unavailable);
        tcase_add_test(tc, test_schema1_migrated);
        tcase_add_test(tc, test_censuses_survive_restart);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(store_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
