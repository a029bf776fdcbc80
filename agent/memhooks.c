/* SPDX-License-Identifier: MIT */
/*
 * The agent's hooks in the interpreter's memory allocators (see memhooks.h): the arena
 * counter and the heap profiler's allocator wrappers with their stack capture.
 *
 * Rules these hooks keep (the agent's promises to the host, SPEC.md): they never raise, never
 * run Python code and never allocate through the interpreter while recording a sample (a
 * nested allocation finds hp_busy set and passes through unsampled); the fast paths take no
 * lock; and the profiler's mutex is never held while waiting for anything, so module.c can
 * take it across fork().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* 3.11+: the interpreter's own frames (_PyInterpreterFrame) are the only way to walk the stack
 * without materialising frame objects, which allocates, and in 3.11 may even run a garbage
 * collection inside the allocation we are sampling. tracemalloc does the same. The structure
 * comes from each version's own headers (each build uses its interpreter's headers). */
#if PY_VERSION_HEX >= 0x030B0000 && !defined(Py_GIL_DISABLED) && !defined(PYPY_VERSION)
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE
#elif !defined(PYPY_VERSION)
#include <frameobject.h> /* 3.8-3.10: PyFrameObject's members (f_back, f_code) */
#endif

#include "agent-util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"
#include "memhooks.h"

/* Arena allocator wrapper state. Counters are atomics: pymalloc calls us with the GIL held, the
 * sampler reads them under the GIL too, but snapshot() readers need no more than atomicity. */
static PyObjectArenaAllocator arena_orig;
static bool arena_in_chain;  /* our wrapper is (still) part of the allocator chain */
static bool arena_counting;  /* the running agent counts (reset at start) */
static uint64_t arena_allocs;
static uint64_t arena_frees;
static uint64_t arena_size;

/* ---- Arena allocator wrapper ------------------------------------------------------------------ */

static void *arena_alloc(void *ctx, size_t size) {
        void *p = arena_orig.alloc(arena_orig.ctx, size);

        (void) ctx;
        if (p) {
                __atomic_add_fetch(&arena_allocs, 1, __ATOMIC_RELAXED);
                __atomic_store_n(&arena_size, (uint64_t) size, __ATOMIC_RELAXED);
        }
        return p;
}

static void arena_free(void *ctx, void *ptr, size_t size) {
        (void) ctx;
        arena_orig.free(arena_orig.ctx, ptr, size);
        __atomic_add_fetch(&arena_frees, 1, __ATOMIC_RELAXED);
}

/* Arenas allocated before the wrapper are freed through it to the original: it only passes
 * through, so mixing is harmless. */
void hw_arena_hooks_install(void) {
        PyObjectArenaAllocator cur, ours;

        __atomic_store_n(&arena_allocs, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&arena_frees, 0, __ATOMIC_RELAXED);
        arena_counting = true;
        if (arena_in_chain)
                return; /* still wrapped by us (or under someone who wrapped us): keep counting */

        PyObject_GetArenaAllocator(&cur);
        if (cur.alloc == arena_alloc) {
                arena_in_chain = true;
                return;
        }
        arena_orig = cur;
        ours = (PyObjectArenaAllocator) { .ctx = NULL, .alloc = arena_alloc, .free = arena_free };
        PyObject_SetArenaAllocator(&ours);
        arena_in_chain = true;
}

/* The original comes back unless someone wrapped us since: then their wrapper calls ours,
 * which keeps passing through (arena_orig stays valid forever). */
void hw_arena_hooks_restore(void) {
        PyObjectArenaAllocator cur;

        arena_counting = false;
        if (!arena_in_chain)
                return;
        PyObject_GetArenaAllocator(&cur);
        if (cur.alloc == arena_alloc) {
                PyObject_SetArenaAllocator(&arena_orig);
                arena_in_chain = false;
        }
}

bool hw_arena_hooks_read(uint64_t *ret_allocs, uint64_t *ret_frees, uint64_t *ret_size) {
        if (!arena_counting)
                return false;
        *ret_allocs = __atomic_load_n(&arena_allocs, __ATOMIC_RELAXED);
        *ret_frees = __atomic_load_n(&arena_frees, __ATOMIC_RELAXED);
        *ret_size = __atomic_load_n(&arena_size, __ATOMIC_RELAXED);
        return true;
}

/* ---- Heap profiler: allocator wrappers and stack capture ------------------------------------
 *
 * The mem and object domains are wrapped (PyMem_SetAllocator): both are called with the GIL
 * held, which is what makes the lock-free fast paths of heapprof.h uncontended. Their malloc,
 * calloc and realloc count bytes. How a free of a tracked block is seen depends on what is
 * under the wrapper (each domain is decided when it is wrapped):
 *
 *  - Over pymalloc (the interpreter's default allocators, the common case) the domain's free
 *    stays pymalloc's own: frees, half of all calls, pay nothing, and on a build with
 *    profile-guided optimisation the interpreter's call sites keep pymalloc's inlined free
 *    (they inline it while the domain's free is pymalloc's; docs/performance.md, fifth pass).
 *    Instead, a sampled allocation asks pymalloc for at least HP_PYMALLOC_MAX + 1 bytes, which
 *    pymalloc serves from the raw domain (as documented: requests above 512 bytes go to
 *    PyMem_RawMalloc) and frees -- or moves, on realloc -- through PyMem_RawFree and
 *    PyMem_RawRealloc. So every tracked block leaves through the raw domain, whose free and
 *    realloc are wrapped (hp_raw below) to forget it -- so the domain's own realloc wrapper
 *    does not ask the filter either (hp_realloc). The raw domain runs without the GIL: its
 *    wrappers read the filter with relaxed atomics and take the profiler's mutex on a "maybe",
 *    as everything else does; they count nothing (pymalloc's large requests would be counted
 *    twice). The padding costs at most 512 bytes per live sample (0.1 % at the default 512 KiB)
 *    and keeps the interpreter's own block counts (sys.getallocatedblocks()) exact, since
 *    pymalloc itself allocates and frees the raw block.
 *  - Over anything else (PYTHONMALLOC=malloc or debug, tracemalloc or another hook installed
 *    first) the wrapper wraps free too and checks every free against the filter.
 *
 * Sampled allocations (about one per HEAPWATCH_SAMPLE_BYTES allocated) capture the Python stack
 * by walking the frames directly and reading names without creating objects; the names of
 * frames are copied by heapprof.c into its own (C library) memory. Anything the capture does
 * allocate through the interpreter finds hp_busy set and is passed through unsampled. */

