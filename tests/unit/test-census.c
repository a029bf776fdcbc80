/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the daemon's census side: CENSUS reply validation and REQUEST encoding
 * (message.c), the per-process census state (census.c: scheduling, the on-demand rate limit,
 * stale replies, the bounded history keeping a finding's baseline, growing types, evidence),
 * and the on-demand endpoint (api-census.c).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-census.h"
#include "api.h"
#include "router.h"
#include "census.h"
#include "heapwatch/protocol.h"
#include "message.h"
#include "helper-registry.h"

static int decode(const char *json, CensusReply *ret, char *error) {
        return message_decode_census((const uint8_t *) json, strlen(json), ret, error, MESSAGE_ERROR_MAX);
}

START_TEST(test_decode_census) {
        CensusReply *r = calloc(1, sizeof *r);
        char error[MESSAGE_ERROR_MAX] = "";

        ck_assert_int_eq(decode("{\"id\": 3, \"kind\": \"census\", \"time\": 1764061234.5, \"duration_seconds\": 0.2,"
                                " \"gil_seconds\": 0.04, \"budget_seconds\": 0.05, \"slices\": 4, \"complete\": false,"
                                " \"sampled\": true, \"consistent\": true, \"fraction\": 0.5, \"objects\": 200,"
                                " \"types_total\": 2, \"future\": {}, \"types\": [{\"type\": \"app.Handler\", \"count\": 5000,"
                                " \"size_bytes\": 400000}, {\"type\": \"dict\", \"count\": 1, \"size_bytes\": 64}]}",
                                r, error),
                         0);
        ck_assert_uint_eq(r->id, 3);
        ck_assert_int_eq(r->kind, CENSUS_KIND_CENSUS);
        ck_assert(r->sampled && !r->complete);
        ck_assert_uint_eq(r->slices, 4);
        ck_assert_uint_eq(r->n_types, 2);
        ck_assert_str_eq(r->types[0].name, "app.Handler");
        ck_assert_uint_eq(r->types[0].count, 5000);
        ck_assert_uint_eq(r->types[1].size_bytes, 64);
        ck_assert_str_eq(r->error, "");

        ck_assert_int_eq(decode("{\"id\": 4, \"kind\": \"chains\", \"visited\": 10, \"search_complete\": true,"
                                " \"chains\": [{\"type\": \"app.Handler\", \"chain\": \"app.handlers -> list -> Handler\","
                                " \"root\": \"app.handlers\", \"root_kind\": \"module_global\", \"steps\": []}]}",
                                r, error),
                         0);
        ck_assert_int_eq(r->kind, CENSUS_KIND_CHAINS);
        ck_assert_uint_eq(r->n_chains, 1);
        ck_assert_str_eq(r->chains[0].chain, "app.handlers -> list -> Handler");
        ck_assert_str_eq(r->chains[0].root_kind, "module_global");

        ck_assert_int_eq(decode("{\"id\": 5, \"kind\": \"census\", \"error\": \"a garbage collection is running\"}", r,
                                error),
                         0);
        ck_assert_str_eq(r->error, "a garbage collection is running");
        free(r);
}
END_TEST

START_TEST(test_decode_census_bad) {
        static const char *const bad[] = {
                "{\"kind\": \"census\"}",
                "{\"id\": 0, \"kind\": \"census\"}",
                "{\"id\": 1, \"kind\": \"heap\"}",
                "{\"id\": 1, \"kind\": \"census\", \"fraction\": 0}",
                "{\"id\": 1, \"kind\": \"census\", \"fraction\": 1.5}",
                "{\"id\": 1, \"kind\": \"census\", \"objects\": -1}",
                "{\"id\": 1, \"kind\": \"census\", \"sampled\": 1}",
                "{\"id\": 1, \"kind\": \"census\", \"types\": {}}",
                "{\"id\": 1, \"kind\": \"census\", \"types\": [1]}",
                "{\"id\": 1, \"kind\": \"census\", \"types\": [{\"type\": \"x\", \"count\": -1, \"size_bytes\": 0}]}",
                "{\"id\": 1, \"kind\": \"census\", \"types\": [{\"type\": \"\", \"count\": 1, \"size_bytes\": 0}]}",
                "{\"id\": 1, \"kind\": \"census\", \"types\": [{\"type\": \"a\\u0001b\", \"count\": 1, \"size_bytes\": 0}]}",
                "{\"id\": 1, \"kind\": \"census\", \"types\": [{\"count\": 1, \"size_bytes\": 0}]}",
                "{\"id\": 1, \"kind\": \"chains\", \"chains\": [{\"type\": \"x\"}]}",
                "{\"id\": 1, \"kind\": \"census\", \"id\": 2}",
        };
        CensusReply *r = calloc(1, sizeof *r);
        char error[MESSAGE_ERROR_MAX];

        r->id = 777;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                error[0] = '\0';
                ck_assert_msg(decode(bad[i], r, error) < 0, "accepted: %s", bad[i]);
                ck_assert_msg(error[0], "no reason for: %s", bad[i]);
                ck_assert_uint_eq(r->id, 777); /* untouched */
        }
        /* more chains than the protocol allows: over a bound */
        ck_assert_int_eq(decode("{\"id\": 1, \"kind\": \"chains\", \"chains\": [1, 2, 3, 4]}", r, error), -E2BIG);
        ck_assert_uint_eq(r->id, 777);
        ck_assert_int_eq(decode("[]", r, error), -EBADMSG);
        ck_assert_int_eq(decode("{", r, error), -EBADMSG);

        /* more types than the protocol allows, and a name over its bound */
        {
                size_t n = 64 + HW_CENSUS_TOP_MAX * 64;
                char *json = malloc(n), *p = json;
                p += sprintf(p, "{\"id\": 1, \"kind\": \"census\", \"types\": [");
                for (unsigned i = 0; i <= HW_CENSUS_TOP_MAX; i++)
                        p += sprintf(p, "%s{\"type\": \"t%u\", \"count\": 1, \"size_bytes\": 1}", i ? "," : "", i);
                sprintf(p, "]}");
                ck_assert_int_eq(decode(json, r, error), -E2BIG);
                /* at the bound: accepted, the first CENSUS_TYPES_MAX kept */
                p = strrchr(json, '{');
                sprintf(p - 1, "]}");
                ck_assert_int_eq(decode(json, r, error), 0);
                ck_assert_uint_eq(r->n_types, CENSUS_TYPES_MAX);
                free(json);
        }
        {
                char json[600], name[HW_CENSUS_TYPE_NAME_MAX + 2];
                memset(name, 'n', sizeof name - 1);
                name[sizeof name - 1] = '\0';
                snprintf(json, sizeof json, "{\"id\": 1, \"kind\": \"census\", \"types\": [{\"type\": \"%s\", \"count\": 1, "
                         "\"size_bytes\": 1}]}", name);
                ck_assert_int_eq(decode(json, r, error), -E2BIG);
        }
        free(r);
}
END_TEST

