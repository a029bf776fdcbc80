/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for `heapwatch analyze`: the input is the recorded series file (CSV, the
 * series endpoint's JSON or a Prometheus range-query export; the format is recognised from the
 * content, as the command does). A file that parses is replayed through the daemon's own
 * detector twice -- at the production defaults and accelerated (1 s windows, 20 s minimum
 * horizon, as the demo and the scenarios run) -- with a memory limit, so windows, horizons,
 * hysteresis and time to the limit all run on whatever timestamps and values the parser lets
 * through (gaps up to 2e11 s, values up to 2^64); then both renderings are produced. Every
 * failure must come with a terminated one-line reason.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "detect.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        log_set_max_level(LOG_CRIT);
        return 0;
}

static void replay(const AnalyzeInput *in, const DetectConfig *c) {
        AnalyzeReport *reports;
        char *text = NULL, *json = NULL;

        reports = calloc(in->n_series, sizeof *reports);
        if (!reports)
                return;
        for (size_t i = 0; i < in->n_series; i++) {
                const AnalyzeSeries *s = &in->series[i];

                /* The parser's promise to the detector: strictly increasing, finite points. */
                if (analyze_series(c, s->points, s->n, 8.0 * 1024 * 1024 * 1024, NULL, NULL, &reports[i]) < 0)
                        abort();
        }
        if (analyze_render_text(in, reports, "fuzz", &text) < 0 ||
            analyze_render_json(in, reports, c, "fuzz", &json) < 0)
                abort();
        free(text);
        free(json);
        free(reports);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        AnalyzeInput in = {};
        DetectConfig production, accelerated;
        char error[512];
        int r;

        error[0] = '\0';
        r = analyze_parse((const char *) data, size, &in, error, sizeof error);
        if (r < 0) {
                /* A rejected file says why, in a terminated string within the buffer. */
                if (strnlen(error, sizeof error) == sizeof error || error[0] == '\0')
                        abort();
                return 0;
        }

        detect_config_default(&production);
        accelerated = production;
        accelerated.window_seconds = 1;
        accelerated.min_horizon_seconds = 20;
        accelerated.max_horizon_seconds = 3600;
        if (detect_config_validate(&accelerated, error, sizeof error) < 0)
                abort();

        replay(&in, &production);
        replay(&in, &accelerated);
        analyze_input_clear(&in);
        return 0;
}
