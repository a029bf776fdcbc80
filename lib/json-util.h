/* SPDX-License-Identifier: MIT */
/*
 * jansson helpers for building JSON documents: scope-bound release, setters that take ownership
 * of the value whatever happens (a NULL value, i.e. a builder that ran out of memory, gives
 * -ENOMEM), and constructors that never produce invalid JSON.
 */
#pragma once

#include <jansson.h>

#include "macro.h"

/* json_decrefp() comes with jansson >= 2.9. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* o[key] = value; takes ownership of value. Returns 0 or -ENOMEM. */
int json_add(json_t *o, const char *key, json_t *value);
/* a.append(value); takes ownership of value. Returns 0 or -ENOMEM. */
int json_append(json_t *a, json_t *value);
/* A real, or null for NaN/infinity (JSON has neither). */
json_t *json_number_or_null(double v);
/* A timestamp where 0 means "not known" or "not yet": null then. */
json_t *json_time_or_null(double t);
/* A count or size stored as a double: an integer when it is one, else a real. */
json_t *json_value(double v);
/* A string from a peer: if jansson refuses it (not UTF-8), non-ASCII bytes become '?'. */
json_t *json_string_lossy(const char *s);