START_TEST(test_encode_request) {
        CensusRequest req = { .id = 9, .kind = CENSUS_KIND_CHAINS, .budget_ms = 50, .top = 64, .n_types = 2,
                              .types = { "app.Handler", "dict" } };
        struct hw_frame_header h;
        uint8_t *frame;
        size_t len;
        json_t *o;

        ck_assert_int_eq(message_encode_request(&req, &frame, &len), 0);
        ck_assert_int_eq(hw_frame_header_unpack(frame, &h), HW_HEADER_OK);
        ck_assert_uint_eq(h.type, HW_FRAME_REQUEST);
        ck_assert_uint_le(h.length, HW_REQUEST_MAX_PAYLOAD);
        o = json_loadb((const char *) frame + HW_FRAME_HEADER_SIZE, h.length, 0, NULL);
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), 9);
        ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "chains");
        ck_assert_int_eq(json_integer_value(json_object_get(o, "budget_ms")), 50);
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "types"), 1)), "dict");
        json_decref(o);
        free(frame);

        req.kind = CENSUS_KIND_CENSUS;
        ck_assert_int_eq(message_encode_request(&req, &frame, &len), 0);
        o = json_loadb((const char *) frame + HW_FRAME_HEADER_SIZE, len - HW_FRAME_HEADER_SIZE, 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "census");
        ck_assert_ptr_null(json_object_get(o, "types"));
        json_decref(o);
        free(frame);
}
END_TEST

