/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/access.c: the token file (trimmed, bounds on length and characters,
 * loose permissions reported, missing file refused), the constant-time comparison (equal,
 * prefix, longer, empty), the Authorization header parser, loopback detection for IPv4, IPv6
 * and v4-mapped addresses, IPv6 clients keyed by /64, group resolution, and the decisions: the
 * token on every endpoint but /healthz, the per-client request rate with its counter, and agent
 * work (token or loopback, then per-client and per-process rates).
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "http-limits.h"
#include "peer-limits.h"

#define SEC 1000000ULL
#define TOKEN "s3cret-token-0123456789"
#define BEARER "Bearer " TOKEN

static struct sockaddr_in v4(const char *a) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        ck_assert_int_eq(inet_pton(AF_INET, a, &sa.sin_addr), 1);
        return sa;
}

static struct sockaddr_in6 v6(const char *a) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
        ck_assert_int_eq(inet_pton(AF_INET6, a, &sa.sin6_addr), 1);
        return sa;
}

static char *write_file(const char *content, mode_t mode) {
        char *path = strdup("/tmp/hw-test-token-XXXXXX");
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        ck_assert_int_eq(fchmod(fd, mode), 0);
        close(fd);
        return path;
}

START_TEST(test_token_file) {
        char error[256], *token = NULL, *path;
        bool loose = true;

        path = write_file(TOKEN " \n", 0600);
        ck_assert_int_eq(access_token_load(path, &token, &loose, error, sizeof error), 0);
        ck_assert_str_eq(token, TOKEN);
        ck_assert(!loose);
        free(token);
        unlink(path);
        free(path);

        path = write_file(TOKEN, 0644);
        ck_assert_int_eq(access_token_load(path, &token, &loose, error, sizeof error), 0);
        ck_assert(loose);
        free(token);
        unlink(path);
        free(path);

        path = write_file("short\n", 0600);
        ck_assert_int_eq(access_token_load(path, &token, &loose, error, sizeof error), -EINVAL);
        ck_assert_ptr_nonnull(strstr(error, "bytes long"));
        unlink(path);
        free(path);

        path = write_file("has a space inside it\n", 0600);
        ck_assert_int_eq(access_token_load(path, &token, &loose, error, sizeof error), -EINVAL);
        unlink(path);
        free(path);

        ck_assert_int_eq(access_token_load("/nonexistent/token", &token, &loose, error, sizeof error), -ENOENT);
        ck_assert_ptr_nonnull(strstr(error, "/nonexistent/token"));

        /* a FIFO with no writer: refused at once (open() blocked until a writer came, and a
         * reload with it: found by review) */
        {
                char fifo[] = "/tmp/hw-test-token-XXXXXX";
                int fd = mkstemp(fifo);

                ck_assert_int_ge(fd, 0);
                close(fd);
                unlink(fifo);
                ck_assert_int_eq(mkfifo(fifo, 0600), 0);
                ck_assert_int_eq(access_token_load(fifo, &token, &loose, error, sizeof error), -EINVAL);
                ck_assert_ptr_nonnull(strstr(error, "not a regular file"));
                unlink(fifo);
        }

        /* a NUL in the token's line would end it early: refused, not truncated */
        {
                static const char nul[] = "abcdefghijklmnop\0SECRETREST\n";
                int fd;

                path = strdup("/tmp/hw-test-token-XXXXXX");
                fd = mkstemp(path);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(write(fd, nul, sizeof nul - 1), (ssize_t) (sizeof nul - 1));
                close(fd);
                ck_assert_int_eq(access_token_load(path, &token, &loose, error, sizeof error), -EINVAL);
                ck_assert_ptr_nonnull(strstr(error, "NUL"));
                unlink(path);
                free(path);
        }
}
END_TEST

/* A wrong token is no way around the request rate: 401s take from the bucket too. */
START_TEST(test_wrong_tokens_rate_limited) {
        LimitsConfig l;
        HttpAccess *a;
        struct sockaddr_in far = v4("192.0.2.7");
        double retry = 0;
        int unauthorized = 0, limited = 0;

        limits_config_default(&l);
        l.http_requests_per_second = 5; /* burst 10 */
        a = http_access_new(TOKEN, &l);
        for (int i = 0; i < 50; i++) {
                AccessDecision d = http_access_decide_request(a, ROUTE_METRICS, (struct sockaddr *) &far,
                                                              "Bearer wrong-token-0123456789", SEC, &retry);
                unauthorized += d == ACCESS_UNAUTHORIZED;
                limited += d == ACCESS_RATE_LIMITED;
        }
        ck_assert_int_eq(unauthorized, 10);
        ck_assert_int_eq(limited, 40);
        http_access_free(a);
}
END_TEST

