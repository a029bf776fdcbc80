/* SPDX-License-Identifier: MIT */
/*
 * Reassembles frames (include/heapwatch/protocol.h) from a byte stream that arrives in pieces
 * of any size. Validates the header as soon as its 12 bytes are in, so an oversized or garbage
 * frame is refused before its payload is read or buffered. Pure: no I/O, no logging.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "heapwatch/protocol.h"
#include "stats.h"

typedef struct FrameReader {
        uint8_t header[HW_FRAME_HEADER_SIZE];
        size_t header_len;
        struct hw_frame_header hdr;
        uint8_t *payload; /* hdr.length + 1 bytes (NUL-terminated for convenience) */
        size_t payload_len;
        size_t max_payload;
} FrameReader;

enum {
        FRAME_INCOMPLETE = 0, /* all input consumed, no complete frame yet */
        FRAME_COMPLETE = 1,   /* r->hdr and r->payload hold a frame; call frame_reader_next() */
};

/* max_payload: the largest payload accepted (<= HW_FRAME_MAX_PAYLOAD). */
void frame_reader_init(FrameReader *r, size_t max_payload);
void frame_reader_done(FrameReader *r);

/* Consume bytes from data[0..len). Stops after a complete frame (so the caller can act on it
 * before more is parsed); *ret_used says how much was consumed. Returns FRAME_INCOMPLETE,
 * FRAME_COMPLETE, -EBADMSG (with *ret_reason set: bad magic, version or size) or -ENOMEM.
 * After an error the stream is unusable: close the connection. */
int frame_reader_push(FrameReader *r, const uint8_t *data, size_t len, size_t *ret_used,
                      FrameRejectReason *ret_reason);

/* Release the current frame and get ready for the next one. */
void frame_reader_next(FrameReader *r);