/* A census reply to the outstanding request with `handlers` Handler objects at time t. */
static void answer_census(ProcessCensus *c, double t, uint64_t handlers, uint64_t dicts) {
        CensusRequest req;
        CensusReply *r = calloc(1, sizeof *r);

        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CENSUS, 0, t, &req), 0);
        r->id = req.id;
        r->kind = CENSUS_KIND_CENSUS;
        r->time = t;
        r->complete = r->consistent = true;
        r->fraction = 1;
        r->n_types = 3;
        snprintf(r->types[0].name, sizeof r->types[0].name, "app.Handler");
        r->types[0].count = handlers;
        r->types[0].size_bytes = handlers * 48;
        snprintf(r->types[1].name, sizeof r->types[1].name, "dict");
        r->types[1].count = dicts;
        r->types[1].size_bytes = dicts * 100;
        snprintf(r->types[2].name, sizeof r->types[2].name, "function");
        r->types[2].count = 500;
        ck_assert_int_eq(process_census_ingest(c, r, t), 0);
        free(r);
}

START_TEST(test_schedule_and_rate_limit) {
        ProcessCensus *c = NULL;
        CensusRequest req;
        CensusReply *r = calloc(1, sizeof *r);
        double retry = 0;

        census_config = (CensusConfig) { .interval = 600, .budget_ms = 50, .api_min_interval = 10, .timeout = 60 };
        /* no finding: nothing due; a finding: due at once */
        ck_assert(!process_census_due(NULL, 0, 1000));
        ck_assert(process_census_due(NULL, 900, 1000));
        ck_assert_int_eq(process_census_ensure(&c), 0);
        ck_assert(!process_census_due(c, 0, 1000));
        ck_assert(process_census_due(c, 900, 1000));
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CENSUS, 900, 1000, &req), 0);
        ck_assert_uint_eq(req.id, 1);
        ck_assert_uint_eq(req.budget_ms, 50);
        /* outstanding: not due again, the API says busy */
        ck_assert(!process_census_due(c, 900, 1001));
        ck_assert_int_eq(process_census_api_allow(c, 1001, &retry), -EBUSY);
        /* a reply to another id is stale and changes nothing */
        r->id = 2;
        r->kind = CENSUS_KIND_CENSUS;
        ck_assert_int_eq(process_census_ingest(c, r, 1002), -ESTALE);
        r->id = 1;
        r->kind = CENSUS_KIND_CHAINS;
        ck_assert_int_eq(process_census_ingest(c, r, 1002), -ESTALE);
        /* unanswered: given up after the timeout */
        ck_assert(!process_census_due(c, 900, 1059));
        ck_assert(!process_census_due(c, 900, 1060)); /* timed out now, but requested since the finding */
        ck_assert_int_eq(process_census_api_allow(c, 1060, &retry), 0);
        ck_assert_int_eq(process_census_api_allow(c, 1065, &retry), -EAGAIN);
        ck_assert_double_eq_tol(retry, 5, 1e-9);
        ck_assert_int_eq(process_census_api_allow(c, 1070, &retry), 0);
        /* periodic while the finding stays open */
        ck_assert(process_census_due(c, 900, 1600));
        /* a new finding: due again at once */
        ck_assert(process_census_due(c, 1500, 1501));
        free(r);
        process_census_free(c);
}
END_TEST

