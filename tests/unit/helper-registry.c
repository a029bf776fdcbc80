/* SPDX-License-Identifier: MIT */
/*
 * Process records for unit tests (see helper-registry.h).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "helper-registry.h"
#include "router.h"

Process *helper_attach(Registry *reg, pid_t pid, double at) {
        HwHello hello = { .protocol = 1, .pid = pid };
        char id[PROCESS_ID_MAX];
        Process *p;

        snprintf(hello.service, sizeof hello.service, "svc-%d", (int) pid);
        process_id_format(id, pid, 1000 + pid);
        ck_assert_int_eq(registry_attach(reg, id, pid, 0, 0, 1, 1000 + pid, at, &hello, at, &p), 0);
        return p;
}

json_t *helper_api_json(Registry *reg, const char *method, const char *path, ApiQueryFunc query, double now,
                        int want_status) {
        const char *type;
        char *body;
        size_t size;
        int status;
        Route route;
        json_t *j;

        ck_assert_int_eq(router_match(method, path, &route), 0);
        ck_assert_int_eq(api_handle(reg, &route, query, NULL, now, &status, &body, &size, &type), 0);
        ck_assert_msg(status == want_status, "%s %s: %d, expected %d: %.*s", method, path, status, want_status,
                      (int) size, body);
        j = json_loadb(body, size, 0, NULL);
        free(body);
        ck_assert_ptr_nonnull(j);
        return j;
}