START_TEST(test_token_compare) {
        ck_assert(access_token_equal(TOKEN, TOKEN, strlen(TOKEN)));
        ck_assert(!access_token_equal(TOKEN, TOKEN, strlen(TOKEN) - 1)); /* a prefix */
        ck_assert(!access_token_equal(TOKEN, TOKEN "x", strlen(TOKEN) + 1));
        ck_assert(!access_token_equal(TOKEN, "", 0));
        ck_assert(!access_token_equal(TOKEN, "s3cret-token-0123456780", strlen(TOKEN))); /* last byte */
        ck_assert(!access_token_equal(TOKEN, "S3cret-token-0123456789", strlen(TOKEN))); /* first byte */
}
END_TEST

START_TEST(test_bearer) {
        const char *t;
        size_t n;

        ck_assert_int_eq(access_parse_bearer(BEARER, &t, &n), 0);
        ck_assert_uint_eq(n, strlen(TOKEN));
        ck_assert(strncmp(t, TOKEN, n) == 0);
        ck_assert_int_eq(access_parse_bearer("bearer   " TOKEN "  ", &t, &n), 0);
        ck_assert_uint_eq(n, strlen(TOKEN));
        ck_assert_int_eq(access_parse_bearer("Basic dXNlcjpwYXNz", &t, &n), -EINVAL);
        ck_assert_int_eq(access_parse_bearer("Bearer", &t, &n), -EINVAL);
        ck_assert_int_eq(access_parse_bearer("Bearer   ", &t, &n), -EINVAL);
        ck_assert_int_eq(access_parse_bearer("BearerX" TOKEN, &t, &n), -EINVAL);
        ck_assert_int_eq(access_parse_bearer(NULL, &t, &n), -EINVAL);
}
END_TEST

START_TEST(test_addresses) {
        struct sockaddr_in a = v4("127.0.0.1"), b = v4("127.3.2.1"), c = v4("10.0.0.1");
        struct sockaddr_in6 d = v6("::1"), e = v6("::ffff:127.0.0.1"), f = v6("2001:db8::1"),
                            g = v6("2001:db8::ffff:2"), h = v6("::ffff:10.1.2.3");
        char key[ACCESS_ADDRESS_KEY_MAX];

        ck_assert(access_sockaddr_is_loopback((struct sockaddr *) &a));
        ck_assert(access_sockaddr_is_loopback((struct sockaddr *) &b));
        ck_assert(!access_sockaddr_is_loopback((struct sockaddr *) &c));
        ck_assert(access_sockaddr_is_loopback((struct sockaddr *) &d));
        ck_assert(access_sockaddr_is_loopback((struct sockaddr *) &e));
        ck_assert(!access_sockaddr_is_loopback((struct sockaddr *) &f));
        ck_assert(!access_sockaddr_is_loopback((struct sockaddr *) &h));
        ck_assert(!access_sockaddr_is_loopback(NULL));

        access_address_key((struct sockaddr *) &c, key);
        ck_assert_str_eq(key, "10.0.0.1");
        access_address_key((struct sockaddr *) &h, key);
        ck_assert_str_eq(key, "10.1.2.3");
        access_address_key((struct sockaddr *) &f, key);
        ck_assert_str_eq(key, "2001:db8::/64");
        access_address_key((struct sockaddr *) &g, key); /* same /64, same key */
        ck_assert_str_eq(key, "2001:db8::/64");
        access_address_key(NULL, key);
        ck_assert_str_eq(key, "unknown");
}
END_TEST

START_TEST(test_group) {
        gid_t gid = 0;

        ck_assert_int_eq(access_resolve_group("", &gid), 0);
        ck_assert(gid == (gid_t) -1);
        ck_assert_int_eq(access_resolve_group("1234", &gid), 0);
        ck_assert_int_eq(gid, 1234);
        ck_assert_int_eq(access_resolve_group("root", &gid), 0);
        ck_assert_int_eq(gid, 0);
        ck_assert_int_eq(access_resolve_group("no-such-group-hw", &gid), -ENOENT);
}
END_TEST

