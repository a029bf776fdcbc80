/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for agent/encode.c: HELLO / SAMPLE / GOODBYE frames as docs/protocol.md describes
 * them, the bounds on strings, UTF-8 sanitizing, and WELCOME parsing.
 */
#include "agent-util.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent-sample.h"
#include "encode.h"
#include "mallocstat.h"
#include "heapwatch/protocol.h"

/* Check the header of a frame and parse its payload. */
static json_t *parse_frame(const uint8_t *frame, size_t size, uint8_t want_type) {
        struct hw_frame_header h;
        json_error_t err;
        json_t *o;

        ck_assert_uint_ge(size, HW_FRAME_HEADER_SIZE);
        ck_assert_int_eq(hw_frame_header_unpack(frame, &h), HW_HEADER_OK);
        ck_assert_uint_eq(h.type, want_type);
        ck_assert_uint_eq(h.flags, 0);
        ck_assert_uint_eq(h.length, size - HW_FRAME_HEADER_SIZE);
        o = json_loadb((const char *) frame + HW_FRAME_HEADER_SIZE, h.length, JSON_REJECT_DUPLICATES, &err);
        ck_assert_msg(o != NULL, "payload does not parse: %s", err.text);
        ck_assert(json_is_object(o));
        return o;
}

static void identity_fill(struct hw_agent_identity *id) {
        memset(id, 0, sizeof(*id));
        id->pid = 4242;
        id->ppid = 4200;
        id->start_time_ticks = 1234567;
        id->start_time = 1764061234.56;
        ck_assert_int_eq(hw_agent_identity_add_arg(id, "python3", 7), 0);
        ck_assert_int_eq(hw_agent_identity_add_arg(id, "app.py", 6), 0);
        snprintf(id->service, sizeof(id->service), "billing");
        snprintf(id->hostname, sizeof(id->hostname), "web-1");
        snprintf(id->python_version, sizeof(id->python_version), "3.11.7");
        snprintf(id->python_implementation, sizeof(id->python_implementation), "cpython");
        snprintf(id->python_build, sizeof(id->python_build), "main, Dec 12 2023 10:00:00");
        snprintf(id->python_compiler, sizeof(id->python_compiler), "GCC 12.2.0");
        id->python_hexversion = 51054576;
        id->interval = 1.0;
}

