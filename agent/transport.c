/* SPDX-License-Identifier: MIT */
/*
 * The agent's connection to heapwatchd (see transport.h for the promises).
 *
 * The queue is a plain array of at most HW_TRANSPORT_QUEUE_FRAMES (+1) frames: it is short and
 * a memmove of 64 pointers per sent frame costs nothing next to the send() itself.
 */
#include "agent-util.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "connector.h"
#include "encode.h"
#include "transport.h"

/* Read at most this much per hw_transport_run(), so a peer that streams data cannot keep the
 * sampler thread from sampling. */
#define RX_BUDGET_BYTES (1024u * 1024u)

static bool is_sample_type(uint8_t type) {
        return type == HW_FRAME_SAMPLE || type == HW_FRAME_GOODBYE;
}

/* xorshift64*: jitter only needs to keep a fleet of agents from reconnecting in lockstep. */
static double rand01(struct hw_transport *t) {
        uint64_t x = t->rng;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        t->rng = x;
        return (double) ((x * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

static void seed_rng(struct hw_transport *t) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        t->rng = ((uint64_t) getpid() << 32) ^ (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^
                 (uint64_t) (uintptr_t) t;
        if (t->rng == 0)
                t->rng = 0x9E3779B97F4A7C15ull;
}

/* Frame types whose payload we read (the others are skipped unread), and their bounds. */
static bool rx_wanted(uint8_t type) {
        return type == HW_FRAME_WELCOME || type == HW_FRAME_REQUEST;
}

/* Forget the frame being read (handled, or the connection ends). */
static void rx_frame_reset(struct hw_transport *t) {
        free(t->rx_payload);
        t->rx_payload = NULL;
        t->rx_payload_len = 0;
        t->rx_header_len = 0;
}

/* A new connection, or none: nothing read, a full bucket of daemon frames. */
static void rx_reset(struct hw_transport *t) {
        rx_frame_reset(t);
        t->rx_buf_len = t->rx_buf_pos = 0;
        t->rx_tokens = HW_TRANSPORT_RX_FRAMES_BURST;
        t->rx_tokens_at = 0;
}

static void queue_pop(struct hw_transport *t, size_t index) {
        free(t->queue[index].data);
        t->queue_bytes -= t->queue[index].size;
        memmove(&t->queue[index], &t->queue[index + 1], (t->queue_len - index - 1) * sizeof(t->queue[0]));
        t->queue_len--;
}

/* A SAMPLE or GOODBYE that will never be sent: count it, and since it may have carried a heap
 * report's stacks (marked sent when the report was built), change the stack generation so the
 * next report sends them again. Without this a site stayed unknown to the daemon until the
 * next reconnection. */
static void sample_lost(struct hw_transport *t) {
        t->samples_dropped_total++;
        t->stacks_gen++;
}

static void queue_clear(struct hw_transport *t, bool count) {
        while (t->queue_len > 0) {
                if (count && is_sample_type(t->queue[0].type))
                        sample_lost(t);
                queue_pop(t, 0);
        }
        t->head_sent = 0;
}

static void schedule_retry(struct hw_transport *t, double now) {
        /* "equal jitter": somewhere in [backoff/2, backoff] */
        t->next_attempt = now + t->backoff * (0.5 + 0.5 * rand01(t));
        t->backoff = fmin(t->backoff * 2, HW_TRANSPORT_BACKOFF_MAX);
}

/* Let go of a connect still under way on its thread (it closes its socket when it returns). */
static void connector_drop(struct hw_transport *t) {
        hw_connector_release(t->connector);
        t->connector = NULL;
}

/* Drop the connection; what was cut off mid-frame goes again whole on the next one. */
static void disconnect(struct hw_transport *t, double now, bool retry) {
        connector_drop(t);
        t->fd = hw_safe_close(t->fd);
        if (t->state == HW_TRANSPORT_CONNECTED && now - t->connected_at >= HW_TRANSPORT_BACKOFF_MAX)
                t->backoff = HW_TRANSPORT_BACKOFF_MIN; /* it was a healthy connection */
        t->state = HW_TRANSPORT_DISCONNECTED;
        t->hello_sent = 0;
        t->head_sent = 0;
        t->n_requests = 0; /* their ids belong to the connection that ends */
        rx_reset(t);
        if (retry)
                schedule_retry(t, now);
}

static void protocol_error(struct hw_transport *t, double now) {
        t->protocol_errors_total++;
        disconnect(t, now, true);
}

/* Whether the process listening on the socket may hear what we say (samples carry argv, stacks
 * and type names; requests make us walk the heap): root, our own user, or the owner of a
 * directory only its owner can create files in. With HEAPWATCH_SOCKET or XDG_RUNTIME_DIR
 * pointing at a directory others can write, another user could otherwise put a socket there
 * and listen (found by review). A socket systemd made (heapwatchd.socket) was listen()ed by
 * root: SO_PEERCRED reports the credentials of listen() time. */
static bool listener_trusted(const struct hw_transport *t) {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(t->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
                return false;
        return cred.uid == 0 || cred.uid == geteuid() ||
               (t->listener_dir.dir_known && t->listener_dir.dir_private && cred.uid == t->listener_dir.dir_owner);
}

static void connected(struct hw_transport *t, double now) {
        if (!listener_trusted(t)) {
                t->untrusted_listeners_total++;
                disconnect(t, now, true);
                return;
        }
        t->state = HW_TRANSPORT_CONNECTED;
        t->connected_at = now;
        t->hello_sent = 0;
        t->head_sent = 0;
        rx_reset(t);
        if (t->connects_total++ > 0)
                t->reconnects_total++;
        t->stacks_gen++; /* a new daemon connection knows no stacks yet */
}

/* Start a connect on its own thread (agent/connector.h: the path's lookup can block). */
static void try_connect(struct hw_transport *t, double now) {
        if (!t->path[0] || !t->hello)
                return;
        if (hw_connector_start(t->path, &t->connector) < 0) {
                t->connector = NULL; /* EAGAIN: threads stuck on earlier attempts; later */
                schedule_retry(t, now);
                return;
        }
        t->state = HW_TRANSPORT_CONNECT_WAITING;
        t->connect_started = now;
}

/* The connector thread's result, if it is there. */
static void finish_waiting(struct hw_transport *t, double now) {
        struct hw_connector_result r;

        if (!hw_connector_take(t->connector, &r))
                return;
        connector_drop(t);
        t->listener_dir = r;
        t->listener_dir.fd = -1;
        if (r.error == 0) {
                t->fd = r.fd;
                connected(t, now);
        } else if (r.error == EINPROGRESS) {
                t->fd = r.fd;
                t->state = HW_TRANSPORT_CONNECTING;
        } else {
                t->state = HW_TRANSPORT_DISCONNECTED;
                schedule_retry(t, now);
        }
}

static void finish_connect(struct hw_transport *t, double now) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
                disconnect(t, now, true);
                return;
        }
        connected(t, now);
}

static void handle_frame(struct hw_transport *t, double now) {
        if (t->rx_frame.type == HW_FRAME_WELCOME) {
                char id[HW_AGENT_ID_MAX + 1];

                if (hw_decode_welcome(t->rx_payload, t->rx_frame.length, id) < 0) {
                        protocol_error(t, now);
                        return;
                }
                memcpy(t->process_id, id, sizeof(id));
                t->have_process_id = true;
                /* the backoff is not reset here: a daemon that welcomes and then fails (garbage,
                 * a close) made us reconnect 12 times a second (found by review); disconnect()
                 * resets it after a connection that lasted */
        }
        if (t->rx_frame.type == HW_FRAME_REQUEST) {
                struct hw_request req;

                if (hw_request_decode(t->rx_payload, t->rx_frame.length, &req) < 0) {
                        protocol_error(t, now);
                        return;
                }
                t->requests_total++;
                if (t->n_requests < HW_TRANSPORT_REQUESTS_MAX)
                        t->requests[t->n_requests++] = req;
                else
                        t->requests_dropped_total++;
        }
        if (t->rx_frame.type == HW_FRAME_RESEND_STACKS)
                t->stacks_gen++; /* the daemon lost a report (dropped it, or had no room) */
        /* other daemon -> agent types (64..127): requests of later protocol revisions; ignored */
        rx_frame_reset(t);
}

/* Daemon frames take from a bucket refilled at HW_TRANSPORT_RX_FRAMES_PER_SECOND, at most
 * HW_TRANSPORT_RX_FRAMES_BURST at once: returns false when it is empty. */
static bool rx_frame_allowed(struct hw_transport *t, double now) {
        if (now > t->rx_tokens_at) {
                t->rx_tokens += (now - t->rx_tokens_at) * HW_TRANSPORT_RX_FRAMES_PER_SECOND;
                if (t->rx_tokens > HW_TRANSPORT_RX_FRAMES_BURST)
                        t->rx_tokens = HW_TRANSPORT_RX_FRAMES_BURST;
                t->rx_tokens_at = now;
        }
        if (t->rx_tokens < 1)
                return false;
        t->rx_tokens -= 1;
        return true;
}

/* A whole frame header is in rx_header: check it. Returns false when the connection went away. */
static bool rx_header_done(struct hw_transport *t, double now) {
        if (hw_frame_header_unpack(t->rx_header, &t->rx_frame) != HW_HEADER_OK || t->rx_frame.type < 64 ||
            t->rx_frame.type > 127 ||
            (t->rx_frame.type == HW_FRAME_REQUEST && t->rx_frame.length > HW_REQUEST_MAX_PAYLOAD)) {
                protocol_error(t, now);
                return false;
        }
        if (!rx_frame_allowed(t, now)) {
                /* a daemon that floods us costs the host a core (found by review: RESEND_STACKS
                 * back to back took 0.8 of one): it is misbehaving, and is left for a while */
                t->rx_floods_total++;
                protocol_error(t, now);
                return false;
        }
        if (rx_wanted(t->rx_frame.type)) {
                t->rx_payload = malloc(t->rx_frame.length ? t->rx_frame.length : 1);
                if (!t->rx_payload) {
                        disconnect(t, now, true);
                        return false;
                }
        }
        return true;
}

/* Take what rx_buf holds into the frame being read; handle whole frames. Returns false when the
 * connection went away. */
static bool rx_consume(struct hw_transport *t, double now) {
        while (t->rx_buf_pos < t->rx_buf_len) {
                size_t avail = t->rx_buf_len - t->rx_buf_pos, n;
                const uint8_t *src = t->rx_buf + t->rx_buf_pos;

                if (t->rx_header_len < HW_FRAME_HEADER_SIZE) {
                        n = HW_FRAME_HEADER_SIZE - t->rx_header_len;
                        n = n < avail ? n : avail;
                        memcpy(t->rx_header + t->rx_header_len, src, n);
                        t->rx_header_len += n;
                        t->rx_buf_pos += n;
                        if (t->rx_header_len < HW_FRAME_HEADER_SIZE || !rx_header_done(t, now))
                                continue; /* more to come, or the loop ends: rx_buf was reset */
                } else {
                        n = t->rx_frame.length - t->rx_payload_len;
                        n = n < avail ? n : avail;
                        if (t->rx_payload)
                                memcpy(t->rx_payload + t->rx_payload_len, src, n);
                        /* else skipped unread: a type we do not read */
                        t->rx_payload_len += n;
                        t->rx_buf_pos += n;
                }
                if (t->rx_header_len == HW_FRAME_HEADER_SIZE && t->rx_payload_len == t->rx_frame.length) {
                        handle_frame(t, now);
                        if (t->state != HW_TRANSPORT_CONNECTED)
                                return false;
                }
        }
        return t->state == HW_TRANSPORT_CONNECTED;
}

/* Read what the daemon sent, a buffer at a time (one recv() for many small frames), at most
 * RX_BUDGET_BYTES per call. Returns false when the connection went away. */
static bool do_read(struct hw_transport *t, double now) {
        size_t budget = RX_BUDGET_BYTES;

        while (budget > 0) {
                ssize_t n = recv(t->fd, t->rx_buf, sizeof(t->rx_buf), MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return true;
                        disconnect(t, now, true);
                        return false;
                }
                if (n == 0) {
                        disconnect(t, now, true); /* the daemon closed (or restarts) */
                        return false;
                }
                budget -= (size_t) n < budget ? (size_t) n : budget;
                t->rx_buf_len = (size_t) n;
                t->rx_buf_pos = 0;
                if (!rx_consume(t, now))
                        return false;
        }
        return true;
}

static void do_write(struct hw_transport *t, double now) {
        while (t->state == HW_TRANSPORT_CONNECTED) {
                const uint8_t *buf;
                size_t left;
                ssize_t n;
                bool hello = t->hello_sent < t->hello_size;

                if (hello) {
                        buf = t->hello + t->hello_sent;
                        left = t->hello_size - t->hello_sent;
                } else if (t->queue_len > 0) {
                        buf = t->queue[0].data + t->head_sent;
                        left = t->queue[0].size - t->head_sent;
                } else
                        return;

                n = send(t->fd, buf, left, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                disconnect(t, now, true); /* EPIPE, ECONNRESET, ... */
                        return;
                }
                if (hello)
                        t->hello_sent += (size_t) n;
                else {
                        t->head_sent += (size_t) n;
                        if (t->head_sent == t->queue[0].size) {
                                if (is_sample_type(t->queue[0].type))
                                        t->samples_sent++;
                                queue_pop(t, 0);
                                t->head_sent = 0;
                        }
                }
        }
}

static void run_locked(struct hw_transport *t, double now, short revents) {
        if (t->state == HW_TRANSPORT_DISCONNECTED && now >= t->next_attempt)
                try_connect(t, now);
        if (t->state == HW_TRANSPORT_CONNECT_WAITING) {
                finish_waiting(t, now);
                revents = 0; /* they were the connector's eventfd's, not the socket's */
        } else if (t->state == HW_TRANSPORT_CONNECTING && (revents & (POLLOUT | POLLERR | POLLHUP)))
                finish_connect(t, now);

        if (t->state != HW_TRANSPORT_CONNECTED)
                return;
        if ((revents & (POLLIN | POLLERR | POLLHUP)) && !do_read(t, now))
                return;
        do_write(t, now);
}

static bool has_output(const struct hw_transport *t) {
        return t->hello_sent < t->hello_size || t->queue_len > 0;
}

static void setup_locked(struct hw_transport *t, double now, struct pollfd *ret_pfd, double *ret_timeout) {
        ret_pfd->fd = -1;
        ret_pfd->events = 0;
        ret_pfd->revents = 0;
        *ret_timeout = -1;

        switch (t->state) {
        case HW_TRANSPORT_DISCONNECTED:
                if (t->hello && t->path[0])
                        *ret_timeout = t->next_attempt > now ? t->next_attempt - now : 0;
                break;
        case HW_TRANSPORT_CONNECT_WAITING:
                ret_pfd->fd = hw_connector_event_fd(t->connector);
                ret_pfd->events = POLLIN;
                break;
        case HW_TRANSPORT_CONNECTING:
                ret_pfd->fd = t->fd;
                ret_pfd->events = POLLOUT;
                break;
        case HW_TRANSPORT_CONNECTED:
                ret_pfd->fd = t->fd;
                ret_pfd->events = POLLIN | (has_output(t) ? POLLOUT : 0);
                break;
        }
}

static int set_path(struct hw_transport *t, const char *path) {
        size_t len = path ? strlen(path) : 0;

        if (len > HW_TRANSPORT_PATH_MAX) {
                t->path[0] = '\0';
                return -ENAMETOOLONG;
        }
        memcpy(t->path, path ? path : "", len + 1);
        return 0;
}

static void reset_locked(struct hw_transport *t) {
        connector_drop(t);
        t->fd = hw_safe_close(t->fd);
        t->state = HW_TRANSPORT_DISCONNECTED;
        free(t->hello);
        t->hello = NULL;
        t->hello_size = t->hello_sent = 0;
        queue_clear(t, false);
        rx_reset(t);
        t->connected_at = 0;
        t->next_attempt = 0;
        t->backoff = HW_TRANSPORT_BACKOFF_MIN;
        t->connects_total = t->reconnects_total = 0;
        t->samples_sent = t->samples_dropped_total = t->protocol_errors_total = 0;
        t->untrusted_listeners_total = 0;
        t->rx_floods_total = 0;
        t->n_requests = 0;
        t->requests_total = t->requests_dropped_total = 0;
        t->have_process_id = false;
        t->process_id[0] = '\0';
        seed_rng(t);
}

int hw_transport_init(struct hw_transport *t, const char *path) {
        int r;

        memset(t, 0, sizeof(*t));
        t->fd = -1;
        r = pthread_mutex_init(&t->lock, NULL);
        if (r != 0)
                return -r;
        reset_locked(t);
        return set_path(t, path);
}

int hw_transport_reset(struct hw_transport *t, const char *path) {
        int r;

        pthread_mutex_lock(&t->lock);
        reset_locked(t);
        r = set_path(t, path);
        pthread_mutex_unlock(&t->lock);
        return r;
}

void hw_transport_destroy(struct hw_transport *t) {
        pthread_mutex_lock(&t->lock);
        reset_locked(t);
        pthread_mutex_unlock(&t->lock);
        pthread_mutex_destroy(&t->lock);
}

void hw_transport_forget_after_fork(struct hw_transport *t) {
        /* The lock is free here: the agent's fork handlers hold it across fork() and release it
         * in the child (agent/module.c), so no thread of the parent's can have left it taken. */
        pthread_mutex_lock(&t->lock);
        t->connector = NULL; /* its thread is the parent's; hw_connector_forget_all_after_fork() */
        reset_locked(t);
        pthread_mutex_unlock(&t->lock);
}

void hw_transport_set_hello(struct hw_transport *t, uint8_t *frame, size_t size) {
        pthread_mutex_lock(&t->lock);
        free(t->hello);
        t->hello = frame;
        t->hello_size = frame ? size : 0;
        t->hello_sent = 0;
        pthread_mutex_unlock(&t->lock);
}

void hw_transport_enqueue(struct hw_transport *t, uint8_t type, uint8_t *frame, size_t size) {
        pthread_mutex_lock(&t->lock);
        while (t->queue_len > 0 &&
               (t->queue_len >= HW_TRANSPORT_QUEUE_FRAMES || t->queue_bytes + size > HW_TRANSPORT_QUEUE_BYTES)) {
                /* Drop the oldest frame that is not half-written: cutting the one on the wire
                 * would desynchronise the stream. */
                size_t victim = (t->state == HW_TRANSPORT_CONNECTED && t->head_sent > 0) ? 1 : 0;

                if (victim >= t->queue_len)
                        break; /* only the in-flight frame is left: allow one over the limit */
                if (is_sample_type(t->queue[victim].type))
                        sample_lost(t);
                queue_pop(t, victim);
        }
        t->queue[t->queue_len++] = (struct hw_transport_frame) { .data = frame, .size = size, .type = type };
        t->queue_bytes += size;
        pthread_mutex_unlock(&t->lock);
}

void hw_transport_count_dropped(struct hw_transport *t, uint64_t n) {
        pthread_mutex_lock(&t->lock);
        t->samples_dropped_total += n;
        if (n > 0)
                t->stacks_gen++;
        pthread_mutex_unlock(&t->lock);
}

void hw_transport_stacks_lost(struct hw_transport *t) {
        pthread_mutex_lock(&t->lock);
        t->stacks_gen++;
        pthread_mutex_unlock(&t->lock);
}

void hw_transport_poll_setup(struct hw_transport *t, double now, struct pollfd *ret_pfd, double *ret_timeout) {
        pthread_mutex_lock(&t->lock);
        setup_locked(t, now, ret_pfd, ret_timeout);
        pthread_mutex_unlock(&t->lock);
}

void hw_transport_run(struct hw_transport *t, double now, short revents) {
        pthread_mutex_lock(&t->lock);
        run_locked(t, now, revents);
        pthread_mutex_unlock(&t->lock);
}

int hw_transport_drain(struct hw_transport *t, double timeout) {
        double deadline = hw_now_monotonic() + timeout;
        bool attempted = false;

        for (;;) {
                struct pollfd pfd;
                double now = hw_now_monotonic(), wait;
                bool done;
                int ms;

                pthread_mutex_lock(&t->lock);
                if (t->state == HW_TRANSPORT_DISCONNECTED) {
                        if (attempted || !t->hello || !t->path[0]) {
                                pthread_mutex_unlock(&t->lock);
                                return -ENOTCONN;
                        }
                        t->next_attempt = now; /* ignore the backoff: this is the last chance */
                        attempted = true;
                }
                run_locked(t, now, 0);
                done = t->state == HW_TRANSPORT_CONNECTED && !has_output(t);
                setup_locked(t, now, &pfd, &wait);
                pthread_mutex_unlock(&t->lock);

                if (done)
                        return 0;
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (pfd.fd < 0)
                        continue; /* disconnected: the next round gives up */

                ms = (int) ceil((deadline - now) * 1000);
                if (poll(&pfd, 1, ms > 0 ? ms : 1) < 0 && errno != EINTR)
                        return -errno;
                if (pfd.revents) {
                        pthread_mutex_lock(&t->lock);
                        run_locked(t, hw_now_monotonic(), pfd.revents);
                        pthread_mutex_unlock(&t->lock);
                }
        }
}

void hw_transport_settle_connect(struct hw_transport *t, double max_age) {
        for (;;) {
                struct pollfd pfd = { .fd = -1, .events = POLLIN };
                double now = hw_now_monotonic(), left;

                pthread_mutex_lock(&t->lock);
                if (t->state == HW_TRANSPORT_CONNECT_WAITING)
                        finish_waiting(t, now);
                if (t->state == HW_TRANSPORT_CONNECT_WAITING)
                        pfd.fd = hw_connector_event_fd(t->connector);
                left = t->connect_started + max_age - now;
                pthread_mutex_unlock(&t->lock);
                if (pfd.fd < 0 || left <= 0)
                        return;
                /* the job's eventfd stays open: only this thread or the paused sampler drops it */
                (void) poll(&pfd, 1, (int) ceil(left * 1000));
        }
}

void hw_transport_close(struct hw_transport *t) {
        pthread_mutex_lock(&t->lock);
        disconnect(t, hw_now_monotonic(), false);
        queue_clear(t, true);
        pthread_mutex_unlock(&t->lock);
}

void hw_transport_get_status(struct hw_transport *t, struct hw_transport_status *ret) {
        pthread_mutex_lock(&t->lock);
        ret->connected = t->state == HW_TRANSPORT_CONNECTED;
        memcpy(ret->path, t->path, sizeof(ret->path));
        ret->have_process_id = t->have_process_id;
        memcpy(ret->process_id, t->process_id, sizeof(ret->process_id));
        ret->samples_sent = t->samples_sent;
        ret->samples_dropped_total = t->samples_dropped_total;
        ret->connects_total = t->connects_total;
        ret->reconnects_total = t->reconnects_total;
        ret->protocol_errors_total = t->protocol_errors_total;
        ret->untrusted_listeners_total = t->untrusted_listeners_total;
        ret->rx_floods_total = t->rx_floods_total;
        ret->requests_total = t->requests_total;
        ret->requests_dropped_total = t->requests_dropped_total;
        ret->connect_waiting = t->state == HW_TRANSPORT_CONNECT_WAITING;
        ret->queued_frames = t->queue_len;
        ret->stacks_gen = t->stacks_gen;
        pthread_mutex_unlock(&t->lock);
}

bool hw_transport_take_request(struct hw_transport *t, struct hw_request *ret) {
        bool have;

        pthread_mutex_lock(&t->lock);
        have = t->n_requests > 0;
        if (have) {
                *ret = t->requests[0];
                memmove(&t->requests[0], &t->requests[1], (t->n_requests - 1) * sizeof(t->requests[0]));
                t->n_requests--;
        }
        pthread_mutex_unlock(&t->lock);
        return have;
}
