/* SPDX-License-Identifier: MIT */
/*
 * The CPython extension module `heapwatch`. It reads the settings, hooks into the interpreter
 * (a gc.callbacks entry timing collections, the allocator hooks of memhooks.c, atexit,
 * os.register_at_fork), reads the heap and GC figures under the GIL for the sampler thread,
 * serves the daemon's census requests on that thread (heapwalk.c), and offers start() / stop()
 * / snapshot() / is_running() / status() / census() / chains(). Beside heapwalk.c and
 * memhooks.c, the other agent files are plain C that Check tests without an interpreter.
 *
 * Rules this file keeps (the agent's promises to the host, SPEC.md):
 *  - No exception ever escapes from the sampler thread, the gc callback, the atexit or fork
 *    hooks: errors are cleared and show up as absent figures or counters. Only the explicit
 *    API (start() with bad arguments) raises.
 *  - The GIL is taken by the sampler thread only for reading a handful of figures, and only
 *    while the interpreter is not finalizing. Our mutexes are never held while waiting for
 *    the GIL, so they can be taken with the GIL held (the allocator wrappers) and across fork().
 *  - Whoever holds the GIL and waits for the sampler thread (stop(), atexit, the fork hook)
 *    releases the GIL while waiting: the thread may be waiting for it.
 *  - fork(): os.fork() pauses the thread (joined before, resumed in the parent after), and a
 *    child starts a fresh agent: new thread, new connection, its own HELLO; pthread_atfork
 *    keeps our mutexes usable in children of any fork().
 *  - The agent prints nothing, except one stderr line per bad HEAPWATCH_* setting.
 *
 * start() twice is a no-op that returns False; the one exception is the bootstrap's implicit
 * start (heapwatch run's sitecustomize calls _autostart()): an explicit start() with other
 * settings then takes over, as a reconnection.
 *
 * Supported: CPython 3.8 to 3.13 with the GIL, each built against its own headers. Free-threaded
 * builds and other implementations get an ImportError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#if PY_VERSION_HEX < 0x03090000
#include <frameobject.h> /* PyFrameObject's fields: PyFrame_GetCode() is 3.9+ */
#endif

#include "agent-util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent-sample.h"
#include "encode.h"
#include "census.h"
#include "heapprof.h"
#include "handoff.h"
#include "threadstate.h"
#include "heapwalk.h"
#include "memhooks.h"
#include "holdstats.h"
#include "procstat.h"
#include "sampler.h"
#include "transport.h"

/* Python 3.8 does not mark PyInit_* as exported; with -fvisibility=hidden it must be. */
#define HW_EXPORT __attribute__((visibility("default")))

#if defined(Py_GIL_DISABLED) || defined(PYPY_VERSION)
/* ---- Unsupported interpreters: refuse cleanly at import ----------------------------------- */

HW_EXPORT PyMODINIT_FUNC PyInit_heapwatch(void);
HW_EXPORT PyMODINIT_FUNC PyInit_heapwatch(void) {
#if defined(PYPY_VERSION)
        PyErr_SetString(PyExc_ImportError, "heapwatch: only CPython is supported (this is PyPy)");
#else
        PyErr_SetString(PyExc_ImportError,
                        "heapwatch: free-threaded CPython builds (Py_GIL_DISABLED) are not supported");
#endif
        return NULL;
}

#else /* a CPython with the GIL */

/* ---- Version compatibility ------------------------------------------------------------------ */

#if PY_VERSION_HEX >= 0x030D0000
#define hw_py_is_finalizing() Py_IsFinalizing()
#else
#define hw_py_is_finalizing() _Py_IsFinalizing()
#endif

#if PY_VERSION_HEX >= 0x03090000
#define hw_py_call0(f) PyObject_CallNoArgs(f)
#define hw_py_current_interp() PyInterpreterState_Get()
#else
#define hw_py_call0(f) PyObject_CallObject((f), NULL)
#define hw_py_current_interp() _PyInterpreterState_Get()
#endif

/* Before an agent has seen pymalloc allocate an arena, report the size CPython uses: 256 KiB up
 * to 3.9, 1 MiB from 3.10 on 64-bit (obmalloc.c's ARENA_BITS 18 / 20). Once an arena is
 * allocated the wrapper records the size actually asked for. */
#if PY_VERSION_HEX >= 0x030A0000 && SIZEOF_VOID_P > 4
#define HW_ARENA_SIZE_DEFAULT (1024u * 1024u)
#else
#define HW_ARENA_SIZE_DEFAULT (256u * 1024u)
#endif

#define HW_STOP_BUDGET 0.2 /* seconds stop()/exit may spend on the final GOODBYE */
/* os.fork() waits for a connect begun less than this long ago (hw_transport_settle_connect()) */
#define HW_FORK_CONNECT_SETTLE 0.1

/* ---- State ------------------------------------------------------------------------------- */

enum agent_state {
        AGENT_STOPPED,
        AGENT_RUNNING,
        AGENT_STOPPING, /* stop() is waiting (without the GIL) for the thread / the flush */
};

struct gc_pauses {
        int64_t pauses;
        double total;
        double max;
};

/* One agent per process. Changed only with the GIL held, except where noted. */
static struct {
        enum agent_state state;
        pid_t pid; /* process that started the agent: a fork child is someone else */

        /* settings of the running (or last) agent */
        char socket_path[HW_TRANSPORT_PATH_MAX + 1];
        char service[HW_AGENT_SERVICE_MAX + 1];
        double interval;
        bool ever_started;
        bool implicit; /* started by the bootstrap (_autostart): an explicit start() takes over */

        struct hw_transport transport; /* own mutex */
        struct hw_sampler sampler;

        /* GC pause timing: written by the gc callback, read by the sampler; the GIL guards it */
        struct gc_pauses pauses[HW_AGENT_GC_GENERATIONS_MAX];
        struct hw_finalizers finalizers; /* the GIL guards it, like pauses */
        bool finalizers_known;           /* the collector's state was found at start() */
        double gc_started_at; /* < 0: no collection under way */
        long gc_generation;

        bool pymalloc; /* sys.getallocatedblocks() > 0 at start: pymalloc serves objects */

        /* Python objects, created once and kept for the life of the process */
        PyObject *gc_module;
        PyObject *gc_isenabled, *gc_get_count, *gc_get_threshold, *gc_get_stats;
        PyObject *sys_getallocatedblocks;
        PyObject *key_generation;
        PyObject *gc_callback, *atexit_hook, *fork_before_hook, *fork_parent_hook, *fork_child_hook;
        int fork_pauses; /* os.fork() calls between their before and after_in_parent hooks */
        bool forked_from_main; /* set right before fork(): the forking thread was the main one */
        bool exiting;    /* our atexit hook ran: no new start() before finalization */
        bool in_transition; /* start() or stop() under way: see start_common() */
        PyThreadState *spare_tstate; /* for the next sampler thread to adopt: spare_tstate_ready() */
        pthread_t transition_thread; /* the thread making it */
        bool atexit_registered, fork_hook_registered;

        /* heap profiler settings of the running (or last) agent; 0: off */
        uint64_t sample_bytes;
        unsigned stack_depth;

        bool warned_interval, warned_socket, warned_service, warned_sample_bytes, warned_stack_depth;
} agent;

/* Whether the running agent profiles the heap. */
static bool hp_active(void) {
        return agent.sample_bytes > 0 && hw_heap_hooks_in_chain();
}

/* ---- GC pause timing ---------------------------------------------------------------------- */

/* The pause figures are read and written only with the GIL held (the gc callback, the sampler's
 * collect_python(), start()), so the GIL guards them: no lock of our own on the collector's
 * path. */
static void gc_pauses_reset(void) {
        memset(agent.pauses, 0, sizeof(agent.pauses));
        agent.gc_started_at = -1;
        agent.gc_generation = -1;
}

/* gc.callbacks entry: callback(phase, info). Called with the GIL held by whichever thread
 * collects; collections never overlap (the GIL and gc's own "collecting" flag).
 *
 * It runs twice per collection, so it is kept to the minimum (bench/gc_hook.py measures it):
 * a fastcall function (no argument tuple), the phase told apart by its length ("start" 5,
 * "stop" 4: gc makes a new string each time, so comparing contents or identity would cost
 * more), the generation looked up once, at "start", and one clock read per phase. What
 * remains is gc's own price for having any callback at all: it builds the phase string and
 * the info dict for every call, whoever listens. For collections of generations 0 and 1 it
 * also counts the objects with finalizers among the collected (heapwalk.h): a walk of the
 * young generation at "start" and of its survivors at "stop" (bench/gc_hook.py measures it). */
static PyObject *gc_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
        PyObject *phase, *gen_obj;
        Py_ssize_t len;
        long gen;
        double now;

        (void) self;
        if (nargs != 2 || !PyUnicode_Check(args[0]))
                goto out;
        phase = args[0];
        len = PyUnicode_GET_LENGTH(phase);
        if (len == 5) { /* "start" */
                if (!PyDict_Check(args[1]))
                        goto out;
                gen_obj = PyDict_GetItem(args[1], agent.key_generation); /* borrowed; never raises */
                if (!gen_obj || !PyLong_Check(gen_obj))
                        goto out;
                gen = PyLong_AsLong(gen_obj);
                if (gen < 0 || gen >= HW_AGENT_GC_GENERATIONS_MAX)
                        goto out;
                agent.gc_generation = gen;
                if (agent.finalizers_known)
                        hw_heapwalk_finalizers_start((int) gen);
                agent.gc_started_at = hw_now_monotonic(); /* as late as possible before the collection */
        } else if (len == 4 && agent.gc_started_at >= 0) { /* "stop" of the collection we saw start */
                struct gc_pauses *p = &agent.pauses[agent.gc_generation];
                double d;

                now = hw_now_monotonic();
                d = now - agent.gc_started_at;
                if (d < 0)
                        d = 0;
                p->pauses++;
                p->total += d;
                if (d > p->max)
                        p->max = d;
                agent.gc_started_at = -1;
                /* after the clock read: the pause is the collection's, not our count's */
                if (agent.finalizers_known)
                        hw_heapwalk_finalizers_stop(&agent.finalizers);
        }
out:
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_RETURN_NONE;
}

static PyMethodDef gc_callback_def = {
        "_heapwatch_gc_callback", (PyCFunction) (void (*)(void)) gc_callback, METH_FASTCALL,
        "heapwatch: times garbage collections"
};

static PyObject *gc_callbacks_list(void) {
        PyObject *l = PyObject_GetAttrString(agent.gc_module, "callbacks");

        if (l && !PyList_Check(l)) {
                Py_DECREF(l);
                PyErr_SetString(PyExc_TypeError, "gc.callbacks is not a list");
                return NULL;
        }
        return l;
}

static int gc_callback_install(void) {
        PyObject *l = gc_callbacks_list();
        int r = 0;

        if (!l)
                return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(l); i++)
                if (PyList_GET_ITEM(l, i) == agent.gc_callback)
                        goto done; /* already there (e.g. in a fork child) */
        r = PyList_Append(l, agent.gc_callback);
