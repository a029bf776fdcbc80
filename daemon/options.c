/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error-util.h"
#include "log.h"
#include "macro.h"
#include "options.h"
#include "parse-util.h"
#include "config-file.h"

/* systemd's $RUNTIME_DIRECTORY etc.: colon-separated absolute paths; the first one, plus
 * suffix, replaces buf when it fits. Anything else is ignored (the built-in default stays). */
static void options_dir_from_env(char *buf, size_t size, const char *name, const char *suffix) {
        const char *e = getenv(name);
        size_t n;

        if (!e || e[0] != '/')
                return;
        n = strcspn(e, ":");
        if (n + strlen(suffix) >= size)
                return;
        snprintf(buf, size, "%.*s%s", (int) n, e, suffix);
}

void options_init(Options *o) {
        const char *runtime = getenv("XDG_RUNTIME_DIR");

        memset(o, 0, sizeof *o);
        if (geteuid() == 0 || !runtime || runtime[0] != '/' ||
            strlen(runtime) + sizeof("/heapwatch/agent.sock") > sizeof o->socket_path)
                snprintf(o->socket_path, sizeof o->socket_path, "/run/heapwatch/agent.sock");
        else
                snprintf(o->socket_path, sizeof o->socket_path, "%s/heapwatch/agent.sock", runtime);
        snprintf(o->http_host, sizeof o->http_host, "%s", DEFAULT_HTTP_HOST);
        o->http_port = DEFAULT_HTTP_PORT;
        o->http_enabled = true;
        o->log_level = LOG_INFO;
        o->history_points = DEFAULT_HISTORY_POINTS;
        o->exited_retention = DEFAULT_EXITED_RETENTION;
        o->max_processes = DEFAULT_MAX_PROCESSES;
        o->max_connections = DEFAULT_MAX_CONNECTIONS;
        o->socket_mode = DEFAULT_SOCKET_MODE;
        snprintf(o->config_path, sizeof o->config_path, "%s", DEFAULT_CONFIG_PATH);
        detect_config_default(&o->detect);
        limits_config_default(&o->limits);
        o->census = (CensusConfig) {
                .interval = CENSUS_INTERVAL_DEFAULT,
                .budget_ms = HW_CENSUS_BUDGET_MS_DEFAULT,
                .api_min_interval = CENSUS_API_MIN_INTERVAL_DEFAULT,
                .timeout = CENSUS_TIMEOUT_DEFAULT,
        };

        o->store_enabled = true;
        store_config_default(&o->store);
        {
                const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
                size_t n = sizeof o->store.state_dir;
                if (geteuid() == 0)
                        snprintf(o->store.state_dir, n, "/var/lib/heapwatch");
                else if (state && state[0] == '/' && strlen(state) + sizeof("/heapwatch") <= n)
                        snprintf(o->store.state_dir, n, "%s/heapwatch", state);
                else if (home && home[0] == '/' && strlen(home) + sizeof("/.local/state/heapwatch") <= n)
                        snprintf(o->store.state_dir, n, "%s/.local/state/heapwatch", home);
                else
                        snprintf(o->store.state_dir, n, "/var/lib/heapwatch");
        }

        /* Under systemd the unit's RuntimeDirectory=, StateDirectory= and ConfigurationDirectory=
         * are the truth (DynamicUser= makes us a non-root user whose $HOME is not ours). */
        options_dir_from_env(o->socket_path, sizeof o->socket_path, "RUNTIME_DIRECTORY", "/agent.sock");
        options_dir_from_env(o->store.state_dir, sizeof o->store.state_dir, "STATE_DIRECTORY", "");
        options_dir_from_env(o->config_path, sizeof o->config_path, "CONFIGURATION_DIRECTORY", "/heapwatchd.conf");
}

static int parse_count(const char *s, uint64_t min, uint64_t max, size_t *ret) {
        uint64_t v;
        if (parse_uint64(s, &v) < 0 || v < min || v > max)
                return -EINVAL;
        *ret = (size_t) v;
        return 0;
}

/* A plain decimal number (parse_decimal(): no exponent, hex, sign or blanks) within [min, max],
 * or 0 when zero_ok; otherwise an error that names the option, what it takes (`range`, as
 * heapwatchd.conf(5) says it) and the value given. */
