/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of the wire format (docs/protocol.md): HELLO, SAMPLE and GOODBYE payloads
 * built with jansson from the plain-C structs of agent-sample.h, framed with the header of
 * include/heapwatch/protocol.h; and the one daemon -> agent payload it understands, WELCOME.
 * No Python, no logging. Strings are made valid UTF-8 and cut to the protocol's bounds here,
 * so whatever the host put in argv, the daemon gets a frame it accepts.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent-sample.h"

/* Copy at most max_bytes bytes of src (src_len bytes, need not be NUL-terminated) into dst
 * (dst_size >= max_bytes + 1), as valid UTF-8: an invalid byte becomes '?', a multi-byte
 * character is never cut in half; with no_controls, C0 controls and DEL become '?' too.
 * Always NUL-terminates (embedded NULs become '?'). Returns the number of bytes written. */
size_t hw_utf8_copy(char *dst, size_t dst_size, const char *src, size_t src_len, size_t max_bytes,
                    int no_controls);

/* The HELLO payload as a JSON object. Returns a new reference, or NULL on ENOMEM. */
json_t *hw_encode_hello_json(const struct hw_agent_identity *id);

/* The SAMPLE payload, or with reason ("exit" / "stop") non-NULL the GOODBYE payload.
 * Returns a new reference, or NULL on ENOMEM. */
json_t *hw_encode_sample_json(const struct hw_agent_sample *s, const char *reason);

/* Whole frames (12-byte header + compact JSON) in one malloc'd buffer the caller frees.
 * Return 0, or -ENOMEM, or -E2BIG when the payload would exceed HW_FRAME_MAX_PAYLOAD (HELLO
 * first drops argv entries from the end until it fits). Nothing is written on failure. */
int hw_encode_hello(const struct hw_agent_identity *id, uint8_t **ret_frame, size_t *ret_size);
int hw_encode_sample(const struct hw_agent_sample *s, const char *reason, uint8_t **ret_frame, size_t *ret_size);

/* Frame any JSON object of the given frame type. Same returns as above. */
int hw_encode_frame(json_t *payload, uint8_t type, uint8_t **ret_frame, size_t *ret_size);

/* Parse a daemon's payload: a JSON object (new reference), or NULL when it is not one. */
json_t *hw_decode_object(const uint8_t *payload, size_t size);

/* Whether s (len bytes) is non-empty, at most max bytes, without control characters. */
int hw_string_is_plain(const char *s, size_t len, size_t max);

/* Parse a WELCOME payload and copy its "id" (a non-empty string of at most HW_AGENT_ID_MAX
 * bytes, no control characters) into ret_id[HW_AGENT_ID_MAX + 1].
 * Returns 0, or -EBADMSG when the payload is not such an object (ret_id untouched). */
int hw_decode_welcome(const uint8_t *payload, size_t size, char ret_id[HW_AGENT_ID_MAX + 1]);
