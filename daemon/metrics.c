/* SPDX-License-Identifier: MIT */
/*
 * Prometheus text exposition (format 0.0.4) of the daemon's counters and every tracked process
 * (see metrics.h). The per-process families are described by tables (name, type, help, which
 * data a process must have for the family to include it, a getter), and rendered family by
 * family, so each family's samples stay together as the format requires, and adding a metric
 * is one table row. The text goes into an open_memstream() buffer; a scrape of a full registry
 * is a few hundred kilobytes at most and is built in one event-loop callback.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leak-evidence.h"
#include "macro.h"
#include "peer-limits.h"
#include "metrics.h"
#include "store.h"

/* What a process must have for a per-process family to show it. */
typedef enum Need {
        NEED_NOTHING,
        NEED_START_TIME,   /* a known start time */
        NEED_SAMPLE,       /* at least one sample */
        NEED_CGROUP,       /* a sample with cgroup figures */
        NEED_CGROUP_LIMIT, /* ... and a memory limit (not "max") */
        NEED_ARENAS,       /* a sample with pymalloc arena figures */
        NEED_GROWTH,       /* an open leak finding whose memory grows in bytes */
        NEED_TIME_TO_LIMIT, /* ... and a projection to a memory limit */
        NEED_HEAP,         /* a heap profiler report */
        NEED_MALLOC,       /* a sample with glibc malloc figures */
        NEED_GC,           /* a sample with GC figures */
} Need;

typedef struct ProcessFamily {
        const char *name;
        const char *type;
        const char *help;
        Need need;
        double (*get)(const Process *p);
} ProcessFamily;

/* Families labelled by GC generation; they need a sample and cover its generations. */
typedef struct GenerationFamily {
        const char *name;
        const char *type;
        const char *help;
        double (*get)(const Process *p, unsigned g);
} GenerationFamily;

static double get_up(const Process *p) { return p->state == PROCESS_LIVE; }
static double get_start_time(const Process *p) { return p->start_time; }
static double get_last_sample(const Process *p) { return p->latest.time; }
static double get_rss(const Process *p) { return (double) p->latest.rss_bytes; }
static double get_rss_peak(const Process *p) { return (double) p->latest.rss_peak_bytes; }
static double get_vm(const Process *p) { return (double) p->latest.vm_bytes; }
static double get_threads(const Process *p) { return (double) p->latest.threads; }
static double get_cgroup_current(const Process *p) { return (double) p->latest.cgroup_memory_current_bytes; }
static double get_cgroup_max(const Process *p) { return (double) p->latest.cgroup_memory_max_bytes; }
static double get_blocks(const Process *p) { return (double) p->latest.python_allocated_blocks; }
static double get_arena_allocs(const Process *p) { return (double) p->latest.arena_allocs_total; }
static double get_arena_frees(const Process *p) { return (double) p->latest.arena_frees_total; }
static double get_gc_enabled(const Process *p) { return p->latest.gc_enabled; }
static double get_gc_garbage(const Process *p) { return (double) p->latest.gc_garbage; }
static double get_dropped(const Process *p) { return (double) p->latest.agent_samples_dropped_total; }
static double get_reconnects(const Process *p) { return (double) p->latest.agent_reconnects_total; }
static double get_heap_live(const Process *p) { return process_heap_live_bytes(p->heap); }

static double get_leak_suspected(const Process *p) { return p->leaks.current.open; }
static double get_leak_confirmed(const Process *p) { return process_leaks_verdict(&p->leaks) == VERDICT_LEAK; }
static double get_leak_growth(const Process *p) { return p->leaks.current.growth_bytes_per_second; }
static double get_leak_ttl(const Process *p) { return p->leaks.current.seconds_to_limit; }

