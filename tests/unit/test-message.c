/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/message.c: the HELLO / SAMPLE / GOODBYE examples of docs/protocol.md
 * decode to exactly the values they carry; unknown members are ignored at every level; every
 * known member of the wrong type, out of range or missing when required is refused with -EINVAL
 * and an error naming it; payloads that are not a JSON object (or not JSON, or JSON with
 * duplicate keys, NULs or overflowing numbers) are refused with -EBADMSG; the output is left
 * untouched on failure; and the WELCOME encoding round-trips through the frame header parser
 * and jansson. Bad cases are made by mutating a known-good message, so each differs from a
 * valid one in exactly the member under test.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapwatch/protocol.h"
#include "message.h"
#include "sample.h"

static const char hello_json[] =
        "{\"protocol\": 1, \"agent_version\": \"0.1.0\","
        " \"pid\": 4242, \"ppid\": 4200, \"start_time_ticks\": 1234567, \"start_time\": 1764061234.56,"
        " \"argv\": [\"python3\", \"app.py\"], \"service\": \"billing\", \"hostname\": \"web-1\","
        " \"python\": {\"version\": \"3.11.7\", \"implementation\": \"cpython\", \"hexversion\": 51054576,"
        "            \"build\": \"main, Dec 12 2023 10:00:00\", \"compiler\": \"GCC 12.2.0\"},"
        " \"interval\": 1.0, \"features\": [\"chains_holders_only\", \"a_later_feature\"]}";

static const char sample_json[] =
        "{\"seq\": 17, \"time\": 1764061251.02,"
        " \"process\": {\"rss_bytes\": 31457280, \"rss_peak_bytes\": 33554432, \"vm_bytes\": 412090368,"
        "             \"threads\": 3},"
        " \"cgroup\": {\"path\": \"/system.slice/billing.service\","
        "            \"memory_current_bytes\": 52428800, \"memory_max_bytes\": 1073741824},"
        " \"python\": {\"allocated_blocks\": 61234,"
        "            \"arena_allocs_total\": 12, \"arena_frees_total\": 2, \"arena_size_bytes\": 1048576},"
        " \"gc\": {\"enabled\": true, \"garbage\": 0,"
        "        \"generations\": ["
        "          {\"count\": 412, \"threshold\": 700, \"collections\": 120, \"collected\": 3100,"
        "           \"uncollectable\": 0, \"pauses\": 3, \"pause_seconds_total\": 0.00021,"
        "           \"pause_seconds_max\": 0.00009},"
        "          {\"count\": 5, \"threshold\": 10, \"collections\": 11, \"collected\": 200,"
        "           \"uncollectable\": 1, \"pauses\": 1, \"pause_seconds_total\": 0.0005,"
        "           \"pause_seconds_max\": 0.0005},"
        "          {\"count\": 2, \"threshold\": 10, \"collections\": 1, \"collected\": 7,"
        "           \"uncollectable\": 2, \"pauses\": 0, \"pause_seconds_total\": 0,"
        "           \"pause_seconds_max\": 0}]},"
        " \"agent\": {\"samples_dropped_total\": 4, \"reconnects_total\": 1, \"sample_seconds\": 0.00004}}";

/* ---- helpers ---------------------------------------------------------------------------- */

static int decode_hello(const char *json, HwHello *h, char *error, size_t size) {
        return message_decode_hello((const uint8_t *) json, strlen(json), h, error, size);
}

static int decode_sample(const char *json, bool goodbye, HwSample *s, char *error, size_t size) {
        return message_decode_sample((const uint8_t *) json, strlen(json), goodbye, s, error, size);
}

/* Return base with the member at a dotted path ("gc.generations.1.count") replaced by value
 * (stolen), or removed if value is NULL. The result is a malloc'ed compact JSON string. */
static char *mutate(const char *base, const char *path, json_t *value) {
        json_error_t jerr;
        json_t *root = json_loads(base, 0, &jerr), *node;
        char buf[128], *save = NULL, *tok, *next, *out;

        ck_assert_msg(root, "base JSON: %s", jerr.text);
        ck_assert_uint_lt(strlen(path), sizeof buf);
        strcpy(buf, path);
        node = root;
        tok = strtok_r(buf, ".", &save);
        while ((next = strtok_r(NULL, ".", &save))) {
                node = json_is_array(node) ? json_array_get(node, strtoul(tok, NULL, 10)) : json_object_get(node, tok);
                ck_assert_msg(node, "path %s: no '%s'", path, tok);
                tok = next;
        }
        if (json_is_array(node)) {
                size_t i = strtoul(tok, NULL, 10);
                if (value)
                        ck_assert_int_eq(json_array_set_new(node, i, value), 0);
                else
                        ck_assert_int_eq(json_array_remove(node, i), 0);
        } else if (value)
                ck_assert_int_eq(json_object_set_new(node, tok, value), 0);
        else
                ck_assert_int_eq(json_object_del(node, tok), 0);
        out = json_dumps(root, JSON_COMPACT);
        ck_assert_ptr_nonnull(out);
        json_decref(root);
        return out;
}

