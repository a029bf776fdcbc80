/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for agent/census.c: REQUEST decoding and its bounds, the per-type counting table
 * (aggregation, overflow, top N), referrer chain text, and the CENSUS reply's JSON. And the
 * transport's side: REQUEST frames read from the daemon, queued (bounded), dropped with the
 * connection. And agent/pages.c, where the census's and chain search's tables come from.
 */
#include "agent-util.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "census.h"
#include "gilshare.h"
#include "heapwatch/protocol.h"
#include "pages.h"
#include "transport.h"

static int decode(const char *json, struct hw_request *ret) {
        return hw_request_decode((const uint8_t *) json, strlen(json), ret);
}

START_TEST(test_request_decode) {
        struct hw_request r;

        ck_assert_int_eq(decode("{\"id\": 7, \"kind\": \"census\"}", &r), 0);
        ck_assert_uint_eq(r.id, 7);
        ck_assert_int_eq(r.kind, HW_REQUEST_CENSUS);
        ck_assert_uint_eq(r.budget_ms, HW_CENSUS_BUDGET_MS_DEFAULT);
        ck_assert_uint_eq(r.top, HW_CENSUS_TOP_DEFAULT);
        ck_assert_uint_eq(r.slices, HW_CENSUS_SLICES_DEFAULT);

        ck_assert_int_eq(decode("{\"id\": 8, \"kind\": \"census\", \"budget_ms\": 5, \"top\": 3, \"slices\": 2, "
                                "\"future\": [1]}",
                                &r),
                         0);
        ck_assert_uint_eq(r.budget_ms, 5);
        ck_assert_uint_eq(r.top, 3);
        ck_assert_uint_eq(r.slices, 2);

        ck_assert_int_eq(decode("{\"id\": 9, \"kind\": \"chains\", \"types\": [\"app.Handler\", \"dict\"]}", &r), 0);
        ck_assert_int_eq(r.kind, HW_REQUEST_CHAINS);
        ck_assert_uint_eq(r.n_types, 2);
        ck_assert_str_eq(r.types[0], "app.Handler");
        ck_assert_str_eq(r.types[1], "dict");
        ck_assert(!r.holders);
        ck_assert_int_eq(decode("{\"id\": 9, \"kind\": \"chains\", \"types\": [\"dict\"], \"holders\": true}", &r), 0);
        ck_assert(r.holders);
        ck_assert_int_eq(decode("{\"id\": 9, \"kind\": \"chains\", \"types\": [\"dict\"], \"holders\": false}", &r), 0);
        ck_assert(!r.holders);
        /* no type grows (what grows is nothing the collector tracks): the largest containers */
        ck_assert_int_eq(decode("{\"id\": 9, \"kind\": \"chains\", \"holders\": true}", &r), 0);
        ck_assert(r.holders);
        ck_assert_uint_eq(r.n_types, 0);
        ck_assert_int_eq(decode("{\"id\": 9, \"kind\": \"chains\", \"types\": [], \"holders\": true}", &r), 0);
        ck_assert_uint_eq(r.n_types, 0);

        /* a kind of a later protocol revision: answered with an error, not a disconnection */
        ck_assert_int_eq(decode("{\"id\": 10, \"kind\": \"profile\"}", &r), 0);
        ck_assert_int_eq(r.kind, HW_REQUEST_UNSUPPORTED);
        ck_assert_uint_eq(r.id, 10);
}
END_TEST

