/* SPDX-License-Identifier: MIT */
/*
 * One heapwatchd per state directory (see state-lock.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "macro.h"
#include "parse-util.h"
#include "state-lock.h"

static pid_t read_holder(int fd) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        uint64_t v;

        if (n <= 0)
                return 0;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        if (parse_uint64(buf, &v) < 0 || v == 0 || v > INT_MAX)
                return 0;
        return (pid_t) v;
}

int state_dir_lock(const char *dir, int *ret_fd, pid_t *ret_holder) {
        _cleanup_close_ int fd = -1;
        char path[PATH_MAX], pid[32];
        int n, r;

        *ret_holder = 0;
        if (snprintf(path, sizeof path, "%s/%s", dir, STATE_LOCK_FILE_NAME) >= (int) sizeof path)
                return -ENAMETOOLONG;
        r = mkdir_p(dir, 0750, 0700); /* as store.c makes it */
        if (r < 0)
                return r;
        /* O_NOFOLLOW: a symlink planted in the directory does not make us create or truncate
         * a file elsewhere. */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;

                if (e == EWOULDBLOCK) {
                        *ret_holder = read_holder(fd);
                        return -EBUSY;
                }
                return -e;
        }
        /* Only for the message a second daemon gives: the lock is what counts. */
        n = snprintf(pid, sizeof pid, "%d\n", (int) getpid());
        if (ftruncate(fd, 0) == 0)
                (void) !pwrite(fd, pid, (size_t) n, 0);
        *ret_fd = TAKE_FD(fd);
        return 0;
}
