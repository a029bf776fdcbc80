/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the agent protocol: the input is the byte stream one agent connection
 * sends. It goes through the very path the daemon's agent socket uses: a real Unix stream
 * socket accepted by AgentServer, frame reassembly (frame-reader.c), payload decoding and
 * validation (message.c, heap reports included), the Registry, the heap profile store and the
 * leak detectors. A fresh Registry and AgentServer per input keep runs independent, so a crash
 * reproduces from its input alone. The listening socket is abstract (no file to clean up).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "agent-server.h"
#include "heapwatch/protocol.h"
#include "log.h"
#include "options.h"
#include "registry.h"
#include "stats.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Options defaults;
static sd_event *event;
static int listen_fd = -1;
static struct sockaddr_un address = { .sun_family = AF_UNIX };
static socklen_t address_len;

/* The identity check reads the peer's /proc/<pid>/status (NSpid) and cgroup. The seeds claim
 * pid 4242, so the harness plays an agent in a container where it is 4242: a fake proc tree
 * says so (a claim of any other pid is "forged" and refused, which the fuzzer finds too). */
static char proc_root[] = "/tmp/heapwatch-fuzz-proc-XXXXXX";
static char proc_dir[sizeof proc_root + 16];

static void write_file(const char *dir, const char *name, const char *text) {
        char path[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "we");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                abort();
}

static void remove_proc_root(void) {
        char path[PATH_MAX];

        snprintf(path, sizeof path, "%s/status", proc_dir);
        (void) unlink(path);
        snprintf(path, sizeof path, "%s/cgroup", proc_dir);
        (void) unlink(path);
        (void) rmdir(proc_dir);
        (void) rmdir(proc_root);
}

static void make_proc_root(void) {
        char status[128];

        if (!mkdtemp(proc_root))
                abort();
        snprintf(proc_dir, sizeof proc_dir, "%s/%d", proc_root, (int) getpid());
        if (mkdir(proc_dir, 0700) < 0)
                abort();
        snprintf(status, sizeof status, "Name:\tpython3\nNSpid:\t%d\t4242\n", (int) getpid());
        write_file(proc_dir, "status", status);
        write_file(proc_dir, "cgroup",
                   "0::/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n");
        agent_server_proc_root = proc_root;
        atexit(remove_proc_root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        /* The daemon logs every refused connection (rate-limited); fuzzing refuses most. */
        log_set_max_level(LOG_CRIT);
        options_init(&defaults);
        make_proc_root();
        if (sd_event_new(&event) < 0)
                abort();
        /* abstract: sun_path[0] == '\0' */
        snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "heapwatch-fuzz-%d", (int) getpid());
        address_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + strlen(address.sun_path + 1));
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *) &address, address_len) < 0 ||
            listen(listen_fd, 16) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        RegistryLimits rl = { .max_processes = 8, .history_capacity = 64, .exited_retention = 600 };
        /* The daemon's own defaults where they shape what a stream can do (the frame rate's token
         * bucket); no idle timeout: each run ends with EOF. */
        AgentServerLimits al = {
                .max_connections = 4, .max_frame_payload = HW_FRAME_MAX_PAYLOAD, .hello_timeout_usec = 5000000,
                .max_connections_per_uid = 4, .frames_per_second = defaults.limits.frames_per_second,
                .frames_burst = defaults.limits.frames_burst, .socket_gid = (gid_t) -1,
        };
        Registry *reg = registry_new(&rl);
        AgentServer *server = NULL;
        uint64_t accepted = daemon_stats.connections_accepted_total;
        size_t sent = 0;
        int client, fd;

        if (!reg)
                abort();
        fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || agent_server_new(event, NULL, fd, 0600, reg, &al, &server) < 0)
                abort();

        client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (client < 0 || connect(client, (struct sockaddr *) &address, address_len) < 0)
                abort();

        /* Feed the stream while the loop reads it; the daemon may close early (a bad frame), then
         * sending fails and the rest of the input is moot. */
        while (sent < size) {
                ssize_t n = send(client, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        break;
                if (n > 0)
                        sent += (size_t) n;
                if (sd_event_run(event, 0) < 0)
                        abort();
        }
        (void) shutdown(client, SHUT_WR);
        /* Accept (if not yet) and read to EOF: then the server has no connection left. */
        do {
                if (sd_event_run(event, 0) < 0)
                        abort();
        } while (daemon_stats.connections_accepted_total == accepted || agent_server_connections(server) > 0);
        close(client);
        agent_server_free(server);
        registry_free(reg);
        return 0;
}
