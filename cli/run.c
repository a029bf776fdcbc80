/* SPDX-License-Identifier: MIT */
/*
 * Implementation of `heapwatch run` (see run.h). The argument parsing and the PYTHONPATH
 * arithmetic are pure functions the unit tests call directly; verb_run() only adds the
 * filesystem check, setenv() and execvp(). Nothing is forked: once the command runs,
 * heapwatch is gone, and whatever supervises the service sees the program itself.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli-util.h"
#include "error-util.h"
#include "format.h"
#include "parse-util.h"
#include "run.h"

/* What fits in sockaddr_un.sun_path with its NUL, as the agent bounds it too. */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)

#ifndef HEAPWATCH_AGENT_DIR
#error "HEAPWATCH_AGENT_DIR must be defined by the build (see cli/Makefile.inc)"
#endif

int run_validate_service(const char *service) {
        size_t n = strlen(service);

        if (n == 0 || n > RUN_SERVICE_MAX || !format_is_printable(service))
                return -EINVAL;
        return 0;
}

/* Match "--name VALUE" or "--name=VALUE" at argv[*i]; on a match advance *i past the value. */
static int take_value(int argc, char *argv[], int *i, const char *name, const char **ret_value,
                      char *error, size_t error_size) {
        const char *a = argv[*i];
        size_t n = strlen(name);

        if (strncmp(a, name, n) != 0)
                return 0;
        if (a[n] == '=') {
                *ret_value = a + n + 1;
                return 1;
        }
        if (a[n] != '\0')
                return 0;
        if (*i + 1 >= argc)
                return set_error(error, error_size, "option %s requires a value", name);
        *ret_value = argv[++*i];
        return 1;
}

int run_parse_args(int argc, char *argv[], RunArgs *ret, char *error, size_t error_size) {
        RunArgs a = {};
        const char *interval = NULL;
        int i, r;

        /* --help wins over any mistake next to it, as with most tools. Only options before
         * "--" count: after it everything belongs to the command. */
        for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        *ret = (RunArgs) { .help = true };
                        return 0;
                }

        for (i = 1; i < argc; i++) {
                const char *arg = argv[i];
                _cleanup_free_ char *q = NULL;

                if (strcmp(arg, "--") == 0)
                        break;
                if ((r = take_value(argc, argv, &i, "--service", &a.service, error, error_size)) != 0 ||
                    (r = take_value(argc, argv, &i, "--socket", &a.socket, error, error_size)) != 0 ||
                    (r = take_value(argc, argv, &i, "--interval", &interval, error, error_size)) != 0) {
                        if (r < 0)
                                return r;
                        continue;
                }
                if (arg[0] == '-')
                        return set_error(error, error_size, "unknown option '%s'", cli_printable(arg, &q));
                /* Options of heapwatch and of the program look alike (--help, --config, ...);
                 * requiring "--" keeps them apart for good. */
                return set_error(error, error_size, "missing '--' before the command '%s'", cli_printable(arg, &q));
        }

        if (i >= argc)
                return set_error(error, error_size, "missing '--' and the command to run");
        if (i + 1 >= argc)
                return set_error(error, error_size, "missing the command to run after '--'");
        if (argv[i + 1][0] == '\0')
                return set_error(error, error_size, "the command to run is an empty string");
        a.command = argv + i + 1;

        if (a.service && run_validate_service(a.service) < 0) {
                _cleanup_free_ char *q = NULL;
                return set_error(error, error_size,
                                 "invalid --service '%s': must be 1 to %d bytes of printable UTF-8, without control characters",
                                 cli_printable(a.service, &q), RUN_SERVICE_MAX);
        }

        if (a.socket) {
                _cleanup_free_ char *q = NULL;

                /* The agent reconnects whenever the daemon restarts, possibly long after the
                 * program changed directory: a relative path would then point elsewhere. */
                if (a.socket[0] != '/')
                        return set_error(error, error_size, "invalid --socket '%s': must be an absolute path",
                                         cli_printable(a.socket, &q));
                if (strlen(a.socket) > SOCKET_PATH_MAX)
                        return set_error(error, error_size, "invalid --socket: path longer than %zu bytes",
                                         SOCKET_PATH_MAX);
        }

        if (interval) {
                _cleanup_free_ char *q = NULL;
                double v;

                if (parse_seconds(interval, RUN_INTERVAL_MIN, RUN_INTERVAL_MAX, &v) < 0)
                        return set_error(error, error_size,
                                         "invalid --interval '%s': must be a number of seconds from %g to %g",
                                         cli_printable(interval, &q), RUN_INTERVAL_MIN, RUN_INTERVAL_MAX);
                /* Hand the agent plain decimal, whatever strtod() accepted ("1e0", "0x1p-1"). */
                snprintf(a.interval, sizeof a.interval, "%.9g", v);
        }

        *ret = a;
        return 0;
}

