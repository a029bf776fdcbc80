/* SPDX-License-Identifier: MIT */
/*
 * The JSON of leak findings (docs/api.md): the "leak" member of /api/v1/processes/{id} and the
 * list /api/v1/leaks, most urgent first. Builders return a new reference or NULL on OOM.
 */
#pragma once

#include <jansson.h>

#include "registry.h"
#include "router.h"

/* The "leak" member of one process: verdict, per-signal evaluations, open finding, history. */
json_t *api_process_leak_new(const Process *p);
/* {"leaks": [...]}: findings of every tracked process, filtered, most urgent first. */
json_t *api_leaks_new(Registry *reg, LeakFilter filter);