/* value given as JSON text ("-1", "\"x\"", "[1]"); NULL removes the member. */
static char *mutate_text(const char *base, const char *path, const char *value) {
        json_error_t jerr;
        json_t *v = NULL;

        if (value) {
                v = json_loads(value, JSON_DECODE_ANY, &jerr);
                ck_assert_msg(v, "value %s: %s", value, jerr.text);
        }
        return mutate(base, path, v);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        ck_assert_ptr_nonnull(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

typedef struct BadCase {
        const char *path;   /* member to replace */
        const char *value;  /* JSON text; NULL = remove the member */
        const char *member; /* the name the error text must quote */
} BadCase;

/* want: -EINVAL for a wrong member, -E2BIG for one beyond the protocol's bounds (a limit hit). */
static void check_hello_refused(const char *json, const char *member, const char *what, int want) {
        HwHello h, orig;
        char error[MESSAGE_ERROR_MAX] = "";
        char quoted[64];
        int r;

        memset(&h, 0xab, sizeof h);
        orig = h;
        r = decode_hello(json, &h, error, sizeof error);
        ck_assert_msg(r == want, "%s: expected %d, got %d (%s) for %s", what, want, r, error, json);
        snprintf(quoted, sizeof quoted, "'%s'", member);
        ck_assert_msg(strstr(error, quoted), "%s: error '%s' does not name %s", what, error, quoted);
        ck_assert_msg(memcmp(&h, &orig, sizeof h) == 0, "%s: output written on failure", what);
}

static void check_sample_refused(const char *json, bool goodbye, const char *member, const char *what, int want) {
        HwSample s, orig;
        char error[MESSAGE_ERROR_MAX] = "";
        char quoted[64];
        int r;

        memset(&s, 0xab, sizeof s);
        orig = s;
        r = decode_sample(json, goodbye, &s, error, sizeof error);
        ck_assert_msg(r == want, "%s: expected %d, got %d (%s) for %s", what, want, r, error, json);
        snprintf(quoted, sizeof quoted, "'%s'", member);
        ck_assert_msg(strstr(error, quoted), "%s: error '%s' does not name %s", what, error, quoted);
        ck_assert_msg(memcmp(&s, &orig, sizeof s) == 0, "%s: output written on failure", what);
}

static void check_hello_rejected(const char *json, const char *member, const char *what) {
        check_hello_refused(json, member, what, -EINVAL);
}

static void check_hello_over_bound(const char *json, const char *member, const char *what) {
        check_hello_refused(json, member, what, -E2BIG);
}

static void check_sample_rejected(const char *json, bool goodbye, const char *member, const char *what) {
        check_sample_refused(json, goodbye, member, what, -EINVAL);
}

static void check_sample_over_bound(const char *json, bool goodbye, const char *member, const char *what) {
        check_sample_refused(json, goodbye, member, what, -E2BIG);
}

static void check_hello_accepted(const char *json, const char *what) {
        HwHello h;
        char error[MESSAGE_ERROR_MAX] = "";
        int r = decode_hello(json, &h, error, sizeof error);

        ck_assert_msg(r == 0, "%s: expected success, got %d (%s) for %s", what, r, error, json);
        hw_hello_done(&h);
}

static void check_sample_accepted(const char *json, bool goodbye, HwSample *ret, const char *what) {
        HwSample s;
        char error[MESSAGE_ERROR_MAX] = "";
        int r = decode_sample(json, goodbye, &s, error, sizeof error);

        ck_assert_msg(r == 0, "%s: expected success, got %d (%s) for %s", what, r, error, json);
        if (ret)
                *ret = s;
}

/* ---- HELLO ------------------------------------------------------------------------------ */

START_TEST(test_hello_full) {
        HwHello h;
        char error[MESSAGE_ERROR_MAX] = "";

        ck_assert_int_eq(decode_hello(hello_json, &h, error, sizeof error), 0);
        ck_assert_int_eq(h.protocol, 1);
        ck_assert_str_eq(h.agent_version, "0.1.0");
        ck_assert_int_eq(h.pid, 4242);
        ck_assert_int_eq(h.ppid, 4200);
        ck_assert_int_eq(h.start_time_ticks, 1234567);
        ck_assert_double_eq(h.start_time, 1764061234.56);
        ck_assert_ptr_nonnull(h.argv);
        ck_assert_str_eq(h.argv[0], "python3");
        ck_assert_str_eq(h.argv[1], "app.py");
        ck_assert_ptr_null(h.argv[2]);
        ck_assert_str_eq(h.service, "billing");
        ck_assert_str_eq(h.hostname, "web-1");
        ck_assert_str_eq(h.python_version, "3.11.7");
        ck_assert_str_eq(h.python_implementation, "cpython");
        ck_assert_int_eq(h.python_hexversion, 51054576);
        ck_assert_str_eq(h.python_build, "main, Dec 12 2023 10:00:00");
        ck_assert_str_eq(h.python_compiler, "GCC 12.2.0");
        ck_assert_double_eq(h.interval, 1.0);
        ck_assert(h.holders_only); /* and the feature it does not know is ignored */
        hw_hello_done(&h);
        ck_assert_ptr_null(h.argv);
        hw_hello_done(&h); /* idempotent */
}
END_TEST

START_TEST(test_hello_minimal_defaults) {
        HwHello h;
        char error[MESSAGE_ERROR_MAX] = "";

        ck_assert_int_eq(decode_hello("{\"protocol\": 1, \"pid\": 7}", &h, error, sizeof error), 0);
        ck_assert_int_eq(h.protocol, 1);
        ck_assert_int_eq(h.pid, 7);
        ck_assert_int_eq(h.ppid, -1);
        ck_assert_int_eq(h.start_time_ticks, -1);
        ck_assert_double_eq(h.start_time, 0);
        ck_assert_ptr_null(h.argv);
        ck_assert_str_eq(h.agent_version, "");
        ck_assert_str_eq(h.service, "");
        ck_assert_str_eq(h.hostname, "");
        ck_assert_str_eq(h.python_version, "");
        ck_assert_int_eq(h.python_hexversion, 0);
        ck_assert_double_eq(h.interval, 0);
        ck_assert(!h.holders_only); /* an agent from before "features" */
        hw_hello_done(&h);

        /* Optional members sent as null count as absent; an empty argv is an empty list. */
        ck_assert_int_eq(decode_hello("{\"protocol\": 1, \"pid\": 7, \"ppid\": null, \"service\": null,"
                                      " \"python\": null, \"argv\": []}",
                                      &h, error, sizeof error),
                         0);
        ck_assert_int_eq(h.ppid, -1);
        ck_assert_ptr_nonnull(h.argv);
        ck_assert_ptr_null(h.argv[0]);
        hw_hello_done(&h);
}
END_TEST

START_TEST(test_hello_unknown_members_ignored) {
        HwHello h;
        char error[MESSAGE_ERROR_MAX] = "";
        char *a = mutate_text(hello_json, "future", "{\"x\": [1, {\"y\": null}]}");
        char *b = mutate_text(a, "python.jit", "\"enabled\"");
        char *c = mutate_text(b, "python.nested", "[1, 2.5, \"three\", false]");
        char *d = mutate_text(c, "zzz", "-1e300");

        ck_assert_int_eq(decode_hello(d, &h, error, sizeof error), 0);
        ck_assert_int_eq(h.pid, 4242);
        ck_assert_str_eq(h.service, "billing");
        ck_assert_str_eq(h.python_version, "3.11.7");
        hw_hello_done(&h);
        free(a);
        free(b);
        free(c);
        free(d);
}
END_TEST

START_TEST(test_hello_bad_members) {
        static const BadCase cases[] = {
                { "protocol", NULL, "protocol" },
                { "protocol", "null", "protocol" },
                { "protocol", "\"1\"", "protocol" },
                { "protocol", "1.0", "protocol" },
                { "protocol", "true", "protocol" },
                { "protocol", "0", "protocol" },
                { "protocol", "256", "protocol" },
                { "protocol", "-1", "protocol" },
                { "pid", NULL, "pid" },
                { "pid", "0", "pid" },
                { "pid", "-4242", "pid" },
                { "pid", "2147483648", "pid" },
                { "pid", "4242.5", "pid" },
                { "pid", "\"4242\"", "pid" },
                { "pid", "[4242]", "pid" },
                { "ppid", "-1", "ppid" },
                { "ppid", "2147483648", "ppid" },
                { "ppid", "\"4200\"", "ppid" },
                { "start_time_ticks", "-1", "start_time_ticks" },
                { "start_time_ticks", "1.5", "start_time_ticks" },
                { "start_time", "-0.5", "start_time" },
                { "start_time", "4102444800.5", "start_time" },
                { "start_time", "1e300", "start_time" },
                { "start_time", "\"now\"", "start_time" },
                { "interval", "-1", "interval" },
                { "interval", "86400.5", "interval" },
                { "interval", "\"1s\"", "interval" },
                { "agent_version", "1", "agent_version" },
                { "agent_version", "{}", "agent_version" },
                { "service", "42", "service" },
                { "service", "[\"billing\"]", "service" },
                { "service", "\"bill\\ting\"", "service" },
                { "service", "\"bill\\ning\"", "service" },
                { "service", "\"bill\\u001bing\"", "service" },
                { "service", "\"bill\\u007fing\"", "service" },
                { "hostname", "false", "hostname" },
                { "python", "\"3.11\"", "python" },
                { "python", "[]", "python" },
                { "python.version", "3.11", "version" },
                { "python.implementation", "1", "implementation" },
                { "python.build", "1", "build" },
                { "python.compiler", "{}", "compiler" },
                { "python.hexversion", "-1", "hexversion" },
                { "python.hexversion", "2147483648", "hexversion" },
                { "python.hexversion", "\"0x30b07f0\"", "hexversion" },
                { "argv", "\"python3 app.py\"", "argv" },
                { "argv", "{}", "argv" },
                { "argv", "[1]", "argv[]" },
                { "argv", "[\"python3\", null]", "argv[]" },
                { "argv", "[[\"nested\"]]", "argv[]" },
                { "features", "\"chains_holders_only\"", "features" },
                { "features", "{}", "features" },
                { "features", "[1]", "features" },
                { "features", "[null]", "features" },
                { "features", "[\"chains\\nholders\"]", "features" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char what[128];
                char *json = mutate_text(hello_json, cases[i].path, cases[i].value);

                snprintf(what, sizeof what, "%s=%s", cases[i].path, cases[i].value ? cases[i].value : "(absent)");
                check_hello_rejected(json, cases[i].member, what);
                free(json);
        }
}
END_TEST

START_TEST(test_hello_boundaries_accepted) {
        static const BadCase good[] = {
                { "protocol", "255", NULL },
                { "pid", "2147483647", NULL },
                { "pid", "1", NULL },
                { "ppid", "0", NULL },
                { "start_time_ticks", "0", NULL },
                { "start_time_ticks", "9223372036854775807", NULL },
                { "start_time", "0", NULL },
                { "start_time", "4102444800", NULL },
                { "start_time", "1764061234", NULL }, /* an integer is a number too */
                { "interval", "86400", NULL },
                { "interval", "0.001", NULL },
                { "python.hexversion", "2147483647", NULL },
                { "python", "{}", NULL }, /* nothing inside is required */
                { "service", "\"caf\\u00e9 \\u2603\"", NULL }, /* non-ASCII UTF-8 is not control */
                { "argv", "[\"a\\tb\", \"\\n\", \"\"]", NULL }, /* argv may hold anything but NUL */
        };

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                char what[128];
                char *json = mutate_text(hello_json, good[i].path, good[i].value);

                snprintf(what, sizeof what, "%s=%s", good[i].path, good[i].value);
                check_hello_accepted(json, what);
                free(json);
        }
}
END_TEST

START_TEST(test_hello_string_bounds) {
        static const struct {
                const char *path;
                const char *member;
                size_t max;
        } bounds[] = {
                { "service", "service", HW_SERVICE_MAX },
                { "hostname", "hostname", HW_HOSTNAME_MAX },
                { "agent_version", "agent_version", HW_SHORT_STRING_MAX },
                { "python.version", "version", HW_SHORT_STRING_MAX },
                { "python.implementation", "implementation", HW_SHORT_STRING_MAX },
                { "python.build", "build", HW_BUILD_STRING_MAX },
                { "python.compiler", "compiler", HW_BUILD_STRING_MAX },
        };

        ck_assert_int_eq(HW_SERVICE_MAX, 128);
        ck_assert_int_eq(HW_HOSTNAME_MAX, 255);
        for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
                char *at = repeat('s', bounds[i].max), *over = repeat('s', bounds[i].max + 1);
                char *ok = mutate(hello_json, bounds[i].path, json_string(at));
                char *bad = mutate(hello_json, bounds[i].path, json_string(over));
                HwHello h;
                char error[MESSAGE_ERROR_MAX] = "";

                ck_assert_msg(decode_hello(ok, &h, error, sizeof error) == 0, "%s at %zu bytes: %s", bounds[i].path,
                              bounds[i].max, error);
                if (strcmp(bounds[i].path, "service") == 0)
                        ck_assert_str_eq(h.service, at);
                if (strcmp(bounds[i].path, "hostname") == 0)
                        ck_assert_str_eq(h.hostname, at);
                if (strcmp(bounds[i].path, "python.compiler") == 0)
                        ck_assert_str_eq(h.python_compiler, at);
                hw_hello_done(&h);
                check_hello_over_bound(bad, bounds[i].member, bounds[i].path);
                free(at);
                free(over);
                free(ok);
                free(bad);
        }

        /* Multi-byte UTF-8: the bound is in bytes, not characters. 64 x "é" = 128 bytes fits the
         * service; 65 do not. */
        {
                char buf[2 * 65 + 1] = "";
                char *ok, *bad;

                for (int i = 0; i < 64; i++)
                        strcat(buf, "\xc3\xa9");
                ok = mutate(hello_json, "service", json_string(buf));
                strcat(buf, "\xc3\xa9");
                bad = mutate(hello_json, "service", json_string(buf));
                check_hello_accepted(ok, "service 128 bytes of UTF-8");
                check_hello_over_bound(bad, "service", "service 130 bytes of UTF-8");
                free(ok);
                free(bad);
        }
}
END_TEST

/* "features": at most HW_FEATURES_MAX names of at most HW_FEATURE_NAME_MAX bytes. */
START_TEST(test_hello_features_bounds) {
        json_t *full = json_array(), *over = json_array(), *name_at = json_array(), *name_over = json_array();
        char *at = repeat('f', HW_FEATURE_NAME_MAX), *too_long = repeat('f', HW_FEATURE_NAME_MAX + 1);
        char *json;

        for (unsigned i = 0; i < HW_FEATURES_MAX; i++) {
                json_array_append_new(full, json_string("x"));
                json_array_append_new(over, json_string("x"));
        }
        json_array_append_new(over, json_string(HW_FEATURE_HOLDERS_ONLY));
        json_array_append_new(name_at, json_string(at));
        json_array_append_new(name_over, json_string(too_long));

        json = mutate(hello_json, "features", full);
        check_hello_accepted(json, "16 features");
        free(json);
        json = mutate(hello_json, "features", name_at);
        check_hello_accepted(json, "a feature name of 64 bytes");
        free(json);
        json = mutate(hello_json, "features", over);
        check_hello_over_bound(json, "features", "17 features");
        free(json);
        json = mutate(hello_json, "features", name_over);
        check_hello_over_bound(json, "features", "a feature name of 65 bytes");
        free(json);
        free(at);
        free(too_long);
}
END_TEST

START_TEST(test_hello_argv_bounds) {
        json_t *a;
        char *json, *big;
        HwHello h;
        char error[MESSAGE_ERROR_MAX] = "";

        /* Exactly 64 entries of exactly 1024 bytes: accepted, all kept. */
        big = repeat('a', HW_ARG_MAX);
        a = json_array();
        for (int i = 0; i < HW_ARGV_MAX; i++)
                json_array_append_new(a, json_string(big));
        json = mutate(hello_json, "argv", a);
        ck_assert_int_eq(decode_hello(json, &h, error, sizeof error), 0);
        for (int i = 0; i < HW_ARGV_MAX; i++)
                ck_assert_str_eq(h.argv[i], big);
        ck_assert_ptr_null(h.argv[HW_ARGV_MAX]);
        hw_hello_done(&h);
        free(json);
        free(big);

        /* 65 entries. */
        a = json_array();
        for (int i = 0; i <= HW_ARGV_MAX; i++)
                json_array_append_new(a, json_string("x"));
        json = mutate(hello_json, "argv", a);
        check_hello_over_bound(json, "argv", "argv 65 entries");
        free(json);

        /* One entry of 1025 bytes, after good ones (nothing may leak: valgrind). */
        big = repeat('b', HW_ARG_MAX + 1);
        a = json_array();
        json_array_append_new(a, json_string("python3"));
        json_array_append_new(a, json_string(big));
        json = mutate(hello_json, "argv", a);
        check_hello_over_bound(json, "argv[]", "argv entry 1025 bytes");
        free(json);
        free(big);
}
END_TEST

START_TEST(test_hello_embedded_nul) {
        /* jansson refuses "\u0000" unless asked to allow it, so a NUL can never reach a C string:
         * the whole payload is refused as malformed JSON. */
        static const char *const paths[] = { "service", "hostname", "agent_version", "python.version" };
        HwHello h;
        char error[MESSAGE_ERROR_MAX];

        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
                char *base = mutate(hello_json, paths[i], json_string("PLACEHOLDER"));
                char *at = strstr(base, "PLACEHOLDER");
                char *json = malloc(strlen(base) + 16);

                ck_assert_ptr_nonnull(at);
                ck_assert_ptr_nonnull(json);
                sprintf(json, "%.*sbill\\u0000ing%s", (int) (at - base), base, at + strlen("PLACEHOLDER"));
                ck_assert_msg(decode_hello(json, &h, error, sizeof error) == -EBADMSG, "%s", json);
                free(json);
                free(base);
        }
        ck_assert_int_eq(decode_hello("{\"protocol\":1,\"pid\":1,\"argv\":[\"a\\u0000b\"]}", &h, error, sizeof error),
                         -EBADMSG);

        /* A raw NUL byte inside the payload is not JSON either. */
        {
                static const char raw[] = "{\"protocol\":1,\"pid\":1,\"service\":\"a\0b\"}";
                ck_assert_int_eq(message_decode_hello((const uint8_t *) raw, sizeof raw - 1, &h, error, sizeof error),
                                 -EBADMSG);
        }
}
END_TEST