static double get_gc_count(const Process *p, unsigned g) { return (double) p->latest.gc[g].count; }
static double get_gc_threshold(const Process *p, unsigned g) { return (double) p->latest.gc[g].threshold; }
static double get_gc_collections(const Process *p, unsigned g) { return (double) p->latest.gc[g].collections; }
static double get_gc_collected(const Process *p, unsigned g) { return (double) p->latest.gc[g].collected; }
static double get_gc_uncollectable(const Process *p, unsigned g) { return (double) p->latest.gc[g].uncollectable; }
static double get_gc_pause_seconds(const Process *p, unsigned g) { return p->gc_pause_seconds_total[g]; }
static double get_gc_pauses(const Process *p, unsigned g) { return (double) p->gc_pauses_total[g]; }
/* Derived from the deltas of the last minute (leak-evidence.c). */
static double get_gc_collected_per_collection(const Process *p, unsigned g) {
        return leak_evidence_collected_per_collection(p, g);
}

static const ProcessFamily process_families[] = {
        { "heapwatch_process_up", "gauge",
          "Whether an agent is connected for this process (1) or it exited and is retained (0).",
          NEED_NOTHING, get_up },
        { "heapwatch_process_start_time_seconds", "gauge",
          "Start time of the process since the Unix epoch, from the kernel.",
          NEED_START_TIME, get_start_time },
        { "heapwatch_process_last_sample_timestamp_seconds", "gauge",
          "When the agent took the latest sample, in seconds since the Unix epoch.",
          NEED_SAMPLE, get_last_sample },
        { "heapwatch_process_resident_memory_bytes", "gauge",
          "Resident set size (VmRSS) in bytes.",
          NEED_SAMPLE, get_rss },
        { "heapwatch_process_resident_memory_peak_bytes", "gauge",
          "Peak resident set size (VmHWM) in bytes.",
          NEED_SAMPLE, get_rss_peak },
        { "heapwatch_process_virtual_memory_bytes", "gauge",
          "Virtual memory size (VmSize) in bytes.",
          NEED_SAMPLE, get_vm },
        { "heapwatch_process_threads", "gauge",
          "Number of threads of the process.",
          NEED_SAMPLE, get_threads },
        { "heapwatch_process_cgroup_memory_bytes", "gauge",
          "memory.current of the process's cgroup in bytes.",
          NEED_CGROUP, get_cgroup_current },
        { "heapwatch_process_cgroup_memory_limit_bytes", "gauge",
          "memory.max of the process's cgroup in bytes, when it is limited.",
          NEED_CGROUP_LIMIT, get_cgroup_max },
        { "heapwatch_python_allocated_blocks", "gauge",
          "Memory blocks allocated by the Python interpreter (sys.getallocatedblocks()).",
          NEED_SAMPLE, get_blocks },
        { "heapwatch_python_arena_allocations_total", "counter",
          "pymalloc arenas allocated since the agent started.",
          NEED_ARENAS, get_arena_allocs },
        { "heapwatch_python_arena_frees_total", "counter",
          "pymalloc arenas freed since the agent started.",
          NEED_ARENAS, get_arena_frees },
        { "heapwatch_gc_enabled", "gauge",
          "Whether Python's cyclic garbage collector is enabled (1) or not (0).",
          NEED_SAMPLE, get_gc_enabled },
        { "heapwatch_gc_garbage_objects", "gauge",
          "Objects in gc.garbage (found unreachable but not freeable).",
          NEED_SAMPLE, get_gc_garbage },
        /* One series per process: per-site figures would make the cardinality unbounded
         * (GET /api/v1/processes/{id}/heap has them). */
        { "heapwatch_python_heap_sampled_live_bytes", "gauge",
          "Live bytes in the Python heap estimated by the agent's sampling heap profiler.",
          NEED_HEAP, get_heap_live },
};

