/* SPDX-License-Identifier: MIT */
/* Clocks: Unix time as float seconds (what the API speaks) and monotonic microseconds. */
#pragma once

#include <stdint.h>

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

/* Wall clock, Unix seconds with sub-second precision. */
double now_unix(void);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec_monotonic(void);