START_TEST(test_hello_error_buffer) {
        HwHello h;
        char small[8];

        /* No error buffer at all is fine. */
        ck_assert_int_eq(decode_hello("{\"protocol\": 1}", &h, NULL, 0), -EINVAL);
        ck_assert_int_eq(decode_hello("[", &h, NULL, 0), -EBADMSG);
        /* A short buffer is truncated, never overrun. */
        memset(small, 'X', sizeof small);
        ck_assert_int_eq(decode_hello("{\"protocol\": 1}", &h, small, sizeof small), -EINVAL);
        ck_assert_uint_eq(strlen(small), sizeof small - 1);
}
END_TEST

START_TEST(test_hello_respects_length) {
        /* The payload is not NUL-terminated for the decoder: only len bytes count. */
        static const char buf[] = "{\"protocol\": 1, \"pid\": 9}{\"garbage\"";
        HwHello h;
        char error[MESSAGE_ERROR_MAX] = "";
        size_t len = strlen("{\"protocol\": 1, \"pid\": 9}");

        ck_assert_int_eq(message_decode_hello((const uint8_t *) buf, len, &h, error, sizeof error), 0);
        ck_assert_int_eq(h.pid, 9);
        hw_hello_done(&h);
        ck_assert_int_eq(message_decode_hello((const uint8_t *) buf, len - 1, &h, error, sizeof error), -EBADMSG);
        ck_assert_int_eq(message_decode_hello((const uint8_t *) buf, sizeof buf - 1, &h, error, sizeof error),
                         -EBADMSG);
        ck_assert_int_eq(message_decode_hello((const uint8_t *) buf, 0, &h, error, sizeof error), -EBADMSG);
}
END_TEST