/* pymalloc's SMALL_REQUEST_THRESHOLD: 512 in 3.8-3.13, and at most 512 by obmalloc.c's own
 * rules; larger requests are the raw domain's. */
#define HP_PYMALLOC_MAX 512
/* What a sampled small allocation asks pymalloc for over pymalloc (hp_pad_begin()) */
#define HP_PADDED_SIZE (HP_PYMALLOC_MAX + 1)

#if PY_VERSION_HEX >= 0x030D0000
/* exported as before, but declared in an internal header since 3.13 */
PyAPI_FUNC(const char *) _PyMem_GetCurrentAllocatorName(void);
#endif
/* A private function: weak, so that an interpreter built without it (or one that stops
 * exporting it) still loads the agent, which then keeps wrapping frees (hp_learn_pymalloc()). */
#pragma weak _PyMem_GetCurrentAllocatorName

struct hp_domain {
        PyMemAllocatorDomain domain;
        PyMemAllocatorEx orig;
        bool in_chain;     /* our wrapper is (still) part of this domain's chain */
        bool unseen;       /* ...as far as we know, but it no longer sees the allocations */
        bool free_via_raw; /* over pymalloc: free is pymalloc's, tracked blocks are raw blocks */
};

struct hw_heapprof hw_memhooks_profile;
static struct hp_domain hp_domains[2] = { { .domain = PYMEM_DOMAIN_MEM }, { .domain = PYMEM_DOMAIN_OBJ } };
static struct hp_domain hp_raw = { .domain = PYMEM_DOMAIN_RAW }; /* free and realloc wrapped */
/* pymalloc's functions, once seen as the default allocator; .malloc NULL: not (yet) seen */
static PyMemAllocatorEx hp_pymalloc;
static int hp_busy; /* a sample is being recorded: exchanged atomically */
static struct hw_heapprof_frame hp_frames[HW_HEAPPROF_DEPTH_MAX];
/* UTF-8 copies of names that are not plain ASCII (those are read in place) */
static char hp_scratch[HW_HEAPPROF_DEPTH_MAX][2][HW_HEAPPROF_FILE_MAX + 4];

/* A str's text as UTF-8 without allocating: compact ASCII strings in place, others encoded into
 * scratch (at most size - 1 bytes, whole characters). */
static void hp_str(PyObject *s, const char **ret, size_t *ret_len, char *scratch, size_t size) {
        Py_ssize_t len;
        unsigned kind;
        const void *data;
        size_t o = 0;

        *ret = "?";
        *ret_len = 1;
        if (!s || !PyUnicode_Check(s))
                return;
#if PY_VERSION_HEX < 0x030C0000
        if (!PyUnicode_IS_READY(s))
                return;
#endif
        len = PyUnicode_GET_LENGTH(s);
        if (PyUnicode_IS_COMPACT_ASCII(s)) {
                *ret = (const char *) PyUnicode_DATA(s);
                *ret_len = (size_t) len;
                return;
        }
        kind = PyUnicode_KIND(s);
        data = PyUnicode_DATA(s);
        for (Py_ssize_t i = 0; i < len; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, i);

                if (c >= 0xD800 && c <= 0xDFFF)
                        c = '?'; /* a lone surrogate (surrogateescape'd file name) */
                if (c < 0x80) {
                        if (o + 1 >= size)
                                break;
                        scratch[o++] = (char) c;
                } else if (c < 0x800) {
                        if (o + 2 >= size)
                                break;
                        scratch[o++] = (char) (0xC0 | (c >> 6));
                        scratch[o++] = (char) (0x80 | (c & 0x3F));
                } else if (c < 0x10000) {
                        if (o + 3 >= size)
                                break;
                        scratch[o++] = (char) (0xE0 | (c >> 12));
                        scratch[o++] = (char) (0x80 | ((c >> 6) & 0x3F));
                        scratch[o++] = (char) (0x80 | (c & 0x3F));
                } else {
                        if (o + 4 >= size)
                                break;
                        scratch[o++] = (char) (0xF0 | (c >> 18));
                        scratch[o++] = (char) (0x80 | ((c >> 12) & 0x3F));
                        scratch[o++] = (char) (0x80 | ((c >> 6) & 0x3F));
                        scratch[o++] = (char) (0x80 | (c & 0x3F));
                }
        }
        *ret = scratch;
        *ret_len = o;
}