START_TEST(test_decide_token) {
        LimitsConfig l;
        HttpAccess *a;
        struct sockaddr_in far = v4("192.0.2.7");
        double retry;

        limits_config_default(&l);
        a = http_access_new(TOKEN, &l);
        ck_assert(http_access_has_token(a));
        ck_assert_int_eq(http_access_decide_request(a, ROUTE_HEALTHZ, (struct sockaddr *) &far, NULL, SEC, &retry),
                         ACCESS_ALLOW);
        for (RouteKind k = ROUTE_NOT_FOUND; k < _ROUTE_MAX; k++) {
                if (k == ROUTE_HEALTHZ)
                        continue;
                ck_assert_int_eq(http_access_decide_request(a, k, (struct sockaddr *) &far, NULL, SEC, &retry),
                                 ACCESS_UNAUTHORIZED);
                ck_assert_int_eq(http_access_decide_request(a, k, (struct sockaddr *) &far, "Bearer wrong-token-0123456789",
                                                            SEC, &retry),
                                 ACCESS_UNAUTHORIZED);
                ck_assert_int_eq(http_access_decide_request(a, k, (struct sockaddr *) &far, BEARER, SEC, &retry),
                                 ACCESS_ALLOW);
        }
        /* with a token, agent work needs it from loopback too */
        {
                struct sockaddr_in lo = v4("127.0.0.1");
                ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &lo, NULL, "1-2", SEC, &retry),
                                 ACCESS_UNAUTHORIZED);
                ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &far, BEARER, "1-2", SEC, &retry),
                                 ACCESS_ALLOW);
        }
        /* rotation (reload): the new token only; then none at all */
        ck_assert_int_eq(http_access_set_token(a, "another-token-0123456789"), 0);
        ck_assert_int_eq(http_access_decide_request(a, ROUTE_METRICS, (struct sockaddr *) &far, BEARER, SEC, &retry),
                         ACCESS_UNAUTHORIZED);
        ck_assert_int_eq(http_access_decide_request(a, ROUTE_METRICS, (struct sockaddr *) &far,
                                                    "Bearer another-token-0123456789", SEC, &retry),
                         ACCESS_ALLOW);
        ck_assert_int_eq(http_access_set_token(a, NULL), 0);
        ck_assert(!http_access_has_token(a));
        ck_assert_int_eq(http_access_decide_request(a, ROUTE_METRICS, (struct sockaddr *) &far, NULL, SEC, &retry),
                         ACCESS_ALLOW);
        http_access_free(a);
        ck_assert_str_eq(access_decision_message(ACCESS_UNAUTHORIZED, false),
                         "authorization required: send 'Authorization: Bearer <token>'");
}
END_TEST

START_TEST(test_decide_rates) {
        LimitsConfig l;
        HttpAccess *a;
        struct sockaddr_in lo = v4("127.0.0.1"), far = v4("192.0.2.7"), other = v4("192.0.2.8");
        double retry = 0;
        int allowed = 0;

        limits_config_default(&l);
        l.http_requests_per_second = 5; /* burst 10 */
        l.work_per_minute_process = 2;
        l.work_per_minute_client = 3;
        a = http_access_new(NULL, &l);
        ck_assert(!http_access_has_token(a));
        limit_hits_reset();

        for (int i = 0; i < 50; i++)
                allowed += http_access_decide_request(a, ROUTE_METRICS, (struct sockaddr *) &far, NULL, SEC, &retry) ==
                           ACCESS_ALLOW;
        ck_assert_int_eq(allowed, 10);
        ck_assert_uint_eq(limit_hits_get(LIMIT_HTTP_REQUEST_RATE), 40);
        ck_assert(retry > 0 && retry <= 0.2 + 1e-9);
        /* another client is not affected; the first one recovers at 5/s */
        ck_assert_int_eq(http_access_decide_request(a, ROUTE_METRICS, (struct sockaddr *) &other, NULL, SEC, &retry),
                         ACCESS_ALLOW);
        ck_assert_int_eq(http_access_decide_request(a, ROUTE_METRICS, (struct sockaddr *) &far, NULL, SEC + SEC / 5, &retry),
                         ACCESS_ALLOW);

        /* agent work without a token: loopback only */
        ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &far, NULL, "1-2", SEC, &retry),
                         ACCESS_FORBIDDEN);
        /* two per process per minute... */
        ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &lo, NULL, "1-2", SEC, &retry), ACCESS_ALLOW);
        ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &lo, NULL, "1-2", SEC, &retry), ACCESS_ALLOW);
        ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &lo, NULL, "1-2", SEC, &retry),
                         ACCESS_RATE_LIMITED);
        ck_assert(retry > 29 && retry <= 30.0 + 1e-9);
        /* ...and three per client: the client's third is spent on the refusal above */
        ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &lo, NULL, "3-4", SEC, &retry),
                         ACCESS_RATE_LIMITED);
        ck_assert_uint_eq(limit_hits_get(LIMIT_AGENT_WORK_RATE), 2);
        /* a minute later both have refilled */
        ck_assert_int_eq(http_access_decide_agent_work(a, (struct sockaddr *) &lo, NULL, "3-4", 61 * SEC, &retry),
                         ACCESS_ALLOW);
        http_access_free(a);
}
END_TEST