/* ---- not a JSON object ------------------------------------------------------------------- */

START_TEST(test_not_json_object) {
        static const char *const bad[] = {
                "", " ", "{", "}", "hello", "{\"protocol\": 1, \"pid\": 1", "{\"protocol\": 1, \"pid\": 1} x",
                "{'protocol': 1}", "{\"protocol\": 1,}", "[]", "[{\"protocol\": 1, \"pid\": 1}]", "42", "-1.5",
                "\"string\"", "null", "true", "false", "\xff\xfe", "{\"service\": \"\xc3\"}",
                /* NaN and Infinity do not exist in JSON; numbers that overflow a double or an
                 * integer are refused by the parser. */
                "{\"protocol\": 1, \"pid\": 1, \"start_time\": NaN}",
                "{\"protocol\": 1, \"pid\": 1, \"start_time\": Infinity}",
                "{\"protocol\": 1, \"pid\": 1, \"start_time\": 1e400}",
                "{\"protocol\": 1, \"pid\": 1, \"start_time\": -1e400}",
                "{\"protocol\": 1, \"pid\": 99999999999999999999}",
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                HwHello h, orig;
                HwSample s, sorig;
                char error[MESSAGE_ERROR_MAX] = "";
                int r;

                memset(&h, 0xcd, sizeof h);
                orig = h;
                r = decode_hello(bad[i], &h, error, sizeof error);
                ck_assert_msg(r == -EBADMSG, "hello '%s': %d", bad[i], r);
                ck_assert_msg(error[0] != '\0', "hello '%s': no error text", bad[i]);
                ck_assert(memcmp(&h, &orig, sizeof h) == 0);

                memset(&s, 0xcd, sizeof s);
                sorig = s;
                r = decode_sample(bad[i], false, &s, error, sizeof error);
                ck_assert_msg(r == -EBADMSG, "sample '%s': %d", bad[i], r);
                ck_assert(memcmp(&s, &sorig, sizeof s) == 0);
                ck_assert_int_eq(decode_sample(bad[i], true, &s, error, sizeof error), -EBADMSG);
        }
}
END_TEST