static void hp_frame_from_code(size_t i, PyCodeObject *co, int line) {
        struct hw_heapprof_frame *f = &hp_frames[i];
#if PY_VERSION_HEX >= 0x030B0000
        PyObject *name = co->co_qualname;
#else
        PyObject *name = co->co_name;
#endif

        hp_str(co->co_filename, &f->file, &f->file_len, hp_scratch[i][0], sizeof(hp_scratch[i][0]));
        hp_str(name, &f->func, &f->func_len, hp_scratch[i][1], HW_HEAPPROF_FUNC_MAX + 1);
        f->line = line;
        /* The location cache's key: a code object at this address with these name objects has
         * these names (a freed code object's address reused with the very same name objects
         * is the same function compiled again). */
        f->key[0] = (uintptr_t) co;
        f->key[1] = (uintptr_t) co->co_filename ^ ((uintptr_t) name << 1);
}

/* Line numbers: computing one walks the code object's line table (PyCode_Addr2Line), the
 * largest cost of a sample with a deep stack. Samples keep coming from the same instructions,
 * so a small direct-mapped cache keyed by (code object, instruction offset, first line, hash of
 * the line table) saves most of it. The line table's hash is in the key because a freed code
 * object's address is soon reused by another, and code that exec() runs starts at line 1: the
 * same statement a few lines further down in the next exec'd source had the old line (96 % of
 * the samples on one line of five; its line table's address is reused as often). A bytes
 * object computes its hash once and keeps it, and computing it allocates nothing. Used under
 * hp_busy only, GIL held. */
static Py_hash_t hp_line_table_hash(PyCodeObject *co) {
#if PY_VERSION_HEX >= 0x030A0000
        PyObject *table = co->co_linetable;
#else
        PyObject *table = co->co_lnotab;
#endif
        return table && PyBytes_CheckExact(table) ? PyObject_Hash(table) : 0;
}

struct hp_line_entry {
        const void *code;
        Py_hash_t table;
        int lasti;
        int firstlineno;
        int line;
};
static struct hp_line_entry hp_lines[4096];

static struct hp_line_entry *hp_line_slot(const PyCodeObject *co, int lasti) {
        uint64_t h = (((uint64_t) (uintptr_t) co >> 4) ^ ((uint64_t) (unsigned) lasti << 20)) *
                     UINT64_C(0x9E3779B97F4A7C15);

        return &hp_lines[h >> 52 & (HW_ELEMENTSOF(hp_lines) - 1)];
}

#if PY_VERSION_HEX >= 0x030B0000
/* The code object of an interpreter frame worth reporting, or NULL for the frames the
 * interpreter itself does not show (C-stack shims, frames not yet started). */
static PyCodeObject *hp_frame_code(_PyInterpreterFrame *f) {
#if PY_VERSION_HEX >= 0x030D0000
        if (f->owner == FRAME_OWNED_BY_CSTACK || !f->f_executable || !PyCode_Check(f->f_executable))
                return NULL;
#elif PY_VERSION_HEX >= 0x030C0000
        if (f->owner == FRAME_OWNED_BY_CSTACK || !f->f_code)
                return NULL;
#else
        if (!f->f_code)
                return NULL;
#endif
        if (_PyFrame_IsIncomplete(f))
                return NULL;
#if PY_VERSION_HEX >= 0x030D0000
        return (PyCodeObject *) f->f_executable;
#else
        return f->f_code;
#endif
}
#endif

/* Capture the calling thread's Python stack, innermost first, into hp_frames. GIL held,
 * hp_busy set. Returns the number of frames. */
