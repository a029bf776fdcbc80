/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for agent/transport.c against a real Unix socket in a temporary directory: HELLO
 * first on every connection, the bounded queue and what it drops, reconnection with backoff,
 * a frame cut off by a dead connection sent again whole, WELCOME, unknown and garbage frames,
 * no SIGPIPE, the bounded drain, forgetting the parent's connection in a fork child, and the
 * stack generation (changed whenever a heap report's stacks may have been lost).
 */
#include "agent-util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heapwatch/protocol.h"
#include "transport.h"

static char dir[64];
static char sock_path[96];
static struct hw_transport t;

static void setup(void) {
        snprintf(dir, sizeof(dir), "/tmp/hw-test-transport-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", dir);
        ck_assert_int_eq(hw_transport_init(&t, sock_path), 0);
}

static void teardown(void) {
        hw_transport_destroy(&t);
        unlink(sock_path);
        rmdir(dir);
}

static int listen_at(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        ck_assert_int_ge(fd, 0);
        unlink(path);
        ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, strlen(path) + 1);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 8), 0);
        return fd;
}

/* A frame of `type` with a payload of `len` bytes of JSON-ish filler, marked with `mark`. */
static uint8_t *make_frame(uint8_t type, size_t len, char mark, size_t *ret_size) {
        uint8_t *f = malloc(HW_FRAME_HEADER_SIZE + len);

        ck_assert_ptr_nonnull(f);
        hw_frame_header_pack(f, type, (uint32_t) len);
        memset(f + HW_FRAME_HEADER_SIZE, mark, len);
        *ret_size = HW_FRAME_HEADER_SIZE + len;
        return f;
}

static void enqueue(uint8_t type, size_t len, char mark) {
        size_t size;
        uint8_t *f = make_frame(type, len, mark, &size);

        hw_transport_enqueue(&t, type, f, size);
}

static void set_hello(void) {
        size_t size;
        uint8_t *f = make_frame(HW_FRAME_HELLO, 16, 'H', &size);

        hw_transport_set_hello(&t, f, size);
}

/* Let the transport do what is due now (as the sampler thread does between polls). */
static void pump(void) {
        struct pollfd pfd;
        double wait;

        hw_transport_poll_setup(&t, hw_now_monotonic(), &pfd, &wait);
        if (pfd.fd >= 0)
                (void) poll(&pfd, 1, 0);
        hw_transport_run(&t, hw_now_monotonic(), pfd.fd >= 0 ? pfd.revents : 0);
}

/* Run the transport at (virtual) time now, and wait for the connector thread to report on a
 * connect that run started (connect() runs on a thread of its own, connector.h). */
static void run_settled(double now) {
        struct pollfd pfd;
        double wait;

        hw_transport_run(&t, now, 0);
        for (int i = 0; i < 100 && t.state == HW_TRANSPORT_CONNECT_WAITING; i++) {
                hw_transport_poll_setup(&t, now, &pfd, &wait);
                ck_assert_int_ge(pfd.fd, 0);
                (void) poll(&pfd, 1, 100);
                hw_transport_run(&t, now, pfd.revents);
        }
        ck_assert_int_ne(t.state, HW_TRANSPORT_CONNECT_WAITING);
}

/* Accept the transport's connection, pumping it meanwhile. */
static int accept_client(int lfd) {
        double deadline = hw_now_monotonic() + 5;

        while (hw_now_monotonic() < deadline) {
                int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0)
                        return c;
                ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
                pump();
                usleep(1000);
        }
        ck_abort_msg("no connection from the transport");
        return -1;
}

/* Read exactly n bytes from c (blocking with a deadline), pumping the transport meanwhile. */
static void read_exact(int c, void *buf, size_t n) {
        double deadline = hw_now_monotonic() + 5;
        size_t got = 0;

        while (got < n) {
                ssize_t r = recv(c, (uint8_t *) buf + got, n - got, MSG_DONTWAIT);
                if (r > 0) {
                        got += (size_t) r;
                        continue;
                }
                ck_assert_msg(r != 0, "unexpected EOF after %zu of %zu bytes", got, n);
                ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
                ck_assert_msg(hw_now_monotonic() < deadline, "timeout after %zu of %zu bytes", got, n);
                pump();
                usleep(200);
        }
}

