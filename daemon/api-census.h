/* SPDX-License-Identifier: MIT */
/*
 * The census endpoints (docs/api.md "Census"): GET /api/v1/processes/{id}/census shows a
 * process's censuses, the types that grow and the latest referrer chains; POST asks its agent
 * for a census now. A POST makes an agent do work inside someone else's process: api.c puts it
 * through the daemon's access policy first (http_access_check_agent_work(), access.h: the
 * token or a loopback client, per-process and per-client rates), and it is also limited to one
 * outstanding request and one per --census-api-min-interval per process.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "registry.h"
#include "router.h"

/* GET .../census for the process id: 200 with what census.c keeps in memory and, when q asks
 * for it, "history": the censuses stored in [q->from, q->to] (an ended process the daemon only
 * has in the store answers with that history alone); 404 unknown process. Sets *ret_status and
 * either *ret_json (a new reference) or the message in error[error_size]. Returns 0, -ENOMEM. */
int api_census_get(Registry *reg, const char *id, const CensusQuery *q, double now, int *ret_status,
                   json_t **ret_json, char *error, size_t error_size);

/* POST .../census for the process id: 202 with {"id", "request_id", "kind"} when the request
 * went out; 404 unknown process, 409 not live (no agent to ask), 429 too soon or one already
 * outstanding, 503 the agent's socket is full. Sets *ret_status and either *ret_json (a new
 * reference) or the message in error[error_size]. Returns 0 or -ENOMEM. */
int api_census_request(Registry *reg, const char *id, double now, int *ret_status, json_t **ret_json, char *error,
                       size_t error_size);
