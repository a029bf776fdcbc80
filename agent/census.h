/* SPDX-License-Identifier: MIT */
/*
 * The plain-C half of the agent's object census and referrer chains (docs/protocol.md
 * "Census"): decoding the daemon's REQUEST, a bounded table counting objects per type key
 * while the heap is walked, picking the top types, formatting a referrer chain as text, and
 * encoding the CENSUS reply. No Python here (heapwalk.c walks the interpreter's heap and fills
 * these structures), so Check tests all of it without an interpreter.
 *
 * Everything is bounded by the constants of include/heapwatch/protocol.h: at most
 * HW_CENSUS_TOP_MAX types and HW_CHAINS_MAX chains of HW_CHAIN_STEPS_MAX steps in a reply.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heapwatch/protocol.h"

enum hw_request_kind {
        HW_REQUEST_CENSUS, /* count objects by type */
        HW_REQUEST_CHAINS, /* referrer chains to instances of the named types */
        HW_REQUEST_UNSUPPORTED, /* a kind this agent does not know: answered with an error */
};

struct hw_request {
        uint32_t id;       /* the daemon's, echoed in the reply; >= 1 */
        enum hw_request_kind kind;
        unsigned budget_ms; /* longest GIL hold for this request, 1..HW_CENSUS_BUDGET_MS_MAX */
        unsigned top;       /* census: types to report, 1..HW_CENSUS_TOP_MAX */
        unsigned slices;    /* census: GIL holds at most, 1..HW_CENSUS_SLICES_MAX */
        bool holders;       /* chains: also find the containers holding the most instances */
        size_t n_types;     /* chains: the types to find, 1..HW_CHAINS_TYPES_MAX */
        char types[HW_CHAINS_TYPES_MAX][HW_CENSUS_TYPE_NAME_MAX + 1];
};

/* Parse a REQUEST payload: {"id": N, "kind": "census"|"chains", "budget_ms": B, "top": T,
 * "slices": S, "types": [..], "holders": true}; budget_ms, top, slices and holders are optional (defaults from protocol.h), types is required
 * for "chains" (non-empty strings without control characters). Unknown members are ignored; a
 * kind this agent does not know gives kind HW_REQUEST_UNSUPPORTED (to be answered with an
 * error). Returns 0, or -EBADMSG (not such an object; *ret untouched). */
int hw_request_decode(const uint8_t *payload, size_t size, struct hw_request *ret);

/* ---- Counting ------------------------------------------------------------------------------ */

struct hw_census_entry {
        const void *key; /* the type object; NULL marks an empty slot */
        uint64_t count;
        uint64_t size_bytes;
};

/* Open addressing on the key's address. When HW_CENSUS_TABLE_MAX keys exist already, objects
 * of further types go into overflow_* (a heap with that many types is not a heap we can name). */
#define HW_CENSUS_TABLE_MAX 32768u
struct hw_census_table {
        struct hw_census_entry *slots;
        size_t capacity; /* power of two, 2 * HW_CENSUS_TABLE_MAX */
        size_t used;
        uint64_t overflow_count;
        uint64_t overflow_size_bytes;
};

/* Returns 0 or -ENOMEM. */
int hw_census_table_init(struct hw_census_table *t);
void hw_census_table_done(struct hw_census_table *t);

/* Count one object of type key. Returns true when key entered the table (its first object):
 * the caller keeps the key alive from then on. */
static inline bool hw_census_table_add(struct hw_census_table *t, const void *key, uint64_t size_bytes) {
        size_t mask = t->capacity - 1;
        size_t i = (size_t) ((((uintptr_t) key >> 4) * 0x9E3779B97F4A7C15ull) >> 40) & mask;

        for (;;) {
                struct hw_census_entry *e = &t->slots[i];

                if (e->key == key) {
                        e->count++;
                        e->size_bytes += size_bytes;
                        return false;
                }
                if (!e->key) {
                        if (t->used >= HW_CENSUS_TABLE_MAX) {
                                t->overflow_count++;
                                t->overflow_size_bytes += size_bytes;
                                return false;
                        }
                        e->key = key;
                        e->count = 1;
                        e->size_bytes = size_bytes;
                        t->used++;
                        return true;
                }
                i = (i + 1) & mask;
        }
}

