/* SPDX-License-Identifier: MIT */
/*
 * Limits on what a peer controls (docs/security.md): one counter per limit, exported as the
 * single /metrics family heapwatch_daemon_limit_hits_total{limit="..."}, so an operator sees
 * which bound refused or dropped something; and the token bucket every rate limit is built on,
 * alone (per agent connection) or in a bounded table keyed by a string (per HTTP client
 * address, per process). Single-threaded (event loop); no I/O, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum LimitKind {
        LIMIT_AGENT_CONNECTIONS,         /* max-connections: connection refused */
        LIMIT_AGENT_CONNECTIONS_PER_UID, /* max-connections-per-uid: connection refused */
        LIMIT_FRAME_SIZE,                /* a frame header announced more than the maximum payload */
        LIMIT_FRAME_RATE,                /* max-frames-per-second: frame dropped undecoded */
        LIMIT_HELLO_TIMEOUT,             /* agent-hello-timeout: no HELLO in time, closed */
        LIMIT_AGENT_IDLE_TIMEOUT,        /* agent-idle-timeout: no complete frame in time, closed */
        LIMIT_PROCESSES,                 /* max-processes: HELLO refused */
        LIMIT_MESSAGE_FIELD,             /* a string or array longer than the protocol allows */
        LIMIT_HEAP_SITES,                /* heap sites merged into "other" (stack table full or unknown) */
        LIMIT_HTTP_CONNECTIONS,          /* http-max-connections: connection refused */
        LIMIT_HTTP_CONNECTIONS_PER_ADDRESS, /* http-max-connections-per-address: refused */
        LIMIT_HTTP_CONNECTIONS_EVICTED,  /* http-max-connections: oldest idle one closed for a new one */
        LIMIT_HTTP_CONNECTION_MEMORY,    /* http-connection-memory: URL/headers too large (414/431) */
        LIMIT_HTTP_TIMEOUT,              /* http-timeout: request head not complete in time, closed */
        LIMIT_HTTP_REQUEST_RATE,         /* http-requests-per-second: 429 */
        LIMIT_SERIES_POINTS,             /* /series asked for more points than the cap: step widened */
        LIMIT_AGENT_WORK_RATE,           /* agent work (census, profiles) per process/client: 429 */
        LIMIT_HTTP_RESPONSE_BUDGET,      /* http-response-budget: a large response refused with 503 */
        LIMIT_HTTP_QUERY_PARAMETERS,     /* more query parameters than HTTP_QUERY_PARAMETERS_MAX: 400 */
        _LIMIT_MAX,
} LimitKind;

/* "agent_connections", ...; NULL when out of range. */
const char *limit_kind_to_string(LimitKind k);

/* Count one hit (or n). */
void limit_hit(LimitKind k);
void limit_hits_add(LimitKind k, uint64_t n);
uint64_t limit_hits_get(LimitKind k);
/* Zero every counter (tests). */
void limit_hits_reset(void);

/* The heapwatch_daemon_limit_hits_total family with every limit, zeros included. */
void limits_write_metrics(FILE *f);

/* A token bucket: `rate` tokens per second refill it up to `burst`; each event takes one.
 * Zero-initialised it is full on first use. */
typedef struct TokenBucket {
        double tokens;
        uint64_t last_usec; /* monotonic; 0: never used */
} TokenBucket;

/* Take one token at now_usec (monotonic). Returns true if there was one. rate <= 0 means
 * unlimited (always true). */
bool token_bucket_take(TokenBucket *b, double rate, double burst, uint64_t now_usec);
/* Seconds until a token will be there (0 if one is). */
double token_bucket_wait(const TokenBucket *b, double rate, double burst, uint64_t now_usec);

/* Token buckets by key (a client address, a process id), at most `capacity` of them. A key that
 * finds no free slot evicts a bucket that has refilled completely (its owner has been quiet for
 * burst/rate seconds, so forgetting it changes nothing); when every slot is in use by an active
 * key, the newcomer shares one overflow bucket with every other such key, so cycling through
 * many keys (many addresses) earns nothing beyond that bucket. */
#define BUCKET_KEY_MAX 64
typedef struct BucketTable BucketTable;

/* Returns NULL on ENOMEM or capacity 0. */
BucketTable *bucket_table_new(size_t capacity, double rate, double burst);
BucketTable *bucket_table_free(BucketTable *t);
/* Change the rate and burst (reload); existing buckets keep their tokens (capped at burst). */
void bucket_table_set_rate(BucketTable *t, double rate, double burst);
/* Take a token for key (truncated to BUCKET_KEY_MAX - 1 bytes). true when allowed; with
 * ret_retry_after (may be NULL) set to the seconds until the next token when refused. */
bool bucket_table_take(BucketTable *t, const char *key, uint64_t now_usec, double *ret_retry_after);
size_t bucket_table_size(const BucketTable *t);

/* The configurable limits (options.c keys; defaults and reasons in docs/security.md). */
typedef struct LimitsConfig {
        size_t max_connections_per_uid;     /* agent connections one uid may hold */
        double frames_per_second;           /* per agent connection; 0: unlimited */
        double frames_burst;                /* back to back (an agent flushing its queue) */
        double hello_timeout;               /* seconds from connect to HELLO */
        double idle_timeout;                /* seconds without a complete frame */
        size_t http_max_connections;
        size_t http_max_connections_per_address;
        size_t http_connection_memory;      /* bytes per HTTP connection (URL + headers) */
        uint64_t http_response_budget;      /* bytes of responses queued and not yet sent, all connections */
        double http_timeout;                /* seconds for a request head to arrive */
        double http_requests_per_second;    /* per client address; burst twice that */
        double work_per_minute_process;     /* agent work requests per process; burst the same */
        double work_per_minute_client;      /* agent work requests per client address */
} LimitsConfig;

#define LIMITS_DEFAULT_MAX_CONNECTIONS_PER_UID 512
#define LIMITS_DEFAULT_FRAMES_PER_SECOND 50.0 /* 2.5x the fastest agent (interval 0.05 s) */
#define LIMITS_DEFAULT_FRAMES_BURST 500.0 /* an agent flushing its 64-frame queue, several times */
#define LIMITS_DEFAULT_HELLO_TIMEOUT 10.0
#define LIMITS_DEFAULT_IDLE_TIMEOUT 300.0
#define LIMITS_DEFAULT_HTTP_MAX_CONNECTIONS 64
#define LIMITS_DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS 32
#define LIMITS_DEFAULT_HTTP_CONNECTION_MEMORY (32u * 1024u)
#define LIMITS_DEFAULT_HTTP_RESPONSE_BUDGET (32u * 1024u * 1024u)
#define LIMITS_DEFAULT_HTTP_TIMEOUT 10.0
#define LIMITS_DEFAULT_HTTP_REQUESTS_PER_SECOND 100.0
#define LIMITS_DEFAULT_WORK_PER_MINUTE_PROCESS 6.0
#define LIMITS_DEFAULT_WORK_PER_MINUTE_CLIENT 30.0

void limits_config_default(LimitsConfig *c);
