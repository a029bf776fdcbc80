/* SPDX-License-Identifier: MIT */
/*
 * Payload decoding (see message.h). Every member is fetched through one of the get_* helpers
 * below, which check type and range, so no value from a peer reaches the registry unchecked.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error-util.h"
#include "heapwatch/protocol.h"
#include "json-util.h"
#include "macro.h"
#include "message.h"


/* Sizes and counts far beyond any real process, to refuse nonsense without constraining
 * real values: 2^50 bytes is 1 PiB. */
#define BYTES_MAX (INT64_C(1) << 50)
#define COUNT_MAX (INT64_C(1) << 53)
#define UNIX_TIME_MAX 4102444800.0 /* 2100-01-01 */

/* Writes the message into the caller's buffer and returns r: -EINVAL for a member that is wrong
 * (fail()), -E2BIG for a string or array beyond the protocol's bounds (fail_bound(), which the
 * daemon counts as a limit hit besides refusing the message: agent-server.c). */
#define fail(error, size, ...) error_setf(error, size, -EINVAL, __VA_ARGS__)
#define fail_bound(error, size, ...) error_setf(error, size, -E2BIG, __VA_ARGS__)

/* An array member of at most max entries. */
static int check_array(json_t *v, const char *key, size_t max, char *error, size_t size) {
        if (!json_is_array(v))
                return fail(error, size, "member '%s' must be an array of at most %zu entries", key, max);
        if (json_array_size(v) > max)
                return fail_bound(error, size, "member '%s' must be an array of at most %zu entries", key, max);
        return 0;
}

/* Each getter: absent member -> 0 and *ret unchanged unless required; wrong type/range ->
 * -EINVAL with a message naming the member. */
static int get_int(json_t *obj, const char *key, bool required, int64_t min, int64_t max, int64_t *ret,
                   char *error, size_t size) {
        json_t *v = json_object_get(obj, key);
        json_int_t i;

        if (!v || json_is_null(v)) {
                if (required)
                        return fail(error, size, "missing member '%s'", key);
                return 0;
        }
        if (!json_is_integer(v))
                return fail(error, size, "member '%s' must be an integer", key);
        i = json_integer_value(v);
        if (i < min || i > max)
                return fail(error, size, "member '%s' out of range", key);
        *ret = i;
        return 0;
}

static int get_number(json_t *obj, const char *key, bool required, double min, double max, double *ret,
                      char *error, size_t size) {
        json_t *v = json_object_get(obj, key);
        double d;

        if (!v || json_is_null(v)) {
                if (required)
                        return fail(error, size, "missing member '%s'", key);
                return 0;
        }
        if (!json_is_number(v))
                return fail(error, size, "member '%s' must be a number", key);
        d = json_number_value(v);
        if (!isfinite(d) || d < min || d > max)
                return fail(error, size, "member '%s' out of range", key);
        *ret = d;
        return 0;
}

static int get_bool(json_t *obj, const char *key, bool *ret, char *error, size_t size) {
        json_t *v = json_object_get(obj, key);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_boolean(v))
                return fail(error, size, "member '%s' must be a boolean", key);
        *ret = json_is_true(v);
        return 0;
}

/* Strings must fit buf (max bytes), contain no NUL, and no control characters if printable. */
static int check_string(json_t *v, const char *key, size_t max, bool printable, char *error, size_t size) {
        const char *s;
        size_t n;

        if (!json_is_string(v))
                return fail(error, size, "member '%s' must be a string", key);
        s = json_string_value(v);
        n = json_string_length(v);
        if (n > max)
                return fail_bound(error, size, "member '%s' longer than %zu bytes", key, max);
        if (strlen(s) != n)
                return fail(error, size, "member '%s' contains NUL", key);
        if (printable)
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                                return fail(error, size, "member '%s' contains control characters", key);
        return 0;
}

/* What a string member may contain, for get_string(). */
enum { ANY_TEXT = false, PRINTABLE = true };

/* An optional string member (absent: buf untouched). */
static int get_string(json_t *obj, const char *key, bool printable, char *buf, size_t buf_size,
                      char *error, size_t size) {
        json_t *v = json_object_get(obj, key);
        int r;

        if (!v || json_is_null(v))
                return 0;
        r = check_string(v, key, buf_size - 1, printable, error, size);
        if (r < 0)
                return r;
        memcpy(buf, json_string_value(v), json_string_length(v) + 1);
        return 0;
}

