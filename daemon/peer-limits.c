/* SPDX-License-Identifier: MIT */
/*
 * Limit counters and token buckets (see limits.h). The bucket table is a flat array searched
 * linearly: it holds at most a few thousand keys and is consulted per HTTP request, never per
 * agent sample, so a hash table would buy nothing measurable.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "peer-limits.h"
#include "macro.h"

static uint64_t hits[_LIMIT_MAX];

const char *limit_kind_to_string(LimitKind k) {
        static const char *const table[_LIMIT_MAX] = {
                [LIMIT_AGENT_CONNECTIONS] = "agent_connections",
                [LIMIT_AGENT_CONNECTIONS_PER_UID] = "agent_connections_per_uid",
                [LIMIT_FRAME_SIZE] = "frame_size",
                [LIMIT_FRAME_RATE] = "frame_rate",
                [LIMIT_HELLO_TIMEOUT] = "agent_hello_timeout",
                [LIMIT_AGENT_IDLE_TIMEOUT] = "agent_idle_timeout",
                [LIMIT_PROCESSES] = "processes",
                [LIMIT_MESSAGE_FIELD] = "message_field",
                [LIMIT_HEAP_SITES] = "heap_sites",
                [LIMIT_HTTP_CONNECTIONS] = "http_connections",
                [LIMIT_HTTP_CONNECTIONS_PER_ADDRESS] = "http_connections_per_address",
                [LIMIT_HTTP_CONNECTIONS_EVICTED] = "http_connections_evicted",
                [LIMIT_HTTP_CONNECTION_MEMORY] = "http_connection_memory",
                [LIMIT_HTTP_TIMEOUT] = "http_timeout",
                [LIMIT_HTTP_REQUEST_RATE] = "http_request_rate",
                [LIMIT_SERIES_POINTS] = "series_points",
                [LIMIT_AGENT_WORK_RATE] = "agent_work_rate",
                [LIMIT_HTTP_RESPONSE_BUDGET] = "http_response_budget",
                [LIMIT_HTTP_QUERY_PARAMETERS] = "http_query_parameters",
        };
        if ((unsigned) k >= ELEMENTSOF(table))
                return NULL;
        return table[k];
}

void limit_hits_add(LimitKind k, uint64_t n) {
        if ((unsigned) k < _LIMIT_MAX)
                hits[k] += n;
}

void limit_hit(LimitKind k) {
        limit_hits_add(k, 1);
}

uint64_t limit_hits_get(LimitKind k) {
        return (unsigned) k < _LIMIT_MAX ? hits[k] : 0;
}

void limit_hits_reset(void) {
        memset(hits, 0, sizeof hits);
}

void limits_write_metrics(FILE *f) {
        fputs("# HELP heapwatch_daemon_limit_hits_total Times a limit on what a peer controls refused, dropped or "
              "cut something short, by limit (docs/security.md).\n"
              "# TYPE heapwatch_daemon_limit_hits_total counter\n",
              f);
        for (int k = 0; k < _LIMIT_MAX; k++)
                fprintf(f, "heapwatch_daemon_limit_hits_total{limit=\"%s\"} %" PRIu64 "\n",
                        limit_kind_to_string((LimitKind) k), hits[k]);
}

static void token_bucket_refill(TokenBucket *b, double rate, double burst, uint64_t now_usec) {
        if (b->last_usec == 0) {
                b->tokens = burst;
                b->last_usec = now_usec;
                return;
        }
        /* A monotonic clock does not go back; tolerate it anyway (a caller passing an older
         * time must not mint tokens). */
        if (now_usec > b->last_usec) {
                b->tokens += (double) (now_usec - b->last_usec) / 1e6 * rate;
                b->last_usec = now_usec;
        }
        if (b->tokens > burst)
                b->tokens = burst;
}

bool token_bucket_take(TokenBucket *b, double rate, double burst, uint64_t now_usec) {
        if (rate <= 0)
                return true;
        if (burst < 1)
                burst = 1;
        token_bucket_refill(b, rate, burst, now_usec);
        if (b->tokens < 1)
                return false;
        b->tokens -= 1;
        return true;
}

