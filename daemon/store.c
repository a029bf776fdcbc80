/* SPDX-License-Identifier: MIT */
/*
 * Durable history in SQLite (see store.h). Two tables: `processes` (one row per process
 * lifetime, keyed by an integer that the point rows reference) and `points` (one row per
 * tier, process and bucket, WITHOUT ROWID and clustered by that key so a series query is one
 * range scan). A bucket row holds the count of samples and a compact blob with min, max, mean
 * and last of every metric: most metrics are constant within a bucket or whole numbers, so the
 * blob stores one value when all four agree and varints for whole numbers, about 100 bytes
 * where 512 would be plain doubles.
 *
 * Writes happen only in store_flush(), in transactions of a bounded number of rows, so the
 * event loop never waits long; everything not yet committed stays in memory (open buckets
 * marked dirty, closed ones in a bounded queue) and is written by a later flush when the disk
 * comes back. WAL with synchronous=NORMAL: a committed transaction survives a crash of the
 * daemon (kill -9); only a power loss may take the last one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "proc-util.h"
#include "sqlite-util.h"
#include "store.h"
#include "time-util.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_BUSY_TIMEOUT_MS 20
#define STORE_MAINTAIN_PASS_SECONDS 60.0 /* a retention pass at most this often */
#define STORE_MAINTAIN_PROCS_PER_STEP 64  /* (tier, process) deletes per step */
/* Rows deleted per step at most: a step is one transaction the event loop waits for, and the
 * rows a process has past its retention are not bounded (a daemon down over a weekend, a
 * retention shortened by a reload: 0.73 s for 128 processes' two days of 10 s rows). */
#define STORE_MAINTAIN_ROWS_PER_STEP 4096
#define STORE_REOPEN_SECONDS 30.0         /* retry an unavailable database at least this often */
#define STORE_WAL_LIMIT_BYTES (8LL * 1024 * 1024)
/* What the file system holding the history keeps free whatever the budget says, as journald's
 * SystemKeepFree=: 15 % of it, at most 4 GiB. The history is thinned to stay within it: a
 * budget larger than the file system made the daemon fill it, and a full disk cannot recover
 * by itself (deleting rows and checkpointing need room too; found by review). */
#define STORE_KEEP_FREE_SHARE 0.15
#define STORE_KEEP_FREE_MAX (4ULL * 1024 * 1024 * 1024)
#define STORE_RELEASED_MAX 4096 /* ended processes held for unwritten buckets while unavailable */
/* The checkpointer thread copies the WAL into the database this often. The loop's connection
 * only checkpoints itself if the WAL grows past STORE_WAL_SAFETY_PAGES (the thread is stuck). */
#define STORE_CHECKPOINT_USEC (1 * USEC_PER_SEC)
#define STORE_WAL_SAFETY_PAGES 20000

typedef struct Bucket {
        bool open;
        bool dirty; /* holds samples not yet committed */
        int64_t t;  /* start, seconds */
        uint32_t n;
        double min[_HISTORY_METRIC_MAX], max[_HISTORY_METRIC_MAX], sum[_HISTORY_METRIC_MAX], last[_HISTORY_METRIC_MAX];
        uint32_t finite[_HISTORY_METRIC_MAX]; /* samples with a finite value, per metric */
} Bucket;

/* A census waiting for the next flush: its types already encoded (a few KiB where the record
 * is ~18 KiB). */
typedef struct PendingCensus {
        double finding_since;
        uint32_t id;
        double time, duration_seconds, gil_seconds, gil_cpu_seconds, budget_seconds, fraction;
        unsigned slices;
        bool complete, sampled, consistent;
        uint64_t objects, types_total;
        size_t len;
        uint8_t blob[];
} PendingCensus;

struct StoreSeries {
        StoreSeries *prev, *next;
        char id[STORE_ID_MAX];
        int64_t key;      /* processes.key; 0 until resolved in the current database */
        bool released;    /* the caller is done; freed once nothing pending refers to it */
        size_t pending;   /* queued rows that refer to it */
        bool info_dirty;
        bool has_info;
        StoreProcessInfo info;
        Bucket buckets[STORE_TIERS_MAX];
        PendingCensus *censuses[STORE_CENSUS_PENDING_MAX]; /* oldest first */
        size_t n_censuses;
};

typedef struct PendingRow {
        StoreSeries *series;
        uint8_t tier;
        int64_t t;
        uint32_t n;
        uint16_t len;
        uint8_t *blob;
} PendingRow;

struct Store {
        StoreConfig config;
        char path[300];
        sqlite3 *db;
        bool checked; /* the integrity check ran on this file */
        bool newer_schema_logged; /* a newer heapwatchd's file, or one without a version: said once */
        bool incremental_vacuum;  /* the file has auto_vacuum=INCREMENTAL (2) */
        dev_t file_dev;           /* the file open now, to notice it deleted or replaced */
        ino_t file_ino;
        double next_open_attempt;
        bool keep_free_noted; /* logged that the file system's room, not the budget, binds */
        int last_write_error; /* -errno of the last failed write (store_write_failed()) */
        RateLimit log_ratelimit;
        StoreStats stats;

        sqlite3_stmt *st_point, *st_proc_key, *st_proc_insert, *st_proc_update, *st_last_bucket, *st_census_insert,
                *st_census_trim;

        StoreSeries *series;
        size_t released_kept; /* released series still held for unwritten rows */
        PendingRow *pending; /* ring */
        size_t pending_head, pending_n, pending_alloc;

        /* The checkpointer: its own connection on its own thread (see store_checkpointer()). */
        pthread_t ckpt_thread;
        bool ckpt_running;
        pthread_mutex_t ckpt_lock;
        pthread_cond_t ckpt_wake;
        bool ckpt_stop;
        double ckpt_seconds_max; /* under ckpt_lock */

        /* maintenance pass state */
        double pass_started;
        bool pass_active;
        size_t pass_tier;
        int64_t pass_key;
};

/* --- configuration -------------------------------------------------------------------------- */

void store_config_default(StoreConfig *c) {
        memset(c, 0, sizeof *c);
        c->tiers[0] = (StoreTier) { 10, 2 * 86400.0 };
        c->tiers[1] = (StoreTier) { 60, 14 * 86400.0 };
        c->tiers[2] = (StoreTier) { 600, 180 * 86400.0 };
        c->n_tiers = 3;
        c->flush_interval = STORE_DEFAULT_FLUSH_INTERVAL;
        c->max_disk_bytes = STORE_DEFAULT_MAX_DISK_BYTES;
        c->pending_max_rows = STORE_DEFAULT_PENDING_MAX_ROWS;
        c->check_seconds = STORE_DEFAULT_CHECK_SECONDS;
        if (proc_read_small_file("/proc/sys/kernel/random/boot_id", c->boot_id, sizeof c->boot_id) >= 0)
                c->boot_id[strcspn(c->boot_id, "\n")] = '\0';
        else
                c->boot_id[0] = '\0';
}

/* "10s", "2d", "90" (seconds): a positive whole number with an optional unit. */
static int parse_duration(const char *s, size_t len, double *ret) {
        uint64_t v = 0;
        size_t i = 0;
        double unit = 1;

        if (len == 0)
                return -EINVAL;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
                if (v > 1000000000ULL)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (i == 0)
                return -EINVAL;
        if (i + 1 == len) {
                switch (s[i]) {
                case 's': unit = 1; break;
                case 'm': unit = 60; break;
                case 'h': unit = 3600; break;
                case 'd': unit = 86400; break;
                default: return -EINVAL;
                }
        } else if (i != len)
                return -EINVAL;
        if (v == 0)
                return -EINVAL;
        *ret = (double) v * unit;
        return 0;
}

int store_tiers_parse(StoreConfig *c, const char *s, char *error, size_t size) {
        StoreTier tiers[STORE_TIERS_MAX];
        size_t n = 0;
        const char *p = s;

        if (!s || !*s) {
                snprintf(error, size, "no tiers given");
                return -EINVAL;
        }
        while (*p) {
                const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
                const char *colon = memchr(p, ':', (size_t) (end - p));

                if (n == STORE_TIERS_MAX) {
                        snprintf(error, size, "at most %d tiers", STORE_TIERS_MAX);
                        return -EINVAL;
                }
                if (!colon || parse_duration(p, (size_t) (colon - p), &tiers[n].resolution) < 0 ||
                    parse_duration(colon + 1, (size_t) (end - colon - 1), &tiers[n].retention) < 0) {
                        snprintf(error, size, "tier %zu: expected RESOLUTION:RETENTION such as 10s:2d (units s, m, h, d)",
                                 n + 1);
                        return -EINVAL;
                }
                n++;
                p = comma ? comma + 1 : end;
                if (comma && !*p) {
                        snprintf(error, size, "trailing comma");
                        return -EINVAL;
                }
        }
        memcpy(c->tiers, tiers, n * sizeof *tiers);
        c->n_tiers = n;
        return 0;
}

int store_config_validate(const StoreConfig *c, char *error, size_t size) {
        if (c->n_tiers == 0 || c->n_tiers > STORE_TIERS_MAX) {
                snprintf(error, size, "between 1 and %d tiers", STORE_TIERS_MAX);
                return -EINVAL;
        }
        for (size_t i = 0; i < c->n_tiers; i++) {
                const StoreTier *t = &c->tiers[i];
                /* Bucket starts are stored as whole seconds. */
                if (!(t->resolution >= 1) || t->resolution > 86400 || t->resolution != floor(t->resolution)) {
                        snprintf(error, size, "tier %zu: resolution must be whole seconds in 1..86400", i + 1);
                        return -EINVAL;
                }
                if (!(t->retention >= t->resolution) || t->retention > 10 * 366 * 86400.0) {
                        snprintf(error, size, "tier %zu: retention must be at least the resolution and at most 10 years",
                                 i + 1);
                        return -EINVAL;
                }
                if (i > 0 && (t->resolution <= c->tiers[i - 1].resolution || t->retention <= c->tiers[i - 1].retention)) {
                        snprintf(error, size, "tiers must go from fine to coarse: resolution and retention increasing");
                        return -EINVAL;
                }
        }
        if (!(c->flush_interval >= 0.1) || c->flush_interval > 3600) {
                snprintf(error, size, "flush interval must be seconds in 0.1..3600");
                return -EINVAL;
        }
        if (c->max_disk_bytes != 0 && c->max_disk_bytes < 1024 * 1024) {
                snprintf(error, size, "disk budget must be 0 (unlimited) or at least 1 MiB");
                return -EINVAL;
        }
        if (c->pending_max_rows == 0 || !(c->check_seconds >= 0)) {
                snprintf(error, size, "pending rows must be > 0, check seconds >= 0");
                return -EINVAL;
        }
        if (c->state_dir[0] != '/') {
                snprintf(error, size, "state directory must be an absolute path");
                return -EINVAL;
        }
        return 0;
}

