/* SPDX-License-Identifier: MIT */
/*
 * Leak findings for one process: runs a SeriesDetector (detect.h) on each memory signal as
 * samples arrive, opens a finding when a signal's verdict (after hysteresis) reaches
 * "suspect" or "leak", keeps it updated with the growth rate, its confidence and the time
 * until the process reaches its memory limit, and closes it when every signal is quiet again.
 * Closed findings are kept (bounded) as the process's leak history. No I/O except reading
 * the host's MemAvailable through a caller-supplied value; no logging: state changes are
 * returned as events for the caller to log.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "detect.h"
#include "sample.h"

typedef enum LeakSignal {
        LEAK_SIGNAL_RSS,           /* post-GC floor of resident memory, bytes */
        LEAK_SIGNAL_PYTHON_BLOCKS, /* post-GC floor of sys.getallocatedblocks(), blocks */
        _LEAK_SIGNAL_MAX,
} LeakSignal;

const char *leak_signal_to_string(LeakSignal s); /* "rss_bytes", "python_allocated_blocks" */
const char *leak_signal_unit(LeakSignal s);      /* "bytes", "blocks" */

typedef enum LimitSource {
        LIMIT_NONE,   /* no projection (not growing in bytes, or nothing known) */
        LIMIT_CGROUP, /* the process's cgroup memory.max */
        LIMIT_HOST,   /* the machine: current use + MemAvailable */
} LimitSource;

const char *limit_source_to_string(LimitSource s); /* NULL, "cgroup", "host" */

#define LEAK_HISTORY_MAX 8 /* closed findings kept per process */

typedef struct Finding {
        bool open;
        LeakVerdict verdict;     /* now: the strongest signal state */
        LeakVerdict worst;       /* the strongest it reached while open */
        LeakSignal signal;       /* the signal that decides the verdict */
        DetectResult result;     /* that signal's last evaluation */
        double opened_at;
        double updated_at;
        double closed_at; /* 0 while open */
        bool closed_at_end; /* closed because the process ended, not because growth did */
        bool closed_at_stop; /* ... or because its agent was stopped (the process may live on) */
        double since;     /* growth seen from (the deciding horizon's start) */

        /* Memory and its limit, bytes. current_bytes is what grows towards the limit: the
         * cgroup's memory.current for a cgroup limit, the process's RSS for the host. */
        LimitSource limit_source;
        double limit_bytes;
        double current_bytes;
        double growth_bytes_per_second; /* RSS floor slope, 0 when RSS does not grow */
        double growth_bytes_per_second_low;
        double growth_bytes_per_second_high;
        bool has_time_to_limit;
        double seconds_to_limit, seconds_to_limit_low, seconds_to_limit_high; /* low may be 0, high INFINITY */
} Finding;

typedef enum LeakEvent {
        LEAK_EVENT_NONE,
        LEAK_EVENT_OPENED,
        LEAK_EVENT_ESCALATED, /* suspect -> leak */
        LEAK_EVENT_CLOSED,
} LeakEvent;

/* Python blocks have no size: the absolute practical-size threshold, given in bytes, counts a
 * block as this many bytes (pymalloc blocks are 16..512 bytes; typical objects ~64). */
#define LEAK_BYTES_PER_BLOCK 64.0

typedef struct ProcessLeaks {
        SeriesDetector detectors[_LEAK_SIGNAL_MAX];
        /* Peak RSS (VmHWM) and when it last rose: a floor that rises under a flat peak is
         * memory the allocator keeps (fragmentation, free lists), bounded by the peak. */
        double rss_peak;
        double rss_peak_rose_at;
        Finding current;                     /* .open says whether there is one */
        Finding history[LEAK_HISTORY_MAX];   /* closed findings, oldest first */
        size_t n_history;
        unsigned long long findings_opened;
} ProcessLeaks;

int process_leaks_init(ProcessLeaks *l, const DetectConfig *config);
/* Reload: the growth thresholds of config (the fields a running detector can take without
 * resizing its history) into every detector. */
void process_leaks_set_thresholds(ProcessLeaks *l, const DetectConfig *config);
void process_leaks_done(ProcessLeaks *l);

/* Feed one sample. host_available_bytes: the machine's MemAvailable (< 0 if unknown), used
 * when the process has no cgroup limit. Returns 0 and *ret_event, or -errno. */
int process_leaks_add_sample(ProcessLeaks *l, const HwSample *s, double host_available_bytes, LeakEvent *ret_event);

/* The process ended (or is no longer watched): an open finding closes at t, as when growth
 * ends, so that it stops counting as current (/api/v1/leaks, heapwatch_leak_* and the alerts
 * on them) instead of lingering for the exited record's retention. agent_stopped: the agent
 * was stopped (heapwatch.stop()), the process may live on. Returns whether one was open. */
bool process_leaks_end(ProcessLeaks *l, double t, bool agent_stopped);

/* The verdict now (NONE when no finding is open). */
LeakVerdict process_leaks_verdict(const ProcessLeaks *l);

/* When the open finding opened, or 0 when none is open: what census evidence counts from (the
 * first census at or after it is the finding's baseline, census.h). */
double process_leaks_open_since(const ProcessLeaks *l);

/* Ordering for /api/v1/leaks: most urgent first. leak before suspect; then the sooner time to
 * limit; then the faster relative growth. Returns <0, 0, >0 like strcmp. */
int finding_compare_urgency(const Finding *a, const Finding *b);
