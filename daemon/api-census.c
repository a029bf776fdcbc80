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

/* Since when a census counts for the open finding (0: no finding, the oldest census is the
 * baseline). */
static double finding_since(const Process *p) {
        return p->leaks.current.open ? p->leaks.current.opened_at : 0;
}

json_t *api_census_get(const Process *p, double now) {
        return process_census_json(p->census, p->id, finding_since(p), now);
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
