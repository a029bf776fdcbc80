/* SPDX-License-Identifier: MIT */
/*
 * Strict parsers for text that comes from outside (command line, query strings, config):
 * the whole string must be consumed, no leading/trailing junk, no overflow, finite numbers.
 * All return 0 on success and -EINVAL/-ERANGE on failure, writing *ret only on success.
 */
#pragma once

#include <stdint.h>

int parse_double(const char *s, double *ret);
int parse_int64(const char *s, int64_t *ret);
int parse_uint64(const char *s, uint64_t *ret);
/* A plain decimal number, as an operator writes one in a configuration: digits, optionally a
 * point and more digits ("10", "0.5"); no sign, exponent, hex, blanks, "inf" or "nan", at
 * most PARSE_DECIMAL_MAX characters. */
#define PARSE_DECIMAL_MAX 32
int parse_decimal(const char *s, double *ret);
/* Seconds as a positive finite number within [min, max]. */
int parse_seconds(const char *s, double min, double max, double *ret);
/* "ADDR:PORT" with an IPv4 address or "[v6]:PORT"; host written into host[host_size]. */
int parse_listen_address(const char *s, char *host, size_t host_size, uint16_t *ret_port);
