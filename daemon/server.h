/* SPDX-License-Identifier: MIT */
/*
 * The daemon as one object: the sd-event loop and everything it drives (signals, the agent
 * socket, the HTTP server, the expiry timer), set up in order and torn down in reverse.
 */
#pragma once

#include "options.h"

typedef struct Server Server;

/* Build everything from the options; picks up socket-activated fds (sd_listen_fds_with_names).
 * argc/argv (main()'s, must outlive the server) are read again on reload. Logs its own errors.
 * Returns 0 or -errno. */
int server_new(const Options *o, int argc, char *argv[], Server **ret);
/* Re-read the configuration file and the command line given to server_new(), apply what can
 * change live (log level, detection thresholds, retentions), log what cannot. Notifies
 * RELOADING=1 / READY=1. Logs. Returns 0, or -EINVAL when the new configuration was refused
 * (the running one stays). Also run on SIGHUP. */
int server_reload(Server *s);
/* Run until SIGTERM/SIGINT. Returns 0 or -errno. */
int server_run(Server *s);
Server *server_free(Server *s);