static size_t hp_capture(size_t depth) {
        size_t n = 0;
#if PY_VERSION_HEX >= 0x030D0000
        PyThreadState *ts = PyThreadState_GetUnchecked();
#else
        PyThreadState *ts = _PyThreadState_UncheckedGet();
#endif

        if (!ts)
                return 0;
#if PY_VERSION_HEX >= 0x030B0000
#if PY_VERSION_HEX >= 0x030D0000
        for (_PyInterpreterFrame *f = ts->current_frame; f && n < depth; f = f->previous) {
#else
        for (_PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL; f && n < depth; f = f->previous) {
#endif
                PyCodeObject *co = hp_frame_code(f);
                struct hp_line_entry *slot;
                Py_hash_t table;
                int line, lasti;

                if (!co)
                        continue;
                table = hp_line_table_hash(co);
#if PY_VERSION_HEX >= 0x030C0000
                lasti = PyUnstable_InterpreterFrame_GetLasti(f);
#else
                lasti = _PyInterpreterFrame_LASTI(f);
#endif
                slot = hp_line_slot(co, lasti);
                if (slot->code == co && slot->lasti == lasti && slot->firstlineno == co->co_firstlineno &&
                    slot->table == table)
                        line = slot->line;
                else {
#if PY_VERSION_HEX >= 0x030C0000
                        line = PyUnstable_InterpreterFrame_GetLine(f);
#else
                        line = PyCode_Addr2Line(co, lasti * (int) sizeof(_Py_CODEUNIT));
#endif
                        *slot = (struct hp_line_entry) { co, table, lasti, co->co_firstlineno, line };
                }
                hp_frame_from_code(n++, co, line);
        }
#else
        /* 3.8-3.10: frames are objects linked through f_back; reading them allocates nothing */
        for (PyFrameObject *f = ts->frame; f && n < depth; f = f->f_back) {
                PyCodeObject *co = f->f_code;
                struct hp_line_entry *slot;
                Py_hash_t table;
                int line;

                if (!co)
                        continue;
                table = hp_line_table_hash(co);
                slot = hp_line_slot(co, f->f_lasti);
                if (!f->f_trace && slot->code == co && slot->lasti == f->f_lasti &&
                    slot->firstlineno == co->co_firstlineno && slot->table == table)
                        line = slot->line;
                else {
                        line = PyFrame_GetLineNumber(f);
                        if (!f->f_trace) /* with a tracer, f_lineno rules: not a function of lasti */
                                *slot = (struct hp_line_entry) { co, table, f->f_lasti,
                                                                 co->co_firstlineno, line };
                }
                hp_frame_from_code(n++, co, line);
        }
#endif
        return n;
}

/* The slow path: this allocation (ptr, NULL if it failed) is sampled; track: its free will be
 * seen (hp_trackable()). */
static void hp_sample(void *ptr, size_t size, bool track) {
        size_t n = 0;

        if (__atomic_exchange_n(&hp_busy, 1, __ATOMIC_ACQUIRE)) {
                hw_heapprof_skip(&hw_memhooks_profile); /* an allocation made while capturing or recording */
                return;
        }
        if (ptr)
                n = hp_capture(hw_memhooks_profile.depth);
        hw_heapprof_record(&hw_memhooks_profile, ptr, size, hp_frames, n, track);
        __atomic_store_n(&hp_busy, 0, __ATOMIC_RELEASE);
}

/* ---- Padded blocks from the agent thread's malloc arena --------------------------------------
 *
 * A padded block (hp_pad_begin()) holds a sampled small object that would otherwise live
 * in pymalloc's arenas, which are mapped apart from everything else. From the host's malloc it
 * would land in glibc's main heap among the host's large blocks: after the host frees big
 * mmapped buffers glibc raises its mmap threshold and serves such buffers from the main heap
 * too, and a long-lived sampled object allocated above them keeps the heap from shrinking when
 * they are freed (json's peak RSS rose 2-5 MiB in half the runs; docs/performance.md).
 * So the raw domain's malloc and calloc hand pymalloc's padded request a block that the agent's
 * own thread allocated beforehand: glibc gives threads other than the first arenas of their
 * own, so these blocks stay out of the host's main heap. They are ordinary malloc blocks, which
 * free() and realloc() accept from any thread -- also after stop() has put the original
 * allocators back, which is why they do not come from pages of the agent's own.
 * The pool holds up to HP_POOL_CAP blocks. The agent thread tops it up whenever it wakes
 * (hw_heap_hooks_refill()), and the allocation that leaves fewer than HP_POOL_LOW wakes it
 * (once until it has refilled). An empty pool, or a process held to one arena
 * (MALLOC_ARENA_MAX=1), means the host's malloc serves the block, as it would anyway. */
#define HP_POOL_CAP 64
#define HP_POOL_LOW 48

static pthread_mutex_t hp_pool_lock = PTHREAD_MUTEX_INITIALIZER; /* never held while waiting */
static void *hp_pool[HP_POOL_CAP];                               /* under hp_pool_lock, as are: */
static unsigned hp_pool_count;
static bool hp_pool_open;  /* the raw domain's wrappers are in: blocks may be pooled */
static bool hp_pool_asked; /* the agent thread was woken to refill and has not yet */
static int hp_pad_pending; /* a sampled allocation's padded request is on its way: atomic */
static uint64_t hp_pool_served, hp_pool_missed; /* padded requests; atomic counters */
static uint64_t hp_rewrapped; /* hw_heap_hooks_verify() put the wrappers back: atomic */
static void (*hp_pool_waker)(void *);
static void *hp_pool_waker_arg;

/* The block for a padded request that reached the raw domain, or NULL when the pool is empty. */
static void *hp_pool_take(void) {
        void *p = NULL;
        bool wake = false;

        pthread_mutex_lock(&hp_pool_lock);
        if (hp_pool_count > 0)
                p = hp_pool[--hp_pool_count];
        if (hp_pool_open && hp_pool_count < HP_POOL_LOW && !hp_pool_asked)
                wake = hp_pool_asked = true;
        pthread_mutex_unlock(&hp_pool_lock);
        __atomic_add_fetch(p ? &hp_pool_served : &hp_pool_missed, 1, __ATOMIC_RELAXED);
        if (wake) {
                void (*waker)(void *) = __atomic_load_n(&hp_pool_waker, __ATOMIC_ACQUIRE);

                if (waker)
                        waker(hp_pool_waker_arg); /* does not block (memhooks.h) */
        }
        return p;
}

/* Free every pooled block (stop(): nothing pooled stays behind). */
static void hp_pool_close(void) {
        void *blocks[HP_POOL_CAP];
        unsigned n;

        pthread_mutex_lock(&hp_pool_lock);
        hp_pool_open = false;
        n = hp_pool_count;
        memcpy(blocks, hp_pool, n * sizeof(blocks[0]));
        hp_pool_count = 0;
        hp_pool_asked = false;
        pthread_mutex_unlock(&hp_pool_lock);
        for (unsigned i = 0; i < n; i++)
                hp_raw.orig.free(hp_raw.orig.ctx, blocks[i]);
}

void hw_heap_hooks_refill(void) {
        void *fresh[HP_POOL_CAP];
        unsigned want, n = 0, kept = 0;

        pthread_mutex_lock(&hp_pool_lock);
        want = hp_pool_open ? HP_POOL_CAP - hp_pool_count : 0;
        pthread_mutex_unlock(&hp_pool_lock);
        /* allocated here, on the agent's thread, so from its arena; outside the lock */
        while (n < want && (fresh[n] = hp_raw.orig.malloc(hp_raw.orig.ctx, HP_PADDED_SIZE)) != NULL)
                n++;
        pthread_mutex_lock(&hp_pool_lock);
        while (hp_pool_open && kept < n && hp_pool_count < HP_POOL_CAP)
                hp_pool[hp_pool_count++] = fresh[kept++];
        hp_pool_asked = false;
        pthread_mutex_unlock(&hp_pool_lock);
        while (kept < n) /* closed meanwhile */
                hp_raw.orig.free(hp_raw.orig.ctx, fresh[kept++]);
}

void hw_heap_hooks_set_waker(void (*wake)(void *arg), void *arg) {
        hp_pool_waker_arg = arg;
        __atomic_store_n(&hp_pool_waker, wake, __ATOMIC_RELEASE); /* read by any thread, GIL or not */
}

void hw_heap_hooks_pool_counts(uint64_t *ret_served, uint64_t *ret_missed, unsigned *ret_ready) {
        *ret_served = __atomic_load_n(&hp_pool_served, __ATOMIC_RELAXED);
        *ret_missed = __atomic_load_n(&hp_pool_missed, __ATOMIC_RELAXED);
        pthread_mutex_lock(&hp_pool_lock);
        *ret_ready = hp_pool_count;
        pthread_mutex_unlock(&hp_pool_lock);
}

void hw_heap_hooks_lock_for_fork(void) {
        pthread_mutex_lock(&hp_pool_lock);
}

void hw_heap_hooks_unlock_after_fork(void) {
        pthread_mutex_unlock(&hp_pool_lock);
}

/* The wrappers' fast paths decide before calling the original allocator and end in a tail
 * call to it: no stack frame, a handful of instructions on every allocation (and, not over
 * pymalloc, free) of the host. Everything else is in the out-of-line slow paths. The fast paths
 * are inlined into one set of entry points per domain (HP_DOMAIN_WRAPPERS below) with the
 * domain a constant, so the original allocator is reached by a RIP-relative load rather than
 * through the ctx pointer, and ctx is the original's, passed on untouched. */

/* Over pymalloc, a small object's free is seen only when pymalloc took its block from the raw
 * domain: a sampled one asks for a padded block (HP_PADDED_SIZE), so that its free comes
 * through hp_raw_free. */
static inline bool hp_needs_padding(const struct hp_domain *d, size_t size) {
        return d->free_via_raw && size <= HP_PYMALLOC_MAX;
}

/* What a sampled allocation of size bytes asks the original for, and around the original's
 * call: a padded request is flagged for the raw domain's malloc and calloc, which serve it from
 * the pool. With as many samples live as are tracked, a new one would not be tracked: it is not
 * padded either (513 bytes for nothing: a small sample_bytes multiplied the heap; found by
 * review), and hp_sample() is told not to track it. GIL held. */
static inline size_t hp_pad_begin(const struct hp_domain *d, size_t size) {
        if (!hp_needs_padding(d, size) || hw_heapprof_tracking_full(&hw_memhooks_profile))
                return size;
        __atomic_store_n(&hp_pad_pending, 1, __ATOMIC_RELAXED);
        return HP_PADDED_SIZE;
}

/* Whether the sampled block, allocated as request for size bytes, can be tracked: its free
 * will be seen. */
static inline bool hp_trackable(const struct hp_domain *d, size_t size, size_t request) {
        return request != size || !hp_needs_padding(d, size);
}

static inline void hp_pad_end(void) {
        __atomic_store_n(&hp_pad_pending, 0, __ATOMIC_RELAXED);
}

static __attribute__((noinline)) void *hp_malloc_slow(struct hp_domain *d, size_t size) {
        size_t request = hp_pad_begin(d, size);
        void *p = d->orig.malloc(d->orig.ctx, request);

        hp_pad_end();

        hp_sample(p, size, hp_trackable(d, size, request));
        return p;
}

static inline __attribute__((always_inline)) void *hp_malloc(struct hp_domain *d, void *ctx, size_t size) {
        if (hw_heapprof_account(&hw_memhooks_profile, size))
                return hp_malloc_slow(d, size);
        return d->orig.malloc(ctx, size);
}

static __attribute__((noinline)) void *hp_calloc_slow(struct hp_domain *d, size_t nelem, size_t elsize) {
        size_t size = nelem * elsize; /* the fast path checked it does not overflow */
        size_t request = hp_pad_begin(d, size);
        void *p = request != size ? d->orig.calloc(d->orig.ctx, 1, request) : d->orig.calloc(d->orig.ctx, nelem, elsize);

        hp_pad_end();

        hp_sample(p, size, hp_trackable(d, size, request));
        return p;
}

static inline __attribute__((always_inline)) void *hp_calloc(struct hp_domain *d, void *ctx, size_t nelem,
                                                             size_t elsize) {
        size_t size;

        /* an overflowing request fails in the original: nothing to count */
        if (!__builtin_mul_overflow(nelem, elsize, &size) && hw_heapprof_account(&hw_memhooks_profile, size))
                return hp_calloc_slow(d, nelem, elsize);
        return d->orig.calloc(ctx, nelem, elsize);
}

/* realloc is, for the profile, a free of the old block and an allocation of the new size: the
 * block that stays alive is sampled for what it now is. */
static __attribute__((noinline)) void *hp_realloc_slow(struct hp_domain *d, void *ptr, size_t size, bool sampled) {
        size_t request = sampled ? hp_pad_begin(d, size) : size;
        void *p = d->orig.realloc(d->orig.ctx, ptr, request);

        hp_pad_end();

        if (!p) {
                if (sampled)
                        hp_sample(NULL, size, false); /* draws the next interval */
                return NULL;                   /* the old block is untouched and stays tracked */
        }
        if (ptr && hw_heapprof_maybe_tracked(&hw_memhooks_profile, ptr))
                hw_heapprof_forget(&hw_memhooks_profile, ptr);
        if (sampled)
                hp_sample(p, size, hp_trackable(d, size, request));
        return p;
}

/* check_filter is a constant: false in the variant used over pymalloc (free_via_raw). There a
 * tracked block is always a raw block (padded or large), which pymalloc's realloc does not find
 * in its pools and hands to PyMem_RawRealloc, whose wrapper (hp_raw_realloc) forgets it: the
 * filter need not be asked twice. Elsewhere this wrapper is the only one to see the block. */
static inline __attribute__((always_inline)) void *hp_realloc(struct hp_domain *d, void *ctx, void *ptr, size_t size,
                                                              bool check_filter) {
        bool sampled = hw_heapprof_account(&hw_memhooks_profile, size);

        if (sampled || (check_filter && ptr && hw_heapprof_maybe_tracked(&hw_memhooks_profile, ptr)))
                return hp_realloc_slow(d, ptr, size, sampled);
        return d->orig.realloc(ctx, ptr, size);
}

static __attribute__((noinline)) void hp_free_slow(struct hp_domain *d, void *ptr) {
        /* before the free: afterwards the address may be reused, and sampled, at once */
        hw_heapprof_forget(&hw_memhooks_profile, ptr);
        d->orig.free(d->orig.ctx, ptr);
}

static inline __attribute__((always_inline)) void hp_free(struct hp_domain *d, void *ctx, void *ptr) {
        /* free(NULL) looks up filter slot 0 like any address; forget() ignores NULL */
        if (hw_heapprof_maybe_tracked(&hw_memhooks_profile, ptr)) {
                hp_free_slow(d, ptr);
                return;
        }
        d->orig.free(ctx, ptr);
}

/* ctx is the original's own (hp_wrapper() gives ours the original's ctx), passed on as it came */
#define HP_DOMAIN_WRAPPERS(name, i)                                                                     \
        static void *hp_##name##_malloc(void *ctx, size_t size) {                                       \
                return hp_malloc(&hp_domains[i], ctx, size);                                            \
        }                                                                                               \
        static void *hp_##name##_calloc(void *ctx, size_t nelem, size_t elsize) {                       \
                return hp_calloc(&hp_domains[i], ctx, nelem, elsize);                                   \
        }                                                                                               \
        static void *hp_##name##_realloc(void *ctx, void *ptr, size_t size) {                           \
                return hp_realloc(&hp_domains[i], ctx, ptr, size, true);                                \
        }                                                                                               \
        static void *hp_##name##_realloc_over_pymalloc(void *ctx, void *ptr, size_t size) {             \
                return hp_realloc(&hp_domains[i], ctx, ptr, size, false);                               \
        }                                                                                               \
        static void hp_##name##_free(void *ctx, void *ptr) {                                            \
                hp_free(&hp_domains[i], ctx, ptr);                                                      \
        }
