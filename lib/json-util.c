/* SPDX-License-Identifier: MIT */
/*
 * Small jansson helpers for building API documents (see json-util.h): ownership-taking
 * setters that turn a NULL (a failed builder) into -ENOMEM, and values that stay valid JSON
 * whatever a double or an agent's string holds.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"

/* Doubles up to 2^53 are exact integers. */
#define JSON_EXACT_INT_MAX 9007199254740992.0

/* Set o[key] = value, taking ownership of value whatever happens. NULL value means a builder
 * ran out of memory. */
int json_add(json_t *o, const char *key, json_t *value) {
        if (!value)
                return -ENOMEM;
        /* json_object_set_new() releases value itself when it fails. */
        if (json_object_set_new(o, key, value) < 0)
                return -ENOMEM;
        return 0;
}

int json_append(json_t *a, json_t *value) {
        if (!value)
                return -ENOMEM;
        if (json_array_append_new(a, value) < 0)
                return -ENOMEM;
        return 0;
}

/* JSON has no NaN or infinity; message.c never lets them in, but the API must not fail if one
 * appears. */
json_t *json_number_or_null(double v) {
        return isfinite(v) ? json_real(v) : json_null();
}

/* A timestamp where 0 means "not known" or "not yet". */
json_t *json_time_or_null(double t) {
        return isfinite(t) && t > 0 ? json_real(t) : json_null();
}

/* A series value: history stores doubles, but most metrics are counts and byte sizes, which
 * read better (and parse as integers) without a ".0". */
json_t *json_value(double v) {
        if (!isfinite(v))
                return json_null();
        if (v == trunc(v) && fabs(v) <= JSON_EXACT_INT_MAX)
                return json_integer((json_int_t) v);
        return json_real(v);
}

/* A string from an agent. message.c validated it as UTF-8, but one bad string must not turn
 * every listing into a 500: if jansson refuses it, non-ASCII bytes become '?'. */
json_t *json_string_lossy(const char *s) {
        _cleanup_free_ char *copy = NULL;
        json_t *j;

        if (!s)
                return json_null();
        j = json_string(s);
        if (j)
                return j;
        copy = strdup(s);
        if (!copy)
                return NULL;
        for (char *c = copy; *c; c++)
                if ((unsigned char) *c >= 0x80)
                        *c = '?';
        return json_string(copy);
}