double token_bucket_wait(const TokenBucket *b, double rate, double burst, uint64_t now_usec) {
        TokenBucket copy = *b;

        if (rate <= 0)
                return 0;
        token_bucket_refill(&copy, rate, burst < 1 ? 1 : burst, now_usec);
        return copy.tokens >= 1 ? 0 : (1 - copy.tokens) / rate;
}

typedef struct BucketEntry {
        char key[BUCKET_KEY_MAX];
        TokenBucket bucket;
} BucketEntry;

struct BucketTable {
        double rate, burst;
        size_t capacity, n;
        BucketEntry *entries;
        TokenBucket overflow; /* shared by keys that found no slot */
};

BucketTable *bucket_table_new(size_t capacity, double rate, double burst) {
        BucketTable *t;

        if (capacity == 0)
                return NULL;
        t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        t->entries = calloc(capacity, sizeof *t->entries);
        if (!t->entries) {
                free(t);
                return NULL;
        }
        t->capacity = capacity;
        bucket_table_set_rate(t, rate, burst);
        return t;
}

BucketTable *bucket_table_free(BucketTable *t) {
        if (!t)
                return NULL;
        free(t->entries);
        free(t);
        return NULL;
}

void bucket_table_set_rate(BucketTable *t, double rate, double burst) {
        t->rate = rate;
        t->burst = burst < 1 ? 1 : burst;
}

size_t bucket_table_size(const BucketTable *t) {
        return t ? t->n : 0;
}

/* A slot for key: its own, a free one, or one whose bucket has refilled; NULL if none. */
static BucketEntry *bucket_table_slot(BucketTable *t, const char *key, uint64_t now_usec) {
        BucketEntry *e;

        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->entries[i].key, key) == 0)
                        return &t->entries[i];
        if (t->n < t->capacity)
                e = &t->entries[t->n++];
        else {
                e = NULL;
                for (size_t i = 0; i < t->n && !e; i++)
                        if (token_bucket_wait(&t->entries[i].bucket, t->rate, t->burst, now_usec) == 0) {
                                TokenBucket probe = t->entries[i].bucket;
                                token_bucket_refill(&probe, t->rate, t->burst, now_usec);
                                if (probe.tokens >= t->burst)
                                        e = &t->entries[i];
                        }
                if (!e)
                        return NULL;
        }
        memset(e, 0, sizeof *e);
        snprintf(e->key, sizeof e->key, "%s", key);
        return e;
}

bool bucket_table_take(BucketTable *t, const char *key, uint64_t now_usec, double *ret_retry_after) {
        BucketEntry *e;
        TokenBucket *b;

        if (t->rate <= 0)
                return true;
        e = bucket_table_slot(t, key ? key : "", now_usec);
        b = e ? &e->bucket : &t->overflow;
        if (token_bucket_take(b, t->rate, t->burst, now_usec))
                return true;
        if (ret_retry_after)
                *ret_retry_after = token_bucket_wait(b, t->rate, t->burst, now_usec);
        return false;
}

void limits_config_default(LimitsConfig *c) {
        *c = (LimitsConfig) {
                .max_connections_per_uid = LIMITS_DEFAULT_MAX_CONNECTIONS_PER_UID,
                .frames_per_second = LIMITS_DEFAULT_FRAMES_PER_SECOND,
                .frames_burst = LIMITS_DEFAULT_FRAMES_BURST,
                .hello_timeout = LIMITS_DEFAULT_HELLO_TIMEOUT,
                .idle_timeout = LIMITS_DEFAULT_IDLE_TIMEOUT,
                .http_max_connections = LIMITS_DEFAULT_HTTP_MAX_CONNECTIONS,
                .http_max_connections_per_address = LIMITS_DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS,
                .http_connection_memory = LIMITS_DEFAULT_HTTP_CONNECTION_MEMORY,
                .http_response_budget = LIMITS_DEFAULT_HTTP_RESPONSE_BUDGET,
                .http_timeout = LIMITS_DEFAULT_HTTP_TIMEOUT,
                .http_requests_per_second = LIMITS_DEFAULT_HTTP_REQUESTS_PER_SECOND,
                .work_per_minute_process = LIMITS_DEFAULT_WORK_PER_MINUTE_PROCESS,
                .work_per_minute_client = LIMITS_DEFAULT_WORK_PER_MINUTE_CLIENT,
        };
}