HP_DOMAIN_WRAPPERS(mem, 0)
HP_DOMAIN_WRAPPERS(obj, 1)

/* The raw domain's free and realloc, wrapped only under a domain whose frees go through it
 * (free_via_raw). Called without the GIL, from any thread. Nothing is counted here; a tracked
 * block is forgotten before it is freed or moved (afterwards its address may be reused and
 * sampled by another thread; a realloc that fails after that loses one sample, on the way to
 * a MemoryError). */
static __attribute__((noinline)) void hp_raw_free_slow(void *ptr) {
        hw_heapprof_forget(&hw_memhooks_profile, ptr);
        hp_raw.orig.free(hp_raw.orig.ctx, ptr);
}

static void hp_raw_free(void *ctx, void *ptr) {
        if (hw_heapprof_maybe_tracked(&hw_memhooks_profile, ptr)) {
                hp_raw_free_slow(ptr);
                return;
        }
        hp_raw.orig.free(ctx, ptr); /* ctx: the original's, as for the other domains */
}

/* A padded request (pymalloc passes it on with its size, and calloc's arguments, unchanged),
 * flagged by the thread that holds the GIL; another thread's request of the same size while
 * the flag is up gets a pooled block too, which is as good as any. */
static __attribute__((noinline)) void *hp_raw_malloc_padded(void *ctx, size_t size, bool zero) {
        void *p = hp_pool_take();

        if (!p)
                return zero ? hp_raw.orig.calloc(ctx, 1, size) : hp_raw.orig.malloc(ctx, size);
        if (zero)
                memset(p, 0, size);
        return p;
}