static const GenerationFamily generation_families[] = {
        { "heapwatch_gc_objects", "gauge",
          "Allocations minus deallocations counted towards the next collection (gc.get_count()).",
          get_gc_count },
        { "heapwatch_gc_threshold", "gauge",
          "Collection threshold of the generation (gc.get_threshold()).",
          get_gc_threshold },
        { "heapwatch_gc_collections_total", "counter",
          "Collections of the generation (gc.get_stats()).",
          get_gc_collections },
        { "heapwatch_gc_collected_objects_total", "counter",
          "Objects collected by collections of the generation (gc.get_stats()).",
          get_gc_collected },
        { "heapwatch_gc_uncollectable_objects_total", "counter",
          "Objects found uncollectable by collections of the generation (gc.get_stats()).",
          get_gc_uncollectable },
        { "heapwatch_gc_pause_seconds_total", "counter",
          "Time spent in collections of the generation, summed over the samples the daemon received.",
          get_gc_pause_seconds },
        { "heapwatch_gc_pauses_total", "counter",
          "Collections of the generation timed by the agent, summed over the samples the daemon received.",
          get_gc_pauses },
        { "heapwatch_gc_collected_per_collection", "gauge",
          "Objects collected per collection of the generation over the last minute (NaN: no collection).",
          get_gc_collected_per_collection },
};

/* The per-process families that come after the GC generation ones (docs/api.md order). */
static const ProcessFamily agent_families[] = {
        { "heapwatch_agent_samples_dropped_total", "counter",
          "Samples the agent dropped because the daemon was absent or slow.",
          NEED_SAMPLE, get_dropped },
        { "heapwatch_agent_reconnects_total", "counter",
          "Times the agent reconnected to the daemon.",
          NEED_SAMPLE, get_reconnects },
};

/* Leak findings (docs/detection.md): what alerting rules page on. */
static const ProcessFamily leak_families[] = {
        { "heapwatch_leak_suspected", "gauge",
          "1 while a leak finding (verdict suspect or leak) is open for the process, else 0.",
          NEED_NOTHING, get_leak_suspected },
        { "heapwatch_leak_confirmed", "gauge",
          "1 while the open leak finding has the verdict leak (statistically and practically significant growth).",
          NEED_NOTHING, get_leak_confirmed },
        { "heapwatch_leak_growth_bytes_per_second", "gauge",
          "Growth of the resident memory floor of a process with an open leak finding, bytes per second.",
          NEED_GROWTH, get_leak_growth },
        { "heapwatch_leak_seconds_to_limit", "gauge",
          "Projected seconds until the process reaches its memory limit (cgroup memory.max, else the host's available memory) at the current growth.",
          NEED_TIME_TO_LIMIT, get_leak_ttl },
};

/* Allocators, GC behaviour and the causes of leaks (issue 8: leak-evidence.c, evidence.c). */
static double get_malloc_arena(const Process *p) { return (double) p->latest.malloc_arena_bytes; }
static double get_malloc_in_use(const Process *p) { return (double) p->latest.malloc_in_use_bytes; }
static double get_malloc_free(const Process *p) { return (double) p->latest.malloc_free_bytes; }
static double get_malloc_mmapped(const Process *p) { return (double) p->latest.malloc_mmapped_bytes; }
static double get_malloc_keepcost(const Process *p) { return (double) p->latest.malloc_keepcost_bytes; }
static double get_pymalloc_arenas(const Process *p) {
        return (double) (p->latest.arena_allocs_total - p->latest.arena_frees_total);
}
static double get_pymalloc_arena_bytes(const Process *p) { return get_pymalloc_arenas(p) * (double) p->latest.arena_size_bytes; }
static double get_python_share(const Process *p) { return leak_evidence_python_share(p); }
static double get_free_held_share(const Process *p) { return leak_evidence_free_held_share(p); }
static double get_gc_time_ratio(const Process *p) { return p->evidence.recent_gc_ratio; }
static double get_gc_disabled_seconds(const Process *p) { return p->evidence.gc_disabled_total; }
static double get_gc_disables(const Process *p) { return (double) p->evidence.gc_disabled_changes; }
static double get_gc_threshold_changes(const Process *p) { return (double) p->evidence.gc_threshold_changes; }
static double get_gc_garbage_finalizers(const Process *p) {
        return p->latest.gc_garbage_finalizers >= 0 ? (double) p->latest.gc_garbage_finalizers : NAN;
}

