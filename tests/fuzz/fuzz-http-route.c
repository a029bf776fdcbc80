/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for HTTP routing and query parameters, without sockets: the input is
 * "METHOD\nPATH\nQUERY" (QUERY as in a URL: k=v&k=v, percent-encoded). The method and path go
 * to router_match() as libmicrohttpd would hand them over (decoded), the parameters to
 * api_handle() through the same lookup interface http-server.c gives it, against a Registry
 * holding a live and an exited process with history and a heap profile, so the series, heap,
 * leaks, census and metrics handlers run on real data. Every answer must be a known status with a
 * body.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "heap.h"
#include "log.h"
#include "message.h"
#include "registry.h"
#include "router.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 1764061234.0
#define MAX_PARAMS 16

static Registry *reg;

typedef struct Params {
        size_t n;
        char *key[MAX_PARAMS];
        char *value[MAX_PARAMS]; /* NULL: given without '=' (MHD reports no value) */
} Params;

static const char *lookup(void *userdata, const char *key) {
        const Params *p = userdata;

        /* MHD returns the first of repeated keys */
        for (size_t i = 0; i < p->n; i++)
                if (strcmp(p->key[i], key) == 0)
                        return p->value[i];
        return NULL;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* In place, as MHD does for keys and values ('+' is a space; a bad escape stays as is). */
static void unescape(char *s) {
        char *out = s;

        for (; *s; s++) {
                if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                        *out++ = (char) (hexval(s[1]) * 16 + hexval(s[2]));
                        s += 2;
                } else
                        *out++ = *s == '+' ? ' ' : *s;
        }
        *out = '\0';
}

static void parse_query(char *q, Params *p) {
        for (char *tok = strtok(q, "&"); tok && p->n < MAX_PARAMS; tok = strtok(NULL, "&")) {
                char *eq = strchr(tok, '=');
                if (eq)
                        *eq++ = '\0';
                unescape(tok);
                if (eq)
                        unescape(eq);
                p->key[p->n] = tok;
                p->value[p->n] = eq;
                p->n++;
        }
}

/* Seed the registry through the protocol decoder, as the agent socket would. */
static Process *seed_process(pid_t pid, int64_t ticks, int samples, bool exit) {
        char hello_json[256], sample_json[1024], error[MESSAGE_ERROR_MAX], id[PROCESS_ID_MAX];
        HwHello hello;
        Process *p = NULL;

        snprintf(hello_json, sizeof hello_json,
                 "{\"protocol\": 1, \"pid\": %d, \"ppid\": 1, \"start_time_ticks\": %lld, \"start_time\": %.1f,"
                 " \"service\": \"svc%d\", \"interval\": 1.0}",
                 (int) pid, (long long) ticks, T0, (int) pid);
        if (message_decode_hello((const uint8_t *) hello_json, strlen(hello_json), &hello, error, sizeof error) < 0)
                abort();
        process_id_format(id, pid, ticks);
        if (registry_attach(reg, id, pid, 1000, 1000, 1, ticks, T0, &hello, T0, &p) < 0)
                abort();
        hw_hello_done(&hello);

        for (int i = 0; i < samples; i++) {
                HwSample s;
                HwHeapReport *heap = NULL;

                snprintf(sample_json, sizeof sample_json,
                         "{\"seq\": %d, \"time\": %.1f, \"process\": {\"rss_bytes\": %d, \"rss_peak_bytes\": %d},"
                         " \"heap\": {\"epoch\": 7, \"sample_bytes\": 524288, \"depth\": 32,"
                         " \"live_bytes\": %d, \"live_count\": %d, \"alloc_bytes_total\": %d, \"alloc_count_total\": %d,"
                         " \"samples_total\": %d, \"samples_live\": %d,"
                         " \"sites\": [{\"stack\": 2, \"live_bytes\": %d, \"live_count\": %d,"
                         " \"alloc_bytes_total\": %d, \"alloc_count_total\": %d}],"
                         " \"stacks\": [{\"id\": 2, \"frames\": [[\"/srv/app.py\", \"leak\", 4]]}]}}",
                         i + 1, T0 + i, 30000000 + 4096 * i, 31000000 + 4096 * i, 524288 * (i + 1), i + 1,
                         524288 * (i + 1), i + 1, i + 1, i + 1, 524288 * (i + 1), i + 1, 524288 * (i + 1), i + 1);
                if (message_decode_sample_heap((const uint8_t *) sample_json, strlen(sample_json), false, &s, &heap,
                                               error, sizeof error) < 0)
                        abort();
                if (registry_add_sample(reg, p, &s) < 0)
                        abort();
                if (heap)
                        (void) process_heap_ingest(&p->heap, heap, s.time);
                hw_heap_report_free(heap);
        }
        if (exit)
                registry_detach(reg, p, EXIT_REASON_CLEAN, T0 + samples);
        return p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        RegistryLimits limits = { .max_processes = 16, .history_capacity = 256, .exited_retention = 1e9 };

        log_set_max_level(LOG_CRIT);
        reg = registry_new(&limits);
        if (!reg)
                abort();
        (void) seed_process(4242, 1234567, 120, false);
        (void) seed_process(77, 70, 30, true);
        return 0;
}

static bool status_is_known(int status) {
        static const int known[] = { 200, 202, 400, 404, 405, 409, 413, 429, 503 };

        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
                if (status == known[i])
                        return true;
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *buf, *method, *path, *query;
        Params params = { 0 };
        Route route;
        char *body = NULL;
        size_t body_size = 0;
        const char *ctype = NULL;
        int status = 0;

        /* At most what MHD would accept in a request line; more only slows the fuzzer down. */
        if (size > 8192)
                return 0;
        buf = malloc(size + 1);
        if (!buf)
                abort();
        memcpy(buf, data, size);
        buf[size] = '\0';

        method = buf;
        path = strchr(method, '\n');
        if (path)
                *path++ = '\0';
        else
                path = method + strlen(method);
        query = strchr(path, '\n');
        if (query) {
                *query++ = '\0';
                parse_query(query, &params);
        }
        unescape(path);

        if (router_match(method, path, &route) < 0)
                abort();
        /* No access policy is installed here (as with no token and a loopback peer), so a census
         * POST reaches api_census_request(): 202, or 409/429/503 when it cannot be queued. */
        if (api_handle(reg, &route, lookup, &params, T0 + 200, &status, &body, &body_size, &ctype) >= 0) {
                if (!body || body_size == 0 || !ctype || !status_is_known(status))
                        abort();
                free(body);
        }
        free(buf);
        return 0;
}