START_TEST(test_deep_nesting) {
        /* An unknown member nested 100000 deep (well inside the 256 KiB frame limit) must be
         * refused by the parser's depth limit, not recurse the daemon's stack away. */
        const size_t depth = 100000;
        const char *head = "{\"protocol\": 1, \"pid\": 1, \"x\": ";
        size_t hl = strlen(head);
        char *json = malloc(hl + 2 * depth + 2);
        HwHello h;
        HwSample s;
        char error[MESSAGE_ERROR_MAX];

        ck_assert_ptr_nonnull(json);
        memcpy(json, head, hl);
        memset(json + hl, '[', depth);
        memset(json + hl + depth, ']', depth);
        json[hl + 2 * depth] = '}';
        json[hl + 2 * depth + 1] = '\0';
        ck_assert_uint_le(strlen(json), HW_FRAME_MAX_PAYLOAD);
        ck_assert_int_eq(decode_hello(json, &h, error, sizeof error), -EBADMSG);
        ck_assert_int_eq(decode_sample(json, false, &s, error, sizeof error), -EBADMSG);
        free(json);
}
END_TEST

START_TEST(test_duplicate_keys) {
        static const char *const hellos[] = {
                "{\"protocol\": 1, \"pid\": 1, \"pid\": 2}",
                "{\"protocol\": 1, \"pid\": 1, \"service\": \"a\", \"service\": \"a\"}",
                "{\"protocol\": 1, \"pid\": 1, \"python\": {\"version\": \"3\", \"version\": \"4\"}}",
                "{\"protocol\": 1, \"pid\": 1, \"unknown\": 1, \"unknown\": 2}",
        };
        static const char *const samples[] = {
                "{\"seq\": 1, \"time\": 2, \"process\": {\"rss_bytes\": 1, \"rss_bytes\": 2}}",
                "{\"seq\": 1, \"time\": 2, \"process\": {\"rss_bytes\": 1},"
                " \"gc\": {\"generations\": [{\"count\": 1, \"count\": 1}]}}",
        };
        HwHello h;
        HwSample s;
        char error[MESSAGE_ERROR_MAX];

        for (size_t i = 0; i < sizeof hellos / sizeof hellos[0]; i++)
                ck_assert_msg(decode_hello(hellos[i], &h, error, sizeof error) == -EBADMSG, "%s", hellos[i]);
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
                ck_assert_msg(decode_sample(samples[i], false, &s, error, sizeof error) == -EBADMSG, "%s", samples[i]);
}
END_TEST

/* ---- SAMPLE / GOODBYE -------------------------------------------------------------------- */

START_TEST(test_sample_full) {
        HwSample s;
        char error[MESSAGE_ERROR_MAX] = "";

        ck_assert_int_eq(decode_sample(sample_json, false, &s, error, sizeof error), 0);
        ck_assert_uint_eq(s.seq, 17);
        ck_assert_double_eq(s.time, 1764061251.02);
        ck_assert_int_eq(s.rss_bytes, 31457280);
        ck_assert_int_eq(s.rss_peak_bytes, 33554432);
        ck_assert_int_eq(s.vm_bytes, 412090368);
        ck_assert_int_eq(s.threads, 3);
        ck_assert(s.has_cgroup);
        ck_assert_str_eq(s.cgroup_path, "/system.slice/billing.service");
        ck_assert_int_eq(s.cgroup_memory_current_bytes, 52428800);
        ck_assert_int_eq(s.cgroup_memory_max_bytes, 1073741824);
        ck_assert_int_eq(s.cgroup_limit_usage_bytes, -1); /* an older agent's sample: not sent */
        ck_assert_int_eq(s.python_allocated_blocks, 61234);
        ck_assert(s.has_arenas);
        ck_assert_int_eq(s.arena_allocs_total, 12);
        ck_assert_int_eq(s.arena_frees_total, 2);
        ck_assert_int_eq(s.arena_size_bytes, 1048576);
        ck_assert(s.gc_enabled);
        ck_assert_int_eq(s.gc_garbage, 0);
        ck_assert_uint_eq(s.gc_generations, 3);
        ck_assert_int_eq(s.gc[0].count, 412);
        ck_assert_int_eq(s.gc[0].threshold, 700);
        ck_assert_int_eq(s.gc[0].collections, 120);
        ck_assert_int_eq(s.gc[0].collected, 3100);
        ck_assert_int_eq(s.gc[0].uncollectable, 0);
        ck_assert_int_eq(s.gc[0].pauses, 3);
        ck_assert_double_eq(s.gc[0].pause_seconds_total, 0.00021);
        ck_assert_double_eq(s.gc[0].pause_seconds_max, 0.00009);
        ck_assert_int_eq(s.gc[1].count, 5);
        ck_assert_int_eq(s.gc[1].collected, 200);
        ck_assert_int_eq(s.gc[1].uncollectable, 1);
        ck_assert_double_eq(s.gc[1].pause_seconds_total, 0.0005);
        ck_assert_int_eq(s.gc[2].uncollectable, 2);
        ck_assert_int_eq(s.gc[2].pauses, 0);
        ck_assert_int_eq(s.gc[3].count, 0); /* unused entry stays zero */
        ck_assert_int_eq(s.agent_samples_dropped_total, 4);
        ck_assert_int_eq(s.agent_reconnects_total, 1);
        ck_assert_double_eq(s.agent_sample_seconds, 0.00004);
        ck_assert(!s.is_goodbye);
        ck_assert_str_eq(s.goodbye_reason, "");
}
END_TEST

START_TEST(test_sample_doc_example_placeholders) {
        /* The docs abbreviate generations 1 and 2 as {"...": "gen 1"}: objects of unknown members
         * only, which decode as all-zero generations. */
        char *json = mutate_text(sample_json, "gc.generations",
                                 "[{\"count\": 412}, {\"...\": \"gen 1\"}, {\"...\": \"gen 2\"}]");
        HwSample s;

        check_sample_accepted(json, false, &s, "placeholders");
        ck_assert_uint_eq(s.gc_generations, 3);
        ck_assert_int_eq(s.gc[0].count, 412);
        ck_assert_int_eq(s.gc[1].count, 0);
        ck_assert_int_eq(s.gc[2].collections, 0);
        free(json);
}
END_TEST

START_TEST(test_sample_minimal_defaults) {
        HwSample s;
        char error[MESSAGE_ERROR_MAX] = "";

        ck_assert_int_eq(decode_sample("{\"seq\": 0, \"time\": 1, \"process\": {\"rss_bytes\": 0}}", false, &s, error,
                                       sizeof error),
                         0);
        ck_assert_uint_eq(s.seq, 0);
        ck_assert_double_eq(s.time, 1);
        ck_assert(!s.has_cgroup);
        ck_assert_int_eq(s.cgroup_memory_max_bytes, -1);
        ck_assert(!s.has_arenas);
        ck_assert(!s.gc_enabled);
        ck_assert_uint_eq(s.gc_generations, 0);
        ck_assert_double_eq(s.agent_sample_seconds, 0);
}
END_TEST

