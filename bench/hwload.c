/* SPDX-License-Identifier: MIT */
/*
 * Load generator speaking the real agent protocol (include/heapwatch/protocol.h; payloads
 * shaped as agent/encode.c writes them), for the load/soak benchmark (bench/load_bench.py,
 * `make bench-load`), the CI soak test (tests/e2e/test_soak.py) and the durable-history
 * benchmark (bench/store_bench.py).
 *
 * Each simulated agent is a forked child with one connection: the daemon names a process by
 * its kernel pid and start time (SO_PEERCRED, daemon/registry.c), and a second connection from
 * the same pid retires the first, so N records need N processes. A child is a few pages of
 * memory and sleeps between samples; 1000 of them cost little. Each says HELLO, then sends a
 * SAMPLE every interval on an absolute schedule (starts spread over one interval so the load is
 * even), then a GOODBYE (reason "exit"). Values move like a real process's: RSS with a GC
 * sawtooth and a mean-reverting wander, GC counters that climb, pauses that vary, and a heap
 * report (top sites, stacks interned once per connection) in every sample. Every
 * --leak-every-th agent leaks: its RSS, Python blocks and one heap site grow steadily, so the
 * daemon has findings to serve.
 *
 * Children report what they sent through a pipe (one record each, smaller than PIPE_BUF so
 * writes are atomic); the parent prints one JSON object with the totals when all are done, so a
 * driver can compare them with the daemon's frames_received counters (frames lost).
 *
 *   hwload --socket PATH [--agents N] [--seconds S] [--interval I] [--leak-every K]
 *          [--leak-bytes-per-second B] [--sites N]
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapwatch/protocol.h"

#define AGENTS_MAX 20000u
#define SITES_MAX 32u /* what the agent sends at most per report */
#define CONNECT_ATTEMPTS 200u /* 10 s of retries while the listen backlog is full */

typedef struct LoadOptions {
        const char *socket_path;
        unsigned agents;
        double seconds;
        double interval;
        unsigned leak_every; /* 0: nobody leaks */
        double leak_bytes_per_second;
        unsigned sites;
} LoadOptions;

/* One child's account, written to the parent in one write(). */
typedef struct AgentReport {
        uint32_t index;
        uint32_t connected;        /* 0 or 1 */
        uint32_t connect_retries;  /* ECONNREFUSED/EAGAIN while the backlog was full */
        uint32_t hellos, samples, goodbyes;
        uint32_t send_failed;      /* the daemon closed the connection under us */
        uint32_t late;             /* samples sent more than one interval behind schedule */
        double late_max_seconds;   /* the furthest behind schedule a sample was sent */
} AgentReport;

typedef struct Buf {
        char data[HW_FRAME_MAX_PAYLOAD / 4];
        size_t len;
        bool overflow;
} Buf;

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        if (b->overflow)
                return;
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, sizeof b->data - b->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof b->data - b->len)
                b->overflow = true;
        else
                b->len += (size_t) n;
}

