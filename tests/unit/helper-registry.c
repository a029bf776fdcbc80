/* SPDX-License-Identifier: MIT */
/*
 * Process records for unit tests (see helper-registry.h).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>

#include "helper-registry.h"

Process *helper_attach(Registry *reg, pid_t pid, double at) {
        HwHello hello = { .protocol = 1, .pid = pid };
        char id[PROCESS_ID_MAX];
        Process *p;

        snprintf(hello.service, sizeof hello.service, "svc-%d", (int) pid);
        process_id_format(id, pid, 1000 + pid);
        ck_assert_int_eq(registry_attach(reg, id, pid, 0, 0, 1, 1000 + pid, at, &hello, at, &p), 0);
        return p;
}
