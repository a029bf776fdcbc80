/* SPDX-License-Identifier: MIT */
/*
 * What every heapwatch subcommand shares: the exit codes that are part of the CLI's contract,
 * the one way to tell the operator about a failure ("heapwatch: ..." on stderr, the prefix
 * POSIX tools use so the message names who complained even inside a pipeline or a wrapper
 * script), and the width of the terminal the tables are fitted to.
 */
#pragma once

#include <stddef.h>

#include "macro.h"

#define PROGRAM_NAME "heapwatch"

/* Exit codes. 126/127 follow env(1) and the shells for a command that cannot be run. */
#define EXIT_OK 0
#define EXIT_FAIL 1           /* the operation failed: daemon unreachable, HTTP error, ... */
#define EXIT_USAGE 2          /* bad command line or environment; nothing was attempted */
#define EXIT_CANNOT_EXEC 126  /* found but could not be executed */
#define EXIT_NOT_FOUND 127    /* command not found */

/*
 * Print "heapwatch: <message>\n" to stderr. %m in the format expands to strerror(error).
 * Returns -abs(error) (or -EINVAL when error is 0) so callers can write
 *         return cli_error_errno(r, "cannot read %s: %m", path);
 */
int cli_error_errno(int error, const char *format, ...) _printf_(2, 3);
#define cli_error(...) cli_error_errno(0, __VA_ARGS__)

/*
 * s made safe to quote in a message (control characters become '?', see format_sanitize()):
 * the copy is stored in *buf for the caller to free; on OOM a fixed placeholder is returned.
 */
const char *cli_printable(const char *s, char **buf);

/*
 * The width tables should fit: the terminal's columns when stdout is a terminal, else $COLUMNS
 * when it holds a sane number, else 0, meaning "no limit" (output piped into a file or grep
 * keeps every character).
 */
size_t cli_output_columns(void);