START_TEST(test_request_bad) {
        static const char *const bad[] = {
                "",
                "[]",
                "{\"kind\": \"census\"}",                             /* no id */
                "{\"id\": 0, \"kind\": \"census\"}",                  /* id 0 */
                "{\"id\": 4294967296, \"kind\": \"census\"}",         /* id over 32 bits */
                "{\"id\": 1}",                                        /* no kind */
                "{\"id\": 1, \"kind\": 3}",                           /* kind not a string */
                "{\"id\": 1, \"kind\": \"census\", \"budget_ms\": 0}",
                "{\"id\": 1, \"kind\": \"census\", \"budget_ms\": 1001}",
                "{\"id\": 1, \"kind\": \"census\", \"top\": 257}",
                "{\"id\": 1, \"kind\": \"census\", \"slices\": 101}",
                "{\"id\": 1, \"kind\": \"census\", \"budget_ms\": \"50\"}",
                "{\"id\": 1, \"kind\": \"chains\"}",                  /* chains without types or holders */
                "{\"id\": 1, \"kind\": \"chains\", \"types\": []}",
                "{\"id\": 1, \"kind\": \"chains\", \"types\": [], \"holders\": false}",
                "{\"id\": 1, \"kind\": \"chains\", \"types\": [\"a\", \"b\", \"c\", \"d\"]}",
                "{\"id\": 1, \"kind\": \"chains\", \"types\": [\"\"]}",
                "{\"id\": 1, \"kind\": \"chains\", \"types\": [\"a\\nb\"]}",
                "{\"id\": 1, \"kind\": \"chains\", \"types\": [7]}",
                "{\"id\": 1, \"kind\": \"chains\", \"types\": [\"dict\"], \"holders\": 1}",
                "{\"id\": 1, \"kind\": \"chains\", \"types\": [\"dict\"], \"holders\": \"yes\"}",
        };
        struct hw_request r = { .id = 12345 };
        char big[HW_REQUEST_MAX_PAYLOAD + 64];

        for (size_t i = 0; i < HW_ELEMENTSOF(bad); i++) {
                ck_assert_msg(decode(bad[i], &r) == -EBADMSG, "accepted: %s", bad[i]);
                ck_assert_uint_eq(r.id, 12345); /* untouched */
        }
        /* a name one byte over the bound */
        {
                char json[600], name[HW_CENSUS_TYPE_NAME_MAX + 2];
                memset(name, 'x', sizeof(name) - 1);
                name[sizeof(name) - 1] = '\0';
                snprintf(json, sizeof(json), "{\"id\": 1, \"kind\": \"chains\", \"types\": [\"%s\"]}", name);
                ck_assert_int_eq(decode(json, &r), -EBADMSG);
                name[sizeof(name) - 2] = '\0';
                snprintf(json, sizeof(json), "{\"id\": 1, \"kind\": \"chains\", \"types\": [\"%s\"]}", name);
                ck_assert_int_eq(decode(json, &r), 0);
        }
        /* a payload over the bound, even if it is valid JSON */
        memset(big, ' ', sizeof(big));
        memcpy(big, "{\"id\": 1, \"kind\": \"census\"}", 28);
        ck_assert_int_eq(hw_request_decode((const uint8_t *) big, sizeof(big), &r), -EBADMSG);
}
END_TEST

START_TEST(test_table_counts) {
        struct hw_census_table t;
        struct hw_census_entry top[4];
        static int keys[100];
        size_t n;

        ck_assert_int_eq(hw_census_table_init(&t), 0);
        /* key i gets i + 1 objects of 10 bytes each */
        for (int i = 0; i < 100; i++)
                for (int k = 0; k <= i; k++)
                        hw_census_table_add(&t, &keys[i], 10);
        ck_assert_uint_eq(t.used, 100);
        n = hw_census_table_top(&t, 4, top);
        ck_assert_uint_eq(n, 4);
        for (size_t i = 0; i < 4; i++) {
                ck_assert_ptr_eq(top[i].key, &keys[99 - i]);
                ck_assert_uint_eq(top[i].count, 100 - i);
                ck_assert_uint_eq(top[i].size_bytes, 10 * (100 - i));
        }
        /* asking for more than exist */
        {
                struct hw_census_entry all[200];
                ck_assert_uint_eq(hw_census_table_top(&t, 200, all), 100);
                ck_assert_uint_eq(all[99].count, 1);
        }
        ck_assert_uint_eq(hw_census_table_top(&t, 0, top), 0);
        hw_census_table_done(&t);
}
END_TEST

