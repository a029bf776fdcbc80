/* SPDX-License-Identifier: MIT */
/*
 * `heapwatch heap ID`: ask heapwatchd for one process's sampled heap by allocation site
 * (GET /api/v1/processes/{id}/heap) and show it in the terminal: the top sites by estimated live
 * bytes with their growth over a window, "other", and each site's stack. --json prints the
 * daemon's JSON as it came. The JSON comes from the network and is read defensively (a missing
 * or mistyped member shows as "-"); every string is made safe for the terminal.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct HeapArgs {
        bool help;
        const char *url; /* NULL: $HEAPWATCH_URL, else the default */
        const char *id;
        const char *window; /* seconds, passed on to the daemon (which validates it); NULL: default */
        const char *limit;  /* sites, likewise */
        unsigned frames;    /* frames of each stack to show; 0: none */
        bool json;
} HeapArgs;

#define HEAP_FRAMES_DEFAULT 6
#define HEAP_FRAMES_MAX 128

/* Parse `heap ID [--url URL] [--window S] [--limit N] [--frames N] [--json]`; argv[0] is "heap".
 * Pure. Returns 0 and fills *ret, or -EINVAL with a one-line reason in error[error_size]. */
int heap_parse_args(int argc, char *argv[], HeapArgs *ret, char *error, size_t error_size);

/* Render a /heap response body. Returns 0 and a malloc'd text in *ret, -EBADMSG when the body
 * is not a JSON object with a "sites" array, -ENOMEM. */
int heap_render(const char *body, size_t size, unsigned frames, size_t max_width, char **ret);

void heap_help(void);

/* The subcommand; returns the exit status. */
int verb_heap(int argc, char *argv[]);
