/* SPDX-License-Identifier: MIT */
/*
 * Object censuses and referrer chains of one process, in the daemon (docs/protocol.md
 * "Census", docs/api.md "census"): the requests the daemon sends an agent (one outstanding at
 * a time, timed out), the bounded history of the censuses it answered, the types whose counts
 * grow between a baseline census and the latest one, and the latest referrer chains to them.
 * Fed by agent-server.c with validated replies (message_decode_census()); read by the HTTP API
 * (GET /api/v1/processes/{id}/census) and by leak findings ("evidence": types and chains).
 *
 * Bounded: CENSUS_HISTORY_MAX censuses of at most CENSUS_TYPES_MAX types each, HW_CHAINS_MAX
 * chains; about 150 KiB for a process that was ever censused, nothing for the others.
 * Single-threaded (event loop); no I/O, no logging.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heapwatch/protocol.h"

#define CENSUS_TYPES_MAX 64   /* types kept of each census (an agent may send up to 256) */
#define CENSUS_HISTORY_MAX 8  /* censuses kept per process: the first after a finding opened stays */
#define CENSUS_GROWING_MAX 10 /* growing types reported */
#define CENSUS_ERROR_MAX 128
#define CENSUS_ROOT_KIND_MAX 31

typedef enum CensusKind {
        CENSUS_KIND_CENSUS,
        CENSUS_KIND_CHAINS,
} CensusKind;

const char *census_kind_to_string(CensusKind k); /* "census", "chains" */

typedef struct CensusType {
        char name[HW_CENSUS_TYPE_NAME_MAX + 1];
        uint64_t count;
        uint64_t size_bytes;
} CensusType;

typedef struct CensusChain {
        char type[HW_CENSUS_TYPE_NAME_MAX + 1];
        char chain[HW_CHAIN_TEXT_MAX + 1];
        char root[HW_CHAIN_LABEL_MAX + 1];
        char root_kind[CENSUS_ROOT_KIND_MAX + 1];
        int64_t holds; /* a holder's: instances of `type` the container holds; 0 in a chain to
                        * a sample instance */
} CensusChain;

/* One CENSUS frame, validated. ~25 KiB: allocate it. */
typedef struct CensusReply {
        uint32_t id;
        CensusKind kind;
        double time;
        double duration_seconds;
        double gil_seconds;
        double gil_cpu_seconds; /* the agent thread's CPU time during that longest hold */
        double budget_seconds;
        unsigned slices;
        char error[CENSUS_ERROR_MAX + 1]; /* "" unless the agent refused or failed */

        bool complete, sampled, consistent;
        double fraction;
        uint64_t objects;
        uint64_t types_total;
        size_t n_types;
        CensusType types[CENSUS_TYPES_MAX]; /* the first CENSUS_TYPES_MAX of the reply */

        uint64_t visited;
        bool search_complete;
        size_t n_chains;
        CensusChain chains[HW_CHAINS_MAX];

        bool has_holders;      /* the reply has a "holders" member (an agent that knows them) */
        bool holders_complete;
        size_t n_holders;
        CensusChain holders[HW_HOLDERS_MAX];
} CensusReply;

/* One census as kept in the history (and, through persist.c, in the history database). */
typedef struct CensusRecord {
        uint32_t id;
        double time;
        double duration_seconds, gil_seconds, gil_cpu_seconds, budget_seconds;
        unsigned slices;
        bool complete, sampled, consistent;
        double fraction;
        uint64_t objects, types_total;
        size_t n_types;
        CensusType types[CENSUS_TYPES_MAX];
} CensusRecord;

typedef struct CensusRequest {
        uint32_t id;
        CensusKind kind;
        unsigned budget_ms;
        unsigned top;
        bool holders; /* chains: ask for the holders too */
        size_t n_types;
        char types[HW_CHAINS_TYPES_MAX][HW_CENSUS_TYPE_NAME_MAX + 1];
} CensusRequest;

/* Settings (heapwatchd --census-*), applied to every process. */
typedef struct CensusConfig {
        double interval;         /* seconds between censuses while a finding stays open; 0: never */
        unsigned budget_ms;      /* longest GIL hold an agent may take */
        double api_min_interval; /* seconds between two on-demand requests for one process */
        double timeout;          /* seconds before an unanswered request is given up */
} CensusConfig;

#define CENSUS_INTERVAL_DEFAULT 600.0
#define CENSUS_API_MIN_INTERVAL_DEFAULT 10.0
#define CENSUS_TIMEOUT_DEFAULT 60.0

extern CensusConfig census_config;