/* MHD 0.9 answers oversized heads itself; its log line is how the limit is counted. */
START_TEST(test_mhd_memory_messages) {
        limit_hits_reset();
        http_limits_note_mhd_message("Error processing request (HTTP response code is 431 ('Request Header Fields Too "
                                     "Large')). Closing connection.");
        http_limits_note_mhd_message("Error processing request (HTTP response code is 414 ('URI Too Long')). Closing "
                                     "connection.");
        http_limits_note_mhd_message("Error processing request (HTTP response code is 400 ('Bad Request')).");
        http_limits_note_mhd_message("Connection socket is closed when reading request");
        ck_assert_uint_eq(limit_hits_get(LIMIT_HTTP_CONNECTION_MEMORY), 2);
}
END_TEST

/* Found by review: 478 query parameters (1.9 KB) ran libmicrohttpd's 32 KiB pool out while it
 * parsed them, and the client got no answer at all. The URI callback cuts a query of more than
 * HTTP_QUERY_PARAMETERS_MAX parameters before MHD parses it and marks the request. */
START_TEST(test_too_many_query_parameters) {
        char uri[8192];
        size_t n;

        snprintf(uri, sizeof uri, "/metrics");
        ck_assert_ptr_null(http_limits_uri_callback(NULL, uri, NULL));
        snprintf(uri, sizeof uri, "/metrics?");
        ck_assert_ptr_null(http_limits_uri_callback(NULL, uri, NULL));

        /* exactly the maximum: untouched */
        n = (size_t) snprintf(uri, sizeof uri, "/api/v1/processes?state=live");
        for (int i = 1; i < HTTP_QUERY_PARAMETERS_MAX; i++)
                n += (size_t) snprintf(uri + n, sizeof uri - n, "&a=%d", i);
        ck_assert_ptr_null(http_limits_uri_callback(NULL, uri, NULL));
        ck_assert_uint_eq(strlen(uri), n);

        /* one more: cut after the '?', marked, counted */
        snprintf(uri + n, sizeof uri - n, "&b=1");
        ck_assert_ptr_eq(http_limits_uri_callback(NULL, uri, NULL), http_limits_too_many_parameters);
        ck_assert_str_eq(uri, "/api/v1/processes?");
        ck_assert_uint_ge(limit_hits_get(LIMIT_HTTP_QUERY_PARAMETERS), 1);

        /* empty parameters count too: MHD stores a record for each */
        n = (size_t) snprintf(uri, sizeof uri, "/healthz?");
        memset(uri + n, '&', 500);
        uri[n + 500] = '\0';
        ck_assert_ptr_eq(http_limits_uri_callback(NULL, uri, NULL), http_limits_too_many_parameters);
}
END_TEST

static Suite *access_suite(void) {
        Suite *s = suite_create("access");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_token_file);
        tcase_add_test(tc, test_token_compare);
        tcase_add_test(tc, test_bearer);
        tcase_add_test(tc, test_addresses);
        tcase_add_test(tc, test_group);
        tcase_add_test(tc, test_decide_token);
        tcase_add_test(tc, test_decide_rates);
        tcase_add_test(tc, test_wrong_tokens_rate_limited);
        tcase_add_test(tc, test_mhd_memory_messages);
        tcase_add_test(tc, test_too_many_query_parameters);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(access_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
