/* SPDX-License-Identifier: MIT */
/*
 * Handing the last reference to a host object back to the host (see handoff.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>

#include "handoff.h"

/* All of it guarded by the GIL. */
static PyObject *queue[HW_HANDOFF_MAX];
static size_t queued;
static bool asked; /* a pending call is on its way */
static uint64_t handed, in_place;

/* Pop one at a time: a deallocation may release the GIL (a __del__ doing I/O), and the sampler
 * thread may queue more meanwhile, or a finalizer call stop(), which drains too. */
static void drop_queued(void) {
        while (queued > 0) {
                PyObject *o = queue[--queued];

                queue[queued] = NULL;
                Py_DECREF(o);
        }
}

/* Py_AddPendingCall's callback: on the main thread, with the GIL. */
static int pending_drop(void *unused) {
        (void) unused;
        asked = false; /* first: what is queued while this runs needs a call of its own */
        drop_queued();
        if (PyErr_Occurred())
                PyErr_Clear(); /* a pending call that returns 0 must not leave one set */
        return 0;
}

static void ask(void) {
        if (!asked && queued > 0 && Py_AddPendingCall(pending_drop, NULL) == 0)
                asked = true;
}

void hw_handoff_release(PyObject *o, bool defer) {
        if (!o)
                return;
        /* not the last reference: dropping it frees nothing (immortal objects included) */
        if (!defer || Py_REFCNT(o) > 1) {
                Py_DECREF(o);
                return;
        }
        if (queued >= HW_HANDOFF_MAX) {
                in_place++;
                Py_DECREF(o);
                return;
        }
        queue[queued++] = o;
        handed++;
        ask();
}

void hw_handoff_drain(void) {
        drop_queued();
        if (PyErr_Occurred())
                PyErr_Clear();
}

void hw_handoff_retry(void) {
        ask();
}

void hw_handoff_forget_after_fork(void) {
        asked = false;
}

void hw_handoff_stats(struct hw_handoff_stats *st) {
        st->handed = handed;
        st->in_place = in_place;
        st->queued = queued;
}