START_TEST(test_growth_and_evidence) {
        ProcessCensus *c = NULL;
        CensusGrowth g[4];
        CensusRequest req;
        CensusReply *r = calloc(1, sizeof *r);
        json_t *ev, *t, *ch;

        census_config = (CensusConfig) { .interval = 600, .budget_ms = 50, .api_min_interval = 0, .timeout = 60 };
        ck_assert_int_eq(process_census_ensure(&c), 0);
        ck_assert_uint_eq(process_census_growing(c, 0, g, 4), 0);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 10, &req), -ENODATA);

        answer_census(c, 100, 1000, 300);
        ck_assert_uint_eq(process_census_growing(c, 0, g, 4), 0); /* one census: no growth yet */
        answer_census(c, 200, 4000, 303);                           /* dicts: +3 is noise */
        ck_assert_uint_eq(process_census_growing(c, 0, g, 4), 1);
        ck_assert_str_eq(g[0].type, "app.Handler");
        ck_assert_int_eq(g[0].count_growth, 3000);
        ck_assert_int_eq(g[0].size_growth_bytes, 3000 * 48);

        /* chains for the growing types */
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 201, &req), 0);
        ck_assert_uint_eq(req.n_types, 1);
        ck_assert_str_eq(req.types[0], "app.Handler");
        process_census_request_failed(c);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 201, &req), 0);
        r->id = req.id;
        r->kind = CENSUS_KIND_CHAINS;
        r->time = 201;
        r->n_chains = 1;
        snprintf(r->chains[0].type, sizeof r->chains[0].type, "app.Handler");
        snprintf(r->chains[0].chain, sizeof r->chains[0].chain, "app.handlers -> list -> Handler");
        snprintf(r->chains[0].root, sizeof r->chains[0].root, "app.handlers");
        snprintf(r->chains[0].root_kind, sizeof r->chains[0].root_kind, "module_global");
        ck_assert_int_eq(process_census_ingest(c, r, 201), 0);
        /* a later search that ran out of budget without a chain keeps the chains found */
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 202, &req), 0);
        r->id = req.id;
        r->n_chains = 0;
        r->time = 202;
        ck_assert_int_eq(process_census_ingest(c, r, 202), 0);
        r->n_chains = 1;

        ev = json_object();
        ck_assert_int_eq(process_census_evidence(c, 50, ev), 0);
        t = json_array_get(json_object_get(ev, "types"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(t, "type")), "app.Handler");
        ck_assert_int_eq(json_integer_value(json_object_get(t, "count")), 4000);
        ck_assert_int_eq(json_integer_value(json_object_get(t, "count_growth")), 3000);
        ck_assert_int_eq(json_integer_value(json_object_get(t, "size_bytes")), 4000 * 48);
        ck_assert_int_eq(json_integer_value(json_object_get(t, "size_growth_bytes")), 3000 * 48);
        ch = json_array_get(json_object_get(ev, "chains"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(ch, "chain")), "app.handlers -> list -> Handler");
        ck_assert_str_eq(json_string_value(json_object_get(ch, "root_kind")), "module_global");
        json_decref(ev);

        /* a finding that opened after the chains were taken: not its evidence (yet); the
         * baseline is the first census at or after its opening */
        ev = json_object();
        ck_assert_int_eq(process_census_evidence(c, 250, ev), 0);
        ck_assert_uint_eq(json_array_size(json_object_get(ev, "chains")), 0);
        ck_assert_uint_eq(json_array_size(json_object_get(ev, "types")), 0); /* no census since */
        json_decref(ev);
        ev = json_object();
        ck_assert_int_eq(process_census_evidence(c, 150, ev), 0);
        ck_assert_uint_eq(json_array_size(json_object_get(ev, "chains")), 1);
        ck_assert_uint_eq(json_array_size(json_object_get(ev, "types")), 0); /* one census since */
        json_decref(ev);
        {
                int types, chains;
                process_census_counts(c, 50, &types, &chains);
                ck_assert_int_eq(types, 1);
                ck_assert_int_eq(chains, 1);
                process_census_counts(c, 150, &types, &chains);
                ck_assert_int_eq(types, 0); /* one census since: nothing to compare */
                ck_assert_int_eq(chains, 1);
                process_census_counts(c, 250, &types, &chains);
                ck_assert_int_eq(types, -1);
                ck_assert_int_eq(chains, -1);
                process_census_counts(NULL, 0, &types, &chains);
                ck_assert_int_eq(types, -1);
                ck_assert_int_eq(chains, -1);
        }
        ev = json_object();
        ck_assert_int_eq(process_census_evidence(NULL, 0, ev), 0);
        ck_assert_uint_eq(json_array_size(json_object_get(ev, "types")), 0);
        json_decref(ev);
        free(r);
        process_census_free(c);
}
END_TEST

static void set_chain(CensusChain *ch, const char *type, const char *root, const char *text, int64_t holds) {
        *ch = (CensusChain) { .holds = holds };
        snprintf(ch->type, sizeof ch->type, "%s", type);
        snprintf(ch->root, sizeof ch->root, "%s", root);
        snprintf(ch->chain, sizeof ch->chain, "%s", text);
        snprintf(ch->root_kind, sizeof ch->root_kind, "%s", root[0] ? "module_global" : "unreachable");
}

/* The chains and holders in a finding's evidence, one "type|chain|holds|holds_growth" line
 * each; holds_growth is "-" when absent (a chain to a sample instance), "null" when unknown. */
