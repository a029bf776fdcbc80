/* SPDX-License-Identifier: MIT */
/*
 * The daemon as one object: the sd-event loop and everything it drives (signals, the agent
 * socket, the HTTP server, the expiry timer), set up in order and torn down in reverse.
 */
#pragma once

#include "options.h"

typedef struct Server Server;

/* Build everything from the options; picks up socket-activated fds (sd_listen_fds). Logs its
 * own errors. Returns 0 or -errno. */
int server_new(const Options *o, Server **ret);
/* Run until SIGTERM/SIGINT. Returns 0 or -errno. */
int server_run(Server *s);
Server *server_free(Server *s);