typedef struct CensusGrowth {
        const char *type; /* points into the latest census */
        uint64_t count, size_bytes;
        int64_t count_growth, size_growth_bytes;
} CensusGrowth;

typedef struct ProcessCensus ProcessCensus;

/* Accepts NULL; returns NULL. */
ProcessCensus *process_census_free(ProcessCensus *c);

/* Creates *c on first use. Returns 0 or -ENOMEM. */
int process_census_ensure(ProcessCensus **c);

/* Should a census be requested now? finding_opened_at: the open finding's opening time, or 0
 * when no finding is open. A census is due when none was requested since the finding opened,
 * then every census_config.interval; never while another request is outstanding. Also times
 * out an outstanding request (c may be NULL: then due when a finding is open). */
bool process_census_due(ProcessCensus *c, double finding_opened_at, double now);

/* On-demand requests (POST): at most one per census_config.api_min_interval per process.
 * Returns 0 when allowed (and records it), -EBUSY when a request is outstanding, -EAGAIN with
 * *ret_retry_after seconds when too soon. */
int process_census_api_allow(ProcessCensus *c, double now, double *ret_retry_after);

/* Whether the agent attached now understands a chains request that names no type
 * (HW_FEATURE_HOLDERS_ONLY, from its HELLO). */
void process_census_set_holders_only(ProcessCensus *c, bool holders_only);

/* Prepare the next request of a kind (fills id, kind, budget); chains: with the growing types
 * of the latest census, and their holders asked for; with no growing type, the largest
 * containers alone when the agent understands it (process_census_set_holders_only()), else
 * -ENODATA. Marks it outstanding. Returns 0 or -ENODATA. */
int process_census_next_request(ProcessCensus *c, CensusKind kind, double since, double now, CensusRequest *ret);

/* The request could not be sent: it is not outstanding. */
void process_census_request_failed(ProcessCensus *c);

/* The connection went away: outstanding requests die with it. */
void process_census_detach(ProcessCensus *c);

/* Take a reply. Replies whose id is not the outstanding request are counted and dropped
 * (-ESTALE). A census is added to the history (the oldest dropped first, except the baseline
 * of the open finding); chains replace the latest chains, holders the latest holders (each
 * holder seen before keeps the count it had when first seen: its growth). A reply without
 * holders (an agent older than them) keeps only its chains to classes: for a builtin type the
 * old search names the first instance it met, unrelated. Returns 0 or -ESTALE. */
int process_census_ingest(ProcessCensus *c, const CensusReply *r, double now);

/* The storage side (persist.c). The census ingested last and the opening time of the finding
 * that was open then (0: none), whose baseline stays in the history: what is written to the
 * store. Returns 0, -ENODATA when there is none. */
int process_census_latest(const ProcessCensus *c, const CensusRecord **ret, double *ret_finding_since);

/* Put a stored census back into the history after a restart (at `now`), oldest first: a record
 * not newer than the latest kept is ignored (-ESTALE). finding_since > 0 pins the baseline of
 * that finding until the next process_census_due() says which finding is open. The finding
 * the restart's replay opens again (leak-resume.h) opens near, not exactly at, the stored
 * start: a `since` between that start and `now` counts from the stored baseline. Returns 0,
 * -ESTALE. */
int process_census_restore(ProcessCensus *c, const CensusRecord *r, double finding_since, double now);

/* The JSON of one census record (as "latest" in GET .../census, with its types). NULL on ENOMEM. */
json_t *census_record_json(const CensusRecord *r);

/* Types whose count grew from the baseline census (the first at or after `since`, else the
 * oldest kept) to the latest one, largest growth first, at most n. Returns how many. */
size_t process_census_growing(const ProcessCensus *c, double since, CensusGrowth *ret, size_t n);

/* The body of GET /api/v1/processes/{id}/census. c may be NULL. NULL on ENOMEM. */
json_t *process_census_json(const ProcessCensus *c, const char *process_id, double since, double now);

/* Leak evidence: adds "types" (growing types since `since`) and "chains" (the latest chains,
 * when taken after `since`: the chains to sample instances of classes, then the holders that
 * grow, with "holds", "holds_growth" and "share_of_growth") to the object `evidence`. Returns 0
 * or -ENOMEM. */
int process_census_evidence(const ProcessCensus *c, double since, json_t *evidence);

/* For the classification of a finding opened at `since` (leak-evidence.c, issue 8 item 5): how
 * many types grow since its baseline (-1: no census since it opened; 0: one census, or nothing
 * grows) and how many chains were found since (-1: no chain search since it opened): chains to
 * sample instances and holders from a root whose count grew. */
void process_census_counts(const ProcessCensus *c, double since, int *ret_types, int *ret_chains);