done:
        Py_DECREF(l);
        return r;
}

static void gc_callback_remove(void) {
        PyObject *l = gc_callbacks_list();

        if (!l) {
                PyErr_Clear();
                return;
        }
        for (Py_ssize_t i = PyList_GET_SIZE(l) - 1; i >= 0; i--)
                if (PyList_GET_ITEM(l, i) == agent.gc_callback && PySequence_DelItem(l, i) < 0)
                        PyErr_Clear();
        Py_DECREF(l);
}

/* ---- Python figures ----------------------------------------------------------------------- */

static int64_t call_int(PyObject *f) {
        PyObject *o = hw_py_call0(f);
        long long v;

        if (!o)
                return -1;
        v = PyLong_AsLongLong(o);
        Py_DECREF(o);
        return v;
}

static int64_t item_int(PyObject *seq, Py_ssize_t i) {
        PyObject *o;
        long long v;

        if (!seq || !PyTuple_Check(seq) || i >= PyTuple_GET_SIZE(seq))
                return -1;
        o = PyTuple_GET_ITEM(seq, i);
        v = PyLong_AsLongLong(o);
        return v < 0 ? -1 : v;
}

static int64_t dict_int(PyObject *d, const char *key) {
        PyObject *o;
        long long v;

        if (!d || !PyDict_Check(d))
                return -1;
        o = PyDict_GetItemString(d, key);
        if (!o || !PyLong_Check(o))
                return -1;
        v = PyLong_AsLongLong(o);
        return v < 0 ? -1 : v;
}

/* gc.garbage entries with a finalizer. Since Python 3.4 objects with __del__ in cycles are
 * collected, so what lands in gc.garbage is uncollectable (legacy tp_del of C types) or kept by
 * gc.DEBUG_SAVEALL; those with a finalizer say why. Which *collected* objects had __del__ cannot
 * be seen cheaply: the gc callback gets only counts, and walking a generation before each
 * collection costs as much as the collection. The list only grows in practice, so each sample
 * looks at the new entries only, at most HW_GARBAGE_SCAN_MAX of them (the count catches up over
 * later samples); a list that shrank or was replaced is counted afresh. GIL held. */
#define HW_GARBAGE_SCAN_MAX 4096
static PyObject *garbage_seen;   /* identity only, never dereferenced */
static Py_ssize_t garbage_scanned;
static int64_t garbage_finalizers;

static void garbage_finalizers_reset(void) {
        garbage_seen = NULL;
        garbage_scanned = 0;
        garbage_finalizers = 0;
}

static int64_t garbage_finalizers_count(PyObject *garbage) {
        Py_ssize_t n, end;

        if (!garbage || !PyList_Check(garbage))
                return -1;
        n = PyList_GET_SIZE(garbage);
        if (garbage != garbage_seen || n < garbage_scanned) {
                garbage_finalizers_reset();
                garbage_seen = garbage;
        }
        end = n - garbage_scanned > HW_GARBAGE_SCAN_MAX ? garbage_scanned + HW_GARBAGE_SCAN_MAX : n;
        for (Py_ssize_t i = garbage_scanned; i < end; i++) {
                PyTypeObject *t = Py_TYPE(PyList_GET_ITEM(garbage, i));
                if (t->tp_finalize || t->tp_del)
                        garbage_finalizers++;
        }
        garbage_scanned = end;
        return garbage_finalizers;
}

/* Room for stacks in one heap report: a SAMPLE frame may carry 256 KiB, the rest of a sample is
 * a few KiB; stacks that do not fit wait for the next report. */
#define HP_REPORT_BUDGET (96u * 1024u)

/* The heap part: needs the profiler's lock, not the GIL (the sampler thread builds it after
 * releasing the GIL, so the host's threads never wait for it). */
static void collect_heap(struct hw_agent_sample *s, bool consume) {
        struct hw_transport_status st;

        if (!hp_active() || agent.pid != getpid())
                return;
        /* Stacks go once per stack generation: the transport changes it with each connection
         * and whenever a report may have been lost (a dropped frame, a heap part left out, the
         * daemon's RESEND_STACKS), so a lost stack goes again with the next report. */
        hw_transport_get_status(&agent.transport, &st);
        s->heap = hw_heapprof_report(&hw_memhooks_profile, st.stacks_gen, consume, HW_HEAPPROF_SITES_DEFAULT,
                                     HP_REPORT_BUDGET);
}

/* Fill the python.* and gc.* parts. GIL held. Never leaves an exception set.
 * The collector stays off meanwhile (hw_heapwalk_collector_pause()): gc.get_stats() and the
 * tuples of get_count() and get_threshold() are objects it tracks. gc.isenabled() is read
 * first, for the report. */
static int collect_python(struct hw_agent_sample *s, bool consume) {
        PyObject *count = NULL, *threshold = NULL, *stats = NULL, *garbage = NULL, *enabled = NULL;
        bool collector_on;
        Py_ssize_t n;

        if (!agent.gc_module)
                return -ENODEV;
        hw_handoff_retry(); /* a census's last references, if the main thread has not been asked yet */
        enabled = hw_py_call0(agent.gc_isenabled); /* True and False are not allocated */
        collector_on = hw_heapwalk_collector_pause();

        s->allocated_blocks = call_int(agent.sys_getallocatedblocks);
        if (s->allocated_blocks < 0) {
                PyErr_Clear();
                s->allocated_blocks = -1;
        }
        if (agent.pymalloc) {
                uint64_t allocs, frees, size;

                if (hw_arena_hooks_read(&allocs, &frees, &size)) {
                        s->has_arenas = true;
                        s->arena_allocs_total = allocs;
                        s->arena_frees_total = frees;
                        s->arena_size_bytes = size ? size : HW_ARENA_SIZE_DEFAULT;
                }
        }

        count = hw_py_call0(agent.gc_get_count);
        threshold = hw_py_call0(agent.gc_get_threshold);
        stats = hw_py_call0(agent.gc_get_stats);
        garbage = HW_GETATTR(agent.gc_module, "garbage");
        if (!enabled || !count || !PyTuple_Check(count)) {
                PyErr_Clear();
                goto finish;
        }
        s->gc_enabled = PyObject_IsTrue(enabled) > 0;
        if (garbage) {
                Py_ssize_t len = PyObject_Length(garbage);
                s->gc_garbage = len >= 0 ? (int64_t) len : -1;
                s->gc_garbage_finalizers = garbage_finalizers_count(garbage);
        }
        n = PyTuple_GET_SIZE(count);
        if (n > HW_AGENT_GC_GENERATIONS_MAX)
                n = HW_AGENT_GC_GENERATIONS_MAX;
        for (Py_ssize_t i = 0; i < n; i++) {
                struct hw_agent_gc_generation *g = &s->gc[i];
                PyObject *st = NULL;

                if (stats && PyList_Check(stats) && i < PyList_GET_SIZE(stats))
                        st = PyList_GET_ITEM(stats, i);
                g->count = item_int(count, i);
                g->threshold = item_int(threshold, i);
                g->collections = dict_int(st, "collections");
                g->collected = dict_int(st, "collected");
                g->uncollectable = dict_int(st, "uncollectable");
        }
        s->gc_generations = (size_t) n;

        for (Py_ssize_t i = 0; i < n; i++) { /* the GIL guards the pause figures */
                s->gc[i].pauses = agent.pauses[i].pauses;
                s->gc[i].pause_seconds_total = agent.pauses[i].total;
                s->gc[i].pause_seconds_max = agent.pauses[i].max;
        }
        if (consume)
                memset(agent.pauses, 0, sizeof(agent.pauses));
        if (agent.finalizers_known) {
                s->gc_finalizers_collected = (int64_t) agent.finalizers.collected;
                s->gc_finalizers_collections = (int64_t) agent.finalizers.collections;
                s->gc_finalizers_skipped = (int64_t) agent.finalizers.skipped;
        }
        s->has_gc = true;

finish:
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_XDECREF(enabled);
        Py_XDECREF(count);
        Py_XDECREF(threshold);
        Py_XDECREF(stats);
        Py_XDECREF(garbage);
        hw_heapwalk_collector_resume(collector_on);
        return s->has_gc ? 0 : -ENODATA;
}

/* hw_sampler_python_fn for callers that hold the GIL (snapshot, stop). */
static int python_gil_held(void *userdata, struct hw_agent_sample *s, bool consume) {
        (void) userdata;
        collect_heap(s, consume);
        return collect_python(s, consume);
}

/* ---- What a tick costs the host ------------------------------------------------------------ */

/* Always on, two clock reads per section: how long each sampler tick holds the GIL (no Python
 * thread of the host runs meanwhile) and how long each heap report takes (it holds the heap
 * profiler's lock for most of it; a host thread waits for that only if it samples an allocation
 * meanwhile). status() shows them; bench/host_latency.py reports them. hold_lock guards both:
 * the sampler records after releasing the GIL, status() reads holding it; never held while
 * waiting for anything else. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hw_holdstats tick_gil_hold, heap_report_hold;

static void holds_reset(void) {
        pthread_mutex_lock(&hold_lock);
        hw_holdstats_reset(&tick_gil_hold);
        hw_holdstats_reset(&heap_report_hold);
        pthread_mutex_unlock(&hold_lock);
}

static void holds_record(uint64_t gil_ns, uint64_t heap_ns, bool heap) {
        pthread_mutex_lock(&hold_lock);
        hw_holdstats_record(&tick_gil_hold, gil_ns);
        if (heap)
                hw_holdstats_record(&heap_report_hold, heap_ns);
        pthread_mutex_unlock(&hold_lock);
}

/* A summary as a dict (status()): count, window, p50_us, p99_us, max_us, mean_us. */
static PyObject *holds_dict(const struct hw_holdstats *h) {
        struct hw_holdstats_summary sum;

        pthread_mutex_lock(&hold_lock);
        hw_holdstats_summarize(h, &sum);
        pthread_mutex_unlock(&hold_lock);
        return Py_BuildValue("{s:K,s:I,s:d,s:d,s:d,s:d}", "count", (unsigned long long) sum.count, "window",
                             (unsigned) sum.window, "p50_us", sum.p50_us, "p99_us", sum.p99_us, "max_us",
                             sum.max_us, "mean_us", sum.mean_us);
}

/* The sampler thread's Python thread state lives as long as the thread: made by its first
 * PyGILState_Ensure() (at its first tick or request, not when it starts: a thread resumed after
 * a fork does not reach for the GIL at once) and kept by not releasing that one until the
 * thread ends, so each tick's Ensure/Release pair only takes and drops the GIL. A thread state made and freed every tick
 * allocates through the raw allocator before the thread has the GIL, where tracemalloc's hook
 * (3.8 to 3.12.8 and 3.13.1, CPython gh-128679) used tables that a tracemalloc.stop() on another
 * thread was freeing: a host toggling tracemalloc crashed within seconds (found by review).
 * Only the sampler thread touches this, and a fork child before it starts its own. */
