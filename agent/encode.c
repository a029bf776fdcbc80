/* SPDX-License-Identifier: MIT */
/*
 * HELLO / SAMPLE / GOODBYE payloads and frames, WELCOME parsing (see encode.h).
 *
 * Members whose value is unknown (-1 in the structs) are left out rather than sent as a
 * made-up number: the daemon ignores absent members but rejects wrong ones.
 */
#include "agent-util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "heapwatch/protocol.h"

size_t hw_utf8_copy(char *dst, size_t dst_size, const char *src, size_t src_len, size_t max_bytes,
                    int no_controls) {
        const unsigned char *s = (const unsigned char *) src;
        size_t in = 0, out = 0;

        if (dst_size == 0)
                return 0;
        if (max_bytes > dst_size - 1)
                max_bytes = dst_size - 1;

        while (in < src_len) {
                unsigned char c = s[in];
                size_t n = 0; /* length of a valid sequence starting at in; 0 if invalid */

                if (c < 0x80)
                        n = 1;
                else if (c >= 0xC2 && c <= 0xDF)
                        n = 2;
                else if (c >= 0xE0 && c <= 0xEF)
                        n = 3;
                else if (c >= 0xF0 && c <= 0xF4)
                        n = 4;

                if (n > 1) {
                        /* continuation bytes, and the second-byte ranges that exclude overlong
                         * forms, surrogates and code points above U+10FFFF */
                        unsigned char lo = 0x80, hi = 0xBF;
                        if (c == 0xE0)
                                lo = 0xA0;
                        else if (c == 0xED)
                                hi = 0x9F;
                        else if (c == 0xF0)
                                lo = 0x90;
                        else if (c == 0xF4)
                                hi = 0x8F;
                        if (in + n > src_len || s[in + 1] < lo || s[in + 1] > hi)
                                n = 0;
                        for (size_t k = 2; n && k < n; k++)
                                if (s[in + k] < 0x80 || s[in + k] > 0xBF)
                                        n = 0;
                }

                if (n == 0 || (n == 1 && (c == 0 || (no_controls && (c < 0x20 || c == 0x7F))))) {
                        if (out + 1 > max_bytes)
                                break;
                        dst[out++] = '?';
                        in += 1;
                        continue;
                }
                if (out + n > max_bytes)
                        break;
                memcpy(dst + out, s + in, n);
                out += n;
                in += n;
        }
        dst[out] = '\0';
        return out;
}

/* A JSON string from a bounded, sanitized copy of s. */
static json_t *bounded_string(const char *s, size_t max_bytes, bool no_controls) {
        char buf[HW_AGENT_ARG_MAX + 1];
        size_t len;

        if (max_bytes > HW_AGENT_ARG_MAX)
                max_bytes = HW_AGENT_ARG_MAX;
        len = hw_utf8_copy(buf, sizeof(buf), s ? s : "", s ? strlen(s) : 0, max_bytes, no_controls);
        return json_stringn_nocheck(buf, len);
}

/* json_real() refuses NaN and infinities; a figure is never either, but never send a broken
 * frame because of one. */
static json_t *real(double d) {
        return json_real(isfinite(d) ? d : 0.0);
}

/* Adders that accumulate failure: json_object_set_new() returns -1 (and releases nothing
 * twice) when the value is NULL. */
static int set_int(json_t *o, const char *key, int64_t v) {
        return json_object_set_new_nocheck(o, key, json_integer((json_int_t) v));
}

static int set_int_if_known(json_t *o, const char *key, int64_t v) {
        return v >= 0 ? set_int(o, key, v) : 0;
}

static int set_real(json_t *o, const char *key, double v) {
        return json_object_set_new_nocheck(o, key, real(v));
}

static int set_string(json_t *o, const char *key, const char *s, size_t max_bytes, bool no_controls) {
        return json_object_set_new_nocheck(o, key, bounded_string(s, max_bytes, no_controls));
}