static uint8_t read_frame(int c, size_t *ret_len, char *ret_mark);

/* With a HELLO set: accept the transport's connection and read the HELLO off it. */
static int accept_hello(int lfd) {
        int c = accept_client(lfd);
        size_t len;
        char mark;

        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        return c;
}

/* Read one whole frame; returns its type, fills *ret_len and the first payload byte. */
static uint8_t read_frame(int c, size_t *ret_len, char *ret_mark) {
        uint8_t h[HW_FRAME_HEADER_SIZE];
        struct hw_frame_header fh;
        uint8_t *p;

        read_exact(c, h, sizeof(h));
        ck_assert_int_eq(hw_frame_header_unpack(h, &fh), HW_HEADER_OK);
        p = malloc(fh.length ? fh.length : 1);
        ck_assert_ptr_nonnull(p);
        read_exact(c, p, fh.length);
        for (size_t i = 1; i < fh.length; i++)
                ck_assert_int_eq(p[i], p[0]); /* a frame arrives whole, never mixed with another */
        *ret_len = fh.length;
        *ret_mark = fh.length ? (char) p[0] : 0;
        free(p);
        return fh.type;
}

static void send_frame(int c, uint8_t type, const char *payload) {
        uint8_t h[HW_FRAME_HEADER_SIZE];
        size_t len = strlen(payload);

        hw_frame_header_pack(h, type, (uint32_t) len);
        ck_assert_int_eq(send(c, h, sizeof(h), MSG_NOSIGNAL), (ssize_t) sizeof(h));
        ck_assert_int_eq(send(c, payload, len, MSG_NOSIGNAL), (ssize_t) len);
}

static struct hw_transport_status status(void) {
        struct hw_transport_status st;

        hw_transport_get_status(&t, &st);
        return st;
}

/* Pump until the transport is (dis)connected as wanted. */
static void pump_until_connected(bool want) {
        double deadline = hw_now_monotonic() + 5;

        while (status().connected != want) {
                ck_assert_msg(hw_now_monotonic() < deadline, "transport never became %s",
                              want ? "connected" : "disconnected");
                pump();
                usleep(1000);
        }
}

START_TEST(test_no_daemon_queue_bounded) {
        struct hw_transport_status st;

        set_hello();
        pump(); /* connect fails: no socket file */
        ck_assert(!status().connected);

        for (int i = 0; i < HW_TRANSPORT_QUEUE_FRAMES; i++)
                enqueue(HW_FRAME_SAMPLE, 100, 'a');
        st = status();
        ck_assert_uint_eq(st.queued_frames, HW_TRANSPORT_QUEUE_FRAMES);
        ck_assert_uint_eq(st.samples_dropped_total, 0);

        for (int i = 0; i < 10; i++)
                enqueue(HW_FRAME_SAMPLE, 100, 'b');
        st = status();
        ck_assert_uint_eq(st.queued_frames, HW_TRANSPORT_QUEUE_FRAMES);
        ck_assert_uint_eq(st.samples_dropped_total, 10);

        /* the byte bound: frames of 100 KiB, at most 512 KiB queued */
        for (int i = 0; i < 10; i++)
                enqueue(HW_FRAME_SAMPLE, 100 * 1024, 'c');
        st = status();
        ck_assert_uint_le(t.queue_bytes, HW_TRANSPORT_QUEUE_BYTES);
        ck_assert_uint_eq(st.queued_frames, HW_TRANSPORT_QUEUE_BYTES / (100 * 1024 + HW_FRAME_HEADER_SIZE));

        hw_transport_close(&t); /* what is left is dropped, and counted */
        st = status();
        ck_assert_uint_eq(st.queued_frames, 0);
        ck_assert_uint_eq(st.samples_dropped_total, HW_TRANSPORT_QUEUE_FRAMES + 10 + 10); /* all of them */
}
END_TEST