static double mono_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double unix_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void sleep_until(double mono) {
        struct timespec ts = { .tv_sec = (time_t) mono, .tv_nsec = (long) ((mono - (double) (time_t) mono) * 1e9) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

static int send_all(int fd, const void *p, size_t len) {
        const char *c = p;
        while (len > 0) {
                ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                c += n;
                len -= (size_t) n;
        }
        return 0;
}

static int send_frame(int fd, uint8_t type, const Buf *b) {
        uint8_t hdr[HW_FRAME_HEADER_SIZE];

        if (b->overflow)
                return -1;
        hw_frame_header_pack(hdr, type, (uint32_t) b->len);
        if (send_all(fd, hdr, sizeof hdr) < 0)
                return -1;
        return send_all(fd, b->data, b->len);
}

/* The daemon answers HELLO with WELCOME; read and discard whatever it sends so its writes
 * never meet a full buffer. */
static void drain(int fd) {
        char sink[4096];
        while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
                ;
}

static int connect_retrying(const char *path, unsigned *retries) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        for (unsigned attempt = 0; attempt < CONNECT_ATTEMPTS; attempt++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -1;
                if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return fd;
                close(fd);
                if (errno != ECONNREFUSED && errno != EAGAIN && errno != ENOENT)
                        return -1;
                (*retries)++;
                usleep(50000);
        }
        return -1;
}

/* Simulated process state between samples. */
typedef struct Sim {
        unsigned index;
        bool leaks;
        unsigned seed;
        unsigned seq;
        double base, wander, leaked;
        double gc0, gc1, gc2, collected;
        double alloc_bytes_total, alloc_count_total;
} Sim;

static double sim_rand(Sim *s) {
        s->seed = s->seed * 1103515245u + 12345u;
        return (double) ((s->seed >> 8) & 0xffff) / 65536.0;
}

static void hello_payload(Buf *b, const Sim *s, const LoadOptions *o) {
        b->len = 0;
        buf_printf(b,
                   "{\"protocol\":%d,\"agent_version\":\"0.1.0\",\"pid\":%d,\"ppid\":%d,"
                   "\"argv\":[\"python3\",\"worker.py\",\"--n\",\"%u\"],\"service\":\"load-%u\",\"hostname\":\"bench\","
                   "\"python\":{\"version\":\"3.11.2\",\"implementation\":\"cpython\",\"hexversion\":51053296},"
                   "\"interval\":%g}",
                   HW_PROTOCOL_VERSION, (int) getpid(), (int) getppid(), s->index, s->index % 20, o->interval);
}

/* The heap report: `sites` sites, largest first; site 1 is where a leaking process leaks.
 * Stacks are interned: sent only in the first report of the connection. */
static void heap_payload(Buf *b, const Sim *s, const LoadOptions *o, double rss) {
        double live_total = 0;

        buf_printf(b, ",\"heap\":{\"epoch\":%u,\"sample_bytes\":524288,\"depth\":32,", 1000u + s->index);
        for (unsigned i = 1; i <= o->sites; i++)
                live_total += rss / 8 / (double) (i + 1);
        live_total += s->leaked;
        buf_printf(b,
                   "\"live_bytes\":%.0f,\"live_count\":%.0f,\"alloc_bytes_total\":%.0f,\"alloc_count_total\":%.0f,"
                   "\"samples_total\":%.0f,\"samples_live\":%.0f,\"tracked_full_total\":0,\"stacks_full_total\":0,"
                   "\"lost_total\":0,\"sites\":[",
                   live_total, live_total / 4096, s->alloc_bytes_total, s->alloc_count_total,
                   s->alloc_bytes_total / 524288, live_total / 524288);
        for (unsigned i = 1; i <= o->sites; i++) {
                double live = rss / 8 / (double) (i + 1) + (i == 1 ? s->leaked : 0);
                buf_printf(b,
                           "%s{\"stack\":%u,\"live_bytes\":%.0f,\"live_count\":%.0f,\"alloc_bytes_total\":%.0f,"
                           "\"alloc_count_total\":%.0f}",
                           i > 1 ? "," : "", i, live, live / 4096, live * 3 + s->alloc_bytes_total / (i + 1),
                           live / 1024 + s->alloc_count_total / (i + 1));
        }
        buf_printf(b, "],\"stacks\":[");
        if (s->seq == 0)
                for (unsigned i = 1; i <= o->sites; i++)
                        buf_printf(b,
                                   "%s{\"id\":%u,\"frames\":[[\"/srv/app/handlers/site%u.py\",\"Handler.build_%u\",%u],"
                                   "[\"/srv/app/service.py\",\"Service.dispatch\",%u],"
                                   "[\"/usr/lib/python3.11/socketserver.py\",\"BaseServer.serve_forever\",237],"
                                   "[\"/srv/app/main.py\",\"<module>\",12]]}",
                                   i > 1 ? "," : "", i, i, i, 40 + i, 100 + i);
        buf_printf(b, "]}");
}

static void sample_payload(Buf *b, Sim *s, const LoadOptions *o, const char *goodbye_reason) {
        unsigned k = s->seq;
        double saw, rss, pause;

        /* A GC every 30 samples drops the sawtooth back; the wander reverts to zero. */
        saw = (double) (k % 30) * 150000;
        s->wander = 0.98 * s->wander + (sim_rand(s) - 0.5) * 200000;
        if (s->leaks)
                s->leaked += o->leak_bytes_per_second * o->interval;
        rss = s->base + s->wander + saw + s->leaked;
        s->gc0 += 700 / 30.0;
        s->gc1 += k % 10 == 0;
        s->gc2 += k % 100 == 0;
        s->collected += (double) (unsigned) (sim_rand(s) * 50);
        s->alloc_bytes_total += 2e6 + sim_rand(s) * 1e6;
        s->alloc_count_total += 500 + (double) (unsigned) (sim_rand(s) * 200);
        pause = (double) (unsigned) (sim_rand(s) * 1000) * 1e-6;

        b->len = 0;
        b->overflow = false;
        buf_printf(b,
                   "{\"seq\":%u,\"time\":%.6f,\"process\":{\"rss_bytes\":%.0f,\"rss_peak_bytes\":%.0f,"
                   "\"vm_bytes\":%.0f,\"threads\":%u},\"python\":{\"allocated_blocks\":%.0f,"
                   "\"arena_allocs_total\":%u,\"arena_frees_total\":%u,\"arena_size_bytes\":1048576},"
                   "\"gc\":{\"enabled\":true,\"garbage\":0,\"generations\":["
                   "{\"count\":%u,\"threshold\":700,\"collections\":%.0f,\"collected\":%.0f,\"uncollectable\":0,"
                   "\"pauses\":1,\"pause_seconds_total\":%.6f,\"pause_seconds_max\":%.6f},"
                   "{\"count\":%u,\"threshold\":10,\"collections\":%.0f,\"collected\":0,\"uncollectable\":0,"
                   "\"pauses\":0,\"pause_seconds_total\":0,\"pause_seconds_max\":0},"
                   "{\"count\":%u,\"threshold\":10,\"collections\":%.0f,\"collected\":0,\"uncollectable\":0,"
                   "\"pauses\":0,\"pause_seconds_total\":0,\"pause_seconds_max\":0}]},"
                   "\"agent\":{\"samples_dropped_total\":0,\"reconnects_total\":0,\"sample_seconds\":0.00004}",
                   k, unix_now(), rss, s->base + 30 * 150000 + 400000 + s->leaked, rss * 3 + 4e8, 2 + (s->index % 3),
                   (rss - s->base / 2) / 40, 100 + k / 7, 40 + k / 9, (k * 23) % 700, s->gc0, s->collected, pause,
                   pause, k % 10, s->gc1, k % 10, s->gc2);
        if (o->sites > 0)
                heap_payload(b, s, o, rss - s->leaked);
        if (goodbye_reason)
                buf_printf(b, ",\"reason\":\"%s\"", goodbye_reason);
        buf_printf(b, "}");
        s->seq++;
}

static void agent_run(const LoadOptions *o, unsigned index, AgentReport *rep) {
        static Buf buf; /* static: a child's stack stays small */
        Sim sim = {
                .index = index,
                .leaks = o->leak_every > 0 && index % o->leak_every == 0,
                .seed = index * 2654435761u + 1,
                .base = 50e6 + (double) (index % 50) * 4e6,
        };
        double start, end, next;
        int fd;

        rep->index = index;
        /* Spread the agents over one interval. */
        sleep_until(mono_now() + (double) index / (double) o->agents * o->interval);
        fd = connect_retrying(o->socket_path, &rep->connect_retries);
        if (fd < 0)
                return;
        rep->connected = 1;
        hello_payload(&buf, &sim, o);
        if (send_frame(fd, HW_FRAME_HELLO, &buf) < 0) {
                rep->send_failed = 1;
                close(fd);
                return;
        }
        rep->hellos = 1;
        start = next = mono_now();
        end = start + o->seconds;
        for (;;) {
                double late;

                drain(fd);
                late = mono_now() - next;
                if (late > o->interval)
                        rep->late++;
                if (late > rep->late_max_seconds)
                        rep->late_max_seconds = late;
                next += o->interval;
                if (next > end) {
                        sample_payload(&buf, &sim, o, "exit");
                        if (send_frame(fd, HW_FRAME_GOODBYE, &buf) < 0)
                                rep->send_failed = 1;
                        else
                                rep->goodbyes = 1;
                        break;
                }
                sample_payload(&buf, &sim, o, NULL);
                if (send_frame(fd, HW_FRAME_SAMPLE, &buf) < 0) {
                        rep->send_failed = 1;
                        break;
                }
                rep->samples++;
                sleep_until(next);
        }
        /* Wait for the daemon to close its end, as an exiting agent's connection is closed
         * after its last frame: then the GOODBYE has been read, not discarded with the socket. */
        shutdown(fd, SHUT_WR);
        {
                struct timeval tv = { .tv_sec = 10 };
                char sink[256];
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                while (recv(fd, sink, sizeof sink, 0) > 0)
                        ;
        }
        close(fd);
}

static int parse_options(int argc, char *argv[], LoadOptions *o) {
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "agents", required_argument, NULL, 'n' },
                { "seconds", required_argument, NULL, 't' },
                { "interval", required_argument, NULL, 'i' },
                { "leak-every", required_argument, NULL, 'l' },
                { "leak-bytes-per-second", required_argument, NULL, 'b' },
                { "sites", required_argument, NULL, 'S' },
                {}
        };
        int c;

        *o = (LoadOptions) { .agents = 100, .seconds = 60, .interval = 1.0, .leak_every = 10,
                             .leak_bytes_per_second = 20000, .sites = 16 };
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                char *end = NULL;
                errno = 0;
                switch (c) {
                case 's': o->socket_path = optarg; end = optarg + strlen(optarg); break;
                case 'n': o->agents = (unsigned) strtoul(optarg, &end, 10); break;
                case 't': o->seconds = strtod(optarg, &end); break;
                case 'i': o->interval = strtod(optarg, &end); break;
                case 'l': o->leak_every = (unsigned) strtoul(optarg, &end, 10); break;
                case 'b': o->leak_bytes_per_second = strtod(optarg, &end); break;
                case 'S': o->sites = (unsigned) strtoul(optarg, &end, 10); break;
                default: return -EINVAL;
                }
                if (errno != 0 || !end || *end != '\0' || end == optarg)
                        return -EINVAL;
        }
        if (optind != argc || !o->socket_path || strlen(o->socket_path) >= sizeof(((struct sockaddr_un *) 0)->sun_path) ||
            o->agents == 0 || o->agents > AGENTS_MAX || !(o->seconds > 0) || !(o->interval >= 0.01) ||
            !(o->leak_bytes_per_second >= 0) || o->sites > SITES_MAX)
                return -EINVAL;
        return 0;
}