START_TEST(test_utf8_copy) {
        char buf[64];

        /* valid text passes unchanged */
        ck_assert_uint_eq(hw_utf8_copy(buf, sizeof(buf), "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, 63, 0), 15);
        ck_assert_str_eq(buf, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");

        /* invalid bytes, overlong forms, surrogates, > U+10FFFF become '?' */
        hw_utf8_copy(buf, sizeof(buf), "a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\xf4\x90\x80\x80", 14, 63, 0);
        ck_assert_str_eq(buf, "a?b??c???d????");

        /* a truncated sequence at the end */
        hw_utf8_copy(buf, sizeof(buf), "ab\xe2\x82", 4, 63, 0);
        ck_assert_str_eq(buf, "ab??");

        /* the bound never cuts a character in half */
        ck_assert_uint_eq(hw_utf8_copy(buf, sizeof(buf), "ab\xe2\x82\xac", 5, 4, 0), 2);
        ck_assert_str_eq(buf, "ab");

        /* controls: kept unless asked; NUL always replaced */
        hw_utf8_copy(buf, sizeof(buf), "a\tb\nc\x7f", 6, 63, 0);
        ck_assert_str_eq(buf, "a\tb\nc\x7f");
        hw_utf8_copy(buf, sizeof(buf), "a\tb\nc\x7f", 6, 63, 1);
        ck_assert_str_eq(buf, "a?b?c?");
        hw_utf8_copy(buf, sizeof(buf), "a\0b", 3, 63, 0);
        ck_assert_str_eq(buf, "a?b");

        /* dst_size bounds too */
        ck_assert_uint_eq(hw_utf8_copy(buf, 4, "abcdef", 6, 100, 0), 3);
        ck_assert_str_eq(buf, "abc");
}
END_TEST

START_TEST(test_hello) {
        struct hw_agent_identity id;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o, *py, *argv;

        identity_fill(&id);
        ck_assert_int_eq(hw_encode_hello(&id, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_HELLO);

        ck_assert_int_eq(json_integer_value(json_object_get(o, "protocol")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(o, "agent_version")), "0.1.0");
        ck_assert_int_eq(json_integer_value(json_object_get(o, "pid")), 4242);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "ppid")), 4200);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "start_time_ticks")), 1234567);
        ck_assert_double_eq_tol(json_real_value(json_object_get(o, "start_time")), 1764061234.56, 1e-6);
        argv = json_object_get(o, "argv");
        ck_assert(json_is_array(argv));
        ck_assert_uint_eq(json_array_size(argv), 2);
        ck_assert_str_eq(json_string_value(json_array_get(argv, 1)), "app.py");
        ck_assert_str_eq(json_string_value(json_object_get(o, "service")), "billing");
        ck_assert_str_eq(json_string_value(json_object_get(o, "hostname")), "web-1");
        py = json_object_get(o, "python");
        ck_assert(json_is_object(py));
        ck_assert_str_eq(json_string_value(json_object_get(py, "version")), "3.11.7");
        ck_assert_str_eq(json_string_value(json_object_get(py, "implementation")), "cpython");
        ck_assert_int_eq(json_integer_value(json_object_get(py, "hexversion")), 51054576);
        ck_assert_str_eq(json_string_value(json_object_get(py, "build")), "main, Dec 12 2023 10:00:00");
        ck_assert_str_eq(json_string_value(json_object_get(py, "compiler")), "GCC 12.2.0");
        ck_assert(json_is_real(json_object_get(o, "interval")));
        ck_assert_double_eq(json_real_value(json_object_get(o, "interval")), 1.0);
        /* what it takes beyond protocol 1 as first defined: a chains request without types */
        ck_assert(json_is_array(json_object_get(o, "features")));
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "features"), 0)), HW_FEATURE_HOLDERS_ONLY);

        /* compact: no spaces after separators */
        ck_assert_ptr_null(memmem(frame + HW_FRAME_HEADER_SIZE, size - HW_FRAME_HEADER_SIZE, "\": ", 3));

        json_decref(o);
        free(frame);
        hw_agent_identity_clear(&id);
}
END_TEST