/* --- bucket blob encoding ------------------------------------------------------------------- */

/* Per metric: a tag byte, then the values. Tag bit 7: all four equal, one value follows;
 * bit 6 ("delta"): min, max and last are whole numbers: min as a zigzag varint, then max - min,
 * (mean - min) * 16 rounded (the mean to 1/16 of a unit: bytes and counts need no more) and
 * last - min as varints, a few bytes for values that move little within a bucket; otherwise
 * four values (min, max, mean, last) where bit i says value i is a zigzag varint (a whole
 * number within +-2^53), else 8 bytes of IEEE double, little-endian. The blob starts with the
 * count of metrics, so a newer daemon with more metrics can still read old rows. */
#define TAG_SINGLE 0x80
#define TAG_DELTA 0x40
#define MEAN_SCALE 16.0

static bool is_whole(double v) {
        return isfinite(v) && v == floor(v) && fabs(v) <= 9007199254740992.0;
}

static size_t put_varint(uint8_t *out, uint64_t v) {
        size_t n = 0;
        do {
                uint8_t b = v & 0x7f;
                v >>= 7;
                out[n++] = b | (v ? 0x80 : 0);
        } while (v);
        return n;
}

static size_t put_zigzag(uint8_t *out, int64_t i) {
        return put_varint(out, ((uint64_t) i << 1) ^ (uint64_t) (i >> 63));
}

static size_t put_value(uint8_t *out, double v, bool whole) {
        if (whole) {
                int64_t i = (int64_t) v;
                return put_varint(out, ((uint64_t) i << 1) ^ (uint64_t) (i >> 63));
        }
        uint64_t bits;
        memcpy(&bits, &v, 8);
        for (int k = 0; k < 8; k++)
                out[k] = (uint8_t) (bits >> (8 * k));
        return 8;
}

size_t store_encode_aggs(const StoreAgg aggs[_HISTORY_METRIC_MAX], uint8_t out[STORE_BLOB_MAX]) {
        size_t n = 0;

        out[n++] = _HISTORY_METRIC_MAX;
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++) {
                double v[4] = { aggs[m].min, aggs[m].max, aggs[m].mean, aggs[m].last };
                bool single = memcmp(&v[0], &v[1], 8) == 0 && memcmp(&v[0], &v[2], 8) == 0 &&
                              memcmp(&v[0], &v[3], 8) == 0;
                int count = single ? 1 : 4;
                uint8_t tag = single ? TAG_SINGLE : 0;

                if (!single && is_whole(v[0]) && is_whole(v[1]) && is_whole(v[3]) && isfinite(v[2]) &&
                    v[0] <= v[2] && v[2] <= v[1] && v[0] <= v[3] && v[3] <= v[1] && v[1] - v[0] <= 9007199254740992.0 / MEAN_SCALE) {
                        out[n++] = TAG_DELTA;
                        n += put_zigzag(out + n, (int64_t) v[0]);
                        n += put_varint(out + n, (uint64_t) (v[1] - v[0]));
                        n += put_varint(out + n, (uint64_t) llround((v[2] - v[0]) * MEAN_SCALE));
                        n += put_varint(out + n, (uint64_t) (v[3] - v[0]));
                        continue;
                }
                for (int k = 0; k < count; k++)
                        if (is_whole(v[k]))
                                tag |= (uint8_t) (1u << k);
                out[n++] = tag;
                for (int k = 0; k < count; k++)
                        n += put_value(out + n, v[k], tag & (1u << k));
        }
        return n;
}

static int get_varint(const uint8_t *blob, size_t len, size_t *pos, uint64_t *ret) {
        uint64_t v = 0;

        for (unsigned shift = 0;; shift += 7) {
                uint8_t b;
                if (*pos >= len || shift > 63)
                        return -EBADMSG;
                b = blob[(*pos)++];
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80))
                        break;
        }
        *ret = v;
        return 0;
}

static int get_value(const uint8_t *blob, size_t len, size_t *pos, bool whole, double *ret) {
        if (whole) {
                uint64_t v;
                if (get_varint(blob, len, pos, &v) < 0)
                        return -EBADMSG;
                *ret = (double) (int64_t) ((v >> 1) ^ (~(v & 1) + 1));
                return 0;
        }
        if (len - *pos < 8)
                return -EBADMSG;
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++)
                bits |= (uint64_t) blob[*pos + (size_t) k] << (8 * k);
        memcpy(ret, &bits, 8);
        *pos += 8;
        return 0;
}

int store_decode_aggs(const uint8_t *blob, size_t len, StoreAgg aggs[_HISTORY_METRIC_MAX]) {
        size_t pos = 0, count;

        for (int m = 0; m < _HISTORY_METRIC_MAX; m++)
                aggs[m] = (StoreAgg) { NAN, NAN, NAN, NAN };
        if (!blob || len < 1)
                return -EBADMSG;
        count = blob[pos++];
        for (size_t m = 0; m < count; m++) {
                double v[4];
                uint8_t tag;
                int k, n;

                if (pos >= len)
                        return -EBADMSG;
                tag = blob[pos++];
                if (tag == TAG_DELTA) {
                        double lo;
                        uint64_t d[3];
                        if (get_value(blob, len, &pos, true, &lo) < 0)
                                return -EBADMSG;
                        for (k = 0; k < 3; k++)
                                if (get_varint(blob, len, &pos, &d[k]) < 0)
                                        return -EBADMSG;
                        if (m < _HISTORY_METRIC_MAX)
                                aggs[m] = (StoreAgg) { lo, lo + (double) d[0], lo + (double) d[1] / MEAN_SCALE,
                                                       lo + (double) d[2] };
                        continue;
                }
                if (tag & 0x70)
                        return -EBADMSG;
                n = (tag & TAG_SINGLE) ? 1 : 4;
                if ((tag & TAG_SINGLE) && (tag & 0x0e))
                        return -EBADMSG;
                for (k = 0; k < n; k++)
                        if (get_value(blob, len, &pos, tag & (1u << k), &v[k]) < 0)
                                return -EBADMSG;
                if (n == 1)
                        v[1] = v[2] = v[3] = v[0];
                if (m < _HISTORY_METRIC_MAX)
                        aggs[m] = (StoreAgg) { v[0], v[1], v[2], v[3] };
        }
        return pos == len ? 0 : -EBADMSG;
}

/* --- buckets -------------------------------------------------------------------------------- */

static void bucket_start(Bucket *b, int64_t t) {
        memset(b, 0, sizeof *b);
        b->open = true;
        b->t = t;
}

static void bucket_add(Bucket *b, const HistoryPoint *pt) {
        b->n++;
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++) {
                double v = pt->values[m];
                if (!isfinite(v))
                        continue;
                if (b->finite[m] == 0 || v < b->min[m])
                        b->min[m] = v;
                if (b->finite[m] == 0 || v > b->max[m])
                        b->max[m] = v;
                b->sum[m] += v;
                b->last[m] = v;
                b->finite[m]++;
        }
        b->dirty = true;
}

static void bucket_aggs(const Bucket *b, StoreAgg aggs[_HISTORY_METRIC_MAX]) {
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++)
                aggs[m] = b->finite[m] == 0 ? (StoreAgg) { NAN, NAN, NAN, NAN } :
                          (StoreAgg) { b->min[m], b->max[m], b->sum[m] / (double) b->finite[m], b->last[m] };
}

/* A stored row becomes the open bucket again, so later samples extend it. */
static void bucket_from_row(Bucket *b, int64_t t, uint32_t n, const StoreAgg aggs[_HISTORY_METRIC_MAX]) {
        bucket_start(b, t);
        b->n = n;
        for (int m = 0; m < _HISTORY_METRIC_MAX; m++) {
                if (!isfinite(aggs[m].mean) || n == 0)
                        continue;
                b->finite[m] = n;
                b->min[m] = aggs[m].min;
                b->max[m] = aggs[m].max;
                b->sum[m] = aggs[m].mean * n;
                b->last[m] = aggs[m].last;
        }
}

/* --- database lifecycle --------------------------------------------------------------------- */

/* Checkpoints (copying the WAL into the database file, with an fsync) are the one write that
 * takes long: measured at 10-20 ms under the benchmark's load, and more on a slow disk. They
 * run here, on a second connection, so the event loop's commits only append to the WAL. SQLite
 * does the locking between the two connections; nothing else is shared. */
static void *store_checkpointer(void *userdata) {
        Store *s = userdata;
        sqlite3 *db = NULL;

        if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                sqlite3_close_v2(db);
                return NULL; /* the loop's connection checkpoints past the safety limit */
        }
        sqlite3_busy_timeout(db, 1000);
        /* A connection learns that the file is in WAL mode when it first reads it; until then
         * a checkpoint is a silent no-op. */
        (void) sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
        pthread_mutex_lock(&s->ckpt_lock);
        while (!s->ckpt_stop) {
                struct timespec until;
                uint64_t t0;
                double took;

                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += STORE_CHECKPOINT_USEC / USEC_PER_SEC;
                (void) pthread_cond_timedwait(&s->ckpt_wake, &s->ckpt_lock, &until);
                if (s->ckpt_stop)
                        break;
                pthread_mutex_unlock(&s->ckpt_lock);
                t0 = now_usec_monotonic();
                (void) sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
                took = (double) (now_usec_monotonic() - t0) / USEC_PER_SEC;
                pthread_mutex_lock(&s->ckpt_lock);
                if (took > s->ckpt_seconds_max)
                        s->ckpt_seconds_max = took;
        }
        pthread_mutex_unlock(&s->ckpt_lock);
        sqlite3_close_v2(db);
        return NULL;
}

static void checkpointer_start(Store *s) {
        if (s->ckpt_running)
                return;
        s->ckpt_stop = false;
        if (pthread_create(&s->ckpt_thread, NULL, store_checkpointer, s) == 0)
                s->ckpt_running = true;
}

static void checkpointer_stop(Store *s) {
        if (!s->ckpt_running)
                return;
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stop = true;
        pthread_cond_signal(&s->ckpt_wake);
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_join(s->ckpt_thread, NULL);
        s->ckpt_running = false;
}

static void store_close_db(Store *s) {
        sqlite3_stmt **stmts[] = { &s->st_point, &s->st_proc_key, &s->st_proc_insert, &s->st_proc_update,
                                   &s->st_last_bucket, &s->st_census_insert, &s->st_census_trim };

        checkpointer_stop(s);
        for (size_t i = 0; i < ELEMENTSOF(stmts); i++) {
                sqlite3_finalize(*stmts[i]);
                *stmts[i] = NULL;
        }
        if (s->db) {
                sqlite3_close_v2(s->db);
                s->db = NULL;
        }
        s->stats.available = false;
        /* Keys belong to one database file; resolve them again in the next one. */
        for (StoreSeries *ss = s->series; ss; ss = ss->next) {
                ss->key = 0;
                ss->info_dirty = ss->has_info;
        }
}

