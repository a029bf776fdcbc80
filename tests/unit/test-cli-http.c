/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for cli/http-client.c against a real socket: a forked one-shot HTTP server on an
 * ephemeral loopback port answers each request with a canned (or echoed) response, so status
 * codes, body limits, refused connections, proxies and URL joining are exercised without a
 * daemon or the network.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http-client.h"
#include "macro.h"

typedef enum Mode {
        MODE_FIXED,     /* send the canned response */
        MODE_ECHO,      /* 200 with the request head as the body */
        MODE_CLOSE,     /* close without answering */
} Mode;

typedef struct Server {
        pid_t pid;
        int port;
} Server;

static void server_child(int fd, Mode mode, const char *response) {
        char req[8192];
        size_t n = 0;
        int c;

        c = accept(fd, NULL, NULL);
        if (c < 0)
                _exit(1);
        /* Read the request head; GETs have no body. */
        while (n < sizeof req - 1) {
                ssize_t k = read(c, req + n, sizeof req - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
                req[n] = '\0';
                if (strstr(req, "\r\n\r\n"))
                        break;
        }
        req[n] = '\0';

        if (mode == MODE_ECHO) {
                char head[256];
                int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
                (void) !send(c, head, (size_t) h, MSG_NOSIGNAL);
                (void) !send(c, req, n, MSG_NOSIGNAL);
        } else if (mode == MODE_FIXED)
                (void) !send(c, response, strlen(response), MSG_NOSIGNAL);
        shutdown(c, SHUT_WR);
        /* Let the client read everything before the close. */
        while (read(c, req, sizeof req) > 0)
                ;
        close(c);
        _exit(0);
}

static void server_start(Server *s, Mode mode, const char *response) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(listen(fd, 4), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        s->port = ntohs(sa.sin_port);

        s->pid = fork();
        ck_assert_int_ge(s->pid, 0);
        if (s->pid == 0)
                server_child(fd, mode, response);
        close(fd);
}

static void server_stop(Server *s) {
        int status;

        /* A client that gave up early leaves the server blocked in read() or send(). SIGKILL,
         * not SIGTERM: the child inherited Check's SIGTERM handler, which would take down the
         * whole process group, this test included. */
        kill(s->pid, SIGKILL);
        ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
}

static char *server_url(const Server *s, const char *path) {
        char *u;
        ck_assert_int_ge(asprintf(&u, "http://127.0.0.1:%d%s", s->port, path), 0);
        return u;
}

static int get_fixed(const char *response, size_t body_max, HttpResponse *ret, char *error, size_t error_size) {
        Server s;
        _cleanup_free_ char *url = NULL;
        int r;

        server_start(&s, MODE_FIXED, response);
        url = server_url(&s, "/api/v1/processes");
        r = http_get(url, body_max, ret, error, error_size);
        server_stop(&s);
        return r;
}

START_TEST(test_get_echo) {
        _cleanup_(http_response_clear) HttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        char base[64], error[256] = "";
        Server s;

        server_start(&s, MODE_ECHO, NULL);
        snprintf(base, sizeof base, "127.0.0.1:%d/", s.port);
        ck_assert_int_eq(http_build_url(base, "/api/v1/processes", "state=live", &url), 0);
        ck_assert_int_eq(http_get(url, 0, &resp, error, sizeof error), 0);
        server_stop(&s);

        ck_assert_int_eq(resp.status, 200);
        ck_assert_uint_eq(resp.size, strlen(resp.body));
        ck_assert_int_eq(strncmp(resp.body, "GET /api/v1/processes?state=live HTTP/1.1\r\n", 43), 0);
        ck_assert_ptr_nonnull(strstr(resp.body, "\r\nAccept: application/json\r\n"));
        ck_assert_ptr_nonnull(strstr(resp.body, "\r\nUser-Agent: heapwatch/" PACKAGE_VERSION "\r\n"));
}
END_TEST

/* $HEAPWATCH_TOKEN_FILE: the token goes in an Authorization header; an unreadable file is an
 * error before anything is sent. */
START_TEST(test_get_token_file) {
        _cleanup_(http_response_clear) HttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        char path[] = "/tmp/hw-test-cli-token-XXXXXX", error[256] = "";
        int fd = mkstemp(path);
        Server s;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "cli-token-0123456789 \n", 22), 22);
        close(fd);
        setenv("HEAPWATCH_TOKEN_FILE", path, 1);
        server_start(&s, MODE_ECHO, NULL);
        url = server_url(&s, "/metrics");
        ck_assert_int_eq(http_get(url, 0, &resp, error, sizeof error), 0);
        server_stop(&s);
        ck_assert_ptr_nonnull(strstr(resp.body, "\r\nAuthorization: Bearer cli-token-0123456789\r\n"));

        unlink(path);
        ck_assert_int_eq(http_get(url, 0, &resp, error, sizeof error), -EACCES);
        ck_assert_ptr_nonnull(strstr(error, path));
        unsetenv("HEAPWATCH_TOKEN_FILE");
}
END_TEST

