/* SPDX-License-Identifier: MIT */
/*
 * How every parser of outside input here reports a refusal (command line, configuration,
 * query strings, the agent protocol, analyze's files): a one-line reason written into the
 * caller's buffer and a negative errno returned, so the caller chooses how to show it (a 400
 * body, a log line, "heapwatch: ..." on standard error).
 */
#pragma once

#include <errno.h>
#include <stddef.h>

#include "macro.h"

/* Writes the formatted reason into error[error_size] (truncated, always terminated; nothing
 * when error is NULL or error_size is 0) and returns r. */
int error_setf(char *error, size_t error_size, int r, const char *format, ...) _printf_(4, 5);

/* The common case: the input is wrong. */
#define set_error(error, error_size, ...) error_setf((error), (error_size), -EINVAL, __VA_ARGS__)