START_TEST(test_backoff) {
        struct pollfd pfd;
        double wait, left, now = 1000.0, expect = HW_TRANSPORT_BACKOFF_MIN;

        set_hello();
        /* each failed attempt waits [b/2, b], b doubling from 0.1 s up to 5 s */
        for (int i = 0; i < 12; i++) {
                run_settled(now);
                hw_transport_poll_setup(&t, now, &pfd, &wait);
                ck_assert_int_eq(pfd.fd, -1);
                ck_assert_msg(wait >= expect / 2 - 1e-9 && wait <= expect + 1e-9, "attempt %d: wait %f, backoff %f", i,
                              wait, expect);
                /* not due yet: nothing happens */
                hw_transport_run(&t, now + wait / 2, 0);
                hw_transport_poll_setup(&t, now + wait / 2, &pfd, &left);
                ck_assert_double_eq_tol(left, wait / 2, 1e-9);
                now += wait;
                expect = expect * 2 > HW_TRANSPORT_BACKOFF_MAX ? HW_TRANSPORT_BACKOFF_MAX : expect * 2;
        }
}
END_TEST

START_TEST(test_no_hello_no_connect) {
        struct pollfd pfd;
        double wait;
        int lfd = listen_at(sock_path);

        /* without a HELLO there is nothing to say first: do not connect */
        enqueue(HW_FRAME_SAMPLE, 10, 's');
        hw_transport_run(&t, hw_now_monotonic(), 0);
        ck_assert(!status().connected);
        hw_transport_poll_setup(&t, hw_now_monotonic(), &pfd, &wait);
        ck_assert_int_eq(pfd.fd, -1);
        ck_assert(wait < 0);
        close(lfd);
}
END_TEST

START_TEST(test_hello_first_then_frames_in_order) {
        int lfd = listen_at(sock_path), c;
        size_t len;
        char mark;

        set_hello();
        enqueue(HW_FRAME_SAMPLE, 10, '1');
        enqueue(HW_FRAME_SAMPLE, 20, '2');
        c = accept_client(lfd);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        ck_assert_int_eq(mark, '1');
        enqueue(HW_FRAME_GOODBYE, 30, '3');
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        ck_assert_int_eq(mark, '2');
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_GOODBYE);
        ck_assert_int_eq(mark, '3');
        ck_assert_uint_eq(len, 30);
        pump();
        ck_assert(status().connected);
        ck_assert_uint_eq(status().samples_sent, 3);
        ck_assert_uint_eq(status().reconnects_total, 0);
        close(c);
        close(lfd);
}
END_TEST

START_TEST(test_welcome_and_unknown_types) {
        int lfd = listen_at(sock_path), c;
        size_t len;
        char mark;

        set_hello();
        c = accept_client(lfd);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        /* a future request type is ignored; the connection stays */
        send_frame(c, 100, "{\"census\": true}");
        send_frame(c, HW_FRAME_WELCOME, "{\"protocol\": 1, \"id\": \"4242-1234567\"}");
        for (int i = 0; i < 200 && !status().have_process_id; i++) {
                pump();
                usleep(1000);
        }
        ck_assert(status().have_process_id);
        ck_assert_str_eq(status().process_id, "4242-1234567");
        ck_assert(status().connected);
        ck_assert_uint_eq(status().protocol_errors_total, 0);

        enqueue(HW_FRAME_SAMPLE, 5, 'x');
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        close(c);
        close(lfd);
}
END_TEST

static void expect_protocol_error(const void *bytes, size_t n) {
        int lfd = listen_at(sock_path), c;
        size_t len;
        char mark;

        set_hello();
        c = accept_client(lfd);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        ck_assert_int_eq(send(c, bytes, n, MSG_NOSIGNAL), (ssize_t) n);
        pump_until_connected(false);
        ck_assert_uint_eq(status().protocol_errors_total, 1);
        close(c);
        close(lfd);
}

START_TEST(test_garbage_closes) {
        expect_protocol_error("garbage garbage!", 16);
}
END_TEST

START_TEST(test_bad_version_closes) {
        uint8_t h[HW_FRAME_HEADER_SIZE];

        hw_frame_header_pack(h, HW_FRAME_WELCOME, 2);
        h[4] = 2;
        expect_protocol_error(h, sizeof(h));
}
END_TEST