static struct {
        bool held;
        PyThreadState *adopted;  /* made by a host thread (threadstate.h); NULL: made here */
        PyGILState_STATE outer;  /* when made here */
} sampler_gil;

/* A host thread, with the GIL, before the sampler thread starts or resumes: a state for it to
 * adopt (threadstate.h), unless one is waiting already. Without memory the thread makes its
 * own, as before. */
static void spare_tstate_ready(void) {
        PyThreadState *ts;

        if (__atomic_load_n(&agent.spare_tstate, __ATOMIC_ACQUIRE))
                return;
        ts = hw_threadstate_make();
        if (!ts) {
                PyErr_Clear();
                return;
        }
        __atomic_store_n(&agent.spare_tstate, ts, __ATOMIC_RELEASE);
}

/* With the GIL, the sampler thread joined: free a state it never adopted. */
static void spare_tstate_drop(void) {
        PyThreadState *ts = __atomic_exchange_n(&agent.spare_tstate, NULL, __ATOMIC_ACQ_REL);

        if (ts)
                hw_threadstate_drop(ts);
}

/* On the sampler thread, not finalizing, before its PyGILState_Ensure() of a tick or request. */
static void sampler_state_ensure(void) {
        PyThreadState *ts;

        if (sampler_gil.held)
                return;
        ts = __atomic_exchange_n(&agent.spare_tstate, NULL, __ATOMIC_ACQ_REL);
        if (ts) {
                hw_threadstate_adopt(ts);
                sampler_gil.adopted = ts;
                sampler_gil.held = true;
                return;
        }
        sampler_gil.adopted = NULL;
        sampler_gil.outer = PyGILState_Ensure();
        (void) PyEval_SaveThread(); /* the GIL goes back, the thread state stays ours */
        sampler_gil.held = true;
}

static void sampler_thread_end(void *userdata) {
        (void) userdata;
        if (!sampler_gil.held)
                return;
        sampler_gil.held = false;
        /* Finalizing: taking the GIL would never return (or end the thread); the interpreter
         * frees every thread state it still has when it is cleared. stop(), join for fork and
         * the atexit hook release the GIL while they wait for us, so this never waits long. */
        if (hw_py_is_finalizing())
                return;
        if (sampler_gil.adopted) {
                PyEval_RestoreThread(sampler_gil.adopted);
                PyThreadState_Clear(sampler_gil.adopted);
                PyThreadState_DeleteCurrent(); /* and the GIL goes back */
                sampler_gil.adopted = NULL;
                return;
        }
        PyEval_RestoreThread(PyGILState_GetThisThreadState());
        PyGILState_Release(sampler_gil.outer); /* the last one: clears and frees the state */
}

/* hw_sampler_python_fn for the sampler thread: take the GIL briefly, unless the interpreter is
 * going away (then PyGILState_Ensure would never return, or end the thread). atexit stops us
 * before finalization begins, so this is a second line of defence. */
static int python_from_thread(void *userdata, struct hw_agent_sample *s, bool consume) {
        PyGILState_STATE g;
        uint64_t t0, t1, t2;
        int r;

        (void) userdata;
        if (hw_py_is_finalizing())
                return -ESHUTDOWN;
        sampler_state_ensure();
        g = PyGILState_Ensure();
        t0 = hw_holdstats_now_ns(); /* the GIL is ours from here ... */
        if (agent.sample_bytes > 0 && agent.state == AGENT_RUNNING)
                (void) hw_heap_hooks_verify(agent.sample_bytes, agent.stack_depth);
        r = collect_python(s, consume);
        t1 = hw_holdstats_now_ns(); /* ... to here (Release itself is a few atomics) */
        PyGILState_Release(g);
        collect_heap(s, consume);
        t2 = hw_holdstats_now_ns();
        holds_record(t1 - t0, t2 - t1, s->heap != NULL);
        return r;
}

/* The heap profiler's padded blocks come from the sampler thread's malloc arena (memhooks.c):
 * it tops up their pool whenever it wakes, and the hooks wake it when the pool runs low. */
static void sampler_housekeeping(void *userdata) {
        (void) userdata;
        hw_heap_hooks_refill();
}

static void wake_sampler(void *arg) {
        (void) arg;
        hw_sampler_wake(&agent.sampler);
}

/* hw_sampler_request_fn: a daemon REQUEST (census, chains), on the sampler thread; the reply
 * goes out as a CENSUS frame. heapwalk.c takes the GIL for at most the request's budget. */
static void serve_request(void *userdata, const struct hw_request *req) {
        uint8_t *frame = NULL;
        size_t size = 0;
        json_t *j;

        (void) userdata;
        if (hw_py_is_finalizing() || agent.pid != getpid())
                return; /* the daemon times the request out */
        sampler_state_ensure();
        j = hw_heapwalk_run(req, false, &agent.sampler.stop_requested);
        if (j && hw_encode_frame(j, HW_FRAME_CENSUS, &frame, &size) == 0)
                hw_transport_enqueue(&agent.transport, HW_FRAME_CENSUS, frame, size);
        json_decref(j);
}

/* ---- Settings ------------------------------------------------------------------------------- */

/* Quote a setting for a warning line: printable ASCII as is, the rest as \xNN, bounded. */
static void quote_value(char *buf, size_t size, const char *v) {
        size_t o = 0;

        for (const unsigned char *p = (const unsigned char *) v; *p && o + 8 < size; p++) {
                if (p - (const unsigned char *) v >= 80) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                if (*p >= 0x20 && *p < 0x7F && *p != '\\' && *p != '\'')
                        buf[o++] = (char) *p;
                else
                        o += (size_t) snprintf(buf + o, size - o, "\\x%02x", *p);
        }
        buf[o] = '\0';
}

static void warn_setting(bool *warned, const char *name, const char *value, const char *why, const char *using) {
        char q[400];

        if (*warned)
                return;
        *warned = true;
        quote_value(q, sizeof(q), value);
        PySys_WriteStderr("heapwatch: ignoring %s='%s': %s; using %s\n", name, q, why, using);
        if (PyErr_Occurred())
                PyErr_Clear();
}

/* Check a service name: NULL if fine, else why not. */
static const char *service_problem(const char *s, size_t len) {
        char copy[HW_AGENT_SERVICE_MAX + 1];

        if (len == 0)
                return "empty";
        if (len > HW_AGENT_SERVICE_MAX)
                return "longer than 128 bytes";
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7F)
                        return "contains control characters";
        if (hw_utf8_copy(copy, sizeof(copy), s, len, HW_AGENT_SERVICE_MAX, 1) != len || memcmp(copy, s, len) != 0)
                return "not valid UTF-8";
        return NULL;
}

/* Parse an interval: NULL if fine (*ret set), else why not. */
static const char *interval_problem(const char *s, double *ret) {
        char *end;
        double v;

        /* plain decimal only: strtod also takes hex ("0x10" was 16 s) and the host's locale */
        if (s[strspn(s, "0123456789.eE+- \t\n")] != '\0')
                return "not a number";
        errno = 0;
        v = strtod(s, &end);
        if (end == s)
                return "not a number";
        while (*end == ' ' || *end == '\t' || *end == '\n')
                end++;
        if (*end != '\0' || errno == ERANGE || !isfinite(v))
                return "not a number";
        if (v < HW_AGENT_INTERVAL_MIN || v > HW_AGENT_INTERVAL_MAX)
                return "out of range 0.05..3600 seconds";
        *ret = v;
        return NULL;
}

/* Parse a whole decimal integer within [min, max]: NULL if fine (*ret set), else why not. */
static const char *int_problem(const char *s, long long min, long long max, long long *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (end == s)
                return "not an integer";
        while (*end == ' ' || *end == '\t' || *end == '\n')
                end++;
        if (*end != '\0' || errno == ERANGE)
                return "not an integer";
        if (v < min || v > max)
                return "out of range";
        *ret = v;
        return NULL;
}

static int parse_int_arg(PyObject *o, const char *name, long long min, long long max, long long *ret) {
        long long v;

        if (PyBool_Check(o) || !PyLong_Check(o)) {
                PyErr_Format(PyExc_TypeError, "%s must be an int or None, not %.100s", name, Py_TYPE(o)->tp_name);
                return -1;
        }
        v = PyLong_AsLongLong(o);
        if (v == -1 && PyErr_Occurred())
                return -1;
        if (v < min || v > max) {
                PyErr_Format(PyExc_ValueError, "%s must be within %lld..%lld", name, min, max);
                return -1;
        }
        *ret = v;
        return 0;
}

static void default_socket(char *buf, size_t size) {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        uid_t uid = geteuid();
        int n;

        if (uid == 0) {
                snprintf(buf, size, "/run/heapwatch/agent.sock");
                return;
        }
        if (xdg && xdg[0] == '/') {
                n = snprintf(buf, size, "%s/heapwatch/agent.sock", xdg);
                if (n > 0 && (size_t) n < size)
                        return;
        }
        snprintf(buf, size, "/run/user/%u/heapwatch/agent.sock", (unsigned) uid);
}

/* The process's command line: sys.orig_argv (3.10+), else /proc/self/cmdline, else sys.argv.
 * GIL held; never raises. */
static void identity_argv(struct hw_agent_identity *id) {
        PyObject *l = PySys_GetObject("orig_argv"); /* borrowed; NULL without an exception */

        if (!l || !PyList_Check(l) || PyList_GET_SIZE(l) == 0) {
                if (hw_procstat_read_cmdline(NULL, id) > 0)
                        return;
                hw_agent_identity_clear(id);
                l = PySys_GetObject("argv");
                if (!l || !PyList_Check(l))
                        return;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(l) && id->argc < HW_AGENT_ARGV_MAX; i++) {
                PyObject *item = PyList_GET_ITEM(l, i), *b;

                if (!PyUnicode_Check(item))
                        continue;
                /* surrogateescape gives back the original bytes; encode.c makes them valid UTF-8 */
                b = PyUnicode_AsEncodedString(item, "utf-8", "surrogateescape");
                if (!b) {
                        PyErr_Clear();
                        continue;
                }
                (void) hw_agent_identity_add_arg(id, PyBytes_AS_STRING(b), (size_t) PyBytes_GET_SIZE(b));
                Py_DECREF(b);
        }
}

