/* SPDX-License-Identifier: MIT */
/* Frame reassembly from a byte stream (see frame-reader.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame-reader.h"
#include "macro.h"

void frame_reader_init(FrameReader *r, size_t max_payload) {
        memset(r, 0, sizeof *r);
        r->max_payload = max_payload > HW_FRAME_MAX_PAYLOAD ? HW_FRAME_MAX_PAYLOAD : max_payload;
}

void frame_reader_done(FrameReader *r) {
        free(r->payload);
        r->payload = NULL;
}

void frame_reader_next(FrameReader *r) {
        free(r->payload);
        r->payload = NULL;
        r->payload_len = 0;
        r->header_len = 0;
}

int frame_reader_push(FrameReader *r, const uint8_t *data, size_t len, size_t *ret_used,
                      FrameRejectReason *ret_reason) {
        size_t used = 0;

        if (r->header_len < HW_FRAME_HEADER_SIZE) {
                size_t n = HW_FRAME_HEADER_SIZE - r->header_len;
                if (n > len)
                        n = len;
                memcpy(r->header + r->header_len, data, n);
                r->header_len += n;
                used += n;
                if (r->header_len < HW_FRAME_HEADER_SIZE) {
                        *ret_used = used;
                        return FRAME_INCOMPLETE;
                }

                switch (hw_frame_header_unpack(r->header, &r->hdr)) {
                case HW_HEADER_OK:
                        break;
                case HW_HEADER_BAD_MAGIC:
                        *ret_reason = REJECT_BAD_MAGIC;
                        return -EBADMSG;
                case HW_HEADER_BAD_VERSION:
                        *ret_reason = REJECT_BAD_VERSION;
                        return -EBADMSG;
                case HW_HEADER_TOO_LARGE:
                default:
                        *ret_reason = REJECT_TOO_LARGE;
                        return -EBADMSG;
                }
                if (r->hdr.length > r->max_payload) {
                        *ret_reason = REJECT_TOO_LARGE;
                        return -EBADMSG;
                }
                /* Allocated only once the header is known good: garbage never costs memory. */
                r->payload = malloc(r->hdr.length + 1);
                if (!r->payload)
                        return -ENOMEM;
                r->payload_len = 0;
        }

        {
                size_t want = r->hdr.length - r->payload_len;
                size_t n = len - used < want ? len - used : want;
                memcpy(r->payload + r->payload_len, data + used, n);
                r->payload_len += n;
                used += n;
        }
        *ret_used = used;
        if (r->payload_len < r->hdr.length)
                return FRAME_INCOMPLETE;
        r->payload[r->payload_len] = '\0';
        return FRAME_COMPLETE;
}
