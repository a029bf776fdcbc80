/* SPDX-License-Identifier: MIT */
/*
 * The Python half of the object census and referrer chains: walking the interpreter's lists
 * of GC-tracked objects and following references with tp_traverse, inside a time budget.
 * Only module.c, memhooks.c and heapwalk.c include Python.h; the counting, chain text and the
 * wire format are in census.c.
 *
 * Every function here must be called with the GIL held and returns with it held; none of them
 * runs Python code while holding pointers to objects it does not own (no allocation of GC
 * objects during a walk, so no collection can move or free what is being walked), and none
 * leaves an exception set.
 */
#pragma once

#include <Python.h>
#include <jansson.h>
#include <stdbool.h>

#include "census.h"

/* getattr(o, "name") with a name string made once, interned and kept (per call site), for the
 * lookups the agent repeats (every sample, every census slice, every frame of a chain search).
 * PyObject_GetAttrString makes a new string each time, and CPython's type attribute cache keeps
 * a reference to the names it last looked up: the agent's strings then stayed alive, made while
 * the host's heap was full of short-lived objects, and each pinned a pymalloc pool and its arena
 * (1050 strings after 300 chain searches; a batch job's RSS kept +4 MB after them). */
static inline PyObject *hw_getattr_interned(PyObject *o, PyObject **name, const char *text) {
        if (!*name) {
                *name = PyUnicode_InternFromString(text);
                if (!*name)
                        return NULL;
        }
        return PyObject_GetAttr(o, *name);
}

#define HW_GETATTR(o, text)                                      \
        ({                                                       \
                static PyObject *hw_attr_name_;                  \
                hw_getattr_interned((o), &hw_attr_name_, (text)); \
        })

/* The collector off, if it was on, while the sampler thread holds the GIL and makes objects:
 * up to 3.11 the allocation that crosses generation 0's threshold runs the collection -- the
 * host's finalizers, weakref callbacks and gc.callbacks -- on its own thread, and on the thread
 * that stop(), fork and exit wait for, a finalizer needing a lock the waiting thread holds
 * (logging's, held across fork by its own fork handler) would hang the host. Resume before
 * the GIL is released: the host's own threads then run the collection at their next
 * allocation. The host cannot tell (it cannot run meanwhile). Pause returns whether the
 * collector was on. GIL held. */
bool hw_heapwalk_collector_pause(void);
void hw_heapwalk_collector_resume(bool on);

/* A census in slices: each call holds the GIL (the caller's) until `deadline` at most, walking
 * the collector's lists from where the last one stopped (oldest generation first, then younger
 * ones, then the permanent one of gc.freeze()); between calls the caller releases the GIL. The
 * cursor is a strong reference to the last object seen; if a collection untracks it meanwhile
 * the walk ends there (partial). Objects that move between generations while the GIL is
 * released may be missed or seen twice: `consistent` says whether a collection ran between
 * slices. */
struct hw_census_walk {
        size_t k;            /* index into the generation order */
        PyObject *at;        /* cursor: NULL before the first slice and when done */
        uint64_t seen;
        unsigned slices;
        Py_ssize_t collections; /* the collector's count at the first slice */
        bool consistent;     /* init to true */
        bool broken;         /* the cursor was untracked: stopped */
        bool hand_off;       /* on the sampler thread: last references go back to the host
                              * (handoff.h) */
        struct gc_state_mirror *st;
};

/* Returns 1 when the walk is over (every object seen, or stopped for good), 0 when the deadline
 * came first (call again), -EAGAIN with *ret_error when it refuses: a collection is running, or
 * the interpreter's GC state does not look like the layout this agent was built for. */
int hw_heapwalk_census_slice(struct hw_census_walk *w, struct hw_census_table *table, double deadline,
                             const char **ret_error);

/* Fill res from the walk so far: totals, and the top `top` types by count named
 * ("module.QualName"), into res->types (room for `top`). A walk that did not see everything is
 * `sampled` with the share seen as `fraction` (against the collector's own count of long-lived
 * objects) and its counts scaled by 1/fraction: the part seen is the oldest objects, so this
 * is an estimate biased toward them. */
void hw_heapwalk_census_finish(struct hw_census_walk *w, const struct hw_census_table *table, unsigned top,
                               struct hw_census_result *res);

/* End the census (after hw_heapwalk_census_finish(), if any): drop the cursor's reference and
 * the references the slices took to every type in the table (its keys become empty), through
 * hw_handoff_release() when w->hand_off. GIL held. */
void hw_heapwalk_census_abandon(struct hw_census_walk *w, struct hw_census_table *table);

/* The containers holding the most instances of each type of a chains request (its holders):
 * strong references, taken in one GIL hold (hw_heapwalk_holders) and followed to their roots in
 * the next (hw_heapwalk_chains); released with hw_heapwalk_holders_release. */
