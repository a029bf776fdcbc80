/* SPDX-License-Identifier: MIT */
/*
 * heapwatchd: thin entry point. Reads the configuration (file, then command line), builds the
 * Server, runs its event loop until SIGTERM/SIGINT, tears it down. Everything else lives in
 * libheapwatchd.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "sd-util.h"
#include "server.h"

int main(int argc, char *argv[]) {
        char error[512];
        Options o;
        Server *s = NULL;
        int r;

        /* Under systemd: stderr connected to the journal means native journal entries with
         * fields; any other stderr of a service still gets "<N>" prefixes. */
        bool under_service = false;
        if (sd_util_stderr_is_journal()) {
                sd_util_log_to_journal();
                under_service = true;
        } else if (getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID")) {
                log_set_prefix_priority(true);
                under_service = true;
        }

        if (options_load(&o, argc, argv, error, sizeof error) < 0) {
                /* under a service an error of the journal's (journalctl -p err shows why the
                 * service did not start); on a terminal, with the hint */
                if (under_service)
                        log_error("Bad configuration: %s", error);
                else
                        fprintf(stderr, "heapwatchd: %s\nTry 'heapwatchd --help'.\n", error);
                return 2;
        }
        if (o.show_help) {
                options_print_help(argv[0]);
                return 0;
        }
        if (o.show_version) {
                printf("heapwatchd %s\n", PACKAGE_VERSION);
                return 0;
        }
        log_set_max_level(o.log_level);

        r = server_new(&o, argc, argv, &s);
        if (r < 0)
                return EXIT_FAILURE;
        log_info("heapwatchd %s started.", PACKAGE_VERSION);
        r = server_run(s);
        server_free(s);
        log_info("heapwatchd stopped.");
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