static void evidence_lines(ProcessCensus *c, double since, char *buf, size_t size) {
        json_t *ev = json_object(), *ch;
        size_t i, len = 0;

        buf[0] = '\0';
        ck_assert_int_eq(process_census_evidence(c, since, ev), 0);
        json_array_foreach(json_object_get(ev, "chains"), i, ch) {
                json_t *g = json_object_get(ch, "holds_growth");
                char growth[32];

                if (!g)
                        snprintf(growth, sizeof growth, "-");
                else if (json_is_null(g))
                        snprintf(growth, sizeof growth, "null");
                else
                        snprintf(growth, sizeof growth, "%lld", (long long) json_integer_value(g));
                len += (size_t) snprintf(buf + len, size - len, "%s|%s|%lld|%s\n",
                                         json_string_value(json_object_get(ch, "type")),
                                         json_string_value(json_object_get(ch, "chain")),
                                         (long long) json_integer_value(json_object_get(ch, "holds")), growth);
                ck_assert_uint_lt(len, size);
        }
        json_decref(ev);
}

/* Take the chains reply r at time t; then the evidence must be `want` (evidence_lines()) and the
 * count of chains for the classification want_chains. */
static void ingest_expect(ProcessCensus *c, CensusReply *r, double t, const char *want, int want_chains) {
        char lines[2048];
        int types, chains;

        ck_assert_int_eq(process_census_ingest(c, r, t), 0);
        evidence_lines(c, 50, lines, sizeof lines);
        ck_assert_str_eq(lines, want);
        process_census_counts(c, 50, &types, &chains);
        ck_assert_int_eq(chains, want_chains);
}

START_TEST(test_chain_types_with_holders) {
        ProcessCensus *c = NULL;
        CensusRequest req;
        uint8_t *frame;
        size_t len;
        json_t *o;

        census_config = (CensusConfig) { .interval = 600, .budget_ms = 50, .api_min_interval = 0, .timeout = 60 };
        ck_assert_int_eq(process_census_ensure(&c), 0);
        /* dicts grow most, Handler less: chains and holders are asked for both, largest growth
         * first */
        answer_census(c, 100, 100, 1000);
        answer_census(c, 200, 200, 5000);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 201, &req), 0);
        ck_assert_uint_eq(req.n_types, 2);
        ck_assert_str_eq(req.types[0], "dict");
        ck_assert_str_eq(req.types[1], "app.Handler");
        ck_assert(req.holders);
        ck_assert_int_eq(message_encode_request(&req, &frame, &len), 0);
        o = json_loadb((const char *) frame + HW_FRAME_HEADER_SIZE, len - HW_FRAME_HEADER_SIZE, 0, NULL);
        ck_assert(json_is_true(json_object_get(o, "holders")));
        json_decref(o);
        free(frame);
        process_census_request_failed(c);
        /* only builtin types grow: still asked for (their holders) */
        answer_census(c, 300, 200, 9000);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 200, 301, &req), 0);
        ck_assert_uint_eq(req.n_types, 1);
        ck_assert_str_eq(req.types[0], "dict");
        process_census_request_failed(c);
        /* nothing grows (a dict of strings: nothing the collector tracks): an agent that says
         * it takes a request without types is asked for the largest containers, an older one
         * nothing (it would take the request for a protocol error) */
        process_census_set_holders_only(c, true);
        answer_census(c, 400, 200, 9000);
        /* one census since the baseline (t = 400): nothing known to grow or not yet */
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 400, 401, &req), -ENODATA);
        answer_census(c, 500, 200, 9000);
        process_census_set_holders_only(c, false);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 400, 501, &req), -ENODATA);
        process_census_set_holders_only(c, true);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 400, 501, &req), 0);
        ck_assert_uint_eq(req.n_types, 0);
        ck_assert(req.holders);
        ck_assert_int_eq(message_encode_request(&req, &frame, &len), 0);
        o = json_loadb((const char *) frame + HW_FRAME_HEADER_SIZE, len - HW_FRAME_HEADER_SIZE, 0, NULL);
        ck_assert(json_is_true(json_object_get(o, "holders")));
        ck_assert(json_is_array(json_object_get(o, "types")) && json_array_size(json_object_get(o, "types")) == 0);
        json_decref(o);
        free(frame);
        process_census_free(c);
}
END_TEST