START_TEST(test_too_large_closes) {
        uint8_t h[HW_FRAME_HEADER_SIZE];

        hw_frame_header_pack(h, HW_FRAME_WELCOME, HW_FRAME_MAX_PAYLOAD + 1);
        expect_protocol_error(h, sizeof(h));
}
END_TEST

START_TEST(test_wrong_direction_closes) {
        uint8_t f[HW_FRAME_HEADER_SIZE + 2];

        hw_frame_header_pack(f, HW_FRAME_SAMPLE, 2); /* an agent -> daemon type from the daemon */
        memcpy(f + HW_FRAME_HEADER_SIZE, "{}", 2);
        expect_protocol_error(f, sizeof(f));
}
END_TEST

START_TEST(test_bad_welcome_closes) {
        uint8_t f[HW_FRAME_HEADER_SIZE + 8];

        hw_frame_header_pack(f, HW_FRAME_WELCOME, 8);
        memcpy(f + HW_FRAME_HEADER_SIZE, "{\"id\":1}", 8);
        expect_protocol_error(f, sizeof(f));
}
END_TEST

/* A daemon that welcomes and then fails does not bring the backoff down with its WELCOME: the
 * agent reconnected 12 times a second to one that sent garbage after it (found by review). */
START_TEST(test_welcome_then_garbage_backs_off) {
        static const char welcome[] = "{\"protocol\": 1, \"id\": \"4242-1234567\"}";
        uint8_t f[HW_FRAME_HEADER_SIZE + sizeof(welcome) - 1 + 16];
        int lfd = listen_at(sock_path);
        size_t len;
        char mark;

        hw_frame_header_pack(f, HW_FRAME_WELCOME, sizeof(welcome) - 1);
        memcpy(f + HW_FRAME_HEADER_SIZE, welcome, sizeof(welcome) - 1);
        memcpy(f + HW_FRAME_HEADER_SIZE + sizeof(welcome) - 1, "garbage garbage!", 16);
        set_hello();
        for (int round = 0; round < 4; round++) {
                int c = accept_client(lfd);

                ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
                ck_assert_int_eq(send(c, f, sizeof(f), MSG_NOSIGNAL), (ssize_t) sizeof(f));
                pump_until_connected(false);
                close(c);
        }
        ck_assert_uint_eq(status().protocol_errors_total, 4);
        ck_assert_double_ge(t.backoff, 16 * HW_TRANSPORT_BACKOFF_MIN - 1e-9);
        close(lfd);
}
END_TEST

START_TEST(test_reconnect_resends_hello_and_cut_frame) {
        int lfd = listen_at(sock_path), c;
        int small = 4096;
        size_t len, big = 200 * 1024;
        char mark;

        set_hello();
        c = accept_client(lfd);
        pump_until_connected(true);
        setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        setsockopt(t.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);

        /* the daemon stops reading: a big frame goes out only in part ("in flight") */
        enqueue(HW_FRAME_SAMPLE, big, 'B');
        for (int i = 0; i < 50; i++)
                pump();
        ck_assert(t.head_sent > 0 && t.head_sent < big + HW_FRAME_HEADER_SIZE);

        /* the queue overflows meanwhile: the in-flight frame is never the one dropped */
        for (int i = 0; i < HW_TRANSPORT_QUEUE_FRAMES + 5; i++)
                enqueue(HW_FRAME_SAMPLE, 10, (char) ('a' + i % 26));
        ck_assert_uint_eq(status().samples_dropped_total, 6);
        ck_assert_int_eq(t.queue[0].data[HW_FRAME_HEADER_SIZE], 'B');

        /* the daemon goes away and comes back */
        close(c);
        close(lfd);
        pump_until_connected(false);
        ck_assert_uint_eq(t.head_sent, 0);
        lfd = listen_at(sock_path);
        c = accept_client(lfd);
        pump_until_connected(true);
        ck_assert_uint_eq(status().reconnects_total, 1);

        /* HELLO again first, then the cut frame whole, then the rest in order */
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        ck_assert_uint_eq(len, big);
        ck_assert_int_eq(mark, 'B');
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        ck_assert_int_eq(mark, 'a' + 6 % 26); /* the 6 oldest small frames were dropped */
        close(c);
        close(lfd);
}
END_TEST

