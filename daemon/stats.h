/* SPDX-License-Identifier: MIT */
/*
 * The daemon's own health counters, exported on /metrics. One global instance, touched only
 * from the event loop thread.
 */
#pragma once

#include <stdint.h>

typedef enum FrameRejectReason {
        REJECT_BAD_MAGIC,
        REJECT_BAD_VERSION,
        REJECT_TOO_LARGE,
        REJECT_BAD_JSON,       /* payload is not a JSON object */
        REJECT_BAD_MESSAGE,    /* a known member has the wrong type or range */
        REJECT_UNEXPECTED,     /* frame type not allowed now (no HELLO first, second HELLO...) */
        REJECT_OUT_OF_ORDER,   /* sample not newer than the previous one */
        REJECT_PROCESS_LIMIT,  /* registry full */
        REJECT_IDENTITY,       /* HELLO contradicts the kernel, or another uid's live record */
        _REJECT_MAX,
} FrameRejectReason;

const char *frame_reject_reason_to_string(FrameRejectReason r); /* "bad_magic", ... */

typedef struct DaemonStats {
        double start_time; /* Unix seconds */
        uint64_t connections_accepted_total;
        uint64_t connections_refused_total; /* over the connection limit */
        uint64_t agents_connected;          /* current */
        uint64_t frames_hello_total;
        uint64_t frames_sample_total;
        uint64_t frames_goodbye_total;
        uint64_t frames_unknown_total;      /* unknown types in the agent range, ignored */
        uint64_t bytes_received_total;
        uint64_t frames_rejected_total[_REJECT_MAX];
        uint64_t processes_expired_total;
        uint64_t http_requests_total;
        uint64_t leak_findings_opened_total;
        uint64_t leak_findings_closed_total;
        uint64_t heap_reports_total;         /* SAMPLE/GOODBYE frames with a heap report */
        uint64_t heap_reports_dropped_total; /* ...that could not be stored (out of memory) */
        uint64_t frames_census_total;             /* CENSUS replies accepted */
        uint64_t census_requests_total;           /* REQUEST frames sent to agents */
        uint64_t census_replies_unexpected_total; /* replies to no outstanding request (late, stale) */
} DaemonStats;

extern DaemonStats daemon_stats;