static double get_gc_finalizers_collected(const Process *p) {
        return p->latest.gc_finalizers_collected >= 0 ? (double) p->latest.gc_finalizers_collected : NAN;
}

static const ProcessFamily evidence_families[] = {
        { "heapwatch_malloc_arena_bytes", "gauge",
          "Bytes glibc malloc obtained outside mmapped chunks, all arenas (mallinfo2 arena).",
          NEED_MALLOC, get_malloc_arena },
        { "heapwatch_malloc_in_use_bytes", "gauge",
          "Bytes in allocated malloc chunks, mmapped ones excluded (mallinfo2 uordblks).",
          NEED_MALLOC, get_malloc_in_use },
        { "heapwatch_malloc_free_bytes", "gauge",
          "Bytes in free chunks malloc holds and has not returned to the system (mallinfo2 fordblks).",
          NEED_MALLOC, get_malloc_free },
        { "heapwatch_malloc_mmapped_bytes", "gauge",
          "Bytes in chunks malloc served by their own mmap (mallinfo2 hblkhd).",
          NEED_MALLOC, get_malloc_mmapped },
        { "heapwatch_malloc_keepcost_bytes", "gauge",
          "Releasable bytes at the top of malloc's main heap (mallinfo2 keepcost).",
          NEED_MALLOC, get_malloc_keepcost },
        { "heapwatch_python_arenas", "gauge",
          "pymalloc arenas in use (allocated minus freed since the agent started).",
          NEED_ARENAS, get_pymalloc_arenas },
        { "heapwatch_python_arena_bytes", "gauge",
          "Bytes pymalloc holds in arenas (arenas in use times the arena size), used or free.",
          NEED_ARENAS, get_pymalloc_arena_bytes },
        { "heapwatch_memory_python_ratio", "gauge",
          "Share of resident memory that live Python objects explain (heap profiler estimate / RSS).",
          NEED_HEAP, get_python_share },
        { "heapwatch_memory_free_held_ratio", "gauge",
          "Share of resident memory that allocators hold free (malloc free chunks + pymalloc arena bytes not holding live objects, a lower bound) / RSS.",
          NEED_SAMPLE, get_free_held_share },
        { "heapwatch_gc_time_ratio", "gauge",
          "Share of wall time spent in garbage collections, averaged over about a minute.",
          NEED_GC, get_gc_time_ratio },
        { "heapwatch_gc_disabled_seconds_total", "counter",
          "Seconds the cyclic garbage collector was disabled, as seen between samples.",
          NEED_GC, get_gc_disabled_seconds },
        { "heapwatch_gc_disables_total", "counter",
          "Times the cyclic garbage collector was seen going from enabled to disabled at runtime.",
          NEED_GC, get_gc_disables },
        { "heapwatch_gc_threshold_changes_total", "counter",
          "Times the collection thresholds were seen changing at runtime.",
          NEED_GC, get_gc_threshold_changes },
        { "heapwatch_gc_garbage_finalizer_objects", "gauge",
          "Objects in gc.garbage whose type has a finalizer (__del__, tp_finalize or legacy tp_del).",
          NEED_GC, get_gc_garbage_finalizers },
        { "heapwatch_gc_collected_finalizer_objects_total", "counter",
          "Objects with a finalizer (__del__, tp_finalize or legacy tp_del) among those collected by the collections the agent counts (one in four of generations 0 and 1), since the agent started.",
          NEED_GC, get_gc_finalizers_collected },
};

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_sequence_length(const unsigned char *s) {
        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                return (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (s[0] >= 0xe0 && s[0] <= 0xef) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
                        return 0;
                if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
                        return 0;
                return 3;
        }
        if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
                        return 0;
                if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
                        return 0;
                return 4;
        }
        return 0;
}

