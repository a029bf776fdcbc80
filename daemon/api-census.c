/* SPDX-License-Identifier: MIT */
/*
 * Census endpoints (see api-census.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent-server.h"
#include "api-census.h"
#include "census.h"
#include "json-util.h"
#include "macro.h"
#include "store.h"

static int on_stored_census(void *userdata, const CensusRecord *r, double since) {
        _cleanup_json_ json_t *o = census_record_json(r);

        if (!o || json_add(o, "finding_since", since > 0 ? json_real(since) : json_null()) < 0)
                return -ENOMEM;
        return json_append(userdata, TAKE_PTR(o));
}

/* "history": the stored censuses in [from, to], oldest first, at most CENSUS_HISTORY_ROWS_MAX,
 * and "history_truncated" when there are more. */
static int add_history(Store *store, const char *id, const CensusQuery *q, json_t *body) {
        _cleanup_json_ json_t *history = json_array();
        size_t n = 0;
        int r = -ENOENT;

        if (!history)
                return -ENOMEM;
        if (store)
                r = store_read_censuses(store, id, q->from, q->to, CENSUS_HISTORY_ROWS_MAX + 1, on_stored_census, history,
                                        &n);
        if (r == -ENOMEM)
                return r;
        /* Not stored (no store, an id without censuses, a database not open): none to show. */
        if (r < 0)
                json_array_clear(history);
        if (json_array_size(history) > CENSUS_HISTORY_ROWS_MAX)
                json_array_remove(history, CENSUS_HISTORY_ROWS_MAX);
        if (json_add(body, "history_truncated", json_boolean(r >= 0 && n > CENSUS_HISTORY_ROWS_MAX)) < 0 ||
            json_add(body, "history", TAKE_PTR(history)) < 0)
                return -ENOMEM;
        return 0;
}

int api_census_get(Registry *reg, const char *id, const CensusQuery *q, double now, int *ret_status,
                   json_t **ret_json, char *error, size_t error_size) {
        Process *p = registry_find(reg, id);
        Store *store = registry_get_store(reg);
        _cleanup_json_ json_t *body = NULL;
        StoreProcessInfo info;

        *ret_json = NULL;
        if (!p && (!store || store_get_process(store, id, &info) < 0)) {
                *ret_status = 404;
                snprintf(error, error_size, "unknown process id \"%s\"", id);
                return 0;
        }
        body = process_census_json(p ? p->census : NULL, id, p ? process_leaks_open_since(&p->leaks) : 0, now);
        if (!body)
                return -ENOMEM;
        if (q->history && add_history(store, id, q, body) < 0)
                return -ENOMEM;
        *ret_status = 200;
        *ret_json = TAKE_PTR(body);
        return 0;
}

int api_census_request(Registry *reg, const char *id, double now, int *ret_status, json_t **ret_json, char *error,
                       size_t error_size) {
        Process *p = registry_find(reg, id);
        double retry = 0;
        int r;

        *ret_json = NULL;
        if (!p) {
                *ret_status = 404;
                snprintf(error, error_size, "unknown process id \"%s\"", id);
                return 0;
        }
        if (p->state != PROCESS_LIVE || !p->owner) {
                *ret_status = 409;
                snprintf(error, error_size, "process %s has no agent attached", id);
                return 0;
        }
        r = process_census_ensure(&p->census);
        if (r < 0)
                return r;
        r = process_census_api_allow(p->census, now, &retry);
        if (r == -EBUSY) {
                *ret_status = 429;
                snprintf(error, error_size, "a request to this process is outstanding; try again shortly");
                return 0;
        }
        if (r == -EAGAIN) {
                *ret_status = 429;
                snprintf(error, error_size, "one census per %.0f s per process; try again in %.1f s",
                         census_config.api_min_interval, retry);
                return 0;
        }
        r = agent_server_request_census(p, now);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_status = 503;
                snprintf(error, error_size, "the agent cannot take a request now: %s", strerror(-r));
                return 0;
        }
        *ret_json = json_pack("{s:s, s:s, s:b}", "id", p->id, "kind", "census", "requested", 1);
        if (!*ret_json)
                return -ENOMEM;
        *ret_status = 202;
        return 0;
}