static void *hp_raw_malloc(void *ctx, size_t size) {
        if (size == HP_PADDED_SIZE && __atomic_load_n(&hp_pad_pending, __ATOMIC_RELAXED))
                return hp_raw_malloc_padded(ctx, size, false);
        return hp_raw.orig.malloc(ctx, size);
}

static void *hp_raw_calloc(void *ctx, size_t nelem, size_t elsize) {
        if (nelem == 1 && elsize == HP_PADDED_SIZE && __atomic_load_n(&hp_pad_pending, __ATOMIC_RELAXED))
                return hp_raw_malloc_padded(ctx, elsize, true);
        return hp_raw.orig.calloc(ctx, nelem, elsize);
}

static void *hp_raw_realloc(void *ctx, void *ptr, size_t size) {
        if (ptr && hw_heapprof_maybe_tracked(&hw_memhooks_profile, ptr))
                hw_heapprof_forget(&hw_memhooks_profile, ptr);
        return hp_raw.orig.realloc(ctx, ptr, size);
}

/* Our allocator for hp_domains[i]; its malloc identifies it in a chain. Its ctx is the
 * original's: the fast paths pass on the ctx they are called with (one load fewer), the slow
 * paths use orig.ctx, the same value. */
static PyMemAllocatorEx hp_wrapper(size_t i) {
        const struct hp_domain *d = &hp_domains[i];
        PyMemAllocatorEx a = i == 0 ? (PyMemAllocatorEx) { .malloc = hp_mem_malloc, .calloc = hp_mem_calloc,
                                                           .realloc = hp_mem_realloc, .free = hp_mem_free }
                                    : (PyMemAllocatorEx) { .malloc = hp_obj_malloc, .calloc = hp_obj_calloc,
                                                           .realloc = hp_obj_realloc, .free = hp_obj_free };

        a.ctx = d->orig.ctx;
        if (d->free_via_raw) {
                a.free = d->orig.free;
                a.realloc = i == 0 ? hp_mem_realloc_over_pymalloc : hp_obj_realloc_over_pymalloc;
        }
        return a;
}

