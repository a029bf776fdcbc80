/* SPDX-License-Identifier: MIT */
/*
 * The agent's connection to heapwatchd: a non-blocking AF_UNIX stream socket, a bounded queue
 * of whole outgoing frames, reconnection with jittered exponential backoff, and the reading of
 * what the daemon says (WELCOME, REQUEST, RESEND_STACKS; other daemon -> agent frame types are
 * ignored).
 *
 * Promises (the agent's promises to the host depend on them):
 *  - Nothing here blocks: sockets are SOCK_NONBLOCK, sends use MSG_DONTWAIT|MSG_NOSIGNAL (so a
 *    dead peer is an EPIPE, never a SIGPIPE), and connect() runs on a connector thread of its
 *    own (connector.h: the lookup of the socket's path can block on a hung file system).
 *    Waiting happens only in the caller's poll(), or in hw_transport_drain() for at most the
 *    time it is given.
 *  - The listener must be root, our own user, or the owner of a socket directory that only its
 *    owner can write (SO_PEERCRED); another is disconnected and counted.
 *  - Memory is bounded: at most HW_TRANSPORT_QUEUE_FRAMES frames / HW_TRANSPORT_QUEUE_BYTES
 *    bytes queued; when full, the oldest frame not being written is dropped and counted.
 *  - Every connection starts with the HELLO frame; a frame cut off by a dead connection is sent
 *    again whole on the next one.
 *  - The stack generation (stacks_gen) changes whenever a heap report's stacks may not have
 *    reached the daemon: a new connection, a SAMPLE or GOODBYE dropped (from the queue, or
 *    before it got there), a heap part left out (hw_transport_stacks_lost()), or the daemon's
 *    RESEND_STACKS. The heap profiler marks stacks sent per generation, so the next report
 *    sends them again (docs/protocol.md).
 *  - Bad input from the peer (bad header, a frame type outside the daemon -> agent range, a
 *    WELCOME that does not parse, frames faster than HW_TRANSPORT_RX_FRAMES_PER_SECOND) closes
 *    the connection; the agent reconnects later.
 *
 * All functions are thread-safe (one internal mutex, never held across a wait). `now` arguments
 * are CLOCK_MONOTONIC seconds (hw_now_monotonic()), passed in so tests can drive time.
 */
#pragma once

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "agent-sample.h"
#include "census.h"
#include "connector.h"
#include "heapwatch/protocol.h"

#define HW_TRANSPORT_QUEUE_FRAMES 64
#define HW_TRANSPORT_QUEUE_BYTES (512u * 1024u)
#define HW_TRANSPORT_REQUESTS_MAX 4 /* daemon requests waiting for the sampler thread */
/* Daemon -> agent frames: at most this many a second on average, this many at once (a daemon
 * sends a WELCOME, and a request or a RESEND_STACKS now and then); more closes the connection. */
#define HW_TRANSPORT_RX_FRAMES_PER_SECOND 20.0
#define HW_TRANSPORT_RX_FRAMES_BURST 64.0
#define HW_TRANSPORT_BACKOFF_MIN 0.1 /* seconds */
#define HW_TRANSPORT_BACKOFF_MAX 5.0
#define HW_TRANSPORT_PATH_MAX (sizeof(((struct sockaddr_un *) 0)->sun_path) - 1)

enum hw_transport_state {
        HW_TRANSPORT_DISCONNECTED,
        HW_TRANSPORT_CONNECT_WAITING, /* connect() runs on a connector thread (connector.h) */
        HW_TRANSPORT_CONNECTING,      /* connect() said EINPROGRESS */
        HW_TRANSPORT_CONNECTED,
};

struct hw_transport_frame {
        uint8_t *data;
        size_t size;
        uint8_t type;
};

struct hw_transport {
        pthread_mutex_t lock;

        char path[HW_TRANSPORT_PATH_MAX + 1];
        int fd;
        enum hw_transport_state state;
        double connected_at;
        double next_attempt; /* when disconnected: earliest next connect() */
        double backoff;      /* the delay after the next failure, before jitter */
        uint64_t rng;
        struct hw_connector *connector; /* while CONNECT_WAITING */
        double connect_started;          /* when the connector thread was started */
        struct hw_connector_result listener_dir; /* of the last connect: who may listen there */

        uint8_t *hello;
        size_t hello_size;
        size_t hello_sent; /* bytes of HELLO written on this connection */

        struct hw_transport_frame queue[HW_TRANSPORT_QUEUE_FRAMES + 1];
        size_t queue_len;
        size_t queue_bytes;
        size_t head_sent; /* bytes of queue[0] written on this connection ("in flight" if > 0) */

        uint8_t rx_buf[4096]; /* one recv()'s worth, consumed from rx_buf_pos */
        size_t rx_buf_len, rx_buf_pos;
        double rx_tokens, rx_tokens_at; /* the bucket of daemon frames */
        uint8_t rx_header[HW_FRAME_HEADER_SIZE];
        size_t rx_header_len;
        struct hw_frame_header rx_frame;
        uint8_t *rx_payload; /* only for frames we read (WELCOME, REQUEST); others are skipped */
        size_t rx_payload_len;