START_TEST(test_hello_unknowns_left_out) {
        struct hw_agent_identity id;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o;

        identity_fill(&id);
        id.ppid = -1;
        id.start_time_ticks = -1;
        id.start_time = -1;
        id.python_hexversion = -1;
        id.hostname[0] = '\0';
        id.service[0] = '\0';
        ck_assert_int_eq(hw_encode_hello(&id, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_HELLO);
        ck_assert_ptr_null(json_object_get(o, "ppid"));
        ck_assert_ptr_null(json_object_get(o, "start_time_ticks"));
        ck_assert_ptr_null(json_object_get(o, "start_time"));
        ck_assert_ptr_null(json_object_get(o, "hostname"));
        ck_assert_ptr_null(json_object_get(json_object_get(o, "python"), "hexversion"));
        ck_assert_str_eq(json_string_value(json_object_get(o, "service")), "python");
        json_decref(o);
        free(frame);
        hw_agent_identity_clear(&id);
}
END_TEST

START_TEST(test_hello_bounds) {
        struct hw_agent_identity id;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o, *argv;
        char big[3000];

        identity_fill(&id);
        hw_agent_identity_clear(&id);
        /* 80 entries of quotes (escaped to 2 bytes each), some with invalid UTF-8 and controls */
        memset(big, '"', sizeof(big));
        big[10] = '\xff';
        big[11] = '\n';
        for (int i = 0; i < 80; i++)
                ck_assert_int_eq(hw_agent_identity_add_arg(&id, big, HW_AGENT_ARG_MAX), 0);
        ck_assert_uint_eq(id.argc, HW_AGENT_ARGV_MAX);
        /* a service name that is too long and has control characters */
        memset(id.service, 'x', HW_AGENT_SERVICE_MAX);
        id.service[3] = '\t';
        id.service[HW_AGENT_SERVICE_MAX] = '\0';
        memset(id.hostname, 'h', HW_AGENT_HOSTNAME_MAX);
        id.hostname[HW_AGENT_HOSTNAME_MAX] = '\0';

        ck_assert_int_eq(hw_encode_hello(&id, &frame, &size), 0);
        ck_assert_uint_le(size, HW_FRAME_HEADER_SIZE + HW_FRAME_MAX_PAYLOAD);
        o = parse_frame(frame, size, HW_FRAME_HELLO);
        argv = json_object_get(o, "argv");
        ck_assert_uint_eq(json_array_size(argv), HW_AGENT_ARGV_MAX);
        for (size_t i = 0; i < json_array_size(argv); i++) {
                const char *s = json_string_value(json_array_get(argv, i));
                ck_assert_uint_le(strlen(s), HW_AGENT_ARG_MAX);
                ck_assert_int_eq(s[10], '?');  /* invalid byte replaced */
                ck_assert_int_eq(s[11], '\n'); /* controls in argv are data, kept (escaped) */
        }
        ck_assert_uint_le(json_string_length(json_object_get(o, "service")), HW_AGENT_SERVICE_MAX);
        ck_assert_ptr_null(strchr(json_string_value(json_object_get(o, "service")), '\t'));
        ck_assert_uint_eq(json_string_length(json_object_get(o, "hostname")), HW_AGENT_HOSTNAME_MAX);
        json_decref(o);
        free(frame);
        hw_agent_identity_clear(&id);
}
END_TEST

static void sample_fill(struct hw_agent_sample *s) {
        hw_agent_sample_init(s);
        s->seq = 17;
        s->time = 1764061251.02;
        s->process = (struct hw_agent_process) { 31457280, 33554432, 412090368, 3 };
        s->cgroup.present = true;
        snprintf(s->cgroup.path, sizeof(s->cgroup.path), "/system.slice/billing.service");
        s->cgroup.memory_current_bytes = 52428800;
        s->cgroup.memory_max_bytes = 1073741824;
        s->cgroup.limit_usage_bytes = 44040192;
        s->allocated_blocks = 61234;
        s->has_arenas = true;
        s->arena_allocs_total = 12;
        s->arena_frees_total = 2;
        s->arena_size_bytes = 1048576;
        s->has_gc = true;
        s->gc_enabled = true;
        s->gc_garbage = 0;
        s->gc_generations = 3;
        for (int i = 0; i < 3; i++)
                s->gc[i] = (struct hw_agent_gc_generation) { 412, 700, 120, 3100, 0, 3, 0.00021, 0.00009 };
        s->samples_dropped_total = 5;
        s->reconnects_total = 1;
        s->sample_seconds = 0.00004;
}

START_TEST(test_sample) {
        struct hw_agent_sample s;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o, *m, *g;

        sample_fill(&s);
        ck_assert_int_eq(hw_encode_sample(&s, NULL, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_SAMPLE);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), 17);
        ck_assert_double_eq_tol(json_real_value(json_object_get(o, "time")), 1764061251.02, 1e-6);
        ck_assert_ptr_null(json_object_get(o, "reason"));

        m = json_object_get(o, "process");
        ck_assert_int_eq(json_integer_value(json_object_get(m, "rss_bytes")), 31457280);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "rss_peak_bytes")), 33554432);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "vm_bytes")), 412090368);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "threads")), 3);

        m = json_object_get(o, "cgroup");
        ck_assert_str_eq(json_string_value(json_object_get(m, "path")), "/system.slice/billing.service");
        ck_assert_int_eq(json_integer_value(json_object_get(m, "memory_current_bytes")), 52428800);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "memory_max_bytes")), 1073741824);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "limit_usage_bytes")), 44040192);

        m = json_object_get(o, "python");
        ck_assert_int_eq(json_integer_value(json_object_get(m, "allocated_blocks")), 61234);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "arena_allocs_total")), 12);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "arena_frees_total")), 2);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "arena_size_bytes")), 1048576);

        m = json_object_get(o, "gc");
        ck_assert(json_is_true(json_object_get(m, "enabled")));
        ck_assert_int_eq(json_integer_value(json_object_get(m, "garbage")), 0);
        ck_assert_uint_eq(json_array_size(json_object_get(m, "generations")), 3);
        g = json_array_get(json_object_get(m, "generations"), 2);
        ck_assert_int_eq(json_integer_value(json_object_get(g, "count")), 412);
        ck_assert_int_eq(json_integer_value(json_object_get(g, "threshold")), 700);
        ck_assert_int_eq(json_integer_value(json_object_get(g, "collections")), 120);
        ck_assert_int_eq(json_integer_value(json_object_get(g, "collected")), 3100);
        ck_assert_int_eq(json_integer_value(json_object_get(g, "uncollectable")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(g, "pauses")), 3);
        ck_assert_double_eq_tol(json_real_value(json_object_get(g, "pause_seconds_total")), 0.00021, 1e-12);
        ck_assert_double_eq_tol(json_real_value(json_object_get(g, "pause_seconds_max")), 0.00009, 1e-12);

        m = json_object_get(o, "agent");
        ck_assert_int_eq(json_integer_value(json_object_get(m, "samples_dropped_total")), 5);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "reconnects_total")), 1);
        ck_assert(json_is_real(json_object_get(m, "sample_seconds")));

        json_decref(o);
        free(frame);
}
END_TEST