static bool hp_is_pymalloc(const PyMemAllocatorEx *a) {
        return hp_pymalloc.malloc && a->malloc == hp_pymalloc.malloc && a->calloc == hp_pymalloc.calloc &&
               a->realloc == hp_pymalloc.realloc && a->free == hp_pymalloc.free;
}

/* Remember pymalloc's functions if all three domains are the interpreter's defaults now
 * ("pymalloc": raw is malloc, mem and object are pymalloc). GIL held. */
static void hp_learn_pymalloc(void) {
#if PY_VERSION_HEX < 0x030E0000 /* the versions whose pymalloc is known to work as described */
        const char *name;

        if (hp_pymalloc.malloc || !_PyMem_GetCurrentAllocatorName)
                return;
        name = _PyMem_GetCurrentAllocatorName();
        if (name && strcmp(name, "pymalloc") == 0)
                PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &hp_pymalloc);
#endif
}

/* Wrap the raw domain's free and realloc (over whatever is there), unless ours already are. */
static void hp_raw_install(void) {
        PyMemAllocatorEx cur, ours;

        if (hp_raw.in_chain)
                return;
        PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &cur);
        if (cur.free == hp_raw_free) {
                hp_raw.in_chain = true;
                return;
        }
        /* A thread may still be finishing a call through a wrapper removed earlier: rewrite
         * orig only if the chain below changed. */
        if (memcmp(&cur, &hp_raw.orig, sizeof(cur)) != 0)
                hp_raw.orig = cur;
        ours = cur; /* same ctx: a thread reading the domain mid-update mixes two that agree */
        ours.malloc = hp_raw_malloc;
        ours.calloc = hp_raw_calloc;
        ours.realloc = hp_raw_realloc;
        ours.free = hp_raw_free;
        __atomic_thread_fence(__ATOMIC_RELEASE); /* orig before the threads that may call us */
        PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &ours);
        hp_raw.in_chain = true;
}


static uint64_t hp_seed(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ((uint64_t) ts.tv_nsec << 20) ^ (uint64_t) ts.tv_sec ^ ((uint64_t) getpid() << 40) ^
               (uint64_t) (uintptr_t) &ts;
}

/* Whether one allocation through the domain reaches our wrapper: it moves the countdown (by the
 * size, or to a fresh interval when it is sampled, then also samples_total). GIL held, so no
 * other thread allocates in the domain meanwhile. */
static bool hp_wrapper_sees(size_t i) {
        int64_t before = __atomic_load_n(&hw_memhooks_profile.countdown, __ATOMIC_RELAXED);
        uint64_t samples = __atomic_load_n(&hw_memhooks_profile.samples_total, __ATOMIC_RELAXED);
        void *p = i == 0 ? PyMem_Malloc(8) : PyObject_Malloc(8);

        if (!p)
                return true; /* out of memory: no verdict */
        if (i == 0)
                PyMem_Free(p);
        else
                PyObject_Free(p);
        return __atomic_load_n(&hw_memhooks_profile.countdown, __ATOMIC_RELAXED) != before ||
               __atomic_load_n(&hw_memhooks_profile.samples_total, __ATOMIC_RELAXED) != samples;
}

/* All three domains are the interpreter's own allocators again: nobody's wrapper, ours
 * included, is anywhere in them. */
static bool hp_chain_is_interpreters_own(void) {
#if PY_VERSION_HEX < 0x030E0000
        const char *name;

        if (!_PyMem_GetCurrentAllocatorName)
                return false;
        name = _PyMem_GetCurrentAllocatorName();
        /* the debug hooks (-X dev, PYTHONMALLOC=debug) are the interpreter's own too */
        return name && (strcmp(name, "pymalloc") == 0 || strcmp(name, "malloc") == 0 ||
                        strcmp(name, "pymalloc_debug") == 0 || strcmp(name, "malloc_debug") == 0);
#else
        return false;
#endif
}

/* Probes the domains we believe we wrap. Returns whether one of them no longer reaches us;
 * *was_unseen: one was marked unseen before. GIL held. */
static bool hp_probe_lost(bool *was_unseen) {
        bool lost = false;

        *was_unseen = false;
        for (size_t i = 0; i < HW_ELEMENTSOF(hp_domains); i++) {
                struct hp_domain *d = &hp_domains[i];

                if (!d->in_chain)
                        continue;
                *was_unseen |= d->unseen;
                if (!hp_wrapper_sees(i))
                        lost = true;
                else
                        d->unseen = false; /* seen (again): someone put ours back */
        }
        return lost;
}

