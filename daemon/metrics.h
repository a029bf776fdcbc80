/* SPDX-License-Identifier: MIT */
/*
 * The /metrics page: Prometheus text exposition format 0.0.4, rendered from the Registry and the
 * daemon's own counters. Names, labels and types are the contract in docs/api.md; the output
 * passes `promtool check metrics` (one HELP and TYPE per family, each family's samples together,
 * counters ending in _total, base units, escaped label values).
 */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "registry.h"
#include "stats.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Render every family. Per-process families cover live and retained exited processes; families
 * that need a sample skip processes that have none yet, optional ones (cgroup, arenas, the
 * memory limit) skip processes that do not report them. Daemon families with a `type` or
 * `reason` label list every value, zeros included, so rate() and alerts always find a series.
 * On success returns 0 with a malloc'd text (NUL-terminated; *ret_size excludes the NUL);
 * -ENOMEM otherwise. */
int metrics_render(Registry *reg, const DaemonStats *stats, char **ret_text, size_t *ret_size);

/* Write s into f escaped as a Prometheus label value (\\, \", \n), replacing bytes that are not
 * valid UTF-8 with '?' (the exposition format must be UTF-8). Exposed for tests. */
void metrics_write_label_value(FILE *f, const char *s);