START_TEST(test_get_error_status) {
        _cleanup_(http_response_clear) HttpResponse resp = {};
        char error[256] = "";

        ck_assert_int_eq(get_fixed("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 26\r\nConnection: close\r\n\r\n{\"error\": \"unknown path\"}\n",
                                   0, &resp, error, sizeof error), 0);
        ck_assert_int_eq(resp.status, 404);
        ck_assert_str_eq(resp.body, "{\"error\": \"unknown path\"}\n");
        ck_assert_uint_eq(resp.size, 26);
}
END_TEST

START_TEST(test_get_empty_body) {
        _cleanup_(http_response_clear) HttpResponse resp = {};
        char error[256] = "";

        ck_assert_int_eq(get_fixed("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 0, &resp, error, sizeof error), 0);
        ck_assert_int_eq(resp.status, 204);
        ck_assert_ptr_nonnull(resp.body);
        ck_assert_str_eq(resp.body, "");
        ck_assert_uint_eq(resp.size, 0);
}
END_TEST

START_TEST(test_get_no_redirect) {
        _cleanup_(http_response_clear) HttpResponse resp = {};
        char error[256] = "";

        ck_assert_int_eq(get_fixed("HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n", 0, &resp, error, sizeof error), 0);
        ck_assert_int_eq(resp.status, 302);
}
END_TEST

#define BODY_100 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"

START_TEST(test_get_body_limit) {
        _cleanup_(http_response_clear) HttpResponse resp = {};
        HttpResponse untouched = { .status = 1 };
        char error[256] = "";

        /* Exactly at the limit: fine. */
        ck_assert_int_eq(get_fixed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" BODY_100,
                                   100, &resp, error, sizeof error), 0);
        ck_assert_uint_eq(resp.size, 100);

        /* Announced too large. */
        ck_assert_int_eq(get_fixed("HTTP/1.1 200 OK\r\nContent-Length: 101\r\nConnection: close\r\n\r\n" BODY_100 "x",
                                   100, &untouched, error, sizeof error), -EFBIG);
        ck_assert_str_eq(error, "response body larger than 100 bytes");
        ck_assert_int_eq(untouched.status, 1);
        ck_assert_ptr_null(untouched.body);

        /* Chunked, no length announced: caught while receiving. */
        error[0] = '\0';
        ck_assert_int_eq(get_fixed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                   "64\r\n" BODY_100 "\r\n64\r\n" BODY_100 "\r\n0\r\n\r\n",
                                   100, &untouched, error, sizeof error), -EFBIG);
        ck_assert_str_eq(error, "response body larger than 100 bytes");
        ck_assert_ptr_null(untouched.body);
}
END_TEST

START_TEST(test_get_nothing) {
        HttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        char error[256] = "";
        Server s;

        server_start(&s, MODE_CLOSE, NULL);
        url = server_url(&s, "/");
        ck_assert_int_eq(http_get(url, 0, &resp, error, sizeof error), -EIO);
        server_stop(&s);
        ck_assert_str_ne(error, "");
        ck_assert_ptr_null(resp.body);
}
END_TEST

START_TEST(test_get_refused) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        HttpResponse resp = {};
        char url[64], error[256] = "";
        int fd;

        /* A port that was just free: bind, learn it, close without listening. */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        close(fd);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/processes", ntohs(sa.sin_port));

        ck_assert_int_eq(http_get(url, 0, &resp, error, sizeof error), -ECONNREFUSED);
        ck_assert_ptr_nonnull(strstr(error, "onnect"));
}
END_TEST

