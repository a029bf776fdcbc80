/* SPDX-License-Identifier: MIT */
/*
 * heapwatchd's command line. Parsing is a pure function so tests can feed it good and bad
 * argv; every value is validated and bounded here, before anything is started.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "store.h"

typedef struct Options {
        char socket_path[108];  /* sizeof(sun_path) */
        char http_host[64];
        uint16_t http_port;
        bool http_enabled;
        bool foreground; /* accepted for compatibility: heapwatchd never forks */
        int log_level;
        size_t history_points;     /* in-memory points per process */
        double exited_retention;   /* seconds an exited process stays listed */
        size_t max_processes;
        size_t max_connections;
        unsigned socket_mode;
        DetectConfig detect;
        bool store_enabled;  /* durable history under store.state_dir (--no-store: memory only) */
        StoreConfig store;   /* tiers, flush interval, disk budget (store.h) */
        bool show_help;
        bool show_version;
} Options;

#define DEFAULT_HTTP_HOST "127.0.0.1"
#define DEFAULT_HTTP_PORT 9847
#define DEFAULT_HISTORY_POINTS 3600      /* one hour at the agent's default 1 s interval */
#define DEFAULT_EXITED_RETENTION 3600.0  /* seconds */
#define DEFAULT_MAX_PROCESSES 1024
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_SOCKET_MODE 0666 /* any local service may connect; identity comes from SO_PEERCRED */

/* Fill defaults (the socket path depends on uid and $XDG_RUNTIME_DIR; the state directory
 * is /var/lib/heapwatch for root, $XDG_STATE_HOME/heapwatch or ~/.local/state/heapwatch
 * otherwise). */
void options_init(Options *o);

/* Parse argv over the defaults. Returns 0, or -EINVAL with a message in error[] (for the
 * caller to print with the usage hint). */
int options_parse(Options *o, int argc, char *argv[], char *error, size_t error_size);

void options_print_help(const char *program);