        uint64_t connects_total;
        uint64_t reconnects_total;
        uint64_t samples_sent;
        uint64_t samples_dropped_total;
        uint64_t protocol_errors_total;
        uint64_t untrusted_listeners_total; /* connections dropped: listener of another user */
        uint64_t rx_floods_total; /* connections dropped: the daemon sent frames too fast */
        /* Changes whenever stacks sent may have been lost (see above). Never reset, not even by
         * hw_transport_reset(), so a value never comes back within a process. */
        uint64_t stacks_gen;
        /* REQUESTs decoded and waiting for the sampler thread (hw_transport_take_request());
         * dropped with the connection they came on. Beyond the bound they are refused. */
        struct hw_request requests[HW_TRANSPORT_REQUESTS_MAX];
        size_t n_requests;
        uint64_t requests_total;
        uint64_t requests_dropped_total;
        bool have_process_id;
        char process_id[HW_AGENT_ID_MAX + 1];
};

struct hw_transport_status {
        bool connected;
        char path[HW_TRANSPORT_PATH_MAX + 1];
        bool have_process_id;
        char process_id[HW_AGENT_ID_MAX + 1];
        uint64_t samples_sent;
        uint64_t samples_dropped_total;
        uint64_t connects_total; /* connections made since the reset */
        uint64_t reconnects_total;
        uint64_t protocol_errors_total;
        uint64_t untrusted_listeners_total;
        uint64_t rx_floods_total;
        bool connect_waiting; /* a connect() has not returned yet (a hung file system?) */
        uint64_t requests_total;
        uint64_t requests_dropped_total;
        size_t queued_frames;
        uint64_t stacks_gen; /* the generation to mark stacks sent in (see above) */
};

/* Initialise (including the mutex) for the socket at path (NULL: none yet).
 * Returns 0, -ENAMETOOLONG, or -errno from pthread_mutex_init. */
int hw_transport_init(struct hw_transport *t, const char *path);

/* Disconnect, free HELLO and queue, zero the counters and use a new path; the mutex is kept
 * (it may be locked by a fork handler at any time, so it lives as long as the object).
 * Returns 0 or -ENAMETOOLONG (then the path is empty and nothing connects). */
int hw_transport_reset(struct hw_transport *t, const char *path);

/* hw_transport_reset() and destroy the mutex. */
void hw_transport_destroy(struct hw_transport *t);

/* In a child after fork(): close the inherited socket without a word to the peer (it is the
 * parent's connection), drop everything queued, zero the counters. The lock must be free (the
 * agent's fork handlers hold it across fork() and release it). */
void hw_transport_forget_after_fork(struct hw_transport *t);

/* Set the frame sent first on every connection. Takes ownership of frame (malloc'd). */
void hw_transport_set_hello(struct hw_transport *t, uint8_t *frame, size_t size);

/* Queue a whole frame. Takes ownership of frame (malloc'd); when the queue is full, the oldest
 * frame not being written is dropped and, if it was a SAMPLE/GOODBYE, counted. */
void hw_transport_enqueue(struct hw_transport *t, uint8_t type, uint8_t *frame, size_t size);

/* Count samples that were lost before becoming a frame (e.g. out of memory); their heap
 * reports' stacks count as lost too. */
void hw_transport_count_dropped(struct hw_transport *t, uint64_t n);

/* A sample goes without its heap part (too big for a frame): the stacks it was to carry are
 * lost, change the stack generation. */
void hw_transport_stacks_lost(struct hw_transport *t);

/* What to wait for: fills *ret_pfd (fd -1 when nothing to watch) and *ret_timeout (seconds
 * until the next reconnection attempt is due; -1 for none). */
void hw_transport_poll_setup(struct hw_transport *t, double now, struct pollfd *ret_pfd, double *ret_timeout);

/* Do what is due without blocking: connect when the backoff allows, finish a pending connect,
 * read and handle incoming frames (revents from poll(), 0 if none), write queued frames. */
void hw_transport_run(struct hw_transport *t, double now, short revents);

/* Try hard, for at most timeout seconds, to get everything queued to the daemon: connect now
 * (ignoring the backoff, once), write, and wait in poll() for the socket to accept more.
 * Returns 0 when all was written, -ETIMEDOUT, or -ENOTCONN (no daemon). */
int hw_transport_drain(struct hw_transport *t, double timeout);

/* Before fork(), with the sampler thread paused: a connect begun less than max_age seconds ago
 * is waited for until then, and its result taken (its thread joined), so that no thread of ours
 * is half-way through its exit at fork() (an ASan child hung at its own thread's exit). An
 * older attempt (a hung mount) is left as it is. */
void hw_transport_settle_connect(struct hw_transport *t, double max_age);

/* Close the connection and drop what is queued, counting dropped samples. The HELLO and the
 * counters stay. */
void hw_transport_close(struct hw_transport *t);

void hw_transport_get_status(struct hw_transport *t, struct hw_transport_status *ret);

/* Take the oldest REQUEST the daemon sent on the current connection, if any. Returns true and
 * fills *ret, or false. A REQUEST arriving while HW_TRANSPORT_REQUESTS_MAX wait is dropped and
 * counted (the daemon times it out). */
bool hw_transport_take_request(struct hw_transport *t, struct hw_request *ret);