int run_build_pythonpath(const char *agent_dir, const char *existing, char **ret) {
        char *s;
        int n;

        if (!agent_dir || !*agent_dir || strchr(agent_dir, ':'))
                return -EINVAL;

        /* An empty PYTHONPATH entry means the current directory to Python: never add one. */
        if (existing && *existing)
                n = asprintf(&s, "%s:%s", agent_dir, existing);
        else
                n = asprintf(&s, "%s", agent_dir);
        if (n < 0)
                return -ENOMEM;

        *ret = s;
        return 0;
}

int run_resolve_agent_dir(const char *dir, char **ret) {
        _cleanup_free_ char *abs = NULL, *bootstrap = NULL;
        struct stat st;

        abs = realpath(dir, NULL);
        if (!abs)
                return -errno;
        if (stat(abs, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (strchr(abs, ':'))
                return -EINVAL;

        if (asprintf(&bootstrap, "%s/sitecustomize.py", abs) < 0)
                return -ENOMEM;
        if (stat(bootstrap, &st) < 0) {
                if (errno == ENOENT)
                        return -ENOPKG;
                return -errno;
        }
        if (!S_ISREG(st.st_mode))
                return -ENOPKG;

        *ret = TAKE_PTR(abs);
        return 0;
}

void run_help(void) {
        printf("Usage: %s run [OPTIONS] -- CMD [ARGS...]\n"
               "\n"
               "Run a Python program with the heapwatch agent loaded, without changing its code.\n"
               "The agent directory is put first on PYTHONPATH, then CMD replaces heapwatch, so\n"
               "its pid, signals and exit status are the program's own.\n"
               "\n"
               "Options:\n"
               "  --service NAME       service name reported to heapwatchd (HEAPWATCH_SERVICE)\n"
               "  --socket PATH        heapwatchd's agent socket, absolute (HEAPWATCH_SOCKET)\n"
               "  --interval SECONDS   sampling interval, %g to %g (HEAPWATCH_INTERVAL)\n"
               "  -h, --help           show this help\n"
               "\n"
               "Environment:\n"
               "  HEAPWATCH_AGENT_PATH  agent directory (default %s)\n"
               "\n"
               "Python started with -E, -I or -S ignores PYTHONPATH or sitecustomize, and so the agent.\n",
               PROGRAM_NAME, RUN_INTERVAL_MIN, RUN_INTERVAL_MAX, HEAPWATCH_AGENT_DIR);
}

static int set_env(const char *name, const char *value) {
        if (setenv(name, value, 1) < 0)
                return cli_error_errno(errno, "cannot set %s: %m", name);
        return 0;
}

int verb_run(int argc, char *argv[]) {
        _cleanup_free_ char *agent_dir = NULL, *pythonpath = NULL, *q = NULL;
        const char *dir, *origin;
        char error[512];
        RunArgs a;
        int r;

        r = run_parse_args(argc, argv, &a, error, sizeof error);
        if (r < 0) {
                cli_error("run: %s", error);
                fprintf(stderr, "Try '%s run --help'.\n", PROGRAM_NAME);
                return EXIT_USAGE;
        }
        if (a.help) {
                run_help();
                return EXIT_OK;
        }

        dir = getenv("HEAPWATCH_AGENT_PATH");
        if (dir && *dir)
                origin = "from HEAPWATCH_AGENT_PATH";
        else {
                dir = HEAPWATCH_AGENT_DIR;
                origin = "built-in default; HEAPWATCH_AGENT_PATH overrides it";
        }

        r = run_resolve_agent_dir(dir, &agent_dir);
        if (r == -ENOPKG) {
                cli_error("agent directory %s (%s) has no sitecustomize.py; is the heapwatch agent installed there?",
                          cli_printable(dir, &q), origin);
                return EXIT_USAGE;
        }
        if (r == -EINVAL) {
                cli_error("agent directory %s (%s) contains ':', which cannot be put on PYTHONPATH",
                          cli_printable(dir, &q), origin);
                return EXIT_USAGE;
        }
        if (r == -ENOENT) {
                cli_error("agent directory %s (%s) does not exist", cli_printable(dir, &q), origin);
                return EXIT_USAGE;
        }
        if (r < 0) {
                cli_error_errno(r, "agent directory %s (%s): %m", cli_printable(dir, &q), origin);
                return EXIT_USAGE;
        }

        r = run_build_pythonpath(agent_dir, getenv("PYTHONPATH"), &pythonpath);
        if (r < 0) {
                cli_error_errno(r, "cannot build PYTHONPATH: %m");
                return EXIT_FAIL;
        }

        if (set_env("PYTHONPATH", pythonpath) < 0 ||
            (a.service && set_env("HEAPWATCH_SERVICE", a.service) < 0) ||
            (a.socket && set_env("HEAPWATCH_SOCKET", a.socket) < 0) ||
            (a.interval[0] && set_env("HEAPWATCH_INTERVAL", a.interval) < 0))
                return EXIT_FAIL;

        /* Anything still buffered would otherwise be lost with our image. */
        fflush(NULL);
        execvp(a.command[0], a.command);

        r = errno;
        free(q);
        q = NULL;
        cli_error_errno(r, "cannot run %s: %m", cli_printable(a.command[0], &q));
        /* As env(1) and the shells: 127 when the command was not found, 126 when it was but
         * could not be executed. */
        return r == ENOENT || r == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}