START_TEST(test_table_ties_and_overflow) {
        struct hw_census_table t;
        struct hw_census_entry top[2];
        char *keys = malloc(HW_CENSUS_TABLE_MAX + 10);

        ck_assert_ptr_nonnull(keys);
        ck_assert_int_eq(hw_census_table_init(&t), 0);
        /* equal counts: the larger size first */
        hw_census_table_add(&t, &keys[0], 8);
        hw_census_table_add(&t, &keys[1], 80);
        ck_assert_uint_eq(hw_census_table_top(&t, 2, top), 2);
        ck_assert_ptr_eq(top[0].key, &keys[1]);
        /* every key beyond the bound goes to the overflow, counted */
        for (size_t i = 2; i < HW_CENSUS_TABLE_MAX + 10; i++)
                hw_census_table_add(&t, &keys[i], 1);
        ck_assert_uint_eq(t.used, HW_CENSUS_TABLE_MAX);
        ck_assert_uint_eq(t.overflow_count, 10);
        ck_assert_uint_eq(t.overflow_size_bytes, 10);
        /* known keys still count after the table is full */
        hw_census_table_add(&t, &keys[1], 80);
        ck_assert_uint_eq(hw_census_table_top(&t, 1, top), 1);
        ck_assert_ptr_eq(top[0].key, &keys[1]);
        ck_assert_uint_eq(top[0].count, 2);
        hw_census_table_done(&t);
        free(keys);
}
END_TEST

static void chain_fill(struct hw_chain *c) {
        static const char *const types[] = { "list", "Handler", "dict", "bytes" };

        memset(c, 0, sizeof(*c));
        snprintf(c->target, sizeof(c->target), "app.Handler");
        snprintf(c->root, sizeof(c->root), "app.handlers");
        snprintf(c->root_kind, sizeof(c->root_kind), "module_global");
        for (size_t i = 0; i < HW_ELEMENTSOF(types); i++)
                snprintf(c->steps[i].type, sizeof(c->steps[i].type), "%s", types[i]);
        snprintf(c->steps[1].via, sizeof(c->steps[1].via), "[3]");
        snprintf(c->steps[3].via, sizeof(c->steps[3].via), "['payload']");
        c->n_steps = HW_ELEMENTSOF(types);
}

START_TEST(test_chain_format) {
        struct hw_chain c;
        char buf[HW_CHAIN_TEXT_MAX + 1], small[24];
        size_t n;

        chain_fill(&c);
        n = hw_chain_format(&c, buf, sizeof(buf));
        ck_assert_str_eq(buf, "app.handlers -> list -> Handler -> dict -> bytes");
        ck_assert_uint_eq(n, strlen(buf));

        /* too small: cut between steps, and says so */
        n = hw_chain_format(&c, small, sizeof(small));
        ck_assert_uint_lt(n, sizeof(small));
        ck_assert_str_eq(small, "app.handlers -> ...");

        /* a root only (the global is itself an instance) */
        c.n_steps = 1;
        hw_chain_format(&c, buf, sizeof(buf));
        ck_assert_str_eq(buf, "app.handlers -> list");
        c.root[0] = '\0';
        hw_chain_format(&c, buf, sizeof(buf));
        ck_assert_str_eq(buf, "? -> list");
        ck_assert_uint_eq(hw_chain_format(&c, buf, 0), 0);
}
END_TEST

START_TEST(test_reply_census) {
        struct hw_census_type types[2] = { { "app.Handler", 5000, 400000 }, { "dict", 12, 2000 } };
        struct hw_census_result r = {
                .request_id = 3, .kind = HW_REQUEST_CENSUS, .time = 1764061234.5, .duration_seconds = 0.2,
                .gil_seconds = 0.049, .gil_seconds_total = 0.15, .slices = 4, .budget_ms = 50,
                .complete = false, .sampled = true, .consistent = true, .fraction = 0.5,
                .objects_seen = 100, .objects_total = 200, .types_total = 2, .n_types = 2, .types = types,
        };
        uint8_t *frame = NULL;
        size_t size = 0;
        struct hw_frame_header h;
        json_t *o, *t;

        ck_assert_int_eq(hw_census_encode(&r, &frame, &size), 0);
        ck_assert_int_eq(hw_frame_header_unpack(frame, &h), HW_HEADER_OK);
        ck_assert_uint_eq(h.type, HW_FRAME_CENSUS);
        o = json_loadb((const char *) frame + HW_FRAME_HEADER_SIZE, h.length, JSON_REJECT_DUPLICATES, NULL);
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), 3);
        ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "census");
        ck_assert(json_is_true(json_object_get(o, "sampled")));
        ck_assert(json_is_false(json_object_get(o, "complete")));
        ck_assert_int_eq(json_integer_value(json_object_get(o, "slices")), 4);
        ck_assert_double_eq_tol(json_real_value(json_object_get(o, "budget_seconds")), 0.05, 1e-9);
        ck_assert_double_eq_tol(json_real_value(json_object_get(o, "fraction")), 0.5, 1e-9);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "objects")), 200);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "objects_seen")), 100);
        ck_assert_uint_eq(json_array_size(json_object_get(o, "types")), 2);
        t = json_array_get(json_object_get(o, "types"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(t, "type")), "app.Handler");
        ck_assert_int_eq(json_integer_value(json_object_get(t, "count")), 5000);
        ck_assert_int_eq(json_integer_value(json_object_get(t, "size_bytes")), 400000);
        ck_assert_ptr_null(json_object_get(o, "chains"));
        json_decref(o);
        free(frame);
}
END_TEST

