/* SPDX-License-Identifier: MIT */
/*
 * Decoding and validation of frame payloads (JSON, docs/protocol.md) into HwHello / HwSample,
 * and encoding of the daemon's WELCOME. Unknown members are ignored (forward compatibility);
 * a known member of the wrong type or out of range rejects the whole message. Pure: no I/O,
 * no logging; what was wrong is written into the caller's error buffer.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "census.h"
#include "sample.h"

#define MESSAGE_ERROR_MAX 160

/* Every decoder: -E2BIG when a string or array is beyond the protocol's bounds (a limit hit,
 * docs/security.md), -EINVAL for any other wrong member; the message in error either way.
 *
 * Returns 0, -EBADMSG (payload not a JSON object; *ret untouched), -EINVAL or -E2BIG (a member is
 * wrong; *ret untouched) or -ENOMEM. On success the caller owns ret->argv (hw_hello_done()). */
int message_decode_hello(const uint8_t *payload, size_t len, HwHello *ret, char *error, size_t error_size);

/* goodbye: decode the GOODBYE variant (adds "reason"). Same returns as above. */
int message_decode_sample(const uint8_t *payload, size_t len, bool goodbye, HwSample *ret,
                          char *error, size_t error_size);

/* Like message_decode_sample(), and the optional "heap" member: *ret_heap is set to a new report
 * (free with hw_heap_report_free()) or NULL when the sample has none. A bad "heap" member makes
 * the whole message invalid (-EINVAL), like any other member. */
int message_decode_sample_heap(const uint8_t *payload, size_t len, bool goodbye, HwSample *ret,
                               HwHeapReport **ret_heap, char *error, size_t error_size);

/* Build a WELCOME frame (header + payload) for a process id into a malloc'ed buffer. */
int message_encode_welcome(const char *id, uint8_t **ret, size_t *ret_len);

/* Build a REQUEST frame (header + payload, docs/protocol.md "Census") into a malloc'ed buffer.
 * Returns 0 or -ENOMEM. */
int message_encode_request(const CensusRequest *req, uint8_t **ret, size_t *ret_len);

/* Decode and validate a CENSUS payload: bounded arrays (at most HW_CENSUS_TOP_MAX types, of
 * which the first CENSUS_TYPES_MAX are kept; at most HW_CHAINS_MAX chains and HW_HOLDERS_MAX
 * holders, each holding at least one instance), bounded printable
 * strings, counts and times in range. Returns 0, -EBADMSG (not a JSON object), -EINVAL or -E2BIG (a
 * member is wrong; message in error) or -ENOMEM; *ret untouched on failure. */
int message_decode_census(const uint8_t *payload, size_t len, CensusReply *ret, char *error, size_t error_size);
