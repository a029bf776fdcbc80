/* SPDX-License-Identifier: MIT */
/*
 * heapwatch wire protocol: the one definition of what the agent and heapwatchd say to each
 * other over the agent socket (a SOCK_STREAM Unix socket). See docs/protocol.md for the prose.
 *
 * A connection carries a sequence of frames in both directions. Every frame is a fixed 12-byte
 * header followed by a payload of `length` bytes:
 *
 *   offset size  field
 *        0    4  magic    "HWP\0"
 *        4    1  version  HW_PROTOCOL_VERSION (a peer rejects frames of a version it lacks)
 *        5    1  type     enum hw_frame_type
 *        6    2  flags    reserved, sent as 0, ignored on receipt
 *        8    4  length   payload length in bytes, big-endian, <= HW_FRAME_MAX_PAYLOAD
 *
 * Payloads are UTF-8 JSON objects. Receivers ignore members they do not know, so an old daemon
 * accepts a newer agent; a member whose type or range is wrong makes the frame invalid.
 * Types 1..63 flow agent -> daemon, 64..127 daemon -> agent.
 *
 * This header is included by both the agent (inside someone else's interpreter) and the daemon,
 * so it is header-only, dependency-free and allocation-free.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HW_PROTOCOL_VERSION 1
#define HW_FRAME_MAGIC "HWP"            /* plus the terminating NUL: 4 bytes on the wire */
#define HW_FRAME_HEADER_SIZE 12
#define HW_FRAME_MAX_PAYLOAD (256u * 1024u) /* a sample is ~2 KiB; heap reports stay far below */

enum hw_frame_type {
        /* agent -> daemon */
        HW_FRAME_HELLO = 1,   /* identity; first frame of every connection */
        HW_FRAME_SAMPLE = 2,  /* one periodic sample */
        HW_FRAME_GOODBYE = 3, /* final sample at interpreter exit or stop(); connection ends */
        HW_FRAME_CENSUS = 4,  /* reply to a REQUEST: type census and/or referrer chains */
        /* daemon -> agent */
        HW_FRAME_WELCOME = 64, /* reply to HELLO: the process record id the daemon assigned */
        HW_FRAME_REQUEST = 65, /* ask the agent for work: {"id", "kind": "census"|"chains", ...} */
        HW_FRAME_RESEND_STACKS = 66, /* no payload: a heap report was lost, send the stacks again */
};

/* Bounds of REQUEST / CENSUS (docs/protocol.md "Census"), shared so both sides agree. */
#define HW_REQUEST_MAX_PAYLOAD 4096u     /* a REQUEST is small; the agent reads no more */
#define HW_CENSUS_BUDGET_MS_DEFAULT 50u  /* longest time the agent holds the GIL for one request */
#define HW_CENSUS_BUDGET_MS_MAX 1000u
#define HW_CENSUS_SLICES_DEFAULT 20u     /* GIL holds a census may take, the GIL released between */
#define HW_CENSUS_SLICES_MAX 100u
#define HW_CENSUS_TOP_DEFAULT 32u        /* types in a census reply */
#define HW_CENSUS_TOP_MAX 256u
#define HW_CENSUS_TYPE_NAME_MAX 256u     /* bytes of a type's name ("module.QualName") */
#define HW_CHAINS_TYPES_MAX 3u           /* types a chains request names */
#define HW_CHAINS_MAX 3u                 /* chains in a reply */
#define HW_CHAIN_STEPS_MAX 32u           /* objects in one chain, root included */
#define HW_CHAIN_TEXT_MAX 2048u          /* bytes of a chain's text */
#define HW_CHAIN_LABEL_MAX 256u          /* bytes of a root's name or an edge's label */
#define HW_HOLDERS_PER_TYPE 3u           /* holders (containers of the most instances) per type */
#define HW_HOLDERS_MAX 12u               /* holders in a reply: per type, and the largest containers */
#define HW_HOLDERS_ANY "*"               /* a holder's type when it is one of the largest containers */

/* HELLO "features": what an agent understands beyond protocol 1 as first defined, so a daemon
 * asks an older agent nothing it would take for a protocol error. Unknown names are ignored. */
#define HW_FEATURES_MAX 16u              /* names in "features" */
#define HW_FEATURE_NAME_MAX 64u          /* bytes of one name */
/* a chains request may name no type when it asks for holders: the largest containers only */
#define HW_FEATURE_HOLDERS_ONLY "chains_holders_only"

struct hw_frame_header {
        uint8_t version;
        uint8_t type;
        uint16_t flags;
        uint32_t length;
};

enum hw_header_status {
        HW_HEADER_OK = 0,
        HW_HEADER_BAD_MAGIC = -1,
        HW_HEADER_BAD_VERSION = -2,
        HW_HEADER_TOO_LARGE = -3,
};

/* Write a frame header for a payload of `length` bytes into out[HW_FRAME_HEADER_SIZE]. */
static inline void hw_frame_header_pack(uint8_t out[HW_FRAME_HEADER_SIZE], uint8_t type, uint32_t length) {
        memcpy(out, HW_FRAME_MAGIC, 4);
        out[4] = HW_PROTOCOL_VERSION;
        out[5] = type;
        out[6] = 0;
        out[7] = 0;
        out[8] = (uint8_t) (length >> 24);
        out[9] = (uint8_t) (length >> 16);
        out[10] = (uint8_t) (length >> 8);
        out[11] = (uint8_t) length;
}

/* Parse and validate a frame header. On HW_HEADER_OK fills *ret; otherwise leaves it untouched.
 * The frame type is not checked here: unknown types are the receiver's policy. */
static inline enum hw_header_status hw_frame_header_unpack(const uint8_t in[HW_FRAME_HEADER_SIZE],
                                                           struct hw_frame_header *ret) {
        uint32_t length;

        if (memcmp(in, HW_FRAME_MAGIC, 4) != 0)
                return HW_HEADER_BAD_MAGIC;
        if (in[4] != HW_PROTOCOL_VERSION)
                return HW_HEADER_BAD_VERSION;
        length = ((uint32_t) in[8] << 24) | ((uint32_t) in[9] << 16) | ((uint32_t) in[10] << 8) | in[11];
        if (length > HW_FRAME_MAX_PAYLOAD)
                return HW_HEADER_TOO_LARGE;
        ret->version = in[4];
        ret->type = in[5];
        ret->flags = (uint16_t) ((in[6] << 8) | in[7]);
        ret->length = length;
        return HW_HEADER_OK;
}