START_TEST(test_sample_unknown_members_ignored) {
        char *a = mutate_text(sample_json, "extension", "{\"heap\": [1, 2, 3]}");
        char *b = mutate_text(a, "process.oom_score", "\"high\"");
        char *c = mutate_text(b, "gc.generations.0.future", "[null]");
        char *d = mutate_text(c, "cgroup.pressure", "{\"some\": 1.5}");
        char *e = mutate_text(d, "agent.version", "\"9.9\"");
        char *f = mutate_text(e, "reason", "42"); /* "reason" is unknown to a plain SAMPLE */
        HwSample s;

        check_sample_accepted(f, false, &s, "unknown members");
        ck_assert_int_eq(s.rss_bytes, 31457280);
        ck_assert_int_eq(s.gc[0].count, 412);
        ck_assert(!s.is_goodbye);
        free(a);
        free(b);
        free(c);
        free(d);
        free(e);
        free(f);
}
END_TEST

START_TEST(test_sample_cgroup_memory_max) {
        HwSample s;
        char *json;

        json = mutate_text(sample_json, "cgroup.memory_max_bytes", "null");
        check_sample_accepted(json, false, &s, "memory_max_bytes null");
        ck_assert(s.has_cgroup);
        ck_assert_int_eq(s.cgroup_memory_max_bytes, -1);
        free(json);

        json = mutate_text(sample_json, "cgroup.memory_max_bytes", NULL);
        check_sample_accepted(json, false, &s, "memory_max_bytes absent");
        ck_assert_int_eq(s.cgroup_memory_max_bytes, -1);
        free(json);

        json = mutate_text(sample_json, "cgroup.memory_max_bytes", "0");
        check_sample_accepted(json, false, &s, "memory_max_bytes 0");
        ck_assert_int_eq(s.cgroup_memory_max_bytes, 0);
        free(json);

        json = mutate_text(sample_json, "cgroup.limit_usage_bytes", "44040192");
        check_sample_accepted(json, false, &s, "limit_usage_bytes");
        ck_assert_int_eq(s.cgroup_limit_usage_bytes, 44040192);
        free(json);

        json = mutate_text(sample_json, "cgroup", NULL);
        check_sample_accepted(json, false, &s, "no cgroup");
        ck_assert(!s.has_cgroup);
        ck_assert_int_eq(s.cgroup_memory_max_bytes, -1);
        ck_assert_str_eq(s.cgroup_path, "");
        free(json);

        json = mutate_text(sample_json, "python.arena_allocs_total", NULL);
        check_sample_accepted(json, false, &s, "no arenas");
        ck_assert(!s.has_arenas);
        ck_assert_int_eq(s.python_allocated_blocks, 61234);
        free(json);
}
END_TEST

START_TEST(test_sample_bad_members) {
        static const BadCase cases[] = {
                { "seq", NULL, "seq" },
                { "seq", "-1", "seq" },
                { "seq", "1.5", "seq" },
                { "seq", "\"17\"", "seq" },
                { "time", NULL, "time" },
                { "time", "0", "time" },
                { "time", "0.5", "time" },
                { "time", "-1764061251", "time" },
                { "time", "4102444801", "time" },
                { "time", "1e300", "time" },
                { "time", "\"2025-11-25\"", "time" },
                { "process", NULL, "process" },
                { "process", "[]", "process" },
                { "process", "31457280", "process" },
                { "process.rss_bytes", NULL, "rss_bytes" },
                { "process.rss_bytes", "-1", "rss_bytes" },
                { "process.rss_bytes", "1125899906842625", "rss_bytes" },
                { "process.rss_bytes", "3.5", "rss_bytes" },
                { "process.rss_bytes", "\"30M\"", "rss_bytes" },
                { "process.rss_peak_bytes", "-33554432", "rss_peak_bytes" },
                { "process.vm_bytes", "-1", "vm_bytes" },
                { "process.vm_bytes", "true", "vm_bytes" },
                { "process.threads", "-1", "threads" },
                { "process.threads", "4194305", "threads" },
                { "cgroup", "\"/system.slice\"", "cgroup" },
                { "cgroup.path", "1", "path" },
                { "cgroup.memory_current_bytes", NULL, "memory_current_bytes" },
                { "cgroup.memory_current_bytes", "-52428800", "memory_current_bytes" },
                { "cgroup.limit_usage_bytes", "-1", "limit_usage_bytes" },
                { "cgroup.limit_usage_bytes", "\"all\"", "limit_usage_bytes" },
                { "cgroup.memory_max_bytes", "-1", "memory_max_bytes" },
                { "cgroup.memory_max_bytes", "\"max\"", "memory_max_bytes" },
                { "cgroup.memory_max_bytes", "1.5", "memory_max_bytes" },
                { "python", "1", "python" },
                { "python.allocated_blocks", "-1", "allocated_blocks" },
                { "python.allocated_blocks", "9007199254740993", "allocated_blocks" },
                { "python.arena_allocs_total", "\"12\"", "arena_allocs_total" },
                { "python.arena_allocs_total", "-12", "arena_allocs_total" },
                { "python.arena_frees_total", "-2", "arena_frees_total" },
                { "python.arena_size_bytes", "-1048576", "arena_size_bytes" },
                { "gc", "true", "gc" },
                { "gc.enabled", "1", "enabled" },
                { "gc.enabled", "\"true\"", "enabled" },
                { "gc.garbage", "-1", "garbage" },
                { "gc.garbage", "[]", "garbage" },
                { "gc.generations", "{}", "generations" },
                { "gc.generations", "\"0 1 2\"", "generations" },
                { "gc.generations.0", "412", "generations" },
                { "gc.generations.1", "null", "generations" },
                { "gc.generations.0.count", "-2147483649", "count" },
                { "gc.generations.0.count", "9007199254740993", "count" },
                { "gc.generations.0.count", "\"412\"", "count" },
                { "gc.generations.0.threshold", "-1", "threshold" },
                { "gc.generations.1.collections", "-1", "collections" },
                { "gc.generations.2.collected", "-1", "collected" },
                { "gc.generations.2.uncollectable", "-1", "uncollectable" },
                { "gc.generations.0.pauses", "-3", "pauses" },
                { "gc.generations.0.pauses", "0.5", "pauses" },
                { "gc.generations.0.pause_seconds_total", "-0.1", "pause_seconds_total" },
                { "gc.generations.0.pause_seconds_total", "86401", "pause_seconds_total" },
                { "gc.generations.0.pause_seconds_max", "\"fast\"", "pause_seconds_max" },
                { "gc.generations.0.pause_seconds_max", "-1e-9", "pause_seconds_max" },
                { "agent", "[]", "agent" },
                { "agent.samples_dropped_total", "-1", "samples_dropped_total" },
                { "agent.reconnects_total", "1.0", "reconnects_total" },
                { "agent.sample_seconds", "-0.00004", "sample_seconds" },
                { "agent.sample_seconds", "\"fast\"", "sample_seconds" },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char what[128];
                char *json = mutate_text(sample_json, cases[i].path, cases[i].value);

                snprintf(what, sizeof what, "%s=%s", cases[i].path, cases[i].value ? cases[i].value : "(absent)");
                check_sample_rejected(json, false, cases[i].member, what);
                free(json);
        }
        /* More generations than the protocol allows: over a bound, not merely wrong. */
        {
                char *json = mutate_text(sample_json, "gc.generations", "[{}, {}, {}, {}, {}]");
                check_sample_over_bound(json, false, "generations", "gc.generations=[{}, {}, {}, {}, {}]");
                free(json);
        }
}
END_TEST

