/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "error-util.h"

int error_setf(char *error, size_t error_size, int r, const char *format, ...) {
        va_list ap;

        if (error && error_size > 0) {
                va_start(ap, format);
                (void) vsnprintf(error, error_size, format, ap);
                va_end(ap);
        }
        return r;
}