static int set_number(const char *arg, double min, double max, bool zero_ok, double *ret, const char *name,
                      const char *range, char *error, size_t size) {
        double v;

        if (parse_decimal(arg, &v) < 0 || !((v >= min && v <= max) || (zero_ok && v == 0)))
                return set_error(error, size, "%s must be %s, not '%.64s'", name, range, arg);
        *ret = v;
        return 0;
}

/* The same for whole numbers (parse_uint64(): digits only). */
static int set_count(const char *arg, uint64_t min, uint64_t max, size_t *ret, const char *name, const char *range,
                     char *error, size_t size) {
        if (parse_count(arg, min, max, ret) < 0)
                return set_error(error, size, "%s must be %s, not '%.64s'", name, range, arg);
        return 0;
}

enum {
        ARG_SOCKET = 0x100,
        ARG_HTTP,
        ARG_NO_HTTP,
        ARG_FOREGROUND,
        ARG_LOG_LEVEL,
        ARG_HISTORY_POINTS,
        ARG_EXITED_RETENTION,
        ARG_MAX_PROCESSES,
        ARG_MAX_CONNECTIONS,
        ARG_VERSION,
        ARG_DETECT_WINDOW,
        ARG_DETECT_MIN_HORIZON,
        ARG_DETECT_MAX_HORIZON,
        ARG_DETECT_MIN_GROWTH,
        ARG_DETECT_MIN_BYTES,
        ARG_STATE_DIR,
        ARG_NO_STORE,
        ARG_STORE_TIERS,
        ARG_FLUSH_INTERVAL,
        ARG_MAX_DISK_BYTES,
        ARG_CONFIG,
        ARG_SOCKET_MODE,
        ARG_SOCKET_GROUP,
        ARG_HTTP_TOKEN_FILE,
        ARG_MAX_CONNECTIONS_PER_UID,
        ARG_MAX_FRAMES_PER_SECOND,
        ARG_MAX_FRAMES_BURST,
        ARG_AGENT_HELLO_TIMEOUT,
        ARG_AGENT_IDLE_TIMEOUT,
        ARG_HTTP_MAX_CONNECTIONS,
        ARG_HTTP_MAX_CONNECTIONS_PER_ADDRESS,
        ARG_HTTP_CONNECTION_MEMORY,
        ARG_HTTP_RESPONSE_BUDGET,
        ARG_HTTP_TIMEOUT,
        ARG_HTTP_REQUESTS_PER_SECOND,
        ARG_AGENT_WORK_PER_MINUTE,
        ARG_AGENT_WORK_PER_MINUTE_PER_CLIENT,
        ARG_CENSUS_INTERVAL,
        ARG_CENSUS_BUDGET_MS,
        ARG_CENSUS_API_MIN_INTERVAL,
        ARG_CENSUS_TIMEOUT,
};

/* One table for the command line and the configuration file: every option that sets something
 * is also a key of the file, with the same name, the same parser and the same bounds. */
