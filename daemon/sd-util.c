/* SPDX-License-Identifier: MIT */
/*
 * libsystemd wrappers (see sd-util.h). Notifications are best effort: a service manager that
 * does not listen must never stop the daemon, so their errors are ignored on purpose.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sd-util.h"
#include "time-util.h"

void sd_util_notify_ready(const char *status) {
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", status);
}

void sd_util_notify_reloading(void) {
        struct timespec ts;

        /* systemd >= 253 matches MONOTONIC_USEC against the time it sent SIGHUP; older ones
         * ignore it. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading configuration.\nMONOTONIC_USEC=%llu",
                          (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000);
}

void sd_util_notify_stopping(void) {
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping.");
}

void sd_util_notify_status(const char *format, ...) {
        char status[256];
        va_list ap;

        va_start(ap, format);
        vsnprintf(status, sizeof status, format, ap);
        va_end(ap);
        (void) sd_notifyf(false, "STATUS=%s", status);
}

int sd_util_listen_fds(int *ret_agent_fd, int *ret_http_fd) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names), r = 0;

        *ret_agent_fd = *ret_http_fd = -1;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "unknown";

                bool is_unix = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0;
                bool is_inet = sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0;

                /* The name decides between sockets of the right type; a socket of the wrong type
                 * is never used (all fds of one .socket unit share its name). */
                if (is_unix && *ret_agent_fd < 0 && (strcmp(name, "agent") == 0 || strcmp(name, "http") != 0))
                        *ret_agent_fd = fd;
                else if (is_inet && *ret_http_fd < 0)
                        *ret_http_fd = fd;
                else if ((strcmp(name, "agent") == 0 && !is_unix) || (strcmp(name, "http") == 0 && !is_inet)) {
                        r = log_error_errno(EINVAL, "The socket-activated fd %d named '%s' is not a listening %s stream "
                                            "socket; fix the socket unit (ListenStream=).",
                                            fd, name, strcmp(name, "agent") == 0 ? "Unix" : "TCP");
                        (void) close(fd);
                } else {
                        log_warning("Ignoring unexpected socket-activated fd %d (%s).", fd, name);
                        (void) close(fd);
                }
        }
        for (int i = 0; names && names[i]; i++)
                free(names[i]);
        free(names);
        return r;
}

bool sd_util_stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        /* sd_journal_send() drops entries silently when journald's socket is missing (a
         * container, journald stopped): then stderr it is. */
        if (access("/run/systemd/journal/socket", W_OK) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

#define JOURNAL_FIELDS_MAX 16

static void journal_writer(int level, int error, const char *file, int line, const char *func, const char *message,
                           const char *const *fields, size_t n_fields) {
        char f_message[2100], f_priority[16], f_file[256], f_line[32], f_func[128], f_errno[32];
        struct iovec iov[7 + JOURNAL_FIELDS_MAX];
        size_t n = 0;

#define ADD(buf, ...)                                                                   \
        do {                                                                            \
                int _k = snprintf(buf, sizeof buf, __VA_ARGS__);                        \
                iov[n].iov_base = buf;                                                  \
                iov[n].iov_len = _k < 0 ? 0 : (size_t) _k >= sizeof buf ? sizeof buf - 1 : (size_t) _k; \
                n++;                                                                    \
        } while (0)
        ADD(f_message, "MESSAGE=%s", message);
        ADD(f_priority, "PRIORITY=%d", level);
        ADD(f_file, "CODE_FILE=%s", file);
        ADD(f_line, "CODE_LINE=%d", line);
        ADD(f_func, "CODE_FUNC=%s", func);
        if (error > 0)
                ADD(f_errno, "ERRNO=%d", error);
#undef ADD
        for (size_t i = 0; i < n_fields && i < JOURNAL_FIELDS_MAX; i++) {
                iov[n].iov_base = (void *) fields[i];
                iov[n].iov_len = strlen(fields[i]);
                n++;
        }
        if (sd_journal_sendv(iov, (int) n) < 0) {
                /* The journal went away (stopped, restarting): the line still reaches stderr,
                 * which journald reads when it is back. */
                char buf[2200];
                int k = snprintf(buf, sizeof buf, "<%d>%s\n", level, message);
                if (k > 0)
                        (void) !write(STDERR_FILENO, buf, (size_t) k < sizeof buf ? (size_t) k : sizeof buf - 1);
        }
}

void sd_util_log_to_journal(void) {
        log_set_writer(journal_writer);
}