static int exec_sql(sqlite3 *db, const char *sql) {
        return sqlite_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* Forward migrations, one entry per schema version: entry i takes version i to i + 1. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
        "CREATE TABLE processes ("
        " key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " pid INTEGER, ppid INTEGER, uid INTEGER, gid INTEGER, start_ticks INTEGER, start_time REAL,"
        " service TEXT, hostname TEXT, agent_version TEXT, python_version TEXT, argv TEXT,"
        " connected_at REAL, exited_at REAL NOT NULL DEFAULT 0, exit_reason TEXT, last_sample_at REAL,"
        " samples INTEGER, last_rss_bytes INTEGER, last_python_blocks INTEGER, leak_verdict TEXT);"
        "CREATE INDEX processes_exited ON processes(exited_at);"
        "CREATE TABLE points ("
        " tier INTEGER NOT NULL, proc INTEGER NOT NULL, t INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,"
        " PRIMARY KEY (tier, proc, t)) WITHOUT ROWID;",
        /* 2: censuses (issue 8), one row per census, its top types in one blob. */
        "CREATE TABLE censuses ("
        " proc INTEGER NOT NULL, t REAL NOT NULL, finding_since REAL NOT NULL, request_id INTEGER NOT NULL,"
        " duration_seconds REAL, gil_seconds REAL, gil_cpu_seconds REAL, budget_seconds REAL, slices INTEGER,"
        " complete INTEGER, sampled INTEGER, consistent INTEGER, fraction REAL, objects INTEGER, types_total INTEGER,"
        " types BLOB NOT NULL, PRIMARY KEY (proc, t)) WITHOUT ROWID;"
        "CREATE INDEX censuses_t ON censuses(t);",
};

static int query_int(sqlite3 *db, const char *sql, int64_t *ret) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? -ENODATA : sqlite_errno(rc);
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int migrate(sqlite3 *db) {
        int64_t version;
        int r = query_int(db, "PRAGMA user_version", &version);

        if (r < 0)
                return r;
        if (version > STORE_SCHEMA_VERSION)
                return -EPROTONOSUPPORT;
        for (int64_t v = version; v < STORE_SCHEMA_VERSION; v++) {
                char sql[64];
                /* Each step in its own transaction with its version bump: a crash between
                 * steps resumes at the right one. */
                if ((r = exec_sql(db, "BEGIN IMMEDIATE")) < 0)
                        return r;
                snprintf(sql, sizeof sql, "PRAGMA user_version=%" PRIi64, v + 1);
                if ((r = exec_sql(db, migrations[v])) < 0 || (r = exec_sql(db, sql)) < 0 ||
                    (r = exec_sql(db, "COMMIT")) < 0) {
                        (void) exec_sql(db, "ROLLBACK");
                        return r;
                }
        }
        return 0;
}

/* A record id, <pid>-<start ticks>, names one process lifetime within one boot only: after a
 * reboot a service started early gets the same pid at the same tick often enough (systemd starts
 * the same units in the same order), and its record would continue the previous boot's history
 * (and, had it been live at the crash, be restored as still running). So when the database was
 * last opened in another boot, every record of it is renamed <pid>-<start ticks>-<key> and ended
 * (at its last sample, connection lost, if the crash left it live): its history stays, under a
 * name no process of this boot can get. The boot id is kept in a table of its own, created here
 * rather than by a migration: an older heapwatchd ignores it, so this needs no schema version. */
static int archive_other_boots(Store *s) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *get = NULL, *put = NULL;
        int rc, r, renamed = 0;

        if (!s->config.boot_id[0])
                return 0;
        if ((r = exec_sql(s->db, "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")) < 0)
                return r;
        if ((r = exec_sql(s->db, "BEGIN IMMEDIATE")) < 0)
                return r;
        rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name = 'boot_id'", -1, &get, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(get);
        if (rc == SQLITE_ROW && strcmp((const char *) sqlite3_column_text(get, 0), s->config.boot_id) != 0) {
                rc = sqlite3_exec(s->db,
                                  "UPDATE processes SET"
                                  " exited_at = CASE WHEN exited_at > 0 THEN exited_at ELSE"
                                  "  COALESCE(NULLIF(last_sample_at, 0), NULLIF(connected_at, 0), NULLIF(start_time, 0), 1) END,"
                                  /* exit_reason_to_string(EXIT_REASON_CONNECTION_LOST) */
                                  " exit_reason = CASE WHEN exited_at > 0 THEN exit_reason ELSE 'connection_lost' END,"
                                  " id = id || '-' || key"
                                  " WHERE id NOT LIKE '%-%-%'",
                                  NULL, NULL, NULL);
                renamed = sqlite3_changes(s->db);
                rc = rc == SQLITE_OK ? SQLITE_DONE : rc;
        }
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
                rc = sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta (name, value) VALUES ('boot_id', ?)", -1,
                                        &put, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(put, 1, s->config.boot_id, -1, SQLITE_STATIC);
                rc = sqlite3_step(put);
        }
        if (rc != SQLITE_DONE || (r = exec_sql(s->db, "COMMIT")) < 0) {
                r = rc != SQLITE_DONE ? sqlite_errno(rc) : r;
                (void) exec_sql(s->db, "ROLLBACK");
                return r;
        }
        if (renamed > 0)
                log_info("History database %s: %d process record(s) of an earlier boot renamed <pid>-<start ticks>-<n>.",
                         s->path, renamed);
        return 0;
}

typedef struct Deadline {
        uint64_t end_usec;
} Deadline;

static int progress_deadline(void *userdata) {
        const Deadline *d = userdata;
        return now_usec_monotonic() > d->end_usec; /* non-zero interrupts the statement */
}

/* PRAGMA quick_check, interrupted after check_seconds: a huge healthy database should not keep
 * the daemon from starting. Returns 0 (ok or not finished in time), -EBADMSG, -errno. */
static int quick_check(Store *s) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        Deadline d = { now_usec_monotonic() + (uint64_t) (s->config.check_seconds * USEC_PER_SEC) };
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_progress_handler(s->db, 1000, progress_deadline, &d);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const unsigned char *text = sqlite3_column_text(st, 0);
                if (!text || strcmp((const char *) text, "ok") != 0)
                        r = -EBADMSG;
        } else if (rc == SQLITE_INTERRUPT)
                log_notice("Integrity check of %s not finished within %.0f s; assuming it is sound.", s->path,
                           s->config.check_seconds);
        else
                r = sqlite_errno(rc);
        sqlite3_progress_handler(s->db, 0, NULL, NULL);
        return r;
}

static int prepare(Store *s) {
        struct {
                sqlite3_stmt **st;
                const char *sql;
        } table[] = {
                { &s->st_point, "INSERT OR REPLACE INTO points(tier, proc, t, n, data) VALUES (?, ?, ?, ?, ?)" },
                { &s->st_proc_key, "SELECT key FROM processes WHERE id = ?" },
                { &s->st_proc_insert, "INSERT OR IGNORE INTO processes(id) VALUES (?)" },
                { &s->st_proc_update,
                  "UPDATE processes SET pid=?2, ppid=?3, uid=?4, gid=?5, start_ticks=?6, start_time=?7, service=?8,"
                  " hostname=?9, agent_version=?10, python_version=?11, argv=?12, connected_at=?13, exited_at=?14,"
                  " exit_reason=?15, last_sample_at=?16, samples=?17, last_rss_bytes=?18, last_python_blocks=?19,"
                  " leak_verdict=?20 WHERE key=?1" },
                { &s->st_last_bucket, "SELECT t, n, data FROM points WHERE tier = ? AND proc = ? ORDER BY t DESC LIMIT 1" },
                { &s->st_census_insert,
                  "INSERT OR REPLACE INTO censuses(proc, t, finding_since, request_id, duration_seconds, gil_seconds,"
                  " gil_cpu_seconds, budget_seconds, slices, complete, sampled, consistent, fraction, objects,"
                  " types_total, types) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)" },
                /* The newest ?2 of the process and the baseline of the finding open at the newest
                 * (the first at or after ?3) stay; `IS NOT` because without a baseline the
                 * subquery is NULL. */
                { &s->st_census_trim,
                  "DELETE FROM censuses WHERE proc = ?1 AND"
                  " t < (SELECT t FROM censuses WHERE proc = ?1 ORDER BY t DESC LIMIT 1 OFFSET ?2 - 1) AND"
                  " t IS NOT (SELECT min(t) FROM censuses WHERE proc = ?1 AND ?3 > 0 AND t >= ?3)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int rc = sqlite3_prepare_v3(s->db, table[i].sql, -1, SQLITE_PREPARE_PERSISTENT, table[i].st, NULL);
                if (rc != SQLITE_OK)
                        return sqlite_errno(rc);
        }
        return 0;
}

/* Open the file and bring it to the current schema. Returns 0, -EBADMSG when the file is
 * damaged or not a database, another -errno when it cannot be opened or written. */
static int store_open_db(Store *s) {
        int rc, r;

        /* parents 0700 as XDG asks for ~/.local/state; a fresh account has none of them */
        if ((r = mkdir_p(s->config.state_dir, 0750, 0700)) < 0)
                return r;
        rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_extended_result_codes(s->db, 0);
        sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

        /* The first statement that reads the file is where garbage shows up as SQLITE_NOTADB.
         * A newer heapwatchd's file is left exactly as it is: not even switched to WAL. */
        {
                int64_t version;

                if ((r = query_int(s->db, "PRAGMA user_version", &version)) < 0)
                        return r;
                if (version > STORE_SCHEMA_VERSION)
                        return -EPROTONOSUPPORT;
                /* Our tables without our schema version: restored from `sqlite3 .dump`, which
                 * does not carry user_version. Migrating from 0 failed on "table already exists",
                 * logged as an I/O error every minute for good (found by review). */
                if (version == 0) {
                        int64_t ours;

                        if ((r = query_int(s->db, "SELECT count(*) FROM sqlite_master WHERE name = 'processes'",
                                           &ours)) < 0)
                                return r;
                        if (ours > 0)
                                return -EUCLEAN;
                }
        }
        /* auto_vacuum must be chosen before the first table exists; it is ignored later. */
        if ((r = exec_sql(s->db, "PRAGMA auto_vacuum=INCREMENTAL")) < 0)
                return r;
        {
                int64_t mode;

                if ((r = query_int(s->db, "PRAGMA auto_vacuum", &mode)) < 0)
                        return r;
                s->incremental_vacuum = mode == 2;
        }
        {
                _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
                rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        return sqlite_errno(rc);
                if (strcmp((const char *) sqlite3_column_text(st, 0), "wal") != 0)
                        return -EROFS; /* WAL needs a writable directory for its -shm file */
        }
        if ((r = exec_sql(s->db, "PRAGMA synchronous=NORMAL")) < 0)
                return r;
        {
                char sql[64];
                snprintf(sql, sizeof sql, "PRAGMA journal_size_limit=%lld", STORE_WAL_LIMIT_BYTES);
                if ((r = exec_sql(s->db, sql)) < 0)
                        return r;
                snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%d", STORE_WAL_SAFETY_PAGES);
                if ((r = exec_sql(s->db, sql)) < 0)
                        return r;
        }
        if (!s->checked) {
                r = quick_check(s);
                if (r < 0)
                        return r;
                s->checked = true;
        }
        r = migrate(s->db);
        if (r < 0)
                return r;
        r = archive_other_boots(s);
        if (r < 0)
                return r;
        return prepare(s);
}

/* Rename the database and its WAL/SHM out of the way: the operator may want to look at them,
 * and the daemon must not crash-loop on them. */
static int move_aside(Store *s, double now) {
        char target[sizeof s->path + 64];
        const char *suffixes[] = { "", "-wal", "-shm" };
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                char from[sizeof s->path + 8];
                snprintf(from, sizeof from, "%s%s", s->path, suffixes[i]);
                snprintf(target, sizeof target, "%s.corrupt-%.0f%s", s->path, now, suffixes[i]);
                if (rename(from, target) < 0 && errno != ENOENT && r == 0)
                        r = -errno;
        }
        snprintf(target, sizeof target, "%s.corrupt-%.0f", s->path, now);
        if (r < 0)
                return log_error_errno(r, "Failed to move the damaged database %s aside: %m", s->path);
        s->stats.moved_aside_total++;
        log_error("History database %s is damaged or not a database; moved it to %s and starting a fresh one.",
                  s->path, target);
        return 0;
}