START_TEST(test_get_loopback_ignores_proxy) {
        _cleanup_(http_response_clear) HttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        char error[256] = "";
        Server s;

        /* A proxy elsewhere cannot reach our loopback: it must not be used for it. */
        setenv("http_proxy", "http://127.0.0.1:1", 1);
        setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
        unsetenv("no_proxy");
        unsetenv("NO_PROXY");

        server_start(&s, MODE_ECHO, NULL);
        url = server_url(&s, "/x");
        ck_assert_int_eq(http_get(url, 0, &resp, error, sizeof error), 0);
        server_stop(&s);
        ck_assert_int_eq(resp.status, 200);
}
END_TEST

START_TEST(test_get_other_schemes) {
        HttpResponse resp = {};
        char error[256];

        ck_assert_int_eq(http_get("file:///etc/passwd", 0, &resp, error, sizeof error), -EPROTONOSUPPORT);
        ck_assert_int_eq(http_get("ftp://127.0.0.1/", 0, &resp, error, sizeof error), -EPROTONOSUPPORT);
        ck_assert_int_eq(http_get("gopher://127.0.0.1/", 0, &resp, NULL, 0), -EPROTONOSUPPORT);
        ck_assert_ptr_null(resp.body);
}
END_TEST

static void assert_url(const char *base, const char *path, const char *query, const char *expected) {
        _cleanup_free_ char *u = NULL;

        ck_assert_int_eq(http_build_url(base, path, query, &u), 0);
        ck_assert_str_eq(u, expected);
}

START_TEST(test_build_url) {
        char *u = NULL;

        assert_url("http://127.0.0.1:9847", "/api/v1/processes", "state=live",
                   "http://127.0.0.1:9847/api/v1/processes?state=live");
        assert_url("http://127.0.0.1:9847/", "/api/v1/processes", NULL, "http://127.0.0.1:9847/api/v1/processes");
        assert_url("127.0.0.1:9847", "/healthz", NULL, "http://127.0.0.1:9847/healthz");
        assert_url("localhost:9847//", "/healthz", NULL, "http://localhost:9847/healthz");
        assert_url("https://mon.example.com/heapwatch/", "/api/v1/processes", "state=all",
                   "https://mon.example.com/heapwatch/api/v1/processes?state=all");
        assert_url("HTTP://[::1]:9847", "/healthz", NULL, "http://[::1]:9847/healthz");
        /* The base's own query and fragment do not leak into API requests. */
        assert_url("http://h:1/p?x=1#frag", "/healthz", NULL, "http://h:1/p/healthz");

        ck_assert_int_eq(http_build_url("ftp://h/", "/x", NULL, &u), -EPROTONOSUPPORT);
        ck_assert_int_eq(http_build_url("file:///tmp", "/x", NULL, &u), -EPROTONOSUPPORT);
        ck_assert_int_eq(http_build_url("http://[bad", "/x", NULL, &u), -EINVAL);
        ck_assert_int_eq(http_build_url("http://", "/x", NULL, &u), -EINVAL);
        ck_assert_int_eq(http_build_url("http://h:99999", "/x", NULL, &u), -EINVAL);
        ck_assert_int_eq(http_build_url("", "/x", NULL, &u), -EINVAL);
        ck_assert_int_eq(http_build_url("http://h", "x", NULL, &u), -EINVAL);
        ck_assert_ptr_null(u);
}
END_TEST

static Suite *cli_http_suite(void) {
        Suite *s = suite_create("cli-http");
        TCase *tc;

        tc = tcase_create("get");
        tcase_add_test(tc, test_get_echo);
        tcase_add_test(tc, test_get_error_status);
        tcase_add_test(tc, test_get_empty_body);
        tcase_add_test(tc, test_get_no_redirect);
        tcase_add_test(tc, test_get_body_limit);
        tcase_add_test(tc, test_get_nothing);
        tcase_add_test(tc, test_get_refused);
        tcase_add_test(tc, test_get_loopback_ignores_proxy);
        tcase_add_test(tc, test_get_other_schemes);
        tcase_add_test(tc, test_get_token_file);
        suite_add_tcase(s, tc);

        tc = tcase_create("url");
        tcase_add_test(tc, test_build_url);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(cli_http_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
