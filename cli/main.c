/* SPDX-License-Identifier: MIT */
/*
 * heapwatch(1): the operator's command-line tool. This file only dispatches: a table maps each
 * subcommand to the function in its own file (run.c, status.c, ...), so a new subcommand
 * (leaks, analyze, attach, top) is one file and one line here. Exit status: 0 success,
 * 1 failure, 2 usage error; `run` exits with the program's own status.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "analyze.h"
#include "cli-util.h"
#include "run.h"
#include "heap-view.h"
#include "leaks-view.h"
#include "status.h"

typedef struct Verb {
        const char *name;
        int (*dispatch)(int argc, char *argv[]); /* argv[0] is the verb; returns an exit status */
        void (*help)(void);                      /* NULL: the verb has no options */
        const char *summary;
} Verb;

static int verb_help(int argc, char *argv[]);

static const Verb verbs[] = {
        { "run", verb_run, run_help, "run a Python program with the agent loaded" },
        { "status", verb_status, status_help, "show the processes heapwatchd tracks" },
        { "heap", verb_heap, heap_help, "show which code holds a process's memory (heap profile)" },
        { "leaks", verb_leaks, leaks_help, "show leak findings: cause, evidence, remedy" },
        { "analyze", verb_analyze, analyze_help, "run the leak detector over a recorded series" },
        { "help", verb_help, NULL, "show this help, or a command's: help COMMAND" },
};

static const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void usage(FILE *f) {
        fprintf(f,
                "Usage: %s COMMAND [OPTIONS]\n"
                "\n"
                "Watch the memory of Python services through heapwatchd.\n"
                "\n"
                "Commands:\n",
                PROGRAM_NAME);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f,
                "\n"
                "Options:\n"
                "  -h, --help     show this help\n"
                "  --version      show the version\n"
                "\n"
                "'%s COMMAND --help' describes a command's options.\n",
                PROGRAM_NAME);
}

static int verb_help(int argc, char *argv[]) {
        const Verb *v;
        _cleanup_free_ char *q = NULL;

        if (argc < 2) {
                usage(stdout);
                return EXIT_OK;
        }
        v = verb_find(argv[1]);
        if (!v) {
                cli_error("unknown command '%s'", cli_printable(argv[1], &q));
                fprintf(stderr, "Try '%s --help'.\n", PROGRAM_NAME);
                return EXIT_USAGE;
        }
        if (v->help)
                v->help();
        else
                usage(stdout);
        return EXIT_OK;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char *q = NULL;
        const Verb *v;
        int r;

        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        /* a failed write (stdout a full disk, a closed pipe) must not look like success */
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                usage(stdout);
                return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_FAIL;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("%s %s\n", PROGRAM_NAME, PACKAGE_VERSION);
                return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_FAIL;
        }

        v = verb_find(argv[1]);
        if (!v) {
                if (argv[1][0] == '-')
                        cli_error("unknown option '%s'", cli_printable(argv[1], &q));
                else
                        cli_error("unknown command '%s'", cli_printable(argv[1], &q));
                fprintf(stderr, "Try '%s --help'.\n", PROGRAM_NAME);
                return EXIT_USAGE;
        }

        r = v->dispatch(argc - 1, argv + 1);
        /* --help and --version went to stdout too: a failed write must not look like success. */
        if (fflush(stdout) != 0 && r == EXIT_OK)
                return EXIT_FAIL;
        return r;
}