START_TEST(test_no_sigpipe) {
        int lfd = listen_at(sock_path), c;
        size_t len;
        char mark;

        signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill this test process */
        set_hello();
        c = accept_client(lfd);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        close(c);
        for (int i = 0; i < 20; i++) {
                enqueue(HW_FRAME_SAMPLE, 1000, 'p');
                pump();
        }
        ck_assert(!status().connected);
        close(lfd);
}
END_TEST

START_TEST(test_drain) {
        int lfd, c;
        size_t len;
        char mark;
        double t0;

        set_hello();
        enqueue(HW_FRAME_GOODBYE, 10, 'g');
        /* no daemon: gives up at once, not after the timeout */
        t0 = hw_now_monotonic();
        ck_assert_int_eq(hw_transport_drain(&t, 0.2), -ENOTCONN);
        ck_assert(hw_now_monotonic() - t0 < 0.1);

        /* a daemon: connects right away, whatever the backoff says, and writes everything */
        lfd = listen_at(sock_path);
        ck_assert_int_eq(hw_transport_drain(&t, 0.2), 0);
        c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(c, 0);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_GOODBYE);
        ck_assert_uint_eq(status().samples_sent, 1);
        close(c);

        /* a daemon that does not read: bounded by the timeout */
        hw_transport_close(&t);
        c = -1;
        enqueue(HW_FRAME_SAMPLE, 200 * 1024, 'x');
        enqueue(HW_FRAME_SAMPLE, 200 * 1024, 'y');
        t0 = hw_now_monotonic();
        ck_assert_int_eq(hw_transport_drain(&t, 0.15), -ETIMEDOUT);
        ck_assert(hw_now_monotonic() - t0 < 0.5);
        close(lfd);
}
END_TEST

START_TEST(test_forget_after_fork) {
        int lfd = listen_at(sock_path), c;
        size_t len;
        char mark;
        pid_t pid;
        int st;

        set_hello();
        c = accept_hello(lfd);

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hw_transport_forget_after_fork(&t);
                _exit(status().connected || status().queued_frames != 0 ? 1 : 0);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

        /* the parent's connection is untouched by the child closing its copy */
        enqueue(HW_FRAME_SAMPLE, 10, 'k');
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        ck_assert_int_eq(mark, 'k');
        ck_assert(status().connected);
        close(c);
        close(lfd);
}
END_TEST

/* Every way a heap report's stacks can be lost changes the stack generation (the heap profiler
 * then sends them again); what loses nothing leaves it alone. */
START_TEST(test_stacks_gen_changes_when_a_report_is_lost) {
        uint64_t g;

        set_hello();
        pump(); /* connect fails: no socket file */
        g = status().stacks_gen;
        for (int i = 0; i < HW_TRANSPORT_QUEUE_FRAMES; i++)
                enqueue(HW_FRAME_SAMPLE, 100, 'a');
        ck_assert_uint_eq(status().stacks_gen, g); /* all queued: nothing lost */

        enqueue(HW_FRAME_SAMPLE, 100, 'b'); /* the queue is full: the oldest sample goes */
        ck_assert_uint_eq(status().samples_dropped_total, 1);
        ck_assert_uint_gt(status().stacks_gen, g);

        g = status().stacks_gen;
        hw_transport_count_dropped(&t, 0);
        ck_assert_uint_eq(status().stacks_gen, g);
        hw_transport_count_dropped(&t, 1); /* a sample that never became a frame */
        ck_assert_uint_gt(status().stacks_gen, g);

        g = status().stacks_gen;
        hw_transport_stacks_lost(&t); /* a heap part left out of its sample */
        ck_assert_uint_gt(status().stacks_gen, g);

        g = status().stacks_gen;
        hw_transport_close(&t); /* what was queued is dropped */
        ck_assert_uint_gt(status().stacks_gen, g);

        /* a reset keeps the generation going: an old value never comes back */
        g = status().stacks_gen;
        ck_assert_int_eq(hw_transport_reset(&t, sock_path), 0);
        ck_assert_uint_eq(status().stacks_gen, g);
}
END_TEST