void metrics_write_label_value(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) (s ? s : "");

        /* The checks of continuation bytes stop at the NUL (it is not a continuation byte), so
         * reading ahead never passes the end of the string. */
        while (*p) {
                size_t n;

                switch (*p) {
                case '\\':
                        fputs("\\\\", f);
                        p++;
                        continue;
                case '"':
                        fputs("\\\"", f);
                        p++;
                        continue;
                case '\n':
                        fputs("\\n", f);
                        p++;
                        continue;
                }
                n = utf8_sequence_length(p);
                if (n == 0) {
                        fputc('?', f);
                        p++;
                        continue;
                }
                fwrite(p, 1, n, f);
                p += n;
        }
}

/* A sample value. Integral values (bytes, counts, whole seconds) print as integers, others in
 * the shortest form that reads back as the same double. */
static void write_value(FILE *f, double v) {
        char buf[32];

        if (isnan(v)) {
                fputs("NaN", f);
                return;
        }
        if (isinf(v)) {
                fputs(v > 0 ? "+Inf" : "-Inf", f);
                return;
        }
        if (v == trunc(v) && fabs(v) < 1e15) {
                fprintf(f, "%.0f", v);
                return;
        }
        for (int precision = 15; precision <= 17; precision++) {
                snprintf(buf, sizeof buf, "%.*g", precision, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        fputs(buf, f);
}

static void write_header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* An unlabelled metric with its HELP and TYPE: the name is given once, so the sample cannot
 * drift from its header. */
static void write_single_u64(FILE *f, const char *name, const char *type, const char *help, uint64_t v) {
        write_header(f, name, type, help);
        fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void write_single(FILE *f, const char *name, const char *type, const char *help, double v) {
        write_header(f, name, type, help);
        fprintf(f, "%s ", name);
        write_value(f, v);
        fputc('\n', f);
}

/* name{id="...",service="...",pid="..."[,generation="g"]} */
static void write_process_labels(FILE *f, const char *name, const Process *p, int generation) {
        fprintf(f, "%s{id=\"", name);
        metrics_write_label_value(f, p->id);
        fputs("\",service=\"", f);
        metrics_write_label_value(f, p->hello.service);
        fprintf(f, "\",pid=\"%" PRIi64 "\"", (int64_t) p->pid);
        if (generation >= 0)
                fprintf(f, ",generation=\"%d\"", generation);
        fputs("} ", f);
}

static bool process_has(const Process *p, Need need) {
        switch (need) {
        case NEED_NOTHING:
                return true;
        case NEED_START_TIME:
                return isfinite(p->start_time) && p->start_time > 0;
        case NEED_SAMPLE:
                return p->has_sample;
        case NEED_CGROUP:
                return p->has_sample && p->latest.has_cgroup;
        case NEED_CGROUP_LIMIT:
                return p->has_sample && p->latest.has_cgroup && p->latest.cgroup_memory_max_bytes >= 0;
        case NEED_ARENAS:
                return p->has_sample && p->latest.has_arenas;
        case NEED_HEAP:
                return p->heap != NULL;
        case NEED_MALLOC:
                return p->has_sample && p->latest.has_malloc;
        case NEED_GC:
                return p->has_sample && p->latest.gc_generations > 0;
        case NEED_GROWTH:
                return p->leaks.current.open && p->leaks.current.growth_bytes_per_second > 0;
        case NEED_TIME_TO_LIMIT:
                return p->leaks.current.open && p->leaks.current.has_time_to_limit &&
                       isfinite(p->leaks.current.seconds_to_limit);
        }
        return false;
}

static void write_process_families(FILE *f, Registry *reg, const ProcessFamily *families, size_t n_families) {
        size_t n = registry_count(reg);

        for (size_t i = 0; i < n_families; i++) {
                const ProcessFamily *fam = &families[i];

                write_header(f, fam->name, fam->type, fam->help);
                for (size_t j = 0; j < n; j++) {
                        const Process *p = registry_at(reg, j);

                        if (!p || !process_has(p, fam->need))
                                continue;
                        write_process_labels(f, fam->name, p, -1);
                        write_value(f, fam->get(p));
                        fputc('\n', f);
                }
        }
}

static void write_generation_families(FILE *f, Registry *reg) {
        size_t n = registry_count(reg);

        for (size_t i = 0; i < ELEMENTSOF(generation_families); i++) {
                const GenerationFamily *fam = &generation_families[i];

                write_header(f, fam->name, fam->type, fam->help);
                for (size_t j = 0; j < n; j++) {
                        const Process *p = registry_at(reg, j);
                        unsigned gens;

                        if (!p || !p->has_sample)
                                continue;
                        gens = p->latest.gc_generations < HW_GC_GENERATIONS_MAX ? p->latest.gc_generations
                                                                                : HW_GC_GENERATIONS_MAX;
                        for (unsigned g = 0; g < gens; g++) {
                                write_process_labels(f, fam->name, p, (int) g);
                                write_value(f, fam->get(p, g));
                                fputc('\n', f);
                        }
                }
        }
}

/* Census requests (census.c): plain counters, from a table. */
static void write_census_counters(FILE *f, const DaemonStats *s) {
        static const struct {
                const char *name, *help;
                size_t offset;
        } counters[] = {
                { "heapwatch_daemon_census_requests_total", "Census and referrer chain requests sent to agents.",
                  offsetof(DaemonStats, census_requests_total) },
                { "heapwatch_daemon_census_replies_unexpected_total",
                  "Census replies to no outstanding request (late or stale), ignored.",
                  offsetof(DaemonStats, census_replies_unexpected_total) },
        };

        for (size_t i = 0; i < ELEMENTSOF(counters); i++)
                write_single_u64(f, counters[i].name, "counter", counters[i].help,
                                 *(const uint64_t *) ((const char *) s + counters[i].offset));
}

static void write_daemon_families(FILE *f, Registry *reg, const DaemonStats *s) {
        static const struct {
                const char *type;
                size_t offset;
        } frame_types[] = {
                { "hello", offsetof(DaemonStats, frames_hello_total) },
                { "sample", offsetof(DaemonStats, frames_sample_total) },
                { "goodbye", offsetof(DaemonStats, frames_goodbye_total) },
                { "unknown", offsetof(DaemonStats, frames_unknown_total) },
                { "census", offsetof(DaemonStats, frames_census_total) },
        };

        write_header(f, "heapwatch_build_info", "gauge", "Always 1; labelled by the heapwatchd version.");
        fputs("heapwatch_build_info{version=\"", f);
        metrics_write_label_value(f, PACKAGE_VERSION);
        fputs("\"} 1\n", f);

        write_single(f, "heapwatch_daemon_start_time_seconds", "gauge",
                     "Start time of heapwatchd since the Unix epoch in seconds.", s->start_time);

        write_single_u64(f, "heapwatch_daemon_agents_connected", "gauge", "Agent connections currently open.",
                         s->agents_connected);

        write_header(f, "heapwatch_daemon_processes", "gauge", "Processes tracked, by state.");
        fprintf(f, "heapwatch_daemon_processes{state=\"live\"} %zu\n", registry_count_state(reg, PROCESS_LIVE));
        fprintf(f, "heapwatch_daemon_processes{state=\"exited\"} %zu\n", registry_count_state(reg, PROCESS_EXITED));

        write_single_u64(f, "heapwatch_daemon_connections_accepted_total", "counter", "Agent connections accepted.",
                         s->connections_accepted_total);

        write_single_u64(f, "heapwatch_daemon_connections_refused_total", "counter",
                         "Agent connections refused because the connection limit was reached.",
                         s->connections_refused_total);

        write_header(f, "heapwatch_daemon_frames_received_total", "counter", "Valid frames received from agents, by type.");
        for (size_t i = 0; i < ELEMENTSOF(frame_types); i++)
                fprintf(f, "heapwatch_daemon_frames_received_total{type=\"%s\"} %" PRIu64 "\n", frame_types[i].type,
                        *(const uint64_t *) ((const char *) s + frame_types[i].offset));

        write_header(f, "heapwatch_daemon_frames_rejected_total", "counter",
                     "Frames rejected (and their connection closed), by reason.");
        for (int r = 0; r < _REJECT_MAX; r++) {
                const char *reason = frame_reject_reason_to_string((FrameRejectReason) r);

                fputs("heapwatch_daemon_frames_rejected_total{reason=\"", f);
                metrics_write_label_value(f, reason ? reason : "other");
                fprintf(f, "\"} %" PRIu64 "\n", s->frames_rejected_total[r]);
        }

        write_single_u64(f, "heapwatch_daemon_received_bytes_total", "counter", "Bytes received from agents.",
                         s->bytes_received_total);

        write_single_u64(f, "heapwatch_daemon_processes_expired_total", "counter",
                         "Exited process records dropped after their retention.", s->processes_expired_total);

        write_single_u64(f, "heapwatch_daemon_http_requests_total", "counter", "HTTP requests received.",
                         s->http_requests_total);

        write_single_u64(f, "heapwatch_daemon_leak_findings_opened_total", "counter", "Leak findings opened.",
                         s->leak_findings_opened_total);

        write_single_u64(f, "heapwatch_daemon_leak_findings_closed_total", "counter",
                         "Leak findings closed: the growth stopped, or the process ended.", s->leak_findings_closed_total);

        write_single_u64(f, "heapwatch_daemon_heap_reports_total", "counter",
                         "Heap profiler reports received with agent samples.", s->heap_reports_total);

        write_single_u64(f, "heapwatch_daemon_heap_reports_dropped_total", "counter",
                         "Heap profiler reports that could not be stored (out of memory).",
                         s->heap_reports_dropped_total);

        write_single_u64(f, "heapwatch_daemon_heap_stack_bytes", "gauge",
                         "Memory the heap profiles' stacks hold, all processes together (as malloc counts it).",
                         (uint64_t) process_heap_stack_bytes_all());

        write_census_counters(f, s);
}

/* The durable store's health (only with a store). */
static void write_store_families(FILE *f, const Store *store) {
        StoreStats st;

        if (!store)
                return;
        store_get_stats(store, &st);
        write_single_u64(f, "heapwatch_store_available", "gauge", "1 while the history database is being written.",
                         st.available);
        write_single_u64(f, "heapwatch_store_rows_written_total", "counter", "Bucket and process rows committed.",
                         st.rows_written_total);
        write_single_u64(f, "heapwatch_store_rows_dropped_total", "counter",
                         "Closed buckets dropped because the database stayed unavailable too long.",
                         st.rows_dropped_total);
        write_single_u64(f, "heapwatch_store_pending_rows", "gauge", "Closed buckets waiting to be written.",
                         st.pending_rows);
        write_single_u64(f, "heapwatch_store_flush_failures_total", "counter", "Write transactions that failed.",
                         st.flush_failures_total);
        write_single_u64(f, "heapwatch_store_rows_deleted_total", "counter",
                         "Rows deleted by retention and the disk budget.", st.rows_deleted_total);
        write_single_u64(f, "heapwatch_store_vacuumed_pages_total", "counter",
                         "Free pages returned by incremental vacuum.", st.pages_vacuumed_total);
        write_single_u64(f, "heapwatch_store_moved_aside_total", "counter", "Damaged databases moved aside.",
                         st.moved_aside_total);
        write_single_u64(f, "heapwatch_store_reopened_total", "counter",
                         "Databases deleted or replaced under the daemon, opened anew at their path.", st.reopened_total);
        write_single_u64(f, "heapwatch_store_disk_bytes", "gauge", "Size of the database and its WAL.", st.disk_bytes);
        write_single_u64(f, "heapwatch_store_used_bytes", "gauge",
                         "Database pages in use (what the disk budget bounds).", st.used_bytes);
        write_single_u64(f, "heapwatch_store_budget_bytes", "gauge",
                         "The bound in force on database pages in use: --max-disk-bytes, or less to keep 15 % of the "
                         "file system free (0: none).",
                         st.budget_bytes);
        write_single(f, "heapwatch_store_retention_ratio", "gauge",
                     "Share of each tier's retention kept under the disk budget (1: all of it).", st.budget_factor);
        write_single(f, "heapwatch_store_flush_transaction_seconds_max", "gauge",
                     "Longest single write transaction since start: the longest the event loop waited on a flush.",
                     st.flush_seconds_max);
        write_single(f, "heapwatch_store_flush_transaction_cpu_seconds_max", "gauge",
                     "Most CPU time one write transaction took since start.", st.flush_cpu_seconds_max);
        write_single_u64(f, "heapwatch_store_transactions_total", "counter", "Write transactions run.",
                         st.transactions_total);
        write_single_u64(f, "heapwatch_store_transactions_slow_total", "counter",
                         "Write transactions that held the event loop for more than 5 ms.",
                         st.transactions_over_5ms_total);
        write_single(f, "heapwatch_store_maintenance_step_cpu_seconds_max", "gauge",
                     "Most CPU time one retention, budget and vacuum step took since start.",
                     st.maintenance_cpu_seconds_max);
        write_single_u64(f, "heapwatch_store_maintenance_steps_total", "counter", "Housekeeping steps run.",
                         st.maintenance_steps_total);
        write_single_u64(f, "heapwatch_store_maintenance_steps_slow_total", "counter",
                         "Housekeeping steps that held the event loop for more than 5 ms.",
                         st.maintenance_over_5ms_total);
        write_single(f, "heapwatch_store_checkpoint_seconds_max", "gauge",
                     "Longest WAL checkpoint since start (on the checkpointer thread, not the event loop).",
                     st.checkpoint_seconds_max);
        write_single(f, "heapwatch_store_maintenance_step_seconds_max", "gauge",
                     "Longest retention, budget and vacuum step since start.", st.maintenance_seconds_max);
}

/* heapwatch_leak_classification{...,class="..."} 1 for each open finding: the cause in a label,
 * so alerts can route on it. */
static void write_leak_classification(FILE *f, Registry *reg) {
        write_header(f, "heapwatch_leak_classification", "gauge",
                     "1 for the cause an open leak finding is classified as (label class).");
        for (size_t j = 0; j < registry_count(reg); j++) {
                const Process *p = registry_at(reg, j);
                if (!p || !p->leaks.current.open)
                        continue;
                fputs("heapwatch_leak_classification{id=\"", f);
                metrics_write_label_value(f, p->id);
                fputs("\",service=\"", f);
                metrics_write_label_value(f, p->hello.service);
                fprintf(f, "\",pid=\"%" PRIi64 "\",class=\"%s\"} 1\n", (int64_t) p->pid,
                        leak_class_to_string(leak_evidence_current_class(p)));
        }
}

int metrics_render(Registry *reg, const DaemonStats *stats, char **ret_text, size_t *ret_size) {
        /* Declared before f so that f's cleanup (fclose, which finalizes buf) runs first. */
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *f = NULL;

        if (!reg || !stats || !ret_text || !ret_size)
                return -EINVAL;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        write_daemon_families(f, reg, stats);
        write_store_families(f, registry_get_store(reg));
        write_process_families(f, reg, process_families, ELEMENTSOF(process_families));
        write_generation_families(f, reg);
        write_process_families(f, reg, agent_families, ELEMENTSOF(agent_families));
        write_process_families(f, reg, leak_families, ELEMENTSOF(leak_families));
        write_process_families(f, reg, evidence_families, ELEMENTSOF(evidence_families));
        write_leak_classification(f, reg);
        limits_write_metrics(f);

        /* A memstream only fails by running out of memory. */
        if (fflush(f) != 0 || ferror(f))
                return -ENOMEM;
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;

        *ret_text = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}
