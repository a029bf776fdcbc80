/* SPDX-License-Identifier: MIT */
/*
 * Durable history in SQLite (WAL): downsampled tiers of every process's series and the process
 * records themselves, so history outlives the daemon. Raw samples stay in memory (history.c);
 * here each sample is folded into one open bucket per tier (min, max, mean, last of every
 * HistoryMetric), and buckets, closed or still open, are written in batched transactions by
 * store_flush(), driven by a timer of the caller's. Because open buckets are written too, a
 * crash loses at most the samples of the last flush interval.
 *
 * Everything is bounded: rows waiting for a failing disk (pending queue), rows a query returns,
 * the work one maintenance step does (retention, disk budget, incremental vacuum), so that no
 * call stalls the event loop for more than a few milliseconds. The store never fails the
 * caller's ingest: when the database is unavailable (unwritable directory, full disk, damage
 * found while running) it keeps buckets in memory, says so through store_is_available() and
 * the counters, and tries again on the next flush. No logging except the few state changes an
 * operator must see (opened, moved aside, unavailable, available again), rate-limited.
 * Called from the event loop only; internally one helper thread with its own connection runs
 * WAL checkpoints (the only long write: an fsync), so commits on the loop only append.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "census.h"
#include "history.h"
#include "sample.h"

#define STORE_TIERS_MAX 4
#define STORE_ID_MAX 48 /* == PROCESS_ID_MAX */
#define STORE_FILE_NAME "history.db"
/* Censuses stored per process (the newest, plus the baseline of the finding open at the newest)
 * and held unwritten per process while the disk fails. A census is rare (one per
 * --census-interval while a finding is open) but about 2 KiB (64 types of ~25-byte names, 33
 * bytes each). */
#define STORE_CENSUSES_PER_PROCESS 16
#define STORE_CENSUS_PENDING_MAX 8

typedef struct StoreTier {
        double resolution; /* bucket length, whole seconds >= 1 */
        double retention;  /* seconds kept */
} StoreTier;

typedef struct StoreConfig {
        char state_dir[256];
        StoreTier tiers[STORE_TIERS_MAX]; /* finest first, strictly increasing resolution and retention */
        size_t n_tiers;
        double flush_interval;   /* seconds between batched writes */
        uint64_t max_disk_bytes; /* budget of database pages in use (the WAL is bounded apart); 0: unlimited */
        size_t pending_max_rows; /* closed buckets kept while the disk fails; oldest dropped beyond */
        double check_seconds;    /* time bound of the integrity check at open */
        char boot_id[40];        /* this boot's /proc/sys/kernel/random/boot_id; "" unknown */
} StoreConfig;

#define STORE_DEFAULT_FLUSH_INTERVAL 10.0
#define STORE_DEFAULT_MAX_DISK_BYTES (1024ULL * 1024 * 1024)
#define STORE_DEFAULT_PENDING_MAX_ROWS 200000
#define STORE_DEFAULT_CHECK_SECONDS 5.0

/* 10 s for 2 days, 1 min for 14 days, 10 min for 180 days; 10 s flushes; 1 GiB; the boot id
 * read from the kernel. */
void store_config_default(StoreConfig *c);
/* Parse "10s:2d,1m:14d,10m:180d" (units s, m, h, d; resolution:retention) into c->tiers.
 * Returns 0 or -EINVAL with a message in error[]. */
int store_tiers_parse(StoreConfig *c, const char *s, char *error, size_t error_size);
/* Check ranges and the ordering of tiers. Returns 0 or -EINVAL with a message. */
int store_config_validate(const StoreConfig *c, char *error, size_t error_size);

/* One bucket of one metric. */
typedef struct StoreAgg {
        double min, max, mean, last;
} StoreAgg;

/* The persisted part of a process record (what outlives the daemon). Strings are truncated to
 * fit and always NUL-terminated. */
typedef struct StoreProcessInfo {
        char id[STORE_ID_MAX];
        int64_t pid, ppid, uid, gid;
        int64_t start_time_ticks;
        double start_time;
        char service[HW_SERVICE_MAX + 1];
        char hostname[HW_HOSTNAME_MAX + 1];
        char agent_version[HW_SHORT_STRING_MAX + 1];
        char python_version[HW_SHORT_STRING_MAX + 1];
        char argv_json[1024]; /* a JSON array of strings, "[]" when unknown */
        double connected_at;
        double exited_at;        /* 0 while live */
        char exit_reason[24];    /* "", "exit", "stop", "connection_lost", "oom_killed" */
        double last_sample_at;   /* 0 without samples */
        int64_t samples;
        int64_t last_rss_bytes;  /* -1 unknown */
        int64_t last_python_allocated_blocks; /* -1 unknown */
        char leak_verdict[16];   /* "none", "suspect", "leak" */
} StoreProcessInfo;

