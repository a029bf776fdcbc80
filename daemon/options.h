/* SPDX-License-Identifier: MIT */
/*
 * heapwatchd's settings: defaults, then the configuration file (config-file.c, INI), then the
 * command line, which overrides the file. Every command-line option that sets something is a
 * key of the file with the same name, parser and bounds. Parsing is a pure function so tests can
 * feed it good and bad input; every value is validated and bounded here, before anything is
 * started, and again on every reload (SIGHUP).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "census.h"
#include "detect.h"
#include "peer-limits.h"
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
        CensusConfig census; /* object censuses while a finding is open (census.h); live on reload */
        char config_path[256];     /* the configuration file (--config, default DEFAULT_CONFIG_PATH) */
        bool config_required;      /* given with --config: a missing file is an error */
        bool config_found;         /* the file was there and read (else: the defaults) */
        bool show_help;
        bool show_version;
        /* Access and limits on what peers control (docs/security.md). */
        char socket_group[64];     /* group owning the agent socket ("" the daemon's) */
        char http_token_file[256]; /* bearer token for HTTP ("" none) */
        LimitsConfig limits;
} Options;

#define DEFAULT_HTTP_HOST "127.0.0.1"
#define DEFAULT_HTTP_PORT 9847
#define DEFAULT_HISTORY_POINTS 3600      /* one hour at the agent's default 1 s interval */
#define DEFAULT_EXITED_RETENTION 3600.0  /* seconds */
#define DEFAULT_MAX_PROCESSES 1024
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_CONFIG_PATH SYSCONFDIR "/heapwatch/heapwatchd.conf"
#define DEFAULT_SOCKET_MODE 0666 /* any local service may connect; identity comes from SO_PEERCRED */

/* Fill defaults (the socket path depends on uid and $XDG_RUNTIME_DIR; the state directory
 * is /var/lib/heapwatch for root, $XDG_STATE_HOME/heapwatch or ~/.local/state/heapwatch
 * otherwise). Under systemd, $RUNTIME_DIRECTORY/agent.sock, $STATE_DIRECTORY and
 * $CONFIGURATION_DIRECTORY/heapwatchd.conf win (the unit's directories). */
void options_init(Options *o);

/* Parse argv over the defaults. Returns 0, or -EINVAL with a message in error[] (for the
 * caller to print with the usage hint). */
int options_parse(Options *o, int argc, char *argv[], char *error, size_t error_size);

/* Set one key of the configuration file ("log-level", "detect-window", ...; the no-argument
 * options "no-http" and "no-store" take a boolean). Returns 0, or -EINVAL with a message in
 * error[] that names the key (the caller adds file and line). */
int options_set_key(Options *o, const char *key, const char *value, char *error, size_t error_size);

/* Check what only holds across options (detection window vs horizons, store tiers). Returns 0 or
 * -EINVAL with a message. */
int options_validate(const Options *o, char *error, size_t error_size);

/* Everything: defaults, the configuration file (--config or the default; a missing default file
 * is fine), then argv over it. Used at start and on reload. Returns 0 or -EINVAL/-errno with a
 * message ("FILE:LINE: ..." for the file) in error[]. */
int options_load(Options *o, int argc, char *argv[], char *error, size_t error_size);

void options_print_help(const char *program);