static void pump_until_stacks_gen_past(uint64_t g) {
        double deadline = hw_now_monotonic() + 5;

        while (status().stacks_gen == g) {
                ck_assert_msg(hw_now_monotonic() < deadline, "the stack generation never changed");
                pump();
                usleep(1000);
        }
}

/* A new connection, and the daemon's RESEND_STACKS, change the generation; the latter keeps the
 * connection. Sent frames change nothing. */
START_TEST(test_stacks_gen_new_connection_and_resend) {
        int lfd = listen_at(sock_path), c;
        uint64_t g = status().stacks_gen;
        size_t len;
        char mark;

        set_hello();
        c = accept_client(lfd);
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_HELLO);
        pump_until_connected(true);
        ck_assert_uint_gt(status().stacks_gen, g);

        g = status().stacks_gen;
        enqueue(HW_FRAME_SAMPLE, 10, 's');
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        ck_assert_uint_eq(status().stacks_gen, g);

        send_frame(c, HW_FRAME_RESEND_STACKS, "");
        pump_until_stacks_gen_past(g);
        ck_assert(status().connected);
        ck_assert_uint_eq(status().protocol_errors_total, 0);

        /* a payload on it (a later revision's) is skipped unread, the same */
        g = status().stacks_gen;
        send_frame(c, HW_FRAME_RESEND_STACKS, "{\"stacks\": [1, 2]}");
        pump_until_stacks_gen_past(g);
        enqueue(HW_FRAME_SAMPLE, 5, 'x');
        ck_assert_uint_eq(read_frame(c, &len, &mark), HW_FRAME_SAMPLE);
        ck_assert_int_eq(mark, 'x');
        ck_assert(status().connected);
        close(c);
        close(lfd);
}
END_TEST

/* n empty RESEND_STACKS frames in one send(). */
static void send_resends(int c, int n) {
        uint8_t *buf = calloc((size_t) n, HW_FRAME_HEADER_SIZE);

        ck_assert_ptr_nonnull(buf);
        for (int i = 0; i < n; i++)
                hw_frame_header_pack(buf + (size_t) i * HW_FRAME_HEADER_SIZE, HW_FRAME_RESEND_STACKS, 0);
        ck_assert_int_eq(send(c, buf, (size_t) n * HW_FRAME_HEADER_SIZE, MSG_NOSIGNAL),
                         (ssize_t) ((size_t) n * HW_FRAME_HEADER_SIZE));
        free(buf);
}

/* Frames from the daemon are read a buffer at a time, and a daemon that sends them faster than
 * a daemon ever needs is left: RESEND_STACKS back to back, read 12 bytes per recv() under the
 * transport's lock, took 0.8 of a core of the host's (found by review). */
START_TEST(test_daemon_frame_flood_closes) {
        int lfd = listen_at(sock_path), c;
        double deadline;
        uint64_t g;

        set_hello();
        c = accept_hello(lfd);
        pump_until_connected(true);

        /* a burst a daemon may send: all handled, the connection stays */
        g = status().stacks_gen;
        send_resends(c, (int) HW_TRANSPORT_RX_FRAMES_BURST - 4);
        deadline = hw_now_monotonic() + 5;
        while (t.rx_buf_pos < t.rx_buf_len || status().stacks_gen < g + (uint64_t) HW_TRANSPORT_RX_FRAMES_BURST - 4) {
                ck_assert_msg(hw_now_monotonic() < deadline, "the burst was not read");
                pump();
                usleep(1000);
        }
        ck_assert(status().connected);
        ck_assert_uint_eq(status().protocol_errors_total, 0);

        /* a flood: the connection is closed, counted, and tried again after the backoff */
        send_resends(c, 400);
        pump_until_connected(false);
        ck_assert_uint_eq(status().rx_floods_total, 1);
        ck_assert_uint_eq(status().protocol_errors_total, 1);
        ck_assert_double_gt(t.next_attempt, hw_now_monotonic() - 1);
        close(c);
        close(lfd);
}
END_TEST

