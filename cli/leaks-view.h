/* SPDX-License-Identifier: MIT */
/*
 * `heapwatch leaks`: ask heapwatchd for its leak findings (GET /api/v1/leaks) and print a
 * report an operator can act on: per finding the process, what grows and how fast, the time to
 * its memory limit, the cause (classification) with its reason and remedy, the evidence behind
 * it (shares of RSS, GC, allocators) and the suspects (allocation sites; types and referrer
 * chains when the census found them). --json prints the daemon's JSON as it came. The JSON
 * comes from the network and is read defensively (absent or mistyped members are left out);
 * every string is made safe for the terminal.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct LeaksArgs {
        bool help;
        const char *url;   /* NULL: $HEAPWATCH_URL, else the default */
        const char *state; /* "open" (default), "closed", "all" */
        bool json;
} LeaksArgs;

/* Parse `leaks [--url URL] [--all | --closed] [--json]`; argv[0] is "leaks". Pure. Returns 0
 * and fills *ret, or -EINVAL with a one-line reason in error[error_size]. */
int leaks_parse_args(int argc, char *argv[], LeaksArgs *ret, char *error, size_t error_size);

/* Render a /api/v1/leaks body. now: Unix seconds (for ages). Returns 0 and a malloc'd text in
 * *ret, -EBADMSG when the body is not an object with a "leaks" array, -ENOMEM. */
int leaks_render(const char *body, size_t size, double now, char **ret);

void leaks_help(void);

/* The subcommand; returns the exit status. */
int verb_leaks(int argc, char *argv[]);