START_TEST(test_holders) {
        ProcessCensus *c = NULL;
        CensusRequest req;
        CensusReply *r = calloc(1, sizeof *r);
        char lines[2048];
        int types, chains;
        json_t *j, *h;

        census_config = (CensusConfig) { .interval = 600, .budget_ms = 50, .api_min_interval = 0, .timeout = 60 };
        ck_assert_int_eq(process_census_ensure(&c), 0);
        answer_census(c, 100, 100, 1000);
        answer_census(c, 200, 100, 5000);

        /* an agent without holders: its chain to a builtin type is dropped, to a class kept */
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 201, &req), 0);
        *r = (CensusReply) { .id = req.id, .kind = CENSUS_KIND_CHAINS, .time = 201, .n_chains = 2 };
        set_chain(&r->chains[0], "dict", "sys.modules", "sys.modules -> dict", 0);
        set_chain(&r->chains[1], "app.Handler", "app.handlers", "app.handlers -> list -> Handler", 0);
        ck_assert_int_eq(process_census_ingest(c, r, 201), 0);
        evidence_lines(c, 50, lines, sizeof lines);
        ck_assert_str_eq(lines, "app.Handler|app.handlers -> list -> Handler|0|-\n");

        /* holders, named once: their growth is not known yet, and they are not yet counted as
         * chains that reach the growing objects; one no root reaches is not evidence, nor one
         * holding under half of the type's growth (4000 dicts) */
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 202, &req), 0);
        *r = (CensusReply) { .id = req.id, .kind = CENSUS_KIND_CHAINS, .time = 202, .has_holders = true,
                             .holders_complete = true, .n_holders = 6 };
        set_chain(&r->holders[0], "dict", "__main__.STATE", "__main__.STATE -> list", 25000);
        set_chain(&r->holders[1], "dict", "__main__.AUDIT", "__main__.AUDIT -> list", 3000);
        set_chain(&r->holders[2], "dict", "", "? -> list", 20);
        set_chain(&r->holders[3], "dict", "re._parser.CATEGORIES", "re._parser.CATEGORIES -> dict", 1999);
        /* the largest containers: one of them is AUDIT again, one holds what no census counts */
        set_chain(&r->holders[4], HW_HOLDERS_ANY, "__main__.AUDIT", "__main__.AUDIT -> list", 3000);
        set_chain(&r->holders[5], HW_HOLDERS_ANY, "__main__.CACHE", "__main__.CACHE -> dict", 5000);
        ingest_expect(c, r, 202, "dict|__main__.STATE -> list|25000|null\ndict|__main__.AUDIT -> list|3000|null\n", 0);

        /* a census later, the same holders named again: AUDIT grew by all of the dicts' growth,
         * STATE not at all (not evidence); the census view keeps all of them */
        answer_census(c, 300, 100, 9000);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 301, &req), 0);
        r->id = req.id;
        r->time = 301;
        r->holders[0].holds = 25000;
        r->holders[1].holds = 7000;
        r->holders[4].holds = 7000;
        r->holders[5].holds = 6000;
        ck_assert_int_eq(process_census_ingest(c, r, 301), 0);
        evidence_lines(c, 50, lines, sizeof lines);
        ck_assert_str_eq(lines, "dict|__main__.AUDIT -> list|7000|4000\n*|__main__.CACHE -> dict|6000|1000\n");
        process_census_counts(c, 50, &types, &chains);
        ck_assert_int_eq(chains, 2); /* AUDIT (a dict holder, and a large container: once), CACHE */
        j = json_object();
        ck_assert_int_eq(process_census_evidence(c, 50, j), 0);
        h = json_array_get(json_object_get(j, "chains"), 0);
        ck_assert_double_eq_tol(json_real_value(json_object_get(h, "share_of_growth")), 1.0, 1e-9);
        ck_assert_double_eq_tol(json_real_value(json_object_get(h, "holds_since")), 202, 1e-9);
        ck_assert_str_eq(json_string_value(json_object_get(h, "root_kind")), "module_global");
        json_decref(j);
        j = process_census_json(c, "1-1", 0, 400);
        ck_assert_uint_eq(json_array_size(json_object_get(j, "chains")), 6);
        json_decref(j);

        /* a holder that is no longer named starts over when it is named again */
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 302, &req), 0);
        r->id = req.id;
        r->time = 302;
        r->n_holders = 1;
        ck_assert_int_eq(process_census_ingest(c, r, 302), 0);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 303, &req), 0);
        r->id = req.id;
        r->time = 303;
        r->n_holders = 2;
        r->holders[1].holds = 8000;
        ck_assert_int_eq(process_census_ingest(c, r, 303), 0);
        evidence_lines(c, 50, lines, sizeof lines);
        ck_assert_str_eq(lines, "dict|__main__.AUDIT -> list|8000|null\n");

        /* the same container among the largest, its growth known: shown once, with it */
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 304, &req), 0);
        r->id = req.id;
        r->time = 304;
        r->n_holders = 1;
        set_chain(&r->holders[0], HW_HOLDERS_ANY, "__main__.AUDIT", "__main__.AUDIT -> list", 8000);
        ck_assert_int_eq(process_census_ingest(c, r, 304), 0);
        ck_assert_int_eq(process_census_next_request(c, CENSUS_KIND_CHAINS, 0, 305, &req), 0);
        r->id = req.id;
        r->time = 305;
        r->n_holders = 2;
        set_chain(&r->holders[0], "tuple", "__main__.AUDIT", "__main__.AUDIT -> list", 9000);
        set_chain(&r->holders[1], HW_HOLDERS_ANY, "__main__.AUDIT", "__main__.AUDIT -> list", 9000);
        ingest_expect(c, r, 305, "*|__main__.AUDIT -> list|9000|1000\n", 1);
        free(r);
        process_census_free(c);
}
END_TEST