static const struct option longopts[] = {
        { "socket", required_argument, NULL, ARG_SOCKET },
        { "http", required_argument, NULL, ARG_HTTP },
        { "no-http", no_argument, NULL, ARG_NO_HTTP },
        { "foreground", no_argument, NULL, ARG_FOREGROUND },
        { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
        { "history-points", required_argument, NULL, ARG_HISTORY_POINTS },
        { "exited-retention", required_argument, NULL, ARG_EXITED_RETENTION },
        { "max-processes", required_argument, NULL, ARG_MAX_PROCESSES },
        { "max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "detect-window", required_argument, NULL, ARG_DETECT_WINDOW },
        { "detect-min-horizon", required_argument, NULL, ARG_DETECT_MIN_HORIZON },
        { "detect-max-horizon", required_argument, NULL, ARG_DETECT_MAX_HORIZON },
        { "detect-min-growth-per-hour", required_argument, NULL, ARG_DETECT_MIN_GROWTH },
        { "detect-min-bytes-per-hour", required_argument, NULL, ARG_DETECT_MIN_BYTES },
        { "state-dir", required_argument, NULL, ARG_STATE_DIR },
        { "no-store", no_argument, NULL, ARG_NO_STORE },
        { "store-tiers", required_argument, NULL, ARG_STORE_TIERS },
        { "flush-interval", required_argument, NULL, ARG_FLUSH_INTERVAL },
        { "max-disk-bytes", required_argument, NULL, ARG_MAX_DISK_BYTES },
        { "config", required_argument, NULL, ARG_CONFIG },
        { "socket-mode", required_argument, NULL, ARG_SOCKET_MODE },
        { "socket-group", required_argument, NULL, ARG_SOCKET_GROUP },
        { "http-token-file", required_argument, NULL, ARG_HTTP_TOKEN_FILE },
        { "max-connections-per-uid", required_argument, NULL, ARG_MAX_CONNECTIONS_PER_UID },
        { "max-frames-per-second", required_argument, NULL, ARG_MAX_FRAMES_PER_SECOND },
        { "max-frames-burst", required_argument, NULL, ARG_MAX_FRAMES_BURST },
        { "agent-hello-timeout", required_argument, NULL, ARG_AGENT_HELLO_TIMEOUT },
        { "agent-idle-timeout", required_argument, NULL, ARG_AGENT_IDLE_TIMEOUT },
        { "http-max-connections", required_argument, NULL, ARG_HTTP_MAX_CONNECTIONS },
        { "http-max-connections-per-address", required_argument, NULL, ARG_HTTP_MAX_CONNECTIONS_PER_ADDRESS },
        { "http-connection-memory", required_argument, NULL, ARG_HTTP_CONNECTION_MEMORY },
        { "http-response-budget", required_argument, NULL, ARG_HTTP_RESPONSE_BUDGET },
        { "http-timeout", required_argument, NULL, ARG_HTTP_TIMEOUT },
        { "http-requests-per-second", required_argument, NULL, ARG_HTTP_REQUESTS_PER_SECOND },
        { "agent-work-per-minute", required_argument, NULL, ARG_AGENT_WORK_PER_MINUTE },
        { "agent-work-per-minute-per-client", required_argument, NULL, ARG_AGENT_WORK_PER_MINUTE_PER_CLIENT },
        { "census-interval", required_argument, NULL, ARG_CENSUS_INTERVAL },
        { "census-budget-ms", required_argument, NULL, ARG_CENSUS_BUDGET_MS },
        { "census-api-min-interval", required_argument, NULL, ARG_CENSUS_API_MIN_INTERVAL },
        { "census-timeout", required_argument, NULL, ARG_CENSUS_TIMEOUT },
        {}
};

/* The access and limit options (docs/security.md): each with its bounds. */
static int options_set_security(Options *o, int id, const char *arg, const char *name, char *error, size_t size) {
        LimitsConfig *l = &o->limits;
        unsigned long m;
        int r;

        switch (id) {
        case ARG_SOCKET_MODE:
                /* One to four octal digits: strtoul() alone also took "+777", " 777" and
                 * "-0" (found by review). */
                if (arg[0] == '\0' || strlen(arg) > 4 || strspn(arg, "01234567") != strlen(arg))
                        return set_error(error, size, "%s must be an octal mode in 0..0777 (e.g. 0660), not '%.64s'",
                                         name, arg);
                m = strtoul(arg, NULL, 8);
                if (m > 0777)
                        return set_error(error, size, "%s must be an octal mode in 0..0777 (e.g. 0660), not '%.64s'",
                                         name, arg);
                o->socket_mode = (unsigned) m;
                break;
        case ARG_SOCKET_GROUP:
                if (strlen(arg) >= sizeof o->socket_group || strchr(arg, '/') || strchr(arg, ':'))
                        return set_error(error, size, "%s needs a group name or gid shorter than %zu bytes", name,
                                         sizeof o->socket_group);
                snprintf(o->socket_group, sizeof o->socket_group, "%s", arg);
                break;
        case ARG_HTTP_TOKEN_FILE:
                if (arg[0] != '/' || strlen(arg) >= sizeof o->http_token_file)
                        return set_error(error, size, "%s needs an absolute path shorter than %zu bytes", name,
                                         sizeof o->http_token_file);
                snprintf(o->http_token_file, sizeof o->http_token_file, "%s", arg);
                break;
        case ARG_MAX_CONNECTIONS_PER_UID:
                return set_count(arg, 1, 1000000, &l->max_connections_per_uid, name,
                                 "an integer in 1..1000000", error, size);
        case ARG_MAX_FRAMES_PER_SECOND:
                return set_number(arg, 1, 1e6, true, &l->frames_per_second, name,
                                  "0 (unlimited) or frames per second in 1..1000000",
                                  error, size);
        case ARG_MAX_FRAMES_BURST: {
                size_t v = 0;
                r = set_count(arg, 1, 1000000, &v, name, "a whole number of frames in 1..1000000", error, size);
                if (r >= 0)
                        l->frames_burst = (double) v;
                return r;
        }
        case ARG_AGENT_HELLO_TIMEOUT:
                return set_number(arg, 0.1, 3600, false, &l->hello_timeout, name, "seconds in 0.1..3600", error, size);
        case ARG_AGENT_IDLE_TIMEOUT:
                return set_number(arg, 1, 86400, false, &l->idle_timeout, name, "seconds in 1..86400", error, size);
        case ARG_HTTP_MAX_CONNECTIONS:
                return set_count(arg, 1, 10000, &l->http_max_connections, name, "an integer in 1..10000", error, size);
        case ARG_HTTP_MAX_CONNECTIONS_PER_ADDRESS:
                return set_count(arg, 1, 10000, &l->http_max_connections_per_address, name,
                                 "an integer in 1..10000", error, size);
        case ARG_HTTP_CONNECTION_MEMORY:
                return set_count(arg, 4096, 16u * 1024 * 1024, &l->http_connection_memory, name,
                                 "bytes in 4096..16777216", error, size);
        case ARG_HTTP_RESPONSE_BUDGET: {
                size_t v = 0;
                r = set_count(arg, 65536, UINT64_C(1) << 40, &v, name, "bytes in 65536..1099511627776", error, size);
                if (r >= 0)
                        l->http_response_budget = v;
                return r;
        }
        case ARG_HTTP_TIMEOUT:
                return set_number(arg, 1, 3600, false, &l->http_timeout, name, "seconds in 1..3600", error, size);
        case ARG_HTTP_REQUESTS_PER_SECOND:
                return set_number(arg, 1, 1e6, true, &l->http_requests_per_second, name,
                                  "0 (unlimited) or requests per second in 1..1000000 (the burst is twice that)",
                                  error, size);
        case ARG_AGENT_WORK_PER_MINUTE:
                return set_number(arg, 1, 6000, true, &l->work_per_minute_process, name,
                                  "0 (unlimited) or requests per minute in 1..6000",
                                  error, size);
        case ARG_AGENT_WORK_PER_MINUTE_PER_CLIENT:
                return set_number(arg, 1, 6000, true, &l->work_per_minute_client, name,
                                  "0 (unlimited) or requests per minute in 1..6000",
                                  error, size);
        default:
                return set_error(error, size, "unknown option '%s'", name);
        }
        return 0;
}

/* Apply one option; `name` is how the user wrote it ("--socket" or "socket"), for the error. */
static int options_set(Options *o, int id, const char *arg, const char *name, char *error, size_t size) {
        int c;

        switch (id) {
        case ARG_SOCKET:
                if (arg[0] != '/' || strlen(arg) >= sizeof o->socket_path)
                        return set_error(error, size, "%s needs an absolute path shorter than %zu bytes", name,
                                         sizeof o->socket_path);
                snprintf(o->socket_path, sizeof o->socket_path, "%s", arg);
                break;
        case ARG_HTTP:
                if (parse_listen_address(arg, o->http_host, sizeof o->http_host, &o->http_port) < 0)
                        return set_error(error, size, "%s needs ADDR:PORT (e.g. 127.0.0.1:9847 or [::1]:9847), not '%s'",
                                         name, arg);
                o->http_enabled = true;
                break;
        case ARG_NO_HTTP:
                o->http_enabled = false;
                break;
        case ARG_FOREGROUND:
                o->foreground = true;
                break;
        case ARG_LOG_LEVEL:
                c = log_level_from_string(arg);
                if (c < 0)
                        return set_error(error, size, "%s must be one of emerg..debug or 0..7, not '%s'", name, arg);
                o->log_level = c;
                break;
        case ARG_HISTORY_POINTS:
                return set_count(arg, 10, 10000000, &o->history_points, name,
                                 "an integer in 10..10000000", error, size);
        case ARG_EXITED_RETENTION:
                return set_number(arg, 0, 365.0 * 86400, false, &o->exited_retention, name,
                                  "seconds in 0..31536000", error, size);
        case ARG_MAX_PROCESSES:
                return set_count(arg, 1, 1000000, &o->max_processes, name, "an integer in 1..1000000", error, size);
        case ARG_MAX_CONNECTIONS:
                return set_count(arg, 1, 1000000, &o->max_connections, name, "an integer in 1..1000000", error, size);
        case ARG_DETECT_WINDOW:
                return set_number(arg, 0.01, 86400, false, &o->detect.window_seconds, name,
                                  "seconds in 0.01..86400", error, size);
        case ARG_DETECT_MIN_HORIZON:
                return set_number(arg, 0.1, 365.0 * 86400, false, &o->detect.min_horizon_seconds, name,
                                  "seconds in 0.1..31536000", error, size);
        case ARG_DETECT_MAX_HORIZON:
                return set_number(arg, 0.1, 365.0 * 86400, false, &o->detect.max_horizon_seconds, name,
                                  "seconds in 0.1..31536000", error, size);
        case ARG_DETECT_MIN_GROWTH:
                return set_number(arg, 0, 1000, false, &o->detect.min_growth_relative_per_hour, name,
                                  "a fraction in 0..1000 (0.01 = 1 %/h)", error, size);
        case ARG_DETECT_MIN_BYTES:
                return set_number(arg, 0, 1e15, false, &o->detect.min_growth_absolute_per_hour, name,
                                  "bytes in 0..1000000000000000", error, size);
        case ARG_STATE_DIR:
                if (arg[0] != '/' || strlen(arg) >= sizeof o->store.state_dir)
                        return set_error(error, size, "%s needs an absolute path shorter than %zu bytes", name,
                                         sizeof o->store.state_dir);
                snprintf(o->store.state_dir, sizeof o->store.state_dir, "%s", arg);
                o->store_enabled = true;
                break;
        case ARG_NO_STORE:
                o->store_enabled = false;
                break;
        case ARG_STORE_TIERS: {
                char why[160];
                if (store_tiers_parse(&o->store, arg, why, sizeof why) < 0)
                        return set_error(error, size, "%s: %s", name, why);
                break;
        }
        case ARG_FLUSH_INTERVAL:
                return set_number(arg, 0.1, 3600, false, &o->store.flush_interval, name,
                                  "seconds in 0.1..3600", error, size);
        case ARG_MAX_DISK_BYTES: {
                uint64_t v;
                if (parse_uint64(arg, &v) < 0 || (v != 0 && v < 1024 * 1024))
                        return set_error(error, size, "%s must be 0 (unlimited) or bytes in 1048576..%" PRIu64 ", not '%.64s'",
                                         name, UINT64_MAX, arg);
                o->store.max_disk_bytes = v;
                break;
        }
        case ARG_CONFIG:
                if (arg[0] != '/' || strlen(arg) >= sizeof o->config_path)
                        return set_error(error, size, "%s needs an absolute path shorter than %zu bytes", name,
                                         sizeof o->config_path);
                snprintf(o->config_path, sizeof o->config_path, "%s", arg);
                o->config_required = true;
                break;
        case ARG_CENSUS_INTERVAL:
                return set_number(arg, 0, 365.0 * 86400, false, &o->census.interval, name,
                                  "seconds in 0..31536000 (0: no periodic census)", error, size);
        case ARG_CENSUS_BUDGET_MS: {
                size_t v = 0;
                if (parse_count(arg, 1, HW_CENSUS_BUDGET_MS_MAX, &v) < 0)
                        return set_error(error, size, "%s must be milliseconds in 1..%u, not '%.64s'", name,
                                         HW_CENSUS_BUDGET_MS_MAX, arg);
                o->census.budget_ms = (unsigned) v;
                break;
        }
        case ARG_CENSUS_API_MIN_INTERVAL:
                return set_number(arg, 0, 86400, false, &o->census.api_min_interval, name,
                                  "seconds in 0..86400", error, size);
        case ARG_CENSUS_TIMEOUT:
                return set_number(arg, 1, 3600, false, &o->census.timeout, name, "seconds in 1..3600", error, size);
        default:
                return options_set_security(o, id, arg, name, error, size);
        }
        return 0;
}

/* Booleans of the configuration file: what systemd's own files accept. */
static int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

int options_set_key(Options *o, const char *key, const char *value, char *error, size_t size) {
        const struct option *lo;

        for (lo = longopts; lo->name; lo++)
                if (strcmp(lo->name, key) == 0)
                        break;
        /* help, version and config are about this invocation, not settings; foreground is a
         * no-op kept for old command lines. */
        if (!lo->name || lo->val == 'h' || lo->val == ARG_VERSION || lo->val == ARG_CONFIG ||
            lo->val == ARG_FOREGROUND)
                return set_error(error, size, "unknown key '%s'", key);
        if (lo->has_arg == no_argument) {
                int b = parse_boolean(value);
                if (b < 0)
                        return set_error(error, size, "%s must be a boolean (yes/no), not '%s'", key, value);
                if (lo->val == ARG_NO_HTTP)
                        o->http_enabled = !b;
                else if (lo->val == ARG_NO_STORE)
                        o->store_enabled = !b;
                return 0;
        }
        if (value[0] == '\0')
                return set_error(error, size, "%s needs a value", key);
        return options_set(o, lo->val, value, key, error, size);
}

/* argv over *o, no cross-field checks. */
static int options_parse_argv(Options *o, int argc, char *argv[], char *error, size_t size) {
        int c, r;

        optind = 0; /* full re-initialisation, so tests can parse several argv in one process */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        o->show_help = true;
                        break;
                case ARG_VERSION:
                        o->show_version = true;
                        break;
                case '?':
                        for (const struct option *lo = longopts; optopt && lo->name; lo++)
                                if (lo->val == optopt)
                                        return set_error(error, size, lo->has_arg == required_argument ?
                                                         "option '%s' needs a value" : "option '%s' takes no value",
                                                         argv[optind - 1]);
                        if (optopt)
                                return set_error(error, size, "unknown option '-%c'", optopt);
                        return set_error(error, size, "unknown option '%s'", argv[optind - 1]);
                default: {
                        const char *name = "option";
                        for (const struct option *lo = longopts; lo->name; lo++)
                                if (lo->val == c) {
                                        name = lo->name;
                                        break;
                                }
                        char dashed[64];
                        snprintf(dashed, sizeof dashed, "--%s", name);
                        r = options_set(o, c, optarg, dashed, error, size);
                        if (r < 0)
                                return r;
                }
                }
        }
        if (optind < argc)
                return set_error(error, size, "unexpected argument '%s'", argv[optind]);
        return 0;
}

