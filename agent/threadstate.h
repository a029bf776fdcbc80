/* SPDX-License-Identifier: MIT */
/*
 * The sampler thread's Python thread state, made by a host thread that holds the GIL and
 * adopted by the sampler thread, the way CPython's own _thread module starts a thread.
 *
 * A thread state costs an allocation through the interpreter's raw allocator. Made on the
 * sampler thread (PyGILState_Ensure() on a thread without one), that allocation runs before the
 * thread has the GIL, and tracemalloc's raw hook (3.8 to 3.12.8 and 3.13.1: CPython gh-128679)
 * used tables that a tracemalloc.stop() on a host thread was freeing meanwhile: SIGSEGV. The
 * sampler thread starts at every start(), and again after every os.fork() (module.c pauses it
 * around the fork), so a host that forks inside a tracemalloc session crashed at the first tick
 * after the fork (found by review). Made here, under the GIL, the allocation is an ordinary one.
 *
 * hw_threadstate_make() is called with the GIL, on a host thread, before the sampler thread is
 * started or resumed; hw_threadstate_adopt() on the sampler thread without the GIL (it binds
 * the state to the thread, so that PyGILState_Ensure() there finds it); hw_threadstate_drop()
 * with the GIL frees a state no thread adopted. Each interpreter version has its own way to do
 * this (threadstate.c).
 */
#ifndef HEAPWATCH_AGENT_THREADSTATE_H
#define HEAPWATCH_AGENT_THREADSTATE_H

#include <Python.h>

/* A thread state of the main interpreter, not bound to any thread; NULL (no exception left set)
 * when there is no memory. GIL held. */
PyThreadState *hw_threadstate_make(void);

/* On the thread that is to use ts, without the GIL: binds ts to this thread, with one
 * PyGILState reference held (PyGILState_Ensure()/Release() pairs then take and drop the GIL
 * only). The thread ends it with PyEval_RestoreThread(ts), PyThreadState_Clear(ts) and
 * PyThreadState_DeleteCurrent(). */
void hw_threadstate_adopt(PyThreadState *ts);

/* Frees a state that no thread adopted. GIL held. */
void hw_threadstate_drop(PyThreadState *ts);

#endif