/* SQLite says SQLITE_READONLY both for a file system mounted read-only and for a file or
 * directory we may not write: tell them apart for the log ("Read-only file system" for a chmod
 * 0444 file sent operators looking at mounts). */
static int readonly_errno(const Store *s, int r) {
        struct statvfs sv;

        if (r != -EROFS)
                return r;
        if (statvfs(s->config.state_dir, &sv) == 0 && !(sv.f_flag & ST_RDONLY))
                return -EACCES;
        return r;
}

/* Open or reopen; logs the outcome. Returns 0 when available. */
static int store_try_open(Store *s, double now) {
        int r;

        /* Often enough that writing resumes soon after the directory is usable again. */
        s->next_open_attempt = now + fmin(STORE_REOPEN_SECONDS, fmax(1.0, 3 * s->config.flush_interval));
        r = store_open_db(s);
        if (r == -EBADMSG) {
                store_close_db(s);
                if (move_aside(s, now) < 0)
                        return -EBADMSG;
                s->checked = false;
                r = store_open_db(s);
        }
        if (r < 0) {
                store_close_db(s);
                if (r == -EPROTONOSUPPORT) {
                        /* said once: retrying (the operator may move it aside) cannot change it */
                        if (!s->newer_schema_logged)
                                log_error("History database %s was written by a newer heapwatchd (schema > %d); not "
                                          "touching it, history is kept in memory only.",
                                          s->path, STORE_SCHEMA_VERSION);
                        s->newer_schema_logged = true;
                        return r;
                }
                if (r == -EUCLEAN) {
                        if (!s->newer_schema_logged)
                                log_error("History database %s has heapwatch's tables but no schema version "
                                          "(user_version 0: restored with sqlite3 .dump, which drops it?); not "
                                          "touching it, history is kept in memory only. Set the version it had "
                                          "(PRAGMA user_version=N) or move the file aside.",
                                          s->path);
                        s->newer_schema_logged = true;
                        return r;
                }
                r = readonly_errno(s, r);
                if (ratelimit_below(&s->log_ratelimit))
                        log_warning_errno(r, "Cannot use the history database %s (%m); keeping history in memory and "
                                          "retrying every %.0f s.", s->path, s->next_open_attempt - now);
                return r;
        }
        s->stats.available = true;
        {
                struct stat st;

                if (stat(s->path, &st) == 0) {
                        s->file_dev = st.st_dev;
                        s->file_ino = st.st_ino;
                }
        }
        checkpointer_start(s);
        log_info("History database %s open (schema %d).", s->path, STORE_SCHEMA_VERSION);
        return 0;
}

int store_open(const StoreConfig *c, double now, Store **ret) {
        char error[256];
        Store *s;

        if (!c || !ret || store_config_validate(c, error, sizeof error) < 0)
                return -EINVAL;
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->config = *c;
        pthread_mutex_init(&s->ckpt_lock, NULL);
        pthread_cond_init(&s->ckpt_wake, NULL);
        s->log_ratelimit = (RateLimit) RATELIMIT_INIT(60 * USEC_PER_SEC, 3);
        s->stats.budget_factor = 1.0;
        if (snprintf(s->path, sizeof s->path, "%s/%s", c->state_dir, STORE_FILE_NAME) >= (int) sizeof s->path) {
                free(s);
                return -EINVAL;
        }
        (void) store_try_open(s, now);
        *ret = s;
        return 0;
}

bool store_is_available(const Store *s) {
        return s && s->db && s->stats.available;
}

bool store_is_readable(const Store *s) {
        /* A full disk or an I/O error on write keeps the file open: what is there can be read. */
        return s && s->db;
}

void store_get_stats(const Store *s, StoreStats *ret) {
        *ret = s->stats;
        pthread_mutex_lock((pthread_mutex_t *) &s->ckpt_lock);
        ret->checkpoint_seconds_max = s->ckpt_seconds_max;
        pthread_mutex_unlock((pthread_mutex_t *) &s->ckpt_lock);
        ret->available = store_is_available(s);
        ret->pending_rows = s->pending_n;
}

const StoreConfig *store_get_config(const Store *s) {
        return &s->config;
}

int store_set_retention(Store *s, const StoreConfig *c) {
        if (!s || !c || c->n_tiers != s->config.n_tiers)
                return -EINVAL;
        /* Bucket lengths shape the stored rows; only how long they are kept may change. */
        for (size_t i = 0; i < c->n_tiers; i++)
                if (c->tiers[i].resolution != s->config.tiers[i].resolution)
                        return -EINVAL;
        for (size_t i = 0; i < c->n_tiers; i++)
                s->config.tiers[i].retention = c->tiers[i].retention;
        s->config.max_disk_bytes = c->max_disk_bytes;
        s->config.flush_interval = c->flush_interval;
        /* no budget, no reason to keep less: the share it shrank to stayed until a restart */
        if (c->max_disk_bytes == 0)
                s->stats.budget_factor = 1.0;
        return 0;
}

/* --- series --------------------------------------------------------------------------------- */

static int resolve_key(Store *s, const char *id, bool create, int64_t *ret) {
        int rc;

        if (create) {
                sqlite3_reset(s->st_proc_insert);
                sqlite3_bind_text(s->st_proc_insert, 1, id, -1, SQLITE_STATIC);
                rc = sqlite3_step(s->st_proc_insert);
                sqlite3_reset(s->st_proc_insert);
                if (rc != SQLITE_DONE)
                        return sqlite_errno(rc);
        }
        sqlite3_reset(s->st_proc_key);
        sqlite3_bind_text(s->st_proc_key, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(s->st_proc_key);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(s->st_proc_key, 0);
        sqlite3_reset(s->st_proc_key);
        if (rc == SQLITE_ROW)
                return 0;
        return rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
}

/* The newest stored bucket of each tier becomes the open one. */
static void series_load_buckets(Store *s, StoreSeries *ss) {
        int64_t key;

        if (!store_is_readable(s) || resolve_key(s, ss->id, false, &key) < 0)
                return;
        for (size_t i = 0; i < s->config.n_tiers; i++) {
                StoreAgg aggs[_HISTORY_METRIC_MAX];
                sqlite3_stmt *st = s->st_last_bucket;

                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, (int64_t) i);
                sqlite3_bind_int64(st, 2, key);
                if (sqlite3_step(st) == SQLITE_ROW &&
                    store_decode_aggs(sqlite3_column_blob(st, 2), (size_t) sqlite3_column_bytes(st, 2), aggs) >= 0)
                        bucket_from_row(&ss->buckets[i], sqlite3_column_int64(st, 0),
                                        (uint32_t) sqlite3_column_int64(st, 1), aggs);
                sqlite3_reset(st);
        }
}

int store_series_get(Store *s, const char *id, StoreSeries **ret) {
        StoreSeries *ss;

        if (!s || !id || strlen(id) >= STORE_ID_MAX || !ret)
                return -EINVAL;
        for (ss = s->series; ss; ss = ss->next)
                if (!ss->released && strcmp(ss->id, id) == 0) {
                        *ret = ss;
                        return 0;
                }
        ss = calloc(1, sizeof *ss);
        if (!ss)
                return -ENOMEM;
        snprintf(ss->id, sizeof ss->id, "%s", id);
        series_load_buckets(s, ss);
        ss->next = s->series;
        if (s->series)
                s->series->prev = ss;
        s->series = ss;
        *ret = ss;
        return 0;
}

static void series_free(StoreSeries *ss) {
        for (size_t i = 0; i < ss->n_censuses; i++)
                free(ss->censuses[i]);
        free(ss);
}

static void series_unlink_free(Store *s, StoreSeries *ss) {
        if (ss->released)
                s->released_kept--;
        if (ss->prev)
                ss->prev->next = ss->next;
        else
                s->series = ss->next;
        if (ss->next)
                ss->next->prev = ss->prev;
        series_free(ss);
}

static bool series_dirty(const Store *s, const StoreSeries *ss) {
        if (ss->info_dirty || ss->n_censuses > 0)
                return true;
        for (size_t i = 0; i < s->config.n_tiers; i++)
                if (ss->buckets[i].dirty)
                        return true;
        return false;
}