int options_parse(Options *o, int argc, char *argv[], char *error, size_t size) {
        int r = options_parse_argv(o, argc, argv, error, size);

        if (r < 0)
                return r;
        return options_validate(o, error, size);
}

int options_validate(const Options *o, char *error, size_t size) {
        /* Each detection value may be fine alone and wrong together (window vs horizon). */
        if (detect_config_validate(&o->detect, error, size) < 0)
                return -EINVAL;
        if (o->store_enabled) {
                char why[160];
                if (store_config_validate(&o->store, why, sizeof why) < 0)
                        return set_error(error, size, "history store: %s", why);
        }
        return 0;
}

int options_load(Options *o, int argc, char *argv[], char *error, size_t size) {
        Options first;
        int r;

        /* A first pass over the command line finds --config exactly as getopt reads it
         * (abbreviations, --config=PATH, the last one wins) and reports command-line errors
         * before the file is looked at. Cross-field checks wait for the file. */
        options_init(&first);
        r = options_parse_argv(&first, argc, argv, error, size);
        if (r < 0)
                return r;
        options_init(o);
        snprintf(o->config_path, sizeof o->config_path, "%s", first.config_path);
        o->config_required = first.config_required;
        r = config_file_load(o, o->config_path, o->config_required, error, size);
        if (r < 0)
                return r;
        /* The command line overrides the file. */
        return options_parse(o, argc, argv, error, size);
}

