/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for heapwatchd.conf: the input is the file's content. It is read by the
 * daemon's own loader (config-file.c: bounded read, NUL and line-length checks, libinih, every
 * key through options.c's parsers and bounds), from a memfd named by its /proc/self/fd path, so
 * no file is written; a file that loads is then validated as a whole, as on start and SIGHUP.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config-file.h"
#include "log.h"
#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[64], error[512];
        size_t written = 0;
        Options o;
        int fd;

        fd = memfd_create("heapwatchd.conf", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        while (written < size) {
                ssize_t n = write(fd, data + written, size - written);
                if (n <= 0)
                        abort();
                written += (size_t) n;
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

        options_init(&o);
        error[0] = '\0';
        if (config_file_load(&o, path, true, error, sizeof error) >= 0)
                (void) options_validate(&o, error, sizeof error);
        /* Whatever the verdict, the message is a terminated string within the buffer. */
        if (strnlen(error, sizeof error) == sizeof error)
                abort();
        close(fd);
        return 0;
}
