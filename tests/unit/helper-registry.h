/* SPDX-License-Identifier: MIT */
/*
 * Shared by the unit tests that need process records in a Registry (test-leaks.c,
 * test-leak-evidence.c): attach one the way agent-server.c does after a HELLO, without a
 * connection.
 */
#pragma once

#include <sys/types.h>

#include "registry.h"

/* Attach a process record for pid (service "svc-<pid>", start ticks 1000 + pid, started and
 * connected at `at`); fails the test when the registry refuses. Returns the record. */
Process *helper_attach(Registry *reg, pid_t pid, double at);