void options_print_help(const char *program) {
        printf("Usage: %s [OPTIONS]\n\n"
               "Collect memory samples from heapwatch agents and serve them over HTTP.\n\n"
               "  --socket PATH            agent socket (default: /run/heapwatch/agent.sock as root,\n"
               "                           $XDG_RUNTIME_DIR/heapwatch/agent.sock otherwise)\n"
               "  --http ADDR:PORT         HTTP listen address (default %s:%d)\n"
               "  --no-http                do not serve HTTP\n"
               "  --foreground             accepted for compatibility; heapwatchd never forks\n"
               "  --log-level LEVEL        emerg..debug or 0..7 (default info)\n"
               "  --history-points N       in-memory samples kept per process (default %d)\n"
               "  --exited-retention SECS  how long exited processes stay listed (default %.0f)\n"
               "  --max-processes N        processes tracked at most, live and exited (default %d)\n"
               "  --max-connections N      concurrent agent connections (default %d)\n"
               "  --detect-window SECS     leak detection: one post-GC floor point per window\n"
               "  --detect-min-horizon SECS  shortest history a leak verdict is based on\n"
               "  --detect-max-horizon SECS  longest history evaluated\n"
               "  --detect-min-growth-per-hour FRACTION  smallest growth reported, share of memory per hour\n"
               "  --detect-min-bytes-per-hour BYTES      smallest growth reported, bytes per hour\n"
               "                           (defaults and reasons: docs/detection.md)\n"
               "  --state-dir DIR          durable history (default /var/lib/heapwatch as root,\n"
               "                           $XDG_STATE_HOME/heapwatch otherwise)\n"
               "  --no-store               keep history in memory only\n"
               "  --store-tiers SPEC       RESOLUTION:RETENTION,... (default 10s:2d,1m:14d,10m:180d)\n"
               "  --flush-interval SECS    batched writes at most this far behind (default %.0f)\n"
               "  --max-disk-bytes N       database budget, oldest data dropped first; 0 unlimited\n"
               "                           (default %llu)\n"
               "  --census-interval SECS   object census every SECS while a leak finding is open\n"
               "                           (default 600; 0: only when it opens and on demand)\n"
               "  --census-budget-ms MS    longest GIL hold an agent may take for a census (default 50)\n"
               "  --census-api-min-interval SECS  on-demand censuses per process at most this often (default 10)\n"
               "  --census-timeout SECS    an unanswered census request is given up (default 60)\n"
               "  --config FILE            configuration file, overridden by the command line\n"
               "                           (default %s; heapwatchd.conf(5))\n"
               "  --socket-mode MODE       agent socket permissions, octal (default 0666)\n"
               "  --socket-group GROUP     group owning the agent socket (default: the daemon's)\n"
               "  --http-token-file FILE   require 'Authorization: Bearer <token>' on every endpoint\n"
               "                           but /healthz\n"
               "  --max-connections-per-uid N   agent connections one user may hold (default %d)\n"
               "  --max-frames-per-second N     per agent connection, beyond --max-frames-burst\n"
               "  --agent-hello-timeout SECS, --agent-idle-timeout SECS\n"
               "  --http-max-connections N, --http-max-connections-per-address N\n"
               "  --http-connection-memory BYTES, --http-timeout SECS\n"
               "  --http-response-budget BYTES  responses queued and unsent, all clients (503 beyond)\n"
               "  --http-requests-per-second N  per client address (429 beyond)\n"
               "  --agent-work-per-minute N, --agent-work-per-minute-per-client N\n"
               "                           (limits, defaults and counters: docs/security.md)\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n",
               program, DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, DEFAULT_HISTORY_POINTS, DEFAULT_EXITED_RETENTION,
               DEFAULT_MAX_PROCESSES, DEFAULT_MAX_CONNECTIONS, STORE_DEFAULT_FLUSH_INTERVAL,
               (unsigned long long) STORE_DEFAULT_MAX_DISK_BYTES, DEFAULT_CONFIG_PATH,
               LIMITS_DEFAULT_MAX_CONNECTIONS_PER_UID);
}