/* Optional nested object: NULL when absent, -EINVAL when not an object. */
static int get_object(json_t *obj, const char *key, json_t **ret, char *error, size_t size) {
        json_t *v = json_object_get(obj, key);

        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_object(v))
                return fail(error, size, "member '%s' must be an object", key);
        *ret = v;
        return 0;
}

static int load_object(const uint8_t *payload, size_t len, json_t **ret, char *error, size_t size) {
        json_error_t jerr;
        json_t *root;

        /* Duplicate keys are refused: two different values for one member is not a message
         * we can interpret honestly. */
        root = json_loadb((const char *) payload, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                fail(error, size, "invalid JSON: %s", jerr.text);
                return -EBADMSG;
        }
        if (!json_is_object(root)) {
                json_decref(root);
                fail(error, size, "payload is not a JSON object");
                return -EBADMSG;
        }
        *ret = root;
        return 0;
}

static int decode_argv(json_t *root, char ***ret, char *error, size_t size) {
        json_t *v = json_object_get(root, "argv"), *item;
        char **argv;
        size_t i, n;

        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return fail(error, size, "member 'argv' must be an array");
        n = json_array_size(v);
        if (n > HW_ARGV_MAX)
                return fail_bound(error, size, "member 'argv' has more than %d entries", HW_ARGV_MAX);
        json_array_foreach(v, i, item) {
                int r = check_string(item, "argv[]", HW_ARG_MAX, false, error, size);
                if (r < 0)
                        return r;
        }
        argv = calloc(n + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        json_array_foreach(v, i, item) {
                argv[i] = strdup(json_string_value(item));
                if (!argv[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(argv[j]);
                        free(argv);
                        return -ENOMEM;
                }
        }
        *ret = argv;
        return 0;
}

/* "features": an optional array of at most HW_FEATURES_MAX printable names; the ones this daemon
 * knows set flags in h, the others are ignored (a later agent's). */
static int decode_features(json_t *root, HwHello *h, char *error, size_t size) {
        json_t *v = json_object_get(root, "features"), *item;
        size_t i;
        int r;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return fail(error, size, "member 'features' must be an array");
        if (json_array_size(v) > HW_FEATURES_MAX)
                return fail_bound(error, size, "member 'features' has more than %u entries", HW_FEATURES_MAX);
        json_array_foreach(v, i, item) {
                r = check_string(item, "features", HW_FEATURE_NAME_MAX, PRINTABLE, error, size);
                if (r < 0)
                        return r;
                if (strcmp(json_string_value(item), HW_FEATURE_HOLDERS_ONLY) == 0)
                        h->holders_only = true;
        }
        return 0;
}

int message_decode_hello(const uint8_t *payload, size_t len, HwHello *ret, char *error, size_t size) {
        _cleanup_json_ json_t *root = NULL;
        json_t *py = NULL;
        HwHello h = { .ppid = -1, .start_time_ticks = -1 };
        int r;

        r = load_object(payload, len, &root, error, size);
        if (r < 0)
                return r;

        if ((r = get_int(root, "protocol", true, 1, 255, &h.protocol, error, size)) < 0 ||
            (r = get_string(root, "agent_version", PRINTABLE, h.agent_version, sizeof h.agent_version, error, size)) < 0 ||
            (r = get_int(root, "pid", true, 1, INT32_MAX, &h.pid, error, size)) < 0 ||
            (r = get_int(root, "ppid", false, 0, INT32_MAX, &h.ppid, error, size)) < 0 ||
            (r = get_int(root, "start_time_ticks", false, 0, INT64_MAX, &h.start_time_ticks, error, size)) < 0 ||
            (r = get_number(root, "start_time", false, 0, UNIX_TIME_MAX, &h.start_time, error, size)) < 0 ||
            (r = get_string(root, "service", PRINTABLE, h.service, sizeof h.service, error, size)) < 0 ||
            (r = get_string(root, "hostname", PRINTABLE, h.hostname, sizeof h.hostname, error, size)) < 0 ||
            (r = get_number(root, "interval", false, 0, 86400, &h.interval, error, size)) < 0 ||
            (r = get_object(root, "python", &py, error, size)) < 0 ||
            (r = decode_features(root, &h, error, size)) < 0)
                return r;
        if (py &&
            ((r = get_string(py, "version", PRINTABLE, h.python_version, sizeof h.python_version, error, size)) < 0 ||
             (r = get_string(py, "implementation", PRINTABLE, h.python_implementation, sizeof h.python_implementation, error, size)) < 0 ||
             (r = get_string(py, "build", ANY_TEXT, h.python_build, sizeof h.python_build, error, size)) < 0 ||
             (r = get_string(py, "compiler", ANY_TEXT, h.python_compiler, sizeof h.python_compiler, error, size)) < 0 ||
             (r = get_int(py, "hexversion", false, 0, INT32_MAX, &h.python_hexversion, error, size)) < 0))
                return r;
        r = decode_argv(root, &h.argv, error, size);
        if (r < 0)
                return r;

        *ret = h;
        return 0;
}

static int decode_generation(json_t *g, const char *key, HwGcGeneration *ret, char *error, size_t size) {
        HwGcGeneration gen = {};
        int r;

        if (!json_is_object(g))
                return fail(error, size, "member '%s' entries must be objects", key);
        if ((r = get_int(g, "count", false, INT32_MIN, COUNT_MAX, &gen.count, error, size)) < 0 ||
            (r = get_int(g, "threshold", false, 0, COUNT_MAX, &gen.threshold, error, size)) < 0 ||
            (r = get_int(g, "collections", false, 0, COUNT_MAX, &gen.collections, error, size)) < 0 ||
            (r = get_int(g, "collected", false, 0, COUNT_MAX, &gen.collected, error, size)) < 0 ||
            (r = get_int(g, "uncollectable", false, 0, COUNT_MAX, &gen.uncollectable, error, size)) < 0 ||
            (r = get_int(g, "pauses", false, 0, COUNT_MAX, &gen.pauses, error, size)) < 0 ||
            (r = get_number(g, "pause_seconds_total", false, 0, 86400, &gen.pause_seconds_total, error, size)) < 0 ||
            (r = get_number(g, "pause_seconds_max", false, 0, 86400, &gen.pause_seconds_max, error, size)) < 0)
                return r;
        *ret = gen;
        return 0;
}

HwHeapReport *hw_heap_report_free(HwHeapReport *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_stacks; i++)
                hw_heap_stack_done(&r->stacks[i]);
        free(r->stacks);
        free(r->sites);
        free(r);
        return NULL;
}

void hw_heap_stack_done(HwHeapStack *s) {
        for (size_t i = 0; i < s->n_frames; i++) {
                free(s->frames[i].file);
                free(s->frames[i].func);
        }
        free(s->frames);
        s->frames = NULL;
        s->n_frames = 0;
}

static void heap_report_freep(HwHeapReport **r) {
        hw_heap_report_free(*r);
}

/* One frame: [file, function, line]. */
static int decode_heap_frame(json_t *v, HwHeapFrame *ret, char *error, size_t size) {
        json_t *file, *func, *line;
        int r;

        if (!json_is_array(v) || json_array_size(v) != 3)
                return fail(error, size, "heap stack frames must be [file, function, line]");
        file = json_array_get(v, 0);
        func = json_array_get(v, 1);
        line = json_array_get(v, 2);
        if ((r = check_string(file, "frames[][0]", HW_HEAP_FILE_MAX, PRINTABLE, error, size)) < 0 ||
            (r = check_string(func, "frames[][1]", HW_HEAP_FUNC_MAX, PRINTABLE, error, size)) < 0)
                return r;
        if (!json_is_integer(line) || json_integer_value(line) < 0 || json_integer_value(line) > INT32_MAX)
                return fail(error, size, "heap frame line must be an integer within 0..2^31-1");
        ret->file = strdup(json_string_value(file));
        ret->func = strdup(json_string_value(func));
        ret->line = json_integer_value(line);
        if (!ret->file || !ret->func)
                return -ENOMEM;
        return 0;
}

static int decode_heap(json_t *heap, HwHeapReport **ret, char *error, size_t size) {
        _cleanup_(heap_report_freep) HwHeapReport *h = NULL;
        json_t *sites, *stacks, *v;
        size_t i;
        int r;

        h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        if ((r = get_int(heap, "epoch", true, 1, COUNT_MAX, &h->epoch, error, size)) < 0 ||
            (r = get_int(heap, "sample_bytes", true, 1, BYTES_MAX, &h->sample_bytes, error, size)) < 0 ||
            (r = get_int(heap, "depth", false, 1, HW_HEAP_FRAMES_MAX, &h->depth, error, size)) < 0 ||
            (r = get_int(heap, "live_bytes", false, 0, BYTES_MAX, &h->live_bytes, error, size)) < 0 ||
            (r = get_int(heap, "live_count", false, 0, COUNT_MAX, &h->live_count, error, size)) < 0 ||
            (r = get_int(heap, "alloc_bytes_total", false, 0, COUNT_MAX, &h->alloc_bytes_total, error, size)) < 0 ||
            (r = get_int(heap, "alloc_count_total", false, 0, COUNT_MAX, &h->alloc_count_total, error, size)) < 0 ||
            (r = get_int(heap, "samples_total", false, 0, COUNT_MAX, &h->samples_total, error, size)) < 0 ||
            (r = get_int(heap, "samples_live", false, 0, COUNT_MAX, &h->samples_live, error, size)) < 0 ||
            (r = get_int(heap, "tracked_full_total", false, 0, COUNT_MAX, &h->tracked_full_total, error, size)) < 0 ||
            (r = get_int(heap, "stacks_full_total", false, 0, COUNT_MAX, &h->stacks_full_total, error, size)) < 0 ||
            (r = get_int(heap, "lost_total", false, 0, COUNT_MAX, &h->lost_total, error, size)) < 0)
                return r;

        sites = json_object_get(heap, "sites");
        if (sites && !json_is_null(sites)) {
                if ((r = check_array(sites, "sites", HW_HEAP_SITES_MAX, error, size)) < 0)
                        return r;
                h->sites = calloc(json_array_size(sites) + 1, sizeof *h->sites);
                if (!h->sites)
                        return -ENOMEM;
                json_array_foreach(sites, i, v) {
                        HwHeapSite *st = &h->sites[i];

                        if (!json_is_object(v))
                                return fail(error, size, "member 'sites' entries must be objects");
                        if ((r = get_int(v, "stack", true, 1, UINT32_MAX, &st->stack, error, size)) < 0 ||
                            (r = get_int(v, "live_bytes", true, 0, BYTES_MAX, &st->live_bytes, error, size)) < 0 ||
                            (r = get_int(v, "live_count", false, 0, COUNT_MAX, &st->live_count, error, size)) < 0 ||
                            (r = get_int(v, "alloc_bytes_total", false, 0, COUNT_MAX, &st->alloc_bytes_total, error, size)) < 0 ||
                            (r = get_int(v, "alloc_count_total", false, 0, COUNT_MAX, &st->alloc_count_total, error, size)) < 0)
                                return r;
                        h->n_sites = i + 1;
                }
        }

        stacks = json_object_get(heap, "stacks");
        if (stacks && !json_is_null(stacks)) {
                if ((r = check_array(stacks, "stacks", HW_HEAP_STACKS_MAX, error, size)) < 0)
                        return r;
                h->stacks = calloc(json_array_size(stacks) + 1, sizeof *h->stacks);
                if (!h->stacks)
                        return -ENOMEM;
                json_array_foreach(stacks, i, v) {
                        HwHeapStack *st = &h->stacks[i];
                        json_t *frames, *fr;
                        size_t k;

                        h->n_stacks = i + 1; /* so a failure below frees what this one has */
                        if (!json_is_object(v))
                                return fail(error, size, "member 'stacks' entries must be objects");
                        if ((r = get_int(v, "id", true, 1, UINT32_MAX, &st->id, error, size)) < 0)
                                return r;
                        frames = json_object_get(v, "frames");
                        if ((r = check_array(frames, "frames", HW_HEAP_FRAMES_MAX, error, size)) < 0)
                                return r;
                        st->frames = calloc(json_array_size(frames) + 1, sizeof *st->frames);
                        if (!st->frames)
                                return -ENOMEM;
                        json_array_foreach(frames, k, fr) {
                                st->n_frames = k + 1;
                                r = decode_heap_frame(fr, &st->frames[k], error, size);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        *ret = TAKE_PTR(h);
        return 0;
}

/* The optional "malloc" member: glibc's mallinfo2() figures. Absent members stay -1. */
static int decode_malloc(json_t *m, HwSample *s, char *error, size_t size) {
        int r;

        s->has_malloc = true;
        s->malloc_arena_bytes = s->malloc_in_use_bytes = s->malloc_free_bytes = -1;
        s->malloc_mmapped_bytes = s->malloc_keepcost_bytes = -1;
        if ((r = get_int(m, "arena_bytes", false, 0, BYTES_MAX, &s->malloc_arena_bytes, error, size)) < 0 ||
            (r = get_int(m, "in_use_bytes", false, 0, BYTES_MAX, &s->malloc_in_use_bytes, error, size)) < 0 ||
            (r = get_int(m, "free_bytes", false, 0, BYTES_MAX, &s->malloc_free_bytes, error, size)) < 0 ||
            (r = get_int(m, "mmapped_bytes", false, 0, BYTES_MAX, &s->malloc_mmapped_bytes, error, size)) < 0 ||
            (r = get_int(m, "keepcost_bytes", false, 0, BYTES_MAX, &s->malloc_keepcost_bytes, error, size)) < 0 ||
            (r = get_number(m, "read_seconds", false, 0, 3600, &s->malloc_read_seconds, error, size)) < 0)
                return r;
        return 0;
}

int message_decode_sample(const uint8_t *payload, size_t len, bool goodbye, HwSample *ret,
                          char *error, size_t size) {
        return message_decode_sample_heap(payload, len, goodbye, ret, NULL, error, size);
}

int message_decode_sample_heap(const uint8_t *payload, size_t len, bool goodbye, HwSample *ret,
                               HwHeapReport **ret_heap, char *error, size_t size) {
        _cleanup_json_ json_t *root = NULL;
        _cleanup_(heap_report_freep) HwHeapReport *heap_report = NULL;
        json_t *proc, *cg, *py, *gc, *agent, *gens, *heap, *mal;
        HwSample s = { .cgroup_memory_max_bytes = -1, .cgroup_limit_usage_bytes = -1, .gc_garbage_finalizers = -1, .gc_finalizers_collected = -1,
                       .gc_finalizers_collections = -1, .gc_finalizers_skipped = -1 };
        int64_t seq = 0;
        int r;

        r = load_object(payload, len, &root, error, size);
        if (r < 0)
                return r;

        if ((r = get_int(root, "seq", true, 0, INT64_MAX, &seq, error, size)) < 0 ||
            (r = get_number(root, "time", true, 1, UNIX_TIME_MAX, &s.time, error, size)) < 0 ||
            (r = get_object(root, "process", &proc, error, size)) < 0 ||
            (r = get_object(root, "cgroup", &cg, error, size)) < 0 ||
            (r = get_object(root, "python", &py, error, size)) < 0 ||
            (r = get_object(root, "gc", &gc, error, size)) < 0 ||
            (r = get_object(root, "agent", &agent, error, size)) < 0 ||
            (r = get_object(root, "heap", &heap, error, size)) < 0 ||
            (r = get_object(root, "malloc", &mal, error, size)) < 0)
                return r;
        s.seq = (uint64_t) seq;
        /* validated even when the caller does not want it: a wrong member is a wrong message */
        if (heap && (r = decode_heap(heap, &heap_report, error, size)) < 0)
                return r;

        if (!proc)
                return fail(error, size, "missing member 'process'");
        if ((r = get_int(proc, "rss_bytes", true, 0, BYTES_MAX, &s.rss_bytes, error, size)) < 0 ||
            (r = get_int(proc, "rss_peak_bytes", false, 0, BYTES_MAX, &s.rss_peak_bytes, error, size)) < 0 ||
            (r = get_int(proc, "vm_bytes", false, 0, BYTES_MAX, &s.vm_bytes, error, size)) < 0 ||
            (r = get_int(proc, "threads", false, 0, 1 << 22, &s.threads, error, size)) < 0)
                return r;

        if (cg) {
                json_t *max = json_object_get(cg, "memory_max_bytes");
                s.has_cgroup = true;
                if ((r = get_string(cg, "path", ANY_TEXT, s.cgroup_path, sizeof s.cgroup_path, error, size)) < 0 ||
                    (r = get_int(cg, "memory_current_bytes", true, 0, BYTES_MAX, &s.cgroup_memory_current_bytes, error, size)) < 0)
                        return r;
                if (max && !json_is_null(max) &&
                    (r = get_int(cg, "memory_max_bytes", false, 0, INT64_MAX, &s.cgroup_memory_max_bytes, error, size)) < 0)
                        return r;
                if ((r = get_int(cg, "limit_usage_bytes", false, 0, BYTES_MAX, &s.cgroup_limit_usage_bytes, error, size)) < 0)
                        return r;
        }

        if (py) {
                if ((r = get_int(py, "allocated_blocks", false, 0, COUNT_MAX, &s.python_allocated_blocks, error, size)) < 0)
                        return r;
                if (json_object_get(py, "arena_allocs_total")) {
                        s.has_arenas = true;
                        if ((r = get_int(py, "arena_allocs_total", false, 0, COUNT_MAX, &s.arena_allocs_total, error, size)) < 0 ||
                            (r = get_int(py, "arena_frees_total", false, 0, COUNT_MAX, &s.arena_frees_total, error, size)) < 0 ||
                            (r = get_int(py, "arena_size_bytes", false, 0, BYTES_MAX, &s.arena_size_bytes, error, size)) < 0)
                                return r;
                }
        }

        if (gc) {
                size_t i;
                json_t *g;

                if ((r = get_bool(gc, "enabled", &s.gc_enabled, error, size)) < 0 ||
                    (r = get_int(gc, "garbage", false, 0, COUNT_MAX, &s.gc_garbage, error, size)) < 0 ||
                    (r = get_int(gc, "garbage_finalizers", false, 0, COUNT_MAX, &s.gc_garbage_finalizers, error, size)) < 0 ||
                    (r = get_int(gc, "finalizers_collected", false, 0, COUNT_MAX, &s.gc_finalizers_collected, error, size)) < 0 ||
                    (r = get_int(gc, "finalizers_collections", false, 0, COUNT_MAX, &s.gc_finalizers_collections, error, size)) < 0 ||
                    (r = get_int(gc, "finalizers_skipped", false, 0, COUNT_MAX, &s.gc_finalizers_skipped, error, size)) < 0)
                        return r;
                gens = json_object_get(gc, "generations");
                if (gens && !json_is_null(gens)) {
                        if ((r = check_array(gens, "generations", HW_GC_GENERATIONS_MAX, error, size)) < 0)
                                return r;
                        json_array_foreach(gens, i, g) {
                                r = decode_generation(g, "generations", &s.gc[i], error, size);
                                if (r < 0)
                                        return r;
                        }
                        s.gc_generations = (unsigned) json_array_size(gens);
                }
        }

        if (mal && (r = decode_malloc(mal, &s, error, size)) < 0)
                return r;

        if (agent &&
            ((r = get_int(agent, "samples_dropped_total", false, 0, COUNT_MAX, &s.agent_samples_dropped_total, error, size)) < 0 ||
             (r = get_int(agent, "reconnects_total", false, 0, COUNT_MAX, &s.agent_reconnects_total, error, size)) < 0 ||
             (r = get_number(agent, "sample_seconds", false, 0, 86400, &s.agent_sample_seconds, error, size)) < 0))
                return r;

        if (goodbye) {
                json_t *reason = json_object_get(root, "reason");

                /* Required: get_string() treats an absent member as optional. */
                if (!reason || json_is_null(reason))
                        return fail(error, size, "missing member 'reason'");
                s.is_goodbye = true;
                if ((r = get_string(root, "reason", PRINTABLE, s.goodbye_reason, sizeof s.goodbye_reason, error, size)) < 0)
                        return r;
        }

        *ret = s;
        if (ret_heap)
                *ret_heap = TAKE_PTR(heap_report);
        return 0;
}

/* A daemon -> agent frame: header + compact JSON of o, in one malloc'd buffer. */
static int encode_frame(json_t *o, uint8_t type, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *payload = NULL;
        uint8_t *frame;
        size_t n;

        if (!o)
                return -ENOMEM;
        payload = json_dumps(o, JSON_COMPACT);
        if (!payload)
                return -ENOMEM;
        n = strlen(payload);
        frame = malloc(HW_FRAME_HEADER_SIZE + n);
        if (!frame)
                return -ENOMEM;
        hw_frame_header_pack(frame, type, (uint32_t) n);
        memcpy(frame + HW_FRAME_HEADER_SIZE, payload, n);
        *ret = frame;
        *ret_len = HW_FRAME_HEADER_SIZE + n;
        return 0;
}

int message_encode_welcome(const char *id, uint8_t **ret, size_t *ret_len) {
        _cleanup_json_ json_t *o = NULL;

        o = json_pack("{s:i, s:s}", "protocol", HW_PROTOCOL_VERSION, "id", id);
        return encode_frame(o, HW_FRAME_WELCOME, ret, ret_len);
}

int message_encode_request(const CensusRequest *req, uint8_t **ret, size_t *ret_len) {
        _cleanup_json_ json_t *o = NULL, *types = NULL;

        o = json_pack("{s:I, s:s, s:i, s:i}", "id", (json_int_t) req->id, "kind", census_kind_to_string(req->kind),
                      "budget_ms", (int) req->budget_ms, "top", (int) req->top);
        if (!o)
                return -ENOMEM;
        if (req->kind == CENSUS_KIND_CHAINS) {
                types = json_array();
                if (!types)
                        return -ENOMEM;
                for (size_t i = 0; i < req->n_types && i < HW_CHAINS_TYPES_MAX; i++)
                        if (json_append(types, json_string_lossy(req->types[i])) < 0)
                                return -ENOMEM;
                if (json_add(o, "types", TAKE_PTR(types)) < 0 ||
                    (req->holders && json_add(o, "holders", json_true()) < 0))
                        return -ENOMEM;
        }
        return encode_frame(o, HW_FRAME_REQUEST, ret, ret_len);
}

/* One census type: {"type": name, "count": N, "size_bytes": N}. */
static int decode_census_type(json_t *v, CensusType *ret, char *error, size_t size) {
        int64_t count = 0, bytes = 0;
        int r;

        if (!json_is_object(v))
                return fail(error, size, "census types must be objects");
        ret->name[0] = '\0';
        if ((r = get_string(v, "type", PRINTABLE, ret->name, sizeof ret->name, error, size)) < 0 ||
            (r = get_int(v, "count", true, 0, COUNT_MAX, &count, error, size)) < 0 ||
            (r = get_int(v, "size_bytes", true, 0, BYTES_MAX, &bytes, error, size)) < 0)
                return r;
        if (!ret->name[0])
                return fail(error, size, "census type without a name");
        ret->count = (uint64_t) count;
        ret->size_bytes = (uint64_t) bytes;
        return 0;
}

static int decode_census_chain(json_t *v, CensusChain *ret, char *error, size_t size) {
        int r;

        if (!json_is_object(v))
                return fail(error, size, "chains must be objects");
        *ret = (CensusChain) {};
        if ((r = get_string(v, "type", PRINTABLE, ret->type, sizeof ret->type, error, size)) < 0 ||
            (r = get_string(v, "chain", PRINTABLE, ret->chain, sizeof ret->chain, error, size)) < 0 ||
            (r = get_string(v, "root", PRINTABLE, ret->root, sizeof ret->root, error, size)) < 0 ||
            (r = get_string(v, "root_kind", PRINTABLE, ret->root_kind, sizeof ret->root_kind, error, size)) < 0)
                return r;
        if (!ret->type[0] || !ret->chain[0])
                return fail(error, size, "chain without a type or text");
        return 0;
}

/* A holder: a chain with {"holds": N}, N >= 1. */
static int decode_census_holder(json_t *v, CensusChain *ret, char *error, size_t size) {
        int64_t holds = 0;
        int r;

        r = decode_census_chain(v, ret, error, size);
        if (r < 0)
                return r;
        r = get_int(v, "holds", true, 1, COUNT_MAX, &holds, error, size);
        if (r < 0)
                return r;
        ret->holds = holds;
        return 0;
}

/* A bounded array member: each element through decode(); at most max elements kept, at most
 * limit accepted (more is an invalid message). */
static int decode_census_array(json_t *root, const char *key, size_t keep, size_t limit, void *items,
                               size_t item_size, int (*decode)(json_t *, void *, char *, size_t), size_t *ret_n,
                               char *error, size_t size) {
        json_t *a = json_object_get(root, key);
        size_t n = 0;

        *ret_n = 0;
        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a))
                return fail(error, size, "member '%s' must be an array", key);
        if (json_array_size(a) > limit)
                return fail_bound(error, size, "member '%s' has more than %zu entries", key, limit);
        for (size_t i = 0; i < json_array_size(a) && n < keep; i++) {
                int r = decode(json_array_get(a, i), (char *) items + n * item_size, error, size);
                if (r < 0)
                        return r;
                n++;
        }
        *ret_n = n;
        return 0;
}

static int decode_census_type_any(json_t *v, void *ret, char *error, size_t size) {
        return decode_census_type(v, ret, error, size);
}

static int decode_census_chain_any(json_t *v, void *ret, char *error, size_t size) {
        return decode_census_chain(v, ret, error, size);
}

static int decode_census_holder_any(json_t *v, void *ret, char *error, size_t size) {
        return decode_census_holder(v, ret, error, size);
}

int message_decode_census(const uint8_t *payload, size_t len, CensusReply *ret, char *error, size_t size) {
        _cleanup_json_ json_t *root = NULL;
        _cleanup_free_ CensusReply *c = NULL;
        char kind[16] = "";
        int64_t id = 0, slices = 0, objects = 0, types_total = 0, visited = 0;
        int r;

        r = load_object(payload, len, &root, error, size);
        if (r < 0)
                return r;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->fraction = 1.0;
        c->consistent = true;
        if ((r = get_int(root, "id", true, 1, UINT32_MAX, &id, error, size)) < 0 ||
            (r = get_string(root, "kind", PRINTABLE, kind, sizeof kind, error, size)) < 0 ||
            (r = get_number(root, "time", false, 0, UNIX_TIME_MAX, &c->time, error, size)) < 0 ||
            (r = get_number(root, "duration_seconds", false, 0, 86400, &c->duration_seconds, error, size)) < 0 ||
            (r = get_number(root, "gil_seconds", false, 0, 86400, &c->gil_seconds, error, size)) < 0 ||
            (r = get_number(root, "gil_cpu_seconds", false, 0, 86400, &c->gil_cpu_seconds, error, size)) < 0 ||
            (r = get_number(root, "budget_seconds", false, 0, 86400, &c->budget_seconds, error, size)) < 0 ||
            (r = get_int(root, "slices", false, 0, 1000000, &slices, error, size)) < 0 ||
            (r = get_string(root, "error", PRINTABLE, c->error, sizeof c->error, error, size)) < 0 ||
            (r = get_bool(root, "complete", &c->complete, error, size)) < 0 ||
            (r = get_bool(root, "sampled", &c->sampled, error, size)) < 0 ||
            (r = get_bool(root, "consistent", &c->consistent, error, size)) < 0 ||
            (r = get_number(root, "fraction", false, 1e-9, 1, &c->fraction, error, size)) < 0 ||
            (r = get_int(root, "objects", false, 0, COUNT_MAX, &objects, error, size)) < 0 ||
            (r = get_int(root, "types_total", false, 0, COUNT_MAX, &types_total, error, size)) < 0 ||
            (r = get_int(root, "visited", false, 0, COUNT_MAX, &visited, error, size)) < 0 ||
            (r = get_bool(root, "search_complete", &c->search_complete, error, size)) < 0 ||
            (r = decode_census_array(root, "types", CENSUS_TYPES_MAX, HW_CENSUS_TOP_MAX, c->types, sizeof c->types[0],
                                     decode_census_type_any, &c->n_types, error, size)) < 0 ||
            (r = decode_census_array(root, "chains", HW_CHAINS_MAX, HW_CHAINS_MAX, c->chains, sizeof c->chains[0],
                                     decode_census_chain_any, &c->n_chains, error, size)) < 0 ||
            (r = get_bool(root, "holders_complete", &c->holders_complete, error, size)) < 0 ||
            (r = decode_census_array(root, "holders", HW_HOLDERS_MAX, HW_HOLDERS_MAX, c->holders, sizeof c->holders[0],
                                     decode_census_holder_any, &c->n_holders, error, size)) < 0)
                return r;
        c->has_holders = json_is_array(json_object_get(root, "holders"));
        if (strcmp(kind, "census") == 0)
                c->kind = CENSUS_KIND_CENSUS;
        else if (strcmp(kind, "chains") == 0)
                c->kind = CENSUS_KIND_CHAINS;
        else
                return fail(error, size, "member 'kind' must be \"census\" or \"chains\"");
        c->id = (uint32_t) id;
        c->slices = (unsigned) slices;
        c->objects = (uint64_t) objects;
        c->types_total = (uint64_t) types_total;
        c->visited = (uint64_t) visited;
        memcpy(ret, c, sizeof *c);
        return 0;
}