#define HW_HOLDER_ROWS (HW_CHAINS_TYPES_MAX + 1)
struct hw_holders {
        size_t n_targets;
        size_t n_rows;  /* n_targets + 1: the last row is the largest containers, of any items */
        PyTypeObject *targets[HW_HOLDER_ROWS]; /* borrowed: found again in each hold; NULL: any */
        size_t n[HW_HOLDER_ROWS];
        PyObject *obj[HW_HOLDER_ROWS][HW_HOLDERS_PER_TYPE]; /* strong references */
        uint64_t holds[HW_HOLDER_ROWS][HW_HOLDERS_PER_TYPE];
        uint64_t seen;  /* objects looked at */
        bool complete;  /* every tracked object was looked at */
};

/* One pass over the collector's lists (oldest generation first) until `deadline`: every
 * container with at least a few items (list, tuple, dict, set, frozenset, collections.deque) has
 * its direct referents counted by type (tp_traverse), and the HW_HOLDERS_PER_TYPE holding the
 * most instances of each of req->types are kept, and the HW_HOLDERS_PER_TYPE largest containers
 * (most items, of any type: an object the census cannot see, such as a dict the collector
 * untracked, still makes its container grow). Returns 0, or -EAGAIN with *ret_error (the
 * collector's state cannot be walked: see hw_heapwalk_census_slice). */
int hw_heapwalk_holders(const struct hw_request *req, double deadline, struct hw_holders *h, const char **ret_error);

/* Drop the references hw_heapwalk_holders took (through hw_handoff_release() when hand_off). */
void hw_heapwalk_holders_release(struct hw_holders *h, bool hand_off);

/* Find up to HW_CHAINS_MAX chains of references from roots a user recognises (module globals,
 * class attributes, thread frames' locals) to instances of the types req->types names
 * ("module.QualName" as the census reports them), breadth first, so each chain is a shortest
 * one from its root; within `deadline`. Fills res->chains / n_chains / visited /
 * search_complete, or res->error. */
void hw_heapwalk_chains(const struct hw_request *req, double deadline, struct hw_census_result *res);

/* The same search, with the holders h as further targets: res->holders gets each holder with
 * the shortest chain from a root to it (holders no root reaches are reported without one).
 * Chains to sample instances are then searched for classes (heap types) only: for a builtin
 * type the first instance met is nearly always an unrelated one (`sys.modules -> dict`). A
 * holder reached is followed like any object, and when it holds instances of a class searched
 * for, the chain to one of them is taken through it at once. */
void hw_heapwalk_chains_holders(const struct hw_request *req, const struct hw_holders *h, double deadline,
                                struct hw_census_result *res);

/* "module.QualName" for heap types (plain QualName for builtins), tp_name for static types. */
void hw_heapwalk_type_name(PyTypeObject *tp, char *buf, size_t size);

/* Serve one request (census or chains) and return the CENSUS payload (a new reference, NULL on
 * ENOMEM). Takes the GIL itself unless gil_held; the budget counts from when it has it. The
 * caller checks first that the interpreter is not finalizing. When *stop (may be NULL) becomes
 * non-zero, a census in slices ends after the current slice, as a partial one: whoever asked
 * the thread to stop is waiting for it. */
json_t *hw_heapwalk_run(const struct hw_request *req, bool gil_held, const int *stop);

/* ---- Finalizers among the collected ----------------------------------------------------------
 * How many objects whose type has a finalizer (tp_finalize: __del__, generators, io objects;
 * legacy tp_del) a collection freed, for collections of generations 0 and 1. The gc callback's
 * info has counts only, so at "start" the young generations are walked (their objects
 * counted by type, the older generation's last object remembered with a reference); at "stop"
 * the survivors, which gc appended to the older generation after that object, are walked:
 * collected with finalizers = those in the young generations - those among the survivors (not
 * walked when the young generations held none). Counted: one in HW_FINALIZERS_EVERY collections
 * of generation 0, and of generation 1. Both walks are bounded
 * (HW_FINALIZERS_WALK_MAX objects, else the collection is not counted); full collections are not
 * counted (the young generation is then the whole heap). */
#define HW_FINALIZERS_WALK_MAX 100000u
#define HW_FINALIZERS_EVERY 4u

struct hw_finalizers {
        uint64_t collected;   /* objects with a finalizer collected, in the counted collections */
        uint64_t collections; /* collections counted */
        uint64_t skipped;     /* collections not counted (sampled out, full, too large) */
};

/* Find the collector's state (GIL held, no collection running): 0, or -EAGAIN with *ret_error;
 * without it nothing is counted. */
int hw_heapwalk_finalizers_init(const char **ret_error);

/* From the gc callback, GIL held: a collection of `generation` starts / stopped. */
void hw_heapwalk_finalizers_start(int generation);
void hw_heapwalk_finalizers_stop(struct hw_finalizers *f);

