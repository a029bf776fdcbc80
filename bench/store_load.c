/* SPDX-License-Identifier: MIT */
/*
 * Load generator for the durable-history benchmark (bench/store_bench.py): N processes, each
 * a forked child with its own pid (the daemon names a process by its kernel pid and start
 * time, so one process with N connections would be one record), speaking the real protocol
 * (include/heapwatch/protocol.h; payloads shaped as agent/encode.c writes them) at a fixed
 * interval for a fixed time. Values move like a real process's: RSS with a GC sawtooth and a
 * slow drift, GC counters that climb, pauses that vary. Children start spread over one
 * interval so the load is even. Prints the samples sent when all children are done.
 *
 *   store_load SOCKET PROCESSES SECONDS [INTERVAL]
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapwatch/protocol.h"

static double now_unix(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int send_frame(int fd, uint8_t type, const char *payload, size_t len) {
        uint8_t hdr[HW_FRAME_HEADER_SIZE];
        size_t off = 0;

        hw_frame_header_pack(hdr, type, (uint32_t) len);
        if (send(fd, hdr, sizeof hdr, MSG_NOSIGNAL) != (ssize_t) sizeof hdr)
                return -1;
        while (off < len) {
                ssize_t n = send(fd, payload + off, len - off, MSG_NOSIGNAL);
                if (n <= 0)
                        return -1;
                off += (size_t) n;
        }
        return 0;
}

static int child(const char *path, unsigned index, double seconds, double interval) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[4096];
        int fd, n;
        unsigned seq = 0, sent = 0;
        double start, next, rss, gc0 = 0, gc1 = 0, gc2 = 0, collected = 0;
        unsigned seed = index * 2654435761u + 1;

        /* Spread the children over one interval. */
        usleep((useconds_t) ((double) (index % 1000) / 1000.0 * interval * 1e6));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return 1;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return 1;
        n = snprintf(buf, sizeof buf,
                     "{\"protocol\":%d,\"agent_version\":\"0.1.0\",\"pid\":%d,\"ppid\":%d,\"argv\":[\"python3\",\"worker.py\","
                     "\"--n\",\"%u\"],\"service\":\"bench\",\"hostname\":\"bench\",\"python\":{\"version\":\"3.11.2\","
                     "\"implementation\":\"cpython\",\"hexversion\":51053296},\"interval\":%g}",
                     HW_PROTOCOL_VERSION, (int) getpid(), (int) getppid(), index, interval);
        if (send_frame(fd, HW_FRAME_HELLO, buf, (size_t) n) < 0)
                return 1;
        rss = 50e6 + (double) (index % 50) * 4e6;
        start = next = now_unix();
        while (now_unix() - start < seconds) {
                double t = now_unix(), saw, pause;

                seed = seed * 1103515245u + 12345u;
                saw = (double) ((seq % 30) * 150000); /* a GC every 30 samples drops it back */
                rss += (double) ((seed >> 16) % 2000) - 900; /* slow drift */
                gc0 += 700 / 30.0;
                if (seq % 10 == 0)
                        gc1++;
                if (seq % 100 == 0)
                        gc2++;
                collected += (double) ((seed >> 8) % 50);
                pause = (double) ((seed >> 12) % 1000) * 1e-6;
                n = snprintf(buf, sizeof buf,
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
                             "\"agent\":{\"samples_dropped_total\":0,\"reconnects_total\":0,\"sample_seconds\":0.00004}}",
                             seq, t, rss + saw, rss + 30 * 150000, rss * 3 + 4e8, 2 + (index % 3),
                             (rss + saw) / 40, 100 + seq / 7, 40 + seq / 9, (seq * 23) % 700, gc0, collected, pause,
                             pause, seq % 10, gc1, seq % 10, gc2);
                if (send_frame(fd, HW_FRAME_SAMPLE, buf, (size_t) n) < 0)
                        break;
                seq++;
                sent++;
                next += interval;
                t = next - now_unix();
                if (t > 0)
                        usleep((useconds_t) (t * 1e6));
        }
        close(fd);
        /* The exit status carries the count (capped) for the parent's total. */
        printf("%u\n", sent);
        fflush(stdout);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned processes, failed = 0;
        double seconds, interval = 1.0;

        if (argc < 4 || argc > 5) {
                fprintf(stderr, "usage: %s SOCKET PROCESSES SECONDS [INTERVAL]\n", argv[0]);
                return 2;
        }
        processes = (unsigned) strtoul(argv[2], NULL, 10);
        seconds = strtod(argv[3], NULL);
        if (argc == 5)
                interval = strtod(argv[4], NULL);
        if (processes == 0 || processes > 10000 || !(seconds > 0) || !(interval > 0)) {
                fprintf(stderr, "%s: bad arguments\n", argv[0]);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        for (unsigned i = 0; i < processes; i++) {
                pid_t pid = fork();
                if (pid < 0) {
                        perror("fork");
                        return 1;
                }
                if (pid == 0)
                        _exit(child(argv[1], i, seconds, interval));
        }
        for (unsigned i = 0; i < processes; i++) {
                int status;
                if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed++;
        }
        if (failed)
                fprintf(stderr, "%s: %u of %u processes failed\n", argv[0], failed, processes);
        return failed ? 1 : 0;
}