void store_series_release(Store *s, StoreSeries *ss) {
        if (!s || !ss)
                return;
        ss->released = true;
        s->released_kept++;
        /* While the database is unavailable, ended processes would pile up here with their
         * unwritten buckets: past a bound, their open buckets (and process row) are dropped,
         * counted like queue overflow. */
        if (s->released_kept > STORE_RELEASED_MAX && !store_is_available(s)) {
                for (size_t i = 0; i < s->config.n_tiers; i++)
                        if (ss->buckets[i].dirty) {
                                ss->buckets[i].dirty = false;
                                s->stats.rows_dropped_total++;
                        }
                ss->info_dirty = false;
                for (size_t i = 0; i < ss->n_censuses; i++) {
                        free(ss->censuses[i]);
                        s->stats.rows_dropped_total++;
                }
                ss->n_censuses = 0;
        }
        /* Rows still waiting keep it until they are written (or dropped). */
        if (ss->pending == 0 && !series_dirty(s, ss))
                series_unlink_free(s, ss);
}

static void pending_pop(Store *s, bool written) {
        PendingRow *row = &s->pending[s->pending_head];
        StoreSeries *ss = row->series;

        if (!written)
                s->stats.rows_dropped_total++;
        free(row->blob);
        s->pending_head = (s->pending_head + 1) % s->pending_alloc;
        s->pending_n--;
        ss->pending--;
        if (ss->released && ss->pending == 0 && !series_dirty(s, ss))
                series_unlink_free(s, ss);
}

static int pending_push(Store *s, StoreSeries *ss, size_t tier, const Bucket *b) {
        StoreAgg aggs[_HISTORY_METRIC_MAX];
        uint8_t blob[STORE_BLOB_MAX];
        PendingRow *row;
        size_t len;

        /* A disk that has been failing for long: the oldest rows go first, counted. */
        if (s->pending_n >= s->config.pending_max_rows)
                pending_pop(s, false);
        if (s->pending_n == s->pending_alloc) {
                size_t n = s->pending_alloc ? s->pending_alloc * 2 : 256;
                PendingRow *a = malloc(n * sizeof *a);
                if (!a)
                        return -ENOMEM;
                for (size_t i = 0; i < s->pending_n; i++)
                        a[i] = s->pending[(s->pending_head + i) % s->pending_alloc];
                free(s->pending);
                s->pending = a;
                s->pending_alloc = n;
                s->pending_head = 0;
        }
        bucket_aggs(b, aggs);
        len = store_encode_aggs(aggs, blob);
        row = &s->pending[(s->pending_head + s->pending_n) % s->pending_alloc];
        row->blob = malloc(len);
        if (!row->blob)
                return -ENOMEM;
        memcpy(row->blob, blob, len);
        row->len = (uint16_t) len;
        row->series = ss;
        row->tier = (uint8_t) tier;
        row->t = b->t;
        row->n = b->n;
        s->pending_n++;
        ss->pending++;
        return 0;
}

int store_series_add(Store *s, StoreSeries *ss, const HistoryPoint *pt) {
        if (!s || !ss || !pt || !isfinite(pt->time))
                return -EINVAL;
        for (size_t i = 0; i < s->config.n_tiers; i++) {
                Bucket *b = &ss->buckets[i];
                double res = s->config.tiers[i].resolution;
                int64_t t = (int64_t) (floor(pt->time / res) * res);

                if (b->open && t < b->t)
                        continue; /* older than this tier's open bucket (a clock step back) */
                if (b->open && t > b->t) {
                        if (b->dirty) {
                                int r = pending_push(s, ss, i, b);
                                if (r < 0)
                                        return r;
                        }
                        b->open = false;
                }
                if (!b->open)
                        bucket_start(b, t);
                bucket_add(b, pt);
        }
        return 0;
}

void store_series_set_info(Store *s, StoreSeries *ss, const StoreProcessInfo *info) {
        if (!s || !ss || !info)
                return;
        ss->info = *info;
        snprintf(ss->info.id, sizeof ss->info.id, "%s", ss->id);
        ss->has_info = true;
        ss->info_dirty = true;
}

/* The oldest unwritten census of ss is gone: written (or dropped). */
static void census_pop(StoreSeries *ss) {
        free(ss->censuses[0]);
        memmove(&ss->censuses[0], &ss->censuses[1], (ss->n_censuses - 1) * sizeof ss->censuses[0]);
        ss->n_censuses--;
}

int store_series_add_census(Store *s, StoreSeries *ss, const CensusRecord *r, double finding_since) {
        uint8_t blob[STORE_CENSUS_BLOB_MAX];
        PendingCensus *pc;
        size_t len;

        if (!s || !ss || !r || !isfinite(r->time) || !isfinite(finding_since))
                return -EINVAL;
        len = store_encode_census_types(r->types, r->n_types, blob);
        pc = malloc(sizeof *pc + len);
        if (!pc)
                return -ENOMEM;
        *pc = (PendingCensus) {
                .finding_since = finding_since,
                .id = r->id,
                .time = r->time,
                .duration_seconds = r->duration_seconds,
                .gil_seconds = r->gil_seconds,
                .gil_cpu_seconds = r->gil_cpu_seconds,
                .budget_seconds = r->budget_seconds,
                .fraction = r->fraction,
                .slices = r->slices,
                .complete = r->complete,
                .sampled = r->sampled,
                .consistent = r->consistent,
                .objects = r->objects,
                .types_total = r->types_total,
                .len = len,
        };
        memcpy(pc->blob, blob, len);
        /* A disk that has been failing for long: the oldest census goes first, counted. */
        if (ss->n_censuses == STORE_CENSUS_PENDING_MAX) {
                census_pop(ss);
                s->stats.rows_dropped_total++;
        }
        ss->censuses[ss->n_censuses++] = pc;
        return 0;
}

/* --- census types blob ---------------------------------------------------------------------- */

size_t store_encode_census_types(const CensusType *types, size_t n, uint8_t out[STORE_CENSUS_BLOB_MAX]) {
        size_t len = 0;

        if (n > CENSUS_TYPES_MAX)
                n = CENSUS_TYPES_MAX;
        for (size_t i = 0; i < n; i++) {
                size_t name_len = strnlen(types[i].name, HW_CENSUS_TYPE_NAME_MAX);

                len += put_varint(out + len, name_len);
                memcpy(out + len, types[i].name, name_len);
                len += name_len;
                len += put_varint(out + len, types[i].count);
                len += put_varint(out + len, types[i].size_bytes);
        }
        return len;
}

int store_decode_census_types(const uint8_t *blob, size_t len, CensusType types[CENSUS_TYPES_MAX], size_t *ret_n) {
        size_t pos = 0, n = 0;

        if (!blob && len > 0)
                return -EBADMSG;
        while (pos < len) {
                uint64_t name_len, count, size;

                if (n == CENSUS_TYPES_MAX || get_varint(blob, len, &pos, &name_len) < 0 ||
                    name_len > HW_CENSUS_TYPE_NAME_MAX || len - pos < name_len ||
                    memchr(blob + pos, 0, name_len))
                        return -EBADMSG;
                memcpy(types[n].name, blob + pos, name_len);
                types[n].name[name_len] = 0;
                pos += name_len;
                if (get_varint(blob, len, &pos, &count) < 0 || get_varint(blob, len, &pos, &size) < 0)
                        return -EBADMSG;
                types[n].count = count;
                types[n].size_bytes = size;
                n++;
        }
        *ret_n = n;
        return 0;
}

/* --- flush ---------------------------------------------------------------------------------- */

/* CPU time of this thread: with the wall time it tells work from being preempted on a busy
 * machine (both are reported; docs/performance.md). */
