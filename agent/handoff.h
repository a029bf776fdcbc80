/* SPDX-License-Identifier: MIT */
/*
 * Handing the last reference to a host object back to the host.
 *
 * A census or chains request on the sampler thread keeps references to host objects across the
 * moments it releases the GIL (the census's cursor and every type it counted, the chains'
 * holders). If the host drops such an object meanwhile, ours is the last reference, and letting
 * go of it on the sampler thread would run its deallocation there: a __del__, a weakref
 * callback, a type's class attributes, whatever they free in turn. The host's code would run on
 * the thread that stop(), fork and exit wait for, with the locks it takes (logging's, the
 * host's own): a deadlock, or code that assumes it runs on the host's threads.
 *
 * So the sampler thread lets go through hw_handoff_release(): a reference that is not the last
 * is dropped at once (that frees nothing); a last one is queued, and a pending call
 * (Py_AddPendingCall) drops the queue on the interpreter's main thread, at its next check of
 * the eval breaker, as signal handlers run. stop(), fork and exit drop what is still queued
 * themselves, on the host thread that called them. The queue is bounded; when it is full (the
 * main thread has not run Python code for a long time) the reference is dropped in place, as
 * before, and counted.
 *
 * Every function here is called with the GIL held, which guards the queue.
 */
#ifndef HEAPWATCH_AGENT_HANDOFF_H
#define HEAPWATCH_AGENT_HANDOFF_H

#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

/* References queued at most; a census holds one per type that died during it, and one cursor. */
#define HW_HANDOFF_MAX 4096u

struct hw_handoff_stats {
        uint64_t handed;    /* last references queued for the main thread */
        uint64_t in_place;  /* last references dropped on the sampler thread: the queue was full */
        uint64_t queued;    /* waiting now */
};

/* Let go of a reference this thread holds (o may be NULL). With defer false, Py_DECREF. */
void hw_handoff_release(PyObject *o, bool defer);

/* Drop everything queued, on the calling (host) thread: stop(), atexit, the fork child. */
void hw_handoff_drain(void);

/* Ask again for the pending call if asking failed (the interpreter's queue of pending calls
 * was full): the sampler's tick calls it. Cheap when nothing is queued. */
void hw_handoff_retry(void);

/* The fork child: the pending call asked for in the parent may not be in the child's queue. */
void hw_handoff_forget_after_fork(void);

void hw_handoff_stats(struct hw_handoff_stats *st);

#endif