typedef struct Store Store;
typedef struct StoreSeries StoreSeries;

typedef struct StoreStats {
        bool available;
        uint64_t rows_written_total;
        uint64_t rows_dropped_total;    /* pending queue overflow while unavailable */
        uint64_t flushes_total;
        uint64_t flush_failures_total;
        uint64_t rows_deleted_total;    /* retention and budget */
        uint64_t reopened_total;        /* the file deleted or replaced under the daemon, opened anew */
        uint64_t pages_vacuumed_total;
        uint64_t moved_aside_total;     /* damaged databases moved aside */
        double flush_seconds_last;      /* longest single transaction of the last flush */
        double flush_seconds_max;       /* longest single transaction since start */
        double maintenance_seconds_max; /* longest retention/budget/vacuum step since start */
        double checkpoint_seconds_max;  /* longest WAL checkpoint (on the checkpointer thread) */
        double flush_cpu_seconds_max;   /* the most CPU one transaction took (wall minus preemption) */
        double maintenance_cpu_seconds_max;
        uint64_t transactions_total, transactions_over_5ms_total; /* write transactions; wall > 5 ms */
        uint64_t maintenance_steps_total, maintenance_over_5ms_total;
        uint64_t disk_bytes;            /* database + WAL files, last measured */
        uint64_t used_bytes;            /* database pages in use: what max_disk_bytes bounds */
        uint64_t budget_bytes;          /* the bound in force on used_bytes (max_disk_bytes, or less to
                                         * keep the file system 15 % free); 0: none */
        double budget_factor;           /* share of each tier's retention kept under the budget */
        size_t pending_rows;
} StoreStats;

/* Open (creating) <state_dir>/history.db. A database that cannot be read or fails the bounded
 * integrity check is moved aside (history.db.corrupt-<unix time>) and a fresh one created; a
 * directory that cannot be written leaves the store unavailable (it retries on each flush).
 * Returns 0 and *ret in both cases (check store_is_available()), -EINVAL for a bad config,
 * -ENOMEM. Logs what it does. `now` is the Unix time. */
int store_open(const StoreConfig *c, double now, Store **ret);
/* Flushes what it can (one bounded pass), closes. Accepts NULL. */
Store *store_free(Store *s);

bool store_is_available(const Store *s); /* being written */
bool store_is_readable(const Store *s);  /* open (writes may be failing: full disk) */
void store_get_stats(const Store *s, StoreStats *ret);
const StoreConfig *store_get_config(const Store *s);
/* Live change (reload): the tiers' retentions, the disk budget and the flush interval of c.
 * Returns 0, or -EINVAL if c's tiers differ in number or resolution (that needs a restart). The
 * next maintenance steps apply the new retention. */
int store_set_retention(Store *s, const StoreConfig *c);

/* The series handle of one process record (created on first use; the same id gives the same
 * handle while it is open). On restart the last stored bucket of each tier is loaded so that
 * samples arriving in it extend it rather than replace it. Returns 0 and *ret, -ENOMEM, -EINVAL. */
int store_series_get(Store *s, const char *id, StoreSeries **ret);
/* Forget the handle (after a final flush of its buckets); the rows stay. Accepts NULL. */
void store_series_release(Store *s, StoreSeries *ss);

/* Fold one point into every tier's open bucket; a bucket the point leaves behind is queued for
 * the next flush. Points older than the open bucket of a tier are ignored by that tier.
 * Returns 0, -ENOMEM. */
int store_series_add(Store *s, StoreSeries *ss, const HistoryPoint *pt);
/* Record (upsert) the process row at the next flush. */
void store_series_set_info(Store *s, StoreSeries *ss, const StoreProcessInfo *info);

/* Queue one census for the next flush (a copy is taken). finding_since: the opening time of the
 * finding open when it was taken (0: none); the first census at or after it is that finding's
 * baseline and is kept past STORE_CENSUSES_PER_PROCESS. Beyond STORE_CENSUS_PENDING_MAX unwritten
 * ones per process the oldest is dropped (counted in rows_dropped_total). Returns 0, -ENOMEM,
 * -EINVAL. */
