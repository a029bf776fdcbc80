/* SPDX-License-Identifier: MIT */
/*
 * Per-process heap profile state in the daemon: the stacks an agent sent (interned by the agent,
 * sent once per connection), and a bounded live-bytes history per allocation site. Fed by the
 * ingest path with validated reports (HwHeapReport, message.c); read by the HTTP API
 * (GET /api/v1/processes/{id}/heap) and by leak findings (the sites that grow, with their share).
 *
 * Bounded by construction: at most HEAP_STACKS_MAX stacks holding HEAP_STACK_BYTES_MAX bytes of
 * names and HEAP_SITES_MAX sites with history per process, HEAP_POINTS points of history. Sites beyond the bound are merged into "other".
 * All processes' stacks together hold at most HEAP_STACK_BYTES_ALL_MAX: beyond it the stacks no
 * tracked site needs are released, those of ended processes first, then those of the process
 * holding the most.
 * The history keeps its whole span: when it is full, every other point is dropped and the
 * spacing doubles, so a long-lived process keeps coarse history back to its start.
 * Single-threaded (event loop); no I/O, no logging.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sample.h"

#define HEAP_STACKS_MAX 1024
#define HEAP_STACK_BYTES_MAX (2u * 1024u * 1024u) /* frames and their names kept per process, as malloc counts them */
/* The same for all processes together: max-processes x HEAP_STACK_BYTES_MAX would be 2 GiB at
 * the default; 128 processes can each fill their own bound before any gives up a stack. */
#define HEAP_STACK_BYTES_ALL_MAX (256u * 1024u * 1024u)
#define HEAP_SITES_MAX 64
#define HEAP_POINTS 256
#define HEAP_WINDOW_DEFAULT 600.0 /* seconds: the growth window of /heap without ?window= */
#define HEAP_LIMIT_DEFAULT 20     /* sites in /heap without ?limit= */
#define HEAP_LIMIT_MAX HEAP_SITES_MAX

typedef struct ProcessHeap ProcessHeap;

/* Accepts NULL; returns NULL. */
ProcessHeap *process_heap_free(ProcessHeap *h);

/* Take one report, received with a sample taken at time t (Unix seconds, increasing). Creates
 * *h on the first report. Moves the report's stacks into the table (the report keeps only empty
 * shells). A new epoch (the agent's profile restarted: stop()/start()) starts the state afresh.
 * Returns 0 or -ENOMEM (then the state is unchanged or consistent without this report). */
int process_heap_ingest(ProcessHeap **h, HwHeapReport *report, double t);

/* The body of GET /api/v1/processes/{id}/heap (docs/api.md) for process_id: the latest report's
 * totals, the top `limit` sites by live bytes with their growth over [now - window, now] and
 * their stacks, and "other". h may be NULL (no report yet: "profiling": false).
 * Returns a new reference or NULL on ENOMEM. */
json_t *process_heap_json(const ProcessHeap *h, const char *process_id, double now, double window, size_t limit);

/* The sites whose live bytes grew over [from, to], largest growth first, at most limit, each
 * with its share of the summed growth of all growing sites (and of "other"): the "suspects" of
 * a leak finding. An empty array when nothing is known. NULL on ENOMEM. */
json_t *process_heap_suspects_json(const ProcessHeap *h, double from, double to, size_t limit);

/* Latest estimated live bytes of the sampled heap, or -1 when no report was received. */
double process_heap_live_bytes(const ProcessHeap *h);

/* Its process ended (or came back): an ended one's stacks are released first under the
 * daemon-wide bound. h may be NULL. */
void process_heap_set_ended(ProcessHeap *h, bool ended);

/* What all processes' stacks hold now (as malloc counts it), and its bound (tests lower it). */
size_t process_heap_stack_bytes_all(void);
void process_heap_set_stack_bytes_all_max(size_t max);

/* Sites of a report whose stack was not known (never sent, or over HEAP_STACKS_MAX), since the
 * start: they were merged into "other". */
uint64_t process_heap_unknown_sites_total(const ProcessHeap *h);