static double thread_cpu_seconds(void) {
        struct timespec ts;
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
                return 0;
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void note_stall(double wall, double cpu, double *wall_max, double *cpu_max, uint64_t *over_5ms) {
        if (wall > *wall_max)
                *wall_max = wall;
        if (cpu > *cpu_max)
                *cpu_max = cpu;
        if (wall > 0.005)
                (*over_5ms)++;
}

static int write_point(Store *s, int64_t key, size_t tier, int64_t t, uint32_t n, const uint8_t *blob, size_t len) {
        sqlite3_stmt *st = s->st_point;
        int rc;

        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (int64_t) tier);
        sqlite3_bind_int64(st, 2, key);
        sqlite3_bind_int64(st, 3, t);
        sqlite3_bind_int64(st, 4, n);
        sqlite3_bind_blob(st, 5, blob, (int) len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *text) {
        if (text && *text)
                sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static int write_info(Store *s, StoreSeries *ss) {
        const StoreProcessInfo *in = &ss->info;
        sqlite3_stmt *st = s->st_proc_update;
        int rc;

        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ss->key);
        sqlite3_bind_int64(st, 2, in->pid);
        sqlite3_bind_int64(st, 3, in->ppid);
        sqlite3_bind_int64(st, 4, in->uid);
        sqlite3_bind_int64(st, 5, in->gid);
        sqlite3_bind_int64(st, 6, in->start_time_ticks);
        sqlite3_bind_double(st, 7, in->start_time);
        bind_text_or_null(st, 8, in->service);
        bind_text_or_null(st, 9, in->hostname);
        bind_text_or_null(st, 10, in->agent_version);
        bind_text_or_null(st, 11, in->python_version);
        bind_text_or_null(st, 12, in->argv_json);
        sqlite3_bind_double(st, 13, in->connected_at);
        sqlite3_bind_double(st, 14, in->exited_at);
        bind_text_or_null(st, 15, in->exit_reason);
        sqlite3_bind_double(st, 16, in->last_sample_at);
        sqlite3_bind_int64(st, 17, in->samples);
        sqlite3_bind_int64(st, 18, in->last_rss_bytes);
        sqlite3_bind_int64(st, 19, in->last_python_allocated_blocks);
        bind_text_or_null(st, 20, in->leak_verdict);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

#define WRITTEN_INFO -1   /* the process row */
#define WRITTEN_CENSUS -2 /* its oldest unwritten census */

/* What one transaction wrote, to be marked clean only once it commits. */
typedef struct Written {
        StoreSeries *series;
        int tier; /* or WRITTEN_INFO, WRITTEN_CENSUS */
} Written;

static int write_census(Store *s, StoreSeries *ss, const PendingCensus *pc) {
        sqlite3_stmt *st = s->st_census_insert;
        int rc;

        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ss->key);
        sqlite3_bind_double(st, 2, pc->time);
        sqlite3_bind_double(st, 3, pc->finding_since);
        sqlite3_bind_int64(st, 4, pc->id);
        sqlite3_bind_double(st, 5, pc->duration_seconds);
        sqlite3_bind_double(st, 6, pc->gil_seconds);
        sqlite3_bind_double(st, 7, pc->gil_cpu_seconds);
        sqlite3_bind_double(st, 8, pc->budget_seconds);
        sqlite3_bind_int64(st, 9, pc->slices);
        sqlite3_bind_int(st, 10, pc->complete);
        sqlite3_bind_int(st, 11, pc->sampled);
        sqlite3_bind_int(st, 12, pc->consistent);
        sqlite3_bind_double(st, 13, pc->fraction);
        sqlite3_bind_int64(st, 14, (int64_t) (pc->objects > INT64_MAX ? INT64_MAX : pc->objects));
        sqlite3_bind_int64(st, 15, (int64_t) (pc->types_total > INT64_MAX ? INT64_MAX : pc->types_total));
        sqlite3_bind_blob(st, 16, pc->blob, (int) pc->len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
                return sqlite_errno(rc);

        /* Bounded per process as each one is written: nothing else grows this table. */
        st = s->st_census_trim;
        sqlite3_bind_int64(st, 1, ss->key);
        sqlite3_bind_int64(st, 2, STORE_CENSUSES_PER_PROCESS);
        sqlite3_bind_double(st, 3, pc->finding_since);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
                return sqlite_errno(rc);
        s->stats.rows_deleted_total += (uint64_t) sqlite3_changes(s->db);
        return 0;
}

/* The database failed under us: damage is moved aside (the data in memory is written to the
 * fresh file later), anything else (full disk, I/O error) keeps the file and retries. */
static int store_write_failed(Store *s, int r, double now) {
        r = readonly_errno(s, r);
        s->stats.flush_failures_total++;
        s->last_write_error = r;
        if (r == -EBADMSG) {
                store_close_db(s);
                (void) move_aside(s, now);
                s->checked = false;
                (void) store_try_open(s, now);
                return r;
        }
        if (s->stats.available && ratelimit_below(&s->log_ratelimit))
                log_warning_errno(r, "Writing history to %s failed (%m); keeping it in memory (%zu rows waiting) "
                                  "and retrying.", s->path, s->pending_n);
        s->stats.available = false;
        return r;
}

static int one_transaction(Store *s, size_t max_rows, Written *done, size_t *ret_rows, size_t *ret_done,
                           size_t *ret_pending_done) {
        size_t n = 0, ndone = 0, npend = 0;
        int r;

        if ((r = exec_sql(s->db, "BEGIN IMMEDIATE")) < 0)
                return r;

        /* Process rows first: points need their key. */
        for (StoreSeries *ss = s->series; ss && n < max_rows; ss = ss->next) {
                if (ss->key == 0 && (ss->has_info || ss->pending > 0 || series_dirty(s, ss))) {
                        if ((r = resolve_key(s, ss->id, true, &ss->key)) < 0)
                                goto fail;
                        ss->info_dirty = ss->has_info;
                }
                if (ss->info_dirty) {
                        if ((r = write_info(s, ss)) < 0)
                                goto fail;
                        done[ndone++] = (Written) { ss, WRITTEN_INFO };
                        n++;
                }
        }
        /* Censuses, oldest first per process (the trim keeps the baseline of the newest). */
        for (StoreSeries *ss = s->series; ss && n < max_rows; ss = ss->next)
                for (size_t i = 0; i < ss->n_censuses && n < max_rows; i++) {
                        if ((r = write_census(s, ss, ss->censuses[i])) < 0)
                                goto fail;
                        done[ndone++] = (Written) { ss, WRITTEN_CENSUS };
                        n++;
                }
        /* Closed buckets, oldest first. */
        for (size_t i = 0; i < s->pending_n && n < max_rows; i++) {
                const PendingRow *row = &s->pending[(s->pending_head + i) % s->pending_alloc];
                if ((r = write_point(s, row->series->key, row->tier, row->t, row->n, row->blob, row->len)) < 0)
                        goto fail;
                npend++;
                n++;
        }
        /* Open buckets: rewritten as they fill, so a crash loses at most one flush interval. */
        for (StoreSeries *ss = s->series; ss && n < max_rows; ss = ss->next)
                for (size_t i = 0; i < s->config.n_tiers && n < max_rows; i++) {
                        const Bucket *b = &ss->buckets[i];
                        StoreAgg aggs[_HISTORY_METRIC_MAX];
                        uint8_t blob[STORE_BLOB_MAX];
                        size_t len;

                        if (!b->dirty)
                                continue;
                        bucket_aggs(b, aggs);
                        len = store_encode_aggs(aggs, blob);
                        if ((r = write_point(s, ss->key, i, b->t, b->n, blob, len)) < 0)
                                goto fail;
                        done[ndone++] = (Written) { ss, (int) i };
                        n++;
                }

        if ((r = exec_sql(s->db, "COMMIT")) < 0)
                goto fail;
        *ret_rows = n;
        *ret_done = ndone;
        *ret_pending_done = npend;
        return 0;

fail:
        (void) exec_sql(s->db, "ROLLBACK");
        /* Keys handed out inside the rolled-back transaction do not exist. */
        for (StoreSeries *ss = s->series; ss; ss = ss->next)
                if (ss->key != 0 && resolve_key(s, ss->id, false, &ss->key) < 0)
                        ss->key = 0;
        return r;
}

int store_flush(Store *s, double now, size_t max_rows, double budget_seconds) {
        _cleanup_free_ Written *done = NULL;
        uint64_t start = now_usec_monotonic();
        double longest = 0;
        int r;

        if (!s || max_rows == 0)
                return -EINVAL;
        if (!s->db) {
                if (now < s->next_open_attempt || store_try_open(s, now) < 0)
                        return -EAGAIN;
                /* Reopened: the open buckets of every series go to the new file. */
        }
        done = calloc(max_rows, sizeof *done);
        if (!done)
                return -ENOMEM;

        for (;;) {
                uint64_t t0 = now_usec_monotonic();
                double c0 = thread_cpu_seconds();
                size_t n = 0, ndone = 0, npend = 0;
                double took;

                r = one_transaction(s, max_rows, done, &n, &ndone, &npend);
                took = (double) (now_usec_monotonic() - t0) / USEC_PER_SEC;
                s->stats.transactions_total++;
                note_stall(took, thread_cpu_seconds() - c0, &s->stats.flush_seconds_max, &s->stats.flush_cpu_seconds_max,
                           &s->stats.transactions_over_5ms_total);
                if (took > longest)
                        longest = took;
                if (r < 0) {
                        s->stats.flush_seconds_last = longest;
                        return store_write_failed(s, r, now);
                }
                if (!s->stats.available) {
                        log_info("Writing history to %s again (%zu rows were waiting).", s->path, s->pending_n);
                        s->stats.available = true;
                }
                for (size_t i = 0; i < npend; i++)
                        pending_pop(s, true);
                for (size_t i = 0; i < ndone; i++) {
                        StoreSeries *ss = done[i].series;
                        if (done[i].tier == WRITTEN_INFO)
                                ss->info_dirty = false;
                        else if (done[i].tier == WRITTEN_CENSUS)
                                census_pop(ss);
                        else
                                ss->buckets[done[i].tier].dirty = false;
                }
                s->stats.rows_written_total += n;
                /* Released series whose last rows just went out. */
                for (size_t i = 0; i < ndone; i++) {
                        StoreSeries *ss = done[i].series;
                        if (ss && ss->released && ss->pending == 0 && !series_dirty(s, ss)) {
                                /* Forget it in later entries of done[] too. */
                                for (size_t j = i + 1; j < ndone; j++)
                                        if (done[j].series == ss)
                                                done[j].series = NULL;
                                series_unlink_free(s, ss);
                        }
                }
                if (n < max_rows)
                        break;
                if (budget_seconds > 0 && (double) (now_usec_monotonic() - start) / USEC_PER_SEC >= budget_seconds) {
                        s->stats.flush_seconds_last = longest;
                        if (longest > s->stats.flush_seconds_max)
                                s->stats.flush_seconds_max = longest;
                        return 0;
                }
        }
        s->stats.flushes_total++;
        s->stats.flush_seconds_last = longest;
        if (longest > s->stats.flush_seconds_max)
                s->stats.flush_seconds_max = longest;
        return 1;
}

/* --- maintenance ---------------------------------------------------------------------------- */

static int64_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? 0 : (int64_t) st.st_size;
}

/* Pages in use (not free) times page size: what the budget counts. */
static int measure_disk(Store *s, uint64_t *ret_used) {
        int64_t pages, free_pages, page_size;
        char wal[sizeof s->path + 8];
        int r;

        if ((r = query_int(s->db, "PRAGMA page_count", &pages)) < 0 ||
            (r = query_int(s->db, "PRAGMA freelist_count", &free_pages)) < 0 ||
            (r = query_int(s->db, "PRAGMA page_size", &page_size)) < 0)
                return r;
        snprintf(wal, sizeof wal, "%s-wal", s->path);
        s->stats.disk_bytes = (uint64_t) (pages * page_size + file_size(wal));
        /* The WAL is bounded on its own (checkpoints, journal_size_limit) and does not shrink
         * when rows are deleted: counting it would make a small budget delete everything. */
        *ret_used = (uint64_t) ((pages - free_pages) * page_size);
        s->stats.used_bytes = *ret_used;
        return (int) (free_pages > INT32_MAX ? INT32_MAX : free_pages);
}

/* The budget in force for the pages in use: max_disk_bytes (0: none), and no more than the file
 * system can give while it keeps STORE_KEEP_FREE_SHARE free: our files (database and WAL, as
 * measure_disk() last saw them) and what is free on the file system, less that share and the
 * room the WAL may take (STORE_WAL_LIMIT_BYTES). UINT64_MAX: no bound (none configured, and the
 * file system cannot be read). */
static uint64_t effective_budget(Store *s) {
        uint64_t budget = s->config.max_disk_bytes > 0 ? s->config.max_disk_bytes : UINT64_MAX;
        struct statvfs v;
        double total, keep, room;

        if (statvfs(s->path, &v) < 0 || v.f_blocks == 0)
                return budget;
        total = (double) v.f_blocks * (double) v.f_frsize;
        keep = fmin(total * STORE_KEEP_FREE_SHARE, (double) STORE_KEEP_FREE_MAX);
        room = (double) s->stats.disk_bytes + (double) v.f_bavail * (double) v.f_frsize - keep -
               (double) STORE_WAL_LIMIT_BYTES;
        if (room < 0)
                room = 0;
        return room < (double) budget ? (uint64_t) room : budget;
}

static int delete_step(Store *s, double now, size_t *ret_deleted) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *keys = NULL, *del = NULL;
        size_t steps = 0, deleted = 0;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db, "SELECT key FROM processes WHERE key > ? ORDER BY key LIMIT ?", -1, &keys, NULL);
        /* The oldest ?4 rows below the cutoff at most: below the ?4-th one's time when there are
         * more (t is unique per tier and process: the primary key). */
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(s->db,
                                        "DELETE FROM points WHERE tier = ?1 AND proc = ?2 AND t < coalesce("
                                        "(SELECT t FROM points WHERE tier = ?1 AND proc = ?2 AND t < ?3 ORDER BY t "
                                        "LIMIT 1 OFFSET ?4), ?3)",
                                        -1, &del, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        if ((r = exec_sql(s->db, "BEGIN IMMEDIATE")) < 0)
                return r;
        while (s->pass_tier < s->config.n_tiers && steps < STORE_MAINTAIN_PROCS_PER_STEP &&
               deleted < STORE_MAINTAIN_ROWS_PER_STEP) {
                const StoreTier *tier = &s->config.tiers[s->pass_tier];
                double cutoff = now - tier->retention * s->stats.budget_factor;
                size_t got = 0;

                sqlite3_reset(keys);
                sqlite3_bind_int64(keys, 1, s->pass_key);
                sqlite3_bind_int64(keys, 2, (int64_t) (STORE_MAINTAIN_PROCS_PER_STEP - steps));
                while ((rc = sqlite3_step(keys)) == SQLITE_ROW) {
                        int64_t key = sqlite3_column_int64(keys, 0);
                        size_t room = STORE_MAINTAIN_ROWS_PER_STEP - deleted, n;

                        sqlite3_reset(del);
                        sqlite3_bind_int64(del, 1, (int64_t) s->pass_tier);
                        sqlite3_bind_int64(del, 2, key);
                        sqlite3_bind_int64(del, 3, (int64_t) floor(cutoff));
                        sqlite3_bind_int64(del, 4, (int64_t) room);
                        if (sqlite3_step(del) != SQLITE_DONE) {
                                rc = sqlite3_errcode(s->db);
                                break;
                        }
                        n = (size_t) sqlite3_changes(s->db);
                        deleted += n;
                        if (n >= room) {
                                /* maybe more of this process: the next step starts with it */
                                rc = SQLITE_DONE;
                                break;
                        }
                        s->pass_key = key;
                        steps++;
                        got++;
                }
                if (rc != SQLITE_DONE) {
                        r = sqlite_errno(rc);
                        goto fail;
                }
                if (deleted >= STORE_MAINTAIN_ROWS_PER_STEP)
                        break;
                if (got == 0 || steps < STORE_MAINTAIN_PROCS_PER_STEP) {
                        /* This tier is done for every process. */
                        s->pass_tier++;
                        s->pass_key = 0;
                }
        }
        if (s->pass_tier >= s->config.n_tiers) {
                /* Censuses older than the longest tier (they are bounded per process as they are
                 * written), then exited processes whose every row has aged out of it, with their
                 * censuses and whatever points they still have (none but stamped after the exit:
                 * left behind, they would belong to no process, or to the next one given the key,
                 * which SQLite reuses once the highest is gone). */
                static const char *const sql[] = {
                        "DELETE FROM censuses WHERE t < ?1",
                        "DELETE FROM censuses WHERE proc IN (SELECT key FROM processes WHERE exited_at > 0 AND exited_at < ?1)",
                        "DELETE FROM points WHERE tier = ?2 AND proc IN (SELECT key FROM processes WHERE exited_at > 0 AND exited_at < ?1)",
                        "DELETE FROM processes WHERE exited_at > 0 AND exited_at < ?1",
                };
                double cutoff = now - s->config.tiers[s->config.n_tiers - 1].retention * s->stats.budget_factor;

                for (size_t i = 0; i < ELEMENTSOF(sql); i++) {
                        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
                        /* the points' statement once per tier: the key's prefix, no table scan */
                        bool per_tier = strstr(sql[i], "?2") != NULL;

                        rc = sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL);
                        for (size_t tier = 0; rc == SQLITE_OK && tier < (per_tier ? s->config.n_tiers : 1); tier++) {
                                sqlite3_reset(st);
                                sqlite3_bind_double(st, 1, cutoff);
                                if (per_tier)
                                        sqlite3_bind_int64(st, 2, (int64_t) tier);
                                rc = sqlite3_step(st);
                                if (rc == SQLITE_DONE) {
                                        if (i + 1 < ELEMENTSOF(sql)) /* rows, not the processes */
                                                deleted += (size_t) sqlite3_changes(s->db);
                                        rc = SQLITE_OK;
                                }
                        }
                        if (rc != SQLITE_OK) {
                                r = sqlite_errno(rc);
                                goto fail;
                        }
                }
                s->pass_active = false;
        }
        if ((r = exec_sql(s->db, "COMMIT")) < 0)
                goto fail;
        *ret_deleted = deleted;
        return 0;