START_TEST(test_sample_partial) {
        struct hw_agent_sample s;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o;

        /* no limit: null; no arenas: arena members absent; no gc; unknown process figure */
        sample_fill(&s);
        s.cgroup.memory_max_bytes = -1;
        s.cgroup.limit_usage_bytes = -1;
        s.has_arenas = false;
        s.has_gc = false;
        s.process.threads = -1;
        ck_assert_int_eq(hw_encode_sample(&s, NULL, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_SAMPLE);
        ck_assert(json_is_null(json_object_get(json_object_get(o, "cgroup"), "memory_max_bytes")));
        ck_assert_ptr_null(json_object_get(json_object_get(o, "cgroup"), "limit_usage_bytes"));
        ck_assert_ptr_null(json_object_get(json_object_get(o, "python"), "arena_allocs_total"));
        ck_assert_ptr_nonnull(json_object_get(json_object_get(o, "python"), "allocated_blocks"));
        ck_assert_ptr_null(json_object_get(o, "gc"));
        ck_assert_ptr_null(json_object_get(json_object_get(o, "process"), "threads"));
        json_decref(o);
        free(frame);

        /* nothing known at all: still a valid sample with seq, time, process, agent */
        hw_agent_sample_init(&s);
        ck_assert_int_eq(hw_encode_sample(&s, NULL, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_SAMPLE);
        ck_assert_ptr_null(json_object_get(o, "cgroup"));
        ck_assert_ptr_null(json_object_get(o, "python"));
        ck_assert(json_is_object(json_object_get(o, "process")));
        ck_assert(json_is_object(json_object_get(o, "agent")));
        json_decref(o);
        free(frame);
}
END_TEST

/* The allocator figures (issue 8): "malloc" and gc.garbage_finalizers, present only when known. */
START_TEST(test_sample_malloc) {
        struct hw_agent_sample s;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o, *m;

        sample_fill(&s);
        s.gc_garbage = 7;
        s.gc_garbage_finalizers = 3;
        s.gc_finalizers_collected = 120;
        s.gc_finalizers_collections = 30;
        s.gc_finalizers_skipped = 0;
        s.malloc_stats = (struct hw_agent_malloc) { .present = true, .arena_bytes = 1 << 20, .in_use_bytes = 900000,
                                                    .free_bytes = 148576, .mmapped_bytes = 4 << 20,
                                                    .keepcost_bytes = 100000, .read_seconds = 0.00002,
                                                    .age_seconds = 0.5 };
        ck_assert_int_eq(hw_encode_sample(&s, NULL, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_SAMPLE);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "gc"), "garbage_finalizers")), 3);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "gc"), "finalizers_collected")), 120);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "gc"), "finalizers_collections")), 30);
        ck_assert(json_is_integer(json_object_get(json_object_get(o, "gc"), "finalizers_skipped")));
        m = json_object_get(o, "malloc");
        ck_assert_int_eq(json_integer_value(json_object_get(m, "arena_bytes")), 1 << 20);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "in_use_bytes")), 900000);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "free_bytes")), 148576);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "mmapped_bytes")), 4 << 20);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "keepcost_bytes")), 100000);
        ck_assert_double_eq_tol(json_real_value(json_object_get(m, "read_seconds")), 0.00002, 1e-12);
        ck_assert_double_eq_tol(json_real_value(json_object_get(m, "age_seconds")), 0.5, 1e-12);
        json_decref(o);
        free(frame);

        /* not known: both absent */
        sample_fill(&s);
        ck_assert_int_eq(hw_encode_sample(&s, NULL, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_SAMPLE);
        ck_assert_ptr_null(json_object_get(o, "malloc"));
        ck_assert_ptr_null(json_object_get(json_object_get(o, "gc"), "garbage_finalizers"));
        ck_assert_ptr_null(json_object_get(json_object_get(o, "gc"), "finalizers_collected"));
        json_decref(o);
        free(frame);
}
END_TEST