/* Default service: basename of sys.argv[0]; for "python -m mod", "mod"; else "python". */
static void default_service(char *buf, size_t size, const struct hw_agent_identity *id) {
        PyObject *argv = PySys_GetObject("argv");
        const char *a0 = NULL, *base;
        PyObject *b = NULL;

        snprintf(buf, size, "python");
        if (argv && PyList_Check(argv) && PyList_GET_SIZE(argv) > 0 && PyUnicode_Check(PyList_GET_ITEM(argv, 0))) {
                b = PyUnicode_AsEncodedString(PyList_GET_ITEM(argv, 0), "utf-8", "surrogateescape");
                if (b)
                        a0 = PyBytes_AS_STRING(b);
                else
                        PyErr_Clear();
        }
        if (a0 && strcmp(a0, "-m") == 0) {
                /* Before runpy replaces it, sys.argv[0] is "-m": find the module on the command
                 * line. */
                a0 = NULL;
                for (size_t i = 1; i < id->argc; i++) {
                        if (strcmp(id->argv[i], "-m") == 0 && i + 1 < id->argc) {
                                a0 = id->argv[i + 1];
                                break;
                        }
                        if (strncmp(id->argv[i], "-m", 2) == 0 && id->argv[i][2]) {
                                a0 = id->argv[i] + 2;
                                break;
                        }
                }
        }
        if (a0 && a0[0] && strcmp(a0, "-c") != 0 && strcmp(a0, "-") != 0) {
                base = strrchr(a0, '/');
                base = base ? base + 1 : a0;
                if (base[0])
                        hw_utf8_copy(buf, size, base, strlen(base), HW_AGENT_SERVICE_MAX, 1);
        }
        Py_XDECREF(b);
}

/* Copy text up to the first space (Py_GetVersion() -> "3.11.7"). */
static void first_word(char *buf, size_t size, const char *s) {
        size_t n = strcspn(s, " \n");

        hw_utf8_copy(buf, size, s, n, size - 1, 1);
}

/* Py_GetCompiler() is "\n[GCC 12.2.0]" or "[GCC ...]": keep what is inside the brackets. */
static void compiler_name(char *buf, size_t size, const char *s) {
        size_t n;

        while (*s == ' ' || *s == '\n' || *s == '[')
                s++;
        n = strlen(s);
        while (n > 0 && (s[n - 1] == ']' || s[n - 1] == ' ' || s[n - 1] == '\n'))
                n--;
        hw_utf8_copy(buf, size, s, n, size - 1, 1);
}

/* GIL held; never raises. */
static void build_identity(struct hw_agent_identity *id, const char *service, double interval) {
        struct hw_procstat_identity pi;
        PyObject *impl, *name, *hex;

        memset(id, 0, sizeof(*id));
        if (hw_procstat_read_identity(NULL, &pi) >= 0) {
                id->pid = pi.pid;
                id->ppid = pi.ppid;
                id->start_time_ticks = pi.start_time_ticks;
                id->start_time = pi.start_time;
        } else {
                id->pid = getpid();
                id->ppid = getppid();
                id->start_time_ticks = -1;
                id->start_time = -1;
        }
        identity_argv(id);
        snprintf(id->service, sizeof(id->service), "%s", service);
        if (gethostname(id->hostname, sizeof(id->hostname)) < 0)
                id->hostname[0] = '\0';
        id->hostname[sizeof(id->hostname) - 1] = '\0';

        first_word(id->python_version, sizeof(id->python_version), Py_GetVersion());
        snprintf(id->python_implementation, sizeof(id->python_implementation), "cpython");
        impl = PySys_GetObject("implementation");
        name = impl ? PyObject_GetAttrString(impl, "name") : NULL;
        if (name && PyUnicode_Check(name)) {
                const char *s = PyUnicode_AsUTF8(name);
                if (s)
                        hw_utf8_copy(id->python_implementation, sizeof(id->python_implementation), s, strlen(s),
                                     HW_AGENT_SHORT_STRING_MAX, 1);
        }
        Py_XDECREF(name);
        hex = PySys_GetObject("hexversion");
        id->python_hexversion = hex && PyLong_Check(hex) ? PyLong_AsLongLong(hex) : -1;
        hw_utf8_copy(id->python_build, sizeof(id->python_build), Py_GetBuildInfo(), strlen(Py_GetBuildInfo()),
                     HW_AGENT_BUILD_STRING_MAX, 1);
        compiler_name(id->python_compiler, sizeof(id->python_compiler), Py_GetCompiler());
        id->interval = interval;
        if (PyErr_Occurred())
                PyErr_Clear();
}

/* ---- Start / stop --------------------------------------------------------------------------- */

/* Look up (once) the gc and sys functions the sampler calls. GIL held. The imports and lookups
 * can run a collection, and with it a finalizer that calls start(): nothing is published until
 * all of them are there (a half-filled set, seen from a nested start(), was called through a
 * NULL function pointer). */
static int ensure_python_objects(void) {
        PyObject *gc, *sys, *isenabled = NULL, *get_count = NULL, *get_threshold = NULL, *get_stats = NULL,
                            *getallocatedblocks = NULL;

        if (agent.gc_module)
                return 0;
        gc = PyImport_ImportModule("gc");
        sys = gc ? PyImport_ImportModule("sys") : NULL; /* never call with an exception set */
        if (gc && sys) {
                isenabled = PyObject_GetAttrString(gc, "isenabled");
                get_count = PyObject_GetAttrString(gc, "get_count");
                get_threshold = PyObject_GetAttrString(gc, "get_threshold");
                get_stats = PyObject_GetAttrString(gc, "get_stats");
                getallocatedblocks = PyObject_GetAttrString(sys, "getallocatedblocks");
        }
        Py_XDECREF(sys);
        if (!isenabled || !get_count || !get_threshold || !get_stats || !getallocatedblocks || agent.gc_module) {
                /* failed, or a nested call got there first and published its own */
                Py_XDECREF(gc);
                Py_XDECREF(isenabled);
                Py_XDECREF(get_count);
                Py_XDECREF(get_threshold);
                Py_XDECREF(get_stats);
                Py_XDECREF(getallocatedblocks);
                if (!agent.gc_module)
                        return -1;
                /* a nested call's set stands: our own failure (an import a hook refused) must
                 * not stay set behind a success */
                if (PyErr_Occurred())
                        PyErr_Clear();
                return 0;
        }
        agent.gc_isenabled = isenabled;
        agent.gc_get_count = get_count;
        agent.gc_get_threshold = get_threshold;
        agent.gc_get_stats = get_stats;
        agent.sys_getallocatedblocks = getallocatedblocks;
        agent.gc_module = gc; /* last: the mark that all of them are there */
        return 0;
}

/* Register the atexit and fork hooks, once per process (fork children inherit both). */
static int register_hooks(void) {
        PyObject *mod, *r;

        if (!agent.atexit_registered) {
                mod = PyImport_ImportModule("atexit");
                r = mod ? PyObject_CallMethod(mod, "register", "O", agent.atexit_hook) : NULL;
                Py_XDECREF(mod);
                if (!r)
                        return -1;
                Py_DECREF(r);
                agent.atexit_registered = true;
        }
        if (!agent.fork_hook_registered) {
                PyObject *os = PyImport_ImportModule("os"), *fn = NULL, *args = NULL, *kw = NULL;

                if (os)
                        fn = PyObject_GetAttrString(os, "register_at_fork");
                args = PyTuple_New(0);
                kw = Py_BuildValue("{sOsOsO}", "before", agent.fork_before_hook, "after_in_parent",
                                   agent.fork_parent_hook, "after_in_child", agent.fork_child_hook);
                r = fn && args && kw ? PyObject_Call(fn, args, kw) : NULL;
                Py_XDECREF(os);
                Py_XDECREF(fn);
                Py_XDECREF(args);
                Py_XDECREF(kw);
                if (!r)
                        return -1;
                Py_DECREF(r);
                agent.fork_hook_registered = true;
        }
        return 0;
}

/* Start with resolved settings; the first sample gets seq_base + 1. GIL held.
 * Returns 0, or -1 with a Python exception set. */
static int agent_start(const char *service, const char *socket_path, double interval, uint64_t seq_base) {
        struct hw_agent_identity id;
        struct hw_sampler_config cfg;
        uint8_t *hello = NULL;
        size_t hello_size = 0;
        int64_t blocks;
        int r;

        if (ensure_python_objects() < 0 || register_hooks() < 0)
                return -1;

        snprintf(agent.service, sizeof(agent.service), "%s", service);
        snprintf(agent.socket_path, sizeof(agent.socket_path), "%s", socket_path);
        agent.interval = interval;
        agent.ever_started = true;

        build_identity(&id, agent.service, interval);
        r = hw_encode_hello(&id, &hello, &hello_size);
        hw_agent_identity_clear(&id);
        if (r < 0) {
                errno = -r;
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
        }
        if (hw_transport_reset(&agent.transport, agent.socket_path) < 0) {
                free(hello);
                PyErr_SetString(PyExc_ValueError, "heapwatch: socket path too long");
                return -1;
        }
        hw_transport_set_hello(&agent.transport, hello, hello_size);

        blocks = call_int(agent.sys_getallocatedblocks);
        if (blocks < 0)
                PyErr_Clear();
        agent.pymalloc = blocks > 0; /* 0 under PYTHONMALLOC=malloc: no arenas to count */

        gc_pauses_reset();
        garbage_finalizers_reset();
        {
                const char *why = NULL;

                memset(&agent.finalizers, 0, sizeof(agent.finalizers));
                agent.finalizers_known = hw_heapwalk_finalizers_init(&why) >= 0;
        }
        holds_reset();
        if (gc_callback_install() < 0) {
                hw_transport_reset(&agent.transport, NULL);
                return -1;
        }
        if (agent.pymalloc)
                hw_arena_hooks_install();
        hw_heap_hooks_install(agent.sample_bytes, agent.stack_depth);

        cfg = (struct hw_sampler_config) {
                .interval = interval,
                .proc_root = NULL,
                .transport = &agent.transport,
                .python = python_from_thread,
                .userdata = NULL,
                .seq_base = seq_base,
                .request = serve_request,
                .housekeeping = sampler_housekeeping,
                .thread_end = sampler_thread_end,
        };
        agent.state = AGENT_RUNNING;
        agent.pid = getpid();
        spare_tstate_ready();
        r = hw_sampler_start(&agent.sampler, &cfg);
        if (r < 0) {
                spare_tstate_drop();
                agent.state = AGENT_STOPPED;
                gc_callback_remove();
                hw_arena_hooks_restore();
                hw_heap_hooks_restore(agent.stack_depth);
                hw_transport_reset(&agent.transport, NULL);
                errno = -r;
                PyErr_SetFromErrno(PyExc_OSError);
                return -1;
        }
        return 0;
}

/* Stop: end the thread, take the final sample, send it as GOODBYE within HW_STOP_BUDGET,
 * unhook everything. GIL held on entry and exit (released while waiting). Never raises. */