START_TEST(test_reply_chains_and_error) {
        struct hw_census_result r = { .request_id = 4, .kind = HW_REQUEST_CHAINS, .budget_ms = 50, .visited = 1234,
                                      .search_complete = true, .n_chains = 1 };
        json_t *o, *c, *steps;

        chain_fill(&r.chains[0]);
        snprintf(r.chains[0].steps[2].type, sizeof(r.chains[0].steps[2].type), "bad\xff\x01name");
        o = hw_census_result_json(&r);
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "visited")), 1234);
        c = json_array_get(json_object_get(o, "chains"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(c, "type")), "app.Handler");
        ck_assert_str_eq(json_string_value(json_object_get(c, "root")), "app.handlers");
        ck_assert_str_eq(json_string_value(json_object_get(c, "root_kind")), "module_global");
        /* names from the heap are cleaned: valid UTF-8, no controls */
        ck_assert_str_eq(json_string_value(json_object_get(c, "chain")), "app.handlers -> list -> Handler -> bad??name -> bytes");
        steps = json_object_get(c, "steps");
        ck_assert_uint_eq(json_array_size(steps), 4);
        ck_assert_ptr_null(json_object_get(json_array_get(steps, 0), "via"));
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(steps, 1), "via")), "[3]");
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(steps, 3), "via")), "['payload']");

        /* holders: only when asked for, each with what it holds */
        ck_assert_ptr_null(json_object_get(o, "holders"));
        json_decref(o);
        r.holders_requested = true;
        r.holders_complete = true;
        r.holders_seen = 5000;
        r.n_holders = 2;
        chain_fill(&r.holders[0]);
        r.holders[0].n_steps = 1;
        r.holders[0].holds = 7000;
        chain_fill(&r.holders[1]);
        r.holders[1].root[0] = '\0';
        snprintf(r.holders[1].root_kind, sizeof(r.holders[1].root_kind), "unreachable");
        r.holders[1].n_steps = 1;
        r.holders[1].holds = 9;
        o = hw_census_result_json(&r);
        ck_assert(json_is_true(json_object_get(o, "holders_complete")));
        ck_assert_int_eq(json_integer_value(json_object_get(o, "holders_seen")), 5000);
        ck_assert_uint_eq(json_array_size(json_object_get(o, "holders")), 2);
        c = json_array_get(json_object_get(o, "holders"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(c, "chain")), "app.handlers -> list");
        ck_assert_int_eq(json_integer_value(json_object_get(c, "holds")), 7000);
        c = json_array_get(json_object_get(o, "holders"), 1);
        ck_assert_str_eq(json_string_value(json_object_get(c, "chain")), "? -> list");
        ck_assert_str_eq(json_string_value(json_object_get(c, "root_kind")), "unreachable");
        ck_assert_int_eq(json_integer_value(json_object_get(c, "holds")), 9);
        /* the chains to sample instances carry no count */
        ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(o, "chains"), 0), "holds"));
        json_decref(o);

        /* a refusal carries its reason and no figures */
        r.error = "a garbage collection is running";
        o = hw_census_result_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "a garbage collection is running");
        ck_assert_ptr_null(json_object_get(o, "chains"));
        json_decref(o);

        r.error = NULL;
        r.kind = HW_REQUEST_UNSUPPORTED;
        o = hw_census_result_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "unsupported request kind");
        json_decref(o);
}
END_TEST