int store_series_add_census(Store *s, StoreSeries *ss, const CensusRecord *r, double finding_since);

/* Write pending rows and open buckets, in transactions of at most `max_rows` rows each, until
 * done or `budget_seconds` have been spent (0: no limit). Returns 1 when everything was
 * written, 0 when work remains (call again soon), -errno when the database failed (the data is
 * kept; the store becomes unavailable and is reopened by a later call). */
int store_flush(Store *s, double now, size_t max_rows, double budget_seconds);

/* One bounded step of housekeeping: retention per tier and of exited processes, the disk
 * budget (thinning each tier from its oldest end), then incremental vacuum of at most
 * `vacuum_pages` pages. Returns 1 when more work is pending, 0 when idle, -errno. */
int store_maintain(Store *s, double now, unsigned vacuum_pages);

/* Read buckets of one process and tier in [from, to] (bucket start times), oldest first, at
 * most max_rows. cb returns < 0 to stop (that value is returned). ret_n: rows delivered.
 * Returns 0, -ENOENT for an unknown id, -errno. */
typedef int (*StoreRowFunc)(void *userdata, double t, uint32_t n, const StoreAgg aggs[_HISTORY_METRIC_MAX]);
int store_read(Store *s, const char *id, size_t tier, double from, double to, size_t max_rows, StoreRowFunc cb,
               void *userdata, size_t *ret_n);
/* Oldest and newest bucket start stored for (id, tier). Returns 0, -ENOENT when none. */
int store_span(Store *s, const char *id, size_t tier, double *ret_first, double *ret_last);

/* Stored censuses of one process. cb gets each record (its types included) and the opening time
 * of the finding open when it was taken; it returns < 0 to stop (that value is returned). */
typedef int (*StoreCensusFunc)(void *userdata, const CensusRecord *r, double finding_since);
/* Those with a time in [from, to], oldest first, at most max; ret_n: how many were delivered.
 * Returns 0, -ENOENT for an unknown id, -EAGAIN when the database is not open, -errno. A row
 * that cannot be decoded is skipped. */
int store_read_censuses(Store *s, const char *id, double from, double to, size_t max, StoreCensusFunc cb,
                        void *userdata, size_t *ret_n);
/* What a restart puts back into memory (census.c keeps at most `max`): the newest `max`
 * censuses, oldest first, with the baseline of the finding open at the newest one in place of
 * the oldest when it is older (its evidence is measured from there). Same returns. */
int store_load_censuses(Store *s, const char *id, size_t max, StoreCensusFunc cb, void *userdata, size_t *ret_n);

/* Encoding of a census's types (exposed for tests): per type the name's length and bytes,
 * count and size as varints; at most STORE_CENSUS_BLOB_MAX bytes. */
#define STORE_CENSUS_BLOB_MAX (CENSUS_TYPES_MAX * (2 + HW_CENSUS_TYPE_NAME_MAX + 2 * 10))
size_t store_encode_census_types(const CensusType *types, size_t n, uint8_t out[STORE_CENSUS_BLOB_MAX]);
/* Returns 0 and *ret_n, or -EBADMSG (truncated, overlong, a name too long or with a NUL, more
 * than CENSUS_TYPES_MAX types). */
int store_decode_census_types(const uint8_t *blob, size_t len, CensusType types[CENSUS_TYPES_MAX], size_t *ret_n);

/* Process records. */
int store_get_process(Store *s, const char *id, StoreProcessInfo *ret);
/* Each process record that ended at or after exited_since and, unless exited_only, each one
 * still live when last written (those first); then most recently ended first; at most max.
 * cb returns < 0 to stop (that value is returned). */
typedef int (*StoreProcessFunc)(void *userdata, const StoreProcessInfo *info);
int store_list_processes(Store *s, double exited_since, bool exited_only, size_t max, StoreProcessFunc cb,
                         void *userdata);

/* Encoding of one bucket row (exposed for tests): at most STORE_BLOB_MAX bytes. */
#define STORE_BLOB_MAX (1 + _HISTORY_METRIC_MAX * (1 + 4 * 10))
size_t store_encode_aggs(const StoreAgg aggs[_HISTORY_METRIC_MAX], uint8_t out[STORE_BLOB_MAX]);
/* Returns 0 or -EBADMSG (truncated, overlong, unknown tag bits). Metrics the blob lacks are NAN. */
int store_decode_aggs(const uint8_t *blob, size_t len, StoreAgg aggs[_HISTORY_METRIC_MAX]);