static void agent_stop(const char *reason) {
        double begin = hw_now_monotonic(), budget;
        struct hw_agent_sample s;
        uint8_t *frame = NULL;
        size_t size = 0;
        int r;

        agent.state = AGENT_STOPPING;
        hw_sampler_request_stop(&agent.sampler);
        Py_BEGIN_ALLOW_THREADS
        hw_sampler_join(&agent.sampler);
        Py_END_ALLOW_THREADS
        hw_handoff_drain(); /* the thread is gone: this host thread lets go of what it held */
        spare_tstate_drop();

        hw_sampler_take(&agent.sampler, &s, true, python_gil_held, NULL);
        gc_callback_remove();
        hw_arena_hooks_restore();
        hw_heap_hooks_restore(agent.stack_depth);
        r = hw_encode_sample(&s, reason, &frame, &size);
        if (r == -E2BIG && s.heap) {
                json_decref(s.heap); /* the final figures matter more than the last heap report */
                s.heap = NULL;
                hw_transport_stacks_lost(&agent.transport);
                r = hw_encode_sample(&s, reason, &frame, &size);
        }
        hw_agent_sample_clear(&s);
        if (r >= 0)
                hw_transport_enqueue(&agent.transport, HW_FRAME_GOODBYE, frame, size);
        else
                hw_transport_count_dropped(&agent.transport, 1);

        /* Whatever is left of the budget; with none left (the join waited long for a busy GIL)
         * there is still one non-blocking attempt, which is all a healthy connection needs. */
        budget = HW_STOP_BUDGET - (hw_now_monotonic() - begin);
        Py_BEGIN_ALLOW_THREADS
        (void) hw_transport_drain(&agent.transport, budget > 0 ? budget : 0);
        hw_transport_close(&agent.transport);
        Py_END_ALLOW_THREADS

        agent.state = AGENT_STOPPED;
        if (PyErr_Occurred())
                PyErr_Clear();
}

/* An explicit start() takes over from the bootstrap's: end the thread and the connection
 * without a GOODBYE (to the daemon this is a reconnection, the process lives on) and start
 * again with the new settings. The sequence numbers go on when the daemon stays the same
 * (same socket), and start over for another one. GIL held. */
static int agent_restart(const char *service, const char *socket_path, double interval, uint64_t sample_bytes,
                         unsigned stack_depth) {
        uint64_t seq = 0;
        bool same_daemon = strcmp(socket_path, agent.socket_path) == 0;

        agent.state = AGENT_STOPPING;
        hw_sampler_request_stop(&agent.sampler);
        Py_BEGIN_ALLOW_THREADS
        hw_sampler_join(&agent.sampler);
        hw_transport_close(&agent.transport);
        Py_END_ALLOW_THREADS
        hw_handoff_drain();
        if (same_daemon)
                seq = __atomic_load_n(&agent.sampler.seq, __ATOMIC_RELAXED);
        agent.state = AGENT_STOPPED;
        /* Only now: the sampler thread reads them without the GIL (collect_heap) until joined. */
        agent.sample_bytes = sample_bytes;
        agent.stack_depth = stack_depth;
        if (agent_start(service, socket_path, interval, seq) < 0) {
                gc_callback_remove();
                hw_arena_hooks_restore();
                hw_heap_hooks_restore(agent.stack_depth);
                return -1;
        }
        return 0;
}

/* The agent cannot go on without its thread: unhook quietly (no thread to take a GOODBYE). */
static void agent_abandon(void) {
        spare_tstate_drop();
        gc_callback_remove();
        hw_arena_hooks_restore();
        hw_heap_hooks_restore(agent.stack_depth);
        Py_BEGIN_ALLOW_THREADS
        hw_transport_close(&agent.transport);
        Py_END_ALLOW_THREADS
        agent.state = AGENT_STOPPED;
}

/* Whether the fork under way is subprocess's: _posixsubprocess runs the fork hooks only for a
 * preexec_fn, called from Popen._execute_child, and its child runs preexec_fn and execs. The
 * parent's thread need not stop for it (no warning about threads comes from that fork), and the
 * child, gone at exec, is not worth an agent: joining the thread, starting it again and
 * starting an agent in the child, which delayed the exec the parent waits for, made each
 * Popen(preexec_fn=...) 1.8x as slow (found by review). GIL held. */
static bool fork_is_for_exec(void) {
        PyFrameObject *f = PyEval_GetFrame(); /* borrowed */
        PyCodeObject *co;
        const char *file = NULL;
        Py_ssize_t n = 0;
        bool r;

        if (!f)
                return false;
#if PY_VERSION_HEX >= 0x03090000
        co = PyFrame_GetCode(f);
#else
        co = f->f_code;
        Py_INCREF(co);
#endif
        if (PyUnicode_Check(co->co_name) && PyUnicode_CompareWithASCIIString(co->co_name, "_execute_child") == 0 &&
            PyUnicode_Check(co->co_filename))
                file = PyUnicode_AsUTF8AndSize(co->co_filename, &n);
        r = file && n >= 14 && strcmp(file + n - 14, "/subprocess.py") == 0;
        Py_DECREF(co);
        if (PyErr_Occurred())
                PyErr_Clear();
        return r;
}

/* os.fork() and friends, before fork(), with the GIL: end the sampler thread and start it again
 * in the parent afterwards (the connection stays open). So the process is single-threaded at
 * fork() if the host is (CPython 3.12+ warns about forking a multi-threaded process, and a
 * DeprecationWarning turned into an error would make os.fork() raise), and no thread of ours is
 * half-way through anything when the child's copy of memory is taken. */
static PyObject *fork_before_hook(PyObject *self, PyObject *unused) {
        (void) self;
        (void) unused;
        /* Counted, not a flag: with the GIL released for the join, another thread may fork (or
         * stop and start the agent) meanwhile. The last fork to finish resumes the thread. */
        agent.fork_pauses++;
        if (!fork_is_for_exec() && agent.state == AGENT_RUNNING && agent.pid == getpid() &&
            hw_sampler_thread_running(&agent.sampler) && !hw_sampler_is_current_thread(&agent.sampler)) {
                hw_sampler_request_stop(&agent.sampler);
                Py_BEGIN_ALLOW_THREADS
                hw_sampler_join(&agent.sampler);
                hw_transport_settle_connect(&agent.transport, HW_FORK_CONNECT_SETTLE);
                Py_END_ALLOW_THREADS
        }
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_RETURN_NONE;
}

static PyObject *fork_parent_hook(PyObject *self, PyObject *unused) {
        (void) self;
        (void) unused;
        if (agent.fork_pauses > 0)
                agent.fork_pauses--;
        /* Resume unless another fork is still under way, or stop() ran meanwhile, or a new
         * start() already has its thread. */
        if (agent.fork_pauses == 0 && agent.state == AGENT_RUNNING && agent.pid == getpid() &&
            !hw_sampler_thread_running(&agent.sampler)) {
                spare_tstate_ready();
                if (hw_sampler_resume(&agent.sampler) < 0)
                        agent_abandon();
        }
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_RETURN_NONE;
}

/* A fork child (os.fork and friends, with the GIL): the thread is gone and the connection is
 * the parent's. Drop both and, if the agent was running, start afresh as this new process. */
static PyObject *fork_child_hook(PyObject *self, PyObject *unused) {
        bool was_running = agent.state == AGENT_RUNNING;
        char service[sizeof(agent.service)], path[sizeof(agent.socket_path)];

        (void) self;
        (void) unused;
        agent.fork_pauses = 0;
        agent.exiting = false;
        /* another thread's start() or stop(), waiting without the GIL at fork(), never finishes
         * here: it must not refuse this process's own for good */
        if (agent.in_transition && !pthread_equal(agent.transition_thread, pthread_self()))
                agent.in_transition = false;
        if (agent.state == AGENT_STOPPED)
                Py_RETURN_NONE;

        hw_sampler_forget_after_fork(&agent.sampler);
        hw_transport_forget_after_fork(&agent.transport);
        /* the parent's queued references are this process's too; its pending call may not be */
        hw_handoff_forget_after_fork();
        hw_handoff_drain();
        agent.state = AGENT_STOPPED;
        memcpy(service, agent.service, sizeof(service));
        memcpy(path, agent.socket_path, sizeof(path));
        /* Forked from another thread than the main one: the child's only thread is that one,
         * and its Python code may simply return from it, which ends a process of one thread --
         * but not one with our sampler thread in it (the child hung for good, 3.8-3.10 and 3.13;
         * 3.11 and 3.12 abort creating our thread's state there: "init_threadstate: thread
         * state already initialized"). Such a child goes unwatched, as does subprocess's,
         * which execs once its preexec_fn returns (fork_is_for_exec()). */
        /* (asked again here, not remembered from before the fork: another thread's fork may
         * have run its hooks in between, and the child's frame is still fork()'s caller) */
        if (!was_running || !agent.forked_from_main || fork_is_for_exec() ||
            agent_start(service, path, agent.interval, 0) < 0) {
                /* fork during stop(), or no way to restart: leave the child unhooked */
                gc_callback_remove();
                hw_arena_hooks_restore();
                hw_heap_hooks_restore(agent.stack_depth);
        }
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_RETURN_NONE;
}

static PyObject *atexit_hook(PyObject *self, PyObject *unused) {
        (void) self;
        (void) unused;
        agent.exiting = true; /* a thread started by a later atexit handler would outlive us */
        if (agent.state == AGENT_RUNNING) {
                if (agent.pid == getpid())
                        agent_stop("exit");
                else {
                        /* forked without os.fork()'s hooks: nothing of ours runs here */
                        hw_sampler_forget_after_fork(&agent.sampler);
                        hw_transport_forget_after_fork(&agent.transport);
                        agent.state = AGENT_STOPPED;
                }
        }
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_RETURN_NONE;
}

static PyMethodDef atexit_hook_def = { "_heapwatch_atexit", atexit_hook, METH_NOARGS,
                                       "heapwatch: final sample at interpreter exit" };
static PyMethodDef fork_before_hook_def = { "_heapwatch_before_fork", fork_before_hook, METH_NOARGS,
                                            "heapwatch: pause the agent's thread for fork()" };
static PyMethodDef fork_parent_hook_def = { "_heapwatch_after_fork_in_parent", fork_parent_hook, METH_NOARGS,
                                            "heapwatch: resume the agent's thread after fork()" };
static PyMethodDef fork_child_hook_def = { "_heapwatch_after_fork_in_child", fork_child_hook, METH_NOARGS,
                                           "heapwatch: restart the agent in a fork child" };

/* pthread_atfork: keep our mutexes consistent across fork() however it is called. None of them
 * is ever held while waiting for anything (the sampler's join_lock is, and is not here), so
 * taking them here cannot deadlock. The thread that calls fork() holds all of them across it,
 * so in the child as in the parent it unlocks them: re-initialising a locked mutex instead is
 * undefined behaviour (POSIX), and ThreadSanitizer then sees the child's new sampler thread
 * take mutexes the forking thread still holds. */
static void atfork_lock_all(void) {
        pthread_mutex_lock(&hold_lock);
        pthread_mutex_lock(&agent.transport.lock);
        pthread_mutex_lock(&hw_memhooks_profile.lock);
        hw_heap_hooks_lock_for_fork();
        pthread_mutex_lock(&agent.sampler.malloc_stats.lock);
        hw_connector_lock_for_fork();
        /* With our locks held, another thread's fork() waits in here until ours is done: this is
         * the forking thread's own answer (written before the locks, a fork from native code on
         * another thread could overwrite it in between; found by review). */
        agent.forked_from_main = (pid_t) syscall(SYS_gettid) == getpid();
}