static json_t *hello_json(const struct hw_agent_identity *id, size_t max_argc) {
        json_t *o = json_object(), *argv = json_array(), *py = json_object();
        int bad = 0;

        if (!o || !argv || !py) {
                json_decref(o);
                json_decref(argv);
                json_decref(py);
                return NULL;
        }

        for (size_t i = 0; i < id->argc && i < max_argc && i < HW_AGENT_ARGV_MAX; i++)
                bad |= json_array_append_new(argv, bounded_string(id->argv[i], HW_AGENT_ARG_MAX, false));

        bad |= set_string(py, "version", id->python_version, HW_AGENT_SHORT_STRING_MAX, true);
        bad |= set_string(py, "implementation", id->python_implementation, HW_AGENT_SHORT_STRING_MAX, true);
        bad |= set_int_if_known(py, "hexversion", id->python_hexversion);
        bad |= set_string(py, "build", id->python_build, HW_AGENT_BUILD_STRING_MAX, true);
        bad |= set_string(py, "compiler", id->python_compiler, HW_AGENT_BUILD_STRING_MAX, true);

        bad |= set_int(o, "protocol", HW_PROTOCOL_VERSION);
        bad |= set_string(o, "agent_version", HW_AGENT_VERSION, HW_AGENT_SHORT_STRING_MAX, true);
        bad |= set_int(o, "pid", id->pid);
        bad |= set_int_if_known(o, "ppid", id->ppid);
        bad |= set_int_if_known(o, "start_time_ticks", id->start_time_ticks);
        if (id->start_time >= 0)
                bad |= set_real(o, "start_time", id->start_time);
        bad |= json_object_set_new_nocheck(o, "argv", argv);
        bad |= set_string(o, "service", id->service[0] ? id->service : "python", HW_AGENT_SERVICE_MAX, true);
        if (id->hostname[0])
                bad |= set_string(o, "hostname", id->hostname, HW_AGENT_HOSTNAME_MAX, true);
        bad |= json_object_set_new_nocheck(o, "python", py);
        bad |= set_real(o, "interval", id->interval);
        {
                json_t *features = json_array();

                bad |= !features || json_array_append_new(features, json_string(HW_FEATURE_HOLDERS_ONLY));
                bad |= json_object_set_new_nocheck(o, "features", features);
        }

        if (bad) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *hw_encode_hello_json(const struct hw_agent_identity *id) {
        return hello_json(id, HW_AGENT_ARGV_MAX);
}

static json_t *generation_json(const struct hw_agent_gc_generation *g) {
        json_t *o = json_object();
        int bad = 0;

        if (!o)
                return NULL;
        bad |= set_int_if_known(o, "count", g->count);
        bad |= set_int_if_known(o, "threshold", g->threshold);
        bad |= set_int_if_known(o, "collections", g->collections);
        bad |= set_int_if_known(o, "collected", g->collected);
        bad |= set_int_if_known(o, "uncollectable", g->uncollectable);
        bad |= set_int(o, "pauses", g->pauses >= 0 ? g->pauses : 0);
        bad |= set_real(o, "pause_seconds_total", g->pause_seconds_total);
        bad |= set_real(o, "pause_seconds_max", g->pause_seconds_max);
        if (bad) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* glibc's figures; negative values (a wrapped mallinfo() int) are left out. */
static json_t *malloc_json(const struct hw_agent_malloc *m) {
        json_t *o = json_object();
        int bad = 0;

        if (!o)
                return NULL;
        bad |= set_int_if_known(o, "arena_bytes", m->arena_bytes);
        bad |= set_int_if_known(o, "in_use_bytes", m->in_use_bytes);
        bad |= set_int_if_known(o, "free_bytes", m->free_bytes);
        bad |= set_int_if_known(o, "mmapped_bytes", m->mmapped_bytes);
        bad |= set_int_if_known(o, "keepcost_bytes", m->keepcost_bytes);
        bad |= set_real(o, "read_seconds", m->read_seconds);
        bad |= set_real(o, "age_seconds", m->age_seconds);
        if (bad) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *hw_encode_sample_json(const struct hw_agent_sample *s, const char *reason) {
        json_t *o = json_object(), *proc = json_object(), *agent = json_object();
        int bad = 0;

        if (!o || !proc || !agent) {
                json_decref(o);
                json_decref(proc);
                json_decref(agent);
                return NULL;
        }

        bad |= set_int(o, "seq", (int64_t) s->seq);
        bad |= set_real(o, "time", s->time);

        bad |= set_int_if_known(proc, "rss_bytes", s->process.rss_bytes);
        bad |= set_int_if_known(proc, "rss_peak_bytes", s->process.rss_peak_bytes);
        bad |= set_int_if_known(proc, "vm_bytes", s->process.vm_bytes);
        bad |= set_int_if_known(proc, "threads", s->process.threads);
        bad |= json_object_set_new_nocheck(o, "process", proc);

        if (s->cgroup.present) {
                json_t *cg = json_object();
                if (cg) {
                        bad |= set_string(cg, "path", s->cgroup.path, HW_AGENT_CGROUP_PATH_MAX, false);
                        bad |= set_int_if_known(cg, "memory_current_bytes", s->cgroup.memory_current_bytes);
                        bad |= json_object_set_new_nocheck(cg, "memory_max_bytes",
                                                           s->cgroup.memory_max_bytes >= 0
                                                                   ? json_integer(s->cgroup.memory_max_bytes)
                                                                   : json_null());
                        bad |= set_int_if_known(cg, "limit_usage_bytes", s->cgroup.limit_usage_bytes);
                }
                bad |= json_object_set_new_nocheck(o, "cgroup", cg);
        }

        if (s->allocated_blocks >= 0) {
                json_t *py = json_object();
                if (py) {
                        bad |= set_int(py, "allocated_blocks", s->allocated_blocks);
                        if (s->has_arenas) {
                                bad |= set_int(py, "arena_allocs_total", (int64_t) s->arena_allocs_total);
                                bad |= set_int(py, "arena_frees_total", (int64_t) s->arena_frees_total);
                                bad |= set_int(py, "arena_size_bytes", (int64_t) s->arena_size_bytes);
                        }
                }
                bad |= json_object_set_new_nocheck(o, "python", py);
        }

        if (s->has_gc) {
                json_t *gc = json_object(), *gens = json_array();
                if (gc && gens) {
                        bad |= json_object_set_new_nocheck(gc, "enabled", json_boolean(s->gc_enabled));
                        bad |= set_int_if_known(gc, "garbage", s->gc_garbage);
                        bad |= set_int_if_known(gc, "garbage_finalizers", s->gc_garbage_finalizers);
                        bad |= set_int_if_known(gc, "finalizers_collected", s->gc_finalizers_collected);
                        bad |= set_int_if_known(gc, "finalizers_collections", s->gc_finalizers_collections);
                        bad |= set_int_if_known(gc, "finalizers_skipped", s->gc_finalizers_skipped);
                        for (size_t i = 0; i < s->gc_generations && i < HW_AGENT_GC_GENERATIONS_MAX; i++)
                                bad |= json_array_append_new(gens, generation_json(&s->gc[i]));
                        bad |= json_object_set_new_nocheck(gc, "generations", gens);
                        gens = NULL;
                } else
                        bad = 1;
                json_decref(gens);
                bad |= json_object_set_new_nocheck(o, "gc", gc);
        }

        if (s->malloc_stats.present)
                bad |= json_object_set_new_nocheck(o, "malloc", malloc_json(&s->malloc_stats));

        bad |= set_int(agent, "samples_dropped_total", (int64_t) s->samples_dropped_total);
        bad |= set_int(agent, "reconnects_total", (int64_t) s->reconnects_total);
        bad |= set_real(agent, "sample_seconds", s->sample_seconds);
        bad |= json_object_set_new_nocheck(o, "agent", agent);

        if (s->heap)
                bad |= json_object_set_nocheck(o, "heap", s->heap);

        if (reason)
                bad |= set_string(o, "reason", reason, 15, true);

        if (bad) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int hw_encode_frame(json_t *payload, uint8_t type, uint8_t **ret_frame, size_t *ret_size) {
        size_t size, written;
        uint8_t *frame;

        size = json_dumpb(payload, NULL, 0, JSON_COMPACT);
        if (size == 0)
                return -ENOMEM;
        if (size > HW_FRAME_MAX_PAYLOAD)
                return -E2BIG;
        frame = malloc(HW_FRAME_HEADER_SIZE + size);
        if (!frame)
                return -ENOMEM;
        written = json_dumpb(payload, (char *) frame + HW_FRAME_HEADER_SIZE, size, JSON_COMPACT);
        if (written != size) {
                free(frame);
                return -ENOMEM;
        }
        hw_frame_header_pack(frame, type, (uint32_t) size);
        *ret_frame = frame;
        *ret_size = HW_FRAME_HEADER_SIZE + size;
        return 0;
}

int hw_encode_hello(const struct hw_agent_identity *id, uint8_t **ret_frame, size_t *ret_size) {
        size_t max_argc = HW_AGENT_ARGV_MAX;

        /* argv is bounded to 64 x 1 KiB, but JSON escaping can still push it past the frame
         * limit; then send fewer entries rather than no HELLO. */
        for (;;) {
                json_t *o = hello_json(id, max_argc);
                int r;

                if (!o)
                        return -ENOMEM;
                r = hw_encode_frame(o, HW_FRAME_HELLO, ret_frame, ret_size);
                json_decref(o);
                if (r != -E2BIG || max_argc == 0)
                        return r;
                max_argc /= 2;
        }
}

int hw_encode_sample(const struct hw_agent_sample *s, const char *reason, uint8_t **ret_frame, size_t *ret_size) {
        json_t *o = hw_encode_sample_json(s, reason);
        int r;

        if (!o)
                return -ENOMEM;
        r = hw_encode_frame(o, reason ? HW_FRAME_GOODBYE : HW_FRAME_SAMPLE, ret_frame, ret_size);
        json_decref(o);
        return r;
}

json_t *hw_decode_object(const uint8_t *payload, size_t size) {
        json_t *o = json_loadb((const char *) payload, size, 0, NULL);

        if (o && !json_is_object(o)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int hw_string_is_plain(const char *s, size_t len, size_t max) {
        if (len == 0 || len > max)
                return 0;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7F)
                        return 0;
        return 1;
}

int hw_decode_welcome(const uint8_t *payload, size_t size, char ret_id[HW_AGENT_ID_MAX + 1]) {
        json_t *o, *id;
        const char *s;
        size_t len;
        int r = -EBADMSG;

        o = hw_decode_object(payload, size);
        if (!o)
                return -EBADMSG;
        id = json_object_get(o, "id");
        if (!json_is_string(id))
                goto finish;
        s = json_string_value(id);
        len = json_string_length(id);
        if (!hw_string_is_plain(s, len, HW_AGENT_ID_MAX))
                goto finish;
        /* an id is <pid>-<ticks>[-<n>]: digits and dashes; letters and '_', '.' are let through for
         * later daemons. Anything else (Unicode controls, bidi overrides) reached status(). */
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      s[i] == '-' || s[i] == '_' || s[i] == '.'))
                        goto finish;
        memcpy(ret_id, s, len);
        ret_id[len] = '\0';
        r = 0;
finish:
        json_decref(o);
        return r;
}