START_TEST(test_decode_holders) {
        static const char *const bad[] = {
                "{\"id\": 1, \"kind\": \"chains\", \"holders\": {}}",
                "{\"id\": 1, \"kind\": \"chains\", \"holders\": [{\"type\": \"dict\", \"chain\": \"a -> list\"}]}",
                "{\"id\": 1, \"kind\": \"chains\", \"holders\": [{\"type\": \"dict\", \"chain\": \"a -> list\", \"holds\": 0}]}",
                "{\"id\": 1, \"kind\": \"chains\", \"holders\": [{\"type\": \"dict\", \"chain\": \"a -> list\", \"holds\": \"9\"}]}",
                "{\"id\": 1, \"kind\": \"chains\", \"holders\": [{\"holds\": 9}]}",
                "{\"id\": 1, \"kind\": \"chains\", \"holders_complete\": 1}",
                "{\"id\": 1, \"kind\": \"chains\", \"holders\": [1,2,3,4,5,6,7,8,9,10,11,12,13]}",
        };
        CensusReply *r = calloc(1, sizeof *r);
        char error[MESSAGE_ERROR_MAX];

        ck_assert_int_eq(decode("{\"id\": 4, \"kind\": \"chains\", \"visited\": 10, \"search_complete\": true,"
                                " \"chains\": [], \"holders_complete\": true, \"holders_seen\": 5000,"
                                " \"holders\": [{\"type\": \"dict\", \"chain\": \"app.AUDIT -> list\", \"holds\": 7000,"
                                " \"root\": \"app.AUDIT\", \"root_kind\": \"module_global\", \"steps\": []}]}",
                                r, error),
                         0);
        ck_assert(r->has_holders && r->holders_complete);
        ck_assert_uint_eq(r->n_holders, 1);
        ck_assert_int_eq(r->holders[0].holds, 7000);
        ck_assert_str_eq(r->holders[0].root, "app.AUDIT");
        ck_assert_int_eq(decode("{\"id\": 4, \"kind\": \"chains\", \"chains\": []}", r, error), 0);
        ck_assert(!r->has_holders);
        ck_assert_uint_eq(r->n_holders, 0);
        r->id = 777;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                error[0] = '\0';
                ck_assert_msg(decode(bad[i], r, error) < 0, "accepted: %s", bad[i]);
                ck_assert_msg(error[0], "no reason for: %s", bad[i]);
                ck_assert_uint_eq(r->id, 777);
        }
        free(r);
}
END_TEST