/* The transport reads REQUEST frames from the daemon and queues them for the sampler thread. */
static void send_frame(int fd, uint8_t type, const char *payload) {
        uint8_t hdr[HW_FRAME_HEADER_SIZE];
        size_t n = strlen(payload);

        hw_frame_header_pack(hdr, type, (uint32_t) n);
        ck_assert_int_eq(send(fd, hdr, sizeof(hdr), 0), (ssize_t) sizeof(hdr));
        if (n > 0)
                ck_assert_int_eq(send(fd, payload, n, 0), (ssize_t) n);
}

/* A transport that has one end of a socket pair as its connection (HELLO already sent); the
 * other end, the "daemon", in *ret_peer. */
static void transport_connected(struct hw_transport *t, int *ret_peer) {
        uint8_t *hello = malloc(4);
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(hw_transport_init(t, NULL), 0);
        hw_transport_set_hello(t, hello, 4);
        t->fd = sv[0];
        t->state = HW_TRANSPORT_CONNECTED;
        t->hello_sent = 4;
        *ret_peer = sv[1];
}

START_TEST(test_transport_requests) {
        struct hw_transport t;
        struct hw_request r;
        int sv[2];

        transport_connected(&t, &sv[1]);

        ck_assert(!hw_transport_take_request(&t, &r));
        for (int i = 1; i <= HW_TRANSPORT_REQUESTS_MAX + 2; i++) {
                char p[64];
                snprintf(p, sizeof(p), "{\"id\": %d, \"kind\": \"census\"}", i);
                send_frame(sv[1], HW_FRAME_REQUEST, p);
        }
        hw_transport_run(&t, hw_now_monotonic(), POLLIN);
        ck_assert_int_eq(t.state, HW_TRANSPORT_CONNECTED);
        ck_assert_uint_eq(t.requests_total, HW_TRANSPORT_REQUESTS_MAX + 2);
        ck_assert_uint_eq(t.requests_dropped_total, 2);
        for (unsigned i = 1; i <= HW_TRANSPORT_REQUESTS_MAX; i++) {
                ck_assert(hw_transport_take_request(&t, &r));
                ck_assert_uint_eq(r.id, i);
        }
        ck_assert(!hw_transport_take_request(&t, &r));

        /* waiting requests die with the connection */
        send_frame(sv[1], HW_FRAME_REQUEST, "{\"id\": 99, \"kind\": \"census\"}");
        hw_transport_run(&t, hw_now_monotonic(), POLLIN);
        ck_assert_uint_eq(t.n_requests, 1);
        /* a REQUEST that does not parse is a protocol error: the connection closes */
        send_frame(sv[1], HW_FRAME_REQUEST, "{\"id\": \"x\"}");
        hw_transport_run(&t, hw_now_monotonic(), POLLIN);
        ck_assert_int_eq(t.state, HW_TRANSPORT_DISCONNECTED);
        ck_assert_uint_eq(t.protocol_errors_total, 1);
        ck_assert(!hw_transport_take_request(&t, &r));
        close(sv[1]);
        hw_transport_destroy(&t);
}
END_TEST

START_TEST(test_transport_request_too_large) {
        struct hw_transport t;
        uint8_t hdr[HW_FRAME_HEADER_SIZE];
        int sv[2];

        transport_connected(&t, &sv[1]);
        /* the header alone announces a REQUEST over the bound: refused before any payload */
        hw_frame_header_pack(hdr, HW_FRAME_REQUEST, HW_REQUEST_MAX_PAYLOAD + 1);
        ck_assert_int_eq(send(sv[1], hdr, sizeof(hdr), 0), (ssize_t) sizeof(hdr));
        hw_transport_run(&t, hw_now_monotonic(), POLLIN);
        ck_assert_int_eq(t.state, HW_TRANSPORT_DISCONNECTED);
        ck_assert_uint_eq(t.protocol_errors_total, 1);
        close(sv[1]);
        hw_transport_destroy(&t);
}
END_TEST

/* Zeroed, grown with the contents kept and the rest zeroed (within the last page and beyond
 * it), freed; sizes that are not whole pages; refusals leave the block valid. */
