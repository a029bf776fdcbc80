/* SPDX-License-Identifier: MIT */
/* The daemon's own health counters (see stats.h). */
#include "config.h"

#include "macro.h"
#include "stats.h"

DaemonStats daemon_stats;

const char *frame_reject_reason_to_string(FrameRejectReason r) {
        static const char *const table[_REJECT_MAX] = {
                [REJECT_BAD_MAGIC] = "bad_magic",
                [REJECT_BAD_VERSION] = "bad_version",
                [REJECT_TOO_LARGE] = "too_large",
                [REJECT_BAD_JSON] = "bad_json",
                [REJECT_BAD_MESSAGE] = "bad_message",
                [REJECT_UNEXPECTED] = "unexpected_frame",
                [REJECT_OUT_OF_ORDER] = "out_of_order",
                [REJECT_PROCESS_LIMIT] = "process_limit",
                [REJECT_IDENTITY] = "identity",
        };
        if ((unsigned) r >= ELEMENTSOF(table))
                return NULL;
        return table[r];
}