/* Taken out of every chain: nothing of ours is in it, nothing we track can be trusted. */
static void hp_forget_chain(void) {
        for (size_t i = 0; i < HW_ELEMENTSOF(hp_domains); i++)
                hp_domains[i].in_chain = hp_domains[i].unseen = false;
        hp_pool_close();
        hp_raw.in_chain = false;
}

/* Blocks allocated before the wrapper are freed through it to the original allocator, which is
 * all it does with them: mixing is harmless, as for the arena wrapper. */
void hw_heap_hooks_install(uint64_t sample_bytes, unsigned stack_depth) {
        PyMemAllocatorEx cur[HW_ELEMENTSOF(hp_domains)];
        bool need_raw = false;

        if (sample_bytes == 0) {
                hw_heap_hooks_restore(stack_depth); /* off: not even a wrapper in the chain */
                return;
        }
        hp_learn_pymalloc();
        {
                /* believed in a chain that another tool has since put back as it found it */
                bool was_unseen;

                if (hp_probe_lost(&was_unseen) && hp_chain_is_interpreters_own())
                        hp_forget_chain();
        }
        for (size_t i = 0; i < HW_ELEMENTSOF(hp_domains); i++) {
                struct hp_domain *d = &hp_domains[i];

                /* still wrapped by us (or under someone who wrapped us): keeps how it was wrapped */
                if (!d->in_chain) {
                        PyMem_GetAllocator(d->domain, &cur[i]);
                        if (cur[i].malloc == hp_wrapper(i).malloc)
                                d->in_chain = true;
                        else
                                d->free_via_raw = hp_is_pymalloc(&cur[i]);
                }
                need_raw |= d->free_via_raw;
        }
        /* the raw domain first: it must see the frees of the first sampled blocks */
        if (need_raw) {
                hp_raw_install();
                pthread_mutex_lock(&hp_pool_lock);
                hp_pool_open = true; /* filled by the agent thread (hw_heap_hooks_refill()) */
                pthread_mutex_unlock(&hp_pool_lock);
        }
        hw_heapprof_reset(&hw_memhooks_profile, sample_bytes, stack_depth, hp_seed());
        for (size_t i = 0; i < HW_ELEMENTSOF(hp_domains); i++) {
                struct hp_domain *d = &hp_domains[i];
                PyMemAllocatorEx ours;

                if (d->in_chain)
                        continue;
                d->orig = cur[i];
                ours = hp_wrapper(i);
                PyMem_SetAllocator(d->domain, &ours);
                d->in_chain = true;
        }
}

/* The original allocators come back unless someone wrapped ours since (then ours keeps passing
 * through: the profiler is off and tracks nothing, so it costs a countdown and a filter load). */
void hw_heap_hooks_restore(unsigned stack_depth) {
        PyMemAllocatorEx cur;

        for (size_t i = 0; i < HW_ELEMENTSOF(hp_domains); i++) {
                struct hp_domain *d = &hp_domains[i];

                if (!d->in_chain)
                        continue;
                PyMem_GetAllocator(d->domain, &cur);
                if (cur.malloc == hp_wrapper(i).malloc) {
                        PyMem_SetAllocator(d->domain, &d->orig);
                        d->in_chain = false;
                }
        }
        hw_heapprof_reset(&hw_memhooks_profile, 0, stack_depth, 0);
        /* Nothing is tracked any more: the raw domain's wrapper has nothing left to see. The
         * padded blocks still alive are malloc's own, which the original free takes. */
        hp_pool_close();
        if (hp_raw.in_chain) {
                PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &cur);
                if (cur.free == hp_raw_free) {
                        PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &hp_raw.orig);
                        hp_raw.in_chain = false;
                }
        }
}

bool hw_heap_hooks_in_chain(void) {
        return (hp_domains[0].in_chain && !hp_domains[0].unseen) || (hp_domains[1].in_chain && !hp_domains[1].unseen);
}

uint64_t hw_heap_hooks_rewrapped(void) {
        return __atomic_load_n(&hp_rewrapped, __ATOMIC_RELAXED);
}

int hw_heap_hooks_verify(uint64_t sample_bytes, unsigned stack_depth) {
        bool was_unseen;

        if (!hp_probe_lost(&was_unseen)) {
                if (!was_unseen)
                        return 0;
                /* ours are seen again (the other tool put them back): a fresh profile */
                hw_heapprof_reset(&hw_memhooks_profile, sample_bytes, stack_depth, hp_seed());
                return 1;
        }
        if (hp_chain_is_interpreters_own()) {
                hp_forget_chain();
                hw_heap_hooks_install(sample_bytes, stack_depth); /* a new profile, a new epoch */
                __atomic_add_fetch(&hp_rewrapped, 1, __ATOMIC_RELAXED);
                return 1;
        }
        for (size_t i = 0; i < HW_ELEMENTSOF(hp_domains); i++)
                if (hp_domains[i].in_chain)
                        hp_domains[i].unseen = true;
        if (!was_unseen)
                hw_heapprof_reset(&hw_memhooks_profile, 0, stack_depth, 0); /* no phantom samples */
        return -1;
}

void hw_heap_hooks_after_fork_child(void) {
        hw_heapprof_forget_after_fork(&hw_memhooks_profile);
        __atomic_store_n(&hp_busy, 0, __ATOMIC_RELEASE);
}