int main(int argc, char *argv[]) {
        LoadOptions o;
        AgentReport rep, total = {};
        unsigned reports = 0, failed = 0;
        int pipefd[2];

        if (parse_options(argc, argv, &o) < 0) {
                fprintf(stderr,
                        "usage: %s --socket PATH [--agents N<=%u] [--seconds S] [--interval I>=0.01]\n"
                        "          [--leak-every K] [--leak-bytes-per-second B] [--sites N<=%u]\n",
                        argv[0], AGENTS_MAX, SITES_MAX);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                perror("pipe2");
                return 1;
        }
        for (unsigned i = 0; i < o.agents; i++) {
                pid_t pid = fork();
                if (pid < 0) {
                        perror("fork");
                        return 1;
                }
                if (pid == 0) {
                        AgentReport r = {};
                        close(pipefd[0]);
                        agent_run(&o, i, &r);
                        _exit(write(pipefd[1], &r, sizeof r) == (ssize_t) sizeof r ? 0 : 1);
                }
        }
        close(pipefd[1]);
        for (;;) {
                ssize_t n = read(pipefd[0], &rep, sizeof rep);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != (ssize_t) sizeof rep)
                        break;
                reports++;
                total.connected += rep.connected;
                total.connect_retries += rep.connect_retries;
                total.hellos += rep.hellos;
                total.samples += rep.samples;
                total.goodbyes += rep.goodbyes;
                total.send_failed += rep.send_failed;
                total.late += rep.late;
                if (rep.late_max_seconds > total.late_max_seconds)
                        total.late_max_seconds = rep.late_max_seconds;
        }
        for (unsigned i = 0; i < o.agents; i++) {
                int status;
                if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed++;
        }
        printf("{\"agents\":%u,\"reports\":%u,\"connected\":%u,\"connect_retries\":%u,\"hellos\":%u,"
               "\"samples\":%u,\"goodbyes\":%u,\"send_failed\":%u,\"late\":%u,\"late_max_seconds\":%.3f,"
               "\"leaking_agents\":%u,\"children_failed\":%u}\n",
               o.agents, reports, total.connected, total.connect_retries, total.hellos, total.samples,
               total.goodbyes, total.send_failed, total.late, total.late_max_seconds,
               o.leak_every ? (o.agents + o.leak_every - 1) / o.leak_every : 0, failed);
        return failed || total.connected != o.agents || total.send_failed ? 1 : 0;
}
