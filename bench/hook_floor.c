/* SPDX-License-Identifier: MIT */
/*
 * The cheapest allocator hook there is, for bench/alloc_cost.py: a PyMem_SetAllocator wrapper of
 * the mem and object domains whose functions only pass each call on to the original (one load
 * and a tail jump). What a workload loses with it installed is what *any* hook costs on that
 * interpreter -- the indirect calls, and on a build with profile-guided optimisation the
 * pymalloc paths the interpreter inlines only while the domains hold pymalloc's own functions --
 * the floor under the heap profiler and tracemalloc alike. Not part of the agent; built by
 * alloc_cost.py with the interpreter's own headers. Module `hw_hook_floor`: install(what) with
 * what "all" (malloc, calloc, realloc, free) or "alloc" (all but free), uninstall().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyMemAllocatorEx orig[2];
static int installed;

#define FLOOR_WRAPPERS(i)                                                                               \
        static void *floor_malloc##i(void *ctx, size_t n) {                                             \
                (void) ctx;                                                                             \
                return orig[i].malloc(orig[i].ctx, n);                                                  \
        }                                                                                               \
        static void *floor_calloc##i(void *ctx, size_t a, size_t b) {                                   \
                (void) ctx;                                                                             \
                return orig[i].calloc(orig[i].ctx, a, b);                                               \
        }                                                                                               \
        static void *floor_realloc##i(void *ctx, void *p, size_t n) {                                   \
                (void) ctx;                                                                             \
                return orig[i].realloc(orig[i].ctx, p, n);                                              \
        }                                                                                               \
        static void floor_free##i(void *ctx, void *p) {                                                 \
                (void) ctx;                                                                             \
                orig[i].free(orig[i].ctx, p);                                                           \
        }
FLOOR_WRAPPERS(0)
FLOOR_WRAPPERS(1)

static PyObject *floor_install(PyObject *self, PyObject *arg) {
        static const PyMemAllocatorDomain domains[2] = { PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ };
        const char *what;
        int with_free;

        (void) self;
        if (!PyUnicode_Check(arg)) {
                PyErr_SetString(PyExc_TypeError, "what: a str");
                return NULL;
        }
        what = PyUnicode_AsUTF8(arg);
        if (!what)
                return NULL;
        if (strcmp(what, "all") != 0 && strcmp(what, "alloc") != 0) {
                PyErr_SetString(PyExc_ValueError, "what: \"all\" or \"alloc\"");
                return NULL;
        }
        if (installed) {
                PyErr_SetString(PyExc_RuntimeError, "already installed");
                return NULL;
        }
        with_free = strcmp(what, "all") == 0;
        for (int i = 0; i < 2; i++) {
                PyMemAllocatorEx ours;

                PyMem_GetAllocator(domains[i], &orig[i]);
                ours = i == 0 ? (PyMemAllocatorEx) { orig[0].ctx, floor_malloc0, floor_calloc0, floor_realloc0, floor_free0 }
                              : (PyMemAllocatorEx) { orig[1].ctx, floor_malloc1, floor_calloc1, floor_realloc1, floor_free1 };
                if (!with_free)
                        ours.free = orig[i].free;
                PyMem_SetAllocator(domains[i], &ours);
        }
        installed = 1;
        Py_RETURN_NONE;
}

static PyObject *floor_uninstall(PyObject *self, PyObject *unused) {
        (void) self;
        (void) unused;
        if (installed) {
                PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &orig[0]);
                PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &orig[1]);
                installed = 0;
        }
        Py_RETURN_NONE;
}

static PyMethodDef floor_methods[] = {
        { "install", floor_install, METH_O, "install(what): pass-through wrappers, \"all\" or \"alloc\"" },
        { "uninstall", floor_uninstall, METH_NOARGS, "restore the allocators found by install()" },
        { NULL, NULL, 0, NULL },
};

static struct PyModuleDef floor_module = { PyModuleDef_HEAD_INIT, "hw_hook_floor", NULL, -1, floor_methods,
                                           NULL, NULL, NULL, NULL };

PyMODINIT_FUNC PyInit_hw_hook_floor(void);
PyMODINIT_FUNC PyInit_hw_hook_floor(void) {
        return PyModule_Create(&floor_module);
}