/* Issue 8: glibc's malloc figures and gc.garbage entries with finalizers, both optional. */
START_TEST(test_sample_malloc) {
        static const BadCase bad[] = {
                { "malloc", "1", "malloc" },
                { "malloc", "[]", "malloc" },
                { "malloc.in_use_bytes", "-1", "in_use_bytes" },
                { "malloc.in_use_bytes", "1125899906842625", "in_use_bytes" },
                { "malloc.free_bytes", "\"x\"", "free_bytes" },
                { "malloc.arena_bytes", "1.5", "arena_bytes" },
                { "malloc.mmapped_bytes", "-5", "mmapped_bytes" },
                { "malloc.keepcost_bytes", "true", "keepcost_bytes" },
                { "malloc.read_seconds", "-1", "read_seconds" },
                { "malloc.read_seconds", "3601", "read_seconds" },
                { "gc.garbage_finalizers", "-1", "garbage_finalizers" },
                { "gc.garbage_finalizers", "\"3\"", "garbage_finalizers" },
                { "gc.finalizers_collected", "-1", "finalizers_collected" },
                { "gc.finalizers_collected", "1.5", "finalizers_collected" },
                { "gc.finalizers_collections", "\"2\"", "finalizers_collections" },
                { "gc.finalizers_skipped", "-3", "finalizers_skipped" },
        };
        char error[MESSAGE_ERROR_MAX] = "";
        char *with, *json;
        HwSample s;

        /* absent: unknown */
        ck_assert_int_eq(decode_sample(sample_json, false, &s, error, sizeof error), 0);
        ck_assert(!s.has_malloc);
        ck_assert_int_eq(s.gc_garbage_finalizers, -1);
        ck_assert_int_eq(s.gc_finalizers_collected, -1);
        ck_assert_int_eq(s.gc_finalizers_collections, -1);
        ck_assert_int_eq(s.gc_finalizers_skipped, -1);

        with = mutate_text(sample_json, "malloc",
                           "{\"arena_bytes\": 2097152, \"in_use_bytes\": 1500000, \"free_bytes\": 597152,"
                           " \"mmapped_bytes\": 4194304, \"keepcost_bytes\": 131072, \"read_seconds\": 0.00002}");
        json = mutate_text(with, "gc.garbage_finalizers", "5");
        ck_assert_int_eq(decode_sample(json, false, &s, error, sizeof error), 0);
        ck_assert(s.has_malloc);
        ck_assert_int_eq(s.malloc_arena_bytes, 2097152);
        ck_assert_int_eq(s.malloc_in_use_bytes, 1500000);
        ck_assert_int_eq(s.malloc_free_bytes, 597152);
        ck_assert_int_eq(s.malloc_mmapped_bytes, 4194304);
        ck_assert_int_eq(s.malloc_keepcost_bytes, 131072);
        ck_assert_double_eq(s.malloc_read_seconds, 0.00002);
        ck_assert_int_eq(s.gc_garbage_finalizers, 5);
        free(json);
        {
                char *a = mutate_text(sample_json, "gc.finalizers_collected", "120");
                char *b = mutate_text(a, "gc.finalizers_collections", "30");

                json = mutate_text(b, "gc.finalizers_skipped", "2");
                ck_assert_int_eq(decode_sample(json, false, &s, error, sizeof error), 0);
                ck_assert_int_eq(s.gc_finalizers_collected, 120);
                ck_assert_int_eq(s.gc_finalizers_collections, 30);
                ck_assert_int_eq(s.gc_finalizers_skipped, 2);
                free(json);
                free(b);
                free(a);
        }

        /* an empty object: present, every figure unknown */
        json = mutate_text(sample_json, "malloc", "{}");
        ck_assert_int_eq(decode_sample(json, false, &s, error, sizeof error), 0);
        ck_assert(s.has_malloc);
        ck_assert_int_eq(s.malloc_in_use_bytes, -1);
        ck_assert_int_eq(s.malloc_free_bytes, -1);
        free(json);

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                char what[128];

                json = mutate_text(with, bad[i].path, bad[i].value);
                snprintf(what, sizeof what, "%s=%s", bad[i].path, bad[i].value);
                check_sample_rejected(json, false, bad[i].member, what);
                free(json);
        }
        free(with);
}
END_TEST

START_TEST(test_sample_boundaries_accepted) {
        static const BadCase good[] = {
                { "seq", "0", NULL },
                { "seq", "9223372036854775807", NULL },
                { "time", "1", NULL },
                { "time", "4102444800", NULL },
                { "process.rss_bytes", "0", NULL },
                { "process.rss_bytes", "1125899906842624", NULL }, /* 2^50 */
                { "process.threads", "4194304", NULL },
                { "process.vm_bytes", "null", NULL },
                { "python.allocated_blocks", "9007199254740992", NULL }, /* 2^53 */
                /* Since CPython 3.12 the generation-0 count is allocations minus deallocations
                 * and can be negative. */
                { "gc.generations.0.count", "-5", NULL },
                { "gc.generations.0.count", "-2147483648", NULL },
                { "gc.generations", "[]", NULL },
                { "gc.generations", "null", NULL },
                { "gc.generations", "[{}, {}, {}, {}]", NULL }, /* 4 generations is the most */
                { "gc.generations.0.pause_seconds_total", "86400", NULL },
                { "gc.generations.0.pause_seconds_max", "0", NULL },
                { "agent", "{}", NULL },
        };

        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                char what[128];
                char *json = mutate_text(sample_json, good[i].path, good[i].value);

                snprintf(what, sizeof what, "%s=%s", good[i].path, good[i].value);
                check_sample_accepted(json, false, NULL, what);
                free(json);
        }
}
END_TEST

