/* SPDX-License-Identifier: MIT */
/*
 * `heapwatch run`: start a Python program with the agent loaded and no code change, the
 * convention of ddtrace-run. The agent directory (heapwatch<EXT_SUFFIX>.so per interpreter ABI
 * plus a sitecustomize.py bootstrap) goes first on PYTHONPATH, the options become
 * HEAPWATCH_SERVICE/HEAPWATCH_SOCKET/HEAPWATCH_INTERVAL, and the command replaces us through
 * execvp(), so its pid, signals and exit status are its own.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define RUN_SERVICE_MAX 128         /* bytes, as the wire protocol bounds it */
#define RUN_INTERVAL_MIN 0.05       /* seconds */
#define RUN_INTERVAL_MAX 3600.0
#define RUN_INTERVAL_STRING_MAX 32

typedef struct RunArgs {
        bool help;                  /* -h/--help: print usage, nothing else was checked */
        const char *service;        /* NULL when not given; points into argv */
        const char *socket;         /* NULL when not given; points into argv */
        char interval[RUN_INTERVAL_STRING_MAX]; /* canonical seconds, "" when not given */
        char **command;             /* CMD [ARGS...], points into argv, NULL-terminated */
} RunArgs;

/*
 * Parse `run [--service NAME] [--socket PATH] [--interval SECONDS] -- CMD [ARGS...]`; argv[0]
 * is "run" and argv[argc] must be NULL, as main()'s is. Options take "--opt VALUE" or
 * "--opt=VALUE"; the last occurrence wins. Pure: no I/O, no environment.
 * Returns 0 and fills *ret, or -EINVAL with a one-line reason in error[error_size].
 */
int run_parse_args(int argc, char *argv[], RunArgs *ret, char *error, size_t error_size);

/* 1..RUN_SERVICE_MAX bytes of printable UTF-8 (no control characters). 0 or -EINVAL. */
int run_validate_service(const char *service);

/*
 * PYTHONPATH for the program: the agent directory first, so its sitecustomize.py is the one
 * Python imports, then the existing value if any. Returns 0 and a malloc'd string, -EINVAL if
 * agent_dir contains ':' (it would split into two entries), or -ENOMEM.
 */
int run_build_pythonpath(const char *agent_dir, const char *existing, char **ret);

/*
 * Check that dir is a directory holding sitecustomize.py and return its absolute, canonical
 * path (a relative one would break in a program that changes directory or spawns workers
 * elsewhere). Returns 0, -ENOENT (no such directory), -ENOTDIR, -ENOPKG (no
 * sitecustomize.py), -EINVAL (path contains ':') or another -errno from realpath()/stat().
 */
int run_resolve_agent_dir(const char *dir, char **ret);

/* Usage text for `heapwatch run --help`. */
void run_help(void);

/* The subcommand: returns an exit status only when it could not execute the command. */
int verb_run(int argc, char *argv[]);
