/* SPDX-License-Identifier: MIT */
/*
 * See threadstate.h. What CPython's _thread module does to start a thread, per version: the
 * parent makes the state (an allocation under the GIL), the new thread binds it to itself.
 *   3.8-3.11  _PyThreadState_Prealloc() in the parent, _PyThreadState_Init() in the thread (3.11:
 *             _PyThreadState_SetCurrent(), its _PyThreadState_Init() is fatal): it sets the
 *             thread's PyGILState slot and the state's gilstate_counter to 1;
 *   3.12      _PyThreadState_Prealloc() (an alias of _PyThreadState_New()), _PyThreadState_Bind();
 *   3.13      _PyThreadState_Bind() is no longer exported: PyThreadState_New() in the parent
 *             (bound to the parent, whose PyGILState slot is taken already), then the thread
 *             takes the thread ids and attaches the state once, which binds its PyGILState slot.
 * The internal functions are exported by every build of these versions (PyAPI_FUNC); their
 * declarations live in internal headers, hence the prototypes here.
 */
#include "threadstate.h"

#include <pythread.h>

#if PY_VERSION_HEX < 0x03090000
struct pyruntimestate;
PyAPI_DATA(struct pyruntimestate) _PyRuntime;
PyAPI_FUNC(void) _PyThreadState_Init(struct pyruntimestate *runtime, PyThreadState *tstate);
#elif PY_VERSION_HEX < 0x030B0000
PyAPI_FUNC(void) _PyThreadState_Init(PyThreadState *tstate);
#elif PY_VERSION_HEX < 0x030C0000
PyAPI_FUNC(void) _PyThreadState_SetCurrent(PyThreadState *tstate); /* 3.11's _PyThreadState_Init() is fatal */
#elif PY_VERSION_HEX < 0x030D0000
PyAPI_FUNC(void) _PyThreadState_Bind(PyThreadState *tstate);
#endif

PyThreadState *hw_threadstate_make(void) {
        PyInterpreterState *interp = PyInterpreterState_Main();

#if PY_VERSION_HEX < 0x030D0000
        return _PyThreadState_Prealloc(interp);
#else
        return PyThreadState_New(interp);
#endif
}

void hw_threadstate_adopt(PyThreadState *ts) {
#if PY_VERSION_HEX < 0x030C0000
        ts->thread_id = PyThread_get_thread_ident(); /* made by the parent: its id until now */
#if PY_VERSION_HEX >= 0x030B0000
        ts->native_thread_id = PyThread_get_thread_native_id();
#endif
#if PY_VERSION_HEX < 0x03090000
        _PyThreadState_Init(&_PyRuntime, ts);
#elif PY_VERSION_HEX < 0x030B0000
        _PyThreadState_Init(ts);
#else
        _PyThreadState_SetCurrent(ts);
#endif
#elif PY_VERSION_HEX < 0x030D0000
        _PyThreadState_Bind(ts);
#else
        ts->thread_id = PyThread_get_thread_ident();
        ts->native_thread_id = PyThread_get_thread_native_id();
        PyEval_RestoreThread(ts); /* binds this thread's PyGILState slot to ts */
        (void) PyEval_SaveThread();
#endif
        /* the one reference the thread holds until it ends: PyGILState_Release() of a tick must
         * never find it the last one and free the state */
        if (ts->gilstate_counter < 1)
                ts->gilstate_counter = 1;
}

void hw_threadstate_drop(PyThreadState *ts) {
        PyThreadState_Clear(ts);
        PyThreadState_Delete(ts);
}