START_TEST(test_history_keeps_the_baseline) {
        ProcessCensus *c = NULL;
        CensusGrowth g[2];
        json_t *j;

        census_config = (CensusConfig) { .interval = 600, .budget_ms = 50, .api_min_interval = 0, .timeout = 60 };
        ck_assert_int_eq(process_census_ensure(&c), 0);
        /* a finding opened at 150: the census at 200 is its baseline */
        ck_assert(process_census_due(c, 150, 160));
        answer_census(c, 100, 100, 10);
        answer_census(c, 200, 1000, 10);
        for (int i = 0; i < 3 * CENSUS_HISTORY_MAX; i++)
                answer_census(c, 300 + i, 2000 + i, 10);
        j = process_census_json(c, "1-1", 150, 400);
        ck_assert_uint_eq(json_array_size(json_object_get(j, "censuses")), CENSUS_HISTORY_MAX);
        ck_assert_double_eq_tol(json_real_value(json_object_get(j, "baseline_time")), 200, 1e-9);
        json_decref(j);
        ck_assert_uint_eq(process_census_growing(c, 150, g, 2), 1);
        ck_assert_int_eq(g[0].count_growth, 2000 + 3 * CENSUS_HISTORY_MAX - 1 - 1000);
        /* out-of-order agent clocks: the history stays ordered */
        answer_census(c, 5, 9000, 10);
        j = process_census_json(c, "1-1", 150, 400);
        ck_assert(json_real_value(json_object_get(json_object_get(j, "latest"), "time")) > 300);
        json_decref(j);
        /* a process never censused */
        j = process_census_json(NULL, "1-1", 0, 400);
        ck_assert(json_is_null(json_object_get(j, "latest")));
        ck_assert_uint_eq(json_array_size(json_object_get(j, "censuses")), 0);
        json_decref(j);
        process_census_free(c);
}
END_TEST

START_TEST(test_api) {
        RegistryLimits limits = { .max_processes = 4, .history_capacity = 16, .exited_retention = 600 };
        Registry *reg = registry_new(&limits);
        HwHello h = { .protocol = 1, .pid = 42, .interval = 1.0 };
        Process *p;
        json_t *j;

        census_config = (CensusConfig) { .interval = 600, .budget_ms = 50, .api_min_interval = 10, .timeout = 60 };
        ck_assert_int_eq(registry_attach(reg, "42-1", 42, 1000, 1000, 1, 1, 900, &h, 950, &p), 0);
        /* never censused */
        j = helper_api_json(reg, "GET", "/api/v1/processes/42-1/census", NULL, 1000, 200);
        ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "42-1");
        ck_assert_uint_eq(json_array_size(json_object_get(j, "censuses")), 0);
        json_decref(j);
        json_decref(helper_api_json(reg, "GET", "/api/v1/processes/9-9/census", NULL, 1000, 404));
        json_decref(helper_api_json(reg, "POST", "/api/v1/processes/9-9/census", NULL, 1000, 404));
        /* live in the registry but no agent connection to ask */
        j = helper_api_json(reg, "POST", "/api/v1/processes/42-1/census", NULL, 1000, 409);
        ck_assert_ptr_nonnull(json_object_get(j, "error"));
        json_decref(j);
        /* with history: growth shows */
        ck_assert_int_eq(process_census_ensure(&p->census), 0);
        answer_census(p->census, 100, 10, 1);
        answer_census(p->census, 200, 110, 1);
        j = helper_api_json(reg, "GET", "/api/v1/processes/42-1/census", NULL, 1000, 200);
        ck_assert_uint_eq(json_array_size(json_object_get(j, "censuses")), 2);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "growing"), 0), "type")),
                         "app.Handler");
        ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(j, "latest"), "types")), 3);
        json_decref(j);
        registry_free(reg);
}
END_TEST

static Suite *census_suite(void) {
        Suite *s = suite_create("census");
        TCase *tc = tcase_create("census");

        tcase_add_test(tc, test_decode_census);
        tcase_add_test(tc, test_decode_census_bad);
        tcase_add_test(tc, test_encode_request);
        tcase_add_test(tc, test_schedule_and_rate_limit);
        tcase_add_test(tc, test_growth_and_evidence);
        tcase_add_test(tc, test_history_keeps_the_baseline);
        tcase_add_test(tc, test_chain_types_with_holders);
        tcase_add_test(tc, test_holders);
        tcase_add_test(tc, test_decode_holders);
        tcase_add_test(tc, test_api);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(census_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