static void atfork_unlock_all(void) {
        hw_connector_unlock_after_fork();
        pthread_mutex_unlock(&agent.sampler.malloc_stats.lock);
        hw_heap_hooks_unlock_after_fork();
        pthread_mutex_unlock(&hw_memhooks_profile.lock);
        pthread_mutex_unlock(&agent.transport.lock);
        pthread_mutex_unlock(&hold_lock);
}

/* The child's heap profile starts clean: the parent's samples describe the parent's future. */
static void atfork_child(void) {
        atfork_unlock_all();
        /* a sampler thread that ran at fork() did not come along; the state it held, and a spare
         * one, are among those CPython's own after-fork code deletes */
        sampler_gil.held = false;
        sampler_gil.adopted = NULL;
        agent.spare_tstate = NULL;
        hw_heap_hooks_after_fork_child();
        /* every fork, the agent running or not: the jobs and the count of stuck connector
         * threads are the parent's */
        hw_connector_forget_all_after_fork();
}

/* ---- Module functions ------------------------------------------------------------------------ */

static int parse_service_arg(PyObject *o, char *buf, size_t size) {
        const char *s, *why;
        Py_ssize_t len;

        if (!PyUnicode_Check(o)) {
                PyErr_Format(PyExc_TypeError, "service must be a str or None, not %.100s", Py_TYPE(o)->tp_name);
                return -1;
        }
        s = PyUnicode_AsUTF8AndSize(o, &len);
        if (!s)
                return -1;
        why = service_problem(s, (size_t) len);
        if (why) {
                PyErr_Format(PyExc_ValueError, "service name %s", why);
                return -1;
        }
        snprintf(buf, size, "%s", s);
        return 0;
}

static int parse_socket_arg(PyObject *o, char *buf, size_t size) {
        PyObject *b = NULL;
        Py_ssize_t len;

        if (!PyUnicode_FSConverter(o, &b))
                return -1;
        len = PyBytes_GET_SIZE(b);
        if (len == 0 || (size_t) len >= size) {
                Py_DECREF(b);
                PyErr_Format(PyExc_ValueError, "socket path must be 1..%zu bytes", size - 1);
                return -1;
        }
        memcpy(buf, PyBytes_AS_STRING(b), (size_t) len + 1);
        Py_DECREF(b);
        return 0;
}

static int parse_interval_arg(PyObject *o, double *ret) {
        double v;

        if (PyBool_Check(o) || !(PyFloat_Check(o) || PyLong_Check(o))) {
                PyErr_Format(PyExc_TypeError, "interval must be a number of seconds or None, not %.100s",
                             Py_TYPE(o)->tp_name);
                return -1;
        }
        v = PyFloat_AsDouble(o);
        if (v == -1.0 && PyErr_Occurred())
                return -1;
        if (!isfinite(v) || v < HW_AGENT_INTERVAL_MIN || v > HW_AGENT_INTERVAL_MAX) {
                PyErr_Format(PyExc_ValueError, "interval must be within 0.05..3600 seconds");
                return -1;
        }
        *ret = v;
        return 0;
}

PyDoc_STRVAR(start_doc,
             "start(service=None, socket=None, interval=None, sample_bytes=None, stack_depth=None) -> bool\n\n"
             "Start the agent: a native thread samples this process every `interval` seconds and\n"
             "streams the samples to heapwatchd over the Unix socket `socket`. Unset arguments come\n"
             "from HEAPWATCH_SERVICE, HEAPWATCH_SOCKET, HEAPWATCH_INTERVAL, else the defaults (the\n"
             "script's name; /run/heapwatch/agent.sock for root, $XDG_RUNTIME_DIR/heapwatch/agent.sock\n"
             "otherwise; 1.0). Returns True if started, False if the agent was already running (the\n"
             "running agent and its settings are kept). Exception: when the agent was started\n"
             "implicitly by `heapwatch run`'s bootstrap, an explicit start() whose settings differ\n"
             "restarts it with them and returns True. A missing daemon is not an error. A start()\n"
             "or stop() made while another one is under way (from a finalizer, an import hook or a\n"
             "signal handler it ran) returns False and changes nothing.\n\n"
             "The heap profiler samples about one allocation per `sample_bytes` bytes allocated\n"
             "(HEAPWATCH_SAMPLE_BYTES, default 524288; 0 turns it off) and records up to `stack_depth`\n"
             "Python frames of each sample (HEAPWATCH_STACK_DEPTH, default 32, at most 128).");

/* start() and _autostart(). Returns a new reference to True/False, or NULL with an exception. */
static PyObject *start_unguarded(PyObject *args, PyObject *kwargs, bool implicit) {
        static char *kwlist[] = { "service", "socket", "interval", "sample_bytes", "stack_depth", NULL };
        PyObject *o_service = Py_None, *o_socket = Py_None, *o_interval = Py_None, *o_sample = Py_None,
                 *o_depth = Py_None;
        long long sample_bytes = HW_HEAPPROF_SAMPLE_BYTES_DEFAULT, depth = HW_HEAPPROF_DEPTH_DEFAULT;
        char service[HW_AGENT_SERVICE_MAX + 1], path[HW_TRANSPORT_PATH_MAX + 1], def[HW_TRANSPORT_PATH_MAX + 1];
        double interval = HW_AGENT_INTERVAL_DEFAULT;
        const char *env, *why = NULL;

        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOO:start", kwlist, &o_service, &o_socket, &o_interval,
                                         &o_sample, &o_depth))
                return NULL;

        if (o_service != Py_None && parse_service_arg(o_service, service, sizeof(service)) < 0)
                return NULL;
        if (o_socket != Py_None && parse_socket_arg(o_socket, path, sizeof(path)) < 0)
                return NULL;
        if (o_interval != Py_None && parse_interval_arg(o_interval, &interval) < 0)
                return NULL;
        if (o_sample != Py_None &&
            parse_int_arg(o_sample, "sample_bytes", 0, (long long) HW_HEAPPROF_SAMPLE_BYTES_MAX, &sample_bytes) < 0)
                return NULL;
        if (o_depth != Py_None && parse_int_arg(o_depth, "stack_depth", 1, HW_HEAPPROF_DEPTH_MAX, &depth) < 0)
                return NULL;

        if (agent.exiting || agent.state == AGENT_STOPPING ||
            (agent.state == AGENT_RUNNING && (implicit || !agent.implicit)))
                Py_RETURN_FALSE;

        if (o_interval == Py_None) {
                env = getenv("HEAPWATCH_INTERVAL");
                if (env && env[0] && (why = interval_problem(env, &interval)))
                        warn_setting(&agent.warned_interval, "HEAPWATCH_INTERVAL", env, why, "1.0");
        }
        if (o_sample == Py_None) {
                env = getenv("HEAPWATCH_SAMPLE_BYTES");
                if (env && env[0] &&
                    (why = int_problem(env, 0, (long long) HW_HEAPPROF_SAMPLE_BYTES_MAX, &sample_bytes)))
                        warn_setting(&agent.warned_sample_bytes, "HEAPWATCH_SAMPLE_BYTES", env, why, "524288");
        }
        if (o_depth == Py_None) {
                env = getenv("HEAPWATCH_STACK_DEPTH");
                if (env && env[0] && (why = int_problem(env, 1, HW_HEAPPROF_DEPTH_MAX, &depth)))
                        warn_setting(&agent.warned_stack_depth, "HEAPWATCH_STACK_DEPTH", env, why, "32");
        }
        if (o_socket == Py_None) {
                default_socket(def, sizeof(def));
                env = getenv("HEAPWATCH_SOCKET");
                if (env && env[0] && strlen(env) <= HW_TRANSPORT_PATH_MAX)
                        snprintf(path, sizeof(path), "%s", env);
                else {
                        if (env && env[0])
                                warn_setting(&agent.warned_socket, "HEAPWATCH_SOCKET", env,
                                             "longer than a Unix socket path may be (107 bytes)", def);
                        snprintf(path, sizeof(path), "%s", def);
                }
        }
        if (o_service == Py_None) {
                struct hw_agent_identity id = { 0 };

                env = getenv("HEAPWATCH_SERVICE");
                if (env && env[0] && !(why = service_problem(env, strlen(env))))
                        snprintf(service, sizeof(service), "%s", env);
                else {
                        identity_argv(&id);
                        default_service(service, sizeof(service), &id);
                        hw_agent_identity_clear(&id);
                        if (env && env[0])
                                warn_setting(&agent.warned_service, "HEAPWATCH_SERVICE", env, why, service);
                }
        }

        if (agent.state == AGENT_RUNNING) {
                /* explicit start() over the bootstrap's agent: the explicit settings win */

                agent.implicit = false;
                if (agent.pid == getpid() && strcmp(service, agent.service) == 0 &&
                    strcmp(path, agent.socket_path) == 0 && interval == agent.interval &&
                    (uint64_t) sample_bytes == agent.sample_bytes && (unsigned) depth == agent.stack_depth)
                        Py_RETURN_FALSE; /* same settings: nothing to change */
                if (agent.pid != getpid()) {
                        hw_sampler_forget_after_fork(&agent.sampler);
                        hw_transport_forget_after_fork(&agent.transport);
                        agent.state = AGENT_STOPPED;
                } else {
                        if (agent_restart(service, path, interval, (uint64_t) sample_bytes, (unsigned) depth) < 0)
                                return NULL;
                        Py_RETURN_TRUE;
                }
        }

        agent.sample_bytes = (uint64_t) sample_bytes;
        agent.stack_depth = (unsigned) depth;
        if (agent_start(service, path, interval, 0) < 0)
                return NULL;
        agent.implicit = implicit;
        Py_RETURN_TRUE;
}

/* The agent watches the whole process and keeps process-wide state made of one interpreter's
 * objects (the gc functions, its hooks, the census's gc module): only the main interpreter may
 * use it. A legacy subinterpreter that imported it first made those objects, which died with
 * it ("gc.callbacks is not a list" from the main interpreter's start() after; found by
 * review). With the module imported in the main interpreter first, a subinterpreter gets a copy
 * of it without the import running again: hence the check in every function too. */
static bool main_interpreter_or_raise(const char *what) {
        if (hw_py_current_interp() == PyInterpreterState_Main())
                return true;
        PyErr_Format(PyExc_RuntimeError, "heapwatch.%s: heapwatch runs in the main interpreter only", what);
        return false;
}

/* start() and stop() run Python code on their way (imports, lookups, allocations that can run
 * a collection and its finalizers; other threads while they wait without the GIL). A start()
 * or stop() from there, nested in ours, would change the agent under the outer call's feet: a
 * nested start() completed, the outer one then failed to start a second thread and unhooked,
 * and the nested one's thread ran on with nobody to stop it (found by review). So they are
 * refused: they return False and change nothing (agent.in_transition). */

static PyObject *start_common(PyObject *args, PyObject *kwargs, bool implicit) {
        PyObject *r;

        if (!main_interpreter_or_raise(implicit ? "_autostart" : "start"))
                return NULL;
        if (agent.in_transition)
                Py_RETURN_FALSE;
        agent.in_transition = true;
        agent.transition_thread = pthread_self();
        r = start_unguarded(args, kwargs, implicit);
        agent.in_transition = false;
        return r;
}