/* The reader: real glibc figures, reused within the duty cycle, timed. */
START_TEST(test_mallocstat) {
        struct hw_mallocstat m;
        struct hw_agent_malloc a, b;
        double now = hw_now_monotonic();

        hw_mallocstat_init(&m);
        if (!hw_mallocstat_supported()) {
                ck_assert_int_eq(hw_mallocstat_read(&m, now, true, &a), -EOPNOTSUPP);
                ck_assert(!a.present);
                return;
        }
        /* a caller that may not call (holds the GIL) gets nothing before the sampler read once */
        ck_assert_int_eq(hw_mallocstat_read(&m, now, false, &a), -ENODATA);
        ck_assert(!a.present);
        ck_assert_int_eq(hw_mallocstat_read(&m, now, true, &a), 0);
        ck_assert(a.present);
        /* >= 0 only: under AddressSanitizer malloc is its allocator and mallinfo2() says 0 */
        ck_assert_int_ge(a.in_use_bytes, 0);
        ck_assert_int_ge(a.arena_bytes, a.in_use_bytes);
        ck_assert_double_ge(a.read_seconds, 0);
        ck_assert_double_eq(a.age_seconds, 0);
        /* asked again before its cost / HW_MALLOCSTAT_DUTY has passed: the same figures, older */
        ck_assert_int_eq(hw_mallocstat_read(&m, m.last_at + a.read_seconds / HW_MALLOCSTAT_DUTY / 2, true, &b), 0);
        ck_assert_int_eq(b.in_use_bytes, a.in_use_bytes);
        ck_assert_double_gt(b.age_seconds, 0);
        /* ... and a caller that may not call gets them too, whatever the time */
        ck_assert_int_eq(hw_mallocstat_read(&m, m.next_at + 50, false, &b), 0);
        ck_assert_int_eq(b.in_use_bytes, a.in_use_bytes);
        /* past it: read again */
        ck_assert_int_eq(hw_mallocstat_read(&m, m.next_at + 1, true, &b), 0);
        ck_assert_double_eq(b.age_seconds, 0);
        /* given up after slow calls: absent from then on */
        m.given_up = true;
        ck_assert_int_eq(hw_mallocstat_read(&m, m.next_at + 100, true, &b), -ECANCELED);
        ck_assert(!b.present);
}
END_TEST

/* When the reader gives up: after HW_MALLOCSTAT_STRIKES slow calls in a row, or one far too
 * slow; one slow call among fast ones (a busy machine) is only spaced out. */