START_TEST(test_sample_negative_count_and_four_generations) {
        HwSample s;
        char *json = mutate_text(sample_json, "gc.generations",
                                 "[{\"count\": -7}, {\"count\": 1}, {\"count\": 2}, {\"count\": 3, \"pauses\": 9}]");

        check_sample_accepted(json, false, &s, "four generations");
        ck_assert_uint_eq(s.gc_generations, 4);
        ck_assert_int_eq(s.gc[0].count, -7);
        ck_assert_int_eq(s.gc[3].count, 3);
        ck_assert_int_eq(s.gc[3].pauses, 9);
        free(json);
}
END_TEST

START_TEST(test_sample_string_bounds) {
        char *at = malloc(HW_CGROUP_PATH_MAX + 2), *ok, *bad;
        HwSample s;

        ck_assert_ptr_nonnull(at);
        at[0] = '/';
        memset(at + 1, 'c', HW_CGROUP_PATH_MAX - 1);
        at[HW_CGROUP_PATH_MAX] = '\0';
        ok = mutate(sample_json, "cgroup.path", json_string(at));
        check_sample_accepted(ok, false, &s, "cgroup path at bound");
        ck_assert_str_eq(s.cgroup_path, at);
        strcat(at, "c");
        bad = mutate(sample_json, "cgroup.path", json_string(at));
        check_sample_over_bound(bad, false, "path", "cgroup path over bound");
        free(ok);
        free(bad);
        free(at);
}
END_TEST

START_TEST(test_goodbye) {
        HwSample s;
        char *json;

        json = mutate_text(sample_json, "reason", "\"exit\"");
        check_sample_accepted(json, true, &s, "goodbye exit");
        ck_assert(s.is_goodbye);
        ck_assert_str_eq(s.goodbye_reason, "exit");
        ck_assert_int_eq(s.rss_bytes, 31457280); /* the same members as a sample */
        ck_assert_uint_eq(s.gc_generations, 3);
        free(json);

        json = mutate_text(sample_json, "reason", "\"stop\"");
        check_sample_accepted(json, true, &s, "goodbye stop");
        ck_assert_str_eq(s.goodbye_reason, "stop");
        free(json);

        /* GOODBYE needs a reason. */
        check_sample_rejected(sample_json, true, "reason", "goodbye without reason");
        json = mutate_text(sample_json, "reason", "null");
        check_sample_rejected(json, true, "reason", "goodbye reason null");
        free(json);
        json = mutate_text(sample_json, "reason", "1");
        check_sample_rejected(json, true, "reason", "goodbye reason number");
        free(json);
        json = mutate_text(sample_json, "reason", "\"exit\\nstop\"");
        check_sample_rejected(json, true, "reason", "goodbye reason control char");
        free(json);
        json = mutate_text(sample_json, "reason", "\"0123456789abcdef\""); /* 16 bytes: over */
        check_sample_over_bound(json, true, "reason", "goodbye reason too long");
        free(json);
        json = mutate_text(sample_json, "reason", "\"0123456789abcde\""); /* 15 bytes: fits */
        check_sample_accepted(json, true, &s, "goodbye reason 15 bytes");
        ck_assert_str_eq(s.goodbye_reason, "0123456789abcde");
        free(json);

        /* A GOODBYE is validated like a SAMPLE first. */
        json = mutate_text(sample_json, "reason", "\"exit\"");
        {
                char *bad = mutate_text(json, "process.rss_bytes", "-1");
                check_sample_rejected(bad, true, "rss_bytes", "goodbye with bad sample member");
                free(bad);
        }
        free(json);
}
END_TEST

/* ---- WELCOME ----------------------------------------------------------------------------- */

static void check_welcome(const char *id) {
        uint8_t *frame = NULL;
        size_t len = 0;
        struct hw_frame_header hdr;
        json_error_t jerr;
        json_t *o;

        ck_assert_int_eq(message_encode_welcome(id, &frame, &len), 0);
        ck_assert_ptr_nonnull(frame);
        ck_assert_uint_gt(len, HW_FRAME_HEADER_SIZE);
        ck_assert_int_eq(hw_frame_header_unpack(frame, &hdr), HW_HEADER_OK);
        ck_assert_uint_eq(hdr.version, HW_PROTOCOL_VERSION);
        ck_assert_uint_eq(hdr.type, HW_FRAME_WELCOME);
        ck_assert_uint_eq(hdr.flags, 0);
        ck_assert_uint_eq(hdr.length, len - HW_FRAME_HEADER_SIZE);

        o = json_loadb((const char *) frame + HW_FRAME_HEADER_SIZE, hdr.length, JSON_REJECT_DUPLICATES, &jerr);
        ck_assert_msg(o, "WELCOME payload: %s", jerr.text);
        ck_assert(json_is_object(o));
        ck_assert_uint_eq(json_object_size(o), 2);
        ck_assert(json_is_integer(json_object_get(o, "protocol")));
        ck_assert_int_eq(json_integer_value(json_object_get(o, "protocol")), HW_PROTOCOL_VERSION);
        ck_assert(json_is_string(json_object_get(o, "id")));
        ck_assert_str_eq(json_string_value(json_object_get(o, "id")), id);
        json_decref(o);
        free(frame);
}

START_TEST(test_welcome_round_trip) {
        check_welcome("4242-1234567");
        check_welcome("1-0");
        check_welcome("quote\"back\\slash/\t\xc3\xa9"); /* escaping survives the round trip */
}
END_TEST

static Suite *message_suite(void) {
        Suite *s = suite_create("message");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_hello_full);
        tcase_add_test(tc, test_hello_minimal_defaults);
        tcase_add_test(tc, test_hello_unknown_members_ignored);
        tcase_add_test(tc, test_hello_bad_members);
        tcase_add_test(tc, test_hello_boundaries_accepted);
        tcase_add_test(tc, test_hello_string_bounds);
        tcase_add_test(tc, test_hello_argv_bounds);
        tcase_add_test(tc, test_hello_features_bounds);
        tcase_add_test(tc, test_hello_embedded_nul);
        tcase_add_test(tc, test_hello_error_buffer);
        tcase_add_test(tc, test_hello_respects_length);
        tcase_add_test(tc, test_not_json_object);
        tcase_add_test(tc, test_deep_nesting);
        tcase_add_test(tc, test_duplicate_keys);
        tcase_add_test(tc, test_sample_full);
        tcase_add_test(tc, test_sample_doc_example_placeholders);
        tcase_add_test(tc, test_sample_minimal_defaults);
        tcase_add_test(tc, test_sample_unknown_members_ignored);
        tcase_add_test(tc, test_sample_cgroup_memory_max);
        tcase_add_test(tc, test_sample_bad_members);
        tcase_add_test(tc, test_sample_malloc);
        tcase_add_test(tc, test_sample_boundaries_accepted);
        tcase_add_test(tc, test_sample_negative_count_and_four_generations);
        tcase_add_test(tc, test_sample_string_bounds);
        tcase_add_test(tc, test_goodbye);
        tcase_add_test(tc, test_welcome_round_trip);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(message_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