static PyObject *hw_start(PyObject *self, PyObject *args, PyObject *kwargs) {
        (void) self;
        return start_common(args, kwargs, false);
}

PyDoc_STRVAR(autostart_doc,
             "_autostart() -> bool\n\n"
             "start() with the settings from the environment, for the bootstrap (sitecustomize) of\n"
             "`heapwatch run`. An explicit start() with other settings later takes over.");

static PyObject *hw_autostart(PyObject *self, PyObject *unused) {
        PyObject *args = PyTuple_New(0), *r;

        (void) self;
        (void) unused;
        if (!args)
                return NULL;
        r = start_common(args, NULL, true);
        Py_DECREF(args);
        return r;
}

PyDoc_STRVAR(stop_doc,
             "stop() -> bool\n\n"
             "Stop the agent: end its thread, send a final sample (GOODBYE, reason \"stop\") for at\n"
             "most 0.2 s, remove the gc callback and restore the arena and memory allocators. Returns False if the\n"
             "agent was not running. start() may be called again afterwards.");

static PyObject *hw_stop(PyObject *self, PyObject *unused) {
        (void) self;
        (void) unused;
        if (!main_interpreter_or_raise("stop"))
                return NULL;
        if (agent.state != AGENT_RUNNING || agent.in_transition)
                Py_RETURN_FALSE;
        if (agent.pid != getpid()) {
                /* a fork child whose os.fork hooks did not run: the thread is not ours */
                hw_sampler_forget_after_fork(&agent.sampler);
                hw_transport_forget_after_fork(&agent.transport);
                agent.state = AGENT_STOPPED;
                gc_callback_remove();
                hw_arena_hooks_restore();
                hw_heap_hooks_restore(agent.stack_depth);
                Py_RETURN_TRUE;
        }
        if (hw_sampler_is_current_thread(&agent.sampler)) {
                /* e.g. from a finalizer that a collection ran in the sampler thread */
                PyErr_SetString(PyExc_RuntimeError, "heapwatch.stop() cannot be called from the agent's own thread");
                return NULL;
        }
        agent.in_transition = true;
        agent.transition_thread = pthread_self();
        agent_stop("stop");
        agent.in_transition = false;
        Py_RETURN_TRUE;
}

static PyObject *json_to_python(json_t *j) {
        switch (json_typeof(j)) {
        case JSON_OBJECT: {
                PyObject *d = PyDict_New();
                const char *key;
                json_t *v;

                if (!d)
                        return NULL;
                json_object_foreach(j, key, v) {
                        PyObject *pv = json_to_python(v);
                        if (!pv || PyDict_SetItemString(d, key, pv) < 0) {
                                Py_XDECREF(pv);
                                Py_DECREF(d);
                                return NULL;
                        }
                        Py_DECREF(pv);
                }
                return d;
        }
        case JSON_ARRAY: {
                PyObject *l = PyList_New((Py_ssize_t) json_array_size(j));

                if (!l)
                        return NULL;
                for (size_t i = 0; i < json_array_size(j); i++) {
                        PyObject *pv = json_to_python(json_array_get(j, i));
                        if (!pv) {
                                Py_DECREF(l);
                                return NULL;
                        }
                        PyList_SET_ITEM(l, (Py_ssize_t) i, pv);
                }
                return l;
        }
        case JSON_STRING:
                return PyUnicode_DecodeUTF8(json_string_value(j), (Py_ssize_t) json_string_length(j), "replace");
        case JSON_INTEGER:
                return PyLong_FromLongLong(json_integer_value(j));
        case JSON_REAL:
                return PyFloat_FromDouble(json_real_value(j));
        case JSON_TRUE:
                Py_RETURN_TRUE;
        case JSON_FALSE:
                Py_RETURN_FALSE;
        case JSON_NULL:
        default:
                Py_RETURN_NONE;
        }
}

PyDoc_STRVAR(snapshot_doc,
             "snapshot() -> dict\n\n"
             "Take a sample now, in the calling thread, and return it as a dict shaped like the SAMPLE\n"
             "payload of the wire protocol. It is not sent and does not reset the GC pause figures\n"
             "(\"seq\" is that of the last sample taken). Works whether or not the agent runs.");

static PyObject *hw_snapshot(PyObject *self, PyObject *unused) {
        struct hw_agent_sample s;
        json_t *j;
        PyObject *d;

        (void) self;
        (void) unused;
        if (!main_interpreter_or_raise("snapshot"))
                return NULL;
        if (ensure_python_objects() < 0)
                return NULL;
        hw_sampler_take(&agent.sampler, &s, false, python_gil_held, NULL);
        j = hw_encode_sample_json(&s, NULL);
        hw_agent_sample_clear(&s);
        if (!j)
                return PyErr_NoMemory();
        d = json_to_python(j);
        json_decref(j);
        return d;
}

/* census() / chains(): the daemon's requests, run in the calling thread (tests, operators at a
 * REPL). The caller holds the GIL, so the host waits for at most budget_ms, as for the daemon. */
static PyObject *run_request_py(const struct hw_request *req) {
        json_t *j = hw_heapwalk_run(req, true, NULL);
        PyObject *d;

        if (!j)
                return PyErr_NoMemory();
        d = json_to_python(j);
        json_decref(j);
        return d;
}

PyDoc_STRVAR(census_doc,
             "census(budget_ms=50, top=32, slices=20) -> dict\n\n"
             "Count the GC-tracked objects by type in the calling thread, holding the GIL for at most\n"
             "budget_ms at a time, in at most `slices` holds with the GIL released between; the dict is\n"
             "the CENSUS payload of the wire protocol (\"sampled\": True and a \"fraction\" when the heap\n"
             "was too large for all slices).");

static PyObject *hw_census_py(PyObject *self, PyObject *args, PyObject *kwargs) {
        static char *kwlist[] = { "budget_ms", "top", "slices", NULL };
        struct hw_request req = { .id = 1, .kind = HW_REQUEST_CENSUS, .budget_ms = HW_CENSUS_BUDGET_MS_DEFAULT,
                                  .top = HW_CENSUS_TOP_DEFAULT, .slices = HW_CENSUS_SLICES_DEFAULT };

        (void) self;
        if (!main_interpreter_or_raise("census"))
                return NULL;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|III:census", kwlist, &req.budget_ms, &req.top, &req.slices))
                return NULL;
        if (req.budget_ms < 1 || req.budget_ms > HW_CENSUS_BUDGET_MS_MAX || req.top < 1 || req.top > HW_CENSUS_TOP_MAX ||
            req.slices < 1 || req.slices > HW_CENSUS_SLICES_MAX) {
                PyErr_Format(PyExc_ValueError, "heapwatch.census: budget_ms must be 1..%u, top 1..%u, slices 1..%u",
                             HW_CENSUS_BUDGET_MS_MAX, HW_CENSUS_TOP_MAX, HW_CENSUS_SLICES_MAX);
                return NULL;
        }
        return run_request_py(&req);
}

PyDoc_STRVAR(chains_doc,
             "chains(types, budget_ms=50, holders=False) -> dict\n\n"
             "Find referrer chains from module globals, class attributes and threads' frames to\n"
             "instances of the named types (\"module.QualName\", at most 3), holding the GIL for at most\n"
             "budget_ms; with holders, also the containers holding the most instances of each type\n"
             "and the chains to them. The dict is the CENSUS payload of a \"chains\" request.");

static PyObject *hw_chains_py(PyObject *self, PyObject *args, PyObject *kwargs) {
        static char *kwlist[] = { "types", "budget_ms", "holders", NULL };
        struct hw_request req = { .id = 1, .kind = HW_REQUEST_CHAINS, .budget_ms = HW_CENSUS_BUDGET_MS_DEFAULT,
                                  .top = HW_CENSUS_TOP_DEFAULT };
        PyObject *types;
        int holders = 0;

        (void) self;
        if (!main_interpreter_or_raise("chains"))
                return NULL;
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|Ip:chains", kwlist, &types, &req.budget_ms, &holders))
                return NULL;
        req.holders = holders != 0;
        if (!PyList_Check(types) || PyList_GET_SIZE(types) < 1 || PyList_GET_SIZE(types) > HW_CHAINS_TYPES_MAX ||
            req.budget_ms < 1 || req.budget_ms > HW_CENSUS_BUDGET_MS_MAX) {
                PyErr_Format(PyExc_ValueError, "heapwatch.chains: types must be a list of 1..%u names, budget_ms 1..%u",
                             HW_CHAINS_TYPES_MAX, HW_CENSUS_BUDGET_MS_MAX);
                return NULL;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(types); i++) {
                Py_ssize_t len;
                const char *u = PyUnicode_Check(PyList_GET_ITEM(types, i)) ?
                                        PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(types, i), &len) :
                                        NULL;

                if (!u || len < 1 || (size_t) len > HW_CENSUS_TYPE_NAME_MAX) {
                        if (!PyErr_Occurred())
                                PyErr_SetString(PyExc_ValueError, "heapwatch.chains: bad type name");
                        return NULL;
                }
                memcpy(req.types[i], u, (size_t) len + 1);
        }
        req.n_types = (size_t) PyList_GET_SIZE(types);
        return run_request_py(&req);
}

PyDoc_STRVAR(is_running_doc, "is_running() -> bool\n\nWhether the agent's thread runs in this process.");

static PyObject *hw_is_running(PyObject *self, PyObject *unused) {
        (void) self;
        (void) unused;
        return PyBool_FromLong(agent.state == AGENT_RUNNING && agent.pid == getpid());
}

PyDoc_STRVAR(status_doc,
             "status() -> dict\n\n"
             "The agent's own state: running, connected, socket (path or None), service, interval,\n"
             "process_id (the daemon's id for this process, from WELCOME, or None), samples_sent\n"
             "(samples handed whole to the socket: the kernel's buffer, not yet the daemon),\n"
             "samples_dropped_total, reconnects_total, protocol_errors_total, queued_frames,\n"
             "connect_waiting (a connect() has not returned: the socket's file system hangs?),\n"
             "connect_threads_waiting (threads of this process whose connect() has not returned,\n"
             "at most 4: beyond, no new attempt starts),\n"
             "untrusted_listeners_total (connections dropped: the listener was another user's),\n"
             "daemon_floods_total (connections dropped: the daemon sent frames too fast),\n"
             "requests_total and requests_dropped_total (daemon requests received, and refused as\n"
             "too many waited),\n"
             "sample_bytes, stack_depth, heap_profiling (allocators wrapped by this running agent),\n"
             "tick_gil_hold and heap_report_hold (since start(): count, p50_us and p99_us over the\n"
             "latest 1024, max_us, mean_us; how long each sampler tick held the GIL, and each heap\n"
             "report the heap profiler's lock), and heap_padded_blocks (since the process started:\n"
             "agent_arena, sampled small objects given a block from the agent thread's malloc arena,\n"
             "and host_malloc, from the host's own malloc when none was ready; ready: blocks waiting),\n"
             "heap_rewrapped_total (since the process started: the allocator wrappers were found taken\n"
             "out by another tool, e.g. tracemalloc.stop(), and put back with a fresh profile),\n"
             "and last_references (since the process started: handed_to_host, host objects the agent's\n"
             "thread held the last reference to, let go of on the main thread; in_place, on the agent's\n"
             "thread as the queue was full; queued: waiting now).");