START_TEST(test_mallocstat_gives_up_on_a_slow_heap_not_a_slow_call) {
        const double slow = HW_MALLOCSTAT_CALL_MAX * 1.5, fast = HW_MALLOCSTAT_CALL_MAX / 10;
        struct hw_mallocstat m;
        unsigned i;

        hw_mallocstat_init(&m);
        hw_mallocstat_account(&m, 100, slow);
        ck_assert(!m.given_up);
        ck_assert_double_eq_tol(m.next_at, 100 + slow / HW_MALLOCSTAT_DUTY, 1e-9);
        hw_mallocstat_account(&m, 200, fast);
        for (i = 1; i < HW_MALLOCSTAT_STRIKES; i++)
                hw_mallocstat_account(&m, 200 + i * 100, slow);
        ck_assert(!m.given_up); /* the fast call in between started the count again */
        hw_mallocstat_account(&m, 1000, slow);
        ck_assert(m.given_up);
        pthread_mutex_destroy(&m.lock);

        hw_mallocstat_init(&m);
        hw_mallocstat_account(&m, 100, HW_MALLOCSTAT_CALL_MAX_ONCE * 1.1);
        ck_assert(m.given_up);
        pthread_mutex_destroy(&m.lock);
}
END_TEST

START_TEST(test_goodbye) {
        struct hw_agent_sample s;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o;

        sample_fill(&s);
        ck_assert_int_eq(hw_encode_sample(&s, "exit", &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_GOODBYE);
        ck_assert_str_eq(json_string_value(json_object_get(o, "reason")), "exit");
        ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), 17);
        ck_assert_ptr_nonnull(json_object_get(o, "gc"));
        json_decref(o);
        free(frame);

        ck_assert_int_eq(hw_encode_sample(&s, "stop", &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_GOODBYE);
        ck_assert_str_eq(json_string_value(json_object_get(o, "reason")), "stop");
        json_decref(o);
        free(frame);
}
END_TEST

START_TEST(test_nonfinite_reals) {
        struct hw_agent_sample s;
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *o;

        sample_fill(&s);
        s.sample_seconds = NAN;
        s.gc[0].pause_seconds_max = INFINITY;
        ck_assert_int_eq(hw_encode_sample(&s, NULL, &frame, &size), 0);
        o = parse_frame(frame, size, HW_FRAME_SAMPLE);
        ck_assert_double_eq(json_real_value(json_object_get(json_object_get(o, "agent"), "sample_seconds")), 0.0);
        json_decref(o);
        free(frame);
}
END_TEST

START_TEST(test_welcome) {
        char id[HW_AGENT_ID_MAX + 1] = "untouched";
        char big[400];
        static const char ok[] = "{\"protocol\": 1, \"id\": \"4242-1234567\", \"future\": [1, 2]}";

        ck_assert_int_eq(hw_decode_welcome((const uint8_t *) ok, strlen(ok), id), 0);
        ck_assert_str_eq(id, "4242-1234567");

        snprintf(id, sizeof(id), "untouched");
#define BAD(text) ck_assert_int_eq(hw_decode_welcome((const uint8_t *) (text), strlen(text), id), -EBADMSG)
        BAD("");
        BAD("not json");
        BAD("[1, 2]");
        BAD("{\"protocol\": 1}");
        BAD("{\"id\": 42}");
        BAD("{\"id\": \"\"}");
        BAD("{\"id\": \"a\\nb\"}");
        BAD("{\"id\": \"a\\u0000b\"}");
        BAD("{\"id\": \"x\"} trailing");
        BAD("{\"id\": \"\\u0085\\u202e-1\"}"); /* Unicode controls, a bidi override */
        BAD("{\"id\": \"42 7\"}");
        snprintf(big, sizeof(big), "{\"id\": \"%0200d\"}", 1);
        BAD(big);
#undef BAD
        ck_assert_str_eq(id, "untouched");
}
END_TEST

static Suite *encode_suite(void) {
        Suite *s = suite_create("agent-encode");
        TCase *tc = tcase_create("encode");

        tcase_add_test(tc, test_utf8_copy);
        tcase_add_test(tc, test_hello);
        tcase_add_test(tc, test_hello_unknowns_left_out);
        tcase_add_test(tc, test_hello_bounds);
        tcase_add_test(tc, test_sample);
        tcase_add_test(tc, test_sample_partial);
        tcase_add_test(tc, test_sample_malloc);
        tcase_add_test(tc, test_mallocstat);
        tcase_add_test(tc, test_mallocstat_gives_up_on_a_slow_heap_not_a_slow_call);
        tcase_add_test(tc, test_goodbye);
        tcase_add_test(tc, test_nonfinite_reals);
        tcase_add_test(tc, test_welcome);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(encode_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