START_TEST(test_pages) {
        size_t n = 3000, m = 3 * 4096 + 17;
        unsigned char *p = hw_pages_alloc(n), *q;

        ck_assert_ptr_nonnull(p);
        for (size_t i = 0; i < n; i++)
                ck_assert_uint_eq(p[i], 0);
        memset(p, 0xab, n);
        q = hw_pages_grow(p, n, m);
        ck_assert_ptr_nonnull(q);
        for (size_t i = 0; i < m; i++)
                ck_assert_uint_eq(q[i], i < n ? 0xab : 0);
        memset(q, 0xcd, m);
        errno = 0;
        ck_assert_ptr_null(hw_pages_grow(q, m, m)); /* not larger: refused, q untouched */
        errno = 0;
        ck_assert_ptr_null(hw_pages_grow(NULL, 0, m)); /* not from hw_pages_alloc: refused in every build */
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_uint_eq(q[m - 1], 0xcd);
        p = hw_pages_grow(q, m, 64 * 4096);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(p[0], 0xcd);
        ck_assert_uint_eq(p[m - 1], 0xcd);
        ck_assert_uint_eq(p[m], 0);
        ck_assert_uint_eq(p[64 * 4096 - 1], 0);
        hw_pages_free(p, 64 * 4096);
        hw_pages_free(NULL, 4096);
        errno = 0;
        ck_assert_ptr_null(hw_pages_alloc(0));
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_ptr_null(hw_pages_alloc(SIZE_MAX));
}
END_TEST

/* The daemon requests' share of the GIL: a burst from a full bucket, then the rate; a hold waits
 * as long as the previous one. */
START_TEST(test_gil_share_burst_then_rate) {
        struct hw_gil_share g = { 0 };
        double now = 100.0;

        ck_assert(hw_gil_share_may_start(&g, now));
        ck_assert_double_eq(hw_gil_share_wait(&g, now), 0);
        ck_assert(hw_gil_share_spent(&g, now + 1.5, 1.5)); /* 0.5 s left */
        now += 1.5;
        ck_assert_double_eq_tol(hw_gil_share_wait(&g, now), 1.5, 1e-9); /* as long as it held */
        /* 0.5 + 1 s x 5 % - 1.0 = -0.45: in debt, paid back in 9 s at 5 % */
        ck_assert(!hw_gil_share_spent(&g, now + 1.0, 1.0));
        now += 1.0;
        ck_assert_double_eq_tol(g.tokens, -0.45, 1e-9);
        ck_assert(!hw_gil_share_may_start(&g, now));
        ck_assert(!hw_gil_share_may_start(&g, now + 8.9));
        ck_assert(hw_gil_share_may_start(&g, now + 9.1));
        /* never more than the burst, however long it rests */
        ck_assert(hw_gil_share_may_start(&g, now + 1e6));
        ck_assert_double_le(g.tokens, HW_GIL_SHARE_BURST);
}
END_TEST

/* A daemon that asks for 1 s holds as fast as the agent lets it: over 1000 s they held the GIL
 * for at most the burst, the rate's share and one last hold. */
START_TEST(test_gil_share_greedy_daemon) {
        struct hw_gil_share g = { 0 };
        double now = 0, held_total = 0;

        while (now < 1000.0) {
                if (!hw_gil_share_may_start(&g, now)) {
                        now += 0.05; /* refused "busy"; the daemon asks again at once */
                        continue;
                }
                now += hw_gil_share_wait(&g, now);
                now += 1.0;
                held_total += 1.0;
                (void) hw_gil_share_spent(&g, now, 1.0);
        }
        ck_assert_double_le(held_total, HW_GIL_SHARE_BURST + HW_GIL_SHARE_RATE * 1000.0 + 1.0);
        ck_assert_double_ge(held_total, HW_GIL_SHARE_RATE * 1000.0 - 1.0); /* and not starved */
}
END_TEST

static Suite *census_suite(void) {
        Suite *s = suite_create("agent-census");
        TCase *tc = tcase_create("census");

        tcase_add_test(tc, test_request_decode);
        tcase_add_test(tc, test_request_bad);
        tcase_add_test(tc, test_table_counts);
        tcase_add_test(tc, test_table_ties_and_overflow);
        tcase_add_test(tc, test_chain_format);
        tcase_add_test(tc, test_reply_census);
        tcase_add_test(tc, test_reply_chains_and_error);
        tcase_add_test(tc, test_transport_requests);
        tcase_add_test(tc, test_transport_request_too_large);
        tcase_add_test(tc, test_pages);
        tcase_add_test(tc, test_gil_share_burst_then_rate);
        tcase_add_test(tc, test_gil_share_greedy_daemon);
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