/* status() plus what the sampler's ticks cost the host (see holds_record()). */
static PyObject *hw_status_base(void);

static PyObject *hw_status(PyObject *self, PyObject *unused) {
        PyObject *d, *v;

        (void) self;
        (void) unused;
        if (!main_interpreter_or_raise("status"))
                return NULL;
        d = hw_status_base();
        if (!d)
                return NULL;
        v = holds_dict(&tick_gil_hold);
        if (!v || PyDict_SetItemString(d, "tick_gil_hold", v) < 0)
                goto fail;
        Py_DECREF(v);
        v = holds_dict(&heap_report_hold);
        if (!v || PyDict_SetItemString(d, "heap_report_hold", v) < 0)
                goto fail;
        Py_DECREF(v);
        {
                uint64_t served, missed;
                unsigned ready;

                hw_heap_hooks_pool_counts(&served, &missed, &ready);
                v = Py_BuildValue("{s:K,s:K,s:I}", "agent_arena", (unsigned long long) served, "host_malloc",
                                  (unsigned long long) missed, "ready", ready);
        }
        if (!v || PyDict_SetItemString(d, "heap_padded_blocks", v) < 0)
                goto fail;
        Py_DECREF(v);
        v = PyLong_FromUnsignedLongLong(hw_heap_hooks_rewrapped());
        if (!v || PyDict_SetItemString(d, "heap_rewrapped_total", v) < 0)
                goto fail;
        Py_DECREF(v);
        {
                struct hw_handoff_stats hs;

                hw_handoff_stats(&hs);
                v = Py_BuildValue("{s:K,s:K,s:K}", "handed_to_host", (unsigned long long) hs.handed, "in_place",
                                  (unsigned long long) hs.in_place, "queued", (unsigned long long) hs.queued);
        }
        if (!v || PyDict_SetItemString(d, "last_references", v) < 0)
                goto fail;
        Py_DECREF(v);
        return d;
fail:
        Py_XDECREF(v);
        Py_DECREF(d);
        return NULL;
}

static int dict_set_u64(PyObject *d, const char *key, uint64_t value) {
        PyObject *v = PyLong_FromUnsignedLongLong(value);
        int r = v ? PyDict_SetItemString(d, key, v) : -1;

        Py_XDECREF(v);
        return r;
}

static int dict_set_bool(PyObject *d, const char *key, bool value) {
        return PyDict_SetItemString(d, key, value ? Py_True : Py_False);
}

static PyObject *hw_status_base(void) {
        struct hw_transport_status st;
        bool running = agent.state == AGENT_RUNNING && agent.pid == getpid();
        PyObject *socket, *d;

        hw_transport_get_status(&agent.transport, &st);
        /* a path is bytes to the kernel: decoded as os.fsdecode() does ("s" raised
         * UnicodeDecodeError for a path that is not UTF-8; found by review) */
        if (agent.ever_started)
                socket = PyUnicode_DecodeFSDefault(agent.socket_path);
        else {
                socket = Py_None;
                Py_INCREF(socket);
        }
        if (!socket)
                return NULL;
        d = Py_BuildValue(
                "{s:O,s:O,s:O,s:s,s:d,s:s,s:K,s:K,s:K,s:K,s:n,s:K,s:I,s:O}", "running", running ? Py_True : Py_False,
                "connected", st.connected ? Py_True : Py_False, "socket", socket,
                "service", agent.ever_started ? agent.service : NULL,
                "interval", agent.ever_started ? agent.interval : HW_AGENT_INTERVAL_DEFAULT, "process_id",
                st.have_process_id ? st.process_id : NULL, "samples_sent", (unsigned long long) st.samples_sent,
                "samples_dropped_total", (unsigned long long) st.samples_dropped_total, "reconnects_total",
                (unsigned long long) st.reconnects_total, "protocol_errors_total",
                (unsigned long long) st.protocol_errors_total, "queued_frames", (Py_ssize_t) st.queued_frames,
                "sample_bytes", (unsigned long long) agent.sample_bytes, "stack_depth", agent.stack_depth,
                "heap_profiling", running && hp_active() ? Py_True : Py_False);
        if (d && (dict_set_bool(d, "connect_waiting", st.connect_waiting) < 0 ||
                  dict_set_u64(d, "untrusted_listeners_total", st.untrusted_listeners_total) < 0 ||
                  dict_set_u64(d, "daemon_floods_total", st.rx_floods_total) < 0 ||
                  dict_set_u64(d, "connect_threads_waiting", hw_connector_threads_waiting()) < 0 ||
                  dict_set_u64(d, "requests_total", st.requests_total) < 0 ||
                  dict_set_u64(d, "requests_dropped_total", st.requests_dropped_total) < 0))
                Py_CLEAR(d);
        Py_DECREF(socket);
        return d;
}

static PyMethodDef module_methods[] = {
        { "start", (PyCFunction) (void (*)(void)) hw_start, METH_VARARGS | METH_KEYWORDS, start_doc },
        { "stop", hw_stop, METH_NOARGS, stop_doc },
        { "snapshot", hw_snapshot, METH_NOARGS, snapshot_doc },
        { "is_running", hw_is_running, METH_NOARGS, is_running_doc },
        { "status", hw_status, METH_NOARGS, status_doc },
        { "_autostart", hw_autostart, METH_NOARGS, autostart_doc },
        { "census", (PyCFunction) (void (*)(void)) hw_census_py, METH_VARARGS | METH_KEYWORDS, census_doc },
        { "chains", (PyCFunction) (void (*)(void)) hw_chains_py, METH_VARARGS | METH_KEYWORDS, chains_doc },
        { NULL, NULL, 0, NULL },
};

PyDoc_STRVAR(module_doc,
             "heapwatch agent: streams this process's memory, heap and GC figures to heapwatchd.\n\n"
             "heapwatch.start(service=None, socket=None, interval=None, sample_bytes=None, stack_depth=None);\n"
             "heapwatch.stop();\n"
             "heapwatch.snapshot(); heapwatch.is_running(); heapwatch.status().");

static struct PyModuleDef module_def = {
        PyModuleDef_HEAD_INIT, "heapwatch", module_doc, -1, module_methods, NULL, NULL, NULL, NULL,
};

/* Refuse to run in an interpreter the module was not built for. Returns 0 or -1 (ImportError). */
static int check_interpreter(void) {
        PyObject *impl = PySys_GetObject("implementation"), *name = NULL, *hex = PySys_GetObject("hexversion");
        long long v;
        int r = 0;

        name = impl ? PyObject_GetAttrString(impl, "name") : NULL;
        if (!name || !PyUnicode_Check(name) || PyUnicode_CompareWithASCIIString(name, "cpython") != 0) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ImportError, "heapwatch: only CPython is supported");
                r = -1;
                goto finish;
        }
        v = hex && PyLong_Check(hex) ? PyLong_AsLongLong(hex) : -1;
        if (v < 0 || (v >> 16) != (PY_VERSION_HEX >> 16)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ImportError, "heapwatch: built for Python %d.%d, not this interpreter",
                             PY_MAJOR_VERSION, PY_MINOR_VERSION);
                r = -1;
        }
finish:
        Py_XDECREF(name);
        return r;
}

/* Process-wide setup that must happen exactly once, whatever the imports. */
static int init_once(void) {
        static bool native_done = false, done = false;
        int r;

        if (done)
                return 0;
        /* The native part once, even when an import failed after it and is tried again: the
         * fork handlers registered twice would lock the same mutexes twice in one thread and
         * hang every fork() (pthread_atfork() has no way back, so it comes last). */
        if (!native_done) {
                hw_sampler_init(&agent.sampler); /* before the fork handlers: they take its malloc_stats.lock */
                hw_heap_hooks_set_waker(wake_sampler, NULL); /* before the hooks go in */
                r = -hw_heapprof_init(&hw_memhooks_profile);
                if (r == 0)
                        r = -hw_transport_init(&agent.transport, NULL);
                if (r == 0)
                        r = pthread_atfork(atfork_lock_all, atfork_unlock_all, atfork_child);
                if (r != 0) {
                        errno = r;
                        PyErr_SetFromErrno(PyExc_ImportError);
                        return -1;
                }
                agent.sampler.config.transport = &agent.transport; /* for snapshot() before any start() */
                agent.gc_started_at = -1;
                agent.gc_generation = -1;
                agent.interval = HW_AGENT_INTERVAL_DEFAULT;
                agent.sample_bytes = HW_HEAPPROF_SAMPLE_BYTES_DEFAULT;
                agent.stack_depth = HW_HEAPPROF_DEPTH_DEFAULT;
                native_done = true;
        }

        /* what a failed import made stays; the rest is made on the next try */
        if (!agent.key_generation)
                agent.key_generation = PyUnicode_InternFromString("generation");
        if (!agent.gc_callback)
                agent.gc_callback = PyCFunction_NewEx(&gc_callback_def, NULL, NULL);
        if (!agent.atexit_hook)
                agent.atexit_hook = PyCFunction_NewEx(&atexit_hook_def, NULL, NULL);
        if (!agent.fork_before_hook)
                agent.fork_before_hook = PyCFunction_NewEx(&fork_before_hook_def, NULL, NULL);
        if (!agent.fork_parent_hook)
                agent.fork_parent_hook = PyCFunction_NewEx(&fork_parent_hook_def, NULL, NULL);
        if (!agent.fork_child_hook)
                agent.fork_child_hook = PyCFunction_NewEx(&fork_child_hook_def, NULL, NULL);
        if (!agent.key_generation || !agent.gc_callback || !agent.atexit_hook || !agent.fork_before_hook ||
            !agent.fork_parent_hook || !agent.fork_child_hook)
                return -1;
        done = true;
        return 0;
}

HW_EXPORT PyMODINIT_FUNC PyInit_heapwatch(void);
HW_EXPORT PyMODINIT_FUNC PyInit_heapwatch(void) {
        PyObject *m;

        if (check_interpreter() < 0)
                return NULL;
        if (hw_py_current_interp() != PyInterpreterState_Main()) {
                /* before init_once(): the objects it keeps must be the main interpreter's */
                PyErr_SetString(PyExc_ImportError, "heapwatch: loads in the main interpreter only");
                return NULL;
        }
        if (init_once() < 0)
                return NULL;
        m = PyModule_Create(&module_def);
        if (!m)
                return NULL;
        if (PyModule_AddStringConstant(m, "__version__", HW_AGENT_VERSION) < 0) {
                Py_DECREF(m);
                return NULL;
        }
        return m;
}

#endif /* a CPython with the GIL */