/* A child of another user (nobody) listens at path: returns its pid; it listens until killed. */
static pid_t listen_as_nobody(const char *path) {
        int ready[2];
        char c;
        pid_t pid;

        ck_assert_int_eq(pipe(ready), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd;

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                fd = socket(AF_UNIX, SOCK_STREAM, 0);
                memcpy(sa.sun_path, path, strlen(path) + 1);
                if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
                        _exit(3);
                if (write(ready[1], "r", 1) != 1)
                        _exit(4);
                for (;;)
                        pause();
        }
        close(ready[1]);
        ck_assert_msg(read(ready[0], &c, 1) == 1, "the listener of another user did not start");
        close(ready[0]);
        return pid;
}

static void stop_listener(pid_t pid, const char *path) {
        int st;

        kill(pid, SIGKILL);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        unlink(path);
}

/* Samples go only to a listener of root, of our own user, or of the owner of a directory that
 * only its owner can write: another user could put a socket in a directory anyone may write
 * (HEAPWATCH_SOCKET=/tmp/...) and hear argv, stacks and type names (found by review). */
START_TEST(test_listener_of_another_user) {
        char sub[128], path[160];
        double deadline;

        if (geteuid() != 0) {
                /* CI runs the suite as root; this needs another uid to listen */
                fprintf(stderr, "test_listener_of_another_user: not root, cannot listen as another user\n");
                return;
        }
        set_hello();

        /* a directory anyone can write: another user's listener is refused */
        ck_assert_int_eq(chmod(dir, 01777), 0);
        pid_t pid = listen_as_nobody(sock_path);
        deadline = hw_now_monotonic() + 5;
        while (status().untrusted_listeners_total < 2) {
                ck_assert_msg(hw_now_monotonic() < deadline, "the listener of another user was not refused");
                ck_assert(!status().connected);
                pump();
                usleep(1000);
        }
        ck_assert_uint_eq(status().connects_total, 0);
        stop_listener(pid, sock_path);

        /* that user's own directory, which only it can write: its listener is the daemon */
        snprintf(sub, sizeof(sub), "%s/own", dir);
        snprintf(path, sizeof(path), "%s/agent.sock", sub);
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        ck_assert_int_eq(chown(sub, 65534, 65534), 0);
        ck_assert_int_eq(hw_transport_reset(&t, path), 0);
        set_hello();
        pid = listen_as_nobody(path);
        pump_until_connected(true);
        ck_assert_uint_eq(status().untrusted_listeners_total, 0);
        stop_listener(pid, path);
        rmdir(sub);
}
END_TEST

START_TEST(test_path_too_long) {
        char path[300];

        memset(path, 'p', sizeof(path) - 1);
        path[sizeof(path) - 1] = '\0';
        ck_assert_int_eq(hw_transport_reset(&t, path), -ENAMETOOLONG);
        set_hello();
        pump();
        ck_assert(!status().connected);
}
END_TEST

static Suite *transport_suite(void) {
        Suite *s = suite_create("agent-transport");
        TCase *tc = tcase_create("transport");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_no_daemon_queue_bounded);
        tcase_add_test(tc, test_backoff);
        tcase_add_test(tc, test_no_hello_no_connect);
        tcase_add_test(tc, test_hello_first_then_frames_in_order);
        tcase_add_test(tc, test_welcome_and_unknown_types);
        tcase_add_test(tc, test_garbage_closes);
        tcase_add_test(tc, test_bad_version_closes);
        tcase_add_test(tc, test_too_large_closes);
        tcase_add_test(tc, test_wrong_direction_closes);
        tcase_add_test(tc, test_bad_welcome_closes);
        tcase_add_test(tc, test_welcome_then_garbage_backs_off);
        tcase_add_test(tc, test_reconnect_resends_hello_and_cut_frame);
        tcase_add_test(tc, test_no_sigpipe);
        tcase_add_test(tc, test_drain);
        tcase_add_test(tc, test_forget_after_fork);
        tcase_add_test(tc, test_path_too_long);
        tcase_add_test(tc, test_listener_of_another_user);
        tcase_add_test(tc, test_daemon_frame_flood_closes);
        tcase_add_test(tc, test_stacks_gen_changes_when_a_report_is_lost);
        tcase_add_test(tc, test_stacks_gen_new_connection_and_resend);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(transport_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
