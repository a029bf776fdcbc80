/* SPDX-License-Identifier: MIT */
/*
 * Shared by the unit tests that need process records in a Registry (test-leaks.c,
 * test-leak-evidence.c, test-census.c, test-store.c): attach one the way agent-server.c does
 * after a HELLO, without a connection, and ask the API layer about it without HTTP.
 */
#pragma once

#include <sys/types.h>

#include <jansson.h>

#include "api.h"
#include "registry.h"

/* Attach a process record for pid (service "svc-<pid>", start ticks 1000 + pid, started and
 * connected at `at`); fails the test when the registry refuses. Returns the record. */
Process *helper_attach(Registry *reg, pid_t pid, double at);

/* method path through router_match() and api_handle() at time now (query: the query parameters,
 * or NULL); fails the test unless the status is want_status and the body is JSON. Returns the
 * body (a new reference). */
json_t *helper_api_json(Registry *reg, const char *method, const char *path, ApiQueryFunc query, double now,
                        int want_status);