/* Copy the n entries with the largest counts (ties: larger size first) into ret[n], largest
 * first. Returns how many were copied (<= n, <= t->used). */
size_t hw_census_table_top(const struct hw_census_table *t, size_t n, struct hw_census_entry *ret);

/* ---- The reply ----------------------------------------------------------------------------- */

struct hw_census_type {
        char name[HW_CENSUS_TYPE_NAME_MAX + 1];
        uint64_t count;      /* scaled by 1/fraction when sampled */
        uint64_t size_bytes; /* shallow sizes, sys.getsizeof-style; scaled likewise */
};

struct hw_chain_step {
        char type[HW_CENSUS_TYPE_NAME_MAX + 1];
        char via[HW_CHAIN_LABEL_MAX + 1]; /* how this object is reached from the previous: "[3]",
                                           * "['key']", ".attr"; "" when unknown or the root */
};

struct hw_chain {
        char target[HW_CENSUS_TYPE_NAME_MAX + 1]; /* the type whose instance the chain reaches */
        char root_kind[32];                       /* "module_global", "class_attribute", ... */
        char root[HW_CHAIN_LABEL_MAX + 1];        /* the root's name: "app.handlers" */
        uint64_t holds;                           /* holders: instances of target it holds */
        size_t n_steps;                           /* steps[0] is the root object */
        struct hw_chain_step steps[HW_CHAIN_STEPS_MAX];
};

struct hw_census_result {
        uint32_t request_id;
        enum hw_request_kind kind;
        double time;             /* Unix seconds when it started */
        double duration_seconds; /* wall time of the whole request */
        double gil_seconds;      /* longest single hold of the GIL: the host's longest wait */
        double gil_cpu_seconds;  /* our CPU time during that hold (less: the kernel ran others) */
        double gil_seconds_total; /* all holds together */
        unsigned slices;         /* holds taken (the GIL released between) */
        unsigned budget_ms;
        const char *error;       /* refused or failed: why (static string); NULL on success */

        /* census */
        bool complete;           /* every tracked object was seen */
        bool consistent;         /* no collection ran between slices (objects may have moved) */
        bool sampled;            /* not complete: counts are scaled from the part seen */
        double fraction;         /* estimated share of the heap seen, (0, 1] */
        uint64_t objects_seen;
        uint64_t objects_total;  /* seen / fraction */
        uint64_t types_total;    /* distinct types seen */
        size_t n_types;
        struct hw_census_type *types; /* n_types entries, caller-owned */

        /* chains */
        uint64_t visited;        /* objects the search reached */
        bool search_complete;    /* the search ran out of objects, not of time or room */
        size_t n_chains;
        struct hw_chain chains[HW_CHAINS_MAX];

        /* holders (a chains request with holders): the containers holding the most instances
         * of each type, each with the chain from a root to it (n_steps 0: none was found) */
        bool holders_requested;
        bool holders_complete;   /* the pass over the heap saw every tracked object */
        uint64_t holders_seen;   /* objects that pass looked at */
        size_t n_holders;
        struct hw_chain holders[HW_HOLDERS_MAX];
};

/* "root -> type -> type ...": steps[0].type is the root object's type. Writes at most size
 * bytes (NUL included; a chain cut short ends in "..."); returns the length written. */
size_t hw_chain_format(const struct hw_chain *c, char *buf, size_t size);

/* The CENSUS payload (docs/protocol.md). Returns a new reference or NULL on ENOMEM. */
json_t *hw_census_result_json(const struct hw_census_result *r);

/* The whole CENSUS frame in one malloc'd buffer. Returns 0, -ENOMEM or -E2BIG. */
int hw_census_encode(const struct hw_census_result *r, uint8_t **ret_frame, size_t *ret_size);