fail:
        (void) exec_sql(s->db, "ROLLBACK");
        return r;
}

/* Whether the file at s->path is no longer the one open: deleted (the open one lives on,
 * unlinked, and all written to it is lost at the next restart) or replaced. */
static bool file_replaced(const Store *s) {
        struct stat st;

        if (stat(s->path, &st) < 0)
                return errno == ENOENT;
        return st.st_dev != s->file_dev || st.st_ino != s->file_ino;
}

int store_maintain(Store *s, double now, unsigned vacuum_pages) {
        uint64_t t0 = now_usec_monotonic(), used = 0, budget;
        double took, c0 = thread_cpu_seconds();
        int r, free_pages, more = 0;
        bool fs_binds;

        if (!s)
                return -EINVAL;
        if (store_is_available(s) && file_replaced(s)) {
                log_warning("History database %s was deleted or replaced under heapwatchd; going on with the file at "
                            "that path.", s->path);
                s->stats.reopened_total++;
                store_close_db(s);
                s->checked = false;
                (void) store_try_open(s, now);
        }
        if (!store_is_available(s)) {
                /* A full disk leaves the file open and readable: its size still tells the
                 * operator what it takes (heapwatch_store_disk_bytes froze at its last value). */
                if (store_is_readable(s))
                        (void) measure_disk(s, &used);
                /* Full: thinning to the budget goes on (a delete fits in the WAL once the
                 * checkpointer has copied it back, and a vacuum gives pages back to the file
                 * system), or a disk the history filled would stay full for good. */
                if (!store_is_readable(s) || s->last_write_error != -ENOSPC)
                        return 0;
        }

        if (!s->pass_active && now - s->pass_started >= STORE_MAINTAIN_PASS_SECONDS) {
                s->pass_active = true;
                s->pass_started = now;
                s->pass_tier = 0;
                s->pass_key = 0;
        }
        if (s->pass_active) {
                size_t deleted = 0;
                r = delete_step(s, now, &deleted);
                if (r < 0)
                        return store_write_failed(s, r, now);
                s->stats.rows_deleted_total += deleted;
                more = s->pass_active;
        }

        free_pages = measure_disk(s, &used);
        if (free_pages < 0)
                return store_write_failed(s, free_pages, now);
        budget = effective_budget(s);
        s->stats.budget_bytes = budget == UINT64_MAX ? 0 : budget;
        fs_binds = budget != UINT64_MAX && (s->config.max_disk_bytes == 0 || budget < s->config.max_disk_bytes);
        if (fs_binds && used > budget && !s->keep_free_noted) {
                log_notice("The file system holding %s is short of room: history is thinned to keep %.0f %% of it "
                           "free (a budget of %" PRIu64 " bytes instead of max-disk-bytes).",
                           s->path, STORE_KEEP_FREE_SHARE * 100, budget);
                s->keep_free_noted = true;
        } else if (!fs_binds)
                s->keep_free_noted = false;
        if (budget != UINT64_MAX && !s->pass_active) {
                /* Over budget: keep a smaller share of every tier's retention, so each tier
                 * loses its oldest rows first and the coarse tiers still reach far back.
                 * Under 80 %, the share grows back slowly. */
                if (used > budget) {
                        s->stats.budget_factor = fmax(0.001, s->stats.budget_factor * 0.9);
                        s->pass_active = true;
                        s->pass_started = now;
                        s->pass_tier = 0;
                        s->pass_key = 0;
                        more = 1;
                } else if (used < budget * 0.8 && s->stats.budget_factor < 1.0)
                        s->stats.budget_factor = fmin(1.0, s->stats.budget_factor * 1.02);
        }
        /* Only a file made with auto_vacuum=INCREMENTAL gives pages back (one rebuilt by
         * .recover has NONE: then incremental_vacuum frees nothing, and the step came back every
         * 20 ms for ever). SQLite reuses free pages either way. */
        if (free_pages > 0 && vacuum_pages > 0 && s->incremental_vacuum) {
                char sql[64];
                snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%u)", vacuum_pages);
                r = exec_sql(s->db, sql);
                if (r < 0)
                        return store_write_failed(s, r, now);
                s->stats.pages_vacuumed_total += (unsigned) free_pages < vacuum_pages ? (unsigned) free_pages : vacuum_pages;
                if ((unsigned) free_pages > vacuum_pages)
                        more = 1;
        }
        took = (double) (now_usec_monotonic() - t0) / USEC_PER_SEC;
        s->stats.maintenance_steps_total++;
        note_stall(took, thread_cpu_seconds() - c0, &s->stats.maintenance_seconds_max,
                   &s->stats.maintenance_cpu_seconds_max, &s->stats.maintenance_over_5ms_total);
        return more;
}

/* --- reads ---------------------------------------------------------------------------------- */

int store_read(Store *s, const char *id, size_t tier, double from, double to, size_t max_rows, StoreRowFunc cb,
               void *userdata, size_t *ret_n) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        size_t n = 0;
        int64_t key;
        int rc, r;

        if (!s || !id || !cb || tier >= s->config.n_tiers || !(from <= to))
                return -EINVAL;
        if (!store_is_readable(s))
                return -EAGAIN;
        r = resolve_key(s, id, false, &key);
        if (r < 0)
                return r;
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT t, n, data FROM points WHERE tier = ? AND proc = ? AND t >= ? AND t <= ? "
                                "ORDER BY t LIMIT ?", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_int64(st, 1, (int64_t) tier);
        sqlite3_bind_int64(st, 2, key);
        sqlite3_bind_int64(st, 3, (int64_t) ceil(fmax(from, -1e15)));
        sqlite3_bind_int64(st, 4, (int64_t) floor(fmin(to, 1e15)));
        sqlite3_bind_int64(st, 5, (int64_t) (max_rows > INT64_MAX ? INT64_MAX : max_rows));
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreAgg aggs[_HISTORY_METRIC_MAX];
                int64_t cnt = sqlite3_column_int64(st, 1);

                /* A row we cannot read is skipped: one damaged row must not hide the rest. */
                if (store_decode_aggs(sqlite3_column_blob(st, 2), (size_t) sqlite3_column_bytes(st, 2), aggs) < 0 ||
                    cnt <= 0 || cnt > UINT32_MAX)
                        continue;
                r = cb(userdata, (double) sqlite3_column_int64(st, 0), (uint32_t) cnt, aggs);
                if (r < 0)
                        return r;
                n++;
        }
        if (rc != SQLITE_DONE)
                return sqlite_errno(rc);
        if (ret_n)
                *ret_n = n;
        return 0;
}

int store_span(Store *s, const char *id, size_t tier, double *ret_first, double *ret_last) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        int64_t key;
        int rc, r;

        if (!s || !id || tier >= s->config.n_tiers)
                return -EINVAL;
        if (!store_is_readable(s))
                return -EAGAIN;
        r = resolve_key(s, id, false, &key);
        if (r < 0)
                return r;
        rc = sqlite3_prepare_v2(s->db, "SELECT min(t), max(t) FROM points WHERE tier = ? AND proc = ?", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_int64(st, 1, (int64_t) tier);
        sqlite3_bind_int64(st, 2, key);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return sqlite_errno(rc);
        if (sqlite3_column_type(st, 0) == SQLITE_NULL)
                return -ENOENT;
        if (ret_first)
                *ret_first = (double) sqlite3_column_int64(st, 0);
        if (ret_last)
                *ret_last = (double) sqlite3_column_int64(st, 1);
        return 0;
}

#define CENSUS_COLUMNS \
        "t, finding_since, request_id, duration_seconds, gil_seconds, gil_cpu_seconds, budget_seconds, slices," \
        " complete, sampled, consistent, fraction, objects, types_total, types"

/* Returns 0, -EBADMSG for a row that does not decode. */
static int census_from_row(sqlite3_stmt *st, CensusRecord *r, double *ret_finding_since) {
        int64_t id = sqlite3_column_int64(st, 2), slices = sqlite3_column_int64(st, 7);

        if (id < 0 || id > UINT32_MAX || slices < 0 || slices > UINT32_MAX)
                return -EBADMSG;
        *r = (CensusRecord) {
                .time = sqlite3_column_double(st, 0),
                .id = (uint32_t) id,
                .duration_seconds = sqlite3_column_double(st, 3),
                .gil_seconds = sqlite3_column_double(st, 4),
                .gil_cpu_seconds = sqlite3_column_double(st, 5),
                .budget_seconds = sqlite3_column_double(st, 6),
                .slices = (unsigned) slices,
                .complete = sqlite3_column_int(st, 8) != 0,
                .sampled = sqlite3_column_int(st, 9) != 0,
                .consistent = sqlite3_column_int(st, 10) != 0,
                .fraction = sqlite3_column_double(st, 11),
                .objects = (uint64_t) sqlite3_column_int64(st, 12),
                .types_total = (uint64_t) sqlite3_column_int64(st, 13),
        };
        *ret_finding_since = sqlite3_column_double(st, 1);
        return store_decode_census_types(sqlite3_column_blob(st, 14), (size_t) sqlite3_column_bytes(st, 14), r->types,
                                         &r->n_types);
}

/* Run one census query (?1 process key, ?2 and ?3 times, ?4 a row limit) and hand each row
 * that decodes to cb; *n counts the delivered ones. */
static int census_query(Store *s, const char *sql, int64_t key, double a, double b, size_t limit,
                        StoreCensusFunc cb, void *userdata, size_t *n) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ CensusRecord *rec = malloc(sizeof *rec); /* ~18 KiB: not on the stack */
        int rc, r;

        if (!rec)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_int64(st, 1, key);
        sqlite3_bind_double(st, 2, a);
        sqlite3_bind_double(st, 3, b);
        sqlite3_bind_int64(st, 4, (int64_t) (limit > INT64_MAX ? INT64_MAX : limit));
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                double since;

                /* A row we cannot read is skipped: one damaged row must not hide the rest. */
                if (census_from_row(st, rec, &since) < 0)
                        continue;
                r = cb(userdata, rec, since);
                if (r < 0)
                        return r;
                (*n)++;
        }
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

static int census_key(Store *s, const char *id, StoreCensusFunc cb, int64_t *ret) {
        if (!s || !id || !cb)
                return -EINVAL;
        if (!store_is_readable(s))
                return -EAGAIN;
        return resolve_key(s, id, false, ret);
}

int store_read_censuses(Store *s, const char *id, double from, double to, size_t max, StoreCensusFunc cb,
                        void *userdata, size_t *ret_n) {
        size_t n = 0;
        int64_t key;
        int r;

        if (!(from <= to))
                return -EINVAL;
        r = census_key(s, id, cb, &key);
        if (r < 0)
                return r;
        r = census_query(s, "SELECT " CENSUS_COLUMNS " FROM censuses WHERE proc = ?1 AND t >= ?2 AND t <= ?3"
                         " ORDER BY t LIMIT ?4", key, from, to, max, cb, userdata, &n);
        if (ret_n)
                *ret_n = n;
        return r;
}

int store_load_censuses(Store *s, const char *id, size_t max, StoreCensusFunc cb, void *userdata, size_t *ret_n) {
        static const char newest[] = "SELECT * FROM (SELECT " CENSUS_COLUMNS " FROM censuses WHERE proc = ?1 AND"
                                     " t > ?2 AND t <= ?3 ORDER BY t DESC LIMIT ?4) ORDER BY t";
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        double baseline = -1e300;
        size_t n = 0;
        int64_t key;
        int rc, r;

        r = census_key(s, id, cb, &key);
        if (r < 0)
                return r;
        if (max == 0)
                goto done;
        /* The baseline of the finding open at the newest census: the first at or after it. */
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT min(c.t) FROM censuses c, (SELECT finding_since f FROM censuses WHERE proc = ?1"
                                " ORDER BY t DESC LIMIT 1) WHERE c.proc = ?1 AND f > 0 AND c.t >= f", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_int64(st, 1, key);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return sqlite_errno(rc);
        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
                baseline = sqlite3_column_double(st, 0);
                r = census_query(s, "SELECT " CENSUS_COLUMNS " FROM censuses WHERE proc = ?1 AND t >= ?2 AND t <= ?3"
                                 " ORDER BY t LIMIT ?4", key, baseline, baseline, 1, cb, userdata, &n);
                if (r < 0)
                        return r;
                max--;
        }
        /* Then the newest after it (all of the newest without a finding). */
        r = census_query(s, newest, key, baseline, 1e300, max, cb, userdata, &n);
done:
        if (ret_n)
                *ret_n = n;
        return r;
}

static void column_text(sqlite3_stmt *st, int i, char *buf, size_t size) {
        const unsigned char *text = sqlite3_column_text(st, i);
        snprintf(buf, size, "%s", text ? (const char *) text : "");
}

#define PROCESS_COLUMNS \
        "id, pid, ppid, uid, gid, start_ticks, start_time, service, hostname, agent_version, python_version, argv," \
        " connected_at, exited_at, exit_reason, last_sample_at, samples, last_rss_bytes, last_python_blocks, leak_verdict"

static void process_from_row(sqlite3_stmt *st, StoreProcessInfo *p) {
        memset(p, 0, sizeof *p);
        column_text(st, 0, p->id, sizeof p->id);
        p->pid = sqlite3_column_int64(st, 1);
        p->ppid = sqlite3_column_int64(st, 2);
        p->uid = sqlite3_column_int64(st, 3);
        p->gid = sqlite3_column_int64(st, 4);
        p->start_time_ticks = sqlite3_column_int64(st, 5);
        p->start_time = sqlite3_column_double(st, 6);
        column_text(st, 7, p->service, sizeof p->service);
        column_text(st, 8, p->hostname, sizeof p->hostname);
        column_text(st, 9, p->agent_version, sizeof p->agent_version);
        column_text(st, 10, p->python_version, sizeof p->python_version);
        column_text(st, 11, p->argv_json, sizeof p->argv_json);
        if (!p->argv_json[0])
                snprintf(p->argv_json, sizeof p->argv_json, "[]");
        p->connected_at = sqlite3_column_double(st, 12);
        p->exited_at = sqlite3_column_double(st, 13);
        column_text(st, 14, p->exit_reason, sizeof p->exit_reason);
        p->last_sample_at = sqlite3_column_double(st, 15);
        p->samples = sqlite3_column_int64(st, 16);
        p->last_rss_bytes = sqlite3_column_type(st, 17) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 17);
        p->last_python_allocated_blocks = sqlite3_column_type(st, 18) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 18);
        column_text(st, 19, p->leak_verdict, sizeof p->leak_verdict);
}

int store_get_process(Store *s, const char *id, StoreProcessInfo *ret) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        int rc;

        if (!s || !id || !ret)
                return -EINVAL;
        /* What this daemon holds in memory is newer than the file. */
        for (StoreSeries *ss = s->series; ss; ss = ss->next)
                if (ss->has_info && strcmp(ss->id, id) == 0) {
                        *ret = ss->info;
                        return 0;
                }
        if (!store_is_readable(s))
                return -EAGAIN;
        rc = sqlite3_prepare_v2(s->db, "SELECT " PROCESS_COLUMNS " FROM processes WHERE id = ? AND pid IS NOT NULL",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sqlite_errno(rc);
        process_from_row(st, ret);
        return 0;
}

int store_list_processes(Store *s, double exited_since, bool exited_only, size_t max, StoreProcessFunc cb,
                         void *userdata) {
        _cleanup_sqlite_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        if (!s || !cb)
                return -EINVAL;
        if (!store_is_readable(s))
                return -EAGAIN;
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT " PROCESS_COLUMNS " FROM processes WHERE pid IS NOT NULL AND"
                                " ((exited_at = 0 AND NOT ?3) OR exited_at >= ?1) ORDER BY exited_at = 0 DESC,"
                                " exited_at DESC LIMIT ?2",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        sqlite3_bind_double(st, 1, exited_since);
        sqlite3_bind_int64(st, 2, (int64_t) (max > INT64_MAX ? INT64_MAX : max));
        sqlite3_bind_int(st, 3, exited_only);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreProcessInfo info;
                process_from_row(st, &info);
                r = cb(userdata, &info);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        /* One last attempt also after writes failed or the file would not open: a disk that was
         * full may have room again before the next retry was due, and what is not written now
         * is lost (it was skipped, found by review). A failure just fails again, quickly. */
        if (s->pending_n > 0 || s->series) {
                int r;

                s->next_open_attempt = 0;
                r = store_flush(s, now_unix(), 1000, 0);
                if (r < 0 && s->pending_n > 0)
                        log_warning_errno(r, "Stopping with %zu rows of history not written to %s: %m", s->pending_n,
                                          s->path);
        }
        store_close_db(s);
        while (s->pending_n > 0)
                pending_pop(s, false);
        free(s->pending);
        pthread_mutex_destroy(&s->ckpt_lock);
        pthread_cond_destroy(&s->ckpt_wake);
        while (s->series) {
                StoreSeries *ss = s->series;
                s->series = ss->next;
                series_free(ss);
        }
        free(s);
        return NULL;
}
